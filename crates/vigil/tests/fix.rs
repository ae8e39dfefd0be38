//! `vigil run` trading through the FIX 4.4 venue against an independent FIX engine: QuickFIX
//! (C++) running `crates/fix/tests/counterparty/acceptor.cpp` on loopback (SKIPPED, saying
//! so, where QuickFIX or g++ is missing; CI installs both). The same crash loop that runs
//! against `vigil broker` (tests/recovery.rs): `vigil run` is killed with SIGKILL at random
//! points and restarted, orders left working fill while it is down, and at the end no order
//! was sent twice, no fill was lost, and the books are the counterparty's.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::broker::{dec, goog_slice};
use common::crash::{delays, journal_fills, positions_of, reconcile};
use common::{Running, run_args, vigil_log_lines};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use vigil_testkit::fix::Counterparty;

const USER: &str = "vigil-user";
const PASSWORD: &str = "fix-password-of-the-test-0123";

/// A paced session trading GOOG's bars through the acceptor: a trading day in 10 ms, limit
/// orders of ten shares (the acceptor fills five at once, the rest rests), reconciled every
/// second of wall time.
fn write_config(dir: &Path, data: &Path, acceptor: &Counterparty) -> PathBuf {
    let secret = dir.join("fix.secret");
    vigil_testkit::write_secret_file(&secret, format!("{PASSWORD}\n"));
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[data]
instruments = [{{ symbol = "GOOG", path = "{data}" }}]
speed = 8640000
batch_size = 1

[signal]
fast_span = 5
slow_span = 15

[risk]
sizing = "fixed_quantity"
fixed_quantity = "10"
regime_size_factor = {{ unknown = "1", trending = "1", ranging = "1", volatile = "1" }}

[execution]
venue = "fix"
order_type = "limit"

[execution.fix]
address = "{address}"
sender_comp_id = "VIGIL"
target_comp_id = "QFACC"
username = "{USER}"
password_file = "{secret}"
account = "ACC-1"
heartbeat_s = 5
reconnect_initial_ms = 50
reconnect_max_ms = 400
reply_timeout_ms = 5000

[execution.reconcile]
interval_s = 1
retry_initial_ms = 50
retry_max_ms = 400
{home}"#,
            data = data.display(),
            address = acceptor.address(),
            secret = secret.display(),
            home = vigil_testkit::config::home_sections(dir, "", ""),
        ),
    )
    .expect("write config");
    cfg
}

/// The acceptor with the test's password: five shares of each order filled at once.
fn acceptor(dir: &Path) -> Option<Counterparty> {
    let secret = dir.join("acceptor.secret");
    vigil_testkit::write_secret_file(&secret, format!("{PASSWORD}\n"));
    Counterparty::start(
        &dir.join("acceptor"),
        &[
            "--partial-above",
            "5",
            "--username",
            USER,
            "--password-file",
            secret.to_str().expect("a path"),
        ],
    )
}

/// Quantity by order.
fn by_order<'a>(rows: impl Iterator<Item = (&'a str, Decimal)>) -> BTreeMap<String, Decimal> {
    let mut out = BTreeMap::new();
    for (order, qty) in rows {
        *out.entry(order.to_string()).or_default() += qty;
    }
    out
}

