//! Alerts: the alert model, routing by severity, suppression, and the channels that carry a
//! notification to a person (email, Slack, Microsoft Teams, SMS and phone through a
//! Twilio-compatible API, PagerDuty Events v2, a generic JSON webhook).
//!
//! - [`render`]: the plain-text notice every channel builds on (`[CRITICAL] Trading System
//!   Alert`, time in New York, details, actions taken, what to do, runbook).

mod model;
mod template;

pub use model::{
    AlertStatus, Channel, DeliveryError, Message, MessageKind, Notification, Severity,
};
pub use template::{
    Rendered, SMS_MAX_CHARS, alert_subject, format_et, render, sms_text, spoken_text,
};
