use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_bus::{
    AgentFault, Command, CommandTarget, Figures, Heartbeat, Ping, SessionSummary, SetPaused,
    SetTradingState, StageReport, StopReason, run_every,
};
use vigil_monitoring::{Status, SystemSampler, Transition};

use crate::health::{Health, HealthLinks, agent_view, endpoint, figures_json};
use vigil_config::MonitorConfig;
use vigil_core::{AgentId, AgentState, Level, SharedClock, Timestamp, TradingState};
use vigil_log::{Event, LogBuffer, LogEvent};

const SERVICE: &str = "monitor_agent";

/// The agents the Monitor commands.
#[derive(Clone, Debug)]
pub struct MonitorLinks {
    /// The Signal agent's pause switch.
    pub signal: Recipient<SetPaused>,
    /// The Risk agent's trading state.
    pub risk: Recipient<SetTradingState>,
}

#[derive(Clone, Copy, Debug)]
struct AgentStatus {
    state: AgentState,
    last_heartbeat: Timestamp,
    processed: u64,
    missing: bool,
}

/// The Monitor agent actor.
pub struct MonitorAgent {
    cfg: MonitorConfig,
    /// Supervision clock: heartbeats and timeouts.
    wall: SharedClock,
    /// Market clock: stamps of session events.
    clock: SharedClock,
    log: LogBuffer,
    links: Option<MonitorLinks>,
    agents: BTreeMap<AgentId, AgentStatus>,
    summary: SessionSummary,
    done: Option<oneshot::Sender<SessionSummary>>,
    /// Measurement, rules and the health board (None: heartbeats only).
    health: Option<Health>,
    transitions: Vec<Transition>,
    started_at: Timestamp,
    ext_pinging: bool,
    ext_failing: bool,
    /// A probe failure already reported, by probe name (reported again once it clears).
    probe_failing: Vec<&'static str>,
    /// Ready to trade at the last publish: changes are announced on standard error.
    was_ready: bool,
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
        let agents = AgentId::ALL
            .into_iter()
            .filter(|a| *a != AgentId::Monitor)
            .map(|a| {
                (
                    a,
                    AgentStatus {
                        state: AgentState::Starting,
                        last_heartbeat: now,
                        processed: 0,
                        missing: false,
                    },
                )
            })
            .collect();
        Self {
            cfg,
            wall,
            clock,
            log,
            links: Some(links),
            agents,
            summary: SessionSummary {
                name: session_name,
                ..SessionSummary::default()
            },
            done: Some(done),
            health: None,
            transitions: Vec::new(),
            started_at: now,
            ext_pinging: false,
            ext_failing: false,
            probe_failing: Vec::new(),
            was_ready: false,
        }
    }

    /// Measures the four levels, evaluates the threshold rules, runs the dead-man's switch
    /// and publishes `/status` and `/metrics` on `links.board`.
    pub fn with_health(mut self, links: HealthLinks) -> Self {
        let now = self.wall.now();
        self.health = Some(Health::new(&self.cfg, links, now));
        self
    }

    fn probe_failed(&mut self, probe: &'static str, error: String) {
        if self.probe_failing.contains(&probe) {
            return;
        }
        self.probe_failing.push(probe);
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::MonitorProbeFailed)
                .with("probe", probe)
                .with("error", error),
        );
    }

    fn probe_ok(&mut self, probe: &'static str) {
        self.probe_failing.retain(|p| *p != probe);
    }

    /// One round of measurement: system, mailboxes, log growth, rules, board.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        let now = self.wall.now();
        let enabled = self.cfg.enabled;
        let Some(h) = self.health.as_mut() else {
            return;
        };
        let mut failures: Vec<(&'static str, String)> = Vec::new();
        let mut oks: Vec<&'static str> = Vec::new();
        let mut to_ping = Vec::new();
        if enabled {
            if h.sampler.is_none() {
                match SystemSampler::new(h.links.disk_path.clone()) {
                    Ok(s) => h.sampler = Some(s),
                    Err(e) => failures.push(("system", e)),
                }
            }
            if let Some(sampler) = h.sampler.as_mut() {
                let sample = sampler.sample();
                match &sample.disk_free_bytes {
                    Ok(_) => oks.push("disk"),
                    Err(e) => failures.push(("disk", e.clone())),
                }
                h.last_sample = Some(sample);
            }
            for (agent, rcp) in h.links.pings.clone() {
                let finished = self
                    .agents
                    .get(&agent)
                    .is_some_and(|s| matches!(s.state, AgentState::Stopped | AgentState::Failed));
                let ah = h.agents.entry(agent).or_default();
                if finished || ah.ping_sent.is_some() {
                    continue;
                }
                ah.ping_sent = Some(now);
                to_ping.push((agent, rcp));
            }
        }
        // The dead-man's switch: the log folder must grow.
        let market_now = self.clock.now();
        let open = h.market_open(market_now);
        let window_s = if open {
            self.cfg.dead_man.silence_trading_s
        } else {
            self.cfg.dead_man.silence_closed_s
        };
        let mut dead_man: Option<LogEvent> = None;
        match h.log.look(now) {
            Ok(grew) => {
                oks.push("log_folder");
                let silent_s = (now - h.log.last_growth).num_seconds();
                if grew && h.log.silent {
                    h.log.silent = false;
                    dead_man = Some(
                        LogEvent::new(market_now, SERVICE, Event::LogResumed)
                            .with("silent_s", silent_s),
                    );
                } else if !grew && !h.log.silent && silent_s > window_s as i64 {
                    h.log.silent = true;
                    eprintln!(
                        "vigil: CRITICAL log_silent: no log line reached {} for {silent_s} s (window {window_s} s, market {})",
                        h.links.log_dir.display(),
                        if open { "open" } else { "closed" }
                    );
                    dead_man = Some(
                        LogEvent::new(market_now, SERVICE, Event::LogSilent)
                            .with("silent_s", silent_s)
                            .with("window_s", window_s)
                            .with("market_open", open)
                            .with("log_dir", h.links.log_dir.display().to_string()),
                    );
                }
            }
            Err(e) => failures.push(("log_folder", e)),
        }
        if enabled {
            h.measure(now, &mut self.transitions);
        }
        if let Some(ev) = dead_man {
            self.log.emit(ev);
        }
        for (probe, e) in failures {
            self.probe_failed(probe, e);
        }
        for probe in oks {
            self.probe_ok(probe);
        }
        for t in std::mem::take(&mut self.transitions) {
            self.log.emit(t.event(market_now, SERVICE));
        }
        self.log.flush();
        self.publish(now);
        for (agent, rcp) in to_ping {
            let wall = self.wall.clone();
            ctx.spawn(rcp.send(Ping).into_actor(self).map(move |res, act, _ctx| {
                let Some(h) = act.health.as_mut() else { return };
                let ah = h.agents.entry(agent).or_default();
                if let (Ok(()), Some(sent)) = (res, ah.ping_sent) {
                    let took = wall.now() - sent;
                    ah.response_s = Some(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                }
                // An agent that stopped cannot answer; it is not slow.
                ah.ping_sent = None;
            }));
        }
    }

    /// Builds the status from what the Monitor knows.
    fn status(&self, now: Timestamp) -> Option<Status> {
        let h = self.health.as_ref()?;
        let mut st = Status {
            session: self.summary.name.clone(),
            started_at: Some(self.started_at),
            updated_at: Some(now),
            market_time: Some(self.clock.now()),
            trading_state: self.trading_state().as_str().to_string(),
            market_open: h.market_open(self.clock.now()),
            log_silent_ms: (now - h.log.last_growth).num_milliseconds(),
            metrics: h.metrics.clone(),
            breaches: h.engine.active(),
            ..Status::default()
        };
        let mut source = None;
        let mut venue = None;
        for (agent, s) in &self.agents {
            let ah = h.agents.get(agent);
            let mut v = agent_view(*agent);
            v.state = s.state.as_str().to_string();
            v.healthy = !s.missing && s.state != AgentState::Failed;
            v.last_heartbeat = Some(s.last_heartbeat);
            v.heartbeat_age_ms = (now - s.last_heartbeat).num_milliseconds();
            v.processed = s.processed;
            v.backlog = h.links.backlogs.waiting(*agent);
            if let Some(ah) = ah {
                v.response_ms = ah.response_s.map(|r| r * 1000.0);
                v.figures = figures_json(&ah.figures);
                match &ah.figures {
                    Figures::Data {
                        source: r, ended, ..
                    } => {
                        source = Some(r.clone());
                        st.data_ended = *ended;
                    }
                    Figures::Execution { venue: r, .. } => venue = Some(r.clone()),
                    _ => {}
                }
            }
            st.agents.push(v);
        }
        st.data_source = endpoint(&h.links.source_name, source.as_ref());
        st.venue = endpoint(&h.links.venue_name, venue.as_ref());
        Some(st)
    }

    fn trading_state(&self) -> TradingState {
        self.health
            .as_ref()
            .and_then(|h| h.agents.get(&AgentId::Risk))
            .and_then(|a| match &a.figures {
                Figures::Risk { state, .. } => Some(*state),
                _ => None,
            })
            .unwrap_or(self.summary.trading_state)
    }

    fn publish(&mut self, now: Timestamp) {
        let Some(st) = self.status(now) else { return };
        let reasons = st.not_ready();
        if reasons.is_empty() != self.was_ready {
            self.was_ready = reasons.is_empty();
            if self.was_ready {
                eprintln!("vigil: ready to trade");
            } else {
                eprintln!("vigil: not ready to trade: {}", reasons.join("; "));
            }
        }
        let silent_s = st.log_silent_ms as f64 / 1000.0;
        if let Some(h) = self.health.as_mut() {
            h.export(&st, silent_s);
            h.links.board.publish(st);
        }
    }

    /// The log's pulse: a line with the key figures, whether or not anything else happens.
    fn snapshot(&mut self, _ctx: &mut Context<Self>) {
        let now = self.wall.now();
        let Some(st) = self.status(now) else { return };
        let reasons = st.not_ready();
        let mut ev = LogEvent::new(self.clock.now(), SERVICE, Event::HealthSnapshot)
            .with("ready", reasons.is_empty())
            .with("trading_state", st.trading_state.clone())
            .with("market_open", st.market_open)
            .with("data_source_up", st.data_source.up)
            .with("venue_up", st.venue.up)
            .with("rules_firing", st.breaches.len())
            .with(
                "agents",
                st.agents
                    .iter()
                    .map(|a| {
                        format!(
                            "{}={}",
                            a.agent,
                            if a.healthy { &a.state } else { "unhealthy" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            );
        if !reasons.is_empty() {
            ev = ev.with("not_ready", reasons.join("; "));
        }
        for key in ["cpu_usage_ratio", "memory_usage_ratio", "disk_free_bytes"] {
            if let Some(v) = st.metrics.get(key) {
                ev = ev.with(key, *v);
            }
        }
        self.log.emit(ev);
        self.log.flush();
    }

    /// Pings the outside heartbeat URL while vigil is healthy; an outside service notices
    /// when the pings stop.
    fn external_ping(&mut self, ctx: &mut Context<Self>) {
        let Some(url) = self.cfg.dead_man.heartbeat_url.clone() else {
            return;
        };
        let healthy = !self
            .agents
            .values()
            .any(|s| s.missing || s.state == AgentState::Failed)
            && !self.health.as_ref().is_some_and(|h| h.log.silent);
        if !healthy || self.ext_pinging {
            return;
        }
        self.ext_pinging = true;
        let method = self.cfg.dead_man.heartbeat_method.clone();
        let timeout = Duration::from_millis(self.cfg.dead_man.heartbeat_timeout_ms);
        let fut = tokio::task::spawn_blocking(move || ping_url(url.expose(), &method, timeout));
        ctx.spawn(fut.into_actor(self).map(|res, act, _ctx| {
            act.ext_pinging = false;
            let res = res
                .map_err(|e| format!("ping task failed: {e}"))
                .and_then(|r| r);
            match res {
                Ok(()) => {
                    if act.ext_failing {
                        act.ext_failing = false;
                        act.log.emit(
                            LogEvent::new(act.clock.now(), SERVICE, Event::ExternalHeartbeatFailed)
                                .level(Level::Info)
                                .with("recovered", true),
                        );
                    }
                }
                Err(e) => {
                    act.ext_failing = true;
                    act.log.emit(
                        LogEvent::new(act.clock.now(), SERVICE, Event::ExternalHeartbeatFailed)
                            .with("error", e),
                    );
                    act.log.flush();
                }
            }
        }));
    }

    fn check_heartbeats(&mut self, _ctx: &mut Context<Self>) {
        let now = self.wall.now();
        let timeout = chrono::Duration::milliseconds(self.cfg.heartbeat_timeout_ms as i64);
        for (agent, status) in &mut self.agents {
            let finished = matches!(status.state, AgentState::Stopped | AgentState::Failed);
            if finished || status.missing {
                continue;
            }
            let silent = now - status.last_heartbeat;
            if silent > timeout {
                status.missing = true;
                self.log.emit(
                    LogEvent::new(self.clock.now(), SERVICE, Event::HeartbeatMissed)
                        .with("agent", agent.as_str())
                        .with("last_heartbeat", status.last_heartbeat)
                        .with("silent_ms", silent.num_milliseconds())
                        .with("timeout_ms", self.cfg.heartbeat_timeout_ms)
                        .with("state", status.state.as_str()),
                );
            }
        }
        self.log.flush();
    }

    fn set_trading_state(
        &mut self,
        state: TradingState,
        actor: String,
        reason: String,
    ) -> Result<(), String> {
        let links = self.links.as_ref().ok_or("monitor is not wired")?;
        if !links.risk.connected() {
            return Err("risk agent is not running".into());
        }
        links.risk.do_send(SetTradingState {
            state,
            actor,
            reason,
        });
        Ok(())
    }

    fn set_paused(
        &mut self,
        target: CommandTarget,
        paused: bool,
        actor: String,
        reason: String,
    ) -> Result<(), String> {
        match target {
            CommandTarget::Agent(AgentId::Signal) | CommandTarget::All => {}
            CommandTarget::Agent(other) => {
                return Err(format!(
                    "agent {other} cannot be paused; pausable agents: signal (or all)"
                ));
            }
        }
        let links = self.links.as_ref().ok_or("monitor is not wired")?;
        if !links.signal.connected() {
            return Err("signal agent is not running".into());
        }
        links.signal.do_send(SetPaused {
            paused,
            actor,
            reason,
        });
        Ok(())
    }

    fn fold(&mut self, report: StageReport) -> Option<AgentId> {
        let s = &mut self.summary;
        match report {
            StageReport::Data {
                bars,
                rejected,
                first,
                last,
                source,
            } => {
                s.bars = bars;
                s.bars_rejected = rejected;
                s.first_bar = first;
                s.last_bar = last;
                s.source = source;
                Some(AgentId::Data)
            }
            StageReport::Regime { changes } => {
                s.regime_changes = changes;
                Some(AgentId::Regime)
            }
            StageReport::Signal {
                signals,
                suppressed,
            } => {
                s.signals = signals;
                s.signals_suppressed = suppressed;
                Some(AgentId::Signal)
            }
            StageReport::Risk {
                approved,
                rejected,
                state,
            } => {
                s.risk_approved = approved;
                s.risk_rejected = rejected;
                s.trading_state = state;
                Some(AgentId::Risk)
            }
            StageReport::Execution {
                reason,
                orders,
                filled,
                venue_rejects,
                cancelled,
                fills,
                initial_cash,
                equity,
                cash,
                commissions,
                max_drawdown,
                positions,
            } => {
                s.stop_reason = reason.as_str().to_string();
                if let StopReason::Failed(e) = &reason {
                    s.error.get_or_insert_with(|| e.clone());
                }
                s.orders = orders;
                s.orders_filled = filled;
                s.venue_rejects = venue_rejects;
                s.orders_cancelled = cancelled;
                s.fills = fills;
                s.initial_cash = initial_cash;
                s.final_equity = equity;
                s.final_cash = cash;
                s.commissions = commissions;
                s.max_drawdown = max_drawdown;
                s.positions = positions;
                Some(AgentId::Execution)
            }
        }
    }

    fn close_session(&mut self, ctx: &mut Context<Self>) {
        let s = &self.summary;
        let now = s
            .last_bar
            .map_or_else(|| self.clock.now(), |t| self.clock.stamp(t));
        let mut ev = LogEvent::new(now, SERVICE, Event::SessionStopped)
            .with("reason", s.stop_reason.clone())
            .with("bars", s.bars)
            .with("signals", s.signals)
            .with("orders", s.orders)
            .with("fills", s.fills)
            .with("risk_rejected", s.risk_rejected)
            .with("final_equity", s.final_equity)
            .with("pnl", s.pnl())
            .with("max_drawdown", s.max_drawdown)
            .with("trading_state", s.trading_state.as_str());
        if let Some(e) = &s.error {
            ev = ev.level(Level::Error).with("error", e.clone());
        }
        self.log.emit(ev);
        self.log.flush();
        if let Some(done) = self.done.take()
            && done.send(self.summary.clone()).is_err()
        {
            {
                // Whoever ran the session is gone; the summary is in the log line above.
                self.log.emit(
                    LogEvent::new(now, SERVICE, Event::AgentStopped)
                        .level(Level::Warn)
                        .with("note", "session runner was gone before the summary"),
                );
            }
        }
        ctx.stop();
    }
}

impl Actor for MonitorAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AgentStarted)
                .with("heartbeat_timeout_ms", self.cfg.heartbeat_timeout_ms),
        );
        self.log.flush();
        run_every(
            ctx,
            self.wall.clone(),
            Duration::from_millis(self.cfg.heartbeat_interval_ms),
            Self::check_heartbeats,
        );
        if self.health.is_some() {
            self.probe(ctx);
            run_every(
                ctx,
                self.wall.clone(),
                Duration::from_millis(self.cfg.probe_interval_ms),
                Self::probe,
            );
            run_every(
                ctx,
                self.wall.clone(),
                Duration::from_secs(self.cfg.snapshot_interval_s),
                Self::snapshot,
            );
            if self.cfg.dead_man.heartbeat_url.is_some() {
                run_every(
                    ctx,
                    self.wall.clone(),
                    Duration::from_secs(self.cfg.dead_man.heartbeat_interval_s),
                    Self::external_ping,
                );
            }
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.log.flush();
    }
}

impl Handler<Heartbeat> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, hb: Heartbeat, _ctx: &mut Self::Context) {
        if let Some(h) = self.health.as_mut() {
            h.agents.entry(hb.agent).or_default().figures = hb.figures.clone();
        }
        let Some(status) = self.agents.get_mut(&hb.agent) else {
            return;
        };
        if status.missing {
            status.missing = false;
            self.log.emit(
                LogEvent::new(self.clock.now(), SERVICE, Event::HeartbeatRecovered)
                    .with("agent", hb.agent.as_str())
                    .with(
                        "silent_ms",
                        (hb.at - status.last_heartbeat).num_milliseconds(),
                    ),
            );
            self.log.flush();
        }
        status.last_heartbeat = hb.at;
        status.processed = hb.processed;
        if !matches!(status.state, AgentState::Stopped | AgentState::Failed) {
            status.state = hb.state;
        }
    }
}

