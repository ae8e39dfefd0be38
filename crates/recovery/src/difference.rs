//! [`Difference`]: one thing the journal and the venue disagreed on, typed by kind. What was
//! done about it, and whether a crash explains it, follow from the kind; its text form
//! ([`DifferenceRecord`]) is what the log, `vigil reconcile` and its JSON show.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;
use vigil_core::{ClientOrderId, Fill, OrderStatus, Side, SymbolTable, VenueOrder};
use vigil_store::JournalStatus;

/// A fill as a difference shows it: its id, order, and what it traded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenFill {
    /// The venue's fill id.
    pub fill_id: String,
    /// The order it filled.
    pub order: ClientOrderId,
    /// Bought or sold.
    pub side: Side,
    /// How much.
    pub quantity: Decimal,
    /// The symbol's name.
    pub symbol: Arc<str>,
    /// At what price.
    pub price: Decimal,
}

impl SeenFill {
    /// `fill`, its symbol named from `symbols`.
    pub fn new(fill: &Fill, symbols: &SymbolTable) -> Self {
        Self {
            fill_id: fill.fill_id.clone(),
            order: fill.client_order_id.clone(),
            side: fill.side,
            quantity: fill.quantity,
            symbol: symbols.shared(fill.symbol),
            price: fill.price,
        }
    }

    /// `BUY 7 GOOG at 300`.
    fn trade(&self) -> String {
        format!(
            "{} {} {} at {}",
            self.side, self.quantity, self.symbol, self.price
        )
    }
}

/// One thing the journal and the venue disagreed on. Each kind says what was done (or, in
/// a dry run, would be done); [`Self::is_mismatch`] says whether a crash explains it.
///
/// It serialises as its [`DifferenceRecord`]: `kind`, `subject`, `journal`, `venue`,
/// `action`, `mismatch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "DifferenceRecord")]
pub enum Difference {
    /// A fill of vigil's order that the journal did not hold yet (made while vigil was down,
    /// or between the venue's fill and its journal commit): journaled and booked.
    FillRecovered(SeenFill),
    /// A fill of an order that is not vigil's (a trade made at the broker by hand):
    /// journaled and booked, the venue's position holds it. A mismatch.
    ExternalFill(SeenFill),
    /// An intent the venue never received: marked failed, never sent again.
    IntentFailed {
        /// The order.
        order: ClientOrderId,
    },
    /// An order the venue answered once but does not know now: marked failed. A mismatch.
    OrderUnknownAtVenue {
        /// The order.
        order: ClientOrderId,
        /// Where the journal had it.
        journal: JournalStatus,
    },
    /// An intent the venue received and holds open: adopted, tracked as open.
    IntentAdopted {
        /// The order.
        order: ClientOrderId,
        /// Where the venue has it.
        venue: OrderStatus,
    },
    /// An order of vigil's open at the venue, cancelled there (open orders policy: cancel).
    OrderCancelled {
        /// The order.
        order: ClientOrderId,
        /// Where the journal had it.
        journal: JournalStatus,
        /// Where the venue had it.
        venue: OrderStatus,
    },
    /// An order the venue closed while vigil was down: closed as the venue says.
    OrderClosed {
        /// The order.
        order: ClientOrderId,
        /// Where the journal had it.
        journal: JournalStatus,
        /// Where the venue has it.
        venue: OrderStatus,
        /// How much of it the venue filled.
        filled: Decimal,
    },
    /// An order open at the venue that is not vigil's: left alone. A mismatch.
    UnknownOpenOrder {
        /// The order.
        order: ClientOrderId,
        /// Bought or sold.
        side: Side,
        /// Its quantity.
        quantity: Decimal,
        /// The symbol's name.
        symbol: Arc<str>,
        /// How much of it the venue filled.
        filled: Decimal,
    },
    /// A position that differs from the venue's: the venue's taken. A mismatch.
    Position {
        /// The symbol's name.
        symbol: Arc<str>,
        /// The journal's quantity.
        journal: Decimal,
        /// The venue's quantity.
        venue: Decimal,
    },
    /// Cash that differs from the venue's: the venue's taken. A mismatch.
    Cash {
        /// The journal's cash.
        journal: Decimal,
        /// The venue's cash.
        venue: Decimal,
    },
    /// The journal's cash does not add up to its opening cash, fills and adjustments:
    /// reported. A mismatch.
    JournalCash {
        /// The journal's cash.
        journal: Decimal,
        /// The cash its fills and adjustments add up to.
        recomputed: Decimal,
    },
}

impl Difference {
    /// A fill the journal lacked: [`Self::FillRecovered`] when it is of an order the journal
    /// holds (`ours`), else [`Self::ExternalFill`].
    pub fn fill(fill: &Fill, symbols: &SymbolTable, ours: bool) -> Self {
        let seen = SeenFill::new(fill, symbols);
        match ours {
            true => Self::FillRecovered(seen),
            false => Self::ExternalFill(seen),
        }
    }

