//! An in-process venue that fills market and limit orders on bar data, with slippage,
//! commission and a cap on the share of a bar's volume it may take.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use vigil_core::{
    Bar, ClientOrderId, ExecutionReport, Fill, OrderAck, OrderRequest, OrderStatus, OrderType,
    Portfolio, SharedClock, Side, SymbolId, Timestamp, VenueOrder,
};

use crate::traits::{Account, ExecutionVenue, VenueError, VenuePosition};

/// Basis points per unit.
const BPS_PER_UNIT: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// When and at what price a market order fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillModel {
    /// At the open of the next bar the venue sees, with slippage: the order cannot trade on
    /// the bar that produced its signal.
    NextBarOpen,
    /// At once, at the close of the last bar seen (the signal bar), with slippage; a limit
    /// order fills at once when that close is at or better than its limit.
    SignalBarClose,
}

/// How a [`PaperVenue`] fills and charges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaperVenueConfig {
    /// The venue's name in logs and errors.
    pub name: String,
    /// When market orders fill.
    pub fill_model: FillModel,
    /// Price concession on market fills, in basis points (buys pay more, sells get less).
    pub slippage_bps: Decimal,
    /// Commission on a fill's notional, in basis points.
    pub commission_bps: Decimal,
    /// Smallest commission charged per fill.
    pub commission_min: Decimal,
    /// Largest share of a bar's volume the venue's fills on that bar may take together
    /// (`1` = all of it; zero or less fills nothing). A bar whose volume is unknown (a CSV
    /// file without a volume column) has no cap.
    pub max_volume_participation: Decimal,
    /// Cash the venue's book starts with.
    pub initial_cash: Decimal,
}

impl Default for PaperVenueConfig {
    fn default() -> Self {
        Self {
            name: "paper".into(),
            fill_model: FillModel::NextBarOpen,
            slippage_bps: Decimal::ONE,
            commission_bps: Decimal::ONE,
            commission_min: Decimal::ZERO,
            max_volume_participation: Decimal::ONE,
            initial_cash: Decimal::from(100_000),
        }
    }
}

/// An in-process [`ExecutionVenue`] that fills orders on the bars it is shown through
/// [`ExecutionVenue::on_market_data`], and keeps its own book.
///
/// On each bar, the symbol's open orders fill in submission order: a market order at the
/// open with slippage; a buy limit at the open if the open is at or below the limit, else
/// at the limit if the low reaches it (sells mirror this), without slippage. The fills on
/// one bar together take at most `max_volume_participation` of its volume (no cap when the
/// bar's volume is unknown); what is left stays open, and an order the bar would have traded
/// but left nothing to take gets an [`ExecutionReport::Unfilled`]. An order never fills on a bar at or before the last bar the venue had seen
/// when it arrived. Short sales are allowed and there is no buying-power check: the venue
/// models execution, not a broker's risk limits.
///
/// It keeps its open orders and the last [`CLOSED_ORDERS_KEPT`] closed ones (filled,
/// cancelled or rejected): a month of orders does not stay in memory (the journal keeps
/// them when `store.journal_paper_venue` is on). A resubmitted id it still keeps gets the
/// same answer as before; one it forgot is a new order.
#[derive(Debug)]
pub struct PaperVenue {
    config: PaperVenueConfig,
    clock: SharedClock,
    state: Mutex<State>,
}

/// How many closed orders (filled, cancelled, rejected) the paper venue keeps, for a
/// resubmission's answer and a lookup by id; older ones are forgotten.
pub const CLOSED_ORDERS_KEPT: usize = 10_000;

#[derive(Debug)]
struct State {
    /// The venue's own book.
    portfolio: Portfolio,
    /// The orders it knows, by client order id: every open one, and the last
    /// [`CLOSED_ORDERS_KEPT`] closed ones.
    orders: HashMap<ClientOrderId, Order>,
    /// The closed orders kept, oldest first.
    closed: VecDeque<ClientOrderId>,
    /// Orders submitted, rejected ones included (the submission order).
    submitted: u64,
    /// Per symbol, indexed by `SymbolId`.
    symbols: Vec<SymbolState>,
    reports: Vec<ExecutionReport>,
    next_order: u64,
    next_fill: u64,
}

#[derive(Debug, Default)]
struct SymbolState {
    /// The open orders, in submission order.
    open: Vec<ClientOrderId>,
    last_bar: Option<Bar>,
    /// Volume of the last bar still available to fills; `None`: no cap (its volume is
    /// unknown).
    volume_left: Option<Decimal>,
}

#[derive(Debug)]
struct Order {
    /// Its place in the submission order.
    seq: u64,
    request: OrderRequest,
    ack: OrderAck,
    status: OrderStatus,
    filled: Decimal,
    /// The limit price; `None` for a market order.
    limit: Option<Decimal>,
    /// The symbol's last bar when the order arrived: only later bars may fill it.
    after: Option<Timestamp>,
}

