//! The watchdog over the watcher: a plain thread, outside the actor system, that checks
//! that the Monitor's own loop is alive (it publishes the health board at every probe
//! round) and tells systemd so.
//!
//! - Under systemd (`Type=notify`, `WatchdogSec=`), `READY=1` is sent once the session has
//!   started and `WATCHDOG=1` at half the watchdog interval, **only while the board is
//!   fresh**. A Monitor that hangs stops the pings, and systemd restarts vigil.
//! - With or without systemd, a board older than the stall limit is a `monitor_stalled`
//!   line at CRITICAL (and on standard error) and trips the breaker on its fast path
//!   ([`HaltLatch`]), which the Risk agent applies before any decision. A board fresh again
//!   is `monitor_resumed`; the breaker stays tripped until an operator resets it.
//!
//! The thread reads time through the session's supervision clock (a `SimClock` in tests).

use std::time::Duration;

use vigil_core::{Level, SharedClock, Timestamp};
use vigil_log::{Event, LogEvent, LogSink};
use vigil_messages::HaltLatch;
use vigil_monitoring::HealthBoard;

/// The service named in the watchdog's log lines.
const SERVICE: &str = "watchdog";

/// What the watchdog watches and whom it tells.
pub(crate) struct Watch {
    pub(crate) board: HealthBoard,
    pub(crate) wall: SharedClock,
    pub(crate) halt: HaltLatch,
    pub(crate) log: LogSink,
    /// A board older than this is a stalled Monitor.
    pub(crate) stall_after: Duration,
    /// systemd's watchdog interval (`WATCHDOG_USEC`), when systemd asked for pings.
    pub(crate) systemd: Option<Duration>,
}

