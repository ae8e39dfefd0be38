//! Data completeness: sessions of the exchange calendar for which a symbol delivered no bar.
//!
//! Each bar's session date is compared with the symbol's previous one; every session the
//! calendar holds strictly between the two is missing. After a restart the watch starts from
//! the last bar the previous run handled (the journal's), so bars lost while vigil was down
//! are found at the first new bar. Only whole sessions are checked: a missing minute inside
//! a session is not a gap here.

use chrono::NaiveDate;
use vigil_calendar::{Calendar, CalendarError};
use vigil_core::{Bar, Level, SymbolId, SymbolTable, Timestamp};
use vigil_log::{Event, LogEvent};

use crate::SERVICE;

/// Sessions with no bar, between two bars of one symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The symbol.
    pub symbol: SymbolId,
    /// The session of the bar before the gap.
    pub after: NaiveDate,
    /// The session of the bar after it.
    pub before: NaiveDate,
    /// The sessions that had no bar, oldest first.
    pub missing: Vec<NaiveDate>,
}

/// Finds [`Gap`]s, symbol by symbol.
#[derive(Debug)]
pub struct GapWatch {
    calendar: Calendar,
    /// Per symbol (by id): the session date of the last bar seen.
    last: Vec<Option<NaiveDate>>,
    /// Per symbol: checked at all (off for a symbol on another exchange, or 24-hour markets).
    checked: Vec<bool>,
}

impl GapWatch {
    /// Watches the symbols whose flag in `checked` is set, on `calendar`. `seen_until`: the
    /// last bar the previous run handled, if this run resumes one — bars at or before it are
    /// not compared, the first after it is.
    pub fn new(calendar: Calendar, checked: Vec<bool>, seen_until: Option<Timestamp>) -> Self {
        let start = seen_until.map(|t| session_date(&calendar, t));
        Self {
            last: vec![start; checked.len()],
            checked,
            calendar,
        }
    }

    /// Takes the next accepted bar of `symbol`; returns the sessions missing before it.
    ///
    /// # Errors
    /// When the calendar cannot say (a date outside its range); the symbol is no longer
    /// checked after that, and the caller says so.
    pub fn on_bar(&mut self, symbol: SymbolId, ts: Timestamp) -> Result<Option<Gap>, GapError> {
        let i = symbol.index();
        if !self.checked.get(i).copied().unwrap_or(false) {
            return Ok(None);
        }
        let date = session_date(&self.calendar, ts);
        let Some(prev) = self.last[i] else {
            self.last[i] = Some(date);
            return Ok(None);
        };
        if date <= prev {
            // The same session (intraday bars), or a bar the previous run already handled.
            return Ok(None);
        }
        self.last[i] = Some(date);
        // Consecutive days: nothing can be missing; most bars stop here.
        let (Some(from), Some(to)) = (prev.succ_opt(), date.pred_opt()) else {
            return Ok(None);
        };
        if from > to {
            return Ok(None);
        }
        match self.calendar.sessions(from, to) {
            Ok(sessions) if sessions.is_empty() => Ok(None),
            Ok(sessions) => Ok(Some(Gap {
                symbol,
                after: prev,
                before: date,
                missing: sessions.into_iter().map(|s| s.date).collect(),
            })),
            Err(source) => {
                self.checked[i] = false;
                Err(GapError { symbol, source })
            }
        }
    }
}

/// The gap watch of the Data agent, with its counts: says what to log for each bar.
#[derive(Debug, Default)]
pub(crate) struct Completeness {
    watch: Option<GapWatch>,
    /// Gaps found so far.
    found: u64,
    /// Sessions missing in them.
    missing: u64,
}

impl Completeness {
    /// Checks every accepted bar with `watch`.
    pub(crate) fn set_watch(&mut self, watch: GapWatch) {
        self.watch = Some(watch);
    }

    /// Gaps found so far.
    pub(crate) fn found(&self) -> u64 {
        self.found
    }

    /// Bars (sessions) missing so far.
    pub(crate) fn missing(&self) -> u64 {
        self.missing
    }

    /// Takes an accepted bar of the source named `provider`, stamped `at`: the line to log
    /// when sessions are missing before it (`data_gap`, ERROR, alerted), or when the
    /// calendar cannot say (WARN).
    pub(crate) fn on_bar(
        &mut self,
        bar: &Bar,
        at: Timestamp,
        symbols: &SymbolTable,
        provider: &str,
    ) -> Option<LogEvent> {
        let watch = self.watch.as_mut()?;
        let found = watch.on_bar(bar.symbol, bar.ts);
        let symbol = symbols.shared(bar.symbol);
        match found {
            Ok(None) => None,
            Ok(Some(gap)) => {
                self.found += 1;
                self.missing += gap.missing.len() as u64;
                const SHOWN: usize = 10;
                let mut sessions: Vec<String> = gap
                    .missing
                    .iter()
                    .take(SHOWN)
                    .map(|d| d.to_string())
                    .collect();
                if gap.missing.len() > SHOWN {
                    sessions.push(format!("… {} more", gap.missing.len() - SHOWN));
                }
                Some(
                    LogEvent::new(at, SERVICE, Event::DataGap)
                        .with("symbol", symbol)
                        .with("provider", provider.to_string())
                        .with("after", gap.after.to_string())
                        .with("before", gap.before.to_string())
                        .with("missing", gap.missing.len() as u64)
                        .with("sessions", sessions.join(",")),
                )
            }
            Err(e) => Some(
                LogEvent::new(at, SERVICE, Event::DataGap)
                    .level(Level::Warn)
                    .with("symbol", symbol)
                    .with("provider", provider.to_string())
                    .with("error", e.to_string()),
            ),
        }
    }
}

