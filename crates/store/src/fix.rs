//! A FIX session's state (the FIX venue, docs/fix-evaluation.md): the sequence numbers it
//! sends and expects, kept across restarts, and the messages it sent, kept for the
//! counterparty's ResendRequest.

use chrono::{DateTime, Utc};

/// A FIX session's sequence numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixSequences {
    /// The MsgSeqNum of the next message this side sends.
    pub next_sender: u64,
    /// The MsgSeqNum expected of the next message received.
    pub next_target: u64,
    /// When the session's sequences began (the last reset).
    pub created_at: DateTime<Utc>,
}

/// A message a FIX session sent, as it went on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixSentMessage {
    /// Its MsgSeqNum.
    pub seq: u64,
    /// Its MsgType (`D`, `F`, `A`, …).
    pub msg_type: String,
    /// The whole frame, header to checksum.
    pub frame: Vec<u8>,
}
