use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use vigil_core::{AgentId, Clock, SimClock};
use vigil_log::{Event, LogBuffer, LogSink, Value};
use vigil_messages::Supervision;
use vigil_testkit::{Recorder, logged, text, timestamp as t, yield_until};

use super::*;

vigil_testkit::record_enum! {
    /// What the supervisor told the Monitor.
    #[derive(Debug)]
    enum Told {
        Supervision(Supervision),
    }
}

/// A toy agent: counts what it handled since its last (re)start; `Boom` panics.
#[derive(Default)]
struct Counter {
    handled: u32,
    restarts: u32,
    started: u32,
}

impl Actor for Counter {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.started += 1;
    }
}

impl Supervised for Counter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // Rebuilt, not remembered: the count starts again.
        self.handled = 0;
        self.restarts += 1;
    }
}

#[derive(Message)]
#[rtype(result = "(u32, u32, u32)")]
struct Count;

impl Handler<Count> for Counter {
    type Result = MessageResult<Count>;

    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> Self::Result {
        self.handled += 1;
        MessageResult((self.handled, self.restarts, self.started))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Boom;

impl Handler<Boom> for Counter {
    type Result = ();

    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom in the toy agent");
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

impl Handler<Stop> for Counter {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct Rig {
    addr: Addr<Counter>,
    wall: SimClock,
    told: Recorder<Told>,
    log: vigil_log::MemoryLog,
}

const POLICY: RestartPolicy = RestartPolicy {
    max_restarts: 2,
    within: Duration::from_secs(60),
    backoff_initial: Duration::from_millis(500),
    backoff_max: Duration::from_secs(30),
};

fn rig() -> Rig {
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let (sink, log) = LogSink::memory();
    let told = Recorder::<Told>::new();
    let (tx, rx) = actix::dev::channel::channel(16);
    let addr = Addr::new(tx);
    ChildSupervisor::start(
        ChildSpec {
            agent: AgentId::Signal,
            policy: POLICY,
            wall: Arc::new(wall.clone()),
            clock: Arc::new(wall.clone()),
            log: LogBuffer::new(sink, "supervisor", vigil_core::Level::Debug),
            monitor: told.start_actor().recipient(),
        },
        Counter::default(),
        rx,
        None,
    )
    .expect("start on the current arbiter");
    Rig {
        addr,
        wall,
        told,
        log,
    }
}

impl Rig {
    /// Moves the supervision clock past the pending backoff and waits for the restart.
    async fn restart_after(&self, backoff: Duration) {
        let restarts = self.restarted();
        self.wall
            .advance_by(chrono::Duration::from_std(backoff).expect("short"));
        yield_until("the restart", || self.restarted() > restarts).await;
    }

    fn restarted(&self) -> usize {
        self.told
            .filter_map(|Told::Supervision(s)| {
                matches!(s, Supervision::Restarted { .. }).then_some(())
            })
            .len()
    }

    fn crashes(&self) -> Vec<(u32, Duration, bool)> {
        self.told.with(crashes_in)
    }

    /// Waits until `n` crashes were reported.
    async fn wait_crashes(&self, n: usize) {
        self.told
            .wait_until(&format!("{n} crash report(s)"), |items| {
                crashes_in(items).len() >= n
            })
            .await;
    }
}

fn crashes_in(items: &[Told]) -> Vec<(u32, Duration, bool)> {
    items
        .iter()
        .filter_map(|Told::Supervision(s)| match s {
            Supervision::Crashed {
                recent,
                backoff,
                escalate,
                ..
            } => Some((*recent, *backoff, *escalate)),
            Supervision::Restarted { .. } => None,
        })
        .collect()
}

#[test]
fn backoff_doubles_per_recent_crash_up_to_the_maximum() {
    assert_eq!(POLICY.backoff(1, false), Duration::from_millis(500));
    assert_eq!(POLICY.backoff(2, false), Duration::from_secs(1));
    assert_eq!(POLICY.backoff(3, false), Duration::from_secs(2));
    assert_eq!(POLICY.backoff(10, false), Duration::from_secs(30));
    assert_eq!(POLICY.backoff(1, true), Duration::from_secs(30));
    assert_eq!(POLICY.to_string(), "at most 2 restart(s) in 60 s");
}

#[actix_rt::test]
async fn a_panic_is_caught_logged_and_the_agent_restarts_on_the_same_address() {
    let r = rig();
    assert_eq!(r.addr.send(Count).await.expect("count"), (1, 0, 1));
    r.addr.do_send(Boom);
    // Sent while the agent waits out its backoff: kept in the mailbox, handled after.
    let queued = r.addr.send(Count);
    r.told.wait_for::<Supervision>(1).await;
    assert_eq!(r.crashes(), vec![(1, Duration::from_millis(500), false)]);
    let crashed = logged(&r.log, Event::AgentCrashed);
    assert_eq!(crashed.len(), 1);
    assert_eq!(text(&crashed[0], "agent"), "signal");
    assert_eq!(text(&crashed[0], "panic"), "boom in the toy agent");
    assert!(
        text(&crashed[0], "location").contains("crates/supervisor/src/tests.rs"),
        "{:?}",
        crashed[0].get("location")
    );
    assert_eq!(crashed[0].get("backoff_ms"), Some(&Value::U64(500)));
    assert_eq!(crashed[0].get("escalated"), Some(&Value::Bool(false)));

    r.restart_after(Duration::from_millis(500)).await;
    // Rebuilt (count from zero), restarted once, `started` ran again.
    assert_eq!(queued.await.expect("answered after the restart"), (1, 1, 2));
    assert_eq!(logged(&r.log, Event::AgentRestarted).len(), 1);
}

#[actix_rt::test]
async fn more_crashes_than_the_policy_allows_escalate_and_still_restart() {
    let r = rig();
    for (i, backoff) in [500, 1_000].into_iter().enumerate() {
        r.addr.do_send(Boom);
        r.wait_crashes(i + 1).await;
        r.restart_after(Duration::from_millis(backoff)).await;
    }
    // The third crash within a minute: two restarts allowed, so this one escalates; the
    // agent still comes back, after the longest backoff.
    r.addr.do_send(Boom);
    r.wait_crashes(3).await;
    assert_eq!(
        r.crashes(),
        vec![
            (1, Duration::from_millis(500), false),
            (2, Duration::from_secs(1), false),
            (3, Duration::from_secs(30), true),
        ]
    );
    r.restart_after(Duration::from_secs(30)).await;
    assert_eq!(r.addr.send(Count).await.expect("alive").1, 3);

    // A minute later the window is clear again.
    r.wall.advance_by(chrono::Duration::seconds(120));
    r.addr.do_send(Boom);
    r.wait_crashes(4).await;
    assert_eq!(r.crashes()[3], (1, Duration::from_millis(500), false));
}

#[actix_rt::test]
async fn an_agent_that_stops_itself_is_not_restarted() {
    let r = rig();
    r.addr.do_send(Stop);
    yield_until("the agent to stop", || !r.addr.connected()).await;
    assert!(r.addr.send(Count).await.is_err());
    r.wall.advance_by(chrono::Duration::seconds(60));
    assert_eq!(r.told.settled_len().await, 0, "no crash, no restart");
    assert!(r.wall.now() > t("2030-01-01T00:00:00Z"));
}
