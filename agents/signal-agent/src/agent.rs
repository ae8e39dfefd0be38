use std::time::Duration;

use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use vigil_config::SignalConfig;
use vigil_core::{
    AgentId, AgentState, Direction, SharedClock, Signal, SymbolTable, Timestamp, TraceId,
};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};
use vigil_messages::{
    Backlogs, CommandError, Figures, Flow, Heartbeat, PhaseMark, RegimeBatch, SetPaused,
    SignalBatch, StageReport, batch_dropped, rebuilt, run_every,
};

use crate::ema::{EmaCross, MODEL_VERSION};

const SERVICE: &str = "signal_agent";

/// The Signal agent actor.
pub struct SignalAgent {
    models: Vec<EmaCross>,
    emitted: Vec<Option<Direction>>,
    warmup: usize,
    symbols: SymbolTable,
    clock: SharedClock,
    wall: SharedClock,
    heartbeat_interval: Duration,
    log: LogBuffer,
    downstream: Recipient<Flow<SignalBatch>>,
    monitor: Recipient<Heartbeat>,
    reports: Recipient<StageReport>,
    paused: bool,
    state: AgentState,
    signals: u64,
    suppressed: u64,
    last_ts: Option<Timestamp>,
    batches: u64,
    bars: u64,
    /// Bars whose price the model could not take.
    failures: u64,
    /// Model time and batches since the last heartbeat.
    spent: chrono::Duration,
    spent_batches: u64,
    backlogs: Backlogs,
    /// The model parameters, to rebuild the models after a crash.
    cfg: SignalConfig,
    /// The batch being handled, for a restart after a crash.
    in_hand: Option<(u64, std::sync::Arc<[PhaseMark]>)>,
}

impl std::fmt::Debug for SignalAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalAgent")
            .field("paused", &self.paused)
            .field("signals", &self.signals)
            .finish()
    }
}

impl SignalAgent {
    /// Creates the agent for the session's symbols.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &SignalConfig,
        symbols: SymbolTable,
        clock: SharedClock,
        wall: SharedClock,
        heartbeat_interval: Duration,
        log: LogBuffer,
        downstream: Recipient<Flow<SignalBatch>>,
        monitor: Recipient<Heartbeat>,
        reports: Recipient<StageReport>,
    ) -> Self {
        let n = symbols.len();
        Self {
            models: (0..n)
                .map(|_| EmaCross::new(cfg.fast_span, cfg.slow_span, cfg.allow_short))
                .collect(),
            emitted: vec![None; n],
            warmup: cfg.warmup(),
            symbols,
            clock,
            wall,
            heartbeat_interval,
            log,
            downstream,
            monitor,
            reports,
            paused: false,
            state: AgentState::Starting,
            signals: 0,
            suppressed: 0,
            last_ts: None,
            batches: 0,
            bars: 0,
            failures: 0,
            spent: chrono::Duration::zero(),
            spent_batches: 0,
            backlogs: Backlogs::default(),
            cfg: cfg.clone(),
            in_hand: None,
        }
    }

    /// Counts this agent's mailbox and its messages to the Risk agent in the session's
    /// backlogs.
    pub fn with_backlogs(mut self, backlogs: Backlogs) -> Self {
        self.backlogs = backlogs;
        self
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Signal,
            state: self.state,
            at: self.wall.now(),
            processed: self.signals,
            figures: Figures::Signal {
                signals: self.signals,
                suppressed: self.suppressed,
                batches: self.batches,
                bars: self.bars,
                failures: self.failures,
                generation_latency_s: (self.spent_batches > 0).then(|| {
                    self.spent.num_nanoseconds().unwrap_or(i64::MAX) as f64
                        / 1e9
                        / self.spent_batches as f64
                }),
                paused: self.paused,
            },
        });
        self.spent = chrono::Duration::zero();
        self.spent_batches = 0;
    }

    fn run_batch(&mut self, batch: RegimeBatch) {
        self.in_hand = Some((batch.id, batch.phases.clone()));
        let t0 = self.wall.now();
        let mut signals = Vec::new();
        for (idx, bar) in batch.bars.iter().enumerate() {
            let i = bar.symbol.index();
            let Some(model) = self.models.get_mut(i) else {
                continue;
            };
            let Some(close) = bar.close.to_f64() else {
                // A Decimal always has an f64 neighbour; counted should that ever change.
                self.failures += 1;
                continue;
            };
            let (fast, slow, target) = model.update(close);
            let Some(target) = target else { continue };
            if model.bars() <= self.warmup || self.emitted[i] == Some(target) {
                continue;
            }
            let regime = batch.regimes.get(idx).copied().unwrap_or_default();
            let symbol = self.symbols.shared(bar.symbol);
            let trace_id = TraceId::for_signal(&symbol, bar.ts);
            let signal_id = trace_id.signal_id();
            // Strength: the EMA gap as a fraction of price, 1% of price = full strength.
            let strength = if slow > 0.0 {
                ((fast - slow).abs() / slow / 0.01).min(1.0)
            } else {
                0.0
            };
            let ts = self.clock.stamp(bar.ts);
            let context = LogContext {
                signal_id: Some(signal_id.clone()),
                signal_strength: Some(strength),
                regime: Some(regime),
                model_version: Some(MODEL_VERSION),
                portfolio_value: None,
            };
            if self.paused {
                self.suppressed += 1;
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::SignalSuppressed)
                        .trace(&trace_id)
                        .with("symbol", symbol.clone())
                        .with("direction", target.as_str())
                        .with("reason", "signal agent paused")
                        .context(context),
                );
                continue;
            }
            self.emitted[i] = Some(target);
            self.signals += 1;
            self.log.emit(
                LogEvent::new(ts, SERVICE, Event::SignalGenerated)
                    .trace(&trace_id)
                    .with("symbol", symbol.clone())
                    .with("direction", target.as_str())
                    .with("price", bar.close)
                    .with("fast_ema", fast)
                    .with("slow_ema", slow)
                    .context(context),
            );
            signals.push((
                idx,
                Signal {
                    trace_id,
                    signal_id,
                    symbol: bar.symbol,
                    at: bar.ts,
                    direction: target,
                    strength,
                    reference_price: bar.close,
                    regime,
                    model_version: MODEL_VERSION,
                },
            ));
        }
        self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
        self.log.flush();
        self.batches += 1;
        self.bars += batch.bars.len() as u64;
        self.spent += self.wall.now() - t0;
        self.spent_batches += 1;
        self.in_hand = None;
        self.backlogs.sent(AgentId::Risk);
        self.downstream.do_send(Flow::Data(SignalBatch {
            id: batch.id,
            bars: batch.bars,
            regimes: batch.regimes,
            signals,
            phases: batch.phases,
        }));
    }
}

