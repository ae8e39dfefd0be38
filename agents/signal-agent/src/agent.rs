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
use crate::shadow::{DriftLinks, Noted, Save, SaveFailed, Shadow, ShadowLinks, wanted};
use vigil_deploy::rollback::{Guard, Trigger};
use vigil_deploy::shadow::Wanted;

mod canary;

pub(crate) use canary::CanaryRun;
pub use canary::{CanaryLinks, ReleaseLoader};

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
    /// A release's candidate, run in shadow beside the model.
    shadow: Option<Shadow>,
    /// Starts a release of the traded model and loads its shadow run (a release started
    /// while the session runs).
    release_loader: Option<ReleaseLoader>,
    /// The task that writes the canary's decisions to the store, in order.
    canary_writer: Option<tokio::sync::mpsc::UnboundedSender<canary::CanaryWrite>>,
    /// The model the session started with.
    started_with: &'static str,
    /// Automatic rollback: the guard over a model switched in, while the one it replaced
    /// runs beside it.
    guard: Option<Guard>,
    /// The traded model's drift watch.
    drift: Option<vigil_deploy::drift::DriftWatch>,
    /// The exchange calendar that dates the bars' sessions (for the shadow run and the
    /// drift watch).
    calendar: Option<vigil_calendar::Calendar>,
    /// The model an automatic rollback stopped.
    stopped: Option<&'static str>,
    /// Its own address, for answers from tasks it starts.
    address: Option<Addr<SignalAgent>>,
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
        let model_label = model.label();
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
            shadow: None,
            canary_writer: None,
            release_loader: None,
            started_with: model_label,
            guard: None,
            stopped: None,
            drift: None,
            calendar: None,
            address: None,
        }
    }

    /// Watches the traded model's drift against the data it was gated on (a model loaded
    /// from an artifact; nothing for the built-in one).
    #[must_use]
    pub fn with_drift(mut self, links: DriftLinks) -> Self {
        if let Some(artifact) = self.model.artifact() {
            let watch = vigil_deploy::drift::DriftWatch::new(
                artifact,
                links.baseline,
                &links.config,
                self.symbols.len(),
            );
            self.drift = Some(watch);
            self.calendar = Some(links.calendar);
        }
        self
    }

    /// Lets an operator start a release of the traded model while the session runs
    /// (`vigil model release start`, `vigil ctl model-release NAME start`).
    pub fn with_release_loader(mut self, loader: ReleaseLoader) -> Self {
        self.release_loader = Some(loader);
        self
    }

    /// Runs a release's candidate in shadow beside the model: on the same bars, through a
    /// simulated venue, never an order.
    #[must_use]
    pub fn with_shadow(mut self, links: ShadowLinks) -> Self {
        self.calendar = Some(links.calendar.clone());
        self.shadow = Some(Shadow::new(links, self.symbols.len(), &self.cfg));
        self
    }

    /// The candidate's turn on one bar production just decided on (`production`: what it
    /// wants); a session that ended is logged and judged at once (a canary's step changes
    /// from this bar). Returns the candidate's wanted position and its decision time.
    fn shadow_bar(
        &mut self,
        bar: &vigil_core::Bar,
        regime: vigil_core::Regime,
        date: Option<chrono::NaiveDate>,
        production: Option<Wanted>,
    ) -> (Option<f64>, i64) {
        let Some(shadow) = self.shadow.as_mut() else {
            return (None, 0);
        };
        let Some(close) = bar.close.to_f64() else {
            return (None, 0);
        };
        let canary = shadow.canary.trading();
        let t = self.core.wall.now();
        let noted = shadow.bar(
            bar.ts,
            date,
            bar.symbol.index(),
            close,
            f64::from(regime.code()),
            production,
        );
        let ns = (self.core.wall.now() - t).num_nanoseconds().unwrap_or(0);
        let position = shadow.last_position;
        let mut trigger = None;
        if canary {
            // In a canary the candidate trades: the rollback guard watches it.
            if shadow.canary_guard.is_none() && shadow.rollback.enabled {
                shadow.canary_guard = Some(Guard::new(&shadow.rollback, self.symbols.len()));
            }
            if let Some(guard) = shadow.canary_guard.as_mut() {
                trigger = guard.bar(
                    bar.symbol.index(),
                    close,
                    shadow.last_failed,
                    ns as f64,
                    position,
                );
            }
        }
        let ts = self.core.clock.now();
        let now = self.core.wall.now();
        match noted {
            None => {}
            Some(Noted::Ended(day, figures, at)) => {
                let at = self.core.clock.stamp(at);
                let mut line = LogEvent::new(at, SERVICE, Event::ShadowSessionEnded)
                    .with("release", shadow.release_id)
                    .with("candidate", shadow.label)
                    .with("session", day.to_string())
                    .with("bars", figures.bars)
                    .with("errors", figures.errors)
                    .with("outliers", figures.outliers)
                    .with("candidate_return", figures.candidate_return)
                    .with("production_return", figures.production_return);
                if let Ok(c) = figures.pairs.correlation() {
                    line = line.with("correlation", c);
                }
                self.core.log.emit(line);
                match shadow.row(day, &figures, now) {
                    Ok(row) => shadow.pending.push(row),
                    Err(e) => self
                        .core
                        .log
                        .emit(save_failed(ts, shadow, &day.to_string(), &e)),
                }
                self.canary_session(day, &figures, at);
            }
            Some(Noted::Failed(day, e)) => {
                self.failures += 1;
                self.core.log.emit(
                    LogEvent::new(ts, SERVICE, Event::ShadowModelFailed)
                        .with("release", shadow.release_id)
                        .with("candidate", shadow.label)
                        .with("session", day.to_string())
                        .with("error", e.to_string()),
                );
            }
        }
        if let Some(t) = trigger {
            self.canary_abort(
                &format!(
                    "rollback guard on the candidate: {}: {} (threshold {})",
                    t.rule, t.value, t.threshold
                ),
                "vigil",
                ts,
            );
        }
        (position, ns)
    }

    /// After a batch the shadow run saw: its timing, and the save when one is due.
    fn shadow_batch_end(&mut self, production_ns: i64, candidate_ns: i64, decided: u64) {
        let Some(shadow) = self.shadow.as_mut() else {
            return;
        };
        if decided > 0 && shadow.recording && !shadow.paused {
            shadow.tracker.timed(
                production_ns as f64 / decided as f64,
                candidate_ns as f64 / decided as f64,
                decided,
            );
        }
        let ts = self.core.clock.now();
        let now = self.core.wall.now();
        match shadow.due(now) {
            None => {}
            Some(read) => {
                if let Err(e) = read {
                    self.failures += 1;
                    self.core.log.emit(save_failed(
                        ts,
                        shadow,
                        "-",
                        &format!("resident memory: {e}"),
                    ));
                }
                Self::save(shadow, now, None, &mut self.core.log, ts);
            }
        }
    }

    /// Hands the sessions ended since the last save and the running one's figures to the
    /// saver task, as one write (logged when they cannot be encoded or the task is gone).
    fn save(
        shadow: &mut Shadow,
        now: vigil_core::Timestamp,
        done: Option<tokio::sync::oneshot::Sender<Option<SaveFailed>>>,
        log: &mut LogBuffer,
        ts: vigil_core::Timestamp,
    ) {
        let mut rows = std::mem::take(&mut shadow.pending);
        if let Some((day, figures)) = shadow.tracker.current() {
            match shadow.row(*day, figures, now) {
                Ok(row) => rows.push(row),
                Err(e) => log.emit(save_failed(ts, shadow, &day.to_string(), &e)),
            }
        }
        let sessions = rows
            .iter()
            .map(|r| r.session.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let sent = shadow.saver.as_ref().map(|tx| tx.send(Save { rows, done }));
        match sent {
            Some(Ok(())) => {}
            Some(Err(_)) | None => log.emit(save_failed(
                ts,
                shadow,
                &sessions,
                "the saver task is not running",
            )),
        }
    }

    /// Starts the task that writes the shadow figures, in order, to the store.
    fn start_saver(&mut self, ctx: &mut Context<Self>) {
        let Some(shadow) = self.shadow.as_mut() else {
            return;
        };
        if shadow.saver.is_some() {
            return; // a restart after a crash: the task runs on
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Save>();
        let store = shadow.store.clone();
        let me = ctx.address().recipient::<SaveFailed>();
        actix::spawn(async move {
            while let Some(Save { rows, done }) = rx.recv().await {
                let failed = if rows.is_empty() {
                    None // nothing ran yet
                } else {
                    store
                        .save_shadow_sessions(&rows)
                        .await
                        .err()
                        .map(|e| SaveFailed {
                            rows,
                            error: e.to_string(),
                        })
                };
                // The last save's outcome goes to the one waiting for it, others to the
                // agent's mailbox.
                match done {
                    Some(done) => {
                        if let Err(Some(failed)) = done.send(failed) {
                            me.do_send(failed);
                        }
                    }
                    None => {
                        if let Some(failed) = failed {
                            me.do_send(failed);
                        }
                    }
                }
            }
        });
        shadow.saver = Some(tx);
        let now = self.core.clock.now();
        let resume_after = shadow
            .tracker
            .current()
            .and_then(|(_, s)| s.last_bar_at)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::ShadowStarted)
                .with("release", shadow.release_id)
                .with("candidate", shadow.label)
                .with("production", shadow.production.clone())
                .with("sessions", shadow.resumed_sessions)
                .with("resume_after", resume_after),
        );
        if shadow.canary.step > 0 {
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::CanaryStarted)
                    .with("release", shadow.release_id)
                    .with("candidate", shadow.label)
                    .with("production", shadow.production.clone())
                    .with("step", u64::from(shadow.canary.step))
                    .with("weight", shadow.canary.weight)
                    .with("sessions", shadow.canary.step_sessions()),
            );
        }
        self.core.log.flush();
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
                model: self.model.label(),
                shadow: self.shadow.as_ref().map(|s| s.label),
                stopped: self.stopped,
                release: self.shadow.as_ref().map(|s| {
                    let state = match (s.recording, s.paused) {
                        (false, _) => "warm",
                        (true, true) => "paused",
                        (true, false) => "running",
                    };
                    (s.release_id, state)
                }),
                canary: self.shadow.as_ref().and_then(|s| {
                    let c = &s.canary;
                    let state = match c.state {
                        _ if c.completed => "completed",
                        vigil_core::LegState::Live => "live",
                        vigil_core::LegState::HandOver => "hand_over",
                        vigil_core::LegState::Close => "close",
                    };
                    (c.step > 0).then_some((c.step, c.weight, state))
                }),
            },
        );
        self.spent = chrono::Duration::zero();
        self.spent_batches = 0;
    }

    fn run_batch(&mut self, batch: RegimeBatch) {
        self.downstream.hold(batch.id, &batch.phases);
        let t0 = self.core.wall.now();
        let mut signals = Vec::new();
        let mut production_ns = 0_i64;
        let mut trigger = None;
        let mut drifts = Vec::new();
        let recording = self.shadow.as_ref().is_some_and(|s| s.recording);
        let dating = recording || self.drift.is_some();
        let (mut candidate_ns, mut decided_bars) = (0_i64, 0_u64);
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
            let timed = (recording || self.guard.is_some()).then(|| self.core.wall.now());
            let decided = model.update(close, f64::from(regime.code()));
            let want = match &decided {
                Ok(Some(p)) => wanted(p),
                Ok(None) | Err(_) => None,
            };
            // Dated once, for the shadow run and the drift watch.
            let date = if dating {
                self.calendar.as_ref().map(|c| c.bar_date(bar.ts))
            } else {
                None
            };
            if let (Some(watch), Some(date)) = (self.drift.as_mut(), date)
                && let Some(judged) = watch.bar(
                    date,
                    i,
                    close,
                    f64::from(regime.code()),
                    want.map(|w| w.position),
                )
            {
                drifts.push((judged, bar.ts));
            }
            if let Some(t) = timed {
                let ns = (self.core.wall.now() - t).num_nanoseconds().unwrap_or(0);
                production_ns += ns;
                if let Some(guard) = self.guard.as_mut()
                    && trigger.is_none()
                {
                    trigger = guard.bar(
                        i,
                        close,
                        decided.is_err(),
                        ns as f64,
                        want.map(|w| w.position),
                    );
                }
            }
            // The candidate's turn on the same bar, then (in a canary) both together.
            let mut candidate = None;
            if self.shadow.is_some() {
                let (position, ns) = self.shadow_bar(bar, regime, date, want);
                candidate = position;
                candidate_ns += ns;
                decided_bars += 1;
            }
            if let Err(e) = &decided {
                // The model failed on this bar: no signal from it, and a fault the Monitor
                // escalates (a model that cannot run must not trade silently).
                self.failures += 1;
                self.core
                    .fault(format!("model {}: {e}", self.model.label()), false);
            }
            if self.shadow.as_ref().is_some_and(|s| s.canary.holds(i)) {
                if let Some(signal) = self.canary_signal(bar, regime, want, candidate) {
                    signals.push((idx, signal));
                }
                continue;
            }
            let Ok(prediction) = decided else {
                continue; // failed: counted above
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
                    canary: None,
                },
            ));
        }
        self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
        if self.shadow.is_some() {
            self.shadow_batch_end(production_ns, candidate_ns, decided_bars);
        }
        for (judged, at) in drifts {
            let at = self.core.clock.stamp(at);
            self.log_drift(&judged, at);
        }
        if let Some(trigger) = trigger {
            self.roll_back(trigger);
        }
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
            arrived_at: batch.arrived_at,
        });
    }
}

