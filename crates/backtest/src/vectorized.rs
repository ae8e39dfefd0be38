//! The vectorized layer: features → model output → positions → returns net of costs, over
//! whole columns, with no order path. Its figures are what the model earns if every target
//! position were taken at the close it was decided on, less costs per unit of position
//! changed; the OMS layer ([`crate::oms`]) measures what the real order path leaves of it.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use vigil_config::RegimeConfig;
use vigil_model::{Artifact, Ema, Feature, FeatureSet, Kind, Onnx, Output};
use vigil_regime_agent::Classifier;

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
    /// The model failed on the data.
    #[error(transparent)]
    Model(#[from] vigil_model::RuntimeError),
}

impl Bars {
    /// Reads a bars CSV file: its timestamps and closes.
    ///
    /// The file is read whole and only its `timestamp` and `close` columns are parsed (the
    /// replay's timestamp parser, the standard library's float parser), its two halves on
    /// two threads: a backtest needs no more, and this is what makes a million bars a
    /// fraction of a second. Each bar's close must be a positive number and each timestamp
    /// after the one before; a row that is not is refused with the file and its line.
    ///
    /// # Errors
    /// The file cannot be read or a row is bad; the message names the file and the line.
    pub fn read(path: &Path) -> Result<Self, VectorizedError> {
        let bytes = std::fs::read(path)
            .map_err(|e| VectorizedError::Data(format!("{}: cannot read: {e}", path.display())))?;
        Self::parse(&bytes, path)
    }

    /// [`Bars::read`] on a file's bytes already read (`path` names it in errors).
    ///
    /// # Errors
    /// A row is bad; the message names the file and the line.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, VectorizedError> {
        let at = |line: usize, what: String| {
            VectorizedError::Data(format!("{}:{line}: {what}", path.display()))
        };
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let header_end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let header = std::str::from_utf8(&bytes[..header_end])
            .map_err(|_| at(1, "the header is not UTF-8".into()))?;
        let names: Vec<String> = header
            .trim_end_matches('\r')
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let column = |name: &str| {
            names.iter().position(|h| h == name).ok_or_else(|| {
                at(
                    1,
                    format!("no `{name}` column in the header ({})", names.join(",")),
                )
            })
        };
        let columns = Columns {
            ts: column("timestamp")?,
            close: column("close")?,
        };
        // The rows, cut in two at a line's end near the middle; the second half's first
        // line number is found by counting the first half's lines.
        let body = &bytes[(header_end + 1).min(bytes.len())..];
        let mid = body[body.len() / 2..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |p| body.len() / 2 + p + 1);
        let (first, second) = body.split_at(mid);
        let second_line = 2 + first.iter().filter(|b| **b == b'\n').count();
        let (a, b) = std::thread::scope(|scope| {
            let later = scope.spawn(|| parse_rows(second, second_line, columns, second.len()));
            // Room for both halves: the second is appended without moving the first.
            let earlier = parse_rows(first, 2, columns, body.len());
            (earlier, later.join())
        });
        // A panic there is a bug here: carried on as this thread's.
        let b = b.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (mut out, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err((line, what)), _) | (Ok(_), Err((line, what))) => return Err(at(line, what)),
        };
        if let (Some(last), Some(next)) = (out.times.last(), b.times.first())
            && next <= last
        {
            return Err(at(
                second_line,
                format!("timestamp {next} is not after the previous bar's {last}"),
            ));
        }
        out.times.extend(b.times);
        out.closes.extend(b.closes);
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

    /// Calendar days from bar `from` to bar `to` (exclusive), as a ratio's minimum sample
    /// counts them.
    pub fn days(&self, from: usize, to: usize) -> f64 {
        match (
            self.times.get(from),
            to.checked_sub(1).and_then(|t| self.times.get(t)),
        ) {
            (Some(a), Some(b)) => (*b - *a).num_seconds() as f64 / 86_400.0,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
impl Bars {
    /// Daily bars from 2020-01-01 whose close at bar `i` is `close(i)` (the tests' wave).
    pub(crate) fn daily(n: usize, close: impl Fn(f64) -> f64) -> Self {
        let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2020, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        Self {
            times: (0..n).map(|i| t0 + Duration::days(i as i64)).collect(),
            closes: (0..n).map(|i| close(i as f64)).collect(),
        }
    }
}

/// Where a bars file keeps the two columns a backtest reads.
#[derive(Clone, Copy, Debug)]
struct Columns {
    ts: usize,
    close: usize,
}

/// Parses rows (no header) whose first line is line `first_line` of the file; `Err` is the
/// line and what is wrong with it. `room` bytes of rows are expected in all (the columns' capacity, at ~40 bytes a row).
fn parse_rows(
    rows: &[u8],
    first_line: usize,
    columns: Columns,
    room: usize,
) -> Result<Bars, (usize, String)> {
    let last_col = columns.ts.max(columns.close);
    let mut out = Bars {
        times: Vec::with_capacity(room / 40 + 1),
        closes: Vec::with_capacity(room / 40 + 1),
    };
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    for (i, line) in rows.split(|b| *b == b'\n').enumerate() {
        let number = first_line + i;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (mut ts, mut close) = (None, None);
        for (c, field) in line.splitn(last_col + 2, |b| *b == b',').enumerate() {
            if c == columns.ts {
                ts = Some(field);
            }
            if c == columns.close {
                close = Some(field);
            }
        }
        let (Some(ts), Some(close)) = (ts, close) else {
            return Err((number, format!("fewer than {} columns", last_col + 1)));
        };
        let time = vigil_providers::parse_timestamp(ts)
            .ok_or_else(|| (number, format!("timestamp {:?} is not a time", text(ts))))?;
        // Not a number and not a positive price are the same refusal, with the raw text.
        let value = std::str::from_utf8(close)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                (
                    number,
                    format!("close {:?} is not a positive price", text(close)),
                )
            })?;
        if let Some(previous) = out.times.last()
            && time <= *previous
        {
            return Err((
                number,
                format!("timestamp {time} is not after the previous bar's {previous}"),
            ));
        }
        out.times.push(time);
        out.closes.push(value);
    }
    Ok(out)
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
    /// No costs (the parity mode).
    pub const FREE: Self = Self {
        commission_bps: 0.0,
        slippage_bps: 0.0,
    };

    fn per_unit(&self) -> f64 {
        (self.commission_bps + self.slippage_bps) / 10_000.0
    }

    /// Both costs doubled (the cost probe).
    pub fn doubled(&self) -> Self {
        Self {
            commission_bps: self.commission_bps * 2.0,
            slippage_bps: self.slippage_bps * 2.0,
        }
    }
}

