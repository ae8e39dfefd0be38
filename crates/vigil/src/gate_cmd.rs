//! `vigil gate`: both backtest layers of a model on a bars file, judged against the
//! thresholds of a gate file. Prints a table of pass / fail per check and layer, stores the
//! result (with the hashes of the model, the data and the config, and vigil's version) as
//! a JSON artifact, and records `gate_passed` or `gate_failed` in the hash-chained log.
//! Exit codes: 0 every check passed, 1 a check failed, 2 the gate could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use sha2::{Digest as _, Sha256};
use vigil_backtest::gate::{Gate, judge};
use vigil_log::{Event, LogEvent};

use crate::backtest_cmd::{Layer, RunArgs, document, evaluate, load, refuse, sha256_file};

/// `vigil gate` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct GateArgs {
    /// The gate's thresholds (default: the built-in ones, as in config/gate.toml).
    #[arg(long)]
    pub(crate) gate: Option<PathBuf>,
    /// The model: a directory with its `model.toml`.
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// A bars CSV file.
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Config (costs, sizing, calendar, and the log the verdict is written to).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The instrument trades around the clock.
    #[arg(long)]
    pub(crate) all_day: bool,
    /// Where to store the JSON result (default: `gate/<model>@<version>.json`).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Write a self-contained HTML report (equity, drawdown, folds, the gate table).
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// Do not write the verdict to the log.
    #[arg(long)]
    pub(crate) no_log: bool,
}

pub(crate) fn run_cmd(args: GateArgs) -> anyhow::Result<ExitCode> {
    Ok(match judge_model(&args)? {
        Ok(v) if v.passed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(code) => code,
    })
}

/// What a gate run decided, for `vigil gate` and `vigil model register`.
pub(crate) struct Verdict {
    /// Every check of both layers passed.
    pub(crate) passed: bool,
    /// The checks, as JSON.
    pub(crate) checks: String,
    /// Where the result is stored, and the SHA-256 of what was stored.
    pub(crate) result: PathBuf,
    pub(crate) result_sha256: String,
    /// The SHA-256 of the config.
    pub(crate) config_sha256: String,
    /// The config, and the model judged.
    pub(crate) cfg: vigil_config::VigilConfig,
    pub(crate) model: vigil_model::Artifact,
}

/// Runs the gate as `vigil gate` does (the table printed, the result stored, the verdict
/// logged); `Err` is the exit code of a gate that could not run, the reason printed.
pub(crate) fn judge_model(args: &GateArgs) -> anyhow::Result<Result<Verdict, ExitCode>> {
    let refuse = |command: &str, e: &str| Err(refuse(command, e));
    let gate = match &args.gate {
        Some(path) => match Gate::load(path) {
            Ok(g) => g,
            Err(e) => return Ok(refuse("gate", &e.to_string())),
        },
        None => Gate::default(),
    };
    let run = RunArgs {
        model: args.model.clone(),
        data: args.data.clone(),
        config: args.config.clone(),
        all_day: args.all_day,
        min_days: gate.min_days,
        min_trades: gate.min_trades,
        split: gate.split,
        folds: gate.folds,
    };
    let loaded = match load(&run, false, "gate") {
        Ok(l) => l,
        Err(e) => return Ok(refuse("gate", &e)),
    };
    let layers = match evaluate(&loaded, Layer::Both, None) {
        Ok(l) => l,
        Err(e) => return Ok(refuse("gate", &e)),
    };
    let checks = judge(&gate, &layers);
    let passed = checks.iter().all(|c| c.passed);

    // The hashes: the model (its content address), the data, the config.
    let model_sha256 = loaded.model.sha256.clone();
    let data_sha256 = loaded.data_sha256.clone();
    let config_sha256 = match &args.config {
        Some(p) => match sha256_file(p) {
            Ok(h) => h,
            Err(e) => return Ok(refuse("gate", &e)),
        },
        None => hex::encode(Sha256::digest(vigil_config::EMBEDDED_DEFAULT.as_bytes())),
    };
    let vigil_version = env!("CARGO_PKG_VERSION");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("gate").join(format!("{}.json", loaded.model.label())));
    let artifact = json!({
        "verdict": if passed { "passed" } else { "failed" },
        "model": loaded.model.label(),
        "model_sha256": model_sha256,
        "data": args.data.display().to_string(),
        "data_sha256": data_sha256,
        "config": args.config.as_ref().map_or("embedded default".into(), |p| p.display().to_string()),
        "config_sha256": config_sha256,
        "vigil_version": vigil_version,
        "gate": gate,
        "checks": checks,
        "backtest": document(&loaded, &args.data, &layers),
    });
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", parent.display()))?;
    }
    let stored = serde_json::to_string_pretty(&artifact)?;
    std::fs::write(&out, &stored)
        .map_err(|e| anyhow::anyhow!("{}: cannot write the gate result: {e}", out.display()))?;
    let result_sha256 = hex::encode(Sha256::digest(stored.as_bytes()));

    // The table.
    println!(
        "vigil gate: {} on {} — {}",
        loaded.model.label(),
        args.data.display(),
        if passed { "PASSED" } else { "FAILED" }
    );
    println!(
        "  {:<11} {:<17} {:<10} {:<40} result",
        "layer", "check", "threshold", "value"
    );
    for c in &checks {
        println!(
            "  {:<11} {:<17} {:<10} {:<40} {}",
            c.layer,
            c.check,
            c.threshold,
            c.value,
            if c.passed { "pass" } else { "FAIL" }
        );
    }
    println!("  result stored in {}", out.display());
    let page = match crate::report::page(&loaded, &args.data, &layers, &checks) {
        Ok(p) => p,
        Err(e) => return Ok(refuse("gate", &e)),
    };
    if let Some(path) = &args.report {
        crate::report::write(path, &page)?;
        println!("  report written to {}", path.display());
    }
    let verdict = if passed { "passed" } else { "failed" };
    match crate::report::record(&loaded, "gate", &args.data, Some(verdict), &artifact, &page) {
        Ok(id) => println!("  report {id} stored (the dashboard's Reports page)"),
        Err(e) => return Ok(refuse("gate", &e)),
    }

    if !args.no_log {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| {
                format!(
                    "{} {} = {} (needs {})",
                    c.layer, c.check, c.value, c.threshold
                )
            })
            .collect();
        let event = if passed {
            Event::GatePassed
        } else {
            Event::GateFailed
        };
        let now = vigil_core::Clock::now(&vigil_core::SystemClock);
        let mut line = LogEvent::new(now, "vigil_gate", event)
            .with("model", loaded.model.label())
            .with("model_sha256", model_sha256)
            .with("data_sha256", data_sha256)
            .with("config_sha256", config_sha256.clone())
            .with("vigil_version", vigil_version)
            .with("checks", checks.len() as u64)
            .with("artifact", out.display().to_string());
        if !passed {
            line = line.with("failed", failed.join("; "));
        }
        if let Err(e) = vigil_session::append_to_log(&loaded.cfg, vec![line]) {
            eprintln!(
                "vigil gate: the verdict could not be written to the log {}: {e}",
                loaded.cfg.log.dir.display()
            );
            return Ok(Err(ExitCode::from(crate::control_client::USAGE)));
        }
    }
    Ok(Ok(Verdict {
        passed,
        checks: serde_json::to_string(&checks)?,
        result: out,
        result_sha256,
        config_sha256,
        cfg: loaded.cfg,
        model: loaded.model,
    }))
}
