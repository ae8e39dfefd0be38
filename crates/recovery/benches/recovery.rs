//! Crash → trading-ready with a long journal: `cargo bench -p vigil-recovery --bench
//! recovery`.
//!
//! Set-up (not timed):
//! - a book of `FILLS` fills (default 10,000,000) over four symbols, one order each. The
//!   history, all but the last `TAIL` fills (default 9,999: one fewer than the journal's
//!   writer lets pass between two checkpoints, the most a restart reads back), is written
//!   in bulk in SQL (an order and a fill a row, flat at the end of it), as a month of
//!   trading would have left it, and checkpointed with `Store::journal_checkpoint` (timed
//!   apart and reported). Writing it through `Store::journal` would take over half an hour.
//! - the last `TAIL` fills, booked through [`Portfolio`] as the Execution agent books them,
//!   and journaled as the agent journals them (intent, accepted, fill with the position and
//!   cash after it, filled), in transactions of 1000 entries; plus six orders still open:
//!   four accepted limit orders, one intent the broker received but never answered
//!   (adopted on recovery) and one intent it never received (marked failed);
//! - the paper broker (`vigil_broker`) holding the same account: the tail's orders and
//!   fills under the same ids, the same positions and cash (a broker keeps the history
//!   too, but recovery never asks for fills before the last one journaled). They are
//!   written into its state file with its own store ([`vigil_broker::store::Store::commit`],
//!   the one transaction per request the running broker makes). The broker is then
//!   started on that file, serving HTTP on 127.0.0.1.
//!
//! Timed, `RUNS` times (default 5), each on a fresh copy of the closed journal file (the
//! reconciliation journals what it finds, so the file is put back between runs):
//! `Store::open` (as a restarted process opens it), the store's history check
//! (`journal_history`, the counts a start compares with the high-water marks),
//! `AlpacaVenue::connect` (account and newest fill), and `reconcile` with `dry_run: false`.
//! Each run must pass with no mismatch. Then the same with the journal file dropped from
//! the page cache first (the machine rebooted, not just the process); then reconcile's two
//! parts apart: `journal_recovery` on a freshly opened copy, and the venue calls it makes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use vigil_broker::engine::{Changes, FillRow, OrderRow, PositionRow, Status};
use vigil_broker::{BrokerOptions, BrokerServer, EngineConfig};
use vigil_core::{
    ClientOrderId, Fill, OrderType, Portfolio, Side, Symbol, SymbolId, SymbolTable, SystemClock,
};
use vigil_providers::{AlpacaVenue, AlpacaVenueConfig, ExecutionVenue, fill_commission};
use vigil_recovery::{OpenOrderPolicy, ReconcileOptions, reconcile};
use vigil_store::{
    CHECKPOINT_EVERY_FILLS, JournalEntry, JournalFill, JournalOrder, JournalStatus,
    StateStore as _, Store,
};

const SYMBOLS: [&str; 4] = ["GOOG", "AAPL", "MSFT", "AMZN"];
const BOOK: &str = "broker:bench";
const OPENING_CASH: i64 = 1_000_000;
/// Journal entries per `Store::journal` call while setting up.
const BATCH: usize = 1000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn t0() -> DateTime<Utc> {
    "2024-01-02T14:30:00Z".parse().expect("time")
}

/// Daily bars of every symbol from 2024-01-01 to 2024-01-31, for the broker's market.
fn write_bars(dir: &Path) -> Vec<(String, PathBuf)> {
    SYMBOLS
        .iter()
        .map(|s| {
            let path = dir.join(format!("{s}_1d.csv"));
            let mut text = String::from("timestamp,open,high,low,close,volume\n");
            for d in 1..=31 {
                text.push_str(&format!("2024-01-{d:02},100,102,98,101,1000000\n"));
            }
            std::fs::write(&path, text).expect("write bars");
            (s.to_string(), path)
        })
        .collect()
}

/// What the set-up built: the journal's file and the broker's.
struct Books {
    journal: PathBuf,
    broker_state: PathBuf,
    book: String,
    fills: u64,
    /// Of those, the fills after the last checkpoint.
    tail: u64,
    journal_mb: f64,
    /// Writing the history in SQL, and checkpointing it.
    history_write: Duration,
    checkpoint: Duration,
}

