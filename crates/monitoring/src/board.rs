//! The health board: what the Monitor knows, published for the control address.

use std::sync::Arc;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::RwLock;
use serde::Serialize;
use vigil_core::Timestamp;

use crate::rules::ActiveBreach;

/// One agent as the Monitor sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgentView {
    /// `data`, `regime` …
    pub agent: String,
    /// `starting`, `running`, `paused`, `stopped`, `failed`.
    pub state: String,
    /// False when its heartbeat is missing or it failed.
    pub healthy: bool,
    /// Supervision time of its last heartbeat.
    pub last_heartbeat: Option<Timestamp>,
    /// Milliseconds since then.
    pub heartbeat_age_ms: i64,
    /// Units of work done (bars, signals, orders …).
    pub processed: u64,
    /// Messages waiting in its mailbox.
    pub backlog: i64,
    /// Last ping round trip through its mailbox, in milliseconds.
    pub response_ms: Option<f64>,
    /// Agent-specific figures (seed table 20.8).
    pub figures: serde_json::Map<String, serde_json::Value>,
}

/// An outside endpoint (data source, venue).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointView {
    /// Its name.
    pub name: String,
    /// Connected (data source) or reachable (venue).
    pub up: bool,
    /// The last round trip, in milliseconds.
    pub latency_ms: Option<f64>,
    /// The last error, if the last probe failed.
    pub error: Option<String>,
}

/// Everything `/status` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    /// Session name.
    pub session: String,
    /// Supervision time the session started.
    pub started_at: Option<Timestamp>,
    /// Supervision time of this snapshot.
    pub updated_at: Option<Timestamp>,
    /// Market time.
    pub market_time: Option<Timestamp>,
    /// `active`, `reduce_only`, `halted`.
    pub trading_state: String,
    /// Inside a trading session (exchange calendar, market time).
    pub market_open: bool,
    /// The data source.
    pub data_source: EndpointView,
    /// The data source delivered its last bar (a finished replay).
    pub data_ended: bool,
    /// The venue.
    pub venue: EndpointView,
    /// The agents.
    pub agents: Vec<AgentView>,
    /// Rules firing now.
    pub breaches: Vec<ActiveBreach>,
    /// Milliseconds since the log last grew.
    pub log_silent_ms: i64,
    /// Key metrics by name (`cpu_usage_ratio` …).
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl Status {
    /// Returns why vigil is not ready to trade, or nothing when it is: data live, venue
    /// reachable, breaker not tripped, every agent healthy.
    pub fn not_ready(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.data_ended {
            why.push(format!("data source {} has ended", self.data_source.name));
        } else if !self.data_source.up {
            why.push(match &self.data_source.error {
                Some(e) => format!("data source {} is down: {e}", self.data_source.name),
                None => format!("data source {} is not connected", self.data_source.name),
            });
        }
        if !self.venue.up {
            why.push(match &self.venue.error {
                Some(e) => format!("venue {} is unreachable: {e}", self.venue.name),
                None => format!("venue {} has not answered yet", self.venue.name),
            });
        }
        if self.trading_state == "halted" {
            why.push("circuit breaker tripped (trading state halted)".into());
        }
        for a in &self.agents {
            if !a.healthy {
                why.push(format!("agent {} is unhealthy ({})", a.agent, a.state));
            }
        }
        why
    }
}

/// The board: the latest [`Status`] and the Prometheus registry, shared by the Monitor
/// (writer) and the control address (readers).
#[derive(Clone)]
pub struct HealthBoard {
    status: Arc<RwLock<Status>>,
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for HealthBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthBoard").finish_non_exhaustive()
    }
}

impl Default for HealthBoard {
    fn default() -> Self {
        Self::new()
    }
}

/// The histogram of decision latencies (a bar's arrival → the venue's answer), seconds.
pub const DECISION_LATENCY: &str = "vigil_decision_latency_seconds";

/// Its buckets, seconds: 10 µs to 10 s.
pub const DECISION_LATENCY_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

impl HealthBoard {
    /// Creates an empty board with its own metrics registry (not the process-global one:
    /// two sessions in one process keep separate figures).
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // Served as a histogram with these buckets (seconds), not as a summary.
        let builder = match builder.set_buckets_for_metric(
            Matcher::Full(DECISION_LATENCY.to_string()),
            &DECISION_LATENCY_BUCKETS,
        ) {
            Ok(b) => b,
            Err(e) => {
                // Only an empty bucket list is refused, and the list is not empty.
                eprintln!("vigil: ERROR {DECISION_LATENCY} buckets refused: {e}");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self {
            status: Arc::new(RwLock::new(Status::default())),
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// Replaces the status.
    pub fn publish(&self, status: Status) {
        *self.status.write() = status;
    }

    /// Returns a copy of the status.
    pub fn status(&self) -> Status {
        self.status.read().clone()
    }

    /// Runs `f` with this board's registry as the `metrics` recorder, so `gauge!`,
    /// `counter!` and `describe_*!` inside it land here.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
