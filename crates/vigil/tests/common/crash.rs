//! What the crash loops share (tests/recovery.rs against `vigil broker`, tests/fix.rs against
//! a FIX counterparty): the kill points, the journal's fills, the summary's positions, and
//! `vigil reconcile` at the end.

use std::path::Path;

use rust_decimal::Decimal;
use serde_json::Value;
use vigil_store::{PgTestSchema, RecordedFill};

use super::broker::dec;
use super::vigil;

/// A pseudo-random delay in [lo, hi) ms from a seeded xorshift: different points each kill,
/// the same points each run.
pub(crate) fn delays(n: usize, lo: u64, hi: u64) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lo + x % (hi - lo)
        })
        .collect()
}

/// The fills the journal holds for the one broker book of the store in `dir` (the SQLite
/// file `state/vigil.db`, or the PostgreSQL schema `pg`), with the book's name.
pub(crate) fn journal_fills(dir: &Path, pg: Option<&PgTestSchema>) -> (String, Vec<RecordedFill>) {
    let store = vigil_config::StoreConfig {
        path: dir.join("state/vigil.db"),
        url: pg.map(|s| vigil_config::Secret::new(s.url())),
        ..vigil_config::StoreConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = vigil_store::open_store(&store)
            .await
            .expect("open the store");
        let books = store.journal_books().await.expect("books");
        assert_eq!(books.len(), 1, "one broker book: {books:?}");
        let rec = store.journal_recovery(&books[0]).await.expect("journal");
        store.close().await;
        (books[0].clone(), rec.fills)
    })
}

/// The non-zero positions of a `vigil run --json` summary.
pub(crate) fn positions_of(summary: &Value) -> Vec<(String, Decimal)> {
    summary["positions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["symbol"].as_str().unwrap_or_default().to_string(),
                dec(&p["quantity"]),
            )
        })
        .filter(|(_, q)| !q.is_zero())
        .collect()
}

/// `vigil reconcile --json` against the broker: its exit code and what it printed.
pub(crate) fn reconcile(cfg: &Path) -> (i32, Value) {
    let out = vigil()
        .args(["reconcile", "--json", "--config"])
        .arg(cfg)
        .output()
        .expect("run vigil reconcile");
    let code = out.status.code().unwrap_or(-1);
    let body = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "vigil reconcile printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, body)
}
