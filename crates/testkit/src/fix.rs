//! The independent FIX 4.4 counterparty the FIX venue is tested against: QuickFIX, the
//! reference C++ engine (Debian's `libquickfix-dev`), running the acceptor in
//! `crates/fix/tests/counterparty/acceptor.cpp`, compiled once per source (in the system's
//! temporary folder). Without QuickFIX or g++ the tests that need it print SKIPPED (and fail
//! where [`TOOLS_REQUIRED`](crate::TOOLS_REQUIRED) is set, as in CI).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

/// The acceptor's source.
pub const ACCEPTOR_SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fix/tests/counterparty/acceptor.cpp"
);

/// QuickFIX's header, there when `libquickfix-dev` is installed.
const QUICKFIX_HEADER: &str = "/usr/include/quickfix/Application.h";

/// The compiled acceptor, or `None` (said SKIPPED) where QuickFIX or g++ is missing.
///
/// # Panics
/// When the source does not compile.
pub fn acceptor_binary() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let gxx = Command::new("g++").arg("--version").output();
        if !Path::new(QUICKFIX_HEADER).exists() || !gxx.is_ok_and(|o| o.status.success()) {
            crate::skip_or_require(
                "QuickFIX (libquickfix-dev) or g++ is not installed: the FIX venue was not \
                 tested against an independent FIX engine",
            );
            return None;
        }
        let source = std::fs::read(ACCEPTOR_SOURCE).expect("read the acceptor's source");
        // FNV-1a of the source: a changed source compiles anew.
        let hash = source.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        let bin = std::env::temp_dir().join(format!("vigil-fix-acceptor-{hash:016x}"));
        if bin.exists() {
            return Some(bin);
        }
        let tmp = bin.with_extension(format!("{}.tmp", std::process::id()));
        let out = Command::new("g++")
            .args(["-std=c++17", "-O1", "-o"])
            .arg(&tmp)
            .arg(ACCEPTOR_SOURCE)
            .args(["-lquickfix", "-lpthread"])
            .output()
            .expect("run g++");
        assert!(
            out.status.success(),
            "the FIX acceptor does not compile: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).expect("move the acceptor in place");
        Some(bin)
    })
    .clone()
}

/// A running acceptor.
#[derive(Debug)]
pub struct Counterparty {
    child: Child,
    /// Its folder: `store/`, `log/` and the journal `book.jsonl`.
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What it printed.
    pub output: Arc<Mutex<Vec<String>>>,
    args: Vec<String>,
}

impl Counterparty {
    /// Starts the acceptor in `dir` on a free port with `args` (`--hold`,
    /// `--partial-above 100`, …), once it says it listens; `None` where it cannot run.
    ///
    /// # Panics
    /// When it does not start.
    pub fn start(dir: &Path, args: &[&str]) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(dir, port, args.iter().map(|a| a.to_string()).collect())
    }

    fn start_on(dir: &Path, port: u16, args: Vec<String>) -> Option<Self> {
        let bin = acceptor_binary()?;
        std::fs::create_dir_all(dir).expect("the acceptor's folder");
        let mut child = Command::new(bin)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the FIX acceptor");
        let stdout = child.stdout.take().expect("its output");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = channel();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("acceptor listening") && ready_tx.send(()).is_err() {
                    // Nobody waits any more: keep draining.
                }
                lines.lock().push(line);
            }
        });
        match ready.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                let printed = output.lock().join("\n");
                child.kill().expect("SIGKILL the acceptor");
                panic!("the FIX acceptor did not start on port {port}: {printed}");
            }
        }
        Some(Self {
            child,
            dir: dir.to_path_buf(),
            port,
            output,
            args,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its journal: every order received, execution sent, cancel refused, and its book
    /// after every fill.
    pub fn journal(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("book.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a journal line is JSON"))
            .collect()
    }

    /// Its journal's lines of `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.journal()
            .into_iter()
            .filter(|l| l["event"] == event)
            .collect()
    }

    /// QuickFIX's own logs of every session, one of `kind` (`messages` or `event`) as one
    /// text.
    pub fn quickfix_log(&self, kind: &str) -> String {
        let ending = format!("{kind}.current.log");
        std::fs::read_dir(self.dir.join("log"))
            .expect("the acceptor's log")
            .map(|e| e.expect("a log file").path())
            .filter(|p| p.to_string_lossy().ends_with(&ending))
            .map(|p| std::fs::read_to_string(p).expect("read the acceptor's log"))
            .collect()
    }

    /// How many messages of `msg_type` sent by `sender` (its SenderCompID) the acceptor
    /// logged.
    pub fn logged(&self, msg_type: &str, sender: &str) -> usize {
        let kind = format!("\u{1}35={msg_type}\u{1}");
        let from = format!("\u{1}49={sender}\u{1}");
        self.quickfix_log("messages")
            .lines()
            .filter(|l| l.contains(&kind) && l.contains(&from))
            .count()
    }

    /// Sends it `signal` (`-USR1`: fill every resting order; `-USR2`: toggle holding).
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill {signal} the acceptor");
    }

    /// Stops it and starts it again on the same port and folder (its sequence numbers are
    /// in its store; its orders are not).
    ///
    /// # Panics
    /// When it does not start again.
    pub fn restart(mut self) -> Self {
        self.stop_now();
        let (dir, port, args) = (self.dir.clone(), self.port, std::mem::take(&mut self.args));
        Self::start_on(&dir, port, args).expect("the acceptor starts again")
    }

    fn stop_now(&mut self) {
        self.signal("-TERM");
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.kill().expect("SIGKILL the acceptor");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Counterparty {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().expect("SIGKILL the acceptor");
            self.child.wait().expect("reaped");
        }
    }
}
