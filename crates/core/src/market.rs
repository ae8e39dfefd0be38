//! Market data as the agents see it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// An instrument's ticker as configured (`GOOG`, `EUR/USD`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// Returns the ticker as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the ticker as shared text (no copy), for log fields.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.0)
    }
}

/// A dense index into the session's [`SymbolTable`]: per-symbol state lives in vectors,
/// so the per-bar path does no hashing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct SymbolId(pub u32);

impl SymbolId {
    /// Returns the id as a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The instruments of a session, fixed at start.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    symbols: Arc<[Symbol]>,
    by_name: Arc<HashMap<Symbol, SymbolId>>,
}

impl SymbolTable {
    /// Builds the table; ids follow the order given.
    pub fn new(symbols: impl IntoIterator<Item = Symbol>) -> Self {
        let symbols: Arc<[Symbol]> = symbols.into_iter().collect();
        let by_name = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), SymbolId(i as u32)))
            .collect();
        Self {
            symbols,
            by_name: Arc::new(by_name),
        }
    }

    /// Returns the ticker of `id`. Ids only come from this table, so an unknown id is a
    /// programming error; it is shown as `?` rather than panicking in a log path.
    pub fn name(&self, id: SymbolId) -> &str {
        self.symbols.get(id.index()).map_or("?", Symbol::as_str)
    }

    /// Returns the ticker of `id` as shared text (no copy), for log fields.
    pub fn shared(&self, id: SymbolId) -> Arc<str> {
        self.symbols
            .get(id.index())
            .map_or_else(|| Arc::from("?"), Symbol::shared)
    }

    /// Returns the symbol of `id`, if it is in the table.
    pub fn symbol(&self, id: SymbolId) -> Option<&Symbol> {
        self.symbols.get(id.index())
    }

    /// Looks a ticker up.
    pub fn id(&self, name: &str) -> Option<SymbolId> {
        self.by_name.get(&Symbol::from(name)).copied()
    }

    /// Returns the number of instruments.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Tells whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Iterates over `(id, symbol)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (SymbolId, &Symbol)> {
        self.symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (SymbolId(i as u32), s))
    }
}

/// One OHLCV bar, stamped with the time the bar opens (as the source labels it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bar {
    /// The instrument.
    pub symbol: SymbolId,
    /// The bar's label time.
    pub ts: Timestamp,
    /// Opening price.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Closing price.
    pub close: Decimal,
    /// Traded volume (fractional for some instruments); `None` when the source gives none
    /// (a CSV file without a volume column), which is not the same as a real zero.
    pub volume: Option<Decimal>,
}

/// Why a bar is impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarError {
    /// `high` is below `low`.
    #[error("high {high} is below low {low}")]
    HighBelowLow {
        /// The high.
        high: Decimal,
        /// The low.
        low: Decimal,
    },
    /// `open` or `close` lies outside `[low, high]`.
    #[error("{field} {value} lies outside the bar's range [{low}, {high}]")]
    OutsideRange {
        /// `open` or `close`.
        field: &'static str,
        /// Its value.
        value: Decimal,
        /// The low.
        low: Decimal,
        /// The high.
        high: Decimal,
    },
    /// A price is zero or negative.
    #[error("{field} {value} is not a positive price")]
    NonPositivePrice {
        /// Which price.
        field: &'static str,
        /// Its value.
        value: Decimal,
    },
    /// Volume is negative.
    #[error("volume {0} is negative")]
    NegativeVolume(Decimal),
}

impl Bar {
    /// Checks that the bar is possible: positive prices, `low <= open, close <= high`,
    /// volume not negative.
    ///
    /// # Errors
    /// Returns the first impossibility found.
    pub fn check(&self) -> Result<(), BarError> {
        for (field, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            if value <= Decimal::ZERO {
                return Err(BarError::NonPositivePrice { field, value });
            }
        }
        if self.high < self.low {
            return Err(BarError::HighBelowLow {
                high: self.high,
                low: self.low,
            });
        }
        for (field, value) in [("open", self.open), ("close", self.close)] {
            if value < self.low || value > self.high {
                return Err(BarError::OutsideRange {
                    field,
                    value,
                    low: self.low,
                    high: self.high,
                });
            }
        }
        if let Some(volume) = self.volume
            && volume < Decimal::ZERO
        {
            return Err(BarError::NegativeVolume(volume));
        }
        Ok(())
    }
}

/// Refuses bars stamped later than a clock's now plus a tolerance: a bar from the future
/// is a broken source (a wrong year, a unit error), and taken as it is it would move every
/// clock behind it past the present and make each true bar after it look old.
///
/// The clock is read only when a bar comes near the present: `horizon` is the furthest
/// time a past reading allowed, and clocks do not go back.
#[derive(Clone, Debug)]
pub struct FutureGuard {
    clock: crate::SharedClock,
    tolerance: chrono::Duration,
    horizon: Timestamp,
}

