//! Backtests of a model and the gate that decides whether it may trade. The metrics a
//! backtest reports ([`metrics`]), annualised by the number of bars a year the data's
//! interval and its exchange calendar give ([`annual`]), each ratio withheld, with its
//! reason, below a minimum sample; two layers, the vectorized one ([`vectorized`]) and the
//! real order path ([`oms`]), measured alike ([`evaluate`]) with an in-sample /
//! out-of-sample split and walk-forward folds ([`folds`]); the gate ([`gate`]); and a
//! self-contained HTML report ([`report`]).

pub mod annual;
pub mod evaluate;
pub mod folds;
pub mod gate;
pub mod metrics;
pub mod oms;
pub mod report;
pub mod vectorized;

pub use annual::{AnnualError, Market, periods_per_year};
pub use metrics::{Figure, MinimumSample, Sample, Summary, summarise};
