use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_bus::{
    AgentFault, Command, CommandTarget, Heartbeat, SessionSummary, SetPaused, SetTradingState,
    StageReport, StopReason, run_every,
};
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
        }
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
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.log.flush();
    }
}

impl Handler<Heartbeat> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, hb: Heartbeat, _ctx: &mut Self::Context) {
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
