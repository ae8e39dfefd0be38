//! `vigil ctl` end to end: a paced `vigil run` in the background, driven by `vigil ctl` as
//! an operator would, with the log read back to check what the agents did. Every wait is a
//! poll of the log file (or of the process's standard error) with a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Running, http_call, token, vigil, vigil_log_lines};
use serde_json::Value;
use vigil_testkit::PATIENCE;

struct Env {
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl Env {
    /// Random-walk minute bars replayed at 50 ms a bar, one bar a batch, with fast EMAs so
    /// that a signal comes every few bars.
    fn new() -> Self {
        Self::with("")
    }

    /// [`Env::new`] with `extra` appended to the config: its first lines land in the
    /// `[control]` table, which comes last.
    fn with(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bars = dir.path().join("SYN_1m.csv");
        let out = vigil()
            .args(["data", "synth", "--bars", "3000", "--seed", "7", "--out"])
            .arg(&bars)
            .output()
            .expect("vigil data synth");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg = dir.path().join("vigil.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"
[data]
instruments = [{{ symbol = "SYN", path = "{bars}" }}]
speed = 1200
batch_size = 1

[signal]
fast_span = 2
slow_span = 4

[monitor]
probe_interval_ms = 100
heartbeat_interval_ms = 100

{home}{extra}
"#,
                bars = bars.display(),
                home = vigil_testkit::config::home_sections(dir.path(), "", ""),
            ),
        )
        .expect("write config");
        Self { dir, cfg }
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("state/control.token")
    }

    fn ctl(&self, args: &[&str]) -> (Option<i32>, String, String) {
        ctl(&self.cfg, args)
    }

