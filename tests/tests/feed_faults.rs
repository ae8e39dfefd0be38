//! Each fault the feed injects, and how vigil handles it (issue 9): a real session in
//! process (`vigil_session::Session`) reads a real `vigil_feed::FeedServer` on 127.0.0.1
//! (manual mode, stepped by hand) and alerts a real webhook on 127.0.0.1. The supervision
//! clock is a `SimClock` inside NYSE hours (Tuesday 2024-11-26, from 10:00 ET), moved by the
//! test ([`walk`]); the market clock follows the minute bars (from 09:30 ET).
//!
//! No test sleeps for behaviour: the feed is stepped, the clock walked, and the log polled
//! as it is written, every wait bounded in real time. The helpers are `vigil_tests::sim`.
//!
//! - stall: no bar goes out; after 60 s of simulated time `data_stale` fires (CRITICAL),
//!   is paged, and trips the breaker; after `clear` the bars flow and the rule recovers.
//! - disconnect (abrupt): a data outage, the breaker tripped by `data_outage`, a reconnect
//!   on the simulated clock after `reconnect_initial_ms`, then verification and reset.
//! - slow: the bars still come and are traded; nothing trips.
//! - garbage: each message a `data_parse_failed` ERROR line with its payload; three in a
//!   row fail the lone source (a data outage); after `clear`, recovery as above.
//! - spike: the symbol is quarantined (`anomaly_rule`), paged, nothing is approved in it,
//!   and calm bars release it.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::Value;
use vigil_config::VigilConfig;
use vigil_core::{Clock as _, SimClock, Timestamp, TradingState};
use vigil_testkit::{HttpReceiver, Received};
use vigil_tests::sim::{
    Feed, LogTail, MAX_REJECTED, Running, SYMBOL, config, et, minutes, notices,
    risk_approved_nothing_during_the_outage, subscribed, ts, until, walk, walk_until, write_bars,
};

/// Tuesday 2024-11-26, a regular session.
fn tuesday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 26).expect("date")
}

/// Bars traded on before each fault.
const WARM_UP: usize = 30;

/// One test's world: the feed, the webhook, the session's config and its clock.
struct Rig {
    _dir: tempfile::TempDir,
    feed: Feed,
    hook: HttpReceiver,
    cfg: VigilConfig,
    wall: SimClock,
    logs: PathBuf,
    /// The feed's bars: minute bars from Tuesday 09:30 ET.
    times: Vec<Timestamp>,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let times = minutes(et(tuesday(), 9, 30), 180);
        let csv = dir.path().join("feed.csv");
        write_bars(&csv, &times);
        let feed = Feed::start(csv);
        let hook = HttpReceiver::start();
        let mut cfg = config(dir.path(), &feed.stream_url, &[], &hook.url("/hook"));
        // Trading is open all along (no automated day), and the Monitor looks every 10 s of
        // supervision time: the test walks in steps of 10 s or less.
        cfg.calendar.automation = false;
        cfg.monitor.heartbeat_interval_ms = 10_000;
        cfg.monitor.heartbeat_timeout_ms = 60 * 60_000;
        cfg.monitor.probe_interval_ms = 10_000;
        cfg.monitor.snapshot_interval_s = 10;
        let logs = dir.path().join("logs");
        Self {
            _dir: dir,
            feed,
            hook,
            cfg,
            // After the last bar: a live feed's bars are never ahead of the clock (one more
            // than `[data] future_tolerance_s` ahead is rejected).
            wall: SimClock::starting_at(et(tuesday(), 12, 31)),
            logs,
            times,
        }
    }
}

/// Steps the feed `n` bars (all go out) and walks the clock until the session has read
/// them: a line (the Monitor's snapshot) is stamped at the last one's market time. (Not
/// "at or after": the lines before the first bar carry the wall time, here after the first
/// bars' times.) Returns the bars' times.
async fn trade(
    run: &Running,
    rig: &Rig,
    tail: &mut LogTail,
    sent_so_far: &mut usize,
    n: usize,
) -> Vec<Timestamp> {
    assert_eq!(rig.feed.step(n), n as u64, "{n} bars went out");
    let bars = rig.times[*sent_so_far..*sent_so_far + n].to_vec();
    *sent_so_far += n;
    let last = *bars.last().expect("bars");
    let by = rig.wall.now() + chrono::Duration::seconds(120);
    let mut found = false;
    walk(run, by, chrono::Duration::milliseconds(250), || {
        found = tail.find(|v| ts(v) == last).is_some();
        found
    })
    .await;
    assert!(found, "the bars up to {last} were read by {by}");
    bars
}