impl Actor for SignalAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.address = Some(ctx.address());
        self.core.started(
            self.core
                .start_line()
                .with("model", self.model.label())
                .with("warmup_bars", self.warmup),
        );
        self.start_saver(ctx);
        self.heartbeat(ctx);
        self.core.heartbeat_every(ctx, Self::heartbeat);
    }
}

/// The `shadow_save_failed` line.
fn save_failed(ts: vigil_core::Timestamp, shadow: &Shadow, session: &str, error: &str) -> LogEvent {
    LogEvent::new(ts, SERVICE, Event::ShadowSaveFailed)
        .with("release", shadow.release_id)
        .with("session", session.to_string())
        .with("error", error.to_string())
}

impl Handler<SaveFailed> for SignalAgent {
    type Result = ();

    /// Logs the failure and keeps the ended sessions' rows for the next save (the running
    /// session's row is written afresh each time).
    fn handle(&mut self, msg: SaveFailed, _ctx: &mut Self::Context) {
        self.save_failed(msg);
    }
}

impl SignalAgent {
    /// Logs a failed save and keeps the ended sessions' rows for the next one.
    fn save_failed(&mut self, msg: SaveFailed) {
        self.failures += 1;
        if let Some(shadow) = self.shadow.as_mut() {
            let now = self.core.clock.now();
            let sessions = msg
                .rows
                .iter()
                .map(|r| r.session.as_str())
                .collect::<Vec<_>>()
                .join(",");
            self.core
                .log
                .emit(save_failed(now, shadow, &sessions, &msg.error));
            self.core.log.flush();
            let running = shadow.tracker.current().map(|(d, _)| d.to_string());
            let mut kept: Vec<_> = msg
                .rows
                .into_iter()
                .filter(|r| Some(&r.session) != running.as_ref())
                .filter(|r| !shadow.pending.iter().any(|p| p.session == r.session))
                .collect();
            kept.append(&mut shadow.pending);
            shadow.pending = kept;
        }
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
        if let Some(shadow) = self.shadow.as_mut() {
            shadow.rebuild(&self.cfg);
        }
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
                // The canary's decisions reach the store first (its writer answers a
                // flush once every one before it is written).
                if let Some(tx) = self.canary_writer.as_ref() {
                    let (done, rx) = tokio::sync::oneshot::channel();
                    if tx.send(canary::CanaryWrite::Flush(done)).is_ok() {
                        ctx.wait(
                            rx.into_actor(self)
                                .map(move |_, act, ctx| act.end(reason, ctx)),
                        );
                        return;
                    }
                }
                self.end(reason, ctx);
            }
        }
    }
}

