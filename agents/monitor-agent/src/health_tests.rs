//! The Monitor's measurements end to end, in simulated time: a mailbox that stops
//! answering, a data source that stays disconnected, a log folder that stops growing (in and
//! out of trading hours), and the outside heartbeat ping.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot, watch};
use vigil_calendar::Calendar;
use vigil_config::{DeadManConfig, MonitorConfig, Secret};
use vigil_core::{AgentId, AgentState, Clock, Level, SimClock};
use vigil_log::{Event, LogBuffer, LogEvent, LogSink, MemoryLog, Value};
use vigil_messages::{Backlogs, Figures, Heartbeat, Ping, Reachability};
use vigil_monitoring::HealthBoard;
use vigil_testkit::{logged, text, timestamp as t, yield_until};

use crate::agent::MonitorAgent;
use crate::health::HealthLinks;

const SERVICE: &str = "monitor_agent";

/// An agent whose mailbox answers a ping only once released.
struct Pinged {
    release: watch::Receiver<bool>,
    answered: Arc<AtomicUsize>,
}

impl Actor for Pinged {
    type Context = Context<Self>;
}

impl Handler<Ping> for Pinged {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        let mut release = self.release.clone();
        let answered = self.answered.clone();
        Box::pin(async move {
            // A closed sender means the test is over; the ping then simply ends.
            if release.wait_for(|open| *open).await.is_err() {
                return;
            }
            answered.fetch_add(1, Ordering::SeqCst);
        })
    }
}

struct Rig {
    addr: Addr<MonitorAgent>,
    log: MemoryLog,
    wall: SimClock,
    log_dir: tempfile::TempDir,
    release: watch::Sender<bool>,
    /// Pings the Signal agent's mailbox has answered.
    answered: Arc<AtomicUsize>,
    board: HealthBoard,
    /// Seconds between probes.
    step_s: u32,
    /// Timers the Monitor keeps armed: heartbeat check, probe, snapshot, outside ping.
    timers: usize,
    _done: oneshot::Receiver<vigil_messages::SessionSummary>,
}

/// A Monitor with health measurement on: probes every second, the Signal agent's mailbox
/// behind a ping that answers only once released, the market clock at `market`.
fn rig(market: &str, cfg: MonitorConfig) -> Rig {
    rig_stepping(market, cfg, 1)
}

/// [`rig`] whose probes and heartbeat checks run every `step_s` seconds.
fn rig_stepping(market: &str, cfg: MonitorConfig, step_s: u32) -> Rig {
    rig_full(market, "2030-01-01T00:00:00Z", cfg, step_s)
}

/// [`rig_stepping`] with the supervision (wall) clock starting at `wall`.
fn rig_full(market: &str, wall: &str, cfg: MonitorConfig, step_s: u32) -> Rig {
    let wall = SimClock::starting_at(t(wall));
    let market = SimClock::starting_at(t(market));
    let (sink, log) = LogSink::memory();
    let seen = vigil_testkit::Recorder::<crate::test_links::Sent>::new();
    let (done_tx, done) = oneshot::channel();
    let (release, release_rx) = watch::channel(true);
    let answered = Arc::new(AtomicUsize::new(0));
    let signal = Pinged {
        release: release_rx,
        answered: answered.clone(),
    }
    .start();
    let log_dir = tempfile::tempdir().expect("temp dir");
    let board = HealthBoard::new();
    let links = HealthLinks {
        board: board.clone(),
        backlogs: Backlogs::default(),
        pings: vec![(AgentId::Signal, signal.recipient())],
        calendar: Some(Calendar::xnys()),
        log_dir: log_dir.path().to_path_buf(),
        disk_path: log_dir.path().to_path_buf(),
        source_name: "feed".into(),
        venue_name: "paper".into(),
    };
    let timers = 3 + usize::from(cfg.dead_man.heartbeat_url.is_some());
    let agent = MonitorAgent::new(
        MonitorConfig {
            heartbeat_interval_ms: u64::from(step_s) * 1_000,
            heartbeat_timeout_ms: 3_600_000,
            probe_interval_ms: u64::from(step_s) * 1_000,
            snapshot_interval_s: 3_600,
            ..cfg
        },
        "test-session".into(),
        Arc::new(wall.clone()),
        Arc::new(market),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        crate::test_links::links(&seen, false),
        done_tx,
    )
    .with_health(links);
    Rig {
        addr: agent.start(),
        log,
        wall,
        log_dir,
        release,
        answered,
        board,
        timers,
        step_s,
        _done: done,
    }
}

