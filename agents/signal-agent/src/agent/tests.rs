use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_core::{Bar, Level, Regime, SimClock, Symbol, SymbolId};
use vigil_log::{LogSink, MemoryLog, Value};
use vigil_messages::{AgentFault, Heartbeat, StopReason};
use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t, wiring};

use super::*;
use crate::MODEL_VERSION;

record_enum! {
    /// What reached the stand-in for the Risk agent and the Monitor, in arrival order.
    #[derive(Debug)]
    enum Got {
        Batch(SignalBatch),
        End(StopReason),
        Heartbeat(Heartbeat),
        Report(StageReport),
        Fault(AgentFault),
    }
    Flow<SignalBatch> => Batch, End;
}

fn cfg(warmup: usize) -> SignalConfig {
    SignalConfig {
        model: "ema_cross".into(),
        fast_span: 2,
        slow_span: 4,
        warmup_bars: Some(warmup),
        allow_short: true,
    }
}

fn day(d: usize) -> Timestamp {
    t("2024-01-01T09:30:00Z") + chrono::Duration::days(d as i64)
}

/// Bars on consecutive days from `first_day`, one per close.
fn bars(first_day: usize, closes: &[i64]) -> Vec<Bar> {
    closes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let close = Decimal::from(c);
            Bar {
                symbol: SymbolId(0),
                ts: day(first_day + i),
                open: close,
                high: close,
                low: close,
                close,
                volume: Some(Decimal::ONE),
            }
        })
        .collect()
}

fn regime_batch(id: u64, bars: Vec<Bar>, regime: Regime) -> Flow<RegimeBatch> {
    let regimes: Arc<[Regime]> = vec![regime; bars.len()].into();
    Flow::Data(RegimeBatch {
        id,
        bars: Arc::new(bars),
        regimes,
        phases: Arc::from([]),
        arrived_at: None,
    })
}

/// Up six bars, then down five.
const RISE_THEN_FALL: [i64; 11] = [100, 101, 102, 103, 104, 105, 104, 103, 102, 101, 100];

struct Harness {
    addr: Addr<SignalAgent>,
    seen: Recorder<Got>,
    log: MemoryLog,
}

fn start(cfg: &SignalConfig) -> Harness {
    start_with(cfg, None)
}

/// The agent, with a candidate in shadow when `shadow` says which.
fn start_with(cfg: &SignalConfig, shadow: Option<ShadowLinks>) -> Harness {
    let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let (sink, log) = LogSink::memory();
    let seen = Recorder::new();
    let collector = seen.start_actor();
    let agent = SignalAgent::new(
        cfg,
        ActiveModel::built_in(),
        SymbolTable::new([Symbol::from("TEST")]),
        wiring(Arc::new(market), Arc::new(wall), &collector),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        collector.recipient(),
    );
    let agent = match shadow {
        Some(links) => agent.with_shadow(links),
        None => agent,
    };
    Harness {
        addr: agent.start(),
        seen,
        log,
    }
}

fn directions(batch: &SignalBatch) -> Vec<(usize, Direction)> {
    batch
        .signals
        .iter()
        .map(|(i, s)| (*i, s.direction))
        .collect()
}

/// The first bar (index) at which the model's target is short.
fn first_short(closes: &[i64]) -> usize {
    let mut m = Predictor::ema_cross(2, 4, 0, true);
    closes
        .iter()
        .position(|&c| {
            m.update(c as f64, 0.0)
                .expect("the EMA cross cannot fail")
                .and_then(|p| p.position)
                == Some(-1.0)
        })
        .expect("the series turns short")
}

