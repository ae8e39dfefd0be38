//! The state and wiring every pipeline agent's actor shares, written once: [`AgentCore`]
//! (clocks, log, the Monitor's inputs, the agent's state, the mailbox backlogs, and the
//! start-up, heartbeat, stop and fault steps they serve), built from the [`AgentWiring`]
//! the session gives every agent alike, and [`Downstream`], the next stage of the pipeline
//! with the batch in hand.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use vigil_core::{AgentId, AgentState, SharedClock, Timestamp};
use vigil_log::{Event, LogBuffer, LogEvent};

use crate::{
    AgentFault, Backlogs, Figures, Flow, Heartbeat, PhaseMark, RegimeBatch, SignalBatch,
    StageReport, StopReason, batch_dropped, run_every,
};

/// What the session gives every pipeline agent alike: the clocks, the heartbeat interval,
/// the Monitor's inputs and the session's mailbox backlogs.
#[derive(Clone, Debug)]
pub struct AgentWiring {
    /// The market clock: stamps log lines.
    pub clock: SharedClock,
    /// The wall (supervision) clock: times heartbeats and measures work.
    pub wall: SharedClock,
    /// How often the agent sends a heartbeat, on the wall clock.
    pub heartbeat_interval: Duration,
    /// The Monitor's input for heartbeats.
    pub monitor: Recipient<Heartbeat>,
    /// The Monitor's input for the final figures, when the input ends.
    pub reports: Recipient<StageReport>,
    /// The Monitor's input for faults.
    pub faults: Recipient<AgentFault>,
    /// Messages waiting in each agent's mailbox (an agent counts its own input taken and
    /// its messages to the next agent sent).
    pub backlogs: Backlogs,
}

/// The part of a pipeline agent's actor every agent has: its clocks, its log, its state,
/// the mailbox backlogs and its links to the Monitor, with the steps every agent takes the
/// same way (start-up, heartbeat, stop, fault).
#[derive(Debug)]
pub struct AgentCore {
    /// Which agent.
    pub agent: AgentId,
    /// The market clock: stamps log lines.
    pub clock: SharedClock,
    /// The wall (supervision) clock: times heartbeats and measures work.
    pub wall: SharedClock,
    /// The agent's log outbox.
    pub log: LogBuffer,
    /// The state the heartbeat reports.
    pub state: AgentState,
    /// The session's mailbox backlogs.
    pub backlogs: Backlogs,
    heartbeat_interval: Duration,
    monitor: Recipient<Heartbeat>,
    reports: Recipient<StageReport>,
    faults: Recipient<AgentFault>,
}

impl AgentCore {
    /// The core of `agent`, wired by `wiring`, logging to `log`; it starts in
    /// [`AgentState::Starting`].
    pub fn new(agent: AgentId, wiring: AgentWiring, log: LogBuffer) -> Self {
        let AgentWiring {
            clock,
            wall,
            heartbeat_interval,
            monitor,
            reports,
            faults,
            backlogs,
        } = wiring;
        Self {
            agent,
            clock,
            wall,
            log,
            state: AgentState::Starting,
            backlogs,
            heartbeat_interval,
            monitor,
            reports,
            faults,
        }
    }

    /// The agent's `agent_started` line, now; the agent adds its own fields.
    pub fn start_line(&self) -> LogEvent {
        LogEvent::new(self.clock.now(), self.agent.service(), Event::AgentStarted)
    }

    /// The agent is running: logs `line` (its `agent_started`) and hands it to the writer.
    pub fn started(&mut self, line: LogEvent) {
        self.state = AgentState::Running;
        self.log.emit(line);
        self.log.flush();
    }

    /// Calls `heartbeat` every heartbeat interval of wall time, for as long as the agent
    /// lives.
    pub fn heartbeat_every<A>(&self, ctx: &mut Context<A>, heartbeat: fn(&mut A, &mut Context<A>))
    where
        A: Actor<Context = Context<A>>,
    {
        run_every(ctx, self.wall.clone(), self.heartbeat_interval, heartbeat);
    }

    /// Sends the Monitor a heartbeat: the agent's state, `processed` units of work and its
    /// `figures`, stamped on the wall clock.
    pub fn heartbeat(&self, processed: u64, figures: Figures) {
        self.monitor.do_send(Heartbeat {
            agent: self.agent,
            state: self.state,
            at: self.wall.now(),
            processed,
            figures,
        });
    }

    /// The agent took one message from its mailbox.
    pub fn taken(&self) {
        self.backlogs.taken(self.agent);
    }

