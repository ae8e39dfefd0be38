//! The log chain's anchors: its head recorded outside the log (see `vigil_log::Anchor`).

use chrono::{DateTime, Utc};

/// When an anchor was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogAnchorKind {
    /// The writer opened the log and continues the chain from this line.
    Start,
    /// Lines were handed to the disk.
    Flush,
    /// The writer stopped cleanly: this line is the chain's last until the next start.
    Stop,
}

impl LogAnchorKind {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Flush => "flush",
            Self::Stop => "stop",
        }
    }
}

impl std::str::FromStr for LogAnchorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "start" => Ok(Self::Start),
            "flush" => Ok(Self::Flush),
            "stop" => Ok(Self::Stop),
            other => Err(format!("{other:?} is not start, flush or stop")),
        }
    }
}

/// One anchor: the chain's newest line at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAnchor {
    /// The chain (the hash of its first line).
    pub chain: String,
    /// The log file holding the line (its name in the log folder).
    pub file: String,
    /// The line's sequence number.
    pub seq: u64,
    /// The line's hash (or HMAC).
    pub hash: String,
    /// When it was taken.
    pub kind: LogAnchorKind,
    /// The writer's wall clock then.
    pub at: DateTime<Utc>,
}