#[actix_rt::test]
async fn rising_then_falling_closes_emit_a_long_then_a_short_signal_with_trace_ids() {
    let h = start(&cfg(3));
    let input = bars(0, &RISE_THEN_FALL);
    h.addr
        .do_send(regime_batch(4, input.clone(), Regime::Trending));
    h.seen.wait_for::<SignalBatch>(1).await;

    let batch = h.seen.all::<SignalBatch>().remove(0);
    assert_eq!(batch.id, 4);
    assert_eq!(batch.bars.len(), input.len());
    assert_eq!(batch.regimes.len(), input.len());
    let short_at = first_short(&RISE_THEN_FALL);
    assert_eq!(short_at, 7, "turns short on the second falling bar");
    // Long from the second bar, but the first signal waits for the warm-up (3 bars).
    assert_eq!(
        directions(&batch),
        vec![(3, Direction::Long), (short_at, Direction::Short)]
    );
    let (_, long) = &batch.signals[0];
    assert_eq!(long.trace_id.as_str(), "tx_20240104T093000_TEST");
    assert_eq!(&*long.signal_id, "sig_20240104T093000_TEST");
    assert_eq!(long.symbol, SymbolId(0));
    assert_eq!(long.at, input[3].ts);
    assert_eq!(long.reference_price, Decimal::from(103));
    assert_eq!(long.regime, Regime::Trending);
    assert_eq!(long.model_version, MODEL_VERSION);
    assert!(long.strength > 0.0 && long.strength <= 1.0);
    let (_, short) = &batch.signals[1];
    assert_eq!(
        short.trace_id,
        TraceId::for_signal("TEST", input[short_at].ts)
    );
    assert!(short.trace_id.as_str().starts_with("tx_"));

    let generated = logged(&h.log, Event::SignalGenerated);
    assert_eq!(generated.len(), 2);
    for (ev, (_, signal)) in generated.iter().zip(&batch.signals) {
        assert_eq!(ev.level, Level::Info);
        assert_eq!(ev.trace_id.as_ref(), Some(&signal.trace_id));
        assert_eq!(ev.timestamp, signal.at);
        assert_eq!(text(ev, "symbol"), "TEST");
        assert_eq!(text(ev, "direction"), signal.direction.as_str());
        assert_eq!(ev.get("price"), Some(&Value::Dec(signal.reference_price)));
        let ctx = ev.context.as_deref().expect("decision context");
        assert_eq!(ctx.signal_id.as_ref(), Some(&signal.signal_id));
        assert_eq!(ctx.signal_strength, Some(signal.strength));
        assert_eq!(ctx.regime, Some(Regime::Trending));
        assert_eq!(ctx.model_version, Some(MODEL_VERSION));
    }
    assert_eq!(text(&generated[0], "direction"), "long");
    assert_eq!(text(&generated[1], "direction"), "short");
}

#[actix_rt::test]
async fn no_signal_is_emitted_during_the_warm_up() {
    let h = start(&cfg(8));
    // Long from the second bar on; the warm-up is eight bars.
    h.addr.do_send(regime_batch(
        0,
        bars(0, &[100, 101, 102, 103, 104, 105, 106, 107]),
        Regime::Unknown,
    ));
    h.addr
        .do_send(regime_batch(1, bars(8, &[108, 109]), Regime::Unknown));
    h.seen.wait_for::<SignalBatch>(2).await;

    let batches = h.seen.all::<SignalBatch>();
    assert!(batches[0].signals.is_empty(), "{:?}", batches[0].signals);
    // The ninth bar is the first after the warm-up; the tenth changes nothing.
    assert_eq!(directions(&batches[1]), vec![(0, Direction::Long)]);
    assert_eq!(batches[1].signals[0].1.regime, Regime::Unknown);
    assert_eq!(logged(&h.log, Event::SignalGenerated).len(), 1);
    assert!(logged(&h.log, Event::SignalSuppressed).is_empty());
}

