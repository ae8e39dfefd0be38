//! The execution journal: order intents, the venue's answers, fills, and the positions and
//! cash they add up to, per book (see the migration `0004_journal.sql`).
//!
//! Writes go through a [`Journal`]: a task that takes every entry queued while it was
//! committing into one transaction (group commit: one fsync for many entries), then answers
//! each writer that waits. A writer that must not go on before its entry is durable (an
//! intent before the order goes to an external venue) awaits the answer; the others append
//! and go on, and a failed commit reaches them through [`JournalFailure`]s.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};
use vigil_core::{OrderType, Side, Timestamp};

use crate::{Store, StoreError, stamp};

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

    fn parse(text: &str) -> Option<Self> {
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
    /// Every fill, in the order journaled.
    pub fills: Vec<RecordedFill>,
    /// The orders that are, or may be, open at the venue.
    pub open_orders: Vec<JournaledOrder>,
}

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
}

/// The book as the fills of a transaction left it, not yet written: each symbol's last
/// position (in the order the symbols first appeared) and the last cash.
#[derive(Debug, Default)]
struct AfterFills {
    positions: Vec<(Arc<str>, (Decimal, Decimal))>,
    cash: Option<Decimal>,
}

impl AfterFills {
    fn note(&mut self, f: &JournalFill) {
        match self.positions.iter_mut().find(|(s, _)| *s == f.symbol) {
            Some((_, position)) => *position = f.position_after,
            None => self.positions.push((f.symbol.clone(), f.position_after)),
        }
        self.cash = Some(f.cash_after);
    }
}

