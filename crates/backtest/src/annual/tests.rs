use super::*;

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// XNYS in 2023: 250 sessions (260 weekdays, 10 holidays), a few of them closing at 13:00.
/// Daily bars: 250 a year; minute bars: 390 a full session, 210 an early close.
#[test]
fn an_exchange_year_counts_its_sessions_and_their_minutes() {
    let xnys = Calendar::xnys();
    let (from, to) = (date("2023-03-01"), date("2023-11-30"));
    let daily =
        periods_per_year(Market::Exchange(&xnys), Duration::days(1), from, to).expect("daily");
    assert_eq!(daily, 250.0);
    let sessions = xnys
        .sessions(date("2023-01-01"), date("2023-12-31"))
        .expect("sessions");
    let early = sessions.iter().filter(|s| s.early_close).count() as f64;
    let minutes =
        periods_per_year(Market::Exchange(&xnys), Duration::minutes(1), from, to).expect("minutes");
    // 390 minutes a regular session, 210 an early close.
    assert_eq!(minutes, (250.0 - early) * 390.0 + early * 210.0);
    let hourly =
        periods_per_year(Market::Exchange(&xnys), Duration::hours(1), from, to).expect("hours");
    // 6 whole hours in 6.5, 3 in 3.5.
    assert_eq!(hourly, (250.0 - early) * 6.0 + early * 3.0);
}

#[test]
fn a_market_open_all_day_counts_every_hour() {
    let (from, to) = (date("2024-01-01"), date("2024-12-31"));
    let hourly = periods_per_year(Market::AllDay, Duration::hours(1), from, to).expect("hourly");
    assert_eq!(hourly, 8766.0);
    let daily = periods_per_year(Market::AllDay, Duration::days(1), from, to).expect("daily");
    assert_eq!(daily, 365.25);
}

#[test]
fn a_bad_interval_or_dates_are_refused() {
    let xnys = Calendar::xnys();
    let d = date("2024-01-02");
    assert!(matches!(
        periods_per_year(Market::AllDay, Duration::zero(), d, d),
        Err(AnnualError::Interval(0))
    ));
    assert!(matches!(
        periods_per_year(
            Market::Exchange(&xnys),
            Duration::days(1),
            d,
            date("2024-01-01")
        ),
        Err(AnnualError::Dates { .. })
    ));
}
