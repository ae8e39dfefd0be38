//! `[alerts]`: routing by severity, suppression, and the channels.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::channels::ChannelsConfig;
use crate::model::duration_text;
use crate::validate::ConfigIssue;

/// Alerting: where each severity goes, what is suppressed, and how to reach people.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// Turn alerting off entirely (alerts are still logged as events by their sources).
    pub enabled: bool,
    /// How long a condition must hold before its alert fires (per rule in `rules`).
    #[serde(rename = "for", with = "duration_text")]
    pub for_s: u64,
    /// Hold-down: an alert whose condition clears stays firing this long, so a flapping
    /// condition does not page twice.
    #[serde(with = "duration_text")]
    pub keep_firing_for: u64,
    /// The same alert notifies at most once per this interval; later repeats are counted
    /// and reported with the next notice.
    #[serde(with = "duration_text")]
    pub group_interval: u64,
    /// Outside trading hours (the exchange calendar) every severity but Critical is
    /// downgraded to Low (the daily digest).
    pub quiet_outside_trading_hours: bool,
    /// Where a runbook link points: `docs/runbooks` (the default), or a URL prefix such as
    /// `https://wiki.example.com/vigil/runbooks`; `<rule>.md` is appended.
    pub runbook_base: String,
    /// A dashboard link put in every notice, when set; `{alert}` in it becomes the alert's
    /// id, so that vigil's own dashboard opens the page of that alert:
    /// `https://HOST:PORT/ui/#alert/{alert}`.
    pub dashboard_url: Option<String>,
    /// The channels for each severity, and the order of escalation.
    pub routing: RoutingConfig,
    /// Per-rule overrides: severity, `for`, `keep_firing_for`.
    pub rules: BTreeMap<String, AlertRuleConfig>,
    /// Scheduled maintenance windows: matching alerts are silenced.
    pub maintenance: Vec<MaintenanceConfig>,
    /// Inhibition: while a source alert fires, matching target alerts are not sent.
    pub inhibit: Vec<InhibitConfig>,
    /// The channels; a channel that is not configured is not used.
    pub channels: ChannelsConfig,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            for_s: 0,
            keep_firing_for: 120,
            group_interval: 300,
            quiet_outside_trading_hours: true,
            runbook_base: "docs/runbooks".into(),
            dashboard_url: None,
            routing: RoutingConfig::default(),
            rules: BTreeMap::new(),
            maintenance: Vec::new(),
            inhibit: vec![InhibitConfig {
                source: BTreeMap::from([("rule".into(), "breaker_tripped".into())]),
                target: BTreeMap::from([("rule".into(), "trade_frequency_off".into())]),
                equal: Vec::new(),
            }],
            channels: ChannelsConfig::default(),
        }
    }
}

/// Channels by severity. Names: `email`, `slack`, `teams`, `sms`, `call`, `pagerduty`,
/// `webhook`. A name whose channel is not configured is skipped (and said so at start).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingConfig {
    /// Low: collected into the daily digest (sent at the post-close phase).
    pub low: Vec<String>,
    /// Medium: chat.
    pub medium: Vec<String>,
    /// High: SMS and a phone call, plus chat and the pager.
    pub high: Vec<String>,
    /// Critical: the breaker trips first, then every channel.
    pub critical: Vec<String>,
    /// The day's alert summary at the post-close phase (16:05 ET).
    pub digest: Vec<String>,
    /// When a channel fails after its retries, the next of these (not already tried) is
    /// tried instead.
    pub escalation: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            low: names(&["email"]),
            medium: names(&["slack", "teams", "webhook"]),
            high: names(&["sms", "call", "pagerduty", "slack", "teams", "webhook"]),
            critical: names(&[
                "sms",
                "call",
                "pagerduty",
                "slack",
                "teams",
                "email",
                "webhook",
            ]),
            digest: names(&["email"]),
            escalation: names(&["pagerduty", "email", "webhook", "slack"]),
        }
    }
}

/// Overrides for one rule's alert.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertRuleConfig {
    /// `low`, `medium`, `high` or `critical` (default: from the source's level: WARN →
    /// medium, ERROR → high, CRITICAL → critical).
    pub severity: Option<String>,
    /// Overrides `alerts.for`.
    #[serde(
        rename = "for",
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub for_s: Option<u64>,
    /// Overrides `alerts.keep_firing_for`.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<u64>,
}

mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: &Option<u64>, ser: S) -> Result<S::Ok, S::Error> {
        match s {
            Some(v) => super::duration_text::serialize(v, ser),
            None => ser.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::duration_text")] u64);
        Ok(Some(Wrap::deserialize(de)?.0))
    }
}

/// A scheduled maintenance window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaintenanceConfig {
    /// Labels an alert must all have to be silenced, e.g. `{ rule = "cpu_high" }`; empty
    /// matches every alert.
    #[serde(rename = "match", default)]
    pub matchers: BTreeMap<String, String>,
    /// Start (RFC 3339).
    pub start: DateTime<Utc>,
    /// End (RFC 3339).
    pub end: DateTime<Utc>,
    /// Why (recorded with every alert it silences).
    pub reason: String,
}

/// One inhibition rule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InhibitConfig {
    /// Labels of the alert that inhibits, e.g. `{ rule = "breaker_tripped" }`.
    pub source: BTreeMap<String, String>,
    /// Labels of the alerts it inhibits.
    pub target: BTreeMap<String, String>,
    /// Labels that must be equal in both (e.g. `["symbol"]`).
    #[serde(default)]
    pub equal: Vec<String>,
}

/// Every channel name a route may use, whether configured or not.
pub const CHANNEL_NAMES: [&str; 7] = [
    "email",
    "slack",
    "teams",
    "sms",
    "call",
    "pagerduty",
    "webhook",
];
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Checks `[alerts]`; pushes every problem.
pub(crate) fn check(a: &AlertsConfig, out: &mut Vec<ConfigIssue>) {
    let r = &a.routing;
    for (key, list) in [
        ("low", &r.low),
        ("medium", &r.medium),
        ("high", &r.high),
        ("critical", &r.critical),
        ("digest", &r.digest),
        ("escalation", &r.escalation),
    ] {
        for (i, name) in list.iter().enumerate() {
            if !CHANNEL_NAMES.contains(&name.as_str()) {
                out.push(ConfigIssue::new(
                    &format!("alerts.routing.{key}[{i}]"),
                    format!(
                        "unknown channel {name:?}; expected one of {}",
                        CHANNEL_NAMES.join(", ")
                    ),
                ));
            }
        }
    }
    for (name, rule) in &a.rules {
        if let Some(s) = &rule.severity
            && !SEVERITIES.contains(&s.to_ascii_lowercase().as_str())
        {
            out.push(ConfigIssue::new(
                &format!("alerts.rules.{name}.severity"),
                format!("unknown severity {s:?}; expected low, medium, high or critical"),
            ));
        }
    }
    for (i, m) in a.maintenance.iter().enumerate() {
        if m.end <= m.start {
            out.push(ConfigIssue::new(
                &format!("alerts.maintenance[{i}].end"),
                format!("must be after start ({}), got {}", m.start, m.end),
            ));
        }
        if m.reason.trim().is_empty() {
            out.push(ConfigIssue::new(
                &format!("alerts.maintenance[{i}].reason"),
                "must say why",
            ));
        }
    }
    for (i, inh) in a.inhibit.iter().enumerate() {
        if inh.source.is_empty() || inh.target.is_empty() {
            out.push(ConfigIssue::new(
                &format!("alerts.inhibit[{i}]"),
                "source and target must each match at least one label",
            ));
        }
    }
    for (key, v) in [
        ("alerts.for", a.for_s),
        ("alerts.keep_firing_for", a.keep_firing_for),
        ("alerts.group_interval", a.group_interval),
    ] {
        out.extend(crate::bounds::check(key, key, v));
    }
    for (name, rule) in &a.rules {
        for (key, v) in [
            ("for", rule.for_s),
            ("keep_firing_for", rule.keep_firing_for),
        ] {
            if let Some(v) = v {
                out.extend(crate::bounds::check(
                    &format!("alerts.rules.*.{key}"),
                    &format!("alerts.rules.{name}.{key}"),
                    v,
                ));
            }
        }
    }
}
