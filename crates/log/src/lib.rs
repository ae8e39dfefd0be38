//! Vigil's trading log: typed events in, JSON lines out, through one writer actor.
//!
//! - [`Event`]: the one catalogue of event names, each with its default level.
//! - [`LogEvent`]: timestamp, level, service, trace id, event, `data` fields and the
//!   decision `context` — typed values, so producers format nothing.
//! - [`LogBuffer`]: an agent's outbox; it batches events and hands them to the writer.
//! - [`LogWriter`]: the actor that numbers, redacts, hash-chains and writes lines to
//!   rotating files (`logs/vigil-000001-20240115.jsonl`); the chain continues across files
//!   and restarts.
//! - [`verify_dir`]: walks every file and reports sequence gaps, edited, deleted or torn
//!   lines, missing or reordered files — each with file and line.
//! - [`LogQuery`]: filters for `vigil logs`.
//! - [`VigilTracingLayer`]: library code using `tracing` macros reaches the same writer.
//!
//! A line looks like the seed format:
//! `{"timestamp":"2024-01-15T09:30:00.123Z","level":"INFO","service":"execution_agent",
//! "trace_id":"tx_…","event":"order_submitted","data":{…},"context":{…},"seq":1042,
//! "prev_hash":"…","hash":"…"}` where `hash` is SHA-256 over the line's bytes before
//! `,"hash"`.

mod chain;
mod encode;
mod event;
mod files;
mod query;
mod redact;
mod sink;
mod tracing_layer;
mod verify;
mod writer;

pub use chain::{Anchor, AnchorKind, ChainKey, ShortKey, WriterReport, WriterReports, chain_id};
pub use encode::encode_line;
pub use event::{Event, LogContext, LogEvent, Value};
pub use files::{LogFile, list_log_files};
pub use query::{
    DurationError, LogQuery, QueryError, parse_duration, parse_since, read_lines, read_lines_while,
    read_raw_lines,
};
pub use redact::{REDACTED, Redactor};
pub use sink::{LogBuffer, LogSink, MemoryLog};
pub use tracing_layer::{BridgeError, VigilTracingLayer, WIRE_TARGETS};
pub use verify::{
    AnchorSet, LineLink, Problem, ProblemKind, VerifyOptions, VerifyReport, line_link, verify_dir,
    verify_dir_with,
};
pub use writer::{
    GENESIS_HASH, LogTap, LogWriter, LogWriterError, LogWriterHandle, WriterOptions, WriterStats,
};
