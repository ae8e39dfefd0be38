//! The Monitor agent: the supervisor and the operator's single point of command.
//!
//! - Receives a heartbeat from every agent and knows each one's state; an agent silent for
//!   longer than the timeout is logged at CRITICAL (`heartbeat_missed`), and again when it
//!   recovers.
//! - Obeys [`Command`](vigil_messages::Command)s: pause / resume (the Signal agent stops
//!   emitting), trip / reset the circuit breaker (the Risk agent goes Halted / Active).
//! - Trips the breaker itself when an agent reports a fatal fault.
//! - Assembles the session summary from the agents' final reports and hands it to whoever
//!   runs the session.
//! - Alerts ([`AlertLinks`]): turns its own findings and what other agents log (through the
//!   log writer's tap, [`TAPPED`]) into alerts, trips the breaker on Critical, delivers
//!   notices off its thread, keeps alert state in the store and applies the operator's
//!   `vigil alerts ack|silence|unsilence` requests. Which event becomes which alert is
//!   [`vigil_alert::routing`].
//!
//! Where things are: the actor (`agent`) does the I/O over components that return what
//! changed — `roster` (supervision), `commands` (command routing and the breaker),
//! `summary` (the session summary), `health` and `probe` (measurement, `/status`, the
//! dead-man's switch), `alerting` (the engine, its effects, the operator's requests).

mod agent;
mod alerting;
#[cfg(test)]
mod alerting_tests;
mod commands;
mod health;
#[cfg(test)]
mod health_tests;
mod probe;
mod roster;
mod summary;
#[cfg(test)]
mod test_links;

pub use agent::MonitorAgent;
pub use alerting::{AlertLinks, Logged, TAPPED};
pub use commands::MonitorLinks;
pub use health::HealthLinks;

/// The Monitor's name in the log.
pub(crate) const SERVICE: &str = "monitor_agent";
