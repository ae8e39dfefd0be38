//! The phases of the automated trading day, marked in band, and the pre-market gate.
//!
//! [`Phases`] finds the phases that begin within a batch of bars (through the
//! [`Scheduler`]), runs the pre-market checks when the pre-market phase begins (a failure
//! keeps that session closed), and returns the marks with the lines to log. When the
//! calendar cannot say (a date out of its range), automation stops rather than guess.

use chrono::NaiveDate;
use vigil_core::{Bar, Clock, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::PhaseMark;

use crate::SERVICE;
use crate::scheduler::Scheduler;

/// The pre-market checks, run when the pre-market phase begins. `Err` names what failed;
/// the session then does not open for trading.
pub trait PremarketGate: Send {
    /// Runs the checks for the session about to open at market time `at`.
    ///
    /// # Errors
    /// Returns the failed checks, as one line for the log.
    fn check(&mut self, at: Timestamp) -> Result<String, String>;
}

/// The post-close work (the day's checks and report, the log's verification), run off the
/// trading thread when a live session's post-close phase begins.
pub trait PostCloseWork: Send {
    /// The work for `session`, whose post-close phase began at market time `at`.
    fn job(&mut self, session: NaiveDate, at: Timestamp) -> PostCloseJob;
}

/// One day's post-close work, run on a blocking thread.
pub type PostCloseJob = Box<dyn FnOnce() -> PostCloseOutcome + Send>;

/// What one day's post-close work found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostCloseOutcome {
    /// The checks: where their report is stored (`Ok`), or what failed.
    pub checks: Result<String, String>,
    /// The day report (logged as `day_report_written`, which sends it), or why it could
    /// not be made (a failure of the checks).
    pub report: Result<DayReportFiles, String>,
}

impl PostCloseOutcome {
    /// What to log: the checks' outcome, failed too when the day report could not be made
    /// (a day not reported is not accounted for), and the report's files when it was.
    pub fn judged(self) -> (Result<String, String>, Option<DayReportFiles>) {
        match (self.checks, self.report) {
            (checks, Ok(files)) => (checks, Some(files)),
            (Ok(stored), Err(e)) => (
                Err(format!("day report: {e} (the checks passed: {stored})")),
                None,
            ),
            (Err(f), Err(e)) if f == e => (Err(f), None),
            (Err(f), Err(e)) => (Err(format!("{f}; day report: {e}")), None),
        }
    }
}

/// Where a day report was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayReportFiles {
    /// Its one-line summary.
    pub headline: String,
    /// The text.
    pub text: String,
    /// The JSON.
    pub json: String,
    /// The equity and drawdown chart (PNG), when the day had a curve.
    pub chart: Option<String>,
}

/// What the bars of a batch passed.
#[derive(Debug, Default)]
pub(crate) struct Marked {
    /// The phases that begin within the batch, in order.
    pub(crate) marks: Vec<PhaseMark>,
    /// The lines to log, in order.
    pub(crate) logs: Vec<LogEvent>,
    /// The calendar could not say: automation stopped, for this reason.
    pub(crate) failed: Option<String>,
    /// The sessions whose post-close phase began within the batch, with its time.
    pub(crate) post_close: Vec<(NaiveDate, Timestamp)>,
}

/// The automated day, when on, and the pre-market gate.
#[derive(Default)]
pub(crate) struct Phases {
    scheduler: Option<Scheduler>,
    gate: Option<Box<dyn PremarketGate>>,
}

impl std::fmt::Debug for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phases")
            .field("scheduler", &self.scheduler)
            .field("gate", &self.gate.is_some())
            .finish()
    }
}

impl Phases {
    /// Drives the automated day with `scheduler`.
    pub(crate) fn set_scheduler(&mut self, scheduler: Scheduler) {
        self.scheduler = Some(scheduler);
    }

    /// Runs `gate` when each pre-market phase begins.
    pub(crate) fn set_gate(&mut self, gate: Box<dyn PremarketGate>) {
        self.gate = Some(gate);
    }

    /// The scheduler, when the day is automated.
    pub(crate) fn scheduler_mut(&mut self) -> Option<&mut Scheduler> {
        self.scheduler.as_mut()
    }

