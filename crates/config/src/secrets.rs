//! Secrets outside the config's `Secret` values: files that hold one (API secrets, the
//! control token, the control API's TLS key), which only their owner may read — one check
//! for all of them, so none is forgotten — and the values a config file's error message
//! must not echo.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

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

/// Checks that only the owner of `path` may read it (see [`private_file_problem`]).
///
/// # Errors
/// The file cannot be examined, or group or others may read it; the message starts with
/// `key` (the config key or flag that names the file) and the path.
pub fn check_private_file(key: &str, path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|err| format!("{key} {}: cannot read: {err}", path.display()))?;
    match private_file_problem(path, &meta) {
        Some(problem) => Err(format!("{key} {}: {problem}", path.display())),
        None => Ok(()),
    }
}

/// A secret file's one line, trimmed. The file must be readable by its owner only (mode
/// 0600 or 0400): a secret others can read is refused, with the `chmod` that fixes it.
///
/// # Errors
/// The file cannot be read, group or others may read it, or it holds nothing but
/// whitespace. The message names `key` (the config key or flag) and the file, never the
/// secret.
pub fn read_secret_file(key: &str, path: &Path) -> Result<String, String> {
    let cannot = |err: std::io::Error| format!("{key} {}: cannot read: {err}", path.display());
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let meta = file.metadata().map_err(cannot)?;
    if let Some(problem) = private_file_problem(path, &meta) {
        return Err(format!(
            "{key} {}: {problem} (and replace the secret if someone else may have read it)",
            path.display()
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{key} {}: is empty", path.display()));
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
mod tests {
    use super::*;

    fn write(dir: &Path, mode: u32, text: &str) -> std::path::PathBuf {
        let path = dir.join("api.secret");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_private_secret_file_is_read_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o600, 0o400] {
            let path = write(dir.path(), mode, "  s3cr3t-value\n");
            assert_eq!(
                read_secret_file("data.feed.secret_file", &path).as_deref(),
                Ok("s3cr3t-value")
            );
            assert_eq!(check_private_file("k", &path), Ok(()));
        }
    }

    #[test]
    fn a_secret_file_group_or_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o640, 0o604, 0o644, 0o660, 0o606, 0o610] {
            let path = write(dir.path(), mode, "s3cr3t-value\n");
            let err = read_secret_file("execution.broker_secret_file", &path)
                .expect_err("readable by others");
            assert!(
                err.starts_with(&format!(
                    "execution.broker_secret_file {}: has mode {mode:04o}",
                    path.display()
                )) && err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
            assert!(!err.contains("s3cr3t"), "{err}");
            assert!(check_private_file("k", &path).is_err());
        }
    }

    #[test]
    fn a_missing_or_empty_secret_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_secret_file("k", &dir.path().join("none")).expect_err("missing");
        assert!(err.contains("cannot read"), "{err}");
        let path = write(dir.path(), 0o600, " \n");
        let err = read_secret_file("k", &path).expect_err("empty");
        assert!(err.ends_with("is empty"), "{err}");
    }

    /// The message `load` gives for `text` (written to a file).
    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.toml");
        std::fs::write(&path, text).expect("write");
        crate::VigilConfig::load(&path)
            .expect_err("a broken config")
            .to_string()
    }

    #[test]
    fn a_syntax_error_on_a_line_with_a_password_names_the_line_but_not_the_password() {
        for line in [
            // The closing quote is missing.
            "url = \"postgres://vigil:Hunter2-Pass@db.internal:5432/vigil",
            // A stray character after the value.
            "url = \"postgres://vigil:Hunter2-Pass@db.internal:5432/vigil\" x",
            // A password parameter.
            "url = \"postgres://vigil@db.internal/vigil?password=Hunter2-Pass",
        ] {
            let err = load_error(&format!("[session]\nname = \"x\"\n\n[store]\n{line}\n"));
            assert!(!err.contains("Hunter2"), "{err}");
            assert!(err.contains("line 5"), "{err}");
            // Config errors name the key, never a string of the file.
            assert!(err.contains("store.url"), "{err}");
        }
    }

    #[test]
    fn secret_values_are_hidden_and_others_are_not() {
        let text = r#"
[alerts.channels.email]
password = "smtp-pass-1"
username = "ops-user"
[alerts.channels.slack]
url = "https://hooks.slack.com/services/T0/B0/XYZW"
[alerts.channels.webhook]
secret_headers = { Authorization = "Bearer tok-3", "X-Api-Key" = 'hdr-4' }
[alerts.channels.pagerduty]
routing_key = "rk-5555"
[monitor.dead_man]
heartbeat_url = "https://hc-ping.com/uuid-6666"
[data.feed]
url = "wss://user:feed-pw-7@feed.example/stream"
key_id = "PK-KEY-ID"
secret_file = "/etc/vigil/feed.secret"
backups = [{ url = "wss://u:backup-pw-8@b.example", secret_file = "s" }]
[execution]
broker_url = "https://paper-api.alpaca.markets"
[data]
tokens = ["tok-9999", "tok-1010"]
"#;
        let hidden = secret_values(text);
        for s in [
            "smtp-pass-1",
            "https://hooks.slack.com/services/T0/B0/XYZW",
            "Bearer tok-3",
            "hdr-4",
            "rk-5555",
            "https://hc-ping.com/uuid-6666",
            "feed-pw-7",
            "backup-pw-8",
            "tok-9999",
            "tok-1010",
        ] {
            assert!(hidden.iter().any(|h| h == s), "{s} not hidden: {hidden:?}");
        }
        for s in [
            "ops-user",
            "PK-KEY-ID",
            "/etc/vigil/feed.secret",
            "https://paper-api.alpaca.markets",
            "Authorization",
            "X-Api-Key",
        ] {
            assert!(
                !hidden.iter().any(|h| h.contains(s)),
                "{s} hidden: {hidden:?}"
            );
        }
    }

    #[test]
    fn every_message_of_an_error_is_scrubbed() {
        let text = "[alerts.channels.email]\npassword = \"smtp-pass-1\"\n";
        let err = crate::ConfigError::new(
            "f.toml",
            vec![
                crate::ConfigIssue::new("", "line 2: password = \"smtp-pass-1\" is bad"),
                crate::ConfigIssue::new("x", "nothing secret"),
            ],
        )
        .without_secrets_of(text);
        assert_eq!(
            err.issues[0].message,
            "line 2: password = \"[REDACTED]\" is bad"
        );
        assert_eq!(err.issues[1].message, "nothing secret");
    }
}
