use super::*;
use crate::overrides::{ClosureOverride, EarlyCloseOverride};
use crate::xnys::{easter_sunday, hm, ymd};
use chrono::{Datelike, Weekday};
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("utc literal")
}

fn session(d: NaiveDate) -> Option<Session> {
    Calendar::xnys().session(d).expect("in range")
}

fn closed(d: NaiveDate) -> bool {
    session(d).is_none()
}

#[test]
fn day_after_thanksgiving_2024_closes_at_13_00_et() {
    let s = session(ymd(2024, 11, 29)).expect("session");
    assert!(s.early_close);
    assert_eq!(s.close, utc("2024-11-29T18:00:00Z"));
    assert_eq!(s.open, utc("2024-11-29T14:30:00Z"));
}

#[test]
fn known_closures_are_closed() {
    for d in [
        ymd(2025, 1, 9),
        ymd(2012, 10, 29),
        ymd(2012, 10, 30),
        ymd(2001, 9, 11),
        ymd(2001, 9, 12),
        ymd(2001, 9, 13),
        ymd(2001, 9, 14),
        ymd(2024, 3, 29),
        ymd(2022, 6, 20),
        ymd(2022, 12, 26),
        ymd(2015, 7, 3),
        ymd(2004, 6, 11),
        ymd(2007, 1, 2),
        ymd(2018, 12, 5),
        ymd(1999, 12, 24),
    ] {
        assert!(closed(d), "{d} should be closed");
    }
}

#[test]
fn known_open_days_are_open() {
    for d in [
        ymd(2001, 9, 17),
        ymd(2021, 6, 18),
        ymd(2021, 12, 31),
        ymd(2012, 10, 31),
        ymd(2025, 12, 26),
        ymd(2008, 12, 26),
    ] {
        let s = session(d).unwrap_or_else(|| panic!("{d} should be open"));
        assert!(!s.early_close, "{d} should be a full session");
    }
}

#[test]
fn known_early_closes_close_at_13_00() {
    for d in [
        ymd(2002, 7, 5),
        ymd(2013, 7, 3),
        ymd(2019, 7, 3),
        ymd(2020, 11, 27),
        ymd(2024, 7, 3),
        ymd(2024, 11, 29),
        ymd(2024, 12, 24),
        ymd(2025, 7, 3),
        ymd(2025, 11, 28),
        ymd(2025, 12, 24),
        ymd(1999, 12, 31),
        ymd(2003, 12, 26),
        ymd(1997, 12, 26),
    ] {
        let s = session(d).unwrap_or_else(|| panic!("{d} should be open"));
        assert!(s.early_close, "{d} should close early");
        let local = s.close.with_timezone(&chrono_tz::America::New_York);
        assert_eq!(local.time(), hm(13, 0), "{d}");
    }
}

#[test]
fn sessions_follow_daylight_saving_changes() {
    let open = |d| session(d).expect("session").open;
    assert_eq!(open(ymd(2024, 3, 8)), utc("2024-03-08T14:30:00Z"));
    assert_eq!(open(ymd(2024, 3, 11)), utc("2024-03-11T13:30:00Z"));
    assert_eq!(open(ymd(2024, 11, 1)), utc("2024-11-01T13:30:00Z"));
    assert_eq!(open(ymd(2024, 11, 4)), utc("2024-11-04T14:30:00Z"));
    assert_eq!(
        session(ymd(2024, 3, 11)).expect("session").close,
        utc("2024-03-11T20:00:00Z")
    );
}

#[test]
fn range_is_1995_through_2035() {
    let cal = Calendar::xnys();
    assert_eq!(cal.session(ymd(1995, 1, 1)), Ok(None));
    assert!(cal.session(ymd(1995, 1, 3)).expect("in range").is_some());
    assert!(cal.session(ymd(2035, 12, 31)).expect("in range").is_some());
    for d in [ymd(1994, 12, 30), ymd(2036, 1, 1)] {
        assert_eq!(
            cal.session(d),
            Err(CalendarError::OutOfRange {
                date: d,
                from: ymd(1995, 1, 1),
                to: ymd(2035, 12, 31),
            })
        );
    }
    let err = cal.session(ymd(2036, 1, 1)).expect_err("out of range");
    assert_eq!(
        err.to_string(),
        "date 2036-01-01 is outside the calendar's range 1995-01-01 ..= 2035-12-31"
    );
}

