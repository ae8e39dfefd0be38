//! Secrets never reach a log line — not whole, not in pieces, not encoded.
//!
//! A library that dumps the bytes it sends splits a header over 16-byte lines, so a line
//! never holds the whole secret; it may print it as hex, percent-encoded, in base64 (HTTP
//! basic auth), as a Rust byte array or with escapes. The redactor therefore replaces, in
//! every text it is given:
//!
//! - every run of [`WINDOW`] or more bytes that is a piece of a secret (each of the
//!   secret's 8-byte windows is looked up, so a piece anywhere in a line, at its start or
//!   at its end is found);
//! - the same pieces in base64 (standard and URL-safe alphabets, at every alignment);
//! - the same pieces written as hex digits (either case, with or without spaces, colons,
//!   dashes, commas or `0x` between them — the shape of a hex dump), as percent-encoding
//!   or backslash escapes, and as a list of decimal byte values (`[97, 45, 115, …]`);
//! - a secret shorter than [`WINDOW`] bytes, whole.
//!
//! A piece shorter than [`WINDOW`] bytes at the very edge of a split cannot be told from
//! ordinary text and stays: that is why wire-level library output is cut at the source (see
//! `tracing_layer`), with this as the backstop.
//!
//! A secret that is a URL (a webhook, a heartbeat) is replaced whole; its pieces are looked
//! for in the parts that carry the secret — the user info, the path and the query — not in
//! the scheme and host, which name a public server (`https://hooks.slack.com` would
//! otherwise vanish from every line that mentions it).

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// The length of the secret pieces looked for: any run of this many bytes of a secret (or
/// more) is replaced wherever it appears.
pub(crate) const WINDOW: usize = 8;

/// Hex digits per window: `WINDOW` bytes written as hex.
const HEX_WINDOW: usize = 2 * WINDOW;

/// A hasher for keys that are already uniformly random-ish bytes (windows of secrets):
/// one multiply, folded. The default SipHash would cost more than the rest of a lookup.
#[derive(Default, Clone, Copy)]
struct FoldHasher(u64);

impl FoldHasher {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    fn mix(&mut self, x: u64) {
        let m = u128::from(self.0 ^ x) * u128::from(Self::K);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut k = [0u8; 8];
            k[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(k));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.mix(x);
    }

    fn write_u128(&mut self, x: u128) {
        self.mix(x as u64);
        self.mix((x >> 64) as u64);
    }
}

type Set<K> = HashSet<K, BuildHasherDefault<FoldHasher>>;

