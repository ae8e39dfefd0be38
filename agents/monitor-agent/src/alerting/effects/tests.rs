//! Alerting without actix: what it hears becomes the steps the actor carries out.

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::json;
use vigil_alert::routing::{AlertInput, routed_events};
use vigil_alert::{Channels, DeliveryError, DeliveryOutcome, MessageKind, Raise, Severity};
use vigil_config::AlertsConfig;
use vigil_store::{AlertRequest, RequestKind};
use vigil_testkit::timestamp as t;

use super::*;
use crate::alerting::{AlertLinks, TAPPED};

fn alerting() -> Alerting {
    Alerting::new(AlertLinks {
        config: AlertsConfig::default(),
        channels: Channels::new(),
        store: None,
        restored: None,
        pending: Vec::new(),
    })
}

fn at() -> Moment {
    Moment {
        wall: t("2030-01-01T00:00:00Z"),
        market: t("2024-01-16T15:00:00Z"),
        open: true,
    }
}

fn raise(rule: &str, level: Level) -> AlertInput {
    AlertInput::Raise(Raise {
        rule: rule.into(),
        level,
        service: "data_agent".into(),
        labels: Default::default(),
        event: format!("{rule} happened"),
        details: Vec::new(),
        you_need_to: "act".into(),
    })
}

fn logged(steps: &[Step]) -> Vec<Event> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Log(ev) => Some(ev.event),
            _ => None,
        })
        .collect()
}

#[test]
fn a_critical_alert_fires_counts_and_asks_for_a_halt() {
    let mut al = alerting();
    let steps = al.hear(raise("data_outage", Level::Critical), at());
    assert!(matches!(
        steps.first(),
        Some(Step::Count(Count::Fired(Severity::Critical)))
    ));
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::Halt { rule, reason } if rule == "data_outage" && reason == "data_outage happened"
    )));
    let events = logged(&steps);
    assert_eq!(events.first(), Some(&Event::AlertFiring));
    assert!(events.contains(&Event::AlertNotified), "{events:?}");
    // Nothing is configured: the notice reached nobody, and the log says so.
    let notified = steps.iter().find_map(|s| match s {
        Step::Log(ev) if ev.event == Event::AlertNotified => Some(ev),
        _ => None,
    });
    assert_eq!(notified.map(|ev| ev.level), Some(Level::Warn));
}

#[test]
fn every_alert_carries_the_latest_equity() {
    let mut al = alerting();
    al.equity = Some(("101000".into(), "1000".into()));
    al.hear(raise("orders_paused", Level::Error), at());
    let active = al.engine.active();
    let details = &active.first().expect("an alert").details;
    assert!(
        details.contains(&("Equity".into(), "101000".into())),
        "{details:?}"
    );
    assert!(details.contains(&("Today's P&L".into(), "1000".into())));
}

#[test]
fn the_post_close_summary_goes_out_once_per_session_date() {
    let mut al = alerting();
    al.hear(raise("pnl_low", Level::Warn), at());
    let date = NaiveDate::from_ymd_opt(2024, 1, 16);
    let first = al.hear(AlertInput::PostClose(date), at());
    assert!(logged(&first).contains(&Event::AlertNotified), "{first:?}");
    let again = al.hear(AlertInput::PostClose(date), at());
    assert!(!logged(&again).contains(&Event::AlertNotified), "{again:?}");
}

#[test]
fn what_follows_the_summary_goes_out_before_the_next_open_once() {
    let mut al = alerting();
    let (friday, monday) = (
        NaiveDate::from_ymd_opt(2024, 1, 12),
        NaiveDate::from_ymd_opt(2024, 1, 16),
    );
    let closed = Moment {
        open: false,
        ..at()
    };
    al.hear(raise("pnl_low", Level::Warn), at());
    assert!(logged(&al.hear(AlertInput::PostClose(friday), at())).contains(&Event::AlertNotified));
    // Nothing since the summary: no digest before the open.
    let empty = al.hear(AlertInput::PreOpen(monday), closed);
    assert!(!logged(&empty).contains(&Event::AlertNotified), "{empty:?}");
    al.hear(raise("cpu_high", Level::Warn), closed);
    let first = al.hear(AlertInput::PreOpen(monday), closed);
    assert!(
        !logged(&first).contains(&Event::AlertNotified),
        "once per date: {first:?}"
    );
    let tuesday = NaiveDate::from_ymd_opt(2024, 1, 17);
    let next = al.hear(AlertInput::PreOpen(tuesday), closed);
    assert!(logged(&next).contains(&Event::AlertNotified), "{next:?}");
}

