//! Tests of `alerts_cmd`.

use chrono::TimeZone;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 5, 14, 0, 0)
        .single()
        .expect("valid time")
}

#[test]
fn durations_take_units_and_sums_and_refuse_the_rest() {
    let secs = |s: &str| parse_duration(s).map(|d| d.num_seconds());
    assert_eq!(secs("90s"), Ok(90));
    assert_eq!(secs("30m"), Ok(1800));
    assert_eq!(secs("2h"), Ok(7200));
    assert_eq!(secs("1d"), Ok(86_400));
    assert_eq!(secs("1h30m"), Ok(5400));
    assert_eq!(secs("0s"), Ok(0));
    for bad in [
        "",
        "5",
        "h",
        "2x",
        "-2h",
        "1.5h",
        "2 h",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn since_is_an_age_or_a_time() {
    let now = t0();
    assert_eq!(
        parse_since("2h", now).ok(),
        Some(now - chrono::Duration::hours(2))
    );
    assert_eq!(
        parse_since("1h30m", now).ok(),
        Some(now - chrono::Duration::minutes(90))
    );
    assert_eq!(
        parse_since("2026-03-05T09:00:00-05:00", now).ok(),
        Some(now)
    );
    let err = parse_since("yesterday", now)
        .expect_err("not a time")
        .to_string();
    assert!(err.starts_with("yesterday: expected a duration"), "{err}");
}

#[test]
fn tables_align_every_column_but_the_last() {
    let t = table(
        &["ID", "WHAT"],
        vec![
            vec!["a-1".into(), "one".into()],
            vec!["a-12345".into(), "two\nlines".into()],
        ],
    );
    assert_eq!(t, "ID       WHAT\na-1      one\na-12345  two\\nlines\n");
    let t = table(
        &["WHO", "WHY"],
        vec![vec!["ana\u{1b}[2J\u{1b}[H".into(), "ok\r\u{9b}31m".into()]],
    );
    assert_eq!(
        t,
        "WHO               WHY\nana\\x1b[2J\\x1b[H  ok\\r\\u{9b}31m\n"
    );
}
