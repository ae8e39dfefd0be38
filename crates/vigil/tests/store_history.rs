//! A store that lost its history is never a fresh start (issue 19): `vigil run` against the
//! broker process (`vigil broker`) on loopback, then the store is cut to 0 bytes, deleted,
//! its journal tables emptied, a page of it damaged, or replaced by a new PostgreSQL schema;
//! each next start is refused (exit 3) with what was found and how to recover, sends nothing
//! and changes nothing. `--rebuild-journal-from-broker` rebuilds the journal and resumes
//! without deciding or sending any past order again. See docs/recovery.md.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::broker::BrokerProcess;
use common::{Running, repo, run_args, vigil, vigil_log_lines};
use serde_json::Value;
use vigil_store::PgTestSchema;

/// A paced broker session (a trading day in 10 ms), its store in `state/vigil.db` or in
/// the PostgreSQL schema `pg`.
fn write_config(dir: &Path, data: &Path, broker: &BrokerProcess, pg: Option<&str>) -> PathBuf {
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"{sections}
[execution.reconcile]
interval_s = 1

{home}"#,
            sections = broker.run_sections(dir, data),
            home = vigil_testkit::config::home_sections(
                dir,
                "",
                &pg.map_or(String::new(), |url| format!("url = \"{url}\""))
            ),
        ),
    )
    .expect("write config");
    cfg
}

/// GOOG's bundled header and rows 1..=`to`, as `name` in `dir`.
fn goog_rows(dir: &Path, name: &str, to: usize) -> PathBuf {
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG_1d.csv");
    let kept: Vec<&str> = text.lines().take(to + 1).collect();
    let path = dir.join(name);
    std::fs::write(&path, kept.join("\n") + "\n").expect("write rows");
    path
}

/// The broker's orders: (client order id, status), oldest first.
fn broker_orders(b: &BrokerProcess) -> Vec<(String, String)> {
    let (status, orders) = b.call("GET", "/v2/orders?status=all&limit=500&direction=asc", None);
    assert_eq!(status, 200, "{orders}");
    orders
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["client_order_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The broker's fill ids.
fn broker_fill_ids(b: &BrokerProcess) -> HashSet<String> {
    let (status, fills) = b.call(
        "GET",
        "/v2/account/activities/FILL?direction=asc&page_size=100",
        None,
    );
    assert_eq!(status, 200, "{fills}");
    let ids: HashSet<String> = fills
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect();
    assert!(ids.len() < 100, "one page holds them all");
    ids
}

/// Every line of the log folder `dir`, its files in write order (their names sort so).
fn log_lines(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the log folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("a log file")
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// A broker, and a first run that trades through it to the end of `rows` rows of GOOG.
struct Traded {
    dir: tempfile::TempDir,
    broker: BrokerProcess,
    cfg: PathBuf,
    data: PathBuf,
    orders: Vec<(String, String)>,
}

fn traded(rows: usize, broker_rows: usize, pg: Option<&str>) -> Traded {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = goog_rows(dir.path(), "full.csv", broker_rows);
    let broker = BrokerProcess::start(dir.path(), &full);
    let data = dir.path().join("GOOG_1d.csv");
    std::fs::copy(goog_rows(dir.path(), "first.csv", rows), &data).expect("data");
    let cfg = write_config(dir.path(), &data, &broker, pg);
    Running::start(&run_args(&cfg)).finish_ok();
    let orders = broker_orders(&broker);
    assert!(
        orders.len() >= 5,
        "too few orders to mean anything: {orders:?}"
    );
    Traded {
        dir,
        broker,
        cfg,
        data,
        orders,
    }
}

impl Traded {
    fn store(&self) -> PathBuf {
        self.dir.path().join("state/vigil.db")
    }

    /// A `vigil run` that is expected to be refused: exit 3, the message on standard error,
    /// nothing sent to the broker. Returns standard error.
    fn refused(&self, says: &[&str]) -> String {
        let out = vigil()
            .args(run_args(&self.cfg))
            .output()
            .expect("run vigil");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(3), "refused with exit 3: {stderr}");
        for needle in says {
            assert!(stderr.contains(needle), "{needle:?} in: {stderr}");
        }
        assert!(
            !stderr.contains("ready to trade") && !stderr.contains("running; Ctrl-C"),
            "{stderr}"
        );
        assert_eq!(
            broker_orders(&self.broker),
            self.orders,
            "nothing was sent to the broker"
        );
        stderr
    }
}

/// What every refusal says: what is lost, and the two ways to recover.
const RECOVER: [&str; 4] = [
    "lost its history; vigil refuses to start: nothing was sent and nothing was changed",
    "To recover: restore the store from its latest backup",
    "vigil run --rebuild-journal-from-broker",
    "docs/recovery.md",
];

#[test]
fn a_store_cut_to_zero_bytes_is_refused_and_left_as_it_is() {
    let t = traded(300, 300, None);
    let store = t.store();
    for extra in ["-wal", "-shm"] {
        let mut p = store.as_os_str().to_owned();
        p.push(extra);
        // Absent once the store was closed cleanly.
        if let Err(e) = std::fs::remove_file(PathBuf::from(p))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            panic!("{e}");
        }
    }
    std::fs::write(&store, b"").expect("cut the store to 0 bytes");
    let stderr = t.refused(&RECOVER);
    assert!(stderr.contains("is empty (0 bytes)"), "{stderr}");
    assert!(stderr.contains("vigil.db.identity"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&store).expect("still there").len(),
        0,
        "nothing was written to it"
    );
}

#[test]
fn a_deleted_store_is_refused_and_not_created_again() {
    let t = traded(300, 300, None);
    let store = t.store();
    let state = store.parent().expect("folder").to_path_buf();
    for entry in std::fs::read_dir(&state).expect("state folder").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("vigil.db") && !name.ends_with(".identity") {
            std::fs::remove_file(entry.path()).expect("delete the store");
        }
    }
    let stderr = t.refused(&RECOVER);
    assert!(stderr.contains("is missing"), "{stderr}");
    assert!(!store.exists(), "no empty store was created in its place");
}

