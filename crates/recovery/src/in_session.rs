//! Reconciliation during the session: the book against the venue's positions and cash, on
//! an interval and after an outage ([`SessionReconciler`]), and the verdicts of the
//! verification after a data outage ([`books_verdict`], [`verification`]).

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use vigil_core::{ClientOrderId, Portfolio, SymbolId, SymbolTable, VenueOrder};
use vigil_providers::{Account, VenuePosition};
use vigil_store::JournalEntry;

use crate::Difference;
use crate::books::{by_symbol, held_symbols, take_cash, take_position};

/// What one check found: the differences, each taken from the venue by the journal entry
/// beside it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// The differences, positions in symbol order, then cash.
    pub differences: Vec<Difference>,
    /// The adjustments that take the venue's figures, to journal.
    pub entries: Vec<JournalEntry>,
}

impl Findings {
    /// Nothing differed.
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares the book with the venue's at each check of the session. A difference in a
/// symbol with an order working may be a fill between two reads: it counts only when the
/// next check sees the same.
#[derive(Debug, Default)]
pub struct SessionReconciler {
    /// Differences seen once in a symbol with an order working (`None`: the cash, with any
    /// order working), confirmed at the next check: the venue's quantity (or cash).
    suspects: HashMap<Option<SymbolId>, Decimal>,
}

impl SessionReconciler {
    /// Compares `book` with the venue's `positions` and `account`; `working` holds the
    /// symbols with an order working. Returns the confirmed differences with the
    /// adjustments that take the venue's figures (their reason names `trigger`); the caller
    /// takes the venue's book when there are any.
    pub fn check(
        &mut self,
        book: &Portfolio,
        working: &HashSet<SymbolId>,
        positions: &[VenuePosition],
        account: &Account,
        symbols: &SymbolTable,
        trigger: &str,
    ) -> Findings {
        let theirs = by_symbol(positions);
        let before = std::mem::take(&mut self.suspects);
        let mut found = Findings::default();
        let mut confirmed = |key: Option<SymbolId>, venue: Decimal, busy: bool| {
            if busy && before.get(&key) != Some(&venue) {
                self.suspects.insert(key, venue);
                false
            } else {
                true
            }
        };
        for id in held_symbols(book, &theirs) {
            let ours = book.position(id).quantity;
            let venue = theirs.get(&id).copied().unwrap_or_default();
            if ours == venue.0 || !confirmed(Some(id), venue.0, working.contains(&id)) {
                continue;
            }
            let (d, e) = take_position(
                symbols.shared(id),
                ours,
                venue,
                format!("reconciliation ({trigger}): the venue's position"),
            );
            found.differences.push(d);
            found.entries.push(e);
        }
        let cash = book.cash();
        if cash != account.cash && confirmed(None, account.cash, !working.is_empty()) {
            let (d, e) = take_cash(
                cash,
                account.cash,
                format!("reconciliation ({trigger}): the venue's cash"),
            );
            found.differences.push(d);
            found.entries.push(e);
        }
        found
    }
}

/// The books' part of a verification after a data outage: `differences` in positions and
/// cash (already taken from the venue) fail it; else the working orders, vigil's (`ours`)
/// against the venue's (`orders`, read after its reports were booked), must agree.
///
/// # Errors
/// The reason the books do not agree, for the verdict.
pub fn books_verdict<'a>(
    differences: usize,
    positions: &[VenuePosition],
    account: &Account,
    ours: impl Iterator<Item = &'a ClientOrderId> + Clone,
    orders: Option<Vec<VenueOrder>>,
) -> Result<String, String> {
    if differences > 0 {
        return Err(format!(
            "{differences} difference(s) with the venue's books (taken from the venue; see \
             reconciliation_mismatch)"
        ));
    }
    let orders = orders.unwrap_or_default();
    let theirs: HashSet<&ClientOrderId> = orders
        .iter()
        .filter(|o| o.status.is_open())
        .map(|o| &o.request.client_order_id)
        .collect();
    let mine: HashSet<&ClientOrderId> = ours.clone().collect();
    let mut odd: Vec<String> = ours
        .filter(|id| !theirs.contains(id))
        .map(|id| format!("{id} open in vigil's book, not working at the venue"))
        .chain(
            theirs
                .iter()
                .filter(|id| !mine.contains(**id))
                .map(|id| format!("{id} working at the venue, unknown to vigil")),
        )
        .collect();
    odd.sort();
    if !odd.is_empty() {
        return Err(format!(
            "the working orders differ from the venue's: {}",
            odd.join("; ")
        ));
    }
    Ok(format!(
        "the books agree with the venue's ({} position(s), cash {}, {} working order(s))",
        positions.len(),
        account.cash,
        theirs.len()
    ))
}

