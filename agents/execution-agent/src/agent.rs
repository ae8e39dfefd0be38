//! The Execution agent actor: its state, wiring and message handlers. The work is done by
//! the components it owns ([`OrderBook`], [`JournalGateway`], [`VenueOutage`], the
//! reconciler of `vigil-recovery`) and by the sub-modules that do their I/O:
//! - `market_data`: bars to the venue, marks, business metrics, the drawdown control line;
//! - `orders`: intents to the venue and its answers, cancel-all;
//! - `reports`: the venue's fills, cancels and unfilled reports, booked and journaled;
//! - `rebuild`: the book read back from the venue after a crash;
//! - `reconciliation`: the venue as the source of truth during the session;
//! - `venue_outage`: orders held while the venue is unreachable.

use std::sync::Arc;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_config::RuleConfig;
use vigil_core::{
    AgentId, ExecutionReport, Level, Portfolio, SymbolId, SymbolTable, Timestamp, TraceId,
};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::{
    AgentCore, AgentWiring, BatchDone, BookQuery, BookSnapshot, CancelAll, CommandError,
    DrawdownReport, Flow, OrderIntent, Reachability, RearmDrawdown, Segment, StageReport,
    StopReason,
};
use vigil_monitoring::Transition;
use vigil_providers::{ExecutionVenue, VenueError};
use vigil_recovery::Reconciliation;
use vigil_store::{Journal, JournalEntry, JournalStatus};

use crate::business::BusinessWatch;
use crate::drawdown::DrawdownWatch;
use crate::journal_gateway::JournalGateway;
use crate::order_book::OrderBook;
use crate::venue_outage::VenueOutage;

mod health;
mod market_data;
mod orders;
mod rebuild;
mod reconciliation;
mod reports;
mod venue_outage;

pub use reconciliation::ReconcileLinks;
use reconciliation::Watch;

const SERVICE: &str = "execution_agent";

/// The Execution agent actor.
pub struct ExecutionAgent {
    venue: Arc<dyn ExecutionVenue>,
    venue_name: Arc<str>,
    portfolio: Portfolio,
    open: OrderBook,
    symbols: SymbolTable,
    core: AgentCore,
    data_ack: Recipient<BatchDone>,
    report_buf: Vec<ExecutionReport>,
    now_market: Option<Timestamp>,
    orders: u64,
    filled: u64,
    venue_rejects: u64,
    cancelled: u64,
    /// Times a bar left an open order nothing to take (zero volume, or its share spent).
    unfilled: u64,
    fills: u64,
    /// Business metrics and their rules (None with monitoring off).
    business: Option<BusinessWatch>,
    /// The day's equity curve, logged at the close for the day report.
    curve: crate::day_curve::DayCurve,
    transitions: Vec<Transition>,
    venue_link: Reachability,
    pinging: bool,
    slippage_sum_bps: f64,
    slippage_fills: u64,
    /// From a bar's arrival to the venue's answer to the order it decided.
    latency: crate::latency::DecisionLatency,
    /// The segment being handled: (batch, last segment), for a restart after a crash.
    in_hand: Option<(u64, bool)>,
    /// The drawdown control line's sensor, and the Risk agent that decides on a breach.
    drawdown: Option<(DrawdownWatch, Recipient<DrawdownReport>)>,
    /// The execution journal (write-ahead or queued).
    journal: JournalGateway,
    /// Bars at or before this time were handled by the previous run: they warm the models
    /// up upstream, and are neither booked nor shown to the venue here.
    resume_after: Option<Timestamp>,
    /// Reconciliation with the venue during the session, and the outage handling.
    watch: Option<Watch>,
    /// Where the verification after a data outage is answered (the Risk agent).
    verify_to: Option<Recipient<vigil_messages::DataVerified>>,
    /// Orders held while the venue is unreachable, and the outage under way.
    outage: VenueOutage,
    /// The book split by model version (a canary's sub-ledgers).
    ledgers: vigil_core::SubLedgers,
    /// The exchange day of the last bar, for the sub-ledgers' line at each day's end.
    ledger_day: crate::business::ExchangeDay,
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
    /// Creates the agent trading on `venue` with a book starting at `initial_cash`, wired
    /// by `wiring` and logging to `log`; batches are acknowledged to the Data agent through
    /// `data_ack`.
    pub fn new(
        venue: Arc<dyn ExecutionVenue>,
        initial_cash: Decimal,
        symbols: SymbolTable,
        wiring: AgentWiring,
        log: LogBuffer,
        data_ack: Recipient<BatchDone>,
    ) -> Self {
        Self {
            venue_name: Arc::from(venue.name()),
            venue,
            portfolio: Portfolio::new(initial_cash),
            open: OrderBook::default(),
            symbols,
            core: AgentCore::new(AgentId::Execution, wiring, log),
            data_ack,
            report_buf: Vec::new(),
            now_market: None,
            orders: 0,
            filled: 0,
            venue_rejects: 0,
            cancelled: 0,
            unfilled: 0,
            fills: 0,
            business: None,
            curve: crate::day_curve::DayCurve::default(),
            transitions: Vec::new(),
            venue_link: Reachability::default(),
            pinging: false,
            slippage_sum_bps: 0.0,
            slippage_fills: 0,
            latency: crate::latency::DecisionLatency::default(),
            in_hand: None,
            drawdown: None,
            journal: JournalGateway::default(),
            resume_after: None,
            watch: None,
            verify_to: None,
            outage: VenueOutage::default(),
            ledgers: vigil_core::SubLedgers::default(),
            ledger_day: crate::business::ExchangeDay::default(),
        }
    }

