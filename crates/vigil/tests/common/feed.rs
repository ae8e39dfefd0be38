//! `vigil feed` as a child process for the tests of the binary: manual mode, GOOG's daily
//! bars, its faults and steps over HTTP on 127.0.0.1.

use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use vigil_testkit::http_json;

use super::{repo, vigil};

pub(crate) const KEY_ID: &str = "feed-test";
pub(crate) const SECRET: &str = "a-feed-secret-0123456789";
pub(crate) use vigil_testkit::PATIENCE;

/// A `vigil feed` child process; SIGKILLed when dropped.
pub(crate) struct FeedProcess {
    pub(crate) child: Child,
    lines: mpsc::Receiver<String>,
    pub(crate) stream_url: String,
    pub(crate) control_url: String,
}

impl FeedProcess {
    /// A feed under `--manual`: bars go out only when stepped.
    pub(crate) fn start(dir: &std::path::Path) -> Self {
        Self::start_with(dir, &["--manual"])
    }

    /// A feed that sends a bar every `interval_ms` by itself, as a live one does.
    pub(crate) fn paced(dir: &std::path::Path, interval_ms: u64) -> Self {
        Self::start_with(dir, &["--interval-ms", &interval_ms.to_string()])
    }

    fn start_with(dir: &std::path::Path, pacing: &[&str]) -> Self {
        let secret = dir.join("feed.secret");
        vigil_testkit::write_secret_file(&secret, format!("{SECRET}\n"));
        let mut child = vigil()
            .args(["feed", "--listen", "127.0.0.1:0", "--csv"])
            .arg(repo("data/GOOG_1d.csv"))
            .args(pacing)
            .args(["--key-id", KEY_ID, "--secret-file"])
            .arg(&secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil feed");
        let lines = super::stderr_lines(&mut child);
        let mut feed = Self {
            child,
            lines,
            stream_url: String::new(),
            control_url: String::new(),
        };
        let ready = feed.wait_for("listening on ");
        let word = |scheme: &str| {
            ready
                .split_whitespace()
                .find(|w| w.starts_with(scheme))
                .map(|w| {
                    w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                        .to_string()
                })
                .unwrap_or_else(|| panic!("no {scheme} in {ready:?}"))
        };
        feed.stream_url = word("ws://");
        feed.control_url = word("http://");
        assert!(
            ready.contains("serving GOOG from ")
                && (ready.contains("a bar per step") || ready.contains("a bar every ")),
            "{ready}"
        );
        feed
    }

    /// Reads standard error until a line contains `needle`.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|e| panic!("no line with {needle:?} from vigil feed: {e}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub(crate) fn post(&self, path: &str) -> Value {
        let (status, body) = http_json(
            &self.control_url,
            "POST",
            path,
            &[("APCA-API-KEY-ID", KEY_ID), ("APCA-API-SECRET-KEY", SECRET)],
            None,
        );
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    /// Sends the next `n` bars; every one goes.
    pub(crate) fn step(&self, n: u64) {
        assert_eq!(self.post(&format!("/_feed/step?n={n}"))["sent"], n);
    }
}

impl Drop for FeedProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().expect("SIGKILL");
            self.child.wait().expect("reaped");
        }
    }
}

/// Polls (bounded by [`PATIENCE`]) the log of a `vigil run` working in `dir` (its `logs`
/// folder, written by the child process) until it holds an `event` line; returns it.
pub(crate) fn wait_for_event(dir: &std::path::Path, event: &str) -> Value {
    wait_for_line(dir, event, |_| true)
}

/// [`wait_for_event`] for a line `pred` accepts.
pub(crate) fn wait_for_line(
    dir: &std::path::Path,
    event: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(line) = super::vigil_log_lines(&dir.join("logs"))
            .into_iter()
            .find(|l| l["event"] == event && pred(l))
        {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {event} within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
