//! The drawdown control line (`[risk.drawdown_control]`), the Risk agent's side: the
//! Execution agent reports equity beyond the line, and this component decides what to do
//! about it. The first time, no new position from now on (reduce-only) and the first
//! deleveraging step; then a step per interval while the drawdown stays beyond. A step
//! waits while trading is halted or the market is closed. Setting trading active again
//! re-arms the line (see [`DrawdownControl::rearm`]).

use rust_decimal::Decimal;
use vigil_config::RiskConfig;
use vigil_core::{SymbolId, SymbolTable, Timestamp, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::{DrawdownReport, NextReport, RearmDrawdown};

use crate::agent::SERVICE;
use crate::forced::ForcedOrder;
use crate::policy::deleverage_step;
use crate::trading_state::StateChange;

/// The actor of every change the line makes.
pub(crate) const ACTOR: &str = "drawdown_control";

/// The drawdown control line, as the Risk agent holds it.
#[derive(Debug, Default)]
pub(crate) struct DrawdownControl {
    /// Bumped when trading is set active again while engaged; reports of older armings
    /// are answered with nothing.
    arming: u64,
    engaged: Option<Engaged>,
}

/// Since the line was crossed.
#[derive(Debug)]
struct Engaged {
    /// Steps that sent orders.
    steps: u64,
    /// |position| per symbol when the line was crossed: what a step is a share of.
    sizes: Vec<(SymbolId, Decimal)>,
}

/// What the Risk agent does about a drawdown report, in this order: move to reduce-only,
/// send the orders, log the event, answer with `next`.
#[derive(Debug)]
pub(crate) struct DrawdownPlan {
    /// The line was just crossed while trading was active: the reason of the move to
    /// reduce-only.
    pub(crate) reduce_only: Option<String>,
    /// The deleveraging step's orders.
    pub(crate) orders: Vec<ForcedOrder>,
    /// When the Execution agent reports again.
    pub(crate) next: NextReport,
    /// The line engaged, or a step that sent orders.
    pub(crate) event: Option<LogEvent>,
}

fn pct(d: Decimal) -> String {
    format!("{}%", (d * Decimal::ONE_HUNDRED).round_dp(2).normalize())
}

impl DrawdownControl {
    /// Decides on report `r` (logged at `ts`) while trading is in `state` and the market is
    /// `closed` or not; `symbols` names the orders for the log.
    pub(crate) fn on_report(
        &mut self,
        cfg: &RiskConfig,
        r: &DrawdownReport,
        ts: Timestamp,
        state: TradingState,
        closed: bool,
        symbols: &SymbolTable,
    ) -> DrawdownPlan {
        let line = cfg.drawdown_control;
        if r.arming != self.arming {
            // Measured against a line an operator has since re-armed; the new one is on
            // its way to the Execution agent.
            return DrawdownPlan {
                reduce_only: None,
                orders: Vec::new(),
                next: NextReport::AfterRearm,
                event: None,
            };
        }
        let mut actions = Vec::new();
        let mut reduce_only = None;
        let mut state = state;
        let first = self.engaged.is_none();
        if first {
            self.engaged = Some(Engaged {
                steps: 0,
                sizes: r
                    .positions
                    .iter()
                    .map(|p| (p.symbol, p.quantity.abs()))
                    .collect(),
            });
            if state == TradingState::Active {
                reduce_only = Some(format!(
                    "drawdown {} from the equity peak {} is beyond the {} control line",
                    pct(r.drawdown),
                    r.peak.round_dp(2),
                    pct(line.line_pct)
                ));
                state = TradingState::ReduceOnly;
                actions.push("trading state active -> reduce_only: no new position".to_string());
            } else {
                actions.push(format!("trading state stays {state}: no new position"));
            }
        }
        let blocked = if state == TradingState::Halted {
            Some("trading is halted (breaker): no order may go out until it is reset")
        } else if closed {
            Some("the market is closed (schedule)")
        } else {
            None
        };
        let cuts = match (blocked, &self.engaged) {
            (None, Some(e)) => {
                deleverage_step(line.step_pct, cfg.quantity_step, &e.sizes, &r.positions)
            }
            _ => Vec::new(),
        };
        let steps_total = if line.step_pct.is_zero() {
            0
        } else {
            (Decimal::ONE / line.step_pct)
                .ceil()
                .try_into()
                .unwrap_or(u64::MAX)
        };
        let step = match self.engaged.as_mut() {
            Some(e) if !cuts.is_empty() => {
                e.steps += 1;
                e.steps
            }
            Some(e) => e.steps,
            None => 0,
        };
        let mut orders = Vec::with_capacity(cuts.len());
        let mut sent = Vec::with_capacity(cuts.len());
        for (symbol, side, quantity) in cuts {
            let (position, price) = r
                .positions
                .iter()
                .find(|p| p.symbol == symbol)
                .map_or((Decimal::ZERO, Decimal::ZERO), |p| (p.quantity, p.mark));
            sent.push(format!("{side} {quantity} {}", symbols.shared(symbol)));
            orders.push(ForcedOrder {
                kind: "deleverage",
                symbol,
                side,
                quantity,
                position,
                price,
                equity: r.equity,
                at: r.at,
                actor: ACTOR.into(),
                reason: format!("deleverage step {step}"),
            });
        }
        let next = if line.step_pct.is_zero() || r.positions.is_empty() {
            NextReport::AfterRearm
        } else {
            NextReport::NotBefore(vigil_core::later(
                r.at,
                vigil_core::seconds(line.step_interval_s),
            ))
        };
        if !sent.is_empty() {
            actions.push(format!(
                "deleverage step {step} of {steps_total} ({} of each position at the line, market): {}",
                pct(line.step_pct),
                sent.join(", ")
            ));
        } else if let Some(why) = blocked {
            actions.push(format!("no deleveraging now: {why}"));
        } else if r.positions.is_empty() {
            actions.push("no open position to cut".into());
        } else if line.step_pct.is_zero() {
            actions.push("no deleveraging: risk.drawdown_control.step_pct is 0".into());
        }
        if let NextReport::NotBefore(t) = next {
            actions.push(format!(
                "next step no earlier than {} while the drawdown stays beyond the line",
                t.format("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
        let event = if first {
            Some(Event::DrawdownControlEngaged)
        } else if !sent.is_empty() {
            Some(Event::DeleverageStep)
        } else {
            None
        };
        let event = event.map(|event| {
            LogEvent::new(ts, SERVICE, event)
                .with("drawdown", r.drawdown.round_dp(6))
                .with("line", line.line_pct)
                .with("day_pnl", r.day_pnl.round_dp(2))
                .with("equity", r.equity.round_dp(2))
                .with("peak_equity", r.peak.round_dp(2))
                .with("gross_exposure", r.gross_exposure.round_dp(2))
                .with("step", step)
                .with("orders", sent.len())
                .with("trading_state", state.as_str())
                .with("actions", actions.join("; "))
        });
        DrawdownPlan {
            reduce_only,
            orders,
            next,
            event,
        }
    }

    /// After `change` (logged at `now`): when trading is set active while the line is
    /// engaged, the operator has seen the drawdown, so the line is measured afresh from the
    /// equity at this moment. Returns the re-arming for the Execution agent and its log
    /// line, or `None` when nothing is re-armed.
    pub(crate) fn rearm(
        &mut self,
        change: &StateChange,
        now: Timestamp,
        cfg: &RiskConfig,
    ) -> Option<(RearmDrawdown, LogEvent)> {
        if change.to != TradingState::Active {
            return None;
        }
        self.engaged.take()?;
        self.arming += 1;
        let event = LogEvent::new(now, SERVICE, Event::DrawdownControlRearmed)
            .with("actor", change.actor.clone())
            .with("reason", change.reason.clone())
            .with("line", cfg.drawdown_control.line_pct);
        Some((
            RearmDrawdown {
                arming: self.arming,
            },
            event,
        ))
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::Symbol;
    use vigil_testkit::text;

    use super::*;
    use crate::fixtures::{day, report};

    fn symbols() -> SymbolTable {
        SymbolTable::new(vec![Symbol::from("TEST")])
    }

    fn decide(
        c: &mut DrawdownControl,
        r: &DrawdownReport,
        state: TradingState,
        closed: bool,
    ) -> DrawdownPlan {
        c.on_report(&RiskConfig::default(), r, r.at, state, closed, &symbols())
    }

    #[test]
    fn crossing_the_line_goes_reduce_only_and_cuts_a_step_of_the_size_at_the_line() {
        let mut c = DrawdownControl::default();
        let r = report(0, 10, dec!(100), dec!(88000));
        let plan = decide(&mut c, &r, TradingState::Active, false);
        let reason = plan.reduce_only.expect("reduce-only");
        assert!(reason.contains("drawdown 12%"), "{reason}");
        let orders: Vec<_> = plan
            .orders
            .iter()
            .map(|o| (o.side, o.quantity, o.reason.as_str()))
            .collect();
        assert_eq!(
            orders,
            vec![(vigil_core::Side::Sell, dec!(25), "deleverage step 1")]
        );
        assert_eq!(plan.next, NextReport::NotBefore(day(11)));
        let event = plan.event.expect("engaged");
        assert_eq!(event.event, Event::DrawdownControlEngaged);
        assert_eq!(text(&event, "trading_state"), "reduce_only");

        // The next step is a share of the size at the line, not of what is left.
        let r = report(0, 11, dec!(75), dec!(87000));
        let plan = decide(&mut c, &r, TradingState::ReduceOnly, false);
        assert!(plan.reduce_only.is_none());
        assert_eq!(plan.orders[0].quantity, dec!(25));
        assert_eq!(plan.event.expect("a step").event, Event::DeleverageStep);
    }

    #[test]
    fn no_step_while_halted_or_closed_and_nothing_logged_after_the_first_time() {
        for (state, closed, why) in [
            (TradingState::Halted, false, "trading is halted"),
            (TradingState::ReduceOnly, true, "the market is closed"),
        ] {
            let mut c = DrawdownControl::default();
            let r = report(0, 10, dec!(100), dec!(88000));
            let plan = decide(&mut c, &r, state, closed);
            assert!(plan.reduce_only.is_none());
            assert!(plan.orders.is_empty());
            let actions = text(&plan.event.expect("engaged"), "actions");
            assert!(actions.contains(why), "{actions}");
            let plan = decide(&mut c, &r, state, closed);
            assert!(plan.event.is_none());
        }
    }

    #[test]
    fn setting_trading_active_rearms_and_reports_of_the_old_line_get_nothing() {
        let mut c = DrawdownControl::default();
        let r = report(0, 10, dec!(100), dec!(88000));
        decide(&mut c, &r, TradingState::Active, false);
        let change = |to| StateChange {
            from: TradingState::ReduceOnly,
            to,
            actor: "operator".into(),
            reason: "reviewed".into(),
        };
        assert!(
            c.rearm(&change(TradingState::Halted), r.at, &RiskConfig::default())
                .is_none()
        );
        let (rearm, event) = c
            .rearm(&change(TradingState::Active), r.at, &RiskConfig::default())
            .expect("re-armed");
        assert_eq!(rearm.arming, 1);
        assert_eq!(text(&event, "actor"), "operator");
        assert!(
            c.rearm(&change(TradingState::Active), r.at, &RiskConfig::default())
                .is_none(),
            "not engaged any more"
        );
        let plan = decide(&mut c, &r, TradingState::Active, false);
        assert_eq!(plan.next, NextReport::AfterRearm);
        assert!(plan.orders.is_empty() && plan.event.is_none());
    }
}
