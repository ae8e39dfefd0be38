//! The execution journal: order intents, the venue's answers, fills, and the positions and
//! cash they add up to, per book (see the migration `0004_journal.sql`).
//!
//! Writes go through a [`Journal`]: a task that takes every entry queued while it was
//! committing into one transaction (group commit: one fsync for many entries), then answers
//! each writer that waits. A writer that must not go on before its entry is durable (an
//! intent before the order goes to an external venue) awaits the answer; the others append
//! and go on, and a failed commit reaches them through [`JournalFailure`]s.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot};
use vigil_core::{OrderType, Side, Timestamp};

use crate::SharedStore;

/// An order as decided, journaled before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalOrder {
    /// The order's id at the venue too.
    pub client_order_id: Arc<str>,
    /// The decision chain.
    pub trace_id: Arc<str>,
    /// Instrument.
    pub symbol: Arc<str>,
    /// Side.
    pub side: Side,
    /// Quantity, positive.
    pub quantity: Decimal,
    /// Market or limit.
    pub order_type: OrderType,
    /// Limit price of a limit order.
    pub limit_price: Option<Decimal>,
    /// The price the decision used.
    pub reference_price: Decimal,
    /// Market time of the decision.
    pub decided_at: Timestamp,
}

/// Where an order stands, as the journal records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalStatus {
    /// Journaled; the venue has not answered (it may or may not have the order).
    Intent,
    /// The venue took it.
    Accepted,
    /// The venue refused it.
    Rejected,
    /// Partly filled, the rest open.
    PartiallyFilled,
    /// Filled.
    Filled,
    /// Cancelled (the filled part stays).
    Cancelled,
    /// Never reached the venue.
    Failed,
}

impl JournalStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::PartiallyFilled => "partially_filled",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            Self::Intent,
            Self::Accepted,
            Self::Rejected,
            Self::PartiallyFilled,
            Self::Filled,
            Self::Cancelled,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Still open at the venue, or possibly so.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Intent | Self::Accepted | Self::PartiallyFilled)
    }
}

/// A fill with the book it leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalFill {
    /// The venue's id of the execution (unique per book).
    pub fill_id: Arc<str>,
    /// The order.
    pub client_order_id: Arc<str>,
    /// Instrument.
    pub symbol: Arc<str>,
    /// Side.
    pub side: Side,
    /// Quantity, positive.
    pub quantity: Decimal,
    /// Price.
    pub price: Decimal,
    /// Commission.
    pub commission: Decimal,
    /// When it happened (market time).
    pub filled_at: Timestamp,
    /// The symbol's position after it: (signed quantity, average price).
    pub position_after: (Decimal, Decimal),
    /// Cash after it.
    pub cash_after: Decimal,
}

/// One thing to journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalEntry {
    /// The book's starting cash (written once, when the book is new).
    OpenBook {
        /// Cash.
        cash: Decimal,
        /// The venue's newest fill at that moment (fills after it are the book's).
        fill_cursor: Option<Arc<str>>,
    },
    /// An order about to be sent.
    Intent(JournalOrder),
    /// The venue's answer, or what became of the order.
    Status {
        /// The order.
        client_order_id: Arc<str>,
        /// Its new status.
        status: JournalStatus,
        /// The venue's id, once known.
        venue_order_id: Option<Arc<str>>,
        /// Filled so far.
        filled_quantity: Option<Decimal>,
        /// Why (a rejection, a cancel).
        reason: Option<String>,
    },
    /// A fill, and the position and cash after it.
    Fill(JournalFill),
    /// Reconciliation set a position or the cash to the venue's figure.
    Adjust(Adjustment),
    /// The market time of the last bar handled: a restart resumes after it.
    Mark {
        /// The bar's time.
        last_bar_at: Timestamp,
    },
    /// The book split by model version (a canary's sub-ledgers), as JSON, replacing the
    /// last.
    Ledgers {
        /// `vigil_core::SubLedgers` as JSON.
        state: String,
    },
}

