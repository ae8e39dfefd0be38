//! A journal that lost its history, rebuilt from what the venue holds: [`venue_history`]
//! reads it, [`VenueHistory::past`] says what vigil does not remember, and
//! [`rebuild_journal`] adds what the journal lacks, never removing anything.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use vigil_core::{
    ClientOrderId, ExecutionReport, Fill, Portfolio, Side, SymbolId, SymbolTable, Timestamp,
    VenueOrder,
};
use vigil_providers::{Account, ExecutionVenue, VenuePosition};
use vigil_store::{JournalEntry, JournalOrder, JournalStatus, StateStore};

use crate::ReconcileError;
use crate::books::{fill_entry, journal_positions, position_gaps, take_cash, take_position};
use crate::reconcile::journal_status;

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
            .filter(|id| id.is_vigils())
            .collect();
        let fills = self
            .fills
            .iter()
            .filter(|f| f.client_order_id.is_vigils())
            .count();
        let open = self
            .open_orders
            .iter()
            .filter(|o| o.request.client_order_id.is_vigils())
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
    let ids: Vec<&str> = history.fills.iter().map(|f| f.fill_id.as_str()).collect();
    let known_fills = store.journal_known_fills(book, &ids).await?;
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
        .filter(|f| !known_fills.contains(&f.fill_id))
        .collect();
    let flows: Decimal = new_fills
        .iter()
        .map(|f| vigil_store::fill_cash_flow(f.side, f.quantity, f.price, f.commission))
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
        let held = journal_positions(
            book,
            &journal.book.positions,
            symbols,
            "add it to [data] instruments",
        )?;
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
        if !id.is_vigils() {
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
        if !r.client_order_id.is_vigils() || !known_orders.insert(r.client_order_id.to_string()) {
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