impl Store {
    /// Writes `entries` for `book` in one transaction, at wall time `at`.
    ///
    /// The position and cash a fill leaves are not written one fill at a time: the last of
    /// each symbol's positions and the last cash are written once, before the next entry
    /// that reads or writes the book's cash or positions (an opening, an adjustment, a
    /// mark) and at the end. The transaction leaves the same rows, with one statement per
    /// fill instead of three (each statement is a round trip to SQLite's thread).
    ///
    /// # Errors
    /// When the transaction fails; nothing of it is kept then.
    pub async fn journal(
        &self,
        book: &str,
        entries: &[JournalEntry],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = stamp(at);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.query_err("beginning a journal transaction"))?;
        let mut after_fills = AfterFills::default();
        for entry in entries {
            if matches!(
                entry,
                JournalEntry::OpenBook { .. } | JournalEntry::Adjust(_) | JournalEntry::Mark { .. }
            ) {
                self.write_after_fills(&mut tx, book, &mut after_fills, &now)
                    .await?;
            }
            match entry {
                JournalEntry::OpenBook { cash, fill_cursor } => {
                    sqlx::query(
                        "INSERT INTO journal_cash (book, cash, opening_cash, \
                         opening_fill_cursor, updated_at) VALUES (?1, ?2, ?2, ?3, ?4) \
                         ON CONFLICT (book) DO NOTHING",
                    )
                    .bind(book)
                    .bind(cash.to_string())
                    .bind(fill_cursor.as_deref())
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("journaling a book's starting cash"))?;
                }
                JournalEntry::Intent(o) => {
                    sqlx::query(
                        "INSERT INTO journal_orders (book, client_order_id, trace_id, symbol, \
                         side, quantity, order_type, limit_price, reference_price, decided_at, \
                         status, journaled_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'intent', ?11, ?11)",
                    )
                    .bind(book)
                    .bind(&*o.client_order_id)
                    .bind(&*o.trace_id)
                    .bind(&*o.symbol)
                    .bind(o.side.as_str())
                    .bind(o.quantity.to_string())
                    .bind(o.order_type.as_str())
                    .bind(o.limit_price.map(|p| p.to_string()))
                    .bind(o.reference_price.to_string())
                    .bind(stamp(o.decided_at))
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("journaling an order intent"))?;
                }
                JournalEntry::Status {
                    client_order_id,
                    status,
                    venue_order_id,
                    filled_quantity,
                    reason,
                } => {
                    sqlx::query(
                        "UPDATE journal_orders SET status = ?3, \
                         venue_order_id = COALESCE(?4, venue_order_id), \
                         filled_quantity = COALESCE(?5, filled_quantity), \
                         reason = COALESCE(?6, reason), updated_at = ?7 \
                         WHERE book = ?1 AND client_order_id = ?2",
                    )
                    .bind(book)
                    .bind(&**client_order_id)
                    .bind(status.as_str())
                    .bind(venue_order_id.as_deref())
                    .bind(filled_quantity.map(|q| q.to_string()))
                    .bind(reason.as_deref())
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("journaling an order's status"))?;
                }
                JournalEntry::Fill(f) => {
                    self.journal_fill(&mut tx, book, f, &now).await?;
                    after_fills.note(f);
                }
                JournalEntry::Adjust(a) => self.journal_adjust(&mut tx, book, a, &now).await?,
                JournalEntry::Mark { last_bar_at } => {
                    sqlx::query(
                        "UPDATE journal_cash SET last_bar_at = ?2 WHERE book = ?1 \
                         AND (last_bar_at IS NULL OR last_bar_at < ?2)",
                    )
                    .bind(book)
                    .bind(stamp(*last_bar_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("journaling the last bar handled"))?;
                }
            }
        }
        self.write_after_fills(&mut tx, book, &mut after_fills, &now)
            .await?;
        tx.commit()
            .await
            .map_err(self.query_err("committing a journal transaction"))
    }

    async fn journal_fill(
        &self,
        tx: &mut sqlx::SqliteConnection,
        book: &str,
        f: &JournalFill,
        now: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO journal_fills (book, fill_id, client_order_id, symbol, side, quantity, \
             price, commission, filled_at, journaled_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(book)
        .bind(&*f.fill_id)
        .bind(&*f.client_order_id)
        .bind(&*f.symbol)
        .bind(f.side.as_str())
        .bind(f.quantity.to_string())
        .bind(f.price.to_string())
        .bind(f.commission.to_string())
        .bind(stamp(f.filled_at))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(self.query_err("journaling a fill"))?;
        Ok(())
    }

    /// Writes the positions and cash the fills noted in `after` left, and forgets them.
    async fn write_after_fills(
        &self,
        tx: &mut sqlx::SqliteConnection,
        book: &str,
        after: &mut AfterFills,
        now: &str,
    ) -> Result<(), StoreError> {
        for (symbol, (qty, avg)) in after.positions.drain(..) {
            sqlx::query(
                "INSERT INTO journal_positions (book, symbol, quantity, avg_price, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (book, symbol) DO UPDATE SET \
                 quantity = excluded.quantity, avg_price = excluded.avg_price, \
                 updated_at = excluded.updated_at",
            )
            .bind(book)
            .bind(&*symbol)
            .bind(qty.to_string())
            .bind(avg.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(self.query_err("journaling a position"))?;
        }
        if let Some(cash) = after.cash.take() {
            sqlx::query(
                "INSERT INTO journal_cash (book, cash, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (book) DO UPDATE SET cash = excluded.cash, \
                 updated_at = excluded.updated_at",
            )
            .bind(book)
            .bind(cash.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(self.query_err("journaling cash"))?;
        }
        Ok(())
    }

    async fn journal_adjust(
        &self,
        tx: &mut sqlx::SqliteConnection,
        book: &str,
        a: &Adjustment,
        now: &str,
    ) -> Result<(), StoreError> {
        let (kind, symbol, before, after, avg, reason) = match a {
            Adjustment::Position {
                symbol,
                before,
                after,
                avg_price,
                reason,
            } => (
                "position",
                Some(&**symbol),
                before,
                after,
                Some(avg_price),
                reason,
            ),
            Adjustment::Cash {
                before,
                after,
                reason,
            } => ("cash", None, before, after, None, reason),
        };
        sqlx::query(
            "INSERT INTO journal_adjustments (book, kind, symbol, before, after, avg_price, \
             reason, journaled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(book)
        .bind(kind)
        .bind(symbol)
        .bind(before.to_string())
        .bind(after.to_string())
        .bind(avg.map(|p| p.to_string()))
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(self.query_err("journaling an adjustment"))?;
        match a {
            Adjustment::Position {
                symbol,
                after,
                avg_price,
                ..
            } => sqlx::query(
                "INSERT INTO journal_positions (book, symbol, quantity, avg_price, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (book, symbol) DO UPDATE SET \
                 quantity = excluded.quantity, avg_price = excluded.avg_price, \
                 updated_at = excluded.updated_at",
            )
            .bind(book)
            .bind(&**symbol)
            .bind(after.to_string())
            .bind(avg_price.to_string())
            .bind(now),
            Adjustment::Cash { after, .. } => sqlx::query(
                "INSERT INTO journal_cash (book, cash, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (book) DO UPDATE SET cash = excluded.cash, \
                 updated_at = excluded.updated_at",
            )
            .bind(book)
            .bind(after.to_string())
            .bind(now),
        }
        .execute(&mut *tx)
        .await
        .map_err(self.query_err("journaling an adjusted book"))?;
        Ok(())
    }

    /// Everything recovery needs of `book`: the book, its opening cash and adjustments, the
    /// last bar handled, every fill and the orders that may be open.
    ///
    /// # Errors
    /// When a read fails or a row cannot be understood.
    pub async fn journal_recovery(&self, book: &str) -> Result<JournalRecovery, StoreError> {
        let journaled = self.journal_book(book).await?;
        let row = sqlx::query(
            "SELECT opening_cash, last_bar_at, opening_fill_cursor FROM journal_cash \
             WHERE book = ?1",
        )
        .bind(book)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.query_err("reading the journal's opening cash"))?;
        let (opening_cash, last_bar_at, opening_fill_cursor) = match row {
            Some(row) => {
                let opening: Option<String> = row.get(0);
                let last: Option<String> = row.get(1);
                (
                    opening
                        .map(|c| self.decimal("journal_cash.opening_cash".into(), &c))
                        .transpose()?,
                    last.map(|t| self.time(|| "journal_cash.last_bar_at".into(), &t))
                        .transpose()?,
                    row.get(2),
                )
            }
            None => (None, None, None),
        };
        let decided: Option<String> =
            sqlx::query("SELECT MAX(decided_at) FROM journal_orders WHERE book = ?1")
                .bind(book)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's last decision"))?
                .get(0);
        let decided = decided
            .map(|t| self.time(|| "journal_orders.decided_at".into(), &t))
            .transpose()?;
        let last_bar_at = last_bar_at.max(decided);
        let mut cash_adjusted = Decimal::ZERO;
        let rows = sqlx::query(
            "SELECT before, after FROM journal_adjustments WHERE book = ?1 AND kind = 'cash'",
        )
        .bind(book)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading the journal's cash adjustments"))?;
        for row in &rows {
            let before = self.decimal(
                "journal_adjustments.before".into(),
                &row.get::<String, _>(0),
            )?;
            let after =
                self.decimal("journal_adjustments.after".into(), &row.get::<String, _>(1))?;
            cash_adjusted += after - before;
        }
        let rows = sqlx::query(
            "SELECT fill_id, client_order_id, symbol, side, quantity, price, commission \
             FROM journal_fills WHERE book = ?1 ORDER BY seq",
        )
        .bind(book)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading the journal's fills"))?;
        let mut fills = Vec::with_capacity(rows.len());
        for row in &rows {
            let fill_id: String = row.get(0);
            let what = |col: &str| format!("journal_fills.{col} of {fill_id}");
            let side: String = row.get(3);
            fills.push(RecordedFill {
                client_order_id: row.get(1),
                symbol: row.get(2),
                side: match side.as_str() {
                    "BUY" => Side::Buy,
                    "SELL" => Side::Sell,
                    other => return Err(self.corrupt(what("side"), format!("{other:?}"))),
                },
                quantity: self.decimal(what("quantity"), &row.get::<String, _>(4))?,
                price: self.decimal(what("price"), &row.get::<String, _>(5))?,
                commission: self.decimal(what("commission"), &row.get::<String, _>(6))?,
                fill_id,
            });
        }
        Ok(JournalRecovery {
            book: journaled,
            opening_cash,
            cash_adjusted,
            last_bar_at,
            opening_fill_cursor,
            fills,
            open_orders: self.journal_open_orders(book).await?,
        })
    }

    /// The orders of `book` that are, or may be, open at the venue (intents the venue never
    /// answered included), oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    pub async fn journal_open_orders(&self, book: &str) -> Result<Vec<JournaledOrder>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_order_id, trace_id, symbol, side, quantity, order_type, limit_price, \
             reference_price, decided_at, status, venue_order_id, filled_quantity \
             FROM journal_orders WHERE book = ?1 \
             AND status IN ('intent', 'accepted', 'partially_filled') ORDER BY rowid",
        )
        .bind(book)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading the journal's open orders"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                let what = |col: &str| format!("journal_orders.{col} of {id}");
                let side: String = row.get(3);
                let order_type: String = row.get(5);
                let status: String = row.get(9);
                let limit: Option<String> = row.get(6);
                Ok(JournaledOrder {
                    order: JournalOrder {
                        client_order_id: id.as_str().into(),
                        trace_id: row.get::<String, _>(1).into(),
                        symbol: row.get::<String, _>(2).into(),
                        side: match side.as_str() {
                            "BUY" => Side::Buy,
                            "SELL" => Side::Sell,
                            other => {
                                return Err(self.corrupt(what("side"), format!("{other:?}")));
                            }
                        },
                        quantity: self.decimal(what("quantity"), &row.get::<String, _>(4))?,
                        order_type: match order_type.as_str() {
                            "MARKET" => OrderType::Market,
                            "LIMIT" => OrderType::Limit,
                            other => {
                                return Err(self.corrupt(what("order_type"), format!("{other:?}")));
                            }
                        },
                        limit_price: limit
                            .map(|l| self.decimal(what("limit_price"), &l))
                            .transpose()?,
                        reference_price: self
                            .decimal(what("reference_price"), &row.get::<String, _>(7))?,
                        decided_at: self.time(|| what("decided_at"), &row.get::<String, _>(8))?,
                    },
                    status: JournalStatus::parse(&status)
                        .ok_or_else(|| self.corrupt(what("status"), format!("{status:?}")))?,
                    venue_order_id: row.get(10),
                    filled_quantity: self
                        .decimal(what("filled_quantity"), &row.get::<String, _>(11))?,
                })
            })
            .collect()
    }

    /// The book's cash, positions and fill count as journaled.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    pub async fn journal_book(&self, book: &str) -> Result<JournaledBook, StoreError> {
        let cash: Option<String> = sqlx::query("SELECT cash FROM journal_cash WHERE book = ?1")
            .bind(book)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_err("reading the journal's cash"))?
            .map(|r| r.get(0));
        let rows = sqlx::query(
            "SELECT symbol, quantity, avg_price FROM journal_positions WHERE book = ?1 \
             ORDER BY symbol",
        )
        .bind(book)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading the journal's positions"))?;
        let mut positions = Vec::with_capacity(rows.len());
        for row in &rows {
            let symbol: String = row.get(0);
            let qty = self.decimal(
                format!("journal_positions.quantity of {symbol}"),
                &row.get::<String, _>(1),
            )?;
            let avg = self.decimal(
                format!("journal_positions.avg_price of {symbol}"),
                &row.get::<String, _>(2),
            )?;
            if !qty.is_zero() {
                positions.push((symbol, qty, avg));
            }
        }
        let fills: i64 = sqlx::query("SELECT COUNT(*) FROM journal_fills WHERE book = ?1")
            .bind(book)
            .fetch_one(&self.pool)
            .await
            .map_err(self.query_err("counting the journal's fills"))?
            .get(0);
        Ok(JournaledBook {
            cash: cash
                .map(|c| self.decimal("journal_cash.cash".into(), &c))
                .transpose()?,
            positions,
            fills: u64::try_from(fills).unwrap_or(0),
        })
    }

    /// The books the journal holds, oldest first.
    ///
    /// # Errors
    /// When the read fails.
    pub async fn journal_books(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT book FROM journal_cash ORDER BY rowid")
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_err("listing the journal's books"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn decimal(&self, what: String, text: &str) -> Result<Decimal, StoreError> {
        Decimal::from_str(text)
            .map_err(|e| self.corrupt(what, format!("bad decimal {text:?}: {e}")))
    }
}

/// A journal commit that failed: what was lost, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalFailure {
    /// The error, naming the file.
    pub error: String,
    /// How many entries the failed transaction held.
    pub entries: usize,
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// The journal's writer: append from anywhere, committed in groups by one task.
#[derive(Clone, Debug)]
pub struct Journal {
    tx: mpsc::UnboundedSender<(JournalEntry, Option<Waiter>)>,
}

impl Journal {
    /// Starts the writer for `book` on the current tokio runtime. Every failed commit is
    /// sent to `failures`; `wall` stamps the rows. The task ends when every [`Journal`]
    /// handle is dropped and the queue is written.
    pub fn start(
        store: Store,
        book: String,
        wall: impl Fn() -> DateTime<Utc> + Send + 'static,
        failures: mpsc::UnboundedSender<JournalFailure>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(JournalEntry, Option<Waiter>)>();
        let task = tokio::spawn(async move {
            let mut entries = Vec::new();
            let mut waiters = Vec::new();
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
                entries.clear();
            }
        });
        (Self { tx }, task)
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

/// The journal's writer has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the journal writer has stopped: the entry was not journaled")]
pub struct JournalStopped;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn order(id: &str) -> JournalOrder {
        JournalOrder {
            client_order_id: id.into(),
            trace_id: format!("tx_{id}").into(),
            symbol: "GOOG".into(),
            side: Side::Buy,
            quantity: Decimal::from(10),
            order_type: OrderType::Limit,
            limit_price: Some(Decimal::new(10125, 2)),
            reference_price: Decimal::from(101),
            decided_at: t("2024-01-02T15:00:00Z"),
        }
    }

    fn status(id: &str, status: JournalStatus) -> JournalEntry {
        JournalEntry::Status {
            client_order_id: id.into(),
            status,
            venue_order_id: Some(format!("V-{id}").into()),
            filled_quantity: None,
            reason: None,
        }
    }

    fn fill(id: &str, fill_id: &str) -> JournalEntry {
        JournalEntry::Fill(JournalFill {
            fill_id: fill_id.into(),
            client_order_id: id.into(),
            symbol: "GOOG".into(),
            side: Side::Buy,
            quantity: Decimal::from(10),
            price: Decimal::from(101),
            commission: Decimal::new(5, 1),
            filled_at: t("2024-01-03T14:30:00Z"),
            position_after: (Decimal::from(10), Decimal::from(101)),
            cash_after: Decimal::new(989_895, 1),
        })
    }

    fn fill_of(symbol: &str, fill_id: &str, position: i64, cash: i64) -> JournalEntry {
        JournalEntry::Fill(JournalFill {
            symbol: symbol.into(),
            position_after: (Decimal::from(position), Decimal::from(100)),
            cash_after: Decimal::from(cash),
            ..match fill("c", fill_id) {
                JournalEntry::Fill(f) => f,
                _ => unreachable!("fill() makes a fill"),
            }
        })
    }

    #[tokio::test]
    async fn a_transaction_leaves_the_book_its_entries_leave_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"))
            .await
            .expect("open");
        let at = t("2030-01-01T00:00:00Z");
        store
            .journal(
                "a",
                &[
                    JournalEntry::OpenBook {
                        cash: Decimal::from(1000),
                        fill_cursor: None,
                    },
                    fill_of("GOOG", "F-1", 10, 900),
                    fill_of("AAPL", "F-2", 5, 800),
                    fill_of("GOOG", "F-3", 20, 700),
                    // Taken after the fills before it, and overtaken by the ones after.
                    JournalEntry::Adjust(Adjustment::Position {
                        symbol: "GOOG".into(),
                        before: Decimal::from(20),
                        after: Decimal::from(25),
                        avg_price: Decimal::from(99),
                        reason: "test".into(),
                    }),
                    fill_of("AAPL", "F-4", 0, 850),
                    JournalEntry::Mark {
                        last_bar_at: t("2024-01-03T14:30:00Z"),
                    },
                    fill_of("MSFT", "F-5", -3, 950),
                ],
                at,
            )
            .await
            .expect("journal");
        let read = store.journal_recovery("a").await.expect("read");
        assert_eq!(read.book.cash, Some(Decimal::from(950)));
        assert_eq!(
            read.book.positions,
            [
                ("GOOG".to_string(), Decimal::from(25), Decimal::from(99)),
                ("MSFT".to_string(), Decimal::from(-3), Decimal::from(100)),
            ],
            "AAPL closed by its last fill"
        );
        assert_eq!(read.book.fills, 5);
        assert_eq!(read.opening_cash, Some(Decimal::from(1000)));
        assert_eq!(read.last_bar_at, Some(t("2024-01-03T14:30:00Z")));

        // A fill before the opening in the same transaction: the book existed already, and
        // the opening changes nothing, as when every fill wrote its cash at once.
        store
            .journal(
                "b",
                &[
                    fill_of("GOOG", "F-1", 10, 900),
                    JournalEntry::OpenBook {
                        cash: Decimal::from(1000),
                        fill_cursor: None,
                    },
                ],
                at,
            )
            .await
            .expect("journal");
        let read = store.journal_recovery("b").await.expect("read");
        assert_eq!(read.book.cash, Some(Decimal::from(900)));
        assert_eq!(read.opening_cash, None);
    }

    #[tokio::test]
    async fn the_journal_keeps_open_orders_and_the_book_across_reopening_in_group_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path).await.expect("open");
        let (failures, mut failed) = mpsc::unbounded_channel();
        let (journal, task) = Journal::start(
            store.clone(),
            "broker:test".into(),
            || t("2030-01-01T00:00:00Z"),
            failures,
        );
        journal
            .append(JournalEntry::OpenBook {
                cash: Decimal::from(100_000),
                fill_cursor: None,
            })
            .expect("append");
        for id in ["a", "b", "c"] {
            journal
                .append(JournalEntry::Intent(order(id)))
                .expect("append");
        }
        journal
            .append(status("b", JournalStatus::Accepted))
            .expect("append");
        journal
            .append(status("c", JournalStatus::Filled))
            .expect("append");
        // Durable: answered once the group holding it is committed.
        journal
            .append_durable(fill("c", "F-1"))
            .await
            .expect("committed");
        // The same fill id again: the whole group fails, and says so.
        let again = journal.append_durable(fill("c", "F-1")).await;
        assert!(again.is_err_and(|e| e.contains("journaling a fill")));
        let failure = failed.recv().await.expect("a failure");
        assert_eq!(failure.entries, 1);
        drop(journal);
        task.await
            .expect("writer ends when every handle is dropped");
        store.close().await;

        let store = Store::open(&path).await.expect("reopen");
        let open = store
            .journal_open_orders("broker:test")
            .await
            .expect("read");
        let ids: Vec<(&str, JournalStatus)> = open
            .iter()
            .map(|o| (&*o.order.client_order_id, o.status))
            .collect();
        assert_eq!(
            ids,
            [("a", JournalStatus::Intent), ("b", JournalStatus::Accepted)]
        );
        assert_eq!(open[0].order, order("a"), "read back as written");
        assert_eq!(open[1].venue_order_id.as_deref(), Some("V-b"));
        let book = store.journal_book("broker:test").await.expect("book");
        assert_eq!(book.cash, Some(Decimal::new(989_895, 1)));
        assert_eq!(
            book.positions,
            [("GOOG".to_string(), Decimal::from(10), Decimal::from(101))]
        );
        assert_eq!(book.fills, 1);
        assert_eq!(
            store.journal_book("paper:other").await.expect("book"),
            JournaledBook::default(),
            "books are apart"
        );
    }
}
