//! Stand-ins for the agents the Monitor commands, shared by the Monitor's tests.

use actix::Actor;
use vigil_core::AgentId;
use vigil_messages::{
    CancelAll, DefaultRegime, Flatten, InjectPanic, ReleaseStep, SetPaused, SetQuarantine,
    SetTradingState, Shutdown, SwitchModel, SwitchSource,
};
use vigil_testkit::{AnsweringActor, Recorder};

use crate::MonitorLinks;

vigil_testkit::record_enum! {
    /// What the Monitor sent to the agents it commands, in arrival order.
    #[derive(Debug)]
    pub(crate) enum Sent {
        Paused(SetPaused),
        Trading(SetTradingState),
        Flatten(Flatten),
        CancelAll(CancelAll),
        Switch(SwitchSource),
        Model(SwitchModel),
        Step(ReleaseStep),
        Quarantine(SetQuarantine),
        Regime(DefaultRegime),
        Shutdown(Shutdown),
        Panic(InjectPanic),
    }
}

/// Links whose every agent is a stand-in recording into `seen` (and answering `Ok`).
pub(crate) fn links(seen: &Recorder<Sent>, fault_injection: bool) -> MonitorLinks {
    let answers = AnsweringActor::new(seen.clone()).start();
    let records = seen.start_actor();
    MonitorLinks {
        signal: answers.clone().recipient(),
        switch_model: answers.clone().recipient(),
        release_step: answers.clone().recipient(),
        risk: answers.clone().recipient(),
        flatten: answers.clone().recipient(),
        cancel_all: answers.clone().recipient(),
        switch_source: answers.clone().recipient(),
        quarantine: answers.clone().recipient(),
        default_regime: answers.recipient(),
        shutdown: records.clone().recipient(),
        panics: vec![(AgentId::Signal, records.recipient())],
        fault_injection,
        halt: vigil_messages::HaltLatch::default(),
    }
}
