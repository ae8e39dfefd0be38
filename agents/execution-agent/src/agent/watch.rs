//! The Execution agent and the venue as the source of truth, during the session:
//! - the book recovered at start ([`ExecutionAgent::with_recovered`]);
//! - reconciliation on an interval, which takes the venue's positions and cash when they
//!   differ and restricts trading (a trade made at the broker by hand);
//! - a fill of an order that is not vigil's, handled the same way;
//! - a venue outage: orders are held (their intents stay journaled), the venue is asked
//!   again with backoff, and when it answers the books are reconciled before the held
//!   orders go out, each looked up by client order id first so that none is sent twice.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use vigil_bus::{DataVerified, RestrictTrading, VerifyData};
use vigil_core::{
    ClientOrderId, Fill, Level, OrderAck, OrderRequest, OrderStatus, SymbolId, Timestamp, TraceId,
    TradingState,
};
use vigil_log::{Event, LogContext, LogEvent};
use vigil_providers::{Account, VenueError, VenuePosition};
use vigil_store::{JournalEntry, JournalStatus};

use super::{ExecutionAgent, OrderRecord, SERVICE};
use crate::recovery::{
    Difference, Reconciliation, held_symbols, mismatch_text, take_cash, take_position,
};

/// What reconciliation during the session needs: where to restrict trading, how strictly,
/// how often, and the outage's backoff.
#[derive(Clone, Debug)]
pub struct ReconcileLinks {
    /// The Risk agent, which holds the trading state.
    pub risk: Recipient<RestrictTrading>,
    /// The state a mismatch leaves trading in (ReduceOnly or Halted).
    pub on_mismatch: TradingState,
    /// Wall time between reconciliations; `None`: only after an outage.
    pub interval: Option<Duration>,
    /// First wait before the venue is asked again after a failed submission.
    pub retry_initial: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
}

pub(super) struct Watch {
    links: ReconcileLinks,
    /// A check is under way.
    checking: bool,
    /// Differences seen once in a symbol with an order working, confirmed at the next check
    /// (the venue may have filled it between two reads): symbol → the venue's quantity.
    suspects: HashMap<Option<SymbolId>, Decimal>,
    /// A verification after a data outage, answered when the check under way completes.
    verify: Option<VerifyData>,
}

/// An order held while the venue is unreachable, with the cancels that go before it.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) request: OrderRequest,
    pub(super) cancels: Vec<ClientOrderId>,
    /// It was sent once and the answer was lost: the venue may have it.
    pub(super) attempted: bool,
    /// Still wanted. An order replaced or cancelled while the venue was down is not sent
    /// when it returns; one that was `attempted` stays here so that it is looked up and,
    /// if the venue has it after all, cancelled there.
    pub(super) wanted: bool,
}

/// An outage under way.
#[derive(Debug)]
pub(super) struct Outage {
    since: DateTime<Utc>,
    backoff: Duration,
    retrying: bool,
    /// Held orders no longer wanted (replaced or cancelled), not sent.
    withdrawn: u64,
}

/// Vigil's own orders: their client order ids come from a decision chain (`tx_…`).
fn is_vigils(id: &ClientOrderId) -> bool {
    id.as_str().starts_with("tx_")
}

impl ExecutionAgent {
    /// Starts from the book `rec` recovered from the venue: its cash, positions and open
    /// orders; bars up to the last one the previous run handled are skipped.
    pub fn with_recovered(mut self, rec: &Reconciliation) -> Self {
        self.portfolio = vigil_core::Portfolio::new(rec.cash);
        self.portfolio
            .resync(rec.cash, rec.positions.iter().copied());
        for a in &rec.open_orders {
            let r = &a.order.request;
            self.open.insert(
                r.client_order_id.clone(),
                OrderRecord {
                    trace_id: a
                        .trace_id
                        .as_deref()
                        .map(TraceId::from)
                        .unwrap_or_else(|| TraceId::for_command("adopted", r.submitted_at)),
                    symbol: r.symbol,
                    side: r.side,
                    quantity: r.quantity,
                    filled: a.order.filled_quantity,
                    notional: Decimal::ZERO,
                    status: a.order.status,
                    reference_price: a.reference_price,
                    context: LogContext::default(),
                },
            );
        }
        self.resume_after = rec.last_bar_at;
        self
    }