/// Writes `n` fills of history (orders and fills, flat at the end: each symbol's fills
/// alternate a buy of 10 at 100 and a sale of 10 at 100.02, 0.01 commission each) into the
/// journal at `path`, after the book's opening, in one transaction of plain SQL; returns
/// what they moved the cash by. `n` is rounded down to a multiple of 8.
async fn write_history(path: &Path, n: u64) -> (u64, Decimal) {
    let n = n / 8 * 8;
    let pool = vigil_store::open_sqlite(path)
        .await
        .expect("the journal's file");
    let mut tx = pool.begin().await.expect("a transaction");
    let symbol = format!(
        "CASE i % 4 WHEN 0 THEN '{}' WHEN 1 THEN '{}' WHEN 2 THEN '{}' ELSE '{}' END",
        SYMBOLS[0], SYMBOLS[1], SYMBOLS[2], SYMBOLS[3]
    );
    let side = "CASE (i / 4) % 2 WHEN 0 THEN 'BUY' ELSE 'SELL' END";
    let at = "strftime('%Y-%m-%dT%H:%M:%fZ', '2023-06-01 00:00:00', '+' || i || ' seconds')";
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})");
    for sql in [
        format!(
            "INSERT INTO journal_orders (book, client_order_id, trace_id, symbol, side, \
             quantity, order_type, limit_price, reference_price, decided_at, status, \
             venue_order_id, filled_quantity, reason, journaled_at, updated_at) {numbers} \
             SELECT '{BOOK}', printf('h-%09d', i), printf('t-h-%09d', i), {symbol}, {side}, \
             '10', 'market', NULL, '100', {at}, 'filled', printf('v-%09d', i), '10', NULL, \
             {at}, {at} FROM n"
        ),
        format!(
            "INSERT INTO journal_fills (book, fill_id, client_order_id, symbol, side, \
             quantity, price, commission, filled_at, journaled_at) {numbers} \
             SELECT '{BOOK}', printf('hf-%09d', i), printf('h-%09d', i), {symbol}, {side}, \
             '10', CASE (i / 4) % 2 WHEN 0 THEN '100' ELSE '100.02' END, '0.01', {at}, {at} \
             FROM n"
        ),
        format!(
            "UPDATE store_high_water SET orders = orders + {n}, fills = fills + {n} \
             WHERE book = '{BOOK}'"
        ),
    ] {
        sqlx::query(&sql).execute(&mut *tx).await.expect("history");
    }
    // A buy and a sale of 10 a pair: +0.20 less 0.02 of commissions.
    let flow = Decimal::new(18, 2) * Decimal::from(n / 2);
    let cash: String = sqlx::query_scalar("SELECT cash FROM journal_cash WHERE book = $1")
        .bind(BOOK)
        .fetch_one(&mut *tx)
        .await
        .expect("the book's cash");
    let cash: Decimal = cash.parse().expect("cash");
    sqlx::query("UPDATE journal_cash SET cash = $2 WHERE book = $1")
        .bind(BOOK)
        .bind((cash + flow).to_string())
        .execute(&mut *tx)
        .await
        .expect("cash after the history");
    tx.commit().await.expect("history committed");
    pool.close().await;
    (n, flow)
}

/// One order of the set-up, at the broker and in the journal.
struct Order {
    client: String,
    venue_id: String,
    symbol: usize,
    side: Side,
    qty: Decimal,
    limit: Option<Decimal>,
    reference: Decimal,
    at: DateTime<Utc>,
}

impl Order {
    fn intent(&self) -> JournalEntry {
        JournalEntry::Intent(JournalOrder {
            client_order_id: self.client.as_str().into(),
            trace_id: format!("t-{}", self.client).into(),
            symbol: SYMBOLS[self.symbol].into(),
            side: self.side,
            quantity: self.qty,
            order_type: if self.limit.is_some() {
                OrderType::Limit
            } else {
                OrderType::Market
            },
            limit_price: self.limit,
            reference_price: self.reference,
            decided_at: self.at,
        })
    }