#[test]
fn session_counts_match_the_nyse_per_year() {
    let cal = Calendar::xnys();
    for (year, count, early) in [
        (2019, 252, 3),
        (2020, 253, 2),
        (2021, 252, 1),
        (2022, 251, 1),
        (2023, 250, 2),
        (2024, 252, 3),
        (2025, 250, 3),
    ] {
        let s = cal
            .sessions(ymd(year, 1, 1), ymd(year, 12, 31))
            .expect("in range");
        assert_eq!(s.len(), count, "sessions in {year}");
        let e = s.iter().filter(|s| s.early_close).count();
        assert_eq!(e, early, "early closes in {year}");
    }
}

#[test]
fn goog_daily_file_has_exactly_one_row_per_session() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/GOOG_1d.csv");
    let text = std::fs::read_to_string(path).expect("read GOOG_1d.csv");
    let dates: Vec<NaiveDate> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let field = l.split(',').next().expect("a first column");
            NaiveDate::parse_from_str(&field[..10], "%Y-%m-%d").expect("date")
        })
        .collect();
    let (first, last) = (dates[0], dates[dates.len() - 1]);
    assert_eq!((first, last), (ymd(2004, 8, 19), ymd(2013, 3, 1)));
    let sessions: Vec<NaiveDate> = Calendar::xnys()
        .sessions(first, last)
        .expect("in range")
        .iter()
        .map(|s| s.date)
        .collect();
    let in_file: std::collections::BTreeSet<_> = dates.iter().copied().collect();
    let in_cal: std::collections::BTreeSet<_> = sessions.iter().copied().collect();
    let missing: Vec<_> = in_cal.difference(&in_file).collect();
    let extra: Vec<_> = in_file.difference(&in_cal).collect();
    assert!(
        missing.is_empty(),
        "sessions missing from the file: {missing:?}"
    );
    assert!(extra.is_empty(), "file rows on non-session days: {extra:?}");
    assert_eq!(dates.len(), sessions.len(), "no duplicate rows");
    assert!(!in_cal.contains(&ymd(2012, 10, 29)));
}

#[test]
fn sessions_csv_renders_local_times_and_early_flag() {
    let csv = Calendar::xnys()
        .sessions_csv(ymd(2024, 11, 26), ymd(2024, 12, 2))
        .expect("in range");
    assert_eq!(
        csv,
        "date,open,close,early_close\n\
             2024-11-26,09:30,16:00,false\n\
             2024-11-27,09:30,16:00,false\n\
             2024-11-29,09:30,13:00,true\n\
             2024-12-02,09:30,16:00,false\n"
    );
}

#[test]
fn sessions_reject_an_inverted_range() {
    let err = Calendar::xnys()
        .sessions(ymd(2024, 12, 2), ymd(2024, 11, 26))
        .expect_err("inverted");
    assert!(matches!(err, CalendarError::InvertedRange { .. }));
}

#[test]
fn is_open_includes_the_open_and_excludes_the_close() {
    let cal = Calendar::xnys();
    assert_eq!(cal.is_open(utc("2024-11-29T14:29:59Z")), Ok(false));
    assert_eq!(cal.is_open(utc("2024-11-29T14:30:00Z")), Ok(true));
    assert_eq!(cal.is_open(utc("2024-11-29T17:59:59Z")), Ok(true));
    assert_eq!(cal.is_open(utc("2024-11-29T18:00:00Z")), Ok(false));
    assert_eq!(cal.is_open(utc("2024-11-28T16:00:00Z")), Ok(false));
}

