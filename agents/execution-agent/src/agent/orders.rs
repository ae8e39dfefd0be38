//! Orders to the venue: an intent is booked as an open order, journaled (committed first
//! under write-ahead) and sent after the cancels of the orders it replaces; the venue's
//! answer accepts or closes it. Cancel-all asks the venue to cancel every open order.

use std::sync::Arc;

use actix::prelude::*;
use vigil_core::{ClientOrderId, Level, OrderAck};
use vigil_log::{Event, LogEvent};
use vigil_messages::{CancelAll, CommandError, OrderIntent};
use vigil_providers::VenueError;
use vigil_store::{JournalOrder, JournalStatus};

use super::{ExecutionAgent, SERVICE};

impl ExecutionAgent {
    /// Books `intent` as an open order and returns the venue calls (cancels of the orders
    /// it replaces, then the order) with their outcome's handling.
    pub(super) fn submit(
        &mut self,
        intent: OrderIntent,
    ) -> impl ActorFuture<Self, Output = ()> + 'static {
        self.now_market = Some(intent.order.submitted_at);
        let ts = self.stamp();
        let symbol = self.symbols.shared(intent.order.symbol);
        if let Some(version) = intent.context.model_version {
            self.seed_ledgers(version);
        }
        let cancels = self.open.submit(&intent);
        for id in &cancels {
            self.core.log.emit(
                LogEvent::new(ts, SERVICE, Event::OrderCancelRequested)
                    .trace(&intent.trace_id)
                    .with("symbol", symbol.clone())
                    .with("order_id", id.shared())
                    .with("reason", "replaced by a newer intent"),
            );
        }
        let intent_order = JournalOrder {
            client_order_id: intent.order.client_order_id.shared(),
            trace_id: intent.trace_id.as_str().into(),
            symbol: symbol.clone(),
            side: intent.order.side,
            quantity: intent.order.quantity,
            order_type: intent.order.order_type,
            limit_price: intent.order.limit_price,
            reference_price: intent.reference_price,
            decided_at: intent.order.submitted_at,
        };
        let request = intent.order.clone();
        self.orders += 1;
        let mut submitted = LogEvent::new(ts, SERVICE, Event::OrderSubmitted)
            .trace(&intent.trace_id)
            .with("symbol", symbol)
            .with("side", intent.order.side.as_str())
            .with("quantity", intent.order.quantity)
            .with("price", intent.reference_price)
            .with("order_type", intent.order.order_type.as_str())
            .with("order_id", intent.order.client_order_id.shared());
        if let Some(limit) = intent.order.limit_price {
            submitted = submitted.with("limit_price", limit);
        }
        self.core.log.emit(submitted.context(intent.context));
        let commit = match self.journal.intent(intent_order) {
            Ok(commit) => commit,
            Err(e) => {
                self.fault_fatal(format!("journal: {e}"));
                None
            }
        };
        let venue = self.venue.clone();
        let calls = cancels.len() as u64 + 1;
        let arrived = intent.arrived_at;
        // The venue is down: the order waits (journaled) for it to come back.
        let hold = self.outage.is_down();
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
                // The venue answered: the decision is there.
                if ack.is_ok()
                    && let Some(at) = arrived
                {
                    let took = act.core.wall.now() - at;
                    act.latency
                        .record(took.num_nanoseconds().unwrap_or(i64::MAX) as f64 / 1e9);
                }
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
                act.core.log.flush();
            })
    }

    /// An intent that could not be committed was not sent: the order is dropped, and the
    /// fault is fatal (a journal that cannot be written cannot recover anything).
    fn not_journaled(&mut self, id: &ClientOrderId, error: String) {
        self.venue_rejects += 1;
        if let Some(order) = self.open.remove(id) {
            self.core.log.emit(
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

    /// The venue's answer to order `id`: accepted, or closed (rejected, a duplicate of an
    /// order the venue holds, not sent).
    pub(super) fn on_ack(&mut self, id: &ClientOrderId, ack: Result<OrderAck, VenueError>) {
        let ts = self.stamp();
        if let Ok(OrderAck::Accepted { venue_order_id }) = ack {
            let Some(order) = self.open.accept(id) else {
                return;
            };
            // Empty: found at the venue by client order id after an outage.
            let venue_order_id: Option<Arc<str>> =
                (!venue_order_id.is_empty()).then(|| venue_order_id.into());
            self.core.log.emit(
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
            return;
        }
        let Some(order) = self.open.remove(id) else {
            return;
        };
        self.venue_rejects += 1;
        let trace = order.trace_id;
        match ack {
            Ok(OrderAck::Accepted { .. }) => {}
            Ok(OrderAck::Rejected { reason }) => {
                self.journal_status(id, JournalStatus::Rejected, None, None, Some(&reason));
                self.core.log.emit(
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
                let reason = format!(
                    "duplicate client order id: the venue already holds order \
                     {venue_order_id} ({}, {filled_quantity} filled); nothing was created \
                     and it is not sent again",
                    status.as_str()
                );
                self.journal_status(id, JournalStatus::Rejected, None, None, Some(&reason));
                self.core.log.emit(
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
                // venue holds the order instead: see `venue_outage`).
                let why = format!("submission failed: {e}");
                // Possibly at the venue after all: it stays an unanswered intent, which
                // recovery looks up by client order id.
                self.journal_status(id, JournalStatus::Intent, None, None, Some(&why));
                self.core.log.emit(
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

    /// Asks the venue to cancel every open order (held ones are dropped: never sent).
    pub(super) fn cancel_all(
        &mut self,
        msg: CancelAll,
    ) -> ResponseActFuture<Self, Result<String, CommandError>> {
        let ts = self.stamp();
        let dropped = self.drop_held(&format!(
            "cancel all while the venue is down: {}",
            msg.reason
        ));
        let ids = self.open.sorted_ids();
        for id in &ids {
            let Some(order) = self.open.get(id) else {
                continue;
            };
            self.core.log.emit(
                LogEvent::new(ts, SERVICE, Event::OrderCancelRequested)
                    .level(Level::Warn)
                    .trace(&order.trace_id)
                    .with("symbol", self.symbols.shared(order.symbol))
                    .with("order_id", id.shared())
                    .with("actor", msg.actor.clone())
                    .with("reason", format!("cancel all: {}", msg.reason)),
            );
        }
        self.core.log.flush();
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
            act.core.log.flush();
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
