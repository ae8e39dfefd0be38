//! `vigil logs verify`: proves a log folder is complete and untouched.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::list_log_files;
use crate::writer::GENESIS_HASH;

/// The chain fields of one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Chained<'a> {
    pub(crate) seq: u64,
    pub(crate) prev_hash: &'a str,
    pub(crate) hash: &'a str,
    /// The bytes the hash covers: the line up to `,"hash"`.
    pub(crate) body: &'a str,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses the chain fields at the end of a line; `None` for anything not written by the
/// writer (a torn or hand-made line).
pub(crate) fn parse_chained(line: &str) -> Option<Chained<'_>> {
    let inner = line.strip_suffix('}')?;
    let hpos = inner.rfind(",\"hash\":\"")?;
    let hash = inner[hpos + 9..].strip_suffix('"')?;
    let body = &inner[..hpos];
    let ppos = body.rfind(",\"prev_hash\":\"")?;
    let prev_hash = body[ppos + 14..].strip_suffix('"')?;
    let spos = body[..ppos].rfind(",\"seq\":")?;
    let seq = body[spos + 7..ppos].parse().ok()?;
    (line.starts_with('{') && is_hex64(hash) && is_hex64(prev_hash)).then_some(Chained {
        seq,
        prev_hash,
        hash,
        body,
    })
}

fn sha256_hex(bytes: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    crate::writer::hex_into(&Sha256::digest(bytes), &mut out);
    out
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The line is not a complete chained log line (torn by a crash, or hand-made).
    Malformed,
    /// The line's content does not match its hash: it was edited.
    EditedLine,
    /// Sequence numbers jump forward: lines are missing before this one.
    LinesMissing {
        /// How many.
        count: u64,
    },
    /// Sequence numbers go backwards: lines or files are out of order.
    OutOfOrder,
    /// The line does not chain to the one before it (its `prev_hash` differs).
    ChainBroken,
    /// File numbers jump: whole files are missing.
    MissingFiles {
        /// First missing number.
        from: u64,
        /// Last missing number.
        to: u64,
    },
    /// The oldest file does not start the chain: earlier files are missing.
    ChainStartsMidway,
    /// The file's last line has no newline: it was cut short.
    TornTail,
    /// A file could not be read.
    Unreadable(String),
}

/// One finding, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number (0 for the file as a whole).
    pub line: u64,
    /// What.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        match &self.kind {
            ProblemKind::Malformed => f.write_str("not a complete log line (torn or hand-made)"),
            ProblemKind::EditedLine => f.write_str("content does not match its hash: line edited"),
            ProblemKind::LinesMissing { count } => {
                write!(f, "{count} line(s) missing before this one (sequence gap)")
            }
            ProblemKind::OutOfOrder => {
                f.write_str("sequence goes backwards: lines or files out of order")
            }
            ProblemKind::ChainBroken => {
                f.write_str("prev_hash does not match the previous line: chain broken")
            }
            ProblemKind::MissingFiles { from, to } => {
                write!(f, "log file number(s) {from}..={to} missing")
            }
            ProblemKind::ChainStartsMidway => {
                f.write_str("the oldest file does not start the chain: earlier files are missing")
            }
            ProblemKind::TornTail => f.write_str("last line has no newline: file cut short"),
            ProblemKind::Unreadable(e) => write!(f, "cannot read: {e}"),
        }
    }
}

/// The result of a verification.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Files read.
    pub files: usize,
    /// Lines read.
    pub lines: u64,
    /// Everything found, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Tells whether the folder verified clean.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks every log file of `dir` in order and checks every line: its hash, its link to
/// the line before, and gap-free sequence numbers, across files.
///
/// # Errors
/// Fails only when the folder cannot be listed; unreadable files are reported as problems.
pub fn verify_dir(dir: &Path) -> std::io::Result<VerifyReport> {
    let files = list_log_files(dir)?;
    let mut report = VerifyReport::default();
    let mut expect_seq: Option<u64> = None;
    let mut prev_hash: Option<String> = None;
    let mut prev_number: Option<u64> = None;
    let mut prev_date = None;
    for file in &files {
        report.files += 1;
        let mut problem = |line: u64, kind: ProblemKind| {
            report.problems.push(Problem {
                file: file.path.clone(),
                line,
                kind,
            });
        };
        if let Some(n) = prev_number
            && file.number != n + 1
        {
            problem(
                0,
                ProblemKind::MissingFiles {
                    from: n + 1,
                    to: file.number - 1,
                },
            );
        }
        if prev_date.is_some_and(|d| file.date < d) {
            problem(0, ProblemKind::OutOfOrder);
        }
        prev_number = Some(file.number);
        prev_date = Some(file.date);
        let reader = match std::fs::File::open(&file.path) {
            Ok(f) => BufReader::new(f),
            Err(e) => {
                problem(0, ProblemKind::Unreadable(e.to_string()));
                continue;
            }
        };
        let mut line_no = 0u64;
        for line in reader.split(b'\n') {
            line_no += 1;
            let raw = match line {
                Ok(l) => l,
                Err(e) => {
                    problem(line_no, ProblemKind::Unreadable(e.to_string()));
                    break;
                }
            };
            report.lines += 1;
            let text = String::from_utf8_lossy(&raw);
            let Some(c) = parse_chained(&text) else {
                problem(line_no, ProblemKind::Malformed);
                continue;
            };
            let kind = if sha256_hex(c.body.as_bytes()) != c.hash.as_bytes() {
                Some(ProblemKind::EditedLine)
            } else {
                match expect_seq {
                    None if c.prev_hash != GENESIS_HASH => Some(ProblemKind::ChainStartsMidway),
                    Some(e) if c.seq > e => Some(ProblemKind::LinesMissing { count: c.seq - e }),
                    Some(e) if c.seq < e => Some(ProblemKind::OutOfOrder),
                    _ => prev_hash
                        .as_deref()
                        .filter(|p| *p != c.prev_hash)
                        .map(|_| ProblemKind::ChainBroken),
                }
            };
            if let Some(kind) = kind {
                problem(line_no, kind);
            }
            // Resynchronise on this line so one fault is reported once.
            expect_seq = Some(c.seq + 1);
            prev_hash = Some(c.hash.to_string());
        }
        // `split` yields no empty item after a final newline; a torn tail shows as a line
        // that failed to parse. Say so explicitly when the file does not end in a newline.
        if let Ok(bytes) = std::fs::metadata(&file.path).map(|m| m.len())
            && bytes > 0
            && let Ok(mut f) = std::fs::File::open(&file.path)
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            if f.seek(SeekFrom::End(-1)).is_ok()
                && f.read_exact(&mut last).is_ok()
                && last[0] != b'\n'
            {
                problem(line_no, ProblemKind::TornTail);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_chain_fields() {
        let line = format!(
            "{{\"event\":\"x\",\"seq\":7,\"prev_hash\":\"{}\",\"hash\":\"{}\"}}",
            "0".repeat(64),
            "a".repeat(64)
        );
        let c = parse_chained(&line).expect("parsed");
        assert_eq!(c.seq, 7);
        assert_eq!(c.prev_hash, "0".repeat(64));
        assert!(c.body.ends_with(&format!("\"{}\"", "0".repeat(64))));
        assert!(parse_chained(&line[..line.len() - 5]).is_none());
    }
}