/// Forgets the closed orders beyond the last [`CLOSED_ORDERS_KEPT`].
fn forget_closed(orders: &mut HashMap<ClientOrderId, Order>, closed: &mut VecDeque<ClientOrderId>) {
    while closed.len() > CLOSED_ORDERS_KEPT {
        if let Some(id) = closed.pop_front() {
            orders.remove(&id);
        }
    }
}

/// The price an order of `side` (with `limit`, `None` for a market order) gets on `bar`,
/// if it trades there at all: a market order at the open moved against it by
/// `slippage_bps`; a buy limit at the open if the open is at or below the limit, else at the
/// limit if the low reaches it (sells mirror this), without slippage.
///
/// Shared with the paper broker process (`vigil broker`), so that both fill alike.
pub fn bar_fill_price(
    side: Side,
    limit: Option<Decimal>,
    bar: &Bar,
    slippage_bps: Decimal,
) -> Option<Decimal> {
    match (limit, side) {
        (None, _) => Some(slipped(bar.open, side, slippage_bps)),
        (Some(limit), Side::Buy) if bar.open <= limit => Some(bar.open),
        (Some(limit), Side::Buy) if bar.low <= limit => Some(limit),
        (Some(limit), Side::Sell) if bar.open >= limit => Some(bar.open),
        (Some(limit), Side::Sell) if bar.high >= limit => Some(limit),
        (Some(_), _) => None,
    }
}

/// The commission on a fill of `quantity` at `price`: `bps` basis points of the notional,
/// at least `min`.
pub fn fill_commission(quantity: Decimal, price: Decimal, bps: Decimal, min: Decimal) -> Decimal {
    min.max((quantity * price).abs() * bps / BPS_PER_UNIT)
}

/// The price an order gets on `bar`, if it trades there at all.
fn bar_price(order: &Order, bar: &Bar, slippage_bps: Decimal) -> Option<Decimal> {
    bar_fill_price(order.request.side, order.limit, bar, slippage_bps)
}

/// `price` moved against the taker by `bps` basis points.
fn slipped(price: Decimal, side: Side, bps: Decimal) -> Decimal {
    price * (Decimal::ONE + side.sign() * bps / BPS_PER_UNIT)
}

/// The borrowed parts of the state a fill touches, so that fills can run while the
/// symbol's open-order list is borrowed separately.
struct Book<'a> {
    config: &'a PaperVenueConfig,
    portfolio: &'a mut Portfolio,
    reports: &'a mut Vec<ExecutionReport>,
    next_fill: &'a mut u64,
}

impl Book<'_> {
    /// Fills as much of `order` at `price` on `bar` as `volume_left` allows (`None`: no
    /// cap) and returns the quantity filled. Nothing left to take is reported
    /// ([`ExecutionReport::Unfilled`]), never silent.
    fn fill(
        &mut self,
        order: &mut Order,
        price: Decimal,
        volume_left: Option<Decimal>,
        bar: &Bar,
    ) -> Decimal {
        let ts = bar.ts;
        let leaves = order.request.quantity - order.filled;
        let quantity = volume_left.map_or(leaves, |left| leaves.min(left));
        if quantity <= Decimal::ZERO {
            if leaves > Decimal::ZERO {
                let reason = match bar.volume {
                    Some(v) if v.is_zero() => "the bar traded no volume".to_string(),
                    Some(v) => format!(
                        "earlier orders took the share of the bar's volume the venue fills \
                         ({} of {v})",
                        self.config.max_volume_participation
                    ),
                    None => "nothing left to take".to_string(),
                };
                self.reports.push(ExecutionReport::Unfilled {
                    client_order_id: order.request.client_order_id.clone(),
                    reason: format!("{reason}; {leaves} still to fill, the order stays open"),
                    ts,
                });
            }
            return Decimal::ZERO;
        }
        let leaves = leaves - quantity;
        order.filled += quantity;
        order.status = if leaves.is_zero() {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let commission = fill_commission(
            quantity,
            price,
            self.config.commission_bps,
            self.config.commission_min,
        );
        *self.next_fill += 1;
        let fill = Fill {
            client_order_id: order.request.client_order_id.clone(),
            fill_id: format!("F-{:06}", *self.next_fill),
            symbol: order.request.symbol,
            side: order.request.side,
            quantity,
            price,
            commission,
            leaves_quantity: leaves,
            ts,
        };
        self.portfolio.apply_fill(&fill);
        self.reports.push(ExecutionReport::Fill(fill));
        quantity
    }
}

impl State {
    /// `id` has closed: kept among the last [`CLOSED_ORDERS_KEPT`] closed orders.
    fn closed(&mut self, id: ClientOrderId) {
        self.closed.push_back(id);
        forget_closed(&mut self.orders, &mut self.closed);
    }

    fn symbol_mut(&mut self, symbol: SymbolId) -> &mut SymbolState {
        let i = symbol.index();
        if i >= self.symbols.len() {
            self.symbols.resize_with(i + 1, SymbolState::default);
        }
        &mut self.symbols[i]
    }
}

