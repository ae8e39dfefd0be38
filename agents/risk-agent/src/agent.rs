use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_bus::{
    AgentFault, BookQuery, BookSnapshot, Flow, Heartbeat, OrderIntent, Segment, SetTradingState,
    SignalBatch, StageReport, StopReason, run_every,
};
use vigil_config::{OrderTypeConfig, RiskConfig};
use vigil_core::{
    AgentId, AgentState, ClientOrderId, Level, OrderType, SharedClock, Side, Signal, SymbolTable,
    Timestamp, TradingState,
};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};

use crate::policy::{Decision, decide};

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
}

/// Work waiting in stream order.
#[derive(Debug)]
enum Pending {
    Batch {
        batch: SignalBatch,
        next_signal: usize,
        cursor: usize,
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
    waiting: bool,
    agent_state: AgentState,
    approved: u64,
    rejected: u64,
    last_ts: Option<Timestamp>,
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
            waiting: false,
            agent_state: AgentState::Starting,
            approved: 0,
            rejected: 0,
            last_ts: None,
        }
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Risk,
            state: self.agent_state,
            at: self.wall.now(),
            processed: self.approved + self.rejected,
        });
    }

    /// Works through the queue until it is empty or a book query is outstanding.
    fn process(&mut self, ctx: &mut Context<Self>) {
        while !self.waiting {
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
                } => {
                    let Some((idx, signal)) = batch.signals.get(*next_signal).cloned() else {
                        // No signal left: the rest of the batch goes out as its last segment.
                        self.exec.segments.do_send(Flow::Data(Segment {
                            batch_id: batch.id,
                            bars: batch.bars.clone(),
                            range: *cursor..batch.bars.len(),
                            last: true,
                        }));
                        self.last_ts = batch.bars.last().map(|b| b.ts).or(self.last_ts);
                        self.queue.pop_front();
                        continue;
                    };
                    // Bars up to and including the signal's bar reach Execution first.
                    self.exec.segments.do_send(Flow::Data(Segment {
                        batch_id: batch.id,
                        bars: batch.bars.clone(),
                        range: *cursor..idx + 1,
                        last: false,
                    }));
                    *cursor = idx + 1;
                    *next_signal += 1;
                    self.waiting = true;
                    let query = self.exec.book.send(BookQuery {
                        symbol: signal.symbol,
                    });
                    // `wait` holds this mailbox until the answer is in: decisions stay in
                    // stream order.
                    ctx.wait(query.into_actor(self).map(move |res, act, ctx| {
                        act.waiting = false;
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
        let decision = decide(
            &self.cfg,
            self.state,
            signal.direction,
            signal.reference_price,
            signal.regime,
            book,
        );
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
        self.exec.segments.do_send(Flow::End(reason.clone()));
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
        let now = self.clock.now();
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
    }
}

impl Handler<Flow<SignalBatch>> for RiskAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<SignalBatch>, ctx: &mut Self::Context) {
        self.queue.push_back(match msg {
            Flow::Data(batch) => Pending::Batch {
                batch,
                next_signal: 0,
                cursor: 0,
            },
            Flow::End(reason) => Pending::End(reason),
        });
        self.process(ctx);
    }
}

impl Handler<SetTradingState> for RiskAgent {
    type Result = ();

    fn handle(&mut self, msg: SetTradingState, _ctx: &mut Self::Context) {
        self.change_state(msg.state, msg.actor, msg.reason);
    }
}

impl RiskAgent {
    fn change_state(&mut self, state: TradingState, actor: String, reason: String) {
        let from = self.state;
        if from == state {
            return; // idempotent: the state is already what was asked
        }
        self.state = state;
        let now = self.clock.now();
        let event = match (from, state) {
            (_, TradingState::Halted) => Event::BreakerTripped,
            (TradingState::Halted, _) => Event::BreakerReset,
            _ => Event::TradingStateChanged,
        };
        self.log.emit(
            LogEvent::new(now, SERVICE, event)
                .with("from", from.as_str())
                .with("to", state.as_str())
                .with("actor", actor)
                .with("reason", reason),
        );
        self.log.flush();
    }
}
