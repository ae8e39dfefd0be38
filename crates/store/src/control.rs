//! The control API's audit: every operator command, recorded before it is carried out and
//! completed with its answer.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError, sql_limit, stamp};

/// A command the control API accepted (authenticated, well-formed), about to be carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewControlCommand {
    /// When it arrived (wall clock).
    pub at: DateTime<Utc>,
    /// Who asked, as the request says.
    pub who: String,
    /// The client's address.
    pub remote: String,
    /// The command's name (`pause`, `breaker_trip` …).
    pub command: String,
    /// Its argument (`signal`, a source's name …), if any.
    pub argument: Option<String>,
    /// Why, as the request says.
    pub reason: String,
    /// The client's idempotency key, if it sent one.
    pub request_id: Option<String>,
}

/// One row of the control audit: the command as asked, and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControlAuditEntry {
    /// Its number.
    pub seq: i64,
    /// What was asked, by whom, from where, and why.
    #[serde(flatten)]
    pub asked: NewControlCommand,
    /// When the answer came (`None`: the process stopped before it did).
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether it was carried out.
    pub ok: Option<bool>,
    /// The HTTP status answered.
    pub status: Option<u16>,
    /// What happened, when carried out.
    pub outcome: Option<String>,
    /// Why it was refused.
    pub error: Option<String>,
}

/// What recording a command found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditStart {
    /// A new row: carry the command out, then finish row `seq`.
    New(i64),
    /// A row with the same request id exists: the request is a repeat, answer from it.
    Repeat(Box<ControlAuditEntry>),
}

const COLUMNS: &str = "seq, at, who, remote, command, argument, reason, request_id, finished_at, \
                       ok, status, outcome, error";