    /// Answers the verification after a data outage ([`VerifyData`]) to `risk`.
    pub fn with_data_verification(mut self, risk: Recipient<DataVerified>) -> Self {
        self.verify_to = Some(risk);
        self
    }

    /// Reconciles with the venue during the session and holds orders through an outage.
    pub fn with_reconciliation(mut self, links: ReconcileLinks) -> Self {
        self.watch = Some(Watch {
            links,
            checking: false,
            suspects: HashMap::new(),
            verify: None,
        });
        self
    }

    /// Starts the interval checks (from `started`).
    pub(super) fn start_watch(&mut self, ctx: &mut Context<Self>) {
        let Some(every) = self.watch.as_ref().and_then(|w| w.links.interval) else {
            return;
        };
        vigil_bus::run_every(ctx, self.wall.clone(), every, |act, ctx| {
            act.check_venue(ctx, "interval");
        });
    }

    /// Journals the last bar handled, so that a restart resumes after it.
    pub(super) fn mark_handled(&mut self, seg: &vigil_bus::Segment) {
        if self.journal.is_none() || seg.range.is_empty() {
            return;
        }
        if let Some(bar) = seg.bars.get(seg.range.end - 1) {
            self.journal(JournalEntry::Mark {
                last_bar_at: bar.ts,
            });
        }
    }

    /// Reads the venue's positions and cash, holding the mailbox meanwhile (no order goes
    /// out and no bar is booked while the two books are compared).
    pub(super) fn check_venue(&mut self, ctx: &mut Context<Self>, trigger: &'static str) {
        let Some(w) = self.watch.as_mut() else { return };
        if w.checking || self.outage.is_some() || self.state != vigil_core::AgentState::Running {
            return;
        }
        w.checking = true;
        // A verification compares the working orders too.
        let with_orders = w.verify.is_some();
        let venue = self.venue.clone();
        let wall = self.wall.clone();
        let fut = async move {
            let t0 = wall.now();
            let read = async {
                // Fills first: the positions read after them hold them.
                venue.sync_reports().await?;
                let positions = venue.positions().await?;
                let account = venue.account().await?;
                let orders = match with_orders {
                    true => Some(venue.open_orders().await?),
                    false => None,
                };
                Ok::<_, VenueError>((positions, account, orders))
            }
            .await;
            (read, wall.now() - t0)
        };
        ctx.wait(fut.into_actor(self).map(move |(read, took), act, ctx| {
            if let Some(w) = act.watch.as_mut() {
                w.checking = false;
            }
            match read {
                Ok((positions, account, orders)) => {
                    let ms = took.num_milliseconds().max(0) as u64;
                    // The fills read before the positions are booked first.
                    act.drain_reports_then(ctx, move |act, ctx| {
                        let differences = act.compare_with_venue(&positions, &account, trigger, ms);
                        if orders.is_none()
                            && act.watch.as_ref().is_some_and(|w| w.verify.is_some())
                        {
                            // A check begun before the verification was asked did not read
                            // the working orders: one more.
                            act.check_venue(ctx, "data_recovered");
                            return;
                        }
                        let books = act.books_verdict(differences, &positions, &account, orders);
                        act.answer_verify(books);
                    });
                }
                Err(e) => {
                    act.venue_error(&e, "reconcile");
                    let verifying = act.watch.as_ref().is_some_and(|w| w.verify.is_some());
                    if verifying && matches!(e, VenueError::Unreachable { .. }) {
                        // Every outside connection is down: the verification waits for the
                        // broker, asked again with backoff; its return reconciles.
                        act.begin_outage(&e, ctx);
                    } else {
                        act.answer_verify(Err(format!("the venue could not be read: {e}")));
                    }
                }
            }
            act.log.flush();
        }));
    }

