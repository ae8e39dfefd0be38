//! `vigil alerts …` as an operator runs it, against a store in a temporary folder.
//!
//! A running vigil is simulated: a loopback HTTP server answers `/healthz` at the address
//! in `<log dir>/control.addr`, and a test thread plays the Monitor (reads the pending
//! request, writes its result). The CLI records a request before it probes `/healthz`, so the
//! probe is the test's signal that the request is in the store: nothing polls or sleeps.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_alert::{AlertEngine, EngineState, Raise};
use vigil_config::AlertsConfig;
use vigil_core::Level;
use vigil_store::{
    AlertLogEntry, AlertLogQuery, AlertRequest, RequestKind, StateStore as _, Store,
};
use vigil_testkit::HttpReceiver;

/// The longest any test waits for something that should happen at once.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Helpers

/// A temporary working folder with a store path and an empty log folder (no vigil running).
struct Env {
    dir: tempfile::TempDir,
    store: PathBuf,
    logs: PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("state/vigil.db");
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        Self { dir, store, logs }
    }

    /// Runs `vigil alerts ARGS --store …` in the folder; (exit code, stdout, stderr).
    fn alerts(&self, args: &[&str]) -> (Option<i32>, String, String) {
        self.alerts_with(args, |_| {})
    }

    fn alerts_with(
        &self,
        args: &[&str],
        env: impl FnOnce(&mut Command),
    ) -> (Option<i32>, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.current_dir(self.dir.path())
            .arg("alerts")
            .args(args)
            .arg("--store")
            .arg(&self.store);
        env(&mut cmd);
        let out = cmd.output().expect("run vigil");
        (
            out.status.code(),
            String::from_utf8(out.stdout).expect("utf-8 stdout"),
            String::from_utf8(out.stderr).expect("utf-8 stderr"),
        )
    }

    /// A request command, with this folder's log dir (where control.addr is looked for).
    fn request(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let logs = self.logs.to_str().expect("utf-8 path");
        let mut all = args.to_vec();
        all.extend(["--log-dir", logs]);
        self.alerts(&all)
    }

    fn with_store<T>(&self, f: impl AsyncFnOnce(&Store) -> T) -> T {
        block(async {
            let store = Store::open(&self.store).await.expect("open the store");
            let out = f(&store).await;
            store.close().await;
            out
        })
    }

    fn pending(&self) -> Vec<AlertRequest> {
        self.with_store(async |s| s.pending_requests().await.expect("pending requests"))
    }

    /// Writes `<logs>/control.addr` as a running vigil does.
    fn control_addr(&self, addr: SocketAddr) {
        std::fs::write(self.logs.join("control.addr"), format!("{addr}\n")).expect("control.addr");
    }

    fn write_config(&self, body: &str) -> PathBuf {
        let path = self.dir.path().join("vigil.toml");
        let text = format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\n\
             [log]\ndir = \"{}\"\n\n[store]\npath = \"{}\"\n\n{body}",
            self.logs.display(),
            self.store.display()
        );
        std::fs::write(&path, text).expect("write config");
        path
    }
}

fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn raise(rule: &str, level: Level, service: &str, labels: &[(&str, &str)]) -> Raise {
    Raise {
        rule: rule.into(),
        level,
        service: service.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        event: format!("{rule} breached"),
        details: vec![("Current value".into(), "7".into())],
        you_need_to: "Look.".into(),
    }
}

