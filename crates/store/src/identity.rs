//! Whether vigil has run with a store before: the store's identity, the identity file beside
//! it, the journal's high-water marks, and the findings that say a store lost its history
//! (see docs/recovery.md, "A store that lost its history").
//!
//! A store that lost its history must never look like a fresh start: a fresh journal has no
//! last bar handled, so a replay would decide the past again and send it again. Three things
//! tell a first start from a lost history, each kept apart from the others:
//! - the **identity** row in the store (`store_identity`): a random id given at the first
//!   start, with the starts counted;
//! - the **identity file** beside the store ([`identity_file`]): the same id, and what each
//!   broker book held at the last start and stop. It outlives a store file that is deleted,
//!   cut to nothing or replaced;
//! - the **high-water marks** in the store (`store_high_water`): the most orders and fills
//!   each book's journal ever held and the latest bar, kept by every journal transaction:
//!   journal rows emptied behind vigil's back leave them standing.
//!
//! [`before_open`] and [`after_open`] compare them and return what is lost, one sentence per
//! finding; the caller (`vigil run`) adds what the log and the broker say, and refuses to
//! start on any finding unless the operator asked for the journal to be rebuilt.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use vigil_config::StoreConfig;
use vigil_core::Timestamp;

/// The store's identity, as its `store_identity` row holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreIdentity {
    /// A random id, given at the first start.
    pub install_id: String,
    /// When it was given (wall clock).
    pub created_at: DateTime<Utc>,
    /// Sessions started with this store.
    pub runs: i64,
    /// When the last one started (wall clock).
    pub last_started_at: Option<DateTime<Utc>>,
}

/// What the journal of one book holds now, and the most it ever held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookHistory {
    /// The book.
    pub book: String,
    /// Orders journaled now.
    pub orders: u64,
    /// Fills journaled now.
    pub fills: u64,
    /// The book's row (`journal_cash`: its cash, opening and last bar) is there.
    pub opened: bool,
    /// The latest bar handled or decided, as the journal holds it now.
    pub last_bar_at: Option<Timestamp>,
    /// The most orders it ever held.
    pub high_orders: u64,
    /// The most fills it ever held.
    pub high_fills: u64,
    /// The latest bar it ever held.
    pub high_last_bar_at: Option<Timestamp>,
}

/// A rebuild of a book's journal from the broker, as `journal_rebuilds` keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRebuild {
    /// Its number.
    pub seq: i64,
    /// The book.
    pub book: String,
    /// When (wall clock).
    pub at: DateTime<Utc>,
    /// Why: what was found lost.
    pub reason: String,
    /// What the rebuild found and journaled.
    pub summary: String,
}

/// What one book held, as the identity file recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityBook {
    /// Orders journaled.
    pub orders: u64,
    /// Fills journaled.
    pub fills: u64,
    /// The latest bar handled or decided.
    pub last_bar_at: Option<Timestamp>,
}

/// The identity file beside the store: the store's identity, and what each broker book held
/// at the last start and stop. JSON, rewritten whole (a temporary file renamed over it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityFile {
    /// For a person who opens the file.
    pub note: String,
    /// The store's identity: its `store_identity.install_id`.
    pub install_id: String,
    /// The store it belongs to: the file, or the URL without its password.
    pub store: String,
    /// When the identity was given.
    pub created_at: DateTime<Utc>,
    /// When this file was written.
    pub written_at: DateTime<Utc>,
    /// Sessions started with the store, as of `written_at`.
    pub runs: i64,
    /// What each broker book held, as of `written_at` (the in-process paper venue's books
    /// are new every session and are not kept here).
    pub books: BTreeMap<String, IdentityBook>,
}

/// Why the identity file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing failed.
    #[error("store identity file {path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what vigil writes.
    #[error(
        "store identity file {path}: unreadable ({detail}); vigil wrote it and does not \
         guess: restore it from the backup of the store, or see docs/recovery.md"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

/// The note every identity file carries.
pub const IDENTITY_NOTE: &str = "vigil's store identity: it tells a first start from a store that lost its \
     history. Keep it beside the store and back it up with it; never edit it. See \
     docs/recovery.md.";

