//! Reading the TOML text: every syntax error and every type error of a file, each with its
//! dotted key path, line and column.
//!
//! The parser recovers after a syntax error ([`DeTable::parse_recoverable`]), so that every
//! one is reported, not only the first. Type errors are collected by deserializing again and
//! again: each failure is located by its span in the document tree, reported, and its value
//! taken out (the key's default applies) before the next attempt, until the rest
//! deserializes.
//!
//! No message repeats a string of the file: a secret may sit anywhere (`store.url`, a
//! webhook URL, a password), including under the wrong key. Messages name the key, the line,
//! the column and what was expected; numbers and booleans are shown, strings only as "a
//! string".

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::validate::ConfigIssue;

/// Attempts at most to deserialize a file with type errors (one error is taken out each
/// time): far above what a hand-written file holds, and a bound on the work.
const MAX_TYPE_ERRORS: usize = 1000;

/// What a TOML text holds.
pub(crate) struct Parsed<T> {
    /// The value, when the text has neither syntax nor type errors.
    pub(crate) value: Option<T>,
    /// Every syntax and type error, in document order.
    pub(crate) errors: Vec<ConfigIssue>,
    /// The dotted paths of keys the type does not know.
    pub(crate) unknown: Vec<String>,
}

/// A step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_text(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses `text` into `T`, collecting every syntax error, every type error and every
/// unknown key.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Parsed<T> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    let original = root.clone();
    // (position, line, issue): sorted by position at the end.
    let mut found: Vec<(usize, usize, ConfigIssue)> = Vec::new();
    let mut syntax_lines = Vec::new();
    for e in &syntax {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = line_column(text, span.start);
        if syntax_lines.contains(&line) {
            // One per line: the rest of a broken line is what the parser made of it.
            continue;
        }
        syntax_lines.push(line);
        let path = locate(original.get_ref(), &span)
            .map(|segs| path_text(&segs))
            .unwrap_or_else(|| path_of_line(text, line));
        found.push((
            span.start,
            line,
            ConfigIssue::new(
                &path,
                format!(
                    "invalid TOML: {} (line {line}, column {column})",
                    e.message().trim_end()
                ),
            ),
        ));
    }

    let mut current = root;
    let mut value = None;
    let mut unknown = Vec::new();
    let mut reported: Vec<Vec<Seg>> = Vec::new();
    for _ in 0..MAX_TYPE_ERRORS {
        unknown.clear();
        let de = toml::de::Deserializer::from(current.clone());
        let attempt: Result<T, _> = serde_ignored::deserialize(de, |path| {
            // serde_ignored writes `?` for an `Option` (`alerts.channels.email.?.x`).
            unknown.push(path.to_string().replace(".?", ""));
        });
        let e = match attempt {
            Ok(v) => {
                value = Some(v);
                break;
            }
            Err(e) => e,
        };
        let span = e.span();
        let segs = span
            .as_ref()
            .and_then(|s| locate(current.get_ref(), s).map(|segs| (s.clone(), segs)));
        let Some((span, segs)) = segs else {
            // Nothing to take out: report it and stop.
            found.push((
                usize::MAX,
                usize::MAX,
                ConfigIssue::new("", plain(e.message())),
            ));
            break;
        };
        let (line, column) = line_column(text, span.start);
        let path = locate(original.get_ref(), &span).unwrap_or_else(|| segs.clone());
        // A table whose bad value was taken out may now miss it: that is the same error.
        let consequence = reported.iter().any(|r: &Vec<Seg>| r.starts_with(&path));
        if !syntax_lines.contains(&line) && !consequence {
            reported.push(path.clone());
            found.push((
                span.start,
                line,
                ConfigIssue::new(
                    &path_text(&path),
                    format!("{} (line {line}, column {column})", plain(e.message())),
                ),
            ));
        }
        if !remove(current.get_mut(), &segs) {
            break;
        }
    }
    if !found.is_empty() {
        value = None;
    }
    found.sort_by_key(|(pos, line, _)| (*line, *pos));
    Parsed {
        value,
        errors: found.into_iter().map(|(_, _, issue)| issue).collect(),
        unknown,
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    (line, column)
}

