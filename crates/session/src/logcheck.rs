//! `vigil logs verify` with everything it can check against: the hash chain, its key
//! (`log.hmac_key_file`) and the anchors the session recorded in the store.

use std::path::{Path, PathBuf};

use vigil_config::StoreConfig;
use vigil_log::{AnchorSet, ChainKey, VerifyOptions, VerifyReport};

/// Where the anchors are read from.
#[derive(Clone, Debug)]
pub enum AnchorSource {
    /// None: the chain alone is checked (the report says what that leaves out).
    None,
    /// The configured store (`[store]`). A SQLite file that does not exist is `required`
    /// or else taken as no store.
    Config {
        /// The store's settings.
        store: StoreConfig,
        /// A missing SQLite file is an error rather than "no store".
        required: bool,
    },
}

/// What to verify, and against what.
#[derive(Clone, Debug)]
pub struct LogCheck {
    /// The log folder.
    pub dir: PathBuf,
    /// Where the anchors are.
    pub anchors: AnchorSource,
    /// The keyed chain's key file, with the name to give it in messages (`log.hmac_key_file`
    /// or `--key-file`).
    pub key_file: Option<(String, PathBuf)>,
}

/// Why a verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum LogCheckError {
    /// The store that should hold the anchors is not there: deleted, or the wrong path.
    #[error(
        "store {0}: does not exist, so the log cannot be checked against its anchors (deleted, \
         or not the store the log was written with?)"
    )]
    StoreMissing(PathBuf),
    /// The key could not be read or is too short.
    #[error("{0}")]
    Key(String),
    /// The log folder or the store could not be read.
    #[error("{0}")]
    Read(String),
}

/// Verifies `check.dir`: every line's hash (or HMAC, with the key), the chain's links and
/// sequence, and the anchors from the store.
///
/// # Errors
/// When the key cannot be read, the required store is missing, or the folder or the store
/// cannot be read.
pub fn verify_log(check: &LogCheck) -> Result<VerifyReport, LogCheckError> {
    let key = match &check.key_file {
        Some((name, path)) => {
            let text =
                crate::read_secret(name, path).map_err(|e| LogCheckError::Key(e.to_string()))?;
            Some(
                ChainKey::new(text.as_bytes())
                    .map_err(|e| LogCheckError::Key(format!("{name} {}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let (anchors, missing_note) = match &check.anchors {
        AnchorSource::None => (None, None),
        AnchorSource::Config { store, required } => {
            if store.url.is_none() && !store.path.exists() {
                if *required {
                    return Err(LogCheckError::StoreMissing(store.path.clone()));
                }
                (
                    None,
                    Some(format!(
                        "there is no store at {} (give --config or --store)",
                        store.path.display()
                    )),
                )
            } else {
                (Some(read_anchors(&check.dir, store)?), None)
            }
        }
    };
    let mut report = vigil_log::verify_dir_with(&check.dir, &VerifyOptions { key, anchors })
        .map_err(|e| LogCheckError::Read(format!("{}: {e}", check.dir.display())))?;
    if let Some(note) = missing_note {
        report.unchecked.insert(0, note);
    }
    Ok(report)
}

/// The anchors of the folder's chain, and how many other chains the store anchors.
fn read_anchors(dir: &Path, store: &StoreConfig) -> Result<AnchorSet, LogCheckError> {
    let chain = vigil_log::chain_id(dir)
        .map_err(|e| LogCheckError::Read(format!("{}: {e}", dir.display())))?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(LogCheckError::Read(
            "the anchors are read from a thread that runs no async work".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LogCheckError::Read(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let read = |e: vigil_store::StoreError| LogCheckError::Read(e.to_string());
        let store = vigil_store::open_store(store).await.map_err(read)?;
        let chains = store.log_chains().await.map_err(read)?;
        let anchors = match &chain {
            Some(c) => store.log_anchors(c).await.map_err(read)?,
            None => Vec::new(),
        };
        store.close().await;
        let other_chains = chains.iter().filter(|c| Some(*c) != chain.as_ref()).count();
        Ok(AnchorSet {
            anchors,
            other_chains,
        })
    })
}
