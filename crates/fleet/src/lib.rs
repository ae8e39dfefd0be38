//! A node's place in a fleet of vigil processes over NATS JetStream (docs/fleet.md).
//!
//! - **The node publishes its log**: every line of the hash-chained log, as written, to
//!   `vigil.fleet.<node>.<kind>` in one stream (`[fleet] stream`), `<kind>` being `alert`,
//!   `order`, `fill`, `health` or `log` by the line's event. Each message's id
//!   (`Nats-Msg-Id`) is the line's node, sequence number and hash, so a line sent twice
//!   (after a crash, or a lost acknowledgement) is stored once. The [`Publisher`] reads the
//!   log from disk after the writer: the log *is* the buffer while NATS is down (bounded by
//!   its retention), and a cursor file beside it records what the stream has acknowledged.
//!   Trading never waits for NATS; an outage is logged once (`fleet_publish_failed`,
//!   alerted) and the node catches up when NATS is back (`fleet_publish_recovered`).
//! - **Its heartbeat lease** is a key of the key-value bucket [`LEASE_BUCKET`], renewed
//!   every third of `[fleet] lease_s`.
//! - **The central monitor** ([`monitor::run`] over the pure [`watch::Watch`]) reads every
//!   node's lines with a durable consumer, checks each node's chain and sequence, watches
//!   the leases, and says what it finds as log lines its caller routes to alerts:
//!   `vigil fleet watch`.
//! - **A rolling release** ([`rollout::run`]): a model's release started on one node at a
//!   time, the next only once the last one's canary completed and it is healthy:
//!   `vigil fleet release`.
//! - **The fleet's status** ([`status::read`]) reads every node's lease, its newest line and
//!   the central monitor's view of it: `vigil fleet status`.

pub mod commands;
pub mod monitor;
mod nats;
pub mod publisher;
pub mod rollout;
pub mod status;
mod tail;
pub mod watch;

pub use publisher::Publisher;
pub use status::NodeStatus;

/// The subjects every node publishes under: `vigil.fleet.<node>.<kind>`.
pub const SUBJECT_PREFIX: &str = "vigil.fleet";

/// The key-value bucket of the nodes' heartbeat leases (one key per node).
pub const LEASE_BUCKET: &str = "vigil_fleet_leases";

/// The kinds of line, each a subject of its own under the node's.
pub const KINDS: [&str; 5] = ["log", "alert", "order", "fill", "health"];

/// The subject a node's line of event `event` goes to.
pub fn subject(node: &str, event: &str) -> String {
    kind_subject(node, kind_of(event))
}

/// The subject of a node's lines of one kind (one of [`KINDS`]).
pub fn kind_subject(node: &str, kind: &str) -> String {
    format!("{SUBJECT_PREFIX}.{node}.{kind}")
}

/// The node a fleet subject (`vigil.fleet.<node>.<kind>`) belongs to.
pub fn node_of(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(SUBJECT_PREFIX)?
        .strip_prefix('.')?
        .split('.')
        .next()
}

/// What a line is about, for its subject: a consumer may take only a node's alerts or
/// fills; the stream keeps every kind in the order written.
pub fn kind_of(event: &str) -> &'static str {
    if event.starts_with("alert_") {
        "alert"
    } else if event.starts_with("order_") {
        "order"
    } else if event == "fill_received" {
        "fill"
    } else if matches!(
        event,
        "health_snapshot" | "threshold_breached" | "threshold_recovered" | "heartbeat_missed"
    ) {
        "health"
    } else {
        "log"
    }
}

/// A line's message id: the same line always has the same id, two lines never do.
pub fn message_id(node: &str, seq: u64, hash: &str) -> String {
    let short = hash.get(..16).unwrap_or(hash);
    format!("{node}:{seq}:{short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_their_node_and_kind_with_an_id_of_their_own() {
        assert_eq!(
            subject("host-a", "order_submitted"),
            "vigil.fleet.host-a.order"
        );
        assert_eq!(
            subject("host-a", "fill_received"),
            "vigil.fleet.host-a.fill"
        );
        assert_eq!(
            subject("host-a", "alert_firing"),
            "vigil.fleet.host-a.alert"
        );
        assert_eq!(
            subject("host-a", "threshold_breached"),
            "vigil.fleet.host-a.health"
        );
        assert_eq!(
            subject("host-a", "session_started"),
            "vigil.fleet.host-a.log"
        );
        assert_eq!(
            message_id("n", 42, "0123456789abcdef0123"),
            "n:42:0123456789abcdef"
        );
        assert_eq!(message_id("n", 1, "ab"), "n:1:ab");
        assert_eq!(node_of("vigil.fleet.host-a.fill"), Some("host-a"));
        assert_eq!(node_of("vigil.fleetx.a.fill"), None);
    }
}
