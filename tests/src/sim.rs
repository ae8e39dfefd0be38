//! A real session in simulated time against real feeds on 127.0.0.1: the helpers the
//! end-to-end fault tests share (`tests/tests/incident.rs`, `tests/tests/feed_faults.rs`).
//!
//! A session (`vigil_session::Session`) runs on the test's thread with a `SimClock` as its
//! supervision clock (heartbeats, the Monitor, alerting, log flushing); the market clock
//! follows the bars. Feeds are `vigil_feed::FeedServer`s in manual mode on 127.0.0.1, each on
//! a thread of its own, stepped by hand. The test moves the supervision clock with [`walk`],
//! which waits after each step until the actors' timers are set again, and reads the log as
//! it is written with [`LogTail`]. No helper sleeps for behaviour: every wait is for an
//! actual log line, notice or feed answer, bounded in real time by [`PATIENCE`].

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, NaiveTime, TimeZone as _};
use serde_json::Value;
use vigil_config::VigilConfig;
use vigil_core::{Clock as _, SimClock, Timestamp};
use vigil_feed::{FeedOptions, FeedThread, Pacing};
use vigil_session::{Session, SessionOptions, SessionOutcome};
use vigil_testkit::{Received, http_json, settle};

pub use vigil_testkit::PATIENCE;
/// The one instrument of the sessions and their feeds.
pub const SYMBOL: &str = "TEST";
/// The API key id the feeds require (and the sessions send, with [`SECRET`]).
pub const KEY_ID: &str = "incident-key";
/// The feeds' API secret.
pub const SECRET: &str = "incident-feed-secret-0123456789";
/// Rejected messages in a row that fail a source.
pub const MAX_REJECTED: u64 = 3;

/// `date` at `h:m` in New York, as UTC.
pub fn et(date: NaiveDate, h: u32, m: u32) -> Timestamp {
    let local = date.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("time"));
    chrono_tz::America::New_York
        .from_local_datetime(&local)
        .single()
        .expect("one local time")
        .to_utc()
}

/// The `timestamp` of a log line.
pub fn ts(v: &Value) -> Timestamp {
    v["timestamp"]
        .as_str()
        .expect("timestamp")
        .parse()
        .expect("rfc3339")
}

/// `n` minute times from `from` on.
pub fn minutes(from: Timestamp, n: i64) -> Vec<Timestamp> {
    (0..n)
        .map(|i| from + chrono::Duration::minutes(i))
        .collect()
}

/// Writes a bars CSV of `times`: a seeded zig-zag walk that makes a fast EMA cross a
/// slow one often.
pub fn write_bars(path: &Path, times: &[Timestamp]) {
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    let mut price: i64 = 10_000; // cents
    let mut state: u64 = 11;
    let cents = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    for t in times {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let step = ((state >> 33) % 41) as i64 - 20; // -20..=20 cents
        let open = price;
        price = (price + step).max(1_000);
        let (hi, lo) = (open.max(price) + 3, open.min(price) - 3);
        writeln!(
            csv,
            "{},{},{},{},{},1000",
            t.format("%Y-%m-%dT%H:%M:%SZ"),
            cents(open),
            cents(hi),
            cents(lo),
            cents(price)
        )
        .expect("write");
    }
    std::fs::write(path, csv).expect("write bars");
}

/// A feed on 127.0.0.1 in manual mode, serving on a thread of its own ([`FeedThread`]), so
/// that the test may call its control endpoints with blocking HTTP while the session runs
/// on the test's thread. Stopped when dropped.
#[derive(Debug)]
pub struct Feed {
    /// `ws://127.0.0.1:PORT/stream`.
    pub stream_url: String,
    /// `http://127.0.0.1:PORT`, for the control endpoints.
    pub control_url: String,
    thread: Option<FeedThread>,
}

impl Feed {
    /// Starts a feed serving `csv` as [`SYMBOL`], requiring [`KEY_ID`] and [`SECRET`].
    pub fn start(csv: PathBuf) -> Self {
        let thread = FeedThread::start(FeedOptions {
            listen: "127.0.0.1:0".into(),
            sources: vec![(SYMBOL.into(), csv)],
            pacing: Pacing::Manual,
            credentials: Some(vigil_feed::Credentials {
                key_id: KEY_ID.into(),
                secret: SECRET.into(),
            }),
        })
        .expect("feed starts");
        Self {
            stream_url: thread.stream_url().to_string(),
            control_url: thread.control_url().to_string(),
            thread: Some(thread),
        }
    }

    /// Calls a control endpoint with the key; asserts it answers 200 and returns the body.
    pub fn call(&self, method: &str, path: &str) -> Value {
        let (status, body) = http_json(
            &self.control_url,
            method,
            path,
            &[("APCA-API-KEY-ID", KEY_ID), ("APCA-API-SECRET-KEY", SECRET)],
            None,
        );
        assert_eq!(status, 200, "{method} {path}: {body}");
        body
    }

