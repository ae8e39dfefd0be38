//! The automated trading day through the real pipeline, in simulated time: Thanksgiving week
//! 2024 (Thursday closed, Friday closing at 13:00) in minute bars, run in about a second.

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate};
use vigil_calendar::Calendar;
use vigil_core::Timestamp;
use vigil_session::{SessionOptions, run};
use vigil_tests::{config_for, events, read_log};

/// Minute bars for every NYSE session from `from` to `to`, a seeded zig-zag walk that
/// makes the fast EMA cross the slow one often.
fn session_bars(from: NaiveDate, to: NaiveDate) -> String {
    let cal = Calendar::xnys();
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    let mut price: i64 = 10_000; // cents
    let mut state: u64 = 7;
    for s in cal.sessions(from, to).expect("sessions") {
        let mut t = s.open;
        while t < s.close {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let step = ((state >> 33) % 41) as i64 - 20; // -20..=20 cents
            let open = price;
            price = (price + step).max(1_000);
            let (hi, lo) = (open.max(price) + 3, open.min(price) - 3);
            writeln!(
                csv,
                "{},{}.{:02},{}.{:02},{}.{:02},{}.{:02},1000",
                t.format("%Y-%m-%dT%H:%M:%SZ"),
                open / 100,
                open % 100,
                hi / 100,
                hi % 100,
                lo / 100,
                lo % 100,
                price / 100,
                price % 100
            )
            .expect("write");
            t += Duration::minutes(1);
        }
    }
    csv
}

fn ts(v: &serde_json::Value) -> Timestamp {
    v["timestamp"]
        .as_str()
        .expect("ts")
        .parse()
        .expect("rfc3339")
}

