//! The features a model reads, computed by vigil from the bars: one implementation, bar by
//! bar, which the live Signal agent and both backtest layers call alike, so that a model
//! sees the same numbers in a backtest as in live trading. Statistics, so `f64`.

use std::collections::VecDeque;

use crate::Feature;

/// An exponential moving average with `alpha = 2 / (span + 1)`, seeded with the first value
/// (the EMA cross's, and the `ema_ratio_*` features').
#[derive(Clone, Copy, Debug)]
pub struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA over `span` bars.
    pub fn new(span: usize) -> Self {
        Self {
            alpha: 2.0 / (span as f64 + 1.0),
            value: None,
        }
    }

    /// Takes the next value; returns the average.
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(prev) => self.alpha * x + (1.0 - self.alpha) * prev,
        };
        self.value = Some(v);
        v
    }
}

/// One feature's state.
#[derive(Clone, Debug)]
enum State {
    Return { n: usize },
    EmaRatio { fast: Ema, slow: Ema, warm: usize },
    Volatility { n: usize },
    Rsi(Rsi),
    Regime,
}

/// Wilder's RSI: the first averages of gains and losses are plain means over `n` changes,
/// then each is smoothed as `(avg · (n − 1) + x) / n`.
#[derive(Clone, Debug)]
struct Rsi {
    n: usize,
    seen: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    fn update(&mut self, change: f64) -> Option<f64> {
        let (g, l) = (change.max(0.0), (-change).max(0.0));
        let n = self.n as f64;
        self.seen += 1;
        if self.seen <= self.n {
            self.gain += g / n;
            self.loss += l / n;
        } else {
            self.gain = (self.gain * (n - 1.0) + g) / n;
            self.loss = (self.loss * (n - 1.0) + l) / n;
        }
        (self.seen >= self.n).then(|| {
            if self.loss == 0.0 {
                100.0
            } else {
                100.0 - 100.0 / (1.0 + self.gain / self.loss)
            }
        })
    }
}

/// The features of one symbol, computed bar by bar.
#[derive(Clone, Debug)]
pub struct FeatureSet {
    states: Vec<State>,
    /// The closes the windows need (the longest window plus one).
    closes: VecDeque<f64>,
    keep: usize,
    values: Vec<f64>,
}

impl FeatureSet {
    /// The features `features`, in that order.
    pub fn new(features: &[Feature]) -> Self {
        let mut keep = 1;
        let states = features
            .iter()
            .map(|f| match *f {
                Feature::Return(n) => {
                    keep = keep.max(n as usize + 1);
                    State::Return { n: n as usize }
                }
                Feature::EmaRatio(fast, slow) => State::EmaRatio {
                    fast: Ema::new(fast as usize),
                    slow: Ema::new(slow as usize),
                    warm: slow as usize,
                },
                Feature::Volatility(n) => {
                    keep = keep.max(n as usize + 1);
                    State::Volatility { n: n as usize }
                }
                Feature::Rsi(n) => State::Rsi(Rsi {
                    n: n as usize,
                    seen: 0,
                    gain: 0.0,
                    loss: 0.0,
                }),
                Feature::Regime => State::Regime,
            })
            .collect::<Vec<_>>();
        Self {
            values: vec![0.0; states.len()],
            states,
            closes: VecDeque::with_capacity(keep + 1),
            keep,
        }
    }

    /// Takes the next bar's close and the regime's label as a number; returns every
    /// feature's value, or `None` while a window is still filling (no value is made up).
    pub fn update(&mut self, close: f64, regime: f64) -> Option<&[f64]> {
        let previous = self.closes.back().copied();
        if self.closes.len() == self.keep {
            self.closes.pop_front();
        }
        self.closes.push_back(close);
        let mut ready = true;
        for (state, value) in self.states.iter_mut().zip(self.values.iter_mut()) {
            let got = match state {
                State::Return { n } => {
                    let len = self.closes.len();
                    (len > *n).then(|| close / self.closes[len - 1 - *n] - 1.0)
                }
                State::EmaRatio { fast, slow, warm } => {
                    let (f, s) = (fast.update(close), slow.update(close));
                    *warm = warm.saturating_sub(1);
                    (*warm == 0).then(|| f / s - 1.0)
                }
                State::Volatility { n } => volatility(&self.closes, *n),
                State::Rsi(rsi) => previous.and_then(|p| rsi.update(close - p)),
                State::Regime => Some(regime),
            };
            match got {
                Some(v) => *value = v,
                None => ready = false,
            }
        }
        ready.then_some(self.values.as_slice())
    }
}

/// The sample standard deviation of the last `n` one-bar returns of `closes`.
fn volatility(closes: &VecDeque<f64>, n: usize) -> Option<f64> {
    let len = closes.len();
    if len < n + 1 {
        return None;
    }
    let returns = (len - n..len).map(|i| closes[i] / closes[i - 1] - 1.0);
    let mean = returns.clone().sum::<f64>() / n as f64;
    let var = returns.map(|r| (r - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    Some(var.sqrt())
}

#[cfg(test)]
mod tests;
