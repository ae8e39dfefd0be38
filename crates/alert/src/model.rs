//! The types every part of alerting shares: severity, a notification, the message a channel
//! delivers, and the channel trait.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// How urgent an alert is; it decides the channels (see `[alerts.routing]`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Goes into the daily email digest.
    Low,
    /// A chat message.
    Medium,
    /// SMS and a phone call, plus chat.
    High,
    /// Trips the circuit breaker, then every channel.
    Critical,
}

impl Severity {
    /// Upper-case name, as the message template prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// The log level an alert at this severity is logged at.
    pub fn level(self) -> vigil_core::Level {
        use vigil_core::Level;
        match self {
            Severity::Low => Level::Info,
            Severity::Medium => Level::Warn,
            Severity::High => Level::Error,
            Severity::Critical => Level::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity {s:?}; expected low, medium, high or critical"
            )),
        }
    }
}

/// Where an alert is in its lifecycle, as a notification reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds (past its `for` duration).
    Firing,
    /// A person acknowledged it; it still holds.
    Acknowledged,
    /// The condition cleared (past its `keep_firing_for` hold-down).
    Resolved,
}

/// One notice about one alert, everything a channel needs to tell a person.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Notification {
    /// Short id people type (`vigil alerts ack ID`).
    pub alert_id: String,
    /// Stable hash of the alert's labels; PagerDuty's `dedup_key`.
    pub fingerprint: String,
    /// The severity after routing and quiet-period rules.
    pub severity: Severity,
    /// Firing, acknowledged or resolved.
    pub status: AlertStatus,
    /// The rule that raised it, e.g. `daily_drawdown`; names its runbook.
    pub rule: String,
    /// The service it concerns, e.g. `execution_agent`.
    pub service: String,
    /// One-line headline, e.g. "Daily drawdown 3.4% is above 3%".
    pub event: String,
    /// When the condition started (firing) or cleared (resolved).
    pub occurred_at: DateTime<Utc>,
    /// Ordered facts: current value, threshold, today's P&L, equity …
    pub details: Vec<(String, String)>,
    /// What vigil already did, e.g. "Circuit breaker tripped; new orders rejected".
    pub actions_taken: Vec<String>,
    /// What the person must do now.
    pub you_need_to: String,
    /// Where the runbook is (`docs/runbooks/<rule>.md`, or a URL from config).
    pub runbook: String,
    /// A dashboard link, when configured.
    pub dashboard: Option<String>,
    /// Repeats grouped into this notice since the last one (aggregation).
    pub repeats: u32,
    /// The labels the fingerprint is made of (rule, service, symbol …).
    pub labels: BTreeMap<String, String>,
}

/// What a channel is asked to deliver.
#[derive(Clone, PartialEq, Debug)]
pub enum Message {
    /// One alert's notice.
    Alert(Box<Notification>),
    /// The daily digest of Low alerts, or the post-close summary of the day's alerts.
    Digest {
        /// Title, e.g. "Daily alert digest" or "Alert summary".
        title: String,
        /// The exchange date it covers.
        date: NaiveDate,
        /// The alerts, oldest first.
        items: Vec<Notification>,
    },
    /// The end-of-day report, sent after the close through the digest's channels.
    Report(Box<Report>),
    /// `vigil alerts test CHANNEL`: proves the channel works end to end.
    Test {
        /// The channel's name.
        channel: String,
        /// When the test was asked for.
        at: DateTime<Utc>,
    },
}

/// The end-of-day report as a channel delivers it: its text whole, its pictures for the
/// channels that can show them (email, inline), and where it is stored.
#[derive(Clone, PartialEq, Debug)]
pub struct Report {
    /// The exchange session it covers.
    pub date: NaiveDate,
    /// One line: the day's P&L, fills and drawdown.
    pub headline: String,
    /// The report as plain text (no subject line).
    pub text: String,
    /// Pictures (the equity and drawdown chart), in order.
    pub images: Vec<Image>,
    /// The report's files on the vigil host.
    pub files: Vec<String>,
}

/// A picture a report carries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Image {
    /// A short name, also its content id in an email (`equity`).
    pub name: String,
    /// What it shows, for readers that do not load pictures.
    pub alt: String,
    /// The PNG's bytes.
    pub png: Vec<u8>,
}

/// The kind of a [`Message`], for logs and metrics.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// [`Message::Alert`].
    Alert,
    /// [`Message::Digest`].
    Digest,
    /// [`Message::Test`].
    Test,
    /// [`Message::Report`].
    Report,
}

impl MessageKind {
    /// Lower-case name: `alert`, `digest`, `test` or `report` (the webhook's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Alert => "alert",
            MessageKind::Digest => "digest",
            MessageKind::Test => "test",
            MessageKind::Report => "report",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    /// Which kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Alert(_) => MessageKind::Alert,
            Message::Digest { .. } => MessageKind::Digest,
            Message::Test { .. } => MessageKind::Test,
            Message::Report(_) => MessageKind::Report,
        }
    }

    /// The alert's id, for an alert.
    pub fn alert_id(&self) -> Option<&str> {
        match self {
            Message::Alert(n) => Some(&n.alert_id),
            Message::Digest { .. } | Message::Test { .. } | Message::Report(_) => None,
        }
    }
}

/// Why a delivery failed. Every failure is logged, counted and escalated by the caller.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The channel could not be reached (connection refused, timeout, DNS).
    #[error("{channel}: cannot reach {target}: {reason}")]
    Unreachable {
        /// Channel name.
        channel: String,
        /// Host or URL (never a secret).
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The far end answered with a refusal (HTTP status, SMTP reply).
    #[error("{channel}: refused ({status}): {body}")]
    Refused {
        /// Channel name.
        channel: String,
        /// HTTP status or SMTP code.
        status: String,
        /// The answer's body, truncated.
        body: String,
        /// Whether a retry may succeed (HTTP 5xx or 429, SMTP 4xx), decided by the channel.
        transient: bool,
    },
    /// The message could not be built (bad address, template).
    #[error("{channel}: cannot build the message: {reason}")]
    Build {
        /// Channel name.
        channel: String,
        /// What was wrong.
        reason: String,
    },
}

impl DeliveryError {
    /// Whether a retry may succeed (unreachable, or a refusal the channel calls transient).
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::Unreachable { .. } => true,
            DeliveryError::Refused { transient, .. } => *transient,
            DeliveryError::Build { .. } => false,
        }
    }
}

/// A way to reach a person. Implementations block (they run on the delivery thread, never on
/// an agent's) and must time out on their own.
pub trait Channel: Send + Sync + fmt::Debug {
    /// The channel's name in config and in logs (`email`, `slack`, `pagerduty` …).
    fn name(&self) -> &str;

    /// Delivers one message.
    ///
    /// # Errors
    /// Returns why the far end did not accept it.
    fn deliver(&self, message: &Message) -> Result<(), DeliveryError>;
}
