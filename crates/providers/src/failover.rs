//! Data-source failover: which source is in use, and what happens when it fails.
//!
//! [`Failover`] is a pure state machine over the configured data sources (the primary and
//! its backups, in order of preference). It does no I/O: each method takes an input — the
//! source in use failed ([`Failover::source_failed`]), good bars arrived
//! ([`Failover::bars_arrived`]), a heartbeat ([`Failover::tick`]), an operator's switch
//! ([`Failover::request_switch`]) — and returns what changed. The Data agent owns it,
//! connects and reads the sources it names, and logs and sends what it decides.
//!
//! - **Failover**: when the source in use fails, the next backup takes over (the failed one
//!   goes to the back of the list). Only when every source has failed since the last good
//!   bar is there nothing left to try.
//! - **Outage** (when reconnecting is on): with no source left, trading halts and the
//!   sources are tried again one after the other, the wait doubling up to a maximum; good
//!   bars end the outage ([`Recovered`]).
//! - **Switch back** (when on): once a backup has run a stable period, the primary is tried
//!   again. If it fails before its first good bar, the next period is twice as long; its
//!   first good bar brings the period back to the configured length.
//! - **Operator's switch**: to a configured source by name, after the read in flight; it
//!   counts as a fresh start, not a failover.

use std::collections::VecDeque;
use std::time::Duration;

use vigil_core::{Backoff, Timestamp, later, span};

use crate::DataProvider;

/// The longest stable period the switch back grows to.
const SWITCH_BACK_MAX: Duration = Duration::from_secs(24 * 3600);

/// The actor named when the failover switches on its own.
pub const FAILOVER: &str = "failover";

/// The actor named when the switch back tries the primary again.
pub const SWITCH_BACK: &str = "switch_back";

/// A data source as the failover sees it: a name.
pub trait Source {
    /// The source's name, as configured.
    fn name(&self) -> &str;
}

impl Source for Box<dyn DataProvider> {
    fn name(&self) -> &str {
        DataProvider::name(self.as_ref())
    }
}

/// A switch asked for, waiting for the read in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    /// The source to switch to.
    pub to: String,
    /// Who asked (an operator's name, or [`SWITCH_BACK`]).
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// A switch made: the source named `to` is now in use (connect it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switched {
    /// The source replaced.
    pub from: String,
    /// The source now in use.
    pub to: String,
    /// Who switched ([`FAILOVER`], [`SWITCH_BACK`] or an operator).
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// What the failure of the source in use leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The next backup is in use: connect it.
    Switched(Switched),
    /// No source is healthy: trading halts, and the source in use is connected again after
    /// `wait`.
    OutageBegan {
        /// The outage, in one line (for the Risk agent's breaker).
        reason: String,
        /// Sources configured.
        sources: usize,
        /// The wait before the next attempt.
        wait: Duration,
    },
    /// An attempt during the outage failed: the source in use (the next one, if
    /// `switched`) is connected again after `wait`.
    Retry {
        /// The source that failed.
        failed: String,
        /// Attempts that failed since the outage began.
        attempt: u32,
        /// The wait before the next attempt.
        wait: Duration,
        /// The next source took over (quietly: the outage is already announced).
        switched: bool,
    },
    /// Nothing left to try: the error that ends the stream.
    Fatal(String),
}

/// Good bars again after an outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// How long the outage lasted, in whole seconds.
    pub outage_s: i64,
    /// Attempts that failed during it.
    pub attempts: u32,
}

/// Whether a switch by name can be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchCheck {
    /// The source is the one in use.
    InUse,
    /// No source has that name; the names configured, the one in use first.
    Unknown(Vec<String>),
    /// A backup of that name stands by.
    Standby,
}

