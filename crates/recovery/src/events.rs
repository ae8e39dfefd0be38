//! The log lines of a reconciliation: one `reconcile_difference` per difference, the
//! `reconciliation_completed` summary, and the CRITICAL `reconciliation_mismatch`.

use vigil_core::{Level, Timestamp, TradingState};
use vigil_log::{Event, LogEvent};

use crate::{Difference, Reconciliation, SERVICE};

/// The `reconcile_difference` line of `d`: ERROR for a mismatch, else WARN.
pub fn difference_event(ts: Timestamp, d: &Difference) -> LogEvent {
    let r = d.record();
    LogEvent::new(ts, SERVICE, Event::ReconcileDifference)
        .level(if r.mismatch {
            Level::Error
        } else {
            Level::Warn
        })
        .with("kind", r.kind)
        .with("subject", r.subject)
        .with("journal", r.journal)
        .with("venue", r.venue)
        .with("action", r.action)
        .with("mismatch", r.mismatch)
}

/// The events a reconciliation at start logs: one per difference, the summary, and the
/// CRITICAL mismatch when trading stays restricted.
pub fn reconciliation_events(
    ts: Timestamp,
    rec: &Reconciliation,
    took_ms: u64,
    restricted: Option<TradingState>,
) -> Vec<LogEvent> {
    let mut out: Vec<LogEvent> = rec
        .differences
        .iter()
        .map(|d| difference_event(ts, d))
        .collect();
    let mismatches = rec.differences.iter().filter(|d| d.is_mismatch()).count();
    let mut done = LogEvent::new(ts, SERVICE, Event::ReconciliationCompleted)
        .with("trigger", "start")
        .with("book", rec.book.clone())
        .with("opened", rec.opened)
        .with("fills_journaled", rec.fills_journaled)
        .with("fills_recovered", rec.fills_recovered)
        .with("open_orders_adopted", rec.open_orders.len())
        .with("differences", rec.differences.len())
        .with("mismatches", mismatches)
        .with("passed", rec.passed())
        .with("cash", rec.cash)
        .with("took_ms", took_ms);
    if let Some(t) = rec.last_bar_at {
        done = done.with("resume_after", t.to_rfc3339());
    }
    out.push(done);
    if let Some(state) = restricted.filter(|_| !rec.passed()) {
        out.push(
            LogEvent::new(ts, SERVICE, Event::ReconciliationMismatch)
                .with("trigger", "start")
                .with("differences", rec.mismatches())
                .with("trading_state", state.as_str()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_log::Value;

    use super::*;

    fn rec(differences: Vec<Difference>) -> Reconciliation {
        Reconciliation {
            book: "main".into(),
            opened: false,
            cash: dec!(100),
            positions: Vec::new(),
            open_orders: Vec::new(),
            last_bar_at: None,
            fills_journaled: 3,
            fills_recovered: 0,
            differences,
            ledgers: None,
        }
    }

    #[test]
    fn a_mismatch_at_start_logs_its_difference_the_summary_and_the_critical_line() {
        let cash = Difference::Cash {
            journal: dec!(100),
            venue: dec!(90),
        };
        let events = reconciliation_events(
            Timestamp::UNIX_EPOCH,
            &rec(vec![cash]),
            7,
            Some(TradingState::ReduceOnly),
        );
        let names: Vec<Event> = events.iter().map(|e| e.event).collect();
        assert_eq!(
            names,
            [
                Event::ReconcileDifference,
                Event::ReconciliationCompleted,
                Event::ReconciliationMismatch
            ]
        );
        assert_eq!(events[0].level, Level::Error);
        assert_eq!(events[0].get("kind"), Some(&Value::from("cash")));
        assert_eq!(events[1].get("passed"), Some(&Value::from(false)));
        assert_eq!(
            events[2].get("differences"),
            Some(&Value::from(
                "cash cash: journal 100, venue 90 (took the venue's)"
            ))
        );
    }

    #[test]
    fn a_clean_start_logs_only_the_summary_even_when_trading_would_be_restricted() {
        let events = reconciliation_events(
            Timestamp::UNIX_EPOCH,
            &rec(Vec::new()),
            7,
            Some(TradingState::Halted),
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].get("passed"), Some(&Value::from(true)));
    }
}
