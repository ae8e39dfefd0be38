//! The chain outside the log: the anchors the writer reports (start, flush, stop), what
//! verification finds against them, the keyed chain, and a writer that fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::Arbiter;
use parking_lot::Mutex;
use vigil_core::{SimClock, Timestamp};
use vigil_log::{
    Anchor, AnchorKind, AnchorSet, ChainKey, Event, LogEvent, LogWriter, LogWriterError,
    LogWriterHandle, ProblemKind, VerifyOptions, VerifyReport, WriterOptions, WriterReport,
    WriterReports, chain_id, list_log_files, verify_dir_with,
};

fn ts() -> Timestamp {
    "2024-01-15T14:30:00Z".parse().expect("ts")
}

/// A clock on a fixed day, so file names are known.
fn clock() -> SimClock {
    SimClock::starting_at("2024-01-15T15:00:00Z".parse().expect("ts"))
}

#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<WriterReport>>>);

impl Reports {
    fn sink(&self) -> WriterReports {
        let got = self.0.clone();
        WriterReports::new(move |r| got.lock().push(r))
    }

    fn anchors(&self) -> Vec<Anchor> {
        self.0
            .lock()
            .iter()
            .filter_map(|r| match r {
                WriterReport::Anchor(a) => Some(a.clone()),
                WriterReport::Failed(_) => None,
            })
            .collect()
    }

    fn failures(&self) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .filter_map(|r| match r {
                WriterReport::Failed(e) => Some(e.clone()),
                WriterReport::Anchor(_) => None,
            })
            .collect()
    }
}

fn open(dir: &Path, opts: WriterOptions) -> Result<LogWriterHandle, LogWriterError> {
    Ok(LogWriter::open(dir, Arc::new(clock()), opts)?.start_on(&Arbiter::current()))
}

fn send(handle: &LogWriterHandle, from: u64, n: u64) {
    let sink = handle.sink();
    for i in from..from + n {
        sink.send(vec![
            LogEvent::new(ts(), "test_agent", Event::OrderSubmitted)
                .with("i", i)
                .with("symbol", "GOOG"),
        ]);
    }
}

/// Two sessions' worth of lines, with their anchors: 40 lines, a flush, 20 more, a close;
/// then a second session of 30 lines, closed.
fn two_sessions(dir: &Path, key: Option<ChainKey>) -> Vec<Anchor> {
    let reports = Reports::default();
    let system = actix::System::new();
    system.block_on(async {
        for (from, n) in [(0, 40), (60, 30)] {
            let handle = open(
                dir,
                WriterOptions {
                    max_file_bytes: 6_000,
                    reports: Some(reports.sink()),
                    key: key.clone(),
                    ..WriterOptions::default()
                },
            )
            .expect("open");
            send(&handle, from, n);
            handle.flush().await.expect("flush");
            if from == 0 {
                send(&handle, 40, 20);
            }
            handle.close().await.expect("close");
        }
    });
    assert!(reports.failures().is_empty(), "{:?}", reports.failures());
    reports.anchors()
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    let text = if lines.is_empty() {
        String::new()
    } else {
        lines.join("\n") + "\n"
    };
    std::fs::write(p, text).expect("write");
}

fn files(dir: &Path) -> Vec<PathBuf> {
    list_log_files(dir)
        .expect("list")
        .into_iter()
        .map(|f| f.path)
        .collect()
}

fn verify(dir: &Path, anchors: &[Anchor], key: Option<ChainKey>) -> VerifyReport {
    verify_dir_with(
        dir,
        &VerifyOptions {
            key,
            anchors: Some(AnchorSet {
                anchors: anchors.to_vec(),
                other_chains: 0,
            }),
        },
    )
    .expect("verify")
}

fn kinds(r: &VerifyReport) -> Vec<&ProblemKind> {
    r.problems.iter().map(|p| &p.kind).collect()
}

