//! `[alerts.channels.*]`: how to reach people.
//!
//! Each channel is optional: a table that is absent means the channel is not configured, and
//! routing skips it. Webhook URLs, tokens and passwords are [`Secret`]s: never printed, and
//! redacted from every log line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Secret;
use crate::validate::ConfigIssue;

/// The notification channels, and how deliveries are retried.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelsConfig {
    /// Retries, backoff and the delivery queue, shared by every channel.
    pub delivery: DeliveryConfig,
    /// `email`: SMTP.
    pub email: Option<EmailConfig>,
    /// `slack`: a Slack incoming webhook.
    pub slack: Option<WebhookUrlConfig>,
    /// `teams`: a Microsoft Teams incoming webhook (Workflows), as an Adaptive Card.
    pub teams: Option<WebhookUrlConfig>,
    /// `sms` and `call`: text messages and phone calls through a Twilio-compatible API.
    pub twilio: Option<TwilioConfig>,
    /// `pagerduty`: PagerDuty Events API v2.
    pub pagerduty: Option<PagerDutyConfig>,
    /// `webhook`: a generic JSON webhook.
    pub webhook: Option<WebhookConfig>,
}

/// `[alerts.channels.delivery]`: how a failed delivery is retried before it escalates to the
/// next channel of its route.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryConfig {
    /// Attempts per channel (the first try included) while the failure is transient
    /// (unreachable, HTTP 5xx or 429, SMTP 4xx). A permanent refusal is not retried.
    pub attempts: u32,
    /// Wait before the second attempt, in milliseconds; it doubles for each further attempt.
    pub backoff_base_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub backoff_max_ms: u64,
    /// Deliveries queued or in progress at once; a submission beyond it is refused (and the
    /// caller logs it) rather than blocking.
    pub queue_capacity: usize,
}

/// Default of [`DeliveryConfig::attempts`]: 3.
pub fn default_delivery_attempts() -> u32 {
    3
}

/// Default of [`DeliveryConfig::backoff_base_ms`]: 500 ms.
pub fn default_backoff_base_ms() -> u64 {
    500
}

/// Default of [`DeliveryConfig::backoff_max_ms`]: 30 s.
pub fn default_backoff_max_ms() -> u64 {
    30_000
}

/// Default of [`DeliveryConfig::queue_capacity`]: 1024.
pub fn default_queue_capacity() -> usize {
    1024
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            attempts: default_delivery_attempts(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            queue_capacity: default_queue_capacity(),
        }
    }
}

/// Default time limit to open a connection, in milliseconds: 10 s.
pub fn default_connect_timeout_ms() -> u64 {
    10_000
}

/// Default time limit of one request, in milliseconds: 10 s.
pub fn default_timeout_ms() -> u64 {
    10_000
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on the same host or network only). Default port 25.
    None,
    /// Plain connection upgraded with STARTTLS, which is required. Default port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS"). Default port 465.
    Tls,
}

