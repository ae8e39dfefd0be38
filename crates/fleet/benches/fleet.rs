//! Fleet benchmark: `cargo bench -p vigil-fleet --bench fleet` (needs `/usr/sbin/nats-server`).
//!
//! A node's log of N lines (`EVENTS`, default 200 000) shaped like fills is written by the real
//! writer; a NATS server with JetStream of the bench's own runs on a free loopback port. The
//! node's [`Publisher`] sends the log to the fleet stream while the central monitor
//! ([`monitor::run`]) reads it with its durable consumer, checking every line's hash chain,
//! saving its view and acknowledging each batch. Reports:
//! - events/s through the fleet stream (publisher start → the stream holds N lines);
//! - events/s through the monitor (→ the consumer's acknowledgement floor reaches N);
//! - the monitor's lag at that rate: lines published but not yet acknowledged, sampled every
//!   50 ms (median, max), as seconds at the publish rate, and the monitor's own lag on its
//!   last line (its read time less the stream's store time);
//! - that the monitor found no gap or break (must be 0).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Arbiter;
use rust_decimal::Decimal;
use vigil_config::FleetConfig;
use vigil_core::{Level, SystemClock, Timestamp, TraceId};
use vigil_fleet::Publisher;
use vigil_fleet::monitor::{self, MonitorOptions};
use vigil_fleet::watch::Watch;
use vigil_log::{Event, LogBuffer, LogEvent, LogSink, LogWriter, WriterOptions};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

fn main() {
    if !std::path::Path::new(NATS_SERVER).exists() {
        eprintln!("SKIPPED: no {NATS_SERVER} (apt-get install nats-server)");
        return;
    }
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    write_log(&logs, n);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut nats = std::process::Command::new(NATS_SERVER)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path().join("jetstream"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("nats://127.0.0.1:{port}");
    let cfg = FleetConfig {
        url: url.clone(),
        node: "bench".into(),
        stream: "VIGIL_FLEET".into(),
        lease_s: 15,
        command_token_file: None,
        command_tokens_dir: None,
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // A monitor of its own consumer and view file.
    let monitor_options = |consumer: &str| MonitorOptions {
        url: url.clone(),
        stream: "VIGIL_FLEET".into(),
        consumer: consumer.into(),
        state_file: dir.path().join(format!("{consumer}.json")),
        poll: Duration::from_secs(1),
        key: None,
    };
    let opts = monitor_options("watch-bench");
    let findings = Arc::new(parking_lot::Mutex::new(Vec::<LogEvent>::new()));
    let seen = Arc::clone(&findings);
    let watcher = rt.spawn(async move {
        let mut emit = move |ev: LogEvent| seen.lock().push(ev);
        monitor::run(
            &opts,
            Watch::default(),
            Arc::new(SystemClock),
            &mut emit,
            stop,
        )
        .await
    });

    let (sink, _reports) = LogSink::memory();
    let start = Instant::now();
    let publisher = Publisher::start(cfg, logs, sink, Arc::new(SystemClock)).expect("publisher");
    let (published_at, acked_at, behind) = rt.block_on(follow(&url, n, start));
    let lag_lines = {
        let mut b = behind.clone();
        b.sort_unstable();
        (
            b.get(b.len() / 2).copied().unwrap_or(0),
            b.last().copied().unwrap_or(0),
        )
    };
    if let Err(e) = stop_tx.send(true) {
        eprintln!("the monitor had stopped: {e}");
    }
    let (watch, read) = rt.block_on(watcher).expect("the monitor");
    publisher.stop(Duration::from_secs(5));

    // Catching up: a second monitor, new, reads the whole stream as fast as it can.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let opts = monitor_options("watch-catchup");
    let catchup_start = Instant::now();
    let catchup = rt.spawn(async move {
        let mut emit = |_: LogEvent| {};
        monitor::run(
            &opts,
            Watch::default(),
            Arc::new(SystemClock),
            &mut emit,
            stop,
        )
        .await
    });
    let caught_up = rt.block_on(acked_by(&url, "watch-catchup", n, catchup_start));
    if let Err(e) = stop_tx.send(true) {
        eprintln!("the catch-up monitor had stopped: {e}");
    }
    let (caught, _) = rt.block_on(catchup).expect("the catch-up monitor");
    assert_eq!(
        caught.nodes["bench"].seq,
        Some(n - 1),
        "caught up with the whole log"
    );
    if let Err(e) = nats.kill() {
        eprintln!("nats-server: {e}");
    }
    if let Err(e) = nats.wait() {
        eprintln!("nats-server not reaped: {e}");
    }
    let view = &watch.nodes["bench"];
    let pub_rate = n as f64 / published_at.as_secs_f64();
    println!(
        "fleet stream: {n} lines in {:.2} s: {pub_rate:.0} events/s",
        published_at.as_secs_f64()
    );
    println!(
        "monitor: {read} lines checked and acknowledged in {:.2} s: {:.0} events/s",
        acked_at.as_secs_f64(),
        read as f64 / acked_at.as_secs_f64()
    );
    println!(
        "monitor lag at that rate: lines behind median {} max {} (≈ {:.3} s / {:.3} s at {pub_rate:.0}/s); \
         finished {:.0} ms after the stream; its last line read {:.3} s after the stream stored it",
        lag_lines.0,
        lag_lines.1,
        lag_lines.0 as f64 / pub_rate,
        lag_lines.1 as f64 / pub_rate,
        (acked_at.saturating_sub(published_at)).as_secs_f64() * 1000.0,
        view.lag_s.unwrap_or(f64::NAN),
    );
    println!(
        "monitor catching up on the whole stream: {n} lines in {:.2} s: {:.0} events/s",
        caught_up.as_secs_f64(),
        n as f64 / caught_up.as_secs_f64()
    );
    let bad: Vec<_> = findings
        .lock()
        .iter()
        .filter(|e| e.event != Event::FleetNodeJoined)
        .map(|e| e.event.name())
        .collect();
    println!(
        "findings other than the node joining: {} {bad:?}; missing {} broken {}",
        bad.len(),
        view.missing,
        view.broken
    );
    assert_eq!(view.seq, Some(n - 1), "the monitor read the whole log");
}

/// Samples the stream and the monitor's consumer every 50 ms until the consumer has
/// acknowledged all `n` lines: when the stream held them all, when the monitor had, and the
/// lines published but not acknowledged at each sample.
async fn follow(url: &str, n: u64, start: Instant) -> (Duration, Duration, Vec<u64>) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut published_at = None;
    let mut behind = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(mut stream) = js.get_stream("VIGIL_FLEET").await else {
            continue;
        };
        let held = stream.info().await.expect("stream info").state.messages;
        if held >= n && published_at.is_none() {
            published_at = Some(start.elapsed());
        }
        let Ok(mut consumer) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("watch-bench")
            .await
        else {
            continue;
        };
        let acked = consumer
            .info()
            .await
            .expect("consumer info")
            .ack_floor
            .stream_sequence;
        behind.push(held.saturating_sub(acked));
        if acked >= n {
            return (
                published_at.unwrap_or_else(|| start.elapsed()),
                start.elapsed(),
                behind,
            );
        }
    }
}