#[test]
fn nothing_moves_on_a_quiet_tick() {
    let mut al = alerting();
    assert!(al.tick(at()).is_empty());
}

fn request(seq: i64, kind: RequestKind, body: serde_json::Value) -> AlertRequest {
    AlertRequest {
        seq,
        at: t("2030-01-01T00:00:00Z"),
        who: "ana".into(),
        kind,
        body,
        applied_at: None,
        ok: None,
        result: None,
    }
}

#[test]
fn a_request_is_applied_once_and_a_refused_one_says_why() {
    let mut al = alerting();
    let steps = al.apply_request(request(1, RequestKind::Ack, json!({"id": "a-0"})), at());
    let applied = steps.iter().find_map(|s| match s {
        Step::Log(ev) if ev.event == Event::AlertRequestApplied => Some(ev),
        _ => None,
    });
    let applied = applied.expect("logged");
    assert_eq!(
        applied.get("ok").map(ToString::to_string),
        Some("false".into())
    );
    assert_eq!(al.lines.len(), 0, "handed to the (absent) store");
    assert!(
        al.apply_request(request(1, RequestKind::Ack, json!({"id": "a-0"})), at())
            .is_empty(),
        "the same request twice"
    );

    let silence = json!({
        "matchers": {"rule": "cpu_high"},
        "starts": "2030-01-01T00:00:00Z",
        "ends": "2030-01-01T01:00:00Z",
        "reason": "deploy",
    });
    let steps = al.apply_request(request(2, RequestKind::Silence, silence), at());
    let result = steps.iter().find_map(|s| match s {
        Step::Log(ev) if ev.event == Event::AlertRequestApplied => ev.get("result"),
        _ => None,
    });
    let result = result.map(ToString::to_string).unwrap_or_default();
    assert!(result.starts_with("s-"), "{result}");
    assert_eq!(al.engine.silences(at().wall).len(), 1);
}

fn outcome(result: Result<(), DeliveryError>, next: NextStep) -> DeliveryOutcome {
    DeliveryOutcome {
        delivery_id: 1,
        channel: "slack".into(),
        kind: MessageKind::Alert,
        alert_id: Some("a-1".into()),
        attempt: 3,
        result,
        elapsed: Duration::from_millis(5),
        next,
    }
}

#[test]
fn a_channel_that_gave_up_raises_alert_undeliverable_and_clears_when_it_delivers() {
    let mut al = alerting();
    let failed = DeliveryError::Unreachable {
        channel: "slack".into(),
        target: "hooks.example".into(),
        reason: "refused".into(),
    };
    let steps = al.delivered(outcome(Err(failed), NextStep::GaveUp), at());
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Stderr(line) if line.contains("a notice reached nobody")))
    );
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::Count(Count::Delivery { channel, outcome: "failed" }) if channel == "slack"
    )));
    let rules: Vec<&str> = al.engine.active().iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules, ["alert_undeliverable"]);

    let steps = al.delivered(outcome(Ok(()), NextStep::Delivered), at());
    assert_eq!(logged(&steps).first(), Some(&Event::AlertDelivered));
    let phases: Vec<_> = al.engine.active().iter().map(|a| a.cleared_at).collect();
    assert!(phases.iter().all(Option::is_some), "cleared: {phases:?}");
}

