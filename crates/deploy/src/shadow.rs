//! The shadow run: a candidate decides on every bar beside production, in the same `vigil run`,
//! through its own predictors and a simulated venue, and never sends an order.
//!
//! [`ShadowTracker`] is the run's state: fed every bar with what both models wanted, it keeps
//! each model's simulated position and return per symbol and the figures of the exchange
//! session the bar belongs to ([`ShadowSession`]), which the Signal agent writes to the store.
//! [`report`] judges the stored sessions against the five standards of a shadow run
//! (`[release.shadow]`): correlation with production (or a clear improvement), decision
//! latency, CPU and memory, abnormal outputs, and enough trading sessions.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use vigil_config::ShadowConfig;

/// What a model wanted on one bar: its position (−1 … 1) and its raw output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wanted {
    /// The position it wants.
    pub position: f64,
    /// Its raw output (for the abnormal-output standard).
    pub output: f64,
}

/// Sums for a Pearson correlation, merged across sessions by adding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pairs {
    /// Pairs seen.
    pub n: u64,
    /// Σx (production).
    pub sx: f64,
    /// Σy (candidate).
    pub sy: f64,
    /// Σx².
    pub sxx: f64,
    /// Σy².
    pub syy: f64,
    /// Σxy.
    pub sxy: f64,
}

impl Pairs {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.syy += y * y;
        self.sxy += x * y;
    }

    fn merge(&mut self, o: &Self) {
        self.n += o.n;
        self.sx += o.sx;
        self.sy += o.sy;
        self.sxx += o.sxx;
        self.syy += o.syy;
        self.sxy += o.sxy;
    }

    /// The correlation, or why there is none.
    pub fn correlation(&self) -> Result<f64, &'static str> {
        if self.n < 2 {
            return Err("fewer than two bars where both models decided");
        }
        let n = self.n as f64;
        let vx = self.sxx - self.sx * self.sx / n;
        let vy = self.syy - self.sy * self.sy / n;
        if vx <= 1e-12 * n || vy <= 1e-12 * n {
            return Err("a model held one position throughout");
        }
        Ok(((self.sxy - self.sx * self.sy / n) / (vx * vy).sqrt()).clamp(-1.0, 1.0))
    }
}

/// Running mean and variance (Welford), merged across sessions (Chan et al.).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Samples.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sum of squared deviations.
    pub m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn merge(&mut self, o: &Self) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = (self.n + o.n) as f64;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n;
        self.n += o.n;
    }

    fn std(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).sqrt())
    }
}

/// Decision times per bar in nanoseconds, in buckets of 1/16 of an octave (4.4 % wide):
/// fine enough to compare two p99s against a 1.2× ratio, small enough to store per session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Bucket → bars.
    pub buckets: BTreeMap<u16, u64>,
    /// Bars timed.
    pub bars: u64,
    /// Their total time, ns.
    pub total_ns: f64,
}

const PER_OCTAVE: f64 = 16.0;

impl Latency {
    /// Records `bars` bars that took `per_bar_ns` each.
    fn add(&mut self, per_bar_ns: f64, bars: u64) {
        if bars == 0 {
            return;
        }
        let bucket = (per_bar_ns.max(1.0).log2() * PER_OCTAVE)
            .ceil()
            .clamp(0.0, 1_000.0) as u16;
        *self.buckets.entry(bucket).or_default() += bars;
        self.bars += bars;
        self.total_ns += per_bar_ns * bars as f64;
    }

    fn merge(&mut self, o: &Self) {
        for (b, n) in &o.buckets {
            *self.buckets.entry(*b).or_default() += n;
        }
        self.bars += o.bars;
        self.total_ns += o.total_ns;
    }

    /// The 99th percentile, ns (a bucket's upper edge).
    pub fn p99_ns(&self) -> Option<f64> {
        let rank = (self.bars as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank.max(1) {
                return Some((f64::from(*b) / PER_OCTAVE).exp2());
            }
        }
        None
    }

    /// The mean, ns.
    pub fn mean_ns(&self) -> Option<f64> {
        (self.bars > 0).then(|| self.total_ns / self.bars as f64)
    }
}

