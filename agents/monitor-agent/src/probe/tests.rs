//! Measurement without actix: the status, readiness, the log's pulse and the outside ping.

use vigil_core::TradingState;
use vigil_log::Value;
use vigil_messages::Backlogs;
use vigil_monitoring::HealthBoard;
use vigil_testkit::timestamp as t;

use super::*;
use crate::health::HealthLinks;

fn health(dir: &std::path::Path) -> Health {
    let links = HealthLinks {
        board: HealthBoard::new(),
        backlogs: Backlogs::default(),
        pings: Vec::new(),
        calendar: None,
        log_dir: dir.to_path_buf(),
        disk_path: dir.to_path_buf(),
        source_name: "feed".into(),
        venue_name: "paper".into(),
    };
    Health::new(&MonitorConfig::default(), links, t("2030-01-01T00:00:00Z"))
}

fn session() -> Session<'static> {
    Session {
        name: "test",
        started_at: t("2030-01-01T00:00:00Z"),
        trading_state: TradingState::Active,
    }
}

#[test]
fn the_status_names_every_agent_and_a_missing_one_is_unhealthy() {
    let dir = tempfile::tempdir().expect("dir");
    let h = health(dir.path());
    let start = t("2030-01-01T00:00:00Z");
    let mut roster = Roster::new(start);
    let now = t("2030-01-01T00:00:10Z");
    roster.check(now, 5_000, now);
    let st = h.status(&roster, session(), now, t("2024-01-16T15:00:00Z"));
    assert_eq!(st.session, "test");
    assert_eq!(st.trading_state, "active");
    assert_eq!(st.agents.len(), 5);
    assert!(
        st.agents
            .iter()
            .all(|a| !a.healthy && a.heartbeat_age_ms == 10_000)
    );
    assert!(!st.market_open, "no calendar: closed");
}

#[test]
fn readiness_is_announced_only_when_it_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let mut h = health(dir.path());
    let roster = Roster::new(t("2030-01-01T00:00:00Z"));
    let st = h.status(
        &roster,
        session(),
        t("2030-01-01T00:00:01Z"),
        t("2024-01-16T15:00:00Z"),
    );
    // Nothing connected: not ready, and it was not ready before either.
    assert_eq!(h.readiness(&st), None);
    h.was_ready = true;
    let line = h.readiness(&st).expect("announced");
    assert!(line.starts_with("vigil: not ready to trade: "), "{line}");
    assert_eq!(h.readiness(&st), None);
}

#[test]
fn the_pulse_line_says_why_vigil_is_not_ready() {
    let dir = tempfile::tempdir().expect("dir");
    let h = health(dir.path());
    let roster = Roster::new(t("2030-01-01T00:00:00Z"));
    let st = h.status(
        &roster,
        session(),
        t("2030-01-01T00:00:01Z"),
        t("2024-01-16T15:00:00Z"),
    );
    let ev = snapshot(&st, None, t("2024-01-16T15:00:00Z"));
    assert_eq!(ev.event, Event::HealthSnapshot);
    assert_eq!(ev.get("ready"), Some(&Value::Bool(false)));
    assert!(ev.get("not_ready").is_some());
    assert!(ev.get("equity").is_none(), "no figure from Execution yet");
    let equity = rust_decimal::Decimal::new(1_012_345, 2);
    let ev = snapshot(&st, Some(equity), t("2024-01-16T15:00:00Z"));
    assert_eq!(ev.get("equity"), Some(&Value::Dec(equity)));
}

#[test]
fn the_outside_ping_runs_one_at_a_time_and_reports_failure_and_recovery_once() {
    let dir = tempfile::tempdir().expect("dir");
    let mut h = health(dir.path());
    let roster = Roster::new(t("2030-01-01T00:00:00Z"));
    let stamp = t("2024-01-16T15:00:00Z");
    assert!(h.ping_due(&roster));
    assert!(!h.ping_due(&roster), "one under way");
    let failed = h.external_pinged(Err("HTTP 500".into()), stamp);
    assert_eq!(
        failed.map(|e| e.event),
        Some(Event::ExternalHeartbeatFailed)
    );
    assert!(h.ping_due(&roster));
    let back = h.external_pinged(Ok(()), stamp).expect("recovered");
    assert_eq!(back.get("recovered"), Some(&Value::Bool(true)));
    assert!(h.ping_due(&roster));
    assert!(h.external_pinged(Ok(()), stamp).is_none(), "nothing to say");
}

#[test]
fn a_failing_probe_is_reported_once_until_it_works_again() {
    let missing = std::path::Path::new("/nonexistent/vigil-log-dir");
    let mut h = health(missing);
    let roster = Roster::new(t("2030-01-01T00:00:00Z"));
    let cfg = MonitorConfig::default();
    let now = t("2030-01-01T00:00:01Z");
    let first = h.round(&cfg, &roster, now, t("2024-01-16T15:00:00Z"));
    let failed = |r: &Round| {
        r.events
            .iter()
            .filter(|e| e.event == Event::MonitorProbeFailed)
            .count()
    };
    assert!(failed(&first) >= 1, "{:?}", first.events);
    let second = h.round(&cfg, &roster, now, t("2024-01-16T15:00:00Z"));
    assert_eq!(failed(&second), 0, "{:?}", second.events);
}
