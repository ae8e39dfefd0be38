use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_bus::{
    AgentFault, BatchDone, BookQuery, BookSnapshot, Flow, Heartbeat, OpenOrderView, OrderIntent,
    Segment, StageReport, StopReason, run_every,
};
use vigil_core::{
    AgentId, AgentState, ClientOrderId, ExecutionReport, Fill, Level, OrderAck, OrderRequest,
    OrderStatus, Portfolio, SharedClock, Side, SymbolId, SymbolTable, Timestamp, TraceId,
};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};
use vigil_providers::{ExecutionVenue, VenueError};

const SERVICE: &str = "execution_agent";

#[derive(Debug)]
struct OrderRecord {
    trace_id: TraceId,
    symbol: SymbolId,
    side: Side,
    quantity: Decimal,
    filled: Decimal,
    notional: Decimal,
    status: OrderStatus,
    reference_price: Decimal,
    context: LogContext,
}

/// The Execution agent actor.
pub struct ExecutionAgent {
    venue: Arc<dyn ExecutionVenue>,
    venue_name: Arc<str>,
    portfolio: Portfolio,
    open: HashMap<ClientOrderId, OrderRecord>,
    symbols: SymbolTable,
    clock: SharedClock,
    wall: SharedClock,
    heartbeat_interval: Duration,
    log: LogBuffer,
    data_ack: Recipient<BatchDone>,
    monitor: Recipient<Heartbeat>,
    reports: Recipient<StageReport>,
    faults: Recipient<AgentFault>,
    report_buf: Vec<ExecutionReport>,
    state: AgentState,
    now_market: Option<Timestamp>,
    orders: u64,
    filled: u64,
    venue_rejects: u64,
    cancelled: u64,
    fills: u64,
}

impl std::fmt::Debug for ExecutionAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionAgent")
            .field("venue", &self.venue.name())
            .field("open_orders", &self.open.len())
            .field("equity", &self.portfolio.equity())
            .finish()
    }
}