/// One exchange session of a shadow run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowSession {
    /// Bars the candidate ran on.
    pub bars: u64,
    /// Bars it could not decide on (its model failed).
    pub errors: u64,
    /// Production's (x) and the candidate's (y) wanted positions, where both decided.
    pub pairs: Pairs,
    /// The candidate's decision time per bar.
    pub candidate_latency: Latency,
    /// Production's, on the same bars.
    pub production_latency: Latency,
    /// The candidate's outputs.
    pub outputs: Moments,
    /// Outputs beyond `outlier_sigma` of the candidate's running mean.
    pub outliers: u64,
    /// Simulated return of the candidate's positions (sum over symbols of position × bar
    /// return, less the cost of each change).
    pub candidate_return: f64,
    /// Production's, simulated the same way.
    pub production_return: f64,
    /// Changes of position, candidate and production.
    pub candidate_changes: u64,
    /// Production's.
    pub production_changes: u64,
    /// The process's largest resident memory seen, bytes.
    pub peak_rss_bytes: u64,
    /// The last bar counted (a replayed bar at or before it is not counted twice).
    pub last_bar_at: Option<DateTime<Utc>>,
}

/// One symbol's simulated book.
#[derive(Clone, Copy, Debug, Default)]
struct Book {
    close: Option<f64>,
    candidate: f64,
    production: f64,
}

/// A shadow run's running state.
#[derive(Clone, Debug)]
pub struct ShadowTracker {
    books: Vec<Book>,
    cost: f64,
    sigma: f64,
    /// The candidate's outputs over every session before the current one.
    before: Moments,
    current: Option<(NaiveDate, ShadowSession)>,
    resume_after: Option<DateTime<Utc>>,
}

/// Outputs needed before one can be called abnormal.
const MIN_OUTPUTS: u64 = 100;

impl ShadowTracker {
    /// A tracker for `symbols` symbols that goes on from the sessions stored before
    /// (the last one continues when its bars go on).
    pub fn resume(
        symbols: usize,
        cfg: &ShadowConfig,
        stored: &[(NaiveDate, ShadowSession)],
    ) -> Self {
        let mut before = Moments::default();
        let mut current = None;
        let resume_after = stored.iter().filter_map(|(_, s)| s.last_bar_at).max();
        if let Some((last, rest)) = stored.split_last() {
            for (_, s) in rest {
                before.merge(&s.outputs);
            }
            current = Some(last.clone());
        }
        Self {
            books: vec![Book::default(); symbols],
            cost: cfg.cost_bps / 10_000.0,
            sigma: cfg.outlier_sigma,
            before,
            current,
            resume_after,
        }
    }

    /// Forgets each symbol's last close and positions (after a pause: the next bar starts
    /// afresh instead of earning the gap).
    pub fn forget_books(&mut self) {
        self.books.fill(Book::default());
    }

    /// The session being counted.
    pub fn current(&self) -> Option<&(NaiveDate, ShadowSession)> {
        self.current.as_ref()
    }

    /// Whether a bar at `at` is one already counted before a restart.
    pub fn counted(&self, at: DateTime<Utc>) -> bool {
        self.resume_after.is_some_and(|r| at <= r)
    }

    /// One bar of symbol `symbol` in `session`, closing at `close`: what production
    /// wanted (`None` while it warms up) and what the candidate did (`Ok(None)` while it
    /// warms up, `Err` when its model failed). Returns the session that ended, when this
    /// bar starts another.
    pub fn bar(
        &mut self,
        session: NaiveDate,
        at: DateTime<Utc>,
        symbol: usize,
        close: f64,
        production: Option<Wanted>,
        candidate: Result<Option<Wanted>, ()>,
    ) -> Option<(NaiveDate, ShadowSession)> {
        // Sessions only move forward: a bar dated before the running session (a minute bar
        // at midnight UTC reads as a daily bar of the next day, the one after it as the
        // exchange's previous day) belongs to the running one.
        let session = match &self.current {
            Some((d, _)) if session < *d => *d,
            _ => session,
        };
        let ended = match &self.current {
            Some((d, _)) if *d == session => None,
            _ => self.current.replace((session, ShadowSession::default())),
        };
        if let Some((_, s)) = &ended {
            self.before.merge(&s.outputs);
        }
        let Some((_, s)) = self.current.as_mut() else {
            return ended;
        };
        let Some(book) = self.books.get_mut(symbol) else {
            return ended;
        };
        s.bars += 1;
        s.last_bar_at = Some(at);
        if let Some(prev) = book.close.filter(|p| *p > 0.0) {
            let r = close / prev - 1.0;
            s.candidate_return += book.candidate * r;
            s.production_return += book.production * r;
        }
        book.close = Some(close);
        if let Some(p) = production {
            let change = (p.position - book.production).abs();
            if change > 0.0 {
                s.production_changes += 1;
                s.production_return -= change * self.cost;
            }
            book.production = p.position;
        }
        match candidate {
            Err(()) => s.errors += 1,
            Ok(None) => {}
            Ok(Some(c)) => {
                let change = (c.position - book.candidate).abs();
                if change > 0.0 {
                    s.candidate_changes += 1;
                    s.candidate_return -= change * self.cost;
                }
                book.candidate = c.position;
                let mut all = self.before;
                all.merge(&s.outputs);
                if all.n >= MIN_OUTPUTS
                    && let Some(sd) = all.std()
                    && (c.output - all.mean).abs() > self.sigma * sd
                {
                    s.outliers += 1;
                }
                s.outputs.add(c.output);
                if production.is_some() {
                    s.pairs.add(book.production, book.candidate);
                }
            }
        }
        ended
    }