impl Handler<StageReport> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, report: StageReport, ctx: &mut Self::Context) {
        if let Some(agent) = self.fold(report) {
            if let Some(status) = self.agents.get_mut(&agent)
                && status.state != AgentState::Failed
            {
                status.state = AgentState::Stopped;
            }
            if agent == AgentId::Execution {
                self.close_session(ctx);
            }
        }
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
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AgentFailed)
                .level(level)
                .with("agent", fault.agent.as_str())
                .with("fatal", fault.fatal)
                .with("error", fault.error.clone()),
        );
        if fault.fatal {
            if let Some(status) = self.agents.get_mut(&fault.agent) {
                status.state = AgentState::Failed;
            }
            self.summary
                .error
                .get_or_insert_with(|| fault.error.clone());
            if self.cfg.trip_breaker_on_agent_failure {
                let reason = format!("{} agent failed: {}", fault.agent, fault.error);
                // The Risk agent also halts in band when the stream ends on a failure; this
                // covers faults that do not end the stream.
                if let Err(e) =
                    self.set_trading_state(TradingState::Halted, "monitor".into(), reason)
                {
                    let risk_done = self
                        .agents
                        .get(&AgentId::Risk)
                        .is_some_and(|s| s.state == AgentState::Stopped);
                    self.log.emit(
                        LogEvent::new(self.clock.now(), SERVICE, Event::AgentFailed)
                            .level(if risk_done {
                                Level::Warn
                            } else {
                                Level::Critical
                            })
                            .with("agent", "risk")
                            .with("error", format!("could not trip the breaker: {e}")),
                    );
                }
            }
        }
        self.log.flush();
    }
}

