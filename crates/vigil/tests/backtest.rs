//! `vigil backtest`: the bundled EMA-cross artifact on the bundled GOOG bars, through the
//! vectorized layer; ratios withheld on too little data; bad input refused with exit 2.

mod common;

use common::{repo, vigil};
use serde_json::Value;

fn backtest(args: &[&str]) -> (i32, Value, String) {
    let out = vigil()
        .arg("backtest")
        .args(args)
        .output()
        .expect("vigil backtest");
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
    let (code, v, err) = backtest(&[
        "--model",
        model.to_str().expect("utf-8"),
        "--data",
        data.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["model"], "ema_cross@1.0.0");
    assert_eq!(v["interval_s"], 86_400);
    // XNYS sessions a year, not 365 and not a hard-coded 252.
    let ppy = v["periods_per_year"].as_f64().expect("ppy");
    assert!((248.0..=254.0).contains(&ppy), "{ppy}");
    let s = &v["summary"];
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
    assert!(v["probes"]["lagged_one_bar"]["sharpe"]["value"].is_f64());
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
    let (code, v, err) = backtest(&[
        "--model",
        model.to_str().expect("utf-8"),
        "--data",
        path.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let sharpe = &v["summary"]["sharpe"];
    assert!(sharpe["value"].is_null(), "{sharpe}");
    assert!(
        sharpe["withheld"]
            .as_str()
            .is_some_and(|w| w.contains("days of data, fewer than the 90")),
        "{sharpe}"
    );
    assert!(v["summary"]["total_return"].is_f64());
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
    let (code, _, err) = backtest(&[
        "--model",
        dir.path().to_str().expect("utf-8"),
        "--data",
        data.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("w.bin: sha256 is"), "{err}");
    let model = repo("models/ema_cross");
    let (code, _, err) = backtest(&[
        "--model",
        model.to_str().expect("utf-8"),
        "--data",
        "/nonexistent/bars.csv",
    ]);
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
