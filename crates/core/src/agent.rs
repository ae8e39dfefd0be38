//! Agent identities, agent states and the trading state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The six agents.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentId {
    /// Market data in, validated, fanned out.
    Data,
    /// Labels the market state.
    Regime,
    /// Turns data and regime into signals.
    Signal,
    /// Turns signals into order intents under the trading state.
    Risk,
    /// Sends intents to the venue and tracks them to their fills.
    Execution,
    /// Supervises the others.
    Monitor,
}

impl AgentId {
    /// Every agent, in pipeline order (the start order is the reverse).
    pub const ALL: [AgentId; 6] = [
        AgentId::Data,
        AgentId::Regime,
        AgentId::Signal,
        AgentId::Risk,
        AgentId::Execution,
        AgentId::Monitor,
    ];

    /// Returns the short name (`data`, `risk` …) used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentId::Data => "data",
            AgentId::Regime => "regime",
            AgentId::Signal => "signal",
            AgentId::Risk => "risk",
            AgentId::Execution => "execution",
            AgentId::Monitor => "monitor",
        }
    }

    /// Returns the `service` name in log lines (`execution_agent`).
    pub fn service(self) -> &'static str {
        match self {
            AgentId::Data => "data_agent",
            AgentId::Regime => "regime_agent",
            AgentId::Signal => "signal_agent",
            AgentId::Risk => "risk_agent",
            AgentId::Execution => "execution_agent",
            AgentId::Monitor => "monitor_agent",
        }
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentId::ALL
            .into_iter()
            .find(|a| a.as_str() == s || a.service() == s)
            .ok_or_else(|| {
                format!("unknown agent {s:?}; expected one of data, regime, signal, risk, execution, monitor")
            })
    }
}

/// An agent's lifecycle state as the Monitor knows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Started, not yet processing.
    Starting,
    /// Processing normally.
    Running,
    /// Paused by a command; alive but not acting.
    Paused,
    /// Finished its input and stopped cleanly.
    Stopped,
    /// Hit an error it cannot continue from.
    Failed,
}

impl AgentState {
    /// Returns the state as text.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Running => "running",
            AgentState::Paused => "paused",
            AgentState::Stopped => "stopped",
            AgentState::Failed => "failed",
        }
    }
}

/// Whether new orders may be sent (held by the Risk agent).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Orders allowed within limits.
    #[default]
    Active,
    /// Only orders that reduce a position.
    ReduceOnly,
    /// Circuit breaker tripped: no new orders, only cancels.
    Halted,
}

impl TradingState {
    /// Returns the state as text.
    pub fn as_str(self) -> &'static str {
        match self {
            TradingState::Active => "active",
            TradingState::ReduceOnly => "reduce_only",
            TradingState::Halted => "halted",
        }
    }
}

impl fmt::Display for TradingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
