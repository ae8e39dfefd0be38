use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_bus::{
    AgentFault, Backlogs, BatchDone, BookQuery, BookSnapshot, CancelAll, CommandError,
    DrawdownReport, Figures, Flow, Heartbeat, InjectPanic, NextReport, OpenOrderView, OrderIntent,
    Ping, PositionView, Reachability, RearmDrawdown, Segment, StageReport, StopReason, run_every,
};
use vigil_config::RuleConfig;
use vigil_monitoring::Transition;

use crate::business::BusinessWatch;
use crate::drawdown::{Breach, DrawdownWatch};
use vigil_calendar::Phase;
use vigil_core::{
    AgentId, AgentState, ClientOrderId, ExecutionReport, Fill, Level, OrderAck, OrderRequest,
    OrderStatus, Portfolio, SharedClock, Side, SymbolId, SymbolTable, Timestamp, TraceId,
};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent};
use vigil_providers::{ExecutionVenue, VenueError};
use vigil_store::{Journal, JournalEntry, JournalOrder, JournalStatus};

mod watch;

use watch::{Held, Outage, Watch};
pub use watch::{ReconcileLinks, reconciliation_events};

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
    /// Times a bar left an open order nothing to take (zero volume, or its share spent).
    unfilled: u64,
    fills: u64,
    /// Business metrics and their rules (None with monitoring off).
    business: Option<BusinessWatch>,
    transitions: Vec<Transition>,
    venue_link: Reachability,
    pinging: bool,
    slippage_sum_bps: f64,
    slippage_fills: u64,
    backlogs: Backlogs,
    /// The segment being handled: (batch, last segment), for a restart after a crash.
    in_hand: Option<(u64, bool)>,
    /// The drawdown control line's sensor, and the Risk agent that decides on a breach.
    drawdown: Option<(DrawdownWatch, Recipient<DrawdownReport>)>,
    /// The execution journal, and whether an intent must be committed before it is sent.
    journal: Option<(Journal, bool)>,
    /// Bars at or before this time were handled by the previous run: they warm the models
    /// up upstream, and are neither booked nor shown to the venue here.
    resume_after: Option<Timestamp>,
    /// Reconciliation with the venue during the session, and the outage handling.
    watch: Option<Watch>,
    /// Where the verification after a data outage is answered (the Risk agent).
    verify_to: Option<Recipient<vigil_bus::DataVerified>>,
    /// Orders held while the venue is unreachable, oldest first.
    held: Vec<Held>,
    /// The venue outage under way.
    outage: Option<Outage>,
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
            unfilled: 0,
            fills: 0,
            business: None,
            transitions: Vec::new(),
            venue_link: Reachability::default(),
            pinging: false,
            slippage_sum_bps: 0.0,
            slippage_fills: 0,
            backlogs: Backlogs::default(),
            in_hand: None,
            drawdown: None,
            journal: None,
            resume_after: None,
            watch: None,
            verify_to: None,
            held: Vec::new(),
            outage: None,
        }
    }

    /// Journals every intent, venue answer and fill, with the positions and cash they leave.
    /// With `write_ahead` (a venue that outlives this process), an intent is committed
    /// before the order goes to the venue; otherwise entries are queued and committed in
    /// groups (the in-process paper venue dies with the process anyway).
    pub fn with_journal(mut self, journal: Journal, write_ahead: bool) -> Self {
        self.journal = Some((journal, write_ahead));
        self
    }

    /// Queues `entry` in the journal, if there is one. A stopped writer is a fatal fault:
    /// nothing more could be recovered after a crash.
    fn journal(&mut self, entry: JournalEntry) {
        let Some((journal, _)) = &self.journal else {
            return;
        };
        if let Err(e) = journal.append(entry) {
            self.fault_fatal(format!("journal: {e}"));
        }
    }

    fn journal_status(
        &mut self,
        id: &ClientOrderId,
        status: JournalStatus,
        venue_order_id: Option<Arc<str>>,
        filled_quantity: Option<Decimal>,
        reason: Option<&str>,
    ) {
        if self.journal.is_none() {
            return;
        }
        self.journal(JournalEntry::Status {
            client_order_id: id.shared(),
            status,
            venue_order_id,
            filled_quantity,
            reason: reason.map(str::to_string),
        });
    }

    fn journal_fill(&mut self, fill: &Fill) {
        if self.journal.is_none() {
            return;
        }
        let entry = self.fill_entry(fill, &self.portfolio);
        self.journal(entry);
    }

    /// The journal entry of `fill`, with the position and cash `book` holds after it.
    fn fill_entry(&self, fill: &Fill, book: &Portfolio) -> JournalEntry {
        crate::recovery::fill_entry(fill, self.symbols.shared(fill.symbol), book)
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

    /// Counts this agent's mailbox and its acknowledgements to the Data agent in the
    /// session's backlogs.
    pub fn with_backlogs(mut self, backlogs: Backlogs) -> Self {
        self.backlogs = backlogs;
        self
    }

    fn log_transitions(&mut self) {
        if self.transitions.is_empty() {
            return;
        }
        // Stamped with the bar or fill that caused it, not the end of the batch.
        for t in self.transitions.drain(..) {
            self.log.emit(t.event(self.clock.stamp(t.at()), SERVICE));
        }
        self.log.flush();
    }

    /// Pings the venue off the order path and records the round trip.
    fn ping_venue(&mut self, ctx: &mut Context<Self>) {
        if self.pinging || self.state != AgentState::Running {
            return;
        }
        self.pinging = true;
        let venue = self.venue.clone();
        let wall = self.wall.clone();
        let fut = async move {
            let t0 = wall.now();
            let res = venue.ping().await;
            (res, wall.now() - t0)
        };
        ctx.spawn(fut.into_actor(self).map(|(res, took), act, _ctx| {
            act.pinging = false;
            let was_up = act.venue_link.up;
            match res {
                Ok(()) => {
                    act.venue_link.up = true;
                    act.venue_link.calls_ok += 1;
                    act.venue_link.error = None;
                    act.venue_link.latency_s =
                        Some(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                }
                Err(e) => {
                    act.venue_link.up = false;
                    act.venue_link.calls_failed += 1;
                    if was_up || act.venue_link.error.is_none() {
                        act.venue_error(&e, "ping");
                    }
                    act.venue_link.error = Some(e.to_string());
                }
            }
        }));
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Execution,
            state: self.state,
            at: self.wall.now(),
            processed: self.orders,
            figures: Figures::Execution {
                orders: self.orders,
                filled: self.filled,
                rejected: self.venue_rejects,
                cancelled: self.cancelled,
                unfilled: self.unfilled,
                open: self.open.len() as u64,
                fills: self.fills,
                slippage_bps: (self.slippage_fills > 0)
                    .then(|| self.slippage_sum_bps / self.slippage_fills as f64),
                equity: self.portfolio.equity(),
                venue: self.venue_link.clone(),
                business: self
                    .business
                    .as_ref()
                    .map(BusinessWatch::figures)
                    .unwrap_or_default(),
            },
        });
        self.ping_venue(ctx);
    }

    fn stamp(&self) -> Timestamp {
        match self.now_market {
            Some(t) => self.clock.stamp(t),
            None => self.clock.now(),
        }
    }

    /// Logs the book as it stands at the close: positions, cash, equity.
    fn snapshot(&mut self, at: Timestamp) {
        let positions = self
            .portfolio
            .positions()
            .map(|(id, p)| format!("{}={}", self.symbols.name(id), p.quantity))
            .collect::<Vec<_>>()
            .join(",");
        self.log.emit(
            LogEvent::new(self.clock.stamp(at), SERVICE, Event::PositionsSnapshot)
                .with("positions", positions)
                .with("cash", self.portfolio.cash())
                .with("equity", self.portfolio.equity())
                .with("pnl", self.portfolio.pnl())
                .with("open_orders", self.open.len()),
        );
    }

    /// Handles `seg` from bar `from` on. A bar beyond the drawdown control line hands the
    /// rest to [`Self::report_drawdown`], which goes on after the Risk agent's answer; fills
    /// waiting for their journal commit (write-ahead) hand the rest of the bar to
    /// [`Self::after_market_data`] once it is durable.
    fn run_segment(&mut self, mut seg: Segment, from: usize, ctx: &mut Context<Self>) {
        self.in_hand = Some((seg.batch_id, seg.last));
        let bars = seg.bars.clone();
        for (i, bar) in bars.iter().enumerate().take(seg.range.end).skip(from) {
            if self.resume_after.is_some_and(|t| bar.ts <= t) {
                continue;
            }
            // Phases are rare: most batches carry none.
            for mark in seg.phases.iter().filter(|m| m.before == i) {
                if mark.phase == Phase::FinalSnapshot {
                    self.snapshot(mark.at);
                }
            }
            self.now_market = Some(bar.ts);
            self.venue.on_market_data(bar);
            // Fills come only for open orders; anything unexpected is still drained below.
            if !self.open.is_empty() {
                if let Some(commit) = self.take_reports() {
                    ctx.wait(commit.into_actor(self).map(move |committed, act, ctx| {
                        act.book_committed(committed);
                        if let Some(seg) = act.after_market_data(seg, i, ctx) {
                            act.run_segment(seg, i + 1, ctx);
                        }
                    }));
                    return;
                }
                self.book_reports(false);
            }
            match self.after_market_data(seg, i, ctx) {
                Some(s) => seg = s,
                None => return,
            }
        }
        self.drain_reports_then(ctx, move |act, _| act.end_segment(seg));
    }

    /// The rest of bar `i` once the venue's reports are booked: marks, business metrics,
    /// the drawdown control line. Gives `seg` back unless the drawdown report took it.
    fn after_market_data(
        &mut self,
        seg: Segment,
        i: usize,
        ctx: &mut Context<Self>,
    ) -> Option<Segment> {
        let bar = &seg.bars[i];
        let (ts, symbol, close) = (bar.ts, bar.symbol, bar.close);
        self.portfolio.mark(symbol, close);
        let equity = self.portfolio.equity();
        if let Some(b) = &mut self.business {
            b.on_bar(ts, equity, &mut self.transitions);
        }
        if let Some((breach, risk)) = self
            .drawdown
            .as_mut()
            .and_then(|(w, risk)| w.on_bar(ts, equity).map(|b| (b, risk.clone())))
        {
            self.report_drawdown(breach, risk, ts, seg, i + 1, ctx);
            return None;
        }
        Some(seg)
    }

    /// `seg` is handled: marks it in the journal, acknowledges its batch when it is the last.
    fn end_segment(&mut self, seg: Segment) {
        self.mark_handled(&seg);
        self.log_transitions();
        self.log.flush();
        self.in_hand = None;
        if seg.last {
            self.backlogs.sent(AgentId::Data);
            self.data_ack.do_send(BatchDone {
                id: seg.batch_id,
                bars: seg.bars,
            });
        }
    }

    /// Equity is beyond the drawdown control line after the bar at `at`: asks the Risk
    /// agent, holding this mailbox until it answers, sends the orders it answers with, then
    /// goes on with `seg` from bar `resume`. The orders thus reach the venue before the
    /// next bar, as a signal's do.
    fn report_drawdown(
        &mut self,
        breach: Breach,
        risk: Recipient<DrawdownReport>,
        at: Timestamp,
        seg: Segment,
        resume: usize,
        ctx: &mut Context<Self>,
    ) {
        self.drain_reports_then(ctx, move |act, ctx| {
            act.ask_risk(breach, &risk, at, seg, resume, ctx);
        });
    }

    /// [`Self::report_drawdown`] once the venue's reports are booked.
    fn ask_risk(
        &mut self,
        breach: Breach,
        risk: &Recipient<DrawdownReport>,
        at: Timestamp,
        seg: Segment,
        resume: usize,
        ctx: &mut Context<Self>,
    ) {
        self.log_transitions();
        self.log.flush();
        let report = DrawdownReport {
            arming: breach.arming,
            at,
            equity: self.portfolio.equity(),
            peak: breach.peak,
            drawdown: breach.drawdown,
            day_pnl: breach.day_pnl,
            gross_exposure: self.portfolio.gross_exposure(),
            positions: self
                .portfolio
                .positions()
                .filter(|(_, p)| !p.quantity.is_zero())
                .map(|(symbol, p)| PositionView {
                    symbol,
                    quantity: p.quantity,
                    mark: self.portfolio.mark_price(symbol),
                })
                .collect(),
        };
        let ask = risk.send(report);
        ctx.wait(ask.into_actor(self).then(move |answer, act, _ctx| {
            let orders = match answer {
                Ok(answer) => {
                    if let Some((w, _)) = act.drawdown.as_mut() {
                        w.answered(answer.next);
                    }
                    answer.orders
                }
                Err(e) => {
                    // Asked again at the next bar beyond the line.
                    if let Some((w, _)) = act.drawdown.as_mut() {
                        w.answered(NextReport::NotBefore(at));
                    }
                    act.fault(format!(
                        "the risk agent did not answer the drawdown report at {at}: {e}; \
                         asked again at the next bar beyond the control line"
                    ));
                    Vec::new()
                }
            };
            // One after the other, in the answer's order, each reaching the venue before
            // the next; then the rest of the segment.
            let mut chain: std::pin::Pin<Box<dyn ActorFuture<Self, Output = ()>>> =
                Box::pin(fut::ready(()));
            for order in orders {
                let submit = act.submit(order);
                chain = Box::pin(chain.then(move |(), _, _| submit));
            }
            chain.map(move |(), act, ctx| act.run_segment(seg, resume, ctx))
        }));
    }

    /// After a crash: reads positions, cash and open orders back from the venue (the
    /// source of truth) before the next message. Reports the crashed run had not read are
    /// logged and close their orders, but are not booked twice: the venue's figures hold
    /// them. A venue that cannot answer leaves a book nobody can trust: a fatal fault, so
    /// the Monitor halts trading.
    fn rebuild_from_venue(&mut self, ctx: &mut Context<Self>) {
        self.venue.drain_reports(&mut self.report_buf);
        let unread = std::mem::take(&mut self.report_buf);
        let venue = self.venue.clone();
        let fut = async move {
            let positions = venue.positions().await;
            let account = venue.account().await;
            let open = venue.open_orders().await;
            (positions, account, open)
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, _ctx| {
            let ts = act.stamp();
            let (positions, account, open) = match res {
                (Ok(p), Ok(a), Ok(o)) => (p, a, o),
                (p, a, o) => {
                    let error = [p.err(), a.err(), o.err()]
                        .into_iter()
                        .flatten()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let error = format!(
                        "restarted, but the book cannot be rebuilt from the venue: {error}"
                    );
                    act.log.emit(
                        LogEvent::new(ts, SERVICE, Event::AgentFailed)
                            .level(Level::Critical)
                            .with("agent", "execution")
                            .with("error", error.clone()),
                    );
                    act.log.flush();
                    act.faults.do_send(AgentFault {
                        agent: AgentId::Execution,
                        error,
                        fatal: true,
                    });
                    return;
                }
            };
            for r in &unread {
                match r {
                    ExecutionReport::Fill(fill) => act.on_fill(fill, false, false),
                    ExecutionReport::Cancelled {
                        client_order_id,
                        reason,
                        ts,
                    } => act.on_cancelled(client_order_id, reason, *ts),
                    ExecutionReport::Unfilled {
                        client_order_id,
                        reason,
                        ts,
                    } => act.on_unfilled(client_order_id, reason, *ts),
                }
            }
            let differs = act.portfolio.resync(
                account.cash,
                positions
                    .iter()
                    .map(|p| (p.symbol, p.quantity, p.avg_price)),
            );
            let at_venue: std::collections::HashSet<&ClientOrderId> =
                open.iter().map(|o| &o.request.client_order_id).collect();
            let gone: Vec<ClientOrderId> = act
                .open
                .keys()
                .filter(|id| !at_venue.contains(id))
                .cloned()
                .collect();
            for id in &gone {
                act.open.remove(id);
            }
            let mut adopted = 0;
            for o in &open {
                let r = &o.request;
                if act.open.contains_key(&r.client_order_id) {
                    continue;
                }
                adopted += 1;
                act.open.insert(
                    r.client_order_id.clone(),
                    OrderRecord {
                        trace_id: TraceId::for_command("adopted", r.submitted_at),
                        symbol: r.symbol,
                        side: r.side,
                        quantity: r.quantity,
                        filled: o.filled_quantity,
                        notional: Decimal::ZERO,
                        status: o.status,
                        reference_price: r.limit_price.unwrap_or_default(),
                        context: LogContext::default(),
                    },
                );
            }
            let differs: Vec<String> = differs
                .iter()
                .map(|id| act.symbols.name(*id).to_string())
                .collect();
            act.log.emit(
                LogEvent::new(ts, SERVICE, Event::AgentRebuilt)
                    .with("agent", "execution")
                    .with(
                        "rebuilt",
                        format!("book, cash and open orders from venue {}", act.venue_name),
                    )
                    .with("positions", positions.len())
                    .with("cash", act.portfolio.cash())
                    .with("equity", act.portfolio.equity())
                    .with("open_orders", act.open.len())
                    .with("orders_no_longer_open", gone.len())
                    .with("orders_adopted", adopted as u64)
                    .with("unread_reports", unread.len())
                    .with("positions_that_differed", differs.join(",")),
            );
            act.log.flush();
        }));
    }

    /// Books the venue's reports, then calls `then`. Under write-ahead, fills are committed
    /// to the journal first, each with the position and cash it leaves, and booked only once
    /// durable: the mailbox waits for the commit meanwhile.
    fn drain_reports_then(
        &mut self,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        match self.take_reports() {
            None => {
                self.book_reports(false);
                then(self, ctx);
            }
            Some(commit) => ctx.wait(commit.into_actor(self).map(move |committed, act, ctx| {
                act.book_committed(committed);
                act.log.flush();
                then(act, ctx);
            })),
        }
    }

    /// Books the reports whose fills' journal commit came back as `committed`.
    fn book_committed(&mut self, committed: Result<(), String>) {
        let journaled = match committed {
            Ok(()) => true,
            Err(e) => {
                // The venue filled them all the same: booked, and queued again with the
                // book (the failed transaction left none of them); trading halts.
                self.fault_fatal(format!(
                    "journal: fills not committed before booking them: {e}"
                ));
                false
            }
        };
        self.book_reports(journaled);
    }

    /// Books the venue's reports now (nothing follows that depends on them).
    fn drain_reports(&mut self, ctx: &mut Context<Self>) {
        self.drain_reports_then(ctx, |_, _| ());
    }

    /// Takes the venue's reports into `report_buf`. Under write-ahead, when they hold
    /// fills, queues each fill with the position and cash it will leave and returns the
    /// commit of the last (the writer commits in order: the earlier ones are durable then).
    fn take_reports(
        &mut self,
    ) -> Option<impl std::future::Future<Output = Result<(), String>> + use<>> {
        self.venue.drain_reports(&mut self.report_buf);
        if !matches!(self.journal, Some((_, true))) {
            return None;
        }
        let mut book: Option<Portfolio> = None;
        let mut entries = Vec::new();
        for r in &self.report_buf {
            if let ExecutionReport::Fill(fill) = r {
                // Booked below exactly as `on_fill` books it.
                let book = book.get_or_insert_with(|| self.portfolio.clone());
                book.apply_fill(fill);
                entries.push(self.fill_entry(fill, book));
            }
        }
        let last = entries.pop()?;
        let Some((journal, _)) = &self.journal else {
            return None;
        };
        let queued: Result<(), _> = entries.into_iter().try_for_each(|e| journal.append(e));
        let commit = journal.append_durable(last);
        if let Err(e) = queued {
            self.fault_fatal(format!("journal: {e}"));
        }
        Some(commit)
    }

    /// Books the reports in `report_buf`; `journaled`: their fills are in the journal
    /// already (write-ahead).
    fn book_reports(&mut self, journaled: bool) {
        if self.report_buf.is_empty() {
            return;
        }
        let reports = std::mem::take(&mut self.report_buf);
        for r in &reports {
            match r {
                ExecutionReport::Fill(fill) => self.on_fill(fill, true, journaled),
                ExecutionReport::Cancelled {
                    client_order_id,
                    reason,
                    ts,
                } => self.on_cancelled(client_order_id, reason, *ts),
                ExecutionReport::Unfilled {
                    client_order_id,
                    reason,
                    ts,
                } => self.on_unfilled(client_order_id, reason, *ts),
            }
        }
        self.report_buf = reports;
        self.report_buf.clear();
    }

    /// Books a fill; with `book` false (a fill the venue's positions and cash already hold,
    /// read back after a restart) it only closes the order and is logged. `journaled`: it
    /// was committed before (write-ahead), so it is not queued again.
    fn on_fill(&mut self, fill: &Fill, book: bool, journaled: bool) {
        if let Some(b) = self.business.as_mut().filter(|_| book) {
            let before = self.portfolio.position(fill.symbol).quantity;
            let after = before + fill.quantity * fill.side.sign();
            b.on_fill(
                fill.ts,
                before,
                after,
                fill.price,
                self.portfolio.equity(),
                &mut self.transitions,
            );
        }
        let ts = self.clock.stamp(fill.ts);
        let symbol = self.symbols.shared(fill.symbol);
        let Some(order) = self.open.get_mut(&fill.client_order_id) else {
            // A fill for an order this agent does not track: the book still takes it (the
            // venue is the source of truth), and a person must look.
            if book {
                self.portfolio.apply_fill(fill);
            }
            if !journaled {
                self.journal_fill(fill);
            }
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
            self.external_fill(fill);
            return;
        };
        if book {
            self.portfolio.apply_fill(fill);
        }
        self.fills += 1;
        order.filled += fill.quantity;
        let filled = order.filled;
        // Journaled with the position it leaves; the order is borrowed again after (nothing
        // in between removes it).
        if !journaled {
            self.journal_fill(fill);
        }
        let Some(order) = self.open.get_mut(&fill.client_order_id) else {
            return;
        };
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
        if let Some(bps) = rust_decimal::prelude::ToPrimitive::to_f64(&slippage_bps) {
            self.slippage_sum_bps += bps;
            self.slippage_fills += 1;
        }
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
            self.journal_status(
                &fill.client_order_id,
                JournalStatus::Filled,
                None,
                Some(filled),
                None,
            );
        } else {
            order.status = OrderStatus::PartiallyFilled;
            self.journal_status(
                &fill.client_order_id,
                JournalStatus::PartiallyFilled,
                None,
                Some(filled),
                None,
            );
        }
    }

    fn on_cancelled(&mut self, id: &ClientOrderId, reason: &str, ts: Timestamp) {
        let ts = self.clock.stamp(ts);
        match self.open.remove(id) {
            Some(order) => {
                self.cancelled += 1;
                self.journal_status(
                    id,
                    JournalStatus::Cancelled,
                    None,
                    Some(order.filled),
                    Some(reason),
                );
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

    /// A bar reached the order's price but the venue had no volume left to fill it: the
    /// order stays open, and the log says why (never a silent wait).
    fn on_unfilled(&mut self, id: &ClientOrderId, reason: &str, ts: Timestamp) {
        let ts = self.clock.stamp(ts);
        self.unfilled += 1;
        let mut ev = LogEvent::new(ts, SERVICE, Event::OrderUnfilled)
            .with("order_id", id.shared())
            .with("reason", reason.to_string());
        if let Some(order) = self.open.get(id) {
            ev = ev
                .trace(&order.trace_id)
                .with("symbol", self.symbols.shared(order.symbol))
                .with("leaves_quantity", order.quantity - order.filled);
        }
        self.log.emit(ev);
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
        let submit = self.submit(intent);
        // `wait`: the next segment must not reach the venue before this order has.
        ctx.wait(submit);
    }

    /// Books `intent` as an open order and returns the venue calls (cancels of the orders
    /// it replaces, then the order) with their outcome's handling.
    fn submit(&mut self, intent: OrderIntent) -> impl ActorFuture<Self, Output = ()> + 'static {
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
        let intent_order = JournalOrder {
            client_order_id: intent.client_order_id.shared(),
            trace_id: intent.trace_id.as_str().into(),
            symbol: symbol.clone(),
            side: intent.side,
            quantity: intent.quantity,
            order_type: intent.order_type,
            limit_price: intent.limit_price,
            reference_price: intent.reference_price,
            decided_at: intent.at,
        };
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
        let commit = self.journal_intent(intent_order);
        let venue = self.venue.clone();
        let calls = cancels.len() as u64 + 1;
        // The venue is down: the order waits (journaled) for it to come back.
        let hold = self.outage.is_some();
        let fut = async move {
            // Write-ahead: not a word to the venue before the intent is durable.
            if let Some(commit) = commit
                && let Err(e) = commit.await
            {
                return (request, cancels, Vec::new(), Err(e));
            }
            if hold {
                return (request, cancels, Vec::new(), Ok(None));
            }
            let mut cancel_errors = Vec::new();
            for id in &cancels {
                if let Err(e) = venue.cancel_order(id).await {
                    cancel_errors.push(e);
                }
            }
            let ack = venue.submit_order(&request).await;
            (request, cancels, cancel_errors, Ok(Some(ack)))
        };
        fut.into_actor(self)
            .map(move |(request, cancels, cancel_errors, ack), act, ctx| {
                let id = request.client_order_id.clone();
                let ack = match ack {
                    Ok(Some(ack)) => ack,
                    Ok(None) => {
                        act.hold(request, cancels, false);
                        return;
                    }
                    Err(journal_error) => {
                        act.not_journaled(&id, journal_error);
                        return;
                    }
                };
                let failed = cancel_errors.len() as u64 + u64::from(ack.is_err());
                act.venue_link.calls_failed += failed;
                act.venue_link.calls_ok += calls - failed;
                for e in &cancel_errors {
                    act.venue_error(e, "cancel");
                }
                if let Err(e @ VenueError::Unreachable { .. }) = &ack
                    && act.watch.is_some()
                {
                    // Held, journaled as an intent, and tried again when the venue answers
                    // (looked up by its client order id first: never sent twice).
                    act.venue_error(e, "submit");
                    act.hold(request, cancels, true);
                    act.begin_outage(e, ctx);
                    return;
                }
                act.on_ack(&id, ack);
                act.drain_reports(ctx);
                act.log.flush();
            })
    }

    /// Journals `intent`; with write-ahead, returns the commit to wait for before sending.
    fn journal_intent(
        &mut self,
        intent: JournalOrder,
    ) -> Option<impl std::future::Future<Output = Result<(), String>> + use<>> {
        let entry = JournalEntry::Intent(intent);
        match &self.journal {
            Some((journal, true)) => Some(journal.append_durable(entry)),
            Some((_, false)) => {
                self.journal(entry);
                None
            }
            None => None,
        }
    }

    /// An intent that could not be committed was not sent: the order is dropped, and the
    /// fault is fatal (a journal that cannot be written cannot recover anything).
    fn not_journaled(&mut self, id: &ClientOrderId, error: String) {
        self.venue_rejects += 1;
        if let Some(order) = self.open.remove(id) {
            self.log.emit(
                LogEvent::new(self.stamp(), SERVICE, Event::OrderRejected)
                    .level(Level::Error)
                    .trace(&order.trace_id)
                    .with("order_id", id.shared())
                    .with(
                        "reason",
                        format!("not sent: the intent could not be journaled: {error}"),
                    ),
            );
        }
        self.fault_fatal(format!(
            "journal: intent {id} not committed, not sent: {error}"
        ));
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
        self.log.emit(
            LogEvent::new(self.stamp(), SERVICE, Event::AgentFailed)
                .level(level)
                .with("agent", "execution")
                .with("error", error.clone()),
        );
        self.log.flush();
        self.faults.do_send(AgentFault {
            agent: AgentId::Execution,
            error,
            fatal,
        });
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
                // Empty: found at the venue by client order id after an outage.
                let venue_order_id: Option<Arc<str>> =
                    (!venue_order_id.is_empty()).then(|| venue_order_id.into());
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderAccepted)
                        .trace(&order.trace_id)
                        .with("order_id", id.shared())
                        .with(
                            "venue_order_id",
                            venue_order_id
                                .clone()
                                .unwrap_or_else(|| "(by client id)".into()),
                        )
                        .with("venue", self.venue_name.clone()),
                );
                self.journal_status(id, JournalStatus::Accepted, venue_order_id, None, None);
            }
            Ok(OrderAck::Rejected { reason }) => {
                self.venue_rejects += 1;
                let trace = order.trace_id.clone();
                self.open.remove(id);
                self.journal_status(id, JournalStatus::Rejected, None, None, Some(&reason));
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderRejected)
                        .trace(&trace)
                        .with("order_id", id.shared())
                        .with("venue", self.venue_name.clone())
                        .with("reason", reason),
                );
            }
            Ok(OrderAck::Duplicate {
                venue_order_id,
                status,
                filled_quantity,
            }) => {
                // The venue already holds an order with this id and created nothing: the
                // same decision was placed before (by a run whose journal this one does not
                // have). Never booked as accepted: it is not working, and that order's
                // fills are not this one's.
                self.venue_rejects += 1;
                let trace = order.trace_id.clone();
                self.open.remove(id);
                let reason = format!(
                    "duplicate client order id: the venue already holds order \
                     {venue_order_id} ({}, {filled_quantity} filled); nothing was created \
                     and it is not sent again",
                    status.as_str()
                );
                self.journal_status(id, JournalStatus::Rejected, None, None, Some(&reason));
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderRejected)
                        .level(Level::Error)
                        .trace(&trace)
                        .with("order_id", id.shared())
                        .with("venue", self.venue_name.clone())
                        .with("reason", reason.clone()),
                );
                // The books and the venue disagree on what was decided before.
                self.fault(format!("order {id}: {reason}"));
            }
            Err(e) => {
                // Not sent, as far as vigil can tell (with reconciliation on, an unreachable
                // venue holds the order instead: see `watch`).
                self.venue_rejects += 1;
                let trace = order.trace_id.clone();
                self.open.remove(id);
                let why = format!("submission failed: {e}");
                // Possibly at the venue after all: it stays an unanswered intent, which
                // recovery looks up by client order id.
                self.journal_status(id, JournalStatus::Intent, None, None, Some(&why));
                self.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderRejected)
                        .level(Level::Error)
                        .trace(&trace)
                        .with("order_id", id.shared())
                        .with("reason", why),
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
        self.start_watch(ctx);
    }
}

