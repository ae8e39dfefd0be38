//! The New York Stock Exchange (XNYS): its rules, its recorded exceptions and the date
//! arithmetic they need. What is rule-based and what is recorded is documented on
//! [`crate::Calendar::xnys`].

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

use crate::calendar::{ExchangeSpec, RuleDay, Source};

/// The first date the XNYS rules were checked for.
pub(crate) const FIRST: NaiveDate = ymd(1995, 1, 1);
/// The last date the XNYS rules are believed to hold for.
pub(crate) const LAST: NaiveDate = ymd(2035, 12, 31);

const EARLY_CLOSE: NaiveTime = hm(13, 0);

/// The New York Stock Exchange: 09:30–16:00 America/New_York.
pub(crate) static XNYS: ExchangeSpec = ExchangeSpec {
    name: "XNYS",
    zone: chrono_tz::America::New_York,
    zone_label: "ET",
    open: hm(9, 30),
    close: hm(16, 0),
    first: FIRST,
    last: LAST,
    classify,
};

/// A dated rule: the date it falls on in a year, if any, for the years it applies.
struct DatedRule {
    name: &'static str,
    from_year: i32,
    to_year: i32,
    date_in: fn(i32) -> Option<NaiveDate>,
}

impl DatedRule {
    fn matches(&self, date: NaiveDate) -> bool {
        let year = date.year();
        (self.from_year..=self.to_year).contains(&year) && (self.date_in)(year) == Some(date)
    }
}

const ALL_FROM: i32 = 1995;
const ALL_TO: i32 = 2035;

const HOLIDAYS: &[DatedRule] = &[
    DatedRule {
        name: "New Year's Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: new_years_day,
    },
    DatedRule {
        name: "Martin Luther King Jr. Day",
        from_year: 1998,
        to_year: ALL_TO,
        date_in: |y| nth_weekday(y, 1, Weekday::Mon, 3),
    },
    DatedRule {
        name: "Washington's Birthday",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| nth_weekday(y, 2, Weekday::Mon, 3),
    },
    DatedRule {
        name: "Good Friday",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: good_friday,
    },
    DatedRule {
        name: "Memorial Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| last_weekday(y, 5, Weekday::Mon),
    },
    DatedRule {
        name: "Juneteenth",
        from_year: 2022,
        to_year: ALL_TO,
        date_in: |y| NaiveDate::from_ymd_opt(y, 6, 19).map(nearest_weekday),
    },
    DatedRule {
        name: "Independence Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| NaiveDate::from_ymd_opt(y, 7, 4).map(nearest_weekday),
    },
    DatedRule {
        name: "Labor Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| nth_weekday(y, 9, Weekday::Mon, 1),
    },
    DatedRule {
        name: "Thanksgiving Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: thanksgiving,
    },
    DatedRule {
        name: "Christmas Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| NaiveDate::from_ymd_opt(y, 12, 25).map(nearest_weekday),
    },
];

const EARLY_CLOSES: &[DatedRule] = &[
    DatedRule {
        name: "day before Independence Day",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| on_weekdays(y, 7, 3, &[Weekday::Mon, Weekday::Tue, Weekday::Thu]),
    },
    // Until 2012, a Thursday July 4 was followed by a 1 pm close on Friday the 5th; from 2013
    // the early close moved to Wednesday the 3rd and the Friday became a full session.
    DatedRule {
        name: "day before Independence Day",
        from_year: 2013,
        to_year: ALL_TO,
        date_in: |y| on_weekdays(y, 7, 3, &[Weekday::Wed]),
    },
    DatedRule {
        name: "day after Independence Day",
        from_year: ALL_FROM,
        to_year: 2012,
        date_in: |y| on_weekdays(y, 7, 5, &[Weekday::Fri]),
    },
    DatedRule {
        name: "day after Thanksgiving",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| thanksgiving(y).map(|d| d + Duration::days(1)),
    },
    // A Friday Dec 24 is the observed Christmas holiday, and a weekend one has no session.
    DatedRule {
        name: "Christmas Eve",
        from_year: ALL_FROM,
        to_year: ALL_TO,
        date_in: |y| {
            on_weekdays(
                y,
                12,
                24,
                &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu],
            )
        },
    },
];

/// What a recorded exception does to its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordedKind {
    /// No session.
    Closed,
    /// The session closes at this local time.
    EarlyClose(NaiveTime),
}

