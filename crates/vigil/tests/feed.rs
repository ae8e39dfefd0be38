//! `vigil feed` as a real child process: the provider reads its bars, its faults answer and
//! are logged on standard error, SIGTERM stops it, bad arguments are refused. Every wait is
//! for an actual line or message, bounded.

mod common;

use common::broker::BrokerProcess;
use common::feed::{FeedProcess, KEY_ID, PATIENCE, SECRET, wait_for_event, wait_for_line};
use common::{repo, run_on, vigil};
use serde_json::Value;
use vigil_core::{MarketDataEvent, SymbolId};
use vigil_providers::{
    CsvBarReader, CsvSource, DataProvider, ProviderError, WsFeedConfig, WsFeedProvider,
};
use vigil_testkit::config;

fn block_on<T>(rt: &tokio::runtime::Runtime, f: impl std::future::Future<Output = T>) -> T {
    rt.block_on(async { tokio::time::timeout(PATIENCE, f).await })
        .expect("an answer in time")
}

#[test]
fn the_feed_process_streams_bars_injects_faults_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut feed = FeedProcess::start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut p = WsFeedProvider::new(WsFeedConfig::new(&feed.stream_url, KEY_ID, SECRET));
    block_on(&rt, p.connect()).expect("connect");
    block_on(&rt, p.subscribe(&[(SymbolId(0), "GOOG".into())])).expect("subscribe");
    feed.wait_for("subscribed to [\"GOOG\"]");

    assert_eq!(feed.post("/_feed/step?n=3")["sent"], 3);
    let mut events = Vec::new();
    while events.len() < 3 {
        block_on(&rt, p.next_batch(3 - events.len(), &mut events)).expect("bars");
    }
    let mut reader =
        CsvBarReader::open(&CsvSource::file(SymbolId(0), repo("data/GOOG_1d.csv"))).expect("csv");
    let mut expected = Vec::new();
    reader.read_batch(3, &mut expected).expect("csv bars");
    let got: Vec<_> = events
        .into_iter()
        .map(|e| match e {
            MarketDataEvent::Bar(b) => b,
        })
        .collect();
    assert_eq!(got, expected);

    let answer = feed.post("/_faults/format?kind=strings");
    assert_eq!(answer["faults"]["format"], "strings");
    feed.wait_for("vigil feed: fault format: bars go out in a changed format (strings)");
    feed.post("/_feed/step");
    let err = block_on(&rt, p.next_batch(8, &mut Vec::new())).expect_err("changed format");
    assert!(
        matches!(&err, ProviderError::Malformed(t) if t.contains(r#"field "o": expected a number, found a string"#)),
        "{err:?}"
    );
    assert_eq!(p.health().errors, 1);

    feed.post("/_faults/disconnect");
    feed.wait_for("vigil feed: fault disconnect: closed 1 connection(s)");
    let err = block_on(&rt, p.next_batch(8, &mut Vec::new())).expect_err("disconnected");
    assert!(matches!(err, ProviderError::Stream { .. }), "{err:?}");
    assert!(!p.health().connected);

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &feed.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    feed.wait_for("vigil feed: stopped");
    let status = feed.child.wait().expect("exit");
    assert!(status.success(), "{status}");
}

#[test]
fn the_feed_refuses_a_missing_file_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("NOPE_1d.csv");
    let out = vigil()
        .args(["feed", "--listen", "127.0.0.1:0", "--csv"])
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vigil feed") && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );
}

