//! The bars the broker prices from: the same CSV files the feed replays, read whole at start.

use std::path::PathBuf;

use vigil_core::{Bar, SymbolId, Timestamp};
use vigil_providers::{CsvBarReader, CsvSource};

use crate::BrokerError;

/// Bars read per call while loading.
const READ_BATCH: usize = 4096;

/// Every symbol's bars, in time order; a symbol's id is its place in the list.
#[derive(Debug, Clone, Default)]
pub struct Market {
    series: Vec<Series>,
}

#[derive(Debug, Clone)]
struct Series {
    name: String,
    bars: Vec<Bar>,
    /// Whether the file has a volume column (else every bar's volume is unknown).
    has_volume: bool,
}

impl Market {
    /// Reads every `(symbol, file)` whole.
    ///
    /// # Errors
    /// A file that cannot be read or holds a malformed row (the error names file and line),
    /// or a symbol given twice.
    pub fn load(data: &[(String, PathBuf)]) -> Result<Self, BrokerError> {
        let mut series = Vec::with_capacity(data.len());
        for (i, (name, path)) in data.iter().enumerate() {
            if data[..i].iter().any(|(n, _)| n == name) {
                return Err(BrokerError::Data(format!("symbol {name} is given twice")));
            }
            let source = CsvSource::file(SymbolId(i as u32), path.clone());
            let (bars, has_volume) = read_all(&source)?;
            series.push(Series {
                name: name.clone(),
                bars,
                has_volume,
            });
        }
        Ok(Self { series })
    }

    /// A market of bars held in memory (tests); each symbol's bars must be in time order
    /// and carry its id (its place in the list).
    pub fn from_bars(series: Vec<(String, Vec<Bar>)>) -> Self {
        Self {
            series: series
                .into_iter()
                .map(|(name, bars)| Series {
                    has_volume: bars.iter().all(|b| b.volume.is_some()),
                    name,
                    bars,
                })
                .collect(),
        }
    }

    /// The id of `name`, if the broker prices it.
    pub fn id(&self, name: &str) -> Option<SymbolId> {
        self.series
            .iter()
            .position(|s| s.name == name)
            .map(|i| SymbolId(i as u32))
    }

    /// The name of `id`.
    pub fn name(&self, id: SymbolId) -> &str {
        self.series.get(id.index()).map_or("", |s| s.name.as_str())
    }

    /// The names of the symbols whose file has no volume column.
    pub fn unknown_volume(&self) -> impl Iterator<Item = &str> {
        self.series
            .iter()
            .filter(|s| !s.has_volume)
            .map(|s| s.name.as_str())
    }

    /// The ids of every symbol.
    pub fn ids(&self) -> impl Iterator<Item = SymbolId> {
        (0..self.series.len()).map(|i| SymbolId(i as u32))
    }

    /// The bars with `after < ts <= upto` (every bar up to `upto` when `after` is `None`),
    /// in time order; bars at the same time in symbol order.
    pub fn bars_between(&self, after: Option<Timestamp>, upto: Timestamp) -> Vec<Bar> {
        let mut out = Vec::new();
        for s in &self.series {
            let from = after.map_or(0, |a| s.bars.partition_point(|b| b.ts <= a));
            let to = s.bars.partition_point(|b| b.ts <= upto);
            if from < to {
                out.extend_from_slice(&s.bars[from..to]);
            }
        }
        // Stable: equal times keep symbol order.
        out.sort_by_key(|b| b.ts);
        out
    }

    /// The last bar of `id` at or before `at`.
    pub fn last_bar_at(&self, id: SymbolId, at: Timestamp) -> Option<&Bar> {
        let bars = &self.series.get(id.index())?.bars;
        let n = bars.partition_point(|b| b.ts <= at);
        n.checked_sub(1).map(|i| &bars[i])
    }
}

/// The bars of `source`, and whether it has a volume column.
fn read_all(source: &CsvSource) -> Result<(Vec<Bar>, bool), BrokerError> {
    let data = |e: vigil_providers::CsvError| BrokerError::Data(e.to_string());
    let mut reader = CsvBarReader::open(source).map_err(data)?;
    let mut bars = Vec::new();
    while reader.read_batch(READ_BATCH, &mut bars).map_err(data)? > 0 {}
    Ok((bars, reader.has_volume()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("test time")
    }

    fn bar(symbol: u32, ts: &str) -> Bar {
        Bar {
            symbol: SymbolId(symbol),
            ts: t(ts),
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            close: Decimal::ONE,
            volume: Some(Decimal::ONE),
        }
    }

    #[test]
    fn bars_between_merges_symbols_in_time_order_after_exclusive_upto_inclusive() {
        let m = Market::from_bars(vec![
            (
                "A".into(),
                vec![
                    bar(0, "2024-01-01T00:00:00Z"),
                    bar(0, "2024-01-03T00:00:00Z"),
                ],
            ),
            (
                "B".into(),
                vec![
                    bar(1, "2024-01-02T00:00:00Z"),
                    bar(1, "2024-01-03T00:00:00Z"),
                ],
            ),
        ]);
        let got: Vec<(u32, Timestamp)> = m
            .bars_between(Some(t("2024-01-01T00:00:00Z")), t("2024-01-03T00:00:00Z"))
            .iter()
            .map(|b| (b.symbol.0, b.ts))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, t("2024-01-02T00:00:00Z")),
                (0, t("2024-01-03T00:00:00Z")),
                (1, t("2024-01-03T00:00:00Z")),
            ]
        );
        assert_eq!(m.bars_between(None, t("2024-01-01T12:00:00Z")).len(), 1);
        assert_eq!(
            m.last_bar_at(SymbolId(1), t("2024-01-02T23:00:00Z"))
                .map(|b| b.ts),
            Some(t("2024-01-02T00:00:00Z"))
        );
        assert!(
            m.last_bar_at(SymbolId(1), t("2023-12-31T00:00:00Z"))
                .is_none()
        );
        assert_eq!(m.id("B"), Some(SymbolId(1)));
        assert_eq!(m.name(SymbolId(0)), "A");
    }
}
