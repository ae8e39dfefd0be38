//! `vigil model register | list | show | promote | retire | rollback`: the model registry
//! in the store (`[store]`). The rules are `vigil_deploy::registry`'s; each change is
//! applied whole in one transaction with its audit row, then written to the hash-chained
//! log. Exit codes: 0 done, 1 the gate failed (register), 2 refused (the reason printed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigil_config::VigilConfig;
use vigil_deploy::registry::{self, Actor, GateRecord, NewVersion, Registry};
use vigil_log::{Event, LogEvent};
use vigil_store::{ModelEntry, RegistryWrite, SharedStore};

use crate::alerts_cmd::{plain, who_from};
use crate::control_client::{USAGE, load_config, with_store};

/// Who changes the registry, why, and which store.
#[derive(Debug, clap::Args)]
pub(crate) struct ChangeArgs {
    /// Config (its `[store]` holds the registry; its `[log]` gets the change).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Who makes the change (default: $USER, else $LOGNAME, else "operator").
    #[arg(long)]
    pub(crate) who: Option<String>,
    /// Why (required: the audit keeps it).
    #[arg(long)]
    pub(crate) reason: String,
}

/// `vigil model register` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct RegisterArgs {
    /// The model's directory (with its `model.toml`).
    pub(crate) dir: PathBuf,
    /// The bars the gate judges it on (required unless --skip-gate).
    #[arg(long, required_unless_present = "skip_gate")]
    pub(crate) data: Option<PathBuf>,
    /// The gate's thresholds (default: the built-in ones, as in config/gate.toml).
    #[arg(long)]
    pub(crate) gate: Option<PathBuf>,
    /// The instrument trades around the clock (the gate's annualisation).
    #[arg(long)]
    pub(crate) all_day: bool,
    /// Register without running the gate; recorded in the entry and the audit.
    #[arg(long)]
    pub(crate) skip_gate: bool,
    /// The version this one follows (default: the one in production).
    #[arg(long)]
    pub(crate) parent: Option<String>,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

fn refuse(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("vigil model: {e}");
    ExitCode::from(USAGE)
}

/// Model `name`'s registry as the store holds it.
pub(crate) async fn read(store: &SharedStore, name: &str) -> Result<Registry, String> {
    Registry::read(&**store, name)
        .await
        .map_err(|e| e.to_string())
}

/// Plans a change on the registry as it stands and applies it, then logs it as `event`.
pub(crate) fn change(
    cfg: &VigilConfig,
    name: &str,
    event: Event,
    plan: impl FnOnce(&Registry) -> Result<RegistryWrite, registry::RegistryError>,
) -> Result<RegistryWrite, String> {
    let write = with_store(cfg, async |store| {
        let reg = read(store, name).await?;
        let write = plan(&reg).map_err(|e| e.to_string())?;
        store
            .registry_apply(&write)
            .await
            .map_err(|e| e.to_string())?;
        Ok(write)
    })?;
    let a = &write.audit;
    let mut line = LogEvent::new(a.at, "vigil_model", event)
        .with("model", a.name.clone())
        .with("version", a.version.clone())
        .with("by", a.actor.clone())
        .with("reason", a.reason.clone())
        .with("detail", a.detail.clone());
    if let Some(e) = &write.insert {
        line = line
            .with("artifact_sha256", e.artifact_sha256.clone())
            .with("gate", if e.gate_skipped { "skipped" } else { "passed" })
            .with("parent", e.parent_version.clone().unwrap_or_default());
    }
    vigil_session::append_to_log(cfg, vec![line]).map_err(|e| {
        format!(
            "the change was made (see `vigil model show {name}`), but it could not be written \
             to the log {}: {e}",
            cfg.log.dir.display()
        )
    })?;
    Ok(write)
}

pub(crate) fn actor<'a>(args: &'a ChangeArgs, who: &'a str) -> Result<Actor<'a>, String> {
    plain("--reason", &args.reason)?;
    Ok(Actor {
        who,
        reason: &args.reason,
        at: vigil_core::Clock::now(&vigil_core::SystemClock),
    })
}

