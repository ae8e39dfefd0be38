//! The Risk agent: turns signals into order intents — or rejections with a logged reason —
//! under the trading state.
//!
//! - Trading state: `Active`; `ReduceOnly` (only orders that shrink a position; a signal to
//!   flip becomes a close); `Halted` (circuit breaker: no new orders). Every change is
//!   logged with who asked and why.
//! - Sizing: a fixed quantity or a fraction of equity, scaled by the regime's factor and
//!   rounded down to the quantity step.
//! - Pre-trade checks on any order that adds exposure: single position ≤ `max_position_pct`
//!   of equity, gross exposure ≤ `max_gross_exposure_pct` of equity, equity positive.
//!   An order that only reduces exposure is never blocked.
//! - The drawdown control line (`[risk.drawdown_control]`): when the Execution agent
//!   reports equity beyond the line, no new position (reduce-only) and the book is cut in
//!   steps of `step_pct`, one per `step_interval_s` of market time, while the drawdown
//!   stays beyond the line. Setting trading active again re-arms the line from the equity
//!   at that moment.
//!
//! Before deciding, the agent asks the Execution agent for the book (position, open orders,
//! equity) *in stream order*: Execution has then processed exactly the bars up to the
//! signal, so replays decide the same way however the threads are scheduled.
//!
//! Where things live: the actor and its handlers in `agent.rs` (operator commands in
//! `agent/commands.rs`); trading-state transitions, each returning its audit record, in
//! `trading_state.rs`; the sizing and limits in `policy.rs`; a signal's verdict in
//! `signal.rs`; the stream-order queue in `queue.rs`; the schedule in `schedule.rs`; the
//! drawdown control line in `drawdown.rs`; flatten in `flatten.rs`, and the market orders
//! the agent decides by itself in `forced.rs`.

mod agent;
mod drawdown;
#[cfg(test)]
mod fixtures;
mod flatten;
mod forced;
mod policy;
mod queue;
mod schedule;
mod signal;
mod trading_state;

pub use agent::{ExecutionLinks, RiskAgent};
pub use policy::{Decision, decide, deleverage_step};
