use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_bus::{
    Action, AgentFault, CancelAll, Command, CommandError, CommandTarget, DefaultRegime, Figures,
    Flatten, Heartbeat, InjectPanic, Ping, SessionSummary, SetPaused, SetQuarantine,
    SetTradingState, Shutdown, StageReport, StopReason, Supervision, SwitchSource, run_every,
};
use vigil_monitoring::{Status, SystemSampler, Transition};

use crate::alerting::{
    AlertLinks, Alerting, Delivered, Input, Logged, StoreFailed, alert_entry, entry, input_of,
    level_of,
};
use crate::health::{Health, HealthLinks, agent_view, endpoint, figures_json};
use vigil_config::MonitorConfig;
use vigil_core::{AgentId, AgentState, Level, SharedClock, Timestamp, TradingState};
use vigil_log::{Event, LogBuffer, LogEvent};

const SERVICE: &str = "monitor_agent";

/// An agent's answer to a command.
type Answer = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, CommandError>>>>;

/// The agents the Monitor commands.
#[derive(Clone, Debug)]
pub struct MonitorLinks {
    /// The Signal agent's pause switch.
    pub signal: Recipient<SetPaused>,
    /// The Risk agent's trading state.
    pub risk: Recipient<SetTradingState>,
    /// The Risk agent closes every position.
    pub flatten: Recipient<Flatten>,
    /// The Execution agent cancels every open order.
    pub cancel_all: Recipient<CancelAll>,
    /// The Data agent switches its source.
    pub switch_source: Recipient<SwitchSource>,
    /// The Data agent puts a symbol in quarantine or releases it.
    pub quarantine: Recipient<SetQuarantine>,
    /// The Regime agent falls back to its default label.
    pub default_regime: Recipient<DefaultRegime>,
    /// The Data agent stops reading (the pipeline then drains).
    pub shutdown: Recipient<Shutdown>,
    /// Every agent's panic switch, answered only with fault injection on (testing).
    pub panics: Vec<(AgentId, Recipient<InjectPanic>)>,
    /// `[control] fault_injection`: honour `InjectPanic` commands.
    pub fault_injection: bool,
    /// The breaker's fast path to the Risk agent (see [`vigil_bus::HaltLatch`]).
    pub halt: vigil_bus::HaltLatch,
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
    /// The last two stages have reported: the session closes when both have.
    risk_reported: bool,
    execution_reported: bool,
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
    /// Alerts (None: findings are logged only).
    alerting: Option<Alerting>,
    /// The highest operator request applied by this process.
    last_request: i64,
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
            risk_reported: false,
            execution_reported: false,
            done: Some(done),
            health: None,
            transitions: Vec::new(),
            started_at: now,
            ext_pinging: false,
            ext_failing: false,
            probe_failing: Vec::new(),
            was_ready: false,
            alerting: None,
            last_request: 0,
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
        let open = h.hours_open(market_now, now);
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
            self.emit(ev);
        }
        for (probe, e) in failures {
            self.probe_failed(probe, e);
        }
        for probe in oks {
            self.probe_ok(probe);
        }
        for t in std::mem::take(&mut self.transitions) {
            self.emit(t.event(market_now, SERVICE));
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
            market_open: h.hours_open(self.clock.now(), now),
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
                        act.emit(
                            LogEvent::new(act.clock.now(), SERVICE, Event::ExternalHeartbeatFailed)
                                .level(Level::Info)
                                .with("recovered", true),
                        );
                    }
                }
                Err(e) => {
                    act.ext_failing = true;
                    act.emit(
                        LogEvent::new(act.clock.now(), SERVICE, Event::ExternalHeartbeatFailed)
                            .with("error", e),
                    );
                    act.log.flush();
                }
            }
        }));
    }

    fn check_heartbeats(&mut self, ctx: &mut Context<Self>) {
        let now = self.wall.now();
        let mut missed = Vec::new();
        let timeout = vigil_core::millis(self.cfg.heartbeat_timeout_ms);
        for (agent, status) in &mut self.agents {
            let finished = matches!(status.state, AgentState::Stopped | AgentState::Failed);
            if finished || status.missing {
                continue;
            }
            let silent = now - status.last_heartbeat;
            if silent > timeout {
                status.missing = true;
                missed.push(
                    LogEvent::new(self.clock.now(), SERVICE, Event::HeartbeatMissed)
                        .with("agent", agent.as_str())
                        .with("last_heartbeat", status.last_heartbeat)
                        .with("silent_ms", silent.num_milliseconds())
                        .with("timeout_ms", self.cfg.heartbeat_timeout_ms)
                        .with("state", status.state.as_str()),
                );
            }
        }
        for ev in missed {
            self.emit(ev);
        }
        self.alert_tick();
        self.read_requests(ctx);
        self.log.flush();
    }

    /// Halts or resets trading on the Monitor's own authority (an alert, a failed agent,
    /// supervision): fire and forget, since the Risk agent logs the change itself.
    ///
    /// A halt asked of a Risk agent that has stopped is done already when the breaker it
    /// left is tripped (a bad-data run: the Risk agent halts in band at the failed end of
    /// the stream, then stops, and the alert about the failure arrives after): `Ok`, not a
    /// failure. Otherwise the request cannot be carried out: `Err`, for the caller to page.
    fn set_trading_state(
        &mut self,
        state: TradingState,
        actor: String,
        reason: String,
    ) -> Result<(), String> {
        let links = self.links.as_ref().ok_or("monitor is not wired")?;
        if !links.risk.connected() {
            return match links.halt.held() {
                Some(held) if held == state => Ok(()),
                Some(held) => Err(format!(
                    "the risk agent has stopped with trading {}: {} is not applied, and the \
                     saved state stays {}",
                    held.as_str(),
                    state.as_str(),
                    held.as_str()
                )),
                None => Err("risk agent is not running".into()),
            };
        }
        if state == TradingState::Halted {
            links.halt.trip(&actor, &reason);
        }
        links.risk.do_send(SetTradingState {
            state,
            actor,
            reason,
        });
        Ok(())
    }

    /// Sends an operator's command to the agent that carries it out; the future is the
    /// agent's answer.
    fn route(&mut self, cmd: Command) -> Result<Answer, CommandError> {
        let links = self
            .links
            .as_ref()
            .ok_or_else(|| CommandError::Unavailable("the monitor is not wired".into()))?;
        let Command {
            action,
            actor,
            reason,
        } = cmd;
        fn ask<M>(agent: &'static str, to: &Recipient<M>, msg: M) -> Answer
        where
            M: Message<Result = Result<String, CommandError>> + Send + 'static,
        {
            let sent = to.send(msg);
            Box::pin(async move {
                sent.await.map_err(|e| {
                    CommandError::Unavailable(format!("the {agent} agent is not running ({e})"))
                })?
            })
        }
        Ok(match action {
            Action::Pause(target) | Action::Resume(target) => {
                let paused = matches!(action, Action::Pause(_));
                match target {
                    CommandTarget::Agent(AgentId::Signal) | CommandTarget::All => {}
                    CommandTarget::Agent(other) => {
                        return Err(CommandError::Invalid(format!(
                            "agent {other} cannot be paused; pausable agents: signal (or all)"
                        )));
                    }
                }
                ask(
                    "signal",
                    &links.signal,
                    SetPaused {
                        paused,
                        actor,
                        reason,
                    },
                )
            }
            Action::TripBreaker | Action::ResetBreaker => {
                if action == Action::TripBreaker {
                    links.halt.trip(&actor, &reason);
                } else {
                    links.halt.clear();
                }
                ask(
                    "risk",
                    &links.risk,
                    SetTradingState {
                        state: if action == Action::TripBreaker {
                            TradingState::Halted
                        } else {
                            TradingState::Active
                        },
                        actor,
                        reason,
                    },
                )
            }
            Action::CancelAll => ask("execution", &links.cancel_all, CancelAll { actor, reason }),
            Action::Flatten => ask("risk", &links.flatten, Flatten { actor, reason }),
            Action::SwitchSource(name) => ask(
                "data",
                &links.switch_source,
                SwitchSource {
                    name,
                    actor,
                    reason,
                },
            ),
            Action::Quarantine(symbol) => ask(
                "data",
                &links.quarantine,
                SetQuarantine {
                    on: true,
                    symbol,
                    actor,
                    reason,
                },
            ),
            Action::Release(symbol) => ask(
                "data",
                &links.quarantine,
                SetQuarantine {
                    on: false,
                    symbol,
                    actor,
                    reason,
                },
            ),
            Action::DefaultRegime => ask(
                "regime",
                &links.default_regime,
                DefaultRegime { actor, reason },
            ),
            Action::Shutdown => {
                if !links.shutdown.connected() {
                    return Ok(Box::pin(async {
                        Ok("already stopping: the data agent has stopped reading".to_string())
                    }));
                }
                links.shutdown.do_send(Shutdown {
                    reason: StopReason::Interrupted,
                });
                Box::pin(async {
                    Ok(
                        "stopping: the data agent stops reading and the pipeline drains in order"
                            .to_string(),
                    )
                })
            }
            Action::InjectPanic { agent, times } => {
                if !links.fault_injection {
                    return Err(CommandError::Invalid(
                        "fault injection is off; it is for tests only ([control] fault_injection = true)"
                            .into(),
                    ));
                }
                let to = links
                    .panics
                    .iter()
                    .find(|(a, _)| *a == agent)
                    .map(|(_, r)| r.clone())
                    .ok_or_else(|| {
                        CommandError::Invalid(format!("agent {agent} cannot be made to panic"))
                    })?;
                for _ in 0..times {
                    to.do_send(InjectPanic {
                        actor: actor.clone(),
                    });
                }
                Box::pin(async move { Ok(format!("{times} panic(s) injected into {agent}")) })
            }
        })
    }

    fn fold(&mut self, report: StageReport) -> Option<AgentId> {
        let s = &mut self.summary;
        match report {
            StageReport::Data {
                bars,
                rejected,
                parse_errors,
                first,
                last,
                source,
            } => {
                s.bars = bars;
                s.bars_rejected = rejected;
                s.messages_rejected = parse_errors;
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
            .with("bars_rejected", s.bars_rejected)
            .with("messages_rejected", s.messages_rejected)
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
        self.drain_alerts(ctx);
    }

    /// Sends what the session's alerting still owes (the day's summary), waits for the
    /// dispatcher to deliver what it holds, then finishes the close (see [`CloseNow`]).
    fn drain_alerts(&mut self, ctx: &mut Context<Self>) {
        let Some(al) = self.alerting.as_mut() else {
            self.finish_close(ctx);
            return;
        };
        let date = vigil_alert::exchange_date(self.clock.now());
        let summary = al.engine.day_summary(date);
        if let Some(effect) = summary {
            self.apply_alerts(vec![effect]);
        }
        let Some(dispatcher) = self.alerting.as_mut().and_then(|al| al.dispatcher.take()) else {
            ctx.address().do_send(CloseNow);
            return;
        };
        let drain = tokio::task::spawn_blocking(move || dispatcher.shutdown(DELIVERY_DRAIN));
        ctx.wait(drain.into_actor(self).map(|res, act, ctx| {
            let res = res
                .map_err(|e| format!("delivery drain task failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(e) = res {
                eprintln!("vigil: ERROR alert deliveries not finished at shutdown: {e}");
                act.log.emit(
                    LogEvent::new(act.clock.now(), SERVICE, Event::AlertDeliveryFailed)
                        .with("channel", "all")
                        .with("error", e)
                        .with("next", "shutdown: undelivered notices are in the alert log"),
                );
            }
            // Through the mailbox: the delivery reports queued during the drain go first.
            ctx.address().do_send(CloseNow);
        }));
    }

    /// Saves the alert state, waits for the store to have it, hands over the summary and stops.
    fn finish_close(&mut self, ctx: &mut Context<Self>) {
        let persister = self.alerting.as_mut().and_then(|al| {
            if let Err(e) = al.persist(self.wall.now()) {
                self.log.emit(
                    LogEvent::new(self.clock.now(), SERVICE, Event::AlertStoreFailed)
                        .with("error", e),
                );
            }
            al.persist = None; // closing the channel ends the persister once it is done
            al.persister.take()
        });
        match persister {
            Some(task) => {
                ctx.wait(task.into_actor(self).map(|res, act, ctx| {
                    if let Err(e) = res {
                        act.store_failed(format!("the alert store task failed: {e}"));
                    }
                    act.hand_over(ctx);
                }));
            }
            None => self.hand_over(ctx),
        }
    }

    fn hand_over(&mut self, ctx: &mut Context<Self>) {
        self.log.flush();
        let now = self.clock.now();
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

/// How long the session's end waits for the dispatcher to deliver what it holds.
const DELIVERY_DRAIN: Duration = Duration::from_secs(10);

/// Finish closing the session (sent through the mailbox, after queued delivery reports).
#[derive(actix::Message, Debug)]
#[rtype(result = "()")]
struct CloseNow;

impl MonitorAgent {
    /// Logs one of the Monitor's own findings and hands it to alerting.
    fn emit(&mut self, ev: LogEvent) {
        let input = input_of(&ev);
        self.log.emit(ev);
        if let Some(input) = input {
            self.alert_input(input);
        }
    }

    fn market_open(&self) -> bool {
        self.health
            .as_ref()
            .is_none_or(|h| h.hours_open(self.clock.now(), self.wall.now()))
    }

    fn alert_input(&mut self, input: Input) {
        let now = self.wall.now();
        let open = self.market_open();
        let market_date = vigil_alert::exchange_date(self.clock.now());
        let Some(al) = self.alerting.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let once = matches!(input, Input::Happened(_));
        match input {
            Input::Raise(mut r) | Input::Happened(mut r) => {
                if let Some((equity, pnl)) = &al.equity {
                    r.details.push(("Equity".into(), equity.clone()));
                    r.details.push(("Today's P&L".into(), pnl.clone()));
                }
                let (rule, service, labels) = (r.rule.clone(), r.service.clone(), r.labels.clone());
                al.engine.raise(now, open, r, &mut out);
                if once {
                    al.engine
                        .clear(now, open, &rule, &service, &labels, &mut out);
                }
            }
            Input::Clear {
                rule,
                service,
                labels,
            } => al
                .engine
                .clear(now, open, &rule, &service, &labels, &mut out),
            Input::PostClose(date) => {
                let date = date.unwrap_or(market_date);
                if al.summarized != Some(date) {
                    al.summarized = Some(date);
                    out.extend(al.engine.day_summary(date));
                }
            }
        }
        self.apply_alerts(out);
    }

    /// Moves alerts on in time: pending ones past `for` fire, cleared ones resolve, grouped
    /// repeats go out.
    fn alert_tick(&mut self) {
        let now = self.wall.now();
        let open = self.market_open();
        let Some(al) = self.alerting.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        al.engine.tick(now, open, &mut out);
        // Every second: nothing to save unless time moved an alert on (an expired silence
        // is dropped on the next save; it no longer matches anyway).
        if !out.is_empty() {
            self.apply_alerts(out);
        }
    }

    /// Counts on the health board's metrics (nothing to count into with health off).
    fn count(&self, f: impl FnOnce()) {
        if let Some(h) = &self.health {
            h.links.board.record(f);
        }
    }

    /// Acts on the engine's effects: logs them, trips the breaker, hands notices to the
    /// dispatcher, and queues the state and the notification log for the store.
    fn apply_alerts(&mut self, effects: Vec<vigil_alert::Effect>) {
        use vigil_alert::Effect;
        let now = self.wall.now();
        let stamp = self.clock.now();
        for effect in effects {
            match effect {
                Effect::Firing(a) => {
                    self.count(|| metrics::counter!("vigil_alerts_fired_total", "severity" => a.severity.as_str())
                        .increment(1));
                    let labels: Vec<String> =
                        a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    self.log.emit(
                        LogEvent::new(stamp, SERVICE, Event::AlertFiring)
                            .level(level_of(a.severity))
                            .with("id", a.id.clone())
                            .with("rule", a.rule.clone())
                            .with("severity", a.severity.as_str())
                            .with("service", a.service.clone())
                            .with("labels", labels.join(","))
                            .with("headline", a.event.clone()),
                    );
                    if let Some(al) = self.alerting.as_mut() {
                        al.lines
                            .push(alert_entry(now, "firing", &a, a.event.clone()));
                    }
                }
                Effect::Resolved(a) => {
                    let firing_s = (now - a.since).num_seconds();
                    self.log.emit(
                        LogEvent::new(stamp, SERVICE, Event::AlertResolved)
                            .with("id", a.id.clone())
                            .with("rule", a.rule.clone())
                            .with("firing_s", firing_s),
                    );
                    if let Some(al) = self.alerting.as_mut() {
                        al.lines.push(alert_entry(
                            now,
                            "resolved",
                            &a,
                            format!("cleared after {firing_s} s: {}", a.event),
                        ));
                    }
                }
                Effect::Suppressed { id, rule, why } => {
                    let why = why.to_string();
                    self.log.emit(
                        LogEvent::new(stamp, SERVICE, Event::AlertSuppressed)
                            .with("id", id.clone())
                            .with("rule", rule.clone())
                            .with("why", why.clone()),
                    );
                    if let Some(al) = self.alerting.as_mut() {
                        al.lines.push(vigil_store::AlertLogEntry {
                            alert_id: Some(id),
                            rule: Some(rule),
                            ..entry(now, "suppressed", why)
                        });
                    }
                }
                Effect::TripBreaker { rule, reason } => {
                    let actor = format!("alert:{rule}");
                    if let Err(e) =
                        self.set_trading_state(TradingState::Halted, actor, reason.clone())
                    {
                        eprintln!("vigil: CRITICAL alert {rule} could not trip the breaker: {e}");
                        self.log.emit(
                            LogEvent::new(stamp, SERVICE, Event::AgentFailed)
                                .level(Level::Critical)
                                .with("agent", "risk")
                                .with(
                                    "error",
                                    format!("alert {rule} could not trip the breaker: {e}"),
                                ),
                        );
                    }
                }
                Effect::Notify { message, channels } => self.notify(stamp, now, message, &channels),
            }
        }
        self.persist_alerts();
    }

    fn notify(
        &mut self,
        stamp: Timestamp,
        now: Timestamp,
        message: vigil_alert::Message,
        channels: &[String],
    ) {
        let Some(al) = self.alerting.as_mut() else {
            return;
        };
        let (status, severity, id, rule) = match &message {
            vigil_alert::Message::Alert(n) => (
                format!("{:?}", n.status).to_lowercase(),
                n.severity.as_str().to_string(),
                Some(n.alert_id.clone()),
                Some(n.rule.clone()),
            ),
            vigil_alert::Message::Digest { items, .. } => (
                format!("digest of {}", items.len()),
                "LOW".into(),
                None,
                None,
            ),
            vigil_alert::Message::Test { .. } => ("test".into(), "LOW".into(), None, None),
        };
        let message = Arc::new(message);
        let (deliveries, used, unrouted) = al.deliveries(&message, channels);
        let mut refused = Vec::new();
        if let Some(d) = al.dispatcher.as_ref() {
            for delivery in deliveries {
                if let Err(e) = d.submit(delivery) {
                    refused.push(e.to_string());
                }
            }
        }
        let mut ev = LogEvent::new(stamp, SERVICE, Event::AlertNotified)
            .with("status", status.clone())
            .with("severity", severity.clone())
            .with("channels", used.join(","));
        if let Some(id) = &id {
            ev = ev.with("id", id.clone());
        }
        if !unrouted.is_empty() {
            ev = ev.level(Level::Warn).with("unrouted", unrouted.join(","));
            if used.is_empty() {
                ev = ev.with(
                    "note",
                    "no configured channel on this route: nobody was told; configure [alerts.channels]",
                );
            }
        }
        self.log.emit(ev);
        for e in &refused {
            self.count(|| metrics::counter!("vigil_alert_deliveries_total", "channel" => "dispatcher", "outcome" => "refused")
                .increment(1));
            self.log.emit(
                LogEvent::new(stamp, SERVICE, Event::AlertDeliveryFailed)
                    .with("channel", "dispatcher")
                    .with("error", e.clone())
                    .with("next", "gave up: the notice was not queued"),
            );
        }
        let detail = format!(
            "{status} {severity} to [{}]{}{}",
            used.join(", "),
            if unrouted.is_empty() {
                String::new()
            } else {
                format!("; not configured: [{}]", unrouted.join(", "))
            },
            if refused.is_empty() {
                String::new()
            } else {
                format!("; not queued: {}", refused.join("; "))
            }
        );
        if let Some(al) = self.alerting.as_mut() {
            al.lines.push(vigil_store::AlertLogEntry {
                alert_id: id,
                rule,
                severity: Some(severity),
                ..entry(now, "notified", detail)
            });
        }
    }

    fn persist_alerts(&mut self) {
        let now = self.wall.now();
        let res = match self.alerting.as_mut() {
            Some(al) => al.persist(now),
            None => Ok(()),
        };
        if let Err(e) = res {
            self.store_failed(e);
        }
    }

    fn store_failed(&mut self, error: String) {
        self.count(|| metrics::counter!("vigil_alert_store_errors_total").increment(1));
        eprintln!("vigil: CRITICAL alert store: {error}");
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AlertStoreFailed).with("error", error),
        );
        self.log.flush();
    }

    /// Reads the operator's pending requests from the store (one read at a time).
    fn read_requests(&mut self, ctx: &mut Context<Self>) {
        let Some(al) = self.alerting.as_mut() else {
            return;
        };
        let Some(store) = al.store.clone() else {
            return;
        };
        if al.reading_requests || al.persist.is_none() {
            return;
        }
        al.reading_requests = true;
        let read = async move { store.pending_requests().await };
        ctx.spawn(read.into_actor(self).map(|res, act, _ctx| {
            if let Some(al) = act.alerting.as_mut() {
                al.reading_requests = false;
            }
            match res {
                Ok(requests) => {
                    for r in requests {
                        act.apply_request(r);
                    }
                }
                Err(e) => act.store_failed(e.to_string()),
            }
        }));
    }

    fn apply_request(&mut self, r: vigil_store::AlertRequest) {
        use vigil_store::RequestKind;
        if r.seq <= self.last_request {
            return; // applied already; its result is on its way to the store
        }
        self.last_request = r.seq;
        let now = self.wall.now();
        let Some(al) = self.alerting.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let id = r.body.get("id").and_then(|v| v.as_str());
        let result: Result<String, String> = match r.kind {
            RequestKind::Ack => match id {
                Some(id) => al
                    .engine
                    .ack(now, id, &r.who, &mut out)
                    .map(|()| format!("acknowledged {id}"))
                    .map_err(|e| e.to_string()),
                None => Err("the request has no \"id\"".into()),
            },
            RequestKind::Unsilence => match id {
                Some(id) => al
                    .engine
                    .unsilence(id)
                    .map(|s| format!("removed silence {} ({})", s.id, s.reason))
                    .map_err(|e| e.to_string()),
                None => Err("the request has no \"id\"".into()),
            },
            RequestKind::Silence => silence_args(&r.body).and_then(|(m, starts, ends, reason)| {
                al.engine
                    .silence(m, starts, ends, &r.who, &reason)
                    .map(|s| s.id)
                    .map_err(|e| e.to_string())
            }),
        };
        let (ok, text) = match result {
            Ok(t) => (true, t),
            Err(e) => (false, e),
        };
        if let Err(e) = al.finish(r.seq, now, ok, text.clone()) {
            self.store_failed(e);
        }
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AlertRequestApplied)
                .with("request", r.seq)
                .with("who", r.who.clone())
                .with("kind", r.kind.as_str())
                .with("ok", ok)
                .with("result", text.clone()),
        );
        if let Some(al) = self.alerting.as_mut() {
            al.lines.push(vigil_store::AlertLogEntry {
                alert_id: id.filter(|i| i.starts_with("a-")).map(str::to_string),
                ..entry(
                    now,
                    r.kind.as_str(),
                    format!(
                        "{} by {}: {text}{}",
                        if ok { "applied" } else { "refused" },
                        r.who,
                        r.body
                            .get("reason")
                            .and_then(|v| v.as_str())
                            .map(|why| format!(" (reason: {why})"))
                            .unwrap_or_default()
                    ),
                )
            });
        }
        self.apply_alerts(out);
        self.log.flush();
    }
}

/// A silence request's matchers, start, end and reason.
fn silence_args(
    body: &serde_json::Value,
) -> Result<(BTreeMap<String, String>, Timestamp, Timestamp, String), String> {
    let matchers = body
        .get("matchers")
        .and_then(|m| m.as_object())
        .ok_or("the request has no \"matchers\" object")?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_string()))
                .ok_or_else(|| format!("matcher {k:?} is not a string"))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if matchers.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    let time = |key: &str| -> Result<Timestamp, String> {
        let text = body
            .get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("the request has no \"{key}\""))?;
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| format!("\"{key}\" is not an RFC 3339 time ({text:?}): {e}"))
    };
    let reason = body
        .get("reason")
        .and_then(|v| v.as_str())
        .filter(|r| !r.trim().is_empty())
        .ok_or("a silence needs a reason")?;
    Ok((matchers, time("starts")?, time("ends")?, reason.to_string()))
}

