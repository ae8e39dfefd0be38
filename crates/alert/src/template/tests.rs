//! Tests of `template`.

use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;
use crate::model::Severity;

/// The seed's example: a Critical daily-drawdown alert.
pub(crate) fn drawdown() -> Notification {
    Notification {
        alert_id: "a-3f9c2b1e".into(),
        fingerprint: "9f2c4e7a1b3d5f60718293a4b5c6d7e8".into(),
        severity: Severity::Critical,
        status: AlertStatus::Firing,
        rule: "daily_drawdown".into(),
        service: "risk_agent".into(),
        event: "Daily drawdown 10.2% exceeds the 10% control line".into(),
        occurred_at: Utc
            .with_ymd_and_hms(2024, 1, 15, 19, 32, 15)
            .single()
            .expect("valid time"),
        details: vec![
            ("Current drawdown".into(), "10.2%".into()),
            ("Threshold".into(), "10%".into()),
            ("Today's P&L".into(), "-$10,234".into()),
            ("Equity".into(), "$89,766".into()),
        ],
        actions_taken: vec!["Circuit breaker tripped; new orders are rejected".into()],
        you_need_to: "Check positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`".into(),
        runbook: "docs/runbooks/daily_drawdown.md".into(),
        dashboard: None,
        repeats: 0,
        labels: BTreeMap::from([
            ("rule".into(), "daily_drawdown".into()),
            ("service".into(), "risk_agent".into()),
        ]),
    }
}

