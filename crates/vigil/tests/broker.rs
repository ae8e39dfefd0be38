//! `vigil broker` as a real child process: its book survives `kill -9` and a restart, its
//! fault injection endpoints work, and a `vigil run` trades through it. Every wait is a
//! bounded poll of the child process.

mod common;

use common::broker::{BrokerProcess, dec, goog_slice, http};
use common::{repo, vigil};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn market_order(id: &str, qty: &str, side: &str) -> Value {
    json!({"symbol": "GOOG", "qty": qty, "side": side, "type": "market",
           "time_in_force": "day", "client_order_id": id})
}

/// What the broker shows of its book.
fn book(b: &BrokerProcess) -> Vec<Value> {
    [
        "/v2/account",
        "/v2/positions",
        "/v2/orders?status=all&limit=500",
        "/v2/account/activities/FILL",
        "/v2/_sim/clock",
    ]
    .iter()
    .map(|p| {
        let (status, body) = b.call("GET", p, None);
        assert_eq!(status, 200, "GET {p}: {body}");
        body
    })
    .collect()
}

#[test]
fn the_broker_process_keeps_its_book_through_kill_9_and_its_faults_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = repo("data/GOOG_1d.csv");
    let broker = BrokerProcess::start(dir.path(), &data);
    let (status, _) = http(&broker.url, "GET", "/v2/account", None, false);
    assert_eq!(status, 401, "no key, no answer");

    broker.call(
        "POST",
        "/v2/_sim/clock",
        Some(json!({"now": "2004-08-20T00:00:00Z"})),
    );
    let (status, placed) = broker.call("POST", "/v2/orders", Some(market_order("k1", "10", "buy")));
    assert_eq!(status, 200, "{placed}");
    let resting = json!({"symbol": "GOOG", "qty": "3", "side": "buy", "type": "limit",
                         "limit_price": "1", "time_in_force": "gtc", "client_order_id": "k2"});
    assert_eq!(broker.call("POST", "/v2/orders", Some(resting)).0, 200);
    broker.call(
        "POST",
        "/v2/_sim/clock",
        Some(json!({"now": "2004-08-24T00:00:00Z"})),
    );
    let before = book(&broker);
    // Filled at the open of the first bar after 2004-08-20.
    assert_eq!(dec(&before[1][0]["qty"]), Decimal::from(10));
    assert_eq!(before[3].as_array().map(Vec::len), Some(1));

    broker.kill9();
    let broker = BrokerProcess::start(dir.path(), &data);
    assert_eq!(
        book(&broker),
        before,
        "the book after kill -9 and a restart"
    );
    let (status, body) = broker.call("POST", "/v2/orders", Some(market_order("k1", "10", "buy")));
    assert_eq!(
        (status, body["message"].as_str()),
        (422, Some("client_order_id must be unique"))
    );
    let (_, open) = broker.call("GET", "/v2/orders", None);
    assert_eq!(open[0]["client_order_id"], "k2");

    // Fault injection.
    broker.call("POST", "/v2/_faults/down", Some(json!({})));
    assert_eq!(broker.call("GET", "/v2/positions", None).0, 503);
    assert_eq!(broker.call("DELETE", "/v2/_faults", None).0, 200);
    assert_eq!(broker.call("GET", "/v2/positions", None).0, 200);
    broker.call(
        "POST",
        "/v2/_faults/reject_next",
        Some(json!({"reason": "halted by the test"})),
    );
    let (status, body) = broker.call("POST", "/v2/orders", Some(market_order("k3", "1", "buy")));
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("halted by the test"))
    );
    let (status, _) = broker.call(
        "POST",
        "/v2/_faults/manual_trade",
        Some(json!({"symbol": "GOOG", "qty": "4", "side": "sell", "price": "100"})),
    );
    assert_eq!(status, 200);
    let (_, positions) = broker.call("GET", "/v2/positions", None);
    assert_eq!(dec(&positions[0]["qty"]), Decimal::from(6));

    // Kept through a kill too.
    let after = book(&broker);
    broker.kill9();
    let broker = BrokerProcess::start(dir.path(), &data);
    assert_eq!(book(&broker), after);
}

#[test]
fn a_vigil_run_trades_through_the_broker_process_and_ends_with_its_book() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_slice(dir.path(), 300, 40);
    let broker = BrokerProcess::start(dir.path(), &data);
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}{}",
            broker.run_sections(dir.path(), &data),
            vigil_testkit::config::home_sections(dir.path(), "", ""),
        ),
    )
    .expect("write config");
    let run = common::run_on(&cfg);
    let out = run.finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    let (_, fills) = broker.call("GET", "/v2/account/activities/FILL?direction=asc", None);
    let fills = fills.as_array().cloned().unwrap_or_default();
    let (_, orders) = broker.call("GET", "/v2/orders?status=all&limit=500", None);
    let (_, account) = broker.call("GET", "/v2/account", None);
    let (_, positions) = broker.call("GET", "/v2/positions", None);

    // Every order vigil sent reached the broker, and every fill came back.
    assert!(
        summary["orders"].as_u64().is_some_and(|n| n >= 5),
        "too few orders to mean anything: {summary:#}"
    );
    assert_eq!(
        orders.as_array().map(Vec::len) as Option<usize>,
        summary["orders"].as_u64().map(|n| n as usize)
    );
    let last_fill = fills
        .last()
        .and_then(|f| f["transaction_time"].as_str())
        .unwrap_or_default();
    assert!(
        last_fill < "2005-12-01",
        "the premise: the last fill ({last_fill}) comes weeks before the last bar (2005-12-21)"
    );
    assert_eq!(
        summary["fills"].as_u64(),
        Some(fills.len() as u64),
        "{summary:#}"
    );
    assert_eq!(summary["venue_rejects"], 0);

    // The broker's book is vigil's final book.
    assert_eq!(
        dec(&account["cash"]),
        dec(&summary["final_cash"]),
        "cash: {account:#} vs {summary:#}"
    );
    let theirs: Vec<(String, Decimal)> = positions
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["symbol"].as_str().unwrap_or_default().to_string(),
                dec(&p["qty"]),
            )
        })
        .collect();
    assert_eq!(theirs, common::crash::positions_of(&summary));
    assert_eq!(dec(&account["equity"]), dec(&summary["final_equity"]));
}

#[test]
fn a_vigil_run_whose_broker_cannot_be_reached_does_not_start_and_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             [execution]\nvenue = \"alpaca\"\nbroker_url = \"http://127.0.0.1:9\"\n\
             broker_timeout_ms = 2000\n[log]\ndir = \"{logs}\"\n[store]\npath = \"{store}\"\n",
            logs = dir.path().join("logs").display(),
            store = dir.path().join("state/vigil.db").display(),
        ),
    )
    .expect("write config");
    let out = vigil()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot start the session: execution venue: venue alpaca: unreachable: GET /v2/account at http://127.0.0.1:9"),
        "{err}"
    );
}
