//! Supervision: each agent's state as its heartbeats, faults and final report tell it, and
//! the agents that fell silent.

use std::collections::BTreeMap;

use vigil_core::{AgentId, AgentState, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::Heartbeat;

use crate::SERVICE;

/// What the Monitor knows of one agent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AgentStatus {
    pub(crate) state: AgentState,
    pub(crate) last_heartbeat: Timestamp,
    pub(crate) processed: u64,
    /// Silent past the timeout (reported once, until it is heard again).
    pub(crate) missing: bool,
}

impl AgentStatus {
    /// Stopped or failed: it sends no more heartbeats and answers no ping.
    pub(crate) fn finished(&self) -> bool {
        matches!(self.state, AgentState::Stopped | AgentState::Failed)
    }
}

/// Every agent but the Monitor, by id.
#[derive(Debug)]
pub(crate) struct Roster {
    agents: BTreeMap<AgentId, AgentStatus>,
}

impl Roster {
    /// Every agent starting, as if heard at `now`.
    pub(crate) fn new(now: Timestamp) -> Self {
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
        Self { agents }
    }

    /// Each agent and its status, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&AgentId, &AgentStatus)> {
        self.agents.iter()
    }

    /// Whether `agent` has stopped or failed.
    pub(crate) fn finished(&self, agent: AgentId) -> bool {
        self.agents.get(&agent).is_some_and(AgentStatus::finished)
    }

    /// No agent is missing or failed.
    pub(crate) fn healthy(&self) -> bool {
        !self
            .agents
            .values()
            .any(|s| s.missing || s.state == AgentState::Failed)
    }

    /// The agents silent for longer than `timeout_ms` at `now`, newly: one
    /// `heartbeat_missed` each, stamped `stamp`.
    pub(crate) fn check(
        &mut self,
        now: Timestamp,
        timeout_ms: u64,
        stamp: Timestamp,
    ) -> Vec<LogEvent> {
        let timeout = vigil_core::millis(timeout_ms);
        let mut missed = Vec::new();
        for (agent, status) in &mut self.agents {
            if status.finished() || status.missing {
                continue;
            }
            let silent = now - status.last_heartbeat;
            if silent > timeout {
                status.missing = true;
                missed.push(
                    LogEvent::new(stamp, SERVICE, Event::HeartbeatMissed)
                        .with("agent", agent.as_str())
                        .with("last_heartbeat", status.last_heartbeat)
                        .with("silent_ms", silent.num_milliseconds())
                        .with("timeout_ms", timeout_ms)
                        .with("state", status.state.as_str()),
                );
            }
        }
        missed
    }

    /// Takes a heartbeat in: `heartbeat_recovered`, stamped `stamp`, when the agent was
    /// missing. A stopped or failed agent keeps its state.
    pub(crate) fn heartbeat(&mut self, hb: &Heartbeat, stamp: Timestamp) -> Option<LogEvent> {
        let status = self.agents.get_mut(&hb.agent)?;
        let mut recovered = None;
        if status.missing {
            status.missing = false;
            recovered = Some(
                LogEvent::new(stamp, SERVICE, Event::HeartbeatRecovered)
                    .with("agent", hb.agent.as_str())
                    .with(
                        "silent_ms",
                        (hb.at - status.last_heartbeat).num_milliseconds(),
                    ),
            );
        }
        status.last_heartbeat = hb.at;
        status.processed = hb.processed;
        if !status.finished() {
            status.state = hb.state;
        }
        recovered
    }

    /// The agent sent its final report: stopped, unless it failed.
    pub(crate) fn stopped(&mut self, agent: AgentId) {
        if let Some(status) = self.agents.get_mut(&agent)
            && status.state != AgentState::Failed
        {
            status.state = AgentState::Stopped;
        }
    }

    /// The agent failed (a fatal fault, a crash).
    pub(crate) fn failed(&mut self, agent: AgentId) {
        if let Some(status) = self.agents.get_mut(&agent) {
            status.state = AgentState::Failed;
        }
    }

    /// The supervisor restarted the agent: failed while it was down, its heartbeats say how
    /// it is doing from now.
    pub(crate) fn restarted(&mut self, agent: AgentId) {
        if let Some(status) = self.agents.get_mut(&agent)
            && status.state == AgentState::Failed
        {
            status.state = AgentState::Starting;
        }
    }
}

