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
