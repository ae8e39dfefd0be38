//! The automated trading day, applied in band: the Data agent advances the market clock bar
//! by bar, so it is the one that sees each phase begin, and it marks the exact point in the
//! stream where it does.

use vigil_calendar::{Calendar, CalendarError, Phase, ScheduleConfig};
use vigil_core::Timestamp;
use vigil_messages::PhaseMark;

/// Finds the schedule phases that begin between bars.
#[derive(Debug)]
pub struct Scheduler {
    calendar: Calendar,
    config: ScheduleConfig,
    next: Option<(Phase, Timestamp)>,
    started: bool,
}

impl Scheduler {
    /// Creates a scheduler for `calendar` with the phase times of `config`.
    pub fn new(calendar: Calendar, config: ScheduleConfig) -> Self {
        Self {
            calendar,
            config,
            next: None,
            started: false,
        }
    }

    /// Returns the calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Takes a new calendar and phase times (overrides reloaded at runtime). The phase in
    /// effect is marked again before the next bar, so a closure added for today closes the
    /// session at once.
    pub fn replace(&mut self, calendar: Calendar, config: ScheduleConfig) {
        self.calendar = calendar;
        self.config = config;
        self.next = None;
        self.started = false;
    }

    /// When the next phase after `now` begins: the one the marks so far wait for, or,
    /// before the first mark, the first after `now` (the phase in effect at the start is
    /// marked with it, or by the first bar before it). `None` past the calendar's range.
    pub fn next_due(&self, now: Timestamp) -> Option<Timestamp> {
        if self.started {
            self.next.map(|(_, at)| at)
        } else {
            match self.config.next_transition(&self.calendar, now) {
                Ok(next) => next.map(|(_, at)| at),
                // Out of the calendar's range: the next mark reports it.
                Err(_) => Some(now),
            }
        }
    }

    /// The last phase that began at or before `ts`, looking back over a week of days (a
    /// closed day's phase in effect is the last session's `auto_stop`).
    fn phase_in_effect(&self, ts: Timestamp) -> Result<Option<(Phase, Timestamp)>, CalendarError> {
        let today = self.calendar.local_date(ts);
        for back in 0..8 {
            let Some(day) = today.checked_sub_days(chrono::Days::new(back)) else {
                break;
            };
            if day < self.calendar.first_date() {
                break;
            }
            if let Some(found) = self
                .config
                .schedule(&self.calendar, day)?
                .into_iter()
                .rev()
                .find(|(_, t)| *t <= ts)
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Appends to `out` the phases that begin at or before `ts`, placed before bar `index`.
    /// The first call also marks the phase already in effect (a start mid-session).
    ///
    /// # Errors
    /// Fails when `ts` is outside the calendar's range.
    pub fn marks_before(
        &mut self,
        index: usize,
        ts: Timestamp,
        out: &mut Vec<PhaseMark>,
    ) -> Result<(), CalendarError> {
        if !self.started {
            self.started = true;
            if let Some((phase, at)) = self.phase_in_effect(ts)? {
                // Starting (or restarting) mid-session: the pre-market checks of this
                // session have not run in this process, so they run now, before any order.
                if matches!(phase, Phase::TradingActive | Phase::CloseOnly) {
                    out.push(PhaseMark {
                        before: index,
                        phase: Phase::PremarketValidation,
                        at: ts,
                        blocked: false,
                    });
                }
                out.push(PhaseMark {
                    before: index,
                    phase,
                    at,
                    blocked: false,
                });
            }
            self.next = self.config.next_transition(&self.calendar, ts)?;
        }
        while let Some((phase, at)) = self.next.filter(|(_, at)| *at <= ts) {
            out.push(PhaseMark {
                before: index,
                phase,
                at,
                blocked: false,
            });
            self.next = self.config.next_transition(&self.calendar, at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn a_reloaded_closure_for_today_closes_the_session_at_the_next_bar() {
        let mut s = Scheduler::new(Calendar::xnys(), ScheduleConfig::default());
        let mut out = Vec::new();
        s.marks_before(0, t("2026-12-30T15:00:00Z"), &mut out)
            .expect("in range");
        assert_eq!(out.last().map(|m| m.phase), Some(Phase::TradingActive));
        let overrides: vigil_calendar::CalendarOverrides =
            toml::from_str("closures = [{ date = \"2026-12-30\", reason = \"exchange outage\" }]")
                .expect("overrides");
        let closed = Calendar::xnys().with_overrides(&overrides).expect("valid");
        s.replace(closed, ScheduleConfig::default());
        out.clear();
        s.marks_before(3, t("2026-12-30T15:01:00Z"), &mut out)
            .expect("in range");
        // The phase in effect is now the previous session's auto_stop: closed.
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].phase, out[0].before), (Phase::AutoStop, 3));
        assert_eq!(out[0].at, t("2026-12-29T21:30:00Z"));
    }

    #[test]
    fn marks_each_phase_once_before_the_first_bar_after_it() {
        let mut s = Scheduler::new(Calendar::xnys(), ScheduleConfig::default());
        let mut out = Vec::new();
        // Friday after Thanksgiving 2024: a 13:00 ET (18:00 UTC) close.
        s.marks_before(0, t("2024-11-29T14:31:00Z"), &mut out)
            .expect("in range");
        assert_eq!(
            out.iter().map(|m| m.phase).collect::<Vec<_>>(),
            [Phase::PremarketValidation, Phase::TradingActive]
        );
        out.clear();
        s.marks_before(5, t("2024-11-29T17:55:00Z"), &mut out)
            .expect("in range");
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].phase, out[0].before), (Phase::CloseOnly, 5));
        assert_eq!(out[0].at, t("2024-11-29T17:50:00Z"));
        out.clear();
        // Monday's first bar: the rest of Friday, then Monday's morning phases.
        s.marks_before(0, t("2024-12-02T14:30:00Z"), &mut out)
            .expect("in range");
        let phases: Vec<Phase> = out.iter().map(|m| m.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::FinalSnapshot,
                Phase::PostClose,
                Phase::AutoStop,
                Phase::AutoStart,
                Phase::PremarketValidation,
                Phase::TradingActive
            ]
        );
    }
}
