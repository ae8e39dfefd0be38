//! Drift, watched after release: the model in production against the data it was gated on.
//!
//! At registration, with the gate's data, [`baseline`] records each input feature's
//! distribution (its deciles, and the share of bars between each pair) and the per-bar
//! return of the model's positions (mean and standard deviation), into the registry entry.
//! In `vigil run`, [`DriftWatch`] counts the same features over the last `window_bars`
//! live bars and, when an exchange session ends, judges that window ([`SessionDrift`]):
//! - the **population stability index** of each feature, Σ (live − gate) · ln(live / gate)
//!   over the ten bins (shares floored at 0.0001): under 0.1 stable, 0.1–0.25 moving, over
//!   0.25 drifted (the usual reading);
//! - the **tracking** of its per-bar returns against the gate's: how many standard errors
//!   the window's mean return lies from the gate's mean, `(live − gate) / (σ_gate / √n)`.
//!
//! A window of bars, not one session: a daily model has one bar a session.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use vigil_config::DriftConfig;
use vigil_model::{Artifact, FeatureSet, Onnx, Predictor, RuntimeError};

/// Bins per feature (deciles).
pub const BINS: usize = 10;
/// The least share a bin is given in the index (an empty bin would make it infinite).
const FLOOR: f64 = 1e-4;

/// One feature's distribution over the gate's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureBaseline {
    /// Its name (`return_5`).
    pub name: String,
    /// The bin edges: the nine inner deciles.
    pub edges: Vec<f64>,
    /// The share of bars in each of the ten bins.
    pub shares: Vec<f64>,
}

/// What the model saw and did on the gate's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Each input feature (none for a model without features, like the EMA cross).
    pub features: Vec<FeatureBaseline>,
    /// Bars with a return of its positions.
    pub bars: u64,
    /// Their mean per-bar return.
    pub return_mean: f64,
    /// Their standard deviation.
    pub return_std: f64,
}

fn bin(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e <= x)
}

/// The baseline of `artifact` (its graph `graph`) over `closes` and their regime labels.
///
/// # Errors
/// The model failed on a bar.
pub fn baseline(
    artifact: &Artifact,
    graph: Option<&Onnx>,
    closes: &[f64],
    regimes: &[f64],
) -> Result<Baseline, RuntimeError> {
    let mut set = FeatureSet::new(&artifact.features);
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); artifact.features.len()];
    let mut predictor = Predictor::new(artifact, graph, true);
    let (mut n, mut sum, mut sumsq) = (0_u64, 0.0, 0.0);
    let mut position = 0.0;
    let mut previous: Option<f64> = None;
    for (i, close) in closes.iter().enumerate() {
        let regime = regimes.get(i).copied().unwrap_or(0.0);
        if let Some(values) = set.update(*close, regime) {
            for (c, v) in columns.iter_mut().zip(values) {
                c.push(*v);
            }
        }
        if let Some(prev) = previous.filter(|p| *p > 0.0) {
            let r = position * (close / prev - 1.0);
            n += 1;
            sum += r;
            sumsq += r * r;
        }
        previous = Some(*close);
        if let Some(p) = predictor.update(*close, regime)?.and_then(|p| p.position) {
            position = p;
        }
    }
    let features = artifact
        .features
        .iter()
        .zip(columns)
        .map(|(f, mut values)| {
            values.sort_by(f64::total_cmp);
            let edges: Vec<f64> = (1..BINS)
                .filter_map(|k| {
                    let at = (values.len() * k / BINS).min(values.len().saturating_sub(1));
                    values.get(at).copied()
                })
                .collect();
            let mut counts = [0_u64; BINS];
            for v in &values {
                counts[bin(&edges, *v).min(BINS - 1)] += 1;
            }
            let total = values.len().max(1) as f64;
            FeatureBaseline {
                name: f.to_string(),
                shares: counts.iter().map(|c| *c as f64 / total).collect(),
                edges,
            }
        })
        .collect();
    let mean = if n > 0 { sum / n as f64 } else { 0.0 };
    let var = if n > 1 {
        ((sumsq - n as f64 * mean * mean) / (n - 1) as f64).max(0.0)
    } else {
        0.0
    };
    Ok(Baseline {
        features,
        bars: n,
        return_mean: mean,
        return_std: var.sqrt(),
    })
}

