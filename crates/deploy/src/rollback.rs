//! Automatic rollback: the guard over a model just switched in (blue-green), while the
//! model it replaced still runs beside it, warm. Fed every bar the traded model decides on,
//! it says when to switch back ([`Trigger`]):
//! - at once when its error rate over the last `window_bars` bars passes `max_error_pct`,
//!   or its decision time per bar at p99 over them passes `max_latency_p99_ms` (each from
//!   `MIN_BARS` bars on);
//! - once `sharpe_values` rolling Sharpe values are in, when their mean falls below
//!   `min_sharpe`. A rolling Sharpe is the mean simulated return of the model's positions
//!   over the last `sharpe_window_bars` bars, over its standard deviation, times the
//!   square root of the window: a t statistic, the same for any bar interval.

use std::collections::VecDeque;

use serde::Serialize;
use vigil_config::RollbackConfig;

/// Bars before the error rate or the latency can trigger a rollback.
pub const MIN_BARS: usize = 20;

/// Why the guard switches back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trigger {
    /// `error_rate`, `latency_p99` or `sharpe`.
    pub rule: &'static str,
    /// What was measured, in words.
    pub value: String,
    /// What it is held to.
    pub threshold: String,
}

/// One symbol's simulated position.
#[derive(Clone, Copy, Debug, Default)]
struct Book {
    close: Option<f64>,
    position: f64,
}

/// The guard over one traded model.
#[derive(Clone, Debug)]
pub struct Guard {
    cfg: RollbackConfig,
    /// The last `window_bars` bars: failed or not, and the decision time, ns.
    recent: VecDeque<(bool, f64)>,
    failed: usize,
    /// Of them, those slower than `max_latency_p99_ms` (counted as they come and go, so
    /// that no bar sorts the window).
    slow: usize,
    slow_ns: f64,
    books: Vec<Book>,
    returns: VecDeque<f64>,
    sharpes: VecDeque<f64>,
}

impl Guard {
    /// A guard for a model trading `symbols` symbols.
    pub fn new(cfg: &RollbackConfig, symbols: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            recent: VecDeque::with_capacity(cfg.window_bars),
            failed: 0,
            slow: 0,
            slow_ns: cfg.max_latency_p99_ms * 1e6,
            books: vec![Book::default(); symbols],
            returns: VecDeque::with_capacity(cfg.sharpe_window_bars),
            sharpes: VecDeque::with_capacity(cfg.sharpe_values),
        }
    }

    /// One bar of `symbol` closing at `close`: whether the model failed on it, how long it
    /// took, and the position it wants (`None`: no change). Returns why to switch back,
    /// when it is time to.
    pub fn bar(
        &mut self,
        symbol: usize,
        close: f64,
        failed: bool,
        decision_ns: f64,
        position: Option<f64>,
    ) -> Option<Trigger> {
        if self.recent.len() == self.cfg.window_bars
            && let Some((was_failed, was_ns)) = self.recent.pop_front()
        {
            self.failed -= usize::from(was_failed);
            self.slow -= usize::from(was_ns > self.slow_ns);
        }
        self.recent.push_back((failed, decision_ns));
        self.failed += usize::from(failed);
        self.slow += usize::from(decision_ns > self.slow_ns);
        if let Some(book) = self.books.get_mut(symbol) {
            if let Some(prev) = book.close.filter(|p| *p > 0.0) {
                self.returns.push_back(book.position * (close / prev - 1.0));
                if self.returns.len() > self.cfg.sharpe_window_bars {
                    self.returns.pop_front();
                }
                if self.returns.len() == self.cfg.sharpe_window_bars
                    && let Some(s) = rolling_sharpe(&self.returns)
                {
                    self.sharpes.push_back(s);
                    if self.sharpes.len() > self.cfg.sharpe_values {
                        self.sharpes.pop_front();
                    }
                }
            }
            book.close = Some(close);
            if let Some(p) = position {
                book.position = p;
            }
        }
        self.verdict()
    }

    fn verdict(&self) -> Option<Trigger> {
        let n = self.recent.len();
        if n >= MIN_BARS.min(self.cfg.window_bars) {
            let rate = 100.0 * self.failed as f64 / n as f64;
            if rate > self.cfg.max_error_pct {
                return Some(Trigger {
                    rule: "error_rate",
                    value: format!("{rate:.1} % of the last {n} bars failed"),
                    threshold: format!("≤ {} %", self.cfg.max_error_pct),
                });
            }
            // The p99 (the value of rank ⌈0.99 n⌉) is over the limit exactly when at least
            // n − rank + 1 bars are; only then is the window sorted, for the message.
            let rank = ((n as f64 * 0.99).ceil() as usize).clamp(1, n);
            if self.slow > n - rank {
                let mut times: Vec<f64> = self.recent.iter().map(|(_, t)| *t).collect();
                times.sort_by(f64::total_cmp);
                let p99_ms = times[rank - 1] / 1e6;
                return Some(Trigger {
                    rule: "latency_p99",
                    value: format!("p99 {p99_ms:.3} ms per bar over the last {n} bars"),
                    threshold: format!("≤ {} ms", self.cfg.max_latency_p99_ms),
                });
            }
        }
        if self.sharpes.len() == self.cfg.sharpe_values {
            let mean = self.sharpes.iter().sum::<f64>() / self.sharpes.len() as f64;
            if mean < self.cfg.min_sharpe {
                return Some(Trigger {
                    rule: "sharpe",
                    value: format!(
                        "mean of the last {} rolling Sharpe values {mean:.2}",
                        self.sharpes.len()
                    ),
                    threshold: format!("≥ {}", self.cfg.min_sharpe),
                });
            }
        }
        None
    }
}

/// Mean over standard deviation times √n; `None` when the returns do not vary.
fn rolling_sharpe(returns: &VecDeque<f64>) -> Option<f64> {
    let n = returns.len() as f64;
    if n < 2.0 {
        return None;
    }
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (var > 1e-24).then(|| mean / var.sqrt() * n.sqrt())
}

#[cfg(test)]
mod tests;
