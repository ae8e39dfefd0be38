//! `webhook`: every message posted as JSON to a URL of yours, in an envelope that says its
//! kind and carries the rendered subject and text beside the structured data.

use std::fmt;

use serde_json::{Value, json};
use vigil_config::WebhookConfig;

use crate::error::AlertError;
use crate::http::{Body, HttpClient, check_url, target};
use crate::model::{Channel, DeliveryError, Message};
use crate::template::render;

/// Posts JSON envelopes to a URL.
pub struct WebhookChannel {
    url: String,
    headers: Vec<(String, String)>,
    client: HttpClient,
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookChannel")
            .field("target", &target(&self.url))
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// Creates the channel from `[alerts.channels.webhook]`; no network I/O.
    ///
    /// # Errors
    /// Fails when the URL is not an http(s) URL.
    pub fn new(cfg: &WebhookConfig) -> Result<Self, AlertError> {
        let url = cfg.url.expose().to_string();
        check_url("webhook", "url", &url)?;
        let mut secrets = vec![url.clone()];
        let mut headers: Vec<(String, String)> = cfg
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &cfg.secret_headers {
            secrets.push(v.expose().to_string());
            headers.push((k.clone(), v.expose().to_string()));
        }
        Ok(Self {
            client: HttpClient::new("webhook", cfg.connect_timeout_ms, cfg.timeout_ms, secrets),
            url,
            headers,
        })
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        "webhook"
    }

    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.client
            .post(&self.url, &headers, Body::Json(&envelope(message)))
    }
}

/// The JSON posted for a message:
///
/// - `{"kind":"alert","subject","text","alert":{<Notification>}}`
/// - `{"kind":"digest","subject","text","digest":{"title","date","items":[<Notification>…]}}`
/// - `{"kind":"test","subject","text","test":{"channel","at"}}`
/// - `{"kind":"report","subject","text","report":{"date","headline","text","files","images":[{"name","alt","bytes"}…]}}`
///   (the pictures are named, not sent: they are in the files)
pub fn envelope(message: &Message) -> Value {
    let rendered = render(message);
    let kind = message.kind().as_str();
    let (key, data) = match message {
        Message::Alert(n) => ("alert", json!(n)),
        Message::Digest { title, date, items } => (
            "digest",
            json!({ "title": title, "date": date, "items": items }),
        ),
        Message::Test { channel, at } => ("test", json!({ "channel": channel, "at": at })),
        Message::Report(r) => (
            "report",
            json!({
                "date": r.date,
                "headline": r.headline,
                "text": r.text,
                "files": r.files,
                "images": r.images.iter().map(|i| json!({ "name": i.name, "alt": i.alt, "bytes": i.png.len() })).collect::<Vec<_>>(),
            }),
        ),
    };
    let mut out = json!({
        "kind": kind,
        "subject": rendered.subject,
        "text": rendered.text,
    });
    out[key] = data;
    out
}