    fn status(&self, status: JournalStatus, filled: Option<Decimal>) -> JournalEntry {
        JournalEntry::Status {
            client_order_id: self.client.as_str().into(),
            status,
            venue_order_id: (status == JournalStatus::Accepted)
                .then(|| self.venue_id.as_str().into()),
            filled_quantity: filled,
            reason: None,
        }
    }

    fn row(&self, seq: i64, filled: Option<(Decimal, DateTime<Utc>)>) -> OrderRow {
        OrderRow {
            seq,
            id: self.venue_id.clone(),
            client_order_id: self.client.clone(),
            symbol: SYMBOLS[self.symbol].to_string(),
            side: self.side,
            order_type: if self.limit.is_some() {
                OrderType::Limit
            } else {
                OrderType::Market
            },
            time_in_force: "day".into(),
            qty: self.qty,
            limit_price: self.limit,
            filled_qty: filled.map_or(Decimal::ZERO, |_| self.qty),
            filled_notional: filled.map_or(Decimal::ZERO, |(price, _)| self.qty * price),
            status: if filled.is_some() {
                Status::Filled
            } else {
                Status::New
            },
            reject_reason: None,
            after: Some(self.at),
            created_at: self.at,
            updated_at: filled.map_or(self.at, |(_, at)| at),
            filled_at: filled.map(|(_, at)| at),
            canceled_at: None,
        }
    }
}