#[actix_rt::test]
async fn paused_agent_emits_nothing_logs_suppressed_signals_and_realigns_after_resume() {
    let h = start(&cfg(3));
    h.addr.do_send(regime_batch(
        0,
        bars(0, &RISE_THEN_FALL[..6]),
        Regime::Trending,
    ));
    h.seen.wait_for::<SignalBatch>(1).await;
    assert_eq!(
        directions(&h.seen.all::<SignalBatch>()[0]),
        vec![(3, Direction::Long)]
    );

    for _ in 0..2 {
        // Twice: the second changes nothing.
        h.addr
            .send(SetPaused {
                paused: true,
                actor: "ops".into(),
                reason: "maintenance".into(),
            })
            .await
            .expect("pause")
            .expect("the agent answers");
    }
    let paused = logged(&h.log, Event::AgentPaused);
    assert_eq!(paused.len(), 1, "pausing twice logs once");
    assert_eq!(text(&paused[0], "agent"), "signal");
    assert_eq!(text(&paused[0], "actor"), "ops");
    assert_eq!(text(&paused[0], "reason"), "maintenance");

    // The market falls while paused: the model wants short, nothing goes out.
    let falling = bars(6, &RISE_THEN_FALL[6..10]);
    h.addr
        .do_send(regime_batch(1, falling.clone(), Regime::Volatile));
    h.seen.wait_for::<SignalBatch>(2).await;
    let held = h.seen.all::<SignalBatch>().remove(1);
    assert_eq!(held.id, 1);
    assert_eq!(held.bars.len(), 4, "the bars still flow");
    assert!(held.signals.is_empty(), "{:?}", held.signals);
    let suppressed = logged(&h.log, Event::SignalSuppressed);
    let short_from = first_short(&RISE_THEN_FALL) - 6;
    assert_eq!(
        suppressed.len(),
        4 - short_from,
        "one line per held-back bar"
    );
    for (ev, bar) in suppressed.iter().zip(&falling[short_from..]) {
        assert_eq!(ev.level, Level::Warn);
        assert_eq!(
            ev.trace_id.as_ref(),
            Some(&TraceId::for_signal("TEST", bar.ts))
        );
        assert_eq!(text(ev, "direction"), "short");
        assert_eq!(text(ev, "reason"), "signal agent paused");
        assert_eq!(
            ev.context.as_deref().and_then(|c| c.regime),
            Some(Regime::Volatile)
        );
    }
    assert_eq!(logged(&h.log, Event::SignalGenerated).len(), 1);

    h.addr
        .send(SetPaused {
            paused: false,
            actor: "ops".into(),
            reason: "done".into(),
        })
        .await
        .expect("resume")
        .expect("the agent answers");
    let resumed = logged(&h.log, Event::AgentResumed);
    assert_eq!(resumed.len(), 1);
    assert_eq!(text(&resumed[0], "reason"), "done");

    // The next bar re-aligns the target even though nothing crossed on it.
    let next = bars(10, &RISE_THEN_FALL[10..]);
    h.addr
        .do_send(regime_batch(2, next.clone(), Regime::Volatile));
    h.addr.do_send(Flow::End(StopReason::EndOfData));
    h.seen
        .wait_until("the end and the report", |got| {
            got.iter().any(|g| matches!(g, Got::Report(_)))
        })
        .await;
    let batches = h.seen.all::<SignalBatch>();
    assert_eq!(directions(&batches[2]), vec![(0, Direction::Short)]);
    assert_eq!(
        batches[2].signals[0].1.trace_id,
        TraceId::for_signal("TEST", next[0].ts)
    );
    h.seen.with(|got| {
        assert!(matches!(got.last(), Some(Got::Report(StageReport::Signal { signals: 2, suppressed })) if *suppressed == (4 - short_from) as u64), "{got:?}");
        assert!(got.iter().any(|g| matches!(g, Got::End(StopReason::EndOfData))));
        let first_hb = got.iter().find_map(|g| match g {
            Got::Heartbeat(h) => Some(h),
            _ => None,
        });
        assert!(matches!(first_hb, Some(Heartbeat { agent: AgentId::Signal, state: AgentState::Running, .. })));
    });
    let stopped = logged(&h.log, Event::AgentStopped);
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].get("signals"), Some(&Value::U64(2)));
}

/// A store with release 1 of `m` open in shadow.
async fn store_with_a_release(dir: &std::path::Path) -> vigil_store::SharedStore {
    use vigil_store::{ModelAudit, ModelRelease, RegistryWrite, ReleaseState};
    let store: vigil_store::SharedStore = Arc::new(
        vigil_store::Store::open(&dir.join("state.db"))
            .await
            .expect("store"),
    );
    let at = t("2030-01-01T00:00:00Z");
    store
        .registry_apply(&RegistryWrite {
            insert: None,
            statuses: vec![],
            aliases: vec![],
            release: Some(ModelRelease {
                id: 0,
                name: "m".into(),
                candidate: "v1.1.0-20300101".into(),
                production: None,
                stage: "shadow".into(),
                state: ReleaseState::Running,
                started_at: at,
                started_by: "ana".into(),
                reason: "test".into(),
                updated_at: at,
                detail: String::new(),
                step: 0,
                weight: None,
                step_since: None,
            }),
            audit: ModelAudit {
                seq: 0,
                at,
                actor: "ana".into(),
                action: "release_start".into(),
                name: "m".into(),
                version: "v1.1.0-20300101".into(),
                reason: "test".into(),
                detail: String::new(),
            },
        })
        .await
        .expect("release");
    store
}

