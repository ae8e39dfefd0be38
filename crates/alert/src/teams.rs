//! `teams`: a Microsoft Teams incoming webhook (a Workflows "post to a channel when a webhook
//! request is received" flow), as an Adaptive Card 1.4.

use std::fmt;

use serde_json::{Value, json};
use vigil_config::WebhookUrlConfig;

use crate::error::AlertError;
use crate::http::{Body, HttpClient, check_url, target};
use crate::model::{AlertStatus, Channel, DeliveryError, Message, Notification, Severity};
use crate::template::{self, render};

/// Posts Adaptive Cards to a Teams webhook.
pub struct TeamsChannel {
    url: String,
    client: HttpClient,
}

impl fmt::Debug for TeamsChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsChannel")
            .field("target", &target(&self.url))
            .finish_non_exhaustive()
    }
}

impl TeamsChannel {
    /// Creates the channel from `[alerts.channels.teams]`; no network I/O.
    ///
    /// # Errors
    /// Fails when the URL is not an http(s) URL.
    pub fn new(cfg: &WebhookUrlConfig) -> Result<Self, AlertError> {
        let url = cfg.url.expose().to_string();
        check_url("teams", "url", &url)?;
        Ok(Self {
            client: HttpClient::new(
                "teams",
                cfg.connect_timeout_ms,
                cfg.timeout_ms,
                vec![url.clone()],
            ),
            url,
        })
    }
}

impl Channel for TeamsChannel {
    fn name(&self) -> &str {
        "teams"
    }

    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.client
            .post(&self.url, &[], Body::Json(&payload(message)))
    }
}

/// The JSON posted for a message: a `message` with one Adaptive Card attachment.
pub fn payload(message: &Message) -> Value {
    let rendered = render(message);
    let color = match message {
        Message::Alert(n) => color(n),
        Message::Digest { .. } | Message::Test { .. } | Message::Report(_) => "Default",
    };
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": rendered.subject,
        "weight": "Bolder",
        "size": "Large",
        "color": color,
        "wrap": true,
    })];
    let mut actions = Vec::new();
    match message {
        Message::Alert(n) => alert_body(n, &mut body, &mut actions),
        Message::Digest { date, items, .. } => {
            if items.is_empty() {
                body.push(text_block("No alerts."));
            }
            for n in items {
                body.push(text_block(
                    &template::digest_item(*date, n).replace("\n  ", "\n\n"),
                ));
            }
        }
        Message::Report(_) => {
            let rest: Vec<&str> = rendered.text.lines().skip(2).collect();
            body.push(json!({
                "type": "TextBlock",
                "text": rest.join("\n\n"),
                "fontType": "Monospace",
                "wrap": true,
            }));
        }
        Message::Test { .. } => {
            let rest = rendered
                .text
                .lines()
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n\n");
            body.push(text_block(&rest));
        }
    }
    let mut content = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        content["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    })
}

fn color(n: &Notification) -> &'static str {
    match (n.status, n.severity) {
        (AlertStatus::Resolved, _) => "Good",
        (_, Severity::Critical | Severity::High) => "Attention",
        (_, Severity::Medium) => "Warning",
        (_, Severity::Low) => "Default",
    }
}

fn alert_body(n: &Notification, body: &mut Vec<Value>, actions: &mut Vec<Value>) {
    body.push(json!({
        "type": "TextBlock",
        "text": n.event,
        "weight": "Bolder",
        "wrap": true,
    }));
    let mut facts = vec![
        json!({ "title": "Time", "value": template::format_et(n.occurred_at) }),
        json!({ "title": "Service", "value": n.service }),
    ];
    facts.extend(
        n.details
            .iter()
            .map(|(k, v)| json!({ "title": k, "value": v })),
    );
    body.push(json!({ "type": "FactSet", "facts": facts }));
    if !n.actions_taken.is_empty() {
        body.push(heading("Actions taken"));
        let list: Vec<String> = n.actions_taken.iter().map(|a| format!("- {a}")).collect();
        // Adaptive Cards separate the items of a Markdown list with a carriage return.
        body.push(text_block(&list.join("\r")));
    }
    if !n.you_need_to.trim().is_empty() {
        body.push(heading("You need to"));
        body.push(text_block(&n.you_need_to));
    }
    let mut footer = Vec::new();
    if !n.runbook.trim().is_empty() {
        footer.push(format!("Runbook: {}", n.runbook));
    }
    footer.push(template::alert_line(n));
    footer.extend(template::repeats_line(n.repeats));
    body.push(json!({
        "type": "TextBlock",
        "text": footer.join("\n\n"),
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
    }));
    for (title, url) in [
        ("Runbook", Some(&n.runbook)),
        ("Dashboard", n.dashboard.as_ref()),
    ] {
        if let Some(url) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
            actions.push(json!({ "type": "Action.OpenUrl", "title": title, "url": url }));
        }
    }
}

fn heading(text: &str) -> Value {
    json!({ "type": "TextBlock", "text": text, "weight": "Bolder", "wrap": true })
}

fn text_block(text: &str) -> Value {
    json!({ "type": "TextBlock", "text": text, "wrap": true })
}
