//! Command-line interface.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use vigil_config::{InstrumentConfig, Speed, VigilConfig};
use vigil_providers::{SynthSpec, write_bars};
use vigil_session::{SessionOptions, SystemError, run};

use crate::summary::{print_json, print_text};

/// Vigil keeps an automated trading system running correctly when nobody is watching.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a paper-trading session: replay market data through all six agents.
    ///
    /// Exit codes: 0 ran to the end or was stopped and drained, 1 the session failed, 2 it
    /// could not start (config, data, log, store, broker), 3 refused: the store lost its
    /// history or failed its integrity check (the message says what and how to recover).
    Run(RunArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// The exchange calendar: sessions, open or closed, next open/close, trading days.
    Calendar {
        #[command(subcommand)]
        command: crate::calendar_cmd::CalendarCmd,
    },
    /// The automated trading day: show a day's phases, install systemd units.
    Schedule {
        #[command(subcommand)]
        command: crate::calendar_cmd::ScheduleCmd,
    },
    /// Run a checklist: pass / warn / fail with a reason each; the report is stored.
    Checklist {
        /// Which checklist.
        #[arg(value_enum)]
        kind: KindArg,
        /// Config (log folder, data, thresholds); default: embedded.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a session's end-of-day report again from the log (as `vigil run` does after
    /// the close): P&L, trades, fills and slippage, drawdown, alerts, the post-close checks;
    /// written into checklist.dir as day-DATE.txt, .json and .png (the equity and drawdown
    /// chart). Exit 1 when a post-close check failed.
    DayReport {
        /// The exchange session (YYYY-MM-DD); default: today's, New York time.
        #[arg(long)]
        session: Option<chrono::NaiveDate>,
        /// Config (log folder, checklist folder); default: embedded.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Query the trading log, follow a decision chain, verify the hash chain.
    Logs(crate::logs::LogsArgs),
    /// The running session's health: readiness, agents, endpoints, firing rules.
    Status(crate::status::StatusArgs),
    /// Operator commands to the running vigil over its control API: pause, resume, the
    /// breaker, cancel-all, flatten, switch-source, shutdown, rotate-token; and the audit.
    ///
    /// Exit codes: 0 done, 1 refused (the server's reason is printed; status: not ready),
    /// 2 bad arguments, 3 vigil not running, 4 no answer in time, 5 the token was refused or
    /// cannot be read.
    Ctl(crate::ctl_cmd::CtlArgs),
    /// Alerts: list, history, ack, silence, unsilence, and a test through one channel.
    Alerts {
        #[command(subcommand)]
        command: crate::alerts_cmd::AlertsCmd,
    },
    /// A paper broker as its own process: an HTTP API shaped like Alpaca's trading API v2,
    /// its state in a SQLite file, prices from the same CSV files as the feed, fault
    /// injection for tests (see docs/broker.md). Runs until SIGINT or SIGTERM.
    Broker(crate::broker_cmd::BrokerArgs),
    /// A market-data feed as its own process: replays bars CSV files over a WebSocket
    /// speaking Alpaca's market-data stream v2, one bar per interval, with fault injection
    /// for tests (see docs/feed.md). Runs until SIGINT or SIGTERM.
    Feed(crate::feed_cmd::FeedArgs),
    /// Reconcile the journal with the broker now, changing neither: print every
    /// difference and what the next start would do about it (see docs/recovery.md).
    ///
    /// Exit codes: 0 the books agree (or differ only as a crash explains), 1 a mismatch,
    /// 2 bad config or the store or broker cannot be read.
    Reconcile(crate::reconcile_cmd::ReconcileArgs),
    /// Rehearse an incident against the running stack and print a pass/fail report.
    /// `data-format-change`: the feed changes its message format; the first bad message
    /// must be an ERROR line with its payload, vigil must fail over or halt, and no order
    /// may be decided on unvalidated data (see docs/feed.md).
    ///
    /// Exit codes: 0 every check passed, 1 a check failed, 2 the drill could not run.
    Drill(crate::drill_cmd::DrillArgs),
    /// The fleet of vigil nodes over NATS JetStream: each node's lease and newest line.
    Fleet {
        #[command(subcommand)]
        command: crate::fleet_cmd::FleetCmd,
    },
    /// Backtest a model artifact on a bars file through the vectorized layer, the OMS layer
    /// (the real agents and the paper venue), or both side by side: every metric, an
    /// in-sample / out-of-sample split, walk-forward folds and bias probes, ratios withheld
    /// below a minimum sample.
    ///
    /// Exit codes: 0 it ran, 2 it could not (model, data, config).
    Backtest(crate::backtest_cmd::BacktestArgs),
    /// Judge a model's backtests (both layers) against a gate file's thresholds: exit 0
    /// only if every check passes; the result is stored as JSON and written to the log.
    ///
    /// Exit codes: 0 every check passed, 1 a check failed, 2 the gate could not run.
    Gate(crate::gate_cmd::GateArgs),
    /// Model artifacts: check one; write the features vigil computes, to train on; the
    /// registry (register, list, show, promote, retire, rollback).
    Model {
        #[command(subcommand)]
        command: crate::model_cmd::ModelCmd,
    },
    /// Market-data tools.
    Data {
        #[command(subcommand)]
        command: DataCmd,
    },
    /// Print the shell completion script for `vigil` (made from this command line's own
    /// definition). Install: `vigil completions bash > /etc/bash_completion.d/vigil`, or
    /// `zsh > ~/.zfunc/_vigil`, `fish > ~/.config/fish/completions/vigil.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (`vigil.1` and one per subcommand, `vigil-run.1` …) to a folder.
    /// Install: `sudo vigil man --dir /usr/local/share/man/man1 && sudo mandb`.
    Man {
        /// The folder (made if missing).
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Config file (default: the embedded paper config, config/vigil.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replay this CSV instead of the config's instruments (columns by header name).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Symbol for --data (default: the file name up to the first '_' or '.').
    #[arg(long, requires = "data")]
    symbol: Option<String>,
    /// Replay speed: `max`, or a factor of real time (1 = real time, 60 = a minute a second).
    #[arg(long)]
    speed: Option<Speed>,
    /// Log folder (default: the config's log.dir).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Control API address (default: the config's control.address; `127.0.0.1:0` picks a
    /// free port).
    #[arg(long)]
    control: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Rebuild the broker's book in the journal from the broker, once, after vigil refused
    /// to start because the store lost its history (exit 3): cash, positions, open orders
    /// and the broker's fills are journaled, and the session resumes after the latest
    /// decision the journal, the broker, the log or the identity file remember, so nothing
    /// past is decided or sent again. Refused when nothing was lost. See docs/recovery.md.
    #[arg(long)]
    rebuild_journal_from_broker: bool,
    /// A rehearsal stack's clock: run the session's wall clock from this time (RFC 3339,
    /// `2026-12-01T10:00:00-05:00`) at the wall's pace, so that drills that need trading
    /// hours run at any hour (see docs/feed.md, drills). Refused unless the config has
    /// `[control] fault_injection = true`: never on a stack that trades for real.
    #[arg(long, value_name = "TIME")]
    clock_start: Option<vigil_core::Timestamp>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    /// Before the open: data, risk parameters, disk, log, reconciliation, alert channels.
    Premarket,
    /// After the close: P&L, the closing snapshot, log verification, alert summary.
    Postmarket,
    /// The last 7 days: performance, resources, alert statistics, drill reminder.
    Weekly,
    /// The last 30 days: as weekly.
    Monthly,
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Validate a config file and list every problem with its dotted key path.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the embedded default config.
    Default,
}

#[derive(Debug, Subcommand)]
enum DataCmd {
    /// Write synthetic one-minute OHLCV bars (a seeded random walk) for tests and benchmarks.
    Synth {
        /// Number of bars.
        #[arg(long, default_value_t = 1_000_000)]
        bars: u64,
        /// Random seed; the same seed always writes the same file.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Run(args) => run_cmd(args),
        Cmd::Broker(args) => crate::broker_cmd::run(args),
        Cmd::Feed(args) => crate::feed_cmd::run(args),
        Cmd::Reconcile(args) => crate::reconcile_cmd::run(args),
        Cmd::Drill(args) => crate::drill_cmd::run(args),
        Cmd::Fleet { command } => crate::fleet_cmd::run(command),
        Cmd::Backtest(args) => crate::backtest_cmd::run_cmd(args),
        Cmd::Gate(args) => crate::gate_cmd::run_cmd(args),
        Cmd::Model { command } => crate::model_cmd::run(command),
        Cmd::Logs(args) => crate::logs::run(args),
        Cmd::Status(args) => crate::status::run(args),
        Cmd::Alerts { command } => crate::alerts_cmd::run(command),
        Cmd::Ctl(args) => crate::ctl_cmd::run(args),
        Cmd::Checklist { kind, config, json } => checklist(kind, config.as_deref(), json),
        Cmd::DayReport {
            session,
            config,
            json,
        } => day_report(session, config.as_deref(), json),
        Cmd::Calendar { command } => crate::calendar_cmd::calendar(command),
        Cmd::Schedule { command } => crate::calendar_cmd::schedule(command),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "vigil", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Man { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &dir)
                .with_context(|| format!("writing the manual pages to {}", dir.display()))?;
            eprintln!("vigil: wrote the manual pages to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Config {
            command: ConfigCmd::Check { file },
        } => config_check(&file),
        Cmd::Config {
            command: ConfigCmd::Default,
        } => {
            print!("{}", vigil_config::EMBEDDED_DEFAULT);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Data {
            command: DataCmd::Synth { bars, seed, out },
        } => {
            let spec = SynthSpec::minute_bars(bars, seed);
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            write_bars(&spec, std::io::BufWriter::new(file))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "vigil: wrote {bars} bars (seed {seed}) to {}",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn checklist(kind: KindArg, config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    use vigil_session::{CheckStatus, ChecklistKind, run_checklist};
    let cfg = VigilConfig::load_or_default(config)?;
    let kind = match kind {
        KindArg::Premarket => ChecklistKind::Premarket,
        KindArg::Postmarket => ChecklistKind::Postmarket,
        KindArg::Weekly => ChecklistKind::Weekly,
        KindArg::Monthly => ChecklistKind::Monthly,
    };
    let report = run_checklist(kind, &cfg, vigil_core::Clock::now(&vigil_core::SystemClock));
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    let stored = report
        .store(&cfg.checklist.dir)
        .with_context(|| format!("storing the report in {}", cfg.checklist.dir.display()))?;
    eprintln!("vigil: report stored in {}", stored.display());
    Ok(if report.status() == CheckStatus::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn day_report(
    session: Option<chrono::NaiveDate>,
    config: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use vigil_session::CheckStatus;
    let cfg = VigilConfig::load_or_default(config)?;
    let now = vigil_core::Clock::now(&vigil_core::SystemClock);
    let session = session.unwrap_or_else(|| vigil_core::exchange_date(now));
    let (checks, report) = vigil_session::post_close(&cfg, session, now);
    let report =
        report.map_err(|e| anyhow::anyhow!("the day report of the {session} session: {e}"))?;
    if json {
        print!(
            "{}",
            std::fs::read_to_string(&report.json)
                .with_context(|| { format!("reading {}", report.json.display()) })?
        );
    } else {
        print!(
            "{}",
            std::fs::read_to_string(&report.text)
                .with_context(|| { format!("reading {}", report.text.display()) })?
        );
    }
    let mut files = vec![
        report.text.display().to_string(),
        report.json.display().to_string(),
    ];
    files.extend(report.chart.map(|c| c.display().to_string()));
    eprintln!("vigil: day report written: {}", files.join(", "));
    Ok(if checks.status() == CheckStatus::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn config_check(file: &Path) -> anyhow::Result<ExitCode> {
    match VigilConfig::load(file) {
        Ok(cfg) => {
            // A model directory is checked as `vigil run` will load it: manifest, hashes,
            // graph.
            // A registry reference is resolved in the store when the session starts.
            if let Some((name, version)) = cfg.signal.registry_reference() {
                println!(
                    "{}: ok (signal.model: {name} {version} from the model registry when \
                     `vigil run` starts; `vigil model show {name} {version}` shows it)",
                    file.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if cfg.signal.model != "ema_cross"
                && let Err(e) = vigil_model::open(Path::new(&cfg.signal.model))
            {
                println!("{}: signal.model: {e}", file.display());
                return Ok(ExitCode::FAILURE);
            }
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn default_symbol(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "DATA".into());
    name.split(['_', '.'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("DATA")
        .to_string()
}

fn run_cmd(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(mut config) = crate::control_client::load_config(args.config.as_deref()) else {
        return Ok(ExitCode::from(crate::control_client::USAGE));
    };
    if let Some(data) = &args.data {
        if !data.exists() {
            bail!("--data {}: no such file", data.display());
        }
        config.data.instruments = vec![InstrumentConfig {
            symbol: args.symbol.clone().unwrap_or_else(|| default_symbol(data)),
            path: data.display().to_string(),
            check_gaps: None,
        }];
    }
    if let Some(speed) = args.speed {
        config.data.speed = speed;
    }
    if let Some(dir) = &args.log_dir {
        config.log.dir = dir.clone();
    }
    if let Some(addr) = &args.control {
        config.control.address = addr.clone();
    }
    if let Err(e) = config.validate() {
        eprintln!("{e}");
        return Ok(ExitCode::from(2));
    }
    let mut opts = SessionOptions {
        handle_ctrl_c: true,
        config_path: args.config.clone(),
        rebuild_journal: args.rebuild_journal_from_broker,
        ..SessionOptions::new(config)
    };
    if let Some(start) = args.clock_start {
        if !opts.config.control.fault_injection {
            eprintln!(
                "vigil run: --clock-start is for a rehearsal stack: the config must say \
                 [control] fault_injection = true"
            );
            return Ok(ExitCode::from(2));
        }
        eprintln!("vigil: rehearsal clock: the session's wall clock starts at {start}");
        opts.supervision_clock = std::sync::Arc::new(vigil_core::ShiftedClock::starting_at(start));
    }
    let outcome = match run(opts) {
        Ok(o) => o,
        // Refused: the store lost its history. Its own code, so that a supervisor that
        // restarts on failure can be told not to (systemd: RestartPreventExitStatus=3).
        Err(e @ SystemError::History(_)) => {
            eprintln!("vigil: cannot start the session: {e}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => {
            eprintln!("vigil: cannot start the session: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        print_json(&outcome)?;
    } else {
        print_text(&outcome);
    }
    if let Some(err) = &outcome.summary.error {
        eprintln!("vigil: session failed: {err}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_symbol_is_the_file_stem_before_underscore() {
        assert_eq!(default_symbol(Path::new("/x/GOOG_1d.csv")), "GOOG");
        assert_eq!(default_symbol(Path::new("bars.csv")), "bars");
    }
}
