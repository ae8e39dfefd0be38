//! Bars to the venue: each bar of a segment is shown to the venue (which fills the open
//! orders on it), the fills are booked, the book is marked, the business metrics and the
//! drawdown control line see the equity; a bar beyond the line asks the Risk agent in band.

use actix::prelude::*;
use vigil_calendar::Phase;
use vigil_core::{AgentId, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::{BatchDone, DrawdownReport, NextReport, PositionView, Segment};
use vigil_store::JournalEntry;

use super::{ExecutionAgent, SERVICE};
use crate::drawdown::Breach;

impl ExecutionAgent {
    /// Logs the book as it stands at the close (positions, cash, equity) and the day's
    /// equity curve.
    fn snapshot(&mut self, at: Timestamp) {
        let positions = self
            .portfolio
            .positions()
            .map(|(id, p)| format!("{}={}", self.symbols.name(id), p.quantity))
            .collect::<Vec<_>>()
            .join(",");
        self.core.log.emit(
            LogEvent::new(self.core.clock.stamp(at), SERVICE, Event::PositionsSnapshot)
                .with("positions", positions)
                .with("cash", self.portfolio.cash())
                .with("equity", self.portfolio.equity())
                .with("pnl", self.portfolio.pnl())
                .with("open_orders", self.open.len()),
        );
        if let Some(curve) = self.curve.line(vigil_core::exchange_date(at)) {
            self.core.log.emit(
                LogEvent::new(self.core.clock.stamp(at), SERVICE, Event::EquityCurve)
                    .with("session", curve.session.to_string())
                    .with("points", curve.points)
                    .with("max_drawdown", curve.max_drawdown)
                    .with("bars", curve.bars),
            );
        }
    }

    /// Handles `seg` from bar `from` on. A bar beyond the drawdown control line hands the
    /// rest to [`Self::report_drawdown`], which goes on after the Risk agent's answer; fills
    /// waiting for their journal commit (write-ahead) hand the rest of the bar to
    /// [`Self::after_market_data`] once it is durable.
    pub(super) fn run_segment(&mut self, mut seg: Segment, from: usize, ctx: &mut Context<Self>) {
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
        if seg.last {
            // Phases after the last bar: the clock's marks with no bar (a quiet market).
            for mark in seg.phases.iter().filter(|m| m.before >= seg.bars.len()) {
                if mark.phase == Phase::FinalSnapshot {
                    self.snapshot(mark.at);
                }
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
        if self.ledgers.split() {
            self.ledgers.mark(symbol, close);
            if let Some((_, false)) = self.ledger_day.roll(ts) {
                // A new exchange day: the books at its first bar, marked as the account.
                let line = self.ledgers_line(self.core.clock.stamp(ts));
                self.core.log.emit(line);
            }
        }
        let equity = self.portfolio.equity();
        self.curve.on_bar(ts, equity);
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
        self.core.log.flush();
        self.in_hand = None;
        if seg.last {
            self.core.backlogs.sent(AgentId::Data);
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
        self.core.log.flush();
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

    /// Journals the last bar handled, so that a restart resumes after it.
    fn mark_handled(&mut self, seg: &Segment) {
        if !self.journal.is_on() || seg.range.is_empty() {
            return;
        }
        if let Some(bar) = seg.bars.get(seg.range.end - 1) {
            self.journal(JournalEntry::Mark {
                last_bar_at: bar.ts,
            });
        }
    }
}