    /// A batch's decision time per bar for both models, over `bars` bars.
    pub fn timed(&mut self, production_ns: f64, candidate_ns: f64, bars: u64) {
        if let Some((_, s)) = self.current.as_mut() {
            s.production_latency.add(production_ns, bars);
            s.candidate_latency.add(candidate_ns, bars);
        }
    }

    /// The process's resident memory now.
    pub fn resident(&mut self, bytes: u64) {
        if let Some((_, s)) = self.current.as_mut() {
            s.peak_rss_bytes = s.peak_rss_bytes.max(bytes);
        }
    }
}

/// A release's sessions as the store holds them ([`vigil_store::StateStore::shadow_sessions`]),
/// read back.
///
/// # Errors
/// A session's date or figures cannot be read: which, and why.
pub fn stored(
    rows: &[vigil_store::ShadowSessionRow],
) -> Result<Vec<(NaiveDate, ShadowSession)>, String> {
    rows.iter()
        .map(|row| {
            let date = row
                .session
                .parse::<NaiveDate>()
                .map_err(|e| format!("session {:?}: {e}", row.session))?;
            let figures = serde_json::from_str(&row.figures)
                .map_err(|e| format!("the figures of {}: {e}", row.session))?;
            Ok((date, figures))
        })
        .collect()
}

/// The resident memory of this process, bytes (Linux: `/proc/self/statm`).
///
/// # Errors
/// The file cannot be read or understood (not Linux).
pub fn resident_bytes() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("cannot read /proc/self/statm: {e}"))?;
    let field = text
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("/proc/self/statm: no resident page count in {text:?}"))?;
    let pages: u64 = field
        .parse()
        .map_err(|e| format!("/proc/self/statm: resident pages {field:?}: {e}"))?;
    Ok(pages * 4_096)
}

/// One standard of a shadow run, judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Standard {
    /// Its name.
    pub name: &'static str,
    /// Met, not met, or not yet known (`None`: too little to judge).
    pub passed: Option<bool>,
    /// What was measured.
    pub value: String,
    /// What it is held to.
    pub threshold: String,
}

/// A shadow run, judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShadowReport {
    /// Trading sessions of the exchange calendar it ran in.
    pub trading_sessions: usize,
    /// Bars the candidate ran on, and those it failed on.
    pub bars: u64,
    /// Bars its model failed on.
    pub errors: u64,
    /// The correlation of the wanted positions.
    pub correlation: Option<f64>,
    /// The paired t statistic of per-session returns, candidate − production.
    pub improvement_t: Option<f64>,
    /// Summed simulated returns.
    pub candidate_return: f64,
    /// Production's.
    pub production_return: f64,
    /// The five standards.
    pub standards: Vec<Standard>,
    /// All five met.
    pub passed: bool,
}

