//! The broker's HTTP API end to end on loopback: Alpaca's paths and answers, the simulated
//! clock, fault injection, and a restart reading the state file back.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, day};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};

/// A decimal field of an answer.
fn dec(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
}

fn order(id: &str, qty: &str, side: &str, limit: Option<&str>) -> Value {
    let mut o = json!({
        "symbol": "X", "qty": qty, "side": side, "type": "market",
        "time_in_force": "day", "client_order_id": id,
    });
    if let Some(l) = limit {
        o["type"] = json!("limit");
        o["limit_price"] = json!(l);
    }
    o
}

#[test]
fn orders_are_idempotent_by_client_id_and_fill_at_the_next_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), true);
    let api = broker.api(true);
    let anon = broker.api(false);

    let (status, body) = anon.get("/v2/account");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], "request is not authorized");

    // Before any bar: a market order has nothing to fill against.
    let (status, body) = api.post("/v2/orders", order("early", "1", "buy", None));
    assert_eq!(
        (status, body["message"].as_str()),
        (422, Some("no market data for symbol X yet"))
    );

    let (status, body) = api.post("/v2/_sim/clock", json!({"now": day(2)}));
    assert_eq!(
        (status, body["now"].as_str()),
        (200, Some("2024-01-02T00:00:00Z"))
    );
    let (status, placed) = api.post("/v2/orders", order("c1", "10", "buy", None));
    assert_eq!(status, 200, "{placed}");
    assert_eq!(
        (placed["status"].as_str(), placed["qty"].as_str()),
        (Some("new"), Some("10"))
    );

    // The same client order id again: Alpaca's 422, and nothing new.
    let (status, body) = api.post("/v2/orders", order("c1", "99", "buy", None));
    assert_eq!(
        (status, body["message"].as_str()),
        (422, Some("client_order_id must be unique"))
    );
    let (_, all) = api.get("/v2/orders?status=all");
    let ids: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|o| o["client_order_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["c1", "early"]);
    let (status, found) = api.get("/v2/orders:by_client_order_id?client_order_id=c1");
    assert_eq!((status, &found["id"]), (200, &placed["id"]));

    // The next bar's open, 101, plus 10 bps; commission 5 bps of 1011.01 is below the 1 minimum.
    let (_, account) = api.get_at("/v2/account", &day(3));
    assert_eq!(dec(&account["cash"]), dec!(98987.99));
    let (_, fills) = api.get("/v2/account/activities/FILL");
    let f = &fills[0];
    assert_eq!(
        (
            f["price"].as_str(),
            f["qty"].as_str(),
            f["commission"].as_str(),
            f["type"].as_str(),
            f["leaves_qty"].as_str(),
            f["cum_qty"].as_str()
        ),
        (
            Some("101.101"),
            Some("10"),
            Some("1"),
            Some("fill"),
            Some("0"),
            Some("10")
        )
    );
    assert_eq!(
        (&f["order_id"], f["transaction_time"].as_str()),
        (&placed["id"], Some("2024-01-03T00:00:00Z"))
    );
    let (_, positions) = api.get("/v2/positions");
    assert_eq!(
        (
            positions[0]["qty"].as_str(),
            positions[0]["avg_entry_price"].as_str()
        ),
        (Some("10"), Some("101.101"))
    );

    // Paging: fills after the last one seen.
    api.post("/v2/orders", order("c2", "4", "sell", None));
    api.post("/v2/_sim/clock", json!({"now": day(4)}));
    let (_, first) = api.get("/v2/account/activities/FILL?direction=asc&page_size=1");
    let token = first[0]["id"].as_str().expect("id");
    let (_, next) = api.get(&format!(
        "/v2/account/activities/FILL?direction=asc&page_token={token}"
    ));
    assert_eq!(
        (next.as_array().map(Vec::len), next[0]["side"].as_str()),
        (Some(1), Some("sell"))
    );
    let last = next[0]["id"].as_str().expect("id");
    let (_, none) = api.get(&format!(
        "/v2/account/activities/FILL?direction=asc&page_token={last}"
    ));
    assert_eq!(none, json!([]));
    let (status, _) = api.get("/v2/account/activities/FILL?page_token=nope");
    assert_eq!(status, 422);

    // Refusals: kept when the order itself is understood, not when it is malformed.
    let (status, body) = api.post("/v2/orders", order("q0", "0", "buy", None));
    assert_eq!(
        (status, body["message"].as_str()),
        (422, Some("qty 0 is not positive"))
    );
    let (_, kept) = api.get("/v2/orders:by_client_order_id?client_order_id=q0");
    assert_eq!(kept["status"], "rejected");
    let (status, body) = api.post("/v2/orders", 
            json!({"symbol": "X", "qty": "1", "side": "buy", "type": "stop", "time_in_force": "day", "client_order_id": "st"}),
        );
    assert_eq!(status, 422, "{body}");
    let (status, _) = api.get("/v2/orders:by_client_order_id?client_order_id=st");
    assert_eq!(status, 404);

    // Cancels: a working order once; a filled one is not cancelable; an unknown one is 404.
    let (_, resting) = api.post("/v2/orders", order("rest", "1", "buy", Some("50")));
    let rid = resting["id"].as_str().expect("id");
    let (status, _) = api.delete(&format!("/v2/orders/{rid}"));
    assert_eq!(status, 204);
    let (status, body) = api.delete(&format!("/v2/orders/{rid}"));
    assert_eq!(
        (status, body["message"].as_str()),
        (422, Some("order is already in \"canceled\" state"))
    );
    let (status, _) = api.delete("/v2/orders/nope");
    assert_eq!(status, 404);
    let (_, open) = api.get("/v2/orders");
    assert_eq!(open, json!([]));

    let (status, body) = api.get_at("/v2/account", "yesterday");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().is_some_and(
            |m| m.starts_with("X-Vigil-Market-Time: \"yesterday\" is not an RFC 3339 time")
        ),
        "{body}"
    );

    // The clock never goes back.
    let (_, clock) = api.post("/v2/_sim/clock", json!({"now": day(2)}));
    assert_eq!(clock["now"], "2024-01-04T00:00:00Z");
    drop(broker);
}

