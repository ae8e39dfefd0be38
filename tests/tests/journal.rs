//! The execution journal in a real session: every order and fill of the embedded paper run
//! is in the store, and the journaled book is the book the session ended with; with the
//! store in the SQLite file (the default) and in PostgreSQL (`store.url`).

use std::collections::HashSet;

use rust_decimal::Decimal;
use vigil_config::{Secret, VigilConfig};
use vigil_session::{SessionOptions, run};
use vigil_store::PgTestSchema;
use vigil_tests::{config_for, events, read_log, repo_data};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_session_journals_every_order_and_fill_and_ends_with_the_same_book() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("GOOG_1d.csv"), "GOOG", dir.path());
    cfg.store.journal_paper_venue = true;
    a_session_journals_its_book(cfg);
}

#[test]
fn a_session_with_its_store_in_postgresql_journals_the_same_way() {
    let rt = runtime();
    let Some(schema) = rt
        .block_on(PgTestSchema::create(
            "a_session_with_its_store_in_postgresql_journals_the_same_way",
        ))
        .expect("a schema for the test")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("GOOG_1d.csv"), "GOOG", dir.path());
    cfg.store.journal_paper_venue = true;
    cfg.store.url = Some(Secret::new(schema.url()));
    let path = cfg.store.path.clone();
    a_session_journals_its_book(cfg);
    assert!(!path.exists(), "store.path is not used with store.url");
    rt.block_on(schema.drop_schema()).expect("drop the schema");
}

/// Runs the session `cfg` describes and checks the journal it leaves in its store.
fn a_session_journals_its_book(cfg: VigilConfig) {
    let store_cfg = cfg.store.clone();
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    let s = &outcome.summary;
    assert_eq!(s.error, None);
    assert!(s.fills > 20, "{}", s.fills);

    let (books, book, open, alerts) = runtime().block_on(async {
        let store = vigil_store::open_store(&store_cfg).await.expect("store");
        let books = store.journal_books().await.expect("books");
        let book = store.journal_book(&books[0]).await.expect("book");
        let open = store.journal_open_orders(&books[0]).await.expect("open");
        let alerts = store.alert_state().await.expect("alert state");
        store.close().await;
        (books, book, open, alerts)
    });
    assert!(alerts.is_some(), "the Monitor saved its alert state");
    assert_eq!(books.len(), 1, "{books:?}");
    assert!(books[0].starts_with("paper:"), "{books:?}");
    assert_eq!(book.fills, s.fills);
    assert_eq!(book.cash, Some(s.final_cash));
    let held: Vec<(String, Decimal)> = book
        .positions
        .iter()
        .map(|(sym, q, _)| (sym.clone(), *q))
        .collect();
    let expected: Vec<(String, Decimal)> = s
        .positions
        .iter()
        .filter(|(_, q)| !q.is_zero())
        .map(|(sym, q)| (sym.to_string(), *q))
        .collect();
    assert_eq!(held, expected);

    // The orders still open in the journal are those the log shows neither filled,
    // cancelled nor rejected.
    let log = read_log(&outcome.log_dir);
    let ids = |event: &str| -> HashSet<String> {
        events(&log, event)
            .iter()
            .filter_map(|v| v["data"]["order_id"].as_str().map(str::to_string))
            .collect()
    };
    let closed: HashSet<String> = ["order_filled", "order_cancelled", "order_rejected"]
        .iter()
        .flat_map(|e| ids(e))
        .collect();
    let still_open: HashSet<String> = ids("order_submitted")
        .difference(&closed)
        .cloned()
        .collect();
    let journal_open: HashSet<String> = open
        .iter()
        .map(|o| o.order.client_order_id.to_string())
        .collect();
    assert_eq!(journal_open, still_open);
}
