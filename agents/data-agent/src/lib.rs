//! The Data agent: pulls market data from a [`DataProvider`], validates every bar, drives the
//! market clock of a replay, and fans validated bars out to the Regime agent in batches.
//!
//! - A provider error (a malformed CSV row, a broken stream) is logged at ERROR with its
//!   full message, reported to the Monitor as fatal, and ends the stream: nothing trades on
//!   data that could not be read.
//! - A bar that parses but is impossible (high below low, time going backwards) is rejected,
//!   logged at ERROR and counted; it never reaches a model.
//! - At most `max_in_flight_batches` batches are unacknowledged at a time, which bounds
//!   every mailbox downstream.

mod agent;

pub use agent::{DataAgent, DataAgentConfig, Pacing};
