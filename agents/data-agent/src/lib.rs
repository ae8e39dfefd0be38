//! The Data agent: pulls market data from a [`DataProvider`](vigil_providers::DataProvider), validates every bar, drives the
//! market clock of a replay, and fans validated bars out to the Regime agent in batches.
//!
//! - A provider error (a malformed CSV row, a broken stream) is logged at ERROR with its
//!   full message, reported to the Monitor as fatal, and ends the stream: nothing trades on
//!   data that could not be read.
//! - A bar that parses but is impossible (high below low, time going backwards) is rejected,
//!   logged at ERROR and counted; it never reaches a model.
//! - A session of the exchange calendar with no bar for a symbol (or, after a restart, no
//!   bar between the last one handled and the first new one) is a gap: `data_gap` at ERROR,
//!   counted and alerted. The bars are not invented: the models see the hole.
//! - A price jump beyond `[data.anomaly]`'s bounds, or a close that disagrees with a
//!   reference source's (`[data.cross_check]`, see [`CrossCheck`]), puts the symbol in
//!   quarantine: its bars are withheld and the Risk agent blocks new orders in it.
//! - With automation on, the phases of the trading day (close-only, the close …) are marked
//!   in band at the exact bar where they begin, so every agent applies them at that point.
//! - At most `max_in_flight_batches` batches are unacknowledged at a time, which bounds
//!   every mailbox downstream.
//! - A source that fails (cannot connect, breaks, rejects too many messages) hands over to
//!   the next backup; with none left, trading halts and the sources are retried with backoff.
//!
//! Where each concern lives: the actor in `agent.rs` (its read loop in `agent/stream.rs`,
//! its side of the failover in `agent/failover.rs`); the failover state machine itself in
//! [`vigil_providers::failover`]; the bar screen in `screening.rs`; rejected messages in
//! `parse_errors.rs`; gaps in `gaps.rs`; the quarantine (anomaly rule, cross-check,
//! operators) in `quarantine.rs`, `anomaly.rs` and `crosscheck.rs`; the phases of the day
//! and the pre-market gate in `phases.rs` and `scheduler.rs`; pacing in `pacing.rs`.

mod agent;
mod anomaly;
mod crosscheck;
mod gaps;
mod pacing;
mod parse_errors;
mod phases;
mod quarantine;
mod reload;
mod scheduler;
mod screening;

/// The service named in the Data agent's log lines.
const SERVICE: &str = "data_agent";

pub use agent::{DataAgent, DataAgentConfig, OutageLinks};
pub use anomaly::{AnomalyBounds, AnomalyWatch, Verdict};
pub use crosscheck::{
    Compared, CrossCheck, CrossCheckReader, Outcome, PENDING_DEPTH, ReferenceBars,
};
pub use gaps::{Gap, GapError, GapWatch};
pub use pacing::Pacing;
pub use phases::{DayReportFiles, PostCloseJob, PostCloseOutcome, PostCloseWork, PremarketGate};
pub use scheduler::Scheduler;
