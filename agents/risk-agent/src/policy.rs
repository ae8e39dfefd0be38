//! The pure decision: signal + book + limits → order or rejection.

use rust_decimal::Decimal;
use vigil_config::{RiskConfig, Sizing};
use vigil_core::{Direction, Regime, Side, SymbolId, TradingState};
use vigil_messages::{BookSnapshot, PositionView};

/// What the Risk agent decided about a signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Send an order.
    Order {
        /// Side.
        side: Side,
        /// Quantity, positive.
        quantity: Decimal,
        /// The position the order leads to.
        target: Decimal,
    },
    /// The book already matches the target.
    NoChange {
        /// The target.
        target: Decimal,
    },
    /// Refused.
    Reject {
        /// Why, for the log and the operator.
        reason: String,
    },
}

fn factor(cfg: &RiskConfig, regime: Regime) -> Decimal {
    let f = &cfg.regime_size_factor;
    match regime {
        Regime::Unknown => f.unknown,
        Regime::Trending => f.trending,
        Regime::Ranging => f.ranging,
        Regime::Volatile => f.volatile,
    }
}

/// `qty` rounded down to a multiple of `step`; `qty` itself when the multiple cannot be
/// computed (a step too fine for the size overflows `Decimal`; validation keeps
/// `risk.quantity_step` at 10^-8 or more, this is the guard behind it).
fn round_down(qty: Decimal, step: Decimal) -> Decimal {
    to_step(qty, step, Decimal::floor)
}

fn to_step(qty: Decimal, step: Decimal, round: fn(&Decimal) -> Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return qty;
    }
    qty.checked_div(step)
        .and_then(|n| round(&n).checked_mul(step))
        .unwrap_or(qty)
}

/// Decides on a signal for `direction` at `price` given the book and the trading state.
pub fn decide(
    cfg: &RiskConfig,
    state: TradingState,
    direction: Direction,
    price: Decimal,
    regime: Regime,
    book: &BookSnapshot,
) -> Decision {
    decide_netted(
        cfg,
        state,
        &[(direction, Decimal::ONE)],
        price,
        regime,
        book,
    )
    .0
}

/// Decides on the net of `legs` (each a direction and its share of the size, at most two: a
/// canary's production and candidate); returns the decision and each leg's target (the
/// net rounded toward zero to the step; each leg after the first rounded down on its own,
/// the first taking the rest: their sum is the target unless reduce-only changed it).
pub(crate) fn decide_netted(
    cfg: &RiskConfig,
    state: TradingState,
    legs: &[(Direction, Decimal)],
    price: Decimal,
    regime: Regime,
    book: &BookSnapshot,
) -> (Decision, [Decimal; 2]) {
    let mut targets = [Decimal::ZERO; 2];
    let decision = decide_legs(cfg, state, legs, price, regime, book, &mut targets);
    (decision, targets)
}

