use std::time::Duration;

use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use vigil_bus::{Flow, Heartbeat, RegimeBatch, SetPaused, SignalBatch, StageReport, run_every};
use vigil_config::SignalConfig;
use vigil_core::{
    AgentId, AgentState, Direction, SharedClock, Signal, SymbolTable, Timestamp, TraceId,
};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};

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
        }
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Signal,
            state: self.state,
            at: self.wall.now(),
            processed: self.signals,
        });
    }

    fn run_batch(&mut self, batch: RegimeBatch) {
        let mut signals = Vec::new();
        for (idx, bar) in batch.bars.iter().enumerate() {
            let i = bar.symbol.index();
            let Some(model) = self.models.get_mut(i) else {
                continue;
            };
            let (fast, slow, target) = model.update(bar.close.to_f64().unwrap_or(0.0));
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
        self.downstream.do_send(Flow::Data(SignalBatch {
            id: batch.id,
            bars: batch.bars,
            regimes: batch.regimes,
            signals,
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

impl Handler<Flow<RegimeBatch>> for SignalAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<RegimeBatch>, ctx: &mut Self::Context) {
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
    type Result = ();

    fn handle(&mut self, msg: SetPaused, _ctx: &mut Self::Context) {
        if msg.paused == self.paused {
            return; // idempotent
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
    }
}
