use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_bus::{
    AgentFault, Backlogs, BookQuery, BookSnapshot, CommandError, DataOutage, DataVerified,
    DrawdownAnswer, DrawdownReport, Figures, Flatten, Flow, Heartbeat, InjectPanic, NextReport,
    OrderIntent, PhaseMark, Ping, QuarantineChanged, RearmDrawdown, RestrictTrading, Segment,
    SetTradingState, SignalBatch, StageReport, StopReason, TradingStateRecord, run_every,
};
use vigil_calendar::Phase;
use vigil_config::{OrderTypeConfig, RiskConfig};
use vigil_core::{
    AgentId, AgentState, ClientOrderId, Level, OrderType, SharedClock, Side, Signal, SymbolId,
    SymbolTable, Timestamp, TraceId, TradingState,
};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};

use crate::policy::{Decision, decide, deleverage_step};

const SERVICE: &str = "risk_agent";

/// Where the Risk agent sends its output: the Execution agent's inputs.
#[derive(Clone, Debug)]
pub struct ExecutionLinks {
    /// Bars, cut at signals.
    pub segments: Recipient<Flow<Segment>>,
    /// Book queries.
    pub book: Recipient<BookQuery>,
    /// Approved intents.
    pub intents: Recipient<OrderIntent>,
    /// Re-arming of the drawdown control line.
    pub rearm: Recipient<RearmDrawdown>,
}

/// The drawdown control line, as the Risk agent holds it.
#[derive(Debug, Default)]
struct DrawdownControl {
    /// Bumped when trading is set active again while engaged; reports of older armings
    /// are answered with nothing.
    arming: u64,
    engaged: Option<Engaged>,
}

/// Since the line was crossed.
#[derive(Debug)]
struct Engaged {
    /// Steps that sent orders.
    steps: u64,
    /// |position| per symbol when the line was crossed: what a step is a share of.
    sizes: Vec<(SymbolId, Decimal)>,
}

/// An order the Risk agent decides by itself; see `RiskAgent::market_order`.
struct ForcedOrder {
    /// Names the trace: `flatten`, `deleverage`.
    kind: &'static str,
    symbol: SymbolId,
    side: Side,
    quantity: Decimal,
    /// The position before the order.
    position: Decimal,
    price: Decimal,
    equity: Decimal,
    /// Market time of the decision.
    at: Timestamp,
}

/// Work waiting in stream order.
#[derive(Debug)]
enum Pending {
    Batch {
        batch: SignalBatch,
        next_signal: usize,
        cursor: usize,
        next_phase: usize,
    },
    End(StopReason),
}

/// The Risk agent actor.
pub struct RiskAgent {
    cfg: RiskConfig,
    order_type: OrderTypeConfig,
    limit_offset_bps: Decimal,
    state: TradingState,
    symbols: SymbolTable,
    clock: SharedClock,
    wall: SharedClock,
    heartbeat_interval: Duration,
    log: LogBuffer,
    exec: ExecutionLinks,
    monitor: Recipient<Heartbeat>,
    reports: Recipient<StageReport>,
    faults: Recipient<AgentFault>,
    queue: VecDeque<Pending>,
    /// Answers the queue waits for (a book query, a flatten's book reads): while any is
    /// outstanding no batch is decided, but commands and drawdown reports still are.
    holds: u32,
    /// Signals at or before this time were decided by the previous run (after a restart):
    /// their bars warm the models up, and they are not decided again.
    resume_after: Option<Timestamp>,
    /// Symbols in quarantine (a data anomaly, or an operator), and why: no new order in them.
    quarantined: HashMap<SymbolId, String>,
    /// The breaker tripped because no data source was healthy: lifted when the data is back
    /// and verified, unless anything else asked for a halt meanwhile.
    outage_hold: Option<OutageHold>,
    /// Driven by the schedule: the phase of the trading day (None: outside a session).
    automation: bool,
    phase: Option<Phase>,
    /// Today's pre-market checklist failed: the session does not open.
    session_blocked: bool,
    agent_state: AgentState,
    approved: u64,
    rejected: u64,
    last_ts: Option<Timestamp>,
    /// Rejections by kind.
    triggers: Vec<(&'static str, u64)>,
    backlogs: Backlogs,
    /// Every change of the trading state goes here to be saved (the breaker survives a
    /// restart).
    saved: Option<tokio::sync::mpsc::UnboundedSender<TradingStateRecord>>,
    /// The state a previous process saved, announced when the agent starts.
    restored: Option<TradingStateRecord>,
    /// The breaker's fast path from the Monitor.
    halt: vigil_bus::HaltLatch,
    drawdown: DrawdownControl,
    /// The input ended; the agent stops once the Execution agent has the end too.
    ending: Option<StopReason>,
}

/// A halt for a data outage.
#[derive(Debug)]
struct OutageHold {
    /// The state before it, restored when the verification passes.
    before: TradingState,
    /// `[data.feed] after_outage = "operator"`: an operator resets the breaker.
    operator: bool,
    /// Whatever else asked for a halt (or a stricter state) meanwhile: an operator must
    /// look at those.
    others: Vec<String>,
}

/// The actors of a data outage's halt: the Data agent, and the Critical alerts the outage
/// itself raises (the outage, the source disconnected, no data while the exchange is open).
fn is_outage_actor(actor: &str) -> bool {
    matches!(
        actor,
        "data_outage" | "alert:data_outage" | "alert:data_source_disconnected" | "alert:data_stale"
    )
}

/// The kind of a rejection, for the trigger counts (a fixed, small set of labels).
fn trigger_kind(reason: &str) -> &'static str {
    const KINDS: [(&str, &str); 7] = [
        ("halted", "halted"),
        ("market closed", "market_closed"),
        ("reduce-only", "reduce_only"),
        ("gross exposure", "gross_exposure"),
        ("of equity", "position_limit"),
        ("reference price", "bad_price"),
        ("equity", "bad_equity"),
    ];
    KINDS
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map_or("other", |(_, kind)| kind)
}

