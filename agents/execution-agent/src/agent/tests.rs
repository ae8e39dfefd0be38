use std::time::Duration;

use rust_decimal_macros::dec;
use vigil_core::{AgentState, Bar, OrderType, Regime, SharedClock, SimClock, Symbol};
use vigil_log::{LogSink, MemoryLog, Value};
use vigil_providers::{FillModel, PaperVenue, PaperVenueConfig};
use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t, wiring};

use vigil_core::{ClientOrderId, OrderAck, OrderRequest, Side};
use vigil_log::LogContext;
use vigil_messages::{AgentFault, Heartbeat, NextReport, OpenOrderView};

use super::*;

record_enum! {
    /// What the Execution agent sent to the Data agent and the Monitor, in arrival order.
    #[derive(Debug)]
    enum Got {
        Done(BatchDone),
        Heartbeat(Heartbeat),
        Report(StageReport),
        Fault(AgentFault),
        Verified(vigil_messages::DataVerified),
        Restrict(vigil_messages::RestrictTrading),
    }
}

/// After a data outage the books are verified: by a reconciliation with the venue when
/// one is configured (the paper venue agrees with a fresh book), else trivially (an
/// in-process venue); bars missing across the outage fail it whatever the books say.
#[actix_rt::test]
async fn data_back_after_an_outage_is_verified_against_the_venue_and_for_missing_bars() {
    for (reconcile, missing_bars, external, passed, says) in [
        (
            true,
            0,
            false,
            true,
            "the books agree with the venue's (0 position(s), cash 100000, 0 working order(s))",
        ),
        (false, 0, false, true, "the venue runs in-process"),
        (
            true,
            3,
            false,
            false,
            "3 bar(s) of exchange sessions missing",
        ),
        (
            true,
            0,
            true,
            false,
            "the working orders differ from the venue's: by-hand-1 working at the venue, \
             unknown to vigil",
        ),
    ] {
        let verdicts = Recorder::<Got>::new();
        let to = verdicts.start_actor();
        let h = start_with(|agent| {
            let agent = agent.with_data_verification(to.clone().recipient());
            if reconcile {
                agent.with_reconciliation(ReconcileLinks {
                    risk: to.recipient(),
                    on_mismatch: vigil_core::TradingState::ReduceOnly,
                    interval: None,
                    retry_initial: Duration::from_millis(100),
                    retry_max: Duration::from_secs(1),
                })
            } else {
                agent
            }
        });
        if external {
            // Someone placed an order at the broker by hand during the outage.
            h.venue
                .submit_order(&vigil_testkit::order_request(
                    "by-hand-1",
                    0,
                    Side::Buy,
                    dec!(5),
                    Some(dec!(1)),
                    day(2),
                ))
                .await
                .expect("the venue takes it");
        }
        h.addr.do_send(vigil_messages::VerifyData {
            source: "feed:ws://127.0.0.1:1/stream".into(),
            outage_s: 120,
            first_bar: day(3),
            missing_bars,
        });
        let verdict = verdicts
            .wait_for_first::<vigil_messages::DataVerified>()
            .await;
        assert_eq!(verdict.passed, passed, "{verdict:?}");
        assert!(verdict.report.contains(says), "{verdict:?}");
        assert_eq!(logged(&h.log, Event::DataVerifying).len(), 1);
        assert_eq!(
            logged(&h.log, Event::ReconciliationCompleted).len(),
            usize::from(reconcile)
        );
    }
}

