//! `vigil backtest` and `vigil gate`: the bundled artifacts on the bundled GOOG bars,
//! through both layers; parity between the layers; ratios withheld on too little data; the
//! gate's verdicts, stored and logged; bad input refused with exit 2.

mod common;

use common::{copy_model, repo, scratch_config, vigil, vigil_log_lines};
use std::path::Path;

use serde_json::Value;

fn backtest(args: &[&str]) -> (i32, Value, String) {
    command("backtest", args)
}

/// `vigil backtest --model MODEL --data DATA EXTRA…`.
fn backtest_on(model: &Path, data: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "--model",
        model.to_str().expect("utf-8"),
        "--data",
        data.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    backtest(&args)
}

/// Runs `vigil NAME ARGS`; without a `--config`, with one whose store (the backtests are
/// recorded there) and log are in a temporary folder.
fn command(name: &str, args: &[&str]) -> (i32, Value, String) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut cmd = vigil();
    cmd.arg(name).args(args);
    if !args.contains(&"--config") {
        cmd.arg("--config").arg(scratch_config(scratch.path()));
    }
    let out = cmd.output().expect("vigil backtest");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_bundled_model_backtests_on_the_bundled_data_with_every_figure() {
    let model = repo("models/ema_cross");
    let data = repo("data/GOOG_1d.csv");
    let (code, v, err) = backtest_on(&model, &data, &["--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["model"], "ema_cross@1.0.0");
    assert_eq!(v["interval_s"], 86_400);
    // XNYS sessions a year, not 365 and not a hard-coded 252.
    let ppy = v["periods_per_year"].as_f64().expect("ppy");
    assert!((248.0..=254.0).contains(&ppy), "{ppy}");
    // Both layers by default, in that order, each with every figure.
    let layers = v["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["layer"], "vectorized");
    assert_eq!(layers[1]["layer"], "oms");
    for layer in layers {
        let s = &layer["summary"];
        for key in [
            "sharpe",
            "sortino",
            "calmar",
            "probabilistic_sharpe",
            "deflated_sharpe",
        ] {
            assert!(s[key]["value"].is_f64(), "{key}: {}", s[key]);
        }
        assert!(s["trades"].as_u64().expect("trades") >= 30);
        // The split: in-sample ratios on 70% of the bars; four folds.
        assert!(layer["split"]["in_sample"]["sharpe"]["value"].is_f64());
        assert_eq!(layer["folds"].as_array().map(Vec::len), Some(4));
    }
    assert!(layers[0]["probes"]["lagged_one_bar"]["sharpe"]["value"].is_f64());
    assert!(layers[0]["information_coefficient"].is_f64());
    // The OMS layer went through the order path: orders, fills, what they cost.
    let f = &layers[1]["friction"];
    assert!(f["orders"].as_u64().expect("orders") >= 30, "{f}");
    assert!(f["fills"].as_u64() >= f["orders"].as_u64());
    assert!(f["commission"].as_str().is_some_and(|c| c != "0"), "{f}");
    // The same model on the same bars: the layers are close, not identical (fills at the
    // next open, sizing in whole shares).
    let (a, b) = (
        layers[0]["summary"]["sharpe"]["value"].as_f64().expect("v"),
        layers[1]["summary"]["sharpe"]["value"].as_f64().expect("o"),
    );
    assert!((a - b).abs() < 0.3, "{a} vs {b}");
}

/// Parity mode: fills at the signal bar's close, no costs, unlimited liquidity, one unit,
/// always allowed short. Both layers give the same P&L per unit and the same number of
/// position changes, to the cent, and the OMS layer's money P&L is that too — for the EMA
/// cross (always in the market) and the ONNX network (flat between its thresholds).
#[test]
fn in_parity_mode_both_layers_give_the_same_pnl_to_the_cent() {
    for (model, min_changes) in [("models/ema_cross", 40), ("models/goog_mlp", 200)] {
        let model = repo(model);
        let data = repo("data/GOOG_1d.csv");
        let (code, v, err) = backtest_on(&model, &data, &["--parity", "--json"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["parity"], true);
        let layers = v["layers"].as_array().expect("layers");
        let (vec, oms) = (&layers[0], &layers[1]);
        let cents = |x: &Value| (x.as_f64().expect("pnl") * 100.0).round() as i64;
        assert_eq!(
            cents(&vec["pnl_per_unit"]),
            cents(&oms["pnl_per_unit"]),
            "{model:?}"
        );
        let money: f64 = oms["friction"]["pnl"]
            .as_str()
            .expect("pnl")
            .parse()
            .expect("decimal");
        assert_eq!(cents(&vec["pnl_per_unit"]), (money * 100.0).round() as i64);
        assert_eq!(vec["position_changes"], oms["position_changes"]);
        assert!(
            vec["position_changes"].as_u64().expect("changes") >= min_changes,
            "{model:?}: {}",
            vec["position_changes"]
        );
        assert_eq!(oms["friction"]["risk_rejected"], 0);
        assert_eq!(oms["friction"]["commission"], "0");
    }
}

/// Thirty daily bars: the ratios are null with the reason; the return is still given.
#[test]
fn a_short_sample_withholds_every_ratio_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo("data/GOOG_1d.csv")).expect("GOOG");
    let short: Vec<&str> = text.lines().take(31).collect();
    let path = dir.path().join("short.csv");
    std::fs::write(&path, short.join("\n") + "\n").expect("write");
    let model = repo("models/ema_cross");
    let (code, v, err) = backtest_on(&model, &path, &["--layer", "vectorized", "--json"]);
    assert_eq!(code, 0, "{err}");
    let sharpe = &v["layers"][0]["summary"]["sharpe"];
    assert!(sharpe["value"].is_null(), "{sharpe}");
    assert!(
        sharpe["withheld"]
            .as_str()
            .is_some_and(|w| w.contains("days of data, fewer than the 90")),
        "{sharpe}"
    );
    assert!(v["layers"][0]["summary"]["total_return"].is_f64());
}

#[test]
fn a_tampered_model_or_missing_data_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("model.toml"),
        "name = \"x\"\nversion = \"1.0.0\"\nkind = \"ema_cross\"\noutput = { kind = \"sign\" }\n\
         [parameters]\nfast_span = 3\nslow_span = 8\n[files]\n\"w.bin\" = \"00\"\n",
    )
    .expect("manifest");
    std::fs::write(dir.path().join("w.bin"), b"weights").expect("file");
    let data = repo("data/GOOG_1d.csv");
    let (code, _, err) = backtest_on(dir.path(), &data, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("w.bin: sha256 is"), "{err}");
    let (code, _, err) = backtest_on(
        &repo("models/ema_cross"),
        Path::new("/nonexistent/bars.csv"),
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/bars.csv"), "{err}");
}

/// `vigil model check` verifies the bundled artifact; `vigil model features` writes the
/// features vigil computes, a row a bar once every window is full.
#[test]
fn model_check_and_the_features_to_train_on() {
    let out = vigil()
        .args(["model", "check"])
        .arg(repo("models/ema_cross"))
        .output()
        .expect("vigil model check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ema_cross@1.0.0 (ema_cross)"));
    let out = vigil()
        .args([
            "model",
            "features",
            "--features",
            "return_5,rsi_14",
            "--data",
        ])
        .arg(repo("data/GOOG_1d.csv"))
        .output()
        .expect("vigil model features");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,close,return_5,rsi_14"));
    let bars = std::fs::read_to_string(repo("data/GOOG_1d.csv"))
        .expect("GOOG")
        .lines()
        .count()
        - 1;
    // RSI over 14 changes needs 15 bars: the first 14 have no row.
    assert_eq!(lines.count(), bars - 14);
    let out = vigil()
        .args(["model", "features", "--features", "macd", "--data"])
        .arg(repo("data/GOOG_1d.csv"))
        .output()
        .expect("vigil model features");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown feature \"macd\""));
}

