//! The fleet's central monitor over NATS (`vigil fleet watch`): a durable consumer reads
//! every node's lines in order into the [`Watch`], the leases are read every `poll`, and
//! what the watch finds goes to `emit` (the caller logs it and routes it to its alerts).
//!
//! A batch is checked, the view saved (`state_file`), and only then acknowledged: a monitor
//! that dies between the two reads the batch again, and the watch knows those lines.
//! The view of every node is also put in the bucket [`VIEW_BUCKET`], so `vigil fleet status`
//! shows it from any host.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv};
use futures_util::StreamExt as _;
use vigil_core::{SharedClock, Timestamp};
use vigil_log::{ChainKey, Event, LogEvent};

use crate::watch::{Lease, SERVICE, Watch};
use crate::{SUBJECT_PREFIX, nats};

/// The key-value bucket of the central monitor's view of each node (one key per node).
pub const VIEW_BUCKET: &str = "vigil_fleet_view";

/// Most lines read, checked and acknowledged at once.
const BATCH: usize = 512;

/// What the monitor needs.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// The NATS server.
    pub url: String,
    /// The fleet's stream.
    pub stream: String,
    /// The durable consumer's name (one per monitor).
    pub consumer: String,
    /// Where the view is saved between runs.
    pub state_file: PathBuf,
    /// How often the leases are read.
    pub poll: Duration,
    /// The nodes' chain key, when their logs are keyed (`[log] hmac_key_file`).
    pub key: Option<ChainKey>,
}

/// Reads the saved view; a missing file is an empty view.
///
/// # Errors
/// The file exists and cannot be read or is not a view (the message names it).
pub fn load(state_file: &std::path::Path) -> Result<Watch, String> {
    match std::fs::read(state_file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a fleet view: {e}", state_file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Watch::default()),
        Err(e) => Err(format!("{}: {e}", state_file.display())),
    }
}

/// Saves the view (written aside, then renamed over the old one).
fn save(state_file: &std::path::Path, watch: &Watch) -> Result<(), String> {
    let tmp = state_file.with_extension("json.tmp");
    let bytes = serde_json::to_vec(watch).map_err(|e| format!("the fleet view: {e}"))?;
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, state_file))
        .map_err(|e| format!("{}: {e}", state_file.display()))
}

/// The NATS side, made (again) after an outage.
struct Link {
    consumer: consumer::Consumer<consumer::pull::Config>,
    leases: kv::Store,
    views: kv::Store,
}

async fn link(js: &jetstream::Context, opts: &MonitorOptions) -> Result<Link, String> {
    let stream = nats::fleet_stream(js, &opts.stream).await?;
    let consumer = stream
        .get_or_create_consumer(
            &opts.consumer,
            consumer::pull::Config {
                durable_name: Some(opts.consumer.clone()),
                description: Some("vigil fleet watch: every node's lines, in order".into()),
                filter_subject: format!("{SUBJECT_PREFIX}.>"),
                ack_policy: consumer::AckPolicy::All,
                deliver_policy: consumer::DeliverPolicy::All,
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("the consumer {}: {e}", opts.consumer))?;
    let leases = nats::lease_bucket(js, Duration::from_secs(15)).await?;
    let views = nats::bucket(js, VIEW_BUCKET, Duration::from_secs(30 * 24 * 3600)).await?;
    Ok(Link {
        consumer,
        leases,
        views,
    })
}

/// Every node's lease in the bucket.
///
/// # Errors
/// The bucket cannot be read, or a lease is not one (the message says which).
pub async fn read_leases(kv: &kv::Store) -> Result<Vec<Lease>, String> {
    let mut keys = kv.keys().await.map_err(|e| format!("the leases: {e}"))?;
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        names.push(k.map_err(|e| format!("the leases: {e}"))?);
    }
    names.sort();
    let mut out = Vec::new();
    for node in names {
        let Some(entry) = kv
            .entry(&node)
            .await
            .map_err(|e| format!("the lease of {node}: {e}"))?
        else {
            continue;
        };
        let lease: serde_json::Value = serde_json::from_slice(&entry.value)
            .map_err(|e| format!("the lease of {node} is not JSON: {e}"))?;
        out.push(Lease {
            stored_at: timestamp(entry.created.unix_timestamp_nanos()),
            lease_s: lease["lease_s"].as_u64().unwrap_or(15),
            stopped: lease["stopped"] == true,
            seq: lease["seq"].as_u64(),
            node,
        });
    }
    Ok(out)
}

/// A NATS server time (nanoseconds since the epoch) as ours.
pub(crate) fn timestamp(unix_ns: i128) -> Timestamp {
    chrono::DateTime::from_timestamp_nanos(i64::try_from(unix_ns).unwrap_or(i64::MAX))
}

