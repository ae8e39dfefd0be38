//! The Monitor's watch over the system: one round of measurement (system, mailboxes, the
//! dead-man's switch on the log folder, the threshold rules), the status it publishes on the
//! health board, the log's pulse line, and the outside heartbeat. Each returns what the
//! actor must log, print or send.

use std::time::Duration;

use actix::Recipient;
use vigil_config::MonitorConfig;
use vigil_core::{AgentId, AgentState, Level, Timestamp, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::{Figures, Ping};
use vigil_monitoring::{Status, SystemSampler};

use crate::SERVICE;
use crate::health::{Health, agent_view, endpoint, figures_json};
use crate::roster::Roster;

/// What one round of measurement found.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// For standard error first: the log folder has gone silent.
    pub(crate) stderr: Option<String>,
    /// The findings to log, in order: the dead-man's switch, probes that failed, rules that
    /// changed.
    pub(crate) events: Vec<LogEvent>,
    /// The agents to ping now (their answer times their mailboxes).
    pub(crate) to_ping: Vec<(AgentId, Recipient<Ping>)>,
}

/// Who the session is, for its status.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Session<'a> {
    /// Its name.
    pub(crate) name: &'a str,
    /// When the Monitor started.
    pub(crate) started_at: Timestamp,
    /// Trading state before the Risk agent's first heartbeat (the summary's).
    pub(crate) trading_state: TradingState,
}

