//! The ordered log a stand-in records into, and the stand-in actor itself.

use std::fmt;
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message};
use parking_lot::Mutex;

use crate::wait::{MAX_YIELDS, settle};

/// An item of a recorded log that may hold a `U`: one variant of the test's enum of
/// everything a stand-in can receive.
///
/// [`record_enum!`](crate::record_enum) implements it for every variant; it is what lets
/// [`Recorder::all`] and its kin pick one kind of message out of the log by type.
pub trait Variant<U>: Sized {
    /// Returns the `U` this item holds, if it is that variant.
    fn as_variant(&self) -> Option<&U>;

    /// Returns the `U` this item holds, or the item itself if it is another variant.
    fn into_variant(self) -> Result<U, Self>;
}

/// A cloneable handle to a shared, ordered log of received items.
///
/// Clones share the log: the stand-in actor pushes into one, the test reads through
/// another. Reads take the lock only for the duration of the call, so a test must not call
/// the recorder again from inside [`Recorder::with`].
pub struct Recorder<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Recorder<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Recorder<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Recorder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Recorder").field(&*self.0.lock()).finish()
    }
}

impl<T> Recorder<T> {
    /// Creates an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an item.
    pub fn push(&self, item: T) {
        self.0.lock().push(item);
    }

    /// Runs `f` over everything recorded so far, in arrival order.
    pub fn with<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(&self.0.lock())
    }

    /// Returns how many items were recorded.
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }

    /// Tells whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    /// Returns a copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.0.lock().clone()
    }

    /// Returns what `f` picks out of the recorded items, in arrival order.
    pub fn filter_map<U>(&self, f: impl FnMut(&T) -> Option<U>) -> Vec<U> {
        self.0.lock().iter().filter_map(f).collect()
    }

    /// Returns a copy of every recorded `U`, in arrival order.
    pub fn all<U: Clone>(&self) -> Vec<U>
    where
        T: Variant<U>,
    {
        self.filter_map(|item| item.as_variant().cloned())
    }

    /// Returns how many `U` were recorded.
    pub fn count<U>(&self) -> usize
    where
        T: Variant<U>,
    {
        count::<T, U>(&self.0.lock())
    }

    /// Removes every recorded `U` and returns them in arrival order; the other items keep
    /// their places. A test that takes the items holds the only reference to what they
    /// own (a batch's bars, for one).
    pub fn take_all<U>(&self) -> Vec<U>
    where
        T: Variant<U>,
    {
        let mut items = self.0.lock();
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match item.into_variant() {
                Ok(u) => taken.push(u),
                Err(other) => kept.push(other),
            }
        }
        *items = kept;
        taken
    }

    /// Yields to the runtime until `pred` holds over the recorded items.
    ///
    /// # Panics
    ///
    /// After [`MAX_YIELDS`] rounds without `pred` holding, naming `what` was awaited and
    /// showing what was received instead.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[T]) -> bool)
    where
        T: fmt::Debug,
    {
        self.wait_until_within(MAX_YIELDS, what, pred).await;
    }

    /// [`Recorder::wait_until`] with a bound of `max` rounds.
    async fn wait_until_within(&self, max: usize, what: &str, pred: impl Fn(&[T]) -> bool)
    where
        T: fmt::Debug,
    {
        for _ in 0..max {
            if self.with(&pred) {
                return;
            }
            actix_rt::task::yield_now().await;
        }
        let items = self.0.lock();
        assert!(
            pred(&items),
            "gave up waiting for {what} after {max} yields; received {items:?}"
        );
    }

    /// Waits until at least `n` items were recorded.
    ///
    /// # Panics
    ///
    /// As [`Recorder::wait_until`].
    pub async fn wait_for_len(&self, n: usize)
    where
        T: fmt::Debug,
    {
        self.wait_until(&format!("{n} item(s)"), |items| items.len() >= n)
            .await;
    }

    /// Waits until at least `n` of `U` were recorded.
    ///
    /// # Panics
    ///
    /// As [`Recorder::wait_until`].
    pub async fn wait_for<U>(&self, n: usize)
    where
        T: Variant<U> + fmt::Debug,
    {
        let what = format!("{n} {}(s)", std::any::type_name::<U>());
        self.wait_until(&what, |items| count::<T, U>(items) >= n)
            .await;
    }

    /// Waits for a `U` and returns a copy of the first one recorded.
    ///
    /// # Panics
    ///
    /// As [`Recorder::wait_until`].
    pub async fn wait_for_first<U: Clone>(&self) -> U
    where
        T: Variant<U> + fmt::Debug,
    {
        self.wait_for::<U>(1).await;
        self.with(|items| items.iter().find_map(|item| item.as_variant().cloned()))
            .expect("a recorded item stays recorded unless the test takes it")
    }

    /// Lets [`SETTLE_YIELDS`](crate::SETTLE_YIELDS) rounds pass, so that every message
    /// already sent has been recorded, then returns how many items were.
    pub async fn settled_len(&self) -> usize {
        settle().await;
        self.len()
    }

    /// Starts a [`RecordingActor`] over this log in the current arbiter.
    pub fn start_actor(&self) -> Addr<RecordingActor<T>>
    where
        T: 'static,
    {
        RecordingActor::new(self.clone()).start()
    }
}

