//! Readers of the in-memory log and of test timestamps.

use vigil_core::Timestamp;
use vigil_log::{Event, LogEvent, MemoryLog, Value};

/// Parses an RFC 3339 timestamp written in a test, such as `"2024-01-02T09:30:00Z"`.
///
/// # Panics
///
/// When `s` is not a timestamp.
pub fn timestamp(s: &str) -> Timestamp {
    s.parse().expect("test timestamp in RFC 3339")
}

/// Returns the text field `key` of `ev`, whether owned or shared.
///
/// # Panics
///
/// When the field is missing or is not text.
pub fn text(ev: &LogEvent, key: &str) -> String {
    match ev.get(key) {
        Some(Value::Str(s)) => s.to_string(),
        Some(Value::Shared(s)) => s.to_string(),
        other => panic!("field {key} of {} is not text: {other:?}", ev.event.name()),
    }
}

/// Returns the events of one kind that reached `log`, in the order they were logged.
pub fn logged(log: &MemoryLog, event: Event) -> Vec<LogEvent> {
    log.events()
        .into_iter()
        .filter(|e| e.event == event)
        .collect()
}
