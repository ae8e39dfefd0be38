//! A model's open release, found at start: when one is running in shadow for the model the
//! session trades, the Signal agent runs its candidate beside it (docs/deploy.md). A
//! candidate that cannot run (paused, changed since it was registered, unreadable figures)
//! never stops production from trading: the session says why in its log and trades on.

use vigil_config::VigilConfig;
use vigil_core::{Level, Timestamp};
use vigil_deploy::registry::same_artifact;
use vigil_deploy::release::SHADOW;
use vigil_log::{Event, LogEvent};
use vigil_signal_agent::{ActiveModel, DriftLinks, ShadowLinks};
use vigil_store::{ReleaseState, SharedStore};

/// Why a release's candidate does not run in this session.
#[derive(Debug)]
pub(super) struct Skipped {
    release: i64,
    candidate: String,
    reason: String,
    level: Level,
}

impl Skipped {
    /// Its log line.
    pub(super) fn line(&self, at: Timestamp) -> LogEvent {
        LogEvent::new(at, "vigil", Event::ShadowSkipped)
            .level(self.level)
            .with("release", self.release)
            .with("candidate", self.candidate.clone())
            .with("reason", self.reason.clone())
    }
}

/// The shadow run of `model`'s open release, if there is one to run.
///
/// # Errors
/// The store cannot be read (the session does not start: the store is its memory).
pub(super) async fn shadow_links(
    cfg: &VigilConfig,
    store: &SharedStore,
    model: &ActiveModel,
) -> Result<Result<Option<ShadowLinks>, Skipped>, vigil_store::StoreError> {
    let Some(artifact) = model.artifact() else {
        return Ok(Ok(None)); // the built-in model is never released
    };
    let name = &artifact.manifest.name;
    let releases = store.releases(name).await?;
    let Some(release) = releases.last().filter(|r| r.state.is_open()) else {
        return Ok(Ok(None));
    };
    let skip = |reason: String, level: Level| Skipped {
        release: release.id,
        candidate: release.candidate.clone(),
        reason,
        level,
    };
    if release.state == ReleaseState::Paused {
        return Ok(Err(skip(
            "the release is paused (`vigil model release resume` lets it go on)".into(),
            Level::Warn,
        )));
    }
    if release.stage != SHADOW && release.stage != vigil_deploy::canary::CANARY {
        return Ok(Err(skip(
            format!("stage {:?} is not one this vigil runs", release.stage),
            Level::Error,
        )));
    }
    let entries = store.registry_entries(Some(name)).await?;
    let Some(entry) = entries.iter().find(|e| e.version == release.candidate) else {
        return Ok(Err(skip(
            format!("{name} {} is not in the registry", release.candidate),
            Level::Error,
        )));
    };
    if artifact.sha256 == entry.artifact_sha256 {
        return Ok(Err(skip(
            "the session trades the candidate itself: nothing to run it beside".into(),
            Level::Warn,
        )));
    }
    let dir = vigil_config::SignalConfig {
        model: entry.artifact_path.clone(),
        ..cfg.signal.clone()
    };
    let candidate = match ActiveModel::from_config(&dir, std::path::Path::new("")) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Err(skip(
                format!("the candidate cannot be loaded: {e}"),
                Level::Error,
            )));
        }
    };
    if let Some(a) = candidate.artifact()
        && let Err(e) = same_artifact(entry, a)
    {
        return Ok(Err(skip(e.to_string(), Level::Error)));
    }
    let calendar = match cfg.calendar.calendar() {
        Ok(c) => c,
        Err(e) => return Ok(Err(skip(format!("calendar: {e}"), Level::Error))),
    };
    let rows = store.shadow_sessions(release.id).await?;
    let stored = match vigil_deploy::shadow::stored(&rows) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(skip(
                format!(
                    "release {}'s stored shadow run cannot be read: {e}",
                    release.id
                ),
                Level::Error,
            )));
        }
    };
    let since = match release.step_since.as_deref().map(|d| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|e| format!("release {}'s step_since {d:?}: {e}", release.id))
    }) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return Ok(Err(skip(e, Level::Error))),
    };
    Ok(Ok(Some(ShadowLinks {
        release_id: release.id,
        model: candidate,
        production: model.label().to_string(),
        stored,
        config: cfg.release.shadow.clone(),
        rollback: cfg.release.rollback.clone(),
        calendar,
        store: store.clone(),
        canary: vigil_signal_agent::CanaryLinks {
            step: release.step,
            weight: release.weight.unwrap_or_default(),
            since,
            config: cfg.release.canary.clone(),
        },
    })))
}

