//! Reading and filtering a log folder, for `vigil logs`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vigil_core::Level;

use crate::files::list_log_files;

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A time filter could not be read.
    #[error("{text}: {reason}; or give an RFC 3339 time such as 2024-01-15T09:30:00Z")]
    BadTime {
        /// What was given.
        text: String,
        /// Why it is not an age.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not JSON.
    #[error("{path}:{line}: not a JSON log line: {error}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The parse error.
        error: String,
    },
}

/// Parses `--since`/`--until` (for `vigil logs` and `vigil alerts history` alike): RFC 3339,
/// or an age before `now` ([`parse_duration`]: `90s`, `30m`, `2h`, `7d`, `1h30m`).
///
/// # Errors
/// Fails on anything else, and on an age further back than time goes.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, QueryError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let bad = |reason: String| QueryError::BadTime {
        text: text.to_string(),
        reason,
    };
    let d = parse_duration(text).map_err(|e| bad(e.to_string()))?;
    now.checked_sub_signed(d)
        .ok_or_else(|| bad("too far back".into()))
}

/// Why a text is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `<number><unit>`….
    #[error("expected a duration such as 90s, 30m, 2h, 1d or 1h30m")]
    Expected,
    /// Digits at the end without a unit.
    #[error("expected a duration such as 90s, 30m, 2h, 1d or 1h30m (a unit is required)")]
    NoUnit,
    /// A number that does not fit in 64 bits.
    #[error("the number is too large")]
    NumberTooLarge,
    /// A sum longer than a `chrono::Duration` holds.
    #[error("the duration is too long")]
    TooLong,
}

/// A duration: one or more `<number><unit>`, unit `s`, `m`, `h` or `d` (`90s`, `30m`, `2h`,
/// `1d`, `1h30m`). Zero is accepted here; callers decide. Never panics: a number or a sum
/// too large is an error.
///
/// # Errors
/// The reason, starting "expected a duration" for text that is not one.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Expected);
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(DurationError::Expected),
        };
        if digits.is_empty() {
            return Err(DurationError::Expected);
        }
        let n: i64 = digits.parse().map_err(|_| DurationError::NumberTooLarge)?;
        let secs = n.checked_mul(unit).ok_or(DurationError::TooLong)?;
        let part = Duration::try_seconds(secs).ok_or(DurationError::TooLong)?;
        total = total.checked_add(&part).ok_or(DurationError::TooLong)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(DurationError::NoUnit);
    }
    Ok(total)
}

/// Filters for log lines; every set filter must match.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// Exact trace id.
    pub trace: Option<String>,
    /// Exact event name.
    pub event: Option<String>,
    /// Lowest level.
    pub min_level: Option<Level>,
    /// Exact service.
    pub service: Option<String>,
    /// `data.symbol`.
    pub symbol: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// At or before.
    pub until: Option<DateTime<Utc>>,
}

impl LogQuery {
    /// Tells whether `line` passes every filter.
    pub fn matches(&self, line: &Value) -> bool {
        let s = |k: &str| line[k].as_str();
        if self
            .trace
            .as_deref()
            .is_some_and(|t| s("trace_id") != Some(t))
            || self.event.as_deref().is_some_and(|e| s("event") != Some(e))
            || self
                .service
                .as_deref()
                .is_some_and(|v| s("service") != Some(v))
            || self
                .symbol
                .as_deref()
                .is_some_and(|v| line["data"]["symbol"].as_str() != Some(v))
        {
            return false;
        }
        if let Some(min) = self.min_level {
            match s("level").and_then(|l| l.parse::<Level>().ok()) {
                Some(l) if l >= min => {}
                _ => return false,
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = s("timestamp")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
            else {
                return false;
            };
            if self.since.is_some_and(|x| t < x) || self.until.is_some_and(|x| t > x) {
                return false;
            }
        }
        true
    }
}

/// Calls `f` with every line of every log file of `dir`, in write order: the file, the
/// 1-based line number, the line exactly as stored, and the line parsed.
///
/// # Errors
/// Fails on an unreadable file or a line that is not JSON (naming file and line).
pub fn read_lines(
    dir: &Path,
    mut f: impl FnMut(&Path, u64, &str, Value),
) -> Result<(), QueryError> {
    read_lines_while(dir, |path, n, raw, v| {
        f(path, n, raw, v);
        true
    })
}

/// As [`read_lines`], and stops early when `f` returns `false` (its reader has gone).
///
/// # Errors
/// Fails on an unreadable file or a line that is not JSON (naming file and line).
pub fn read_lines_while(
    dir: &Path,
    mut f: impl FnMut(&Path, u64, &str, Value) -> bool,
) -> Result<(), QueryError> {
    let mut bad = None;
    read_raw_lines(dir, |path, n, line| {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => f(path, n, line, v),
            Err(e) => {
                bad = Some(QueryError::BadLine {
                    path: path.to_path_buf(),
                    line: n,
                    error: e.to_string(),
                });
                false
            }
        }
    })?;
    bad.map_or(Ok(()), Err)
}

