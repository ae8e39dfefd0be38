//! The broker's book and matching, on the market clock: pure, no I/O. Every change is also
//! recorded in a [`Changes`] for the store to commit in one transaction.
//!
//! Fills follow [`vigil_providers::PaperVenue`] with its next-bar-open model, through the
//! same functions ([`bar_fill_price`], [`fill_commission`]) and the same book
//! ([`Portfolio`]): on each bar, the symbol's open orders fill in submission order, a
//! market order at the open moved against it by the slippage, a limit order at the open
//! when it gaps through the limit, else at the limit when the bar reaches it; the fills on
//! one bar together take at most `max_volume_participation` of its volume (no cap when the
//! volume is unknown: a CSV file without a volume column). An order never fills on a bar at
//! or before the market time at which it arrived.

use std::sync::Arc;

use chrono::Utc;
use rust_decimal::Decimal;
use vigil_core::{Bar, ClientOrderId, Fill, OrderType, Portfolio, Side, SymbolId, Timestamp};
use vigil_providers::alpaca_wire as wire;
use vigil_providers::{bar_fill_price, fill_commission};

use crate::market::Market;

/// How the broker fills and charges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Price concession on market fills, in basis points (buys pay more, sells get less).
    pub slippage_bps: Decimal,
    /// Commission on a fill's notional, in basis points.
    pub commission_bps: Decimal,
    /// Smallest commission charged per fill.
    pub commission_min: Decimal,
    /// Largest share of a bar's volume the fills on that bar may take together.
    pub max_volume_participation: Decimal,
    /// Cash of a new account (a state file that already exists keeps its own).
    pub initial_cash: Decimal,
}

impl Default for EngineConfig {
    /// The defaults of `vigil run`'s paper venue.
    fn default() -> Self {
        Self {
            slippage_bps: Decimal::ONE,
            commission_bps: Decimal::ONE,
            commission_min: Decimal::ZERO,
            max_volume_participation: Decimal::ONE,
            initial_cash: Decimal::from(100_000),
        }
    }
}

/// An order's status, as Alpaca names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Working, nothing filled.
    New,
    /// Working, partly filled.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled.
    Canceled,
    /// Refused.
    Rejected,
}

impl Status {
    /// Alpaca's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::PartiallyFilled => "partially_filled",
            Status::Filled => "filled",
            Status::Canceled => "canceled",
            Status::Rejected => "rejected",
        }
    }

    /// The status named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Status::New,
            Status::PartiallyFilled,
            Status::Filled,
            Status::Canceled,
            Status::Rejected,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Tells whether the order is still working.
    pub fn is_open(self) -> bool {
        matches!(self, Status::New | Status::PartiallyFilled)
    }
}

/// `buy` or `sell`.
pub fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// The side named `text`.
pub fn parse_side(text: &str) -> Option<Side> {
    match text {
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        _ => None,
    }
}

/// `market` or `limit`.
pub fn type_text(order_type: OrderType) -> &'static str {
    match order_type {
        OrderType::Market => "market",
        OrderType::Limit => "limit",
    }
}

/// The order type named `text`.
pub fn parse_type(text: &str) -> Option<OrderType> {
    match text {
        "market" => Some(OrderType::Market),
        "limit" => Some(OrderType::Limit),
        _ => None,
    }
}

/// An order as the broker keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    /// Place in submission order.
    pub seq: i64,
    /// The broker's id.
    pub id: String,
    /// The client's id.
    pub client_order_id: String,
    /// The instrument.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// As given (`day` and `gtc` both work until filled or cancelled).
    pub time_in_force: String,
    /// Quantity.
    pub qty: Decimal,
    /// The limit price of a limit order.
    pub limit_price: Option<Decimal>,
    /// Quantity filled.
    pub filled_qty: Decimal,
    /// Σ quantity × price of the fills.
    pub filled_notional: Decimal,
    /// Where it stands.
    pub status: Status,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// Only bars strictly after this market time may fill it.
    pub after: Option<Timestamp>,
    /// When it arrived (market time once the clock runs, else wall time).
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it filled completely.
    pub filled_at: Option<Timestamp>,
    /// When it was cancelled.
    pub canceled_at: Option<Timestamp>,
}

