//! The venue as the source of truth during the session:
//! - reconciliation on an interval, and when the venue returns after an outage, which takes
//!   the venue's positions and cash when they differ and restricts trading (a trade made at
//!   the broker by hand); the comparison is [`SessionReconciler`]'s;
//! - a fill of an order that is not vigil's, handled the same way;
//! - the verification after a data outage ([`VerifyData`]), answered to the Risk agent.

use std::time::Duration;

use actix::prelude::*;
use vigil_core::{AgentState, Fill, Level, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::{DataVerified, RestrictTrading, VerifyData};
use vigil_providers::VenueError;
use vigil_recovery::{
    Difference, SessionReconciler, books_verdict, difference_event, mismatch_text, verification,
};

use super::{ExecutionAgent, SERVICE};

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

/// Reconciliation during the session: its links and the check under way.
pub(super) struct Watch {
    pub(super) links: ReconcileLinks,
    /// A check is under way.
    checking: bool,
    reconciler: SessionReconciler,
    /// A verification after a data outage, answered when the check under way completes.
    verify: Option<VerifyData>,
}

impl ExecutionAgent {
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
            reconciler: SessionReconciler::default(),
            verify: None,
        });
        self
    }

    /// Starts the interval checks (from `started`).
    pub(super) fn start_watch(&mut self, ctx: &mut Context<Self>) {
        let Some(every) = self.watch.as_ref().and_then(|w| w.links.interval) else {
            return;
        };
        vigil_messages::run_every(ctx, self.core.wall.clone(), every, |act, ctx| {
            act.check_venue(ctx, "interval");
        });
    }

    /// Reads the venue's positions and cash, holding the mailbox meanwhile (no order goes
    /// out and no bar is booked while the two books are compared).
    pub(super) fn check_venue(&mut self, ctx: &mut Context<Self>, trigger: &'static str) {
        let Some(w) = self.watch.as_mut() else { return };
        if w.checking || self.outage.is_down() || self.core.state != AgentState::Running {
            return;
        }
        w.checking = true;
        // A verification compares the working orders too.
        let with_orders = w.verify.is_some();
        let venue = self.venue.clone();
        let wall = self.core.wall.clone();
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
                        let books = books_verdict(
                            differences,
                            &positions,
                            &account,
                            act.open.ids(),
                            orders,
                        );
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
            act.core.log.flush();
        }));
    }

    /// Compares the books with the venue's, takes the venue's figures where they differ;
    /// returns how many differences were found.
    fn compare_with_venue(
        &mut self,
        positions: &[vigil_providers::VenuePosition],
        account: &vigil_providers::Account,
        trigger: &'static str,
        took_ms: u64,
    ) -> usize {
        let working = self.open.working_symbols();
        let Some(w) = self.watch.as_mut() else {
            return 0;
        };
        let found = w.reconciler.check(
            &self.portfolio,
            &working,
            positions,
            account,
            &self.symbols,
            trigger,
        );
        if !found.is_empty() {
            self.portfolio.resync(
                account.cash,
                positions
                    .iter()
                    .map(|p| (p.symbol, p.quantity, p.avg_price)),
            );
            for e in found.entries {
                self.journal(e);
            }
        }
        let differences = found.differences;
        let ts = self.stamp();
        self.core.log.emit(
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
        if self.watch.is_some() && self.outage.is_down() {
            line = line.level(Level::Warn).with(
                "waiting_for",
                "the broker (unreachable): verified when it answers",
            );
        }
        self.core.log.emit(line);
        self.core.log.flush();
        let Some(w) = self.watch.as_mut() else {
            self.send_verdict(
                msg,
                Ok("the venue runs in-process: its book is the session's book".into()),
            );
            return;
        };
        if self.core.state != AgentState::Running {
            self.send_verdict(
                msg,
                Err("the execution agent has stopped: the books cannot be reconciled".into()),
            );
            return;
        }
        w.verify = Some(msg);
        // With the broker down too, its return reconciles (`venue_returned`), and that
        // check answers the verification.
        if !self.outage.is_down() && !w.checking {
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
        let (passed, report) = verification(books, msg.missing_bars);
        to.do_send(DataVerified { passed, report });
    }

    /// Logs each difference, and on a mismatch the CRITICAL event and the restriction of
    /// trading (the venue's figures are already taken).
    fn on_differences(&mut self, differences: &[Difference], trigger: &str) {
        let ts = self.stamp();
        for d in differences {
            self.core.log.emit(difference_event(ts, d));
        }
        let text = mismatch_text(differences);
        if text.is_empty() {
            return;
        }
        let Some(w) = self.watch.as_ref() else { return };
        let state = w.links.on_mismatch;
        self.core.log.emit(
            LogEvent::new(ts, SERVICE, Event::ReconciliationMismatch)
                .with("trigger", trigger.to_string())
                .with("differences", text.clone())
                .with("trading_state", state.as_str()),
        );
        self.core.log.flush();
        w.links.risk.do_send(RestrictTrading {
            state,
            actor: "reconciliation".into(),
            reason: format!("the books differ from the venue's ({trigger}): {text}"),
        });
    }

    /// A fill of an order vigil does not know (already booked: the venue holds it). One
    /// of vigil's own (a fill racing a cancel) is only logged; anyone else's is drift.
    pub(super) fn external_fill(&mut self, fill: &Fill) {
        if fill.client_order_id.is_vigils() || self.watch.is_none() {
            return;
        }
        let d = Difference::fill(fill, &self.symbols, false);
        self.on_differences(&[d], "fill");
    }
}
