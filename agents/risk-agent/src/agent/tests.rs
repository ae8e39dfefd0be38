//! The Risk agent's actor tests: a fake Execution agent and Monitor record what it sends.

use std::sync::Arc;

use rust_decimal_macros::dec;
use vigil_core::{
    AgentState, Bar, ClientOrderId, Direction, OrderType, Regime, Side, SimClock, Symbol, SymbolId,
    TraceId,
};
use vigil_log::{LogSink, MemoryLog, Value};
use vigil_messages::{
    AgentFault, DataOutage, DataVerified, Heartbeat, LedgerCross, NextReport, QuarantineChanged,
    RearmDrawdown, SetTradingState,
};
use vigil_testkit::{
    Recorder, RecordingActor, logged, record_enum, text, timestamp as t, wiring, yield_until,
};

use super::*;
use crate::fixtures::{bars, day, flat_book, report, signal};

record_enum! {
    /// What reached the fake Execution agent and the Monitor, in arrival order.
    #[derive(Debug)]
    enum Got {
        Segment(Segment),
        End(StopReason),
        Query(Queried),
        Intent(OrderIntent),
        Heartbeat(Heartbeat),
        Report(StageReport),
        Fault(AgentFault),
        Rearm(RearmDrawdown),
        Cross(LedgerCross),
    }
    Flow<Segment> => Segment, End;
}

/// A book query the fake Execution agent answered, for the symbol asked about.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Queried(SymbolId);

/// The Execution side of the conversation, in order, in short form.
fn exec_trace(seen: &Recorder<Got>) -> Vec<String> {
    seen.filter_map(|g| match g {
        Got::Segment(s) => Some(format!(
            "segment {}:{}..{}{}",
            s.batch_id,
            s.range.start,
            s.range.end,
            if s.last { " last" } else { "" }
        )),
        Got::End(r) => Some(format!("end {}", r.as_str())),
        Got::Query(Queried(s)) => Some(format!("query {}", s.0)),
        Got::Intent(i) => Some(format!(
            "intent {} {} {}",
            i.order.client_order_id, i.order.side, i.order.quantity
        )),
        _ => None,
    })
}

/// Stands in for the Execution agent's book: answers book queries with a fixed book,
/// and records each query through the recorder's mailbox, so that it stays in order
/// with the segments sent before it and the intent sent after its answer.
struct FakeBook {
    seen: Addr<RecordingActor<Got>>,
    book: BookSnapshot,
}

impl Actor for FakeBook {
    type Context = Context<Self>;
}

impl Handler<BookQuery> for FakeBook {
    type Result = MessageResult<BookQuery>;
    fn handle(&mut self, msg: BookQuery, _ctx: &mut Context<Self>) -> Self::Result {
        self.seen.do_send(Queried(msg.symbol));
        MessageResult(self.book.clone())
    }
}

/// An actor that stops as soon as it starts: an Execution agent that is gone.
struct Gone;