    /// `POST /_feed/step?n=N`: answers once the bars are queued on every subscribed
    /// connection. Returns how many went out.
    pub fn step(&self, n: usize) -> u64 {
        self.call("POST", &format!("/_feed/step?n={n}"))["sent"]
            .as_u64()
            .expect("sent")
    }

    /// Puts a fault in force (`/_faults/...`, see docs/feed.md).
    pub fn fault(&self, path: &str) {
        self.call("POST", path);
    }

    /// How many connections are subscribed now.
    pub fn subscribed(&self) -> u64 {
        self.call("GET", "/_feed")["subscribed"]
            .as_u64()
            .unwrap_or(0)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.thread.take().map(FeedThread::stop)
            && !std::thread::panicking()
        {
            panic!("{e}");
        }
    }
}

/// The session's log read as it is written: ERROR lines reach the disk at once, others
/// at the writer's flush interval (supervision time).
#[derive(Debug)]
pub struct LogTail {
    dir: PathBuf,
    read: Vec<(PathBuf, u64)>,
    lines: Vec<Value>,
}

impl LogTail {
    /// Reads the log folder `dir` (which may not exist yet).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            read: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Reads the complete lines written since the last call.
    pub fn poll(&mut self) -> &[Value] {
        let files = vigil_log::list_log_files(&self.dir).expect("list log files");
        for f in files {
            let at = match self.read.iter().position(|(p, _)| *p == f.path) {
                Some(i) => i,
                None => {
                    self.read.push((f.path.clone(), 0));
                    self.read.len() - 1
                }
            };
            let mut file = std::fs::File::open(&f.path).expect("open log file");
            file.seek(SeekFrom::Start(self.read[at].1)).expect("seek");
            let mut text = String::new();
            file.read_to_string(&mut text).expect("read log file");
            // Only whole lines: the writer may be half way through one.
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            for line in text[..whole].lines().filter(|l| !l.is_empty()) {
                self.lines
                    .push(serde_json::from_str(line).expect("a log line is JSON"));
            }
            self.read[at].1 += whole as u64;
        }
        &self.lines
    }

    /// The first line (and its index) `pred` accepts, among all read so far.
    pub fn find(&mut self, pred: impl Fn(&Value) -> bool) -> Option<(usize, Value)> {
        self.poll()
            .iter()
            .enumerate()
            .find(|(_, v)| pred(v))
            .map(|(i, v)| (i, v.clone()))
    }
}

/// Lets the agents run until `f` gives an answer, bounded by [`PATIENCE`] of real time;
/// the supervision clock does not move.
pub async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {PATIENCE:?}"
        );
        for _ in 0..20 {
            actix_rt::task::yield_now().await;
        }
    }
}

/// Moves the supervision clock to `to` in steps of `step`; after each, waits until every
/// timer the step fired has been handled and set again (the agents' heartbeats, the
/// Monitor's probes and snapshots, the log's flush: all repeat; but for a reconnect's
/// one-shot wait), so that the clock never
/// runs ahead of the actors, unless the session has ended (it sets no more timers).
/// `each` is asked after every step and may end the walk early (returns `true`).
pub async fn walk(
    run: &Running,
    to: Timestamp,
    step: chrono::Duration,
    mut each: impl FnMut() -> bool,
) {
    let wall = &run.wall;
    while wall.now() < to {
        let timers = wall.pending_timers();
        let next = (wall.now() + step).min(to);
        wall.advance_to(next);
        // One timer may be a one-shot that is not set again (the Data agent's wait before it
        // reconnects during a data outage): one short is accepted after a while.
        let since = Instant::now();
        until("the timers of a step to be set again", || {
            let pending = wall.pending_timers();
            let waited = since.elapsed() > std::time::Duration::from_millis(500);
            (pending >= timers || run.ended.get() || (waited && pending + 1 >= timers))
                .then_some(())
        })
        .await;
        settle().await;
        if each() {
            return;
        }
    }
}

/// Walks the clock in 10-second steps until the log holds a line `pred` accepts; fails at
/// `by`.
pub async fn walk_until(
    run: &Running,
    tail: &mut LogTail,
    by: Timestamp,
    pred: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let mut found = None;
    walk(run, by, chrono::Duration::seconds(10), || {
        found = tail.find(&pred);
        found.is_some()
    })
    .await;
    found.unwrap_or_else(|| panic!("no such line by {by}"))
}