impl SignalAgent {
    /// The flow's end once the canary's decisions are written: the drift's last
    /// judgement, the shadow run's last figures, then the stop.
    fn end(&mut self, reason: vigil_messages::StopReason, ctx: &mut Context<Self>) {
        {
            {
                if let Some(judged) = self.drift.as_ref().and_then(|w| w.judge()) {
                    let now = self.core.clock.now();
                    self.log_drift(&judged, now);
                }
                // The shadow run's last figures reach the store before the agent stops.
                let now = self.core.clock.now();
                let wall = self.core.wall.now();
                if let Some(shadow) = self.shadow.as_mut().filter(|s| s.recording) {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    Self::save(shadow, wall, Some(tx), &mut self.core.log, now);
                    self.core.log.flush();
                    ctx.wait(rx.into_actor(self).map(move |outcome, act, ctx| {
                        // `Err`: the saver is gone, which was logged when sent.
                        if let Ok(Some(failed)) = outcome {
                            act.save_failed(failed);
                        }
                        act.finish(reason, ctx);
                    }));
                    return;
                }
                self.finish(reason, ctx);
            }
        }
    }
}

impl SignalAgent {
    /// The end of the flow: the stop line, the end downstream, the report.
    fn finish(&mut self, reason: vigil_messages::StopReason, ctx: &mut Context<Self>) {
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

impl Handler<vigil_messages::SwitchModel> for SignalAgent {
    type Result = Result<String, CommandError>;

    /// Blue-green: trades the model it runs beside the traded one, from the next bar. Its
    /// predictors are warm (they saw every bar), so no warm-up; the one it replaces runs on
    /// beside it, warm, so that a switch back is as quick. Positions are carried over: the
    /// new model's next target that differs from the last signal realigns them.
    fn handle(
        &mut self,
        msg: vigil_messages::SwitchModel,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        let from = self.model.label();
        if msg.to == from {
            return Ok(format!("the signal agent trades {from} already")); // idempotent
        }
        let Some(shadow) = self.shadow.as_mut() else {
            return Err(CommandError::Conflict(format!(
                "the session trades {from} and runs no other model; {} trades from the next \
                 start",
                msg.to
            )));
        };
        if shadow.label != msg.to {
            return Err(CommandError::Conflict(format!(
                "the session trades {from} and runs {} beside it; {} trades from the next start",
                shadow.label, msg.to
            )));
        }
        if shadow.paused {
            return Err(CommandError::Conflict(format!(
                "{} is paused (release {}): it has not seen the bars since, so it is not warm; \
                 resume the release first, or restart the session to trade it",
                msg.to, shadow.release_id
            )));
        }
        let now = self.core.clock.now();
        let wall = self.core.wall.now();
        if shadow.recording {
            // The shadow run's last figures, before it ends.
            Self::save(shadow, wall, None, &mut self.core.log, now);
        }
        shadow.swap(&mut self.model, &mut self.models);
        self.warmup = self.model.warmup(&self.cfg);
        // The drift watch was the first model's; the next start watches the new one.
        self.drift = None;
        // Guarded while it is not the model the session started with, the one it
        // replaced running beside it for a switch back.
        self.guard = (self.model.label() != self.started_with && shadow.rollback.enabled)
            .then(|| Guard::new(&shadow.rollback, self.symbols.len()));
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::ModelSwitched)
                .with("from", from)
                .with("to", self.model.label())
                .with("actor", msg.actor)
                .with("reason", msg.reason),
        );
        self.core.log.flush();
        Ok(format!(
            "the signal agent trades {} from the next bar; {from} runs on beside it for a switch back",
            self.model.label()
        ))
    }
}