/// How outputs become returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setup {
    /// How an output becomes a target position.
    pub output: Output,
    /// Whether a short is taken (otherwise flat).
    pub allow_short: bool,
    /// The costs.
    pub costs: Costs,
    /// The fraction of equity a whole unit of position is (`[risk] position_pct` when sized
    /// as a percent of equity; 1 for the whole account).
    pub exposure: f64,
    /// Bars each position is delayed (0; 1 is the look-ahead probe).
    pub lag: usize,
}

/// The columns a vectorized run produces, for [`crate::summarise`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// The strategy's return over each bar, net of costs (the first bar's is only the cost
    /// of the position taken at its close).
    pub returns: Vec<f64>,
    /// The target position held after each bar's close (−1, 0 or +1 units).
    pub positions: Vec<f64>,
    /// Each closed trade's compounded return on the equity it used, net of costs.
    pub trades: Vec<f64>,
    /// The bar at which each closed trade ended.
    pub trade_ends: Vec<usize>,
    /// Times the position changed.
    pub position_changes: u64,
    /// Bars with a position held.
    pub exposed_bars: u64,
    /// The sum of |position change| × exposure, as a fraction of equity.
    pub turnover: f64,
    /// The fraction of equity one unit of position is ([`Setup::exposure`]).
    pub exposure: f64,
    /// Profit per unit of the instrument held, in price (the parity mode's measure): the sum
    /// of position × close change, before costs.
    pub pnl_per_unit: f64,
}

impl Run {
    /// The sample of bars `from..to`, for [`crate::summarise`].
    pub fn sample<'a>(
        &'a self,
        bars: &Bars,
        from: usize,
        to: usize,
        periods_per_year: f64,
        trials: u64,
        scratch: &'a mut Vec<f64>,
    ) -> crate::Sample<'a> {
        scratch.clear();
        scratch.extend(
            self.trades
                .iter()
                .zip(&self.trade_ends)
                .filter(|(_, end)| (from..to).contains(*end))
                .map(|(t, _)| *t),
        );
        let positions = &self.positions[from.min(to)..to];
        let before = from.checked_sub(1).map_or(0.0, |f| self.positions[f]);
        let exposed = std::iter::once(before)
            .chain(positions.iter().copied())
            .take(positions.len())
            .filter(|p| *p != 0.0)
            .count() as u64;
        let turnover = positions
            .iter()
            .scan(before, |prev, p| {
                let change = (p - *prev).abs();
                *prev = *p;
                Some(change)
            })
            .sum::<f64>()
            * self.exposure;
        crate::Sample {
            returns: &self.returns[from.min(to)..to],
            periods_per_year,
            days: bars.days(from, to),
            trades: scratch,
            exposed_bars: exposed,
            turnover,
            trials,
        }
    }
}

