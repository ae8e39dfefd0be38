//! Command routing: the agents the Monitor commands, which agent carries out each operator
//! command, and the breaker the Monitor trips on its own authority.

use actix::prelude::*;
use vigil_core::{AgentId, Timestamp, TradingState};
use vigil_log::{Event, LogEvent};
use vigil_messages::{
    Action, CancelAll, Command, CommandError, CommandTarget, DefaultRegime, Flatten, InjectPanic,
    ReleaseStep, SetPaused, SetQuarantine, SetTradingState, Shutdown, StopReason, SwitchModel,
    SwitchSource,
};

use crate::SERVICE;

/// An agent's answer to a command.
pub(crate) type Answer =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, CommandError>>>>;

/// The agents the Monitor commands.
#[derive(Clone, Debug)]
pub struct MonitorLinks {
    /// The Signal agent's pause switch.
    pub signal: Recipient<SetPaused>,
    /// The Signal agent switches the model it trades (blue-green).
    pub switch_model: Recipient<SwitchModel>,
    /// The Signal agent takes a step of a model's release.
    pub release_step: Recipient<ReleaseStep>,
    /// The Risk agent's trading state.
    pub risk: Recipient<SetTradingState>,
    /// The Risk agent closes every position.
    pub flatten: Recipient<Flatten>,
    /// The Execution agent cancels every open order.
    pub cancel_all: Recipient<CancelAll>,
    /// The Data agent switches its source.
    pub switch_source: Recipient<SwitchSource>,
    /// The Data agent puts a symbol in quarantine or releases it.
    pub quarantine: Recipient<SetQuarantine>,
    /// The Regime agent falls back to its default label.
    pub default_regime: Recipient<DefaultRegime>,
    /// The Data agent stops reading (the pipeline then drains).
    pub shutdown: Recipient<Shutdown>,
    /// Every agent's panic switch, answered only with fault injection on (testing).
    pub panics: Vec<(AgentId, Recipient<InjectPanic>)>,
    /// `[control] fault_injection`: honour `InjectPanic` commands.
    pub fault_injection: bool,
    /// The breaker's fast path to the Risk agent (see [`vigil_messages::HaltLatch`]).
    pub halt: vigil_messages::HaltLatch,
}

impl MonitorLinks {
    /// Halts or resets trading on the Monitor's own authority (an alert, a failed agent,
    /// supervision): fire and forget, since the Risk agent logs the change itself.
    ///
    /// A halt asked of a Risk agent that has stopped is done already when the breaker it
    /// left is tripped (a bad-data run: the Risk agent halts in band at the failed end of
    /// the stream, then stops, and the alert about the failure arrives after): `Ok`, not a
    /// failure. Otherwise the request cannot be carried out: `Err`, for the caller to page.
    pub(crate) fn set_trading_state(
        &self,
        state: TradingState,
        actor: String,
        reason: String,
    ) -> Result<(), String> {
        let links = self;
        if !links.risk.connected() {
            return match links.halt.held() {
                Some(held) if held == state => Ok(()),
                Some(held) => Err(format!(
                    "the risk agent has stopped with trading {}: {} is not applied, and the \
                     saved state stays {}",
                    held.as_str(),
                    state.as_str(),
                    held.as_str()
                )),
                None => Err("risk agent is not running".into()),
            };
        }
        if state == TradingState::Halted {
            links.halt.trip(&actor, &reason);
        }
        links.risk.do_send(SetTradingState {
            state,
            actor,
            reason,
        });
        Ok(())
    }