/// The paper venue behind a switch: while `down`, every call is `Unreachable`.
struct Switched {
    paper: Arc<PaperVenue>,
    down: Arc<std::sync::atomic::AtomicBool>,
    /// The client order ids of the orders that reached the venue.
    submitted: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Switched {
    fn check(&self) -> Result<(), VenueError> {
        match self.down.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(VenueError::Unreachable {
                venue: "paper".into(),
                reason: "connection refused".into(),
            }),
            false => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl ExecutionVenue for Switched {
    fn name(&self) -> &str {
        "paper"
    }
    async fn submit_order(&self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        self.check()?;
        self.submitted
            .lock()
            .expect("the lock")
            .push(order.client_order_id.as_str().to_string());
        self.paper.submit_order(order).await
    }
    async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError> {
        self.check()?;
        self.paper.cancel_order(id).await
    }
    async fn order(
        &self,
        id: &ClientOrderId,
    ) -> Result<Option<vigil_core::VenueOrder>, VenueError> {
        self.check()?;
        self.paper.order(id).await
    }
    async fn open_orders(&self) -> Result<Vec<vigil_core::VenueOrder>, VenueError> {
        self.check()?;
        self.paper.open_orders().await
    }
    async fn positions(&self) -> Result<Vec<vigil_providers::VenuePosition>, VenueError> {
        self.check()?;
        self.paper.positions().await
    }
    async fn account(&self) -> Result<vigil_providers::Account, VenueError> {
        self.check()?;
        self.paper.account().await
    }
    async fn ping(&self) -> Result<(), VenueError> {
        self.check()
    }
    fn drain_reports(&self, out: &mut Vec<ExecutionReport>) {
        self.paper.drain_reports(out);
    }
    fn on_market_data(&self, bar: &Bar) {
        self.paper.on_market_data(bar);
    }
}

/// Every outside connection lost: the data comes back while the broker is still down.
/// The verification waits for the broker (asked again with backoff) and is answered by
/// the reconciliation at its return.
#[actix_rt::test]
async fn with_the_broker_down_too_the_verification_waits_for_its_return() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let verdicts = Recorder::<Got>::new();
    let to = verdicts.start_actor();
    let switch = down.clone();
    let h = start_on(
        move |paper| {
            Arc::new(Switched {
                paper,
                down: switch,
                submitted: Arc::default(),
            })
        },
        |agent| {
            agent
                .with_data_verification(to.clone().recipient())
                .with_reconciliation(ReconcileLinks {
                    risk: to.recipient(),
                    on_mismatch: vigil_core::TradingState::ReduceOnly,
                    interval: None,
                    retry_initial: Duration::from_millis(100),
                    retry_max: Duration::from_secs(1),
                })
        },
    );
    h.addr.do_send(vigil_messages::VerifyData {
        source: "feed:ws://127.0.0.1:1/stream".into(),
        outage_s: 120,
        first_bar: day(3),
        missing_bars: 0,
    });
    vigil_testkit::yield_until("orders paused", || {
        !logged(&h.log, Event::OrdersPaused).is_empty()
    })
    .await;
    vigil_testkit::settle().await;
    assert!(
        verdicts.all::<vigil_messages::DataVerified>().is_empty(),
        "it waits"
    );
    // Still down at the first retry; back before the second.
    h.wall.advance_by(chrono::Duration::milliseconds(100));
    vigil_testkit::settle().await;
    assert!(verdicts.all::<vigil_messages::DataVerified>().is_empty());
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    h.wall.advance_by(chrono::Duration::milliseconds(200));
    let verdict = verdicts
        .wait_for_first::<vigil_messages::DataVerified>()
        .await;
    assert!(verdict.passed, "{verdict:?}");
    assert!(verdict.report.contains("0 working order(s)"), "{verdict:?}");
    let checks = logged(&h.log, Event::ReconciliationCompleted);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(text(&checks[0], "trigger"), "venue_returned");
}

/// An order is sent only if it is still wanted: of three orders decided while the
/// broker is down, each replacing the one before, only the last reaches it when it
/// returns (a venue that fills market orders at once would otherwise trade all three).
/// The first was sent once before the outage was known: it is looked up, not re-sent.
#[actix_rt::test]
async fn held_orders_replaced_while_the_venue_is_down_are_never_sent() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let submitted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (switch, seen) = (down.clone(), submitted.clone());
    let risk = Recorder::<Got>::new();
    let to = risk.start_actor();
    let h = start_filling(
        FillModel::SignalBarClose,
        move |paper| {
            Arc::new(Switched {
                paper,
                down: switch,
                submitted: seen,
            })
        },
        |agent| {
            agent.with_reconciliation(ReconcileLinks {
                risk: to.recipient(),
                on_mismatch: vigil_core::TradingState::ReduceOnly,
                interval: None,
                retry_initial: Duration::from_millis(100),
                retry_max: Duration::from_secs(1),
            })
        },
    );
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..2, false));
    let mut ids = Vec::new();
    for (i, quantity) in [dec!(10), dec!(7), dec!(4)].into_iter().enumerate() {
        let mut order = intent(&bars[1], Side::Buy, quantity);
        order.order.client_order_id = ClientOrderId::for_intent(&order.trace_id, i as u32 + 1);
        order.cancel_open = i > 0;
        ids.push(order.order.client_order_id.as_str().to_string());
        h.addr.do_send(order);
    }
    vigil_testkit::yield_until("orders paused", || {
        !logged(&h.log, Event::OrdersPaused).is_empty()
    })
    .await;
    assert_eq!(
        book(&h).await.open_orders.len(),
        2,
        "the first attempt's fate is unknown"
    );
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    h.wall.advance_by(chrono::Duration::milliseconds(100));
    vigil_testkit::yield_until("the wanted order filled", || {
        !logged(&h.log, Event::OrderFilled).is_empty()
    })
    .await;
    let snapshot = book(&h).await;

    assert_eq!(
        *submitted.lock().expect("the lock"),
        vec![ids[2].clone()],
        "only the wanted order is sent"
    );
    assert_eq!(snapshot.position, dec!(4));
    assert!(
        snapshot.open_orders.is_empty(),
        "{:?}",
        snapshot.open_orders
    );
    let resumed = logged(&h.log, Event::OrdersResumed);
    assert_eq!(resumed[0].get("sent"), Some(&Value::U64(1)));
    assert_eq!(resumed[0].get("withdrawn"), Some(&Value::U64(2)));
    let cancelled = logged(&h.log, Event::OrderCancelled);
    let reasons: Vec<(String, String)> = cancelled
        .iter()
        .map(|e| (text(e, "order_id"), text(e, "reason")))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                ids[1].clone(),
                "replaced by a newer intent while the venue was down: never sent".to_string()
            ),
            (
                ids[0].clone(),
                "replaced while the venue was down: never reached it".to_string()
            ),
        ]
    );
}

