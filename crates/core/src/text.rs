//! Text that came from outside (an operator's request, a stored record, a log line) made safe
//! to print on a terminal, where a raw ESC could move the cursor, recolour or rewrite what
//! the operator reads, and a raw CR or LF could forge a line.

use std::borrow::Cow;

/// `text` escaped for XML and HTML content and attribute values (`&`, `<`, `>`, `"`, `'`):
/// the HTML report's text, the TwiML a phone call speaks.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Whether `c` can drive a terminal or hide text when printed as is: a C0 control
/// (U+0000–U+001F, tab and line breaks included), DEL (U+007F), a C1 control
/// (U+0080–U+009F), or a Unicode bidirectional formatting character (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069), which reorders the text shown around it.
pub fn is_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `s` with every [`is_control`] character written as a visible escape: `\n`, `\r` and `\t`
/// for those three, `\x1b` for the other ASCII ones, `\u{9b}` for the rest; everything else
/// as it is (a backslash included: this is for reading, not a reversible encoding).
/// Borrowed when there is nothing to escape.
///
/// Every human-readable printer of text vigil did not write itself goes through this.
///
/// ```
/// assert_eq!(vigil_core::escape_controls("ana\u{1b}[2Jx\r\n"), "ana\\x1b[2Jx\\r\\n");
/// assert_eq!(vigil_core::escape_controls("plain"), "plain");
/// ```
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) && c.is_ascii() => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if is_control(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The first [`is_control`] character of `s`, if any, as `U+001B` for messages.
pub fn first_control(s: &str) -> Option<String> {
    s.chars()
        .find(|&c| is_control(c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_c0_del_c1_and_bidi_and_nothing_else() {
        assert_eq!(
            escape_controls("a\u{1b}[31mb\rc\nd\te\u{0}f\u{7f}g\u{9b}h\u{202e}i"),
            "a\\x1b[31mb\\rc\\nd\\te\\x00f\\x7fg\\u{9b}h\\u{202e}i"
        );
        for ok in [
            "",
            "GOOG 1.5",
            "café ünïcode 日本",
            "back\\slash",
            "\u{a0}nbsp",
        ] {
            assert!(matches!(escape_controls(ok), Cow::Borrowed(_)), "{ok:?}");
        }
    }

    #[test]
    fn escaped_text_has_no_control_left() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let s = format!("x{c}y");
            let escaped = escape_controls(&s);
            assert!(!escaped.chars().any(is_control), "{c:?} -> {escaped:?}");
            assert_eq!(first_control(&s).is_some(), is_control(c), "{c:?}");
        }
        assert_eq!(first_control("who\u{1b}"), Some("U+001B".into()));
    }
}
