//! `vigil fleet`: the fleet of vigil nodes over NATS JetStream (docs/fleet.md).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::control_client::{USAGE, load_config};

/// `vigil fleet` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FleetCmd {
    /// Every node that has published: its lease (up, stopped or lost), its newest line and
    /// how many lines of its log the stream holds.
    ///
    /// Exit codes: 0 every node is up or stopped, 1 a node is lost, 2 NATS or the config
    /// cannot be read.
    Status {
        /// The config whose `[fleet]` names the NATS server and the stream.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A command to one node, several, or every node of the fleet over NATS: `kill` (cancel
    /// every open order, then close every position, reduce-only), `trip` (the breaker:
    /// halted, nothing but cancels go out, positions stay), `reset`, `cancel-all` or
    /// `flatten`. Each node checks its own secret (`[fleet] command_tokens_dir/<node>.token`),
    /// audits and logs each step; a node that does not answer is reported down. Every
    /// outcome is logged in the folder `fleet-commands` of this config's `[log] dir`.
    ///
    /// Exit codes: 0 every node carried it out, 1 a node was down, stopped, without a token
    /// or refused, 2 usage or NATS errors.
    Command(CommandArgs),
    /// A rolling release: the model's release (each node's `candidate`, as `vigil model
    /// release start` starts it) on one node at a time, in the order given. A node's turn
    /// comes when it is healthy (its lease up; `vigil fleet watch` reads it ready, trading
    /// `active`, no High or Critical alert); its release runs there through the shadow run
    /// and every canary step, judged by the node; the next node starts once its canary
    /// completed and it is healthy still. The first failure stops the rollout: a node
    /// unhealthy, a start refused, a canary or a release aborted, a node lost, or no verdict
    /// within --timeout-s. Each node's outcome is logged in `fleet-commands` of `[log] dir`.
    ///
    /// Exit codes: 0 every node released, 1 the rollout stopped at a node, 2 usage or NATS
    /// errors.
    Release(ReleaseArgs),
    /// The fleet's central monitor: reads every node's lines from the stream with a durable
    /// consumer, checks each node's hash chain and sequence, watches the leases, and alerts
    /// through the config's `[alerts]` channels when a node is lost, its lines go missing,
    /// its chain breaks or its stream stalls; one alert for an alert many nodes fire. Writes
    /// its own log in `[log] dir`; runs until SIGINT or SIGTERM.
    ///
    /// Exit codes: 0 stopped by a signal, 2 the config, the log or the channels cannot be
    /// set up.
    Watch {
        /// The monitor's config: `[fleet]` (url, stream; `node` names the monitor), `[log]`,
        /// `[alerts]`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The durable consumer's name (default `watch-<[fleet] node>`): a monitor started
        /// again under the same name goes on where it stopped.
        #[arg(long)]
        consumer: Option<String>,
    },
}

