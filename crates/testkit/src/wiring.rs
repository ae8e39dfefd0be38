//! The wiring of a pipeline agent under test.

use std::time::Duration;

use actix::Addr;
use vigil_core::SharedClock;
use vigil_messages::{AgentFault, AgentWiring, Backlogs, Heartbeat, StageReport};

use crate::RecordingActor;

/// Wires an agent under test to `clock` (market) and `wall` (supervision), with a heartbeat
/// every second of wall time; `monitor` stands in for the Monitor (heartbeats, stage
/// reports and faults). The backlogs are the agent's own (no session shares them).
pub fn wiring<T>(
    clock: SharedClock,
    wall: SharedClock,
    monitor: &Addr<RecordingActor<T>>,
) -> AgentWiring
where
    T: From<Heartbeat> + From<StageReport> + From<AgentFault> + 'static,
{
    AgentWiring {
        clock,
        wall,
        heartbeat_interval: Duration::from_secs(1),
        monitor: monitor.clone().recipient(),
        reports: monitor.clone().recipient(),
        faults: monitor.clone().recipient(),
        backlogs: Backlogs::default(),
    }
}