/// `vigil run` reading `[data.feed]` from the feed process. Forty good bars are traded on;
/// then the feed's format changes (the weekend incident): every bad message is an ERROR
/// line with its payload, three in a row fail the lone source: a data outage, the breaker
/// trips, vigil stays up and connects again. Once the feed is repaired, good bars come
/// back, but the sessions sent in the changed format are missing: the verification fails
/// and the breaker stays tripped for a person. Every order was decided on a good bar.
#[test]
fn vigil_run_on_a_feed_whose_format_changes_halts_reconnects_and_resumes_only_after_verifying() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut feed, run) = trading_on_a_lone_feed(dir.path());
    feed.post("/_faults/format?kind=renamed");
    feed.wait_for("fault format");
    // vigil may hang up after the third, before the last are queued.
    let sent = feed.post("/_feed/step?n=5")["sent"].as_u64().unwrap_or(0);
    assert!(sent >= 3, "{sent}");
    let outage = wait_for_event(dir.path(), "data_outage");
    assert_eq!(outage["level"], "CRITICAL");
    wait_for_line(dir.path(), "breaker_tripped", |l| {
        l["data"]["actor"] == "data_outage"
    });

    // vigil stays up and connects again (after reconnect_initial_ms); the feed is repaired.
    feed.wait_for("subscribed to [\"GOOG\"]");
    feed.post("/_faults/clear");
    assert_eq!(feed.post("/_feed/step?n=30")["sent"], 30);
    let recovered = wait_for_event(dir.path(), "data_recovered");
    // The bars the feed sent in the changed format are lost to vigil: sessions missing.
    let missing = recovered["data"]["missing_bars"].as_u64().unwrap_or(0);
    assert!(missing >= 3, "{recovered:#}");
    let verified = wait_for_event(dir.path(), "data_verified");
    assert_eq!(verified["data"]["passed"], false, "{verified:#}");
    assert_eq!(verified["level"], "ERROR", "{verified:#}");
    assert!(
        verified["data"]["report"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("{missing} bar(s) of exchange sessions missing"))),
        "{verified:#}"
    );
    run.signal("-TERM");
    let out = run.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary counts the messages the parser rejected (it said "0 rejected" before).
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    assert_eq!(summary["messages_rejected"], 3, "{summary:#}");
    assert_eq!(summary["bars_rejected"], 0, "{summary:#}");

    let log = common::vigil_log_lines(&dir.path().join("logs"));
    // The Risk agent's own lines are in its order: between the outage's trip and the
    // verification it approved nothing.
    let risk: Vec<&Value> = log
        .iter()
        .filter(|l| l["service"] == "risk_agent")
        .collect();
    let tripped = risk
        .iter()
        .position(|l| l["event"] == "breaker_tripped" && l["data"]["actor"] == "data_outage")
        .expect("the outage's trip");
    let resumed = risk
        .iter()
        .position(|l| l["event"] == "data_verified")
        .expect("the verification");
    assert!(
        risk[tripped..]
            .iter()
            .all(|l| l["event"] != "risk_approved" && l["event"] != "breaker_reset"),
        "an order approved, or the breaker reset, after the outage"
    );
    assert!(resumed > tripped);
    let bad: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l["event"] == "data_parse_failed")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        bad.len(),
        3,
        "three rejected messages, then the source failed"
    );
    for &i in &bad {
        let l = &log[i];
        assert_eq!(l["level"], "ERROR");
        let error = l["data"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("raw (") && error.contains("\"sym\":\"GOOG\""),
            "the payload is in the line: {l:#}"
        );
    }
    let failed: Vec<&Value> = log
        .iter()
        .filter(|l| l["event"] == "data_source_failed")
        .collect();
    assert!(failed.is_empty(), "no reconnect failed: {failed:#?}");
    assert!(
        outage["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("3 messages in a row rejected")),
        "{outage:#}"
    );
    // Every order was decided on a validated bar: one of the 40 good bars, or one after the
    // repair (the bars sent in the changed format are gone with it).
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG_1d.csv");
    let last_good = text.lines().nth(40).expect("row 40")[..10].to_string();
    let first_repaired =
        recovered["data"]["first_bar"].as_str().unwrap_or_default()[..10].to_string();
    let orders: Vec<&Value> = log
        .iter()
        .filter(|l| l["event"] == "order_submitted")
        .collect();
    assert!(!orders.is_empty(), "the good bars were traded on");
    for o in &orders {
        let at = &o["timestamp"].as_str().unwrap_or_default()[..10];
        assert!(
            at <= last_good.as_str() || at >= first_repaired.as_str(),
            "an order on a bar sent in the changed format: {o:#}"
        );
    }
}

