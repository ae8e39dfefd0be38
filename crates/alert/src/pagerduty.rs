//! `pagerduty`: PagerDuty Events API v2 (`trigger`, `acknowledge`, `resolve`), deduplicated on
//! the alert's fingerprint.

use std::fmt;

use serde_json::{Map, Value, json};
use vigil_config::PagerDutyConfig;

use crate::error::AlertError;
use crate::http::{Body, HttpClient, check_url, target};
use crate::model::{AlertStatus, Channel, DeliveryError, Message, Notification, Severity};
use crate::template::{self, truncate_chars};

/// The most characters of `payload.summary`.
const SUMMARY_MAX_CHARS: usize = 1024;

/// Sends events to PagerDuty.
pub struct PagerDutyChannel {
    routing_key: String,
    events_url: String,
    source: String,
    client: HttpClient,
}

impl fmt::Debug for PagerDutyChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyChannel")
            .field("target", &target(&self.events_url))
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PagerDutyChannel {
    /// Creates the channel from `[alerts.channels.pagerduty]`; no network I/O.
    ///
    /// # Errors
    /// Fails when the events URL is not an http(s) URL or the routing key is empty.
    pub fn new(cfg: &PagerDutyConfig) -> Result<Self, AlertError> {
        check_url("pagerduty", "events_url", &cfg.events_url)?;
        let routing_key = cfg.routing_key.expose().trim().to_string();
        if routing_key.is_empty() {
            return Err(AlertError::Config {
                channel: "pagerduty".into(),
                reason: "routing_key must not be empty".into(),
            });
        }
        Ok(Self {
            client: HttpClient::new(
                "pagerduty",
                cfg.connect_timeout_ms,
                cfg.timeout_ms,
                vec![routing_key.clone()],
            ),
            routing_key,
            events_url: cfg.events_url.clone(),
            source: cfg.source.clone(),
        })
    }
}

impl Channel for PagerDutyChannel {
    fn name(&self) -> &str {
        "pagerduty"
    }

    /// Sends an alert's event, or a `trigger` at severity `info` for a test. A digest is not
    /// an incident: it is refused (not transient), so the delivery escalates to the next
    /// channel of its route.
    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let event = event(&self.routing_key, &self.source, message).ok_or_else(|| {
            DeliveryError::Build {
                channel: "pagerduty".into(),
                reason: "a digest is not an incident; route digests to email or chat".into(),
            }
        })?;
        self.client.post(&self.events_url, &[], Body::Json(&event))
    }
}

/// PagerDuty's severity for ours: Critical → `critical`, High → `error`, Medium → `warning`,
/// Low → `info`.
pub fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

/// The event posted for a message; `None` for a digest.
pub fn event(routing_key: &str, source: &str, message: &Message) -> Option<Value> {
    match message {
        Message::Alert(n) => Some(alert_event(routing_key, source, n)),
        Message::Test { channel, at } => Some(json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": format!("vigil-test-{}", at.timestamp()),
            "payload": {
                "summary": format!("vigil test message for the channel \"{channel}\": nothing needs to be done"),
                "source": source,
                "severity": "info",
                "timestamp": at.to_rfc3339(),
                "component": "vigil",
                "class": "test",
            },
            "client": "vigil",
        })),
        Message::Digest { .. } | Message::Report(_) => None,
    }
}

fn alert_event(routing_key: &str, source: &str, n: &Notification) -> Value {
    let action = match n.status {
        AlertStatus::Firing => "trigger",
        AlertStatus::Acknowledged => "acknowledge",
        AlertStatus::Resolved => "resolve",
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": n.fingerprint,
    });
    // The Events API takes a payload and links with a trigger only.
    if n.status != AlertStatus::Firing {
        return event;
    }
    let mut details = Map::new();
    for (k, v) in &n.details {
        details.insert(k.clone(), Value::String(v.clone()));
    }
    details.insert("alert_id".into(), json!(n.alert_id));
    details.insert("actions_taken".into(), json!(n.actions_taken));
    details.insert("you_need_to".into(), json!(n.you_need_to));
    details.insert("runbook".into(), json!(n.runbook));
    details.insert(
        "occurred_at_et".into(),
        json!(template::format_et(n.occurred_at)),
    );
    details.insert("repeats".into(), json!(n.repeats));
    details.insert("labels".into(), json!(n.labels));
    event["payload"] = json!({
        "summary": truncate_chars(&format!("{}: {}", n.service, n.event), SUMMARY_MAX_CHARS),
        "source": source,
        "severity": pagerduty_severity(n.severity),
        "timestamp": n.occurred_at.to_rfc3339(),
        "component": n.service,
        "class": n.rule,
        "custom_details": details,
    });
    event["client"] = json!("vigil");
    let links: Vec<Value> = [
        ("Runbook", Some(&n.runbook)),
        ("Dashboard", n.dashboard.as_ref()),
    ]
    .into_iter()
    .filter_map(|(text, href)| {
        href.filter(|h| h.starts_with("http://") || h.starts_with("https://"))
            .map(|h| json!({ "href": h, "text": text }))
    })
    .collect();
    if !links.is_empty() {
        event["links"] = Value::Array(links);
    }
    event
}
