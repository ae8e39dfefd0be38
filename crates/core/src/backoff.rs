//! Exponential backoff: the one definition every retry in vigil uses (reconnecting a feed
//! or a broker, restarting an agent, redelivering an alert).

use std::time::Duration;

/// Waits that double from `initial` up to `max`.
///
/// Two ways to use it: [`Backoff::delay`] answers the wait before attempt `n` (for a caller
/// that counts attempts), and [`Backoff::next_delay`] / [`Backoff::reset`] keep the count
/// (for a caller that retries until it succeeds).
///
/// ```
/// use std::time::Duration;
/// use vigil_core::Backoff;
/// let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
/// let waits: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
/// assert_eq!(waits, [100, 200, 350, 350]);
/// b.reset();
/// assert_eq!(b.next_delay(), Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Creates a backoff starting at `initial` and doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial.min(max),
        }
    }

    /// Returns the wait before attempt `n` (0 for the first retry): `initial × 2^n`, at
    /// most `max`; never overflows.
    pub fn delay(&self, n: u32) -> Duration {
        let ns = self.initial.as_nanos().saturating_mul(1u128 << n.min(127));
        if ns >= self.max.as_nanos() {
            return self.max;
        }
        // Below `max`, so it fits a Duration.
        Duration::new(
            u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX),
            (ns % 1_000_000_000) as u32,
        )
    }

    /// Returns the wait before the next attempt, and doubles the one after (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = now.saturating_mul(2).min(self.max);
        now
    }

    /// Returns the wait [`Backoff::next_delay`] will answer, without counting an attempt.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Starts again from `initial` (after a success).
    pub fn reset(&mut self) {
        self.next = self.initial.min(self.max);
    }

    /// Returns the longest wait.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn delays_double_from_the_initial_wait_up_to_the_maximum() {
        let b = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
        let waits: Vec<u128> = (0..6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
    }

    #[test]
    fn an_initial_wait_above_the_maximum_is_capped() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        assert_eq!(b.delay(0), Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn the_counted_and_the_kept_delays_agree_and_never_overflow(
            initial_ms in 0u64..10_000_000,
            max_ms in 0u64..u64::MAX / 1_000_000,
            attempts in 0u32..200,
        ) {
            let mut b = Backoff::new(Duration::from_millis(initial_ms), Duration::from_millis(max_ms));
            for n in 0..attempts {
                let d = b.next_delay();
                prop_assert!(d <= b.max());
                prop_assert_eq!(d, b.delay(n));
            }
        }
    }
}
