//! A rolling release across the fleet (`vigil fleet release`): a model's release is started
//! on one node at a time, through the node's own machinery (shadow run, canary steps, each
//! judged by the node's analysis: docs/deploy.md), and the next node starts only once the
//! last one's canary has completed and the node is healthy. The first failure stops it:
//! a node that is not healthy before its turn or after its release, a start the node
//! refuses, a canary aborted or a release aborted there, a node lost meanwhile, or no
//! verdict within the step's time. The nodes after it are not touched.
//!
//! Health is the fleet's view of the node ([`crate::NodeStatus`]): its lease up, and the
//! central monitor's reading of its log (`vigil fleet watch` must run): ready, trading
//! `active`, no High or Critical alert firing.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::commands::{self, FleetCommand, Outcome};
use crate::{NodeStatus, kind_subject, nats};

/// Whether `n` may take (or has come through) a release: `Err` says why not.
///
/// # Errors
/// Its lease is not up, no central monitor has read it, or it is not ready, not trading
/// `active`, or has a High or Critical alert firing.
pub fn healthy(n: &NodeStatus) -> Result<(), String> {
    if n.state != "up" {
        return Err(format!("its lease is {}", n.state));
    }
    let Some(v) = &n.view else {
        return Err("no central monitor has read its log (run `vigil fleet watch`)".into());
    };
    if v.ready != Some(true) {
        return Err("it is not ready".into());
    }
    match v.trading_state.as_deref() {
        Some("active") => {}
        other => return Err(format!("it trades {}", other.unwrap_or("unknown"))),
    }
    let serious: Vec<String> = v
        .alerts
        .values()
        .filter(|a| matches!(a.severity.as_str(), "high" | "critical"))
        .map(|a| format!("{} {}: {}", a.severity, a.rule, a.headline))
        .collect();
    if !serious.is_empty() {
        return Err(format!("alerts firing: {}", serious.join("; ")));
    }
    Ok(())
}

/// What a line of a node's log says of the release of `model` there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its canary's last step passed: the candidate (`name@version`) is production there.
    Completed(String),
    /// It ended there without completing; why.
    Failed(String),
}

/// Reads one line of a node's log for the end of `model`'s release.
pub fn judge(line: &Value, model: &str) -> Option<Verdict> {
    let data = &line["data"];
    let candidate = data["candidate"].as_str().unwrap_or_default();
    let ours = candidate
        .split_once('@')
        .is_some_and(|(name, _)| name == model);
    match line["event"].as_str()? {
        "canary_completed" if ours => Some(Verdict::Completed(candidate.to_string())),
        "canary_aborted" if ours => Some(Verdict::Failed(format!(
            "canary_aborted: {candidate}: {}",
            data["reason"].as_str().unwrap_or("aborted")
        ))),
        "model_release_changed"
            if data["model"] == model
                && data["detail"].as_str().is_some_and(|d| d.contains("abort")) =>
        {
            Some(Verdict::Failed(format!(
                "the release was aborted there by {}: {}",
                data["by"].as_str().unwrap_or("?"),
                data["reason"].as_str().unwrap_or("")
            )))
        }
        // Changed since it was registered, or unloadable: it will not run there.
        "shadow_skipped" if ours && line["level"] == "ERROR" => Some(Verdict::Failed(format!(
            "its candidate {candidate} cannot run there: {}",
            data["reason"].as_str().unwrap_or("shadow_skipped")
        ))),
        _ => None,
    }
}

/// What came of the release at one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeResult {
    /// The node.
    pub node: String,
    /// `released`, `failed`, or `not_reached` (after a failure).
    pub outcome: &'static str,
    /// The candidate now production there, or why it failed.
    pub detail: String,
    /// Seconds from the start command to the verdict.
    pub took_s: Option<f64>,
}

/// A rolling release to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The NATS server and the fleet's stream.
    pub url: String,
    pub stream: String,
    /// The model whose release (its `candidate`) each node starts.
    pub model: String,
    /// The nodes, in order.
    pub nodes: Vec<String>,
    /// Who asks, and why (in every node's audit).
    pub who: String,
    pub reason: String,
    /// Every command's id starts with it.
    pub request_id: String,
    /// How long a node's release may take, from its start to its canary's last step.
    pub per_node: Duration,
}