/// Judges a shadow run's sessions; `trading` says whether a date is a session of the
/// exchange calendar (bars on other days are counted, the day is not).
pub fn report(
    sessions: &[(NaiveDate, ShadowSession)],
    trading: impl Fn(NaiveDate) -> bool,
    cfg: &ShadowConfig,
) -> ShadowReport {
    let mut pairs = Pairs::default();
    let mut cand = Latency::default();
    let mut prod = Latency::default();
    let (mut bars, mut errors, mut outliers, mut outputs, mut rss) = (0, 0, 0, 0, 0);
    let (mut cr, mut pr) = (0.0, 0.0);
    let mut diffs = Moments::default();
    let mut trading_sessions = 0;
    for (date, s) in sessions {
        pairs.merge(&s.pairs);
        cand.merge(&s.candidate_latency);
        prod.merge(&s.production_latency);
        bars += s.bars;
        errors += s.errors;
        outliers += s.outliers;
        outputs += s.outputs.n;
        rss = rss.max(s.peak_rss_bytes);
        cr += s.candidate_return;
        pr += s.production_return;
        if trading(*date) {
            trading_sessions += 1;
            diffs.add(s.candidate_return - s.production_return);
        }
    }
    let correlation = pairs.correlation();
    let improvement_t = diffs
        .std()
        .and_then(|sd| (sd > 0.0).then(|| diffs.mean / (sd / (diffs.n as f64).sqrt())));
    let mut standards = Vec::with_capacity(5);

    let improved = improvement_t.is_some_and(|t| t >= cfg.improvement_t);
    standards.push(Standard {
        name: "correlation",
        passed: match (&correlation, improved) {
            (_, true) => Some(true),
            (Ok(c), false) => Some(*c > cfg.min_correlation),
            (Err(_), false) => None,
        },
        value: match (&correlation, improvement_t) {
            (Ok(c), Some(t)) => format!("{c:.3} (improvement t = {t:.2})"),
            (Ok(c), None) => format!("{c:.3}"),
            (Err(why), Some(t)) => format!("none: {why} (improvement t = {t:.2})"),
            (Err(why), None) => format!("none: {why}"),
        },
        threshold: format!(
            "> {} with production, or an improvement with t ≥ {}",
            cfg.min_correlation, cfg.improvement_t
        ),
    });

    let latency = cand.p99_ns().zip(prod.p99_ns());
    standards.push(Standard {
        name: "latency",
        passed: latency.map(|(c, p)| c < cfg.max_latency_ratio * p),
        value: latency.map_or_else(
            || "not measured yet".into(),
            |(c, p)| {
                format!(
                    "p99 {:.1} µs against production's {:.1} µs ({:.2}×)",
                    c / 1e3,
                    p / 1e3,
                    c / p
                )
            },
        ),
        threshold: format!("< {} × production's p99", cfg.max_latency_ratio),
    });

    let mean = cand.mean_ns();
    let budget = cfg.memory_budget_mb * 1_048_576;
    standards.push(Standard {
        name: "resources",
        passed: mean.map(|m| m / 1e3 <= cfg.cpu_budget_us && (rss == 0 || rss <= budget)),
        value: format!(
            "{} per bar; resident memory {}",
            mean.map_or_else(|| "not measured".into(), |m| format!("{:.1} µs", m / 1e3)),
            if rss == 0 {
                "not measured".into()
            } else {
                format!("{:.0} MiB", rss as f64 / 1_048_576.0)
            }
        ),
        threshold: format!(
            "≤ {} µs per bar, ≤ {} MiB",
            cfg.cpu_budget_us, cfg.memory_budget_mb
        ),
    });

    let share = (outputs > 0).then(|| 100.0 * outliers as f64 / outputs as f64);
    standards.push(Standard {
        name: "abnormal outputs",
        passed: (outputs >= MIN_OUTPUTS)
            .then(|| share.is_some_and(|p| p <= cfg.max_outlier_pct) && errors == 0),
        value: format!(
            "{outliers} of {outputs} beyond {} σ ({}); {errors} failed",
            cfg.outlier_sigma,
            share.map_or_else(|| "-".into(), |p| format!("{p:.2} %"))
        ),
        threshold: format!(
            "≤ {} % beyond {} σ, no failure",
            cfg.max_outlier_pct, cfg.outlier_sigma
        ),
    });

    standards.push(Standard {
        name: "sessions",
        passed: Some(trading_sessions >= cfg.min_sessions as usize),
        value: format!("{trading_sessions} trading sessions"),
        threshold: format!("≥ {} sessions of the exchange calendar", cfg.min_sessions),
    });

    let passed = standards.iter().all(|s| s.passed == Some(true));
    ShadowReport {
        trading_sessions,
        bars,
        errors,
        // Not an error: why there is no correlation is in the standard's value.
        correlation: correlation.ok(),
        improvement_t,
        candidate_return: cr,
        production_return: pr,
        standards,
        passed,
    }
}

#[cfg(test)]
mod tests;