/// The first line after index `after` that `pred` accepts, walking the clock in steps of
/// 250 ms until `by`.
async fn walk_until_after(
    run: &Running,
    tail: &mut LogTail,
    after: usize,
    by: Timestamp,
    pred: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let mut found = None;
    walk(run, by, chrono::Duration::milliseconds(250), || {
        found = tail
            .poll()
            .iter()
            .enumerate()
            .skip(after + 1)
            .find(|(_, v)| pred(v))
            .map(|(i, v)| (i, v.clone()));
        found.is_some()
    })
    .await;
    found.unwrap_or_else(|| panic!("no such line after #{after} by {by}"))
}

/// Waits for a notice of `rule` with `severity`, firing, at the webhook; returns its body.
async fn paged(hook: &HttpReceiver, got: &mut Vec<Received>, rule: &str, severity: &str) -> Value {
    until(&format!("the {rule} notice"), || {
        got.extend(hook.taken());
        notices(got)
            .into_iter()
            .find(|(r, s, status, _)| r == rule && s == severity && status == "firing")
            .map(|(_, _, _, body)| body)
    })
    .await
}

/// Drops the session's feed connection without a close frame: a data outage, the breaker
/// tripped by `data_outage`. Returns the outage's line and its index.
async fn cut_the_feed(rig: &Rig, tail: &mut LogTail) -> (usize, Value) {
    let dropped = rig.feed.call("POST", "/_faults/disconnect?abrupt=true");
    assert_eq!(dropped["disconnected"], 1, "{dropped}");
    let outage = until("data_outage", || tail.find(|v| v["event"] == "data_outage")).await;
    let (_, tripped) = until("breaker_tripped", || {
        tail.find(|v| v["event"] == "breaker_tripped")
    })
    .await;
    assert_eq!(tripped["data"]["actor"], "data_outage", "{tripped}");
    outage
}

/// After a data outage (the log line at `outage_at`): vigil reconnects on the simulated
/// clock after `reconnect_initial_ms` (not before), the next bars come, the books are
/// verified, and the breaker is reset by `data_verify`.
async fn recovers(
    run: &Running,
    rig: &Rig,
    tail: &mut LogTail,
    outage_at: usize,
    sent_so_far: &mut usize,
) {
    let outage = tail.poll()[outage_at].clone();
    assert_eq!(outage["data"]["retry_in_ms"], 1000, "{outage}");
    let from = rig.wall.now();
    let (_, connected) = walk_until_after(
        run,
        tail,
        outage_at,
        from + chrono::Duration::seconds(30),
        |v| v["event"] == "data_source_connected",
    )
    .await;
    assert!(
        rig.wall.now() >= from + chrono::Duration::seconds(1),
        "reconnected after the backoff on the simulated clock, at {}: {connected}",
        rig.wall.now()
    );
    subscribed(&rig.feed).await;
    trade(run, rig, tail, sent_so_far, 20).await;
    let by = rig.wall.now() + chrono::Duration::seconds(60);
    let (_, recovered) = walk_until(run, tail, by, |v| v["event"] == "data_recovered").await;
    assert_eq!(recovered["level"], "WARN", "{recovered}");
    let (_, verified) = walk_until(run, tail, by, |v| v["event"] == "data_verified").await;
    assert_eq!(verified["data"]["passed"], true, "{verified}");
    assert_eq!(verified["level"], "INFO", "{verified}");
    let (_, reset) = walk_until(run, tail, by, |v| v["event"] == "breaker_reset").await;
    assert_eq!(reset["data"]["actor"], "data_verify", "{reset}");
}

