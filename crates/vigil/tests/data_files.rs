//! `vigil run --data FILE` with files a careless operator or a crash leaves behind: no volume
//! column, a device instead of a file, a last line cut short.

mod common;

use std::path::{Path, PathBuf};

use common::{repo, vigil, vigil_log_lines};

/// The repository's GOOG bars, every column but the volume.
fn goog_without_volume(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG");
    let mut out = String::new();
    for line in text.lines() {
        let (kept, _volume) = line.rsplit_once(',').expect("six columns");
        out.push_str(kept);
        out.push('\n');
    }
    let path = dir.join("GOOG_1d.csv");
    std::fs::write(&path, out).expect("write");
    path
}

fn run_json(data: &Path, logs: &Path) -> (std::process::Output, serde_json::Value) {
    let out = vigil()
        .args(["run", "--json", "--data"])
        .arg(data)
        .arg("--log-dir")
        .arg(logs)
        .output()
        .expect("run");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, v)
}

/// The volume column is optional: without it the volume is unknown, not zero, so orders
/// fill (without a volume cap) exactly as they do with it, and the log says so once, at
/// start. Before, every bar had a volume of 0 and not one order ever filled, silently.
#[test]
fn a_csv_without_a_volume_column_trades_uncapped_and_says_so_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_without_volume(dir.path());
    let (out, without) = run_json(&data, &dir.path().join("logs"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, with) = run_json(&repo("data/GOOG_1d.csv"), &dir.path().join("logs-with"));
    assert!(with["fills"].as_u64().expect("fills") > 0, "{with}");
    // The default participation (1) never binds on GOOG's volumes: the same session.
    for key in ["orders", "orders_filled", "fills", "final_equity"] {
        assert_eq!(without[key], with[key], "{key}: {without} vs {with}");
    }
    let lines = vigil_log_lines(&dir.path().join("logs"));
    let warned: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["event"] == "data_volume_unknown")
        .collect();
    assert_eq!(warned.len(), 1, "once, at start");
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["data"]["symbol"], "GOOG");
    assert_eq!(
        warned[0]["data"]["effect"],
        "no volume column: fills are not capped by volume \
         (execution.max_volume_participation does not apply)"
    );
    assert!(
        !lines.iter().any(|v| v["event"] == "order_unfilled"),
        "nothing waits on a volume nobody knows"
    );
}

/// A real zero volume is not unknown: an order the bar would have traded stays open, and the
/// log says why each time (WARN `order_unfilled`), instead of waiting silently.
#[test]
fn an_order_left_unfilled_by_a_zero_volume_bar_is_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG");
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let (kept, volume) = line.rsplit_once(',').expect("six columns");
        // Every bar from the 60th on trades nothing.
        let volume = if i > 60 { "0" } else { volume };
        out.push_str(&format!("{kept},{volume}\n"));
    }
    let data = dir.path().join("GOOG_1d.csv");
    std::fs::write(&data, out).expect("write");
    let logs = dir.path().join("logs");
    let (run, v) = run_json(&data, &logs);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(v["orders"].as_u64().expect("orders") > 0, "{v}");
    let lines = vigil_log_lines(&logs);
    let unfilled: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["event"] == "order_unfilled")
        .collect();
    assert!(!unfilled.is_empty(), "zero-volume bars left orders open");
    let first = unfilled[0];
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["data"]["symbol"], "GOOG");
    assert!(
        first["data"]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("the bar traded no volume; "),
        "{first}"
    );
    assert!(
        !lines.iter().any(|v| v["event"] == "data_volume_unknown"),
        "a zero volume is known"
    );
}

/// A device or a folder is not a bar file: refused at start, naming it, before anything is
/// read (`/dev/zero` used to be read until the allocator aborted).
#[test]
fn a_device_or_a_folder_as_data_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for data in [Path::new("/dev/zero"), dir.path()] {
        let out = vigil()
            .args(["run", "--data"])
            .arg(data)
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", data.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{}: not a regular file (a folder, device or pipe): bar data must be a file",
                data.display()
            )),
            "{err}"
        );
    }
}

/// Binary data and endless lines in a regular file are refused with `FILE:LINE`, at once:
/// memory does not grow with the line.
#[test]
fn nul_bytes_and_endless_lines_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header = "timestamp,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n";
    let nul = dir.path().join("nul_1d.csv");
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&nul, bytes).expect("write");
    let long = dir.path().join("long_1d.csv");
    std::fs::write(&long, format!("{header}{}", "7".repeat(50 << 20))).expect("write");
    for (data, want) in [
        (
            &nul,
            "3: a NUL byte: binary data, not CSV text (a file allocated but never written?)",
        ),
        (&long, "3: line longer than 65536 bytes: not CSV bar data"),
    ] {
        let out = vigil()
            .args(["run", "--data"])
            .arg(data)
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{}", data.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:{want}", data.display())), "{err}");
    }
}

/// A file being written, or truncated, ends in part of a line: its last value may be a
/// prefix of the real one (`101.5` read as `10`). A last line without its line end is
/// refused, never traded on.
#[test]
fn a_last_line_cut_short_is_refused_not_traded_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG");
    let rows: Vec<&str> = text.lines().collect();
    let lines = rows.len();
    let before_last = rows[lines - 2].split(',').next().expect("date").to_string();
    // The last row loses its line end and the last digits of its volume.
    text.truncate(text.len() - 3);
    let data = dir.path().join("GOOG_1d.csv");
    std::fs::write(&data, text).expect("write");
    let (out, v) = run_json(&data, &dir.path().join("logs"));
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        "{}:{lines}: the last line has no line end (cut short?)",
        data.display()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&want), "{err}");
    assert_eq!(v["stop_reason"], "failed");
    assert!(v["error"].as_str().expect("error").contains(&want), "{v}");
    // The rows before it were read; the cut one never reached the models.
    assert_eq!(v["bars"].as_u64(), Some(lines as u64 - 2), "{v}");
    assert!(
        v["last_bar"]
            .as_str()
            .expect("last bar")
            .starts_with(&before_last),
        "{v}"
    );
}