fn contains(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The deepest key whose key or value span holds `span`. Children are searched whatever
/// their parent's span: a `[table]`'s span is its header only.
fn locate(table: &DeTable<'_>, span: &std::ops::Range<usize>) -> Option<Vec<Seg>> {
    let mut best: Option<Vec<Seg>> = None;
    let mut consider = |candidate: Vec<Seg>| {
        if best.as_ref().is_none_or(|b| candidate.len() > b.len()) {
            best = Some(candidate);
        }
    };
    for (k, v) in table.iter() {
        let here = vec![Seg::Key(k.get_ref().to_string())];
        if contains(&k.span(), span) || contains(&v.span(), span) {
            consider(here.clone());
        }
        if let Some(deeper) = locate_value(v, span) {
            consider([here, deeper].concat());
        }
    }
    best
}

fn locate_value(v: &Spanned<DeValue<'_>>, span: &std::ops::Range<usize>) -> Option<Vec<Seg>> {
    match v.get_ref() {
        DeValue::Table(t) => locate(t, span),
        DeValue::Array(a) => {
            let mut best: Option<Vec<Seg>> = None;
            for (i, item) in a.iter().enumerate() {
                let here = vec![Seg::Index(i)];
                let mut candidate = None;
                if contains(&item.span(), span) {
                    candidate = Some(here.clone());
                }
                if let Some(deeper) = locate_value(item, span) {
                    candidate = Some([here, deeper].concat());
                }
                if let Some(c) = candidate
                    && best.as_ref().is_none_or(|b| c.len() > b.len())
                {
                    best = Some(c);
                }
            }
            best
        }
        _ => None,
    }
}

/// Takes the value at `segs` out of `table`.
fn remove(table: &mut DeTable<'_>, segs: &[Seg]) -> bool {
    match segs {
        [Seg::Key(k)] => {
            // Keys compare by their text; the span is not part of it.
            let key = Spanned::new(0..0, std::borrow::Cow::Owned(k.clone()));
            table.remove(&key).is_some()
        }
        [Seg::Key(k), rest @ ..] => table
            .iter_mut()
            .find(|(key, _)| key.get_ref() == k)
            .is_some_and(|(_, v)| remove_in_value(v.get_mut(), rest)),
        _ => false,
    }
}

fn remove_in_value(v: &mut DeValue<'_>, segs: &[Seg]) -> bool {
    match (v, segs) {
        (DeValue::Table(t), _) => remove(t, segs),
        (DeValue::Array(a), [Seg::Index(i)]) => {
            if *i >= a.len() {
                return false;
            }
            let mut kept = DeArray::new();
            for (j, item) in a.iter().enumerate() {
                if j != *i {
                    kept.push(item.clone());
                }
            }
            *a = kept;
            true
        }
        (DeValue::Array(a), [Seg::Index(i), rest @ ..]) => a
            .get_mut(*i)
            .is_some_and(|item| remove_in_value(item.get_mut(), rest)),
        _ => false,
    }
}

/// The key path of a line the parser could not place in the tree: the nearest `[table]`
/// header at or above it, and the key before `=` on the line.
fn path_of_line(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(here) = lines.get(line.saturating_sub(1)) else {
        return String::new();
    };
    let is_key = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-. \"'".contains(c))
    };
    let header = |l: &str| -> Option<String> {
        let t = l.trim();
        let inner = t.strip_prefix('[')?;
        let inner = inner.strip_prefix('[').unwrap_or(inner);
        let end = inner.find(']').unwrap_or(inner.len());
        let name = inner[..end].trim();
        is_key(name).then(|| name.replace([' ', '"', '\''], ""))
    };
    if let Some(h) = header(here) {
        return h;
    }
    let table = lines[..line.saturating_sub(1)]
        .iter()
        .rev()
        .find_map(|l| header(l));
    // A header gone wrong (`[step_pct = 1`) may still name a key.
    let key = here
        .trim_start()
        .trim_start_matches('[')
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| is_key(k))
        .map(|k| k.replace([' ', '"', '\''], ""));
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (Some(t), None) => t,
        (None, Some(k)) => k,
        (None, None) => String::new(),
    }
}

/// A deserializer's message without the value it found when that is a string (it may be a
/// secret), and in words rather than Rust's type names.
fn plain(message: &str) -> String {
    let message = message.trim_end();
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    let Some((found, expected)) = body.and_then(|b| b.rsplit_once(", expected ")) else {
        return message.to_string();
    };
    let found = if found.starts_with("string ") || found.starts_with("character ") {
        "a string".to_string()
    } else if let Some(v) = ["integer ", "floating point ", "boolean "]
        .iter()
        .find_map(|p| found.strip_prefix(p))
    {
        v.trim_matches('`').to_string()
    } else {
        match found {
            "map" => "a table".to_string(),
            "sequence" => "an array".to_string(),
            other => other.to_string(),
        }
    };
    format!("expected {}, found {found}", expected_in_words(expected))
}

