//! Periodic work on an injected clock.

use std::time::Duration;

use actix::prelude::*;
use vigil_core::SharedClock;

/// Calls `f` every `interval` of `clock` time for as long as the actor lives. With a
/// simulated clock the calls happen as the clock is advanced, so tests need no sleeps.
pub fn run_every<A>(
    ctx: &mut Context<A>,
    clock: SharedClock,
    interval: Duration,
    f: fn(&mut A, &mut Context<A>),
) where
    A: Actor<Context = Context<A>>,
{
    let deadline = vigil_core::later(clock.now(), vigil_core::span(interval));
    let sleep = clock.sleep_until(deadline);
    ctx.spawn(
        actix::fut::wrap_future::<_, A>(sleep).map(move |(), act, ctx| {
            f(act, ctx);
            run_every(ctx, clock, interval, f);
        }),
    );
}
