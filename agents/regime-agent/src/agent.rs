use std::time::Duration;

use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use vigil_config::RegimeConfig;
use vigil_core::{AgentId, AgentState, Regime, SharedClock, SymbolTable, Timestamp};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::{
    Backlogs, BarBatch, CommandError, DefaultRegime, Figures, Flow, Heartbeat, PhaseMark,
    RegimeBatch, StageReport, batch_dropped, rebuilt, run_every,
};

use crate::classifier::Classifier;

const SERVICE: &str = "regime_agent";

/// The Regime agent actor.
pub struct RegimeAgent {
    cfg: RegimeConfig,
    classifiers: Vec<Classifier>,
    current: Vec<Regime>,
    symbols: SymbolTable,
    clock: SharedClock,
    wall: SharedClock,
    heartbeat_interval: Duration,
    log: LogBuffer,
    downstream: Recipient<Flow<RegimeBatch>>,
    monitor: Recipient<Heartbeat>,
    reports: Recipient<StageReport>,
    state: AgentState,
    bars: u64,
    changes: u64,
    last_ts: Option<Timestamp>,
    volatility_ratio: f64,
    /// The latest reading, of whichever symbol.
    last_reading: Option<crate::classifier::RegimeReading>,
    /// Classification time and bars since the last heartbeat.
    spent: chrono::Duration,
    spent_bars: u64,
    backlogs: Backlogs,
    /// The batch being handled, for a restart after a crash.
    in_hand: Option<(u64, std::sync::Arc<[PhaseMark]>)>,
}

impl std::fmt::Debug for RegimeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegimeAgent")
            .field("current", &self.current)
            .field("bars", &self.bars)
            .finish()
    }
}

impl RegimeAgent {
    /// Creates the agent for the session's symbols.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &RegimeConfig,
        symbols: SymbolTable,
        clock: SharedClock,
        wall: SharedClock,
        heartbeat_interval: Duration,
        log: LogBuffer,
        downstream: Recipient<Flow<RegimeBatch>>,
        monitor: Recipient<Heartbeat>,
        reports: Recipient<StageReport>,
    ) -> Self {
        let n = symbols.len();
        Self {
            cfg: cfg.clone(),
            classifiers: (0..n).map(|_| Classifier::new(cfg)).collect(),
            current: vec![Regime::Unknown; n],
            symbols,
            clock,
            wall,
            heartbeat_interval,
            log,
            downstream,
            monitor,
            reports,
            state: AgentState::Starting,
            bars: 0,
            changes: 0,
            last_ts: None,
            volatility_ratio: cfg.volatility_ratio,
            last_reading: None,
            spent: chrono::Duration::zero(),
            spent_bars: 0,
            backlogs: Backlogs::default(),
            in_hand: None,
        }
    }

    /// Counts this agent's mailbox and its messages to the Signal agent in the session's
    /// backlogs.
    pub fn with_backlogs(mut self, backlogs: Backlogs) -> Self {
        self.backlogs = backlogs;
        self
    }

    /// How clearly a reading is its label, 0..1: the efficiency ratio for a trend, its
    /// complement for a range, the volatility ratio against its threshold for a volatile
    /// market.
    fn confidence(&self, r: &crate::classifier::RegimeReading) -> f64 {
        let c = match r.regime {
            Regime::Trending => r.efficiency,
            Regime::Ranging => 1.0 - r.efficiency,
            Regime::Volatile if r.vol_long > 0.0 && self.volatility_ratio > 0.0 => {
                r.vol_short / (r.vol_long * self.volatility_ratio)
            }
            _ => 0.0,
        };
        if c.is_finite() {
            c.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Forgets every reading: each symbol is back at the default label (`unknown`) and its
    /// classifier learns afresh from the next bars. Returns how many labels changed.
    fn reset(&mut self, actor: &str, reason: &str) -> usize {
        let n = self.symbols.len();
        self.classifiers = (0..n).map(|_| Classifier::new(&self.cfg)).collect();
        let changed = self
            .current
            .iter()
            .filter(|r| **r != Regime::Unknown)
            .count();
        self.current = vec![Regime::Unknown; n];
        self.last_reading = None;
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::RegimeReset)
                .with("to", Regime::Unknown.as_str())
                .with("labels_changed", changed)
                .with("actor", actor.to_string())
                .with("reason", reason.to_string()),
        );
        self.log.flush();
        changed
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Regime,
            state: self.state,
            at: self.wall.now(),
            processed: self.bars,
            figures: Figures::Regime {
                changes: self.changes,
                detection_latency_s: (self.spent_bars > 0).then(|| {
                    self.spent.num_nanoseconds().unwrap_or(i64::MAX) as f64
                        / 1e9
                        / self.spent_bars as f64
                }),
                confidence: self.last_reading.map(|r| self.confidence(&r)),
            },
        });
        self.spent = chrono::Duration::zero();
        self.spent_bars = 0;
    }
}

