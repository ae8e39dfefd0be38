//! The log chain as an operator and an attacker meet it: two real `vigil run` sessions, then
//! copies of their log and store tampered with in every way the chain alone cannot see;
//! `vigil logs verify` must exit 1 on each. The keyed chain, `vigil logs | head`, and no
//! line of a live-feed session stamped 1970.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::feed::{FeedProcess, KEY_ID};
use common::vigil;

/// A folder with a config, the log and the store of two sessions written with it.
struct Sessions {
    root: tempfile::TempDir,
}

impl Sessions {
    fn logs(&self) -> PathBuf {
        self.root.path().join("logs")
    }

    fn config(&self) -> PathBuf {
        self.root.path().join("vigil.toml")
    }
}

/// The config of a folder: its log (flushed every millisecond, so there are many anchors;
/// files of 1 MiB, so there are several), its store, and a key when given.
fn write_config(root: &Path, key: Option<&Path>) {
    let key = key
        .map(|k| format!("hmac_key_file = \"{}\"\n", k.display()))
        .unwrap_or_default();
    std::fs::write(
        root.join("vigil.toml"),
        format!(
            r#"[session]
name = "chain"

[data]
instruments = [{{ symbol = "GOOG", path = "bundled:GOOG_1d.csv" }}]

[log]
dir = "{logs}"
flush_interval_ms = 10
max_file_mb = 1
{key}
[store]
path = "{store}"
"#,
            logs = root.join("logs").display(),
            store = root.join("state/vigil.db").display(),
        ),
    )
    .expect("config");
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two sessions: the bundled GOOG bars, then 20,000 synthetic minute bars.
fn two_sessions(key: Option<&Path>) -> Sessions {
    let s = Sessions {
        root: tempfile::tempdir().expect("tempdir"),
    };
    write_config(s.root.path(), key);
    ok(&vigil()
        .args(["run", "--config"])
        .arg(s.config())
        .output()
        .expect("run"));
    let bars = s.root.path().join("bars.csv");
    ok(&vigil()
        .args(["data", "synth", "--bars", "20000", "--out"])
        .arg(&bars)
        .output()
        .expect("synth"));
    ok(&vigil()
        .args(["run", "--config"])
        .arg(s.config())
        .arg("--data")
        .arg(&bars)
        .output()
        .expect("run"));
    assert!(files(&s.logs()).len() >= 3, "{:?}", files(&s.logs()));
    s
}

/// A copy of the log folder and the store, with a config pointing at them.
fn copy(s: &Sessions, key: Option<&Path>) -> Sessions {
    let c = Sessions {
        root: tempfile::tempdir().expect("tempdir"),
    };
    for sub in ["logs", "state"] {
        let to = c.root.path().join(sub);
        std::fs::create_dir_all(&to).expect("folder");
        for e in std::fs::read_dir(s.root.path().join(sub)).expect("read") {
            let p = e.expect("entry").path();
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    write_config(c.root.path(), key);
    c
}

fn files(logs: &Path) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(logs)
        .expect("logs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    f.sort();
    f
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

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `…,"hash":"<64 hex>"}` (or `"hmac"`): the body before the hash field, and the hash.
fn split(line: &str) -> (&str, &str) {
    (
        &line[..line.len() - 75],
        &line[line.len() - 66..line.len() - 2],
    )
}

/// Rewrites the log from line `from` (0-based, over all files in order) through `edit`
/// (`None` drops the line), renumbering and re-hashing the chain with plain SHA-256 after
/// it, as someone without a key would to hide the change.
fn rehash_from(logs: &Path, from: usize, edit: impl Fn(usize, &str) -> Option<String>) {
    let mut prev = String::new();
    let mut n = 0usize;
    let mut dropped = 0u64;
    for f in files(logs) {
        let mut out = Vec::new();
        for line in lines(&f) {
            let i = n;
            n += 1;
            let (body, hash) = split(&line);
            if i < from {
                prev = hash.to_string();
                out.push(line);
                continue;
            }
            let Some(body) = edit(i, body) else {
                dropped += 1;
                continue;
            };
            let (head, _) = body.rsplit_once(",\"prev_hash\":\"").expect("prev_hash");
            let (fields, seq) = head.rsplit_once(",\"seq\":").expect("seq");
            let seq: u64 = seq.parse().expect("seq number");
            let body = format!(
                "{fields},\"seq\":{},\"prev_hash\":\"{prev}\"",
                seq - dropped
            );
            let hash = sha256_hex(&body);
            out.push(format!("{body},\"hash\":\"{hash}\"}}"));
            prev = hash;
        }
        write_lines(&f, &out);
    }
}

fn verify(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = vigil()
        .args(["logs", "verify"])
        .args(args)
        .output()
        .expect("verify");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn verify_config(c: &Sessions) -> (Option<i32>, String) {
    verify(&["--config".as_ref(), c.config().as_os_str()])
}

#[test]
fn logs_verify_finds_every_tampering_the_chain_alone_misses() {
    let s = two_sessions(None);
    let (code, text) = verify_config(&s);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("chain intact") && text.contains("anchor(s) match"),
        "{text}"
    );
    assert!(!text.contains("not checked"), "{text}");

    // Without the store: the chain only, and it says what it could not check.
    let (code, text) = verify(&["--dir".as_ref(), s.logs().as_os_str()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("not checked: there is no store"), "{text}");

    let newest = |c: &Sessions| files(&c.logs()).last().cloned().expect("a file");
    type Tamper = fn(&Sessions, &dyn Fn(&Sessions) -> PathBuf);
    let cases: [(&str, Tamper, &str); 8] = [
        (
            "the last line deleted",
            |c, newest| {
                let mut l = lines(&newest(c));
                l.pop();
                write_lines(&newest(c), &l);
            },
            "lines were cut from its end",
        ),
        (
            "the last 100 lines deleted",
            |c, newest| {
                let mut l = lines(&newest(c));
                l.truncate(l.len() - 100);
                write_lines(&newest(c), &l);
            },
            "lines were cut from its end",
        ),
        (
            "the newest file deleted",
            |c, newest| std::fs::remove_file(newest(c)).expect("remove"),
            "the file was deleted",
        ),
        (
            "the newest file emptied",
            |c, newest| write_lines(&newest(c), &[]),
            "lines were cut from its end",
        ),
        (
            "a line appended with a correct hash",
            |c, newest| {
                let mut l = lines(&newest(c));
                let last = l.last().expect("a line").clone();
                let (body, hash) = split(&last);
                let (head, _) = body.rsplit_once(",\"seq\":").expect("seq");
                let seq: u64 = body[head.len() + 7..]
                    .split(',')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("seq");
                let forged = format!(
                    "{{\"timestamp\":\"2013-03-01T00:00:00.000Z\",\"level\":\"INFO\",\
                     \"service\":\"execution_agent\",\"trace_id\":null,\"event\":\"order_filled\",\
                     \"data\":{{\"symbol\":\"GOOG\"}},\"seq\":{},\"prev_hash\":\"{hash}\"",
                    seq + 1
                );
                l.push(format!("{forged},\"hash\":\"{}\"}}", sha256_hex(&forged)));
                write_lines(&newest(c), &l);
            },
            "appended afterwards",
        ),
        (
            "a line edited and the rest re-hashed",
            |c, _| {
                rehash_from(&c.logs(), 1_000, |i, body| {
                    Some(if i == 1_000 {
                        body.replacen("\"event\":\"", "\"event\":\"forged_", 1)
                    } else {
                        body.to_string()
                    })
                });
            },
            "re-hashed",
        ),
        (
            "a line deleted and the rest renumbered and re-hashed",
            |c, _| {
                rehash_from(&c.logs(), 1_000, |i, body| {
                    (i != 1_000).then(|| body.to_string())
                })
            },
            "re-hashed",
        ),
        (
            "the last line edited and re-hashed",
            |c, _| {
                let n: usize = files(&c.logs()).iter().map(|f| lines(f).len()).sum();
                rehash_from(&c.logs(), n - 1, |_, body| {
                    Some(body.replacen("\"event\":\"", "\"event\":\"forged_", 1))
                });
            },
            "re-hashed",
        ),
    ];
    for (what, tamper, says) in cases {
        let c = copy(&s, None);
        tamper(&c, &newest);
        let (code, text) = verify(&["--dir".as_ref(), c.logs().as_os_str()]);
        assert_eq!(
            code,
            Some(0),
            "{what}: the chain alone does not see it (else this case tests nothing): {text}"
        );
        let (code, text) = verify_config(&c);
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(text.contains(says), "{what}: expected {says:?} in\n{text}");
    }

    // A store that is gone, when the config names it, is a failure too.
    let c = copy(&s, None);
    std::fs::remove_dir_all(c.root.path().join("state")).expect("remove the store");
    let (code, text) = verify_config(&c);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

fn key_file(dir: &Path, name: &str, key: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{key}\n")).expect("key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

#[test]
fn a_keyed_chain_verifies_with_its_key_and_not_with_another_or_re_hashed_without_it() {
    let keys = tempfile::tempdir().expect("tempdir");
    let key = key_file(keys.path(), "log.key", &"k3y".repeat(16));
    let wrong = key_file(keys.path(), "wrong.key", &"x".repeat(48));
    let s = two_sessions(Some(&key));
    let first = lines(&files(&s.logs())[0]).remove(0);
    assert!(first.contains(",\"hmac\":\""), "{first}");
    assert!(
        !std::fs::read_to_string(files(&s.logs())[0].as_path())
            .expect("read")
            .contains(&"k3y".repeat(16)),
        "the key never reaches the log"
    );
    let (code, text) = verify_config(&s);
    assert_eq!(code, Some(0), "{text}");

    // Another key.
    let (code, text) = verify(&[
        "--config".as_ref(),
        s.config().as_os_str(),
        "--key-file".as_ref(),
        wrong.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("does not match its HMAC"), "{text}");

    // No key at all: not a pass.
    let (code, text) = verify(&["--dir".as_ref(), s.logs().as_os_str()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the chain is keyed"), "{text}");

    // An edit re-hashed by someone without the key.
    let c = copy(&s, Some(&key));
    rehash_from(&c.logs(), 500, |i, body| {
        Some(if i == 500 {
            body.replacen("\"INFO\"", "\"DEBUG\"", 1)
        } else {
            body.to_string()
        })
    });
    let (code, text) = verify_config(&c);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("written without the key"), "{text}");

    // vigil refuses to continue a keyed log without its key.
    let c = copy(&s, None);
    let out = vigil()
        .args(["run", "--config"])
        .arg(c.config())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its chain is keyed (HMAC)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logs_piped_into_head_exits_quietly() {
    let s = tempfile::tempdir().expect("tempdir");
    ok(&vigil()
        .args(["run", "--log-dir"])
        .arg(s.path())
        .output()
        .expect("run"));
    for args in [
        vec!["logs", "--format", "json"],
        vec!["logs"],
        vec!["logs", "verify"],
    ] {
        let mut child = vigil()
            .args(&args)
            .arg("--dir")
            .arg(s.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a line");
        // The reader goes away, as `head -1` does.
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!first.is_empty(), "{args:?}");
    }
}

#[test]
fn no_line_of_a_live_feed_session_is_stamped_1970() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut feed = FeedProcess::start(dir.path());
    let secret = dir.path().join("feed.secret");
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"{feed}
[signal]
fast_span = 3
slow_span = 8
{home}"#,
            feed =
                vigil_testkit::config::feed_sections("GOOG", &feed.stream_url, KEY_ID, &secret, ""),
            home = vigil_testkit::config::home_sections(dir.path(), "", ""),
        ),
    )
    .expect("config");
    let before = chrono::Utc::now();
    let run = common::Running::start(&["run".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    feed.wait_for("subscribed to [\"GOOG\"]");
    assert_eq!(feed.post("/_feed/step?n=40")["sent"], 40);
    common::feed::wait_for_event(dir.path(), "order_submitted");
    run.interrupt();
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    let stamped = |v: &serde_json::Value| {
        v["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|| panic!("a timestamp: {v}"))
    };
    let old: Vec<&serde_json::Value> = log
        .iter()
        .filter(|v| {
            stamped(v)
                < "2000-01-01T00:00:00Z"
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .expect("ts")
        })
        .collect();
    assert!(
        old.is_empty(),
        "lines stamped before any bar's time: {old:#?}"
    );
    // Before the first bar: the wall clock's time.
    let started = log
        .iter()
        .find(|v| v["event"] == "session_started")
        .expect("session_started");
    let at = stamped(started);
    assert!(
        at >= before - chrono::Duration::seconds(5) && at <= chrono::Utc::now(),
        "session_started at {at}, the test began at {before}"
    );
}
