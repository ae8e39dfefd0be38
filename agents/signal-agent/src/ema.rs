//! The EMA-cross model.

use vigil_core::Direction;
use vigil_model::Ema;

/// Name and version of the built-in model, as logged.
pub const MODEL_VERSION: &str = "ema_cross@1";

/// One symbol's EMA-cross state.
#[derive(Clone, Debug)]
pub struct EmaCross {
    fast: Ema,
    slow: Ema,
    allow_short: bool,
    bars: usize,
}

impl EmaCross {
    /// Creates the model with the given spans.
    pub fn new(fast_span: usize, slow_span: usize, allow_short: bool) -> Self {
        Self {
            fast: Ema::new(fast_span),
            slow: Ema::new(slow_span),
            allow_short,
            bars: 0,
        }
    }

    /// Takes the next close; returns `(fast, slow, target)` where the target is `None`
    /// while the EMAs are equal.
    pub fn update(&mut self, close: f64) -> (f64, f64, Option<Direction>) {
        self.bars += 1;
        let fast = self.fast.update(close);
        let slow = self.slow.update(close);
        let target = if fast > slow {
            Some(Direction::Long)
        } else if fast < slow {
            Some(if self.allow_short {
                Direction::Short
            } else {
                Direction::Flat
            })
        } else {
            None
        };
        (fast, slow, target)
    }

    /// Returns the number of bars seen.
    pub fn bars(&self) -> usize {
        self.bars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_is_seeded_with_the_first_close() {
        let mut m = EmaCross::new(3, 5, true);
        let (f, s, t) = m.update(10.0);
        assert_eq!((f, s, t), (10.0, 10.0, None));
        let (f, s, t) = m.update(12.0);
        assert!((f - 11.0).abs() < 1e-12); // alpha 0.5
        assert!((s - (10.0 + 2.0 / 6.0 * 2.0)).abs() < 1e-12);
        assert_eq!(t, Some(Direction::Long));
    }

    #[test]
    fn falling_prices_mean_short_or_flat() {
        let mut short = EmaCross::new(2, 4, true);
        let mut flat = EmaCross::new(2, 4, false);
        for x in [10.0, 9.0, 8.0] {
            short.update(x);
            flat.update(x);
        }
        assert_eq!(short.update(7.0).2, Some(Direction::Short));
        assert_eq!(flat.update(7.0).2, Some(Direction::Flat));
    }
}
