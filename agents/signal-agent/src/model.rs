//! The model the agent runs: the built-in EMA cross from `[signal]`, or a model artifact
//! (`[signal] model = "models/…"`), loaded and checked before anything starts.

use std::path::Path;

use vigil_config::SignalConfig;
use vigil_model::{Artifact, Onnx, Predictor, RuntimeError};

/// Name and version of the built-in model, as logged.
pub const MODEL_VERSION: &str = "ema_cross@1";

/// The model a session trades: its label (`name@version`, on every signal, order and fill
/// line and on `/metrics`) and how to build its per-symbol predictors.
#[derive(Clone, Debug)]
pub struct ActiveModel {
    label: &'static str,
    artifact: Option<(Artifact, Option<Onnx>)>,
}

impl ActiveModel {
    /// `[signal] model`: `ema_cross` is the built-in model on `fast_span` and `slow_span`;
    /// anything else is a model directory, relative to `base` when relative.
    ///
    /// # Errors
    /// The artifact does not validate, a file's hash does not match, or its graph does not
    /// fit its manifest: the file and the reason.
    pub fn from_config(cfg: &SignalConfig, base: &Path) -> Result<Self, RuntimeError> {
        if cfg.model == "ema_cross" {
            return Ok(Self::built_in());
        }
        let dir = base.join(&cfg.model);
        let (artifact, graph) = vigil_model::open(&dir)?;
        Ok(Self {
            // Once per session: log lines carry the label as a `&'static str`, like the
            // built-in one, so it is kept for the life of the process.
            label: Box::leak(artifact.label().into_boxed_str()),
            artifact: Some((artifact, graph)),
        })
    }

    /// The built-in EMA cross.
    pub fn built_in() -> Self {
        Self {
            label: MODEL_VERSION,
            artifact: None,
        }
    }

    /// `name@version`.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// The artifact, for a model loaded from one.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.artifact.as_ref().map(|(a, _)| a)
    }

    /// A fresh predictor for one symbol.
    pub fn predictor(&self, cfg: &SignalConfig) -> Predictor {
        match &self.artifact {
            Some((artifact, graph)) => Predictor::new(artifact, graph.as_ref(), cfg.allow_short),
            None => {
                Predictor::ema_cross(cfg.fast_span, cfg.slow_span, cfg.warmup(), cfg.allow_short)
            }
        }
    }

    /// Bars a predictor stays silent for at the start.
    pub fn warmup(&self, cfg: &SignalConfig) -> usize {
        self.artifact()
            .map_or_else(|| cfg.warmup(), Artifact::warmup)
    }
}
