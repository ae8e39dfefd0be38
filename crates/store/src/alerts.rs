//! Alerting's tables: the engine's state, the notification log, the operator's requests.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The alert engine's state as last saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAlertState {
    /// The engine's state as JSON (`vigil_alert::EngineState`).
    pub state: String,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

/// One line of the notification log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertLogEntry {
    /// Its place in the log (0 until stored).
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened: `firing`, `resolved`, `suppressed`, `delivered`, `delivery_failed`,
    /// `digest`, `ack`, `silence`, `unsilence` …
    pub kind: String,
    /// The alert it concerns.
    pub alert_id: Option<String>,
    /// The alert's rule.
    pub rule: Option<String>,
    /// The severity the notice went out with.
    pub severity: Option<String>,
    /// The channel, for delivery lines.
    pub channel: Option<String>,
    /// A human sentence: the headline, the error, who silenced what and why.
    pub detail: String,
}

/// Which lines of the notification log to read.
#[derive(Clone, Debug, Default)]
pub struct AlertLogQuery {
    /// Only lines at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only lines of this rule.
    pub rule: Option<String>,
    /// Only lines of this alert.
    pub alert_id: Option<String>,
    /// At most this many, the newest (0: no limit).
    pub limit: u32,
}

/// What an operator asked of the alert engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// Acknowledge an alert: `{"id": "a-…"}`.
    Ack,
    /// Silence matching alerts: `{"matchers": {…}, "starts": …, "ends": …, "reason": …}`.
    Silence,
    /// Remove a silence: `{"id": "s-…"}`.
    Unsilence,
}

impl RequestKind {
    /// Its name in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Ack => "ack",
            RequestKind::Silence => "silence",
            RequestKind::Unsilence => "unsilence",
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ack" => Ok(RequestKind::Ack),
            "silence" => Ok(RequestKind::Silence),
            "unsilence" => Ok(RequestKind::Unsilence),
            other => Err(format!(
                "unknown request kind {other:?}; expected ack, silence or unsilence"
            )),
        }
    }
}

/// An operator's request and, once applied, its result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRequest {
    /// Its number.
    pub seq: i64,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// Who made it.
    pub who: String,
    /// What it asks.
    pub kind: RequestKind,
    /// Its arguments.
    pub body: serde_json::Value,
    /// When the Monitor applied it (`None`: not yet).
    pub applied_at: Option<DateTime<Utc>>,
    /// Whether it succeeded.
    pub ok: Option<bool>,
    /// What came of it: the silence's id, or why it was refused.
    pub result: Option<String>,
}