#[test]
fn next_open_and_close_skip_holidays_and_weekends() {
    let cal = Calendar::xnys();
    // Wednesday evening before Thanksgiving: next open is Friday.
    let at = utc("2024-11-27T22:00:00Z");
    assert_eq!(cal.next_open(at), Ok(Some(utc("2024-11-29T14:30:00Z"))));
    assert_eq!(cal.next_close(at), Ok(Some(utc("2024-11-29T18:00:00Z"))));
    // During a session: the close is today's, the open is the next session's.
    let at = utc("2024-11-29T15:00:00Z");
    assert_eq!(cal.next_close(at), Ok(Some(utc("2024-11-29T18:00:00Z"))));
    assert_eq!(cal.next_open(at), Ok(Some(utc("2024-12-02T14:30:00Z"))));
    // Exactly at the open: strictly after.
    let at = utc("2024-12-02T14:30:00Z");
    assert_eq!(cal.next_open(at), Ok(Some(utc("2024-12-03T14:30:00Z"))));
    // Past the last session of the range.
    assert_eq!(cal.next_open(utc("2035-12-31T22:00:00Z")), Ok(None));
    assert!(cal.next_open(utc("2036-01-01T15:00:00Z")).is_err());
}

#[test]
fn explain_names_the_rule_or_the_reason() {
    let cal = Calendar::xnys();
    let e = cal.explain(ymd(2024, 11, 29)).expect("in range");
    assert_eq!(e.status, DayStatus::EarlyClose);
    assert_eq!(e.reason, "day after Thanksgiving");
    assert_eq!(e.source, Source::Rule);
    assert_eq!(
        e.to_string(),
        "2024-11-29 early close: open 09:30-13:00 ET: day after Thanksgiving (rule)"
    );
    let e = cal.explain(ymd(2025, 1, 9)).expect("in range");
    assert_eq!((e.status, e.source), (DayStatus::Closed, Source::Recorded));
    assert!(e.reason.contains("Carter"));
    assert_eq!(
        cal.explain(ymd(2024, 3, 29)).expect("in range").reason,
        "Good Friday"
    );
    assert_eq!(
        cal.explain(ymd(2024, 3, 30)).expect("in range").reason,
        "weekend"
    );
    let e = cal.explain(ymd(2024, 3, 28)).expect("in range");
    assert_eq!(
        e.to_string(),
        "2024-03-28 open 09:30-16:00 ET: regular session (rule)"
    );
}

fn overrides() -> CalendarOverrides {
    CalendarOverrides {
        closures: vec![ClosureOverride {
            date: ymd(2026, 1, 2),
            reason: "broker migration".into(),
        }],
        early_closes: vec![EarlyCloseOverride {
            date: ymd(2026, 1, 5),
            close: hm(12, 0),
            reason: "half-day drill".into(),
        }],
    }
}

#[test]
fn overrides_apply_on_top_of_the_rules_with_their_reasons() {
    let base = Calendar::xnys();
    let cal = base.with_overrides(&overrides()).expect("valid overrides");
    assert!(base.session(ymd(2026, 1, 2)).expect("range").is_some());
    assert_eq!(cal.session(ymd(2026, 1, 2)), Ok(None));
    let e = cal.explain(ymd(2026, 1, 2)).expect("range");
    assert_eq!(
        (e.source, e.reason.as_str()),
        (Source::Override, "broker migration")
    );
    let s = cal
        .session(ymd(2026, 1, 5))
        .expect("range")
        .expect("session");
    assert!(s.early_close);
    assert_eq!(s.close, utc("2026-01-05T17:00:00Z"));
    assert_eq!(
        cal.explain(ymd(2026, 1, 5)).expect("range").to_string(),
        "2026-01-05 early close: open 09:30-12:00 ET: half-day drill (override)"
    );
}

#[test]
fn overrides_deserialize_from_toml() {
    let text = r#"
            closures = [{ date = "2026-01-02", reason = "broker migration" }]
            early_closes = [{ date = "2026-01-05", close = "12:00", reason = "half-day drill" }]
        "#;
    let parsed: CalendarOverrides = toml::from_str(text).expect("parse");
    assert_eq!(parsed, overrides());
    let empty: CalendarOverrides = toml::from_str("").expect("parse");
    assert_eq!(empty, CalendarOverrides::default());
    let bad = toml::from_str::<CalendarOverrides>(
        r#"early_closes = [{ date = "2026-01-05", close = "1pm", reason = "x" }]"#,
    );
    assert!(bad.is_err());
}