impl std::fmt::Debug for RiskAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskAgent")
            .field("state", &self.state)
            .field("approved", &self.approved)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl RiskAgent {
    /// Creates the agent.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: RiskConfig,
        order_type: OrderTypeConfig,
        limit_offset_bps: Decimal,
        symbols: SymbolTable,
        clock: SharedClock,
        wall: SharedClock,
        heartbeat_interval: Duration,
        log: LogBuffer,
        exec: ExecutionLinks,
        monitor: Recipient<Heartbeat>,
        reports: Recipient<StageReport>,
        faults: Recipient<AgentFault>,
    ) -> Self {
        Self {
            state: cfg.initial_state,
            cfg,
            order_type,
            limit_offset_bps,
            symbols,
            clock,
            wall,
            heartbeat_interval,
            log,
            exec,
            monitor,
            reports,
            faults,
            queue: VecDeque::new(),
            holds: 0,
            resume_after: None,
            quarantined: HashMap::new(),
            outage_hold: None,
            automation: false,
            phase: None,
            session_blocked: false,
            agent_state: AgentState::Starting,
            approved: 0,
            rejected: 0,
            last_ts: None,
            triggers: Vec::new(),
            backlogs: Backlogs::default(),
            saved: None,
            restored: None,
            halt: vigil_bus::HaltLatch::default(),
            drawdown: DrawdownControl::default(),
            ending: None,
        }
    }

    /// Checks `halt` before every decision: a trip there halts at once, whatever waits in
    /// the mailbox.
    pub fn with_halt_latch(mut self, halt: vigil_bus::HaltLatch) -> Self {
        self.halt = halt;
        self
    }

    /// Starts in the state a previous process saved (`restored`) and sends every change to
    /// `saved`, so that a tripped breaker survives a restart.
    pub fn with_saved_state(
        mut self,
        restored: Option<TradingStateRecord>,
        saved: tokio::sync::mpsc::UnboundedSender<TradingStateRecord>,
    ) -> Self {
        if let Some(r) = &restored {
            self.state = r.state;
        }
        self.restored = restored;
        self.saved = Some(saved);
        self
    }

    /// After a restart: signals at or before `at` (the last bar the previous run handled)
    /// are not decided again; their bars only warm the models up.
    pub fn with_resume_after(mut self, at: Option<Timestamp>) -> Self {
        self.resume_after = at;
        self
    }

    /// Lets the schedule drive trading: reduce-only from close-only, no new orders outside
    /// a session, active again at the open.
    pub fn with_automation(mut self) -> Self {
        self.automation = true;
        self
    }

    /// What the schedule allows now, as a label for logs.
    fn session_label(&self) -> &'static str {
        match (self.automation, self.phase) {
            (false, _) | (true, Some(Phase::TradingActive)) => "open",
            (true, Some(Phase::CloseOnly)) => "close_only",
            (true, _) => "closed",
        }
    }

    /// Applies the schedule phases of `phases[from..]` that begin at or before bar `upto`.
    /// Returns the index of the first phase not yet applied.
    fn apply_phases(&mut self, phases: &[PhaseMark], from: usize, upto: usize) -> usize {
        let mut i = from;
        while let Some(mark) = phases.get(i).filter(|m| m.before <= upto) {
            let before = self.session_label();
            if mark.phase == Phase::PremarketValidation {
                self.session_blocked = mark.blocked;
            }
            self.phase = match mark.phase {
                Phase::TradingActive | Phase::CloseOnly if self.session_blocked => {
                    self.log.emit(
                        LogEvent::new(
                            self.clock.stamp(mark.at),
                            SERVICE,
                            Event::TradingStateChanged,
                        )
                        .level(Level::Error)
                        .with("from", before)
                        .with("to", "closed")
                        .with("actor", "schedule")
                        .with(
                            "reason",
                            format!(
                                "{}: the pre-market checklist failed; this session stays closed",
                                mark.phase.as_str()
                            ),
                        ),
                    );
                    None
                }
                Phase::TradingActive | Phase::CloseOnly => Some(mark.phase),
                // Before the open and after the close no new order may go out.
                _ => None,
            };
            let after = self.session_label();
            if before != after {
                self.log.emit(
                    LogEvent::new(
                        self.clock.stamp(mark.at),
                        SERVICE,
                        Event::TradingStateChanged,
                    )
                    .with("from", before)
                    .with("to", after)
                    .with("actor", "schedule")
                    .with("reason", format!("{} phase", mark.phase.as_str()))
                    .with("trading_state", self.state.as_str()),
                );
            }
            i += 1;
        }
        i
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Risk,
            state: self.agent_state,
            at: self.wall.now(),
            processed: self.approved + self.rejected,
            figures: Figures::Risk {
                approved: self.approved,
                rejected: self.rejected,
                triggers: self.triggers.clone(),
                state: self.state,
            },
        });
    }

    /// Counts this agent's mailbox and its messages to the Execution agent in the
    /// session's backlogs.
    pub fn with_backlogs(mut self, backlogs: Backlogs) -> Self {
        self.backlogs = backlogs;
        self
    }

    fn count_trigger(&mut self, reason: &str) {
        let kind = trigger_kind(reason);
        match self.triggers.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.triggers.push((kind, 1)),
        }
    }

    /// Works through the queue until it is empty or a book query is outstanding.
    fn process(&mut self, ctx: &mut Context<Self>) {
        while self.holds == 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            match front {
                Pending::End(reason) => {
                    let reason = reason.clone();
                    self.queue.pop_front();
                    self.finish(reason, ctx);
                    return;
                }
                Pending::Batch {
                    batch,
                    next_signal,
                    cursor,
                    next_phase,
                } => {
                    let resume_after = self.resume_after;
                    if batch
                        .signals
                        .get(*next_signal)
                        .is_some_and(|(_, s)| resume_after.is_some_and(|t| s.at <= t))
                    {
                        // Decided by the previous run: its bar only warms the models up.
                        *next_signal += 1;
                        continue;
                    }
                    let Some((idx, signal)) = batch.signals.get(*next_signal).cloned() else {
                        // No signal left: the rest of the batch goes out as its last segment.
                        let phases = batch.phases.clone();
                        let from = *next_phase;
                        self.backlogs.sent(AgentId::Execution);
                        self.exec.segments.do_send(Flow::Data(Segment {
                            batch_id: batch.id,
                            bars: batch.bars.clone(),
                            range: *cursor..batch.bars.len(),
                            last: true,
                            phases: batch.phases.clone(),
                        }));
                        let last = batch.bars.last().map(|b| b.ts);
                        self.last_ts = last.or(self.last_ts);
                        self.apply_phases(&phases, from, usize::MAX);
                        self.queue.pop_front();
                        continue;
                    };
                    // Bars up to and including the signal's bar reach Execution first.
                    self.backlogs.sent(AgentId::Execution);
                    self.exec.segments.do_send(Flow::Data(Segment {
                        batch_id: batch.id,
                        bars: batch.bars.clone(),
                        range: *cursor..idx + 1,
                        last: false,
                        phases: batch.phases.clone(),
                    }));
                    *cursor = idx + 1;
                    *next_signal += 1;
                    // The schedule as it stands at the signal's bar.
                    let phases = batch.phases.clone();
                    let from = *next_phase;
                    let applied = self.apply_phases(&phases, from, idx);
                    if let Some(Pending::Batch { next_phase, .. }) = self.queue.front_mut() {
                        *next_phase = applied;
                    }
                    self.holds += 1;
                    let query = self.exec.book.send(BookQuery {
                        symbol: signal.symbol,
                    });
                    // The hold keeps the queue until the answer is in: decisions stay in
                    // stream order. `spawn`, not `wait`: the mailbox stays open, because
                    // the Execution agent may need this agent's answer to a drawdown
                    // report before it reaches the query.
                    ctx.spawn(query.into_actor(self).map(move |res, act, ctx| {
                        act.holds -= 1;
                        match res {
                            Ok(book) => act.on_signal(&signal, &book),
                            Err(e) => act.fault(format!(
                                "book query to execution agent failed for {}: {e}",
                                signal.trace_id
                            )),
                        }
                        act.log.flush();
                        act.process(ctx);
                    }));
                }
            }
        }
    }

    fn fault(&mut self, error: String) {
        let now = self.clock.now();
        self.rejected += 1;
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentFailed)
                .level(Level::Error)
                .with("error", error.clone()),
        );
        self.faults.do_send(AgentFault {
            agent: AgentId::Risk,
            error,
            fatal: false,
        });
    }

    fn on_signal(&mut self, signal: &Signal, book: &BookSnapshot) {
        if let Some((actor, reason)) = self.halt.take() {
            self.change_state(TradingState::Halted, actor, reason);
        }
        let decision = match self.session_label() {
            _ if self.quarantined.contains_key(&signal.symbol) => Decision::Reject {
                reason: format!(
                    "symbol in quarantine (data anomaly): {}",
                    self.quarantined[&signal.symbol]
                ),
            },
            "closed" if self.state != TradingState::Halted => Decision::Reject {
                reason: "market closed: outside the trading session (schedule)".into(),
            },
            label => {
                let state = if label == "close_only" && self.state == TradingState::Active {
                    TradingState::ReduceOnly
                } else {
                    self.state
                };
                decide(
                    &self.cfg,
                    state,
                    signal.direction,
                    signal.reference_price,
                    signal.regime,
                    book,
                )
            }
        };
        let ts = self.clock.stamp(signal.at);
        let symbol = self.symbols.shared(signal.symbol);
        let context = LogContext {
            signal_id: Some(signal.signal_id.clone()),
            signal_strength: Some(signal.strength),
            regime: Some(signal.regime),
            model_version: Some(signal.model_version),
            portfolio_value: Some(book.equity),
        };
        match decision {
            Decision::Reject { reason } => {
                self.rejected += 1;
                self.count_trigger(&reason);
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::RiskRejected)
                        .trace(&signal.trace_id)
                        .with("symbol", symbol)
                        .with("direction", signal.direction.as_str())
                        .with("price", signal.reference_price)
                        .with("position", book.position)
                        .with("trading_state", self.state.as_str())
                        .with("reason", reason)
                        .context(context),
                );
            }
            Decision::NoChange { target } => {
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::RiskApproved)
                        .level(Level::Debug)
                        .trace(&signal.trace_id)
                        .with("symbol", symbol)
                        .with("target_position", target)
                        .with("position", book.position)
                        .with("note", "book already at target; no order")
                        .context(context),
                );
            }
            Decision::Order {
                side,
                quantity,
                target,
            } => {
                self.approved += 1;
                let (order_type, limit_price) = match self.order_type {
                    OrderTypeConfig::Market => (OrderType::Market, None),
                    OrderTypeConfig::Limit => {
                        let offset = self.limit_offset_bps / Decimal::from(10_000);
                        let px = match side {
                            Side::Buy => signal.reference_price * (Decimal::ONE + offset),
                            Side::Sell => signal.reference_price * (Decimal::ONE - offset),
                        };
                        (OrderType::Limit, Some(px.round_dp(8)))
                    }
                };
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::RiskApproved)
                        .trace(&signal.trace_id)
                        .with("symbol", symbol)
                        .with("side", side.as_str())
                        .with("quantity", quantity)
                        .with("target_position", target)
                        .with("position", book.position)
                        .with("price", signal.reference_price)
                        .with("equity", book.equity)
                        .with("trading_state", self.state.as_str())
                        .context(context.clone()),
                );
                self.exec.intents.do_send(OrderIntent {
                    trace_id: signal.trace_id.clone(),
                    client_order_id: ClientOrderId::for_intent(&signal.trace_id, 1),
                    symbol: signal.symbol,
                    side,
                    quantity,
                    order_type,
                    limit_price,
                    reference_price: signal.reference_price,
                    at: signal.at,
                    cancel_open: !book.open_orders.is_empty(),
                    context,
                });
            }
        }
    }

    fn finish(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        if let StopReason::Failed(error) = &reason {
            // In band, so it holds whatever the thread timing: no order after bad data.
            self.change_state(
                TradingState::Halted,
                "risk_agent".into(),
                format!("market data stream failed: {error}"),
            );
        }
        self.backlogs.sent(AgentId::Execution);
        self.ending = Some(reason.clone());
        // The Execution agent may still be working through the segments ahead of the end,
        // and a drawdown report from one of them needs this agent's answer: it stops only
        // once the Execution agent has handled the end (or is gone).
        let end = self.exec.segments.send(Flow::End(reason));
        ctx.spawn(end.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                act.log.emit(
                    LogEvent::new(act.clock.now(), SERVICE, Event::AgentStopped)
                        .level(Level::Warn)
                        .with(
                            "note",
                            format!("the execution agent did not take the end of the stream: {e}"),
                        ),
                );
            }
            act.stop(ctx);
        }));
    }

    /// The last of [`Self::finish`]: the figures, then stop.
    fn stop(&mut self, ctx: &mut Context<Self>) {
        let Some(reason) = self.ending.take() else {
            return;
        };
        self.agent_state = AgentState::Stopped;
        let now = self
            .last_ts
            .map_or_else(|| self.clock.now(), |t| self.clock.stamp(t));
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStopped)
                .with("reason", reason.as_str().to_string())
                .with("approved", self.approved)
                .with("rejected", self.rejected)
                .with("trading_state", self.state.as_str()),
        );
        self.log.flush();
        self.reports.do_send(StageReport::Risk {
            approved: self.approved,
            rejected: self.rejected,
            state: self.state,
        });
        ctx.stop();
    }
}