    /// Journals every intent, venue answer and fill, with the positions and cash they leave.
    /// With `write_ahead` (a venue that outlives this process), an intent is committed
    /// before the order goes to the venue; otherwise entries are queued and committed in
    /// groups (the in-process paper venue dies with the process anyway).
    pub fn with_journal(mut self, journal: Journal, write_ahead: bool) -> Self {
        self.journal = JournalGateway::new(journal, write_ahead);
        self
    }

    /// Starts from the book `rec` recovered from the venue: its cash, positions and open
    /// orders; bars up to the last one the previous run handled are skipped.
    pub fn with_recovered(mut self, rec: &Reconciliation) -> Self {
        self.portfolio = Portfolio::new(rec.cash);
        self.portfolio.resync(
            rec.cash,
            rec.positions
                .iter()
                .map(|p| (p.symbol, p.quantity, p.avg_price)),
        );
        for a in &rec.open_orders {
            let r = &a.order.request;
            let trace_id = a
                .trace_id
                .as_deref()
                .map(TraceId::from)
                .unwrap_or_else(|| TraceId::for_command("adopted", r.submitted_at));
            self.open.adopt(&a.order, trace_id, a.reference_price);
        }
        self.resume_after = rec.last_bar_at;
        if let Some(state) = &rec.ledgers {
            self.restore_ledgers(state, rec);
        }
        self
    }

    /// The sub-ledgers as the journal last held them, aligned with the recovered book
    /// (a difference, from a fill journaled before them or from reconciliation, is booked
    /// to production's at the mark, and the cash it really moved, its price against the
    /// mark and its commission, settled to production's too; both said).
    fn restore_ledgers(&mut self, state: &str, rec: &Reconciliation) {
        let ts = self.stamp();
        let mut ledgers: vigil_core::SubLedgers = match serde_json::from_str(state) {
            Ok(l) => l,
            Err(e) => {
                let error = format!(
                    "the journal's sub-ledgers of book {} cannot be read ({e}); they open \
                     again from the book, every position production's",
                    rec.book
                );
                self.core.log.emit(
                    LogEvent::new(ts, SERVICE, Event::SubLedgersRestored)
                        .level(Level::Error)
                        .with("book", rec.book.clone())
                        .with("error", error.clone()),
                );
                self.core.fault(error, false);
                return;
            }
        };
        let positions: Vec<(SymbolId, Decimal)> = rec
            .positions
            .iter()
            .map(|p| (p.symbol, p.quantity))
            .collect();
        let portfolio = &self.portfolio;
        let booked = ledgers.align(&positions, |s| {
            let m = portfolio.mark_price(s);
            if m.is_zero() {
                rec.positions
                    .iter()
                    .find(|p| p.symbol == s)
                    .map_or(Decimal::ZERO, |p| p.avg_price)
            } else {
                m
            }
        });
        // What the aligned difference really cost: the versions' P&L adds up to the
        // account's again.
        let settled = ledgers.settle(self.portfolio.cash());
        let versions = ledgers
            .books()
            .iter()
            .map(|b| b.version)
            .collect::<Vec<_>>()
            .join(" ");
        let mut line = LogEvent::new(ts, SERVICE, Event::SubLedgersRestored)
            .with("book", rec.book.clone())
            .with("versions", versions);
        if !booked.is_empty() {
            let text = booked
                .iter()
                .map(|(s, q)| format!("{}={q}", self.symbols.shared(*s)))
                .collect::<Vec<_>>()
                .join(" ");
            line = line.level(Level::Warn).with("aligned", text);
        }
        if !settled.is_zero() {
            line = line.level(Level::Warn).with("settled_cash", settled);
        }
        self.core.log.emit(line);
        self.ledgers = ledgers;
    }

