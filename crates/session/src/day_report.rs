//! The end-of-day report: after the close, the session's P&L, trades, fills and slippage,
//! drawdown, alerts and checks, from the log, written as text, JSON and a chart of the day's
//! equity and drawdown (PNG, drawn with plotters), and sent through the digest's channels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use vigil_core::Timestamp;

use crate::checklist::{CheckResult, CheckStatus};

mod chart;

pub use chart::chart_font;

/// One fill of the day, with its slippage against the price its decision used.
#[derive(Clone, Debug, PartialEq)]
pub struct DayFill {
    /// When (the line's time).
    pub at: String,
    /// The symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Shares.
    pub quantity: Decimal,
    /// The fill's price.
    pub price: Decimal,
    /// The price the decision used (the order's reference); `None` when its order's line
    /// is not in the log read.
    pub reference: Option<Decimal>,
    /// Commission paid.
    pub commission: Decimal,
}

impl DayFill {
    /// What the fill cost against its reference price (positive: paid), in money.
    pub fn slippage(&self) -> Option<Decimal> {
        let diff = self.price - self.reference?;
        Some(if self.side == "sell" { -diff } else { diff } * self.quantity)
    }
}

/// The end-of-day report of one session.
#[derive(Clone, Debug, PartialEq)]
pub struct DayReport {
    /// The exchange session.
    pub session: NaiveDate,
    /// When it was made.
    pub at: Timestamp,
    /// The closing snapshot: (equity, cash, positions, P&L since the start).
    pub close: Option<(Decimal, Decimal, String, Decimal)>,
    /// The P&L of the day (against the previous session's close).
    pub day_pnl: Option<Decimal>,
    /// The day's equity, `HH:MM` New York time, the last bar of each minute.
    pub curve: Vec<(String, Decimal)>,
    /// The deepest fall from the day's running peak (a ratio).
    pub max_drawdown: Option<f64>,
    /// Orders sent, filled (complete), rejected and cancelled.
    pub orders: [u64; 4],
    /// Every fill, in order.
    pub fills: Vec<DayFill>,
    /// Alerts fired, by severity (`LOW` … `CRITICAL`), with their headlines.
    pub alerts: Vec<(String, String)>,
    /// The WARN, ERROR and CRITICAL lines of the day.
    pub levels: [usize; 3],
    /// The post-close checks.
    pub checks: Vec<CheckResult>,
}

/// Where a day report was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenReport {
    /// One line for the subject.
    pub headline: String,
    /// The text.
    pub text: PathBuf,
    /// The JSON.
    pub json: PathBuf,
    /// The chart (PNG), when the day had a curve.
    pub chart: Option<PathBuf>,
}

