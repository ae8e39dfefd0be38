//! Alerting's tables: the engine's state, the notification log, the operator's requests.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError, sql_limit, stamp};

/// The alert engine's state as last saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAlertState {
    /// The engine's state as JSON (`vigil_alert::EngineState`).
    pub state: String,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

/// One line of the notification log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertLogEntry {
    /// Its place in the log (0 until stored).
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened: `firing`, `resolved`, `suppressed`, `delivered`, `delivery_failed`,
    /// `digest`, `ack`, `silence`, `unsilence` …
    pub kind: String,
    /// The alert it concerns.
    pub alert_id: Option<String>,
    /// The alert's rule.
    pub rule: Option<String>,
    /// The severity the notice went out with.
    pub severity: Option<String>,
    /// The channel, for delivery lines.
    pub channel: Option<String>,
    /// A human sentence: the headline, the error, who silenced what and why.
    pub detail: String,
}

/// Which lines of the notification log to read.
#[derive(Clone, Debug, Default)]
pub struct AlertLogQuery {
    /// Only lines at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only lines of this rule.
    pub rule: Option<String>,
    /// Only lines of this alert.
    pub alert_id: Option<String>,
    /// At most this many, the newest (0: no limit).
    pub limit: u32,
}

/// What an operator asked of the alert engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// Acknowledge an alert: `{"id": "a-…"}`.
    Ack,
    /// Silence matching alerts: `{"matchers": {…}, "starts": …, "ends": …, "reason": …}`.
    Silence,
    /// Remove a silence: `{"id": "s-…"}`.
    Unsilence,
}

impl RequestKind {
    /// Its name in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Ack => "ack",
            RequestKind::Silence => "silence",
            RequestKind::Unsilence => "unsilence",
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ack" => Ok(RequestKind::Ack),
            "silence" => Ok(RequestKind::Silence),
            "unsilence" => Ok(RequestKind::Unsilence),
            other => Err(format!(
                "unknown request kind {other:?}; expected ack, silence or unsilence"
            )),
        }
    }
}

/// An operator's request and, once applied, its result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRequest {
    /// Its number.
    pub seq: i64,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// Who made it.
    pub who: String,
    /// What it asks.
    pub kind: RequestKind,
    /// Its arguments.
    pub body: serde_json::Value,
    /// When the Monitor applied it (`None`: not yet).
    pub applied_at: Option<DateTime<Utc>>,
    /// Whether it succeeded.
    pub ok: Option<bool>,
    /// What came of it: the silence's id, or why it was refused.
    pub result: Option<String>,
}