fn day(d: u32) -> Timestamp {
    t(&format!("2024-01-{d:02}T00:00:00Z"))
}

fn bar(d: u32, open: Decimal, close: Decimal) -> Bar {
    Bar {
        symbol: SymbolId(0),
        ts: day(d),
        open,
        high: open.max(close) + dec!(1),
        low: open.min(close) - dec!(1),
        close,
        volume: Some(dec!(100000)),
    }
}

/// Day 2 is the signal bar (close 99); day 3 opens at 100; day 4 closes at 104.
fn four_bars() -> Arc<Vec<Bar>> {
    Arc::new(vec![
        bar(1, dec!(100), dec!(100)),
        bar(2, dec!(100), dec!(99)),
        bar(3, dec!(100), dec!(102)),
        bar(4, dec!(103), dec!(104)),
    ])
}

fn segment(batch_id: u64, bars: &Arc<Vec<Bar>>, range: Range<usize>, last: bool) -> Flow<Segment> {
    Flow::Data(Segment {
        batch_id,
        bars: bars.clone(),
        range,
        last,
        phases: Arc::from([]),
    })
}

fn intent(signal_bar: &Bar, side: Side, quantity: Decimal) -> OrderIntent {
    let trace_id = TraceId::for_signal("TEST", signal_bar.ts);
    OrderIntent {
        order: OrderRequest {
            client_order_id: ClientOrderId::for_intent(&trace_id, 1),
            symbol: SymbolId(0),
            side,
            quantity,
            order_type: OrderType::Market,
            limit_price: None,
            submitted_at: signal_bar.ts,
        },
        context: LogContext {
            signal_id: Some(trace_id.signal_id()),
            signal_strength: Some(0.5),
            regime: Some(Regime::Trending),
            model_version: Some("ema_cross@1"),
            portfolio_value: Some(dec!(100000)),
        },
        allocation: Vec::new(),
        trace_id,
        reference_price: signal_bar.close,
        cancel_open: false,
        arrived_at: None,
    }
}

use std::ops::Range;

struct Harness {
    addr: Addr<ExecutionAgent>,
    venue: Arc<PaperVenue>,
    seen: Recorder<Got>,
    log: MemoryLog,
    wall: SimClock,
}

fn start() -> Harness {
    start_with(|agent| agent)
}

fn start_with(setup: impl FnOnce(ExecutionAgent) -> ExecutionAgent) -> Harness {
    start_on(|paper| paper, setup)
}

/// [`start_with`] on the venue `wrap` makes of the paper venue.
fn start_on(
    wrap: impl FnOnce(Arc<PaperVenue>) -> Arc<dyn ExecutionVenue>,
    setup: impl FnOnce(ExecutionAgent) -> ExecutionAgent,
) -> Harness {
    start_filling(FillModel::NextBarOpen, wrap, setup)
}

/// [`start_on`] a paper venue that fills by `fill_model`.
fn start_filling(
    fill_model: FillModel,
    wrap: impl FnOnce(Arc<PaperVenue>) -> Arc<dyn ExecutionVenue>,
    setup: impl FnOnce(ExecutionAgent) -> ExecutionAgent,
) -> Harness {
    let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let clock: SharedClock = Arc::new(market);
    let venue = Arc::new(PaperVenue::new(
        PaperVenueConfig {
            name: "paper".into(),
            fill_model,
            slippage_bps: dec!(10),
            commission_bps: dec!(5),
            commission_min: dec!(0),
            max_volume_participation: dec!(1),
            initial_cash: dec!(100000),
        },
        clock.clone(),
    ));
    let (sink, log) = LogSink::memory();
    let seen = Recorder::new();
    // Stands in for the Data agent (batch acknowledgements) and the Monitor.
    let collector = seen.start_actor();
    let agent = ExecutionAgent::new(
        wrap(venue.clone()),
        dec!(100000),
        SymbolTable::new([Symbol::from("TEST")]),
        wiring(clock, Arc::new(wall.clone()), &collector),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        collector.recipient(),
    );
    Harness {
        addr: setup(agent).start(),
        venue,
        seen,
        log,
        wall,
    }
}

