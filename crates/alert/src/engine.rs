//! The alert engine: lifecycle (pending → firing → resolved, with `for` and a
//! `keep_firing_for` hold-down), routing by severity, and suppression (aggregation, quiet
//! hours, silences, inhibition). Pure and clock-free: every call takes `now`, so a test runs
//! hours of alerting in microseconds. What it decides comes out as [`Effect`]s, which the
//! Monitor carries out (deliveries off the hot path, the breaker, log lines, the store).

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use vigil_config::AlertsConfig;
use vigil_core::{Level, Timestamp};

use crate::model::{AlertStatus, Message, Notification, Severity};

/// The alerts vigil raises besides the threshold rules of `config/rules.toml`; each has a
/// runbook in `docs/runbooks/<rule>.md`.
pub const BUILT_IN_RULES: &[&str] = &[
    "heartbeat_missed",
    "agent_failed",
    "log_silent",
    "breaker_tripped",
    "checklist_failed",
    "external_heartbeat_failed",
    "alert_undeliverable",
    "agent_crashed",
    "restart_intensity_exceeded",
    "monitor_stalled",
    "drawdown_control_engaged",
    "reconciliation_mismatch",
    "orders_paused",
    "data_gap",
    "symbol_quarantined",
    "data_source_switched",
    "data_outage",
    "data_verified",
    "log_anchor_failed",
    "fleet_unreachable",
    "fleet_node_lost",
    "fleet_lines_missing",
    "fleet_chain_broken",
    "fleet_stream_stalled",
    "fleet_watch_blind",
    "model_rolled_back",
    "model_drifted",
    "canary_aborted",
];

/// A condition a source reports: the Monitor's rules, agent faults, the dead-man's switch,
/// the checklist, the breaker.
#[derive(Clone, Debug, PartialEq)]
pub struct Raise {
    /// The rule's name; names the runbook (`docs/runbooks/<rule>.md`).
    pub rule: String,
    /// The source's level; the severity unless `[alerts.rules.<rule>]` says otherwise.
    pub level: Level,
    /// The service it concerns (`execution_agent`, `monitor_agent` …).
    pub service: String,
    /// Labels beyond rule and service (agent, target, symbol …): they make the fingerprint.
    pub labels: BTreeMap<String, String>,
    /// One-line headline.
    pub event: String,
    /// Ordered facts: value, threshold, …
    pub details: Vec<(String, String)>,
    /// What the person must do.
    pub you_need_to: String,
}

impl Raise {
    /// Every label, rule and service included.
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert("rule".into(), self.rule.clone());
        l.insert("service".into(), self.service.clone());
        l
    }
}

/// The stable fingerprint of a label set: FNV-1a 64 over `k=v` lines in key order, hex.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([b'=']).chain(v.bytes()).chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The condition holds, not yet for its `for` duration.
    Pending,
    /// Firing.
    Firing,
    /// The condition cleared; firing until the hold-down ends.
    Clearing,
}

/// An active alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Short id people type.
    pub id: String,
    /// Stable hash of the labels.
    pub fingerprint: String,
    /// The rule.
    pub rule: String,
    /// The service.
    pub service: String,
    /// Every label.
    pub labels: BTreeMap<String, String>,
    /// Severity from the rule (before quiet hours).
    pub severity: Severity,
    /// Headline of the latest raise.
    pub event: String,
    /// Facts of the latest raise.
    pub details: Vec<(String, String)>,
    /// What to do.
    pub you_need_to: String,
    /// Phase.
    pub phase: Phase,
    /// When the condition started.
    pub since: Timestamp,
    /// When it cleared (while clearing).
    pub cleared_at: Option<Timestamp>,
    /// Who acknowledged it, when.
    pub acked: Option<(String, Timestamp)>,
    /// Whether a firing notice went out (so a resolved notice is owed).
    pub notified_firing: bool,
}

/// The last notice of a fingerprint, kept for `group_interval` (after the alert resolved
/// too): later notices within the interval are counted, then sent as one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoticeMark {
    /// When it was sent.
    pub at: Timestamp,
    /// Notices held back since.
    pub repeats: u32,
    /// The last notice (sent or held back).
    pub last: Notification,
}

/// A silence: matching alerts are tracked and logged but not sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Id (`s-…`).
    pub id: String,
    /// Labels an alert must all have.
    pub matchers: BTreeMap<String, String>,
    /// From.
    pub starts: Timestamp,
    /// Until.
    pub ends: Timestamp,
    /// Who made it (operator, or `config` for a maintenance window).
    pub created_by: String,
    /// Why.
    pub reason: String,
}