impl Actor for Gone {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<BookQuery> for Gone {
    type Result = MessageResult<BookQuery>;
    fn handle(&mut self, _msg: BookQuery, _ctx: &mut Context<Self>) -> Self::Result {
        unreachable!("a stopped actor handles nothing")
    }
}

fn cfg() -> RiskConfig {
    RiskConfig {
        // 5% of 100,000 at 100 = 50 shares.
        position_pct: dec!(0.05),
        ..RiskConfig::default()
    }
}

fn batch(id: u64, bars: Arc<Vec<Bar>>, signals: &[(usize, Direction)]) -> Flow<SignalBatch> {
    let regimes: Arc<[Regime]> = vec![Regime::Trending; bars.len()].into();
    let signals = signals
        .iter()
        .map(|&(i, d)| (i, signal(&bars[i], d)))
        .collect();
    Flow::Data(SignalBatch {
        id,
        bars,
        regimes,
        signals,
        phases: Arc::from([]),
        arrived_at: None,
    })
}

struct Harness {
    addr: Addr<RiskAgent>,
    seen: Recorder<Got>,
    log: MemoryLog,
    /// The breaker's fast path, shared with the agent.
    halt: vigil_messages::HaltLatch,
}

fn start_with(book: Option<Recipient<BookQuery>>) -> Harness {
    let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let (sink, log) = LogSink::memory();
    let seen = Recorder::new();
    // Stands in for the Execution agent's inputs and for the Monitor.
    let exec = seen.start_actor();
    let fake_book = FakeBook {
        seen: exec.clone(),
        book: flat_book(),
    }
    .start();
    let agent = RiskAgent::new(
        cfg(),
        OrderTypeConfig::Market,
        dec!(5),
        SymbolTable::new([Symbol::from("TEST")]),
        wiring(Arc::new(market), Arc::new(wall), &exec),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        ExecutionLinks {
            segments: exec.clone().recipient(),
            book: book.unwrap_or_else(|| fake_book.recipient()),
            intents: exec.clone().recipient(),
            crosses: exec.clone().recipient(),
            rearm: exec.recipient(),
        },
    );
    let halt = vigil_messages::HaltLatch::default();
    Harness {
        addr: agent.with_halt_latch(halt.clone()).start(),
        seen,
        log,
        halt,
    }
}

fn start() -> Harness {
    start_with(None)
}

async fn set_state(h: &Harness, state: TradingState, actor: &str, reason: &str) {
    h.addr
        .send(SetTradingState {
            state,
            actor: actor.into(),
            reason: reason.into(),
        })
        .await
        .expect("set trading state")
        .expect("the agent answers");
}

#[actix_rt::test]
async fn a_signal_cuts_the_batch_into_segments_with_the_intent_between_them() {
    let h = start();
    yield_until("the agent posts its state", || h.halt.held().is_some()).await;
    assert_eq!(
        h.halt.held(),
        Some(TradingState::Active),
        "posted when it starts"
    );
    let bars = bars(0, 5);
    h.addr
        .do_send(batch(3, bars.clone(), &[(2, Direction::Long)]));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    let trace = TraceId::for_signal("TEST", bars[2].ts);
    assert_eq!(
        exec_trace(&h.seen),
        vec![
            "segment 3:0..3".to_string(),
            "query 0".into(),
            format!("intent {trace}-1 BUY 50"),
            "segment 3:3..5 last".into(),
            "end end_of_data".into(),
        ]
    );
    let intent = h.seen.all::<OrderIntent>().remove(0);
    assert_eq!(intent.trace_id, trace);
    assert_eq!(intent.order.client_order_id.as_str(), format!("{trace}-1"));
    assert_eq!(intent.order.symbol, SymbolId(0));
    assert_eq!(intent.order.side, Side::Buy);
    assert_eq!(intent.order.quantity, dec!(50));
    assert_eq!(intent.order.order_type, OrderType::Market);
    assert_eq!(intent.order.limit_price, None);
    assert_eq!(intent.reference_price, dec!(100));
    assert_eq!(intent.order.submitted_at, bars[2].ts);
    assert!(!intent.cancel_open);
    assert_eq!(intent.context.signal_id, Some(trace.signal_id()));
    assert_eq!(intent.context.regime, Some(Regime::Trending));
    assert_eq!(intent.context.portfolio_value, Some(dec!(100000)));
    h.seen.with(|got| {
        // Every segment shares the batch's bars.
        for g in got {
            if let Got::Segment(s) = g {
                assert!(Arc::ptr_eq(&s.bars, &bars));
            }
        }
    });

    let approved = logged(&h.log, Event::RiskApproved);
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].level, Level::Info);
    assert_eq!(approved[0].trace_id.as_ref(), Some(&trace));
    assert_eq!(approved[0].timestamp, bars[2].ts);
    assert_eq!(text(&approved[0], "side"), "BUY");
    assert_eq!(approved[0].get("quantity"), Some(&Value::Dec(dec!(50))));
    assert_eq!(text(&approved[0], "trading_state"), "active");
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Risk {
            approved: 1,
            rejected: 0,
            state: TradingState::Active
        }]
    ));
    h.seen.with(|got| {
        assert!(matches!(
            got.first(),
            Some(Got::Heartbeat(Heartbeat {
                agent: AgentId::Risk,
                state: AgentState::Running,
                processed: 0,
                ..
            }))
        ));
    });
}