/// Network loss: the feed drops the connection without a close frame. The lone source has
/// failed: a data outage, the breaker trips; vigil connects again with backoff, and when good
/// bars come back with no session missing, the books are verified and trading resumes by
/// itself (`after_outage = "verify"`, the default). Risk approves nothing in between.
#[test]
fn after_a_network_loss_vigil_reconnects_verifies_and_resumes_trading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut feed, run) = trading_on_a_lone_feed(dir.path());
    feed.post("/_faults/disconnect?abrupt=true");
    let outage = wait_for_event(dir.path(), "data_outage");
    assert!(
        outage["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("connection")),
        "{outage:#}"
    );
    wait_for_line(dir.path(), "breaker_tripped", |l| {
        l["data"]["actor"] == "data_outage"
    });
    feed.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(feed.post("/_feed/step?n=30")["sent"], 30);
    let recovered = wait_for_event(dir.path(), "data_recovered");
    assert_eq!(recovered["data"]["missing_bars"], 0, "{recovered:#}");
    let verified = wait_for_event(dir.path(), "data_verified");
    assert_eq!(verified["data"]["passed"], true, "{verified:#}");
    wait_for_line(dir.path(), "breaker_reset", |l| {
        l["data"]["actor"] == "data_verify"
    });
    run.signal("-TERM");
    let out = run.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    let risk: Vec<&Value> = log
        .iter()
        .filter(|l| l["service"] == "risk_agent")
        .collect();
    let tripped = risk
        .iter()
        .position(|l| l["event"] == "breaker_tripped")
        .expect("the outage's trip");
    let resumed = risk
        .iter()
        .position(|l| l["event"] == "breaker_reset")
        .expect("the reset");
    assert!(
        risk[tripped..resumed]
            .iter()
            .all(|l| l["event"] != "risk_approved"),
        "an order approved before the data was verified"
    );
    assert_eq!(
        text_of(risk[resumed - 1], "event"),
        "data_verified",
        "reset right after the verification"
    );
}

fn text_of(line: &Value, key: &str) -> String {
    line[key].as_str().unwrap_or_default().to_string()
}

/// A `vigil feed` process and `vigil run` reading it alone, 40 good bars in and traded on.
fn trading_on_a_lone_feed(dir: &std::path::Path) -> (FeedProcess, common::Running) {
    let mut feed = FeedProcess::start(dir);
    let cfg = feed_config(dir, &feed.stream_url, &[]);
    let run = run_on(&cfg);
    feed.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(feed.post("/_feed/step?n=40")["sent"], 40);
    wait_for_event(dir, "order_submitted");
    (feed, run)
}

/// A `vigil run` config reading `[data.feed]` at `primary`, with `backups`.
fn feed_config(dir: &std::path::Path, primary: &str, backups: &[&str]) -> std::path::PathBuf {
    let secret = dir.join("feed.secret");
    let feed_extra = format!(
        "max_rejected_in_a_row = 3\n{}",
        config::feed_backups(backups, KEY_ID, &secret)
    );
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"{feed}
[signal]
fast_span = 3
slow_span = 8
{home}"#,
            feed = config::feed_sections("GOOG", primary, KEY_ID, &secret, &feed_extra),
            home = config::home_sections(dir, "", ""),
        ),
    )
    .expect("config");
    cfg
}

