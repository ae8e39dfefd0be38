use std::path::Path;

use super::*;

/// `write` applied to `reg` in memory, as the store applies it.
pub(crate) fn applied(reg: &Registry, write: &RegistryWrite) -> Registry {
    let mut out = reg.clone();
    if let Some(e) = &write.insert {
        out.entries.push(e.clone());
    }
    for (version, status) in &write.statuses {
        if let Some(e) = out.entries.iter_mut().find(|e| &e.version == version) {
            e.status = *status;
        }
    }
    for (alias, version) in &write.aliases {
        match version {
            Some(v) => {
                out.aliases.insert(alias.clone(), v.clone());
            }
            None => {
                out.aliases.remove(alias);
            }
        }
    }
    if let Some(r) = &write.release {
        match out.releases.iter_mut().find(|o| o.id == r.id && r.id != 0) {
            Some(o) => *o = r.clone(),
            None => out.releases.push(ModelRelease {
                id: out.releases.len() as i64 + 1,
                ..r.clone()
            }),
        }
    }
    out
}

pub(crate) fn model(name: &str) -> Artifact {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name);
    Artifact::load(&dir).expect("a bundled model")
}

pub(crate) fn at(day: u32) -> DateTime<Utc> {
    format!("2026-12-{day:02}T10:00:00Z").parse().expect("time")
}

pub(crate) fn ana(day: u32) -> Actor<'static> {
    Actor {
        who: "ana",
        reason: "weekly release",
        at: at(day),
    }
}

pub(crate) fn new(artifact: &Artifact) -> NewVersion<'_> {
    NewVersion {
        artifact,
        artifact_path: artifact.dir.display().to_string(),
        config_sha256: "cd".repeat(32),
        gate: GateRecord::Passed {
            checks: "[]".into(),
            result_sha256: "01".repeat(32),
        },
        parent: None,
        drift_baseline: None,
        training_snapshot: None,
    }
}

pub(crate) fn empty(name: &str) -> Registry {
    Registry {
        name: name.into(),
        ..Registry::default()
    }
}

/// Registering makes a staging candidate named `v{semver}-{date}`, with the training
/// data's hash and the gate's record, audited; the same version twice is refused.
#[test]
fn registering_makes_a_staging_candidate_with_its_provenance() {
    let mlp = model("goog_mlp");
    let reg = empty("goog_mlp");
    let write = register(&reg, new(&mlp), &ana(4)).expect("register");
    let e = write.insert.as_ref().expect("an entry");
    assert_eq!(e.version, format!("v{}-20261204", mlp.version));
    assert_eq!(e.status, ModelStatus::Staging);
    assert_eq!(e.artifact_sha256, mlp.sha256);
    assert_eq!(
        e.training_data_sha256.as_deref(),
        Some(
            mlp.manifest
                .training
                .as_ref()
                .expect("trained")
                .data_sha256
                .as_str()
        )
    );
    assert_eq!((e.gate_skipped, e.parent_version.as_deref()), (false, None));
    assert_eq!(write.aliases, [(CANDIDATE.into(), Some(e.version.clone()))]);
    assert_eq!(
        (write.audit.actor.as_str(), write.audit.action.as_str()),
        ("ana", "register")
    );
    assert_eq!(write.audit.reason, "weekly release");
    assert!(
        write.audit.detail.contains("the gate passed"),
        "{}",
        write.audit.detail
    );

    let reg = applied(&reg, &write);
    let again = register(&reg, new(&mlp), &ana(4)).expect_err("twice");
    assert!(matches!(again, RegistryError::Exists { .. }), "{again}");
    // The next day it is another registry version of the same artifact.
    let mut skipped = new(&mlp);
    skipped.gate = GateRecord::Skipped;
    let next = register(&reg, skipped, &ana(5)).expect("next day");
    let e = next.insert.expect("an entry");
    assert!(e.gate_skipped && e.gate_checks.is_none());
    assert!(next.audit.detail.contains("the gate was skipped"));

    let who = Actor { who: " ", ..ana(6) };
    assert_eq!(
        register(&reg, new(&mlp), &who).expect_err("nobody"),
        RegistryError::Unattributed("who (--by)")
    );
    let why = Actor {
        reason: "",
        ..ana(6)
    };
    assert_eq!(
        register(&reg, new(&mlp), &why).expect_err("no reason"),
        RegistryError::Unattributed("why (--reason)")
    );
    let mut pre = mlp.clone();
    pre.version = "2.0.0-rc.1".parse().expect("semver");
    let e = register(&reg, new(&pre), &ana(6)).expect_err("pre-release");
    assert!(e.to_string().contains("2.0.0-rc.1"), "{e}");
}