/// The automatic switch back to the primary after a backup has run for a stable period.
#[derive(Debug)]
struct SwitchBack {
    /// The configured period.
    base: Duration,
    /// The period now (doubled each time the primary failed again before a good bar).
    current: Duration,
    /// When the primary is tried again (wall clock).
    due: Option<Timestamp>,
    /// The primary is back on trial: its first good bar ends the trial.
    trial: bool,
}

/// How the sources are tried again during an outage.
#[derive(Clone, Copy, Debug)]
struct Reconnect {
    initial: Duration,
    max: Duration,
}

/// An outage under way.
#[derive(Debug)]
struct Outage {
    /// Wall time it began.
    since: Timestamp,
    /// The waits before the attempts.
    backoff: Backoff,
    /// Attempts that failed.
    attempts: u32,
}

/// The configured data sources, the one in use, and the failover between them.
#[derive(Debug)]
pub struct Failover<S> {
    /// The source in use, when in hand (`None` while it is lent to a read).
    in_use: Option<S>,
    /// The name of the source in use.
    name: String,
    /// The first source configured: the one a switch back returns to.
    primary: String,
    /// Backup sources, in order of preference (a failed source goes to the back).
    standby: VecDeque<S>,
    /// Switches since the last good bar: every source failed once it reaches their count.
    switches_in_a_row: usize,
    /// A switch waiting for the read in flight.
    pending: Option<Switch>,
    switch_back: Option<SwitchBack>,
    /// `None`: an outage is fatal.
    reconnect: Option<Reconnect>,
    outage: Option<Outage>,
}

impl<S: Source> Failover<S> {
    /// Starts with `primary` in use, no backup, no switch back and no reconnecting.
    pub fn new(primary: S) -> Self {
        let name = primary.name().to_string();
        Self {
            in_use: Some(primary),
            primary: name.clone(),
            name,
            standby: VecDeque::new(),
            switches_in_a_row: 0,
            pending: None,
            switch_back: None,
            reconnect: None,
            outage: None,
        }
    }

    /// Sets the backup sources, in order of preference.
    pub fn set_backups(&mut self, backups: Vec<S>) {
        self.standby = backups.into();
    }

    /// After a failover, tries the primary again once the backup has run `after` without
    /// failing; zero: never.
    pub fn set_switch_back(&mut self, after: Duration) {
        self.switch_back = (!after.is_zero()).then_some(SwitchBack {
            base: after,
            current: after,
            due: None,
            trial: false,
        });
    }

    /// When no source is left, begins an outage instead of failing: the sources are tried
    /// again after `initial`, the wait doubling up to `max`.
    pub fn set_reconnect(&mut self, initial: Duration, max: Duration) {
        self.reconnect = Some(Reconnect { initial, max });
    }

    /// An outage that began at wall time `since` in an earlier process is still under way
    /// (its halt was saved): the first good bars end it, as they would have without the
    /// restart ([`Self::bars_arrived`] then reports it). Needs reconnecting on
    /// ([`Self::set_reconnect`]), without which there is no outage; says whether it took.
    pub fn resume_outage(&mut self, since: Timestamp) -> bool {
        let Some(r) = self.reconnect else {
            return false;
        };
        self.outage.get_or_insert_with(|| Outage {
            since,
            backoff: Backoff::new(r.initial, r.max),
            attempts: 0,
        });
        true
    }

    /// The name of the source in use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sources configured (the one in use and its backups).
    pub fn sources(&self) -> usize {
        self.standby.len() + 1
    }

    /// Whether an outage is under way.
    pub fn in_outage(&self) -> bool {
        self.outage.is_some()
    }

    /// The source in use, if in hand.
    pub fn in_hand(&self) -> Option<&S> {
        self.in_use.as_ref()
    }

    /// Lends the source in use (to a read); `None` if it is lent already or gone.
    pub fn lend(&mut self) -> Option<S> {
        self.in_use.take()
    }

    /// Takes back the source in use after a read.
    pub fn give_back(&mut self, source: Option<S>) {
        self.in_use = source;
    }

