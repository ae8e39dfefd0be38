//! The real six-agent pipeline on real data, checked against an independent computation.

use std::collections::HashSet;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use vigil_config::{FillModelConfig, Sizing};
use vigil_core::TradingState;
use vigil_session::{SessionOptions, run};
use vigil_tests::{config_for, events, read_log, repo_data};

/// One expected order of the EMA cross, computed here without any vigil code.
#[derive(Debug, PartialEq)]
struct Expected {
    ts: String,
    side: &'static str,
    quantity: Decimal,
    price: Decimal,
}

/// The EMA cross from the issue, written independently: alpha = 2/(n+1), seeded with the
/// first close; long when fast > slow, short when fast < slow; no signal during warm-up;
/// a fixed target of ±qty; each change of target is one order of (target - position).
fn expected_orders(
    csv: &str,
    fast: usize,
    slow: usize,
    warmup: usize,
    qty: Decimal,
) -> Vec<Expected> {
    let (af, as_) = (2.0 / (fast as f64 + 1.0), 2.0 / (slow as f64 + 1.0));
    let (mut ef, mut es) = (None::<f64>, None::<f64>);
    let mut last: Option<i32> = None;
    let mut pos = Decimal::ZERO;
    let mut out = Vec::new();
    for (n, line) in csv.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let close_txt = f[4];
        let close: f64 = close_txt.parse().expect("close");
        let f_new = ef.map_or(close, |p| af * close + (1.0 - af) * p);
        let s_new = es.map_or(close, |p| as_ * close + (1.0 - as_) * p);
        ef = Some(f_new);
        es = Some(s_new);
        let target = if f_new > s_new {
            1
        } else if f_new < s_new {
            -1
        } else {
            continue;
        };
        if n < warmup || last == Some(target) {
            continue;
        }
        last = Some(target);
        let goal = Decimal::from(target) * qty;
        let delta = goal - pos;
        pos = goal;
        let ts = if f[0].len() == 10 {
            format!("{}T00:00:00.000Z", f[0])
        } else {
            f[0].replace('Z', ".000Z")
        };
        out.push(Expected {
            ts,
            side: if delta > Decimal::ZERO { "BUY" } else { "SELL" },
            quantity: delta.abs(),
            price: Decimal::from_str(close_txt).expect("price"),
        });
    }
    out
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(&v.to_string()).unwrap_or_else(|e| panic!("{v} is not a decimal: {e}"))
}

#[test]
fn parity_run_matches_an_independent_ema_cross_on_real_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = repo_data("GOOG_1d.csv");
    let mut cfg = config_for(&data, "GOOG", dir.path());
    // Parity by configuration alone.
    cfg.execution.fill_model = FillModelConfig::SignalBarClose;
    cfg.execution.slippage_bps = Decimal::ZERO;
    cfg.execution.commission_bps = Decimal::ZERO;
    cfg.risk.sizing = Sizing::FixedQuantity;
    cfg.risk.fixed_quantity = Decimal::from(10);
    cfg.risk.max_position_pct = Decimal::ONE;
    cfg.risk.max_gross_exposure_pct = Decimal::TEN;
    cfg.risk.regime_size_factor.volatile = Decimal::ONE;
    cfg.data.batch_size = 100; // many batch boundaries, cut by signals too

    let outcome = run(SessionOptions::new(cfg.clone())).expect("session runs");
    let s = &outcome.summary;
    assert_eq!(s.error, None);
    assert_eq!(s.bars, 2148);

    let csv = std::fs::read_to_string(&data).expect("csv");
    let expected = expected_orders(
        &csv,
        cfg.signal.fast_span,
        cfg.signal.slow_span,
        cfg.signal.warmup(),
        Decimal::from(10),
    );
    assert!(expected.len() > 20, "the data should cross many times");

    let log = read_log(&outcome.log_dir);
    let orders: Vec<Expected> = events(&log, "order_submitted")
        .iter()
        .map(|v| Expected {
            ts: v["timestamp"].as_str().expect("ts").to_string(),
            side: if v["data"]["side"] == "BUY" {
                "BUY"
            } else {
                "SELL"
            },
            quantity: dec(&v["data"]["quantity"]),
            price: dec(&v["data"]["price"]),
        })
        .collect();
    assert_eq!(orders.len(), expected.len());
    for (i, (got, want)) in orders.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "order #{i}");
    }
    // Parity fills: at the signal bar's close, full quantity, no cost.
    let fills = events(&log, "fill_received");
    assert_eq!(fills.len(), expected.len());
    for (f, want) in fills.iter().zip(&expected) {
        assert_eq!(dec(&f["data"]["price"]), want.price);
        assert_eq!(dec(&f["data"]["quantity"]), want.quantity);
        assert_eq!(dec(&f["data"]["commission"]), Decimal::ZERO);
    }
    assert_eq!(s.orders as usize, expected.len());
    assert_eq!(s.fills as usize, expected.len());
    assert_eq!(s.risk_rejected, 0);
    assert_eq!(s.trading_state, TradingState::Active);
    // Closed-form P&L of the parity run: Σ -signed qty × price, plus the final position at
    // the last close.
    let last_close = Decimal::from_str(
        csv.lines()
            .last()
            .expect("row")
            .split(',')
            .nth(4)
            .expect("close"),
    )
    .expect("dec");
    let mut cash = Decimal::ZERO;
    let mut pos = Decimal::ZERO;
    for e in &expected {
        let signed = if e.side == "BUY" {
            e.quantity
        } else {
            -e.quantity
        };
        cash -= signed * e.price;
        pos += signed;
    }
    assert_eq!(s.pnl(), cash + pos * last_close);
}