#[actix_rt::test]
async fn several_signals_are_decided_one_at_a_time_in_stream_order() {
    let h = start();
    let first = bars(0, 5);
    let second = bars(5, 3);
    h.addr.do_send(batch(
        0,
        first.clone(),
        &[(1, Direction::Long), (3, Direction::Short)],
    ));
    // A signal on a batch's last bar: the batch still ends with a `last` segment.
    h.addr
        .do_send(batch(1, second.clone(), &[(2, Direction::Long)]));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    let id = |b: &Bar| ClientOrderId::for_intent(&TraceId::for_signal("TEST", b.ts), 1);
    assert_eq!(
        exec_trace(&h.seen),
        vec![
            "segment 0:0..2".to_string(),
            "query 0".into(),
            format!("intent {} BUY 50", id(&first[1])),
            "segment 0:2..4".into(),
            "query 0".into(),
            // The fake book stays flat: short 50 from flat.
            format!("intent {} SELL 50", id(&first[3])),
            "segment 0:4..5 last".into(),
            "segment 1:0..3".into(),
            "query 0".into(),
            format!("intent {} BUY 50", id(&second[2])),
            "segment 1:3..3 last".into(),
            "end end_of_data".into(),
        ]
    );
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Risk {
            approved: 3,
            rejected: 0,
            ..
        }]
    ));
}

#[actix_rt::test]
async fn halting_trips_the_breaker_and_the_next_signal_is_rejected_without_an_intent() {
    let h = start();
    set_state(&h, TradingState::Halted, "ops", "manual halt").await;
    let tripped = logged(&h.log, Event::BreakerTripped);
    assert_eq!(tripped.len(), 1);
    assert_eq!(tripped[0].level, Level::Critical);
    assert_eq!(text(&tripped[0], "from"), "active");
    assert_eq!(text(&tripped[0], "to"), "halted");
    assert_eq!(text(&tripped[0], "actor"), "ops");
    assert_eq!(text(&tripped[0], "reason"), "manual halt");

    let bars = bars(0, 4);
    h.addr
        .do_send(batch(0, bars.clone(), &[(1, Direction::Long)]));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    assert_eq!(
        exec_trace(&h.seen),
        vec![
            "segment 0:0..2",
            "query 0",
            "segment 0:2..4 last",
            "end end_of_data"
        ],
        "no intent while halted"
    );
    let rejected = logged(&h.log, Event::RiskRejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].level, Level::Warn);
    assert_eq!(
        rejected[0].trace_id.as_ref(),
        Some(&TraceId::for_signal("TEST", bars[1].ts))
    );
    let reason = text(&rejected[0], "reason");
    assert!(reason.contains("halted"), "{reason}");
    assert_eq!(text(&rejected[0], "trading_state"), "halted");
    assert!(logged(&h.log, Event::RiskApproved).is_empty());
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Risk {
            approved: 0,
            rejected: 1,
            state: TradingState::Halted
        }]
    ));
}

/// A data outage trips the breaker; a passing verification resets it, and the signal
/// after that is approved. One decided during the outage is not.
#[actix_rt::test]
async fn a_data_outage_halts_until_the_verification_passes() {
    let h = start();
    let bars = bars(0, 6);
    h.addr.do_send(DataOutage {
        reason: "no data source is healthy (1 configured)".into(),
        operator_resumes: false,
    });
    h.addr
        .do_send(batch(0, bars.clone(), &[(1, Direction::Long)]));
    h.seen
        .wait_until("batch 0 handed on", |got| {
            got.iter()
                .any(|g| matches!(g, Got::Segment(s) if s.batch_id == 0 && s.last))
        })
        .await;
    h.addr
        .send(DataVerified {
            passed: true,
            report: "the books agree with the venue's".into(),
        })
        .await
        .expect("verified");
    h.addr
        .do_send(batch(1, bars.clone(), &[(3, Direction::Long)]));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    let tripped = logged(&h.log, Event::BreakerTripped);
    assert_eq!(text(&tripped[0], "actor"), "data_outage");
    let reset = logged(&h.log, Event::BreakerReset);
    assert_eq!(reset.len(), 1);
    assert_eq!(text(&reset[0], "actor"), "data_verify");
    assert_eq!(text(&reset[0], "to"), "active");
    let verified = logged(&h.log, Event::DataVerified);
    assert_eq!(verified[0].level, Level::Info);
    assert_eq!(text(&verified[0], "action"), "trading resumes (active)");
    let approved: Vec<_> = logged(&h.log, Event::RiskApproved)
        .into_iter()
        .filter(|e| e.level == Level::Info)
        .collect();
    assert_eq!(approved.len(), 1);
    assert_eq!(
        approved[0].trace_id.as_ref(),
        Some(&TraceId::for_signal("TEST", bars[3].ts))
    );
}

