//! What libraries log before a session's log starts is held for it: the process-wide bridge
//! (its own test binary, since the bridge is global to the process).

use std::sync::Arc;

use vigil_core::{Level, SystemClock};
use vigil_log::{Event, LogSink, Value, VigilTracingLayer};

fn messages(events: &[vigil_log::LogEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter(|e| e.event == Event::LibraryLog)
        .map(|e| {
            let text = match e.get("message") {
                Some(Value::Str(s)) => s.to_string(),
                other => format!("{other:?}"),
            };
            (text, e.get("held").is_some())
        })
        .collect()
}

#[test]
fn library_events_before_the_log_starts_are_held_for_it_and_only_then() {
    // Before anything holds: nowhere to go, and not kept.
    tracing::info!(target: "my_lib", "before any session");

    VigilTracingLayer::hold_until_installed();
    tracing::info!(target: "vigil_fix", next_sender = 7, "FIX session logged on");
    tracing::debug!(target: "my_lib", "below the session's level");
    tracing::debug!(target: "ureq", "a request's bytes");
    tracing::trace!(target: "my_lib", "never");

    let (sink, mem) = LogSink::memory();
    VigilTracingLayer::new(sink, Arc::new(SystemClock), Level::Info)
        .install_global()
        .expect("the bridge installs");
    tracing::info!(target: "my_lib", "after the log started");
    let got = messages(&mem.events());
    assert_eq!(
        got,
        [
            ("FIX session logged on".to_string(), true),
            ("after the log started".to_string(), false),
        ]
    );
    let held = &mem.events()[0];
    assert_eq!(
        held.get("fields"),
        Some(&Value::from("next_sender=7".to_string()))
    );

    // Between two sessions nothing holds: the next log does not get the gap's events.
    VigilTracingLayer::uninstall_global();
    tracing::info!(target: "my_lib", "between sessions");
    let (sink, next) = LogSink::memory();
    VigilTracingLayer::new(sink, Arc::new(SystemClock), Level::Info)
        .install_global()
        .expect("the bridge switches");
    assert!(messages(&next.events()).is_empty(), "{:?}", next.events());

    // A start that logs more than is kept: the first 256, and a line counting the rest.
    VigilTracingLayer::uninstall_global();
    VigilTracingLayer::hold_until_installed();
    for i in 0..300 {
        tracing::info!(target: "my_lib", "event {i}");
    }
    let (sink, many) = LogSink::memory();
    VigilTracingLayer::new(sink, Arc::new(SystemClock), Level::Info)
        .install_global()
        .expect("the bridge switches");
    let got = messages(&many.events());
    assert_eq!(got.len(), 257, "{got:?}");
    assert_eq!(got[255].0, "event 255");
    assert!(
        got[256].0.starts_with("44 library events"),
        "{:?}",
        got[256]
    );
}
