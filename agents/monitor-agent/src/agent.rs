//! The Monitor actor: its state, its handlers and its timers. What it decides lives in
//! components that return what changed — supervision ([`Roster`]), command routing
//! ([`MonitorLinks`]), the session summary ([`SessionBook`]), measurement
//! ([`Health`], see `probe`) and alerting ([`Alerting`], whose [`Step`]s the actor carries
//! out) — and the actor does the I/O: logging, sending, timers, the store and the
//! dispatcher's threads.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_alert::routing;
use vigil_config::MonitorConfig;
use vigil_core::{Level, SharedClock, Timestamp, TradingState};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::{
    AgentFault, Command, CommandError, Heartbeat, Ping, SessionSummary, StageReport, Supervision,
    run_every,
};

use crate::SERVICE;
use crate::alerting::{AlertLinks, Alerting, Delivered, Logged, StoreFailed};
use crate::commands::{MonitorLinks, answered, received};
use crate::health::{Health, HealthLinks};
use crate::probe::{Session, ping_url, snapshot};
use crate::roster::{Roster, crash_loop};
use crate::summary::SessionBook;

/// The Monitor agent actor.
pub struct MonitorAgent {
    cfg: MonitorConfig,
    /// Supervision clock: heartbeats and timeouts.
    wall: SharedClock,
    /// Market clock: stamps of session events.
    clock: SharedClock,
    log: LogBuffer,
    links: MonitorLinks,
    agents: Roster,
    book: SessionBook,
    done: Option<oneshot::Sender<SessionSummary>>,
    /// Measurement, rules and the health board (None: heartbeats only).
    health: Option<Health>,
    started_at: Timestamp,
    /// Alerts (None: findings are logged only).
    alerting: Option<Alerting>,
}

impl std::fmt::Debug for MonitorAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorAgent")
            .field("agents", &self.agents)
            .finish()
    }
}

impl MonitorAgent {
    /// Creates the Monitor. The summary is sent on `done` when the Execution agent, the
    /// last of the pipeline, reports.
    pub fn new(
        cfg: MonitorConfig,
        session_name: String,
        wall: SharedClock,
        clock: SharedClock,
        log: LogBuffer,
        links: MonitorLinks,
        done: oneshot::Sender<SessionSummary>,
    ) -> Self {
        let now = wall.now();
        Self {
            cfg,
            wall,
            clock,
            log,
            links,
            agents: Roster::new(now),
            book: SessionBook::new(session_name),
            done: Some(done),
            health: None,
            started_at: now,
            alerting: None,
        }
    }

    /// Turns findings and other agents' logged events into alerts: see [`AlertLinks`].
    pub fn with_alerts(mut self, links: AlertLinks) -> Self {
        self.alerting = Some(Alerting::new(links));
        self
    }

    /// Measures the four levels, evaluates the threshold rules, runs the dead-man's switch
    /// and publishes `/status` and `/metrics` on `links.board`.
    pub fn with_health(mut self, links: HealthLinks) -> Self {
        let now = self.wall.now();
        self.health = Some(Health::new(&self.cfg, links, now));
        self
    }

    /// Counts on the health board's metrics (nothing to count into with health off).
    fn count(&self, f: impl FnOnce()) {
        if let Some(h) = &self.health {
            h.links.board.record(f);
        }
    }

    /// Halts trading on the Monitor's own authority (`actor`); a halt that cannot be applied
    /// is printed (after `who`, such as `"supervision "`) and raised (Critical).
    fn halt(&mut self, actor: &str, reason: String, who: &str) {
        if let Err(e) = self
            .links
            .set_trading_state(TradingState::Halted, actor.into(), reason)
        {
            eprintln!("vigil: CRITICAL {who}could not trip the breaker: {e}");
            self.emit(breaker_failed(
                self.clock.now(),
                format!("could not trip the breaker: {e}"),
            ));
        }
    }

