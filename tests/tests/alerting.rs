//! Alerting end to end: a rule breach in a real session becomes a Critical alert, which trips
//! the breaker (Risk then rejects every new order) and reaches a real webhook on 127.0.0.1;
//! the state survives a restart without paging again; an operator's silence quiets the
//! notice but not the breaker.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use vigil_config::VigilConfig;
use vigil_core::TradingState;
use vigil_session::{SessionOptions, SessionOutcome, run};
use vigil_store::StateStore as _;
use vigil_testkit::{HttpReceiver, Received};
use vigil_tests::{events, read_log};

/// Daily bars that zigzag every 6 days, so a fast EMA cross trades every few bars.
fn zigzag(dir: &Path, bars: usize) -> std::path::PathBuf {
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
    let mut price = 100.0_f64;
    for i in 0..bars {
        let step = if (i / 6) % 2 == 0 { 1.5 } else { -1.5 };
        let open = price;
        price += step;
        csv.push_str(&format!(
            "{day},{open:.2},{:.2},{:.2},{price:.2},1000000\n",
            open.max(price) + 0.5,
            open.min(price) - 0.5
        ));
        day = day.succ_opt().expect("next day");
    }
    let file = dir.join("ZIG_1d.csv");
    std::fs::write(&file, csv).expect("write bars");
    file
}

/// A paced replay (80 ms a bar, one bar a batch, as bars arrive live) sized at 12% a trade:
/// the first fill breaches the CRITICAL `trade_size_high` rule (a trade above 10% of
/// equity), and later signals come long after the breaker has had time to act.
fn config(dir: &Path, webhook: &str) -> VigilConfig {
    let text = format!(
        r#"
[data]
instruments = [{{ symbol = "ZIG", path = "{data}" }}]
speed = 1080000
batch_size = 1

[signal]
fast_span = 2
slow_span = 4

[risk]
max_position_pct = "0.30"
position_pct = "0.12"

[log]
dir = "{logs}"

[store]
path = "{store}"

[alerts.channels.webhook]
url = "{webhook}"
"#,
        data = zigzag(dir, 40).display(),
        logs = dir.join("logs").display(),
        store = dir.join("state.db").display(),
    );
    let file = dir.join("vigil.toml");
    std::fs::write(&file, text).expect("write config");
    VigilConfig::load(&file).expect("valid config")
}

fn session(cfg: VigilConfig) -> (SessionOutcome, Vec<Value>) {
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    let log = read_log(&outcome.log_dir);
    (outcome, log)
}

