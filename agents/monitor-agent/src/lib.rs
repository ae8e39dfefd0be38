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

mod agent;
mod health;
#[cfg(test)]
mod health_tests;

pub use agent::{MonitorAgent, MonitorLinks};
pub use health::HealthLinks;
