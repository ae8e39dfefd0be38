//! Closing the session: the alerts the session still owes, its last log line, the
//! dispatcher's and the store's last work, then the summary handed over and the actor
//! stopped.

use std::time::Duration;

use actix::prelude::*;
use vigil_core::Level;
use vigil_log::{Event, LogEvent};

use super::MonitorAgent;
use crate::SERVICE;

/// How long the session's end waits for the dispatcher to deliver what it holds.
const DELIVERY_DRAIN: Duration = Duration::from_secs(10);

/// Finish closing the session (sent through the mailbox, after queued delivery reports).
#[derive(actix::Message, Debug)]
#[rtype(result = "()")]
struct CloseNow;

impl MonitorAgent {
    /// Hands over what the session's alerting still owes (the day's summary of the notices
    /// held for it), logs the session's last line after it, then drains alerting and hands
    /// the summary over. Only the channels' delivery reports can follow `session_stopped`.
    pub(super) fn close_session(&mut self, ctx: &mut Context<Self>) {
        let at = self.moment();
        if let Some(al) = self.alerting.as_mut() {
            let steps = al.closing_summary(at);
            self.run(steps);
        }
        self.log.emit(self.book.stopped_event(self.clock.as_ref()));
        self.log.flush();
        self.drain_alerts(ctx);
    }

    /// Waits for the dispatcher to deliver what it holds, then finishes the close (see
    /// [`CloseNow`]).
    fn drain_alerts(&mut self, ctx: &mut Context<Self>) {
        let Some(al) = self.alerting.as_mut() else {
            self.finish_close(ctx);
            return;
        };
        let Some(dispatcher) = al.dispatcher.take() else {
            ctx.address().do_send(CloseNow);
            return;
        };
        let drain = tokio::task::spawn_blocking(move || dispatcher.shutdown(DELIVERY_DRAIN));
        ctx.wait(drain.into_actor(self).map(|res, act, ctx| {
            let res = res
                .map_err(|e| format!("delivery drain task failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(e) = res {
                eprintln!("vigil: ERROR alert deliveries not finished at shutdown: {e}");
                act.log.emit(
                    LogEvent::new(act.clock.now(), SERVICE, Event::AlertDeliveryFailed)
                        .with("channel", "all")
                        .with("error", e)
                        .with("next", "shutdown: undelivered notices are in the alert log"),
                );
            }
            // Through the mailbox: the delivery reports queued during the drain go first.
            ctx.address().do_send(CloseNow);
        }));
    }

    /// Saves the alert state, waits for the store to have it, hands over the summary and stops.
    fn finish_close(&mut self, ctx: &mut Context<Self>) {
        let persister = self.alerting.as_mut().and_then(|al| {
            if let Err(e) = al.persist(self.wall.now()) {
                self.log.emit(
                    LogEvent::new(self.clock.now(), SERVICE, Event::AlertStoreFailed)
                        .with("error", e),
                );
            }
            al.persist = None; // closing the channel ends the persister once it is done
            al.persister.take()
        });
        let Some(task) = persister else {
            self.hand_over(ctx);
            return;
        };
        ctx.wait(task.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                act.store_failed(format!("the alert store task failed: {e}"));
            }
            act.hand_over(ctx);
        }));
    }

    fn hand_over(&mut self, ctx: &mut Context<Self>) {
        self.log.flush();
        let now = self.clock.now();
        if let Some(done) = self.done.take()
            && done.send(self.book.summary.clone()).is_err()
        {
            // Whoever ran the session is gone; the summary is in the log line above.
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::AgentStopped)
                    .level(Level::Warn)
                    .with("note", "session runner was gone before the summary"),
            );
        }
        ctx.stop();
    }
}

impl Handler<CloseNow> for MonitorAgent {
    type Result = ();

    fn handle(&mut self, _msg: CloseNow, ctx: &mut Self::Context) {
        self.finish_close(ctx);
    }
}
