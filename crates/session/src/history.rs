//! Whether vigil has run before, at the start of `vigil run`: a store that lost its history
//! is never a fresh start (see docs/recovery.md, "A store that lost its history").
//!
//! In order:
//! 1. [`open_store`]: the store file is looked at before it is opened (opening a SQLite
//!    file creates it), with the identity file beside it; a missing or empty file that the
//!    identity file says vigil ran with is refused there, without creating anything. The
//!    store is opened with its integrity check (SQLite's `quick_check`, before any
//!    migration); its identity and each broker book's journal are compared with the
//!    identity file and the high-water marks.
//! 2. [`Opened::evidence`]: when the journal does not know the broker's book (or a rebuild
//!    was asked for), the log and the broker are asked what they remember: a log that shows
//!    vigil reconciling this book, a broker that holds fills, open orders of vigil's or any
//!    position.
//! 3. [`Opened::settle`], once the session's log is open: any finding refuses the start
//!    (`store_history_lost`, exit 3), unless the operator asked for
//!    `--rebuild-journal-from-broker` (`journal_rebuilt`); then the start is counted in the
//!    store and the identity file is written.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_config::VigilConfig;
use vigil_core::{ClientOrderId, Level, SymbolTable, Timestamp, TraceId};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_providers::ExecutionVenue;
use vigil_recovery::{Rebuild, VenueHistory, rebuild_journal, venue_history};
use vigil_store::{
    BookHistory, IDENTITY_NOTE, IdentityBook, IdentityFile, SharedStore, StoreError, StoreFile,
    StoreIdentity,
};

use crate::session::SystemError;

/// The book of a broker that outlives the process: `broker:<broker_url>`.
/// For a FIX gateway, `broker:fix://<address>/<SenderCompID>-><TargetCompID>`.
pub(crate) fn broker_book(cfg: &VigilConfig) -> String {
    let e = &cfg.execution;
    match e.venue {
        vigil_config::VenueKind::Fix => format!(
            "broker:fix://{}/{}->{}",
            e.fix.address.as_deref().unwrap_or_default(),
            e.fix.sender_comp_id.as_deref().unwrap_or_default(),
            e.fix.target_comp_id.as_deref().unwrap_or_default()
        ),
        _ => format!("broker:{}", e.broker_url.as_deref().unwrap_or_default()),
    }
}

/// Only books of a venue that outlives the process are kept and checked: the in-process
/// paper venue starts a new book every session.
fn kept(book: &str) -> bool {
    book.starts_with("broker:")
}

/// The refusal: what is lost, and how to recover.
fn refusal(location: &str, lost: &[String], recover: &str) -> SystemError {
    SystemError::History(format!(
        "the store {location} lost its history; vigil refuses to start: nothing was sent and \
         nothing was changed.\n  - {}\nTo recover: {recover}\nSee docs/recovery.md, \"A store \
         that lost its history\".",
        lost.join("\n  - ")
    ))
}

/// How to recover, for this venue.
fn recovery(external: bool, identity_path: &Path) -> String {
    let path = identity_path.display();
    if external {
        format!(
            "restore the store from its latest backup (together with its identity file \
             {path}) and start again; or run `vigil run --rebuild-journal-from-broker` once: \
             the journal is rebuilt from the broker (cash, positions, open orders and the \
             fills it holds) and the session resumes after the latest decision that the \
             journal, the broker, the log or the identity file remember, so that nothing past \
             is decided or sent again. If this is the first start against an account that \
             already holds positions, the rebuild is also how vigil takes them over."
        )
    } else {
        format!(
            "restore the store from its latest backup (together with its identity file \
             {path}) and start again. The in-process paper venue keeps nothing across \
             sessions: to start afresh on purpose (a new store, the breaker and the alerts \
             forgotten), move the identity file {path} aside first."
        )
    }
}

/// The store, opened for a session, and what was found lost so far.
pub(crate) struct Opened {
    /// The store, integrity-checked and migrated.
    pub(crate) store: SharedStore,
    lost: Vec<String>,
    identity_path: PathBuf,
    file: Option<IdentityFile>,
    stored: Option<StoreIdentity>,
    books: Vec<BookHistory>,
    external: bool,
    rebuild: bool,
}