/// Builds the journal with `n` fills, the last `tail` of them after its last checkpoint,
/// and the broker's state file.
async fn build(dir: &Path, n: u64, tail: u64) -> Books {
    let journal_path = dir.join("journal/vigil.db");
    let broker_state = dir.join("broker/broker.db");
    let book = BOOK.to_string();
    let opening = Decimal::from(OPENING_CASH);
    let broker = vigil_broker::store::Store::open(&broker_state, opening)
        .await
        .expect("broker state");
    let instance = broker.load().await.expect("broker state").instance;
    let symbols = SymbolTable::new(SYMBOLS.iter().map(|s| Symbol::from(*s)));
    let wall = Utc::now();

    // The history: the book opened, the rows written in SQL, checkpointed.
    let store = Store::open(&journal_path).await.expect("journal");
    store
        .journal(
            &book,
            &[JournalEntry::OpenBook {
                cash: opening,
                fill_cursor: None,
            }],
            wall,
        )
        .await
        .expect("open the book");
    closed(store).await;
    let start = Instant::now();
    let (history, flow) = write_history(&journal_path, n.saturating_sub(tail)).await;
    let history_write = start.elapsed();
    let store = Store::open(&journal_path).await.expect("journal");
    let start = Instant::now();
    let checkpoint = store
        .journal_checkpoint(&book, wall)
        .await
        .expect("checkpoint");
    let checkpoint_took = start.elapsed();
    assert_eq!(
        checkpoint.as_ref().map_or(0, |c| c.fills),
        history,
        "the checkpoint covers the history"
    );
    let n = history + tail;

    let mut rng = Rng(42);
    let mut portfolio = Portfolio::new(opening + flow);
    let mut prices = [Decimal::from(100); 4];
    let mut entries = Vec::new();
    let mut changes = Changes::default();
    let mut at = t0();
    for i in history..n {
        let seq = i as i64 + 1;
        let s = rng.below(4) as usize;
        let id = SymbolId(s as u32);
        // A random walk of a cent to a dime a fill, kept above 10.
        let step = Decimal::new(1 + rng.below(10) as i64, 2);
        prices[s] = if rng.below(2) == 0 || prices[s] < Decimal::from(10) {
            prices[s] + step
        } else {
            prices[s] - step
        };
        let held = portfolio.position(id).quantity;
        let side = if held > Decimal::from(1000) {
            Side::Sell
        } else if held < Decimal::from(-1000) || rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = Decimal::from(1 + rng.below(100));
        let price = prices[s];
        let commission = fill_commission(qty, price, Decimal::ONE, Decimal::ZERO);
        at += TimeDelta::seconds(1);
        let order = Order {
            client: format!("o-{seq:06}"),
            venue_id: format!("{instance}-0000-4000-8000-{seq:012x}"),
            symbol: s,
            side,
            qty,
            limit: None,
            reference: price,
            at,
        };
        let fill_id = format!(
            "{}::{instance}-0000-4000-9000-{seq:012x}",
            at.format("%Y%m%d%H%M%S%3f")
        );
        let fill_at = at + TimeDelta::milliseconds(100);
        portfolio.apply_fill(&Fill {
            client_order_id: ClientOrderId::from(order.client.as_str()),
            fill_id: fill_id.clone(),
            symbol: id,
            side,
            quantity: qty,
            price,
            commission,
            leaves_quantity: Decimal::ZERO,
            ts: fill_at,
        });
        let position = portfolio.position(id);
        entries.push(order.intent());
        entries.push(order.status(JournalStatus::Accepted, None));
        entries.push(JournalEntry::Fill(JournalFill {
            fill_id: fill_id.as_str().into(),
            client_order_id: order.client.as_str().into(),
            symbol: symbols.shared(id),
            side,
            quantity: qty,
            price,
            commission,
            filled_at: fill_at,
            position_after: (position.quantity, position.avg_price),
            cash_after: portfolio.cash(),
        }));
        entries.push(order.status(JournalStatus::Filled, Some(qty)));
        changes.orders.push(order.row(seq, Some((price, fill_at))));
        changes.fills.push(FillRow {
            seq,
            id: fill_id,
            order_id: order.venue_id.clone(),
            symbol: SYMBOLS[s].to_string(),
            side,
            qty,
            price,
            commission,
            cum_qty: qty,
            leaves_qty: Decimal::ZERO,
            transaction_time: fill_at,
        });
        if entries.len() >= BATCH {
            entries.push(JournalEntry::Mark { last_bar_at: at });
            store.journal(&book, &entries, wall).await.expect("journal");
            entries.clear();
            commit_broker(&broker, &mut changes, &portfolio).await;
        }
    }
    // The orders still open: four accepted limit orders far below the market, an intent
    // the broker took but whose answer was lost, and an intent that never reached it.
    let mut seq = n as i64;
    for k in 0..6 {
        seq += 1;
        at += TimeDelta::seconds(1);
        let order = Order {
            client: format!("o-{seq:06}"),
            venue_id: format!("{instance}-0000-4000-8000-{seq:012x}"),
            symbol: k % 4,
            side: Side::Buy,
            qty: Decimal::from(10),
            limit: Some(Decimal::ONE),
            reference: prices[k % 4],
            at,
        };
        entries.push(order.intent());
        if k < 4 {
            entries.push(order.status(JournalStatus::Accepted, None));
        }
        if k < 5 {
            changes.orders.push(order.row(seq, None));
        }
    }
    store.journal(&book, &entries, wall).await.expect("journal");
    changes.clock = Some(at);
    commit_broker(&broker, &mut changes, &portfolio).await;
    broker.close().await;

    let journaled = store.journal_book(&book).await.expect("journal book");
    assert_eq!(journaled.fills, n, "fills journaled");
    assert_eq!(journaled.cash, Some(portfolio.cash()), "cash journaled");
    closed(store).await;
    let journal_mb = std::fs::metadata(&journal_path)
        .expect("journal file")
        .len() as f64
        / 1e6;
    Books {
        journal: journal_path,
        broker_state,
        book,
        fills: n,
        tail,
        journal_mb,
        history_write,
        checkpoint: checkpoint_took,
    }
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
    let wal = PathBuf::from(format!("{}-wal", store.path().display()));
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

/// Commits the broker's side of a batch, with the positions and cash after it.
async fn commit_broker(
    broker: &vigil_broker::store::Store,
    changes: &mut Changes,
    portfolio: &Portfolio,
) {
    changes.positions = (0..SYMBOLS.len())
        .map(|s| {
            let p = portfolio.position(SymbolId(s as u32));
            PositionRow {
                symbol: SYMBOLS[s].to_string(),
                qty: p.quantity,
                avg_entry_price: p.avg_price,
            }
        })
        .collect();
    changes.cash = Some(portfolio.cash());
    broker.commit(changes).await.expect("broker commit");
    *changes = Changes::default();
}

/// The broker serving `state` on a thread of its own (its own actix system), until
/// dropped.
struct Broker {
    url: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    fn start(opts: BrokerOptions) -> Self {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = BrokerServer::start(opts).await.expect("broker starts");
                url_tx.send(server.url()).expect("bench alive");
                let stopped = actix_rt::task::spawn_blocking(move || stop_rx.recv());
                drop(stopped.await);
                server.stop().await;
            });
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the broker started within 60 s");
        Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            t.join().expect("broker thread");
        }
    }
}

