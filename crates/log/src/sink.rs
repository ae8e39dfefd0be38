//! The producer side: an agent's outbox and the handle to the writer.

use std::sync::Arc;

use actix::Recipient;
use parking_lot::Mutex;
use vigil_core::Level;

use crate::encode::encode_body;
use crate::event::LogEvent;
use crate::redact::Redactor;
use crate::writer::LogBatch;

/// Where log events go: the writer actor, or memory (for tests of a single agent).
#[derive(Clone)]
pub struct LogSink {
    inner: SinkInner,
}

#[derive(Clone)]
enum SinkInner {
    Writer(Recipient<LogBatch>, Arc<Redactor>),
    Memory(MemoryLog),
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            SinkInner::Writer(..) => f.write_str("LogSink(writer)"),
            SinkInner::Memory(_) => f.write_str("LogSink(memory)"),
        }
    }
}

/// Events kept in memory, for tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog(Arc<Mutex<Vec<LogEvent>>>);

impl MemoryLog {
    /// Returns a copy of every event received so far.
    pub fn events(&self) -> Vec<LogEvent> {
        self.0.lock().clone()
    }

    /// Returns the names of the events received so far.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.lock().iter().map(|e| e.event.name()).collect()
    }
}

impl LogSink {
    pub(crate) fn writer(recipient: Recipient<LogBatch>, redactor: Arc<Redactor>) -> Self {
        Self {
            inner: SinkInner::Writer(recipient, redactor),
        }
    }

    /// Creates a sink that keeps events in memory.
    pub fn memory() -> (Self, MemoryLog) {
        let mem = MemoryLog::default();
        (
            Self {
                inner: SinkInner::Memory(mem.clone()),
            },
            mem,
        )
    }

    /// Hands a batch to the writer.
    ///
    /// The writer's mailbox is unbounded on purpose: a trading decision must never wait
    /// for the disk, and the writer never drops an event. If the writer is gone (it only
    /// stops after every agent), the lines go to standard error instead of vanishing.
    pub fn send(&self, batch: Vec<LogEvent>) {
        if batch.is_empty() {
            return;
        }
        match &self.inner {
            SinkInner::Memory(m) => m.0.lock().extend(batch),
            SinkInner::Writer(r, redactor) => {
                if r.connected() {
                    r.do_send(LogBatch(batch));
                } else {
                    spill(&batch, redactor);
                }
            }
        }
    }
}

/// Writes events the log cannot take to standard error (redacted, without the chain),
/// rather than let them vanish.
pub(crate) fn spill(batch: &[LogEvent], redactor: &Redactor) {
    let mut out = Vec::new();
    for e in batch {
        encode_body(e, 0, redactor, &mut out);
        out.extend_from_slice(b"}\n");
    }
    eprint!(
        "vigil: log writer stopped; event(s) follow on stderr\n{}",
        String::from_utf8_lossy(&out)
    );
}

/// An agent's outbox: events are batched and handed over at [`LogBuffer::flush`] (agents
/// flush at the end of each message they handle), at once for ERROR and above, or when
/// the buffer fills.
#[derive(Debug)]
pub struct LogBuffer {
    sink: LogSink,
    service: &'static str,
    min_level: Level,
    buf: Vec<LogEvent>,
}

const FLUSH_AT: usize = 256;

impl LogBuffer {
    /// Creates the outbox of `service`, dropping events below `min_level` at the source.
    pub fn new(sink: LogSink, service: &'static str, min_level: Level) -> Self {
        Self {
            sink,
            service,
            min_level,
            buf: Vec::new(),
        }
    }

    /// Returns the service name stamped on this outbox's events.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Tells whether events at `level` are written (check before building costly ones).
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.min_level
    }

    /// Queues an event; events below the minimum level are dropped here by configuration.
    pub fn emit(&mut self, event: LogEvent) {
        if !self.enabled(event.level) {
            return;
        }
        let urgent = event.level >= Level::Error;
        self.buf.push(event);
        if urgent || self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Hands every queued event to the writer.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            // No capacity up front: most batches hold a few events, and a large empty buffer
            // per flush costs fresh pages on this thread when the writer frees it on its own.
            self.sink.send(std::mem::take(&mut self.buf));
        }
    }
}

impl Drop for LogBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}