impl Handler<Command> for MonitorAgent {
    type Result = Result<(), String>;

    fn handle(&mut self, cmd: Command, _ctx: &mut Self::Context) -> Self::Result {
        let (name, actor, reason) = match &cmd {
            Command::Pause { actor, reason, .. } => ("pause", actor, reason),
            Command::Resume { actor, reason, .. } => ("resume", actor, reason),
            Command::TripBreaker { actor, reason } => ("breaker_trip", actor, reason),
            Command::ResetBreaker { actor, reason } => ("breaker_reset", actor, reason),
        };
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::CommandReceived)
                .with("command", name)
                .with("actor", actor.clone())
                .with("reason", reason.clone()),
        );
        self.log.flush();
        match cmd {
            Command::Pause {
                target,
                actor,
                reason,
            } => self.set_paused(target, true, actor, reason),
            Command::Resume {
                target,
                actor,
                reason,
            } => self.set_paused(target, false, actor, reason),
            Command::TripBreaker { actor, reason } => {
                self.set_trading_state(TradingState::Halted, actor, reason)
            }
            Command::ResetBreaker { actor, reason } => {
                self.set_trading_state(TradingState::Active, actor, reason)
            }
        }
    }
}

/// One healthchecks-style ping. The URL is a secret: errors never include it.
pub(crate) fn ping_url(url: &str, method: &str, timeout: Duration) -> Result<(), String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .build()
        .new_agent();
    let res = if method == "POST" {
        agent.post(url).send("vigil alive")
    } else {
        agent.get(url).call()
    };
    res.map(|_| ()).map_err(|e| match e {
        ureq::Error::StatusCode(code) => format!("the heartbeat URL answered HTTP {code}"),
        ureq::Error::Timeout(_) => format!("no answer within {} ms", timeout.as_millis()),
        other => format!(
            "request failed: {}",
            other.to_string().replace(url, "[REDACTED]")
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;
    use vigil_core::{Clock, SimClock};
    use vigil_log::{LogSink, MemoryLog, Value};
    use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t, yield_until};

    use super::*;

    record_enum! {
        /// What the Monitor sent to the Signal and Risk agents.
        #[derive(Debug)]
        enum Got {
            Paused(SetPaused),
            Trading(SetTradingState),
        }
    }

    struct Harness {
        addr: Addr<MonitorAgent>,
        seen: Recorder<Got>,
        log: MemoryLog,
        wall: SimClock,
        done: oneshot::Receiver<SessionSummary>,
    }

    fn start(trip_breaker_on_agent_failure: bool) -> Harness {
        let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        let market = SimClock::starting_at(t("2024-01-15T09:30:00Z"));
        let (sink, log) = LogSink::memory();
        let seen = Recorder::new();
        // Stands in for the Signal agent (pause switch) and the Risk agent (trading state).
        let collector = seen.start_actor();
        let (done_tx, done) = oneshot::channel();
        let agent = MonitorAgent::new(
            MonitorConfig {
                heartbeat_interval_ms: 1_000,
                heartbeat_timeout_ms: 5_000,
                trip_breaker_on_agent_failure,
                ..MonitorConfig::default()
            },
            "test-session".into(),
            Arc::new(wall.clone()),
            Arc::new(market),
            LogBuffer::new(sink, SERVICE, Level::Debug),
            MonitorLinks {
                signal: collector.clone().recipient(),
                risk: collector.recipient(),
            },
            done_tx,
        );
        Harness {
            addr: agent.start(),
            seen,
            log,
            wall,
            done,
        }
    }

    impl Harness {
        /// Moves the supervision clock one interval on and waits until the Monitor has run
        /// its check (it then arms the next one, a full interval later).
        async fn tick(&self) {
            self.wall.advance_by(chrono::Duration::seconds(1));
            let now = self.wall.now();
            yield_until(&format!("the monitor's heartbeat check at {now}"), || {
                self.wall.next_deadline().is_some_and(|d| d > now)
            })
            .await;
        }

        async fn heartbeat(&self, agent: AgentId) {
            self.addr
                .send(Heartbeat {
                    agent,
                    state: AgentState::Running,
                    at: self.wall.now(),
                    processed: 0,
                    figures: Figures::None,
                })
                .await
                .expect("heartbeat");
        }

        async fn command(&self, cmd: Command) -> Result<(), String> {
            self.addr.send(cmd).await.expect("command delivered")
        }

        async fn fault(&self, agent: AgentId, error: &str, fatal: bool) {
            self.addr
                .send(AgentFault {
                    agent,
                    error: error.into(),
                    fatal,
                })
                .await
                .expect("fault");
        }
    }

    const PIPELINE: [AgentId; 5] = [
        AgentId::Data,
        AgentId::Regime,
        AgentId::Signal,
        AgentId::Risk,
        AgentId::Execution,
    ];

    #[actix_rt::test]
    async fn a_silent_agent_is_reported_missing_once_and_recovered_on_its_next_heartbeat() {
        let h = start(true);
        // Twelve seconds: everyone reports every second, except Regime after second 2.
        for second in 1..=12 {
            h.tick().await;
            for agent in PIPELINE {
                if agent != AgentId::Regime || second <= 2 {
                    h.heartbeat(agent).await;
                }
            }
            let missed = logged(&h.log, Event::HeartbeatMissed);
            // Last heard at second 2; silent for more than 5 s from second 8 on.
            assert_eq!(missed.len(), usize::from(second >= 8), "at second {second}");
        }
        let missed = logged(&h.log, Event::HeartbeatMissed);
        assert_eq!(missed.len(), 1, "exactly one line however long the silence");
        assert_eq!(missed[0].level, Level::Critical);
        assert_eq!(text(&missed[0], "agent"), "regime");
        assert_eq!(missed[0].get("silent_ms"), Some(&Value::I64(6_000)));
        assert_eq!(
            missed[0].get("last_heartbeat"),
            Some(&Value::Ts(t("2030-01-01T00:00:02Z")))
        );

        h.heartbeat(AgentId::Regime).await;
        let recovered = logged(&h.log, Event::HeartbeatRecovered);
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].level, Level::Warn);
        assert_eq!(text(&recovered[0], "agent"), "regime");
        assert_eq!(recovered[0].get("silent_ms"), Some(&Value::I64(10_000)));

        // Healthy again: nothing more is logged while it keeps reporting.
        for _ in 0..8 {
            h.tick().await;
            for agent in PIPELINE {
                h.heartbeat(agent).await;
            }
        }
        assert_eq!(logged(&h.log, Event::HeartbeatMissed).len(), 1);
        assert_eq!(logged(&h.log, Event::HeartbeatRecovered).len(), 1);
    }

    #[actix_rt::test]
    async fn an_agent_that_finished_is_not_reported_missing() {
        let h = start(true);
        h.addr
            .send(StageReport::Data {
                bars: 10,
                rejected: 0,
                first: None,
                last: None,
                source: "csv:TEST.csv".into(),
            })
            .await
            .expect("report");
        for _ in 0..7 {
            h.tick().await;
            for agent in [
                AgentId::Regime,
                AgentId::Signal,
                AgentId::Risk,
                AgentId::Execution,
            ] {
                h.heartbeat(agent).await;
            }
        }
        assert!(logged(&h.log, Event::HeartbeatMissed).is_empty());
    }

    #[actix_rt::test]
    async fn pause_and_resume_commands_reach_the_signal_agent() {
        let h = start(true);
        h.command(Command::Pause {
            target: CommandTarget::Agent(AgentId::Signal),
            actor: "ops".into(),
            reason: "news".into(),
        })
        .await
        .expect("pause");
        h.command(Command::Resume {
            target: CommandTarget::All,
            actor: "ops".into(),
            reason: "calm".into(),
        })
        .await
        .expect("resume");
        h.seen.wait_for_len(2).await;
        h.seen.with(|got| {
            assert!(
                matches!(&got[0], Got::Paused(SetPaused { paused: true, actor, reason }) if actor == "ops" && reason == "news"),
                "{got:?}"
            );
            assert!(
                matches!(&got[1], Got::Paused(SetPaused { paused: false, reason, .. }) if reason == "calm"),
                "{got:?}"
            );
        });
        let received = logged(&h.log, Event::CommandReceived);
        assert_eq!(received.len(), 2);
        assert_eq!(text(&received[0], "command"), "pause");
        assert_eq!(text(&received[0], "actor"), "ops");
        assert_eq!(text(&received[0], "reason"), "news");
        assert_eq!(text(&received[1], "command"), "resume");
    }

    #[actix_rt::test]
    async fn pausing_an_agent_that_cannot_pause_is_refused() {
        let h = start(true);
        let err = h
            .command(Command::Pause {
                target: CommandTarget::Agent(AgentId::Data),
                actor: "ops".into(),
                reason: "test".into(),
            })
            .await
            .expect_err("data cannot pause");
        assert!(err.contains("cannot be paused"), "{err}");
        assert!(err.contains("data"), "{err}");
        assert_eq!(h.seen.settled_len().await, 0, "nothing was sent");
        // The refused command is still on record.
        assert_eq!(logged(&h.log, Event::CommandReceived).len(), 1);
    }

    #[actix_rt::test]
    async fn breaker_commands_reach_the_risk_agent() {
        let h = start(true);
        h.command(Command::TripBreaker {
            actor: "ops".into(),
            reason: "runaway losses".into(),
        })
        .await
        .expect("trip");
        h.command(Command::ResetBreaker {
            actor: "ops".into(),
            reason: "reviewed".into(),
        })
        .await
        .expect("reset");
        h.seen.wait_for_len(2).await;
        h.seen.with(|got| {
            assert!(
                matches!(&got[0], Got::Trading(SetTradingState { state: TradingState::Halted, actor, reason }) if actor == "ops" && reason == "runaway losses"),
                "{got:?}"
            );
            assert!(
                matches!(&got[1], Got::Trading(SetTradingState { state: TradingState::Active, .. })),
                "{got:?}"
            );
        });
        let received = logged(&h.log, Event::CommandReceived);
        assert_eq!(text(&received[0], "command"), "breaker_trip");
        assert_eq!(text(&received[1], "command"), "breaker_reset");
    }

    #[actix_rt::test]
    async fn a_fatal_fault_trips_the_breaker() {
        let h = start(true);
        h.fault(AgentId::Data, "GOOG.csv:7: bad row", true).await;
        h.seen.wait_for_len(1).await;
        h.seen.with(|got| {
            assert!(
                matches!(&got[0], Got::Trading(SetTradingState { state: TradingState::Halted, actor, reason })
                    if actor == "monitor" && reason == "data agent failed: GOOG.csv:7: bad row"),
                "{got:?}"
            );
        });
        let failed = logged(&h.log, Event::AgentFailed);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].level, Level::Critical);
        assert_eq!(text(&failed[0], "agent"), "data");
        assert_eq!(failed[0].get("fatal"), Some(&Value::Bool(true)));
        assert_eq!(text(&failed[0], "error"), "GOOG.csv:7: bad row");
    }

    #[actix_rt::test]
    async fn a_non_fatal_fault_or_a_disabled_rule_does_not_trip_the_breaker() {
        let h = start(true);
        h.fault(AgentId::Execution, "venue cancel failed", false)
            .await;
        let failed = logged(&h.log, Event::AgentFailed);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].level, Level::Error);
        assert_eq!(h.seen.settled_len().await, 0);

        let h = start(false);
        h.fault(AgentId::Data, "GOOG.csv:7: bad row", true).await;
        assert_eq!(logged(&h.log, Event::AgentFailed)[0].level, Level::Critical);
        assert_eq!(h.seen.settled_len().await, 0, "the rule is off");
    }

    fn execution_report(reason: StopReason) -> StageReport {
        StageReport::Execution {
            reason,
            orders: 6,
            filled: 4,
            venue_rejects: 1,
            cancelled: 1,
            fills: 5,
            initial_cash: dec!(100000),
            equity: dec!(101234.5),
            cash: dec!(90000),
            commissions: dec!(12.5),
            max_drawdown: dec!(0.031),
            positions: vec![("TEST".into(), dec!(10))],
        }
    }

    #[actix_rt::test]
    async fn the_stage_reports_fold_into_the_session_summary() {
        let mut h = start(true);
        let first = t("2024-01-15T09:30:00Z");
        let last = t("2024-03-01T16:00:00Z");
        let reports = [
            StageReport::Data {
                bars: 250,
                rejected: 2,
                first: Some(first),
                last: Some(last),
                source: "csv:TEST.csv".into(),
            },
            StageReport::Regime { changes: 7 },
            StageReport::Signal {
                signals: 9,
                suppressed: 3,
            },
            StageReport::Risk {
                approved: 6,
                rejected: 3,
                state: TradingState::ReduceOnly,
            },
        ];
        for r in reports {
            h.addr.send(r).await.expect("report");
            assert!(
                h.done.try_recv().is_err(),
                "the session waits for Execution"
            );
        }
        h.addr
            .send(execution_report(StopReason::EndOfData))
            .await
            .expect("report");
        let summary = h.done.try_recv().expect("the summary is sent at once");
        assert_eq!(
            summary,
            SessionSummary {
                name: "test-session".into(),
                source: "csv:TEST.csv".into(),
                stop_reason: "end_of_data".into(),
                error: None,
                first_bar: Some(first),
                last_bar: Some(last),
                bars: 250,
                bars_rejected: 2,
                regime_changes: 7,
                signals: 9,
                signals_suppressed: 3,
                risk_approved: 6,
                risk_rejected: 3,
                orders: 6,
                orders_filled: 4,
                venue_rejects: 1,
                orders_cancelled: 1,
                fills: 5,
                initial_cash: dec!(100000),
                final_equity: dec!(101234.5),
                final_cash: dec!(90000),
                commissions: dec!(12.5),
                max_drawdown: dec!(0.031),
                trading_state: TradingState::ReduceOnly,
                positions: vec![("TEST".into(), dec!(10))],
            }
        );
        assert_eq!(summary.pnl(), dec!(1234.5));

        let stopped = logged(&h.log, Event::SessionStopped);
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].level, Level::Info);
        assert_eq!(
            stopped[0].timestamp, last,
            "stamped with the last bar's time"
        );
        assert_eq!(text(&stopped[0], "reason"), "end_of_data");
        assert_eq!(stopped[0].get("bars"), Some(&Value::U64(250)));
        assert_eq!(stopped[0].get("pnl"), Some(&Value::Dec(dec!(1234.5))));
        assert_eq!(text(&stopped[0], "trading_state"), "reduce_only");
        assert!(stopped[0].get("error").is_none());

        // The Monitor's work is done: it stops.
        yield_until("the monitor to stop", || !h.addr.connected()).await;
        assert!(!h.addr.connected());
    }

    #[actix_rt::test]
    async fn a_session_ended_by_a_fault_reports_the_first_error() {
        let mut h = start(true);
        h.fault(AgentId::Data, "BAD.csv:4: column 'close'", true)
            .await;
        h.fault(AgentId::Risk, "later error", true).await;
        for r in [
            StageReport::Data {
                bars: 2,
                rejected: 0,
                first: None,
                last: None,
                source: "csv:BAD.csv".into(),
            },
            StageReport::Regime { changes: 0 },
            StageReport::Signal {
                signals: 0,
                suppressed: 0,
            },
            StageReport::Risk {
                approved: 0,
                rejected: 0,
                state: TradingState::Halted,
            },
            execution_report(StopReason::Failed("BAD.csv:4: column 'close'".into())),
        ] {
            h.addr.send(r).await.expect("report");
        }
        let summary = h.done.try_recv().expect("summary");
        assert_eq!(summary.stop_reason, "failed");
        assert_eq!(summary.error.as_deref(), Some("BAD.csv:4: column 'close'"));
        assert_eq!(summary.trading_state, TradingState::Halted);
        let stopped = logged(&h.log, Event::SessionStopped);
        assert_eq!(stopped[0].level, Level::Error);
        assert_eq!(text(&stopped[0], "error"), "BAD.csv:4: column 'close'");
    }
}
