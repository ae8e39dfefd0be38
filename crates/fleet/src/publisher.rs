//! The node's publisher: a thread of its own (outside the actor system: trading never
//! waits for it) that sends the log's lines to the fleet's stream as the writer puts them
//! on disk, and renews the node's lease.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use vigil_config::FleetConfig;
use vigil_core::{Level, SharedClock};
use vigil_log::{Event, LogEvent, LogSink};

use crate::tail::{Line, Tail};
use crate::{message_id, nats, subject};

/// The service named in the publisher's log lines.
const SERVICE: &str = "fleet";

/// Lines sent before their acknowledgements are awaited.
const BATCH: usize = 512;

/// How long one JetStream call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the log is looked at when it has nothing new.
const IDLE: Duration = Duration::from_millis(200);

/// The longest wait between two tries while NATS is down, in seconds.
pub const MAX_BACKOFF_S: u64 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(MAX_BACKOFF_S);

/// What the publisher's thread is told by the session.
#[derive(Debug, Default)]
struct Control {
    /// Stop once the log is sent (or at `until`).
    stopping: AtomicBool,
    until: parking_lot::Mutex<Option<Instant>>,
}

/// The running publisher.
#[derive(Debug)]
pub struct Publisher {
    control: Arc<Control>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    /// Starts publishing the log of folder `log_dir` as node `cfg.node`. Outages are
    /// logged through `log`; `wall` stamps them and the lease.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(
        cfg: FleetConfig,
        log_dir: PathBuf,
        log: LogSink,
        wall: SharedClock,
    ) -> std::io::Result<Self> {
        let control = Arc::new(Control::default());
        let told = control.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-fleet".into())
            .spawn(move || {
                let report = Report {
                    log,
                    wall: wall.clone(),
                    url: cfg.url.clone(),
                };
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(cfg, log_dir, report, wall, told)),
                    Err(e) => report.failed(&format!("cannot start its runtime: {e}"), 0),
                }
            })?;
        Ok(Self {
            control,
            thread: Some(thread),
        })
    }

    /// Sends what is left of the log (the session's last lines) for at most `within`,
    /// marks the lease stopped, and ends the thread.
    pub fn stop(mut self, within: Duration) {
        *self.control.until.lock() = Some(Instant::now() + within);
        self.control.stopping.store(true, Ordering::Release);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("vigil: ERROR the fleet publisher's thread panicked");
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.control.stopping.store(true, Ordering::Release);
    }
}

/// Where the publisher tells what happens to it.
struct Report {
    log: LogSink,
    wall: SharedClock,
    url: String,
}

impl Report {
    fn failed(&self, error: &str, backlog: usize) {
        // Also on standard error: the log is what waits, and an operator at the console
        // should not have to wait for it.
        eprintln!(
            "vigil: ERROR fleet: cannot publish to {}: {error}",
            self.url
        );
        self.log.send(vec![
            LogEvent::new(self.wall.now(), SERVICE, Event::FleetPublishFailed)
                .level(Level::Error)
                .with("url", self.url.clone())
                .with("error", error.to_string())
                .with("backlog", backlog as u64),
        ]);
    }

    fn lease_failed(&self, node: &str, error: &str) {
        eprintln!("vigil: WARN fleet: the lease of {node} was not renewed: {error}");
        self.log.send(vec![
            LogEvent::new(self.wall.now(), SERVICE, Event::FleetLeaseFailed)
                .level(Level::Warn)
                .with("node", node.to_string())
                .with("bucket", crate::LEASE_BUCKET)
                .with("error", error.to_string()),
        ]);
    }

    fn lease_renewed(&self, node: &str, failed: Duration) {
        self.log.send(vec![
            LogEvent::new(self.wall.now(), SERVICE, Event::FleetLeaseRenewed)
                .with("node", node.to_string())
                .with("failed_s", failed.as_secs()),
        ]);
    }

    fn recovered(&self, published: u64, outage: Duration) {
        self.log.send(vec![
            LogEvent::new(self.wall.now(), SERVICE, Event::FleetPublishRecovered)
                .with("url", self.url.clone())
                .with("published", published)
                .with("outage_s", outage.as_secs()),
        ]);
    }
}

/// An outage in progress: since when, and what was sent since.
struct Outage {
    since: Instant,
    published: u64,
}

