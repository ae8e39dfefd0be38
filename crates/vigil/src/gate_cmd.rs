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
    gate: Option<PathBuf>,
    /// The model: a directory with its `model.toml`.
    #[arg(long)]
    model: PathBuf,
    /// A bars CSV file.
    #[arg(long)]
    data: PathBuf,
    /// Config (costs, sizing, calendar, and the log the verdict is written to).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The instrument trades around the clock.
    #[arg(long)]
    all_day: bool,
    /// Where to store the JSON result (default: `gate/<model>@<version>.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write a self-contained HTML report (equity, drawdown, folds, the gate table).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Do not write the verdict to the log.
    #[arg(long)]
    no_log: bool,
}

pub(crate) fn run_cmd(args: GateArgs) -> anyhow::Result<ExitCode> {
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

    // The hashes: the model's manifest and every file it lists, the data, the config.
    let mut model_hash = Sha256::new();
    let manifest = loaded.model.dir.join(vigil_model::MANIFEST);
    let data_sha256 = loaded.data_sha256.clone();
    match std::fs::read(&manifest) {
        Ok(b) => model_hash.update(&b),
        Err(e) => {
            return Ok(refuse(
                "gate",
                &format!("{}: cannot read: {e}", manifest.display()),
            ));
        }
    }
    for (file, sha) in &loaded.model.manifest.files {
        model_hash.update(file.as_bytes());
        model_hash.update(sha.as_bytes());
    }
    let model_sha256 = hex::encode(model_hash.finalize());
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
    std::fs::write(&out, serde_json::to_string_pretty(&artifact)?)
        .map_err(|e| anyhow::anyhow!("{}: cannot write the gate result: {e}", out.display()))?;

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
    if let Some(path) = &args.report {
        crate::report::write(path, &loaded, &args.data, &layers, &checks)?;
        println!("  report written to {}", path.display());
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
            .with("config_sha256", config_sha256)
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
            return Ok(ExitCode::from(crate::control_client::USAGE));
        }
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