#[test]
fn every_order_ack_and_fill_line_carries_a_signal_trace_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&repo_data("EURUSD_1h.csv"), "EURUSD", dir.path());
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    assert_eq!(outcome.summary.bars, 5000);
    let log = read_log(&outcome.log_dir);
    let signal_traces: HashSet<&str> = events(&log, "signal_generated")
        .iter()
        .map(|v| v["trace_id"].as_str().expect("signal has a trace id"))
        .collect();
    assert!(!signal_traces.is_empty());
    let mut checked = 0;
    for name in [
        "risk_approved",
        "risk_rejected",
        "order_submitted",
        "order_accepted",
        "fill_received",
        "order_filled",
    ] {
        for line in events(&log, name) {
            let t = line["trace_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} without trace id: {line}"));
            assert!(
                signal_traces.contains(t),
                "{name} trace {t} has no signal line"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 4 * signal_traces.len() / 2,
        "checked {checked} lines"
    );
    // Every signal line carries the decision context.
    for line in events(&log, "signal_generated") {
        assert!(line["context"]["signal_id"].is_string());
        assert!(line["context"]["regime"].is_string());
        assert_eq!(line["context"]["model_version"], "ema_cross@1");
    }
    // Sequence numbers are gap-free.
    for (i, line) in log.iter().enumerate() {
        assert_eq!(line["seq"].as_u64(), Some(i as u64));
    }
}

#[test]
fn default_paper_session_runs_to_the_end_and_the_books_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = vigil_config::VigilConfig::embedded_default();
    cfg.log.dir = dir.path().to_path_buf();
    cfg.store.path = dir.path().join("state.db");
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    let s = &outcome.summary;
    assert_eq!(s.error, None);
    assert_eq!(s.stop_reason, "end_of_data");
    assert_eq!(s.bars, 2148);
    assert!(s.signals > 20, "{s:?}");
    assert!(s.orders > 20);
    assert!(
        s.fills >= s.orders - 1,
        "market orders fill on the next bar"
    );
    assert!(s.commissions > Decimal::ZERO);
    assert!(s.max_drawdown > Decimal::ZERO && s.max_drawdown < Decimal::ONE);
    // Equity = cash + positions at the last close.
    let csv = std::fs::read_to_string(repo_data("GOOG_1d.csv")).expect("csv");
    let last_close = Decimal::from_str(
        csv.lines()
            .last()
            .expect("row")
            .split(',')
            .nth(4)
            .expect("close"),
    )
    .expect("dec");
    let held: Decimal = s.positions.iter().map(|(_, q)| *q).sum();
    assert_eq!(s.final_equity, s.final_cash + held * last_close);
    let log = read_log(&outcome.log_dir);
    // The last line but the alerting's own, which the Monitor may still write as it ends,
    // and the libraries' (the control server's start may reach the log that late in so
    // short a session): the log is closed after them, so they are kept.
    let last = log
        .iter()
        .rev()
        .find(|v| {
            !v["event"].as_str().is_some_and(|e| e.starts_with("alert_"))
                && v["service"] != "library"
        })
        .expect("lines");
    assert_eq!(last["event"], "session_stopped");
    // Agents stop in pipeline order, but Risk last: it answers the Execution agent's
    // drawdown reports until the Execution agent has finished.
    let stops: Vec<&str> = events(&log, "agent_stopped")
        .iter()
        .map(|v| v["service"].as_str().expect("service"))
        .collect();
    assert_eq!(
        stops,
        [
            "data_agent",
            "regime_agent",
            "signal_agent",
            "execution_agent",
            "risk_agent"
        ]
    );
}

