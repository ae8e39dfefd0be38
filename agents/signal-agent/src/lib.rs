//! The Signal agent: runs the active model on every bar and emits a signal — the start of a
//! decision chain, with its own trace id — whenever the model's target position changes.
//!
//! The model is the built-in EMA cross (EMAs of the close with alpha = 2/(n+1), seeded with
//! the first close; long when fast > slow, short — or flat, when shorting is off — when
//! fast < slow) or any model artifact (`[signal] model = "models/…"`, see vigil-model): the
//! same predictor the backtest layers run. No signal is emitted during the warm-up, nor
//! while the agent is paused (each held-back signal is logged); after a resume the next bar
//! re-aligns the target.
//!
//! During a model's release the agent also runs the candidate in shadow
//! ([`SignalAgent::with_shadow`]): on the same bars, through a simulated venue, never an
//! order; its figures go to the store per exchange session.

mod agent;
mod model;
mod shadow;

pub use agent::{CanaryLinks, ReleaseLoader, SignalAgent};
pub use model::{ActiveModel, MODEL_VERSION};
pub use shadow::{DriftLinks, ShadowLinks};
