//! The broker's state file: SQLite in WAL mode with full fsync, its schema kept by
//! migrations (opened by `vigil_store::open_sqlite`, as every vigil database). Every request's changes are committed in one
//! transaction before the answer, so a broker killed at any moment restarts with every
//! answer it gave.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use vigil_core::Timestamp;

use crate::BrokerError;
use crate::engine::{
    Changes, FillRow, OrderRow, PositionRow, Saved, Status, parse_side, parse_type, side_text,
    type_text,
};

const ORDER_COLUMNS: &str = "seq, id, client_order_id, symbol, side, type, time_in_force, qty, \
     limit_price, filled_qty, filled_notional, status, reject_reason, after_time, created_at, \
     updated_at, filled_at, canceled_at";

const FILL_COLUMNS: &str = "seq, id, order_id, symbol, side, qty, price, commission, cum_qty, \
     leaves_qty, transaction_time";

/// Which orders a listing wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Working orders.
    Open,
    /// Filled, cancelled and rejected orders.
    Closed,
    /// Every order.
    All,
}

/// A listing of orders (`GET /v2/orders`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderQuery {
    /// Which orders.
    pub status: StatusFilter,
    /// At most this many.
    pub limit: u32,
    /// Only orders created strictly after this time.
    pub after: Option<Timestamp>,
    /// Only orders created strictly before this time.
    pub until: Option<Timestamp>,
    /// Oldest first (else newest first).
    pub ascending: bool,
    /// Only these symbols (empty: all).
    pub symbols: Vec<String>,
}

/// A page of fills (`GET /v2/account/activities/FILL`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillQuery {
    /// Only fills after (ascending) or before (descending) the fill with this id.
    pub page_token: Option<String>,
    /// At most this many.
    pub page_size: u32,
    /// Only fills strictly after this time.
    pub after: Option<Timestamp>,
    /// Only fills strictly before this time.
    pub until: Option<Timestamp>,
    /// Oldest first (else newest first).
    pub ascending: bool,
}

/// The open state file.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

