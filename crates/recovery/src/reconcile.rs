//! [`reconcile`]: the journal against the venue before any trading, when a session starts
//! on a venue that outlives the process (a broker), and on demand (`vigil reconcile`). In
//! order:
//! 1. the fills the venue made after the last one journaled (while vigil was down, or
//!    between the venue's fill and its journal commit) are fetched and journaled with the
//!    positions and cash they leave; a fill of an order the journal does not hold (a trade
//!    made at the broker by hand) is an *external fill*;
//! 2. every order the journal holds as open, or as an intent the venue never answered, is
//!    looked up at the venue by client order id: adopted (or cancelled, per policy) when it
//!    is open there, closed as the venue says otherwise, marked failed when the venue never
//!    received it — never sent again;
//! 3. the venue's open orders the journal does not know are reported and left alone;
//! 4. positions: each symbol where the journal differs from the venue takes the venue's
//!    figure, journaled as an adjustment;
//! 5. cash: recomputed from the opening cash, every fill and every adjustment, compared with
//!    the journal's own figure (a journal that does not add up) and with the venue's account;
//!    the venue's figure is taken.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use vigil_core::{
    ClientOrderId, ExecutionReport, OrderStatus, Portfolio, SymbolTable, Timestamp, VenueOrder,
};
use vigil_providers::{ExecutionVenue, VenueError, VenuePosition};
use vigil_store::{
    Adjustment, JournalEntry, JournalRecovery, JournalStatus, StateStore, StoreError,
};

use crate::Difference;
use crate::books::{fill_entry, journal_positions, position_gaps, take_cash, take_position};

/// What to do with an order of vigil's that is still open at the venue after a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenOrderPolicy {
    /// Keep it working and track it again.
    Adopt,
    /// Cancel it: the restarted strategy decides afresh.
    Cancel,
}

/// How a reconciliation is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// What becomes of vigil's orders still open at the venue.
    pub open_orders: OpenOrderPolicy,
    /// Only look: journal nothing, cancel nothing (`vigil reconcile`).
    pub dry_run: bool,
}

/// An order of vigil's that is open at the venue and tracked again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdoptedOrder {
    /// The order as the venue holds it.
    pub order: VenueOrder,
    /// The decision chain it came from, as journaled.
    pub trace_id: Option<Arc<str>>,
    /// The price the decision used.
    pub reference_price: Decimal,
}

/// The outcome: the book to trade from (the venue's), and the differences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    /// The journal's book.
    pub book: String,
    /// The book was new: opened from the venue's account, nothing compared.
    pub opened: bool,
    /// Cash to trade from (the venue's).
    pub cash: Decimal,
    /// Positions to trade from (the venue's).
    pub positions: Vec<VenuePosition>,
    /// Vigil's orders open at the venue, tracked again.
    pub open_orders: Vec<AdoptedOrder>,
    /// The market time of the last bar the previous run handled.
    pub last_bar_at: Option<Timestamp>,
    /// Fills the journal held before.
    pub fills_journaled: u64,
    /// Fills fetched from the venue and journaled now.
    pub fills_recovered: u64,
    /// Everything that differed.
    pub differences: Vec<Difference>,
    /// The sub-ledgers as last journaled (JSON), if the book was ever split by version.
    pub ledgers: Option<String>,
}

impl Reconciliation {
    /// Passed: nothing differed that a crash does not explain.
    pub fn passed(&self) -> bool {
        !self.differences.iter().any(Difference::is_mismatch)
    }

    /// The mismatches, one line each, for the CRITICAL event and the alert.
    pub fn mismatches(&self) -> String {
        crate::mismatch_text(&self.differences)
    }
}

