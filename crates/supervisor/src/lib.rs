//! Supervision for vigil's agents, in the Erlang/OTP manner, on top of actix.
//!
//! actix restarts an actor only when it stops itself, does not catch panics and has no
//! restart limits. A [`ChildSupervisor`] owns an agent's running context and polls it inside
//! `catch_unwind`: a panic in any handler (or timer, or future the agent spawned) is caught
//! on the agent's own thread, so neither the arbiter nor the process goes down. Then:
//!
//! 1. the crash is logged (`agent_crashed`, ERROR, with the panic message and where it
//!    happened) and reported to the Monitor, which counts it;
//! 2. the supervisor waits a backoff on the supervision clock (doubling per recent crash,
//!    up to a maximum) while the agent's mailbox keeps its messages;
//! 3. it restarts the agent on the same mailbox, so every other agent's address stays
//!    good: actix's [`Supervised::restarting`] lets the agent rebuild its state from the
//!    portfolio, the venue or its inputs (each agent documents what it rebuilds), then
//!    `started` runs again and the agent handles the messages that waited;
//! 4. more than `max_restarts` crashes within `within` is an escalation: the report says
//!    so, the Monitor trips the circuit breaker and raises a Critical event, and the agent
//!    is still restarted, at the longest backoff, so the process stays up for a person to
//!    inspect and control it.
//!
//! The message being handled when the panic hit is lost (it is the likely cause); agents
//! that carry batches forward an empty batch in its place so that flow control holds.
//! An agent that stops itself normally (end of stream) is not restarted.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::dev::ContextFut;
use actix::dev::channel::AddressReceiver;
use actix::prelude::*;
use vigil_core::{AgentId, Level, SharedClock, Sleep, Timestamp};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::Supervision;

/// How often an agent may crash before the supervisor escalates, and how long it waits
/// before each restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `within`; one more crash escalates.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
    /// Wait before the first restart; doubled for each further crash in the window.
    pub backoff_initial: Duration,
    /// The longest wait (also used once escalated).
    pub backoff_max: Duration,
}

impl RestartPolicy {
    /// The wait before restarting after the `recent`-th crash within the window.
    pub fn backoff(&self, recent: u32, escalated: bool) -> Duration {
        if escalated {
            return self.backoff_max;
        }
        vigil_core::Backoff::new(self.backoff_initial, self.backoff_max)
            .delay(recent.saturating_sub(1))
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at most {} restart(s) in {} s",
            self.max_restarts,
            self.within.as_secs_f64()
        )
    }
}

/// What the supervisor needs to start and watch one agent.
#[derive(Debug)]
pub struct ChildSpec {
    /// Which agent.
    pub agent: AgentId,
    /// Its restart policy.
    pub policy: RestartPolicy,
    /// Supervision clock: backoff and the restart window.
    pub wall: SharedClock,
    /// Market clock: log stamps, like the agent's own lines.
    pub clock: SharedClock,
    /// Where crash and restart lines go.
    pub log: LogBuffer,
    /// The Monitor, told of every crash and restart.
    pub monitor: Recipient<Supervision>,
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by the hook.
    static LAST_PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that records where each panic happened, for
/// the supervisor's log line, and then runs the hook that was there before (Rust's default
/// prints the panic on standard error).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                let at = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
                LAST_PANIC_AT.with(|l| *l.borrow_mut() = Some(at));
            }
            previous(info);
        }));
    });
}

/// The panic's message, from its payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

/// Runs one agent and restarts it when it panics; see the crate documentation.
pub struct ChildSupervisor<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    fut: ContextFut<A, Context<A>>,
    spec: ChildSpec,
    /// Crash times within the window.
    crashes: VecDeque<Timestamp>,
    total_crashes: u64,
    total_restarts: u64,
    backoff: Option<Sleep>,
}

/// Why a supervised agent could not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartError {
    /// The arbiter it was to run on had already stopped.
    #[error("an arbiter stopped before its agent could start")]
    ArbiterStopped,
}

