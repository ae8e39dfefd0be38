//! The per-symbol regime classifier.

use std::collections::VecDeque;

use vigil_config::RegimeConfig;
use vigil_core::Regime;

/// The classifier's view after a bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegimeReading {
    /// The label.
    pub regime: Regime,
    /// Standard deviation of log returns, short window.
    pub vol_short: f64,
    /// Standard deviation of log returns, long window.
    pub vol_long: f64,
    /// Efficiency ratio over the short window, in [0, 1].
    pub efficiency: f64,
}

#[derive(Debug, Default)]
struct Window {
    values: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    cap: usize,
    since_recompute: usize,
}

impl Window {
    fn new(cap: usize) -> Self {
        Self {
            values: VecDeque::with_capacity(cap + 1),
            cap,
            ..Self::default()
        }
    }

    fn push(&mut self, v: f64) {
        self.values.push_back(v);
        self.sum += v;
        self.sum_sq += v * v;
        if self.values.len() > self.cap
            && let Some(old) = self.values.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        // Running sums drift; recompute them now and then.
        self.since_recompute += 1;
        if self.since_recompute >= 4096 {
            self.since_recompute = 0;
            self.sum = self.values.iter().sum();
            self.sum_sq = self.values.iter().map(|v| v * v).sum();
        }
    }

    fn full(&self) -> bool {
        self.values.len() >= self.cap
    }

    fn std(&self) -> f64 {
        let n = self.values.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean = self.sum / n;
        ((self.sum_sq / n - mean * mean).max(0.0) * n / (n - 1.0)).sqrt()
    }
}

/// Classifies one symbol's bars.
#[derive(Debug)]
pub struct Classifier {
    short: Window,
    long: Window,
    /// Absolute close-to-close moves over the short window.
    moves: Window,
    closes: VecDeque<f64>,
    short_n: usize,
    ratio: f64,
    trend: f64,
    prev_close: Option<f64>,
    confirm: usize,
    published: Regime,
    candidate: Regime,
    streak: usize,
}

impl Classifier {
    /// Creates a classifier with the given settings.
    pub fn new(cfg: &RegimeConfig) -> Self {
        Self {
            short: Window::new(cfg.short_window),
            long: Window::new(cfg.long_window),
            moves: Window::new(cfg.short_window),
            closes: VecDeque::with_capacity(cfg.short_window + 2),
            short_n: cfg.short_window,
            ratio: cfg.volatility_ratio,
            trend: cfg.trend_threshold,
            prev_close: None,
            confirm: cfg.confirm_bars.max(1),
            published: Regime::Unknown,
            candidate: Regime::Unknown,
            streak: 0,
        }
    }

    /// Takes the next close and returns the reading after it.
    pub fn update(&mut self, close: f64) -> RegimeReading {
        if let Some(prev) = self.prev_close {
            if prev > 0.0 && close > 0.0 {
                let r = (close / prev).ln();
                self.short.push(r);
                self.long.push(r);
            }
            self.moves.push((close - prev).abs());
        }
        self.prev_close = Some(close);
        self.closes.push_back(close);
        if self.closes.len() > self.short_n + 1 {
            self.closes.pop_front();
        }
        let vol_short = self.short.std();
        let vol_long = self.long.std();
        let efficiency = match (self.closes.front(), self.closes.back()) {
            (Some(first), Some(last)) if self.moves.sum > 0.0 => {
                ((last - first).abs() / self.moves.sum).min(1.0)
            }
            _ => 0.0,
        };
        let raw = if !self.long.full() {
            Regime::Unknown
        } else if vol_long > 0.0 && vol_short > self.ratio * vol_long {
            Regime::Volatile
        } else if efficiency >= self.trend {
            Regime::Trending
        } else {
            Regime::Ranging
        };
        // Hysteresis: publish a new label only once it has held `confirm` bars in a row.
        if raw == self.candidate {
            self.streak += 1;
        } else {
            self.candidate = raw;
            self.streak = 1;
        }
        if raw != self.published && self.streak >= self.confirm {
            self.published = raw;
        }
        RegimeReading {
            regime: self.published,
            vol_short,
            vol_long,
            efficiency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RegimeConfig {
        RegimeConfig {
            short_window: 10,
            long_window: 40,
            volatility_ratio: 1.5,
            trend_threshold: 0.3,
            confirm_bars: 1,
        }
    }

    #[test]
    fn unknown_until_the_long_window_fills() {
        let mut c = Classifier::new(&cfg());
        for i in 0..40 {
            assert_eq!(c.update(100.0 + i as f64).regime, Regime::Unknown);
        }
        assert_ne!(c.update(141.0).regime, Regime::Unknown);
    }

    #[test]
    fn steady_climb_is_trending() {
        let mut c = Classifier::new(&cfg());
        let mut last = None;
        for i in 0..100 {
            // Up 1% a bar with a small wobble: low volatility change, high efficiency.
            let wobble = if i % 2 == 0 { 1.0 } else { 0.999 };
            last = Some(c.update(100.0 * 1.01f64.powi(i) * wobble));
        }
        assert_eq!(last.map(|r| r.regime), Some(Regime::Trending));
    }

    #[test]
    fn back_and_forth_is_ranging() {
        let mut c = Classifier::new(&cfg());
        let mut last = None;
        for i in 0..100 {
            last = Some(c.update(if i % 2 == 0 { 100.0 } else { 101.0 }));
        }
        let r = last.expect("reading");
        assert_eq!(r.regime, Regime::Ranging);
        assert!(r.efficiency < 0.3);
    }

    #[test]
    fn a_label_must_hold_confirm_bars_before_it_is_published() {
        let mut c = Classifier::new(&RegimeConfig {
            confirm_bars: 3,
            ..cfg()
        });
        let mut labels = Vec::new();
        for i in 0..43 {
            labels.push(c.update(100.0 + i as f64).regime);
        }
        // Raw labels start at bar 41 (long window full); published two bars later.
        assert_eq!(labels[40], Regime::Unknown);
        assert_eq!(labels[41], Regime::Unknown);
        assert_ne!(labels[42], Regime::Unknown);
    }

    #[test]
    fn sudden_swings_are_volatile() {
        let mut c = Classifier::new(&cfg());
        for i in 0..60 {
            c.update(if i % 2 == 0 { 100.0 } else { 100.1 });
        }
        let mut last = None;
        for i in 0..5 {
            last = Some(c.update(if i % 2 == 0 { 110.0 } else { 95.0 }));
        }
        assert_eq!(last.map(|r| r.regime), Some(Regime::Volatile));
    }
}
