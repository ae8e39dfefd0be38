//! The vectorized layer: features → model output → positions → returns net of costs, over
//! whole columns, with no order path. Its figures are what the model earns if every target
//! position were taken at the close it was decided on, less costs per unit of position
//! changed; the OMS layer ([`crate::oms`]) measures what the real order path leaves of it.

use std::collections::BTreeMap;
use std::io::{Read, Seek as _, SeekFrom};
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
    /// Only the `timestamp` and `close` columns are parsed (the replay's timestamp parser,
    /// the standard library's float parser), the file's two halves on two threads, each
    /// streamed through a buffer of its own: a backtest needs no more, and this is what makes
    /// a million bars a fraction of a second. Each bar's close must be a positive number and
    /// each timestamp after the one before; a row that is not is refused with the file and
    /// its line.
    ///
    /// # Errors
    /// The file cannot be read or a row is bad; the message names the file and the line.
    pub fn read(path: &Path) -> Result<Self, VectorizedError> {
        Self::read_from(path, None)
    }

    /// [`Bars::read`], handing every byte of the file, in order, to `tap` as it is read (to
    /// hash the file without reading it twice).
    ///
    /// # Errors
    /// As [`Bars::read`].
    pub fn read_with(path: &Path, mut tap: impl FnMut(&[u8])) -> Result<Self, VectorizedError> {
        Self::read_from(path, Some(&mut tap))
    }

    fn read_from(path: &Path, tap: Option<Tap<'_>>) -> Result<Self, VectorizedError> {
        let cannot = |e: std::io::Error| {
            VectorizedError::Data(format!("{}: cannot read: {e}", path.display()))
        };
        let len = std::fs::metadata(path).map_err(cannot)?.len();
        let open_at = |offset: u64| -> std::io::Result<std::fs::File> {
            let mut file = std::fs::File::open(path)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(file)
        };
        read_columns(&open_at, len, path, tap, CHUNK)
    }

    /// [`Bars::read`] on a file's bytes in memory (`path` names it in errors), through
    /// buffers of `chunk` bytes: the tests' files, and their lines across buffers.
    #[cfg(test)]
    fn parse_in_chunks(bytes: &[u8], path: &Path, chunk: usize) -> Result<Self, VectorizedError> {
        let open_at = |offset: u64| -> std::io::Result<&[u8]> {
            Ok(bytes.get(offset as usize..).unwrap_or_default())
        };
        read_columns(&open_at, bytes.len() as u64, path, None, chunk)
    }

    /// The bar interval: the median gap between bars (a weekend or a holiday does not make
    /// a daily file weekly).
    pub fn interval(&self) -> Option<Duration> {
        // Each time to nanoseconds once (cheaper than a date difference per gap); the gaps
        // counted by value, a run of equal gaps at a time: bars at a steady interval make a
        // handful of entries, not a column to sort.
        let nanos = |t: &DateTime<Utc>| {
            i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
        };
        let mut counts: BTreeMap<i128, usize> = BTreeMap::new();
        let mut times = self.times.iter().map(nanos);
        let mut previous = times.next()?;
        let mut run: Option<(i128, usize)> = None;
        for t in times {
            let gap = t - previous;
            previous = t;
            match run.as_mut() {
                Some((g, count)) if *g == gap => *count += 1,
                _ => {
                    if let Some((g, count)) = run.replace((gap, 1)) {
                        *counts.entry(g).or_default() += count;
                    }
                }
            }
        }
        let (g, count) = run?;
        *counts.entry(g).or_default() += count;
        // The gap a sort would put at index n / 2.
        let half = (self.times.len() - 1) / 2;
        let mut seen = 0;
        let median = counts.into_iter().find_map(|(gap, count)| {
            seen += count;
            (seen > half).then_some(gap)
        })?;
        // A gap beyond ±292 years (what a `Duration` of nanoseconds holds) is held at the most.
        Some(Duration::nanoseconds(
            i64::try_from(median).unwrap_or(i64::MAX),
        ))
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

/// A reader's buffer: large enough that a read costs little, small enough to stay in the
/// cache (the file is never held whole: no fresh pages to zero for it, no copy to make).
const CHUNK: usize = 1 << 20;

/// What sees every byte of a file as it is read (its hash).
type Tap<'a> = &'a mut dyn FnMut(&[u8]);

/// Where a bars file keeps the two columns a backtest reads.
#[derive(Clone, Copy, Debug)]
struct Columns {
    ts: usize,
    close: usize,
}

/// Why a part of the file was not read: a bad row (its index among the part's lines, and
/// what is wrong), or the file itself.
enum Fail {
    Row(usize, String),
    Io(std::io::Error),
}

/// Reads the bars file that `open_at` opens at a byte offset, `len` bytes long: the
/// header, then the rows in two parts, the second on a thread of its own; `tap`, if any,
/// sees every byte in order.
fn read_columns<R: Read + Send>(
    open_at: &(dyn Fn(u64) -> std::io::Result<R> + Sync),
    len: u64,
    path: &Path,
    tap: Option<Tap<'_>>,
    chunk: usize,
) -> Result<Bars, VectorizedError> {
    let at = |line: usize, what: String| {
        VectorizedError::Data(format!("{}:{line}: {what}", path.display()))
    };
    let io =
        |e: std::io::Error| VectorizedError::Data(format!("{}: cannot read: {e}", path.display()));
    let (header, ended) = first_line(open_at(0).map_err(io)?, chunk).map_err(io)?;
    let body_start = header.len() as u64 + u64::from(ended);
    let header = header
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(&header);
    let header =
        std::str::from_utf8(header).map_err(|_| at(1, "the header is not UTF-8".into()))?;
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
    // The second part starts at the first line that starts after the body's middle, or
    // after three eighths of it when the first part's thread also taps the whole file
    // (hashing a byte costs about a quarter of parsing it).
    let body = len.saturating_sub(body_start);
    let middle = body_start
        + if tap.is_some() {
            body / 8 * 3
        } else {
            body / 2
        };
    let split = match first_line(open_at(middle).map_err(io)?, chunk).map_err(io)? {
        (rest, true) => middle + rest.len() as u64 + 1,
        (_, false) => len,
    };
    // Room for both parts, at ~40 bytes a row: the second is appended without a move.
    let room = len.saturating_sub(body_start) as usize / 40 + 1;
    let (first, second) = std::thread::scope(|scope| {
        let later = scope.spawn(|| {
            let mut rows = Rows::new(columns, room / 2);
            let src = open_at(split).map_err(Fail::Io)?;
            stream(src, 0, u64::MAX, chunk, None, &mut |line| rows.row(line))?;
            Ok::<_, Fail>(rows.out)
        });
        let earlier = (|| {
            let mut rows = Rows::new(columns, room);
            let src = open_at(0).map_err(Fail::Io)?;
            let lines = stream(src, body_start, split, chunk, tap, &mut |line| {
                rows.row(line)
            })?;
            Ok::<_, Fail>((rows.out, lines))
        })();
        (earlier, later.join())
    });
    // A panic there is a bug here: carried on as this thread's.
    let second = second.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    // The header is line 1; the second part's first line follows the first part's last.
    let (mut out, lines) = match first {
        Ok(first) => first,
        Err(Fail::Row(i, what)) => return Err(at(2 + i, what)),
        Err(Fail::Io(e)) => return Err(io(e)),
    };
    let second_line = 2 + lines;
    let b = match second {
        Ok(b) => b,
        Err(Fail::Row(i, what)) => return Err(at(second_line + i, what)),
        Err(Fail::Io(e)) => return Err(io(e)),
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

/// The bytes of `src` before its first `\n`, and whether a `\n` ended them.
fn first_line(mut src: impl Read, chunk: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = vec![0; chunk.clamp(1, 64 << 10)];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok((out, false)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            out.extend_from_slice(&buf[..i]);
            return Ok((out, true));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Streams `src` through a buffer of `chunk` bytes (grown for a longer line): each line
/// that starts at byte `from` or later and before byte `to` goes to `row` (without its
/// `\n` or `\r`), and every byte read to `tap`, which reads on to the end. Returns the
/// lines handed to `row`; a row's error is its index among them.
fn stream(
    mut src: impl Read,
    from: u64,
    to: u64,
    chunk: usize,
    mut tap: Option<Tap<'_>>,
    row: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Result<usize, Fail> {
    let mut buf = vec![0; chunk.max(1)];
    // `buf[..filled]` starts at byte `offset` of `src`, at the start of a line.
    let (mut filled, mut offset, mut count) = (0, 0u64, 0);
    let mut rows = from < to;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match src.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fail::Io(e)),
        };
        if let Some(tap) = tap.as_mut() {
            tap(&buf[filled..filled + n]);
        }
        if !rows {
            if n == 0 || tap.is_none() {
                return Ok(count);
            }
            continue;
        }
        let end = filled + n;
        let mut start = 0;
        while rows {
            // Whole lines; at the end of the file, a last line without its `\n`.
            let (line_end, last) = match memchr::memchr(b'\n', &buf[start..end]) {
                Some(i) => (start + i, false),
                None if n == 0 && start < end => (end, true),
                None => break,
            };
            let at = offset + start as u64;
            if at >= to {
                rows = false;
                break;
            }
            if at >= from {
                let line = &buf[start..line_end];
                row(line.strip_suffix(b"\r").unwrap_or(line))
                    .map_err(|what| Fail::Row(count, what))?;
                count += 1;
            }
            start = line_end + 1;
            if last {
                return Ok(count);
            }
        }
        if n == 0 {
            return Ok(count);
        }
        if rows {
            buf.copy_within(start..end, 0);
            offset += start as u64;
            filled = end - start;
        } else {
            filled = 0;
        }
    }
}

/// The columns of the rows parsed so far.
struct Rows {
    columns: Columns,
    out: Bars,
}

impl Rows {
    fn new(columns: Columns, room: usize) -> Self {
        Self {
            columns,
            out: Bars {
                times: Vec::with_capacity(room),
                closes: Vec::with_capacity(room),
            },
        }
    }

    /// Parses one row (an empty line is passed over); `Err` says what is wrong with it.
    fn row(&mut self, line: &[u8]) -> Result<(), String> {
        if line.is_empty() {
            return Ok(());
        }
        let columns = self.columns;
        let last_col = columns.ts.max(columns.close);
        let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
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
            return Err(format!("fewer than {} columns", last_col + 1));
        };
        let time = vigil_providers::parse_timestamp(ts)
            .ok_or_else(|| format!("timestamp {:?} is not a time", text(ts)))?;
        // Not a number and not a positive price are the same refusal, with the raw text.
        let value = std::str::from_utf8(close)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| format!("close {:?} is not a positive price", text(close)))?;
        if let Some(previous) = self.out.times.last()
            && time <= *previous
        {
            return Err(format!(
                "timestamp {time} is not after the previous bar's {previous}"
            ));
        }
        self.out.times.push(time);
        self.out.closes.push(value);
        Ok(())
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
    let mut out = Run::default();
    run_into(&mut out, closes, outputs, setup);
    out
}

/// [`run`] into `out`, its columns' memory reused (runs one after another touch no fresh
/// pages).
pub fn run_into(out: &mut Run, closes: &[f64], outputs: &[Option<f64>], setup: &Setup) {
    let n = closes.len().min(outputs.len());
    // The targets as [`targets`] makes them, on the fly; the last `lag + 1` in a ring.
    let lag = setup.lag;
    let mut ring = vec![0.0; lag + 1];
    let mut wanted = 0.0;
    let old = std::mem::take(out);
    let column = |mut v: Vec<f64>| {
        v.clear();
        v.reserve(n);
        v
    };
    *out = Run {
        positions: column(old.positions),
        returns: column(old.returns),
        trades: {
            let mut v = old.trades;
            v.clear();
            v
        },
        trade_ends: {
            let mut v = old.trade_ends;
            v.clear();
            v
        },
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
}

#[cfg(test)]
mod tests;
