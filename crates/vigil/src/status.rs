//! `vigil status`: the running session's health, from its control address.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use vigil_config::VigilConfig;
use vigil_system::CONTROL_ADDR_FILE;

/// Where to find the running vigil.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The control address (`127.0.0.1:7317`); default: read from `<log dir>/control.addr`.
    #[arg(long)]
    control: Option<String>,
    /// The running session's log folder (default: the config's log.dir).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// The running session's config file (for its log.dir).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the status as JSON, exactly as `/status` serves it.
    #[arg(long)]
    json: bool,
}

/// Exit code when no vigil answers.
const NOT_RUNNING: u8 = 3;

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let addr = match &args.control {
        Some(a) => a.clone(),
        None => {
            let dir = match (&args.log_dir, &args.config) {
                (Some(d), _) => d.clone(),
                (None, Some(c)) => match VigilConfig::load(c) {
                    Ok(cfg) => cfg.log.dir,
                    Err(e) => {
                        eprintln!("{e}");
                        return Ok(ExitCode::from(2));
                    }
                },
                (None, None) => VigilConfig::embedded_default().log.dir,
            };
            let file = dir.join(CONTROL_ADDR_FILE);
            match std::fs::read_to_string(&file) {
                Ok(text) => text.trim().to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!(
                        "vigil is not running: {} does not exist (a running session writes its control address there; pass --log-dir or --control)",
                        file.display()
                    );
                    return Ok(ExitCode::from(NOT_RUNNING));
                }
                Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
            }
        }
    };
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut res = match agent.get(format!("http://{addr}/status")).call() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil is not running at {addr}: {e}");
            return Ok(ExitCode::from(NOT_RUNNING));
        }
    };
    let body = res
        .body_mut()
        .read_to_string()
        .map_err(|e| anyhow::anyhow!("reading the answer of {addr}: {e}"))?;
    if !res.status().is_success() {
        anyhow::bail!("{addr} answered HTTP {}: {body}", res.status());
    }
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("{addr}/status is not JSON: {e}"))?;
    let ready = v["ready"].as_bool().unwrap_or(false);
    if args.json {
        println!("{body}");
    } else {
        print!("{}", render(&v, &addr));
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The status for a person.
fn render(v: &Value, addr: &str) -> String {
    let mut out = String::new();
    let ready = v["ready"].as_bool().unwrap_or(false);
    out.push_str(&format!(
        "session {}  ({addr})\n  {}   trading {}   market {}   updated {}\n",
        text(&v["session"]),
        if ready { "READY" } else { "NOT READY" },
        text(&v["trading_state"]),
        if v["market_open"].as_bool().unwrap_or(false) {
            "open"
        } else {
            "closed"
        },
        text(&v["updated_at"]),
    ));
    if let Some(reasons) = v["not_ready"].as_array() {
        for r in reasons {
            out.push_str(&format!("  - {}\n", text(r)));
        }
    }
    for (label, key) in [("data source", "data_source"), ("venue", "venue")] {
        let e = &v[key];
        let latency = e["latency_ms"]
            .as_f64()
            .map_or("-".into(), |l| format!("{l:.2} ms"));
        out.push_str(&format!(
            "  {label:<12} {:<28} {:<5} {latency}{}\n",
            text(&e["name"]),
            if e["up"].as_bool().unwrap_or(false) {
                "up"
            } else {
                "DOWN"
            },
            e["error"]
                .as_str()
                .map_or(String::new(), |err| format!("  ({err})")),
        ));
    }
    out.push_str("  agents       state      heartbeat  backlog  ping\n");
    for a in v["agents"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    {:<10} {:<10} {:>7} ms {:>7}  {}\n",
            text(&a["agent"]),
            if a["healthy"].as_bool().unwrap_or(false) {
                text(&a["state"])
            } else {
                format!("{}!", text(&a["state"]))
            },
            text(&a["heartbeat_age_ms"]),
            text(&a["backlog"]),
            a["response_ms"]
                .as_f64()
                .map_or("-".into(), |r| format!("{r:.3} ms")),
        ));
    }
    let breaches = v["breaches"].as_array().cloned().unwrap_or_default();
    if breaches.is_empty() {
        out.push_str("  rules        none firing\n");
    } else {
        for b in breaches {
            out.push_str(&format!(
                "  FIRING       {} [{}] {} {} = {} (threshold {}) since {}\n",
                text(&b["rule"]),
                text(&b["level"]),
                text(&b["metric"]),
                text(&b["label"]),
                text(&b["value"]),
                text(&b["threshold"]),
                text(&b["since"]),
            ));
        }
    }
    out.push_str(&format!(
        "  log silent   {} ms\n",
        text(&v["log_silent_ms"])
    ));
    out
}