/// A stall during trading hours: the feed stays connected and sends nothing. After more
/// than 60 s of simulated time the `data_stale` rule fires (CRITICAL), its Critical notice
/// reaches the webhook, and the breaker trips. After `clear` the bars flow again and the
/// rule recovers.
#[test]
fn a_stall_in_trading_hours_is_data_stale_after_60_s_paged_and_trips_the_breaker() {
    let rig = Rig::new();
    let outcome = actix_rt::System::new().block_on(async {
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        let mut tail = LogTail::new(&rig.logs);
        let mut sent = 0;
        subscribed(&rig.feed).await;
        // The bars are read as they come, at this time or later.
        let last_bar_at = rig.wall.now();
        trade(&run, &rig, &mut tail, &mut sent, WARM_UP).await;

        rig.feed.fault("/_faults/stall");
        let held = rig.feed.call("POST", "/_feed/step?n=5");
        assert_eq!(held["sent"], 0, "{held}");
        assert_eq!(held["held"], "stalled", "{held}");
        let (_, stale) = walk_until(
            &run,
            &mut tail,
            last_bar_at + chrono::Duration::seconds(120),
            |v| v["event"] == "threshold_breached" && v["data"]["rule"] == "data_stale",
        )
        .await;
        assert_eq!(stale["level"], "CRITICAL", "{stale}");
        assert!(
            stale["data"]["value"].as_f64().is_some_and(|s| s > 60.0),
            "{stale}"
        );
        assert!(
            rig.wall.now() - last_bar_at > chrono::Duration::seconds(60),
            "not before 60 s of simulated time after the last bar: {}",
            rig.wall.now()
        );
        let (_, tripped) = until("breaker_tripped", || {
            tail.find(|v| v["event"] == "breaker_tripped")
        })
        .await;
        assert_eq!(tripped["level"], "CRITICAL", "{tripped}");
        assert_eq!(tripped["data"]["actor"], "alert:data_stale", "{tripped}");
        let mut got = Vec::new();
        let body = paged(&rig.hook, &mut got, "data_stale", "critical").await;
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| t.contains("docs/runbooks/data_stale.md")),
            "{body}"
        );

        rig.feed.fault("/_faults/clear");
        let after = trade(&run, &rig, &mut tail, &mut sent, 10).await;
        assert_eq!(
            after[0], rig.times[WARM_UP],
            "the replay was frozen, not skipped"
        );
        let (_, recovered) = walk_until(
            &run,
            &mut tail,
            rig.wall.now() + chrono::Duration::seconds(60),
            |v| v["event"] == "threshold_recovered" && v["data"]["rule"] == "data_stale",
        )
        .await;
        assert_eq!(recovered["level"], "INFO", "{recovered}");
        run.finish().await
    });
    let log = vigil_tests::read_log(&outcome.log_dir);
    assert!(
        vigil_tests::events(&log, "data_outage").is_empty(),
        "a stall is no outage"
    );
    assert_eq!(
        outcome.summary.trading_state,
        TradingState::Halted,
        "an operator resets a stall's trip"
    );
}

/// An abrupt disconnect (no close frame): the lone source fails, a data outage (CRITICAL,
/// paged), the breaker tripped by `data_outage`. vigil reconnects after
/// `reconnect_initial_ms` of simulated time; at the next bars `data_recovered`, the books
/// are verified (`data_verified`, passed) and the breaker is reset by `data_verify`. Risk
/// approves nothing between the trip and the verification.
#[test]
fn an_abrupt_disconnect_is_an_outage_then_reconnect_verify_and_resume() {
    let rig = Rig::new();
    let outcome = actix_rt::System::new().block_on(async {
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        let mut tail = LogTail::new(&rig.logs);
        let mut sent = 0;
        subscribed(&rig.feed).await;
        trade(&run, &rig, &mut tail, &mut sent, WARM_UP).await;

        let (outage_at, outage) = cut_the_feed(&rig, &mut tail).await;
        assert_eq!(outage["level"], "CRITICAL", "{outage}");
        let mut got = Vec::new();
        paged(&rig.hook, &mut got, "data_outage", "critical").await;
        assert_eq!(
            rig.feed.subscribed(),
            0,
            "no reconnect while the simulated clock stands still"
        );
        recovers(&run, &rig, &mut tail, outage_at, &mut sent).await;
        trade(&run, &rig, &mut tail, &mut sent, 20).await;
        run.finish().await
    });
    assert_eq!(outcome.summary.trading_state, TradingState::Active);
    let log = vigil_tests::read_log(&outcome.log_dir);
    risk_approved_nothing_during_the_outage(&log);
}

