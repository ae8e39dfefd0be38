use rust_decimal_macros::dec;
use serde_json::{Value, json};
use vigil_testkit::timestamp as t;

use super::*;

fn line(ts: &str, level: &str, event: &str, data: Value) -> Value {
    json!({ "timestamp": ts, "level": level, "event": event, "data": data })
}

fn session() -> NaiveDate {
    "2024-01-16".parse().expect("date")
}

/// Yesterday's close, an order sent yesterday and filled today, two of today's orders (a
/// buy filled above its decision's price, a sell filled below), an alert, the close.
fn lines() -> Vec<Value> {
    vec![
        line(
            "2024-01-12T21:00:00Z",
            "INFO",
            "positions_snapshot",
            json!({"positions": "", "cash": "100000", "equity": "100000", "pnl": "0"}),
        ),
        line(
            "2024-01-12T20:59:00Z",
            "INFO",
            "order_submitted",
            json!({"order_id": "o-0", "price": "50", "symbol": "MSFT", "side": "buy"}),
        ),
        line(
            "2024-01-16T14:31:00Z",
            "INFO",
            "fill_received",
            json!({"order_id": "o-0", "symbol": "MSFT", "side": "buy", "quantity": "10", "price": "50.10", "commission": "0"}),
        ),
        line(
            "2024-01-16T14:35:00Z",
            "INFO",
            "order_submitted",
            json!({"order_id": "o-1", "price": "100", "symbol": "AAPL", "side": "buy"}),
        ),
        line(
            "2024-01-16T14:36:00Z",
            "INFO",
            "fill_received",
            json!({"order_id": "o-1", "symbol": "AAPL", "side": "buy", "quantity": "100", "price": "100.05", "commission": "1"}),
        ),
        line(
            "2024-01-16T14:36:00Z",
            "INFO",
            "order_filled",
            json!({"order_id": "o-1"}),
        ),
        line(
            "2024-01-16T15:00:00Z",
            "INFO",
            "order_submitted",
            json!({"order_id": "o-2", "price": "101", "symbol": "AAPL", "side": "sell"}),
        ),
        line(
            "2024-01-16T15:01:00Z",
            "INFO",
            "fill_received",
            json!({"order_id": "o-2", "symbol": "AAPL", "side": "sell", "quantity": "40", "price": "100.90", "commission": "0.5"}),
        ),
        // An unknown order's fill has no price: not a fill of the report's.
        line(
            "2024-01-16T15:02:00Z",
            "ERROR",
            "fill_received",
            json!({"order_id": "x", "error": "unknown"}),
        ),
        line(
            "2024-01-16T16:00:00Z",
            "ERROR",
            "alert_firing",
            json!({"severity": "HIGH", "headline": "AAPL quarantined"}),
        ),
        line(
            "2024-01-16T21:00:00Z",
            "INFO",
            "positions_snapshot",
            json!({"positions": "AAPL=60,MSFT=10", "cash": "94000.5", "equity": "100120.25", "pnl": "120.25"}),
        ),
        line(
            "2024-01-16T21:00:00Z",
            "INFO",
            "equity_curve",
            json!({"session": "2024-01-16", "points": "09:31=100000,09:36=99900,10:00=100150.5,16:00=100120.25", "max_drawdown": 0.0012, "bars": 4}),
        ),
    ]
}

fn checks() -> Vec<CheckResult> {
    vec![CheckResult {
        name: "log_chain",
        status: CheckStatus::Pass,
        reason: "verified".into(),
    }]
}

