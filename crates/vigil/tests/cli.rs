//! The `vigil` binary as a user runs it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Running, http_get, repo, vigil, vigil_log_lines};

/// `vigil config check FILE`.
fn config_check(file: impl AsRef<std::ffi::OsStr>) -> std::process::Output {
    vigil()
        .args(["config", "check"])
        .arg(file)
        .output()
        .expect("vigil config check")
}

#[test]
fn config_check_accepts_every_shipped_config() {
    for entry in std::fs::read_dir(repo("config")).expect("config dir") {
        let path = entry.expect("entry").path();
        // rules.toml is the built-in rule table, not a session config (vigil-config's tests
        // parse and check it); gate.toml is the model gate's thresholds (the gate tests run
        // it).
        if path.extension().is_some_and(|e| e == "toml")
            && !path.ends_with("rules.toml")
            && !path.ends_with("gate.toml")
        {
            let out = config_check(&path);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

/// `[signal] model` names a model directory: `vigil config check` loads and checks it, as
/// `vigil run` will, relative to the config file.
#[test]
fn config_check_checks_the_model_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo("config/vigil.toml")).expect("config");
    let file = dir.path().join("model.toml");
    let with = |model: &str| text.replace("model = \"ema_cross\"", &format!("model = {model:?}"));
    std::fs::write(&file, with(&repo("models/goog_mlp").display().to_string())).expect("write");
    let out = config_check(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(&file, with("no_such_model")).expect("write");
    let out = config_check(&file);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("signal.model") && text.contains("no_such_model/model.toml"),
        "{text}"
    );
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
    let out = config_check(&file);
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
fn config_check_lists_every_syntax_and_type_error_with_its_key_and_never_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[store]\nurl = \"postgres://ana:pg-s3cret@db/vigil\n\n[risk]\nmax_position_pct = true\n\
         quantity_step = 0.1.2\n\n[monitor]\nprobe_interval_ms = \"often\"\n",
    )
    .expect("write");
    let out = config_check(&file);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("4 problems"), "{text}");
    for needle in [
        "store.url: invalid TOML: invalid basic string",
        "risk.max_position_pct: expected a decimal number",
        "risk.quantity_step: invalid TOML: ",
        "monitor.probe_interval_ms: expected a whole number from 0 to 18446744073709551615, \
         found a string (line 9, column 21)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert!(!all.contains("pg-s3cret"), "{all}");
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
    let orders = v["orders"].as_u64().expect("orders");
    assert!(orders > 0);
    assert!(v["final_equity"].is_string(), "money is exact text");
    // Every order a bar decided, measured from the bar's arrival to the venue's answer.
    let l = &v["decision_latency"];
    let count = l["count"].as_u64().expect("latencies measured");
    assert!(count > 0 && count <= orders, "{l} for {orders} orders");
    let us = |k: &str| l[k].as_f64().expect(k);
    assert!(
        0.0 < us("p50_us") && us("p50_us") <= us("p99_us") && us("p99_us") <= us("max_us") * 1.02,
        "{l}"
    );
}

#[test]
fn sigint_stops_a_paced_session_gracefully_with_its_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Real-time pace on daily bars: without the signal this would run for years.
    let run = Running::start(&[
        "run".as_ref(),
        "--speed".as_ref(),
        "1".as_ref(),
        "--log-dir".as_ref(),
        dir.path().as_os_str(),
    ]);
    let out = run.interrupt();
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
            "execution_agent",
            "risk_agent"
        ]
    );
}

/// Runs the default session into `dir` and returns the trace id of its last signal.
fn session_into(dir: &Path) -> String {
    let out = vigil()
        .args(["run", "--log-dir"])
        .arg(dir)
        .output()
        .expect("run");
    assert!(out.status.success());
    let q = vigil()
        .args([
            "logs",
            "--event",
            "signal_generated",
            "--format",
            "json",
            "--dir",
        ])
        .arg(dir)
        .output()
        .expect("logs");
    assert!(q.status.success());
    let last = String::from_utf8_lossy(&q.stdout)
        .lines()
        .last()
        .expect("a signal line")
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("json");
    v["trace_id"].as_str().expect("trace").to_string()
}