    /// One round of measurement: system, mailboxes, log growth, rules, board.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        let (now, market_now) = (self.wall.now(), self.clock.now());
        let Some(h) = self.health.as_mut() else {
            return;
        };
        let round = h.round(&self.cfg, &self.agents, now, market_now);
        if let Some(line) = round.stderr {
            eprintln!("{line}");
        }
        for ev in round.events {
            self.emit(ev);
        }
        self.log.flush();
        self.publish(now);
        for (agent, rcp) in round.to_ping {
            let wall = self.wall.clone();
            ctx.spawn(rcp.send(Ping).into_actor(self).map(move |res, act, _ctx| {
                if let Some(h) = act.health.as_mut() {
                    h.pinged(agent, &res, wall.now());
                }
            }));
        }
    }

    fn status(&self, now: Timestamp) -> Option<vigil_monitoring::Status> {
        let session = Session {
            name: &self.book.summary.name,
            started_at: self.started_at,
            trading_state: self.book.summary.trading_state,
        };
        let h = self.health.as_ref()?;
        Some(h.status(&self.agents, session, now, self.clock.now()))
    }

    fn publish(&mut self, now: Timestamp) {
        let Some(st) = self.status(now) else { return };
        let Some(h) = self.health.as_mut() else {
            return;
        };
        if let Some(line) = h.readiness(&st) {
            eprintln!("{line}");
        }
        let silent_s = st.log_silent_ms as f64 / 1000.0;
        h.export(&st, silent_s);
        h.links.board.publish(st);
    }

    /// The log's pulse: a line with the key figures, whether or not anything else happens.
    fn snapshot(&mut self, _ctx: &mut Context<Self>) {
        let Some(st) = self.status(self.wall.now()) else {
            return;
        };
        let equity = self.health.as_ref().and_then(Health::equity);
        self.log.emit(snapshot(&st, equity, self.clock.now()));
        self.log.flush();
    }

    /// Pings the outside heartbeat URL while vigil is healthy; an outside service notices
    /// when the pings stop.
    fn external_ping(&mut self, ctx: &mut Context<Self>) {
        let Some(url) = self.cfg.dead_man.heartbeat_url.clone() else {
            return;
        };
        let due = self
            .health
            .as_mut()
            .is_some_and(|h| h.ping_due(&self.agents));
        if !due {
            return;
        }
        let method = self.cfg.dead_man.heartbeat_method.clone();
        let timeout = Duration::from_millis(self.cfg.dead_man.heartbeat_timeout_ms);
        let fut = tokio::task::spawn_blocking(move || ping_url(url.expose(), &method, timeout));
        ctx.spawn(fut.into_actor(self).map(|res, act, _ctx| {
            let res = res
                .map_err(|e| format!("ping task failed: {e}"))
                .and_then(|r| r);
            let stamp = act.clock.now();
            let ev = act
                .health
                .as_mut()
                .and_then(|h| h.external_pinged(res, stamp));
            if let Some(ev) = ev {
                act.emit(ev);
                act.log.flush();
            }
        }));
    }

    fn check_heartbeats(&mut self, ctx: &mut Context<Self>) {
        let missed = self.agents.check(
            self.wall.now(),
            self.cfg.heartbeat_timeout_ms,
            self.clock.now(),
        );
        for ev in missed {
            self.emit(ev);
        }
        let at = self.moment();
        if let Some(steps) = self.alerting.as_mut().map(|al| al.tick(at)) {
            self.run(steps);
        }
        self.read_requests(ctx);
        self.log.flush();
    }
}

/// The Critical line for a halt the Risk agent could not be asked for.
fn breaker_failed(at: Timestamp, error: String) -> LogEvent {
    LogEvent::new(at, SERVICE, Event::AgentFailed)
        .level(Level::Critical)
        .with("agent", "risk")
        .with("error", error)
}

impl Actor for MonitorAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AgentStarted)
                .with("heartbeat_timeout_ms", self.cfg.heartbeat_timeout_ms),
        );
        let addr = ctx.address();
        if let Some(al) = self.alerting.as_mut()
            && let Err(e) = al.start(addr.clone().recipient(), addr.recipient())
        {
            eprintln!("vigil: CRITICAL {e}; alerts are logged but not delivered");
            self.log.emit(
                LogEvent::new(self.clock.now(), SERVICE, Event::AlertDeliveryFailed)
                    .level(Level::Critical)
                    .with("channel", "dispatcher")
                    .with("error", e)
                    .with("next", "alerts are logged but not delivered"),
            );
        }
        let pending = self
            .alerting
            .as_mut()
            .map(|al| std::mem::take(&mut al.pending))
            .unwrap_or_default();
        self.apply_requests(pending);
        self.log.flush();
        let every = |ms: u64| Duration::from_millis(ms);
        run_every(
            ctx,
            self.wall.clone(),
            every(self.cfg.heartbeat_interval_ms),
            Self::check_heartbeats,
        );
        if self.health.is_some() {
            self.probe(ctx);
            let probe = every(self.cfg.probe_interval_ms);
            run_every(ctx, self.wall.clone(), probe, Self::probe);
            let snapshot = Duration::from_secs(self.cfg.snapshot_interval_s);
            run_every(ctx, self.wall.clone(), snapshot, Self::snapshot);
            if self.cfg.dead_man.heartbeat_url.is_some() {
                let ping = Duration::from_secs(self.cfg.dead_man.heartbeat_interval_s);
                run_every(ctx, self.wall.clone(), ping, Self::external_ping);
            }
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.log.flush();
    }
}

impl Handler<Logged> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, msg: Logged, _ctx: &mut Self::Context) {
        // The Monitor's own findings reached alerting when it logged them.
        if msg.0.service == SERVICE {
            return;
        }
        let Some(input) = routing::route(&msg.0) else {
            return;
        };
        let at = self.moment();
        if let Some(steps) = self.alerting.as_mut().map(|al| al.hear(input, at)) {
            self.run(steps);
            self.log.flush();
        }
    }
}