impl Actor for SignalAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state = AgentState::Running;
        let now = self.clock.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStarted)
                .with("model", MODEL_VERSION)
                .with("warmup_bars", self.warmup),
        );
        self.log.flush();
        self.heartbeat(ctx);
        run_every(
            ctx,
            self.wall.clone(),
            self.heartbeat_interval,
            Self::heartbeat,
        );
    }
}

impl actix::Supervised for SignalAgent {
    /// Rebuilds the models from their parameters (they warm up again on the next bars,
    /// so no signal comes from half-updated averages); the pause switch, an operator's
    /// command, stays. A batch the crash interrupted goes on empty, so that flow control
    /// continues.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        let n = self.symbols.len();
        self.models = (0..n)
            .map(|_| EmaCross::new(self.cfg.fast_span, self.cfg.slow_span, self.cfg.allow_short))
            .collect();
        self.emitted = vec![None; n];
        let now = self.clock.now();
        if let Some((batch, phases)) = self.in_hand.take() {
            self.log.emit(batch_dropped(now, AgentId::Signal, batch));
            self.backlogs.sent(AgentId::Risk);
            self.downstream.do_send(Flow::Data(SignalBatch {
                id: batch,
                bars: std::sync::Arc::new(Vec::new()),
                regimes: std::sync::Arc::from([]),
                signals: Vec::new(),
                phases: PhaseMark::all_at_start(&phases),
            }));
        }
        self.log.emit(
            rebuilt(
                now,
                AgentId::Signal,
                &format!("models reset; they warm up again over {} bars", self.warmup),
            )
            .with("paused", self.paused),
        );
        self.log.flush();
    }
}

impl Handler<Flow<RegimeBatch>> for SignalAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<RegimeBatch>, ctx: &mut Self::Context) {
        self.backlogs.taken(AgentId::Signal);
        match msg {
            Flow::Data(batch) => self.run_batch(batch),
            Flow::End(reason) => {
                self.state = AgentState::Stopped;
                let now = self
                    .last_ts
                    .map_or_else(|| self.clock.now(), |t| self.clock.stamp(t));
                self.log.emit(
                    LogEvent::new(now, SERVICE, Event::AgentStopped)
                        .with("reason", reason.as_str().to_string())
                        .with("signals", self.signals),
                );
                self.log.flush();
                self.backlogs.sent(AgentId::Risk);
                self.downstream.do_send(Flow::End(reason.clone()));
                self.reports.do_send(StageReport::Signal {
                    signals: self.signals,
                    suppressed: self.suppressed,
                });
                ctx.stop();
            }
        }
    }
}

impl Handler<SetPaused> for SignalAgent {
    type Result = Result<String, CommandError>;

    fn handle(&mut self, msg: SetPaused, _ctx: &mut Self::Context) -> Self::Result {
        let word = if msg.paused { "paused" } else { "running" };
        if msg.paused == self.paused {
            return Ok(format!("the signal agent was already {word}")); // idempotent
        }
        self.paused = msg.paused;
        self.state = if msg.paused {
            AgentState::Paused
        } else {
            AgentState::Running
        };
        let now = self.clock.now();
        let event = if msg.paused {
            Event::AgentPaused
        } else {
            Event::AgentResumed
        };
        self.log.emit(
            LogEvent::new(now, SERVICE, event)
                .with("agent", "signal")
                .with("actor", msg.actor)
                .with("reason", msg.reason),
        );
        self.log.flush();
        Ok(format!("the signal agent is {word}"))
    }
}

vigil_messages::agent_skeleton!(SignalAgent, "signal");

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal::Decimal;
    use vigil_core::{Bar, Level, Regime, SimClock, Symbol, SymbolId};
    use vigil_log::{LogSink, MemoryLog, Value};
    use vigil_messages::StopReason;
    use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t};

    use super::*;

    record_enum! {
        /// What reached the stand-in for the Risk agent and the Monitor, in arrival order.
        #[derive(Debug)]
        enum Got {
            Batch(SignalBatch),
            End(StopReason),
            Heartbeat(Heartbeat),
            Report(StageReport),
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
        let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        let (sink, log) = LogSink::memory();
        let seen = Recorder::new();
        let collector = seen.start_actor();
        let agent = SignalAgent::new(
            cfg,
            SymbolTable::new([Symbol::from("TEST")]),
            Arc::new(market),
            Arc::new(wall),
            Duration::from_secs(1),
            LogBuffer::new(sink, SERVICE, Level::Debug),
            collector.clone().recipient(),
            collector.clone().recipient(),
            collector.recipient(),
        );
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
        let mut m = EmaCross::new(2, 4, true);
        closes
            .iter()
            .position(|&c| m.update(c as f64).2 == Some(Direction::Short))
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
}