impl Actor for RiskAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.agent_state = AgentState::Running;
        self.halt.hold(self.state);
        let now = self.clock.now();
        if let Some(r) = self.restored.take() {
            let level = if r.state == TradingState::Active {
                Level::Info
            } else {
                Level::Warn
            };
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::TradingStateChanged)
                    .level(level)
                    .with("from", "unknown")
                    .with("to", r.state.as_str())
                    .with("actor", "restored")
                    .with(
                        "reason",
                        format!(
                            "saved by the previous process: set by {} at {}: {}",
                            r.actor, r.at, r.reason
                        ),
                    ),
            );
        }
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStarted)
                .with("trading_state", self.state.as_str())
                .with("max_position_pct", self.cfg.max_position_pct)
                .with("max_gross_exposure_pct", self.cfg.max_gross_exposure_pct),
        );
        self.log.flush();
        self.heartbeat(ctx);
        run_every(
            ctx,
            self.wall.clone(),
            self.heartbeat_interval,
            Self::heartbeat,
        );
        // After a restart: the batches that waited; or, if the crash came after the end of
        // the input, the stop it was waiting for.
        if self.ending.is_some() {
            self.stop(ctx);
            return;
        }
        self.process(ctx);
    }
}

impl Supervised for RiskAgent {
    /// Decides nothing from memory: every decision reads the book from the Execution agent
    /// anyway. The queue (input not yet decided) and the trading state (an operator's or a
    /// rule's command) stay; the signal being decided when the crash hit is dropped, and
    /// the queue goes on when the agent starts again.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if self.holds > 0 {
            self.log.emit(
                LogEvent::new(self.clock.now(), SERVICE, Event::BatchDropped)
                    .with("agent", "risk")
                    .with(
                        "note",
                        "the signal being decided when the crash hit was not decided",
                    ),
            );
        }
        self.holds = 0;
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AgentRebuilt)
                .with("agent", "risk")
                .with(
                    "rebuilt",
                    "queue kept; the book is read from the execution agent for every decision",
                )
                .with("queued_batches", self.queue.len())
                .with("trading_state", self.state.as_str()),
        );
        self.log.flush();
    }
}

impl Handler<Ping> for RiskAgent {
    type Result = ();

    fn handle(&mut self, _msg: Ping, _ctx: &mut Self::Context) {}
}

impl Handler<Flow<SignalBatch>> for RiskAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<SignalBatch>, ctx: &mut Self::Context) {
        self.backlogs.taken(AgentId::Risk);
        self.queue.push_back(match msg {
            Flow::Data(batch) => Pending::Batch {
                batch,
                next_signal: 0,
                cursor: 0,
                next_phase: 0,
            },
            Flow::End(reason) => Pending::End(reason),
        });
        self.process(ctx);
    }
}

impl Handler<SetTradingState> for RiskAgent {
    type Result = Result<String, CommandError>;

    fn handle(&mut self, msg: SetTradingState, _ctx: &mut Self::Context) -> Self::Result {
        let from = self.state;
        Ok(if self.change_state(msg.state, msg.actor, msg.reason) {
            format!("trading state is now {} (was {from})", msg.state)
        } else {
            format!("trading state was already {from}")
        })
    }
}

impl Handler<QuarantineChanged> for RiskAgent {
    type Result = ();

    /// Blocks (or unblocks) new orders in a symbol whose data is in quarantine.
    fn handle(&mut self, msg: QuarantineChanged, _ctx: &mut Self::Context) {
        if msg.on {
            self.quarantined.insert(msg.symbol, msg.reason);
        } else {
            self.quarantined.remove(&msg.symbol);
        }
    }
}

impl Handler<DataOutage> for RiskAgent {
    type Result = ();

    /// Trips the breaker: no data source is healthy.
    fn handle(&mut self, msg: DataOutage, _ctx: &mut Self::Context) {
        if self.outage_hold.is_none() {
            let others = if self.state == TradingState::Halted {
                vec!["the breaker was already tripped when the outage began".to_string()]
            } else {
                Vec::new()
            };
            self.outage_hold = Some(OutageHold {
                before: self.state,
                operator: msg.operator_resumes,
                others,
            });
        }
        self.change_state(TradingState::Halted, "data_outage".into(), msg.reason);
        self.log.flush();
    }
}

impl Handler<DataVerified> for RiskAgent {
    type Result = ();

    /// The data is back and was verified (or not): lifts the outage's halt when it passed,
    /// `after_outage` allows it, and nothing else asked for a halt meanwhile.
    fn handle(&mut self, msg: DataVerified, _ctx: &mut Self::Context) {
        // A trip still on the fast path is a request like any other.
        if let Some((actor, reason)) = self.halt.take() {
            self.change_state(TradingState::Halted, actor, reason);
        }
        let hold = self.outage_hold.take();
        let (resume, action) = match &hold {
            None => (
                None,
                "no outage halt to lift (the breaker was reset meanwhile)".to_string(),
            ),
            Some(_) if !msg.passed => (
                None,
                "the breaker stays tripped: read the report, fix or accept what failed, then `vigil ctl breaker reset --reason …`"
                    .to_string(),
            ),
            Some(h) if h.operator => (
                None,
                "[data.feed] after_outage = \"operator\": check, then `vigil ctl breaker reset --reason …`"
                    .to_string(),
            ),
            Some(h) if !h.others.is_empty() => (
                None,
                format!(
                    "the breaker stays tripped: also asked meanwhile by {}; check, then `vigil ctl breaker reset --reason …`",
                    h.others.join("; ")
                ),
            ),
            Some(h) => (
                Some(h.before),
                format!("trading resumes ({})", h.before.as_str()),
            ),
        };
        let now = self.clock.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::DataVerified)
                .level(if resume.is_some() {
                    Level::Info
                } else {
                    Level::Error
                })
                .with("passed", msg.passed)
                .with("report", msg.report.clone())
                .with("action", action),
        );
        if let Some(state) = resume {
            self.change_state(
                state,
                "data_verify".into(),
                format!("the data is back and verified: {}", msg.report),
            );
        }
        self.log.flush();
    }
}

