//! The central monitor's view of the fleet, without NATS: what each node's lines and lease
//! say, and what the monitor must log about them. [`Watch::line`] takes a node's next line
//! from the stream, [`Watch::leases`] the leases read from the bucket; each returns the
//! log events the monitor writes (and routes to its alerts). The view is saved between
//! runs (serde), so a restarted monitor goes on checking each node's chain where it was.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use vigil_core::{Level, Timestamp};
use vigil_log::{ChainKey, Event, GENESIS_HASH, LogEvent, line_link};

/// The service the monitor's lines are logged as.
pub const SERVICE: &str = "fleet_watch";

/// A node's lease as the bucket holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The node.
    pub node: String,
    /// When the NATS server stored it.
    pub stored_at: Timestamp,
    /// Its length, in seconds.
    pub lease_s: u64,
    /// The node stopped and said so.
    pub stopped: bool,
    /// The newest line the stream had acknowledged to the node.
    pub seq: Option<u64>,
}

impl Lease {
    /// Seconds since the server stored it, by `now` (never negative).
    pub fn age_s(&self, now: Timestamp) -> f64 {
        ((now - self.stored_at).num_milliseconds() as f64 / 1000.0).max(0.0)
    }

    /// Stopped (it said so), up (renewed within its length) or lost, at `now`.
    pub fn state(&self, now: Timestamp) -> LeaseState {
        if self.stopped {
            LeaseState::Stopped
        } else if self.age_s(now) <= self.lease_s as f64 {
            LeaseState::Up
        } else {
            LeaseState::Lost
        }
    }
}

/// Where a node's lease stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// No lease read yet.
    #[default]
    Unknown,
    /// Renewed within its length.
    Up,
    /// The node stopped and said so.
    Stopped,
    /// It ran out.
    Lost,
}

impl LeaseState {
    /// As shown.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Unknown => "unknown",
            LeaseState::Up => "up",
            LeaseState::Stopped => "stopped",
            LeaseState::Lost => "lost",
        }
    }
}

/// One of a node's alerts that fires now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeAlert {
    /// Its rule.
    pub rule: String,
    /// Its labels beyond rule and service, as `key=value,…`.
    pub labels: String,
    /// Its severity on the node.
    pub severity: String,
    /// Its headline.
    pub headline: String,
}

/// What the monitor knows of one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// The newest line read: its `seq` and hash (the next must chain to it).
    pub seq: Option<u64>,
    pub hash: String,
    /// The hash of its chain's first line, when the monitor read it: the chain's identity.
    pub chain: Option<String>,
    /// Lines read, lines found missing, and chain breaks, since the monitor first saw it.
    pub lines: u64,
    pub missing: u64,
    pub broken: u64,
    /// The newest line's event and timestamp (the node's market time).
    pub last_event: Option<String>,
    pub last_at: Option<String>,
    /// When the stream stored the newest line, and how long after that the monitor read it.
    pub published_at: Option<Timestamp>,
    pub lag_s: Option<f64>,
    /// From its latest `health_snapshot` (and `trading_state_changed`, `session_stopped`).
    pub ready: Option<bool>,
    pub trading_state: Option<String>,
    /// Equity now, and at the start of its session: P&L is their difference.
    pub equity: Option<Decimal>,
    pub initial_cash: Option<Decimal>,
    /// Its session ended (`session_stopped` read).
    pub session_ended: bool,
    /// Figures of its lines the monitor could not read (an equity that is not a number, a
    /// level it does not know): shown as unknown, counted here.
    #[serde(default)]
    pub unreadable: u64,
    /// Its alerts firing now, by the node's alert id.
    pub alerts: BTreeMap<String, NodeAlert>,
    /// Its lease.
    pub lease: LeaseState,
    pub lease_seq: Option<u64>,
    pub lease_age_s: Option<f64>,
    pub lease_s: Option<u64>,
    /// Since when it has been lost.
    pub lost_since: Option<Timestamp>,
    /// Since when the lease has said more than the monitor read; whether that was logged.
    pub behind_since: Option<Timestamp>,
    pub stalled: bool,
}

impl NodeView {
    /// Equity less the session's starting cash.
    pub fn pnl(&self) -> Option<Decimal> {
        Some(self.equity? - self.initial_cash?)
    }
}

/// The fleet as the monitor sees it. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    /// Every node seen, by name.
    pub nodes: BTreeMap<String, NodeView>,
    /// When the monitor (re)gained NATS: a lease older than its length and not renewed since
    /// is not a lost node until a lease and the publisher's longest backoff have passed,
    /// for NATS may have been down for the nodes too (they renew once they reconnect).
    #[serde(skip)]
    pub resumed_at: Option<Timestamp>,
}

fn ev(at: Timestamp, event: Event, node: &str) -> LogEvent {
    LogEvent::new(at, SERVICE, event).with("node", node.to_string())
}

/// `ev` with `key` when there is a value.
fn seq(ev: LogEvent, key: &'static str, value: Option<u64>) -> LogEvent {
    match value {
        Some(v) => ev.with(key, v),
        None => ev,
    }
}