#[test]
fn the_writer_anchors_its_start_flushes_and_stop_under_the_chains_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = two_sessions(dir.path(), None);
    let kinds: Vec<AnchorKind> = anchors.iter().map(|a| a.kind).collect();
    // A new chain has nothing to start from; the second session starts where the first
    // stopped.
    assert_eq!(kinds.first(), Some(&AnchorKind::Flush), "{kinds:?}");
    let stops: Vec<&Anchor> = anchors
        .iter()
        .filter(|a| a.kind == AnchorKind::Stop)
        .collect();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0].seq, 59);
    let start = anchors
        .iter()
        .find(|a| a.kind == AnchorKind::Start)
        .expect("start anchor");
    assert_eq!((start.seq, &start.hash), (59, &stops[0].hash));
    let last = anchors.last().expect("anchors");
    assert_eq!((last.kind, last.seq), (AnchorKind::Stop, 89));
    // Every anchor names the file its line is in, with that line's hash.
    let chain = chain_id(dir.path()).expect("chain").expect("a first line");
    for a in &anchors {
        assert_eq!(a.chain, chain);
        let line = lines(&dir.path().join(&a.file))
            .into_iter()
            .find(|l| l.contains(&format!("\"seq\":{},", a.seq)))
            .unwrap_or_else(|| panic!("seq {} in {}", a.seq, a.file));
        assert!(
            line.ends_with(&format!("\"hash\":\"{}\"}}", a.hash)),
            "{line}"
        );
    }
    let r = verify(dir.path(), &anchors, None);
    assert!(r.is_clean(), "{:?}", r.problems);
    assert!(r.unchecked.is_empty(), "{:?}", r.unchecked);
    assert_eq!(r.anchors, anchors.len());
}

#[test]
fn cutting_the_end_deleting_or_emptying_the_newest_file_and_appending_are_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = two_sessions(dir.path(), None);
    let pristine = tempfile::tempdir().expect("copy");
    for f in files(dir.path()) {
        std::fs::copy(&f, pristine.path().join(f.file_name().expect("name"))).expect("copy");
    }
    let reset = || {
        for f in files(dir.path()) {
            std::fs::remove_file(f).expect("remove");
        }
        for f in files(pristine.path()) {
            std::fs::copy(&f, dir.path().join(f.file_name().expect("name"))).expect("copy");
        }
    };
    let newest = || files(dir.path()).last().cloned().expect("files");

    // The last line deleted: the chain alone is intact.
    let mut l = lines(&newest());
    l.pop();
    write_lines(&newest(), &l);
    let r = verify(dir.path(), &anchors, None);
    assert!(
        matches!(kinds(&r)[..], [ProblemKind::Truncated { .. }]),
        "{:?}",
        r.problems
    );

    // The newest file deleted.
    reset();
    let gone = newest();
    std::fs::remove_file(&gone).expect("remove");
    let r = verify(dir.path(), &anchors, None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.file == gone && matches!(p.kind, ProblemKind::AnchoredFileMissing { .. })),
        "{:?}",
        r.problems
    );

    // The newest file emptied.
    reset();
    write_lines(&newest(), &[]);
    let r = verify(dir.path(), &anchors, None);
    assert!(
        r.problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::Truncated { .. })),
        "{:?}",
        r.problems
    );

    // A line appended after the stop, with a correct hash and link.
    reset();
    let mut l = lines(&newest());
    let last = l.last().expect("a line").clone();
    let prev = last
        .rsplit_once(",\"hash\":\"")
        .map(|(_, h)| h.trim_end_matches("\"}").to_string())
        .expect("hash");
    let body = format!(
        "{{\"timestamp\":\"2024-01-15T15:00:00.000Z\",\"level\":\"INFO\",\"service\":\"x\",\
         \"trace_id\":null,\"event\":\"order_submitted\",\"data\":{{}},\"seq\":90,\
         \"prev_hash\":\"{prev}\""
    );
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    l.push(format!("{body},\"hash\":\"{hash}\"}}"));
    write_lines(&newest(), &l);
    let r = verify(dir.path(), &anchors, None);
    assert!(
        matches!(kinds(&r)[..], [ProblemKind::AfterStop { count: 1, .. }]),
        "{:?}",
        r.problems
    );

    // Without the anchors the same append passes: what the store adds.
    let plain = verify_dir_with(dir.path(), &VerifyOptions::default()).expect("verify");
    assert!(plain.is_clean(), "{:?}", plain.problems);
    assert_eq!(plain.unchecked.len(), 1, "says what it could not check");

    // Anchors of other chains only: this log's first line was replaced.
    let r = verify_dir_with(
        dir.path(),
        &VerifyOptions {
            key: None,
            anchors: Some(AnchorSet {
                anchors: Vec::new(),
                other_chains: 1,
            }),
        },
    )
    .expect("verify");
    assert!(
        matches!(
            kinds(&r)[..],
            [ProblemKind::ChainNotAnchored { others: 1, .. }]
        ),
        "{:?}",
        r.problems
    );
}

