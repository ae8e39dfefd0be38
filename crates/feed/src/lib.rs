//! A market-data feed as its own process (`vigil feed`): the other side of
//! [`vigil_providers::WsFeedProvider`].
//!
//! - Replays bars CSV files (the same files and reader as the replay) over a WebSocket at
//!   `/stream` that speaks Alpaca's market-data stream v2 (see
//!   [`vigil_providers::feed_wire`] and `docs/feed.md`): `connected`, `auth`, `subscribe`,
//!   then one JSON frame per bar to every client subscribed to its symbol.
//! - Paced by the feed: a bar every interval, as fast as the clients read (the sends wait
//!   on them), or only when a test asks (`POST /_feed/step?n=K`, which answers once the
//!   bars are on their way, so that tests never wait on the wall clock).
//! - Fault injection for tests under `/_faults` on the same listener: stall, disconnect,
//!   slow, a changed format, garbage, a price spike, clear. Each answers JSON and is
//!   logged on standard error.

mod faults;
mod server;
mod thread;

pub use server::{Credentials, FeedOptions, FeedServer, Pacing};
pub use thread::FeedThread;

/// Why the feed cannot start or go on. Every variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The market data or the symbols cannot be served.
    #[error("market data: {0}")]
    Data(String),
    /// The listen address could not be bound, a signal handler could not be installed,
    /// or the server failed.
    #[error(transparent)]
    Http(#[from] vigil_http::HttpError),
}

/// Starts a feed in an actix system of its own, calls `ready` with it once it listens,
/// and serves until SIGINT or SIGTERM.
///
/// # Errors
/// When it cannot start (see [`FeedServer::start`]) or the server fails.
pub fn run(opts: FeedOptions, ready: impl FnOnce(&FeedServer)) -> Result<(), FeedError> {
    actix_web::rt::System::new().block_on(async move {
        let server = FeedServer::start(opts).await?;
        ready(&server);
        server.serve_until_signal().await
    })
}
