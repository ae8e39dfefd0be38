//! The canary by capital weight (`vigil_deploy::canary`) in the Signal agent: once a
//! release's candidate steps out of shadow, both versions decide on every bar and each
//! signal carries both, the candidate's share of capital with it; the Risk agent nets them
//! and the Execution agent keeps each version's sub-ledger. At each exchange session's end
//! the step's analysis runs on the paired simulated returns; a pass moves on (from the
//! last step: the candidate is promoted and traded alone), a fail aborts, and the rollback
//! guard watches the candidate on every bar. Every decision is taken on the bars, so a
//! replay of the same data takes the same ones; each is written to the store in order by a
//! task of its own, and a restart resumes the stored step with the stored weight.

use actix::prelude::*;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use vigil_config::{CanaryConfig, CanaryUnwind};
use vigil_core::{CanaryLeg, Direction, LegState, Signal, TraceId};
use vigil_deploy::canary::{self, Analysis, Verdict};
use vigil_deploy::shadow::ShadowSession;
use vigil_log::{Event, LogContext, LogEvent};
use vigil_store::SharedStore;

use super::{SERVICE, SignalAgent};

/// Where the release's canary stands when the session starts (from its stored row).
#[derive(Clone, Debug)]
pub struct CanaryLinks {
    /// 0: still in shadow; k: the k-th step.
    pub step: u32,
    /// The candidate's share of capital at that step.
    pub weight: Decimal,
    /// The last session before the step began (its analysis counts those after).
    pub since: Option<NaiveDate>,
    /// `[release.canary]`.
    pub config: CanaryConfig,
}

