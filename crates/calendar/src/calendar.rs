//! The calendar: sessions of an exchange, with overrides on top of its rules.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::error::{CalendarError, Issue};
use crate::overrides::CalendarOverrides;
use crate::xnys;

/// One trading session: a local date and its open and close instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Session {
    /// The exchange-local date of the session.
    pub date: NaiveDate,
    /// When trading opens.
    pub open: DateTime<Utc>,
    /// When trading closes.
    pub close: DateTime<Utc>,
    /// Whether the session closes before the regular close.
    pub early_close: bool,
}

/// What kind of day a date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// A full session.
    Regular,
    /// A session that closes early.
    EarlyClose,
    /// No session.
    Closed,
}

/// Where the answer about a day comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A rule computed for every year (weekends, holidays, regular early closes).
    Rule,
    /// A one-off the exchange decided and this crate records (a closure, an early close).
    Recorded,
    /// A [`CalendarOverrides`] entry given by the operator.
    Override,
}

impl Source {
    /// Returns the name used in text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rule => "rule",
            Source::Recorded => "recorded exception",
            Source::Override => "override",
        }
    }
}

/// Why a date is open, open until early, or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The local date explained.
    pub date: NaiveDate,
    /// What kind of day it is.
    pub status: DayStatus,
    /// The local open and close times when there is a session.
    pub hours: Option<(NaiveTime, NaiveTime)>,
    /// The rule name or the recorded or override reason (`"regular session"` on an
    /// ordinary day, `"weekend"` on Saturdays and Sundays).
    pub reason: String,
    /// Where the reason comes from.
    pub source: Source,
    /// The short label of the exchange's time zone (`ET`).
    pub zone_label: &'static str,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = self.date;
        let reason = &self.reason;
        let source = self.source.as_str();
        let zone = self.zone_label;
        match (self.status, self.hours) {
            (DayStatus::Closed, _) | (_, None) => write!(f, "{date} closed: {reason} ({source})"),
            (DayStatus::EarlyClose, Some((open, close))) => write!(
                f,
                "{date} early close: open {}-{} {zone}: {reason} ({source})",
                open.format("%H:%M"),
                close.format("%H:%M"),
            ),
            (DayStatus::Regular, Some((open, close))) => write!(
                f,
                "{date} open {}-{} {zone}: {reason} ({source})",
                open.format("%H:%M"),
                close.format("%H:%M"),
            ),
        }
    }
}

/// What an exchange's rules (and recorded exceptions) say about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleDay {
    Weekend,
    Closed {
        reason: &'static str,
        source: Source,
    },
    EarlyClose {
        close: NaiveTime,
        reason: &'static str,
        source: Source,
    },
    Regular,
}

/// The fixed facts about an exchange and the function that applies its rules.
#[derive(Debug)]
pub(crate) struct ExchangeSpec {
    pub(crate) name: &'static str,
    pub(crate) zone: Tz,
    pub(crate) zone_label: &'static str,
    pub(crate) open: NaiveTime,
    pub(crate) close: NaiveTime,
    pub(crate) first: NaiveDate,
    pub(crate) last: NaiveDate,
    pub(crate) classify: fn(NaiveDate) -> RuleDay,
}

/// An operator's change to one day.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Override {
    Closed { reason: String },
    EarlyClose { close: NaiveTime, reason: String },
}

/// The final word on one day: rules, recorded exceptions and overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Day<'a> {
    Closed {
        reason: &'a str,
        source: Source,
    },
    Open {
        close: NaiveTime,
        early: Option<(&'a str, Source)>,
    },
}

/// An exchange calendar: which local dates have a session, and when each opens and closes.
///
/// Built from rules (see [`Calendar::xnys`]) with optional operator overrides on top. Every
/// question about a date outside the calendar's range is an error, never a guess.
#[derive(Debug, Clone)]
pub struct Calendar {
    spec: &'static ExchangeSpec,
    overrides: BTreeMap<NaiveDate, Override>,
}

