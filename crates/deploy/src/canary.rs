//! A release's canary by capital weight: after the shadow run, the candidate trades a share
//! `w` of capital beside production's `1 − w`, both deciding on every bar and their targets
//! netted into one account, `w` growing through `[release.canary] steps` (5 → 25 → 50 →
//! 100 % by default). Each step's analysis judges the paired per-session returns of the two
//! versions (each simulated at full size on the same bars, so that a 5 % step is judged as
//! well as a 50 % one); a pass moves to the next step, a fail aborts, an inconclusive one
//! holds the step. The last step's pass promotes the candidate.
//!
//! The step, its weight and the session it began after are columns of the release's row,
//! changed with an audit row in one transaction: a restart resumes the same step with the
//! same weight, and an abort is final.

use rust_decimal::Decimal;
use vigil_config::CanaryConfig;
use vigil_store::{RegistryWrite, ReleaseState};

use crate::registry::{Actor, Registry, RegistryError, attributed, audit, promote};
use crate::release::{SHADOW, changed};

/// A release's stage once its candidate trades capital.
pub const CANARY: &str = "canary";

/// What a step's analysis found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate is not worse than production by more than the margin.
    Pass,
    /// It is worse by more than the margin, beyond doubt.
    Fail,
    /// Not enough sessions, or not clear either way: the step holds.
    Inconclusive,
}

impl Verdict {
    /// Its name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// A step's analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The verdict.
    pub verdict: Verdict,
    /// Sessions judged.
    pub sessions: usize,
    /// Mean of (candidate − production) per-session return, in bps.
    pub mean_diff_bps: Option<f64>,
    /// Its standard error, in bps.
    pub se_bps: Option<f64>,
    /// Why, in words.
    pub reason: String,
}

/// Judges a step on `diffs`, each session's candidate return less production's (fractions).
pub fn analyse(diffs: &[f64], cfg: &CanaryConfig) -> Analysis {
    let n = diffs.len();
    let need = cfg.sessions_per_step as usize;
    let mean = (n > 0).then(|| diffs.iter().sum::<f64>() / n as f64);
    let se = mean.filter(|_| n > 1).map(|m| {
        let var = diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    });
    let bps = |x: f64| x * 10_000.0;
    let margin = cfg.margin_bps / 10_000.0;
    let (verdict, reason) = match (mean, se) {
        (Some(m), Some(se)) if n >= need && m - cfg.confidence_z * se > -margin => (
            Verdict::Pass,
            format!(
                "{n} sessions: mean difference {:.2} bps − {}×{:.2} bps is above −{} bps",
                bps(m),
                cfg.confidence_z,
                bps(se),
                cfg.margin_bps
            ),
        ),
        (Some(m), Some(se)) if n >= need && m + cfg.confidence_z * se < -margin => (
            Verdict::Fail,
            format!(
                "{n} sessions: mean difference {:.2} bps + {}×{:.2} bps is below −{} bps: \
                 the candidate is worse than production beyond the margin",
                bps(m),
                cfg.confidence_z,
                bps(se),
                cfg.margin_bps
            ),
        ),
        _ if n < need => (Verdict::Inconclusive, format!("{n} of {need} sessions")),
        (m, se) => (
            Verdict::Inconclusive,
            format!(
                "{n} sessions: mean difference {:.2} ± {}×{:.2} bps straddles −{} bps; the \
                 step holds",
                m.map_or(0.0, bps),
                cfg.confidence_z,
                se.map_or(0.0, bps),
                cfg.margin_bps
            ),
        ),
    };
    Analysis {
        verdict,
        sessions: n,
        mean_diff_bps: mean.map(bps),
        se_bps: se.map(bps),
        reason,
    }
}

/// The candidate's share of capital at step `k` (1-based) of `steps` (percent).
pub fn weight_at(steps: &[Decimal], k: u32) -> Option<Decimal> {
    let i = usize::try_from(k).ok()?.checked_sub(1)?;
    steps.get(i).map(|p| p / Decimal::ONE_HUNDRED)
}

