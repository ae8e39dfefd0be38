//! The report of every `vigil backtest` and `vigil gate` run, append-only: the dashboard
//! lists them and shows each page.

use chrono::{DateTime, Utc};

/// One backtest or gate run, without its page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BacktestReport {
    /// The model's name.
    pub model: String,
    /// Its version.
    pub version: String,
    /// `backtest` or `gate`.
    pub command: String,
    /// The bars file, as given.
    pub data: String,
    /// Its SHA-256.
    pub data_sha256: String,
    /// When it ran (wall clock).
    pub at: DateTime<Utc>,
    /// `passed` or `failed` for a gate; `None` for a backtest.
    pub verdict: Option<String>,
    /// The figures of each layer (and the gate's checks), as JSON.
    pub summary: String,
}