/// What the log remembers of a book.
#[derive(Debug, Default)]
struct LogMemory {
    /// Reconciliations of the book (one at every start against it, and more).
    reconciliations: u64,
    /// The last one's time, as logged.
    last: Option<String>,
    /// The latest `resume_after` a start logged.
    resume_after: Option<Timestamp>,
    /// The latest decision of an order submitted in a session against the book.
    last_decision: Option<Timestamp>,
    /// Lines that were not JSON (cut short by a crash, or damaged), skipped.
    unreadable: u64,
}

/// What the log and the broker remember, gathered before the session's log is opened.
pub(crate) struct Evidence {
    venue: Option<VenueHistory>,
    log: LogMemory,
}

/// Reads the log folder `dir` for what it remembers of `book`. Tolerant: a line that is not
/// JSON is counted and skipped (the log's own verification is `vigil logs verify`).
fn read_log(dir: &Path, book: &str) -> Result<LogMemory, SystemError> {
    use std::io::BufRead as _;
    let files = vigil_log::list_log_files(dir).map_err(|e| {
        SystemError::Runtime(format!("cannot list the log folder {}: {e}", dir.display()))
    })?;
    let mut memory = LogMemory::default();
    let mut against_book = false;
    for file in files {
        let reader = std::fs::File::open(&file.path)
            .map(std::io::BufReader::new)
            .map_err(|e| {
                SystemError::Runtime(format!("cannot read {}: {e}", file.path.display()))
            })?;
        for line in reader.lines() {
            let line = line.map_err(|e| {
                SystemError::Runtime(format!("cannot read {}: {e}", file.path.display()))
            })?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                memory.unreadable += 1;
                continue;
            };
            match v["event"].as_str() {
                Some("session_started") => against_book = false,
                Some("reconciliation_completed") if v["data"]["book"] == book => {
                    memory.reconciliations += 1;
                    memory.last = v["timestamp"].as_str().map(str::to_string);
                    let resume = v["data"]["resume_after"]
                        .as_str()
                        .and_then(|t| t.parse::<Timestamp>().ok());
                    memory.resume_after = memory.resume_after.max(resume);
                    if v["data"]["trigger"] == "start" {
                        against_book = true;
                    }
                }
                Some("order_submitted") if against_book => {
                    let decided = v["trace_id"]
                        .as_str()
                        .and_then(|t| TraceId::from(t).decided_at())
                        .or_else(|| {
                            v["data"]["order_id"]
                                .as_str()
                                .and_then(|id| ClientOrderId::from(id).decided_at())
                        });
                    memory.last_decision = memory.last_decision.max(decided);
                }
                _ => {}
            }
        }
    }
    Ok(memory)
}

