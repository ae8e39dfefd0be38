//! The routing table: every row's exact alert, and the table's own consistency.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::BUILT_IN_RULES;

fn at() -> DateTime<Utc> {
    "2024-01-16T15:00:00Z".parse().expect("time")
}

fn ev(service: &'static str, event: Event) -> LogEvent {
    LogEvent::new(at(), service, event)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn details(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn raised(input: Option<AlertInput>) -> Raise {
    match input {
        Some(AlertInput::Raise(r)) => r,
        other => panic!("expected a raise, got {other:?}"),
    }
}

fn happened(input: Option<AlertInput>) -> Raise {
    match input {
        Some(AlertInput::Happened(r)) => r,
        other => panic!("expected a raise-and-clear, got {other:?}"),
    }
}

fn cleared(rule: &str, service: &str, l: &[(&str, &str)]) -> Option<AlertInput> {
    Some(AlertInput::Clear {
        rule: rule.into(),
        service: service.into(),
        labels: labels(l),
    })
}

#[test]
fn a_threshold_breach_raises_its_rule_with_the_labels_it_logged() {
    let breach = ev("monitor_agent", Event::ThresholdBreached)
        .level(Level::Warn)
        .with("rule", "cpu_high")
        .with("metric", "cpu_usage_ratio")
        .with("label", "agent=signal, target=x")
        .with("value", 0.97)
        .with("threshold", 0.9)
        .with("op", ">")
        .with("for_s", 30u64);
    let r = raised(route(&breach));
    assert_eq!(r.rule, "cpu_high");
    assert_eq!(r.level, Level::Warn);
    assert_eq!(r.service, "monitor_agent");
    assert_eq!(r.labels, labels(&[("agent", "signal"), ("target", "x")]));
    assert_eq!(r.event, "cpu_usage_ratio 0.97 > 0.9 (rule cpu_high)");
    assert_eq!(
        r.details,
        details(&[
            ("Current value", "0.97"),
            ("Threshold", "> 0.9"),
            ("Held for", "30 s"),
            ("Where", "agent=signal, target=x"),
        ])
    );
    assert_eq!(
        r.you_need_to,
        "Check the figure named above now, then follow the runbook for this rule."
    );

    // No label: one alert for the rule, and no "Where".
    let bare = raised(route(&breach_without_label()));
    assert!(bare.labels.is_empty());
    assert_eq!(bare.details.len(), 3, "{:?}", bare.details);

    let recovered = ev("monitor_agent", Event::ThresholdRecovered)
        .with("rule", "cpu_high")
        .with("label", "agent=signal");
    assert_eq!(
        route(&recovered),
        cleared("cpu_high", "monitor_agent", &[("agent", "signal")])
    );
}

fn breach_without_label() -> LogEvent {
    ev("execution_agent", Event::ThresholdBreached)
        .with("rule", "pnl_low")
        .with("metric", "daily_pnl")
        .with("label", "")
        .with("value", -1200.0)
        .with("threshold", -1000.0)
        .with("op", "<")
        .with("for_s", 0u64)
}

#[test]
fn a_missed_heartbeat_pages_at_high_whatever_it_was_logged_at_and_clears_on_recovery() {
    let missed = ev("monitor_agent", Event::HeartbeatMissed)
        .level(Level::Critical)
        .with("agent", "regime")
        .with("last_heartbeat", "2030-01-01T00:00:02Z")
        .with("silent_ms", 6000u64)
        .with("timeout_ms", 5000u64);
    let r = raised(route(&missed));
    assert_eq!(
        (r.rule.as_str(), r.level),
        ("heartbeat_missed", Level::Error)
    );
    assert_eq!(r.labels, labels(&[("agent", "regime")]));
    assert_eq!(r.event, "regime agent sent no heartbeat for 6000 ms");
    assert_eq!(
        r.details,
        details(&[
            ("Agent", "regime"),
            ("Last heartbeat", "2030-01-01T00:00:02Z"),
            ("Timeout", "5000 ms"),
        ])
    );
    let back = ev("monitor_agent", Event::HeartbeatRecovered).with("agent", "regime");
    assert_eq!(
        route(&back),
        cleared("heartbeat_missed", "monitor_agent", &[("agent", "regime")])
    );
}

#[test]
fn faults_and_crashes_are_raised_and_cleared_at_once() {
    let failed = ev("monitor_agent", Event::AgentFailed)
        .level(Level::Critical)
        .with("agent", "data")
        .with("fatal", true)
        .with("error", "disk full");
    let r = happened(route(&failed));
    assert_eq!(
        (r.rule.as_str(), r.level),
        ("agent_failed", Level::Critical)
    );
    assert_eq!(r.event, "data agent failed: disk full");
    assert_eq!(
        r.details,
        details(&[("Agent", "data"), ("Error", "disk full"), ("Fatal", "true")])
    );

    let crashed = ev("supervisor", Event::AgentCrashed)
        .level(Level::Critical)
        .with("agent", "signal")
        .with("panic", "boom")
        .with("location", "signal.rs:1")
        .with("crashes_in_window", 1u64)
        .with("backoff_ms", 100u64);
    let r = happened(route(&crashed));
    assert_eq!((r.rule.as_str(), r.level), ("agent_crashed", Level::Error));
    assert_eq!(r.event, "signal agent crashed: boom");
    assert_eq!(
        r.details,
        details(&[
            ("Agent", "signal"),
            ("Panic", "boom"),
            ("Where", "signal.rs:1"),
            ("Crashes in window", "1"),
            ("Restart in", "100 ms"),
        ])
    );

    let looping = ev("monitor_agent", Event::RestartIntensityExceeded)
        .level(Level::Critical)
        .with("agent", "signal")
        .with("crashes_in_window", 3u64)
        .with("policy", "3 in 60 s")
        .with("panic", "boom")
        .with("action", "breaker tripped");
    let r = happened(route(&looping));
    assert_eq!(r.level, Level::Critical);
    assert_eq!(
        r.event,
        "signal agent is in a crash loop (3 crashes, 3 in 60 s): breaker tripped"
    );
}

#[test]
fn the_external_heartbeat_clears_only_when_it_says_recovered() {
    let failed = ev("monitor_agent", Event::ExternalHeartbeatFailed).with("error", "HTTP 500");
    let r = raised(route(&failed));
    assert_eq!(r.rule, "external_heartbeat_failed");
    assert_eq!(r.event, "outside heartbeat ping failed: HTTP 500");
    let recovered = ev("monitor_agent", Event::ExternalHeartbeatFailed)
        .level(Level::Info)
        .with("recovered", true);
    assert_eq!(
        route(&recovered),
        cleared("external_heartbeat_failed", "monitor_agent", &[])
    );
    // Only the boolean says so.
    let text = ev("monitor_agent", Event::ExternalHeartbeatFailed).with("recovered", "true");
    assert!(matches!(route(&text), Some(AlertInput::Raise(_))));
}

#[test]
fn the_drawdown_control_shows_ratios_as_percentages() {
    let engaged = ev("risk_agent", Event::DrawdownControlEngaged)
        .with("drawdown", Decimal::new(1234, 4))
        .with("line", Decimal::new(1, 1))
        .with("day_pnl", "-1234.00")
        .with("equity", "98766.00")
        .with("peak_equity", "100000.00")
        .with("actions", "cut AAPL");
    let r = raised(route(&engaged));
    assert_eq!(
        (r.rule.as_str(), r.level),
        ("drawdown_control_engaged", Level::Error)
    );
    assert_eq!(
        r.event,
        "drawdown 12.34% crossed the 10% control line: no new position, deleveraging"
    );
    assert_eq!(r.details[0], ("Drawdown".into(), "12.34%".into()));
    assert_eq!(r.details[1], ("Control line".into(), "10%".into()));
    assert_eq!(ratio_pct("n/a"), "n/a");
    assert_eq!(
        route(&ev("risk_agent", Event::DrawdownControlRearmed)),
        cleared("drawdown_control_engaged", "risk_agent", &[])
    );
}

#[test]
fn a_data_outage_is_critical_and_a_gap_is_an_alert_only_at_error() {
    let outage = ev("data_agent", Event::DataOutage)
        .level(Level::Error)
        .with("provider", "alpaca")
        .with("sources", "alpaca,csv")
        .with("error", "timeout")
        .with("resume", "verify");
    let r = raised(route(&outage));
    assert_eq!((r.rule.as_str(), r.level), ("data_outage", Level::Critical));
    assert_eq!(r.event, "no market data source is healthy: trading halted");

    let gap = |level| {
        ev("data_agent", Event::DataGap)
            .level(level)
            .with("symbol", "AAPL")
            .with("missing", 2u64)
            .with("after", "2024-01-10")
            .with("before", "2024-01-15")
            .with("provider", "csv")
            .with("sessions", "2024-01-11,2024-01-12")
    };
    let r = happened(route(&gap(Level::Error)));
    assert_eq!(r.labels, labels(&[("symbol", "AAPL")]));
    assert_eq!(
        r.event,
        "AAPL: 2 session(s) with no bar between 2024-01-10 and 2024-01-15"
    );
    assert_eq!(route(&gap(Level::Warn)), None);
}

#[test]
fn the_post_close_phase_asks_for_the_day_summary() {
    let phase = |name: &'static str, session: &'static str| {
        ev("data_agent", Event::PhaseChanged)
            .with("phase", name)
            .with("session", session)
    };
    assert_eq!(
        route(&phase("post_close", "2024-01-16")),
        Some(AlertInput::PostClose(Some(
            NaiveDate::from_ymd_opt(2024, 1, 16).expect("date")
        )))
    );
    assert_eq!(
        route(&phase("post_close", "today")),
        Some(AlertInput::PostClose(None))
    );
    assert_eq!(route(&phase("open", "2024-01-16")), None);
    assert_eq!(
        route(&phase("premarket_validation", "2024-01-16")),
        Some(AlertInput::PreOpen(Some(
            NaiveDate::from_ymd_opt(2024, 1, 16).expect("date")
        )))
    );
    // Marked once the session had begun (a start at 11:00): no digest "before the open".
    assert_eq!(
        route(&phase("premarket_validation", "2024-01-16").with("caught_up", true)),
        None
    );
}

#[test]
fn events_no_row_names_are_not_alerts() {
    assert_eq!(route(&ev("data_agent", Event::SessionStarted)), None);
}

#[test]
fn a_channel_that_gave_up_raises_alert_undeliverable_until_it_delivers() {
    let r = undeliverable("monitor_agent", "slack", "HTTP 500".into());
    assert_eq!((r.rule.as_str(), r.level), (UNDELIVERABLE, Level::Error));
    assert_eq!(r.labels, labels(&[("channel", "slack")]));
    assert_eq!(r.event, "the slack channel cannot deliver notices");
    assert_eq!(
        r.details,
        details(&[("Channel", "slack"), ("Error", "HTTP 500")])
    );
    assert_eq!(
        Some(delivered_again("monitor_agent", "slack")),
        cleared(UNDELIVERABLE, "monitor_agent", &[("channel", "slack")])
    );
}

#[test]
fn every_built_in_rule_is_raised_by_a_row_and_every_named_row_is_built_in() {
    for rule in BUILT_IN_RULES.iter().filter(|r| **r != UNDELIVERABLE) {
        assert!(
            ROUTES.iter().any(|r| r.rule == Rule::Named(rule)
                && matches!(r.action, Action::Raise | Action::Happened)),
            "{rule} is raised by no row"
        );
    }
    for r in ROUTES {
        if let (Rule::Named(name), Action::Raise | Action::Happened | Action::Clear) =
            (r.rule, r.action)
        {
            assert!(BUILT_IN_RULES.contains(&name), "{name} is not built in");
        }
    }
}

#[test]
fn every_raising_row_says_what_to_do_and_its_templates_are_well_formed() {
    for r in ROUTES {
        let raises = matches!(r.action, Action::Raise | Action::Happened);
        assert_eq!(raises, !r.headline.is_empty(), "{:?}", r.event);
        assert_eq!(raises, !r.you_need_to.is_empty(), "{:?}", r.event);
        for t in std::iter::once(r.headline).chain(r.details.iter().map(|d| d.value)) {
            let mut open = false;
            for c in t.chars() {
                match c {
                    '{' => {
                        assert!(!open, "{t}");
                        open = true;
                    }
                    '}' => {
                        assert!(open, "{t}");
                        open = false;
                    }
                    _ => {}
                }
            }
            assert!(!open, "{t}");
        }
    }
}

#[test]
fn a_template_fills_fields_and_leaves_missing_ones_empty() {
    let e = ev("x", Event::SessionStarted).with("a", "1");
    assert_eq!(fill("a={a} b={b}.", &e), "a=1 b=.");
    assert_eq!(fill("no placeholder", &e), "no placeholder");
    assert_eq!(fill("open {a", &e), "open {a");
}

#[test]
fn routed_events_lists_each_event_once() {
    let events = routed_events();
    assert!(events.contains(&Event::ExternalHeartbeatFailed));
    let mut unique = events.clone();
    unique.dedup();
    assert_eq!(unique.len(), events.len());
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == Event::ExternalHeartbeatFailed)
            .count(),
        1
    );
}

#[test]
fn a_written_day_report_is_sent_with_its_files() {
    let written = ev("data_agent", Event::DayReportWritten)
        .with("session", "2024-01-16")
        .with("headline", "P&L +1 today")
        .with("text", "/r/day-2024-01-16.txt")
        .with("json", "/r/day-2024-01-16.json")
        .with("chart", "");
    assert_eq!(
        route(&written),
        Some(AlertInput::DayReport(crate::routing::ReportFiles {
            date: NaiveDate::from_ymd_opt(2024, 1, 16),
            headline: "P&L +1 today".into(),
            text: "/r/day-2024-01-16.txt".into(),
            chart: String::new(),
            json: "/r/day-2024-01-16.json".into(),
        }))
    );
}
