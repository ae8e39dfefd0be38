//! Threshold rules evaluated on a clock: `metric op value`, held `for` a duration.

use vigil_config::{Comparison, RuleConfig};
use vigil_core::{Level, Timestamp};
use vigil_log::{Event, LogEvent};

/// A rule's change of state, for the caller to log (and the alerting layer to route).
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// The condition held for the rule's duration: the rule fires.
    Breached {
        /// When the rule fired (the sample's time).
        at: Timestamp,
        /// The rule's name.
        rule: String,
        /// The metric.
        metric: &'static str,
        /// The sample's label (`agent=signal`), empty when the metric has none.
        label: String,
        /// The value that fired it.
        value: f64,
        /// The threshold.
        threshold: f64,
        /// The comparison.
        op: Comparison,
        /// The rule's duration, in seconds.
        for_s: u64,
        /// Since when the condition has held.
        since: Timestamp,
        /// The rule's level.
        level: Level,
    },
    /// A firing rule's condition no longer holds.
    Recovered {
        /// When the rule recovered (the sample's time).
        at: Timestamp,
        /// The rule's name.
        rule: String,
        /// The metric.
        metric: &'static str,
        /// The sample's label.
        label: String,
        /// The value now.
        value: f64,
        /// The threshold.
        threshold: f64,
        /// How long it was breached (from the first breaching sample).
        breached_s: i64,
        /// The level it fired at.
        level: Level,
    },
}

/// A rule that is firing now.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ActiveBreach {
    /// The rule's name.
    pub rule: String,
    /// The metric.
    pub metric: String,
    /// The sample's label.
    pub label: String,
    /// The latest value.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// The rule's level.
    pub level: Level,
    /// Since when the condition has held.
    pub since: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Pending,
    Firing,
}

#[derive(Debug)]
struct Track {
    rule: usize,
    label: Box<str>,
    phase: Phase,
    since: Timestamp,
    last: f64,
}

/// Evaluates rules against samples. Every sample of a rule's metric is compared with its
/// threshold; the rule fires once the condition has held for its duration, and recovers at
/// the first sample that no longer breaches. Each (rule, label) pair is tracked on its own.
///
/// Allocation-free for samples that change nothing, so it can run on every bar.
#[derive(Debug)]
pub struct RuleEngine {
    /// Each rule and its metric's index in `metrics`.
    rules: Vec<(RuleConfig, usize)>,
    metrics: Vec<&'static str>,
    tracks: Vec<Track>,
}

/// A metric of an engine, resolved once by [`RuleEngine::metric`] so that a hot path
/// observes it without comparing names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricId(usize);

