//! The Execution agent: sends approved intents to the venue, tracks each order through
//! new → accepted → (partially) filled / cancelled / rejected, updates the portfolio from
//! fills, marks it to every bar, and answers the Risk agent's book queries.
//!
//! Every line of an order's life carries the trace id of the signal that caused it, and
//! the decision context. Order lookup is by client order id in a hash map holding only open
//! orders, so the cost per fill does not grow with history.

mod agent;
mod business;
mod drawdown;
pub mod recovery;

pub use agent::{ExecutionAgent, ReconcileLinks, reconciliation_events};
pub use business::BUSINESS_METRICS;