/// The population stability index of `counts` against the shares `expected`.
pub fn psi(counts: &[u64], expected: &[f64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    counts
        .iter()
        .zip(expected)
        .map(|(c, e)| {
            let a = (*c as f64 / total as f64).max(FLOOR);
            let e = e.max(FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The window ending with a session, judged against the baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionDrift {
    /// The exchange session that ended.
    pub session: NaiveDate,
    /// Bars in the window.
    pub bars: u64,
    /// Each feature's population stability index over the window.
    pub psi: Vec<(String, f64)>,
    /// The window's mean per-bar return, in standard errors of the gate's from its mean.
    pub tracking_z: Option<f64>,
    /// What drifted beyond `[release.drift]`, in words (empty: nothing, or too few bars).
    pub drifted: Vec<String>,
}

/// One symbol's features and simulated position.
#[derive(Clone, Debug)]
struct Symbol {
    set: FeatureSet,
    close: Option<f64>,
    position: f64,
}

/// One bar of the window: whether it has a bin for each feature (once every feature's
/// window is full; the bins are in `DriftWatch::bins`), and the return of the position
/// held into it.
type Seen = (bool, Option<f64>);

/// The live side: the last `window_bars` bars, judged when a session ends.
#[derive(Clone, Debug)]
pub struct DriftWatch {
    baseline: Baseline,
    cfg: DriftConfig,
    symbols: Vec<Symbol>,
    session: Option<NaiveDate>,
    recent: std::collections::VecDeque<Seen>,
    /// The bins of the window's bars that have them, one per feature, oldest first (flat:
    /// no allocation a bar).
    bins: std::collections::VecDeque<u8>,
    counts: Vec<[u64; BINS]>,
    returns: (u64, f64),
}

impl DriftWatch {
    /// A watch over `symbols` symbols for the model of `artifact`, against `baseline`.
    pub fn new(artifact: &Artifact, baseline: Baseline, cfg: &DriftConfig, symbols: usize) -> Self {
        Self {
            counts: vec![[0; BINS]; baseline.features.len()],
            symbols: (0..symbols)
                .map(|_| Symbol {
                    set: FeatureSet::new(&artifact.features),
                    close: None,
                    position: 0.0,
                })
                .collect(),
            baseline,
            cfg: cfg.clone(),
            session: None,
            recent: std::collections::VecDeque::with_capacity(cfg.window_bars),
            bins: std::collections::VecDeque::with_capacity(
                cfg.window_bars * artifact.features.len(),
            ),
            returns: (0, 0.0),
        }
    }

    /// One bar of `symbol` in `session`; `position` is what the model wants now (`None`:
    /// no change). Returns the judgement of the window when this bar starts a new session.
    pub fn bar(
        &mut self,
        session: NaiveDate,
        symbol: usize,
        close: f64,
        regime: f64,
        position: Option<f64>,
    ) -> Option<SessionDrift> {
        // Sessions only move forward (see `ShadowTracker::bar`).
        let session = self.session.map_or(session, |s| s.max(session));
        let ended = match self.session {
            Some(s) if s != session => self.judge(),
            _ => None,
        };
        self.session = Some(session);
        let Some(s) = self.symbols.get_mut(symbol) else {
            return ended;
        };
        let mut binned = false;
        if let Some(values) = s.set.update(close, regime) {
            binned = true;
            for ((v, f), counts) in values
                .iter()
                .zip(&self.baseline.features)
                .zip(self.counts.iter_mut())
            {
                let b = bin(&f.edges, *v).min(BINS - 1);
                counts[b] += 1;
                self.bins.push_back(b as u8);
            }
        }
        let ret = s
            .close
            .filter(|p| *p > 0.0)
            .map(|prev| s.position * (close / prev - 1.0));
        s.close = Some(close);
        if let Some(p) = position {
            s.position = p;
        }
        if let Some(r) = ret {
            self.returns.0 += 1;
            self.returns.1 += r;
        }
        self.recent.push_back((binned, ret));
        if self.recent.len() > self.cfg.window_bars
            && let Some((old_binned, old_ret)) = self.recent.pop_front()
        {
            if old_binned {
                for counts in self.counts.iter_mut() {
                    if let Some(b) = self.bins.pop_front() {
                        let slot = &mut counts[usize::from(b)];
                        *slot = slot.saturating_sub(1);
                    }
                }
            }
            if let Some(r) = old_ret {
                self.returns.0 = self.returns.0.saturating_sub(1);
                self.returns.1 -= r;
            }
        }
        ended
    }

    /// The window judged now, dated by the running session (`None` before any bar).
    pub fn judge(&self) -> Option<SessionDrift> {
        let session = self.session?;
        let psi: Vec<(String, f64)> = self
            .baseline
            .features
            .iter()
            .zip(&self.counts)
            .map(|(f, c)| (f.name.clone(), psi(c, &f.shares)))
            .collect();
        let (n, sum) = self.returns;
        let tracking_z = (n > 0 && self.baseline.return_std > 0.0).then(|| {
            (sum / n as f64 - self.baseline.return_mean)
                / (self.baseline.return_std / (n as f64).sqrt())
        });
        let bars = self.recent.len() as u64;
        let mut drifted = Vec::new();
        if bars >= self.cfg.min_bars as u64 {
            for (name, v) in &psi {
                if *v > self.cfg.max_psi {
                    drifted.push(format!("{name}: PSI {v:.3} > {}", self.cfg.max_psi));
                }
            }
            if let Some(z) = tracking_z
                && z.abs() > self.cfg.max_tracking_z
            {
                drifted.push(format!(
                    "returns: {z:+.2} standard errors from the gate's mean (limit ±{})",
                    self.cfg.max_tracking_z
                ));
            }
        }
        Some(SessionDrift {
            session,
            bars,
            psi,
            tracking_z,
            drifted,
        })
    }
}

#[cfg(test)]
mod tests;
