//! [`reconcile`](crate::reconcile) against a venue whose book is set by hand and a SQLite
//! journal: each kind of difference a restart meets, what is journaled, and a dry run.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use vigil_core::{
    ClientOrderId, ExecutionReport, Fill, OrderAck, OrderRequest, OrderStatus, OrderType, Side,
    Symbol, SymbolId, SymbolTable, VenueOrder,
};
use vigil_providers::{Account, ExecutionVenue, VenueError, VenuePosition};
use vigil_store::{JournalEntry, JournalOrder, JournalStatus, StateStore, Store};

use crate::{Difference, OpenOrderPolicy, ReconcileOptions, reconcile};

const A: &str = "tx_20240102T143000_GOOG-1";
const B: &str = "tx_20240102T150000_GOOG-1";
const C: &str = "tx_20240102T153000_GOOG-1";

fn at() -> DateTime<Utc> {
    "2024-01-03T09:00:00Z".parse().expect("time")
}

fn symbols() -> SymbolTable {
    SymbolTable::new([Symbol::from("GOOG")])
}

/// A venue that holds what it is given, and counts the cancels asked of it.
struct HeldVenue {
    fills: Vec<Fill>,
    orders: HashMap<ClientOrderId, VenueOrder>,
    positions: Vec<VenuePosition>,
    cash: Decimal,
    cancelled: Mutex<Vec<ClientOrderId>>,
}

#[async_trait]
impl ExecutionVenue for HeldVenue {
    fn name(&self) -> &str {
        "held"
    }
    async fn submit_order(&self, _order: &OrderRequest) -> Result<OrderAck, VenueError> {
        panic!("recovery never sends an order")
    }
    async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError> {
        self.cancelled.lock().expect("lock").push(id.clone());
        Ok(())
    }
    async fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError> {
        let mut open: Vec<VenueOrder> = self
            .orders
            .values()
            .filter(|o| o.status.is_open())
            .cloned()
            .collect();
        open.sort_by(|a, b| a.request.client_order_id.cmp(&b.request.client_order_id));
        Ok(open)
    }
    async fn positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        Ok(self.positions.clone())
    }
    async fn account(&self) -> Result<Account, VenueError> {
        Ok(Account {
            cash: self.cash,
            equity: self.cash,
        })
    }
    async fn order(&self, id: &ClientOrderId) -> Result<Option<VenueOrder>, VenueError> {
        Ok(self.orders.get(id).cloned())
    }
    fn drain_reports(&self, out: &mut Vec<ExecutionReport>) {
        out.extend(self.fills.iter().cloned().map(ExecutionReport::Fill));
    }
}

fn request(id: &str, quantity: Decimal) -> OrderRequest {
    vigil_testkit::order_request(id, 0, Side::Buy, quantity, None, at())
}

fn venue_order(id: &str, status: OrderStatus, filled: Decimal) -> (ClientOrderId, VenueOrder) {
    (
        ClientOrderId::from(id),
        VenueOrder {
            request: request(id, dec!(2)),
            status,
            filled_quantity: filled,
        },
    )
}

fn intent(id: &str) -> JournalEntry {
    JournalEntry::Intent(JournalOrder {
        client_order_id: id.into(),
        trace_id: id.into(),
        symbol: "GOOG".into(),
        side: Side::Buy,
        quantity: dec!(2),
        order_type: OrderType::Market,
        limit_price: None,
        reference_price: dec!(100),
        decided_at: at(),
    })
}

/// The journal of a run that crashed: a book opened with 1000; order A accepted, B and C
/// sent without an answer.
async fn crashed_journal(dir: &std::path::Path) -> Store {
    let store = Store::open(&dir.join("vigil.db")).await.expect("store");
    let entries = [
        JournalEntry::OpenBook {
            cash: dec!(1000),
            fill_cursor: None,
        },
        intent(A),
        JournalEntry::Status {
            client_order_id: A.into(),
            status: JournalStatus::Accepted,
            venue_order_id: Some("v-1".into()),
            filled_quantity: None,
            reason: None,
        },
        intent(B),
        intent(C),
    ];
    store
        .journal("main", &entries, at())
        .await
        .expect("journaled");
    store
}

