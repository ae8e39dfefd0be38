//! Running a model: its features, its engine (the built-in EMA cross, or an ONNX graph run
//! in-process by tract, pure Rust) and the target position its output asks for. The live
//! Signal agent and both backtest layers call the same [`Predictor`], bar by bar, or
//! [`Onnx::predict`] over whole columns, so a model gives the same numbers everywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid as _;

use crate::features::{Ema, FeatureSet};
use crate::{Artifact, Kind, ModelError, Output};

/// An ONNX graph that does not fit its manifest, or a run that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The artifact does not validate.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The graph cannot be loaded or prepared, or does not fit the manifest.
    #[error("{}: {reason}", path.display())]
    Graph {
        /// The graph file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The graph failed on an input (its message).
    #[error("model {model}: inference failed: {reason}")]
    Run {
        /// `name@version`.
        model: String,
        /// What tract said.
        reason: String,
    },
}

type Plan = TypedRunnableModel<TypedModel>;

/// An ONNX graph, loaded, checked against the manifest and optimised for any batch size.
/// Cheap to clone (the plan is shared).
#[derive(Clone)]
pub struct Onnx {
    plan: Arc<Plan>,
    label: String,
    inputs: usize,
    output: usize,
    column: usize,
}

impl std::fmt::Debug for Onnx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onnx")
            .field("model", &self.label)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl Onnx {
    /// Loads the artifact's graph (`parameters.graph`) and checks it: one input of `f32`
    /// whose second axis has as many values as the manifest has features, and the output
    /// `parameters.output` (default: the first) with column `parameters.column` (default 0).
    ///
    /// # Errors
    /// The graph file and what does not fit.
    pub fn load(artifact: &Artifact) -> Result<Self, RuntimeError> {
        let p = &artifact.manifest.parameters;
        let graph = p.get("graph").and_then(|g| g.as_str()).unwrap_or_default();
        let path = artifact.dir.join(graph);
        let fail = |reason: String| RuntimeError::Graph {
            path: path.clone(),
            reason,
        };
        let tract = |what: &str, e: TractError| fail(format!("{what}: {e:#}"));
        let mut model = tract_onnx::onnx()
            .model_for_path(&path)
            .map_err(|e| tract("not an ONNX graph tract can read", e))?;
        let inputs = model.input_outlets().map_err(|e| tract("inputs", e))?.len();
        if inputs != 1 {
            return Err(fail(format!(
                "the graph has {inputs} inputs; vigil gives a model one, the rows of its features"
            )));
        }
        let want = artifact.features.len();
        let fact = model.input_fact(0).map_err(|e| tract("input", e))?.clone();
        if let Some(dt) = fact.datum_type.concretize()
            && dt != f32::datum_type()
        {
            return Err(fail(format!(
                "the input is {dt:?}; vigil gives float32 features"
            )));
        }
        let width = fact
            .shape
            .dim(1)
            .and_then(|d| d.concretize())
            .and_then(|d| d.to_i64().ok());
        if width != Some(want as i64) || fact.shape.rank().concretize() != Some(2) {
            return Err(fail(format!(
                "the input's shape is {:?}; the manifest declares {want} feature(s) ({}), so \
                 the graph must take [batch, {want}]",
                fact.shape,
                artifact.manifest.features.join(", ")
            )));
        }
        let outputs = model
            .output_outlets()
            .map_err(|e| tract("outputs", e))?
            .to_vec();
        let names: Vec<String> = outputs
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .unwrap_or(&model.node(o.node).name)
                    .to_string()
            })
            .collect();
        let output = match p.get("output") {
            None => 0,
            Some(toml::Value::String(name)) => {
                names.iter().position(|n| n == name).ok_or_else(|| {
                    fail(format!(
                        "the manifest's parameters.output {name:?} is not an output of the \
                         graph (it has {names:?})"
                    ))
                })?
            }
            Some(_) => return Err(fail("parameters.output must be an output's name".into())),
        };
        let column = match p.get("column") {
            None => 0,
            Some(toml::Value::Integer(c)) if *c >= 0 => *c as usize,
            Some(_) => return Err(fail("parameters.column must be a whole number".into())),
        };
        let batch = model.sym("N");
        model
            .set_input_fact(
                0,
                InferenceFact::dt_shape(f32::datum_type(), tvec![batch.to_dim(), want.to_dim()]),
            )
            .map_err(|e| tract("input shape", e))?;
        for ix in 0..outputs.len() {
            model
                .set_output_fact(ix, InferenceFact::default())
                .map_err(|e| tract("output shape", e))?;
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| tract("cannot prepare the graph", e))?;
        let this = Self {
            plan: Arc::new(plan),
            label: artifact.label(),
            inputs: want,
            output,
            column,
        };
        // One row of zeros: a graph whose output has no such column fails here, not live.
        this.predict(&vec![0.0; want])
            .map_err(|e| fail(format!("a trial run failed: {e}")))?;
        Ok(this)
    }

    /// The model's output for each row of `rows` (row-major, as many values a row as the
    /// manifest has features).
    ///
    /// # Errors
    /// The graph failed, or its output has no such column.
    pub fn predict(&self, rows: &[f32]) -> Result<Vec<f64>, RuntimeError> {
        let fail = |reason: String| RuntimeError::Run {
            model: self.label.clone(),
            reason,
        };
        let n = rows.len() / self.inputs.max(1);
        let input =
            Tensor::from_shape(&[n, self.inputs], rows).map_err(|e| fail(format!("{e:#}")))?;
        let out = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| fail(format!("{e:#}")))?;
        let tensor = out
            .get(self.output)
            .ok_or_else(|| fail(format!("no output {}", self.output)))?
            .cast_to::<f32>()
            .map_err(|e| fail(format!("the output is not a number: {e:#}")))?
            .into_owned();
        let view = tensor
            .to_array_view::<f32>()
            .map_err(|e| fail(format!("{e:#}")))?;
        let width = if view.ndim() >= 2 { view.shape()[1] } else { 1 };
        if self.column >= width || view.len() != n * width {
            return Err(fail(format!(
                "the output has shape {:?}; parameters.column {} is not in it",
                view.shape(),
                self.column
            )));
        }
        Ok(view
            .iter()
            .skip(self.column)
            .step_by(width)
            .map(|v| f64::from(*v))
            .collect())
    }
}

