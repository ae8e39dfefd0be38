use super::*;
use crate::registry::tests::{ana, applied, empty, model, new};
use crate::registry::{promote, register, retire};

/// goog_mlp with v1.0.0 in production and v1.1.0 registered (staging, the candidate).
fn two_versions() -> (Registry, String, String) {
    let mlp = model("goog_mlp");
    let mut v2 = mlp.clone();
    v2.version = "1.1.0".parse().expect("semver");
    v2.sha256 = "ff".repeat(32);
    let reg = empty("goog_mlp");
    let mut reg = applied(&reg, &register(&reg, new(&mlp), &ana(4)).expect("register"));
    let w = promote(&reg, CANDIDATE, &ana(4)).expect("promote the first");
    reg = applied(&reg, &w);
    let w = register(&reg, new(&v2), &ana(5)).expect("register the second");
    reg = applied(&reg, &w);
    let first = reg.entries[0].version.clone();
    let second = reg.entries[1].version.clone();
    (reg, first, second)
}

#[test]
fn a_release_starts_in_shadow_beside_production_one_at_a_time() {
    let (reg, first, second) = two_versions();
    let w = start(&reg, CANDIDATE, &ana(5)).expect("start");
    let r = w.release.as_ref().expect("a release");
    assert_eq!(
        (r.id, r.stage.as_str(), r.state, r.candidate.as_str()),
        (0, SHADOW, ReleaseState::Running, second.as_str())
    );
    assert_eq!(r.production.as_deref(), Some(first.as_str()));
    assert_eq!(w.audit.action, "release_start");
    let reg = applied(&reg, &w);
    assert_eq!(reg.open_release().map(|r| r.id), Some(1));

    // A second release while one is open, production itself, or nothing in production.
    let err = start(&reg, &second, &ana(5)).expect_err("one at a time");
    assert!(err.to_string().contains("release 1 of"), "{err}");
    let mut closed = reg.clone();
    closed.releases.clear();
    assert!(matches!(
        start(&closed, &first, &ana(5)),
        Err(RegistryError::Status { .. })
    ));
    let mut none = closed.clone();
    none.aliases.remove(PRODUCTION);
    let err = start(&none, &second, &ana(5)).expect_err("nothing in production");
    assert!(
        err.to_string().contains("no version is in production"),
        "{err}"
    );
    // Unattributed.
    let nobody = Actor {
        reason: " ",
        ..ana(5)
    };
    assert!(matches!(
        start(&closed, &second, &nobody),
        Err(RegistryError::Unattributed(_))
    ));
}

#[test]
fn pause_resume_and_abort_and_an_abort_is_final() {
    let (reg, _, second) = two_versions();
    let reg = applied(&reg, &start(&reg, &second, &ana(5)).expect("start"));
    assert!(
        act(&reg, Action::Resume, &ana(5)).is_err(),
        "running already"
    );
    let reg = applied(&reg, &act(&reg, Action::Pause, &ana(5)).expect("pause"));
    assert_eq!(reg.releases[0].state, ReleaseState::Paused);
    assert!(act(&reg, Action::Pause, &ana(5)).is_err(), "paused already");
    let reg = applied(&reg, &act(&reg, Action::Resume, &ana(6)).expect("resume"));
    assert_eq!(reg.releases[0].state, ReleaseState::Running);
    let w = act(&reg, Action::Abort, &ana(6)).expect("abort");
    assert_eq!(w.audit.action, "release_abort");
    let reg = applied(&reg, &w);
    assert_eq!(reg.releases[0].state, ReleaseState::Aborted);
    assert!(
        !reg.aliases.contains_key(CANDIDATE),
        "no longer a candidate"
    );
    // Nothing resumes an aborted release; only a new one starts.
    let err = act(&reg, Action::Resume, &ana(6)).expect_err("final");
    assert!(err.to_string().contains("is aborted"), "{err}");
    let w = start(&reg, &second, &ana(7)).expect("a new release");
    let reg = applied(&reg, &w);
    assert_eq!(reg.releases.len(), 2);
    assert_eq!(reg.open_release().map(|r| r.id), Some(2));
}

#[test]
fn promoting_the_candidate_completes_the_release_and_retiring_it_aborts_it() {
    let (reg, first, second) = two_versions();
    let reg = applied(&reg, &start(&reg, &second, &ana(5)).expect("start"));
    // Another staging version cannot be promoted past an open release.
    let mut v3 = model("goog_mlp");
    v3.version = "1.2.0".parse().expect("semver");
    v3.sha256 = "ee".repeat(32);
    let third = applied(&reg, &register(&reg, new(&v3), &ana(6)).expect("register"));
    assert_eq!(
        third.aliases.get(CANDIDATE),
        Some(&second),
        "the release keeps its candidate"
    );
    let err = promote(&third, "v1.2.0-20261206", &ana(6)).expect_err("release open");
    assert!(matches!(err, RegistryError::Release { .. }), "{err}");
    assert!(matches!(
        promote(&reg, &first, &ana(6)),
        Err(RegistryError::Status { .. })
    ));
    let w = promote(&reg, &second, &ana(6)).expect("promote");
    assert!(
        w.audit.detail.ends_with("release 1 completed"),
        "{}",
        w.audit.detail
    );
    let done = applied(&reg, &w);
    assert_eq!(done.releases[0].state, ReleaseState::Completed);
    assert!(done.open_release().is_none());

    let w = retire(&reg, &second, &ana(6)).expect("retire");
    let gone = applied(&reg, &w);
    assert_eq!(gone.releases[0].state, ReleaseState::Aborted);
}
