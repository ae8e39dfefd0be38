//! `vigil drill data-format-change`: the weekend incident, rehearsed against a running stack
//! (the drill itself: `vigil_session::data_format_change`). Prints a pass/fail report. Exit
//! codes: 0 every check passed, 1 a check failed, 2 the drill could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use vigil_session::{DrillOptions, VigilConfig, data_format_change};

/// The drills.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Drill {
    /// The data feed changes its message format (the weekend incident).
    DataFormatChange,
}

/// `vigil drill` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct DrillArgs {
    /// The drill.
    #[arg(value_enum)]
    drill: Drill,
    /// The running vigil's config (its log folder and `[data.feed]`).
    #[arg(long)]
    config: PathBuf,
    /// The feed's control address (`http://HOST:PORT`); default: the host and port of
    /// `[data.feed] url`.
    #[arg(long)]
    feed_control: Option<String>,
    /// Bars the feed is stepped after the fault (a feed under `--manual`); 0: none.
    #[arg(long, default_value_t = 5)]
    step: u32,
    /// How long each check may take, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
}

pub(crate) fn run(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let Drill::DataFormatChange = args.drill;
    let opts = DrillOptions {
        feed_control: args.feed_control,
        step: args.step,
        timeout_s: args.timeout_s,
    };
    let checks = VigilConfig::load(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|cfg| data_format_change(&cfg, &args.config, &opts).map_err(|e| e.to_string()));
    let checks = match checks {
        Ok(checks) => checks,
        Err(e) => {
            eprintln!("vigil drill data-format-change: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    println!("vigil drill data-format-change");
    for c in &checks {
        println!(
            "  {} {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    if failed == 0 {
        println!("result: PASS ({} checks)", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("result: FAIL ({failed} of {} checks)", checks.len());
        Ok(ExitCode::from(1))
    }
}
