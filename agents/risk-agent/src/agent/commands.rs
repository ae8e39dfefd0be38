//! The Risk agent's command handlers: the trading state set or restricted by an operator
//! or a rule, quarantine, the data outage and its verification, and flatten.

use actix::prelude::*;
use vigil_core::{Level, SymbolId, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::{
    BookQuery, CommandError, DataOutage, DataVerified, Flatten, QuarantineChanged, RestrictTrading,
    SetTradingState,
};

use super::{RiskAgent, SERVICE};
use crate::flatten;

impl Handler<SetTradingState> for RiskAgent {
    type Result = Result<String, CommandError>;

    fn handle(&mut self, msg: SetTradingState, _ctx: &mut Self::Context) -> Self::Result {
        let from = self.trading.state();
        Ok(if self.change_state(msg.state, msg.actor, msg.reason) {
            format!("trading state is now {} (was {from})", msg.state)
        } else {
            format!("trading state was already {from}")
        })
    }
}

impl Handler<QuarantineChanged> for RiskAgent {
    type Result = ();

    /// Blocks (or unblocks) new orders in a symbol whose data is in quarantine.
    fn handle(&mut self, msg: QuarantineChanged, _ctx: &mut Self::Context) {
        if msg.on {
            self.quarantined.insert(msg.symbol, msg.reason);
        } else {
            self.quarantined.remove(&msg.symbol);
        }
    }
}

impl Handler<DataOutage> for RiskAgent {
    type Result = ();

    /// Trips the breaker: no data source is healthy.
    fn handle(&mut self, msg: DataOutage, _ctx: &mut Self::Context) {
        let change = self.trading.outage(msg.operator_resumes, msg.reason);
        self.record(self.core.clock.now(), change);
        self.core.log.flush();
    }
}

impl Handler<DataVerified> for RiskAgent {
    type Result = ();

    /// The data is back and was verified (or not): lifts the outage's halt when it passed,
    /// `after_outage` allows it, and nothing else asked for a halt meanwhile.
    fn handle(&mut self, msg: DataVerified, _ctx: &mut Self::Context) {
        // A trip still on the fast path is a request like any other.
        self.take_halt();
        let verification = self.trading.data_verified(msg.passed, &msg.report);
        let now = self.core.clock.now();
        self.core
            .log
            .emit(verification.log_event(now, msg.passed, &msg.report));
        self.record(self.core.clock.now(), verification.change);
        self.core.log.flush();
    }
}

impl Handler<RestrictTrading> for RiskAgent {
    type Result = ();

    /// Tightens trading to at least `msg.state`; never loosens it.
    fn handle(&mut self, msg: RestrictTrading, _ctx: &mut Self::Context) {
        let change = self.trading.restrict(msg.state, msg.actor, msg.reason);
        if self.record(self.core.clock.now(), change) {
            self.core.log.flush();
        }
    }
}

impl Handler<Flatten> for RiskAgent {
    type Result = ResponseFuture<Result<String, CommandError>>;

    /// Goes reduce-only and sends one market order per open position that brings it to
    /// zero (replacing the symbol's open orders). Held in stream order: no batch is decided
    /// while the books are read.
    fn handle(&mut self, msg: Flatten, ctx: &mut Self::Context) -> Self::Result {
        if let Err(e) = flatten::check(self.trading.state()) {
            return Box::pin(async { Err(e) });
        }
        if self.trading.state() == TradingState::Active {
            self.change_state(
                TradingState::ReduceOnly,
                msg.actor.clone(),
                format!("flatten: {}", msg.reason),
            );
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ids: Vec<SymbolId> = self.symbols.iter().map(|(id, _)| id).collect();
        let book = self.exec.book.clone();
        let fut = async move {
            let mut books = Vec::with_capacity(ids.len());
            for id in ids {
                books.push(book.send(BookQuery { symbol: id }).await.map(|b| (id, b)));
            }
            books
        };
        self.holds += 1;
        ctx.spawn(fut.into_actor(self).map(move |books, act, ctx| {
            act.holds -= 1;
            let at = act.last_ts.unwrap_or_else(|| act.core.clock.now());
            let plan = flatten::close_positions(books, at, act.trading.state(), &act.symbols, &msg);
            for order in plan.orders {
                let intent = act.forced(order);
                act.exec.intents.do_send(intent);
            }
            act.core.log.flush();
            act.process(ctx);
            // The caller may have gone; the orders are logged either way.
            if tx.send(plan.answer).is_err() {
                act.core.log.emit(
                    LogEvent::new(act.core.clock.now(), SERVICE, Event::CommandRefused)
                        .level(Level::Warn)
                        .with("command", "flatten")
                        .with("error", "the caller stopped waiting for the answer"),
                );
            }
        }));
        Box::pin(async move {
            rx.await.map_err(|_| {
                CommandError::Unavailable("the risk agent stopped before flattening".into())
            })?
        })
    }
}