/// Why a reconciliation could not be run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The journal could not be read or written.
    #[error("reconciliation: {0}")]
    Store(#[from] StoreError),
    /// The venue could not be asked.
    #[error("reconciliation: {0}")]
    Venue(#[from] VenueError),
    /// The journal holds something this session cannot trade or understand.
    #[error("reconciliation: {0}")]
    Journal(String),
}

/// Reconciles `book` of `store` (either backend) with `venue` (see the module's
/// documentation), journaling what it finds at wall time `at` unless `opts.dry_run`.
///
/// # Errors
/// When the journal cannot be read or written or the venue cannot be asked: nothing is
/// known then, and trading must not open.
pub async fn reconcile(
    store: &dyn StateStore,
    book: &str,
    venue: &dyn ExecutionVenue,
    symbols: &SymbolTable,
    opts: ReconcileOptions,
    at: DateTime<Utc>,
) -> Result<Reconciliation, ReconcileError> {
    let journal = store.journal_recovery(book).await?;
    let mut entries = Vec::new();
    let outcome = if journal.book.cash.is_none() {
        open_book(book, venue, symbols, &mut entries).await?
    } else {
        compare(store, book, journal, venue, symbols, opts, &mut entries).await?
    };
    if !opts.dry_run && !entries.is_empty() {
        store.journal(book, &entries, at).await?;
    }
    Ok(outcome)
}

/// A new book: it opens with the venue's cash and positions, and its fills are the ones
/// after the venue's newest.
async fn open_book(
    book: &str,
    venue: &dyn ExecutionVenue,
    symbols: &SymbolTable,
    entries: &mut Vec<JournalEntry>,
) -> Result<Reconciliation, ReconcileError> {
    let cursor = venue.newest_fill_id().await?;
    venue.resume_reports_after(cursor.as_deref());
    let account = venue.account().await?;
    let positions = venue.positions().await?;
    let open = venue.open_orders().await?;
    entries.push(JournalEntry::OpenBook {
        cash: account.cash,
        fill_cursor: cursor.map(Arc::from),
    });
    let mut differences = Vec::new();
    for p in &positions {
        entries.push(JournalEntry::Adjust(Adjustment::Position {
            symbol: symbols.shared(p.symbol),
            before: Decimal::ZERO,
            after: p.quantity,
            avg_price: p.avg_price,
            reason: "the book opened with the venue's position".into(),
        }));
    }
    for o in &open {
        differences.push(Difference::unknown_open_order(o, symbols));
    }
    Ok(Reconciliation {
        book: book.to_string(),
        opened: true,
        cash: account.cash,
        positions,
        open_orders: Vec::new(),
        last_bar_at: None,
        fills_journaled: 0,
        fills_recovered: 0,
        differences,
        ledgers: None,
    })
}

/// The journal's status of an order the venue holds at `s`.
pub(crate) fn journal_status(s: OrderStatus) -> JournalStatus {
    match s {
        OrderStatus::New | OrderStatus::Accepted => JournalStatus::Accepted,
        OrderStatus::PartiallyFilled => JournalStatus::PartiallyFilled,
        OrderStatus::Filled => JournalStatus::Filled,
        OrderStatus::Cancelled => JournalStatus::Cancelled,
        OrderStatus::Rejected => JournalStatus::Rejected,
    }
}

async fn compare(
    store: &dyn StateStore,
    book: &str,
    journal: JournalRecovery,
    venue: &dyn ExecutionVenue,
    symbols: &SymbolTable,
    opts: ReconcileOptions,
    entries: &mut Vec<JournalEntry>,
) -> Result<Reconciliation, ReconcileError> {
    let mut differences = Vec::new();
    let journal_cash = journal.book.cash.unwrap_or_default();
    // The journal's book, in a portfolio that books the recovered fills as the agent would.
    let held = journal_positions(
        book,
        &journal.book.positions,
        symbols,
        "add it to [data] instruments or close it by hand",
    )?;
    let mut portfolio = Portfolio::new(journal_cash);
    portfolio.resync(journal_cash, held.iter().copied());

    // 1. Fills after the last one journaled.
    venue.resume_reports_after(journal.fill_cursor());
    venue.sync_reports().await?;
    let mut reports = Vec::new();
    venue.drain_reports(&mut reports);
    // The venue's fills after the cursor that the journal holds all the same (a venue that
    // orders its fills otherwise), looked up by id: the journal is not read whole.
    let candidates: Vec<&str> = reports
        .iter()
        .filter_map(|r| match r {
            ExecutionReport::Fill(f) => Some(f.fill_id.as_str()),
            _ => None,
        })
        .collect();
    let known = store.journal_known_fills(book, &candidates).await?;
    let ours: HashMap<&str, &vigil_store::JournaledOrder> = journal
        .open_orders
        .iter()
        .map(|o| (&*o.order.client_order_id, o))
        .collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut recovered_cash_flow = Decimal::ZERO;
    let mut fills_recovered = 0;
    for r in &reports {
        let ExecutionReport::Fill(fill) = r else {
            continue;
        };
        if known.contains(&fill.fill_id) || !taken.insert(fill.fill_id.clone()) {
            continue;
        }
        fills_recovered += 1;
        portfolio.apply_fill(fill);
        recovered_cash_flow +=
            vigil_store::fill_cash_flow(fill.side, fill.quantity, fill.price, fill.commission);
        entries.push(fill_entry(fill, symbols.shared(fill.symbol), &portfolio));
        differences.push(Difference::fill(
            fill,
            symbols,
            ours.contains_key(fill.client_order_id.as_str()),
        ));
    }

    // 2. The journal's open orders and unanswered intents, looked up one by one.
    let mut adopted = Vec::new();
    let mut tracked: HashSet<ClientOrderId> = HashSet::new();
    for o in &journal.open_orders {
        let id = ClientOrderId::from(&*o.order.client_order_id);
        tracked.insert(id.clone());
        let Some(at_venue) = venue.order(&id).await? else {
            let never_answered = o.status == JournalStatus::Intent;
            differences.push(if never_answered {
                Difference::IntentFailed { order: id.clone() }
            } else {
                Difference::OrderUnknownAtVenue {
                    order: id.clone(),
                    journal: o.status,
                }
            });
            entries.push(JournalEntry::Status {
                client_order_id: id.shared(),
                status: JournalStatus::Failed,
                venue_order_id: None,
                filled_quantity: None,
                reason: Some("recovery: the venue never received it".into()),
            });
            continue;
        };
        let filled = at_venue.filled_quantity;
        if at_venue.status.is_open() {
            match opts.open_orders {
                OpenOrderPolicy::Adopt => {
                    if o.status == JournalStatus::Intent {
                        differences.push(Difference::IntentAdopted {
                            order: id.clone(),
                            venue: at_venue.status,
                        });
                    }
                    entries.push(JournalEntry::Status {
                        client_order_id: id.shared(),
                        status: journal_status(at_venue.status),
                        venue_order_id: None,
                        filled_quantity: Some(filled),
                        reason: None,
                    });
                    adopted.push(AdoptedOrder {
                        order: at_venue,
                        trace_id: Some(o.order.trace_id.clone()),
                        reference_price: o.order.reference_price,
                    });
                }
                OpenOrderPolicy::Cancel => {
                    if !opts.dry_run {
                        venue.cancel_order(&id).await?;
                    }
                    differences.push(Difference::OrderCancelled {
                        order: id.clone(),
                        journal: o.status,
                        venue: at_venue.status,
                    });
                    entries.push(JournalEntry::Status {
                        client_order_id: id.shared(),
                        status: JournalStatus::Cancelled,
                        venue_order_id: None,
                        filled_quantity: Some(filled),
                        reason: Some("recovery: cancelled after a restart".into()),
                    });
                }
            }
        } else {
            differences.push(Difference::OrderClosed {
                order: id.clone(),
                journal: o.status,
                venue: at_venue.status,
                filled,
            });
            entries.push(JournalEntry::Status {
                client_order_id: id.shared(),
                status: journal_status(at_venue.status),
                venue_order_id: None,
                filled_quantity: Some(filled),
                reason: Some("recovery: closed while vigil was down".into()),
            });
        }
    }

    // 3. Open orders at the venue that are not vigil's.
    let open = venue.open_orders().await?;
    for o in &open {
        if !tracked.contains(&o.request.client_order_id) {
            differences.push(Difference::unknown_open_order(o, symbols));
        }
    }

    // 4. Positions.
    let positions = venue.positions().await?;
    for (id, ours, venue_pos) in position_gaps(&portfolio, &positions) {
        let (d, e) = take_position(
            symbols.shared(id),
            ours,
            venue_pos,
            "reconciliation: the venue's position".into(),
        );
        differences.push(d);
        entries.push(e);
    }

    // 5. Cash: the journal must add up, and agree with the venue.
    let after_fills = portfolio.cash();
    if let Some(opening) = journal.opening_cash {
        // The checkpoint's sum and the fills after it.
        let recomputed =
            opening + journal.cash_adjusted + journal.fill_cash_flow() + recovered_cash_flow;
        if recomputed != after_fills {
            differences.push(Difference::JournalCash {
                journal: after_fills,
                recomputed,
            });
        }
    }
    let account = venue.account().await?;
    if account.cash != after_fills {
        let (d, e) = take_cash(
            after_fills,
            account.cash,
            "reconciliation: the venue's cash".into(),
        );
        differences.push(d);
        entries.push(e);
    }
    Ok(Reconciliation {
        book: book.to_string(),
        opened: false,
        cash: account.cash,
        positions,
        open_orders: adopted,
        last_bar_at: journal.last_bar_at,
        fills_journaled: journal.book.fills,
        fills_recovered,
        differences,
        ledgers: journal.book.ledgers.clone(),
    })
}
