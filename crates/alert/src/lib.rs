//! Alerts: the alert model, routing by severity, suppression, and the channels that carry a
//! notification to a person (email, Slack, Microsoft Teams, SMS and phone through a
//! Twilio-compatible API, PagerDuty Events v2, a generic JSON webhook).

mod engine;
mod model;

pub use engine::{
    Alert, AlertEngine, BUILT_IN_RULES, Effect, EngineError, EngineState, NoticeMark, Phase, Raise,
    Silence, Suppression, exchange_date, fingerprint,
};
pub use model::{AlertStatus, Channel, DeliveryError, Message, Notification, Severity};