async fn book(h: &Harness) -> BookSnapshot {
    h.addr
        .send(BookQuery {
            symbol: SymbolId(0),
        })
        .await
        .expect("book query")
}

fn dec_field(ev: &LogEvent, key: &str) -> Decimal {
    match ev.get(key) {
        Some(Value::Dec(d)) => *d,
        other => panic!(
            "field {key} of {} is not a decimal: {other:?}",
            ev.event.name()
        ),
    }
}

#[actix_rt::test]
async fn an_intent_is_submitted_accepted_and_filled_at_the_next_bar_open_under_its_trace_id() {
    let h = start();
    let bars = four_bars();
    let order = intent(&bars[1], Side::Buy, dec!(10));
    let trace = order.trace_id.clone();
    let id = order.order.client_order_id.clone();

    h.addr.do_send(segment(0, &bars, 0..2, false));
    h.addr.do_send(order);
    let before = book(&h).await;
    assert_eq!(before.position, dec!(0));
    assert_eq!(before.mark, dec!(99));
    assert_eq!(
        before.open_orders,
        vec![OpenOrderView {
            client_order_id: id.clone(),
            symbol: SymbolId(0),
            side: Side::Buy,
            leaves_quantity: dec!(10),
        }]
    );
    let submitted = logged(&h.log, Event::OrderSubmitted);
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].trace_id.as_ref(), Some(&trace));
    assert_eq!(submitted[0].timestamp, bars[1].ts);
    assert_eq!(text(&submitted[0], "symbol"), "TEST");
    assert_eq!(text(&submitted[0], "side"), "BUY");
    assert_eq!(text(&submitted[0], "order_type"), "MARKET");
    assert_eq!(text(&submitted[0], "order_id"), id.as_str());
    assert_eq!(dec_field(&submitted[0], "quantity"), dec!(10));
    assert_eq!(dec_field(&submitted[0], "price"), dec!(99));
    assert_eq!(
        submitted[0]
            .context
            .as_deref()
            .and_then(|c| c.signal_id.clone()),
        Some(trace.signal_id())
    );
    let accepted = logged(&h.log, Event::OrderAccepted);
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].trace_id.as_ref(), Some(&trace));
    assert_eq!(text(&accepted[0], "venue_order_id"), "P-000001");
    assert_eq!(text(&accepted[0], "venue"), "paper");
    assert!(
        logged(&h.log, Event::FillReceived).is_empty(),
        "nothing fills on the signal bar"
    );

    h.addr.do_send(segment(0, &bars, 2..4, true));
    let after = book(&h).await;
    // 100 × (1 + 10 bps) = 100.1; commission 5 bps of 1001 = 0.5005.
    let cash = dec!(100000) - dec!(1001) - dec!(0.5005);
    assert_eq!(after.position, dec!(10));
    assert_eq!(after.cash, cash);
    assert_eq!(after.mark, dec!(104));
    assert_eq!(after.equity, cash + dec!(10) * dec!(104));
    assert_eq!(after.gross_exposure, dec!(1040));
    assert!(after.open_orders.is_empty());

    let fills = logged(&h.log, Event::FillReceived);
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].level, Level::Info);
    assert_eq!(fills[0].trace_id.as_ref(), Some(&trace));
    assert_eq!(
        fills[0].timestamp, bars[2].ts,
        "stamped with the fill bar's time"
    );
    assert_eq!(dec_field(&fills[0], "price"), dec!(100.1));
    assert_eq!(dec_field(&fills[0], "quantity"), dec!(10));
    assert_eq!(dec_field(&fills[0], "commission"), dec!(0.5005));
    assert_eq!(dec_field(&fills[0], "leaves_quantity"), dec!(0));
    // (100.1 − 99) / 99 in bps, worse than the reference.
    assert_eq!(dec_field(&fills[0], "slippage_bps"), dec!(111.11));
    assert_eq!(text(&fills[0], "fill_id"), "F-000001");
    let filled = logged(&h.log, Event::OrderFilled);
    assert_eq!(filled.len(), 1);
    assert_eq!(filled[0].trace_id.as_ref(), Some(&trace));
    assert_eq!(dec_field(&filled[0], "avg_price"), dec!(100.1));
    assert_eq!(dec_field(&filled[0], "position"), dec!(10));
    let ctx = filled[0].context.as_deref().expect("context");
    assert_eq!(ctx.regime, Some(Regime::Trending));
    assert!(ctx.portfolio_value.is_some());

    // Only the batch's last segment is acknowledged, with the batch's own bars.
    h.seen
        .wait_until("the batch ack", |got| {
            got.iter().any(|g| matches!(g, Got::Done(_)))
        })
        .await;
    let done = h.seen.all::<BatchDone>();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, 0);
    assert!(Arc::ptr_eq(&done[0].bars, &bars));

    h.addr.do_send(Flow::End(StopReason::EndOfData));
    match h.seen.wait_for_first::<StageReport>().await {
        StageReport::Execution {
            reason,
            orders,
            filled,
            venue_rejects,
            cancelled,
            fills,
            initial_cash,
            equity,
            cash: final_cash,
            commissions,
            positions,
            ..
        } => {
            assert_eq!(reason, StopReason::EndOfData);
            assert_eq!(
                (orders, filled, venue_rejects, cancelled, fills),
                (1, 1, 0, 0, 1)
            );
            assert_eq!(initial_cash, dec!(100000));
            assert_eq!(final_cash, cash);
            assert_eq!(equity, cash + dec!(1040));
            assert_eq!(commissions, dec!(0.5005));
            assert_eq!(positions, vec![("TEST".to_string(), dec!(10))]);
        }
        other => panic!("expected an execution report, got {other:?}"),
    }
    assert!(h.seen.all::<AgentFault>().is_empty());
    h.seen.with(|got| {
        assert!(matches!(
            got.first(),
            Some(Got::Heartbeat(Heartbeat {
                agent: AgentId::Execution,
                state: AgentState::Running,
                ..
            }))
        ));
    });
}

