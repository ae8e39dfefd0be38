//! Delivery off the caller's thread: retries with exponential backoff, escalation along a
//! route of channels, and an outcome for every attempt.
//!
//! Each configured channel has its own thread (`vigil-alert-<channel>`), so a channel that
//! hangs until its timeout delays only its own deliveries. A thread waits for its next due
//! attempt or the next delivery, whichever comes first: a delivery waiting out a backoff does
//! not hold the others back.

use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_config::DeliveryConfig;

use crate::error::AlertError;
use crate::model::{Channel, DeliveryError, Message, MessageKind};
use crate::registry::Channels;

/// How deliveries are retried and queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Attempts per channel, the first included, while failures are transient.
    pub attempts: u32,
    /// Wait after the first failed attempt; it doubles after each further one.
    pub backoff_base: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
    /// Deliveries queued or in progress at once, over all channels.
    pub queue_capacity: usize,
}

impl Default for DispatchConfig {
    /// 3 attempts, 500 ms doubling up to 30 s, 1024 deliveries.
    fn default() -> Self {
        Self::from(&DeliveryConfig::default())
    }
}

impl From<&DeliveryConfig> for DispatchConfig {
    fn from(cfg: &DeliveryConfig) -> Self {
        Self {
            attempts: cfg.attempts.max(1),
            backoff_base: Duration::from_millis(cfg.backoff_base_ms),
            backoff_max: Duration::from_millis(cfg.backoff_max_ms),
            queue_capacity: cfg.queue_capacity.max(1),
        }
    }
}

impl DispatchConfig {
    /// The wait after failed attempt number `attempt` (1-based): `backoff_base ×
    /// 2^(attempt-1)`, at most `backoff_max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        vigil_core::Backoff::new(self.backoff_base, self.backoff_max)
            .delay(attempt.saturating_sub(1))
    }
}

/// One message to deliver along a route of channels.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// What to deliver; shared, so one notice can go out on several routes cheaply.
    pub message: Arc<Message>,
    /// Channel names in escalation order: the first is tried (with retries); when it fails
    /// for good, the next, and so on. `["sms", "email"]`: SMS, and email if SMS fails.
    pub route: Vec<String>,
}

impl Delivery {
    /// A delivery of `message` along `route`.
    pub fn new<S: Into<String>>(
        message: impl Into<Arc<Message>>,
        route: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            message: message.into(),
            route: route.into_iter().map(Into::into).collect(),
        }
    }
}

/// What happens after an attempt.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NextStep {
    /// The channel took the message; the delivery is done.
    Delivered,
    /// A transient failure: the same channel is tried again after this wait.
    RetryIn(Duration),
    /// The channel failed for good (permanent refusal, or attempts used up); the next
    /// channel of the route, named here, takes the delivery.
    EscalatedTo(String),
    /// The last channel of the route failed for good: nobody was told. The caller should
    /// raise this loudly (an ERROR log line, a counter).
    GaveUp,
}

/// The outcome of one attempt on one channel, handed to the sink.
#[derive(Debug)]
pub struct DeliveryOutcome {
    /// The id [`Dispatcher::submit`] returned.
    pub delivery_id: u64,
    /// The channel tried.
    pub channel: String,
    /// Alert, digest or test.
    pub kind: MessageKind,
    /// The alert's id, for an alert.
    pub alert_id: Option<String>,
    /// 1 for the first attempt on this channel.
    pub attempt: u32,
    /// Success, or why it failed (never a secret).
    pub result: Result<(), DeliveryError>,
    /// How long the attempt took.
    pub elapsed: Duration,
    /// What happens next.
    pub next: NextStep,
}

impl DeliveryOutcome {
    /// Whether the attempt succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The failure's text, if it failed.
    pub fn error_text(&self) -> Option<String> {
        self.result.as_ref().err().map(ToString::to_string)
    }

    /// The channel that takes over, if this attempt escalated.
    pub fn escalated_to(&self) -> Option<&str> {
        match &self.next {
            NextStep::EscalatedTo(to) => Some(to),
            _ => None,
        }
    }
}

type Sink = Box<dyn Fn(DeliveryOutcome) + Send>;

struct Task {
    id: u64,
    message: Arc<Message>,
    route: Arc<[String]>,
    /// Index of the current channel in `route`.
    pos: usize,
    /// 1-based attempt on the current channel.
    attempt: u32,
    due: Instant,
    /// Arrival order at this channel, to keep equal due times first in, first out.
    seq: u64,
}

// A min-heap on (due, seq) out of std's max-heap.
impl Ord for Task {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

impl PartialOrd for Task {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Task {}

enum Cmd {
    Run(Task),
    Stop,
}

struct State {
    /// Deliveries accepted and not yet delivered or given up.
    in_flight: usize,
    /// Shutting down: no new deliveries.
    closing: bool,
}

struct Shared {
    config: DispatchConfig,
    channels: Channels,
    senders: BTreeMap<String, Sender<Cmd>>,
    state: Mutex<State>,
    settled: Condvar,
    sink: Mutex<Sink>,
    next_id: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is two plain numbers, consistent after any panic: carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One delivery is over (delivered, given up, or abandoned).
    fn finish(&self) {
        let mut st = self.state();
        st.in_flight = st.in_flight.saturating_sub(1);
        if st.in_flight == 0 {
            self.settled.notify_all();
        }
    }

