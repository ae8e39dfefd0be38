//! The trading state (the circuit breaker), saved at every change.

use chrono::{DateTime, Utc};
use vigil_core::TradingState;

/// The trading state as last saved: what, who, why, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTradingState {
    /// The state.
    pub state: TradingState,
    /// Who set it (an operator, a rule, `supervisor` …).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When (wall clock).
    pub at: DateTime<Utc>,
    /// The halt of a data outage under way, as the Risk agent writes it (JSON); `None`
    /// when there is none.
    pub outage_hold: Option<String>,
}