impl RuleEngine {
    /// Builds an engine for the rules whose metric is in `metrics` (an engine watches the
    /// metrics its owner can measure; rules on other metrics belong to another engine).
    pub fn new(rules: &[RuleConfig], metrics: &[&'static str]) -> Self {
        let rules = rules
            .iter()
            .filter_map(|r| {
                metrics
                    .iter()
                    .position(|m| *m == r.metric)
                    .map(|i| (r.clone(), i))
            })
            .collect();
        Self {
            rules,
            metrics: metrics.to_vec(),
            tracks: Vec::new(),
        }
    }

    /// Builds an engine for the rules on the metrics `agent` measures (see
    /// [`vigil_core::RuleMetric::measured_by`]).
    pub fn for_agent(rules: &[RuleConfig], agent: vigil_core::AgentId) -> Self {
        Self::new(rules, &vigil_core::RuleMetric::names_measured_by(agent))
    }

    /// Tells whether any rule watches `metric`.
    pub fn watches(&self, metric: &str) -> bool {
        self.rules.iter().any(|(_, i)| self.metrics[*i] == metric)
    }

    /// Resolves `metric` (one of the metrics given to [`RuleEngine::new`]).
    pub fn metric(&self, metric: &str) -> Option<MetricId> {
        self.metrics.iter().position(|m| *m == metric).map(MetricId)
    }

    /// Compares one sample with every rule on its metric; pushes the transitions. A metric
    /// the engine was not built with is ignored.
    pub fn observe(
        &mut self,
        now: Timestamp,
        metric: &str,
        label: &str,
        value: f64,
        out: &mut Vec<Transition>,
    ) {
        if let Some(id) = self.metric(metric) {
            self.observe_id(now, id, label, value, out);
        }
    }

    /// [`RuleEngine::observe`] for a resolved metric: the hot-path form.
    pub fn observe_id(
        &mut self,
        now: Timestamp,
        metric: MetricId,
        label: &str,
        value: f64,
        out: &mut Vec<Transition>,
    ) {
        for i in 0..self.rules.len() {
            let (rule, m) = &self.rules[i];
            if *m != metric.0 {
                continue;
            }
            let name = self.metrics[*m];
            let breached = rule.op.breached(value, rule.value);
            let pos = self
                .tracks
                .iter()
                .position(|t| t.rule == i && &*t.label == label);
            match (pos, breached) {
                (None, false) => {}
                (None, true) => {
                    self.tracks.push(Track {
                        rule: i,
                        label: label.into(),
                        phase: Phase::Pending,
                        since: now,
                        last: value,
                    });
                    let at = self.tracks.len() - 1;
                    self.maybe_fire(at, now, out);
                }
                (Some(at), true) => {
                    self.tracks[at].last = value;
                    self.maybe_fire(at, now, out);
                }
                (Some(at), false) => {
                    let t = self.tracks.swap_remove(at);
                    if t.phase == Phase::Firing {
                        out.push(Transition::Recovered {
                            at: now,
                            rule: rule.name.clone(),
                            metric: name,
                            label: t.label.into(),
                            value,
                            threshold: rule.value,
                            breached_s: (now - t.since).num_seconds(),
                            level: rule.level,
                        });
                    }
                }
            }
        }
    }

    fn maybe_fire(&mut self, at: usize, now: Timestamp, out: &mut Vec<Transition>) {
        let t = &mut self.tracks[at];
        let (rule, m) = &self.rules[t.rule];
        let metric = self.metrics[*m];
        let held = now - t.since;
        if t.phase == Phase::Pending && held >= vigil_core::seconds(rule.for_s) {
            t.phase = Phase::Firing;
            out.push(Transition::Breached {
                at: now,
                rule: rule.name.clone(),
                metric,
                label: t.label.to_string(),
                value: t.last,
                threshold: rule.value,
                op: rule.op,
                for_s: rule.for_s,
                since: t.since,
                level: rule.level,
            });
        }
    }

    /// Returns the rules firing now.
    pub fn active(&self) -> Vec<ActiveBreach> {
        self.tracks
            .iter()
            .filter(|t| t.phase == Phase::Firing)
            .map(|t| {
                let (rule, m) = &self.rules[t.rule];
                let metric = self.metrics[*m];
                ActiveBreach {
                    rule: rule.name.clone(),
                    metric: (*metric).to_string(),
                    label: t.label.to_string(),
                    value: t.last,
                    threshold: rule.value,
                    level: rule.level,
                    since: t.since,
                }
            })
            .collect()
    }
}

impl Transition {
    /// When it happened, on the clock the samples were taken on.
    pub fn at(&self) -> Timestamp {
        match self {
            Transition::Breached { at, .. } | Transition::Recovered { at, .. } => *at,
        }
    }

