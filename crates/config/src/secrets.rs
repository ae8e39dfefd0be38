//! Secrets outside the config's `Secret` values: files that hold one (API secrets, the
//! control token, the control API's TLS key), which only their owner may read — one check
//! for all of them, so none is forgotten — and the values a config file's error message
//! must not echo.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Why the file `path` (with metadata `meta`) may not hold a secret: group or others may
/// read or write it. The message names the mode and the fix, never the content.
pub fn private_file_problem(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "has mode {mode:04o}: group or others may read it; run `chmod 600 {}`",
            path.display()
        )
    })
}

/// Why a file may not be used as a secret file. Every message starts with the config key
/// (or flag) that names the file and the path, and never holds the secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    /// The file cannot be opened, examined or read.
    #[error("{key} {}: cannot read: {reason}", path.display())]
    Unreadable {
        /// The config key or flag naming the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// Group or others may read or write it ([`private_file_problem`]); `read` when its
    /// secret was about to be read, which asks for the secret to be replaced as well.
    #[error(
        "{key} {}: {problem}{}",
        path.display(),
        if *read { " (and replace the secret if someone else may have read it)" } else { "" }
    )]
    Exposed {
        /// The config key or flag naming the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// The mode and the fix.
        problem: String,
        /// Whether the secret was being read.
        read: bool,
    },
    /// It holds nothing but whitespace.
    #[error("{key} {}: is empty", path.display())]
    Empty {
        /// The config key or flag naming the file.
        key: String,
        /// The file.
        path: PathBuf,
    },
}

/// Checks that only the owner of `path` may read it (see [`private_file_problem`]).
///
/// # Errors
/// The file cannot be examined, or group or others may read it; the message starts with
/// `key` (the config key or flag that names the file) and the path.
pub fn check_private_file(key: &str, path: &Path) -> Result<(), SecretFileError> {
    let meta = std::fs::metadata(path).map_err(|err| unreadable(key, path, &err))?;
    match private_file_problem(path, &meta) {
        Some(problem) => Err(SecretFileError::Exposed {
            key: key.to_string(),
            path: path.to_path_buf(),
            problem,
            read: false,
        }),
        None => Ok(()),
    }
}

