use super::*;
use crate::MinimumSample;
use crate::evaluate::{Options, measure};
use crate::vectorized::{Bars, Costs, Setup, run};
use vigil_model::Output;

/// Five years of a wave, and a model right about the next bar's sign six times in ten: a
/// profitable run with losing trades and drawdowns, measured by the real code.
fn evaluation(layer: &'static str) -> Evaluation {
    let bars = Bars::daily(2000, |i| 100.0 + 8.0 * (i / 5.0).sin() + (i / 1.3).cos());
    let outs: Vec<Option<f64>> = bars
        .closes
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            Some(if (i * 37) % 10 < 6 {
                w[1] - w[0]
            } else {
                w[0] - w[1]
            })
        })
        .chain([None])
        .collect();
    let r = run(
        &bars.closes,
        &outs,
        &Setup {
            output: Output::Sign,
            allow_short: true,
            costs: Costs {
                commission_bps: 5.0,
                slippage_bps: 5.0,
            },
            exposure: 0.1,
            lag: 0,
        },
    );
    let opts = Options {
        periods_per_year: 365.25,
        minimum: MinimumSample {
            days: 90.0,
            trades: 30,
        },
        split: 0.7,
        folds: 4,
        trials: 1,
        parity: false,
    };
    measure(layer, &r, &bars, &opts, None, None)
}

/// A gate every check of `e` passes.
fn lenient() -> Gate {
    Gate {
        min_sharpe: -100.0,
        max_drawdown: 1.0,
        min_win_rate: 0.0,
        min_oos_is_ratio: -100.0,
        min_psr: 0.0,
        max_layer_gap: 100.0,
        ..Gate::default()
    }
}

fn failed(checks: &[Check]) -> Vec<(String, &'static str)> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| (c.layer.clone(), c.check))
        .collect()
}

#[test]
fn each_threshold_fails_the_gate_on_its_own() {
    let layers = [evaluation("vectorized"), evaluation("oms")];
    let s = &layers[0].summary;
    assert_eq!(
        failed(&judge(&lenient(), &layers)),
        vec![],
        "{:?}",
        judge(&lenient(), &layers)
    );
    let sharpe = s.sharpe.value().expect("sharpe");
    let win = s.win_rate.value().expect("win rate");
    let psr = s.probabilistic_sharpe.value().expect("psr");
    let ratio = layers[0].split.decay.expect("decay");
    let cases: Vec<(Gate, &'static str)> = vec![
        (
            Gate {
                min_sharpe: sharpe + 0.01,
                ..lenient()
            },
            "sharpe",
        ),
        (
            Gate {
                max_drawdown: s.max_drawdown * 0.99,
                ..lenient()
            },
            "max_drawdown",
        ),
        (
            Gate {
                min_win_rate: win + 0.001,
                ..lenient()
            },
            "win_rate",
        ),
        (
            Gate {
                min_oos_is_ratio: ratio + 0.01,
                ..lenient()
            },
            "oos_is_sharpe",
        ),
        (
            Gate {
                min_psr: (psr + 1.0) / 2.0,
                ..lenient()
            },
            "psr",
        ),
    ];
    for (gate, check) in cases {
        let got = failed(&judge(&gate, &layers));
        assert_eq!(
            got,
            vec![
                ("vectorized".to_string(), check),
                ("oms".to_string(), check)
            ],
            "{check}"
        );
    }
    // The layer gap: the same run in both layers has none; a gap below zero cannot pass.
    let mut other = evaluation("oms");
    other.summary.sharpe = crate::Figure::Value(sharpe - 0.6);
    let got = failed(&judge(
        &Gate {
            max_layer_gap: 0.5,
            ..lenient()
        },
        &[layers[0].clone(), other],
    ));
    assert_eq!(got, vec![("oms".to_string(), "layer_gap_sharpe")]);
}

#[test]
fn a_withheld_figure_fails_its_check_with_the_reason() {
    let mut e = evaluation("vectorized");
    e.summary.sharpe = crate::Figure::Withheld("18 days of data, fewer than 90".into());
    let checks = judge(&lenient(), &[e]);
    let sharpe = checks.iter().find(|c| c.check == "sharpe").expect("sharpe");
    assert!(!sharpe.passed);
    assert!(sharpe.value.contains("18 days"), "{}", sharpe.value);
}

#[test]
fn a_gate_file_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gate.toml");
    std::fs::write(&path, "min_sharpe = 0.8\nfolds = 3\n").expect("write");
    let g = Gate::load(&path).expect("valid");
    assert_eq!((g.min_sharpe, g.folds, g.max_drawdown), (0.8, 3, 0.15));
    std::fs::write(&path, "max_drawdown = 15\n").expect("write");
    let e = Gate::load(&path)
        .expect_err("15 is not a fraction")
        .to_string();
    assert!(e.contains("gate.toml") && e.contains("max_drawdown"), "{e}");
    std::fs::write(&path, "min_sharp = 1\n").expect("write");
    let e = Gate::load(&path).expect_err("unknown key").to_string();
    assert!(e.contains("min_sharp"), "{e}");
}
