//! The FIX 4.4 execution venue (`[execution] venue = "fix"`, docs/broker.md).
//!
//! The session layer is IronFix (`ironfix-engine`, pinned), chosen by measurement against
//! QuickFIX (docs/fix-evaluation.md): logon with Username/Password, heartbeats and test
//! requests, resend requests and gap fills both ways, PossDup, sequence reset and logout are
//! its. Vigil adds what a trading runtime needs around it:
//! - [`SessionStore`]: the session's sequence numbers and sent messages in vigil's store
//!   (SQLite or PostgreSQL), so that a restart resumes the session and answers resends;
//! - [`FixVenue`]: the [`ExecutionVenue`](vigil_providers::ExecutionVenue) — orders on
//!   `Decimal` with vigil's client order ids as ClOrdID, every execution kept once by ExecID
//!   before it is booked, a logon supervisor with backoff and jitter, and a status check of
//!   every open order after each logon (the engine delivers an inbound message at most once).

mod store;
mod venue;
pub mod wire;

pub use store::SessionStore;
pub use venue::{DropCopy, FixError, FixVenue, FixVenueConfig, PositionSource};
pub use wire::TimeInForce;
