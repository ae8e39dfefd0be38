//! The actor's side of alerting: it hands what it hears to [`Alerting`] and carries out the
//! [`Step`]s that come back, reads the operator's requests from the store, and reports a
//! store that fails.

use actix::prelude::*;
use vigil_alert::routing;
use vigil_core::TradingState;
use vigil_log::{Event, LogEvent};

use super::{MonitorAgent, breaker_failed};
use crate::SERVICE;
use crate::alerting::{Moment, Step};

impl MonitorAgent {
    /// Logs one of the Monitor's own findings and hands it to alerting.
    pub(super) fn emit(&mut self, ev: LogEvent) {
        let input = routing::route(&ev);
        self.log.emit(ev);
        if let Some(input) = input {
            let at = self.moment();
            if let Some(steps) = self.alerting.as_mut().map(|al| al.hear(input, at)) {
                self.run(steps);
            }
        }
    }

    /// Now, for alerting.
    pub(super) fn moment(&self) -> Moment {
        let (wall, market) = (self.wall.now(), self.clock.now());
        Moment {
            wall,
            market,
            open: self
                .health
                .as_ref()
                .is_none_or(|h| h.hours_open(market, wall)),
        }
    }

    /// Carries out what alerting decided, in order.
    pub(super) fn run(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Log(ev) => self.log.emit(ev),
                Step::Count(c) => self.count(|| c.record()),
                Step::Halt { rule, reason } => {
                    let actor = format!("alert:{rule}");
                    let res = self
                        .links
                        .set_trading_state(TradingState::Halted, actor, reason);
                    if let Err(e) = res {
                        eprintln!("vigil: CRITICAL alert {rule} could not trip the breaker: {e}");
                        self.log.emit(breaker_failed(
                            self.clock.now(),
                            format!("alert {rule} could not trip the breaker: {e}"),
                        ));
                    }
                }
                Step::StoreFailed(e) => self.store_failed(e),
                Step::Stderr(line) => eprintln!("{line}"),
            }
        }
    }

    pub(super) fn store_failed(&mut self, error: String) {
        self.count(|| metrics::counter!("vigil_alert_store_errors_total").increment(1));
        eprintln!("vigil: CRITICAL alert store: {error}");
        self.log.emit(
            LogEvent::new(self.clock.now(), SERVICE, Event::AlertStoreFailed).with("error", error),
        );
        self.log.flush();
    }

    /// Reads the operator's pending requests from the store (one read at a time).
    pub(super) fn read_requests(&mut self, ctx: &mut Context<Self>) {
        let Some(al) = self.alerting.as_mut() else {
            return;
        };
        let Some(store) = al.store.clone() else {
            return;
        };
        if al.reading_requests || al.persist.is_none() {
            return;
        }
        al.reading_requests = true;
        let read = async move { store.pending_requests().await };
        ctx.spawn(read.into_actor(self).map(|res, act, _ctx| {
            if let Some(al) = act.alerting.as_mut() {
                al.reading_requests = false;
            }
            match res {
                Ok(requests) => act.apply_requests(requests),
                Err(e) => act.store_failed(e.to_string()),
            }
        }));
    }

    pub(super) fn apply_requests(&mut self, requests: Vec<vigil_store::AlertRequest>) {
        for r in requests {
            let at = self.moment();
            if let Some(steps) = self.alerting.as_mut().map(|al| al.apply_request(r, at)) {
                self.run(steps);
                self.log.flush();
            }
        }
    }
}
