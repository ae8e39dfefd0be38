//! `[alerts]`: routing by severity, suppression, and the channels.

use serde::{Deserialize, Serialize};

pub use crate::channels::ChannelsConfig;

/// Alerting: where each severity goes, what is suppressed, and how to reach people.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// The channels; a channel that is not configured is not used.
    pub channels: ChannelsConfig,
}