#[test]
fn a_malformed_row_stops_the_session_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("bad.csv");
    let mut text = String::from("Date,Open,High,Low,Close,Volume\n");
    for d in 1..=40 {
        text.push_str(&format!("2024-01-{:02},10,11,9,10.5,100\n", (d % 28) + 1));
    }
    // Rows above are out of order after day 28; keep the first 20 good, then break close.
    let mut lines: Vec<String> = text.lines().take(21).map(String::from).collect();
    lines.push("2024-02-01,10,11,9,abc,100".into());
    lines.push("2024-02-02,10,11,9,10,100".into());
    std::fs::write(&data, lines.join("\n")).expect("write");
    let cfg = config_for(&data, "BAD", &dir.path().join("logs"));
    let outcome = run(SessionOptions::new(cfg)).expect("session starts");
    let err = outcome
        .summary
        .error
        .clone()
        .expect("the session must fail");
    let want = format!(
        "{}:22: column 'Close': cannot parse \"abc\" as a decimal",
        data.display()
    );
    assert!(err.contains(&want), "{err}");
    assert_eq!(outcome.summary.stop_reason, "failed");
    assert_eq!(
        outcome.summary.bars, 20,
        "every good row before the bad one is used"
    );
    let log = read_log(&outcome.log_dir);
    let parse = events(&log, "data_parse_failed");
    assert_eq!(parse.len(), 1);
    assert_eq!(parse[0]["level"], "ERROR");
    assert!(
        parse[0]["data"]["error"]
            .as_str()
            .expect("error")
            .contains(&want)
    );
    let trip = events(&log, "breaker_tripped");
    assert_eq!(trip.len(), 1, "a fatal data fault trips the breaker");
    assert_eq!(trip[0]["level"], "CRITICAL");
    assert_eq!(outcome.summary.trading_state, TradingState::Halted);
}