/// The running watchdog; stopped when dropped or by [`Watchdog::stop`].
#[derive(Debug)]
pub(crate) struct Watchdog {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Tells systemd `state`; a failure is reported on standard error (the watchdog's own
/// failure must not stop trading, and systemd will act on the missing pings).
fn notify(state: &[sd_notify::NotifyState<'_>], what: &str) {
    if let Err(e) = sd_notify::notify(state) {
        eprintln!("vigil: ERROR cannot tell systemd {what}: {e}");
    }
}

/// Tells systemd the service is ready (a no-op outside systemd).
pub(crate) fn ready() {
    notify(&[sd_notify::NotifyState::Ready], "READY=1");
}

/// Tells systemd the service is stopping (a no-op outside systemd).
pub(crate) fn stopping() {
    notify(&[sd_notify::NotifyState::Stopping], "STOPPING=1");
}

/// systemd's watchdog interval for this process, when it asked for pings.
pub(crate) fn systemd_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// One look at the board: what it says and what to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// Fresh: ping systemd.
    Fresh,
    /// Stale once: no ping; a stall if it has not moved at the next look (a clock that
    /// jumped may have woken the watchdog before the Monitor).
    Suspect,
    /// Fresh again after a stall of this long.
    Resumed(chrono::Duration),
    /// Stale for this long, and not moved since the last look: report and halt.
    Stalled(chrono::Duration),
    /// Still stale (reported already).
    StillStalled,
}

/// The watchdog's memory between looks.
#[derive(Debug, Default)]
pub(crate) struct Judge {
    /// When the board was first seen (the Monitor publishes its first round at start).
    since: Option<Timestamp>,
    /// The board's time at the last look, when that look found it stale.
    suspect: Option<Option<Timestamp>>,
    stalled: Option<Timestamp>,
}

impl Judge {
    /// Looks at a board last published at `updated_at`, at `now`.
    pub(crate) fn look(
        &mut self,
        updated_at: Option<Timestamp>,
        now: Timestamp,
        stall_after: chrono::Duration,
    ) -> Look {
        let since = *self.since.get_or_insert(now);
        let age = now - updated_at.unwrap_or(since);
        if age <= stall_after {
            self.suspect = None;
            return match self.stalled.take() {
                Some(at) => Look::Resumed(now - at + stall_after),
                None => Look::Fresh,
            };
        }
        if self.stalled.is_some() {
            return Look::StillStalled;
        }
        if self.suspect.replace(updated_at) == Some(updated_at) {
            self.stalled = Some(now);
            Look::Stalled(age)
        } else {
            Look::Suspect
        }
    }
}

impl Watchdog {
    /// Starts the thread.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn start(watch: Watch) -> std::io::Result<Self> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("vigil-watchdog".into())
            .spawn(move || run(watch, rx))?;
        Ok(Self {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop.take()
            && tx.send(()).is_err()
        {
            // The thread ended already (it reported why, if it failed).
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("vigil: ERROR the watchdog thread panicked");
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(watch: Watch, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "vigil: CRITICAL the watchdog cannot start its runtime: {e}; nothing watches the Monitor"
            );
            return;
        }
    };
    let stall_after = vigil_core::span(watch.stall_after);
    // Look four times per stall window, and at least twice per systemd interval.
    let mut period = watch.stall_after / 4;
    if let Some(s) = watch.systemd {
        period = period.min(s / 2);
    }
    let period = vigil_core::span(period.max(Duration::from_millis(100)));
    let mut judge = Judge::default();
    let mut ping_failing = None;
    runtime.block_on(async {
        loop {
            let now = watch.wall.now();
            match judge.look(watch.board.status().updated_at, now, stall_after) {
                Look::Fresh => {
                    if watch.systemd.is_some() {
                        let sent = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                        ping_failing = pinged(&watch.log, now, sent, ping_failing);
                    }
                }
                Look::Stalled(age) => stalled(&watch, now, age),
                Look::Suspect | Look::StillStalled => {}
                Look::Resumed(stalled_for) => {
                    watch.log.send(vec![
                        LogEvent::new(now, SERVICE, Event::MonitorResumed)
                            .level(Level::Warn)
                            .with("stalled_s", stalled_for.num_seconds()),
                    ]);
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                () = watch.wall.sleep_until(now + period) => {}
            }
        }
    });
}

/// Tells the log what a watchdog ping did: the first failure of a streak (at ERROR, and on
/// standard error) and the ping that ends it; one line each, not one per ping. Returns since
/// when the pings have been failing, if they still are.
fn pinged(
    log: &LogSink,
    now: Timestamp,
    sent: std::io::Result<()>,
    failing: Option<Timestamp>,
) -> Option<Timestamp> {
    match (sent, failing) {
        (Ok(()), None) => None,
        (Ok(()), Some(since)) => {
            log.send(vec![
                LogEvent::new(now, SERVICE, Event::WatchdogPingRecovered)
                    .with("failed_s", (now - since).num_seconds()),
            ]);
            None
        }
        (Err(e), None) => {
            eprintln!("vigil: ERROR cannot tell systemd WATCHDOG=1: {e}");
            log.send(vec![
                LogEvent::new(now, SERVICE, Event::WatchdogPingFailed)
                    .level(Level::Error)
                    .with("error", e.to_string())
                    .with(
                        "action",
                        "systemd restarts vigil when WatchdogSec passes without a ping; check \
                         NOTIFY_SOCKET and the unit's NotifyAccess",
                    ),
            ]);
            Some(now)
        }
        (Err(_), Some(since)) => Some(since),
    }
}

/// The board is older than the limit: the Monitor's loop has stopped.
fn stalled(watch: &Watch, now: Timestamp, age: chrono::Duration) {
    let reason = format!(
        "the monitor has not published the health board for {} s (limit {} s): supervision, alerting and the dead-man's ping are not running",
        age.num_seconds(),
        watch.stall_after.as_secs()
    );
    eprintln!("vigil: CRITICAL monitor_stalled: {reason}; trading halted");
    watch.halt.trip("watchdog", &reason);
    watch.log.send(vec![
        LogEvent::new(now, SERVICE, Event::MonitorStalled)
            .level(Level::Critical)
            .with("stalled_s", age.num_seconds())
            .with(
                "action",
                "breaker tripped; systemd restarts vigil when its watchdog is on",
            )
            .with("reason", reason),
    ]);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vigil_core::{Clock as _, SimClock};

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn a_failing_ping_is_logged_once_until_one_goes_through() {
        let (log, lines) = LogSink::memory();
        let t0 = t("2024-01-16T14:30:00Z");
        let refused = || Err(std::io::Error::other("connection refused"));
        let mut failing = pinged(&log, t0, Ok(()), None);
        assert_eq!(failing, None);
        for k in 0..3 {
            failing = pinged(
                &log,
                t0 + chrono::Duration::seconds(k * 30),
                refused(),
                failing,
            );
        }
        assert_eq!(failing, Some(t0));
        failing = pinged(&log, t0 + chrono::Duration::seconds(120), Ok(()), failing);
        assert_eq!(failing, None);
        let got = lines.events();
        let events: Vec<&str> = got.iter().map(|e| e.event.name()).collect();
        assert_eq!(events, ["watchdog_ping_failed", "watchdog_ping_recovered"]);
        assert_eq!(got[0].level, Level::Error);
        assert!(
            got[0]
                .get("error")
                .is_some_and(|e| e.to_string().contains("connection refused")),
            "{:?}",
            got[0]
        );
        assert_eq!(
            got[1].get("failed_s").map(ToString::to_string),
            Some("120".to_string())
        );
    }

    #[test]
    fn a_board_older_than_the_limit_is_a_stall_once_then_a_resume() {
        let mut j = Judge::default();
        let limit = chrono::Duration::seconds(30);
        let t0 = t("2024-01-16T14:30:00Z");
        assert_eq!(
            j.look(None, t0, limit),
            Look::Fresh,
            "a start is not a stall"
        );
        assert_eq!(
            j.look(Some(t0), t0 + chrono::Duration::seconds(30), limit),
            Look::Fresh
        );
        assert_eq!(
            j.look(Some(t0), t0 + chrono::Duration::seconds(31), limit),
            Look::Suspect
        );
        // Published meanwhile (a jump of the clock woke the watchdog first): no stall.
        let t1 = t0 + chrono::Duration::seconds(31);
        assert_eq!(j.look(Some(t1), t1, limit), Look::Fresh);
        assert_eq!(
            j.look(Some(t1), t1 + chrono::Duration::seconds(31), limit),
            Look::Suspect
        );
        assert_eq!(
            j.look(Some(t1), t1 + chrono::Duration::seconds(38), limit),
            Look::Stalled(chrono::Duration::seconds(38))
        );
        assert_eq!(
            j.look(Some(t1), t1 + chrono::Duration::seconds(60), limit),
            Look::StillStalled
        );
        let back = t1 + chrono::Duration::seconds(90);
        assert!(matches!(j.look(Some(back), back, limit), Look::Resumed(_)));
        assert_eq!(j.look(Some(back), back, limit), Look::Fresh);
    }

    /// The thread on a simulated clock: a board that stops being published trips the
    /// breaker's fast path and logs CRITICAL once; nothing before the limit.
    #[test]
    fn a_stalled_monitor_trips_the_breaker_and_is_logged_once() {
        let wall = SimClock::starting_at(t("2024-01-16T14:30:00Z"));
        let board = HealthBoard::new();
        board.publish(vigil_monitoring::Status {
            updated_at: Some(wall.now()),
            ..Default::default()
        });
        let (log, mem) = LogSink::memory();
        let halt = HaltLatch::default();
        let dog = Watchdog::start(Watch {
            board: board.clone(),
            wall: Arc::new(wall.clone()),
            halt: halt.clone(),
            log,
            stall_after: Duration::from_secs(30),
            systemd: None,
        })
        .expect("thread");
        // The thread sleeps on the clock: each step waits until its timer is set (it has
        // looked at the board), moves the clock past it, and waits until it is set again.
        let armed = || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while wall.pending_timers() == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the watchdog set no timer"
                );
                std::thread::yield_now();
            }
        };
        let step = || {
            armed();
            wall.advance_to(wall.now() + chrono::Duration::seconds(8));
            armed();
        };
        for _ in 0..4 {
            step();
        }
        assert!(
            halt.take().is_none(),
            "32 s: stale at one look, not stalled yet"
        );
        for _ in 0..2 {
            step();
        }
        dog.stop();
        let (actor, reason) = halt.take().expect("tripped");
        assert_eq!(actor, "watchdog");
        assert!(
            reason.contains("has not published the health board"),
            "{reason}"
        );
        let names = mem.names();
        assert_eq!(
            names.iter().filter(|n| **n == "monitor_stalled").count(),
            1,
            "{names:?}"
        );
    }
}