    /// The source in use failed with `error` at wall time `now`: switches to the next
    /// backup, or begins (or goes on with) an outage, or says there is nothing left.
    pub fn source_failed(&mut self, error: String, now: Timestamp) -> Failure {
        if let Some(sb) = &mut self.switch_back
            && sb.trial
            && self.name == self.primary
        {
            // Back too soon: the backup's next stable period before another try is longer.
            sb.trial = false;
            sb.current = (sb.current * 2).min(SWITCH_BACK_MAX);
        }
        if self.outage.is_some() {
            let failed = self.name.clone();
            let next = self.standby.pop_front();
            let switched = next.is_some();
            if let Some(next) = next {
                self.install(next);
            }
            let (attempt, wait) = match (&mut self.outage, self.reconnect) {
                (Some(o), Some(_)) => {
                    o.attempts += 1;
                    (o.attempts, o.backoff.next_delay())
                }
                // An outage only begins with reconnecting on.
                _ => (0, Duration::ZERO),
            };
            return Failure::Retry {
                failed,
                attempt,
                wait,
                switched,
            };
        }
        let sources = self.sources();
        let next = if self.switches_in_a_row + 1 < sources {
            self.standby.pop_front()
        } else {
            None
        };
        match (next, self.reconnect) {
            (Some(next), _) => Failure::Switched(self.switch(next, FAILOVER.into(), error, now)),
            (None, Some(r)) => {
                let mut outage = Outage {
                    since: now,
                    backoff: Backoff::new(r.initial, r.max),
                    attempts: 0,
                };
                let wait = outage.backoff.next_delay();
                self.outage = Some(outage);
                Failure::OutageBegan {
                    reason: format!(
                        "no data source is healthy ({sources} configured); the last: {error}"
                    ),
                    sources,
                    wait,
                }
            }
            (None, None) if sources > 1 => Failure::Fatal(format!(
                "every data source failed ({sources} configured); the last: {error}"
            )),
            (None, None) => Failure::Fatal(error),
        }
    }

    /// The source in use delivered valid bars at wall time `now`: the failures in a row
    /// are forgotten, an outage ends, and a primary on trial has passed.
    pub fn bars_arrived(&mut self, now: Timestamp) -> Option<Recovered> {
        self.switches_in_a_row = 0;
        let recovered = self.outage.take().map(|o| Recovered {
            outage_s: (now - o.since).num_seconds(),
            attempts: o.attempts,
        });
        if recovered.is_some()
            && let Some(sb) = &mut self.switch_back
            && self.name != self.primary
        {
            sb.due = Some(later(now, span(sb.current)));
        }
        if let Some(sb) = &mut self.switch_back
            && sb.trial
            && self.name == self.primary
        {
            // The primary delivers again: the period is back to its configured length.
            sb.trial = false;
            sb.current = sb.base;
        }
        recovered
    }

    /// A heartbeat at wall time `now`: once the backup in use has run its stable period,
    /// asks for a switch back to the primary (made by [`Self::take_switch`]). Says whether
    /// it asked.
    pub fn tick(&mut self, now: Timestamp) -> bool {
        let Some(sb) = &mut self.switch_back else {
            return false;
        };
        if self.outage.is_some() || self.pending.is_some() || sb.due.is_none_or(|due| now < due) {
            return false;
        }
        sb.due = None;
        if self.name == self.primary || !self.standby.iter().any(|p| p.name() == self.primary) {
            return false;
        }
        sb.trial = true;
        self.pending = Some(Switch {
            to: self.primary.clone(),
            actor: SWITCH_BACK.into(),
            reason: format!(
                "{} ran {} s without failing ([data.feed] switch_back_after_s)",
                self.name,
                sb.current.as_secs()
            ),
        });
        true
    }