/// The whole life: promote the first, promote a second (the first becomes last_stable),
/// roll back (the second retired, the first in production again), and the refusals.
#[test]
fn promote_and_rollback_move_the_aliases_and_statuses_together() {
    let mlp = model("goog_mlp");
    let mut v2 = mlp.clone();
    v2.version = "1.1.0".parse().expect("semver");
    v2.sha256 = "ff".repeat(32);
    let mut reg = empty("goog_mlp");
    let step = |reg: &mut Registry, w: Result<RegistryWrite, RegistryError>| {
        *reg = applied(reg, &w.expect("allowed"));
    };
    let w = register(&reg, new(&mlp), &ana(4));
    step(&mut reg, w);
    let first = reg.entries[0].version.clone();
    // Nothing in production yet: nothing to roll back.
    assert!(matches!(
        rollback(&reg, &ana(4)),
        Err(RegistryError::NoRollback { .. })
    ));
    let w = promote(&reg, CANDIDATE, &ana(4));
    step(&mut reg, w);
    assert_eq!(reg.alias(PRODUCTION).map(|e| &e.version), Some(&first));
    assert_eq!(reg.entries[0].status, ModelStatus::Production);
    assert!(
        !reg.aliases.contains_key(CANDIDATE),
        "promoted: no longer a candidate"
    );
    // Production cannot be promoted again, nor retired.
    assert!(matches!(
        promote(&reg, &first, &ana(4)),
        Err(RegistryError::Status { .. })
    ));
    assert!(matches!(
        retire(&reg, PRODUCTION, &ana(4)),
        Err(RegistryError::Status { .. })
    ));
    // No last stable version yet.
    assert!(matches!(
        rollback(&reg, &ana(4)),
        Err(RegistryError::NoRollback { .. })
    ));

    let w = register(&reg, new(&v2), &ana(5));
    step(&mut reg, w);
    let second = reg.entries[1].version.clone();
    assert_eq!(second, "v1.1.0-20261205");
    assert_eq!(
        reg.entries[1].parent_version.as_ref(),
        Some(&first),
        "parent: production"
    );
    let w = promote(&reg, &second, &ana(5)).expect("promote");
    assert_eq!(
        w.audit.detail,
        format!("production {first} -> {second}; {first} is last_stable")
    );
    step(&mut reg, Ok(w));
    assert_eq!(reg.aliases.get(PRODUCTION), Some(&second));
    assert_eq!(reg.aliases.get(LAST_STABLE), Some(&first));
    assert_eq!(reg.entries[0].status, ModelStatus::Staging);
    assert_eq!(reg.entries[1].status, ModelStatus::Production);

    let w = rollback(&reg, &ana(6)).expect("rollback");
    assert_eq!(
        (w.audit.action.as_str(), &w.audit.version),
        ("rollback", &first)
    );
    step(&mut reg, Ok(w));
    assert_eq!(reg.aliases.get(PRODUCTION), Some(&first));
    assert_eq!(reg.entries[0].status, ModelStatus::Production);
    assert_eq!(reg.entries[1].status, ModelStatus::Retired);
    assert!(!reg.aliases.contains_key(LAST_STABLE));
    // A retired version is never promoted, nor retired twice; an unknown one is named.
    assert!(matches!(
        promote(&reg, &second, &ana(6)),
        Err(RegistryError::Status { .. })
    ));
    assert!(matches!(
        retire(&reg, &second, &ana(6)),
        Err(RegistryError::Status { .. })
    ));
    let e = promote(&reg, "v9.9.9-20261206", &ana(6)).expect_err("unknown");
    assert!(e.to_string().contains(&first), "{e}");
}

/// Retiring a staging version removes the aliases that name it.
#[test]
fn retiring_a_candidate_removes_its_alias() {
    let mlp = model("goog_mlp");
    let reg = empty("goog_mlp");
    let reg = applied(&reg, &register(&reg, new(&mlp), &ana(4)).expect("register"));
    let w = retire(&reg, CANDIDATE, &ana(4)).expect("retire");
    assert_eq!(w.aliases, [(CANDIDATE.to_string(), None)]);
    let reg = applied(&reg, &w);
    assert_eq!(reg.entries[0].status, ModelStatus::Retired);
    assert!(reg.aliases.is_empty());
}

/// An artifact registered under its version loads; the same version with another content
/// address (the manifest or a file changed, the hashes redone) is refused, naming both.
#[test]
fn an_artifact_changed_after_registration_is_refused() {
    let mlp = model("goog_mlp");
    let reg = empty("goog_mlp");
    assert_eq!(reg.check(&mlp), Ok(None), "never registered");
    let reg = applied(&reg, &register(&reg, new(&mlp), &ana(4)).expect("register"));
    assert_eq!(
        reg.check(&mlp)
            .expect("the same")
            .map(|e| e.version.as_str()),
        Some(format!("v{}-20261204", mlp.version).as_str())
    );
    let mut changed = mlp.clone();
    changed.sha256 = "00".repeat(32);
    let e = reg.check(&changed).expect_err("changed");
    let text = e.to_string();
    assert!(
        text.contains(&mlp.sha256) && text.contains(&"00".repeat(32)),
        "{text}"
    );
    assert!(text.contains("models/goog_mlp"), "{text}");
    // Another version number is another version: not registered, not refused.
    let mut other = changed.clone();
    other.version = "7.0.0".parse().expect("semver");
    assert_eq!(reg.check(&other), Ok(None));
}

/// `registry:NAME@SELECTOR` trades a version or an alias that is not retired, and only the
/// artifact registered under it.
#[test]
fn a_registry_reference_trades_what_is_registered_and_not_retired() {
    let mlp = model("goog_mlp");
    let reg = empty("goog_mlp");
    let reg = applied(&reg, &register(&reg, new(&mlp), &ana(4)).expect("register"));
    assert!(matches!(
        reg.tradable(PRODUCTION),
        Err(RegistryError::Unknown { .. })
    ));
    let reg = applied(&reg, &promote(&reg, CANDIDATE, &ana(4)).expect("promote"));
    let entry = reg.tradable(PRODUCTION).expect("production");
    assert_eq!(same_artifact(entry, &mlp), Ok(()));
    let mut changed = mlp.clone();
    changed.sha256 = "00".repeat(32);
    assert!(matches!(
        same_artifact(entry, &changed),
        Err(RegistryError::Changed(_))
    ));
    let mut retired = reg.clone();
    retired.entries[0].status = ModelStatus::Retired;
    let e = retired.tradable(&entry.version).expect_err("retired");
    assert!(e.to_string().contains("never trades"), "{e}");
}
