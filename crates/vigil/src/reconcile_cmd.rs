//! `vigil reconcile`: the journal against the broker, on demand, changing neither.

use std::path::PathBuf;
use std::process::ExitCode;

use vigil_system::VigilConfig;

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
    let cfg = match VigilConfig::load_or_default(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Err(e) = cfg.validate() {
        eprintln!("{e}");
        return Ok(ExitCode::from(2));
    }
    let rec = match vigil_system::reconcile_now(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil reconcile: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        let differences: Vec<serde_json::Value> = rec
            .differences
            .iter()
            .map(|d| {
                serde_json::json!({
                    "kind": d.kind,
                    "subject": d.subject,
                    "journal": d.journal,
                    "venue": d.venue,
                    "action": d.action,
                    "mismatch": d.mismatch,
                })
            })
            .collect();
        let out = serde_json::json!({
            "book": rec.book,
            "new_book": rec.opened,
            "passed": rec.passed(),
            "fills_journaled": rec.fills_journaled,
            "fills_to_recover": rec.fills_recovered,
            "open_orders_at_venue": rec.open_orders.len(),
            "cash": rec.cash.to_string(),
            "positions": rec.positions.iter().map(|(id, q, avg)| serde_json::json!({
                "symbol": cfg.data.instruments.get(id.0 as usize).map(|i| i.symbol.clone()),
                "quantity": q.to_string(),
                "avg_price": avg.to_string(),
            })).collect::<Vec<_>>(),
            "differences": differences,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
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
            for d in &rec.differences {
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
