//! The Signal agent: runs the active model on every bar and emits a signal — the start of a
//! decision chain, with its own trace id — whenever the model's target position changes.
//!
//! The built-in model is an EMA cross: EMAs of the close with alpha = 2/(n+1), seeded with
//! the first close; the target is long when fast > slow and short (or flat, when shorting
//! is off) when fast < slow. No signal is emitted during the warm-up, nor while the agent
//! is paused (each held-back signal is logged); after a resume the next bar re-aligns the
//! target.

mod agent;
mod ema;

pub use agent::SignalAgent;
pub use ema::{EmaCross, MODEL_VERSION};
