//! The FIX venue against an independent FIX engine: QuickFIX (C++) running
//! `tests/counterparty/acceptor.cpp` on loopback (SKIPPED, saying so, where QuickFIX or g++
//! is missing; CI installs both). The store is a real SQLite file. Every wait is a bounded
//! poll of the venue, which a real counterparty feeds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use vigil_core::{
    ClientOrderId, ExecutionReport, OrderAck, OrderRequest, OrderStatus, OrderType, SharedClock,
    Side, Symbol, SymbolId, SymbolTable, SystemClock,
};
use vigil_fix::{DropCopy, FixError, FixVenue, FixVenueConfig, PositionSource, TimeInForce};
use vigil_providers::{ExecutionVenue, VenueError};
use vigil_store::{StateStore, Store};
use vigil_testkit::fix::Counterparty;

const OPENING_CASH: Decimal = dec!(100000);

fn symbols() -> SymbolTable {
    SymbolTable::new(["GOOG", "REJ", "REST", "SPLIT"].map(Symbol::from))
}

fn sym(name: &str) -> SymbolId {
    symbols().id(name).expect("a symbol of the table")
}

fn config(acceptor: &Counterparty) -> FixVenueConfig {
    FixVenueConfig {
        name: "fix".into(),
        address: acceptor.address(),
        sender_comp_id: "VIGIL".into(),
        target_comp_id: "QFACC".into(),
        credentials: None,
        account: Some("ACC-1".into()),
        heartbeat: Duration::from_secs(5),
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        reply_timeout: Duration::from_secs(5),
        time_in_force: TimeInForce::Day,
        positions: PositionSource::Counterparty,
        position_types: Vec::new(),
        opening_cash: OPENING_CASH,
        drop_copy: None,
    }
}

async fn store(dir: &Path) -> Arc<dyn StateStore> {
    Arc::new(
        Store::open(&dir.join("state.db"))
            .await
            .expect("open the store"),
    )
}

async fn connect(cfg: FixVenueConfig, store: Arc<dyn StateStore>) -> FixVenue {
    let wall: SharedClock = Arc::new(SystemClock);
    FixVenue::connect(cfg, symbols(), store, wall)
        .await
        .expect("log on to the acceptor")
}

fn order(id: &str, symbol: &str, side: Side, qty: Decimal, limit: Option<Decimal>) -> OrderRequest {
    OrderRequest {
        client_order_id: ClientOrderId::from(id),
        symbol: sym(symbol),
        side,
        quantity: qty,
        order_type: if limit.is_some() {
            OrderType::Limit
        } else {
            OrderType::Market
        },
        limit_price: limit,
        submitted_at: chrono::DateTime::parse_from_rfc3339("2019-03-04T15:30:00Z")
            .expect("time")
            .to_utc(),
    }
}