/// A session running on the test's thread, with its supervision clock.
#[derive(Debug)]
pub struct Running {
    /// The supervision clock.
    pub wall: SimClock,
    /// Commands to the session.
    pub control: vigil_session::SessionControl,
    /// Set when the session has ended.
    pub ended: Rc<Cell<bool>>,
    waiting: actix_rt::task::JoinHandle<Result<SessionOutcome, vigil_session::SystemError>>,
}

impl Running {
    /// Starts a session on `cfg` with the supervision clock at `wall`.
    pub async fn start(cfg: VigilConfig, wall: &SimClock) -> Self {
        let opts = SessionOptions {
            supervision_clock: Arc::new(wall.clone()),
            ..SessionOptions::new(cfg)
        };
        let session = Session::start(opts).await.expect("the session starts");
        let control = session.control();
        let ended = Rc::new(Cell::new(false));
        let flag = ended.clone();
        let waiting = actix_rt::spawn(async move {
            let outcome = session.wait().await;
            flag.set(true);
            outcome
        });
        Self {
            wall: wall.clone(),
            control,
            ended,
            waiting,
        }
    }

    /// Stops the session (if it still runs) and returns its outcome.
    pub async fn finish(self) -> SessionOutcome {
        self.control.shutdown();
        self.waiting
            .await
            .expect("the session's task")
            .expect("the session ends cleanly")
    }
}

/// The alert notices the webhook received: (rule, severity, status, the whole body).
pub fn notices(got: &[Received]) -> Vec<(String, String, String, Value)> {
    got.iter()
        .map(Received::json)
        .filter(|v| v["kind"] == "alert")
        .map(|v| {
            let a = &v["alert"];
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("rule"), s("severity"), s("status"), v.clone())
        })
        .collect()
}

/// The session's config: the feed (and its backups), the automated day, the webhook.
pub fn config(dir: &Path, primary: &str, backups: &[&str], webhook: &str) -> VigilConfig {
    let secret = dir.join("feed.secret");
    vigil_testkit::write_secret_file(&secret, format!("{SECRET}\n"));
    let feed_extra = format!(
        "max_rejected_in_a_row = {MAX_REJECTED}\n{}",
        vigil_testkit::config::feed_backups(backups, KEY_ID, &secret)
    );
    let text = format!(
        r#"{feed}
[signal]
fast_span = 3
slow_span = 8

[calendar]
automation = true

[checklist]
dir = "{reports}"

[log]
dir = "{logs}"

[store]
path = "{store}"

[control]
enabled = false

[alerts.channels.webhook]
url = "{webhook}"
"#,
        feed = vigil_testkit::config::feed_sections(SYMBOL, primary, KEY_ID, &secret, &feed_extra),
        reports = dir.join("reports").display(),
        logs = dir.join("logs").display(),
        store = dir.join("state.db").display(),
    );
    let file = dir.join("vigil.toml");
    std::fs::write(&file, text).expect("write config");
    let mut cfg = VigilConfig::load(&file).expect("valid config");
    cfg.risk.regime_size_factor.volatile = rust_decimal::Decimal::ONE;
    // The supervision clock walks the weekend ten minutes at a time: heartbeats, probes
    // and snapshots every step, a heartbeat missing only after an hour.
    cfg.monitor.heartbeat_interval_ms = 10 * 60_000;
    cfg.monitor.heartbeat_timeout_ms = 60 * 60_000;
    cfg.monitor.probe_interval_ms = 10 * 60_000;
    cfg.monitor.snapshot_interval_s = 10 * 60;
    // Quiet hours would turn every notice but a Critical one into the Monday digest
    // (16:05 ET, after the open): this desk wants a weekend failover paged at once.
    cfg.alerts.quiet_outside_trading_hours = false;
    cfg
}

/// Waits until the session is subscribed to `feed`.
pub async fn subscribed(feed: &Feed) {
    until("the session's subscription", || {
        (feed.subscribed() == 1).then_some(())
    })
    .await;
}

/// From the trip to the verification, in the Risk agent's own order, nothing is approved.
pub fn risk_approved_nothing_during_the_outage(log: &[Value]) {
    let risk: Vec<&Value> = log
        .iter()
        .filter(|v| v["service"] == "risk_agent")
        .collect();
    let tripped = risk
        .iter()
        .position(|v| v["event"] == "breaker_tripped")
        .expect("breaker_tripped");
    assert_eq!(risk[tripped]["data"]["actor"], "data_outage");
    let verified = risk
        .iter()
        .position(|v| v["event"] == "data_verified")
        .expect("data_verified");
    assert!(tripped < verified);
    assert!(
        risk[..tripped]
            .iter()
            .any(|v| v["event"] == "risk_approved"),
        "the warm-up bars were traded on"
    );
    assert!(
        risk[tripped..verified]
            .iter()
            .all(|v| v["event"] != "risk_approved"),
        "nothing is approved before the data is verified"
    );
}
