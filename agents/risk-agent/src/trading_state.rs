//! Trading-state transitions (`Active` / `ReduceOnly` / `Halted`) as a plain component: a
//! request goes in, the audit record of what changed comes out (nothing when the state
//! already held: commands are idempotent). The actor logs the record, posts it on the halt
//! latch and saves it.
//!
//! It also keeps the halt of a data outage: the state before it, whether an operator must
//! reset it, and whatever else asked for a halt meanwhile, so that the verification that
//! follows the outage lifts the halt only when nothing else wants it.

use vigil_core::{Level, Timestamp, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::TradingStateRecord;

use crate::agent::SERVICE;

/// The audit record of one change of the trading state: from what, to what, who asked and
/// why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateChange {
    pub(crate) from: TradingState,
    pub(crate) to: TradingState,
    pub(crate) actor: String,
    pub(crate) reason: String,
}

impl StateChange {
    /// The event that names the change: a trip, a reset, or any other move.
    pub(crate) fn event(&self) -> Event {
        match (self.from, self.to) {
            (_, TradingState::Halted) => Event::BreakerTripped,
            (TradingState::Halted, _) => Event::BreakerReset,
            _ => Event::TradingStateChanged,
        }
    }

    /// The log line of the change, stamped `at`.
    pub(crate) fn log_event(&self, at: Timestamp) -> LogEvent {
        LogEvent::new(at, SERVICE, self.event())
            .with("from", self.from.as_str())
            .with("to", self.to.as_str())
            .with("actor", self.actor.clone())
            .with("reason", self.reason.clone())
    }
}

/// The log line that announces the state a previous process saved, at start (`now`).
pub(crate) fn restored_event(r: &TradingStateRecord, now: Timestamp) -> LogEvent {
    let level = if r.state == TradingState::Active {
        Level::Info
    } else {
        Level::Warn
    };
    LogEvent::new(now, SERVICE, Event::TradingStateChanged)
        .level(level)
        .with("from", "unknown")
        .with("to", r.state.as_str())
        .with("actor", "restored")
        .with(
            "reason",
            format!(
                "saved by the previous process: set by {} at {}: {}{}",
                r.actor,
                r.at,
                r.reason,
                if r.outage_hold.is_some() {
                    "; a data outage's halt: the verification once the data is back lifts it"
                } else {
                    ""
                }
            ),
        )
}

/// A halt for a data outage; saved with the trading state (as JSON) so that the
/// verification after a restart lifts it as it would have without the restart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct OutageHold {
    /// The state before it, restored when the verification passes.
    before: TradingState,
    /// `[data.feed] after_outage = "operator"`: an operator resets the breaker.
    operator: bool,
    /// Whatever else asked for a halt (or a stricter state) meanwhile: an operator must
    /// look at those.
    others: Vec<String>,
}

/// What the verification after a data outage decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verification {
    /// Trading resumes.
    pub(crate) resumes: bool,
    /// What the operator reads: trading resumes, or why the breaker stays tripped.
    pub(crate) action: String,
    /// The move back to the state before the outage, when trading resumes.
    pub(crate) change: Option<StateChange>,
}

impl Verification {
    /// The `data_verified` log line: INFO when trading resumes, ERROR when a person must act.
    pub(crate) fn log_event(&self, at: Timestamp, passed: bool, report: &str) -> LogEvent {
        LogEvent::new(at, SERVICE, Event::DataVerified)
            .level(if self.resumes {
                Level::Info
            } else {
                Level::Error
            })
            .with("passed", passed)
            .with("report", report.to_string())
            .with("action", self.action.clone())
    }
}

/// The actors of a data outage's halt: the Data agent, and the Critical alerts the outage
/// itself raises (the outage, the source disconnected, no data while the exchange is open).
fn is_outage_actor(actor: &str) -> bool {
    matches!(
        actor,
        "data_outage" | "alert:data_outage" | "alert:data_source_disconnected" | "alert:data_stale"
    )
}

