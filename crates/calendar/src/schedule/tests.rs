use super::*;
use crate::xnys::ymd;
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("utc literal")
}

fn text(date: NaiveDate) -> String {
    ScheduleConfig::default()
        .schedule_text(&Calendar::xnys(), date)
        .expect("schedule")
}

#[test]
fn default_schedule_is_the_us_equities_day() {
    assert_eq!(
        text(ymd(2024, 11, 27)),
        "09:15 ET  auto_start\n\
             09:25 ET  premarket_validation\n\
             09:30 ET  trading_active\n\
             15:50 ET  close_only\n\
             16:00 ET  final_snapshot\n\
             16:05 ET  post_close\n\
             16:30 ET  auto_stop\n"
    );
}

#[test]
fn early_close_day_moves_the_afternoon_with_the_close() {
    assert_eq!(
        text(ymd(2024, 11, 29)),
        "09:15 ET  auto_start\n\
             09:25 ET  premarket_validation\n\
             09:30 ET  trading_active\n\
             12:50 ET  close_only\n\
             13:00 ET  final_snapshot\n\
             13:05 ET  post_close\n\
             13:30 ET  auto_stop\n"
    );
}

#[test]
fn holiday_has_no_phases() {
    let cal = Calendar::xnys();
    let cfg = ScheduleConfig::default();
    assert_eq!(cfg.schedule(&cal, ymd(2024, 12, 25)), Ok(Vec::new()));
    assert_eq!(cfg.schedule(&cal, ymd(2024, 12, 28)), Ok(Vec::new()));
    assert_eq!(
        text(ymd(2024, 12, 25)),
        "2024-12-25: no session (Christmas Day)\n"
    );
}

#[test]
fn schedule_is_in_utc_across_daylight_saving() {
    let cal = Calendar::xnys();
    let cfg = ScheduleConfig::default();
    let phases = cfg.schedule(&cal, ymd(2024, 3, 11)).expect("schedule");
    assert_eq!(phases[0], (Phase::AutoStart, utc("2024-03-11T13:15:00Z")));
    let phases = cfg.schedule(&cal, ymd(2024, 3, 8)).expect("schedule");
    assert_eq!(phases[0], (Phase::AutoStart, utc("2024-03-08T14:15:00Z")));
}

#[test]
fn next_transition_crosses_holidays_and_is_strictly_after() {
    let cal = Calendar::xnys();
    let cfg = ScheduleConfig::default();
    // Wednesday 2024-11-27 16:30 ET is that day's auto_stop; Thursday is Thanksgiving.
    let at = utc("2024-11-27T21:30:00Z");
    assert_eq!(
        cfg.next_transition(&cal, at),
        Ok(Some((Phase::AutoStart, utc("2024-11-29T14:15:00Z"))))
    );
    let at = utc("2024-11-29T17:50:00Z");
    assert_eq!(
        cfg.next_transition(&cal, at),
        Ok(Some((Phase::FinalSnapshot, utc("2024-11-29T18:00:00Z"))))
    );
    assert_eq!(
        cfg.next_transition(&cal, utc("2035-12-31T22:00:00Z")),
        Ok(None)
    );
    assert!(
        cfg.next_transition(&cal, utc("2036-01-02T00:00:00Z"))
            .is_err()
    );
}

#[test]
fn next_transition_finds_yesterdays_late_stop_after_midnight() {
    let cal = Calendar::xnys();
    let cfg = ScheduleConfig {
        auto_stop_minutes_after_close: 6 * 60,
        ..ScheduleConfig::default()
    };
    // 22:00 ET on 2024-11-27 is 03:00 UTC on the 28th.
    let next = cfg
        .next_transition(&cal, utc("2024-11-28T02:30:00Z"))
        .expect("in range");
    assert_eq!(next, Some((Phase::AutoStop, utc("2024-11-28T03:00:00Z"))));
}

#[test]
fn invalid_schedule_lists_every_problem() {
    let cfg = ScheduleConfig {
        auto_start_minutes_before_open: 5,
        premarket_validation_minutes_before_open: 5,
        close_only_minutes_before_close: 0,
        final_snapshot_minutes_after_close: 10,
        post_close_minutes_after_close: 10,
        auto_stop_minutes_after_close: 1000,
    };
    let keys: Vec<String> = cfg.issues().into_iter().map(|i| i.key).collect();
    assert_eq!(
        keys,
        [
            "auto_stop_minutes_after_close",
            "auto_start_minutes_before_open",
            "close_only_minutes_before_close",
            "post_close_minutes_after_close",
        ]
    );
    assert!(matches!(
        cfg.schedule(&Calendar::xnys(), ymd(2024, 11, 27)),
        Err(CalendarError::InvalidSchedule { .. })
    ));
    assert!(ScheduleConfig::default().issues().is_empty());
}

#[test]
fn close_only_longer_than_a_short_session_is_out_of_order() {
    let cfg = ScheduleConfig {
        close_only_minutes_before_close: 240,
        ..ScheduleConfig::default()
    };
    let cal = Calendar::xnys();
    assert!(cfg.schedule(&cal, ymd(2024, 11, 27)).is_ok());
    let err = cfg
        .schedule(&cal, ymd(2024, 11, 29))
        .expect_err("too short");
    assert_eq!(
        err.to_string(),
        "schedule for 2024-11-29: close_only at 09:00:00 is not after trading_active at 09:30:00"
    );
}

#[test]
fn schedule_config_deserializes_with_defaults() {
    let cfg: ScheduleConfig = toml::from_str("").expect("parse");
    assert_eq!(cfg, ScheduleConfig::default());
    let cfg: ScheduleConfig =
        toml::from_str("close_only_minutes_before_close = 15").expect("parse");
    assert_eq!(cfg.close_only_minutes_before_close, 15);
    assert_eq!(cfg.auto_stop_minutes_after_close, 30);
    assert!(toml::from_str::<ScheduleConfig>("close_only = 15").is_err());
}

#[test]
fn phase_names_are_snake_case() {
    let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "auto_start",
            "premarket_validation",
            "trading_active",
            "close_only",
            "final_snapshot",
            "post_close",
            "auto_stop",
        ]
    );
    for p in Phase::ALL {
        let quoted = format!("\"{}\"", p.as_str());
        assert_eq!(toml_string(p), quoted, "serde name of {p:?} matches as_str");
    }
}

// Serializes a unit variant through toml's value serializer, which quotes strings.
fn toml_string(p: Phase) -> String {
    toml::Value::try_from(p).expect("serialize").to_string()
}

proptest! {
    #[test]
    fn phases_strictly_increase_and_close_only_is_ten_minutes_before_close(
        n in 0i64..=(ymd(2035, 12, 31) - ymd(1995, 1, 1)).num_days()
    ) {
        let cal = Calendar::xnys();
        let date = ymd(1995, 1, 1) + Duration::days(n);
        let phases = ScheduleConfig::default().schedule(&cal, date).expect("schedule");
        match cal.session(date).expect("in range") {
            None => prop_assert!(phases.is_empty()),
            Some(s) => {
                prop_assert_eq!(phases.len(), 7);
                prop_assert!(phases.windows(2).all(|w| w[0].1 < w[1].1));
                let order: Vec<Phase> = phases.iter().map(|(p, _)| *p).collect();
                prop_assert_eq!(order, Phase::ALL.to_vec());
                prop_assert_eq!(phases[2].1, s.open);
                prop_assert_eq!(phases[3].1, s.close - Duration::minutes(10));
                prop_assert_eq!(phases[4].1, s.close);
            }
        }
    }
}