    /// Compares the books with the venue's; returns the differences found (and taken).
    fn compare_with_venue(
        &mut self,
        positions: &[VenuePosition],
        account: &Account,
        trigger: &'static str,
        took_ms: u64,
    ) -> usize {
        let working: std::collections::HashSet<SymbolId> =
            self.open.values().map(|o| o.symbol).collect();
        let theirs: HashMap<SymbolId, (Decimal, Decimal)> = positions
            .iter()
            .map(|p| (p.symbol, (p.quantity, p.avg_price)))
            .collect();
        let symbols = held_symbols(&self.portfolio, &theirs);
        let Some(w) = self.watch.as_mut() else {
            return 0;
        };
        let before = std::mem::take(&mut w.suspects);
        let mut differences = Vec::new();
        let mut entries = Vec::new();
        let confirmed = |key: Option<SymbolId>, venue: Decimal, busy: bool, w: &mut Watch| {
            // With an order working, a difference may be a fill between two reads: it
            // counts when the next check sees the same.
            if busy && before.get(&key) != Some(&venue) {
                w.suspects.insert(key, venue);
                false
            } else {
                true
            }
        };
        for id in symbols {
            let ours = self.portfolio.position(id).quantity;
            let venue_pos = theirs.get(&id).copied().unwrap_or_default();
            if ours == venue_pos.0 || !confirmed(Some(id), venue_pos.0, working.contains(&id), w) {
                continue;
            }
            let (d, e) = take_position(
                self.symbols.shared(id),
                ours,
                venue_pos,
                format!("reconciliation ({trigger}): the venue's position"),
            );
            differences.push(d);
            entries.push(e);
        }
        let cash = self.portfolio.cash();
        let cash_differs =
            cash != account.cash && confirmed(None, account.cash, !self.open.is_empty(), w);
        if cash_differs {
            let (d, e) = take_cash(
                cash,
                account.cash,
                format!("reconciliation ({trigger}): the venue's cash"),
            );
            differences.push(d);
            entries.push(e);
        }
        if !differences.is_empty() {
            self.portfolio.resync(
                account.cash,
                positions
                    .iter()
                    .map(|p| (p.symbol, p.quantity, p.avg_price)),
            );
            for e in entries {
                self.journal(e);
            }
        }
        let ts = self.stamp();
        self.log.emit(
            LogEvent::new(ts, SERVICE, Event::ReconciliationCompleted)
                .with("trigger", trigger)
                .with("venue", self.venue_name.clone())
                .with("differences", differences.len())
                .with("mismatches", differences.len())
                .with("passed", differences.is_empty())
                .with("took_ms", took_ms),
        );
        self.on_differences(&differences, trigger);
        differences.len()
    }

    /// The books' part of a verification: the positions and cash compared (and taken from
    /// the venue when they differed), then the working orders, vigil's against the venue's
    /// (after its reports are booked).
    fn books_verdict(
        &self,
        differences: usize,
        positions: &[VenuePosition],
        account: &Account,
        orders: Option<Vec<vigil_core::VenueOrder>>,
    ) -> Result<String, String> {
        if differences > 0 {
            return Err(format!(
                "{differences} difference(s) with the venue's books (taken from the venue; see \
                 reconciliation_mismatch)"
            ));
        }
        let orders = orders.unwrap_or_default();
        let theirs: std::collections::HashSet<&ClientOrderId> = orders
            .iter()
            .filter(|o| o.status.is_open())
            .map(|o| &o.request.client_order_id)
            .collect();
        let mut odd: Vec<String> = self
            .open
            .keys()
            .filter(|id| !theirs.contains(id))
            .map(|id| format!("{id} open in vigil's book, not working at the venue"))
            .chain(
                theirs
                    .iter()
                    .filter(|id| !self.open.contains_key(**id))
                    .map(|id| format!("{id} working at the venue, unknown to vigil")),
            )
            .collect();
        odd.sort();
        if !odd.is_empty() {
            return Err(format!(
                "the working orders differ from the venue's: {}",
                odd.join("; ")
            ));
        }
        Ok(format!(
            "the books agree with the venue's ({} position(s), cash {}, {} working order(s))",
            positions.len(),
            account.cash,
            theirs.len()
        ))
    }

