//! Crash recovery against the broker process: `vigil run` (venue = broker) is killed with
//! SIGKILL at random points and restarted, again and again; a trade made at the broker by
//! hand is caught; an outage of the broker holds orders and resumes. Every wait is a bounded
//! poll of a real child process.
//!
//! The default test run kills 4 times, with the store in the SQLite file and again with it in
//! PostgreSQL (`store.url`; skipped, saying so, without a server at 127.0.0.1:5432);
//! `VIGIL_CRASH_KILLS=50 cargo test -p vigil --test recovery -- --ignored` is the extended
//! suite (docs/recovery.md has its figures).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::broker::{BrokerProcess, dec, goog_slice};
use common::crash::{delays, journal_fills, positions_of, reconcile};
use common::{Running, run_args, vigil_log_lines};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use vigil_store::PgTestSchema;

/// A paced broker session: a trading day in 10 ms, fills polled every 20 ms, reconciled
/// every second of wall time.
/// The store is the SQLite file `state/vigil.db`, or the PostgreSQL schema `pg`.
fn write_config(
    dir: &Path,
    data: &Path,
    broker: &BrokerProcess,
    pg: Option<&PgTestSchema>,
    extra: &str,
) -> PathBuf {
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"{sections}
[execution.reconcile]
interval_s = 1
retry_initial_ms = 50
retry_max_ms = 400

{home}{extra}
"#,
            sections = broker.run_sections(dir, data),
            home = vigil_testkit::config::home_sections(
                dir,
                "",
                &pg.map_or(String::new(), |s| format!("url = \"{}\"", s.url()))
            ),
        ),
    )
    .expect("write config");
    cfg
}

/// The broker's fills, orders, account and positions.
struct BrokerBook {
    fills: Vec<Value>,
    orders: Vec<Value>,
    cash: Decimal,
    positions: Vec<(String, Decimal)>,
}

fn broker_book(b: &BrokerProcess) -> BrokerBook {
    let mut fills = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => {
                format!("/v2/account/activities/FILL?direction=asc&page_size=100&page_token={t}")
            }
            None => "/v2/account/activities/FILL?direction=asc&page_size=100".to_string(),
        };
        let (status, page) = b.call("GET", &path, None);
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().cloned().unwrap_or_default();
        let full = page.len() == 100;
        token = page
            .last()
            .and_then(|f| f["id"].as_str())
            .map(str::to_string);
        fills.extend(page);
        if !full {
            break;
        }
    }
    let (_, orders) = b.call("GET", "/v2/orders?status=all&limit=500", None);
    let (_, account) = b.call("GET", "/v2/account", None);
    let (_, positions) = b.call("GET", "/v2/positions", None);
    BrokerBook {
        fills,
        orders: orders.as_array().cloned().unwrap_or_default(),
        cash: dec(&account["cash"]),
        positions: positions
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["symbol"].as_str().unwrap_or_default().to_string(),
                    dec(&p["qty"]),
                )
            })
            .collect(),
    }
}

/// The broker's client order ids, each asserted to appear once: no order was sent twice.
fn client_order_ids_once(b: &BrokerBook) -> Vec<&str> {
    let ids: Vec<&str> = b
        .orders
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap_or_default())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a client order id twice: {ids:?}");
    ids
}

/// The client order ids of the broker's open orders.
fn open_at_broker(b: &BrokerProcess) -> HashSet<String> {
    let (status, open) = b.call("GET", "/v2/orders?status=open", None);
    assert_eq!(status, 200, "{open}");
    open.as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["client_order_id"].as_str().map(str::to_string))
        .collect()
}

/// While vigil is down, the market moves on at the broker: its clock goes 4 days on, and
/// orders still working there fill behind vigil's back. Returns the fills that made.
fn market_moves_on(b: &BrokerProcess) -> usize {
    let fills_before = broker_book(b).fills.len();
    let (status, clock) = b.call("GET", "/v2/_sim/clock", None);
    assert_eq!(status, 200, "{clock}");
    let Some(now) = clock["now"].as_str() else {
        return 0;
    };
    let now: chrono::DateTime<chrono::Utc> = now.parse().expect("the broker's clock");
    let to = now + chrono::Duration::days(4);
    let (status, moved) = b.call("POST", "/v2/_sim/clock", Some(json!({ "now": to })));
    assert_eq!(status, 200, "{moved}");
    broker_book(b).fills.len() - fills_before
}

/// How each run is killed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kill {
    /// At a random point after it is up.
    Anywhere,
    /// As soon as an order is seen working at the broker (or at a random point if none
    /// shows within 10 s). Then, every other time, the broker's market moves on while vigil
    /// is down (the order fills behind its back); otherwise the order is still working at
    /// the next start.
    WhileWorking,
}