/// Two firing alerts (cpu_high with `agent=signal`, and daily_drawdown acknowledged by ana),
/// a silence in force (s-1) and one that has ended (s-2).
fn seeded_state(now: DateTime<Utc>) -> (EngineState, String, String) {
    let mut e = AlertEngine::new(AlertsConfig::default());
    let mut out = Vec::new();
    e.raise(
        now - minutes(20),
        true,
        raise(
            "cpu_high",
            Level::Warn,
            "monitor_agent",
            &[("agent", "signal")],
        ),
        &mut out,
    );
    e.raise(
        now - minutes(5),
        true,
        raise("daily_drawdown", Level::Error, "risk_agent", &[]),
        &mut out,
    );
    let id = |rule: &str| {
        e.state()
            .alerts
            .iter()
            .find(|a| a.rule == rule)
            .map(|a| a.id.clone())
            .expect("raised")
    };
    let (cpu, dd) = (id("cpu_high"), id("daily_drawdown"));
    e.ack(now - minutes(2), &dd, "ana", &mut out).expect("ack");
    e.silence(
        BTreeMap::from([("rule".into(), "cpu_high".into())]),
        now - minutes(10),
        now + minutes(120),
        "bob",
        "deploy in progress",
    )
    .expect("silence");
    e.silence(
        BTreeMap::from([("service".into(), "data_agent".into())]),
        now - minutes(180),
        now - minutes(60),
        "bob",
        "old maintenance",
    )
    .expect("silence");
    (e.state(), cpu, dd)
}

/// Plays the running vigil's Monitor: once the CLI probes `/healthz` (after recording its
/// request), applies the one pending request with (`ok`, `result`); returns it.
fn monitor(
    store: PathBuf,
    probes: HttpReceiver,
    ok: bool,
    result: &'static str,
) -> JoinHandle<AlertRequest> {
    std::thread::spawn(move || {
        let probe = probes.next(WAIT).expect("the CLI probes /healthz");
        assert_eq!(
            (probe.method.as_str(), probe.path.as_str()),
            ("GET", "/healthz")
        );
        block(async {
            let s = Store::open(&store).await.expect("open the store");
            let mut pending = s.pending_requests().await.expect("pending");
            assert_eq!(pending.len(), 1, "{pending:?}");
            let r = pending.remove(0);
            s.finish_request(r.seq, Utc::now(), ok, result)
                .await
                .expect("finish");
            s.close().await;
            r
        })
    })
}

// ---------------------------------------------------------------------------------------
// list

