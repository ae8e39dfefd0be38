//! Waits measured in yields to the runtime, never in wall-clock time.

/// Bounds every wait: each round lets the runtime run every ready task once. Generous,
/// because some stand-ins work on a thread of their own (the CSV provider parses on one);
/// a passing wait takes far fewer rounds, and only a failing test ever reaches the bound.
pub const MAX_YIELDS: usize = 1_000_000;

/// The rounds [`settle`] lets pass: enough for every message already sent to be handled,
/// and for any reply it provokes to arrive.
pub const SETTLE_YIELDS: usize = 100;

/// Yields to the runtime until `done` holds.
///
/// # Panics
///
/// After [`MAX_YIELDS`] rounds without `done` holding, naming `what` was awaited.
pub async fn yield_until(what: &str, done: impl FnMut() -> bool) {
    yield_until_within(MAX_YIELDS, what, done).await;
}

/// [`yield_until`] with a bound of `max` rounds.
pub(crate) async fn yield_until_within(max: usize, what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..max {
        if done() {
            return;
        }
        actix_rt::task::yield_now().await;
    }
    assert!(done(), "gave up waiting for {what} after {max} yields");
}

/// Lets [`SETTLE_YIELDS`] rounds pass, so that a test can check that something did *not*
/// happen: whatever was already on its way has arrived by then.
pub async fn settle() {
    for _ in 0..SETTLE_YIELDS {
        actix_rt::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[actix_rt::test]
    async fn yield_until_returns_once_the_condition_holds() {
        let rounds = Cell::new(0);
        yield_until("three rounds", || {
            rounds.set(rounds.get() + 1);
            rounds.get() >= 3
        })
        .await;
        assert_eq!(rounds.get(), 3);
        settle().await;
    }

    #[actix_rt::test]
    #[should_panic(expected = "gave up waiting for the impossible after 10 yields")]
    async fn yield_until_gives_up_naming_what_it_waited_for() {
        yield_until_within(10, "the impossible", || false).await;
    }
}