/// The embedded default, its log and store in `dir`.
/// Each run is recorded in the store: the deflated Sharpe ratio's trials count them.
#[test]
fn every_backtest_of_a_model_is_a_trial_of_the_deflated_sharpe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = scratch_config(dir.path());
    let mut deflated = Vec::new();
    for n in 1..=3u64 {
        let (code, v, err) = backtest_on(
            &repo("models/ema_cross"),
            &repo("data/GOOG_1d.csv"),
            &[
                "--layer",
                "vectorized",
                "--config",
                config.to_str().expect("utf-8"),
                "--json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["trials"], n);
        let s = &v["layers"][0]["summary"];
        let (psr, dsr) = (
            s["probabilistic_sharpe"]["value"].as_f64().expect("psr"),
            s["deflated_sharpe"]["value"].as_f64().expect("dsr"),
        );
        if n == 1 {
            assert_eq!(psr, dsr, "one trial: nothing to deflate");
        }
        deflated.push(dsr);
    }
    // More trials, a higher bar: the deflated ratio falls.
    assert!(
        deflated[1] < deflated[0] && deflated[2] < deflated[1],
        "{deflated:?}"
    );
}

fn gate(dir: &std::path::Path, gate_toml: Option<&str>, model: &str) -> (i32, Value, String) {
    let config = scratch_config(dir);
    let out = dir.join("result.json");
    let mut args = vec![
        "--config".to_string(),
        config.display().to_string(),
        "--model".into(),
        repo(model).display().to_string(),
        "--data".into(),
        repo("data/GOOG_1d.csv").display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(text) = gate_toml {
        let path = dir.join("gate.toml");
        std::fs::write(&path, text).expect("gate.toml");
        args.extend(["--gate".into(), path.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = command("gate", &args);
    let result = std::fs::read(&out)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (code, result, err)
}

/// The CI step's check, as a test: the bundled network is overfit, and the gate with
/// config/gate.toml refuses it on its out-of-sample check in both layers (exit 1), stores
/// the result with the hashes, and logs gate_failed; a lenient gate passes it (exit 0,
/// gate_passed); a tampered model cannot be gated (exit 2).
#[test]
fn the_gate_refuses_the_overfit_model_and_records_its_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strict = std::fs::read_to_string(repo("config/gate.toml")).expect("config/gate.toml");
    let (code, result, err) = gate(dir.path(), Some(&strict), "models/goog_mlp");
    assert_eq!(code, 1, "{err}");
    assert_eq!(result["verdict"], "failed");
    let failed: Vec<(String, String)> = result["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            (
                c["layer"].as_str().unwrap_or("").into(),
                c["check"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for layer in ["vectorized", "oms"] {
        assert!(
            failed.contains(&(layer.into(), "oos_is_sharpe".into())),
            "{failed:?}"
        );
    }
    for key in ["model_sha256", "data_sha256", "config_sha256"] {
        assert_eq!(result[key].as_str().map(str::len), Some(64), "{key}");
    }
    assert_eq!(result["model"], "goog_mlp@1.0.0");
    let lines = vigil_log_lines(&dir.path().join("logs"));
    let verdict = lines
        .iter()
        .find(|l| l["event"] == "gate_failed")
        .expect("gate_failed");
    assert_eq!(verdict["level"], "ERROR");
    assert_eq!(verdict["data"]["model_sha256"], result["model_sha256"]);
    assert!(
        verdict["data"]["failed"]
            .as_str()
            .is_some_and(|f| f.contains("oos_is_sharpe")),
        "{verdict}"
    );

    // A gate that asks for less: every check passes.
    let lenient = "min_sharpe = 0.5\nmin_oos_is_ratio = -1.0\nmax_layer_gap = 1.0\nmin_psr = 0.5\n";
    let (code, result, err) = gate(dir.path(), Some(lenient), "models/goog_mlp");
    assert_eq!(code, 0, "{err}\n{result}");
    assert_eq!(result["verdict"], "passed");
    assert!(
        vigil_log_lines(&dir.path().join("logs"))
            .iter()
            .any(|l| l["event"] == "gate_passed")
    );

    // The log stays one verified chain with the verdicts in it.
    let out = vigil()
        .args(["logs", "verify", "--dir"])
        .arg(dir.path().join("logs"))
        .output()
        .expect("vigil logs verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A model whose graph changed cannot be gated.
    let spoiled = tempfile::tempdir().expect("tempdir");
    let spoiled_dir = copy_model(spoiled.path(), |t| t);
    let graph = spoiled.path().join("model.onnx");
    let mut bytes = std::fs::read(&graph).expect("graph");
    bytes[100] ^= 0xff;
    std::fs::write(&graph, bytes).expect("write");
    let (code, _, err) = gate(dir.path(), None, &spoiled_dir);
    assert_eq!(code, 2);
    assert!(err.contains("model.onnx: sha256 is"), "{err}");
}

/// `--report` writes one self-contained page with a chart per section.
#[test]
fn the_report_is_one_self_contained_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    let (code, _, err) = backtest_on(
        &repo("models/ema_cross"),
        &repo("data/GOOG_1d.csv"),
        &["--report", page.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(html.matches("<svg").count() >= 3, "equity, drawdown, folds");
    assert!(html.contains("ema_cross@1.0.0"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}