/// The primary feed's format changes: after three bad messages vigil switches to the
/// backup (`data_source_switched`, alerted), skips the bars it has already seen there, and
/// trades on; nothing failed, and SIGTERM ends the run cleanly.
#[test]
fn vigil_run_fails_over_to_the_backup_feed_when_the_primary_s_format_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut primary = FeedProcess::start(dir.path());
    let mut backup = FeedProcess::start(dir.path());
    let cfg = feed_config(dir.path(), &primary.stream_url, &[&backup.stream_url]);
    let run = run_on(&cfg);
    primary.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(primary.post("/_feed/step?n=40")["sent"], 40);
    wait_for_event(dir.path(), "order_submitted");
    primary.post("/_faults/format?kind=strings");
    primary.wait_for("fault format");
    let sent = primary.post("/_feed/step?n=3")["sent"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(sent, 3);

    let switched = wait_for_event(dir.path(), "data_source_switched");
    assert_eq!(switched["level"], "ERROR");
    assert_eq!(
        switched["data"]["from"],
        format!("feed:{}", primary.stream_url)
    );
    assert_eq!(
        switched["data"]["to"],
        format!("feed:{}", backup.stream_url)
    );
    assert_eq!(switched["data"]["actor"], "failover");
    // The backup starts at the first bar: the 40 already seen are skipped, 5 new ones flow
    // (the 3 the primary garbled among them).
    backup.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(backup.post("/_feed/step?n=45")["sent"], 45);
    let first_new = wait_for_line(dir.path(), "data_source_connected", |l| {
        l["data"]["first_new_bar"].is_string()
    });
    assert_eq!(
        first_new["data"]["skipped_already_seen"], 40,
        "{first_new:#}"
    );
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG_1d.csv");
    let row41 = &text.lines().nth(41).expect("row 41")[..10];
    assert!(
        first_new["data"]["first_new_bar"]
            .as_str()
            .is_some_and(|t| t.starts_with(row41)),
        "{first_new:#}"
    );

    run.signal("-TERM");
    let out = run.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    assert!(log.iter().all(|l| l["event"] != "data_source_failed"));
    assert!(log.iter().all(|l| l["event"] != "breaker_tripped"));
    assert_eq!(
        log.iter()
            .filter(|l| l["event"] == "data_parse_failed")
            .count(),
        3
    );
}

/// After a failover, the switch back to the primary is tried only once the primary answers
/// a probe: with the primary feed gone, each probe fails (`data_source_probed`, WARN), the
/// backup stays in use and keeps trading, and the next probe waits twice as long.
#[test]
fn the_primary_is_probed_before_the_switch_back_and_a_dead_one_is_not_switched_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut primary = FeedProcess::start(dir.path());
    let mut backup = FeedProcess::start(dir.path());
    let cfg = feed_config(dir.path(), &primary.stream_url, &[&backup.stream_url]);
    // Back to the primary after a second on the backup.
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replacen(
            "max_rejected_in_a_row = 3\n",
            "max_rejected_in_a_row = 3\nswitch_back_after_s = 1\n",
            1,
        ),
    )
    .expect("config");
    let run = run_on(&cfg);
    primary.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(primary.post("/_feed/step?n=40")["sent"], 40);
    wait_for_event(dir.path(), "order_submitted");
    primary.post("/_faults/format?kind=strings");
    primary.wait_for("fault format");
    assert_eq!(primary.post("/_feed/step?n=3")["sent"], 3);
    let switched = wait_for_event(dir.path(), "data_source_switched");
    assert_eq!(switched["data"]["actor"], "failover");
    backup.wait_for("subscribed to [\"GOOG\"]");
    // The primary is gone for good.
    drop(primary);
    let probed = wait_for_event(dir.path(), "data_source_probed");
    assert_eq!(probed["level"], "WARN", "{probed:#}");
    assert_eq!(probed["data"]["passed"], false, "{probed:#}");
    assert_eq!(
        probed["data"]["in_use"],
        format!("feed:{}", backup.stream_url),
        "{probed:#}"
    );
    // The backup stays in use and its bars are traded on.
    assert_eq!(backup.post("/_feed/step?n=150")["sent"], 150);
    let after = probed["seq"].as_u64().expect("seq");
    wait_for_line(dir.path(), "signal_generated", |l| {
        l["seq"].as_u64().is_some_and(|seq| seq > after)
    });
    run.signal("-TERM");
    run.finish_ok();
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    let switches: Vec<&Value> = log
        .iter()
        .filter(|l| l["event"] == "data_source_switched")
        .collect();
    assert_eq!(
        switches.len(),
        1,
        "never switched back to a dead primary: {switches:#?}"
    );
}

