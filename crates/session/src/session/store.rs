//! Stage 1 of the start: open the store and restore what the previous process left.
//!
//! A store that lost its history is refused here, before anything else opens (see
//! `history.rs` and docs/recovery.md); the saved alert state, the alert requests still
//! waiting and the last trading state are read back.

use vigil_config::VigilConfig;
use vigil_store::{AlertRequest, SavedTradingState, SharedStore, StateStore};

use super::SystemError;
use crate::history::{Opened, open_store};

/// The store, opened, and what it remembers.
pub(super) struct Restored {
    /// The store.
    pub(super) store: SharedStore,
    /// The alert engine's saved state (active alerts, silences), if readable.
    pub(super) alerts: Option<vigil_alert::EngineState>,
    /// Alert requests (acknowledge, silence) not yet carried out.
    pub(super) pending: Vec<AlertRequest>,
    /// The trading state as last saved: a tripped breaker survives a restart.
    pub(super) trading_state: Option<SavedTradingState>,
}

/// Opens the store (refusing one that lost its history) and reads what it remembers. The
/// store's history check ([`Opened`]) goes on to the broker's evidence and the log.
///
/// # Errors
/// The store cannot be opened or read, it lost its history, or an unreadable alert state
/// cannot be moved aside.
pub(super) async fn open(
    cfg: &VigilConfig,
    rebuild: bool,
) -> Result<(Opened, Restored), SystemError> {
    let opened = open_store(cfg, rebuild).await?;
    let store = opened.store.clone();
    let alerts = restore_alerts(&*store, cfg).await?;
    let pending = store.pending_requests().await?;
    let trading_state = store.trading_state().await?;
    Ok((
        opened,
        Restored {
            store,
            alerts,
            pending,
            trading_state,
        },
    ))
}

/// The alert state a previous process saved. A state this build cannot read is moved
/// aside into a file (nothing is lost) and alerting starts afresh: next to the store's
/// SQLite file, or in the log folder when the store is a database server.
async fn restore_alerts(
    store: &dyn StateStore,
    cfg: &VigilConfig,
) -> Result<Option<vigil_alert::EngineState>, SystemError> {
    let Some(saved) = store.alert_state().await? else {
        return Ok(None);
    };
    match serde_json::from_str(&saved.state) {
        Ok(state) => Ok(Some(state)),
        Err(e) => {
            let name = format!(
                "alert-state-{}.json",
                saved.saved_at.format("%Y%m%dT%H%M%S")
            );
            let aside = match store.file() {
                Some(file) => file.with_extension(name),
                None => cfg.log.dir.join(format!("vigil.{name}")),
            };
            let kept = aside
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&aside, &saved.state));
            kept.map_err(|w| {
                SystemError::Runtime(format!(
                    "the saved alert state in {} is unreadable ({e}) and cannot be moved aside to {}: {w}",
                    store.location(),
                    aside.display()
                ))
            })?;
            eprintln!(
                "vigil: CRITICAL the saved alert state in {} is unreadable ({e}); it is kept in {} and alerting starts with no active alerts or silences",
                store.location(),
                aside.display()
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> VigilConfig {
        let mut cfg = VigilConfig::embedded_default();
        cfg.store.path = dir.join("vigil.db");
        cfg.log.dir = dir.join("logs");
        cfg
    }

    #[actix_rt::test]
    async fn a_fresh_store_restores_nothing() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (_, restored) = open(&config(dir.path()), false)
            .await
            .expect("a fresh store opens");
        assert!(restored.alerts.is_none());
        assert!(restored.pending.is_empty());
        assert!(restored.trading_state.is_none());
        restored.store.close().await;
    }

    #[actix_rt::test]
    async fn an_unreadable_alert_state_is_moved_aside_not_lost() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let cfg = config(dir.path());
        let store = vigil_store::open_store(&cfg.store)
            .await
            .expect("the store opens");
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T14:31:00Z")
            .expect("a time")
            .to_utc();
        store
            .save_alert_state("{\"from\": \"a future build\"", at)
            .await
            .expect("the state is saved");
        let restored = restore_alerts(&*store, &cfg)
            .await
            .expect("an unreadable state does not stop the start");
        assert!(restored.is_none(), "alerting starts afresh");
        let aside = dir.path().join("vigil.alert-state-20260302T143100.json");
        let kept = std::fs::read_to_string(&aside).expect("the state is kept aside");
        assert_eq!(kept, "{\"from\": \"a future build\"");
        store.close().await;
    }
}
