//! `vigil ctl`: operator commands to a running vigil over its control API (pause, resume,
//! the breaker, cancel-all, flatten, switch-source, shutdown …), token rotation, and the
//! audit of every command, read from the store.
//!
//! The running vigil is found through `<log dir>/control.addr`; the bearer token is read
//! from the config's `control.token_file`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use vigil_core::escape_controls;
use vigil_store::ControlAuditEntry;

use crate::alerts_cmd::{StoreTarget, existing_store, runtime, table, time, who_from};
use crate::control_client::Report as _;
use crate::control_client::{
    Client, ControlArgs, Failure, Located, NOT_RUNNING, REFUSED, UNAUTHORIZED, USAGE,
};

/// `vigil ctl …`.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    #[command(subcommand)]
    command: CtlCmd,
    #[command(flatten)]
    target: ControlArgs,
    /// Print the server's JSON answer (the audit: one JSON object a line).
    #[arg(long, global = true)]
    json: bool,
    /// Why (required for every command but status, audit and rotate-token): logged and
    /// kept in the audit.
    #[arg(long, value_name = "TEXT", global = true)]
    reason: Option<String>,
    /// Who asks (default: $USER, else $LOGNAME, else "operator").
    #[arg(long, value_name = "NAME", global = true)]
    who: Option<String>,
    /// An idempotency key: the same key again is answered from the audit, not run twice
    /// (for scripts that retry).
    #[arg(long, value_name = "ID", global = true)]
    request_id: Option<String>,
}