/// A change reconciliation made so that the book agrees with the venue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adjustment {
    /// A position set to the venue's.
    Position {
        /// Instrument.
        symbol: Arc<str>,
        /// The journal's signed quantity.
        before: Decimal,
        /// The venue's.
        after: Decimal,
        /// The venue's average price.
        avg_price: Decimal,
        /// Why.
        reason: String,
    },
    /// The cash set to the venue's.
    Cash {
        /// The journal's.
        before: Decimal,
        /// The venue's.
        after: Decimal,
        /// Why.
        reason: String,
    },
}

/// A fill as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedFill {
    /// The venue's id of the execution.
    pub fill_id: String,
    /// The order.
    pub client_order_id: String,
    /// Instrument.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Quantity, positive.
    pub quantity: Decimal,
    /// Price.
    pub price: Decimal,
    /// Commission.
    pub commission: Decimal,
}

impl RecordedFill {
    /// What it moved the cash by: minus its signed notional and its commission.
    pub fn cash_flow(&self) -> Decimal {
        fill_cash_flow(self.side, self.quantity, self.price, self.commission)
    }
}

/// What a fill moves the cash by: minus its signed notional and its commission.
pub fn fill_cash_flow(
    side: Side,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal,
) -> Decimal {
    -(side.sign() * quantity * price + commission)
}

/// Everything recovery reads back from the journal of one book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalRecovery {
    /// Cash, positions and fill count as journaled.
    pub book: JournaledBook,
    /// The cash the book opened with (None: never opened, or opened before it was kept).
    pub opening_cash: Option<Decimal>,
    /// The sum of the cash adjustments reconciliation made (after - before).
    pub cash_adjusted: Decimal,
    /// The market time of the last bar handled: the later of the last bar journaled as
    /// handled and the last decision journaled (an intent is committed before its bar's
    /// mark, and must not be decided twice).
    pub last_bar_at: Option<Timestamp>,
    /// The venue's newest fill when the book opened.
    pub opening_fill_cursor: Option<String>,
    /// The book's last checkpoint: the fills before it are summed there, not read.
    pub checkpoint: Option<JournalCheckpoint>,
    /// Every fill after the checkpoint (every fill, without one), in the order journaled.
    pub fills: Vec<RecordedFill>,
    /// The orders that are, or may be, open at the venue.
    pub open_orders: Vec<JournaledOrder>,
}

impl JournalRecovery {
    /// The venue's id of the last fill journaled (or of its newest fill when the book
    /// opened, before the book had one): the venue's fills after it are the ones to book.
    pub fn fill_cursor(&self) -> Option<&str> {
        self.fills
            .last()
            .map(|f| f.fill_id.as_str())
            .or_else(|| self.checkpoint.as_ref()?.last_fill_id.as_deref())
            .or(self.opening_fill_cursor.as_deref())
    }

    /// What every fill journaled moved the cash by: the checkpoint's sum and the fills
    /// after it.
    pub fn fill_cash_flow(&self) -> Decimal {
        self.checkpoint
            .as_ref()
            .map_or(Decimal::ZERO, |c| c.fill_cash_flow)
            + self
                .fills
                .iter()
                .map(RecordedFill::cash_flow)
                .sum::<Decimal>()
    }
}

/// A checkpoint of a book's journal: how much it held through a fill and an order, and what
/// those fills moved the cash by. Recovery sums the fills after it, not every fill ever
/// journaled (see `docs/journal.md`, "Checkpoints").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalCheckpoint {
    /// The last fill it covers (`journal_fills.seq`).
    pub fills_through: i64,
    /// Fills it covers.
    pub fills: u64,
    /// What they moved the cash by: minus each one's signed notional and commission.
    pub fill_cash_flow: Decimal,
    /// The venue's id of the last fill it covers.
    pub last_fill_id: Option<String>,
    /// The last order it covers (in the order the rows were inserted).
    pub orders_through: i64,
    /// Orders it covers.
    pub orders: u64,
    /// When it was written (wall clock).
    pub written_at: DateTime<Utc>,
}