#[test]
fn faults_down_slow_reject_partial_and_a_manual_trade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), false);
    let api = broker.api(false);
    api.post("/v2/_sim/clock", json!({"now": day(2)}));

    let (status, view) = api.post("/v2/_faults/down", json!({}));
    assert_eq!((status, &view["down"]), (200, &json!(true)));
    let (status, body) = api.get_at("/v2/account", &day(3));
    assert_eq!(
        (status, body["message"].as_str()),
        (503, Some("the broker is down (fault injection)"))
    );
    // Down, the clock did not move.
    let (_, clock) = api.get("/v2/_sim/clock");
    assert_eq!(clock["now"], "2024-01-02T00:00:00Z");
    let (status, _) = api.delete("/v2/_faults");
    assert_eq!(status, 200);
    assert_eq!(api.get("/v2/account").0, 200);

    // Down for a while: back by itself.
    api.post("/v2/_faults/down", json!({"for_ms": 200}));
    assert_eq!(api.get("/v2/account").0, 503);
    let end = Instant::now() + Duration::from_secs(5);
    while api.get("/v2/account").0 == 503 {
        assert!(Instant::now() < end, "still down after 5 s");
        std::thread::sleep(Duration::from_millis(50));
    }

    api.post("/v2/_faults/slow", json!({"delay_ms": 150}));
    let t0 = Instant::now();
    assert_eq!(api.get("/v2/positions").0, 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    api.post("/v2/_faults/slow", json!({"delay_ms": 0}));

    api.post(
        "/v2/_faults/reject_next",
        json!({"count": 1, "reason": "insufficient buying power"}),
    );
    let (status, body) = api.post("/v2/orders", order("r1", "1", "buy", None));
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("insufficient buying power"))
    );
    let (status, _) = api.post("/v2/orders", order("r2", "1", "buy", None));
    assert_eq!(status, 200);

    let (status, _) = api.post("/v2/_faults/partial", json!({"fraction": "0.5"}));
    assert_eq!(status, 200);
    let (_, placed) = api.post("/v2/orders", order("p", "10", "buy", None));
    api.get_at("/v2/account", &day(3));
    let (_, working) = api.get(&format!(
        "/v2/orders/{}",
        placed["id"].as_str().expect("id")
    ));
    assert_eq!(
        (working["status"].as_str(), dec(&working["filled_qty"])),
        (Some("partially_filled"), dec!(5))
    );
    api.get_at("/v2/account", &day(4));
    let (_, done) = api.get("/v2/orders:by_client_order_id?client_order_id=p");
    assert_eq!(
        (done["status"].as_str(), dec(&done["filled_qty"])),
        (Some("filled"), dec!(10))
    );
    let (status, _) = api.post("/v2/_faults/partial", json!({"fraction": "2"}));
    assert_eq!(status, 422);

    let (status, fill) = api.post(
        "/v2/_faults/manual_trade",
        json!({"symbol": "X", "qty": "3", "side": "sell", "price": "120"}),
    );
    assert_eq!(status, 200, "{fill}");
    let (_, by_id) = api.get(&format!(
        "/v2/orders/{}",
        fill["order_id"].as_str().expect("order id")
    ));
    assert!(
        by_id["client_order_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("manual-")),
        "{by_id}"
    );
    let (_, positions) = api.get("/v2/positions");
    // 1 (r2) + 10 (p) − 3 (manual).
    assert_eq!(dec(&positions[0]["qty"]), dec!(8));
    let (_, newest) = api.get("/v2/account/activities/FILL?page_size=1");
    assert_eq!(newest[0]["id"], fill["id"]);
    let (status, _) = api.post("/v2/_faults/nope", json!({}));
    assert_eq!(status, 404);
    drop(broker);
}

/// Everything the broker shows of its book.
fn book(api: &common::Api<'_>) -> Vec<Value> {
    [
        "/v2/account",
        "/v2/positions",
        "/v2/orders?status=all",
        "/v2/account/activities/FILL",
        "/v2/_sim/clock",
    ]
    .iter()
    .map(|p| api.get(p).1)
    .collect()
}

#[test]
fn a_restarted_broker_reads_its_book_back_from_the_state_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), false);
    let api = broker.api(false);
    api.post("/v2/_sim/clock", json!({"now": day(2)}));
    api.post("/v2/orders", order("a", "10", "buy", None));
    api.post("/v2/orders", order("b", "2", "sell", Some("500")));
    api.get_at("/v2/account", &day(3));
    let before = book(&api);
    drop(broker);

    let again = Broker::start(dir.path(), false);
    let api = again.api(false);
    assert_eq!(book(&api), before);
    // The working limit order is still working and the duplicate check still holds.
    let (status, _) = api.post("/v2/orders", order("a", "10", "buy", None));
    assert_eq!(status, 422);
    let (_, open) = api.get("/v2/orders");
    assert_eq!(open[0]["client_order_id"], "b");
}
