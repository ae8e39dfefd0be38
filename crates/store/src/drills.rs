//! The drills run against a running stack (`vigil drill`), append-only: the monthly
//! checklist reads them.

use chrono::{DateTime, Utc};

/// One `vigil drill` run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillRun {
    /// The drill: a class (`price-jump`) or `all`, the monthly drill.
    pub drill: String,
    /// When it started (wall clock).
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Whether every check passed.
    pub passed: bool,
    /// Checks that passed.
    pub checks_passed: u64,
    /// Checks run.
    pub checks_total: u64,
    /// The report, as JSON.
    pub report: String,
}