fn expected_in_words(expected: &str) -> String {
    match expected {
        "f64" | "f32" => "a number".into(),
        "u8" => format!("a whole number from 0 to {}", u8::MAX),
        "u16" => format!("a whole number from 0 to {}", u16::MAX),
        "u32" => format!("a whole number from 0 to {}", u32::MAX),
        "u64" | "usize" => format!("a whole number from 0 to {}", u64::MAX),
        "i64" | "i32" => "a whole number".into(),
        "a sequence" => "an array".into(),
        e if e.starts_with("struct ") || e == "a map" => "a table".into(),
        e if e.starts_with("a Decimal") => {
            "a decimal number, written as a string (\"0.10\")".into()
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_was_expected_and_never_repeat_a_string() {
        assert_eq!(
            plain("invalid type: string \"s3cret, expected x\", expected f64"),
            "expected a number, found a string"
        );
        assert_eq!(
            plain("invalid value: integer `-5`, expected u32"),
            "expected a whole number from 0 to 4294967295, found -5"
        );
        assert_eq!(
            plain("invalid type: map, expected a string"),
            "expected a string, found a table"
        );
        assert_eq!(plain("missing field `url`"), "missing field `url`");
    }

    #[test]
    fn a_line_the_tree_does_not_hold_is_named_by_its_table_and_key() {
        let text = "[risk]\nquantity_step \"1\"\n[[monitor.rules]]\nname = 1\n[data\n";
        assert_eq!(path_of_line(text, 2), "risk");
        assert_eq!(path_of_line(text, 4), "monitor.rules.name");
        assert_eq!(path_of_line(text, 5), "data");
        let text = "[risk]\nx = 1\n[step_pct = \"0.25\"\n\"\n";
        assert_eq!(path_of_line(text, 3), "risk.step_pct");
        assert_eq!(path_of_line(text, 4), "risk");
        assert_eq!(line_column("a\nbc", 3), (2, 2));
    }
}

#[cfg(test)]
mod file_tests {
    use crate::VigilConfig;

    fn report(text: &str) -> String {
        match VigilConfig::from_toml_str(text, "bad.toml") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_syntax_and_type_error_is_reported_with_its_key_path_line_and_column() {
        let text = r#"
[session]
name = paper
initial_cash = true

[store]
url = "postgres://ana:s3cret-pw@db/vigil

[data]
instruments = [{ symbol = "X", path = "x.csv" }, { symbol = 7, path = "y.csv" }, { path = "z.csv" }]
batch_size = "big"
speed = "fast"

[risk]
max_position_pct = 0.1.2
quantity_step = [1]
colour = "blue"

[monitor]
probe_interval_ms = -5

[[monitor.rules]]
name = "x"
metric = "cpu_usage_ratio"
op = ">"
value = "high"
level = "WARN"

[alerts.channels.email]
host = "smtp.example.com"
from = "a@example.com"
to = ["b@example.com"]
password = 12345678
username = "u"
"#;
        let report = report(text);
        for needle in [
            "session.name: invalid TOML: string values must be quoted, expected literal string (line 3, column 8)",
            "session.initial_cash: expected a decimal number, written as a string (\"0.10\"), found true (line 4, column 16)",
            "store.url: invalid TOML: invalid basic string, expected `\"`",
            "data.instruments[1].symbol: expected a string, found 7 (line 10, column 61)",
            "data.instruments[2]: missing field `symbol` (line 10, column 82)",
            "data.batch_size: expected a whole number from 0 to 18446744073709551615, found a string (line 11, column 14)",
            "data.speed: expected \"max\" or a positive number, got \"fast\" (line 12, column 9)",
            "risk.max_position_pct: invalid TOML: ",
            "risk.quantity_step: expected a decimal number, written as a string (\"0.10\"), found an array (line 16, column 17)",
            "monitor.probe_interval_ms: expected a whole number from 0 to 18446744073709551615, found -5 (line 20, column 21)",
            "monitor.rules[0].value: expected a number, found a string (line 26, column 9)",
            "risk.colour: unknown key",
            "alerts.channels.email.password: expected a string, found a number (line 33, column 12)",
        ] {
            assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
        }
        assert!(report.starts_with("bad.toml: 13 problems"), "{report}");
        // No string of the file is shown.
        for secret in ["s3cret", "12345678", "paper", "big"] {
            assert!(!report.contains(secret), "{secret} shown in:\n{report}");
        }
    }

    #[test]
    fn a_file_that_reads_lists_its_unknown_keys_and_bounds_together() {
        let report = report(
            "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\nbatch_size = 0\ncolour = 1\n",
        );
        assert!(report.contains("data.colour: unknown key"), "{report}");
        assert!(
            report.contains("data.batch_size: must be in [1, 65536]"),
            "{report}"
        );
    }
}