fn crash_loop(kills: usize, how: Kill, pg: Option<&PgTestSchema>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_slice(dir.path(), 300, 40);
    let broker = BrokerProcess::start(dir.path(), &data);
    let cfg = write_config(dir.path(), &data, &broker, pg, "");
    let t0 = Instant::now();
    let (mut behind_back, mut behind_back_tries, mut left_working) = (0, 0, 0);
    for (i, ms) in delays(kills, 300, 2500).into_iter().enumerate() {
        let run = Running::start(&run_args(&cfg));
        // Killed at a random point after it is up: in the warm-up, while trading, or
        // after its end (then the kill finds it gone, which is fine too).
        match how {
            Kill::Anywhere => std::thread::sleep(Duration::from_millis(ms)),
            Kill::WhileWorking => {
                // An order this run sent (one left working by the last is not enough: this
                // run must first have reconciled and adopted it).
                let before = open_at_broker(&broker);
                std::thread::sleep(Duration::from_millis(ms / 10));
                // Bounded, and long enough for a start on a loaded machine.
                let deadline = Instant::now() + Duration::from_secs(10);
                // A bounded poll of the broker (a child process: no simulated clock).
                while open_at_broker(&broker).is_subset(&before) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        // A process that already ended is a zombie until reaped: the signal still lands.
        run.signal("-KILL");
        let out = run.finish();
        assert!(
            out.status.code().is_none() || out.status.success(),
            "run {i} failed before it was killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if how == Kill::WhileWorking && !open_at_broker(&broker).is_empty() {
            // Every other time the order is still working at the next start, to be adopted;
            // until one has filled behind its back, every time (a slow start may see few
            // orders working).
            if behind_back == 0 || behind_back_tries == left_working {
                behind_back_tries += 1;
                behind_back += market_moves_on(&broker);
            } else {
                left_working += 1;
            }
        }
    }
    // The last run goes to the end of the data.
    let out = Running::start(&run_args(&cfg)).finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    let took = t0.elapsed();

    let b = broker_book(&broker);
    // No order was sent twice: every client order id once, and one order per decision.
    let ids = client_order_ids_once(&b);
    assert!(ids.len() >= 5, "too few orders to mean anything: {ids:?}");
    // Every broker fill is in the journal.
    let journaled: HashSet<String> = journal_fills(dir.path(), pg)
        .1
        .into_iter()
        .map(|f| f.fill_id)
        .collect();
    if pg.is_some() {
        assert!(
            !dir.path().join("state/vigil.db").exists(),
            "store.path is not used with store.url"
        );
    }
    let missing: Vec<&str> = b
        .fills
        .iter()
        .filter_map(|f| f["id"].as_str())
        .filter(|id| !journaled.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "broker fills not journaled: {missing:?}"
    );
    assert_eq!(
        journaled.len(),
        b.fills.len(),
        "journal fills that the broker does not hold"
    );
    // The final book is the broker's.
    assert_eq!(dec(&summary["final_cash"]), b.cash, "cash: {summary:#}");
    assert_eq!(positions_of(&summary), b.positions);
    assert_eq!(
        summary["trading_state"], "active",
        "no mismatch ever: {summary:#}"
    );
    // And the journal opens clean: nothing left to reconcile.
    let (code, rec) = reconcile(&cfg);
    assert_eq!(code, 0, "{rec:#}");
    assert_eq!(rec["differences"], json!([]), "{rec:#}");

    // What the restarts found, for docs/recovery.md.
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    let (mut starts, mut adopted, mut recovered) = (0, 0, 0);
    for line in vigil_log_lines(&dir.path().join("logs")) {
        if line["event"] == "reconcile_difference" {
            let kind = line["data"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *found.entry(kind).or_default() += 1;
        }
        if line["event"] == "reconciliation_completed" && line["data"]["trigger"] == "start" {
            starts += 1;
            adopted += line["data"]["open_orders_adopted"].as_u64().unwrap_or(0);
            recovered += line["data"]["fills_recovered"].as_u64().unwrap_or(0);
            assert_eq!(line["data"]["passed"], true, "{line:#}");
        }
    }
    assert!(starts >= 2, "restarts reconciled: {starts}");
    if how == Kill::WhileWorking {
        // The fills made while vigil was down were found at the next start, journaled
        // and booked (the checks above: every broker fill journaled, the same book).
        assert!(behind_back > 0, "no order filled behind vigil's back");
        assert!(
            adopted >= left_working,
            "orders left working {left_working}, adopted at start {adopted}"
        );
        assert!(
            recovered >= behind_back as u64,
            "fills recovered at start {recovered}, filled while down {behind_back}"
        );
    }
    eprintln!(
        "crash loop ({how:?}, {}): {kills} kills, {starts} reconciliations at start, {} \
         orders, {} fills, filled while vigil was down {behind_back}, left working \
         {left_working}, open orders adopted {adopted}, fills recovered {recovered}, \
         differences found {found:?}, duplicates 0, fills lost 0, took {:.1} s",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" },
        ids.len(),
        b.fills.len(),
        took.as_secs_f64()
    );
}

#[test]
fn killed_with_sigkill_at_random_points_vigil_recovers_without_duplicates_or_lost_fills() {
    crash_loop(4, Kill::Anywhere, None);
}

#[test]
fn killed_while_orders_work_that_then_fill_behind_its_back_vigil_journals_those_fills() {
    crash_loop(6, Kill::WhileWorking, None);
}

#[test]
fn with_the_store_in_postgresql_killed_vigil_recovers_the_same_way() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(schema) = rt
        .block_on(PgTestSchema::create(
            "with_the_store_in_postgresql_killed_vigil_recovers_the_same_way",
        ))
        .expect("a schema for the test")
    else {
        return;
    };
    crash_loop(6, Kill::WhileWorking, Some(&schema));
    rt.block_on(schema.drop_schema()).expect("drop the schema");
}

#[test]
#[ignore = "extended suite: 50 kills, a few minutes"]
fn the_extended_crash_loop() {
    let kills = std::env::var("VIGIL_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(50);
    crash_loop(kills, Kill::Anywhere, None);
    crash_loop(kills, Kill::WhileWorking, None);
}

/// The events of `name` in the run's log.
fn events(dir: &Path, name: &str) -> Vec<Value> {
    vigil_log_lines(&dir.join("logs"))
        .into_iter()
        .filter(|l| l["event"] == name)
        .collect()
}

/// GOOG's bundled header and rows 1..=`to`, with rows `skip` left out.
fn goog_rows(dir: &Path, name: &str, to: usize, skip: std::ops::Range<usize>) -> PathBuf {
    let text = std::fs::read_to_string(common::repo("data/GOOG_1d.csv")).expect("GOOG_1d.csv");
    let lines: Vec<&str> = text.lines().collect();
    let kept: Vec<&str> = (0..=to)
        .filter(|i| !skip.contains(i))
        .map(|i| lines[i])
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, kept.join("\n") + "\n").expect("write rows");
    path
}

#[test]
fn after_a_restart_sessions_missing_since_the_last_bar_handled_are_a_data_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = goog_rows(dir.path(), "full.csv", 320, 0..0);
    let broker = BrokerProcess::start(dir.path(), &full);
    // The first run sees the data up to row 300 and ends there.
    let data = dir.path().join("GOOG_1d.csv");
    std::fs::copy(goog_rows(dir.path(), "first.csv", 300, 0..0), &data).expect("first data");
    let cfg = write_config(dir.path(), &data, &broker, None, "");
    Running::start(&run_args(&cfg)).finish_ok();
    assert_eq!(events(dir.path(), "data_gap"), Vec::<Value>::new());

    // The source comes back at row 304 (as a live feed does, from "now"): rows 301..=303
    // are three sessions nobody saw, found only against the journal's last bar.
    std::fs::copy(goog_rows(dir.path(), "second.csv", 320, 1..304), &data).expect("data");
    Running::start(&run_args(&cfg)).finish_ok();
    let gaps = events(dir.path(), "data_gap");
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    let text = std::fs::read_to_string(&full).expect("full");
    let date = |row: usize| text.lines().nth(row).expect("row")[..10].to_string();
    let g = &gaps[0];
    assert_eq!(g["level"], "ERROR");
    assert_eq!(g["data"]["symbol"], "GOOG");
    assert_eq!(g["data"]["after"], date(300), "{g:#}");
    assert_eq!(g["data"]["before"], date(304), "{g:#}");
    assert_eq!(g["data"]["missing"], 3, "{g:#}");
    assert_eq!(
        g["data"]["sessions"],
        [date(301), date(302), date(303)].join(","),
        "{g:#}"
    );
}

#[test]
fn a_trade_made_at_the_broker_by_hand_is_caught_taken_and_restricts_trading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_slice(dir.path(), 300, 40);
    let broker = BrokerProcess::start(dir.path(), &data);
    let cfg = write_config(dir.path(), &data, &broker, None, "");
    let manual = json!({"symbol": "GOOG", "side": "buy", "qty": "7", "price": "300"});

    // While vigil trades: the fill of an order that is not vigil's.
    let run = Running::start(&run_args(&cfg));
    let (status, body) = broker.call("POST", "/v2/_faults/manual_trade", Some(manual.clone()));
    assert_eq!(status, 200, "{body}");
    let out = run.finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    let drift: Vec<Value> = events(dir.path(), "reconcile_difference")
        .into_iter()
        .filter(|e| e["data"]["kind"] == "external_fill")
        .collect();
    assert_eq!(drift.len(), 1, "one external fill: {drift:#?}");
    assert_eq!(drift[0]["level"], "ERROR");
    let mismatch = events(dir.path(), "reconciliation_mismatch");
    assert_eq!(mismatch.len(), 1, "{mismatch:#?}");
    assert_eq!(mismatch[0]["level"], "CRITICAL");
    assert!(
        mismatch[0]["data"]["differences"]
            .as_str()
            .is_some_and(|d| d.contains("BUY 7 GOOG at 300")),
        "{mismatch:#?}"
    );
    assert_eq!(summary["trading_state"], "reduce_only", "{summary:#}");
    let b = broker_book(&broker);
    assert_eq!(
        positions_of(&summary),
        b.positions,
        "the broker's position, manual trade included"
    );
    assert_eq!(dec(&summary["final_cash"]), b.cash);

    // While vigil is down: `vigil reconcile` sees it, and the next start takes it and stays
    // restricted.
    let (status, body) = broker.call("POST", "/v2/_faults/manual_trade", Some(manual));
    assert_eq!(status, 200, "{body}");
    let (code, rec) = reconcile(&cfg);
    assert_eq!(code, 1, "a mismatch: {rec:#}");
    let kinds: Vec<&str> = rec["differences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["external_fill"], "{rec:#}");
    let out = Running::start(&run_args(&cfg)).finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    let at_start: Vec<Value> = events(dir.path(), "reconciliation_completed")
        .into_iter()
        .filter(|e| e["data"]["trigger"] == "start")
        .collect();
    let last = at_start.last().expect("a reconciliation at start");
    assert_eq!(last["data"]["passed"], false, "{last:#}");
    assert_eq!(last["data"]["fills_recovered"], 1, "{last:#}");
    assert_eq!(summary["trading_state"], "reduce_only", "{summary:#}");
    let b = broker_book(&broker);
    assert_eq!(positions_of(&summary), b.positions);
    assert_eq!(dec(&summary["final_cash"]), b.cash);
    // Taken: nothing is left to reconcile.
    let (code, rec) = reconcile(&cfg);
    assert_eq!(code, 0, "{rec:#}");
    assert_eq!(rec["differences"], json!([]), "{rec:#}");
}

#[test]
fn orders_are_held_through_a_broker_outage_and_sent_once_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_slice(dir.path(), 300, 40);
    let broker = BrokerProcess::start(dir.path(), &data);
    let cfg = write_config(dir.path(), &data, &broker, None, "");
    let run = Running::start(&run_args(&cfg));
    // Down for 1.5 s of the run's 3.4: the orders decided meanwhile are held.
    let (status, body) = broker.call("POST", "/v2/_faults/down", Some(json!({"for_ms": 1500})));
    assert_eq!(status, 200, "{body}");
    let out = run.finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");

    let paused = events(dir.path(), "orders_paused");
    assert_eq!(paused.len(), 1, "one outage: {paused:#?}");
    let resumed = events(dir.path(), "orders_resumed");
    assert_eq!(resumed.len(), 1, "{resumed:#?}");
    assert!(
        resumed[0]["data"]["sent"].as_u64().is_some_and(|n| n >= 1),
        "{resumed:#?}"
    );
    let after: Vec<Value> = events(dir.path(), "reconciliation_completed")
        .into_iter()
        .filter(|e| e["data"]["trigger"] == "venue_returned")
        .collect();
    assert_eq!(
        after.len(),
        1,
        "reconciled when the broker returned: {after:#?}"
    );
    assert_eq!(after[0]["data"]["passed"], true, "{after:#?}");

    let b = broker_book(&broker);
    let ids = client_order_ids_once(&b);
    // An order replaced by a newer decision while the broker was down is withdrawn: never
    // sent. Every other order reached the broker once.
    let withdrawn: Vec<String> = events(dir.path(), "order_cancelled")
        .iter()
        .filter(|e| {
            e["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("while the venue was down: never"))
        })
        .filter_map(|e| e["data"]["order_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        resumed[0]["data"]["withdrawn"].as_u64(),
        Some(withdrawn.len() as u64),
        "{resumed:#?}"
    );
    assert!(
        withdrawn.iter().all(|id| !ids.contains(&id.as_str())),
        "a withdrawn order reached the broker: {withdrawn:?}"
    );
    assert_eq!(
        summary["orders"].as_u64(),
        Some((ids.len() + withdrawn.len()) as u64),
        "every order once, or withdrawn unsent: {summary:#}"
    );
    assert_eq!(positions_of(&summary), b.positions);
    assert_eq!(dec(&summary["final_cash"]), b.cash);
    assert_eq!(summary["trading_state"], "active", "{summary:#}");
    assert_eq!(journal_fills(dir.path(), None).1.len(), b.fills.len());
}