/// The Regime agent's label at each bar, as the number the `regime` feature is
/// ([`vigil_core::Regime::code`]): the agent's own classifier on the same closes.
pub fn regimes(closes: &[f64], cfg: &RegimeConfig) -> Vec<f64> {
    let mut classifier = Classifier::new(cfg);
    closes
        .iter()
        .map(|c| f64::from(classifier.update(*c).regime.code()))
        .collect()
}

/// The model's output at each bar (`None` while it warms up): the same feature code and
/// runtime as live, over whole columns (an ONNX graph in batches).
///
/// # Errors
/// The graph failed.
pub fn outputs(
    model: &Artifact,
    graph: Option<&Onnx>,
    closes: &[f64],
    regime: &RegimeConfig,
) -> Result<Vec<Option<f64>>, VectorizedError> {
    match (model.manifest.kind, graph) {
        (Kind::Onnx, Some(graph)) => {
            let labels = model
                .features
                .contains(&Feature::Regime)
                .then(|| regimes(closes, regime));
            let width = model.features.len();
            let mut set = FeatureSet::new(&model.features);
            let mut rows: Vec<f32> = Vec::with_capacity(closes.len() * width);
            let mut ready = Vec::with_capacity(closes.len());
            for (i, c) in closes.iter().enumerate() {
                let label = labels.as_ref().map_or(0.0, |l| l[i]);
                match set.update(*c, label) {
                    Some(values) => {
                        rows.extend(values.iter().map(|v| *v as f32));
                        ready.push(true);
                    }
                    None => ready.push(false),
                }
            }
            let mut predicted = Vec::with_capacity(rows.len() / width.max(1));
            for chunk in rows.chunks(65_536 * width.max(1)) {
                predicted.extend(graph.predict(chunk)?);
            }
            let mut values = predicted.into_iter();
            Ok(ready
                .into_iter()
                .map(|r| if r { values.next() } else { None })
                .collect())
        }
        _ => {
            let (fast, slow) = model.ema_spans();
            let (mut fast, mut slow) = (Ema::new(fast), Ema::new(slow));
            // Silent for the warm-up, as the live predictor ([`Artifact::warmup`]).
            let warmup = model.warmup();
            Ok(closes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let d = fast.update(*c) - slow.update(*c);
                    (i >= warmup).then_some(d)
                })
                .collect())
        }
    }
}

/// The target position (in units) each output asks for: [`Output::position`], the same
/// rule as live, a `None` keeping the position held.
pub fn targets(outputs: &[Option<f64>], output: &Output, allow_short: bool) -> Vec<f64> {
    let mut held = 0.0;
    outputs
        .iter()
        .map(|o| {
            if let Some(p) = o.and_then(|v| output.position(v, allow_short)) {
                held = p;
            }
            held
        })
        .collect()
}

/// Runs the columns: the position decided at bar `t`'s close (delayed `lag` bars, the
/// look-ahead probe) earns bar `t + 1`'s return; each change pays its costs at the bar it
/// is made.
pub fn run(closes: &[f64], outputs: &[Option<f64>], setup: &Setup) -> Run {
    let n = closes.len().min(outputs.len());
    // The targets as [`targets`] makes them, on the fly; the last `lag + 1` in a ring.
    let lag = setup.lag;
    let mut ring = vec![0.0; lag + 1];
    let mut wanted = 0.0;
    let mut out = Run {
        positions: Vec::with_capacity(n),
        returns: Vec::with_capacity(n),
        exposure: setup.exposure,
        ..Run::default()
    };
    let cost = setup.costs.per_unit();
    let x = setup.exposure;
    let mut trade = 1.0;
    let mut previous = 0.0;
    for t in 0..n {
        if let Some(p) = outputs[t].and_then(|v| setup.output.position(v, setup.allow_short)) {
            wanted = p;
        }
        ring[t % (lag + 1)] = wanted;
        let pos = if t >= lag {
            ring[(t - lag) % (lag + 1)]
        } else {
            0.0
        };
        out.positions.push(pos);
        let change = (pos - previous).abs();
        let market = if t > 0 {
            out.pnl_per_unit += previous * (closes[t] - closes[t - 1]);
            closes[t] / closes[t - 1] - 1.0
        } else {
            0.0
        };
        out.returns.push(x * (previous * market - cost * change));
        if previous != 0.0 {
            out.exposed_bars += 1;
            trade *= 1.0 + previous * market;
        }
        if change > 0.0 {
            out.position_changes += 1;
            out.turnover += change * x;
            if previous != 0.0 {
                // The trade that ends here, with its entry and exit costs.
                out.trades.push(trade * (1.0 - cost) * (1.0 - cost) - 1.0);
                out.trade_ends.push(t);
            }
            trade = 1.0;
        }
        previous = pos;
    }
    out
}

#[cfg(test)]
mod tests;
