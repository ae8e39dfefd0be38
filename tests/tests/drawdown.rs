//! The drawdown control line in a real session on real data, replayed at full speed in
//! 1024-bar batches: the line is acted on at the bar that crosses it, no position grows
//! afterwards, the book is cut in steps, the Critical event carries the figures, and a
//! person is paged without a halt (which would stop the deleveraging).

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use vigil_config::{Comparison, RuleConfig, VigilConfig};
use vigil_core::{Level, TradingState};
use vigil_session::{SessionOptions, run};
use vigil_tests::{config_for, events, read_log, repo_data};

fn dec(v: &Value) -> Decimal {
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
    Decimal::from_str(&text).unwrap_or_else(|e| panic!("{v} is not a decimal: {e}"))
}

fn ts(v: &Value) -> &str {
    v["timestamp"].as_str().expect("timestamp")
}

fn off(name: &str) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        metric: "trade_exposure_ratio".into(),
        op: Comparison::Above,
        value: 1.0,
        for_s: 0,
        level: Level::Warn,
        enabled: false,
    }
}

/// All in on every signal, with a 5% control line. The rules that would halt such a book
/// first (a trade above 10% of equity, a weekly drawdown past 5%) are off: these tests are
/// about the control line alone.
fn all_in(data: &std::path::Path, symbol: &str, dir: &std::path::Path) -> VigilConfig {
    let mut cfg = config_for(data, symbol, dir);
    cfg.risk.position_pct = Decimal::ONE;
    cfg.risk.max_position_pct = Decimal::ONE;
    cfg.risk.regime_size_factor.volatile = Decimal::ONE;
    cfg.risk.drawdown_control.line_pct = Decimal::new(5, 2);
    cfg.monitor.rules = [
        "trade_size_high",
        "weekly_drawdown_high",
        "daily_drawdown_high",
    ]
    .into_iter()
    .map(off)
    .collect();
    cfg
}

#[test]
fn crossing_the_drawdown_line_stops_new_positions_and_cuts_the_book_at_that_bar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = repo_data("GOOG_1d.csv");
    // The EMA cross on GOOG falls 5% from a peak soon enough.
    let mut cfg = all_in(&data, "GOOG", dir.path());
    cfg.risk.drawdown_control.step_pct = Decimal::new(5, 1);

    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    assert_eq!(outcome.summary.trading_state, TradingState::ReduceOnly);
    let log = read_log(&outcome.log_dir);

    let engaged = events(&log, "drawdown_control_engaged");
    assert_eq!(engaged.len(), 1, "engaged once, never re-armed");
    let e = engaged[0];
    assert_eq!(e["level"], "CRITICAL");
    let d = &e["data"];
    let (equity, peak, drawdown) = (
        dec(&d["equity"]),
        dec(&d["peak_equity"]),
        dec(&d["drawdown"]),
    );
    assert_eq!(dec(&d["line"]), Decimal::new(5, 2));
    assert!(drawdown > Decimal::new(5, 2), "beyond the line: {drawdown}");
    assert_eq!(drawdown, ((peak - equity) / peak).round_dp(6));
    // Daily bars: the bar that crosses the line lost money since yesterday's close (the
    // bar before was not beyond the line).
    assert!(dec(&d["day_pnl"]) < Decimal::ZERO, "{d}");
    let actions = d["actions"].as_str().expect("actions");
    assert!(actions.contains("active -> reduce_only"), "{actions}");
    assert!(actions.contains("deleverage step 1 of 2"), "{actions}");
    let at = ts(e);

    // Reduce-only from that bar, by the control line.
    let changed = events(&log, "trading_state_changed");
    let by_line: Vec<_> = changed
        .iter()
        .filter(|v| v["data"]["actor"] == "drawdown_control")
        .collect();
    assert_eq!(by_line.len(), 1);
    assert_eq!(by_line[0]["data"]["to"], "reduce_only");
    assert_eq!(ts(by_line[0]), at);

    // The first step's order goes out at the crossing bar and fills at the very next bar,
    // although the bar was in the middle of a 1024-bar batch.
    let submitted = events(&log, "order_submitted");
    let step_order = submitted
        .iter()
        .find(|v| {
            v["trace_id"]
                .as_str()
                .is_some_and(|t| t.contains("deleverage_GOOG"))
        })
        .expect("a deleveraging order");
    assert_eq!(ts(step_order), at);
    let csv = std::fs::read_to_string(&data).expect("csv");
    let days: Vec<&str> = csv.lines().skip(1).map(|l| &l[..10]).collect();
    let i = days
        .iter()
        .position(|d| at.starts_with(d))
        .expect("the crossing bar is a day of the data");
    let fills = events(&log, "fill_received");
    let step_fill = fills
        .iter()
        .find(|v| v["trace_id"] == step_order["trace_id"])
        .expect("the step's fill");
    assert!(
        ts(step_fill).starts_with(days[i + 1]),
        "filled {} rather than at the next bar {}",
        ts(step_fill),
        days[i + 1]
    );

    // Further steps come a day or more apart, and the second empties the book.
    let steps = events(&log, "deleverage_step");
    let mut last = days[i];
    for (n, step) in steps.iter().enumerate() {
        assert_eq!(step["data"]["step"], n as u64 + 2);
        assert!(
            &ts(step)[..10] > last,
            "{} is not a day after {last}",
            ts(step)
        );
        last = &ts(step)[..10];
    }

    // No fill after the crossing makes a position larger.
    let mut position: HashMap<String, Decimal> = HashMap::new();
    let mut after = 0;
    for f in &fills {
        let sym = f["data"]["symbol"].as_str().expect("symbol").to_string();
        let qty = dec(&f["data"]["quantity"]);
        let signed = if f["data"]["side"] == "BUY" {
            qty
        } else {
            -qty
        };
        let held = position.entry(sym).or_default();
        let before = *held;
        *held += signed;
        if ts(f) > at {
            after += 1;
            assert!(
                held.abs() <= before.abs()
                    && (held.is_zero() || held.is_sign_positive() == before.is_sign_positive()),
                "a fill at {} took the position from {before} to {held}",
                ts(f)
            );
        }
    }
    assert!(after >= 1, "the step filled after the crossing");

    // Paged (High), not halted: a halt would stop the deleveraging.
    let firing: Vec<_> = events(&log, "alert_firing")
        .into_iter()
        .filter(|v| v["data"]["rule"] == "drawdown_control_engaged")
        .collect();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0]["level"], "ERROR");
    assert!(events(&log, "breaker_tripped").is_empty());
}

