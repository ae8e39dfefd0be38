//! The messages vigil's agents exchange, and the small actor helpers they share.
//!
//! Market data moves in batches (a [`Flow`] of [`BarBatch`] → [`RegimeBatch`] →
//! [`SignalBatch`] → [`Segment`]) so that a million bars cost a thousand messages, not six
//! million; every message that belongs to a decision chain carries its trace id. The
//! Data agent keeps at most `max_in_flight_batches` unacknowledged ([`BatchDone`]), which
//! bounds every mailbox on the path.
//!
//! Agents never name each other's types: they hold `Recipient`s of these messages, wired by
//! the system builder. What every pipeline agent's actor has alike (clocks, log, state,
//! backlogs, its links to the Monitor, the next stage) is an [`AgentCore`] and a
//! [`Downstream`], built from the session's [`AgentWiring`].

mod agent_core;
mod health;
mod messages;
mod skeleton;
mod timer;

pub use agent_core::{AgentCore, AgentWiring, Downstream, EmptyBatch};
pub use health::{
    Backlogs, BusinessFigures, Figures, LATENCY_SAMPLES_PER_HEARTBEAT, Ping, Reachability,
};
pub use messages::{
    Action, AgentFault, BarBatch, BatchDone, BookQuery, BookSnapshot, CancelAll, Command,
    CommandError, CommandTarget, DataOutage, DataVerified, DefaultRegime, DrawdownAnswer,
    DrawdownReport, Flatten, Flow, HaltLatch, Heartbeat, InjectPanic, LatencySummary, LedgerCross,
    NextReport, OpenOrderView, OrderIntent, PhaseMark, PositionView, QuarantineChanged,
    RearmDrawdown, RegimeBatch, ReleaseStep, ReloadCalendar, RestrictTrading, Segment,
    SessionSummary, SetPaused, SetQuarantine, SetTradingState, Shutdown, SignalBatch, StageReport,
    StopReason, Supervision, SwitchModel, SwitchSource, TradingStateRecord, VerifyData,
};
pub use skeleton::{batch_dropped, rebuilt};
pub use timer::run_every;
