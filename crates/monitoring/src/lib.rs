//! Monitoring: threshold rules evaluated on a clock, the system sampler, and the health
//! board that the control address serves (`/healthz`, `/readyz`, `/status`, `/metrics`).

mod board;
mod rules;
mod system;

pub use board::{
    AgentView, DECISION_LATENCY, DECISION_LATENCY_BUCKETS, EndpointView, HealthBoard, Status,
};
pub use rules::{ActiveBreach, MetricId, RuleEngine, Transition};
pub use system::{SampleError, SystemSample, SystemSampler, free_space};