fn count<T: Variant<U>, U>(items: &[T]) -> usize {
    items
        .iter()
        .filter(|item| item.as_variant().is_some())
        .count()
}

/// A stand-in actor that records every message it is sent into a [`Recorder`].
///
/// It handles any message `M` with no reply whose type converts into the log's item type
/// `T`, so one actor stands in for every downstream agent and the Monitor at once: a test
/// takes a `Recipient<Heartbeat>`, a `Recipient<StageReport>`, … from the same address, and
/// the recorder keeps the messages in the order the actor received them.
#[derive(Debug)]
pub struct RecordingActor<T> {
    recorder: Recorder<T>,
}

impl<T> RecordingActor<T> {
    /// Creates the actor; it records into `recorder`.
    pub fn new(recorder: Recorder<T>) -> Self {
        Self { recorder }
    }
}

impl<T: 'static> Actor for RecordingActor<T> {
    type Context = Context<Self>;
}

impl<T, M> Handler<M> for RecordingActor<T>
where
    T: From<M> + 'static,
    M: Message<Result = ()> + 'static,
{
    type Result = ();

    fn handle(&mut self, msg: M, _ctx: &mut Context<Self>) {
        self.recorder.push(T::from(msg));
    }
}

/// A stand-in for an agent that answers commands: it records every message it is sent
/// (like [`RecordingActor`]) and answers each `Ok` with a note saying it was recorded.
#[derive(Debug)]
pub struct AnsweringActor<T> {
    recorder: Recorder<T>,
}

impl<T> AnsweringActor<T> {
    /// Creates the actor; it records into `recorder`.
    pub fn new(recorder: Recorder<T>) -> Self {
        Self { recorder }
    }
}

impl<T: 'static> Actor for AnsweringActor<T> {
    type Context = Context<Self>;
}

impl<T, M> Handler<M> for AnsweringActor<T>
where
    T: From<M> + 'static,
    M: Message<Result = Result<String, vigil_messages::CommandError>> + 'static,
{
    type Result = Result<String, vigil_messages::CommandError>;

    fn handle(&mut self, msg: M, _ctx: &mut Context<Self>) -> Self::Result {
        self.recorder.push(T::from(msg));
        Ok("recorded by a stand-in".into())
    }
}

#[cfg(test)]
mod tests {
    use actix::{Message, Recipient};
    use vigil_messages::{Flow, StopReason};

    use super::*;

    #[derive(Message, Debug, Clone, PartialEq)]
    #[rtype(result = "()")]
    struct Ping(u32);