/// What starts a release of the traded model while the session runs (`None`: the built-in
/// model is never released): the store's change as `vigil model release start candidate`
/// makes it, then the shadow run it opens.
pub(super) fn loader(
    cfg: &VigilConfig,
    store: &SharedStore,
    model: &ActiveModel,
) -> Option<vigil_signal_agent::ReleaseLoader> {
    let name = model.artifact()?.manifest.name.clone();
    let (cfg, store, model) = (cfg.clone(), store.clone(), model.clone());
    Some(std::sync::Arc::new(move |who: String, why: String, at| {
        let (cfg, store, model, name) = (cfg.clone(), store.clone(), model.clone(), name.clone());
        Box::pin(async move {
            let reg = vigil_deploy::registry::Registry::read(&*store, &name)
                .await
                .map_err(|e| e.to_string())?;
            let actor = vigil_deploy::registry::Actor {
                who: &who,
                reason: &why,
                at,
            };
            let write =
                vigil_deploy::release::start(&reg, vigil_deploy::registry::CANDIDATE, &actor)
                    .map_err(|e| e.to_string())?;
            store
                .registry_apply(&write)
                .await
                .map_err(|e| e.to_string())?;
            match shadow_links(&cfg, &store, &model).await {
                Ok(Ok(Some(links))) => Ok((write, links)),
                Ok(Ok(None)) => Err(format!(
                    "{}; but no open release of {name} was found after it",
                    write.audit.detail
                )),
                Ok(Err(skipped)) => Err(format!(
                    "{}; it does not run in this session: {} (it stays started in the store)",
                    write.audit.detail, skipped.reason
                )),
                Err(e) => Err(format!("{}; its shadow run: {e}", write.audit.detail)),
            }
        })
    }))
}

/// The drift watch over the traded model: its registry entry's baseline. `Err`: why it is
/// not watched (logged as `drift_unwatched`); `Ok(None)`: `[release.drift]` is off, or the
/// model is the built-in one.
///
/// # Errors
/// The store cannot be read.
pub(super) async fn drift_links(
    cfg: &VigilConfig,
    store: &SharedStore,
    model: &ActiveModel,
) -> Result<Result<Option<DriftLinks>, String>, vigil_store::StoreError> {
    let Some(artifact) = model.artifact().filter(|_| cfg.release.drift.enabled) else {
        return Ok(Ok(None));
    };
    let entries = store
        .registry_entries(Some(&artifact.manifest.name))
        .await?;
    let Some(entry) = entries
        .iter()
        .find(|e| e.artifact_sha256 == artifact.sha256)
    else {
        return Ok(Err(
            "not registered (`vigil model register --data …` records its baseline)".into(),
        ));
    };
    let Some(json) = &entry.drift_baseline else {
        return Ok(Err(format!(
            "{} was registered without the gate's data: no baseline",
            entry.version
        )));
    };
    let baseline = match serde_json::from_str(json) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(format!(
                "{}'s baseline cannot be read: {e}",
                entry.version
            )));
        }
    };
    let calendar = match cfg.calendar.calendar() {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("calendar: {e}"))),
    };
    Ok(Ok(Some(DriftLinks {
        baseline,
        config: cfg.release.drift.clone(),
        calendar,
    })))
}

/// The `drift_unwatched` line.
pub(super) fn drift_unwatched(at: Timestamp, model: &ActiveModel, reason: &str) -> LogEvent {
    LogEvent::new(at, "vigil", Event::DriftUnwatched)
        .with("model", model.label())
        .with("reason", reason.to_string())
}
