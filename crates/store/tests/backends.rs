//! The conformance suite: every test runs against both backends, the SQLite file ([`Store`])
//! and PostgreSQL ([`PgStore`]), through the one trait the rest of vigil uses
//! ([`StateStore`], as a [`SharedStore`]).
//!
//! Each PostgreSQL test works in a schema of its own ([`PgTestSchema`]), dropped at its
//! end; without a server at 127.0.0.1:5432 it prints `SKIPPED: …` and passes, unless
//! `VIGIL_TEST_PG_REQUIRED` is set (CI sets it).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::mpsc;
use vigil_core::{OrderType, Side, TradingState};
use vigil_store::{
    Adjustment, AlertLogEntry, AlertLogQuery, AuditStart, BookHistory, Journal, JournalCounts,
    JournalEntry, JournalFill, JournalOrder, JournalStatus, JournaledBook, LogAnchor,
    LogAnchorKind, NewControlCommand, PgStore, PgTestSchema, RecordedFill, RequestKind,
    SavedTradingState, SharedStore, StateStore, Store, StoreIdentity,
};

/// Where a test's store lives; [`Place::open`] opens it again as a restarted process would.
enum Place {
    Sqlite(tempfile::TempDir, PathBuf),
    Pg(PgTestSchema),
}

impl Place {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/vigil.db");
        Self::Sqlite(dir, path)
    }

    /// `None` (after `SKIPPED: …`) without a server.
    async fn pg(test: &str) -> Option<Self> {
        PgTestSchema::create(test)
            .await
            .expect("a schema for the test")
            .map(Self::Pg)
    }

    async fn open(&self) -> SharedStore {
        match self {
            Self::Sqlite(_, path) => Arc::new(Store::open(path).await.expect("open the file")),
            Self::Pg(schema) => Arc::new(PgStore::open(schema.url()).await.expect("connect")),
        }
    }

    /// Runs `sql` on the store's tables behind vigil's back, as an operator at a SQL prompt
    /// would (the `;`-separated statements one by one).
    async fn behind_the_back(&self, sql: &str) {
        let statements = sql.split(';').map(str::trim).filter(|q| !q.is_empty());
        match self {
            Self::Sqlite(_, path) => {
                let pool = vigil_store::open_sqlite(path).await.expect("a pool");
                for q in statements {
                    sqlx::query(q).execute(&pool).await.expect(q);
                }
                pool.close().await;
            }
            Self::Pg(schema) => {
                let pool = sqlx::PgPool::connect(schema.url()).await.expect("a pool");
                for q in statements {
                    sqlx::query(q).execute(&pool).await.expect(q);
                }
                pool.close().await;
            }
        }
    }

    async fn finish(self) {
        match self {
            Self::Sqlite(dir, _) => dir.close().expect("remove the folder"),
            Self::Pg(schema) => schema.drop_schema().await.expect("drop the schema"),
        }
    }
}

/// Runs each named test (an `async fn(&Place)`) once per backend: `sqlite::name`, `pg::name`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let place = super::Place::sqlite();
                    super::$test(&place).await;
                    place.finish().await;
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(place) = super::Place::pg(concat!("pg::", stringify!($test))).await
                    else {
                        return;
                    };
                    super::$test(&place).await;
                    place.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    alert_state_log_and_requests_survive_reopening,
    control_commands_are_recorded_before_and_completed_after,
    a_repeated_request_id_returns_the_earlier_row_and_writes_nothing,
    the_trading_state_survives_reopening,
    the_journal_round_trips_with_adjustments_marks_and_the_fill_cursor,
    a_transaction_leaves_the_book_its_entries_leave_in_order,
    a_fill_journaled_twice_fails_its_whole_transaction_and_keeps_the_first,
    open_orders_and_books_come_back_in_the_order_they_were_journaled,
    the_group_commit_writer_keeps_open_orders_and_the_book_across_reopening,
    money_reads_back_exactly_as_written,
    the_identity_is_given_once_and_every_start_is_counted,
    the_high_water_mark_stands_when_journal_rows_are_emptied,
    the_identity_migration_marks_the_books_an_older_store_already_holds,
    a_journal_rebuild_is_recorded,
    a_sound_store_passes_the_integrity_check,
    log_anchors_come_back_per_chain_in_order_and_old_flushes_are_thinned,
    backtests_are_counted_per_model_name_across_versions_and_reopening,
    drill_runs_come_back_since_a_time_across_reopening,
    a_fix_session_keeps_its_sequences_and_sent_messages_across_reopening,
    a_fix_execution_is_kept_once_by_exec_id_in_order_of_arrival,
    backtest_reports_come_back_newest_first_with_their_pages,
    registry_changes_apply_whole_and_survive_reopening,
    releases_and_shadow_sessions_survive_reopening,
    a_checkpoint_sums_the_fills_before_it_and_recovery_reads_only_those_after,
    a_checkpoint_over_rows_the_journal_lost_is_not_trusted,
    the_writer_checkpoints_every_so_many_fills,
);

// ---------------------------------------------------------------------------------------
// Alerting

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, h, m, 0)
        .single()
        .expect("valid time")
}

