//! Flatten: go reduce-only and close every open position with one market order each. The
//! actor reads the books from the Execution agent; this module decides what goes out and
//! what the operator is told.

use vigil_core::{Side, SymbolId, SymbolTable, Timestamp, TradingState};
use vigil_messages::{BookSnapshot, CommandError, Flatten};

use crate::forced::ForcedOrder;

/// Refuses a flatten while the breaker is tripped: no order may go out then.
///
/// # Errors
/// [`CommandError::Conflict`] when `state` is halted.
pub(crate) fn check(state: TradingState) -> Result<(), CommandError> {
    if state == TradingState::Halted {
        return Err(CommandError::Conflict(
            "the breaker is tripped (halted): no order may go out, only cancels; \
             reset the breaker first, then flatten"
                .into(),
        ));
    }
    Ok(())
}

/// What a flatten decided: the closing orders, in symbol order, and the answer for the
/// operator.
#[derive(Debug)]
pub(crate) struct Flattening {
    /// Sent even when the answer is an error: they were decided before a book failed.
    pub(crate) orders: Vec<ForcedOrder>,
    pub(crate) answer: Result<String, CommandError>,
}

/// The closing orders for `books` (the book of each symbol as read, or why it could not be
/// read), decided at market time `at` under `state` for the command `msg`. A book that
/// could not be read ends the flatten with an error; the orders before it still go.
pub(crate) fn close_positions<E: std::fmt::Display>(
    books: Vec<Result<(SymbolId, BookSnapshot), E>>,
    at: Timestamp,
    state: TradingState,
    symbols: &SymbolTable,
    msg: &Flatten,
) -> Flattening {
    let mut orders = Vec::new();
    let mut sent = Vec::new();
    for res in books {
        let (symbol, book) = match res {
            Ok(b) => b,
            Err(e) => {
                return Flattening {
                    orders,
                    answer: Err(CommandError::Unavailable(format!(
                        "the execution agent did not answer a book query: {e}"
                    ))),
                };
            }
        };
        if book.position.is_zero() {
            continue;
        }
        let side = if book.position.is_sign_positive() {
            Side::Sell
        } else {
            Side::Buy
        };
        let quantity = book.position.abs();
        sent.push(format!("{side} {quantity} {}", symbols.shared(symbol)));
        orders.push(ForcedOrder {
            kind: "flatten",
            symbol,
            side,
            quantity,
            position: book.position,
            price: book.mark,
            equity: book.equity,
            at,
            actor: msg.actor.clone(),
            reason: format!("flatten: {}", msg.reason),
        });
    }
    let answer = Ok(if sent.is_empty() {
        format!("no open position; trading state {state}")
    } else {
        format!(
            "closing order(s) sent: {}; trading state {state}",
            sent.join(", ")
        )
    });
    Flattening { orders, answer }
}

#[cfg(test)]
mod tests;
