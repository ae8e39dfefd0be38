//! Hand-written JSON encoding of a log line: no intermediate tree, no allocation beyond
//! the output buffer, decimals written with their exact digits.

use std::io::Write;

use chrono::SecondsFormat;
use vigil_core::Timestamp;

use crate::event::{LogEvent, Value};
use crate::redact::Redactor;

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most text (symbols, ids, reasons) needs no escaping: copy it in one go. The check
    // does not stop early, so it runs on whole vectors of bytes.
    let plain = !bytes.iter().fold(false, |esc, &b| {
        esc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
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

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01
/// (H. Hinnant's `civil_from_days`): a few multiplications instead of chrono's calendar
/// lookups.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.mmmZ"` without going through `fmt` or allocating.
fn push_ts(out: &mut Vec<u8>, ts: &Timestamp) {
    let unix = ts.timestamp();
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        // Outside what the fast path writes; never seen in market data, kept correct.
        out.push(b'"');
        out.extend_from_slice(ts.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
        out.push(b'"');
        return;
    }
    let secs = unix.rem_euclid(86_400) as u32;
    let millis = ts.timestamp_subsec_millis().min(999);
    let mut text = *b"\"0000-00-00T00:00:00.000Z\"";
    let mut put2 = |at: usize, n: u32| {
        let pair = n as usize * 2;
        text[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    };
    put2(1, year as u32 / 100);
    put2(3, year as u32 % 100);
    put2(6, month);
    put2(9, day);
    put2(12, secs / 3600);
    put2(15, secs / 60 % 60);
    put2(18, secs % 60);
    put2(22, millis % 100);
    text[21] = b'0' + (millis / 100) as u8;
    out.extend_from_slice(&text);
}

/// Appends a name vigil defines itself (event, level, service, field key): plain
/// identifiers that need no escaping.
fn push_ident(out: &mut Vec<u8>, s: &str) {
    debug_assert!(
        s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "{s:?} is not a plain identifier"
    );
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn push_text(out: &mut Vec<u8>, s: &str, redactor: &Redactor) {
    if redactor.is_empty() {
        push_str(out, s);
    } else {
        push_str(out, &redactor.redact(s));
    }
}

fn push_value(out: &mut Vec<u8>, v: &Value, redactor: &Redactor) {
    match v {
        Value::Str(s) => push_text(out, s, redactor),
        Value::Shared(s) => push_text(out, s, redactor),
        Value::Dec(d) => push_decimal(out, *d),
        Value::I64(i) => {
            if *i < 0 {
                out.push(b'-');
            }
            push_u64(out, i.unsigned_abs());
        }
        Value::U64(u) => push_u64(out, *u),
        Value::F64(f) if f.is_finite() => {
            let mut buf = ryu::Buffer::new();
            out.extend_from_slice(buf.format_finite(*f).as_bytes());
        }
        Value::F64(_) => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Ts(t) => push_ts(out, t),
    }
}

/// Writes a decimal with its exact digits, trailing zeros dropped, without `fmt`.
fn push_decimal(out: &mut Vec<u8>, d: rust_decimal::Decimal) {
    let d = d.normalize();
    let mantissa = d.mantissa();
    let scale = d.scale() as usize;
    if mantissa < 0 {
        out.push(b'-');
    }
    // 2^96 < 10^29: the mantissa has at most 29 digits.
    let mut digits = [0u8; 40];
    let n = mantissa.unsigned_abs();
    let i = match u64::try_from(n) {
        // Prices and quantities: 64-bit division, two digits at a time.
        Ok(small) => u64_digits(small, &mut digits),
        Err(_) => {
            let mut n = n;
            let mut i = digits.len();
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            i
        }
    };
    let digits = &digits[i..];
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    }
}

/// "00" to "99".
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the decimal digits of `n` at the end of `buf` (20 or more bytes) and returns
/// where they start.
fn u64_digits(mut n: u64, buf: &mut [u8]) -> usize {
    let mut i = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    i
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let i = u64_digits(n, &mut buf);
    out.extend_from_slice(&buf[i..]);
}

/// Appends `event` as one JSON line (with its `seq` and a trailing newline, without the
/// hash chain) to `out`.
pub fn encode_line(event: &LogEvent, seq: u64, out: &mut Vec<u8>) {
    encode_body(event, seq, &Redactor::default(), out);
    out.extend_from_slice(b"}\n");
}

/// Appends `event` up to and including its `seq`, without the closing brace, redacting
/// secrets from every text value: the writer adds the hash chain after it.
pub(crate) fn encode_body(event: &LogEvent, seq: u64, redactor: &Redactor, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\":");
    push_ts(out, &event.timestamp);
    out.extend_from_slice(b",\"level\":\"");
    out.extend_from_slice(event.level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"service\":");
    push_ident(out, event.service);
    out.extend_from_slice(b",\"trace_id\":");
    match &event.trace_id {
        Some(t) => push_text(out, t.as_str(), redactor),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"event\":\"");
    out.extend_from_slice(event.event.name().as_bytes());
    out.extend_from_slice(b"\",\"data\":{");
    for (i, (k, v)) in event.data.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_ident(out, k);
        out.push(b':');
        push_value(out, v, redactor);
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
            push_ident(out, key);
            out.push(b':');
        };
        if let Some(s) = &ctx.signal_id {
            sep(out, "signal_id");
            push_text(out, s, redactor);
        }
        if let Some(s) = ctx.signal_strength {
            sep(out, "signal_strength");
            push_value(out, &Value::F64(s), redactor);
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
            push_value(out, &Value::Dec(p), redactor);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"seq\":");
    push_u64(out, seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_exactly() {
        for (text, want) in [
            ("180.50", "180.5"),
            ("-0.000123", "-0.000123"),
            ("100", "100"),
            ("0", "0"),
            (
                "79228162514264337593543950335",
                "79228162514264337593543950335",
            ),
            (
                "0.0000000000000000000000000001",
                "0.0000000000000000000000000001",
            ),
            ("-12.340", "-12.34"),
            ("18446744073709551615", "18446744073709551615"),
            ("18446744073709551616", "18446744073709551616"),
            ("-1844674407370955.1616", "-1844674407370955.1616"),
            ("9", "9"),
            ("0.05", "0.05"),
            ("99.010", "99.01"),
        ] {
            let mut out = Vec::new();
            push_decimal(&mut out, Decimal::from_str(text).expect("dec"));
            assert_eq!(String::from_utf8(out).expect("utf8"), want);
        }
    }

    #[test]
    fn integers_are_written_exactly() {
        for n in [
            0,
            7,
            9,
            10,
            42,
            99,
            100,
            101,
            999,
            1000,
            12_345,
            1 << 40,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).expect("utf8"), n.to_string());
        }
    }

    #[test]
    fn fast_timestamps_match_chrono() {
        use chrono::Datelike;
        let mut t: Timestamp = "1995-01-01T00:00:00Z".parse().expect("ts");
        let step = chrono::Duration::milliseconds(7_777_777_777 / 1000 + 13);
        for _ in 0..20_000 {
            let mut out = Vec::new();
            push_ts(&mut out, &t);
            let want = format!("\"{}\"", t.to_rfc3339_opts(SecondsFormat::Millis, true));
            assert_eq!(String::from_utf8(out).expect("utf8"), want);
            t += step;
        }
        // Far years, century and leap days, before 1970, and the fallback outside 0..=9999.
        let mut t: Timestamp = "0000-01-01T00:00:00.001Z".parse().expect("ts");
        let step = chrono::Duration::milliseconds(86_400_000 * 37 + 3_600_000 * 5 + 61_001);
        while t.year() < 10_001 {
            let mut out = Vec::new();
            push_ts(&mut out, &t);
            let want = format!("\"{}\"", t.to_rfc3339_opts(SecondsFormat::Millis, true));
            assert_eq!(String::from_utf8(out).expect("utf8"), want);
            t += step;
        }
        for text in [
            "1900-02-28T23:59:59.999Z",
            "1900-03-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "2000-02-29T12:00:00.5Z",
            "2100-03-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "-0001-12-31T23:59:59Z",
        ] {
            let t: Timestamp = text.parse().expect("ts");
            let mut out = Vec::new();
            push_ts(&mut out, &t);
            let want = format!("\"{}\"", t.to_rfc3339_opts(SecondsFormat::Millis, true));
            assert_eq!(String::from_utf8(out).expect("utf8"), want, "{text}");
        }
    }
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
