use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_core::{AgentState, Bar, Level, SimClock, Symbol, SymbolId};
use vigil_log::{LogSink, MemoryLog, Value};
use vigil_messages::{AgentFault, Heartbeat, StopReason};
use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t, wiring};

use super::*;

record_enum! {
    /// What reached the stand-in for the Signal agent and the Monitor, in arrival order.
    #[derive(Debug)]
    enum Got {
        Batch(RegimeBatch),
        End(StopReason),
        Heartbeat(Heartbeat),
        Report(StageReport),
        Fault(AgentFault),
    }
    Flow<RegimeBatch> => Batch, End;
}

fn cfg() -> RegimeConfig {
    RegimeConfig {
        short_window: 4,
        long_window: 8,
        volatility_ratio: 1.5,
        trend_threshold: 0.3,
        confirm_bars: 1,
    }
}

fn at(i: usize) -> Timestamp {
    t("2024-01-01T00:00:00Z") + chrono::Duration::minutes(i as i64)
}

fn bar(symbol: u32, i: usize, close: f64) -> Bar {
    let close = Decimal::try_from(close).expect("close").round_dp(4);
    Bar {
        symbol: SymbolId(symbol),
        ts: at(i),
        open: close,
        high: close,
        low: close,
        close,
        volume: Some(Decimal::ONE),
    }
}

/// Up 1% a bar with a small wobble: a clear trend once the windows fill.
fn climbing(i: usize) -> f64 {
    let wobble = if i.is_multiple_of(2) { 1.0 } else { 0.999 };
    100.0 * 1.01f64.powi(i as i32) * wobble
}

/// Back and forth: no direction.
fn ranging(i: usize) -> f64 {
    if i.is_multiple_of(2) { 120.0 } else { 121.0 }
}

struct Harness {
    addr: Addr<RegimeAgent>,
    seen: Recorder<Got>,
    log: MemoryLog,
}

fn start(symbols: &[&str]) -> Harness {
    let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let (sink, log) = LogSink::memory();
    let seen = Recorder::new();
    let collector = seen.start_actor();
    let agent = RegimeAgent::new(
        &cfg(),
        SymbolTable::new(symbols.iter().map(|s| Symbol::from(*s))),
        wiring(Arc::new(market), Arc::new(wall), &collector),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        collector.recipient(),
    );
    Harness {
        addr: agent.start(),
        seen,
        log,
    }
}

/// The labels a fresh classifier per symbol gives the bars, and the changes among them.
fn reference(bars: &[Bar], n_symbols: usize) -> (Vec<Regime>, Vec<(usize, Regime, Regime)>) {
    let mut classifiers: Vec<Classifier> =
        (0..n_symbols).map(|_| Classifier::new(&cfg())).collect();
    let mut current = vec![Regime::Unknown; n_symbols];
    let mut labels = Vec::new();
    let mut changes = Vec::new();
    for (i, b) in bars.iter().enumerate() {
        let s = b.symbol.index();
        let r = classifiers[s]
            .update(b.close.to_f64().expect("close"))
            .regime;
        if r != current[s] {
            changes.push((i, current[s], r));
            current[s] = r;
        }
        labels.push(r);
    }
    (labels, changes)
}

#[actix_rt::test]
async fn a_batch_produces_one_regime_per_bar_from_that_symbols_history() {
    let h = start(&["TREND", "RANGE"]);
    // Two symbols interleaved: each is classified on its own bars only.
    let bars: Vec<Bar> = (0..24usize)
        .map(|i| {
            let k = i / 2;
            if i.is_multiple_of(2) {
                bar(0, i, climbing(k))
            } else {
                bar(1, i, ranging(k))
            }
        })
        .collect();
    let (expected, _) = reference(&bars, 2);
    let bars = Arc::new(bars);
    h.addr.do_send(Flow::Data(BarBatch {
        id: 7,
        bars: bars.clone(),
        phases: Arc::from([]),
        arrived_at: None,
    }));
    h.seen
        .wait_until("the regime batch", |got| {
            got.iter().any(|g| matches!(g, Got::Batch(_)))
        })
        .await;

    let batch = h.seen.all::<RegimeBatch>().remove(0);
    assert_eq!(batch.id, 7);
    assert!(
        Arc::ptr_eq(&batch.bars, &bars),
        "bars are passed on, not copied"
    );
    assert_eq!(batch.regimes.len(), bars.len());
    assert_eq!(&*batch.regimes, expected.as_slice());
    // Unknown until each symbol's long window fills (eight returns = nine bars of its
    // own), then each symbol keeps its own label.
    assert!(batch.regimes[..16].iter().all(|r| *r == Regime::Unknown));
    for (i, r) in batch.regimes.iter().enumerate().skip(16) {
        let want = if i.is_multiple_of(2) {
            Regime::Trending
        } else {
            Regime::Ranging
        };
        assert_eq!(*r, want, "bar {i}");
    }
    let logged: Vec<(String, String, String)> = logged(&h.log, Event::RegimeChanged)
        .iter()
        .map(|e| (text(e, "symbol"), text(e, "from"), text(e, "to")))
        .collect();
    assert_eq!(
        logged,
        vec![
            ("TREND".into(), "unknown".into(), "trending".into()),
            ("RANGE".into(), "unknown".into(), "ranging".into()),
        ]
    );
}

