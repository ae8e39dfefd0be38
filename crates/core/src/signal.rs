//! Signals and market regimes.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::TraceId;
use crate::market::SymbolId;

/// The position a model wants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Hold a long position.
    Long,
    /// Hold a short position.
    Short,
    /// Hold nothing.
    Flat,
}

impl Direction {
    /// Returns `+1`, `-1` or `0`.
    pub fn sign(self) -> Decimal {
        match self {
            Direction::Long => Decimal::ONE,
            Direction::Short => Decimal::NEGATIVE_ONE,
            Direction::Flat => Decimal::ZERO,
        }
    }

    /// Returns the direction as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Long => "long",
            Direction::Short => "short",
            Direction::Flat => "flat",
        }
    }
}

/// The market state the Regime agent sees.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Not enough history yet.
    #[default]
    Unknown,
    /// Prices move persistently in one direction.
    Trending,
    /// Prices move back and forth without direction.
    Ranging,
    /// Volatility is well above its longer-run level.
    Volatile,
}

impl Regime {
    /// The label as the number a model's `regime` feature reads: unknown 0, trending 1,
    /// ranging 2, volatile 3.
    pub const fn code(self) -> u8 {
        match self {
            Regime::Unknown => 0,
            Regime::Trending => 1,
            Regime::Ranging => 2,
            Regime::Volatile => 3,
        }
    }

    /// Returns the label as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Unknown => "unknown",
            Regime::Trending => "trending",
            Regime::Ranging => "ranging",
            Regime::Volatile => "volatile",
        }
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a canary's candidate leg does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LegState {
    /// Trades its share of capital.
    Live,
    /// Aborted: its positions go to production at the reference price, with no order.
    HandOver,
    /// Aborted: its positions are closed, by limit orders (netted with production's).
    Close,
}

/// A canary's candidate in a signal: both versions decide on every bar, the candidate's
/// target scaled by `weight` and production's by `1 − weight`, netted into one account.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct CanaryLeg {
    /// The candidate (`ema_cross@1.1.0`).
    pub model_version: &'static str,
    /// The position it wants.
    pub direction: Direction,
    /// Its share of capital, in `[0, 1]`.
    pub weight: Decimal,
    /// Live, or being unwound.
    pub state: LegState,
}

/// A model's request for a target position, the start of a decision chain.
#[derive(Clone, PartialEq, Debug)]
pub struct Signal {
    /// The chain this signal starts.
    pub trace_id: TraceId,
    /// The signal's own id (`sig_…`), computed once.
    pub signal_id: std::sync::Arc<str>,
    /// The instrument.
    pub symbol: SymbolId,
    /// Market time of the bar that produced it.
    pub at: Timestamp,
    /// The wanted position.
    pub direction: Direction,
    /// Conviction in `[0, 1]` (a statistic, so `f64`).
    pub strength: f64,
    /// The close of the bar that produced it; the price risk checks use.
    pub reference_price: Decimal,
    /// The regime when it was produced.
    pub regime: Regime,
    /// Which model produced it (`ema_cross@1`).
    pub model_version: &'static str,
    /// During a canary: the candidate's leg (`direction` and `model_version` are then
    /// production's).
    pub canary: Option<CanaryLeg>,
}