/// Under write-ahead a fill is durable before the book moves: while the journal file's
/// write lock is held elsewhere the fill's commit waits, and so does every question to
/// the agent; once the commit lands, the book and the journal agree.
#[actix_rt::test]
async fn under_write_ahead_a_fill_is_committed_before_the_book_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vigil.db");
    let store = vigil_store::Store::open(&path).await.expect("store");
    let (failures, mut failed) = tokio::sync::mpsc::unbounded_channel();
    let (journal, _writer) = Journal::start(
        Arc::new(store.clone()),
        "paper".into(),
        || t("2030-01-01T00:00:00Z"),
        failures,
    );
    let h = start_with(|agent| agent.with_journal(journal, true));
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..2, false));
    h.addr.do_send(intent(&bars[1], Side::Buy, dec!(10)));
    assert_eq!(book(&h).await.open_orders.len(), 1, "the order is working");

    // Another writer holds the file: no commit can land until it lets go.
    let other = vigil_store::open_sqlite(&path).await.expect("second pool");
    let mut lock = other.acquire().await.expect("connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *lock)
        .await
        .expect("take the write lock");
    h.addr.do_send(segment(0, &bars, 2..4, true));
    let mut asked = std::pin::pin!(h.addr.send(BookQuery {
        symbol: SymbolId(0),
    }));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut asked)
            .await
            .is_err(),
        "the book answered while its fill was not yet committed"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut *lock)
        .await
        .expect("let go of the write lock");
    let after = asked.await.expect("book query");
    assert_eq!(after.position, dec!(10));
    // The answer came after the commit: the journal holds the fill and its position.
    let journaled = vigil_store::StateStore::journal_book(&store, "paper")
        .await
        .expect("journal book");
    assert_eq!(journaled.fills, 1);
    assert_eq!(
        journaled.positions,
        vec![("TEST".to_string(), dec!(10), dec!(100.1))]
    );
    assert!(failed.try_recv().is_err(), "no journal commit failed");
}

#[actix_rt::test]
async fn batch_done_is_sent_only_after_a_segment_marked_last() {
    let h = start();
    let first = four_bars();
    let second = Arc::new(vec![bar(5, dec!(104), dec!(105))]);
    h.addr.do_send(segment(0, &first, 0..1, false));
    h.addr.do_send(segment(0, &first, 1..3, false));
    h.addr.do_send(segment(0, &first, 3..4, true));
    h.addr.do_send(segment(1, &second, 0..1, true));
    h.seen
        .wait_until("two batch acks", |got| {
            got.iter().filter(|g| matches!(g, Got::Done(_))).count() >= 2
        })
        .await;
    // The mailbox is FIFO: an ack for a non-last segment would have arrived first.
    let done = h.seen.all::<BatchDone>();
    assert_eq!(done.iter().map(|d| d.id).collect::<Vec<_>>(), vec![0, 1]);
    assert!(Arc::ptr_eq(&done[0].bars, &first));
    assert!(Arc::ptr_eq(&done[1].bars, &second));
    assert_eq!(book(&h).await.mark, dec!(105), "every bar was marked");
}