/// The verification does not lift a halt anyone else asked for meanwhile, nor one the
/// config leaves to an operator, nor after a failed check.
#[actix_rt::test]
async fn the_outage_halt_stays_when_another_halt_came_the_check_failed_or_an_operator_must_reset() {
    for (operator, other, passed, expect) in [
        (
            false,
            true,
            true,
            "also asked meanwhile by ops (runaway losses)",
        ),
        (true, false, true, "after_outage = \"operator\""),
        (
            false,
            false,
            false,
            "the breaker stays tripped: read the report",
        ),
    ] {
        let h = start();
        h.addr.do_send(DataOutage {
            reason: "no data source is healthy".into(),
            operator_resumes: operator,
        });
        if other {
            set_state(&h, TradingState::Halted, "ops", "runaway losses").await;
            // The Critical alert of the outage itself does not count as another halt.
            set_state(&h, TradingState::Halted, "alert:data_outage", "outage").await;
        }
        h.addr
            .send(DataVerified {
                passed,
                report: "2 difference(s) with the venue's books".into(),
            })
            .await
            .expect("verified");
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;
        assert!(logged(&h.log, Event::BreakerReset).is_empty(), "{expect}");
        let verified = logged(&h.log, Event::DataVerified);
        assert_eq!(verified[0].level, Level::Error);
        assert!(
            text(&verified[0], "action").contains(expect),
            "{verified:?}"
        );
        assert!(
            !text(&verified[0], "action").contains("alert:data_outage"),
            "{verified:?}"
        );
    }
}

/// While its symbol is in quarantine a signal makes no order; once released, it does.
#[actix_rt::test]
async fn a_quarantined_symbol_gets_no_new_order_until_released() {
    let h = start();
    let bars = bars(0, 6);
    let quarantine = |on: bool| QuarantineChanged {
        symbol: SymbolId(0),
        on,
        reason: "close 250 moved +110% from the previous 119 (bound 25%)".into(),
    };
    h.addr.do_send(quarantine(true));
    h.addr
        .do_send(batch(0, bars.clone(), &[(1, Direction::Long)]));
    // Applied when it arrives (a signal still queued then is decided under it).
    h.seen
        .wait_until("batch 0 handed on", |got| {
            got.iter()
                .any(|g| matches!(g, Got::Segment(s) if s.batch_id == 0 && s.last))
        })
        .await;
    h.addr.do_send(quarantine(false));
    h.addr
        .do_send(batch(1, bars.clone(), &[(3, Direction::Long)]));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    let rejected = logged(&h.log, Event::RiskRejected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(
        text(&rejected[0], "reason"),
        "symbol in quarantine (data anomaly): close 250 moved +110% from the previous 119 \
         (bound 25%)"
    );
    assert_eq!(
        rejected[0].trace_id.as_ref(),
        Some(&TraceId::for_signal("TEST", bars[1].ts))
    );
    let approved: Vec<_> = logged(&h.log, Event::RiskApproved)
        .into_iter()
        .filter(|e| e.level == Level::Info)
        .collect();
    assert_eq!(
        approved.len(),
        1,
        "the signal after the release is approved"
    );
    assert_eq!(
        approved[0].trace_id.as_ref(),
        Some(&TraceId::for_signal("TEST", bars[3].ts))
    );
}

#[actix_rt::test]
async fn setting_the_same_trading_state_twice_logs_once() {
    let h = start();
    for _ in 0..2 {
        set_state(&h, TradingState::Halted, "ops", "halt").await;
    }
    for _ in 0..2 {
        set_state(&h, TradingState::Active, "ops", "all clear").await;
    }
    for _ in 0..2 {
        set_state(&h, TradingState::ReduceOnly, "rule", "drawdown").await;
    }
    let changes: Vec<(&str, String, String)> = h
        .log
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e.event,
                Event::BreakerTripped | Event::BreakerReset | Event::TradingStateChanged
            )
        })
        .map(|e| (e.event.name(), text(&e, "from"), text(&e, "to")))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("breaker_tripped", "active".into(), "halted".into()),
            ("breaker_reset", "halted".into(), "active".into()),
            (
                "trading_state_changed",
                "active".into(),
                "reduce_only".into()
            ),
        ]
    );
}