/// While vigil was down: A filled (2 at 100), B reached the venue and works there, C never
/// did, and someone placed an order of their own.
fn venue() -> HeldVenue {
    HeldVenue {
        fills: vec![Fill {
            client_order_id: ClientOrderId::from(A),
            fill_id: "f-1".into(),
            symbol: SymbolId(0),
            side: Side::Buy,
            quantity: dec!(2),
            price: dec!(100),
            commission: dec!(0),
            leaves_quantity: dec!(0),
            ts: at(),
        }],
        orders: HashMap::from([
            venue_order(A, OrderStatus::Filled, dec!(2)),
            venue_order(B, OrderStatus::Accepted, dec!(0)),
            venue_order("by-hand-1", OrderStatus::Accepted, dec!(0)),
        ]),
        positions: vec![VenuePosition {
            symbol: SymbolId(0),
            quantity: dec!(2),
            avg_price: dec!(100),
        }],
        cash: dec!(800),
        cancelled: Mutex::new(Vec::new()),
    }
}

fn kinds(differences: &[Difference]) -> Vec<&'static str> {
    differences.iter().map(Difference::kind).collect()
}

/// What a reconciliation of the crashed journal against [`venue`] finds: the fill, A
/// closed, B as `b` says (adopted or cancelled), C failed, the stranger's order, and
/// `then` (a difference the venue was given more).
fn crash_explained(b: &'static str, then: Option<&'static str>) -> Vec<&'static str> {
    let mut kinds = vec![
        "fill_recovered",
        "order_closed",
        b,
        "intent_failed",
        "unknown_open_order",
    ];
    kinds.extend(then);
    kinds
}

const ADOPT: ReconcileOptions = ReconcileOptions {
    open_orders: OpenOrderPolicy::Adopt,
    dry_run: false,
};

#[tokio::test]
async fn a_restart_recovers_the_fill_adopts_and_fails_the_intents_and_reports_a_strangers_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crashed_journal(dir.path()).await;
    let venue = venue();
    let rec = reconcile(&store, "main", &venue, &symbols(), ADOPT, at())
        .await
        .expect("reconciled");
    assert_eq!(
        kinds(&rec.differences),
        crash_explained("intent_adopted", None)
    );
    // Only the stranger's order is not explained by the crash.
    assert!(!rec.passed());
    assert!(
        rec.mismatches().starts_with("unknown_open_order by-hand-1"),
        "{}",
        rec.mismatches()
    );
    assert_eq!((rec.cash, rec.fills_recovered), (dec!(800), 1));
    assert_eq!(rec.open_orders.len(), 1);
    assert_eq!(rec.open_orders[0].order.request.client_order_id.as_str(), B);

    // Journaled: the next restart meets only the stranger's order.
    let again = reconcile(&store, "main", &venue, &symbols(), ADOPT, at())
        .await
        .expect("reconciled");
    assert_eq!(kinds(&again.differences), ["unknown_open_order"]);
    assert_eq!((again.fills_journaled, again.fills_recovered), (1, 0));
}

#[tokio::test]
async fn a_dry_run_journals_nothing_and_cancels_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crashed_journal(dir.path()).await;
    let mut venue = venue();
    // The venue's cash moved too: taken (in a real run), a mismatch.
    venue.cash = dec!(790);
    let opts = ReconcileOptions {
        open_orders: OpenOrderPolicy::Cancel,
        dry_run: true,
    };
    for _ in 0..2 {
        let rec = reconcile(&store, "main", &venue, &symbols(), opts, at())
            .await
            .expect("reconciled");
        assert_eq!(
            kinds(&rec.differences),
            crash_explained("order_cancelled", Some("cash"))
        );
    }
    assert!(venue.cancelled.lock().expect("lock").is_empty());
    let journal = store.journal_recovery("main").await.expect("read");
    assert!(journal.fills.is_empty());
}

#[tokio::test]
async fn a_new_book_opens_from_the_venues_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("vigil.db"))
        .await
        .expect("store");
    let venue = venue();
    let rec = reconcile(&store, "main", &venue, &symbols(), ADOPT, at())
        .await
        .expect("reconciled");
    assert!(rec.opened);
    assert_eq!(rec.cash, dec!(800));
    assert_eq!(rec.positions, venue.positions);
    // Vigil's B and the stranger's order: neither is in a journal that did not exist.
    assert_eq!(
        kinds(&rec.differences),
        ["unknown_open_order", "unknown_open_order"]
    );
    let journal = store.journal_recovery("main").await.expect("read");
    assert_eq!(journal.book.cash, Some(dec!(800)));
}
