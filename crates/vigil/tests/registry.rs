//! `vigil model register | list | show | promote | retire | rollback`: the registry in the
//! store, through the gate, audited and logged; and `vigil run` refusing a registered
//! model whose artifact changed after it was registered.

mod common;

use std::path::Path;

use common::{copy_model, repo, scratch_config, vigil, vigil_log_lines};
use serde_json::Value;

/// `vigil model ARGS --config CFG`: (exit code, standard output, standard error).
fn model(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = vigil()
        .arg("model")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("vigil model");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The whole life of two versions: the strict gate keeps the overfit network out; a
/// lenient gate lets it in as a staging candidate with its provenance; a second version
/// registered without the gate (recorded); promote, promote, roll back; the refusals; every
/// change in the audit and in one verified log chain.
#[test]
fn versions_enter_through_the_gate_and_are_promoted_and_rolled_back_with_an_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = scratch_config(dir.path());
    let v1 = copy_model(&dir.path().join("v1"), |t| t);
    let v2 = copy_model(&dir.path().join("v2"), |t| {
        t.replace("version = \"1.0.0\"", "version = \"1.1.0\"")
    });
    let data = repo("data/GOOG_1d.csv");
    let data = data.to_str().expect("utf-8");

    // The default gate (config/gate.toml's thresholds) refuses it: exit 1, nothing kept.
    let (code, _, err) = model(&cfg, &["register", &v1, "--data", data, "--reason", "try"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not registered: the gate failed"), "{err}");
    let (code, out, err) = model(&cfg, &["list", "--json"]);
    assert_eq!((code, json(&out)), (0, Value::Array(vec![])), "{err}");

    // A gate that asks for less: registered, a staging candidate.
    let gate = dir.path().join("gate.toml");
    std::fs::write(
        &gate,
        "min_sharpe = 0.5\nmin_oos_is_ratio = -1.0\nmax_layer_gap = 1.0\nmin_psr = 0.5\n",
    )
    .expect("gate");
    let gate = gate.to_str().expect("utf-8");
    let register = ["register", &v1, "--data", data, "--gate", gate];
    let (code, out, err) = model(
        &cfg,
        &[
            &register[..],
            &["--who", "ana", "--reason", "weekly release"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("registered (staging, candidate) by ana"),
        "{out}"
    );
    let (code, out, err) = model(&cfg, &["show", "goog_mlp", "candidate", "--json"]);
    assert_eq!(code, 0, "{err}");
    let shown = json(&out);
    let first = shown["entry"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    assert!(
        first.starts_with("v1.0.0-") && first.len() == "v1.0.0-20261204".len(),
        "{first}"
    );
    let e = &shown["entry"];
    assert_eq!(e["status"], "staging");
    assert_eq!(e["created_by"], "ana");
    assert_eq!(e["gate_skipped"], false);
    assert!(
        e["gate_checks"]
            .as_str()
            .is_some_and(|c| c.contains("oos_is_sharpe"))
    );
    assert_eq!(e["gate_result_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(e["artifact_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(e["config_sha256"].as_str().map(str::len), Some(64));
    let manifest = std::fs::read_to_string(repo("models/goog_mlp/model.toml")).expect("toml");
    let trained = e["training_data_sha256"].as_str().expect("training hash");
    assert!(
        manifest.contains(trained),
        "the manifest's training data hash"
    );
    assert_eq!(shown["audit"][0]["reason"], "weekly release");
    // Registered twice the same day: refused.
    let (code, _, err) = model(&cfg, &[&register[..], &["--reason", "again"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("is registered already"), "{err}");

    // A second version without the gate: recorded as skipped; its parent is nothing yet.
    let (code, _, err) = model(
        &cfg,
        &[
            "register",
            &v2,
            "--skip-gate",
            "--who",
            "ci",
            "--reason",
            "hotfix, gate run by hand",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = model(&cfg, &["show", "goog_mlp", "candidate", "--json"]);
    let second = json(&out)["entry"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    assert!(second.starts_with("v1.1.0-"), "{second}");
    assert_eq!(json(&out)["entry"]["gate_skipped"], true);

    // Promote the first, then the second: the first becomes last_stable.
    let change = |args: &[&str]| model(&cfg, &[args, &["--reason", "release"]].concat());
    let (code, out, err) = change(&["promote", "goog_mlp", &first]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(the first)"), "{out}");
    let (code, _, err) = change(&["promote", "goog_mlp", "candidate"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = model(&cfg, &["list", "goog_mlp"]);
    let line = |v: &str| {
        out.lines()
            .find(|l| l.contains(v))
            .unwrap_or_else(|| panic!("{v} in {out}"))
            .to_string()
    };
    assert!(line(&second).contains("production"), "{out}");
    assert!(line(&first).contains("last_stable"), "{out}");

    // Production cannot be retired; a rollback returns to the first at once.
    let (code, _, err) = change(&["retire", "goog_mlp", "production"]);
    assert_eq!(code, 2);
    assert!(err.contains("roll back before retiring it"), "{err}");
    let (code, _, err) = change(&["rollback", "goog_mlp"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = model(&cfg, &["show", "goog_mlp", "--json"]);
    assert_eq!(json(&out)["entry"]["version"], first.as_str(), "production");
    let (_, out, _) = model(&cfg, &["show", "goog_mlp", &second, "--json"]);
    assert_eq!(json(&out)["entry"]["status"], "retired");
    // Nothing to roll back to now; a change without a reason is refused.
    let (code, _, err) = change(&["rollback", "goog_mlp"]);
    assert_eq!(code, 2);
    assert!(err.contains("no last stable version"), "{err}");
    let (code, _, _) = model(&cfg, &["promote", "goog_mlp", &second]);
    assert_eq!(code, 2, "--reason is required");

    // Every change in the log, in order, as one verified chain.
    let logs = dir.path().join("logs");
    let events: Vec<String> = vigil_log_lines(&logs)
        .iter()
        .filter_map(|l| l["event"].as_str())
        .filter(|e| e.starts_with("model_"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        events,
        [
            "model_registered",
            "model_registered",
            "model_promoted",
            "model_promoted",
            "model_rolled_back"
        ]
    );
    let out = vigil()
        .args(["logs", "verify", "--dir"])
        .arg(&logs)
        .output()
        .expect("vigil logs verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A registered model whose manifest changed after registration (its hashes still match
/// its files) is not the artifact registered: `vigil run` refuses it before anything
/// trades, naming the directory, both content addresses and what to do.
#[test]
fn vigil_run_refuses_a_registered_model_that_changed_since() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = scratch_config(dir.path());
    let copy = copy_model(&dir.path().join("goog_mlp"), |t| t);
    let (code, _, err) = model(
        &cfg,
        &["register", &copy, "--skip-gate", "--reason", "for the test"],
    );
    assert_eq!(code, 0, "{err}");
    // Edited by hand after registration: the threshold moved, the version did not.
    let manifest = Path::new(&copy).join("model.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("long = 0.55", "long = 0.51")).expect("edit");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("model = \"ema_cross\"", &format!("model = {copy:?}")),
    )
    .expect("config");
    let out = vigil()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is not the artifact registered as v1.0.0-")
            && err.contains("register the change as a new version"),
        "{err}"
    );
    assert!(err.contains(&copy), "{err}");
}

/// `[signal] model = "registry:goog_mlp"` trades the version in production, loaded from
/// the directory it was registered from: refused while nothing is in production, and with
/// a malformed reference; traded, version on its log lines, once one is promoted.
#[test]
fn vigil_run_trades_the_production_version_a_registry_reference_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = scratch_config(dir.path());
    let copy = copy_model(&dir.path().join("goog_mlp"), |t| t);
    let text = std::fs::read_to_string(&cfg).expect("config");
    let with = |model: &str| {
        std::fs::write(
            &cfg,
            text.replace("model = \"ema_cross\"", &format!("model = {model:?}")),
        )
        .expect("config");
    };
    let run = || {
        let out = vigil()
            .args(["run", "--json", "--config"])
            .arg(&cfg)
            .output()
            .expect("vigil run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    with("registry:goog mlp");
    let (code, err) = run();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("a registry reference is"), "{err}");

    with("registry:goog_mlp");
    let (code, err) = run();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("goog_mlp has no version or alias \"production\" (versions: none registered)"),
        "{err}"
    );

    let (code, _, err) = model(
        &cfg,
        &["register", &copy, "--skip-gate", "--reason", "for the test"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = model(
        &cfg,
        &["promote", "goog_mlp", "candidate", "--reason", "go"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = run();
    assert_eq!(code, Some(0), "{err}");
    let lines = vigil_log_lines(&dir.path().join("logs"));
    let signals: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "signal_generated")
        .collect();
    assert!(!signals.is_empty(), "the registered model traded");
    assert!(
        signals
            .iter()
            .all(|l| l["context"]["model_version"] == "goog_mlp@1.0.0"),
        "{:?}",
        signals.first()
    );
}

/// `vigil model shadow-report --json` for goog_mlp: (exit code, the JSON).
fn shadow_report(cfg: &Path) -> (i32, Value) {
    let (code, out, err) = model(cfg, &["shadow-report", "goog_mlp", "--json"]);
    assert!(code == 0 || code == 1, "{err}");
    (code, json(&out))
}

/// A release in shadow: `vigil run` trading production runs the candidate beside it on the
/// same bars and never trades it; the figures are in the store per exchange session; a
/// restart goes on where the last run stopped (no bar counted twice); the report judges
/// the five standards by `[release.shadow]`; pause, resume and a final abort.
#[test]
fn a_release_runs_its_candidate_in_shadow_without_orders_and_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = scratch_config(dir.path());
    let (v1, v2) = two_versions(dir.path());
    // The first 600 daily bars, then all of them.
    let all = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("data");
    let rows = all.lines().count() - 1;
    let part = dir.path().join("part.csv");
    let head: Vec<&str> = all.lines().take(601).collect();
    std::fs::write(&part, head.join("\n") + "\n").expect("part");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let with = |data: &Path, extra: &str| {
        let t = text
            .replace("model = \"ema_cross\"", "model = \"registry:goog_mlp\"")
            .replace(
                "path = \"bundled:GOOG_1d.csv\"",
                &format!("path = {:?}", data.display().to_string()),
            );
        std::fs::write(&cfg, format!("{t}\n{extra}")).expect("config");
    };
    let change = |args: &[&str]| model(&cfg, &[args, &["--reason", "release"]].concat());
    for args in [
        &["register", &v1, "--skip-gate"][..],
        &["promote", "goog_mlp", "candidate"],
        &["register", &v2, "--skip-gate"],
    ] {
        let (code, _, err) = change(args);
        assert_eq!(code, 0, "{err}");
    }
    // Nothing released yet: no report.
    let (code, _, err) = model(&cfg, &["shadow-report", "goog_mlp"]);
    assert_eq!(code, 2);
    assert!(err.contains("no release"), "{err}");
    let (code, out, err) = change(&["release", "start", "goog_mlp"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shadow started: v1.1.0-"), "{out}");
    let (code, _, err) = change(&["release", "start", "goog_mlp"]);
    assert_eq!(code, 2, "one release at a time");
    assert!(err.contains("release 1 of v1.1.0-"), "{err}");

    let run = || run_to_end(&cfg);
    with(&part, "");
    run();
    let logs = dir.path().join("logs");
    let lines = vigil_log_lines(&logs);
    let started: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "shadow_started")
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["data"]["candidate"], "goog_mlp@1.1.0");
    assert_eq!(started[0]["data"]["sessions"], 0);
    // Registered without the gate's data: its drift is not watched, and the log says why.
    assert!(
        lines.iter().any(|l| l["event"] == "drift_unwatched"
            && l["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("without the gate's data"))),
        "no drift_unwatched line"
    );
    // Only production trades: every signal and order is its.
    let traded: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "signal_generated" || l["event"] == "order_submitted")
        .collect();
    assert!(!traded.is_empty());
    assert!(
        traded
            .iter()
            .all(|l| l["context"]["model_version"] == "goog_mlp@1.0.0"),
        "{traded:?}"
    );
    let (code, first) = shadow_report(&cfg);
    assert_eq!(first["report"]["bars"], 600, "{first}");
    assert_eq!(first["report"]["trading_sessions"], 600);
    assert_eq!(first["report"]["errors"], 0);
    assert!(first["report"]["correlation"].as_f64().is_some());
    let standards = first["report"]["standards"].as_array().expect("standards");
    assert_eq!(standards.len(), 5);
    assert_eq!(
        code,
        if first["report"]["passed"] == true {
            0
        } else {
            1
        }
    );

    // A restart on the whole file: the sessions already counted are not counted again.
    with(&repo("data/GOOG_1d.csv"), "");
    run();
    let lines = vigil_log_lines(&logs);
    let started: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "shadow_started")
        .collect();
    assert_eq!(started[1]["data"]["sessions"], 600);
    assert!(
        started[1]["data"]["resume_after"]
            .as_str()
            .is_some_and(|t| t.starts_with(&head[600][..10])),
        "{:?}",
        started[1]
    );
    let (_, whole) = shadow_report(&cfg);
    assert_eq!(whole["report"]["bars"], rows, "{}", whole["report"]);
    assert_eq!(whole["report"]["trading_sessions"], rows);
    assert_eq!(whole["sessions"].as_array().map(Vec::len), Some(rows));

    // The standards are the config's: lenient ones pass every one (exit 0); a correlation
    // the candidate does not reach, with no clear improvement, fails (exit 1).
    let lenient = "[release.shadow]\nmax_latency_ratio = 10.0\ncpu_budget_us = 100000.0\n";
    with(
        &repo("data/GOOG_1d.csv"),
        &format!("{lenient}min_correlation = 0.5\n"),
    );
    let (code, report) = shadow_report(&cfg);
    assert_eq!(code, 0, "{}", report["report"]);
    with(
        &repo("data/GOOG_1d.csv"),
        &format!("{lenient}min_correlation = 0.99\nimprovement_t = 100.0\n"),
    );
    let (code, report) = shadow_report(&cfg);
    assert_eq!(code, 1, "{}", report["report"]);
    assert_eq!(report["report"]["standards"][0]["name"], "correlation");
    assert_eq!(report["report"]["standards"][0]["passed"], false);

    // Paused: the next run trades on without the candidate and says why.
    with(&part, "");
    let (code, _, err) = change(&["release", "pause", "goog_mlp"]);
    assert_eq!(code, 0, "{err}");
    run();
    let skipped = vigil_log_lines(&logs)
        .into_iter()
        .filter(|l| l["event"] == "shadow_skipped")
        .collect::<Vec<_>>();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("paused")),
        "{:?}",
        skipped[0]
    );
    // Resumed, then aborted: final.
    for step in ["resume", "abort"] {
        let (code, _, err) = change(&["release", step, "goog_mlp"]);
        assert_eq!(code, 0, "{step}: {err}");
    }
    let (code, _, err) = change(&["release", "resume", "goog_mlp"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no release is open") && err.contains("aborted"),
        "{err}"
    );
    let (code, out, err) = model(&cfg, &["release", "status", "goog_mlp", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status = json(&out);
    assert_eq!(status[0]["state"], "aborted");
    // Every change audited and in the log.
    let candidate = status[0]["candidate"].as_str().expect("candidate");
    let (_, out, _) = model(&cfg, &["show", "goog_mlp", candidate, "--json"]);
    let shown = json(&out);
    let actions: Vec<&str> = shown["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "register",
            "release_start",
            "release_pause",
            "release_resume",
            "release_abort"
        ]
    );
    let events: Vec<String> = vigil_log_lines(&logs)
        .iter()
        .filter_map(|l| l["event"].as_str())
        .filter(|e| e.starts_with("model_release"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        events,
        [
            "model_release_started",
            "model_release_changed",
            "model_release_changed",
            "model_release_changed"
        ]
    );
}

/// A `sub_ledgers` line's versions' P&L add up to its `account_pnl` (each is rounded to the
/// cent); returns its `ledgers` text.
fn ledgers_add_up(line: &Value) -> &str {
    let account: rust_decimal::Decimal = line["data"]["account_pnl"]
        .to_string()
        .parse()
        .expect("account_pnl");
    let text = line["data"]["ledgers"].as_str().expect("ledgers");
    let sum: rust_decimal::Decimal = text
        .split(" | ")
        .map(|l| {
            let pnl = l.split("pnl=").nth(1).expect("pnl");
            pnl.split(' ')
                .next()
                .expect("value")
                .parse::<rust_decimal::Decimal>()
                .expect("decimal")
        })
        .sum();
    assert!(
        (sum - account).abs() <= rust_decimal::Decimal::new(2, 2),
        "{account} against {sum}: {text}"
    );
    text
}

/// goog_mlp 1.0.0 in production and 1.1.0 released under [`CANARY_EASY`] (no rollback
/// guard), run on the whole GOOG file; returns the config.
fn good_canary(dir: &Path) -> std::path::PathBuf {
    let cfg = scratch_config(dir);
    let (v1, v2) = two_versions(dir);
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("model = \"ema_cross\"", "model = \"registry:goog_mlp\"");
    std::fs::write(
        &cfg,
        format!("{text}\n{CANARY_EASY}\n[release.rollback]\nenabled = false\n"),
    )
    .expect("config");
    released(&cfg, &v1, &v2);
    run_to_end(&cfg);
    cfg
}

/// `vigil run` on `cfg` to the end of its data, which must exit 0.
fn run_to_end(cfg: &Path) {
    let out = vigil()
        .args(["run", "--json", "--config"])
        .arg(cfg)
        .output()
        .expect("vigil run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `v1` registered and promoted, `v2` registered and released (in shadow), each change
/// with a reason.
fn released(cfg: &Path, v1: &str, v2: &str) {
    for args in [
        &["register", v1, "--skip-gate"][..],
        &["promote", "goog_mlp", "candidate"],
        &["register", v2, "--skip-gate"],
        &["release", "start", "goog_mlp"],
    ] {
        let (code, _, err) = model(cfg, &[args, &["--reason", "release"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
    }
}

/// goog_mlp twice under `dir`: v1.0.0 as bundled, and v1.1.0 with its thresholds moved.
fn two_versions(dir: &Path) -> (String, String) {
    let v1 = copy_model(&dir.join("v1"), |t| t);
    let v2 = copy_model(&dir.join("v2"), |t| {
        t.replace("version = \"1.0.0\"", "version = \"1.1.0\"")
            .replace("long = 0.55, short = 0.45", "long = 0.52, short = 0.48")
    });
    (v1, v2)
}

/// Polls the log in `logs` until some line satisfies `found` (bounded: 40 s).
fn wait_for_line(logs: &Path, what: &str, found: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        if let Some(l) = vigil_log_lines(logs).into_iter().find(|l| found(l)) {
            return l;
        }
        assert!(std::time::Instant::now() < end, "no {what} in the log");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// goog_mlp v1.0.0 in production and v1.1.0 (thresholds moved) released in shadow, in a
/// scratch config whose replay of the GOOG daily bars takes about 45 s of wall time, one
/// bar a batch (time to act mid-run); `extra` is appended to the config.
fn released_in_shadow(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = scratch_config(dir);
    let (v1, v2) = two_versions(dir);
    let text = std::fs::read_to_string(&cfg).expect("config");
    let text = text
        .replace("model = \"ema_cross\"", "model = \"registry:goog_mlp\"")
        .replace("speed = \"max\"", "speed = 6000000")
        .replace("batch_size = 1024", "batch_size = 1");
    std::fs::write(&cfg, format!("{text}\n{extra}")).expect("config");
    released(&cfg, &v1, &v2);
    cfg
}

/// Blue-green: with a session running the release's candidate in shadow, `vigil model
/// promote` switches it to the candidate from the next bar without a restart (its
/// predictors are warm), and `vigil model rollback` switches it back at once; each switch
/// logged, and every signal after it carries the model that traded it.
#[test]
fn promote_and_rollback_switch_a_running_session_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = released_in_shadow(dir.path(), "");
    let change = |args: &[&str]| {
        let (code, out, err) = model(&cfg, &[args, &["--reason", "release"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
        (out, err)
    };

    let running = common::run_on(&cfg);
    let logs = dir.path().join("logs");
    wait_for_line(&logs, "a signal of production", |l| {
        l["event"] == "signal_generated" && l["context"]["model_version"] == "goog_mlp@1.0.0"
    });
    let (out, err) = change(&["promote", "goog_mlp", "candidate"]);
    assert!(
        out.contains(
            "the running session: the signal agent trades goog_mlp@1.1.0 from the next bar"
        ),
        "{out}{err}"
    );
    let switched = wait_for_line(&logs, "the switch", |l| l["event"] == "model_switched");
    assert_eq!(switched["data"]["from"], "goog_mlp@1.0.0");
    assert_eq!(switched["data"]["to"], "goog_mlp@1.1.0");
    let seq = switched["seq"].as_u64().expect("seq");
    wait_for_line(&logs, "a signal of the candidate", |l| {
        l["event"] == "signal_generated" && l["seq"].as_u64() > Some(seq)
    });

    let (out, err) = change(&["rollback", "goog_mlp"]);
    assert!(
        out.contains("the running session: the signal agent trades goog_mlp@1.0.0"),
        "{out}{err}"
    );
    let back = wait_for_line(&logs, "the switch back", |l| {
        l["event"] == "model_switched" && l["data"]["to"] == "goog_mlp@1.0.0"
    });
    let back_seq = back["seq"].as_u64().expect("seq");
    // A model the session does not run cannot be switched to; the answer says what it runs.
    let out = vigil()
        .args([
            "ctl",
            "switch-model",
            "goog_mlp@9.9.9",
            "--reason",
            "try",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .expect("vigil ctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("trades goog_mlp@1.0.0 and runs goog_mlp@1.1.0 beside it"),
        "{err}"
    );
    running.interrupt();

    // Signals between the switches are the candidate's; before and after, production's.
    for l in vigil_log_lines(&logs)
        .iter()
        .filter(|l| l["event"] == "signal_generated")
    {
        let s = l["seq"].as_u64().expect("seq");
        let want = if s > seq && s < back_seq {
            "goog_mlp@1.1.0"
        } else {
            "goog_mlp@1.0.0"
        };
        assert_eq!(l["context"]["model_version"], want, "{l}");
    }
}

/// Automatic rollback: the candidate, promoted into a running session, breaks a rule of
/// `[release.rollback]` (here a latency no model meets) and the session switches back to
/// the version it replaced within the window: a Critical alert delivered to a webhook on
/// loopback, the registry rolled back with an audit row by `vigil`, and every later signal
/// production's.
#[test]
fn a_promoted_candidate_that_breaks_a_rule_is_rolled_back_by_itself_with_a_critical_alert() {
    rolled_back_by_itself("max_latency_p99_ms = 0.000001", "latency_p99");
}

/// The same for a candidate whose rolling Sharpe stays below the minimum (here one no
/// model reaches) over `sharpe_values` windows.
#[test]
fn a_promoted_candidate_whose_sharpe_decays_is_rolled_back_after_n_windows() {
    rolled_back_by_itself(
        "sharpe_window_bars = 5\nsharpe_values = 3\nmin_sharpe = 999",
        "sharpe",
    );
}

fn rolled_back_by_itself(rollback: &str, rule: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = vigil_testkit::HttpReceiver::start();
    let cfg = released_in_shadow(
        dir.path(),
        &format!(
            "[release.rollback]\n{rollback}\n{}\n[alerts.channels.webhook]\nurl = \"{}\"\n",
            vigil_testkit::config::HOST_RULES_OFF,
            hook.url("/hook")
        ),
    );
    let change = |args: &[&str]| {
        let (code, out, err) = model(&cfg, &[args, &["--reason", "release"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
        (out, err)
    };

    let running = common::run_on(&cfg);
    let logs = dir.path().join("logs");
    wait_for_line(&logs, "a signal of production", |l| {
        l["event"] == "signal_generated"
    });
    change(&["promote", "goog_mlp", "candidate"]);
    let back = wait_for_line(&logs, "the automatic rollback", |l| {
        l["event"] == "model_auto_rolled_back"
    });
    assert_eq!(back["level"], "CRITICAL");
    assert_eq!(back["data"]["from"], "goog_mlp@1.1.0");
    assert_eq!(back["data"]["to"], "goog_mlp@1.0.0");
    assert_eq!(back["data"]["rule"], rule);
    let recorded = wait_for_line(&logs, "the registry's rollback", |l| {
        l["event"] == "model_rolled_back" && l["data"]["by"] == "vigil"
    });
    assert!(
        recorded["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("automatic rollback: {rule}"))),
        "{recorded}"
    );
    // The Critical alert, through the webhook.
    let alert = hook
        .next(std::time::Duration::from_secs(30))
        .expect("the alert reached the webhook");
    let body = String::from_utf8_lossy(&alert.body);
    assert!(body.contains("model_rolled_back"), "{body}");
    assert!(body.contains("goog_mlp@1.1.0"), "{body}");
    // As every Critical alert, it trips the breaker first: a person looks before trading on.
    wait_for_line(&logs, "the breaker", |l| l["event"] == "breaker_tripped");
    running.interrupt();

    // The registry: production is the first version again, the candidate retired.
    let (_, out, _) = model(&cfg, &["list", "goog_mlp", "--json"]);
    let listed = json(&out);
    let status = |semver: &str| {
        listed
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| {
                e["entry"]["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(semver))
            })
            .map(|e| e["entry"]["status"].clone())
    };
    assert_eq!(status("v1.0.0-"), Some(Value::from("production")));
    assert_eq!(status("v1.1.0-"), Some(Value::from("retired")));
    // After the rollback, every signal is production's.
    let seq = back["seq"].as_u64().expect("seq");
    for l in vigil_log_lines(&logs)
        .iter()
        .filter(|l| l["event"] == "signal_generated" && l["seq"].as_u64() > Some(seq))
    {
        assert_eq!(l["context"]["model_version"], "goog_mlp@1.0.0", "{l}");
    }
}

/// The release's steps reach a running session: `vigil model release pause` (the
/// candidate stops), `resume` (it starts afresh), `abort` (it stops for good), `start` (a
/// new release's candidate runs at once) and `step` (the canary's first step) go through
/// the control API, recorded in the registry and both audits, and `/status` shows the
/// release's state; `vigil ctl model-release` is the same command.
#[test]
fn release_steps_reach_a_running_session_through_the_control_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The canary moves on only when told (`step`), for the figures to be known.
    let cfg = released_in_shadow(dir.path(), "[release.canary]\nauto_promote = false\n");
    let running = common::run_on(&cfg);
    // The Signal agent's figures on /status, once they show `want` (they come with its
    // heartbeat, every second).
    let status = |want: &Value| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = vigil()
                .args(["ctl", "status", "--json", "--config"])
                .arg(&cfg)
                .output()
                .expect("vigil ctl status");
            let v = json(&String::from_utf8_lossy(&out.stdout));
            let release = v["agents"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["agent"] == "signal"))
                .map(|a| a["figures"]["release"]["shadow"].clone())
                .unwrap_or(Value::Null);
            if &release == want {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "release {release}, not {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    status(&Value::from("running"));
    let step = |s: &str| model(&cfg, &["release", s, "goog_mlp", "--reason", "ops"]);
    let (code, out, err) = step("pause");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("paused by") && out.contains("(the running session)"),
        "{out}"
    );
    status(&Value::from("paused"));
    // A paused candidate is not warm: the session will not switch to it.
    let out = vigil()
        .args([
            "ctl",
            "switch-model",
            "goog_mlp@1.1.0",
            "--reason",
            "try",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .expect("vigil ctl");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is paused") && err.contains("not warm"),
        "{err}"
    );
    // Paused twice: refused by the registry's rules, through the session.
    let (code, _, err) = step("pause");
    assert_eq!(code, 2);
    assert!(err.contains("is paused already"), "{err}");
    let out = vigil()
        .args([
            "ctl",
            "model-release",
            "goog_mlp",
            "resume",
            "--reason",
            "ops",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .expect("vigil ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    status(&Value::from("running"));
    let (code, _, err) = step("abort");
    assert_eq!(code, 0, "{err}");
    status(&Value::Null); // the candidate stopped
    // A new version registered while the session runs: its release starts through the
    // session and its candidate runs in shadow at once; then the canary's first step.
    let v3 = copy_model(&dir.path().join("v3"), |t| {
        t.replace("version = \"1.0.0\"", "version = \"1.2.0\"")
            .replace("long = 0.55, short = 0.45", "long = 0.53, short = 0.47")
    });
    let (code, _, err) = model(&cfg, &["register", &v3, "--skip-gate", "--reason", "ops"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = step("start");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("runs in this session") && out.contains("(the running session)"),
        "{out}"
    );
    status(&Value::from("running"));
    let (code, out, err) = step("step");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("step 1 (5% of capital)"), "{out}");
    wait_for_line(&dir.path().join("logs"), "the step in the store", |l| {
        l["event"] == "model_release_changed"
            && l["data"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("shadow -> step 1"))
    });
    running.interrupt();

    let (_, out, _) = model(&cfg, &["release", "status", "goog_mlp", "--json"]);
    let releases = json(&out);
    assert_eq!(releases[0]["state"], "aborted", "{releases}");
    assert_eq!(releases[1]["state"], "running", "{releases}");
    assert_eq!(releases[1]["step"], 1, "{releases}");
    let lines = vigil_log_lines(&dir.path().join("logs"));
    let logged: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] == "model_release_changed")
        .map(|l| l["data"]["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(logged.len(), 4, "{logged:?}");
    assert!(logged[2].contains("aborted"), "{logged:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "shadow_started")
            .map(|l| l["data"]["candidate"].to_string())
            .collect::<Vec<_>>(),
        ["\"goog_mlp@1.1.0\"", "\"goog_mlp@1.2.0\""]
    );
    // The control audit has the six commands (a refused one too).
    let out = vigil()
        .args(["ctl", "audit", "--json", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil ctl audit");
    let audit = String::from_utf8_lossy(&out.stdout);
    assert_eq!(audit.matches("\"model_release\"").count(), 6, "{audit}");
}

/// Drift: a version registered with the gate's data carries its baseline; `vigil run`
/// judges the traded model's last bars against it at every session's end
/// (`model_drift_checked`), and beyond `[release.drift]` logs `model_drifted`, alerted
/// through the webhook. A version registered without data is not watched, and says so.
#[test]
fn the_traded_models_drift_is_judged_each_session_against_its_gate_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = scratch_config(dir.path());
    let v1 = copy_model(&dir.path().join("v1"), |t| t);
    let hook = vigil_testkit::HttpReceiver::start();
    // The training data where the manifest says, relative to a folder above the model's:
    // registering keeps a copy named by its SHA-256, in `[store] snapshots`.
    std::fs::create_dir_all(dir.path().join("data")).expect("data folder");
    std::fs::copy(
        repo("data/GOOG_1d.csv"),
        dir.path().join("data/GOOG_1d.csv"),
    )
    .expect("training data");
    let snapshots = dir.path().join("snapshots");
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("model = \"ema_cross\"", "model = \"registry:goog_mlp\"")
        .replace(
            "[store]\n",
            &format!(
                "[store]\nsnapshots = {:?}\n",
                snapshots.display().to_string()
            ),
        );
    let with = |extra: &str| {
        std::fs::write(
            &cfg,
            format!(
                "{text}\n{extra}\n[alerts]\n# Daily bars are stamped outside trading hours.\n\
                 quiet_outside_trading_hours = false\n{}\n\
                 [alerts.channels.webhook]\nurl = \"{}\"\n",
                vigil_testkit::config::HOST_RULES_OFF,
                hook.url("/hook")
            ),
        )
        .expect("config");
    };
    let data = repo("data/GOOG_1d.csv");
    let rows = std::fs::read_to_string(&data)
        .expect("data")
        .lines()
        .count()
        - 1;
    let data = data.to_str().expect("utf-8");
    with("");
    for args in [
        &["register", &v1, "--skip-gate", "--data", data][..],
        &["promote", "goog_mlp", "candidate"],
    ] {
        let (code, _, err) = model(&cfg, &[args, &["--reason", "drift"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let (_, out, _) = model(&cfg, &["show", "goog_mlp", "--json"]);
    let baseline: Value = serde_json::from_str(
        json(&out)["entry"]["drift_baseline"]
            .as_str()
            .expect("a baseline"),
    )
    .expect("baseline JSON");
    assert_eq!(baseline["features"].as_array().map(Vec::len), Some(6));
    let copy = json(&out)["entry"]["training_snapshot"]
        .as_str()
        .expect("a copy of the training data")
        .to_string();
    assert!(
        copy.starts_with(snapshots.to_str().expect("utf-8")),
        "{copy}"
    );
    let manifest = std::fs::read_to_string(Path::new(&v1).join("model.toml")).expect("manifest");
    let name = Path::new(&copy)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    assert!(
        manifest.contains(&format!("data_sha256 = \"{name}\"")),
        "{copy}"
    );
    assert_eq!(
        std::fs::read(&copy).expect("the copy"),
        std::fs::read(repo("data/GOOG_1d.csv")).expect("data")
    );
    // Training data that is no longer what the model was trained on: refused.
    let v2 = copy_model(&dir.path().join("v2"), |t| {
        t.replace("version = \"1.0.0\"", "version = \"1.1.0\"")
    });
    std::fs::write(dir.path().join("data/GOOG_1d.csv"), "timestamp,close\n").expect("edit");
    let (code, _, err) = model(&cfg, &["register", &v2, "--skip-gate", "--reason", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not the data it was trained on"), "{err}");
    let run = || {
        let out = vigil()
            .args(["run", "--json", "--config"])
            .arg(&cfg)
            .output()
            .expect("vigil run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let logs = dir.path().join("logs");
    let count = |event: &str| {
        vigil_log_lines(&logs)
            .iter()
            .filter(|l| l["event"] == event)
            .count()
    };

    // Limits no window reaches: every session judged, nothing drifted.
    with("[release.drift]\nmax_psi = 100.0\nmax_tracking_z = 100.0\n");
    run();
    assert_eq!(count("model_drift_checked"), rows, "one per session");
    assert_eq!(count("model_drifted"), 0);
    let sent: Vec<String> = hook
        .taken()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(sent.is_empty(), "nothing drifted, nothing sent: {sent:#?}");

    // The usual limits: GOOG's first years after its listing are not its nine years.
    with("");
    run();
    assert!(count("model_drifted") > 0);
    let alert = hook
        .next(std::time::Duration::from_secs(30))
        .expect("the drift alert reached the webhook");
    let body = String::from_utf8_lossy(&alert.body);
    assert!(
        body.contains("model_drifted") && body.contains("PSI"),
        "{body}"
    );
}

/// The shadow run survives `kill -9`: killed mid-run after some of its figures were saved,
/// the next start resumes from them, and once the replay is done every bar is counted
/// exactly once.
#[test]
fn a_shadow_run_killed_mid_run_resumes_and_counts_every_bar_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = released_in_shadow(dir.path(), "[release.shadow]\nsave_every_s = 1\n");
    let rows = std::fs::read_to_string(repo("data/GOOG_1d.csv"))
        .expect("data")
        .lines()
        .count()
        - 1;
    let running = common::run_on(&cfg);
    // Wait until a save holds some bars, then kill without warning.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let (_, report) = shadow_report(&cfg);
        if report["report"]["bars"].as_u64().unwrap_or(0) >= 100 {
            break;
        }
        assert!(std::time::Instant::now() < end, "no shadow figures saved");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    running.signal("-KILL");
    let killed = running.finish();
    assert!(!killed.status.success());
    let (_, before) = shadow_report(&cfg);
    let saved = before["report"]["bars"].as_u64().expect("bars");
    assert!(saved < rows as u64, "killed before the end: {saved}");

    // Restarted, at full speed to the end of the file.
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("speed = 6000000", "speed = \"max\"")).expect("config");
    let out = vigil()
        .args(["run", "--json", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: Vec<Value> = vigil_log_lines(&dir.path().join("logs"))
        .into_iter()
        .filter(|l| l["event"] == "shadow_started")
        .collect();
    assert_eq!(started.len(), 2);
    assert!(
        started[1]["data"]["sessions"].as_u64() > Some(0),
        "{}",
        started[1]
    );
    let (_, after) = shadow_report(&cfg);
    assert_eq!(after["report"]["bars"], rows, "{}", after["report"]);
    assert_eq!(after["report"]["trading_sessions"], rows);
}

/// The canary by capital weight: a good candidate leaves shadow once the shadow report
/// passes, then goes 5 → 25 → 50 → 100 % of capital, each step passing its analysis over
/// its sessions, and becomes production; every step is in the store and the audit; the
/// two versions' targets are netted into one account (crosses inside it, each order's
/// allocation), and the per-version sub-ledgers add up to the account's P&L.
#[test]
fn a_good_candidate_goes_from_shadow_through_every_canary_step_to_production() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = good_canary(dir.path());
    let lines = vigil_log_lines(&dir.path().join("logs"));
    // Deterministic: a replay of the same data, from a fresh store, decides the same.
    let again = tempfile::tempdir().expect("tempdir");
    good_canary(again.path());
    let decisions = |lines: &[Value]| -> Vec<String> {
        // Each agent's lines in its own order: the chain interleaves the agents as their
        // lines arrive, which the scheduler decides.
        let mut lines: Vec<&Value> = lines.iter().collect();
        lines.sort_by_key(|l| (l["service"].to_string(), l["seq"].as_u64()));
        lines
            .into_iter()
            .filter(|l| {
                [
                    "signal_generated",
                    "risk_approved",
                    "canary_session_ended",
                    "canary_stepped",
                    "sub_ledgers",
                ]
                .iter()
                .any(|e| l["event"] == *e)
            })
            .map(|l| format!("{} {} {}", l["timestamp"], l["event"], l["data"]))
            .collect()
    };
    assert_eq!(
        decisions(&lines),
        decisions(&vigil_log_lines(&again.path().join("logs")))
    );
    let of =
        |event: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == event).collect() };
    let stepped: Vec<(String, String)> = of("canary_stepped")
        .iter()
        .map(|l| (l["data"]["to"].to_string(), l["data"]["weight"].to_string()))
        .collect();
    assert_eq!(
        stepped,
        [
            ("\"step 1\"", "0.05"),
            ("\"step 2\"", "0.25"),
            ("\"step 3\"", "0.5"),
            ("\"step 4\"", "1"),
            ("\"production\"", "1"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{:?}",
        of("canary_session_ended")
    );
    assert_eq!(of("canary_completed").len(), 1);
    assert!(of("canary_aborted").is_empty());
    assert!(of("canary_step_unrecorded").is_empty());
    // Every step is in the store: the release completed at its last step, the candidate
    // is production, and each change is audited.
    let (code, out, err) = model(&cfg, &["release", "status", "goog_mlp", "--json"]);
    assert_eq!(code, 0, "{err}");
    let releases = json(&out);
    assert_eq!(releases[0]["state"], "completed", "{releases}");
    assert_eq!(releases[0]["step"], 4, "{releases}");
    assert_eq!(releases[0]["stage"], "canary");
    let (code, out, err) = model(&cfg, &["show", "goog_mlp", "production", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("v1.1.0-"), "{out}");
    // Both versions traded: signals carry the candidate's leg, orders their allocation.
    assert!(
        of("signal_generated")
            .iter()
            .any(|l| l["data"]["candidate"] == "goog_mlp@1.1.0" && l["data"]["weight"] == 0.25),
        "{:?}",
        of("signal_generated")
            .iter()
            .filter(|l| l["data"]["candidate"].is_string())
            .map(|l| l["data"].to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        of("risk_approved").iter().any(|l| l["data"]["allocation"]
            .as_str()
            .is_some_and(|a| a.contains("goog_mlp@1.1.0="))),
        "no order split between the versions"
    );
    assert!(
        of("fill_received").iter().any(|l| l["data"]["allocation"]
            .as_str()
            .is_some_and(|a| a.contains("goog_mlp@1.0.0=") && a.contains("goog_mlp@1.1.0="))),
        "no fill split between the versions"
    );
    // (Crosses, opposite wants inside the account, are not in this data's steps: the two
    // versions flip together here; vigil_core's ledger tests cover them.)
    // The sub-ledgers add up to the account, to the cent, at every day's end and the last.
    let books = of("sub_ledgers");
    assert!(books.len() > 10, "{}", books.len());
    for b in &books {
        let text = ledgers_add_up(b);
        assert!(
            text.contains("goog_mlp@1.0.0: ") && text.contains("goog_mlp@1.1.0: "),
            "{text}"
        );
    }
}

/// The shadow run's standards relaxed to a few sessions, the canary's analysis over three
/// sessions with a wide margin (the good candidate passes every step).
const CANARY_EASY: &str = "[release.shadow]\nmin_sessions = 3\nmin_correlation = 0.0\n\
     max_latency_ratio = 1000.0\ncpu_budget_us = 1000000.0\nmax_outlier_pct = 100.0\n\n\
     [release.canary]\nsessions_per_step = 3\nmargin_bps = 10000.0\n";

/// A candidate whose rolling Sharpe values break the rollback guard (a minimum no model
/// meets) is aborted within its step, once it has traded: a Critical `canary_aborted` through the
/// alert engine to a loopback webhook (the breaker trips), the release aborted in the
/// store by `vigil`, and its positions handed to production (its sub-ledger flat).
#[test]
fn a_candidate_that_breaks_a_rule_in_the_canary_is_aborted_and_unwound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = vigil_testkit::HttpReceiver::start();
    let cfg = released_in_shadow(
        dir.path(),
        &format!(
            "{CANARY_EASY}auto_promote = false\n\n[release.rollback]\nsharpe_window_bars = 5\n\
             sharpe_values = 3\nmin_sharpe = 999\n{}\n[alerts.channels.webhook]\nurl = \"{}\"\n",
            vigil_testkit::config::HOST_RULES_OFF,
            hook.url("/hook")
        ),
    );
    // Into the canary's third step (50 %) before the session starts (the store, audited).
    let mut said = Vec::new();
    for _ in 0..3 {
        let (code, out, err) = model(&cfg, &["release", "step", "goog_mlp", "--reason", "go"]);
        assert_eq!(code, 0, "{err}");
        said.push(out);
    }
    assert!(
        said[0].contains("shadow -> step 1 (5% of capital)"),
        "{said:?}"
    );
    assert!(
        said[2].contains("step 2 (25%) -> step 3 (50% of capital)"),
        "{said:?}"
    );

    let running = common::run_on(&cfg);
    let logs = dir.path().join("logs");
    let started = wait_for_line(&logs, "the canary's start", |l| {
        l["event"] == "canary_started"
    });
    assert_eq!(started["data"]["step"], 3);
    assert_eq!(started["data"]["weight"], 0.5);
    let aborted = wait_for_line(&logs, "the abort", |l| l["event"] == "canary_aborted");
    assert_eq!(aborted["level"], "CRITICAL");
    assert_eq!(aborted["data"]["unwind"], "production");
    assert_eq!(aborted["data"]["by"], "vigil");
    assert!(
        aborted["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("rollback guard on the candidate: sharpe")),
        "{aborted}"
    );
    let alert = hook
        .next(std::time::Duration::from_secs(30))
        .expect("the alert reached the webhook");
    let body = String::from_utf8_lossy(&alert.body);
    assert!(body.contains("canary_aborted"), "{body}");
    assert!(body.contains("goog_mlp@1.1.0"), "{body}");
    wait_for_line(&logs, "the breaker", |l| l["event"] == "breaker_tripped");
    wait_for_line(&logs, "the abort in the store", |l| {
        l["event"] == "model_release_changed" && l["data"]["by"] == "vigil"
    });
    running.interrupt();

    let (_, out, _) = model(&cfg, &["release", "status", "goog_mlp", "--json"]);
    let releases = json(&out);
    assert_eq!(releases[0]["state"], "aborted", "{releases}");
    assert_eq!(releases[0]["step"], 3);
    let lines = vigil_log_lines(&logs);
    let seq = aborted["seq"].as_u64().expect("seq");
    // After the abort: the hand-over signals, then production's alone.
    let after: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "signal_generated" && l["seq"].as_u64() > Some(seq))
        .collect();
    assert!(
        after
            .iter()
            .filter(|l| l["data"]["canary"].is_string())
            .all(|l| l["data"]["canary"] == "hand_over" && l["data"]["weight"] == 0),
        "{after:?}"
    );
    // Its positions went to production inside the account, at the close, with no order.
    assert!(
        lines.iter().any(|l| l["event"] == "ledger_crossed"
            && l["seq"].as_u64() > Some(seq)
            && l["data"]["moves"]
                .as_str()
                .is_some_and(|m| m.starts_with("goog_mlp@1.1.0=-"))),
        "no hand-over"
    );
    // The candidate holds nothing at the end.
    let last = lines
        .iter()
        .rev()
        .find(|l| l["event"] == "sub_ledgers")
        .expect("the last sub_ledgers line");
    let books = last["data"]["ledgers"].as_str().expect("ledgers");
    let candidate = books
        .split(" | ")
        .find(|b| b.starts_with("goog_mlp@1.1.0: "))
        .expect("the candidate's book");
    assert!(candidate.ends_with("positions=[]"), "{books}");
}

/// The step and its weight are the store's: a release stepped by hand (`vigil model
/// release step`, the session stopped) starts there, a session stopped mid-step resumes
/// the same step with the same weight and the sessions it counted, and nothing moves on
/// by itself with `auto_promote = false`.
#[test]
fn a_canary_resumes_its_step_and_weight_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = scratch_config(dir.path());
    let (v1, v2) = two_versions(dir.path());
    let all = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("data");
    let part = dir.path().join("part.csv");
    let head: Vec<&str> = all.lines().take(301).collect();
    std::fs::write(&part, head.join("\n") + "\n").expect("part");
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("model = \"ema_cross\"", "model = \"registry:goog_mlp\"");
    let with = |data: &Path| {
        let t = text.replace(
            "path = \"bundled:GOOG_1d.csv\"",
            &format!("path = {:?}", data.display().to_string()),
        );
        std::fs::write(&cfg, format!("{t}\n{CANARY_EASY}auto_promote = false\n")).expect("config");
    };
    with(&part);
    for args in [
        &["register", &v1, "--skip-gate"][..],
        &["promote", "goog_mlp", "candidate"],
        &["register", &v2, "--skip-gate"],
        &["release", "start", "goog_mlp"],
        &["release", "step", "goog_mlp"],
        &["release", "step", "goog_mlp"],
    ] {
        let (code, _, err) = model(&cfg, &[args, &["--reason", "release"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let run = || run_to_end(&cfg);
    run();
    let logs = dir.path().join("logs");
    let started = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["event"] == "canary_started")
            .cloned()
            .collect()
    };
    let first = vigil_log_lines(&logs);
    let s = started(&first);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["data"]["step"], 2);
    assert_eq!(s[0]["data"]["weight"], 0.25);
    assert_eq!(s[0]["data"]["sessions"], 0);
    let counted = first
        .iter()
        .filter(|l| l["event"] == "canary_session_ended")
        .count();
    assert!(counted > 100, "{counted}");
    assert!(
        first.iter().all(|l| l["event"] != "canary_stepped"),
        "auto_promote = false: no step by itself"
    );
    // The restart on the whole file: the same step and weight, the sessions counted.
    with(&repo("data/GOOG_1d.csv"));
    run();
    let second = vigil_log_lines(&logs);
    let s = started(&second);
    assert_eq!(s.len(), 2);
    assert_eq!(s[1]["data"]["step"], 2);
    assert_eq!(s[1]["data"]["weight"], 0.25);
    assert_eq!(s[1]["data"]["sessions"], counted, "{}", s[1]);
    let (_, out, _) = model(&cfg, &["release", "status", "goog_mlp"]);
    assert!(out.contains("canary 2 (25%)"), "{out}");
}

/// `kill -9` in the middle of a canary trading through the broker: the restart resumes the
/// same step with the same weight, and each version's sub-ledger as the journal last held
/// it (aligned with the broker's book), so that they still add up to the account.
#[test]
fn a_canary_killed_mid_step_resumes_its_step_and_sub_ledgers() {
    use common::broker::{BrokerProcess, goog_slice};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = goog_slice(dir.path(), 300, 20);
    let broker = BrokerProcess::start(dir.path(), &data);
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n{}\n{CANARY_EASY}auto_promote = false\n\n[release.rollback]\nenabled = false\n",
            broker
                .run_sections(dir.path(), &data)
                .replace("[signal]\n", "[signal]\nmodel = \"registry:goog_mlp\"\n"),
            vigil_testkit::config::home_sections(dir.path(), "", ""),
        ),
    )
    .expect("config");
    let (v1, v2) = two_versions(dir.path());
    for args in [
        &["register", &v1, "--skip-gate"][..],
        &["promote", "goog_mlp", "candidate"],
        &["register", &v2, "--skip-gate"],
        &["release", "start", "goog_mlp"],
        &["release", "step", "goog_mlp"],
        &["release", "step", "goog_mlp"],
        &["release", "step", "goog_mlp"],
    ] {
        let (code, _, err) = model(&cfg, &[args, &["--reason", "release"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let running = common::run_on(&cfg);
    let logs = dir.path().join("logs");
    // Once both versions hold a book (a day ended with the ledgers split), without warning.
    wait_for_line(&logs, "the split book", |l| l["event"] == "sub_ledgers");
    running.signal("-KILL");
    let killed = running.finish();
    assert!(!killed.status.success(), "killed before its end");

    run_to_end(&cfg);
    let lines = vigil_log_lines(&logs);
    let started: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "canary_started")
        .collect();
    assert_eq!(started.len(), 2);
    for s in &started {
        assert_eq!(s["data"]["step"], 3, "{s}");
        assert_eq!(s["data"]["weight"], 0.5, "{s}");
    }
    let restored = lines
        .iter()
        .find(|l| l["event"] == "sub_ledgers_restored")
        .expect("the sub-ledgers read back");
    assert_eq!(
        restored["data"]["versions"], "goog_mlp@1.0.0 goog_mlp@1.1.0",
        "{restored}"
    );
    // The last books of the restarted run add up to the account, across both runs.
    let last = lines
        .iter()
        .rev()
        .find(|l| l["event"] == "sub_ledgers")
        .expect("the last sub_ledgers line");
    ledgers_add_up(last);
    assert!(last["seq"].as_u64() > restored["seq"].as_u64());
}
