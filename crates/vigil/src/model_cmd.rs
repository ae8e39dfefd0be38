//! `vigil model`: check a model artifact, write the features vigil computes from a bars
//! file (the numbers a model trained in Python must be trained on, so that it sees the same
//! ones live), and keep the model registry (`registry_cmd.rs`). Exit codes: 0 done, 1 the
//! gate refused a version being registered, 2 refused (the reason on standard error).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_backtest::vectorized::Bars;
use vigil_model::{Artifact, Feature, FeatureSet};

use crate::control_client::USAGE;

/// `vigil model` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ModelCmd {
    /// Check a model directory: its manifest validates and every file matches its sha256.
    Check {
        /// The model's directory (with its `model.toml`).
        dir: PathBuf,
    },
    /// Write the features vigil computes from a bars file, one CSV row a bar once every
    /// window is full: `timestamp,close,<feature>…`.
    Features {
        /// Features by name (`return_5,ema_ratio_10_30,volatility_20,rsi_14`); default: the
        /// model's.
        #[arg(long, value_delimiter = ',', conflicts_with = "model")]
        features: Vec<String>,
        /// The model whose features to write.
        #[arg(long)]
        model: Option<PathBuf>,
        /// A bars CSV file.
        #[arg(long)]
        data: PathBuf,
        /// Where to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Register a model version in the registry (`[store]`): the gate runs first and a
    /// version that fails it is not registered (exit 1); it enters as a staging candidate,
    /// `v{major}.{minor}.{patch}-{YYYYMMDD}`, with its provenance, audited and logged.
    Register(crate::registry_cmd::RegisterArgs),
    /// The registered versions (of one model, or of all), with status and aliases.
    List {
        /// One model's name.
        name: Option<String>,
        /// Config (its `[store]` holds the registry).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One registered version with its provenance, its gate record and its audit.
    Show {
        /// The model's name.
        name: String,
        /// A version (`v1.0.0-20261204`) or an alias (`production`, `candidate`,
        /// `last_stable`).
        #[arg(default_value = "production")]
        version: String,
        /// Config (its `[store]` holds the registry).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a staging version production; the version it replaces becomes last_stable.
    Promote {
        /// The model's name.
        name: String,
        /// A version or an alias (`candidate`).
        version: String,
        #[command(flatten)]
        change: crate::registry_cmd::ChangeArgs,
    },
    /// Retire a version that is not in production: it may never trade again.
    Retire {
        /// The model's name.
        name: String,
        /// A version or an alias.
        version: String,
        #[command(flatten)]
        change: crate::registry_cmd::ChangeArgs,
    },
    /// Return production to last_stable at once; the version in production is retired.
    Rollback {
        /// The model's name.
        name: String,
        #[command(flatten)]
        change: crate::registry_cmd::ChangeArgs,
    },
    /// A release: a staging version runs in shadow beside production before it is
    /// promoted (start, pause, resume, abort, status).
    #[command(subcommand)]
    Release(crate::release_cmd::ReleaseCmd),
    /// Judge a release's shadow run against `[release.shadow]`'s five standards (exit 0
    /// when every one is met, 1 when not yet).
    ShadowReport(crate::release_cmd::ShadowReportArgs),
}

pub(crate) fn run(cmd: ModelCmd) -> anyhow::Result<ExitCode> {
    let refuse = |e: &dyn std::fmt::Display| {
        eprintln!("vigil model: {e}");
        Ok(ExitCode::from(USAGE))
    };
    use crate::registry_cmd::{self as registry, Change};
    match cmd {
        ModelCmd::Register(args) => registry::register(args),
        ModelCmd::List { name, config, json } => {
            Ok(registry::list(name.as_deref(), config.as_deref(), json))
        }
        ModelCmd::Show {
            name,
            version,
            config,
            json,
        } => Ok(registry::show(&name, &version, config.as_deref(), json)),
        ModelCmd::Promote {
            name,
            version,
            change,
        } => Ok(registry::apply(&name, Change::Promote(version), &change)),
        ModelCmd::Retire {
            name,
            version,
            change,
        } => Ok(registry::apply(&name, Change::Retire(version), &change)),
        ModelCmd::Rollback { name, change } => {
            Ok(registry::apply(&name, Change::Rollback, &change))
        }
        ModelCmd::Release(cmd) => Ok(crate::release_cmd::run(cmd)),
        ModelCmd::ShadowReport(args) => Ok(crate::release_cmd::shadow_report(&args)),
        ModelCmd::Check { dir } => match Artifact::load(&dir) {
            Ok(a) => {
                println!(
                    "{}: {} ({}), {} feature(s), {} file(s) verified",
                    dir.display(),
                    a.label(),
                    a.manifest.kind.as_str(),
                    a.features.len(),
                    a.manifest.files.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => refuse(&e),
        },
        ModelCmd::Features {
            features,
            model,
            data,
            out,
        } => {
            let features: Vec<Feature> = match model {
                Some(dir) => match Artifact::load(&dir) {
                    Ok(a) => a.features,
                    Err(e) => return refuse(&e),
                },
                None => match features.iter().map(|f| f.parse()).collect() {
                    Ok(f) => f,
                    Err(e) => return refuse(&e),
                },
            };
            if features.is_empty() {
                return refuse(
                    &"no feature: name some with --features, or a model that reads some",
                );
            }
            let bars = match Bars::read(&data) {
                Ok(b) => b,
                Err(e) => return refuse(&e),
            };
            // The Regime agent's label, by its own classifier on the same closes, with the
            // embedded default's `[regime]` settings.
            let labels = features.contains(&Feature::Regime).then(|| {
                vigil_backtest::vectorized::regimes(
                    &bars.closes,
                    &vigil_config::VigilConfig::embedded_default().regime,
                )
            });
            let mut text = String::from("timestamp,close");
            for f in &features {
                text.push(',');
                text.push_str(&f.to_string());
            }
            text.push('\n');
            let mut set = FeatureSet::new(&features);
            for (i, (t, c)) in bars.times.iter().zip(&bars.closes).enumerate() {
                let regime = labels.as_ref().map_or(0.0, |l| l[i]);
                if let Some(values) = set.update(*c, regime) {
                    text.push_str(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                    text.push(',');
                    text.push_str(&c.to_string());
                    for v in values {
                        text.push(',');
                        text.push_str(&v.to_string());
                    }
                    text.push('\n');
                }
            }
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
