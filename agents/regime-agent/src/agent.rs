//! The Regime agent actor: its state, its handlers and the I/O of what its classifiers
//! decide ([`crate::classifier`]).

use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use vigil_config::RegimeConfig;
use vigil_core::{AgentId, Regime, SymbolTable, Timestamp};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::{
    AgentCore, AgentWiring, BarBatch, CommandError, DefaultRegime, Downstream, Figures, Flow,
    RegimeBatch, StageReport, rebuilt,
};

use crate::classifier::Classifier;

const SERVICE: &str = "regime_agent";

/// The Regime agent actor.
pub struct RegimeAgent {
    cfg: RegimeConfig,
    classifiers: Vec<Classifier>,
    current: Vec<Regime>,
    symbols: SymbolTable,
    core: AgentCore,
    downstream: Downstream<RegimeBatch>,
    bars: u64,
    changes: u64,
    last_ts: Option<Timestamp>,
    volatility_ratio: f64,
    /// The latest reading, of whichever symbol.
    last_reading: Option<crate::classifier::RegimeReading>,
    /// Classification time and bars since the last heartbeat.
    spent: chrono::Duration,
    spent_bars: u64,
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
    /// Creates the agent for the session's symbols, wired by `wiring` and logging to `log`;
    /// its batches go to the Signal agent through `downstream`.
    pub fn new(
        cfg: &RegimeConfig,
        symbols: SymbolTable,
        wiring: AgentWiring,
        log: LogBuffer,
        downstream: Recipient<Flow<RegimeBatch>>,
    ) -> Self {
        let n = symbols.len();
        let core = AgentCore::new(AgentId::Regime, wiring, log);
        Self {
            cfg: cfg.clone(),
            classifiers: (0..n).map(|_| Classifier::new(cfg)).collect(),
            current: vec![Regime::Unknown; n],
            symbols,
            downstream: core.downstream(downstream, AgentId::Signal),
            core,
            bars: 0,
            changes: 0,
            last_ts: None,
            volatility_ratio: cfg.volatility_ratio,
            last_reading: None,
            spent: chrono::Duration::zero(),
            spent_bars: 0,
        }
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
        self.core.log.emit(
            LogEvent::new(self.core.clock.now(), SERVICE, Event::RegimeReset)
                .with("to", Regime::Unknown.as_str())
                .with("labels_changed", changed)
                .with("actor", actor.to_string())
                .with("reason", reason.to_string()),
        );
        self.core.log.flush();
        changed
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.core.heartbeat(
            self.bars,
            Figures::Regime {
                changes: self.changes,
                detection_latency_s: (self.spent_bars > 0).then(|| {
                    self.spent.num_nanoseconds().unwrap_or(i64::MAX) as f64
                        / 1e9
                        / self.spent_bars as f64
                }),
                confidence: self.last_reading.map(|r| self.confidence(&r)),
            },
        );
        self.spent = chrono::Duration::zero();
        self.spent_bars = 0;
    }

    /// Labels every bar of `batch` and passes the labels on with the bars.
    fn run_batch(&mut self, batch: BarBatch) {
        self.downstream.hold(batch.id, &batch.phases);
        let t0 = self.core.wall.now();
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
                let ts = self.core.clock.stamp(bar.ts);
                self.core.log.emit(
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
        self.spent += self.core.wall.now() - t0;
        self.spent_bars += batch.bars.len() as u64;
        self.bars += batch.bars.len() as u64;
        self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
        self.core.log.flush();
        self.downstream.send(RegimeBatch {
            id: batch.id,
            bars: batch.bars,
            regimes: regimes.into(),
            phases: batch.phases,
            arrived_at: batch.arrived_at,
        });
    }
}

impl Actor for RegimeAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core
            .started(self.core.start_line().with("symbols", self.symbols.len()));
        self.heartbeat(ctx);
        self.core.heartbeat_every(ctx, Self::heartbeat);
    }
}

impl actix::Supervised for RegimeAgent {
    /// Falls back to the default label for every symbol and classifies afresh; a batch the
    /// crash interrupted goes on empty, so that flow control continues.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.downstream.restarting(&mut self.core);
        self.reset("supervisor", "restarted after a crash");
        self.core.log.emit(rebuilt(
            self.core.clock.now(),
            AgentId::Regime,
            "classifiers reset; every symbol at the default label",
        ));
        self.core.log.flush();
    }
}

impl Handler<Flow<BarBatch>> for RegimeAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<BarBatch>, ctx: &mut Self::Context) {
        self.core.taken();
        match msg {
            Flow::Data(batch) => self.run_batch(batch),
            Flow::End(reason) => {
                self.core.stopped(
                    self.core
                        .stop_line(self.last_ts, &reason)
                        .with("regime_changes", self.changes),
                );
                self.downstream.end(reason);
                self.core.report(StageReport::Regime {
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
mod tests;
