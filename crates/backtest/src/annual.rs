//! How many bars a year: what annualises a per-bar return or Sharpe ratio. An exchange
//! counts only its sessions (XNYS: about 252 a year of 6.5 hours, fewer in a year of
//! closures), a 24/7 market every hour of 365.25 days; `sqrt(252)` for minute bars, or
//! `sqrt(365)` for a stock's daily bars, would misstate every ratio.

use chrono::{Datelike, Duration, NaiveDate};
use vigil_calendar::{Calendar, CalendarError};

/// Where the instrument trades.
#[derive(Clone, Copy, Debug)]
pub enum Market<'a> {
    /// On an exchange, in its sessions.
    Exchange(&'a Calendar),
    /// Every hour of every day (crypto).
    AllDay,
}

/// Why the bars a year cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum AnnualError {
    /// The bar interval is zero or negative.
    #[error("the bar interval must be positive, got {0} s")]
    Interval(i64),
    /// The first date is after the last.
    #[error("the data runs from {from} to {to}: the first date is after the last")]
    Dates {
        /// The first bar's date.
        from: NaiveDate,
        /// The last bar's date.
        to: NaiveDate,
    },
    /// The calendar does not cover the data's years.
    #[error("the exchange calendar: {0}")]
    Calendar(#[from] CalendarError),
    /// No session in the data's years.
    #[error("the exchange calendar has no session from {from} to {to}")]
    NoSession {
        /// First day of the first year.
        from: NaiveDate,
        /// Last day of the last year.
        to: NaiveDate,
    },
}

/// Bars of length `interval` a year, for data from `from` to `to` on `market`.
///
/// On an exchange: the sessions a year, averaged over the whole calendar years the data
/// touches, times the bars a session holds (its length over the interval, whole bars,
/// averaged over those sessions, early closes included); a bar of a day or longer counts
/// one per session. All day: 365.25 days over the interval.
///
/// # Errors
/// A non-positive interval, dates out of order, or years the calendar does not cover.
pub fn periods_per_year(
    market: Market<'_>,
    interval: Duration,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<f64, AnnualError> {
    let secs = interval.num_seconds();
    if secs <= 0 {
        return Err(AnnualError::Interval(secs));
    }
    if from > to {
        return Err(AnnualError::Dates { from, to });
    }
    let calendar = match market {
        Market::AllDay => return Ok(365.25 * 86_400.0 / secs as f64),
        Market::Exchange(calendar) => calendar,
    };
    let first = NaiveDate::from_ymd_opt(from.year(), 1, 1).unwrap_or(from);
    let last = NaiveDate::from_ymd_opt(to.year(), 12, 31).unwrap_or(to);
    let sessions = calendar.sessions(first, last)?;
    if sessions.is_empty() {
        return Err(AnnualError::NoSession {
            from: first,
            to: last,
        });
    }
    let years = f64::from(to.year() - from.year() + 1);
    let per_year = sessions.len() as f64 / years;
    if secs >= 86_400 {
        return Ok(per_year);
    }
    let bars: i64 = sessions
        .iter()
        .map(|s| (s.close - s.open).num_seconds() / secs)
        .sum();
    Ok(per_year * bars as f64 / sessions.len() as f64)
}

#[cfg(test)]
mod tests;