/// `vigil model register`.
pub(crate) fn register(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let who = match who_from(args.change.who.as_deref()) {
        Ok(w) => w,
        Err(e) => return Ok(refuse(&e)),
    };
    let actor = match actor(&args.change, &who) {
        Ok(a) => a,
        Err(e) => return Ok(refuse(&e)),
    };
    let dir = match std::path::absolute(&args.dir) {
        Ok(d) => d,
        Err(e) => return Ok(refuse(&format!("{}: {e}", args.dir.display()))),
    };
    let (cfg, artifact, gate, config_sha256) = if args.skip_gate {
        let Some(cfg) = load_config(args.change.config.as_deref()) else {
            return Ok(ExitCode::from(USAGE));
        };
        let artifact = match vigil_model::open(&dir) {
            Ok((a, _)) => a,
            Err(e) => return Ok(refuse(&e)),
        };
        let config_sha256 = match config_hash(args.change.config.as_deref()) {
            Ok(h) => h,
            Err(e) => return Ok(refuse(&e)),
        };
        (cfg, artifact, GateRecord::Skipped, config_sha256)
    } else {
        let Some(data) = args.data.clone() else {
            return Ok(refuse(
                &"--data is required to run the gate (or --skip-gate)",
            ));
        };
        let gate_args = crate::gate_cmd::GateArgs {
            gate: args.gate.clone(),
            model: dir.clone(),
            data,
            config: args.change.config.clone(),
            all_day: args.all_day,
            out: None,
            report: None,
            no_log: false,
        };
        let verdict = match crate::gate_cmd::judge_model(&gate_args)? {
            Ok(v) => v,
            Err(code) => return Ok(code),
        };
        if !verdict.passed {
            eprintln!(
                "vigil model register: {} not registered: the gate failed (the result is in {})",
                verdict.model.label(),
                verdict.result.display()
            );
            return Ok(ExitCode::from(1));
        }
        let gate = GateRecord::Passed {
            checks: verdict.checks,
            result_sha256: verdict.result_sha256,
        };
        (verdict.cfg, verdict.model, gate, verdict.config_sha256)
    };
    // What it sees and does on the gate's data: the reference drift is watched against.
    let drift_baseline = match &args.data {
        Some(data) => match drift_baseline(&dir, data, &cfg.regime) {
            Ok(b) => Some(b),
            Err(e) => return Ok(refuse(&e)),
        },
        None => None,
    };
    // A copy of its training data, named by its hash, so that it can be trained again.
    let training_snapshot = match training_snapshot(&artifact, &dir, &cfg.store.snapshots) {
        Ok(Some(path)) => Some(path),
        Ok(None) => {
            eprintln!(
                "vigil model register: {}: its training data was not found where the manifest \
                 says (relative to the model's folder or one above it): no copy kept; the \
                 manifest's SHA-256 is the record",
                artifact.label()
            );
            None
        }
        Err(e) => return Ok(refuse(&e)),
    };
    let new = NewVersion {
        artifact: &artifact,
        artifact_path: dir.display().to_string(),
        config_sha256,
        gate,
        parent: args.parent.clone(),
        drift_baseline,
        training_snapshot,
    };
    let name = artifact.manifest.name.clone();
    match change(&cfg, &name, Event::ModelRegistered, |reg| {
        registry::register(reg, new, &actor)
    }) {
        Ok(w) => {
            let version = w.insert.map(|e| e.version).unwrap_or_default();
            println!(
                "vigil model register: {name} {version} registered (staging, candidate) by {who}; \
                 promote it with `vigil model promote {name} {version} --reason …`"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(refuse(&e)),
    }
}

/// The SHA-256 of the config file, or of the embedded default.
fn config_hash(path: Option<&Path>) -> Result<String, String> {
    use sha2::Digest as _;
    match path {
        Some(p) => crate::backtest_cmd::sha256_file(p),
        None => Ok(hex::encode(sha2::Sha256::digest(
            vigil_config::EMBEDDED_DEFAULT.as_bytes(),
        ))),
    }
}

/// Copies the training data the manifest of `artifact` names into `snapshots`, named by its
/// SHA-256, once (a copy already there is checked, not rewritten); returns its path.
/// `Ok(None)`: no training data named, or not found (looked for from the model's folder up).
///
/// # Errors
/// The file found is not the data trained on (another SHA-256), or cannot be read or copied.
fn training_snapshot(
    artifact: &vigil_model::Artifact,
    dir: &Path,
    snapshots: &Path,
) -> Result<Option<String>, String> {
    let Some(training) = &artifact.manifest.training else {
        return Ok(None);
    };
    let Some(data) = &training.data else {
        return Ok(None);
    };
    let Some(found) = dir.ancestors().map(|a| a.join(data)).find(|p| p.is_file()) else {
        return Ok(None);
    };
    let actual = crate::backtest_cmd::sha256_file(&found)?;
    if actual != training.data_sha256 {
        return Err(format!(
            "{}: the training data {} is not the data it was trained on: its SHA-256 is {actual}, \
             the manifest's {} (retrain, or name the data it was trained on)",
            artifact.label(),
            found.display(),
            training.data_sha256
        ));
    }
    let copy = snapshots.join(&actual);
    if copy.is_file() {
        let kept = crate::backtest_cmd::sha256_file(&copy)?;
        if kept != actual {
            return Err(format!(
                "the snapshot {} is damaged: its SHA-256 is {kept}; move it aside and register \
                 again",
                copy.display()
            ));
        }
    } else {
        std::fs::create_dir_all(snapshots)
            .map_err(|e| format!("creating {}: {e}", snapshots.display()))?;
        // Written beside it and renamed: a crash leaves no half copy under the hash.
        let partial = snapshots.join(format!("{actual}.partial"));
        std::fs::copy(&found, &partial)
            .map_err(|e| format!("copying {} to {}: {e}", found.display(), partial.display()))?;
        std::fs::rename(&partial, &copy)
            .map_err(|e| format!("renaming {} to {}: {e}", partial.display(), copy.display()))?;
    }
    let copy = std::path::absolute(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(Some(copy.display().to_string()))
}

/// The drift baseline of the model in `dir` over the bars in `data` (JSON).
fn drift_baseline(
    dir: &Path,
    data: &Path,
    regime: &vigil_config::RegimeConfig,
) -> Result<String, String> {
    let (artifact, graph) = vigil_model::open(dir).map_err(|e| e.to_string())?;
    let bars = vigil_backtest::vectorized::Bars::read(data).map_err(|e| e.to_string())?;
    let regimes = vigil_backtest::vectorized::regimes(&bars.closes, regime);
    let baseline = vigil_deploy::drift::baseline(&artifact, graph.as_ref(), &bars.closes, &regimes)
        .map_err(|e| format!("{}: the drift baseline: {e}", dir.display()))?;
    serde_json::to_string(&baseline).map_err(|e| format!("the drift baseline: {e}"))
}

/// Which change `vigil model promote | retire | rollback` makes.
pub(crate) enum Change {
    Promote(String),
    Retire(String),
    Rollback,
}

/// `vigil model promote | retire | rollback`.
pub(crate) fn apply(name: &str, what: Change, args: &ChangeArgs) -> ExitCode {
    let who = match who_from(args.who.as_deref()) {
        Ok(w) => w,
        Err(e) => return refuse(&e),
    };
    let actor = match actor(args, &who) {
        Ok(a) => a,
        Err(e) => return refuse(&e),
    };
    let Some(cfg) = load_config(args.config.as_deref()) else {
        return ExitCode::from(USAGE);
    };
    let (event, done) = match &what {
        Change::Promote(_) => (Event::ModelPromoted, "promoted"),
        Change::Retire(_) => (Event::ModelRetired, "retired"),
        Change::Rollback => (Event::ModelRolledBack, "rolled back"),
    };
    let result = change(&cfg, name, event, |reg| match &what {
        Change::Promote(v) => registry::promote(reg, v, &actor),
        Change::Retire(v) => registry::retire(reg, v, &actor),
        Change::Rollback => registry::rollback(reg, &actor),
    });
    match result {
        Ok(w) => {
            println!(
                "vigil model: {name} {} {done} by {who}: {}",
                w.audit.version, w.audit.detail
            );
            if matches!(what, Change::Promote(_) | Change::Rollback) {
                let label = format!("{name}@{}", registry::semver_of(&w.audit.version));
                switch_running(args, &cfg, &label, &who);
            }
            ExitCode::SUCCESS
        }
        Err(e) => refuse(&e),
    }
}

/// Blue-green: asks the session running on `cfg`, if any, to trade `label` from its next
/// bar (the registry's change is made either way; what the session answered is printed).
fn switch_running(args: &ChangeArgs, cfg: &VigilConfig, label: &str, who: &str) {
    use crate::control_client::{Answered, ask_running_session};
    let body = serde_json::json!({
        "command": "switch_model",
        "model": label,
        "who": who,
        "reason": args.reason,
    });
    match ask_running_session(args.config.clone(), cfg, &body) {
        Answered::NotRunning => {
            println!("vigil model: no session is running; {label} trades from the next start");
        }
        Answered::Done(outcome) => println!("vigil model: the running session: {outcome}"),
        Answered::Refused(status, error) => {
            eprintln!("vigil model: the running session did not switch (HTTP {status}): {error}")
        }
        Answered::Unreachable(why) => eprintln!(
            "vigil model: the running session could not be asked ({why}); it trades {label} \
             from its next start"
        ),
    }
}

fn row(e: &ModelEntry, aliases: &[&str]) -> String {
    format!(
        "{:<14} {:<20} {:<10} {:<22} {:<12} {:<9} {}",
        e.name,
        e.version,
        e.status.as_str(),
        aliases.join(","),
        e.created_by,
        if e.gate_skipped { "skipped" } else { "passed" },
        e.created_at.format("%Y-%m-%d %H:%M")
    )
}

const HEADER: &str = "model          version              status     aliases                by           gate      registered (UTC)";

/// `vigil model list`.
pub(crate) fn list(name: Option<&str>, config: Option<&Path>, json: bool) -> ExitCode {
    let Some(cfg) = load_config(config) else {
        return ExitCode::from(USAGE);
    };
    let listed = with_store(&cfg, async |store| {
        let entries = store
            .registry_entries(name)
            .await
            .map_err(|e| e.to_string())?;
        let mut names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        names.dedup();
        let mut regs = Vec::new();
        for n in names {
            if !regs.iter().any(|r: &Registry| r.name == n) {
                regs.push(read(store, &n).await?);
            }
        }
        Ok(regs)
    });
    let regs = match listed {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    if json {
        let all: Vec<serde_json::Value> = regs
            .iter()
            .flat_map(|r| {
                r.entries
                    .iter()
                    .map(|e| serde_json::json!({"entry": e, "aliases": r.aliases_of(&e.version)}))
            })
            .collect();
        println!("{}", serde_json::Value::Array(all));
        return ExitCode::SUCCESS;
    }
    if regs.is_empty() {
        println!(
            "no model registered{}",
            name.map(|n| format!(" as {n}")).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    println!("{HEADER}");
    for r in &regs {
        for e in &r.entries {
            println!("{}", row(e, &r.aliases_of(&e.version)));
        }
    }
    ExitCode::SUCCESS
}

/// `vigil model show`: one version (or alias) with its provenance and the model's audit.
pub(crate) fn show(name: &str, selector: &str, config: Option<&Path>, json: bool) -> ExitCode {
    let Some(cfg) = load_config(config) else {
        return ExitCode::from(USAGE);
    };
    let read_all = with_store(&cfg, async |store| {
        let reg = read(store, name).await?;
        let audit = store
            .registry_audit(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok((reg, audit))
    });
    let (reg, audit) = match read_all {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    let e = match reg.resolve(selector) {
        Ok(e) => e,
        Err(e) => return refuse(&e),
    };
    let audit: Vec<_> = audit.iter().filter(|a| a.version == e.version).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({"entry": e, "aliases": reg.aliases_of(&e.version), "audit": audit})
        );
        return ExitCode::SUCCESS;
    }
    let none = || "-".to_string();
    for (k, v) in [
        ("model", e.name.clone()),
        ("version", e.version.clone()),
        ("status", e.status.as_str().to_string()),
        ("aliases", reg.aliases_of(&e.version).join(", ")),
        ("registered", e.created_at.to_rfc3339()),
        ("by", e.created_by.clone()),
        ("artifact", e.artifact_path.clone()),
        ("artifact sha256", e.artifact_sha256.clone()),
        ("config sha256", e.config_sha256.clone()),
        (
            "training data sha256",
            e.training_data_sha256.clone().unwrap_or_else(none),
        ),
        (
            "training data copy",
            e.training_snapshot.clone().unwrap_or_else(none),
        ),
        ("parent", e.parent_version.clone().unwrap_or_else(none)),
        (
            "gate",
            if e.gate_skipped {
                "skipped (see the audit for why)".into()
            } else {
                format!(
                    "passed; result sha256 {}",
                    e.gate_result_sha256.clone().unwrap_or_else(none)
                )
            },
        ),
    ] {
        println!("{k:<21} {v}");
    }
    println!("audit:");
    for a in audit {
        println!(
            "  {} {:<9} by {}: {} ({})",
            a.at.format("%Y-%m-%d %H:%M:%S"),
            a.action,
            a.actor,
            a.reason,
            a.detail
        );
    }
    ExitCode::SUCCESS
}