#[actix_rt::test]
async fn a_failed_stream_halts_trading_before_the_stage_report() {
    let h = start();
    let error = "GOOG.csv:7: column 'close': cannot parse \"x\" as a decimal";
    h.addr.do_send(Flow::End(StopReason::Failed(error.into())));
    h.seen.wait_for::<StageReport>(1).await;
    // Posted where the Monitor reads it: a halt asked after the stop finds it tripped.
    assert_eq!(h.halt.held(), Some(TradingState::Halted));

    let tripped = logged(&h.log, Event::BreakerTripped);
    assert_eq!(tripped.len(), 1);
    assert_eq!(text(&tripped[0], "actor"), "risk_agent");
    assert_eq!(
        text(&tripped[0], "reason"),
        format!("market data stream failed: {error}")
    );
    let names = h.log.names();
    let at = |n: &str| names.iter().position(|x| *x == n).expect(n);
    assert!(at("breaker_tripped") < at("agent_stopped"), "{names:?}");
    let stopped = logged(&h.log, Event::AgentStopped);
    assert_eq!(text(&stopped[0], "trading_state"), "halted");
    assert_eq!(
        exec_trace(&h.seen),
        vec!["end failed"],
        "the end marker goes on to Execution"
    );
    h.seen.with(|got| {
        assert!(
            got.iter()
                .any(|g| matches!(g, Got::End(StopReason::Failed(e)) if e == error))
        );
    });
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Risk {
            state: TradingState::Halted,
            ..
        }]
    ));
}

#[actix_rt::test]
async fn a_failed_book_query_is_a_non_fatal_fault_and_no_intent_is_sent() {
    let gone = Gone.start();
    yield_until("the stand-in to stop", || !gone.connected()).await;
    assert!(!gone.connected(), "the stand-in stopped");
    let h = start_with(Some(gone.recipient()));
    h.addr
        .do_send(batch(0, bars(0, 3), &[(1, Direction::Long)]));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    assert!(h.seen.all::<OrderIntent>().is_empty());
    h.seen.with(|got| {
        let faults: Vec<&AgentFault> = got
            .iter()
            .filter_map(|g| match g {
                Got::Fault(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].agent, AgentId::Risk);
        assert!(!faults[0].fatal);
        assert!(
            faults[0]
                .error
                .starts_with("book query to execution agent failed for tx_"),
            "{}",
            faults[0].error
        );
    });
    let failed = logged(&h.log, Event::AgentFailed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].level, Level::Error);
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Risk {
            approved: 0,
            rejected: 1,
            ..
        }]
    ));
}

fn dec_of(ev: &LogEvent, key: &str) -> Decimal {
    match ev.get(key) {
        Some(Value::Dec(d)) => *d,
        other => panic!("{key} is not a decimal: {other:?}"),
    }
}

