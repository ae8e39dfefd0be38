//! The OMS-integrated layer: the same model artifact through the real Data, Regime,
//! Signal, Risk and Execution agents, on the simulated clock and the paper venue (its fill
//! model, slippage, commission, volume participation, and every risk check), as `vigil run`
//! would trade it. The session writes its hash-chained log to a scratch folder; the equity
//! curve is then rebuilt bar by bar from the fills in that log, marked at each close, so
//! that both layers are measured by the same code ([`crate::evaluate::measure`]).

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;
use serde::Serialize;
use vigil_config::{FillModelConfig, InstrumentConfig, Sizing, Speed, VenueKind, VigilConfig};
use vigil_session::{SessionOptions, SessionSummary};

use crate::vectorized::{Bars, Run};

/// Why the OMS layer could not run.
#[derive(Debug, thiserror::Error)]
pub enum OmsError {
    /// The session failed to start or ended on an error.
    #[error("the OMS layer's session: {0}")]
    Session(String),
    /// Its log cannot be read.
    #[error("the OMS layer's log {}: {reason}", dir.display())]
    Log {
        /// The log folder.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What the order path cost, and what it refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Friction {
    /// Commission paid.
    pub commission: Decimal,
    /// Slippage paid against the decision's price (negative: price improvement).
    pub slippage: Decimal,
    /// Signals whose order Risk rejected.
    pub risk_rejected: u64,
    /// Orders the venue refused.
    pub venue_rejects: u64,
    /// Orders sent.
    pub orders: u64,
    /// Executions.
    pub fills: u64,
    /// Executions that left part of their order open.
    pub partial_fills: u64,
    /// Final equity minus starting cash.
    pub pnl: Decimal,
}

/// An OMS run: the columns for the metrics, and the friction.
#[derive(Clone, Debug)]
pub struct OmsRun {
    /// The columns (positions as a share of equity; `pnl_per_unit` by the sign of the
    /// position, as the vectorized layer counts it).
    pub run: Run,
    /// What the order path cost.
    pub friction: Friction,
    /// The session's own summary.
    pub summary: SessionSummary,
}

/// `cfg` made to replay `data` with `model` as fast as it goes, logging to `work`, and
/// cut off from everything outside: a live config's feed, cross-check source and broker
/// are dropped (the bars come from `data`, the orders go to the in-process paper venue),
/// no alert is sent and no heartbeat pinged, the checklists go to `work`; in parity mode
/// also: fills at the signal bar's close, no costs, unlimited liquidity, one
/// unit, shorts allowed, no drawdown control.
pub fn session_config(
    cfg: &VigilConfig,
    model: &Path,
    data: &Path,
    work: &Path,
    parity: bool,
) -> VigilConfig {
    let mut cfg = cfg.clone();
    let symbol = data
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .split(['_', '.'])
                .next()
                .unwrap_or("X")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "X".into());
    cfg.data.instruments = vec![InstrumentConfig {
        symbol,
        path: data.display().to_string(),
        check_gaps: None,
    }];
    cfg.data.speed = Speed::Max;
    cfg.signal.model = model.display().to_string();
    cfg.log.dir = work.join("logs");
    cfg.store.path = work.join("state.db");
    cfg.store.url = None;
    cfg.control.enabled = false;
    // A backtest of the live config must not read the live feed, trade at the broker,
    // page the desk or tell the dead man's switch that the live process is alive.
    cfg.data.feed = None;
    cfg.data.cross_check = None;
    cfg.execution.venue = VenueKind::Paper;
    cfg.alerts.enabled = false;
    cfg.monitor.dead_man.heartbeat_url = None;
    cfg.checklist.dir = work.join("checklists");
    if parity {
        cfg.execution.fill_model = FillModelConfig::SignalBarClose;
        cfg.execution.slippage_bps = Decimal::ZERO;
        cfg.execution.commission_bps = Decimal::ZERO;
        cfg.execution.commission_min = Decimal::ZERO;
        cfg.execution.max_volume_participation = Decimal::ONE;
        cfg.risk.sizing = Sizing::FixedQuantity;
        cfg.risk.fixed_quantity = Decimal::ONE;
        cfg.risk.max_position_pct = Decimal::ONE;
        cfg.risk.max_gross_exposure_pct = Decimal::TEN;
        cfg.risk.regime_size_factor.volatile = Decimal::ONE;
        cfg.risk.drawdown_control.enabled = false;
        cfg.signal.allow_short = true;
    }
    cfg
}

