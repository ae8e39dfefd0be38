//! What an operator asks of the alert engine: `vigil alerts ack|silence|unsilence`.
//!
//! The command records an [`AlertCommand`] in the store as a request (its [`kind`] and its
//! [`body`], JSON), and the running vigil's Monitor reads it back with
//! [`AlertCommand::parse`] and applies it. Both sides use this one type, so the wire format
//! is written once:
//!
//! | kind | body |
//! |---|---|
//! | `ack` | `{"id": "a-1f2e3d4c"}` |
//! | `unsilence` | `{"id": "s-3"}` |
//! | `silence` | `{"matchers": {"rule": "cpu_high"}, "starts": "2026-03-05T17:00:00.000Z", "ends": "…", "reason": "…"}` |
//!
//! Times are RFC 3339 in UTC, to the millisecond.
//!
//! [`kind`]: AlertCommand::kind
//! [`body`]: AlertCommand::body

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// One operator request to the alert engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertCommand {
    /// Acknowledge an alert: no more repeat notices.
    Ack {
        /// The alert's id (`a-1f2e3d4c`).
        id: String,
    },
    /// Silence the alerts that match.
    Silence(SilenceRequest),
    /// Remove a silence.
    Unsilence {
        /// The silence's id (`s-3`).
        id: String,
    },
}

/// A silence asked for: which alerts, from when, until when, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SilenceRequest {
    /// Label → value; an alert matches when it has every one.
    pub matchers: BTreeMap<String, String>,
    /// Start.
    #[serde(serialize_with = "millis")]
    pub starts: DateTime<Utc>,
    /// End.
    #[serde(serialize_with = "millis")]
    pub ends: DateTime<Utc>,
    /// Why (logged and shown with the silence).
    pub reason: String,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

/// A time as request bodies carry it: UTC, to the millisecond.
fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl AlertCommand {
    /// The request's kind as the store records it: `ack`, `silence` or `unsilence`.
    pub fn kind(&self) -> &'static str {
        match self {
            AlertCommand::Ack { .. } => "ack",
            AlertCommand::Silence(_) => "silence",
            AlertCommand::Unsilence { .. } => "unsilence",
        }
    }

    /// The request's body as the store records it (see the module's table).
    pub fn body(&self) -> Value {
        let body = match self {
            AlertCommand::Ack { id } | AlertCommand::Unsilence { id } => {
                serde_json::to_value(Id { id })
            }
            AlertCommand::Silence(s) => serde_json::to_value(s),
        };
        // Strings and a map of strings: encoding cannot fail.
        body.unwrap_or(Value::Null)
    }

    /// Reads a recorded request back.
    ///
    /// # Errors
    /// An unknown kind, or a body that does not say what its kind needs: the text says
    /// what is missing or wrong, for the operator.
    pub fn parse(kind: &str, body: &Value) -> Result<Self, String> {
        let id = || {
            body.get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| "the request has no \"id\"".to_string())
        };
        match kind {
            "ack" => Ok(AlertCommand::Ack { id: id()? }),
            "unsilence" => Ok(AlertCommand::Unsilence { id: id()? }),
            "silence" => silence(body).map(AlertCommand::Silence),
            other => Err(format!(
                "unknown request kind {other:?}; expected ack, silence or unsilence"
            )),
        }
    }
}

/// A silence request's matchers, start, end and reason.
fn silence(body: &Value) -> Result<SilenceRequest, String> {
    let matchers = body
        .get("matchers")
        .and_then(|m| m.as_object())
        .ok_or("the request has no \"matchers\" object")?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_string()))
                .ok_or_else(|| format!("matcher {k:?} is not a string"))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if matchers.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    let time = |key: &str| -> Result<DateTime<Utc>, String> {
        let text = body
            .get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("the request has no \"{key}\""))?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("\"{key}\" is not an RFC 3339 time ({text:?}): {e}"))
    };
    let reason = body
        .get("reason")
        .and_then(|v| v.as_str())
        .filter(|r| !r.trim().is_empty())
        .ok_or("a silence needs a reason")?;
    Ok(SilenceRequest {
        matchers,
        starts: time("starts")?,
        ends: time("ends")?,
        reason: reason.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn acks_and_unsilences_carry_their_id() {
        let ack = AlertCommand::Ack {
            id: "a-1f2e3d4c".into(),
        };
        assert_eq!(
            (ack.kind(), ack.body()),
            ("ack", json!({"id": "a-1f2e3d4c"}))
        );
        assert_eq!(AlertCommand::parse("ack", &ack.body()), Ok(ack));
        let un = AlertCommand::Unsilence { id: "s-3".into() };
        assert_eq!((un.kind(), un.body()), ("unsilence", json!({"id": "s-3"})));
        assert_eq!(AlertCommand::parse("unsilence", &un.body()), Ok(un));
        assert_eq!(
            AlertCommand::parse("ack", &json!({})),
            Err("the request has no \"id\"".into())
        );
    }

    #[test]
    fn a_silence_carries_its_times_to_the_millisecond() {
        let s = AlertCommand::Silence(SilenceRequest {
            matchers: BTreeMap::from([("rule".into(), "cpu_high".into())]),
            starts: at("2026-03-05T17:00:00.123456Z"),
            ends: at("2026-03-05T18:00:00Z"),
            reason: "deploy".into(),
        });
        let body = s.body();
        assert_eq!(
            body,
            json!({
                "matchers": {"rule": "cpu_high"},
                "starts": "2026-03-05T17:00:00.123Z",
                "ends": "2026-03-05T18:00:00.000Z",
                "reason": "deploy",
            })
        );
        let back = AlertCommand::parse("silence", &body).expect("parses");
        let AlertCommand::Silence(back) = back else {
            panic!("not a silence: {back:?}");
        };
        assert_eq!(back.starts, at("2026-03-05T17:00:00.123Z"));
        assert_eq!(back.reason, "deploy");
    }

    #[test]
    fn a_silence_without_what_it_needs_is_refused_saying_what_is_missing() {
        let good = json!({
            "matchers": {"rule": "x"},
            "starts": "2026-03-05T17:00:00Z",
            "ends": "2026-03-05T18:00:00Z",
            "reason": "why",
        });
        for (key, value, want) in [
            (
                "matchers",
                json!({}),
                "a silence needs at least one matcher",
            ),
            (
                "matchers",
                json!({"rule": 1}),
                "matcher \"rule\" is not a string",
            ),
            (
                "matchers",
                json!([]),
                "the request has no \"matchers\" object",
            ),
            ("reason", json!("  "), "a silence needs a reason"),
            ("ends", json!(null), "the request has no \"ends\""),
            (
                "starts",
                json!("soon"),
                "\"starts\" is not an RFC 3339 time",
            ),
        ] {
            let mut body = good.clone();
            body[key] = value;
            let err = AlertCommand::parse("silence", &body).expect_err(key);
            assert!(err.starts_with(want), "{key}: {err}");
        }
        assert!(AlertCommand::parse("snooze", &good).is_err());
    }
}
