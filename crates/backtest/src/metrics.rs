//! The figures a backtest reports, from its per-bar returns, its equity curve and its
//! closed trades. Statistics, so `f64` (money stays `Decimal` where it is booked).
//!
//! A ratio computed on too little data is worse than none (a Sharpe of 183 on 18 days): below
//! [`MinimumSample`] every ratio is [`Figure::Withheld`] with the reason, and serialises as
//! `null` beside it. The probabilistic and deflated Sharpe ratios follow Bailey and López de
//! Prado ("The Sharpe Ratio Efficient Frontier", 2012; "The Deflated Sharpe Ratio", 2014).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// The Euler–Mascheroni constant, in the expected maximum of the deflated Sharpe ratio.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// The least data a ratio is computed on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MinimumSample {
    /// Calendar days from the first bar to the last.
    pub days: f64,
    /// Closed trades.
    pub trades: u64,
}

impl Default for MinimumSample {
    /// Three months and 30 trades.
    fn default() -> Self {
        Self {
            days: 90.0,
            trades: 30,
        }
    }
}

/// A figure, or why it is withheld.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// The value.
    Value(f64),
    /// Not computed, and why.
    Withheld(String),
}

impl Figure {
    /// The value, if there is one.
    pub fn value(&self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(*v),
            Self::Withheld(_) => None,
        }
    }

    fn finite(value: f64, what: &str) -> Self {
        if value.is_finite() {
            Self::Value(value)
        } else {
            Self::Withheld(format!("{what} is not finite"))
        }
    }
}

/// `{"value": 1.23}` or `{"value": null, "withheld": "18 days of data, fewer than 90"}`.
impl Serialize for Figure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Figure", 2)?;
        match self {
            Self::Value(v) => {
                st.serialize_field("value", v)?;
                st.skip_field("withheld")?;
            }
            Self::Withheld(why) => {
                st.serialize_field("value", &None::<f64>)?;
                st.serialize_field("withheld", why)?;
            }
        }
        st.end()
    }
}

/// What a backtest produced, for its metrics.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The strategy's return over each bar, net of costs.
    pub returns: &'a [f64],
    /// Bars a year ([`crate::periods_per_year`]).
    pub periods_per_year: f64,
    /// Calendar days from the first bar to the last.
    pub days: f64,
    /// The profit or loss of each closed trade.
    pub trades: &'a [f64],
    /// Bars in the market (a position held).
    pub exposed_bars: u64,
    /// The sum over bars of |position change| as a fraction of equity.
    pub turnover: f64,
    /// How many backtests of this model were recorded, this one included (the deflated
    /// Sharpe ratio's trials).
    pub trials: u64,
}

/// Every metric of one backtest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Compounded return over the run.
    pub total_return: f64,
    /// Compounded return a year.
    pub annual_return: Figure,
    /// Sharpe ratio, annualised (no risk-free rate).
    pub sharpe: Figure,
    /// Sortino ratio, annualised (downside deviation against zero).
    pub sortino: Figure,
    /// Deepest fall of equity from a peak, as a fraction of the peak.
    pub max_drawdown: f64,
    /// Longest run of bars spent below an earlier peak.
    pub max_drawdown_bars: u64,
    /// Annual return over the maximum drawdown.
    pub calmar: Figure,
    /// Share of closed trades that made money.
    pub win_rate: Figure,
    /// Gross profit over gross loss of the closed trades.
    pub profit_factor: Figure,
    /// Turnover a year: position changes as a fraction of equity.
    pub turnover: f64,
    /// Share of bars in the market.
    pub exposure: f64,
    /// Probability that the true Sharpe ratio is above zero.
    pub probabilistic_sharpe: Figure,
    /// The probabilistic Sharpe ratio against the best Sharpe ratio expected from `trials`
    /// tries of luck alone.
    pub deflated_sharpe: Figure,
    /// Bars, days and trades the figures rest on.
    pub bars: u64,
    /// Calendar days.
    pub days: f64,
    /// Closed trades.
    pub trades: u64,
}