    /// Journals the sub-ledgers when they are split (after a fill or a cross changed them).
    fn journal_ledgers(&mut self) {
        if !self.ledgers.split() || !self.journal.is_on() {
            return;
        }
        match serde_json::to_string(&self.ledgers) {
            Ok(state) => self.journal(JournalEntry::Ledgers { state }),
            Err(e) => self.fault(format!("sub-ledgers cannot be journaled: {e}")),
        }
    }

    /// Reports to `risk`, in band, every bar at which equity is more than `line` (a
    /// fraction) below its peak and a report is due (see [`DrawdownReport`]).
    pub fn with_drawdown_control(mut self, line: Decimal, risk: Recipient<DrawdownReport>) -> Self {
        self.drawdown = Some((DrawdownWatch::new(line), risk));
        self
    }

    /// Watches the business metrics (drawdowns, trade size, trading frequency) against
    /// `rules`, bar by bar on the market clock.
    pub fn with_business_rules(mut self, rules: &[RuleConfig], frequency_days: u32) -> Self {
        self.business = Some(BusinessWatch::new(rules, frequency_days));
        self
    }

    /// Queues `entry` in the journal, if there is one. A stopped writer is a fatal fault:
    /// nothing more could be recovered after a crash.
    fn journal(&mut self, entry: JournalEntry) {
        if let Err(e) = self.journal.append(entry) {
            self.fault_fatal(format!("journal: {e}"));
        }
    }

    fn journal_status(
        &mut self,
        id: &vigil_core::ClientOrderId,
        status: JournalStatus,
        venue_order_id: Option<Arc<str>>,
        filled_quantity: Option<Decimal>,
        reason: Option<&str>,
    ) {
        let journaled = self
            .journal
            .status(id, status, venue_order_id, filled_quantity, reason);
        if let Err(e) = journaled {
            self.fault_fatal(format!("journal: {e}"));
        }
    }

    fn log_transitions(&mut self) {
        if self.transitions.is_empty() {
            return;
        }
        // Stamped with the bar or fill that caused it, not the end of the batch.
        for t in self.transitions.drain(..) {
            self.core
                .log
                .emit(t.event(self.core.clock.stamp(t.at()), SERVICE));
        }
        self.core.log.flush();
    }

    fn stamp(&self) -> Timestamp {
        self.core.last_or_now(self.now_market)
    }