    /// The switch back [`Self::tick`] asked for, with the primary taken out of the standby
    /// list to be probed (connected and pinged) before the switch is made: the backup in
    /// use goes on meanwhile. `None` when no switch back waits.
    pub fn take_switch_back_probe(&mut self) -> Option<(Switch, S)> {
        if self.pending.as_ref().is_none_or(|p| p.actor != SWITCH_BACK) {
            return None;
        }
        let switch = self.pending.take()?;
        let i = self.standby.iter().position(|p| p.name() == switch.to)?;
        let source = self.standby.remove(i)?;
        Some((switch, source))
    }

    /// The probe of the primary answered: it stands by again, and the switch back is made
    /// after the read in flight ([`Self::take_switch`]).
    pub fn probe_passed(&mut self, switch: Switch, source: S) {
        self.standby.push_front(source);
        self.pending = Some(switch);
    }

    /// The probe of the primary failed at wall time `now`: it stands by again, the backup
    /// stays in use, and the primary is tried after a period twice as long, as after a
    /// switch back that failed.
    pub fn probe_failed(&mut self, source: S, now: Timestamp) {
        self.standby.push_front(source);
        if let Some(sb) = &mut self.switch_back {
            sb.trial = false;
            sb.current = (sb.current * 2).min(SWITCH_BACK_MAX);
            sb.due = Some(later(now, span(sb.current)));
        }
    }

    /// Whether a switch to the source named `name` can be made.
    pub fn check_switch(&self, name: &str) -> SwitchCheck {
        if name == self.name {
            return SwitchCheck::InUse;
        }
        if self.standby.iter().any(|p| p.name() == name) {
            return SwitchCheck::Standby;
        }
        let mut names = vec![self.name.clone()];
        names.extend(self.standby.iter().map(|p| p.name().to_string()));
        SwitchCheck::Unknown(names)
    }

    /// Asks for `switch`, made by [`Self::take_switch`] once the read in flight returns
    /// (replacing one asked for before).
    pub fn request_switch(&mut self, switch: Switch) {
        self.pending = Some(switch);
    }

    /// Makes the switch asked for, if any, at wall time `now`; it counts as a fresh start,
    /// not a failover. A switch to a source no longer standing by is dropped.
    pub fn take_switch(&mut self, now: Timestamp) -> Option<Switched> {
        let Switch { to, actor, reason } = self.pending.take()?;
        let i = self.standby.iter().position(|p| p.name() == to)?;
        let next = self.standby.remove(i)?;
        let switched = self.switch(next, actor, reason, now);
        self.switches_in_a_row = 0;
        Some(switched)
    }

    /// Puts `next` in use, counts the switch and times the switch back.
    fn switch(&mut self, next: S, actor: String, reason: String, now: Timestamp) -> Switched {
        let from = self.install(next);
        self.switches_in_a_row += 1;
        if let Some(sb) = &mut self.switch_back {
            sb.due = (actor == FAILOVER && self.name != self.primary)
                .then(|| later(now, span(sb.current)));
        }
        Switched {
            from,
            to: self.name.clone(),
            actor,
            reason,
        }
    }

