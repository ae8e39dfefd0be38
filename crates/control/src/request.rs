//! The bodies of `POST /v1/commands` and `POST /v1/token/rotate`, checked field by field so
//! that every refusal names the field and says what is expected.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use vigil_core::AgentId;
use vigil_messages::{Action, CommandTarget};

/// The commands `POST /v1/commands` takes, as `Action::name` spells them.
pub const COMMANDS: [&str; 15] = [
    "pause",
    "resume",
    "breaker_trip",
    "breaker_reset",
    "cancel_all",
    "flatten",
    "switch_source",
    "quarantine",
    "release",
    "default_regime",
    "switch_model",
    "model_release",
    "shutdown",
    "inject_panic",
    "inject_freeze",
];

const COMMAND_FIELDS: [&str; 11] = [
    "command",
    "model",
    "step",
    "agent",
    "source",
    "symbol",
    "times",
    "seconds",
    "reason",
    "who",
    "request_id",
];
const ROTATE_FIELDS: [&str; 2] = ["who", "reason"];

const MAX_TEXT: usize = 1000;
const MAX_NAME: usize = 200;
const MAX_REQUEST_ID: usize = 128;
const MAX_PANICS: u64 = 100;
/// The longest hang `inject_freeze` asks of the Monitor, in seconds.
const MAX_FREEZE_S: u64 = 600;

/// A well-formed command request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandRequest {
    pub(crate) action: Action,
    pub(crate) who: String,
    pub(crate) reason: String,
    pub(crate) request_id: Option<String>,
}

/// A well-formed token rotation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RotateRequest {
    pub(crate) who: String,
    pub(crate) reason: String,
}

/// A JSON value read so that no object, at any depth, names a key twice. `serde_json`
/// keeps the last of two equal keys, so `{"who":"ana","who":"bob"}` would be taken as bob's
/// while a proxy, a log or a person reading the body sees ana's: every request body is
/// read through this instead, and such a body is refused.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "field {key:?} is given twice (each field may appear once)"
                )));
            }
            let Unique(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Reads a request body as JSON, refusing a key given twice in any object.
fn parse_body(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Unique>(body)
        .map(|Unique(v)| v)
        .map_err(|e| {
            if e.is_data() {
                // A key given twice: the body is JSON, but not a request.
                e.to_string()
            } else {
                format!("the body is not JSON: {e}")
            }
        })
}

struct Fields(Map<String, Value>);

impl Fields {
    fn parse(body: &[u8], allowed: &[&str]) -> Result<Self, String> {
        let value = parse_body(body)?;
        let Value::Object(map) = value else {
            return Err(format!(
                "the body must be a JSON object with the fields {}",
                allowed.join(", ")
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "unknown field {unknown:?}; expected {}",
                allowed.join(", ")
            ));
        }
        Ok(Self(map))
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A text field; `None` when absent. Blank, too long, or holding a control character
    /// (an ESC that would drive the terminal of whoever reads the audit, a CR or LF that
    /// would forge a line) is refused.
    fn text(&self, key: &str, max: usize) -> Result<Option<String>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(format!("field {key:?} is blank")),
            Some(Value::String(s)) if s.chars().count() > max => {
                Err(format!("field {key:?} is longer than {max} characters"))
            }
            Some(Value::String(s)) if let Some(c) = vigil_core::first_control(s) => Err(format!(
                "field {key:?} holds a control character ({c}): write it on one line, in \
                 plain text (no escape sequences, line breaks or tabs)"
            )),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(format!("field {key:?} must be a string, got {other}")),
        }
    }

    fn required(&self, key: &str, max: usize, why: &str) -> Result<String, String> {
        self.text(key, max)?
            .ok_or_else(|| format!("missing field {key:?}: {why}"))
    }
}

/// The agent a command names; `all` only where `all` is allowed.
fn agent(f: &Fields, command: &str, all: bool) -> Result<Option<AgentId>, String> {
    let expected = if all {
        "data, regime, signal, risk, execution or all"
    } else {
        "data, regime, signal, risk or execution"
    };
    let name = f
        .text("agent", MAX_NAME)?
        .ok_or_else(|| format!("missing field \"agent\": {command} needs one of {expected}"))?;
    if all && name == "all" {
        return Ok(None);
    }
    match name.parse::<AgentId>() {
        Ok(a) if a != AgentId::Monitor => Ok(Some(a)),
        _ => Err(format!(
            "field \"agent\": unknown agent {name:?}; expected {expected}"
        )),
    }
}

fn target(f: &Fields, command: &str) -> Result<CommandTarget, String> {
    Ok(agent(f, command, true)?.map_or(CommandTarget::All, CommandTarget::Agent))
}

fn panic_action(f: &Fields, command: &str) -> Result<Action, String> {
    let Some(agent) = agent(f, command, false)? else {
        return Err(format!("field \"agent\": {command} needs one agent"));
    };
    let times = match f.0.get("times") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_PANICS).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                format!("field \"times\" must be a whole number from 1 to {MAX_PANICS}, got {v}")
            })?,
    };
    Ok(Action::InjectPanic { agent, times })
}