#[allow(clippy::too_many_arguments)]
fn decide_legs(
    cfg: &RiskConfig,
    state: TradingState,
    legs: &[(Direction, Decimal)],
    price: Decimal,
    regime: Regime,
    book: &BookSnapshot,
    targets: &mut [Decimal; 2],
) -> Decision {
    if state == TradingState::Halted {
        return Decision::Reject {
            reason: "trading halted: circuit breaker tripped".into(),
        };
    }
    if price <= Decimal::ZERO {
        return Decision::Reject {
            reason: format!("reference price {price} is not positive"),
        };
    }
    let current = book.position;
    let size = match cfg.sizing {
        Sizing::FixedQuantity => cfg.fixed_quantity,
        Sizing::PercentOfEquity => {
            if book.equity <= Decimal::ZERO {
                return Decision::Reject {
                    reason: format!("equity {} is not positive", book.equity),
                };
            }
            cfg.position_pct * book.equity / price
        }
    };
    let size = size * factor(cfg, regime);
    // The net, rounded toward zero to the step; the other legs each rounded down, the
    // first (production's) what is left, so that netting loses no step of the size.
    let net: Decimal = legs.iter().map(|(d, share)| d.sign() * size * share).sum();
    let magnitude = round_down(net.abs(), cfg.quantity_step);
    let mut target = if net.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    };
    let mut rest = target;
    for ((direction, share), t) in legs.iter().zip(targets.iter_mut()).skip(1) {
        *t = direction.sign() * round_down(size * share, cfg.quantity_step);
        rest -= *t;
    }
    targets[0] = rest;

    if state == TradingState::ReduceOnly {
        let flips = !current.is_zero()
            && !target.is_zero()
            && current.is_sign_positive() != target.is_sign_positive();
        if current.is_zero() {
            return Decision::Reject {
                reason: "reduce-only: no position to reduce".into(),
            };
        }
        if flips {
            target = Decimal::ZERO;
        } else if target.abs() > current.abs() {
            return Decision::Reject {
                reason: format!("reduce-only: target {target} would increase position {current}"),
            };
        }
    }

    let delta = target - current;
    if delta.is_zero() {
        return Decision::NoChange { target };
    }

    let reduces = target.is_zero()
        || (target.is_sign_positive() == current.is_sign_positive()
            && target.abs() <= current.abs()
            && !current.is_zero());
    if !reduces {
        if book.equity <= Decimal::ZERO {
            return Decision::Reject {
                reason: format!("equity {} is not positive", book.equity),
            };
        }
        // For the reasons: a value as a share of equity, and a limit, in percent.
        let of_equity = |v: Decimal| (v / book.equity * Decimal::ONE_HUNDRED).round_dp(2);
        let percent = |share: Decimal| (share * Decimal::ONE_HUNDRED).normalize();
        let value = (target * price).abs();
        if value > cfg.max_position_pct * book.equity {
            return Decision::Reject {
                reason: format!(
                    "position {target} at {price} = {} would be {}% of equity {}, limit {}%",
                    value.round_dp(2),
                    of_equity(value),
                    book.equity.round_dp(2),
                    percent(cfg.max_position_pct)
                ),
            };
        }
        let gross_after = book.gross_exposure - (current * book.mark).abs() + value;
        if gross_after > cfg.max_gross_exposure_pct * book.equity {
            return Decision::Reject {
                reason: format!(
                    "gross exposure would be {} ({}% of equity), limit {}%",
                    gross_after.round_dp(2),
                    of_equity(gross_after),
                    percent(cfg.max_gross_exposure_pct)
                ),
            };
        }
    }
    Decision::Order {
        side: if delta > Decimal::ZERO {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity: delta.abs(),
        target,
    }
}

/// One step of deleveraging under the drawdown control line: each open position is cut by
/// `step_pct` of its size when the line was crossed (`sizes`; the current size for a symbol
/// not in it), rounded up to `quantity_step` so that every step makes progress, and never
/// past flat. Returns (symbol, side, quantity) for every position to cut, in `positions`'
/// order.
pub fn deleverage_step(
    step_pct: Decimal,
    quantity_step: Decimal,
    sizes: &[(SymbolId, Decimal)],
    positions: &[PositionView],
) -> Vec<(SymbolId, Side, Decimal)> {
    positions
        .iter()
        .filter(|p| !p.quantity.is_zero())
        .filter_map(|p| {
            let held = p.quantity.abs();
            let base = sizes
                .iter()
                .find(|(s, _)| *s == p.symbol)
                .map_or(held, |(_, q)| *q);
            let cut = round_up(base * step_pct, quantity_step).min(held);
            let side = if p.quantity.is_sign_positive() {
                Side::Sell
            } else {
                Side::Buy
            };
            (cut > Decimal::ZERO).then_some((p.symbol, side, cut))
        })
        .collect()
}

fn round_up(qty: Decimal, step: Decimal) -> Decimal {
    to_step(qty, step, Decimal::ceil)
}

#[cfg(test)]
mod tests;