/// Every metric of `sample`; the ratios withheld when it is smaller than `minimum`.
pub fn summarise(sample: &Sample<'_>, minimum: &MinimumSample) -> Summary {
    let n = sample.returns.len();
    let (max_drawdown, max_drawdown_bars, total_return) = drawdown_and_return(sample.returns);
    let too_small = too_small(sample, minimum);
    let ratio = |f: &dyn Fn() -> Figure| match &too_small {
        Some(why) => Figure::Withheld(why.clone()),
        None => f(),
    };
    let annual_return = ratio(&|| {
        if n == 0 {
            return Figure::Withheld("no bars".into());
        }
        Figure::finite(
            (1.0 + total_return).powf(sample.periods_per_year / n as f64) - 1.0,
            "the annual return",
        )
    });
    let moments = Moments::of(sample.returns);
    let per_bar_sharpe = moments.and_then(|m| m.sharpe());
    let scale = sample.periods_per_year.sqrt();
    let sharpe_figure = ratio(&|| match per_bar_sharpe {
        Some(s) => Figure::finite(s * scale, "the Sharpe ratio"),
        None => Figure::Withheld("the returns do not vary".into()),
    });
    let sortino = ratio(&|| match moments.and_then(|m| m.sortino()) {
        Some(s) => Figure::finite(s * scale, "the Sortino ratio"),
        None => Figure::Withheld("no bar lost".into()),
    });
    let calmar = ratio(&|| match (&annual_return, max_drawdown > 0.0) {
        (Figure::Value(a), true) => Figure::finite(a / max_drawdown, "the Calmar ratio"),
        (Figure::Value(_), false) => Figure::Withheld("equity never fell".into()),
        (Figure::Withheld(why), _) => Figure::Withheld(why.clone()),
    });
    let wins = sample.trades.iter().filter(|p| **p > 0.0).count();
    let win_rate = ratio(&|| {
        if sample.trades.is_empty() {
            Figure::Withheld("no closed trade".into())
        } else {
            Figure::Value(wins as f64 / sample.trades.len() as f64)
        }
    });
    let profit_factor = ratio(&|| {
        let gain: f64 = sample.trades.iter().filter(|p| **p > 0.0).sum();
        let loss: f64 = -sample.trades.iter().filter(|p| **p < 0.0).sum::<f64>();
        if loss > 0.0 {
            Figure::finite(gain / loss, "the profit factor")
        } else {
            Figure::Withheld("no losing trade".into())
        }
    });
    let psr = ratio(&|| match (per_bar_sharpe, moments) {
        (Some(s), Some(m)) => probabilistic_sharpe(&m, s, 0.0),
        _ => Figure::Withheld("the returns do not vary".into()),
    });
    let dsr = ratio(&|| match (per_bar_sharpe, moments) {
        (Some(s), Some(m)) => {
            let benchmark = expected_max_sharpe(&m, s, sample.trials);
            probabilistic_sharpe(&m, s, benchmark)
        }
        _ => Figure::Withheld("the returns do not vary".into()),
    });
    let years = n as f64 / sample.periods_per_year;
    Summary {
        total_return,
        annual_return,
        sharpe: sharpe_figure,
        sortino,
        max_drawdown,
        max_drawdown_bars,
        calmar,
        win_rate,
        profit_factor,
        turnover: if years > 0.0 {
            sample.turnover / years
        } else {
            0.0
        },
        exposure: if n > 0 {
            sample.exposed_bars as f64 / n as f64
        } else {
            0.0
        },
        probabilistic_sharpe: psr,
        deflated_sharpe: dsr,
        bars: n as u64,
        days: sample.days,
        trades: sample.trades.len() as u64,
    }
}

/// Why the sample is too small for a ratio, if it is.
fn too_small(sample: &Sample<'_>, minimum: &MinimumSample) -> Option<String> {
    if sample.days < minimum.days {
        return Some(format!(
            "{:.0} days of data, fewer than the {:.0} a ratio needs",
            sample.days, minimum.days
        ));
    }
    let trades = sample.trades.len() as u64;
    (trades < minimum.trades).then(|| {
        format!(
            "{trades} closed trades, fewer than the {} a ratio needs",
            minimum.trades
        )
    })
}

