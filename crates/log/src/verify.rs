//! `vigil logs verify`: proves a log folder is complete and untouched, as far as the chain,
//! its key and the anchors recorded outside it can prove.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::chain::{Anchor, AnchorKind, ChainKey, digest_hex};
use crate::files::list_log_files;
use crate::writer::GENESIS_HASH;

/// The chain fields of one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Chained<'a> {
    pub(crate) seq: u64,
    pub(crate) prev_hash: &'a str,
    /// The line's `hash`, or its `hmac` in a keyed chain.
    pub(crate) hash: &'a str,
    /// The hash is an HMAC with the chain's key (the field is `"hmac"`).
    pub(crate) keyed: bool,
    /// The bytes the hash covers: the line up to `,"hash"` (or `,"hmac"`).
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
    // `…,"hash":"<64 hex>"}` or `…,"hmac":"<64 hex>"}`.
    let q = line.strip_suffix("\"}")?;
    let hash = q.get(q.len().checked_sub(64)?..)?;
    let tagged = q.get(..q.len() - 64)?;
    let (body, keyed) = match (
        tagged.strip_suffix(",\"hash\":\""),
        tagged.strip_suffix(",\"hmac\":\""),
    ) {
        (Some(body), _) => (body, false),
        (None, Some(body)) => (body, true),
        (None, None) => return None,
    };
    let ppos = body.rfind(",\"prev_hash\":\"")?;
    let prev_hash = body[ppos + 14..].strip_suffix('"')?;
    let spos = body[..ppos].rfind(",\"seq\":")?;
    let seq = body[spos + 7..ppos].parse().ok()?;
    (line.starts_with('{') && is_hex64(hash) && is_hex64(prev_hash)).then_some(Chained {
        seq,
        prev_hash,
        hash,
        keyed,
        body,
    })
}

/// The chain fields of one line read on its own (a line received from elsewhere: the fleet
/// monitor checks every node's lines as they arrive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineLink {
    /// Its sequence number.
    pub seq: u64,
    /// The hash of the line before it.
    pub prev_hash: String,
    /// Its own hash (or HMAC, in a keyed chain).
    pub hash: String,
    /// The chain is keyed (the line carries an HMAC).
    pub keyed: bool,
    /// Its content matches its hash: `Some(false)` means edited (or, keyed, the key is
    /// another's); `None` for a keyed line when no key was given.
    pub intact: Option<bool>,
}

