//! The Execution agent: sends approved intents to the venue, tracks each order through
//! new → accepted → (partially) filled / cancelled / rejected, updates the portfolio from
//! fills, marks it to every bar, and answers the Risk agent's book queries.
//!
//! Every line of an order's life carries the trace id of the signal that caused it, and
//! the decision context. Order lookup is by client order id in a hash map holding only open
//! orders, so the cost per fill does not grow with history.
//!
//! The actor (`agent`) owns the mailbox and the I/O; the logic lives in the components it
//! owns: the open orders (`order_book`), the write-ahead journal gateway
//! (`journal_gateway`), the venue outage (`venue_outage`), the business metrics and the
//! drawdown sensor. Recovery at start and reconciliation with the venue are in
//! `vigil-recovery`.

mod agent;
mod business;
mod day_curve;
mod drawdown;
mod journal_gateway;
mod latency;
mod order_book;
mod venue_outage;

pub use agent::{ExecutionAgent, ReconcileLinks};