impl OrderRow {
    /// The order in Alpaca's shape.
    pub fn to_wire(&self, market: &Market) -> wire::Order {
        let failed = self.status == Status::Rejected;
        wire::Order {
            id: self.id.clone(),
            client_order_id: self.client_order_id.clone(),
            created_at: self.created_at,
            updated_at: Some(self.updated_at),
            submitted_at: Some(self.created_at),
            filled_at: self.filled_at,
            canceled_at: self.canceled_at,
            failed_at: failed.then_some(self.updated_at),
            asset_id: market.id(&self.symbol).map(asset_id).unwrap_or_default(),
            symbol: self.symbol.clone(),
            asset_class: "us_equity".into(),
            qty: Some(self.qty),
            filled_qty: self.filled_qty,
            filled_avg_price: (!self.filled_qty.is_zero())
                .then(|| self.filled_notional / self.filled_qty),
            order_type: type_text(self.order_type).into(),
            kind: type_text(self.order_type).into(),
            side: side_text(self.side).into(),
            time_in_force: self.time_in_force.clone(),
            limit_price: self.limit_price,
            status: self.status.as_str().into(),
            reject_reason: self.reject_reason.clone(),
        }
    }
}

/// One execution: a `FILL` activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillRow {
    /// Place in execution order.
    pub seq: i64,
    /// The activity's id.
    pub id: String,
    /// The broker's id of the order.
    pub order_id: String,
    /// The instrument.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Quantity.
    pub qty: Decimal,
    /// Price.
    pub price: Decimal,
    /// Commission charged.
    pub commission: Decimal,
    /// The order's filled quantity after it.
    pub cum_qty: Decimal,
    /// The order's open quantity after it.
    pub leaves_qty: Decimal,
    /// When (market time).
    pub transaction_time: Timestamp,
}

impl FillRow {
    /// The fill as Alpaca's activity.
    pub fn to_wire(&self) -> wire::FillActivity {
        wire::FillActivity {
            id: self.id.clone(),
            activity_type: "FILL".into(),
            transaction_time: self.transaction_time,
            kind: if self.leaves_qty.is_zero() {
                "fill"
            } else {
                "partial_fill"
            }
            .into(),
            price: self.price,
            qty: self.qty,
            side: side_text(self.side).into(),
            symbol: self.symbol.clone(),
            leaves_qty: self.leaves_qty,
            cum_qty: self.cum_qty,
            order_id: self.order_id.clone(),
            commission: Some(self.commission),
        }
    }
}

/// A position as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionRow {
    /// The instrument.
    pub symbol: String,
    /// Signed quantity (zero: the row goes).
    pub qty: Decimal,
    /// Average entry price.
    pub avg_entry_price: Decimal,
}

/// What one request changed, for the store to commit in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Orders created or changed (the last version of each counts).
    pub orders: Vec<OrderRow>,
    /// New fills.
    pub fills: Vec<FillRow>,
    /// Positions changed.
    pub positions: Vec<PositionRow>,
    /// The new cash balance.
    pub cash: Option<Decimal>,
    /// The new market clock.
    pub clock: Option<Timestamp>,
}

impl Changes {
    /// Tells whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }
}

/// The book as stored: what a restart reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The state file's random id, part of every id handed out.
    pub instance: String,
    /// Cash the account started with.
    pub initial_cash: Decimal,
    /// Cash now.
    pub cash: Decimal,
    /// The market clock.
    pub clock: Option<Timestamp>,
    /// Non-flat positions.
    pub positions: Vec<PositionRow>,
    /// Working orders, in submission order.
    pub open: Vec<OrderRow>,
    /// The highest order `seq` used.
    pub last_order_seq: i64,
    /// The highest fill `seq` used.
    pub last_fill_seq: i64,
}

/// Faults that change how orders are handled (fault injection for tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFaults {
    /// Each fill takes at most this fraction of its order's quantity.
    pub partial: Option<Decimal>,
    /// The next `n` orders are rejected with this reason.
    pub reject_next: Option<(u32, String)>,
}

/// An order request that has passed the syntax checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSpec {
    /// The client's id.
    pub client_order_id: String,
    /// The instrument.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Quantity.
    pub qty: Decimal,
    /// Market or limit.
    pub order_type: OrderType,
    /// `day` or `gtc`.
    pub time_in_force: String,
    /// The limit price.
    pub limit_price: Option<Decimal>,
}

/// Why an order was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It cannot be carried out (a bad quantity, no market data …).
    Invalid,
    /// A `reject_next` fault.
    Injected,
}

/// A trade made outside vigil (fault injection: drift for reconciliation to find).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualTrade {
    /// The instrument (one the broker prices).
    pub symbol: String,
    /// Quantity, positive.
    pub qty: Decimal,
    /// Buy or sell.
    pub side: Side,
    /// Price, positive.
    pub price: Decimal,
}

/// The broker's id of the instrument `id`.
pub fn asset_id(id: SymbolId) -> String {
    format!("00000000-0000-4000-a000-{:012x}", id.0)
}

