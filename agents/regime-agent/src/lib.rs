//! The Regime agent: labels each symbol's market state after every bar — trending,
//! ranging or volatile — and passes the labels with the bars to the Signal agent.
//!
//! The classifier is scale-free so one configuration suits daily and minute bars:
//! - **volatile** when the standard deviation of log returns over the short window exceeds
//!   `volatility_ratio` times that over the long window;
//! - otherwise **trending** when Kaufman's efficiency ratio over the short window
//!   (net move ÷ sum of absolute moves) reaches `trend_threshold`;
//! - otherwise **ranging**; **unknown** until the long window has filled.
//!
//! Every update is O(1) per bar (running sums over ring buffers).

mod agent;
mod classifier;

pub use agent::RegimeAgent;
pub use classifier::{Classifier, RegimeReading};