/// The verification's verdict, (passed, report): the books' (`books`, from
/// [`books_verdict`]) and the data's (`missing_bars` of exchange sessions missing across
/// the outage fail it whatever the books say).
pub fn verification(books: Result<String, String>, missing_bars: u64) -> (bool, String) {
    let gaps = (missing_bars > 0).then(|| {
        format!(
            "{missing_bars} bar(s) of exchange sessions missing across the outage (see data_gap)"
        )
    });
    match (books, gaps) {
        (Ok(books), None) => (true, format!("{books}; no session's data missing")),
        (Ok(books), Some(gaps)) => (false, format!("{books}; but {gaps}")),
        (Err(books), None) => (false, books),
        (Err(books), Some(gaps)) => (false, format!("{books}; and {gaps}")),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::{OrderStatus, Side, Symbol, Timestamp};

    use super::*;

    fn symbols() -> SymbolTable {
        SymbolTable::new([Symbol::from("GOOG"), Symbol::from("AAPL")])
    }

    fn account(cash: Decimal) -> Account {
        Account { cash, equity: cash }
    }

    fn goog(quantity: Decimal) -> VenuePosition {
        VenuePosition {
            symbol: SymbolId(0),
            quantity,
            avg_price: dec!(100),
        }
    }

    fn venue_order(id: &str, status: OrderStatus) -> VenueOrder {
        VenueOrder {
            request: vigil_testkit::order_request(
                id,
                0,
                Side::Buy,
                dec!(5),
                Some(dec!(1)),
                Timestamp::UNIX_EPOCH,
            ),
            status,
            filled_quantity: dec!(0),
        }
    }

    #[test]
    fn a_position_that_differs_with_nothing_working_is_taken_at_once() {
        let mut r = SessionReconciler::default();
        let book = Portfolio::new(dec!(1000));
        let found = r.check(
            &book,
            &HashSet::new(),
            &[goog(dec!(7))],
            &account(dec!(1000)),
            &symbols(),
            "interval",
        );
        assert_eq!(
            found.differences,
            [Difference::Position {
                symbol: "GOOG".into(),
                journal: dec!(0),
                venue: dec!(7)
            }]
        );
        assert_eq!(found.entries.len(), 1);
    }

    #[test]
    fn with_an_order_working_a_difference_counts_only_when_the_next_check_sees_the_same() {
        let mut r = SessionReconciler::default();
        let book = Portfolio::new(dec!(1000));
        let working = HashSet::from([SymbolId(0)]);
        let check = |r: &mut SessionReconciler, qty, cash| {
            r.check(
                &book,
                &working,
                &[goog(qty)],
                &account(cash),
                &symbols(),
                "interval",
            )
        };
        // Seen once: a fill may be between the two reads.
        assert!(check(&mut r, dec!(7), dec!(900)).is_empty());
        // Moved on: still a suspect, not confirmed.
        assert!(check(&mut r, dec!(8), dec!(850)).is_empty());
        // The same twice: taken, position and cash.
        let found = check(&mut r, dec!(8), dec!(850));
        assert_eq!(
            found
                .differences
                .iter()
                .map(Difference::kind)
                .collect::<Vec<_>>(),
            ["position", "cash"]
        );
        // Confirmed suspects are forgotten.
        assert!(check(&mut r, dec!(9), dec!(800)).is_empty());
    }

    #[test]
    fn the_books_verdict_names_every_working_order_the_two_sides_do_not_share() {
        let ours = [ClientOrderId::from("tx_a"), ClientOrderId::from("tx_b")];
        let orders = vec![
            venue_order("tx_a", OrderStatus::Accepted),
            venue_order("tx_b", OrderStatus::Filled),
            venue_order("by-hand-1", OrderStatus::New),
        ];
        let verdict = books_verdict(0, &[], &account(dec!(5)), ours.iter(), Some(orders));
        assert_eq!(
            verdict,
            Err(
                "the working orders differ from the venue's: by-hand-1 working at the venue, \
                 unknown to vigil; tx_b open in vigil's book, not working at the venue"
                    .into()
            )
        );
        let agree = books_verdict(
            0,
            &[goog(dec!(1))],
            &account(dec!(5)),
            ours[..1].iter(),
            Some(vec![venue_order("tx_a", OrderStatus::Accepted)]),
        );
        assert_eq!(
            agree,
            Ok(
                "the books agree with the venue's (1 position(s), cash 5, 1 working order(s))"
                    .into()
            )
        );
        assert!(
            books_verdict(2, &[], &account(dec!(5)), ours.iter(), None)
                .is_err_and(|e| e.starts_with("2 difference(s)"))
        );
    }

    #[test]
    fn missing_bars_fail_the_verification_whatever_the_books_say() {
        assert_eq!(
            verification(Ok("agree".into()), 0),
            (true, "agree; no session's data missing".into())
        );
        let (passed, report) = verification(Ok("agree".into()), 3);
        assert!(!passed);
        assert!(report.starts_with("agree; but 3 bar(s)"), "{report}");
        let (passed, report) = verification(Err("differ".into()), 3);
        assert!(!passed);
        assert!(report.starts_with("differ; and 3 bar(s)"), "{report}");
        assert_eq!(
            verification(Err("differ".into()), 0),
            (false, "differ".into())
        );
    }
}
