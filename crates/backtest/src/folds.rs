//! In-sample / out-of-sample: one split, and anchored walk-forward folds, each with the
//! decay of the Sharpe ratio out of sample (OOS / IS). A model vigil runs is fixed (it was
//! trained elsewhere), so a fold re-measures it, it does not re-train it: a fold's in-sample
//! part is every bar before its test window, anchored at the first bar.

use serde::Serialize;

use crate::vectorized::{Bars, Run};
use crate::{MinimumSample, Summary, summarise};

/// One in-sample / out-of-sample pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segment {
    /// The fold's number, from 1 (0 for the single split).
    pub fold: usize,
    /// The in-sample bars, `from..to`.
    pub in_sample_bars: (usize, usize),
    /// The out-of-sample bars.
    pub out_of_sample_bars: (usize, usize),
    /// The in-sample figures.
    pub in_sample: Summary,
    /// The out-of-sample figures.
    pub out_of_sample: Summary,
    /// OOS Sharpe over IS Sharpe, when both are figures and the IS one is above zero.
    pub decay: Option<f64>,
}

/// What every segment is measured with.
#[derive(Clone, Copy, Debug)]
pub struct Measure<'a> {
    /// The run.
    pub run: &'a Run,
    /// Its bars (for the days).
    pub bars: &'a Bars,
    /// Bars a year.
    pub periods_per_year: f64,
    /// The deflated Sharpe ratio's trials.
    pub trials: u64,
    /// The least sample a ratio is computed on.
    pub minimum: &'a MinimumSample,
}

impl Measure<'_> {
    /// The figures over every bar.
    pub fn summary_all(&self) -> Summary {
        self.summary(0, self.run.returns.len())
    }

    fn summary(&self, from: usize, to: usize) -> Summary {
        let mut scratch = Vec::new();
        let sample = self.run.sample(
            self.bars,
            from,
            to,
            self.periods_per_year,
            self.trials,
            &mut scratch,
        );
        summarise(&sample, self.minimum)
    }

    fn segment(&self, fold: usize, is: (usize, usize), oos: (usize, usize)) -> Segment {
        let in_sample = self.summary(is.0, is.1);
        let out_of_sample = self.summary(oos.0, oos.1);
        let decay = match (in_sample.sharpe.value(), out_of_sample.sharpe.value()) {
            (Some(i), Some(o)) if i > 0.0 => Some(o / i),
            _ => None,
        };
        Segment {
            fold,
            in_sample_bars: is,
            out_of_sample_bars: oos,
            in_sample,
            out_of_sample,
            decay,
        }
    }

    /// The first `fraction` of the bars in sample, the rest out of sample.
    pub fn split(&self, fraction: f64) -> Segment {
        let n = self.run.returns.len();
        let cut = ((n as f64 * fraction.clamp(0.0, 1.0)).round() as usize).min(n);
        self.segment(0, (0, cut), (cut, n))
    }

    /// `folds` anchored walk-forward folds: the bars cut into `folds + 1` equal blocks;
    /// fold `k` tests block `k` with blocks `0..k` in sample.
    pub fn walk_forward(&self, folds: usize) -> Vec<Segment> {
        let n = self.run.returns.len();
        let block = n / (folds + 1);
        if folds == 0 || block == 0 {
            return Vec::new();
        }
        (1..=folds)
            .map(|k| {
                let end = if k == folds { n } else { (k + 1) * block };
                self.segment(k, (0, k * block), (k * block, end))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