/// The identity file of the store `cfg` configures: `<store.path>.identity` beside the
/// SQLite file, or `<log_dir>/store.identity` for a store in PostgreSQL (a database server
/// has no folder of vigil's; the log folder is the installation's own, and outlives the
/// process as the store does).
pub fn identity_file(cfg: &StoreConfig, log_dir: &Path) -> PathBuf {
    match cfg.url {
        Some(_) => log_dir.join("store.identity"),
        None => {
            let mut name = cfg.path.as_os_str().to_owned();
            name.push(".identity");
            PathBuf::from(name)
        }
    }
}

/// A new random install id: 16 bytes from the operating system, in hex.
///
/// # Errors
/// When the operating system gives no randomness.
pub fn new_install_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a store identity: {e}"))?;
    Ok(hex::encode(bytes))
}

impl IdentityFile {
    /// Reads the identity file at `path`; `None` when there is none.
    ///
    /// # Errors
    /// When it exists but cannot be read or is not an identity file.
    pub fn read(path: &Path) -> Result<Option<Self>, IdentityError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(IdentityError::Io {
                    path: path.to_path_buf(),
                    what: "cannot read",
                    source,
                });
            }
        };
        let file: Self = serde_json::from_str(&text).map_err(|e| IdentityError::Unreadable {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if file.install_id.is_empty() {
            return Err(IdentityError::Unreadable {
                path: path.to_path_buf(),
                detail: "install_id is empty".into(),
            });
        }
        Ok(Some(file))
    }

    /// Writes it to `path` durably: a temporary file beside it, fsynced, renamed over it,
    /// and the folder fsynced.
    ///
    /// # Errors
    /// When any of it fails (the old file, if any, is then still whole).
    pub fn write(&self, path: &Path) -> Result<(), IdentityError> {
        let io = |what: &'static str| {
            move |source| IdentityError::Io {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io("cannot create its folder"))?;
        let mut text = serde_json::to_string_pretty(self).map_err(|e| IdentityError::Io {
            path: path.to_path_buf(),
            what: "cannot write JSON",
            source: std::io::Error::other(e),
        })?;
        text.push('\n');
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut f = std::fs::File::create(&tmp).map_err(io("cannot create a temporary file"))?;
        f.write_all(text.as_bytes())
            .map_err(io("cannot write a temporary file"))?;
        f.sync_all().map_err(io("cannot fsync a temporary file"))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io("cannot rename the temporary file over it"))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot fsync its folder"))?;
        Ok(())
    }
}

/// The store before it is opened: opening a SQLite file creates it, so what was there is
/// looked at first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFile {
    /// No file.
    Missing,
    /// A file of 0 bytes (a new SQLite database is written at its first transaction).
    Empty,
    /// A file with something in it.
    Present,
    /// A database server: nothing to look at before connecting.
    Server,
}