/// Writes `n` fill-shaped lines to a log in `dir` with the real writer.
fn write_log(dir: &std::path::Path, n: u64) {
    let system = actix::System::new();
    system.block_on(async move {
        let handle = LogWriter::open(dir, Arc::new(SystemClock), WriterOptions::default())
            .expect("open the log");
        let handle = handle.start_on(&Arbiter::new().handle());
        let mut out = LogBuffer::new(handle.sink(), "execution_agent", Level::Info);
        let ts: Timestamp = "2024-01-15T14:30:00Z".parse().expect("ts");
        let trace = TraceId::for_signal("GOOG", ts);
        for i in 0..n {
            out.emit(
                LogEvent::new(ts, "execution_agent", Event::FillReceived)
                    .trace(&trace)
                    .with("symbol", "GOOG")
                    .with("side", "buy")
                    .with("quantity", Decimal::from(10 + i % 7))
                    .with("price", Decimal::new(15_025 + (i % 100) as i64, 2))
                    .with("order_id", i),
            );
        }
        out.flush();
        handle.close().await.expect("close the log");
    });
}

/// Waits until `consumer` has acknowledged `n` lines; how long since `start`.
async fn acked_by(url: &str, consumer: &str, n: u64, start: Instant) -> Duration {
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("VIGIL_FLEET").await.expect("the stream");
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(mut c) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer)
            .await
        else {
            continue;
        };
        if c.info()
            .await
            .expect("consumer info")
            .ack_floor
            .stream_sequence
            >= n
        {
            return start.elapsed();
        }
    }
}
