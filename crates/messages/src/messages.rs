//! Every message between agents.

use std::ops::Range;
use std::sync::Arc;

use actix::Message;
use rust_decimal::Decimal;
use vigil_calendar::Phase;
use vigil_core::{
    AgentId, AgentState, Bar, ClientOrderId, OrderRequest, Regime, Side, Signal, SymbolId,
    Timestamp, TraceId, TradingState,
};
use vigil_log::LogContext;

/// Why a stream of market data ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The source delivered everything it had.
    EndOfData,
    /// An operator asked vigil to stop (Ctrl-C, `vigil ctl shutdown`).
    Interrupted,
    /// An error stopped the session; the text says what and where.
    Failed(String),
}

impl StopReason {
    /// Returns a short label for logs.
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndOfData => "end_of_data",
            StopReason::Interrupted => "interrupted",
            StopReason::Failed(_) => "failed",
        }
    }
}

/// One hop of the pipeline: data, then exactly one end marker that travels behind it, so
/// each agent stops only after everything before it was handled (the stop order is the
/// pipeline order: Data, Regime, Signal, Risk, Execution).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum Flow<T> {
    /// A unit of work.
    Data(T),
    /// No more data will come.
    End(StopReason),
}

/// A phase of the automated trading day that begins before a bar of the batch, carried in
/// band so that every agent applies it at exactly that point of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseMark {
    /// The phase starts before `bars[before]`.
    pub before: usize,
    /// Which phase.
    pub phase: Phase,
    /// When it started (market time).
    pub at: Timestamp,
    /// For the pre-market phase: a check failed, so this session must not open.
    pub blocked: bool,
}

impl PhaseMark {
    /// The phases of a batch whose bars were lost in a crash, all moved to its (now empty)
    /// start, so that every agent downstream still applies them.
    pub fn all_at_start(phases: &[PhaseMark]) -> Arc<[PhaseMark]> {
        phases
            .iter()
            .map(|m| PhaseMark { before: 0, ..*m })
            .collect()
    }
}

/// Validated bars, Data → Regime.
#[derive(Clone, Debug)]
pub struct BarBatch {
    /// Sequence number of the batch (for flow control).
    pub id: u64,
    /// The bars, in time order.
    pub bars: Arc<Vec<Bar>>,
    /// Schedule phases that begin within the batch (usually none).
    pub phases: Arc<[PhaseMark]>,
    /// Wall time the bars arrived (the source's read came back, or a paced replay let
    /// them go): where the decision latency is measured from. `None` for a batch of
    /// clock marks with no bar.
    pub arrived_at: Option<Timestamp>,
}

/// Bars with the regime of each, Regime → Signal.
#[derive(Clone, Debug)]
pub struct RegimeBatch {
    /// Sequence number of the batch.
    pub id: u64,
    /// The bars.
    pub bars: Arc<Vec<Bar>>,
    /// The regime of each bar's symbol after that bar.
    pub regimes: Arc<[Regime]>,
    /// Schedule phases that begin within the batch.
    pub phases: Arc<[PhaseMark]>,
    /// Wall time the bars arrived at the Data agent.
    pub arrived_at: Option<Timestamp>,
}

/// Bars, regimes and the signals they produced, Signal → Risk.
#[derive(Clone, Debug)]
pub struct SignalBatch {
    /// Sequence number of the batch.
    pub id: u64,
    /// The bars.
    pub bars: Arc<Vec<Bar>>,
    /// The regime of each bar.
    pub regimes: Arc<[Regime]>,
    /// Signals, each with the index of the bar that produced it, in bar order.
    pub signals: Vec<(usize, Signal)>,
    /// Schedule phases that begin within the batch.
    pub phases: Arc<[PhaseMark]>,
    /// Wall time the bars arrived at the Data agent.
    pub arrived_at: Option<Timestamp>,
}

/// A run of bars for the Execution agent (and the venue), Risk → Execution. Risk cuts a
/// batch at every signal so that the Execution agent has seen exactly the bars up to the
/// signal when it answers the book query and receives the intent.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The batch the bars belong to.
    pub batch_id: u64,
    /// The batch's bars.
    pub bars: Arc<Vec<Bar>>,
    /// The part of `bars` in this segment.
    pub range: Range<usize>,
    /// This is the batch's last segment: acknowledge the batch after it.
    pub last: bool,
    /// The batch's schedule phases (the Execution agent applies those in `range`).
    pub phases: Arc<[PhaseMark]>,
}

