//! `vigil model`: check a model artifact, and write the features vigil computes from a bars
//! file (the numbers a model trained in Python must be trained on, so that it sees the same
//! ones live). Exit codes: 0 done, 2 refused (the reason on standard error).

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
}

pub(crate) fn run(cmd: ModelCmd) -> anyhow::Result<ExitCode> {
    let refuse = |e: &dyn std::fmt::Display| {
        eprintln!("vigil model: {e}");
        Ok(ExitCode::from(USAGE))
    };
    match cmd {
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
