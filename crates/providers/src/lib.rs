//! The outside world behind two traits, and the adapters vigil ships.
//!
//! - [`DataProvider`]: connect, subscribe, a stream of [`MarketDataEvent`]s (pulled in
//!   batches so the hot path allocates nothing per event), health.
//! - [`ExecutionVenue`]: submit, cancel, open orders, positions, account, and the execution
//!   reports (fills, cancels) that arrive after a submission.
//! - [`CsvReplayProvider`]: replays OHLCV CSV files (columns found by header name, any
//!   order); a malformed row is an error naming `FILE:LINE` and the column, never a skip.
//! - [`PaperVenue`]: an in-process venue filling market and limit orders on bar data with
//!   slippage and commission.
//! - [`WsFeedProvider`]: market data over a WebSocket speaking Alpaca's market-data stream
//!   v2 (the feed process `vigil feed`); [`feed_wire`] holds the strict parser both sides
//!   share. A message it cannot trust is an error the caller sees, never a skip.
//! - [`AlpacaVenue`]: a venue over HTTP speaking Alpaca's trading API v2 (the paper broker
//!   process `vigil broker`, or Alpaca's paper endpoint); [`alpaca_wire`] holds the JSON
//!   shapes both sides share.
//! - [`write_bars`]: synthetic bars, a seeded random walk reproducible byte for byte.
//! - [`Failover`]: the data-source failover (primary, backups, outage and reconnect, switch
//!   back), a pure state machine the Data agent owns and drives.
//!
//! Agents only ever see these traits and `vigil-core` types, never a vendor's.

mod alpaca;
pub mod alpaca_wire;
mod csv_reader;
pub mod failover;
pub mod feed_wire;
mod paper;
mod synth;
mod traits;
mod ws_feed;

pub use alpaca::{AlpacaVenue, AlpacaVenueConfig};
pub use csv_reader::{
    CsvBarReader, CsvError, CsvReplayProvider, CsvSource, MAX_LINE_BYTES, parse_timestamp,
};
pub use failover::{Failover, Failure, Recovered, Switch, SwitchCheck, Switched};
pub use paper::{
    CLOSED_ORDERS_KEPT, FillModel, PaperVenue, PaperVenueConfig, bar_fill_price, fill_commission,
};
pub use synth::{SynthSpec, write_bars};
pub use traits::{
    Account, DataProvider, ExecutionVenue, ProviderError, ProviderHealth, VenueError, VenuePosition,
};
pub use vigil_core::MarketDataEvent;
pub use ws_feed::{RejectionCounts, WsFeedConfig, WsFeedProvider};