impl SignalAgent {
    /// The drift judgement's lines: always `model_drift_checked`, and `model_drifted` when
    /// something drifted.
    fn log_drift(&mut self, judged: &vigil_deploy::drift::SessionDrift, at: vigil_core::Timestamp) {
        let model = self.model.label();
        let psi = judged
            .psi
            .iter()
            .map(|(n, v)| format!("{n}={v:.3}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut line = LogEvent::new(at, SERVICE, Event::ModelDriftChecked)
            .with("model", model)
            .with("session", judged.session.to_string())
            .with("bars", judged.bars)
            .with("psi", psi);
        if let Some(z) = judged.tracking_z {
            line = line.with("tracking_z", z);
        }
        self.core.log.emit(line);
        if !judged.drifted.is_empty() {
            self.core.log.emit(
                LogEvent::new(at, SERVICE, Event::ModelDrifted)
                    .with("model", model)
                    .with("session", judged.session.to_string())
                    .with("bars", judged.bars)
                    .with("drifted", judged.drifted.join("; ")),
            );
        }
        self.core.log.flush();
    }

    /// Automatic rollback: trades the model running beside the traded one again, from the
    /// next bar; the failed one stops running; the registry records it (production back to
    /// `last_stable`, the failed version retired) when its production is the failed one.
    fn roll_back(&mut self, trigger: Trigger) {
        let Some(mut shadow) = self.shadow.take() else {
            return;
        };
        self.guard = None;
        let from = self.model.label();
        shadow.swap(&mut self.model, &mut self.models);
        self.warmup = self.model.warmup(&self.cfg);
        let to = self.model.label();
        self.stopped = Some(from);
        let now = self.core.clock.now();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::ModelAutoRolledBack)
                .with("from", from)
                .with("to", to)
                .with("rule", trigger.rule)
                .with("value", trigger.value.clone())
                .with("threshold", trigger.threshold.clone()),
        );
        self.core.log.flush();
        let store = shadow.store.clone();
        let at = self.core.wall.now();
        let me = self.address.clone();
        let reason = format!(
            "automatic rollback: {}: {} (threshold {})",
            trigger.rule, trigger.value, trigger.threshold
        );
        actix::spawn(async move {
            let outcome = record_rollback(&store, from, &reason, at).await;
            if let Some(me) = me {
                me.do_send(RollbackRecorded { from, outcome });
            }
        });
    }
}