#[actix_rt::test]
async fn the_drawdown_line_stops_new_positions_and_deleverages_in_steps_until_rearmed() {
    let h = start();
    // Past the 10% line: reduce-only, and a quarter of the 100 shares goes.
    let a = h
        .addr
        .send(report(0, 10, dec!(100), dec!(88000)))
        .await
        .expect("answer");
    let sells: Vec<_> = a
        .orders
        .iter()
        .map(|o| (o.order.side, o.order.quantity))
        .collect();
    assert_eq!(sells, vec![(Side::Sell, dec!(25))]);
    assert_eq!(a.orders[0].order.order_type, OrderType::Market);
    assert!(
        a.orders[0].cancel_open,
        "a step replaces the symbol's open orders"
    );
    assert_eq!(a.next, NextReport::NotBefore(day(11)), "a step a day");
    let changed = logged(&h.log, Event::TradingStateChanged);
    assert_eq!(text(&changed[0], "to"), "reduce_only");
    assert_eq!(text(&changed[0], "actor"), "drawdown_control");
    let engaged = logged(&h.log, Event::DrawdownControlEngaged);
    assert_eq!(engaged.len(), 1);
    let e = &engaged[0];
    assert_eq!(e.level, Level::Critical);
    assert_eq!(e.timestamp, day(10));
    assert_eq!(dec_of(e, "drawdown"), dec!(0.12));
    assert_eq!(dec_of(e, "line"), dec!(0.10));
    assert_eq!(dec_of(e, "day_pnl"), dec!(-1500));
    assert_eq!(dec_of(e, "equity"), dec!(88000));
    let actions = text(e, "actions");
    for needle in [
        "active -> reduce_only",
        "step 1 of 4",
        "SELL 25 TEST",
        "next step no earlier than 2024-01-12",
    ] {
        assert!(actions.contains(needle), "{needle} not in {actions}");
    }

    // A signal to add is refused now.
    h.addr
        .do_send(batch(0, bars(10, 3), &[(1, Direction::Long)]));
    yield_until("the signal is decided", || {
        !logged(&h.log, Event::RiskRejected).is_empty()
    })
    .await;
    let rejected = logged(&h.log, Event::RiskRejected);
    assert!(text(&rejected[0], "reason").contains("reduce-only"));

    // The next step cuts a quarter of the size at the line again, not of what is left.
    let a = h
        .addr
        .send(report(0, 11, dec!(75), dec!(87000)))
        .await
        .expect("answer");
    assert_eq!(a.orders[0].order.quantity, dec!(25));
    let step = logged(&h.log, Event::DeleverageStep);
    assert_eq!(step.len(), 1);
    assert_eq!(step[0].level, Level::Warn);
    assert_eq!(step[0].get("step"), Some(&Value::U64(2)));
    assert_eq!(
        logged(&h.log, Event::DrawdownControlEngaged).len(),
        1,
        "engaged once"
    );

    // The operator sets trading active: the line is re-armed from the equity at hand,
    // and a report measured against the old line is answered with nothing.
    set_state(
        &h,
        TradingState::Active,
        "operator",
        "reviewed the drawdown",
    )
    .await;
    h.seen.wait_for::<RearmDrawdown>(1).await;
    assert_eq!(h.seen.all::<RearmDrawdown>()[0].arming, 1);
    let rearmed = logged(&h.log, Event::DrawdownControlRearmed);
    assert_eq!(text(&rearmed[0], "actor"), "operator");
    let a = h
        .addr
        .send(report(0, 12, dec!(50), dec!(86000)))
        .await
        .expect("answer");
    assert!(a.orders.is_empty());
    assert_eq!(a.next, NextReport::AfterRearm);
    // Beyond the re-armed line: engaged afresh, a quarter of the 50 held now.
    let a = h
        .addr
        .send(report(1, 20, dec!(50), dec!(77000)))
        .await
        .expect("answer");
    assert_eq!(
        a.orders[0].order.quantity,
        dec!(13),
        "12.5 rounded up to a whole share"
    );
    assert_eq!(logged(&h.log, Event::DrawdownControlEngaged).len(), 2);
}

#[actix_rt::test]
async fn while_halted_the_line_engages_but_no_order_goes_out() {
    let h = start();
    set_state(&h, TradingState::Halted, "operator", "checking the venue").await;
    let a = h
        .addr
        .send(report(0, 10, dec!(100), dec!(88000)))
        .await
        .expect("answer");
    assert!(a.orders.is_empty());
    assert_eq!(
        a.next,
        NextReport::NotBefore(day(11)),
        "tried again a day later"
    );
    let engaged = logged(&h.log, Event::DrawdownControlEngaged);
    let actions = text(&engaged[0], "actions");
    assert!(actions.contains("stays halted"), "{actions}");
    assert!(
        actions.contains("no deleveraging now: trading is halted"),
        "{actions}"
    );
    // Still halted a day later: nothing more is logged.
    h.addr
        .send(report(0, 11, dec!(100), dec!(87000)))
        .await
        .expect("answer");
    assert!(logged(&h.log, Event::DeleverageStep).is_empty());
}
