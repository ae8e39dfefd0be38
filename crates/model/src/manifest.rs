//! `model.toml`: what a model is, and the checks that make a directory one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The manifest's file name in a model's directory.
pub const MANIFEST: &str = "model.toml";

/// Why a directory is not a model vigil may run. Each names the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file cannot be read.
    #[error("{}: cannot read: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The manifest is not valid TOML of the expected shape.
    #[error("{}: {reason}", path.display())]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// What the parser said (line and column included).
        reason: String,
    },
    /// The manifest parses but says something impossible.
    #[error("{}: {key}: {reason}", path.display())]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// The key at fault.
        key: String,
        /// Why.
        reason: String,
    },
    /// A listed file's bytes are not the ones the manifest hashed.
    #[error("{}: sha256 is {actual}, the manifest says {expected}: the file changed after the model was built; rebuild the model or restore the file", path.display())]
    Hash {
        /// The file.
        path: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
}

/// What runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The built-in EMA cross (`fast_span`, `slow_span` in its parameters).
    EmaCross,
    /// An ONNX graph (`graph` in its parameters names the file), run in-process.
    Onnx,
}

impl Kind {
    /// Its name in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmaCross => "ema_cross",
            Self::Onnx => "onnx",
        }
    }
}

/// A feature vigil computes from the bars, named as a manifest writes it: `return_5`,
/// `ema_ratio_10_30`, `volatility_20`, `rsi_14`, `regime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// The close's return over the last `n` bars.
    Return(u32),
    /// The fast EMA of the close over the slow one, minus one.
    EmaRatio(u32, u32),
    /// The standard deviation of one-bar returns over `n` bars.
    Volatility(u32),
    /// Wilder's relative strength index over `n` bars, 0..100.
    Rsi(u32),
    /// The Regime agent's label, as a number (unknown 0, trending 1, ranging 2, volatile 3).
    Regime,
}

/// A feature name vigil does not know, or a window out of range; the text says which.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadFeature(String);

impl FromStr for Feature {
    type Err = BadFeature;

    fn from_str(s: &str) -> Result<Self, BadFeature> {
        Self::parse(s).map_err(BadFeature)
    }
}

impl Feature {
    fn parse(s: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "unknown feature {s:?}; known: return_N, ema_ratio_FAST_SLOW, volatility_N, \
                 rsi_N, regime"
            )
        };
        let window = |n: &str| -> Result<u32, String> {
            match n.parse::<u32>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err(format!(
                    "feature {s:?}: the window must be a whole number of bars in [1, 100000]"
                )),
            }
        };
        if s == "regime" {
            return Ok(Self::Regime);
        }
        if let Some(n) = s.strip_prefix("return_") {
            return Ok(Self::Return(window(n)?));
        }
        if let Some(n) = s.strip_prefix("volatility_") {
            let n = window(n)?;
            if n < 2 {
                return Err(format!("feature {s:?}: a volatility needs at least 2 bars"));
            }
            return Ok(Self::Volatility(n));
        }
        if let Some(n) = s.strip_prefix("rsi_") {
            return Ok(Self::Rsi(window(n)?));
        }
        if let Some(spans) = s.strip_prefix("ema_ratio_") {
            let (fast, slow) = spans.split_once('_').ok_or_else(expected)?;
            let (fast, slow) = (window(fast)?, window(slow)?);
            if fast >= slow {
                return Err(format!(
                    "feature {s:?}: the fast span must be shorter than the slow one"
                ));
            }
            return Ok(Self::EmaRatio(fast, slow));
        }
        Err(expected())
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Return(n) => write!(f, "return_{n}"),
            Self::EmaRatio(a, b) => write!(f, "ema_ratio_{a}_{b}"),
            Self::Volatility(n) => write!(f, "volatility_{n}"),
            Self::Rsi(n) => write!(f, "rsi_{n}"),
            Self::Regime => f.write_str("regime"),
        }
    }
}

/// How the model's output becomes a target position (a fraction of the size Risk allows,
/// −1 short, 0 flat, +1 long).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Output {
    /// Long when the output is above zero, short below, flat at zero.
    Sign,
    /// Long above `long`, short below `short`, flat between (a probability of a rise, say).
    Threshold {
        /// The output above which to be long.
        long: f64,
        /// The output below which to be short.
        short: f64,
    },
}

/// Where the model came from: the script that trained it and the data's hash, so that the
/// same model can be built again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// The training script, relative to the repository.
    pub script: String,
    /// The SHA-256 of the training data.
    pub data_sha256: String,
    /// The training data, relative to the repository.
    pub data: Option<String>,
    /// The random seed.
    pub seed: u64,
    /// The rows trained on (the first ones; the rest were held out).
    pub rows: Option<u64>,
}