/// A book's journal as counted at its last checkpoint and after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalCounts {
    /// The last checkpoint.
    pub checkpoint: Option<JournalCheckpoint>,
    /// Orders journaled.
    pub orders: u64,
    /// Fills journaled.
    pub fills: u64,
}

/// How many fills the journal's writer lets pass between two checkpoints: a restart reads
/// at most about this many fills (and one transaction's) back.
pub const CHECKPOINT_EVERY_FILLS: u64 = 10_000;

/// An order as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournaledOrder {
    /// As decided.
    pub order: JournalOrder,
    /// Where it stands.
    pub status: JournalStatus,
    /// The venue's id, once known.
    pub venue_order_id: Option<String>,
    /// Filled so far.
    pub filled_quantity: Decimal,
}

/// The book as the journal holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournaledBook {
    /// Cash (None: the book was never opened).
    pub cash: Option<Decimal>,
    /// Non-zero positions: (symbol, signed quantity, average price).
    pub positions: Vec<(String, Decimal, Decimal)>,
    /// Fills journaled.
    pub fills: u64,
    /// The sub-ledgers as last journaled (JSON), if the book was ever split.
    pub ledgers: Option<String>,
}

/// The book as the fills of a transaction left it, not yet written: each symbol's last
/// position (in the order the symbols first appeared) and the last cash.
#[derive(Debug, Default)]
pub(crate) struct AfterFills {
    pub(crate) positions: Vec<(Arc<str>, (Decimal, Decimal))>,
    pub(crate) cash: Option<Decimal>,
}

impl AfterFills {
    pub(crate) fn note(&mut self, f: &JournalFill) {
        match self.positions.iter_mut().find(|(s, _)| *s == f.symbol) {
            Some((_, position)) => *position = f.position_after,
            None => self.positions.push((f.symbol.clone(), f.position_after)),
        }
        self.cash = Some(f.cash_after);
    }
}

/// A journal commit that failed: what was lost, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalFailure {
    /// The error, naming the store (its file, or its URL without the password).
    pub error: String,
    /// How many entries the failed transaction held (0 for a checkpoint).
    pub entries: usize,
    /// A checkpoint failed, not a commit: nothing was lost, a restart reads the fills since
    /// the previous checkpoint.
    pub checkpoint: bool,
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// The journal's writer: append from anywhere, committed in groups by one task.
#[derive(Clone, Debug)]
pub struct Journal {
    tx: mpsc::UnboundedSender<(JournalEntry, Option<Waiter>)>,
}

impl Journal {
    /// Starts the writer for `book` of `store` (either backend) on the current tokio
    /// runtime. Every failed commit is sent to `failures`; `wall` stamps the rows. Every
    /// [`CHECKPOINT_EVERY_FILLS`] fills committed, it writes a checkpoint on a task of its
    /// own ([`StateStore::journal_checkpoint`](crate::StateStore::journal_checkpoint)); a
    /// failed one is sent to `failures` too. The task ends when every [`Journal`] handle is
    /// dropped, the queue is written and the checkpoint under way is done.
    pub fn start(
        store: SharedStore,
        book: String,
        wall: impl Fn() -> DateTime<Utc> + Send + 'static,
        failures: mpsc::UnboundedSender<JournalFailure>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::spawn(store, book, wall, failures, CHECKPOINT_EVERY_FILLS)
    }