/// Drains the venue's reports until `done` holds of all drained so far (bounded).
async fn reports_until(
    venue: &FixVenue,
    seen: &mut Vec<ExecutionReport>,
    what: &str,
    done: impl Fn(&[ExecutionReport]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        venue.drain_reports(seen);
        if done(seen) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: only {seen:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn filled(reports: &[ExecutionReport], id: &str) -> Decimal {
    reports
        .iter()
        .filter_map(|r| match r {
            ExecutionReport::Fill(f) if f.client_order_id.as_str() == id => Some(f.quantity),
            _ => None,
        })
        .sum()
}

fn fill_ids(reports: &[ExecutionReport]) -> Vec<String> {
    reports
        .iter()
        .filter_map(|r| match r {
            ExecutionReport::Fill(f) => Some(f.fill_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn orders_are_filled_partly_filled_rejected_and_cancelled_by_quickfix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(
        &dir.path().join("acceptor"),
        &[
            "--partial-above",
            "100",
            "--market-price",
            "50",
            "--commission",
            "0.35",
        ],
    ) else {
        return;
    };
    let venue = connect(config(&acceptor), store(dir.path()).await).await;
    let mut seen = Vec::new();

    // A market order, filled whole at the acceptor's price.
    let ack = venue
        .submit_order(&order("m-1", "GOOG", Side::Buy, dec!(10), None))
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    reports_until(&venue, &mut seen, "m-1 filled", |r| {
        filled(r, "m-1") == dec!(10)
    })
    .await;
    let ExecutionReport::Fill(fill) = &seen[0] else {
        panic!("{seen:?}");
    };
    assert_eq!(
        (fill.price, fill.commission, fill.side),
        (dec!(50), dec!(0.35), Side::Buy)
    );
    assert_eq!(fill.leaves_quantity, Decimal::ZERO);
    assert_eq!(
        fill.ts.to_rfc3339(),
        "2019-03-04T15:30:00+00:00",
        "the fill carries the order's market time"
    );

    // A limit order of 150: 100 filled at its price, 50 left working.
    let ack = venue
        .submit_order(&order(
            "l-1",
            "GOOG",
            Side::Buy,
            dec!(150),
            Some(dec!(101.25)),
        ))
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    reports_until(&venue, &mut seen, "l-1 partly filled", |r| {
        filled(r, "l-1") == dec!(100)
    })
    .await;

    // Refused, with the counterparty's reason.
    let ack = venue
        .submit_order(&order("r-1", "REJ", Side::Sell, dec!(5), Some(dec!(10))))
        .await
        .expect("submit");
    let OrderAck::Rejected { reason } = ack else {
        panic!("{ack:?}");
    };
    assert!(reason.contains("REJ"), "{reason}");

    // A resting order, cancelled.
    let ack = venue
        .submit_order(&order("c-1", "REST", Side::Sell, dec!(7), Some(dec!(20))))
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    venue
        .cancel_order(&ClientOrderId::from("c-1"))
        .await
        .expect("cancel");
    reports_until(&venue, &mut seen, "c-1 cancelled", |r| {
        r.iter().any(|r| {
            matches!(r, ExecutionReport::Cancelled { client_order_id, .. }
                if client_order_id.as_str() == "c-1")
        })
    })
    .await;
    // An order it never had: unknown, said clearly.
    let err = venue
        .cancel_order(&ClientOrderId::from("never"))
        .await
        .expect_err("nothing to cancel");
    assert!(matches!(err, VenueError::UnknownOrder { .. }), "{err}");

    // The same client order id again creates nothing: a duplicate, with what it holds.
    let ack = venue
        .submit_order(&order("m-1", "GOOG", Side::Buy, dec!(10), None))
        .await
        .expect("submit");
    let OrderAck::Duplicate {
        status,
        filled_quantity,
        ..
    } = ack
    else {
        panic!("{ack:?}");
    };
    assert_eq!((status, filled_quantity), (OrderStatus::Filled, dec!(10)));

    // Where orders stand, as the counterparty says.
    let l1 = venue
        .order(&ClientOrderId::from("l-1"))
        .await
        .expect("status")
        .expect("known");
    assert_eq!(
        (l1.status, l1.filled_quantity, l1.request.quantity),
        (OrderStatus::PartiallyFilled, dec!(100), dec!(150))
    );
    assert_eq!(
        venue
            .order(&ClientOrderId::from("never"))
            .await
            .expect("status"),
        None,
        "never sent: not asked"
    );
    let open = venue.open_orders().await.expect("open orders");
    assert_eq!(
        open.iter()
            .map(|o| o.request.client_order_id.as_str())
            .collect::<Vec<_>>(),
        ["l-1"]
    );

    // Positions from the counterparty's PositionReports; cash from the executions.
    let positions = venue.positions().await.expect("positions");
    assert_eq!(positions.len(), 1, "{positions:?}");
    assert_eq!(
        (positions[0].symbol, positions[0].quantity),
        (sym("GOOG"), dec!(110))
    );
    let account = venue.account().await.expect("account");
    let cash = OPENING_CASH - dec!(10) * dec!(50) - dec!(100) * dec!(101.25) - dec!(0.70);
    assert_eq!(account.cash, cash);
    let book = acceptor.events("book");
    assert_eq!(
        book.last().expect("the acceptor's book")["cash"],
        cash.normalize().to_string(),
        "the acceptor's cash is vigil's"
    );
    venue.ping().await.expect("nothing went wrong");

    // Every order reached the acceptor once (the duplicate was refused there, not created).
    let orders = acceptor.events("order");
    let ids: Vec<&str> = orders
        .iter()
        .filter_map(|o| o["clordid"].as_str())
        .collect();
    assert_eq!(ids, ["m-1", "l-1", "r-1", "c-1", "m-1"]);
    assert_eq!(acceptor.events("duplicate").len(), 1);
}

#[tokio::test]
async fn a_fill_cut_by_a_disconnect_is_recovered_by_resend_and_a_restart_resumes_the_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(&dir.path().join("acceptor"), &[]) else {
        return;
    };
    let kept = store(dir.path()).await;
    let venue = connect(config(&acceptor), kept.clone()).await;
    let mut seen = Vec::new();

    // Half filled, then the acceptor drops the session and fills the rest while it is
    // down: the rest comes by resend when the venue logs on again by itself.
    let ack = venue
        .submit_order(&order("s-1", "SPLIT", Side::Buy, dec!(9), Some(dec!(12.5))))
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    reports_until(&venue, &mut seen, "s-1 filled after a resend", |r| {
        filled(r, "s-1") >= dec!(9)
    })
    .await;
    assert_eq!(filled(&seen, "s-1"), dec!(9), "no fill twice: {seen:#?}");
    let ids = fill_ids(&seen);
    let sent: Vec<String> = acceptor
        .events("exec")
        .iter()
        .filter(|e| e["exec_type"] == "F")
        .filter_map(|e| e["exec_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        ids, sent,
        "each of the acceptor's fills booked once, by its ExecID"
    );
    assert!(
        acceptor.logged("2", "VIGIL") >= 1,
        "the rest of the fill came by a ResendRequest of vigil's"
    );

    // An order resting when the venue goes away (a restart), filled while it is away.
    venue
        .submit_order(&order("w-1", "REST", Side::Sell, dec!(3), Some(dec!(20))))
        .await
        .expect("submit");
    let before = kept
        .fix_sequences("FIX.4.4:VIGIL->QFACC")
        .await
        .expect("read")
        .expect("the session's sequence numbers are kept");
    drop(venue);
    assert_eq!(
        acceptor.logged("5", "VIGIL"),
        1,
        "the venue dropped logged out, and was acknowledged before it returned"
    );
    acceptor.signal("-USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while acceptor
        .events("exec")
        .iter()
        .all(|e| e["clordid"] != "w-1" || e["exec_type"] != "F")
    {
        assert!(Instant::now() < deadline, "the acceptor did not fill w-1");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let venue = connect(config(&acceptor), kept.clone()).await;
    let mut after_restart = Vec::new();
    // The journal holds everything before the restart: nothing is queued again.
    venue.resume_reports_after(ids.last().map(String::as_str));
    reports_until(&venue, &mut after_restart, "w-1's fill recovered", |r| {
        filled(r, "w-1") == dec!(3)
    })
    .await;
    assert_eq!(
        filled(&after_restart, "s-1"),
        Decimal::ZERO,
        "{after_restart:#?}"
    );
    let now = kept
        .fix_sequences("FIX.4.4:VIGIL->QFACC")
        .await
        .expect("read")
        .expect("kept");
    assert!(
        now.next_sender > before.next_sender && now.next_target > before.next_target,
        "the session resumed its sequence numbers: {before:?} then {now:?}"
    );
    assert_eq!(now.created_at, before.created_at, "no reset");
    // Positions from the executions agree with the counterparty's.
    let mut cfg = config(&acceptor);
    cfg.positions = PositionSource::Executions;
    drop(venue);
    let venue = connect(cfg, kept).await;
    let mut mine = venue.positions().await.expect("positions");
    mine.sort_by_key(|p| p.symbol.0);
    assert_eq!(
        mine.iter()
            .map(|p| (p.symbol, p.quantity))
            .collect::<Vec<_>>(),
        [(sym("REST"), dec!(-3)), (sym("SPLIT"), dec!(9))]
    );
    assert_eq!(
        venue.account().await.expect("account").cash,
        OPENING_CASH - dec!(9) * dec!(12.5) + dec!(3) * dec!(20)
    );
}

#[tokio::test]
async fn the_logon_carries_the_password_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("fix.secret");
    vigil_testkit::write_secret_file(&secret, "s3cret-pw\n");
    let Some(acceptor) = Counterparty::start(
        &dir.path().join("acceptor"),
        &[
            "--username",
            "vigil-user",
            "--password-file",
            secret.to_str().expect("a path"),
        ],
    ) else {
        return;
    };
    let kept = store(dir.path()).await;
    let mut cfg = config(&acceptor);
    cfg.credentials = Some(("vigil-user".into(), "wrong".into()));
    let wall: SharedClock = Arc::new(SystemClock);
    let err = FixVenue::connect(cfg.clone(), symbols(), kept.clone(), wall.clone())
        .await
        .expect_err("a wrong password is refused");
    assert!(matches!(err, FixError::Logon { .. }), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "no password in errors: {err}"
    );
    cfg.credentials = Some(("vigil-user".into(), "s3cret-pw".into()));
    let venue = FixVenue::connect(cfg, symbols(), kept, wall)
        .await
        .expect("the right one logs on");
    venue.ping().await.expect("logged on");
    assert!(
        !format!("{venue:?}").contains("s3cret"),
        "the password is not in the venue's debug view"
    );
}

/// A broker that reports a position as two amounts, held at the start of the day (SOD) and
/// traded since (TQ): read without `position_types` it is refused, naming the types, never
/// guessed at; with `["SOD", "TQ"]` the two add up to the position now.
#[tokio::test]
async fn positions_reported_by_type_are_added_up_as_configured_and_never_guessed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(
        &dir.path().join("acceptor"),
        &["--start-of-day", "GOOG=40", "--market-price", "50"],
    ) else {
        return;
    };
    let kept = store(dir.path()).await;
    let venue = connect(config(&acceptor), kept.clone()).await;
    let mut seen = Vec::new();
    venue
        .submit_order(&order("sod-1", "GOOG", Side::Sell, dec!(15), None))
        .await
        .expect("submit");
    reports_until(&venue, &mut seen, "sod-1 filled", |r| {
        filled(r, "sod-1") == dec!(15)
    })
    .await;

    let err = venue
        .positions()
        .await
        .expect_err("two amounts and no choice between them");
    let why = err.to_string();
    assert!(
        matches!(err, VenueError::BadResponse { .. })
            && why.contains("GOOG")
            && why.contains("SOD, TQ")
            && why.contains("position_types"),
        "{why}"
    );
    venue.close().await;
    drop(venue);

    let mut cfg = config(&acceptor);
    cfg.position_types = vec!["SOD".into(), "TQ".into()];
    let venue = connect(cfg.clone(), kept.clone()).await;
    let positions = venue.positions().await.expect("positions");
    assert_eq!(
        positions
            .iter()
            .map(|p| (p.symbol, p.quantity))
            .collect::<Vec<_>>(),
        [(sym("GOOG"), dec!(25))],
        "40 held at the start less 15 sold"
    );
    venue.close().await;
    drop(venue);

    cfg.position_types = vec!["FIN".into()];
    let venue = connect(cfg, kept).await;
    let why = venue
        .positions()
        .await
        .expect_err("none of the configured types")
        .to_string();
    assert!(why.contains("none of") && why.contains("[FIN]"), "{why}");
}

/// The engine saves the next expected sequence number before it hands a message over: a
/// crash between the two loses the report, and no resend brings it back. The venue asks
/// where every order it sent stands after each logon, and books what it finds, once.
#[tokio::test]
async fn a_report_lost_in_a_crash_is_booked_once_from_the_orders_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(&dir.path().join("acceptor"), &[]) else {
        return;
    };
    let kept = store(dir.path()).await;
    let session = "FIX.4.4:VIGIL->QFACC";
    let venue = connect(config(&acceptor), kept.clone()).await;
    let ack = venue
        .submit_order(&order("w-1", "REST", Side::Buy, dec!(4), Some(dec!(30))))
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    drop(venue);
    // Filled while vigil is down, under the acceptor's next sequence number …
    acceptor.signal("-USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while acceptor.events("book").is_empty() {
        assert!(Instant::now() < deadline, "the acceptor did not fill w-1");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // … which the store says was received (the crash came after the number was saved).
    let s = kept
        .fix_sequences(session)
        .await
        .expect("read")
        .expect("kept");
    kept.fix_set_sequences(session, s.next_sender, s.next_target + 1, s.created_at)
        .await
        .expect("set");

    let venue = connect(config(&acceptor), kept.clone()).await;
    venue.resume_reports_after(None);
    let mut seen = Vec::new();
    reports_until(&venue, &mut seen, "w-1 booked from its status", |r| {
        filled(r, "w-1") == dec!(4)
    })
    .await;
    assert_eq!(acceptor.logged("2", "VIGIL"), 0, "no resend could bring it");
    let ExecutionReport::Fill(f) = &seen[0] else {
        panic!("{seen:?}");
    };
    assert_eq!((f.fill_id.as_str(), f.price), ("status:w-1:4", dec!(30)));
    let said = venue
        .ping()
        .await
        .expect_err("the venue says what it booked");
    assert!(
        said.to_string().contains("booked from its status"),
        "{said}"
    );

    // Once: the next life finds it kept and asks nothing it does not need.
    drop(venue);
    let venue = connect(config(&acceptor), kept).await;
    venue.resume_reports_after(Some("status:w-1:4"));
    venue
        .sync_reports()
        .await
        .expect("a round trip behind the logon's checks");
    let mut again = Vec::new();
    venue.drain_reports(&mut again);
    assert!(again.is_empty(), "{again:?}");
    venue.ping().await.expect("nothing more to say");
}

/// A NewOrderSingle frame as the engine files it: header, body, checksum.
fn new_order_frame(seq: u64, body: &str) -> Vec<u8> {
    let sent = chrono::Utc::now().format("%Y%m%d-%H:%M:%S%.3f");
    let body = format!("35=D\u{1}49=VIGIL\u{1}56=QFACC\u{1}34={seq}\u{1}52={sent}\u{1}{body}");
    let head = format!("8=FIX.4.4\u{1}9={}\u{1}{body}", body.len());
    let sum = head.bytes().map(u32::from).sum::<u32>() % 256;
    format!("{head}10={sum:03}\u{1}").into_bytes()
}

/// A crash between filing a message and writing it leaves the counterparty a number short:
/// it asks for it at the next logon, and vigil resends it from its store (PossDup). A
/// gateway that keeps no positions refuses the request with a BusinessMessageReject: a
/// clear error, at once.
#[tokio::test]
async fn the_counterparty_asks_vigil_to_resend_what_a_crash_left_unwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(&dir.path().join("acceptor"), &["--no-positions"])
    else {
        return;
    };
    let kept = store(dir.path()).await;
    let session = "FIX.4.4:VIGIL->QFACC";
    let venue = connect(config(&acceptor), kept.clone()).await;
    let t0 = Instant::now();
    let err = venue
        .positions()
        .await
        .expect_err("no positions at this gateway");
    assert!(
        matches!(&err, VenueError::BadResponse { reason, .. }
            if reason.contains("refused our AN") && reason.contains("unsupported message type")),
        "{err}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "answered, not timed out"
    );
    venue.ping().await.expect("the session is still up");
    drop(venue);

    // Filed under the next number, never written: the crash came in between.
    let s = kept
        .fix_sequences(session)
        .await
        .expect("read")
        .expect("kept");
    let frame = new_order_frame(
        s.next_sender,
        "11=g-2\u{1}1=ACC-1\u{1}21=1\u{1}55=GOOG\u{1}54=1\u{1}60=20190304-15:31:00.000\u{1}\
         38=3\u{1}40=2\u{1}44=25\u{1}59=0\u{1}",
    );
    let filed = vigil_store::FixSentMessage {
        seq: s.next_sender,
        msg_type: "D".into(),
        frame,
    };
    kept.fix_sent(session, &filed, s.next_sender + 1, s.created_at)
        .await
        .expect("file it");

    let venue = connect(config(&acceptor), kept).await;
    let mut seen = Vec::new();
    reports_until(&venue, &mut seen, "g-2 filled after its resend", |r| {
        filled(r, "g-2") == dec!(3)
    })
    .await;
    assert!(
        acceptor.logged("2", "QFACC") >= 1,
        "the acceptor asked for a resend"
    );
    let orders = acceptor.events("order");
    let g2: Vec<&serde_json::Value> = orders.iter().filter(|o| o["clordid"] == "g-2").collect();
    assert_eq!(g2.len(), 1, "{orders:?}");
    assert_eq!(g2[0]["possdup"], true, "resent as a possible duplicate");
    let order = venue
        .order(&ClientOrderId::from("g-2"))
        .await
        .expect("status")
        .expect("known, as vigil filed it");
    assert_eq!(
        (order.status, order.filled_quantity),
        (OrderStatus::Filled, dec!(3))
    );
}

/// With a drop copy, positions and cash add up every execution of the account the broker
/// copies on it, a trade made by hand at the broker included, and a restart recovers the
/// copies sent while vigil was down by resend.
#[tokio::test]
async fn with_a_drop_copy_positions_and_cash_include_a_trade_made_by_hand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(acceptor) = Counterparty::start(
        &dir.path().join("acceptor"),
        &[
            "--drop-copy-target",
            "VIGILDC",
            "--market-price",
            "50",
            "--manual-qty",
            "7",
            "--manual-price",
            "40",
        ],
    ) else {
        return;
    };
    let kept = store(dir.path()).await;
    let mut cfg = config(&acceptor);
    cfg.positions = PositionSource::Executions;
    cfg.drop_copy = Some(DropCopy {
        sender_comp_id: "VIGILDC".into(),
        target_comp_id: "QFACC".into(),
    });
    let venue = connect(cfg.clone(), kept.clone()).await;
    let ack = venue
        .submit_order(&order("d-1", "GOOG", Side::Buy, dec!(10), None))
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
    let mut seen = Vec::new();
    reports_until(&venue, &mut seen, "d-1 filled", |r| {
        filled(r, "d-1") == dec!(10)
    })
    .await;
    // Read from the copies, once they hold the fill the order session brought.
    let held = |p: Vec<vigil_providers::VenuePosition>| {
        p.iter().map(|p| (p.symbol, p.quantity)).collect::<Vec<_>>()
    };
    assert_eq!(
        held(venue.positions().await.expect("positions")),
        [(sym("GOOG"), dec!(10))]
    );
    assert_eq!(
        venue.account().await.expect("account").cash,
        OPENING_CASH - dec!(500)
    );

    // A trade made by hand at the broker: on the drop copy only.
    acceptor.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(15);
    while held(venue.positions().await.expect("positions")) != [(sym("GOOG"), dec!(17))] {
        assert!(Instant::now() < deadline, "the manual trade never showed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cash = OPENING_CASH - dec!(500) - dec!(280);
    assert_eq!(venue.account().await.expect("account").cash, cash);
    let mut none = Vec::new();
    venue.drain_reports(&mut none);
    assert!(
        none.is_empty(),
        "not vigil's order: not booked as a fill: {none:?}"
    );

    // Another while vigil is down: its copy comes by resend at the next logon.
    drop(venue);
    acceptor.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while acceptor.events("drop_copy").len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the acceptor made no second manual trade"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let venue = connect(cfg, kept).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while held(venue.positions().await.expect("positions")) != [(sym("GOOG"), dec!(24))] {
        assert!(
            Instant::now() < deadline,
            "the copy sent while vigil was down never came"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cash = cash - dec!(280);
    assert_eq!(venue.account().await.expect("account").cash, cash);
    assert_eq!(
        acceptor.events("book").last().expect("the acceptor's book")["cash"],
        cash.normalize().to_string(),
        "the broker's cash is vigil's"
    );
    assert!(
        acceptor.logged("2", "VIGILDC") >= 1,
        "the drop copy asked for a resend"
    );
}
