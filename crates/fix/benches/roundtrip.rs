//! The FIX venue's order round trip against QuickFIX on loopback: NewOrderSingle sent →
//! ExecutionReport New read, one order at a time, the store a SQLite file (every frame and
//! execution written before it counts). `cargo bench -p vigil-fix --bench roundtrip`
//! (needs libquickfix-dev and g++; figures in docs/benchmarks.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal_macros::dec;
use vigil_core::{
    ClientOrderId, OrderAck, OrderRequest, OrderType, SharedClock, Side, Symbol, SymbolTable,
    SystemClock,
};
use vigil_fix::{FixVenue, FixVenueConfig, PositionSource, TimeInForce};
use vigil_providers::ExecutionVenue;
use vigil_store::{StateStore, Store};
use vigil_testkit::fix::Counterparty;

const ORDERS: usize = 500;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(&dir.path().join("acceptor"), &["--hold"]) else {
        return;
    };
    let store: Arc<dyn StateStore> = Arc::new(
        Store::open(&dir.path().join("state.db"))
            .await
            .expect("store"),
    );
    let symbols = SymbolTable::new([Symbol::from("GOOG")]);
    let wall: SharedClock = Arc::new(SystemClock);
    let cfg = FixVenueConfig {
        name: "fix".into(),
        address: acceptor.address(),
        sender_comp_id: "VIGIL".into(),
        target_comp_id: "QFACC".into(),
        credentials: None,
        account: None,
        heartbeat: Duration::from_secs(30),
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        reply_timeout: Duration::from_secs(5),
        time_in_force: TimeInForce::Day,
        positions: PositionSource::Executions,
        position_types: Vec::new(),
        opening_cash: dec!(100000),
        drop_copy: None,
    };
    let venue = FixVenue::connect(cfg, symbols.clone(), store, wall.clone())
        .await
        .expect("log on");
    let mut took = Vec::with_capacity(ORDERS);
    let t0 = Instant::now();
    for i in 0..ORDERS {
        let order = OrderRequest {
            client_order_id: ClientOrderId::from(format!("b-{i}").as_str()),
            symbol: symbols.id("GOOG").expect("GOOG"),
            side: Side::Buy,
            quantity: dec!(1),
            order_type: OrderType::Limit,
            limit_price: Some(dec!(100)),
            submitted_at: wall.now(),
        };
        let t = Instant::now();
        let ack = venue.submit_order(&order).await.expect("submit");
        took.push(t.elapsed());
        assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    }
    let total = t0.elapsed();
    took.sort();
    let pct = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    println!(
        "FIX round trip, {ORDERS} orders one at a time: {:.0} orders/s, p50 {:?}, p99 {:?}, max {:?}",
        ORDERS as f64 / total.as_secs_f64(),
        pct(50),
        pct(99),
        took[took.len() - 1]
    );
}