impl Handler<RestrictTrading> for RiskAgent {
    type Result = ();

    /// Tightens trading to at least `msg.state`; never loosens it.
    fn handle(&mut self, msg: RestrictTrading, _ctx: &mut Self::Context) {
        let rank = |s: TradingState| match s {
            TradingState::Active => 0,
            TradingState::ReduceOnly => 1,
            TradingState::Halted => 2,
        };
        if rank(msg.state) > rank(self.state) {
            self.change_state(msg.state, msg.actor, msg.reason);
            self.log.flush();
        }
    }
}

impl Handler<Flatten> for RiskAgent {
    type Result = ResponseFuture<Result<String, CommandError>>;

    /// Goes reduce-only and sends one market order per open position that brings it to
    /// zero (replacing the symbol's open orders). Held in stream order: no batch is decided
    /// while the books are read.
    fn handle(&mut self, msg: Flatten, ctx: &mut Self::Context) -> Self::Result {
        if self.state == TradingState::Halted {
            return Box::pin(async {
                Err(CommandError::Conflict(
                    "the breaker is tripped (halted): no order may go out, only cancels; \
                     reset the breaker first, then flatten"
                        .into(),
                ))
            });
        }
        if self.state == TradingState::Active {
            self.change_state(
                TradingState::ReduceOnly,
                msg.actor.clone(),
                format!("flatten: {}", msg.reason),
            );
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ids: Vec<SymbolId> = self.symbols.iter().map(|(id, _)| id).collect();
        let book = self.exec.book.clone();
        let fut = async move {
            let mut books = Vec::with_capacity(ids.len());
            for id in ids {
                books.push(book.send(BookQuery { symbol: id }).await.map(|b| (id, b)));
            }
            books
        };
        self.holds += 1;
        ctx.spawn(fut.into_actor(self).map(move |books, act, ctx| {
            act.holds -= 1;
            let answer = act.flatten(books, &msg);
            act.log.flush();
            act.process(ctx);
            // The caller may have gone; the orders are logged either way.
            if tx.send(answer).is_err() {
                act.log.emit(
                    LogEvent::new(act.clock.now(), SERVICE, Event::CommandRefused)
                        .level(Level::Warn)
                        .with("command", "flatten")
                        .with("error", "the caller stopped waiting for the answer"),
                );
            }
        }));
        Box::pin(async move {
            rx.await.map_err(|_| {
                CommandError::Unavailable("the risk agent stopped before flattening".into())
            })?
        })
    }
}

impl Handler<DrawdownReport> for RiskAgent {
    type Result = MessageResult<DrawdownReport>;

    fn handle(&mut self, msg: DrawdownReport, _ctx: &mut Self::Context) -> Self::Result {
        if let Some((actor, reason)) = self.halt.take() {
            self.change_state(TradingState::Halted, actor, reason);
        }
        let answer = self.on_drawdown(&msg);
        self.log.flush();
        MessageResult(answer)
    }
}

impl Handler<InjectPanic> for RiskAgent {
    type Result = ();

    fn handle(&mut self, msg: InjectPanic, _ctx: &mut Self::Context) {
        panic!("injected panic in the risk agent (asked by {})", msg.actor);
    }
}

impl RiskAgent {
    /// A market order the agent decides by itself (a flatten, a deleveraging step), logged
    /// as approved at WARN with who asked and why. It replaces whatever is open for the
    /// symbol when it arrives, including an order decided meanwhile.
    fn market_order(&mut self, o: ForcedOrder, actor: String, reason: String) -> OrderIntent {
        let name = self.symbols.shared(o.symbol);
        let trace_id = TraceId::for_command(&format!("{}_{name}", o.kind), o.at);
        let signed = match o.side {
            Side::Buy => o.quantity,
            Side::Sell => -o.quantity,
        };
        self.approved += 1;
        self.log.emit(
            LogEvent::new(self.clock.stamp(o.at), SERVICE, Event::RiskApproved)
                .level(Level::Warn)
                .trace(&trace_id)
                .with("symbol", name)
                .with("side", o.side.as_str())
                .with("quantity", o.quantity)
                .with("target_position", o.position + signed)
                .with("position", o.position)
                .with("price", o.price)
                .with("equity", o.equity)
                .with("trading_state", self.state.as_str())
                .with("actor", actor)
                .with("reason", reason),
        );
        OrderIntent {
            client_order_id: ClientOrderId::for_intent(&trace_id, 1),
            trace_id,
            symbol: o.symbol,
            side: o.side,
            quantity: o.quantity,
            order_type: OrderType::Market,
            limit_price: None,
            reference_price: o.price,
            at: o.at,
            cancel_open: true,
            context: LogContext {
                portfolio_value: Some(o.equity),
                ..LogContext::default()
            },
        }
    }

    /// Sends the closing orders for `books`; see [`Flatten`].
    fn flatten(
        &mut self,
        books: Vec<Result<(SymbolId, BookSnapshot), MailboxError>>,
        msg: &Flatten,
    ) -> Result<String, CommandError> {
        let at = self.last_ts.unwrap_or_else(|| self.clock.now());
        let mut sent = Vec::new();
        for res in books {
            let (symbol, book) = res.map_err(|e| {
                CommandError::Unavailable(format!(
                    "the execution agent did not answer a book query: {e}"
                ))
            })?;
            if book.position.is_zero() {
                continue;
            }
            let side = if book.position.is_sign_positive() {
                Side::Sell
            } else {
                Side::Buy
            };
            let quantity = book.position.abs();
            let name = self.symbols.shared(symbol);
            let intent = self.market_order(
                ForcedOrder {
                    kind: "flatten",
                    symbol,
                    side,
                    quantity,
                    position: book.position,
                    price: book.mark,
                    equity: book.equity,
                    at,
                },
                msg.actor.clone(),
                format!("flatten: {}", msg.reason),
            );
            self.exec.intents.do_send(intent);
            sent.push(format!("{side} {quantity} {name}"));
        }
        Ok(if sent.is_empty() {
            format!("no open position; trading state {}", self.state)
        } else {
            format!(
                "closing order(s) sent: {}; trading state {}",
                sent.join(", "),
                self.state
            )
        })
    }

