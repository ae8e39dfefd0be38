//! Text from outside printed for a person: an ESC, CR or LF stored in the log, the control
//! audit or the notification log (by an older vigil, a tampered file, a broker) is shown
//! escaped by every human-readable printer, never raw; new requests holding one are refused.

mod common;

use std::path::Path;

use chrono::{TimeZone as _, Utc};
use common::vigil;
use vigil_store::{AlertLogEntry, AuditStart, NewControlCommand, StateStore as _, Store};

/// What an attacker would put in a `who` or a `reason`: clear the screen, retitle the
/// terminal, forge a line of the table.
const WHO: &str = "ana\u{1b}]0;owned\u{7}\u{1b}[2J";
const REASON: &str = "routine\r\n2     2026-03-05T14:31:00Z  bob  forged";

/// What a terminal would act on.
fn assert_plain(what: &str, out: &str) {
    assert!(
        !out.chars().any(|c| c != '\n' && vigil_core::is_control(c)),
        "{what}: a raw control character reached the terminal: {out:?}"
    );
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = vigil()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run vigil");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn the_audit_and_the_notification_log_are_printed_with_control_characters_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("state/vigil.db");
    let at = Utc
        .with_ymd_and_hms(2026, 3, 5, 14, 30, 0)
        .single()
        .expect("time");
    block(async {
        let s = Store::open(&store).await.expect("store");
        let started = s
            .begin_control_command(&NewControlCommand {
                at,
                who: WHO.into(),
                remote: "127.0.0.1:5000".into(),
                command: "pause".into(),
                argument: Some("signal".into()),
                reason: REASON.into(),
                request_id: None,
            })
            .await
            .expect("audit");
        let AuditStart::New(seq) = started else {
            panic!("a new row: {started:?}");
        };
        s.finish_control_command(seq, at, true, 200, "paused\u{1b}[31m")
            .await
            .expect("answer");
        s.append_alert_log(&[AlertLogEntry {
            seq: 0,
            at,
            kind: "silence".into(),
            alert_id: None,
            rule: Some("cpu_high".into()),
            severity: None,
            channel: None,
            detail: format!("silenced by {WHO}: {REASON}"),
        }])
        .await
        .expect("alert log");
        s.close().await;
    });
    let store_arg = store.to_str().expect("utf-8 path");

    let (code, audit, err) = run(dir.path(), &["ctl", "audit", "--store", store_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert_plain("vigil ctl audit", &audit);
    assert!(
        audit.contains("ana\\x1b]0;owned\\x07\\x1b[2J")
            && audit.contains("routine\\r\\n2     2026-03-05T14:31:00Z  bob  forged")
            && audit.contains("paused\\x1b[31m"),
        "{audit}"
    );
    assert_eq!(audit.lines().count(), 2, "a header and one row: {audit}");
    // JSON stays exact: JSON escapes them itself.
    let (code, json, _) = run(
        dir.path(),
        &["ctl", "audit", "--json", "--store", store_arg],
    );
    assert_eq!(code, Some(0));
    let row: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
    assert_eq!(row["who"], WHO);

    let (code, history, err) = run(dir.path(), &["alerts", "history", "--store", store_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert_plain("vigil alerts history", &history);
    assert!(
        history.contains("silenced by ana\\x1b]0;owned"),
        "{history}"
    );
}

#[test]
fn vigil_logs_prints_stored_text_escaped_and_json_as_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let line = serde_json::json!({
        "timestamp": "2026-03-05T14:30:00.000Z",
        "level": "WARN",
        "service": "vigil\u{1b}[8m",
        "trace_id": "tx_1\r",
        "event": "control_command",
        "data": {"who": WHO, "reason": REASON, "k\u{1b}ey": 1},
        "seq": 1,
    });
    std::fs::write(
        logs.join("vigil-000001-20260305.jsonl"),
        format!("{line}\n"),
    )
    .expect("write log");
    let dir_arg = logs.to_str().expect("utf-8 path");

    let (code, table, err) = run(dir.path(), &["logs", "--dir", dir_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert_plain("vigil logs", &table);
    assert_eq!(table.lines().count(), 1, "one line stays one line: {table}");
    for want in [
        "vigil\\x1b[8m",
        "tx_1\\r",
        "who=ana\\x1b]0;owned\\x07\\x1b[2J",
        "reason=routine\\r\\n2",
        "k\\x1bey=1",
    ] {
        assert!(table.contains(want), "{want} in {table}");
    }
    let (code, trace, err) = run(dir.path(), &["logs", "trace", "tx_1\r", "--dir", dir_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert_plain("vigil logs trace", &trace);
    assert!(trace.contains("who=ana\\x1b]0;owned"), "{trace}");
    // --format json prints each line exactly as stored (JSON has escaped them already).
    let (code, json, _) = run(dir.path(), &["logs", "--format", "json", "--dir", dir_arg]);
    assert_eq!(code, Some(0));
    assert_eq!(json.trim(), line.to_string());
}

/// New requests holding a control character are refused before anything is stored or sent
/// (the control API refuses them too, 400 naming the field).
#[test]
fn a_who_or_reason_holding_a_control_character_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = run(
        dir.path(),
        &["ctl", "pause", "signal", "--who", WHO, "--reason", "news"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--who") && err.contains("holds a control character (U+001B)"),
        "{err}"
    );
    assert_plain("the refusal", &err);
    let (code, _, err) = run(dir.path(), &["ctl", "breaker", "trip", "--reason", REASON]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds a control character (U+000D)"), "{err}");
    let store = dir.path().join("state/vigil.db");
    let (code, _, err) = run(
        dir.path(),
        &[
            "alerts",
            "silence",
            "--match",
            "rule=cpu_high",
            "--for",
            "1h",
            "--reason",
            REASON,
            "--store",
            store.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds a control character (U+000D)"), "{err}");
    assert!(!store.exists(), "nothing was recorded");
}