/// A decimal figure of a line: `None` when absent, counted in `unreadable` when present
/// and not a decimal.
fn decimal(v: &serde_json::Value, unreadable: &mut u64) -> Option<Decimal> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.to_string().parse::<Decimal>(),
        serde_json::Value::String(s) => s.parse::<Decimal>(),
        serde_json::Value::Null => return None,
        _ => {
            *unreadable += 1;
            return None;
        }
    };
    match parsed {
        Ok(d) => Some(d),
        Err(_) => {
            *unreadable += 1;
            None
        }
    }
}

impl Watch {
    /// Reads `node`'s next line from the stream (`published`: when the stream stored it;
    /// `now`: the monitor's clock), checks that it chains to the one before, and folds what
    /// it says into the node's view. `key` checks the HMAC of a keyed chain.
    pub fn line(
        &mut self,
        node: &str,
        line: &[u8],
        published: Timestamp,
        now: Timestamp,
        key: Option<&ChainKey>,
        out: &mut Vec<LogEvent>,
    ) {
        let view = self.nodes.entry(node.to_string()).or_default();
        let text = String::from_utf8_lossy(line);
        let Some(link) = line_link(&text, key) else {
            view.broken += 1;
            out.push(
                ev(now, Event::FleetChainBroken, node)
                    .with("seq", view.seq.map_or(0, |s| s + 1))
                    .with("why", "not a complete chained log line"),
            );
            return;
        };
        let starts_chain = link.prev_hash == GENESIS_HASH;
        match view.seq {
            // A line the monitor already read (redelivered after a restart): nothing new.
            Some(seq) if link.seq <= seq && !starts_chain => return,
            Some(_) if starts_chain && view.chain.as_deref() == Some(link.hash.as_str()) => return,
            Some(seq) if starts_chain => {
                view.broken += 1;
                out.push(
                    ev(now, Event::FleetChainBroken, node)
                        .with("seq", link.seq)
                        .with(
                            "why",
                            format!(
                                "a new chain began after seq {seq}: the node's log folder was \
                                 replaced, or another process publishes as {node}"
                            ),
                        ),
                );
            }
            Some(seq) if link.seq > seq + 1 => {
                view.missing += link.seq - seq - 1;
                out.push(
                    ev(now, Event::FleetLinesMissing, node)
                        .with("from", seq + 1)
                        .with("to", link.seq - 1)
                        .with("count", link.seq - seq - 1),
                );
            }
            Some(seq) if link.prev_hash != view.hash => {
                view.broken += 1;
                out.push(
                    ev(now, Event::FleetChainBroken, node)
                        .with("seq", link.seq)
                        .with("why", format!("it does not chain to seq {seq}")),
                );
            }
            Some(_) => {}
            None => out.push(
                ev(now, Event::FleetNodeJoined, node)
                    .with("seq", link.seq)
                    .with("midway", !starts_chain),
            ),
        }
        if link.intact == Some(false) {
            view.broken += 1;
            out.push(
                ev(now, Event::FleetChainBroken, node)
                    .with("seq", link.seq)
                    .with(
                        "why",
                        "its content does not match its hash: the line was changed",
                    ),
            );
        }
        if starts_chain {
            view.chain = Some(link.hash.clone());
        }
        view.seq = Some(link.seq);
        view.hash = link.hash;
        view.lines += 1;
        view.published_at = Some(published);
        view.lag_s =
            Some(((now - published).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0));
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            return; // chained, so written by a writer: its JSON is whole
        };
        let event = v["event"].as_str().unwrap_or_default();
        let data = &v["data"];
        view.last_event = Some(event.to_string());
        view.last_at = v["timestamp"].as_str().map(str::to_string);
        match event {
            "session_started" => {
                view.initial_cash = decimal(&data["initial_cash"], &mut view.unreadable);
                view.equity = view.initial_cash;
                view.session_ended = false;
            }
            "health_snapshot" => {
                view.ready = data["ready"].as_bool();
                view.trading_state = data["trading_state"].as_str().map(str::to_string);
                if let Some(e) = decimal(&data["equity"], &mut view.unreadable) {
                    view.equity = Some(e);
                }
            }
            "trading_state_changed" => {
                view.trading_state = data["to"].as_str().map(str::to_string);
            }
            "session_stopped" => {
                view.ready = Some(false);
                view.session_ended = true;
                if let Some(state) = data["trading_state"].as_str() {
                    view.trading_state = Some(state.to_string());
                }
                if let (Some(cash), Some(pnl)) = (
                    view.initial_cash,
                    decimal(&data["pnl"], &mut view.unreadable),
                ) {
                    view.equity = Some(cash + pnl);
                }
            }
            "alert_firing" => {
                let id = data["id"].as_str().unwrap_or_default().to_string();
                let alert = NodeAlert {
                    rule: data["rule"].as_str().unwrap_or_default().to_string(),
                    labels: node_labels(data["labels"].as_str().unwrap_or_default()),
                    severity: data["severity"].as_str().unwrap_or_default().to_string(),
                    headline: data["headline"].as_str().unwrap_or_default().to_string(),
                };
                // A level it does not know: told at WARN, and counted.
                let level = match v["level"].as_str().map(str::parse::<Level>) {
                    Some(Ok(level)) => level,
                    _ => {
                        view.unreadable += 1;
                        Level::Warn
                    }
                };
                view.alerts.insert(id, alert.clone());
                let nodes = self.firing_on(&alert);
                out.push(fleet_alert(now, node, &alert, "firing", &nodes).level(level));
            }
            "alert_resolved" => {
                let id = data["id"].as_str().unwrap_or_default();
                if let Some(alert) = view.alerts.remove(id) {
                    let nodes = self.firing_on(&alert);
                    if nodes.is_empty() {
                        out.push(fleet_alert(now, node, &alert, "resolved", &nodes));
                    }
                }
            }
            _ => {}
        }
    }

    /// The nodes on which an alert of this rule and these labels fires now.
    fn firing_on(&self, alert: &NodeAlert) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|(_, v)| {
                v.alerts
                    .values()
                    .any(|a| a.rule == alert.rule && a.labels == alert.labels)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Reads the leases at `now` (the monitor's clock): a node whose lease ran out is lost,
    /// one that renews again is back, one that said it stopped has stopped; a node whose
    /// lease says the stream holds lines the monitor has not read, for longer than the
    /// lease, is stalled.
    pub fn leases(&mut self, now: Timestamp, leases: &[Lease], out: &mut Vec<LogEvent>) {
        for lease in leases {
            let view = self.nodes.entry(lease.node.clone()).or_default();
            let age = lease.age_s(now);
            let state = lease.state(now);
            // Not renewed since the monitor regained NATS, and the node has not had the time.
            let settling = self.resumed_at.is_some_and(|at| {
                lease.stored_at < at
                    && (now - at).num_milliseconds() as f64 / 1000.0
                        <= (lease.lease_s + crate::publisher::MAX_BACKOFF_S) as f64
            });
            if state == LeaseState::Lost && settling {
                continue;
            }
            let node = lease.node.as_str();
            match (view.lease, state) {
                (before, LeaseState::Lost) if before != LeaseState::Lost => {
                    view.lost_since = Some(now);
                    let lost = ev(now, Event::FleetNodeLost, node)
                        .with("lease_age_s", (age * 10.0).round() / 10.0)
                        .with("lease_s", lease.lease_s)
                        .with("last_event", view.last_event.clone().unwrap_or_default());
                    out.push(seq(lost, "last_seq", view.seq));
                }
                (LeaseState::Lost, LeaseState::Up) => {
                    let lost_s = view
                        .lost_since
                        .map_or(0, |since| (now - since).num_seconds().max(0));
                    view.lost_since = None;
                    out.push(ev(now, Event::FleetNodeBack, node).with("lost_s", lost_s));
                }
                (before, LeaseState::Stopped) if before != LeaseState::Stopped => {
                    view.lost_since = None;
                    out.push(seq(
                        ev(now, Event::FleetNodeStopped, node),
                        "seq",
                        lease.seq,
                    ));
                }
                _ => {}
            }
            view.lease = state;
            view.lease_seq = lease.seq;
            view.lease_age_s = Some((age * 10.0).round() / 10.0);
            view.lease_s = Some(lease.lease_s);
            let behind = lease.seq.is_some_and(|l| view.seq.is_none_or(|s| s < l));
            if behind && state == LeaseState::Up {
                let since = *view.behind_since.get_or_insert(now);
                let behind_s = (now - since).num_seconds();
                if !view.stalled && behind_s > lease.lease_s as i64 {
                    view.stalled = true;
                    let stalled = ev(now, Event::FleetStreamStalled, node)
                        .with("lease_seq", lease.seq.unwrap_or(0))
                        .with("behind_s", behind_s);
                    out.push(seq(stalled, "seen_seq", view.seq));
                }
            } else if !behind {
                view.behind_since = None;
                if view.stalled {
                    view.stalled = false;
                    out.push(seq(
                        ev(now, Event::FleetStreamResumed, node),
                        "seq",
                        view.seq,
                    ));
                }
            }
        }
    }
}

/// A node's alert labels as the fleet keys them: without `rule` (the alert's own) and with
/// the node's `service` kept as `source` (the monitor logs as itself).
fn node_labels(written: &str) -> String {
    written
        .split(',')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("rule="))
        .map(|kv| match kv.strip_prefix("service=") {
            Some(s) => format!("source={s}"),
            None => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn fleet_alert(
    now: Timestamp,
    node: &str,
    alert: &NodeAlert,
    status: &str,
    nodes: &BTreeSet<String>,
) -> LogEvent {
    ev(now, Event::FleetNodeAlert, node)
        .with("rule", alert.rule.clone())
        .with("labels", alert.labels.clone())
        .with("status", status.to_string())
        .with("nodes", nodes.iter().cloned().collect::<Vec<_>>().join(","))
        .with("headline", alert.headline.clone())
}

#[cfg(test)]
mod tests;
