//! The Data agent's stream: reads the source in use batch by batch (within flow control),
//! screens each bar, and hands the valid ones over downstream (paced, for a paced replay),
//! with the phases of the day they pass.

use actix::prelude::*;
use vigil_core::{Bar, MarketDataEvent, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::StopReason;
use vigil_providers::ProviderError;

use super::lease::Lease;
use super::{DataAgent, SERVICE};
use crate::quarantine::Notice;
use crate::screening::Screened;

impl DataAgent {
    /// Reads the next batch if flow control allows.
    pub(super) fn pull(&mut self, ctx: &mut Context<Self>) {
        if self.pulling || self.ended {
            return;
        }
        if let Some(switched) = self.sources.take_switch(self.core.wall.now()) {
            self.switched(switched, ctx);
            return;
        }
        if let Some(reason) = self.stop_requested.clone() {
            self.end(reason, ctx);
            return;
        }
        if self.in_flight >= self.cfg.max_in_flight {
            return;
        }
        let Some(provider) = self.sources.lend() else {
            return;
        };
        let mut lease = Lease::new(provider, &self.home);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let max = self.pacer.batch_size();
        self.pulling = true;
        let ping = std::mem::take(&mut self.ping_due).then(|| self.core.wall.clone());
        let fut = async move {
            let probe = match ping {
                Some(wall) => {
                    let t0 = wall.now();
                    let res = lease.get().ping().await;
                    Some((res, wall.now() - t0))
                }
                None => None,
            };
            let res = lease.get().next_batch(max, &mut events).await;
            (lease.give_back(), events, res, probe)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(|(provider, events, res, probe), act, ctx| {
                    act.sources.give_back(provider);
                    act.pulling = false;
                    if let Some((ping, took)) = probe {
                        act.record_ping(ping, took);
                    }
                    act.on_events(events, res, ctx);
                }),
        );
    }

    fn on_events(
        &mut self,
        events: Vec<MarketDataEvent>,
        res: Result<bool, ProviderError>,
        ctx: &mut Context<Self>,
    ) {
        // The first read is back: the clock may mark what the bars do not, once the bars it
        // brought are marked by their own times (a timer set before would count from a
        // schedule that has not seen them: the close and post-close of a backlog's day
        // would wait for the phase after them).
        let first_read = !std::mem::replace(&mut self.source_read, true);
        if first_read && res.is_err() {
            self.arm_phase_clock(ctx);
        }
        let more = match res {
            Ok(more) => {
                self.source.calls_ok += 1;
                more
            }
            Err(ProviderError::Malformed(detail)) if self.provider_rejects => {
                // One message of a stream that goes on: never skipped silently, and a
                // source that sends nothing else fails.
                self.events = events;
                let failed = self.parse.rejected(&detail);
                let now = self.now();
                self.core.log.emit(
                    LogEvent::new(now, SERVICE, Event::DataParseFailed)
                        .level(vigil_core::Level::Error)
                        .with("provider", self.sources.name().to_string())
                        .with("rejected_in_a_row", u64::from(self.parse.in_a_row()))
                        .with("error", detail),
                );
                self.core.log.flush();
                match failed {
                    Some(error) => {
                        self.source.calls_failed += 1;
                        self.source_failed(error, Event::DataSourceFailed, ctx);
                    }
                    None => self.after_send(true, ctx),
                }
                return;
            }
            Err(e) => {
                self.source.calls_failed += 1;
                // Bars read before the error were delivered in earlier batches; this one
                // carries none (the provider reports the error on its own).
                self.events = events;
                let event = match e {
                    ProviderError::Malformed(_) => Event::DataParseFailed,
                    _ => Event::DataSourceFailed,
                };
                self.source_failed(e.to_string(), event, ctx);
                return;
            }
        };
        if let Some(reason) = self.stop_requested.clone() {
            self.events = events;
            self.end(reason, ctx);
            return;
        }
        // Where the decision latency starts: the bars are here.
        let arrived = self.core.wall.now();
        let mut bars: Vec<Bar> = self.pool.pop().unwrap_or_default();
        bars.clear();
        if self.provider_rejects {
            self.parse.good(events.len());
        }
        for ev in &events {
            let MarketDataEvent::Bar(bar) = ev;
            if self.accept(bar) {
                bars.push(*bar);
            }
        }
        self.events = events;
        self.core.log.flush();
        // The source delivers valid bars (forwarded, or withheld by a quarantine).
        if let Some(first) = self.fresh.take() {
            self.last_update_at = Some(self.core.wall.now());
            self.parse.bars_arrived();
            if let Some(recovered) = self.sources.bars_arrived(self.core.wall.now()) {
                self.recovered(recovered, first);
            }
        }
        if bars.is_empty() {
            self.after_send(more, ctx);
        } else if let Some(due) = self.pacer.due(bars[0].ts, self.core.wall.now()) {
            self.send_at(due, bars, more, ctx);
        } else {
            self.send(bars, arrived);
            self.after_send(more, ctx);
        }
        if first_read {
            self.arm_phase_clock(ctx);
        }
    }

    fn after_send(&mut self, more: bool, ctx: &mut Context<Self>) {
        if more {
            self.pull(ctx);
        } else {
            let now = self.now();
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::DataSourceExhausted)
                    .with("provider", self.sources.name().to_string())
                    .with("bars", self.bars)
                    .with("rejected", self.screening.rejected()),
            );
            self.end(StopReason::EndOfData, ctx);
        }
    }

    /// Sends `bars` when the wall clock reaches `due` (a paced replay).
    fn send_at(&mut self, due: Timestamp, bars: Vec<Bar>, more: bool, ctx: &mut Context<Self>) {
        self.wait_then(due, ctx, move |act, ctx| {
            // A paced replay's bar arrives when it is let go.
            let arrived = act.core.wall.now();
            act.send(bars, arrived);
            act.after_send(more, ctx);
        });
    }

    /// Waits on the wall clock until `deadline` with the provider in hand, then runs `then`
    /// — unless the stream ended meanwhile, or a stop was asked (which ends it now).
    pub(super) fn wait_then(
        &mut self,
        deadline: Timestamp,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        self.pulling = true;
        let sleep = self.core.wall.sleep_until(deadline);
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(sleep).map(move |(), act, ctx| {
                act.pulling = false;
                if act.ended {
                    return;
                }
                if let Some(reason) = act.stop_requested.clone() {
                    act.end(reason, ctx);
                    return;
                }
                then(act, ctx);
            }),
        );
    }

    /// Screens one bar; says whether it goes on to the models.
    fn accept(&mut self, bar: &Bar) -> bool {
        let (caught_up, rejected) = match self.screening.screen(bar, &self.symbols) {
            Screened::Seen => return false,
            Screened::Checked {
                caught_up,
                rejected,
            } => (caught_up, rejected),
        };
        if let Some(skipped) = caught_up {
            let now = self.core.clock.stamp(bar.ts);
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                    .with("provider", self.sources.name().to_string())
                    .with("first_new_bar", bar.ts)
                    .with("skipped_already_seen", skipped),
            );
        }
        if let Some(reason) = rejected {
            // Stamped with the time the agent stands at, not the bar's: a rejected bar's
            // time may be anything (2099).
            let now = self.now();
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::BarRejected)
                    .with("symbol", self.symbols.shared(bar.symbol))
                    .with("bar_time", bar.ts)
                    .with("reason", reason),
            );
            return false;
        }
        let at = self.core.clock.stamp(bar.ts);
        if let Some(gap) = self
            .gaps
            .on_bar(bar, at, &self.symbols, self.sources.name())
        {
            self.core.log.emit(gap);
        }
        // Valid data arrived, withheld or not: the source is not stale, and market time
        // moves on with it.
        self.fresh = self.fresh.or(Some(bar.ts));
        let forward = self
            .quarantine
            .screen(self.sources.name(), bar, at, &self.symbols);
        // Risk hears of a quarantine before the batch this bar would be in: no signal of a
        // later bar reaches it first.
        self.publish_quarantine();
        if !forward && let Some(market) = &self.market {
            market.advance_to(bar.ts);
        }
        forward
    }

    /// Sends and logs what the quarantine changed, in order; says whether anything did.
    pub(super) fn publish_quarantine(&mut self) -> bool {
        let mut any = false;
        for notice in self.quarantine.drain() {
            any = true;
            match notice {
                Notice::Risk(change) => {
                    if let Some(risk) = &self.quarantine_risk {
                        risk.do_send(change);
                    }
                }
                Notice::Log(line) => self.core.log.emit(line),
            }
        }
        any
    }

    fn send(&mut self, bars: Vec<Bar>, arrived: Timestamp) {
        if let Some(market) = &self.market {
            for bar in &bars {
                market.advance_to(bar.ts);
            }
        }
        self.first = self.first.or(bars.first().map(|b| b.ts));
        self.last = bars.last().map(|b| b.ts).or(self.last);
        self.bars += bars.len() as u64;
        if !bars.is_empty() {
            self.last_update_at = Some(self.core.wall.now());
        }
        let marked = self.phases.marks(&bars, self.core.clock.as_ref());
        self.dispatch(bars, marked, Some(arrived));
    }
}
