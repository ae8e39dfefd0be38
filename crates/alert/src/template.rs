//! The words of a notification: one plain-text rendering that email uses whole and the other
//! channels build on, plus the short forms for SMS and for a voice call.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;

use crate::model::{AlertStatus, Message, Notification, Report};

/// A message rendered as text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rendered {
    /// The subject line (an email's subject, a chat message's header).
    pub subject: String,
    /// The whole text, starting with the subject line and ending with a newline.
    pub text: String,
}

/// The title every alert notice carries.
const TITLE: &str = "Trading System Alert";

/// Renders a message as a subject and a plain-text body.
///
/// An alert reads (lines without a value are left out):
///
/// ```text
/// [CRITICAL] Trading System Alert
/// Time: 2024-01-15 14:32:15 ET
/// Service: risk_agent
/// Event: Daily drawdown 10.2% exceeds the 10% control line
///
/// Details:
/// - Current drawdown: 10.2%
///
/// Actions taken:
/// - Circuit breaker tripped; new orders are rejected
///
/// You need to:
/// Check positions and the venue, then reset the breaker
///
/// Runbook: docs/runbooks/daily_drawdown.md
/// Dashboard: http://grafana.local/d/vigil
/// Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)
/// Repeated 2 more times since the last notice
/// ```
pub fn render(message: &Message) -> Rendered {
    match message {
        Message::Alert(n) => render_alert(n),
        Message::Digest { title, date, items } => render_digest(title, *date, items),
        Message::Test { channel, at } => render_test(channel, *at),
        Message::Report(r) => render_report(r),
    }
}

/// `Day report: 2024-01-16: P&L +1,234.50, 12 fills, max drawdown 0.41%`.
pub(crate) fn report_subject(r: &Report) -> String {
    format!("Day report: {}: {}", r.date, r.headline)
}

fn render_report(r: &Report) -> Rendered {
    let subject = report_subject(r);
    let mut lines = vec![subject.clone(), String::new()];
    lines.extend(r.text.trim_end().lines().map(str::to_string));
    if !r.files.is_empty() {
        lines.push(String::new());
        lines.push(format!("Stored: {}", r.files.join(", ")));
    }
    Rendered {
        subject,
        text: join_lines(lines),
    }
}

/// The subject of one alert's notice: `[CRITICAL] Trading System Alert` while firing,
/// `[ACKNOWLEDGED] Trading System Alert (CRITICAL)` and `[RESOLVED] Trading System Alert
/// (CRITICAL)` after.
pub fn alert_subject(n: &Notification) -> String {
    match n.status {
        AlertStatus::Firing => format!("[{}] {TITLE}", n.severity),
        AlertStatus::Acknowledged => format!("[ACKNOWLEDGED] {TITLE} ({})", n.severity),
        AlertStatus::Resolved => format!("[RESOLVED] {TITLE} ({})", n.severity),
    }
}

/// `CRITICAL`, `ACKNOWLEDGED CRITICAL` or `RESOLVED CRITICAL`: the severity, with the status
/// when the alert is no longer simply firing.
pub(crate) fn status_label(n: &Notification) -> String {
    match n.status {
        AlertStatus::Firing => n.severity.as_str().to_string(),
        AlertStatus::Acknowledged => format!("ACKNOWLEDGED {}", n.severity),
        AlertStatus::Resolved => format!("RESOLVED {}", n.severity),
    }
}

/// A time in New York, as people at a US desk read it: `2024-01-15 14:32:15 ET`.
pub fn format_et(at: DateTime<Utc>) -> String {
    at.with_timezone(&New_York)
        .format("%Y-%m-%d %H:%M:%S ET")
        .to_string()
}

/// The first 12 characters of a long fingerprint followed by `…`; a short one whole.
pub(crate) fn short_fingerprint(fingerprint: &str) -> String {
    if fingerprint.chars().count() <= 16 {
        fingerprint.to_string()
    } else {
        let head: String = fingerprint.chars().take(12).collect();
        format!("{head}…")
    }
}

/// `Repeated 1 more time since the last notice`, or `None` without repeats.
pub(crate) fn repeats_line(repeats: u32) -> Option<String> {
    match repeats {
        0 => None,
        1 => Some("Repeated 1 more time since the last notice".into()),
        n => Some(format!("Repeated {n} more times since the last notice")),
    }
}

/// `Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)`.
pub(crate) fn alert_line(n: &Notification) -> String {
    format!(
        "Alert: {} (fingerprint {})",
        n.alert_id,
        short_fingerprint(&n.fingerprint)
    )
}

fn render_alert(n: &Notification) -> Rendered {
    let subject = alert_subject(n);
    let mut lines = vec![
        subject.clone(),
        format!("Time: {}", format_et(n.occurred_at)),
        format!("Service: {}", n.service),
        format!("Event: {}", n.event),
    ];
    if !n.details.is_empty() {
        lines.push(String::new());
        lines.push("Details:".into());
        lines.extend(n.details.iter().map(|(k, v)| format!("- {k}: {v}")));
    }
    if !n.actions_taken.is_empty() {
        lines.push(String::new());
        lines.push("Actions taken:".into());
        lines.extend(n.actions_taken.iter().map(|a| format!("- {a}")));
    }
    if !n.you_need_to.trim().is_empty() {
        lines.push(String::new());
        lines.push("You need to:".into());
        lines.push(n.you_need_to.clone());
    }
    lines.push(String::new());
    if !n.runbook.trim().is_empty() {
        lines.push(format!("Runbook: {}", n.runbook));
    }
    if let Some(d) = &n.dashboard {
        lines.push(format!("Dashboard: {d}"));
    }
    lines.push(alert_line(n));
    lines.extend(repeats_line(n.repeats));
    Rendered {
        subject,
        text: join_lines(lines),
    }
}