impl Calendar {
    /// Returns the New York Stock Exchange calendar (MIC `XNYS`), valid 1995-01-01 through
    /// 2035-12-31: regular session 09:30–16:00 America/New_York, early closes at 13:00.
    ///
    /// What is **rule-based** (computed for every year in range, no table of dates):
    ///
    /// | rule | date | observance | years |
    /// | --- | --- | --- | --- |
    /// | New Year's Day | Jan 1 | Sunday → Monday; Saturday → not observed (NYSE Rule 7.2: Dec 31 ends an accounting year, so the Friday stays open) | all |
    /// | Martin Luther King Jr. Day | 3rd Monday of January | — | 1998 on |
    /// | Washington's Birthday | 3rd Monday of February | — | all |
    /// | Good Friday | Easter Sunday − 2 days | — | all |
    /// | Memorial Day | last Monday of May | — | all |
    /// | Juneteenth | Jun 19 | Saturday → Friday, Sunday → Monday | 2022 on |
    /// | Independence Day | Jul 4 | Saturday → Friday, Sunday → Monday | all |
    /// | Labor Day | 1st Monday of September | — | all |
    /// | Thanksgiving Day | 4th Thursday of November | — | all |
    /// | Christmas Day | Dec 25 | Saturday → Friday, Sunday → Monday | all |
    ///
    /// Early closes at 13:00 ET, also rule-based:
    ///
    /// | rule | date | years |
    /// | --- | --- | --- |
    /// | day before Independence Day | Jul 3 when a Monday, Tuesday or Thursday | all |
    /// | day before Independence Day | Jul 3 when a Wednesday | 2013 on |
    /// | day after Independence Day | Jul 5 when a Friday (instead of Wednesday Jul 3) | until 2012 |
    /// | day after Thanksgiving | Thanksgiving + 1 day | all (1 pm closes since 1993) |
    /// | Christmas Eve | Dec 24 when Monday–Thursday (a Friday Dec 24 is the observed Christmas holiday) | all |
    ///
    /// Everything else is a **recorded exception**, each with the reason [`Calendar::explain`]
    /// gives:
    ///
    /// | date | day | reason |
    /// | --- | --- | --- |
    /// | 1997-12-26 | 13:00 close | Friday after Christmas (exchange decision) |
    /// | 1999-12-31 | 13:00 close | New Year's Eve 1999 (year-2000 preparation) |
    /// | 2001-09-11 ..= 2001-09-14 | closed | September 11 attacks |
    /// | 2003-12-26 | 13:00 close | Friday after Christmas (exchange decision) |
    /// | 2004-06-11 | closed | national day of mourning, President Reagan |
    /// | 2007-01-02 | closed | national day of mourning, President Ford |
    /// | 2012-10-29, 2012-10-30 | closed | Hurricane Sandy |
    /// | 2018-12-05 | closed | national day of mourning, President George H. W. Bush |
    /// | 2025-01-09 | closed | national day of mourning, President Carter |
    ///
    /// The other Thursday-Christmas years (2008, 2014, 2025) had a full session on Friday
    /// Dec 26. Future one-offs (a day of mourning, a storm) go in [`CalendarOverrides`].
    ///
    /// Deliberately not modelled, being intraday disruptions rather than scheduled closes: the
    /// 1995-12-18 late open (systems), the 1996-01-08 snowstorm session (11:00–14:00), the
    /// 1997-10-27 circuit-breaker halt (15:30), the moment-of-silence delays of a few minutes
    /// (2001-09-17, 2001-10-08, 2003-03-20, 2004-06-07, 2006-12-27), the 2002-09-11 noon open
    /// and the 2005-06-01 15:56 close.
    pub fn xnys() -> Self {
        Self {
            spec: &xnys::XNYS,
            overrides: BTreeMap::new(),
        }
    }

    /// Returns the exchange's MIC (`XNYS`).
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Returns the exchange's time zone.
    pub fn time_zone(&self) -> Tz {
        self.spec.zone
    }