#[test]
fn logs_query_filters_and_trace_prints_the_chain_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = session_into(dir.path());
    let q = vigil()
        .args(["logs", "--trace", &trace, "--format", "json", "--dir"])
        .arg(dir.path())
        .output()
        .expect("logs");
    let events: Vec<String> = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert_eq!(v["trace_id"], trace.as_str());
            v["event"].as_str().expect("event").to_string()
        })
        .collect();
    assert_eq!(
        events[..4],
        [
            "signal_generated",
            "risk_approved",
            "order_submitted",
            "order_accepted"
        ]
    );
    let t = vigil()
        .args(["logs", "trace", &trace, "--dir"])
        .arg(dir.path())
        .output()
        .expect("trace");
    assert!(t.status.success());
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(text.starts_with(&format!("trace {trace}: ")), "{text}");
    assert!(text.contains("+0.000s"), "{text}");
    // Level and time filters.
    let warn = vigil()
        .args(["logs", "--level", "WARN", "--format", "json", "--dir"])
        .arg(dir.path())
        .output()
        .expect("logs");
    for l in String::from_utf8_lossy(&warn.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        assert!(["WARN", "ERROR", "CRITICAL"].contains(&v["level"].as_str().expect("level")));
    }
    let window = vigil()
        .args([
            "logs",
            "--event",
            "order_filled",
            "--since",
            "2012-01-01T00:00:00Z",
            "--until",
            "2012-12-31T23:59:59Z",
            "--format",
            "json",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("logs");
    let n = String::from_utf8_lossy(&window.stdout).lines().count();
    assert!(n > 0 && n < 20, "{n} fills in 2012");
    let bad = vigil()
        .args(["logs", "--since", "last tuesday", "--dir"])
        .arg(dir.path())
        .output()
        .expect("logs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[test]
fn logs_verify_is_clean_then_names_the_edited_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    session_into(dir.path());
    let ok = vigil()
        .args(["logs", "verify", "--dir"])
        .arg(dir.path())
        .output()
        .expect("verify");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("chain intact"));
    let file = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("log file");
    let text = std::fs::read_to_string(&file).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    // The first INFO line from the 11th on (a host alert, low disk say, may put a WARN
    // line anywhere in the session).
    let at = (10..lines.len())
        .find(|&i| lines[i].contains("\"level\":\"INFO\""))
        .expect("an INFO line from the 11th on");
    let edited = lines[at].replacen("\"INFO\"", "\"WARN\"", 1);
    lines[at] = &edited;
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let bad = vigil()
        .args(["logs", "verify", "--dir"])
        .arg(dir.path())
        .output()
        .expect("verify");
    assert_eq!(bad.status.code(), Some(1));
    let report = String::from_utf8_lossy(&bad.stdout);
    assert!(
        report.contains(&format!(
            "{}:{}: content does not match its hash",
            file.display(),
            at + 1
        )),
        "{report}"
    );
}

fn stdout(args: &[&str]) -> (Option<i32>, String) {
    let out = vigil().args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn calendar_commands_keep_their_exact_contract() {
    let (code, csv) = stdout(&[
        "calendar",
        "sessions",
        "--from",
        "2024-11-26",
        "--to",
        "2024-12-02",
        "--format",
        "csv",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        csv,
        "date,open,close,early_close\n2024-11-26,09:30,16:00,false\n2024-11-27,09:30,16:00,false\n2024-11-29,09:30,13:00,true\n2024-12-02,09:30,16:00,false\n"
    );
    assert_eq!(
        stdout(&["calendar", "is-open", "--at", "2024-11-29T17:59:59Z"]),
        (Some(0), "open\n".into())
    );
    assert_eq!(
        stdout(&["calendar", "is-open", "--at", "2025-01-09T15:00:00Z"]),
        (Some(0), "closed\n".into())
    );
    assert_eq!(
        stdout(&["calendar", "next", "--at", "2024-11-29T18:00:00Z"]),
        (
            Some(0),
            "open 2024-12-02T14:30:00Z\nclose 2024-12-02T21:00:00Z\n".into()
        )
    );
    assert_eq!(
        stdout(&["calendar", "is-trading-day", "--date", "2024-11-29"]).0,
        Some(0)
    );
    assert_eq!(
        stdout(&["calendar", "is-trading-day", "--date", "2012-10-30"]).0,
        Some(1)
    );
    assert_eq!(
        stdout(&["calendar", "is-trading-day", "--date", "2040-01-03"]).0,
        Some(255)
    );
    let (code, text) = stdout(&["schedule", "show", "--date", "2024-11-29"]);
    assert_eq!(code, Some(0));
    assert!(text.contains("12:50 ET  close_only"), "{text}");
    assert!(text.contains("13:30 ET  auto_stop"), "{text}");
}

#[test]
fn an_override_closure_in_the_config_closes_the_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[data]\ninstruments = [{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }]\n\
         [calendar.overrides]\nclosures = [{ date = \"2026-12-31\", reason = \"exchange outage drill\" }]\n",
    )
    .expect("write");
    let cfg = cfg.display().to_string();
    assert_eq!(
        stdout(&["calendar", "is-trading-day", "--date", "2026-12-31"]).0,
        Some(0)
    );
    assert_eq!(
        stdout(&[
            "calendar",
            "is-trading-day",
            "--date",
            "2026-12-31",
            "--config",
            &cfg
        ])
        .0,
        Some(1)
    );
}

#[test]
fn install_systemd_writes_units_that_systemd_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/vigil.toml");
    let out = vigil()
        .args(["schedule", "install-systemd", "--dir"])
        .arg(dir.path())
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .arg("--config")
        .arg(cfg.canonicalize().expect("config"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let service = std::fs::read_to_string(dir.path().join("vigil.service")).expect("service");
    let timer = std::fs::read_to_string(dir.path().join("vigil-start.timer")).expect("timer");
    assert!(
        service.contains("calendar is-trading-day --today"),
        "{service}"
    );
    assert!(timer.contains("America/New_York"), "{timer}");
    if Path::new("/usr/bin/systemd-analyze").exists() || Path::new("/bin/systemd-analyze").exists()
    {
        let v = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join("vigil.service"))
            .arg(dir.path().join("vigil-start.timer"))
            .output()
            .expect("systemd-analyze");
        assert!(
            v.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    } else {
        vigil_testkit::skip_or_require("systemd-analyze not found; unit files not verified");
    }
}

#[test]
fn sighup_reloads_calendar_overrides_and_logs_who_and_what() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("live.toml");
    let write = |closures: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
                 speed = 1\n[log]\ndir = \"{}\"\n[calendar.overrides]\nclosures = [{closures}]\n",
                dir.path().join("logs").display()
            ),
        )
        .expect("write config");
    };
    write("");
    let mut run = Running::start(&["run".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    // A surprise closure, then a broken edit: the first is applied, the second refused.
    write("{ date = \"2026-12-31\", reason = \"surprise closure\" }");
    run.signal("-HUP");
    let line = run.wait_for("calendar reloaded");
    assert!(line.contains("2026-12-31 (surprise closure)"), "{line}");
    write("{ date = \"2026-13-45\", reason = \"typo\" }");
    run.signal("-HUP");
    let line = run.wait_for("config reload refused");
    assert!(
        line.contains("calendar.overrides.closures[0].date: input is out of range (line 7,"),
        "{line}"
    );
    run.interrupt();
    // The audit trail, flushed at shutdown: who, what, and the refusal.
    let log = vigil_log_lines(&dir.path().join("logs"));
    let reloaded = log
        .iter()
        .find(|v| v["event"] == "calendar_reloaded")
        .expect("calendar_reloaded logged");
    assert_eq!(reloaded["data"]["actor"], "operator (SIGHUP)");
    assert!(
        reloaded["data"]["change"]
            .as_str()
            .expect("change")
            .contains("2026-12-31 (surprise closure)")
    );
    let failed = log
        .iter()
        .find(|v| v["event"] == "config_reload_failed")
        .expect("config_reload_failed logged");
    assert_eq!(failed["level"], "ERROR");
}

#[test]
fn day_report_writes_a_sessions_report_from_the_log_and_fails_an_unaccounted_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             [log]\ndir = \"{logs}\"\n[checklist]\ndir = \"{reports}\"\n",
            logs = dir.path().join("logs").display(),
            reports = dir.path().join("reports").display()
        ),
    )
    .expect("write");
    let out = vigil()
        .args(["day-report", "--session", "2024-01-16", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // No close in an empty log: the day is not accounted for.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Day report for the 2024-01-16 session"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no closing snapshot in the log"),
        "{stdout}"
    );
    assert!(stdout.contains("closing_snapshot fail"), "{stdout}");
    let written = dir.path().join("reports").join("day-2024-01-16.txt");
    assert_eq!(std::fs::read_to_string(&written).expect("written"), stdout);
    assert!(stderr.contains("day-2024-01-16.json"), "{stderr}");
    let bad = vigil()
        .args(["day-report", "--session", "2024-13-01"])
        .output()
        .expect("run");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad date is refused by the parser"
    );
}

