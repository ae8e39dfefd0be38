//! The log chain's anchors: its head recorded outside the log. The types are the log's own
//! ([`vigil_log::Anchor`], [`vigil_log::AnchorKind`]): the store keeps what the writer reports.

pub use vigil_log::{Anchor as LogAnchor, AnchorKind as LogAnchorKind};