impl Store {
    /// The alert engine's state as last saved, if ever.
    ///
    /// # Errors
    /// When the query fails or the saved time is unreadable.
    pub async fn alert_state(&self) -> Result<Option<StoredAlertState>, StoreError> {
        let row = sqlx::query("SELECT state, saved_at FROM alert_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_err("reading the alert state"))?;
        let Some(row) = row else { return Ok(None) };
        let saved: String = row.get(1);
        Ok(Some(StoredAlertState {
            state: row.get(0),
            saved_at: self.time(|| "alert_state.saved_at".into(), &saved)?,
        }))
    }

    /// Replaces the alert engine's saved state.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn save_alert_state(&self, state: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_state (id, state, saved_at) VALUES (1, ?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
        )
        .bind(state)
        .bind(stamp(at))
        .execute(&self.pool)
        .await
        .map_err(self.query_err("saving the alert state"))?;
        Ok(())
    }

    /// Appends lines to the notification log, in one transaction.
    ///
    /// # Errors
    /// When the write fails (nothing is written then).
    pub async fn append_alert_log(&self, entries: &[AlertLogEntry]) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.query_err("appending to the alert log"))?;
        for e in entries {
            sqlx::query(
                "INSERT INTO alert_log (at, kind, alert_id, rule, severity, channel, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(stamp(e.at))
            .bind(&e.kind)
            .bind(&e.alert_id)
            .bind(&e.rule)
            .bind(&e.severity)
            .bind(&e.channel)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await
            .map_err(self.query_err("appending to the alert log"))?;
        }
        tx.commit()
            .await
            .map_err(self.query_err("appending to the alert log"))?;
        Ok(())
    }

    /// Reads the notification log, oldest first.
    ///
    /// # Errors
    /// When the query fails or a row is unreadable.
    pub async fn alert_log(&self, q: &AlertLogQuery) -> Result<Vec<AlertLogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, alert_id, rule, severity, channel, detail FROM alert_log \
             WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR rule = ?2) \
               AND (?3 IS NULL OR alert_id = ?3) \
             ORDER BY seq DESC LIMIT ?4",
        )
        .bind(q.since.map(stamp))
        .bind(&q.rule)
        .bind(&q.alert_id)
        .bind(sql_limit(q.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading the alert log"))?;
        let mut out = rows
            .iter()
            .map(|r| self.log_entry(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    fn log_entry(&self, r: &SqliteRow) -> Result<AlertLogEntry, StoreError> {
        let seq: i64 = r.get(0);
        let at: String = r.get(1);
        Ok(AlertLogEntry {
            seq,
            at: self.time(|| format!("alert_log seq {seq}"), &at)?,
            kind: r.get(2),
            alert_id: r.get(3),
            rule: r.get(4),
            severity: r.get(5),
            channel: r.get(6),
            detail: r.get(7),
        })
    }

    /// Records an operator's request; returns its number.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn request(
        &self,
        at: DateTime<Utc>,
        who: &str,
        kind: RequestKind,
        body: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO alert_requests (at, who, kind, body) VALUES (?1, ?2, ?3, ?4) RETURNING seq",
        )
        .bind(stamp(at))
        .bind(who)
        .bind(kind.as_str())
        .bind(body.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(self.query_err("recording an alert request"))?;
        Ok(row.get(0))
    }

    /// The requests not applied yet, oldest first.
    ///
    /// # Errors
    /// When the query fails or a row is unreadable.
    pub async fn pending_requests(&self) -> Result<Vec<AlertRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, who, kind, body, applied_at, ok, result FROM alert_requests \
             WHERE applied_at IS NULL ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading pending alert requests"))?;
        rows.iter().map(|r| self.request_row(r)).collect()
    }

    /// One request, applied or not.
    ///
    /// # Errors
    /// When the query fails or the row is unreadable.
    pub async fn request_by_seq(&self, seq: i64) -> Result<Option<AlertRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, at, who, kind, body, applied_at, ok, result FROM alert_requests \
             WHERE seq = ?1",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.query_err("reading an alert request"))?;
        row.as_ref().map(|r| self.request_row(r)).transpose()
    }

    /// Marks request `seq` applied, with its result.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn finish_request(
        &self,
        seq: i64,
        at: DateTime<Utc>,
        ok: bool,
        result: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_requests SET applied_at = ?2, ok = ?3, result = ?4 \
             WHERE seq = ?1 AND applied_at IS NULL",
        )
        .bind(seq)
        .bind(stamp(at))
        .bind(ok)
        .bind(result)
        .execute(&self.pool)
        .await
        .map_err(self.query_err("recording an alert request's result"))?;
        Ok(())
    }

    fn request_row(&self, r: &SqliteRow) -> Result<AlertRequest, StoreError> {
        let seq: i64 = r.get(0);
        let what = || format!("alert_requests seq {seq}");
        let at: String = r.get(1);
        let kind: String = r.get(3);
        let body: String = r.get(4);
        let applied: Option<String> = r.get(5);
        Ok(AlertRequest {
            seq,
            at: self.time(what, &at)?,
            who: r.get(2),
            kind: kind.parse().map_err(|e| self.corrupt(what(), e))?,
            body: serde_json::from_str(&body).map_err(|e| self.corrupt(what(), e))?,
            applied_at: applied.map(|a| self.time(what, &a)).transpose()?,
            ok: r.get(6),
            result: r.get(7),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, h, m, 0)
            .single()
            .expect("valid time")
    }

    fn entry(at: DateTime<Utc>, kind: &str, rule: &str) -> AlertLogEntry {
        AlertLogEntry {
            seq: 0,
            at,
            kind: kind.into(),
            alert_id: Some(format!("a-{rule}")),
            rule: Some(rule.into()),
            severity: Some("HIGH".into()),
            channel: None,
            detail: format!("{rule} {kind}"),
        }
    }

    #[tokio::test]
    async fn state_log_and_requests_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/vigil.db");
        {
            let store = Store::open(&path).await.expect("open");
            assert_eq!(store.alert_state().await.expect("read"), None);
            store
                .save_alert_state(r#"{"alerts":[]}"#, t(14, 0))
                .await
                .expect("save");
            store
                .save_alert_state(r#"{"alerts":[1]}"#, t(14, 5))
                .await
                .expect("save again");
            store
                .append_alert_log(&[
                    entry(t(14, 0), "firing", "drawdown"),
                    entry(t(14, 1), "delivered", "drawdown"),
                    entry(t(14, 2), "firing", "cpu_high"),
                ])
                .await
                .expect("append");
            let seq = store
                .request(t(14, 3), "ana", RequestKind::Ack, &json!({"id": "a-1"}))
                .await
                .expect("request");
            assert_eq!(seq, 1);
            store.close().await;
        }
        let store = Store::open(&path).await.expect("reopen");
        let saved = store.alert_state().await.expect("read").expect("saved");
        assert_eq!(saved.state, r#"{"alerts":[1]}"#);
        assert_eq!(saved.saved_at, t(14, 5));

        let all = store
            .alert_log(&AlertLogQuery::default())
            .await
            .expect("log");
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        let dd = store
            .alert_log(&AlertLogQuery {
                rule: Some("drawdown".into()),
                ..AlertLogQuery::default()
            })
            .await
            .expect("by rule");
        assert_eq!(dd.len(), 2);
        let last = store
            .alert_log(&AlertLogQuery {
                limit: 1,
                ..AlertLogQuery::default()
            })
            .await
            .expect("newest");
        assert_eq!(last[0].detail, "cpu_high firing");
        let since = store
            .alert_log(&AlertLogQuery {
                since: Some(t(14, 1)),
                ..AlertLogQuery::default()
            })
            .await
            .expect("since");
        assert_eq!(since.len(), 2);

        let pending = store.pending_requests().await.expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].who, "ana");
        assert_eq!(pending[0].kind, RequestKind::Ack);
        assert_eq!(pending[0].body, json!({"id": "a-1"}));
        store
            .finish_request(1, t(14, 4), false, "no active alert a-1")
            .await
            .expect("finish");
        // Applied once: a second result does not overwrite the first.
        store
            .finish_request(1, t(14, 5), true, "late")
            .await
            .expect("finish again");
        assert!(store.pending_requests().await.expect("pending").is_empty());
        let done = store.request_by_seq(1).await.expect("get").expect("exists");
        assert_eq!(done.ok, Some(false));
        assert_eq!(done.result.as_deref(), Some("no active alert a-1"));
        assert_eq!(done.applied_at, Some(t(14, 4)));
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        std::fs::write(
            &path,
            "this is not sqlite, it is a text file long enough to matter",
        )
        .expect("write");
        let err = Store::open(&path).await.expect_err("not a database");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
}
