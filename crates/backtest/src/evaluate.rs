//! One layer's whole evaluation of a model on a bars file: the figures, the in-sample /
//! out-of-sample split, the walk-forward folds and the bias probes, as `vigil backtest`
//! prints them and `vigil gate` judges them.

use rust_decimal::prelude::ToPrimitive as _;
use serde::Serialize;
use vigil_config::{Sizing, VigilConfig};
use vigil_model::{Artifact, Onnx};

use crate::folds::{Measure, Segment};
use crate::metrics::spearman;
use crate::vectorized::{Bars, Costs, Run, Setup, VectorizedError, outputs, run, run_into};
use crate::{MinimumSample, Summary};

/// How to evaluate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Bars a year.
    pub periods_per_year: f64,
    /// The least sample a ratio is computed on.
    pub minimum: MinimumSample,
    /// The share of bars in sample.
    pub split: f64,
    /// Anchored walk-forward folds.
    pub folds: usize,
    /// Backtests recorded for this model, this one included (the deflated Sharpe's trials).
    pub trials: u64,
    /// The parity mode: no costs, always the whole unit, shorts allowed.
    pub parity: bool,
}

/// The bias probes: the same model, a bar late, and at twice the costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Probes {
    /// Every position a bar late: a model that needs tomorrow's data collapses here.
    pub lagged_one_bar: Summary,
    /// Both costs doubled.
    pub costs_doubled: Summary,
}

/// One layer's evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// `vectorized` or `oms`.
    pub layer: &'static str,
    /// The figures over every bar.
    pub summary: Summary,
    /// The single in-sample / out-of-sample split.
    pub split: Segment,
    /// The anchored walk-forward folds.
    pub folds: Vec<Segment>,
    /// The bias probes (the vectorized layer's).
    pub probes: Option<Probes>,
    /// Spearman correlation of the model's output with the next bar's return.
    pub information_coefficient: Option<f64>,
    /// Times the position changed.
    pub position_changes: u64,
    /// Profit per unit of the instrument, in price, before costs (the parity measure).
    pub pnl_per_unit: f64,
    /// What the order path cost and refused (the OMS layer's).
    pub friction: Option<crate::oms::Friction>,
    /// Equity after each bar, starting at 1.
    #[serde(skip)]
    pub equity: Vec<f64>,
}

/// The setup `cfg` gives: its costs, `[signal] allow_short`, and `[risk] position_pct` as
/// the share of equity a whole unit of position is (1 for a fixed quantity, whose share the
/// vectorized layer cannot know; the OMS layer books it exactly).
pub fn setup(model: &Artifact, cfg: &VigilConfig, parity: bool) -> Setup {
    // Every Decimal has an f64 neighbour: `to_f64` does not fail on config values.
    let f = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
    if parity {
        return Setup {
            output: model.manifest.output,
            allow_short: true,
            costs: Costs::FREE,
            exposure: 1.0,
            lag: 0,
        };
    }
    Setup {
        output: model.manifest.output,
        allow_short: cfg.signal.allow_short,
        costs: Costs {
            commission_bps: f(cfg.execution.commission_bps),
            slippage_bps: f(cfg.execution.slippage_bps),
        },
        exposure: match cfg.risk.sizing {
            Sizing::PercentOfEquity => f(cfg.risk.position_pct),
            Sizing::FixedQuantity => 1.0,
        },
        lag: 0,
    }
}

/// The equity curve of per-bar returns, starting at 1.
pub fn equity(returns: &[f64]) -> Vec<f64> {
    returns
        .iter()
        .scan(1.0, |e, r| {
            *e *= 1.0 + r;
            Some(*e)
        })
        .collect()
}

/// Measures a finished run (either layer's) the same way.
pub fn measure(
    layer: &'static str,
    r: &Run,
    bars: &Bars,
    opts: &Options,
    probes: Option<Probes>,
    information_coefficient: Option<f64>,
) -> Evaluation {
    let m = Measure {
        run: r,
        bars,
        periods_per_year: opts.periods_per_year,
        trials: opts.trials,
        minimum: &opts.minimum,
    };
    Evaluation {
        layer,
        summary: m.summary_all(),
        split: m.split(opts.split),
        folds: m.walk_forward(opts.folds),
        probes,
        information_coefficient,
        position_changes: r.position_changes,
        pnl_per_unit: r.pnl_per_unit,
        friction: None,
        equity: equity(&r.returns),
    }
}

/// The vectorized layer's evaluation of `model` on `bars`.
///
/// # Errors
/// The model failed on the data.
pub fn vectorized(
    model: &Artifact,
    graph: Option<&Onnx>,
    bars: &Bars,
    cfg: &VigilConfig,
    opts: &Options,
) -> Result<Evaluation, VectorizedError> {
    let outs = outputs(model, graph, &bars.closes, &cfg.regime)?;
    let base = setup(model, cfg, opts.parity);
    let m = |r: &Run| {
        Measure {
            run: r,
            bars,
            periods_per_year: opts.periods_per_year,
            trials: opts.trials,
            minimum: &opts.minimum,
        }
        .summary_all()
    };
    // The probes and the information coefficient on a second thread while this one runs
    // and measures the model itself: they only read the same columns.
    let (mut evaluation, side) = std::thread::scope(|scope| {
        let side = scope.spawn(|| {
            // Both probes in the same columns, one after the other.
            let mut probe = Run::default();
            run_into(&mut probe, &bars.closes, &outs, &Setup { lag: 1, ..base });
            let lagged_one_bar = m(&probe);
            let doubled = Setup {
                costs: base.costs.doubled(),
                ..base
            };
            run_into(&mut probe, &bars.closes, &outs, &doubled);
            let probes = Probes {
                lagged_one_bar,
                costs_doubled: m(&probe),
            };
            drop(probe);
            // Each output beside the next bar's return, walked in place (no columns).
            let pairs = outs
                .iter()
                .zip(bars.closes.windows(2))
                .filter_map(|(o, w)| o.map(|o| (o, w[1] / w[0] - 1.0)));
            (probes, spearman(pairs))
        });
        let r = run(&bars.closes, &outs, &base);
        let evaluation = measure("vectorized", &r, bars, opts, None, None);
        (evaluation, side.join())
    });
    // A panic there is a bug here: carried on as this thread's.
    let (probes, ic) = side.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    evaluation.probes = Some(probes);
    evaluation.information_coefficient = ic;
    Ok(evaluation)
}

/// The OMS layer's evaluation: `model_dir` through the real agents and the paper venue on
/// `data`, the session's scratch files in `work`.
///
/// # Errors
/// The session could not run or its log cannot be read.
pub fn oms(
    model_dir: &std::path::Path,
    data: &std::path::Path,
    bars: &Bars,
    cfg: &VigilConfig,
    opts: &Options,
    work: &std::path::Path,
) -> Result<Evaluation, crate::oms::OmsError> {
    let session = crate::oms::session_config(cfg, model_dir, data, work, opts.parity);
    let run = crate::oms::run(session, bars)?;
    let mut e = measure("oms", &run.run, bars, opts, None, None);
    e.friction = Some(run.friction);
    Ok(e)
}