    fn report(&self, outcome: DeliveryOutcome) {
        let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        sink(outcome);
    }
}

/// Delivers messages on background threads, one per channel; see the crate docs.
///
/// Construction does no network I/O. [`Dispatcher::submit`] never blocks. Every attempt's
/// outcome goes to the sink given at start, from the channel's thread; the dispatcher itself
/// prints nothing. [`Dispatcher::shutdown`] lets queued deliveries finish; dropping the
/// dispatcher abandons them.
pub struct Dispatcher {
    shared: Arc<Shared>,
    workers: Vec<(String, JoinHandle<()>)>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("channels", &self.shared.channels.names())
            .field("config", &self.shared.config)
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts one delivery thread per channel. `sink` receives every attempt's outcome, on
    /// the delivery threads, one at a time; it must be quick and must not panic (log, count,
    /// or send into a channel).
    ///
    /// # Errors
    /// [`AlertError::Spawn`] when a thread cannot be started (those started are stopped).
    pub fn start(
        channels: Channels,
        config: DispatchConfig,
        sink: impl Fn(DeliveryOutcome) + Send + 'static,
    ) -> Result<Self, AlertError> {
        let mut senders = BTreeMap::new();
        let mut receivers = Vec::new();
        for (name, channel) in channels.iter() {
            let (tx, rx) = mpsc::channel();
            senders.insert(name.to_string(), tx);
            receivers.push((name.to_string(), Arc::clone(channel), rx));
        }
        let shared = Arc::new(Shared {
            config,
            channels,
            senders,
            state: Mutex::new(State {
                in_flight: 0,
                closing: false,
            }),
            settled: Condvar::new(),
            sink: Mutex::new(Box::new(sink)),
            next_id: AtomicU64::new(1),
        });
        let mut dispatcher = Self {
            shared: Arc::clone(&shared),
            workers: Vec::new(),
        };
        for (name, channel, rx) in receivers {
            let worker_shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("vigil-alert-{name}"))
                .spawn(move || run_worker(channel, rx, worker_shared));
            match spawned {
                Ok(handle) => dispatcher.workers.push((name, handle)),
                Err(e) => {
                    // Dropping the dispatcher stops the threads already started.
                    return Err(AlertError::Spawn {
                        channel: name,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(dispatcher)
    }

    /// Queues a delivery and returns its id at once; the first channel of the route tries it
    /// on its own thread.
    ///
    /// # Errors
    /// The delivery is not queued (the caller should log it) when its route is empty or names
    /// a channel that is not configured, when [`DispatchConfig::queue_capacity`] deliveries
    /// are already queued or in progress, or when the dispatcher is shutting down.
    pub fn submit(&self, delivery: Delivery) -> Result<u64, AlertError> {
        let first = delivery
            .route
            .first()
            .ok_or(AlertError::EmptyRoute)?
            .clone();
        if let Some(unknown) = delivery
            .route
            .iter()
            .find(|name| !self.shared.senders.contains_key(name.as_str()))
        {
            return Err(AlertError::UnknownChannel {
                name: unknown.clone(),
                configured: self.shared.channels.names().join(", "),
            });
        }
        let sender =
            self.shared
                .senders
                .get(first.as_str())
                .ok_or_else(|| AlertError::UnknownChannel {
                    name: first.clone(),
                    configured: self.shared.channels.names().join(", "),
                })?;
        {
            let mut st = self.shared.state();
            if st.closing {
                return Err(AlertError::Closed);
            }
            if st.in_flight >= self.shared.config.queue_capacity {
                return Err(AlertError::QueueFull {
                    capacity: self.shared.config.queue_capacity,
                });
            }
            st.in_flight += 1;
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let task = Task {
            id,
            message: delivery.message,
            route: delivery.route.into(),
            pos: 0,
            attempt: 1,
            due: Instant::now(),
            seq: 0,
        };
        if sender.send(Cmd::Run(task)).is_err() {
            self.shared.finish();
            return Err(AlertError::WorkerGone { channel: first });
        }
        Ok(id)
    }

    /// The channels this dispatcher delivers to.
    pub fn channels(&self) -> &Channels {
        &self.shared.channels
    }

    /// Deliveries queued or in progress now.
    pub fn queued(&self) -> usize {
        self.shared.state().in_flight
    }

    /// Stops taking deliveries, waits up to `timeout` for the queued ones to be delivered or
    /// given up, then stops the threads.
    ///
    /// # Errors
    /// [`AlertError::Abandoned`] with the number of deliveries still queued when the time
    /// ran out; [`AlertError::WorkerGone`] when a delivery thread had died (its sink
    /// panicked).
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), AlertError> {
        let start = Instant::now();
        let pending = {
            let mut st = self.shared.state();
            st.closing = true;
            let deadline = start + timeout;
            while st.in_flight > 0 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .shared
                    .settled
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            st.in_flight
        };
        self.stop_workers();
        let mut dead = None;
        for (name, handle) in self.workers.drain(..) {
            if handle.join().is_err() {
                dead.get_or_insert(name);
            }
        }
        if pending > 0 {
            return Err(AlertError::Abandoned {
                pending,
                waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
        match dead {
            Some(channel) => Err(AlertError::WorkerGone { channel }),
            None => Ok(()),
        }
    }

    fn stop_workers(&self) {
        for tx in self.shared.senders.values() {
            // A thread that is already gone has nothing left to stop.
            if tx.send(Cmd::Stop).is_err() {
                continue;
            }
        }
    }
}

impl Drop for Dispatcher {
    /// Stops the threads without waiting: queued deliveries are abandoned. Call
    /// [`Dispatcher::shutdown`] to let them finish.
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.stop_workers();
        }
    }
}

fn run_worker(channel: Arc<dyn Channel>, rx: Receiver<Cmd>, shared: Arc<Shared>) {
    let mut pending: BinaryHeap<Task> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        let next_due = pending.peek().map(|t| t.due);
        let cmd = match next_due {
            Some(due) if due <= now => match rx.try_recv() {
                Ok(cmd) => Some(cmd),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            },
            Some(due) => match rx.recv_timeout(due - now) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => return,
            },
        };
        match cmd {
            Some(Cmd::Run(mut task)) => {
                seq += 1;
                task.seq = seq;
                pending.push(task);
                continue;
            }
            Some(Cmd::Stop) => return,
            None => {}
        }
        if pending.peek().is_some_and(|t| t.due <= Instant::now())
            && let Some(task) = pending.pop()
            && let Some(retry) = attempt(channel.as_ref(), task, &shared)
        {
            seq += 1;
            pending.push(Task { seq, ..retry });
        }
    }
}

/// Runs one attempt, reports it, and hands the delivery on. Returns the task when the same
/// channel is to try again.
fn attempt(channel: &dyn Channel, mut task: Task, shared: &Shared) -> Option<Task> {
    let name = channel.name().to_string();
    let start = Instant::now();
    let result =
        catch_unwind(AssertUnwindSafe(|| channel.deliver(&task.message))).unwrap_or_else(|panic| {
            Err(DeliveryError::Build {
                channel: name.clone(),
                reason: format!("the channel panicked: {}", panic_text(panic.as_ref())),
            })
        });
    let elapsed = start.elapsed();
    let retry = match &result {
        Err(e) if e.is_transient() && task.attempt < shared.config.attempts => {
            Some(shared.config.backoff(task.attempt))
        }
        _ => None,
    };
    let next = match (&result, retry) {
        (Ok(()), _) => NextStep::Delivered,
        (Err(_), Some(wait)) => NextStep::RetryIn(wait),
        (Err(_), None) => match task.route.get(task.pos + 1) {
            Some(to) => NextStep::EscalatedTo(to.clone()),
            None => NextStep::GaveUp,
        },
    };
    let outcome = DeliveryOutcome {
        delivery_id: task.id,
        channel: name,
        kind: task.message.kind(),
        alert_id: task.message.alert_id().map(str::to_string),
        attempt: task.attempt,
        result,
        elapsed,
        next: next.clone(),
    };
    match next {
        NextStep::Delivered | NextStep::GaveUp => {
            // Free the slot first: whoever sees the final outcome sees the queue without it.
            // Shutdown still waits for the report, as it joins this thread.
            shared.finish();
            shared.report(outcome);
            None
        }
        NextStep::RetryIn(wait) => {
            shared.report(outcome);
            task.attempt += 1;
            task.due = Instant::now() + wait;
            Some(task)
        }
        NextStep::EscalatedTo(to) => {
            // Report before handing on, so a channel's outcome is seen before its successor's.
            shared.report(outcome);
            task.pos += 1;
            task.attempt = 1;
            task.due = Instant::now();
            let handed_on = shared
                .senders
                .get(&to)
                .is_some_and(|tx| tx.send(Cmd::Run(task)).is_ok());
            if !handed_on {
                // The next channel's thread has stopped: only at shutdown, which reports
                // the deliveries it abandons.
                shared.finish();
            }
            None
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = DispatchConfig {
            attempts: 10,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            queue_capacity: 1,
        };
        let waits: Vec<u128> = (1..=8).map(|a| cfg.backoff(a).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(cfg.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn defaults_follow_the_config_defaults() {
        let cfg = DispatchConfig::default();
        assert_eq!(cfg.attempts, 3);
        assert_eq!(cfg.backoff_base, Duration::from_millis(500));
        assert_eq!(cfg.backoff_max, Duration::from_secs(30));
        assert_eq!(cfg.queue_capacity, 1024);
    }
}