impl Supervised for ExecutionAgent {
    /// Rebuilds from the venue, not from memory; a batch the crash interrupted is
    /// acknowledged empty so that the Data agent's flow control continues.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.pinging = false;
        if let Some((batch, last)) = self.in_hand.take() {
            self.log.emit(
                LogEvent::new(self.stamp(), SERVICE, Event::BatchDropped)
                    .with("agent", "execution")
                    .with("batch", batch),
            );
            if last {
                self.backlogs.sent(AgentId::Data);
                self.data_ack.do_send(BatchDone {
                    id: batch,
                    bars: Arc::new(Vec::new()),
                });
            }
        }
        self.rebuild_from_venue(ctx);
    }
}

impl Handler<vigil_bus::VerifyData> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: vigil_bus::VerifyData, ctx: &mut Self::Context) {
        self.verify_data(msg, ctx);
    }
}

impl Handler<Ping> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, _msg: Ping, _ctx: &mut Self::Context) {}
}

impl Handler<Flow<Segment>> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<Segment>, ctx: &mut Self::Context) {
        self.backlogs.taken(AgentId::Execution);
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
        self.on_intent(msg, ctx);
    }
}

impl Handler<CancelAll> for ExecutionAgent {
    type Result = ResponseActFuture<Self, Result<String, CommandError>>;