    fn book(&self, symbol: SymbolId) -> BookSnapshot {
        BookSnapshot {
            cash: self.portfolio.cash(),
            equity: self.portfolio.equity(),
            gross_exposure: self.portfolio.gross_exposure(),
            position: self.portfolio.position(symbol).quantity,
            mark: self.portfolio.mark_price(symbol),
            open_orders: self.open.views(symbol),
            ledgers: if self.ledgers.split() {
                self.ledgers
                    .books()
                    .iter()
                    .map(|b| (b.version, b.position(symbol)))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The `sub_ledgers` line: each version's book, and the account's P&L they add up to.
    fn ledgers_line(&self, ts: Timestamp) -> LogEvent {
        let books = self
            .ledgers
            .books()
            .iter()
            .map(|b| {
                let positions = b
                    .positions()
                    .map(|(i, q)| {
                        let name = u32::try_from(i)
                            .map_or_else(|_| "?".into(), |i| self.symbols.shared(SymbolId(i)));
                        format!("{name}={q}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                format!(
                    "{}: pnl={} drawdown={} max_drawdown={} fills={} slippage_bps={} \
                     positions=[{positions}]",
                    b.version,
                    b.pnl.round_dp(2),
                    b.drawdown().round_dp(2),
                    b.max_drawdown.round_dp(2),
                    b.fills,
                    b.slippage_bps()
                        .map_or_else(|| "-".to_string(), |s| format!("{s:.2}")),
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
        LogEvent::new(ts, SERVICE, Event::SubLedgers)
            .with(
                "account_pnl",
                (self.portfolio.equity() - self.ledgers.opened_equity).round_dp(2),
            )
            .with("ledgers", books)
    }

    /// Opens the sub-ledgers, when none is open yet, with the book's positions as
    /// `version`'s at their marks (P&L counts from here).
    fn seed_ledgers(&mut self, version: &'static str) {
        if !self.ledgers.books().is_empty() {
            return;
        }
        self.ledgers.open(version);
        for i in 0..self.symbols.len() {
            let Ok(i) = u32::try_from(i) else { break };
            let symbol = SymbolId(i);
            let qty = self.portfolio.position(symbol).quantity;
            if !qty.is_zero() {
                self.ledgers
                    .seed(version, symbol, qty, self.portfolio.mark_price(symbol));
            }
        }
        self.ledgers.opened_equity = self.portfolio.equity();
    }

    /// A fatal fault: logged at CRITICAL and reported; the Monitor halts trading.
    fn fault_fatal(&mut self, error: String) {
        self.report_fault(error, true);
    }

    /// A non-fatal fault: logged, and reported to the Monitor (counted, alerted).
    fn fault(&mut self, error: String) {
        self.report_fault(error, false);
    }

    fn report_fault(&mut self, error: String, fatal: bool) {
        let level = if fatal { Level::Critical } else { Level::Error };
        self.core.log.emit(
            LogEvent::new(self.stamp(), SERVICE, Event::AgentFailed)
                .level(level)
                .with("agent", "execution")
                .with("error", error.clone()),
        );
        self.core.log.flush();
        self.core.fault(error, fatal);
    }

    fn venue_error(&mut self, e: &VenueError, during: &'static str) {
        let ts = self.stamp();
        self.core.log.emit(
            LogEvent::new(ts, SERVICE, Event::VenueError)
                .with("venue", self.venue_name.clone())
                .with("during", during)
                .with("error", e.to_string()),
        );
        self.core
            .fault(format!("venue {during} failed: {e}"), false);
    }

    fn finish(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        let positions = self
            .portfolio
            .positions()
            .map(|(id, p)| (self.symbols.name(id).to_string(), p.quantity))
            .collect();
        if self.ledgers.split() {
            let line = self.ledgers_line(self.stamp());
            self.core.log.emit(line);
        }
        let decision_latency = match self.latency.summary() {
            Ok(summary) => summary,
            Err(e) => {
                self.core.fault(e, false);
                None
            }
        };
        let mut stop = self
            .core
            .stop_line(self.now_market, &reason)
            .with("orders", self.orders)
            .with("fills", self.fills)
            .with("open_orders", self.open.len())
            .with("equity", self.portfolio.equity());
        if let Some(l) = decision_latency {
            stop = stop
                .with("decision_latency_orders", l.count)
                .with("decision_latency_p50_us", (l.p50 * 1e6).round())
                .with("decision_latency_p99_us", (l.p99 * 1e6).round())
                .with("decision_latency_max_us", (l.max * 1e6).round());
        }
        // Our last line is handed to the writer before the Monitor can close the session.
        self.core.stopped(stop);
        self.core.report(StageReport::Execution {
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
            decision_latency,
        });
        ctx.stop();
    }
}

impl Actor for ExecutionAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.started(
            self.core
                .start_line()
                .with("venue", self.venue_name.clone())
                .with("initial_cash", self.portfolio.initial_cash()),
        );
        self.heartbeat(ctx);
        self.core.heartbeat_every(ctx, Self::heartbeat);
        self.start_watch(ctx);
    }
}

impl Supervised for ExecutionAgent {
    /// Rebuilds from the venue, not from memory; a batch the crash interrupted is
    /// acknowledged empty so that the Data agent's flow control continues.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.pinging = false;
        if let Some((batch, last)) = self.in_hand.take() {
            self.core.log.emit(vigil_messages::batch_dropped(
                self.stamp(),
                AgentId::Execution,
                batch,
            ));
            if last {
                self.core.backlogs.sent(AgentId::Data);
                self.data_ack.do_send(BatchDone {
                    id: batch,
                    bars: Arc::new(Vec::new()),
                });
            }
        }
        self.rebuild_from_venue(ctx);
    }
}

impl Handler<vigil_messages::VerifyData> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: vigil_messages::VerifyData, ctx: &mut Self::Context) {
        self.verify_data(msg, ctx);
    }
}

impl Handler<Flow<Segment>> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<Segment>, ctx: &mut Self::Context) {
        self.core.taken();
        match msg {
            Flow::Data(seg) => {
                let from = seg.range.start;
                self.run_segment(seg, from, ctx);
            }
            Flow::End(reason) => {
                // The last fills the venue holds are booked (and journaled) before the
                // final report; a venue that cannot answer is logged, the rest is
                // reconciled at the next start.
                let venue = self.venue.clone();
                let sync = async move { venue.sync_reports().await };
                ctx.wait(sync.into_actor(self).map(move |synced, act, ctx| {
                    if let Err(e) = synced {
                        act.venue_error(&e, "final sync");
                    }
                    act.drain_reports_then(ctx, move |act, ctx| act.finish(reason, ctx));
                }));
            }
        }
    }
}

impl Handler<vigil_messages::LedgerCross> for ExecutionAgent {
    type Result = ();

