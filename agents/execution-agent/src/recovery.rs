//! Recovery and reconciliation: the journal (what vigil knew) against the venue (the source
//! of truth).
//!
//! [`reconcile`] runs before any trading when a session starts on a venue that outlives the
//! process (a broker), and on demand (`vigil reconcile`). In order:
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
//!
//! Every finding is a [`Difference`]. Those that a crash explains (a fill that was not yet
//! journaled, an intent the venue did or did not receive) are resolved; the others
//! ([`Difference::mismatch`]) mean somebody or something changed the account behind vigil's
//! back, and trading does not open until a person has looked (see `docs/recovery.md`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use vigil_core::{
    ClientOrderId, ExecutionReport, Fill, OrderStatus, Portfolio, Side, SymbolId, SymbolTable,
    Timestamp, VenueOrder,
};
use vigil_providers::{Account, ExecutionVenue, VenueError, VenuePosition};
use vigil_store::{
    Adjustment, JournalEntry, JournalFill, JournalOrder, JournalRecovery, JournalStatus,
    StateStore, StoreError,
};

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

/// One thing the journal and the venue disagreed on, and what was done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// What kind: `fill_recovered`, `external_fill`, `intent_adopted`, `intent_failed`,
    /// `order_closed`, `order_cancelled`, `order_unknown_at_venue`, `unknown_open_order`,
    /// `position`, `cash`, `journal_cash`.
    pub kind: &'static str,
    /// The symbol, order or fill it is about.
    pub subject: String,
    /// What the journal held.
    pub journal: String,
    /// What the venue holds.
    pub venue: String,
    /// What was done (or, in a dry run, would be done).
    pub action: String,
    /// Not explained by a crash: the account changed behind vigil's back, or the journal
    /// does not add up. Trading stays closed until a person looks.
    pub mismatch: bool,
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
    /// Positions to trade from (the venue's): (symbol, signed quantity, average price).
    pub positions: Vec<(SymbolId, Decimal, Decimal)>,
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
}

impl Reconciliation {
    /// Passed: nothing differed that a crash does not explain.
    pub fn passed(&self) -> bool {
        !self.differences.iter().any(|d| d.mismatch)
    }

    /// The mismatches, one line each, for the CRITICAL event and the alert.
    pub fn mismatches(&self) -> String {
        mismatch_text(&self.differences)
    }
}

