//! Backtests of a model and the gate that decides whether it may trade (issue 21, in
//! progress). Today: the metrics a backtest reports ([`metrics`]), annualised by the number
//! of bars a year the data's interval and its exchange calendar give ([`annual`]), each
//! ratio withheld, with its reason, below a minimum sample; and the vectorized layer
//! ([`vectorized`]) for the models with a runtime here.

pub mod annual;
pub mod metrics;
pub mod vectorized;

pub use annual::{AnnualError, Market, periods_per_year};
pub use metrics::{Figure, MinimumSample, Sample, Summary, summarise};