/// Takes the Monitor's commands to the Signal and Risk agents (not under test here).
impl Rig {
    /// Moves the supervision clock `secs` seconds on, one probe interval at a time, letting
    /// the Monitor run every probe due on the way.
    async fn pass(&self, secs: u32) {
        assert_eq!(
            secs % self.step_s,
            0,
            "{secs} s is not a whole number of steps"
        );
        for _ in 0..secs / self.step_s {
            self.armed().await;
            self.wall
                .advance_by(chrono::Duration::seconds(i64::from(self.step_s)));
            self.armed().await;
        }
    }

    /// Waits until every timer of the Monitor is armed again, that is, every one that was
    /// due has run.
    async fn armed(&self) {
        let now = self.wall.now();
        yield_until(
            &format!("the monitor's {} timers at {now}", self.timers),
            || self.wall.pending_timers() >= self.timers,
        )
        .await;
    }

    async fn heartbeat(&self, agent: AgentId, figures: Figures) {
        self.addr
            .send(Heartbeat {
                agent,
                state: AgentState::Running,
                at: self.wall.now(),
                processed: 0,
                figures,
            })
            .await
            .expect("heartbeat");
    }

    /// `threshold_breached` / `threshold_recovered` events of one rule.
    fn rule_events(&self, event: Event, rule: &str) -> Vec<LogEvent> {
        logged(&self.log, event)
            .into_iter()
            .filter(|e| text(e, "rule") == rule)
            .collect()
    }

    /// Writes `n` bytes more into the newest log file, as the log writer would.
    fn grow_log(&self, n: usize) {
        append(&self.log_dir.path().join("vigil-20300101-000001.jsonl"), n);
    }
}

fn append(path: &Path, n: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log file");
    f.write_all(&vec![b'x'; n]).expect("write log file");
}

fn data_figures(up: bool) -> Figures {
    source_figures(up, None)
}

/// A Data agent's figures; `live_since_bar`: a live source whose last bar came then.
fn source_figures(up: bool, live_since_bar: Option<&str>) -> Figures {
    Figures::Data {
        last_bar_at: None,
        last_update_at: live_since_bar.map(t),
        bars: 0,
        rejected: 0,
        parse_errors: 0,
        gaps: 0,
        missing_bars: 0,
        quarantined: 0,
        withheld: 0,
        disagreements: 0,
        live: live_since_bar.is_some(),
        ended: false,
        source: Reachability {
            up,
            error: (!up).then(|| "connection refused".to_string()),
            ..Reachability::default()
        },
    }
}