    /// Returns the log line for this transition, stamped `at`, for `service`.
    pub fn event(&self, at: Timestamp, service: &'static str) -> LogEvent {
        match self {
            Transition::Breached {
                at: _,
                rule,
                metric,
                label,
                value,
                threshold,
                op,
                for_s,
                since,
                level,
            } => LogEvent::new(at, service, Event::ThresholdBreached)
                .level(*level)
                .with("rule", rule.clone())
                .with("metric", *metric)
                .with("label", label.clone())
                .with("value", *value)
                .with("threshold", *threshold)
                .with("op", op.as_str())
                .with("for_s", *for_s)
                .with("since", *since),
            Transition::Recovered {
                at: _,
                rule,
                metric,
                label,
                value,
                threshold,
                breached_s,
                level,
            } => LogEvent::new(at, service, Event::ThresholdRecovered)
                .with("rule", rule.clone())
                .with("metric", *metric)
                .with("label", label.clone())
                .with("value", *value)
                .with("threshold", *threshold)
                .with("breached_s", *breached_s)
                .with("breached_level", level.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use vigil_config::default_rules;

    fn t0() -> Timestamp {
        "2030-01-07T14:00:00Z".parse().expect("time")
    }

    fn cpu_engine() -> RuleEngine {
        RuleEngine::new(&default_rules(), &["cpu_usage_ratio"])
    }

    #[test]
    fn a_duration_rule_fires_only_after_holding_for_its_duration_and_then_recovers() {
        let mut e = cpu_engine();
        let mut out = Vec::new();
        // 90% CPU sampled every 30 s of simulated time: cpu_high needs 5 minutes.
        for step in 0..10 {
            e.observe(
                t0() + Duration::seconds(30 * step),
                "cpu_usage_ratio",
                "",
                0.9,
                &mut out,
            );
            assert!(out.is_empty(), "not yet at {}s", 30 * step);
        }
        e.observe(
            t0() + Duration::seconds(300),
            "cpu_usage_ratio",
            "",
            0.95,
            &mut out,
        );
        assert_eq!(out.len(), 1, "fires at 5 minutes");
        match &out[0] {
            Transition::Breached {
                rule,
                value,
                threshold,
                for_s,
                since,
                level,
                ..
            } => {
                assert_eq!(rule, "cpu_high");
                assert_eq!(*value, 0.95);
                assert_eq!(*threshold, 0.8);
                assert_eq!(*for_s, 300);
                assert_eq!(*since, t0());
                assert_eq!(*level, Level::Warn);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.active().len(), 1);
        // Still high: no second event.
        e.observe(
            t0() + Duration::seconds(330),
            "cpu_usage_ratio",
            "",
            0.9,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        // Back to normal: recovered, with how long it lasted.
        e.observe(
            t0() + Duration::seconds(360),
            "cpu_usage_ratio",
            "",
            0.2,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[1], Transition::Recovered { rule, breached_s: 360, value, .. } if rule == "cpu_high" && *value == 0.2),
            "{:?}",
            out[1]
        );
        assert!(e.active().is_empty());
    }

    #[test]
    fn a_dip_below_the_threshold_restarts_the_duration() {
        let mut e = cpu_engine();
        let mut out = Vec::new();
        e.observe(t0(), "cpu_usage_ratio", "", 0.9, &mut out);
        e.observe(
            t0() + Duration::seconds(240),
            "cpu_usage_ratio",
            "",
            0.5,
            &mut out,
        );
        e.observe(
            t0() + Duration::seconds(250),
            "cpu_usage_ratio",
            "",
            0.9,
            &mut out,
        );
        e.observe(
            t0() + Duration::seconds(500),
            "cpu_usage_ratio",
            "",
            0.9,
            &mut out,
        );
        assert!(
            out.is_empty(),
            "pending never fired, so no recovery either: {out:?}"
        );
        e.observe(
            t0() + Duration::seconds(550),
            "cpu_usage_ratio",
            "",
            0.9,
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn each_label_is_tracked_on_its_own_and_instant_rules_fire_at_once() {
        let mut e = RuleEngine::new(&default_rules(), &["agent_backlog_messages"]);
        let mut out = Vec::new();
        e.observe(
            t0(),
            "agent_backlog_messages",
            "agent=risk",
            150.0,
            &mut out,
        );
        e.observe(
            t0(),
            "agent_backlog_messages",
            "agent=signal",
            3.0,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], Transition::Breached { label, .. } if label == "agent=risk"));
        e.observe(
            t0(),
            "agent_backlog_messages",
            "agent=signal",
            101.0,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        e.observe(
            t0(),
            "agent_backlog_messages",
            "agent=risk",
            100.0,
            &mut out,
        );
        assert!(matches!(&out[2], Transition::Recovered { label, .. } if label == "agent=risk"));
        assert_eq!(e.active().len(), 1);
    }

    #[test]
    fn below_rules_and_unwatched_metrics() {
        let mut e = RuleEngine::new(&default_rules(), &["disk_free_bytes"]);
        assert!(e.watches("disk_free_bytes"));
        assert!(!e.watches("cpu_usage_ratio"));
        let mut out = Vec::new();
        e.observe(t0(), "cpu_usage_ratio", "", 1.0, &mut out);
        e.observe(t0(), "disk_free_bytes", "path=/", 20e9, &mut out);
        assert!(out.is_empty());
        e.observe(t0(), "disk_free_bytes", "path=/", 5e9, &mut out);
        assert!(matches!(&out[0], Transition::Breached { rule, .. } if rule == "disk_low"));
        // NaN never breaches: an unknown value is not a reading.
        let mut e = cpu_engine();
        e.observe(t0(), "cpu_usage_ratio", "", f64::NAN, &mut out);
        assert_eq!(out.len(), 1);
    }
}