async fn run(
    cfg: FleetConfig,
    dir: PathBuf,
    report: Report,
    wall: SharedClock,
    control: Arc<Control>,
) {
    let client = match nats::connect(&cfg.url, &format!("vigil {}", cfg.node)).await {
        Ok(c) => c,
        Err(e) => return report.failed(&e, 0),
    };
    let js = nats::jetstream(client, CALL_TIMEOUT);
    let mut tail = match Tail::open(&dir) {
        Ok(t) => t,
        Err(e) => return report.failed(&e, 0),
    };
    let lease_every = Duration::from_secs(cfg.lease_s.max(3)) / 3;
    let mut stream_ready = false;
    let mut bucket = None;
    let mut lease_due = Instant::now();
    let mut last_seq = None;
    let mut outage: Option<Outage> = None;
    let mut lease_failing: Option<Instant> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        let stopping = control.stopping.load(Ordering::Acquire);
        let out_of_time = control.until.lock().is_some_and(|u| Instant::now() >= u);
        if stopping && out_of_time {
            break;
        }
        let sent = async {
            if !stream_ready {
                nats::fleet_stream(&js, &cfg.stream).await?;
                stream_ready = true;
            }
            let lines = tail.pending(BATCH)?;
            let n = lines.len();
            if let Some(last) = publish(&js, &cfg.node, &lines).await? {
                tail.commit(last.end.clone())?;
                last_seq = Some(last.seq);
            }
            Ok::<usize, String>(n)
        }
        .await;
        match sent {
            Ok(n) => {
                backoff = Duration::from_millis(250);
                if let Some(o) = outage.as_mut() {
                    o.published += n as u64;
                }
                if n == 0 {
                    // Caught up.
                    if let Some(o) = outage.take() {
                        report.recovered(o.published, o.since.elapsed());
                    }
                    if stopping {
                        break;
                    }
                    tokio::time::sleep(IDLE).await;
                }
            }
            Err(error) => {
                stream_ready = false;
                if outage.is_none() {
                    let backlog = tail.pending(BATCH).map_or(0, |l| l.len());
                    report.failed(&error, backlog);
                    outage = Some(Outage {
                        since: Instant::now(),
                        published: 0,
                    });
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if outage.is_none() && Instant::now() >= lease_due {
            lease_due = Instant::now() + lease_every;
            let renewed = renew(&js, &mut bucket, &cfg, &wall, last_seq, false).await;
            lease_failing = lease_outcome(&report, &cfg.node, renewed, lease_failing);
        }
    }
    if outage.is_none() {
        let renewed = renew(&js, &mut bucket, &cfg, &wall, last_seq, true).await;
        lease_outcome(&report, &cfg.node, renewed, lease_failing);
    }
}

/// Reports a renewal's outcome: the first failure of a streak and the renewal that ends
/// it. Returns since when the lease has been failing, if it still is.
fn lease_outcome(
    report: &Report,
    node: &str,
    renewed: Result<(), String>,
    failing: Option<Instant>,
) -> Option<Instant> {
    match (renewed, failing) {
        (Ok(()), None) => None,
        (Ok(()), Some(since)) => {
            report.lease_renewed(node, since.elapsed());
            None
        }
        (Err(e), None) => {
            report.lease_failed(node, &e);
            Some(Instant::now())
        }
        (Err(_), Some(since)) => Some(since),
    }
}

/// Sends `lines` and waits for every acknowledgement; returns the last line the stream
/// holds (a duplicate counts: it was stored before).
async fn publish<'a>(
    js: &async_nats::jetstream::Context,
    node: &str,
    lines: &'a [Line],
) -> Result<Option<&'a Line>, String> {
    let mut acks = Vec::with_capacity(lines.len());
    for line in lines {
        let msg = PublishMessage::build()
            .message_id(message_id(node, line.seq, &line.hash))
            .header("Vigil-Node", node)
            .header("Vigil-Seq", line.seq.to_string().as_str())
            .payload(line.text.clone());
        let ack = js
            .send_publish(subject(node, &line.event), msg)
            .await
            .map_err(|e| format!("publishing seq {}: {e}", line.seq))?;
        acks.push(ack);
    }
    let mut last = None;
    for (ack, line) in acks.into_iter().zip(lines) {
        ack.await
            .map_err(|e| format!("the stream's acknowledgement of seq {}: {e}", line.seq))?;
        last = Some(line);
    }
    Ok(last)
}

/// Renews the node's lease: its name, when, the newest line the stream holds, and
/// whether it stopped (a node that stops says so; one that dies lets its lease run out).
///
/// # Errors
/// The bucket cannot be had or the lease cannot be put (it is tried again at the next
/// renewal; the lines flow meanwhile).
async fn renew(
    js: &async_nats::jetstream::Context,
    bucket: &mut Option<async_nats::jetstream::kv::Store>,
    cfg: &FleetConfig,
    wall: &SharedClock,
    seq: Option<u64>,
    stopped: bool,
) -> Result<(), String> {
    let b = match bucket {
        Some(b) => b,
        None => bucket.insert(nats::lease_bucket(js, Duration::from_secs(cfg.lease_s)).await?),
    };
    let value = serde_json::json!({
        "node": cfg.node,
        "at": wall.now(),
        "seq": seq,
        "lease_s": cfg.lease_s,
        "stopped": stopped,
    });
    if let Err(e) = b.put(&cfg.node, value.to_string().into()).await {
        *bucket = None;
        return Err(e.to_string());
    }
    Ok(())
}