    /// Puts `next` in use; the one in use goes to the back of the standby list. Returns the
    /// name of the one it replaces.
    fn install(&mut self, next: S) -> String {
        let from = std::mem::replace(&mut self.name, next.name().to_string());
        if let Some(failed) = self.in_use.replace(next) {
            self.standby.push_back(failed);
        }
        from
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_testkit::timestamp as t;

    #[derive(Debug, PartialEq)]
    struct Feed(&'static str);

    impl Source for Feed {
        fn name(&self) -> &str {
            self.0
        }
    }

    fn sources(backups: &[&'static str]) -> Failover<Feed> {
        let mut f = Failover::new(Feed("primary"));
        f.set_backups(backups.iter().map(|n| Feed(n)).collect());
        f
    }

    fn at(s: i64) -> Timestamp {
        later(t("2030-01-01T00:00:00Z"), chrono::Duration::seconds(s))
    }

    fn switched(failure: Failure) -> Switched {
        match failure {
            Failure::Switched(s) => s,
            other => panic!("expected a switch, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_source_switches_to_the_next_backup_and_every_source_failing_is_fatal() {
        let mut f = sources(&["b1", "b2"]);
        let s = switched(f.source_failed("broken".into(), at(0)));
        assert_eq!(
            s,
            Switched {
                from: "primary".into(),
                to: "b1".into(),
                actor: FAILOVER.into(),
                reason: "broken".into(),
            }
        );
        assert_eq!(f.name(), "b1");
        assert_eq!(f.in_hand(), Some(&Feed("b1")));
        assert_eq!(switched(f.source_failed("down".into(), at(1))).to, "b2");
        assert_eq!(
            f.source_failed("gone".into(), at(2)),
            Failure::Fatal("every data source failed (3 configured); the last: gone".into())
        );
    }

    #[test]
    fn a_good_bar_forgets_the_failures_in_a_row_and_the_failed_source_waits_at_the_back() {
        let mut f = sources(&["b1"]);
        assert_eq!(switched(f.source_failed("x".into(), at(0))).to, "b1");
        assert_eq!(f.bars_arrived(at(1)), None, "no outage to end");
        // The primary went to the back: it takes over again.
        assert_eq!(switched(f.source_failed("y".into(), at(2))).to, "primary");
    }

    #[test]
    fn a_lone_source_failing_is_fatal_with_its_own_error() {
        let mut f = sources(&[]);
        assert_eq!(
            f.source_failed("refused".into(), at(0)),
            Failure::Fatal("refused".into())
        );
    }

    #[test]
    fn an_outage_of_an_earlier_process_ends_at_the_first_good_bars() {
        let mut f = Failover::new(Feed("primary"));
        assert!(!f.resume_outage(at(0)), "no outage without reconnecting");
        f.set_reconnect(Duration::from_secs(1), Duration::from_secs(8));
        assert!(f.resume_outage(at(0)));
        assert!(f.in_outage());
        assert_eq!(
            f.bars_arrived(at(90)),
            Some(Recovered {
                outage_s: 90,
                attempts: 0
            })
        );
        assert!(!f.in_outage());
    }

    #[test]
    fn with_reconnecting_no_source_left_is_an_outage_retried_with_doubling_waits_until_bars() {
        let mut f = sources(&["b1"]);
        f.set_reconnect(Duration::from_secs(1), Duration::from_secs(3));
        switched(f.source_failed("a".into(), at(0)));
        assert_eq!(
            f.source_failed("b".into(), at(10)),
            Failure::OutageBegan {
                reason: "no data source is healthy (2 configured); the last: b".into(),
                sources: 2,
                wait: Duration::from_secs(1),
            }
        );
        assert!(f.in_outage());
        assert_eq!(
            f.source_failed("c".into(), at(11)),
            Failure::Retry {
                failed: "b1".into(),
                attempt: 1,
                wait: Duration::from_secs(2),
                switched: true,
            }
        );
        assert_eq!(f.name(), "primary", "the next source is tried");
        assert_eq!(
            f.source_failed("d".into(), at(13)),
            Failure::Retry {
                failed: "primary".into(),
                attempt: 2,
                wait: Duration::from_secs(3),
                switched: true,
            },
            "the wait doubles up to its maximum"
        );
        assert_eq!(
            f.bars_arrived(at(30)),
            Some(Recovered {
                outage_s: 20,
                attempts: 2
            })
        );
        assert!(!f.in_outage());
        assert_eq!(f.bars_arrived(at(31)), None);
    }

    #[test]
    fn after_the_stable_period_on_a_backup_the_primary_is_tried_again_and_a_relapse_doubles_it() {
        let mut f = sources(&["b1"]);
        f.set_switch_back(Duration::from_secs(60));
        switched(f.source_failed("x".into(), at(0)));
        assert!(!f.tick(at(59)), "not yet");
        assert!(f.tick(at(60)));
        assert!(!f.tick(at(61)), "asked once");
        let s = f.take_switch(at(61)).expect("the switch back");
        assert_eq!((s.from.as_str(), s.to.as_str()), ("b1", "primary"));
        assert_eq!(s.actor, SWITCH_BACK);
        assert_eq!(
            s.reason,
            "b1 ran 60 s without failing ([data.feed] switch_back_after_s)"
        );
        // The primary fails again before a good bar: the next period is 120 s.
        switched(f.source_failed("again".into(), at(62)));
        assert!(!f.tick(at(62 + 119)));
        assert!(f.tick(at(62 + 120)));
        f.take_switch(at(182)).expect("the switch back");
        // Its first good bar brings the period back to 60 s.
        f.bars_arrived(at(183));
        switched(f.source_failed("later".into(), at(200)));
        assert!(f.tick(at(260)));
    }

    #[test]
    fn the_primary_is_probed_before_the_switch_back_and_a_failed_probe_doubles_the_period() {
        let mut f = sources(&["b1"]);
        f.set_switch_back(Duration::from_secs(60));
        switched(f.source_failed("x".into(), at(0)));
        assert!(f.tick(at(60)));
        let (switch, primary) = f.take_switch_back_probe().expect("a probe");
        assert_eq!(primary, Feed("primary"));
        assert_eq!(
            f.take_switch(at(60)),
            None,
            "no switch while the probe runs"
        );
        assert_eq!(f.name(), "b1", "the backup goes on");
        // Down still: back to standby, tried again after twice the period.
        f.probe_failed(primary, at(61));
        assert_eq!(f.take_switch_back_probe(), None);
        assert!(!f.tick(at(61 + 119)));
        assert!(f.tick(at(61 + 120)));
        let (switch_again, primary) = f.take_switch_back_probe().expect("a probe");
        assert_eq!(switch_again.to, switch.to);
        // Up: the switch back is made after the read.
        f.probe_passed(switch_again, primary);
        let s = f.take_switch(at(182)).expect("the switch back");
        assert_eq!((s.from.as_str(), s.to.as_str()), ("b1", "primary"));
        // An operator's switch is not probed.
        f.request_switch(Switch {
            to: "b1".into(),
            actor: "ops".into(),
            reason: "drill".into(),
        });
        assert_eq!(f.take_switch_back_probe(), None);
    }

    #[test]
    fn an_operator_s_switch_is_checked_by_name_made_after_the_read_and_is_a_fresh_start() {
        let mut f = sources(&["b1", "b2"]);
        assert_eq!(f.check_switch("primary"), SwitchCheck::InUse);
        assert_eq!(f.check_switch("b2"), SwitchCheck::Standby);
        assert_eq!(
            f.check_switch("nope"),
            SwitchCheck::Unknown(vec!["primary".into(), "b1".into(), "b2".into()])
        );
        f.request_switch(Switch {
            to: "b2".into(),
            actor: "ops".into(),
            reason: "drill".into(),
        });
        let s = f.take_switch(at(0)).expect("the switch");
        assert_eq!((s.from.as_str(), s.to.as_str()), ("primary", "b2"));
        assert_eq!(f.take_switch(at(0)), None, "made once");
        // A fresh start: two more failures still find a source each.
        assert_eq!(switched(f.source_failed("x".into(), at(1))).to, "b1");
        assert_eq!(switched(f.source_failed("y".into(), at(2))).to, "primary");
    }

    #[test]
    fn a_lent_source_comes_back_with_give_back() {
        let mut f = sources(&[]);
        assert_eq!(f.lend(), Some(Feed("primary")));
        assert_eq!(f.lend(), None, "lent already");
        f.give_back(Some(Feed("primary")));
        assert!(f.in_hand().is_some());
    }
}
