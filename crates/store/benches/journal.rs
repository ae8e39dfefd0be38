//! Journal write throughput with fsync: `cargo bench -p vigil-store --bench journal`.
//!
//! Every commit is a SQLite transaction on a WAL file opened with `synchronous = FULL`: one
//! fsync per commit. Measured, each in a fresh store file:
//! - the disk itself: 4 KiB written and `fdatasync`'d, over and over, appended to a file
//!   or written over one (the floor under every figure below);
//! - (a) `Journal::append_durable`, one entry at a time, each awaited before the next (the
//!   write-ahead worst case: one commit, one fsync, per entry), for an intent and for a fill;
//! - (b) the group-commit writer fed by K concurrent appenders, each awaiting its own
//!   entry's commit before appending the next; and a burst of `append`s with one final
//!   durable wait;
//! - (c) `Store::journal` called directly with batches of 1, 10, 100 and 1000 fills.
//!
//! Commits are counted through the writer's wall clock, which it reads once per
//! transaction. Each figure is the median of `RUNS` runs (default 5), with the range.
//! `SCALE` (default 1) multiplies every entry count; `ONLY` runs only the measurements whose
//! label holds it (`ONLY='(c)'`).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use vigil_core::{OrderType, Side};
use vigil_store::{Journal, JournalEntry, JournalFill, JournalOrder, StateStore, Store};

const BOOK: &str = "broker:bench";
const SYMBOLS: [&str; 4] = ["GOOG", "AAPL", "MSFT", "AMZN"];

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0() -> DateTime<Utc> {
    "2024-01-02T14:30:00Z".parse().expect("time")
}

/// The `i`th fill: a distinct fill id, plausible figures (they need not add up here).
fn fill(i: u64) -> JournalEntry {
    let price = Decimal::new(10_000 + (i % 500) as i64, 2);
    let qty = Decimal::from(1 + i % 50);
    JournalEntry::Fill(JournalFill {
        fill_id: format!("F-{i:08}").into(),
        client_order_id: format!("o-{i:08}").into(),
        symbol: SYMBOLS[(i % 4) as usize].into(),
        side: if i.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity: qty,
        price,
        commission: qty * price / Decimal::from(10_000),
        filled_at: t0() + TimeDelta::seconds(i as i64),
        position_after: (Decimal::from(i % 1000), price),
        cash_after: Decimal::from(1_000_000) - qty * price,
    })
}

/// The `i`th order intent.
fn intent(i: u64) -> JournalEntry {
    JournalEntry::Intent(JournalOrder {
        client_order_id: format!("o-{i:08}").into(),
        trace_id: format!("t-{i:08}").into(),
        symbol: SYMBOLS[(i % 4) as usize].into(),
        side: Side::Buy,
        quantity: Decimal::from(10),
        order_type: OrderType::Market,
        limit_price: None,
        reference_price: Decimal::new(10_125, 2),
        decided_at: t0() + TimeDelta::seconds(i as i64),
    })
}

/// A fresh store in its own folder (removed when dropped), opened with its book.
async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("vigil.db"))
        .await
        .expect("open store");
    store
        .journal(
            BOOK,
            &[JournalEntry::OpenBook {
                cash: Decimal::from(1_000_000),
                fill_cursor: None,
            }],
            Utc::now(),
        )
        .await
        .expect("open book");
    (dir, store)
}