/// What a model says at one bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// The model's raw output (the EMA gap, a probability …).
    pub output: f64,
    /// The target position it asks for: −1, 0 or +1; `None` when it has no opinion (the EMA
    /// cross when both averages are equal), which keeps the position held.
    pub position: Option<f64>,
    /// How strongly, 0..1, as logged.
    pub strength: f64,
}

/// The engine inside a [`Predictor`].
#[derive(Clone, Debug)]
enum Engine {
    EmaCross {
        fast: Ema,
        slow: Ema,
    },
    Onnx {
        features: FeatureSet,
        graph: Onnx,
        row: Vec<f32>,
    },
}

/// A model run bar by bar on one symbol.
#[derive(Clone, Debug)]
pub struct Predictor {
    engine: Engine,
    output: Output,
    allow_short: bool,
    /// Bars seen, and how many pass before the model may speak.
    seen: usize,
    warmup: usize,
}

impl Predictor {
    /// The built-in EMA cross, from its spans (`[signal] model = "ema_cross"`), silent for
    /// the first `warmup` bars.
    pub fn ema_cross(fast_span: usize, slow_span: usize, warmup: usize, allow_short: bool) -> Self {
        Self {
            engine: Engine::EmaCross {
                fast: Ema::new(fast_span),
                slow: Ema::new(slow_span),
            },
            output: Output::Sign,
            allow_short,
            seen: 0,
            warmup,
        }
    }

