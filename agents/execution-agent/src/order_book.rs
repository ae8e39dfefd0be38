//! The open orders, by client order id: only open ones, so that the cost of a fill does not
//! grow with history. Each method takes what happened (an intent, the venue's answer, a
//! fill, a cancel, the venue's open orders after a restart) and returns what changed; the
//! actor logs and journals it.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use vigil_core::{ClientOrderId, Fill, OrderStatus, Side, SymbolId, TraceId, VenueOrder};
use vigil_log::LogContext;
use vigil_messages::{OpenOrderView, OrderIntent};

/// An order open at the venue (or on its way there).
#[derive(Debug)]
pub(crate) struct OpenOrder {
    /// The decision chain it came from.
    pub(crate) trace_id: TraceId,
    pub(crate) symbol: SymbolId,
    pub(crate) side: Side,
    pub(crate) quantity: Decimal,
    /// Filled so far.
    pub(crate) filled: Decimal,
    /// Quantity times price of its fills, for the average price.
    pub(crate) notional: Decimal,
    pub(crate) status: OrderStatus,
    /// The price the decision used, for slippage.
    pub(crate) reference_price: Decimal,
    /// The basis of the decision, for its log lines.
    pub(crate) context: LogContext,
    /// Each model version's share of it (a canary's), for the sub-ledgers.
    pub(crate) allocation: Vec<(&'static str, Decimal)>,
}

/// What a fill did to the order it filled.
#[derive(Debug, PartialEq)]
pub(crate) struct FillBooked {
    pub(crate) trace_id: TraceId,
    /// The order's side and quantity.
    pub(crate) side: Side,
    pub(crate) quantity: Decimal,
    /// Filled so far, this fill included.
    pub(crate) filled: Decimal,
    /// Signed slippage against the price the decision used, in basis points (positive:
    /// worse than the reference); zero without a reference.
    pub(crate) slippage_bps: Decimal,
    pub(crate) context: LogContext,
    /// Each model version's share of the order (a canary's).
    pub(crate) allocation: Vec<(&'static str, Decimal)>,
    /// The order is filled (and no longer open): its average price.
    pub(crate) completed: Option<Decimal>,
}

/// What reading the venue's open orders back after a restart changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rebuilt {
    /// Orders held as open that the venue no longer has open: dropped.
    pub(crate) gone: usize,
    /// Orders open at the venue that the book did not hold: adopted.
    pub(crate) adopted: u64,
}

/// The open orders.
#[derive(Debug, Default)]
pub(crate) struct OrderBook {
    open: HashMap<ClientOrderId, OpenOrder>,
}

impl OrderBook {
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    pub(crate) fn get(&self, id: &ClientOrderId) -> Option<&OpenOrder> {
        self.open.get(id)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = &ClientOrderId> + Clone {
        self.open.keys()
    }

    /// The ids in order, for commands that act on every open order.
    pub(crate) fn sorted_ids(&self) -> Vec<ClientOrderId> {
        let mut ids: Vec<ClientOrderId> = self.open.keys().cloned().collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids
    }

    /// The symbols with an order working.
    pub(crate) fn working_symbols(&self) -> HashSet<SymbolId> {
        self.open.values().map(|o| o.symbol).collect()
    }

    /// Books `intent` as a new open order; returns the orders it replaces (those open in
    /// its symbol, when it cancels them), to cancel at the venue first.
    pub(crate) fn submit(&mut self, intent: &OrderIntent) -> Vec<ClientOrderId> {
        let cancels = if intent.cancel_open {
            self.open
                .iter()
                .filter(|(_, o)| o.symbol == intent.order.symbol)
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            Vec::new()
        };
        self.open.insert(
            intent.order.client_order_id.clone(),
            OpenOrder {
                trace_id: intent.trace_id.clone(),
                symbol: intent.order.symbol,
                side: intent.order.side,
                quantity: intent.order.quantity,
                filled: Decimal::ZERO,
                notional: Decimal::ZERO,
                status: OrderStatus::New,
                reference_price: intent.reference_price,
                context: intent.context.clone(),
                allocation: intent.allocation.clone(),
            },
        );
        cancels
    }

    /// Tracks `order`, open at the venue, as it stands there.
    pub(crate) fn adopt(
        &mut self,
        order: &VenueOrder,
        trace_id: TraceId,
        reference_price: Decimal,
    ) {
        let r = &order.request;
        self.open.insert(
            r.client_order_id.clone(),
            OpenOrder {
                trace_id,
                symbol: r.symbol,
                side: r.side,
                quantity: r.quantity,
                filled: order.filled_quantity,
                notional: Decimal::ZERO,
                status: order.status,
                reference_price,
                context: LogContext::default(),
                allocation: Vec::new(),
            },
        );
    }

    /// The venue accepted `id`: returns the order (None when it is not open).
    pub(crate) fn accept(&mut self, id: &ClientOrderId) -> Option<&OpenOrder> {
        let order = self.open.get_mut(id)?;
        if order.status == OrderStatus::New {
            order.status = OrderStatus::Accepted;
        }
        Some(order)
    }

    /// `id` waits for the venue to come back: new again.
    pub(crate) fn hold(&mut self, id: &ClientOrderId) {
        if let Some(o) = self.open.get_mut(id) {
            o.status = OrderStatus::New;
        }
    }

    /// `id` is no longer open (cancelled, rejected, never sent): returns it.
    pub(crate) fn remove(&mut self, id: &ClientOrderId) -> Option<OpenOrder> {
        self.open.remove(id)
    }

    /// Books `fill` against its order; `None` when the order is not open here.
    pub(crate) fn fill(&mut self, fill: &Fill) -> Option<FillBooked> {
        let order = self.open.get_mut(&fill.client_order_id)?;
        order.filled += fill.quantity;
        order.notional += fill.quantity * fill.price;
        let slippage_bps = if order.reference_price.is_zero() {
            Decimal::ZERO
        } else {
            ((fill.price - order.reference_price) / order.reference_price
                * Decimal::from(10_000)
                * fill.side.sign())
            .round_dp(2)
        };
        let completed = fill.leaves_quantity.is_zero().then(|| {
            if order.filled.is_zero() {
                Decimal::ZERO
            } else {
                (order.notional / order.filled).round_dp(8)
            }
        });
        let booked = FillBooked {
            trace_id: order.trace_id.clone(),
            side: order.side,
            quantity: order.quantity,
            filled: order.filled,
            slippage_bps,
            context: order.context.clone(),
            allocation: order.allocation.clone(),
            completed,
        };
        if completed.is_some() {
            self.open.remove(&fill.client_order_id);
        } else {
            order.status = OrderStatus::PartiallyFilled;
        }
        Some(booked)
    }

    /// After a restart: the venue's `open` orders are the truth. Orders it no longer has
    /// open are dropped; those it has that the book did not are adopted.
    pub(crate) fn rebuild(&mut self, open: &[VenueOrder]) -> Rebuilt {
        let at_venue: HashSet<&ClientOrderId> =
            open.iter().map(|o| &o.request.client_order_id).collect();
        let before = self.open.len();
        self.open.retain(|id, _| at_venue.contains(id));
        let gone = before - self.open.len();
        let mut adopted = 0;
        for o in open {
            let r = &o.request;
            if self.open.contains_key(&r.client_order_id) {
                continue;
            }
            adopted += 1;
            self.adopt(
                o,
                TraceId::for_command("adopted", r.submitted_at),
                r.limit_price.unwrap_or_default(),
            );
        }
        Rebuilt { gone, adopted }
    }

    /// The open orders in `symbol`, as the Risk agent sees them.
    pub(crate) fn views(&self, symbol: SymbolId) -> Vec<OpenOrderView> {
        self.open
            .iter()
            .filter(|(_, o)| o.symbol == symbol)
            .map(|(id, o)| OpenOrderView {
                client_order_id: id.clone(),
                symbol,
                side: o.side,
                leaves_quantity: o.quantity - o.filled,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::{OrderRequest, OrderType, Timestamp};

    use super::*;

    fn intent(id: &str, symbol: u32, cancel_open: bool) -> OrderIntent {
        OrderIntent {
            trace_id: TraceId::from("sig-1"),
            order: OrderRequest {
                client_order_id: ClientOrderId::from(id),
                symbol: SymbolId(symbol),
                side: Side::Buy,
                quantity: dec!(10),
                order_type: OrderType::Market,
                limit_price: None,
                submitted_at: Timestamp::UNIX_EPOCH,
            },
            reference_price: dec!(100),
            cancel_open,
            context: LogContext::default(),
            allocation: Vec::new(),
            arrived_at: None,
        }
    }

    fn fill(id: &str, quantity: Decimal, price: Decimal, leaves: Decimal) -> Fill {
        Fill {
            client_order_id: ClientOrderId::from(id),
            fill_id: format!("{id}-{leaves}"),
            symbol: SymbolId(0),
            side: Side::Buy,
            quantity,
            price,
            commission: dec!(0),
            leaves_quantity: leaves,
            ts: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_intent_that_cancels_open_orders_replaces_only_those_of_its_symbol() {
        let mut book = OrderBook::default();
        assert!(book.submit(&intent("a", 0, true)).is_empty());
        assert!(book.submit(&intent("b", 1, false)).is_empty());
        assert_eq!(
            book.submit(&intent("c", 0, true)),
            [ClientOrderId::from("a")]
        );
        assert_eq!(book.submit(&intent("d", 1, false)), []);
        assert_eq!(book.len(), 4);
    }

    #[test]
    fn a_partial_then_a_final_fill_book_the_average_price_and_close_the_order() {
        let mut book = OrderBook::default();
        book.submit(&intent("a", 0, false));
        let first = book
            .fill(&fill("a", dec!(4), dec!(101), dec!(6)))
            .expect("open");
        assert_eq!((first.filled, first.completed), (dec!(4), None));
        // 1 above the reference of 100, on a buy: 100 bps worse.
        assert_eq!(first.slippage_bps, dec!(100));
        assert_eq!(
            book.get(&ClientOrderId::from("a")).map(|o| o.status),
            Some(OrderStatus::PartiallyFilled)
        );
        let last = book
            .fill(&fill("a", dec!(6), dec!(96), dec!(0)))
            .expect("open");
        assert_eq!(last.filled, dec!(10));
        assert_eq!(last.completed, Some(dec!(98)));
        assert!(book.is_empty());
        assert!(book.fill(&fill("a", dec!(1), dec!(1), dec!(0))).is_none());
    }

    #[test]
    fn acceptance_moves_only_a_new_order_and_an_unknown_one_is_none() {
        let mut book = OrderBook::default();
        book.submit(&intent("a", 0, false));
        let id = ClientOrderId::from("a");
        assert_eq!(
            book.accept(&id).map(|o| o.status),
            Some(OrderStatus::Accepted)
        );
        book.fill(&fill("a", dec!(1), dec!(100), dec!(9)));
        assert_eq!(
            book.accept(&id).map(|o| o.status),
            Some(OrderStatus::PartiallyFilled)
        );
        book.hold(&id);
        assert_eq!(book.get(&id).map(|o| o.status), Some(OrderStatus::New));
        assert!(book.accept(&ClientOrderId::from("zz")).is_none());
    }

    #[test]
    fn after_a_restart_the_venues_open_orders_replace_the_books() {
        let mut book = OrderBook::default();
        book.submit(&intent("kept", 0, false));
        book.submit(&intent("gone", 0, false));
        let at_venue = |id: &str| VenueOrder {
            request: vigil_testkit::order_request(
                id,
                0,
                Side::Sell,
                dec!(3),
                Some(dec!(50)),
                Timestamp::UNIX_EPOCH,
            ),
            status: OrderStatus::Accepted,
            filled_quantity: dec!(1),
        };
        let rebuilt = book.rebuild(&[at_venue("kept"), at_venue("new")]);
        assert_eq!(
            rebuilt,
            Rebuilt {
                gone: 1,
                adopted: 1
            }
        );
        let adopted = book.get(&ClientOrderId::from("new")).expect("adopted");
        assert_eq!(
            (adopted.side, adopted.filled, adopted.reference_price),
            (Side::Sell, dec!(1), dec!(50))
        );
        assert_eq!(book.views(SymbolId(0)).len(), 2);
        assert_eq!(
            book.sorted_ids(),
            [ClientOrderId::from("kept"), ClientOrderId::from("new")]
        );
    }
}
