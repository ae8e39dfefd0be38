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
        ledgers: Vec::new(),
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
