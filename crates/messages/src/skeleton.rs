//! The skeleton every pipeline agent shares, written once: the `Ping` and `InjectPanic`
//! handlers ([`agent_skeleton!`]) and the lines an agent logs when its supervisor rebuilds
//! it after a crash ([`batch_dropped`], [`rebuilt`]).

use vigil_core::{AgentId, Timestamp};
use vigil_log::{Event, LogEvent};

/// Implements the handlers every pipeline agent answers the same way:
///
/// - `Ping`: answered by the mailbox turn itself, so a reply proves the agent is not stuck
///   (the Monitor's link-health probe);
/// - `InjectPanic`: panics on purpose, for the supervision drill (`vigil ctl inject-panic`,
///   only with `control.fault_injection`).
///
/// `$name` is the agent's name in the panic text ("injected panic in the `$name` agent").
#[macro_export]
macro_rules! agent_skeleton {
    ($agent:ty, $name:literal) => {
        impl ::actix::Handler<$crate::Ping> for $agent {
            type Result = ();

            fn handle(&mut self, _msg: $crate::Ping, _ctx: &mut Self::Context) {}
        }

        impl ::actix::Handler<$crate::InjectPanic> for $agent {
            type Result = ();

            fn handle(&mut self, msg: $crate::InjectPanic, _ctx: &mut Self::Context) {
                panic!(
                    concat!("injected panic in the ", $name, " agent (asked by {})"),
                    msg.actor
                );
            }
        }
    };
}

/// The line of a batch a crash interrupted: it goes on empty, so that flow control
/// continues.
pub fn batch_dropped(at: Timestamp, agent: AgentId, batch: u64) -> LogEvent {
    LogEvent::new(at, agent.service(), Event::BatchDropped)
        .with("agent", agent.as_str())
        .with("batch", batch)
}

/// The line of an agent rebuilt by its supervisor after a crash, saying what it rebuilt
/// its state from.
pub fn rebuilt(at: Timestamp, agent: AgentId, what: &str) -> LogEvent {
    LogEvent::new(at, agent.service(), Event::AgentRebuilt)
        .with("agent", agent.as_str())
        .with("rebuilt", what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rebuild_lines_name_the_agent_and_what_it_rebuilt() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
        let d = batch_dropped(at, AgentId::Regime, 7);
        assert_eq!(d.event, Event::BatchDropped);
        assert_eq!(d.service, "regime_agent");
        let r = rebuilt(at, AgentId::Regime, "classifiers reset");
        assert_eq!(r.event, Event::AgentRebuilt);
        let fields = format!("{:?}", r.data);
        assert!(
            fields.contains("classifiers reset") && fields.contains("regime"),
            "{fields}"
        );
    }
}
