//! The backtest as one self-contained page (vigil-backtest's report, charts by plotters),
//! from the layers `vigil backtest` or `vigil gate` ran: recorded in the store with the
//! run's figures for the dashboard, and written to `--report FILE.html` when asked.

use std::path::Path;

use vigil_backtest::evaluate::Evaluation;
use vigil_backtest::gate::Check;
use vigil_backtest::report::{FoldRow, GateRow, LayerCurve, ReportInput, render};

use crate::backtest_cmd::{Loaded, table};

/// The report of `layers` (and the gate's `checks`, if one ran): one self-contained page.
///
/// # Errors
/// The page cannot be made (a chart fails).
pub(crate) fn page(
    loaded: &Loaded,
    data: &Path,
    layers: &[Evaluation],
    checks: &[Check],
) -> Result<String, String> {
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
    render(&ReportInput {
        title: &title,
        layers: curves,
        folds: &folds,
        gate: &gate,
        figures: &figures,
    })
    .map_err(|e| format!("the report of {title}: {e}"))
}

/// Writes `page` to `path` (`--report`).
///
/// # Errors
/// The file cannot be written; the message names it.
pub(crate) fn write(path: &Path, page: &str) -> anyhow::Result<()> {
    std::fs::write(path, page)
        .map_err(|e| anyhow::anyhow!("{}: cannot write the report: {e}", path.display()))
}

/// Records the run's report and `page` in the store (`[store]`), for the dashboard;
/// returns its id. `summary` holds the figures (`{"backtest": …}`, and a gate's checks and
/// hashes); `verdict` is a gate's.
///
/// # Errors
/// The store cannot be opened or written; the message says so.
pub(crate) fn record(
    loaded: &Loaded,
    command: &str,
    data: &Path,
    verdict: Option<&str>,
    summary: &serde_json::Value,
    page: &str,
) -> Result<u64, String> {
    let report = vigil_store::BacktestReport {
        model: loaded.model.manifest.name.clone(),
        version: loaded.model.manifest.version.clone(),
        command: command.to_string(),
        data: data.display().to_string(),
        data_sha256: loaded.data_sha256.clone(),
        at: vigil_core::Clock::now(&vigil_core::SystemClock),
        verdict: verdict.map(str::to_string),
        summary: summary.to_string(),
    };
    crate::control_client::with_store(&loaded.cfg, async |store| {
        store
            .record_backtest_report(&report, page)
            .await
            .map_err(|e| format!("recording the report in the store: {e}"))
    })
}