fn shadow_links(release_id: i64, store: vigil_store::SharedStore) -> ShadowLinks {
    ShadowLinks {
        release_id,
        model: ActiveModel::built_in(),
        production: MODEL_VERSION.into(),
        stored: vec![],
        config: vigil_config::ShadowConfig::default(),
        rollback: vigil_config::RollbackConfig::default(),
        calendar: vigil_calendar::Calendar::xnys(),
        store,
        canary: crate::agent::CanaryLinks {
            step: 0,
            weight: rust_decimal::Decimal::ZERO,
            since: None,
            config: vigil_config::CanaryConfig::default(),
        },
    }
}

/// The candidate runs on every bar and its figures, one row per session, are in the store
/// before the agent reports its end; production's batch is unchanged by it.
#[actix_rt::test]
async fn a_shadow_candidate_decides_on_every_bar_and_its_sessions_are_stored_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_a_release(dir.path()).await;
    let h = start_with(&cfg(3), Some(shadow_links(1, store.clone())));
    // 2024-01-01 is a holiday, the 6th and 7th a weekend: the bars still count.
    h.addr
        .do_send(regime_batch(0, bars(0, &RISE_THEN_FALL), Regime::Trending));
    h.seen.wait_for::<SignalBatch>(1).await;
    h.addr
        .do_send(Flow::<RegimeBatch>::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;

    let batch = h.seen.all::<SignalBatch>().remove(0);
    assert_eq!(
        directions(&batch),
        vec![
            (3, Direction::Long),
            (first_short(&RISE_THEN_FALL), Direction::Short)
        ],
        "production's signals as without a shadow"
    );
    let rows = store.shadow_sessions(1).await.expect("rows");
    assert_eq!(rows.len(), RISE_THEN_FALL.len(), "one session a day");
    let figures: Vec<vigil_deploy::shadow::ShadowSession> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.figures).expect("figures"))
        .collect();
    assert!(figures.iter().all(|f| f.bars == 1 && f.errors == 0));
    // The same model beside itself: the same positions on every bar.
    let pairs = figures.iter().fold(0, |n, f| n + f.pairs.n);
    assert!(pairs > 0);
    assert!(
        figures
            .iter()
            .all(|f| (f.candidate_return - f.production_return).abs() < 1e-12)
    );
    assert_eq!(logged(&h.log, Event::ShadowStarted).len(), 1);
    assert_eq!(
        logged(&h.log, Event::ShadowSessionEnded).len(),
        RISE_THEN_FALL.len() - 1,
        "the last session is still running at the end"
    );
    assert!(logged(&h.log, Event::ShadowSaveFailed).is_empty());
}

/// A save the store refuses is logged at ERROR and counted; the agent goes on and ends.
#[actix_rt::test]
async fn a_shadow_save_the_store_refuses_is_logged_and_production_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_a_release(dir.path()).await;
    // Release 7 is not in the store: every write of its figures is refused.
    let h = start_with(&cfg(3), Some(shadow_links(7, store.clone())));
    h.addr
        .do_send(regime_batch(0, bars(0, &RISE_THEN_FALL), Regime::Trending));
    h.seen.wait_for::<SignalBatch>(1).await;
    h.addr
        .do_send(Flow::<RegimeBatch>::End(StopReason::EndOfData));
    h.seen.wait_for::<StageReport>(1).await;
    assert_eq!(h.seen.all::<SignalBatch>()[0].signals.len(), 2);
    let failed = logged(&h.log, Event::ShadowSaveFailed);
    assert!(!failed.is_empty());
    assert_eq!(failed[0].level, Level::Error);
    assert!(
        text(&failed[0], "error").contains("FOREIGN KEY"),
        "{:?}",
        failed[0]
    );
    assert!(store.shadow_sessions(7).await.expect("rows").is_empty());
}
