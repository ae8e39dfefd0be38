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
            .expect_err("readable by others")
            .to_string();
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
    let err = read_secret_file("k", &dir.path().join("none"))
        .expect_err("missing")
        .to_string();
    assert!(err.contains("cannot read"), "{err}");
    let path = write(dir.path(), 0o600, " \n");
    let err = read_secret_file("k", &path).expect_err("empty").to_string();
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