    /// Asks the venue to cancel every open order. The venue's cancel reports close the
    /// orders (as for any cancel); a cancel the venue refuses is logged and counted.
    fn handle(&mut self, msg: CancelAll, _ctx: &mut Self::Context) -> Self::Result {
        let ts = self.stamp();
        let dropped = self.drop_held(&format!(
            "cancel all while the venue is down: {}",
            msg.reason
        ));
        let mut ids: Vec<ClientOrderId> = self.open.keys().cloned().collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        for id in &ids {
            let order = &self.open[id];
            self.log.emit(
                LogEvent::new(ts, SERVICE, Event::OrderCancelRequested)
                    .level(Level::Warn)
                    .trace(&order.trace_id)
                    .with("symbol", self.symbols.shared(order.symbol))
                    .with("order_id", id.shared())
                    .with("actor", msg.actor.clone())
                    .with("reason", format!("cancel all: {}", msg.reason)),
            );
        }
        self.log.flush();
        let venue = self.venue.clone();
        let fut = async move {
            let mut failed = Vec::new();
            for id in &ids {
                if let Err(e) = venue.cancel_order(id).await {
                    failed.push(e);
                }
            }
            (ids.len(), failed)
        };
        Box::pin(fut.into_actor(self).map(move |(asked, failed), act, ctx| {
            let n_failed = failed.len();
            act.venue_link.calls_failed += n_failed as u64;
            act.venue_link.calls_ok += (asked - n_failed) as u64;
            for e in &failed {
                act.venue_error(e, "cancel");
            }
            act.drain_reports(ctx);
            act.log.flush();
            if asked == 0 && dropped > 0 {
                Ok(format!(
                    "{dropped} held order(s) dropped (never sent: the venue is down)"
                ))
            } else if asked == 0 {
                Ok("no open orders to cancel".to_string())
            } else if n_failed == 0 {
                Ok(format!("cancel sent for {asked} open order(s)"))
            } else {
                Err(CommandError::Unavailable(format!(
                    "{n_failed} of {asked} cancel(s) failed at the venue: {}",
                    failed
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )))
            }
        }))
    }
}