#[test]
fn a_holiday_week_and_an_early_close_drive_the_phases_and_the_risk_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("thanksgiving_1m.csv");
    let from = NaiveDate::from_ymd_opt(2024, 11, 25).expect("date");
    let to = NaiveDate::from_ymd_opt(2024, 12, 2).expect("date");
    std::fs::write(&data, session_bars(from, to)).expect("write");
    let mut cfg = config_for(&data, "TEST", &dir.path().join("logs"));
    cfg.calendar.automation = true;
    cfg.checklist.dir = dir.path().join("reports");
    cfg.signal.fast_span = 3;
    cfg.signal.slow_span = 8;
    cfg.risk.regime_size_factor.volatile = rust_decimal::Decimal::ONE;
    let outcome = run(SessionOptions::new(cfg.clone())).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    // Mon–Wed 390 bars, Thursday none, Friday 210, Monday 390.
    assert_eq!(outcome.summary.bars, 3 * 390 + 210 + 390);
    let log = read_log(&outcome.log_dir);

    let phases: Vec<(String, String, Timestamp)> = events(&log, "phase_changed")
        .iter()
        .map(|v| {
            (
                v["data"]["session"].as_str().expect("session").to_string(),
                v["data"]["phase"].as_str().expect("phase").to_string(),
                ts(v),
            )
        })
        .collect();
    let find = |session: &str, phase: &str| {
        phases
            .iter()
            .find(|(s, p, _)| s == session && p == phase)
            .map(|(_, _, t)| t.to_rfc3339())
    };
    // Wednesday: a normal day, close-only at 15:50 ET (20:50 UTC).
    assert_eq!(
        find("2024-11-27", "close_only").as_deref(),
        Some("2024-11-27T20:50:00+00:00")
    );
    // Thanksgiving: no phase at all.
    assert!(
        phases.iter().all(|(s, _, _)| s != "2024-11-28"),
        "{phases:?}"
    );
    // Friday: early close at 13:00 ET; close-only 12:50, snapshot 13:00, stop 13:30.
    assert_eq!(
        find("2024-11-29", "close_only").as_deref(),
        Some("2024-11-29T17:50:00+00:00")
    );
    assert_eq!(
        find("2024-11-29", "final_snapshot").as_deref(),
        Some("2024-11-29T18:00:00+00:00")
    );
    assert_eq!(
        find("2024-11-29", "auto_stop").as_deref(),
        Some("2024-11-29T18:30:00+00:00")
    );
    // Monday after the long weekend opens at 09:30 ET (14:30 UTC).
    assert_eq!(
        find("2024-12-02", "trading_active").as_deref(),
        Some("2024-12-02T14:30:00+00:00")
    );

    // Risk follows the schedule.
    let changes: Vec<(String, Timestamp)> = events(&log, "trading_state_changed")
        .iter()
        .filter(|v| v["data"]["actor"] == "schedule")
        .map(|v| (v["data"]["to"].as_str().expect("to").to_string(), ts(v)))
        .collect();
    assert!(
        changes.contains(&(
            "close_only".into(),
            "2024-11-29T17:50:00Z".parse().expect("ts")
        )),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("open".into(), "2024-12-02T14:30:00Z".parse().expect("ts"))),
        "{changes:?}"
    );
    // In close-only, no approved order opens or grows a position; reductions may pass.
    let close_only = |t: Timestamp| {
        let local = t.with_timezone(&chrono_tz::America::New_York).time();
        let early = t.date_naive() == NaiveDate::from_ymd_opt(2024, 11, 29).expect("date");
        let start =
            chrono::NaiveTime::from_hms_opt(if early { 12 } else { 15 }, 50, 0).expect("time");
        local >= start
    };
    let mut in_close_only = 0;
    for v in events(&log, "risk_approved") {
        if close_only(ts(v)) {
            in_close_only += 1;
            let target = v["data"]["target_position"].as_f64().expect("target").abs();
            let position = v["data"]["position"].as_f64().expect("position").abs();
            assert!(target <= position, "close-only order grew a position: {v}");
        }
    }
    let reduce_only_rejects = events(&log, "risk_rejected")
        .iter()
        .filter(|v| close_only(ts(v)))
        .count();
    assert!(
        in_close_only + reduce_only_rejects > 0,
        "the data should produce signals in the close-only windows"
    );
    // The final snapshot of Friday's session is in the log, stamped at the close.
    let snap = events(&log, "positions_snapshot");
    assert!(
        snap.iter()
            .any(|v| ts(v) == "2024-11-29T18:00:00Z".parse::<Timestamp>().expect("ts")),
        "{snap:?}"
    );

    // Wednesday's day report, made from this log as `vigil run` makes it after the close.
    let wednesday = NaiveDate::from_ymd_opt(2024, 11, 27).expect("date");
    let (checks, written) =
        vigil_session::post_close(&cfg, wednesday, "2024-11-27T21:05:00Z".parse().expect("ts"));
    let written = written.expect("the day report is written");
    let day: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.json).expect("json")).expect("json");
    let on_wednesday = |event: &str| {
        events(&log, event)
            .iter()
            .filter(|v| vigil_core::exchange_date(ts(v)) == wednesday)
            .count()
    };
    // One point a minute of the session, its fills and orders those of the log.
    assert_eq!(day["curve"].as_array().expect("curve").len(), 390, "{day}");
    assert_eq!(day["curve"][0][0], "09:30");
    assert_eq!(day["curve"][389][0], "15:59");
    assert_eq!(
        day["fills"].as_array().expect("fills").len(),
        on_wednesday("fill_received")
    );
    assert!(on_wednesday("fill_received") > 0, "the data makes trades");
    assert_eq!(day["orders"]["sent"], on_wednesday("order_submitted"));
    assert_eq!(
        day["slippage"]["fills_with_reference"],
        on_wednesday("fill_received"),
        "every fill's decision is in the log"
    );
    assert!(day["day_pnl"].is_string(), "against Tuesday's close: {day}");
    assert!(
        day["max_drawdown"].as_f64().is_some_and(|d| d > 0.0),
        "{day}"
    );
    assert_eq!(
        checks.results.len(),
        day["checks"].as_array().expect("checks").len()
    );
    let png = std::fs::read(written.chart.expect("a chart")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn a_failed_premarket_checklist_keeps_the_session_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("week_1m.csv");
    let from = NaiveDate::from_ymd_opt(2024, 11, 25).expect("date");
    let to = NaiveDate::from_ymd_opt(2024, 11, 27).expect("date");
    std::fs::write(&data, session_bars(from, to)).expect("write");
    let mut cfg = config_for(&data, "TEST", &dir.path().join("logs"));
    cfg.calendar.automation = true;
    cfg.signal.fast_span = 3;
    cfg.signal.slow_span = 8;
    cfg.checklist.dir = dir.path().join("reports");
    // No disk is this large: every pre-market check fails.
    cfg.checklist.warn_free_disk_gb = 1_000_000_000;
    cfg.checklist.fail_free_disk_gb = 1_000_000_000;
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    assert!(outcome.summary.signals > 10, "the model kept signalling");
    assert_eq!(
        outcome.summary.orders, 0,
        "no order in a session whose checklist failed"
    );
    let log = read_log(&outcome.log_dir);
    let failed = events(&log, "checklist_failed");
    // Monday's at the start (mid-session), Tuesday's and Wednesday's at 09:25 ET.
    assert_eq!(failed.len(), 3, "{failed:?}");
    for f in &failed {
        assert_eq!(f["level"], "ERROR");
        assert!(
            f["data"]["failed"]
                .as_str()
                .expect("failed")
                .contains("disk_space")
        );
    }
    assert!(events(&log, "risk_approved").is_empty());
    let stays_closed = events(&log, "trading_state_changed")
        .iter()
        .filter(|v| v["level"] == "ERROR" && v["data"]["to"] == "closed")
        .count();
    assert!(stays_closed >= 3);
    let reports = std::fs::read_dir(dir.path().join("reports"))
        .expect("reports")
        .count();
    assert_eq!(reports, 3, "each pre-market report is stored");
}