    /// Equity is beyond the drawdown control line: the first time, no new position from
    /// now on (reduce-only) and the first step; then a step per interval while it stays
    /// beyond. A step waits while trading is halted or the market is closed.
    fn on_drawdown(&mut self, r: &DrawdownReport) -> DrawdownAnswer {
        let cfg = self.cfg.drawdown_control;
        if r.arming != self.drawdown.arming {
            // Measured against a line an operator has since re-armed; the new one is on
            // its way to the Execution agent.
            return DrawdownAnswer {
                orders: Vec::new(),
                next: NextReport::AfterRearm,
            };
        }
        let ts = self.clock.stamp(r.at);
        let pct = |d: Decimal| format!("{}%", (d * Decimal::ONE_HUNDRED).round_dp(2).normalize());
        let mut actions = Vec::new();
        let first = self.drawdown.engaged.is_none();
        if first {
            self.drawdown.engaged = Some(Engaged {
                steps: 0,
                sizes: r
                    .positions
                    .iter()
                    .map(|p| (p.symbol, p.quantity.abs()))
                    .collect(),
            });
            let from = self.state;
            if from == TradingState::Active {
                self.change_state_at(
                    ts,
                    TradingState::ReduceOnly,
                    "drawdown_control".into(),
                    format!(
                        "drawdown {} from the equity peak {} is beyond the {} control line",
                        pct(r.drawdown),
                        r.peak.round_dp(2),
                        pct(cfg.line_pct)
                    ),
                );
                actions.push("trading state active -> reduce_only: no new position".to_string());
            } else {
                actions.push(format!("trading state stays {from}: no new position"));
            }
        }
        let blocked = if self.state == TradingState::Halted {
            Some("trading is halted (breaker): no order may go out until it is reset")
        } else if self.session_label() == "closed" {
            Some("the market is closed (schedule)")
        } else {
            None
        };
        let cuts = match (blocked, &self.drawdown.engaged) {
            (None, Some(e)) => {
                deleverage_step(cfg.step_pct, self.cfg.quantity_step, &e.sizes, &r.positions)
            }
            _ => Vec::new(),
        };
        let steps_total = if cfg.step_pct.is_zero() {
            0
        } else {
            (Decimal::ONE / cfg.step_pct)
                .ceil()
                .try_into()
                .unwrap_or(u64::MAX)
        };
        let mut orders = Vec::with_capacity(cuts.len());
        let mut sent = Vec::with_capacity(cuts.len());
        let step = match self.drawdown.engaged.as_mut() {
            Some(e) if !cuts.is_empty() => {
                e.steps += 1;
                e.steps
            }
            Some(e) => e.steps,
            None => 0,
        };
        for (symbol, side, quantity) in cuts {
            let (position, price) = r
                .positions
                .iter()
                .find(|p| p.symbol == symbol)
                .map_or((Decimal::ZERO, Decimal::ZERO), |p| (p.quantity, p.mark));
            let name = self.symbols.shared(symbol);
            sent.push(format!("{side} {quantity} {name}"));
            orders.push(self.market_order(
                ForcedOrder {
                    kind: "deleverage",
                    symbol,
                    side,
                    quantity,
                    position,
                    price,
                    equity: r.equity,
                    at: r.at,
                },
                "drawdown_control".into(),
                format!("deleverage step {step}"),
            ));
        }
        let next_at = vigil_core::later(r.at, vigil_core::seconds(cfg.step_interval_s));
        let next = if cfg.step_pct.is_zero() || r.positions.is_empty() {
            NextReport::AfterRearm
        } else {
            NextReport::NotBefore(next_at)
        };
        if !sent.is_empty() {
            actions.push(format!(
                "deleverage step {step} of {steps_total} ({} of each position at the line, market): {}",
                pct(cfg.step_pct),
                sent.join(", ")
            ));
        } else if let Some(why) = blocked {
            actions.push(format!("no deleveraging now: {why}"));
        } else if r.positions.is_empty() {
            actions.push("no open position to cut".into());
        } else if cfg.step_pct.is_zero() {
            actions.push("no deleveraging: risk.drawdown_control.step_pct is 0".into());
        }
        if let NextReport::NotBefore(t) = next {
            actions.push(format!(
                "next step no earlier than {} while the drawdown stays beyond the line",
                t.format("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
        let event = if first {
            Some(Event::DrawdownControlEngaged)
        } else if !sent.is_empty() {
            Some(Event::DeleverageStep)
        } else {
            None
        };
        if let Some(event) = event {
            self.log.emit(
                LogEvent::new(ts, SERVICE, event)
                    .with("drawdown", r.drawdown.round_dp(6))
                    .with("line", cfg.line_pct)
                    .with("day_pnl", r.day_pnl.round_dp(2))
                    .with("equity", r.equity.round_dp(2))
                    .with("peak_equity", r.peak.round_dp(2))
                    .with("gross_exposure", r.gross_exposure.round_dp(2))
                    .with("step", step)
                    .with("orders", sent.len())
                    .with("trading_state", self.state.as_str())
                    .with("actions", actions.join("; ")),
            );
        }
        DrawdownAnswer { orders, next }
    }

    /// Moves to `state`; returns false when it already held (commands are idempotent).
    fn change_state(&mut self, state: TradingState, actor: String, reason: String) -> bool {
        let now = self.clock.now();
        self.change_state_at(now, state, actor, reason)
    }

    /// [`Self::change_state`] logged at `now` (the market time of the bar that caused it).
    fn change_state_at(
        &mut self,
        now: Timestamp,
        state: TradingState,
        actor: String,
        reason: String,
    ) -> bool {
        let from = self.state;
        if let Some(hold) = &mut self.outage_hold {
            if from == TradingState::Halted && state != TradingState::Halted {
                // Reset meanwhile (an operator): the outage's halt is over.
                self.outage_hold = None;
            } else if state != TradingState::Active && !is_outage_actor(&actor) {
                hold.others.push(format!("{actor} ({reason})"));
            }
        }
        if from == state {
            return false; // idempotent: the state is already what was asked
        }
        self.state = state;
        // Before anything else: the Monitor reads it to know a trip found the breaker
        // tripped, even once this agent has stopped.
        self.halt.hold(state);
        let event = match (from, state) {
            (_, TradingState::Halted) => Event::BreakerTripped,
            (TradingState::Halted, _) => Event::BreakerReset,
            _ => Event::TradingStateChanged,
        };
        self.log.emit(
            LogEvent::new(now, SERVICE, event)
                .with("from", from.as_str())
                .with("to", state.as_str())
                .with("actor", actor.clone())
                .with("reason", reason.clone()),
        );
        if state == TradingState::Active && self.drawdown.engaged.take().is_some() {
            // The operator has seen the drawdown and set trading active: the line is
            // measured afresh from the equity at this moment.
            self.drawdown.arming += 1;
            self.exec.rearm.do_send(RearmDrawdown {
                arming: self.drawdown.arming,
            });
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::DrawdownControlRearmed)
                    .with("actor", actor.clone())
                    .with("reason", reason.clone())
                    .with("line", self.cfg.drawdown_control.line_pct),
            );
        }
        self.log.flush();
        if let Some(saved) = &self.saved {
            let record = TradingStateRecord {
                state,
                actor,
                reason,
                at: self.wall.now(),
            };
            if saved.send(record).is_err() {
                let error = "the trading state cannot be saved: its writer has stopped; \
                             a restart would not remember this change"
                    .to_string();
                self.log.emit(
                    LogEvent::new(now, SERVICE, Event::AgentFailed)
                        .level(Level::Critical)
                        .with("agent", "risk")
                        .with("error", error.clone()),
                );
                self.log.flush();
                self.faults.do_send(AgentFault {
                    agent: AgentId::Risk,
                    error,
                    fatal: false,
                });
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;
    use vigil_core::{Bar, Direction, Regime, SimClock, Symbol, SymbolId, TraceId};
    use vigil_log::{LogSink, MemoryLog, Value};
    use vigil_testkit::{
        Recorder, RecordingActor, logged, record_enum, text, timestamp as t, yield_until,
    };

    use super::*;

    record_enum! {
        /// What reached the fake Execution agent and the Monitor, in arrival order.
        #[derive(Debug)]
        enum Got {
            Segment(Segment),
            End(StopReason),
            Query(Queried),
            Intent(OrderIntent),
            Heartbeat(Heartbeat),
            Report(StageReport),
            Fault(AgentFault),
            Rearm(RearmDrawdown),
        }
        Flow<Segment> => Segment, End;
    }

    /// A book query the fake Execution agent answered, for the symbol asked about.
    #[derive(Message, Debug)]
    #[rtype(result = "()")]
    struct Queried(SymbolId);

    /// The Execution side of the conversation, in order, in short form.
    fn exec_trace(seen: &Recorder<Got>) -> Vec<String> {
        seen.filter_map(|g| match g {
            Got::Segment(s) => Some(format!(
                "segment {}:{}..{}{}",
                s.batch_id,
                s.range.start,
                s.range.end,
                if s.last { " last" } else { "" }
            )),
            Got::End(r) => Some(format!("end {}", r.as_str())),
            Got::Query(Queried(s)) => Some(format!("query {}", s.0)),
            Got::Intent(i) => Some(format!(
                "intent {} {} {}",
                i.client_order_id, i.side, i.quantity
            )),
            _ => None,
        })
    }

    /// Stands in for the Execution agent's book: answers book queries with a fixed book,
    /// and records each query through the recorder's mailbox, so that it stays in order
    /// with the segments sent before it and the intent sent after its answer.
    struct FakeBook {
        seen: Addr<RecordingActor<Got>>,
        book: BookSnapshot,
    }

    impl Actor for FakeBook {
        type Context = Context<Self>;
    }

    impl Handler<BookQuery> for FakeBook {
        type Result = MessageResult<BookQuery>;
        fn handle(&mut self, msg: BookQuery, _ctx: &mut Context<Self>) -> Self::Result {
            self.seen.do_send(Queried(msg.symbol));
            MessageResult(self.book.clone())
        }
    }

    /// An actor that stops as soon as it starts: an Execution agent that is gone.
    struct Gone;

    impl Actor for Gone {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    impl Handler<BookQuery> for Gone {
        type Result = MessageResult<BookQuery>;
        fn handle(&mut self, _msg: BookQuery, _ctx: &mut Context<Self>) -> Self::Result {
            unreachable!("a stopped actor handles nothing")
        }
    }

    fn day(d: usize) -> Timestamp {
        t("2024-01-01T00:00:00Z") + chrono::Duration::days(d as i64)
    }

    fn flat_book() -> BookSnapshot {
        BookSnapshot {
            cash: dec!(100000),
            equity: dec!(100000),
            gross_exposure: dec!(0),
            position: dec!(0),
            mark: dec!(100),
            open_orders: vec![],
        }
    }

    fn cfg() -> RiskConfig {
        RiskConfig {
            // 5% of 100,000 at 100 = 50 shares.
            position_pct: dec!(0.05),
            ..RiskConfig::default()
        }
    }

    /// `n` daily bars, all closing at 100.
    fn bars(first_day: usize, n: usize) -> Arc<Vec<Bar>> {
        Arc::new(
            (0..n)
                .map(|i| Bar {
                    symbol: SymbolId(0),
                    ts: day(first_day + i),
                    open: dec!(100),
                    high: dec!(101),
                    low: dec!(99),
                    close: dec!(100),
                    volume: Some(dec!(1000)),
                })
                .collect(),
        )
    }

    fn signal(bar: &Bar, direction: Direction) -> Signal {
        let trace_id = TraceId::for_signal("TEST", bar.ts);
        Signal {
            signal_id: trace_id.signal_id(),
            trace_id,
            symbol: bar.symbol,
            at: bar.ts,
            direction,
            strength: 0.5,
            reference_price: bar.close,
            regime: Regime::Trending,
            model_version: "ema_cross@1",
        }
    }

    fn batch(id: u64, bars: Arc<Vec<Bar>>, signals: &[(usize, Direction)]) -> Flow<SignalBatch> {
        let regimes: Arc<[Regime]> = vec![Regime::Trending; bars.len()].into();
        let signals = signals
            .iter()
            .map(|&(i, d)| (i, signal(&bars[i], d)))
            .collect();
        Flow::Data(SignalBatch {
            id,
            bars,
            regimes,
            signals,
            phases: Arc::from([]),
        })
    }

    struct Harness {
        addr: Addr<RiskAgent>,
        seen: Recorder<Got>,
        log: MemoryLog,
        /// The breaker's fast path, shared with the agent.
        halt: vigil_bus::HaltLatch,
    }

    fn start_with(book: Option<Recipient<BookQuery>>) -> Harness {
        let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        let (sink, log) = LogSink::memory();
        let seen = Recorder::new();
        // Stands in for the Execution agent's inputs and for the Monitor.
        let exec = seen.start_actor();
        let fake_book = FakeBook {
            seen: exec.clone(),
            book: flat_book(),
        }
        .start();
        let agent = RiskAgent::new(
            cfg(),
            OrderTypeConfig::Market,
            dec!(5),
            SymbolTable::new([Symbol::from("TEST")]),
            Arc::new(market),
            Arc::new(wall),
            Duration::from_secs(1),
            LogBuffer::new(sink, SERVICE, Level::Debug),
            ExecutionLinks {
                segments: exec.clone().recipient(),
                book: book.unwrap_or_else(|| fake_book.recipient()),
                intents: exec.clone().recipient(),
                rearm: exec.clone().recipient(),
            },
            exec.clone().recipient(),
            exec.clone().recipient(),
            exec.recipient(),
        );
        let halt = vigil_bus::HaltLatch::default();
        Harness {
            addr: agent.with_halt_latch(halt.clone()).start(),
            seen,
            log,
            halt,
        }
    }

    fn start() -> Harness {
        start_with(None)
    }

    async fn set_state(h: &Harness, state: TradingState, actor: &str, reason: &str) {
        h.addr
            .send(SetTradingState {
                state,
                actor: actor.into(),
                reason: reason.into(),
            })
            .await
            .expect("set trading state")
            .expect("the agent answers");
    }

    #[actix_rt::test]
    async fn a_signal_cuts_the_batch_into_segments_with_the_intent_between_them() {
        let h = start();
        yield_until("the agent posts its state", || h.halt.held().is_some()).await;
        assert_eq!(
            h.halt.held(),
            Some(TradingState::Active),
            "posted when it starts"
        );
        let bars = bars(0, 5);
        h.addr
            .do_send(batch(3, bars.clone(), &[(2, Direction::Long)]));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;

        let trace = TraceId::for_signal("TEST", bars[2].ts);
        assert_eq!(
            exec_trace(&h.seen),
            vec![
                "segment 3:0..3".to_string(),
                "query 0".into(),
                format!("intent {trace}-1 BUY 50"),
                "segment 3:3..5 last".into(),
                "end end_of_data".into(),
            ]
        );
        let intent = h.seen.all::<OrderIntent>().remove(0);
        assert_eq!(intent.trace_id, trace);
        assert_eq!(intent.client_order_id.as_str(), format!("{trace}-1"));
        assert_eq!(intent.symbol, SymbolId(0));
        assert_eq!(intent.side, Side::Buy);
        assert_eq!(intent.quantity, dec!(50));
        assert_eq!(intent.order_type, OrderType::Market);
        assert_eq!(intent.limit_price, None);
        assert_eq!(intent.reference_price, dec!(100));
        assert_eq!(intent.at, bars[2].ts);
        assert!(!intent.cancel_open);
        assert_eq!(intent.context.signal_id, Some(trace.signal_id()));
        assert_eq!(intent.context.regime, Some(Regime::Trending));
        assert_eq!(intent.context.portfolio_value, Some(dec!(100000)));
        h.seen.with(|got| {
            // Every segment shares the batch's bars.
            for g in got {
                if let Got::Segment(s) = g {
                    assert!(Arc::ptr_eq(&s.bars, &bars));
                }
            }
        });

        let approved = logged(&h.log, Event::RiskApproved);
        assert_eq!(approved.len(), 1);
        assert_eq!(approved[0].level, Level::Info);
        assert_eq!(approved[0].trace_id.as_ref(), Some(&trace));
        assert_eq!(approved[0].timestamp, bars[2].ts);
        assert_eq!(text(&approved[0], "side"), "BUY");
        assert_eq!(approved[0].get("quantity"), Some(&Value::Dec(dec!(50))));
        assert_eq!(text(&approved[0], "trading_state"), "active");
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Risk {
                approved: 1,
                rejected: 0,
                state: TradingState::Active
            }]
        ));
        h.seen.with(|got| {
            assert!(matches!(
                got.first(),
                Some(Got::Heartbeat(Heartbeat {
                    agent: AgentId::Risk,
                    state: AgentState::Running,
                    processed: 0,
                    ..
                }))
            ));
        });
    }

    #[actix_rt::test]
    async fn several_signals_are_decided_one_at_a_time_in_stream_order() {
        let h = start();
        let first = bars(0, 5);
        let second = bars(5, 3);
        h.addr.do_send(batch(
            0,
            first.clone(),
            &[(1, Direction::Long), (3, Direction::Short)],
        ));
        // A signal on a batch's last bar: the batch still ends with a `last` segment.
        h.addr
            .do_send(batch(1, second.clone(), &[(2, Direction::Long)]));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;

        let id = |b: &Bar| ClientOrderId::for_intent(&TraceId::for_signal("TEST", b.ts), 1);
        assert_eq!(
            exec_trace(&h.seen),
            vec![
                "segment 0:0..2".to_string(),
                "query 0".into(),
                format!("intent {} BUY 50", id(&first[1])),
                "segment 0:2..4".into(),
                "query 0".into(),
                // The fake book stays flat: short 50 from flat.
                format!("intent {} SELL 50", id(&first[3])),
                "segment 0:4..5 last".into(),
                "segment 1:0..3".into(),
                "query 0".into(),
                format!("intent {} BUY 50", id(&second[2])),
                "segment 1:3..3 last".into(),
                "end end_of_data".into(),
            ]
        );
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Risk {
                approved: 3,
                rejected: 0,
                ..
            }]
        ));
    }