/// A day that no rule predicts, recorded with the reason the exchange gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) date: NaiveDate,
    pub(crate) kind: RecordedKind,
    pub(crate) reason: &'static str,
}

const fn closed(y: i32, m: u32, d: u32, reason: &'static str) -> Recorded {
    Recorded {
        date: ymd(y, m, d),
        kind: RecordedKind::Closed,
        reason,
    }
}

const fn early(y: i32, m: u32, d: u32, reason: &'static str) -> Recorded {
    Recorded {
        date: ymd(y, m, d),
        kind: RecordedKind::EarlyClose(EARLY_CLOSE),
        reason,
    }
}

/// Every XNYS exception in range, in date order.
pub(crate) const RECORDED: &[Recorded] = &[
    early(
        1997,
        12,
        26,
        "1 pm close on the Friday after Christmas (exchange decision)",
    ),
    // The NYSE board approved this close in June 1999 to prepare for the year-2000 rollover.
    early(
        1999,
        12,
        31,
        "1 pm close on New Year's Eve 1999 (year-2000 preparation)",
    ),
    closed(2001, 9, 11, "September 11 attacks"),
    closed(2001, 9, 12, "September 11 attacks"),
    closed(2001, 9, 13, "September 11 attacks"),
    closed(2001, 9, 14, "September 11 attacks"),
    early(
        2003,
        12,
        26,
        "1 pm close on the Friday after Christmas (exchange decision)",
    ),
    closed(
        2004,
        6,
        11,
        "national day of mourning for President Ronald Reagan",
    ),
    closed(
        2007,
        1,
        2,
        "national day of mourning for President Gerald Ford",
    ),
    closed(2012, 10, 29, "Hurricane Sandy"),
    closed(2012, 10, 30, "Hurricane Sandy"),
    closed(
        2018,
        12,
        5,
        "national day of mourning for President George H. W. Bush",
    ),
    closed(
        2025,
        1,
        9,
        "national day of mourning for President Jimmy Carter",
    ),
];

/// Classifies one local date by the rules and the recorded exceptions (no overrides).
fn classify(date: NaiveDate) -> RuleDay {
    if is_weekend(date) {
        return RuleDay::Weekend;
    }
    let recorded = RECORDED.iter().find(|r| r.date == date);
    if let Some(r) = recorded
        && r.kind == RecordedKind::Closed
    {
        return RuleDay::Closed {
            reason: r.reason,
            source: Source::Recorded,
        };
    }
    if let Some(rule) = HOLIDAYS.iter().find(|rule| rule.matches(date)) {
        return RuleDay::Closed {
            reason: rule.name,
            source: Source::Rule,
        };
    }
    if let Some(Recorded {
        kind: RecordedKind::EarlyClose(close),
        reason,
        ..
    }) = recorded
    {
        return RuleDay::EarlyClose {
            close: *close,
            reason,
            source: Source::Recorded,
        };
    }
    if let Some(rule) = EARLY_CLOSES.iter().find(|rule| rule.matches(date)) {
        return RuleDay::EarlyClose {
            close: EARLY_CLOSE,
            reason: rule.name,
            source: Source::Rule,
        };
    }
    RuleDay::Regular
}

pub(crate) fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Jan 1, moved to Monday from a Sunday; a Saturday Jan 1 is not observed at all (the Friday
/// before is Dec 31, the last day of the accounting year, which NYSE Rule 7.2 keeps open).
fn new_years_day(year: i32) -> Option<NaiveDate> {
    let day = NaiveDate::from_ymd_opt(year, 1, 1)?;
    match day.weekday() {
        Weekday::Sat => None,
        Weekday::Sun => Some(day + Duration::days(1)),
        _ => Some(day),
    }
}

/// A fixed-date holiday moved to Friday from a Saturday and to Monday from a Sunday.
fn nearest_weekday(day: NaiveDate) -> NaiveDate {
    match day.weekday() {
        Weekday::Sat => day - Duration::days(1),
        Weekday::Sun => day + Duration::days(1),
        _ => day,
    }
}

fn on_weekdays(year: i32, month: u32, day: u32, weekdays: &[Weekday]) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).filter(|d| weekdays.contains(&d.weekday()))
}

fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    // The fifth occurrence exists in some months only; the fourth always does.
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

fn thanksgiving(year: i32) -> Option<NaiveDate> {
    nth_weekday(year, 11, Weekday::Thu, 4)
}

