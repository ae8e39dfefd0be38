//! The chain's parts outside the line format: the keyed hash (`log.hmac_key_file`), the
//! chain's identity, and the anchors — the chain's head recorded outside the log (in the
//! store) so that cutting, replacing or re-hashing the end of the log is found.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use vigil_core::Timestamp;

use crate::files::list_log_files;
use crate::verify::parse_chained;

/// The key of a keyed chain: each line's hash is then HMAC-SHA256 with it, written as
/// `"hmac"` instead of `"hash"`. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainKey(Arc<[u8]>);

/// A log chain key too short to be one (the message says its length, never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the log chain key has {len} byte(s); it needs at least {min} (e.g. `openssl rand -hex 32`)",
    min = ChainKey::MIN_LEN
)]
pub struct ShortKey {
    /// How many bytes it has.
    pub len: usize,
}

impl ChainKey {
    /// The fewest bytes a key may have (a 256-bit key written as 32 characters or more;
    /// `openssl rand -hex 32` writes 64).
    pub const MIN_LEN: usize = 32;

    /// Takes `key` (the secret file's text, trimmed) as the key's bytes.
    ///
    /// # Errors
    /// When it is shorter than [`ChainKey::MIN_LEN`] bytes (the message never shows it).
    pub fn new(key: &[u8]) -> Result<Self, ShortKey> {
        if key.len() < Self::MIN_LEN {
            return Err(ShortKey { len: key.len() });
        }
        Ok(Self(key.into()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // Provably infallible: HMAC takes a key of any length (longer than a block it is
        // hashed first), so `new_from_slice` never returns `InvalidLength` for it.
        #[allow(clippy::expect_used)]
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts a key of any length")
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey([REDACTED])")
    }
}

/// One line's hash being computed: SHA-256, or HMAC-SHA256 with the chain's key. Either
/// absorbs the line in pieces, so the writer splits the work between its two stages.
#[derive(Clone)]
pub(crate) enum LineHasher {
    Plain(Sha256),
    /// Boxed: the keyed state is twice the plain one, and the plain path stays as small.
    Keyed(Box<Hmac<Sha256>>),
}

impl LineHasher {
    /// A fresh hasher: plain without a key.
    pub(crate) fn new(key: Option<&ChainKey>) -> Self {
        match key {
            None => Self::Plain(Sha256::new()),
            Some(k) => Self::Keyed(Box::new(k.mac())),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Plain(h) => Digest::update(h, bytes),
            Self::Keyed(m) => Mac::update(m.as_mut(), bytes),
        }
    }

    /// Writes the digest as 64 lowercase hex digits.
    pub(crate) fn finish_hex(self, out: &mut [u8; 64]) {
        match self {
            Self::Plain(h) => crate::writer::hex_into(&h.finalize(), out),
            Self::Keyed(m) => crate::writer::hex_into(&m.finalize().into_bytes(), out),
        }
    }

    pub(crate) fn keyed(&self) -> bool {
        matches!(self, Self::Keyed(_))
    }
}

/// The hash (or HMAC) of `body`, in hex.
pub(crate) fn digest_hex(key: Option<&ChainKey>, body: &[u8]) -> [u8; 64] {
    let mut h = LineHasher::new(key);
    h.update(body);
    let mut out = [0u8; 64];
    h.finish_hex(&mut out);
    out
}

/// When an anchor was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorKind {
    /// The writer opened the folder and continues the chain from this line.
    Start,
    /// Lines were handed to the operating system (the periodic flush, a full buffer, a
    /// rotation) or synced to the disk (an ERROR line, a flush asked for).
    Flush,
    /// The writer stopped cleanly: this line is the chain's last, and nothing may follow
    /// it until the next start.
    Stop,
}

impl AnchorKind {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Flush => "flush",
            Self::Stop => "stop",
        }
    }
}

impl std::str::FromStr for AnchorKind {
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

/// The chain's head at one moment, to be recorded outside the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The chain: the hash of its first line (see [`chain_id`]).
    pub chain: String,
    /// The log file holding the line (its name, without the folder).
    pub file: String,
    /// The line's sequence number.
    pub seq: u64,
    /// The line's hash (or HMAC).
    pub hash: String,
    /// When it was taken.
    pub kind: AnchorKind,
    /// The writer's (wall) clock then.
    pub at: Timestamp,
}

/// What the writer tells its owner besides writing lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterReport {
    /// The chain's head, to record outside the log (at the start, every flush, the stop).
    Anchor(Anchor),
    /// The writer failed: lines were lost or cannot be written any more, or the writer is
    /// gone. Nothing should be traded without a log.
    Failed(String),
}

/// Where the writer's [`WriterReport`]s go. The function runs on the writer's threads: it
/// must only hand the report on (a channel's send).
#[derive(Clone)]
pub struct WriterReports(Arc<dyn Fn(WriterReport) + Send + Sync>);

impl WriterReports {
    /// Calls `f` with every report.
    pub fn new(f: impl Fn(WriterReport) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn send(&self, report: WriterReport) {
        (self.0)(report);
    }
}

impl std::fmt::Debug for WriterReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterReports")
    }
}

/// The identity of the chain in `dir`: the hash of its first line (the first complete
/// chained line, in file order), which anchors are recorded under. `None` when the folder
/// holds no such line.
///
/// # Errors
/// When the folder or a file cannot be read.
pub fn chain_id(dir: &Path) -> std::io::Result<Option<String>> {
    for file in list_log_files(dir)? {
        let reader = BufReader::new(std::fs::File::open(&file.path)?);
        for line in reader.split(b'\n') {
            let raw = line?;
            let text = String::from_utf8_lossy(&raw);
            if let Some(c) = parse_chained(&text) {
                return Ok(Some(c.hash.to_string()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyed_hash_is_hmac_sha256_whatever_the_pieces() {
        // RFC 4231, test case 2 has a short key; ours are long: check against the crate on
        // a long key, absorbed in pieces as the writer does.
        let key = ChainKey::new(b"0123456789abcdef0123456789abcdef0123456789abcdef").expect("key");
        let body = b"{\"timestamp\":\"2024-01-15T09:30:00.000Z\",\"seq\":0,\"prev_hash\":\"00\"";
        let mut whole = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("mac");
        whole.update(body);
        let mut want = [0u8; 64];
        crate::writer::hex_into(&whole.finalize().into_bytes(), &mut want);
        for split in [0, 1, 31, 64, body.len()] {
            let mut h = LineHasher::new(Some(&key));
            h.update(&body[..split]);
            h.update(&body[split..]);
            let mut got = [0u8; 64];
            h.finish_hex(&mut got);
            assert_eq!(got, want, "split at {split}");
        }
        assert_ne!(digest_hex(None, body), want, "plain differs from keyed");
        assert!(ChainKey::new(b"short").is_err());
        assert_eq!(format!("{key:?}"), "ChainKey([REDACTED])");
    }
}
