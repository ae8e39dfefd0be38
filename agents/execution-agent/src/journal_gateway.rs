//! The write-ahead journal gateway: every intent, venue answer and fill goes to the
//! execution journal through here, with the position and cash a fill leaves. With
//! write-ahead (a venue that outlives this process) an intent is committed before the order
//! goes to the venue, and fills before they are booked; otherwise entries are queued and
//! committed in groups (the in-process paper venue dies with the process anyway).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_core::{ClientOrderId, ExecutionReport, Fill, Portfolio, SymbolTable};
use vigil_store::{Journal, JournalEntry, JournalOrder, JournalStatus, JournalStopped};

/// The commit of journal entries, to wait for before going on.
pub(crate) type Commit = Pin<Box<dyn Future<Output = Result<(), String>>>>;

/// The journal, if the session keeps one.
#[derive(Debug, Default)]
pub(crate) struct JournalGateway {
    journal: Option<Journal>,
    write_ahead: bool,
}

impl JournalGateway {
    pub(crate) fn new(journal: Journal, write_ahead: bool) -> Self {
        Self {
            journal: Some(journal),
            write_ahead,
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.journal.is_some()
    }

    /// Queues `entry`; nothing without a journal.
    ///
    /// # Errors
    /// When the writer has stopped.
    pub(crate) fn append(&self, entry: JournalEntry) -> Result<(), JournalStopped> {
        match &self.journal {
            Some(journal) => journal.append(entry),
            None => Ok(()),
        }
    }

    /// Queues the status of order `id`.
    ///
    /// # Errors
    /// When the writer has stopped.
    pub(crate) fn status(
        &self,
        id: &ClientOrderId,
        status: JournalStatus,
        venue_order_id: Option<Arc<str>>,
        filled_quantity: Option<Decimal>,
        reason: Option<&str>,
    ) -> Result<(), JournalStopped> {
        if self.journal.is_none() {
            return Ok(());
        }
        self.append(JournalEntry::Status {
            client_order_id: id.shared(),
            status,
            venue_order_id,
            filled_quantity,
            reason: reason.map(str::to_string),
        })
    }

    /// Queues `fill` with the position and cash `book` holds after it.
    ///
    /// # Errors
    /// When the writer has stopped.
    pub(crate) fn fill(
        &self,
        fill: &Fill,
        symbols: &SymbolTable,
        book: &Portfolio,
    ) -> Result<(), JournalStopped> {
        if self.journal.is_none() {
            return Ok(());
        }
        self.append(vigil_recovery::fill_entry(
            fill,
            symbols.shared(fill.symbol),
            book,
        ))
    }

    /// Journals `intent`: with write-ahead, returns the commit to wait for before sending
    /// it; else queues it (`Err` when the writer has stopped).
    pub(crate) fn intent(&self, intent: JournalOrder) -> Result<Option<Commit>, JournalStopped> {
        let entry = JournalEntry::Intent(intent);
        match &self.journal {
            Some(journal) if self.write_ahead => Ok(Some(Box::pin(journal.append_durable(entry)))),
            Some(journal) => journal.append(entry).map(|()| None),
            None => Ok(None),
        }
    }

    /// Under write-ahead, when `reports` hold fills: queues each fill with the position and
    /// cash it will leave when booked on `book`, and returns the commit of the last (the
    /// writer commits in order: the earlier ones are durable then), with whether the others
    /// were queued. `None` otherwise: the fills are journaled as they are booked.
    pub(crate) fn fills_ahead(
        &self,
        reports: &[ExecutionReport],
        book: &Portfolio,
        symbols: &SymbolTable,
    ) -> Option<(Result<(), JournalStopped>, Commit)> {
        let journal = self.journal.as_ref().filter(|_| self.write_ahead)?;
        let mut entries = fill_entries(reports, book, symbols);
        let last = entries.pop()?;
        let queued = entries.into_iter().try_for_each(|e| journal.append(e));
        Some((queued, Box::pin(journal.append_durable(last))))
    }
}

/// The journal entries of the fills among `reports`, each with the position and cash it
/// leaves when booked in order on `book` (as the agent books them).
pub(crate) fn fill_entries(
    reports: &[ExecutionReport],
    book: &Portfolio,
    symbols: &SymbolTable,
) -> Vec<JournalEntry> {
    let mut after: Option<Portfolio> = None;
    let mut entries = Vec::new();
    for r in reports {
        if let ExecutionReport::Fill(fill) = r {
            let after = after.get_or_insert_with(|| book.clone());
            after.apply_fill(fill);
            entries.push(vigil_recovery::fill_entry(
                fill,
                symbols.shared(fill.symbol),
                after,
            ));
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::{Side, Symbol, SymbolId, Timestamp};
    use vigil_store::JournalFill;

    use super::*;

    fn fill(id: &str, side: Side, quantity: Decimal, price: Decimal) -> ExecutionReport {
        ExecutionReport::Fill(Fill {
            client_order_id: ClientOrderId::from("tx_1"),
            fill_id: id.into(),
            symbol: SymbolId(0),
            side,
            quantity,
            price,
            commission: dec!(1),
            leaves_quantity: dec!(0),
            ts: Timestamp::UNIX_EPOCH,
        })
    }

    #[test]
    fn each_fill_is_journaled_with_the_position_and_cash_it_leaves_in_order() {
        let symbols = SymbolTable::new([Symbol::from("GOOG")]);
        let book = Portfolio::new(dec!(1000));
        let reports = [
            fill("f1", Side::Buy, dec!(2), dec!(100)),
            ExecutionReport::Cancelled {
                client_order_id: ClientOrderId::from("tx_2"),
                reason: "asked".into(),
                ts: Timestamp::UNIX_EPOCH,
            },
            fill("f2", Side::Sell, dec!(1), dec!(110)),
        ];
        let after: Vec<(String, Decimal, Decimal)> = fill_entries(&reports, &book, &symbols)
            .into_iter()
            .map(|e| match e {
                JournalEntry::Fill(JournalFill {
                    fill_id,
                    position_after,
                    cash_after,
                    ..
                }) => (fill_id.to_string(), position_after.0, cash_after),
                other => panic!("not a fill: {other:?}"),
            })
            .collect();
        assert_eq!(
            after,
            [
                ("f1".into(), dec!(2), dec!(799)),
                ("f2".into(), dec!(1), dec!(908)),
            ]
        );
        // The book itself is not touched: it books them after the commit.
        assert_eq!(book.cash(), dec!(1000));
    }

    #[test]
    fn without_a_journal_nothing_is_asked_and_nothing_fails() {
        let gateway = JournalGateway::default();
        let symbols = SymbolTable::new([Symbol::from("GOOG")]);
        let reports = [fill("f1", Side::Buy, dec!(2), dec!(100))];
        assert!(!gateway.is_on());
        assert!(
            gateway
                .fills_ahead(&reports, &Portfolio::new(dec!(1)), &symbols)
                .is_none()
        );
        assert_eq!(
            gateway.status(
                &ClientOrderId::from("tx_1"),
                JournalStatus::Filled,
                None,
                None,
                None
            ),
            Ok(())
        );
    }
}