#[test]
fn renders_a_firing_alert_exactly_as_the_seed() {
    let r = render(&Message::Alert(Box::new(drawdown())));
    assert_eq!(r.subject, "[CRITICAL] Trading System Alert");
    assert_eq!(
        r.text,
        "[CRITICAL] Trading System Alert
Time: 2024-01-15 14:32:15 ET
Service: risk_agent
Event: Daily drawdown 10.2% exceeds the 10% control line

Details:
- Current drawdown: 10.2%
- Threshold: 10%
- Today's P&L: -$10,234
- Equity: $89,766

Actions taken:
- Circuit breaker tripped; new orders are rejected

You need to:
Check positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`

Runbook: docs/runbooks/daily_drawdown.md
Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)
"
    );
}

#[test]
fn shows_the_dashboard_and_repeats_when_set() {
    let mut n = drawdown();
    n.dashboard = Some("http://grafana.local/d/vigil".into());
    n.repeats = 3;
    let r = render(&Message::Alert(Box::new(n)));
    assert!(
        r.text.ends_with(
            "Runbook: docs/runbooks/daily_drawdown.md
Dashboard: http://grafana.local/d/vigil
Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)
Repeated 3 more times since the last notice
"
        ),
        "{}",
        r.text
    );
    let mut one = drawdown();
    one.repeats = 1;
    let r = render(&Message::Alert(Box::new(one)));
    assert!(
        r.text
            .ends_with("Repeated 1 more time since the last notice\n"),
        "{}",
        r.text
    );
}

#[test]
fn resolved_and_acknowledged_keep_the_original_severity() {
    let mut n = drawdown();
    n.status = AlertStatus::Resolved;
    n.actions_taken.clear();
    n.details.clear();
    n.you_need_to.clear();
    n.event = "Daily drawdown 4.1% is back under the 10% control line".into();
    let r = render(&Message::Alert(Box::new(n.clone())));
    assert_eq!(r.subject, "[RESOLVED] Trading System Alert (CRITICAL)");
    assert_eq!(
        r.text,
        "[RESOLVED] Trading System Alert (CRITICAL)
Time: 2024-01-15 14:32:15 ET
Service: risk_agent
Event: Daily drawdown 4.1% is back under the 10% control line

Runbook: docs/runbooks/daily_drawdown.md
Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)
"
    );
    n.status = AlertStatus::Acknowledged;
    assert_eq!(
        alert_subject(&n),
        "[ACKNOWLEDGED] Trading System Alert (CRITICAL)"
    );
}

#[test]
fn time_is_new_york_time_in_summer_too() {
    let july = Utc
        .with_ymd_and_hms(2024, 7, 1, 13, 30, 0)
        .single()
        .expect("valid time");
    assert_eq!(format_et(july), "2024-07-01 09:30:00 ET");
}

#[test]
fn a_short_fingerprint_is_shown_whole() {
    assert_eq!(short_fingerprint("9f2c"), "9f2c");
}

#[test]
fn renders_a_digest_one_or_two_lines_per_item() {
    let date = NaiveDate::from_ymd_opt(2024, 1, 15).expect("date");
    let mut low = drawdown();
    low.severity = Severity::Low;
    low.alert_id = "a-1".into();
    low.service = "data_agent".into();
    low.event = "Quote feed is 40 s stale".into();
    low.runbook = "docs/runbooks/stale_data.md".into();
    low.repeats = 2;
    low.occurred_at = Utc
        .with_ymd_and_hms(2024, 1, 15, 14, 45, 0)
        .single()
        .expect("valid time");
    let mut late = drawdown();
    late.status = AlertStatus::Resolved;
    late.alert_id = "a-2".into();
    late.runbook.clear();
    late.occurred_at = Utc
        .with_ymd_and_hms(2024, 1, 16, 5, 0, 0)
        .single()
        .expect("valid time");
    let r = render(&Message::Digest {
        title: "Daily alert digest".into(),
        date,
        items: vec![low, late],
    });
    assert_eq!(r.subject, "Daily alert digest: 2024-01-15 (2 alerts)");
    assert_eq!(
        r.text,
        "Daily alert digest: 2024-01-15 (2 alerts)

- 09:45:00 ET [LOW] data_agent: Quote feed is 40 s stale
  Alert a-1; runbook docs/runbooks/stale_data.md; repeated 2 more times
- 2024-01-16 00:00:00 ET [RESOLVED CRITICAL] risk_agent: Daily drawdown 10.2% exceeds the 10% control line
  Alert a-2
"
    );
    let empty = render(&Message::Digest {
        title: "Daily alert digest".into(),
        date,
        items: vec![],
    });
    assert_eq!(
        empty.text,
        "Daily alert digest: 2024-01-15 (0 alerts)\n\nNo alerts.\n"
    );
}

#[test]
fn a_test_message_says_it_is_a_test_and_names_the_channel() {
    let at = Utc
        .with_ymd_and_hms(2024, 1, 15, 19, 32, 15)
        .single()
        .expect("valid time");
    let r = render(&Message::Test {
        channel: "slack".into(),
        at,
    });
    assert_eq!(r.subject, "[TEST] Trading System Alert test (slack)");
    assert_eq!(
        r.text,
        "[TEST] Trading System Alert test (slack)
This is a test message from vigil for the channel \"slack\", sent at 2024-01-15 14:32:15 ET.
If you can read it, the channel works. Nothing needs to be done.
"
    );
}

#[test]
fn sms_is_short_and_bounded() {
    let m = Message::Alert(Box::new(drawdown()));
    assert_eq!(
        sms_text(&m),
        "[CRITICAL] risk_agent: Daily drawdown 10.2% exceeds the 10% control line. Alert a-3f9c2b1e"
    );
    let mut long = drawdown();
    long.event = "x".repeat(5000);
    let text = sms_text(&Message::Alert(Box::new(long)));
    assert_eq!(text.chars().count(), SMS_MAX_CHARS);
    assert!(text.ends_with('…'));
}

#[test]
fn spoken_text_reads_the_service_as_words() {
    let m = Message::Alert(Box::new(drawdown()));
    assert_eq!(
        spoken_text(&m),
        "Vigil trading system alert. Severity critical. Service risk agent. Daily drawdown 10.2% exceeds the 10% control line. Alert a-3f9c2b1e."
    );
}
