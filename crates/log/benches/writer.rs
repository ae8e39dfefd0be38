//! Log writer benchmark: `cargo bench -p vigil-log --bench writer`.
//!
//! A producer thread builds and emits N events shaped like a fill line (five data fields, a
//! trace id, a decision context) through a `LogBuffer`, as agents do; the writer, on its own
//! arbiter, numbers, encodes, hash-chains and writes them to disk. Reports:
//! - events/s sustained to disk (first emit → final fsync'd flush);
//! - producer cost per event (building + `emit`, timed per event): median, p99, p99.9, max;
//! - lost events (must be 0: `verify` walks the chain and counts the lines).
//!
//! `SECRETS=1` gives the writer three secrets to redact from every line.

use std::sync::Arc;
use std::time::Instant;

use actix::Arbiter;
use rust_decimal::Decimal;
use vigil_core::{Level, Regime, SystemClock, Timestamp, TraceId};
use vigil_log::{Event, LogBuffer, LogContext, LogEvent, LogWriter, WriterOptions, verify_dir};

// As in the `vigil` binary: events are allocated by producers and freed by the writer's
// thread; glibc serialises that on an arena lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let system = actix::System::new();
    let (costs, produced, elapsed, stats, cpu) = system.block_on(async move {
        // SECRETS=1: with secrets to redact, as a session with a broker, a feed and a
        // PostgreSQL password has.
        let secrets = if std::env::var_os("SECRETS").is_some() {
            vec![
                "PKq7pLx2Vb9RtKw4Ns8Hd3Fg6Jm1Yc5Ue0aBc".to_string(),
                "a-feed-secret-0123456789".to_string(),
                "pa55-w0rd-long".to_string(),
            ]
        } else {
            Vec::new()
        };
        let opts = WriterOptions {
            secrets,
            ..WriterOptions::default()
        };
        let handle = LogWriter::open(dir.path(), Arc::new(SystemClock), opts).expect("open");
        let handle = handle.start_on(&Arbiter::new().handle());
        let sink = handle.sink();
        let start = Instant::now();
        let producer = std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                let mut out = LogBuffer::new(sink, "execution_agent", Level::Info);
                let ts: Timestamp = "2024-01-15T14:30:00Z".parse().expect("ts");
                let trace = TraceId::for_signal("GOOG", ts);
                let symbol: Arc<str> = Arc::from("GOOG");
                let signal_id = trace.signal_id();
                let mut costs = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let t0 = Instant::now();
                    out.emit(
                        LogEvent::new(ts, "execution_agent", Event::FillReceived)
                            .trace(&trace)
                            .with("symbol", symbol.clone())
                            .with("side", "BUY")
                            .with("quantity", Decimal::from(100))
                            .with("price", Decimal::new(18050 + (i % 100) as i64, 2))
                            .with("seq_in_burst", i)
                            .context(LogContext {
                                signal_id: Some(signal_id.clone()),
                                signal_strength: Some(0.75),
                                regime: Some(Regime::Trending),
                                model_version: Some("ema_cross@1"),
                                portfolio_value: Some(Decimal::from(1_000_000)),
                            }),
                    );
                    costs.push(t0.elapsed().as_nanos() as u64);
                }
                out.flush();
                let cpu = thread_cpu_self();
                (costs, start.elapsed(), cpu)
            })
            .expect("spawn producer");
        let (costs, produced, producer_cpu) =
            actix_rt::task::spawn_blocking(move || producer.join().expect("producer"))
                .await
                .expect("join");
        let stats = handle.flush().await.expect("flush");
        let elapsed = start.elapsed();
        let mut cpu = thread_cpu();
        cpu.threads.push(("producer".into(), producer_cpu));
        let report = verify_dir(handle.dir()).expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems.first());
        assert_eq!(report.lines, n, "lost events");
        (costs, produced, elapsed, stats, cpu)
    });
    let mut costs = costs;
    costs.sort_unstable();
    let pct = |p: f64| costs[((costs.len() as f64 * p) as usize).min(costs.len() - 1)];
    println!(
        "log writer: {n} events, {:.3} s, {:.0} events/s to disk (hash chain on, fsync at end), {} bytes, lost 0",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        stats.bytes
    );
    println!(
        "producer cost per event (build + emit): median {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        costs[costs.len() - 1]
    );
    println!(
        "producer done after {:.3} s; peak memory (VmHWM) {}",
        produced.as_secs_f64(),
        peak_memory()
    );
    let per_event = |secs: f64| secs * 1e9 / n as f64;
    let mut threads: Vec<String> = cpu
        .threads
        .iter()
        .filter(|(_, secs)| per_event(*secs) >= 5.0)
        .map(|(name, secs)| format!("{name} {:.0} ns", per_event(*secs)))
        .collect();
    threads.sort();
    println!(
        "CPU per event: process {:.0} ns; {}",
        per_event(cpu.process),
        threads.join(", ")
    );
}

/// CPU time (user + system, seconds) of the process and of each live thread, by name.
struct Cpu {
    process: f64,
    threads: Vec<(String, f64)>,
}

/// The calling thread's CPU time in seconds.
fn thread_cpu_self() -> f64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|t| parse_stat(&t))
        .map_or(0.0, |(_, s)| s)
}

/// The name and CPU time (user + system, seconds) in a /proc stat line: utime and stime
/// are fields 14 and 15, in clock ticks (100 per second on Linux); the name, in
/// parentheses, may hold spaces.
fn parse_stat(text: &str) -> Option<(String, f64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let fields: Vec<&str> = text[close + 2..].split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((text[open + 1..close].to_string(), ticks as f64 / 100.0))
}

fn thread_cpu() -> Cpu {
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t))
        .map_or(0.0, |(_, s)| s);
    let mut threads = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            if let Some(t) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|t| parse_stat(&t))
            {
                threads.push(t);
            }
        }
    }
    Cpu { process, threads }
}

/// The process's peak resident memory, as the kernel reports it.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