/// The log line of a registry change the agent made: its audit row's fields.
pub(crate) fn audited(
    at: vigil_core::Timestamp,
    event: Event,
    a: &vigil_store::ModelAudit,
) -> LogEvent {
    LogEvent::new(at, SERVICE, event)
        .with("model", a.name.clone())
        .with("version", a.version.clone())
        .with("by", a.actor.clone())
        .with("reason", a.reason.clone())
        .with("detail", a.detail.clone())
}

/// Model `name`'s registry as the store holds it.
async fn read_registry(
    store: &vigil_store::SharedStore,
    name: &str,
) -> Result<vigil_deploy::registry::Registry, String> {
    vigil_deploy::registry::Registry::read(&**store, name)
        .await
        .map_err(|e| e.to_string())
}

/// The registry's side of an automatic rollback, as `vigil model rollback` makes it.
async fn record_rollback(
    store: &vigil_store::SharedStore,
    from: &str,
    reason: &str,
    at: vigil_core::Timestamp,
) -> Result<vigil_store::RegistryWrite, String> {
    use vigil_deploy::registry::{self, Actor, PRODUCTION};
    let (name, semver) = from.split_once('@').unwrap_or((from, ""));
    let err = |e: vigil_store::StoreError| e.to_string();
    let reg = read_registry(store, name).await?;
    match reg.alias(PRODUCTION) {
        Some(p) if registry::semver_of(&p.version) == semver => {}
        Some(p) => {
            return Err(format!(
                "the registry's production is {} {}, not {from} (switched by vigil ctl?): \
                 left as it is",
                name, p.version
            ));
        }
        None => {
            return Err(format!(
                "{name} has no version in production: nothing to record"
            ));
        }
    }
    let actor = Actor {
        who: "vigil",
        reason,
        at,
    };
    let write = registry::rollback(&reg, &actor).map_err(|e| e.to_string())?;
    store.registry_apply(&write).await.map_err(err)?;
    Ok(write)
}