/// A time as stored: RFC 3339, UTC, nanoseconds (fixed width, sorts as text).
fn stamp(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl Store {
    /// Opens (or creates, with its folder) the state file, applies missing migrations, and
    /// creates the account with `initial_cash` when the file is new.
    ///
    /// # Errors
    /// The file cannot be opened or created, a migration fails, or no random id can be had
    /// for a new file.
    pub async fn open(path: &Path, initial_cash: Decimal) -> Result<Self, BrokerError> {
        let pool = vigil_store::open_sqlite(path)
            .await
            .map_err(|e| BrokerError::State {
                path: path.to_path_buf(),
                what: "cannot open".into(),
                reason: e.to_string(),
            })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| BrokerError::State {
                path: path.to_path_buf(),
                what: "migration failed".into(),
                reason: e.to_string(),
            })?;
        let store = Self {
            pool,
            path: path.to_path_buf(),
        };
        store.create_account(initial_cash).await?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err<'a>(&'a self, what: &str) -> impl FnOnce(sqlx::Error) -> BrokerError + use<'a> {
        let what = what.to_string();
        move |e| BrokerError::State {
            path: self.path.clone(),
            what,
            reason: e.to_string(),
        }
    }

    fn corrupt(&self, what: &str, detail: impl std::fmt::Display) -> BrokerError {
        BrokerError::State {
            path: self.path.clone(),
            what: what.to_string(),
            reason: format!("unreadable: {detail}"),
        }
    }

    async fn create_account(&self, initial_cash: Decimal) -> Result<(), BrokerError> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|e| BrokerError::State {
            path: self.path.clone(),
            what: "creating the account".into(),
            reason: format!("no random bytes from the operating system: {e}"),
        })?;
        let instance: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let cash = initial_cash.to_string();
        sqlx::query(
            "INSERT INTO account (id, instance, initial_cash, cash, clock) \
             VALUES (1, ?1, ?2, ?2, NULL) ON CONFLICT (id) DO NOTHING",
        )
        .bind(instance)
        .bind(cash)
        .execute(&self.pool)
        .await
        .map_err(self.err("creating the account"))?;
        Ok(())
    }

    fn decimal(&self, row: &SqliteRow, column: &str) -> Result<Decimal, BrokerError> {
        let text: String = row.get(column);
        Decimal::from_str(&text).map_err(|e| self.corrupt(column, format!("{text:?}: {e}")))
    }

    fn opt_decimal(&self, row: &SqliteRow, column: &str) -> Result<Option<Decimal>, BrokerError> {
        let text: Option<String> = row.get(column);
        text.map(|t| Decimal::from_str(&t).map_err(|e| self.corrupt(column, format!("{t:?}: {e}"))))
            .transpose()
    }

    fn time(&self, row: &SqliteRow, column: &str) -> Result<Timestamp, BrokerError> {
        let text: String = row.get(column);
        self.parse_time(column, &text)
    }

    fn opt_time(&self, row: &SqliteRow, column: &str) -> Result<Option<Timestamp>, BrokerError> {
        let text: Option<String> = row.get(column);
        text.map(|t| self.parse_time(column, &t)).transpose()
    }

    fn parse_time(&self, column: &str, text: &str) -> Result<Timestamp, BrokerError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(column, format!("{text:?}: {e}")))
    }

    fn order(&self, row: &SqliteRow) -> Result<OrderRow, BrokerError> {
        let side: String = row.get("side");
        let kind: String = row.get("type");
        let status: String = row.get("status");
        Ok(OrderRow {
            seq: row.get("seq"),
            id: row.get("id"),
            client_order_id: row.get("client_order_id"),
            symbol: row.get("symbol"),
            side: parse_side(&side).ok_or_else(|| self.corrupt("orders.side", &side))?,
            order_type: parse_type(&kind).ok_or_else(|| self.corrupt("orders.type", &kind))?,
            time_in_force: row.get("time_in_force"),
            qty: self.decimal(row, "qty")?,
            limit_price: self.opt_decimal(row, "limit_price")?,
            filled_qty: self.decimal(row, "filled_qty")?,
            filled_notional: self.decimal(row, "filled_notional")?,
            status: Status::parse(&status).ok_or_else(|| self.corrupt("orders.status", &status))?,
            reject_reason: row.get("reject_reason"),
            after: self.opt_time(row, "after_time")?,
            created_at: self.time(row, "created_at")?,
            updated_at: self.time(row, "updated_at")?,
            filled_at: self.opt_time(row, "filled_at")?,
            canceled_at: self.opt_time(row, "canceled_at")?,
        })
    }

    fn fill(&self, row: &SqliteRow) -> Result<FillRow, BrokerError> {
        let side: String = row.get("side");
        Ok(FillRow {
            seq: row.get("seq"),
            id: row.get("id"),
            order_id: row.get("order_id"),
            symbol: row.get("symbol"),
            side: parse_side(&side).ok_or_else(|| self.corrupt("fills.side", &side))?,
            qty: self.decimal(row, "qty")?,
            price: self.decimal(row, "price")?,
            commission: self.decimal(row, "commission")?,
            cum_qty: self.decimal(row, "cum_qty")?,
            leaves_qty: self.decimal(row, "leaves_qty")?,
            transaction_time: self.time(row, "transaction_time")?,
        })
    }

    /// Reads the book back: account, positions, working orders, the last ids used.
    ///
    /// # Errors
    /// A read fails or a row cannot be understood.
    pub async fn load(&self) -> Result<Saved, BrokerError> {
        let account =
            sqlx::query("SELECT instance, initial_cash, cash, clock FROM account WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(self.err("reading the account"))?;
        let positions = sqlx::query("SELECT symbol, qty, avg_entry_price FROM positions")
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("reading the positions"))?
            .iter()
            .map(|r| {
                Ok(PositionRow {
                    symbol: r.get("symbol"),
                    qty: self.decimal(r, "qty")?,
                    avg_entry_price: self.decimal(r, "avg_entry_price")?,
                })
            })
            .collect::<Result<Vec<_>, BrokerError>>()?;
        let open = self
            .orders(&OrderQuery {
                status: StatusFilter::Open,
                limit: u32::MAX,
                after: None,
                until: None,
                ascending: true,
                symbols: Vec::new(),
            })
            .await?;
        let last = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM orders) AS o, \
             (SELECT COALESCE(MAX(seq), 0) FROM fills) AS f",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(self.err("reading the last ids"))?;
        Ok(Saved {
            instance: account.get("instance"),
            initial_cash: self.decimal(&account, "initial_cash")?,
            cash: self.decimal(&account, "cash")?,
            clock: self.opt_time(&account, "clock")?,
            positions,
            open,
            last_order_seq: last.get("o"),
            last_fill_seq: last.get("f"),
        })
    }

    /// Writes `ch` in one transaction.
    ///
    /// # Errors
    /// A write fails; nothing of `ch` is then kept.
    pub async fn commit(&self, ch: &Changes) -> Result<(), BrokerError> {
        if ch.is_empty() {
            return Ok(());
        }
        let err = |what: &str| self.err(&format!("saving the changes: {what}"));
        let mut tx = self.pool.begin().await.map_err(err("begin"))?;
        for o in &ch.orders {
            sqlx::query(&format!(
                "INSERT INTO orders ({ORDER_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
                 ON CONFLICT (seq) DO UPDATE SET filled_qty = excluded.filled_qty, \
                 filled_notional = excluded.filled_notional, status = excluded.status, \
                 updated_at = excluded.updated_at, filled_at = excluded.filled_at, \
                 canceled_at = excluded.canceled_at"
            ))
            .bind(o.seq)
            .bind(&o.id)
            .bind(&o.client_order_id)
            .bind(&o.symbol)
            .bind(side_text(o.side))
            .bind(type_text(o.order_type))
            .bind(&o.time_in_force)
            .bind(o.qty.to_string())
            .bind(o.limit_price.map(|p| p.to_string()))
            .bind(o.filled_qty.to_string())
            .bind(o.filled_notional.to_string())
            .bind(o.status.as_str())
            .bind(&o.reject_reason)
            .bind(o.after.map(stamp))
            .bind(stamp(o.created_at))
            .bind(stamp(o.updated_at))
            .bind(o.filled_at.map(stamp))
            .bind(o.canceled_at.map(stamp))
            .execute(&mut *tx)
            .await
            .map_err(err("an order"))?;
        }
        for f in &ch.fills {
            sqlx::query(&format!(
                "INSERT INTO fills ({FILL_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .bind(f.seq)
            .bind(&f.id)
            .bind(&f.order_id)
            .bind(&f.symbol)
            .bind(side_text(f.side))
            .bind(f.qty.to_string())
            .bind(f.price.to_string())
            .bind(f.commission.to_string())
            .bind(f.cum_qty.to_string())
            .bind(f.leaves_qty.to_string())
            .bind(stamp(f.transaction_time))
            .execute(&mut *tx)
            .await
            .map_err(err("a fill"))?;
        }
        for p in &ch.positions {
            let q = if p.qty.is_zero() {
                sqlx::query("DELETE FROM positions WHERE symbol = ?1").bind(&p.symbol)
            } else {
                sqlx::query(
                    "INSERT INTO positions (symbol, qty, avg_entry_price) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (symbol) DO UPDATE SET qty = excluded.qty, \
                     avg_entry_price = excluded.avg_entry_price",
                )
                .bind(&p.symbol)
                .bind(p.qty.to_string())
                .bind(p.avg_entry_price.to_string())
            };
            q.execute(&mut *tx).await.map_err(err("a position"))?;
        }
        if let Some(cash) = ch.cash {
            sqlx::query("UPDATE account SET cash = ?1 WHERE id = 1")
                .bind(cash.to_string())
                .execute(&mut *tx)
                .await
                .map_err(err("the cash"))?;
        }
        if let Some(clock) = ch.clock {
            sqlx::query("UPDATE account SET clock = ?1 WHERE id = 1")
                .bind(stamp(clock))
                .execute(&mut *tx)
                .await
                .map_err(err("the clock"))?;
        }
        tx.commit().await.map_err(err("commit"))?;
        Ok(())
    }

    async fn one_order(&self, column: &str, value: &str) -> Result<Option<OrderRow>, BrokerError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {column} = ?1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading an order"))?;
        row.map(|r| self.order(&r)).transpose()
    }

    /// The order with the broker's id `id`.
    ///
    /// # Errors
    /// The read fails or the row cannot be understood.
    pub async fn order_by_id(&self, id: &str) -> Result<Option<OrderRow>, BrokerError> {
        self.one_order("id", id).await
    }

    /// The order with the client's id `id`.
    ///
    /// # Errors
    /// The read fails or the row cannot be understood.
    pub async fn order_by_client_id(&self, id: &str) -> Result<Option<OrderRow>, BrokerError> {
        self.one_order("client_order_id", id).await
    }

    /// The orders `q` asks for.
    ///
    /// # Errors
    /// The read fails or a row cannot be understood.
    pub async fn orders(&self, q: &OrderQuery) -> Result<Vec<OrderRow>, BrokerError> {
        let status = match q.status {
            StatusFilter::Open => "status IN ('new', 'partially_filled')",
            StatusFilter::Closed => "status NOT IN ('new', 'partially_filled')",
            StatusFilter::All => "1 = 1",
        };
        let symbols = if q.symbols.is_empty() {
            "1 = 1".to_string()
        } else {
            let marks: Vec<String> = (0..q.symbols.len())
                .map(|i| format!("?{}", i + 4))
                .collect();
            let marks = marks.join(", ");
            format!("symbol IN ({marks})")
        };
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {status} AND {symbols} \
             AND (?1 IS NULL OR created_at > ?1) AND (?2 IS NULL OR created_at < ?2) \
             ORDER BY seq {} LIMIT ?3",
            if q.ascending { "ASC" } else { "DESC" }
        );
        let mut query = sqlx::query(&sql)
            .bind(q.after.map(stamp))
            .bind(q.until.map(stamp))
            .bind(i64::from(q.limit));
        for s in &q.symbols {
            query = query.bind(s);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("listing orders"))?;
        rows.iter().map(|r| self.order(r)).collect()
    }

    /// The fills `q` asks for; `Ok(None)` when its page token is no fill's id.
    ///
    /// # Errors
    /// The read fails or a row cannot be understood.
    pub async fn fills(&self, q: &FillQuery) -> Result<Option<Vec<FillRow>>, BrokerError> {
        let from = match &q.page_token {
            None => None,
            Some(token) => {
                let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM fills WHERE id = ?1")
                    .bind(token)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.err("reading a page token"))?;
                match seq {
                    Some(s) => Some(s),
                    None => return Ok(None),
                }
            }
        };
        let (beyond, order) = if q.ascending {
            ("seq > ?1", "ASC")
        } else {
            ("seq < ?1", "DESC")
        };
        let sql = format!(
            "SELECT {FILL_COLUMNS} FROM fills WHERE (?1 IS NULL OR {beyond}) \
             AND (?2 IS NULL OR transaction_time > ?2) AND (?3 IS NULL OR transaction_time < ?3) \
             ORDER BY seq {order} LIMIT ?4"
        );
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(q.after.map(stamp))
            .bind(q.until.map(stamp))
            .bind(i64::from(q.page_size))
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("listing fills"))?;
        rows.iter()
            .map(|r| self.fill(r))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