    /// Finds the phases that begin within `bars`; `clock` stamps the lines.
    pub(crate) fn marks(&mut self, bars: &[Bar], clock: &dyn Clock) -> Marked {
        self.mark_times(bars.iter().map(|b| b.ts).enumerate(), clock)
    }

    /// Finds the phases that began by `ts` with no bar (the clock's timer, a quiet live
    /// market): each is marked before bar 0 of an empty batch.
    pub(crate) fn marks_at(&mut self, ts: Timestamp, clock: &dyn Clock) -> Marked {
        self.mark_times(std::iter::once((0, ts)), clock)
    }

    /// When the clock should next look for a phase (see [`Scheduler::next_due`]); `None`
    /// when the day is not automated.
    pub(crate) fn next_due(&self, now: Timestamp) -> Option<Timestamp> {
        self.scheduler.as_ref()?.next_due(now)
    }

    fn mark_times(
        &mut self,
        times: impl Iterator<Item = (usize, Timestamp)>,
        clock: &dyn Clock,
    ) -> Marked {
        let Some(scheduler) = &mut self.scheduler else {
            return Marked::default();
        };
        let mut out = Marked::default();
        // The marks whose phase had already ended when they were marked: a later mark came
        // with them, for the same bar or clock time (a start or a wake-up in the session).
        let mut caught_up = Vec::new();
        for (i, ts) in times {
            let from = out.marks.len();
            if let Err(e) = scheduler.marks_before(i, ts, &mut out.marks) {
                out.failed = Some(e.to_string());
                break;
            }
            caught_up.extend((from + 1..out.marks.len()).map(|k| k - 1));
        }
        let sessions: Vec<_> = out
            .marks
            .iter()
            .map(|m| scheduler.calendar().local_date(m.at))
            .collect();
        for (k, (m, session)) in out.marks.iter_mut().zip(&sessions).enumerate() {
            if m.phase == vigil_calendar::Phase::PostClose {
                out.post_close.push((*session, m.at));
            }
            if m.phase == vigil_calendar::Phase::PremarketValidation
                && let Some(gate) = self.gate.as_mut()
            {
                let stamp = clock.stamp(m.at);
                out.logs.push(match gate.check(m.at) {
                    Ok(report) => LogEvent::new(stamp, SERVICE, Event::ChecklistCompleted)
                        .with("checklist", "premarket")
                        .with("session", session.to_string())
                        .with("report", report),
                    Err(failures) => {
                        m.blocked = true;
                        LogEvent::new(stamp, SERVICE, Event::ChecklistFailed)
                            .with("checklist", "premarket")
                            .with("session", session.to_string())
                            .with("failed", failures)
                            .with("action", "trading does not open this session")
                    }
                });
            }
            let mut line = LogEvent::new(clock.stamp(m.at), SERVICE, Event::PhaseChanged)
                .with("phase", m.phase.as_str())
                .with("session", session.to_string())
                .with("at", m.at);
            if caught_up.contains(&k) {
                line = line.with("caught_up", true);
            }
            out.logs.push(line);
        }
        if out.failed.is_some() {
            // Out of the calendar's range: stop automating rather than guess.
            self.scheduler = None;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_calendar::{Calendar, Phase, ScheduleConfig};
    use vigil_core::{SimClock, SymbolId};
    use vigil_testkit::timestamp as t;

    use super::*;

    struct Refuse;

    impl PremarketGate for Refuse {
        fn check(&mut self, _at: Timestamp) -> Result<String, String> {
            Err("cash below minimum".into())
        }
    }

    fn bar(ts: &str) -> Bar {
        Bar {
            symbol: SymbolId(0),
            ts: t(ts),
            open: dec!(1),
            high: dec!(1),
            low: dec!(1),
            close: dec!(1),
            volume: None,
        }
    }

    #[test]
    fn a_day_report_that_cannot_be_made_fails_the_post_close_work() {
        let files = DayReportFiles {
            headline: "P&L +1 today".into(),
            text: "/r/day.txt".into(),
            json: "/r/day.json".into(),
            chart: None,
        };
        let outcome = |checks: Result<&str, &str>, report: Result<DayReportFiles, &str>| {
            PostCloseOutcome {
                checks: checks.map(str::to_string).map_err(str::to_string),
                report: report.map_err(str::to_string),
            }
            .judged()
        };
        assert_eq!(
            outcome(Ok("/r/post.json"), Ok(files.clone())),
            (Ok("/r/post.json".into()), Some(files.clone()))
        );
        assert_eq!(
            outcome(Err("logs_verified: broken"), Ok(files.clone())),
            (Err("logs_verified: broken".into()), Some(files))
        );
        assert_eq!(
            outcome(Ok("/r/post.json"), Err("disk full")),
            (
                Err("day report: disk full (the checks passed: /r/post.json)".into()),
                None
            )
        );
        assert_eq!(
            outcome(Err("no thread"), Err("no thread")),
            (Err("no thread".into()), None)
        );
        assert_eq!(
            outcome(Err("closing_snapshot: none"), Err("disk full")),
            (
                Err("closing_snapshot: none; day report: disk full".into()),
                None
            )
        );
    }

    #[test]
    fn off_no_bar_passes_a_phase() {
        let clock = SimClock::starting_at(t("2024-11-29T14:31:00Z"));
        let out = Phases::default().marks(&[bar("2024-11-29T14:31:00Z")], &clock);
        assert!(out.marks.is_empty() && out.logs.is_empty() && out.failed.is_none());
    }

    #[test]
    fn a_failed_premarket_gate_blocks_its_session_and_every_phase_is_logged() {
        let clock = SimClock::starting_at(t("2024-11-29T14:31:00Z"));
        let mut phases = Phases::default();
        phases.set_scheduler(Scheduler::new(Calendar::xnys(), ScheduleConfig::default()));
        phases.set_gate(Box::new(Refuse));
        let out = phases.marks(&[bar("2024-11-29T14:31:00Z")], &clock);
        assert_eq!(
            out.marks
                .iter()
                .map(|m| (m.phase, m.blocked))
                .collect::<Vec<_>>(),
            [
                (Phase::PremarketValidation, true),
                (Phase::TradingActive, false)
            ]
        );
        assert_eq!(
            out.logs.iter().map(|l| l.event).collect::<Vec<_>>(),
            [
                Event::ChecklistFailed,
                Event::PhaseChanged,
                Event::PhaseChanged
            ]
        );
        // A start in the session: the pre-market phase had ended when it was marked.
        let caught_up = |l: &LogEvent| l.get("caught_up").is_some();
        assert!(caught_up(&out.logs[1]), "{:?}", out.logs[1]);
        assert!(!caught_up(&out.logs[2]), "{:?}", out.logs[2]);
    }

    #[test]
    fn phases_marked_on_time_one_by_one_are_not_caught_up() {
        let clock = SimClock::starting_at(t("2024-11-29T14:20:00Z"));
        let mut phases = Phases::default();
        phases.set_scheduler(Scheduler::new(Calendar::xnys(), ScheduleConfig::default()));
        // The clock's marks, each just after its phase began, then the first bar.
        let mut logs = phases.marks_at(t("2024-11-29T14:15:05Z"), &clock).logs;
        logs.extend(phases.marks_at(t("2024-11-29T14:25:05Z"), &clock).logs);
        logs.extend(phases.marks(&[bar("2024-11-29T14:30:00Z")], &clock).logs);
        let marked: Vec<(String, bool)> = logs
            .iter()
            .filter(|l| l.event == Event::PhaseChanged)
            .map(|l| {
                (
                    match l.get("phase") {
                        Some(vigil_log::Value::Str(p)) => p.to_string(),
                        other => format!("{other:?}"),
                    },
                    l.get("caught_up").is_some(),
                )
            })
            .collect();
        assert_eq!(
            marked,
            [
                ("auto_start".to_string(), false),
                ("premarket_validation".to_string(), false),
                ("trading_active".to_string(), false),
            ]
        );
    }

    #[test]
    fn a_date_outside_the_calendar_stops_automation() {
        let clock = SimClock::starting_at(t("2024-11-29T14:31:00Z"));
        let mut phases = Phases::default();
        phases.set_scheduler(Scheduler::new(Calendar::xnys(), ScheduleConfig::default()));
        let out = phases.marks(&[bar("2300-01-02T14:31:00Z")], &clock);
        assert!(out.failed.is_some());
        assert!(phases.scheduler_mut().is_none());
    }
}