/// Whether the line `v` is stamped on exchange date `session`.
pub(crate) fn on_day(v: &Value, session: NaiveDate) -> bool {
    v["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| vigil_core::exchange_date(t.with_timezone(&chrono::Utc)) == session)
}

/// The last closing snapshot (`positions_snapshot`) of `session` among `lines`, and the
/// last one of an earlier session before it (a restart within the day writes another
/// snapshot of the same day: the day's P&L is against the earlier session's close).
pub(crate) fn closing_snapshots(
    lines: &[Value],
    session: NaiveDate,
) -> (Option<&Value>, Option<&Value>) {
    let snapshots: Vec<&Value> = lines
        .iter()
        .filter(|v| v["event"] == "positions_snapshot")
        .collect();
    match snapshots.iter().rposition(|v| on_day(v, session)) {
        None => (None, None),
        Some(i) => (
            Some(snapshots[i]),
            snapshots[..i]
                .iter()
                .rev()
                .find(|p| !on_day(p, session))
                .copied(),
        ),
    }
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

impl DayReport {
    /// The report of `session` from the log's lines (JSON, in write order, reaching back at
    /// least to the previous session's close) and the post-close `checks`.
    pub fn from_lines(
        session: NaiveDate,
        at: Timestamp,
        lines: &[Value],
        checks: Vec<CheckResult>,
    ) -> Self {
        let (today, previous) = closing_snapshots(lines, session);
        let close = today.and_then(|v| {
            let d = &v["data"];
            Some((
                dec(&d["equity"])?,
                dec(&d["cash"])?,
                text(&d["positions"]),
                dec(&d["pnl"])?,
            ))
        });
        let day_pnl = today
            .zip(previous)
            .and_then(|(v, prev)| Some(dec(&v["data"]["equity"])? - dec(&prev["data"]["equity"])?));
        let day: Vec<&Value> = lines.iter().filter(|v| on_day(v, session)).collect();
        let curve_line = day.iter().rev().find(|v| v["event"] == "equity_curve");
        let curve = curve_line
            .map(|v| {
                text(&v["data"]["points"])
                    .split(',')
                    .filter_map(|p| {
                        let (t, e) = p.split_once('=')?;
                        Some((t.to_string(), e.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let max_drawdown = curve_line.and_then(|v| v["data"]["max_drawdown"].as_f64());
        // The reference price of each order (its decision's), from every line read: an
        // order sent on an earlier day may fill today.
        let reference: BTreeMap<String, Decimal> = lines
            .iter()
            .filter(|v| v["event"] == "order_submitted")
            .filter_map(|v| Some((text(&v["data"]["order_id"]), dec(&v["data"]["price"])?)))
            .collect();
        let count = |event: &str| day.iter().filter(|v| v["event"] == event).count() as u64;
        let fills = day
            .iter()
            .filter(|v| v["event"] == "fill_received")
            .filter_map(|v| {
                let d = &v["data"];
                Some(DayFill {
                    at: text(&v["timestamp"]),
                    symbol: text(&d["symbol"]),
                    side: text(&d["side"]),
                    quantity: dec(&d["quantity"])?,
                    price: dec(&d["price"])?,
                    reference: reference.get(&text(&d["order_id"])).copied(),
                    commission: dec(&d["commission"]).unwrap_or_default(),
                })
            })
            .collect();
        let alerts = day
            .iter()
            .filter(|v| v["event"] == "alert_firing")
            .map(|v| (text(&v["data"]["severity"]), text(&v["data"]["headline"])))
            .collect();
        let level = |l: &str| day.iter().filter(|v| v["level"] == l).count();
        Self {
            session,
            at,
            close,
            day_pnl,
            curve,
            max_drawdown,
            orders: [
                count("order_submitted"),
                count("order_filled"),
                count("order_rejected"),
                count("order_cancelled"),
            ],
            fills,
            alerts,
            levels: [level("WARN"), level("ERROR"), level("CRITICAL")],
            checks,
        }
    }

    /// What the fills cost against their decisions' prices (positive: paid), the notional
    /// they traded at those prices, and how many had a reference.
    pub fn slippage(&self) -> (Decimal, Decimal, usize) {
        self.fills.iter().fold(
            (Decimal::ZERO, Decimal::ZERO, 0),
            |(cost, notional, n), f| match (f.slippage(), f.reference) {
                (Some(s), Some(r)) => (cost + s, notional + r * f.quantity, n + 1),
                _ => (cost, notional, n),
            },
        )
    }

    /// The slippage in basis points of the notional, when any fill had a reference.
    pub fn slippage_bps(&self) -> Option<Decimal> {
        let (cost, notional, _) = self.slippage();
        (!notional.is_zero()).then(|| (cost / notional * Decimal::from(10_000)).round_dp(2))
    }

    /// One line: `P&L +1,234.50 today, 12 fills, max drawdown 0.41%, 0 alerts`.
    pub fn headline(&self) -> String {
        let pnl = match (self.day_pnl, &self.close) {
            (Some(d), _) => format!("P&L {} today", signed(d)),
            (None, Some((_, _, _, total))) => format!("P&L {} since the start", signed(*total)),
            (None, None) => "no closing snapshot".into(),
        };
        let dd = self
            .max_drawdown
            .map_or_else(String::new, |d| format!(", max drawdown {:.2}%", d * 100.0));
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .count();
        let checks = if failed > 0 {
            format!(", {failed} check(s) FAILED")
        } else {
            String::new()
        };
        format!(
            "{pnl}, {} fill{}{dd}, {} alert{}{checks}",
            self.fills.len(),
            if self.fills.len() == 1 { "" } else { "s" },
            self.alerts.len(),
            if self.alerts.len() == 1 { "" } else { "s" },
        )
    }

    /// The report for a person: aligned sections, the largest slippage first.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        out.push(format!("Day report for the {} session", self.session));
        out.push(String::new());
        out.push("P&L".into());
        match &self.close {
            Some((equity, cash, positions, total)) => {
                if let Some(d) = self.day_pnl {
                    out.push(format!("  today            {}", signed(d)));
                }
                out.push(format!("  since the start  {}", signed(*total)));
                out.push(format!("  equity           {equity}"));
                out.push(format!("  cash             {cash}"));
                out.push(format!(
                    "  positions        {}",
                    if positions.is_empty() {
                        "none"
                    } else {
                        positions
                    }
                ));
            }
            None => out.push("  no closing snapshot in the log: the close was not marked".into()),
        }
        out.push(String::new());
        out.push("Drawdown".into());
        match (self.max_drawdown, self.curve.first(), self.curve.last()) {
            (Some(d), Some(first), Some(last)) => {
                out.push(format!(
                    "  deepest today    {:.2}% from the day's peak",
                    d * 100.0
                ));
                out.push(format!(
                    "  curve            {} points, {} {} to {} {}",
                    self.curve.len(),
                    first.0,
                    first.1,
                    last.0,
                    last.1
                ));
            }
            _ => out.push("  no equity curve for the day (no bar, or no close marked)".into()),
        }
        out.push(String::new());
        let [sent, filled, rejected, cancelled] = self.orders;
        out.push("Trades".into());
        out.push(format!(
            "  orders           {sent} sent, {filled} filled, {rejected} rejected, {cancelled} cancelled"
        ));
        let mut by_symbol: BTreeMap<&str, (usize, Decimal, Decimal)> = BTreeMap::new();
        for f in &self.fills {
            let e = by_symbol.entry(&f.symbol).or_default();
            let signed_qty = if f.side == "sell" {
                -f.quantity
            } else {
                f.quantity
            };
            *e = (e.0 + 1, e.1 + signed_qty, e.2 + f.price * f.quantity);
        }
        for (symbol, (n, net, notional)) in &by_symbol {
            out.push(format!(
                "  {symbol:<16} {n} fill{}, net {}, traded {}",
                if *n == 1 { "" } else { "s" },
                signed(*net),
                notional.round_dp(2)
            ));
        }
        out.push(String::new());
        out.push("Fills and slippage (against the price each decision used)".into());
        let (cost, _, with_ref) = self.slippage();
        let commission: Decimal = self.fills.iter().map(|f| f.commission).sum();
        out.push(format!("  fills            {}", self.fills.len()));
        out.push(format!(
            "  slippage         {} ({} bps of notional, {with_ref} fill(s) with a reference)",
            cost.round_dp(2),
            self.slippage_bps()
                .map_or_else(|| "n/a".to_string(), |b| b.to_string())
        ));
        out.push(format!("  commission       {}", commission.round_dp(2)));
        let mut worst: Vec<&DayFill> = self
            .fills
            .iter()
            .filter(|f| f.reference.is_some())
            .collect();
        worst.sort_by_key(|f| std::cmp::Reverse(f.slippage()));
        for f in worst.iter().take(5) {
            out.push(format!(
                "  {} {} {} {} at {} (decided at {}): {}",
                f.at,
                f.side,
                f.quantity,
                f.symbol,
                f.price,
                f.reference.map_or_else(String::new, |r| r.to_string()),
                f.slippage().unwrap_or_default().round_dp(2)
            ));
        }
        out.push(String::new());
        out.push("Alerts".into());
        let [w, e, c] = self.levels;
        out.push(format!(
            "  {} fired; log lines: {c} CRITICAL, {e} ERROR, {w} WARN",
            self.alerts.len()
        ));
        for (severity, headline) in self.alerts.iter().take(10) {
            out.push(format!("  [{severity}] {headline}"));
        }
        if self.alerts.len() > 10 {
            out.push(format!("  … and {} more", self.alerts.len() - 10));
        }
        out.push(String::new());
        out.push("Checks".into());
        for c in &self.checks {
            out.push(format!(
                "  {:<16} {:<4} {}",
                c.name,
                c.status.as_str(),
                c.reason
            ));
        }
        out.push(String::new());
        out.join("\n")
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let (cost, notional, with_ref) = self.slippage();
        json!({
            "session": self.session,
            "at": self.at,
            "headline": self.headline(),
            "close": self.close.as_ref().map(|(equity, cash, positions, pnl)| json!({
                "equity": equity, "cash": cash, "positions": positions, "pnl_since_start": pnl,
            })),
            "day_pnl": self.day_pnl,
            "max_drawdown": self.max_drawdown,
            "curve": self.curve.iter().map(|(t, e)| json!([t, e])).collect::<Vec<_>>(),
            "orders": {
                "sent": self.orders[0], "filled": self.orders[1],
                "rejected": self.orders[2], "cancelled": self.orders[3],
            },
            "slippage": {
                "cost": cost, "notional": notional, "bps": self.slippage_bps(),
                "fills_with_reference": with_ref,
            },
            "fills": self.fills.iter().map(|f| json!({
                "at": f.at, "symbol": f.symbol, "side": f.side, "quantity": f.quantity,
                "price": f.price, "reference": f.reference, "commission": f.commission,
                "slippage": f.slippage(),
            })).collect::<Vec<_>>(),
            "alerts": self.alerts.iter().map(|(s, h)| json!({"severity": s, "headline": h})).collect::<Vec<_>>(),
            "log_levels": {"warn": self.levels[0], "error": self.levels[1], "critical": self.levels[2]},
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name, "status": c.status.as_str(), "reason": c.reason,
            })).collect::<Vec<_>>(),
        })
    }

    /// Writes `day-YYYY-MM-DD.txt`, `.json` and (with a curve) `.png` into `dir`, each
    /// through a temporary file renamed into place.
    ///
    /// # Errors
    /// Names the file that could not be written, or why the chart could not be drawn.
    pub fn write(&self, dir: &Path) -> Result<WrittenReport, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let base = dir.join(format!("day-{}", self.session));
        let put = |ext: &str, bytes: &[u8]| -> Result<PathBuf, String> {
            let path = base.with_extension(ext);
            let tmp = base.with_extension(format!("{ext}.tmp"));
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(path)
        };
        let chart = if self.curve.is_empty() {
            None
        } else {
            Some(put("png", &chart::draw(self)?)?)
        };
        let json = serde_json::to_string_pretty(&self.to_json())
            .map_err(|e| format!("cannot render the report as JSON: {e}"))?;
        Ok(WrittenReport {
            headline: self.headline(),
            json: put("json", (json + "\n").as_bytes())?,
            text: put("txt", self.to_text().as_bytes())?,
            chart,
        })
    }
}

/// `+1234.50` or `-12`.
fn signed(d: Decimal) -> String {
    if d.is_sign_negative() && !d.is_zero() {
        d.to_string()
    } else {
        format!("+{d}")
    }
}

#[cfg(test)]
mod tests;