#[actix_rt::test]
async fn a_mailbox_that_stops_answering_raises_agent_response_slow_after_five_seconds() {
    let r = rig("2024-01-16T15:00:00Z", MonitorConfig::default());
    r.grow_log(1);
    r.pass(2).await;
    assert!(
        r.rule_events(Event::ThresholdBreached, "agent_response_slow")
            .is_empty()
    );
    // The Signal agent's mailbox stops answering: the ping in flight ages with the clock.
    r.release.send_replace(false);
    r.pass(5).await;
    assert!(
        r.rule_events(Event::ThresholdBreached, "agent_response_slow")
            .is_empty(),
        "a ping outstanding for 5 s is not yet above the 5 s threshold"
    );
    r.pass(2).await;
    let breached = r.rule_events(Event::ThresholdBreached, "agent_response_slow");
    assert_eq!(breached.len(), 1, "{breached:?}");
    assert_eq!(breached[0].level, Level::Warn);
    assert_eq!(text(&breached[0], "label"), "agent=signal");
    assert!(
        matches!(breached[0].get("value"), Some(Value::F64(v)) if *v > 5.0),
        "{breached:?}"
    );
    assert!(
        r.board
            .status()
            .breaches
            .iter()
            .any(|b| b.rule == "agent_response_slow")
    );
    // The mailbox answers again: the next round trip is quick and the rule recovers.
    let before = r.answered.load(Ordering::SeqCst);
    r.release.send_replace(true);
    yield_until("the outstanding ping to be answered", || {
        r.answered.load(Ordering::SeqCst) > before
    })
    .await;
    r.pass(3).await;
    let recovered = r.rule_events(Event::ThresholdRecovered, "agent_response_slow");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(text(&recovered[0], "label"), "agent=signal");
}

#[actix_rt::test]
async fn a_data_source_disconnected_for_a_minute_is_critical_and_recovers_on_reconnect() {
    let r = rig("2024-01-16T15:00:00Z", MonitorConfig::default());
    r.grow_log(1);
    r.heartbeat(AgentId::Data, data_figures(false)).await;
    r.pass(60).await;
    assert!(
        r.rule_events(Event::ThresholdBreached, "data_source_disconnected")
            .is_empty(),
        "60 s is not more than a minute"
    );
    r.pass(2).await;
    let breached = r.rule_events(Event::ThresholdBreached, "data_source_disconnected");
    assert_eq!(breached.len(), 1, "{breached:?}");
    assert_eq!(breached[0].level, Level::Critical);
    assert_eq!(breached[0].get("for_s"), Some(&Value::U64(60)));
    r.heartbeat(AgentId::Data, data_figures(true)).await;
    r.pass(1).await;
    let recovered = r.rule_events(Event::ThresholdRecovered, "data_source_disconnected");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    // A disconnection shorter than the duration never fires.
    r.heartbeat(AgentId::Data, data_figures(false)).await;
    r.pass(30).await;
    r.heartbeat(AgentId::Data, data_figures(true)).await;
    r.pass(60).await;
    assert_eq!(
        r.rule_events(Event::ThresholdBreached, "data_source_disconnected")
            .len(),
        1
    );
}

/// A live feed that stops sending while the exchange is open is stale after a minute
/// (CRITICAL); the same silence after the close is not measured.
#[actix_rt::test]
async fn a_live_feed_silent_for_a_minute_while_the_market_is_open_is_critical() {
    // Tuesday 16 January 2024, 15:58 New York: two minutes before the close.
    let r = rig_full(
        "2024-01-16T20:58:00Z",
        "2024-01-16T20:58:00Z",
        MonitorConfig::default(),
        1,
    );
    r.grow_log(1);
    let live = |last: &str| source_figures(true, Some(last));
    r.heartbeat(AgentId::Data, live("2024-01-16T20:58:00Z"))
        .await;
    r.pass(60).await;
    assert!(
        r.rule_events(Event::ThresholdBreached, "data_stale")
            .is_empty(),
        "60 s is not more than a minute"
    );
    r.pass(2).await;
    let breached = r.rule_events(Event::ThresholdBreached, "data_stale");
    assert_eq!(breached.len(), 1, "{breached:?}");
    assert_eq!(breached[0].level, Level::Critical);
    // A bar arrives: fresh again.
    r.heartbeat(AgentId::Data, live("2024-01-16T20:59:02Z"))
        .await;
    r.pass(1).await;
    assert_eq!(
        r.rule_events(Event::ThresholdRecovered, "data_stale").len(),
        1
    );
    // After the 16:00 close the silence is not measured: no second breach.
    r.pass(180).await;
    assert_eq!(
        r.rule_events(Event::ThresholdBreached, "data_stale").len(),
        1
    );
    // A replay (not live) is never measured.
    r.heartbeat(AgentId::Data, data_figures(true)).await;
    assert!(
        !r.board
            .status()
            .breaches
            .iter()
            .any(|b| b.rule == "data_stale")
    );
}

