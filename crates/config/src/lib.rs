//! Vigil's configuration: one TOML file, documented defaults, and a validation pass that
//! reports every problem at once, each with its dotted key path, before any actor starts.
//!
//! ```
//! let cfg = vigil_config::VigilConfig::embedded_default();
//! assert!(cfg.validate().is_ok());
//! ```

mod alerts;
mod bounds;
mod channels;
mod fleet;
mod model;
mod parse;
mod secrets;
mod validate;

pub use alerts::{
    AlertRuleConfig, AlertsConfig, CHANNEL_NAMES, ChannelsConfig, InhibitConfig, MaintenanceConfig,
    RoutingConfig,
};
pub use bounds::{BOUNDS, Bound, Num};
pub use channels::{
    DeliveryConfig, EmailConfig, PagerDutyConfig, SmtpTls, TwilioConfig, WebhookConfig,
    WebhookUrlConfig, default_backoff_base_ms, default_backoff_max_ms, default_connect_timeout_ms,
    default_delivery_attempts, default_pagerduty_events_url, default_pagerduty_source,
    default_queue_capacity, default_timeout_ms, default_twilio_base_url,
};
pub use fleet::FleetConfig;
pub use model::{
    AfterOutage, AnomalyConfig, CalendarChoiceError, CalendarConfig, CanaryConfig, CanaryUnwind,
    ChecklistConfig, Comparison, ControlConfig, DataConfig, DeadManConfig, DrawdownControlConfig,
    DriftConfig, ExecutionConfig, FeedConfig, FillModelConfig, FixConfig, FixPositions,
    FixTimeInForce, InstrumentConfig, LogConfig, MismatchPolicy, MonitorConfig, OpenOrdersPolicy,
    OrderTypeConfig, ReconcileConfig, RegimeConfig, RegimeFactors, ReleaseConfig, RiskConfig,
    RollbackConfig, RuleConfig, RuntimeConfig, Secret, SessionConfig, ShadowConfig, SignalConfig,
    Sizing, Speed, StoreConfig, SupervisionConfig, VenueKind, VigilConfig, default_rules,
    redact_url,
};
pub use model::{BUNDLED_PREFIX, DEFAULT_TOKEN_FILE_NAME};
pub use secrets::{SecretFileError, check_private_file, private_file_problem, read_secret_file};
pub use validate::{ConfigError, ConfigIssue};

/// The embedded paper-trading default (`config/vigil.toml`), as text.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/vigil.toml");