#[test]
fn the_tap_carries_every_routed_event_the_monitor_does_not_find_itself() {
    // The Monitor's own findings reach alerting directly (see `MonitorAgent::emit`). Threshold
    // breaches are tapped: other agents evaluate rules too, and the Monitor's own lines are
    // skipped by service when the tap hands them back.
    let own = [
        Event::HeartbeatMissed,
        Event::HeartbeatRecovered,
        Event::AgentFailed,
        Event::RestartIntensityExceeded,
        Event::LogSilent,
        Event::LogResumed,
        Event::ExternalHeartbeatFailed,
    ];
    // Logged and routed by the fleet's central monitor (`vigil fleet watch`), never by a node.
    let fleet_watch = [
        Event::FleetNodeLost,
        Event::FleetNodeBack,
        Event::FleetNodeStopped,
        Event::FleetLinesMissing,
        Event::FleetChainBroken,
        Event::FleetStreamStalled,
        Event::FleetStreamResumed,
        Event::FleetNodeAlert,
        Event::FleetWatchFailed,
        Event::FleetWatchRecovered,
    ];
    for event in routed_events() {
        if fleet_watch.contains(&event) {
            assert!(!TAPPED.contains(&event), "{event:?}: no node logs it");
            continue;
        }
        assert_ne!(
            own.contains(&event),
            TAPPED.contains(&event),
            "{event:?}: either the Monitor finds it or the tap carries it"
        );
    }
    for event in TAPPED {
        assert!(
            routed_events().contains(event),
            "{event:?} is tapped but routes nowhere"
        );
    }
}

fn report_files(dir: &std::path::Path, chart: bool) -> vigil_alert::routing::ReportFiles {
    let text = dir.join("day-2024-01-16.txt");
    std::fs::write(&text, "Day report for the 2024-01-16 session\n").expect("text");
    let png = dir.join("day-2024-01-16.png");
    if chart {
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n").expect("png");
    }
    vigil_alert::routing::ReportFiles {
        date: NaiveDate::from_ymd_opt(2024, 1, 16),
        headline: "P&L +1 today, 0 fills, 0 alerts".into(),
        text: text.display().to_string(),
        chart: png.display().to_string(),
        json: dir.join("day-2024-01-16.json").display().to_string(),
    }
}

#[test]
fn a_written_day_report_is_read_with_its_chart_for_the_channels() {
    let dir = tempfile::tempdir().expect("dir");
    let files = report_files(dir.path(), true);
    let date = files.date.expect("date");
    let (report, unread) = read_report(&files, date);
    assert!(unread.is_empty(), "{unread:?}");
    assert_eq!(report.text, "Day report for the 2024-01-16 session\n");
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.images[0].name, "equity");
    assert_eq!(report.images[0].png, b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        report.files,
        vec![files.json.clone(), files.text, files.chart]
    );
    // Heard: handed to the digest's channels (none configured here: the log says so).
    let steps = alerting().hear(AlertInput::DayReport(report_files(dir.path(), true)), at());
    let notified = steps.iter().find_map(|s| match s {
        Step::Log(ev) if ev.event == Event::AlertNotified => Some(ev),
        _ => None,
    });
    assert_eq!(
        notified
            .and_then(|ev| ev.get("status"))
            .map(ToString::to_string),
        Some("day report of 2024-01-16".into())
    );
}

#[test]
fn a_day_report_whose_chart_is_gone_is_sent_saying_so_and_logged() {
    let dir = tempfile::tempdir().expect("dir");
    let files = report_files(dir.path(), false);
    let (report, unread) = read_report(&files, files.date.expect("date"));
    assert_eq!(unread.len(), 1);
    assert!(
        unread[0].contains("cannot read the day report's chart"),
        "{unread:?}"
    );
    assert!(report.text.contains("cannot read the day report's chart"));
    assert!(report.images.is_empty());
    let steps = alerting().hear(AlertInput::DayReport(files), at());
    let events = logged(&steps);
    assert_eq!(
        events.first(),
        Some(&Event::MonitorProbeFailed),
        "{events:?}"
    );
    assert!(events.contains(&Event::AlertNotified), "{events:?}");
}
