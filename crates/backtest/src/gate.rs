//! The gate: the thresholds a model's backtests must meet, in every layer, before it may
//! trade (`vigil gate`, `config/gate.toml`). A figure that is withheld (too little data)
//! fails its check with the reason: a gate passes on evidence, never on its absence.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::evaluate::Evaluation;

/// `gate.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gate {
    /// The least annualised Sharpe ratio.
    pub min_sharpe: f64,
    /// The deepest drawdown allowed, as a fraction of the peak.
    pub max_drawdown: f64,
    /// The least share of winning trades.
    pub min_win_rate: f64,
    /// The least out-of-sample Sharpe as a share of the in-sample one.
    pub min_oos_is_ratio: f64,
    /// The least probabilistic Sharpe ratio.
    pub min_psr: f64,
    /// The largest gap between the layers' Sharpe ratios (OMS against vectorized).
    pub max_layer_gap: f64,
    /// The least sample a ratio is computed on: calendar days.
    pub min_days: f64,
    /// The least sample a ratio is computed on: closed trades.
    pub min_trades: u64,
    /// The share of bars in sample.
    pub split: f64,
    /// Anchored walk-forward folds.
    pub folds: usize,
}

impl Default for Gate {
    /// The defaults: Sharpe ≥ 1, drawdown ≤ 15%, win rate ≥ 45%, OOS Sharpe ≥
    /// 0.7 × IS, PSR ≥ 0.95, layer gap ≤ 0.5; 90 days and 30 trades.
    fn default() -> Self {
        Self {
            min_sharpe: 1.0,
            max_drawdown: 0.15,
            min_win_rate: 0.45,
            min_oos_is_ratio: 0.7,
            min_psr: 0.95,
            max_layer_gap: 0.5,
            min_days: 90.0,
            min_trades: 30,
            split: 0.7,
            folds: 4,
        }
    }
}

/// Why a gate file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// It cannot be read.
    #[error("{path}: cannot read: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// It does not parse, or a value is out of range.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why (the key included).
        reason: String,
    },
}

impl Gate {
    /// Reads and checks a gate file.
    ///
    /// # Errors
    /// The file, and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, GateError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| GateError::Read {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let gate: Self = toml::from_str(&text).map_err(|e| GateError::Invalid {
            path: name.clone(),
            reason: e.to_string().trim_end().to_string(),
        })?;
        let bad = |key: &str, why: &str| {
            Err(GateError::Invalid {
                path: name.clone(),
                reason: format!("{key}: {why}"),
            })
        };
        if !(0.0..=1.0).contains(&gate.max_drawdown) {
            return bad("max_drawdown", "a fraction of the peak, in [0, 1]");
        }
        if !(0.0..=1.0).contains(&gate.min_win_rate) || !(0.0..=1.0).contains(&gate.min_psr) {
            return bad("min_win_rate / min_psr", "a probability, in [0, 1]");
        }
        if !(0.1..=0.95).contains(&gate.split) {
            return bad("split", "the share in sample, in [0.1, 0.95]");
        }
        if gate.max_layer_gap < 0.0 || !gate.min_sharpe.is_finite() {
            return bad(
                "max_layer_gap / min_sharpe",
                "must be finite, the gap not negative",
            );
        }
        Ok(gate)
    }
}

/// One check of one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// `vectorized` or `oms`.
    pub layer: String,
    /// What is checked (`sharpe`, `max_drawdown` …).
    pub check: &'static str,
    /// The threshold, as text (`≥ 1.00`).
    pub threshold: String,
    /// The value, or why there is none.
    pub value: String,
    /// Whether it passed.
    pub passed: bool,
}

/// Judges each layer against the gate; the OMS layer is also judged on its gap to the
/// vectorized one.
pub fn judge(gate: &Gate, layers: &[Evaluation]) -> Vec<Check> {
    let vectorized_sharpe = layers
        .iter()
        .find(|e| e.layer == "vectorized")
        .and_then(|e| e.summary.sharpe.value());
    let mut out = Vec::new();
    for e in layers {
        let s = &e.summary;
        let mut check = |check: &'static str,
                         threshold: String,
                         value: Result<f64, String>,
                         pass: &dyn Fn(f64) -> bool| {
            let (value, passed) = match value {
                Ok(v) => (format!("{v:.3}"), pass(v)),
                Err(why) => (format!("none: {why}"), false),
            };
            out.push(Check {
                layer: e.layer.to_string(),
                check,
                threshold,
                value,
                passed,
            });
        };
        let figure = |f: &crate::Figure| match f {
            crate::Figure::Value(v) => Ok(*v),
            crate::Figure::Withheld(why) => Err(why.clone()),
        };
        check(
            "sharpe",
            format!("≥ {:.2}", gate.min_sharpe),
            figure(&s.sharpe),
            &|v| v >= gate.min_sharpe,
        );
        check(
            "max_drawdown",
            format!("≤ {:.3}", gate.max_drawdown),
            Ok(s.max_drawdown),
            &|v| v <= gate.max_drawdown,
        );
        check(
            "win_rate",
            format!("≥ {:.3}", gate.min_win_rate),
            figure(&s.win_rate),
            &|v| v >= gate.min_win_rate,
        );
        let ratio = match (
            figure(&e.split.in_sample.sharpe),
            figure(&e.split.out_of_sample.sharpe),
        ) {
            (Ok(is), Ok(oos)) if is > 0.0 => Ok(oos / is),
            (Ok(is), Ok(_)) => Err(format!("the in-sample Sharpe ({is:.2}) is not above zero")),
            (Err(why), _) => Err(format!("in sample: {why}")),
            (_, Err(why)) => Err(format!("out of sample: {why}")),
        };
        check(
            "oos_is_sharpe",
            format!("≥ {:.2}", gate.min_oos_is_ratio),
            ratio,
            &|v| v >= gate.min_oos_is_ratio,
        );
        check(
            "psr",
            format!("≥ {:.2}", gate.min_psr),
            figure(&s.probabilistic_sharpe),
            &|v| v >= gate.min_psr,
        );
        if e.layer != "vectorized" {
            let gap = match (figure(&s.sharpe), vectorized_sharpe) {
                (Ok(o), Some(v)) => Ok((o - v).abs()),
                (Err(why), _) => Err(why),
                (_, None) => Err("the vectorized layer has no Sharpe ratio".into()),
            };
            check(
                "layer_gap_sharpe",
                format!("≤ {:.2}", gate.max_layer_gap),
                gap,
                &|v| v <= gate.max_layer_gap,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