impl<A> std::fmt::Debug for ChildSupervisor<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSupervisor")
            .field("agent", &self.spec.agent)
            .field("crashes", &self.total_crashes)
            .field("restarts", &self.total_restarts)
            .finish()
    }
}

impl<A> ChildSupervisor<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    /// Starts `actor` on `rx` (its mailbox, made beforehand so that agents can be given
    /// each other's addresses) under supervision: on `arbiter`, or on the current one.
    ///
    /// # Errors
    /// Fails when the arbiter has stopped.
    pub fn start(
        spec: ChildSpec,
        actor: A,
        rx: AddressReceiver<A>,
        arbiter: Option<&ArbiterHandle>,
    ) -> Result<(), StartError>
    where
        A: Send,
    {
        install_panic_hook();
        let run = move || {
            let fut = Context::with_receiver(rx).into_future(actor);
            actix_rt::spawn(ChildSupervisor {
                fut,
                spec,
                crashes: VecDeque::new(),
                total_crashes: 0,
                total_restarts: 0,
                backoff: None,
            });
        };
        match arbiter {
            None => {
                run();
                Ok(())
            }
            Some(h) => {
                if h.spawn_fn(run) {
                    Ok(())
                } else {
                    Err(StartError::ArbiterStopped)
                }
            }
        }
    }

    fn crashed(&mut self, payload: Box<dyn std::any::Any + Send>) {
        let at = LAST_PANIC_AT.with(|l| l.borrow_mut().take());
        let message = panic_message(&*payload);
        let panic = match &at {
            Some(at) => format!("{message} (at {at})"),
            None => message.clone(),
        };
        let now = self.spec.wall.now();
        let window =
            chrono::Duration::from_std(self.spec.policy.within).unwrap_or(chrono::Duration::MAX);
        while self.crashes.front().is_some_and(|t| now - *t > window) {
            self.crashes.pop_front();
        }
        self.crashes.push_back(now);
        self.total_crashes += 1;
        let recent = u32::try_from(self.crashes.len()).unwrap_or(u32::MAX);
        let escalate = recent > self.spec.policy.max_restarts;
        let backoff = self.spec.policy.backoff(recent, escalate);
        let agent = self.spec.agent;
        self.spec.log.emit(
            LogEvent::new(self.spec.clock.now(), "supervisor", Event::AgentCrashed)
                .level(Level::Error)
                .with("agent", agent.as_str())
                .with("panic", message)
                .with("location", at.unwrap_or_default())
                .with("crashes_in_window", u64::from(recent))
                .with("window_s", self.spec.policy.within.as_secs())
                .with("crashes_total", self.total_crashes)
                .with(
                    "backoff_ms",
                    u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                )
                .with("escalated", escalate),
        );
        self.spec.log.flush();
        self.spec.monitor.do_send(Supervision::Crashed {
            agent,
            panic,
            recent,
            backoff,
            escalate,
            policy: self.spec.policy.to_string(),
        });
        let deadline = vigil_core::later(now, vigil_core::span(backoff));
        self.backoff = Some(self.spec.wall.sleep_until(deadline));
    }

    fn restarted(&mut self) {
        self.total_restarts += 1;
        self.spec.log.emit(
            LogEvent::new(self.spec.clock.now(), "supervisor", Event::AgentRestarted)
                .with("agent", self.spec.agent.as_str())
                .with("restarts_total", self.total_restarts),
        );
        self.spec.log.flush();
        self.spec.monitor.do_send(Supervision::Restarted {
            agent: self.spec.agent,
        });
    }
}

impl<A> Future for ChildSupervisor<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.backoff.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.backoff = None;
                // `restart` clears what the crashed run had spawned or was waiting on,
                // calls the agent's `restarting`, and `started` runs on the next poll.
                if !this.fut.restart() {
                    // Nobody holds the agent's address any more: nothing to restart for.
                    return Poll::Ready(());
                }
                this.restarted();
            }
            let fut = &mut this.fut;
            match panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *fut).poll(cx))) {
                Ok(done) => return done,
                Err(payload) => this.crashed(payload),
            }
        }
    }
}

#[cfg(test)]
mod tests;