/// Runs `plan`: node by node, `token(node)` giving each node's command secret; `said` is
/// told each step as it happens (for the terminal). Stops at the first failure; every
/// node has a result.
///
/// # Errors
/// NATS cannot be reached at the start (nothing was sent).
pub async fn run(
    plan: &Plan,
    token: impl Fn(&str) -> Result<String, String>,
    now: impl Fn() -> vigil_core::Timestamp,
    said: impl Fn(&str),
) -> Result<Vec<NodeResult>, String> {
    let client = commands::client(&plan.url, "vigil fleet release").await?;
    let js = nats::jetstream(client.clone(), Duration::from_secs(5));
    let stream = js
        .get_stream(&plan.stream)
        .await
        .map_err(|e| format!("the stream {}: {e}", plan.stream))?;
    let link = Link { client, stream };
    let mut out: Vec<NodeResult> = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let r = one_node(plan, i, node, &link, &token, &now, &said).await;
        said(&format!("{}: {} {}", r.node, r.outcome, r.detail));
        let failed = r.outcome != "released";
        out.push(r);
        if failed {
            for rest in &plan.nodes[i + 1..] {
                out.push(NodeResult {
                    node: rest.clone(),
                    outcome: "not_reached",
                    detail: format!("the rollout stopped at {node}"),
                    took_s: None,
                });
            }
            break;
        }
    }
    Ok(out)
}

/// The node's status, read now.
async fn status_of(
    plan: &Plan,
    node: &str,
    now: vigil_core::Timestamp,
) -> Result<NodeStatus, String> {
    crate::status::read(&plan.url, &plan.stream, now)
        .await?
        .into_iter()
        .find(|n| n.node == node)
        .ok_or_else(|| "no lease in the fleet: not a node of it".to_string())
}

/// The NATS side of a rollout: commands go through the client, verdicts come from the stream.
struct Link {
    client: async_nats::Client,
    stream: jetstream::stream::Stream,
}

