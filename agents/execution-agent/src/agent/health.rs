//! The agent's health: the heartbeat to the Monitor with its figures, and the venue's
//! round trip, pinged off the order path; after each ping that answers, the venue's reports
//! since the last bar are booked.

use actix::prelude::*;
use vigil_core::AgentState;
use vigil_messages::Figures;

use super::ExecutionAgent;
use crate::business::BusinessWatch;

impl ExecutionAgent {
    /// Pings the venue off the order path and records the round trip.
    fn ping_venue(&mut self, ctx: &mut Context<Self>) {
        if self.pinging || self.core.state != AgentState::Running {
            return;
        }
        self.pinging = true;
        let venue = self.venue.clone();
        let wall = self.core.wall.clone();
        let fut = async move {
            let t0 = wall.now();
            let res = venue.ping().await;
            (res, wall.now() - t0)
        };
        ctx.spawn(fut.into_actor(self).map(|(res, took), act, ctx| {
            act.pinging = false;
            let was_up = act.venue_link.up;
            match res {
                Ok(()) => {
                    act.venue_link.up = true;
                    act.venue_link.calls_ok += 1;
                    act.venue_link.error = None;
                    act.venue_link.latency_s =
                        Some(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                    act.book_between_bars(ctx);
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

    /// Books what the venue reported since the last bar. Reports are otherwise booked at
    /// the end of each batch of bars and after each order; a live venue's fills also come
    /// while no bar does (the feed down, a quiet market), and the book must not wait for
    /// the next bar to hold them. An in-process venue reports only at bars, whose batch
    /// books them: it has nothing left here. Not while the venue is down (its return
    /// books and reconciles) or the agent is not running.
    fn book_between_bars(&mut self, ctx: &mut Context<Self>) {
        if self.outage.is_down() || self.core.state != AgentState::Running {
            return;
        }
        self.drain_reports_then(ctx, |act, _| act.core.log.flush());
    }

    pub(super) fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let (decision_latency_s, latency_dropped) = self.latency.take_fresh();
        self.core.heartbeat(
            self.orders,
            Figures::Execution {
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
                ledgers: if self.ledgers.split() {
                    self.ledgers.books().to_vec()
                } else {
                    Vec::new()
                },
                decision_latency_s,
                latency_dropped,
            },
        );
        self.ping_venue(ctx);
    }
}
