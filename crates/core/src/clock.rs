//! The injected clock. Logic never calls `Utc::now()`; it asks a [`Clock`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A point in time, always UTC inside vigil.
pub type Timestamp = DateTime<Utc>;

/// A future that completes at a deadline of the clock that made it.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A clock shared between agents.
pub type SharedClock = Arc<dyn Clock>;

/// The source of time for all vigil code.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Returns the current time.
    fn now(&self) -> Timestamp;

    /// Returns the time to stamp on an event caused by market data stamped `market_time`.
    ///
    /// A live clock answers the processing time; a simulated clock answers the market time
    /// itself (a zero-latency model), so a replay stamps the same times however the agents
    /// happen to be scheduled.
    fn stamp(&self, market_time: Timestamp) -> Timestamp;

    /// Returns a future that completes once the clock reaches `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;

    /// Tells whether this clock is simulated (driven by a test or by replayed data).
    fn is_simulated(&self) -> bool;
}

/// `t` moved by `d`, or the latest (earliest) time a [`Timestamp`] holds when that is beyond
/// it: a deadline that far away never comes, and computing it never panics, whatever a
/// configured duration says.
pub fn later(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// A [`std::time::Duration`] as a [`Duration`], the longest one when it is longer.
pub fn span(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// `n` seconds, at most the longest [`Duration`].
pub fn seconds(n: u64) -> Duration {
    span(std::time::Duration::from_secs(n))
}

/// `n` milliseconds, at most the longest [`Duration`].
pub fn millis(n: u64) -> Duration {
    span(std::time::Duration::from_millis(n))
}

/// The wall clock, for live trading and for supervision in a real process.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }

    fn stamp(&self, _market_time: Timestamp) -> Timestamp {
        Utc::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }

    fn is_simulated(&self) -> bool {
        false
    }
}

/// The wall clock's pace from a chosen instant: the wall time moved by a fixed offset.
/// `vigil run --clock-start` runs a rehearsal stack on it, so that a drill that needs
/// trading hours (a quiet feed is judged only then) can run at any hour.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    offset: Duration,
}

impl ShiftedClock {
    /// A clock that reads `start` now and moves on with the wall.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            offset: start - Utc::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        later(Utc::now(), self.offset)
    }

    fn stamp(&self, _market_time: Timestamp) -> Timestamp {
        self.now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let wait = (deadline - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }

    fn is_simulated(&self) -> bool {
        false
    }
}

/// A clock that moves only when told to: by a test, or by the replay driving a backtest.
///
/// Cloning gives another handle to the same clock. Time never moves backwards: an
/// `advance_to` an earlier instant is ignored. Timers fire in deadline order as time passes
/// them.
///
/// A clock made by [`SimClock::unset`] has no time of its own until the first
/// `advance_to`: until then it answers another clock's time (a live feed's market clock
/// tells the wall time until the first bar gives it market time).
#[derive(Clone)]
pub struct SimClock {
    inner: Arc<SimInner>,
}

struct SimInner {
    /// Answers `now` until the first `advance_to`, for a clock made by [`SimClock::unset`].
    before: Option<(SharedClock, std::sync::atomic::AtomicBool)>,
    now_ns: AtomicI64,
    /// Earliest registered deadline, `i64::MAX` when none; lets `advance_to` skip the lock.
    next_deadline_ns: AtomicI64,
    timers: Mutex<BTreeMap<(i64, u64), Waker>>,
    next_timer_id: AtomicU64,
}

impl fmt::Debug for SimClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimClock")
            .field("now", &self.now())
            .finish()
    }
}

/// The exchange's (America/New_York) calendar date of an instant: the day a log file, an
/// alert digest or a session belongs to.
pub fn exchange_date(t: Timestamp) -> chrono::NaiveDate {
    t.with_timezone(&chrono_tz::America::New_York).date_naive()
}