/// Node `i` of the plan's turn: health, the start, the verdict, health again.
async fn one_node(
    plan: &Plan,
    i: usize,
    node: &str,
    link: &Link,
    token: &impl Fn(&str) -> Result<String, String>,
    now: &impl Fn() -> vigil_core::Timestamp,
    said: &impl Fn(&str),
) -> NodeResult {
    let failed = |detail: String, took: Option<f64>| NodeResult {
        node: node.to_string(),
        outcome: "failed",
        detail,
        took_s: took,
    };
    match status_of(plan, node, now()).await.map(|s| healthy(&s)) {
        Ok(Ok(())) => {}
        Ok(Err(why)) | Err(why) => return failed(format!("not healthy before: {why}"), None),
    }
    let token = match token(node) {
        Ok(t) => t,
        Err(e) => return failed(e, None),
    };
    // Its log from now on, read before the start is sent so that no verdict is missed.
    let lines = link
        .stream
        .create_consumer(consumer::pull::Config {
            description: Some(format!("vigil fleet release: {node}'s log")),
            filter_subject: kind_subject(node, "log"),
            deliver_policy: consumer::DeliverPolicy::New,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await;
    let lines = match lines {
        Ok(c) => c,
        Err(e) => return failed(format!("its log cannot be read from the stream: {e}"), None),
    };
    let cmd = FleetCommand {
        command: "release".into(),
        argument: Some(plan.model.clone()),
        who: plan.who.clone(),
        reason: plan.reason.clone(),
        request_id: format!("{}-{i}", plan.request_id),
        token,
    };
    let started = Instant::now();
    match commands::send(&link.client, node, &cmd, Duration::from_secs(10)).await {
        Outcome::Answered(r) if r.ok => said(&format!("{node}: started: {}", r.steps.join("; "))),
        Outcome::Answered(r) => {
            return failed(
                format!(
                    "the node refused the start: {}",
                    r.error.unwrap_or_else(|| r.steps.join("; "))
                ),
                None,
            );
        }
        Outcome::Down { why } => return failed(format!("the node is down: {why}"), None),
    }
    let took = || Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    // No deadline past what the clock can hold (a --timeout-s of centuries).
    let deadline = started.checked_add(plan.per_node);
    let mut last_check = Instant::now();
    let candidate = loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return failed(
                format!(
                    "no verdict within {} s (its canary still runs there)",
                    plan.per_node.as_secs()
                ),
                took(),
            );
        }
        let batch = lines
            .batch()
            .max_messages(256)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => return failed(format!("reading its log: {e}"), took()),
        };
        let mut verdict = None;
        while let Some(m) = batch.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) => return failed(format!("reading its log: {e}"), took()),
            };
            if verdict.is_none()
                && let Ok(line) = serde_json::from_slice::<Value>(&m.payload)
            {
                verdict = judge(&line, &plan.model);
            }
        }
        match verdict {
            Some(Verdict::Completed(c)) => break c,
            Some(Verdict::Failed(why)) => return failed(why, took()),
            None => {}
        }
        // A node lost meanwhile says nothing more: its lease does.
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            match status_of(plan, node, now()).await {
                Ok(s) if s.state == "lost" => {
                    return failed("the node was lost during its release".into(), took());
                }
                Ok(_) => {}
                Err(e) => return failed(format!("the fleet cannot be read: {e}"), took()),
            }
        }
    };
    // Healthy after it too, once the monitor has read as far as the verdict.
    let settle = Instant::now() + Duration::from_secs(10);
    loop {
        match status_of(plan, node, now()).await.map(|s| healthy(&s)) {
            Ok(Ok(())) => break,
            Ok(Err(why)) | Err(why) if Instant::now() >= settle => {
                return failed(
                    format!("{candidate} is production there, but the node is not healthy: {why}"),
                    took(),
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    NodeResult {
        node: node.to_string(),
        outcome: "released",
        detail: format!("{candidate} is production there"),
        took_s: took(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::{NodeAlert, NodeView};
    use serde_json::json;

    fn node(state: &'static str, view: Option<NodeView>) -> NodeStatus {
        NodeStatus {
            node: "n".into(),
            state,
            lease_age_s: 0.1,
            lease_s: 3,
            last_seq: None,
            last_event: None,
            last_at: None,
            lines: 0,
            view,
        }
    }

    #[test]
    fn a_node_is_healthy_up_ready_active_and_without_a_serious_alert() {
        let good = NodeView {
            ready: Some(true),
            trading_state: Some("active".into()),
            ..Default::default()
        };
        assert_eq!(healthy(&node("up", Some(good.clone()))), Ok(()));
        assert!(healthy(&node("lost", Some(good.clone()))).is_err_and(|e| e.contains("lost")));
        assert!(healthy(&node("up", None)).is_err_and(|e| e.contains("fleet watch")));
        let halted = NodeView {
            trading_state: Some("halted".into()),
            ..good.clone()
        };
        assert!(healthy(&node("up", Some(halted))).is_err_and(|e| e.contains("halted")));
        let mut alerted = good.clone();
        alerted.alerts.insert(
            "a-1".into(),
            NodeAlert {
                rule: "cpu_high".into(),
                labels: String::new(),
                severity: "medium".into(),
                headline: "cpu".into(),
            },
        );
        assert_eq!(healthy(&node("up", Some(alerted.clone()))), Ok(()));
        alerted.alerts.insert(
            "a-2".into(),
            NodeAlert {
                rule: "data_stale".into(),
                labels: String::new(),
                severity: "critical".into(),
                headline: "no bar for 90 s".into(),
            },
        );
        assert!(
            healthy(&node("up", Some(alerted))).is_err_and(|e| e.contains("critical data_stale"))
        );
    }

    #[test]
    fn a_release_ends_with_its_canary_or_its_abort_and_only_for_its_model() {
        let line =
            |event: &str, data: Value| json!({"event": event, "level": "INFO", "data": data});
        assert_eq!(
            judge(
                &line("canary_completed", json!({"candidate": "m@1.1.0"})),
                "m"
            ),
            Some(Verdict::Completed("m@1.1.0".into()))
        );
        assert_eq!(
            judge(
                &line("canary_completed", json!({"candidate": "mm@1.1.0"})),
                "m"
            ),
            None
        );
        assert!(matches!(
            judge(&line("canary_aborted", json!({"candidate": "m@2", "reason": "sharpe"})), "m"),
            Some(Verdict::Failed(why)) if why.contains("sharpe")
        ));
        assert!(matches!(
            judge(
                &line(
                    "model_release_changed",
                    json!({"model": "m", "detail": "release 3 aborted", "by": "ops"})
                ),
                "m"
            ),
            Some(Verdict::Failed(why)) if why.contains("ops")
        ));
        assert_eq!(
            judge(
                &line("canary_stepped", json!({"candidate": "m@2", "to": 2})),
                "m"
            ),
            None
        );
    }
}
