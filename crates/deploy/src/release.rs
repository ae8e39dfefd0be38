//! A model's release: a staging version's way to production, one release at a time, its state
//! a row in the store ([`ModelRelease`]) changed whole with the registry and audited.
//!
//! - `start`: the candidate (a staging version, named the `candidate` alias) starts in
//!   **shadow**: each `vigil run` trading the model's production version runs the candidate
//!   beside it on the same bars, through a simulated venue, and never sends an order for it.
//! - `pause` / `resume`: an operator holds it (the candidate does not run) and lets it go on.
//! - `abort`: final; a new release starts again from nothing.
//! - Promoting the candidate (`vigil model promote`) completes it; retiring it aborts it.
//!
//! Like the registry's rules, each takes the registry as stored and returns the change.

use vigil_store::{ModelRelease, ModelStatus, RegistryWrite, ReleaseState};

use crate::registry::{Actor, CANDIDATE, PRODUCTION, Registry, RegistryError, attributed, audit};

/// The stage a release starts in: the candidate runs beside production, without orders.
pub const SHADOW: &str = "shadow";

/// `release` moved to `state` by `actor`, `detail` saying how.
pub(crate) fn changed(
    release: &ModelRelease,
    state: ReleaseState,
    actor: &Actor<'_>,
    detail: String,
) -> ModelRelease {
    ModelRelease {
        state,
        updated_at: actor.at,
        detail,
        ..release.clone()
    }
}

fn refused(reg: &Registry, what: String) -> RegistryError {
    RegistryError::Release {
        name: reg.name.clone(),
        what,
    }
}

/// Starts a release of `selector` (a staging version or alias) in shadow.
///
/// # Errors
/// Who or why is missing, a release is open already, no such version, it is not staging,
/// or nothing is in production to run beside.
pub fn start(
    reg: &Registry,
    selector: &str,
    actor: &Actor<'_>,
) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    if let Some(open) = reg.open_release() {
        return Err(refused(
            reg,
            format!(
                "release {} of {} is {}; finish it (promote the candidate) or abort it first",
                open.id,
                open.candidate,
                open.state.as_str()
            ),
        ));
    }
    let candidate = reg.resolve(selector)?;
    if candidate.status != ModelStatus::Staging {
        return Err(RegistryError::Status {
            name: reg.name.clone(),
            version: candidate.version.clone(),
            status: candidate.status.as_str(),
            what: "only a staging version can be released",
        });
    }
    let Some(production) = reg.alias(PRODUCTION) else {
        return Err(refused(
            reg,
            "no version is in production for a candidate to run beside; promote the first \
             version directly"
                .into(),
        ));
    };
    let version = candidate.version.clone();
    let detail = format!(
        "shadow started: {version} runs beside production {} without orders",
        production.version
    );
    Ok(RegistryWrite {
        insert: None,
        statuses: vec![],
        aliases: vec![(CANDIDATE.into(), Some(version.clone()))],
        release: Some(ModelRelease {
            id: 0,
            name: reg.name.clone(),
            candidate: version.clone(),
            production: Some(production.version.clone()),
            stage: SHADOW.into(),
            state: ReleaseState::Running,
            started_at: actor.at,
            started_by: actor.who.to_string(),
            reason: actor.reason.to_string(),
            updated_at: actor.at,
            detail: detail.clone(),
            step: 0,
            weight: None,
            step_since: None,
        }),
        audit: audit(reg, actor, "release_start", &version, detail),
    })
}

/// What an operator does to the open release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Hold it: the candidate stops running.
    Pause,
    /// Let it go on.
    Resume,
    /// End it for good.
    Abort,
}

impl Action {
    /// Its name in the audit (`release_pause` …).
    pub fn audit_name(self) -> &'static str {
        match self {
            Self::Pause => "release_pause",
            Self::Resume => "release_resume",
            Self::Abort => "release_abort",
        }
    }
}

/// Pauses, resumes or aborts the open release.
///
/// # Errors
/// Who or why is missing, no release is open, or it is already as asked.
pub fn act(
    reg: &Registry,
    action: Action,
    actor: &Actor<'_>,
) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    let Some(open) = reg.open_release() else {
        let last = reg.releases.last().map_or_else(
            || "there has been no release".to_string(),
            |r| {
                format!(
                    "the last release ({}, of {}) is {}",
                    r.id,
                    r.candidate,
                    r.state.as_str()
                )
            },
        );
        return Err(refused(reg, format!("no release is open: {last}")));
    };
    let (state, detail) = match (action, open.state) {
        (Action::Pause, ReleaseState::Running) => (ReleaseState::Paused, "paused".to_string()),
        (Action::Resume, ReleaseState::Paused) => (ReleaseState::Running, "resumed".to_string()),
        (Action::Abort, _) => (
            ReleaseState::Aborted,
            format!(
                "aborted in {}; final: a new release starts again",
                open.stage
            ),
        ),
        (_, state) => {
            return Err(refused(
                reg,
                format!("release {} is {} already", open.id, state.as_str()),
            ));
        }
    };
    let mut aliases = vec![];
    if action == Action::Abort && reg.aliases.get(CANDIDATE) == Some(&open.candidate) {
        aliases.push((CANDIDATE.into(), None));
    }
    let detail = format!("release {} of {}: {detail}", open.id, open.candidate);
    Ok(RegistryWrite {
        insert: None,
        statuses: vec![],
        aliases,
        release: Some(changed(open, state, actor, detail.clone())),
        audit: audit(reg, actor, action.audit_name(), &open.candidate, detail),
    })
}

#[cfg(test)]
mod tests;