impl SmtpTls {
    /// The usual port of this mode: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// `[alerts.channels.email]`: an SMTP server. Every message, a digest included, is one email
/// to all the recipients.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmailConfig {
    /// The SMTP server's host name or IP address.
    pub host: String,
    /// Its port; by default the usual port of `tls` (25, 587 or 465).
    #[serde(default)]
    pub port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login name, when the server requires authentication (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password (secret), with `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender, `alerts@example.com` or `Vigil <alerts@example.com>`.
    pub from: String,
    /// Recipients, at least one.
    pub to: Vec<String>,
    /// Time limit to connect, in milliseconds. The client has one limit for the connection
    /// and for each read and write after it: the larger of this and `timeout_ms` applies.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time limit of each SMTP read and write, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl EmailConfig {
    /// The port to connect to: `port`, or the usual port of `tls`.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

/// `[alerts.channels.slack]` and `[alerts.channels.teams]`: an incoming-webhook URL.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebhookUrlConfig {
    /// The webhook URL (secret: whoever has it can post).
    pub url: Secret,
    /// Time limit to connect, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time limit of the whole request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Default of [`TwilioConfig::base_url`].
pub fn default_twilio_base_url() -> String {
    "https://api.twilio.com".into()
}

fn default_true() -> bool {
    true
}

/// `[alerts.channels.twilio]`: SMS (channel `sms`) and voice calls (channel `call`) through
/// Twilio's REST API, or any service that speaks it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TwilioConfig {
    /// The API's base URL, without a trailing path.
    #[serde(default = "default_twilio_base_url")]
    pub base_url: String,
    /// Account SID (`AC…`); the API user name.
    pub account_sid: String,
    /// Auth token (secret); the API password.
    pub auth_token: Secret,
    /// The calling number, in E.164 form (`+15551230000`).
    pub from: String,
    /// The numbers to text and call, in E.164 form; each gets its own message and call.
    pub to: Vec<String>,
    /// Offer the `sms` channel.
    #[serde(default = "default_true")]
    pub sms: bool,
    /// Offer the `call` channel.
    #[serde(default = "default_true")]
    pub call: bool,
    /// Time limit to connect, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time limit of one request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Default of [`PagerDutyConfig::events_url`].
pub fn default_pagerduty_events_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

/// Default of [`PagerDutyConfig::source`].
pub fn default_pagerduty_source() -> String {
    "vigil".into()
}

/// `[alerts.channels.pagerduty]`: PagerDuty Events API v2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PagerDutyConfig {
    /// The integration's routing key (secret).
    pub routing_key: Secret,
    /// Where events are posted.
    #[serde(default = "default_pagerduty_events_url")]
    pub events_url: String,
    /// `payload.source`: the system the events are about (a host name is usual).
    #[serde(default = "default_pagerduty_source")]
    pub source: String,
    /// Time limit to connect, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time limit of the whole request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// `[alerts.channels.webhook]`: every message posted as JSON to a URL of yours.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// The URL (secret: it often carries a token).
    pub url: Secret,
    /// Extra headers sent as they are, e.g. `{ "X-Team" = "trading" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Extra headers whose values are secrets, e.g. `{ Authorization = "Bearer …" }`.
    #[serde(default)]
    pub secret_headers: BTreeMap<String, Secret>,
    /// Time limit to connect, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time limit of the whole request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl ChannelsConfig {
    /// Returns the value of every secret of the channels, for the log writer to redact.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |s: &Secret| {
            if !s.expose().is_empty() {
                out.push(s.expose().to_string());
            }
        };
        if let Some(password) = self.email.as_ref().and_then(|e| e.password.as_ref()) {
            push(password);
        }
        for w in [&self.slack, &self.teams].into_iter().flatten() {
            push(&w.url);
        }
        if let Some(t) = &self.twilio {
            push(&t.auth_token);
        }
        if let Some(p) = &self.pagerduty {
            push(&p.routing_key);
        }
        if let Some(w) = &self.webhook {
            push(&w.url);
            for value in w.secret_headers.values() {
                push(value);
            }
        }
        out
    }
}

const PREFIX: &str = "alerts.channels";