    /// An open order at the venue that is not vigil's.
    pub fn unknown_open_order(o: &VenueOrder, symbols: &SymbolTable) -> Self {
        let r = &o.request;
        Self::UnknownOpenOrder {
            order: r.client_order_id.clone(),
            side: r.side,
            quantity: r.quantity,
            symbol: symbols.shared(r.symbol),
            filled: o.filled_quantity,
        }
    }

    /// The kind's name, as the log and `vigil reconcile` show it (`external_fill`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FillRecovered(_) => "fill_recovered",
            Self::ExternalFill(_) => "external_fill",
            Self::IntentFailed { .. } => "intent_failed",
            Self::OrderUnknownAtVenue { .. } => "order_unknown_at_venue",
            Self::IntentAdopted { .. } => "intent_adopted",
            Self::OrderCancelled { .. } => "order_cancelled",
            Self::OrderClosed { .. } => "order_closed",
            Self::UnknownOpenOrder { .. } => "unknown_open_order",
            Self::Position { .. } => "position",
            Self::Cash { .. } => "cash",
            Self::JournalCash { .. } => "journal_cash",
        }
    }

    /// Not explained by a crash: the account changed behind vigil's back, or the journal
    /// does not add up. Trading stays closed until a person looks.
    pub fn is_mismatch(&self) -> bool {
        match self {
            Self::FillRecovered(_)
            | Self::IntentFailed { .. }
            | Self::IntentAdopted { .. }
            | Self::OrderCancelled { .. }
            | Self::OrderClosed { .. } => false,
            Self::ExternalFill(_)
            | Self::OrderUnknownAtVenue { .. }
            | Self::UnknownOpenOrder { .. }
            | Self::Position { .. }
            | Self::Cash { .. }
            | Self::JournalCash { .. } => true,
        }
    }

    /// Its text form: what it is about, what each side held, what was done.
    pub fn record(&self) -> DifferenceRecord {
        let (subject, journal, venue, action): (String, String, String, &str) = match self {
            Self::FillRecovered(f) => (
                f.fill_id.clone(),
                "not journaled".into(),
                format!("{} for {}", f.trade(), f.order),
                "journaled and booked",
            ),
            Self::ExternalFill(f) => (
                f.fill_id.clone(),
                "no such order".into(),
                format!("{} for order {} (not vigil's)", f.trade(), f.order),
                "journaled and booked: the venue's position holds it",
            ),
            Self::IntentFailed { order } => (
                order.to_string(),
                JournalStatus::Intent.as_str().into(),
                "no such order".into(),
                "marked failed; not sent again",
            ),
            Self::OrderUnknownAtVenue { order, journal } => (
                order.to_string(),
                journal.as_str().into(),
                "no such order".into(),
                "marked failed; not sent again",
            ),
            Self::IntentAdopted { order, venue } => (
                order.to_string(),
                JournalStatus::Intent.as_str().into(),
                status_text(*venue).into(),
                "adopted: tracked as open",
            ),
            Self::OrderCancelled {
                order,
                journal,
                venue,
            } => (
                order.to_string(),
                journal.as_str().into(),
                status_text(*venue).into(),
                "cancelled at the venue (open orders policy: cancel)",
            ),
            Self::OrderClosed {
                order,
                journal,
                venue,
                filled,
            } => (
                order.to_string(),
                journal.as_str().into(),
                format!("{} ({filled} filled)", status_text(*venue)),
                "closed as the venue says",
            ),
            Self::UnknownOpenOrder {
                order,
                side,
                quantity,
                symbol,
                filled,
            } => (
                order.to_string(),
                "no such order".into(),
                format!("open {side} {quantity} {symbol} ({filled} filled)"),
                "left alone: not vigil's order",
            ),
            Self::Position {
                symbol,
                journal,
                venue,
            } => (
                symbol.to_string(),
                journal.to_string(),
                venue.to_string(),
                "took the venue's",
            ),
            Self::Cash { journal, venue } => (
                "cash".into(),
                journal.to_string(),
                venue.to_string(),
                "took the venue's",
            ),
            Self::JournalCash {
                journal,
                recomputed,
            } => (
                "cash".into(),
                journal.to_string(),
                format!("recomputed from the fills: {recomputed}"),
                "reported: the journal's cash does not add up",
            ),
        };
        DifferenceRecord {
            kind: self.kind(),
            subject,
            journal,
            venue,
            action: action.into(),
            mismatch: self.is_mismatch(),
        }
    }
}