/// Starts the release of the traded model's `candidate` in the store (as `vigil model
/// release start` does: by `who`, for `why`, at `at`) and loads its shadow run: what the
/// session hands the agent so that a release started while it runs begins at once.
pub type ReleaseLoader = std::sync::Arc<
    dyn Fn(
            String,
            String,
            vigil_core::Timestamp,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<(vigil_store::RegistryWrite, crate::ShadowLinks), String>,
                    >,
            >,
        > + Send
        + Sync,
>;

/// One decision to write to the store, in order.
#[derive(Debug)]
pub(crate) enum CanaryWrite {
    /// One step on (from the last one: the candidate promoted), by whom and why.
    Step {
        since: Option<NaiveDate>,
        who: String,
        reason: String,
    },
    /// The release aborted.
    Abort { reason: String },
    /// Answer once every write before it is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// What writing a decision came to.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CanaryRecorded {
    release: i64,
    what: String,
    outcome: Result<vigil_store::RegistryWrite, String>,
}

/// The canary's state in the agent.
#[derive(Debug)]
pub(crate) struct CanaryRun {
    pub(crate) step: u32,
    pub(crate) weight: Decimal,
    /// This step's sessions: the candidate's simulated return less production's.
    diffs: Vec<f64>,
    /// Live, or being unwound after an abort.
    pub(crate) state: LegState,
    cfg: CanaryConfig,
    /// Each version's last wanted direction, per symbol.
    prod: Vec<Option<Direction>>,
    cand: Vec<Option<Direction>>,
    /// The last (production, candidate, weight, state) signalled, per symbol.
    emitted: Vec<Option<(Direction, Direction, Decimal, LegState)>>,
    /// After an abort: the symbols whose unwinding was signalled.
    unwound: Vec<bool>,
    /// Every session of the release so far (for the shadow report, in shadow).
    history: Vec<(NaiveDate, ShadowSession)>,
    last_session: Option<NaiveDate>,
    /// The last step passed: the candidate is to be traded alone from the next bar.
    pub(crate) completed: bool,
}

impl CanaryRun {
    pub(crate) fn new(
        links: CanaryLinks,
        symbols: usize,
        stored: &[(NaiveDate, ShadowSession)],
    ) -> Self {
        // The last stored session goes on (the tracker resumes it): judged when it ends.
        let ended = stored.split_last().map_or(&[][..], |(_, rest)| rest);
        let diffs = ended
            .iter()
            .filter(|(d, _)| links.step > 0 && links.since.is_none_or(|s| *d > s))
            .map(|(_, f)| f.candidate_return - f.production_return)
            .collect();
        Self {
            step: links.step,
            weight: if links.step == 0 {
                Decimal::ZERO
            } else {
                links.weight
            },
            diffs,
            state: LegState::Live,
            cfg: links.config,
            prod: vec![None; symbols],
            cand: vec![None; symbols],
            emitted: vec![None; symbols],
            unwound: vec![false; symbols],
            history: ended.to_vec(),
            last_session: ended.last().map(|(d, _)| *d),
            completed: false,
        }
    }

    /// Sessions counted in the step so far.
    pub(crate) fn step_sessions(&self) -> usize {
        self.diffs.len()
    }

    /// Whether production's own signals for `symbol` wait for the canary's pass.
    pub(crate) fn holds(&self, symbol: usize) -> bool {
        match self.state {
            LegState::Live => self.step > 0 && !self.completed,
            LegState::HandOver | LegState::Close => {
                !self.unwound.get(symbol).copied().unwrap_or(true)
            }
        }
    }

    /// The candidate trades capital (a step, not shadow; not aborted).
    pub(crate) fn trading(&self) -> bool {
        self.step > 0 && self.state == LegState::Live && !self.completed
    }

    /// Unwound everywhere a signal could go: the canary is over.
    fn unwound_all(&self) -> bool {
        self.state != LegState::Live
            && self
                .prod
                .iter()
                .zip(&self.unwound)
                .all(|(p, u)| p.is_none() || *u)
    }
}

fn direction(position: f64) -> Direction {
    if position > 0.0 {
        Direction::Long
    } else if position < 0.0 {
        Direction::Short
    } else {
        Direction::Flat
    }
}

impl SignalAgent {
    /// The canary's signal for `bar`, after both versions decided on it (`production` and
    /// `candidate`: what each wants, when it does): one whenever either version's want, the
    /// weight or the state changed since the last for its symbol.
    pub(super) fn canary_signal(
        &mut self,
        bar: &vigil_core::Bar,
        regime: vigil_core::Regime,
        production: Option<vigil_deploy::shadow::Wanted>,
        candidate: Option<f64>,
    ) -> Option<Signal> {
        let shadow = self.shadow.as_mut()?;
        let label = shadow.label;
        let c = &mut shadow.canary;
        let i = bar.symbol.index();
        if i >= c.prod.len() {
            return None;
        }
        if let Some(w) = production {
            c.prod[i] = Some(direction(w.position));
        }
        if let Some(p) = candidate.filter(|_| c.state == LegState::Live) {
            c.cand[i] = Some(direction(p));
        }
        let signal = self.canary_leg(bar, regime, label);
        if self.shadow.as_ref().is_some_and(|s| s.canary.unwound_all()) {
            // The canary is over: its figures are saved, the candidate stops for good.
            let now = self.core.clock.now();
            let wall = self.core.wall.now();
            if let Some(s) = self.shadow.as_mut() {
                Self::save(s, wall, None, &mut self.core.log, now);
            }
            self.shadow = None;
        }
        signal
    }

    fn canary_leg(
        &mut self,
        bar: &vigil_core::Bar,
        regime: vigil_core::Regime,
        label: &'static str,
    ) -> Option<Signal> {
        let c = &mut self.shadow.as_mut()?.canary;
        let i = bar.symbol.index();
        let pd = c.prod[i]?; // production is not warm yet
        let (cd, weight) = match c.state {
            LegState::Live => (c.cand[i].unwrap_or(Direction::Flat), c.weight),
            LegState::HandOver | LegState::Close => (Direction::Flat, Decimal::ZERO),
        };
        let key = (pd, cd, weight, c.state);
        if c.emitted[i] == Some(key) {
            return None;
        }
        let symbol = self.symbols.shared(bar.symbol);
        let trace_id = TraceId::for_signal(&symbol, bar.ts);
        let signal_id = trace_id.signal_id();
        let ts = self.core.clock.stamp(bar.ts);
        let context = LogContext {
            signal_id: Some(signal_id.clone()),
            signal_strength: None,
            regime: Some(regime),
            model_version: Some(self.model.label()),
            portfolio_value: None,
        };
        let state = match c.state {
            LegState::Live => "live",
            LegState::HandOver => "hand_over",
            LegState::Close => "close",
        };
        if self.paused {
            self.suppressed += 1;
            self.core.log.emit(
                LogEvent::new(ts, SERVICE, Event::SignalSuppressed)
                    .trace(&trace_id)
                    .with("symbol", symbol)
                    .with("direction", pd.as_str())
                    .with("candidate_direction", cd.as_str())
                    .with("reason", "signal agent paused")
                    .context(context),
            );
            return None;
        }
        c.emitted[i] = Some(key);
        let leg_state = c.state;
        if leg_state != LegState::Live {
            c.unwound[i] = true;
            // Production goes on alone from here, its last want as signalled.
            self.emitted[i] = Some(pd);
        }
        self.signals += 1;
        self.core.log.emit(
            LogEvent::new(ts, SERVICE, Event::SignalGenerated)
                .trace(&trace_id)
                .with("symbol", symbol)
                .with("direction", pd.as_str())
                .with("price", bar.close)
                .with("candidate", label)
                .with("candidate_direction", cd.as_str())
                .with("weight", weight)
                .with("canary", state)
                .context(context),
        );
        Some(Signal {
            trace_id,
            signal_id,
            symbol: bar.symbol,
            at: bar.ts,
            direction: pd,
            strength: 1.0,
            reference_price: bar.close,
            regime,
            model_version: self.model.label(),
            canary: Some(CanaryLeg {
                model_version: label,
                direction: cd,
                weight,
                state: leg_state,
            }),
        })
    }

    /// A session of the release ended with `figures`: the step's analysis, and what it
    /// leads to.
    pub(super) fn canary_session(
        &mut self,
        day: NaiveDate,
        figures: &ShadowSession,
        at: vigil_core::Timestamp,
    ) {
        let Some(shadow) = self.shadow.as_mut() else {
            return;
        };
        let c = &mut shadow.canary;
        if c.state != LegState::Live || c.completed {
            return;
        }
        c.history.push((day, figures.clone()));
        c.last_session = Some(day);
        if c.step == 0 {
            // In shadow: the first step once the shadow report passes (when automatic).
            // Judged once there can be enough sessions, at every session's end for the
            // first hundred, then every n/50-th (a report reads every session: a replay of
            // thousands would otherwise cost their square; a live session ends one a day).
            let n = c.history.len();
            if !c.cfg.auto_promote
                || n < shadow.config.min_sessions as usize
                || (n >= 100 && n % (n / 50) != 0)
            {
                return;
            }
            let Some(calendar) = self.calendar.as_ref() else {
                return;
            };
            // A date the calendar cannot place is not counted as a session (as the report
            // of `vigil model shadow-report` counts them).
            let report = vigil_deploy::shadow::report(
                &c.history,
                |d| matches!(calendar.is_trading_day(d), Ok(true)),
                &shadow.config,
            );
            if report.passed {
                self.canary_step("vigil", "canary: the shadow report passed", at);
            }
            return;
        }
        c.diffs
            .push(figures.candidate_return - figures.production_return);
        let analysis = canary::analyse(&c.diffs, &c.cfg);
        let line = session_line(shadow.release_id, shadow.label, day, c, &analysis, at);
        self.core.log.emit(line);
        match analysis.verdict {
            Verdict::Pass if c.cfg.auto_promote => {
                self.canary_step("vigil", "canary: the step's analysis passed", at);
            }
            Verdict::Pass | Verdict::Inconclusive => {}
            Verdict::Fail => self.canary_abort(
                &format!("step analysis failed: {}", analysis.reason),
                "vigil",
                at,
            ),
        }
    }

    /// One step on, from the next bar: the next weight, or (from the last step) the
    /// candidate traded alone; written to the store in order.
    pub(super) fn canary_step(&mut self, by: &str, why: &str, at: vigil_core::Timestamp) {
        let Some(shadow) = self.shadow.as_mut() else {
            return;
        };
        let c = &mut shadow.canary;
        let last = u32::try_from(c.cfg.steps.len()).unwrap_or(u32::MAX);
        let from = c.step;
        let since = c.last_session;
        if from >= last {
            c.completed = true;
        } else {
            c.step += 1;
            c.weight = canary::weight_at(&c.cfg.steps, c.step).unwrap_or(Decimal::ONE);
            c.diffs.clear();
        }
        let (to, weight) = if c.completed {
            ("production".to_string(), Decimal::ONE)
        } else {
            (format!("step {}", c.step), c.weight)
        };
        self.core.log.emit(
            LogEvent::new(at, SERVICE, Event::CanaryStepped)
                .with("release", shadow.release_id)
                .with("candidate", shadow.label)
                .with("from", u64::from(from))
                .with("to", to)
                .with("weight", weight)
                .with("by", by.to_string()),
        );
        self.canary_write(CanaryWrite::Step {
            since,
            who: by.to_string(),
            reason: why.to_string(),
        });
        if self.shadow.as_ref().is_some_and(|s| s.canary.completed) {
            self.canary_complete(at);
        }
    }

    /// The last step passed: the candidate is traded alone from the next bar, the model it
    /// replaces kept warm beside it (and the rollback guard over the new one).
    fn canary_complete(&mut self, at: vigil_core::Timestamp) {
        let Some(shadow) = self.shadow.as_mut() else {
            return;
        };
        let replaced = self.model.label();
        let cand = shadow.canary.cand.clone();
        let release = shadow.release_id;
        shadow.swap(&mut self.model, &mut self.models);
        self.warmup = self.model.warmup(&self.cfg);
        self.drift = None;
        // The account holds the candidate's targets already (it had all the capital).
        for (e, c) in self.emitted.iter_mut().zip(cand) {
            *e = c;
        }
        self.guard = (self.model.label() != self.started_with && shadow.rollback.enabled)
            .then(|| vigil_deploy::rollback::Guard::new(&shadow.rollback, self.symbols.len()));
        self.core.log.emit(
            LogEvent::new(at, SERVICE, Event::CanaryCompleted)
                .with("release", release)
                .with("candidate", self.model.label())
                .with("replaced", replaced),
        );
    }

    /// Aborts the canary from the next bar: the candidate's weight is 0, its positions are
    /// unwound by `[release.canary] unwind`, and it stops running.
    pub(super) fn canary_abort(&mut self, reason: &str, by: &str, at: vigil_core::Timestamp) {
        let Some(shadow) = self.shadow.as_mut() else {
            return;
        };
        let c = &mut shadow.canary;
        if c.state != LegState::Live {
            return;
        }
        let unwind = c.cfg.unwind;
        c.state = match unwind {
            CanaryUnwind::Production => LegState::HandOver,
            CanaryUnwind::Close => LegState::Close,
        };
        c.weight = Decimal::ZERO;
        // Only symbols that were signalled with a leg have anything to unwind.
        for (u, e) in c.unwound.iter_mut().zip(&c.emitted) {
            *u = e.is_none();
        }
        let step = c.step;
        shadow.paused = true; // the candidate stops running
        self.core.log.emit(
            LogEvent::new(at, SERVICE, Event::CanaryAborted)
                .with("release", shadow.release_id)
                .with("candidate", shadow.label)
                .with("step", u64::from(step))
                .with("reason", reason.to_string())
                .with(
                    "unwind",
                    match unwind {
                        CanaryUnwind::Production => "production",
                        CanaryUnwind::Close => "close",
                    },
                )
                .with("by", by.to_string()),
        );
        self.core.log.flush();
        self.canary_write(CanaryWrite::Abort {
            reason: reason.to_string(),
        });
    }

    /// Hands `write` to the task that records the canary's decisions, in order (started
    /// at the first).
    fn canary_write(&mut self, write: CanaryWrite) {
        let me = self.address.clone();
        let Some(shadow) = self.shadow.as_ref() else {
            return;
        };
        let release = shadow.release_id;
        if self.canary_writer.is_none() {
            let (tx, mut rx) = mpsc::unbounded_channel::<CanaryWrite>();
            let store: SharedStore = shadow.store.clone();
            let name = shadow.name.clone();
            let steps = shadow.canary.cfg.steps.clone();
            let wall = self.core.wall.clone();
            actix::spawn(async move {
                while let Some(w) = rx.recv().await {
                    if let CanaryWrite::Flush(done) = w {
                        // The flow's end waits on it; when nobody does (the agent stopped
                        // some other way) there is nobody to tell, and nothing was lost.
                        if done.send(()).is_err() {
                            continue;
                        }
                        continue;
                    }
                    let what = format!("{w:?}");
                    let outcome = record(&store, &name, release, &steps, w, wall.now()).await;
                    if let Some(me) = &me {
                        me.do_send(CanaryRecorded {
                            release,
                            what,
                            outcome,
                        });
                    }
                }
            });
            self.canary_writer = Some(tx);
        }
        let sent = self.canary_writer.as_ref().map(|tx| tx.send(write));
        if let Some(Err(e)) = sent {
            let now = self.core.clock.now();
            self.failures += 1;
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::CanaryStepUnrecorded)
                    .with("release", release)
                    .with("step", format!("{:?}", e.0))
                    .with("error", "the writer task is gone"),
            );
        }
    }
}