#[derive(Debug, Subcommand)]
enum CtlCmd {
    /// The running session's health, as `vigil status` (exit 0 ready, 1 not ready).
    Status,
    /// Pause an agent: `signal` stops emitting signals (`all`: every agent that can pause).
    Pause {
        /// `signal` or `all` (the others cannot pause; the running vigil says so).
        agent: String,
    },
    /// Resume a paused agent (`signal` or `all`).
    Resume {
        /// `signal` or `all`.
        agent: String,
    },
    /// The circuit breaker: trip (Risk halts, no new orders) or reset (Risk active).
    Breaker {
        #[command(subcommand)]
        action: BreakerCmd,
    },
    /// Cancel every open order at the venue.
    CancelAll,
    /// Close every position: Risk goes reduce-only and sends closing orders.
    Flatten,
    /// Read market data from the named source from now on.
    SwitchSource {
        /// The source's name (as in `vigil ctl status`).
        name: String,
    },
    /// Put a symbol in quarantine: its bars are withheld from the models and no new order
    /// goes out in it, until `vigil ctl release`.
    Quarantine {
        /// The symbol (as in the config).
        symbol: String,
    },
    /// Lift a symbol's quarantine (set by the anomaly rule or by `vigil ctl quarantine`).
    Release {
        /// The symbol.
        symbol: String,
    },
    /// The Regime agent falls back to its default label for every symbol.
    DefaultRegime,
    /// Blue-green: trade the model the session runs beside the traded one (a release's
    /// candidate in shadow, or the model before a switch) from the next bar. `vigil model
    /// promote` and `rollback` do it with the registry's change.
    SwitchModel {
        /// The model, `name@version` (as in `vigil ctl status`).
        model: String,
    },
    /// A step of the model's release in the session: `start` (its `candidate` runs in
    /// shadow from the next bar), `pause` (the candidate stops), `resume` (it starts
    /// afresh), `step` (the canary's next step: 5 → 25 → 50 → 100 % of capital, then
    /// production) or `abort` (final; a canary unwinds); recorded in the registry and
    /// audited.
    ModelRelease {
        /// The model's name.
        model: String,
        /// `start`, `pause`, `resume`, `step` or `abort`.
        step: String,
    },
    /// Stop the session gracefully: the pipeline drains and `vigil run` exits 0.
    Shutdown,
    /// A new bearer token: the running vigil writes it and accepts only it from then on;
    /// with vigil stopped, the token file is rewritten.
    RotateToken,
    /// The audit of control commands, oldest first (read from the store: works with vigil
    /// stopped).
    Audit {
        /// At most this many, the newest (0: all).
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// The store's SQLite file (default: the config's store.url, else its store.path).
        #[arg(long, value_name = "PATH")]
        store: Option<PathBuf>,
    },
    /// Testing only (`[control] fault_injection = true`): make an agent panic.
    #[command(hide = true)]
    InjectPanic {
        /// Which agent.
        agent: String,
        /// How many panics in a row.
        #[arg(long, default_value_t = 1)]
        times: u32,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum BreakerCmd {
    /// Trip it: no new orders, only cancels.
    Trip,
    /// Reset it: trading may resume.
    Reset,
}

pub(crate) fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let mut body = Map::new();
    let (what, command) = match &args.command {
        CtlCmd::Status => return status(&args),
        CtlCmd::RotateToken => return rotate(&args),
        CtlCmd::Audit { limit, store } => return audit(&args, *limit, store.as_ref()),
        CtlCmd::Pause { agent } | CtlCmd::Resume { agent } => {
            body.insert("agent".into(), json!(agent));
            let name = if matches!(args.command, CtlCmd::Pause { .. }) {
                "pause"
            } else {
                "resume"
            };
            (format!("{name} {agent}"), name)
        }
        CtlCmd::Breaker {
            action: BreakerCmd::Trip,
        } => ("breaker trip".to_string(), "breaker_trip"),
        CtlCmd::Breaker {
            action: BreakerCmd::Reset,
        } => ("breaker reset".to_string(), "breaker_reset"),
        CtlCmd::CancelAll => ("cancel-all".to_string(), "cancel_all"),
        CtlCmd::Flatten => ("flatten".to_string(), "flatten"),
        CtlCmd::DefaultRegime => ("default-regime".to_string(), "default_regime"),
        CtlCmd::Shutdown => ("shutdown".to_string(), "shutdown"),
        CtlCmd::SwitchSource { name } => {
            body.insert("source".into(), json!(name));
            (format!("switch-source {name}"), "switch_source")
        }
        CtlCmd::SwitchModel { model } => {
            body.insert("model".into(), json!(model));
            (format!("switch-model {model}"), "switch_model")
        }
        CtlCmd::ModelRelease { model, step } => {
            body.insert("model".into(), json!(model));
            body.insert("step".into(), json!(step));
            (format!("model-release {model} {step}"), "model_release")
        }
        CtlCmd::Quarantine { symbol } => {
            body.insert("symbol".into(), json!(symbol));
            (format!("quarantine {symbol}"), "quarantine")
        }
        CtlCmd::Release { symbol } => {
            body.insert("symbol".into(), json!(symbol));
            (format!("release {symbol}"), "release")
        }
        CtlCmd::InjectPanic { agent, times } => {
            body.insert("agent".into(), json!(agent));
            body.insert("times".into(), json!(times));
            (format!("inject-panic {agent}"), "inject_panic")
        }
    };
    body.insert("command".into(), json!(command));
    send(&args, &what, body)
}

/// `--reason`, required for commands that change state.
fn reason(args: &CtlArgs, what: &str) -> Result<String, String> {
    match &args.reason {
        None => Err(format!(
            "--reason TEXT is required for `vigil ctl {what}`: say why (it is logged and kept \
             in the audit)"
        )),
        Some(r) if r.trim().is_empty() => Err(format!("--reason {r:?}: say why (it is blank)")),
        Some(r) => crate::alerts_cmd::plain("--reason", r).map(|r| r.trim().to_string()),
    }
}

/// The running vigil, or the exit code after saying why there is none to talk to.
fn connect(args: &CtlArgs) -> anyhow::Result<Result<Client, ExitCode>> {
    let Some(cfg) = args.target.config() else {
        return Ok(Err(ExitCode::from(USAGE)));
    };
    let client = match args.target.locate(&cfg)? {
        Located::NotRunning(why) => {
            eprintln!("{why}");
            return Ok(Err(ExitCode::from(NOT_RUNNING)));
        }
        Located::Running(c) => c,
    };
    if let Err(why) = client.token() {
        eprintln!("vigil: {why}");
        return Ok(Err(ExitCode::from(UNAUTHORIZED)));
    }
    Ok(Ok(client))
}

fn status(args: &CtlArgs) -> anyhow::Result<ExitCode> {
    match connect(args)? {
        Ok(client) => crate::status::show(&client, args.json),
        Err(code) => Ok(code),
    }
}

/// Prints an answer: the outcome (or the JSON) on success, the server's reason on refusal.
fn report(
    args: &CtlArgs,
    client: &Client,
    what: &str,
    reply: &crate::control_client::Reply,
) -> ExitCode {
    if reply.status == 401 {
        eprintln!("{}", client.unauthorized(reply));
        return ExitCode::from(UNAUTHORIZED);
    }
    if args.json {
        println!("{}", reply.body.trim());
    }
    if (200..300).contains(&reply.status) {
        if !args.json {
            match reply.json() {
                Ok(v) => {
                    let outcome = escape_controls(v["outcome"].as_str().unwrap_or("done"));
                    match v["audit_seq"].as_i64() {
                        Some(seq) => println!("{what}: {outcome} (audit #{seq})"),
                        None => println!("{what}: {outcome}"),
                    }
                }
                Err(e) => println!("{what}: {e}"),
            }
        }
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "vigil: {what} refused (HTTP {}): {}",
            reply.status,
            escape_controls(&reply.error())
        );
        ExitCode::from(REFUSED)
    }
}

