//! The vectorized layer: features → model output → positions → returns net of costs, over
//! whole columns, with no order path. Its figures are what the model earns if every target
//! position were taken at the close it was decided on, less costs per unit of position
//! changed; the OMS layer (issue 21, next) measures what the real order path leaves of it.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive as _;
use vigil_core::SymbolId;
use vigil_model::{Artifact, Ema, Kind, Output};
use vigil_providers::{CsvBarReader, CsvSource};

/// One instrument's closes and their times, read once.
#[derive(Clone, Debug, Default)]
pub struct Bars {
    /// Each bar's label time.
    pub times: Vec<DateTime<Utc>>,
    /// Each bar's close, as `f64` (statistics).
    pub closes: Vec<f64>,
}

/// Why a vectorized backtest cannot run.
#[derive(Debug, thiserror::Error)]
pub enum VectorizedError {
    /// The data cannot be read.
    #[error("{0}")]
    Data(String),
    /// The model's kind has no runtime here yet.
    #[error("model {model}: kind {kind} has no runtime in the vectorized layer yet (issue 21)")]
    Runtime {
        /// `name@version`.
        model: String,
        /// Its kind.
        kind: String,
    },
}

impl Bars {
    /// Reads a bars CSV file (the replay's reader and checks).
    ///
    /// # Errors
    /// The file cannot be opened or a row is bad; the message names the file and the row.
    pub fn read(path: &Path) -> Result<Self, VectorizedError> {
        let mut reader = CsvBarReader::open(&CsvSource::file(SymbolId(0), path))
            .map_err(|e| VectorizedError::Data(e.to_string()))?;
        let mut out = Self::default();
        let mut batch = Vec::with_capacity(4096);
        loop {
            batch.clear();
            let n = reader
                .read_batch(4096, &mut batch)
                .map_err(|e| VectorizedError::Data(e.to_string()))?;
            if n == 0 {
                break;
            }
            for bar in &batch {
                let close = bar.close.to_f64().ok_or_else(|| {
                    VectorizedError::Data(format!(
                        "{}: the close {} at {} is not a number a backtest can use",
                        path.display(),
                        bar.close,
                        bar.ts
                    ))
                })?;
                out.times.push(bar.ts);
                out.closes.push(close);
            }
        }
        Ok(out)
    }

    /// The bar interval: the median gap between bars (a weekend or a holiday does not make
    /// a daily file weekly).
    pub fn interval(&self) -> Option<Duration> {
        let mut gaps: Vec<Duration> = self.times.windows(2).map(|w| w[1] - w[0]).collect();
        if gaps.is_empty() {
            return None;
        }
        gaps.sort_unstable();
        Some(gaps[gaps.len() / 2])
    }
}

/// Costs a unit of position change pays, in basis points of its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    /// Commission.
    pub commission_bps: f64,
    /// Slippage.
    pub slippage_bps: f64,
}

impl Costs {
    fn per_unit(&self) -> f64 {
        (self.commission_bps + self.slippage_bps) / 10_000.0
    }
}

/// The columns a vectorized run produces, for [`crate::summarise`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// The strategy's return over each bar, net of costs (the first bar's is only the cost
    /// of the position taken at its close).
    pub returns: Vec<f64>,
    /// The target position decided at each bar's close (−1, 0 or +1).
    pub positions: Vec<f64>,
    /// Each closed trade's compounded return, net of costs.
    pub trades: Vec<f64>,
    /// Times the position changed.
    pub position_changes: u64,
    /// Bars with a position held.
    pub exposed_bars: u64,
    /// The sum of |position change|.
    pub turnover: f64,
}

/// The model's output at each bar (`None` while it warms up), for the kinds that run here.
///
/// # Errors
/// A kind without a runtime here.
pub fn outputs(
    model: &Artifact,
    closes: &[f64],
    allow_short: bool,
) -> Result<Vec<Option<f64>>, VectorizedError> {
    match model.manifest.kind {
        Kind::EmaCross => {
            let span = |key: &str| {
                model
                    .manifest
                    .parameters
                    .get(key)
                    .and_then(toml_integer)
                    // `Artifact::load` refused a manifest without both spans.
                    .unwrap_or(1)
            };
            let (mut fast, mut slow) = (Ema::new(span("fast_span")), Ema::new(span("slow_span")));
            Ok(closes
                .iter()
                .map(|c| {
                    let d = fast.update(*c) - slow.update(*c);
                    // Flat instead of short when shorts are not allowed, as the live model.
                    Some(if allow_short { d } else { d.max(0.0) })
                })
                .collect())
        }
        Kind::Onnx => Err(VectorizedError::Runtime {
            model: model.label(),
            kind: "onnx".into(),
        }),
    }
}

fn toml_integer(v: &toml::Value) -> Option<usize> {
    v.as_integer().and_then(|n| usize::try_from(n).ok())
}

/// The position an output asks for.
fn position(output: &Output, value: Option<f64>) -> f64 {
    match (output, value) {
        (_, None) => 0.0,
        (Output::Sign, Some(v)) => {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        (Output::Threshold { long, short }, Some(v)) => {
            if v > *long {
                1.0
            } else if v < *short {
                -1.0
            } else {
                0.0
            }
        }
    }
}

/// Runs the columns: the position decided at bar `t`'s close (delayed `lag` bars, the
/// look-ahead probe) earns bar `t + 1`'s return; each change pays its costs at the bar it
/// is made.
pub fn run(
    closes: &[f64],
    outputs: &[Option<f64>],
    output: &Output,
    costs: &Costs,
    lag: usize,
) -> Run {
    let n = closes.len().min(outputs.len());
    let mut out = Run {
        positions: Vec::with_capacity(n),
        returns: Vec::with_capacity(n),
        ..Run::default()
    };
    let wanted: Vec<f64> = outputs[..n].iter().map(|o| position(output, *o)).collect();
    let held = |t: usize| if t >= lag { wanted[t - lag] } else { 0.0 };
    let cost = costs.per_unit();
    let mut trade = 1.0;
    let mut previous = 0.0;
    for t in 0..n {
        let pos = held(t);
        out.positions.push(pos);
        let change = (pos - previous).abs();
        let market = if t > 0 {
            closes[t] / closes[t - 1] - 1.0
        } else {
            0.0
        };
        out.returns.push(previous * market - cost * change);
        if previous != 0.0 {
            out.exposed_bars += 1;
            trade *= 1.0 + previous * market;
        }
        if change > 0.0 {
            out.position_changes += 1;
            out.turnover += change;
            if previous != 0.0 {
                // The trade that ends here, with its entry and exit costs.
                out.trades.push(trade * (1.0 - cost) * (1.0 - cost) - 1.0);
            }
            trade = 1.0;
        }
        previous = pos;
    }
    out
}

#[cfg(test)]
mod tests;