    /// Data came back after an outage: reconciles the books with the venue (holding the
    /// mailbox, as every check does) and tells Risk whether trading may resume. Bars missing
    /// across the outage fail the verification whatever the books say.
    pub(super) fn verify_data(&mut self, msg: VerifyData, ctx: &mut Context<Self>) {
        let ts = self.stamp();
        let mut line = LogEvent::new(ts, SERVICE, Event::DataVerifying)
            .with("source", msg.source.clone())
            .with("outage_s", msg.outage_s)
            .with("first_bar", msg.first_bar)
            .with("missing_bars", msg.missing_bars);
        if self.watch.is_some() && self.outage.is_some() {
            line = line.level(Level::Warn).with(
                "waiting_for",
                "the broker (unreachable): verified when it answers",
            );
        }
        self.log.emit(line);
        self.log.flush();
        let Some(w) = self.watch.as_mut() else {
            self.send_verdict(
                msg,
                Ok("the venue runs in-process: its book is the session's book".into()),
            );
            return;
        };
        if self.state != vigil_core::AgentState::Running {
            self.send_verdict(
                msg,
                Err("the execution agent has stopped: the books cannot be reconciled".into()),
            );
            return;
        }
        w.verify = Some(msg);
        // With the broker down too, its return reconciles (`venue_returned`), and that
        // check answers the verification.
        if self.outage.is_none() && !w.checking {
            self.check_venue(ctx, "data_recovered");
        }
    }

    /// Answers the verification waiting, if any, with the reconciliation's outcome.
    fn answer_verify(&mut self, books: Result<String, String>) {
        if let Some(msg) = self.watch.as_mut().and_then(|w| w.verify.take()) {
            self.send_verdict(msg, books);
        }
    }

    /// Tells Risk the verification's outcome: the books' (`books`) and the data's.
    fn send_verdict(&self, msg: VerifyData, books: Result<String, String>) {
        let Some(to) = self.verify_to.as_ref() else {
            return;
        };
        let gaps = (msg.missing_bars > 0).then(|| {
            format!(
                "{} bar(s) of exchange sessions missing across the outage (see data_gap)",
                msg.missing_bars
            )
        });
        let (passed, report) = match (books, gaps) {
            (Ok(books), None) => (true, format!("{books}; no session's data missing")),
            (Ok(books), Some(gaps)) => (false, format!("{books}; but {gaps}")),
            (Err(books), None) => (false, books),
            (Err(books), Some(gaps)) => (false, format!("{books}; and {gaps}")),
        };
        to.do_send(DataVerified { passed, report });
    }

    /// Logs each difference, and on a mismatch the CRITICAL event and the restriction of
    /// trading (the venue's figures are already taken).
    pub(super) fn on_differences(&mut self, differences: &[Difference], trigger: &str) {
        let ts = self.stamp();
        for d in differences {
            self.log.emit(difference_event(ts, d));
        }
        let text = mismatch_text(differences);
        if text.is_empty() {
            return;
        }
        let Some(w) = self.watch.as_ref() else { return };
        let state = w.links.on_mismatch;
        self.log.emit(
            LogEvent::new(ts, SERVICE, Event::ReconciliationMismatch)
                .with("trigger", trigger.to_string())
                .with("differences", text.clone())
                .with("trading_state", state.as_str()),
        );
        self.log.flush();
        w.links.risk.do_send(RestrictTrading {
            state,
            actor: "reconciliation".into(),
            reason: format!("the books differ from the venue's ({trigger}): {text}"),
        });
    }

    /// A fill of an order vigil does not know (already booked: the venue holds it). One
    /// of vigil's own (a fill racing a cancel) is only logged; anyone else's is drift.
    pub(super) fn external_fill(&mut self, fill: &Fill) {
        if is_vigils(&fill.client_order_id) || self.watch.is_none() {
            return;
        }
        let d = Difference {
            kind: "external_fill",
            subject: fill.fill_id.clone(),
            journal: "no such order".into(),
            venue: format!(
                "{} {} {} at {} for order {} (not vigil's)",
                fill.side,
                fill.quantity,
                self.symbols.name(fill.symbol),
                fill.price,
                fill.client_order_id
            ),
            action: "journaled and booked: the venue's position holds it".into(),
            mismatch: true,
        };
        self.on_differences(&[d], "fill");
    }