/// Why a request cannot be accepted, if it cannot.
fn rejection(order: &OrderRequest, last_bar: Option<&Bar>) -> Option<String> {
    if order.quantity <= Decimal::ZERO {
        return Some(format!("quantity {} is not positive", order.quantity));
    }
    match order.order_type {
        OrderType::Limit => match order.limit_price {
            None => Some("limit order without a limit price".into()),
            Some(limit) if limit <= Decimal::ZERO => {
                Some(format!("limit price {limit} is not positive"))
            }
            Some(_) => None,
        },
        OrderType::Market if last_bar.is_none() => {
            Some(format!("no market data for symbol {} yet", order.symbol.0))
        }
        OrderType::Market => None,
    }
}

impl PaperVenue {
    /// Creates a venue with an empty book holding `config.initial_cash`; cancellations are
    /// stamped with `clock`'s time, fills with their bar's.
    pub fn new(config: PaperVenueConfig, clock: SharedClock) -> Self {
        let portfolio = Portfolio::new(config.initial_cash);
        Self {
            config,
            clock,
            state: Mutex::new(State {
                portfolio,
                orders: HashMap::new(),
                closed: VecDeque::new(),
                submitted: 0,
                symbols: Vec::new(),
                reports: Vec::new(),
                next_order: 0,
                next_fill: 0,
            }),
        }
    }

    /// Returns the venue's configuration.
    pub fn config(&self) -> &PaperVenueConfig {
        &self.config
    }

    fn unknown_order(&self, id: &ClientOrderId) -> VenueError {
        VenueError::UnknownOrder {
            venue: self.config.name.clone(),
            client_order_id: id.clone(),
        }
    }
}