/// One restart's times.
#[derive(Clone, Copy)]
struct Run {
    open: Duration,
    history: Duration,
    connect: Duration,
    reconcile: Duration,
}

/// A fresh copy of the closed journal at `to`; with `cold`, synced and dropped from the
/// page cache, as after a reboot.
fn copy_journal(from: &Path, to: &Path, cold: bool) {
    let dir = to.parent().expect("folder");
    drop(std::fs::remove_dir_all(dir));
    std::fs::create_dir_all(dir).expect("folder");
    std::fs::copy(from, to).expect("copy the journal");
    if cold {
        let file = std::fs::File::open(to).expect("journal copy");
        file.sync_all().expect("sync the journal copy");
        #[cfg(target_os = "linux")]
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
            .expect("drop the journal copy from the page cache");
    }
}

async fn restart(books: &Books, url: &str, path: &Path, symbols: &SymbolTable) -> Run {
    let start = Instant::now();
    let store = Store::open(path).await.expect("open the journal");
    let open = start.elapsed();
    let start = Instant::now();
    let history = store
        .journal_history()
        .await
        .expect("the journal's history");
    let book = history
        .iter()
        .find(|h| h.book == books.book)
        .expect("the book's history");
    assert_eq!((book.fills, book.high_fills), (books.fills, books.fills));
    assert_eq!(book.orders, book.high_orders);
    let history = start.elapsed();
    let start = Instant::now();
    let venue = AlpacaVenue::connect(
        AlpacaVenueConfig {
            name: "alpaca".into(),
            base_url: url.into(),
            credentials: None,
            poll_interval: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
        },
        symbols.clone(),
        Arc::new(SystemClock),
    )
    .await
    .expect("connect to the broker");
    let connect = start.elapsed();
    let start = Instant::now();
    let rec = reconcile(
        &store,
        &books.book,
        &venue,
        symbols,
        ReconcileOptions {
            open_orders: OpenOrderPolicy::Adopt,
            dry_run: false,
        },
        Utc::now(),
    )
    .await
    .expect("reconcile");
    let reconcile = start.elapsed();
    assert!(rec.passed(), "mismatches: {}", rec.mismatches());
    assert_eq!(rec.fills_journaled, books.fills);
    assert_eq!(rec.fills_recovered, 0);
    assert_eq!(
        rec.open_orders.len(),
        5,
        "four accepted orders and one intent adopted"
    );
    let mut kinds: Vec<&str> = rec.differences.iter().map(|d| d.kind()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["intent_adopted", "intent_failed"]);
    closed(store).await;
    Run {
        open,
        history,
        connect,
        reconcile,
    }
}