fn log_line(at: DateTime<Utc>, kind: &str, rule: &str) -> AlertLogEntry {
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

async fn alert_state_log_and_requests_survive_reopening(place: &Place) {
    let store = place.open().await;
    assert_eq!(store.alert_state().await.expect("read"), None);
    store
        .save_alert_state(r#"{"alerts":[]}"#, at(14, 0))
        .await
        .expect("save");
    store
        .save_alert_state(r#"{"alerts":[1]}"#, at(14, 5))
        .await
        .expect("save again");
    store
        .append_alert_log(&[
            log_line(at(14, 0), "firing", "drawdown"),
            log_line(at(14, 1), "delivered", "drawdown"),
            log_line(at(14, 2), "firing", "cpu_high"),
        ])
        .await
        .expect("append");
    let seq = store
        .request(at(14, 3), "ana", RequestKind::Ack, &json!({"id": "a-1"}))
        .await
        .expect("request");
    assert_eq!(seq, 1);
    store.close().await;

    let store = place.open().await;
    let saved = store.alert_state().await.expect("read").expect("saved");
    assert_eq!(saved.state, r#"{"alerts":[1]}"#);
    assert_eq!(saved.saved_at, at(14, 5));

    let all = store
        .alert_log(&AlertLogQuery::default())
        .await
        .expect("log");
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(
        all[0],
        AlertLogEntry {
            seq: 1,
            ..log_line(at(14, 0), "firing", "drawdown")
        },
        "read back as written"
    );
    let by_rule = store
        .alert_log(&AlertLogQuery {
            rule: Some("drawdown".into()),
            ..AlertLogQuery::default()
        })
        .await
        .expect("by rule");
    assert_eq!(by_rule.len(), 2);
    let by_alert = store
        .alert_log(&AlertLogQuery {
            alert_id: Some("a-cpu_high".into()),
            ..AlertLogQuery::default()
        })
        .await
        .expect("by alert");
    assert_eq!(by_alert.len(), 1);
    let newest = store
        .alert_log(&AlertLogQuery {
            limit: 1,
            ..AlertLogQuery::default()
        })
        .await
        .expect("newest");
    assert_eq!(newest[0].detail, "cpu_high firing");
    let since = store
        .alert_log(&AlertLogQuery {
            since: Some(at(14, 1)),
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
    assert_eq!((pending[0].applied_at, pending[0].ok), (None, None));
    store
        .finish_request(1, at(14, 4), false, "no active alert a-1")
        .await
        .expect("finish");
    // Applied once: a second result does not overwrite the first.
    store
        .finish_request(1, at(14, 5), true, "late")
        .await
        .expect("finish again");
    assert!(store.pending_requests().await.expect("pending").is_empty());
    let done = store.request_by_seq(1).await.expect("get").expect("exists");
    assert_eq!(done.ok, Some(false));
    assert_eq!(done.result.as_deref(), Some("no active alert a-1"));
    assert_eq!(done.applied_at, Some(at(14, 4)));
    assert_eq!(store.request_by_seq(2).await.expect("get"), None);
    store.close().await;
}

// ---------------------------------------------------------------------------------------
// Control audit

fn second(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, 14, 0, s)
        .single()
        .expect("valid time")
}

fn command(name: &str, request_id: Option<&str>) -> NewControlCommand {
    NewControlCommand {
        at: second(0),
        who: "ana".into(),
        remote: "127.0.0.1:5000".into(),
        command: name.into(),
        argument: Some("signal".into()),
        reason: "news at 14:30".into(),
        request_id: request_id.map(str::to_string),
    }
}

/// Records a command that must be new; returns its row's number.
async fn begin(store: &dyn StateStore, c: &NewControlCommand) -> i64 {
    match store.begin_control_command(c).await.expect("begin") {
        AuditStart::New(seq) => seq,
        other => panic!("a new command, got {other:?}"),
    }
}

async fn control_commands_are_recorded_before_and_completed_after(place: &Place) {
    let store = place.open().await;
    let first = begin(&*store, &command("pause", None)).await;
    store
        .finish_control_command(first, second(1), true, 200, "paused")
        .await
        .expect("finish");
    let next = begin(&*store, &command("flatten", None)).await;
    store
        .finish_control_command(next, second(2), false, 409, "already flat")
        .await
        .expect("finish");
    // Answered once: a second answer does not overwrite the first.
    store
        .finish_control_command(next, second(3), true, 200, "late")
        .await
        .expect("finish again");
    store
        .begin_control_command(&command("resume", None))
        .await
        .expect("begin, never finished");
    store.close().await;

    let store = place.open().await;
    let all = store.control_audit(0).await.expect("audit");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].asked, command("pause", None), "read back as written");
    assert_eq!(
        (
            all[0].seq,
            all[0].ok,
            all[0].status,
            all[0].outcome.as_deref()
        ),
        (1, Some(true), Some(200), Some("paused"))
    );
    assert_eq!(all[0].finished_at, Some(second(1)));
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
    assert_eq!((all[2].finished_at, all[2].status), (None, None));
    let newest = store.control_audit(1).await.expect("newest");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].seq, 3);
    store.close().await;
}

async fn a_repeated_request_id_returns_the_earlier_row_and_writes_nothing(place: &Place) {
    let store = place.open().await;
    let seq = begin(&*store, &command("pause", Some("r-1"))).await;
    store
        .finish_control_command(seq, second(1), true, 200, "paused")
        .await
        .expect("finish");
    let again = store
        .begin_control_command(&command("pause", Some("r-1")))
        .await
        .expect("begin again");
    let AuditStart::Repeat(row) = again else {
        panic!("a repeat: {again:?}");
    };
    assert_eq!((row.seq, row.outcome.as_deref()), (seq, Some("paused")));
    assert_eq!(store.control_audit(0).await.expect("audit").len(), 1);
    // Commands without a request id are never repeats of each other.
    begin(&*store, &command("pause", None)).await;
    begin(&*store, &command("pause", None)).await;
    assert_eq!(store.control_audit(0).await.expect("audit").len(), 3);
    store.close().await;
}

// ---------------------------------------------------------------------------------------
// Trading state

async fn the_trading_state_survives_reopening(place: &Place) {
    let store = place.open().await;
    assert_eq!(store.trading_state().await.expect("read"), None);
    let saved = SavedTradingState {
        state: TradingState::Halted,
        actor: "ops".into(),
        reason: "runaway losses".into(),
        at: t("2030-01-01T00:00:00Z"),
        outage_hold: None,
    };
    store.save_trading_state(&saved).await.expect("save");
    store
        .save_trading_state(&SavedTradingState {
            reason: "still runaway".into(),
            outage_hold: Some(r#"{"before":"active"}"#.into()),
            ..saved.clone()
        })
        .await
        .expect("save again");
    store.close().await;
    let store = place.open().await;
    let back = store.trading_state().await.expect("read").expect("saved");
    assert_eq!(
        back,
        SavedTradingState {
            reason: "still runaway".into(),
            outage_hold: Some(r#"{"before":"active"}"#.into()),
            ..saved
        }
    );
    store.close().await;
}

// ---------------------------------------------------------------------------------------
// Log anchors

fn anchor(chain: &str, file: &str, seq: u64, kind: LogAnchorKind, at: &str) -> LogAnchor {
    LogAnchor {
        chain: chain.into(),
        file: file.into(),
        seq,
        hash: format!("{seq:064x}"),
        kind,
        at: t(at),
    }
}

async fn log_anchors_come_back_per_chain_in_order_and_old_flushes_are_thinned(place: &Place) {
    use LogAnchorKind::{Flush, Start, Stop};
    let store = place.open().await;
    let f1 = "vigil-000001-20240115.jsonl";
    let f2 = "vigil-000002-20240115.jsonl";
    let a = vec![
        anchor("a", f1, 9, Flush, "2024-01-15T14:00:01Z"),
        anchor("a", f1, 19, Flush, "2024-01-15T14:30:00Z"),
        anchor("a", f1, 29, Flush, "2024-01-15T14:59:59Z"),
        anchor("a", f2, 39, Flush, "2024-01-15T14:59:59.500Z"),
        anchor("a", f2, 49, Flush, "2024-01-15T15:10:00Z"),
        anchor("a", f2, 49, Stop, "2024-01-15T15:10:00Z"),
        anchor("a", f2, 49, Start, "2024-01-15T16:00:00Z"),
        anchor("a", f2, 59, Flush, "2024-01-15T16:00:01Z"),
    ];
    store.anchor_log(&a[..4]).await.expect("anchor");
    store.anchor_log(&a[4..]).await.expect("anchor");
    store
        .anchor_log(&[anchor(
            "b",
            f1,
            u64::from(u32::MAX) * 4,
            Stop,
            "2024-01-16T00:00:00Z",
        )])
        .await
        .expect("anchor another chain");
    store.close().await;
    let store = place.open().await;
    assert_eq!(store.log_anchors("a").await.expect("read"), a);
    assert_eq!(store.log_chains().await.expect("chains"), ["a", "b"]);
    assert_eq!(
        store.log_anchors("b").await.expect("read")[0].seq,
        u64::from(u32::MAX) * 4,
        "sequence numbers beyond 32 bits"
    );
    // Before 16:00: of each file's hour, the last flush stays; starts and stops all stay.
    let removed = store
        .thin_log_anchors(t("2024-01-15T16:00:00Z"))
        .await
        .expect("thin");
    assert_eq!(removed, 2);
    let kept: Vec<u64> = store
        .log_anchors("a")
        .await
        .expect("read")
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(kept, [29, 39, 49, 49, 49, 59]);
    store.close().await;
}

async fn backtests_are_counted_per_model_name_across_versions_and_reopening(place: &Place) {
    let store = place.open().await;
    let at = t("2026-12-04T10:00:00Z");
    let record = async |model: &str, version: &str| {
        store
            .record_backtest(model, version, &"ab".repeat(32), "backtest", at)
            .await
            .expect("record")
    };
    assert_eq!(record("goog_mlp", "1.0.0").await, 1);
    assert_eq!(record("goog_mlp", "1.0.0").await, 2);
    assert_eq!(record("ema_cross", "1.0.0").await, 1);
    // A new version is another trial of the same idea.
    assert_eq!(record("goog_mlp", "1.1.0").await, 3);
    store.close().await;
    let store = place.open().await;
    assert_eq!(
        store
            .record_backtest("goog_mlp", "1.1.0", &"cd".repeat(32), "gate", at)
            .await
            .expect("record"),
        4
    );
    store.close().await;
}

async fn drill_runs_come_back_since_a_time_across_reopening(place: &Place) {
    let store = place.open().await;
    let run = |drill: &str, at: &str, passed: bool| vigil_store::DrillRun {
        drill: drill.into(),
        started_at: t(at) - chrono::Duration::minutes(2),
        finished_at: t(at),
        passed,
        checks_passed: if passed { 10 } else { 7 },
        checks_total: 10,
        report: format!("{{\"drill\":\"{drill}\"}}"),
    };
    let runs = [
        run("all", "2026-10-01T10:00:00Z", true),
        run("price-jump", "2026-11-20T10:00:00Z", true),
        run("all", "2026-12-01T10:00:00Z", false),
    ];
    for r in &runs {
        store.record_drill(r).await.expect("record");
    }
    store.close().await;
    let store = place.open().await;
    assert_eq!(
        store
            .drill_runs_since(t("2026-11-04T00:00:00Z"))
            .await
            .expect("read"),
        runs[1..]
    );
    assert_eq!(
        store
            .drill_runs_since(t("2026-12-01T10:00:00Z"))
            .await
            .expect("read"),
        runs[2..],
        "finished at the bound: included"
    );
    store.close().await;
}

async fn a_fix_session_keeps_its_sequences_and_sent_messages_across_reopening(place: &Place) {
    use vigil_store::{FixSentMessage, FixSequences};
    let session = "FIX.4.4:VIGIL->BROKER";
    let store = place.open().await;
    assert_eq!(store.fix_sequences(session).await.expect("read"), None);
    let sent = |seq: u64, msg_type: &str| FixSentMessage {
        seq,
        msg_type: msg_type.into(),
        // Bytes a text column would mangle: SOH, and one that is not UTF-8.
        frame: format!("8=FIX.4.4\u{1}35={msg_type}\u{1}34={seq}\u{1}\u{ff}")
            .into_bytes()
            .into_iter()
            .chain([0xff, 0x00])
            .collect(),
    };
    let no_row = store
        .fix_sent(session, &sent(1, "A"), 2, t("2026-12-04T14:00:00Z"))
        .await
        .expect_err("a session without sequence numbers keeps nothing");
    assert!(
        no_row.to_string().contains("FIX.4.4:VIGIL->BROKER"),
        "{no_row}"
    );
    assert!(
        store
            .fix_sent_range(session, 1, 10, 100)
            .await
            .expect("read")
            .is_empty(),
        "nothing of the refused write was kept"
    );
    store
        .fix_set_sequences(session, 1, 1, t("2026-12-04T14:00:00Z"))
        .await
        .expect("begin");
    for (seq, kind) in [(1, "A"), (2, "D"), (4, "F")] {
        store
            .fix_sent(
                session,
                &sent(seq, kind),
                seq + 1,
                t("2026-12-04T14:01:00Z"),
            )
            .await
            .expect("keep");
    }
    store
        .fix_set_sequences(session, 5, 7, t("2026-12-04T14:02:00Z"))
        .await
        .expect("set");
    store.close().await;

    let store = place.open().await;
    assert_eq!(
        store.fix_sequences(session).await.expect("read"),
        Some(FixSequences {
            next_sender: 5,
            next_target: 7,
            created_at: t("2026-12-04T14:00:00Z"),
        })
    );
    assert_eq!(
        store
            .fix_sent_range(session, 2, 4, 100)
            .await
            .expect("read"),
        [sent(2, "D"), sent(4, "F")],
        "3 was not kept: a resend gap-fills it"
    );
    assert_eq!(
        store
            .fix_sent_range(session, 1, u64::MAX, 2)
            .await
            .expect("read"),
        [sent(1, "A"), sent(2, "D")],
        "a page at most `limit` long"
    );
    assert!(
        store
            .fix_sent_range("FIX.4.4:VIGIL->OTHER", 1, 10, 100)
            .await
            .expect("read")
            .is_empty()
    );
    // A reset drops what was sent and starts the sequences again.
    store
        .fix_reset(session, 1, 1, t("2026-12-05T14:00:00Z"))
        .await
        .expect("reset");
    store.close().await;
    let store = place.open().await;
    assert_eq!(
        store.fix_sequences(session).await.expect("read"),
        Some(FixSequences {
            next_sender: 1,
            next_target: 1,
            created_at: t("2026-12-05T14:00:00Z"),
        })
    );
    assert!(
        store
            .fix_sent_range(session, 1, 10, 100)
            .await
            .expect("read")
            .is_empty()
    );
    store.close().await;
}

async fn a_fix_execution_is_kept_once_by_exec_id_in_order_of_arrival(place: &Place) {
    use rust_decimal_macros::dec;
    use vigil_store::FixExecution;
    let session = "FIX.4.4:VIGIL->BROKER";
    let exec = |id: &str, last: rust_decimal::Decimal, cum: rust_decimal::Decimal| FixExecution {
        ordinal: 0,
        exec_id: id.into(),
        cl_ord_id: "c-1".into(),
        exec_type: "F".into(),
        ord_status: if cum == dec!(150) { "2" } else { "1" }.into(),
        symbol: "GOOG".into(),
        side: "1".into(),
        last_qty: last,
        last_px: dec!(1234.56789012),
        cum_qty: cum,
        leaves_qty: dec!(150) - cum,
        commission: dec!(0.35),
        transact_time: t("2026-12-04T14:30:00.123Z"),
        text: (id == "E2").then(|| "the rest".to_string()),
    };
    let store = place.open().await;
    assert_eq!(
        store
            .fix_execution(session, &exec("E1", dec!(100), dec!(100)))
            .await
            .expect("keep"),
        Some(1)
    );
    assert_eq!(
        store
            .fix_execution(session, &exec("E1", dec!(100), dec!(100)))
            .await
            .expect("keep"),
        None,
        "a resend of the same ExecID is a duplicate"
    );
    assert_eq!(
        store
            .fix_execution("FIX.4.4:VIGIL->OTHER", &exec("E1", dec!(100), dec!(100)))
            .await
            .expect("keep"),
        Some(1),
        "ExecIDs are per session"
    );
    assert_eq!(
        store
            .fix_execution(session, &exec("E2", dec!(50), dec!(150)))
            .await
            .expect("keep"),
        Some(2)
    );
    store.close().await;
    let store = place.open().await;
    let held = store.fix_executions(session, 0).await.expect("read");
    let mut want = vec![
        exec("E1", dec!(100), dec!(100)),
        exec("E2", dec!(50), dec!(150)),
    ];
    want[0].ordinal = 1;
    want[1].ordinal = 2;
    assert_eq!(held, want);
    assert_eq!(
        store.fix_executions(session, 1).await.expect("read"),
        want[1..]
    );
    store.close().await;
}

async fn backtest_reports_come_back_newest_first_with_their_pages(place: &Place) {
    let store = place.open().await;
    let report =
        |version: &str, command: &str, verdict: Option<&str>| vigil_store::BacktestReport {
            model: "goog_mlp".into(),
            version: version.into(),
            command: command.into(),
            data: "data/GOOG_1d.csv".into(),
            data_sha256: "ab".repeat(32),
            at: t("2026-12-04T10:00:00Z"),
            verdict: verdict.map(str::to_string),
            summary: format!("{{\"version\":\"{version}\"}}"),
        };
    let first = report("1.0.0", "backtest", None);
    let second = report("1.1.0", "gate", Some("failed"));
    let a = store
        .record_backtest_report(&first, "<html>one</html>")
        .await
        .expect("record");
    let b = store
        .record_backtest_report(&second, "<html>two ünïcode</html>")
        .await
        .expect("record");
    assert!(b > a);
    store.close().await;
    let store = place.open().await;
    assert_eq!(
        store.backtest_reports(10).await.expect("read"),
        [(b, second.clone()), (a, first)]
    );
    assert_eq!(
        store.backtest_reports(1).await.expect("read"),
        [(b, second)]
    );
    assert_eq!(
        store
            .backtest_report_page(b)
            .await
            .expect("read")
            .as_deref(),
        Some("<html>two ünïcode</html>")
    );
    assert_eq!(
        store.backtest_report_page(b + 100).await.expect("read"),
        None
    );
    assert_eq!(
        store.backtest_report_page(u64::MAX).await.expect("read"),
        None
    );
    store.close().await;
}

async fn registry_changes_apply_whole_and_survive_reopening(place: &Place) {
    use vigil_store::{ModelAudit, ModelEntry, ModelStatus, RegistryWrite};
    let store = place.open().await;
    let at = t("2026-12-04T10:00:00Z");
    let entry = |version: &str, gate: Option<&str>| ModelEntry {
        name: "goog_mlp".into(),
        version: version.into(),
        created_at: at,
        created_by: "ana".into(),
        status: ModelStatus::Staging,
        artifact_path: "/srv/models/goog_mlp".into(),
        artifact_sha256: "ab".repeat(32),
        config_sha256: "cd".repeat(32),
        training_data_sha256: Some("ef".repeat(32)),
        parent_version: None,
        gate_skipped: gate.is_none(),
        gate_checks: gate.map(str::to_string),
        gate_result_sha256: gate.map(|_| "01".repeat(32)),
        drift_baseline: gate.map(|_| r#"{"features":[]}"#.to_string()),
        training_snapshot: Some(format!("state/snapshots/{}", "ef".repeat(32))),
    };
    let audit = |action: &str, version: &str| ModelAudit {
        seq: 0,
        at,
        actor: "ana".into(),
        action: action.into(),
        name: "goog_mlp".into(),
        version: version.into(),
        reason: format!("{action} it"),
        detail: String::new(),
    };
    let register = |version: &str, gate: Option<&str>| RegistryWrite {
        insert: Some(entry(version, gate)),
        statuses: vec![],
        aliases: vec![("candidate".into(), Some(version.into()))],
        release: None,
        audit: audit("register", version),
    };
    store
        .registry_apply(&register(
            "v1.0.0-20261204",
            Some(r#"[{"check":"sharpe"}]"#),
        ))
        .await
        .expect("register");
    store
        .registry_apply(&register("v1.1.0-20261204", None))
        .await
        .expect("register another");
    // The same version twice: refused whole (no audit row, the alias unchanged).
    let mut again = register("v1.0.0-20261204", None);
    again.aliases = vec![("candidate".into(), Some("v1.0.0-20261204".into()))];
    store
        .registry_apply(&again)
        .await
        .expect_err("registered twice");
    store
        .registry_apply(&RegistryWrite {
            insert: None,
            statuses: vec![("v1.0.0-20261204".into(), ModelStatus::Production)],
            aliases: vec![
                ("production".into(), Some("v1.0.0-20261204".into())),
                ("candidate".into(), None),
            ],
            release: None,
            audit: audit("promote", "v1.0.0-20261204"),
        })
        .await
        .expect("promote");
    store.close().await;

    let store = place.open().await;
    let entries = store
        .registry_entries(Some("goog_mlp"))
        .await
        .expect("read");
    assert_eq!(entries.len(), 2);
    let mut first = entry("v1.0.0-20261204", Some(r#"[{"check":"sharpe"}]"#));
    first.status = ModelStatus::Production;
    assert_eq!(entries[0], first);
    assert_eq!(entries[1], entry("v1.1.0-20261204", None));
    assert_eq!(
        store.registry_entries(None).await.expect("all").len(),
        2,
        "every model"
    );
    assert!(
        store
            .registry_entries(Some("other"))
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store.registry_aliases("goog_mlp").await.expect("aliases"),
        [("production".to_string(), "v1.0.0-20261204".to_string())]
    );
    let trail: Vec<(String, String)> = store
        .registry_audit("goog_mlp")
        .await
        .expect("audit")
        .into_iter()
        .map(|a| (a.action, a.version))
        .collect();
    assert_eq!(
        trail,
        [
            ("register".to_string(), "v1.0.0-20261204".to_string()),
            ("register".into(), "v1.1.0-20261204".into()),
            ("promote".into(), "v1.0.0-20261204".into()),
        ]
    );
    store.close().await;
}

async fn releases_and_shadow_sessions_survive_reopening(place: &Place) {
    use vigil_store::{ModelAudit, ModelRelease, RegistryWrite, ReleaseState, ShadowSessionRow};
    let store = place.open().await;
    let at = t("2026-12-04T10:00:00Z");
    let audit = |action: &str| ModelAudit {
        seq: 0,
        at,
        actor: "ana".into(),
        action: action.into(),
        name: "goog_mlp".into(),
        version: "v1.1.0-20261204".into(),
        reason: "why".into(),
        detail: String::new(),
    };
    let mut release = ModelRelease {
        id: 0,
        name: "goog_mlp".into(),
        candidate: "v1.1.0-20261204".into(),
        production: Some("v1.0.0-20261204".into()),
        stage: "shadow".into(),
        state: ReleaseState::Running,
        started_at: at,
        started_by: "ana".into(),
        reason: "a better model".into(),
        updated_at: at,
        detail: "shadow started".into(),
        step: 0,
        weight: None,
        step_since: None,
    };
    let write = |release: &ModelRelease, action: &str| RegistryWrite {
        insert: None,
        statuses: vec![],
        aliases: vec![],
        release: Some(release.clone()),
        audit: audit(action),
    };
    store
        .registry_apply(&write(&release, "release_start"))
        .await
        .expect("start");
    let stored = store.releases("goog_mlp").await.expect("read");
    assert_eq!(stored.len(), 1);
    release.id = stored[0].id;
    assert_eq!(stored[0], release);

    let row = |session: &str, figures: &str| ShadowSessionRow {
        release_id: release.id,
        session: session.into(),
        updated_at: at,
        figures: figures.into(),
    };
    store
        .save_shadow_sessions(&[
            row("2026-12-03", r#"{"bars":1}"#),
            row("2026-12-04", r#"{"bars":2}"#),
        ])
        .await
        .expect("save");
    store
        .save_shadow_sessions(&[row("2026-12-03", r#"{"bars":3}"#)])
        .await
        .expect("rewrite");
    // A batch with a row of no release is refused whole.
    let mut orphan = row("2026-12-05", "{}");
    orphan.release_id += 100;
    store
        .save_shadow_sessions(&[row("2026-12-04", r#"{"bars":9}"#), orphan])
        .await
        .expect_err("no such release");

    // Changing a release that is not there is refused, with nothing of the change kept.
    let mut ghost = release.clone();
    ghost.id += 100;
    store
        .registry_apply(&write(&ghost, "release_abort"))
        .await
        .expect_err("no such release");
    release.state = ReleaseState::Aborted;
    release.detail = "aborted".into();
    store
        .registry_apply(&write(&release, "release_abort"))
        .await
        .expect("abort");
    store.close().await;

    let store = place.open().await;
    assert_eq!(
        store.releases("goog_mlp").await.expect("read"),
        [release.clone()]
    );
    assert!(store.releases("other").await.expect("none").is_empty());
    let sessions = store.shadow_sessions(release.id).await.expect("sessions");
    assert_eq!(
        sessions,
        [
            row("2026-12-03", r#"{"bars":3}"#),
            row("2026-12-04", r#"{"bars":2}"#)
        ]
    );
    let actions: Vec<String> = store
        .registry_audit("goog_mlp")
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(actions, ["release_start", "release_abort"]);
    store.close().await;
}

// ---------------------------------------------------------------------------------------
// The journal

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn order(id: &str) -> JournalOrder {
    JournalOrder {
        client_order_id: id.into(),
        trace_id: format!("tx_{id}").into(),
        symbol: "GOOG".into(),
        side: Side::Buy,
        quantity: Decimal::from(10),
        order_type: OrderType::Limit,
        limit_price: Some(Decimal::new(10125, 2)),
        reference_price: Decimal::from(101),
        decided_at: t("2024-01-02T15:00:00Z"),
    }
}

fn status(id: &str, status: JournalStatus) -> JournalEntry {
    JournalEntry::Status {
        client_order_id: id.into(),
        status,
        venue_order_id: Some(format!("V-{id}").into()),
        filled_quantity: None,
        reason: None,
    }
}

fn fill(id: &str, fill_id: &str) -> JournalEntry {
    JournalEntry::Fill(JournalFill {
        fill_id: fill_id.into(),
        client_order_id: id.into(),
        symbol: "GOOG".into(),
        side: Side::Buy,
        quantity: Decimal::from(10),
        price: Decimal::from(101),
        commission: Decimal::new(5, 1),
        filled_at: t("2024-01-03T14:30:00Z"),
        position_after: (Decimal::from(10), Decimal::from(101)),
        cash_after: Decimal::new(989_895, 1),
    })
}

fn fill_of(symbol: &str, fill_id: &str, position: i64, cash: i64) -> JournalEntry {
    JournalEntry::Fill(JournalFill {
        symbol: symbol.into(),
        position_after: (Decimal::from(position), Decimal::from(100)),
        cash_after: Decimal::from(cash),
        ..match fill("c", fill_id) {
            JournalEntry::Fill(f) => f,
            _ => unreachable!("fill() makes a fill"),
        }
    })
}

fn open_book(cash: i64, cursor: Option<&str>) -> JournalEntry {
    JournalEntry::OpenBook {
        cash: Decimal::from(cash),
        fill_cursor: cursor.map(Into::into),
    }
}

const WALL: &str = "2030-01-01T00:00:00Z";

async fn the_journal_round_trips_with_adjustments_marks_and_the_fill_cursor(place: &Place) {
    let store = place.open().await;
    let book = "broker:http://127.0.0.1:1";
    assert_eq!(
        store.journal_recovery(book).await.expect("empty"),
        Default::default(),
        "a book never opened"
    );
    store
        .journal(
            book,
            &[
                open_book(100_000, Some("F-0")),
                JournalEntry::Intent(order("a")),
                status("a", JournalStatus::Filled),
                fill("a", "F-1"),
                JournalEntry::Mark {
                    last_bar_at: t("2024-01-03T14:30:00Z"),
                },
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    // A second opening changes nothing; a mark older than the last one does not move it
    // back; reconciliation sets the cash and a position to the venue's.
    store
        .journal(
            book,
            &[
                open_book(5, Some("F-9")),
                JournalEntry::Mark {
                    last_bar_at: t("2024-01-03T14:00:00Z"),
                },
                JournalEntry::Adjust(Adjustment::Cash {
                    before: Decimal::new(989_895, 1),
                    after: Decimal::new(989_900, 1),
                    reason: "the broker's cash".into(),
                }),
                JournalEntry::Adjust(Adjustment::Position {
                    symbol: "MSFT".into(),
                    before: Decimal::ZERO,
                    after: Decimal::from(-3),
                    avg_price: Decimal::new(41_050, 2),
                    reason: "the broker's position".into(),
                }),
                JournalEntry::Intent(JournalOrder {
                    decided_at: t("2024-01-03T15:00:00Z"),
                    ..order("b")
                }),
                // The sub-ledgers: the last one journaled is the one read back.
                JournalEntry::Ledgers {
                    state: "{\"first\":1}".into(),
                },
                JournalEntry::Ledgers {
                    state: "{\"second\":2}".into(),
                },
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    store.close().await;

    let store = place.open().await;
    let rec = store.journal_recovery(book).await.expect("recovery");
    assert_eq!(
        rec.book,
        JournaledBook {
            cash: Some(Decimal::new(989_900, 1)),
            positions: vec![
                ("GOOG".into(), Decimal::from(10), Decimal::from(101)),
                ("MSFT".into(), Decimal::from(-3), Decimal::new(41_050, 2)),
            ],
            fills: 1,
            ledgers: Some("{\"second\":2}".into()),
        }
    );
    assert_eq!(rec.opening_cash, Some(Decimal::from(100_000)));
    assert_eq!(rec.opening_fill_cursor.as_deref(), Some("F-0"));
    assert_eq!(rec.cash_adjusted, Decimal::new(5, 1));
    assert_eq!(
        rec.last_bar_at,
        Some(t("2024-01-03T15:00:00Z")),
        "the later of the last mark and the last decision"
    );
    assert_eq!(
        rec.fills,
        [RecordedFill {
            fill_id: "F-1".into(),
            client_order_id: "a".into(),
            symbol: "GOOG".into(),
            side: Side::Buy,
            quantity: Decimal::from(10),
            price: Decimal::from(101),
            commission: Decimal::new(5, 1),
        }]
    );
    let open: Vec<(&str, JournalStatus)> = rec
        .open_orders
        .iter()
        .map(|o| (&*o.order.client_order_id, o.status))
        .collect();
    assert_eq!(open, [("b", JournalStatus::Intent)]);
    assert_eq!(
        rec.open_orders[0].order,
        JournalOrder {
            decided_at: t("2024-01-03T15:00:00Z"),
            ..order("b")
        },
        "read back as written"
    );
    assert_eq!(rec.open_orders[0].filled_quantity, Decimal::ZERO);
    assert_eq!(
        store.journal_book(book).await.expect("book"),
        rec.book,
        "journal_book reads the same book"
    );
    assert_eq!(
        store.journal_order_ids(book).await.expect("ids"),
        ["a", "b"],
        "every order, whatever its status, in the order journaled"
    );
    store.close().await;
}

async fn a_transaction_leaves_the_book_its_entries_leave_in_order(place: &Place) {
    let store = place.open().await;
    store
        .journal(
            "a",
            &[
                open_book(1000, None),
                fill_of("GOOG", "F-1", 10, 900),
                fill_of("AAPL", "F-2", 5, 800),
                fill_of("GOOG", "F-3", 20, 700),
                // Taken after the fills before it, and overtaken by the ones after.
                JournalEntry::Adjust(Adjustment::Position {
                    symbol: "GOOG".into(),
                    before: Decimal::from(20),
                    after: Decimal::from(25),
                    avg_price: Decimal::from(99),
                    reason: "test".into(),
                }),
                fill_of("AAPL", "F-4", 0, 850),
                JournalEntry::Mark {
                    last_bar_at: t("2024-01-03T14:30:00Z"),
                },
                fill_of("MSFT", "F-5", -3, 950),
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    let read = store.journal_recovery("a").await.expect("read");
    assert_eq!(read.book.cash, Some(Decimal::from(950)));
    assert_eq!(
        read.book.positions,
        [
            ("GOOG".to_string(), Decimal::from(25), Decimal::from(99)),
            ("MSFT".to_string(), Decimal::from(-3), Decimal::from(100)),
        ],
        "AAPL closed by its last fill"
    );
    assert_eq!(read.book.fills, 5);
    assert_eq!(
        read.fills.iter().map(|f| &*f.fill_id).collect::<Vec<_>>(),
        ["F-1", "F-2", "F-3", "F-4", "F-5"],
        "fills in the order journaled"
    );
    assert_eq!(read.opening_cash, Some(Decimal::from(1000)));
    assert_eq!(read.last_bar_at, Some(t("2024-01-03T14:30:00Z")));

    // A fill before the opening in the same transaction: the book existed already, and the
    // opening changes nothing, as when every fill wrote its cash at once.
    store
        .journal(
            "b",
            &[fill_of("GOOG", "F-1", 10, 900), open_book(1000, None)],
            t(WALL),
        )
        .await
        .expect("journal");
    let read = store.journal_recovery("b").await.expect("read");
    assert_eq!(read.book.cash, Some(Decimal::from(900)));
    assert_eq!(read.opening_cash, None);
    store.close().await;
}

async fn a_fill_journaled_twice_fails_its_whole_transaction_and_keeps_the_first(place: &Place) {
    let store = place.open().await;
    let book = "broker:x";
    store
        .journal(
            book,
            &[
                open_book(100_000, None),
                JournalEntry::Intent(order("a")),
                fill("a", "F-1"),
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    let before = store.journal_recovery(book).await.expect("read");
    let err = store
        .journal(
            book,
            &[
                JournalEntry::Intent(order("b")),
                fill_of("AAPL", "F-2", 7, 1),
                fill("a", "F-1"),
            ],
            t(WALL),
        )
        .await
        .expect_err("a fill id is unique per book");
    let text = err.to_string();
    assert!(
        text.contains("journaling a fill") && text.contains(store.location()),
        "{text}"
    );
    assert_eq!(
        store.journal_recovery(book).await.expect("read"),
        before,
        "nothing of the failed transaction is kept"
    );
    // The same fill id in another book is another fill.
    store
        .journal("broker:y", &[fill("a", "F-1")], t(WALL))
        .await
        .expect("another book");
    assert_eq!(store.journal_book("broker:y").await.expect("y").fills, 1);
    store.close().await;
}

async fn open_orders_and_books_come_back_in_the_order_they_were_journaled(place: &Place) {
    let store = place.open().await;
    // Names that sort otherwise than they were journaled.
    for book in ["paper:z", "broker:m", "paper:a"] {
        store
            .journal(book, &[open_book(1, None)], t(WALL))
            .await
            .expect("open");
    }
    let mut entries: Vec<JournalEntry> = ["c", "a", "e", "b", "d", "f"]
        .into_iter()
        .map(|id| JournalEntry::Intent(order(id)))
        .collect();
    entries.extend([
        status("a", JournalStatus::Accepted),
        JournalEntry::Status {
            client_order_id: "e".into(),
            status: JournalStatus::PartiallyFilled,
            venue_order_id: None,
            filled_quantity: Some(Decimal::new(25, 1)),
            reason: None,
        },
        status("b", JournalStatus::Filled),
        JournalEntry::Status {
            client_order_id: "d".into(),
            status: JournalStatus::Rejected,
            venue_order_id: None,
            filled_quantity: None,
            reason: Some("no buying power".into()),
        },
        status("f", JournalStatus::Cancelled),
    ]);
    store
        .journal("paper:z", &entries, t(WALL))
        .await
        .expect("journal");
    store.close().await;

    let store = place.open().await;
    assert_eq!(
        store.journal_books().await.expect("books"),
        ["paper:z", "broker:m", "paper:a"],
        "oldest first"
    );
    let open = store.journal_open_orders("paper:z").await.expect("open");
    let ids: Vec<(&str, JournalStatus, Option<&str>, Decimal)> = open
        .iter()
        .map(|o| {
            (
                &*o.order.client_order_id,
                o.status,
                o.venue_order_id.as_deref(),
                o.filled_quantity,
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("c", JournalStatus::Intent, None, Decimal::ZERO),
            ("a", JournalStatus::Accepted, Some("V-a"), Decimal::ZERO),
            (
                "e",
                JournalStatus::PartiallyFilled,
                None,
                Decimal::new(25, 1)
            ),
        ]
    );
    assert!(
        store
            .journal_open_orders("paper:a")
            .await
            .expect("open")
            .is_empty(),
        "books are apart"
    );
    store.close().await;
}

async fn the_group_commit_writer_keeps_open_orders_and_the_book_across_reopening(place: &Place) {
    let store = place.open().await;
    let (failures, mut failed) = mpsc::unbounded_channel();
    let (journal, task) = Journal::start(store.clone(), "broker:test".into(), || t(WALL), failures);
    journal.append(open_book(100_000, None)).expect("append");
    for id in ["a", "b", "c"] {
        journal
            .append(JournalEntry::Intent(order(id)))
            .expect("append");
    }
    journal
        .append(status("b", JournalStatus::Accepted))
        .expect("append");
    journal
        .append(status("c", JournalStatus::Filled))
        .expect("append");
    // Durable: answered once the group holding it is committed.
    journal
        .append_durable(fill("c", "F-1"))
        .await
        .expect("committed");
    // The same fill id again: the whole group fails, and says so.
    let again = journal.append_durable(fill("c", "F-1")).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.contains("journaling a fill")),
        "{again:?}"
    );
    let failure = failed.recv().await.expect("a failure");
    assert_eq!(failure.entries, 1);
    assert!(failure.error.contains(store.location()), "{failure:?}");
    drop(journal);
    task.await
        .expect("writer ends when every handle is dropped");
    store.close().await;

    let store = place.open().await;
    let open = store
        .journal_open_orders("broker:test")
        .await
        .expect("read");
    let ids: Vec<(&str, JournalStatus)> = open
        .iter()
        .map(|o| (&*o.order.client_order_id, o.status))
        .collect();
    assert_eq!(
        ids,
        [("a", JournalStatus::Intent), ("b", JournalStatus::Accepted)]
    );
    assert_eq!(open[0].order, order("a"), "read back as written");
    assert_eq!(open[1].venue_order_id.as_deref(), Some("V-b"));
    let book = store.journal_book("broker:test").await.expect("book");
    assert_eq!(book.cash, Some(Decimal::new(989_895, 1)));
    assert_eq!(
        book.positions,
        [("GOOG".to_string(), Decimal::from(10), Decimal::from(101))]
    );
    assert_eq!(book.fills, 1);
    assert_eq!(
        store.journal_book("paper:other").await.expect("book"),
        JournaledBook::default(),
        "books are apart"
    );
    store.close().await;
}

async fn money_reads_back_exactly_as_written(place: &Place) {
    let store = place.open().await;
    // The extremes of rust_decimal, trailing zeros (the scale is kept), and figures that
    // f64 cannot hold exactly.
    let figures = [
        Decimal::MAX,
        Decimal::MIN,
        Decimal::new(1, 28),
        Decimal::new(10_500, 3),
        "0.1".parse::<Decimal>().expect("decimal"),
        "123456789012345678.123456789".parse().expect("decimal"),
    ];
    for (i, x) in figures.iter().enumerate() {
        let book = format!("book-{i}");
        let f = match fill("a", &format!("F-{i}")) {
            JournalEntry::Fill(f) => f,
            _ => unreachable!("fill() makes a fill"),
        };
        store
            .journal(
                &book,
                &[
                    open_book(0, None),
                    JournalEntry::Fill(JournalFill {
                        quantity: *x,
                        price: *x,
                        commission: *x,
                        position_after: (*x, *x),
                        cash_after: *x,
                        ..f
                    }),
                ],
                t(WALL),
            )
            .await
            .expect("journal");
        let rec = store.journal_recovery(&book).await.expect("read");
        let exact = |d: Decimal| d.to_string();
        assert_eq!(rec.book.cash.map(exact), Some(exact(*x)));
        let (_, qty, avg) = &rec.book.positions[0];
        assert_eq!((exact(*qty), exact(*avg)), (exact(*x), exact(*x)));
        let f = &rec.fills[0];
        assert_eq!(
            (exact(f.quantity), exact(f.price), exact(f.commission)),
            (exact(*x), exact(*x), exact(*x))
        );
    }
    store.close().await;
}

// ---------------------------------------------------------------------------------------
// Identity: whether vigil ran with this store before (docs/recovery.md)

async fn the_identity_is_given_once_and_every_start_is_counted(place: &Place) {
    let store = place.open().await;
    assert_eq!(
        store.identity().await.expect("read"),
        None,
        "a new store has none"
    );
    let first = store
        .record_start("id-one", t("2030-01-01T00:00:00Z"))
        .await
        .expect("first start");
    assert_eq!(
        first,
        StoreIdentity {
            install_id: "id-one".into(),
            created_at: t("2030-01-01T00:00:00Z"),
            runs: 1,
            last_started_at: Some(t("2030-01-01T00:00:00Z")),
        }
    );
    store.close().await;
    let store = place.open().await;
    // Given once: a later start with another id counts, and keeps the first.
    let second = store
        .record_start("id-two", t("2030-01-02T00:00:00Z"))
        .await
        .expect("second start");
    assert_eq!(
        second,
        StoreIdentity {
            runs: 2,
            last_started_at: Some(t("2030-01-02T00:00:00Z")),
            ..first
        }
    );
    assert_eq!(store.identity().await.expect("read"), Some(second));
    store.close().await;
}

async fn the_high_water_mark_stands_when_journal_rows_are_emptied(place: &Place) {
    let store = place.open().await;
    let book = "broker:http://127.0.0.1:1";
    store
        .journal(
            book,
            &[
                open_book(100_000, None),
                JournalEntry::Intent(order("a")),
                status("a", JournalStatus::Filled),
                fill("a", "F-1"),
                JournalEntry::Intent(order("b")),
                JournalEntry::Mark {
                    last_bar_at: t("2024-01-04T00:00:00Z"),
                },
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    // A mark older than the last does not lower it; a failed transaction raises nothing.
    store
        .journal(
            book,
            &[JournalEntry::Mark {
                last_bar_at: t("2024-01-03T00:00:00Z"),
            }],
            t(WALL),
        )
        .await
        .expect("an older mark");
    store
        .journal(
            book,
            &[JournalEntry::Intent(order("c")), fill("a", "F-1")],
            t(WALL),
        )
        .await
        .expect_err("a fill journaled twice");
    // A mark for a book never opened does not move it.
    store
        .journal(
            "broker:never-opened",
            &[JournalEntry::Mark {
                last_bar_at: t("2024-01-09T00:00:00Z"),
            }],
            t(WALL),
        )
        .await
        .expect("a mark without a book");
    let whole = BookHistory {
        book: book.into(),
        orders: 2,
        fills: 1,
        opened: true,
        last_bar_at: Some(t("2024-01-04T00:00:00Z")),
        high_orders: 2,
        high_fills: 1,
        high_last_bar_at: Some(t("2024-01-04T00:00:00Z")),
    };
    let history = store.journal_history().await.expect("history");
    assert_eq!(
        history,
        [
            whole.clone(),
            BookHistory {
                book: "broker:never-opened".into(),
                ..BookHistory::default()
            }
        ]
    );
    let path = std::path::Path::new("x.identity");
    assert!(vigil_store::after_open("x", None, path, None, &history).is_empty());
    store.close().await;

    // Emptied behind vigil's back: the journal holds nothing, its mark stands.
    place
        .behind_the_back(
            "DELETE FROM journal_orders; DELETE FROM journal_fills; \
             DELETE FROM journal_positions; DELETE FROM journal_cash; \
             DELETE FROM journal_adjustments",
        )
        .await;
    let store = place.open().await;
    let history = store.journal_history().await.expect("history");
    assert_eq!(
        history[0],
        BookHistory {
            orders: 0,
            fills: 0,
            opened: false,
            last_bar_at: None,
            ..whole
        }
    );
    let lost = vigil_store::after_open("x", None, path, None, &history);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        lost[0].contains("2 of its 2 orders, 1 of its 1 fills, its last bar"),
        "{lost:?}"
    );
    store.close().await;
}

async fn the_identity_migration_marks_the_books_an_older_store_already_holds(place: &Place) {
    let store = place.open().await;
    let book = "broker:old";
    store
        .journal(
            book,
            &[
                open_book(100_000, None),
                JournalEntry::Intent(order("a")),
                fill("a", "F-1"),
                fill("a", "F-2"),
                JournalEntry::Mark {
                    last_bar_at: t("2024-01-01T00:00:00Z"),
                },
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    store.close().await;
    // The store as a build before migration 0006 left it.
    place
        .behind_the_back(
            "DROP TABLE store_identity; DROP TABLE store_high_water; \
             DROP TABLE journal_rebuilds; DELETE FROM _sqlx_migrations WHERE version = 6",
        )
        .await;
    let store = place.open().await;
    assert_eq!(store.identity().await.expect("read"), None);
    assert_eq!(
        store.journal_history().await.expect("history"),
        [BookHistory {
            book: book.into(),
            orders: 1,
            fills: 2,
            opened: true,
            // The later of the mark and the decision.
            last_bar_at: Some(t("2024-01-02T15:00:00Z")),
            high_orders: 1,
            high_fills: 2,
            high_last_bar_at: Some(t("2024-01-02T15:00:00Z")),
        }]
    );
    store.close().await;
}

async fn a_journal_rebuild_is_recorded(place: &Place) {
    let store = place.open().await;
    assert!(store.journal_rebuilds().await.expect("none").is_empty());
    let seq = store
        .record_rebuild("broker:x", t(WALL), "the store file is missing", "47 fills")
        .await
        .expect("record");
    store.close().await;
    let store = place.open().await;
    let all = store.journal_rebuilds().await.expect("read");
    assert_eq!(all.len(), 1);
    assert_eq!(
        (
            all[0].seq,
            all[0].book.as_str(),
            all[0].at,
            all[0].reason.as_str(),
            all[0].summary.as_str()
        ),
        (
            seq,
            "broker:x",
            t(WALL),
            "the store file is missing",
            "47 fills"
        )
    );
    store.close().await;
}

async fn a_sound_store_passes_the_integrity_check(place: &Place) {
    let store = place.open().await;
    store
        .journal("paper:x", &[open_book(1, None)], t(WALL))
        .await
        .expect("journal");
    assert_eq!(
        store.check_integrity().await.expect("check"),
        Vec::<String>::new()
    );
    store.close().await;
}

/// A page of the notification log (outside the journal) overwritten with garbage: the
/// integrity check finds it, the checked open refuses the file with the check's first lines,
/// and the file is left byte for byte as it was (issue 19: a malformed page was accepted).
#[tokio::test]
async fn a_damaged_page_outside_the_journal_fails_the_integrity_check_and_is_left_as_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vigil.db");
    let store = Store::open(&path).await.expect("open");
    let lines: Vec<AlertLogEntry> = (0..2000)
        .map(|i| log_line(at(9, 0), "fired", &format!("rule-{i}-{}", "x".repeat(40))))
        .collect();
    store.append_alert_log(&lines).await.expect("log");
    // The pages of the table, and the page size, before the file is closed.
    let (page_size, pages): (i64, Vec<i64>) = {
        use sqlx::Row as _;
        let pool = vigil_store::open_sqlite(&path).await.expect("pool");
        let size: i64 = sqlx::query("PRAGMA page_size")
            .fetch_one(&pool)
            .await
            .expect("page size")
            .get(0);
        let pages = sqlx::query(
            "SELECT pageno FROM dbstat WHERE name = 'alert_log' AND pagetype = 'leaf' \
             ORDER BY pageno",
        )
        .fetch_all(&pool)
        .await
        .map(|rows| rows.iter().map(|r| r.get::<i64, _>(0)).collect())
        .unwrap_or_default();
        pool.close().await;
        (size, pages)
    };
    store.close().await;
    let checked = Store::open_checked(&path).await.expect("sound");
    assert_eq!(
        checked.check_integrity().await.expect("check"),
        Vec::<String>::new()
    );
    checked.close().await;
    // Every page into the file before it is read: a checkpoint that truncates the WAL,
    // asked for and checked, not left to the last connection's close (which skips it when
    // it cannot lock the file, and then the file read is still its first page).
    {
        use sqlx::Row as _;
        let pool = vigil_store::open_sqlite(&path).await.expect("pool");
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&pool)
            .await
            .expect("checkpoint");
        assert_eq!(row.get::<i64, _>(0), 0, "the checkpoint was blocked");
        pool.close().await;
    }
    // The leaf pages from dbstat when SQLite has it, else the table's root page.
    let page = match pages.get(pages.len() / 2) {
        Some(p) => *p,
        None => {
            use sqlx::Row as _;
            let pool = vigil_store::open_sqlite(&path).await.expect("pool");
            let root: i64 =
                sqlx::query("SELECT rootpage FROM sqlite_master WHERE name = 'alert_log'")
                    .fetch_one(&pool)
                    .await
                    .expect("root page")
                    .get(0);
            pool.close().await;
            root
        }
    };
    let mut bytes = std::fs::read(&path).expect("read the file");
    let start = usize::try_from((page - 1) * page_size).expect("offset");
    assert!(
        bytes.len() >= start + 64,
        "page {page} is not in the file ({} bytes)",
        bytes.len()
    );
    for (i, b) in bytes[start..start + 64].iter_mut().enumerate() {
        *b = 0xA5 ^ (i as u8);
    }
    std::fs::write(&path, &bytes).expect("write garbage into a page");

    let err = Store::open_checked(&path).await.expect_err("damaged");
    let text = err.to_string();
    assert!(
        matches!(&err, vigil_store::StoreError::Integrity { report, .. } if !report.is_empty()),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("integrity check failed"), "{text}");
    assert_eq!(
        std::fs::read(&path).expect("read again"),
        bytes,
        "the damaged file is left as it is"
    );
}

// ---------------------------------------------------------------------------------------
// Backend-specific

#[tokio::test]
async fn a_sqlite_file_that_is_not_a_database_is_refused_with_its_path() {
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

#[tokio::test]
async fn a_postgresql_server_that_cannot_be_reached_is_named_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = PgStore::open("postgres://vigil:hunter2@127.0.0.1:1/test")
        .await
        .expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(
        text.starts_with("store postgres://vigil@127.0.0.1:1/test: cannot open: "),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn a_pg_store_reports_no_file_and_a_sqlite_store_its_file() {
    let place = Place::sqlite();
    let store = place.open().await;
    let Place::Sqlite(_, path) = &place else {
        unreachable!("a SQLite place")
    };
    assert_eq!(store.file(), Some(path.as_path()));
    assert_eq!(store.location(), path.display().to_string());
    store.close().await;
    place.finish().await;

    let Some(place) = Place::pg("a_pg_store_reports_no_file_and_a_sqlite_store_its_file").await
    else {
        return;
    };
    let store = place.open().await;
    assert_eq!(store.file(), None);
    assert!(store.location().starts_with("postgres://"), "{store:?}");
    store.close().await;
    place.finish().await;
}

// ---------------------------------------------------------------------------------------
// Checkpoints

/// A sell of `qty` GOOG at `price` with a commission of 1.
fn sale(order: &str, fill_id: &str, qty: i64, price: i64) -> JournalEntry {
    JournalEntry::Fill(JournalFill {
        side: Side::Sell,
        quantity: Decimal::from(qty),
        price: Decimal::from(price),
        commission: Decimal::ONE,
        ..match fill(order, fill_id) {
            JournalEntry::Fill(f) => f,
            _ => unreachable!("fill() makes a fill"),
        }
    })
}

async fn a_checkpoint_sums_the_fills_before_it_and_recovery_reads_only_those_after(place: &Place) {
    let store = place.open().await;
    let book = "broker:checkpoints";
    assert_eq!(
        store.journal_checkpoint(book, t(WALL)).await.expect("none"),
        None,
        "nothing to checkpoint in a book never journaled"
    );
    store
        .journal(
            book,
            &[
                open_book(100_000, Some("F-0")),
                JournalEntry::Intent(order("a")),
                fill("a", "F-1"),
                JournalEntry::Intent(order("b")),
                sale("b", "F-2", 4, 110),
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    // Buy 10 at 101 (0.5 commission), sell 4 at 110 (1).
    let first = Decimal::new(-10105, 1) + Decimal::from(439);
    let cp = store
        .journal_checkpoint(book, t("2030-01-02T00:00:00Z"))
        .await
        .expect("checkpoint")
        .expect("written");
    assert_eq!((cp.fills, cp.orders), (2, 2));
    assert_eq!(cp.fill_cash_flow, first);
    assert_eq!(cp.last_fill_id.as_deref(), Some("F-2"));
    store.close().await;

    // After a restart: nothing before the checkpoint is read, and it all adds up.
    let store = place.open().await;
    let rec = store.journal_recovery(book).await.expect("recovery");
    assert_eq!(rec.checkpoint.as_ref(), Some(&cp));
    assert!(rec.fills.is_empty(), "{:?}", rec.fills);
    assert_eq!(rec.fill_cursor(), Some("F-2"));
    assert_eq!(rec.fill_cash_flow(), first);
    assert_eq!(rec.book.fills, 2);
    store
        .journal(
            book,
            &[JournalEntry::Intent(order("c")), sale("c", "F-3", 1, 120)],
            t(WALL),
        )
        .await
        .expect("journal");
    let rec = store.journal_recovery(book).await.expect("recovery");
    let ids: Vec<&str> = rec.fills.iter().map(|f| f.fill_id.as_str()).collect();
    assert_eq!(ids, ["F-3"], "only the fills after the checkpoint");
    assert_eq!(rec.fill_cursor(), Some("F-3"));
    assert_eq!(rec.fill_cash_flow(), first + Decimal::from(119));
    assert_eq!(rec.book.fills, 3);
    assert_eq!(
        store.journal_counts(book).await.expect("counts"),
        JournalCounts {
            checkpoint: Some(cp.clone()),
            orders: 3,
            fills: 3,
        }
    );
    let known = store
        .journal_known_fills(book, &["F-1", "F-3", "F-9"])
        .await
        .expect("known");
    let mut known: Vec<String> = known.into_iter().collect();
    known.sort();
    assert_eq!(known, ["F-1", "F-3"]);
    assert!(
        store
            .journal_known_fills("broker:other", &["F-1"])
            .await
            .expect("known")
            .is_empty(),
        "books are apart"
    );

    // The next checkpoint adds to the last; with nothing new, the last one stands.
    let next = store
        .journal_checkpoint(book, t("2030-01-03T00:00:00Z"))
        .await
        .expect("checkpoint")
        .expect("written");
    assert_eq!((next.fills, next.orders), (3, 3));
    assert_eq!(next.fill_cash_flow, first + Decimal::from(119));
    let again = store
        .journal_checkpoint(book, t("2030-01-04T00:00:00Z"))
        .await
        .expect("checkpoint");
    assert_eq!(
        again.as_ref(),
        Some(&next),
        "nothing new: not written again"
    );
    assert!(
        store
            .journal_recovery(book)
            .await
            .expect("recovery")
            .fills
            .is_empty()
    );
    // An order with no fill moves the checkpoint too.
    store
        .journal(book, &[JournalEntry::Intent(order("d"))], t(WALL))
        .await
        .expect("journal");
    let last = store
        .journal_checkpoint(book, t("2030-01-05T00:00:00Z"))
        .await
        .expect("checkpoint")
        .expect("written");
    assert_eq!((last.fills, last.orders), (3, 4));
    assert_eq!(last.fills_through, next.fills_through);
    store.close().await;
}

async fn a_checkpoint_over_rows_the_journal_lost_is_not_trusted(place: &Place) {
    let store = place.open().await;
    let book = "broker:lost";
    store
        .journal(
            book,
            &[
                open_book(100_000, None),
                JournalEntry::Intent(order("a")),
                fill("a", "F-1"),
                JournalEntry::Intent(order("b")),
                fill("b", "F-2"),
            ],
            t(WALL),
        )
        .await
        .expect("journal");
    store
        .journal_checkpoint(book, t(WALL))
        .await
        .expect("checkpoint")
        .expect("written");
    store.close().await;
    place
        .behind_the_back("DELETE FROM journal_fills WHERE fill_id = 'F-2'")
        .await;
    let store = place.open().await;
    let counts = store.journal_counts(book).await.expect("counts");
    assert_eq!(counts.checkpoint, None, "its last fill is gone");
    assert_eq!((counts.orders, counts.fills), (2, 1), "counted row by row");
    let history = store.journal_history().await.expect("history");
    let h = history.iter().find(|h| h.book == book).expect("the book");
    assert_eq!((h.fills, h.high_fills), (1, 2), "the loss shows");
    let rec = store.journal_recovery(book).await.expect("recovery");
    assert_eq!(rec.checkpoint, None);
    let ids: Vec<&str> = rec.fills.iter().map(|f| f.fill_id.as_str()).collect();
    assert_eq!(ids, ["F-1"], "every fill that is left is read");
    store.close().await;
}

async fn the_writer_checkpoints_every_so_many_fills(place: &Place) {
    let store = place.open().await;
    let book = "broker:writer";
    let (failures, mut failed) = mpsc::unbounded_channel();
    let (journal, task) =
        Journal::start_with_checkpoints(store.clone(), book.into(), || t(WALL), failures, 2);
    journal.append(open_book(100_000, None)).expect("append");
    for i in 1..=5 {
        let id = format!("o{i}");
        journal
            .append(JournalEntry::Intent(order(&id)))
            .expect("append");
        // One fill a commit.
        journal
            .append_durable(sale(&id, &format!("F-{i}"), 1, 100))
            .await
            .expect("committed");
    }
    drop(journal);
    task.await.expect("the writer ends after its checkpoint");
    assert!(failed.try_recv().is_err(), "nothing failed");
    let counts = store.journal_counts(book).await.expect("counts");
    let cp = counts.checkpoint.expect("a checkpoint was written");
    assert!(cp.fills >= 2, "{cp:?}");
    assert_eq!(
        cp.fill_cash_flow,
        Decimal::from(99) * Decimal::from(cp.fills)
    );
    assert_eq!((counts.orders, counts.fills), (5, 5));
    let rec = store.journal_recovery(book).await.expect("recovery");
    assert_eq!(rec.fill_cash_flow(), Decimal::from(5 * 99));
    assert_eq!(rec.fills.len() as u64 + cp.fills, 5);
    store.close().await;
}
