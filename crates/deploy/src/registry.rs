//! The model registry's rules. Every registered version has a status (`staging`,
//! `production`, `retired`) and a model has at most one version per alias:
//! - `candidate`: the version registered last, until it is promoted or retired;
//! - `production`: the version that trades (status `production`; at most one);
//! - `last_stable`: the version that traded before it, which a rollback returns to.
//!
//! Each rule reads a [`Registry`] and returns the [`RegistryWrite`] that the store applies
//! in one transaction, its audit row included, or a [`RegistryError`] naming what stands
//! in the way. Nothing here reads a clock or a file: the caller says who, when and why.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vigil_model::Artifact;
use vigil_store::{
    ModelAudit, ModelEntry, ModelRelease, ModelStatus, RegistryWrite, StateStore, StoreError,
};

/// The aliases a model's versions can have.
pub const ALIASES: [&str; 3] = [PRODUCTION, CANDIDATE, LAST_STABLE];
/// The version in production.
pub const PRODUCTION: &str = "production";
/// The version registered last, until promoted or retired.
pub const CANDIDATE: &str = "candidate";
/// The version that traded before production's, which a rollback returns to.
pub const LAST_STABLE: &str = "last_stable";

/// One model's registry, as the store holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    /// The model's name.
    pub name: String,
    /// Its versions, oldest first.
    pub entries: Vec<ModelEntry>,
    /// Its aliases: alias → version.
    pub aliases: BTreeMap<String, String>,
    /// Its releases, oldest first ([`crate::release`]).
    pub releases: Vec<ModelRelease>,
}

/// Who makes a change, when, and why (the audit row's).
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// A person or a pipeline.
    pub who: &'a str,
    /// Why.
    pub reason: &'a str,
    /// When (wall clock).
    pub at: DateTime<Utc>,
}

/// How the gate judged a version being registered.
#[derive(Clone, Debug, PartialEq)]
pub enum GateRecord {
    /// Every check of both layers passed: the checks (JSON) and the stored result's hash.
    Passed {
        /// The checks, as JSON.
        checks: String,
        /// The SHA-256 of the gate's stored result.
        result_sha256: String,
    },
    /// Registered without the gate (`--skip-gate`); the actor's reason says why.
    Skipped,
}

/// A version to register.
#[derive(Clone, Debug)]
pub struct NewVersion<'a> {
    /// The artifact, loaded and checked.
    pub artifact: &'a Artifact,
    /// Its directory, absolute.
    pub artifact_path: String,
    /// The SHA-256 of the config the gate judged it with.
    pub config_sha256: String,
    /// The gate's verdict.
    pub gate: GateRecord,
    /// The version it follows (default: the one in production).
    pub parent: Option<String>,
    /// Its features and returns on the gate's data (JSON, [`crate::drift::Baseline`]).
    pub drift_baseline: Option<String>,
    /// The copy of its training data kept (a path named by its SHA-256).
    pub training_snapshot: Option<String>,
}

/// Why a registry change is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Who or why is missing.
    #[error("{0} is required: every registry change is audited (who, when, why)")]
    Unattributed(&'static str),
    /// The manifest's version does not fit the registry's form.
    #[error(
        "{name} version {version}: the registry's versions are v{{major}}.{{minor}}.{{patch}}-{{YYYYMMDD}}; \
         a pre-release or build part is not allowed"
    )]
    Version {
        /// The model.
        name: String,
        /// The manifest's version.
        version: String,
    },
    /// The version is registered already.
    #[error(
        "{name} {version} is registered already (on {date}); change the manifest's version to register another"
    )]
    Exists {
        /// The model.
        name: String,
        /// The version.
        version: String,
        /// When it was registered.
        date: String,
    },
    /// No version or alias of that name.
    #[error("{name} has no version or alias {selector:?} (versions: {known})")]
    Unknown {
        /// The model.
        name: String,
        /// What was asked for.
        selector: String,
        /// What there is.
        known: String,
    },
    /// The version's status does not allow the change.
    #[error("{name} {version} is {status}: {what}")]
    Status {
        /// The model.
        name: String,
        /// The version.
        version: String,
        /// Its status.
        status: &'static str,
        /// Why that stands in the way.
        what: &'static str,
    },
    /// A rollback with nothing to roll back, or nothing to roll back to.
    #[error("{name}: cannot roll back: {what}")]
    NoRollback {
        /// The model.
        name: String,
        /// What is missing.
        what: &'static str,
    },
    /// The artifact is not the one registered under its version.
    #[error(transparent)]
    Changed(Box<ArtifactChanged>),
    /// A release stands in the way, or the release asked for is not there.
    #[error("{name}: {what}")]
    Release {
        /// The model.
        name: String,
        /// What stands in the way.
        what: String,
    },
}

