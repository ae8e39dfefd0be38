use std::time::Duration;

use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use vigil_bus::{BarBatch, Flow, Heartbeat, RegimeBatch, StageReport, run_every};
use vigil_config::RegimeConfig;
use vigil_core::{AgentId, AgentState, Regime, SharedClock, SymbolTable, Timestamp};
use vigil_log::{Event, LogBuffer, LogEvent};

use crate::classifier::Classifier;

const SERVICE: &str = "regime_agent";

/// The Regime agent actor.
pub struct RegimeAgent {
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
        }
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Regime,
            state: self.state,
            at: self.wall.now(),
            processed: self.bars,
        });
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

impl Handler<Flow<BarBatch>> for RegimeAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<BarBatch>, ctx: &mut Self::Context) {
        match msg {
            Flow::Data(batch) => {
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
                }
                self.bars += batch.bars.len() as u64;
                self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
                self.log.flush();
                self.downstream.do_send(Flow::Data(RegimeBatch {
                    id: batch.id,
                    bars: batch.bars,
                    regimes: regimes.into(),
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
                self.downstream.do_send(Flow::End(reason.clone()));
                self.reports.do_send(StageReport::Regime {
                    changes: self.changes,
                });
                ctx.stop();
            }
        }
    }
}
