//! Hand-written JSON encoding of a log line: no intermediate tree, no allocation beyond
//! the output buffer, decimals written with their exact digits.

use std::io::Write;

use chrono::SecondsFormat;
use vigil_core::Timestamp;

use crate::event::{LogEvent, Value};

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                // Writing into a Vec cannot fail.
                write!(out, "\\u{b:04x}").expect("write to Vec");
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn push_ts(out: &mut Vec<u8>, ts: &Timestamp) {
    out.push(b'"');
    out.extend_from_slice(ts.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
    out.push(b'"');
}

fn push_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => push_str(out, s),
        Value::Shared(s) => push_str(out, s),
        Value::Dec(d) => write!(out, "{}", d.normalize()).expect("write to Vec"),
        Value::I64(i) => write!(out, "{i}").expect("write to Vec"),
        Value::U64(u) => write!(out, "{u}").expect("write to Vec"),
        Value::F64(f) if f.is_finite() => write!(out, "{f}").expect("write to Vec"),
        Value::F64(_) => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Ts(t) => push_ts(out, t),
    }
}

/// Appends `event` as one JSON line (with its `seq` and a trailing newline) to `out`.
pub fn encode_line(event: &LogEvent, seq: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\":");
    push_ts(out, &event.timestamp);
    out.extend_from_slice(b",\"level\":\"");
    out.extend_from_slice(event.level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"service\":");
    push_str(out, event.service);
    out.extend_from_slice(b",\"trace_id\":");
    match &event.trace_id {
        Some(t) => push_str(out, t.as_str()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"event\":\"");
    out.extend_from_slice(event.event.name().as_bytes());
    out.extend_from_slice(b"\",\"data\":{");
    for (i, (k, v)) in event.data.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, k);
        out.push(b':');
        push_value(out, v);
    }
    out.push(b'}');
    if let Some(ctx) = &event.context {
        out.extend_from_slice(b",\"context\":{");
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>, key: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            push_str(out, key);
            out.push(b':');
        };
        if let Some(s) = &ctx.signal_id {
            sep(out, "signal_id");
            push_str(out, s);
        }
        if let Some(s) = ctx.signal_strength {
            sep(out, "signal_strength");
            push_value(out, &Value::F64(s));
        }
        if let Some(r) = ctx.regime {
            sep(out, "regime");
            push_str(out, r.as_str());
        }
        if let Some(m) = ctx.model_version {
            sep(out, "model_version");
            push_str(out, m);
        }
        if let Some(p) = ctx.portfolio_value {
            sep(out, "portfolio_value");
            push_value(out, &Value::Dec(p));
        }
        out.push(b'}');
    }
    writeln!(out, ",\"seq\":{seq}}}").expect("write to Vec");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, LogContext};
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use vigil_core::{Regime, TraceId};

    #[test]
    fn encodes_the_seed_format_as_valid_json() {
        let ts: Timestamp = "2024-01-15T09:30:00.123Z".parse().expect("ts");
        let ev = LogEvent::new(ts, "execution_agent", Event::OrderSubmitted)
            .trace(&TraceId::from("tx_20240115_001"))
            .with("symbol", "AAPL")
            .with("side", "BUY")
            .with("quantity", Decimal::from(100))
            .with("price", Decimal::from_str("180.50").expect("dec"))
            .with(
                "note",
                "quote \" backslash \\ newline \n ctrl \u{1}".to_string(),
            )
            .context(LogContext {
                signal_id: Some("sig_20240115_001".into()),
                signal_strength: Some(0.75),
                regime: Some(Regime::Trending),
                model_version: None,
                portfolio_value: Some(Decimal::from(1_000_000)),
            });
        let mut out = Vec::new();
        encode_line(&ev, 1042, &mut out);
        let line = String::from_utf8(out).expect("utf8");
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid json");
        assert_eq!(v["timestamp"], "2024-01-15T09:30:00.123Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["service"], "execution_agent");
        assert_eq!(v["trace_id"], "tx_20240115_001");
        assert_eq!(v["event"], "order_submitted");
        assert_eq!(v["data"]["price"].to_string(), "180.5");
        assert_eq!(v["data"]["quantity"], 100);
        assert_eq!(
            v["data"]["note"],
            "quote \" backslash \\ newline \n ctrl \u{1}"
        );
        assert_eq!(v["context"]["regime"], "trending");
        assert_eq!(v["context"]["portfolio_value"], 1_000_000);
        assert_eq!(v["seq"], 1042);
    }
}
