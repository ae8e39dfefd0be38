//! Nothing lost: a burst of a million events through the real writer, every `seq` on disk.

use std::sync::Arc;

use actix::Arbiter;
use vigil_core::{Level, SystemClock, Timestamp};
use vigil_log::{Event, LogBuffer, LogEvent, LogWriter, WriterOptions, verify_dir};

#[test]
fn a_burst_of_a_million_events_arrives_complete_and_in_order() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let system = actix::System::new();
    let stats = system.block_on(async {
        let handle = LogWriter::open(dir.path(), Arc::new(SystemClock), WriterOptions::default())
            .expect("open")
            .start_on(&Arbiter::new().handle());
        let mut out = LogBuffer::new(handle.sink(), "burst", Level::Info);
        let ts: Timestamp = "2024-01-15T14:30:00Z".parse().expect("ts");
        // The producer never waits for the writer: the whole burst is queued at once.
        for i in 0..N {
            out.emit(LogEvent::new(ts, "burst", Event::FillReceived).with("i", i));
        }
        out.flush();
        handle.flush().await.expect("flush")
    });
    assert_eq!(stats.lines, N);
    assert_eq!(stats.next_seq, N);
    assert_eq!(stats.errors, 0);
    let report = verify_dir(dir.path()).expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems.first());
    assert_eq!(report.lines, N, "every seq arrived");
}
