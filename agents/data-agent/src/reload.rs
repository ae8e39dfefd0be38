//! Calendar overrides reloaded at runtime: the next surprise closure needs no restart.

use actix::prelude::*;
use vigil_log::{Event, LogEvent};
use vigil_messages::ReloadCalendar;

use crate::SERVICE;
use crate::agent::DataAgent;

impl Handler<ReloadCalendar> for DataAgent {
    type Result = ();

    fn handle(&mut self, msg: ReloadCalendar, ctx: &mut Self::Context) {
        let automated = match self.phases_mut().scheduler_mut() {
            Some(s) => {
                s.replace(msg.calendar, msg.schedule);
                true
            }
            None => false,
        };
        let now = self.market_now();
        let log = self.log_mut();
        // The audit record: in the hash-chained log, with who and what.
        log.emit(
            LogEvent::new(now, SERVICE, Event::CalendarReloaded)
                .with("actor", msg.actor)
                .with("change", msg.change)
                .with("automation", automated),
        );
        log.flush();
        // The next phase may now be another, or sooner.
        self.arm_phase_clock(ctx);
    }
}