/// `model.toml`, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The model's name (`ema_cross`, `goog_mlp`): letters, digits, `_` and `-`.
    pub name: String,
    /// Its semantic version (`1.2.0`).
    pub version: String,
    /// What runs it.
    pub kind: Kind,
    /// Its parameters, as its kind reads them.
    #[serde(default)]
    pub parameters: toml::Table,
    /// The features it reads, in the order its input takes them.
    #[serde(default)]
    pub features: Vec<String>,
    /// How its output becomes a target position.
    pub output: Output,
    /// Every file it needs, relative to its directory, with its SHA-256 (hex).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// How it was trained, for a trained model.
    pub training: Option<Training>,
}

/// A model directory whose manifest validates and whose files match their hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    /// The directory.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// Its version, parsed.
    pub version: semver::Version,
    /// Its features, parsed.
    pub features: Vec<Feature>,
    /// The artifact's content address (hex): the SHA-256 of its manifest's bytes, then of
    /// each listed file's name and hash. Any change to the manifest or to a file it lists
    /// changes it (the files being checked against their hashes at load). The gate's result
    /// and the registry pin a model by it.
    pub sha256: String,
}

impl Artifact {
    /// Reads `dir/model.toml`, validates it and checks every listed file's hash.
    ///
    /// # Errors
    /// See [`ModelError`]: the first problem found, naming the file and the reason.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::Read {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::Parse {
            path: path.clone(),
            reason: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |key: &str, reason: String| ModelError::Invalid {
            path: path.clone(),
            key: key.to_string(),
            reason,
        };
        if manifest.name.is_empty()
            || !manifest
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "name",
                format!(
                    "{:?} is not a name: letters, digits, `_` and `-`",
                    manifest.name
                ),
            ));
        }
        let version = semver::Version::parse(&manifest.version).map_err(|e| {
            invalid(
                "version",
                format!("{:?} is not a semantic version: {e}", manifest.version),
            )
        })?;
        let features = manifest
            .features
            .iter()
            .map(|f| {
                f.parse::<Feature>()
                    .map_err(|e| invalid("features", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Output::Threshold { long, short } = manifest.output
            && !(short.is_finite() && long.is_finite() && short <= long)
        {
            return Err(invalid(
                "output",
                format!("short ({short}) must not be above long ({long})"),
            ));
        }
        match manifest.kind {
            Kind::EmaCross => {
                let span = |key: &str| match manifest.parameters.get(key) {
                    Some(toml::Value::Integer(n)) if *n >= 1 => Ok(*n),
                    _ => Err(invalid(
                        &format!("parameters.{key}"),
                        "must be a whole number of bars, at least 1".into(),
                    )),
                };
                let (fast, slow) = (span("fast_span")?, span("slow_span")?);
                if fast >= slow {
                    return Err(invalid(
                        "parameters.slow_span",
                        format!("must be greater than parameters.fast_span ({fast}), got {slow}"),
                    ));
                }
            }
            Kind::Onnx => {
                let graph = match manifest.parameters.get("graph") {
                    Some(toml::Value::String(g)) => g,
                    _ => {
                        return Err(invalid(
                            "parameters.graph",
                            "an onnx model names its graph file".into(),
                        ));
                    }
                };
                if !manifest.files.contains_key(graph) {
                    return Err(invalid(
                        "files",
                        format!("the graph {graph:?} is not listed with its sha256"),
                    ));
                }
                if features.is_empty() {
                    return Err(invalid(
                        "features",
                        "an onnx model reads at least one feature".into(),
                    ));
                }
            }
        }
        for (name, expected) in &manifest.files {
            let file = Path::new(name);
            if file.is_absolute()
                || file
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(invalid(
                    "files",
                    format!("{name:?} must be a path inside the model's directory"),
                ));
            }
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| ModelError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let actual = hex::encode(Sha256::digest(&bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(ModelError::Hash {
                    path,
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let mut address = Sha256::new();
        address.update(text.as_bytes());
        for (file, sha) in &manifest.files {
            address.update(file.as_bytes());
            address.update(sha.as_bytes());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            version,
            features,
            sha256: hex::encode(address.finalize()),
        })
    }

    /// The EMA cross's `(fast_span, slow_span)` (`(1, 2)` for another kind; [`Artifact::load`]
    /// refused an `ema_cross` manifest without both).
    pub fn ema_spans(&self) -> (usize, usize) {
        let span = |key: &str, default: usize| {
            self.manifest
                .parameters
                .get(key)
                .and_then(toml::Value::as_integer)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(default)
        };
        (span("fast_span", 1), span("slow_span", 2))
    }

    /// Bars the model stays silent for at the start: the EMA cross's slow span (its averages
    /// are still mostly their seed); none for a model whose features say when they are ready.
    pub fn warmup(&self) -> usize {
        match self.manifest.kind {
            Kind::EmaCross => self.ema_spans().1,
            Kind::Onnx => 0,
        }
    }

    /// `name@version`, as the log and `/metrics` carry it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.manifest.name, self.version)
    }
}

#[cfg(test)]
mod tests;