fn unreadable(key: &str, path: &Path, err: &std::io::Error) -> SecretFileError {
    SecretFileError::Unreadable {
        key: key.to_string(),
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// A secret file's one line, trimmed. The file must be readable by its owner only (mode
/// 0600 or 0400): a secret others can read is refused, with the `chmod` that fixes it.
///
/// # Errors
/// The file cannot be read, group or others may read it, or it holds nothing but
/// whitespace. The message names `key` (the config key or flag) and the file, never the
/// secret.
pub fn read_secret_file(key: &str, path: &Path) -> Result<String, SecretFileError> {
    let cannot = |err: std::io::Error| unreadable(key, path, &err);
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let meta = file.metadata().map_err(cannot)?;
    if let Some(problem) = private_file_problem(path, &meta) {
        return Err(SecretFileError::Exposed {
            key: key.to_string(),
            path: path.to_path_buf(),
            problem,
            read: true,
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretFileError::Empty {
            key: key.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(secret.to_string())
}

/// The shortest value hidden from config error messages: shorter ones would shred the
/// message (a one-letter password matches everywhere), and are no secret anyway.
const MIN_HIDDEN: usize = 4;

/// Tells whether a key (one segment, any case) names a secret value: `secret`, `password`,
/// `token`, `auth…`, `credential`, `private`, `key` or `…_key` — but not a file that holds
/// one (`secret_file`, `token_file`).
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_file") || k.ends_with("-file") || k.ends_with("_id") {
        return false;
    }
    [
        "secret",
        "password",
        "passwd",
        "token",
        "auth",
        "credential",
        "private",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k == "key"
        || k.ends_with("_key")
        || k.ends_with("-key")
        || k.ends_with("apikey")
}

/// Tells whether a URL under this table and key is a secret as a whole (an alert channel's
/// webhook, the dead man's heartbeat): others only hide their passwords.
fn secret_url(table: &str, key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("url") && (table.starts_with("alerts") || k == "heartbeat_url")
}

/// The values in `source` (a config file's text, possibly broken) that must not be shown:
/// every value of a key that names a secret, of a table or inline table under such a key
/// (`secret_headers`), of an alert channel's or the heartbeat's URL, and the password in
/// any other URL. Found line by line, so a file that does not parse is read too.
fn secret_values(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut table = String::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            table = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            continue;
        }
        let whole_table = table.split('.').any(secret_key);
        scan_line(line, &mut |keys: &[String], value: &str| {
            let key = keys.last().map_or("", String::as_str);
            if whole_table || keys.iter().any(|k| secret_key(k)) || secret_url(&table, key) {
                out.push(value.to_string());
            } else if key.to_ascii_lowercase().contains("url") {
                out.extend(crate::model::url_passwords(value));
            }
        });
    }
    out.retain(|v| v.chars().count() >= MIN_HIDDEN);
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// Calls `each` with every value of one TOML line and the keys it is under: the key of
/// each inline table or array the value is in, from the outermost, then its own (each the
/// last segment of a dotted key). A value is passed as written: a string's text between
/// its quotes (up to the end of the line when it is not closed), anything else trimmed.
fn scan_line(line: &str, each: &mut dyn FnMut(&[String], &str)) {
    let b = line.as_bytes();
    // The key of each inline table or array the scan is in.
    let mut keys: Vec<String> = Vec::new();
    let mut key_start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => return,
            b'"' | b'\'' => {
                let (text, end) = string_end(b, i);
                let mut next = end;
                while next < b.len() && b[next] == b' ' {
                    next += 1;
                }
                // A quoted key is no value; a string in an array is.
                if !keys.is_empty() && !matches!(b.get(next), Some(b'=' | b'.')) {
                    each(&keys, &line[text.0..text.1]);
                }
                i = end;
            }
            b',' => {
                key_start = i + 1;
                i += 1;
            }
            b'}' | b']' => {
                keys.pop();
                key_start = i + 1;
                i += 1;
            }
            b'=' => {
                let mut path = keys.clone();
                path.push(last_segment(&line[key_start..i]));
                let mut v = i + 1;
                while v < b.len() && (b[v] == b' ' || b[v] == b'\t') {
                    v += 1;
                }
                match b.get(v) {
                    Some(b'{' | b'[') => {
                        keys = path;
                        key_start = v + 1;
                        i = v + 1;
                    }
                    Some(b'"' | b'\'') => {
                        let (text, end) = string_end(b, v);
                        each(&path, &line[text.0..text.1]);
                        i = end;
                    }
                    Some(_) => {
                        let end = b[v..]
                            .iter()
                            .position(|c| matches!(c, b',' | b'}' | b']' | b'#'))
                            .map_or(b.len(), |p| v + p);
                        each(&path, line[v..end].trim());
                        i = end;
                    }
                    None => return,
                }
            }
            b'{' | b'[' => {
                // An inline table or array in an array: under the array's key.
                keys.push(keys.last().cloned().unwrap_or_default());
                key_start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// The string starting with the quote at `start`: the range of its text and where the scan
/// goes on. A string not closed on this line runs to its end.
fn string_end(b: &[u8], start: usize) -> ((usize, usize), usize) {
    let quote = b[start];
    let triple = b.len() >= start + 3 && b[start + 1] == quote && b[start + 2] == quote;
    let open = if triple { start + 3 } else { start + 1 };
    let mut i = open;
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote && (!triple || b[i..].starts_with(&[quote; 3])) {
            let close = if triple { i + 3 } else { i + 1 };
            return ((open, i), close);
        }
        i += 1;
    }
    ((open, b.len().max(open)), b.len())
}

/// The last segment of a (possibly dotted, possibly quoted) key, without quotes.
fn last_segment(key: &str) -> String {
    let key = key.trim();
    let seg = if key.ends_with('"') || key.ends_with('\'') {
        let q = &key[key.len() - 1..];
        let inner = &key[..key.len() - 1];
        inner.rfind(q).map_or(inner, |at| &inner[at + 1..])
    } else {
        key.rsplit('.').next().unwrap_or(key)
    };
    seg.trim().to_string()
}

impl crate::ConfigError {
    /// This error with every secret-looking value of `source`, the config text it comes
    /// from, replaced by `[REDACTED]`: a TOML parser's message shows the line it stopped
    /// at, and that line may hold a password (see `secret_values` for what is hidden).
    #[must_use]
    pub fn without_secrets_of(mut self, source: &str) -> Self {
        let secrets = secret_values(source);
        if secrets.is_empty() {
            return self;
        }
        for issue in &mut self.issues {
            for s in &secrets {
                if issue.message.contains(s.as_str()) {
                    issue.message = issue.message.replace(s.as_str(), "[REDACTED]");
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests;
