//! The durable store: the alert state, the notification log, the operator's requests, the
//! control audit, the trading state and the execution journal, behind one trait,
//! [`StateStore`], with two backends:
//! - [`Store`], one SQLite file in WAL mode with full fsync (`store.path`, the default). `vigil
//!   run` and the commands that read or change a running system's state (`vigil alerts …`)
//!   open the same file; SQLite's WAL lets one process write while others read, and a busy
//!   timeout makes a second writer wait instead of failing.
//! - [`PgStore`], a PostgreSQL database (`store.url`), with `synchronous_commit = on`.
//!
//! [`open_store`] opens the configured one as a [`SharedStore`]. Each backend keeps its
//! schema by migrations (`migrations/`, `migrations-pg/`: the same tables and columns; money
//! and times are TEXT in both, so that every figure reads back exactly as written), and both
//! run the same SQL (see `backend.rs`).
//!
//! What it holds:
//! - the alert engine's state (active alerts, silences, the day's notices):
//!   [`StateStore::alert_state`] and [`StateStore::save_alert_state`];
//! - the notification log, append-only: [`StateStore::append_alert_log`],
//!   [`StateStore::alert_log`];
//! - the operator's requests (`ack`, `silence`, `unsilence`), applied once by the Monitor:
//!   [`StateStore::request`], [`StateStore::pending_requests`],
//!   [`StateStore::finish_request`];
//! - the execution journal (order intents before they are sent, the venue's answers, fills,
//!   positions and cash), written in groups by a [`Journal`] task;
//! - the control API's audit of operator commands, append-only:
//!   [`StateStore::begin_control_command`], [`StateStore::finish_control_command`],
//!   [`StateStore::control_audit`];
//! - whether vigil ran with it before: its identity ([`StateStore::record_start`]), the
//!   journal's high-water marks ([`StateStore::journal_history`]), the rebuilds from the
//!   broker ([`StateStore::record_rebuild`]), and the identity file beside it
//!   ([`IdentityFile`]); see `identity.rs`. [`open_store_checked`] runs the database's
//!   integrity check first;
//! - the log chain's anchors, append-only (older ones thinned): [`StateStore::anchor_log`],
//!   [`StateStore::log_anchors`], [`StateStore::log_chains`],
//!   [`StateStore::thin_log_anchors`];
//! - the backtests run on each model, append-only, for the deflated Sharpe ratio's trial
//!   count: [`StateStore::record_backtest`]; and each run's report with its page:
//!   [`StateStore::record_backtest_report`], [`StateStore::backtest_reports`],
//!   [`StateStore::backtest_report_page`];
//! - the drills run against a running stack, append-only: [`StateStore::record_drill`],
//!   [`StateStore::drill_runs_since`];
//! - the model registry: each registered version, the aliases and the audit of every
//!   change, changed whole by [`StateStore::registry_apply`] (see `registry.rs`);
//!   the releases, changed with it, and each shadow run's figures per session.
//!
//! Every call is async (sqlx); the SQLite work runs on sqlx's own worker thread, never on the
//! caller's.

mod alerts;
mod anchors;
mod backend;
mod backtests;
mod control;
mod drills;
mod fix;
mod identity;
mod journal;
mod pg;
mod registry;
mod trading;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use vigil_config::StoreConfig;

pub use alerts::{AlertLogEntry, AlertLogQuery, AlertRequest, RequestKind, StoredAlertState};
pub use anchors::{LogAnchor, LogAnchorKind};
pub use backtests::BacktestReport;
pub use control::{AuditStart, ControlAuditEntry, NewControlCommand};
pub use drills::DrillRun;
pub use fix::{FixExecution, FixSentMessage, FixSequences};
pub use identity::{
    BookHistory, IDENTITY_NOTE, IdentityBook, IdentityError, IdentityFile, JournalRebuild,
    StoreFile, StoreIdentity, after_open, before_open, identity_file, new_install_id,
};
pub use journal::{
    Adjustment, CHECKPOINT_EVERY_FILLS, Journal, JournalCheckpoint, JournalCounts, JournalEntry,
    JournalFailure, JournalFill, JournalOrder, JournalRecovery, JournalStatus, JournalStopped,
    JournaledBook, JournaledOrder, RecordedFill, fill_cash_flow,
};
pub use pg::{PgStore, PgTestSchema};
pub use registry::{
    ModelAudit, ModelEntry, ModelRelease, ModelStatus, RegistryWrite, ReleaseState,
    ShadowSessionRow,
};
pub use trading::SavedTradingState;