impl Handler<Delivered> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, msg: Delivered, _ctx: &mut Self::Context) {
        let at = self.moment();
        if let Some(steps) = self.alerting.as_mut().map(|al| al.delivered(msg.0, at)) {
            self.run(steps);
        }
        self.log.flush();
    }
}

impl Handler<StoreFailed> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, msg: StoreFailed, _ctx: &mut Self::Context) {
        self.store_failed(msg.0);
    }
}

impl Handler<Heartbeat> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, mut hb: Heartbeat, _ctx: &mut Self::Context) {
        if let Some(al) = self.alerting.as_mut() {
            al.heard_figures(&hb.figures);
        }
        if let Some(h) = self.health.as_mut() {
            // Takes the measurements out: the figures kept are the latest state only.
            h.heard(&mut hb.figures);
            h.agents.entry(hb.agent).or_default().figures = hb.figures.clone();
        }
        if let Some(ev) = self.agents.heartbeat(&hb, self.clock.now()) {
            self.emit(ev);
            self.log.flush();
        }
    }
}

impl Handler<StageReport> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, report: StageReport, ctx: &mut Self::Context) {
        let folded = self.book.fold(report);
        self.agents.stopped(folded.agent);
        if folded.close {
            self.close_session(ctx);
        }
    }
}

impl Handler<Supervision> for MonitorAgent {
    type Result = ();

    /// Counts crashes and restarts (the supervisor has logged them); a crash loop trips
    /// the breaker and raises `restart_intensity_exceeded` (Critical).
    fn handle(&mut self, msg: Supervision, _ctx: &mut Self::Context) {
        match msg {
            Supervision::Crashed {
                agent,
                panic,
                recent,
                backoff,
                escalate,
                policy,
            } => {
                self.count(|| {
                    metrics::counter!("vigil_agent_crashes_total", "agent" => agent.as_str())
                        .increment(1);
                });
                self.agents.failed(agent);
                if escalate {
                    let (reason, ev) =
                        crash_loop(agent, recent, &policy, panic, backoff, self.clock.now());
                    // Halt first, then tell (the Critical alert would trip it too, but the
                    // record should name supervision as the actor).
                    self.halt("supervisor", reason, "supervision ");
                    self.emit(ev);
                }
            }
            Supervision::Restarted { agent } => {
                self.count(|| {
                    metrics::counter!("vigil_agent_restarts_total", "agent" => agent.as_str())
                        .increment(1);
                });
                self.agents.restarted(agent);
            }
        }
        self.log.flush();
    }
}

impl Handler<AgentFault> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, fault: AgentFault, _ctx: &mut Self::Context) {
        let level = if fault.fatal {
            Level::Critical
        } else {
            Level::Error
        };
        self.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AgentFailed)
                .level(level)
                .with("agent", fault.agent.as_str())
                .with("fatal", fault.fatal)
                .with("error", fault.error.clone()),
        );
        if fault.fatal {
            self.agents.failed(fault.agent);
            self.book.failed(&fault.error);
            if self.cfg.trip_breaker_on_agent_failure {
                let reason = format!("{} agent failed: {}", fault.agent, fault.error);
                // The Risk agent also halts in band when the stream ends on a failure; this
                // covers faults that do not end the stream.
                self.halt("monitor", reason, "");
            }
        }
        self.log.flush();
    }
}

impl Handler<Command> for MonitorAgent {
    type Result = ResponseActFuture<Self, Result<String, CommandError>>;

    fn handle(&mut self, cmd: Command, _ctx: &mut Self::Context) -> Self::Result {
        let name = cmd.action.name();
        let (actor, reason) = (cmd.actor.clone(), cmd.reason.clone());
        let freeze = match cmd.action {
            vigil_messages::Action::InjectFreeze { seconds } => {
                Some(Duration::from_secs(u64::from(seconds)))
            }
            _ => None,
        };
        self.log.emit(received(&cmd, self.clock.now()));
        self.log.flush();
        let answer = match self.links.route(cmd) {
            Ok(fut) => fut,
            Err(e) => Box::pin(async move { Err(e) }),
        };
        Box::pin(answer.into_actor(self).map(move |res, act, ctx| {
            act.log
                .emit(answered(&res, name, actor, reason, act.clock.now()));
            act.log.flush();
            if let (Ok(_), Some(hang)) = (&res, freeze) {
                // Fault injection (a rehearsal stack only): once the answer is out, this
                // thread hangs in wall-clock time, as a Monitor stuck in a handler would.
                // No clock of ours can stand in for a blocked thread.
                ctx.run_later(Duration::ZERO, move |_, _| std::thread::sleep(hang));
            }
            res
        }))
    }
}

mod alerts;
mod closing;
#[cfg(test)]
mod tests;