/// Drives a paced session on a simulated wall clock: each `step` lets one hourly bar through.
#[test]
fn monitor_commands_pause_signals_and_the_breaker_halts_orders() {
    use std::sync::Arc;
    use vigil_core::{SimClock, Timestamp};
    use vigil_session::{Action, Command, CommandTarget, run_with};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("EURUSD_1h.csv"), "EURUSD", dir.path());
    cfg.data.speed = vigil_config::Speed::Factor(3600.0); // one hourly bar per wall second
    let wall = SimClock::starting_at(Timestamp::from_timestamp(1_800_000_000, 0).expect("ts"));
    let opts = SessionOptions {
        supervision_clock: Arc::new(wall.clone()),
        ..SessionOptions::new(cfg)
    };
    let outcome = run_with(opts, move |ctl| async move {
        let step = |n: usize| vigil_tests::step_wall(&wall, n);
        let who = || "test".to_string();
        step(300).await;
        ctl.command(Command::new(
            Action::Pause(CommandTarget::Agent(vigil_core::AgentId::Signal)),
            who(),
            "test pause",
        ))
        .await
        .expect("pause accepted");
        step(800).await;
        ctl.command(Command::new(
            Action::Resume(CommandTarget::All),
            who(),
            "test resume",
        ))
        .await
        .expect("resume accepted");
        step(800).await;
        ctl.command(Command::new(Action::TripBreaker, who(), "test trip"))
            .await
            .expect("trip accepted");
        step(800).await;
        ctl.command(Command::new(Action::ResetBreaker, who(), "test reset"))
            .await
            .expect("reset accepted");
        let refused = ctl
            .command(Command::new(
                Action::Pause(CommandTarget::Agent(vigil_core::AgentId::Data)),
                who(),
                "x",
            ))
            .await;
        assert!(
            refused
                .expect_err("data cannot pause")
                .to_string()
                .contains("cannot be paused")
        );
        // Let the rest of the file through.
        wall.advance_by(chrono::Duration::days(3650));
    })
    .expect("session runs");
    let s = &outcome.summary;
    assert_eq!(s.error, None);
    assert_eq!(s.bars, 5000);
    assert!(
        s.signals_suppressed > 0,
        "signals were held while paused: {s:?}"
    );
    let log = read_log(&outcome.log_dir);
    let pos = |name: &str| {
        log.iter()
            .position(|v| v["event"] == name)
            .unwrap_or_else(|| panic!("no {name} line"))
    };
    let (paused, resumed) = (pos("agent_paused"), pos("agent_resumed"));
    let (tripped, reset) = (pos("breaker_tripped"), pos("breaker_reset"));
    assert!(paused < resumed && resumed < tripped && tripped < reset);
    let between =
        |a: usize, b: usize, name: &str| log[a..b].iter().filter(|v| v["event"] == name).count();
    assert_eq!(
        between(paused, resumed, "signal_generated"),
        0,
        "no signal while paused"
    );
    assert!(between(paused, resumed, "signal_suppressed") > 0);
    assert!(
        between(resumed, tripped, "signal_generated") > 0,
        "signals again after resume"
    );
    assert_eq!(
        between(tripped, reset, "order_submitted"),
        0,
        "no order while halted"
    );
    let halted_rejects = log[tripped..reset]
        .iter()
        .filter(|v| v["event"] == "risk_rejected")
        .filter(|v| {
            v["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("halted"))
        })
        .count();
    assert!(halted_rejects > 0, "risk rejected signals while halted");
    assert!(
        between(reset, log.len(), "order_submitted") > 0,
        "trading resumed after reset"
    );
    assert_eq!(log[tripped]["data"]["actor"], "test");
    assert_eq!(log[tripped]["data"]["reason"], "test trip");
}

/// `[signal] model = "models/goog_mlp"`: the ONNX network trades through the real
/// pipeline, and its name and version are on every signal, order and fill line.
#[test]
fn an_onnx_model_trades_with_its_version_on_every_signal_order_and_fill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("GOOG_1d.csv"), "GOOG", dir.path());
    cfg.signal.model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/goog_mlp")
        .display()
        .to_string();
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    assert!(outcome.summary.fills > 100, "{}", outcome.summary.fills);
    let log = read_log(&outcome.log_dir);
    let start = events(&log, "agent_started")
        .into_iter()
        .find(|l| l["service"] == "signal_agent")
        .expect("the signal agent's start line");
    assert_eq!(start["data"]["model"], "goog_mlp@1.0.0");
    for event in ["signal_generated", "order_submitted", "fill_received"] {
        let lines = events(&log, event);
        assert!(lines.len() > 100, "{event}: {}", lines.len());
        for line in lines {
            assert_eq!(line["context"]["model_version"], "goog_mlp@1.0.0", "{line}");
        }
    }
}

/// A model directory that does not validate stops the session before anything starts,
/// naming the file.
#[test]
fn a_bad_model_directory_is_refused_before_the_session_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("GOOG_1d.csv"), "GOOG", dir.path());
    cfg.signal.model = dir.path().join("no_such_model").display().to_string();
    let err = run(SessionOptions::new(cfg)).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.starts_with("model: ") && text.contains("no_such_model/model.toml"),
        "{text}"
    );
    // Nothing was written: no log line, no store.
    assert!(!dir.path().join("state.db").exists());
}