fn send(args: &CtlArgs, what: &str, mut body: Map<String, Value>) -> anyhow::Result<ExitCode> {
    let (reason, who) = match (reason(args, what), who_from(args.who.as_deref())) {
        (Ok(r), Ok(w)) => (r, w),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vigil: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    body.insert("reason".into(), json!(reason));
    body.insert("who".into(), json!(who));
    if let Some(id) = &args.request_id {
        body.insert("request_id".into(), json!(id));
    }
    let client = match connect(args)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match client.post("/v1/commands", &Value::Object(body)) {
        Ok(reply) => Ok(report(args, &client, what, &reply)),
        Err(f) => Ok(f.report()),
    }
}

fn rotate(args: &CtlArgs) -> anyhow::Result<ExitCode> {
    let who = match who_from(args.who.as_deref()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("vigil: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let Some(cfg) = args.target.config() else {
        return Ok(ExitCode::from(USAGE));
    };
    let file = args.target.token_file(&cfg);
    let offline = |why: &str| -> anyhow::Result<ExitCode> {
        vigil_control::replace_token(&file)?;
        eprintln!("{why}");
        println!(
            "rotate-token: wrote a new token to {} (mode 0600); vigil run reads it when it starts",
            file.display()
        );
        Ok(ExitCode::SUCCESS)
    };
    let client = match args.target.locate(&cfg)? {
        Located::NotRunning(why) => return offline(&why),
        Located::Running(c) => c,
    };
    if let Err(why) = client.token() {
        eprintln!("vigil: {why}");
        return Ok(ExitCode::from(UNAUTHORIZED));
    }
    let mut body = json!({ "who": who });
    if let Some(r) = &args.reason {
        body["reason"] = json!(r);
    }
    match client.post("/v1/token/rotate", &body) {
        Ok(reply) => Ok(report(args, &client, "rotate-token", &reply)),
        // A control.addr left behind by a vigil that did not stop cleanly.
        Err(Failure::NotRunning(why)) => offline(&why),
        Err(f) => Ok(f.report()),
    }
}

fn audit(args: &CtlArgs, limit: u32, store: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    let Some(cfg) = args.target.config() else {
        return Ok(ExitCode::from(USAGE));
    };
    let target = StoreTarget::new(store, &cfg);
    if existing_store(&target).is_none() {
        return Ok(ExitCode::from(USAGE));
    }
    let rows = runtime()?.block_on(async {
        let store = target.open().await?;
        let rows = store.control_audit(limit).await;
        store.close().await;
        anyhow::Ok(rows?)
    })?;
    if args.json {
        let mut out = String::new();
        for r in &rows {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
        print!("{out}");
    } else if rows.is_empty() {
        println!("no control commands in the audit ({})", target.name());
    } else {
        print!("{}", audit_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn audit_table(rows: &[ControlAuditEntry]) -> String {
    table(
        &[
            "#", "at", "who", "from", "command", "status", "reason", "answer",
        ],
        rows.iter()
            .map(|r| {
                let asked = &r.asked;
                let command = match &asked.argument {
                    Some(a) => format!("{} {a}", asked.command),
                    None => asked.command.clone(),
                };
                let (status, answer) = match (r.status, &r.outcome, &r.error) {
                    (Some(s), Some(o), _) => (s.to_string(), o.clone()),
                    (Some(s), None, Some(e)) => (s.to_string(), format!("refused: {e}")),
                    (Some(s), None, None) => (s.to_string(), String::new()),
                    (None, ..) => ("-".into(), "no answer recorded".into()),
                };
                vec![
                    r.seq.to_string(),
                    time(asked.at),
                    asked.who.clone(),
                    asked.remote.clone(),
                    command,
                    status,
                    asked.reason.clone(),
                    answer,
                ]
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use vigil_store::NewControlCommand;

    use super::*;

    #[test]
    fn the_audit_table_shows_answers_refusals_and_commands_without_an_answer() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 3, 5, 14, 30, 0)
            .single()
            .expect("time");
        let row = |seq: i64, status: Option<u16>, outcome: Option<&str>, error: Option<&str>| {
            ControlAuditEntry {
                seq,
                asked: NewControlCommand {
                    at,
                    who: "ana".into(),
                    remote: "127.0.0.1:5000".into(),
                    command: "pause".into(),
                    argument: Some("signal".into()),
                    reason: "news".into(),
                    request_id: None,
                },
                finished_at: status.map(|_| at),
                ok: status.map(|s| s == 200),
                status,
                outcome: outcome.map(str::to_string),
                error: error.map(str::to_string),
            }
        };
        let text = audit_table(&[
            row(1, Some(200), Some("the signal agent is paused"), None),
            row(2, Some(400), None, Some("agent data cannot be paused")),
            row(3, None, None, None),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("#  at"), "{text}");
        assert!(
            lines[1].contains("2026-03-05T14:30:00Z  ana  127.0.0.1:5000  pause signal  200")
                && lines[1].ends_with("news    the signal agent is paused"),
            "{text}"
        );
        assert!(
            lines[2].ends_with("refused: agent data cannot be paused"),
            "{text}"
        );
        assert!(
            lines[3].contains(" -  ") && lines[3].ends_with("no answer recorded"),
            "{text}"
        );
    }
}
