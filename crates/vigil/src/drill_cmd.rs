//! `vigil drill data-format-change`: the weekend incident, rehearsed against a running stack.
//!
//! The running vigil reads its bars from a `vigil feed` process (`[data.feed]`). The drill
//! switches that feed to a changed message format, steps it, and watches vigil's log:
//! - the first bad message is an ERROR line (`data_parse_failed`) carrying its payload,
//!   within the time limit;
//! - vigil either fails over to a backup feed (`data_source_switched`) or halts trading
//!   (`breaker_tripped`);
//! - no order is decided on a bar newer than the last one vigil had before the fault (no
//!   order on unvalidated data).
//!
//! Then it puts the feed back (`/_faults/clear`) and prints a pass/fail report. Exit codes:
//! 0 every check passed, 1 a check failed, 2 the drill could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_system::VigilConfig;

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

/// One check of the report.
struct Check {
    name: &'static str,
    passed: bool,
    detail: String,
}

pub(crate) fn run(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let Drill::DataFormatChange = args.drill;
    match data_format_change(&args) {
        Ok(checks) => {
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
        Err(e) => {
            eprintln!("vigil drill data-format-change: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn data_format_change(args: &DrillArgs) -> Result<Vec<Check>, String> {
    let cfg = VigilConfig::load(&args.config).map_err(|e| e.to_string())?;
    let feed = cfg.data.feed.as_ref().ok_or_else(|| {
        format!(
            "{}: no [data.feed]: the drill needs vigil reading a feed",
            args.config.display()
        )
    })?;
    let control = match &args.feed_control {
        Some(c) => c.trim_end_matches('/').to_string(),
        None => control_of(&feed.url)?,
    };
    let secret = vigil_system::read_secret("data.feed.secret_file", &feed.secret_file)?;
    let auth = [
        ("APCA-API-KEY-ID", feed.key_id.clone()),
        ("APCA-API-SECRET-KEY", secret),
    ];
    let log_dir = cfg.log.dir.clone();
    let patience = Duration::from_secs(args.timeout_s);

    // What vigil had before the fault.
    let before = log_lines(&log_dir)?;
    let seen_until = before
        .iter()
        .filter(|l| l["service"] == "data_agent" || l["event"] == "order_submitted")
        .filter_map(|l| l["timestamp"].as_str().map(str::to_string))
        .max()
        .unwrap_or_default();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let post = |path: &str| -> Result<Value, String> {
        let url = format!("{control}{path}");
        let mut req = agent.post(&url);
        for (k, v) in &auth {
            req = req.header(*k, v.as_str());
        }
        let mut res = req.send_empty().map_err(|e| format!("POST {url}: {e}"))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("POST {url}: reading the answer: {e}"))?;
        if status != 200 {
            return Err(format!("POST {url}: {status} {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("POST {url}: not JSON ({e}): {body}"))
    };

    let t0 = Instant::now();
    post("/_faults/format?kind=renamed")?;
    if args.step > 0 {
        post(&format!("/_feed/step?n={}", args.step))?;
    }
    let mut checks = Vec::new();

    // 1. The first bad message: an ERROR line with its payload.
    let first_bad = wait(&log_dir, before.len(), patience, |l| {
        l["event"] == "data_parse_failed"
    })?;
    checks.push(match &first_bad {
        Some(l) => {
            let error = l["data"]["error"].as_str().unwrap_or_default();
            Check {
                name: "the first bad message is an ERROR line with its payload",
                passed: l["level"] == "ERROR" && error.contains("raw ("),
                detail: format!(
                    "{} ms after the fault, {}: {}",
                    t0.elapsed().as_millis(),
                    l["level"].as_str().unwrap_or("?"),
                    truncate(error, 160)
                ),
            }
        }
        None => Check {
            name: "the first bad message is an ERROR line with its payload",
            passed: false,
            detail: format!("no data_parse_failed within {} s", args.timeout_s),
        },
    });

    // 2. Failover or the breaker.
    let reaction = wait(&log_dir, before.len(), patience, |l| {
        l["event"] == "data_source_switched" || l["event"] == "breaker_tripped"
    })?;
    checks.push(match &reaction {
        Some(l) if l["event"] == "data_source_switched" => Check {
            name: "failover or the breaker",
            passed: true,
            detail: format!(
                "switched from {} to {}",
                l["data"]["from"].as_str().unwrap_or("?"),
                l["data"]["to"].as_str().unwrap_or("?")
            ),
        },
        Some(l) => Check {
            name: "failover or the breaker",
            passed: true,
            detail: format!(
                "breaker tripped: {}",
                truncate(l["data"]["reason"].as_str().unwrap_or("?"), 160)
            ),
        },
        None => Check {
            name: "failover or the breaker",
            passed: false,
            detail: format!(
                "neither data_source_switched nor breaker_tripped within {} s",
                args.timeout_s
            ),
        },
    });

    // 3. No order decided on a bar newer than what vigil had validated before the fault,
    //    unless a backup feed (validated in its turn) took over.
    let switched = reaction
        .as_ref()
        .is_some_and(|r| r["event"] == "data_source_switched");
    let after = log_lines(&log_dir)?;
    let late: Vec<String> = after
        .iter()
        .skip(before.len())
        .filter(|l| l["event"] == "order_submitted")
        .filter_map(|l| l["timestamp"].as_str())
        .filter(|t| !switched && *t > seen_until.as_str())
        .map(str::to_string)
        .collect();
    checks.push(Check {
        name: "no order on unvalidated data",
        passed: late.is_empty(),
        detail: match (late.is_empty(), switched) {
            (true, true) => format!(
                "orders up to {seen_until} came from the old feed's validated bars, later ones \
                 from the backup's"
            ),
            (true, false) => {
                format!("every order since the fault was decided on a bar up to {seen_until}")
            }
            (false, _) => format!("orders decided after {seen_until}: {}", late.join(", ")),
        },
    });

    post("/_faults/clear")?;
    Ok(checks)
}

/// `ws://HOST:PORT/stream` → `http://HOST:PORT`.
fn control_of(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("data.feed.url {url:?}: not a ws:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("data.feed.url {url:?}: no host"));
    }
    Ok(format!("http://{host}"))
}

/// Every line of the log folder (a line being written is read at the next look).
fn log_lines(dir: &std::path::Path) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    match vigil_log::read_lines(dir, |_, _, _, v| out.push(v)) {
        Ok(()) => Ok(out),
        // The writer is mid-line: what came before it is complete.
        Err(vigil_log::QueryError::BadLine { .. }) => Ok(out),
        Err(e) => Err(format!("log folder {}: {e}", dir.display())),
    }
}

/// Waits until a line after the first `skip` matches `pred`; `None` after `patience`.
fn wait(
    dir: &std::path::Path,
    skip: usize,
    patience: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Option<Value>, String> {
    let deadline = Instant::now() + patience;
    loop {
        let lines = log_lines(dir)?;
        if let Some(l) = lines.into_iter().skip(skip).find(|l| pred(l)) {
            return Ok(Some(l));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
