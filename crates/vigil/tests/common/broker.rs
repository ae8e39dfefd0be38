//! `vigil broker` as a child process, for the tests that trade through it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use vigil_testkit::http_json;

use super::{repo, vigil};

pub(crate) const KEY_ID: &str = "vigil-test";
pub(crate) const SECRET: &str = "a-secret-of-the-test-0123456789";

/// A `vigil broker` child process; SIGKILLed when dropped.
pub(crate) struct BrokerProcess {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl BrokerProcess {
    /// Starts `vigil broker` on a free port over GOOG's bundled bars, with the test's key,
    /// and waits (at most 20 s) for the address it prints.
    pub(crate) fn start(dir: &Path, data: &Path) -> Self {
        let secret = dir.join("broker.secret");
        vigil_testkit::write_secret_file(&secret, format!("{SECRET}\n"));
        let mut child = vigil()
            .args(["broker", "--listen", "127.0.0.1:0", "--state"])
            .arg(dir.join("broker/state.db"))
            .arg("--data")
            .arg(format!("GOOG={}", data.display()))
            .args(["--key-id", KEY_ID, "--secret-file"])
            .arg(&secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil broker");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("http://") {
                    let url = line[at..].split_whitespace().next().unwrap_or_default();
                    if tx.send(url.to_string()).is_err() {
                        return;
                    }
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("vigil broker printed its address within 20 s");
        Self { child, url }
    }

    /// The `[data]`, `[signal]`, `[risk]` and `[execution]` sections of a `vigil run` that
    /// trades GOOG's bars in `data` through this broker (started in `dir`): a trading day in
    /// 10 ms (the broker's clock moves with the bars), a fast EMA cross, 10 shares a trade.
    pub(crate) fn run_sections(&self, dir: &Path, data: &Path) -> String {
        format!(
            r#"
[data]
instruments = [{{ symbol = "GOOG", path = "{data}" }}]
# A trading day in 10 ms: the broker's clock moves with the feed.
speed = 8640000
batch_size = 1

[signal]
fast_span = 5
slow_span = 15
{execution}"#,
            data = data.display(),
            execution = self.execution_sections(dir),
        )
    }

    /// `[risk]` (ten shares a trade, whatever the regime) and `[execution]` trading through
    /// this broker with the secret in `dir/broker.secret`.
    pub(crate) fn execution_sections(&self, dir: &Path) -> String {
        format!(
            r#"
[risk]
sizing = "fixed_quantity"
fixed_quantity = "10"
regime_size_factor = {{ unknown = "1", trending = "1", ranging = "1", volatile = "1" }}

[execution]
venue = "alpaca"
broker_url = "{url}"
broker_key_id = "{KEY_ID}"
broker_secret_file = "{secret}"
broker_poll_interval_ms = 20
"#,
            url = self.url,
            secret = dir.join("broker.secret").display(),
        )
    }

    /// `kill -9`, and waits for the process to be gone.
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// A request with the test's key: (status, JSON body or `null`).
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        http(&self.url, method, path, body, true)
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().expect("SIGKILL");
            self.child.wait().expect("reaped");
        }
    }
}

pub(crate) fn http(
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    auth: bool,
) -> (u16, Value) {
    let headers: &[(&str, &str)] = if auth {
        &[("APCA-API-KEY-ID", KEY_ID), ("APCA-API-SECRET-KEY", SECRET)]
    } else {
        &[]
    };
    http_json(base, method, path, headers, body.as_ref())
}

pub(crate) fn dec(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
}

/// The first `rows` bars of GOOG's bundled file, then its next `flat` trading days at the
/// last close: the EMAs settle on the flat tail, so the last order fills well before the
/// end. (A fill due at the very last bars may reach the broker after the Execution agent's
/// last drain: see docs/broker.md.)
pub(crate) fn goog_slice(dir: &Path, rows: usize, flat: usize) -> PathBuf {
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG_1d.csv");
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines[..=rows].iter().map(|l| l.to_string()).collect();
    let close = lines[rows].split(',').nth(4).expect("close column");
    for line in &lines[rows + 1..=rows + flat] {
        let date = line.split(',').next().expect("date column");
        out.push(format!("{date},{close},{close},{close},{close},1000000"));
    }
    let path = dir.join("GOOG_1d.csv");
    std::fs::write(&path, out.join("\n") + "\n").expect("write slice");
    path
}