/// A bar stamped beyond the clock's now plus the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "timestamp {} is {} ahead of the clock ({}; tolerance {}s)",
    ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    ahead(*ts - *now),
    now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    tolerance.num_seconds()
)]
pub struct FutureBar {
    /// The bar's time.
    pub ts: Timestamp,
    /// The clock's time when it was checked.
    pub now: Timestamp,
    /// The tolerance allowed.
    pub tolerance: chrono::Duration,
}

/// `d` in seconds, or in days when it is two days or more.
fn ahead(d: chrono::Duration) -> String {
    match d.num_days() {
        days @ 2.. => format!("{days} days"),
        _ => format!("{}s", d.num_seconds()),
    }
}

impl FutureGuard {
    /// Refuses bars later than `clock`'s now plus `tolerance`.
    pub fn new(clock: crate::SharedClock, tolerance: chrono::Duration) -> Self {
        Self {
            clock,
            tolerance,
            horizon: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        }
    }

    /// Checks a bar's time.
    ///
    /// # Errors
    /// [`FutureBar`] when `ts` lies beyond the clock's now plus the tolerance.
    pub fn check(&mut self, ts: Timestamp) -> Result<(), FutureBar> {
        if ts <= self.horizon {
            return Ok(());
        }
        let now = self.clock.now();
        self.horizon = now
            .checked_add_signed(self.tolerance)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        if ts <= self.horizon {
            Ok(())
        } else {
            Err(FutureBar {
                ts,
                now,
                tolerance: self.tolerance,
            })
        }
    }
}

/// What a data provider delivers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MarketDataEvent {
    /// A completed bar.
    Bar(Bar),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_bar_beyond_the_clock_and_its_tolerance_is_refused_and_moves_nothing() {
        let at = |s: &str| -> Timestamp { s.parse().expect("a time") };
        let clock = crate::SimClock::starting_at(at("2026-12-04T15:00:00Z"));
        let mut guard = FutureGuard::new(
            std::sync::Arc::new(clock.clone()),
            chrono::Duration::seconds(60),
        );
        assert_eq!(guard.check(at("2026-12-04T14:59:00Z")), Ok(()));
        assert_eq!(
            guard.check(at("2026-12-04T15:01:00Z")),
            Ok(()),
            "within the tolerance"
        );
        let refused = guard
            .check(at("2099-01-01T00:00:00Z"))
            .expect_err("from the future");
        assert_eq!(
            refused.to_string(),
            "timestamp 2099-01-01T00:00:00Z is 26325 days ahead of the clock \
             (2026-12-04T15:00:00Z; tolerance 60s)"
        );
        assert_eq!(
            guard
                .check(at("2026-12-04T15:01:01Z"))
                .map_err(|e| e.to_string()),
            Err("timestamp 2026-12-04T15:01:01Z is 61s ahead of the clock \
                 (2026-12-04T15:00:00Z; tolerance 60s)"
                .to_string())
        );
        // The clock moves on: the same time is the present now.
        clock.advance_to(at("2026-12-04T15:02:00Z"));
        assert_eq!(guard.check(at("2026-12-04T15:01:01Z")), Ok(()));
    }

    fn bar(o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Bar {
        Bar {
            symbol: SymbolId(0),
            ts: "2024-01-01T00:00:00Z".parse().expect("ts"),
            open: o,
            high: h,
            low: l,
            close: c,
            volume: Some(dec!(1)),
        }
    }

    #[test]
    fn rejects_impossible_bars() {
        assert!(bar(dec!(10), dec!(11), dec!(9), dec!(10.5)).check().is_ok());
        assert!(matches!(
            bar(dec!(10), dec!(9), dec!(11), dec!(10)).check(),
            Err(BarError::HighBelowLow { .. })
        ));
        assert!(matches!(
            bar(dec!(12), dec!(11), dec!(9), dec!(10)).check(),
            Err(BarError::OutsideRange { field: "open", .. })
        ));
        assert!(matches!(
            bar(dec!(10), dec!(11), dec!(0), dec!(10)).check(),
            Err(BarError::NonPositivePrice { field: "low", .. })
        ));
    }

    #[test]
    fn symbol_table_maps_both_ways() {
        let t = SymbolTable::new(["GOOG".into(), "EUR/USD".into()]);
        assert_eq!(t.id("EUR/USD"), Some(SymbolId(1)));
        assert_eq!(t.name(SymbolId(0)), "GOOG");
        assert_eq!(t.name(SymbolId(7)), "?");
    }
}