/// Why the store could not do what was asked. Every variant names the store: its file, or
/// its URL without the password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its folder, or the database, could not be created, opened or reached.
    #[error("store {location}: cannot open: {source}")]
    Open {
        /// The file, or the URL without the password.
        location: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema could not be brought up to date.
    #[error("store {location}: migration failed: {source}")]
    Migrate {
        /// The file, or the URL without the password.
        location: String,
        /// Why.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store {location}: {what}: {source}")]
    Query {
        /// The file, or the URL without the password.
        location: String,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: sqlx::Error,
    },
    /// The database's own integrity check found damage (SQLite's `PRAGMA quick_check`).
    #[error(
        "store {location}: the integrity check failed; the file was left as it is:\n  {}",
        report.join("\n  ")
    )]
    Integrity {
        /// The file.
        location: String,
        /// The check's first lines.
        report: Vec<String>,
    },
    /// A stored row could not be read back (a bad timestamp, bad JSON).
    #[error("store {location}: {what}: {detail}")]
    Corrupt {
        /// The file, or the URL without the password.
        location: String,
        /// Which table and row.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// Every operation the rest of vigil asks of its durable store, whichever the backend.
///
/// Used as a [`SharedStore`] (`Arc<dyn StateStore>`): one handle, cloned cheaply, shared by
/// the agents, the control server and the commands. Both implementations ([`Store`],
/// [`PgStore`]) pass the same conformance suite (`crates/store/tests/backends.rs`).
#[async_trait]
pub trait StateStore: std::fmt::Debug + Send + Sync {
    /// Where the store is, for messages: the SQLite file, or the PostgreSQL URL without its
    /// password.
    fn location(&self) -> &str;

    /// The SQLite file, when the store is one (`None`: a database server).
    fn file(&self) -> Option<&Path>;

    /// Closes every connection (for SQLite, checkpointing the WAL).
    async fn close(&self);

    /// The alert engine's state as last saved, if ever.
    ///
    /// # Errors
    /// When the query fails or the saved time is unreadable.
    async fn alert_state(&self) -> Result<Option<StoredAlertState>, StoreError>;

    /// Replaces the alert engine's saved state.
    ///
    /// # Errors
    /// When the write fails.
    async fn save_alert_state(&self, state: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Appends lines to the notification log, in one transaction.
    ///
    /// # Errors
    /// When the write fails (nothing is written then).
    async fn append_alert_log(&self, entries: &[AlertLogEntry]) -> Result<(), StoreError>;

    /// Reads the notification log, oldest first.
    ///
    /// # Errors
    /// When the query fails or a row is unreadable.
    async fn alert_log(&self, q: &AlertLogQuery) -> Result<Vec<AlertLogEntry>, StoreError>;

    /// Records an operator's request; returns its number.
    ///
    /// # Errors
    /// When the write fails.
    async fn request(
        &self,
        at: DateTime<Utc>,
        who: &str,
        kind: RequestKind,
        body: &serde_json::Value,
    ) -> Result<i64, StoreError>;

    /// The requests not applied yet, oldest first.
    ///
    /// # Errors
    /// When the query fails or a row is unreadable.
    async fn pending_requests(&self) -> Result<Vec<AlertRequest>, StoreError>;

    /// One request, applied or not.
    ///
    /// # Errors
    /// When the query fails or the row is unreadable.
    async fn request_by_seq(&self, seq: i64) -> Result<Option<AlertRequest>, StoreError>;

    /// Marks request `seq` applied, with its result (a request is applied once: a second
    /// result does not overwrite the first).
    ///
    /// # Errors
    /// When the write fails.
    async fn finish_request(
        &self,
        seq: i64,
        at: DateTime<Utc>,
        ok: bool,
        result: &str,
    ) -> Result<(), StoreError>;

    /// Records a control command before it is carried out. With a request id already
    /// recorded, it writes nothing and returns the earlier row.
    ///
    /// # Errors
    /// When the write or the read fails.
    async fn begin_control_command(
        &self,
        cmd: &NewControlCommand,
    ) -> Result<AuditStart, StoreError>;

    /// Completes audit row `seq` with the answer: `text` is the outcome when `ok`, else the
    /// error. A row is answered once: a second answer does not overwrite the first.
    ///
    /// # Errors
    /// When the write fails.
    async fn finish_control_command(
        &self,
        seq: i64,
        at: DateTime<Utc>,
        ok: bool,
        status: u16,
        text: &str,
    ) -> Result<(), StoreError>;

    /// The newest `limit` rows of the control audit (0: all), oldest first.
    ///
    /// # Errors
    /// When the query fails or a row is unreadable.
    async fn control_audit(&self, limit: u32) -> Result<Vec<ControlAuditEntry>, StoreError>;

    /// The trading state last saved, if any.
    ///
    /// # Errors
    /// When the read fails or the saved row cannot be understood.
    async fn trading_state(&self) -> Result<Option<SavedTradingState>, StoreError>;

    /// Replaces the saved trading state.
    ///
    /// # Errors
    /// When the write fails.
    async fn save_trading_state(&self, saved: &SavedTradingState) -> Result<(), StoreError>;

    /// Writes `entries` for `book` in one transaction, at wall time `at`.
    ///
    /// The position and cash a fill leaves are not written one fill at a time: the last of
    /// each symbol's positions and the last cash are written once, before the next entry
    /// that reads or writes the book's cash or positions (an opening, an adjustment, a
    /// mark) and at the end. The transaction leaves the same rows, with one statement per
    /// fill instead of three.
    ///
    /// A fill id is unique per book: journaling one again fails the whole transaction
    /// (`journaling a fill`), and nothing of it is kept.
    ///
    /// # Errors
    /// When the transaction fails; nothing of it is kept then.
    async fn journal(
        &self,
        book: &str,
        entries: &[JournalEntry],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Everything recovery needs of `book`: the book, its opening cash and adjustments, the
    /// last bar handled, its last checkpoint and every fill after it, and the orders that
    /// may be open. What it reads does not grow with the book's history: the fills before
    /// the checkpoint are summed there.
    ///
    /// # Errors
    /// When a read fails or a row cannot be understood.
    async fn journal_recovery(&self, book: &str) -> Result<JournalRecovery, StoreError>;

    /// Writes a checkpoint of `book` at wall time `at` through its last fill and order,
    /// summing the fills since the previous one, and returns the checkpoint in force
    /// (the previous one when nothing was journaled since; `None` for a book with neither
    /// fills nor orders). One book's journal has one writer: rows are only ever appended,
    /// so the rows a checkpoint covers never change.
    ///
    /// # Errors
    /// When a read or the write fails, or a fill row cannot be understood: nothing is
    /// written then.
    async fn journal_checkpoint(
        &self,
        book: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<JournalCheckpoint>, StoreError>;

    /// The orders and fills `book`'s journal holds, counted from its last checkpoint.
    ///
    /// # Errors
    /// When a read fails or a row cannot be understood.
    async fn journal_counts(&self, book: &str) -> Result<JournalCounts, StoreError>;

    /// Of the venue's fill ids `ids`, those `book`'s journal holds.
    ///
    /// # Errors
    /// When the read fails.
    async fn journal_known_fills(
        &self,
        book: &str,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError>;

    /// The orders of `book` that are, or may be, open at the venue (intents the venue never
    /// answered included), oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn journal_open_orders(&self, book: &str) -> Result<Vec<JournaledOrder>, StoreError>;

    /// The client order ids of every order `book`'s journal holds, whatever its status,
    /// in the order journaled.
    ///
    /// # Errors
    /// When the read fails.
    async fn journal_order_ids(&self, book: &str) -> Result<Vec<String>, StoreError>;

    /// The book's cash, positions (by symbol) and fill count as journaled.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn journal_book(&self, book: &str) -> Result<JournaledBook, StoreError>;

    /// The books the journal holds, oldest first.
    ///
    /// # Errors
    /// When the read fails.
    async fn journal_books(&self) -> Result<Vec<String>, StoreError>;

    /// Appends log chain anchors, in one transaction, in order.
    ///
    /// # Errors
    /// When the write fails (nothing is written then).
    async fn anchor_log(&self, anchors: &[LogAnchor]) -> Result<(), StoreError>;

    /// The anchors of `chain`, in the order they were recorded.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn log_anchors(&self, chain: &str) -> Result<Vec<LogAnchor>, StoreError>;

    /// Every chain anchored, in the order first anchored.
    ///
    /// # Errors
    /// When the read fails.
    async fn log_chains(&self) -> Result<Vec<String>, StoreError>;

    /// Records a backtest of model `model` (its name), version `version`, on data of hash
    /// `data_sha256`, run by `command` (`backtest`, `gate`) at `at`; returns how many
    /// backtests of that model name the store now holds, this one included.
    ///
    /// # Errors
    /// When the write or the count fails.
    async fn record_backtest(
        &self,
        model: &str,
        version: &str,
        data_sha256: &str,
        command: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Records the report of a `vigil backtest` or `vigil gate` run with its page (HTML);
    /// returns the report's id.
    ///
    /// # Errors
    /// When the write fails.
    async fn record_backtest_report(
        &self,
        report: &BacktestReport,
        page: &str,
    ) -> Result<u64, StoreError>;

    /// The newest `limit` backtest reports (without their pages) with their ids, newest
    /// first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn backtest_reports(&self, limit: u64) -> Result<Vec<(u64, BacktestReport)>, StoreError>;

    /// The page of backtest report `id`, if there is one.
    ///
    /// # Errors
    /// When the read fails.
    async fn backtest_report_page(&self, id: u64) -> Result<Option<String>, StoreError>;

    /// Records a `vigil drill` run.
    ///
    /// # Errors
    /// When the write fails.
    async fn record_drill(&self, run: &DrillRun) -> Result<(), StoreError>;

    /// The drill runs that finished at or after `since`, oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn drill_runs_since(&self, since: DateTime<Utc>) -> Result<Vec<DrillRun>, StoreError>;

    /// FIX session `session`'s sequence numbers (`None`: a session never started here).
    ///
    /// # Errors
    /// When the read fails or the row cannot be understood.
    async fn fix_sequences(&self, session: &str) -> Result<Option<FixSequences>, StoreError>;

    /// Sets FIX session `session`'s sequence numbers at `at` (the session begins here when
    /// it has no row yet).
    ///
    /// # Errors
    /// When the write fails.
    async fn fix_set_sequences(
        &self,
        session: &str,
        next_sender: u64,
        next_target: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Keeps `message`, sent by FIX session `session`, and moves its next sender sequence
    /// number to `next_sender`, in one transaction: a message on the wire is always one the
    /// counterparty can ask for again. A message with the same sequence number is replaced.
    ///
    /// # Errors
    /// When the write fails (neither is kept), or the session has no row
    /// ([`Self::fix_set_sequences`] first).
    async fn fix_sent(
        &self,
        session: &str,
        message: &FixSentMessage,
        next_sender: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The messages FIX session `session` sent with sequence numbers `begin..=end`, in order,
    /// at most `limit` (a ResendRequest's range; the numbers missing were not kept: admin
    /// messages, which a resend gap-fills).
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn fix_sent_range(
        &self,
        session: &str,
        begin: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<FixSentMessage>, StoreError>;

    /// Resets FIX session `session` at `at`: its sent messages are dropped and its sequence
    /// numbers set, in one transaction (a SequenceReset or a logon with ResetSeqNumFlag).
    ///
    /// # Errors
    /// When the write fails (nothing changes).
    async fn fix_reset(
        &self,
        session: &str,
        next_sender: u64,
        next_target: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Keeps `execution`, received by FIX session `session`, unless one with its ExecID is
    /// kept already: returns its ordinal when it is new, `None` for a duplicate (a resend).
    ///
    /// # Errors
    /// When the write fails (nothing is kept).
    async fn fix_execution(
        &self,
        session: &str,
        execution: &FixExecution,
    ) -> Result<Option<u64>, StoreError>;

    /// The executions FIX session `session` received after ordinal `after` (0: all), in
    /// order of arrival.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn fix_executions(
        &self,
        session: &str,
        after: u64,
    ) -> Result<Vec<FixExecution>, StoreError>;

    /// The registered versions of model `name` (of every model when `None`), oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn registry_entries(&self, name: Option<&str>) -> Result<Vec<ModelEntry>, StoreError>;

    /// Model `name`'s aliases, `(alias, version)`, by alias.
    ///
    /// # Errors
    /// When the read fails.
    async fn registry_aliases(&self, name: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Model `name`'s registry audit, oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn registry_audit(&self, name: &str) -> Result<Vec<ModelAudit>, StoreError>;

    /// Applies one registry change whole, in one transaction (nothing of it when it fails:
    /// a version registered twice is refused by the database).
    ///
    /// # Errors
    /// When the write fails.
    async fn registry_apply(&self, write: &RegistryWrite) -> Result<(), StoreError>;

    /// Model `name`'s releases, oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn releases(&self, name: &str) -> Result<Vec<ModelRelease>, StoreError>;

    /// A release's shadow figures, by session.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn shadow_sessions(&self, release_id: i64) -> Result<Vec<ShadowSessionRow>, StoreError>;

    /// Writes sessions' shadow figures in one transaction, each replacing what was written
    /// for its session before.
    ///
    /// # Errors
    /// When the write fails (nothing of it is kept).
    async fn save_shadow_sessions(&self, rows: &[ShadowSessionRow]) -> Result<(), StoreError>;

    /// Thins the flush anchors taken before `before` to the last of each chain, file and
    /// hour (start and stop anchors all stay); returns how many were removed.
    ///
    /// # Errors
    /// When the write fails.
    async fn thin_log_anchors(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The database's integrity check: empty when it passed, else its first lines (at most
    /// [`INTEGRITY_REPORT_LINES`]). SQLite: `PRAGMA quick_check`, every page and row read
    /// and checked. PostgreSQL has no such check: every table of the store is read in full
    /// (which fails on a damaged page when the cluster has data checksums) and the server's
    /// own checks are the operator's (see docs/recovery.md).
    ///
    /// # Errors
    /// When the check cannot be run at all.
    async fn check_integrity(&self) -> Result<Vec<String>, StoreError>;

    /// The store's identity, if it has been given one (see [`StoreIdentity`]).
    ///
    /// # Errors
    /// When the read fails or the row cannot be understood.
    async fn identity(&self) -> Result<Option<StoreIdentity>, StoreError>;

    /// Counts a start at wall time `at`: gives the store `install_id` as its identity when
    /// it has none (an identity, once given, is never replaced), adds one to its starts.
    /// Returns the identity as it now stands.
    ///
    /// # Errors
    /// When the write or the read fails.
    async fn record_start(
        &self,
        install_id: &str,
        at: DateTime<Utc>,
    ) -> Result<StoreIdentity, StoreError>;

    /// Every book the journal ever held, by name: what it holds now and its high-water
    /// mark (the most it ever held), for telling a journal that lost rows.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn journal_history(&self) -> Result<Vec<BookHistory>, StoreError>;

    /// Records a rebuild of `book`'s journal from the broker at wall time `at`, why, and
    /// what it found; returns its number.
    ///
    /// # Errors
    /// When the write fails.
    async fn record_rebuild(
        &self,
        book: &str,
        at: DateTime<Utc>,
        reason: &str,
        summary: &str,
    ) -> Result<i64, StoreError>;

    /// Every rebuild recorded, oldest first.
    ///
    /// # Errors
    /// When the read fails or a row cannot be understood.
    async fn journal_rebuilds(&self) -> Result<Vec<JournalRebuild>, StoreError>;
}

/// At most this many lines of a failed integrity check are kept.
pub const INTEGRITY_REPORT_LINES: usize = 10;

/// A store of either backend, shared: cloning it clones an `Arc`, and both backends' pools
/// are shared by their clones anyway.
pub type SharedStore = Arc<dyn StateStore>;

/// Opens the store `[store]` configures: the PostgreSQL database at `store.url` when it is
/// set (`store.path` is not used then), else the SQLite file at `store.path`. Missing
/// migrations are applied either way.
///
/// # Errors
/// When the store cannot be opened or reached, or a migration fails; the error names the
/// file, or the URL without its password.
pub async fn open_store(cfg: &StoreConfig) -> Result<SharedStore, StoreError> {
    Ok(match &cfg.url {
        Some(url) => Arc::new(PgStore::open(url.expose()).await?),
        None => Arc::new(Store::open(&cfg.path).await?),
    })
}

/// Opens the store as [`open_store`] does, and runs its integrity check
/// ([`StateStore::check_integrity`]) before anything else is done with it: for SQLite,
/// before any migration writes to the file.
///
/// # Errors
/// As [`open_store`]; [`StoreError::Integrity`] when the check finds damage (the store is
/// closed then, and the file left as it is).
pub async fn open_store_checked(cfg: &StoreConfig) -> Result<SharedStore, StoreError> {
    Ok(match &cfg.url {
        Some(url) => {
            let store = PgStore::open(url.expose()).await?;
            let report = store.integrity_report().await?;
            if !report.is_empty() {
                store.close().await;
                return Err(StoreError::Integrity {
                    location: store.location().to_string(),
                    report,
                });
            }
            Arc::new(store)
        }
        None => Arc::new(Store::open_checked(&cfg.path).await?),
    })
}

/// Opens (or creates, with its folder) the SQLite file at `path` the way every vigil
/// database is opened: WAL mode, full fsync, a 10 s busy timeout, foreign keys on. The
/// caller applies its own migrations.
///
/// # Errors
/// When the folder or file cannot be created or opened.
pub async fn open_sqlite(path: &Path) -> Result<SqlitePool, StoreError> {
    let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
        location: path.display().to_string(),
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

/// The SQLite backend: one file; cheap to clone (the connections are shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    /// The path as text, for messages.
    location: String,
}

impl Store {
    /// Opens (or creates, with its folder) the SQLite file at `path`, in WAL mode with full
    /// fsync, and applies any migration it lacks.
    ///
    /// # Errors
    /// When the folder or file cannot be created or opened, or a migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, false).await
    }

    /// Opens the file as [`Store::open`] does, after SQLite's integrity check
    /// (`PRAGMA quick_check`) has passed: a damaged file is closed again before any
    /// migration writes to it.
    ///
    /// # Errors
    /// As [`Store::open`]; [`StoreError::Integrity`] with the check's first lines.
    pub async fn open_checked(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, true).await
    }

    async fn open_with(path: &Path, check: bool) -> Result<Self, StoreError> {
        let pool = open_sqlite(path).await?;
        let location = path.display().to_string();
        let store = Self {
            pool,
            path: path.to_path_buf(),
            location,
        };
        if check {
            let report = store.integrity_report().await?;
            if !report.is_empty() {
                store.pool.close().await;
                return Err(StoreError::Integrity {
                    location: store.location,
                    report,
                });
            }
        }
        sqlx::migrate!("./migrations")
            .run(&store.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                location: store.location.clone(),
                source,
            })?;
        Ok(store)
    }

    /// `PRAGMA quick_check`'s lines other than `ok`, at most [`INTEGRITY_REPORT_LINES`]. A
    /// file too damaged for the check to run is a report of its error.
    async fn integrity_report(&self) -> Result<Vec<String>, StoreError> {
        use futures_util::StreamExt as _;
        use sqlx::Row as _;
        let query = format!("PRAGMA quick_check({INTEGRITY_REPORT_LINES})");
        let mut rows = sqlx::query(&query).fetch(&self.pool);
        let mut report = Vec::new();
        // Row by row: a check that stops on damage it cannot read past has said where first.
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => report.extend(
                    row.get::<String, _>(0)
                        .lines()
                        .filter(|line| *line != "ok")
                        .map(str::to_string),
                ),
                // SQLITE_CORRUPT / SQLITE_NOTADB: the check could read no further.
                Err(sqlx::Error::Database(e)) => {
                    report.push(e.to_string());
                    break;
                }
                Err(source) => {
                    return Err(StoreError::Query {
                        location: self.location.clone(),
                        what: "running the integrity check",
                        source,
                    });
                }
            }
        }
        report.truncate(INTEGRITY_REPORT_LINES);
        Ok(report)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

backend::sql_backend!(
    Store,
    row = sqlx::sqlite::SqliteRow,
    conn = sqlx::SqliteConnection,
    insertion_order = "rowid"
);

/// A `LIMIT` for "at most `n` rows, 0: all".
fn sql_limit(n: u32) -> i64 {
    if n == 0 { i64::MAX } else { i64::from(n) }
}

/// RFC 3339 with milliseconds, in UTC: sorts as text in time order.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
