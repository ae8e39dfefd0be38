//! The Risk agent actor: its state, its handlers and the I/O of what its components decide
//! (the trading state in [`crate::trading_state`], signals in [`crate::signal`], the
//! schedule in [`crate::schedule`], the drawdown line in [`crate::drawdown`], flatten in
//! [`crate::flatten`]).

use std::collections::HashMap;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_config::{OrderTypeConfig, RiskConfig};
use vigil_core::{AgentId, Level, Signal, SymbolId, SymbolTable, Timestamp, TradingState};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::{
    AgentCore, AgentWiring, BookQuery, BookSnapshot, DrawdownAnswer, DrawdownReport, Figures, Flow,
    LedgerCross, OrderIntent, PhaseMark, RearmDrawdown, Segment, SignalBatch, StageReport,
    StopReason, TradingStateRecord,
};

use crate::drawdown::{self, DrawdownControl};
use crate::forced::ForcedOrder;
use crate::queue::{Step, StreamQueue};
use crate::schedule::{Schedule, Session};
use crate::signal::{self, Pricing, Tally};
use crate::trading_state::{self, StateChange, TradingControl};

/// The `service` of every log line the agent writes.
pub(crate) const SERVICE: &str = "risk_agent";

/// Where the Risk agent sends its output: the Execution agent's inputs.
#[derive(Clone, Debug)]
pub struct ExecutionLinks {
    /// Bars, cut at signals.
    pub segments: Recipient<Flow<Segment>>,
    /// Book queries.
    pub book: Recipient<BookQuery>,
    /// Approved intents.
    pub intents: Recipient<OrderIntent>,
    /// A canary's crosses between versions' sub-ledgers.
    pub crosses: Recipient<LedgerCross>,
    /// Re-arming of the drawdown control line.
    pub rearm: Recipient<RearmDrawdown>,
}

/// The Risk agent actor.
pub struct RiskAgent {
    cfg: RiskConfig,
    pricing: Pricing,
    trading: TradingControl,
    symbols: SymbolTable,
    core: AgentCore,
    exec: ExecutionLinks,
    queue: StreamQueue,
    /// Answers the queue waits for (a book query, a flatten's book reads): while any is
    /// outstanding no batch is decided, but commands and drawdown reports still are.
    holds: u32,
    /// Symbols in quarantine (a data anomaly, or an operator), and why: no new order in them.
    quarantined: HashMap<SymbolId, String>,
    schedule: Schedule,
    tally: Tally,
    last_ts: Option<Timestamp>,
    /// Every change of the trading state goes here to be saved (the breaker survives a
    /// restart).
    saved: Option<tokio::sync::mpsc::UnboundedSender<TradingStateRecord>>,
    /// The state a previous process saved, announced when the agent starts.
    restored: Option<TradingStateRecord>,
    /// The saved outage's halt could not be restored: said once the agent runs.
    restore_error: Option<String>,
    /// The last record saved (or restored): saved again when only the outage's halt
    /// changes.
    last_saved: Option<TradingStateRecord>,
    /// The breaker's fast path from the Monitor.
    halt: vigil_messages::HaltLatch,
    drawdown: DrawdownControl,
    /// The input ended; the agent stops once the Execution agent has the end too.
    ending: Option<StopReason>,
}

impl std::fmt::Debug for RiskAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskAgent")
            .field("state", &self.trading.state())
            .field("approved", &self.tally.approved)
            .field("rejected", &self.tally.rejected)
            .finish()
    }
}

impl RiskAgent {
    /// Creates the agent, wired by `wiring` and logging to `log`; its output goes to the
    /// Execution agent through `exec`.
    pub fn new(
        cfg: RiskConfig,
        order_type: OrderTypeConfig,
        limit_offset_bps: Decimal,
        symbols: SymbolTable,
        wiring: AgentWiring,
        log: LogBuffer,
        exec: ExecutionLinks,
    ) -> Self {
        Self {
            trading: TradingControl::new(cfg.initial_state),
            cfg,
            pricing: Pricing {
                order_type,
                limit_offset_bps,
            },
            symbols,
            core: AgentCore::new(AgentId::Risk, wiring, log),
            exec,
            queue: StreamQueue::default(),
            holds: 0,
            quarantined: HashMap::new(),
            schedule: Schedule::default(),
            tally: Tally::default(),
            last_ts: None,
            saved: None,
            restored: None,
            restore_error: None,
            last_saved: None,
            halt: vigil_messages::HaltLatch::default(),
            drawdown: DrawdownControl::default(),
            ending: None,
        }
    }