fn to_ns(t: Timestamp) -> i64 {
    // Every instant vigil handles (1677..2262) fits; saturate rather than panic beyond.
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn from_ns(ns: i64) -> Timestamp {
    DateTime::from_timestamp_nanos(ns)
}

impl SimClock {
    /// Creates a simulated clock standing at `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        Self::make(to_ns(start), None)
    }

    /// Creates a simulated clock without a time of its own: it answers `before`'s time
    /// until the first [`SimClock::advance_to`], which sets it to that instant (whether
    /// earlier or later than `before`'s), and from then on it moves as any simulated clock.
    /// Its timers wait for that first move.
    pub fn unset(before: SharedClock) -> Self {
        Self::make(
            i64::MIN,
            Some((before, std::sync::atomic::AtomicBool::new(false))),
        )
    }

    fn make(now_ns: i64, before: Option<(SharedClock, std::sync::atomic::AtomicBool)>) -> Self {
        Self {
            inner: Arc::new(SimInner {
                before,
                now_ns: AtomicI64::new(now_ns),
                next_deadline_ns: AtomicI64::new(i64::MAX),
                timers: Mutex::new(BTreeMap::new()),
                next_timer_id: AtomicU64::new(0),
            }),
        }
    }

    /// Moves the clock forward to `t` and wakes every timer due by then. Returns `false`
    /// (and changes nothing) when `t` is not later than the current time.
    pub fn advance_to(&self, t: Timestamp) -> bool {
        let ns = to_ns(t);
        let prev = self.inner.now_ns.fetch_max(ns, Ordering::AcqRel);
        if ns <= prev {
            return false;
        }
        if let Some((_, set)) = &self.inner.before {
            set.store(true, Ordering::Release);
        }
        if ns >= self.inner.next_deadline_ns.load(Ordering::Acquire) {
            self.fire_due(ns);
        }
        true
    }

    /// Moves the clock forward by `d` (see [`SimClock::advance_to`]).
    pub fn advance_by(&self, d: Duration) {
        let now = self.now();
        self.advance_to(now + d);
    }

    /// Returns the number of timers waiting for a later time.
    pub fn pending_timers(&self) -> usize {
        self.inner.timers.lock().len()
    }

    /// Returns the deadlines the timers wait for, earliest first (a test may wait until
    /// an agent has set the timer it expects).
    pub fn deadlines(&self) -> Vec<Timestamp> {
        self.inner
            .timers
            .lock()
            .keys()
            .map(|(ns, _)| from_ns(*ns))
            .collect()
    }

    /// Returns the earliest deadline a timer is waiting for, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let ns = self.inner.next_deadline_ns.load(Ordering::Acquire);
        (ns != i64::MAX).then(|| from_ns(ns))
    }

    fn fire_due(&self, now_ns: i64) {
        let due: Vec<Waker> = {
            let mut timers = self.inner.timers.lock();
            let later = timers.split_off(&(now_ns.saturating_add(1), 0));
            let due = std::mem::replace(&mut *timers, later);
            let next = timers.keys().next().map_or(i64::MAX, |k| k.0);
            self.inner.next_deadline_ns.store(next, Ordering::Release);
            due.into_values().collect()
        };
        for w in due {
            w.wake();
        }
    }

    fn register(&self, deadline_ns: i64, id: u64, waker: &Waker) {
        let mut timers = self.inner.timers.lock();
        timers.insert((deadline_ns, id), waker.clone());
        self.inner
            .next_deadline_ns
            .fetch_min(deadline_ns, Ordering::AcqRel);
    }

    fn deregister(&self, deadline_ns: i64, id: u64) {
        let mut timers = self.inner.timers.lock();
        timers.remove(&(deadline_ns, id));
        let next = timers.keys().next().map_or(i64::MAX, |k| k.0);
        self.inner.next_deadline_ns.store(next, Ordering::Release);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        if let Some((before, set)) = &self.inner.before
            && !set.load(Ordering::Acquire)
        {
            return before.now();
        }
        from_ns(self.inner.now_ns.load(Ordering::Acquire))
    }

    fn stamp(&self, market_time: Timestamp) -> Timestamp {
        market_time
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let id = self.inner.next_timer_id.fetch_add(1, Ordering::Relaxed);
        Box::pin(SimSleep {
            clock: self.clone(),
            deadline_ns: to_ns(deadline),
            id,
            registered: false,
        })
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

struct SimSleep {
    clock: SimClock,
    deadline_ns: i64,
    id: u64,
    registered: bool,
}

impl Future for SimSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.inner.now_ns.load(Ordering::Acquire) >= self.deadline_ns {
            if self.registered {
                self.clock.deregister(self.deadline_ns, self.id);
                self.registered = false;
            }
            return Poll::Ready(());
        }
        self.clock.register(self.deadline_ns, self.id, cx.waker());
        self.registered = true;
        // The clock may have passed the deadline between the check and the registration.
        if self.clock.inner.now_ns.load(Ordering::Acquire) >= self.deadline_ns {
            self.clock.deregister(self.deadline_ns, self.id);
            self.registered = false;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        if self.registered {
            self.clock.deregister(self.deadline_ns, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn far_deadlines_saturate_instead_of_panicking() {
        let now = t("2024-01-01T00:00:00Z");
        assert_eq!(later(now, millis(u64::MAX)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(later(now, seconds(u64::MAX)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(later(now, -Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(later(now, seconds(60)), t("2024-01-01T00:01:00Z"));
        assert_eq!(span(std::time::Duration::MAX), Duration::MAX);
    }

    #[test]
    fn a_shifted_clock_reads_its_start_and_moves_on_with_the_wall() {
        let start = t("2026-12-01T15:00:00Z");
        let c = ShiftedClock::starting_at(start);
        let (a, b) = (c.now(), c.now());
        assert!(a >= start && a < start + seconds(60), "{a}");
        assert!(b >= a);
        assert_eq!(
            c.stamp(t("2024-01-01T00:00:00Z")).date_naive(),
            a.date_naive()
        );
        assert!(!c.is_simulated());
    }

    #[test]
    fn sim_clock_never_moves_backwards() {
        let c = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        assert!(c.advance_to(t("2024-01-02T00:00:00Z")));
        assert!(!c.advance_to(t("2024-01-01T12:00:00Z")));
        assert_eq!(c.now(), t("2024-01-02T00:00:00Z"));
    }

    #[tokio::test]
    async fn sim_sleep_completes_only_when_time_passes_its_deadline() {
        let c = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let sleep = c.sleep_until(t("2024-01-01T00:00:10Z"));
        let task = tokio::spawn(async move {
            sleep.await;
            d2.store(true, Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
        c.advance_by(Duration::seconds(5));
        tokio::task::yield_now().await;
        assert!(!done.load(Ordering::SeqCst));
        assert_eq!(c.pending_timers(), 1);
        c.advance_by(Duration::seconds(5));
        task.await.expect("sleep task");
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(c.pending_timers(), 0);
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn dropped_sleep_deregisters_its_timer() {
        let c = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        let mut sleep = c.sleep_until(t("2024-01-01T01:00:00Z"));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(c.pending_timers(), 1);
        assert_eq!(c.deadlines(), [t("2024-01-01T01:00:00Z")]);
        drop(sleep);
        assert_eq!(c.pending_timers(), 0);
        assert!(c.deadlines().is_empty());
    }

    #[test]
    fn an_unset_clock_tells_the_other_clock_until_its_first_move() {
        let wall = SimClock::starting_at(t("2030-06-01T12:00:00Z"));
        let market = SimClock::unset(Arc::new(wall.clone()));
        assert_eq!(market.now(), t("2030-06-01T12:00:00Z"));
        wall.advance_by(Duration::seconds(5));
        assert_eq!(market.now(), t("2030-06-01T12:00:05Z"), "follows it");
        // The first bar is older than the wall clock: market time starts there all the same.
        assert!(market.advance_to(t("2004-08-19T00:00:00Z")));
        assert_eq!(market.now(), t("2004-08-19T00:00:00Z"));
        wall.advance_by(Duration::seconds(5));
        assert_eq!(market.now(), t("2004-08-19T00:00:00Z"), "its own time now");
        assert!(!market.advance_to(t("2004-08-18T00:00:00Z")));
    }

    #[test]
    fn stamp_is_market_time_in_simulation() {
        let c = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        assert_eq!(
            c.stamp(t("2024-01-01T00:00:00Z")),
            t("2024-01-01T00:00:00Z")
        );
        assert!(c.is_simulated());
        assert!(!SystemClock.is_simulated());
    }
}
