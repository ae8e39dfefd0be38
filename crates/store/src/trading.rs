//! The trading state (the circuit breaker), saved at every change.

use chrono::{DateTime, Utc};
use sqlx::Row;
use vigil_core::TradingState;

use crate::{Store, StoreError, stamp};

/// The trading state as last saved: what, who, why, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTradingState {
    /// The state.
    pub state: TradingState,
    /// Who set it (an operator, a rule, `supervisor` …).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When (wall clock).
    pub at: DateTime<Utc>,
}

impl Store {
    /// Returns the trading state last saved, if any.
    ///
    /// # Errors
    /// When the read fails or the saved row cannot be understood.
    pub async fn trading_state(&self) -> Result<Option<SavedTradingState>, StoreError> {
        let row = sqlx::query("SELECT state, actor, reason, at FROM trading_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_err("reading the trading state"))?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.get(0);
        let at: String = row.get(3);
        let state = match state.as_str() {
            "active" => TradingState::Active,
            "reduce_only" => TradingState::ReduceOnly,
            "halted" => TradingState::Halted,
            other => {
                return Err(StoreError::Corrupt {
                    path: self.path().to_path_buf(),
                    what: "trading_state.state".into(),
                    detail: format!("{other:?} is not active, reduce_only or halted"),
                });
            }
        };
        Ok(Some(SavedTradingState {
            state,
            actor: row.get(1),
            reason: row.get(2),
            at: self.time(|| "trading_state.at".into(), &at)?,
        }))
    }

    /// Replaces the saved trading state.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn save_trading_state(&self, saved: &SavedTradingState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trading_state (id, state, actor, reason, at) VALUES (1, ?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, actor = excluded.actor, \
             reason = excluded.reason, at = excluded.at",
        )
        .bind(saved.state.as_str())
        .bind(&saved.actor)
        .bind(&saved.reason)
        .bind(stamp(saved.at))
        .execute(&self.pool)
        .await
        .map_err(self.query_err("saving the trading state"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_trading_state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path).await.expect("open");
        assert_eq!(store.trading_state().await.expect("read"), None);
        let saved = SavedTradingState {
            state: TradingState::Halted,
            actor: "ops".into(),
            reason: "runaway losses".into(),
            at: "2030-01-01T00:00:00Z".parse().expect("time"),
        };
        store.save_trading_state(&saved).await.expect("save");
        store
            .save_trading_state(&SavedTradingState {
                reason: "still runaway".into(),
                ..saved.clone()
            })
            .await
            .expect("save again");
        store.close().await;
        let store = Store::open(&path).await.expect("reopen");
        let back = store.trading_state().await.expect("read").expect("saved");
        assert_eq!(back.state, TradingState::Halted);
        assert_eq!(back.reason, "still runaway");
        assert_eq!(back.at, saved.at);
    }
}