/// The journal's tables emptied behind vigil's back, the rest of the store intact.
#[test]
fn emptied_journal_tables_are_refused() {
    let t = traded(300, 300, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pool = vigil_store::open_sqlite(&t.store()).await.expect("pool");
        for table in [
            "journal_orders",
            "journal_fills",
            "journal_positions",
            "journal_cash",
            "journal_adjustments",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&pool)
                .await
                .expect(table);
        }
        pool.close().await;
    });
    let stderr = t.refused(&RECOVER);
    assert!(
        stderr.contains("the journal lost") && stderr.contains("high-water mark"),
        "{stderr}"
    );
    assert!(stderr.contains("the identity file recorded"), "{stderr}");
    let lost: Vec<Value> = vigil_log_lines(&t.dir.path().join("logs"))
        .into_iter()
        .filter(|l| l["event"] == "store_history_lost")
        .collect();
    assert_eq!(lost.len(), 1, "the refusal is in the log: {lost:#?}");
    assert_eq!(lost[0]["level"], "CRITICAL");
}

/// The journal's last bar moved to 2099 (as a bar from the future did before vigil refused
/// them): the run would skip every true bar, so it is refused, with the clock to check.
#[test]
fn a_journal_whose_last_bar_is_from_the_future_is_refused() {
    let t = traded(300, 300, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pool = vigil_store::open_sqlite(&t.store()).await.expect("pool");
        for table in ["journal_cash", "store_high_water"] {
            sqlx::query(&format!(
                "UPDATE {table} SET last_bar_at = '2099-01-01T00:00:00.000Z'"
            ))
            .execute(&pool)
            .await
            .expect(table);
        }
        pool.close().await;
    });
    let stderr = t.refused(&["is from the future", "Check the machine's clock"]);
    assert!(stderr.contains("2099-01-01T00:00:00Z"), "{stderr}");
}