/// A release step taken on the store: the release must be the one this session runs.
async fn record_step(
    store: &vigil_store::SharedStore,
    name: &str,
    release_id: i64,
    action: vigil_deploy::release::Action,
    actor: &vigil_deploy::registry::Actor<'_>,
) -> Result<vigil_store::RegistryWrite, String> {
    let reg = read_registry(store, name).await?;
    match reg.open_release() {
        Some(r) if r.id == release_id => {}
        Some(r) => {
            return Err(format!(
                "{name}: the open release is {} (of {}), not release {release_id} that this \
                 session runs; restart the session to run it",
                r.id, r.candidate
            ));
        }
        None => {}
    }
    let write = vigil_deploy::release::act(&reg, action, actor).map_err(|e| e.to_string())?;
    store
        .registry_apply(&write)
        .await
        .map_err(|e| e.to_string())?;
    Ok(write)
}

impl Handler<vigil_messages::ReleaseStep> for SignalAgent {
    type Result = ResponseActFuture<Self, Result<String, CommandError>>;

    /// Records the step in the registry (audited, as `vigil model release` does), then
    /// applies it to the candidate: pause stops it, resume starts it afresh (new predictors
    /// and simulated books: the bars missed would span a gap), abort stops it for good.
    fn handle(
        &mut self,
        msg: vigil_messages::ReleaseStep,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        use vigil_deploy::release::Action as Step;
        let refuse = |e: CommandError| -> Self::Result { Box::pin(actix::fut::ready(Err(e))) };
        let step = match msg.step.as_str() {
            "pause" => Step::Pause,
            "resume" => Step::Resume,
            "abort" => Step::Abort,
            "step" => return Box::pin(actix::fut::ready(self.promote_step(&msg))),
            "start" => return self.start_release(&msg),
            other => {
                return refuse(CommandError::Invalid(format!(
                    "unknown release step {other:?}: start, pause, resume, step or abort"
                )));
            }
        };
        if step == Step::Abort
            && let Some(s) = self
                .shadow
                .as_ref()
                .filter(|s| s.name == msg.model && s.canary.trading())
        {
            // A canary: unwound from the next bar, recorded by the canary's writer.
            let candidate = s.label;
            let now = self.core.clock.now();
            self.canary_abort(
                &format!("aborted by {}: {}", msg.actor, msg.reason),
                &msg.actor,
                now,
            );
            return Box::pin(actix::fut::ready(Ok(format!(
                "the canary of {candidate} is aborted: weight 0 from the next bar, its \
                 positions unwound by [release.canary] unwind"
            ))));
        }
        let Some(shadow) = self
            .shadow
            .as_ref()
            .filter(|s| s.name == msg.model && s.recording)
        else {
            return refuse(CommandError::Conflict(format!(
                "this session runs no release of {} in shadow; `vigil model release {}` changes \
                 the store, and a session picks it up at its next start",
                msg.model, msg.step
            )));
        };
        let store = shadow.store.clone();
        let release_id = shadow.release_id;
        let at = self.core.wall.now();
        let name = msg.model.clone();
        let (who, why) = (msg.actor.clone(), msg.reason.clone());
        let recorded = async move {
            let actor = vigil_deploy::registry::Actor {
                who: &who,
                reason: &why,
                at,
            };
            record_step(&store, &name, release_id, step, &actor).await
        };
        Box::pin(recorded.into_actor(self).map(move |res, act, _ctx| {
            let write = res.map_err(CommandError::Invalid)?;
            match step {
                Step::Pause => {
                    if let Some(s) = act.shadow.as_mut() {
                        s.paused = true;
                    }
                }
                Step::Resume => {
                    if let Some(s) = act.shadow.as_mut() {
                        s.resume(&act.cfg);
                    }
                }
                Step::Abort => {
                    // Its figures so far are in the store; the candidate stops for good.
                    let now = act.core.clock.now();
                    let wall = act.core.wall.now();
                    if let Some(s) = act.shadow.as_mut() {
                        Self::save(s, wall, None, &mut act.core.log, now);
                    }
                    act.shadow = None;
                }
            }
            let a = &write.audit;
            let now = act.core.clock.now();
            act.core
                .log
                .emit(audited(now, Event::ModelReleaseChanged, a));
            act.core.log.flush();
            Ok(a.detail.clone())
        }))
    }
}