/// `vigil drill data-format-change` against a running stack: with a backup feed it reports
/// the failover, without one the breaker; every check passes either way.
#[test]
fn the_data_format_change_drill_passes_against_a_running_stack() {
    for with_backup in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut primary = FeedProcess::start(dir.path());
        let backup = FeedProcess::start(dir.path());
        let backups: Vec<&str> = if with_backup {
            vec![backup.stream_url.as_str()]
        } else {
            Vec::new()
        };
        let cfg = feed_config(dir.path(), &primary.stream_url, &backups);
        let run = run_on(&cfg);
        primary.wait_for("subscribed to [\"GOOG\"]");
        assert_eq!(primary.post("/_feed/step?n=40")["sent"], 40);
        wait_for_event(dir.path(), "order_submitted");

        let report = drill_passes(
            &cfg,
            "data-format-change",
            &["--step", "5", "--timeout-s", "20"],
        );
        assert!(report.contains("result: PASS (3 checks)"), "{report}");
        assert!(
            report.contains("PASS the first bad message is an ERROR line with its payload"),
            "{report}"
        );
        let reaction = if with_backup {
            "PASS failover or the breaker: switched from feed:"
        } else {
            "PASS failover or the breaker: breaker tripped"
        };
        assert!(report.contains(reaction), "{report}");
        assert!(
            report.contains("PASS no order on unvalidated data"),
            "{report}"
        );
        // The drill put the feed back.
        assert_eq!(
            primary.post("/_faults/clear")["faults"]["format"],
            Value::Null
        );

        // With no backup, vigil stays up in the outage (trading halted, reconnecting):
        // SIGTERM ends it cleanly either way.
        run.signal("-TERM");
        let out = run.finish();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `vigil drill all`, the monthly drill, against a running stack whose alerts go to a
/// webhook on loopback: data-source-down, price-jump, agent-crash, crash-loop and
/// data-format-change in turn; every
/// check passes, the report gives the measured detection and delivery times and the score,
/// the run is in the store, and the monthly checklist finds it.
#[test]
fn the_monthly_drill_runs_every_class_against_a_running_stack_and_is_on_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut feed = FeedProcess::start(dir.path());
    let hook = vigil_testkit::HttpReceiver::start();
    let cfg = feed_config(dir.path(), &feed.stream_url, &[]);
    // A rehearsal stack: the agent drills inject panics through the control API.
    let mut text = std::fs::read_to_string(&cfg).expect("config").replace(
        "address = \"127.0.0.1:0\"\n",
        "address = \"127.0.0.1:0\"\nfault_injection = true\n",
    );
    // A crashed agent is back within 2 s at most (the crash loop's halt waits for it); a
    // hung Monitor is seen within 2 s; the outside heartbeat, which the process-frozen
    // drill hears, every second.
    text.push_str(&rehearsal_monitor(&free_loopback_port()));
    text.push_str("\n[monitor.supervision]\nbackoff_max_ms = 2000\n");
    assert!(text.contains("fault_injection = true"));
    text.push_str(&format!(
        "\n[alerts.channels.webhook]\nurl = \"{}\"\n",
        hook.url("/hook")
    ));
    std::fs::write(&cfg, text).expect("config");
    let monthly = || {
        let out = vigil()
            .args(["checklist", "monthly", "--json", "--config"])
            .arg(&cfg)
            .output()
            .expect("run vigil checklist");
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == "dr_drill")
            .cloned()
            .expect("the drill check")
    };
    // A Saturday by the stack's clock: the quiet-feed drill is skipped, saying why.
    let run = run_at(&cfg, "2026-11-28T12:00:00-05:00");
    feed.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(feed.post("/_feed/step?n=40")["sent"], 40);
    wait_for_event(dir.path(), "order_submitted");
    // No drill on record yet.
    assert_eq!(monthly()["status"], "fail");

    let report = drill_passes(&cfg, "all", &["--step", "5", "--timeout-s", "20"]);
    says_all(
        &report,
        &[
            "PASS data-source-down\n",
            "PASS the loss is detected: data_outage (CRITICAL) ",
            "PASS a person is told: the data_outage alert (",
            "PASS trading resumes after the books are verified: data_verified passed",
            "PASS no order while the data was down: nothing approved between the trip and the reset",
            "PASS price-jump\n",
            "PASS the jump is quarantined: GOOG held ",
            // LOW by the routing table: it goes out in the day's digest.
            "PASS a person is told: the symbol_quarantined alert (",
            "LOW severity: kept for the daily digest",
            "PASS no order in the symbol while it is held: no GOOG order while it was held",
            "PASS agent-crash\n",
            "PASS the crash is caught: agent_crashed (signal) ",
            "PASS a person is told: the agent_crashed alert (",
            "PASS the agent is restarted and rebuilt: agent_restarted (signal) ",
            "PASS trading goes on: no breaker trip and no crash loop after one crash",
            "PASS crash-loop\n",
            "PASS the crash loop is detected: restart_intensity_exceeded (risk, 4 panics) ",
            "PASS a person is told: the restart_intensity_exceeded alert (",
            "PASS trading halts: breaker_tripped by supervisor ",
            "PASS no order approved after the halt: nothing approved after the trip",
            "PASS the drill puts the breaker back: breaker reset by the drill",
            "PASS process-frozen\n",
            "PASS the outside heartbeat is heard: pings arrive at 127.0.0.1:",
            "PASS the watchdog sees the hang: monitor_stalled (CRITICAL) ",
            "PASS the outside heartbeat goes silent: ",
            "PASS the heartbeat comes back: a ping ",
            "PASS trading halts: breaker_tripped by ",
            "PASS a person is told: the monitor_stalled alert (",
            "SKIP stale-data: the exchange is closed by the running vigil's clock (2026-11-28T",
            "SKIP broker-down: the venue is the in-process paper venue",
            "SKIP broker-drift: the venue is the in-process paper venue",
            "SKIP network-loss: the venue is the in-process paper venue",
            "PASS data-format-change\n",
            "PASS the first bad message is an ERROR line with its payload",
            "PASS failover or the breaker: breaker tripped",
            "PASS no order on unvalidated data",
            "score: 26 of 26 checks, 6 of 6 classes\n",
            "result: PASS (26 checks)",
        ],
    );
    // The outage went through the webhook.
    let bodies = bodies_of(&hook);
    assert!(
        bodies.iter().any(|b| b.contains("data_outage")),
        "{bodies:#?}"
    );
    // On record: the monthly checklist passes its drill check with the score.
    let drill = monthly();
    assert_eq!(drill["status"], "pass", "{drill}");
    assert!(
        drill["reason"].as_str().is_some_and(|r| r
            .starts_with("the monthly drill passed: `vigil drill all` at ")
            && r.contains(": 26 of 26 checks; 1 drill run(s)")),
        "{drill}"
    );
    run.signal("-TERM");
    run.finish_ok();
}