#[actix_rt::test]
async fn a_venue_rejection_is_logged_as_order_rejected() {
    let h = start();
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..2, false));
    let order = intent(&bars[1], Side::Sell, dec!(0));
    let trace = order.trace_id.clone();
    h.addr.do_send(order);
    let snapshot = book(&h).await;
    assert!(
        snapshot.open_orders.is_empty(),
        "a rejected order is not open"
    );

    let rejected = logged(&h.log, Event::OrderRejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].level, Level::Warn);
    assert_eq!(rejected[0].trace_id.as_ref(), Some(&trace));
    assert_eq!(text(&rejected[0], "reason"), "quantity 0 is not positive");
    assert_eq!(text(&rejected[0], "venue"), "paper");
    assert!(logged(&h.log, Event::OrderAccepted).is_empty());

    h.addr.do_send(segment(0, &bars, 2..4, true));
    h.addr.do_send(Flow::End(StopReason::Interrupted));
    assert!(matches!(
        h.seen.wait_for_first::<StageReport>().await,
        StageReport::Execution {
            reason: StopReason::Interrupted,
            orders: 1,
            filled: 0,
            venue_rejects: 1,
            fills: 0,
            ..
        }
    ));
    assert!(logged(&h.log, Event::FillReceived).is_empty());
}

/// The same decision placed before, by a run whose journal this one does not hold (a
/// store that lost its history): the venue refuses it as a duplicate and creates
/// nothing. It is journaled and logged as rejected, reported as a fault, and never
/// tracked as an open order (issue 19: refused duplicates were journaled `accepted`, and
/// every later intent asked to cancel them).
#[actix_rt::test]
async fn a_duplicate_refused_by_the_venue_is_journaled_rejected_never_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = vigil_store::Store::open(&dir.path().join("vigil.db"))
        .await
        .expect("store");
    let (failures, mut failed) = tokio::sync::mpsc::unbounded_channel();
    let (journal, _writer) = Journal::start(
        Arc::new(store.clone()),
        "paper".into(),
        || t("2030-01-01T00:00:00Z"),
        failures,
    );
    let h = start_with(|agent| agent.with_journal(journal, true));
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..2, false));
    let order = intent(&bars[1], Side::Buy, dec!(10));
    let id = order.order.client_order_id.clone();
    // The venue has seen the bars (the agent answers after handling them).
    book(&h).await;
    // An earlier life of this decision is at the venue already.
    let earlier = h
        .venue
        .submit_order(&vigil_testkit::order_request(
            id.as_str(),
            0,
            Side::Buy,
            dec!(10),
            None,
            bars[1].ts,
        ))
        .await
        .expect("the venue takes the earlier order");
    assert!(matches!(earlier, OrderAck::Accepted { .. }), "{earlier:?}");
    h.addr.do_send(order);
    assert!(
        book(&h).await.open_orders.is_empty(),
        "a duplicate is not an open order of this run"
    );
    assert!(logged(&h.log, Event::OrderAccepted).is_empty());
    let rejected = logged(&h.log, Event::OrderRejected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].level, Level::Error);
    let reason = text(&rejected[0], "reason");
    assert!(reason.starts_with("duplicate client order id"), "{reason}");
    h.seen
        .wait_until("the duplicate reported as a fault", |got| {
            got.iter()
                .any(|g| matches!(g, Got::Fault(f) if !f.fatal && f.error.contains("duplicate")))
        })
        .await;
    // The journal holds it as rejected, with the reason: not open, not accepted.
    h.addr.do_send(segment(0, &bars, 2..4, true));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for_first::<StageReport>().await;
    let open = vigil_store::StateStore::journal_open_orders(&store, "paper")
        .await
        .expect("journal");
    assert!(open.is_empty(), "{open:?}");
    let status: (String, Option<String>) =
        sqlx::query_as("SELECT status, reason FROM journal_orders WHERE client_order_id = $1")
            .bind(id.as_str())
            .fetch_one(
                &vigil_store::open_sqlite(&dir.path().join("vigil.db"))
                    .await
                    .expect("pool"),
            )
            .await
            .expect("the order's row");
    assert_eq!(status.0, "rejected");
    assert!(
        status
            .1
            .is_some_and(|r| r.starts_with("duplicate client order id")),
        "the reason is journaled"
    );
    assert!(failed.try_recv().is_err(), "no journal commit failed");
}

