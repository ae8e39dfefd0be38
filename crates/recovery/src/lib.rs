//! Recovery and reconciliation: the journal (what vigil knew) against the venue (the source
//! of truth), as functions over the store ([`vigil_store::StateStore`]) and venue
//! ([`vigil_providers::ExecutionVenue`]) traits. Every finding is a [`Difference`].
//!
//! - [`reconcile`]: at the start of a session on a venue that outlives the process (a
//!   broker), before any trading, and on demand (`vigil reconcile`). It journals the fills
//!   made while vigil was down, adopts, cancels or closes the orders the journal holds open,
//!   and takes the venue's positions and cash where they differ.
//! - [`rebuild_journal`]: a journal that lost its history, rebuilt from what the venue holds
//!   ([`venue_history`]), adding what it lacks and never removing anything.
//! - [`SessionReconciler`]: reconciliation during the session, on an interval and after an
//!   outage: the book against the venue's positions and cash, a difference confirmed at the
//!   next check while an order works; [`books_verdict`] and [`verification`] answer the
//!   verification after a data outage.
//! - [`reconciliation_events`] and [`difference_event`]: the log lines of a reconciliation.
//!
//! Differences that a crash explains (a fill not yet journaled, an intent the venue did or
//! did not receive) are resolved; the others ([`Difference::is_mismatch`]) mean somebody or
//! something changed the account behind vigil's back, and trading does not open until a
//! person has looked (see `docs/recovery.md`).

mod books;
mod difference;
mod events;
mod in_session;
mod rebuild;
mod reconcile;

pub use books::{fill_entry, held_symbols};
pub use difference::{Difference, DifferenceRecord, SeenFill, mismatch_text};
pub use events::{difference_event, reconciliation_events};
pub use in_session::{Findings, SessionReconciler, books_verdict, verification};
pub use rebuild::{Rebuild, VenueHistory, rebuild_journal, venue_history};
pub use reconcile::{
    AdoptedOrder, OpenOrderPolicy, ReconcileError, ReconcileOptions, Reconciliation, reconcile,
};

/// The service the reconciliation's log lines are written under: the Execution agent,
/// which owns the book.
const SERVICE: &str = "execution_agent";

#[cfg(test)]
mod tests;