/// Rewrites every line from `from_line` (0-based, over the files in order) with `edit`,
/// and re-hashes the chain from there (plain SHA-256), as someone without the key would.
fn rehash_from(dir: &Path, skip: usize, edit: impl Fn(usize, &str) -> Option<String>) {
    use sha2::Digest;
    let mut prev: Option<String> = None;
    let mut n = 0usize;
    for f in files(dir) {
        let mut out = Vec::new();
        for line in lines(&f) {
            let i = n;
            n += 1;
            // `…,"hash":"<64 hex>"}` (or `"hmac"`): the body, then the hash.
            let body = &line[..line.len() - 75];
            if i < skip {
                prev = Some(line[line.len() - 66..line.len() - 2].to_string());
                out.push(line);
                continue;
            }
            let Some(body) = edit(i, body) else {
                continue;
            };
            let (head, _) = body.rsplit_once(",\"prev_hash\":\"").expect("prev");
            let body = format!("{head},\"prev_hash\":\"{}\"", prev.clone().expect("prev"));
            let hash: String = sha2::Sha256::digest(body.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push(format!("{body},\"hash\":\"{hash}\"}}"));
            prev = Some(hash);
        }
        write_lines(&f, &out);
    }
}

#[test]
fn an_edit_or_a_deletion_re_hashed_is_found_at_every_anchor_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = two_sessions(dir.path(), None);
    // Line 30 edited, the rest re-hashed: the chain is intact again.
    rehash_from(dir.path(), 30, |i, body| {
        Some(if i == 30 {
            body.replacen("GOOG", "EVIL", 1)
        } else {
            body.to_string()
        })
    });
    assert!(
        verify_dir_with(dir.path(), &VerifyOptions::default())
            .expect("verify")
            .is_clean(),
        "the forgery fools the chain alone"
    );
    let r = verify(dir.path(), &anchors, None);
    let mut later: Vec<u64> = anchors.iter().map(|a| a.seq).filter(|s| *s >= 30).collect();
    later.dedup();
    let mismatched: Vec<u64> = r
        .problems
        .iter()
        .filter_map(|p| match &p.kind {
            ProblemKind::AnchorMismatch { anchor, .. } => Some(anchor.seq),
            _ => None,
        })
        .collect();
    assert_eq!(mismatched, later, "{:?}", r.problems);
    let first = r.problems.first().expect("a problem").to_string();
    assert!(first.contains("re-hashed after seq 19"), "{first}");

    // Line 30 deleted, the later lines renumbered and re-hashed.
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = two_sessions(dir.path(), None);
    rehash_from(dir.path(), 30, |i, body| {
        (i != 30).then(|| {
            let from = format!(",\"seq\":{i},");
            body.replacen(&from, &format!(",\"seq\":{},", i - 1), 1)
        })
    });
    assert!(
        verify_dir_with(dir.path(), &VerifyOptions::default())
            .expect("verify")
            .is_clean(),
        "the forgery fools the chain alone"
    );
    let r = verify(dir.path(), &anchors, None);
    assert!(
        matches!(r.problems[0].kind, ProblemKind::AnchorMismatch { .. }),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::Truncated { .. })),
        "the log is one line short of its last anchor: {:?}",
        r.problems
    );
}

