//! The seed incident, replayed end to end in simulated time (issue 9, item 6): the market
//! closes on Friday at 16:00, the feed changes its message format over the weekend while
//! the process keeps running, and the automated day starts again on Monday at 09:15.
//!
//! A real session reads real feeds (`vigil_feed::FeedServer` on 127.0.0.1, stepped by hand)
//! and alerts a real webhook on 127.0.0.1. The market clock follows the bars; the
//! supervision clock (heartbeats, the Monitor, alerting, log flushing) is a `SimClock` the
//! test moves from Friday 15:58 ET through the weekend to Monday 09:15 ET, letting the
//! agents run between steps. No test sleeps for behaviour: every wait is for an actual log
//! line, notice or feed answer, bounded in real time.
//!
//! The frozen-process part of the incident (the weekend silence detected from outside) is
//! `crates/vigil/tests/incident.rs`: it needs a process to SIGSTOP.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use serde_json::Value;
use vigil_config::VigilConfig;
use vigil_core::{Clock as _, SimClock, Timestamp};
use vigil_testkit::{HttpReceiver, PATIENCE, Received, settle};
use vigil_tests::sim::{
    Feed, LogTail, MAX_REJECTED, Running, SYMBOL, config, et, minutes, notices,
    risk_approved_nothing_during_the_outage, subscribed, ts, until, walk, walk_until, write_bars,
};

/// The supervision clock walks the weekend ten minutes at a time (the Monitor's timers are
/// set to match, see [`config`]).
const STEP: chrono::Duration = chrono::Duration::minutes(10);

/// Friday 2024-11-22 (a regular session) and the Monday after it.
fn friday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 22).expect("date")
}
fn sunday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 24).expect("date")
}
fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 25).expect("date")
}

/// The bars of the replay.
struct Bars {
    /// Friday 14:00–16:04 ET, minute bars: traded on before the weekend; the last five are
    /// after the close (extended hours), so the market clock ends the week closed.
    friday: Vec<Timestamp>,
    /// Monday 04:00–04:02 ET: the pre-market messages the primary sends in its changed
    /// format. Only the primary has them, so that nothing stamped at these times can ever
    /// come from a validated bar.
    premarket: Vec<Timestamp>,
    /// Monday 09:30–10:29 ET.
    monday: Vec<Timestamp>,
}

impl Bars {
    fn new() -> Self {
        Self {
            friday: minutes(et(friday(), 14, 0), 125),
            premarket: minutes(et(monday(), 4, 0), MAX_REJECTED as i64),
            monday: minutes(et(monday(), 9, 30), 60),
        }
    }

    /// Writes a bars CSV of `times`: a seeded zig-zag walk that makes a fast EMA cross a
    /// slow one often.
    fn write(path: &Path, times: &[Timestamp]) {
        write_bars(path, times);
    }
}

/// Where the supervision clock starts on Friday: just before the close-only phase, which
/// this desk's config sets one minute before the close (see [`weekend_config`]).
///
/// The phase timer is set once the source's first read is back, and it marks at once a
/// phase whose time the clock has passed. With the default close-only (15:50) and a start
/// at 15:59, a first read that brought only the first of Friday's bars (as CI's load made
/// it) had close-only marked at once, ahead of the rest: the bars of 14:01 to 15:49 were
/// handled as close-only, and Friday traded nothing. That is right for a live session
/// (at 15:59 the session is close-only, whatever the bars' age) and wrong for a compressed
/// replay, so this replay starts before any phase it could pass.
fn friday_start() -> Timestamp {
    et(friday(), 15, 58) + chrono::Duration::seconds(30)
}

/// The session's config for the weekend: close-only from 15:59 (see [`friday_start`]).
fn weekend_config(dir: &Path, primary: &str, backups: &[&str], webhook: &str) -> VigilConfig {
    let mut cfg = config(dir, primary, backups, webhook);
    cfg.calendar.schedule.close_only_minutes_before_close = 1;
    // The weekend is replayed compressed: each feed is stepped ahead of the simulated
    // clock (Friday's last bars after 15:58, Monday's before the open), which a live feed
    // never is; allow a day rather than reject them as from the future.
    cfg.data.future_tolerance_s = 86_400;
    cfg
}

