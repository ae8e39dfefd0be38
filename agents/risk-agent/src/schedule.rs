//! The trading day as the schedule drives it: which phase marks apply at a bar, what the
//! schedule allows now (open, close-only, closed), and the log lines of each change.

use vigil_calendar::Phase;
use vigil_core::{Level, SharedClock, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::PhaseMark;

use crate::agent::SERVICE;

/// What the schedule allows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Session {
    /// Orders as the trading state allows.
    Open,
    /// Only orders that shrink a position.
    CloseOnly,
    /// No new order.
    Closed,
}

impl Session {
    /// The label in logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::CloseOnly => "close_only",
            Self::Closed => "closed",
        }
    }
}

/// The phase of the trading day, when the schedule drives trading.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Driven by the schedule at all (otherwise always open).
    pub(crate) automation: bool,
    /// The phase of the trading day (None: outside a session).
    phase: Option<Phase>,
    /// Today's pre-market checklist failed: the session does not open.
    blocked: bool,
}

impl Schedule {
    /// What the schedule allows now.
    pub(crate) fn session(&self) -> Session {
        match (self.automation, self.phase) {
            (false, _) | (true, Some(Phase::TradingActive)) => Session::Open,
            (true, Some(Phase::CloseOnly)) => Session::CloseOnly,
            (true, _) => Session::Closed,
        }
    }

    /// Applies the phase marks `marks` in order, stamped by `clock`. Returns the lines to
    /// log (`state` is the trading state, for them).
    pub(crate) fn apply(
        &mut self,
        marks: &[PhaseMark],
        state: TradingState,
        clock: &SharedClock,
    ) -> Vec<LogEvent> {
        let mut events = Vec::new();
        for mark in marks {
            let before = self.session().as_str();
            if mark.phase == Phase::PremarketValidation {
                self.blocked = mark.blocked;
            }
            self.phase = match mark.phase {
                Phase::TradingActive | Phase::CloseOnly if self.blocked => {
                    events.push(
                        LogEvent::new(clock.stamp(mark.at), SERVICE, Event::TradingStateChanged)
                            .level(Level::Error)
                            .with("from", before)
                            .with("to", "closed")
                            .with("actor", "schedule")
                            .with(
                                "reason",
                                format!(
                                    "{}: the pre-market checklist failed; this session stays closed",
                                    mark.phase.as_str()
                                ),
                            ),
                    );
                    None
                }
                Phase::TradingActive | Phase::CloseOnly => Some(mark.phase),
                // Before the open and after the close no new order may go out.
                _ => None,
            };
            let after = self.session().as_str();
            if before != after {
                events.push(
                    LogEvent::new(clock.stamp(mark.at), SERVICE, Event::TradingStateChanged)
                        .with("from", before)
                        .with("to", after)
                        .with("actor", "schedule")
                        .with("reason", format!("{} phase", mark.phase.as_str()))
                        .with("trading_state", state.as_str()),
                );
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vigil_core::SimClock;
    use vigil_testkit::timestamp as t;

    use super::*;

    fn mark(phase: Phase, blocked: bool) -> PhaseMark {
        PhaseMark {
            before: 0,
            phase,
            at: t("2024-01-02T14:30:00Z"),
            blocked,
        }
    }

    fn clock() -> SharedClock {
        Arc::new(SimClock::starting_at(t("2024-01-02T00:00:00Z")))
    }

    #[test]
    fn without_automation_the_session_is_always_open() {
        let mut s = Schedule::default();
        let events = s.apply(
            &[mark(Phase::PostClose, false)],
            TradingState::Active,
            &clock(),
        );
        assert_eq!(s.session(), Session::Open);
        assert!(events.is_empty());
    }

    #[test]
    fn the_schedule_opens_goes_close_only_and_closes_logging_each_change() {
        let mut s = Schedule {
            automation: true,
            ..Schedule::default()
        };
        assert_eq!(s.session(), Session::Closed);
        let events = s.apply(
            &[
                mark(Phase::TradingActive, false),
                mark(Phase::CloseOnly, false),
            ],
            TradingState::Active,
            &clock(),
        );
        assert_eq!(s.session(), Session::CloseOnly);
        let moves: Vec<(String, String)> = events
            .iter()
            .map(|e| (vigil_testkit::text(e, "from"), vigil_testkit::text(e, "to")))
            .collect();
        assert_eq!(
            moves,
            vec![
                ("closed".into(), "open".into()),
                ("open".into(), "close_only".into())
            ]
        );
        assert_eq!(events[0].timestamp, t("2024-01-02T14:30:00Z"));
    }

    #[test]
    fn a_failed_checklist_keeps_the_session_closed() {
        let mut s = Schedule {
            automation: true,
            ..Schedule::default()
        };
        let events = s.apply(
            &[
                mark(Phase::PremarketValidation, true),
                mark(Phase::TradingActive, false),
            ],
            TradingState::Active,
            &clock(),
        );
        assert_eq!(s.session(), Session::Closed);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].level, Level::Error);
        assert!(vigil_testkit::text(&events[0], "reason").contains("checklist failed"));
    }
}
