//! Anomaly quarantine in a real session: a bad tick in GOOG's bars puts GOOG in quarantine,
//! alerts, keeps the bar (and the ones until calm returns) from the models, then lifts.

use vigil_session::{SessionOptions, run};
use vigil_tests::{config_for, events, read_log, repo_data};

#[test]
fn a_bad_tick_quarantines_its_symbol_alerts_and_no_signal_comes_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Row 200's prices ×3: a bad print. Row 201 is back to normal (a jump down).
    let text = std::fs::read_to_string(repo_data("GOOG_1d.csv")).expect("GOOG_1d.csv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let cols: Vec<&str> = lines[200].split(',').collect();
    let times3 = |s: &str| {
        (s.parse::<rust_decimal::Decimal>().expect("price") * rust_decimal::Decimal::from(3))
            .to_string()
    };
    let bad = format!(
        "{},{},{},{},{},{}",
        cols[0],
        times3(cols[1]),
        times3(cols[2]),
        times3(cols[3]),
        times3(cols[4]),
        cols[5]
    );
    lines[200] = bad;
    let dates: Vec<String> = lines.iter().map(|l| l[..10].to_string()).collect();
    let data = dir.path().join("GOOG_1d.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write data");

    let cfg = config_for(&data, "GOOG", &dir.path().join("run"));
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    let log = read_log(&outcome.log_dir);

    let on = events(&log, "symbol_quarantined");
    assert_eq!(on.len(), 1, "{on:#?}");
    assert_eq!(on[0]["level"], "ERROR");
    assert_eq!(on[0]["data"]["symbol"], "GOOG");
    assert_eq!(on[0]["data"]["actor"], "anomaly_rule");
    assert!(
        on[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with(&dates[200])),
        "{:#}",
        on[0]
    );
    // Row 201 jumps back down (still anomalous); rows 202–204 are calm: released at 204.
    let off = events(&log, "symbol_released");
    assert_eq!(off.len(), 1, "{off:#?}");
    assert!(
        off[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with(&dates[204])),
        "{:#}",
        off[0]
    );

    // No signal was made on a withheld bar (rows 200–203).
    for s in events(&log, "signal_generated") {
        let at = s["timestamp"].as_str().unwrap_or_default();
        assert!(
            !dates[200..204].iter().any(|d| at.starts_with(d.as_str())),
            "a signal on a quarantined bar: {s:#}"
        );
    }
    // The alert fired and resolved.
    let firing: Vec<_> = events(&log, "alert_firing")
        .into_iter()
        .filter(|a| a["data"]["rule"] == "symbol_quarantined")
        .collect();
    assert_eq!(firing.len(), 1, "{firing:#?}");
}

/// The bar that became a fill at 0.010001 (issue 19): open and low printed at 0.01, the
/// close normal. Every price of a bar is judged against the previous close, so GOOG goes
/// into quarantine, the venue never sees the bar, and no order fills at an absurd price.
#[test]
fn a_bar_with_an_absurd_open_and_low_is_quarantined_and_never_becomes_a_fill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo_data("GOOG_1d.csv")).expect("GOOG_1d.csv");
    let (mut lines, mut found) = (Vec::new(), false);
    for line in text.lines() {
        if line.starts_with("2004-10-04,") {
            found = true;
            lines.push("2004-10-04,0.01,136.87,0.01,135.06,6517900".to_string());
        } else {
            lines.push(line.to_string());
        }
    }
    assert!(found, "GOOG_1d.csv has 2004-10-04");
    let data = dir.path().join("GOOG_1d.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write data");

    let cfg = config_for(&data, "GOOG", &dir.path().join("run"));
    let outcome = run(SessionOptions::new(cfg)).expect("session runs");
    assert_eq!(outcome.summary.error, None);
    let log = read_log(&outcome.log_dir);

    let on = events(&log, "symbol_quarantined");
    assert_eq!(on.len(), 1, "{on:#?}");
    assert!(
        on[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2004-10-04")),
        "{:#}",
        on[0]
    );
    let reason = on[0]["data"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("low 0.01 moved -99.99% from the previous 132.58"),
        "{:#}",
        on[0]
    );
    // GOOG never traded below 95 in these years: every fill is at a true price.
    let fills = events(&log, "fill_received");
    assert!(!fills.is_empty(), "the session traded");
    for f in fills {
        let price: rust_decimal::Decimal = f["data"]["price"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| f["data"]["price"].to_string())
            .parse()
            .expect("a price");
        assert!(price > rust_decimal::Decimal::from(90), "{f:#}");
    }
}
