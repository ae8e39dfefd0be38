//! A model is a versioned artifact: a directory with a manifest (`model.toml`) that names it,
//! versions it, says its kind, its parameters, the features it reads, how its output becomes
//! a target position, and the SHA-256 of every file it needs (issue 21, in progress: the
//! manifest and its checks, and the feature code ([`features`]); the runtimes and `[signal] model = "models/…"`
//! come next).
//!
//! [`Artifact::load`] refuses, before anything starts, a manifest that does not parse or
//! validate, a file that is missing or whose hash does not match, naming the file and the
//! reason.

pub mod features;
mod manifest;

pub use features::{Ema, FeatureSet};
pub use manifest::{
    Artifact, BadFeature, Feature, Kind, MANIFEST, Manifest, ModelError, Output, Training,
};