#[async_trait]
impl ExecutionVenue for PaperVenue {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn submit_order(&self, request: &OrderRequest) -> Result<OrderAck, VenueError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if let Some(order) = state.orders.get(&request.client_order_id) {
            // Nothing new is created: a refusal is answered again, anything else is a
            // duplicate (never an acceptance).
            return Ok(match &order.ack {
                OrderAck::Accepted { venue_order_id } => OrderAck::Duplicate {
                    venue_order_id: venue_order_id.clone(),
                    status: order.status,
                    filled_quantity: order.filled,
                },
                other => other.clone(),
            });
        }
        state.submitted += 1;
        let seq = state.submitted;
        let symbol = state.symbol_mut(request.symbol);
        let last_bar = symbol.last_bar;
        let id = request.client_order_id.clone();
        if let Some(reason) = rejection(request, last_bar.as_ref()) {
            let ack = OrderAck::Rejected { reason };
            // Kept (as long as closed orders are) so that a resubmission gets the same
            // answer.
            state.orders.insert(
                id.clone(),
                Order {
                    seq,
                    request: request.clone(),
                    ack: ack.clone(),
                    status: OrderStatus::Rejected,
                    filled: Decimal::ZERO,
                    limit: None,
                    after: None,
                },
            );
            state.closed(id);
            return Ok(ack);
        }
        state.next_order += 1;
        let ack = OrderAck::Accepted {
            venue_order_id: format!("P-{:06}", state.next_order),
        };
        let limit = match request.order_type {
            OrderType::Market => None,
            OrderType::Limit => request.limit_price,
        };
        let mut order = Order {
            seq,
            request: request.clone(),
            ack: ack.clone(),
            status: OrderStatus::Accepted,
            filled: Decimal::ZERO,
            limit,
            after: last_bar.map(|b| b.ts),
        };
        if let (FillModel::SignalBarClose, Some(bar)) = (self.config.fill_model, last_bar) {
            let price = match (limit, request.side) {
                (None, side) => Some(slipped(bar.close, side, self.config.slippage_bps)),
                (Some(l), Side::Buy) if bar.close <= l => Some(bar.close),
                (Some(l), Side::Sell) if bar.close >= l => Some(bar.close),
                (Some(_), _) => None,
            };
            if let Some(price) = price {
                let volume_left = state.symbols[request.symbol.index()].volume_left;
                let mut book = Book {
                    config: &self.config,
                    portfolio: &mut state.portfolio,
                    reports: &mut state.reports,
                    next_fill: &mut state.next_fill,
                };
                let filled = book.fill(&mut order, price, volume_left, &bar);
                if let Some(left) = &mut state.symbols[request.symbol.index()].volume_left {
                    *left -= filled;
                }
            }
        }
        let open = order.status.is_open();
        state.orders.insert(id.clone(), order);
        if open {
            state.symbols[request.symbol.index()].open.push(id);
        } else {
            state.closed(id);
        }
        Ok(ack)
    }

    async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let Some(order) = state.orders.get_mut(id) else {
            return Err(self.unknown_order(id));
        };
        if !order.status.is_open() {
            // Filled, cancelled or rejected already: nothing left to cancel.
            return Ok(());
        }
        order.status = OrderStatus::Cancelled;
        let symbol = order.request.symbol;
        let open = &mut state.symbols[symbol.index()].open;
        if let Some(at) = open.iter().position(|o| o == id) {
            open.remove(at);
        }
        state.closed(id.clone());
        state.reports.push(ExecutionReport::Cancelled {
            client_order_id: id.clone(),
            reason: "cancelled by request".into(),
            ts: self.clock.now(),
        });
        Ok(())
    }

    async fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError> {
        let state = self.state.lock();
        let mut open: Vec<&Order> = state
            .orders
            .values()
            .filter(|o| o.status.is_open())
            .collect();
        open.sort_unstable_by_key(|o| o.seq);
        Ok(open
            .into_iter()
            .map(|o| VenueOrder {
                request: o.request.clone(),
                status: o.status,
                filled_quantity: o.filled,
            })
            .collect())
    }

    async fn positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        Ok(VenuePosition::held_in(&self.state.lock().portfolio))
    }

    async fn account(&self) -> Result<Account, VenueError> {
        let state = self.state.lock();
        Ok(Account {
            cash: state.portfolio.cash(),
            equity: state.portfolio.equity(),
        })
    }

    fn drain_reports(&self, out: &mut Vec<ExecutionReport>) {
        out.append(&mut self.state.lock().reports);
    }

    fn on_market_data(&self, bar: &Bar) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let i = bar.symbol.index();
        if i >= state.symbols.len() {
            // First bar of a new symbol: the only allocation on this path.
            state.symbols.resize_with(i + 1, SymbolState::default);
        }
        let symbol = &mut state.symbols[i];
        symbol.last_bar = Some(*bar);
        let mut volume_left = bar.volume.map(|v| self.config.max_volume_participation * v);
        if !symbol.open.is_empty() {
            let mut book = Book {
                config: &self.config,
                portfolio: &mut state.portfolio,
                reports: &mut state.reports,
                next_fill: &mut state.next_fill,
            };
            let orders = &mut state.orders;
            let closed = &mut state.closed;
            symbol.open.retain(|id| {
                let Some(order) = orders.get_mut(id) else {
                    // Every open order is kept: nothing to fill.
                    return false;
                };
                if order.after.is_some_and(|after| bar.ts <= after) {
                    return true;
                }
                if let Some(price) = bar_price(order, bar, self.config.slippage_bps) {
                    let filled = book.fill(order, price, volume_left, bar);
                    if let Some(left) = &mut volume_left {
                        *left -= filled;
                    }
                }
                let open = order.status.is_open();
                if !open {
                    closed.push_back(id.clone());
                }
                open
            });
            forget_closed(orders, closed);
        }
        symbol.volume_left = volume_left;
        state.portfolio.mark(bar.symbol, bar.close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use std::sync::Arc;
    use vigil_core::SimClock;
    use vigil_testkit::{bar, flat_bar, order_request};

    fn t(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn day(d: u32) -> Timestamp {
        t(&format!("2024-01-{d:02}T00:00:00Z"))
    }

    fn venue(config: PaperVenueConfig) -> (PaperVenue, SimClock) {
        let clock = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
        let shared: SharedClock = Arc::new(clock.clone());
        (PaperVenue::new(config, shared), clock)
    }

    fn free() -> PaperVenueConfig {
        PaperVenueConfig {
            slippage_bps: Decimal::ZERO,
            commission_bps: Decimal::ZERO,
            ..PaperVenueConfig::default()
        }
    }

    fn flat(symbol: u32, d: u32, price: Decimal) -> Bar {
        flat_bar(symbol, d, price)
    }

    fn order(
        id: &str,
        symbol: u32,
        side: Side,
        qty: Decimal,
        limit: Option<Decimal>,
    ) -> OrderRequest {
        order_request(id, symbol, side, qty, limit, day(1))
    }

    /// The fills reported since the last call (an order left unfilled is not one).
    fn fills(venue: &PaperVenue) -> Vec<Fill> {
        let mut reports = Vec::new();
        venue.drain_reports(&mut reports);
        reports
            .into_iter()
            .filter_map(|r| match r {
                ExecutionReport::Fill(f) => Some(f),
                ExecutionReport::Unfilled { .. } => None,
                other => panic!("expected a fill, got {other:?}"),
            })
            .collect()
    }

    async fn accepted(venue: &PaperVenue, request: &OrderRequest) -> String {
        match venue.submit_order(request).await.expect("submit") {
            OrderAck::Accepted { venue_order_id } => venue_order_id,
            other => panic!("not accepted: {other:?}"),
        }
    }

    #[tokio::test]
    async fn next_bar_open_fills_with_exact_slippage_and_commission() {
        let (venue, _) = venue(PaperVenueConfig {
            slippage_bps: dec!(10),
            commission_bps: dec!(5),
            commission_min: dec!(1),
            ..PaperVenueConfig::default()
        });
        venue.on_market_data(&flat(0, 1, dec!(100)));
        let id = accepted(&venue, &order("b", 0, Side::Buy, dec!(100), None)).await;
        assert_eq!(id, "P-000001");
        assert!(
            fills(&venue).is_empty(),
            "nothing fills before the next bar"
        );

        venue.on_market_data(&bar(
            0,
            2,
            [dec!(101), dec!(103), dec!(100), dec!(102)],
            dec!(1e6),
        ));
        let f = fills(&venue);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].fill_id, "F-000001");
        assert_eq!(f[0].price, dec!(101.101)); // 101 × (1 + 10/10000)
        assert_eq!(f[0].commission, dec!(5.05505)); // 100 × 101.101 × 5/10000
        assert_eq!(f[0].leaves_quantity, dec!(0));
        assert_eq!(f[0].ts, day(2));

        accepted(&venue, &order("s", 0, Side::Sell, dec!(10), None)).await;
        venue.on_market_data(&flat(0, 3, dec!(102)));
        let f = fills(&venue);
        assert_eq!(f[0].price, dec!(101.898)); // 102 × (1 − 10/10000)
        assert_eq!(f[0].commission, dec!(1)); // 0.50949 is below the minimum

        let account = venue.account().await.expect("account");
        assert_eq!(
            account.cash,
            dec!(100000) - dec!(10110.1) - dec!(5.05505) + dec!(1018.98) - dec!(1)
        );
        assert_eq!(account.equity, account.cash + dec!(90) * dec!(102));
        assert_eq!(
            venue.positions().await.expect("positions"),
            vec![VenuePosition {
                symbol: SymbolId(0),
                quantity: dec!(90),
                avg_price: dec!(101.101),
            }]
        );
    }

    #[tokio::test]
    async fn signal_bar_close_fills_at_once_at_the_last_close() {
        let (venue, _) = venue(PaperVenueConfig {
            fill_model: FillModel::SignalBarClose,
            slippage_bps: dec!(2),
            ..free()
        });
        venue.on_market_data(&bar(
            0,
            1,
            [dec!(48), dec!(51), dec!(47), dec!(50)],
            dec!(1000),
        ));
        accepted(&venue, &order("m", 0, Side::Buy, dec!(10), None)).await;
        let f = fills(&venue);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].price, dec!(50.01)); // 50 × (1 + 2/10000)
        assert_eq!(f[0].ts, day(1));
        assert!(venue.open_orders().await.expect("open").is_empty());

        // A limit at or better than the close fills at the close, without slippage.
        accepted(&venue, &order("l1", 0, Side::Sell, dec!(5), Some(dec!(50)))).await;
        assert_eq!(fills(&venue)[0].price, dec!(50));
        // A limit worse than the close rests, and fills on a later bar by the bar rules.
        accepted(&venue, &order("l2", 0, Side::Buy, dec!(5), Some(dec!(49)))).await;
        assert!(fills(&venue).is_empty());
        assert_eq!(venue.open_orders().await.expect("open").len(), 1);
        venue.on_market_data(&bar(
            0,
            2,
            [dec!(50), dec!(50), dec!(48), dec!(49)],
            dec!(1000),
        ));
        let f = fills(&venue);
        assert_eq!((f[0].price, f[0].ts), (dec!(49), day(2)));
    }

    #[tokio::test]
    async fn limit_orders_fill_at_the_open_when_it_gaps_through_else_at_the_limit() {
        let (venue, _) = venue(free());
        venue.on_market_data(&flat(0, 1, dec!(100)));
        accepted(
            &venue,
            &order("buy-rests", 0, Side::Buy, dec!(1), Some(dec!(95))),
        )
        .await;
        accepted(
            &venue,
            &order("sell-rests", 0, Side::Sell, dec!(1), Some(dec!(105))),
        )
        .await;
        venue.on_market_data(&bar(
            0,
            2,
            [dec!(100), dec!(104), dec!(96), dec!(100)],
            dec!(1000),
        ));
        assert!(fills(&venue).is_empty(), "neither limit was reached");

        // Intrabar touch: fills at the limit.
        venue.on_market_data(&bar(
            0,
            3,
            [dec!(100), dec!(106), dec!(94), dec!(100)],
            dec!(1000),
        ));
        let f = fills(&venue);
        assert_eq!(
            f.iter().map(|f| (f.side, f.price)).collect::<Vec<_>>(),
            vec![(Side::Buy, dec!(95)), (Side::Sell, dec!(105))]
        );

        // Gap through the limit at the open: fills at the (better) open.
        accepted(
            &venue,
            &order("buy-gap", 0, Side::Buy, dec!(1), Some(dec!(95))),
        )
        .await;
        accepted(
            &venue,
            &order("sell-gap", 0, Side::Sell, dec!(1), Some(dec!(85))),
        )
        .await;
        venue.on_market_data(&bar(
            0,
            4,
            [dec!(90), dec!(91), dec!(89), dec!(90)],
            dec!(1000),
        ));
        let f = fills(&venue);
        assert_eq!(
            f.iter().map(|f| (f.side, f.price)).collect::<Vec<_>>(),
            vec![(Side::Buy, dec!(90)), (Side::Sell, dec!(90))]
        );
    }

    #[tokio::test]
    async fn participation_cap_fills_partially_across_bars() {
        let (venue, _) = venue(PaperVenueConfig {
            max_volume_participation: dec!(0.5),
            ..free()
        });
        venue.on_market_data(&flat(0, 1, dec!(10)));
        accepted(&venue, &order("big", 0, Side::Buy, dec!(120), None)).await;
        let mut leaves = Vec::new();
        for d in 2..=4 {
            venue.on_market_data(&bar(0, d, [dec!(10); 4], dec!(100)));
            let f = fills(&venue);
            assert_eq!(f.len(), 1);
            leaves.push((f[0].quantity, f[0].leaves_quantity));
            if d == 2 {
                let open = venue.open_orders().await.expect("open");
                assert_eq!(open[0].status, OrderStatus::PartiallyFilled);
                assert_eq!(open[0].filled_quantity, dec!(50));
            }
        }
        assert_eq!(
            leaves,
            vec![
                (dec!(50), dec!(70)),
                (dec!(50), dec!(20)),
                (dec!(20), dec!(0))
            ]
        );
        assert!(venue.open_orders().await.expect("open").is_empty());
    }

    #[tokio::test]
    async fn orders_on_one_bar_share_its_volume_cap_in_submission_order() {
        let (venue, _) = venue(PaperVenueConfig {
            max_volume_participation: dec!(0.1),
            ..free()
        });
        venue.on_market_data(&flat(0, 1, dec!(10)));
        accepted(&venue, &order("first", 0, Side::Buy, dec!(8), None)).await;
        accepted(&venue, &order("second", 0, Side::Buy, dec!(8), None)).await;
        venue.on_market_data(&bar(0, 2, [dec!(10); 4], dec!(100)));
        let f = fills(&venue);
        assert_eq!(
            f.iter()
                .map(|f| (f.client_order_id.as_str(), f.quantity))
                .collect::<Vec<_>>(),
            vec![("first", dec!(8)), ("second", dec!(2))]
        );
    }

    #[tokio::test]
    async fn a_bar_of_unknown_volume_fills_without_a_cap_and_the_spent_cap_is_reported() {
        let (capped, _) = venue(PaperVenueConfig {
            max_volume_participation: dec!(0.1),
            ..free()
        });
        capped.on_market_data(&flat(0, 1, dec!(10)));
        accepted(&capped, &order("first", 0, Side::Buy, dec!(8), None)).await;
        accepted(&capped, &order("second", 0, Side::Buy, dec!(8), None)).await;
        // A CSV file without a volume column: the volume is unknown, not zero.
        let unknown = Bar {
            volume: None,
            ..flat(0, 2, dec!(10))
        };
        capped.on_market_data(&unknown);
        let f = fills(&capped);
        assert_eq!(
            f.iter()
                .map(|f| (f.client_order_id.as_str(), f.quantity))
                .collect::<Vec<_>>(),
            vec![("first", dec!(8)), ("second", dec!(8))]
        );
        // With the signal bar's close too.
        let (at_close, _) = venue(PaperVenueConfig {
            fill_model: FillModel::SignalBarClose,
            max_volume_participation: dec!(0.1),
            ..free()
        });
        at_close.on_market_data(&unknown);
        accepted(&at_close, &order("close", 0, Side::Buy, dec!(8), None)).await;
        assert_eq!(fills(&at_close)[0].quantity, dec!(8));
        // A known volume whose share is spent: the next order is told, not left silent.
        let (spent, _) = venue(PaperVenueConfig {
            max_volume_participation: dec!(0.1),
            ..free()
        });
        spent.on_market_data(&flat(0, 1, dec!(10)));
        accepted(&spent, &order("big", 0, Side::Buy, dec!(10), None)).await;
        accepted(&spent, &order("late", 0, Side::Buy, dec!(1), None)).await;
        spent.on_market_data(&bar(0, 2, [dec!(10); 4], dec!(100)));
        let mut reports = Vec::new();
        spent.drain_reports(&mut reports);
        assert!(
            matches!(
                &reports[..],
                [
                    ExecutionReport::Fill(_),
                    ExecutionReport::Unfilled { client_order_id, reason, .. },
                ] if client_order_id.as_str() == "late"
                    && reason.starts_with("earlier orders took the share of the bar's volume the venue fills (0.1 of 100)")
            ),
            "{reports:?}"
        );
    }

    #[tokio::test]
    async fn zero_volume_bar_fills_nothing_and_says_so() {
        let (venue, _) = venue(free());
        venue.on_market_data(&flat(0, 1, dec!(10)));
        accepted(&venue, &order("o", 0, Side::Buy, dec!(5), None)).await;
        venue.on_market_data(&bar(0, 2, [dec!(10); 4], dec!(0)));
        let mut reports = Vec::new();
        venue.drain_reports(&mut reports);
        match reports.as_slice() {
            [
                ExecutionReport::Unfilled {
                    client_order_id,
                    reason,
                    ts,
                },
            ] => {
                assert_eq!(client_order_id.as_str(), "o");
                assert_eq!(*ts, day(2));
                assert_eq!(
                    reason,
                    "the bar traded no volume; 5 still to fill, the order stays open"
                );
            }
            other => panic!("expected one unfilled report, got {other:?}"),
        }
        assert_eq!(
            venue.open_orders().await.expect("open")[0].status,
            OrderStatus::Accepted
        );
        venue.on_market_data(&bar(0, 3, [dec!(11); 4], dec!(10)));
        assert_eq!(fills(&venue)[0].price, dec!(11));
    }

    #[tokio::test]
    async fn an_order_never_fills_on_a_bar_it_has_already_seen() {
        let (venue, _) = venue(free());
        venue.on_market_data(&flat(0, 2, dec!(10)));
        accepted(&venue, &order("o", 0, Side::Buy, dec!(5), None)).await;
        // The same bar delivered again (a replay overlap) is not the next bar.
        venue.on_market_data(&flat(0, 2, dec!(10)));
        assert!(fills(&venue).is_empty());
        venue.on_market_data(&flat(0, 3, dec!(12)));
        assert_eq!(fills(&venue)[0].price, dec!(12));
    }

    #[tokio::test]
    async fn closed_orders_leave_memory_and_open_ones_stay() {
        let (venue, _) = venue(PaperVenueConfig {
            fill_model: FillModel::SignalBarClose,
            ..free()
        });
        venue.on_market_data(&flat(0, 1, dec!(10)));
        // Far below the market: open throughout.
        let resting = order("resting", 0, Side::Buy, dec!(1), Some(dec!(1)));
        venue.submit_order(&resting).await.expect("resting");
        // Each fills at once at the last close, and closes.
        let n = CLOSED_ORDERS_KEPT + 100;
        for i in 0..n {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            let ack = venue
                .submit_order(&order(&format!("o{i}"), 0, side, dec!(1), None))
                .await
                .expect("submit");
            assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
        }
        assert_eq!(fills(&venue).len(), n);
        assert_eq!(
            venue.state.lock().orders.len(),
            CLOSED_ORDERS_KEPT + 1,
            "the open order and the last closed ones, no more"
        );
        let open = venue.open_orders().await.expect("open");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].request, resting);
        // The newest closed order is still known: a resubmission is a duplicate.
        let newest = order(&format!("o{}", n - 1), 0, Side::Sell, dec!(1), None);
        assert!(matches!(
            venue.submit_order(&newest).await.expect("again"),
            OrderAck::Duplicate {
                status: OrderStatus::Filled,
                ..
            }
        ));
        // The oldest were forgotten (the journal keeps them): unknown to a cancel.
        assert!(
            venue
                .cancel_order(&ClientOrderId::from("o1"))
                .await
                .is_err()
        );
        venue
            .cancel_order(&resting.client_order_id)
            .await
            .expect("cancel");
        assert!(venue.open_orders().await.expect("open").is_empty());
        assert!(venue.state.lock().orders.len() <= CLOSED_ORDERS_KEPT);
    }

    #[tokio::test]
    async fn resubmitting_a_client_order_id_is_a_duplicate_never_an_acceptance() {
        let (venue, _) = venue(free());
        venue.on_market_data(&flat(0, 1, dec!(10)));
        let request = order("dup", 0, Side::Buy, dec!(5), None);
        let first = venue.submit_order(&request).await.expect("first");
        let OrderAck::Accepted { venue_order_id } = &first else {
            panic!("the first is accepted: {first:?}");
        };
        let again = venue
            .submit_order(&OrderRequest {
                quantity: dec!(500),
                ..request.clone()
            })
            .await
            .expect("again");
        assert_eq!(
            again,
            OrderAck::Duplicate {
                venue_order_id: venue_order_id.clone(),
                status: OrderStatus::Accepted,
                filled_quantity: dec!(0),
            }
        );
        assert_eq!(venue.open_orders().await.expect("open").len(), 1);
        venue.on_market_data(&flat(0, 2, dec!(10)));
        let f = fills(&venue);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].quantity, dec!(5));
        // After the fill too: a duplicate of the filled order, and nothing new.
        assert_eq!(
            venue.submit_order(&request).await.expect("later"),
            OrderAck::Duplicate {
                venue_order_id: venue_order_id.clone(),
                status: OrderStatus::Filled,
                filled_quantity: dec!(5),
            }
        );
        venue.on_market_data(&flat(0, 3, dec!(10)));
        assert!(fills(&venue).is_empty());
    }

    #[tokio::test]
    async fn invalid_orders_are_rejected_with_a_reason() {
        let (venue, _) = venue(free());
        let cases = [
            (
                order("q0", 0, Side::Buy, dec!(0), None),
                "quantity 0 is not positive",
            ),
            (
                order("qn", 0, Side::Buy, dec!(-1), None),
                "quantity -1 is not positive",
            ),
            (
                OrderRequest {
                    order_type: OrderType::Limit,
                    ..order("nolimit", 0, Side::Buy, dec!(1), None)
                },
                "limit order without a limit price",
            ),
            (
                order("l0", 0, Side::Buy, dec!(1), Some(dec!(0))),
                "limit price 0 is not positive",
            ),
            (
                order("nodata", 7, Side::Buy, dec!(1), None),
                "no market data for symbol 7 yet",
            ),
        ];
        let expected = |reason: &str| OrderAck::Rejected {
            reason: reason.into(),
        };
        for (request, reason) in &cases {
            assert_eq!(
                venue.submit_order(request).await.expect("submit"),
                expected(reason)
            );
        }
        // Idempotent too: the same id gets the same answer, even once data has arrived.
        venue.on_market_data(&flat(7, 1, dec!(10)));
        for (request, reason) in &cases {
            assert_eq!(
                venue.submit_order(request).await.expect("again"),
                expected(reason)
            );
        }
        assert!(venue.open_orders().await.expect("open").is_empty());
        // A limit order needs no market data.
        accepted(&venue, &order("lim", 3, Side::Buy, dec!(1), Some(dec!(5)))).await;
    }

    #[tokio::test]
    async fn cancel_closes_open_orders_only_once_and_knows_its_orders() {
        let (venue, clock) = venue(free());
        venue.on_market_data(&flat(0, 1, dec!(10)));
        accepted(&venue, &order("c", 0, Side::Buy, dec!(5), Some(dec!(9)))).await;
        clock.advance_to(t("2024-01-01T12:00:00Z"));
        venue
            .cancel_order(&ClientOrderId::from("c"))
            .await
            .expect("cancel");
        let mut reports = Vec::new();
        venue.drain_reports(&mut reports);
        assert_eq!(
            reports,
            vec![ExecutionReport::Cancelled {
                client_order_id: ClientOrderId::from("c"),
                reason: "cancelled by request".into(),
                ts: t("2024-01-01T12:00:00Z"),
            }]
        );
        assert!(venue.open_orders().await.expect("open").is_empty());
        // A cancelled order no longer fills, and cancelling it again changes nothing.
        venue.on_market_data(&flat(0, 2, dec!(8)));
        venue
            .cancel_order(&ClientOrderId::from("c"))
            .await
            .expect("again");
        venue.drain_reports(&mut reports);
        assert_eq!(reports.len(), 1);

        // A filled order: no-op.
        accepted(&venue, &order("f", 0, Side::Buy, dec!(5), None)).await;
        venue.on_market_data(&flat(0, 3, dec!(8)));
        venue
            .cancel_order(&ClientOrderId::from("f"))
            .await
            .expect("filled");
        assert_eq!(fills(&venue).len(), 1);

        let err = venue
            .cancel_order(&ClientOrderId::from("nope"))
            .await
            .expect_err("unknown");
        assert!(matches!(err, VenueError::UnknownOrder { .. }), "{err:?}");
        assert_eq!(err.to_string(), "venue paper: unknown order nope");
    }

    #[tokio::test]
    async fn account_equity_matches_a_recomputation_after_many_fills() {
        let (venue, _) = venue(PaperVenueConfig {
            slippage_bps: dec!(3),
            commission_bps: dec!(2),
            commission_min: dec!(0.35),
            max_volume_participation: dec!(0.3),
            ..PaperVenueConfig::default()
        });
        let mut closes = [Decimal::ZERO; 2];
        for d in 1..=20u32 {
            for s in 0..2u32 {
                let base = Decimal::from(100 + (d * 7 + s * 13) % 23);
                let b = bar(
                    s,
                    d,
                    [base, base + dec!(2), base - dec!(2), base + dec!(0.5)],
                    dec!(40),
                );
                venue.on_market_data(&b);
                closes[s as usize] = b.close;
                let side = if (d + s) % 3 == 0 {
                    Side::Sell
                } else {
                    Side::Buy
                };
                let limit = (d % 2 == 0).then(|| base + dec!(1));
                let id = format!("o-{d}-{s}");
                accepted(
                    &venue,
                    &order(&id, s, side, Decimal::from(5 + d % 11), limit),
                )
                .await;
            }
        }
        let all = fills(&venue);
        assert!(
            all.len() > 20,
            "the sequence should trade: {} fills",
            all.len()
        );
        let account = venue.account().await.expect("account");
        let positions = venue.positions().await.expect("positions");
        let marked: Decimal = positions
            .iter()
            .map(|p| p.quantity * closes[p.symbol.index()])
            .sum();
        assert_eq!(account.equity, account.cash + marked);
        assert_eq!(
            account.equity,
            venue.state.lock().portfolio.recomputed_equity()
        );
        // Cash is the initial cash less every fill's signed notional and commission.
        let spent: Decimal = all
            .iter()
            .map(|f| f.side.sign() * f.quantity * f.price + f.commission)
            .sum();
        assert_eq!(account.cash, dec!(100000) - spent);
    }
}
