//! `vigil calendar …` and `vigil schedule …`: the exchange calendar and the automated day.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use vigil_calendar::{Calendar, systemd_units};
use vigil_config::VigilConfig;
use vigil_core::{Clock, SystemClock};

#[derive(Debug, Args)]
pub(crate) struct ConfigArg {
    /// Config whose `[calendar]` section (overrides, schedule) applies; default: embedded.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// `date,open,close,early_close` with local HH:MM times.
    Csv,
}

/// `vigil calendar …`
#[derive(Debug, Subcommand)]
pub(crate) enum CalendarCmd {
    /// List sessions: `date,open,close,early_close` (local HH:MM, true|false).
    Sessions {
        /// First date (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Last date (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: NaiveDate,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Print `open` or `closed` for an instant (exit 0 either way).
    IsOpen {
        /// The instant (RFC 3339).
        #[arg(long)]
        at: DateTime<chrono::FixedOffset>,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Print the next open and the next close after an instant (UTC, RFC 3339).
    Next {
        /// The instant (RFC 3339).
        #[arg(long)]
        at: DateTime<chrono::FixedOffset>,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Exit 0 on a trading day, 1 on a holiday or weekend, 255 when it cannot tell (for
    /// systemd's ExecCondition).
    IsTradingDay {
        /// Today at the exchange (America/New_York).
        #[arg(long, conflicts_with = "date")]
        today: bool,
        /// A given date (YYYY-MM-DD).
        #[arg(long)]
        date: Option<NaiveDate>,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Say why a date is open, short or closed.
    Explain {
        /// The date (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        #[command(flatten)]
        cfg: ConfigArg,
    },
}

/// `vigil schedule …`
#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCmd {
    /// Print a day's phases (auto start, validation, trading, close-only, snapshot,
    /// post-close, auto stop) in exchange time.
    Show {
        /// The date (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Write systemd units that start vigil on trading days only.
    InstallSystemd {
        /// Folder to write `vigil.service` and `vigil-start.timer` into.
        #[arg(long)]
        dir: PathBuf,
        /// The vigil binary the units run (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// The config file the units pass to `vigil run` (absolute path).
        #[arg(long)]
        config: PathBuf,
    },
}

fn load(cfg: &ConfigArg) -> anyhow::Result<(VigilConfig, Calendar)> {
    let config = VigilConfig::load_or_default(cfg.config.as_deref())?;
    let calendar = config
        .calendar
        .calendar()
        .map_err(|e| anyhow::anyhow!("calendar: {e}"))?;
    Ok((config, calendar))
}

pub(crate) fn calendar(cmd: CalendarCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CalendarCmd::Sessions {
            from,
            to,
            format: Format::Csv,
            cfg,
        } => {
            let (_, cal) = load(&cfg)?;
            print!("{}", cal.sessions_csv(from, to)?);
        }
        CalendarCmd::IsOpen { at, cfg } => {
            let (_, cal) = load(&cfg)?;
            let open = cal.is_open(at.with_timezone(&Utc))?;
            println!("{}", if open { "open" } else { "closed" });
        }
        CalendarCmd::Next { at, cfg } => {
            let (_, cal) = load(&cfg)?;
            let at = at.with_timezone(&Utc);
            let show = |t: Option<DateTime<Utc>>| {
                t.map_or_else(
                    || "none (beyond the calendar's range)".to_string(),
                    |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                )
            };
            println!("open {}", show(cal.next_open(at)?));
            println!("close {}", show(cal.next_close(at)?));
        }
        CalendarCmd::IsTradingDay { today, date, cfg } => {
            return Ok(is_trading_day(today, date, &cfg));
        }
        CalendarCmd::Explain { date, cfg } => {
            let (_, cal) = load(&cfg)?;
            println!("{}", cal.explain(date)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// 0 trading day, 1 not, 255 cannot tell: systemd skips the day on 1–254 and fails the
/// unit (loudly) on 255, so an error never silently skips or runs a day.
fn is_trading_day(today: bool, date: Option<NaiveDate>, cfg: &ConfigArg) -> ExitCode {
    let result = (|| -> anyhow::Result<bool> {
        let (_, cal) = load(cfg)?;
        let day = match (today, date) {
            (true, _) => cal.local_date(SystemClock.now()),
            (false, Some(d)) => d,
            (false, None) => bail!("give --today or --date YYYY-MM-DD"),
        };
        let open = cal.is_trading_day(day)?;
        eprintln!("vigil: {}", cal.explain(day)?);
        Ok(open)
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vigil: error: cannot tell whether this is a trading day: {e:#}");
            ExitCode::from(255)
        }
    }
}

pub(crate) fn schedule(cmd: ScheduleCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ScheduleCmd::Show { date, cfg } => {
            let (config, cal) = load(&cfg)?;
            print!("{}", config.calendar.schedule.schedule_text(&cal, date)?);
        }
        ScheduleCmd::InstallSystemd {
            dir,
            binary,
            config,
        } => {
            let binary = match binary {
                Some(b) => b,
                None => std::env::current_exe().context("finding this binary's path")?,
            };
            install(&dir, &binary, &config)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn install(dir: &Path, binary: &Path, config: &Path) -> anyhow::Result<()> {
    if !config.is_absolute() || !binary.is_absolute() {
        bail!("--binary and --config must be absolute paths (systemd runs from /)");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in systemd_units(&binary.display().to_string(), &config.display().to_string())
    {
        let path = dir.join(&name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!(
        "next: sudo cp {}/vigil.service {}/vigil-start.timer /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now vigil-start.timer",
        dir.display(),
        dir.display()
    );
    Ok(())
}