/// Asks the Data agent to stop reading; the end marker then drains the pipeline.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// Why.
    pub reason: StopReason,
}

/// The Execution agent acknowledges a whole batch to the Data agent (flow control), and
/// hands the bar buffer back: by then every agent has dropped its reference, so the Data
/// agent reuses the allocation instead of faulting in fresh pages for every batch.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct BatchDone {
    /// The batch.
    pub id: u64,
    /// The batch's bars, for reuse.
    pub bars: Arc<Vec<Bar>>,
}

/// An open order as the Execution agent tracks it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenOrderView {
    /// The order.
    pub client_order_id: ClientOrderId,
    /// Instrument.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// Quantity not yet filled.
    pub leaves_quantity: Decimal,
}

/// The book as the Execution agent holds it, answered to the Risk agent.
#[derive(Clone, Debug, PartialEq)]
pub struct BookSnapshot {
    /// Cash.
    pub cash: Decimal,
    /// Equity at the latest marks.
    pub equity: Decimal,
    /// Σ |position value|.
    pub gross_exposure: Decimal,
    /// Signed quantity of the queried symbol.
    pub position: Decimal,
    /// Latest mark of the queried symbol.
    pub mark: Decimal,
    /// Open orders of the queried symbol.
    pub open_orders: Vec<OpenOrderView>,
    /// The queried symbol's position per model version, when more than one holds a
    /// sub-ledger (a canary); empty otherwise (the position is the one version's).
    pub ledgers: Vec<(&'static str, Decimal)>,
}

/// Risk asks Execution for the book, in stream order.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "BookSnapshot")]
pub struct BookQuery {
    /// The symbol whose position and open orders are wanted.
    pub symbol: SymbolId,
}

/// An approved order, Risk → Execution.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct OrderIntent {
    /// The decision chain.
    pub trace_id: TraceId,
    /// The order as the venue will get it; its `submitted_at` is the market time of the
    /// decision.
    pub order: OrderRequest,
    /// The price risk checks used (arrival price for execution quality).
    pub reference_price: Decimal,
    /// Cancel the symbol's open orders before sending this one (the intent replaces them).
    pub cancel_open: bool,
    /// The decision's basis, for the log lines of the rest of the chain.
    pub context: LogContext,
    /// During a canary: each version's signed share of the order (adds up to it); its
    /// fills are split so. Empty: the order's fills go by the sub-ledgers' default rule.
    pub allocation: Vec<(&'static str, Decimal)>,
    /// Wall time the bar that decided it arrived at the Data agent; `None` for an order
    /// no bar decided (a flatten, a drawdown step). The decision latency runs from here
    /// to the venue's answer.
    pub arrived_at: Option<Timestamp>,
}

/// Risk → Execution, in stream order before the bar's intent: versions' opposite wants in
/// one symbol, crossed inside the account at the reference price with no order (a canary's
/// sub-ledgers; see [`vigil_core::SubLedgers::cross`]).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct LedgerCross {
    /// The decision chain.
    pub trace_id: TraceId,
    /// Instrument.
    pub symbol: SymbolId,
    /// The price it crosses at.
    pub price: Decimal,
    /// (version, signed quantity), adding up to zero.
    pub moves: Vec<(&'static str, Decimal)>,
}

/// A position as the Execution agent holds it, in a [`DrawdownReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct PositionView {
    /// Instrument.
    pub symbol: SymbolId,
    /// Signed quantity (never zero in a report).
    pub quantity: Decimal,
    /// Latest mark.
    pub mark: Decimal,
}

/// Execution → Risk, in band: after the bar at `at`, equity is beyond the drawdown control
/// line. The Execution agent holds the rest of its stream until the answer, so that the
/// answer's orders reach the venue before the next bar, as a signal's would.
#[derive(Message, Clone, Debug)]
#[rtype(result = "DrawdownAnswer")]
pub struct DrawdownReport {
    /// Which arming of the line this was measured against (see [`RearmDrawdown`]).
    pub arming: u64,
    /// Market time of the bar.
    pub at: Timestamp,
    /// Equity after the bar.
    pub equity: Decimal,
    /// The equity peak the drawdown is measured from.
    pub peak: Decimal,
    /// (peak − equity) / peak.
    pub drawdown: Decimal,
    /// Equity now minus equity after the exchange day's first bar.
    pub day_pnl: Decimal,
    /// Σ |position value|.
    pub gross_exposure: Decimal,
    /// The open positions.
    pub positions: Vec<PositionView>,
}