/// `Daily alert digest: 2024-01-15 (2 alerts)`.
pub(crate) fn digest_subject(title: &str, date: NaiveDate, count: usize) -> String {
    let plural = if count == 1 { "" } else { "s" };
    format!("{title}: {date} ({count} alert{plural})")
}

/// One digest item as one or two lines, without a trailing newline:
///
/// ```text
/// - 09:45:00 ET [LOW] data_agent: Quote feed is 40 s stale
///   Alert a-1; runbook docs/runbooks/stale_data.md; repeated 2 more times
/// ```
///
/// The time carries its date when it is not the digest's own date.
pub(crate) fn digest_item(date: NaiveDate, n: &Notification) -> String {
    let local = n.occurred_at.with_timezone(&New_York);
    let time = if local.date_naive() == date {
        local.format("%H:%M:%S ET").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S ET").to_string()
    };
    let mut second = format!("  Alert {}", n.alert_id);
    if !n.runbook.trim().is_empty() {
        second.push_str(&format!("; runbook {}", n.runbook));
    }
    match n.repeats {
        0 => {}
        1 => second.push_str("; repeated 1 more time"),
        r => second.push_str(&format!("; repeated {r} more times")),
    }
    format!(
        "- {time} [{}] {}: {}\n{second}",
        status_label(n),
        n.service,
        n.event
    )
}

fn render_digest(title: &str, date: NaiveDate, items: &[Notification]) -> Rendered {
    let subject = digest_subject(title, date, items.len());
    let mut lines = vec![subject.clone(), String::new()];
    if items.is_empty() {
        lines.push("No alerts.".into());
    }
    lines.extend(items.iter().map(|n| digest_item(date, n)));
    Rendered {
        subject,
        text: join_lines(lines),
    }
}

/// `[TEST] Trading System Alert test (slack)`.
pub(crate) fn test_subject(channel: &str) -> String {
    format!("[TEST] {TITLE} test ({channel})")
}

fn render_test(channel: &str, at: DateTime<Utc>) -> Rendered {
    let subject = test_subject(channel);
    let lines = vec![
        subject.clone(),
        format!(
            "This is a test message from vigil for the channel \"{channel}\", sent at {}.",
            format_et(at)
        ),
        "If you can read it, the channel works. Nothing needs to be done.".into(),
    ];
    Rendered {
        subject,
        text: join_lines(lines),
    }
}

fn join_lines(lines: Vec<String>) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The most characters one SMS may carry (Twilio splits and joins up to 1600).
pub const SMS_MAX_CHARS: usize = 1600;

/// The short text of an SMS, at most [`SMS_MAX_CHARS`] characters:
/// `[CRITICAL] risk_agent: Daily drawdown 10.2% exceeds the 10% control line. Alert a-3f9c2b1e`.
pub fn sms_text(message: &Message) -> String {
    let text = match message {
        Message::Alert(n) => {
            let mut s = format!(
                "[{}] {}: {}. Alert {}",
                status_label(n),
                n.service,
                n.event.trim_end_matches('.'),
                n.alert_id
            );
            match n.repeats {
                0 => {}
                1 => s.push_str(" (repeated 1 more time)"),
                r => s.push_str(&format!(" (repeated {r} more times)")),
            }
            s
        }
        Message::Digest { title, date, items } => {
            let mut s = digest_subject(title, *date, items.len());
            for n in items {
                s.push_str(&format!(
                    "\n[{}] {}: {}",
                    status_label(n),
                    n.service,
                    n.event
                ));
            }
            s
        }
        Message::Test { channel, at } => format!(
            "vigil test message for the channel \"{channel}\", sent at {}. Nothing needs to be done.",
            format_et(*at)
        ),
        Message::Report(r) => report_subject(r),
    };
    truncate_chars(&text, SMS_MAX_CHARS)
}

/// What a phone call says, plain text (the caller escapes it for TwiML).
pub fn spoken_text(message: &Message) -> String {
    match message {
        Message::Alert(n) => {
            let status = match n.status {
                AlertStatus::Firing => String::new(),
                AlertStatus::Acknowledged => " acknowledged".into(),
                AlertStatus::Resolved => " resolved".into(),
            };
            format!(
                "Vigil trading system alert{status}. Severity {}. Service {}. {}. Alert {}.",
                n.severity.as_str().to_lowercase(),
                n.service.replace('_', " "),
                n.event.trim_end_matches('.'),
                n.alert_id
            )
        }
        Message::Digest { title, date, items } => {
            format!("Vigil. {title} for {date}: {} alerts.", items.len())
        }
        Message::Test { channel, .. } => {
            format!(
                "This is a test call from vigil for the channel {channel}. Nothing needs to be done."
            )
        }
        Message::Report(r) => format!("Vigil. Day report for {}. {}.", r.date, r.headline),
    }
}

/// At most `max` characters, the last one `…` when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod tests;