/// Runs the monitor until `stop` turns true; returns the view (saved) and how many lines it
/// read. NATS outages are logged once (`fleet_watch_failed`) and retried with backoff.
pub async fn run(
    opts: &MonitorOptions,
    mut watch: Watch,
    clock: SharedClock,
    emit: &mut (dyn FnMut(LogEvent) + Send),
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Watch, u64) {
    let client = match nats::connect(&opts.url, "vigil fleet watch").await {
        Ok(c) => c,
        Err(e) => {
            emit(
                LogEvent::new(clock.now(), SERVICE, Event::FleetWatchFailed)
                    .with("error", e)
                    .with("url", opts.url.clone()),
            );
            return (watch, 0);
        }
    };
    let js = nats::jetstream(client, Duration::from_secs(5));
    let mut nats_link: Option<Link> = None;
    let mut outage: Option<Timestamp> = None;
    let mut backoff = Duration::from_millis(250);
    let mut next_poll = Instant::now();
    let mut read = 0u64;
    let mut out = Vec::new();
    while !*stop.borrow() {
        let step = async {
            if nats_link.is_none() {
                nats_link = Some(link(&js, opts).await?);
                // Leases grown old while NATS was out of reach are given a lease to renew.
                watch.resumed_at = Some(clock.now());
            }
            let Some(l) = nats_link.as_ref() else {
                return Ok(());
            };
            read += batch(opts, l, &mut watch, &clock, &mut out).await?;
            if Instant::now() >= next_poll {
                next_poll = Instant::now() + opts.poll;
                let leases = read_leases(&l.leases).await?;
                watch.leases(clock.now(), &leases, &mut out);
                publish_views(&l.views, &watch).await?;
            }
            Ok::<(), String>(())
        };
        let res = tokio::select! {
            r = step => r,
            _ = stop.changed() => Ok(()),
        };
        for ev in out.drain(..) {
            emit(ev);
        }
        match res {
            Ok(()) => {
                if let Some(since) = outage.take() {
                    emit(
                        LogEvent::new(clock.now(), SERVICE, Event::FleetWatchRecovered)
                            .with("outage_s", (clock.now() - since).num_seconds()),
                    );
                }
                backoff = Duration::from_millis(250);
            }
            Err(e) => {
                nats_link = None;
                if outage.is_none() {
                    outage = Some(clock.now());
                    emit(
                        LogEvent::new(clock.now(), SERVICE, Event::FleetWatchFailed)
                            .with("error", e)
                            .with("url", opts.url.clone()),
                    );
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    if let Err(e) = save(&opts.state_file, &watch) {
        emit(
            LogEvent::new(clock.now(), SERVICE, Event::FleetWatchFailed)
                .with("error", format!("the view was not saved: {e}"))
                .with("url", opts.url.clone()),
        );
    }
    (watch, read)
}

/// Reads one batch (waiting up to 250 ms for the first line), checks it, saves the view,
/// then acknowledges it; returns how many lines it held.
async fn batch(
    opts: &MonitorOptions,
    l: &Link,
    watch: &mut Watch,
    clock: &SharedClock,
    out: &mut Vec<LogEvent>,
) -> Result<u64, String> {
    let mut messages = l
        .consumer
        .batch()
        .max_messages(BATCH)
        .expires(Duration::from_millis(250))
        .messages()
        .await
        .map_err(|e| format!("reading the stream {}: {e}", opts.stream))?;
    let mut last = None;
    let mut n = 0u64;
    while let Some(m) = messages.next().await {
        let m = m.map_err(|e| format!("reading the stream {}: {e}", opts.stream))?;
        let (node, published) = {
            let info = m
                .info()
                .map_err(|e| format!("a message of the stream {}: {e}", opts.stream))?;
            let node = crate::node_of(m.subject.as_str()).unwrap_or("").to_string();
            (node, timestamp(info.published.unix_timestamp_nanos()))
        };
        watch.line(
            &node,
            &m.payload,
            published,
            clock.now(),
            opts.key.as_ref(),
            out,
        );
        n += 1;
        last = Some(m);
    }
    if let Some(m) = last {
        save(&opts.state_file, watch)?;
        // Acknowledges every line up to this one (AckPolicy::All), once the server says so.
        m.double_ack()
            .await
            .map_err(|e| format!("acknowledging to the stream {}: {e}", opts.stream))?;
    }
    Ok(n)
}

/// Puts each node's view in [`VIEW_BUCKET`].
async fn publish_views(views: &kv::Store, watch: &Watch) -> Result<(), String> {
    for (node, view) in &watch.nodes {
        let bytes = serde_json::to_vec(view).map_err(|e| format!("the view of {node}: {e}"))?;
        views
            .put(node, bytes.into())
            .await
            .map_err(|e| format!("the view of {node} in {VIEW_BUCKET}: {e}"))?;
    }
    Ok(())
}
