//! Orders the Risk agent decides by itself (a flatten, a deleveraging step): a market order
//! that replaces whatever is open for the symbol, logged as approved at WARN with who asked
//! and why.

use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_core::{
    ClientOrderId, Level, OrderRequest, OrderType, Side, SymbolId, Timestamp, TraceId, TradingState,
};
use vigil_log::{Event, LogContext, LogEvent};
use vigil_messages::OrderIntent;

use crate::agent::SERVICE;

/// An order the Risk agent decides by itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ForcedOrder {
    /// Names the trace: `flatten`, `deleverage`.
    pub(crate) kind: &'static str,
    pub(crate) symbol: SymbolId,
    pub(crate) side: Side,
    pub(crate) quantity: Decimal,
    /// The position before the order.
    pub(crate) position: Decimal,
    pub(crate) price: Decimal,
    pub(crate) equity: Decimal,
    /// Market time of the decision.
    pub(crate) at: Timestamp,
    /// Who asked.
    pub(crate) actor: String,
    /// Why.
    pub(crate) reason: String,
}

impl ForcedOrder {
    /// The approval's log line (stamped `ts`, under trading state `state`, for the symbol
    /// named `name`) and the intent for the Execution agent. The intent replaces whatever
    /// is open for the symbol when it arrives, including an order decided meanwhile.
    pub(crate) fn approve(
        self,
        name: Arc<str>,
        ts: Timestamp,
        state: TradingState,
    ) -> (LogEvent, OrderIntent) {
        let trace_id = TraceId::for_command(&format!("{}_{name}", self.kind), self.at);
        let signed = match self.side {
            Side::Buy => self.quantity,
            Side::Sell => -self.quantity,
        };
        let event = LogEvent::new(ts, SERVICE, Event::RiskApproved)
            .level(Level::Warn)
            .trace(&trace_id)
            .with("symbol", name)
            .with("side", self.side.as_str())
            .with("quantity", self.quantity)
            .with("target_position", self.position + signed)
            .with("position", self.position)
            .with("price", self.price)
            .with("equity", self.equity)
            .with("trading_state", state.as_str())
            .with("actor", self.actor)
            .with("reason", self.reason);
        let intent = OrderIntent {
            order: OrderRequest {
                client_order_id: ClientOrderId::for_intent(&trace_id, 1),
                symbol: self.symbol,
                side: self.side,
                quantity: self.quantity,
                order_type: OrderType::Market,
                limit_price: None,
                submitted_at: self.at,
            },
            trace_id,
            reference_price: self.price,
            cancel_open: true,
            context: LogContext {
                portfolio_value: Some(self.equity),
                ..LogContext::default()
            },
            allocation: Vec::new(),
            // No bar decided it.
            arrived_at: None,
        };
        (event, intent)
    }
}