/// Closes `store` and waits until its WAL is checkpointed and gone. `Store::close` (sqlx's
/// `Pool::close`) can miss a connection still on its way back to the pool (given back by a
/// task of its own after the last query): it then stays open, and the WAL with it, after
/// the close returns. A copy of the file made then would lack what the WAL holds, and a
/// late checkpoint would run during the next measurement. A moment's wait before the
/// close lets such a connection come back first.
async fn closed(store: Store) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.close().await;
    let wal = std::path::PathBuf::from(format!("{}-wal", store.path().display()));
    drop(store);
    let end = Instant::now() + Duration::from_secs(30);
    while wal.exists() {
        assert!(
            Instant::now() < end,
            "{} still there after 30 s",
            wal.display()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A writer whose wall clock counts the commits.
fn writer(store: &Store) -> (Journal, tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let commits = Arc::new(AtomicU64::new(0));
    let counted = commits.clone();
    let (failures, _) = mpsc::unbounded_channel();
    let (journal, task) = Journal::start(
        Arc::new(store.clone()),
        BOOK.into(),
        move || {
            counted.fetch_add(1, Ordering::Relaxed);
            Utc::now()
        },
        failures,
    );
    (journal, task, commits)
}

/// One run's outcome.
#[derive(Clone, Copy)]
struct Run {
    entries: u64,
    commits: u64,
    elapsed: Duration,
}

impl Run {
    fn entries_per_s(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64()
    }

    fn commits_per_s(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }
}

/// (a) One entry at a time, each awaited.
async fn durable_one_by_one(n: u64, entry: fn(u64) -> JournalEntry) -> Run {
    let (_dir, store) = fresh().await;
    let (journal, task, commits) = writer(&store);
    let start = Instant::now();
    for i in 0..n {
        journal.append_durable(entry(i)).await.expect("committed");
    }
    let elapsed = start.elapsed();
    drop(journal);
    task.await.expect("writer ends");
    closed(store).await;
    Run {
        entries: n,
        commits: commits.load(Ordering::Relaxed),
        elapsed,
    }
}

/// (b) `k` appenders, each appending `per` fills and awaiting each one's commit.
async fn concurrent(k: u64, per: u64) -> Run {
    let (_dir, store) = fresh().await;
    let (journal, task, commits) = writer(&store);
    let start = Instant::now();
    let mut appenders = Vec::new();
    for a in 0..k {
        let journal = journal.clone();
        appenders.push(tokio::spawn(async move {
            for j in 0..per {
                journal
                    .append_durable(fill(a * per + j))
                    .await
                    .expect("committed");
            }
        }));
    }
    for a in appenders {
        a.await.expect("appender");
    }
    let elapsed = start.elapsed();
    drop(journal);
    task.await.expect("writer ends");
    closed(store).await;
    Run {
        entries: k * per,
        commits: commits.load(Ordering::Relaxed),
        elapsed,
    }
}

/// (b) `n` fills appended without waiting, then one durable wait for the last.
async fn burst(n: u64) -> Run {
    let (_dir, store) = fresh().await;
    let (journal, task, commits) = writer(&store);
    let start = Instant::now();
    for i in 0..n - 1 {
        journal.append(fill(i)).expect("append");
    }
    journal
        .append_durable(fill(n - 1))
        .await
        .expect("committed");
    let elapsed = start.elapsed();
    drop(journal);
    task.await.expect("writer ends");
    closed(store).await;
    Run {
        entries: n,
        commits: commits.load(Ordering::Relaxed),
        elapsed,
    }
}

/// (c) `Store::journal` with `batch` fills per call, `n` fills in all. The entries are
/// built before the clock starts.
async fn batches(batch: u64, n: u64) -> Run {
    let (_dir, store) = fresh().await;
    let groups: Vec<Vec<JournalEntry>> = (0..n / batch)
        .map(|b| (b * batch..(b + 1) * batch).map(fill).collect())
        .collect();
    let start = Instant::now();
    for g in &groups {
        store.journal(BOOK, g, Utc::now()).await.expect("journal");
    }
    let elapsed = start.elapsed();
    closed(store).await;
    Run {
        entries: n,
        commits: groups.len() as u64,
        elapsed,
    }
}

/// The disk alone: `n` times 4 KiB written and `fdatasync`'d, appended to a growing file
/// (the size changes too: a metadata journal commit each time) or written over a file
/// already allocated (as SQLite reuses its WAL after a checkpoint).
fn disk(n: u64, append: bool) -> Run {
    use std::os::unix::fs::FileExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("sync.bin")).expect("create");
    let block = [0x5au8; 4096];
    const SLOTS: u64 = 256;
    if !append {
        for _ in 0..SLOTS {
            file.write_all(&block).expect("write");
        }
        file.sync_all().expect("fsync");
    }
    let start = Instant::now();
    for i in 0..n {
        if append {
            file.write_all(&block).expect("write");
        } else {
            file.write_all_at(&block, (i % SLOTS) * 4096)
                .expect("write");
        }
        file.sync_data().expect("fdatasync");
    }
    Run {
        entries: n,
        commits: n,
        elapsed: start.elapsed(),
    }
}

fn median(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn report(what: &str, runs: &[Run]) {
    let (e, e_min, e_max) = median(runs.iter().map(Run::entries_per_s).collect());
    let (c, c_min, c_max) = median(runs.iter().map(Run::commits_per_s).collect());
    let per_commit = runs[0].entries as f64 / runs[0].commits as f64;
    let ms_per_commit = median(
        runs.iter()
            .map(|r| r.elapsed.as_secs_f64() * 1e3 / r.commits as f64)
            .collect(),
    )
    .0;
    println!(
        "{what:<44} {e:>10.0} entries/s ({e_min:.0} – {e_max:.0})   {c:>7.0} commits/s \
         ({c_min:.0} – {c_max:.0})   {per_commit:>7.1} entries/commit   \
         {ms_per_commit:.2} ms/commit   [{} entries, {} commits in run 1]",
        runs[0].entries, runs[0].commits
    );
}

/// Runs `f` `runs` times and reports it, unless `ONLY` is set and `what` does not hold it.
async fn measure<F, Fut>(what: &str, runs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Run>,
{
    if std::env::var("ONLY").is_ok_and(|only| !what.contains(&only)) {
        return;
    }
    let mut out = Vec::new();
    for _ in 0..runs {
        out.push(f().await);
    }
    report(what, &out);
}

fn main() {
    let runs = env("RUNS", 5).max(1);
    let scale = env("SCALE", 1).max(1);
    // The same runtime as the agents': one thread (sqlx runs SQLite on a worker of its own).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("journal write throughput, {runs} runs each (median, range)");
    rt.block_on(async {
        let n = 300 * scale;
        measure("disk: 4 KiB appended + fdatasync", runs, || async {
            disk(n, true)
        })
        .await;
        measure("disk: 4 KiB overwritten + fdatasync", runs, || async {
            disk(n, false)
        })
        .await;
        measure("(a) append_durable, one intent at a time", runs, || {
            durable_one_by_one(n, intent)
        })
        .await;
        measure("(a) append_durable, one fill at a time", runs, || {
            durable_one_by_one(n, fill)
        })
        .await;
        for k in [4, 16, 64] {
            measure(
                &format!("(b) {k} concurrent appenders, each awaited"),
                runs,
                || concurrent(k, 200 * scale),
            )
            .await;
        }
        let n = 20_000 * scale;
        measure(
            &format!("(b) burst: {n} appends + 1 durable wait"),
            runs,
            || burst(n),
        )
        .await;
        for (batch, n) in [(1, 300), (10, 3_000), (100, 30_000), (1000, 100_000)] {
            measure(
                &format!("(c) Store::journal, {batch} fills per call"),
                runs,
                || batches(batch, n * scale),
            )
            .await;
        }
    });
}
