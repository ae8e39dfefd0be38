//! `vigil drill <class>`: an incident rehearsed against a running stack (the drills
//! themselves: `vigil_session::{data_format_change, data_source_down, price_jump}`). Prints a
//! PASS / FAIL line per check, with the measured detection and alert-delivery times. Exit
//! codes: 0 every check passed, 1 a check failed, 2 the drill could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use rust_decimal::Decimal;
use vigil_session::{
    DrillCheck, DrillError, DrillOptions, VigilConfig, data_format_change, data_source_down,
    price_jump,
};

/// The drills.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Drill {
    /// The data feed changes its message format (the weekend incident).
    DataFormatChange,
    /// The data feed drops every connection (the data side of a network loss): detected,
    /// halted or failed over, a person told, then verified and resumed.
    DataSourceDown,
    /// The next bar of the first instrument jumps: quarantined, a person told, no order in
    /// it while held.
    PriceJump,
}

impl Drill {
    fn name(self) -> &'static str {
        match self {
            Self::DataFormatChange => "data-format-change",
            Self::DataSourceDown => "data-source-down",
            Self::PriceJump => "price-jump",
        }
    }
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
    /// `price-jump`: how far the bar jumps, in percent.
    #[arg(long, default_value = "30")]
    jump_pct: Decimal,
}

pub(crate) fn run(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let opts = DrillOptions {
        feed_control: args.feed_control,
        step: args.step,
        timeout_s: args.timeout_s,
    };
    let name = args.drill.name();
    let cfg = match VigilConfig::load(&args.config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("vigil drill {name}: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let checks: Result<Vec<DrillCheck>, DrillError> = match args.drill {
        Drill::DataFormatChange => data_format_change(&cfg, &args.config, &opts),
        Drill::DataSourceDown => data_source_down(&cfg, &args.config, &opts),
        Drill::PriceJump => price_jump(&cfg, &args.config, &opts, args.jump_pct),
    };
    let checks = match checks {
        Ok(checks) => checks,
        Err(e) => {
            eprintln!("vigil drill {name}: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    println!("vigil drill {name}");
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