/// Moves the open release one step on: from shadow to the first step, from a step to the
/// next, and from the last (100 %) to production (the candidate is promoted and the
/// release completes). `since` is the last exchange session before the new step (its
/// analysis counts the sessions after it).
///
/// # Errors
/// Who or why is missing, no release is open, it is paused, or the configured steps do not
/// reach the stored step.
pub fn step(
    reg: &Registry,
    steps: &[Decimal],
    since: Option<String>,
    actor: &Actor<'_>,
) -> Result<RegistryWrite, RegistryError> {
    attributed(actor)?;
    let refused = |what: String| RegistryError::Release {
        name: reg.name.clone(),
        what,
    };
    let Some(open) = reg.open_release() else {
        return Err(refused("no release is open to step".into()));
    };
    if open.state != ReleaseState::Running {
        return Err(refused(format!(
            "release {} is {}; resume it first",
            open.id,
            open.state.as_str()
        )));
    }
    let last = u32::try_from(steps.len()).unwrap_or(u32::MAX);
    if open.step >= last {
        // At 100 %: the candidate becomes production; the release completes with it.
        return promote(reg, &open.candidate, actor);
    }
    let next = open.step + 1;
    let Some(weight) = weight_at(steps, next) else {
        return Err(refused(format!("no step {next} in {steps:?}")));
    };
    let from = if open.step == 0 {
        SHADOW.to_string()
    } else {
        format!("step {} ({}%)", open.step, percent(open.weight))
    };
    let detail = format!(
        "release {} of {}: {from} -> step {next} ({}% of capital)",
        open.id,
        open.candidate,
        percent(Some(weight))
    );
    let mut release = changed(open, ReleaseState::Running, actor, detail.clone());
    release.stage = CANARY.into();
    release.step = next;
    release.weight = Some(weight);
    release.step_since = since;
    Ok(RegistryWrite {
        insert: None,
        statuses: vec![],
        aliases: vec![],
        release: Some(release),
        audit: audit(reg, actor, "release_step", &open.candidate, detail),
    })
}

/// A weight as a percentage, for words.
pub fn percent(weight: Option<Decimal>) -> String {
    weight
        .map_or(Decimal::ZERO, |w| w * Decimal::ONE_HUNDRED)
        .normalize()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CanaryConfig {
        CanaryConfig {
            sessions_per_step: 3,
            margin_bps: 10.0,
            confidence_z: 2.0,
            ..CanaryConfig::default()
        }
    }

    #[test]
    fn a_step_passes_fails_or_holds_on_the_paired_returns() {
        // Too few sessions: holds.
        let a = analyse(&[0.001, 0.002], &cfg());
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert_eq!(a.reason, "2 of 3 sessions");
        // Identical returns: not worse.
        assert_eq!(analyse(&[0.0; 3], &cfg()).verdict, Verdict::Pass);
        // A little worse, within the margin and clearly so.
        let a = analyse(&[-0.0004, -0.0005, -0.0006], &cfg());
        assert_eq!(a.verdict, Verdict::Pass, "{}", a.reason);
        // Worse by 50 bps a session, consistently: fails.
        let a = analyse(&[-0.0049, -0.005, -0.0051], &cfg());
        assert_eq!(a.verdict, Verdict::Fail, "{}", a.reason);
        assert!((a.mean_diff_bps.expect("mean") + 50.0).abs() < 1e-9);
        // Noisy around the margin: holds.
        let a = analyse(&[0.01, -0.012, 0.003], &cfg());
        assert_eq!(a.verdict, Verdict::Inconclusive, "{}", a.reason);
    }

    #[test]
    fn weights_follow_the_steps() {
        let steps = CanaryConfig::default().steps;
        assert_eq!(weight_at(&steps, 0), None);
        assert_eq!(weight_at(&steps, 1), Some(Decimal::new(5, 2)));
        assert_eq!(weight_at(&steps, 4), Some(Decimal::ONE));
        assert_eq!(weight_at(&steps, 5), None);
        assert_eq!(percent(weight_at(&steps, 2)), "25");
    }
}
