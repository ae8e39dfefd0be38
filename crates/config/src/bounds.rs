//! The bounds of every numeric key, written once: what the code that uses each value can run
//! with. Validation reads them from [`BOUNDS`], and docs/configuration.md shows the same
//! table (a test compares the two).
//!
//! Why these limits:
//! - **Money** (`session.initial_cash`, `execution.commission_min`) at most 10^15: sums and
//!   products of money, quantities and prices stay far inside `Decimal`'s 7.9 × 10^28.
//! - **Quantities**: `risk.quantity_step` at least 10^-8 (a quantity divided by its step
//!   cannot overflow), `risk.fixed_quantity` at most 10^12.
//! - **Windows and counts** at most 100 000: each is a buffer per symbol, allocated at start.
//! - **Disk space** in GB at most 10^9: times 10^9 bytes it still fits a `u64`.
//! - **Durations**: at least what does not busy-loop, at most a day (timers), a week
//!   (windows of time) or a year (market time), so that a deadline is always a time the
//!   clocks can hold.
//! - **Speed**: a replay paced at least as fast as real time (slower never delivers a bar
//!   in useful time), at most 10^9 (`"max"` is faster still).

use std::fmt;

use rust_decimal::Decimal;

use crate::validate::ConfigIssue;

/// The allowed range of one numeric key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// The dotted key; `[]` stands for any index, `*` for any name.
    pub key: &'static str,
    /// The least value.
    pub min: Decimal,
    /// `min` itself is not allowed.
    pub min_open: bool,
    /// The greatest value.
    pub max: Decimal,
    /// `max` itself is not allowed.
    pub max_open: bool,
    /// The unit (`ms`, `s`, `bars`, `%` …), empty for a plain number.
    pub unit: &'static str,
    /// What a special value means (`0: off`), empty when none.
    pub note: &'static str,
}

impl Bound {
    /// The range as written in messages and docs: `[1, 65536]`, `(0, 1]`.
    pub fn range(&self) -> String {
        format!(
            "{}{}, {}{}",
            if self.min_open { '(' } else { '[' },
            self.min,
            self.max,
            if self.max_open { ')' } else { ']' }
        )
    }

    /// Tells whether `v` is within the bounds (NaN and infinities never are).
    pub fn admits(&self, v: Num) -> bool {
        let (above_min, below_max) = match v {
            Num::Int(i) => {
                let d = Decimal::from(i);
                (d.cmp(&self.min), d.cmp(&self.max))
            }
            Num::Dec(d) => (d.cmp(&self.min), d.cmp(&self.max)),
            Num::Float(f) => {
                use rust_decimal::prelude::ToPrimitive as _;
                let (Some(lo), Some(hi)) = (self.min.to_f64(), self.max.to_f64()) else {
                    return false;
                };
                match (f.partial_cmp(&lo), f.partial_cmp(&hi)) {
                    (Some(a), Some(b)) if f.is_finite() => (a, b),
                    _ => return false,
                }
            }
        };
        use std::cmp::Ordering::{Greater, Less};
        let low_ok = if self.min_open {
            above_min == Greater
        } else {
            above_min != Less
        };
        let high_ok = if self.max_open {
            below_max == Less
        } else {
            below_max != Greater
        };
        low_ok && high_ok
    }

    /// The message for a value outside: `must be in [1, 65536] bars, got 0`.
    pub fn message(&self, v: Num) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.note)
        };
        format!("must be in {}{unit}{note}, got {v}", self.range())
    }
}

/// A number from a config, of whichever type its key has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An unsigned integer.
    Int(u64),
    /// An exact decimal.
    Dec(Decimal),
    /// A float.
    Float(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Self {
        Num::Int(v)
    }
}

impl From<u32> for Num {
    fn from(v: u32) -> Self {
        Num::Int(u64::from(v))
    }
}

impl From<u16> for Num {
    fn from(v: u16) -> Self {
        Num::Int(u64::from(v))
    }
}

impl From<usize> for Num {
    fn from(v: usize) -> Self {
        // usize is at most 64 bits on every supported target.
        Num::Int(u64::try_from(v).unwrap_or(u64::MAX))
    }
}