    /// The stamp of `last` (the market time of the last bar handled), or the clock's now
    /// when there is none yet.
    pub fn last_or_now(&self, last: Option<Timestamp>) -> Timestamp {
        last.map_or_else(|| self.clock.now(), |t| self.clock.stamp(t))
    }

    /// The agent's `agent_stopped` line for `reason`, stamped with the last bar handled
    /// (`last`) or now; the agent adds its own figures.
    pub fn stop_line(&self, last: Option<Timestamp>, reason: &StopReason) -> LogEvent {
        LogEvent::new(
            self.last_or_now(last),
            self.agent.service(),
            Event::AgentStopped,
        )
        .with("reason", reason.as_str().to_string())
    }

    /// The agent has stopped: logs `line` (its `agent_stopped`) and hands it to the writer.
    pub fn stopped(&mut self, line: LogEvent) {
        self.state = AgentState::Stopped;
        self.log.emit(line);
        self.log.flush();
    }

    /// Sends the Monitor the agent's final figures.
    pub fn report(&self, report: StageReport) {
        self.reports.do_send(report);
    }

    /// Reports a fault to the Monitor (counted, alerted; a `fatal` one halts trading).
    /// Logging it is the caller's.
    pub fn fault(&self, error: String, fatal: bool) {
        self.faults.do_send(AgentFault {
            agent: self.agent,
            error,
            fatal,
        });
    }

    /// The next stage of the pipeline, `next`, reached through `to`.
    pub fn downstream<B>(&self, to: Recipient<Flow<B>>, next: AgentId) -> Downstream<B>
    where
        B: Send + 'static,
    {
        Downstream {
            to,
            next,
            backlogs: self.backlogs.clone(),
            in_hand: None,
        }
    }
}

/// A batch that can be passed on empty: what a crash left of it, so that flow control
/// continues.
pub trait EmptyBatch {
    /// Batch `id` with no bars, carrying `phases` (all at its start).
    fn empty(id: u64, phases: Arc<[PhaseMark]>) -> Self;
}

impl EmptyBatch for RegimeBatch {
    fn empty(id: u64, phases: Arc<[PhaseMark]>) -> Self {
        RegimeBatch {
            id,
            bars: Arc::new(Vec::new()),
            regimes: Arc::from([]),
            phases,
            arrived_at: None,
        }
    }
}

impl EmptyBatch for SignalBatch {
    fn empty(id: u64, phases: Arc<[PhaseMark]>) -> Self {
        SignalBatch {
            id,
            bars: Arc::new(Vec::new()),
            regimes: Arc::from([]),
            signals: Vec::new(),
            phases,
            arrived_at: None,
        }
    }
}

/// The next stage of the pipeline as an agent sees it: where its batches and the end of
/// the stream go (each message counted in the next agent's backlog), and the batch in
/// hand, which a crash must not swallow.
#[derive(Debug)]
pub struct Downstream<B: Send + 'static> {
    to: Recipient<Flow<B>>,
    next: AgentId,
    backlogs: Backlogs,
    /// The batch being handled (its id and phases), for a restart after a crash.
    in_hand: Option<(u64, Arc<[PhaseMark]>)>,
}

impl<B: Send + 'static> Downstream<B> {
    /// Batch `id` (with its `phases`) is being handled: until it is sent on, a crash
    /// passes it on empty ([`Self::restarting`]).
    pub fn hold(&mut self, id: u64, phases: &Arc<[PhaseMark]>) {
        self.in_hand = Some((id, phases.clone()));
    }

    /// Passes `batch` on; the batch in hand is done.
    pub fn send(&mut self, batch: B) {
        self.in_hand = None;
        self.backlogs.sent(self.next);
        self.to.do_send(Flow::Data(batch));
    }

    /// Passes the end of the stream on.
    pub fn end(&self, reason: StopReason) {
        self.backlogs.sent(self.next);
        self.to.do_send(Flow::End(reason));
    }

    /// After a crash: the batch in hand, if any, is logged as dropped (in `core`'s log, at
    /// its clock's now) and goes on empty, its phases at its start, so that flow control
    /// continues.
    pub fn restarting(&mut self, core: &mut AgentCore)
    where
        B: EmptyBatch,
    {
        if let Some((batch, phases)) = self.in_hand.take() {
            core.log
                .emit(batch_dropped(core.clock.now(), core.agent, batch));
            self.send(B::empty(batch, PhaseMark::all_at_start(&phases)));
        }
    }
}