    /// Returns the short label of the exchange's time zone used in text output (`ET`).
    pub fn zone_label(&self) -> &'static str {
        self.spec.zone_label
    }

    /// Returns the first local date the calendar covers.
    pub fn first_date(&self) -> NaiveDate {
        self.spec.first
    }

    /// Returns the last local date the calendar covers.
    pub fn last_date(&self) -> NaiveDate {
        self.spec.last
    }

    /// Returns the exchange-local date of an instant (what "today" means at the exchange).
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.spec.zone).date_naive()
    }

    /// Lists every problem that would stop `overrides` from applying to this calendar, each
    /// keyed by its place in the overrides (`closures[0].date`); empty when they apply.
    pub fn override_issues(&self, overrides: &CalendarOverrides) -> Vec<Issue> {
        let mut issues = Vec::new();
        let mut seen: BTreeMap<NaiveDate, String> = BTreeMap::new();
        let mut check_date = |key: String, date: NaiveDate, issues: &mut Vec<Issue>| {
            if !(self.spec.first..=self.spec.last).contains(&date) {
                issues.push(Issue::new(
                    format!("{key}.date"),
                    format!(
                        "{date} is outside the calendar's range {} ..= {}",
                        self.spec.first, self.spec.last
                    ),
                ));
                return None;
            }
            if let Some(first) = seen.get(&date) {
                issues.push(Issue::new(
                    format!("{key}.date"),
                    format!("{date} is already overridden by {first}"),
                ));
                return None;
            }
            seen.insert(date, key.clone());
            Some((self.spec.classify)(date))
        };
        for (i, c) in overrides.closures.iter().enumerate() {
            let key = format!("closures[{i}]");
            if c.reason.trim().is_empty() {
                issues.push(Issue::new(format!("{key}.reason"), "must not be empty"));
            }
            if let Some(RuleDay::Weekend) = check_date(key.clone(), c.date, &mut issues) {
                issues.push(Issue::new(
                    format!("{key}.date"),
                    format!("{} is a weekend: there is no session to close", c.date),
                ));
            }
        }
        for (i, e) in overrides.early_closes.iter().enumerate() {
            let key = format!("early_closes[{i}]");
            if e.reason.trim().is_empty() {
                issues.push(Issue::new(format!("{key}.reason"), "must not be empty"));
            }
            match check_date(key.clone(), e.date, &mut issues) {
                Some(RuleDay::Weekend) => issues.push(Issue::new(
                    format!("{key}.date"),
                    format!(
                        "{} is a weekend: there is no session to close early",
                        e.date
                    ),
                )),
                Some(RuleDay::Closed { reason, .. }) => issues.push(Issue::new(
                    format!("{key}.date"),
                    format!(
                        "{} has no session ({reason}): nothing to close early",
                        e.date
                    ),
                )),
                _ => {}
            }
            if e.close <= self.spec.open || e.close >= self.spec.close {
                issues.push(Issue::new(
                    format!("{key}.close"),
                    format!(
                        "{} must lie strictly between the open {} and the regular close {}",
                        e.close.format("%H:%M"),
                        self.spec.open.format("%H:%M"),
                        self.spec.close.format("%H:%M"),
                    ),
                ));
            }
        }
        issues
    }

    /// Returns a new calendar: this exchange's rules with `overrides` on top. Overrides
    /// already applied to `self` are replaced, not merged. A closure may repeat a holiday
    /// (its reason then wins); an early close may shorten any session.
    ///
    /// # Errors
    /// [`CalendarError::InvalidOverrides`] listing every problem: a date outside the range, a
    /// date given twice, a closure on a weekend, an early close on a day without a session,
    /// a close time not strictly inside the regular session, an empty reason.
    pub fn with_overrides(&self, overrides: &CalendarOverrides) -> Result<Self, CalendarError> {
        let issues = self.override_issues(overrides);
        if !issues.is_empty() {
            return Err(CalendarError::InvalidOverrides { issues });
        }
        let mut map = BTreeMap::new();
        for c in &overrides.closures {
            map.insert(
                c.date,
                Override::Closed {
                    reason: c.reason.clone(),
                },
            );
        }
        for e in &overrides.early_closes {
            map.insert(
                e.date,
                Override::EarlyClose {
                    close: e.close,
                    reason: e.reason.clone(),
                },
            );
        }
        Ok(Self {
            spec: self.spec,
            overrides: map,
        })
    }

    pub(crate) fn check_range(&self, date: NaiveDate) -> Result<(), CalendarError> {
        if (self.spec.first..=self.spec.last).contains(&date) {
            Ok(())
        } else {
            Err(CalendarError::OutOfRange {
                date,
                from: self.spec.first,
                to: self.spec.last,
            })
        }
    }

    fn check_span(&self, from: NaiveDate, to: NaiveDate) -> Result<(), CalendarError> {
        self.check_range(from)?;
        self.check_range(to)?;
        if from > to {
            return Err(CalendarError::InvertedRange { from, to });
        }
        Ok(())
    }

    fn day(&self, date: NaiveDate) -> Result<Day<'_>, CalendarError> {
        self.check_range(date)?;
        if let Some(o) = self.overrides.get(&date) {
            return Ok(match o {
                Override::Closed { reason } => Day::Closed {
                    reason,
                    source: Source::Override,
                },
                Override::EarlyClose { close, reason } => Day::Open {
                    close: *close,
                    early: Some((reason, Source::Override)),
                },
            });
        }
        Ok(match (self.spec.classify)(date) {
            RuleDay::Weekend => Day::Closed {
                reason: "weekend",
                source: Source::Rule,
            },
            RuleDay::Closed { reason, source } => Day::Closed { reason, source },
            RuleDay::EarlyClose {
                close,
                reason,
                source,
            } => Day::Open {
                close,
                early: Some((reason, source)),
            },
            RuleDay::Regular => Day::Open {
                close: self.spec.close,
                early: None,
            },
        })
    }

    fn instant(&self, date: NaiveDate, time: NaiveTime) -> Result<DateTime<Utc>, CalendarError> {
        // Sessions lie far from the 02:00 DST switch; an override could not reach it either
        // (its close must be inside the session), so this only fails on a broken spec.
        self.spec
            .zone
            .from_local_datetime(&date.and_time(time))
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or(CalendarError::LocalTime {
                date,
                time,
                zone: self.spec.zone.name(),
            })
    }

    /// Returns the session on a local date, or `None` when the exchange is closed that day.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the date is outside the calendar's range.
    pub fn session(&self, date: NaiveDate) -> Result<Option<Session>, CalendarError> {
        match self.day(date)? {
            Day::Closed { .. } => Ok(None),
            Day::Open { close, early } => Ok(Some(Session {
                date,
                open: self.instant(date, self.spec.open)?,
                close: self.instant(date, close)?,
                early_close: early.is_some(),
            })),
        }
    }

    /// Tells whether the exchange has a session on a local date.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the date is outside the calendar's range.
    pub fn is_trading_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        Ok(matches!(self.day(date)?, Day::Open { .. }))
    }

    /// Returns every session from `from` through `to` (local dates, both included).
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when either end is outside the calendar's range,
    /// [`CalendarError::InvertedRange`] when `from` is after `to`.
    pub fn sessions(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Session>, CalendarError> {
        self.check_span(from, to)?;
        let mut out = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            if let Some(s) = self.session(date)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Renders [`Calendar::sessions`] as CSV: the header `date,open,close,early_close`, then
    /// one row per session with the open and close as local `HH:MM` and `true` or `false`,
    /// each line ending in `\n`. Other tools read this format: it does not change.
    ///
    /// # Errors
    /// As [`Calendar::sessions`].
    pub fn sessions_csv(&self, from: NaiveDate, to: NaiveDate) -> Result<String, CalendarError> {
        let zone = self.spec.zone;
        let mut out = String::from("date,open,close,early_close\n");
        for s in self.sessions(from, to)? {
            out.push_str(&format!(
                "{},{},{},{}\n",
                s.date,
                s.open.with_timezone(&zone).format("%H:%M"),
                s.close.with_timezone(&zone).format("%H:%M"),
                s.early_close,
            ));
        }
        Ok(out)
    }

    /// Tells whether the exchange is in session at an instant (open included, close
    /// excluded).
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the instant's local date is outside the range.
    pub fn is_open(&self, at: DateTime<Utc>) -> Result<bool, CalendarError> {
        Ok(self
            .session(self.local_date(at))?
            .is_some_and(|s| s.open <= at && at < s.close))
    }

    /// Returns the first session, starting on the local date of `at`, that satisfies `pick`;
    /// `None` when the range ends first.
    fn find_session(
        &self,
        at: DateTime<Utc>,
        pick: impl Fn(&Session) -> bool,
    ) -> Result<Option<Session>, CalendarError> {
        let start = self.local_date(at);
        self.check_range(start)?;
        for date in start.iter_days().take_while(|d| *d <= self.spec.last) {
            if let Some(s) = self.session(date)?
                && pick(&s)
            {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Returns the next session open strictly after `at`; `None` when no session opens
    /// after `at` before the end of the calendar's range.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the local date of `at` is outside the range.
    pub fn next_open(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, CalendarError> {
        Ok(self.find_session(at, |s| s.open > at)?.map(|s| s.open))
    }

    /// Returns the next session close strictly after `at`: the close of the current session
    /// when the exchange is open, else the close of the next session; `None` when the
    /// calendar's range ends first.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the local date of `at` is outside the range.
    pub fn next_close(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, CalendarError> {
        Ok(self.find_session(at, |s| s.close > at)?.map(|s| s.close))
    }

    /// Says why a local date is a regular session, an early close or closed: the rule's
    /// name, the recorded exception's reason or the override's reason.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when the date is outside the calendar's range.
    pub fn explain(&self, date: NaiveDate) -> Result<Explanation, CalendarError> {
        let zone_label = self.spec.zone_label;
        Ok(match self.day(date)? {
            Day::Closed { reason, source } => Explanation {
                date,
                status: DayStatus::Closed,
                hours: None,
                reason: reason.to_owned(),
                source,
                zone_label,
            },
            Day::Open { close, early } => {
                let (status, reason, source) = match early {
                    Some((reason, source)) => (DayStatus::EarlyClose, reason, source),
                    None => (DayStatus::Regular, "regular session", Source::Rule),
                };
                Explanation {
                    date,
                    status,
                    hours: Some((self.spec.open, close)),
                    reason: reason.to_owned(),
                    source,
                    zone_label,
                }
            }
        })
    }

    /// Returns the local date one day before `date`, clamped to the calendar's first date.
    pub(crate) fn day_before_clamped(&self, date: NaiveDate) -> NaiveDate {
        (date - Duration::days(1)).max(self.spec.first)
    }
}

#[cfg(test)]
mod tests {
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
}
