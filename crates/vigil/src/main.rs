//! `vigil`: a production-operations runtime for automated trading.
//!
//! A thin shell: parse arguments, load and validate config, start the system, print.

mod cli;
mod summary;
mod synth;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
