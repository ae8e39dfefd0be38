//! `[alerts.channels.*]`: how to reach people.

use serde::{Deserialize, Serialize};

/// The notification channels. Each is optional; routing skips one that is not configured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelsConfig {}
