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
    let size = round_down(size * factor(cfg, regime), cfg.quantity_step);
    let mut target = direction.sign() * size;

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
        let value = (target * price).abs();
        let limit = cfg.max_position_pct * book.equity;
        if value > limit {
            return Decision::Reject {
                reason: format!(
                    "position {target} at {price} = {} would be {}% of equity {}, limit {}%",
                    value.round_dp(2),
                    (value / book.equity * Decimal::ONE_HUNDRED).round_dp(2),
                    book.equity.round_dp(2),
                    (cfg.max_position_pct * Decimal::ONE_HUNDRED).normalize()
                ),
            };
        }
        let gross_after = book.gross_exposure - (current * book.mark).abs() + value;
        let gross_limit = cfg.max_gross_exposure_pct * book.equity;
        if gross_after > gross_limit {
            return Decision::Reject {
                reason: format!(
                    "gross exposure would be {} ({}% of equity), limit {}%",
                    gross_after.round_dp(2),
                    (gross_after / book.equity * Decimal::ONE_HUNDRED).round_dp(2),
                    (cfg.max_gross_exposure_pct * Decimal::ONE_HUNDRED).normalize()
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_step_too_fine_for_the_size_leaves_the_size_as_it_is_instead_of_panicking() {
        let step = Decimal::new(1, 28);
        assert_eq!(round_down(dec!(8000.5), step), dec!(8000.5));
        assert_eq!(round_up(dec!(8000.5), step), dec!(8000.5));
        assert_eq!(round_down(dec!(8000.5), dec!(0.25)), dec!(8000.5));
        assert_eq!(round_down(dec!(8000.6), dec!(0.25)), dec!(8000.5));
        assert_eq!(round_up(dec!(8000.6), dec!(0.25)), dec!(8000.75));
    }

    fn book(position: Decimal, equity: Decimal, mark: Decimal) -> BookSnapshot {
        BookSnapshot {
            cash: equity - position * mark,
            equity,
            gross_exposure: (position * mark).abs(),
            position,
            mark,
            open_orders: vec![],
        }
    }

    /// The defaults, sized at 10% of equity (round numbers for the arithmetic below).
    fn cfg() -> RiskConfig {
        RiskConfig {
            position_pct: dec!(0.10),
            ..RiskConfig::default()
        }
    }

    #[test]
    fn sizes_ten_percent_of_equity_in_whole_shares() {
        let d = decide(
            &cfg(),
            TradingState::Active,
            Direction::Long,
            dec!(300),
            Regime::Trending,
            &book(dec!(0), dec!(100000), dec!(300)),
        );
        assert_eq!(
            d,
            Decision::Order {
                side: Side::Buy,
                quantity: dec!(33),
                target: dec!(33)
            }
        );
    }

    #[test]
    fn flip_sells_twice_the_position() {
        let d = decide(
            &cfg(),
            TradingState::Active,
            Direction::Short,
            dec!(100),
            Regime::Trending,
            &book(dec!(100), dec!(100000), dec!(100)),
        );
        assert_eq!(
            d,
            Decision::Order {
                side: Side::Sell,
                quantity: dec!(200),
                target: dec!(-100)
            }
        );
    }

    #[test]
    fn volatile_regime_halves_the_size() {
        let d = decide(
            &cfg(),
            TradingState::Active,
            Direction::Long,
            dec!(100),
            Regime::Volatile,
            &book(dec!(0), dec!(100000), dec!(100)),
        );
        assert!(matches!(d, Decision::Order { quantity, .. } if quantity == dec!(50)));
    }

    #[test]
    fn rejects_order_above_max_position_pct() {
        let mut c = cfg();
        c.sizing = Sizing::FixedQuantity;
        c.fixed_quantity = dec!(200);
        let d = decide(
            &c,
            TradingState::Active,
            Direction::Long,
            dec!(100),
            Regime::Trending,
            &book(dec!(0), dec!(100000), dec!(100)),
        );
        match d {
            Decision::Reject { reason } => {
                assert!(reason.contains("20.00% of equity"), "{reason}");
                assert!(reason.contains("limit 10%"), "{reason}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn rejects_when_gross_exposure_would_exceed_limit() {
        let mut c = cfg();
        c.max_gross_exposure_pct = dec!(0.15);
        let mut b = book(dec!(0), dec!(100000), dec!(100));
        b.gross_exposure = dec!(10000); // other symbols
        let d = decide(
            &c,
            TradingState::Active,
            Direction::Long,
            dec!(100),
            Regime::Trending,
            &b,
        );
        assert!(matches!(d, Decision::Reject { reason } if reason.contains("gross exposure")));
    }

    #[test]
    fn halted_rejects_everything() {
        let d = decide(
            &cfg(),
            TradingState::Halted,
            Direction::Flat,
            dec!(100),
            Regime::Trending,
            &book(dec!(10), dec!(100000), dec!(100)),
        );
        assert!(matches!(d, Decision::Reject { reason } if reason.contains("halted")));
    }

    #[test]
    fn reduce_only_turns_a_flip_into_a_close_and_refuses_increases() {
        let b = book(dec!(100), dec!(100000), dec!(100));
        let d = decide(
            &cfg(),
            TradingState::ReduceOnly,
            Direction::Short,
            dec!(100),
            Regime::Trending,
            &b,
        );
        assert_eq!(
            d,
            Decision::Order {
                side: Side::Sell,
                quantity: dec!(100),
                target: dec!(0)
            }
        );
        let flat = book(dec!(0), dec!(100000), dec!(100));
        assert!(matches!(
            decide(
                &cfg(),
                TradingState::ReduceOnly,
                Direction::Long,
                dec!(100),
                Regime::Trending,
                &flat
            ),
            Decision::Reject { .. }
        ));
    }

    #[test]
    fn a_reduction_is_never_blocked_by_limits() {
        let mut c = cfg();
        c.max_position_pct = dec!(0.01);
        c.position_pct = dec!(0.01);
        // Long 500 at 100 = 50% of equity, far over the limit; going flat must pass.
        let d = decide(
            &c,
            TradingState::Active,
            Direction::Flat,
            dec!(100),
            Regime::Trending,
            &book(dec!(500), dec!(100000), dec!(100)),
        );
        assert!(
            matches!(d, Decision::Order { side: Side::Sell, quantity, .. } if quantity == dec!(500))
        );
    }

    proptest! {
        #[test]
        fn approved_orders_respect_the_position_limit(
            equity in 1_000u32..10_000_000,
            price in 1u32..5_000,
            pos in -1_000i32..1_000,
            long in any::<bool>(),
            pct in 1u32..100,
        ) {
            let mut c = cfg();
            c.position_pct = Decimal::new(pct.into(), 2).min(c.max_position_pct);
            let equity = Decimal::from(equity);
            let price = Decimal::from(price);
            let b = book(Decimal::from(pos), equity, price);
            let dir = if long { Direction::Long } else { Direction::Short };
            if let Decision::Order { target, quantity, .. } =
                decide(&c, TradingState::Active, dir, price, Regime::Trending, &b)
            {
                prop_assert!(quantity > Decimal::ZERO);
                let reduces = target.abs() <= b.position.abs();
                prop_assert!(reduces || (target * price).abs() <= c.max_position_pct * equity);
                prop_assert_eq!(quantity, (target - b.position).abs());
            }
        }
    }

    fn held(symbol: u32, quantity: Decimal) -> PositionView {
        PositionView {
            symbol: SymbolId(symbol),
            quantity,
            mark: dec!(100),
        }
    }

    #[test]
    fn a_deleverage_step_cuts_each_position_by_a_share_of_its_size_at_the_line() {
        let sizes = [(SymbolId(0), dec!(100)), (SymbolId(1), dec!(30))];
        // 25% of 100 = 25; 25% of 30 = 7.5, rounded up to 8; a short is bought back.
        let step = deleverage_step(
            dec!(0.25),
            dec!(1),
            &sizes,
            &[held(0, dec!(100)), held(1, dec!(-30))],
        );
        assert_eq!(
            step,
            vec![
                (SymbolId(0), Side::Sell, dec!(25)),
                (SymbolId(1), Side::Buy, dec!(8))
            ]
        );
        // The fourth step: what is left, never past flat; a flat symbol gets no order.
        let step = deleverage_step(
            dec!(0.25),
            dec!(1),
            &sizes,
            &[held(0, dec!(20)), held(1, dec!(0))],
        );
        assert_eq!(step, vec![(SymbolId(0), Side::Sell, dec!(20))]);
        // A symbol not held at the line is cut by a share of its current size.
        let step = deleverage_step(dec!(0.5), dec!(1), &sizes, &[held(7, dec!(11))]);
        assert_eq!(step, vec![(SymbolId(7), Side::Sell, dec!(6))]);
        // No step size: only new positions stop.
        assert!(deleverage_step(dec!(0), dec!(1), &sizes, &[held(0, dec!(100))]).is_empty());
    }
}
