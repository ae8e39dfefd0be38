//! The log writer actor: numbers, redacts, hash-chains and writes every event, in arrival
//! order, to rotating files.
//!
//! Backpressure policy: producers never wait and the writer never drops. The mailbox is
//! unbounded on purpose — a trading decision must not stall on the disk — so a disk slower
//! than the producers shows up as memory held by queued events (measured in
//! `docs/benchmarks.md`), never as a lost line.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDate;
use vigil_core::{Level, SharedClock};

use crate::chain::{Anchor, AnchorKind, ChainKey, LineHasher, WriterReport, WriterReports};
use crate::encode::encode_body;
use crate::event::{Event, LogEvent, Value};
use crate::files::{file_name, list_log_files};
use crate::redact::Redactor;
use crate::sink::LogSink;

/// A batch of events from one producer.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct LogBatch(pub(crate) Vec<LogEvent>);

/// Asks the writer to push everything to disk (with fsync) and report its figures.
#[derive(Message, Debug)]
#[rtype(result = "Result<WriterStats, LogWriterError>")]
struct Flush;

/// Asks the writer to write and fsync everything, record the stop anchor and stop writing.
#[derive(Message, Debug)]
#[rtype(result = "Result<WriterStats, LogWriterError>")]
struct Close;

/// The writer's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Lines written since start.
    pub lines: u64,
    /// Bytes written since start.
    pub bytes: u64,
    /// The next sequence number.
    pub next_seq: u64,
    /// Write, flush or rotation failures since start.
    pub errors: u64,
    /// Files opened since start (1 plus rotations).
    pub files: u64,
}

/// Why the log could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LogWriterError {
    /// The log file could not be opened, created or read.
    #[error("cannot open log file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing or flushing failed.
    #[error("cannot write log file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer actor is gone.
    #[error("log writer is not running")]
    Stopped,
    /// The folder's chain is keyed and no key is configured, or the reverse: one folder
    /// holds one kind of chain.
    #[error(
        "log folder {dir}: its chain is {found} but log.hmac_key_file {configured}; a folder \
         holds one kind of chain: verify the old folder (vigil logs verify), move it aside and \
         start the new chain in an empty folder"
    )]
    ChainKind {
        /// The folder.
        dir: PathBuf,
        /// What the newest line is (`keyed (HMAC)` or `plain (SHA-256)`).
        found: &'static str,
        /// What the config says (`is set` or `is not set`).
        configured: &'static str,
    },
}

/// How the writer runs.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Buffered lines reach the disk at least this often (ERROR and above at once).
    pub flush_interval: Duration,
    /// A file is closed and a new one opened beyond this size.
    pub max_file_bytes: u64,
    /// Texts that must never appear in a line (API keys, tokens, passwords …).
    pub secrets: Vec<String>,
    /// Hands chosen events, redacted, to someone else as they are written (the Monitor's
    /// alerting).
    pub tap: Option<LogTap>,
    /// Makes each line's hash an HMAC-SHA256 with this key (`"hmac"` instead of `"hash"`).
    pub key: Option<ChainKey>,
    /// Where the chain's anchors and the writer's failures go (see [`WriterReport`]).
    pub reports: Option<WriterReports>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_millis(200),
            max_file_bytes: 64 * 1024 * 1024,
            secrets: Vec::new(),
            tap: None,
            key: None,
            reports: None,
        }
    }
}

/// A copy of chosen events, taken by the writer as it encodes them: whatever any agent
/// logs, the receiver sees, with secrets already redacted. Events not chosen cost one
/// table lookup.
#[derive(Clone)]
pub struct LogTap {
    wants: Arc<[bool]>,
    send: Arc<dyn Fn(LogEvent) + Send + Sync>,
}

impl LogTap {
    /// Calls `send` with every event whose kind is in `events`. `send` runs on the
    /// writer's thread: it must only hand the event on (an actor's `do_send`, a channel).
    pub fn new(events: &[Event], send: impl Fn(LogEvent) + Send + Sync + 'static) -> Self {
        let mut wants = vec![false; Event::ALL.len()];
        for e in events {
            wants[*e as usize] = true;
        }
        Self {
            wants: wants.into(),
            send: Arc::new(send),
        }
    }

