//! The bearer token: made on first start, kept in a file only its owner can read, compared
//! in constant time, replaced atomically.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use subtle::ConstantTimeEq as _;

use crate::ControlError;

/// Random bytes in a new token (it is written as twice as many hex digits).
const TOKEN_BYTES: usize = 32;

/// The shortest token accepted from a file (a person may write their own).
const MIN_TOKEN_CHARS: usize = 32;

/// A bearer token. It never prints: `Debug` and `Display` show `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Makes a new token for `path`: 32 bytes from the operating system's random source, as
    /// hex.
    fn generate(path: &Path) -> Result<Self, ControlError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            token_err(
                path,
                format!("no random bytes from the operating system: {e}"),
            )
        })?;
        Ok(Self(hex::encode(bytes)))
    }

    /// Tells whether `presented` is this token, in time that does not depend on where they
    /// differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented))
    }

    /// Returns the token's text, to put in an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn parse(path: &Path, text: &str) -> Result<Self, ControlError> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ControlError::Token {
                path: path.to_path_buf(),
                problem: format!(
                    "holds no usable token (expected at least {MIN_TOKEN_CHARS} printable \
                     characters without spaces)"
                ),
            });
        }
        Ok(Self(token.to_string()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

fn token_err(path: &Path, problem: impl Into<String>) -> ControlError {
    ControlError::Token {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads the token from `path`, or makes one there (mode 0600, with its folder) when the file
/// does not exist. What `vigil run` does at start.
///
/// # Errors
/// When the file may be read by group or others (the message says to `chmod 600` it), holds
/// no usable token, or cannot be read or created.
pub fn load_or_create_token(path: &Path) -> Result<Token, ControlError> {
    match fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(token_err(path, "is not a regular file"));
            }
            if let Some(problem) = vigil_config::private_file_problem(path, &meta) {
                return Err(token_err(
                    path,
                    format!("{problem} (and consider the token leaked: `vigil ctl rotate-token`)"),
                ));
            }
            read_token(path).map_err(|e| match e {
                ControlError::Token { path, problem } => ControlError::Token {
                    path,
                    problem: format!("{problem}; delete it to have a new one made at start"),
                },
                other => other,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = Token::generate(path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)
                    .map_err(|e| token_err(path, format!("cannot create its folder: {e}")))?;
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| token_err(path, format!("cannot create: {e}")))?;
            write_and_sync(&mut file, &token).map_err(|e| token_err(path, e))?;
            Ok(token)
        }
        Err(e) => Err(token_err(path, format!("cannot read: {e}"))),
    }
}

/// Reads the token from `path` without making one: what a client does.
///
/// # Errors
/// When the file cannot be read, group or others may read it, or it holds no usable token.
pub fn read_token(path: &Path) -> Result<Token, ControlError> {
    let mut file =
        fs::File::open(path).map_err(|e| token_err(path, format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| token_err(path, format!("cannot read: {e}")))?;
    if let Some(problem) = vigil_config::private_file_problem(path, &meta) {
        return Err(token_err(path, problem));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| token_err(path, format!("cannot read: {e}")))?;
    Token::parse(path, &text)
}

/// Makes a new token and puts it in `path` atomically (a new file, mode 0600, renamed over
/// the old one): a reader sees the old token or the new one, never a half-written file.
///
/// # Errors
/// When the new file cannot be written or renamed; the old token then stays in place.
pub fn replace_token(path: &Path) -> Result<Token, ControlError> {
    let token = Token::generate(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| token_err(path, "is not a file name"))?
        .to_string_lossy();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .map_err(|e| token_err(path, format!("cannot create its folder: {e}")))?;
    let tmp = dir.join(format!(".{name}.new-{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))
        .and_then(|mut file| {
            // A file left by an earlier failed attempt keeps its mode: set it again.
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot set the mode of {}: {e}", tmp.display()))?;
            write_and_sync(&mut file, &token)
        })
        .and_then(|()| {
            fs::rename(&tmp, path)
                .map_err(|e| format!("cannot rename {} over it: {e}", tmp.display()))
        });
    if let Err(problem) = written {
        let cleanup = match fs::remove_file(&tmp) {
            Ok(()) => String::new(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => format!(" (and {} could not be removed: {e})", tmp.display()),
        };
        return Err(token_err(
            path,
            format!("{problem}{cleanup}; the old token stays in force"),
        ));
    }
    // The rename is durable once the folder is on disk.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| token_err(path, format!("cannot sync its folder: {e}")))?;
    Ok(token)
}

fn write_and_sync(file: &mut fs::File, token: &Token) -> Result<(), String> {
    file.write_all(format!("{}\n", token.expose()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_token_is_64_hex_digits_in_a_file_only_its_owner_can_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/control.token");
        let token = load_or_create_token(&path).expect("created");
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(mode(&path), 0o600);
        // The second start reads the same token.
        assert_eq!(load_or_create_token(&path).expect("read"), token);
        assert_eq!(read_token(&path).expect("read"), token);
        assert_ne!(Token::generate(&path).expect("another"), token);
    }

    #[test]
    fn a_token_file_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.token");
        load_or_create_token(&path).expect("created");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = load_or_create_token(&path).expect_err("group-readable");
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string())
                && text.contains("0640")
                && text.contains(&format!("chmod 600 {}", path.display()))
                && text.contains("rotate-token"),
            "{text}"
        );
        // A client refuses it too.
        let text = read_token(&path).expect_err("group-readable").to_string();
        assert!(
            text.contains("0640") && text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
    }

    #[test]
    fn a_short_or_empty_token_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.token");
        fs::write(&path, "short\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = load_or_create_token(&path).expect_err("too short");
        assert!(
            err.to_string().contains("no usable token")
                && err.to_string().contains("delete it to have a new one made"),
            "{err}"
        );
    }

    #[test]
    fn replacing_writes_a_new_token_atomically_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.token");
        let old = load_or_create_token(&path).expect("created");
        // Even a file that had been opened up gets a private replacement.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let new = replace_token(&path).expect("replaced");
        assert_ne!(new, old);
        assert_eq!(read_token(&path).expect("read"), new);
        assert_eq!(mode(&path), 0o600);
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("control.token")]);
    }

    #[test]
    fn tokens_compare_whole_and_never_print() {
        let t = Token::parse(Path::new("t"), &"ab".repeat(32)).expect("token");
        assert!(t.matches("ab".repeat(32).as_bytes()));
        assert!(!t.matches("ab".repeat(31).as_bytes()));
        assert!(!t.matches(format!("{}c", "ab".repeat(32)).as_bytes()));
        assert_eq!(format!("{t} {t:?}"), "[REDACTED] Token([REDACTED])");
    }
}