/// A page of the notification log (outside the journal) overwritten with garbage: SQLite's
/// integrity check fails, and the start is refused with its first lines.
#[test]
fn a_store_with_a_damaged_page_outside_the_journal_is_refused_with_the_check() {
    let t = traded(300, 300, None);
    let store = t.store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (page_size, root) = rt.block_on(async {
        use sqlx::Row as _;
        let pool = vigil_store::open_sqlite(&store).await.expect("pool");
        let size: i64 = sqlx::query("PRAGMA page_size")
            .fetch_one(&pool)
            .await
            .expect("page size")
            .get(0);
        let root: i64 = sqlx::query("SELECT rootpage FROM sqlite_master WHERE name = 'alert_log'")
            .fetch_one(&pool)
            .await
            .expect("alert_log's page")
            .get(0);
        // The pages into the file itself.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .expect("checkpoint");
        pool.close().await;
        (size, root)
    });
    let mut bytes = std::fs::read(&store).expect("read the store");
    let start = usize::try_from((root - 1) * page_size).expect("offset");
    for (i, b) in bytes[start..start + 64].iter_mut().enumerate() {
        *b = 0x5A ^ (i as u8);
    }
    std::fs::write(&store, &bytes).expect("write garbage into the page");
    let out = vigil().args(run_args(&t.cfg)).output().expect("run vigil");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("failed its integrity check")
            && stderr.contains("the file was left as it is"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("page {root}")),
        "the check's report: {stderr}"
    );
    assert!(
        stderr.contains("restore the store from its latest backup"),
        "{stderr}"
    );
    assert_eq!(broker_orders(&t.broker), t.orders, "nothing was sent");
    assert_eq!(std::fs::read(&store).expect("read"), bytes, "left as it is");
}

