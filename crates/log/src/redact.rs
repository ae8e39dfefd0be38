//! Secrets never reach a log line.

use std::borrow::Cow;

/// Replaces every occurrence of a known secret with `[REDACTED]`.
///
/// Secrets shorter than [`Redactor::MIN_LEN`] characters are refused: redacting "a" would
/// shred every line, and a secret that short is not one.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

impl Redactor {
    /// The shortest secret accepted.
    pub const MIN_LEN: usize = 6;

    /// Creates a redactor for `secrets`; returns the ones refused as too short.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> (Self, Vec<String>) {
        let (ok, short): (Vec<String>, Vec<String>) = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .partition(|s| s.chars().count() >= Self::MIN_LEN);
        let mut secrets = ok;
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        (Self { secrets }, short)
    }

    /// Tells whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Returns `text` with every secret replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), REDACTED));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_and_refuses_short_secrets() {
        let (r, short) = Redactor::new(["hunter22".to_string(), "abc".to_string()]);
        assert_eq!(short, vec!["abc".to_string()]);
        assert_eq!(
            r.redact("x hunter22 y hunter22"),
            "x [REDACTED] y [REDACTED]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }
}