    /// The venue could not be reached with an order: from now on orders are held, and
    /// the venue is asked again with backoff.
    pub(super) fn begin_outage(&mut self, e: &VenueError, ctx: &mut Context<Self>) {
        let Some(w) = self.watch.as_ref() else { return };
        if self.outage.is_none() {
            let backoff = w.links.retry_initial;
            self.outage = Some(Outage {
                since: self.wall.now(),
                backoff,
                retrying: false,
                withdrawn: 0,
            });
            self.log.emit(
                LogEvent::new(self.stamp(), SERVICE, Event::OrdersPaused)
                    .with("venue", self.venue_name.clone())
                    .with("error", e.to_string())
                    .with("pending", self.held.len())
                    .with("retry_in_ms", backoff.as_millis() as u64),
            );
            self.log.flush();
            self.schedule_retry(ctx);
        }
    }

    /// Keeps `request` (journaled, not sent) until the venue answers; `attempted` when it
    /// was sent once and the answer was lost.
    ///
    /// An order is sent only if it is still wanted: an order held earlier that `request`
    /// replaces (one of its `cancels`) is withdrawn here, never sent, and the cancels that
    /// order carried pass to `request`.
    pub(super) fn hold(
        &mut self,
        request: OrderRequest,
        cancels: Vec<ClientOrderId>,
        attempted: bool,
    ) {
        if let Some(o) = self.open.get_mut(&request.client_order_id) {
            o.status = OrderStatus::New;
        }
        let mut at_venue = Vec::with_capacity(cancels.len());
        for id in cancels {
            match self
                .held
                .iter()
                .position(|h| h.request.client_order_id == id)
            {
                // Withdrawn already: looked up (and cancelled) at the venue's return.
                Some(i) if !self.held[i].wanted => {}
                Some(i) => {
                    let why = "replaced by a newer intent while the venue was down: never sent";
                    for carried in self.withdraw(i, why) {
                        if !at_venue.contains(&carried) {
                            at_venue.push(carried);
                        }
                    }
                }
                None => at_venue.push(id),
            }
        }
        self.held.push(Held {
            request,
            cancels: at_venue,
            attempted,
            wanted: true,
        });
    }

    /// Withdraws the held order at `index`: no longer wanted, it is not sent when the venue
    /// returns. One never sent is closed now (journaled cancelled, `order_cancelled` with
    /// reason `why`); one `attempted` stays held, unwanted, to be looked up at the venue's
    /// return.
    /// Returns the cancels it carried (orders at the venue it was to replace).
    fn withdraw(&mut self, index: usize, why: &str) -> Vec<ClientOrderId> {
        if let Some(o) = self.outage.as_mut() {
            o.withdrawn += 1;
        }
        let h = &mut self.held[index];
        h.wanted = false;
        let cancels = std::mem::take(&mut h.cancels);
        if !h.attempted {
            let h = self.held.remove(index);
            self.close_unsent(&h.request.client_order_id, why);
        }
        cancels
    }

    /// Closes an order that never reached the venue: journaled cancelled, logged, counted.
    fn close_unsent(&mut self, id: &ClientOrderId, why: &str) {
        let Some(order) = self.open.remove(id) else {
            return;
        };
        self.cancelled += 1;
        self.journal_status(id, JournalStatus::Cancelled, None, None, Some(why));
        self.log.emit(
            LogEvent::new(self.stamp(), SERVICE, Event::OrderCancelled)
                .trace(&order.trace_id)
                .with("symbol", self.symbols.shared(order.symbol))
                .with("order_id", id.shared())
                .with("filled_quantity", Decimal::ZERO)
                .with("reason", why.to_string()),
        );
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        let Some(outage) = self.outage.as_mut() else {
            return;
        };
        if outage.retrying {
            return;
        }
        outage.retrying = true;
        let deadline = vigil_core::later(self.wall.now(), vigil_core::span(outage.backoff));
        let sleep = self.wall.sleep_until(deadline);
        ctx.spawn(fut::wrap_future::<_, Self>(sleep).map(|(), act, ctx| act.retry(ctx)));
    }

