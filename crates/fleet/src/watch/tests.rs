use sha2::{Digest, Sha256};
use vigil_core::Timestamp;
use vigil_log::{Event, GENESIS_HASH, LogEvent};

use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A node's log as its writer chains it.
struct Node {
    seq: u64,
    prev: String,
}

impl Node {
    fn new() -> Self {
        Self {
            seq: 0,
            prev: GENESIS_HASH.to_string(),
        }
    }

    /// The next line: `level`, `event` and `data` (a JSON object's inside).
    fn line(&mut self, level: &str, event: &str, data: &str) -> Vec<u8> {
        let body = format!(
            "{{\"timestamp\":\"2024-01-16T15:00:00.000Z\",\"level\":\"{level}\",\"service\":\"x\",\
             \"trace_id\":null,\"event\":\"{event}\",\"data\":{{{data}}},\"seq\":{},\"prev_hash\":\"{}\"",
            self.seq, self.prev
        );
        let hash = hex(&Sha256::digest(body.as_bytes()));
        self.seq += 1;
        self.prev = hash.clone();
        format!("{body},\"hash\":\"{hash}\"}}\n").into_bytes()
    }

    fn info(&mut self, event: &str) -> Vec<u8> {
        self.line("INFO", event, "")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn events(out: &[LogEvent]) -> Vec<Event> {
    out.iter().map(|e| e.event).collect()
}

const AT: &str = "2030-01-01T00:00:00Z";

#[test]
fn a_nodes_chain_is_followed_and_a_gap_a_break_and_an_edit_are_each_found() {
    let (mut w, mut a, mut out) = (Watch::default(), Node::new(), Vec::new());
    let now = t(AT);
    w.line("a", &a.info("session_started"), now, now, None, &mut out);
    assert_eq!(events(&out), [Event::FleetNodeJoined]);
    assert_eq!(out[0].get("midway"), Some(&vigil_log::Value::Bool(false)));
    out.clear();
    for _ in 0..3 {
        w.line("a", &a.info("bar"), now, now, None, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    assert_eq!((w.nodes["a"].seq, w.nodes["a"].lines), (Some(3), 4));

    // Redelivered after a restart of the monitor (the chain's first line among them): read
    // once.
    let mut again = Node::new();
    w.line(
        "a",
        &again.info("session_started"),
        now,
        now,
        None,
        &mut out,
    );
    w.line("a", &again.info("bar"), now, now, None, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(w.nodes["a"].lines, 4);
    // Another chain from seq 0 under the same name: a replaced log, or a second process.
    w.line("a", &Node::new().info("other"), now, now, None, &mut out);
    assert_eq!(events(&out), [Event::FleetChainBroken]);
    out.clear();

    // Two lines never reach the stream.
    let mut b = Node::new();
    w.line("b", &b.info("session_started"), now, now, None, &mut out);
    b.info("lost 1");
    b.info("lost 2");
    out.clear();
    w.line("b", &b.info("bar"), now, now, None, &mut out);
    assert_eq!(events(&out), [Event::FleetLinesMissing]);
    assert_eq!(out[0].get("count"), Some(&vigil_log::Value::U64(2)));
    out.clear();

    // A line of another chain where b's next belongs.
    let mut other = Node::new();
    other.info("x");
    other.info("y");
    other.info("z");
    other.info("w");
    w.line("b", &other.info("forged"), now, now, None, &mut out);
    assert_eq!(events(&out), [Event::FleetChainBroken]);
    out.clear();

    // An edited line: its hash no longer matches.
    let mut c = Node::new();
    w.line("c", &c.info("session_started"), now, now, None, &mut out);
    out.clear();
    let edited = String::from_utf8(c.info("bar"))
        .expect("utf8")
        .replacen("\"INFO\"", "\"WARN\"", 1);
    w.line("c", edited.as_bytes(), now, now, None, &mut out);
    assert_eq!(events(&out), [Event::FleetChainBroken]);
    assert!(
        matches!(out[0].get("why"), Some(vigil_log::Value::Str(s)) if s.contains("changed")),
        "{out:?}"
    );
}

#[test]
fn a_monitor_that_joins_late_checks_from_the_first_line_it_reads() {
    let (mut w, mut a, mut out) = (Watch::default(), Node::new(), Vec::new());
    a.info("gone from the stream");
    w.line("a", &a.info("bar"), t(AT), t(AT), None, &mut out);
    assert_eq!(events(&out), [Event::FleetNodeJoined]);
    assert_eq!(out[0].get("midway"), Some(&vigil_log::Value::Bool(true)));
    out.clear();
    w.line("a", &a.info("bar"), t(AT), t(AT), None, &mut out);
    assert!(out.is_empty());
}

#[test]
fn the_view_holds_readiness_trading_state_pnl_and_lag() {
    let (mut w, mut a, mut out) = (Watch::default(), Node::new(), Vec::new());
    w.line(
        "a",
        &a.line("INFO", "session_started", "\"initial_cash\":100000"),
        t("2030-01-01T00:00:00Z"),
        t("2030-01-01T00:00:00.250Z"),
        None,
        &mut out,
    );
    w.line(
        "a",
        &a.line(
            "INFO",
            "health_snapshot",
            "\"ready\":true,\"trading_state\":\"active\",\"equity\":101234.5",
        ),
        t(AT),
        t(AT),
        None,
        &mut out,
    );
    let v = &w.nodes["a"];
    assert_eq!(v.ready, Some(true));
    assert_eq!(v.trading_state.as_deref(), Some("active"));
    assert_eq!(v.pnl(), Some("1234.5".parse().expect("decimal")));
    w.line(
        "a",
        &a.line("WARN", "trading_state_changed", "\"to\":\"halted\""),
        t(AT),
        t("2030-01-01T00:00:02Z"),
        None,
        &mut out,
    );
    assert_eq!(w.nodes["a"].trading_state.as_deref(), Some("halted"));
    assert_eq!(w.nodes["a"].lag_s, Some(2.0));
    w.line(
        "a",
        &a.line(
            "INFO",
            "health_snapshot",
            "\"ready\":true,\"equity\":\"n/a\"",
        ),
        t(AT),
        t("2030-01-01T00:00:02Z"),
        None,
        &mut out,
    );
    let v = &w.nodes["a"];
    assert_eq!(v.unreadable, 1, "an equity that is no number is counted");
    assert_eq!(
        v.pnl(),
        Some("1234.5".parse().expect("decimal")),
        "and the last one kept"
    );
    assert_eq!(v.trading_state, None, "the snapshot said none");
    assert_eq!(v.lag_s, Some(2.0));
    assert_eq!(v.last_event.as_deref(), Some("health_snapshot"));
}

#[test]
fn an_alert_firing_on_several_nodes_is_one_fleet_alert_until_the_last_resolves() {
    let (mut w, mut out) = (Watch::default(), Vec::new());
    let now = t(AT);
    let firing = "\"id\":\"a-1\",\"rule\":\"data_outage\",\"severity\":\"CRITICAL\",\
                  \"labels\":\"rule=data_outage,service=data_agent\",\"headline\":\"no data\"";
    let mut nodes = [Node::new(), Node::new()];
    for (name, n) in ["a", "b"].iter().zip(nodes.iter_mut()) {
        w.line(name, &n.info("session_started"), now, now, None, &mut out);
    }
    out.clear();
    for (name, n) in ["a", "b"].iter().zip(nodes.iter_mut()) {
        w.line(
            name,
            &n.line("CRITICAL", "alert_firing", firing),
            now,
            now,
            None,
            &mut out,
        );
    }
    assert_eq!(events(&out), [Event::FleetNodeAlert, Event::FleetNodeAlert]);
    let route = |e: &LogEvent| vigil_alert::routing::route(e);
    // The same rule and labels from both: the engine's fingerprint is the same.
    let (
        Some(vigil_alert::routing::AlertInput::Raise(r1)),
        Some(vigil_alert::routing::AlertInput::Raise(r2)),
    ) = (route(&out[0]), route(&out[1]))
    else {
        panic!("both raise: {out:?}");
    };
    assert_eq!(r1.all_labels(), r2.all_labels());
    assert_eq!(r1.level, Level::Critical);
    assert_eq!(r2.event, "no data (on a,b)");
    assert_eq!(r1.all_labels()["source"], "data_agent");
    out.clear();
    let resolved = "\"id\":\"a-1\",\"rule\":\"data_outage\",\"firing_s\":60";
    w.line(
        "a",
        &nodes[0].line("INFO", "alert_resolved", resolved),
        now,
        now,
        None,
        &mut out,
    );
    assert!(out.is_empty(), "b still fires it: {out:?}");
    w.line(
        "b",
        &nodes[1].line("INFO", "alert_resolved", resolved),
        now,
        now,
        None,
        &mut out,
    );
    assert_eq!(events(&out), [Event::FleetNodeAlert]);
    assert!(matches!(
        route(&out[0]),
        Some(vigil_alert::routing::AlertInput::Clear { .. })
    ));
}

fn lease(node: &str, stored: &str, seq: Option<u64>, stopped: bool) -> Lease {
    Lease {
        node: node.into(),
        stored_at: t(stored),
        lease_s: 15,
        stopped,
        seq,
    }
}

#[test]
fn a_lease_that_runs_out_is_a_lost_node_once_and_a_renewal_brings_it_back() {
    let (mut w, mut out) = (Watch::default(), Vec::new());
    let fresh = [lease("a", "2030-01-01T00:00:00Z", None, false)];
    w.leases(t("2030-01-01T00:00:10Z"), &fresh, &mut out);
    assert!(out.is_empty());
    assert_eq!(w.nodes["a"].lease, LeaseState::Up);
    w.leases(t("2030-01-01T00:00:16Z"), &fresh, &mut out);
    assert_eq!(events(&out), [Event::FleetNodeLost]);
    w.leases(t("2030-01-01T00:00:30Z"), &fresh, &mut out);
    assert_eq!(out.len(), 1, "said once");
    let renewed = [lease("a", "2030-01-01T00:00:40Z", None, false)];
    w.leases(t("2030-01-01T00:00:41Z"), &renewed, &mut out);
    assert_eq!(events(&out), [Event::FleetNodeLost, Event::FleetNodeBack]);
    assert_eq!(out[1].get("lost_s"), Some(&vigil_log::Value::I64(25)));
    let stopped = [lease("a", "2030-01-01T00:00:50Z", Some(9), true)];
    w.leases(t("2030-01-01T00:10:00Z"), &stopped, &mut out);
    assert_eq!(out.last().map(|e| e.event), Some(Event::FleetNodeStopped));
    assert_eq!(
        w.nodes["a"].lease,
        LeaseState::Stopped,
        "stopped is never lost"
    );
    // Routed: lost raises fleet_node_lost for the node; back and stopped clear it.
    let lost = vigil_alert::routing::route(&out[0]);
    assert!(
        matches!(&lost, Some(vigil_alert::routing::AlertInput::Raise(r)) if r.rule == "fleet_node_lost" && r.labels["node"] == "a" && r.level == Level::Critical),
        "{lost:?}"
    );
}

#[test]
fn a_stream_the_monitor_does_not_read_for_longer_than_the_lease_is_stalled() {
    let (mut w, mut a, mut out) = (Watch::default(), Node::new(), Vec::new());
    w.line(
        "a",
        &a.info("session_started"),
        t(AT),
        t(AT),
        None,
        &mut out,
    );
    out.clear();
    let ahead = |at: &str| [lease("a", at, Some(5), false)];
    w.leases(
        t("2030-01-01T00:00:01Z"),
        &ahead("2030-01-01T00:00:01Z"),
        &mut out,
    );
    w.leases(
        t("2030-01-01T00:00:15Z"),
        &ahead("2030-01-01T00:00:15Z"),
        &mut out,
    );
    assert!(out.is_empty(), "within the lease: {out:?}");
    w.leases(
        t("2030-01-01T00:00:17Z"),
        &ahead("2030-01-01T00:00:15Z"),
        &mut out,
    );
    assert_eq!(events(&out), [Event::FleetStreamStalled]);
    for _ in 0..5 {
        w.line("a", &a.info("bar"), t(AT), t(AT), None, &mut out);
    }
    w.leases(
        t("2030-01-01T00:00:18Z"),
        &ahead("2030-01-01T00:00:18Z"),
        &mut out,
    );
    assert_eq!(
        events(&out),
        [Event::FleetStreamStalled, Event::FleetStreamResumed]
    );
}

#[test]
fn the_view_survives_a_restart_of_the_monitor() {
    let (mut w, mut a, mut out) = (Watch::default(), Node::new(), Vec::new());
    w.line(
        "a",
        &a.info("session_started"),
        t(AT),
        t(AT),
        None,
        &mut out,
    );
    let saved = serde_json::to_string(&w).expect("saved");
    let mut back: Watch = serde_json::from_str(&saved).expect("read back");
    assert_eq!(back, w);
    out.clear();
    back.line("a", &a.info("bar"), t(AT), t(AT), None, &mut out);
    assert!(out.is_empty(), "it chains on: {out:?}");
}

#[test]
fn after_nats_comes_back_an_old_lease_gets_a_lease_to_renew_before_its_node_is_lost() {
    let (mut w, mut out) = (Watch::default(), Vec::new());
    // NATS was down 20 s; the monitor reads it again at 00:00:20.
    w.resumed_at = Some(t("2030-01-01T00:00:20Z"));
    let old = [lease("a", "2030-01-01T00:00:00Z", None, false)];
    w.leases(t("2030-01-01T00:00:21Z"), &old, &mut out);
    assert!(out.is_empty(), "within a lease of the return: {out:?}");
    let renewed = [lease("a", "2030-01-01T00:00:22Z", None, false)];
    w.leases(t("2030-01-01T00:00:22Z"), &renewed, &mut out);
    assert!(out.is_empty(), "renewed: {out:?}");
    assert_eq!(w.nodes["a"].lease, LeaseState::Up);
    // Renewed since the return: its lease counts as usual again.
    let mut b = Watch {
        resumed_at: Some(t("2030-01-01T00:00:20Z")),
        ..Watch::default()
    };
    let renewed_then_silent = [lease("b", "2030-01-01T00:00:21Z", None, false)];
    b.leases(t("2030-01-01T00:00:37Z"), &renewed_then_silent, &mut out);
    assert_eq!(events(&out), [Event::FleetNodeLost], "{out:?}");
    out.clear();
    // A node that does not renew within a lease (and the publisher's 5 s backoff) of the
    // return is lost.
    w.leases(t("2030-01-01T00:00:40Z"), &old, &mut out);
    assert!(out.is_empty(), "20 s after the return: {out:?}");
    w.leases(t("2030-01-01T00:00:41Z"), &old, &mut out);
    assert_eq!(events(&out), [Event::FleetNodeLost]);
}