/// Opens the store `cfg` configures for a session (see the module's documentation, step 1).
///
/// # Errors
/// [`SystemError::History`] when the store lost its history before it could be opened (a
/// missing or empty file the identity file knows; unless `rebuild`), when the integrity
/// check fails, or when the identity file cannot be read; [`SystemError::Store`] when the
/// store cannot be opened or read.
pub(crate) async fn open_store(cfg: &VigilConfig, rebuild: bool) -> Result<Opened, SystemError> {
    let external = cfg.execution.venue.is_external();
    let identity_path = vigil_store::identity_file(&cfg.store, &cfg.log.dir);
    let location = match &cfg.store.url {
        Some(url) => vigil_config::redact_url(url.expose()),
        None => cfg.store.path.display().to_string(),
    };
    let io = |e: vigil_store::IdentityError| {
        refusal(
            &location,
            &[e.to_string()],
            &recovery(external, &identity_path),
        )
    };
    let file = IdentityFile::read(&identity_path).map_err(io)?;
    let state = StoreFile::inspect(&cfg.store).map_err(io)?;
    let mut lost = vigil_store::before_open(&location, state, &identity_path, file.as_ref());
    let rebuilding = rebuild && external;
    if !lost.is_empty() && !rebuilding {
        // Refused before opening: opening would create an empty file in its place.
        return Err(refusal(
            &location,
            &lost,
            &recovery(external, &identity_path),
        ));
    }
    let store = match vigil_store::open_store_checked(&cfg.store).await {
        Ok(store) => store,
        Err(StoreError::Integrity { location, report }) => {
            return Err(SystemError::History(format!(
                "the store {location} failed its integrity check; vigil refuses to start: \
                 nothing was sent, and the file was left as it is. The check's first lines:\n  \
                 {}\nTo recover: keep the damaged file for a look (move it aside with its -wal \
                 and -shm files) and restore the store from its latest backup; or, with a \
                 broker, move it aside and run `vigil run --rebuild-journal-from-broker` to \
                 rebuild the journal into a new file. See docs/recovery.md, \"A store that \
                 lost its history\".",
                report.join("\n  ")
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let stored = store.identity().await?;
    let books: Vec<BookHistory> = store
        .journal_history()
        .await?
        .into_iter()
        .filter(|b| kept(&b.book))
        .collect();
    let mut file_books = file.clone();
    if let Some(f) = &mut file_books {
        f.books.retain(|name, _| kept(name));
    }
    lost.extend(vigil_store::after_open(
        store.location(),
        stored.as_ref(),
        &identity_path,
        file_books.as_ref(),
        &books,
    ));
    Ok(Opened {
        store,
        lost,
        identity_path,
        file,
        stored,
        books,
        external,
        rebuild,
    })
}

impl Opened {
    /// The journal knows `book`: it has its opening row, an order or a fill.
    fn knows(&self, book: &str) -> bool {
        self.books
            .iter()
            .any(|b| b.book == book && (b.opened || b.orders > 0 || b.fills > 0))
    }

    /// Step 2: what the log and the broker remember, when the journal does not know the
    /// broker's book or a rebuild was asked for. Nothing for the in-process paper venue.
    ///
    /// # Errors
    /// When the log folder or the broker cannot be read.
    pub(crate) async fn evidence(
        &mut self,
        cfg: &VigilConfig,
        venue: &dyn ExecutionVenue,
        symbols: &SymbolTable,
    ) -> Result<Evidence, SystemError> {
        let book = broker_book(cfg);
        if !self.external || (self.knows(&book) && !self.rebuild) {
            return Ok(Evidence {
                venue: None,
                log: LogMemory::default(),
            });
        }
        let log = read_log(&cfg.log.dir, &book)?;
        let history = venue_history(venue)
            .await
            .map_err(|e| SystemError::Venue(format!("{e}; nothing was traded")))?;
        if !self.knows(&book) {
            if log.reconciliations > 0 {
                self.lost.push(format!(
                    "the journal does not know book {book}, but the log in {} shows vigil \
                     reconciled it {} time(s), the last at {}{}",
                    cfg.log.dir.display(),
                    log.reconciliations,
                    log.last.as_deref().unwrap_or("?"),
                    log.resume_after.map_or_else(String::new, |t| format!(
                        " (resuming after {})",
                        t.to_rfc3339()
                    ))
                ));
            }
            if let Some(past) = history.past(symbols) {
                self.lost
                    .push(format!("the journal does not know book {book}, but {past}"));
            }
        }
        Ok(Evidence {
            venue: Some(history),
            log,
        })
    }

    /// Step 3, with the session's log open: refuses on any finding unless a rebuild was
    /// asked for (and then rebuilds), counts the start and writes the identity file.
    /// Returns what keeps the identity file up to date at the session's end, and the
    /// rebuild when one was made.
    ///
    /// # Errors
    /// [`SystemError::History`] on a refusal (logged as `store_history_lost`), when a
    /// rebuild was asked for with nothing lost or no broker, or when the identity file
    /// cannot be written; [`SystemError::Store`] or [`SystemError::Venue`] when the rebuild
    /// cannot read or write what it needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn settle(
        self,
        cfg: &VigilConfig,
        evidence: Evidence,
        venue: &dyn ExecutionVenue,
        symbols: &SymbolTable,
        at: DateTime<Utc>,
        stamp: Timestamp,
        log: &mut LogBuffer,
    ) -> Result<(Keeper, Option<Rebuild>), SystemError> {
        let location = self.store.location().to_string();
        let recover = recovery(self.external, &self.identity_path);
        let book = broker_book(cfg);
        if self.lost.is_empty() && self.rebuild {
            return Err(SystemError::History(format!(
                "--rebuild-journal-from-broker: the store {location} has lost nothing \
                 (its identity, the identity file {}, the journal's high-water marks, the log \
                 and the broker agree): there is nothing to rebuild. Start without it.",
                self.identity_path.display()
            )));
        }
        let mut rebuilt = None;
        if !self.lost.is_empty() {
            if !self.rebuild {
                log.emit(
                    LogEvent::new(stamp, "vigil", Event::StoreHistoryLost)
                        .with("store", location.clone())
                        .with("lost", self.lost.join("; "))
                        .with("recover", recover.clone()),
                );
                log.flush();
                return Err(refusal(&location, &self.lost, &recover));
            }
            if !self.external {
                return Err(SystemError::History(format!(
                    "--rebuild-journal-from-broker: execution.venue is \"paper\", there is no \
                     broker to rebuild from. {recover}"
                )));
            }
            let history = evidence.venue.ok_or_else(|| {
                SystemError::Runtime("the broker's history was not read before the rebuild".into())
            })?;
            let mut sources = Vec::new();
            if let Some(t) = evidence.log.last_decision {
                sources.push(("the log's latest order".to_string(), t));
            }
            if let Some(t) = evidence.log.resume_after {
                sources.push(("the log's latest resume point".to_string(), t));
            }
            if let Some(t) = self
                .file
                .as_ref()
                .and_then(|f| f.books.get(&book))
                .and_then(|b| b.last_bar_at)
            {
                sources.push(("the identity file's last bar".to_string(), t));
            }
            let rebuild =
                rebuild_journal(&*self.store, &book, venue, symbols, &history, &sources, at)
                    .await
                    .map_err(|e| SystemError::Venue(format!("{e}; nothing was traded")))?;
            let summary = rebuild.summary();
            let seq = self
                .store
                .record_rebuild(&book, at, &self.lost.join("; "), &summary)
                .await?;
            log.emit(
                LogEvent::new(stamp, "vigil", Event::JournalRebuilt)
                    .with("book", book.clone())
                    .with("lost", self.lost.join("; "))
                    .with("summary", summary.clone())
                    .with("rebuild", seq)
                    .with("unreadable_log_lines", evidence.log.unreadable),
            );
            log.flush();
            eprintln!("vigil: journal of {book} rebuilt from the broker: {summary}");
            rebuilt = Some(rebuild);
        }
        // The identity: the store's, else the identity file's (a store rebuilt in place of a
        // lost one keeps the installation's), else a new one.
        let install_id = match (&self.stored, &self.file) {
            (Some(s), _) => s.install_id.clone(),
            (None, Some(f)) => f.install_id.clone(),
            (None, None) => vigil_store::new_install_id().map_err(SystemError::Runtime)?,
        };
        let identity = self.store.record_start(&install_id, at).await?;
        let keeper = Keeper {
            store: self.store.clone(),
            path: self.identity_path.clone(),
            identity,
        };
        keeper.write(at).await.map_err(|e| {
            SystemError::History(format!(
                "{e}; without it a store that lost its history could pass for a new one, so \
                 vigil does not start: make its folder writable"
            ))
        })?;
        let created = self.stored.is_none();
        if created || self.file.is_none() {
            let (level, reason) = if created {
                (Level::Info, "the store's first start")
            } else {
                (
                    Level::Warn,
                    "the identity file was missing: written again from the store's identity",
                )
            };
            log.emit(
                LogEvent::new(stamp, "vigil", Event::StoreIdentityCreated)
                    .level(level)
                    .with("store", location)
                    .with("install_id", install_id)
                    .with("identity_file", self.identity_path.display().to_string())
                    .with("reason", reason),
            );
            log.flush();
        }
        Ok((keeper, rebuilt))
    }
}

/// Keeps the identity file up to date: written at the start and at the end of a session,
/// with what each broker book's journal holds then.
#[derive(Debug)]
pub(crate) struct Keeper {
    store: SharedStore,
    path: PathBuf,
    identity: StoreIdentity,
}

impl Keeper {
    /// Writes the identity file with the journal as it stands (at wall time `at`).
    ///
    /// # Errors
    /// When the journal cannot be read or the file cannot be written: the error names the
    /// store or the file.
    pub(crate) async fn write(&self, at: DateTime<Utc>) -> Result<(), KeeperError> {
        let books = self
            .store
            .journal_history()
            .await?
            .into_iter()
            .filter(|b| kept(&b.book))
            .map(|b| {
                (
                    b.book,
                    IdentityBook {
                        orders: b.orders,
                        fills: b.fills,
                        last_bar_at: b.last_bar_at,
                    },
                )
            })
            .collect();
        IdentityFile {
            note: IDENTITY_NOTE.into(),
            install_id: self.identity.install_id.clone(),
            store: self.store.location().to_string(),
            created_at: self.identity.created_at,
            written_at: at,
            runs: self.identity.runs,
            books,
        }
        .write(&self.path)?;
        Ok(())
    }
}

/// Why the identity file could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeeperError {
    /// The journal could not be read.
    #[error("{0}")]
    Store(#[from] vigil_store::StoreError),
    /// The file could not be written.
    #[error("{0}")]
    File(#[from] vigil_store::IdentityError),
}
