//! The daily automation schedule: the phases of a trading day, tied to the real session.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::error::{CalendarError, Issue};

/// A phase of the automated trading day, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The process starts: connects, loads state, reconciles.
    AutoStart,
    /// Pre-market checks: data feeds, broker, risk limits, clocks.
    PremarketValidation,
    /// The session is open and new positions may be taken.
    TradingActive,
    /// Only orders that reduce positions are allowed, ahead of the close.
    CloseOnly,
    /// The close: positions, orders and equity are snapshotted.
    FinalSnapshot,
    /// After the close: reports, reconciliation, log rotation.
    PostClose,
    /// The process stops for the day.
    AutoStop,
}

impl Phase {
    /// Every phase, in the order they happen.
    pub const ALL: [Phase; 7] = [
        Phase::AutoStart,
        Phase::PremarketValidation,
        Phase::TradingActive,
        Phase::CloseOnly,
        Phase::FinalSnapshot,
        Phase::PostClose,
        Phase::AutoStop,
    ];

    /// Returns the phase's snake_case name (`close_only`), as in logs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AutoStart => "auto_start",
            Phase::PremarketValidation => "premarket_validation",
            Phase::TradingActive => "trading_active",
            Phase::CloseOnly => "close_only",
            Phase::FinalSnapshot => "final_snapshot",
            Phase::PostClose => "post_close",
            Phase::AutoStop => "auto_stop",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When each phase starts, as offsets from the session's real open and close, so that an
/// early-close day moves the afternoon phases with the close.
///
/// The defaults are the US-equities day on a regular session (ET): auto_start 09:15,
/// premarket_validation 09:25, trading_active 09:30 (the open), close_only 15:50,
/// final_snapshot 16:00 (the close), post_close 16:05, auto_stop 16:30. On a 13:00 early
/// close the afternoon becomes 12:50, 13:00, 13:05 and 13:30. `trading_active` is always the
/// open itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Minutes before the open that the process starts.
    pub auto_start_minutes_before_open: u32,
    /// Minutes before the open that pre-market validation runs.
    pub premarket_validation_minutes_before_open: u32,
    /// Minutes before the close that only position-reducing orders are allowed.
    pub close_only_minutes_before_close: u32,
    /// Minutes after the close that the final snapshot is taken.
    pub final_snapshot_minutes_after_close: u32,
    /// Minutes after the close that post-close work starts.
    pub post_close_minutes_after_close: u32,
    /// Minutes after the close that the process stops.
    pub auto_stop_minutes_after_close: u32,
}

/// Default: start 15 minutes before the open (09:15 ET).
fn default_auto_start_minutes_before_open() -> u32 {
    15
}

/// Default: validate 5 minutes before the open (09:25 ET).
fn default_premarket_validation_minutes_before_open() -> u32 {
    5
}

/// Default: close-only 10 minutes before the close (15:50 ET).
fn default_close_only_minutes_before_close() -> u32 {
    10
}

/// Default: snapshot at the close itself (16:00 ET).
fn default_final_snapshot_minutes_after_close() -> u32 {
    0
}

/// Default: post-close work 5 minutes after the close (16:05 ET).
fn default_post_close_minutes_after_close() -> u32 {
    5
}

/// Default: stop 30 minutes after the close (16:30 ET).
fn default_auto_stop_minutes_after_close() -> u32 {
    30
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            auto_start_minutes_before_open: default_auto_start_minutes_before_open(),
            premarket_validation_minutes_before_open:
                default_premarket_validation_minutes_before_open(),
            close_only_minutes_before_close: default_close_only_minutes_before_close(),
            final_snapshot_minutes_after_close: default_final_snapshot_minutes_after_close(),
            post_close_minutes_after_close: default_post_close_minutes_after_close(),
            auto_stop_minutes_after_close: default_auto_stop_minutes_after_close(),
        }
    }
}

/// Offsets beyond this many minutes would move a phase onto another day.
const MAX_OFFSET_MINUTES: u32 = 6 * 60;

