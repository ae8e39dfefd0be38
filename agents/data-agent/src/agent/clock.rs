//! The automated day by the clock: with a live source, each phase of the day is marked when
//! the clock reaches it, bar or no bar. A quiet market (the last bar at 15:59, a holiday
//! weekend) no longer holds the close, the post-close work and the alert summary until the
//! next bar, the next morning.
//!
//! The timer runs on the wall clock (the injected supervision clock: a `SimClock` in tests)
//! and fires [`GRACE`] after a phase begins, so that the bar that closes the minute before
//! it, which arrives just after, is marked in the phase it belongs to. A phase a bar
//! already passed is not marked again. The marks go down the pipeline in an empty batch, in
//! band like every other mark, so each agent applies them in stream order. The timer is set
//! once the source's first read has come back, so that a backlog it holds at the start is
//! marked by its bars' own times. A replay is never timed: its bars are its clock.

use actix::prelude::*;
use chrono::NaiveDate;
use vigil_core::{Level, Timestamp};
use vigil_log::{Event, LogEvent};

use super::{DataAgent, SERVICE};
use crate::phases::{Marked, PostCloseOutcome, PostCloseWork};

/// How long after a phase begins the clock marks it when no bar has: the last bar of the
/// minute before arrives just after the minute ends.
pub(crate) const GRACE: chrono::Duration = chrono::Duration::seconds(5);

impl DataAgent {
    /// Runs `work` when each post-close phase begins with a live source (the day's report
    /// and the log's verification), off the trading thread.
    pub fn with_post_close(mut self, work: Box<dyn PostCloseWork>) -> Self {
        self.post_close = Some(work);
        self
    }

    /// Sets the timer for the next phase of the day (a live source with the day automated);
    /// a timer set before is forgotten.
    pub(crate) fn arm_phase_clock(&mut self, ctx: &mut Context<Self>) {
        self.phase_timer += 1;
        // Not before the source's first read has come back: bars it already holds (a
        // backlog at a start or a reconnect) are marked by their own times first.
        if !self.provider_live || self.ended || !self.source_read {
            return;
        }
        let now = self.core.wall.now();
        let Some(due) = self.phases.next_due(now) else {
            return;
        };
        let deadline = (due + GRACE).max(now);
        let generation = self.phase_timer;
        let sleep = self.core.wall.sleep_until(deadline);
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(sleep).map(move |(), act, ctx| {
                if act.phase_timer == generation && !act.ended {
                    act.phase_clock_fired(ctx);
                }
            }),
        );
    }

    /// The clock reached a phase that no bar has passed: marks it (and any other that is
    /// due) in an empty batch, then sets the timer for the next.
    fn phase_clock_fired(&mut self, ctx: &mut Context<Self>) {
        let upto = self.core.wall.now() - GRACE;
        let marked = self.phases.marks_at(upto, self.core.clock.as_ref());
        if let (Some(market), Some(last)) = (&self.market, marked.marks.last()) {
            // Market time moves on to the phase with no bar (never backwards).
            market.advance_to(last.at);
        }
        if !marked.marks.is_empty() || marked.failed.is_some() {
            self.dispatch(Vec::new(), marked, None);
            self.core.log.flush();
        }
        self.arm_phase_clock(ctx);
    }

    /// Batch `id` is handled by every agent: the post-close work it carries starts.
    pub(crate) fn batch_handled(&mut self, id: u64, ctx: &mut Context<Self>) {
        if self.post_close_due.is_empty() {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.post_close_due)
            .into_iter()
            .partition(|(batch, _, _)| *batch <= id);
        self.post_close_due = later;
        for (_, session, at) in due {
            self.run_post_close(session, at, ctx);
        }
    }

    /// Runs the post-close work of `session` on a thread of its own and logs its outcome:
    /// `checklist_completed` or, at ERROR, `checklist_failed` (alerted).
    fn run_post_close(&mut self, session: NaiveDate, at: Timestamp, ctx: &mut Context<Self>) {
        let Some(work) = self.post_close.as_mut().filter(|_| self.provider_live) else {
            return;
        };
        let job = work.job(session, at);
        // A thread of its own, outside every async runtime: the work reads the store with
        // its own.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("vigil-post-close".into())
            .spawn(move || {
                if tx.send(job()).is_err() {
                    eprintln!("vigil: the post-close work of {session} ended after the session");
                }
            });
        let task = async move {
            match spawned {
                Err(e) => Err(format!("cannot start the post-close thread: {e}")),
                Ok(_) => rx
                    .await
                    .map_err(|_| "the post-close thread ended without a report".to_string()),
            }
        };
        ctx.spawn(task.into_actor(self).map(move |res, act, _| {
            let now = act.now();
            let outcome = res.unwrap_or_else(|e| PostCloseOutcome {
                checks: Err(e.clone()),
                report: Err(e),
            });
            let (checks, report) = outcome.judged();
            if let Some(files) = report {
                act.core.log.emit(
                    LogEvent::new(now, SERVICE, Event::DayReportWritten)
                        .with("session", session.to_string())
                        .with("headline", files.headline)
                        .with("text", files.text)
                        .with("json", files.json)
                        .with("chart", files.chart.unwrap_or_default()),
                );
            }
            let line = match checks {
                Ok(report) => LogEvent::new(now, SERVICE, Event::ChecklistCompleted)
                    .with("checklist", "post_close")
                    .with("session", session.to_string())
                    .with("report", report),
                Err(failures) => LogEvent::new(now, SERVICE, Event::ChecklistFailed)
                    .level(Level::Error)
                    .with("checklist", "post_close")
                    .with("session", session.to_string())
                    .with("failed", failures)
                    .with("action", "read the report; the day is not accounted for"),
            };
            act.core.log.emit(line);
            act.core.log.flush();
        }));
    }

    /// Logs what `marked` says, sends `bars` downstream with its marks, and queues the
    /// post-close work they reach for when the batch is handled.
    pub(super) fn dispatch(
        &mut self,
        bars: Vec<vigil_core::Bar>,
        marked: Marked,
        arrived_at: Option<vigil_core::Timestamp>,
    ) {
        let Marked {
            marks,
            logs,
            failed,
            post_close,
        } = marked;
        for line in logs {
            self.core.log.emit(line);
        }
        if let Some(error) = failed {
            let now = self.now();
            self.core.log.emit(
                LogEvent::new(now, SERVICE, Event::ScheduleFailed).with("error", error.clone()),
            );
            self.core.fault(format!("schedule: {error}"), false);
        }
        let id = self.next_batch_id;
        // After the batch is handled down to the Execution agent (its closing snapshot is
        // then in the log): see [`Self::batch_handled`].
        for (session, at) in post_close {
            self.post_close_due.push((id, session, at));
        }
        self.next_batch_id += 1;
        self.in_flight += 1;
        // Bounded by flow control: at most `max_in_flight` batches are unacknowledged (an
        // empty batch of phases from the clock comes on top, a few a day).
        self.downstream.send(vigil_messages::BarBatch {
            id,
            bars: std::sync::Arc::new(bars),
            phases: marks.into(),
            arrived_at,
        });
    }
}
