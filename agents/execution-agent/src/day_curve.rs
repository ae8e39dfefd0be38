//! The day's equity curve: the equity at the last bar of each minute of the exchange day,
//! and the day's peak and deepest fall from it measured on every bar. Logged at the close
//! (`equity_curve`) for the end-of-day report's chart. At most one point a minute, so a day
//! holds at most 1,440 and a bar costs a comparison.

use chrono::{Duration, NaiveDate, Timelike};
use chrono_tz::America::New_York;
use rust_decimal::Decimal;
use vigil_core::Timestamp;

use crate::business::{ExchangeDay, approx_f64};

/// One exchange day's curve.
#[derive(Debug, Default)]
pub(crate) struct DayCurve {
    day: ExchangeDay,
    date: Option<NaiveDate>,
    /// The end of the minute the last point stands for.
    minute_end: Option<Timestamp>,
    /// `HH:MM` (New York) and the equity at the last bar of that minute.
    points: Vec<(Timestamp, Decimal)>,
    peak: f64,
    max_drawdown: f64,
    bars: u64,
}

/// What the curve says at the close.
#[derive(Debug, PartialEq)]
pub(crate) struct CurveLine {
    pub(crate) session: NaiveDate,
    /// `HH:MM=equity`, New York time, oldest first, comma-separated.
    pub(crate) points: String,
    /// The deepest fall from the day's running peak, as a ratio.
    pub(crate) max_drawdown: f64,
    pub(crate) bars: u64,
}

impl DayCurve {
    /// The equity after the bar at `ts`.
    pub(crate) fn on_bar(&mut self, ts: Timestamp, equity: Decimal) {
        if let Some((date, _)) = self.day.roll(ts) {
            *self = Self {
                day: std::mem::take(&mut self.day),
                date: Some(date),
                ..Self::default()
            };
        }
        self.bars += 1;
        match (self.minute_end, self.points.last_mut()) {
            (Some(end), Some(last)) if ts < end => *last = (ts, equity),
            _ => {
                let minute = ts
                    - Duration::seconds(i64::from(ts.second()))
                    - Duration::nanoseconds(i64::from(ts.nanosecond()));
                self.minute_end = Some(minute + Duration::minutes(1));
                self.points.push((ts, equity));
            }
        }
        let e = approx_f64(equity);
        if e > self.peak {
            self.peak = e;
        } else if self.peak > 0.0 {
            self.max_drawdown = self.max_drawdown.max((self.peak - e) / self.peak);
        }
    }

    /// The curve of `session`, when bars of that day were seen.
    pub(crate) fn line(&self, session: NaiveDate) -> Option<CurveLine> {
        if self.date != Some(session) || self.points.is_empty() {
            return None;
        }
        let points = self
            .points
            .iter()
            .map(|(ts, e)| format!("{}={e}", ts.with_timezone(&New_York).format("%H:%M")))
            .collect::<Vec<_>>()
            .join(",");
        Some(CurveLine {
            session,
            points,
            max_drawdown: self.max_drawdown,
            bars: self.bars,
        })
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_testkit::timestamp as t;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn one_point_a_minute_at_its_last_bar_and_the_drawdown_of_every_bar() {
        let mut c = DayCurve::default();
        c.on_bar(t("2024-01-16T14:31:00Z"), dec!(100000));
        c.on_bar(t("2024-01-16T14:31:20Z"), dec!(100500));
        // The deepest point is inside a minute: the points miss it, the drawdown does not.
        c.on_bar(t("2024-01-16T14:31:40Z"), dec!(99495));
        c.on_bar(t("2024-01-16T14:31:59Z"), dec!(100200));
        c.on_bar(t("2024-01-16T14:32:00Z"), dec!(100300.25));
        let line = c.line(date("2024-01-16")).expect("today's curve");
        assert_eq!(line.points, "09:31=100200,09:32=100300.25");
        assert_eq!(line.bars, 5);
        assert!(
            (line.max_drawdown - 0.01).abs() < 1e-12,
            "{}",
            line.max_drawdown
        );
        assert_eq!(c.line(date("2024-01-15")), None, "not another day's");
    }

    #[test]
    fn a_new_exchange_day_starts_a_new_curve() {
        let mut c = DayCurve::default();
        c.on_bar(t("2024-01-16T20:59:00Z"), dec!(100));
        c.on_bar(t("2024-01-16T20:59:30Z"), dec!(90));
        // 00:00 in New York is 05:00Z in January.
        c.on_bar(t("2024-01-17T05:00:00Z"), dec!(95));
        assert_eq!(c.line(date("2024-01-16")), None);
        let line = c.line(date("2024-01-17")).expect("the new day");
        assert_eq!(line.points, "00:00=95");
        assert_eq!(line.bars, 1);
        assert_eq!(line.max_drawdown, 0.0, "the peak starts afresh");
    }
}
