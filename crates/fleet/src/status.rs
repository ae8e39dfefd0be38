//! The fleet's status read back from NATS: every node's lease, its newest line, and the
//! central monitor's view of it when one runs.

use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt as _;
use serde::Serialize;

use crate::{LEASE_BUCKET, SUBJECT_PREFIX, nats};

/// One node as the fleet sees it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Its name.
    pub node: String,
    /// `up` (lease fresh), `stopped` (it said so when it stopped) or `lost` (its lease ran
    /// out: the process, its host or its link to NATS is gone).
    pub state: &'static str,
    /// Seconds since its lease was renewed.
    pub lease_age_s: f64,
    /// Its lease, in seconds.
    pub lease_s: u64,
    /// The newest line of its log the stream holds: its `seq`, `event` and `timestamp`.
    pub last_seq: Option<u64>,
    pub last_event: Option<String>,
    pub last_at: Option<String>,
    /// Lines of its log in the stream.
    pub lines: u64,
    /// What the central monitor (`vigil fleet watch`) made of its lines: readiness, trading
    /// state, P&L, alerts, the chain checked, lag. `None` when no monitor has read it.
    pub view: Option<crate::watch::NodeView>,
}

/// Reads every node's lease from the bucket and its newest line from stream `stream` on
/// the server at `url`, by node name.
///
/// # Errors
/// NATS cannot be reached, or the stream or the bucket cannot be read (the message says
/// which).
pub async fn read(
    url: &str,
    stream: &str,
    now: vigil_core::Timestamp,
) -> Result<Vec<NodeStatus>, String> {
    let client = async_nats::ConnectOptions::new()
        .name("vigil fleet status")
        .connection_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let js = nats::jetstream(client, Duration::from_secs(5));
    let kv = js.get_key_value(LEASE_BUCKET).await.map_err(|e| {
        format!("the lease bucket {LEASE_BUCKET} (no node has published yet?): {e}")
    })?;
    let leases = crate::monitor::read_leases(&kv).await?;
    // The central monitor's view, when one runs (`vigil fleet watch`).
    let views = match js.get_key_value(crate::monitor::VIEW_BUCKET).await {
        Ok(views) => Some(views),
        Err(e) if e.kind() == async_nats::jetstream::context::KeyValueErrorKind::GetBucket => None,
        Err(e) => return Err(format!("the bucket {}: {e}", crate::monitor::VIEW_BUCKET)),
    };
    let s = js
        .get_stream(stream)
        .await
        .map_err(|e| format!("the stream {stream}: {e}"))?;
    let counts = s
        .info_with_subjects(format!("{SUBJECT_PREFIX}.>"))
        .await
        .map_err(|e| format!("the stream {stream}'s subjects: {e}"))?
        .collect::<Vec<_>>()
        .await;
    let mut per_node = std::collections::BTreeMap::<String, u64>::new();
    for c in counts {
        let (subject, n) = c.map_err(|e| format!("the stream {stream}'s subjects: {e}"))?;
        if let Some(node) = crate::node_of(&subject) {
            *per_node.entry(node.to_string()).or_default() += n as u64;
        }
    }
    let mut out = Vec::new();
    for lease in leases {
        let (age, state) = (lease.age_s(now), lease.state(now).as_str());
        let node = lease.node;
        let last = newest_line(&s, &node).await?;
        let view = match &views {
            Some(v) => match v.get(&node).await {
                Ok(Some(bytes)) => Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| format!("the fleet monitor's view of {node}: {e}"))?,
                ),
                Ok(None) => None,
                Err(e) => return Err(format!("the fleet monitor's view of {node}: {e}")),
            },
            None => None,
        };
        out.push(NodeStatus {
            lines: per_node.get(&node).copied().unwrap_or(0),
            node,
            state,
            lease_age_s: (age * 10.0).round() / 10.0,
            lease_s: lease.lease_s,
            last_seq: last.as_ref().and_then(|v| v["seq"].as_u64()),
            last_event: last
                .as_ref()
                .and_then(|v| v["event"].as_str().map(str::to_string)),
            last_at: last
                .as_ref()
                .and_then(|v| v["timestamp"].as_str().map(str::to_string)),
            view,
        });
    }
    Ok(out)
}

/// The newest line of `node` the stream holds, over its subjects (one per kind).
async fn newest_line(
    s: &jetstream::stream::Stream,
    node: &str,
) -> Result<Option<serde_json::Value>, String> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let mut newest: Option<(u64, serde_json::Value)> = None;
    for kind in crate::KINDS {
        let subject = crate::kind_subject(node, kind);
        match s.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => {
                if newest.as_ref().is_none_or(|(seq, _)| m.sequence > *seq) {
                    let line = serde_json::from_slice(&m.payload)
                        .map_err(|e| format!("{subject}'s newest line is not JSON: {e}"))?;
                    newest = Some((m.sequence, line));
                }
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(format!("{subject}'s newest line: {e}")),
        }
    }
    Ok(newest.map(|(_, line)| line))
}
