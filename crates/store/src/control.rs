//! The control API's audit: every operator command, recorded before it is carried out and
//! completed with its answer.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A command the control API accepted (authenticated, well-formed), about to be carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewControlCommand {
    /// When it arrived (wall clock).
    pub at: DateTime<Utc>,
    /// Who asked, as the request says.
    pub who: String,
    /// The client's address.
    pub remote: String,
    /// The command's name (`pause`, `breaker_trip` …).
    pub command: String,
    /// Its argument (`signal`, a source's name …), if any.
    pub argument: Option<String>,
    /// Why, as the request says.
    pub reason: String,
    /// The client's idempotency key, if it sent one.
    pub request_id: Option<String>,
}

/// One row of the control audit: the command as asked, and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControlAuditEntry {
    /// Its number.
    pub seq: i64,
    /// What was asked, by whom, from where, and why.
    #[serde(flatten)]
    pub asked: NewControlCommand,
    /// When the answer came (`None`: the process stopped before it did).
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether it was carried out.
    pub ok: Option<bool>,
    /// The HTTP status answered.
    pub status: Option<u16>,
    /// What happened, when carried out.
    pub outcome: Option<String>,
    /// Why it was refused.
    pub error: Option<String>,
}

/// What recording a command found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditStart {
    /// A new row: carry the command out, then finish row `seq`.
    New(i64),
    /// A row with the same request id exists: the request is a repeat, answer from it.
    Repeat(Box<ControlAuditEntry>),
}