    /// Checks `halt` before every decision: a trip there halts at once, whatever waits in
    /// the mailbox.
    pub fn with_halt_latch(mut self, halt: vigil_messages::HaltLatch) -> Self {
        self.halt = halt;
        self
    }

    /// Starts in the state a previous process saved (`restored`) and sends every change to
    /// `saved`, so that a tripped breaker survives a restart.
    pub fn with_saved_state(
        mut self,
        restored: Option<TradingStateRecord>,
        saved: tokio::sync::mpsc::UnboundedSender<TradingStateRecord>,
    ) -> Self {
        if let Some(r) = &restored {
            let (trading, dropped) = TradingControl::restored(r.state, r.outage_hold.as_deref());
            self.trading = trading;
            self.restore_error = dropped;
        }
        self.restored = restored.clone();
        self.last_saved = restored;
        self.saved = Some(saved);
        self
    }

    /// After a restart: signals at or before `at` (the last bar the previous run handled)
    /// are not decided again; their bars only warm the models up.
    pub fn with_resume_after(mut self, at: Option<Timestamp>) -> Self {
        self.queue.resume_after = at;
        self
    }

    /// Lets the schedule drive trading: reduce-only from close-only, no new orders outside
    /// a session, active again at the open.
    pub fn with_automation(mut self) -> Self {
        self.schedule.automation = true;
        self
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.core.heartbeat(
            self.tally.approved + self.tally.rejected,
            Figures::Risk {
                approved: self.tally.approved,
                rejected: self.tally.rejected,
                triggers: self.tally.triggers.clone(),
                state: self.trading.state(),
            },
        );
    }

    /// Works through the queue until it is empty or a book query is outstanding.
    fn process(&mut self, ctx: &mut Context<Self>) {
        while self.holds == 0 {
            match self.queue.next_step() {
                None => return,
                Some(Step::End(reason)) => return self.finish(reason, ctx),
                Some(Step::Rest {
                    segment,
                    phases,
                    due,
                    last_bar,
                }) => {
                    self.last_ts = last_bar.or(self.last_ts);
                    self.hand_on(segment, &phases[due]);
                }
                Some(Step::Decide {
                    segment,
                    phases,
                    due,
                    signal,
                    arrived_at,
                }) => {
                    self.hand_on(segment, &phases[due]);
                    self.ask_book(signal, arrived_at, ctx);
                }
            }
        }
    }

    /// Sends `segment` on to the Execution agent, then applies the schedule's `marks`.
    fn hand_on(&mut self, segment: Segment, marks: &[PhaseMark]) {
        self.core.backlogs.sent(AgentId::Execution);
        self.exec.segments.do_send(Flow::Data(segment));
        let events = self
            .schedule
            .apply(marks, self.trading.state(), &self.core.clock);
        for event in events {
            self.core.log.emit(event);
        }
    }

    /// Reads the book for `signal` from the Execution agent, then decides it.
    fn ask_book(&mut self, signal: Signal, arrived_at: Option<Timestamp>, ctx: &mut Context<Self>) {
        self.holds += 1;
        let query = self.exec.book.send(BookQuery {
            symbol: signal.symbol,
        });
        // The hold keeps the queue until the answer is in: decisions stay in stream order.
        // `spawn`, not `wait`: the mailbox stays open, because the Execution agent may need
        // this agent's answer to a drawdown report before it reaches the query.
        ctx.spawn(query.into_actor(self).map(move |res, act, ctx| {
            act.holds -= 1;
            match res {
                Ok(book) => act.on_signal(&signal, &book, arrived_at),
                Err(e) => act.fault(format!(
                    "book query to execution agent failed for {}: {e}",
                    signal.trace_id
                )),
            }
            act.core.log.flush();
            act.process(ctx);
        }));
    }

