//! The book against the venue's: which symbols differ, the adjustments that take the
//! venue's figures, and the journal entry of a fill. Shared by the reconciliation at start,
//! the rebuild and the reconciliation during the session.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_core::{Fill, Portfolio, SymbolId};
use vigil_providers::VenuePosition;
use vigil_store::{Adjustment, JournalEntry, JournalFill};

use crate::Difference;

/// Every symbol held in `portfolio` or at the venue (`theirs`), in id order.
pub fn held_symbols(
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

/// The venue's `positions` by symbol: (quantity, average price).
/// The journal's positions of `book` by symbol id: (id, signed quantity, average price).
///
/// # Errors
/// A position in a symbol this session does not trade; the message ends with `what_to_do`.
pub(crate) fn journal_positions(
    book: &str,
    positions: &[(String, Decimal, Decimal)],
    symbols: &vigil_core::SymbolTable,
    what_to_do: &str,
) -> Result<Vec<(SymbolId, Decimal, Decimal)>, crate::ReconcileError> {
    positions
        .iter()
        .map(|(name, qty, avg)| {
            let id = symbols.id(name).ok_or_else(|| {
                crate::ReconcileError::Journal(format!(
                    "book {book}: the journal holds a position of {qty} {name}, a symbol this \
                     session does not trade; {what_to_do}"
                ))
            })?;
            Ok((id, *qty, *avg))
        })
        .collect()
}

pub(crate) fn by_symbol(positions: &[VenuePosition]) -> HashMap<SymbolId, (Decimal, Decimal)> {
    positions
        .iter()
        .map(|p| (p.symbol, (p.quantity, p.avg_price)))
        .collect()
}

/// The symbols whose position in `portfolio` differs from the venue's `positions`: each with
/// ours and the venue's (quantity, average price), in symbol order.
pub(crate) fn position_gaps(
    portfolio: &Portfolio,
    positions: &[VenuePosition],
) -> Vec<(SymbolId, Decimal, (Decimal, Decimal))> {
    let theirs = by_symbol(positions);
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
pub fn fill_entry(fill: &Fill, symbol: Arc<str>, book: &Portfolio) -> JournalEntry {
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

/// A position that differs from the venue's, and the adjustment that takes the venue's.
pub(crate) fn take_position(
    symbol: Arc<str>,
    ours: Decimal,
    (venue, avg_price): (Decimal, Decimal),
    reason: String,
) -> (Difference, JournalEntry) {
    (
        Difference::Position {
            symbol: symbol.clone(),
            journal: ours,
            venue,
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
        Difference::Cash {
            journal: ours,
            venue,
        },
        JournalEntry::Adjust(Adjustment::Cash {
            before: ours,
            after: venue,
            reason,
        }),
    )
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn pos(symbol: u32, quantity: Decimal) -> VenuePosition {
        VenuePosition {
            symbol: SymbolId(symbol),
            quantity,
            avg_price: dec!(10),
        }
    }

    #[test]
    fn only_the_symbols_that_differ_are_gaps_and_a_flat_one_counts_on_either_side() {
        let mut book = Portfolio::new(dec!(1000));
        book.resync(
            dec!(1000),
            [
                (SymbolId(0), dec!(5), dec!(10)),
                (SymbolId(1), dec!(2), dec!(10)),
            ],
        );
        // 0 agrees, 1 is flat at the venue, 2 is held only there.
        let gaps = position_gaps(&book, &[pos(0, dec!(5)), pos(2, dec!(-3))]);
        assert_eq!(
            gaps,
            [
                (SymbolId(1), dec!(2), (dec!(0), dec!(0))),
                (SymbolId(2), dec!(0), (dec!(-3), dec!(10))),
            ]
        );
    }

    #[test]
    fn taking_the_venues_cash_reports_a_cash_mismatch_and_journals_the_adjustment() {
        let (d, e) = take_cash(dec!(100), dec!(90), "why".into());
        assert_eq!(
            d,
            Difference::Cash {
                journal: dec!(100),
                venue: dec!(90)
            }
        );
        assert!(d.is_mismatch());
        assert_eq!(
            e,
            JournalEntry::Adjust(Adjustment::Cash {
                before: dec!(100),
                after: dec!(90),
                reason: "why".into(),
            })
        );
    }
}
