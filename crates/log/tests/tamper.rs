//! Tamper evidence: each kind of damage to a real log folder is reported with file and line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::Arbiter;
use vigil_core::{SystemClock, Timestamp};
use vigil_log::{
    Event, LogEvent, LogWriter, ProblemKind, VerifyReport, WriterOptions, list_log_files,
    verify_dir,
};

/// Writes 120 events into several size-rotated files and returns the file paths.
fn make_log(dir: &Path) -> Vec<PathBuf> {
    let system = actix::System::new();
    system.block_on(async {
        let handle = LogWriter::open(
            dir,
            Arc::new(SystemClock),
            WriterOptions {
                max_file_bytes: 8_000,
                ..WriterOptions::default()
            },
        )
        .expect("open")
        .start_on(&Arbiter::current());
        let sink = handle.sink();
        let ts: Timestamp = "2024-01-15T14:30:00Z".parse().expect("ts");
        for i in 0..120u64 {
            sink.send(vec![
                LogEvent::new(ts, "test_agent", Event::OrderSubmitted)
                    .with("i", i)
                    .with("symbol", "GOOG"),
            ]);
        }
        handle.flush().await.expect("flush");
    });
    let files: Vec<PathBuf> = list_log_files(dir)
        .expect("list")
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert!(files.len() >= 4, "needs several files, got {}", files.len());
    files
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.join("\n") + "\n").expect("write");
}

fn only(report: &VerifyReport) -> (&Path, u64, &ProblemKind) {
    let p = report
        .problems
        .first()
        .unwrap_or_else(|| panic!("no problem reported"));
    (&p.file, p.line, &p.kind)
}

#[test]
fn an_untouched_folder_verifies_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_log(dir.path());
    let r = verify_dir(dir.path()).expect("verify");
    assert!(r.is_clean(), "{:?}", r.problems);
    assert_eq!(r.lines, 120);
}

#[test]
fn an_edited_byte_is_reported_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    let mut l = lines(&files[1]);
    l[4] = l[4].replacen("GOOG", "GOOF", 1);
    write_lines(&files[1], &l);
    let r = verify_dir(dir.path()).expect("verify");
    assert_eq!(only(&r), (files[1].as_path(), 5, &ProblemKind::EditedLine));
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
}

#[test]
fn a_deleted_line_is_reported_at_the_next_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    let mut l = lines(&files[2]);
    l.remove(3);
    write_lines(&files[2], &l);
    let r = verify_dir(dir.path()).expect("verify");
    assert_eq!(
        only(&r),
        (
            files[2].as_path(),
            4,
            &ProblemKind::LinesMissing { count: 1 }
        )
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
}

#[test]
fn an_edited_line_with_a_recomputed_hash_still_breaks_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    let mut l = lines(&files[0]);
    // Forge line 3 completely: new content, a correct hash of its own.
    let body_end = l[2].rfind(",\"hash\":\"").expect("hash");
    let body = l[2][..body_end].replacen("GOOG", "EVIL", 1);
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    l[2] = format!("{body},\"hash\":\"{hash}\"}}");
    write_lines(&files[0], &l);
    let r = verify_dir(dir.path()).expect("verify");
    assert_eq!(only(&r), (files[0].as_path(), 4, &ProblemKind::ChainBroken));
}

#[test]
fn a_truncated_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    let text = std::fs::read_to_string(&files[1]).expect("read");
    // Cut the file in the middle of a line.
    let cut = text.len() / 2 + 7;
    assert_ne!(text.as_bytes()[cut - 1], b'\n');
    std::fs::write(&files[1], &text.as_bytes()[..cut]).expect("write");
    let r = verify_dir(dir.path()).expect("verify");
    let kinds: Vec<_> = r.problems.iter().map(|p| (&p.file, &p.kind)).collect();
    assert!(
        kinds.contains(&(&files[1], &ProblemKind::Malformed)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(&files[1], &ProblemKind::TornTail)),
        "{kinds:?}"
    );
    // The lines that followed are missing: reported on the next file's first line.
    assert!(r.problems.iter().any(|p| p.file == files[2]
        && p.line == 1
        && matches!(p.kind, ProblemKind::LinesMissing { .. })));
}

#[test]
fn a_deleted_middle_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    std::fs::remove_file(&files[1]).expect("rm");
    let r = verify_dir(dir.path()).expect("verify");
    assert!(
        r.problems.iter().any(|p| p.file == files[2]
            && p.line == 0
            && matches!(p.kind, ProblemKind::MissingFiles { from: 2, to: 2 })),
        "{:?}",
        r.problems
    );
    assert!(r.problems.iter().any(|p| p.file == files[2]
        && p.line == 1
        && matches!(p.kind, ProblemKind::LinesMissing { .. })));
}

#[test]
fn swapped_files_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    let a = std::fs::read(&files[1]).expect("read");
    let b = std::fs::read(&files[2]).expect("read");
    std::fs::write(&files[1], &b).expect("write");
    std::fs::write(&files[2], &a).expect("write");
    let r = verify_dir(dir.path()).expect("verify");
    assert!(
        r.problems.iter().any(|p| p.file == files[1]
            && p.line == 1
            && matches!(p.kind, ProblemKind::LinesMissing { .. })),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.file == files[2] && p.line == 1 && p.kind == ProblemKind::OutOfOrder),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_deleted_first_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = make_log(dir.path());
    std::fs::remove_file(&files[0]).expect("rm");
    let r = verify_dir(dir.path()).expect("verify");
    assert_eq!(
        only(&r),
        (files[1].as_path(), 1, &ProblemKind::ChainStartsMidway)
    );
}