    /// Polls `vigil ctl status` (exit 0 when ready, 1 when not) until its output holds
    /// `needle`; returns that output.
    fn wait_status(&self, needle: &str) -> String {
        let end = Instant::now() + PATIENCE;
        loop {
            let (code, status, err) = self.ctl(&["status"]);
            assert!(matches!(code, Some(0 | 1)), "status failed: {err}");
            if status.contains(needle) {
                return status;
            }
            assert!(
                Instant::now() < end,
                "gave up after {PATIENCE:?} waiting for {needle:?} in the status:\n{status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the log until `done` holds; returns the lines then.
    fn wait_log(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let end = Instant::now() + PATIENCE;
        loop {
            let lines = vigil_log_lines(&self.logs());
            if done(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < end,
                "gave up after {PATIENCE:?} waiting for {what}; last lines: {:#?}",
                &lines[lines.len().saturating_sub(5)..]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `vigil ctl ARGS --config CFG`, from a folder of its own: (exit code, stdout, stderr).
fn ctl(cfg: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = vigil()
        .arg("ctl")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("vigil ctl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn index_of(log: &[Value], event: &str) -> Option<usize> {
    log.iter().position(|v| v["event"] == event)
}

fn count_after(log: &[Value], from: usize, event: &str) -> usize {
    log[from..].iter().filter(|v| v["event"] == event).count()
}

#[track_caller]
fn ok(got: (Option<i32>, String, String)) -> String {
    assert_eq!(got.0, Some(0), "stdout: {}\nstderr: {}", got.1, got.2);
    got.1
}

#[test]
fn an_operator_drives_a_running_vigil_with_vigil_ctl() {
    let env = Env::new();
    let cfg = env.cfg.as_os_str();
    let mut run = Running::start(&["run".as_ref(), "--config".as_ref(), cfg]);
    let addr = run.control.clone().expect("control address printed");
    run.wait_for("vigil: ready to trade");

    // Status, as `vigil status`.
    let status = ok(env.ctl(&["status"]));
    assert!(
        status.contains("READY") && status.contains("signal"),
        "{status}"
    );

    // Pause: the Signal agent keeps computing but emits nothing; resume: signals again.
    env.wait_log("a first signal", |l| {
        index_of(l, "signal_generated").is_some()
    });
    let out = ok(env.ctl(&[
        "pause",
        "signal",
        "--reason",
        "news at 14:30",
        "--who",
        "alice",
    ]));
    assert!(
        out.starts_with("pause signal: the signal agent is paused (audit #"),
        "{out}"
    );
    env.wait_log("signals suppressed while paused", |l| {
        index_of(l, "agent_paused").is_some_and(|p| count_after(l, p, "signal_suppressed") >= 2)
    });
    // Again: nothing changes, and it says so.
    let out = ok(env.ctl(&["pause", "signal", "--reason", "news at 14:30"]));
    assert!(out.contains("already paused"), "{out}");
    ok(env.ctl(&[
        "resume",
        "signal",
        "--reason",
        "news digested",
        "--who",
        "alice",
    ]));
    let log = env.wait_log("signals after the resume", |l| {
        index_of(l, "agent_resumed").is_some_and(|r| count_after(l, r, "signal_generated") >= 1)
    });
    let (paused, resumed) = (
        index_of(&log, "agent_paused").expect("paused"),
        index_of(&log, "agent_resumed").expect("resumed"),
    );
    assert!(paused < resumed);
    assert_eq!(
        log[paused..resumed]
            .iter()
            .filter(|v| v["event"] == "signal_generated")
            .count(),
        0,
        "no signal between pause and resume"
    );
    assert_eq!(log[paused]["data"]["actor"], "alice");
    assert_eq!(log[paused]["data"]["reason"], "news at 14:30");

    // The breaker: Risk rejects every signal as halted until the reset.
    ok(env.ctl(&["breaker", "trip", "--reason", "drill"]));
    env.wait_log("rejections while halted", |l| {
        index_of(l, "breaker_tripped").is_some_and(|t| count_after(l, t, "risk_rejected") >= 2)
    });
    ok(env.ctl(&["breaker", "reset", "--reason", "drill over"]));
    let log = env.wait_log("the reset", |l| index_of(l, "breaker_reset").is_some());
    let (tripped, reset) = (
        index_of(&log, "breaker_tripped").expect("tripped"),
        index_of(&log, "breaker_reset").expect("reset"),
    );
    let window = &log[tripped..reset];
    assert_eq!(
        window
            .iter()
            .filter(|v| v["event"] == "risk_approved")
            .count(),
        0,
        "Risk approves nothing while halted"
    );
    let rejected: Vec<&Value> = window
        .iter()
        .filter(|v| v["event"] == "risk_rejected")
        .collect();
    assert!(rejected.len() >= 2);
    assert!(
        rejected.iter().all(|v| v["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("halted"))),
        "{rejected:?}"
    );

    // A refusal: the server's reason, exit 1. A missing reason: exit 2 before any request.
    let (code, _, err) = env.ctl(&["pause", "data", "--reason", "try"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("refused (HTTP 400): agent data cannot be paused"),
        "{err}"
    );
    let (code, _, err) = env.ctl(&["flatten"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--reason TEXT is required"), "{err}");

    // Without the token, or with another, nothing is served.
    let tok = token(&env.token_file());
    assert_eq!(http_call(&addr, "GET", "/healthz", None, None).0, 401);
    let body = r#"{"command":"shutdown","reason":"x","who":"mallory"}"#;
    let (code, answer) = http_call(&addr, "POST", "/v1/commands", None, Some(body));
    assert_eq!(code, 401, "{answer}");
    let wrong = "f".repeat(64);
    let (code, answer) = http_call(&addr, "POST", "/v1/commands", Some(&wrong), Some(body));
    assert_eq!(code, 401, "{answer}");
    let other = env.dir.path().join("other.token");
    vigil_testkit::write_secret_file(&other, format!("{wrong}\n"));
    let (code, _, err) = env.ctl(&["status", "--token-file", other.to_str().expect("utf-8")]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("unauthorized"), "{err}");
    let (code, answer) = http_call(
        &addr,
        "POST",
        "/v1/commands",
        Some(&tok),
        Some(r#"{"command":"pause","agent":"signal","who":"ana"}"#),
    );
    assert_eq!(code, 400);
    assert!(answer.contains("missing field \\\"reason\\\""), "{answer}");

    // Rotation while running: the old token stops working, `vigil ctl` reads the new one.
    ok(env.ctl(&["rotate-token", "--reason", "quarterly"]));
    let new = token(&env.token_file());
    assert_ne!(new, tok);
    assert_eq!(
        http_call(&addr, "GET", "/v1/status", Some(&tok), None).0,
        401
    );
    assert_eq!(
        http_call(&addr, "GET", "/v1/status", Some(&new), None).0,
        200
    );
    // (Ready or not: the Monitor may not have seen the reset yet; the token is the point.)
    let (code, out, err) = env.ctl(&["status"]);
    assert!(matches!(code, Some(0 | 1)), "{code:?} {err}");
    assert!(out.starts_with("session "), "{out}");

    // The audit, while running.
    let audit = ok(env.ctl(&["audit", "--json"]));
    let rows: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let commands: Vec<(&str, &str, Option<u64>)> = rows
        .iter()
        .map(|r| {
            (
                r["command"].as_str().expect("command"),
                r["who"].as_str().expect("who"),
                r["status"].as_u64(),
            )
        })
        .collect();
    assert_eq!(commands[0], ("pause", "alice", Some(200)));
    assert!(
        commands
            .iter()
            .any(|(c, _, status)| *c == "breaker_trip" && *status == Some(200)),
        "{commands:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["command"] == "pause" && r["argument"] == "data" && r["status"] == 400)
    );
    assert_eq!(rows.last().expect("rows")["command"], "rotate_token");

    // Shutdown: the session drains and `vigil run` exits 0.
    let out = ok(env.ctl(&["shutdown", "--reason", "end of the test"]));
    assert!(out.contains("stopping"), "{out}");
    let finished = run.finish_ok();
    let summary = String::from_utf8_lossy(&finished.stdout);
    assert!(summary.contains("stopped         interrupted"), "{summary}");

    // Stopped: status says so (exit 3); the audit and rotation still work.
    let (code, _, err) = env.ctl(&["status"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "vigil is not running (no control address in {})",
            env.logs().join("control.addr").display()
        )),
        "{err}"
    );
    let (code, _, err) = env.ctl(&["pause", "signal", "--reason", "late"]);
    assert_eq!(code, Some(3), "{err}");
    let table = ok(env.ctl(&["audit"]));
    assert!(
        table.contains("shutdown") && table.contains("end of the test"),
        "{table}"
    );
    let out = ok(env.ctl(&["rotate-token"]));
    assert!(out.contains("wrote a new token"), "{out}");
    assert_ne!(token(&env.token_file()), new);

    // Every command is in the log too, with who and why.
    let log = vigil_log_lines(&env.logs());
    let lines: Vec<&Value> = log
        .iter()
        .filter(|v| v["event"] == "control_command")
        .collect();
    assert!(lines.len() >= 7, "{lines:?}");
    assert_eq!(lines[0]["data"]["who"], "alice");
    assert_eq!(lines[0]["data"]["command"], "pause");
    assert_eq!(lines[0]["level"], "WARN");
    let unauthorized = log
        .iter()
        .filter(|v| v["event"] == "control_unauthorized")
        .count();
    assert!(unauthorized >= 5, "{unauthorized}");
    let all = serde_json::to_string(&log).expect("json");
    assert!(
        !all.contains(&tok) && !all.contains(&new),
        "a token reached the log"
    );
}

/// Supervision through real processes: a panic injected into a running agent is caught, the
/// agent restarts and trading goes on; a panic loop exceeds the restart intensity, which
/// trips the breaker and is logged CRITICAL, and the Risk agent approves nothing after.
#[test]
fn an_injected_panic_is_survived_and_a_panic_loop_halts_trading() {
    let env = Env::with(
        "fault_injection = true\n\n[monitor.supervision]\nbackoff_initial_ms = 100\nbackoff_max_ms = 1000\n",
    );
    let cfg = env.cfg.as_os_str();
    let run = Running::start(&["run".as_ref(), "--config".as_ref(), cfg]);
    env.wait_log("a first fill", |l| index_of(l, "fill_received").is_some());

    // One panic in the Signal agent: caught, logged with its message, restarted.
    let out = ok(env.ctl(&["inject-panic", "signal", "--reason", "supervision test"]));
    assert!(out.contains("inject-panic signal"), "{out}");
    let log = env.wait_log("the signal agent restarted and trading again", |l| {
        index_of(l, "agent_restarted").is_some_and(|r| {
            count_after(l, r, "signal_generated") >= 1 && count_after(l, r, "fill_received") >= 1
        })
    });
    let crashed = &log[index_of(&log, "agent_crashed").expect("crash logged")];
    assert_eq!(crashed["level"], "ERROR");
    assert_eq!(crashed["data"]["agent"], "signal");
    let panic = crashed["data"]["panic"].as_str().expect("panic message");
    assert!(
        panic.contains("injected panic in the signal agent"),
        "{panic}"
    );
    assert!(
        crashed["data"]["location"]
            .as_str()
            .is_some_and(|l| l.contains(".rs:"))
    );
    // Back in service: the status shows the agent running again, not failed.
    let status = env.wait_status("\n  READY");
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("signal "))
        .expect("the signal agent's line");
    assert!(line.contains("running"), "{status}");

    // A panic loop in the Risk agent: four crashes against three restarts a minute.
    ok(env.ctl(&[
        "inject-panic",
        "risk",
        "--times",
        "4",
        "--reason",
        "crash loop test",
    ]));
    let log = env.wait_log("the breaker tripped after the crash loop", |l| {
        index_of(l, "restart_intensity_exceeded")
            .is_some_and(|x| count_after(l, x, "breaker_tripped") >= 1)
    });
    let x = index_of(&log, "restart_intensity_exceeded").expect("escalated");
    assert_eq!(log[x]["level"], "CRITICAL");
    assert_eq!(log[x]["data"]["agent"], "risk");
    let risk_crashes = log
        .iter()
        .filter(|v| v["event"] == "agent_crashed" && v["data"]["agent"] == "risk")
        .count();
    assert_eq!(risk_crashes, 4);
    // Halted: the Risk agent, restarted once more, rejects and approves nothing.
    let log = env.wait_log("a signal rejected while halted", |l| {
        l.iter()
            .position(|v| v["event"] == "breaker_tripped")
            .is_some_and(|t| {
                l[t..].iter().any(|v| {
                    v["event"] == "risk_rejected"
                        && v["data"]["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("halted"))
                })
            })
    });
    let tripped = log
        .iter()
        .position(|v| v["event"] == "breaker_tripped")
        .expect("tripped");
    assert_eq!(count_after(&log, tripped, "risk_approved"), 0);
    env.wait_status("trading halted");

    ok(env.ctl(&["shutdown", "--reason", "end of the test"]));
    run.finish_ok();
}

/// HTTPS: `vigil ctl` trusts the certificate named by the config's `control.tls_cert`.
#[test]
fn vigil_ctl_talks_https_to_a_vigil_with_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert");
    vigil_testkit::write_secret_file(&key_file, cert.key_pair.serialize_pem());
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             speed = 1\n[log]\ndir = \"{logs}\"\n[store]\npath = \"{store}\"\n\
             [control]\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n",
            logs = dir.path().join("logs").display(),
            store = dir.path().join("state/vigil.db").display(),
            cert = cert_file.display(),
            key = key_file.display(),
        ),
    )
    .expect("write config");
    let run = Running::start(&["run".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    let addr = std::fs::read_to_string(dir.path().join("logs/control.addr")).expect("address");
    assert!(addr.starts_with("https://127.0.0.1:"), "{addr}");
    let ctl = |args: &[&str]| ctl(&cfg, args);
    let (code, out, err) = ctl(&["status"]);
    assert!(matches!(code, Some(0 | 1)), "{code:?} {err}");
    assert!(
        out.starts_with("session ") && out.contains("https://"),
        "{out}"
    );
    // Plain HTTP gets nothing from the TLS port.
    let plain = ctl(&[
        "status",
        "--control",
        addr.trim().trim_start_matches("https://"),
    ]);
    assert_ne!(plain.0, Some(0), "{plain:?}");
    let out = ok(ctl(&["shutdown", "--reason", "done"]));
    assert!(out.contains("stopping"), "{out}");
    run.finish_ok();
}

/// Plain HTTP off loopback is refused before anything is bound.
#[test]
fn a_non_loopback_control_address_without_tls_is_refused_at_start() {
    let out = vigil()
        .args(["run", "--control", "0.0.0.0:0"])
        .output()
        .expect("vigil run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("control.address: 0.0.0.0:0 is not a loopback address")
            && err.contains("control.tls_cert")
            && err.contains("allow_insecure_remote"),
        "{err}"
    );
}

#[test]
fn the_decision_latency_of_a_paced_session_is_a_histogram_on_metrics() {
    let env = Env::new();
    let mut run = Running::start(&["run".as_ref(), "--config".as_ref(), env.cfg.as_os_str()]);
    let addr = run.control.clone().expect("control address printed");
    run.wait_for("vigil: ready to trade");
    let token = token(&env.token_file());
    // Orders come every few bars; each is measured from its bar's arrival to the venue's
    // answer, and served as a histogram once a heartbeat brings it to the Monitor.
    let count = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("vigil_decision_latency_seconds_count "))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    };
    let end = Instant::now() + PATIENCE;
    let metrics = loop {
        let (code, metrics) = http_call(&addr, "GET", "/metrics", Some(&token), None);
        assert_eq!(code, 200, "{metrics}");
        if count(&metrics) >= 3 {
            break metrics;
        }
        assert!(
            Instant::now() < end,
            "no decision latency after {PATIENCE:?}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains("# TYPE vigil_decision_latency_seconds histogram"),
        "{metrics}"
    );
    // Cumulative buckets from 10 µs to 10 s; every order is within 10 s of its bar here.
    let bucket = |le: &str| -> u64 {
        let prefix = format!("vigil_decision_latency_seconds_bucket{{le=\"{le}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no bucket {le}:\n{metrics}"))
            .trim()
            .parse()
            .expect("a count")
    };
    assert!(bucket("0.00001") <= bucket("0.001"));
    assert_eq!(bucket("10"), bucket("+Inf"), "{metrics}");
    assert_eq!(bucket("+Inf"), count(&metrics));
    let out = run.interrupt();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("from a bar's arrival to the venue's answer"),
        "{summary}"
    );
}
