//! Alerts: the alert model, routing by severity, suppression, and the channels that carry a
//! notification to a person (email, Slack, Microsoft Teams, SMS and phone through a
//! Twilio-compatible API, PagerDuty Events v2, a generic JSON webhook).
//!
//! - [`render`]: the plain-text notice every channel builds on (`[CRITICAL] Trading System
//!   Alert`, time in New York, details, actions taken, what to do, runbook).
//! - [`Channels`]: the configured channels by name, built from `[alerts.channels.*]` with
//!   [`build_channels`], without any network I/O. Names: `email`, `slack`, `teams`, `sms`,
//!   `call`, `pagerduty`, `webhook` ([`CHANNEL_NAMES`]).
//! - [`Dispatcher`]: delivers off the caller's thread. [`Dispatcher::submit`] never blocks;
//!   each channel has its own thread that retries transient failures with exponential
//!   backoff and, when a channel fails for good, escalates to the next channel of the
//!   delivery's route. Every attempt's [`DeliveryOutcome`] goes to a sink you supply.
//!
//! A route is a list of channel names in escalation order. Routing decides which routes a
//! notice takes, and submits one [`Delivery`] per route: "High → SMS (else email), call,
//! Slack" is three deliveries, routes `["sms", "email"]`, `["call"]` and `["slack"]`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vigil_alert::{Channels, Delivery, DispatchConfig, Dispatcher, Message, NextStep};
//!
//! # fn notice() -> vigil_alert::Notification { unimplemented!() }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = vigil_config::VigilConfig::embedded_default();
//! let channels = Channels::from_config(&cfg.alerts.channels)?;
//! let dispatcher = Dispatcher::start(
//!     channels,
//!     DispatchConfig::from(&cfg.alerts.channels.delivery),
//!     |outcome| match (&outcome.result, &outcome.next) {
//!         (Err(e), NextStep::GaveUp) => eprintln!("alert not delivered by any channel: {e}"),
//!         (Err(e), _) => eprintln!("{}: attempt {} failed: {e}", outcome.channel, outcome.attempt),
//!         (Ok(()), _) => {}
//!     },
//! )?;
//! let message = Arc::new(Message::Alert(Box::new(notice())));
//! for route in [&["sms", "email"][..], &["call"], &["slack"]] {
//!     if let Err(e) = dispatcher.submit(Delivery::new(Arc::clone(&message), route.iter().copied())) {
//!         eprintln!("alert not queued: {e}");
//!     }
//! }
//! dispatcher.shutdown(Duration::from_secs(60))?;
//! # Ok(())
//! # }
//! ```
//!
//! Which logged event becomes which alert is one table, [`routing::ROUTES`], beside the
//! built-in rules ([`BUILT_IN_RULES`]).
//!
//! [`AlertCommand`]: an operator's `vigil alerts ack|silence|unsilence`, as the command
//! records it and the Monitor applies it.
//!
//! `vigil alerts test CHANNEL` calls [`Channel::deliver`] with a [`Message::Test`] directly.

mod dispatch;
mod email;
mod engine;
mod error;
mod http;
mod model;
mod pagerduty;
mod registry;
mod request;
pub mod routing;
mod slack;
mod teams;
mod template;
mod twilio;
mod webhook;

pub use dispatch::{Delivery, DeliveryOutcome, DispatchConfig, Dispatcher, NextStep};
pub use email::EmailChannel;
pub use engine::{
    Alert, AlertEngine, BUILT_IN_RULES, Effect, EngineError, EngineState, NoticeMark, Phase, Raise,
    Silence, Suppression, exchange_date, fingerprint, saved_view,
};
pub use error::AlertError;
pub use model::{
    AlertStatus, Channel, DeliveryError, Image, Message, MessageKind, Notification, Report,
    Severity,
};
pub use pagerduty::{PagerDutyChannel, pagerduty_severity};
pub use registry::{CHANNEL_NAMES, Channels, build_channels};
pub use request::{AlertCommand, SilenceRequest};
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
