//! A model is a versioned artifact: a directory with a manifest (`model.toml`) that names it,
//! versions it, says its kind, its parameters, the features it reads, how its output becomes
//! a target position, and the SHA-256 of every file it needs . [`runtime`] runs
//! one: the built-in EMA cross, or an ONNX graph in-process (tract, pure Rust).
//!
//! [`Artifact::load`] refuses, before anything starts, a manifest that does not parse or
//! validate, a file that is missing or whose hash does not match, naming the file and the
//! reason.

pub mod features;
mod manifest;
pub mod runtime;

pub use features::{Ema, FeatureSet};
pub use manifest::{
    Artifact, BadFeature, Feature, Kind, MANIFEST, Manifest, ModelError, Output, Training,
};
pub use runtime::{Onnx, Prediction, Predictor, RuntimeError, open};
