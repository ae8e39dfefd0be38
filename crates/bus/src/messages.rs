//! Every message between agents.

use std::ops::Range;
use std::sync::Arc;

use actix::Message;
use rust_decimal::Decimal;
use vigil_calendar::Phase;
use vigil_core::{
    AgentId, AgentState, Bar, ClientOrderId, OrderType, Regime, Side, Signal, SymbolId, Timestamp,
    TraceId, TradingState,
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

/// Validated bars, Data → Regime.
#[derive(Clone, Debug)]
pub struct BarBatch {
    /// Sequence number of the batch (for flow control).
    pub id: u64,
    /// The bars, in time order.
    pub bars: Arc<Vec<Bar>>,
    /// Schedule phases that begin within the batch (usually none).
    pub phases: Arc<[PhaseMark]>,
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
    /// Deterministic id of the order.
    pub client_order_id: ClientOrderId,
    /// Instrument.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// Quantity, positive.
    pub quantity: Decimal,
    /// Market or limit.
    pub order_type: OrderType,
    /// Limit price for a limit order.
    pub limit_price: Option<Decimal>,
    /// The price risk checks used (arrival price for execution quality).
    pub reference_price: Decimal,
    /// Market time of the decision.
    pub at: Timestamp,
    /// Cancel the symbol's open orders before sending this one (the intent replaces them).
    pub cancel_open: bool,
    /// The decision's basis, for the log lines of the rest of the chain.
    pub context: LogContext,
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
    },
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

/// A command to the Monitor, from an operator or a rule.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<(), String>")]
pub enum Command {
    /// Pause agent(s).
    Pause {
        /// Which.
        target: CommandTarget,
        /// Who asked.
        actor: String,
        /// Why.
        reason: String,
    },
    /// Resume agent(s).
    Resume {
        /// Which.
        target: CommandTarget,
        /// Who asked.
        actor: String,
        /// Why.
        reason: String,
    },
    /// Trip the circuit breaker: Risk goes Halted.
    TripBreaker {
        /// Who asked.
        actor: String,
        /// Why.
        reason: String,
    },
    /// Reset the breaker: Risk goes back to Active.
    ResetBreaker {
        /// Who asked.
        actor: String,
        /// Why.
        reason: String,
    },
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

/// Monitor → Signal: stop or restart emitting.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SetPaused {
    /// Paused or not.
    pub paused: bool,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Monitor → Risk: change the trading state.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SetTradingState {
    /// The new state.
    pub state: TradingState,
    /// Who asked (operator or rule name).
    pub actor: String,
    /// Why.
    pub reason: String,
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
}

impl SessionSummary {
    /// Returns final equity minus starting cash.
    pub fn pnl(&self) -> Decimal {
        self.final_equity - self.initial_cash
    }
}