#[test]
fn a_keyed_chain_verifies_with_its_key_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ChainKey::new(b"a-secret-key-of-32-or-more-bytes-0123").expect("key");
    let anchors = two_sessions(dir.path(), Some(key.clone()));
    let first = lines(&files(dir.path())[0]).remove(0);
    assert!(first.contains(",\"hmac\":\""), "{first}");
    let r = verify(dir.path(), &anchors, Some(key.clone()));
    assert!(r.is_clean(), "{:?}", r.problems);

    // Without the key: said, not passed.
    let r = verify(dir.path(), &anchors, None);
    assert!(
        matches!(kinds(&r)[..], [ProblemKind::KeyNeeded]),
        "{:?}",
        r.problems
    );
    // Another key: every line fails.
    let wrong = ChainKey::new(b"not-the-key-not-the-key-not-the-key").expect("key");
    let r = verify(dir.path(), &anchors, Some(wrong));
    assert!(
        r.problems
            .iter()
            .all(|p| matches!(p.kind, ProblemKind::BadMac)),
        "{:?}",
        r.problems
    );
    assert_eq!(r.problems.len() as u64, r.lines);

    // Re-hashed without the key (plain SHA-256 from line 10): one report, and the anchors
    // no longer match.
    rehash_from(dir.path(), 10, |_, body| Some(body.to_string()));
    let r = verify(dir.path(), &anchors, Some(key.clone()));
    assert_eq!(
        r.problems
            .iter()
            .filter(|p| p.kind == ProblemKind::NotKeyed)
            .count(),
        1,
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::ChainKindChanged))
    );

    // The writer refuses to continue a keyed folder without the key, and the reverse.
    let keyed = tempfile::tempdir().expect("tempdir");
    two_sessions(keyed.path(), Some(key.clone()));
    let plain = tempfile::tempdir().expect("tempdir");
    two_sessions(plain.path(), None);
    let system = actix::System::new();
    system.block_on(async {
        assert!(matches!(
            open(keyed.path(), WriterOptions::default()),
            Err(LogWriterError::ChainKind { .. })
        ));
        assert!(matches!(
            open(
                plain.path(),
                WriterOptions {
                    key: Some(key.clone()),
                    ..WriterOptions::default()
                }
            ),
            Err(LogWriterError::ChainKind { .. })
        ));
    });
}

#[test]
fn a_write_that_fails_is_reported_and_a_huge_flush_interval_does_not_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reports = Reports::default();
    let system = actix::System::new();
    system.block_on(async {
        let handle = open(
            dir.path(),
            WriterOptions {
                max_file_bytes: 4_000,
                // i64::MAX milliseconds: a deadline beyond what a timestamp holds.
                flush_interval: std::time::Duration::from_millis(i64::MAX as u64),
                reports: Some(reports.sink()),
                ..WriterOptions::default()
            },
        )
        .expect("open");
        send(&handle, 0, 5);
        handle.flush().await.expect("flush");
        // The next file is a full disk.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("vigil-000002-20240115.jsonl"))
            .expect("symlink");
        send(&handle, 5, 40);
        // The writer goes on to the next file; what matters is that the loss is reported.
        if let Err(e) = handle.close().await {
            eprintln!("close: {e}");
        }
    });
    let failures = reports.failures();
    assert!(!failures.is_empty(), "the failure is reported");
    assert!(
        failures[0].contains("vigil-000002-20240115.jsonl"),
        "{failures:?}"
    );
}
