//! The `vigil` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn config_check_accepts_every_shipped_config() {
    for entry in std::fs::read_dir(repo("config")).expect("config dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = vigil()
                .args(["config", "check"])
                .arg(&path)
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn config_check_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[risk]\nmax_position_pct = \"1.5\"\nmystery = 1\n[signal]\nfast_span = 50\n",
    )
    .expect("write");
    let out = vigil()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 problems"), "{text}");
    assert!(
        text.contains("data.instruments: must list at least one instrument"),
        "{text}"
    );
    assert!(
        text.contains("risk.max_position_pct: must be in (0, 1], got 1.5"),
        "{text}"
    );
    assert!(text.contains("risk.mystery: unknown key"), "{text}");
    assert!(
        text.contains("signal.slow_span: must be greater than signal.fast_span (50), got 30"),
        "{text}"
    );
}

#[test]
fn a_malformed_csv_exits_non_zero_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("x_1d.csv");
    std::fs::write(
        &data,
        "time,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,abc\n",
    )
    .expect("write");
    let out = vigil()
        .args(["run", "--data"])
        .arg(&data)
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:3: column 'close': cannot parse \"abc\" as a decimal",
        data.display()
    );
    assert!(err.contains(&want), "{err}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("stopped         failed"), "{summary}");
}

#[test]
fn a_missing_data_file_is_a_usage_error() {
    let out = vigil()
        .args(["run", "--data", "/nonexistent/file.csv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.csv"));
}

#[test]
fn run_json_reports_the_default_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = vigil()
        .args(["run", "--json", "--log-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(v["bars"], 2148);
    assert_eq!(v["stop_reason"], "end_of_data");
    assert!(v["orders"].as_u64().expect("orders") > 0);
    assert!(v["final_equity"].is_string(), "money is exact text");
}

#[test]
fn sigint_stops_a_paced_session_gracefully_with_its_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Real-time pace on daily bars: without the signal this would run for years.
    let mut child = vigil()
        .args(["run", "--speed", "1", "--log-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // A watchdog so a regression cannot hang the suite: SIGKILL after 60 s.
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if watchdog.recv_timeout(Duration::from_secs(60)).is_err() {
            let killed = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            eprintln!("watchdog: vigil did not stop within 60 s; killed: {killed:?}");
        }
    });
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("vigil printed nothing").expect("read");
        if line.contains("stops it gracefully") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    done.send(()).expect("watchdog alive");
    guard.join().expect("watchdog");
    assert!(out.status.success(), "exit {:?}", out.status);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("stopped         interrupted"), "{summary}");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let log = std::fs::read_to_string(&files[0]).expect("log");
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let last = events.last().expect("lines");
    assert_eq!(last["event"], "session_stopped");
    assert_eq!(last["data"]["reason"], "interrupted");
    let stops: Vec<&str> = events
        .iter()
        .filter(|v| v["event"] == "agent_stopped")
        .map(|v| v["service"].as_str().expect("service"))
        .collect();
    assert_eq!(
        stops,
        [
            "data_agent",
            "regime_agent",
            "signal_agent",
            "risk_agent",
            "execution_agent"
        ]
    );
}