fn crash_loop(kills: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_slice(dir.path(), 300, 40);
    let Some(acceptor) = acceptor(dir.path()) else {
        return;
    };
    let cfg = write_config(dir.path(), &data, &acceptor);
    let t0 = Instant::now();
    let mut filled_while_down = 0;
    for (i, ms) in delays(kills, 300, 2500).into_iter().enumerate() {
        let run = Running::start(&run_args(&cfg));
        std::thread::sleep(Duration::from_millis(ms));
        run.signal("-KILL");
        let out = run.finish();
        assert!(
            out.status.code().is_none() || out.status.success(),
            "run {i} failed before it was killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every other time, the orders left working fill while vigil is down: their
        // reports wait at the acceptor for the next logon's resend.
        if i % 2 == 0 {
            let fills = acceptor.events("book").len();
            acceptor.signal("-USR1");
            let deadline = Instant::now() + Duration::from_secs(5);
            // A bounded poll of the acceptor (a child process): some fills, or none working.
            while acceptor.events("book").len() == fills && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            filled_while_down += acceptor.events("book").len() - fills;
        }
    }
    // The last run goes to the end of the data.
    let out = Running::start(&run_args(&cfg)).finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    let took = t0.elapsed();

    // No order was sent twice: the acceptor refused no client order id as a duplicate, and
    // took each once (a PossDup resend of one it had is the same order, not a second).
    assert!(
        acceptor.events("duplicate").is_empty(),
        "{:#?}",
        acceptor.events("duplicate")
    );
    let orders: Vec<String> = acceptor
        .events("order")
        .iter()
        .filter(|o| o["possdup"] != true)
        .filter_map(|o| o["clordid"].as_str().map(str::to_string))
        .collect();
    let unique: HashSet<&String> = orders.iter().collect();
    assert_eq!(
        unique.len(),
        orders.len(),
        "a client order id twice: {orders:?}"
    );
    assert!(
        orders.len() >= 5,
        "too few orders to mean anything: {orders:?}"
    );

    // No fill lost, none twice: every execution of the acceptor's is in the journal by its
    // ExecID, except one whose report a kill lost, booked from its order's status instead
    // (`status:`), to the same quantity.
    let sent: Vec<(String, String, Decimal)> = acceptor
        .events("exec")
        .iter()
        .filter(|e| e["exec_type"] == "F")
        .map(|e| {
            (
                e["exec_id"].as_str().expect("ExecID").to_string(),
                e["clordid"].as_str().expect("ClOrdID").to_string(),
                dec(&e["last_qty"]),
            )
        })
        .collect();
    let (book, journaled) = journal_fills(dir.path(), None);
    assert!(book.starts_with("broker:fix://"), "{book}");
    let ids: Vec<&str> = journaled.iter().map(|f| f.fill_id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a fill journaled twice: {ids:?}");
    let from_status = ids.iter().filter(|id| id.starts_with("status:")).count();
    for id in &ids {
        assert!(
            id.starts_with("status:") || sent.iter().any(|(s, _, _)| s == id),
            "journaled fill {id} the acceptor never sent"
        );
    }
    assert_eq!(
        by_order(
            journaled
                .iter()
                .map(|f| (f.client_order_id.as_str(), f.quantity))
        ),
        by_order(sent.iter().map(|(_, o, q)| (o.as_str(), *q))),
        "quantity filled per order: the journal's, then the acceptor's"
    );

    // The final book is the counterparty's.
    let book = acceptor.events("book");
    let last = book.last().expect("the acceptor filled something");
    assert_eq!(
        dec(&summary["final_cash"]),
        dec(&last["cash"]),
        "cash: {summary:#}"
    );
    let positions = positions_of(&summary);
    let theirs: Vec<(String, Decimal)> = last["positions"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(s, q)| (s.clone(), dec(q)))
        .collect();
    assert_eq!(positions, theirs, "positions: {summary:#}");
    assert_eq!(
        summary["trading_state"], "active",
        "no mismatch ever: {summary:#}"
    );

    // And the journal opens clean against the counterparty.
    let (code, rec) = reconcile(&cfg);
    assert_eq!(code, 0, "{rec:#}");
    assert_eq!(rec["differences"], json!([]), "{rec:#}");

    // The session resumed its sequence numbers across every kill: no reset, and QuickFIX
    // never saw a number too low.
    let logons = acceptor.logged("A", "VIGIL");
    assert!(logons > kills, "a logon per run: {logons}");
    assert!(
        filled_while_down > 0,
        "no order filled while vigil was down"
    );
    // What filled while vigil was down came by resend at its next logon.
    let resends = acceptor.logged("2", "VIGIL");
    assert!(resends > 0, "vigil asked for no resend");
    assert!(
        !acceptor
            .quickfix_log("messages")
            .contains("\u{1}141=Y\u{1}"),
        "no sequence reset"
    );
    let logouts = acceptor.logged("5", "VIGIL");
    assert!(
        logouts >= 2,
        "the run to the end and `vigil reconcile` logged out: {logouts}"
    );
    let events = acceptor.quickfix_log("event");
    assert!(!events.contains("MsgSeqNum too low"), "{events}");

    // The password never reached vigil's log; the logon each run made before its log
    // started is in it, with the sequence numbers it resumed at.
    let mut starts = 0;
    let mut early_logons = 0;
    for line in vigil_log_lines(&dir.path().join("logs")) {
        let text = line.to_string();
        assert!(!text.contains(PASSWORD), "the password in the log: {text}");
        if line["event"] == "library_log"
            && line["data"]["target"] == "vigil_fix"
            && line["data"]["message"] == "FIX session logged on"
            && line["data"]["held"].is_string()
            && line["data"]["fields"]
                .as_str()
                .is_some_and(|f| f.contains("next_sender=") && f.contains("next_target="))
        {
            early_logons += 1;
        }
        if line["event"] == "reconciliation_completed" && line["data"]["trigger"] == "start" {
            starts += 1;
            assert_eq!(line["data"]["passed"], true, "{line:#}");
        }
    }
    assert!(starts > kills / 2, "restarts reconciled: {starts}");
    assert!(early_logons >= 1, "no start's logon in the log");
    eprintln!(
        "FIX crash loop: {kills} kills, {starts} reconciliations at start, {} orders, {} fills \
         ({from_status} booked from a status), filled while vigil was down {filled_while_down}, \
         {logons} logons ({early_logons} in vigil's log from before it started), {resends} \
         resend requests, duplicates 0, fills lost 0, took \
         {:.1} s",
        orders.len(),
        sent.len(),
        took.as_secs_f64()
    );
}

#[test]
fn killed_with_sigkill_at_random_points_vigil_trades_through_fix_without_duplicates_or_lost_fills()
{
    crash_loop(4);
}

/// The extended loop: `VIGIL_CRASH_KILLS=50 cargo test -p vigil --test fix -- --ignored`.
#[test]
#[ignore = "extended: VIGIL_CRASH_KILLS kills (default 20)"]
fn the_extended_fix_crash_loop() {
    let kills = std::env::var("VIGIL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    crash_loop(kills);
}