    #[derive(Message, Debug, Clone, PartialEq)]
    #[rtype(result = "()")]
    struct Pong(&'static str);

    crate::record_enum! {
        /// What the stand-in received.
        #[derive(Debug, Clone)]
        enum Got {
            Ping(Ping),
            Pong(Pong),
            End(StopReason),
        }
        Flow<Ping> => Ping, End;
    }

    #[actix_rt::test]
    async fn one_actor_records_every_message_type_in_arrival_order() {
        let seen = Recorder::<Got>::new();
        let actor = seen.start_actor();
        let pings: Recipient<Ping> = actor.clone().recipient();
        let pongs: Recipient<Pong> = actor.clone().recipient();
        let flow: Recipient<Flow<Ping>> = actor.recipient();
        pings.do_send(Ping(1));
        pongs.do_send(Pong("a"));
        flow.do_send(Flow::Data(Ping(2)));
        flow.do_send(Flow::End(StopReason::EndOfData));
        seen.wait_for_len(4).await;

        assert_eq!(seen.all::<Ping>(), vec![Ping(1), Ping(2)]);
        assert_eq!(seen.all::<Pong>(), vec![Pong("a")]);
        assert_eq!(seen.count::<StopReason>(), 1);
        let order: Vec<&str> = seen.with(|got| {
            got.iter()
                .map(|g| match g {
                    Got::Ping(_) => "ping",
                    Got::Pong(_) => "pong",
                    Got::End(_) => "end",
                })
                .collect()
        });
        assert_eq!(order, vec!["ping", "pong", "ping", "end"]);
        assert_eq!(seen.snapshot().len(), 4);
        assert_eq!(seen.wait_for_first::<Ping>().await, Ping(1));
    }

    #[actix_rt::test]
    async fn taking_one_type_leaves_the_others_in_order() {
        let seen = Recorder::<Got>::new();
        seen.push(Got::Ping(Ping(1)));
        seen.push(Got::Pong(Pong("a")));
        seen.push(Got::Ping(Ping(2)));
        seen.push(Got::Pong(Pong("b")));

        assert_eq!(seen.take_all::<Ping>(), vec![Ping(1), Ping(2)]);
        assert!(seen.take_all::<Ping>().is_empty());
        assert_eq!(seen.all::<Pong>(), vec![Pong("a"), Pong("b")]);
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen.filter_map(|g| match g {
                Got::Pong(p) => Some(p.0),
                _ => None,
            }),
            vec!["a", "b"]
        );
        assert_eq!(seen.settled_len().await, 2);
    }

    #[actix_rt::test]
    #[should_panic(
        expected = "gave up waiting for a pong after 10 yields; received [Ping(Ping(1))]"
    )]
    async fn a_wait_that_is_never_satisfied_names_what_it_waited_for_and_what_came() {
        let seen = Recorder::<Got>::new();
        seen.push(Got::Ping(Ping(1)));
        seen.wait_until_within(10, "a pong", |got| count::<Got, Pong>(got) > 0)
            .await;
    }

    #[actix_rt::test]
    async fn waiting_for_a_type_ends_once_one_is_recorded() {
        let seen = Recorder::<Got>::new();
        let waiting = seen.clone();
        let wait = actix_rt::spawn(async move { waiting.wait_for::<Pong>(1).await });
        seen.push(Got::Pong(Pong("late")));
        wait.await.expect("the wait ends once the pong is recorded");
        assert_eq!(seen.count::<Pong>(), 1);
    }

    #[actix_rt::test]
    async fn clones_share_the_log() {
        let seen = Recorder::<Got>::default();
        let other = seen.clone();
        assert!(seen.is_empty());
        other.push(Got::End(StopReason::Interrupted));
        assert_eq!(seen.all::<StopReason>(), vec![StopReason::Interrupted]);
        assert!(format!("{seen:?}").contains("Interrupted"));
    }
}