#[test]
fn the_day_is_read_from_the_log_with_slippage_against_each_decision() {
    let r = DayReport::from_lines(session(), t("2024-01-16T21:05:00Z"), &lines(), checks());
    assert_eq!(
        r.close,
        Some((
            dec!(100120.25),
            dec!(94000.5),
            "AAPL=60,MSFT=10".into(),
            dec!(120.25)
        ))
    );
    assert_eq!(r.day_pnl, Some(dec!(120.25)));
    assert_eq!(r.orders, [2, 1, 0, 0]);
    assert_eq!(r.fills.len(), 3);
    // Buy 10 at 50.10 against 50 (sent yesterday): 1.00; buy 100 at 100.05 against 100:
    // 5.00; sell 40 at 100.90 against 101: 4.00. Paid 10.00 on 10,540 of notional.
    assert_eq!(r.fills[0].slippage(), Some(dec!(1.00)));
    assert_eq!(r.fills[2].slippage(), Some(dec!(4.00)));
    assert_eq!(r.slippage(), (dec!(10.00), dec!(14540), 3));
    assert_eq!(r.slippage_bps(), Some(dec!(6.88)));
    assert_eq!(r.curve.len(), 4);
    assert_eq!(r.curve[2], ("10:00".into(), dec!(100150.5)));
    assert_eq!(r.max_drawdown, Some(0.0012));
    assert_eq!(r.alerts, vec![("HIGH".into(), "AAPL quarantined".into())]);
    assert_eq!(r.levels, [0, 2, 0]);
    assert_eq!(
        r.headline(),
        "P&L +120.25 today, 3 fills, max drawdown 0.12%, 1 alert"
    );
    let text = r.to_text();
    for want in [
        "Day report for the 2024-01-16 session",
        "  today            +120.25",
        "  orders           2 sent, 1 filled, 0 rejected, 0 cancelled",
        "  AAPL             2 fills, net +60",
        "  slippage         10.00 (6.88 bps of notional, 3 fill(s) with a reference)",
        "  commission       1.5",
        "  [HIGH] AAPL quarantined",
        "  log_chain        pass verified",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
}

#[test]
fn a_day_without_a_close_says_so_and_fails_nothing_it_cannot_know() {
    let r = DayReport::from_lines(session(), t("2024-01-16T21:05:00Z"), &lines()[..3], vec![]);
    assert_eq!(r.close, None);
    assert_eq!(r.day_pnl, None);
    assert!(r.curve.is_empty());
    assert_eq!(r.headline(), "no closing snapshot, 1 fill, 0 alerts");
    assert!(r.to_text().contains("no closing snapshot in the log"));
    assert!(r.to_text().contains("no equity curve for the day"));
}

#[test]
fn the_report_is_written_as_text_json_and_a_png_chart() {
    let dir = tempfile::tempdir().expect("dir");
    let r = DayReport::from_lines(session(), t("2024-01-16T21:05:00Z"), &lines(), checks());
    let written = r.write(dir.path()).expect("written");
    assert_eq!(written.text, dir.path().join("day-2024-01-16.txt"));
    assert_eq!(written.headline, r.headline());
    assert_eq!(
        std::fs::read_to_string(&written.text).expect("text"),
        r.to_text()
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(&written.json).expect("json")).expect("JSON");
    assert_eq!(json["slippage"]["cost"], "10.00");
    assert_eq!(json["fills"][1]["reference"], "100");
    assert_eq!(json["checks"][0]["status"], "pass");
    let png = std::fs::read(written.chart.as_ref().expect("a chart")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // 900 × 560 pixels, from the IHDR chunk.
    assert_eq!(&png[16..24], &[0, 0, 3, 0x84, 0, 0, 2, 0x30]);
    assert!(
        png.len() > 5_000,
        "a drawn picture, not an empty one: {} bytes",
        png.len()
    );
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn a_day_without_a_curve_has_no_chart() {
    let dir = tempfile::tempdir().expect("dir");
    let r = DayReport::from_lines(
        session(),
        t("2024-01-16T21:05:00Z"),
        &lines()[..11],
        checks(),
    );
    let written = r.write(dir.path()).expect("written");
    assert_eq!(written.chart, None);
    assert!(written.json.exists() && written.text.exists());
}