/// The venue calls `reconcile` makes here: the fills after the last journaled, each of the
/// six journaled open orders by client order id, the open orders, positions and account.
async fn venue_round_trips(books: &Books, url: &str, symbols: &SymbolTable) -> Duration {
    let venue = AlpacaVenue::connect(
        AlpacaVenueConfig {
            name: "alpaca".into(),
            base_url: url.into(),
            credentials: None,
            poll_interval: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
        },
        symbols.clone(),
        Arc::new(SystemClock),
    )
    .await
    .expect("connect to the broker");
    let newest = venue.newest_fill_id().await.expect("newest fill");
    let start = Instant::now();
    venue.resume_reports_after(newest.as_deref());
    venue.sync_reports().await.expect("fills");
    for seq in books.fills + 1..=books.fills + 6 {
        venue
            .order(&ClientOrderId::from(format!("o-{seq:06}").as_str()))
            .await
            .expect("order");
    }
    venue.open_orders().await.expect("open orders");
    venue.positions().await.expect("positions");
    venue.account().await.expect("account");
    start.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median, min, max, in milliseconds.
fn spread(xs: impl Iterator<Item = Duration>) -> String {
    let mut xs: Vec<f64> = xs.map(ms).collect();
    xs.sort_by(f64::total_cmp);
    format!(
        "{:>7.1} ms ({:.1} – {:.1})",
        xs[xs.len() / 2],
        xs[0],
        xs[xs.len() - 1]
    )
}

fn line(label: &str, xs: impl Iterator<Item = Duration>) {
    println!("  {label:<34} {}", spread(xs));
}

fn report(what: &str, runs: &[Run]) {
    println!("{what}, {} runs: median (min – max)", runs.len());
    line("Store::open", runs.iter().map(|r| r.open));
    line("journal_history", runs.iter().map(|r| r.history));
    line("AlpacaVenue::connect", runs.iter().map(|r| r.connect));
    line("reconcile", runs.iter().map(|r| r.reconcile));
    line(
        "open + history + reconcile",
        runs.iter().map(|r| r.open + r.history + r.reconcile),
    );
    line(
        "open + history + connect + reconcile",
        runs.iter()
            .map(|r| r.open + r.history + r.connect + r.reconcile),
    );
}

fn main() {
    let fills = env("FILLS", 10_000_000).max(1);
    let tail = env("TAIL", CHECKPOINT_EVERY_FILLS - 1).clamp(1, fills);
    let runs = env("RUNS", 5).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    // KEEP=1 leaves the files for a look at them afterwards (their folder is printed).
    let _dir = if env("KEEP", 0) == 1 {
        println!("files kept in {}", dir.keep().display());
        None
    } else {
        Some(dir)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let books = rt.block_on(build(&root, fills, tail));
    println!(
        "set-up: {} fills in {:.1} s: {} of history written in SQL in {:.1} s and checkpointed \
         in {:.1} s, then {} after the checkpoint journaled and written to the broker; \
         journal file {:.1} MB",
        books.fills,
        start.elapsed().as_secs_f64(),
        books.fills - books.tail,
        books.history_write.as_secs_f64(),
        books.checkpoint.as_secs_f64(),
        books.tail,
        books.journal_mb
    );
    let broker = Broker::start(BrokerOptions {
        listen: "127.0.0.1:0".into(),
        state: books.broker_state.clone(),
        data: write_bars(&root),
        engine: EngineConfig {
            initial_cash: Decimal::from(OPENING_CASH),
            ..EngineConfig::default()
        },
        credentials: None,
    });
    let symbols = SymbolTable::new(SYMBOLS.iter().map(|s| Symbol::from(*s)));
    let run_path = root.join("run/vigil.db");
    for (what, cold) in [
        ("page cache warm (the process restarted)", false),
        ("journal file not cached (the machine restarted)", true),
    ] {
        let mut out = Vec::new();
        for _ in 0..runs {
            copy_journal(&books.journal, &run_path, cold);
            out.push(rt.block_on(restart(&books, &broker.url, &run_path, &symbols)));
        }
        report(what, &out);
    }
    // Reconcile's two parts apart: reading the journal back (each time on a fresh copy,
    // freshly opened, page cache warm), and the venue's round trips it makes.
    let mut read = Vec::new();
    let mut venue_calls = Vec::new();
    for _ in 0..runs {
        copy_journal(&books.journal, &run_path, false);
        read.push(rt.block_on(async {
            let store = Store::open(&run_path).await.expect("open the journal");
            let start = Instant::now();
            let journal = store
                .journal_recovery(&books.book)
                .await
                .expect("journal_recovery");
            let took = start.elapsed();
            assert_eq!(journal.fills.len() as u64, books.tail);
            closed(store).await;
            took
        }));
        venue_calls.push(rt.block_on(venue_round_trips(&books, &broker.url, &symbols)));
    }
    println!("reconcile's parts, {runs} runs: median (min – max)");
    line("Store::journal_recovery", read.into_iter());
    line(
        "the venue's calls (10 round trips)",
        venue_calls.into_iter(),
    );
    drop(broker);
}
