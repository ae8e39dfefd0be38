//! Secrets never appear: a secret fed through every path that can log is redacted from
//! every line and from the error handed back.

use vigil_session::{SessionOptions, run_with};
use vigil_tests::config_for;

const SECRET: &str = "s3cr3t-API-KEY-9f8e7d";

#[test]
fn a_secret_in_paths_errors_and_library_logs_never_reaches_the_log() {
    let root = tempfile::tempdir().expect("tempdir");
    // A secret in a path (think: a token in a URL) flows into error messages, the session
    // header, the Monitor's fault report and the breaker's reason.
    let data_dir = root.path().join(SECRET);
    std::fs::create_dir(&data_dir).expect("mkdir");
    let data = data_dir.join("feed.csv");
    std::fs::write(
        &data,
        "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,oops,10\n",
    )
    .expect("write");
    let logs = root.path().join("logs");
    let mut opts = SessionOptions::new(config_for(&data, "KEYED", &logs));
    opts.secrets = vec![SECRET.to_string()];
    let outcome = run_with(opts, |_ctl| async {
        // A library logging through `tracing` (and `log`, bridged) with the secret in it.
        tracing::warn!(token = SECRET, "connecting with {}", SECRET);
    })
    .expect("session runs");

    let err = outcome
        .summary
        .error
        .clone()
        .expect("the malformed row fails the session");
    assert!(!err.contains(SECRET), "{err}");
    assert!(err.contains("[REDACTED]"), "{err}");

    let mut all = String::new();
    for f in vigil_log::list_log_files(&logs).expect("list") {
        all.push_str(&std::fs::read_to_string(&f.path).expect("read"));
    }
    assert!(!all.is_empty());
    assert!(!all.contains(SECRET), "secret leaked into the log");
    for event in [
        "session_started",
        "data_parse_failed",
        "agent_failed",
        "breaker_tripped",
        "library_log",
    ] {
        let line = all
            .lines()
            // The control server's own start-up lines are library logs too; skip them.
            .find(|l| l.contains(&format!("\"event\":\"{event}\"")) && !l.contains("actix_server"))
            .unwrap_or_else(|| panic!("no {event} line"));
        assert!(
            line.contains("[REDACTED]"),
            "{event} does not show the redaction: {line}"
        );
    }
    let report = vigil_log::verify_dir(&logs).expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn a_start_error_never_shows_a_secret() {
    let root = tempfile::tempdir().expect("tempdir");
    // A secret in the path of a data file that is not there: the start fails naming it.
    let data = root.path().join(SECRET).join("missing.csv");
    let mut opts = SessionOptions::new(config_for(&data, "KEYED", &root.path().join("logs")));
    opts.secrets = vec![SECRET.to_string()];
    let err = run_with(opts, |_ctl| async {})
        .expect_err("no data file")
        .to_string();
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        err.contains("[REDACTED]") && err.contains("missing.csv"),
        "{err}"
    );
}