fn dead_man(trading_s: u64, closed_s: u64) -> MonitorConfig {
    MonitorConfig {
        dead_man: DeadManConfig {
            silence_trading_s: trading_s,
            silence_closed_s: closed_s,
            ..DeadManConfig::default()
        },
        ..MonitorConfig::default()
    }
}

#[actix_rt::test]
async fn a_log_that_stops_growing_in_trading_hours_is_critical_after_the_window() {
    // Tuesday 2024-01-16 10:00 ET: the market is open.
    let r = rig("2024-01-16T15:00:00Z", dead_man(300, 14_400));
    r.grow_log(10);
    r.pass(1).await;
    r.pass(299).await;
    assert!(logged(&r.log, Event::LogSilent).is_empty());
    r.pass(2).await;
    let silent = logged(&r.log, Event::LogSilent);
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0].level, Level::Critical);
    assert_eq!(silent[0].get("market_open"), Some(&Value::Bool(true)));
    assert_eq!(silent[0].get("window_s"), Some(&Value::U64(300)));
    // Reported once, not every probe.
    r.pass(30).await;
    assert_eq!(logged(&r.log, Event::LogSilent).len(), 1);
    // The writer comes back.
    r.grow_log(10);
    r.pass(1).await;
    assert_eq!(logged(&r.log, Event::LogResumed).len(), 1);
}

#[actix_rt::test]
async fn over_a_closed_weekend_the_longer_window_applies_and_silence_is_still_caught() {
    // Saturday 2024-01-20 12:00 ET: closed, so the 4-hour window applies.
    // Probes a minute apart: a weekend passes in a few thousand steps.
    let r = rig_stepping("2024-01-20T17:00:00Z", dead_man(300, 14_400), 60);
    // The first probe (at start) has looked at the empty folder; the log grows after it.
    r.armed().await;
    r.grow_log(10);
    r.pass(60).await;
    r.pass(3_600).await;
    assert!(
        logged(&r.log, Event::LogSilent).is_empty(),
        "an hour of weekend quiet is normal"
    );
    r.pass(14_400 - 3_600).await;
    assert!(
        logged(&r.log, Event::LogSilent).is_empty(),
        "exactly the window is not yet beyond it"
    );
    r.pass(60).await;
    let silent = logged(&r.log, Event::LogSilent);
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0].get("market_open"), Some(&Value::Bool(false)));
    assert_eq!(silent[0].get("window_s"), Some(&Value::U64(14_400)));
}

/// With a live feed the market clock stops at the last bar: Friday 15:59 all weekend. The
/// hours for the person on call follow the wall clock then: Saturday is closed, the 4-hour
/// window applies, and ten quiet minutes page nobody.
#[actix_rt::test]
async fn with_a_live_feed_the_weekend_is_judged_by_the_wall_clock_not_the_last_bar() {
    let r = rig_full(
        "2024-01-19T20:59:00Z",
        "2024-01-20T17:00:00Z",
        dead_man(300, 14_400),
        60,
    );
    r.armed().await;
    r.grow_log(10);
    r.heartbeat(
        AgentId::Data,
        source_figures(true, Some("2024-01-19T20:59:00Z")),
    )
    .await;
    r.pass(60).await;
    r.pass(600).await;
    assert!(
        logged(&r.log, Event::LogSilent).is_empty(),
        "a quiet Saturday is not a silent log"
    );
    assert!(!r.board.status().market_open, "closed on Saturday");
}