/// A restart in the middle of an outage: the breaker the outage tripped is saved with the
/// state before it; the next process starts halted, reconnects, and at the first good bars
/// verifies the books and lifts the halt (`data_verify`), as it would have without the
/// restart.
#[test]
fn an_outage_halt_saved_before_a_restart_is_lifted_by_the_verification_after_it() {
    let rig = Rig::new();
    let (first, mut sent) = actix_rt::System::new().block_on(async {
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        let mut tail = LogTail::new(&rig.logs);
        let mut sent = 0;
        subscribed(&rig.feed).await;
        trade(&run, &rig, &mut tail, &mut sent, WARM_UP).await;
        cut_the_feed(&rig, &mut tail).await;
        // Stopped during the outage (the source still down for it).
        (run.finish().await, sent)
    });
    assert_eq!(first.summary.trading_state, TradingState::Halted);

    let outcome = actix_rt::System::new().block_on(async {
        let mut tail = LogTail::new(&rig.logs);
        let before = tail.poll().len();
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        // The first session's lines come first: look after them.
        let (restored_at, restored) = walk_until_after(
            &run,
            &mut tail,
            before - 1,
            rig.wall.now() + chrono::Duration::seconds(30),
            |v| v["event"] == "trading_state_changed" && v["data"]["actor"] == "restored",
        )
        .await;
        assert_eq!(restored["data"]["to"], "halted", "{restored}");
        assert!(
            restored["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("a data outage's halt")),
            "{restored}"
        );
        subscribed(&rig.feed).await;
        trade(&run, &rig, &mut tail, &mut sent, 20).await;
        let by = rig.wall.now() + chrono::Duration::seconds(60);
        let (_, recovered) = walk_until_after(&run, &mut tail, restored_at, by, |v| {
            v["event"] == "data_recovered"
        })
        .await;
        assert_eq!(recovered["level"], "WARN", "{recovered}");
        let (_, verified) = walk_until_after(&run, &mut tail, restored_at, by, |v| {
            v["event"] == "data_verified"
        })
        .await;
        assert_eq!(verified["data"]["passed"], true, "{verified}");
        let (_, reset) = walk_until_after(&run, &mut tail, restored_at, by, |v| {
            v["event"] == "breaker_reset"
        })
        .await;
        assert_eq!(reset["data"]["actor"], "data_verify", "{reset}");
        trade(&run, &rig, &mut tail, &mut sent, 20).await;
        run.finish().await
    });
    assert_eq!(outcome.summary.trading_state, TradingState::Active);
    let log = vigil_tests::read_log(&outcome.log_dir);
    risk_approved_nothing_during_the_outage(&log);
}

/// A slow feed (each bar held 100 ms): the bars still come and are traded on; nothing
/// trips.
#[test]
fn a_slow_feed_is_still_traded_on_and_trips_nothing() {
    let rig = Rig::new();
    let (outcome, slow_from) = actix_rt::System::new().block_on(async {
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        let mut tail = LogTail::new(&rig.logs);
        let mut sent = 0;
        subscribed(&rig.feed).await;
        trade(&run, &rig, &mut tail, &mut sent, WARM_UP).await;
        rig.feed.fault("/_faults/slow?ms=100");
        let slow = trade(&run, &rig, &mut tail, &mut sent, 30).await;
        (run.finish().await, slow[0])
    });
    assert_eq!(outcome.summary.trading_state, TradingState::Active);
    let log = vigil_tests::read_log(&outcome.log_dir);
    for quiet in ["breaker_tripped", "data_outage", "data_source_failed"] {
        assert!(
            vigil_tests::events(&log, quiet).is_empty(),
            "{quiet}: {:?}",
            vigil_tests::events(&log, quiet)
        );
    }
    assert!(
        !vigil_tests::events(&log, "threshold_breached")
            .iter()
            .any(|v| v["data"]["rule"] == "data_stale"
                || v["data"]["rule"] == "data_source_disconnected"),
        "the slow bars are not a stall"
    );
    assert!(
        vigil_tests::events(&log, "order_submitted")
            .iter()
            .any(|o| ts(o) >= slow_from),
        "the slow bars were traded on"
    );
}

/// Garbage: each message is a `data_parse_failed` ERROR line with its raw payload;
/// `max_rejected_in_a_row` of them fail the lone source, a data outage. After `clear` vigil
/// reconnects, verifies and resumes.
#[test]
fn garbage_is_logged_with_its_payload_and_fails_the_lone_source_into_an_outage() {
    let rig = Rig::new();
    let outcome = actix_rt::System::new().block_on(async {
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        let mut tail = LogTail::new(&rig.logs);
        let mut sent = 0;
        subscribed(&rig.feed).await;
        trade(&run, &rig, &mut tail, &mut sent, WARM_UP).await;

        rig.feed.fault("/_faults/garbage");
        // The three kinds of garbage in turn: text, a binary frame, half a bar.
        let payloads = [
            "garbage <html><body>502 Bad Gateway",
            "binary",
            r#""S":"TEST""#,
        ];
        for (n, payload) in payloads.iter().enumerate() {
            let before = rig.wall.now();
            assert_eq!(rig.feed.step(1), 1, "garbage #{n} sent");
            sent += 1;
            let (_, line) = until(&format!("data_parse_failed #{}", n + 1), || {
                tail.find(|v| {
                    v["event"] == "data_parse_failed"
                        && v["data"]["rejected_in_a_row"] == (n as u64 + 1)
                })
            })
            .await;
            assert_eq!(
                rig.wall.now(),
                before,
                "logged with no supervision time passing"
            );
            assert_eq!(line["level"], "ERROR", "{line}");
            let error = line["data"]["error"].as_str().expect("error");
            assert!(
                error.contains("raw (") && error.contains(payload),
                "the payload is in the line: {line}"
            );
        }
        assert_eq!(payloads.len() as u64, MAX_REJECTED);
        let (outage_at, outage) =
            until("data_outage", || tail.find(|v| v["event"] == "data_outage")).await;
        assert_eq!(outage["level"], "CRITICAL", "{outage}");
        assert!(
            outage["data"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("{MAX_REJECTED} messages in a row rejected"))),
            "{outage}"
        );
        let (_, tripped) = until("breaker_tripped", || {
            tail.find(|v| v["event"] == "breaker_tripped")
        })
        .await;
        assert_eq!(tripped["data"]["actor"], "data_outage", "{tripped}");
        let mut got = Vec::new();
        paged(&rig.hook, &mut got, "data_outage", "critical").await;

        rig.feed.fault("/_faults/clear");
        recovers(&run, &rig, &mut tail, outage_at, &mut sent).await;
        run.finish().await
    });
    assert_eq!(outcome.summary.trading_state, TradingState::Active);
    let log = vigil_tests::read_log(&outcome.log_dir);
    risk_approved_nothing_during_the_outage(&log);
}

