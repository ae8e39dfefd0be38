//! The venue's reports (fills, cancels, bars that left an order nothing to take), booked in
//! the book and the open orders, journaled and logged. Under write-ahead, fills are
//! committed to the journal before they are booked.

use actix::prelude::*;
use vigil_core::{ClientOrderId, ExecutionReport, Fill, Level, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_store::JournalStatus;

use super::{ExecutionAgent, SERVICE};
use crate::journal_gateway::Commit;

impl ExecutionAgent {
    /// Books the venue's reports, then calls `then`. Under write-ahead, fills are committed
    /// to the journal first, each with the position and cash it leaves, and booked only once
    /// durable: the mailbox waits for the commit meanwhile.
    pub(super) fn drain_reports_then(
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
                act.core.log.flush();
                then(act, ctx);
            })),
        }
    }

    /// Books the reports whose fills' journal commit came back as `committed`.
    pub(super) fn book_committed(&mut self, committed: Result<(), String>) {
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
    pub(super) fn drain_reports(&mut self, ctx: &mut Context<Self>) {
        self.drain_reports_then(ctx, |_, _| ());
    }

    /// Takes the venue's reports into `report_buf`. Under write-ahead, when they hold
    /// fills, queues each fill with the position and cash it will leave and returns the
    /// commit of the last (the writer commits in order: the earlier ones are durable then).
    pub(super) fn take_reports(&mut self) -> Option<Commit> {
        self.venue.drain_reports(&mut self.report_buf);
        let (queued, commit) =
            self.journal
                .fills_ahead(&self.report_buf, &self.portfolio, &self.symbols)?;
        if let Err(e) = queued {
            self.fault_fatal(format!("journal: {e}"));
        }
        Some(commit)
    }

    /// Books the reports in `report_buf`; `journaled`: their fills are in the journal
    /// already (write-ahead).
    pub(super) fn book_reports(&mut self, journaled: bool) {
        if self.report_buf.is_empty() {
            return;
        }
        let reports = std::mem::take(&mut self.report_buf);
        self.book_each(&reports, true, journaled);
        self.report_buf = reports;
        self.report_buf.clear();
    }

    /// Books each of `reports`; fills only into the open orders unless `book` (see
    /// [`Self::on_fill`]).
    pub(super) fn book_each(&mut self, reports: &[ExecutionReport], book: bool, journaled: bool) {
        for r in reports {
            match r {
                ExecutionReport::Fill(fill) => self.on_fill(fill, book, journaled),
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
        let ts = self.core.clock.stamp(fill.ts);
        let symbol = self.symbols.shared(fill.symbol);
        // The venue is the source of truth: the book takes every fill, one of an order this
        // agent does not track too.
        if book {
            self.portfolio.apply_fill(fill);
        }
        self.fills += 1;
        let booked = self.open.fill(fill);
        // Each version's part of the fill, when the book is split (for its line).
        let mut split = None;
        if book && !self.ledgers.books().is_empty() {
            let (allocation, version, slippage) =
                booked.as_ref().map_or((&[][..], None, 0.0), |o| {
                    (
                        o.allocation.as_slice(),
                        o.context.model_version,
                        rust_decimal::prelude::ToPrimitive::to_f64(&o.slippage_bps).unwrap_or(0.0),
                    )
                });
            let parts = self.ledgers.fill(fill, allocation, version, slippage);
            self.journal_ledgers();
            if self.ledgers.split() {
                split = Some(
                    parts
                        .iter()
                        .map(|(v, q)| format!("{v}={q}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
        }
        // Journaled with the position it leaves.
        if !journaled && let Err(e) = self.journal.fill(fill, &self.symbols, &self.portfolio) {
            self.fault_fatal(format!("journal: {e}"));
        }
        let Some(order) = booked else {
            // A fill for an order this agent does not track: a person must look.
            let error = format!(
                "fill {} for unknown order {} ({} {} {} at {})",
                fill.fill_id, fill.client_order_id, fill.side, fill.quantity, symbol, fill.price
            );
            self.core.log.emit(
                LogEvent::new(ts, SERVICE, Event::FillReceived)
                    .level(Level::Error)
                    .with("order_id", fill.client_order_id.shared())
                    .with("error", error.clone()),
            );
            self.core.fault(error, false);
            self.external_fill(fill);
            return;
        };
        // Execution quality: signed slippage against the price the decision used.
        if let Some(bps) = rust_decimal::prelude::ToPrimitive::to_f64(&order.slippage_bps) {
            self.slippage_sum_bps += bps;
            self.slippage_fills += 1;
        }
        let mut context = order.context;
        context.portfolio_value = Some(self.portfolio.equity());
        let mut line = LogEvent::new(ts, SERVICE, Event::FillReceived);
        if let Some(split) = split {
            line = line.with("allocation", split);
        }
        self.core.log.emit(
            line.trace(&order.trace_id)
                .with("symbol", symbol.clone())
                .with("side", fill.side.as_str())
                .with("quantity", fill.quantity)
                .with("price", fill.price)
                .with("commission", fill.commission)
                .with("leaves_quantity", fill.leaves_quantity)
                .with("order_id", fill.client_order_id.shared())
                .with("fill_id", fill.fill_id.clone())
                .with("slippage_bps", order.slippage_bps)
                .context(context.clone()),
        );
        let status = match order.completed {
            Some(avg) => {
                self.filled += 1;
                self.core.log.emit(
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
                JournalStatus::Filled
            }
            None => JournalStatus::PartiallyFilled,
        };
        self.journal_status(
            &fill.client_order_id,
            status,
            None,
            Some(order.filled),
            None,
        );
    }

    pub(super) fn on_cancelled(&mut self, id: &ClientOrderId, reason: &str, ts: Timestamp) {
        let ts = self.core.clock.stamp(ts);
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
                self.core.log.emit(
                    LogEvent::new(ts, SERVICE, Event::OrderCancelled)
                        .trace(&order.trace_id)
                        .with("symbol", self.symbols.shared(order.symbol))
                        .with("order_id", id.shared())
                        .with("filled_quantity", order.filled)
                        .with("reason", reason.to_string()),
                );
            }
            None => self.core.log.emit(
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
        let ts = self.core.clock.stamp(ts);
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
        self.core.log.emit(ev);
    }
}