/// How strict a state is: a restriction only ever moves up.
fn rank(state: TradingState) -> u8 {
    match state {
        TradingState::Active => 0,
        TradingState::ReduceOnly => 1,
        TradingState::Halted => 2,
    }
}

/// The trading state and the data outage's halt.
#[derive(Debug)]
pub(crate) struct TradingControl {
    state: TradingState,
    outage_hold: Option<OutageHold>,
    /// The outage's halt changed since [`Self::take_hold_changed`] was last asked.
    hold_changed: bool,
}

impl TradingControl {
    /// Starts in `state`.
    pub(crate) fn new(state: TradingState) -> Self {
        Self {
            state,
            outage_hold: None,
            hold_changed: false,
        }
    }

    /// Starts in the saved `state`, with the outage's halt saved with it (`hold`, the JSON
    /// of [`Self::hold_json`]). A hold that cannot be read is dropped, and said: the state
    /// stays (a halt then waits for an operator).
    pub(crate) fn restored(state: TradingState, hold: Option<&str>) -> (Self, Option<String>) {
        let mut control = Self::new(state);
        let Some(text) = hold else {
            return (control, None);
        };
        match serde_json::from_str::<OutageHold>(text) {
            Ok(h) if state == TradingState::Halted => {
                control.outage_hold = Some(h);
                (control, None)
            }
            Ok(_) => (
                control,
                Some(format!(
                    "an outage's halt was saved with the state {}, not halted: dropped",
                    state.as_str()
                )),
            ),
            Err(e) => (
                control,
                Some(format!(
                    "the outage's halt saved with the trading state cannot be read ({e}): \
                     dropped, an operator resets the breaker: {text}"
                )),
            ),
        }
    }