#[actix_rt::test]
async fn regime_changed_is_logged_with_symbol_from_and_to_when_the_label_changes() {
    let h = start(&["TEST"]);
    let mut bars: Vec<Bar> = (0..12).map(|i| bar(0, i, climbing(i))).collect();
    // Then the market goes sideways.
    bars.extend((12..30).map(|i| bar(0, i, ranging(i))));
    let (_, expected) = reference(&bars, 1);
    assert!(
        expected.len() >= 2,
        "the series changes label at least twice: {expected:?}"
    );
    // Sent in two batches: the label state carries over.
    let second = bars.split_off(15);
    h.addr.do_send(Flow::Data(BarBatch {
        id: 0,
        bars: Arc::new(bars.clone()),
        phases: Arc::from([]),
        arrived_at: None,
    }));
    h.addr.do_send(Flow::Data(BarBatch {
        id: 1,
        bars: Arc::new(second.clone()),
        phases: Arc::from([]),
        arrived_at: None,
    }));
    h.seen
        .wait_until("two regime batches", |got| {
            got.iter().filter(|g| matches!(g, Got::Batch(_))).count() == 2
        })
        .await;

    let all: Vec<Bar> = bars.iter().chain(&second).copied().collect();
    let logged = logged(&h.log, Event::RegimeChanged);
    assert_eq!(logged.len(), expected.len());
    for (ev, (i, from, to)) in logged.iter().zip(&expected) {
        assert_eq!(ev.level, Level::Info);
        assert_eq!(
            ev.timestamp, all[*i].ts,
            "stamped with the bar's market time"
        );
        assert_eq!(text(ev, "symbol"), "TEST");
        assert_eq!(text(ev, "from"), from.as_str());
        assert_eq!(text(ev, "to"), to.as_str());
        assert!(matches!(ev.get("efficiency_ratio"), Some(Value::F64(_))));
    }
    assert_eq!(
        (text(&logged[0], "from"), text(&logged[0], "to")),
        ("unknown".to_string(), "trending".to_string())
    );
    assert!(
        logged.iter().any(|e| text(e, "to") == "ranging"),
        "the sideways market is labelled ranging"
    );
}

#[actix_rt::test]
async fn end_is_forwarded_behind_the_data_and_a_regime_stage_report_is_sent() {
    let h = start(&["TEST"]);
    let bars: Vec<Bar> = (0..12).map(|i| bar(0, i, climbing(i))).collect();
    let (_, expected) = reference(&bars, 1);
    h.addr.do_send(Flow::Data(BarBatch {
        id: 0,
        bars: Arc::new(bars),
        phases: Arc::from([]),
        arrived_at: None,
    }));
    let reason = StopReason::Failed("GOOG.csv:9: bad row".into());
    h.addr.do_send(Flow::End(reason.clone()));
    h.seen
        .wait_until("the end and the report", |got| {
            got.iter().any(|g| matches!(g, Got::Report(_)))
        })
        .await;

    h.seen.with(|got| {
        let flow: Vec<&Got> = got
            .iter()
            .filter(|g| matches!(g, Got::Batch(_) | Got::End(_)))
            .collect();
        assert!(
            matches!(flow.as_slice(), [Got::Batch(_), Got::End(r)] if *r == reason),
            "{flow:?}"
        );
        let reports: Vec<&Got> = got.iter().filter(|g| matches!(g, Got::Report(_))).collect();
        assert!(
            matches!(reports.as_slice(), [Got::Report(StageReport::Regime { changes })] if *changes == expected.len() as u64),
            "{reports:?}"
        );
        let heartbeats: Vec<&Heartbeat> = got
            .iter()
            .filter_map(|g| match g {
                Got::Heartbeat(h) => Some(h),
                _ => None,
            })
            .collect();
        assert_eq!(heartbeats.len(), 1);
        assert_eq!(heartbeats[0].agent, AgentId::Regime);
        assert_eq!(heartbeats[0].state, AgentState::Running);
    });
    let stopped = logged(&h.log, Event::AgentStopped);
    assert_eq!(stopped.len(), 1);
    assert_eq!(text(&stopped[0], "reason"), "failed");
    assert_eq!(
        stopped[0].timestamp,
        at(11),
        "stamped with the last bar's time"
    );
    assert_eq!(
        stopped[0].get("regime_changes"),
        Some(&Value::U64(expected.len() as u64))
    );
}
