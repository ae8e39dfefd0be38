//! The sensor of the drawdown control line. The Execution agent marks the book bar by bar,
//! so it is the one that sees equity cross the line; the Risk agent decides what to do
//! about it (see `DrawdownReport`). A bar costs a conversion to `f64` and two comparisons
//! (about 40 instructions); the exact amounts decide only within a hair of the line.

use rust_decimal::Decimal;
use vigil_core::Timestamp;
use vigil_messages::NextReport;

use crate::business::{ExchangeDay, approx_f64};

/// How close to the line, relative, an `f64` comparison is not trusted to decide.
const MARGIN: f64 = 1e-9;

/// When the next report is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// At the first bar beyond the line.
    Armed,
    /// At the first bar beyond the line at or after this market time.
    NotBefore(Timestamp),
    /// Not until re-armed.
    Quiet,
}

/// Watches equity against the control line.
#[derive(Debug)]
pub(crate) struct DrawdownWatch {
    line: Decimal,
    arming: u64,
    /// The highest equity since the line was armed (zero before the first bar).
    peak: Decimal,
    /// `peak` and `peak × (1 − line)` (below it, beyond the line) as statistics, to pass
    /// the common bar quickly.
    peak_f: f64,
    floor_f: f64,
    due: Due,
    day: ExchangeDay,
    /// Equity when the exchange day began: after the previous day's last bar.
    day_open: Decimal,
    /// Equity after the latest bar.
    last: Decimal,
}

/// The figures of a report, before the positions are added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Breach {
    pub(crate) arming: u64,
    pub(crate) peak: Decimal,
    pub(crate) drawdown: Decimal,
    pub(crate) day_pnl: Decimal,
}

impl DrawdownWatch {
    /// Watches a fall of `line` (a fraction) from the equity peak.
    pub(crate) fn new(line: Decimal) -> Self {
        Self {
            line,
            arming: 0,
            peak: Decimal::ZERO,
            peak_f: 0.0,
            floor_f: 0.0,
            due: Due::Armed,
            day: ExchangeDay::default(),
            day_open: Decimal::ZERO,
            last: Decimal::ZERO,
        }
    }

    fn set_peak(&mut self, equity: Decimal, e: f64) {
        self.peak = equity;
        self.peak_f = e;
        self.floor_f = e * (1.0 - approx_f64(self.line));
    }

    /// After the bar at `ts` left equity at `equity`: the breach, when a report is due.
    pub(crate) fn on_bar(&mut self, ts: Timestamp, equity: Decimal) -> Option<Breach> {
        if let Some((_, first)) = self.day.roll(ts) {
            self.day_open = if first { equity } else { self.last };
        }
        self.last = equity;
        let e = approx_f64(equity);
        if e > self.peak_f {
            self.set_peak(equity, e);
            return None;
        }
        if e >= self.floor_f * (1.0 + MARGIN) || equity >= self.peak * (Decimal::ONE - self.line) {
            return None;
        }
        let due = match self.due {
            Due::Armed => true,
            Due::NotBefore(t) => ts >= t,
            Due::Quiet => false,
        };
        due.then(|| Breach {
            arming: self.arming,
            peak: self.peak,
            drawdown: (self.peak - equity) / self.peak,
            day_pnl: equity - self.day_open,
        })
    }

    /// The Risk agent answered a report.
    pub(crate) fn answered(&mut self, next: NextReport) {
        self.due = match next {
            NextReport::NotBefore(t) => Due::NotBefore(t),
            NextReport::AfterRearm => Due::Quiet,
        };
    }

    /// Measures afresh from `equity`, under `arming`.
    pub(crate) fn rearm(&mut self, arming: u64, equity: Decimal) {
        self.arming = arming;
        self.set_peak(equity, approx_f64(equity));
        self.due = Due::Armed;
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_testkit::timestamp as t;

    use super::*;

    fn at(h: u32) -> Timestamp {
        t(&format!("2024-01-02T{h:02}:00:00Z"))
    }

    #[test]
    fn a_report_is_due_at_the_first_bar_beyond_the_line_then_as_answered() {
        let mut w = DrawdownWatch::new(dec!(0.10));
        assert_eq!(
            w.on_bar(at(14), dec!(100000)),
            None,
            "the first bar is the peak"
        );
        assert_eq!(w.on_bar(at(15), dec!(120000)), None, "a new peak");
        assert_eq!(
            w.on_bar(at(16), dec!(108000)),
            None,
            "exactly 10% is on the line"
        );
        let b = w.on_bar(at(17), dec!(107999)).expect("beyond the line");
        assert_eq!(b.peak, dec!(120000));
        assert_eq!(b.drawdown, (dec!(120000) - dec!(107999)) / dec!(120000));
        assert_eq!(b.day_pnl, dec!(7999), "since the day's first bar (100000)");

        w.answered(NextReport::NotBefore(at(20)));
        assert_eq!(w.on_bar(at(18), dec!(100000)), None, "not before 20:00");
        assert!(
            w.on_bar(at(20), dec!(100000)).is_some(),
            "due again at 20:00"
        );
        w.answered(NextReport::AfterRearm);
        assert_eq!(w.on_bar(at(21), dec!(90000)), None, "quiet until re-armed");

        w.rearm(1, dec!(90000));
        assert_eq!(
            w.on_bar(at(22), dec!(81001)),
            None,
            "9.99% below the new peak"
        );
        let b = w
            .on_bar(at(23), dec!(80000))
            .expect("beyond the re-armed line");
        assert_eq!((b.arming, b.peak), (1, dec!(90000)));
    }

    #[test]
    fn with_daily_bars_today_s_pnl_runs_from_yesterday_s_close() {
        let mut w = DrawdownWatch::new(dec!(0.10));
        w.on_bar(t("2024-01-02T00:00:00Z"), dec!(100000));
        let b = w
            .on_bar(t("2024-01-03T00:00:00Z"), dec!(85000))
            .expect("beyond");
        assert_eq!(b.day_pnl, dec!(-15000));
    }
}
