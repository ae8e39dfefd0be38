//! Test fixtures shared by the unit tests of the crate: daily bars, signals, books and
//! drawdown reports.

use std::sync::Arc;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use vigil_core::{Bar, Direction, Regime, Signal, SymbolId, Timestamp, TraceId};
use vigil_messages::{BookSnapshot, DrawdownReport};
use vigil_testkit::timestamp as t;

/// Midnight of day `d` after 2024-01-01.
pub(crate) fn day(d: usize) -> Timestamp {
    t("2024-01-01T00:00:00Z") + chrono::Duration::days(d as i64)
}

/// A flat book of 100,000 in cash, marked at 100.
pub(crate) fn flat_book() -> BookSnapshot {
    BookSnapshot {
        cash: dec!(100000),
        equity: dec!(100000),
        gross_exposure: dec!(0),
        position: dec!(0),
        mark: dec!(100),
        open_orders: vec![],
        ledgers: Vec::new(),
    }
}

/// `n` daily bars, all closing at 100.
pub(crate) fn bars(first_day: usize, n: usize) -> Arc<Vec<Bar>> {
    Arc::new(
        (0..n)
            .map(|i| Bar {
                symbol: SymbolId(0),
                ts: day(first_day + i),
                open: dec!(100),
                high: dec!(101),
                low: dec!(99),
                close: dec!(100),
                volume: Some(dec!(1000)),
            })
            .collect(),
    )
}

/// A trending signal of strength 0.5 at `bar`'s close.
pub(crate) fn signal(bar: &Bar, direction: Direction) -> Signal {
    let trace_id = TraceId::for_signal("TEST", bar.ts);
    Signal {
        signal_id: trace_id.signal_id(),
        trace_id,
        symbol: bar.symbol,
        at: bar.ts,
        direction,
        strength: 0.5,
        reference_price: bar.close,
        regime: Regime::Trending,
        model_version: "ema_cross@1",
        canary: None,
    }
}

/// A drawdown report for day `d`: a peak of 100,000, one position in symbol 0 marked at 90.
pub(crate) fn report(arming: u64, d: usize, position: Decimal, equity: Decimal) -> DrawdownReport {
    DrawdownReport {
        arming,
        at: day(d),
        equity,
        peak: dec!(100000),
        drawdown: (dec!(100000) - equity) / dec!(100000),
        day_pnl: dec!(-1500),
        gross_exposure: position.abs() * dec!(90),
        positions: vec![vigil_messages::PositionView {
            symbol: SymbolId(0),
            quantity: position,
            mark: dec!(90),
        }],
    }
}