impl Actor for RegimeAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state = AgentState::Running;
        let now = self.clock.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStarted).with("symbols", self.symbols.len()),
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

impl actix::Supervised for RegimeAgent {
    /// Falls back to the default label for every symbol and classifies afresh; a batch the
    /// crash interrupted goes on empty, so that flow control continues.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if let Some((batch, phases)) = self.in_hand.take() {
            self.log
                .emit(batch_dropped(self.clock.now(), AgentId::Regime, batch));
            self.backlogs.sent(AgentId::Signal);
            self.downstream.do_send(Flow::Data(RegimeBatch {
                id: batch,
                bars: std::sync::Arc::new(Vec::new()),
                regimes: std::sync::Arc::from([]),
                phases: PhaseMark::all_at_start(&phases),
            }));
        }
        self.reset("supervisor", "restarted after a crash");
        self.log.emit(rebuilt(
            self.clock.now(),
            AgentId::Regime,
            "classifiers reset; every symbol at the default label",
        ));
        self.log.flush();
    }
}

impl Handler<Flow<BarBatch>> for RegimeAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<BarBatch>, ctx: &mut Self::Context) {
        self.backlogs.taken(AgentId::Regime);
        match msg {
            Flow::Data(batch) => {
                self.in_hand = Some((batch.id, batch.phases.clone()));
                let t0 = self.wall.now();
                let mut regimes = Vec::with_capacity(batch.bars.len());
                for bar in batch.bars.iter() {
                    let i = bar.symbol.index();
                    let Some(classifier) = self.classifiers.get_mut(i) else {
                        // The Data agent only forwards symbols of the table.
                        regimes.push(Regime::Unknown);
                        continue;
                    };
                    let reading = classifier.update(bar.close.to_f64().unwrap_or(0.0));
                    if reading.regime != self.current[i] {
                        self.changes += 1;
                        let ts = self.clock.stamp(bar.ts);
                        self.log.emit(
                            LogEvent::new(ts, SERVICE, Event::RegimeChanged)
                                .with("symbol", self.symbols.shared(bar.symbol))
                                .with("from", self.current[i].as_str())
                                .with("to", reading.regime.as_str())
                                .with("volatility_short", reading.vol_short)
                                .with("volatility_long", reading.vol_long)
                                .with("efficiency_ratio", reading.efficiency),
                        );
                        self.current[i] = reading.regime;
                    }
                    regimes.push(reading.regime);
                    self.last_reading = Some(reading);
                }
                self.spent += self.wall.now() - t0;
                self.spent_bars += batch.bars.len() as u64;
                self.bars += batch.bars.len() as u64;
                self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
                self.log.flush();
                self.in_hand = None;
                self.backlogs.sent(AgentId::Signal);
                self.downstream.do_send(Flow::Data(RegimeBatch {
                    id: batch.id,
                    bars: batch.bars,
                    regimes: regimes.into(),
                    phases: batch.phases,
                }));
            }
            Flow::End(reason) => {
                self.state = AgentState::Stopped;
                let now = self
                    .last_ts
                    .map_or_else(|| self.clock.now(), |t| self.clock.stamp(t));
                self.log.emit(
                    LogEvent::new(now, SERVICE, Event::AgentStopped)
                        .with("reason", reason.as_str().to_string())
                        .with("regime_changes", self.changes),
                );
                self.log.flush();
                self.backlogs.sent(AgentId::Signal);
                self.downstream.do_send(Flow::End(reason.clone()));
                self.reports.do_send(StageReport::Regime {
                    changes: self.changes,
                });
                ctx.stop();
            }
        }
    }
}

impl Handler<DefaultRegime> for RegimeAgent {
    type Result = Result<String, CommandError>;

    fn handle(&mut self, msg: DefaultRegime, _ctx: &mut Self::Context) -> Self::Result {
        let changed = self.reset(&msg.actor, &msg.reason);
        Ok(format!(
            "every symbol is back at the default regime (unknown); {changed} label(s) changed"
        ))
    }
}

vigil_messages::agent_skeleton!(RegimeAgent, "regime");

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal::Decimal;
    use vigil_core::{Bar, Level, SimClock, Symbol, SymbolId};
    use vigil_log::{LogSink, MemoryLog, Value};
    use vigil_messages::StopReason;
    use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t};

    use super::*;

    record_enum! {
        /// What reached the stand-in for the Signal agent and the Monitor, in arrival order.
        #[derive(Debug)]
        enum Got {
            Batch(RegimeBatch),
            End(StopReason),
            Heartbeat(Heartbeat),
            Report(StageReport),
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
        }));
        h.addr.do_send(Flow::Data(BarBatch {
            id: 1,
            bars: Arc::new(second.clone()),
            phases: Arc::from([]),
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
}