/// When the Execution agent reports the drawdown again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextReport {
    /// At the first bar at or after this market time that is still beyond the line.
    NotBefore(Timestamp),
    /// Not until the line is re-armed.
    AfterRearm,
}

/// The Risk agent's answer to a [`DrawdownReport`]: the orders to send now (each an
/// [`OrderIntent`] of its own trace) and when to report again.
#[derive(Debug, actix::MessageResponse)]
pub struct DrawdownAnswer {
    /// Position-reducing orders, sent in this order.
    pub orders: Vec<OrderIntent>,
    /// When to report again.
    pub next: NextReport,
}

/// Risk → Execution: measure the drawdown afresh, from the equity at hand, under arming
/// `arming` (an operator set trading active again).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct RearmDrawdown {
    /// The new arming; reports of older ones are answered with nothing.
    pub arming: u64,
}

/// An agent's periodic "I am alive", to the Monitor.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Heartbeat {
    /// Who.
    pub agent: AgentId,
    /// Its state.
    pub state: AgentState,
    /// Supervision-clock time it was sent.
    pub at: Timestamp,
    /// Units of work done so far (bars, signals, orders …).
    pub processed: u64,
    /// The agent's own figures.
    pub figures: crate::Figures,
}

/// An agent's final figures, to the Monitor, when its input ends.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum StageReport {
    /// Data agent.
    Data {
        /// Bars forwarded.
        bars: u64,
        /// Bars rejected by validation.
        rejected: u64,
        /// Messages the source's parser rejected (a feed's bad messages, bars that go back
        /// in time among them; each an ERROR `data_parse_failed` line).
        parse_errors: u64,
        /// First bar's time.
        first: Option<Timestamp>,
        /// Last bar's time.
        last: Option<Timestamp>,
        /// The source.
        source: String,
    },
    /// Regime agent.
    Regime {
        /// Label changes.
        changes: u64,
    },
    /// Signal agent.
    Signal {
        /// Signals emitted.
        signals: u64,
        /// Signals held back while paused.
        suppressed: u64,
    },
    /// Risk agent.
    Risk {
        /// Intents approved.
        approved: u64,
        /// Signals rejected.
        rejected: u64,
        /// Trading state at the end.
        state: TradingState,
    },
    /// Execution agent; closes the session.
    Execution {
        /// Why the stream ended.
        reason: StopReason,
        /// Orders sent.
        orders: u64,
        /// Orders completely filled.
        filled: u64,
        /// Orders the venue refused.
        venue_rejects: u64,
        /// Orders cancelled.
        cancelled: u64,
        /// Executions.
        fills: u64,
        /// Starting cash.
        initial_cash: Decimal,
        /// Final equity.
        equity: Decimal,
        /// Final cash.
        cash: Decimal,
        /// Commission paid.
        commissions: Decimal,
        /// Largest drawdown, fraction of peak.
        max_drawdown: Decimal,
        /// Non-flat positions at the end: (symbol, quantity).
        positions: Vec<(String, Decimal)>,
        /// The decision latencies of the session (bar arrival → the venue's answer).
        decision_latency: Option<LatencySummary>,
    },
}

/// Quantiles of a session's decision latencies (from a bar's arrival at the Data agent to
/// the venue's answer to the order it decided), in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Orders measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The longest.
    pub max: f64,
}

/// An agent reports an error to the Monitor.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct AgentFault {
    /// Who.
    pub agent: AgentId,
    /// What went wrong, with context.
    pub error: String,
    /// The agent cannot continue.
    pub fatal: bool,
}

/// Which agent(s) a pause or resume is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandTarget {
    /// One agent.
    Agent(AgentId),
    /// Every agent that can pause.
    All,
}

