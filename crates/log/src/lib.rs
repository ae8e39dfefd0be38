//! Vigil's trading log: typed events in, JSON lines out, through one writer actor.
//!
//! - [`Event`]: the one catalogue of event names, each with its default level.
//! - [`LogEvent`]: timestamp, level, service, trace id, event, `data` fields and the
//!   decision `context` — typed values, so producers format nothing.
//! - [`LogBuffer`]: an agent's outbox; it batches events and hands them to the writer.
//! - [`LogWriter`]: the actor that numbers, encodes and writes lines (`logs/vigil.jsonl`).
//!
//! A line looks like the seed format:
//! `{"timestamp":"2024-01-15T09:30:00.123Z","level":"INFO","service":"execution_agent",
//! "trace_id":"tx_…","event":"order_submitted","data":{…},"context":{…},"seq":1042}`

mod encode;
mod event;
mod sink;
mod writer;

pub use encode::encode_line;
pub use event::{Event, LogContext, LogEvent, Value};
pub use sink::{LogBuffer, LogSink, MemoryLog};
pub use writer::{LogWriter, LogWriterError, LogWriterHandle, WriterStats};
