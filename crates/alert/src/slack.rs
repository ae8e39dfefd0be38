//! `slack`: a Slack incoming webhook, as Block Kit blocks with the plain text as fallback.

use std::fmt;

use serde_json::{Value, json};
use vigil_config::WebhookUrlConfig;

use crate::error::AlertError;
use crate::http::{Body, HttpClient, check_url, target};
use crate::model::{Channel, DeliveryError, Message, Notification};
use crate::template::{self, render};

/// The most fields Slack accepts in one section block.
const FIELDS_PER_SECTION: usize = 10;
/// The most characters of a section's text.
const SECTION_MAX_CHARS: usize = 3000;
/// The most characters of a header's text.
const HEADER_MAX_CHARS: usize = 150;

/// Posts to a Slack incoming webhook.
pub struct SlackChannel {
    url: String,
    client: HttpClient,
}

impl fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackChannel")
            .field("target", &target(&self.url))
            .finish_non_exhaustive()
    }
}

impl SlackChannel {
    /// Creates the channel from `[alerts.channels.slack]`; no network I/O.
    ///
    /// # Errors
    /// Fails when the URL is not an http(s) URL.
    pub fn new(cfg: &WebhookUrlConfig) -> Result<Self, AlertError> {
        let url = cfg.url.expose().to_string();
        check_url("slack", "url", &url)?;
        Ok(Self {
            client: HttpClient::new(
                "slack",
                cfg.connect_timeout_ms,
                cfg.timeout_ms,
                vec![url.clone()],
            ),
            url,
        })
    }
}

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        "slack"
    }

    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.client
            .post(&self.url, &[], Body::Json(&payload(message)))
    }
}

/// The JSON posted for a message: `{"text": <the plain text>, "blocks": [...]}`.
pub fn payload(message: &Message) -> Value {
    let rendered = render(message);
    let mut blocks = vec![header(&rendered.subject)];
    match message {
        Message::Alert(n) => alert_blocks(n, &mut blocks),
        Message::Digest { date, items, .. } => {
            if items.is_empty() {
                blocks.push(section("No alerts."));
            }
            let lines: Vec<String> = items
                .iter()
                .map(|n| escape(&template::digest_item(*date, n)))
                .collect();
            for chunk in chunk_lines(&lines, SECTION_MAX_CHARS) {
                blocks.push(section(&chunk));
            }
        }
        Message::Test { .. } => {
            let body = rendered.text.lines().skip(1).collect::<Vec<_>>().join("\n");
            blocks.push(section(&escape(&body)));
        }
        Message::Report(_) => {
            // The report's columns line up in a code block.
            let lines: Vec<String> = rendered.text.lines().skip(2).map(escape).collect();
            for chunk in chunk_lines(&lines, SECTION_MAX_CHARS - 8) {
                blocks.push(section(&format!("```{chunk}```")));
            }
        }
    }
    json!({ "text": rendered.text, "blocks": blocks })
}

fn alert_blocks(n: &Notification, blocks: &mut Vec<Value>) {
    blocks.push(section(&format!("*{}*", escape(&n.event))));
    let mut fields = vec![
        ("Service".to_string(), n.service.clone()),
        ("Time".to_string(), template::format_et(n.occurred_at)),
    ];
    fields.extend(n.details.iter().cloned());
    for chunk in fields.chunks(FIELDS_PER_SECTION) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| {
                json!({
                    "type": "mrkdwn",
                    "text": template::truncate_chars(&format!("*{}*\n{}", escape(k), escape(v)), 2000),
                })
            })
            .collect();
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if !n.actions_taken.is_empty() {
        let list: Vec<String> = n
            .actions_taken
            .iter()
            .map(|a| format!("• {}", escape(a)))
            .collect();
        blocks.push(section(&format!("*Actions taken*\n{}", list.join("\n"))));
    }
    if !n.you_need_to.trim().is_empty() {
        blocks.push(section(&format!(
            "*You need to*\n{}",
            escape(&n.you_need_to)
        )));
    }
    let mut context = Vec::new();
    if !n.runbook.trim().is_empty() {
        context.push(format!("Runbook: {}", link(&n.runbook)));
    }
    if let Some(d) = &n.dashboard {
        context.push(format!("Dashboard: {}", link(d)));
    }
    context.push(escape(&template::alert_line(n)));
    context.extend(template::repeats_line(n.repeats));
    let elements: Vec<Value> = context
        .iter()
        .map(|t| json!({ "type": "mrkdwn", "text": t }))
        .collect();
    blocks.push(json!({ "type": "context", "elements": elements }));
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": { "type": "plain_text", "text": template::truncate_chars(text, HEADER_MAX_CHARS) },
    })
}

fn section(mrkdwn: &str) -> Value {
    json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": template::truncate_chars(mrkdwn, SECTION_MAX_CHARS) },
    })
}

/// A URL as a Slack link, other text escaped.
fn link(target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        format!("<{}>", escape(target))
    } else {
        escape(target)
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control: `&`, `<`, `>`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Lines joined by newlines into chunks of at most `max` characters each.
fn chunk_lines(lines: &[String], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.chars().count() + 1 + line.chars().count() > max {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::drawdown;

    #[test]
    fn escapes_mrkdwn_control_characters() {
        assert_eq!(escape("P&L <5%>"), "P&amp;L &lt;5%&gt;");
    }

    #[test]
    fn splits_many_details_into_sections_of_ten_fields() {
        let mut n = drawdown();
        n.details = (0..15)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let p = payload(&Message::Alert(Box::new(n)));
        let sections: Vec<&Value> = p["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .filter(|b| b.get("fields").is_some())
            .collect();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0]["fields"].as_array().map(Vec::len), Some(10));
        assert_eq!(sections[1]["fields"].as_array().map(Vec::len), Some(7));
    }

    #[test]
    fn chunks_long_digests() {
        let lines: Vec<String> = (0..5).map(|i| format!("line {i}")).collect();
        assert_eq!(
            chunk_lines(&lines, 13),
            ["line 0\nline 1", "line 2\nline 3", "line 4"]
        );
    }
}
