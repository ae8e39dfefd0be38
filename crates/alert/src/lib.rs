//! Alerts: the alert model, routing by severity, suppression, and the channels that carry a
//! notification to a person (email, Slack, Microsoft Teams, SMS and phone through a
//! Twilio-compatible API, PagerDuty Events v2, a generic JSON webhook).
//!
//! - [`render`]: the plain-text notice every channel builds on (`[CRITICAL] Trading System
//!   Alert`, time in New York, details, actions taken, what to do, runbook).
//! - [`Channels`]: the configured channels by name, built from `[alerts.channels.*]` with
//!   [`build_channels`], without any network I/O. Names: `email`, `slack`, `teams`, `sms`,
//!   `call`, `pagerduty`, `webhook` ([`CHANNEL_NAMES`]).
//!
//! `vigil alerts test CHANNEL` calls [`Channel::deliver`] with a [`Message::Test`] directly.

mod email;
mod error;
mod http;
mod model;
mod pagerduty;
mod registry;
mod slack;
mod teams;
mod template;
mod twilio;
mod webhook;

pub use email::EmailChannel;
pub use error::AlertError;
pub use model::{
    AlertStatus, Channel, DeliveryError, Message, MessageKind, Notification, Severity,
};
pub use pagerduty::{PagerDutyChannel, pagerduty_severity};
pub use registry::{CHANNEL_NAMES, Channels, build_channels};
pub use slack::SlackChannel;
pub use teams::TeamsChannel;
pub use template::{
    Rendered, SMS_MAX_CHARS, alert_subject, format_et, render, sms_text, spoken_text,
};
pub use twilio::{TwilioChannel, TwilioMode, twiml};
pub use webhook::WebhookChannel;

/// The exact JSON each HTTP channel posts, for tests and for people writing receivers.
pub mod payloads {
    pub use crate::pagerduty::event as pagerduty;
    pub use crate::slack::payload as slack;
    pub use crate::teams::payload as teams;
    pub use crate::webhook::envelope as webhook;
}
