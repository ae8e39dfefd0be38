//! No secret on the way out, at any level: a `vigil run` at DEBUG (libraries too) reads a
//! `vigil feed` with a key and trades through a `vigil broker` with a key; then every 8-byte
//! piece of every secret, raw and as hex, is looked for in the whole log folder and in
//! everything the process wrote to standard error. Secret files that others may read are
//! refused, and a config syntax error never echoes a password. Every wait is a bounded poll
//! of a child process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::broker::{BrokerProcess, SECRET as BROKER_SECRET};
use common::feed::{FeedProcess, KEY_ID as FEED_KEY, SECRET as FEED_SECRET, wait_for_event};
use common::{Running, repo, vigil};
use vigil_testkit::config;

/// The control token the run is given (not hex: a hex token's pieces would turn up by
/// chance in the log's hex hashes).
const CONTROL_TOKEN: &str = "the-control-token-of-the-secrets-test-Kx9Qw2Zr";

/// The pieces of `secret` looked for: every 8-byte window, and each as lowercase hex.
fn pieces(secret: &str) -> Vec<(String, String)> {
    secret
        .as_bytes()
        .windows(8)
        .map(|w| {
            let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
            (String::from_utf8_lossy(w).into_owned(), hex)
        })
        .collect()
}

/// Asserts that no piece of any of `secrets` is in `text` — raw, or as hex once the text's
/// spaces are gone and its letters lowercase (a hex dump's groups).
fn assert_no_piece(what: &str, text: &str, secrets: &[&str]) {
    let squeezed: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    for secret in secrets {
        for (raw, hex) in pieces(secret) {
            if let Some(at) = text.find(&raw) {
                let from = text[..at].rfind('\n').map_or(0, |n| n + 1);
                let to = text[at..].find('\n').map_or(text.len(), |n| at + n);
                panic!("{what} holds {raw:?}: {}", &text[from..to]);
            }
            assert!(
                !squeezed.contains(&hex),
                "{what} holds {raw:?} as hex {hex}"
            );
        }
    }
}

