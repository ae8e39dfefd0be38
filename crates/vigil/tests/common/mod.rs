//! Helpers shared by the tests of the `vigil` binary: running it in a folder of its own, a
//! `vigil run` in the background, the control API over HTTP, the log.

#![allow(dead_code)] // each test binary uses some of them

pub(crate) mod broker;
pub(crate) mod browser;
pub(crate) mod crash;
pub(crate) mod feed;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The binary, run in a folder of its own: what it keeps relative to the working
/// directory (the store, `state/vigil.db`) is never shared between tests.
pub(crate) fn vigil() -> Command {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("working folder");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(dir);
    cmd
}

/// The arguments of `vigil run --config CFG --json`.
pub(crate) fn run_args(cfg: &Path) -> Vec<&std::ffi::OsStr> {
    vec![
        "run".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--json".as_ref(),
    ]
}

/// `vigil run --config CFG --json` in the background.
pub(crate) fn run_on(cfg: &Path) -> Running {
    Running::start(&run_args(cfg))
}

/// A path in the repository.
pub(crate) fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The child's standard error, line by line, read on a thread of its own (a bounded wait
/// is then `recv_timeout`).
pub(crate) fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// A `vigil run` in the background, read from its ready line on, with a watchdog that
/// SIGKILLs it after 60 s so a regression cannot hang the suite.
///
/// Its standard output and error are read from the start on threads of their own: a pipe
/// nobody reads fills (64 KiB), and then the next write blocks vigil. A test that injects
/// panics under `RUST_BACKTRACE=1` (as CI sets) fills it in three panics.
pub(crate) struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    done: std::sync::mpsc::Sender<()>,
    guard: std::thread::JoinHandle<()>,
    /// The control address it printed, without the scheme (`127.0.0.1:PORT`).
    pub(crate) control: Option<String>,
    /// The lines of standard error read so far.
    seen: Vec<String>,
}

impl Running {
    pub(crate) fn start(args: &[&std::ffi::OsStr]) -> Self {
        let mut run = Self::spawn(args);
        let line = run.wait_for("vigil: control address ");
        run.control = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string);
        run.wait_for("stops it gracefully");
        run
    }

    /// Another long-running command than `vigil run` (no control address): started, and
    /// given back once its standard error says `ready`.
    pub(crate) fn start_until(args: &[&std::ffi::OsStr], ready: &str) -> Self {
        let mut run = Self::spawn(args);
        run.wait_for(ready);
        run
    }

    fn spawn(args: &[&std::ffi::OsStr]) -> Self {
        let mut child = vigil()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = child.id().to_string();
        let (done, watchdog) = std::sync::mpsc::channel::<()>();
        let guard = std::thread::spawn(move || {
            if watchdog.recv_timeout(Duration::from_secs(60)).is_err() {
                let killed = Command::new("kill").args(["-KILL", &pid]).status();
                eprintln!("watchdog: vigil did not stop within 60 s; killed: {killed:?}");
            }
        });
        let lines = stderr_lines(&mut child);
        let mut out = child.stdout.take().expect("stdout piped");
        let stdout = std::thread::spawn(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut all).expect("read vigil's stdout");
            all
        });
        Self {
            child,
            lines,
            stdout,
            done,
            guard,
            control: None,
            seen: Vec::new(),
        }
    }

    /// Reads standard error until a line contains `needle`, and returns that line.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self.lines.recv().unwrap_or_else(|_| {
                panic!(
                    "vigil ended before {needle:?}; its standard error:\n{}",
                    self.seen.join("\n")
                )
            });
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig}");
    }

    /// Stops it with Ctrl-C and checks that it exited cleanly.
    pub(crate) fn interrupt(self) -> std::process::Output {
        self.signal("-INT");
        self.finish_ok()
    }

    /// Stops it with Ctrl-C, checks that it exited cleanly, and returns its output with
    /// everything it wrote to standard error from the start.
    pub(crate) fn interrupt_with_stderr(self) -> (std::process::Output, String) {
        self.signal("-INT");
        let out = self.finish_ok();
        let all = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, all)
    }

    /// Waits for it to end and checks that it exited 0.
    pub(crate) fn finish_ok(self) -> std::process::Output {
        let out = self.finish();
        assert!(
            out.status.success(),
            "exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Waits for it to end: its exit status, its standard output, and everything it wrote
    /// to standard error from the start.
    pub(crate) fn finish(mut self) -> std::process::Output {
        let status = self.child.wait().expect("wait");
        self.done.send(()).expect("watchdog alive");
        self.guard.join().expect("watchdog");
        // The reader ends with the pipe, once vigil (and anything it spawned) closed it.
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.lines.iter());
        std::process::Output {
            status,
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: all.join("\n").into_bytes(),
        }
    }
}

/// Sends a request to a running vigil's control API, with `token` as the bearer token:
/// (status code, body).
pub(crate) fn http_call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    vigil_testkit::http_text(&format!("http://{addr}"), method, path, &headers, body)
}

/// GETs `path` from a running vigil with its token: (status code, body).
pub(crate) fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    http_call(addr, "GET", path, Some(token), None)
}

/// The bearer token in `file`.
pub(crate) fn token(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("token file {}: {e}", file.display()))
        .trim()
        .to_string()
}

/// Every line of every log file in `dir`, file by file (one file in these tests).
pub(crate) fn vigil_log_lines(dir: &Path) -> Vec<serde_json::Value> {
    // The log files only (not the fleet's cursor beside them), in the order written.
    let Ok(files) = vigil_log::list_log_files(dir) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f.path) {
            lines.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    lines
}

/// A copy of the embedded default config whose store (`state.db`) and log (`logs/`) are in
/// `dir`.
pub(crate) fn scratch_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("vigil.toml");
    let text = std::fs::read_to_string(repo("config/vigil.toml")).expect("config/vigil.toml");
    let text = text.replace(
        "dir = \"logs\"",
        &format!("dir = {:?}", dir.join("logs").display().to_string()),
    );
    std::fs::write(
        &config,
        format!(
            "{text}\n[store]\npath = {:?}\n",
            dir.join("state.db").display().to_string()
        ),
    )
    .expect("config");
    config
}

/// A copy of the bundled network in `to`, its manifest changed by `edit`.
pub(crate) fn copy_model(to: &Path, edit: impl Fn(String) -> String) -> String {
    std::fs::create_dir_all(to).expect("model folder");
    for entry in std::fs::read_dir(repo("models/goog_mlp")).expect("model") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    let manifest = to.join("model.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, edit(text)).expect("manifest");
    to.to_str().expect("utf-8").to_string()
}