/// Reads one line's chain fields and checks its content against its hash (its HMAC with
/// `key`, in a keyed chain); `None` when it is not a complete chained line.
pub fn line_link(line: &str, key: Option<&ChainKey>) -> Option<LineLink> {
    let c = parse_chained(line.trim_end_matches(['\n', '\r']))?;
    let intact = match (key, c.keyed) {
        (_, false) => Some(digest_hex(None, c.body.as_bytes()) == c.hash.as_bytes()),
        (Some(key), true) => Some(digest_hex(Some(key), c.body.as_bytes()) == c.hash.as_bytes()),
        (None, true) => None,
    };
    Some(LineLink {
        seq: c.seq,
        prev_hash: c.prev_hash.to_string(),
        hash: c.hash.to_string(),
        keyed: c.keyed,
        intact,
    })
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The line is not a complete chained log line (torn by a crash, or hand-made).
    Malformed,
    /// The line's content does not match its hash: it was edited.
    EditedLine,
    /// The line's content does not match its HMAC: it was edited, or the key given is not
    /// the one the log was written with.
    BadMac,
    /// A plain SHA-256 line where the chain is keyed: written without the key (forged), or
    /// the key was given for a log that has none.
    NotKeyed,
    /// The chain is keyed and no key was given: the HMACs could not be checked.
    KeyNeeded,
    /// A keyed line follows plain ones (or the reverse): one folder holds one kind of chain.
    ChainKindChanged,
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
    /// The line at an anchored sequence number is not the line the anchor recorded: this
    /// line or lines before it were changed and the chain re-hashed after them.
    AnchorMismatch {
        /// The anchor.
        anchor: Anchor,
        /// Where the line is found, when not in the anchored file.
        found_in: Option<String>,
        /// The newest earlier anchor that still matches (the change is after it).
        last_good: Option<u64>,
    },
    /// The file an anchor names is gone: a file was deleted (the newest, or every file
    /// after a point).
    AnchoredFileMissing {
        /// The anchor (its file is the missing one).
        anchor: Anchor,
    },
    /// The log ends before an anchored line: lines were cut from its end.
    Truncated {
        /// The anchor beyond the end.
        anchor: Anchor,
        /// The last sequence number the folder holds.
        last_seq: Option<u64>,
    },
    /// An anchored line is missing from inside the log.
    AnchoredLineMissing {
        /// The anchor.
        anchor: Anchor,
    },
    /// Lines follow the line vigil recorded as its last when it stopped: appended since.
    AfterStop {
        /// How many.
        count: u64,
        /// The stop anchor.
        anchor: Anchor,
    },
    /// The store anchors other chains but not this folder's: its first line was changed
    /// (and everything re-hashed), or the store is another log's.
    ChainNotAnchored {
        /// This folder's chain (the hash of its first line).
        chain: String,
        /// How many chains the store anchors.
        others: usize,
    },
    /// More anchors failed than are listed one by one.
    MoreAnchorProblems {
        /// How many more.
        count: usize,
    },
}

/// At most this many anchor problems are listed one by one; the rest are counted.
const ANCHOR_PROBLEMS_LISTED: usize = 10;

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
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
        let at = |a: &Anchor| {
            format!(
                "the store's {} anchor of {} (seq {}, hash {}…)",
                a.kind.as_str(),
                a.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                a.seq,
                short(&a.hash)
            )
        };
        match &self.kind {
            ProblemKind::Malformed => f.write_str("not a complete log line (torn or hand-made)"),
            ProblemKind::EditedLine => f.write_str("content does not match its hash: line edited"),
            ProblemKind::BadMac => f.write_str(
                "content does not match its HMAC: line edited, or the key is not this log's",
            ),
            ProblemKind::NotKeyed => f.write_str(
                "a plain SHA-256 line in a keyed chain: written without the key (forged)",
            ),
            ProblemKind::KeyNeeded => f.write_str(
                "the chain is keyed (HMAC): give its key (log.hmac_key_file in --config, or \
                 --key-file) to check the lines; without it only their order and links are checked",
            ),
            ProblemKind::ChainKindChanged => f.write_str(
                "the chain changes between plain and keyed (HMAC) lines here: vigil never \
                 mixes them in one folder",
            ),
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
            ProblemKind::AnchorMismatch {
                anchor,
                found_in,
                last_good,
            } => {
                write!(f, "seq {} does not match {}", anchor.seq, at(anchor))?;
                if let Some(file) = found_in {
                    write!(f, " (anchored in {file}, found here)")?;
                }
                f.write_str(": lines up to it were changed and the chain re-hashed")?;
                match last_good {
                    Some(seq) => write!(f, " after seq {seq}, the last anchored line that matches"),
                    None => Ok(()),
                }
            }
            ProblemKind::AnchoredFileMissing { anchor } => write!(
                f,
                "missing, but {} names it: the file was deleted",
                at(anchor)
            ),
            ProblemKind::Truncated { anchor, last_seq } => {
                let end =
                    last_seq.map_or("holds no line".to_string(), |s| format!("ends at seq {s}"));
                write!(
                    f,
                    "the log {end}, but {} says seq {} was written: lines were cut from its end",
                    at(anchor),
                    anchor.seq
                )
            }
            ProblemKind::AnchoredLineMissing { anchor } => write!(
                f,
                "seq {} is not in the file, but {} recorded it there: lines were deleted",
                anchor.seq,
                at(anchor)
            ),
            ProblemKind::AfterStop { count, anchor } => write!(
                f,
                "{count} line(s) from here follow the line vigil recorded as its last when it \
                 stopped ({}): appended afterwards, not by vigil",
                at(anchor)
            ),
            ProblemKind::ChainNotAnchored { chain, others } => write!(
                f,
                "the store anchors {others} chain(s) but not this log's (its first line's hash \
                 {}…): the first lines were changed and the chain re-hashed, or the store is \
                 another log's",
                short(chain)
            ),
            ProblemKind::MoreAnchorProblems { count } => {
                write!(f, "and {count} more anchor(s) that do not match the log")
            }
        }
    }
}

