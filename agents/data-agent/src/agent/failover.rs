//! The Data agent's side of the failover: it connects and pings the source in use, and
//! carries out what [`Failover`](vigil_providers::Failover) decides (logs the switch,
//! trips the breaker at an outage, reconnects after the wait, asks for the books to be
//! verified when good bars come back).

use actix::prelude::*;
use vigil_core::{AgentState, Level, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::{CommandError, DataOutage, SwitchSource, VerifyData};
use vigil_providers::{Failure, ProviderError, Recovered, Switch, SwitchCheck, Switched};

use super::lease::Lease;
use super::{DataAgent, SERVICE};

impl DataAgent {
    /// Connects and subscribes the source in use; reads on once it is connected.
    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(provider) = self.sources.lend() else {
            return;
        };
        let mut lease = Lease::new(provider, &self.home);
        let symbols: Vec<_> = self.symbols.iter().map(|(id, s)| (id, s.clone())).collect();
        self.pulling = true;
        let fut = async move {
            let res = match lease.get().connect().await {
                Ok(()) => lease.get().subscribe(&symbols).await,
                Err(e) => Err(e),
            };
            (lease.give_back(), res)
        };
        ctx.spawn(fut.into_actor(self).map(|(provider, res), act, ctx| {
            act.sources.give_back(provider);
            act.pulling = false;
            match res {
                Ok(()) => {
                    act.core.state = AgentState::Running;
                    act.source.up = true;
                    act.source.calls_ok += 1;
                    let now = act.now();
                    act.core.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                            .with("provider", act.sources.name().to_string())
                            .with("symbols", act.symbols.len()),
                    );
                    act.core.log.flush();
                    act.pull(ctx);
                }
                Err(e) => act.source_failed(e.to_string(), Event::DataSourceFailed, ctx),
            }
        }));
    }

    /// Pings the source now if it is idle, or before the next fetch otherwise.
    /// Probes the primary before the switch back [`Failover::tick`] asked for: connects it
    /// and pings it while the backup goes on. Answered: the switch is made after the read
    /// in flight. Not: the backup stays, and the primary is tried after twice the period.
    pub(super) fn probe_switch_back(&mut self, ctx: &mut Context<Self>) {
        let Some((switch, primary)) = self.sources.take_switch_back_probe() else {
            return;
        };
        let mut lease = Lease::new(primary, &self.probe_home);
        let wall = self.core.wall.clone();
        let fut = async move {
            let t0 = wall.now();
            let res = match lease.get().connect().await {
                Ok(()) => lease.get().ping().await,
                Err(e) => Err(e),
            };
            let took = wall.now() - t0;
            (lease.give_back(), res, took)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(primary, res, took), act, ctx| {
                    let Some(primary) = primary else {
                        return;
                    };
                    let now = act.now();
                    let mut line = LogEvent::new(now, SERVICE, Event::DataSourceProbed)
                        .with("provider", primary.name().to_string())
                        .with("in_use", act.sources.name().to_string())
                        .with("took_ms", took.num_milliseconds());
                    match res {
                        Ok(()) => {
                            act.core.log.emit(line.with("passed", true));
                            act.core.log.flush();
                            act.sources.probe_passed(switch, primary);
                            act.pull(ctx);
                        }
                        Err(e) => {
                            line = line
                        .level(vigil_core::Level::Warn)
                        .with("passed", false)
                        .with("error", e.to_string())
                        .with(
                            "action",
                            "the backup stays in use; the primary is tried again after twice \
                             the period",
                        );
                            act.core.log.emit(line);
                            act.core.log.flush();
                            act.sources.probe_failed(primary, act.core.wall.now());
                        }
                    }
                }),
        );
    }

    pub(super) fn ping_source(&mut self, ctx: &mut Context<Self>) {
        if self.ended || self.core.state == AgentState::Failed {
            return;
        }
        if self.pulling || self.sources.in_hand().is_none() {
            self.ping_due = true;
            return;
        }
        let Some(provider) = self.sources.lend() else {
            return;
        };
        let mut lease = Lease::new(provider, &self.home);
        self.pulling = true;
        let wall = self.core.wall.clone();
        let fut = async move {
            let t0 = wall.now();
            let res = lease.get().ping().await;
            let took = wall.now() - t0;
            (lease.give_back(), res, took)
        };
        ctx.spawn(fut.into_actor(self).map(|(provider, res, took), act, ctx| {
            act.sources.give_back(provider);
            act.pulling = false;
            act.record_ping(res, took);
            if act.core.state == AgentState::Running {
                act.pull(ctx);
            }
        }));
    }

    /// Records a ping of the source: its round trip, or why it failed. Logs the moments
    /// the source goes down and comes back.
    pub(super) fn record_ping(&mut self, res: Result<(), ProviderError>, took: chrono::Duration) {
        let was_up = self.source.up;
        match res {
            Ok(()) => {
                self.source.up = true;
                self.source.calls_ok += 1;
                self.source.error = None;
                self.source.latency_s =
                    Some(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                if !was_up && self.source.calls_failed > 0 {
                    let now = self.now();
                    self.core.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                            .with("provider", self.sources.name().to_string())
                            .with("note", "answering pings again"),
                    );
                }
            }
            Err(e) => {
                self.source.up = false;
                self.source.calls_failed += 1;
                let text = e.to_string();
                if was_up || self.source.error.is_none() {
                    let now = self.now();
                    self.core.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceFailed)
                            .with("provider", self.sources.name().to_string())
                            .with("probe", "ping")
                            .with("error", text.clone()),
                    );
                    self.core.log.flush();
                }
                self.source.error = Some(text);
            }
        }
    }

    /// The source in use failed with `error`: switches to the next backup, begins or goes
    /// on with an outage, or fails the agent (`event`) when there is nothing left to try.
    pub(super) fn source_failed(&mut self, error: String, event: Event, ctx: &mut Context<Self>) {
        match self
            .sources
            .source_failed(error.clone(), self.core.wall.now())
        {
            Failure::Switched(switched) => self.switched(switched, ctx),
            Failure::OutageBegan {
                reason,
                sources,
                wait,
            } => self.begin_outage(reason, sources, wait, error, ctx),
            Failure::Retry {
                failed,
                attempt,
                wait,
                switched,
            } => {
                let now = self.now();
                self.core.log.emit(
                    LogEvent::new(now, SERVICE, Event::DataSourceFailed)
                        .level(Level::Warn)
                        .with("provider", failed)
                        .with("attempt", u64::from(attempt))
                        .with("error", error)
                        .with("retry_in_ms", wait.as_millis() as u64),
                );
                self.core.log.flush();
                if switched {
                    self.installed();
                }
                self.reconnect_after(wait, ctx);
            }
            Failure::Fatal(error) => self.fail(error, event, ctx),
        }
    }

    /// Another source is in use: logs the switch and connects it.
    pub(super) fn switched(&mut self, s: Switched, ctx: &mut Context<Self>) {
        self.installed();
        let now = self.now();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::DataSourceSwitched)
                .with("from", s.from)
                .with("to", s.to)
                .with("actor", s.actor)
                .with("reason", s.reason),
        );
        self.core.log.flush();
        self.connect(ctx);
    }

    /// Another source is in use: what belonged to the previous one starts afresh.
    fn installed(&mut self) {
        if let Some(p) = self.sources.in_hand() {
            self.screening.switched(p.validates_bars());
            self.provider_rejects = p.rejects_messages();
            self.provider_live = p.live();
        }
        self.parse.switched();
        self.source.up = false;
    }

    /// No source is healthy: trips the breaker (through Risk), logs the outage and tries
    /// the sources again after `wait`.
    fn begin_outage(
        &mut self,
        reason: String,
        sources: usize,
        wait: std::time::Duration,
        error: String,
        ctx: &mut Context<Self>,
    ) {
        let Some(links) = &self.outage_links else {
            return;
        };
        links.risk.do_send(DataOutage {
            reason,
            operator_resumes: links.operator_resumes,
        });
        let resume = if links.operator_resumes {
            "operator"
        } else {
            "verify"
        };
        self.missing_at_outage = self.gaps.missing();
        self.source.up = false;
        self.source.error = Some(error.clone());
        let now = self.now();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::DataOutage)
                .with("provider", self.sources.name().to_string())
                .with("sources", sources)
                .with("error", error)
                .with("received_at", self.core.wall.now())
                .with("retry_in_ms", wait.as_millis() as u64)
                .with("resume", resume)
                .with(
                    "action",
                    "trading halted (breaker); the sources are tried again with backoff",
                ),
        );
        self.core.log.flush();
        self.reconnect_after(wait, ctx);
    }

    /// Connects the source in use after `wait`, on the wall clock.
    fn reconnect_after(&mut self, wait: std::time::Duration, ctx: &mut Context<Self>) {
        let deadline = vigil_core::later(self.core.wall.now(), vigil_core::span(wait));
        // The provider stays in hand: a stop meanwhile ends the stream at once.
        self.wait_then(deadline, ctx, |act, ctx| act.connect(ctx));
    }

    /// Good bars again after an outage (`first_bar` the first): logs it and asks the
    /// Execution agent to verify the books before trading resumes (sent before the bars, so
    /// it is under way first).
    pub(super) fn recovered(&mut self, r: Recovered, first_bar: Timestamp) {
        let missing_bars = self.gaps.missing() - self.missing_at_outage;
        let now = self.now();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::DataRecovered)
                .with("provider", self.sources.name().to_string())
                .with("outage_s", r.outage_s)
                .with("attempts", u64::from(r.attempts))
                .with("first_bar", first_bar)
                .with("missing_bars", missing_bars)
                .with(
                    "action",
                    "the books are verified with the venue before trading resumes",
                ),
        );
        self.core.log.flush();
        if let Some(links) = &self.outage_links {
            links.execution.do_send(VerifyData {
                source: self.sources.name().to_string(),
                outage_s: r.outage_s,
                first_bar,
                missing_bars,
            });
        }
    }
}

impl Handler<SwitchSource> for DataAgent {
    type Result = Result<String, CommandError>;

    /// Switches to a configured backup (or back to the primary) by name. The switch
    /// happens once the read in flight returns; an unknown name is refused with the names
    /// that exist.
    fn handle(&mut self, msg: SwitchSource, ctx: &mut Self::Context) -> Self::Result {
        match self.sources.check_switch(&msg.name) {
            SwitchCheck::InUse => {
                return Ok(format!("already reading from {}", self.sources.name()));
            }
            SwitchCheck::Unknown(names) => {
                return Err(CommandError::Invalid(format!(
                    "unknown data source {:?}; configured sources: {}",
                    msg.name,
                    names.join(", ")
                )));
            }
            SwitchCheck::Standby => {}
        }
        if self.ended {
            return Err(CommandError::Conflict(
                "the data agent has stopped reading".into(),
            ));
        }
        let answer = format!(
            "switching from {} to {} (after the read in flight)",
            self.sources.name(),
            msg.name
        );
        self.sources.request_switch(Switch {
            to: msg.name,
            actor: msg.actor,
            reason: msg.reason,
        });
        self.pull(ctx);
        Ok(answer)
    }
}
