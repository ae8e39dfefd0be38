//! What agents tell the Monitor about themselves besides "alive": the figures of the seed's
//! table 20.8, mailbox backlogs, and the mailbox ping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use actix::Message;
use rust_decimal::Decimal;
use vigil_core::{AgentId, Timestamp, TradingState};

/// The Monitor's ping through an agent's mailbox; the round trip is the agent's response
/// latency (its backlog included).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Ping;

/// A data source or venue round trip, measured by the agent that owns the connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reachability {
    /// The last probe answered.
    pub up: bool,
    /// Its round trip, in seconds.
    pub latency_s: Option<f64>,
    /// Why the last probe failed.
    pub error: Option<String>,
    /// Calls that succeeded since start (fetches, orders, cancels, probes).
    pub calls_ok: u64,
    /// Calls that failed since start.
    pub calls_failed: u64,
}

/// Agent-specific figures carried by a heartbeat.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Figures {
    /// Nothing beyond the heartbeat.
    #[default]
    None,
    /// Data agent: last update and quality.
    Data {
        /// Market time of the last bar forwarded.
        last_bar_at: Option<Timestamp>,
        /// Supervision time it arrived.
        last_update_at: Option<Timestamp>,
        /// Bars forwarded.
        bars: u64,
        /// Bars rejected by validation.
        rejected: u64,
        /// Messages a streaming source sent that did not parse (each an ERROR line).
        parse_errors: u64,
        /// Gaps found: runs of calendar sessions with no bar for a symbol.
        gaps: u64,
        /// Sessions missing in those gaps (one per symbol and session).
        missing_bars: u64,
        /// Symbols in quarantine now (a price jump beyond the bounds, or an operator).
        quarantined: u64,
        /// Bars withheld from the models because their symbol was in quarantine.
        withheld: u64,
        /// Pairs of closes that disagreed with the reference source (`[data.cross_check]`).
        disagreements: u64,
        /// The source is live: a silence while the exchange is open is missing data.
        live: bool,
        /// The source delivered its last bar.
        ended: bool,
        /// The source's connection.
        source: Reachability,
    },
    /// Regime agent: detection latency and confidence.
    Regime {
        /// Label changes.
        changes: u64,
        /// Mean classification time per bar over the last interval, in seconds.
        detection_latency_s: Option<f64>,
        /// Confidence of the latest reading, 0..1.
        confidence: Option<f64>,
    },
    /// Signal agent: generation latency and success rate.
    Signal {
        /// Signals emitted.
        signals: u64,
        /// Signals held back while paused.
        suppressed: u64,
        /// Batches the model evaluated.
        batches: u64,
        /// Bars in those batches.
        bars: u64,
        /// Bars the model could not evaluate (bad input).
        failures: u64,
        /// Mean model time per batch over the last interval, in seconds.
        generation_latency_s: Option<f64>,
        /// Paused by an operator.
        paused: bool,
        /// The model it trades, `name@version`.
        model: &'static str,
        /// The model it runs beside it without trading, if any: a release's candidate in
        /// shadow, or the model it traded before a switch (kept warm for a rollback).
        shadow: Option<&'static str>,
        /// A model it stopped running (rolled back automatically), if any.
        stopped: Option<&'static str>,
        /// The release whose candidate runs in shadow, and how: `running`, `paused`, or
        /// `warm` (switched: the model beside the traded one, kept for a switch back).
        release: Option<(i64, &'static str)>,
        /// The release's canary once out of shadow: its step, the candidate's share of
        /// capital, and `live`, `hand_over` / `close` (aborted, being unwound) or
        /// `completed`.
        canary: Option<(u32, Decimal, &'static str)>,
    },
    /// Risk agent: trigger counts and state.
    Risk {
        /// Intents approved.
        approved: u64,
        /// Signals rejected.
        rejected: u64,
        /// Rejections by reason.
        triggers: Vec<(&'static str, u64)>,
        /// The trading state.
        state: TradingState,
    },
    /// Execution agent: order status counts, execution quality, the book and the venue.
    Execution {
        /// Orders sent.
        orders: u64,
        /// Orders completely filled.
        filled: u64,
        /// Orders the venue refused.
        rejected: u64,
        /// Orders cancelled.
        cancelled: u64,
        /// Times a bar reached an open order's price but left it nothing to take (the bar
        /// traded no volume, or earlier orders took the venue's share of it).
        unfilled: u64,
        /// Orders open now.
        open: u64,
        /// Executions.
        fills: u64,
        /// Mean signed slippage against the arrival (decision) price, in basis points.
        slippage_bps: Option<f64>,
        /// Equity now.
        equity: Decimal,
        /// The venue's connection.
        venue: Reachability,
        /// The business figures the rules watch.
        business: BusinessFigures,
        /// The book per model version, during and after a canary (empty otherwise).
        ledgers: Vec<vigil_core::SubLedger>,
        /// The decision latencies measured since the previous heartbeat, in seconds (bar
        /// arrival → the venue's answer to the order; at most
        /// [`LATENCY_SAMPLES_PER_HEARTBEAT`], the rest counted in `latency_dropped`).
        decision_latency_s: Vec<f64>,
        /// Latencies measured since the previous heartbeat beyond those sent.
        latency_dropped: u64,
    },
}

/// The most decision latencies one heartbeat carries: a full-speed replay decides far more
/// orders a second than a live session, and the heartbeat must stay small.
pub const LATENCY_SAMPLES_PER_HEARTBEAT: usize = 4096;

/// Business metrics, computed by the Execution agent on the market clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BusinessFigures {
    /// Drawdown from today's equity peak, fraction.
    pub daily_drawdown: f64,
    /// Drawdown from this week's equity peak, fraction.
    pub weekly_drawdown: f64,
    /// Exposure the largest fill of today added, over equity.
    pub max_trade_exposure: f64,
    /// Fills today.
    pub trades_today: u64,
    /// Mean fills per trading day over the rolling window.
    pub trades_per_day_mean: Option<f64>,
    /// Today's P&L (equity now minus equity at the day's first bar).
    pub day_pnl: Decimal,
}

/// Messages waiting in each agent's mailbox: senders count up, handlers count down. Shared
/// by every agent of a session; an agent without one shares nothing and reports 0.
#[derive(Clone, Debug, Default)]
pub struct Backlogs(Arc<[AtomicI64; AgentId::ALL.len()]>);

impl Backlogs {
    /// One message more for `agent`.
    pub fn sent(&self, agent: AgentId) {
        self.0[agent as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `agent` took one message.
    pub fn taken(&self, agent: AgentId) {
        self.0[agent as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// Messages waiting for `agent`.
    pub fn waiting(&self, agent: AgentId) -> i64 {
        self.0[agent as usize].load(Ordering::Relaxed)
    }
}