impl Silence {
    fn covers(&self, now: Timestamp, labels: &BTreeMap<String, String>) -> bool {
        self.starts <= now && now < self.ends && matches(&self.matchers, labels)
    }
}

fn matches(matchers: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Why a notice was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Suppression {
    /// A silence or maintenance window matched.
    Silenced {
        /// Its id.
        id: String,
        /// Who made it and why.
        by: String,
        /// Why.
        reason: String,
    },
    /// A firing alert inhibits it.
    Inhibited {
        /// The inhibiting alert's rule.
        by_rule: String,
    },
    /// Notified less than `group_interval` ago; counted.
    Grouped {
        /// Repeats counted so far.
        repeats: u32,
    },
    /// Low severity: kept for the daily digest.
    Digest,
    /// Acknowledged: no repeat notices.
    Acknowledged,
}

impl fmt::Display for Suppression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Suppression::Silenced { id, by, reason } => {
                write!(f, "silenced by {id} ({by}: {reason})")
            }
            Suppression::Inhibited { by_rule } => write!(f, "inhibited by firing {by_rule}"),
            Suppression::Grouped { repeats } => {
                write!(f, "grouped with the last notice ({repeats} repeats so far)")
            }
            Suppression::Digest => f.write_str("low severity: kept for the daily digest"),
            Suppression::Acknowledged => f.write_str("acknowledged"),
        }
    }
}

/// What the engine decided; the caller carries each out and logs it.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send `message` on each of `channels` (each escalating per `routing.escalation`).
    Notify {
        /// The message.
        message: Message,
        /// Channel names, in order.
        channels: Vec<String>,
    },
    /// A Critical alert started firing: trip the circuit breaker first.
    TripBreaker {
        /// The alert's rule.
        rule: String,
        /// The alert's headline.
        reason: String,
    },
    /// An alert started firing (logged as `alert_firing`).
    Firing(Box<Alert>),
    /// An alert resolved (logged as `alert_resolved`).
    Resolved(Box<Alert>),
    /// A notice was held back (logged as `alert_suppressed`).
    Suppressed {
        /// The alert.
        id: String,
        /// The rule.
        rule: String,
        /// Why.
        why: Suppression,
    },
}

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// No active alert has this id.
    #[error("no active alert {0}")]
    NoSuchAlert(String),
    /// No silence has this id.
    #[error("no silence {0}")]
    NoSuchSilence(String),
    /// The silence's end is not after its start.
    #[error("a silence must end after it starts")]
    EmptySilence,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct AlertEngine {
    cfg: AlertsConfig,
    alerts: BTreeMap<String, Alert>,
    silences: Vec<Silence>,
    /// Notices of the current exchange day, for the post-close summary.
    day: Vec<Notification>,
    /// The last notice per fingerprint, within `group_interval`.
    notices: BTreeMap<String, NoticeMark>,
    next_silence: u64,
}

/// The state that survives a restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// Active alerts.
    pub alerts: Vec<Alert>,
    /// Operator silences (maintenance windows come from config).
    pub silences: Vec<Silence>,
    /// Today's notices, for the summary.
    pub day: Vec<Notification>,
    /// The last notice per fingerprint (aggregation).
    pub notices: BTreeMap<String, NoticeMark>,
    /// The number the next operator silence gets: ids are never reused.
    #[serde(default)]
    pub next_silence: u64,
}

fn severity_of(level: Level) -> Severity {
    match level {
        Level::Debug | Level::Info => Severity::Low,
        Level::Warn => Severity::Medium,
        Level::Error => Severity::High,
        Level::Critical => Severity::Critical,
    }
}

impl AlertEngine {
    /// An engine with no alerts.
    pub fn new(cfg: AlertsConfig) -> Self {
        Self {
            cfg,
            alerts: BTreeMap::new(),
            silences: Vec::new(),
            day: Vec::new(),
            notices: BTreeMap::new(),
            next_silence: 1,
        }
    }

    /// Restores what a previous process stored.
    pub fn restore(&mut self, state: EngineState) {
        self.alerts = state
            .alerts
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        let after_last = state
            .silences
            .iter()
            .filter_map(|s| s.id.strip_prefix("s-")?.parse::<u64>().ok())
            .max()
            .map_or(1, |n| n + 1);
        self.next_silence = state.next_silence.max(after_last);
        self.silences = state.silences;
        self.day = state.day;
        self.notices = state.notices;
    }