impl From<Decimal> for Num {
    fn from(v: Decimal) -> Self {
        Num::Dec(v)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num::Float(v)
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Dec(d) => write!(f, "{d}"),
            // 1e-300 as 1e-300, not 300 zeros.
            Num::Float(x) if *x != 0.0 && !(1e-4..1e15).contains(&x.abs()) => write!(f, "{x:e}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Checks `value` of the key at `path` against the bound of `key` (`path` with any index
/// replaced by `[]`, or a name by `*`, as in [`BOUNDS`]).
pub(crate) fn check(key: &str, path: &str, value: impl Into<Num>) -> Option<ConfigIssue> {
    let value = value.into();
    match BOUNDS.iter().find(|b| b.key == key) {
        Some(b) if b.admits(value) => None,
        Some(b) => Some(ConfigIssue::new(path, b.message(value))),
        None => Some(ConfigIssue::new(
            path,
            format!("no bound is defined for {key} (a bug in vigil: please report it)"),
        )),
    }
}

const fn int(n: u64) -> Decimal {
    Decimal::from_parts(n as u32, (n >> 32) as u32, 0, false, 0)
}

const fn frac(n: u32, scale: u32) -> Decimal {
    Decimal::from_parts(n, 0, 0, false, scale)
}

const ZERO: Decimal = int(0);
const ONE: Decimal = int(1);
const HUNDRED: Decimal = int(100);
const MONEY_MAX: Decimal = int(1_000_000_000_000_000);
const WINDOW_MAX: Decimal = int(100_000);
const SECOND_MS: u64 = 1_000;
const HOUR_MS: Decimal = int(3_600 * SECOND_MS);
const DAY_MS: Decimal = int(86_400 * SECOND_MS);
const DAY_S: Decimal = int(86_400);
const WEEK_S: Decimal = int(7 * 86_400);
const YEAR_S: Decimal = int(365 * 86_400);

const fn closed(key: &'static str, min: Decimal, max: Decimal, unit: &'static str) -> Bound {
    Bound {
        key,
        min,
        min_open: false,
        max,
        max_open: false,
        unit,
        note: "",
    }
}

const fn noted(bound: Bound, note: &'static str) -> Bound {
    Bound { note, ..bound }
}

const fn above_zero(key: &'static str, max: Decimal, unit: &'static str) -> Bound {
    Bound {
        min_open: true,
        ..closed(key, ZERO, max, unit)
    }
}

const fn open(key: &'static str, min: Decimal, max: Decimal) -> Bound {
    Bound {
        min_open: true,
        max_open: true,
        ..closed(key, min, max, "")
    }
}

/// Every numeric key's bounds.
pub const BOUNDS: &[Bound] = &[
    above_zero("session.initial_cash", MONEY_MAX, ""),
    noted(
        closed("data.speed", ONE, int(1_000_000_000), "× real time"),
        "or \"max\"",
    ),
    closed("data.batch_size", ONE, int(65_536), "bars"),
    closed("data.max_in_flight_batches", ONE, int(64), "batches"),
    closed("data.future_tolerance_s", ZERO, DAY_S, "s"),
    closed(
        "data.feed.max_rejected_in_a_row",
        ONE,
        int(10_000),
        "messages",
    ),
    noted(
        closed("data.feed.max_parse_error_pct", ZERO, HUNDRED, "%"),
        "0: off",
    ),
    closed(
        "data.feed.parse_error_window",
        int(10),
        WINDOW_MAX,
        "messages",
    ),
    noted(
        closed("data.feed.switch_back_after_s", ZERO, WEEK_S, "s"),
        "0: only by command",
    ),
    closed("data.feed.reconnect_initial_ms", int(10), HOUR_MS, "ms"),
    closed("data.feed.reconnect_max_ms", int(10), HOUR_MS, "ms"),
    Bound {
        unit: "%",
        ..open("data.cross_check.max_disagreement_pct", ZERO, HUNDRED)
    },
    noted(
        closed(
            "data.cross_check.release_after_bars",
            ZERO,
            WINDOW_MAX,
            "bars",
        ),
        "0: only by command",
    ),
    noted(
        closed("data.anomaly.max_jump_pct", ZERO, int(10_000), "%"),
        "0: no percent bound",
    ),
    noted(
        closed("data.anomaly.k_sigma", ZERO, int(1_000), "σ"),
        "0: no k-sigma bound",
    ),
    closed("data.anomaly.min_sigma_pct", ZERO, HUNDRED, "%"),
    closed("data.anomaly.window", int(2), WINDOW_MAX, "returns"),
    noted(
        closed("data.anomaly.release_after_bars", ZERO, WINDOW_MAX, "bars"),
        "0: only by command",
    ),
    closed("regime.short_window", int(2), WINDOW_MAX, "bars"),
    closed("regime.long_window", int(3), WINDOW_MAX, "bars"),
    above_zero("regime.volatility_ratio", int(1_000), ""),
    open("regime.trend_threshold", ZERO, ONE),
    closed("regime.confirm_bars", ONE, WINDOW_MAX, "bars"),
    closed("signal.fast_span", ONE, WINDOW_MAX, "bars"),
    closed("signal.slow_span", int(2), WINDOW_MAX, "bars"),
    closed("signal.warmup_bars", ZERO, int(1_000_000), "bars"),
    above_zero("risk.max_position_pct", ONE, ""),
    above_zero("risk.max_gross_exposure_pct", int(10), ""),
    above_zero("risk.position_pct", ONE, ""),
    above_zero("risk.fixed_quantity", int(1_000_000_000_000), ""),
    closed("risk.quantity_step", frac(1, 8), int(1_000_000), ""),
    closed("risk.regime_size_factor.*", ZERO, ONE, ""),
    open("risk.drawdown_control.line_pct", ZERO, ONE),
    noted(
        closed("risk.drawdown_control.step_pct", ZERO, ONE, ""),
        "0: only stops new positions",
    ),
    closed("risk.drawdown_control.step_interval_s", ONE, YEAR_S, "s"),
    closed("execution.slippage_bps", ZERO, int(1_000), "bps"),
    closed("execution.commission_bps", ZERO, int(1_000), "bps"),
    closed("execution.commission_min", ZERO, MONEY_MAX, ""),
    above_zero("execution.max_volume_participation", ONE, ""),
    closed("execution.limit_offset_bps", ZERO, int(1_000), "bps"),
    closed("execution.broker_poll_interval_ms", ONE, int(60_000), "ms"),
    closed("execution.broker_timeout_ms", int(100), int(60_000), "ms"),
    closed("execution.fix.heartbeat_s", ONE, int(300), "s"),
    closed(
        "execution.fix.reconnect_initial_ms",
        int(10),
        int(600_000),
        "ms",
    ),
    closed(
        "execution.fix.reconnect_max_ms",
        int(10),
        int(3_600_000),
        "ms",
    ),
    closed(
        "execution.fix.reply_timeout_ms",
        int(100),
        int(120_000),
        "ms",
    ),
    noted(
        closed("execution.reconcile.interval_s", ZERO, DAY_S, "s"),
        "0: only at start and after an outage",
    ),
    closed(
        "execution.reconcile.retry_initial_ms",
        ONE,
        int(600_000),
        "ms",
    ),
    closed("execution.reconcile.retry_max_ms", ONE, int(600_000), "ms"),
    closed("monitor.heartbeat_interval_ms", int(10), HOUR_MS, "ms"),
    closed("monitor.heartbeat_timeout_ms", ONE, DAY_MS, "ms"),
    closed("monitor.probe_interval_ms", int(10), DAY_MS, "ms"),
    closed("monitor.snapshot_interval_s", ONE, DAY_S, "s"),
    closed("monitor.watchdog_stall_s", ONE, DAY_S, "s"),
    closed("monitor.success_rate_window_s", ONE, WEEK_S, "s"),
    closed("monitor.trade_frequency_days", ONE, int(1_000), "days"),
    closed("monitor.dead_man.silence_trading_s", ONE, WEEK_S, "s"),
    closed("monitor.dead_man.silence_closed_s", ONE, WEEK_S, "s"),
    closed("monitor.dead_man.heartbeat_interval_s", ONE, DAY_S, "s"),
    closed(
        "monitor.dead_man.heartbeat_timeout_ms",
        ONE,
        int(300_000),
        "ms",
    ),
    closed("monitor.rules[].for", ZERO, WEEK_S, "s"),
    closed("monitor.supervision.max_restarts", ZERO, int(1_000), ""),
    closed("monitor.supervision.within_s", ONE, DAY_S, "s"),
    closed("monitor.supervision.backoff_initial_ms", ONE, HOUR_MS, "ms"),
    closed("monitor.supervision.backoff_max_ms", ONE, HOUR_MS, "ms"),
    closed("log.flush_interval_ms", int(10), int(60_000), "ms"),
    closed("log.max_file_mb", ONE, int(1_048_576), "MiB"),
    closed(
        "checklist.warn_free_disk_gb",
        ZERO,
        int(1_000_000_000),
        "GB",
    ),
    closed(
        "checklist.fail_free_disk_gb",
        ZERO,
        int(1_000_000_000),
        "GB",
    ),
    closed("release.shadow.min_sessions", ONE, int(1_000), "sessions"),
    closed("release.shadow.min_correlation", int(0), ONE, ""),
    above_zero("release.shadow.improvement_t", int(100), ""),
    above_zero("release.shadow.max_latency_ratio", int(1_000), "×"),
    above_zero("release.shadow.cpu_budget_us", int(1_000_000), "µs"),
    closed(
        "release.shadow.memory_budget_mb",
        ONE,
        int(1_048_576),
        "MiB",
    ),
    above_zero("release.shadow.outlier_sigma", int(100), "σ"),
    closed("release.shadow.max_outlier_pct", ZERO, HUNDRED, "%"),
    closed("release.shadow.cost_bps", ZERO, int(10_000), "bps"),
    closed("release.shadow.save_every_s", ONE, DAY_S, "s"),
    closed("release.drift.window_bars", int(10), WINDOW_MAX, "bars"),
    closed("release.drift.min_bars", ONE, WINDOW_MAX, "bars"),
    above_zero("release.drift.max_psi", int(100), ""),
    above_zero("release.drift.max_tracking_z", int(100), ""),
    closed(
        "release.canary.sessions_per_step",
        int(2),
        int(1_000),
        "sessions",
    ),
    closed("release.canary.margin_bps", ZERO, int(10_000), "bps"),
    above_zero("release.canary.confidence_z", int(100), "σ"),
    closed("release.rollback.window_bars", ONE, WINDOW_MAX, "bars"),
    closed("release.rollback.max_error_pct", ZERO, HUNDRED, "%"),
    above_zero("release.rollback.max_latency_p99_ms", int(60_000), "ms"),
    closed(
        "release.rollback.sharpe_window_bars",
        int(2),
        WINDOW_MAX,
        "bars",
    ),
    closed("release.rollback.sharpe_values", ONE, WINDOW_MAX, "values"),
    open(
        "release.rollback.min_sharpe",
        Decimal::from_parts(1000, 0, 0, true, 0),
        int(1000),
    ),
    closed("alerts.for", ZERO, WEEK_S, "s"),
    closed("alerts.keep_firing_for", ZERO, WEEK_S, "s"),
    closed("alerts.group_interval", ONE, WEEK_S, "s"),
    closed("alerts.rules.*.for", ZERO, WEEK_S, "s"),
    closed("alerts.rules.*.keep_firing_for", ZERO, WEEK_S, "s"),
    closed("alerts.channels.delivery.attempts", ONE, int(20), ""),
    closed(
        "alerts.channels.delivery.backoff_base_ms",
        ONE,
        HOUR_MS,
        "ms",
    ),
    closed(
        "alerts.channels.delivery.backoff_max_ms",
        ONE,
        HOUR_MS,
        "ms",
    ),
    closed(
        "alerts.channels.delivery.queue_capacity",
        ONE,
        int(1_000_000),
        "",
    ),
    closed(
        "alerts.channels.*.connect_timeout_ms",
        ONE,
        int(300_000),
        "ms",
    ),
    closed("alerts.channels.*.timeout_ms", ONE, int(300_000), "ms"),
    closed("alerts.channels.email.port", ONE, int(65_535), ""),
    closed("fleet.lease_s", int(3), int(3600), "s"),
];

#[cfg(test)]
mod tests;