/// Friday: the session trades on the primary's good bars, and the supervision clock moves
/// past the close (16:00 ET), letting the pipeline work through them. The clock passes
/// 15:59 (close-only) only once the bars have closed the session themselves at 16:00 (the
/// Risk agent's `trading_state_changed`, which the clock, before 15:59, cannot have
/// caused), so every bar of the day was handled in the phase it belongs to. Until then it
/// moves in small steps, bounded in real time: the log is flushed on the supervision clock.
async fn friday_close(primary: &Feed, bars: &Bars, run: &Running, tail: &mut LogTail) {
    subscribed(primary).await;
    assert_eq!(primary.step(bars.friday.len()), bars.friday.len() as u64);
    let limit = et(friday(), 15, 59) + chrono::Duration::seconds(4);
    let closed = |v: &Value| {
        v["event"] == "trading_state_changed" && v["data"]["reason"] == "final_snapshot phase"
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    while tail.find(closed).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "Friday's bars did not close the session at 16:00 within {PATIENCE:?}"
        );
        let next = (run.wall.now() + chrono::Duration::milliseconds(50)).min(limit);
        walk(run, next, chrono::Duration::milliseconds(50), || false).await;
        settle().await;
    }
    walk(
        run,
        et(friday(), 16, 5),
        chrono::Duration::seconds(30),
        || false,
    )
    .await;
}