/// The broker's book, its market and its clock.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    market: Arc<Market>,
    instance: String,
    portfolio: Portfolio,
    clock: Option<Timestamp>,
    /// Working orders in submission order.
    open: Vec<OrderRow>,
    last_order_seq: i64,
    last_fill_seq: i64,
    /// Faults in force.
    pub faults: OrderFaults,
}

impl Engine {
    /// The engine holding the book `saved` reads back.
    ///
    /// # Errors
    /// A stored position in a symbol the market does not hold.
    pub fn restore(
        config: EngineConfig,
        market: Arc<Market>,
        saved: Saved,
    ) -> Result<Self, String> {
        let mut portfolio = Portfolio::new(saved.initial_cash);
        if let Some(clock) = saved.clock {
            for id in market.ids() {
                if let Some(bar) = market.last_bar_at(id, clock) {
                    portfolio.mark(id, bar.close);
                }
            }
        }
        let mut held = Vec::with_capacity(saved.positions.len());
        for p in &saved.positions {
            let id = market.id(&p.symbol).ok_or_else(|| {
                format!(
                    "the state holds a position in {}, which no --data file prices",
                    p.symbol
                )
            })?;
            held.push((id, p.qty, p.avg_entry_price));
        }
        portfolio.resync(saved.cash, held);
        Ok(Self {
            config,
            market,
            instance: saved.instance,
            portfolio,
            clock: saved.clock,
            open: saved.open,
            last_order_seq: saved.last_order_seq,
            last_fill_seq: saved.last_fill_seq,
            faults: OrderFaults::default(),
        })
    }

    /// The market it prices from.
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// The market clock; `None` before the first advance.
    pub fn clock(&self) -> Option<Timestamp> {
        self.clock
    }

