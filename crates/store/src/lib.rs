//! The durable store: one SQLite file in WAL mode, its schema kept by migrations.
//!
//! `vigil run` and the commands that read or change a running system's state (`vigil alerts
//! …`) open the same file; SQLite's WAL lets one process write while others read, and a
//! busy timeout makes a second writer wait instead of failing.
//!
//! What it holds today:
//! - the alert engine's state (active alerts, silences, the day's notices): [`Store::alert_state`]
//!   and [`Store::save_alert_state`];
//! - the notification log, append-only: [`Store::append_alert_log`], [`Store::alert_log`];
//! - the operator's requests (`ack`, `silence`, `unsilence`), applied once by the Monitor:
//!   [`Store::request`], [`Store::pending_requests`], [`Store::finish_request`];
//! - the execution journal (order intents before they are sent, the venue's answers, fills,
//!   positions and cash), written in groups by a [`Journal`] task;
//! - the control API's audit of operator commands, append-only:
//!   [`Store::begin_control_command`], [`Store::finish_control_command`],
//!   [`Store::control_audit`].
//!
//! Every call is async (sqlx); the SQLite work runs on sqlx's own worker thread, never on the
//! caller's.

mod alerts;
mod control;
mod journal;
mod trading;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use alerts::{AlertLogEntry, AlertLogQuery, AlertRequest, RequestKind, StoredAlertState};
pub use control::{AuditStart, ControlAuditEntry, NewControlCommand};
pub use journal::{
    Adjustment, Journal, JournalEntry, JournalFailure, JournalFill, JournalOrder, JournalRecovery,
    JournalStatus, JournalStopped, JournaledBook, JournaledOrder, RecordedFill,
};
pub use trading::SavedTradingState;

/// Why the store could not do what was asked. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its folder could not be created or opened.
    #[error("store {path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema could not be brought up to date.
    #[error("store {path}: migration failed: {source}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store {path}: {what}: {source}")]
    Query {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: sqlx::Error,
    },
    /// A stored row could not be read back (a bad timestamp, bad JSON).
    #[error("store {path}: {what}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which table and row.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// Opens (or creates, with its folder) the SQLite file at `path` the way every vigil
/// database is opened: WAL mode, full fsync, a 10 s busy timeout, foreign keys on. The
/// caller applies its own migrations.
///
/// # Errors
/// When the folder or file cannot be created or opened.
pub async fn open_sqlite(path: &Path) -> Result<SqlitePool, StoreError> {
    let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_err(Box::new(e)))?;
    }
    let opts = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| open_err(Box::new(e)))?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(|e| open_err(Box::new(e)))
}

/// An open store; cheap to clone (the connections are shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates, with its folder) the SQLite file at `path`, in WAL mode with full
    /// fsync, and applies any migration it lacks.
    ///
    /// # Errors
    /// When the folder or file cannot be created or opened, or a migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = open_sqlite(path).await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn query_err(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |source| StoreError::Query {
            path: self.path.clone(),
            what,
            source,
        }
    }

    fn corrupt(&self, what: String, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            detail: detail.to_string(),
        }
    }

    fn time(&self, what: impl FnOnce() -> String, text: &str) -> Result<DateTime<Utc>, StoreError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(what(), format!("bad time {text:?}: {e}")))
    }
}

/// A `LIMIT` for "at most `n` rows, 0: all".
fn sql_limit(n: u32) -> i64 {
    if n == 0 { i64::MAX } else { i64::from(n) }
}

/// RFC 3339 with milliseconds, in UTC: sorts as text in time order.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