/// A healthchecks-style receiver on 127.0.0.1: answers each request with `status` and
/// reports its request line.
fn receiver(status: u16, max: usize) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for i in 0..max {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut line = String::new();
            reader.read_line(&mut line).expect("request line");
            // Headers, up to the blank line; then the body by Content-Length.
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).expect("header");
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().expect("content length");
                }
            }
            let mut body = vec![0u8; len];
            std::io::Read::read_exact(&mut reader, &mut body).expect("body");
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK");
            stream.write_all(reply.as_bytes()).expect("reply");
            if i + 1 == max {
                // Closed before the last report: a later request finds nothing listening.
                drop(listener);
                let last = format!("{} {}", line.trim(), String::from_utf8_lossy(&body));
                if tx.send(last).is_err() {
                    return;
                }
                return;
            }
            if tx
                .send(format!(
                    "{} {}",
                    line.trim(),
                    String::from_utf8_lossy(&body)
                ))
                .is_err()
            {
                return;
            }
        }
    });
    (format!("http://{addr}/ping/abc-uuid"), rx)
}

#[actix_rt::test]
async fn a_healthy_vigil_pings_the_outside_heartbeat_url_on_its_interval() {
    let (url, mut requests) = receiver(200, 2);
    let r = rig(
        "2024-01-16T15:00:00Z",
        MonitorConfig {
            dead_man: DeadManConfig {
                heartbeat_url: Some(Secret::new(url)),
                heartbeat_method: "POST".into(),
                heartbeat_interval_s: 60,
                ..DeadManConfig::default()
            },
            ..MonitorConfig::default()
        },
    );
    r.grow_log(1);
    r.pass(60).await;
    let got = tokio::time::timeout(StdDuration::from_secs(10), requests.recv())
        .await
        .expect("the heartbeat URL was pinged within 10 s")
        .expect("receiver running");
    assert_eq!(got, "POST /ping/abc-uuid HTTP/1.1 vigil alive");
}

#[test]
fn the_ping_reports_a_refusal_or_an_unreachable_url_without_revealing_it() {
    let (url, mut requests) = receiver(503, 1);
    let err = crate::probe::ping_url(&url, "GET", StdDuration::from_secs(5))
        .expect_err("503 is a failure");
    assert_eq!(err, "the heartbeat URL answered HTTP 503");
    assert_eq!(
        requests.blocking_recv().as_deref(),
        Some("GET /ping/abc-uuid HTTP/1.1 ")
    );
    // Nothing listens on the port any more: unreachable, and the URL stays secret.
    let err = crate::probe::ping_url(&url, "GET", StdDuration::from_secs(5))
        .expect_err("nothing listens");
    assert!(err.starts_with("request failed"), "{err}");
    assert!(!err.contains("abc-uuid"), "{err}");
}

/// Every series the workspace writes under a literal name has a description, so that
/// `/metrics` gives it a `# HELP` line (Prometheus' linter rejects a series without one).
/// Read off the sources: a series only seen when an alert fires or a canary runs is
/// missing from a quiet session's scrape.
#[test]
fn every_series_written_by_name_is_described() {
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read a source folder") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "tests" | "target" | "benches") {
                    sources(&path, out);
                }
            } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
                out.push(path);
            }
        }
    }
    /// The `vigil_…` names right after `macro!(` in `text`; `described` picks the
    /// `describe_…!` forms, otherwise the writing forms.
    fn names(text: &str, described: bool) -> Vec<String> {
        let mut found = Vec::new();
        for kind in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in text.match_indices(kind) {
                let is_describe = text[..at].ends_with("describe_");
                if is_describe != described {
                    continue;
                }
                let rest = text[at + kind.len()..].trim_start();
                if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                    && name.starts_with("vigil_")
                {
                    found.push(name.to_string());
                }
            }
        }
        found
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    sources(&root.join("agents"), &mut files);
    sources(&root.join("crates"), &mut files);
    let (mut written, mut described) = (Vec::new(), Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source");
        written.extend(names(&text, false).into_iter().map(|n| (n, file.clone())));
        described.extend(names(&text, true));
    }
    assert!(written.len() > 40, "the scan found the series: {written:?}");
    let missing: Vec<_> = written
        .iter()
        .filter(|(n, _)| !described.contains(n))
        .map(|(n, f)| format!("{n} ({})", f.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "series without a description: {missing:#?}"
    );
}