    /// What to store.
    pub fn state(&self) -> EngineState {
        EngineState {
            alerts: self.alerts.values().cloned().collect(),
            silences: self.silences.clone(),
            day: self.day.clone(),
            notices: self.notices.clone(),
            next_silence: self.next_silence,
        }
    }

    /// Active alerts, oldest first.
    pub fn active(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.alerts.values().collect();
        v.sort_by_key(|a| a.since);
        v
    }

    /// Silences in force or scheduled (operator's and config's).
    pub fn silences(&self, now: Timestamp) -> Vec<Silence> {
        let mut v: Vec<Silence> = self
            .silences
            .iter()
            .filter(|s| s.ends > now)
            .cloned()
            .collect();
        v.extend(self.maintenance());
        v
    }

    fn maintenance(&self) -> impl Iterator<Item = Silence> + '_ {
        self.cfg
            .maintenance
            .iter()
            .enumerate()
            .map(|(i, m)| Silence {
                id: format!("m-{}", i + 1),
                matchers: m.matchers.clone(),
                starts: m.start,
                ends: m.end,
                created_by: "config".into(),
                reason: m.reason.clone(),
            })
    }

    fn rule_cfg(&self, rule: &str) -> (Option<Severity>, u64, u64) {
        let r = self.cfg.rules.get(rule);
        (
            r.and_then(|r| r.severity.as_deref())
                .and_then(|s| s.parse().ok()),
            r.and_then(|r| r.for_s).unwrap_or(self.cfg.for_s),
            r.and_then(|r| r.keep_firing_for)
                .unwrap_or(self.cfg.keep_firing_for),
        )
    }

    /// A source reports that a condition holds (again).
    pub fn raise(&mut self, now: Timestamp, market_open: bool, r: Raise, out: &mut Vec<Effect>) {
        let labels = r.all_labels();
        let fp = fingerprint(&labels);
        let (sev, for_s, _) = self.rule_cfg(&r.rule);
        let severity = sev.unwrap_or_else(|| severity_of(r.level));
        match self.alerts.get_mut(&fp) {
            Some(a) => {
                a.event = r.event;
                a.details = r.details;
                a.severity = severity;
                match a.phase {
                    Phase::Clearing => {
                        // Back within the hold-down: still the same firing alert.
                        a.phase = Phase::Firing;
                        a.cleared_at = None;
                    }
                    Phase::Firing | Phase::Pending => {}
                }
                if a.phase == Phase::Firing && a.severity == Severity::Critical {
                    // Seen again (after a restart, or back within the hold-down, perhaps
                    // after someone reset the breaker): no new notice, but the breaker acts
                    // on every sighting.
                    out.push(Effect::TripBreaker {
                        rule: a.rule.clone(),
                        reason: a.event.clone(),
                    });
                }
            }
            None => {
                let alert = Alert {
                    id: format!("a-{}", &fp[..8]),
                    fingerprint: fp.clone(),
                    rule: r.rule,
                    service: r.service,
                    labels,
                    severity,
                    event: r.event,
                    details: r.details,
                    you_need_to: r.you_need_to,
                    phase: Phase::Pending,
                    since: now,
                    cleared_at: None,
                    acked: None,
                    notified_firing: false,
                };
                self.alerts.insert(fp.clone(), alert);
                if for_s == 0 {
                    self.fire(now, market_open, &fp, out);
                }
            }
        }
    }

    /// A source reports that a condition no longer holds.
    pub fn clear(
        &mut self,
        now: Timestamp,
        market_open: bool,
        rule: &str,
        service: &str,
        labels: &BTreeMap<String, String>,
        out: &mut Vec<Effect>,
    ) {
        let mut all = labels.clone();
        all.insert("rule".into(), rule.into());
        all.insert("service".into(), service.into());
        let fp = fingerprint(&all);
        let (_, _, keep) = self.rule_cfg(rule);
        let Some(a) = self.alerts.get_mut(&fp) else {
            return;
        };
        match a.phase {
            // It never fired: nobody was told, nobody needs to be.
            Phase::Pending => {
                self.alerts.remove(&fp);
            }
            Phase::Firing => {
                a.phase = Phase::Clearing;
                a.cleared_at = Some(now);
                if keep == 0 {
                    self.resolve(now, market_open, &fp, out);
                }
            }
            Phase::Clearing => {}
        }
    }

    /// Moves time on: pending alerts past `for` fire, clearing alerts past the hold-down
    /// resolve, grouped repeats past `group_interval` are sent.
    pub fn tick(&mut self, now: Timestamp, market_open: bool, out: &mut Vec<Effect>) {
        let mut to_fire = Vec::new();
        let mut to_resolve = Vec::new();
        let group = vigil_core::seconds(self.cfg.group_interval);
        for (fp, a) in &self.alerts {
            let (_, for_s, keep) = self.rule_cfg(&a.rule);
            match a.phase {
                Phase::Pending if now - a.since >= vigil_core::seconds(for_s) => {
                    to_fire.push(fp.clone());
                }
                Phase::Clearing
                    if a.cleared_at
                        .is_some_and(|c| now - c >= vigil_core::seconds(keep)) =>
                {
                    to_resolve.push(fp.clone());
                }
                _ => {}
            }
        }
        for fp in to_fire {
            self.fire(now, market_open, &fp, out);
        }
        for fp in to_resolve {
            self.resolve(now, market_open, &fp, out);
        }
        // Grouped repeats whose interval is over go out as one notice: the alert as it is
        // now (firing), or the last notice as resolved if it is gone.
        let due: Vec<String> = self
            .notices
            .iter()
            .filter(|(_, m)| now - m.at >= group)
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in due {
            let Some(mark) = self.notices.remove(&fp) else {
                continue;
            };
            if mark.repeats == 0 {
                continue;
            }
            let active = self
                .alerts
                .get(&fp)
                .is_some_and(|a| a.phase != Phase::Pending && a.acked.is_none());
            if active {
                // Past the interval, so not grouped again; `notify` reads its count.
                self.notices.insert(fp.clone(), mark);
                self.notify(now, market_open, &fp, AlertStatus::Firing, out);
            } else {
                let mut n = mark.last;
                n.status = AlertStatus::Resolved;
                n.repeats = mark.repeats;
                n.occurred_at = now;
                self.send(now, n, out);
            }
        }
        self.silences.retain(|s| s.ends > now);
    }

    fn fire(&mut self, now: Timestamp, market_open: bool, fp: &str, out: &mut Vec<Effect>) {
        let Some(a) = self.alerts.get_mut(fp) else {
            return;
        };
        a.phase = Phase::Firing;
        out.push(Effect::Firing(Box::new(a.clone())));
        if a.severity == Severity::Critical {
            // The breaker acts whatever the notices do: a silence quiets people, not safety.
            out.push(Effect::TripBreaker {
                rule: a.rule.clone(),
                reason: a.event.clone(),
            });
        }
        self.notify(now, market_open, fp, AlertStatus::Firing, out);
    }

    fn resolve(&mut self, now: Timestamp, market_open: bool, fp: &str, out: &mut Vec<Effect>) {
        let owed = self.alerts.get(fp).is_some_and(|a| a.notified_firing);
        if owed {
            self.notify(now, market_open, fp, AlertStatus::Resolved, out);
        }
        if let Some(a) = self.alerts.remove(fp) {
            out.push(Effect::Resolved(Box::new(a)));
        }
    }

    fn suppression(&self, now: Timestamp, a: &Alert, status: AlertStatus) -> Option<Suppression> {
        let silences = self.silences.iter().cloned().chain(self.maintenance());
        for s in silences {
            if s.covers(now, &a.labels) {
                return Some(Suppression::Silenced {
                    id: s.id,
                    by: s.created_by,
                    reason: s.reason,
                });
            }
        }
        for inh in &self.cfg.inhibit {
            if !matches(&inh.target, &a.labels) {
                continue;
            }
            let by = self.alerts.values().find(|src| {
                src.fingerprint != a.fingerprint
                    && src.phase != Phase::Pending
                    && matches(&inh.source, &src.labels)
                    && inh
                        .equal
                        .iter()
                        .all(|k| src.labels.get(k) == a.labels.get(k))
            });
            if let Some(src) = by {
                return Some(Suppression::Inhibited {
                    by_rule: src.rule.clone(),
                });
            }
        }
        if status == AlertStatus::Firing {
            if a.acked.is_some() {
                return Some(Suppression::Acknowledged);
            }
            let group = vigil_core::seconds(self.cfg.group_interval);
            if let Some(mark) = self.notices.get(&a.fingerprint)
                && now - mark.at < group
            {
                return Some(Suppression::Grouped {
                    repeats: mark.repeats + 1,
                });
            }
        }
        None
    }

    /// Severity after quiet hours.
    fn effective(&self, severity: Severity, market_open: bool) -> Severity {
        if self.cfg.quiet_outside_trading_hours && !market_open && severity != Severity::Critical {
            Severity::Low
        } else {
            severity
        }
    }

    fn route(&self, severity: Severity) -> Vec<String> {
        let r = &self.cfg.routing;
        match severity {
            Severity::Low => r.low.clone(),
            Severity::Medium => r.medium.clone(),
            Severity::High => r.high.clone(),
            Severity::Critical => r.critical.clone(),
        }
    }

    fn notification(
        &self,
        a: &Alert,
        severity: Severity,
        status: AlertStatus,
        now: Timestamp,
    ) -> Notification {
        let base = self.cfg.runbook_base.trim_end_matches('/');
        Notification {
            alert_id: a.id.clone(),
            fingerprint: a.fingerprint.clone(),
            severity,
            status,
            rule: a.rule.clone(),
            service: a.service.clone(),
            event: a.event.clone(),
            occurred_at: match status {
                AlertStatus::Firing => a.since,
                _ => now,
            },
            details: a.details.clone(),
            actions_taken: if a.severity == Severity::Critical && status == AlertStatus::Firing {
                vec!["Circuit breaker tripped: trading halted, new orders rejected".into()]
            } else {
                Vec::new()
            },
            you_need_to: match status {
                AlertStatus::Resolved => {
                    "Nothing; the condition cleared. Check the log if it recurs.".into()
                }
                _ => a.you_need_to.clone(),
            },
            runbook: format!("{base}/{}.md", a.rule),
            dashboard: self
                .cfg
                .dashboard_url
                .as_ref()
                .map(|u| u.replace("{alert}", &a.id)),
            repeats: 0,
            labels: a.labels.clone(),
        }
    }

    fn notify(
        &mut self,
        now: Timestamp,
        market_open: bool,
        fp: &str,
        status: AlertStatus,
        out: &mut Vec<Effect>,
    ) {
        let Some(a) = self.alerts.get(fp) else {
            return;
        };
        let severity = self.effective(a.severity, market_open);
        let mut n = self.notification(a, severity, status, now);
        if let Some(why) = self.suppression(now, a, status) {
            if let Suppression::Grouped { .. } = why
                && let Some(mark) = self.notices.get_mut(fp)
            {
                mark.repeats += 1;
                mark.last = n;
            }
            out.push(Effect::Suppressed {
                id: a.id.clone(),
                rule: a.rule.clone(),
                why,
            });
            return;
        }
        if status == AlertStatus::Firing
            && let Some(a) = self.alerts.get_mut(fp)
        {
            a.notified_firing = true;
        }
        if let Some(mark) = self.notices.get(fp) {
            n.repeats = mark.repeats;
        }
        self.send(now, n, out);
    }

    /// Records and routes one notice (Low ones wait for the digest).
    fn send(&mut self, now: Timestamp, n: Notification, out: &mut Vec<Effect>) {
        self.notices.insert(
            n.fingerprint.clone(),
            NoticeMark {
                at: now,
                repeats: 0,
                last: n.clone(),
            },
        );
        self.day.push(n.clone());
        if n.severity == Severity::Low {
            out.push(Effect::Suppressed {
                id: n.alert_id.clone(),
                rule: n.rule.clone(),
                why: Suppression::Digest,
            });
            return;
        }
        let channels = self.route(n.severity);
        out.push(Effect::Notify {
            message: Message::Alert(Box::new(n)),
            channels,
        });
    }

    /// A person acknowledged alert `id`: no more repeat notices; PagerDuty is told.
    ///
    /// # Errors
    /// When no active alert has that id.
    pub fn ack(
        &mut self,
        now: Timestamp,
        id: &str,
        who: &str,
        out: &mut Vec<Effect>,
    ) -> Result<(), EngineError> {
        let fp = self
            .alerts
            .values()
            .find(|a| a.id == id)
            .map(|a| a.fingerprint.clone())
            .ok_or_else(|| EngineError::NoSuchAlert(id.to_string()))?;
        let Some(a) = self.alerts.get_mut(&fp) else {
            return Err(EngineError::NoSuchAlert(id.to_string()));
        };
        if a.acked.is_some() {
            return Ok(());
        }
        a.acked = Some((who.to_string(), now));
        let a = a.clone();
        let n = self.notification(&a, a.severity, AlertStatus::Acknowledged, now);
        let channels: Vec<String> = self
            .route(a.severity)
            .into_iter()
            .filter(|c| c == "pagerduty")
            .collect();
        if !channels.is_empty() {
            out.push(Effect::Notify {
                message: Message::Alert(Box::new(n)),
                channels,
            });
        }
        Ok(())
    }

    /// Adds an operator's silence; returns it (with its id).
    ///
    /// # Errors
    /// When it ends before it starts.
    pub fn silence(
        &mut self,
        matchers: BTreeMap<String, String>,
        starts: Timestamp,
        ends: Timestamp,
        created_by: &str,
        reason: &str,
    ) -> Result<Silence, EngineError> {
        if ends <= starts {
            return Err(EngineError::EmptySilence);
        }
        let s = Silence {
            id: format!("s-{}", self.next_silence),
            matchers,
            starts,
            ends,
            created_by: created_by.to_string(),
            reason: reason.to_string(),
        };
        self.next_silence += 1;
        self.silences.push(s.clone());
        Ok(s)
    }

    /// Removes an operator's silence.
    ///
    /// # Errors
    /// When there is none with that id.
    pub fn unsilence(&mut self, id: &str) -> Result<Silence, EngineError> {
        let pos = self
            .silences
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| EngineError::NoSuchSilence(id.to_string()))?;
        Ok(self.silences.remove(pos))
    }

    /// The post-close summary of the day's notices (Low ones included: this is their
    /// digest); starts a new day. `None` when the day had none.
    pub fn day_summary(&mut self, date: NaiveDate) -> Option<Effect> {
        self.digest(date, |n| {
            format!("Alert summary for {date}: {n} notice{}", plural(n))
        })
    }

    /// The digest of the notices kept since the last summary (the quiet hours: the night,
    /// a weekend), sent before the open of the `date` session; starts a new day. `None`
    /// when there were none.
    pub fn pre_open_summary(&mut self, date: NaiveDate) -> Option<Effect> {
        self.digest(date, |n| {
            format!(
                "Before the {date} open: {n} notice{} since the last summary",
                plural(n)
            )
        })
    }

    /// The end-of-day report, to the digest's channels. It is not a notice about an alert:
    /// no silence, quiet period or grouping holds it back.
    pub fn day_report(&self, report: crate::model::Report) -> Effect {
        Effect::Notify {
            message: Message::Report(Box::new(report)),
            channels: self.cfg.routing.digest.clone(),
        }
    }

    fn digest(&mut self, date: NaiveDate, title: impl Fn(usize) -> String) -> Option<Effect> {
        if self.day.is_empty() {
            return None;
        }
        let items = std::mem::take(&mut self.day);
        Some(Effect::Notify {
            message: Message::Digest {
                title: title(items.len()),
                date,
                items,
            },
            channels: self.cfg.routing.digest.clone(),
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The exchange (New York) date of `t` (see [`vigil_core::exchange_date`]).
pub use vigil_core::exchange_date;

#[cfg(test)]
mod tests;

/// What a person sees of a saved engine state (`vigil alerts list --json`, the dashboard):
/// the active alerts and the silences still in force at `now`, as JSON.
///
/// # Errors
/// The saved state is not readable as an [`EngineState`].
pub fn saved_view(
    cfg: &AlertsConfig,
    state: &str,
    now: Timestamp,
) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), serde_json::Error> {
    let state: EngineState = serde_json::from_str(state)?;
    let mut engine = AlertEngine::new(cfg.clone());
    engine.restore(state);
    let alerts = engine
        .active()
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "severity": a.severity,
                "phase": a.phase,
                "rule": a.rule,
                "service": a.service,
                "labels": a.labels,
                "event": a.event,
                "since": a.since,
                "cleared_at": a.cleared_at,
                "acked": a.acked.as_ref().map(|(who, at)| serde_json::json!({"by": who, "at": at})),
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    let silences = engine
        .silences(now)
        .into_iter()
        .filter(|s| s.ends > now)
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "matchers": s.matchers,
                "starts": s.starts,
                "ends": s.ends,
                "created_by": s.created_by,
                "reason": s.reason,
            })
        })
        .collect();
    Ok((alerts, silences))
}