/// Puts the primary under the changed format on Saturday and steps it message by message:
/// each rejected message is an ERROR line with its payload, logged with no supervision
/// time passing. Returns the log index of the first.
async fn format_changes(primary: &Feed, bars: &Bars, wall: &SimClock, tail: &mut LogTail) -> usize {
    primary.fault("/_faults/format?kind=renamed");
    let mut first = None;
    for (n, at) in bars.premarket.iter().enumerate() {
        let before = wall.now();
        assert_eq!(primary.step(1), 1, "message {n} sent");
        let (i, line) = until(&format!("data_parse_failed #{}", n + 1), || {
            tail.find(|v| {
                v["event"] == "data_parse_failed"
                    && v["data"]["rejected_in_a_row"] == (n as u64 + 1)
            })
        })
        .await;
        assert_eq!(
            wall.now(),
            before,
            "the line came with no supervision time passing"
        );
        assert_eq!(line["level"], "ERROR", "{line}");
        let error = line["data"]["error"].as_str().expect("error");
        let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        assert!(
            error.contains("raw (")
                && error.contains(r#""type":"bar""#)
                && error.contains(&format!(r#""sym":"{SYMBOL}""#))
                && error.contains(&stamp),
            "the renamed payload is in the line: {line}"
        );
        assert!(error.contains("unknown field"), "{line}");
        first.get_or_insert(i);
    }
    first.expect("a first bad message")
}

/// The weekend, with a backup feed. Friday's good bars are traded on; on Saturday the
/// primary's format changes: the first bad message is an ERROR line with its payload at
/// once, three in a row fail the primary, the session switches to the backup, and the
/// switch's High alert reaches the webhook on Saturday. On Monday the automated day starts,
/// the pre-market checklist passes, and trading goes on from the backup's validated bars.
/// No order was ever decided on a bar that was not validated.
#[test]
fn a_weekend_format_change_fails_over_to_the_backup_and_monday_trades_on_validated_bars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bars = Bars::new();
    let primary_csv = dir.path().join("primary.csv");
    let backup_csv = dir.path().join("backup.csv");
    let mut primary_times = bars.friday.clone();
    primary_times.extend(&bars.premarket);
    Bars::write(&primary_csv, &primary_times);
    let mut backup_times = bars.friday.clone();
    backup_times.extend(&bars.monday);
    Bars::write(&backup_csv, &backup_times);
    let primary = Feed::start(primary_csv);
    let backup = Feed::start(backup_csv);
    let hook = HttpReceiver::start();
    let cfg = weekend_config(
        dir.path(),
        &primary.stream_url,
        &[&backup.stream_url],
        &hook.url("/hook"),
    );
    let wall = SimClock::starting_at(friday_start());
    let logs = dir.path().join("logs");

    let (outcome, switch_notice_at) = actix_rt::System::new().block_on(async {
        let run = Running::start(cfg, &wall).await;
        let mut tail = LogTail::new(&logs);
        friday_close(&primary, &bars, &run, &mut tail).await;

        // Saturday morning: the format changes.
        walk(
            &run,
            et(friday(), 16, 5) + chrono::Duration::hours(18),
            STEP,
            || false,
        )
        .await;
        format_changes(&primary, &bars, &wall, &mut tail).await;
        let (_, switched) = until("data_source_switched", || {
            tail.find(|v| v["event"] == "data_source_switched")
        })
        .await;
        assert_eq!(switched["level"], "ERROR");
        assert_eq!(switched["data"]["actor"], "failover");
        assert_eq!(
            switched["data"]["from"],
            format!("feed:{}", primary.stream_url)
        );
        assert_eq!(
            switched["data"]["to"],
            format!("feed:{}", backup.stream_url)
        );
        subscribed(&backup).await;
        // Short steps first: the Data agent's heartbeats (on the supervision clock) report
        // the backup connected before the first 10-minute step could hold the source as
        // disconnected past the rule's 60 s (a race that tripped the breaker now and then).
        walk(
            &run,
            wall.now() + chrono::Duration::seconds(30),
            chrono::Duration::seconds(5),
            || false,
        )
        .await;

        // The switch is paged over the weekend: the notice reaches the webhook while the
        // supervision clock is still on Saturday.
        let mut got = Vec::new();
        let seen = |got: &mut Vec<Received>| {
            got.extend(hook.taken());
            notices(got)
                .iter()
                .any(|(rule, _, status, _)| rule == "data_source_switched" && status == "firing")
        };
        // Handed to the webhook at once: the supervision clock does not move meanwhile.
        until("the switch's notice", || seen(&mut got).then_some(())).await;
        let notice_at = wall.now();
        assert!(seen(&mut got), "the switch was paged before Monday");
        let (_, severity, _, body) = notices(&got)
            .into_iter()
            .find(|(rule, _, _, _)| rule == "data_source_switched")
            .expect("notice");
        assert_eq!(severity, "high", "{body}");
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| t.contains("docs/runbooks/data_source_switched.md")),
            "{body}"
        );

        // Monday 09:15 ET: the automated day starts; the backup's bars flow.
        walk(&run, et(monday(), 9, 15), STEP, || false).await;
        let total = bars.friday.len() + bars.monday.len();
        assert_eq!(backup.step(total), total as u64);
        // The bars have all been read once a line is stamped at the last one (the Monitor's
        // snapshot, every ten minutes, carries the market time).
        let last = *bars.monday.last().expect("bars");
        let mut read = || {
            tail.find(|v| {
                v["timestamp"]
                    .as_str()
                    .is_some_and(|t| t.parse::<Timestamp>().is_ok_and(|t| t >= last))
            })
            .is_some()
        };
        walk(
            &run,
            et(monday(), 9, 29),
            chrono::Duration::minutes(1),
            &mut read,
        )
        .await;
        assert!(read(), "Monday's bars were read before the open");
        let outcome = run.finish().await;
        (outcome, notice_at)
    });
    assert!(
        switch_notice_at < et(monday(), 0, 0),
        "paged at {switch_notice_at}"
    );
    assert_eq!(outcome.summary.error, None, "{:?}", outcome.summary);
    let log = vigil_tests::read_log(&outcome.log_dir);
    let index = |pred: &dyn Fn(&Value) -> bool| -> usize {
        log.iter().position(pred).expect("line present")
    };

    // The backup started at its first bar: Friday's were skipped, Monday's are new.
    let first_new =
        index(&|v| v["event"] == "data_source_connected" && v["data"]["first_new_bar"].is_string());
    assert_eq!(
        log[first_new]["data"]["skipped_already_seen"],
        bars.friday.len() as u64
    );
    assert_eq!(
        log[first_new]["data"]["first_new_bar"]
            .as_str()
            .map(|t| t.parse::<Timestamp>().expect("ts")),
        Some(bars.monday[0])
    );
    assert!(
        vigil_tests::events(&log, "data_source_failed").is_empty(),
        "the backup took over: no source failed for good"
    );
    let tripped = vigil_tests::events(&log, "breaker_tripped");
    assert!(
        tripped.is_empty(),
        "the failover kept trading open: {tripped:#?}"
    );
    for quiet in ["log_silent", "heartbeat_missed"] {
        assert!(vigil_tests::events(&log, quiet).is_empty(), "{quiet}");
    }

    // No decision on data that was not validated: every signal, approval and order is
    // stamped at a bar the session accepted (Friday's from the primary, Monday's from the
    // backup), none at a rejected message's time. (Decisions are stamped with their bar's
    // time; each agent's lines are in order among themselves, not across agents.)
    let accepted: BTreeSet<Timestamp> = bars.friday.iter().chain(&bars.monday).copied().collect();
    let decisions = ["signal_generated", "risk_approved", "order_submitted"];
    let mut decided = 0;
    for v in &log {
        if decisions.contains(&v["event"].as_str().unwrap_or_default()) {
            decided += 1;
            let t = ts(v);
            assert!(
                accepted.contains(&t),
                "a decision on a bar not accepted: {v}"
            );
            assert!(!bars.premarket.contains(&t), "{v}");
        }
    }
    assert!(decided > 0);
    let orders = vigil_tests::events(&log, "order_submitted");
    let monday_open = et(monday(), 9, 30);
    assert!(
        orders.iter().any(|o| ts(o) < monday_open),
        "Friday's good bars were traded on"
    );
    assert!(
        orders.iter().any(|o| ts(o) >= monday_open),
        "Monday trades on the backup's bars"
    );

    // Monday: nothing trades before the pre-market checklist passed and the schedule
    // opened the session. The Data agent runs the checklist before it marks the open; the
    // Risk agent opens at the mark and approves nothing before.
    let session = monday().to_string();
    let on_monday = |v: &Value| v["data"]["session"] == session.as_str();
    assert!(
        !log.iter()
            .any(|v| v["event"] == "checklist_failed" && on_monday(v)),
        "Monday's checklist passed"
    );
    let checklist = index(&|v| v["event"] == "checklist_completed" && on_monday(v));
    let active = index(&|v| {
        v["event"] == "phase_changed" && v["data"]["phase"] == "trading_active" && on_monday(v)
    });
    assert!(checklist < active, "the checklist ran before the open");
    let opened = index(&|v| {
        v["event"] == "trading_state_changed"
            && v["data"]["actor"] == "schedule"
            && v["data"]["to"] == "open"
            && ts(v) == monday_open
    });
    for (i, v) in log.iter().enumerate() {
        if v["event"] == "risk_approved" && ts(v) >= et(monday(), 0, 0) {
            assert!(i > opened, "a Monday approval before the open: {v}");
        }
    }
    for o in &orders {
        let t = ts(o);
        assert!(t < et(friday(), 16, 0) || t >= monday_open, "{o}");
    }
    for phase in ["auto_start", "premarket_validation", "trading_active"] {
        assert!(
            log.iter().any(|v| v["event"] == "phase_changed"
                && v["data"]["phase"] == phase
                && v["data"]["session"] == session.as_str()),
            "Monday's {phase} was marked"
        );
    }
}

