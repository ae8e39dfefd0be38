//! Orders, acknowledgements and fills.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::ClientOrderId;
use crate::market::SymbolId;

/// Buy or sell.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// Returns `+1` for a buy and `-1` for a sell.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }

    /// Returns the side as the log format writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an order is priced.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// At the market.
    Market,
    /// At the limit price or better.
    Limit,
}

impl OrderType {
    /// Returns the type as the log format writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
        }
    }
}

/// Where an order stands: new → accepted → (partially) filled / cancelled / rejected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created and journaled locally, not yet acknowledged by the venue.
    New,
    /// Acknowledged by the venue and working.
    Accepted,
    /// Partly filled and still working.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled before it was completely filled.
    Cancelled,
    /// Refused by the venue.
    Rejected,
}

impl OrderStatus {
    /// Tells whether the order can still change.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::Accepted | OrderStatus::PartiallyFilled
        )
    }

    /// Returns the status as text.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "new",
            OrderStatus::Accepted => "accepted",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Rejected => "rejected",
        }
    }
}

/// An order as sent to a venue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OrderRequest {
    /// Vigil's idempotent id.
    pub client_order_id: ClientOrderId,
    /// The instrument.
    pub symbol: SymbolId,
    /// Buy or sell.
    pub side: Side,
    /// Quantity, always positive.
    pub quantity: Decimal,
    /// Market or limit.
    pub order_type: OrderType,
    /// The limit price of a limit order.
    pub limit_price: Option<Decimal>,
    /// When vigil submitted it.
    pub submitted_at: Timestamp,
}

/// A venue's answer to a submission.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OrderAck {
    /// Accepted and working under the venue's id.
    Accepted {
        /// The venue's own order id.
        venue_order_id: String,
    },
    /// Refused.
    Rejected {
        /// The venue's reason.
        reason: String,
    },
    /// Refused as a duplicate: the venue already holds an order with this client order id,
    /// and nothing was created. Never an acceptance: the order it holds was placed earlier
    /// (by an earlier attempt, or an earlier life of the same decision), and its fills, if
    /// any, are that order's.
    Duplicate {
        /// The venue's id of the order it already holds.
        venue_order_id: String,
        /// Where that order stands.
        status: OrderStatus,
        /// How much of it has filled.
        filled_quantity: Decimal,
    },
}

/// One execution, partial or complete.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Fill {
    /// The order filled.
    pub client_order_id: ClientOrderId,
    /// The venue's id of this execution.
    pub fill_id: String,
    /// The instrument.
    pub symbol: SymbolId,
    /// Buy or sell.
    pub side: Side,
    /// Quantity of this execution, positive.
    pub quantity: Decimal,
    /// Price of this execution.
    pub price: Decimal,
    /// Commission charged for this execution.
    pub commission: Decimal,
    /// Quantity of the order still open after this execution.
    pub leaves_quantity: Decimal,
    /// When it happened.
    pub ts: Timestamp,
}

/// Something a venue reports about an order after the submission.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ExecutionReport {
    /// An execution.
    Fill(Fill),
    /// The order was cancelled.
    Cancelled {
        /// The order.
        client_order_id: ClientOrderId,
        /// Why.
        reason: String,
        /// When.
        ts: Timestamp,
    },
    /// A bar reached the order's price but left it nothing to take (the bar traded no
    /// volume, or earlier orders took the share the venue may fill): the order stays open.
    Unfilled {
        /// The order.
        client_order_id: ClientOrderId,
        /// Why, for the log.
        reason: String,
        /// The bar's time.
        ts: Timestamp,
    },
}

/// An order as the venue holds it (for open-order queries and reconciliation).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VenueOrder {
    /// The request as the venue received it.
    pub request: OrderRequest,
    /// Its status at the venue.
    pub status: OrderStatus,
    /// How much has filled.
    pub filled_quantity: Decimal,
}