#[test]
fn a_failing_checklist_exits_non_zero_and_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             [log]\ndir = \"{logs}\"\n[checklist]\ndir = \"{reports}\"\n\
             warn_free_disk_gb = 1000000000\nfail_free_disk_gb = 1000000000\n",
            logs = dir.path().join("logs").display(),
            reports = dir.path().join("reports").display()
        ),
    )
    .expect("write");
    let out = vigil()
        .args(["checklist", "premarket", "--json", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "fail");
    let disk = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "disk_space")
        .expect("disk check");
    assert_eq!(disk["status"], "fail");
    assert!(
        disk["reason"]
            .as_str()
            .expect("reason")
            .contains("below 1000000000 GB")
    );
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .expect("reports stored")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("premarket-"), "{stored:?}");
}

#[test]
fn health_endpoints_status_and_a_promtool_clean_metrics_scrape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let cfg = dir.path().join("vigil.toml");
    // Probe often so the test does not wait for the 5 s default. A disk_low rule no disk
    // passes fires an alert, so that the alerting series are in the scrape promtool lints.
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             [monitor]\nprobe_interval_ms = 100\nheartbeat_interval_ms = 100\n\
             [[monitor.rules]]\nname = \"disk_low\"\nmetric = \"disk_free_bytes\"\n\
             op = \"<\"\nvalue = 1e18\nlevel = \"WARN\"\n\
             [store]\npath = \"{}\"\n",
            dir.path().join("state/vigil.db").display()
        ),
    )
    .expect("write config");
    let mut run = Running::start(&[
        "run".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--speed".as_ref(),
        "86400".as_ref(),
        "--control".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--log-dir".as_ref(),
        logs.as_os_str(),
    ]);
    let addr = run.control.clone().expect("control address printed");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(
        std::fs::read_to_string(logs.join("control.addr"))
            .expect("address file")
            .trim(),
        format!("http://{addr}")
    );
    // The token, made at the first start next to the store, readable by its owner only.
    let token_file = dir.path().join("state/control.token");
    let token = common::token(&token_file);
    assert_eq!(token.len(), 64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file)
            .expect("token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    for path in ["/healthz", "/readyz", "/status", "/metrics"] {
        let (code, body) = common::http_call(&addr, "GET", path, None, None);
        assert_eq!(code, 401, "{path} without the token: {body}");
    }

    // Ready once every agent has reported and the data source and venue answered a ping;
    // the Monitor announces the change on standard error. (Before the Monitor's first
    // status, /healthz answers 503 "starting", so it is asked after.)
    run.wait_for("vigil: ready to trade");
    let (code, body) = http_get(&addr, "/healthz", &token);
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(&addr, "/readyz", &token);
    if code != 200 {
        // Seen twice under heavy load and not reproduced since: say all there is to say.
        let (_, status) = http_get(&addr, "/status", &token);
        let next = run.wait_for("vigil:");
        panic!(
            "/readyz answered {code} after the ready line: {body}\n/status: {status}\nnext line on stderr: {next}"
        );
    }
    let (code, body) = http_get(&addr, "/status", &token);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(v["ready"], true, "{body}");
    assert_eq!(v["venue"]["name"], "paper");
    let agents: Vec<&str> = v["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["agent"].as_str().expect("name"))
        .collect();
    assert_eq!(agents, ["data", "regime", "signal", "risk", "execution"]);

    let out = vigil()
        .args(["status", "--control", &addr, "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("READY") && text.contains("execution"),
        "{text}"
    );

    common::feed::wait_for_event(dir.path(), "alert_firing");
    let (code, metrics) = http_get(&addr, "/metrics", &token);
    assert_eq!(code, 200);
    for name in [
        "# TYPE vigil_alerts_fired_total counter",
        "vigil_agent_up{agent=\"signal\"} 1",
        "vigil_ready 1",
        "# TYPE vigil_data_bars_total counter",
        "vigil_system_memory_usage_ratio",
        "# TYPE vigil_control_requests_total counter",
        "vigil_control_requests_total{outcome=\"unauthorized\"} 4",
        // The model traded, so that performance can be tied to a version.
        "vigil_model_info{model=\"ema_cross\",version=\"1\"} 1",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    match Command::new("promtool").arg("--version").output() {
        Ok(_) => {
            let mut check = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool");
            std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), metrics.as_bytes())
                .expect("pipe the scrape");
            let out = check.wait_with_output().expect("promtool ran");
            assert!(
                out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
                "promtool check metrics complained:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => vigil_testkit::skip_or_require(
            "promtool not installed (apt-get install prometheus); the /metrics scrape was not linted",
        ),
    }

    run.interrupt();
    assert!(
        !logs.join("control.addr").exists(),
        "the address file goes with the process"
    );
    let out = vigil()
        .args(["status", "--log-dir"])
        .arg(&logs)
        .output()
        .expect("vigil status");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("vigil is not running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vigil alerts silence` against a real running vigil: the Monitor picks the request up
/// from the store within a heartbeat and answers with the silence's id; `list` and
/// `history` show it; `unsilence` removes it.
#[test]
fn alerts_silence_reaches_a_running_vigil_and_is_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let store = dir.path().join("state.db");
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             speed = 1\n[monitor]\nheartbeat_interval_ms = 100\n[store]\npath = \"{}\"\n",
            store.display()
        ),
    )
    .expect("write config");
    let run = Running::start(&[
        "run".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--control".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--log-dir".as_ref(),
        logs.as_os_str(),
    ]);
    let alerts = |args: &[&str]| {
        let mut cmd = vigil();
        cmd.arg("alerts").args(args).arg("--config").arg(&cfg);
        if ["silence", "unsilence", "ack"].contains(&args[0]) {
            cmd.arg("--log-dir").arg(&logs);
        }
        let out = cmd.output().expect("vigil alerts");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = alerts(&[
        "silence",
        "--match",
        "rule=cpu_high",
        "--for",
        "2h",
        "--reason",
        "kernel upgrade",
        "--who",
        "ana",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("s-1"), "{text}");

    let (code, text) = alerts(&["list", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("list --json");
    let silences = v["silences"].as_array().expect("silences");
    assert!(
        silences.iter().any(|s| s["id"] == "s-1"
            && s["created_by"] == "ana"
            && s["reason"] == "kernel upgrade"),
        "{v}"
    );

    let (code, text) = alerts(&["unsilence", "s-1", "--who", "ana"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = alerts(&["unsilence", "s-1", "--who", "ana"]);
    assert_eq!(code, Some(1), "a second unsilence is refused: {text}");

    let (code, text) = alerts(&["history", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let kinds: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["kind"].as_str().map(str::to_string))
        .collect();
    assert!(kinds.contains(&"silence".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"unsilence".to_string()), "{kinds:?}");

    run.interrupt();
}

/// Completions and manual pages come from the command line's own definition: the bash
/// script parses and knows the subcommands; every subcommand has its page.
#[test]
fn completions_and_man_pages_are_made_from_the_cli() {
    let out = vigil()
        .args(["completions", "bash"])
        .output()
        .expect("vigil completions");
    assert!(out.status.success(), "{out:?}");
    let script = String::from_utf8(out.stdout).expect("utf-8");
    for sub in ["run", "ctl", "checklist", "completions", "man"] {
        assert!(script.contains(sub), "{sub} in the bash completions");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vigil.bash");
    std::fs::write(&file, &script).expect("write");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash -n");
    assert!(syntax.status.success(), "{syntax:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = vigil().args(["completions", shell]).output().expect("run");
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "{shell}: {out:?}"
        );
    }
    assert!(
        !vigil()
            .args(["completions", "tcsh"])
            .output()
            .expect("run")
            .status
            .success()
    );

    let man = dir.path().join("man1");
    let out = vigil()
        .args(["man", "--dir"])
        .arg(&man)
        .output()
        .expect("vigil man");
    assert!(out.status.success(), "{out:?}");
    let page = std::fs::read_to_string(man.join("vigil.1")).expect("vigil.1");
    assert!(page.contains(".TH vigil 1"), "{page}");
    assert!(page.contains(".SH NAME\nvigil \\-"), "{page}");
    assert!(
        page.contains("completions"),
        "the subcommands are listed: {page}"
    );
    for sub in [
        "vigil-run.1",
        "vigil-ctl.1",
        "vigil-model.1",
        "vigil-schedule-install-systemd.1",
    ] {
        assert!(man.join(sub).is_file(), "{sub}");
    }
}