    fn offer(&self, event: &LogEvent, redactor: &Redactor) {
        if !self
            .wants
            .get(event.event as usize)
            .copied()
            .unwrap_or(false)
        {
            return;
        }
        let mut copy = event.clone();
        if !redactor.is_empty() {
            for (_, v) in &mut copy.data {
                let redacted = match v {
                    Value::Str(s) => redactor.redact(s).into_owned(),
                    Value::Shared(s) => redactor.redact(s).into_owned(),
                    _ => continue,
                };
                *v = Value::from(redacted);
            }
        }
        (self.send)(copy);
    }
}

impl std::fmt::Debug for LogTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events: Vec<&str> = Event::ALL
            .iter()
            .filter(|e| self.wants.get(**e as usize).copied().unwrap_or(false))
            .map(|e| e.name())
            .collect();
        f.debug_struct("LogTap").field("events", &events).finish()
    }
}

/// The hash a chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The actor that numbers, redacts and encodes events (stage 1). It absorbs the first half
/// of each line's body into a SHA-256 state; the chain thread (stage 2, `ChainWriter`)
/// absorbs the rest and the previous line's hash, then writes. SHA-256 absorbs input block
/// by block, so this is exactly the hash of the whole line; the split gives the two stages
/// about the same work (encoding costs about as much as half the hashing).
pub struct LogWriter {
    dir: PathBuf,
    next_seq: u64,
    clock: SharedClock,
    opts: WriterOptions,
    redactor: Arc<Redactor>,
    stage2: Option<ChainHandle>,
    /// Each line's hash starts as a copy of this (keyed or not).
    hasher: LineHasher,
    /// Closed on purpose ([`LogWriterHandle::close`]): stopping is then no failure.
    closed: bool,
    /// A failure was reported already (once is enough; stderr says the rest).
    failed: bool,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

/// The running writer: a sink for producers, and a flush for shutdown.
#[derive(Clone, Debug)]
pub struct LogWriterHandle {
    addr: Addr<LogWriter>,
    dir: PathBuf,
    redactor: Arc<Redactor>,
}

const BUF_FLUSH_AT: usize = 1 << 20;

/// Encoded batches queued for the chain thread at most.
const CHAIN_DEPTH: usize = 64;

/// Bytes reserved per line in a fresh batch buffer: a fill line's body is about 480.
const LINE_BYTES: usize = 640;

// Files rotate when the exchange date changes.
use vigil_core::exchange_date;

/// Where an existing log left off.
struct Tail {
    seq: u64,
    hash: [u8; 64],
    /// The last file ends cleanly (with a newline after a complete line).
    clean: bool,
    /// The line is keyed (`"hmac"`).
    keyed: bool,
}

fn read_tail(path: &Path) -> Result<Option<Tail>, LogWriterError> {
    let open_err = |source| LogWriterError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(open_err)?;
    let len = file.metadata().map_err(open_err)?.len();
    // A line is far shorter than this; the last complete one is inside the tail.
    let tail = len.min(256 * 1024);
    file.seek(SeekFrom::Start(len - tail)).map_err(open_err)?;
    let mut buf = Vec::with_capacity(tail as usize);
    file.read_to_end(&mut buf).map_err(open_err)?;
    let clean = buf.last().is_none_or(|b| *b == b'\n');
    let text = String::from_utf8_lossy(&buf);
    for line in text.lines().rev() {
        if let Some(parsed) = crate::verify::parse_chained(line) {
            let mut hash = [0u8; 64];
            hash.copy_from_slice(parsed.hash.as_bytes());
            return Ok(Some(Tail {
                seq: parsed.seq,
                hash,
                clean,
                keyed: parsed.keyed,
            }));
        }
    }
    Ok(None)
}

pub(crate) fn hex_into(digest: &[u8], out: &mut [u8; 64]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
}

/// Encoded lines on their way to the chain thread.
struct Encoded {
    /// The bodies, back to back (each up to and including `,"prev_hash":"`).
    bytes: Vec<u8>,
    /// Per line: end offset in `bytes`, its level, how far its hash has absorbed it, and
    /// the hash state there.
    lines: Vec<(usize, Level, usize, LineHasher)>,
    /// The exchange date when the batch was encoded (drives date rotation).
    date: NaiveDate,
}

enum ChainCmd {
    Lines(Encoded),
    /// Write the buffer to the OS (the periodic flush).
    Drain,
    /// Write and fsync, then answer with the figures.
    Sync(std::sync::mpsc::Sender<Result<WriterStats, LogWriterError>>),
}

struct ChainHandle {
    tx: std::sync::mpsc::SyncSender<ChainCmd>,
    /// Emptied batches coming back for reuse: no fresh pages per batch.
    spare: std::sync::mpsc::Receiver<Encoded>,
    /// Ends with the last sync's result and the figures.
    thread: std::thread::JoinHandle<Result<WriterStats, LogWriterError>>,
}

/// Stage 2: owns the files; finishes each hash, links the chain, writes, rotates, fsyncs.
/// A plain thread: its file I/O blocks, and nothing else runs on it.
struct ChainWriter {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    file_number: u64,
    file_date: NaiveDate,
    file_bytes: u64,
    max_file_bytes: u64,
    buf: Vec<u8>,
    prev_hash: [u8; 64],
    stats: WriterStats,
    spare: std::sync::mpsc::SyncSender<Encoded>,
    /// Rotated files still being fsync'd off this thread: the chain does not stall on the
    /// disk at each rotation. Every `sync` waits for them first, so a line is never durable
    /// before the lines of the files before it.
    closing: Vec<Closing>,
    /// The current file's name.
    name: String,
    /// The chain's identity (its first line's hash); known once a line exists.
    chain: Option<String>,
    /// The file holding the newest line.
    head_file: String,
    /// The newest line anchored so far.
    anchored: Option<u64>,
    /// Where anchors and failures go.
    reports: Option<WriterReports>,
    /// The clock anchors are stamped with.
    clock: SharedClock,
}

/// A rotated file being fsync'd by its own short-lived thread.
struct Closing {
    path: PathBuf,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

/// Syncs a rotated file, then drops its pages from the page cache: a closed log file is
/// rarely read again, and keeping it cached would make the log grow the page cache by its
/// whole volume, on fresh pages, evicting memory the trading process uses. Its pages are
/// reused for the next file instead.
fn close_rotated(file: &File) -> std::io::Result<()> {
    file.sync_data()?;
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed) {
        // Only advice: the data is on disk either way.
        eprintln!("vigil: WARN: cannot drop a rotated log file from the page cache: {e}");
    }
    Ok(())
}

impl ChainWriter {
    fn write_out(&mut self) -> Result<(), LogWriterError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let res = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush());
        self.stats.bytes += self.buf.len() as u64;
        self.file_bytes += self.buf.len() as u64;
        self.buf.clear();
        res.map_err(|source| {
            self.stats.errors += 1;
            LogWriterError::Write {
                path: self.path.clone(),
                source,
            }
        })?;
        self.anchor(AnchorKind::Flush);
        Ok(())
    }

    /// Hands the chain's head (the newest line) to the reports, to be recorded outside the
    /// log; a flush anchor only when there is a line since the last anchor.
    fn anchor(&mut self, kind: AnchorKind) {
        let (Some(reports), Some(chain)) = (&self.reports, &self.chain) else {
            return;
        };
        let Some(seq) = self.stats.next_seq.checked_sub(1) else {
            return;
        };
        if kind == AnchorKind::Flush && self.anchored == Some(seq) {
            return;
        }
        self.anchored = Some(seq);
        reports.send(WriterReport::Anchor(Anchor {
            chain: chain.clone(),
            file: self.head_file.clone(),
            seq,
            hash: String::from_utf8_lossy(&self.prev_hash).into_owned(),
            kind,
            at: self.clock.now(),
        }));
    }

    /// Says on stderr (the log itself is what failed) and to the reports that lines may be
    /// lost.
    fn failed(&self, e: &LogWriterError) {
        eprintln!("vigil: CRITICAL: {e}");
        if let Some(reports) = &self.reports {
            reports.send(WriterReport::Failed(e.to_string()));
        }
    }

    /// Waits for the fsync of rotated files: all of them, or (`all` false) those done.
    fn reap_closing(&mut self, all: bool) -> Result<(), LogWriterError> {
        let mut first_err = None;
        let mut i = 0;
        while i < self.closing.len() {
            if !all && !self.closing[i].thread.is_finished() {
                i += 1;
                continue;
            }
            let closing = self.closing.remove(i);
            let res = match closing.thread.join() {
                Ok(res) => res,
                Err(_) => Err(std::io::Error::other("the fsync thread panicked")),
            };
            if let Err(source) = res {
                self.stats.errors += 1;
                let err = LogWriterError::Write {
                    path: closing.path,
                    source,
                };
                match first_err {
                    None => first_err = Some(err),
                    Some(_) => self.failed(&err),
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn sync(&mut self) -> Result<(), LogWriterError> {
        self.write_out()?;
        let earlier = self.reap_closing(true);
        let this = self.file.sync_data().map_err(|source| {
            self.stats.errors += 1;
            LogWriterError::Write {
                path: self.path.clone(),
                source,
            }
        });
        match (earlier, this) {
            (Err(e), Err(this)) => {
                self.failed(&e);
                Err(this)
            }
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// Opens the next file and hands the current one to a thread that fsyncs it; the chain
    /// continues across.
    fn rotate(&mut self, date: NaiveDate) -> Result<(), LogWriterError> {
        self.write_out()?;
        let number = self.file_number + 1;
        let path = self.dir.join(file_name(number, date));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| {
                self.stats.errors += 1;
                LogWriterError::Open {
                    path: path.clone(),
                    source,
                }
            })?;
        let old = std::mem::replace(&mut self.file, file);
        let old_path = std::mem::replace(&mut self.path, path);
        self.name = file_name(number, date);
        self.file_number = number;
        self.file_date = date;
        self.file_bytes = 0;
        self.stats.files += 1;
        // The closed file reaches the disk in the background; `sync` waits for it. From
        // here on the new file is in place: a failure below is the old file's, reported
        // and counted, and does not stop this batch's lines.
        let spawned = std::thread::Builder::new()
            .name("vigil-log-fsync".into())
            .spawn(move || close_rotated(&old));
        match spawned {
            Ok(thread) => self.closing.push(Closing {
                path: old_path,
                thread,
            }),
            Err(e) => {
                eprintln!("vigil: WARN: no fsync thread ({e}); syncing the rotated file here");
                // The old handle went with the closure; sync through a fresh one.
                if let Err(source) = File::open(&old_path).and_then(|f| f.sync_data()) {
                    self.stats.errors += 1;
                    let err = LogWriterError::Write {
                        path: old_path,
                        source,
                    };
                    self.failed(&err);
                }
            }
        }
        // A disk slower than the log: at most a few files in flight.
        if let Err(e) = self.reap_closing(self.closing.len() > 4) {
            self.failed(&e);
        }
        Ok(())
    }

    fn append(&mut self, mut batch: Encoded) -> Result<(), LogWriterError> {
        if batch.date != self.file_date {
            self.rotate(batch.date)?;
        }
        let mut urgent = false;
        let mut start = 0;
        for (end, level, absorbed, mut hasher) in batch.lines.drain(..) {
            if self.file_bytes + self.buf.len() as u64 >= self.max_file_bytes {
                let date = self.file_date;
                self.rotate(date)?;
            }
            if self.head_file != self.name {
                self.head_file.clone_from(&self.name);
            }
            let body = &batch.bytes[start..end];
            hasher.update(&batch.bytes[absorbed..end]);
            hasher.update(&self.prev_hash);
            hasher.update(b"\"");
            self.buf.extend_from_slice(body);
            self.buf.extend_from_slice(&self.prev_hash);
            let tag: &[u8] = if hasher.keyed() {
                b"\",\"hmac\":\""
            } else {
                b"\",\"hash\":\""
            };
            hasher.finish_hex(&mut self.prev_hash);
            self.buf.extend_from_slice(tag);
            self.buf.extend_from_slice(&self.prev_hash);
            self.buf.extend_from_slice(b"\"}\n");
            if self.chain.is_none() {
                // The chain's first line: its hash names the chain from now on.
                self.chain = Some(String::from_utf8_lossy(&self.prev_hash).into_owned());
            }
            self.stats.lines += 1;
            self.stats.next_seq += 1;
            urgent |= level >= Level::Error;
            start = end;
        }
        batch.bytes.clear();
        if batch.bytes.capacity() > BUF_FLUSH_AT {
            // A rare huge batch: not kept around.
            return self.after_batch(urgent);
        }
        match self.spare.try_send(batch) {
            // Pool full, or the encoder is gone at shutdown: the batch is simply freed.
            Ok(())
            | Err(std::sync::mpsc::TrySendError::Full(_))
            | Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {}
        }
        self.after_batch(urgent)
    }

    fn after_batch(&mut self, urgent: bool) -> Result<(), LogWriterError> {
        // ERROR and CRITICAL lines reach the disk (fsync) before the next batch: they
        // must survive a crash right after them.
        if urgent {
            self.sync()
        } else if self.buf.len() >= BUF_FLUSH_AT {
            self.write_out()
        } else {
            Ok(())
        }
    }

    fn run(
        mut self,
        rx: std::sync::mpsc::Receiver<ChainCmd>,
    ) -> Result<WriterStats, LogWriterError> {
        // Where this writer continues the chain from.
        self.anchor(AnchorKind::Start);
        for cmd in rx {
            let res = match cmd {
                ChainCmd::Lines(batch) => self.append(batch),
                ChainCmd::Drain => self.write_out(),
                ChainCmd::Sync(reply) => {
                    let res = self.sync().map(|()| self.stats);
                    if let Err(e) = &res {
                        self.failed(e);
                    }
                    if reply.send(res).is_err() {
                        // The caller gave up waiting; the data is on disk regardless.
                    }
                    Ok(())
                }
            };
            if let Err(e) = res {
                // The log itself is what failed, so the only place left to say so is stderr.
                self.failed(&e);
            }
        }
        // Every sender is gone: the session is over.
        match self.sync() {
            Ok(()) => {
                self.anchor(AnchorKind::Stop);
                Ok(self.stats)
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }
}

impl LogWriter {
    /// Opens the log folder `dir`: continues the newest file's sequence numbers and hash
    /// chain (or starts a chain at [`GENESIS_HASH`]), appending to that file when it is of
    /// today's exchange date, under the size limit and cleanly ended, else opening the next.
    ///
    /// # Errors
    /// Fails when the folder or a file cannot be created or read.
    pub fn open(
        dir: &Path,
        clock: SharedClock,
        opts: WriterOptions,
    ) -> Result<Self, LogWriterError> {
        std::fs::create_dir_all(dir).map_err(|source| LogWriterError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        let files = list_log_files(dir).map_err(|source| LogWriterError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut tail = None;
        let mut head_file = String::new();
        for f in files.iter().rev() {
            if let Some(t) = read_tail(&f.path)? {
                tail = Some(t);
                head_file = f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                break;
            }
        }
        if let Some(t) = &tail
            && t.keyed != opts.key.is_some()
        {
            return Err(LogWriterError::ChainKind {
                dir: dir.to_path_buf(),
                found: if t.keyed {
                    "keyed (HMAC)"
                } else {
                    "plain (SHA-256)"
                },
                configured: if opts.key.is_some() {
                    "is set"
                } else {
                    "is not set"
                },
            });
        }
        // The chain's identity: its first line's hash (a new chain's is known at its first
        // line).
        let chain = match &tail {
            Some(_) => crate::chain::chain_id(dir).map_err(|source| LogWriterError::Open {
                path: dir.to_path_buf(),
                source,
            })?,
            None => None,
        };
        let today = exchange_date(clock.now());
        let newest = files.last();
        let reuse = match (newest, &tail) {
            (Some(f), Some(t)) => {
                let size = std::fs::metadata(&f.path).map_or(u64::MAX, |m| m.len());
                (f.date == today && t.clean && size < opts.max_file_bytes)
                    .then(|| (f.number, f.date, f.path.clone(), size))
            }
            _ => None,
        };
        let (number, date, path, size) = match reuse {
            Some(r) => r,
            None => {
                let number = newest.map_or(1, |f| f.number + 1);
                (number, today, dir.join(file_name(number, today)), 0)
            }
        };
        let name = file_name(number, date);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LogWriterError::Open {
                path: path.clone(),
                source,
            })?;
        let mut prev_hash = [b'0'; 64];
        let mut next_seq = 0;
        if let Some(t) = tail {
            prev_hash = t.hash;
            next_seq = t.seq + 1;
        }
        let (redactor, short) = Redactor::new(opts.secrets.iter().cloned());
        if !short.is_empty() {
            // Never print the value itself.
            eprintln!(
                "vigil: WARN: {} secret(s) shorter than {} characters cannot be redacted reliably and were ignored",
                short.len(),
                Redactor::MIN_LEN
            );
        }
        // Room for every batch in flight: a batch freed here would be allocated afresh
        // (fresh pages) when the encoder next runs ahead.
        let (spare_tx, spare) = std::sync::mpsc::sync_channel(CHAIN_DEPTH + 8);
        let chain = ChainWriter {
            dir: dir.to_path_buf(),
            path,
            file,
            file_number: number,
            file_date: date,
            file_bytes: size,
            max_file_bytes: opts.max_file_bytes,
            buf: Vec::with_capacity(BUF_FLUSH_AT + 4096),
            prev_hash,
            stats: WriterStats {
                next_seq,
                files: 1,
                ..WriterStats::default()
            },
            spare: spare_tx,
            closing: Vec::new(),
            name,
            chain,
            head_file,
            anchored: None,
            reports: opts.reports.clone(),
            clock: clock.clone(),
        };
        // Bounded: a slow disk holds the encoder back, and the backlog stays in the
        // encoder's (unbounded) mailbox, never in producers.
        let (tx, rx) = std::sync::mpsc::sync_channel(CHAIN_DEPTH);
        let reports = opts.reports.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-log-chain".into())
            .spawn(move || {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chain.run(rx))) {
                    Ok(res) => res,
                    Err(_) => {
                        let e = LogWriterError::Stopped;
                        eprintln!(
                            "vigil: CRITICAL: the log chain thread panicked; lines not yet \
                             written are lost"
                        );
                        if let Some(r) = &reports {
                            r.send(WriterReport::Failed(
                                "the log chain thread panicked; lines not yet written are lost"
                                    .into(),
                            ));
                        }
                        Err(e)
                    }
                }
            })
            .map_err(|source| LogWriterError::Open {
                path: dir.to_path_buf(),
                source,
            })?;
        let hasher = LineHasher::new(opts.key.as_ref());
        Ok(Self {
            dir: dir.to_path_buf(),
            next_seq,
            clock,
            opts,
            redactor: Arc::new(redactor),
            stage2: Some(ChainHandle { tx, spare, thread }),
            hasher,
            closed: false,
            failed: false,
        })
    }

    /// Starts the writer on an arbiter and returns its handle.
    pub fn start_on(self, arbiter: &ArbiterHandle) -> LogWriterHandle {
        let dir = self.dir.clone();
        let redactor = self.redactor.clone();
        let addr = LogWriter::start_in_arbiter(arbiter, |_| self);
        LogWriterHandle {
            addr,
            dir,
            redactor,
        }
    }

    fn send_chain(&mut self, cmd: ChainCmd) -> Result<(), LogWriterError> {
        let stage2 = self.stage2.as_ref().ok_or(LogWriterError::Stopped)?;
        if stage2.tx.send(cmd).is_err() {
            // The chain thread is gone (it panicked, it said so): nothing is written any
            // more.
            self.stage2 = None;
            self.fail("the log chain thread is gone; lines are no longer written".into());
            return Err(LogWriterError::Stopped);
        }
        Ok(())
    }

    /// Reports the writer's failure, once (stderr says the rest, line by line), to an owner
    /// that listens for reports: an owner that does not (a test, a tool) stops the writer by
    /// dropping it.
    fn fail(&mut self, error: String) {
        if self.failed || self.closed || self.opts.reports.is_none() {
            return;
        }
        self.failed = true;
        eprintln!("vigil: CRITICAL: {error}");
        if let Some(r) = &self.opts.reports {
            r.send(WriterReport::Failed(error));
        }
    }

    fn schedule_flush(&self, ctx: &mut Context<Self>) {
        // Saturates: an interval too long to represent never flushes by time (lines still
        // reach the disk when the buffer fills, at ERROR lines and at the stop).
        let deadline =
            vigil_core::later(self.clock.now(), vigil_core::span(self.opts.flush_interval));
        let sleep = self.clock.sleep_until(deadline);
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(sleep).map(|(), act, ctx| {
                if act.stage2.is_some() && act.send_chain(ChainCmd::Drain).is_ok() {
                    act.schedule_flush(ctx);
                }
            }),
        );
    }

    /// Stops the chain thread (it writes, fsyncs and records the stop anchor) and waits
    /// for it.
    fn finish(&mut self) -> Result<WriterStats, LogWriterError> {
        let stage2 = self.stage2.take().ok_or(LogWriterError::Stopped)?;
        // Closing the channel makes the chain thread drain, fsync and exit.
        drop(stage2.tx);
        match stage2.thread.join() {
            Ok(res) => res,
            // Unreachable in practice: the thread catches its own panics and says so.
            Err(_) => Err(LogWriterError::Stopped),
        }
    }
}

impl Actor for LogWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.schedule_flush(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if self.stage2.is_some() {
            match self.finish() {
                Ok(_) if self.closed => {}
                Ok(_) => self.fail("the log writer stopped before the session closed it".into()),
                Err(e) => self.fail(format!("the log writer stopped: {e}")),
            }
        }
    }
}

impl Drop for LogWriter {
    /// An actor that panicked or whose thread went away is dropped without `stopped`: the
    /// owner must hear that nothing is written any more.
    fn drop(&mut self) {
        if !self.closed {
            self.fail("the log writer stopped; from now on lines go to standard error only".into());
        }
    }
}

impl Handler<LogBatch> for LogWriter {
    type Result = ();

    fn handle(&mut self, msg: LogBatch, _ctx: &mut Self::Context) {
        let (mut bytes, mut lines) = match self.stage2.as_ref().map(|s| s.spare.try_recv()) {
            Some(Ok(spare)) => (spare.bytes, spare.lines),
            _ => (
                Vec::with_capacity(msg.0.len() * LINE_BYTES),
                Vec::with_capacity(msg.0.len()),
            ),
        };
        for event in &msg.0 {
            if let Some(tap) = &self.opts.tap {
                tap.offer(event, &self.redactor);
            }
            let start = bytes.len();
            encode_body(event, self.next_seq, &self.redactor, &mut bytes);
            bytes.extend_from_slice(b",\"prev_hash\":\"");
            // The first half of the body's whole 64-byte blocks; the chain thread absorbs
            // the rest, then the previous hash.
            let absorbed = start + (bytes.len() - start) / 128 * 64;
            let mut hasher = self.hasher.clone();
            hasher.update(&bytes[start..absorbed]);
            lines.push((bytes.len(), event.level, absorbed, hasher));
            self.next_seq += 1;
        }
        let batch = Encoded {
            bytes,
            lines,
            date: exchange_date(self.clock.now()),
        };
        if self.stage2.is_none() || self.send_chain(ChainCmd::Lines(batch)).is_err() {
            // Not written: they go to standard error rather than vanish.
            crate::sink::spill(&msg.0, &self.redactor);
        }
    }
}

impl Handler<Flush> for LogWriter {
    type Result = Result<WriterStats, LogWriterError>;

    fn handle(&mut self, _msg: Flush, _ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send_chain(ChainCmd::Sync(tx))?;
        // Blocks this arbiter until the disk has it: the writer's thread does nothing else,
        // and `flush` is for shutdown and tests.
        rx.recv().map_err(|_| LogWriterError::Stopped)?
    }
}

impl Handler<Close> for LogWriter {
    type Result = Result<WriterStats, LogWriterError>;

    fn handle(&mut self, _msg: Close, _ctx: &mut Self::Context) -> Self::Result {
        // Closed on purpose, whatever the outcome: a failure below is returned (and was
        // reported by the chain thread), not reported again as a writer that died.
        let res = self.finish();
        self.closed = true;
        // Nothing more to report: the owner's channels close, its listeners end.
        self.opts.reports = None;
        res
    }
}

impl LogWriterHandle {
    /// Returns a sink producers send to.
    pub fn sink(&self) -> LogSink {
        LogSink::writer(self.addr.clone().recipient(), self.redactor.clone())
    }

    /// Returns the log folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns `text` with the writer's secrets redacted, for output outside the log
    /// (error messages, summaries).
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    /// Writes everything received so far to disk (with fsync) and returns the figures.
    /// Events sent before this call are included: the mailbox is first-in, first-out.
    ///
    /// # Errors
    /// Fails when the disk write fails or the writer is gone.
    pub async fn flush(&self) -> Result<WriterStats, LogWriterError> {
        self.addr
            .send(Flush)
            .await
            .map_err(|_| LogWriterError::Stopped)?
    }

    /// Writes everything received so far to disk (with fsync), records the stop anchor
    /// (the chain's last line: nothing may follow it until the next start) and stops
    /// writing; events sent afterwards go to standard error. Returns the figures.
    ///
    /// # Errors
    /// Fails when the disk write fails or the writer is gone.
    pub async fn close(&self) -> Result<WriterStats, LogWriterError> {
        self.addr
            .send(Close)
            .await
            .map_err(|_| LogWriterError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use vigil_core::{SimClock, SystemClock, Timestamp};

    fn start(dir: &Path, clock: SharedClock, opts: WriterOptions) -> LogWriterHandle {
        LogWriter::open(dir, clock, opts)
            .expect("open")
            .start_on(&Arbiter::current())
    }

    #[actix_rt::test]
    async fn writes_every_event_in_order_and_continues_seq_and_chain_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ts: Timestamp = "2024-01-15T09:30:00Z".parse().expect("ts");
        for round in 0..2u64 {
            let handle = start(dir.path(), Arc::new(SystemClock), WriterOptions::default());
            let sink = handle.sink();
            for i in 0..10u64 {
                sink.send(vec![
                    LogEvent::new(ts, "test", Event::AgentStarted).with("i", i + round * 10),
                ]);
            }
            let stats = handle.flush().await.expect("flush");
            assert_eq!(stats.next_seq, (round + 1) * 10);
        }
        let report = crate::verify::verify_dir(dir.path()).expect("verify");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.lines, 20);
        let files = list_log_files(dir.path()).expect("list");
        assert_eq!(files.len(), 1, "same day, same file");
        let text = std::fs::read_to_string(&files[0].path).expect("read");
        for (i, l) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert_eq!(v["data"]["i"], v["seq"]);
            assert_eq!(v["seq"], i as u64);
        }
    }

    #[actix_rt::test]
    async fn the_tap_gets_the_chosen_events_redacted_and_no_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = parking_lot::Mutex::new(tx);
        let tap = LogTap::new(&[Event::AgentFailed, Event::LogSilent], move |e| {
            tx.lock().send(e).expect("test receiver alive");
        });
        let handle = start(
            dir.path(),
            Arc::new(SystemClock),
            WriterOptions {
                secrets: vec!["hunter2-secret-token".into()],
                tap: Some(tap),
                ..WriterOptions::default()
            },
        );
        let ts: Timestamp = "2024-01-15T09:30:00Z".parse().expect("ts");
        handle.sink().send(vec![
            LogEvent::new(ts, "test", Event::AgentStarted),
            LogEvent::new(ts, "test", Event::AgentFailed).with(
                "error",
                "login with hunter2-secret-token refused".to_string(),
            ),
            LogEvent::new(ts, "test", Event::HealthSnapshot),
            LogEvent::new(ts, "test", Event::LogSilent).with("silent_s", 301u64),
        ]);
        handle.flush().await.expect("flush");
        let got: Vec<LogEvent> = rx.try_iter().collect();
        assert_eq!(
            got.iter().map(|e| e.event).collect::<Vec<_>>(),
            vec![Event::AgentFailed, Event::LogSilent]
        );
        let error = got[0].get("error").expect("error field");
        assert_eq!(
            *error,
            Value::from("login with [REDACTED] refused".to_string())
        );
        assert_eq!(got[1].get("silent_s"), Some(&Value::U64(301)));
    }

    #[actix_rt::test]
    async fn rotates_by_size_and_by_exchange_date_and_the_chain_spans_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 03:00 UTC on Jan 16 is still Jan 15 in New York.
        let clock = SimClock::starting_at("2024-01-16T03:00:00Z".parse().expect("ts"));
        let handle = start(
            dir.path(),
            Arc::new(clock.clone()),
            WriterOptions {
                max_file_bytes: 4_000,
                ..WriterOptions::default()
            },
        );
        let sink = handle.sink();
        let ts: Timestamp = "2024-01-15T15:00:00Z".parse().expect("ts");
        for i in 0..40u64 {
            sink.send(vec![
                LogEvent::new(ts, "test", Event::AgentStarted).with("i", i),
            ]);
        }
        handle.flush().await.expect("flush");
        clock.advance_by(chrono::Duration::hours(3)); // 01:00 in New York, Jan 16
        sink.send(vec![LogEvent::new(ts, "test", Event::AgentStopped)]);
        let stats = handle.flush().await.expect("flush");
        let files = list_log_files(dir.path()).expect("list");
        assert!(files.len() >= 3, "size rotation happened: {files:?}");
        assert_eq!(stats.files as usize, files.len());
        assert_eq!(files[0].date.to_string(), "2024-01-15");
        assert_eq!(files.last().expect("file").date.to_string(), "2024-01-16");
        let report = crate::verify::verify_dir(dir.path()).expect("verify");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.lines, 41);
        assert_eq!(report.files, files.len());
    }
}