/// The compounded return of `returns`.
pub fn compounded(returns: &[f64]) -> f64 {
    returns.iter().fold(1.0, |acc, r| acc * (1.0 + r)) - 1.0
}

/// The Sharpe ratio of one bar: mean over sample standard deviation; `None` when the
/// returns do not vary (or there are fewer than two).
pub fn sharpe(returns: &[f64]) -> Option<f64> {
    Moments::of(returns)?.sharpe()
}

/// The Sortino ratio of one bar: mean over the downside deviation
/// `sqrt(mean(min(r, 0)²))`; `None` when no bar lost (or there are fewer than two).
pub fn sortino(returns: &[f64]) -> Option<f64> {
    Moments::of(returns)?.sortino()
}

/// The deepest drawdown of the equity `returns` compound into, as a fraction of its peak,
/// and the longest run of bars spent below an earlier peak.
pub fn drawdown(returns: &[f64]) -> (f64, u64) {
    let (deepest, longest, _) = drawdown_and_return(returns);
    (deepest, longest)
}

/// [`drawdown`] and [`compounded`] in one pass.
fn drawdown_and_return(returns: &[f64]) -> (f64, u64, f64) {
    let (mut equity, mut peak) = (1.0_f64, 1.0_f64);
    let (mut deepest, mut longest, mut since_peak) = (0.0_f64, 0_u64, 0_u64);
    for r in returns {
        equity *= 1.0 + r;
        if equity >= peak {
            peak = equity;
            since_peak = 0;
        } else {
            since_peak += 1;
            deepest = deepest.max(1.0 - equity / peak);
        }
        longest = longest.max(since_peak);
    }
    (deepest, longest, equity - 1.0)
}

/// What the ratios need of a return series, in two passes over it: the mean, then the
/// central moments and the downside.
#[derive(Clone, Copy, Debug)]
struct Moments {
    n: f64,
    mean: f64,
    /// Central moments over n.
    m2: f64,
    m3: f64,
    m4: f64,
    /// Mean of min(r, 0)².
    downside: f64,
}