/// What a command asks for. Each row of the collaboration table: the Monitor forwards it to
/// the agent that owns the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pause agent(s): the Signal agent stops emitting signals.
    Pause(CommandTarget),
    /// Resume agent(s).
    Resume(CommandTarget),
    /// Trip the circuit breaker: Risk goes Halted (no new order except cancels).
    TripBreaker,
    /// Reset the breaker: Risk goes back to Active.
    ResetBreaker,
    /// The Execution agent cancels every open order at the venue.
    CancelAll,
    /// Close every position: Risk goes ReduceOnly and sends closing orders through Execution.
    Flatten,
    /// The Data agent switches to the named source.
    SwitchSource(String),
    /// The Data agent puts the symbol in quarantine: its bars are withheld from the models
    /// and Risk blocks new orders in it, until released by command.
    Quarantine(String),
    /// The Data agent lifts the symbol's quarantine.
    Release(String),
    /// The Regime agent falls back to its default label for every symbol.
    DefaultRegime,
    /// The Signal agent trades the named model (`name@version`) from the next bar: the
    /// release's candidate it runs in shadow, or the model it traded before (blue-green).
    SwitchModel(String),
    /// A step of a model's release, for the store and the running session: `pause`,
    /// `resume` or `abort` the release of the named model.
    ModelRelease {
        /// The model's name.
        model: String,
        /// `pause`, `resume` or `abort`.
        step: String,
    },
    /// Stop the session gracefully (the pipeline drains in order).
    Shutdown,
    /// Testing only (`[control] fault_injection = true`): the agent panics in a handler,
    /// `times` times in a row, to exercise supervision.
    InjectPanic {
        /// Which agent.
        agent: AgentId,
        /// How many panics.
        times: u32,
    },
    /// Testing only (`[control] fault_injection = true`): the Monitor's thread hangs for
    /// `seconds` after answering, as a Monitor stuck in a handler would: its loop, the
    /// health board and the outside heartbeat stop; the watchdog must notice.
    InjectFreeze {
        /// How long the Monitor hangs.
        seconds: u32,
    },
}

impl Action {
    /// Returns the command's name as the API and the audit spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Pause(_) => "pause",
            Action::Resume(_) => "resume",
            Action::TripBreaker => "breaker_trip",
            Action::ResetBreaker => "breaker_reset",
            Action::CancelAll => "cancel_all",
            Action::Flatten => "flatten",
            Action::SwitchSource(_) => "switch_source",
            Action::Quarantine(_) => "quarantine",
            Action::Release(_) => "release",
            Action::DefaultRegime => "default_regime",
            Action::SwitchModel(_) => "switch_model",
            Action::ModelRelease { .. } => "model_release",
            Action::Shutdown => "shutdown",
            Action::InjectPanic { .. } => "inject_panic",
            Action::InjectFreeze { .. } => "inject_freeze",
        }
    }

    /// Returns the command's argument for logs and the audit (`signal`, a source name …).
    pub fn argument(&self) -> Option<String> {
        match self {
            Action::Pause(t) | Action::Resume(t) => Some(t.to_string()),
            Action::SwitchSource(name)
            | Action::Quarantine(name)
            | Action::Release(name)
            | Action::SwitchModel(name) => Some(name.clone()),
            Action::InjectPanic { agent, times } => Some(format!("{agent} x{times}")),
            Action::InjectFreeze { seconds } => Some(format!("monitor {seconds} s")),
            Action::ModelRelease { model, step } => Some(format!("{model} {step}")),
            _ => None,
        }
    }
}

impl std::fmt::Display for CommandTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandTarget::Agent(a) => write!(f, "{a}"),
            CommandTarget::All => f.write_str("all"),
        }
    }
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command makes no sense as asked (unknown agent, agent that cannot pause …): the
    /// control API answers 400.
    #[error("{0}")]
    Invalid(String),
    /// The command cannot be carried out in the current state (flatten while Halted …):
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// The agent that would carry it out is not running: 503.
    #[error("{0}")]
    Unavailable(String),
}

/// A command to the Monitor, from an operator or a rule. Commands are idempotent: asking
/// for the state that already holds succeeds and says so.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct Command {
    /// What to do.
    pub action: Action,
    /// Who asked: an operator's name or a rule's (`alert:trade_size_high`).
    pub actor: String,
    /// Why.
    pub reason: String,
}

impl Command {
    /// Builds a command.
    pub fn new(action: Action, actor: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            action,
            actor: actor.into(),
            reason: reason.into(),
        }
    }
}