/// The weekend, with no backup: the changed format fails the only source, a data outage; the
/// breaker trips and the Critical alert reaches the webhook on Saturday, long before Monday's
/// open. The process keeps running and keeps reconnecting; the feed is repaired on Sunday;
/// on Monday its bars come back, the books are verified, and only then does Risk approve
/// anything again. No order is ever sent on a bar vigil did not validate.
#[test]
fn a_weekend_format_change_without_a_backup_trips_the_breaker_and_pages_before_monday() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bars = Bars::new();
    let csv = dir.path().join("primary.csv");
    let mut times = bars.friday.clone();
    times.extend(&bars.premarket);
    times.extend(&bars.monday);
    Bars::write(&csv, &times);
    let primary = Feed::start(csv);
    let hook = HttpReceiver::start();
    let cfg = weekend_config(dir.path(), &primary.stream_url, &[], &hook.url("/hook"));
    let wall = SimClock::starting_at(friday_start());
    let logs = dir.path().join("logs");

    let (outcome, critical_at) = actix_rt::System::new().block_on(async {
        let run = Running::start(cfg, &wall).await;
        let mut tail = LogTail::new(&logs);
        friday_close(&primary, &bars, &run, &mut tail).await;
        walk(
            &run,
            et(friday(), 16, 5) + chrono::Duration::hours(18),
            STEP,
            || false,
        )
        .await;
        let first_bad = format_changes(&primary, &bars, &wall, &mut tail).await;

        let (failed_at, failed) =
            until("data_outage", || tail.find(|v| v["event"] == "data_outage")).await;
        assert!(failed_at > first_bad);
        assert_eq!(failed["level"], "CRITICAL");
        assert!(
            failed["data"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("{MAX_REJECTED} messages in a row rejected"))),
            "{failed}"
        );
        let (_, tripped) = until("breaker_tripped", || {
            tail.find(|v| v["event"] == "breaker_tripped")
        })
        .await;
        assert_eq!(tripped["level"], "CRITICAL");

        // The Critical alert is paged on Saturday.
        let mut got = Vec::new();
        let critical = |got: &mut Vec<Received>| {
            got.extend(hook.taken());
            notices(got)
                .into_iter()
                .find(|(rule, severity, status, _)| {
                    severity == "critical" && status == "firing" && rule != "log_silent"
                })
        };
        // Handed to the webhook at once: the supervision clock does not move meanwhile.
        until("a Critical notice", || critical(&mut got).map(|_| ())).await;
        let critical_at = wall.now();
        let (rule, _, _, body) = critical(&mut got).expect("a Critical notice before Monday");
        assert!(
            body["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("[CRITICAL]")),
            "{body}"
        );
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("docs/runbooks/{rule}.md"))),
            "{body}"
        );

        // ---- After the breaker tripped ----------------------------------------------------
        // The process keeps running: trading held, the feed tried again with backoff (it
        // connects; a connection is not recovery). The feed is repaired on Sunday.
        walk(&run, et(sunday(), 12, 0), STEP, || false).await;
        assert!(
            !run.ended.get(),
            "the session keeps running through the outage"
        );
        primary.fault("/_faults/clear");
        walk(&run, et(monday(), 9, 15), STEP, || false).await;
        assert_eq!(primary.subscribed(), 1, "vigil has connected again");
        let sent = primary.step(bars.monday.len());
        assert_eq!(
            sent,
            bars.monday.len() as u64,
            "vigil reads the repaired feed"
        );
        // The Data agent, then the Execution agent, then Risk: the clock moves meanwhile
        // (the log is written on the writer's flush interval).
        let (_, verified) = walk_until(&run, &mut tail, et(monday(), 9, 25), |v| {
            v["event"] == "data_verified"
        })
        .await;
        assert_eq!(verified["data"]["passed"], true, "{verified}");
        assert_eq!(verified["level"], "INFO", "{verified}");
        let (_, reset) = walk_until(&run, &mut tail, et(monday(), 9, 25), |v| {
            v["event"] == "breaker_reset"
        })
        .await;
        assert_eq!(reset["data"]["actor"], "data_verify", "{reset}");
        walk(&run, et(monday(), 9, 29), STEP, || false).await;
        // ---- End of the block ------------------------------------------------------------

        let outcome = run.finish().await;
        (outcome, critical_at)
    });
    assert!(
        critical_at < et(monday(), 0, 0),
        "paged at {critical_at}, before Monday"
    );
    assert_eq!(
        outcome.summary.trading_state,
        vigil_core::TradingState::Active,
        "verified, trading resumed"
    );
    let log = vigil_tests::read_log(&outcome.log_dir);
    assert!(
        vigil_tests::events(&log, "log_silent").is_empty(),
        "the log grew all weekend"
    );
    let orders = vigil_tests::events(&log, "order_submitted");
    assert!(!orders.is_empty(), "Friday's good bars were traded on");
    let last_friday = *bars.friday.last().expect("bars");
    let monday_open = et(monday(), 9, 30);
    for o in &orders {
        let t = ts(o);
        assert!(
            t <= last_friday || t >= monday_open,
            "an order on a bar not validated: {o}"
        );
    }
    // The Risk agent's own lines are in its order: from the trip to the verification it
    // approved nothing.
    risk_approved_nothing_during_the_outage(&log);
}