impl ScheduleConfig {
    /// Lists every problem that keeps the phases from following each other on any session,
    /// keyed by field name; empty when the configuration is usable.
    pub fn issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        let fields = [
            (
                "auto_start_minutes_before_open",
                self.auto_start_minutes_before_open,
            ),
            (
                "premarket_validation_minutes_before_open",
                self.premarket_validation_minutes_before_open,
            ),
            (
                "close_only_minutes_before_close",
                self.close_only_minutes_before_close,
            ),
            (
                "final_snapshot_minutes_after_close",
                self.final_snapshot_minutes_after_close,
            ),
            (
                "post_close_minutes_after_close",
                self.post_close_minutes_after_close,
            ),
            (
                "auto_stop_minutes_after_close",
                self.auto_stop_minutes_after_close,
            ),
        ];
        for (key, value) in fields {
            if value > MAX_OFFSET_MINUTES {
                issues.push(Issue::new(
                    key,
                    format!("must be at most {MAX_OFFSET_MINUTES} minutes, got {value}"),
                ));
            }
        }
        if self.premarket_validation_minutes_before_open == 0 {
            issues.push(Issue::new(
                "premarket_validation_minutes_before_open",
                "must be at least 1: validation has to finish before the open",
            ));
        }
        if self.auto_start_minutes_before_open <= self.premarket_validation_minutes_before_open {
            issues.push(Issue::new(
                "auto_start_minutes_before_open",
                format!(
                    "must be greater than premarket_validation_minutes_before_open ({}), got {}",
                    self.premarket_validation_minutes_before_open,
                    self.auto_start_minutes_before_open
                ),
            ));
        }
        if self.close_only_minutes_before_close == 0 {
            issues.push(Issue::new(
                "close_only_minutes_before_close",
                "must be at least 1: close-only has to start before the close",
            ));
        }
        if self.post_close_minutes_after_close <= self.final_snapshot_minutes_after_close {
            issues.push(Issue::new(
                "post_close_minutes_after_close",
                format!(
                    "must be greater than final_snapshot_minutes_after_close ({}), got {}",
                    self.final_snapshot_minutes_after_close, self.post_close_minutes_after_close
                ),
            ));
        }
        if self.auto_stop_minutes_after_close <= self.post_close_minutes_after_close {
            issues.push(Issue::new(
                "auto_stop_minutes_after_close",
                format!(
                    "must be greater than post_close_minutes_after_close ({}), got {}",
                    self.post_close_minutes_after_close, self.auto_stop_minutes_after_close
                ),
            ));
        }
        issues
    }

    /// Returns each phase and when it starts on a local date, in order; empty when the
    /// exchange has no session that day.
    ///
    /// # Errors
    /// [`CalendarError::InvalidSchedule`] when [`ScheduleConfig::issues`] finds problems,
    /// [`CalendarError::OutOfRange`] for a date outside the calendar,
    /// [`CalendarError::PhasesOutOfOrder`] when the session is too short for the offsets
    /// (close-only would start before the open).
    pub fn schedule(
        &self,
        calendar: &Calendar,
        date: NaiveDate,
    ) -> Result<Vec<(Phase, DateTime<Utc>)>, CalendarError> {
        let issues = self.issues();
        if !issues.is_empty() {
            return Err(CalendarError::InvalidSchedule { issues });
        }
        let Some(s) = calendar.session(date)? else {
            return Ok(Vec::new());
        };
        let m = |n: u32| Duration::minutes(i64::from(n));
        let phases = vec![
            (
                Phase::AutoStart,
                s.open - m(self.auto_start_minutes_before_open),
            ),
            (
                Phase::PremarketValidation,
                s.open - m(self.premarket_validation_minutes_before_open),
            ),
            (Phase::TradingActive, s.open),
            (
                Phase::CloseOnly,
                s.close - m(self.close_only_minutes_before_close),
            ),
            (
                Phase::FinalSnapshot,
                s.close + m(self.final_snapshot_minutes_after_close),
            ),
            (
                Phase::PostClose,
                s.close + m(self.post_close_minutes_after_close),
            ),
            (
                Phase::AutoStop,
                s.close + m(self.auto_stop_minutes_after_close),
            ),
        ];
        let zone = calendar.time_zone();
        for pair in phases.windows(2) {
            let ((previous, previous_at), (phase, at)) = (pair[0], pair[1]);
            if at <= previous_at {
                return Err(CalendarError::PhasesOutOfOrder {
                    date,
                    phase,
                    at: at.with_timezone(&zone).time(),
                    previous,
                    previous_at: previous_at.with_timezone(&zone).time(),
                });
            }
        }
        Ok(phases)
    }

    /// Returns the first phase that starts strictly after `at`, looking across days;
    /// `None` when no session remains in the calendar's range.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the local date of `at` is outside the calendar,
    /// and the errors of [`ScheduleConfig::schedule`].
    pub fn next_transition(
        &self,
        calendar: &Calendar,
        at: DateTime<Utc>,
    ) -> Result<Option<(Phase, DateTime<Utc>)>, CalendarError> {
        let today = calendar.local_date(at);
        calendar.check_range(today)?;
        // Start a day early: a late auto_stop of yesterday's session may still be ahead.
        let start = calendar.day_before_clamped(today);
        for date in start.iter_days().take_while(|d| *d <= calendar.last_date()) {
            if let Some(next) = self
                .schedule(calendar, date)?
                .into_iter()
                .find(|(_, t)| *t > at)
            {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// Renders the day's schedule for `vigil schedule show --date`: one line per phase,
    /// `HH:MM ET  phase_name`, each ending in `\n`; on a day without a session, one line
    /// `YYYY-MM-DD: no session (reason)`.
    ///
    /// # Errors
    /// As [`ScheduleConfig::schedule`].
    pub fn schedule_text(
        &self,
        calendar: &Calendar,
        date: NaiveDate,
    ) -> Result<String, CalendarError> {
        let phases = self.schedule(calendar, date)?;
        if phases.is_empty() {
            let why = calendar.explain(date)?;
            return Ok(format!("{date}: no session ({})\n", why.reason));
        }
        let zone = calendar.time_zone();
        let label = calendar.zone_label();
        Ok(phases
            .iter()
            .map(|(phase, at)| {
                format!(
                    "{} {label}  {phase}\n",
                    at.with_timezone(&zone).format("%H:%M")
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
