//! The session summary: the stages' final reports folded into one, whether the session can
//! close, and the `session_stopped` line that closes it.

use vigil_core::{AgentId, Clock, Level};
use vigil_log::{Event, LogEvent};
use vigil_messages::{SessionSummary, StageReport, StopReason};

use crate::SERVICE;

/// The summary as the reports come in.
#[derive(Debug)]
pub(crate) struct SessionBook {
    /// The figures so far.
    pub(crate) summary: SessionSummary,
    /// The last two stages have reported: the session closes when both have.
    risk_reported: bool,
    execution_reported: bool,
}

/// What a report changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Folded {
    /// The agent whose report it was (it has stopped).
    pub(crate) agent: AgentId,
    /// Both last stages have reported: close the session now.
    pub(crate) close: bool,
}

impl SessionBook {
    /// An empty summary of the session `name`.
    pub(crate) fn new(name: String) -> Self {
        Self {
            summary: SessionSummary {
                name,
                ..SessionSummary::default()
            },
            risk_reported: false,
            execution_reported: false,
        }
    }

    /// Keeps the first error that ended the session.
    pub(crate) fn failed(&mut self, error: &str) {
        self.summary.error.get_or_insert_with(|| error.to_string());
    }

    /// Folds one stage's final report into the summary.
    pub(crate) fn fold(&mut self, report: StageReport) -> Folded {
        let s = &mut self.summary;
        let agent = match report {
            StageReport::Data {
                bars,
                rejected,
                parse_errors,
                first,
                last,
                source,
            } => {
                s.bars = bars;
                s.bars_rejected = rejected;
                s.messages_rejected = parse_errors;
                s.first_bar = first;
                s.last_bar = last;
                s.source = source;
                AgentId::Data
            }
            StageReport::Regime { changes } => {
                s.regime_changes = changes;
                AgentId::Regime
            }
            StageReport::Signal {
                signals,
                suppressed,
            } => {
                s.signals = signals;
                s.signals_suppressed = suppressed;
                AgentId::Signal
            }
            StageReport::Risk {
                approved,
                rejected,
                state,
            } => {
                s.risk_approved = approved;
                s.risk_rejected = rejected;
                s.trading_state = state;
                AgentId::Risk
            }
            StageReport::Execution {
                reason,
                orders,
                filled,
                venue_rejects,
                cancelled,
                fills,
                initial_cash,
                equity,
                cash,
                commissions,
                max_drawdown,
                positions,
                decision_latency,
            } => {
                s.stop_reason = reason.as_str().to_string();
                if let StopReason::Failed(e) = &reason {
                    s.error.get_or_insert_with(|| e.clone());
                }
                s.orders = orders;
                s.orders_filled = filled;
                s.venue_rejects = venue_rejects;
                s.orders_cancelled = cancelled;
                s.fills = fills;
                s.initial_cash = initial_cash;
                s.final_equity = equity;
                s.final_cash = cash;
                s.commissions = commissions;
                s.max_drawdown = max_drawdown;
                s.positions = positions;
                s.decision_latency = decision_latency;
                AgentId::Execution
            }
        };
        // Execution reports when its input ends; Risk right after, since it answers the
        // Execution agent's drawdown reports until then.
        match agent {
            AgentId::Execution => self.execution_reported = true,
            AgentId::Risk => self.risk_reported = true,
            _ => {}
        }
        Folded {
            agent,
            close: self.execution_reported && self.risk_reported,
        }
    }

    /// The line that closes the session, stamped at the last bar (or now, without one).
    pub(crate) fn stopped_event(&self, clock: &dyn Clock) -> LogEvent {
        let s = &self.summary;
        let now = s.last_bar.map_or_else(|| clock.now(), |t| clock.stamp(t));
        let mut ev = LogEvent::new(now, SERVICE, Event::SessionStopped)
            .with("reason", s.stop_reason.clone())
            .with("bars", s.bars)
            .with("bars_rejected", s.bars_rejected)
            .with("messages_rejected", s.messages_rejected)
            .with("signals", s.signals)
            .with("orders", s.orders)
            .with("fills", s.fills)
            .with("risk_rejected", s.risk_rejected)
            .with("final_equity", s.final_equity)
            .with("pnl", s.pnl())
            .with("max_drawdown", s.max_drawdown)
            .with("trading_state", s.trading_state.as_str());
        if let Some(e) = &s.error {
            ev = ev.level(Level::Error).with("error", e.clone());
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{SimClock, TradingState};
    use vigil_log::Value;
    use vigil_testkit::timestamp as t;

    use super::*;

    fn risk() -> StageReport {
        StageReport::Risk {
            approved: 3,
            rejected: 1,
            state: TradingState::Halted,
        }
    }

    #[test]
    fn the_session_closes_once_execution_and_risk_have_both_reported() {
        let mut book = SessionBook::new("s".into());
        let regime = book.fold(StageReport::Regime { changes: 2 });
        assert_eq!(
            regime,
            Folded {
                agent: AgentId::Regime,
                close: false
            }
        );
        assert!(!book.fold(risk()).close);
        assert_eq!(book.summary.risk_rejected, 1);
        assert_eq!(book.summary.trading_state, TradingState::Halted);
        let last = book.fold(StageReport::Signal {
            signals: 5,
            suppressed: 0,
        });
        assert!(!last.close, "signal is not a last stage");
        assert_eq!(book.summary.regime_changes, 2);
    }

    #[test]
    fn the_first_error_is_kept_and_the_closing_line_says_it() {
        let mut book = SessionBook::new("s".into());
        book.failed("data agent failed: disk full");
        book.failed("a later error");
        let clock = SimClock::starting_at(t("2024-01-15T21:00:00Z"));
        let ev = book.stopped_event(&clock);
        assert_eq!(ev.event, Event::SessionStopped);
        assert_eq!(ev.level, Level::Error);
        assert_eq!(
            ev.get("error"),
            Some(&Value::from("data agent failed: disk full"))
        );
        assert_eq!(ev.timestamp, t("2024-01-15T21:00:00Z"));
    }

    #[test]
    fn a_clean_session_closes_at_info() {
        let book = SessionBook::new("s".into());
        let clock = SimClock::starting_at(t("2024-01-15T21:00:00Z"));
        let ev = book.stopped_event(&clock);
        assert_ne!(ev.level, Level::Error);
        assert_eq!(ev.get("error"), None);
    }
}
