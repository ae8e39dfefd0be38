//! The seed incident's last question: would anybody notice if vigil itself froze over the
//! weekend? `vigil run` pings an outside heartbeat URL (`monitor.dead_man.heartbeat_url`,
//! here a recording HTTP server on 127.0.0.1) while it is healthy. A frozen process
//! (SIGSTOP) sends nothing, so the outside watcher sees the silence; thawed (SIGCONT), it
//! pings again. The rest of the incident (the changed feed format, failover, the breaker,
//! Monday) is `tests/tests/incident.rs`, in simulated time.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::vigil;
use vigil_testkit::HttpReceiver;

/// The ping interval: the shortest `heartbeat_interval_s` allows.
const INTERVAL: Duration = Duration::from_secs(1);
/// The bound on every wait for something that must happen.
use vigil_testkit::PATIENCE;

/// A `vigil run` child: thawed, SIGKILLed and reaped when dropped, on every path (a failed
/// assertion included).
struct Frozen {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Frozen {
    fn start(config: &std::path::Path) -> Self {
        let mut child = vigil()
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil run");
        let lines = common::stderr_lines(&mut child);
        let mut run = Self { child, lines };
        run.wait_for("stops it gracefully");
        run
    }

    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no line with {needle:?} from vigil run: {e}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig}");
    }

    /// The process state letter from `/proc` (`T` when stopped).
    fn state(&self) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("/proc/PID/stat");
        // `pid (comm) S …`: the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .expect("a state")
    }

    /// SIGTERM, then the exit within [`PATIENCE`].
    fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vigil run did not stop within {PATIENCE:?} of SIGTERM"
            );
            // Polling for the exit; nothing else to wait on without a second thread.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // A stopped process dies of SIGKILL too; SIGCONT first keeps it tidy.
            if let Err(e) = Command::new("kill")
                .args(["-CONT", &self.child.id().to_string()])
                .status()
            {
                eprintln!("cannot SIGCONT vigil run: {e}");
            }
            if let Err(e) = self.child.kill() {
                eprintln!("cannot kill vigil run: {e}");
            }
            if let Err(e) = self.child.wait() {
                eprintln!("cannot reap vigil run: {e}");
            }
        }
    }
}

/// The pings that arrive within `within`.
fn pings_within(hook: &HttpReceiver, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut n = 0;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match hook.next(left) {
            Some(r) => {
                assert!(r.path.starts_with("/ping/"), "{r:?}");
                n += 1;
            }
            None => break,
        }
    }
    n
}

#[test]
fn a_frozen_vigil_stops_pinging_the_outside_heartbeat_and_pings_again_when_thawed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HttpReceiver::start();
    let cfg = dir.path().join("vigil.toml");
    // A daily-bar replay at real speed: the session runs far longer than the test.
    std::fs::write(
        &cfg,
        format!(
            r#"
[data]
instruments = [{{ symbol = "GOOG", path = "bundled:GOOG_1d.csv" }}]
speed = 1

[monitor.dead_man]
heartbeat_url = "{url}"
heartbeat_interval_s = 1
heartbeat_timeout_ms = 2000

[log]
dir = "{logs}"

[store]
path = "{store}"

[control]
enabled = false
"#,
            url = hook.url("/ping/weekend-watch"),
            logs = dir.path().join("logs").display(),
            store = dir.path().join("state.db").display(),
        ),
    )
    .expect("write config");

    let run = Frozen::start(&cfg);
    // Healthy: a ping every interval.
    for n in 0..2 {
        let ping = hook
            .next(PATIENCE)
            .unwrap_or_else(|| panic!("ping {n} within {PATIENCE:?}"));
        assert_eq!(ping.method, "GET");
        assert_eq!(ping.path, "/ping/weekend-watch");
    }

    // Frozen: a ping already on its way may still land; then nothing, for three intervals
    // and more: an outside watcher with a window of that size raises the alarm.
    run.signal("-STOP");
    let deadline = Instant::now() + PATIENCE;
    while run.state() != 'T' {
        assert!(Instant::now() < deadline, "the process did not stop");
        std::thread::yield_now();
    }
    pings_within(&hook, INTERVAL / 2);
    let silent = 3 * INTERVAL + INTERVAL / 2;
    assert_eq!(
        pings_within(&hook, silent),
        0,
        "a stopped process sent a ping"
    );
    assert_eq!(run.state(), 'T', "still stopped");

    // Thawed: the pings come back.
    run.signal("-CONT");
    assert!(
        hook.next(PATIENCE).is_some(),
        "pings resume within {PATIENCE:?} of SIGCONT"
    );
    assert!(hook.next(PATIENCE).is_some(), "and go on");

    let status = run.stop();
    assert!(status.success(), "SIGTERM ends vigil run cleanly: {status}");
}