/// Every file in `dir`, as text.
fn folder_text(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("log folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned())
        .collect()
}

#[test]
fn a_debug_session_with_a_feed_and_a_broker_leaves_no_piece_of_a_secret_in_the_log_or_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let broker = BrokerProcess::start(dir, &repo("data/GOOG_1d.csv"));
    let mut feed = FeedProcess::start(dir);
    std::fs::create_dir_all(dir.join("state")).expect("state folder");
    vigil_testkit::write_secret_file(&dir.join("state/control.token"), CONTROL_TOKEN);
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"{feed}
[signal]
fast_span = 3
slow_span = 8
{execution}{home}"#,
            feed = config::feed_sections(
                "GOOG",
                &feed.stream_url,
                FEED_KEY,
                &dir.join("feed.secret"),
                ""
            ),
            execution = broker.execution_sections(dir),
            home = config::home_sections(
                dir,
                "min_level = \"DEBUG\"\nservice_levels = { library = \"DEBUG\" }",
                ""
            ),
        ),
    )
    .expect("write config");
    let run = Running::start(&["run".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    feed.wait_for("subscribed to [\"GOOG\"]");
    feed.step(60);
    wait_for_event(dir, "fill_received");
    // The control API is asked with the token, so that it crosses the wire too.
    let addr = run.control.clone().expect("control address");
    let (status, _) = common::http_get(&addr, "/status", CONTROL_TOKEN);
    assert_eq!(status, 200);
    let (_, stderr) = run.interrupt_with_stderr();

    let log = folder_text(&dir.join("logs"));
    // Not vacuous: it traded through the broker on the feed's bars, and libraries wrote
    // DEBUG lines.
    let lines = common::vigil_log_lines(&dir.join("logs"));
    let count = |event: &str, level: Option<&str>| {
        lines
            .iter()
            .filter(|l| l["event"] == event && level.is_none_or(|lv| l["level"] == lv))
            .count()
    };
    assert!(count("fill_received", None) >= 1, "no fill");
    assert!(
        count("library_log", Some("DEBUG")) >= 1,
        "no library DEBUG line"
    );
    assert!(!stderr.is_empty());

    let secrets = [BROKER_SECRET, FEED_SECRET, CONTROL_TOKEN];
    assert_no_piece("the log", &log, &secrets);
    assert_no_piece("standard error", &stderr, &secrets);
}

/// Runs `cmd` and waits (at most 30 s) for it to exit.
fn exit_within(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            let out = child.wait_with_output().expect("reaped");
            panic!(
                "still running after 30 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Asserts that `out` failed with a message naming `file`, its mode 0640 and the fix.
fn assert_refused(what: &str, out: &Output, file: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} started: {err}");
    assert!(
        err.contains(&file.display().to_string())
            && err.contains("0640")
            && err.contains(&format!("chmod 600 {}", file.display())),
        "{what}: {err}"
    );
    assert!(!err.contains("s3cr3t"), "{what} shows the secret: {err}");
}

#[test]
fn secret_files_group_or_others_may_read_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let secret = dir.join("open.secret");
    std::fs::write(&secret, "s3cr3t-open-to-the-group\n").expect("write");
    let mut perms = std::fs::metadata(&secret).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o640);
    std::fs::set_permissions(&secret, perms).expect("chmod");

    let mut broker = vigil();
    broker
        .args(["broker", "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.join("broker/state.db"))
        .arg("--data")
        .arg(format!("GOOG={}", repo("data/GOOG_1d.csv").display()))
        .args(["--key-id", "k", "--secret-file"])
        .arg(&secret);
    assert_refused("vigil broker", &exit_within(broker), &secret);

    let mut feed = vigil();
    feed.args(["feed", "--listen", "127.0.0.1:0", "--csv"])
        .arg(repo("data/GOOG_1d.csv"))
        .args(["--manual", "--key-id", "k", "--secret-file"])
        .arg(&secret);
    assert_refused("vigil feed", &exit_within(feed), &secret);

    // `vigil run`: the feed's secret file, and the broker's.
    for (section, name) in [
        (
            "[data.feed]\nurl = \"ws://127.0.0.1:9/stream\"\nkey_id = \"k\"\nsecret_file",
            "feed",
        ),
        (
            "[execution]\nvenue = \"alpaca\"\nbroker_url = \"http://127.0.0.1:9\"\n\
             broker_key_id = \"k\"\nbroker_secret_file",
            "broker",
        ),
    ] {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
                 {section} = \"{secret}\"\n[log]\ndir = \"{logs}\"\n[store]\npath = \"{store}\"\n\
                 [control]\nenabled = false\n",
                secret = secret.display(),
                logs = dir.join(format!("logs-{name}")).display(),
                store = dir.join(format!("state-{name}/vigil.db")).display(),
            ),
        )
        .expect("config");
        let mut run = vigil();
        run.args(["run", "--config"]).arg(&cfg);
        assert_refused(&format!("vigil run ({name})"), &exit_within(run), &secret);
    }
}

#[test]
fn a_config_syntax_error_on_the_store_url_line_names_the_line_but_not_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("vigil.toml");
    // The closing quote is missing.
    std::fs::write(
        &cfg,
        "[session]\nname = \"x\"\n\n[store]\nurl = \"postgres://vigil:Hunter2-Pass@db.internal:5432/vigil\n",
    )
    .expect("write");
    let mut check = vigil();
    check.args(["config", "check"]).arg(&cfg);
    let out = exit_within(check);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("line 5") && text.contains("store.url"),
        "{text}"
    );
    assert!(!text.contains("Hunter2"), "{text}");

    let mut run = vigil();
    run.args(["run", "--config"]).arg(&cfg);
    let out = exit_within(run);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 5") && !err.contains("Hunter2"), "{err}");
}
