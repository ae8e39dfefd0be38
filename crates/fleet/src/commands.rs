//! Fleet commands over NATS request/reply, to one node or to every node: the kill switch
//! (`kill`: every open order cancelled, then every position closed, the node reduce-only so
//! that nothing opens a new one), the breaker (`trip`: halted, nothing but cancels may go
//! out, positions stay; `reset`), and `cancel-all` and `flatten` alone. A halted node
//! cannot flatten, so `kill` does not trip the breaker; trip it once the node is flat. A node that takes commands
//! ([`serve`]) answers on `vigil.cmd.<node>` — outside the stream's subjects, so that no
//! command is stored as a line — and checks each request's token against its own secret
//! (`[fleet] command_token_file`): a secret per node. The commander ([`send`]) reports a
//! node that does not answer as down; it never drops one silently.

use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// The subjects nodes take commands on: `vigil.cmd.<node>`.
pub const COMMAND_PREFIX: &str = "vigil.cmd";

/// The subject node `node` takes commands on.
pub fn command_subject(node: &str) -> String {
    format!("{COMMAND_PREFIX}.{node}")
}

/// The commands, and the control actions each is made of, in order.
pub const ACTIONS: &[(&str, &[&str])] = &[
    ("kill", &["cancel_all", "flatten"]),
    ("trip", &["breaker_trip"]),
    ("reset", &["breaker_reset"]),
    ("cancel-all", &["cancel_all"]),
    ("flatten", &["flatten"]),
    // The rolling release's step (`vigil fleet release`): the model named by the command's
    // argument starts its release (its `candidate`) on the node.
    ("release", &["model_release_start"]),
];

/// The control actions of command `name`.
///
/// # Errors
/// No such command (the message lists them).
pub fn steps(name: &str) -> Result<&'static [&'static str], String> {
    ACTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let names: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
            format!("no fleet command {name:?}: one of {}", names.join(", "))
        })
}

/// A command as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCommand {
    /// One of [`ACTIONS`].
    pub command: String,
    /// What a command needs besides (`release`: the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argument: Option<String>,
    /// Who asks.
    pub who: String,
    /// Why.
    pub reason: String,
    /// The same id twice is carried out once (the node's audit keeps it).
    pub request_id: String,
    /// The node's secret.
    pub token: String,
}

/// A node's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetReply {
    /// Which node answers.
    pub node: String,
    /// Every step was carried out.
    pub ok: bool,
    /// Each step: `breaker_trip: ok (audit #12) …`.
    pub steps: Vec<String>,
    /// Why it was refused, when it was.
    pub error: Option<String>,
}

/// What came of a command to one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The node answered (ok or not: see the reply).
    Answered(FleetReply),
    /// Nobody answered: the node is down, or takes no command (no `command_token_file`).
    Down {
        /// What NATS said.
        why: String,
    },
}

/// A NATS client for commands (reconnecting in the background, as the publisher's).
///
/// # Errors
/// The URL cannot be used.
pub async fn client(url: &str, name: &str) -> Result<async_nats::Client, String> {
    crate::nats::connect(url, name).await
}

/// Equal in time whatever the bytes (a token is compared without saying how much matched).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Carries a command out on the node; answers what came of each step.
pub type Handler = Box<dyn Fn(FleetCommand) -> BoxFuture<'static, FleetReply> + Send + Sync>;

/// Answers the commands to `node` on `client` until `stop` turns true: a request without the
/// node's `token` is refused (and `refused` told, to log it), a valid one handed to
/// `handle`.
///
/// # Errors
/// The subscription cannot be made.
pub async fn serve(
    client: async_nats::Client,
    node: String,
    token: String,
    handle: Handler,
    refused: Box<dyn Fn(String) + Send + Sync>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let subject = command_subject(&node);
    let mut requests = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| format!("subscribing to {subject}: {e}"))?;
    loop {
        let msg = tokio::select! {
            m = requests.next() => match m {
                Some(m) => m,
                None => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        };
        let Some(reply_to) = msg.reply.clone() else {
            refused(format!("a message on {subject} without a reply subject"));
            continue;
        };
        let reply = match serde_json::from_slice::<FleetCommand>(&msg.payload) {
            Err(e) => {
                refused(format!("not a fleet command: {e}"));
                FleetReply {
                    node: node.clone(),
                    error: Some(format!("not a fleet command: {e}")),
                    ..FleetReply::default()
                }
            }
            Ok(cmd) if !same(cmd.token.as_bytes(), token.as_bytes()) => {
                refused(format!(
                    "{} from {:?}: the token is not this node's",
                    cmd.command, cmd.who
                ));
                FleetReply {
                    node: node.clone(),
                    error: Some("not authorized: the token is not this node's".into()),
                    ..FleetReply::default()
                }
            }
            Ok(cmd) => handle(cmd).await,
        };
        let bytes = serde_json::to_vec(&reply).map_err(|e| format!("the reply: {e}"))?;
        if let Err(e) = client.publish(reply_to, bytes.into()).await {
            refused(format!("the reply could not be sent: {e}"));
        }
    }
}

/// Sends `cmd` to `node` and waits up to `timeout` for its answer.
pub async fn send(
    client: &async_nats::Client,
    node: &str,
    cmd: &FleetCommand,
    timeout: Duration,
) -> Outcome {
    let bytes = match serde_json::to_vec(cmd) {
        Ok(b) => b,
        Err(e) => {
            return Outcome::Down {
                why: format!("the command could not be encoded: {e}"),
            };
        }
    };
    let request = client.request(command_subject(node), bytes.into());
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(msg)) => match serde_json::from_slice(&msg.payload) {
            Ok(reply) => Outcome::Answered(reply),
            Err(e) => Outcome::Down {
                why: format!("it answered something else than a reply: {e}"),
            },
        },
        Ok(Err(e)) => Outcome::Down {
            why: match e.kind() {
                async_nats::client::RequestErrorKind::NoResponders => {
                    "no node listens (down, or without [fleet] command_token_file)".to_string()
                }
                _ => e.to_string(),
            },
        },
        Err(_) => Outcome::Down {
            why: format!("no answer within {} s", timeout.as_secs()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_switch_is_its_three_steps_and_a_token_is_compared_whole() {
        assert_eq!(steps("kill"), Ok(&["cancel_all", "flatten"][..]));
        assert!(steps("halt").is_err_and(|e| e.contains("kill, trip")));
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert_eq!(command_subject("node-1"), "vigil.cmd.node-1");
        assert!(!command_subject("n").starts_with(crate::SUBJECT_PREFIX));
    }
}
