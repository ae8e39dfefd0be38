//! A node's side of the fleet commands (`[fleet] command_token_file`): each step of a
//! command from `vigil fleet command` is recorded in the store's control audit first, sent
//! to the Monitor like a command of the control API, logged (`control_command`, remote
//! `fleet`) and completed in the audit; the answer goes back over NATS.

use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use vigil_config::VigilConfig;
use vigil_core::{Level, SharedClock};
use vigil_fleet::commands::{self, FleetCommand, FleetReply};
use vigil_log::{Event, LogEvent, LogSink};
use vigil_messages::{Action, Command};
use vigil_store::{AuditStart, NewControlCommand, SharedStore};

use super::SystemError;

/// How long a step waits for the Monitor.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The running listener: stopped with the session.
#[derive(Debug)]
pub(super) struct Listener {
    stop: tokio::sync::watch::Sender<bool>,
    task: actix_rt::task::JoinHandle<()>,
}

impl Listener {
    pub(super) async fn stop(self) {
        if self.stop.send(true).is_err() {
            eprintln!("vigil: WARN fleet commands: the listener had already stopped");
        }
        if let Err(e) = self.task.await {
            eprintln!("vigil: ERROR fleet commands: the listener failed: {e}");
        }
    }
}

/// Starts taking fleet commands when `[fleet] command_token_file` is set.
///
/// # Errors
/// The token cannot be read, or the store cannot be opened for the audit.
pub(super) async fn start(
    cfg: &VigilConfig,
    monitor: Recipient<Command>,
    sink: LogSink,
    wall: SharedClock,
) -> Result<Option<Listener>, SystemError> {
    let Some(fleet) = &cfg.fleet else {
        return Ok(None);
    };
    let Some(path) = &fleet.command_token_file else {
        return Ok(None);
    };
    let token = super::read_secret("fleet.command_token_file", path)
        .map_err(|e| SystemError::Runtime(e.to_string()))?;
    let audit = vigil_store::open_store(&cfg.store).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let node = fleet.node.clone();
    let url = fleet.url.clone();
    let subject = commands::command_subject(&node);
    let (log, clock) = (sink.clone(), wall.clone());
    let refused: Box<dyn Fn(String) + Send + Sync> = Box::new(move |why| {
        log.send(vec![
            LogEvent::new(clock.now(), "vigil", Event::ControlUnauthorized)
                .with("remote", "fleet")
                .with("method", "NATS")
                .with("path", subject.clone())
                .with("why", why),
        ]);
    });
    let served = node.clone();
    let (failed, failed_at) = (sink.clone(), wall.clone());
    let handle: commands::Handler = Box::new(move |cmd| {
        let (monitor, audit, sink, wall, node) = (
            monitor.clone(),
            Arc::clone(&audit),
            sink.clone(),
            wall.clone(),
            node.clone(),
        );
        Box::pin(async move { carry_out(cmd, node, monitor, audit, sink, wall).await })
    });
    let task = actix_rt::spawn(async move {
        let res = match commands::client(&url, "vigil fleet commands").await {
            Ok(client) => commands::serve(client, served, token, handle, refused, stopped).await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            // Trading goes on; the fleet's kill switch cannot reach this node (the commander
            // reports it down), and this says why.
            let error = format!("the fleet command listener stopped: {e}");
            eprintln!("vigil: ERROR {error}");
            failed.send(vec![
                LogEvent::new(failed_at.now(), "vigil", Event::CommandRefused)
                    .level(Level::Error)
                    .with("command", "fleet")
                    .with("error", error),
            ]);
        }
    });
    Ok(Some(Listener { stop, task }))
}

/// The control action of a step of [`commands::ACTIONS`], with the command's argument.
fn action(step: &str, argument: Option<&str>) -> Result<Action, String> {
    Ok(match step {
        "breaker_trip" => Action::TripBreaker,
        "breaker_reset" => Action::ResetBreaker,
        "cancel_all" => Action::CancelAll,
        "flatten" => Action::Flatten,
        "model_release_start" => match argument {
            Some(model) if !model.trim().is_empty() => Action::ModelRelease {
                model: model.trim().to_string(),
                step: "start".into(),
            },
            _ => return Err(format!("{step}: which model? (the command's argument)")),
        },
        _ => return Err(format!("{step}: not a control action")),
    })
}