#[actix_rt::test]
async fn a_replacing_intent_cancels_the_open_order_of_its_symbol_first() {
    let h = start();
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..1, false));
    // A buy limit far below the market: it stays open.
    let mut resting = intent(&bars[0], Side::Buy, dec!(10));
    resting.order.order_type = OrderType::Limit;
    resting.order.limit_price = Some(dec!(50));
    let resting_trace = resting.trace_id.clone();
    let resting_id = resting.order.client_order_id.clone();
    h.addr.do_send(resting);
    h.addr.do_send(segment(0, &bars, 1..2, false));
    assert_eq!(book(&h).await.open_orders.len(), 1);

    let mut replacing = intent(&bars[1], Side::Buy, dec!(5));
    replacing.cancel_open = true;
    let replacing_trace = replacing.trace_id.clone();
    h.addr.do_send(replacing);
    h.addr.do_send(segment(0, &bars, 2..4, true));
    let snapshot = book(&h).await;
    assert_eq!(snapshot.position, dec!(5));
    assert!(snapshot.open_orders.is_empty());

    let requested = logged(&h.log, Event::OrderCancelRequested);
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].trace_id.as_ref(), Some(&replacing_trace));
    assert_eq!(text(&requested[0], "order_id"), resting_id.as_str());
    let cancelled = logged(&h.log, Event::OrderCancelled);
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].trace_id.as_ref(), Some(&resting_trace));
    assert_eq!(text(&cancelled[0], "reason"), "cancelled by request");
    let names = h.log.names();
    let at = |n: &str| names.iter().position(|x| *x == n).expect(n);
    assert!(at("order_cancel_requested") < at("order_cancelled"));
    assert!(at("order_cancelled") < at("order_filled"));

    h.addr.do_send(Flow::End(StopReason::EndOfData));
    assert!(matches!(
        h.seen.wait_for_first::<StageReport>().await,
        StageReport::Execution {
            orders: 2,
            filled: 1,
            cancelled: 1,
            fills: 1,
            ..
        }
    ));
}

/// A market order made at the venue behind the agent's back (someone used the account by
/// hand), accepted there.
async fn manual_order(h: &Harness, id: &str, side: Side, quantity: Decimal, at: Timestamp) {
    let ack = h
        .venue
        .submit_order(&OrderRequest {
            client_order_id: ClientOrderId::from(id),
            symbol: SymbolId(0),
            side,
            quantity,
            order_type: OrderType::Market,
            limit_price: None,
            submitted_at: at,
        })
        .await
        .expect("submit");
    assert!(matches!(ack, OrderAck::Accepted { .. }));
}

#[actix_rt::test]
async fn a_fill_for_an_untracked_order_is_booked_logged_as_an_error_and_reported() {
    let h = start();
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..2, false));
    book(&h).await;
    // An order the agent never sent (someone used the account by hand).
    manual_order(&h, "manual-1", Side::Sell, dec!(3), bars[1].ts).await;
    h.addr.do_send(segment(0, &bars, 2..4, true));
    assert_eq!(
        book(&h).await.position,
        dec!(-3),
        "the venue is the source of truth"
    );

    let fills = logged(&h.log, Event::FillReceived);
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].level, Level::Error);
    assert_eq!(text(&fills[0], "order_id"), "manual-1");
    assert!(text(&fills[0], "error").contains("for unknown order manual-1"));
    h.seen
        .wait_until("the fault", |got| {
            got.iter().any(|g| matches!(g, Got::Fault(_)))
        })
        .await;
    let faults = h.seen.all::<AgentFault>();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].agent, AgentId::Execution);
    assert!(!faults[0].fatal);
}

/// A live venue's fill that comes while no bar does (the feed down, a quiet market) is
/// booked at the next heartbeat's ping, not at the next bar.
#[actix_rt::test]
async fn a_fill_reported_between_bars_is_booked_at_the_next_heartbeat() {
    let h = start();
    let bars = four_bars();
    h.addr.do_send(segment(0, &bars, 0..2, false));
    book(&h).await;
    manual_order(&h, "manual-2", Side::Buy, dec!(4), bars[1].ts).await;
    // The venue fills it on its own; no bar reaches the agent.
    h.venue.on_market_data(&bars[2]);
    assert_eq!(
        book(&h).await.position,
        dec!(0),
        "not booked before a heartbeat"
    );
    h.wall.advance_by(chrono::Duration::seconds(1));
    vigil_testkit::yield_until("the fill booked", || {
        !logged(&h.log, Event::FillReceived).is_empty()
    })
    .await;
    assert_eq!(book(&h).await.position, dec!(4));
    let fills = logged(&h.log, Event::FillReceived);
    assert_eq!(fills.len(), 1);
    assert_eq!(text(&fills[0], "order_id"), "manual-2");
    // The next bars book nothing twice.
    h.addr.do_send(segment(0, &bars, 2..4, true));
    assert_eq!(book(&h).await.position, dec!(4));
    assert_eq!(logged(&h.log, Event::FillReceived).len(), 1);
}

