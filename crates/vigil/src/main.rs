//! `vigil`: a production-operations runtime for automated trading.
//!
//! A thin shell: parse arguments, load and validate config, start the system, print.

// First: its `println!` and kin shadow the standard ones in every module below.
#[macro_use]
mod out;

mod alerts_cmd;
mod backtest_cmd;
mod broker_cmd;
mod calendar_cmd;
mod cli;
mod control_client;
mod ctl_cmd;
mod drill_cmd;
mod feed_cmd;
mod fleet_cmd;
mod gate_cmd;
mod logs;
mod model_cmd;
mod progress;
mod reconcile_cmd;
mod registry_cmd;
mod release_cmd;
mod report;
mod status;
mod summary;

use std::process::ExitCode;

use clap::Parser;

// Agents allocate log events on the pipeline thread and the log writer frees them on its
// own; glibc malloc serialises that on an arena lock (measured: 7% of the pipeline thread
// in lock wake-ups). mimalloc frees cross-thread without the lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let code = match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: error: {e:#}");
            ExitCode::from(2)
        }
    };
    // A reader that went away is no error; a standard output that failed otherwise is.
    match out::failure() {
        Some(e) => {
            eprintln!("vigil: error: cannot write to standard output: {e}");
            ExitCode::from(2)
        }
        None => code,
    }
}
