use rust_decimal_macros::dec;
use vigil_core::Symbol;
use vigil_testkit::timestamp as t;

use super::*;

fn book(position: rust_decimal::Decimal) -> BookSnapshot {
    BookSnapshot {
        cash: dec!(100000),
        equity: dec!(100000),
        gross_exposure: position.abs() * dec!(50),
        position,
        mark: dec!(50),
        open_orders: vec![],
        ledgers: Vec::new(),
    }
}

fn symbols() -> SymbolTable {
    SymbolTable::new(vec![
        Symbol::from("AAA"),
        Symbol::from("BBB"),
        Symbol::from("CCC"),
    ])
}

fn msg() -> Flatten {
    Flatten {
        actor: "ops".into(),
        reason: "end of day".into(),
    }
}

#[test]
fn a_halted_breaker_refuses_a_flatten() {
    assert!(matches!(
        check(TradingState::Halted),
        Err(CommandError::Conflict(_))
    ));
    assert!(check(TradingState::ReduceOnly).is_ok());
    assert!(check(TradingState::Active).is_ok());
}

#[test]
fn each_open_position_gets_one_market_order_to_zero() {
    let books: Vec<Result<_, String>> = vec![
        Ok((SymbolId(0), book(dec!(10)))),
        Ok((SymbolId(1), book(dec!(0)))),
        Ok((SymbolId(2), book(dec!(-4)))),
    ];
    let at = t("2024-01-02T15:00:00Z");
    let f = close_positions(books, at, TradingState::ReduceOnly, &symbols(), &msg());
    let orders: Vec<_> = f
        .orders
        .iter()
        .map(|o| (o.symbol, o.side, o.quantity, o.position))
        .collect();
    assert_eq!(
        orders,
        vec![
            (SymbolId(0), Side::Sell, dec!(10), dec!(10)),
            (SymbolId(2), Side::Buy, dec!(4), dec!(-4)),
        ]
    );
    assert!(f.orders.iter().all(|o| o.kind == "flatten"
        && o.at == at
        && o.actor == "ops"
        && o.reason == "flatten: end of day"));
    assert_eq!(
        f.answer.expect("answered"),
        "closing order(s) sent: SELL 10 AAA, BUY 4 CCC; trading state reduce_only"
    );
}

#[test]
fn a_flat_book_sends_nothing_and_says_so() {
    let books: Vec<Result<_, String>> = vec![Ok((SymbolId(0), book(dec!(0))))];
    let f = close_positions(
        books,
        t("2024-01-02T15:00:00Z"),
        TradingState::ReduceOnly,
        &symbols(),
        &msg(),
    );
    assert!(f.orders.is_empty());
    assert_eq!(
        f.answer.expect("answered"),
        "no open position; trading state reduce_only"
    );
}

#[test]
fn a_book_that_cannot_be_read_ends_the_flatten_after_the_orders_before_it() {
    let books = vec![
        Ok((SymbolId(0), book(dec!(10)))),
        Err("mailbox closed".to_string()),
        Ok((SymbolId(2), book(dec!(-4)))),
    ];
    let f = close_positions(
        books,
        t("2024-01-02T15:00:00Z"),
        TradingState::ReduceOnly,
        &symbols(),
        &msg(),
    );
    assert_eq!(f.orders.len(), 1);
    match f.answer {
        Err(CommandError::Unavailable(e)) => assert_eq!(
            e,
            "the execution agent did not answer a book query: mailbox closed"
        ),
        other => panic!("expected unavailable, got {other:?}"),
    }
}