    /// The outage's halt as saved with the trading state (JSON); `None` when there is none.
    ///
    /// # Errors
    /// When it cannot be written as JSON.
    pub(crate) fn hold_json(&self) -> Result<Option<String>, String> {
        self.outage_hold
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| format!("the outage's halt cannot be written: {e}"))
    }

    /// Whether the outage's halt changed since the last call (it is saved then, even when
    /// the state did not change).
    pub(crate) fn take_hold_changed(&mut self) -> bool {
        std::mem::take(&mut self.hold_changed)
    }

    /// The state now.
    pub(crate) fn state(&self) -> TradingState {
        self.state
    }

    /// Moves to `state` as `actor` asked for `reason`; returns the audit record, or `None`
    /// when the state already held.
    pub(crate) fn update(
        &mut self,
        state: TradingState,
        actor: String,
        reason: String,
    ) -> Option<StateChange> {
        let from = self.state;
        if let Some(hold) = &mut self.outage_hold {
            if from == TradingState::Halted && state != TradingState::Halted {
                // Reset meanwhile (an operator): the outage's halt is over.
                self.outage_hold = None;
                self.hold_changed = true;
            } else if state != TradingState::Active && !is_outage_actor(&actor) {
                hold.others.push(format!("{actor} ({reason})"));
                self.hold_changed = true;
            }
        }
        if from == state {
            return None;
        }
        self.state = state;
        Some(StateChange {
            from,
            to: state,
            actor,
            reason,
        })
    }

    /// Tightens trading to at least `state`; never loosens it (nothing changes then).
    pub(crate) fn restrict(
        &mut self,
        state: TradingState,
        actor: String,
        reason: String,
    ) -> Option<StateChange> {
        if rank(state) > rank(self.state) {
            self.update(state, actor, reason)
        } else {
            None
        }
    }

    /// No data source is healthy: trips the breaker, remembering the state before the
    /// outage (the first time) so the verification can restore it.
    pub(crate) fn outage(&mut self, operator_resumes: bool, reason: String) -> Option<StateChange> {
        if self.outage_hold.is_none() {
            let others = if self.state == TradingState::Halted {
                vec!["the breaker was already tripped when the outage began".to_string()]
            } else {
                Vec::new()
            };
            self.outage_hold = Some(OutageHold {
                before: self.state,
                operator: operator_resumes,
                others,
            });
            self.hold_changed = true;
        }
        self.update(TradingState::Halted, "data_outage".into(), reason)
    }

    /// The data is back and was verified (`passed`) or not: lifts the outage's halt when
    /// it passed, `after_outage` allows it, and nothing else asked for a halt meanwhile.
    pub(crate) fn data_verified(&mut self, passed: bool, report: &str) -> Verification {
        let hold = self.outage_hold.take();
        self.hold_changed |= hold.is_some();
        let (resume, action) = match &hold {
            None => (
                None,
                "no outage halt to lift (the breaker was reset meanwhile)".to_string(),
            ),
            Some(_) if !passed => (
                None,
                "the breaker stays tripped: read the report, fix or accept what failed, then `vigil ctl breaker reset --reason …`"
                    .to_string(),
            ),
            Some(h) if h.operator => (
                None,
                "[data.feed] after_outage = \"operator\": check, then `vigil ctl breaker reset --reason …`"
                    .to_string(),
            ),
            Some(h) if !h.others.is_empty() => (
                None,
                format!(
                    "the breaker stays tripped: also asked meanwhile by {}; check, then `vigil ctl breaker reset --reason …`",
                    h.others.join("; ")
                ),
            ),
            Some(h) => (
                Some(h.before),
                format!("trading resumes ({})", h.before.as_str()),
            ),
        };
        let change = resume.and_then(|state| {
            self.update(
                state,
                "data_verify".into(),
                format!("the data is back and verified: {report}"),
            )
        });
        Verification {
            resumes: resume.is_some(),
            action,
            change,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(c: &mut TradingControl, state: TradingState, actor: &str) -> Option<StateChange> {
        c.update(state, actor.into(), "why".into())
    }

    #[test]
    fn a_change_returns_its_audit_record_and_a_repeat_returns_none() {
        let mut c = TradingControl::new(TradingState::Active);
        let change = ask(&mut c, TradingState::Halted, "ops").expect("changed");
        assert_eq!(
            change,
            StateChange {
                from: TradingState::Active,
                to: TradingState::Halted,
                actor: "ops".into(),
                reason: "why".into(),
            }
        );
        assert_eq!(change.event(), Event::BreakerTripped);
        assert_eq!(c.state(), TradingState::Halted);
        assert_eq!(ask(&mut c, TradingState::Halted, "ops"), None);
        let reset = ask(&mut c, TradingState::ReduceOnly, "ops").expect("changed");
        assert_eq!(reset.event(), Event::BreakerReset);
        let other = ask(&mut c, TradingState::Active, "ops").expect("changed");
        assert_eq!(other.event(), Event::TradingStateChanged);
    }

    #[test]
    fn a_restriction_only_tightens() {
        let mut c = TradingControl::new(TradingState::ReduceOnly);
        assert_eq!(
            c.restrict(TradingState::Active, "rule".into(), "x".into()),
            None
        );
        assert_eq!(
            c.restrict(TradingState::ReduceOnly, "rule".into(), "x".into()),
            None
        );
        assert_eq!(c.state(), TradingState::ReduceOnly);
        let change = c
            .restrict(TradingState::Halted, "rule".into(), "x".into())
            .expect("tightened");
        assert_eq!(change.to, TradingState::Halted);
    }

    #[test]
    fn a_passed_verification_restores_the_state_before_the_outage() {
        let mut c = TradingControl::new(TradingState::ReduceOnly);
        let trip = c.outage(false, "no source".into()).expect("tripped");
        assert_eq!(trip.actor, "data_outage");
        // The outage's own alert is not another halt.
        assert_eq!(ask(&mut c, TradingState::Halted, "alert:data_stale"), None);
        let v = c.data_verified(true, "all clear");
        assert!(v.resumes);
        assert_eq!(v.action, "trading resumes (reduce_only)");
        let change = v.change.expect("resumed");
        assert_eq!(
            (change.from, change.to, change.actor.as_str()),
            (
                TradingState::Halted,
                TradingState::ReduceOnly,
                "data_verify"
            )
        );
        assert_eq!(change.reason, "the data is back and verified: all clear");
        assert_eq!(c.state(), TradingState::ReduceOnly);
    }

    #[test]
    fn an_outage_halt_saved_before_a_restart_is_lifted_by_the_verification_after_it() {
        let mut c = TradingControl::new(TradingState::ReduceOnly);
        assert_eq!(c.hold_json(), Ok(None));
        c.outage(false, "no source".into()).expect("tripped");
        assert!(c.take_hold_changed(), "the new halt is saved");
        assert!(!c.take_hold_changed());
        // Another halt while halted changes no state, but the hold: saved too.
        assert_eq!(ask(&mut c, TradingState::Halted, "alert:data_stale"), None);
        assert!(
            !c.take_hold_changed(),
            "the outage's own alert is not another halt"
        );
        let saved = c.hold_json().expect("json").expect("a hold");

        // The restarted process: the verification lifts it to the state before.
        let (mut after, dropped) = TradingControl::restored(TradingState::Halted, Some(&saved));
        assert_eq!(dropped, None);
        let v = after.data_verified(true, "all clear");
        assert!(v.resumes, "{}", v.action);
        assert_eq!(after.state(), TradingState::ReduceOnly);
        assert!(
            after.take_hold_changed(),
            "the lifted hold is saved as gone"
        );
        assert_eq!(after.hold_json(), Ok(None));

        // What another actor asked before the restart still keeps it tripped after.
        ask(&mut c, TradingState::Halted, "ops");
        assert!(c.take_hold_changed());
        let saved = c.hold_json().expect("json").expect("a hold");
        let (mut after, _) = TradingControl::restored(TradingState::Halted, Some(&saved));
        let v = after.data_verified(true, "all clear");
        assert!(
            !v.resumes && v.action.contains("also asked meanwhile by ops"),
            "{}",
            v.action
        );

        // A hold that cannot be read is dropped and said; the halt stays for an operator.
        let (mut after, dropped) = TradingControl::restored(TradingState::Halted, Some("{"));
        assert!(dropped.is_some_and(|e| e.contains("cannot be read")));
        assert!(!after.data_verified(true, "ok").resumes);
        assert_eq!(after.state(), TradingState::Halted);
    }

    #[test]
    fn the_outage_halt_stays_for_another_halt_a_failed_check_or_an_operator() {
        let mut c = TradingControl::new(TradingState::Active);
        c.outage(false, "no source".into());
        ask(&mut c, TradingState::Halted, "ops");
        let v = c.data_verified(true, "ok");
        assert!(!v.resumes && v.change.is_none());
        assert!(
            v.action.contains("also asked meanwhile by ops (why)"),
            "{}",
            v.action
        );

        let mut c = TradingControl::new(TradingState::Active);
        c.outage(false, "no source".into());
        let v = c.data_verified(false, "2 differences");
        assert!(
            v.action
                .starts_with("the breaker stays tripped: read the report")
        );
        assert_eq!(c.state(), TradingState::Halted);

        let mut c = TradingControl::new(TradingState::Active);
        c.outage(true, "no source".into());
        let v = c.data_verified(true, "ok");
        assert!(
            v.action.contains("after_outage = \"operator\""),
            "{}",
            v.action
        );

        let mut c = TradingControl::new(TradingState::Halted);
        c.outage(false, "no source".into());
        let v = c.data_verified(true, "ok");
        assert!(
            v.action.contains("already tripped when the outage began"),
            "{}",
            v.action
        );
    }

    #[test]
    fn a_reset_during_the_outage_ends_its_hold() {
        let mut c = TradingControl::new(TradingState::Active);
        c.outage(false, "no source".into());
        ask(&mut c, TradingState::Active, "operator");
        let v = c.data_verified(true, "ok");
        assert!(v.change.is_none());
        assert_eq!(
            v.action,
            "no outage halt to lift (the breaker was reset meanwhile)"
        );
    }
}