    /// Asks the venue again; when it answers: reconcile, then send what was held.
    fn retry(&mut self, ctx: &mut Context<Self>) {
        let venue = self.venue.clone();
        ctx.spawn(venue_ping(venue).into_actor(self).map(|res, act, ctx| {
            let Some(outage) = act.outage.as_mut() else {
                return;
            };
            outage.retrying = false;
            match res {
                Ok(()) => act.end_outage(ctx),
                Err(e) => {
                    let max = act
                        .watch
                        .as_ref()
                        .map_or(outage.backoff, |w| w.links.retry_max);
                    outage.backoff = (outage.backoff * 2).min(max);
                    act.venue_link.up = false;
                    act.venue_link.error = Some(e.to_string());
                    act.schedule_retry(ctx);
                }
            }
        }));
    }

    /// The venue answers: each held order is looked up by its client order id (the first
    /// attempt may have reached the venue) and sent only when the venue does not have it
    /// and it is still wanted; one no longer wanted is cancelled if the venue has it. Then
    /// the books are reconciled.
    fn end_outage(&mut self, ctx: &mut Context<Self>) {
        let held = std::mem::take(&mut self.held);
        let venue = self.venue.clone();
        let fut = async move {
            let mut out = Vec::with_capacity(held.len());
            for h in held {
                let mut cancel_errors = Vec::new();
                for id in &h.cancels {
                    if let Err(e) = venue.cancel_order(id).await {
                        cancel_errors.push(e);
                    }
                }
                let found = venue.order(&h.request.client_order_id).await;
                let outcome = match (h.wanted, found) {
                    (_, Err(e)) => Resumed::Failed(e),
                    // The first attempt reached the venue after all: not sent again.
                    (true, Ok(Some(_))) => Resumed::Sent(Ok(OrderAck::Accepted {
                        venue_order_id: String::new(),
                    })),
                    (true, Ok(None)) => Resumed::Sent(venue.submit_order(&h.request).await),
                    (false, Ok(Some(o))) if o.status.is_open() => {
                        match venue.cancel_order(&h.request.client_order_id).await {
                            Ok(()) => Resumed::Withdrawn { reached: true },
                            Err(e) => Resumed::Failed(e),
                        }
                    }
                    (false, Ok(Some(_))) => Resumed::Withdrawn { reached: true },
                    (false, Ok(None)) => Resumed::Withdrawn { reached: false },
                };
                out.push((h, cancel_errors, outcome));
            }
            out
        };
        ctx.wait(fut.into_actor(self).map(move |outcomes, act, ctx| {
            let Some(outage) = act.outage.take() else {
                return;
            };
            let mut sent = 0_u64;
            for (mut h, cancel_errors, outcome) in outcomes {
                for e in &cancel_errors {
                    act.venue_error(e, "cancel");
                }
                let id = h.request.client_order_id.clone();
                match outcome {
                    Resumed::Failed(e @ VenueError::Unreachable { .. })
                    | Resumed::Sent(Err(e @ VenueError::Unreachable { .. })) => {
                        // Gone again: held until the next attempt; it may have reached the
                        // venue, and the cancels already sent are not sent again.
                        act.begin_outage(&e, ctx);
                        h.attempted = true;
                        h.cancels.clear();
                        act.held.push(h);
                    }
                    Resumed::Failed(e) if h.wanted => act.on_ack(&id, Err(e)),
                    Resumed::Failed(e) => {
                        // Not wanted, and the venue could not say or cancel it: the
                        // reconciliation below reports what the venue holds.
                        act.venue_error(&e, "cancel");
                    }
                    Resumed::Sent(ack) => {
                        sent += 1;
                        act.on_ack(&id, ack);
                    }
                    // Its cancel report closes it, as any cancel does.
                    Resumed::Withdrawn { reached: true } => {}
                    Resumed::Withdrawn { reached: false } => {
                        act.close_unsent(
                            &id,
                            "replaced while the venue was down: never reached it",
                        );
                    }
                }
            }
            if let Some(again) = act.outage.as_mut() {
                // Down again: this outage goes on.
                again.since = outage.since;
                again.withdrawn += outage.withdrawn;
                return;
            }
            let down_s = (act.wall.now() - outage.since).num_seconds().max(0);
            act.venue_link.up = true;
            act.log.emit(
                LogEvent::new(act.stamp(), SERVICE, Event::OrdersResumed)
                    .with("venue", act.venue_name.clone())
                    .with("down_s", down_s as u64)
                    .with("sent", sent)
                    .with("withdrawn", outage.withdrawn),
            );
            act.drain_reports_then(ctx, |act, ctx| {
                act.log.flush();
                act.check_venue(ctx, "venue_returned");
            });
        }));
    }