#[test]
fn invalid_overrides_are_all_reported() {
    let bad = CalendarOverrides {
        closures: vec![
            ClosureOverride {
                date: ymd(2036, 1, 2),
                reason: "too late".into(),
            },
            ClosureOverride {
                date: ymd(2026, 1, 3),
                reason: " ".into(),
            },
        ],
        early_closes: vec![
            EarlyCloseOverride {
                date: ymd(2025, 12, 25),
                close: hm(13, 0),
                reason: "x".into(),
            },
            EarlyCloseOverride {
                date: ymd(2026, 1, 5),
                close: hm(16, 0),
                reason: "x".into(),
            },
        ],
    };
    let err = Calendar::xnys().with_overrides(&bad).expect_err("invalid");
    let CalendarError::InvalidOverrides { issues } = &err else {
        panic!("unexpected {err}");
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "closures[0].date",
            "closures[1].reason",
            "closures[1].date",
            "early_closes[0].date",
            "early_closes[1].close",
        ]
    );
    assert!(
        err.to_string()
            .starts_with("invalid calendar overrides: closures[0].date: ")
    );
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    (0i64..=(ymd(2035, 12, 31) - ymd(1995, 1, 1)).num_days())
        .prop_map(|n| ymd(1995, 1, 1) + Duration::days(n))
}

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    // From 1995-01-01 12:00 UTC (local date in range) to late 2035.
    (788_961_600i64..2_082_000_000i64)
        .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in chrono's range"))
}

proptest! {
    #[test]
    fn no_session_on_a_weekend(d in any_date()) {
        if matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            prop_assert_eq!(session(d), None);
        }
    }

    #[test]
    fn every_early_close_is_at_13_00_et_and_open_precedes_close(d in any_date()) {
        if let Some(s) = session(d) {
            prop_assert!(s.open < s.close);
            let tz = chrono_tz::America::New_York;
            prop_assert_eq!(s.open.with_timezone(&tz).time(), hm(9, 30));
            prop_assert_eq!(s.open.with_timezone(&tz).date_naive(), d);
            let close = s.close.with_timezone(&tz).time();
            prop_assert_eq!(close, if s.early_close { hm(13, 0) } else { hm(16, 0) });
        }
    }

    #[test]
    fn good_friday_is_two_days_before_easter_and_closed(year in 1995i32..=2035) {
        let easter = easter_sunday(year).expect("easter");
        prop_assert_eq!(easter.weekday(), Weekday::Sun);
        prop_assert!((ymd(year, 3, 22)..=ymd(year, 4, 25)).contains(&easter));
        let good_friday = easter - Duration::days(2);
        let e = Calendar::xnys().explain(good_friday).expect("in range");
        prop_assert_eq!(e.status, DayStatus::Closed);
        prop_assert_eq!(e.reason, "Good Friday");
    }

    #[test]
    fn next_open_is_a_later_session_open(at in any_instant()) {
        let cal = Calendar::xnys();
        let next = cal.next_open(at).expect("in range").expect("a later session");
        prop_assert!(next > at);
        let s = cal.session(cal.local_date(next)).expect("range").expect("a session");
        prop_assert_eq!(s.open, next);
        // No session opens in between.
        let between = cal.sessions(cal.local_date(at), cal.local_date(next)).expect("range");
        prop_assert!(between.iter().all(|s| s.open <= at || s.open >= next));
    }

    #[test]
    fn next_close_is_the_first_close_after_at(at in any_instant()) {
        let cal = Calendar::xnys();
        let next = cal.next_close(at).expect("in range").expect("a later session");
        prop_assert!(next > at);
        if cal.is_open(at).expect("in range") {
            prop_assert_eq!(cal.local_date(next), cal.local_date(at));
        }
    }
}