impl SignalAgent {
    /// An operator starts a release of the traded model: recorded in the store, then its
    /// candidate runs in shadow from the next bar (its predictors warm up on the bars to
    /// come).
    fn start_release(
        &mut self,
        msg: &vigil_messages::ReleaseStep,
    ) -> ResponseActFuture<Self, Result<String, CommandError>> {
        let refuse = |e: CommandError| -> ResponseActFuture<Self, Result<String, CommandError>> {
            Box::pin(actix::fut::ready(Err(e)))
        };
        let traded = self
            .model
            .artifact()
            .map(|a| a.manifest.name.clone())
            .unwrap_or_default();
        if traded != msg.model {
            return refuse(CommandError::Conflict(format!(
                "this session trades {}, not {}; the release starts in the store and runs \
                 with a session of {}",
                self.model.label(),
                msg.model,
                msg.model
            )));
        }
        if let Some(s) = &self.shadow {
            return refuse(CommandError::Conflict(format!(
                "this session runs release {} ({}) already",
                s.release_id, s.label
            )));
        }
        let Some(loader) = self.release_loader.clone() else {
            return refuse(CommandError::Conflict(
                "this session cannot load a release (its model is not from the registry)".into(),
            ));
        };
        let at = self.core.wall.now();
        let started = loader(msg.actor.clone(), msg.reason.clone(), at);
        Box::pin(started.into_actor(self).map(move |res, act, ctx| {
            let (write, links) = res.map_err(CommandError::Invalid)?;
            act.calendar = Some(links.calendar.clone());
            act.shadow = Some(Shadow::new(links, act.symbols.len(), &act.cfg));
            act.start_saver(ctx);
            let a = &write.audit;
            let now = act.core.clock.now();
            act.core
                .log
                .emit(audited(now, Event::ModelReleaseStarted, a));
            act.core.log.flush();
            Ok(format!(
                "{}; it runs in this session from the next bar",
                a.detail
            ))
        }))
    }

