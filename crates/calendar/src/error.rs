//! The crate's error enum and the configuration issue it reports.

use std::fmt;

use chrono::{NaiveDate, NaiveTime};

use crate::schedule::Phase;

/// Why a calendar question has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The date lies outside the range the calendar's rules were checked for.
    #[error("date {date} is outside the calendar's range {from} ..= {to}")]
    OutOfRange {
        /// The date asked about.
        date: NaiveDate,
        /// The first date the calendar covers.
        from: NaiveDate,
        /// The last date the calendar covers.
        to: NaiveDate,
    },
    /// A date range whose start lies after its end.
    #[error("date range {from} ..= {to} is empty: the start is after the end")]
    InvertedRange {
        /// The start of the range.
        from: NaiveDate,
        /// The end of the range.
        to: NaiveDate,
    },
    /// A local time that does not exist (or is ambiguous) in the exchange's time zone.
    #[error("local time {time} on {date} does not exist unambiguously in {zone}")]
    LocalTime {
        /// The local date.
        date: NaiveDate,
        /// The local time.
        time: NaiveTime,
        /// The IANA time zone.
        zone: &'static str,
    },
    /// Calendar overrides that cannot be applied; every problem is listed.
    #[error("invalid calendar overrides: {}", join(issues))]
    InvalidOverrides {
        /// Every problem found.
        issues: Vec<Issue>,
    },
    /// A schedule configuration that cannot work; every problem is listed.
    #[error("invalid schedule: {}", join(issues))]
    InvalidSchedule {
        /// Every problem found.
        issues: Vec<Issue>,
    },
    /// A schedule whose phases do not follow each other on a given (short) session.
    #[error("schedule for {date}: {phase} at {at} is not after {previous} at {previous_at}")]
    PhasesOutOfOrder {
        /// The session's local date.
        date: NaiveDate,
        /// The phase that comes too early.
        phase: Phase,
        /// Its local time.
        at: NaiveTime,
        /// The phase before it.
        previous: Phase,
        /// The local time of the phase before it.
        previous_at: NaiveTime,
    },
}

/// One problem in a configuration value, with the dotted key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The key, relative to the value checked (`closures[1].date`, `auto_stop_minutes_after_close`).
    pub key: String,
    /// What is wrong, in words a person can act on.
    pub problem: String,
}

impl Issue {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

fn join(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(Issue::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