/// A price spike (every price × 1.5, once): the symbol is quarantined by the jump rule
/// (`symbol_quarantined`, actor `anomaly_rule`), paged, nothing is approved in it while it
/// is held, and calm bars release it (`symbol_released`).
#[test]
fn a_price_spike_quarantines_the_symbol_until_calm_bars_release_it() {
    let rig = Rig::new();
    let (outcome, spike_at, released_at) = actix_rt::System::new().block_on(async {
        let run = Running::start(rig.cfg.clone(), &rig.wall).await;
        let mut tail = LogTail::new(&rig.logs);
        let mut sent = 0;
        subscribed(&rig.feed).await;
        trade(&run, &rig, &mut tail, &mut sent, WARM_UP).await;

        rig.feed
            .fault(&format!("/_faults/spike?symbol={SYMBOL}&pct=50"));
        let spike_at = rig.times[sent];
        assert_eq!(rig.feed.step(1), 1);
        sent += 1;
        let (_, held) = until("symbol_quarantined", || {
            tail.find(|v| v["event"] == "symbol_quarantined")
        })
        .await;
        assert_eq!(held["level"], "ERROR", "{held}");
        assert_eq!(held["data"]["actor"], "anomaly_rule", "{held}");
        assert_eq!(held["data"]["symbol"], SYMBOL, "{held}");
        let mut got = Vec::new();
        paged(&rig.hook, &mut got, "symbol_quarantined", "high").await;

        // Calm bars: the rule lets go after three in a row within the bounds (the release
        // is waited for by its line).
        assert_eq!(rig.feed.step(5), 5);
        sent += 5;
        let (_, line) = walk_until_after(
            &run,
            &mut tail,
            0,
            rig.wall.now() + chrono::Duration::seconds(60),
            |v| v["event"] == "symbol_released",
        )
        .await;
        assert_eq!(line["data"]["actor"], "anomaly_rule", "{line}");
        assert_eq!(line["data"]["symbol"], SYMBOL, "{line}");
        let released_at = ts(&line);
        assert!(
            released_at > spike_at && released_at < rig.times[sent],
            "released at a calm bar: {line}"
        );
        trade(&run, &rig, &mut tail, &mut sent, 30).await;
        (run.finish().await, spike_at, released_at)
    });
    let log = vigil_tests::read_log(&outcome.log_dir);
    assert!(vigil_tests::events(&log, "breaker_tripped").is_empty());
    // Decisions are stamped at their bar's time.
    for v in &log {
        if ["signal_generated", "risk_approved", "order_submitted"]
            .contains(&v["event"].as_str().unwrap_or_default())
        {
            let t = ts(v);
            assert!(
                t < spike_at || t >= released_at,
                "a decision while {SYMBOL} was held: {v}"
            );
        }
    }
    let approved = vigil_tests::events(&log, "risk_approved");
    assert!(approved.iter().any(|v| ts(v) < spike_at), "traded before");
}