    /// An operator's "promote step": the canary moves one step on from the next bar (from
    /// shadow to its first step, or from the last step to production), as a pass would.
    fn promote_step(&mut self, msg: &vigil_messages::ReleaseStep) -> Result<String, CommandError> {
        let Some(s) = self
            .shadow
            .as_ref()
            .filter(|s| s.name == msg.model && s.recording)
        else {
            return Err(CommandError::Conflict(format!(
                "this session runs no release of {}; `vigil model release step {}` changes \
                 the store, and a session picks it up at its next start",
                msg.model, msg.model
            )));
        };
        if s.paused || s.canary.state != vigil_core::LegState::Live {
            return Err(CommandError::Conflict(format!(
                "release {} is paused or aborted: nothing to step",
                s.release_id
            )));
        }
        let now = self.core.clock.now();
        self.canary_step(&msg.actor, &msg.reason, now);
        self.core.log.flush();
        let s = self.shadow.as_ref();
        Ok(match s.map(|s| (&s.canary, s.label)) {
            Some((c, _)) if !c.completed => format!(
                "the canary is at step {} ({}% of capital) from the next bar",
                c.step,
                vigil_deploy::canary::percent(Some(c.weight))
            ),
            _ => format!(
                "the canary is complete: {} trades alone from the next bar",
                self.model.label()
            ),
        })
    }
}

/// What recording an automatic rollback in the registry came to.
#[derive(Message)]
#[rtype(result = "()")]
struct RollbackRecorded {
    from: &'static str,
    outcome: Result<vigil_store::RegistryWrite, String>,
}

impl Handler<RollbackRecorded> for SignalAgent {
    type Result = ();

    fn handle(&mut self, msg: RollbackRecorded, _ctx: &mut Self::Context) {
        let now = self.core.clock.now();
        let (name, semver) = msg.from.split_once('@').unwrap_or((msg.from, ""));
        let line = match msg.outcome {
            Ok(w) => {
                let a = &w.audit;
                audited(now, Event::ModelRolledBack, a)
            }
            Err(reason) => {
                self.failures += 1;
                LogEvent::new(now, SERVICE, Event::ModelRollbackUnrecorded)
                    .with("model", name.to_string())
                    .with("version", semver.to_string())
                    .with("reason", reason)
            }
        };
        self.core.log.emit(line);
        self.core.log.flush();
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