impl StoreFile {
    /// Looks at the store `cfg` configures, without opening it.
    ///
    /// # Errors
    /// When the file exists but cannot be looked at.
    pub fn inspect(cfg: &StoreConfig) -> Result<Self, IdentityError> {
        if cfg.url.is_some() {
            return Ok(Self::Server);
        }
        match std::fs::metadata(&cfg.path) {
            Ok(m) if m.len() == 0 => Ok(Self::Empty),
            Ok(_) => Ok(Self::Present),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::Missing),
            Err(source) => Err(IdentityError::Io {
                path: cfg.path.clone(),
                what: "cannot look at the store file",
                source,
            }),
        }
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ran(file: &IdentityFile) -> String {
    format!(
        "installation {} (identity given {}, {} start(s), the file written {})",
        file.install_id,
        stamp(file.created_at),
        file.runs,
        stamp(file.written_at)
    )
}

/// What is lost before the store is opened: a SQLite file that is missing or empty while its
/// identity file says vigil ran with it. One sentence per finding; none: go on.
pub fn before_open(
    location: &str,
    file: StoreFile,
    identity_path: &Path,
    identity: Option<&IdentityFile>,
) -> Vec<String> {
    let Some(id) = identity else {
        return Vec::new();
    };
    let what = match file {
        StoreFile::Missing => "is missing",
        StoreFile::Empty => "is empty (0 bytes)",
        StoreFile::Present | StoreFile::Server => return Vec::new(),
    };
    vec![format!(
        "the store file {location} {what}, but the identity file {} says vigil ran with it: {}",
        identity_path.display(),
        ran(id)
    )]
}

/// What is lost, once the store is open: its identity against the identity file's, and each
/// book's journal against its high-water mark and against what the identity file recorded.
/// One sentence per finding; none: go on.
pub fn after_open(
    location: &str,
    stored: Option<&StoreIdentity>,
    identity_path: &Path,
    identity: Option<&IdentityFile>,
    books: &[BookHistory],
) -> Vec<String> {
    let mut lost = Vec::new();
    match (stored, identity) {
        (None, Some(file)) => lost.push(format!(
            "the store {location} has no identity, but the identity file {} names {}: this \
             is not the store vigil ran with (a new or replaced file, a dropped schema, or \
             emptied tables)",
            identity_path.display(),
            ran(file)
        )),
        (Some(s), Some(file)) if s.install_id != file.install_id => lost.push(format!(
            "the store {location} is installation {}, but the identity file {} names {}: \
             this is another store than the one vigil ran with",
            s.install_id,
            identity_path.display(),
            ran(file)
        )),
        _ => {}
    }
    for b in books {
        let mut short = Vec::new();
        if b.orders < b.high_orders {
            short.push(format!(
                "{} of its {} orders",
                b.high_orders - b.orders,
                b.high_orders
            ));
        }
        if b.fills < b.high_fills {
            short.push(format!(
                "{} of its {} fills",
                b.high_fills - b.fills,
                b.high_fills
            ));
        }
        if b.last_bar_at < b.high_last_bar_at
            && let Some(high) = b.high_last_bar_at
        {
            short.push(format!(
                "its last bar ({} instead of {})",
                b.last_bar_at
                    .map_or_else(|| "none".to_string(), |t| t.to_rfc3339()),
                high.to_rfc3339()
            ));
        }
        let held_something = b.high_orders > 0 || b.high_fills > 0 || b.high_last_bar_at.is_some();
        if !b.opened && held_something {
            short.push("its opening row (cash, opening cash, last bar)".into());
        }
        if !short.is_empty() {
            lost.push(format!(
                "book {}: the journal lost {} (the store's high-water mark)",
                b.book,
                short.join(", ")
            ));
        }
    }
    if let Some(file) = identity {
        for (name, was) in &file.books {
            let now = books.iter().find(|b| &b.book == name);
            let (orders, fills, last) =
                now.map_or((0, 0, None), |b| (b.orders, b.fills, b.last_bar_at));
            if orders < was.orders || fills < was.fills || last < was.last_bar_at {
                lost.push(format!(
                    "book {name}: the journal holds {orders} orders, {fills} fills, last bar \
                     {}, but the identity file recorded {} orders, {} fills, last bar {} on {}: \
                     the store is older than the last run (a restored backup?) or lost rows",
                    last.map_or_else(|| "none".to_string(), |t| t.to_rfc3339()),
                    was.orders,
                    was.fills,
                    was.last_bar_at
                        .map_or_else(|| "none".to_string(), |t| t.to_rfc3339()),
                    stamp(file.written_at)
                ));
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn file(books: &[(&str, u64, u64, Option<&str>)]) -> IdentityFile {
        IdentityFile {
            note: IDENTITY_NOTE.into(),
            install_id: "abc".into(),
            store: "state/vigil.db".into(),
            created_at: t("2026-01-01T00:00:00Z"),
            written_at: t("2026-01-02T00:00:00Z"),
            runs: 3,
            books: books
                .iter()
                .map(|(b, o, f, l)| {
                    (
                        b.to_string(),
                        IdentityBook {
                            orders: *o,
                            fills: *f,
                            last_bar_at: l.map(t),
                        },
                    )
                })
                .collect(),
        }
    }

    fn identity(id: &str) -> StoreIdentity {
        StoreIdentity {
            install_id: id.into(),
            created_at: t("2026-01-01T00:00:00Z"),
            runs: 3,
            last_started_at: None,
        }
    }

    fn book(name: &str, now: (u64, u64, bool), high: (u64, u64)) -> BookHistory {
        BookHistory {
            book: name.into(),
            orders: now.0,
            fills: now.1,
            opened: now.2,
            high_orders: high.0,
            high_fills: high.1,
            ..BookHistory::default()
        }
    }

    #[test]
    fn the_identity_file_is_written_durably_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/vigil.db.identity");
        assert_eq!(IdentityFile::read(&path).expect("absent"), None);
        let f = file(&[("broker:x", 5, 4, Some("2024-01-02T00:00:00Z"))]);
        f.write(&path).expect("write");
        assert_eq!(IdentityFile::read(&path).expect("read"), Some(f.clone()));
        // Rewritten whole; no temporary file left.
        let g = IdentityFile { runs: 4, ..f };
        g.write(&path).expect("rewrite");
        assert_eq!(IdentityFile::read(&path).expect("read"), Some(g));
        assert!(!dir.path().join("state/vigil.db.identity.tmp").exists());
        std::fs::write(&path, "{not json").expect("spoil");
        let err = IdentityFile::read(&path).expect_err("unreadable");
        assert!(err.to_string().contains("unreadable"), "{err}");
    }

    #[test]
    fn the_identity_file_is_beside_a_sqlite_store_and_in_the_log_folder_for_a_server() {
        let sqlite = StoreConfig::default();
        assert_eq!(
            identity_file(&sqlite, Path::new("logs")),
            PathBuf::from("state/vigil.db.identity")
        );
        let pg = StoreConfig {
            url: Some(vigil_config::Secret::new("postgres://u:p@h/db")),
            ..StoreConfig::default()
        };
        assert_eq!(
            identity_file(&pg, Path::new("logs")),
            PathBuf::from("logs/store.identity")
        );
    }

    #[test]
    fn a_missing_or_empty_store_with_an_identity_file_is_lost_and_without_one_is_new() {
        let path = Path::new("state/vigil.db.identity");
        let f = file(&[]);
        for state in [StoreFile::Missing, StoreFile::Empty] {
            let lost = before_open("state/vigil.db", state, path, Some(&f));
            assert_eq!(lost.len(), 1, "{lost:?}");
            assert!(lost[0].contains("installation abc"), "{lost:?}");
            assert!(before_open("state/vigil.db", state, path, None).is_empty());
        }
        assert!(before_open("state/vigil.db", StoreFile::Present, path, Some(&f)).is_empty());
    }

    #[test]
    fn identities_must_agree_and_the_journal_must_reach_its_marks() {
        let path = Path::new("x.identity");
        let f = file(&[("broker:x", 5, 4, Some("2024-01-02T00:00:00Z"))]);
        let full = BookHistory {
            last_bar_at: Some(t("2024-01-02T00:00:00Z")),
            high_last_bar_at: Some(t("2024-01-02T00:00:00Z")),
            ..book("broker:x", (5, 4, true), (5, 4))
        };
        // All agree: nothing lost. No identity anywhere (a first start): nothing either.
        assert!(
            after_open(
                "db",
                Some(&identity("abc")),
                path,
                Some(&f),
                std::slice::from_ref(&full)
            )
            .is_empty()
        );
        assert!(after_open("db", None, path, None, &[]).is_empty());
        // An identity in the store but no file (the file was deleted): nothing is lost.
        assert!(
            after_open(
                "db",
                Some(&identity("abc")),
                path,
                None,
                std::slice::from_ref(&full)
            )
            .is_empty()
        );
        // The file names another store, or the store has none.
        let lost = after_open(
            "db",
            Some(&identity("zzz")),
            path,
            Some(&f),
            std::slice::from_ref(&full),
        );
        assert!(lost[0].contains("another store"), "{lost:?}");
        let lost = after_open("db", None, path, Some(&f), std::slice::from_ref(&full));
        assert!(lost[0].contains("has no identity"), "{lost:?}");
        // Emptied journal tables: below the high-water mark, and below the file's record.
        let emptied = book("broker:x", (0, 0, false), (5, 4));
        let lost = after_open("db", Some(&identity("abc")), path, Some(&f), &[emptied]);
        assert_eq!(lost.len(), 2, "{lost:?}");
        assert!(
            lost[0].contains("5 of its 5 orders, 4 of its 4 fills"),
            "{lost:?}"
        );
        assert!(lost[0].contains("opening row"), "{lost:?}");
        assert!(
            lost[1].contains("identity file recorded 5 orders, 4 fills"),
            "{lost:?}"
        );
        // The high-water table emptied too: the file still knows.
        let lost = after_open("db", Some(&identity("abc")), path, Some(&f), &[]);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("holds 0 orders, 0 fills"), "{lost:?}");
        // An older store (a restored backup): behind the file's record only.
        let older = BookHistory {
            last_bar_at: Some(t("2024-01-01T00:00:00Z")),
            high_last_bar_at: Some(t("2024-01-01T00:00:00Z")),
            ..book("broker:x", (5, 4, true), (5, 4))
        };
        let lost = after_open("db", Some(&identity("abc")), path, Some(&f), &[older]);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("a restored backup"), "{lost:?}");
    }
}
