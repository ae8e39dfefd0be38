//! `vigil status`: the running session's health, from its control API.

use std::process::ExitCode;

use serde_json::Value;

use crate::control_client::Report as _;
use crate::control_client::{
    Client, ControlArgs, Located, NOT_RUNNING, REFUSED, UNAUTHORIZED, USAGE,
};

/// Where to find the running vigil.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    target: ControlArgs,
    /// Print the status as JSON, exactly as `/status` serves it.
    #[arg(long)]
    json: bool,
}

/// Exit codes: 0 ready, 1 not ready, 2 bad arguments, 3 not running, 4 no answer in time,
/// 5 the token was refused or cannot be read.
pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let Some(cfg) = args.target.config() else {
        return Ok(ExitCode::from(USAGE));
    };
    match args.target.locate(&cfg)? {
        Located::NotRunning(why) => {
            eprintln!("{why}");
            Ok(ExitCode::from(NOT_RUNNING))
        }
        Located::Running(client) => show(&client, args.json),
    }
}

/// Fetches `/v1/status` and prints it (`vigil status`, `vigil ctl status`).
pub(crate) fn show(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    if let Err(why) = client.token() {
        eprintln!("vigil: {why}");
        return Ok(ExitCode::from(UNAUTHORIZED));
    }
    let reply = match client.get("/v1/status") {
        Ok(r) => r,
        Err(f) => return Ok(f.report()),
    };
    if reply.status == 401 {
        eprintln!("{}", client.unauthorized(&reply));
        return Ok(ExitCode::from(UNAUTHORIZED));
    }
    let url = client.url();
    if !(200..300).contains(&reply.status) {
        anyhow::bail!("{url} answered HTTP {}: {}", reply.status, reply.error());
    }
    let v = reply
        .json()
        .map_err(|e| anyhow::anyhow!("{url}/v1/status: {e}"))?;
    let ready = v["ready"].as_bool().unwrap_or(false);
    if json {
        println!("{}", reply.body);
    } else {
        print!("{}", render(&v, url));
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(REFUSED)
    })
}

/// A status value as text for a person, control characters escaped (`\x1b` …).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => vigil_core::escape_controls(s).into_owned(),
        other => vigil_core::escape_controls(&other.to_string()).into_owned(),
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
            e["error"].as_str().map_or(String::new(), |err| format!(
                "  ({})",
                vigil_core::escape_controls(err)
            )),
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
