//! The Monitor agent: the supervisor and the operator's single point of command.
//!
//! - Receives a heartbeat from every agent and knows each one's state; an agent silent for
//!   longer than the timeout is logged at CRITICAL (`heartbeat_missed`), and again when it
//!   recovers.
//! - Obeys [`Command`](vigil_bus::Command)s: pause / resume (the Signal agent stops
//!   emitting), trip / reset the circuit breaker (the Risk agent goes Halted / Active).
//! - Trips the breaker itself when an agent reports a fatal fault.
//! - Assembles the session summary from the agents' final reports and hands it to whoever
//!   runs the session.
//! - Alerts ([`AlertLinks`]): turns its own findings and what other agents log (through the
//!   log writer's tap, [`TAPPED`]) into alerts, trips the breaker on Critical, delivers
//!   notices off its thread, keeps alert state in the store and applies the operator's
//!   `vigil alerts ack|silence|unsilence` requests.

mod agent;
mod alerting;
#[cfg(test)]
mod alerting_tests;
mod health;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod test_links;

pub use agent::{MonitorAgent, MonitorLinks};
pub use alerting::{AlertLinks, Logged, TAPPED};
pub use health::HealthLinks;