/// Stands in for the Risk agent: keeps each drawdown report and answers the first
/// with an order that closes the position.
struct FakeRisk {
    reports: Arc<std::sync::Mutex<Vec<DrawdownReport>>>,
}

impl Actor for FakeRisk {
    type Context = Context<Self>;
}

impl Handler<DrawdownReport> for FakeRisk {
    type Result = MessageResult<DrawdownReport>;
    fn handle(&mut self, msg: DrawdownReport, _ctx: &mut Context<Self>) -> Self::Result {
        let trace_id = TraceId::for_command("deleverage_TEST", msg.at);
        let orders = vec![OrderIntent {
            order: OrderRequest {
                client_order_id: ClientOrderId::for_intent(&trace_id, 1),
                symbol: SymbolId(0),
                side: Side::Sell,
                quantity: msg.positions[0].quantity,
                order_type: OrderType::Market,
                limit_price: None,
                submitted_at: msg.at,
            },
            trace_id,
            reference_price: msg.positions[0].mark,
            cancel_open: true,
            context: LogContext::default(),
            allocation: Vec::new(),
            arrived_at: None,
        }];
        let mut reports = self.reports.lock().expect("reports");
        reports.push(msg);
        MessageResult(vigil_messages::DrawdownAnswer {
            orders: if reports.len() == 1 {
                orders
            } else {
                Vec::new()
            },
            next: NextReport::AfterRearm,
        })
    }
}

#[actix_rt::test]
async fn a_bar_beyond_the_drawdown_line_is_reported_in_band_and_the_answer_fills_at_the_next_open()
{
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let risk = FakeRisk {
        reports: reports.clone(),
    }
    .start();
    let h = start_with(|agent| agent.with_drawdown_control(dec!(0.04), risk.recipient()));
    // 100 shares bought at the day-3 open; day 4 closes at 40 (6% of equity lost), day
    // 5 opens at 41, day 6 at 60.
    let bars = Arc::new(vec![
        bar(1, dec!(100), dec!(100)),
        bar(2, dec!(100), dec!(100)),
        bar(3, dec!(100), dec!(100)),
        bar(4, dec!(100), dec!(40)),
        bar(5, dec!(41), dec!(41)),
        bar(6, dec!(60), dec!(60)),
    ]);
    h.addr.do_send(segment(0, &bars, 0..2, false));
    h.addr.do_send(intent(&bars[1], Side::Buy, dec!(100)));
    // One segment from day 3 to day 6: the report stops it at day 4.
    h.addr.do_send(segment(0, &bars, 2..6, true));
    h.seen.wait_for::<BatchDone>(1).await;

    let reports = reports.lock().expect("reports").clone();
    assert_eq!(reports.len(), 1, "quiet after the answer: {reports:?}");
    let r = &reports[0];
    assert_eq!(r.at, day(4));
    assert_eq!(r.arming, 0);
    assert_eq!(r.positions.len(), 1);
    assert_eq!(
        (r.positions[0].quantity, r.positions[0].mark),
        (dec!(100), dec!(40))
    );
    // Bought at 100.1 plus 5.005 commission: equity = cash + 100 × 40.
    let equity = dec!(100000) - dec!(10010) - dec!(5.005) + dec!(4000);
    assert_eq!(r.equity, equity);
    assert_eq!(r.peak, dec!(100000));
    assert_eq!(r.drawdown, (dec!(100000) - equity) / dec!(100000));
    assert_eq!(r.gross_exposure, dec!(4000));

    let fills = logged(&h.log, Event::FillReceived);
    assert_eq!(fills.len(), 2);
    assert_eq!(
        fills[1].timestamp,
        day(5),
        "filled at the next bar, not the batch's end"
    );
    assert_eq!(text(&fills[1], "side"), "SELL");
    assert_eq!(
        dec_field(&fills[1], "price"),
        dec!(40.959),
        "41 less 10 bps"
    );
    let after = book(&h).await;
    assert_eq!(after.position, dec!(0));
    assert_eq!(after.mark, dec!(60), "the rest of the segment was marked");
}