impl Handler<Logged> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, msg: Logged, _ctx: &mut Self::Context) {
        // The Monitor's own findings reached alerting when it logged them.
        if msg.0.service == SERVICE {
            return;
        }
        if let Some(input) = input_of(&msg.0) {
            self.alert_input(input);
            self.log.flush();
        }
    }
}

impl Handler<Delivered> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, msg: Delivered, _ctx: &mut Self::Context) {
        let o = msg.0;
        let now = self.wall.now();
        let stamp = self.clock.now();
        let level = Alerting::outcome_level(&o);
        let mut ev;
        let (kind, detail) = match (&o.result, &o.next) {
            (Ok(()), _) => {
                ev = LogEvent::new(stamp, SERVICE, Event::AlertDelivered);
                ("delivered", format!("attempt {}", o.attempt))
            }
            (Err(e), next) => {
                let next = match next {
                    vigil_alert::NextStep::RetryIn(d) => format!("retry in {} ms", d.as_millis()),
                    vigil_alert::NextStep::EscalatedTo(c) => format!("escalated to {c}"),
                    vigil_alert::NextStep::GaveUp => "gave up: nobody was told".into(),
                    vigil_alert::NextStep::Delivered => "delivered".into(),
                };
                ev = LogEvent::new(stamp, SERVICE, Event::AlertDeliveryFailed)
                    .with("error", e.to_string())
                    .with("next", next.clone());
                (
                    "delivery_failed",
                    format!("attempt {}: {e}; {next}", o.attempt),
                )
            }
        };
        self.count(|| {
            metrics::counter!(
                "vigil_alert_deliveries_total",
                "channel" => o.channel.clone(),
                "outcome" => if o.is_ok() { "delivered" } else { "failed" }
            )
            .increment(1)
        });
        ev = ev
            .level(level)
            .with("channel", o.channel.clone())
            .with("kind", o.kind.as_str())
            .with("attempt", u64::from(o.attempt))
            .with("elapsed_ms", o.elapsed.as_millis() as u64);
        if let Some(id) = &o.alert_id {
            ev = ev.with("id", id.clone());
        }
        self.log.emit(ev);
        if let Some(al) = self.alerting.as_mut() {
            al.lines.push(vigil_store::AlertLogEntry {
                alert_id: o.alert_id.clone(),
                channel: Some(o.channel.clone()),
                ..entry(now, kind, detail)
            });
        }
        let undeliverable = vigil_alert::Raise {
            rule: "alert_undeliverable".into(),
            level: Level::Error,
            service: SERVICE.into(),
            labels: BTreeMap::from([("channel".to_string(), o.channel.clone())]),
            event: format!("the {} channel cannot deliver notices", o.channel),
            details: vec![
                ("Channel".into(), o.channel.clone()),
                ("Error".into(), o.error_text().unwrap_or_default()),
            ],
            you_need_to: "Fix the channel's settings or the service behind it, then `vigil alerts test CHANNEL`.".into(),
        };
        match (&o.result, &o.next) {
            (Err(e), vigil_alert::NextStep::GaveUp) => {
                eprintln!(
                    "vigil: ERROR a notice reached nobody: {} failed for good ({e}); see `vigil alerts history`",
                    o.channel
                );
                self.alert_input(Input::Raise(undeliverable));
            }
            (Ok(()), _) => self.alert_input(Input::Clear {
                rule: undeliverable.rule,
                service: undeliverable.service,
                labels: undeliverable.labels,
            }),
            _ => self.persist_alerts(),
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

impl Handler<CloseNow> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, _msg: CloseNow, ctx: &mut Self::Context) {
        self.finish_close(ctx);
    }
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
        for r in pending {
            self.apply_request(r);
        }
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
        if let (
            Some(al),
            Figures::Execution {
                equity, business, ..
            },
        ) = (self.alerting.as_mut(), &hb.figures)
        {
            al.equity = Some((equity.to_string(), business.day_pnl.to_string()));
        }
        let mut recovered = None;
        if let Some(h) = self.health.as_mut() {
            h.agents.entry(hb.agent).or_default().figures = hb.figures.clone();
        }
        let Some(status) = self.agents.get_mut(&hb.agent) else {
            return;
        };
        if status.missing {
            status.missing = false;
            recovered = Some(
                LogEvent::new(self.clock.now(), SERVICE, Event::HeartbeatRecovered)
                    .with("agent", hb.agent.as_str())
                    .with(
                        "silent_ms",
                        (hb.at - status.last_heartbeat).num_milliseconds(),
                    ),
            );
        }
        status.last_heartbeat = hb.at;
        status.processed = hb.processed;
        if !matches!(status.state, AgentState::Stopped | AgentState::Failed) {
            status.state = hb.state;
        }
        if let Some(ev) = recovered {
            self.emit(ev);
            self.log.flush();
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
            // Execution reports when its input ends; Risk right after, since it answers
            // the Execution agent's drawdown reports until then.
            match agent {
                AgentId::Execution => self.execution_reported = true,
                AgentId::Risk => self.risk_reported = true,
                _ => {}
            }
            if self.execution_reported && self.risk_reported {
                self.close_session(ctx);
            }
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
                if let Some(status) = self.agents.get_mut(&agent) {
                    status.state = AgentState::Failed;
                }
                if escalate {
                    let reason = format!(
                        "{agent} agent crashed {recent} times ({policy}); last panic: {panic}"
                    );
                    // Halt first, then tell (the Critical alert would trip it too, but the
                    // record should name supervision as the actor).
                    if let Err(e) = self.set_trading_state(
                        TradingState::Halted,
                        "supervisor".into(),
                        reason.clone(),
                    ) {
                        eprintln!("vigil: CRITICAL supervision could not trip the breaker: {e}");
                        self.emit(
                            LogEvent::new(self.clock.now(), SERVICE, Event::AgentFailed)
                                .level(Level::Critical)
                                .with("agent", "risk")
                                .with("error", format!("could not trip the breaker: {e}")),
                        );
                    }
                    self.emit(
                        LogEvent::new(self.clock.now(), SERVICE, Event::RestartIntensityExceeded)
                            .with("agent", agent.as_str())
                            .with("crashes_in_window", u64::from(recent))
                            .with("policy", policy)
                            .with("panic", panic)
                            .with(
                                "action",
                                format!(
                                    "breaker tripped; the agent is restarted every {} s while it keeps crashing",
                                    backoff.as_secs()
                                ),
                            ),
                    );
                }
            }
            Supervision::Restarted { agent } => {
                self.count(|| {
                    metrics::counter!("vigil_agent_restarts_total", "agent" => agent.as_str())
                        .increment(1);
                });
                // Failed while it was down; its heartbeats say how it is doing from now.
                if let Some(status) = self.agents.get_mut(&agent)
                    && status.state == AgentState::Failed
                {
                    status.state = AgentState::Starting;
                }
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
                    eprintln!("vigil: CRITICAL could not trip the breaker: {e}");
                    self.emit(
                        LogEvent::new(self.clock.now(), SERVICE, Event::AgentFailed)
                            .level(Level::Critical)
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
    type Result = ResponseActFuture<Self, Result<String, CommandError>>;

    fn handle(&mut self, cmd: Command, _ctx: &mut Self::Context) -> Self::Result {
        let name = cmd.action.name();
        let argument = cmd.action.argument();
        let actor = cmd.actor.clone();
        let reason = cmd.reason.clone();
        let mut received = LogEvent::new(self.clock.now(), SERVICE, Event::CommandReceived)
            .with("command", name)
            .with("actor", actor.clone())
            .with("reason", reason.clone());
        if let Some(arg) = &argument {
            received = received.with("argument", arg.clone());
        }
        self.log.emit(received);
        self.log.flush();
        let answer = match self.route(cmd) {
            Ok(fut) => fut,
            Err(e) => Box::pin(async move { Err(e) }),
        };
        Box::pin(answer.into_actor(self).map(move |res, act, _ctx| {
            let ev = match &res {
                Ok(outcome) => LogEvent::new(act.clock.now(), SERVICE, Event::CommandApplied)
                    .with("outcome", outcome.clone()),
                Err(e) => LogEvent::new(act.clock.now(), SERVICE, Event::CommandRefused)
                    .with("error", e.to_string()),
            };
            act.log.emit(
                ev.with("command", name)
                    .with("actor", actor)
                    .with("reason", reason),
            );
            act.log.flush();
            res
        }))
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
    use vigil_testkit::{Recorder, logged, text, timestamp as t, yield_until};

    use super::*;

    use crate::test_links::{Sent as Got, links};

    struct Harness {
        addr: Addr<MonitorAgent>,
        seen: Recorder<Got>,
        log: MemoryLog,
        wall: SimClock,
        done: oneshot::Receiver<SessionSummary>,
    }

    fn start(trip_breaker_on_agent_failure: bool) -> Harness {
        start_with(trip_breaker_on_agent_failure, |links| links)
    }

    /// [`start`], with the stand-in links changed by `wire`.
    fn start_with(
        trip_breaker_on_agent_failure: bool,
        wire: impl FnOnce(MonitorLinks) -> MonitorLinks,
    ) -> Harness {
        let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        let market = SimClock::starting_at(t("2024-01-15T09:30:00Z"));
        let (sink, log) = LogSink::memory();
        let seen = Recorder::new();
        // Stands in for the Signal agent (pause switch) and the Risk agent (trading state).
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
            wire(links(&seen, false)),
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

        async fn command(&self, cmd: Command) -> Result<String, CommandError> {
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
                parse_errors: 0,
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
        h.command(Command::new(
            Action::Pause(CommandTarget::Agent(AgentId::Signal)),
            "ops",
            "news",
        ))
        .await
        .expect("pause");
        h.command(Command::new(
            Action::Resume(CommandTarget::All),
            "ops",
            "calm",
        ))
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
            .command(Command::new(
                Action::Pause(CommandTarget::Agent(AgentId::Data)),
                "ops",
                "test",
            ))
            .await
            .expect_err("data cannot pause")
            .to_string();
        assert!(err.contains("cannot be paused"), "{err}");
        assert!(err.contains("data"), "{err}");
        assert_eq!(h.seen.settled_len().await, 0, "nothing was sent");
        // The refused command is still on record.
        assert_eq!(logged(&h.log, Event::CommandReceived).len(), 1);
    }

    #[actix_rt::test]
    async fn breaker_commands_reach_the_risk_agent() {
        let h = start(true);
        h.command(Command::new(Action::TripBreaker, "ops", "runaway losses"))
            .await
            .expect("trip");
        h.command(Command::new(Action::ResetBreaker, "ops", "reviewed"))
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

    /// A Risk agent that has stopped (its address no longer takes messages).
    struct StoppedRisk;

    impl Actor for StoppedRisk {
        type Context = actix::Context<Self>;

        fn started(&mut self, ctx: &mut Self::Context) {
            ctx.stop();
        }
    }

    impl Handler<SetTradingState> for StoppedRisk {
        type Result = Result<String, CommandError>;

        fn handle(&mut self, _msg: SetTradingState, _ctx: &mut Self::Context) -> Self::Result {
            Err(CommandError::Unavailable("stopped".into()))
        }
    }

    /// The Monitor wired to a Risk agent that has stopped holding `held`.
    async fn with_stopped_risk(held: TradingState) -> Harness {
        let risk = StoppedRisk.start();
        yield_until("the stand-in risk agent stopped", || !risk.connected()).await;
        start_with(true, move |links| {
            links.halt.hold(held);
            MonitorLinks {
                risk: risk.recipient(),
                ..links
            }
        })
    }

    /// A bad-data run: the Risk agent halts in band when the stream ends on the failure and
    /// stops; the fault (or the Critical alert about it) reaches the Monitor after. The halt
    /// it asks for is there already: not a failure, nothing more is paged.
    #[actix_rt::test]
    async fn a_halt_asked_of_a_risk_agent_that_stopped_halted_is_not_a_failure() {
        let h = with_stopped_risk(TradingState::Halted).await;
        h.fault(AgentId::Data, "GOOG.csv:7: bad row", true).await;
        let failed = logged(&h.log, Event::AgentFailed);
        assert_eq!(
            failed.len(),
            1,
            "only the data agent's own failure: {failed:?}"
        );
        assert_eq!(text(&failed[0], "agent"), "data");
    }

    /// A Risk agent that stopped with trading active cannot take the halt any more: a real
    /// failure, still paged (CRITICAL), saying what is left as it was.
    #[actix_rt::test]
    async fn a_halt_a_stopped_risk_agent_cannot_take_is_still_critical() {
        let h = with_stopped_risk(TradingState::Active).await;
        h.fault(AgentId::Execution, "journal: disk full", true)
            .await;
        let failed = logged(&h.log, Event::AgentFailed);
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert_eq!(text(&failed[1], "agent"), "risk");
        assert_eq!(failed[1].level, Level::Critical);
        assert_eq!(
            text(&failed[1], "error"),
            "could not trip the breaker: the risk agent has stopped with trading active: \
             halted is not applied, and the saved state stays active"
        );
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
                parse_errors: 5,
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
                messages_rejected: 5,
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
                parse_errors: 0,
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