/// Calls `f` with every line of every log file of `dir`, in write order, as stored and not
/// parsed (the file, the 1-based line number, the line): for a reader that wants a few
/// events of many lines and parses only those. Stops early when `f` returns `false`.
///
/// # Errors
/// Fails on an unreadable file.
pub fn read_raw_lines(
    dir: &Path,
    mut f: impl FnMut(&Path, u64, &str) -> bool,
) -> Result<(), QueryError> {
    let files = list_log_files(dir).map_err(|source| QueryError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for file in files {
        let reader = std::fs::File::open(&file.path)
            .map(BufReader::new)
            .map_err(|source| QueryError::Read {
                path: file.path.clone(),
                source,
            })?;
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| QueryError::Read {
                path: file.path.clone(),
                source,
            })?;
            if !f(&file.path, i as u64 + 1, &line) {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_an_age() {
        let now: DateTime<Utc> = "2024-01-15T12:00:00Z".parse().expect("ts");
        assert_eq!(
            parse_since("2h", now).expect("age"),
            "2024-01-15T10:00:00Z".parse::<DateTime<Utc>>().expect("ts")
        );
        assert_eq!(
            parse_since("2024-01-15T09:30:00+01:00", now).expect("rfc"),
            "2024-01-15T08:30:00Z".parse::<DateTime<Utc>>().expect("ts")
        );
        assert!(parse_since("yesterday", now).is_err());
        // The same ages as `vigil alerts history --since` (one parser): sums, and numbers
        // too large refused, never a panic.
        assert_eq!(
            parse_since("1h30m", now).expect("a sum"),
            "2024-01-15T10:30:00Z".parse::<DateTime<Utc>>().expect("ts")
        );
        for huge in [
            "99999999999999h",
            "9999999999999999d",
            "99999999999999999999s",
        ] {
            let e = parse_since(huge, now).expect_err("too long").to_string();
            assert!(e.starts_with(&format!("{huge}: ")), "{e}");
        }
    }

    #[test]
    fn filters_combine() {
        let line: Value = serde_json::json!({
            "timestamp": "2024-01-15T09:30:00.000Z", "level": "WARN", "service": "risk_agent",
            "trace_id": "tx_1", "event": "risk_rejected", "data": {"symbol": "GOOG"}
        });
        let q = LogQuery {
            trace: Some("tx_1".into()),
            min_level: Some(Level::Warn),
            symbol: Some("GOOG".into()),
            since: Some("2024-01-15T09:00:00Z".parse().expect("ts")),
            ..LogQuery::default()
        };
        assert!(q.matches(&line));
        let q2 = LogQuery {
            min_level: Some(Level::Error),
            ..LogQuery::default()
        };
        assert!(!q2.matches(&line));
        let q3 = LogQuery {
            event: Some("order_submitted".into()),
            ..LogQuery::default()
        };
        assert!(!q3.matches(&line));
    }
}
