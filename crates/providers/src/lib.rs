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
//! - [`AlpacaVenue`]: a venue over HTTP speaking Alpaca's trading API v2 (the paper broker
//!   process `vigil broker`, or Alpaca's paper endpoint); [`alpaca_wire`] holds the JSON
//!   shapes both sides share.
//!
//! Agents only ever see these traits and `vigil-core` types, never a vendor's.

mod alpaca;
pub mod alpaca_wire;
mod csv_reader;
mod paper;
mod traits;

pub use alpaca::{AlpacaVenue, AlpacaVenueConfig};
pub use csv_reader::{CsvBarReader, CsvError, CsvReplayProvider, CsvSource};
pub use paper::{FillModel, PaperVenue, PaperVenueConfig, bar_fill_price, fill_commission};
pub use traits::{
    Account, DataProvider, ExecutionVenue, ProviderError, ProviderHealth, VenueError, VenuePosition,
};
pub use vigil_core::MarketDataEvent;