/// The `canary_session_ended` line.
fn session_line(
    release: i64,
    candidate: &'static str,
    day: NaiveDate,
    c: &CanaryRun,
    a: &Analysis,
    at: vigil_core::Timestamp,
) -> LogEvent {
    let mut line = LogEvent::new(at, SERVICE, Event::CanarySessionEnded)
        .with("release", release)
        .with("candidate", candidate)
        .with("session", day.to_string())
        .with("step", u64::from(c.step))
        .with("weight", c.weight)
        .with("verdict", a.verdict.as_str())
        .with("sessions", a.sessions)
        .with("margin_bps", c.cfg.margin_bps)
        .with("reason", a.reason.clone());
    if let Some(m) = a.mean_diff_bps {
        line = line.with("mean_diff_bps", m);
    }
    line
}

/// Writes one canary decision: the release must still be the open one this session runs.
async fn record(
    store: &SharedStore,
    name: &str,
    release_id: i64,
    steps: &[Decimal],
    write: CanaryWrite,
    at: vigil_core::Timestamp,
) -> Result<vigil_store::RegistryWrite, String> {
    use vigil_deploy::registry::{Actor, Registry};
    let reg = Registry::read(&**store, name)
        .await
        .map_err(|e| e.to_string())?;
    match reg.open_release() {
        Some(r) if r.id == release_id => {}
        Some(r) => {
            return Err(format!(
                "the open release of {name} is {}, not {release_id}",
                r.id
            ));
        }
        None => return Err(format!("release {release_id} of {name} is no longer open")),
    }
    let (reason, write) = match write {
        CanaryWrite::Step { since, who, reason } => {
            let actor = Actor {
                who: &who,
                reason: &reason,
                at,
            };
            let w = canary::step(&reg, steps, since.map(|d| d.to_string()), &actor);
            (reason.clone(), w)
        }
        CanaryWrite::Flush(_) => return Err("a flush is not a decision".into()),
        CanaryWrite::Abort { reason } => {
            let actor = Actor {
                who: "vigil",
                reason: &reason,
                at,
            };
            let w = vigil_deploy::release::act(&reg, vigil_deploy::release::Action::Abort, &actor);
            (reason.clone(), w)
        }
    };
    let write = write.map_err(|e| format!("{reason}: {e}"))?;
    store
        .registry_apply(&write)
        .await
        .map_err(|e| e.to_string())?;
    Ok(write)
}

impl Handler<CanaryRecorded> for SignalAgent {
    type Result = ();

    fn handle(&mut self, msg: CanaryRecorded, _ctx: &mut Self::Context) {
        let now = self.core.clock.now();
        let release = msg.release;
        let line = match msg.outcome {
            Ok(w) => {
                let a = &w.audit;
                super::audited(now, Event::ModelReleaseChanged, a)
            }
            Err(error) => {
                self.failures += 1;
                self.core.fault(
                    format!("canary decision not recorded ({}): {error}", msg.what),
                    false,
                );
                LogEvent::new(now, SERVICE, Event::CanaryStepUnrecorded)
                    .with("release", release)
                    .with("step", msg.what)
                    .with("error", error)
            }
        };
        self.core.log.emit(line);
        self.core.log.flush();
    }
}