/// The mismatches among `differences`, one clause each; empty when there are none.
pub(crate) fn mismatch_text(differences: &[Difference]) -> String {
    differences
        .iter()
        .filter(|d| d.mismatch)
        .map(|d| {
            format!(
                "{} {}: journal {}, venue {} ({})",
                d.kind, d.subject, d.journal, d.venue, d.action
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every symbol held in `portfolio` or at the venue (`theirs`), in id order.
pub(crate) fn held_symbols(
    portfolio: &Portfolio,
    theirs: &HashMap<SymbolId, (Decimal, Decimal)>,
) -> Vec<SymbolId> {
    let mut all: Vec<SymbolId> = portfolio
        .positions()
        .filter(|(_, p)| !p.quantity.is_zero())
        .map(|(id, _)| id)
        .chain(theirs.keys().copied())
        .collect();
    all.sort_unstable_by_key(|id| id.0);
    all.dedup();
    all
}

/// A position that differs from the venue's, and the adjustment that takes the venue's.
/// The symbols whose position in `portfolio` differs from the venue's `positions`: each with
/// ours and the venue's (quantity, average price), in symbol order.
fn position_gaps(
    portfolio: &Portfolio,
    positions: &[VenuePosition],
) -> Vec<(SymbolId, Decimal, (Decimal, Decimal))> {
    let theirs: HashMap<SymbolId, (Decimal, Decimal)> = positions
        .iter()
        .map(|p| (p.symbol, (p.quantity, p.avg_price)))
        .collect();
    held_symbols(portfolio, &theirs)
        .into_iter()
        .map(|id| {
            let venue = theirs.get(&id).copied().unwrap_or_default();
            (id, portfolio.position(id).quantity, venue)
        })
        .filter(|(_, ours, venue)| *ours != venue.0)
        .collect()
}

/// The journal entry of `fill` (of `symbol`), with the position and cash `book` holds after
/// it: one shape for the fills booked in the session, recovered at start and rebuilt.
pub(crate) fn fill_entry(fill: &Fill, symbol: Arc<str>, book: &Portfolio) -> JournalEntry {
    let position = book.position(fill.symbol);
    JournalEntry::Fill(JournalFill {
        fill_id: fill.fill_id.as_str().into(),
        client_order_id: fill.client_order_id.shared(),
        symbol,
        side: fill.side,
        quantity: fill.quantity,
        price: fill.price,
        commission: fill.commission,
        filled_at: fill.ts,
        position_after: (position.quantity, position.avg_price),
        cash_after: book.cash(),
    })
}

pub(crate) fn take_position(
    symbol: Arc<str>,
    ours: Decimal,
    (venue, avg_price): (Decimal, Decimal),
    reason: String,
) -> (Difference, JournalEntry) {
    (
        Difference {
            kind: "position",
            subject: symbol.to_string(),
            journal: ours.to_string(),
            venue: venue.to_string(),
            action: "took the venue's".into(),
            mismatch: true,
        },
        JournalEntry::Adjust(Adjustment::Position {
            symbol,
            before: ours,
            after: venue,
            avg_price,
            reason,
        }),
    )
}

/// Cash that differs from the venue's, and the adjustment that takes the venue's.
pub(crate) fn take_cash(
    ours: Decimal,
    venue: Decimal,
    reason: String,
) -> (Difference, JournalEntry) {
    (
        Difference {
            kind: "cash",
            subject: "cash".into(),
            journal: ours.to_string(),
            venue: venue.to_string(),
            action: "took the venue's".into(),
            mismatch: true,
        },
        JournalEntry::Adjust(Adjustment::Cash {
            before: ours,
            after: venue,
            reason,
        }),
    )
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
        compare(book, journal, venue, symbols, opts, &mut entries).await?
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
        differences.push(unknown_open_order(o, symbols));
    }
    Ok(Reconciliation {
        book: book.to_string(),
        opened: true,
        cash: account.cash,
        positions: positions
            .iter()
            .map(|p| (p.symbol, p.quantity, p.avg_price))
            .collect(),
        open_orders: Vec::new(),
        last_bar_at: None,
        fills_journaled: 0,
        fills_recovered: 0,
        differences,
    })
}

fn unknown_open_order(o: &VenueOrder, symbols: &SymbolTable) -> Difference {
    let r = &o.request;
    Difference {
        kind: "unknown_open_order",
        subject: r.client_order_id.to_string(),
        journal: "no such order".into(),
        venue: format!(
            "open {} {} {} ({} filled)",
            r.side,
            r.quantity,
            symbols.name(r.symbol),
            o.filled_quantity
        ),
        action: "left alone: not vigil's order".into(),
        mismatch: true,
    }
}

fn status_text(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::New | OrderStatus::Accepted => "accepted",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Rejected => "rejected",
    }
}

fn journal_status(s: OrderStatus) -> JournalStatus {
    match s {
        OrderStatus::New | OrderStatus::Accepted => JournalStatus::Accepted,
        OrderStatus::PartiallyFilled => JournalStatus::PartiallyFilled,
        OrderStatus::Filled => JournalStatus::Filled,
        OrderStatus::Cancelled => JournalStatus::Cancelled,
        OrderStatus::Rejected => JournalStatus::Rejected,
    }
}

async fn compare(
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
    let mut held = Vec::with_capacity(journal.book.positions.len());
    for (name, qty, avg) in &journal.book.positions {
        let id = symbols.id(name).ok_or_else(|| {
            ReconcileError::Journal(format!(
                "book {book}: the journal holds a position of {qty} {name}, a symbol this \
                 session does not trade; add it to [data] instruments or close it by hand"
            ))
        })?;
        held.push((id, *qty, *avg));
    }
    let mut portfolio = Portfolio::new(journal_cash);
    portfolio.resync(journal_cash, held.iter().copied());

    // 1. Fills after the last one journaled.
    let cursor = journal
        .fills
        .last()
        .map(|f| f.fill_id.clone())
        .or(journal.opening_fill_cursor.clone());
    venue.resume_reports_after(cursor.as_deref());
    venue.sync_reports().await?;
    let mut reports = Vec::new();
    venue.drain_reports(&mut reports);
    let known: HashSet<&str> = journal.fills.iter().map(|f| f.fill_id.as_str()).collect();
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
        if known.contains(fill.fill_id.as_str()) || !taken.insert(fill.fill_id.clone()) {
            continue;
        }
        fills_recovered += 1;
        portfolio.apply_fill(fill);
        recovered_cash_flow -= fill.side.sign() * fill.quantity * fill.price + fill.commission;
        entries.push(fill_entry(fill, symbols.shared(fill.symbol), &portfolio));
        differences.push(fill_difference(
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
        let was = o.status.as_str();
        let Some(at_venue) = venue.order(&id).await? else {
            let never_answered = o.status == JournalStatus::Intent;
            differences.push(Difference {
                kind: if never_answered {
                    "intent_failed"
                } else {
                    "order_unknown_at_venue"
                },
                subject: id.to_string(),
                journal: was.into(),
                venue: "no such order".into(),
                action: "marked failed; not sent again".into(),
                mismatch: !never_answered,
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
                        differences.push(Difference {
                            kind: "intent_adopted",
                            subject: id.to_string(),
                            journal: was.into(),
                            venue: status_text(at_venue.status).into(),
                            action: "adopted: tracked as open".into(),
                            mismatch: false,
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
                    differences.push(Difference {
                        kind: "order_cancelled",
                        subject: id.to_string(),
                        journal: was.into(),
                        venue: status_text(at_venue.status).into(),
                        action: "cancelled at the venue (open orders policy: cancel)".into(),
                        mismatch: false,
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
            differences.push(Difference {
                kind: "order_closed",
                subject: id.to_string(),
                journal: was.into(),
                venue: format!("{} ({filled} filled)", status_text(at_venue.status)),
                action: "closed as the venue says".into(),
                mismatch: false,
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
            differences.push(unknown_open_order(o, symbols));
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
        let recomputed = opening
            + journal.cash_adjusted
            + journal
                .fills
                .iter()
                .map(|f| {
                    let signed = match f.side {
                        Side::Buy => f.quantity,
                        Side::Sell => -f.quantity,
                    };
                    -(signed * f.price + f.commission)
                })
                .sum::<Decimal>()
            + recovered_cash_flow;
        if recomputed != after_fills {
            differences.push(Difference {
                kind: "journal_cash",
                subject: "cash".into(),
                journal: after_fills.to_string(),
                venue: format!("recomputed from the fills: {recomputed}"),
                action: "reported: the journal's cash does not add up".into(),
                mismatch: true,
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
        positions: positions
            .iter()
            .map(|p| (p.symbol, p.quantity, p.avg_price))
            .collect(),
        open_orders: adopted,
        last_bar_at: journal.last_bar_at,
        fills_journaled: journal.fills.len() as u64,
        fills_recovered,
        differences,
    })
}

fn fill_difference(fill: &Fill, symbols: &SymbolTable, ours: bool) -> Difference {
    let what = format!(
        "{} {} {} at {}",
        fill.side,
        fill.quantity,
        symbols.name(fill.symbol),
        fill.price
    );
    if ours {
        Difference {
            kind: "fill_recovered",
            subject: fill.fill_id.clone(),
            journal: "not journaled".into(),
            venue: format!("{what} for {}", fill.client_order_id),
            action: "journaled and booked".into(),
            mismatch: false,
        }
    } else {
        Difference {
            kind: "external_fill",
            subject: fill.fill_id.clone(),
            journal: "no such order".into(),
            venue: format!("{what} for order {} (not vigil's)", fill.client_order_id),
            action: "journaled and booked: the venue's position holds it".into(),
            mismatch: true,
        }
    }
}

/// Vigil's own orders: their client order ids come from a decision chain (`tx_…`).
fn is_vigils(id: &ClientOrderId) -> bool {
    id.decided_at().is_some()
}

/// What the venue holds of the account's past: every fill it reports, its open orders, its
/// positions and its cash. Read to tell a first start from a journal that lost its history,
/// and to rebuild one ([`rebuild_journal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenueHistory {
    /// Every fill the venue reports, oldest first.
    pub fills: Vec<Fill>,
    /// Its open orders.
    pub open_orders: Vec<VenueOrder>,
    /// Its positions.
    pub positions: Vec<VenuePosition>,
    /// Its account.
    pub account: Account,
}

impl VenueHistory {
    /// The market time of the latest decision of vigil's the venue shows (in the client
    /// order ids of its fills and open orders).
    pub fn last_decision(&self) -> Option<Timestamp> {
        self.fills
            .iter()
            .map(|f| &f.client_order_id)
            .chain(self.open_orders.iter().map(|o| &o.request.client_order_id))
            .filter_map(ClientOrderId::decided_at)
            .max()
    }

    /// What the venue shows of a past vigil does not remember, one sentence; `None` when it
    /// shows nothing: no fill or open order of vigil's, no position.
    pub fn past(&self, symbols: &SymbolTable) -> Option<String> {
        let vigils: HashSet<&ClientOrderId> = self
            .fills
            .iter()
            .map(|f| &f.client_order_id)
            .filter(|id| is_vigils(id))
            .collect();
        let fills = self
            .fills
            .iter()
            .filter(|f| is_vigils(&f.client_order_id))
            .count();
        let open = self
            .open_orders
            .iter()
            .filter(|o| is_vigils(&o.request.client_order_id))
            .count();
        let mut parts = Vec::new();
        if fills > 0 {
            parts.push(format!(
                "{fills} fill(s) of {} order(s) of vigil's",
                vigils.len()
            ));
        }
        if open > 0 {
            parts.push(format!("{open} open order(s) of vigil's"));
        }
        if !self.positions.is_empty() {
            parts.push(format!(
                "position(s) {}",
                self.positions
                    .iter()
                    .map(|p| format!("{} {}", symbols.name(p.symbol), p.quantity))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if parts.is_empty() {
            return None;
        }
        let last = self.last_decision().map_or_else(String::new, |t| {
            format!(", the last decided at {}", t.to_rfc3339())
        });
        Some(format!("the broker holds {}{last}", parts.join(", ")))
    }
}

/// Reads [`VenueHistory`] from `venue`: every fill from its first (the report cursor is
/// moved; reconciliation sets its own afterwards), its open orders, positions and account.
///
/// # Errors
/// When the venue cannot be asked.
pub async fn venue_history(venue: &dyn ExecutionVenue) -> Result<VenueHistory, ReconcileError> {
    venue.resume_reports_after(None);
    venue.sync_reports().await?;
    let mut reports = Vec::new();
    venue.drain_reports(&mut reports);
    let mut seen = HashSet::new();
    let fills = reports
        .into_iter()
        .filter_map(|r| match r {
            ExecutionReport::Fill(f) => Some(f),
            ExecutionReport::Cancelled { .. } | ExecutionReport::Unfilled { .. } => None,
        })
        .filter(|f| seen.insert(f.fill_id.clone()))
        .collect();
    Ok(VenueHistory {
        fills,
        open_orders: venue.open_orders().await?,
        positions: venue.positions().await?,
        account: venue.account().await?,
    })
}

/// What a rebuild of a book's journal from the venue found and journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuild {
    /// The book.
    pub book: String,
    /// The book had no opening row: the rebuild opened it.
    pub opened: bool,
    /// The opening cash it was given then: the venue's cash less what its fills moved.
    pub opening_cash: Option<Decimal>,
    /// Fills journaled (the venue's, that the journal lacked).
    pub fills: u64,
    /// Of those, fills of orders that are not vigil's.
    pub external_fills: u64,
    /// Orders of vigil's journaled (from their fills, and the open ones).
    pub orders: u64,
    /// Of those, open at the venue: reconciliation adopts or cancels them next.
    pub open_orders: u64,
    /// Positions set to the venue's: (symbol, from, to).
    pub positions: Vec<(String, Decimal, Decimal)>,
    /// The cash set to the venue's: (from, to).
    pub cash: Option<(Decimal, Decimal)>,
    /// Where the session resumes: no bar at or before it is decided again.
    pub resume_after: Option<Timestamp>,
    /// Where that came from: each source and its time.
    pub resume_sources: Vec<(String, Timestamp)>,
}

impl Rebuild {
    /// One line, for the log, the store's record and standard error.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} fill(s) journaled ({} of orders not vigil's), {} order(s) of vigil's \
             journaled ({} open at the broker, for reconciliation to adopt or cancel)",
            self.fills, self.external_fills, self.orders, self.open_orders
        );
        if let Some(cash) = self.opening_cash {
            out.push_str(&format!(
                "; the book opened with {cash} (the broker's cash less its fills)"
            ));
        }
        for (symbol, from, to) in &self.positions {
            out.push_str(&format!("; position {symbol} set from {from} to {to}"));
        }
        if let Some((from, to)) = self.cash {
            out.push_str(&format!("; cash set from {from} to {to}"));
        }
        match self.resume_after {
            Some(t) => out.push_str(&format!(
                "; resumes after {} (the latest of: {})",
                t.to_rfc3339(),
                self.resume_sources
                    .iter()
                    .map(|(what, t)| format!("{what} {}", t.to_rfc3339()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => out.push_str("; no past decision found: nothing to skip"),
        }
        out
    }
}

/// Rebuilds `book`'s journal from what `venue` holds (`history`, read by
/// [`venue_history`]), adding what the journal lacks and never removing anything:
/// - a book without its opening row is opened with the venue's cash less what every fill
///   moved, so that the fills add up to the venue's cash;
/// - every fill of the venue's the journal lacks (after the book's opening cursor) is
///   journaled with the position and cash it leaves; each order of vigil's behind them is
///   journaled as the venue holds it (looked up by client order id);
/// - vigil's orders open at the venue are journaled as open: reconciliation then adopts or
///   cancels them, as after any restart;
/// - positions and cash that still differ take the venue's figures (adjustments);
/// - the last bar handled is set to the latest of the journal's, the latest decision of
///   vigil's the venue shows, and `resume_after` (what the log and the identity file say,
///   each named in `sources`): no bar up to it is decided again, so nothing past is sent
///   again.
///
/// One transaction, at wall time `at`.
///
/// # Errors
/// When the journal cannot be read or written or the venue cannot be asked.
pub async fn rebuild_journal(
    store: &dyn StateStore,
    book: &str,
    venue: &dyn ExecutionVenue,
    symbols: &SymbolTable,
    history: &VenueHistory,
    sources: &[(String, Timestamp)],
    at: DateTime<Utc>,
) -> Result<Rebuild, ReconcileError> {
    let journal = store.journal_recovery(book).await?;
    let mut known_orders: HashSet<String> =
        store.journal_order_ids(book).await?.into_iter().collect();
    let known_fills: HashSet<&str> = journal.fills.iter().map(|f| f.fill_id.as_str()).collect();
    let mut entries = Vec::new();
    let opened = journal.book.cash.is_none();
    // The fills that are the book's: all of them for a book opened now, else those after
    // the fill the book opened at.
    let after = match (&journal.opening_fill_cursor, opened) {
        (Some(cursor), false) => history
            .fills
            .iter()
            .position(|f| &f.fill_id == cursor)
            .map_or(0, |i| i + 1),
        _ => 0,
    };
    let new_fills: Vec<&Fill> = history.fills[after..]
        .iter()
        .filter(|f| !known_fills.contains(f.fill_id.as_str()))
        .collect();
    let flows: Decimal = new_fills
        .iter()
        .map(|f| -(f.side.sign() * f.quantity * f.price + f.commission))
        .sum();
    let mut portfolio = if opened {
        let opening = history.account.cash - flows;
        entries.push(JournalEntry::OpenBook {
            cash: opening,
            fill_cursor: None,
        });
        Portfolio::new(opening)
    } else {
        let cash = journal.book.cash.unwrap_or_default();
        let mut held = Vec::with_capacity(journal.book.positions.len());
        for (name, qty, avg) in &journal.book.positions {
            let id = symbols.id(name).ok_or_else(|| {
                ReconcileError::Journal(format!(
                    "book {book}: the journal holds a position of {qty} {name}, a symbol this \
                     session does not trade; add it to [data] instruments"
                ))
            })?;
            held.push((id, *qty, *avg));
        }
        let mut p = Portfolio::new(cash);
        p.resync(cash, held.iter().copied());
        p
    };
    let mut report = Rebuild {
        book: book.to_string(),
        opened,
        opening_cash: opened.then_some(portfolio.cash()),
        fills: 0,
        external_fills: 0,
        orders: 0,
        open_orders: 0,
        positions: Vec::new(),
        cash: None,
        resume_after: None,
        resume_sources: Vec::new(),
    };
    for fill in new_fills {
        let id = &fill.client_order_id;
        if !is_vigils(id) {
            report.external_fills += 1;
        } else if known_orders.insert(id.to_string()) {
            let at_venue = venue.order(id).await?;
            entries.extend(rebuilt_order(
                id,
                (fill.symbol, fill.side, fill.quantity, fill.price),
                at_venue.as_ref(),
                symbols,
            ));
            report.orders += 1;
        }
        portfolio.apply_fill(fill);
        entries.push(fill_entry(fill, symbols.shared(fill.symbol), &portfolio));
        report.fills += 1;
    }
    for o in &history.open_orders {
        let r = &o.request;
        if !is_vigils(&r.client_order_id) || !known_orders.insert(r.client_order_id.to_string()) {
            continue;
        }
        entries.extend(rebuilt_order(
            &r.client_order_id,
            (
                r.symbol,
                r.side,
                r.quantity,
                r.limit_price.unwrap_or_default(),
            ),
            Some(o),
            symbols,
        ));
        report.orders += 1;
        report.open_orders += 1;
    }
    // Positions and cash that the fills do not explain take the venue's.
    for (id, ours, venue_pos) in position_gaps(&portfolio, &history.positions) {
        let (_, e) = take_position(
            symbols.shared(id),
            ours,
            venue_pos,
            "rebuild from the broker: the broker's position".into(),
        );
        entries.push(e);
        report
            .positions
            .push((symbols.name(id).to_string(), ours, venue_pos.0));
    }
    if portfolio.cash() != history.account.cash {
        let (_, e) = take_cash(
            portfolio.cash(),
            history.account.cash,
            "rebuild from the broker: the broker's cash".into(),
        );
        entries.push(e);
        report.cash = Some((portfolio.cash(), history.account.cash));
    }
    // Where to resume: the latest decision anything remembers.
    let mut resume: Vec<(String, Timestamp)> = Vec::new();
    if let Some(t) = journal.last_bar_at {
        resume.push(("the journal's last bar".into(), t));
    }
    if let Some(t) = history.last_decision() {
        resume.push(("the broker's latest order of vigil's".into(), t));
    }
    resume.extend(sources.iter().cloned());
    report.resume_after = resume.iter().map(|(_, t)| *t).max();
    report.resume_sources = resume;
    if let Some(last_bar_at) = report.resume_after {
        entries.push(JournalEntry::Mark { last_bar_at });
    }
    store.journal(book, &entries, at).await?;
    Ok(report)
}

/// The intent and status of an order of vigil's as the venue holds it (`at_venue`; when it
/// is not found, as its first fill says: `(symbol, side, quantity, price)`), for a rebuilt
/// journal.
fn rebuilt_order(
    id: &ClientOrderId,
    (symbol, side, seen_quantity, price): (SymbolId, Side, Decimal, Decimal),
    at_venue: Option<&VenueOrder>,
    symbols: &SymbolTable,
) -> [JournalEntry; 2] {
    let trace = id
        .as_str()
        .rsplit_once('-')
        .map_or(id.as_str(), |(trace, _)| trace);
    let decided_at = id.decided_at().unwrap_or(Timestamp::UNIX_EPOCH);
    let (quantity, order_type, limit_price, status, filled) = match at_venue {
        Some(o) => (
            o.request.quantity,
            o.request.order_type,
            o.request.limit_price,
            journal_status(o.status),
            o.filled_quantity,
        ),
        // Not found by its id (a venue that forgets closed orders): what its fill says.
        None => (
            seen_quantity,
            vigil_core::OrderType::Market,
            None,
            JournalStatus::Filled,
            seen_quantity,
        ),
    };
    [
        JournalEntry::Intent(JournalOrder {
            client_order_id: id.shared(),
            trace_id: trace.into(),
            symbol: symbols.shared(symbol),
            side,
            quantity,
            order_type,
            limit_price,
            reference_price: limit_price.unwrap_or(price),
            decided_at,
        }),
        JournalEntry::Status {
            client_order_id: id.shared(),
            status,
            venue_order_id: None,
            filled_quantity: Some(filled),
            reason: Some("rebuilt from the broker".into()),
        },
    ]
}