/// Reads a `POST /v1/commands` body.
pub(crate) fn command_request(body: &[u8]) -> Result<CommandRequest, String> {
    command_fields(Fields::parse(body, &COMMAND_FIELDS)?)
}

/// Reads a command from the dashboard: the body without `who`, which is the session's.
pub(crate) fn dashboard_command(body: &[u8], who: &str) -> Result<CommandRequest, String> {
    let mut f = Fields::parse(body, &COMMAND_FIELDS)?;
    if f.has("who") {
        return Err("field \"who\": the dashboard's commands are signed by its login".into());
    }
    f.0.insert("who".into(), Value::from(who));
    command_fields(f)
}

fn command_fields(f: Fields) -> Result<CommandRequest, String> {
    let command = f.required(
        "command",
        MAX_NAME,
        &format!("one of {}", COMMANDS.join(", ")),
    )?;
    let uses: &[&str] = match command.as_str() {
        "pause" | "resume" => &["agent"],
        "switch_source" => &["source"],
        "quarantine" | "release" => &["symbol"],
        "switch_model" => &["model"],
        "model_release" => &["model", "step"],
        "inject_panic" => &["agent", "times"],
        "inject_freeze" => &["seconds"],
        "breaker_trip" | "breaker_reset" | "cancel_all" | "flatten" | "default_regime"
        | "shutdown" => &[],
        other => {
            return Err(format!(
                "field \"command\": unknown command {other:?}; expected one of {}",
                COMMANDS.join(", ")
            ));
        }
    };
    if let Some(extra) = [
        "agent", "source", "times", "seconds", "symbol", "model", "step",
    ]
    .into_iter()
    .find(|k| f.has(k) && !uses.contains(k))
    {
        return Err(format!(
            "field {extra:?} does not apply to {command}{}",
            if uses.is_empty() {
                String::new()
            } else {
                format!(" (it takes {})", uses.join(", "))
            }
        ));
    }
    let action = match command.as_str() {
        "pause" => Action::Pause(target(&f, &command)?),
        "resume" => Action::Resume(target(&f, &command)?),
        "breaker_trip" => Action::TripBreaker,
        "breaker_reset" => Action::ResetBreaker,
        "cancel_all" => Action::CancelAll,
        "flatten" => Action::Flatten,
        "default_regime" => Action::DefaultRegime,
        "shutdown" => Action::Shutdown,
        "switch_source" => Action::SwitchSource(f.required(
            "source",
            MAX_NAME,
            "switch_source needs the name of the source to read from",
        )?),
        "switch_model" => Action::SwitchModel(f.required(
            "model",
            MAX_NAME,
            "switch_model needs the model to trade, name@version (`vigil ctl status` shows it)",
        )?),
        "model_release" => Action::ModelRelease {
            model: f.required(
                "model",
                MAX_NAME,
                "model_release needs the model's name (as in `vigil model list`)",
            )?,
            step: match f
                .required(
                    "step",
                    MAX_NAME,
                    "model_release needs a step: start, pause, resume, step or abort",
                )?
                .as_str()
            {
                s @ ("start" | "pause" | "resume" | "step" | "abort") => s.to_string(),
                other => {
                    return Err(format!(
                        "field \"step\": unknown step {other:?}; expected start, pause, resume, step or abort"
                    ));
                }
            },
        },
        "quarantine" => Action::Quarantine(f.required(
            "symbol",
            MAX_NAME,
            "quarantine needs the symbol to put in quarantine",
        )?),
        "release" => Action::Release(f.required(
            "symbol",
            MAX_NAME,
            "release needs the symbol to release from quarantine",
        )?),
        "inject_freeze" => {
            let v = f.0.get("seconds").ok_or_else(|| {
                "missing field \"seconds\": inject_freeze needs how long the Monitor hangs"
                    .to_string()
            })?;
            let seconds = v
                .as_u64()
                .filter(|n| (1..=MAX_FREEZE_S).contains(n))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    format!(
                        "field \"seconds\" must be a whole number from 1 to {MAX_FREEZE_S}, got {v}"
                    )
                })?;
            Action::InjectFreeze { seconds }
        }
        _ => panic_action(&f, &command)?,
    };
    Ok(CommandRequest {
        action,
        who: f.required("who", MAX_NAME, "who is asking (kept in the audit)")?,
        reason: f.required(
            "reason",
            MAX_TEXT,
            "say why (it is logged and kept in the audit)",
        )?,
        request_id: f.text("request_id", MAX_REQUEST_ID)?,
    })
}

/// Reads a `POST /v1/token/rotate` body.
pub(crate) fn rotate_request(body: &[u8]) -> Result<RotateRequest, String> {
    let f = Fields::parse(body, &ROTATE_FIELDS)?;
    Ok(RotateRequest {
        who: f.required("who", MAX_NAME, "who is asking (kept in the audit)")?,
        reason: f
            .text("reason", MAX_TEXT)?
            .unwrap_or_else(|| "token rotation".into()),
    })
}

#[cfg(test)]
mod tests;