impl ExecutionAgent {
    /// Creates the agent trading on `venue` with a book starting at `initial_cash`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        venue: Arc<dyn ExecutionVenue>,
        initial_cash: Decimal,
        symbols: SymbolTable,
        clock: SharedClock,
        wall: SharedClock,
        heartbeat_interval: Duration,
        log: LogBuffer,
        data_ack: Recipient<BatchDone>,
        monitor: Recipient<Heartbeat>,
        reports: Recipient<StageReport>,
        faults: Recipient<AgentFault>,
    ) -> Self {
        Self {
            venue_name: Arc::from(venue.name()),
            venue,
            portfolio: Portfolio::new(initial_cash),
            open: HashMap::new(),
            symbols,
            clock,
            wall,
            heartbeat_interval,
            log,
            data_ack,
            monitor,
            reports,
            faults,
            report_buf: Vec::new(),
            state: AgentState::Starting,
            now_market: None,
            orders: 0,
            filled: 0,
            venue_rejects: 0,
            cancelled: 0,
            fills: 0,
        }
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Execution,
            state: self.state,
            at: self.wall.now(),
            processed: self.orders,
        });
    }

    fn stamp(&self) -> Timestamp {
        match self.now_market {
            Some(t) => self.clock.stamp(t),
            None => self.clock.now(),
        }
    }

    fn on_segment(&mut self, seg: Segment) {
        let bars = &seg.bars[seg.range.clone()];
        for bar in bars {
            self.now_market = Some(bar.ts);
            self.venue.on_market_data(bar);
            // Fills come only for open orders; anything unexpected is still drained below.
            if !self.open.is_empty() {
                self.drain_reports();
            }
            self.portfolio.mark(bar.symbol, bar.close);
        }
        self.drain_reports();
        self.log.flush();
        if seg.last {
            self.data_ack.do_send(BatchDone {
                id: seg.batch_id,
                bars: seg.bars,
            });
        }
    }

    fn drain_reports(&mut self) {
        self.venue.drain_reports(&mut self.report_buf);
        if self.report_buf.is_empty() {
            return;
        }
        let reports = std::mem::take(&mut self.report_buf);
        for r in &reports {
            match r {
                ExecutionReport::Fill(fill) => self.on_fill(fill),
                ExecutionReport::Cancelled {
                    client_order_id,
                    reason,
                    ts,
                } => self.on_cancelled(client_order_id, reason, *ts),
            }
        }
        self.report_buf = reports;
        self.report_buf.clear();
    }

    fn on_fill(&mut self, fill: &Fill) {
        let ts = self.clock.stamp(fill.ts);
        let symbol = self.symbols.shared(fill.symbol);
        let Some(order) = self.open.get_mut(&fill.client_order_id) else {
            // A fill for an order this agent does not track: the book still takes it (the
            // venue is the source of truth), and a person must look.
            self.portfolio.apply_fill(fill);
            self.fills += 1;
            let error = format!(
                "fill {} for unknown order {} ({} {} {} at {})",
                fill.fill_id, fill.client_order_id, fill.side, fill.quantity, symbol, fill.price
            );
            self.log.emit(
                LogEvent::new(ts, SERVICE, Event::FillReceived)
                    .level(Level::Error)
                    .with("order_id", fill.client_order_id.shared())
                    .with("error", error.clone()),
            );
            self.faults.do_send(AgentFault {
                agent: AgentId::Execution,
                error,
                fatal: false,
            });
            return;
        };
        self.portfolio.apply_fill(fill);
        self.fills += 1;
        order.filled += fill.quantity;
        order.notional += fill.quantity * fill.price;
        // Execution quality: signed slippage against the price the decision used, in bps
        // (positive = worse than the reference).
        let slippage_bps = if order.reference_price.is_zero() {
            Decimal::ZERO
        } else {
            ((fill.price - order.reference_price) / order.reference_price
                * Decimal::from(10_000)
                * fill.side.sign())
            .round_dp(2)
        };
        let mut context = order.context.clone();
        context.portfolio_value = Some(self.portfolio.equity());
        self.log.emit(
            LogEvent::new(ts, SERVICE, Event::FillReceived)
                .trace(&order.trace_id)
                .with("symbol", symbol.clone())
                .with("side", fill.side.as_str())
                .with("quantity", fill.quantity)
                .with("price", fill.price)
                .with("commission", fill.commission)
                .with("leaves_quantity", fill.leaves_quantity)
                .with("order_id", fill.client_order_id.shared())
                .with("fill_id", fill.fill_id.clone())
                .with("slippage_bps", slippage_bps)
                .context(context.clone()),
        );
        if fill.leaves_quantity.is_zero() {
            order.status = OrderStatus::Filled;
            self.filled += 1;
            let avg = if order.filled.is_zero() {
                Decimal::ZERO
            } else {
                (order.notional / order.filled).round_dp(8)
            };
            self.log.emit(
                LogEvent::new(ts, SERVICE, Event::OrderFilled)
                    .trace(&order.trace_id)
                    .with("symbol", symbol)
                    .with("side", order.side.as_str())
                    .with("quantity", order.quantity)
                    .with("avg_price", avg)
                    .with("order_id", fill.client_order_id.shared())
                    .with("position", self.portfolio.position(fill.symbol).quantity)
                    .context(context),
            );
            self.open.remove(&fill.client_order_id);
        } else {
            order.status = OrderStatus::PartiallyFilled;
        }
    }

    fn on_cancelled(&mut self, id: &ClientOrderId, reason: &str, ts: Timestamp) {
        let ts = self.clock.stamp(ts);
        match self.open.remove(id) {
            Some(order) => {
                self.cancelled += 1;
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderCancelled)
                        .trace(&order.trace_id)
                        .with("symbol", self.symbols.shared(order.symbol))
                        .with("order_id", id.shared())
                        .with("filled_quantity", order.filled)
                        .with("reason", reason.to_string()),
                );
            }
            None => self.log.emit(
                LogEvent::new(ts, SERVICE, Event::OrderCancelled)
                    .level(Level::Warn)
                    .with("order_id", id.shared())
                    .with("reason", reason.to_string())
                    .with("note", "cancel report for an order not tracked as open"),
            ),
        }
    }

    fn book(&self, symbol: SymbolId) -> BookSnapshot {
        BookSnapshot {
            cash: self.portfolio.cash(),
            equity: self.portfolio.equity(),
            gross_exposure: self.portfolio.gross_exposure(),
            position: self.portfolio.position(symbol).quantity,
            mark: self.portfolio.mark_price(symbol),
            open_orders: self
                .open
                .iter()
                .filter(|(_, o)| o.symbol == symbol)
                .map(|(id, o)| OpenOrderView {
                    client_order_id: id.clone(),
                    symbol,
                    side: o.side,
                    leaves_quantity: o.quantity - o.filled,
                })
                .collect(),
        }
    }

    fn on_intent(&mut self, intent: OrderIntent, ctx: &mut Context<Self>) {
        self.now_market = Some(intent.at);
        let ts = self.stamp();
        let symbol = self.symbols.shared(intent.symbol);
        let cancels: Vec<ClientOrderId> = if intent.cancel_open {
            self.open
                .iter()
                .filter(|(_, o)| o.symbol == intent.symbol)
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            Vec::new()
        };
        for id in &cancels {
            self.log.emit(
                LogEvent::new(ts, SERVICE, Event::OrderCancelRequested)
                    .trace(&intent.trace_id)
                    .with("symbol", symbol.clone())
                    .with("order_id", id.shared())
                    .with("reason", "replaced by a newer intent"),
            );
        }
        let request = OrderRequest {
            client_order_id: intent.client_order_id.clone(),
            symbol: intent.symbol,
            side: intent.side,
            quantity: intent.quantity,
            order_type: intent.order_type,
            limit_price: intent.limit_price,
            submitted_at: intent.at,
        };
        self.orders += 1;
        let mut submitted = LogEvent::new(ts, SERVICE, Event::OrderSubmitted)
            .trace(&intent.trace_id)
            .with("symbol", symbol)
            .with("side", intent.side.as_str())
            .with("quantity", intent.quantity)
            .with("price", intent.reference_price)
            .with("order_type", intent.order_type.as_str())
            .with("order_id", intent.client_order_id.shared());
        if let Some(limit) = intent.limit_price {
            submitted = submitted.with("limit_price", limit);
        }
        self.log.emit(submitted.context(intent.context.clone()));
        self.open.insert(
            intent.client_order_id.clone(),
            OrderRecord {
                trace_id: intent.trace_id.clone(),
                symbol: intent.symbol,
                side: intent.side,
                quantity: intent.quantity,
                filled: Decimal::ZERO,
                notional: Decimal::ZERO,
                status: OrderStatus::New,
                reference_price: intent.reference_price,
                context: intent.context,
            },
        );
        let venue = self.venue.clone();
        let fut = async move {
            let mut cancel_errors = Vec::new();
            for id in cancels {
                if let Err(e) = venue.cancel_order(&id).await {
                    cancel_errors.push(e);
                }
            }
            let ack = venue.submit_order(&request).await;
            (request.client_order_id, cancel_errors, ack)
        };
        // `wait`: the next segment must not reach the venue before this order has.
        ctx.wait(
            fut.into_actor(self)
                .map(|(id, cancel_errors, ack), act, _ctx| {
                    for e in cancel_errors {
                        act.venue_error(&e, "cancel");
                    }
                    act.on_ack(&id, ack);
                    act.drain_reports();
                    act.log.flush();
                }),
        );
    }

    fn venue_error(&mut self, e: &VenueError, during: &'static str) {
        let ts = self.stamp();
        self.log.emit(
            LogEvent::new(ts, SERVICE, Event::VenueError)
                .with("venue", self.venue_name.clone())
                .with("during", during)
                .with("error", e.to_string()),
        );
        self.faults.do_send(AgentFault {
            agent: AgentId::Execution,
            error: format!("venue {during} failed: {e}"),
            fatal: false,
        });
    }

    fn on_ack(&mut self, id: &ClientOrderId, ack: Result<OrderAck, VenueError>) {
        let ts = self.stamp();
        let Some(order) = self.open.get_mut(id) else {
            return;
        };
        match ack {
            Ok(OrderAck::Accepted { venue_order_id }) => {
                if order.status == OrderStatus::New {
                    order.status = OrderStatus::Accepted;
                }
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderAccepted)
                        .trace(&order.trace_id)
                        .with("order_id", id.shared())
                        .with("venue_order_id", venue_order_id)
                        .with("venue", self.venue_name.clone()),
                );
            }
            Ok(OrderAck::Rejected { reason }) => {
                self.venue_rejects += 1;
                let trace = order.trace_id.clone();
                self.open.remove(id);
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderRejected)
                        .trace(&trace)
                        .with("order_id", id.shared())
                        .with("venue", self.venue_name.clone())
                        .with("reason", reason),
                );
            }
            Err(e) => {
                // Not sent, as far as vigil can tell. Recovery (a later stage) looks it up
                // by client order id before anything is resent.
                self.venue_rejects += 1;
                let trace = order.trace_id.clone();
                self.open.remove(id);
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderRejected)
                        .level(Level::Error)
                        .trace(&trace)
                        .with("order_id", id.shared())
                        .with("reason", format!("submission failed: {e}")),
                );
                self.venue_error(&e, "submit");
            }
        }
    }

    fn finish(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        self.state = AgentState::Stopped;
        let positions = self
            .portfolio
            .positions()
            .map(|(id, p)| (self.symbols.name(id).to_string(), p.quantity))
            .collect();
        let ts = self.stamp();
        self.log.emit(
            LogEvent::new(ts, SERVICE, Event::AgentStopped)
                .with("reason", reason.as_str().to_string())
                .with("orders", self.orders)
                .with("fills", self.fills)
                .with("open_orders", self.open.len())
                .with("equity", self.portfolio.equity()),
        );
        // Our last line is handed to the writer before the Monitor can close the session.
        self.log.flush();
        self.reports.do_send(StageReport::Execution {
            reason: reason.clone(),
            orders: self.orders,
            filled: self.filled,
            venue_rejects: self.venue_rejects,
            cancelled: self.cancelled,
            fills: self.fills,
            initial_cash: self.portfolio.initial_cash(),
            equity: self.portfolio.equity(),
            cash: self.portfolio.cash(),
            commissions: self.portfolio.commissions(),
            max_drawdown: self.portfolio.max_drawdown(),
            positions,
        });
        ctx.stop();
    }
}

impl Actor for ExecutionAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state = AgentState::Running;
        let ts = self.clock.now();
        self.log.emit(
            LogEvent::new(ts, SERVICE, Event::AgentStarted)
                .with("venue", self.venue_name.clone())
                .with("initial_cash", self.portfolio.initial_cash()),
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

impl Handler<Flow<Segment>> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<Segment>, ctx: &mut Self::Context) {
        match msg {
            Flow::Data(seg) => self.on_segment(seg),
            Flow::End(reason) => self.finish(reason, ctx),
        }
    }
}

impl Handler<BookQuery> for ExecutionAgent {
    type Result = MessageResult<BookQuery>;

    fn handle(&mut self, msg: BookQuery, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.book(msg.symbol))
    }
}

impl Handler<OrderIntent> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: OrderIntent, ctx: &mut Self::Context) {
        self.on_intent(msg, ctx);
    }
}
