//! `[fleet]`: this node's place in a fleet of vigil processes watched from one place over
//! NATS JetStream (docs/fleet.md).

use serde::{Deserialize, Serialize};

/// `[fleet]`: where this node publishes its log (every line, with its chain fields) and
/// keeps its heartbeat lease. Absent: the node is an island, as before.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// The NATS server: `nats://HOST:PORT`.
    pub url: String,
    /// This node's name in the fleet: letters, digits, `-` and `_` (it is part of every
    /// subject the node publishes to).
    pub node: String,
    /// The JetStream stream every node of the fleet publishes to.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The node's heartbeat lease, in seconds: renewed every third of it; the fleet
    /// monitor counts the node lost when it is not renewed for this long.
    #[serde(default = "default_lease_s")]
    pub lease_s: u64,
    /// A node's: the file holding the secret a fleet command to it must carry (`vigil fleet
    /// command`, over NATS request/reply). Absent: the node takes no fleet command.
    #[serde(default)]
    pub command_token_file: Option<std::path::PathBuf>,
    /// The commander's: a folder of `<node>.token` files, each node's secret (the content of
    /// that node's `command_token_file`).
    #[serde(default)]
    pub command_tokens_dir: Option<std::path::PathBuf>,
}

fn default_stream() -> String {
    "VIGIL_FLEET".into()
}

fn default_lease_s() -> u64 {
    15
}

/// A name NATS takes as one subject token and JetStream as a stream or key name.
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