impl Health {
    /// One round: system, mailboxes, log growth, rules. `now` is supervision time,
    /// `market_now` market time.
    pub(crate) fn round(
        &mut self,
        cfg: &MonitorConfig,
        roster: &Roster,
        now: Timestamp,
        market_now: Timestamp,
    ) -> Round {
        let mut round = Round::default();
        let mut failures: Vec<(&'static str, String)> = Vec::new();
        let mut oks: Vec<&'static str> = Vec::new();
        if cfg.enabled {
            if self.sampler.is_none() {
                match SystemSampler::new(self.links.disk_path.clone()) {
                    Ok(s) => self.sampler = Some(s),
                    Err(e) => failures.push(("system", e.to_string())),
                }
            }
            if let Some(sampler) = self.sampler.as_mut() {
                let sample = sampler.sample();
                match &sample.disk_free_bytes {
                    Ok(_) => oks.push("disk"),
                    Err(e) => failures.push(("disk", e.to_string())),
                }
                self.last_sample = Some(sample);
            }
            for (agent, rcp) in self.links.pings.clone() {
                let ah = self.agents.entry(agent).or_default();
                if roster.finished(agent) || ah.ping_sent.is_some() {
                    continue;
                }
                ah.ping_sent = Some(now);
                round.to_ping.push((agent, rcp));
            }
        }
        // The dead-man's switch: the log folder must grow.
        let open = self.hours_open(market_now, now);
        let window_s = if open {
            cfg.dead_man.silence_trading_s
        } else {
            cfg.dead_man.silence_closed_s
        };
        match self.log.look(now) {
            Ok(grew) => {
                oks.push("log_folder");
                let silent_s = (now - self.log.last_growth).num_seconds();
                if grew && self.log.silent {
                    self.log.silent = false;
                    round.events.push(
                        LogEvent::new(market_now, SERVICE, Event::LogResumed)
                            .with("silent_s", silent_s),
                    );
                } else if !grew && !self.log.silent && silent_s > window_s as i64 {
                    self.log.silent = true;
                    round.stderr = Some(format!(
                        "vigil: CRITICAL log_silent: no log line reached {} for {silent_s} s (window {window_s} s, market {})",
                        self.links.log_dir.display(),
                        if open { "open" } else { "closed" }
                    ));
                    round.events.push(
                        LogEvent::new(market_now, SERVICE, Event::LogSilent)
                            .with("silent_s", silent_s)
                            .with("window_s", window_s)
                            .with("market_open", open)
                            .with("log_dir", self.links.log_dir.display().to_string()),
                    );
                }
            }
            Err(e) => failures.push(("log_folder", e)),
        }
        let mut transitions = Vec::new();
        if cfg.enabled {
            self.measure(now, &mut transitions);
        }
        for (probe, error) in failures {
            // Reported once, until the probe works again.
            if !self.probe_failing.contains(&probe) {
                self.probe_failing.push(probe);
                round.events.push(
                    LogEvent::new(market_now, SERVICE, Event::MonitorProbeFailed)
                        .with("probe", probe)
                        .with("error", error),
                );
            }
        }
        self.probe_failing.retain(|p| !oks.contains(p));
        round
            .events
            .extend(transitions.iter().map(|t| t.event(market_now, SERVICE)));
        round
    }

    /// A ping's answer (`Ok`) or its loss: the agent's response time.
    pub(crate) fn pinged<E>(&mut self, agent: AgentId, res: &Result<(), E>, now: Timestamp) {
        let ah = self.agents.entry(agent).or_default();
        if let (Ok(()), Some(sent)) = (res, ah.ping_sent) {
            let took = now - sent;
            ah.response_s = Some(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
        }
        // An agent that stopped cannot answer; it is not slow.
        ah.ping_sent = None;
    }

    /// Trading state as the Risk agent's heartbeat tells it, else `fallback`.
    pub(crate) fn trading_state(&self, fallback: TradingState) -> TradingState {
        self.agents
            .get(&AgentId::Risk)
            .and_then(|a| match &a.figures {
                Figures::Risk { state, .. } => Some(*state),
                _ => None,
            })
            .unwrap_or(fallback)
    }

    /// The status from what the Monitor knows.
    pub(crate) fn status(
        &self,
        roster: &Roster,
        session: Session<'_>,
        now: Timestamp,
        market_now: Timestamp,
    ) -> Status {
        let mut st = Status {
            session: session.name.to_string(),
            started_at: Some(session.started_at),
            updated_at: Some(now),
            market_time: Some(market_now),
            trading_state: self
                .trading_state(session.trading_state)
                .as_str()
                .to_string(),
            market_open: self.hours_open(market_now, now),
            log_silent_ms: (now - self.log.last_growth).num_milliseconds(),
            metrics: self.metrics.clone(),
            breaches: self.engine.active(),
            ..Status::default()
        };
        let mut source = None;
        let mut venue = None;
        for (agent, s) in roster.iter() {
            let ah = self.agents.get(agent);
            let mut v = agent_view(*agent);
            v.state = s.state.as_str().to_string();
            v.healthy = !s.missing && s.state != AgentState::Failed;
            v.last_heartbeat = Some(s.last_heartbeat);
            v.heartbeat_age_ms = (now - s.last_heartbeat).num_milliseconds();
            v.processed = s.processed;
            v.backlog = self.links.backlogs.waiting(*agent);
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
        st.data_source = endpoint(&self.links.source_name, source.as_ref());
        st.venue = endpoint(&self.links.venue_name, venue.as_ref());
        st
    }

    /// Records readiness to trade; the line for standard error when it changed.
    pub(crate) fn readiness(&mut self, st: &Status) -> Option<String> {
        let reasons = st.not_ready();
        if reasons.is_empty() == self.was_ready {
            return None;
        }
        self.was_ready = reasons.is_empty();
        Some(if self.was_ready {
            "vigil: ready to trade".to_string()
        } else {
            format!("vigil: not ready to trade: {}", reasons.join("; "))
        })
    }

    /// Whether to ping the outside heartbeat URL now: only while vigil is healthy, one ping
    /// at a time. Marks the ping under way.
    pub(crate) fn ping_due(&mut self, roster: &Roster) -> bool {
        let healthy = roster.healthy() && !self.log.silent;
        if !healthy || self.ext_pinging {
            return false;
        }
        self.ext_pinging = true;
        true
    }

    /// The outside ping's result: the failure, or the recovery after one, to log.
    pub(crate) fn external_pinged(
        &mut self,
        res: Result<(), String>,
        stamp: Timestamp,
    ) -> Option<LogEvent> {
        self.ext_pinging = false;
        match res {
            Ok(()) if self.ext_failing => {
                self.ext_failing = false;
                Some(
                    LogEvent::new(stamp, SERVICE, Event::ExternalHeartbeatFailed)
                        .level(Level::Info)
                        .with("recovered", true),
                )
            }
            Ok(()) => None,
            Err(e) => {
                self.ext_failing = true;
                Some(LogEvent::new(stamp, SERVICE, Event::ExternalHeartbeatFailed).with("error", e))
            }
        }
    }
}

/// The log's pulse: a line with the key figures, whether or not anything else happens.
/// `equity` is the Execution agent's latest, when it has reported one.
pub(crate) fn snapshot(
    st: &Status,
    equity: Option<rust_decimal::Decimal>,
    stamp: Timestamp,
) -> LogEvent {
    let reasons = st.not_ready();
    let mut ev = LogEvent::new(stamp, SERVICE, Event::HealthSnapshot)
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
    if let Some(equity) = equity {
        ev = ev.with("equity", equity);
    }
    for key in ["cpu_usage_ratio", "memory_usage_ratio", "disk_free_bytes"] {
        if let Some(v) = st.metrics.get(key) {
            ev = ev.with(key, *v);
        }
    }
    ev
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
mod tests;
