//! A session never trades with a dead log writer: when the writer cannot write any more,
//! the breaker trips (actor `log_writer`), the pipeline drains and stops, and the session
//! ends failed, saying why.

use std::sync::Arc;

use vigil_core::{SimClock, Timestamp, TradingState};
use vigil_session::{SessionOptions, run_with};
use vigil_tests::{config_for, repo_data};

#[test]
fn a_log_writer_that_fails_mid_session_halts_trading_and_ends_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let mut cfg = config_for(&repo_data("EURUSD_1h.csv"), "EURUSD", &logs);
    cfg.store.path = dir.path().join("state.db");
    // One hourly bar per second of the simulated wall clock.
    cfg.data.speed = vigil_config::Speed::Factor(3600.0);
    // The dead-man's switch would trip the breaker too once the log stays silent: this test
    // is about the writer's own report, so the switch waits longer than the test runs.
    cfg.monitor.dead_man.silence_trading_s = 86_400;
    cfg.monitor.dead_man.silence_closed_s = 86_400;
    // 23:50 in New York: the log rotates to the next day's file ten minutes in.
    let wall = SimClock::starting_at("2030-01-02T04:50:00Z".parse::<Timestamp>().expect("ts"));
    let opts = SessionOptions {
        supervision_clock: Arc::new(wall.clone()),
        ..SessionOptions::new(cfg.clone())
    };
    let next_file = logs.join("vigil-000002-20300102.jsonl");
    let outcome = run_with(opts, move |_ctl| async move {
        vigil_tests::step_wall(&wall, 300).await;
        // The disk the next file goes to is full.
        std::os::unix::fs::symlink("/dev/full", &next_file).expect("symlink");
        vigil_tests::step_wall(&wall, 2_000).await;
        // Whatever is left, if the session did not stop.
        wall.advance_by(chrono::Duration::days(3650));
    })
    .expect("the session runs");

    let s = &outcome.summary;
    assert!(
        s.error
            .as_deref()
            .is_some_and(|e| e.contains("the log writer failed")
                && e.contains("vigil-000002-20300102.jsonl")),
        "{s:?}"
    );
    assert_eq!(s.stop_reason, "failed", "{s:?}");
    assert!(
        s.bars > 300 && s.bars < 5000,
        "it traded until the failure, then stopped: {s:?}"
    );
    // The halt is saved: a restart does not trade either until a person resets it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let saved = rt.block_on(async {
        let store = vigil_store::open_store(&cfg.store).await.expect("store");
        let saved = store.trading_state().await.expect("read");
        store.close().await;
        saved
    });
    let saved = saved.expect("a saved trading state");
    assert_eq!(saved.state, TradingState::Halted, "{saved:?}");
    assert_eq!(saved.actor, "log_writer", "{saved:?}");
}
