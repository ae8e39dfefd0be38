//! Runs the full six-agent paper session on a data provider of your own.
//!
//! `cargo run -p vigil-examples --example custom_data_provider`

use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::temp_dir().join("vigil-example-logs");
    match vigil_examples::run_wave_session(&dir, 5_000) {
        Ok(o) => {
            let s = &o.summary;
            println!(
                "wave session: {} bars, {} signals, {} orders, {} fills, equity {:.2} (P&L {:+.2}), log {}",
                s.bars,
                s.signals,
                s.orders,
                s.fills,
                s.final_equity,
                s.pnl(),
                o.log_file.display()
            );
            if s.error.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("cannot run the example: {e}");
            ExitCode::FAILURE
        }
    }
}