/// What the anchors of a verification are.
#[derive(Clone, Debug, Default)]
pub struct AnchorSet {
    /// The anchors recorded under this folder's chain, in the order they were recorded.
    pub anchors: Vec<Anchor>,
    /// How many other chains the store anchors.
    pub other_chains: usize,
}

/// What a verification checks besides the chain itself.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The key of a keyed chain (`log.hmac_key_file`): every line must then carry an HMAC
    /// with it.
    pub key: Option<ChainKey>,
    /// The anchors read from the store; `None`: no store was read (the report says what
    /// that leaves unchecked).
    pub anchors: Option<AnchorSet>,
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
    /// Anchors checked against the log.
    pub anchors: usize,
    /// What could not be checked, and why (not problems).
    pub unchecked: Vec<String>,
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
    verify_dir_with(dir, &VerifyOptions::default())
}

/// Where an anchored sequence number was first found.
struct Found {
    file: PathBuf,
    name: String,
    line: u64,
    hash: String,
}

/// As [`verify_dir`], and checks every line's HMAC with `opts.key`, and the log against the
/// anchors of `opts.anchors`: an anchored line that changed, a file an anchor names that is
/// gone, a log that ends before its last anchor, lines after the last stop.
///
/// # Errors
/// Fails only when the folder cannot be listed; unreadable files are reported as problems.
pub fn verify_dir_with(dir: &Path, opts: &VerifyOptions) -> std::io::Result<VerifyReport> {
    let files = list_log_files(dir)?;
    let mut report = VerifyReport::default();
    let anchors: &[Anchor] = opts.anchors.as_ref().map_or(&[], |a| &a.anchors);
    let mut found: HashMap<u64, Option<Found>> = anchors.iter().map(|a| (a.seq, None)).collect();
    let last_anchor = anchors.last();
    // Lines after the last anchor: where the first is, and how many.
    let mut after_last: Option<(PathBuf, u64, u64)> = None;
    let mut last_seq: Option<u64> = None;
    let mut names = HashSet::new();
    let mut expect_seq: Option<u64> = None;
    let mut prev_hash: Option<String> = None;
    let mut prev_number: Option<u64> = None;
    let mut prev_date = None;
    let mut first_keyed: Option<bool> = None;
    let mut prev_keyed: Option<bool> = None;
    let mut key_needed_said = false;
    for file in &files {
        report.files += 1;
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        names.insert(name.clone());
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
            if first_keyed.is_some_and(|k| k != c.keyed) && prev_keyed != Some(c.keyed) {
                problem(line_no, ProblemKind::ChainKindChanged);
            }
            first_keyed.get_or_insert(c.keyed);
            let run_starts = prev_keyed != Some(c.keyed);
            prev_keyed = Some(c.keyed);
            // The line's own hash: a problem, or nothing more to say about it (a plain line
            // in a keyed chain is reported at the first of its run only), or checked.
            let own = match (&opts.key, c.keyed) {
                (Some(key), true) => (digest_hex(Some(key), c.body.as_bytes())
                    != c.hash.as_bytes())
                .then_some(Some(ProblemKind::BadMac)),
                (Some(_), false) => Some(run_starts.then_some(ProblemKind::NotKeyed)),
                (None, true) => {
                    if !key_needed_said {
                        key_needed_said = true;
                        problem(line_no, ProblemKind::KeyNeeded);
                    }
                    None
                }
                (None, false) => (digest_hex(None, c.body.as_bytes()) != c.hash.as_bytes())
                    .then_some(Some(ProblemKind::EditedLine)),
            };
            let kind = match own {
                Some(kind) => kind,
                None => match expect_seq {
                    None if c.prev_hash != GENESIS_HASH => Some(ProblemKind::ChainStartsMidway),
                    Some(e) if c.seq > e => Some(ProblemKind::LinesMissing { count: c.seq - e }),
                    Some(e) if c.seq < e => Some(ProblemKind::OutOfOrder),
                    _ => prev_hash
                        .as_deref()
                        .filter(|p| *p != c.prev_hash)
                        .map(|_| ProblemKind::ChainBroken),
                },
            };
            if let Some(kind) = kind {
                problem(line_no, kind);
            }
            // The first line at an anchored seq (a later one is out of order anyway).
            if let Some(slot @ None) = found.get_mut(&c.seq) {
                *slot = Some(Found {
                    file: file.path.clone(),
                    name: name.clone(),
                    line: line_no,
                    hash: c.hash.to_string(),
                });
            }
            if last_anchor.is_some_and(|a| c.seq > a.seq) {
                match &mut after_last {
                    Some((_, _, n)) => *n += 1,
                    None => after_last = Some((file.path.clone(), line_no, 1)),
                }
            }
            last_seq = Some(last_seq.map_or(c.seq, |l| l.max(c.seq)));
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
    match &opts.anchors {
        None => report.unchecked.push(
            "no store was read, so the log was not checked against its anchors: lines cut \
             from the end, the newest files deleted or emptied, and lines edited or \
             appended with the chain re-hashed would not be seen"
                .into(),
        ),
        Some(set) => check_anchors(dir, set, &files, &found, &names, last_seq, &mut report)?,
    }
    match (last_anchor, after_last) {
        (Some(anchor), Some((file, line, count))) if anchor.kind == AnchorKind::Stop => {
            report.problems.push(Problem {
                file,
                line,
                kind: ProblemKind::AfterStop {
                    count,
                    anchor: anchor.clone(),
                },
            });
        }
        (Some(anchor), Some((_, _, count))) => report.unchecked.push(format!(
            "{count} line(s) after the last anchor (seq {}, a {} anchor of {}) are not \
             anchored yet: vigil is running, or it did not stop cleanly; the chain alone \
             vouches for them",
            anchor.seq,
            anchor.kind.as_str(),
            anchor
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )),
        _ => {}
    }
    Ok(report)
}

/// Checks every anchor against the line found at its sequence number.
fn check_anchors(
    dir: &Path,
    set: &AnchorSet,
    files: &[crate::files::LogFile],
    found: &HashMap<u64, Option<Found>>,
    names: &HashSet<String>,
    last_seq: Option<u64>,
    report: &mut VerifyReport,
) -> std::io::Result<()> {
    if set.anchors.is_empty() {
        if set.other_chains > 0 {
            let chain = crate::chain::chain_id(dir)?.unwrap_or_default();
            report.problems.push(Problem {
                file: files
                    .first()
                    .map_or_else(|| dir.to_path_buf(), |f| f.path.clone()),
                line: u64::from(!files.is_empty()),
                kind: ProblemKind::ChainNotAnchored {
                    chain,
                    others: set.other_chains,
                },
            });
        } else {
            report.unchecked.push(
                "the store holds no anchor (a log written before anchoring, or with another \
                 store): lines cut from the end, the newest files deleted or emptied, and \
                 lines edited or appended with the chain re-hashed would not be seen"
                    .into(),
            );
        }
        return Ok(());
    }
    report.anchors = set.anchors.len();
    let mut listed = 0usize;
    let mut more = 0usize;
    let mut missing_files = HashSet::new();
    // A flush and the stop may anchor one line: one report per line.
    let mut reported = HashSet::new();
    // A cut end is told once, at the newest line known to have been written.
    let newest = set.anchors.iter().map(|a| a.seq).max();
    let mut last_good: Option<u64> = None;
    for anchor in &set.anchors {
        if reported.contains(&anchor.seq) {
            continue;
        }
        let at = found.get(&anchor.seq).and_then(Option::as_ref);
        let problem = match at {
            Some(f) if f.hash == anchor.hash && f.name == anchor.file => {
                last_good = Some(anchor.seq);
                None
            }
            Some(f) => Some((
                f.file.clone(),
                f.line,
                ProblemKind::AnchorMismatch {
                    anchor: anchor.clone(),
                    found_in: (f.name != anchor.file).then(|| anchor.file.clone()),
                    last_good,
                },
            )),
            None if !names.contains(&anchor.file) => {
                // One report per missing file.
                missing_files.insert(anchor.file.clone()).then(|| {
                    (
                        dir.join(&anchor.file),
                        0,
                        ProblemKind::AnchoredFileMissing {
                            anchor: anchor.clone(),
                        },
                    )
                })
            }
            None if last_seq.is_none_or(|l| l < anchor.seq) => {
                (Some(anchor.seq) == newest).then(|| {
                    (
                        dir.join(&anchor.file),
                        0,
                        ProblemKind::Truncated {
                            anchor: anchor.clone(),
                            last_seq,
                        },
                    )
                })
            }
            None => Some((
                dir.join(&anchor.file),
                0,
                ProblemKind::AnchoredLineMissing {
                    anchor: anchor.clone(),
                },
            )),
        };
        if let Some((file, line, kind)) = problem {
            reported.insert(anchor.seq);
            if listed < ANCHOR_PROBLEMS_LISTED {
                listed += 1;
                report.problems.push(Problem { file, line, kind });
            } else {
                more += 1;
            }
        }
    }
    if more > 0 {
        report.problems.push(Problem {
            file: dir.to_path_buf(),
            line: 0,
            kind: ProblemKind::MoreAnchorProblems { count: more },
        });
    }
    Ok(())
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

    #[test]
    fn a_line_on_its_own_is_read_and_checked_against_its_hash() {
        let body = format!(
            "{{\"event\":\"x\",\"seq\":3,\"prev_hash\":\"{}\"",
            "b".repeat(64)
        );
        let line = |tag: &str, key: Option<&ChainKey>| {
            let digest = digest_hex(key, body.as_bytes());
            let hex = std::str::from_utf8(&digest).expect("hex").to_string();
            format!("{body},\"{tag}\":\"{hex}\"}}\n")
        };
        let plain = line("hash", None);
        let l = line_link(&plain, None).expect("a chained line");
        assert_eq!((l.seq, l.keyed, l.intact), (3, false, Some(true)));
        assert_eq!(l.prev_hash, "b".repeat(64));
        let edited = plain.replacen("\"x\"", "\"y\"", 1);
        assert_eq!(
            line_link(&edited, None).expect("chained").intact,
            Some(false)
        );
        let key = ChainKey::new(&[7u8; 32]).expect("key");
        let keyed = line("hmac", Some(&key));
        assert_eq!(line_link(&keyed, None).expect("chained").intact, None);
        assert_eq!(
            line_link(&keyed, Some(&key)).expect("chained").intact,
            Some(true)
        );
        let other = ChainKey::new(&[8u8; 32]).expect("key");
        assert_eq!(
            line_link(&keyed, Some(&other)).expect("chained").intact,
            Some(false)
        );
        assert!(line_link("{\"event\":\"x\"}", None).is_none());
    }
}