/// A free port of 127.0.0.1 (bound, then let go) for a server started later.
fn free_loopback_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// The `[monitor]` of a rehearsal stack: probes every 500 ms, a hung Monitor seen after
/// 2 s, the outside heartbeat pinged every second at `heartbeat` (where the
/// process-frozen drill listens).
fn rehearsal_monitor(heartbeat: &str) -> String {
    format!(
        "\n[monitor]\nprobe_interval_ms = 500\nwatchdog_stall_s = 2\n\
         [monitor.dead_man]\nheartbeat_url = \"http://{heartbeat}/ping/rehearsal\"\n\
         heartbeat_interval_s = 1\nheartbeat_timeout_ms = 500\n"
    )
}

/// `vigil run --config CFG --json --clock-start AT`: a rehearsal stack's clock.
fn run_at(cfg: &std::path::Path, at: &str) -> common::Running {
    let mut args = common::run_args(cfg);
    args.push(std::ffi::OsStr::new("--clock-start"));
    args.push(std::ffi::OsStr::new(at));
    common::Running::start(&args)
}

/// `vigil drill stale-data` and `process-frozen` on a rehearsal stack whose clock runs in
/// a session (Tuesday 10:00 New York, by `--clock-start`), its bars from a `vigil feed`
/// that sends one every 200 ms by itself, `data_stale` at 2 s, alerts to a webhook: every
/// check passes with its measured times, and the stack trades on after both.
#[test]
fn the_quiet_feed_and_the_frozen_monitor_drills_pass_on_a_stack_in_trading_hours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut feed = FeedProcess::paced(dir.path(), 200);
    let hook = vigil_testkit::HttpReceiver::start();
    let cfg = feed_config(dir.path(), &feed.stream_url, &[]);
    let mut text = std::fs::read_to_string(&cfg).expect("config").replace(
        "address = \"127.0.0.1:0\"\n",
        "address = \"127.0.0.1:0\"\nfault_injection = true\n",
    );
    assert!(text.contains("fault_injection = true"));
    text.push_str(&rehearsal_monitor(&free_loopback_port()));
    text.push_str(
        "\n[[monitor.rules]]\nname = \"data_stale\"\nmetric = \"data_staleness_seconds\"\n\
         op = \">\"\nvalue = 2\nlevel = \"CRITICAL\"\n",
    );
    text.push_str(&format!(
        "\n[alerts.channels.webhook]\nurl = \"{}\"\n",
        hook.url("/hook")
    ));
    std::fs::write(&cfg, text).expect("config");
    // Without fault injection the rehearsal clock is refused.
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, feed_config_text(&cfg)).expect("config");
    let out = vigil()
        .args(["run", "--config"])
        .arg(&plain)
        .args(["--clock-start", "2026-12-01T10:00:00-05:00"])
        .output()
        .expect("run vigil run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fault_injection = true"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = run_at(&cfg, "2026-12-01T10:00:00-05:00");
    feed.wait_for("subscribed to [\"GOOG\"]");
    wait_for_event(dir.path(), "order_submitted");
    let drill = |class: &str| drill_passes(&cfg, class, &["--step", "0", "--timeout-s", "15"]);
    let stale = drill("stale-data");
    says_all(
        &stale,
        &[
            "PASS the silence is caught: data_stale (CRITICAL) ",
            "PASS a person is told: the data_stale alert (",
            "PASS trading halts: breaker_tripped by alert:data_stale ",
            "PASS the data flows again: data_stale recovered ",
            "PASS no order while the data was stale: nothing approved after the trip",
            "PASS the drill puts the breaker back: breaker reset by the drill",
            "result: PASS (6 checks)",
        ],
    );
    let frozen = drill("process-frozen");
    says_all(
        &frozen,
        &[
            "PASS the outside heartbeat is heard: pings arrive at 127.0.0.1:",
            "PASS the watchdog sees the hang: monitor_stalled (CRITICAL) ",
            "PASS the outside heartbeat goes silent: ",
            "PASS the heartbeat comes back: a ping ",
            "PASS trading halts: breaker_tripped by ",
            "PASS a person is told: the monitor_stalled alert (",
            "PASS the drill puts the breaker back: breaker reset by the drill",
            "result: PASS (7 checks)",
        ],
    );
    // Both reached a person through the webhook.
    let bodies = bodies_of(&hook);
    for rule in ["data_stale", "monitor_stalled"] {
        assert!(
            bodies.iter().any(|b| b.contains(rule)),
            "{rule}: {bodies:#?}"
        );
    }
    run.signal("-TERM");
    run.finish_ok();
}