/// `data.<key>` of a log line as an exact decimal (the log writes money as JSON numbers
/// with their exact digits).
fn dec(data: &serde_json::Value, key: &str) -> Result<Decimal, String> {
    let v = &data[key];
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(format!("data.{key} is missing or not a number ({v})")),
    };
    Decimal::from_str(&text).map_err(|e| format!("data.{key} {text:?} is not a decimal: {e}"))
}

/// One execution, as the log records it.
struct Fill {
    at: chrono::DateTime<chrono::Utc>,
    signed: Decimal,
    price: Decimal,
    commission: Decimal,
    /// Slippage paid against the decision's price, in money.
    slippage: Decimal,
    /// Part of its order is still open.
    partial: bool,
}

impl Fill {
    /// A `fill_received` line of an order vigil tracks.
    fn parse(line: &serde_json::Value) -> Result<Self, String> {
        let data = &line["data"];
        let text = line["timestamp"]
            .as_str()
            .ok_or_else(|| "no timestamp".to_string())?;
        let at = chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("timestamp {text:?}: {e}"))?
            .with_timezone(&chrono::Utc);
        let (qty, price) = (dec(data, "quantity")?, dec(data, "price")?);
        let signed = match data["side"].as_str() {
            Some("BUY") => qty,
            Some("SELL") => -qty,
            other => return Err(format!("data.side {other:?} is neither BUY nor SELL")),
        };
        Ok(Self {
            at,
            signed,
            price,
            commission: dec(data, "commission")?,
            slippage: dec(data, "slippage_bps")? * price * qty / Decimal::from(10_000),
            partial: dec(data, "leaves_quantity")? > Decimal::ZERO,
        })
    }
}

/// Runs the session and rebuilds its equity curve on `bars`.
///
/// # Errors
/// The session could not run, or its log cannot be read.
pub fn run(cfg: VigilConfig, bars: &Bars) -> Result<OmsRun, OmsError> {
    let initial = cfg.session.initial_cash;
    let outcome = vigil_session::run(SessionOptions::new(cfg))
        .map_err(|e| OmsError::Session(e.to_string()))?;
    if let Some(error) = &outcome.summary.error {
        return Err(OmsError::Session(error.clone()));
    }
    let dir = outcome.log_dir.clone();
    let log_error = |reason: String| OmsError::Log {
        dir: dir.clone(),
        reason,
    };
    let mut fills = Vec::new();
    let mut friction = Friction::default();
    let mut bad = None;
    // The writer spells each line's event as `"event":"name"`: the few lines wanted are
    // found by that text and only they are parsed (a million bars log ~130,000 lines).
    vigil_log::read_raw_lines(&dir, |path, n, raw| {
        if raw.contains(r#""event":"risk_rejected""#) {
            friction.risk_rejected += 1;
        } else if raw.contains(r#""event":"order_rejected""#) {
            friction.venue_rejects += 1;
        } else if raw.contains(r#""event":"order_submitted""#) {
            friction.orders += 1;
        } else if raw.contains(r#""event":"fill_received""#) {
            let parsed = serde_json::from_str::<serde_json::Value>(raw)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    // An unknown order's fill line carries an error, not the fill (it was
                    // faulted): not booked here.
                    if v["data"].get("price").is_some() {
                        Fill::parse(&v).map(Some)
                    } else {
                        Ok(None)
                    }
                });
            match parsed {
                Ok(Some(fill)) => {
                    friction.commission += fill.commission;
                    friction.slippage += fill.slippage;
                    friction.fills += 1;
                    friction.partial_fills += u64::from(fill.partial);
                    fills.push(fill);
                }
                Ok(None) => {}
                Err(why) => {
                    bad = Some(format!("{}:{n}: a fill line: {why}", path.display()));
                    return false;
                }
            }
        }
        true
    })
    .map_err(|e| log_error(e.to_string()))?;
    if let Some(why) = bad {
        return Err(log_error(why));
    }
    friction.pnl = outcome.summary.pnl();
    let run = rebuild(bars, &fills, initial);
    Ok(OmsRun {
        run,
        friction,
        summary: outcome.summary,
    })
}

