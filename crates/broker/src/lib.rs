//! A paper broker as its own process (`vigil broker`): the other side of
//! [`vigil_providers::AlpacaVenue`].
//!
//! - An HTTP JSON API shaped like Alpaca's trading API v2 (same paths, same fields), so the
//!   same adapter talks to this broker and to Alpaca's paper endpoint; see `docs/broker.md`.
//! - Its state (orders, fills, positions, cash, the market clock) in a SQLite file: every
//!   request's changes are one transaction, committed before the answer, so a broker killed
//!   at any moment (`kill -9` included) restarts with every answer it gave.
//! - Prices from the same CSV files the feed replays, on a market clock that the client
//!   moves forward with the `X-Vigil-Market-Time` header; fills as the in-process paper
//!   venue makes them ([`engine`]).
//! - Fault injection for tests under `/v2/_faults`: down, slow, reject the next orders,
//!   partial fills, and trades made outside vigil.

pub mod engine;
pub mod market;
mod server;
pub mod store;

use std::path::PathBuf;

pub use engine::EngineConfig;
pub use server::{BrokerOptions, BrokerServer, Credentials};

/// Why the broker cannot start or go on. Every variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Market data could not be read.
    #[error("market data: {0}")]
    Data(String),
    /// The state file could not be opened, read or written.
    #[error("state {path}: {what}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The listen address could not be bound, a signal handler could not be installed,
    /// or the server failed.
    #[error(transparent)]
    Http(#[from] vigil_http::HttpError),
}

/// Starts a broker in an actix system of its own, calls `ready` with it once it listens,
/// and serves until SIGINT or SIGTERM.
///
/// # Errors
/// When it cannot start (see [`BrokerServer::start`]) or the server fails.
pub fn run(opts: BrokerOptions, ready: impl FnOnce(&BrokerServer)) -> Result<(), BrokerError> {
    actix_web::rt::System::new().block_on(async move {
        let server = BrokerServer::start(opts).await?;
        ready(&server);
        server.serve_until_signal().await
    })
}