#[test]
fn list_shows_alerts_silences_in_force_and_pending_requests() {
    let env = Env::new();
    // To the millisecond, as the store keeps times.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let (state, cpu, dd) = seeded_state(now);
    let saved_at = now - minutes(1);
    env.with_store(async |s| {
        s.save_alert_state(&serde_json::to_string(&state).expect("json"), saved_at)
            .await
            .expect("save");
        s.request(now, "carol", RequestKind::Ack, &json!({"id": cpu}))
            .await
            .expect("request");
    });
    // A maintenance window in force, from the config.
    let config = env.write_config(&format!(
        "[[alerts.maintenance]]\nmatch = {{ service = \"data_agent\" }}\nstart = \"{}\"\nend = \"{}\"\nreason = \"volume migration\"\n",
        secs(now - minutes(60)),
        secs(now + minutes(60)),
    ));
    let config = config.to_str().expect("utf-8 path");

    let (code, out, err) = env.alerts(&["list", "--config", config]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("alert state saved {}", secs(saved_at))),
        "{out}"
    );
    assert!(out.contains("ACTIVE ALERTS (2)"), "{out}");
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no line starting {needle:?} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // Oldest first.
    assert!(
        out.find(&cpu).expect("cpu alert") < out.find(&dd).expect("drawdown alert"),
        "{out}"
    );
    let cpu_since = secs(now - minutes(20));
    assert_eq!(
        line(&cpu),
        [
            cpu.as_str(),
            "MEDIUM",
            "firing",
            "cpu_high",
            "monitor_agent",
            "agent=signal",
            cpu_since.as_str(),
            "-"
        ]
    );
    let acked_at = secs(now - minutes(2));
    let dd_since = secs(now - minutes(5));
    assert_eq!(
        line(&dd),
        [
            dd.as_str(),
            "HIGH",
            "firing",
            "daily_drawdown",
            "risk_agent",
            "-",
            dd_since.as_str(),
            "ana",
            "at",
            acked_at.as_str()
        ]
    );
    assert!(out.contains("SILENCES (2)"), "{out}");
    let until = secs(now + minutes(120));
    assert_eq!(
        line("s-1"),
        [
            "s-1",
            "rule=cpu_high",
            "now",
            until.as_str(),
            "bob",
            "deploy",
            "in",
            "progress"
        ]
    );
    assert_eq!(line("m-1")[1], "service=data_agent");
    assert_eq!(line("m-1")[4], "config");
    assert!(
        !out.contains("s-2"),
        "an ended silence is not listed:\n{out}"
    );
    assert!(out.contains("PENDING REQUESTS (1"), "{out}");
    assert_eq!(line("#1")[2..4], ["carol", "ack"]);

    let (code, out, err) = env.alerts(&["list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["saved_at"], json!(saved_at));
    let ids: Vec<&str> = v["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [cpu.as_str(), dd.as_str()]);
    assert_eq!(v["alerts"][0]["severity"], "medium");
    assert_eq!(v["alerts"][0]["phase"], "firing");
    assert_eq!(v["alerts"][0]["labels"]["agent"], "signal");
    assert_eq!(v["alerts"][0]["acked"], Value::Null);
    assert_eq!(v["alerts"][1]["acked"]["by"], "ana");
    // The embedded config has no maintenance window: only the operator's silence.
    let silences = v["silences"].as_array().expect("silences");
    assert_eq!(silences.len(), 1, "{silences:?}");
    assert_eq!(silences[0]["id"], "s-1");
    assert_eq!(silences[0]["matchers"], json!({"rule": "cpu_high"}));
    assert_eq!(silences[0]["created_by"], "bob");
    assert_eq!(silences[0]["reason"], "deploy in progress");
    let pending = v["pending_requests"].as_array().expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["seq"], 1);
    assert_eq!(pending[0]["kind"], "ack");
    assert_eq!(pending[0]["who"], "carol");
    assert_eq!(pending[0]["body"], json!({"id": cpu}));
}

#[test]
fn list_of_a_store_without_saved_state_says_so() {
    let env = Env::new();
    env.with_store(async |_| ());
    let (code, out, err) = env.alerts(&["list"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "no alert state saved yet\n");
    let (code, out, _) = env.alerts(&["list", "--json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        v,
        json!({"saved_at": null, "alerts": [], "silences": [], "pending_requests": []})
    );
}

#[test]
fn reading_a_store_that_does_not_exist_names_it_and_creates_nothing() {
    let env = Env::new();
    for cmd in ["list", "history"] {
        let (code, out, err) = env.alerts(&[cmd]);
        assert_eq!(code, Some(2), "{cmd}: {out}");
        assert!(
            err.contains(&env.store.display().to_string()) && err.contains("vigil run"),
            "{cmd}: {err}"
        );
        assert!(!env.store.exists(), "{cmd} created the store");
        assert!(!env.store.parent().is_some_and(Path::exists), "{cmd}");
    }
}

#[test]
fn a_config_that_does_not_load_exits_2_with_its_problem() {
    let env = Env::new();
    let (code, _, err) = env.alerts(&["list", "--config", "no-such.toml"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such.toml"), "{err}");
}

// ---------------------------------------------------------------------------------------
// history

fn entry(at: DateTime<Utc>, kind: &str, alert: Option<&str>, rule: Option<&str>) -> AlertLogEntry {
    AlertLogEntry {
        seq: 0,
        at,
        kind: kind.into(),
        alert_id: alert.map(str::to_string),
        rule: rule.map(str::to_string),
        severity: rule.map(|_| "HIGH".to_string()),
        channel: (kind == "delivered" || kind == "test").then(|| "webhook".to_string()),
        detail: format!("{kind} detail"),
    }
}

fn seqs(json_lines: &str) -> Vec<i64> {
    json_lines
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            v["seq"].as_i64().expect("seq")
        })
        .collect()
}

#[test]
fn history_filters_by_time_rule_alert_and_limit_oldest_first() {
    let env = Env::new();
    let now = Utc::now();
    env.with_store(async |s| {
        s.append_alert_log(&[
            entry(
                now - minutes(180),
                "firing",
                Some("a-00000001"),
                Some("cpu_high"),
            ),
            entry(
                now - minutes(120),
                "delivered",
                Some("a-00000001"),
                Some("cpu_high"),
            ),
            entry(
                now - minutes(30),
                "firing",
                Some("a-00000002"),
                Some("daily_drawdown"),
            ),
            entry(
                now - minutes(10),
                "ack",
                Some("a-00000002"),
                Some("daily_drawdown"),
            ),
            entry(now - minutes(5), "test", None, None),
        ])
        .await
        .expect("append");
    });
    let json = |args: &[&str]| {
        let mut all = vec!["history", "--json"];
        all.extend(args);
        let (code, out, err) = env.alerts(&all);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        seqs(&out)
    };
    assert_eq!(json(&[]), [1, 2, 3, 4, 5]);
    assert_eq!(json(&["--rule", "cpu_high"]), [1, 2]);
    assert_eq!(json(&["--alert", "a-00000002"]), [3, 4]);
    assert_eq!(json(&["--since", "1h"]), [3, 4, 5]);
    assert_eq!(json(&["--since", "150m"]), [2, 3, 4, 5]);
    let at = secs(now - minutes(150));
    assert_eq!(json(&["--since", &at]), [2, 3, 4, 5]);
    assert_eq!(json(&["--limit", "2"]), [4, 5]);
    assert_eq!(
        json(&["--rule", "cpu_high", "--since", "1h"]),
        Vec::<i64>::new()
    );

    let (code, out, err) = env.alerts(&["history", "--json", "--alert", "a-00000002"]);
    assert_eq!(code, Some(0), "{err}");
    let first: Value = serde_json::from_str(out.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["kind"], "firing");
    assert_eq!(first["rule"], "daily_drawdown");
    assert_eq!(first["severity"], "HIGH");
    assert_eq!(first["channel"], Value::Null);
    assert_eq!(first["detail"], "firing detail");

    let (code, out, err) = env.alerts(&["history"]);
    assert_eq!(code, Some(0), "{err}");
    let kinds: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).expect("kind column"))
        .collect();
    assert_eq!(
        kinds,
        ["firing", "delivered", "firing", "ack", "test"],
        "{out}"
    );
    assert!(out.starts_with("SEQ"), "{out}");

    let (code, out, _) = env.alerts(&["history", "--rule", "nothing_like_it"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, "no notification log entries match\n");

    let (code, _, err) = env.alerts(&["history", "--since", "2x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--since 2x"), "{err}");
}

// ---------------------------------------------------------------------------------------
// silence, ack, unsilence with no vigil running

#[test]
fn silence_records_its_exact_body_and_says_vigil_is_not_running() {
    let env = Env::new();
    let (code, out, err) = env.request(&[
        "silence",
        "--match",
        "rule=cpu_high",
        "--match",
        "agent=signal",
        "--starts",
        "2099-01-02T03:04:05Z",
        "--until",
        "2099-01-02T05:00:00+01:00",
        "--reason",
        "deploy 1.2",
        "--who",
        "dora",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "recorded as request #1; vigil is not running — it will be applied when vigil run next starts\n"
    );
    let pending = env.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, RequestKind::Silence);
    assert_eq!(pending[0].who, "dora");
    assert_eq!(
        pending[0].body,
        json!({
            "matchers": {"rule": "cpu_high", "agent": "signal"},
            "starts": "2099-01-02T03:04:05.000Z",
            "ends": "2099-01-02T04:00:00.000Z",
            "reason": "deploy 1.2",
        })
    );

    // --for counts from --starts, or from now.
    let (code, _, err) = env.request(&[
        "silence",
        "--match",
        "service=data_agent",
        "--starts",
        "2099-01-02T03:04:05.5Z",
        "--for",
        "1h30m",
        "--reason",
        "feed maintenance",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let before = Utc::now();
    let (code, _, err) = env.request(&[
        "silence", "--match", "rule=x", "--for", "2h", "--reason", "r",
    ]);
    let after = Utc::now();
    assert_eq!(code, Some(0), "{err}");
    let pending = env.pending();
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[1].body["starts"], "2099-01-02T03:04:05.500Z");
    assert_eq!(pending[1].body["ends"], "2099-01-02T04:34:05.500Z");
    let time = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
            .expect("RFC 3339")
            .with_timezone(&Utc)
    };
    let (starts, ends) = (
        time(&pending[2].body["starts"]),
        time(&pending[2].body["ends"]),
    );
    assert!(
        before - chrono::Duration::milliseconds(1) <= starts && starts <= after,
        "{starts}"
    );
    assert_eq!(ends - starts, chrono::Duration::hours(2));
}

#[test]
fn silence_rejects_bad_arguments_naming_the_flag_and_records_nothing() {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--for", "2h", "--reason", "r"],
            "--match KEY=VALUE is required",
        ),
        (
            &["--match", "cpu_high", "--for", "2h", "--reason", "r"],
            "--match \"cpu_high\": expected KEY=VALUE",
        ),
        (
            &["--match", "=x", "--for", "2h", "--reason", "r"],
            "--match \"=x\": the key",
        ),
        (
            &["--match", "rule=", "--for", "2h", "--reason", "r"],
            "--match \"rule=\": the value",
        ),
        (
            &[
                "--match", "rule=a", "--match", "rule=b", "--for", "2h", "--reason", "r",
            ],
            "--match \"rule=b\"",
        ),
        (
            &["--match", "rule=a", "--for", "2h"],
            "--reason TEXT is required",
        ),
        (
            &["--match", "rule=a", "--for", "2h", "--reason", "  "],
            "--reason \"  \"",
        ),
        (
            &["--match", "rule=a", "--reason", "r"],
            "--for DURATION or --until TIME is required",
        ),
        (
            &[
                "--match",
                "rule=a",
                "--reason",
                "r",
                "--for",
                "2h",
                "--until",
                "2099-01-01T00:00:00Z",
            ],
            "either --for DURATION or --until TIME, not both",
        ),
        (
            &["--match", "rule=a", "--reason", "r", "--for", "0m"],
            "--for \"0m\": must be longer than zero",
        ),
        (
            &["--match", "rule=a", "--reason", "r", "--for", "2x"],
            "--for \"2x\": expected a duration",
        ),
        (
            &["--match", "rule=a", "--reason", "r", "--until", "tomorrow"],
            "--until \"tomorrow\": not an RFC 3339 time",
        ),
        (
            &[
                "--match",
                "rule=a",
                "--reason",
                "r",
                "--starts",
                "2099-01-02T05:00:00Z",
                "--until",
                "2099-01-02T04:00:00Z",
            ],
            "--until \"2099-01-02T04:00:00Z\": must be after the start",
        ),
        (
            &[
                "--match",
                "rule=a",
                "--reason",
                "r",
                "--until",
                "2001-01-01T00:00:00Z",
            ],
            "--until \"2001-01-01T00:00:00Z\": must be after the start",
        ),
        (
            &[
                "--match",
                "rule=a",
                "--reason",
                "r",
                "--starts",
                "2001-01-01T00:00:00Z",
                "--for",
                "1h",
            ],
            "already past",
        ),
        (
            &[
                "--match", "rule=a", "--reason", "r", "--for", "1h", "--who", " ",
            ],
            "--who \" \"",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["silence"];
        all.extend(*args);
        let (code, out, err) = env.request(&all);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    }
    assert!(!env.store.exists(), "a refused request opened the store");
}

#[test]
fn ack_and_unsilence_record_their_id_and_who_defaults_to_the_login_name() {
    let env = Env::new();
    let logs = env.logs.to_str().expect("utf-8 path");
    let (code, out, err) = env.alerts_with(&["ack", "a-1f2e3d4c", "--log-dir", logs], |c| {
        c.env("USER", "ana").env("LOGNAME", "not-this");
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("recorded as request #1") && out.contains("not running"),
        "{out}"
    );
    let (code, _, err) = env.alerts_with(&["unsilence", "s-3", "--log-dir", logs], |c| {
        c.env_remove("USER").env("LOGNAME", "bob");
    });
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = env.alerts_with(&["ack", "a-00000009", "--log-dir", logs], |c| {
        c.env_remove("USER").env_remove("LOGNAME");
    });
    assert_eq!(code, Some(0), "{err}");
    let got: Vec<(RequestKind, String, Value)> = env
        .pending()
        .into_iter()
        .map(|r| (r.kind, r.who, r.body))
        .collect();
    assert_eq!(
        got,
        [
            (RequestKind::Ack, "ana".into(), json!({"id": "a-1f2e3d4c"})),
            (RequestKind::Unsilence, "bob".into(), json!({"id": "s-3"})),
            (
                RequestKind::Ack,
                "operator".into(),
                json!({"id": "a-00000009"})
            ),
        ]
    );

    for (args, needle) in [
        (["ack", "1f2e3d4c"], "alert id \"1f2e3d4c\""),
        (["unsilence", "a-1f2e3d4c"], "silence id \"a-1f2e3d4c\""),
        (["unsilence", "m-1"], "maintenance window"),
    ] {
        let (code, _, err) = env.request(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(env.pending().len(), 3);
}

#[test]
fn a_control_address_nothing_answers_at_is_not_a_running_vigil() {
    let env = Env::new();
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    env.control_addr(closed); // the listener is gone: nothing answers there
    let (code, out, err) = env.request(&["ack", "a-1f2e3d4c"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("vigil is not running"), "{out}");
}

// ---------------------------------------------------------------------------------------
// With a running vigil (simulated)

#[test]
fn a_running_vigil_applies_the_silence_and_the_cli_prints_its_id() {
    let env = Env::new();
    env.with_store(async |_| ()); // as `vigil run` has created it
    let server = HttpReceiver::answering(200);
    env.control_addr(server.addr());
    let monitor = monitor(env.store.clone(), server, true, "s-7");

    let (code, out, err) = env.request(&[
        "silence",
        "--match",
        "rule=cpu_high",
        "--for",
        "30m",
        "--reason",
        "noisy during the deploy",
        "--who",
        "eve",
        "--wait",
        "10",
    ]);
    let applied = monitor.join().expect("the monitor thread");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("silence s-7 in force: rule=cpu_high from "),
        "{out}"
    );
    assert_eq!(applied.kind, RequestKind::Silence);
    assert_eq!(applied.who, "eve");
    assert_eq!(applied.body["reason"], "noisy during the deploy");
    assert!(env.pending().is_empty());
}

#[test]
fn a_refusal_by_the_running_vigil_is_printed_and_exits_1() {
    let env = Env::new();
    env.with_store(async |_| ());
    let server = HttpReceiver::answering(200);
    env.control_addr(server.addr());
    let monitor = monitor(
        env.store.clone(),
        server,
        false,
        "no active alert a-deadbeef",
    );

    let (code, out, err) = env.request(&["ack", "a-deadbeef", "--wait", "10"]);
    let applied = monitor.join().expect("the monitor thread");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("request #1 (ack) refused: no active alert a-deadbeef"),
        "{err}"
    );
    assert_eq!(applied.body, json!({"id": "a-deadbeef"}));
}

#[test]
fn a_request_the_running_vigil_does_not_apply_in_time_exits_4_and_stays_recorded() {
    let env = Env::new();
    env.with_store(async |_| ());
    let server = HttpReceiver::answering(200);
    env.control_addr(server.addr());

    let (code, out, err) = env.request(&["unsilence", "s-1", "--wait", "1"]);
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(
        err.contains("recorded as request #1") && err.contains("has not applied it within 1 s"),
        "{err}"
    );
    assert_eq!(server.next(WAIT).expect("probed").path, "/healthz");
    assert_eq!(env.pending().len(), 1);

    // --wait 0: recorded for the running vigil, not waited for.
    let (code, out, err) = env.request(&["unsilence", "s-2", "--wait", "0"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("recorded as request #2; the running vigil at http://127.0.0.1:")
            && out.contains("applies it when its Monitor next reads the store"),
        "{out}"
    );
    assert_eq!(env.pending().len(), 2);
}

// ---------------------------------------------------------------------------------------
// test CHANNEL

fn webhook_config(env: &Env, server: &HttpReceiver) -> String {
    env.write_config(&format!(
        "[alerts.channels.webhook]\nurl = \"http://{}/hook?token=t0ps3cret\"\n",
        server.addr()
    ))
    .to_str()
    .expect("utf-8 path")
    .to_string()
}

fn test_log(env: &Env) -> Vec<AlertLogEntry> {
    env.with_store(async |s| {
        s.alert_log(&AlertLogQuery::default())
            .await
            .expect("the log")
    })
}

#[test]
fn test_sends_a_test_message_through_the_webhook_and_logs_it() {
    let env = Env::new();
    let server = HttpReceiver::answering(200);
    let config = webhook_config(&env, &server);
    // The config names the store; no --store needed (the helper adds the same path).
    let (code, out, err) = env.alerts(&["test", "webhook", "--config", &config]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out, "test message delivered through webhook\n");
    let req = server.next(WAIT).expect("a POST");
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook?token=t0ps3cret");
    let body: Value = serde_json::from_slice(&req.body).expect("JSON");
    assert_eq!(body["kind"], "test");
    assert_eq!(body["test"]["channel"], "webhook");
    assert!(
        body["subject"].as_str().expect("subject").contains("test"),
        "{body}"
    );
    let log = test_log(&env);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "test");
    assert_eq!(log[0].channel.as_deref(), Some("webhook"));
    assert_eq!(log[0].detail, "ok");
}

#[test]
fn a_failed_test_delivery_prints_the_error_exits_1_and_is_logged() {
    let env = Env::new();
    let server = HttpReceiver::answering(500);
    let config = webhook_config(&env, &server);
    let (code, out, err) = env.alerts(&["test", "webhook", "--config", &config]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("webhook: refused (HTTP 500"), "{err}");
    assert!(!err.contains("t0ps3cret"), "the URL's token leaked: {err}");
    assert_eq!(server.next(WAIT).expect("a POST").method, "POST");
    let log = test_log(&env);
    assert_eq!(log.len(), 1);
    assert!(log[0].detail.contains("refused (HTTP 500"), "{:?}", log[0]);
}

#[test]
fn test_of_an_unconfigured_or_unknown_channel_exits_2_with_the_names() {
    let env = Env::new();
    let server = HttpReceiver::answering(200);
    let config = webhook_config(&env, &server);
    let (code, _, err) = env.alerts(&["test", "slack", "--config", &config]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("channel \"slack\" is not configured") && err.contains("configured: webhook"),
        "{err}"
    );
    let (code, _, err) = env.alerts(&["test", "sms", "--config", &config]);
    assert_eq!(code, Some(2));
    assert!(err.contains("[alerts.channels.twilio]"), "{err}");
    let (code, _, err) = env.alerts(&["test", "pigeon", "--config", &config]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("email, slack, teams, sms, call, pagerduty, webhook"),
        "{err}"
    );
    assert!(server.taken().is_empty(), "nothing was sent");
    assert!(!env.store.exists(), "nothing was logged");
}