    /// Sends an operator's command to the agent that carries it out; the future is the
    /// agent's answer.
    pub(crate) fn route(&self, cmd: Command) -> Result<Answer, CommandError> {
        let links = self;
        let Command {
            action,
            actor,
            reason,
        } = cmd;
        fn ask<M>(agent: &'static str, to: &Recipient<M>, msg: M) -> Answer
        where
            M: Message<Result = Result<String, CommandError>> + Send + 'static,
        {
            let sent = to.send(msg);
            Box::pin(async move {
                sent.await.map_err(|e| {
                    CommandError::Unavailable(format!("the {agent} agent is not running ({e})"))
                })?
            })
        }
        Ok(match action {
            Action::Pause(target) | Action::Resume(target) => {
                let paused = matches!(action, Action::Pause(_));
                match target {
                    CommandTarget::Agent(AgentId::Signal) | CommandTarget::All => {}
                    CommandTarget::Agent(other) => {
                        return Err(CommandError::Invalid(format!(
                            "agent {other} cannot be paused; pausable agents: signal (or all)"
                        )));
                    }
                }
                ask(
                    "signal",
                    &links.signal,
                    SetPaused {
                        paused,
                        actor,
                        reason,
                    },
                )
            }
            Action::TripBreaker | Action::ResetBreaker => {
                if action == Action::TripBreaker {
                    links.halt.trip(&actor, &reason);
                } else {
                    links.halt.clear();
                }
                ask(
                    "risk",
                    &links.risk,
                    SetTradingState {
                        state: if action == Action::TripBreaker {
                            TradingState::Halted
                        } else {
                            TradingState::Active
                        },
                        actor,
                        reason,
                    },
                )
            }
            Action::CancelAll => ask("execution", &links.cancel_all, CancelAll { actor, reason }),
            Action::Flatten => ask("risk", &links.flatten, Flatten { actor, reason }),
            Action::ModelRelease { model, step } => ask(
                "signal",
                &links.release_step,
                ReleaseStep {
                    model,
                    step,
                    actor,
                    reason,
                },
            ),
            Action::SwitchModel(to) => ask(
                "signal",
                &links.switch_model,
                SwitchModel { to, actor, reason },
            ),
            Action::SwitchSource(name) => ask(
                "data",
                &links.switch_source,
                SwitchSource {
                    name,
                    actor,
                    reason,
                },
            ),
            Action::Quarantine(symbol) => ask(
                "data",
                &links.quarantine,
                SetQuarantine {
                    on: true,
                    symbol,
                    actor,
                    reason,
                },
            ),
            Action::Release(symbol) => ask(
                "data",
                &links.quarantine,
                SetQuarantine {
                    on: false,
                    symbol,
                    actor,
                    reason,
                },
            ),
            Action::DefaultRegime => ask(
                "regime",
                &links.default_regime,
                DefaultRegime { actor, reason },
            ),
            Action::Shutdown => {
                if !links.shutdown.connected() {
                    return Ok(Box::pin(async {
                        Ok("already stopping: the data agent has stopped reading".to_string())
                    }));
                }
                links.shutdown.do_send(Shutdown {
                    reason: StopReason::Interrupted,
                });
                Box::pin(async {
                    Ok(
                        "stopping: the data agent stops reading and the pipeline drains in order"
                            .to_string(),
                    )
                })
            }
            Action::InjectPanic { agent, times } => {
                if !links.fault_injection {
                    return Err(CommandError::Invalid(
                        "fault injection is off; it is for tests only ([control] fault_injection = true)"
                            .into(),
                    ));
                }
                let to = links
                    .panics
                    .iter()
                    .find(|(a, _)| *a == agent)
                    .map(|(_, r)| r.clone())
                    .ok_or_else(|| {
                        CommandError::Invalid(format!("agent {agent} cannot be made to panic"))
                    })?;
                for _ in 0..times {
                    to.do_send(InjectPanic {
                        actor: actor.clone(),
                    });
                }
                Box::pin(async move { Ok(format!("{times} panic(s) injected into {agent}")) })
            }
            Action::InjectFreeze { seconds } => {
                if !links.fault_injection {
                    return Err(CommandError::Invalid(
                        "fault injection is off; it is for tests only ([control] fault_injection = true)"
                            .into(),
                    ));
                }
                // The hang itself comes after the answer (`MonitorAgent`'s handler).
                Box::pin(async move {
                    Ok(format!(
                        "the monitor hangs for {seconds} s: its loop, the health board and the \
                         outside heartbeat stop"
                    ))
                })
            }
        })
    }
}

/// The `command_received` line, logged before a command is carried out.
pub(crate) fn received(cmd: &Command, at: Timestamp) -> LogEvent {
    let mut ev = LogEvent::new(at, SERVICE, Event::CommandReceived)
        .with("command", cmd.action.name())
        .with("actor", cmd.actor.clone())
        .with("reason", cmd.reason.clone());
    if let Some(arg) = cmd.action.argument() {
        ev = ev.with("argument", arg);
    }
    ev
}

/// What became of a command: `command_applied` with the agent's outcome, or
/// `command_refused` with why.
pub(crate) fn answered(
    res: &Result<String, CommandError>,
    name: &'static str,
    actor: String,
    reason: String,
    at: Timestamp,
) -> LogEvent {
    let ev = match res {
        Ok(outcome) => {
            LogEvent::new(at, SERVICE, Event::CommandApplied).with("outcome", outcome.clone())
        }
        Err(e) => LogEvent::new(at, SERVICE, Event::CommandRefused).with("error", e.to_string()),
    };
    ev.with("command", name)
        .with("actor", actor)
        .with("reason", reason)
}

#[cfg(test)]
mod tests {
    use vigil_log::Value;
    use vigil_testkit::timestamp as t;

    use super::*;

    fn text(ev: &LogEvent, key: &str) -> Option<String> {
        ev.get(key).map(ToString::to_string)
    }

    #[test]
    fn a_command_is_logged_with_its_argument_before_it_is_carried_out() {
        let cmd = Command {
            action: Action::Quarantine("AAPL".into()),
            actor: "ana".into(),
            reason: "bad tick".into(),
        };
        let ev = received(&cmd, t("2024-01-16T15:00:00Z"));
        assert_eq!(ev.event, Event::CommandReceived);
        assert_eq!(text(&ev, "command").as_deref(), Some("quarantine"));
        assert_eq!(text(&ev, "argument").as_deref(), Some("AAPL"));
        assert_eq!(text(&ev, "actor").as_deref(), Some("ana"));
        let flatten = Command {
            action: Action::Flatten,
            ..cmd
        };
        assert_eq!(
            received(&flatten, t("2024-01-16T15:00:00Z")).get("argument"),
            None
        );
    }

    #[test]
    fn the_answer_is_logged_as_applied_or_refused_with_why() {
        let at = t("2024-01-16T15:00:00Z");
        let ok = answered(
            &Ok("paused".into()),
            "pause",
            "ana".into(),
            "news".into(),
            at,
        );
        assert_eq!(ok.event, Event::CommandApplied);
        assert_eq!(ok.get("outcome"), Some(&Value::from("paused".to_string())));
        let refused = answered(
            &Err(CommandError::Invalid("agent data cannot be paused".into())),
            "pause",
            "ana".into(),
            "news".into(),
            at,
        );
        assert_eq!(refused.event, Event::CommandRefused);
        assert_eq!(
            text(&refused, "error").as_deref(),
            Some("agent data cannot be paused")
        );
        assert_eq!(text(&refused, "reason").as_deref(), Some("news"));
    }
}