    fn fault(&mut self, error: String) {
        let now = self.core.clock.now();
        self.tally.rejected += 1;
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentFailed)
                .level(Level::Error)
                .with("error", error.clone()),
        );
        self.core.fault(error, false);
    }

    /// A trip waiting on the fast path from the Monitor, applied before anything is decided.
    fn take_halt(&mut self) {
        if let Some((actor, reason)) = self.halt.take() {
            self.change_state(TradingState::Halted, actor, reason);
        }
    }

    fn on_signal(&mut self, signal: &Signal, book: &BookSnapshot, arrived_at: Option<Timestamp>) {
        self.take_halt();
        let verdict = signal::on_signal(
            &self.cfg,
            self.pricing,
            self.trading.state(),
            self.schedule.session(),
            self.quarantined.get(&signal.symbol),
            signal,
            book,
            self.core.clock.stamp(signal.at),
            self.symbols.shared(signal.symbol),
        );
        if let Some(reason) = &verdict.rejected {
            self.tally.reject(reason);
        }
        if verdict.intent.is_some() {
            self.tally.approved += 1;
        }
        self.core.log.emit(verdict.event);
        // The cross first: the order's allocation is what is left after it.
        if let Some(cross) = verdict.cross {
            self.exec.crosses.do_send(cross);
        }
        if let Some(mut intent) = verdict.intent {
            intent.arrived_at = arrived_at;
            self.exec.intents.do_send(intent);
        }
    }

    /// Logs the approval of an order the agent decided by itself and returns its intent.
    fn forced(&mut self, order: ForcedOrder) -> OrderIntent {
        self.tally.approved += 1;
        let name = self.symbols.shared(order.symbol);
        let ts = self.core.clock.stamp(order.at);
        let (event, intent) = order.approve(name, ts, self.trading.state());
        self.core.log.emit(event);
        intent
    }

    fn finish(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        if let StopReason::Failed(error) = &reason {
            // In band, so it holds whatever the thread timing: no order after bad data.
            self.change_state(
                TradingState::Halted,
                "risk_agent".into(),
                format!("market data stream failed: {error}"),
            );
        }
        self.core.backlogs.sent(AgentId::Execution);
        self.ending = Some(reason.clone());
        // The Execution agent may still be working through the segments ahead of the end,
        // and a drawdown report from one of them needs this agent's answer: it stops only
        // once the Execution agent has handled the end (or is gone).
        let end = self.exec.segments.send(Flow::End(reason));
        ctx.spawn(end.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                act.core.log.emit(
                    LogEvent::new(act.core.clock.now(), SERVICE, Event::AgentStopped)
                        .level(Level::Warn)
                        .with(
                            "note",
                            format!("the execution agent did not take the end of the stream: {e}"),
                        ),
                );
            }
            act.stop(ctx);
        }));
    }

    /// The last of [`Self::finish`]: the figures, then stop.
    fn stop(&mut self, ctx: &mut Context<Self>) {
        let Some(reason) = self.ending.take() else {
            return;
        };
        self.core.stopped(
            self.core
                .stop_line(self.last_ts, &reason)
                .with("approved", self.tally.approved)
                .with("rejected", self.tally.rejected)
                .with("trading_state", self.trading.state().as_str()),
        );
        self.core.report(StageReport::Risk {
            approved: self.tally.approved,
            rejected: self.tally.rejected,
            state: self.trading.state(),
        });
        ctx.stop();
    }

    /// Moves to `state`; returns false when it already held (commands are idempotent).
    fn change_state(&mut self, state: TradingState, actor: String, reason: String) -> bool {
        let change = self.trading.update(state, actor, reason);
        self.record(self.core.clock.now(), change)
    }

    /// Does what a change of the trading state asks, logged at `now` (the market time of
    /// the bar that caused it, for the drawdown line): post it on the halt latch, log it,
    /// re-arm the drawdown line when trading is active again, save it. Returns whether
    /// anything changed.
    fn record(&mut self, now: Timestamp, change: Option<StateChange>) -> bool {
        let hold_changed = self.trading.take_hold_changed();
        let Some(change) = change else {
            // The state stands, but the outage's halt changed: saved all the same.
            if hold_changed && let Some(last) = self.last_saved.clone() {
                self.save(now, last);
            }
            return false;
        };
        // Before anything else: the Monitor reads it to know a trip found the breaker
        // tripped, even once this agent has stopped.
        self.halt.hold(change.to);
        self.core.log.emit(change.log_event(now));
        if let Some((rearm, event)) = self.drawdown.rearm(&change, now, &self.cfg) {
            self.exec.rearm.do_send(rearm);
            self.core.log.emit(event);
        }
        self.core.log.flush();
        let record = TradingStateRecord {
            state: change.to,
            actor: change.actor,
            reason: change.reason,
            at: self.core.wall.now(),
            outage_hold: None,
        };
        self.save(now, record);
        true
    }

    /// Saves `record` with the outage's halt as it stands now.
    fn save(&mut self, now: Timestamp, mut record: TradingStateRecord) {
        record.outage_hold = match self.trading.hold_json() {
            Ok(hold) => hold,
            Err(e) => {
                // Saved without it: after a restart the halt waits for an operator.
                self.core.fault(e, false);
                None
            }
        };
        self.last_saved = Some(record.clone());
        if let Some(saved) = &self.saved
            && saved.send(record).is_err()
        {
            let error = "the trading state cannot be saved: its writer has stopped; \
                         a restart would not remember this change"
                .to_string();
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::AgentFailed)
                    .level(Level::Critical)
                    .with("agent", "risk")
                    .with("error", error.clone()),
            );
            self.core.log.flush();
            self.core.fault(error, false);
        }
    }
}