/// The alert notices the webhook received: (rule, severity, status).
fn notices(got: &[Received]) -> Vec<(String, String, String)> {
    got.iter()
        .map(Received::json)
        .filter(|v| v["kind"] == "alert")
        .map(|v| {
            let a = &v["alert"];
            (
                a["rule"].as_str().unwrap_or_default().to_string(),
                a["severity"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn store(path: &Path) -> (tokio::runtime::Runtime, vigil_store::Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt
        .block_on(vigil_store::Store::open(path))
        .expect("open store");
    (rt, store)
}

#[track_caller]
fn position(log: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    log.iter().position(pred).expect("line present")
}

#[test]
fn a_critical_alert_trips_the_breaker_risk_rejects_orders_and_a_restart_does_not_page_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HttpReceiver::start();
    let cfg = config(dir.path(), &hook.url("/hook"));

    let (outcome, log) = session(cfg.clone());
    let breach = position(&log, |v| {
        v["event"] == "threshold_breached" && v["data"]["rule"] == "trade_size_high"
    });
    assert_eq!(log[breach]["level"], "CRITICAL");
    assert_eq!(log[breach]["service"], "execution_agent");
    let firing = position(&log, |v| {
        v["event"] == "alert_firing" && v["data"]["rule"] == "trade_size_high"
    });
    assert_eq!(log[firing]["data"]["severity"], "CRITICAL");
    let trip = position(&log, |v| v["event"] == "breaker_tripped");
    assert_eq!(log[trip]["data"]["actor"], "alert:trade_size_high");
    assert!(breach < firing && firing < trip);
    let after = &log[trip..];
    assert_eq!(
        after
            .iter()
            .filter(|v| v["event"] == "risk_approved")
            .count(),
        0,
        "Risk approves nothing after the trip"
    );
    for v in after.iter().filter(|v| v["event"] == "order_submitted") {
        // At replay speed an order Risk approved before the trip can still be on its way.
        let approved = position(&log, |a| {
            a["event"] == "risk_approved" && a["trace_id"] == v["trace_id"]
        });
        assert!(approved < trip, "{v}");
    }
    let rejected: Vec<&Value> = after
        .iter()
        .filter(|v| v["event"] == "risk_rejected")
        .collect();
    assert!(!rejected.is_empty(), "later signals were rejected");
    assert_eq!(outcome.summary.trading_state, TradingState::Halted);
    assert!(
        rejected.iter().all(|v| v["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("halted"))),
        "{rejected:?}"
    );

    // The webhook got the Critical notice.
    let got = hook.taken();
    let n = notices(&got);
    assert!(
        n.contains(&("trade_size_high".into(), "critical".into(), "firing".into())),
        "{n:?}"
    );
    // The breaker's own alert is High: outside trading hours (daily bars are stamped at
    // midnight) it waits for the day's digest; Critical is never downgraded.
    assert!(
        events(&log, "alert_firing")
            .iter()
            .any(|v| v["data"]["rule"] == "breaker_tripped" && v["data"]["severity"] == "HIGH")
    );
    assert!(
        !n.iter().any(|(rule, _, _)| rule == "breaker_tripped"),
        "{n:?}"
    );
    let critical = got
        .iter()
        .map(Received::json)
        .find(|v| v["alert"]["rule"] == "trade_size_high")
        .expect("critical notice");
    assert!(
        critical["subject"]
            .as_str()
            .expect("subject")
            .starts_with("[CRITICAL]"),
        "{critical}"
    );
    assert!(
        critical["text"]
            .as_str()
            .expect("text")
            .contains("docs/runbooks/trade_size_high.md"),
        "{critical}"
    );
    let delivered = events(&log, "alert_delivered");
    assert!(
        delivered.iter().any(|v| v["data"]["channel"] == "webhook"),
        "delivery logged"
    );

    // The store has the alert and the notification log.
    let (rt, st) = store(&dir.path().join("state.db"));
    let saved = rt
        .block_on(st.alert_state())
        .expect("read state")
        .expect("saved");
    let state: vigil_alert::EngineState = serde_json::from_str(&saved.state).expect("state");
    assert!(state.alerts.iter().any(|a| a.rule == "trade_size_high"));
    let lines = rt
        .block_on(st.alert_log(&vigil_store::AlertLogQuery {
            rule: Some("trade_size_high".into()),
            ..Default::default()
        }))
        .expect("alert log");
    let kinds: Vec<&str> = lines.iter().map(|l| l.kind.as_str()).collect();
    assert!(kinds.contains(&"firing"), "{kinds:?}");
    assert!(kinds.contains(&"notified"), "{kinds:?}");
    rt.block_on(st.close());

    // A restart: the new process starts halted (the breaker is saved in the store), and
    // the same breach pages nobody again.
    let (outcome, log) = session(cfg);
    let start = log
        .iter()
        .rposition(|v| v["event"] == "session_started")
        .expect("second session");
    let log = &log[start..];
    let restored = position(log, |v| {
        v["event"] == "trading_state_changed" && v["data"]["actor"] == "restored"
    });
    assert_eq!(log[restored]["data"]["to"], "halted");
    assert!(
        log[restored]["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("alert:trade_size_high")),
        "{}",
        log[restored]
    );
    assert_eq!(outcome.summary.trading_state, TradingState::Halted);
    let again = notices(&hook.taken());
    assert!(
        !again.iter().any(|(_, _, status)| status == "firing"),
        "nobody is paged twice for the same alert: {again:?}"
    );
    let fired: Vec<&Value> = events(log, "alert_firing");
    assert!(
        !fired
            .iter()
            .any(|v| v["data"]["rule"] == "trade_size_high"
                || v["data"]["rule"] == "breaker_tripped"),
        "restored, not new: {fired:?}"
    );
}

#[test]
fn a_silence_made_while_vigil_is_stopped_quiets_the_notice_but_not_the_breaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HttpReceiver::start();
    let cfg = config(dir.path(), &hook.url("/hook"));
    let (rt, st) = store(&cfg.store.path);
    let now = chrono::Utc::now();
    let seq = rt
        .block_on(st.request(
            now,
            "ana",
            vigil_store::RequestKind::Silence,
            &json!({
                "matchers": {"rule": "trade_size_high"},
                "starts": (now - chrono::Duration::minutes(1)).to_rfc3339(),
                "ends": (now + chrono::Duration::hours(2)).to_rfc3339(),
                "reason": "testing the sizing change",
            }),
        ))
        .expect("request");
    rt.block_on(st.close());

    let (outcome, log) = session(cfg.clone());
    let applied = events(&log, "alert_request_applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["data"]["ok"], true);
    assert_eq!(applied[0]["data"]["result"], "s-1");
    assert_eq!(applied[0]["data"]["who"], "ana");
    let suppressed = events(&log, "alert_suppressed");
    assert!(
        suppressed
            .iter()
            .any(|v| v["data"]["rule"] == "trade_size_high"
                && v["data"]["why"]
                    .as_str()
                    .is_some_and(|w| w.contains("ana") && w.contains("testing the sizing change"))),
        "{suppressed:?}"
    );
    // Safety is not silenced.
    assert_eq!(outcome.summary.trading_state, TradingState::Halted);
    let n = notices(&hook.taken());
    assert!(
        !n.iter().any(|(rule, _, _)| rule == "trade_size_high"),
        "silenced: {n:?}"
    );

    let (rt, st) = store(&cfg.store.path);
    let req = rt
        .block_on(st.request_by_seq(seq))
        .expect("read")
        .expect("request");
    assert_eq!(req.ok, Some(true));
    assert_eq!(req.result.as_deref(), Some("s-1"));
    rt.block_on(st.close());
    // Nothing should still be on its way.
    assert!(
        hook.next(Duration::from_millis(1))
            .is_none_or(|r| r.json()["kind"] != "alert")
    );
}
