//! The venue outage's I/O: orders held while the venue is unreachable
//! ([`VenueOutage`](crate::venue_outage::VenueOutage) decides which), the venue asked again with backoff, and when it answers each held order
//! looked up by client order id before it is sent (none is sent twice), then the books
//! reconciled.

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_core::{ClientOrderId, OrderAck, OrderRequest};
use vigil_log::{Event, LogEvent};
use vigil_providers::VenueError;
use vigil_store::JournalStatus;

use super::{ExecutionAgent, SERVICE};

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

impl ExecutionAgent {
    /// The venue could not be reached with an order: from now on orders are held, and
    /// the venue is asked again with backoff.
    pub(super) fn begin_outage(&mut self, e: &VenueError, ctx: &mut Context<Self>) {
        let Some(w) = self.watch.as_ref() else { return };
        let Some(backoff) = self.outage.begin(
            self.core.wall.now(),
            vigil_core::Backoff::new(w.links.retry_initial, w.links.retry_max),
        ) else {
            return;
        };
        self.core.log.emit(
            LogEvent::new(self.stamp(), SERVICE, Event::OrdersPaused)
                .with("venue", self.venue_name.clone())
                .with("error", e.to_string())
                .with("pending", self.outage.held())
                .with("retry_in_ms", backoff.as_millis() as u64),
        );
        self.core.log.flush();
        self.schedule_retry(ctx);
    }

    /// Keeps `request` (journaled, not sent) until the venue answers; `attempted` when it
    /// was sent once and the answer was lost. The held orders it replaces are withdrawn
    /// (see [`VenueOutage::hold`](crate::venue_outage::VenueOutage::hold)).
    pub(super) fn hold(
        &mut self,
        request: OrderRequest,
        cancels: Vec<ClientOrderId>,
        attempted: bool,
    ) {
        self.open.hold(&request.client_order_id);
        let why = "replaced by a newer intent while the venue was down: never sent";
        for id in self.outage.hold(request, cancels, attempted) {
            self.close_unsent(&id, why);
        }
    }

    /// Closes an order that never reached the venue: journaled cancelled, logged, counted.
    fn close_unsent(&mut self, id: &ClientOrderId, why: &str) {
        let Some(order) = self.open.remove(id) else {
            return;
        };
        self.cancelled += 1;
        self.journal_status(id, JournalStatus::Cancelled, None, None, Some(why));
        self.core.log.emit(
            LogEvent::new(self.stamp(), SERVICE, Event::OrderCancelled)
                .trace(&order.trace_id)
                .with("symbol", self.symbols.shared(order.symbol))
                .with("order_id", id.shared())
                .with("filled_quantity", Decimal::ZERO)
                .with("reason", why.to_string()),
        );
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        let Some(backoff) = self.outage.schedule_retry() else {
            return;
        };
        let deadline = vigil_core::later(self.core.wall.now(), vigil_core::span(backoff));
        let sleep = self.core.wall.sleep_until(deadline);
        ctx.spawn(fut::wrap_future::<_, Self>(sleep).map(|(), act, ctx| act.retry(ctx)));
    }

    /// Asks the venue again; when it answers: reconcile, then send what was held.
    fn retry(&mut self, ctx: &mut Context<Self>) {
        let venue = self.venue.clone();
        let ping = async move { venue.ping().await };
        ctx.spawn(ping.into_actor(self).map(|res, act, ctx| {
            if !act.outage.attempted() {
                return;
            }
            match res {
                Ok(()) => act.end_outage(ctx),
                Err(e) => {
                    if act.watch.is_some() {
                        act.outage.back_off();
                    }
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
        let held = self.outage.take_held();
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
            let Some(outage) = act.outage.end() else {
                return;
            };
            let mut sent = 0_u64;
            for (h, cancel_errors, outcome) in outcomes {
                for e in &cancel_errors {
                    act.venue_error(e, "cancel");
                }
                let id = h.request.client_order_id.clone();
                match outcome {
                    Resumed::Failed(e @ VenueError::Unreachable { .. })
                    | Resumed::Sent(Err(e @ VenueError::Unreachable { .. })) => {
                        // Gone again: held until the next attempt.
                        act.begin_outage(&e, ctx);
                        act.outage.hold_again(h);
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
            if act.outage.goes_on(&outage) {
                return;
            }
            let down_s = (act.core.wall.now() - outage.since).num_seconds().max(0);
            act.venue_link.up = true;
            act.core.log.emit(
                LogEvent::new(act.stamp(), SERVICE, Event::OrdersResumed)
                    .with("venue", act.venue_name.clone())
                    .with("down_s", down_s as u64)
                    .with("sent", sent)
                    .with("withdrawn", outage.withdrawn),
            );
            act.drain_reports_then(ctx, |act, ctx| {
                act.core.log.flush();
                act.check_venue(ctx, "venue_returned");
            });
        }));
    }

    /// Drops the held orders (`vigil ctl cancel-all` during an outage): they are not sent
    /// when the venue returns (one whose first attempt may have reached it is looked up
    /// and cancelled there). Returns how many.
    pub(super) fn drop_held(&mut self, why: &str) -> usize {
        let (dropped, closed) = self.outage.drop_wanted();
        for id in closed {
            self.close_unsent(&id, why);
        }
        dropped
    }
}