/// Replaces every known secret, and every piece and encoding of one, with `[REDACTED]`.
///
/// Secrets shorter than [`Redactor::MIN_LEN`] characters are refused: redacting "a" would
/// shred every line, and a secret that short is not one.
#[derive(Clone, Default)]
pub struct Redactor {
    /// How many secrets (for `Debug`, which never shows them).
    count: usize,
    /// Replaced whole: secrets shorter than a window, and URL secrets; with whether it must
    /// be looked for in every text (no part of it is long enough to be found in pieces).
    whole: Vec<(String, bool)>,
    /// Every `WINDOW`-byte window of every secret part, raw and in base64.
    windows: Set<u64>,
    /// Every pair of adjacent bytes inside those windows: a text position whose pair is not
    /// here cannot be inside a match, which skips most of a text without a lookup.
    pairs: Vec<u64>,
    /// Every `HEX_WINDOW`-digit window of the lowercase hex of every secret part.
    hex: Set<u128>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.count)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// The shortest secret accepted.
    pub const MIN_LEN: usize = 6;

    /// The length of the pieces of a secret that are replaced wherever they appear.
    pub const PIECE_LEN: usize = WINDOW;

    /// Creates a redactor for `secrets`; returns the ones refused as too short.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> (Self, Vec<String>) {
        let (ok, short): (Vec<String>, Vec<String>) = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .partition(|s| s.chars().count() >= Self::MIN_LEN);
        let mut secrets = ok;
        secrets.sort();
        secrets.dedup();
        let mut r = Self {
            count: secrets.len(),
            pairs: vec![0; 1 << 10],
            ..Self::default()
        };
        for s in &secrets {
            let parts = secret_parts(s);
            if s.len() < WINDOW || s.contains("://") {
                let pieces = parts.iter().any(|p| p.len() >= WINDOW);
                r.whole.push((s.clone(), !pieces));
            }
            for part in parts {
                r.add_part(part.as_bytes());
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        r.whole.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        (r, short)
    }

    fn add_part(&mut self, part: &[u8]) {
        if part.len() < WINDOW {
            return;
        }
        self.add_windows(part);
        for url_safe in [false, true] {
            for skip in 0..3 {
                let b64 = base64_core(part, skip, url_safe);
                self.add_windows(b64.as_bytes());
            }
        }
        let hex: Vec<u8> = part
            .iter()
            .flat_map(|b| {
                [
                    HEX_DIGITS[usize::from(b >> 4)],
                    HEX_DIGITS[usize::from(b & 15)],
                ]
            })
            .collect();
        for w in hex.windows(HEX_WINDOW) {
            self.hex
                .insert(w.iter().fold(0u128, |acc, &c| acc << 8 | u128::from(c)));
        }
    }

    fn add_windows(&mut self, form: &[u8]) {
        for w in form.windows(WINDOW) {
            self.windows.insert(window_key(w));
            for p in w.windows(2) {
                let i = pair_index(p[0], p[1]);
                self.pairs[i / 64] |= 1 << (i % 64);
            }
        }
    }

    /// Tells whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Returns `text` with every secret, and every piece or encoding of one, replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut spans = Vec::new();
        self.find(text, &mut spans);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (mut start, mut end) in spans {
            // A match may start or end inside a character: widen it to whole characters.
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut at = 0;
        for (start, end) in merged {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Collects the byte ranges of `text` to replace.
    fn find(&self, text: &str, spans: &mut Vec<(usize, usize)>) {
        let bytes = text.as_bytes();
        if !self.windows.is_empty() {
            self.each_window(bytes, |i| spans.push((i, i + WINDOW)));
            self.hex_pieces(bytes, spans);
            if bytes.iter().any(|&b| b == b'%' || b == b'\\') {
                let (decoded, from) = unescape(bytes);
                self.each_window(&decoded, |i| {
                    spans.push((from[i].0, from[i + WINDOW - 1].1))
                });
            }
            if bytes.contains(&b',') {
                decimal_runs(bytes, |decoded, from| {
                    self.each_window(decoded, |i| spans.push((from[i].0, from[i + WINDOW - 1].1)));
                });
            }
        }
        for (s, always) in &self.whole {
            // A URL with a part long enough to hold a piece is only ever here if a piece of
            // it is.
            if !always && spans.is_empty() {
                continue;
            }
            spans.extend(
                text.match_indices(s.as_str())
                    .map(|(i, m)| (i, i + m.len())),
            );
        }
    }

    fn has_pair(&self, a: u8, b: u8) -> bool {
        let i = pair_index(a, b);
        self.pairs[i / 64] & (1 << (i % 64)) != 0
    }

    /// Calls `hit` with the start of every `WINDOW`-byte window of `b` that is a window of a
    /// secret.
    fn each_window(&self, b: &[u8], mut hit: impl FnMut(usize)) {
        if b.len() < WINDOW {
            return;
        }
        let last = b.len() - WINDOW;
        let mut i = 0;
        while i <= last {
            // Every window starting in i..=j holds the pair at j: if no secret window has
            // that pair, none of them can match.
            let j = i + WINDOW - 2;
            if !self.has_pair(b[j], b[j + 1]) {
                i = j + 1;
                continue;
            }
            if self.windows.contains(&window_key(&b[i..i + WINDOW])) {
                hit(i);
            }
            i += 1;
        }
    }

    /// Finds secret pieces written as hex digits: runs of hex digits, in either case, that
    /// may be broken by the separators of a hex dump (spaces, `:`, `-`, `,`, `_`, `|`, and
    /// `0x` / `\x` prefixes), looked up `HEX_WINDOW` digits at a time at every offset.
    fn hex_pieces(&self, b: &[u8], spans: &mut Vec<(usize, usize)>) {
        let class = |i: usize| HEX_CLASS[usize::from(b[i])];
        let mut i = 0;
        while i + HEX_WINDOW <= b.len() {
            // A run holding a window is at least HEX_WINDOW bytes long, so it cannot start
            // before the last byte in the next HEX_WINDOW that breaks runs: most text is
            // skipped a window at a time.
            if let Some(k) = (i..i + HEX_WINDOW).rev().find(|&k| class(k) == OTHER) {
                i = k + 1;
                continue;
            }
            let mut acc: u128 = 0;
            let mut run = 0usize;
            let mut pos = [0usize; HEX_WINDOW];
            while i < b.len() {
                let c = b[i];
                match class(i) {
                    DIGIT => {
                        acc = acc << 8 | u128::from(c | 0x20);
                        pos[run % HEX_WINDOW] = i;
                        run += 1;
                        if run >= HEX_WINDOW && self.hex.contains(&acc) {
                            spans.push((pos[run % HEX_WINDOW], i + 1));
                        }
                    }
                    SEPARATOR => {}
                    // `0x`: the 0 was no digit of the dump.
                    PREFIX if i > 0 && b[i - 1] == b'0' && run > 0 => {
                        acc >>= 8;
                        run -= 1;
                    }
                    PREFIX if i > 0 && b[i - 1] == b'\\' => {}
                    _ => break,
                }
                i += 1;
            }
            i += 1;
        }
    }
}

/// What of a secret is looked for in pieces: a URL's user info, path and query (its scheme
/// and host name a public server); anything else whole.
fn secret_parts(s: &str) -> Vec<String> {
    let Some(i) = s.find("://") else {
        return vec![s.to_string()];
    };
    let rest = &s[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut parts = Vec::new();
    if let Some(at) = authority.rfind('@') {
        let user = &authority[..at];
        parts.push(user.split_once(':').map_or(user, |(_, p)| p).to_string());
    }
    if !tail.is_empty() {
        parts.push(tail.to_string());
    }
    parts
}

fn window_key(w: &[u8]) -> u64 {
    let mut k = [0u8; WINDOW];
    k.copy_from_slice(w);
    u64::from_le_bytes(k)
}

fn pair_index(a: u8, b: u8) -> usize {
    usize::from(a) << 8 | usize::from(b)
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The class of each byte for [`Redactor::hex_pieces`].
const OTHER: u8 = 0;
const DIGIT: u8 = 1;
const SEPARATOR: u8 = 2;
const PREFIX: u8 = 3;
const HEX_CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => DIGIT,
            b' ' | b'\t' | b'\r' | b'\n' | b':' | b'-' | b',' | b'_' | b'|' | b'\\' => SEPARATOR,
            b'x' | b'X' => PREFIX,
            _ => OTHER,
        };
        c += 1;
    }
    t
};

/// The base64 digits of `part` that depend on its bytes alone when it follows `skip` other
/// bytes (0, 1 or 2) in the encoded stream: the form it takes inside any longer base64
/// text, such as an HTTP basic-auth header (`key:secret`).
fn base64_core(part: &[u8], skip: usize, url_safe: bool) -> String {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let alphabet = if url_safe { URL } else { STD };
    let mut data = vec![0u8; skip];
    data.extend_from_slice(part);
    let bits = data.len() * 8;
    let (first, last) = (skip * 8, bits);
    let mut out = String::new();
    let mut bit = 0;
    while bit + 6 <= bits {
        if bit >= first && bit + 6 <= last {
            let mut v = 0usize;
            for k in bit..bit + 6 {
                v = v << 1 | usize::from(data[k / 8] >> (7 - k % 8) & 1);
            }
            out.push(char::from(alphabet[v]));
        }
        bit += 6;
    }
    out
}

/// `b` with percent-encoding (`%2F`) and backslash escapes (`\"`, `\\`, `\n`, `\x41`,
/// `\u{e9}`) decoded, and for each decoded byte the range of `b` it came from.
fn unescape(b: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut from = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let pair = |at: usize| Some(hex(*b.get(at)?)? << 4 | hex(*b.get(at + 1)?)?);
        let (byte, len) = match b[i] {
            b'%' => match pair(i + 1) {
                Some(v) => (v, 3),
                None => (b'%', 1),
            },
            b'\\' => match b.get(i + 1) {
                Some(b'x') => match pair(i + 2) {
                    Some(v) => (v, 4),
                    None => (b'\\', 1),
                },
                Some(b'n') => (b'\n', 2),
                Some(b'r') => (b'\r', 2),
                Some(b't') => (b'\t', 2),
                Some(b'0') => (0, 2),
                Some(&c @ (b'\\' | b'"' | b'\'' | b'/')) => (c, 2),
                Some(b'u') => {
                    let body = &b[i + 2..];
                    let close = body.iter().position(|&c| c == b'}');
                    let ch = close
                        .filter(|_| body.first() == Some(&b'{'))
                        .and_then(|c| std::str::from_utf8(&body[1..c]).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .and_then(char::from_u32);
                    if let (Some(ch), Some(close)) = (ch, close) {
                        let mut buf = [0u8; 4];
                        let len = close + 3;
                        for &e in ch.encode_utf8(&mut buf).as_bytes() {
                            out.push(e);
                            from.push((i, i + len));
                        }
                        i += len;
                        continue;
                    }
                    (b'\\', 1)
                }
                _ => (b'\\', 1),
            },
            c => (c, 1),
        };
        out.push(byte);
        from.push((i, i + len));
        i += len;
    }
    (out, from)
}

/// Calls `each` with every run of at least `WINDOW` decimal byte values separated by commas
/// (`[97, 45, 115, …]`, how Rust prints a byte slice), decoded, with the range of `b` each
/// byte came from.
fn decimal_runs(b: &[u8], mut each: impl FnMut(&[u8], &[(usize, usize)])) {
    let mut run = Vec::new();
    let mut from = Vec::new();
    let mut flush = |run: &mut Vec<u8>, from: &mut Vec<(usize, usize)>| {
        if run.len() >= WINDOW {
            each(run, from);
        }
        run.clear();
        from.clear();
    };
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let value = std::str::from_utf8(&b[start..i])
            .ok()
            .and_then(|d| d.parse::<u8>().ok());
        let Some(v) = value.filter(|_| i - start <= 3) else {
            flush(&mut run, &mut from);
            continue;
        };
        run.push(v);
        from.push((start, i));
        // The next value follows a comma (and spaces), or the run ends.
        let mut j = i;
        if b.get(j) == Some(&b',') {
            j += 1;
            while b.get(j) == Some(&b' ') {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                i = j;
                continue;
            }
        }
        flush(&mut run, &mut from);
    }
    flush(&mut run, &mut from);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Zq7pLx2Vb9RtKw4Ns8Hd3Fg6Jm1Yc5Ue0";

    fn redactor() -> Redactor {
        Redactor::new([SECRET.to_string()]).0
    }

    /// Every `WINDOW`-byte piece of `SECRET`.
    fn pieces() -> Vec<&'static str> {
        (0..=SECRET.len() - WINDOW)
            .map(|i| &SECRET[i..i + WINDOW])
            .collect()
    }

    /// Asserts that no piece of the secret, raw or as lowercase hex, survives in `text`
    /// (with spaces removed, as a hex dump's groups are).
    fn assert_clean(text: &str) {
        let squeezed: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        for p in pieces() {
            assert!(!text.contains(p), "{p:?} survives in {text:?}");
            let hex: String = p.bytes().map(|b| format!("{b:02x}")).collect();
            assert!(
                !squeezed.contains(&hex),
                "hex of {p:?} survives in {text:?}"
            );
        }
    }

    #[test]
    fn replaces_every_occurrence_and_refuses_short_secrets() {
        let (r, short) = Redactor::new(["hunter22".to_string(), "abc".to_string()]);
        assert_eq!(short, vec!["abc".to_string()]);
        assert_eq!(
            r.redact("x hunter22 y hunter22"),
            "x [REDACTED] y [REDACTED]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        // A secret shorter than a window is replaced whole, and only whole.
        let (r, _) = Redactor::new(["s3cr3t".to_string()]);
        assert_eq!(r.redact("a s3cr3t b s3cr"), "a [REDACTED] b s3cr");
    }

    #[test]
    fn every_piece_of_eight_bytes_is_replaced_wherever_it_is() {
        let r = redactor();
        for (i, p) in pieces().into_iter().enumerate() {
            for text in [
                p.to_string(),
                format!("start {p}"),
                format!("{p} end"),
                format!("x{p}y"),
                format!("é{p}€"),
            ] {
                let out = r.redact(&text);
                assert_clean(&out);
                assert!(out.contains(REDACTED), "piece {i} in {text:?}: {out:?}");
            }
        }
        // Seven bytes are not a piece: ordinary text is left alone.
        let seven = &SECRET[3..10];
        assert!(matches!(r.redact(seven), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_split_over_hex_dump_lines_is_gone_from_each_line() {
        // What an HTTP library's byte dump looks like: 16 bytes a line, hex in groups of two
        // bytes, then the printable characters.
        let request = format!("GET /v2/account HTTP/1.1\r\nAPCA-API-SECRET-KEY: {SECRET}\r\n\r\n");
        let r = redactor();
        for row in request.as_bytes().chunks(16) {
            let mut line = String::new();
            for (i, b) in row.iter().enumerate() {
                line.push_str(&format!("{b:02x}"));
                if i % 2 == 1 {
                    line.push(' ');
                }
            }
            line.push(' ');
            line.extend(row.iter().map(|&b| {
                if b.is_ascii_graphic() {
                    char::from(b)
                } else {
                    '.'
                }
            }));
            let out = r.redact(&line);
            assert_clean(&out);
            // The same line in upper case, and with a space between every byte.
            assert_clean(&r.redact(&line.to_uppercase()));
            let spaced: Vec<String> = row.iter().map(|b| format!("{b:02X}")).collect();
            assert_clean(&r.redact(&spaced.join(" ")));
            let colons: Vec<String> = row.iter().map(|b| format!("0x{b:02x}")).collect();
            assert_clean(&r.redact(&colons.join(", ")));
        }
        // The middle lines carried 16 bytes of it: they were redacted.
        assert!(r.redact(&SECRET[5..21]).contains(REDACTED));
    }

    #[test]
    fn hex_at_any_offset_of_a_longer_dump_is_found() {
        let r = redactor();
        for lead in ["", "a", "7b22", "7b2"] {
            let text: String = format!(
                "payload: 0x{lead}{}00ff",
                SECRET
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            let out = r.redact(&text);
            assert_clean(&out);
            assert!(out.starts_with("payload: "), "{out}");
        }
    }

    #[test]
    fn encoded_forms_are_replaced() {
        let r = redactor();
        let piece = &SECRET[4..20];
        let percent: String = piece.bytes().map(|b| format!("%{b:02X}")).collect();
        let escaped: String = piece.bytes().map(|b| format!("\\x{b:02x}")).collect();
        let bytes = format!("{:?}", piece.as_bytes());
        let unicode: String = piece
            .chars()
            .map(|c| format!("\\u{{{:x}}}", c as u32))
            .collect();
        for text in [
            format!("GET /x?key={percent}&a=1"),
            format!("b\"{escaped}\""),
            format!("buf: {bytes}"),
            format!("s: \"{unicode}\""),
        ] {
            let out = r.redact(&text);
            assert!(out.contains(REDACTED), "{text:?}: {out:?}");
            assert!(!out.contains(&percent) && !out.contains(&escaped), "{out}");
            assert!(!out.contains(&bytes[1..bytes.len() - 1]), "{out}");
        }
        // Base64: alone, after `key:` (HTTP basic auth) at every alignment, URL-safe too.
        for prefix in ["", "k", "ke", "key:", "a-key-id:"] {
            let raw = format!("{prefix}{SECRET}");
            for url_safe in [false, true] {
                let b64 = base64_core(raw.as_bytes(), 0, url_safe);
                let text = format!("Authorization: Basic {b64}==");
                let out = r.redact(&text);
                assert!(out.contains(REDACTED), "{text}: {out}");
                // The digits that depend on the secret alone: none of 12 in a row is left.
                let (first, last) = (prefix.len() * 8, raw.len() * 8);
                let inside: Vec<usize> = (0..b64.len())
                    .filter(|i| i * 6 >= first && i * 6 + 6 <= last)
                    .collect();
                for w in inside.windows(12) {
                    let piece = &b64[w[0]..w[11] + 1];
                    assert!(!out.contains(piece), "base64 piece {piece} survives: {out}");
                }
            }
        }
    }

    #[test]
    fn base64_cores_match_a_real_encoder() {
        // RFC 4648 test vectors.
        assert_eq!(base64_core(b"foobar", 0, false), "Zm9vYmFy");
        assert_eq!(base64_core(b"fooba", 0, false), "Zm9vYm");
        // After one byte, the first two digits depend on it: "\0fooba" → "AGZvb2Jh".
        assert_eq!(base64_core(b"fooba", 1, false), "Zvb2Jh");
        assert_eq!(base64_core(&[0xfb, 0xff, 0xbf], 0, true), "-_-_");
    }

    #[test]
    fn a_url_secret_is_replaced_whole_and_in_pieces_but_its_host_is_not() {
        let url = "https://hooks.example.com/services/T0001/B0002/abcdefghijklmnop";
        let (r, _) = Redactor::new([url.to_string()]);
        assert_eq!(
            r.redact(&format!("posting to {url}")),
            "posting to [REDACTED]"
        );
        let out = r.redact("POST /services/T0001/B0002/abcdefgh split");
        assert!(!out.contains("B0002/abcdefgh"), "{out}");
        assert_eq!(
            r.redact("see https://hooks.example.com/status"),
            "see https://hooks.example.com/status"
        );
        let (r, _) = Redactor::new(["postgres://ana:pa55-w0rd-long@db/x".to_string()]);
        assert_eq!(
            r.redact("auth pa55-w0rd-long failed"),
            "auth [REDACTED] failed"
        );
    }

    #[test]
    fn overlapping_matches_and_multibyte_text_give_one_clean_replacement() {
        let r = redactor();
        let text = format!("«{SECRET}{SECRET}» and «{}»", &SECRET[10..]);
        assert_eq!(r.redact(&text), "«[REDACTED]» and «[REDACTED]»");
        // A secret with multi-byte characters: a piece of it that starts inside a
        // character matches from a character of the text with the same last byte
        // ("ѻ" ends in 0xbb, like the "л" of the secret), and the whole character goes.
        let (r, _) = Redactor::new(["ключ-секрет-доступа".to_string()]);
        assert_eq!(r.redact("aѻюч-секрет b"), "a[REDACTED] b");
        // Pieces are counted in bytes: four of these characters are a piece, three are not.
        assert_eq!(r.redact("x секр y"), "x [REDACTED] y");
        assert_eq!(r.redact("x сек y"), "x сек y");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", redactor());
        assert!(!text.contains(&SECRET[..WINDOW]), "{text}");
        assert!(text.contains("secrets: 1"), "{text}");
    }

    /// `cargo test --release -p vigil-log redact_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement"]
    fn redact_cost() {
        let (r, _) = Redactor::new([
            SECRET.to_string(),
            "a-feed-secret-0123456789".to_string(),
            "pa55-w0rd-long".to_string(),
            "https://hooks.example.com/services/T0001/B0002/abcdefghijklmnop".to_string(),
        ]);
        let texts = [
            "tx_20121205T000000_GOOG-1",
            "order rejected by the venue: insufficient buying power for 33 GOOG at 799.78",
            "GOOG",
            "4745 5420 2f76 322f 6163 636f 756e 7420 GET /v2/account ",
        ];
        let n = 1_000_000;
        let t0 = std::time::Instant::now();
        let mut kept = 0;
        for i in 0..n {
            kept += r.redact(texts[i % texts.len()]).len();
        }
        let per = t0.elapsed().as_nanos() as f64 / n as f64;
        println!("redact: {per:.0} ns a text ({kept})");
    }
}
