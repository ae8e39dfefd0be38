//! `--report FILE.html`: the backtest as one self-contained page (vigil-backtest's report,
//! charts by plotters), from the layers `vigil backtest` or `vigil gate` ran.

use std::path::Path;

use vigil_backtest::evaluate::Evaluation;
use vigil_backtest::gate::Check;
use vigil_backtest::report::{FoldRow, GateRow, LayerCurve, ReportInput, render};

use crate::backtest_cmd::{Loaded, table};

/// Writes the report of `layers` (and the gate's `checks`, if one ran) to `path`.
///
/// # Errors
/// The page cannot be made or written; the message names the file.
pub(crate) fn write(
    path: &Path,
    loaded: &Loaded,
    data: &Path,
    layers: &[Evaluation],
    checks: &[Check],
) -> anyhow::Result<()> {
    let title = format!("{} on {}", loaded.model.label(), data.display());
    let times = &loaded.bars.times;
    let curves: Vec<LayerCurve<'_>> = layers
        .iter()
        .map(|e| LayerCurve {
            layer: e.layer,
            times: &times[..e.equity.len().min(times.len())],
            equity: &e.equity[..e.equity.len().min(times.len())],
        })
        .collect();
    // The folds of the first layer that has them (the vectorized one when it ran).
    let folds: Vec<FoldRow> = layers
        .first()
        .map(|e| {
            e.folds
                .iter()
                .map(|f| FoldRow {
                    fold: f.fold,
                    in_sample_sharpe: f.in_sample.sharpe.value(),
                    out_of_sample_sharpe: f.out_of_sample.sharpe.value(),
                })
                .collect()
        })
        .unwrap_or_default();
    let gate: Vec<GateRow> = checks
        .iter()
        .map(|c| GateRow {
            layer: c.layer.clone(),
            check: c.check.to_string(),
            threshold: c.threshold.clone(),
            value: c.value.clone(),
            passed: c.passed,
        })
        .collect();
    let figures: Vec<(String, String)> = table(loaded, layers)
        .into_iter()
        .map(|(name, values)| (name, values.join(" | ")))
        .collect();
    let page = render(&ReportInput {
        title: &title,
        layers: curves,
        folds: &folds,
        gate: &gate,
        figures: &figures,
    })
    .map_err(|e| anyhow::anyhow!("the report {}: {e}", path.display()))?;
    std::fs::write(path, page)
        .map_err(|e| anyhow::anyhow!("{}: cannot write the report: {e}", path.display()))
}