    #[actix_rt::test]
    async fn halting_trips_the_breaker_and_the_next_signal_is_rejected_without_an_intent() {
        let h = start();
        set_state(&h, TradingState::Halted, "ops", "manual halt").await;
        let tripped = logged(&h.log, Event::BreakerTripped);
        assert_eq!(tripped.len(), 1);
        assert_eq!(tripped[0].level, Level::Critical);
        assert_eq!(text(&tripped[0], "from"), "active");
        assert_eq!(text(&tripped[0], "to"), "halted");
        assert_eq!(text(&tripped[0], "actor"), "ops");
        assert_eq!(text(&tripped[0], "reason"), "manual halt");

        let bars = bars(0, 4);
        h.addr
            .do_send(batch(0, bars.clone(), &[(1, Direction::Long)]));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;

        assert_eq!(
            exec_trace(&h.seen),
            vec![
                "segment 0:0..2",
                "query 0",
                "segment 0:2..4 last",
                "end end_of_data"
            ],
            "no intent while halted"
        );
        let rejected = logged(&h.log, Event::RiskRejected);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].level, Level::Warn);
        assert_eq!(
            rejected[0].trace_id.as_ref(),
            Some(&TraceId::for_signal("TEST", bars[1].ts))
        );
        let reason = text(&rejected[0], "reason");
        assert!(reason.contains("halted"), "{reason}");
        assert_eq!(text(&rejected[0], "trading_state"), "halted");
        assert!(logged(&h.log, Event::RiskApproved).is_empty());
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Risk {
                approved: 0,
                rejected: 1,
                state: TradingState::Halted
            }]
        ));
    }

    /// A data outage trips the breaker; a passing verification resets it, and the signal
    /// after that is approved. One decided during the outage is not.
    #[actix_rt::test]
    async fn a_data_outage_halts_until_the_verification_passes() {
        let h = start();
        let bars = bars(0, 6);
        h.addr.do_send(DataOutage {
            reason: "no data source is healthy (1 configured)".into(),
            operator_resumes: false,
        });
        h.addr
            .do_send(batch(0, bars.clone(), &[(1, Direction::Long)]));
        h.seen
            .wait_until("batch 0 handed on", |got| {
                got.iter()
                    .any(|g| matches!(g, Got::Segment(s) if s.batch_id == 0 && s.last))
            })
            .await;
        h.addr
            .send(DataVerified {
                passed: true,
                report: "the books agree with the venue's".into(),
            })
            .await
            .expect("verified");
        h.addr
            .do_send(batch(1, bars.clone(), &[(3, Direction::Long)]));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;

        let tripped = logged(&h.log, Event::BreakerTripped);
        assert_eq!(text(&tripped[0], "actor"), "data_outage");
        let reset = logged(&h.log, Event::BreakerReset);
        assert_eq!(reset.len(), 1);
        assert_eq!(text(&reset[0], "actor"), "data_verify");
        assert_eq!(text(&reset[0], "to"), "active");
        let verified = logged(&h.log, Event::DataVerified);
        assert_eq!(verified[0].level, Level::Info);
        assert_eq!(text(&verified[0], "action"), "trading resumes (active)");
        let approved: Vec<_> = logged(&h.log, Event::RiskApproved)
            .into_iter()
            .filter(|e| e.level == Level::Info)
            .collect();
        assert_eq!(approved.len(), 1);
        assert_eq!(
            approved[0].trace_id.as_ref(),
            Some(&TraceId::for_signal("TEST", bars[3].ts))
        );
    }

    /// The verification does not lift a halt anyone else asked for meanwhile, nor one the
    /// config leaves to an operator, nor after a failed check.
    #[actix_rt::test]
    async fn the_outage_halt_stays_when_another_halt_came_the_check_failed_or_an_operator_must_reset()
     {
        for (operator, other, passed, expect) in [
            (
                false,
                true,
                true,
                "also asked meanwhile by ops (runaway losses)",
            ),
            (true, false, true, "after_outage = \"operator\""),
            (
                false,
                false,
                false,
                "the breaker stays tripped: read the report",
            ),
        ] {
            let h = start();
            h.addr.do_send(DataOutage {
                reason: "no data source is healthy".into(),
                operator_resumes: operator,
            });
            if other {
                set_state(&h, TradingState::Halted, "ops", "runaway losses").await;
                // The Critical alert of the outage itself does not count as another halt.
                set_state(&h, TradingState::Halted, "alert:data_outage", "outage").await;
            }
            h.addr
                .send(DataVerified {
                    passed,
                    report: "2 difference(s) with the venue's books".into(),
                })
                .await
                .expect("verified");
            h.addr.do_send(Flow::End(StopReason::EndOfData));
            h.seen.wait_for::<StageReport>(1).await;
            assert!(logged(&h.log, Event::BreakerReset).is_empty(), "{expect}");
            let verified = logged(&h.log, Event::DataVerified);
            assert_eq!(verified[0].level, Level::Error);
            assert!(
                text(&verified[0], "action").contains(expect),
                "{verified:?}"
            );
            assert!(
                !text(&verified[0], "action").contains("alert:data_outage"),
                "{verified:?}"
            );
        }
    }

    /// While its symbol is in quarantine a signal makes no order; once released, it does.
    #[actix_rt::test]
    async fn a_quarantined_symbol_gets_no_new_order_until_released() {
        let h = start();
        let bars = bars(0, 6);
        let quarantine = |on: bool| QuarantineChanged {
            symbol: SymbolId(0),
            on,
            reason: "close 250 moved +110% from the previous 119 (bound 25%)".into(),
        };
        h.addr.do_send(quarantine(true));
        h.addr
            .do_send(batch(0, bars.clone(), &[(1, Direction::Long)]));
        // Applied when it arrives (a signal still queued then is decided under it).
        h.seen
            .wait_until("batch 0 handed on", |got| {
                got.iter()
                    .any(|g| matches!(g, Got::Segment(s) if s.batch_id == 0 && s.last))
            })
            .await;
        h.addr.do_send(quarantine(false));
        h.addr
            .do_send(batch(1, bars.clone(), &[(3, Direction::Long)]));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;

        let rejected = logged(&h.log, Event::RiskRejected);
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert_eq!(
            text(&rejected[0], "reason"),
            "symbol in quarantine (data anomaly): close 250 moved +110% from the previous 119 \
             (bound 25%)"
        );
        assert_eq!(
            rejected[0].trace_id.as_ref(),
            Some(&TraceId::for_signal("TEST", bars[1].ts))
        );
        let approved: Vec<_> = logged(&h.log, Event::RiskApproved)
            .into_iter()
            .filter(|e| e.level == Level::Info)
            .collect();
        assert_eq!(
            approved.len(),
            1,
            "the signal after the release is approved"
        );
        assert_eq!(
            approved[0].trace_id.as_ref(),
            Some(&TraceId::for_signal("TEST", bars[3].ts))
        );
    }

    #[actix_rt::test]
    async fn setting_the_same_trading_state_twice_logs_once() {
        let h = start();
        for _ in 0..2 {
            set_state(&h, TradingState::Halted, "ops", "halt").await;
        }
        for _ in 0..2 {
            set_state(&h, TradingState::Active, "ops", "all clear").await;
        }
        for _ in 0..2 {
            set_state(&h, TradingState::ReduceOnly, "rule", "drawdown").await;
        }
        let changes: Vec<(&str, String, String)> = h
            .log
            .events()
            .into_iter()
            .filter(|e| {
                matches!(
                    e.event,
                    Event::BreakerTripped | Event::BreakerReset | Event::TradingStateChanged
                )
            })
            .map(|e| (e.event.name(), text(&e, "from"), text(&e, "to")))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("breaker_tripped", "active".into(), "halted".into()),
                ("breaker_reset", "halted".into(), "active".into()),
                (
                    "trading_state_changed",
                    "active".into(),
                    "reduce_only".into()
                ),
            ]
        );
    }

    #[actix_rt::test]
    async fn a_failed_stream_halts_trading_before_the_stage_report() {
        let h = start();
        let error = "GOOG.csv:7: column 'close': cannot parse \"x\" as a decimal";
        h.addr.do_send(Flow::End(StopReason::Failed(error.into())));
        h.seen.wait_for::<StageReport>(1).await;
        // Posted where the Monitor reads it: a halt asked after the stop finds it tripped.
        assert_eq!(h.halt.held(), Some(TradingState::Halted));

        let tripped = logged(&h.log, Event::BreakerTripped);
        assert_eq!(tripped.len(), 1);
        assert_eq!(text(&tripped[0], "actor"), "risk_agent");
        assert_eq!(
            text(&tripped[0], "reason"),
            format!("market data stream failed: {error}")
        );
        let names = h.log.names();
        let at = |n: &str| names.iter().position(|x| *x == n).expect(n);
        assert!(at("breaker_tripped") < at("agent_stopped"), "{names:?}");
        let stopped = logged(&h.log, Event::AgentStopped);
        assert_eq!(text(&stopped[0], "trading_state"), "halted");
        assert_eq!(
            exec_trace(&h.seen),
            vec!["end failed"],
            "the end marker goes on to Execution"
        );
        h.seen.with(|got| {
            assert!(
                got.iter()
                    .any(|g| matches!(g, Got::End(StopReason::Failed(e)) if e == error))
            );
        });
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Risk {
                state: TradingState::Halted,
                ..
            }]
        ));
    }

    #[actix_rt::test]
    async fn a_failed_book_query_is_a_non_fatal_fault_and_no_intent_is_sent() {
        let gone = Gone.start();
        yield_until("the stand-in to stop", || !gone.connected()).await;
        assert!(!gone.connected(), "the stand-in stopped");
        let h = start_with(Some(gone.recipient()));
        h.addr
            .do_send(batch(0, bars(0, 3), &[(1, Direction::Long)]));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for::<StageReport>(1).await;

        assert!(h.seen.all::<OrderIntent>().is_empty());
        h.seen.with(|got| {
            let faults: Vec<&AgentFault> = got
                .iter()
                .filter_map(|g| match g {
                    Got::Fault(f) => Some(f),
                    _ => None,
                })
                .collect();
            assert_eq!(faults.len(), 1);
            assert_eq!(faults[0].agent, AgentId::Risk);
            assert!(!faults[0].fatal);
            assert!(
                faults[0]
                    .error
                    .starts_with("book query to execution agent failed for tx_"),
                "{}",
                faults[0].error
            );
        });
        let failed = logged(&h.log, Event::AgentFailed);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].level, Level::Error);
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Risk {
                approved: 0,
                rejected: 1,
                ..
            }]
        ));
    }

    fn report(arming: u64, d: usize, position: Decimal, equity: Decimal) -> DrawdownReport {
        DrawdownReport {
            arming,
            at: day(d),
            equity,
            peak: dec!(100000),
            drawdown: (dec!(100000) - equity) / dec!(100000),
            day_pnl: dec!(-1500),
            gross_exposure: position.abs() * dec!(90),
            positions: vec![vigil_bus::PositionView {
                symbol: SymbolId(0),
                quantity: position,
                mark: dec!(90),
            }],
        }
    }

    fn dec_of(ev: &LogEvent, key: &str) -> Decimal {
        match ev.get(key) {
            Some(Value::Dec(d)) => *d,
            other => panic!("{key} is not a decimal: {other:?}"),
        }
    }

    #[actix_rt::test]
    async fn the_drawdown_line_stops_new_positions_and_deleverages_in_steps_until_rearmed() {
        let h = start();
        // Past the 10% line: reduce-only, and a quarter of the 100 shares goes.
        let a = h
            .addr
            .send(report(0, 10, dec!(100), dec!(88000)))
            .await
            .expect("answer");
        let sells: Vec<_> = a.orders.iter().map(|o| (o.side, o.quantity)).collect();
        assert_eq!(sells, vec![(Side::Sell, dec!(25))]);
        assert_eq!(a.orders[0].order_type, OrderType::Market);
        assert!(
            a.orders[0].cancel_open,
            "a step replaces the symbol's open orders"
        );
        assert_eq!(a.next, NextReport::NotBefore(day(11)), "a step a day");
        let changed = logged(&h.log, Event::TradingStateChanged);
        assert_eq!(text(&changed[0], "to"), "reduce_only");
        assert_eq!(text(&changed[0], "actor"), "drawdown_control");
        let engaged = logged(&h.log, Event::DrawdownControlEngaged);
        assert_eq!(engaged.len(), 1);
        let e = &engaged[0];
        assert_eq!(e.level, Level::Critical);
        assert_eq!(e.timestamp, day(10));
        assert_eq!(dec_of(e, "drawdown"), dec!(0.12));
        assert_eq!(dec_of(e, "line"), dec!(0.10));
        assert_eq!(dec_of(e, "day_pnl"), dec!(-1500));
        assert_eq!(dec_of(e, "equity"), dec!(88000));
        let actions = text(e, "actions");
        for needle in [
            "active -> reduce_only",
            "step 1 of 4",
            "SELL 25 TEST",
            "next step no earlier than 2024-01-12",
        ] {
            assert!(actions.contains(needle), "{needle} not in {actions}");
        }

        // A signal to add is refused now.
        h.addr
            .do_send(batch(0, bars(10, 3), &[(1, Direction::Long)]));
        yield_until("the signal is decided", || {
            !logged(&h.log, Event::RiskRejected).is_empty()
        })
        .await;
        let rejected = logged(&h.log, Event::RiskRejected);
        assert!(text(&rejected[0], "reason").contains("reduce-only"));

        // The next step cuts a quarter of the size at the line again, not of what is left.
        let a = h
            .addr
            .send(report(0, 11, dec!(75), dec!(87000)))
            .await
            .expect("answer");
        assert_eq!(a.orders[0].quantity, dec!(25));
        let step = logged(&h.log, Event::DeleverageStep);
        assert_eq!(step.len(), 1);
        assert_eq!(step[0].level, Level::Warn);
        assert_eq!(step[0].get("step"), Some(&Value::U64(2)));
        assert_eq!(
            logged(&h.log, Event::DrawdownControlEngaged).len(),
            1,
            "engaged once"
        );

        // The operator sets trading active: the line is re-armed from the equity at hand,
        // and a report measured against the old line is answered with nothing.
        set_state(
            &h,
            TradingState::Active,
            "operator",
            "reviewed the drawdown",
        )
        .await;
        h.seen.wait_for::<RearmDrawdown>(1).await;
        assert_eq!(h.seen.all::<RearmDrawdown>()[0].arming, 1);
        let rearmed = logged(&h.log, Event::DrawdownControlRearmed);
        assert_eq!(text(&rearmed[0], "actor"), "operator");
        let a = h
            .addr
            .send(report(0, 12, dec!(50), dec!(86000)))
            .await
            .expect("answer");
        assert!(a.orders.is_empty());
        assert_eq!(a.next, NextReport::AfterRearm);
        // Beyond the re-armed line: engaged afresh, a quarter of the 50 held now.
        let a = h
            .addr
            .send(report(1, 20, dec!(50), dec!(77000)))
            .await
            .expect("answer");
        assert_eq!(
            a.orders[0].quantity,
            dec!(13),
            "12.5 rounded up to a whole share"
        );
        assert_eq!(logged(&h.log, Event::DrawdownControlEngaged).len(), 2);
    }

    #[actix_rt::test]
    async fn while_halted_the_line_engages_but_no_order_goes_out() {
        let h = start();
        set_state(&h, TradingState::Halted, "operator", "checking the venue").await;
        let a = h
            .addr
            .send(report(0, 10, dec!(100), dec!(88000)))
            .await
            .expect("answer");
        assert!(a.orders.is_empty());
        assert_eq!(
            a.next,
            NextReport::NotBefore(day(11)),
            "tried again a day later"
        );
        let engaged = logged(&h.log, Event::DrawdownControlEngaged);
        let actions = text(&engaged[0], "actions");
        assert!(actions.contains("stays halted"), "{actions}");
        assert!(
            actions.contains("no deleveraging now: trading is halted"),
            "{actions}"
        );
        // Still halted a day later: nothing more is logged.
        h.addr
            .send(report(0, 11, dec!(100), dec!(87000)))
            .await
            .expect("answer");
        assert!(logged(&h.log, Event::DeleverageStep).is_empty());
    }
}