/// Daily bars rising 1% a day for 60 days, then falling 4% a day for the last 6.
fn rise_then_fall(dir: &std::path::Path) -> std::path::PathBuf {
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
    let mut price = Decimal::ONE_HUNDRED;
    for i in 0..66 {
        let open = price;
        let pct = if i < 60 {
            Decimal::new(101, 2)
        } else {
            Decimal::new(96, 2)
        };
        price = (price * pct).round_dp(2);
        csv.push_str(&format!(
            "{day},{open},{},{},{price},1000000\n",
            open.max(price) + Decimal::ONE,
            open.min(price) - Decimal::ONE
        ));
        day = day.succ_opt().expect("next day");
    }
    let file = dir.join("FALL_1d.csv");
    std::fs::write(&file, csv).expect("write bars");
    file
}

#[test]
fn a_crossing_in_the_last_bars_is_still_acted_on_after_the_input_has_ended() {
    // The Risk agent reaches the end of this short input long before the Execution agent
    // has marked the fall: it must still answer the drawdown report.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = rise_then_fall(dir.path());
    let cfg = all_in(&data, "FALL", dir.path());

    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    let log = read_log(&outcome.log_dir);
    assert!(
        events(&log, "agent_failed").is_empty(),
        "{:?}",
        events(&log, "agent_failed")
    );
    let engaged = events(&log, "drawdown_control_engaged");
    assert_eq!(engaged.len(), 1);
    // 4% a day from the peak: beyond 5% on the second day of the fall.
    assert!(
        ts(engaged[0]).starts_with("2024-03-03"),
        "{}",
        ts(engaged[0])
    );
    assert_eq!(outcome.summary.trading_state, TradingState::ReduceOnly);
    let deleverage = events(&log, "fill_received")
        .into_iter()
        .filter(|f| {
            f["trace_id"]
                .as_str()
                .is_some_and(|t| t.contains("deleverage_FALL"))
        })
        .count();
    assert!(
        deleverage >= 2,
        "steps filled before the data ended: {deleverage}"
    );
    // Risk stops last, after the Execution agent.
    let stops: Vec<&str> = events(&log, "agent_stopped")
        .iter()
        .map(|v| v["service"].as_str().expect("service"))
        .collect();
    assert_eq!(stops.last(), Some(&"risk_agent"));
}
