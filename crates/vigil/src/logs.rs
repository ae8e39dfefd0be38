//! `vigil logs`: query, follow a decision chain, verify.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use vigil_config::VigilConfig;
use vigil_core::{Clock, Level, SystemClock, escape_controls};
use vigil_log::{LogQuery, parse_since, read_lines, read_lines_while};
use vigil_session::{AnchorSource, LogCheck, LogCheckError, verify_log};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct LogsArgs {
    #[command(subcommand)]
    command: Option<LogsCmd>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Debug, Subcommand)]
enum LogsCmd {
    /// Print one decision chain in order — signal, risk check, order, ack, fills — with
    /// the time between steps.
    Trace {
        /// The trace id (`tx_…`).
        id: String,
        /// Log folder.
        #[arg(long, default_value = "logs")]
        dir: PathBuf,
    },
    /// Check every file: hashes (or HMACs), chain links, gap-free sequence numbers, missing
    /// or reordered files; and the log against the anchors its sessions recorded in the
    /// store: lines cut from the end, the newest files deleted or emptied, lines appended
    /// after the stop, edits re-hashed. Says what it could not check. Exits 1 when anything
    /// is wrong, 2 when it cannot run.
    Verify {
        /// Log folder (default: the config's `log.dir`, else `logs`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The config the log was written with: its `log.dir`, its store (the anchors) and
        /// its `log.hmac_key_file`. Without it: the embedded default's store
        /// (`state/vigil.db`), when that file exists.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The SQLite store holding the anchors, instead of the config's.
        #[arg(long)]
        store: Option<PathBuf>,
        /// The key file of a keyed chain, instead of the config's `log.hmac_key_file`.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line, as stored.
    Json,
    /// Aligned columns for a person.
    Table,
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Log folder.
    #[arg(long, default_value = "logs")]
    dir: PathBuf,
    /// Only this decision chain.
    #[arg(long)]
    trace: Option<String>,
    /// Only this event (`order_submitted` …; see docs/events.md).
    #[arg(long)]
    event: Option<String>,
    /// Only this level and above (DEBUG, INFO, WARN, ERROR, CRITICAL).
    #[arg(long)]
    level: Option<Level>,
    /// Only this service (`risk_agent` …).
    #[arg(long)]
    service: Option<String>,
    /// Only lines about this symbol.
    #[arg(long)]
    symbol: Option<String>,
    /// From this time: RFC 3339, or an age such as 30m, 2h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Up to this time: RFC 3339, or an age.
    #[arg(long)]
    until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(crate) fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(LogsCmd::Trace { id, dir }) => trace(&dir, &id),
        Some(LogsCmd::Verify {
            dir,
            config,
            store,
            key_file,
        }) => verify(dir, config.as_deref(), store, key_file),
        None => query(args.filter),
    }
}

fn query(f: FilterArgs) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now();
    let time = |t: &Option<String>| -> anyhow::Result<Option<DateTime<Utc>>> {
        t.as_deref()
            .map(|t| parse_since(t, now))
            .transpose()
            .map_err(Into::into)
    };
    let q = LogQuery {
        trace: f.trace,
        event: f.event,
        min_level: f.level,
        service: f.service,
        symbol: f.symbol,
        since: time(&f.since)?,
        until: time(&f.until)?,
    };
    let mut n = 0u64;
    // Until the reader goes away (`vigil logs | head`).
    read_lines_while(&f.dir, |_, _, raw, v| {
        if q.matches(&v) {
            n += 1;
            match f.format {
                // Exactly as stored: key order and decimal digits untouched.
                Format::Json => println!("{raw}"),
                Format::Table => println!("{}", row(&v)),
            }
        }
        !crate::out::stdout_closed()
    })?;
    eprintln!("vigil: {n} line(s) matched in {}", f.dir.display());
    Ok(ExitCode::SUCCESS)
}

/// A stored value as text for a person: control characters escaped (`\x1b`, `\r`, `\n` …),
/// since a line's text may come from outside (an operator's reason, a feed's payload, a
/// broker's error) and a raw ESC, CR or LF would drive the terminal or forge a line.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => escape_controls(s).into_owned(),
        other => escape_controls(&other.to_string()).into_owned(),
    }
}

fn data_summary(v: &Value) -> String {
    v["data"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{}={}", escape_controls(k), text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn row(v: &Value) -> String {
    format!(
        "{:<24} {:<8} {:<16} {:<22} {:<28} {}",
        text(&v["timestamp"]),
        text(&v["level"]),
        text(&v["service"]),
        text(&v["event"]),
        escape_controls(v["trace_id"].as_str().unwrap_or("-")),
        data_summary(v)
    )
}

fn trace(dir: &Path, id: &str) -> anyhow::Result<ExitCode> {
    let mut lines: Vec<Value> = Vec::new();
    read_lines(dir, |_, _, _, v| {
        if v["trace_id"].as_str() == Some(id) {
            lines.push(v);
        }
    })?;
    if lines.is_empty() {
        eprintln!(
            "vigil: no line with trace id {} in {}",
            escape_controls(id),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let ts = |v: &Value| {
        v["timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let first = ts(&lines[0]);
    let last = ts(&lines[lines.len() - 1]);
    let total = match (first, last) {
        (Some(a), Some(b)) => format!("{:.3} s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => "?".into(),
    };
    println!(
        "trace {}: {} step(s), {total} from first to last",
        escape_controls(id),
        lines.len()
    );
    let mut prev = first;
    for v in &lines {
        let t = ts(v);
        let step = match (prev, t) {
            (Some(a), Some(b)) => format!("+{:.3}s", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => "?".into(),
        };
        prev = t.or(prev);
        println!(
            "  {:>10}  {:<24} {:<16} {:<22} {}",
            step,
            text(&v["timestamp"]),
            text(&v["service"]),
            text(&v["event"]),
            data_summary(v)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    dir: Option<PathBuf>,
    config: Option<&Path>,
    store: Option<PathBuf>,
    key_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let cfg = VigilConfig::load_or_default(config)?;
    let dir = dir.unwrap_or_else(|| cfg.log.dir.clone());
    let anchors = match store {
        Some(path) => AnchorSource::Config {
            store: vigil_config::StoreConfig {
                path,
                url: None,
                ..cfg.store.clone()
            },
            required: true,
        },
        None => AnchorSource::Config {
            store: cfg.store.clone(),
            required: config.is_some(),
        },
    };
    let key_file = match key_file {
        Some(f) => Some(("--key-file".to_string(), f)),
        None => cfg
            .log
            .hmac_key_file
            .clone()
            .map(|f| ("log.hmac_key_file".to_string(), f)),
    };
    let report = match verify_log(&LogCheck {
        dir: dir.clone(),
        anchors,
        key_file,
    }) {
        Ok(r) => r,
        Err(e @ LogCheckError::StoreMissing(_)) => {
            println!("{}: {e}", dir.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    for p in &report.problems {
        println!("{}", escape_controls(&p.to_string()));
    }
    for note in &report.unchecked {
        println!("{}: not checked: {note}", dir.display());
    }
    if report.files == 0 {
        println!("{}: no log files", dir.display());
        return Ok(ExitCode::FAILURE);
    }
    if report.is_clean() {
        println!(
            "{}: ok ({} file(s), {} line(s), chain intact, {} anchor(s) match)",
            dir.display(),
            report.files,
            report.lines,
            report.anchors
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{}: {} problem(s) in {} file(s), {} line(s)",
            dir.display(),
            report.problems.len(),
            report.files,
            report.lines
        );
        Ok(ExitCode::FAILURE)
    }
}
