//! The Signal agent actor: its state, its handlers and the I/O of what its models decide
//! ([`crate::model`]).

use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use vigil_config::SignalConfig;
use vigil_core::{AgentId, AgentState, Direction, Signal, SymbolTable, Timestamp, TraceId};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};
use vigil_messages::{
    AgentCore, AgentWiring, CommandError, Downstream, Figures, Flow, RegimeBatch, SetPaused,
    SignalBatch, StageReport, rebuilt,
};

use vigil_model::Predictor;

use crate::model::ActiveModel;

const SERVICE: &str = "signal_agent";

/// The Signal agent actor.
pub struct SignalAgent {
    models: Vec<Predictor>,
    model: ActiveModel,
    emitted: Vec<Option<Direction>>,
    warmup: usize,
    symbols: SymbolTable,
    core: AgentCore,
    downstream: Downstream<SignalBatch>,
    paused: bool,
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
    /// The model parameters, to rebuild the models after a crash.
    cfg: SignalConfig,
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
    /// Creates the agent for the session's symbols, wired by `wiring` and logging to `log`;
    /// its batches go to the Risk agent through `downstream`.
    pub fn new(
        cfg: &SignalConfig,
        model: ActiveModel,
        symbols: SymbolTable,
        wiring: AgentWiring,
        log: LogBuffer,
        downstream: Recipient<Flow<SignalBatch>>,
    ) -> Self {
        let n = symbols.len();
        let core = AgentCore::new(AgentId::Signal, wiring, log);
        Self {
            models: (0..n).map(|_| model.predictor(cfg)).collect(),
            emitted: vec![None; n],
            warmup: model.warmup(cfg),
            model,
            symbols,
            downstream: core.downstream(downstream, AgentId::Risk),
            core,
            paused: false,
            signals: 0,
            suppressed: 0,
            last_ts: None,
            batches: 0,
            bars: 0,
            failures: 0,
            spent: chrono::Duration::zero(),
            spent_batches: 0,
            cfg: cfg.clone(),
        }
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.core.heartbeat(
            self.signals,
            Figures::Signal {
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
        );
        self.spent = chrono::Duration::zero();
        self.spent_batches = 0;
    }

    fn run_batch(&mut self, batch: RegimeBatch) {
        self.downstream.hold(batch.id, &batch.phases);
        let t0 = self.core.wall.now();
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
            let regime = batch.regimes.get(idx).copied().unwrap_or_default();
            let prediction = match model.update(close, f64::from(regime.code())) {
                Ok(p) => p,
                Err(e) => {
                    // The model failed on this bar: no signal from it, and a fault the
                    // Monitor escalates (a model that cannot run must not trade silently).
                    self.failures += 1;
                    self.core
                        .fault(format!("model {}: {e}", self.model.label()), false);
                    continue;
                }
            };
            let Some(prediction) = prediction else {
                continue;
            };
            let target = match prediction.position {
                Some(p) if p > 0.0 => Direction::Long,
                Some(p) if p < 0.0 => Direction::Short,
                Some(_) => Direction::Flat,
                None => continue,
            };
            if self.emitted[i] == Some(target) {
                continue;
            }
            let symbol = self.symbols.shared(bar.symbol);
            let trace_id = TraceId::for_signal(&symbol, bar.ts);
            let signal_id = trace_id.signal_id();
            // Strength: for the EMA cross, the gap as a fraction of price (1% = full).
            let strength = prediction.strength;
            let ts = self.core.clock.stamp(bar.ts);
            let context = LogContext {
                signal_id: Some(signal_id.clone()),
                signal_strength: Some(strength),
                regime: Some(regime),
                model_version: Some(self.model.label()),
                portfolio_value: None,
            };
            if self.paused {
                self.suppressed += 1;
                self.core.log.emit(
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
            self.core.log.emit(
                LogEvent::new(ts, SERVICE, Event::SignalGenerated)
                    .trace(&trace_id)
                    .with("symbol", symbol.clone())
                    .with("direction", target.as_str())
                    .with("price", bar.close)
                    .with("model_output", prediction.output)
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
                    model_version: self.model.label(),
                },
            ));
        }
        self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
        self.core.log.flush();
        self.batches += 1;
        self.bars += batch.bars.len() as u64;
        self.spent += self.core.wall.now() - t0;
        self.spent_batches += 1;
        self.downstream.send(SignalBatch {
            id: batch.id,
            bars: batch.bars,
            regimes: batch.regimes,
            signals,
            phases: batch.phases,
        });
    }
}

impl Actor for SignalAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(
            self.core
                .start_line()
                .with("model", self.model.label())
                .with("warmup_bars", self.warmup),
        );
        self.heartbeat(ctx);
        self.core.heartbeat_every(ctx, Self::heartbeat);
    }
}

impl actix::Supervised for SignalAgent {
    /// Rebuilds the models from their parameters (they warm up again on the next bars,
    /// so no signal comes from half-updated averages); the pause switch, an operator's
    /// command, stays. A batch the crash interrupted goes on empty, so that flow control
    /// continues.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        let n = self.symbols.len();
        self.models = (0..n).map(|_| self.model.predictor(&self.cfg)).collect();
        self.emitted = vec![None; n];
        self.downstream.restarting(&mut self.core);
        let now = self.core.clock.now();
        self.core.log.emit(
            rebuilt(
                now,
                AgentId::Signal,
                &format!("models reset; they warm up again over {} bars", self.warmup),
            )
            .with("paused", self.paused),
        );
        self.core.log.flush();
    }
}

impl Handler<Flow<RegimeBatch>> for SignalAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<RegimeBatch>, ctx: &mut Self::Context) {
        self.core.taken();
        match msg {
            Flow::Data(batch) => self.run_batch(batch),
            Flow::End(reason) => {
                self.core.stopped(
                    self.core
                        .stop_line(self.last_ts, &reason)
                        .with("signals", self.signals),
                );
                self.downstream.end(reason);
                self.core.report(StageReport::Signal {
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
        self.core.state = if msg.paused {
            AgentState::Paused
        } else {
            AgentState::Running
        };
        let now = self.core.clock.now();
        let event = if msg.paused {
            Event::AgentPaused
        } else {
            Event::AgentResumed
        };
        self.core.log.emit(
            LogEvent::new(now, SERVICE, event)
                .with("agent", "signal")
                .with("actor", msg.actor)
                .with("reason", msg.reason),
        );
        self.core.log.flush();
        Ok(format!("the signal agent is {word}"))
    }
}

vigil_messages::agent_skeleton!(SignalAgent, "signal");

#[cfg(test)]
mod tests;