impl Moments {
    /// `None` for fewer than two returns.
    fn of(xs: &[f64]) -> Option<Self> {
        if xs.len() < 2 {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let (mut m2, mut m3, mut m4, mut down) = (0.0, 0.0, 0.0, 0.0);
        for x in xs {
            let d = x - mean;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
            let l = x.min(0.0);
            down += l * l;
        }
        Some(Self {
            n,
            mean,
            m2: m2 / n,
            m3: m3 / n,
            m4: m4 / n,
            downside: down / n,
        })
    }

    /// Mean over the sample standard deviation (n − 1); `None` when nothing varies.
    fn sharpe(&self) -> Option<f64> {
        let std = (self.m2 * self.n / (self.n - 1.0)).sqrt();
        (std > 0.0).then(|| self.mean / std)
    }

    /// Mean over the downside deviation; `None` when no bar lost.
    fn sortino(&self) -> Option<f64> {
        let d = self.downside.sqrt();
        (d > 0.0).then(|| self.mean / d)
    }

    /// Sample skewness and kurtosis (not excess).
    fn skew_kurt(&self) -> (f64, f64) {
        (self.m3 / self.m2.powf(1.5), self.m4 / (self.m2 * self.m2))
    }
}

/// The variance of the per-bar Sharpe ratio estimate `sr`, with the returns' skewness and
/// kurtosis (Mertens' formula, over n − 1).
fn sharpe_variance(m: &Moments, sr: f64) -> f64 {
    let (skew, kurt) = m.skew_kurt();
    (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr) / (m.n - 1.0)
}

/// The probability that the true per-bar Sharpe ratio exceeds `benchmark`, given the
/// estimate `sr` from returns with moments `m`.
fn probabilistic_sharpe(m: &Moments, sr: f64, benchmark: f64) -> Figure {
    let var = sharpe_variance(m, sr);
    if var.is_nan() || var <= 0.0 {
        return Figure::Withheld("the Sharpe ratio's variance is not positive".into());
    }
    Figure::finite(
        Normal::standard().cdf((sr - benchmark) / var.sqrt()),
        "the probabilistic Sharpe ratio",
    )
}

/// The per-bar Sharpe ratio the best of `trials` strategies with no skill would be
/// expected to show: `sqrt(V) · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))`, with the
/// variance `V` of the estimate; zero for one trial.
fn expected_max_sharpe(m: &Moments, sr: f64, trials: u64) -> f64 {
    if trials < 2 {
        return 0.0;
    }
    let n = trials as f64;
    let z = Normal::standard();
    let var = sharpe_variance(m, sr).max(0.0);
    var.sqrt()
        * ((1.0 - EULER_GAMMA) * z.inverse_cdf(1.0 - 1.0 / n)
            + EULER_GAMMA * z.inverse_cdf(1.0 - 1.0 / (n * std::f64::consts::E)))
}

/// The information coefficient: Spearman's rank correlation of a model's outputs with the
/// next bar's returns, pair by pair; `None` when either side does not vary.
pub fn information_coefficient(outputs: &[f64], next_returns: &[f64]) -> Option<f64> {
    spearman(outputs.iter().copied().zip(next_returns.iter().copied()))
}

/// The Spearman rank correlation of the pairs (`None` for fewer than two, or when either
/// side does not vary). The pairs are walked twice, never held.
pub fn spearman(pairs: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    // The first values' ranks in a column; the second's walked in their sorted order, each
    // beside its pair's first rank: one sort buffer for both, no second column.
    let mut order = Vec::new();
    sort_by_value(pairs.clone().map(|p| p.0), &mut order);
    let n = order.len();
    if n < 2 {
        return None;
    }
    let mut a = vec![0.0; n];
    for_each_rank(&order, |i, r| a[i] = r);
    sort_by_value(pairs.map(|p| p.1), &mut order);
    // Ties share their mean rank, so the ranks' mean is (n + 1) / 2 exactly.
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for_each_rank(&order, |i, r| {
        let (x, y) = (a[i] - mean, r - mean);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    });
    (aa > 0.0 && bb > 0.0).then(|| ab / (aa * bb).sqrt())
}

/// Fills `order` with `(key, index)` of `xs`, sorted by value: the key is an integer in the
/// order of `f64::total_cmp` (−0 taken as 0), so the sort compares integers side by side
/// in memory, with no lookup through the index.
fn sort_by_value(xs: impl Iterator<Item = f64>, order: &mut Vec<(u64, u32)>) {
    let key = |x: f64| {
        let b = (x + 0.0).to_bits() as i64;
        (b ^ (((b >> 63) as u64) >> 1) as i64) as u64 ^ (1 << 63)
    };
    order.clear();
    // Room for the most there can be: no copies as it grows.
    let (least, most) = xs.size_hint();
    order.reserve(most.unwrap_or(least));
    order.extend(xs.enumerate().map(|(i, x)| (key(x), i as u32)));
    // Equal keys are ties sharing their mean rank: their order does not matter.
    order.sort_unstable_by_key(|(k, _)| *k);
}

/// Each index of a sorted `order` with its rank, from 1, ties sharing their mean rank.
fn for_each_rank(order: &[(u64, u32)], mut f: impl FnMut(usize, f64)) {
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && order[j + 1].0 == order[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for (_, k) in &order[i..=j] {
            f(*k as usize, rank);
        }
        i = j + 1;
    }
}

/// Ranks from 1, ties sharing their mean rank.
#[cfg(test)]
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order = Vec::new();
    sort_by_value(xs.iter().copied(), &mut order);
    let mut out = vec![0.0; xs.len()];
    for_each_rank(&order, |i, r| out[i] = r);
    out
}

#[cfg(test)]
mod tests;