    /// A canary's opposite wants, crossed between the versions' sub-ledgers (in stream
    /// order: before the bar's intent).
    fn handle(&mut self, msg: vigil_messages::LedgerCross, _ctx: &mut Self::Context) {
        let ts = self.stamp();
        let symbol = self.symbols.shared(msg.symbol);
        if let Some((version, _)) = msg.moves.first() {
            self.seed_ledgers(version);
        }
        let moves = msg
            .moves
            .iter()
            .map(|(v, q)| format!("{v}={q}"))
            .collect::<Vec<_>>()
            .join(" ");
        match self.ledgers.cross(msg.symbol, msg.price, &msg.moves) {
            Ok(()) => {
                self.ledgers
                    .mark(msg.symbol, self.portfolio.mark_price(msg.symbol));
                self.core.log.emit(
                    LogEvent::new(ts, SERVICE, Event::LedgerCrossed)
                        .trace(&msg.trace_id)
                        .with("symbol", symbol)
                        .with("price", msg.price)
                        .with("moves", moves),
                );
            }
            Err(error) => {
                self.core.log.emit(
                    LogEvent::new(ts, SERVICE, Event::LedgerCrossFailed)
                        .trace(&msg.trace_id)
                        .with("symbol", symbol)
                        .with("error", error.clone()),
                );
                self.core.fault(format!("sub-ledgers: {error}"), false);
            }
        }
    }
}

impl Handler<RearmDrawdown> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: RearmDrawdown, _ctx: &mut Self::Context) {
        let equity = self.portfolio.equity();
        if let Some((w, _)) = self.drawdown.as_mut() {
            w.rearm(msg.arming, equity);
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
        let submit = self.submit(msg);
        // `wait`: the next segment must not reach the venue before this order has.
        ctx.wait(submit);
    }
}

impl Handler<CancelAll> for ExecutionAgent {
    type Result = ResponseActFuture<Self, Result<String, CommandError>>;

    /// Asks the venue to cancel every open order. The venue's cancel reports close the
    /// orders (as for any cancel); a cancel the venue refuses is logged and counted.
    fn handle(&mut self, msg: CancelAll, _ctx: &mut Self::Context) -> Self::Result {
        self.cancel_all(msg)
    }
}

vigil_messages::agent_skeleton!(ExecutionAgent, "execution");

#[cfg(test)]
mod tests;