impl Actor for RiskAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let state = self.trading.state();
        self.halt.hold(state);
        let now = self.core.clock.now();
        if let Some(r) = self.restored.take() {
            self.core.log.emit(trading_state::restored_event(&r, now));
        }
        if let Some(error) = self.restore_error.take() {
            self.core.fault(error, false);
        }
        // At the same instant as the restored state's line.
        self.core.started(
            LogEvent::new(now, SERVICE, Event::AgentStarted)
                .with("trading_state", state.as_str())
                .with("max_position_pct", self.cfg.max_position_pct)
                .with("max_gross_exposure_pct", self.cfg.max_gross_exposure_pct),
        );
        self.heartbeat(ctx);
        self.core.heartbeat_every(ctx, Self::heartbeat);
        // After a restart: the batches that waited; or, if the crash came after the end of
        // the input, the stop it was waiting for.
        if self.ending.is_some() {
            self.stop(ctx);
            return;
        }
        self.process(ctx);
    }
}

impl Supervised for RiskAgent {
    /// Decides nothing from memory: every decision reads the book from the Execution agent
    /// anyway. The queue (input not yet decided) and the trading state (an operator's or a
    /// rule's command) stay; the signal being decided when the crash hit is dropped, and
    /// the queue goes on when the agent starts again.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if self.holds > 0 {
            self.core.log.emit(
                LogEvent::new(self.core.clock.now(), SERVICE, Event::BatchDropped)
                    .with("agent", "risk")
                    .with(
                        "note",
                        "the signal being decided when the crash hit was not decided",
                    ),
            );
        }
        self.holds = 0;
        self.core.log.emit(
            vigil_messages::rebuilt(
                self.core.clock.now(),
                AgentId::Risk,
                "queue kept; the book is read from the execution agent for every decision",
            )
            .with("queued_batches", self.queue.len())
            .with("trading_state", self.trading.state().as_str()),
        );
        self.core.log.flush();
    }
}

impl Handler<Flow<SignalBatch>> for RiskAgent {
    type Result = ();

    fn handle(&mut self, msg: Flow<SignalBatch>, ctx: &mut Self::Context) {
        self.core.taken();
        self.queue.push(msg);
        self.process(ctx);
    }
}

impl Handler<DrawdownReport> for RiskAgent {
    type Result = MessageResult<DrawdownReport>;

    /// Equity is beyond the drawdown control line: does what the line (`drawdown.rs`) decides.
    fn handle(&mut self, msg: DrawdownReport, _ctx: &mut Self::Context) -> Self::Result {
        self.take_halt();
        let ts = self.core.clock.stamp(msg.at);
        let plan = self.drawdown.on_report(
            &self.cfg,
            &msg,
            ts,
            self.trading.state(),
            self.schedule.session() == Session::Closed,
            &self.symbols,
        );
        if let Some(reason) = plan.reduce_only {
            let change =
                self.trading
                    .update(TradingState::ReduceOnly, drawdown::ACTOR.into(), reason);
            self.record(ts, change);
        }
        let orders = plan.orders.into_iter().map(|o| self.forced(o)).collect();
        if let Some(event) = plan.event {
            self.core.log.emit(event);
        }
        self.core.log.flush();
        MessageResult(DrawdownAnswer {
            orders,
            next: plan.next,
        })
    }
}

vigil_messages::agent_skeleton!(RiskAgent, "risk");

mod commands;
#[cfg(test)]
mod tests;