/// The bodies the webhook received so far, as text.
fn bodies_of(hook: &vigil_testkit::HttpReceiver) -> Vec<String> {
    hook.taken()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect()
}

/// Every one of `lines` is in `report`.
fn says_all(report: &str, lines: &[&str]) {
    for line in lines {
        assert!(report.contains(line), "{line:?} in {report}");
    }
}

/// `vigil drill CLASS --config CFG ARGS…`, which must exit 0; its report.
fn drill_passes(cfg: &std::path::Path, class: &str, args: &[&str]) -> String {
    let out = vigil()
        .args(["drill", class, "--config"])
        .arg(cfg)
        .args(args)
        .output()
        .expect("run vigil drill");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{report}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// The config at `cfg` without `fault_injection`.
fn feed_config_text(cfg: &std::path::Path) -> String {
    std::fs::read_to_string(cfg)
        .expect("config")
        .replace("fault_injection = true\n", "")
}

/// `vigil drill broker-down`, `broker-drift` and `network-loss` against a stack that trades
/// through the `vigil broker` process, its bars from a `vigil feed` process, its alerts to a
/// webhook: every check passes, with the measured times.
#[test]
fn the_broker_drills_pass_against_a_stack_trading_through_the_broker_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut feed = FeedProcess::start(dir.path());
    let broker = BrokerProcess::start(dir.path(), &repo("data/GOOG_1d.csv"));
    let hook = vigil_testkit::HttpReceiver::start();
    let cfg = feed_config(dir.path(), &feed.stream_url, &[]);
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str(&broker.execution_sections(dir.path()));
    text.push_str(&format!(
        "\n[alerts.channels.webhook]\nurl = \"{}\"\n",
        hook.url("/hook")
    ));
    std::fs::write(&cfg, text).expect("config");
    let run = run_on(&cfg);
    feed.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(feed.post("/_feed/step?n=40")["sent"], 40);
    wait_for_event(dir.path(), "order_submitted");
    let drill = |class: &str| drill_passes(&cfg, class, &["--step", "5", "--timeout-s", "20"]);
    let report = drill("broker-down");
    says_all(
        &report,
        &[
            "PASS orders are held while the broker is down: orders_paused ",
            "PASS a person is told: the orders_paused alert (",
            "PASS the held orders go out and the books are reconciled: orders_resumed (",
            "PASS every order reaches the broker once: ",
            "result: PASS (4 checks)",
        ],
    );
    // network-loss before broker-drift: the drift's manual fill comes while no bar does
    // after the feed's return, and is found only if fills are booked between bars (this
    // order failed 8 of 9 runs before they were).
    let report = drill("network-loss");
    says_all(
        &report,
        &[
            "PASS the loss is detected: data_outage (CRITICAL) ",
            "PASS a person is told: the data_outage alert (",
            "PASS the broker's loss is seen too: venue_error ",
            "PASS trading resumes after the books are verified: data_verified passed",
            "PASS the books are reconciled with the broker before trading resumes: reconciliation_completed (trigger ",
            "PASS no order while the data was down",
            "result: PASS (6 checks)",
        ],
    );
    let report = drill("broker-drift");
    says_all(
        &report,
        &[
            "PASS the trade behind vigil's back is found: reconciliation_mismatch (CRITICAL) ",
            "PASS a person is told: the reconciliation_mismatch alert (",
            "PASS trading is restricted until a person looks: trading reduce_only by ",
            "result: PASS (3 checks)",
        ],
    );
    run.signal("-TERM");
    run.finish_ok();
}