pub(crate) fn run(cmd: FleetCmd) -> anyhow::Result<ExitCode> {
    let (config, json) = match cmd {
        FleetCmd::Status { config, json } => (config, json),
        FleetCmd::Watch { config, consumer } => return watch(config, consumer),
        FleetCmd::Command(args) => return command_nodes(args),
        FleetCmd::Release(args) => return release_nodes(args),
    };
    let Some(cfg) = load_config(config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    let Some(fleet) = cfg.fleet else {
        eprintln!(
            "vigil fleet status: the config has no [fleet] section (url, node): see docs/fleet.md"
        );
        return Ok(ExitCode::from(USAGE));
    };
    let now = vigil_core::Clock::now(&vigil_core::SystemClock);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let nodes = match rt.block_on(vigil_fleet::status::read(&fleet.url, &fleet.stream, now)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("vigil fleet status: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    } else {
        println!(
            "{:<20} {:<8} {:>10} {:>8} {:>10}  {:<6} {:<12} {:>12} {:>6} {:>8}  {:<10} newest line",
            "node",
            "state",
            "lease age",
            "lines",
            "seq",
            "ready",
            "trading",
            "p&l",
            "alerts",
            "lag",
            "chain"
        );
        for n in &nodes {
            let v = n.view.as_ref();
            let chain = v.map_or("unwatched".to_string(), |v| match (v.missing, v.broken) {
                (0, 0) => format!("ok@{}", v.seq.map_or("—".into(), |s| s.to_string())),
                (m, 0) => format!("{m} missing"),
                (_, b) => format!("{b} BROKEN"),
            });
            println!(
                "{:<20} {:<8} {:>9.1}s {:>8} {:>10}  {:<6} {:<12} {:>12} {:>6} {:>8}  {:<10} {} {}",
                n.node,
                n.state,
                n.lease_age_s,
                n.lines,
                n.last_seq.map_or("—".into(), |s| s.to_string()),
                v.and_then(|v| v.ready)
                    .map_or("—", |r| if r { "yes" } else { "no" }),
                v.and_then(|v| v.trading_state.clone())
                    .unwrap_or_else(|| "—".into()),
                v.and_then(|v| v.pnl())
                    .map_or("—".into(), |p| p.round_dp(2).to_string()),
                v.map_or("—".into(), |v| v.alerts.len().to_string()),
                v.and_then(|v| v.lag_s)
                    .map_or("—".into(), |l| format!("{l:.2}s")),
                chain,
                n.last_at.as_deref().unwrap_or(""),
                n.last_event.as_deref().unwrap_or(""),
            );
        }
        if nodes.is_empty() {
            println!("no node has a lease yet");
        }
    }
    Ok(if nodes.iter().any(|n| n.state == "lost") {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn watch(config: Option<PathBuf>, consumer: Option<String>) -> anyhow::Result<ExitCode> {
    let Some(cfg) = load_config(config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    match vigil_session::fleet_watch(&cfg, consumer) {
        Ok(summary) => {
            println!(
                "fleet watch stopped: {} line(s) checked; nodes: {}; log in {}",
                summary.lines,
                summary
                    .nodes
                    .iter()
                    .map(|(n, s)| format!("{n} ({s})"))
                    .collect::<Vec<_>>()
                    .join(", "),
                summary.log_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("vigil fleet watch: {e}");
            Ok(ExitCode::from(USAGE))
        }
    }
}

/// The arguments of `vigil fleet command`.
#[derive(Debug, clap::Args)]
pub(crate) struct CommandArgs {
    /// kill, trip, reset, cancel-all or flatten.
    command: String,
    /// A node to send it to (repeat for several).
    #[arg(long = "node", required_unless_present = "all")]
    nodes: Vec<String>,
    /// Every node with a lease (those that stopped are reported, not sent to).
    #[arg(long, conflicts_with = "nodes")]
    all: bool,
    /// Why (kept in every node's audit and log).
    #[arg(long)]
    reason: String,
    /// Who asks (default: $USER).
    #[arg(long)]
    who: Option<String>,
    /// The commander's config: `[fleet]` (url, stream, command_tokens_dir), `[log]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What came of the command at one node, as printed and logged.
#[derive(serde::Serialize)]
struct Sent {
    node: String,
    outcome: &'static str,
    detail: String,
}

fn command_nodes(a: CommandArgs) -> anyhow::Result<ExitCode> {
    use vigil_fleet::commands::{self, FleetCommand, Outcome};
    if a.command == "release" {
        eprintln!(
            "vigil fleet command: a release goes node by node: `vigil fleet release MODEL --node …`"
        );
        return Ok(ExitCode::from(USAGE));
    }
    if let Err(e) = commands::steps(&a.command) {
        eprintln!("vigil fleet command: {e}");
        return Ok(ExitCode::from(USAGE));
    }
    let Some(Commander { cfg, fleet, tokens }) =
        commander("vigil fleet command", &a.nodes, a.config.as_deref())
    else {
        return Ok(ExitCode::from(USAGE));
    };
    let who = who_asks(a.who);
    let wall = vigil_core::SystemClock;
    let now = vigil_core::Clock::now(&wall);
    let request_id = format!("fleet-{}-{}", now.timestamp_micros(), std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sent: Vec<Sent> = match rt.block_on(async {
        let known = vigil_fleet::status::read(&fleet.url, &fleet.stream, now).await?;
        let targets: Vec<(String, &'static str)> = if a.all {
            known.iter().map(|n| (n.node.clone(), n.state)).collect()
        } else {
            a.nodes
                .iter()
                .map(|n| {
                    let state = known
                        .iter()
                        .find(|k| &k.node == n)
                        .map_or("unknown", |k| k.state);
                    (n.clone(), state)
                })
                .collect()
        };
        let client = commands::client(&fleet.url, "vigil fleet command").await?;
        let mut out = Vec::new();
        for (node, state) in targets {
            if state == "stopped" {
                out.push(Sent {
                    node,
                    outcome: "stopped",
                    detail: "the node stopped and said so: not sent".into(),
                });
                continue;
            }
            let token_file = tokens.join(format!("{node}.token"));
            let token = match vigil_session::read_secret("fleet.command_tokens_dir", &token_file) {
                Ok(t) => t,
                Err(e) => {
                    out.push(Sent {
                        node,
                        outcome: "no_token",
                        detail: e.to_string(),
                    });
                    continue;
                }
            };
            let cmd = FleetCommand {
                command: a.command.clone(),
                argument: None,
                who: who.clone(),
                reason: a.reason.clone(),
                request_id: request_id.clone(),
                token,
            };
            let timeout = std::time::Duration::from_secs(if state == "lost" { 2 } else { 10 });
            out.push(match commands::send(&client, &node, &cmd, timeout).await {
                Outcome::Answered(r) if r.ok => Sent {
                    node,
                    outcome: "ok",
                    detail: r.steps.join("; "),
                },
                Outcome::Answered(r) => Sent {
                    node,
                    outcome: "refused",
                    detail: r.error.unwrap_or_else(|| r.steps.join("; ")),
                },
                Outcome::Down { why } => Sent {
                    node,
                    outcome: "down",
                    detail: format!("{why} (lease {state})"),
                },
            });
        }
        Ok::<_, String>(out)
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil fleet command: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    // The commander's own record: one line per node in its log.
    let events = sent
        .iter()
        .map(|s| {
            vigil_log::LogEvent::new(now, "vigil", vigil_log::Event::FleetCommandSent)
                .level(if s.outcome == "ok" {
                    vigil_core::Level::Warn
                } else {
                    vigil_core::Level::Error
                })
                .with("node", s.node.clone())
                .with("command", a.command.clone())
                .with("who", who.clone())
                .with("reason", a.reason.clone())
                .with("request_id", request_id.clone())
                .with("outcome", s.outcome)
                .with("detail", s.detail.clone())
        })
        .collect();
    record("vigil fleet command", &cfg, events);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&sent)?);
    } else {
        for s in &sent {
            println!("{:<20} {:<9} {}", s.node, s.outcome, s.detail);
        }
        if sent.is_empty() {
            println!("no node to send it to");
        }
    }
    Ok(
        if sent.iter().all(|s| s.outcome == "ok") && !sent.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

/// The commander's side of a fleet: its config, `[fleet]`, and the folder of the nodes'
/// tokens; `None` (said on stderr as `what`) when a `--node` name or the config will not do.
struct Commander {
    cfg: vigil_config::VigilConfig,
    fleet: vigil_config::FleetConfig,
    tokens: PathBuf,
}

fn commander(what: &str, nodes: &[String], config: Option<&std::path::Path>) -> Option<Commander> {
    // A node's name is a subject token and a file name here: nothing else gets through.
    if let Some(bad) = nodes.iter().find(|n| {
        n.is_empty()
            || n.len() > 64
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        eprintln!("{what}: --node {bad:?}: a node's name is 1 to 64 letters, digits, '-' or '_'");
        return None;
    }
    let cfg = load_config(config)?;
    let Some(fleet) = cfg.fleet.clone() else {
        eprintln!("{what}: the config has no [fleet] section: see docs/fleet.md");
        return None;
    };
    let Some(tokens) = fleet.command_tokens_dir.clone() else {
        eprintln!(
            "{what}: [fleet] command_tokens_dir is not set: the folder of each node's <node>.token"
        );
        return None;
    };
    Some(Commander { cfg, fleet, tokens })
}

fn who_asks(who: Option<String>) -> String {
    who.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into())
}

/// Appends the commander's lines to its own log: `fleet-commands` in `[log] dir` (a folder of
/// its own: a `vigil fleet watch` on the same config writes `[log] dir`, and two writers on
/// one folder would fork its chain).
fn record(what: &str, cfg: &vigil_config::VigilConfig, events: Vec<vigil_log::LogEvent>) {
    let mut record = cfg.clone();
    record.log.dir = cfg.log.dir.join("fleet-commands");
    if let Err(e) = vigil_session::append_to_log(&record, events) {
        eprintln!(
            "{what}: ERROR the outcomes were not recorded in {}: {e}",
            record.log.dir.display()
        );
    }
}

/// The arguments of `vigil fleet release`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReleaseArgs {
    /// The model: each node starts the release of its `candidate` (its newest staging
    /// version, registered on that node).
    model: String,
    /// A node, in the order of the rollout (repeat for each).
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    /// Why (kept in every node's audit and log).
    #[arg(long)]
    reason: String,
    /// Who asks (default: $USER).
    #[arg(long)]
    who: Option<String>,
    /// How long one node's release may take, from its start to its canary's last step, in
    /// seconds (a canary over daily sessions takes days: run the rollout where it can wait).
    #[arg(long, default_value_t = 86_400 * 30)]
    timeout_s: u64,
    /// The commander's config: `[fleet]` (url, stream, command_tokens_dir), `[log]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn release_nodes(a: ReleaseArgs) -> anyhow::Result<ExitCode> {
    const WHAT: &str = "vigil fleet release";
    let Some(Commander { cfg, fleet, tokens }) = commander(WHAT, &a.nodes, a.config.as_deref())
    else {
        return Ok(ExitCode::from(USAGE));
    };
    let wall = vigil_core::SystemClock;
    let now = || vigil_core::Clock::now(&wall);
    let plan = vigil_fleet::rollout::Plan {
        url: fleet.url.clone(),
        stream: fleet.stream.clone(),
        model: a.model.clone(),
        nodes: a.nodes.clone(),
        who: who_asks(a.who),
        reason: a.reason.clone(),
        request_id: format!(
            "release-{}-{}",
            now().timestamp_micros(),
            std::process::id()
        ),
        per_node: std::time::Duration::from_secs(a.timeout_s),
    };
    let token = |node: &str| {
        vigil_session::read_secret(
            "fleet.command_tokens_dir",
            &tokens.join(format!("{node}.token")),
        )
        .map_err(|e| e.to_string())
    };
    let quiet = a.json;
    let said = |line: &str| {
        if !quiet {
            eprintln!("vigil fleet release: {line}");
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = match rt.block_on(vigil_fleet::rollout::run(&plan, token, now, said)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{WHAT}: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let events = results
        .iter()
        .map(|r| {
            vigil_log::LogEvent::new(now(), "vigil", vigil_log::Event::FleetReleaseStep)
                .level(if r.outcome == "released" {
                    vigil_core::Level::Warn
                } else {
                    vigil_core::Level::Error
                })
                .with("node", r.node.clone())
                .with("model", plan.model.clone())
                .with("who", plan.who.clone())
                .with("reason", plan.reason.clone())
                .with("request_id", plan.request_id.clone())
                .with("outcome", r.outcome)
                .with("detail", r.detail.clone())
                .with("took_s", r.took_s.unwrap_or(0.0))
        })
        .collect();
    record(WHAT, &cfg, events);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!(
                "{:<20} {:<12} {:>8} {}",
                r.node,
                r.outcome,
                r.took_s.map_or("—".into(), |t| format!("{t:.1}s")),
                r.detail
            );
        }
    }
    Ok(if results.iter().all(|r| r.outcome == "released") {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