/// Adds every problem of the channels' config to `issues`, each with its dotted path.
pub(crate) fn check(cfg: &ChannelsConfig, issues: &mut Vec<ConfigIssue>) {
    let mut fail = |path: String, message: String| issues.push(ConfigIssue::new(&path, message));

    let d = &cfg.delivery;
    let key = format!("{PREFIX}.delivery");
    let mut within = |name: &str, v: crate::bounds::Num| {
        let path = format!("{key}.{name}");
        if let Some(issue) = crate::bounds::check(&path, &path, v) {
            fail(issue.path, issue.message);
        }
    };
    within("attempts", d.attempts.into());
    within("backoff_base_ms", d.backoff_base_ms.into());
    within("backoff_max_ms", d.backoff_max_ms.into());
    within("queue_capacity", d.queue_capacity.into());
    if d.backoff_max_ms < d.backoff_base_ms {
        fail(
            format!("{key}.backoff_max_ms"),
            format!(
                "must be at least {key}.backoff_base_ms ({}), got {}",
                d.backoff_base_ms, d.backoff_max_ms
            ),
        );
    }

    if let Some(e) = &cfg.email {
        let key = format!("{PREFIX}.email");
        if e.host.trim().is_empty() {
            fail(format!("{key}.host"), "must not be empty".into());
        } else if e.host.contains(char::is_whitespace) || e.host.contains('/') {
            fail(
                format!("{key}.host"),
                format!("expected a host name or IP address, got {:?}", e.host),
            );
        }
        if let Some(issue) = e
            .port
            .and_then(|p| crate::bounds::check(&format!("{key}.port"), &format!("{key}.port"), p))
        {
            fail(issue.path, issue.message);
        }
        match (&e.username, &e.password) {
            (Some(_), None) => fail(
                format!("{key}.password"),
                "must be set when username is".into(),
            ),
            (None, Some(_)) => fail(
                format!("{key}.username"),
                "must be set when password is".into(),
            ),
            (Some(u), Some(_)) if u.trim().is_empty() => {
                fail(format!("{key}.username"), "must not be empty".into());
            }
            _ => {}
        }
        if let Err(why) = check_address(&e.from) {
            fail(format!("{key}.from"), why);
        }
        if e.to.is_empty() {
            fail(
                format!("{key}.to"),
                "must list at least one recipient".into(),
            );
        }
        for (i, to) in e.to.iter().enumerate() {
            if let Err(why) = check_address(to) {
                fail(format!("{key}.to[{i}]"), why);
            }
        }
        check_timeouts(&key, e.connect_timeout_ms, e.timeout_ms, &mut fail);
    }

    for (name, w) in [("slack", &cfg.slack), ("teams", &cfg.teams)] {
        if let Some(w) = w {
            let key = format!("{PREFIX}.{name}");
            if let Err(why) = check_url(w.url.expose()) {
                fail(format!("{key}.url"), why);
            }
            check_timeouts(&key, w.connect_timeout_ms, w.timeout_ms, &mut fail);
        }
    }

    if let Some(t) = &cfg.twilio {
        let key = format!("{PREFIX}.twilio");
        if let Err(why) = check_url(&t.base_url) {
            fail(format!("{key}.base_url"), why);
        }
        if t.account_sid.is_empty() || !t.account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            fail(
                format!("{key}.account_sid"),
                format!(
                    "expected letters and digits only (AC…), got {:?}",
                    t.account_sid
                ),
            );
        }
        if t.auth_token.expose().trim().is_empty() {
            fail(format!("{key}.auth_token"), "must not be empty".into());
        }
        if let Err(why) = check_phone(&t.from) {
            fail(format!("{key}.from"), why);
        }
        if t.to.is_empty() {
            fail(format!("{key}.to"), "must list at least one number".into());
        }
        for (i, to) in t.to.iter().enumerate() {
            if let Err(why) = check_phone(to) {
                fail(format!("{key}.to[{i}]"), why);
            }
        }
        if !t.sms && !t.call {
            fail(
                format!("{key}.sms"),
                "sms and call are both false: remove [alerts.channels.twilio] instead".into(),
            );
        }
        check_timeouts(&key, t.connect_timeout_ms, t.timeout_ms, &mut fail);
    }

    if let Some(p) = &cfg.pagerduty {
        let key = format!("{PREFIX}.pagerduty");
        if p.routing_key.expose().trim().is_empty() {
            fail(format!("{key}.routing_key"), "must not be empty".into());
        }
        if let Err(why) = check_url(&p.events_url) {
            fail(format!("{key}.events_url"), why);
        }
        if p.source.trim().is_empty() {
            fail(format!("{key}.source"), "must not be empty".into());
        }
        check_timeouts(&key, p.connect_timeout_ms, p.timeout_ms, &mut fail);
    }

    if let Some(w) = &cfg.webhook {
        let key = format!("{PREFIX}.webhook");
        if let Err(why) = check_url(w.url.expose()) {
            fail(format!("{key}.url"), why);
        }
        for (name, value) in &w.headers {
            if let Err(why) = check_header(name, value) {
                fail(format!("{key}.headers.{name}"), why);
            }
        }
        for (name, value) in &w.secret_headers {
            if let Err(why) = check_header(name, value.expose()) {
                fail(format!("{key}.secret_headers.{name}"), why);
            }
            if w.headers.keys().any(|n| n.eq_ignore_ascii_case(name)) {
                fail(
                    format!("{key}.secret_headers.{name}"),
                    "is also in headers; set it in one of the two".into(),
                );
            }
        }
        check_timeouts(&key, w.connect_timeout_ms, w.timeout_ms, &mut fail);
    }
}

fn check_timeouts(
    key: &str,
    connect_ms: u64,
    total_ms: u64,
    fail: &mut impl FnMut(String, String),
) {
    for (name, v) in [("connect_timeout_ms", connect_ms), ("timeout_ms", total_ms)] {
        if let Some(issue) =
            crate::bounds::check(&format!("{PREFIX}.*.{name}"), &format!("{key}.{name}"), v)
        {
            fail(issue.path, issue.message);
        }
    }
}

/// An `http://` or `https://` URL with a host. The message never repeats the URL: it may be
/// a secret.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must start with http:// or https://".to_string())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host after the scheme".into());
    }
    if url.contains(char::is_whitespace) {
        return Err("must not contain spaces".into());
    }
    Ok(())
}

/// `user@domain` or `Name <user@domain>`.
fn check_address(addr: &str) -> Result<(), String> {
    let bare = match (addr.find('<'), addr.rfind('>')) {
        (Some(open), Some(close)) if open < close && close == addr.trim_end().len() - 1 => {
            &addr[open + 1..close]
        }
        (None, None) => addr.trim(),
        _ => {
            return Err(format!(
                "expected user@domain or Name <user@domain>, got {addr:?}"
            ));
        }
    };
    match bare.split_once('@') {
        Some((user, domain))
            if !user.is_empty()
                && !domain.is_empty()
                && !bare.contains(char::is_whitespace)
                && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "expected user@domain or Name <user@domain>, got {addr:?}"
        )),
    }
}

/// E.164: `+` then 8 to 15 digits.
fn check_phone(number: &str) -> Result<(), String> {
    let digits = number.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "expected an E.164 number such as +15551230000, got {number:?}"
        ))
    }
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    const SEPARATORS: &str = "()<>@,;:\\\"/[]?={} \t";
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_graphic() && !SEPARATORS.contains(c))
    {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err("the value must not contain line breaks".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