/// A [`Difference`] in text, one field per column of `vigil reconcile`: the shape of its
/// JSON and of the `reconcile_difference` log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DifferenceRecord {
    /// The kind ([`Difference::kind`]).
    pub kind: &'static str,
    /// The symbol, order or fill it is about.
    pub subject: String,
    /// What the journal held.
    pub journal: String,
    /// What the venue holds.
    pub venue: String,
    /// What was done (or, in a dry run, would be done).
    pub action: String,
    /// [`Difference::is_mismatch`].
    pub mismatch: bool,
}

impl From<Difference> for DifferenceRecord {
    fn from(d: Difference) -> Self {
        d.record()
    }
}

/// The venue's status as a difference shows it.
fn status_text(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::New | OrderStatus::Accepted => "accepted",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Rejected => "rejected",
    }
}

/// The mismatches among `differences`, one clause each; empty when there are none.
pub fn mismatch_text(differences: &[Difference]) -> String {
    differences
        .iter()
        .filter(|d| d.is_mismatch())
        .map(|d| {
            let r = d.record();
            format!(
                "{} {}: journal {}, venue {} ({})",
                r.kind, r.subject, r.journal, r.venue, r.action
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::{Symbol, SymbolId, Timestamp};

    use super::*;

    fn symbols() -> SymbolTable {
        SymbolTable::new([Symbol::from("GOOG")])
    }

    fn fill(order: &str) -> Fill {
        Fill {
            fill_id: "f-1".into(),
            client_order_id: ClientOrderId::from(order),
            symbol: SymbolId(0),
            side: Side::Buy,
            quantity: dec!(7),
            price: dec!(300),
            commission: dec!(0),
            leaves_quantity: dec!(0),
            ts: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_external_fill_reads_as_it_always_has_and_is_a_mismatch() {
        let d = Difference::fill(&fill("by-hand-1"), &symbols(), false);
        assert!(d.is_mismatch());
        assert_eq!(
            d.record(),
            DifferenceRecord {
                kind: "external_fill",
                subject: "f-1".into(),
                journal: "no such order".into(),
                venue: "BUY 7 GOOG at 300 for order by-hand-1 (not vigil's)".into(),
                action: "journaled and booked: the venue's position holds it".into(),
                mismatch: true,
            }
        );
        assert_eq!(
            mismatch_text(&[d]),
            "external_fill f-1: journal no such order, venue BUY 7 GOOG at 300 for order \
             by-hand-1 (not vigil's) (journaled and booked: the venue's position holds it)"
        );
    }

    #[test]
    fn a_recovered_fill_is_explained_by_a_crash_and_left_out_of_the_mismatches() {
        let d = Difference::fill(&fill("tx_20240102T143000_GOOG-0"), &symbols(), true);
        assert!(!d.is_mismatch());
        assert_eq!(d.kind(), "fill_recovered");
        assert_eq!(
            d.record().venue,
            "BUY 7 GOOG at 300 for tx_20240102T143000_GOOG-0"
        );
        assert_eq!(mismatch_text(&[d]), "");
    }

    #[test]
    fn a_difference_serialises_as_its_record_with_the_field_names_reconcile_prints() {
        let d = Difference::OrderClosed {
            order: ClientOrderId::from("tx_1"),
            journal: JournalStatus::Accepted,
            venue: OrderStatus::Filled,
            filled: dec!(5),
        };
        let json = serde_json::to_value(&d).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "order_closed",
                "subject": "tx_1",
                "journal": "accepted",
                "venue": "filled (5 filled)",
                "action": "closed as the venue says",
                "mismatch": false,
            })
        );
    }

    #[test]
    fn every_kind_names_itself_and_says_whether_a_crash_explains_it() {
        let order = ClientOrderId::from("tx_1");
        let cases = [
            (
                Difference::IntentFailed {
                    order: order.clone(),
                },
                "intent_failed",
                false,
                "intent",
            ),
            (
                Difference::OrderUnknownAtVenue {
                    order: order.clone(),
                    journal: JournalStatus::Accepted,
                },
                "order_unknown_at_venue",
                true,
                "accepted",
            ),
            (
                Difference::IntentAdopted {
                    order: order.clone(),
                    venue: OrderStatus::New,
                },
                "intent_adopted",
                false,
                "intent",
            ),
            (
                Difference::Position {
                    symbol: "GOOG".into(),
                    journal: dec!(3),
                    venue: dec!(5),
                },
                "position",
                true,
                "3",
            ),
            (
                Difference::JournalCash {
                    journal: dec!(10),
                    recomputed: dec!(12),
                },
                "journal_cash",
                true,
                "10",
            ),
        ];
        for (d, kind, mismatch, journal) in cases {
            let r = d.record();
            assert_eq!(
                (r.kind, r.mismatch, r.journal.as_str()),
                (kind, mismatch, journal)
            );
        }
    }
}