/// Carries out each step of `cmd`, in order, audited and logged; stops at the first that fails.
async fn carry_out(
    cmd: FleetCommand,
    node: String,
    monitor: Recipient<Command>,
    audit: SharedStore,
    sink: LogSink,
    wall: SharedClock,
) -> FleetReply {
    let mut reply = FleetReply {
        node,
        ok: true,
        ..FleetReply::default()
    };
    let steps = match commands::steps(&cmd.command) {
        Ok(s) => s,
        Err(e) => {
            reply.ok = false;
            reply.error = Some(e);
            return reply;
        }
    };
    for step in steps {
        let action = match action(step, cmd.argument.as_deref()) {
            Ok(a) => a,
            Err(e) => {
                reply.ok = false;
                reply.error = Some(e);
                return reply;
            }
        };
        let record = NewControlCommand {
            at: wall.now(),
            who: cmd.who.clone(),
            remote: "fleet".into(),
            command: action.name().to_string(),
            argument: action.argument(),
            reason: cmd.reason.clone(),
            request_id: Some(format!("{}:{step}", cmd.request_id)),
        };
        let seq = match audit.begin_control_command(&record).await {
            Ok(AuditStart::New(seq)) => seq,
            Ok(AuditStart::Repeat(earlier)) => {
                reply
                    .steps
                    .push(format!("{step}: done before (audit #{})", earlier.seq));
                continue;
            }
            Err(e) => {
                sink.send(vec![
                    LogEvent::new(wall.now(), "vigil", Event::ControlAuditFailed)
                        .with("command", *step)
                        .with("who", cmd.who.clone())
                        .with("error", e.to_string()),
                ]);
                reply.ok = false;
                reply.error = Some(format!(
                    "{step}: refused: the command cannot be recorded in the audit: {e}"
                ));
                return reply;
            }
        };
        let (name, argument) = (action.name(), action.argument());
        let sent = monitor
            .send(Command::new(action, cmd.who.clone(), cmd.reason.clone()))
            .timeout(STEP_TIMEOUT)
            .await;
        let (ok, text) = match sent {
            Ok(Ok(outcome)) => (true, outcome),
            Ok(Err(e)) => (false, e.to_string()),
            Err(e) => (false, format!("the Monitor did not answer: {e}")),
        };
        let mut line = LogEvent::new(wall.now(), "vigil", Event::ControlCommand)
            .level(if ok { Level::Warn } else { Level::Error })
            .with("who", cmd.who.clone())
            .with("remote", "fleet")
            .with("command", name);
        if let Some(arg) = argument {
            line = line.with("argument", arg);
        }
        sink.send(vec![
            line.with("reason", cmd.reason.clone())
                .with("ok", ok)
                .with(if ok { "outcome" } else { "error" }, text.clone())
                .with("audit_seq", seq)
                .with("request_id", cmd.request_id.clone()),
        ]);
        if let Err(e) = audit
            .finish_control_command(seq, wall.now(), ok, if ok { 200 } else { 409 }, &text)
            .await
        {
            sink.send(vec![
                LogEvent::new(wall.now(), "vigil", Event::ControlAuditFailed)
                    .with("command", *step)
                    .with("who", cmd.who.clone())
                    .with("error", e.to_string()),
            ]);
        }
        reply.steps.push(format!(
            "{step}: {} (audit #{seq}): {text}",
            if ok { "ok" } else { "refused" }
        ));
        if !ok {
            reply.ok = false;
            reply.error = Some(format!("{step}: {text}"));
            return reply;
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_a_control_action_and_a_release_names_its_model() {
        assert_eq!(action("flatten", None), Ok(Action::Flatten));
        assert_eq!(
            action("model_release_start", Some(" goog_mlp ")),
            Ok(Action::ModelRelease {
                model: "goog_mlp".into(),
                step: "start".into()
            })
        );
        assert!(action("model_release_start", None).is_err_and(|e| e.contains("which model")));
        assert!(action("model_release_start", Some(" ")).is_err());
        assert!(action("shutdown", None).is_err_and(|e| e.contains("not a control action")));
        // Every step of every fleet command is one.
        for (_, steps) in commands::ACTIONS {
            for step in *steps {
                assert!(action(step, Some("m")).is_ok(), "{step}");
            }
        }
    }
}