impl Handler<InjectPanic> for ExecutionAgent {
    type Result = ();

    fn handle(&mut self, msg: InjectPanic, _ctx: &mut Self::Context) {
        panic!(
            "injected panic in the execution agent (asked by {})",
            msg.actor
        );
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::{Bar, OrderType, Regime, SimClock, Symbol};
    use vigil_log::{LogSink, MemoryLog, Value};
    use vigil_providers::{FillModel, PaperVenue, PaperVenueConfig};
    use vigil_testkit::{Recorder, logged, record_enum, text, timestamp as t};

    use super::*;

    record_enum! {
        /// What the Execution agent sent to the Data agent and the Monitor, in arrival order.
        #[derive(Debug)]
        enum Got {
            Done(BatchDone),
            Heartbeat(Heartbeat),
            Report(StageReport),
            Fault(AgentFault),
            Verified(vigil_bus::DataVerified),
            Restrict(vigil_bus::RestrictTrading),
        }
    }

    /// After a data outage the books are verified: by a reconciliation with the venue when
    /// one is configured (the paper venue agrees with a fresh book), else trivially (an
    /// in-process venue); bars missing across the outage fail it whatever the books say.
    #[actix_rt::test]
    async fn data_back_after_an_outage_is_verified_against_the_venue_and_for_missing_bars() {
        for (reconcile, missing_bars, external, passed, says) in [
            (
                true,
                0,
                false,
                true,
                "the books agree with the venue's (0 position(s), cash 100000, 0 working order(s))",
            ),
            (false, 0, false, true, "the venue runs in-process"),
            (
                true,
                3,
                false,
                false,
                "3 bar(s) of exchange sessions missing",
            ),
            (
                true,
                0,
                true,
                false,
                "the working orders differ from the venue's: by-hand-1 working at the venue, \
                 unknown to vigil",
            ),
        ] {
            let verdicts = Recorder::<Got>::new();
            let to = verdicts.start_actor();
            let h = start_with(|agent| {
                let agent = agent.with_data_verification(to.clone().recipient());
                if reconcile {
                    agent.with_reconciliation(ReconcileLinks {
                        risk: to.recipient(),
                        on_mismatch: vigil_core::TradingState::ReduceOnly,
                        interval: None,
                        retry_initial: Duration::from_millis(100),
                        retry_max: Duration::from_secs(1),
                    })
                } else {
                    agent
                }
            });
            if external {
                // Someone placed an order at the broker by hand during the outage.
                h.venue
                    .submit_order(&vigil_testkit::order_request(
                        "by-hand-1",
                        0,
                        Side::Buy,
                        dec!(5),
                        Some(dec!(1)),
                        day(2),
                    ))
                    .await
                    .expect("the venue takes it");
            }
            h.addr.do_send(vigil_bus::VerifyData {
                source: "feed:ws://127.0.0.1:1/stream".into(),
                outage_s: 120,
                first_bar: day(3),
                missing_bars,
            });
            let verdict = verdicts.wait_for_first::<vigil_bus::DataVerified>().await;
            assert_eq!(verdict.passed, passed, "{verdict:?}");
            assert!(verdict.report.contains(says), "{verdict:?}");
            assert_eq!(logged(&h.log, Event::DataVerifying).len(), 1);
            assert_eq!(
                logged(&h.log, Event::ReconciliationCompleted).len(),
                usize::from(reconcile)
            );
        }
    }

    /// The paper venue behind a switch: while `down`, every call is `Unreachable`.
    struct Switched {
        paper: Arc<PaperVenue>,
        down: Arc<std::sync::atomic::AtomicBool>,
        /// The client order ids of the orders that reached the venue.
        submitted: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl Switched {
        fn check(&self) -> Result<(), VenueError> {
            match self.down.load(std::sync::atomic::Ordering::SeqCst) {
                true => Err(VenueError::Unreachable {
                    venue: "paper".into(),
                    reason: "connection refused".into(),
                }),
                false => Ok(()),
            }
        }
    }

    #[async_trait::async_trait]
    impl ExecutionVenue for Switched {
        fn name(&self) -> &str {
            "paper"
        }
        async fn submit_order(&self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
            self.check()?;
            self.submitted
                .lock()
                .expect("the lock")
                .push(order.client_order_id.as_str().to_string());
            self.paper.submit_order(order).await
        }
        async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError> {
            self.check()?;
            self.paper.cancel_order(id).await
        }
        async fn order(
            &self,
            id: &ClientOrderId,
        ) -> Result<Option<vigil_core::VenueOrder>, VenueError> {
            self.check()?;
            self.paper.order(id).await
        }
        async fn open_orders(&self) -> Result<Vec<vigil_core::VenueOrder>, VenueError> {
            self.check()?;
            self.paper.open_orders().await
        }
        async fn positions(&self) -> Result<Vec<vigil_providers::VenuePosition>, VenueError> {
            self.check()?;
            self.paper.positions().await
        }
        async fn account(&self) -> Result<vigil_providers::Account, VenueError> {
            self.check()?;
            self.paper.account().await
        }
        async fn ping(&self) -> Result<(), VenueError> {
            self.check()
        }
        fn drain_reports(&self, out: &mut Vec<ExecutionReport>) {
            self.paper.drain_reports(out);
        }
        fn on_market_data(&self, bar: &Bar) {
            self.paper.on_market_data(bar);
        }
    }

    /// Every outside connection lost: the data comes back while the broker is still down.
    /// The verification waits for the broker (asked again with backoff) and is answered by
    /// the reconciliation at its return.
    #[actix_rt::test]
    async fn with_the_broker_down_too_the_verification_waits_for_its_return() {
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let verdicts = Recorder::<Got>::new();
        let to = verdicts.start_actor();
        let switch = down.clone();
        let h = start_on(
            move |paper| {
                Arc::new(Switched {
                    paper,
                    down: switch,
                    submitted: Arc::default(),
                })
            },
            |agent| {
                agent
                    .with_data_verification(to.clone().recipient())
                    .with_reconciliation(ReconcileLinks {
                        risk: to.recipient(),
                        on_mismatch: vigil_core::TradingState::ReduceOnly,
                        interval: None,
                        retry_initial: Duration::from_millis(100),
                        retry_max: Duration::from_secs(1),
                    })
            },
        );
        h.addr.do_send(vigil_bus::VerifyData {
            source: "feed:ws://127.0.0.1:1/stream".into(),
            outage_s: 120,
            first_bar: day(3),
            missing_bars: 0,
        });
        vigil_testkit::yield_until("orders paused", || {
            !logged(&h.log, Event::OrdersPaused).is_empty()
        })
        .await;
        vigil_testkit::settle().await;
        assert!(
            verdicts.all::<vigil_bus::DataVerified>().is_empty(),
            "it waits"
        );
        // Still down at the first retry; back before the second.
        h.wall.advance_by(chrono::Duration::milliseconds(100));
        vigil_testkit::settle().await;
        assert!(verdicts.all::<vigil_bus::DataVerified>().is_empty());
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        h.wall.advance_by(chrono::Duration::milliseconds(200));
        let verdict = verdicts.wait_for_first::<vigil_bus::DataVerified>().await;
        assert!(verdict.passed, "{verdict:?}");
        assert!(verdict.report.contains("0 working order(s)"), "{verdict:?}");
        let checks = logged(&h.log, Event::ReconciliationCompleted);
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!(text(&checks[0], "trigger"), "venue_returned");
    }

    /// An order is sent only if it is still wanted: of three orders decided while the
    /// broker is down, each replacing the one before, only the last reaches it when it
    /// returns (a venue that fills market orders at once would otherwise trade all three).
    /// The first was sent once before the outage was known: it is looked up, not re-sent.
    #[actix_rt::test]
    async fn held_orders_replaced_while_the_venue_is_down_are_never_sent() {
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let submitted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (switch, seen) = (down.clone(), submitted.clone());
        let risk = Recorder::<Got>::new();
        let to = risk.start_actor();
        let h = start_filling(
            FillModel::SignalBarClose,
            move |paper| {
                Arc::new(Switched {
                    paper,
                    down: switch,
                    submitted: seen,
                })
            },
            |agent| {
                agent.with_reconciliation(ReconcileLinks {
                    risk: to.recipient(),
                    on_mismatch: vigil_core::TradingState::ReduceOnly,
                    interval: None,
                    retry_initial: Duration::from_millis(100),
                    retry_max: Duration::from_secs(1),
                })
            },
        );
        let bars = four_bars();
        h.addr.do_send(segment(0, &bars, 0..2, false));
        let mut ids = Vec::new();
        for (i, quantity) in [dec!(10), dec!(7), dec!(4)].into_iter().enumerate() {
            let mut order = intent(&bars[1], Side::Buy, quantity);
            order.client_order_id = ClientOrderId::for_intent(&order.trace_id, i as u32 + 1);
            order.cancel_open = i > 0;
            ids.push(order.client_order_id.as_str().to_string());
            h.addr.do_send(order);
        }
        vigil_testkit::yield_until("orders paused", || {
            !logged(&h.log, Event::OrdersPaused).is_empty()
        })
        .await;
        assert_eq!(
            book(&h).await.open_orders.len(),
            2,
            "the first attempt's fate is unknown"
        );
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        h.wall.advance_by(chrono::Duration::milliseconds(100));
        vigil_testkit::yield_until("the wanted order filled", || {
            !logged(&h.log, Event::OrderFilled).is_empty()
        })
        .await;
        let snapshot = book(&h).await;

        assert_eq!(
            *submitted.lock().expect("the lock"),
            vec![ids[2].clone()],
            "only the wanted order is sent"
        );
        assert_eq!(snapshot.position, dec!(4));
        assert!(
            snapshot.open_orders.is_empty(),
            "{:?}",
            snapshot.open_orders
        );
        let resumed = logged(&h.log, Event::OrdersResumed);
        assert_eq!(resumed[0].get("sent"), Some(&Value::U64(1)));
        assert_eq!(resumed[0].get("withdrawn"), Some(&Value::U64(2)));
        let cancelled = logged(&h.log, Event::OrderCancelled);
        let reasons: Vec<(String, String)> = cancelled
            .iter()
            .map(|e| (text(e, "order_id"), text(e, "reason")))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    ids[1].clone(),
                    "replaced by a newer intent while the venue was down: never sent".to_string()
                ),
                (
                    ids[0].clone(),
                    "replaced while the venue was down: never reached it".to_string()
                ),
            ]
        );
    }

    fn day(d: u32) -> Timestamp {
        t(&format!("2024-01-{d:02}T00:00:00Z"))
    }

    fn bar(d: u32, open: Decimal, close: Decimal) -> Bar {
        Bar {
            symbol: SymbolId(0),
            ts: day(d),
            open,
            high: open.max(close) + dec!(1),
            low: open.min(close) - dec!(1),
            close,
            volume: Some(dec!(100000)),
        }
    }

    /// Day 2 is the signal bar (close 99); day 3 opens at 100; day 4 closes at 104.
    fn four_bars() -> Arc<Vec<Bar>> {
        Arc::new(vec![
            bar(1, dec!(100), dec!(100)),
            bar(2, dec!(100), dec!(99)),
            bar(3, dec!(100), dec!(102)),
            bar(4, dec!(103), dec!(104)),
        ])
    }

    fn segment(
        batch_id: u64,
        bars: &Arc<Vec<Bar>>,
        range: Range<usize>,
        last: bool,
    ) -> Flow<Segment> {
        Flow::Data(Segment {
            batch_id,
            bars: bars.clone(),
            range,
            last,
            phases: Arc::from([]),
        })
    }

    fn intent(signal_bar: &Bar, side: Side, quantity: Decimal) -> OrderIntent {
        let trace_id = TraceId::for_signal("TEST", signal_bar.ts);
        OrderIntent {
            client_order_id: ClientOrderId::for_intent(&trace_id, 1),
            context: LogContext {
                signal_id: Some(trace_id.signal_id()),
                signal_strength: Some(0.5),
                regime: Some(Regime::Trending),
                model_version: Some("ema_cross@1"),
                portfolio_value: Some(dec!(100000)),
            },
            trace_id,
            symbol: SymbolId(0),
            side,
            quantity,
            order_type: OrderType::Market,
            limit_price: None,
            reference_price: signal_bar.close,
            at: signal_bar.ts,
            cancel_open: false,
        }
    }

    use std::ops::Range;

    struct Harness {
        addr: Addr<ExecutionAgent>,
        venue: Arc<PaperVenue>,
        seen: Recorder<Got>,
        log: MemoryLog,
        wall: SimClock,
    }

    fn start() -> Harness {
        start_with(|agent| agent)
    }

    fn start_with(setup: impl FnOnce(ExecutionAgent) -> ExecutionAgent) -> Harness {
        start_on(|paper| paper, setup)
    }

    /// [`start_with`] on the venue `wrap` makes of the paper venue.
    fn start_on(
        wrap: impl FnOnce(Arc<PaperVenue>) -> Arc<dyn ExecutionVenue>,
        setup: impl FnOnce(ExecutionAgent) -> ExecutionAgent,
    ) -> Harness {
        start_filling(FillModel::NextBarOpen, wrap, setup)
    }

    /// [`start_on`] a paper venue that fills by `fill_model`.
    fn start_filling(
        fill_model: FillModel,
        wrap: impl FnOnce(Arc<PaperVenue>) -> Arc<dyn ExecutionVenue>,
        setup: impl FnOnce(ExecutionAgent) -> ExecutionAgent,
    ) -> Harness {
        let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        let clock: SharedClock = Arc::new(market);
        let venue = Arc::new(PaperVenue::new(
            PaperVenueConfig {
                name: "paper".into(),
                fill_model,
                slippage_bps: dec!(10),
                commission_bps: dec!(5),
                commission_min: dec!(0),
                max_volume_participation: dec!(1),
                initial_cash: dec!(100000),
            },
            clock.clone(),
        ));
        let (sink, log) = LogSink::memory();
        let seen = Recorder::new();
        // Stands in for the Data agent (batch acknowledgements) and the Monitor.
        let collector = seen.start_actor();
        let agent = ExecutionAgent::new(
            wrap(venue.clone()),
            dec!(100000),
            SymbolTable::new([Symbol::from("TEST")]),
            clock,
            Arc::new(wall.clone()),
            Duration::from_secs(1),
            LogBuffer::new(sink, SERVICE, Level::Debug),
            collector.clone().recipient(),
            collector.clone().recipient(),
            collector.clone().recipient(),
            collector.recipient(),
        );
        Harness {
            addr: setup(agent).start(),
            venue,
            seen,
            log,
            wall,
        }
    }

    async fn book(h: &Harness) -> BookSnapshot {
        h.addr
            .send(BookQuery {
                symbol: SymbolId(0),
            })
            .await
            .expect("book query")
    }

    fn dec_field(ev: &LogEvent, key: &str) -> Decimal {
        match ev.get(key) {
            Some(Value::Dec(d)) => *d,
            other => panic!(
                "field {key} of {} is not a decimal: {other:?}",
                ev.event.name()
            ),
        }
    }

    #[actix_rt::test]
    async fn an_intent_is_submitted_accepted_and_filled_at_the_next_bar_open_under_its_trace_id() {
        let h = start();
        let bars = four_bars();
        let order = intent(&bars[1], Side::Buy, dec!(10));
        let trace = order.trace_id.clone();
        let id = order.client_order_id.clone();

        h.addr.do_send(segment(0, &bars, 0..2, false));
        h.addr.do_send(order);
        let before = book(&h).await;
        assert_eq!(before.position, dec!(0));
        assert_eq!(before.mark, dec!(99));
        assert_eq!(
            before.open_orders,
            vec![OpenOrderView {
                client_order_id: id.clone(),
                symbol: SymbolId(0),
                side: Side::Buy,
                leaves_quantity: dec!(10),
            }]
        );
        let submitted = logged(&h.log, Event::OrderSubmitted);
        assert_eq!(submitted.len(), 1);
        assert_eq!(submitted[0].trace_id.as_ref(), Some(&trace));
        assert_eq!(submitted[0].timestamp, bars[1].ts);
        assert_eq!(text(&submitted[0], "symbol"), "TEST");
        assert_eq!(text(&submitted[0], "side"), "BUY");
        assert_eq!(text(&submitted[0], "order_type"), "MARKET");
        assert_eq!(text(&submitted[0], "order_id"), id.as_str());
        assert_eq!(dec_field(&submitted[0], "quantity"), dec!(10));
        assert_eq!(dec_field(&submitted[0], "price"), dec!(99));
        assert_eq!(
            submitted[0]
                .context
                .as_deref()
                .and_then(|c| c.signal_id.clone()),
            Some(trace.signal_id())
        );
        let accepted = logged(&h.log, Event::OrderAccepted);
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0].trace_id.as_ref(), Some(&trace));
        assert_eq!(text(&accepted[0], "venue_order_id"), "P-000001");
        assert_eq!(text(&accepted[0], "venue"), "paper");
        assert!(
            logged(&h.log, Event::FillReceived).is_empty(),
            "nothing fills on the signal bar"
        );

        h.addr.do_send(segment(0, &bars, 2..4, true));
        let after = book(&h).await;
        // 100 × (1 + 10 bps) = 100.1; commission 5 bps of 1001 = 0.5005.
        let cash = dec!(100000) - dec!(1001) - dec!(0.5005);
        assert_eq!(after.position, dec!(10));
        assert_eq!(after.cash, cash);
        assert_eq!(after.mark, dec!(104));
        assert_eq!(after.equity, cash + dec!(10) * dec!(104));
        assert_eq!(after.gross_exposure, dec!(1040));
        assert!(after.open_orders.is_empty());

        let fills = logged(&h.log, Event::FillReceived);
        assert_eq!(fills.len(), 1);
        assert_eq!(fills[0].level, Level::Info);
        assert_eq!(fills[0].trace_id.as_ref(), Some(&trace));
        assert_eq!(
            fills[0].timestamp, bars[2].ts,
            "stamped with the fill bar's time"
        );
        assert_eq!(dec_field(&fills[0], "price"), dec!(100.1));
        assert_eq!(dec_field(&fills[0], "quantity"), dec!(10));
        assert_eq!(dec_field(&fills[0], "commission"), dec!(0.5005));
        assert_eq!(dec_field(&fills[0], "leaves_quantity"), dec!(0));
        // (100.1 − 99) / 99 in bps, worse than the reference.
        assert_eq!(dec_field(&fills[0], "slippage_bps"), dec!(111.11));
        assert_eq!(text(&fills[0], "fill_id"), "F-000001");
        let filled = logged(&h.log, Event::OrderFilled);
        assert_eq!(filled.len(), 1);
        assert_eq!(filled[0].trace_id.as_ref(), Some(&trace));
        assert_eq!(dec_field(&filled[0], "avg_price"), dec!(100.1));
        assert_eq!(dec_field(&filled[0], "position"), dec!(10));
        let ctx = filled[0].context.as_deref().expect("context");
        assert_eq!(ctx.regime, Some(Regime::Trending));
        assert!(ctx.portfolio_value.is_some());

        // Only the batch's last segment is acknowledged, with the batch's own bars.
        h.seen
            .wait_until("the batch ack", |got| {
                got.iter().any(|g| matches!(g, Got::Done(_)))
            })
            .await;
        let done = h.seen.all::<BatchDone>();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].id, 0);
        assert!(Arc::ptr_eq(&done[0].bars, &bars));

        h.addr.do_send(Flow::End(StopReason::EndOfData));
        match h.seen.wait_for_first::<StageReport>().await {
            StageReport::Execution {
                reason,
                orders,
                filled,
                venue_rejects,
                cancelled,
                fills,
                initial_cash,
                equity,
                cash: final_cash,
                commissions,
                positions,
                ..
            } => {
                assert_eq!(reason, StopReason::EndOfData);
                assert_eq!(
                    (orders, filled, venue_rejects, cancelled, fills),
                    (1, 1, 0, 0, 1)
                );
                assert_eq!(initial_cash, dec!(100000));
                assert_eq!(final_cash, cash);
                assert_eq!(equity, cash + dec!(1040));
                assert_eq!(commissions, dec!(0.5005));
                assert_eq!(positions, vec![("TEST".to_string(), dec!(10))]);
            }
            other => panic!("expected an execution report, got {other:?}"),
        }
        assert!(h.seen.all::<AgentFault>().is_empty());
        h.seen.with(|got| {
            assert!(matches!(
                got.first(),
                Some(Got::Heartbeat(Heartbeat {
                    agent: AgentId::Execution,
                    state: AgentState::Running,
                    ..
                }))
            ));
        });
    }

    /// Under write-ahead a fill is durable before the book moves: while the journal file's
    /// write lock is held elsewhere the fill's commit waits, and so does every question to
    /// the agent; once the commit lands, the book and the journal agree.
    #[actix_rt::test]
    async fn under_write_ahead_a_fill_is_committed_before_the_book_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = vigil_store::Store::open(&path).await.expect("store");
        let (failures, mut failed) = tokio::sync::mpsc::unbounded_channel();
        let (journal, _writer) = Journal::start(
            Arc::new(store.clone()),
            "paper".into(),
            || t("2030-01-01T00:00:00Z"),
            failures,
        );
        let h = start_with(|agent| agent.with_journal(journal, true));
        let bars = four_bars();
        h.addr.do_send(segment(0, &bars, 0..2, false));
        h.addr.do_send(intent(&bars[1], Side::Buy, dec!(10)));
        assert_eq!(book(&h).await.open_orders.len(), 1, "the order is working");

        // Another writer holds the file: no commit can land until it lets go.
        let other = vigil_store::open_sqlite(&path).await.expect("second pool");
        let mut lock = other.acquire().await.expect("connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *lock)
            .await
            .expect("take the write lock");
        h.addr.do_send(segment(0, &bars, 2..4, true));
        let mut asked = std::pin::pin!(h.addr.send(BookQuery {
            symbol: SymbolId(0),
        }));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut asked)
                .await
                .is_err(),
            "the book answered while its fill was not yet committed"
        );
        sqlx::query("ROLLBACK")
            .execute(&mut *lock)
            .await
            .expect("let go of the write lock");
        let after = asked.await.expect("book query");
        assert_eq!(after.position, dec!(10));
        // The answer came after the commit: the journal holds the fill and its position.
        let journaled = vigil_store::StateStore::journal_book(&store, "paper")
            .await
            .expect("journal book");
        assert_eq!(journaled.fills, 1);
        assert_eq!(
            journaled.positions,
            vec![("TEST".to_string(), dec!(10), dec!(100.1))]
        );
        assert!(failed.try_recv().is_err(), "no journal commit failed");
    }

    #[actix_rt::test]
    async fn batch_done_is_sent_only_after_a_segment_marked_last() {
        let h = start();
        let first = four_bars();
        let second = Arc::new(vec![bar(5, dec!(104), dec!(105))]);
        h.addr.do_send(segment(0, &first, 0..1, false));
        h.addr.do_send(segment(0, &first, 1..3, false));
        h.addr.do_send(segment(0, &first, 3..4, true));
        h.addr.do_send(segment(1, &second, 0..1, true));
        h.seen
            .wait_until("two batch acks", |got| {
                got.iter().filter(|g| matches!(g, Got::Done(_))).count() >= 2
            })
            .await;
        // The mailbox is FIFO: an ack for a non-last segment would have arrived first.
        let done = h.seen.all::<BatchDone>();
        assert_eq!(done.iter().map(|d| d.id).collect::<Vec<_>>(), vec![0, 1]);
        assert!(Arc::ptr_eq(&done[0].bars, &first));
        assert!(Arc::ptr_eq(&done[1].bars, &second));
        assert_eq!(book(&h).await.mark, dec!(105), "every bar was marked");
    }

    #[actix_rt::test]
    async fn a_venue_rejection_is_logged_as_order_rejected() {
        let h = start();
        let bars = four_bars();
        h.addr.do_send(segment(0, &bars, 0..2, false));
        let order = intent(&bars[1], Side::Sell, dec!(0));
        let trace = order.trace_id.clone();
        h.addr.do_send(order);
        let snapshot = book(&h).await;
        assert!(
            snapshot.open_orders.is_empty(),
            "a rejected order is not open"
        );

        let rejected = logged(&h.log, Event::OrderRejected);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].level, Level::Warn);
        assert_eq!(rejected[0].trace_id.as_ref(), Some(&trace));
        assert_eq!(text(&rejected[0], "reason"), "quantity 0 is not positive");
        assert_eq!(text(&rejected[0], "venue"), "paper");
        assert!(logged(&h.log, Event::OrderAccepted).is_empty());

        h.addr.do_send(segment(0, &bars, 2..4, true));
        h.addr.do_send(Flow::End(StopReason::Interrupted));
        assert!(matches!(
            h.seen.wait_for_first::<StageReport>().await,
            StageReport::Execution {
                reason: StopReason::Interrupted,
                orders: 1,
                filled: 0,
                venue_rejects: 1,
                fills: 0,
                ..
            }
        ));
        assert!(logged(&h.log, Event::FillReceived).is_empty());
    }

    /// The same decision placed before, by a run whose journal this one does not hold (a
    /// store that lost its history): the venue refuses it as a duplicate and creates
    /// nothing. It is journaled and logged as rejected, reported as a fault, and never
    /// tracked as an open order (issue 19: refused duplicates were journaled `accepted`, and
    /// every later intent asked to cancel them).
    #[actix_rt::test]
    async fn a_duplicate_refused_by_the_venue_is_journaled_rejected_never_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = vigil_store::Store::open(&dir.path().join("vigil.db"))
            .await
            .expect("store");
        let (failures, mut failed) = tokio::sync::mpsc::unbounded_channel();
        let (journal, _writer) = Journal::start(
            Arc::new(store.clone()),
            "paper".into(),
            || t("2030-01-01T00:00:00Z"),
            failures,
        );
        let h = start_with(|agent| agent.with_journal(journal, true));
        let bars = four_bars();
        h.addr.do_send(segment(0, &bars, 0..2, false));
        let order = intent(&bars[1], Side::Buy, dec!(10));
        let id = order.client_order_id.clone();
        // The venue has seen the bars (the agent answers after handling them).
        book(&h).await;
        // An earlier life of this decision is at the venue already.
        let earlier = h
            .venue
            .submit_order(&vigil_testkit::order_request(
                id.as_str(),
                0,
                Side::Buy,
                dec!(10),
                None,
                bars[1].ts,
            ))
            .await
            .expect("the venue takes the earlier order");
        assert!(matches!(earlier, OrderAck::Accepted { .. }), "{earlier:?}");
        h.addr.do_send(order);
        assert!(
            book(&h).await.open_orders.is_empty(),
            "a duplicate is not an open order of this run"
        );
        assert!(logged(&h.log, Event::OrderAccepted).is_empty());
        let rejected = logged(&h.log, Event::OrderRejected);
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert_eq!(rejected[0].level, Level::Error);
        let reason = text(&rejected[0], "reason");
        assert!(reason.starts_with("duplicate client order id"), "{reason}");
        h.seen
            .wait_until("the duplicate reported as a fault", |got| {
                got.iter().any(
                    |g| matches!(g, Got::Fault(f) if !f.fatal && f.error.contains("duplicate")),
                )
            })
            .await;
        // The journal holds it as rejected, with the reason: not open, not accepted.
        h.addr.do_send(segment(0, &bars, 2..4, true));
        h.addr.do_send(Flow::End(StopReason::EndOfData));
        h.seen.wait_for_first::<StageReport>().await;
        let open = vigil_store::StateStore::journal_open_orders(&store, "paper")
            .await
            .expect("journal");
        assert!(open.is_empty(), "{open:?}");
        let status: (String, Option<String>) =
            sqlx::query_as("SELECT status, reason FROM journal_orders WHERE client_order_id = $1")
                .bind(id.as_str())
                .fetch_one(
                    &vigil_store::open_sqlite(&dir.path().join("vigil.db"))
                        .await
                        .expect("pool"),
                )
                .await
                .expect("the order's row");
        assert_eq!(status.0, "rejected");
        assert!(
            status
                .1
                .is_some_and(|r| r.starts_with("duplicate client order id")),
            "the reason is journaled"
        );
        assert!(failed.try_recv().is_err(), "no journal commit failed");
    }

    #[actix_rt::test]
    async fn a_replacing_intent_cancels_the_open_order_of_its_symbol_first() {
        let h = start();
        let bars = four_bars();
        h.addr.do_send(segment(0, &bars, 0..1, false));
        // A buy limit far below the market: it stays open.
        let mut resting = intent(&bars[0], Side::Buy, dec!(10));
        resting.order_type = OrderType::Limit;
        resting.limit_price = Some(dec!(50));
        let resting_trace = resting.trace_id.clone();
        let resting_id = resting.client_order_id.clone();
        h.addr.do_send(resting);
        h.addr.do_send(segment(0, &bars, 1..2, false));
        assert_eq!(book(&h).await.open_orders.len(), 1);

        let mut replacing = intent(&bars[1], Side::Buy, dec!(5));
        replacing.cancel_open = true;
        let replacing_trace = replacing.trace_id.clone();
        h.addr.do_send(replacing);
        h.addr.do_send(segment(0, &bars, 2..4, true));
        let snapshot = book(&h).await;
        assert_eq!(snapshot.position, dec!(5));
        assert!(snapshot.open_orders.is_empty());

        let requested = logged(&h.log, Event::OrderCancelRequested);
        assert_eq!(requested.len(), 1);
        assert_eq!(requested[0].trace_id.as_ref(), Some(&replacing_trace));
        assert_eq!(text(&requested[0], "order_id"), resting_id.as_str());
        let cancelled = logged(&h.log, Event::OrderCancelled);
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0].trace_id.as_ref(), Some(&resting_trace));
        assert_eq!(text(&cancelled[0], "reason"), "cancelled by request");
        let names = h.log.names();
        let at = |n: &str| names.iter().position(|x| *x == n).expect(n);
        assert!(at("order_cancel_requested") < at("order_cancelled"));
        assert!(at("order_cancelled") < at("order_filled"));

        h.addr.do_send(Flow::End(StopReason::EndOfData));
        assert!(matches!(
            h.seen.wait_for_first::<StageReport>().await,
            StageReport::Execution {
                orders: 2,
                filled: 1,
                cancelled: 1,
                fills: 1,
                ..
            }
        ));
    }

    #[actix_rt::test]
    async fn a_fill_for_an_untracked_order_is_booked_logged_as_an_error_and_reported() {
        let h = start();
        let bars = four_bars();
        h.addr.do_send(segment(0, &bars, 0..2, false));
        book(&h).await;
        // An order the agent never sent (someone used the account by hand).
        let ack = h
            .venue
            .submit_order(&OrderRequest {
                client_order_id: ClientOrderId::from("manual-1"),
                symbol: SymbolId(0),
                side: Side::Sell,
                quantity: dec!(3),
                order_type: OrderType::Market,
                limit_price: None,
                submitted_at: bars[1].ts,
            })
            .await
            .expect("submit");
        assert!(matches!(ack, OrderAck::Accepted { .. }));
        h.addr.do_send(segment(0, &bars, 2..4, true));
        assert_eq!(
            book(&h).await.position,
            dec!(-3),
            "the venue is the source of truth"
        );

        let fills = logged(&h.log, Event::FillReceived);
        assert_eq!(fills.len(), 1);
        assert_eq!(fills[0].level, Level::Error);
        assert_eq!(text(&fills[0], "order_id"), "manual-1");
        assert!(text(&fills[0], "error").contains("for unknown order manual-1"));
        h.seen
            .wait_until("the fault", |got| {
                got.iter().any(|g| matches!(g, Got::Fault(_)))
            })
            .await;
        let faults = h.seen.all::<AgentFault>();
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].agent, AgentId::Execution);
        assert!(!faults[0].fatal);
    }

    /// Stands in for the Risk agent: keeps each drawdown report and answers the first
    /// with an order that closes the position.
    struct FakeRisk {
        reports: Arc<std::sync::Mutex<Vec<DrawdownReport>>>,
    }

    impl Actor for FakeRisk {
        type Context = Context<Self>;
    }

    impl Handler<DrawdownReport> for FakeRisk {
        type Result = MessageResult<DrawdownReport>;
        fn handle(&mut self, msg: DrawdownReport, _ctx: &mut Context<Self>) -> Self::Result {
            let trace_id = TraceId::for_command("deleverage_TEST", msg.at);
            let orders = vec![OrderIntent {
                client_order_id: ClientOrderId::for_intent(&trace_id, 1),
                trace_id,
                symbol: SymbolId(0),
                side: Side::Sell,
                quantity: msg.positions[0].quantity,
                order_type: OrderType::Market,
                limit_price: None,
                reference_price: msg.positions[0].mark,
                at: msg.at,
                cancel_open: true,
                context: LogContext::default(),
            }];
            let mut reports = self.reports.lock().expect("reports");
            reports.push(msg);
            MessageResult(vigil_bus::DrawdownAnswer {
                orders: if reports.len() == 1 {
                    orders
                } else {
                    Vec::new()
                },
                next: NextReport::AfterRearm,
            })
        }
    }

    #[actix_rt::test]
    async fn a_bar_beyond_the_drawdown_line_is_reported_in_band_and_the_answer_fills_at_the_next_open()
     {
        let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let risk = FakeRisk {
            reports: reports.clone(),
        }
        .start();
        let h = start_with(|agent| agent.with_drawdown_control(dec!(0.04), risk.recipient()));
        // 100 shares bought at the day-3 open; day 4 closes at 40 (6% of equity lost), day
        // 5 opens at 41, day 6 at 60.
        let bars = Arc::new(vec![
            bar(1, dec!(100), dec!(100)),
            bar(2, dec!(100), dec!(100)),
            bar(3, dec!(100), dec!(100)),
            bar(4, dec!(100), dec!(40)),
            bar(5, dec!(41), dec!(41)),
            bar(6, dec!(60), dec!(60)),
        ]);
        h.addr.do_send(segment(0, &bars, 0..2, false));
        h.addr.do_send(intent(&bars[1], Side::Buy, dec!(100)));
        // One segment from day 3 to day 6: the report stops it at day 4.
        h.addr.do_send(segment(0, &bars, 2..6, true));
        h.seen.wait_for::<BatchDone>(1).await;

        let reports = reports.lock().expect("reports").clone();
        assert_eq!(reports.len(), 1, "quiet after the answer: {reports:?}");
        let r = &reports[0];
        assert_eq!(r.at, day(4));
        assert_eq!(r.arming, 0);
        assert_eq!(r.positions.len(), 1);
        assert_eq!(
            (r.positions[0].quantity, r.positions[0].mark),
            (dec!(100), dec!(40))
        );
        // Bought at 100.1 plus 5.005 commission: equity = cash + 100 × 40.
        let equity = dec!(100000) - dec!(10010) - dec!(5.005) + dec!(4000);
        assert_eq!(r.equity, equity);
        assert_eq!(r.peak, dec!(100000));
        assert_eq!(r.drawdown, (dec!(100000) - equity) / dec!(100000));
        assert_eq!(r.gross_exposure, dec!(4000));

        let fills = logged(&h.log, Event::FillReceived);
        assert_eq!(fills.len(), 2);
        assert_eq!(
            fills[1].timestamp,
            day(5),
            "filled at the next bar, not the batch's end"
        );
        assert_eq!(text(&fills[1], "side"), "SELL");
        assert_eq!(
            dec_field(&fills[1], "price"),
            dec!(40.959),
            "41 less 10 bps"
        );
        let after = book(&h).await;
        assert_eq!(after.position, dec!(0));
        assert_eq!(after.mark, dec!(60), "the rest of the segment was marked");
    }
}
