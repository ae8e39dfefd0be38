//! Bars and orders for venue tests (the paper venue, the broker, the HTTP adapter).

use rust_decimal::Decimal;
use vigil_core::{Bar, ClientOrderId, OrderRequest, OrderType, Side, SymbolId, Timestamp};

/// Midnight UTC of 2024-01-DD.
pub fn jan(d: u32) -> Timestamp {
    format!("2024-01-{d:02}T00:00:00Z")
        .parse()
        .expect("a day of January 2024")
}

/// The bar of symbol `symbol` on 2024-01-DD with `[open, high, low, close]` and `volume`.
pub fn bar(symbol: u32, d: u32, ohlc: [Decimal; 4], volume: Decimal) -> Bar {
    let [open, high, low, close] = ohlc;
    Bar {
        symbol: SymbolId(symbol),
        ts: jan(d),
        open,
        high,
        low,
        close,
        volume: Some(volume),
    }
}

/// A bar at one price all day, with a volume no order reaches.
pub fn flat_bar(symbol: u32, d: u32, price: Decimal) -> Bar {
    bar(symbol, d, [price; 4], Decimal::from(1_000_000))
}

/// A market order, or a limit order at `limit`, submitted at `submitted_at`.
pub fn order_request(
    id: &str,
    symbol: u32,
    side: Side,
    quantity: Decimal,
    limit: Option<Decimal>,
    submitted_at: Timestamp,
) -> OrderRequest {
    OrderRequest {
        client_order_id: ClientOrderId::from(id),
        symbol: SymbolId(symbol),
        side,
        quantity,
        order_type: if limit.is_some() {
            OrderType::Limit
        } else {
            OrderType::Market
        },
        limit_price: limit,
        submitted_at,
    }
}
