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

    /// The date of the session a bar belongs to: a bar stamped at midnight UTC is a daily bar
    /// dated by its UTC date (the convention of daily data); any other is dated in the
    /// exchange's time zone ([`Self::local_date`]).
    pub fn bar_date(&self, at: DateTime<Utc>) -> NaiveDate {
        if at.time() == chrono::NaiveTime::MIN {
            at.date_naive()
        } else {
            self.local_date(at)
        }
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
mod tests;