fn good_friday(year: i32) -> Option<NaiveDate> {
    easter_sunday(year).map(|d| d - Duration::days(2))
}

/// Easter Sunday in the Gregorian calendar, by the anonymous Gregorian algorithm
/// (Meeus/Jones/Butcher).
pub(crate) fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    let month = u32::try_from(n / 31).ok()?;
    let day = u32::try_from(n % 31 + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

pub(crate) const fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(date) => date,
        // Only ever evaluated in constants, so a bad literal fails the build, not a run.
        None => panic!("invalid date literal"),
    }
}

pub(crate) const fn hm(h: u32, m: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, m, 0) {
        Some(time) => time,
        None => panic!("invalid time literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Easter by a different method (Oudin, 1940) to cross-check the one in use.
    fn easter_oudin(year: i32) -> NaiveDate {
        let g = year % 19;
        let c = year / 100;
        let h = (c - c / 4 - (8 * c + 13) / 25 + 19 * g + 15) % 30;
        let i = h - (h / 28) * (1 - (29 / (h + 1)) * ((21 - g) / 11));
        let j = (year + year / 4 + i + 2 - c + c / 4) % 7;
        let l = i - j;
        let month = 3 + (l + 40) / 44;
        let day = l + 28 - 31 * (month / 4);
        NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("valid easter")
    }

    #[test]
    fn easter_matches_known_dates_and_a_second_algorithm() {
        for (y, m, d) in [
            (1995, 4, 16),
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2038, 4, 25),
        ] {
            assert_eq!(easter_sunday(y), Some(ymd(y, m, d)), "{y}");
        }
        for y in 1583..=4099 {
            assert_eq!(easter_sunday(y), Some(easter_oudin(y)), "{y}");
        }
    }

    #[test]
    fn holiday_rules_name_the_expected_days() {
        let name = |d: NaiveDate| match classify(d) {
            RuleDay::Closed { reason, .. } => reason,
            other => panic!("{d} is {other:?}"),
        };
        assert_eq!(name(ymd(2024, 1, 15)), "Martin Luther King Jr. Day");
        assert_eq!(name(ymd(2024, 2, 19)), "Washington's Birthday");
        assert_eq!(name(ymd(2024, 5, 27)), "Memorial Day");
        assert_eq!(name(ymd(2021, 5, 31)), "Memorial Day");
        assert_eq!(name(ymd(2024, 9, 2)), "Labor Day");
        assert_eq!(name(ymd(2024, 11, 28)), "Thanksgiving Day");
        assert_eq!(name(ymd(2023, 1, 2)), "New Year's Day");
        assert_eq!(name(ymd(2027, 6, 18)), "Juneteenth");
        assert_eq!(name(ymd(2021, 7, 5)), "Independence Day");
        assert_eq!(name(ymd(2021, 12, 24)), "Christmas Day");
        assert_eq!(
            classify(ymd(1997, 1, 20)),
            RuleDay::Regular,
            "no MLK day before 1998"
        );
        assert!(matches!(classify(ymd(1998, 1, 19)), RuleDay::Closed { .. }));
    }

    #[test]
    fn independence_day_early_close_moved_from_friday_to_wednesday_in_2013() {
        let early = |d: NaiveDate| matches!(classify(d), RuleDay::EarlyClose { .. });
        assert!(early(ymd(2002, 7, 5)));
        assert!(!early(ymd(2002, 7, 3)));
        assert!(early(ymd(1996, 7, 5)));
        assert!(early(ymd(2013, 7, 3)));
        assert!(!early(ymd(2013, 7, 5)));
        assert!(early(ymd(2019, 7, 3)));
        assert!(early(ymd(2008, 7, 3)));
        assert!(early(ymd(2023, 7, 3)));
        assert!(
            !early(ymd(2011, 7, 1)),
            "a Friday before a Monday holiday is full"
        );
    }

    #[test]
    fn recorded_exceptions_are_sorted_weekdays_inside_the_range() {
        assert!(RECORDED.windows(2).all(|w| w[0].date < w[1].date));
        for r in RECORDED {
            assert!((FIRST..=LAST).contains(&r.date), "{}", r.date);
            assert!(!is_weekend(r.date), "{}", r.date);
            let rules_alone = HOLIDAYS.iter().any(|rule| rule.matches(r.date));
            assert!(!rules_alone, "{} is already a rule holiday", r.date);
        }
    }
}
