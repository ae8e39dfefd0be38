//! `vigil reconcile`: the journal against the broker, on demand, changing neither.

use std::path::PathBuf;
use std::process::ExitCode;

use rust_decimal::Decimal;
use serde::Serialize;
use vigil_recovery::Difference;

/// `vigil reconcile --json`.
#[derive(Serialize)]
struct ReconcileJson<'a> {
    book: &'a str,
    /// The journal holds no such book: the next run opens it from the broker.
    new_book: bool,
    passed: bool,
    fills_journaled: u64,
    fills_to_recover: u64,
    open_orders_at_venue: usize,
    // Strings, as always: the exact digits.
    #[serde(with = "rust_decimal::serde::str")]
    cash: Decimal,
    positions: Vec<PositionJson<'a>>,
    differences: &'a [Difference],
}

/// A position of the broker's, in `vigil reconcile --json`.
#[derive(Serialize)]
struct PositionJson<'a> {
    symbol: Option<&'a str>,
    // Strings, as always: the exact digits.
    #[serde(with = "rust_decimal::serde::str")]
    quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    avg_price: Decimal,
}

/// `vigil reconcile` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ReconcileArgs {
    /// Config file (the broker, its keys, the store).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let Some(cfg) = crate::control_client::load_config(args.config.as_deref()) else {
        return Ok(ExitCode::from(crate::control_client::USAGE));
    };
    if let Err(e) = cfg.validate() {
        eprintln!("{e}");
        return Ok(ExitCode::from(2));
    }
    let rec = match vigil_session::reconcile_now(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil reconcile: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        let out = ReconcileJson {
            book: &rec.book,
            new_book: rec.opened,
            passed: rec.passed(),
            fills_journaled: rec.fills_journaled,
            fills_to_recover: rec.fills_recovered,
            open_orders_at_venue: rec.open_orders.len(),
            cash: rec.cash,
            positions: rec
                .positions
                .iter()
                .map(|p| PositionJson {
                    symbol: cfg
                        .data
                        .instruments
                        .get(p.symbol.0 as usize)
                        .map(|i| i.symbol.as_str()),
                    quantity: p.quantity,
                    avg_price: p.avg_price,
                })
                .collect(),
            differences: &rec.differences,
        };
        // Through a `Value`, whose keys are sorted: the order this output has always had.
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&out)?)?
        );
    } else {
        println!("book {}", rec.book);
        if rec.opened {
            println!(
                "the journal holds no such book: the next `vigil run` opens it from the broker"
            );
        } else {
            println!(
                "journal: {} fills; broker: {} fills since, {} of vigil's orders open",
                rec.fills_journaled,
                rec.fills_recovered,
                rec.open_orders.len()
            );
        }
        if rec.differences.is_empty() {
            println!("no differences: the journal agrees with the broker");
        } else {
            println!(
                "{:<24} {:<32} {:<20} {:<40} ACTION AT THE NEXT START",
                "KIND", "SUBJECT", "JOURNAL", "BROKER"
            );
            for d in rec.differences.iter().map(Difference::record) {
                // What the broker says is shown escaped: a raw control character would
                // drive the terminal.
                let shown = |s: &str| vigil_core::escape_controls(s).into_owned();
                println!(
                    "{:<24} {:<32} {:<20} {:<40} {}{}",
                    d.kind,
                    shown(&d.subject),
                    shown(&d.journal),
                    shown(&d.venue),
                    shown(&d.action),
                    if d.mismatch { "  [MISMATCH]" } else { "" }
                );
            }
        }
        println!(
            "{}",
            if rec.passed() {
                "PASSED: trading may open"
            } else {
                "MISMATCH: the next start takes the broker's figures and keeps trading restricted until `vigil ctl breaker reset`"
            }
        );
    }
    Ok(if rec.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vigil_core::ClientOrderId;

    use super::*;

    /// The shape `vigil reconcile --json` has always printed, built by hand as it was.
    #[test]
    fn the_json_keeps_its_keys_and_strings() {
        let differences = [Difference::IntentFailed {
            order: ClientOrderId::from("tx_1"),
        }];
        let out = ReconcileJson {
            book: "main",
            new_book: false,
            passed: true,
            fills_journaled: 3,
            fills_to_recover: 1,
            open_orders_at_venue: 0,
            cash: Decimal::new(9950, 2),
            positions: vec![PositionJson {
                symbol: Some("GOOG"),
                quantity: Decimal::new(-2, 0),
                avg_price: Decimal::new(10025, 2),
            }],
            differences: &differences,
        };
        assert_eq!(
            serde_json::to_value(&out).expect("serialises"),
            json!({
                "book": "main",
                "new_book": false,
                "passed": true,
                "fills_journaled": 3,
                "fills_to_recover": 1,
                "open_orders_at_venue": 0,
                "cash": "99.50",
                "positions": [{"symbol": "GOOG", "quantity": "-2", "avg_price": "100.25"}],
                "differences": [{
                    "kind": "intent_failed",
                    "subject": "tx_1",
                    "journal": "intent",
                    "venue": "no such order",
                    "action": "marked failed; not sent again",
                    "mismatch": false,
                }],
            })
        );
    }
}