    /// Drops the held orders (`vigil ctl cancel-all` during an outage): they are not sent
    /// when the venue returns (one whose first attempt may have reached it is looked up
    /// and cancelled there). Returns how many.
    pub(super) fn drop_held(&mut self, why: &str) -> usize {
        let mut dropped = 0;
        let mut i = 0;
        while i < self.held.len() {
            if !self.held[i].wanted {
                i += 1;
                continue;
            }
            dropped += 1;
            let attempted = self.held[i].attempted;
            // What it was to replace stays for the cancel-all itself to cancel.
            self.withdraw(i, why);
            if attempted {
                i += 1;
            }
        }
        dropped
    }
}

/// What became of a held order when the venue returned.
enum Resumed {
    /// Sent (or found at the venue, so not sent again), with the venue's answer.
    Sent(Result<OrderAck, VenueError>),
    /// No longer wanted, and not sent: `reached` when the first attempt had reached the
    /// venue (and it was cancelled there).
    Withdrawn { reached: bool },
    /// The venue could not be asked.
    Failed(VenueError),
}

async fn venue_ping(
    venue: std::sync::Arc<dyn vigil_providers::ExecutionVenue>,
) -> Result<(), VenueError> {
    venue.ping().await
}

fn difference_event(ts: Timestamp, d: &Difference) -> LogEvent {
    LogEvent::new(ts, SERVICE, Event::ReconcileDifference)
        .level(if d.mismatch {
            Level::Error
        } else {
            Level::Warn
        })
        .with("kind", d.kind)
        .with("subject", d.subject.clone())
        .with("journal", d.journal.clone())
        .with("venue", d.venue.clone())
        .with("action", d.action.clone())
        .with("mismatch", d.mismatch)
}

/// The events a reconciliation at start logs: one per difference, the summary, and the
/// CRITICAL mismatch when trading stays restricted.
pub fn reconciliation_events(
    ts: Timestamp,
    rec: &Reconciliation,
    took_ms: u64,
    restricted: Option<TradingState>,
) -> Vec<LogEvent> {
    let mut out: Vec<LogEvent> = rec
        .differences
        .iter()
        .map(|d| difference_event(ts, d))
        .collect();
    let mismatches = rec.differences.iter().filter(|d| d.mismatch).count();
    let mut done = LogEvent::new(ts, SERVICE, Event::ReconciliationCompleted)
        .with("trigger", "start")
        .with("book", rec.book.clone())
        .with("opened", rec.opened)
        .with("fills_journaled", rec.fills_journaled)
        .with("fills_recovered", rec.fills_recovered)
        .with("open_orders_adopted", rec.open_orders.len())
        .with("differences", rec.differences.len())
        .with("mismatches", mismatches)
        .with("passed", rec.passed())
        .with("cash", rec.cash)
        .with("took_ms", took_ms);
    if let Some(t) = rec.last_bar_at {
        done = done.with("resume_after", t.to_rfc3339());
    }
    out.push(done);
    if let Some(state) = restricted.filter(|_| !rec.passed()) {
        out.push(
            LogEvent::new(ts, SERVICE, Event::ReconciliationMismatch)
                .with("trigger", "start")
                .with("differences", rec.mismatches())
                .with("trading_state", state.as_str()),
        );
    }
    out
}