/// A crash loop (more crashes in the window than the policy allows): the reason the
/// breaker is tripped, and the Critical `restart_intensity_exceeded` line, stamped `stamp`.
pub(crate) fn crash_loop(
    agent: AgentId,
    recent: u32,
    policy: &str,
    panic: String,
    backoff: std::time::Duration,
    stamp: Timestamp,
) -> (String, LogEvent) {
    let reason = format!("{agent} agent crashed {recent} times ({policy}); last panic: {panic}");
    let ev = LogEvent::new(stamp, SERVICE, Event::RestartIntensityExceeded)
        .with("agent", agent.as_str())
        .with("crashes_in_window", u64::from(recent))
        .with("policy", policy.to_string())
        .with("panic", panic)
        .with(
            "action",
            format!(
                "breaker tripped; the agent is restarted every {} s while it keeps crashing",
                backoff.as_secs()
            ),
        );
    (reason, ev)
}

#[cfg(test)]
mod tests {
    use vigil_messages::Figures;
    use vigil_testkit::timestamp as t;

    use super::*;

    fn beat(agent: AgentId, at: &str, state: AgentState) -> Heartbeat {
        Heartbeat {
            agent,
            state,
            at: t(at),
            processed: 7,
            figures: Figures::None,
        }
    }

    #[test]
    fn a_silent_agent_is_missed_once_and_recovers_on_its_next_heartbeat() {
        let start = t("2030-01-01T00:00:00Z");
        let mut r = Roster::new(start);
        assert!(r.check(t("2030-01-01T00:00:05Z"), 5_000, start).is_empty());
        let missed = r.check(t("2030-01-01T00:00:06Z"), 5_000, start);
        assert_eq!(missed.len(), 5, "every agent but the Monitor");
        assert!(missed.iter().all(|e| e.event == Event::HeartbeatMissed));
        assert!(!r.healthy());
        assert!(r.check(t("2030-01-01T00:00:09Z"), 5_000, start).is_empty());

        let back = r
            .heartbeat(
                &beat(AgentId::Data, "2030-01-01T00:00:10Z", AgentState::Running),
                start,
            )
            .expect("recovered");
        assert_eq!(back.event, Event::HeartbeatRecovered);
        assert_eq!(
            back.get("silent_ms").map(ToString::to_string),
            Some("10000".into())
        );
        assert!(
            r.heartbeat(
                &beat(AgentId::Data, "2030-01-01T00:00:11Z", AgentState::Running),
                start
            )
            .is_none()
        );
    }

    #[test]
    fn a_crash_loop_names_the_agent_the_policy_and_the_restart_pace() {
        let (reason, ev) = crash_loop(
            AgentId::Signal,
            3,
            "3 restarts in 60 s",
            "boom".into(),
            std::time::Duration::from_secs(30),
            t("2024-01-16T15:00:00Z"),
        );
        assert_eq!(
            reason,
            "signal agent crashed 3 times (3 restarts in 60 s); last panic: boom"
        );
        assert_eq!(ev.event, Event::RestartIntensityExceeded);
        assert_eq!(
            ev.get("action").map(ToString::to_string).as_deref(),
            Some("breaker tripped; the agent is restarted every 30 s while it keeps crashing")
        );
    }

    #[test]
    fn a_finished_agent_keeps_its_state_and_is_not_missed() {
        let start = t("2030-01-01T00:00:00Z");
        let mut r = Roster::new(start);
        r.stopped(AgentId::Data);
        r.failed(AgentId::Signal);
        r.stopped(AgentId::Signal);
        r.heartbeat(
            &beat(AgentId::Data, "2030-01-01T00:00:01Z", AgentState::Running),
            start,
        );
        assert!(r.finished(AgentId::Data));
        assert!(r.finished(AgentId::Signal));
        let missed = r.check(t("2030-01-01T00:01:00Z"), 5_000, start);
        assert_eq!(missed.len(), 3, "regime, risk and execution");
        r.restarted(AgentId::Signal);
        assert!(!r.finished(AgentId::Signal));
    }
}