    /// The artifact's model; `graph` is its loaded ONNX graph for the `onnx` kind (loaded
    /// once, shared by every symbol's predictor).
    pub fn new(artifact: &Artifact, graph: Option<&Onnx>, allow_short: bool) -> Self {
        let engine = match (artifact.manifest.kind, graph) {
            (Kind::Onnx, Some(graph)) => Engine::Onnx {
                features: FeatureSet::new(&artifact.features),
                graph: graph.clone(),
                row: vec![0.0; artifact.features.len()],
            },
            _ => {
                let (fast, slow) = artifact.ema_spans();
                Engine::EmaCross {
                    fast: Ema::new(fast),
                    slow: Ema::new(slow),
                }
            }
        };
        Self {
            engine,
            output: artifact.manifest.output,
            allow_short,
            seen: 0,
            warmup: artifact.warmup(),
        }
    }

    /// Takes the next bar's close and the regime's label as a number; returns what the model
    /// says, or `None` while it warms up ([`Artifact::warmup`], and its features' windows).
    ///
    /// # Errors
    /// The graph failed on this bar's features.
    pub fn update(&mut self, close: f64, regime: f64) -> Result<Option<Prediction>, RuntimeError> {
        self.seen += 1;
        let quiet = self.seen <= self.warmup;
        let output = match &mut self.engine {
            Engine::EmaCross { fast, slow } => {
                let (f, s) = (fast.update(close), slow.update(close));
                if quiet {
                    return Ok(None);
                }
                let strength = if s > 0.0 {
                    ((f - s).abs() / s / 0.01).min(1.0)
                } else {
                    0.0
                };
                let position = self.output.position(f - s, self.allow_short);
                return Ok(Some(Prediction {
                    output: f - s,
                    position,
                    strength,
                }));
            }
            Engine::Onnx {
                features,
                graph,
                row,
            } => {
                let Some(values) = features.update(close, regime) else {
                    return Ok(None);
                };
                if quiet {
                    return Ok(None);
                }
                for (r, v) in row.iter_mut().zip(values) {
                    *r = *v as f32;
                }
                graph.predict(row)?.first().copied().unwrap_or(f64::NAN)
            }
        };
        Ok(Some(Prediction {
            output,
            position: self.output.position(output, self.allow_short),
            strength: self.output.strength(output),
        }))
    }
}

impl Output {
    /// The target position `value` asks for (−1, 0, +1), short turned flat when shorts are
    /// not allowed; `None` for no opinion (a sign of exactly zero, or not a number).
    pub fn position(&self, value: f64, allow_short: bool) -> Option<f64> {
        let p = match self {
            _ if value.is_nan() => return None,
            Self::Sign if value == 0.0 => return None,
            Self::Sign => value.signum(),
            Self::Threshold { long, short } => {
                if value > *long {
                    1.0
                } else if value < *short {
                    -1.0
                } else {
                    0.0
                }
            }
        };
        Some(if p < 0.0 && !allow_short { 0.0 } else { p })
    }

    /// How strongly the output asks: for a sign, its size capped at 1; for a threshold, how
    /// far past the threshold it is, as a fraction of the room there is.
    fn strength(&self, value: f64) -> f64 {
        match self {
            Self::Sign => value.abs().min(1.0),
            Self::Threshold { long, short } => {
                if value > *long {
                    ((value - long) / (1.0 - long).abs().max(f64::EPSILON)).min(1.0)
                } else if value < *short {
                    ((short - value) / short.abs().max(f64::EPSILON)).min(1.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Loads a model for running: the artifact, and its graph for the `onnx` kind.
///
/// # Errors
/// The artifact does not validate ([`ModelError`]) or the graph does not fit it.
pub fn open(dir: &Path) -> Result<(Artifact, Option<Onnx>), RuntimeError> {
    let artifact = Artifact::load(dir)?;
    let graph = match artifact.manifest.kind {
        Kind::Onnx => Some(Onnx::load(&artifact)?),
        Kind::EmaCross => None,
    };
    Ok((artifact, graph))
}

#[cfg(test)]
mod tests;