/// The equity curve, positions and trades from the fills, marked at each bar's close.
fn rebuild(bars: &Bars, fills: &[Fill], initial: Decimal) -> Run {
    let n = bars.closes.len();
    let mut out = Run {
        returns: Vec::with_capacity(n),
        positions: Vec::with_capacity(n),
        exposure: 1.0,
        ..Run::default()
    };
    let mut cash = initial;
    let mut qty = Decimal::ZERO;
    let mut next = 0;
    let mut previous_equity = initial.to_f64().unwrap_or(1.0);
    let mut previous_weight = 0.0;
    // The open trade: its cash flow so far and what it cost to enter.
    let mut trade_cash = Decimal::ZERO;
    let mut trade_entry = Decimal::ZERO;
    for t in 0..n {
        let before = qty;
        while let Some(f) = fills.get(next).filter(|f| f.at <= bars.times[t]) {
            next += 1;
            let mut remaining = f.signed;
            let per_unit_commission = if f.signed.is_zero() {
                Decimal::ZERO
            } else {
                f.commission / f.signed.abs()
            };
            while !remaining.is_zero() {
                // The part of the fill that closes the open position, then the part that
                // opens a new one.
                let closing =
                    if qty.is_zero() || qty.is_sign_positive() == remaining.is_sign_positive() {
                        Decimal::ZERO
                    } else {
                        let size = remaining.abs().min(qty.abs());
                        if remaining.is_sign_negative() {
                            -size
                        } else {
                            size
                        }
                    };
                let part = if closing.is_zero() {
                    remaining
                } else {
                    closing
                };
                let flow = -part * f.price - per_unit_commission * part.abs();
                cash += flow;
                if qty.is_zero() {
                    trade_cash = Decimal::ZERO;
                    trade_entry = part.abs() * f.price;
                } else if closing.is_zero() {
                    trade_entry += part.abs() * f.price;
                }
                trade_cash += flow;
                qty += part;
                remaining -= part;
                if !closing.is_zero() && qty.is_zero() {
                    let r = if trade_entry.is_zero() {
                        0.0
                    } else {
                        (trade_cash / trade_entry).to_f64().unwrap_or(0.0)
                    };
                    out.trades.push(r);
                    out.trade_ends.push(t);
                }
            }
        }
        // A close is a positive finite number (Bars::read refused any other), which
        // Decimal holds; and every Decimal has an f64 neighbour, so the `to_f64`s below
        // cannot fail on the values booked here.
        let close = Decimal::from_f64_retain(bars.closes[t]).unwrap_or_default();
        // While a trade is open its cash flow includes the position's value for the
        // accounting above only when it closes; equity marks it at the close.
        let equity = (cash + qty * close).to_f64().unwrap_or(0.0);
        let r = if t == 0 || previous_equity == 0.0 {
            equity / initial.to_f64().unwrap_or(1.0) - 1.0
        } else {
            equity / previous_equity - 1.0
        };
        out.returns.push(r);
        let weight = if equity != 0.0 {
            (qty * close).to_f64().unwrap_or(0.0) / equity
        } else {
            0.0
        };
        out.positions.push(weight);
        if qty != before {
            out.position_changes += 1;
            out.turnover += (weight - previous_weight).abs();
        }
        if t > 0 {
            let held = out.positions[t - 1];
            if held != 0.0 {
                out.exposed_bars += 1;
            }
            // f64::signum(0.0) is 1: a flat bar earns nothing.
            let side = if held > 0.0 {
                1.0
            } else if held < 0.0 {
                -1.0
            } else {
                0.0
            };
            out.pnl_per_unit += side * (bars.closes[t] - bars.closes[t - 1]);
        }
        previous_weight = weight;
        previous_equity = equity;
    }
    out
}

#[cfg(test)]
mod tests;