impl Store {
    /// Records a command before it is carried out. With a request id already recorded, it
    /// writes nothing and returns the earlier row.
    ///
    /// # Errors
    /// When the write or the read fails.
    pub async fn begin_control_command(
        &self,
        cmd: &NewControlCommand,
    ) -> Result<AuditStart, StoreError> {
        let row = sqlx::query(
            "INSERT INTO control_audit (at, who, remote, command, argument, reason, request_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (request_id) DO NOTHING RETURNING seq",
        )
        .bind(stamp(cmd.at))
        .bind(&cmd.who)
        .bind(&cmd.remote)
        .bind(&cmd.command)
        .bind(&cmd.argument)
        .bind(&cmd.reason)
        .bind(&cmd.request_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.query_err("recording a control command"))?;
        if let Some(row) = row {
            return Ok(AuditStart::New(row.get(0)));
        }
        let earlier = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM control_audit WHERE request_id = ?1"
        ))
        .bind(&cmd.request_id)
        .fetch_one(&self.pool)
        .await
        .map_err(self.query_err("reading a repeated control command"))?;
        Ok(AuditStart::Repeat(Box::new(self.audit_row(&earlier)?)))
    }

    /// Completes row `seq` with the answer: `text` is the outcome when `ok`, else the error.
    ///
    /// # Errors
    /// When the write fails.
    pub async fn finish_control_command(
        &self,
        seq: i64,
        at: DateTime<Utc>,
        ok: bool,
        status: u16,
        text: &str,
    ) -> Result<(), StoreError> {
        let (outcome, error) = if ok {
            (Some(text), None)
        } else {
            (None, Some(text))
        };
        sqlx::query(
            "UPDATE control_audit SET finished_at = ?2, ok = ?3, status = ?4, outcome = ?5, \
             error = ?6 WHERE seq = ?1 AND finished_at IS NULL",
        )
        .bind(seq)
        .bind(stamp(at))
        .bind(ok)
        .bind(status)
        .bind(outcome)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(self.query_err("recording a control command's answer"))?;
        Ok(())
    }

    /// The newest `limit` rows of the control audit (0: all), oldest first.
    ///
    /// # Errors
    /// When the query fails or a row is unreadable.
    pub async fn control_audit(&self, limit: u32) -> Result<Vec<ControlAuditEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM control_audit ORDER BY seq DESC LIMIT ?1"
        ))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_err("reading the control audit"))?;
        let mut out = rows
            .iter()
            .map(|r| self.audit_row(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    fn audit_row(&self, r: &SqliteRow) -> Result<ControlAuditEntry, StoreError> {
        let seq: i64 = r.get(0);
        let what = || format!("control_audit seq {seq}");
        let at: String = r.get(1);
        let finished: Option<String> = r.get(8);
        let status: Option<i64> = r.get(10);
        Ok(ControlAuditEntry {
            seq,
            asked: NewControlCommand {
                at: self.time(what, &at)?,
                who: r.get(2),
                remote: r.get(3),
                command: r.get(4),
                argument: r.get(5),
                reason: r.get(6),
                request_id: r.get(7),
            },
            finished_at: finished.map(|f| self.time(what, &f)).transpose()?,
            ok: r.get(9),
            status: status
                .map(|s| u16::try_from(s).map_err(|e| self.corrupt(what(), e)))
                .transpose()?,
            outcome: r.get(11),
            error: r.get(12),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, 14, 0, s)
            .single()
            .expect("valid time")
    }

    fn cmd(command: &str, request_id: Option<&str>) -> NewControlCommand {
        NewControlCommand {
            at: t(0),
            who: "ana".into(),
            remote: "127.0.0.1:5000".into(),
            command: command.into(),
            argument: Some("signal".into()),
            reason: "news at 14:30".into(),
            request_id: request_id.map(str::to_string),
        }
    }

    /// Records a command that must be new; returns its row's number.
    async fn begin(store: &Store, c: &NewControlCommand) -> i64 {
        match store.begin_control_command(c).await.expect("begin") {
            AuditStart::New(seq) => seq,
            other => panic!("a new command, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn commands_are_recorded_before_and_completed_after_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        {
            let store = Store::open(&path).await.expect("open");
            let first = begin(&store, &cmd("pause", None)).await;
            store
                .finish_control_command(first, t(1), true, 200, "paused")
                .await
                .expect("finish");
            let second = begin(&store, &cmd("flatten", None)).await;
            store
                .finish_control_command(second, t(2), false, 409, "already flat")
                .await
                .expect("finish");
            // Answered once: a second answer does not overwrite the first.
            store
                .finish_control_command(second, t(3), true, 200, "late")
                .await
                .expect("finish again");
            store
                .begin_control_command(&cmd("resume", None))
                .await
                .expect("begin, never finished");
            store.close().await;
        }
        let store = Store::open(&path).await.expect("reopen");
        let all = store.control_audit(0).await.expect("audit");
        assert_eq!(all.len(), 3);
        assert_eq!(
            (
                all[0].seq,
                all[0].ok,
                all[0].status,
                all[0].outcome.as_deref()
            ),
            (1, Some(true), Some(200), Some("paused"))
        );
        assert_eq!(all[0].finished_at, Some(t(1)));
        assert_eq!(
            (
                all[1].ok,
                all[1].status,
                all[1].error.as_deref(),
                all[1].outcome.as_deref()
            ),
            (Some(false), Some(409), Some("already flat"), None)
        );
        assert_eq!((all[2].asked.command.as_str(), all[2].ok), ("resume", None));
        assert_eq!(all[2].finished_at, None);
        let newest = store.control_audit(1).await.expect("newest");
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].seq, 3);
    }

    #[tokio::test]
    async fn a_repeated_request_id_returns_the_earlier_row_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"))
            .await
            .expect("open");
        let seq = begin(&store, &cmd("pause", Some("r-1"))).await;
        store
            .finish_control_command(seq, t(1), true, 200, "paused")
            .await
            .expect("finish");
        let again = store
            .begin_control_command(&cmd("pause", Some("r-1")))
            .await
            .expect("begin again");
        let AuditStart::Repeat(row) = again else {
            panic!("a repeat: {again:?}");
        };
        assert_eq!((row.seq, row.outcome.as_deref()), (seq, Some("paused")));
        assert_eq!(store.control_audit(0).await.expect("audit").len(), 1);
    }
}
