//! `[data.cross_check]` end to end: `vigil run` reads GOOG from one `vigil feed` process and
//! compares it with a second one (the reference). A 5 % spike on the source in use only (too
//! small for the jump rule) puts GOOG in quarantine (actor `cross_check`); no order is
//! decided in it until agreeing bars lift it. Every wait is for an actual line, bounded.

mod common;

use std::time::Duration;

use common::feed::{FeedProcess, KEY_ID, PATIENCE, wait_for_line};
use common::{repo, run_on};
use rust_decimal::Decimal;
use serde_json::Value;
use vigil_testkit::config;

/// A `vigil run` config reading GOOG from `primary`, cross-checked against `reference`.
fn config(dir: &std::path::Path, primary: &str, reference: &str) -> std::path::PathBuf {
    let cfg = dir.join("vigil.toml");
    let secret = dir.join("feed.secret");
    std::fs::write(
        &cfg,
        format!(
            r#"{feed}
[data.cross_check]
url = "{reference}"
key_id = "{KEY_ID}"
secret_file = "{secret}"
max_disagreement_pct = 2
release_after_bars = 3

# The jump rule stays quiet on a 5 % move.
[data.anomaly]
max_jump_pct = 50
k_sigma = 1000

[signal]
fast_span = 3
slow_span = 8
{home}"#,
            feed = config::feed_sections("GOOG", primary, KEY_ID, &secret, ""),
            secret = secret.display(),
            home = config::home_sections(dir, "", ""),
        ),
    )
    .expect("config");
    cfg
}

#[test]
fn a_reference_that_is_down_is_logged_and_trading_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut primary = FeedProcess::start(dir.path());
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let cfg = config(
        dir.path(),
        &primary.stream_url,
        &format!("ws://127.0.0.1:{port}/stream"),
    );
    let run = run_on(&cfg);
    primary.wait_for("subscribed to [\"GOOG\"]");
    let failed = wait_for_line(dir.path(), "cross_check_failed", |_| true);
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["data"]["failures"], 1);
    assert_eq!(failed["data"]["retry_in_ms"], 500);
    assert!(
        failed["data"]["action"]
            .as_str()
            .is_some_and(|a| a.contains("the cross-check is off")),
        "{failed:#}"
    );
    // It keeps trying, with a longer wait each time.
    let again = wait_for_line(dir.path(), "cross_check_failed", |l| {
        l["data"]["failures"] == 2
    });
    assert_eq!(again["data"]["retry_in_ms"], 1000);
    primary.step(40);
    wait_for_line(dir.path(), "order_submitted", |_| true);
    run.signal("-TERM");
    let out = run.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_spike_on_the_source_in_use_only_quarantines_the_symbol_by_the_cross_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut primary = FeedProcess::start(dir.path());
    let mut reference = FeedProcess::start(dir.path());
    let cfg = config(dir.path(), &primary.stream_url, &reference.stream_url);
    let run = run_on(&cfg);
    primary.wait_for("subscribed to [\"GOOG\"]");
    reference.wait_for("subscribed to [\"GOOG\"]");
    let connected = wait_for_line(dir.path(), "cross_check_connected", |_| true);
    assert_eq!(
        connected["data"]["reference"],
        format!("feed:{}", reference.stream_url)
    );

    // 40 bars on both: they agree, and vigil trades on them.
    reference.step(40);
    primary.step(40);
    wait_for_line(dir.path(), "order_submitted", |_| true);

    // Bar 41: 5 % up on the source in use only.
    primary.post("/_faults/spike?symbol=GOOG&pct=5");
    primary.wait_for("fault spike");
    reference.step(1);
    primary.step(1);
    let on = wait_for_line(dir.path(), "symbol_quarantined", |_| true);
    assert_eq!(on["level"], "ERROR");
    assert_eq!(on["data"]["symbol"], "GOOG");
    assert_eq!(on["data"]["actor"], "cross_check");
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG_1d.csv");
    let rows: Vec<&str> = text.lines().collect();
    let close41: Decimal = rows[41]
        .split(',')
        .nth(4)
        .expect("close")
        .parse()
        .expect("dec");
    let reason = on["data"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "close {} from feed:{} and {close41} from the reference feed:{} are 5% apart (bound 2%)",
            close41 * Decimal::new(105, 2),
            primary.stream_url,
            reference.stream_url
        )),
        "{on:#}"
    );
    assert!(
        on["data"]["bar_time"]
            .as_str()
            .is_some_and(|t| t.starts_with(&rows[41][..10])),
        "{on:#}"
    );

    // Bars 42–44 agree: the third pair lifts the quarantine.
    reference.step(5);
    primary.step(5);
    let off = wait_for_line(dir.path(), "symbol_released", |_| true);
    assert_eq!(off["data"]["actor"], "cross_check");
    assert_eq!(off["level"], "WARN");

    // Bars 41–43 were withheld (42–43 only if the reference's bar 41 came after the
    // source's: checked on arrival, quarantined from then on); one disagreement (the Data
    // agent's figures in /status, refreshed each heartbeat).
    let addr = run.control.clone().expect("control address");
    let token = common::token(&dir.path().join("state").join("control.token"));
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (code, body) = common::http_get(&addr, "/status", &token);
        assert_eq!(code, 200, "{body}");
        let status: Value = serde_json::from_str(&body).expect("status is JSON");
        let data = status["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["agent"] == "data"))
            .map(|a| a["figures"].clone())
            .unwrap_or_default();
        let withheld = data["withheld"].as_u64().unwrap_or_default();
        if (2..=3).contains(&withheld) && data["disagreements"] == 1 && data["quarantined"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the data figures: {data:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    run.signal("-TERM");
    let out = run.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    assert!(log.iter().all(|l| l["event"] != "breaker_tripped"));
    assert!(log.iter().all(|l| l["event"] != "cross_check_failed"));
    // The alert fired.
    assert!(
        log.iter()
            .any(|l| l["event"] == "alert_firing" && l["data"]["rule"] == "symbol_quarantined"),
        "the alert fired"
    );
    // Nothing was decided in GOOG while it was in quarantine: no signal, no approval, no
    // order stamped after the quarantine and before the release.
    let (from, to) = (
        on["timestamp"].as_str().unwrap_or_default().to_string(),
        off["timestamp"].as_str().unwrap_or_default().to_string(),
    );
    assert!(from < to, "{from} {to}");
    for l in &log {
        let at = l["timestamp"].as_str().unwrap_or_default();
        let event = l["event"].as_str().unwrap_or_default();
        if ["signal_generated", "risk_approved", "order_submitted"].contains(&event) {
            assert!(
                !(at > from.as_str() && at < to.as_str()),
                "a decision while GOOG was in quarantine: {l:#}"
            );
        }
    }
}
