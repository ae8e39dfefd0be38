//! The JSON shapes of Alpaca's trading API v2 that vigil speaks, shared by the HTTP adapter
//! ([`AlpacaVenue`](crate::AlpacaVenue)) and the paper broker process (`vigil broker`), so
//! that the two cannot drift apart.
//!
//! Field names and meanings are Alpaca's; quantities, prices and money are decimal strings
//! as Alpaca sends them. Fields vigil does not read are left out (serde ignores them).
//! Vigil's extensions, which Alpaca's clients ignore: [`Order::reject_reason`],
//! [`FillActivity::commission`] and the [`MARKET_TIME_HEADER`].

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use vigil_core::Timestamp;

/// The header that carries vigil's market time (RFC 3339) to the paper broker, which
/// moves its clock forward to it. Alpaca ignores it.
pub const MARKET_TIME_HEADER: &str = "X-Vigil-Market-Time";
/// Alpaca's API key id header.
pub const KEY_ID_HEADER: &str = "APCA-API-KEY-ID";
/// Alpaca's API secret key header.
pub const SECRET_KEY_HEADER: &str = "APCA-API-SECRET-KEY";
/// Alpaca's message (with HTTP 422) for a `client_order_id` it already holds.
pub const DUPLICATE_CLIENT_ORDER_ID: &str = "client_order_id must be unique";

/// A new order: the body of `POST /v2/orders`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The instrument.
    pub symbol: String,
    /// Quantity, positive.
    pub qty: Decimal,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit` (Alpaca knows more; the paper broker refuses them).
    #[serde(rename = "type")]
    pub order_type: String,
    /// `day`, `gtc`, …
    pub time_in_force: String,
    /// The limit price of a limit order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
    /// The caller's idempotent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
}

/// An order as the broker holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The broker's id (a UUID).
    pub id: String,
    /// The caller's id.
    pub client_order_id: String,
    /// When the broker created it.
    pub created_at: Timestamp,
    /// When it last changed.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// When it was submitted.
    #[serde(default)]
    pub submitted_at: Option<Timestamp>,
    /// When it filled completely.
    #[serde(default)]
    pub filled_at: Option<Timestamp>,
    /// When it was cancelled.
    #[serde(default)]
    pub canceled_at: Option<Timestamp>,
    /// When it was rejected.
    #[serde(default)]
    pub failed_at: Option<Timestamp>,
    /// The broker's id of the instrument.
    #[serde(default)]
    pub asset_id: String,
    /// The instrument.
    pub symbol: String,
    /// `us_equity`, …
    #[serde(default)]
    pub asset_class: String,
    /// Quantity (absent for notional orders).
    #[serde(default)]
    pub qty: Option<Decimal>,
    /// Quantity filled so far.
    pub filled_qty: Decimal,
    /// Average price of the fills so far.
    #[serde(default)]
    pub filled_avg_price: Option<Decimal>,
    /// `market`, `limit`, … (the same as `type`).
    #[serde(default)]
    pub order_type: String,
    /// `market`, `limit`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `day`, `gtc`, …
    pub time_in_force: String,
    /// The limit price.
    #[serde(default)]
    pub limit_price: Option<Decimal>,
    /// `new`, `partially_filled`, `filled`, `canceled`, `rejected`, …
    pub status: String,
    /// Vigil's extension: why the paper broker rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
}

/// One execution, as a `FILL` account activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillActivity {
    /// The activity's id, `TIME::UUID`; usable as `page_token`.
    pub id: String,
    /// Always `FILL`.
    pub activity_type: String,
    /// When it happened.
    pub transaction_time: Timestamp,
    /// `fill` or `partial_fill`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Price per unit.
    pub price: Decimal,
    /// Quantity of this execution.
    pub qty: Decimal,
    /// `buy`, `sell` or `sell_short`.
    pub side: String,
    /// The instrument.
    pub symbol: String,
    /// Quantity of the order still open after it.
    pub leaves_qty: Decimal,
    /// Quantity of the order filled up to and including it.
    pub cum_qty: Decimal,
    /// The broker's id of the order.
    pub order_id: String,
    /// Vigil's extension: the commission charged (Alpaca charges none and omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<Decimal>,
}

/// A position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The broker's id of the instrument.
    #[serde(default)]
    pub asset_id: String,
    /// The instrument.
    pub symbol: String,
    /// `us_equity`, …
    #[serde(default)]
    pub asset_class: String,
    /// Average entry price.
    pub avg_entry_price: Decimal,
    /// Quantity; negative for a short position.
    pub qty: Decimal,
    /// `long` or `short`.
    pub side: String,
    /// Quantity times the current price.
    #[serde(default)]
    pub market_value: Option<Decimal>,
    /// Quantity times the average entry price.
    #[serde(default)]
    pub cost_basis: Option<Decimal>,
    /// Market value less cost basis.
    #[serde(default)]
    pub unrealized_pl: Option<Decimal>,
    /// The latest price.
    #[serde(default)]
    pub current_price: Option<Decimal>,
}

/// The account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's id.
    pub id: String,
    /// `ACTIVE`, …
    #[serde(default)]
    pub status: String,
    /// `USD`, …
    #[serde(default)]
    pub currency: String,
    /// Cash balance.
    pub cash: Decimal,
    /// Cash plus positions at current prices.
    pub equity: Decimal,
    /// The same as `equity`.
    #[serde(default)]
    pub portfolio_value: Option<Decimal>,
    /// What may be spent on new positions.
    #[serde(default)]
    pub buying_power: Option<Decimal>,
    /// Market value of the long positions.
    #[serde(default)]
    pub long_market_value: Option<Decimal>,
    /// Market value of the short positions (negative).
    #[serde(default)]
    pub short_market_value: Option<Decimal>,
}

/// Alpaca's error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Alpaca's error code (`40010001` …).
    #[serde(default)]
    pub code: u32,
    /// What went wrong.
    pub message: String,
}