    fn spawn(
        store: SharedStore,
        book: String,
        wall: impl Fn() -> DateTime<Utc> + Send + 'static,
        failures: mpsc::UnboundedSender<JournalFailure>,
        checkpoint_every: u64,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        // Unbounded on purpose: an order never waits on a group commit, and the pipeline's
        // flow control (batches in flight) bounds what can be waiting here.
        let (tx, mut rx) = mpsc::unbounded_channel::<(JournalEntry, Option<Waiter>)>();
        let task = tokio::spawn(async move {
            let mut entries = Vec::new();
            let mut waiters = Vec::new();
            // Fills committed since the last checkpoint was started, and that checkpoint.
            let mut uncheckpointed = 0u64;
            let mut checkpoint: Option<tokio::task::JoinHandle<()>> = None;
            while let Some(first) = rx.recv().await {
                let (entry, waiter) = first;
                entries.push(entry);
                waiters.extend(waiter);
                // Everything queued meanwhile joins this transaction; empty (or closed):
                // commit what was taken.
                while let Ok((entry, waiter)) = rx.try_recv() {
                    entries.push(entry);
                    waiters.extend(waiter);
                }
                let result = store
                    .journal(&book, &entries, wall())
                    .await
                    .map_err(|e| e.to_string());
                if let Err(error) = &result
                    && failures
                        .send(JournalFailure {
                            error: error.clone(),
                            entries: entries.len(),
                            checkpoint: false,
                        })
                        .is_err()
                {
                    // Nobody listens for failures any more: say it where a person sees it.
                    eprintln!("vigil: CRITICAL journal commit failed: {error}");
                }
                for waiter in waiters.drain(..) {
                    // A waiter that gave up needs no answer.
                    drop(waiter.send(result.clone()));
                }
                if result.is_ok() {
                    uncheckpointed += entries
                        .iter()
                        .filter(|e| matches!(e, JournalEntry::Fill(_)))
                        .count() as u64;
                }
                // Checkpoint on a task of its own: it reads the rows since the last one,
                // and no order waits on that.
                if uncheckpointed >= checkpoint_every
                    && checkpoint
                        .as_ref()
                        .is_none_or(tokio::task::JoinHandle::is_finished)
                {
                    uncheckpointed = 0;
                    checkpoint = Some(tokio::spawn(write_checkpoint(
                        store.clone(),
                        book.clone(),
                        wall(),
                        failures.clone(),
                    )));
                }
                entries.clear();
            }
            if let Some(Err(e)) = match checkpoint {
                Some(c) => Some(c.await),
                None => None,
            } {
                eprintln!("vigil: ERROR journal checkpoint task failed: {e}");
            }
        });
        (Self { tx }, task)
    }

    /// [`Journal::start`] with a checkpoint every `every` fills committed (at most one
    /// being written at a time), instead of every [`CHECKPOINT_EVERY_FILLS`].
    pub fn start_with_checkpoints(
        store: SharedStore,
        book: String,
        wall: impl Fn() -> DateTime<Utc> + Send + 'static,
        failures: mpsc::UnboundedSender<JournalFailure>,
        every: u64,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::spawn(store, book, wall, failures, every.max(1))
    }

    /// Queues `entry`; a failure to commit it reaches the failure channel.
    ///
    /// # Errors
    /// When the writer has stopped (the entry is not journaled).
    pub fn append(&self, entry: JournalEntry) -> Result<(), JournalStopped> {
        self.tx.send((entry, None)).map_err(|_| JournalStopped)
    }

    /// Queues `entry` and returns a future of its commit.
    pub fn append_durable(
        &self,
        entry: JournalEntry,
    ) -> impl std::future::Future<Output = Result<(), String>> + use<> {
        let (done, wait) = oneshot::channel();
        let sent = self.tx.send((entry, Some(done)));
        async move {
            sent.map_err(|_| JournalStopped.to_string())?;
            wait.await
                .map_err(|_| "the journal writer stopped before committing".to_string())?
        }
    }
}

/// Writes a checkpoint of `book`; a failure reaches `failures` (nothing is lost by it).
async fn write_checkpoint(
    store: SharedStore,
    book: String,
    at: DateTime<Utc>,
    failures: mpsc::UnboundedSender<JournalFailure>,
) {
    if let Err(e) = store.journal_checkpoint(&book, at).await {
        let error = e.to_string();
        if failures
            .send(JournalFailure {
                error: error.clone(),
                entries: 0,
                checkpoint: true,
            })
            .is_err()
        {
            eprintln!("vigil: ERROR journal checkpoint failed: {error}");
        }
    }
}

/// The journal's writer has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the journal writer has stopped: the entry was not journaled")]
pub struct JournalStopped;