    /// The time stamped on a change: the market clock, or the wall clock before it runs.
    fn now(&self) -> Timestamp {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// Moves the clock forward to `to` (never back) and fills what the bars up to it make
    /// due. Returns whether the clock moved.
    pub fn advance(&mut self, to: Timestamp, ch: &mut Changes) -> bool {
        if self.clock.is_some_and(|c| c >= to) {
            return false;
        }
        let market = self.market.clone();
        for bar in market.bars_between(self.clock, to) {
            self.on_bar(&bar, ch);
        }
        self.clock = Some(to);
        ch.clock = Some(to);
        true
    }

    fn on_bar(&mut self, bar: &Bar, ch: &mut Changes) {
        // A bar whose volume is unknown (a CSV file without a volume column) has no cap.
        let mut volume_left = bar.volume.map(|v| self.config.max_volume_participation * v);
        let name = self.market.name(bar.symbol).to_string();
        let mut i = 0;
        while i < self.open.len() {
            let o = &self.open[i];
            let due = o.symbol == name && o.after.is_none_or(|after| bar.ts > after);
            let limit = match o.order_type {
                OrderType::Market => None,
                OrderType::Limit => o.limit_price,
            };
            if let Some(price) = due
                .then(|| bar_fill_price(o.side, limit, bar, self.config.slippage_bps))
                .flatten()
            {
                let mut cap = volume_left;
                if let Some(fraction) = self.faults.partial {
                    let most = o.qty * fraction;
                    cap = Some(cap.map_or(most, |c| c.min(most)));
                }
                let filled = self.fill(i, bar.symbol, price, cap, bar.ts, ch);
                if let Some(left) = &mut volume_left {
                    *left -= filled;
                }
            }
            if self.open[i].status.is_open() {
                i += 1;
            } else {
                self.open.remove(i);
            }
        }
        self.portfolio.mark(bar.symbol, bar.close);
    }

    /// Fills as much of open order `i` at `price` as `cap` allows (`None`: no cap); returns
    /// the quantity.
    fn fill(
        &mut self,
        i: usize,
        symbol: SymbolId,
        price: Decimal,
        cap: Option<Decimal>,
        ts: Timestamp,
        ch: &mut Changes,
    ) -> Decimal {
        let order = &mut self.open[i];
        let leaves = order.qty - order.filled_qty;
        let quantity = cap.map_or(leaves, |cap| leaves.min(cap));
        if quantity <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        let leaves = leaves - quantity;
        order.filled_qty += quantity;
        order.filled_notional += quantity * price;
        order.updated_at = ts;
        if leaves.is_zero() {
            order.status = Status::Filled;
            order.filled_at = Some(ts);
        } else {
            order.status = Status::PartiallyFilled;
        }
        let commission = fill_commission(
            quantity,
            price,
            self.config.commission_bps,
            self.config.commission_min,
        );
        self.last_fill_seq += 1;
        let row = FillRow {
            seq: self.last_fill_seq,
            id: format!(
                "{}::{}-0000-4000-9000-{:012x}",
                ts.format("%Y%m%d%H%M%S%3f"),
                self.instance,
                self.last_fill_seq
            ),
            order_id: order.id.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            qty: quantity,
            price,
            commission,
            cum_qty: order.filled_qty,
            leaves_qty: leaves,
            transaction_time: ts,
        };
        self.portfolio.apply_fill(&Fill {
            client_order_id: ClientOrderId::from(order.client_order_id.as_str()),
            fill_id: row.id.clone(),
            symbol,
            side: order.side,
            quantity,
            price,
            commission,
            leaves_quantity: leaves,
            ts,
        });
        ch.orders.push(order.clone());
        ch.fills.push(row);
        ch.positions.push(self.position_row(symbol));
        ch.cash = Some(self.portfolio.cash());
        quantity
    }

    fn position_row(&self, id: SymbolId) -> PositionRow {
        let p = self.portfolio.position(id);
        PositionRow {
            symbol: self.market.name(id).to_string(),
            qty: p.quantity,
            avg_entry_price: p.avg_price,
        }
    }

    fn new_order(&mut self, spec: &OrderSpec) -> OrderRow {
        self.last_order_seq += 1;
        let now = self.now();
        OrderRow {
            seq: self.last_order_seq,
            id: format!(
                "{}-0000-4000-8000-{:012x}",
                self.instance, self.last_order_seq
            ),
            client_order_id: spec.client_order_id.clone(),
            symbol: spec.symbol.clone(),
            side: spec.side,
            order_type: spec.order_type,
            time_in_force: spec.time_in_force.clone(),
            qty: spec.qty,
            limit_price: spec.limit_price,
            filled_qty: Decimal::ZERO,
            filled_notional: Decimal::ZERO,
            status: Status::New,
            reject_reason: None,
            after: self.clock,
            created_at: now,
            updated_at: now,
            filled_at: None,
            canceled_at: None,
        }
    }

    /// Why `spec` cannot be carried out, if it cannot (the checks of the paper venue).
    fn invalid(&self, spec: &OrderSpec) -> Option<String> {
        let Some(id) = self.market.id(&spec.symbol) else {
            return Some(format!("asset \"{}\" not found", spec.symbol));
        };
        if spec.qty <= Decimal::ZERO {
            return Some(format!("qty {} is not positive", spec.qty));
        }
        match (spec.order_type, spec.limit_price) {
            (OrderType::Limit, None) => Some("limit order without a limit_price".into()),
            (OrderType::Limit, Some(l)) if l <= Decimal::ZERO => {
                Some(format!("limit_price {l} is not positive"))
            }
            (OrderType::Market, _)
                if self
                    .clock
                    .and_then(|c| self.market.last_bar_at(id, c))
                    .is_none() =>
            {
                Some(format!("no market data for symbol {} yet", spec.symbol))
            }
            _ => None,
        }
    }

    /// Takes an order: working, or rejected with the reason (kept, so that the same client
    /// order id gets the same answer).
    pub fn submit(&mut self, spec: &OrderSpec, ch: &mut Changes) -> (OrderRow, Option<Refusal>) {
        let refusal = match (self.invalid(spec), self.faults.reject_next.take()) {
            (Some(reason), pending) => {
                self.faults.reject_next = pending;
                Some((Refusal::Invalid, reason))
            }
            (None, Some((n, reason))) => {
                if n > 1 {
                    self.faults.reject_next = Some((n - 1, reason.clone()));
                }
                Some((Refusal::Injected, reason))
            }
            (None, None) => None,
        };
        let mut order = self.new_order(spec);
        let refused = refusal.map(|(kind, reason)| {
            order.status = Status::Rejected;
            order.reject_reason = Some(reason);
            kind
        });
        if order.status.is_open() {
            self.open.push(order.clone());
        }
        ch.orders.push(order.clone());
        (order, refused)
    }

    /// Cancels working order `id`; `None` when no working order has that id.
    pub fn cancel(&mut self, id: &str, ch: &mut Changes) -> Option<OrderRow> {
        let at = self.open.iter().position(|o| o.id == id)?;
        let mut order = self.open.remove(at);
        let now = self.now();
        order.status = Status::Canceled;
        order.canceled_at = Some(now);
        order.updated_at = now;
        ch.orders.push(order.clone());
        Some(order)
    }

    /// Books a trade made outside vigil at the broker's commission: an order (filled) with
    /// a client order id vigil never made, and its fill.
    ///
    /// # Errors
    /// A symbol the broker does not price, or a quantity or price that is not positive.
    pub fn manual_trade(&mut self, t: &ManualTrade, ch: &mut Changes) -> Result<FillRow, String> {
        let id = self
            .market
            .id(&t.symbol)
            .ok_or_else(|| format!("asset \"{}\" not found", t.symbol))?;
        if t.qty <= Decimal::ZERO || t.price <= Decimal::ZERO {
            return Err(format!(
                "qty and price must be positive, got qty {} price {}",
                t.qty, t.price
            ));
        }
        let spec = OrderSpec {
            client_order_id: format!("manual-{}-{}", self.instance, self.last_order_seq + 1),
            symbol: t.symbol.clone(),
            side: t.side,
            qty: t.qty,
            order_type: OrderType::Limit,
            time_in_force: "day".into(),
            limit_price: Some(t.price),
        };
        let order = self.new_order(&spec);
        self.open.push(order);
        let i = self.open.len() - 1;
        let now = self.now();
        self.fill(i, id, t.price, Some(t.qty), now, ch);
        self.open.remove(i);
        ch.fills
            .last()
            .cloned()
            .ok_or_else(|| "the manual trade did not fill".to_string())
    }

    /// The account in Alpaca's shape.
    pub fn account(&self) -> wire::Account {
        let (mut long, mut short) = (Decimal::ZERO, Decimal::ZERO);
        for (id, p) in self.portfolio.positions() {
            let value = p.quantity * self.portfolio.mark_price(id);
            if value.is_sign_negative() {
                short += value;
            } else {
                long += value;
            }
        }
        let cash = self.portfolio.cash();
        wire::Account {
            id: format!("{}-0000-4000-b000-000000000000", self.instance),
            status: "ACTIVE".into(),
            currency: "USD".into(),
            cash,
            equity: self.portfolio.equity(),
            portfolio_value: Some(self.portfolio.equity()),
            buying_power: Some(cash.max(Decimal::ZERO)),
            long_market_value: Some(long),
            short_market_value: Some(short),
        }
    }

    /// The non-flat positions in Alpaca's shape.
    pub fn positions(&self) -> Vec<wire::Position> {
        self.portfolio
            .positions()
            .map(|(id, p)| {
                let mark = self.portfolio.mark_price(id);
                let market_value = p.quantity * mark;
                let cost_basis = p.quantity * p.avg_price;
                wire::Position {
                    asset_id: asset_id(id),
                    symbol: self.market.name(id).to_string(),
                    asset_class: "us_equity".into(),
                    avg_entry_price: p.avg_price,
                    qty: p.quantity,
                    side: if p.quantity.is_sign_negative() {
                        "short"
                    } else {
                        "long"
                    }
                    .into(),
                    market_value: Some(market_value),
                    cost_basis: Some(cost_basis),
                    unrealized_pl: Some(market_value - cost_basis),
                    current_price: Some(mark),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use vigil_core::{ExecutionReport, OrderAck, OrderRequest, SharedClock, SimClock};
    use vigil_providers::{ExecutionVenue, FillModel, PaperVenue, PaperVenueConfig};
    use vigil_testkit::{bar, flat_bar};

    fn day(d: u32) -> Timestamp {
        format!("2024-01-{d:02}T00:00:00Z")
            .parse()
            .expect("test time")
    }

    fn flat(symbol: u32, d: u32, price: Decimal) -> Bar {
        flat_bar(symbol, d, price)
    }

    /// A bar of `X` (symbol 0) on day `d`, volume 1000.
    fn x_bar(d: u32, ohlc: [Decimal; 4]) -> Bar {
        bar(0, d, ohlc, dec!(1000))
    }

    /// An engine pricing `X` alone from `bars`.
    fn x_engine(config: EngineConfig, bars: Vec<Bar>) -> Engine {
        engine(config, vec![("X", bars)])
    }

    fn engine(config: EngineConfig, series: Vec<(&str, Vec<Bar>)>) -> Engine {
        let market = Market::from_bars(
            series
                .into_iter()
                .map(|(n, b)| (n.to_string(), b))
                .collect(),
        );
        Engine::restore(
            config.clone(),
            Arc::new(market),
            Saved {
                instance: "0badcafe".into(),
                initial_cash: config.initial_cash,
                cash: config.initial_cash,
                clock: None,
                positions: Vec::new(),
                open: Vec::new(),
                last_order_seq: 0,
                last_fill_seq: 0,
            },
        )
        .expect("restore")
    }

    fn spec(id: &str, symbol: &str, side: Side, qty: Decimal, limit: Option<Decimal>) -> OrderSpec {
        OrderSpec {
            client_order_id: id.into(),
            symbol: symbol.into(),
            side,
            qty,
            order_type: if limit.is_some() {
                OrderType::Limit
            } else {
                OrderType::Market
            },
            time_in_force: "day".into(),
            limit_price: limit,
        }
    }

    fn submit(e: &mut Engine, s: &OrderSpec) -> (OrderRow, Option<Refusal>) {
        e.submit(s, &mut Changes::default())
    }

    fn advance(e: &mut Engine, d: u32) -> Vec<FillRow> {
        let mut ch = Changes::default();
        e.advance(day(d), &mut ch);
        ch.fills
    }

    /// The same bars and orders through the in-process paper venue and the broker's
    /// engine: the same fills to the last digit, the same cash, positions and equity.
    #[tokio::test]
    async fn fills_cash_and_positions_equal_the_paper_venue_on_the_same_bars() {
        let paper_cfg = PaperVenueConfig {
            fill_model: FillModel::NextBarOpen,
            slippage_bps: dec!(3),
            commission_bps: dec!(2),
            commission_min: dec!(0.35),
            max_volume_participation: dec!(0.3),
            ..PaperVenueConfig::default()
        };
        let config = EngineConfig {
            slippage_bps: paper_cfg.slippage_bps,
            commission_bps: paper_cfg.commission_bps,
            commission_min: paper_cfg.commission_min,
            max_volume_participation: paper_cfg.max_volume_participation,
            initial_cash: paper_cfg.initial_cash,
        };
        let mut bars: Vec<Vec<Bar>> = vec![Vec::new(), Vec::new()];
        for d in 1..=20u32 {
            for s in 0..2u32 {
                let base = Decimal::from(100 + (d * 7 + s * 13) % 23);
                bars[s as usize].push(bar(
                    s,
                    d,
                    [base, base + dec!(2), base - dec!(2), base + dec!(0.5)],
                    dec!(40),
                ));
            }
        }
        let names = ["AAA", "BBB"];
        let clock: SharedClock = Arc::new(SimClock::starting_at(day(1)));
        let venue = PaperVenue::new(paper_cfg, clock);
        let mut e = engine(
            config,
            vec![(names[0], bars[0].clone()), (names[1], bars[1].clone())],
        );
        let mut engine_fills = Vec::new();
        for d in 1..=20u32 {
            for s in 0..2u32 {
                venue.on_market_data(&bars[s as usize][d as usize - 1]);
                engine_fills.extend(advance(&mut e, d));
                let side = if (d + s) % 3 == 0 {
                    Side::Sell
                } else {
                    Side::Buy
                };
                let base = Decimal::from(100 + (d * 7 + s * 13) % 23);
                let limit = (d % 2 == 0).then(|| base + dec!(1));
                let qty = Decimal::from(5 + d % 11);
                let id = format!("o-{d}-{s}");
                let request = OrderRequest {
                    client_order_id: ClientOrderId::from(id.as_str()),
                    symbol: SymbolId(s),
                    side,
                    quantity: qty,
                    order_type: if limit.is_some() {
                        OrderType::Limit
                    } else {
                        OrderType::Market
                    },
                    limit_price: limit,
                    submitted_at: day(d),
                };
                let ack = venue.submit_order(&request).await.expect("paper submit");
                assert!(matches!(ack, OrderAck::Accepted { .. }), "{ack:?}");
                let (_, refused) = submit(&mut e, &spec(&id, names[s as usize], side, qty, limit));
                assert_eq!(refused, None);
            }
        }
        let mut reports = Vec::new();
        venue.drain_reports(&mut reports);
        let paper: Vec<(Side, Decimal, Decimal, Decimal, Decimal, Timestamp)> = reports
            .iter()
            .filter_map(|r| match r {
                ExecutionReport::Fill(f) => Some((
                    f.side,
                    f.quantity,
                    f.price,
                    f.commission,
                    f.leaves_quantity,
                    f.ts,
                )),
                // The venue's notice that a spent cap left an order waiting: no fill.
                ExecutionReport::Unfilled { .. } => None,
                other => panic!("unexpected report {other:?}"),
            })
            .collect();
        let broker: Vec<(Side, Decimal, Decimal, Decimal, Decimal, Timestamp)> = engine_fills
            .iter()
            .map(|f| {
                (
                    f.side,
                    f.qty,
                    f.price,
                    f.commission,
                    f.leaves_qty,
                    f.transaction_time,
                )
            })
            .collect();
        assert!(
            paper.len() > 20,
            "the sequence should trade: {}",
            paper.len()
        );
        assert_eq!(broker, paper);
        let account = venue.account().await.expect("account");
        let mine = e.account();
        assert_eq!((mine.cash, mine.equity), (account.cash, account.equity));
        let theirs: Vec<(String, Decimal, Decimal)> = venue
            .positions()
            .await
            .expect("positions")
            .iter()
            .map(|p| (names[p.symbol.index()].to_string(), p.quantity, p.avg_price))
            .collect();
        let ours: Vec<(String, Decimal, Decimal)> = e
            .positions()
            .iter()
            .map(|p| (p.symbol.clone(), p.qty, p.avg_entry_price))
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_market_order_fills_at_the_next_bars_open_with_slippage_and_commission() {
        let mut e = x_engine(
            EngineConfig {
                slippage_bps: dec!(10),
                commission_bps: dec!(5),
                commission_min: dec!(1),
                ..EngineConfig::default()
            },
            vec![
                flat(0, 1, dec!(100)),
                bar(
                    0,
                    2,
                    [dec!(101), dec!(103), dec!(100), dec!(102)],
                    dec!(1e6),
                ),
            ],
        );
        // Before any bar: no market data, rejected and kept.
        let (early, refused) = submit(&mut e, &spec("early", "X", Side::Buy, dec!(1), None));
        assert_eq!(refused, Some(Refusal::Invalid));
        assert_eq!(
            early.reject_reason.as_deref(),
            Some("no market data for symbol X yet")
        );
        assert!(advance(&mut e, 1).is_empty());
        let (order, refused) = submit(&mut e, &spec("b", "X", Side::Buy, dec!(100), None));
        assert_eq!((order.status, refused), (Status::New, None));
        assert_eq!(order.id, "0badcafe-0000-4000-8000-000000000002");
        // The same market time again fills nothing: not a later bar.
        assert!(advance(&mut e, 1).is_empty());
        let f = advance(&mut e, 2);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].price, dec!(101.101));
        assert_eq!(f[0].commission, dec!(5.05505));
        assert_eq!((f[0].cum_qty, f[0].leaves_qty), (dec!(100), dec!(0)));
        assert_eq!(f[0].to_wire().kind, "fill");
        let a = e.account();
        assert_eq!(a.cash, dec!(100000) - dec!(10110.1) - dec!(5.05505));
        assert_eq!(a.equity, a.cash + dec!(100) * dec!(102));
    }

    /// A file without a volume column: the volume is unknown, not zero, so the cap does not
    /// apply (it used to make every order wait for ever), and the market says which symbols.
    #[test]
    fn bars_of_unknown_volume_fill_without_the_cap() {
        let unknown = |d| Bar {
            volume: None,
            ..flat(0, d, dec!(100))
        };
        let mut e = x_engine(
            EngineConfig {
                max_volume_participation: dec!(0.1),
                ..EngineConfig::default()
            },
            vec![unknown(1), unknown(2)],
        );
        assert_eq!(e.market.unknown_volume().collect::<Vec<_>>(), ["X"]);
        assert!(advance(&mut e, 1).is_empty());
        submit(&mut e, &spec("b", "X", Side::Buy, dec!(500), None));
        let f = advance(&mut e, 2);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].cum_qty, f[0].leaves_qty), (dec!(500), dec!(0)));
        let known = x_engine(EngineConfig::default(), vec![flat(0, 1, dec!(100))]);
        assert_eq!(known.market.unknown_volume().count(), 0);
    }

    #[test]
    fn limit_orders_gap_through_at_the_open_else_fill_at_the_limit() {
        let mut e = x_engine(
            EngineConfig {
                slippage_bps: Decimal::ZERO,
                commission_bps: Decimal::ZERO,
                ..EngineConfig::default()
            },
            vec![
                flat(0, 1, dec!(100)),
                x_bar(2, [dec!(100), dec!(104), dec!(96), dec!(100)]),
                x_bar(3, [dec!(100), dec!(106), dec!(94), dec!(100)]),
                x_bar(4, [dec!(90), dec!(91), dec!(89), dec!(90)]),
            ],
        );
        advance(&mut e, 1);
        submit(&mut e, &spec("b", "X", Side::Buy, dec!(1), Some(dec!(95))));
        submit(
            &mut e,
            &spec("s", "X", Side::Sell, dec!(1), Some(dec!(105))),
        );
        assert!(advance(&mut e, 2).is_empty(), "neither limit reached");
        let f = advance(&mut e, 3);
        assert_eq!(
            f.iter().map(|f| (f.side, f.price)).collect::<Vec<_>>(),
            vec![(Side::Buy, dec!(95)), (Side::Sell, dec!(105))]
        );
        submit(&mut e, &spec("bg", "X", Side::Buy, dec!(1), Some(dec!(95))));
        let f = advance(&mut e, 4);
        assert_eq!((f[0].side, f[0].price), (Side::Buy, dec!(90)));
        let (_, refused) = submit(&mut e, &spec("l0", "X", Side::Buy, dec!(1), Some(dec!(0))));
        assert_eq!(refused, Some(Refusal::Invalid));
    }

    #[test]
    fn a_partial_fault_fills_a_fraction_per_bar_and_the_rest_stays_open() {
        let mut e = x_engine(
            EngineConfig::default(),
            (1..=4).map(|d| flat(0, d, dec!(10))).collect(),
        );
        e.faults.partial = Some(dec!(0.4));
        advance(&mut e, 1);
        submit(&mut e, &spec("p", "X", Side::Buy, dec!(10), None));
        let mut seen = Vec::new();
        for d in 2..=4 {
            for f in advance(&mut e, d) {
                seen.push((f.qty, f.cum_qty, f.leaves_qty, f.to_wire().kind));
            }
        }
        assert_eq!(
            seen,
            vec![
                (dec!(4), dec!(4), dec!(6), "partial_fill".to_string()),
                (dec!(4), dec!(8), dec!(2), "partial_fill".to_string()),
                (dec!(2), dec!(10), dec!(0), "fill".to_string()),
            ]
        );
        assert!(e.open.is_empty());
    }

    #[test]
    fn reject_next_rejects_that_many_orders_then_accepts_again() {
        let mut e = x_engine(EngineConfig::default(), vec![flat(0, 1, dec!(10))]);
        advance(&mut e, 1);
        e.faults.reject_next = Some((2, "no".into()));
        for id in ["a", "b"] {
            let (o, refused) = submit(&mut e, &spec(id, "X", Side::Buy, dec!(1), None));
            assert_eq!(
                (o.status, refused),
                (Status::Rejected, Some(Refusal::Injected))
            );
            assert_eq!(o.reject_reason.as_deref(), Some("no"));
        }
        let (o, refused) = submit(&mut e, &spec("c", "X", Side::Buy, dec!(1), None));
        assert_eq!((o.status, refused), (Status::New, None));
        assert_eq!(e.faults.reject_next, None);
    }

    #[test]
    fn a_manual_trade_moves_position_and_cash_under_an_id_vigil_never_made() {
        let mut e = x_engine(
            EngineConfig {
                commission_bps: Decimal::ZERO,
                ..EngineConfig::default()
            },
            vec![flat(0, 1, dec!(10))],
        );
        advance(&mut e, 1);
        let mut ch = Changes::default();
        let fill = e
            .manual_trade(
                &ManualTrade {
                    symbol: "X".into(),
                    qty: dec!(7),
                    side: Side::Sell,
                    price: dec!(11),
                },
                &mut ch,
            )
            .expect("manual trade");
        assert_eq!(
            (fill.qty, fill.price, fill.leaves_qty),
            (dec!(7), dec!(11), dec!(0))
        );
        assert_eq!(ch.orders.len(), 1);
        assert!(ch.orders[0].client_order_id.starts_with("manual-"));
        assert_eq!(ch.orders[0].status, Status::Filled);
        assert_eq!(e.account().cash, dec!(100077));
        let p = e.positions();
        assert_eq!((p[0].qty, p[0].side.as_str()), (dec!(-7), "short"));
        assert!(
            e.manual_trade(
                &ManualTrade {
                    symbol: "NOPE".into(),
                    qty: dec!(1),
                    side: Side::Buy,
                    price: dec!(1),
                },
                &mut ch,
            )
            .is_err()
        );
    }

    #[test]
    fn cancel_closes_a_working_order_once() {
        let mut e = x_engine(
            EngineConfig::default(),
            vec![flat(0, 1, dec!(10)), flat(0, 2, dec!(8))],
        );
        advance(&mut e, 1);
        let (o, _) = submit(&mut e, &spec("c", "X", Side::Buy, dec!(1), Some(dec!(5))));
        let mut ch = Changes::default();
        let cancelled = e.cancel(&o.id, &mut ch).expect("working");
        assert_eq!(cancelled.status, Status::Canceled);
        assert_eq!(cancelled.canceled_at, Some(day(1)));
        assert!(e.cancel(&o.id, &mut ch).is_none());
        assert!(advance(&mut e, 2).is_empty());
    }
}
