//! Printing a session's outcome.

use rust_decimal::Decimal;
use vigil_session::SessionOutcome;

fn pct(d: Decimal) -> String {
    format!("{:.2}%", d * Decimal::ONE_HUNDRED)
}

fn ts(t: Option<vigil_core::Timestamp>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// The bars line: those used, and every one rejected on the way, by vigil's validation or
/// by the feed's parser (a bad message is a bar lost just as well).
fn bars(s: &vigil_session::SessionSummary) -> String {
    let rejected = s.bars_rejected + s.messages_rejected;
    if s.messages_rejected == 0 {
        format!("{} ({rejected} rejected)", s.bars)
    } else {
        format!(
            "{} ({rejected} rejected: {} bar(s) by validation, {} feed message(s) by the parser)",
            s.bars, s.bars_rejected, s.messages_rejected
        )
    }
}

/// The decision latency line: from a bar's arrival to the venue's answer.
fn latency(l: &vigil_session::LatencySummary) -> String {
    let us = |s: f64| format!("{:.0} µs", s * 1e6);
    format!(
        "p50 {}, p99 {}, max {} from a bar's arrival to the venue's answer ({} orders)",
        us(l.p50),
        us(l.p99),
        us(l.max),
        l.count
    )
}

/// Prints the summary for a person.
pub(crate) fn print_text(o: &SessionOutcome) {
    let s = &o.summary;
    let pnl = s.pnl();
    let ret = if s.initial_cash.is_zero() {
        Decimal::ZERO
    } else {
        pnl / s.initial_cash
    };
    println!("vigil session summary: {}", s.name);
    println!("  stopped         {}", s.stop_reason);
    if let Some(e) = &s.error {
        println!("  error           {e}");
    }
    println!("  data            {}", s.source);
    println!(
        "  period          {} .. {}",
        ts(s.first_bar),
        ts(s.last_bar)
    );
    println!("  bars            {}", bars(s));
    println!("  regime changes  {}", s.regime_changes);
    println!(
        "  signals         {} ({} held while paused)",
        s.signals, s.signals_suppressed
    );
    println!(
        "  risk            {} approved, {} rejected, state {}",
        s.risk_approved, s.risk_rejected, s.trading_state
    );
    println!(
        "  orders          {} ({} filled, {} rejected by venue, {} cancelled)",
        s.orders, s.orders_filled, s.venue_rejects, s.orders_cancelled
    );
    println!("  fills           {}", s.fills);
    println!("  commissions     {:.2}", s.commissions);
    println!("  final equity    {:.2}", s.final_equity);
    println!("  P&L             {:+.2} ({})", pnl, pct(ret));
    println!("  max drawdown    {}", pct(s.max_drawdown));
    if s.positions.is_empty() {
        println!("  positions       flat");
    } else {
        let p: Vec<String> = s
            .positions
            .iter()
            .map(|(sym, q)| format!("{sym} {q}"))
            .collect();
        println!("  positions       {}", p.join(", "));
    }
    if let Some(l) = &s.decision_latency {
        println!("  decision        {}", latency(l));
    }
    println!(
        "  wall time       {:.3} s ({:.0} bars/s)",
        o.wall_seconds,
        o.bars_per_second()
    );
    println!(
        "  log             {} ({} lines)",
        o.log_file.display(),
        o.log_lines
    );
}

/// Prints the summary as one JSON object (money as strings: exact).
pub(crate) fn print_json(o: &SessionOutcome) -> anyhow::Result<()> {
    let s = &o.summary;
    let v = serde_json::json!({
        "session": s.name,
        "stop_reason": s.stop_reason,
        "error": s.error,
        "source": s.source,
        "first_bar": s.first_bar.map(|t| t.to_rfc3339()),
        "last_bar": s.last_bar.map(|t| t.to_rfc3339()),
        "bars": s.bars,
        "bars_rejected": s.bars_rejected,
        "messages_rejected": s.messages_rejected,
        "regime_changes": s.regime_changes,
        "signals": s.signals,
        "signals_suppressed": s.signals_suppressed,
        "risk_approved": s.risk_approved,
        "risk_rejected": s.risk_rejected,
        "orders": s.orders,
        "orders_filled": s.orders_filled,
        "venue_rejects": s.venue_rejects,
        "orders_cancelled": s.orders_cancelled,
        "fills": s.fills,
        "initial_cash": s.initial_cash.to_string(),
        "final_equity": s.final_equity.to_string(),
        "final_cash": s.final_cash.to_string(),
        "pnl": s.pnl().to_string(),
        "commissions": s.commissions.to_string(),
        "max_drawdown": s.max_drawdown.to_string(),
        "trading_state": s.trading_state.as_str(),
        "positions": s.positions.iter().map(|(k, q)| serde_json::json!({"symbol": k, "quantity": q.to_string()})).collect::<Vec<_>>(),
        "decision_latency": s.decision_latency.map(|l| serde_json::json!({
            "count": l.count,
            "p50_us": l.p50 * 1e6,
            "p90_us": l.p90 * 1e6,
            "p99_us": l.p99 * 1e6,
            "p999_us": l.p999 * 1e6,
            "max_us": l.max * 1e6,
        })),
        "wall_seconds": o.wall_seconds,
        "bars_per_second": o.bars_per_second(),
        "log_file": o.log_file.display().to_string(),
        "log_lines": o.log_lines,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bars_line_counts_what_the_feed_s_parser_rejected_too() {
        let mut s = vigil_session::SessionSummary {
            bars: 120,
            bars_rejected: 2,
            ..Default::default()
        };
        assert_eq!(bars(&s), "120 (2 rejected)");
        s.messages_rejected = 3;
        assert_eq!(
            bars(&s),
            "120 (5 rejected: 2 bar(s) by validation, 3 feed message(s) by the parser)"
        );
    }
}