/// An artifact that is not the one registered under its version.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{dir}: {name} {semver} is not the artifact registered as {version}: its content \
     address is {actual}, the registry's {registered}. The model changed after it was \
     registered; register the change as a new version (a new version in model.toml)"
)]
pub struct ArtifactChanged {
    /// The model's directory.
    pub dir: String,
    /// The model.
    pub name: String,
    /// The manifest's version.
    pub semver: String,
    /// The registry version it matches by number.
    pub version: String,
    /// The registered content address.
    pub registered: String,
    /// The artifact's.
    pub actual: String,
}

impl Registry {
    /// Model `name`'s registry as `store` holds it: versions, aliases and releases.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn read(store: &dyn StateStore, name: &str) -> Result<Self, StoreError> {
        Ok(Self {
            name: name.to_string(),
            entries: store.registry_entries(Some(name)).await?,
            aliases: store.registry_aliases(name).await?.into_iter().collect(),
            releases: store.releases(name).await?,
        })
    }

    /// The version `version`.
    pub fn entry(&self, version: &str) -> Option<&ModelEntry> {
        self.entries.iter().find(|e| e.version == version)
    }

    /// The version an alias names.
    pub fn alias(&self, alias: &str) -> Option<&ModelEntry> {
        self.aliases.get(alias).and_then(|v| self.entry(v))
    }

    /// A version, or the version an alias names.
    ///
    /// # Errors
    /// Neither: the versions there are.
    pub fn resolve(&self, selector: &str) -> Result<&ModelEntry, RegistryError> {
        self.entry(selector)
            .or_else(|| self.alias(selector))
            .ok_or_else(|| RegistryError::Unknown {
                name: self.name.clone(),
                selector: selector.to_string(),
                known: if self.entries.is_empty() {
                    "none registered".into()
                } else {
                    self.entries
                        .iter()
                        .map(|e| e.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// The release not yet over (running or paused), if any: at most one at a time.
    pub fn open_release(&self) -> Option<&ModelRelease> {
        self.releases.last().filter(|r| r.state.is_open())
    }

    /// The aliases naming `version`.
    pub fn aliases_of(&self, version: &str) -> Vec<&str> {
        self.aliases
            .iter()
            .filter(|(_, v)| *v == version)
            .map(|(a, _)| a.as_str())
            .collect()
    }

    /// The version `[signal] model = "registry:NAME@SELECTOR"` trades: a version or an
    /// alias, not retired.
    ///
    /// # Errors
    /// No such version or alias, or it is retired.
    pub fn tradable(&self, selector: &str) -> Result<&ModelEntry, RegistryError> {
        let e = self.resolve(selector)?;
        if e.status == ModelStatus::Retired {
            return Err(RegistryError::Status {
                name: self.name.clone(),
                version: e.version.clone(),
                status: e.status.as_str(),
                what: "a retired version never trades; name another version",
            });
        }
        Ok(e)
    }

    /// The registry entry of `artifact` — one registered with its name and manifest version
    /// and its content address — or `None` when that version was never registered.
    ///
    /// # Errors
    /// The version is registered with another content address: the artifact changed after
    /// it was registered, and is refused.
    pub fn check(&self, artifact: &Artifact) -> Result<Option<&ModelEntry>, RegistryError> {
        let prefix = format!(
            "v{}.{}.{}-",
            artifact.version.major, artifact.version.minor, artifact.version.patch
        );
        let same: Vec<&ModelEntry> = self
            .entries
            .iter()
            .filter(|e| e.name == artifact.manifest.name && e.version.starts_with(&prefix))
            .collect();
        if let Some(e) = same
            .iter()
            .rev()
            .find(|e| e.artifact_sha256 == artifact.sha256)
        {
            return Ok(Some(e));
        }
        match same.last() {
            None => Ok(None),
            Some(e) => Err(RegistryError::Changed(Box::new(ArtifactChanged {
                dir: artifact.dir.display().to_string(),
                name: artifact.manifest.name.clone(),
                semver: artifact.version.to_string(),
                version: e.version.clone(),
                registered: e.artifact_sha256.clone(),
                actual: artifact.sha256.clone(),
            }))),
        }
    }
}

/// `artifact`, loaded from `entry`'s directory, is the artifact registered there.
///
/// # Errors
/// Its content address differs: it changed after it was registered.
pub fn same_artifact(entry: &ModelEntry, artifact: &Artifact) -> Result<(), RegistryError> {
    if entry.artifact_sha256 == artifact.sha256 && entry.name == artifact.manifest.name {
        return Ok(());
    }
    Err(RegistryError::Changed(Box::new(ArtifactChanged {
        dir: artifact.dir.display().to_string(),
        name: artifact.manifest.name.clone(),
        semver: artifact.version.to_string(),
        version: entry.version.clone(),
        registered: entry.artifact_sha256.clone(),
        actual: artifact.sha256.clone(),
    })))
}

/// The registry version of an artifact registered at `at`: `v{major}.{minor}.{patch}-{YYYYMMDD}`.
///
/// # Errors
/// Its version has a pre-release or build part.
pub fn registry_version(artifact: &Artifact, at: DateTime<Utc>) -> Result<String, RegistryError> {
    let v = &artifact.version;
    if !v.pre.is_empty() || !v.build.is_empty() {
        return Err(RegistryError::Version {
            name: artifact.manifest.name.clone(),
            version: v.to_string(),
        });
    }
    Ok(format!(
        "v{}.{}.{}-{}",
        v.major,
        v.minor,
        v.patch,
        at.format("%Y%m%d")
    ))
}

/// The manifest version in a registry version: `1.1.0` of `v1.1.0-20261205`.
pub fn semver_of(version: &str) -> &str {
    let v = version.strip_prefix('v').unwrap_or(version);
    v.rsplit_once('-').map_or(v, |(semver, _)| semver)
}

pub(crate) fn audit(
    reg: &Registry,
    actor: &Actor<'_>,
    action: &str,
    version: &str,
    detail: String,
) -> ModelAudit {
    ModelAudit {
        seq: 0,
        at: actor.at,
        actor: actor.who.to_string(),
        action: action.to_string(),
        name: reg.name.clone(),
        version: version.to_string(),
        reason: actor.reason.to_string(),
        detail,
    }
}

pub(crate) fn attributed(actor: &Actor<'_>) -> Result<(), RegistryError> {
    if actor.who.trim().is_empty() {
        return Err(RegistryError::Unattributed("who (--by)"));
    }
    if actor.reason.trim().is_empty() {
        return Err(RegistryError::Unattributed("why (--reason)"));
    }
    Ok(())
}

/// Registers `new` as a staging version and the model's candidate.
///
/// # Errors
/// Who or why is missing, the version does not fit the registry's form, or it is
/// registered already.
pub fn register(
    reg: &Registry,
    new: NewVersion<'_>,
    actor: &Actor<'_>,
) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    let version = registry_version(new.artifact, actor.at)?;
    if let Some(e) = reg.entry(&version) {
        return Err(RegistryError::Exists {
            name: reg.name.clone(),
            version,
            date: e.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        });
    }
    let parent = new.parent.or_else(|| reg.aliases.get(PRODUCTION).cloned());
    let (skipped, checks, result) = match new.gate {
        GateRecord::Passed {
            checks,
            result_sha256,
        } => (false, Some(checks), Some(result_sha256)),
        GateRecord::Skipped => (true, None, None),
    };
    // While a release is open, `candidate` stays on the version being released.
    let releasing = reg.open_release();
    let detail = format!(
        "registered from {} (content address {}){}{}{}",
        new.artifact_path,
        new.artifact.sha256,
        if skipped {
            "; the gate was skipped"
        } else {
            "; the gate passed"
        },
        parent
            .as_ref()
            .map(|p| format!("; parent {p}"))
            .unwrap_or_default(),
        releasing
            .map(|r| format!(
                "; release {} of {} is open: {} stays the candidate",
                r.id, r.candidate, r.candidate
            ))
            .unwrap_or_default(),
    );
    let entry = ModelEntry {
        name: reg.name.clone(),
        version: version.clone(),
        created_at: actor.at,
        created_by: actor.who.to_string(),
        status: ModelStatus::Staging,
        artifact_path: new.artifact_path,
        artifact_sha256: new.artifact.sha256.clone(),
        config_sha256: new.config_sha256,
        training_data_sha256: new
            .artifact
            .manifest
            .training
            .as_ref()
            .map(|t| t.data_sha256.clone()),
        parent_version: parent,
        gate_skipped: skipped,
        gate_checks: checks,
        gate_result_sha256: result,
        drift_baseline: new.drift_baseline,
        training_snapshot: new.training_snapshot,
    };
    Ok(RegistryWrite {
        insert: Some(entry),
        release: None,
        statuses: vec![],
        aliases: if releasing.is_some() {
            vec![]
        } else {
            vec![(CANDIDATE.into(), Some(version.clone()))]
        },
        audit: audit(reg, actor, "register", &version, detail),
    })
}

/// Promotes a staging version (a version or an alias) to production; the version it
/// replaces becomes `last_stable` (and staging again).
///
/// # Errors
/// Who or why is missing, no such version, or it is not staging.
pub fn promote(
    reg: &Registry,
    selector: &str,
    actor: &Actor<'_>,
) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    let next = reg.resolve(selector)?;
    if next.status != ModelStatus::Staging {
        return Err(RegistryError::Status {
            name: reg.name.clone(),
            version: next.version.clone(),
            status: next.status.as_str(),
            what: "only a staging version can be promoted",
        });
    }
    let version = next.version.clone();
    let mut statuses = vec![(version.clone(), ModelStatus::Production)];
    let mut aliases = vec![(PRODUCTION.to_string(), Some(version.clone()))];
    let previous = reg.alias(PRODUCTION).map(|p| p.version.clone());
    if let Some(p) = &previous {
        statuses.push((p.clone(), ModelStatus::Staging));
        aliases.push((LAST_STABLE.into(), Some(p.clone())));
    }
    if reg.aliases.get(CANDIDATE) == Some(&version) {
        aliases.push((CANDIDATE.into(), None));
    }
    let mut detail = match &previous {
        Some(p) => format!("production {p} -> {version}; {p} is last_stable"),
        None => format!("production: {version} (the first)"),
    };
    let release = match reg.open_release() {
        Some(r) if r.candidate == version => {
            detail.push_str(&format!("; release {} completed", r.id));
            Some(crate::release::changed(
                r,
                vigil_store::ReleaseState::Completed,
                actor,
                format!("completed: {version} promoted to production"),
            ))
        }
        Some(r) => {
            return Err(RegistryError::Release {
                name: reg.name.clone(),
                what: format!(
                    "release {} of {} is {}; promote its candidate or abort it before \
                     promoting {version}",
                    r.id,
                    r.candidate,
                    r.state.as_str()
                ),
            });
        }
        None => None,
    };
    Ok(RegistryWrite {
        insert: None,
        statuses,
        aliases,
        release,
        audit: audit(reg, actor, "promote", &version, detail),
    })
}

/// Retires a version that is not in production; the aliases naming it are removed.
///
/// # Errors
/// Who or why is missing, no such version, it is in production, or retired already.
pub fn retire(
    reg: &Registry,
    selector: &str,
    actor: &Actor<'_>,
) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    let e = reg.resolve(selector)?;
    let what = match e.status {
        ModelStatus::Staging => None,
        ModelStatus::Production => Some("promote another version or roll back before retiring it"),
        ModelStatus::Retired => Some("it is retired already"),
    };
    if let Some(what) = what {
        return Err(RegistryError::Status {
            name: reg.name.clone(),
            version: e.version.clone(),
            status: e.status.as_str(),
            what,
        });
    }
    let aliases: Vec<(String, Option<String>)> = reg
        .aliases_of(&e.version)
        .into_iter()
        .map(|a| (a.to_string(), None))
        .collect();
    let detail = if aliases.is_empty() {
        "retired".to_string()
    } else {
        format!(
            "retired; aliases removed: {}",
            aliases
                .iter()
                .map(|(a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut detail = detail;
    let release = reg
        .open_release()
        .filter(|r| r.candidate == e.version)
        .map(|r| {
            detail.push_str(&format!("; release {} aborted", r.id));
            crate::release::changed(
                r,
                vigil_store::ReleaseState::Aborted,
                actor,
                format!("aborted: its candidate {} was retired", e.version),
            )
        });
    Ok(RegistryWrite {
        insert: None,
        statuses: vec![(e.version.clone(), ModelStatus::Retired)],
        aliases,
        release,
        audit: audit(reg, actor, "retire", &e.version, detail),
    })
}

/// Rolls production back to `last_stable` at once: the version in production is retired
/// (it failed in production; a fix is a new version), `last_stable` becomes production.
///
/// # Errors
/// Who or why is missing, nothing is in production, or there is no last stable version
/// to return to.
pub fn rollback(reg: &Registry, actor: &Actor<'_>) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    let Some(current) = reg.alias(PRODUCTION) else {
        return Err(RegistryError::NoRollback {
            name: reg.name.clone(),
            what: "no version is in production",
        });
    };
    let Some(stable) = reg
        .alias(LAST_STABLE)
        .filter(|s| s.status == ModelStatus::Staging)
    else {
        return Err(RegistryError::NoRollback {
            name: reg.name.clone(),
            what: "there is no last stable version to return to",
        });
    };
    let detail = format!(
        "production {} -> {} (last_stable); {} retired",
        current.version, stable.version, current.version
    );
    Ok(RegistryWrite {
        insert: None,
        statuses: vec![
            (current.version.clone(), ModelStatus::Retired),
            (stable.version.clone(), ModelStatus::Production),
        ],
        aliases: vec![
            (PRODUCTION.into(), Some(stable.version.clone())),
            (LAST_STABLE.into(), None),
        ],
        release: None,
        audit: audit(reg, actor, "rollback", &stable.version, detail),
    })
}

#[cfg(test)]
pub(crate) mod tests;
