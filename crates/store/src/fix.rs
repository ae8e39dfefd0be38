//! A FIX session's state (the FIX venue, docs/fix-evaluation.md): the sequence numbers it
//! sends and expects, kept across restarts, and the messages it sent, kept for the
//! counterparty's ResendRequest.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

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

/// An ExecutionReport a FIX session received, as the store keeps it (one per ExecID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixExecution {
    /// Its place in the order of arrival (1, 2, …); set by the store, ignored when kept.
    pub ordinal: u64,
    /// ExecID (17): unique per session.
    pub exec_id: String,
    /// ClOrdID (11) of the order.
    pub cl_ord_id: String,
    /// ExecType (150): `0` new, `F` trade, `4` canceled, `8` rejected, `C` expired, `3` done.
    pub exec_type: String,
    /// OrdStatus (39) after it.
    pub ord_status: String,
    /// Symbol (55).
    pub symbol: String,
    /// Side (54): `1` buy, `2` sell.
    pub side: String,
    /// LastQty (32): the quantity of this fill (zero for other reports).
    pub last_qty: Decimal,
    /// LastPx (31).
    pub last_px: Decimal,
    /// CumQty (14) after it.
    pub cum_qty: Decimal,
    /// LeavesQty (151) after it.
    pub leaves_qty: Decimal,
    /// Commission (12) of this fill.
    pub commission: Decimal,
    /// TransactTime (60).
    pub transact_time: DateTime<Utc>,
    /// Text (58), when it carried one.
    pub text: Option<String>,
}