/// A new exchange calendar (reloaded overrides) and phase times for the Data agent's
/// scheduler, from an operator.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct ReloadCalendar {
    /// The calendar with the new overrides applied.
    pub calendar: vigil_calendar::Calendar,
    /// The phase times.
    pub schedule: vigil_calendar::ScheduleConfig,
    /// Who asked (`operator (SIGHUP)`).
    pub actor: String,
    /// What changed, for the audit line.
    pub change: String,
}

/// Monitor → Signal: stop or restart emitting. Answers what it did.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct SetPaused {
    /// Paused or not.
    pub paused: bool,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Signal: trade another model from the next bar (blue-green). Answers what it
/// did, or why it cannot.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct SwitchModel {
    /// The model to trade, `name@version`.
    pub to: String,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Signal: a step of a model's release (`pause`, `resume`, `abort`), recorded in
/// the store's registry (audited) and applied to the candidate the session runs. Answers
/// what it did, or why it cannot.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct ReleaseStep {
    /// The model's name.
    pub model: String,
    /// `pause`, `resume` or `abort`.
    pub step: String,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Risk: change the trading state. Answers what it did.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct SetTradingState {
    /// The new state.
    pub state: TradingState,
    /// Who asked (operator or rule name).
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Execution → Risk: trading must be at least this strict (reconciliation found books that
/// differ): Active becomes ReduceOnly or Halted, a stricter state stays.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct RestrictTrading {
    /// The least strict state allowed.
    pub state: TradingState,
    /// Who (`reconciliation`).
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Execution: cancel every open order at the venue.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct CancelAll {
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Risk: close every position (Risk goes ReduceOnly and sends closing orders).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct Flatten {
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Data: read from the named source from now on.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct SwitchSource {
    /// The source's name.
    pub name: String,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Data: put a symbol in quarantine (`on`), or lift its quarantine.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct SetQuarantine {
    /// The symbol's name.
    pub symbol: String,
    /// Quarantine (true) or release (false).
    pub on: bool,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Data → Risk: a symbol's quarantine began (`on`) or ended. No new order in it while on.
/// Sent before the batch that follows, so it reaches Risk before any signal of a later bar.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct QuarantineChanged {
    /// The symbol.
    pub symbol: SymbolId,
    /// In quarantine from now on (true), or no longer.
    pub on: bool,
    /// Why.
    pub reason: String,
}

/// Data → Risk: no data source is healthy. The breaker trips (actor `data_outage`) and stays
/// tripped until the data is back and verified ([`DataVerified`]), or an operator resets it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct DataOutage {
    /// What failed last, with the number of sources tried.
    pub reason: String,
    /// An operator must reset the breaker even when the verification passes.
    pub operator_resumes: bool,
}

/// Data → Execution: good bars again after an outage. Before the first of them is sent on,
/// the books are reconciled with the venue; the outcome goes to Risk as [`DataVerified`].
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct VerifyData {
    /// The source the bars come from.
    pub source: String,
    /// How long no source was healthy (wall clock).
    pub outage_s: i64,
    /// The first good bar's time.
    pub first_bar: Timestamp,
    /// Bars of exchange sessions missing across the outage (data gaps).
    pub missing_bars: u64,
}

/// Execution → Risk: the verification after a data outage. Passed: the books agree with the
/// venue and no session's data is missing.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct DataVerified {
    /// Every check passed.
    pub passed: bool,
    /// What was checked, with the figures (or what failed).
    pub report: String,
}

/// Monitor → Regime: fall back to the default label for every symbol.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<String, CommandError>")]
pub struct DefaultRegime {
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → any agent, testing only: panic inside the handler, so that supervision can be
/// exercised end to end.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct InjectPanic {
    /// Who asked.
    pub actor: String,
}

/// A supervisor → the Monitor: an agent crashed (a panic was caught in one of its
/// handlers) and will be restarted after `backoff`, or has been restarted.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Supervision {
    /// A panic was caught.
    Crashed {
        /// Who.
        agent: AgentId,
        /// The panic's message and where it happened.
        panic: String,
        /// Crashes within the restart window, this one included.
        recent: u32,
        /// The wait before the restart.
        backoff: std::time::Duration,
        /// More than the allowed restarts within the window: trip the breaker.
        escalate: bool,
        /// The policy, for the message (`3 restarts in 60 s`).
        policy: String,
    },
    /// The agent runs again, its state rebuilt.
    Restarted {
        /// Who.
        agent: AgentId,
    },
}

/// The breaker's fast path: the Monitor trips it here at once, besides sending
/// `SetTradingState`, and the Risk agent checks it before every decision. A halt thus holds
/// even while the Risk agent's mailbox is full, or while it waits out a restart backoff with
/// batches queued ahead of the message.
///
/// The Risk agent also posts here the trading state it holds, on every change and when it
/// starts, so that the Monitor can tell a trip request that finds the breaker already
/// tripped (nothing to do, even after the Risk agent has stopped) from one that cannot be
/// carried out.
#[derive(Clone, Debug, Default)]
pub struct HaltLatch(Arc<std::sync::Mutex<Latch>>);

#[derive(Debug, Default)]
struct Latch {
    /// A trip not yet taken by the Risk agent: (actor, reason).
    pending: Option<(String, String)>,
    /// The state the Risk agent holds (`None` until it has posted one).
    held: Option<TradingState>,
}

impl HaltLatch {
    /// Trips it: (actor, reason).
    pub fn trip(&self, actor: &str, reason: &str) {
        self.lock().pending = Some((actor.to_string(), reason.to_string()));
    }

    /// Clears it (the breaker was reset).
    pub fn clear(&self) {
        self.lock().pending = None;
    }

    /// Takes a pending trip, if any.
    pub fn take(&self) -> Option<(String, String)> {
        self.lock().pending.take()
    }

    /// The Risk agent: the trading state it holds now.
    pub fn hold(&self, state: TradingState) {
        self.lock().held = Some(state);
    }

    /// The trading state the Risk agent last said it holds (`None`: it never said).
    pub fn held(&self) -> Option<TradingState> {
        self.lock().held
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latch> {
        // A poisoned latch still holds valid data: a halt is never lost to a panic.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The trading state with who set it, when and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TradingStateRecord {
    /// The state.
    pub state: TradingState,
    /// Who set it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When (wall clock).
    pub at: Timestamp,
    /// The halt of a data outage under way (the Risk agent's JSON), saved with the state so
    /// that the verification after a restart can lift it; `None` when there is none.
    pub outage_hold: Option<String>,
}

/// The figures of a finished session, assembled by the Monitor from the stage reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionSummary {
    /// Session name.
    pub name: String,
    /// Data source.
    pub source: String,
    /// Why it ended (`end_of_data`, `interrupted`, `failed`).
    pub stop_reason: String,
    /// The error that ended it, if any.
    pub error: Option<String>,
    /// First and last bar.
    pub first_bar: Option<Timestamp>,
    /// Last bar.
    pub last_bar: Option<Timestamp>,
    /// Bars processed.
    pub bars: u64,
    /// Bars rejected by validation.
    pub bars_rejected: u64,
    /// Messages the data source's parser rejected (a feed's).
    pub messages_rejected: u64,
    /// Regime label changes.
    pub regime_changes: u64,
    /// Signals emitted.
    pub signals: u64,
    /// Signals held back while paused.
    pub signals_suppressed: u64,
    /// Intents approved by Risk.
    pub risk_approved: u64,
    /// Signals rejected by Risk.
    pub risk_rejected: u64,
    /// Orders sent.
    pub orders: u64,
    /// Orders completely filled.
    pub orders_filled: u64,
    /// Orders refused by the venue.
    pub venue_rejects: u64,
    /// Orders cancelled.
    pub orders_cancelled: u64,
    /// Executions.
    pub fills: u64,
    /// Starting cash.
    pub initial_cash: Decimal,
    /// Final equity.
    pub final_equity: Decimal,
    /// Final cash.
    pub final_cash: Decimal,
    /// Commission paid.
    pub commissions: Decimal,
    /// Largest drawdown, fraction of peak.
    pub max_drawdown: Decimal,
    /// Final trading state.
    pub trading_state: TradingState,
    /// Open positions at the end.
    pub positions: Vec<(String, Decimal)>,
    /// The decision latencies (none when no order was decided by a bar).
    pub decision_latency: Option<LatencySummary>,
}

impl SessionSummary {
    /// Returns final equity minus starting cash.
    pub fn pnl(&self) -> Decimal {
        self.final_equity - self.initial_cash
    }
}
