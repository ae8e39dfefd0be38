//! The model registry's rows: each registered version, its aliases, the audit of every
//! change, and one change as the store applies it (whole, in one transaction). What a change
//! may do is decided by `vigil-deploy`; the store only keeps it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where a registered version stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Registered, not trading.
    Staging,
    /// The version that trades.
    Production,
    /// Never to trade again.
    Retired,
}

impl ModelStatus {
    /// Its name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Production => "production",
            Self::Retired => "retired",
        }
    }

    /// The status a stored name is.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "staging" => Some(Self::Staging),
            "production" => Some(Self::Production),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// One registered version of a model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelEntry {
    /// The model's name.
    pub name: String,
    /// `v{major}.{minor}.{patch}-{YYYYMMDD}`.
    pub version: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Who registered it: a person or a pipeline.
    pub created_by: String,
    /// Where it stands.
    pub status: ModelStatus,
    /// Its directory, absolute.
    pub artifact_path: String,
    /// Its content address (`vigil_model::Artifact::sha256`).
    pub artifact_sha256: String,
    /// The SHA-256 of the config the gate judged it with.
    pub config_sha256: String,
    /// The training data's SHA-256, from its manifest.
    pub training_data_sha256: Option<String>,
    /// The version it follows.
    pub parent_version: Option<String>,
    /// Registered without the gate.
    pub gate_skipped: bool,
    /// The gate's checks, as JSON.
    pub gate_checks: Option<String>,
    /// The SHA-256 of the gate's stored result.
    pub gate_result_sha256: Option<String>,
    /// Its features and returns on the gate's data, as JSON (`vigil_deploy::drift`);
    /// none when the gate was skipped.
    pub drift_baseline: Option<String>,
    /// The copy of its training data kept at registration, named by its SHA-256.
    pub training_snapshot: Option<String>,
}

/// One row of the registry's audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelAudit {
    /// Its number (ignored when written).
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// `register`, `promote`, `retire` or `rollback`.
    pub action: String,
    /// The model's name.
    pub name: String,
    /// The version acted on.
    pub version: String,
    /// Why, as the actor said.
    pub reason: String,
    /// What changed, in words.
    pub detail: String,
}

/// One change to a model's registry, applied whole or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistryWrite {
    /// A version to add.
    pub insert: Option<ModelEntry>,
    /// Versions whose status changes.
    pub statuses: Vec<(String, ModelStatus)>,
    /// Aliases set to a version, or removed (`None`).
    pub aliases: Vec<(String, Option<String>)>,
    /// A release started (`id` 0) or changed, with this change.
    pub release: Option<ModelRelease>,
    /// Its audit row.
    pub audit: ModelAudit,
}

/// Where a release stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Going on.
    Running,
    /// Held by an operator: the candidate does not run until resumed.
    Paused,
    /// Stopped for good (a new release starts again).
    Aborted,
    /// The candidate was promoted to production.
    Completed,
}

impl ReleaseState {
    /// Its name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Aborted => "aborted",
            Self::Completed => "completed",
        }
    }

    /// The state a stored name is.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(Self::Running),
            "paused" => Some(Self::Paused),
            "aborted" => Some(Self::Aborted),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }

    /// Running or paused: the release is not over.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// One release of a candidate version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelRelease {
    /// Its number (0 for one being started).
    pub id: i64,
    /// The model.
    pub name: String,
    /// The version being released.
    pub candidate: String,
    /// The version in production when it started.
    pub production: Option<String>,
    /// Its stage: `shadow`.
    pub stage: String,
    /// Where it stands.
    pub state: ReleaseState,
    /// When it started, who started it and why.
    pub started_at: DateTime<Utc>,
    /// Who started it.
    pub started_by: String,
    /// Why.
    pub reason: String,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// The last change, in words.
    pub detail: String,
    /// The canary's step: 0 in shadow, k at the k-th step.
    pub step: u32,
    /// The candidate's share of capital at that step (a fraction).
    pub weight: Option<rust_decimal::Decimal>,
    /// The last exchange session (`YYYY-MM-DD`) before the step began: its analysis counts
    /// the sessions after it (`None`: all of them).
    pub step_since: Option<String>,
}

/// A shadow run's figures for one exchange session, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowSessionRow {
    /// The release.
    pub release_id: i64,
    /// The exchange session, `YYYY-MM-DD`.
    pub session: String,
    /// When the figures were last written.
    pub updated_at: DateTime<Utc>,
    /// The figures, as JSON (`vigil_deploy::shadow::ShadowSession`).
    pub figures: String,
}