/// The store and its identity file both gone: the log and the broker still remember.
#[test]
fn with_the_identity_file_gone_too_the_log_and_the_broker_remember() {
    let t = traded(300, 300, None);
    std::fs::remove_dir_all(t.store().parent().expect("folder")).expect("delete state/");
    let stderr = t.refused(&RECOVER);
    assert!(
        stderr.contains("but the log in") && stderr.contains("reconciled it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("but the broker holds") && stderr.contains("of vigil's"),
        "{stderr}"
    );
}

/// The store lost (deleted with its WAL); `--rebuild-journal-from-broker` rebuilds the
/// journal, resumes after the last decision of the first run, and trades on the new bars
/// only: no past order is decided, sent, refused as a duplicate or cancelled again. The next
/// start is an ordinary one.
#[test]
fn the_rebuild_from_the_broker_resumes_without_sending_any_past_order() {
    let t = traded(300, 360, None);
    let before = t.orders.clone();
    let fills_before = broker_fill_ids(&t.broker);
    let last_decided = before
        .iter()
        .filter_map(|(id, _)| vigil_core::ClientOrderId::from(id.as_str()).decided_at())
        .max()
        .expect("decisions");
    for entry in std::fs::read_dir(t.store().parent().expect("folder"))
        .expect("state")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("vigil.db") && !name.ends_with(".identity") {
            std::fs::remove_file(entry.path()).expect("delete the store");
        }
    }
    // Refused without the flag; the flag is refused when nothing is lost (below).
    t.refused(&RECOVER);
    // The data goes on: 60 more sessions.
    std::fs::copy(goog_rows(t.dir.path(), "second.csv", 360), &t.data).expect("data");
    let lines_before = log_lines(&t.dir.path().join("logs")).len();
    let mut args = run_args(&t.cfg);
    args.push("--rebuild-journal-from-broker".as_ref());
    let out = Running::start(&args).finish_ok();
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the JSON summary");
    let lines: Vec<Value> = log_lines(&t.dir.path().join("logs"))
        .into_iter()
        .skip(lines_before)
        .collect();
    let of =
        |event: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == event).collect() };

    // Recorded: the log and the store.
    let rebuilt = of("journal_rebuilt");
    assert_eq!(rebuilt.len(), 1, "{rebuilt:#?}");
    let summary_text = rebuilt[0]["data"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary_text.contains(&format!("{} fill(s) journaled", fills_before.len())),
        "{summary_text}"
    );
    let resumes: Vec<&Value> = of("reconciliation_completed")
        .into_iter()
        .filter(|l| l["data"]["trigger"] == "start")
        .collect();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0]["data"]["passed"], true, "{:#}", resumes[0]);
    let resume_after: chrono::DateTime<chrono::Utc> = resumes[0]["data"]["resume_after"]
        .as_str()
        .expect("a resume point")
        .parse()
        .expect("time");
    assert!(
        resume_after >= last_decided,
        "resumes after {resume_after}, the first run decided until {last_decided}"
    );

    // Nothing past decided, sent, refused or cancelled again; the new bars traded.
    for l in of("order_submitted") {
        let decided = l["trace_id"]
            .as_str()
            .and_then(|t| vigil_core::TraceId::from(t).decided_at())
            .expect("a decision time");
        assert!(decided > resume_after, "a past decision again: {l:#}");
    }
    assert!(
        of("order_rejected").is_empty(),
        "{:#?}",
        of("order_rejected")
    );
    for l in of("order_cancel_requested") {
        let id = l["data"]["order_id"].as_str().unwrap_or_default();
        assert!(
            !before.iter().any(|(past, _)| past == id),
            "a past order cancelled again: {l:#}"
        );
    }
    let after = broker_orders(&t.broker);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the past orders as they were"
    );
    let new: Vec<&(String, String)> = after[before.len()..].iter().collect();
    assert!(!new.is_empty(), "the new bars were traded");
    for (id, _) in &new {
        let decided = vigil_core::ClientOrderId::from(id.as_str())
            .decided_at()
            .expect("vigil's");
        assert!(decided > resume_after, "{id} is a past decision");
    }
    let ids: HashSet<&str> = after.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), after.len(), "every client order id once");
    assert_eq!(summary["trading_state"], "active", "{summary:#}");

    // The next start is an ordinary one; the flag is refused with nothing lost.
    let out = Running::start(&run_args(&t.cfg)).finish_ok();
    assert!(out.status.success());
    assert_eq!(
        broker_orders(&t.broker),
        after,
        "nothing new on the same data"
    );
    // After it, the journal holds every fill the broker holds (an order decided on the
    // last bar may fill at the broker after the rebuilding run's final read of its fills:
    // the next start recovers it), and the rebuild is on record.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (journaled, rebuilds) = rt.block_on(async {
        let store = vigil_store::Store::open(&t.store()).await.expect("store");
        let book = format!("broker:{}", t.broker.url);
        let rec = vigil_store::StateStore::journal_recovery(&store, &book)
            .await
            .expect("journal");
        let rebuilds = vigil_store::StateStore::journal_rebuilds(&store)
            .await
            .expect("rebuilds");
        vigil_store::StateStore::close(&store).await;
        (
            rec.fills
                .into_iter()
                .map(|f| f.fill_id)
                .collect::<HashSet<_>>(),
            rebuilds,
        )
    });
    assert_eq!(journaled, broker_fill_ids(&t.broker));
    assert_eq!(rebuilds.len(), 1, "{rebuilds:?}");
    assert!(rebuilds[0].reason.contains("is missing"), "{rebuilds:?}");

    let out = vigil().args(args).output().expect("run vigil");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("there is nothing to rebuild"), "{stderr}");
}

/// With the store in PostgreSQL, a new empty schema in place of the one vigil ran with is
/// refused: the identity file in the log folder remembers.
#[test]
fn with_the_store_in_postgresql_a_new_schema_is_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(first) = rt
        .block_on(PgTestSchema::create(
            "with_the_store_in_postgresql_a_new_schema_is_refused",
        ))
        .expect("a schema")
    else {
        return;
    };
    let Some(second) = rt
        .block_on(PgTestSchema::create(
            "with_the_store_in_postgresql_a_new_schema_is_refused",
        ))
        .expect("a schema")
    else {
        return;
    };
    let t = traded(300, 300, Some(first.url()));
    assert!(!t.store().exists(), "store.path is not used with store.url");
    assert!(t.dir.path().join("logs/store.identity").exists());
    write_config(t.dir.path(), &t.data, &t.broker, Some(second.url()));
    let stderr = t.refused(&RECOVER);
    assert!(
        stderr.contains("has no identity") && stderr.contains("store.identity"),
        "{stderr}"
    );
    rt.block_on(first.drop_schema()).expect("drop");
    rt.block_on(second.drop_schema()).expect("drop");
}