/// The calendar could not say whether sessions are missing for a symbol.
#[derive(Debug, thiserror::Error)]
#[error("gap check of symbol id {}: {source}; no longer checked", symbol.0)]
pub struct GapError {
    /// The symbol, no longer checked.
    pub symbol: SymbolId,
    /// Why.
    pub source: CalendarError,
}

/// The session a bar belongs to ([`Calendar::bar_date`]).
fn session_date(calendar: &Calendar, ts: Timestamp) -> NaiveDate {
    calendar.bar_date(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_testkit::timestamp as t;

    fn watch(seen_until: Option<Timestamp>) -> GapWatch {
        GapWatch::new(Calendar::xnys(), vec![true, false], seen_until)
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn weekends_and_holidays_are_not_gaps_a_missing_session_is() {
        let mut w = watch(None);
        let s = SymbolId(0);
        // Thu 2024-12-19, Fri 20, (weekend), Mon 23, Tue 24 (early close), (Christmas), Thu 26.
        for day in ["19", "20", "23", "24", "26"] {
            let at = t(&format!("2024-12-{day}T00:00:00Z"));
            assert_eq!(w.on_bar(s, at).expect("in range"), None, "{day}");
        }
        // Fri 27 and Mon 30 are sessions with no bar.
        let gap = w
            .on_bar(s, t("2024-12-31T00:00:00Z"))
            .expect("in range")
            .expect("a gap");
        assert_eq!(gap.after, d("2024-12-26"));
        assert_eq!(gap.before, d("2024-12-31"));
        assert_eq!(gap.missing, vec![d("2024-12-27"), d("2024-12-30")]);
    }

    #[test]
    fn intraday_bars_are_dated_in_the_exchange_s_zone_and_a_lost_session_is_found() {
        let mut w = watch(None);
        let s = SymbolId(0);
        // 14:30Z and 20:59Z on Monday are both Monday's session in New York.
        assert_eq!(w.on_bar(s, t("2024-06-03T14:30:00Z")).expect("ok"), None);
        assert_eq!(w.on_bar(s, t("2024-06-03T20:59:00Z")).expect("ok"), None);
        let gap = w
            .on_bar(s, t("2024-06-05T13:30:00Z"))
            .expect("ok")
            .expect("Tuesday is missing");
        assert_eq!(gap.missing, vec![d("2024-06-04")]);
    }

    #[test]
    fn after_a_restart_the_first_new_bar_is_compared_with_the_last_one_handled() {
        // The previous run handled Wednesday's bar; this one replays from the start.
        let mut w = watch(Some(t("2024-06-05T00:00:00Z")));
        let s = SymbolId(0);
        assert_eq!(w.on_bar(s, t("2024-06-03T00:00:00Z")).expect("ok"), None);
        assert_eq!(w.on_bar(s, t("2024-06-05T00:00:00Z")).expect("ok"), None);
        // The source comes back on Monday: Thursday and Friday were lost.
        let gap = w
            .on_bar(s, t("2024-06-10T00:00:00Z"))
            .expect("ok")
            .expect("a gap");
        assert_eq!(gap.missing, vec![d("2024-06-06"), d("2024-06-07")]);
    }

    #[test]
    fn an_unchecked_symbol_is_never_a_gap_and_the_calendar_s_edge_stops_the_check() {
        let mut w = watch(None);
        assert_eq!(
            w.on_bar(SymbolId(1), t("2024-06-03T00:00:00Z"))
                .expect("ok"),
            None
        );
        assert_eq!(
            w.on_bar(SymbolId(1), t("2024-06-20T00:00:00Z"))
                .expect("ok"),
            None
        );
        let s = SymbolId(0);
        assert_eq!(w.on_bar(s, t("1994-12-01T00:00:00Z")).expect("ok"), None);
        let err = w
            .on_bar(s, t("1995-03-01T00:00:00Z"))
            .expect_err("before the calendar's range");
        assert_eq!(err.symbol, s);
        // No longer checked.
        assert_eq!(w.on_bar(s, t("1995-06-01T00:00:00Z")).expect("ok"), None);
    }

    /// The bundled daily files against the XNYS calendar: GOOG misses no session (it skips
    /// the Hurricane Sandy closure, which the calendar holds as closed).
    #[test]
    fn the_bundled_goog_file_has_no_gap() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/GOOG_1d.csv"
        ))
        .expect("GOOG_1d.csv");
        let mut w = watch(None);
        let mut gaps = Vec::new();
        for line in text.lines().skip(1) {
            let date = line.split(',').next().expect("date column");
            let at = t(&format!("{}T00:00:00Z", &date[..10]));
            if let Some(gap) = w.on_bar(SymbolId(0), at).expect("in range") {
                gaps.push(gap);
            }
        }
        assert_eq!(gaps, Vec::new());
    }
}
