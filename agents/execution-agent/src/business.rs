//! Business metrics on the market clock: daily and weekly drawdown, the exposure a single
//! trade adds, and trading frequency against its rolling mean. Evaluated in band, bar by
//! bar, so a replay raises the same events at the same market times on every run.

use std::collections::VecDeque;

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use vigil_config::RuleConfig;
use vigil_core::{RuleMetric, Timestamp};
use vigil_messages::BusinessFigures;
use vigil_monitoring::{MetricId, RuleEngine, Transition};

/// The metrics this module measures, in the catalogue's order (see
/// [`vigil_core::RuleMetric`]).
const BUSINESS_METRICS: [RuleMetric; 4] = [
    RuleMetric::DailyDrawdown,
    RuleMetric::WeeklyDrawdown,
    RuleMetric::TradeExposure,
    RuleMetric::TradeFrequencyDeviation,
];

/// Indexes into [`BUSINESS_METRICS`].
const DAILY: usize = 0;
const WEEKLY: usize = 1;
const EXPOSURE: usize = 2;
const FREQUENCY: usize = 3;

/// Above this the frequency deviation is reported as this (a day without trades against
/// a busy mean).
const DEVIATION_CAP: f64 = 1_000.0;

/// The watcher. Costs a few floating-point operations per bar; the rules see a drawdown
/// only when it changes.
#[derive(Debug)]
pub(crate) struct BusinessWatch {
    engine: RuleEngine,
    /// The four metrics, resolved once (the per-bar path compares no names).
    ids: [Option<MetricId>; 4],
    day: ExchangeDay,
    week: Option<(i32, u32)>,
    /// Equity peaks as statistics (f64): drawdown is a ratio, never an amount of money.
    day_peak: f64,
    week_peak: f64,
    day_open: Decimal,
    daily_drawdown: f64,
    weekly_drawdown: f64,
    max_trade_exposure: f64,
    trades_today: u64,
    past_days: VecDeque<u64>,
    window: usize,
    equity: Decimal,
    /// A fill was judged since the last bar: its size is a moment, not a state, so the
    /// next bar clears it.
    trade_seen: bool,
}

impl BusinessWatch {
    pub(crate) fn new(rules: &[RuleConfig], window_days: u32) -> Self {
        let engine = RuleEngine::for_agent(rules, vigil_core::AgentId::Execution);
        let ids = BUSINESS_METRICS.map(|m| engine.metric(m.name()));
        Self {
            engine,
            ids,
            day: ExchangeDay::default(),
            week: None,
            day_peak: 0.0,
            week_peak: 0.0,
            day_open: Decimal::ZERO,
            daily_drawdown: 0.0,
            weekly_drawdown: 0.0,
            max_trade_exposure: 0.0,
            trades_today: 0,
            past_days: VecDeque::new(),
            window: window_days.max(1) as usize,
            equity: Decimal::ZERO,
            trade_seen: false,
        }
    }

    fn observe(&mut self, ts: Timestamp, metric: usize, value: f64, out: &mut Vec<Transition>) {
        if let Some(id) = self.ids[metric] {
            self.engine.observe_id(ts, id, "", value, out);
        }
    }

    fn mean_trades(&self) -> Option<f64> {
        (!self.past_days.is_empty())
            .then(|| self.past_days.iter().sum::<u64>() as f64 / self.past_days.len() as f64)
    }

    /// Closes the day: compares its trade count with the rolling mean, then starts `date`.
    fn roll_day(
        &mut self,
        ts: Timestamp,
        date: NaiveDate,
        first: bool,
        equity: Decimal,
        out: &mut Vec<Transition>,
    ) {
        if !first {
            // Judged only once the strategy normally trades at least once a day: a
            // strategy that trades monthly has no meaningful daily frequency.
            if let Some(mean) = self.mean_trades().filter(|m| *m >= 1.0) {
                let today = self.trades_today as f64;
                let deviation = if today == 0.0 {
                    DEVIATION_CAP
                } else {
                    (today / mean).max(mean / today).min(DEVIATION_CAP)
                };
                self.observe(ts, FREQUENCY, deviation, out);
            }
            self.past_days.push_back(self.trades_today);
            if self.past_days.len() > self.window {
                self.past_days.pop_front();
            }
        }
        let week = (date.iso_week().year(), date.iso_week().week());
        let e = approx_f64(equity);
        if self.week != Some(week) {
            self.week = Some(week);
            self.week_peak = e;
        }
        self.day_peak = e;
        self.trades_today = 0;
        self.max_trade_exposure = 0.0;
    }

    /// Marks equity after a bar at `ts`.
    pub(crate) fn on_bar(&mut self, ts: Timestamp, equity: Decimal, out: &mut Vec<Transition>) {
        let before = std::mem::replace(&mut self.equity, equity);
        if std::mem::take(&mut self.trade_seen) {
            self.observe(ts, EXPOSURE, 0.0, out);
        }
        if let Some((date, first)) = self.day.roll(ts) {
            self.roll_day(ts, date, first, equity, out);
            // Today's P&L runs from the previous day's last bar (with daily bars, from
            // yesterday's close).
            self.day_open = if first { equity } else { before };
        }
        let e = approx_f64(equity);
        if e >= self.day_peak {
            self.day_peak = e;
        }
        if e >= self.week_peak {
            self.week_peak = e;
        }
        let daily = drawdown(self.day_peak, e);
        let weekly = drawdown(self.week_peak, e);
        // At a peak nothing changes and nothing is evaluated: the common case costs two
        // comparisons.
        if daily != self.daily_drawdown || weekly != self.weekly_drawdown {
            self.daily_drawdown = daily;
            self.weekly_drawdown = weekly;
            self.observe(ts, DAILY, daily, out);
            self.observe(ts, WEEKLY, weekly, out);
        }
    }

    /// A fill moved a position from `before` to `after` at `price`, with `equity` before
    /// it. Only the exposure it adds counts: reducing a position is never a risk.
    pub(crate) fn on_fill(
        &mut self,
        ts: Timestamp,
        before: Decimal,
        after: Decimal,
        price: Decimal,
        equity: Decimal,
        out: &mut Vec<Transition>,
    ) {
        self.trades_today += 1;
        if equity <= Decimal::ZERO {
            return;
        }
        let added = (after.abs() - before.abs()).max(Decimal::ZERO) * price;
        let ratio = (added / equity).to_f64().unwrap_or(f64::NAN);
        self.max_trade_exposure = self.max_trade_exposure.max(ratio);
        self.trade_seen = true;
        self.observe(ts, EXPOSURE, ratio, out);
    }

    /// The figures for the heartbeat.
    pub(crate) fn figures(&self) -> BusinessFigures {
        BusinessFigures {
            daily_drawdown: self.daily_drawdown,
            weekly_drawdown: self.weekly_drawdown,
            max_trade_exposure: self.max_trade_exposure,
            trades_today: self.trades_today,
            trades_per_day_mean: self.mean_trades(),
            day_pnl: self.equity - self.day_open,
        }
    }
}

/// The exchange (New York) day a bar belongs to, with the instant the day ends cached: a
/// bar costs one comparison.
#[derive(Debug, Default)]
pub(crate) struct ExchangeDay(Option<(NaiveDate, Timestamp)>);

impl ExchangeDay {
    /// When `ts` begins a new exchange day: its date, and whether it is the first day seen.
    pub(crate) fn roll(&mut self, ts: Timestamp) -> Option<(NaiveDate, bool)> {
        if self.0.is_some_and(|(_, end)| ts < end) {
            return None;
        }
        let first = self.0.is_none();
        let date = ts.with_timezone(&New_York).date_naive();
        let next_midnight = date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| New_York.from_local_datetime(&d).earliest())
            .map_or(ts + Duration::days(1), |d| d.with_timezone(&chrono::Utc));
        self.0 = Some((date, next_midnight));
        Some((date, first))
    }
}

/// Fall from `peak` to `equity`, as a ratio of the peak (0 at or above it).
fn drawdown(peak: f64, equity: f64) -> f64 {
    if peak <= 0.0 || equity >= peak {
        return 0.0;
    }
    (peak - equity) / peak
}

/// `d` as an `f64` for statistics: mantissa over a power of ten, about 20 instructions
/// where `Decimal::to_f64` takes about 500 (measured with callgrind on the pipeline
/// benchmark). Relative error about 1e-16, far below any threshold's precision.
pub(crate) fn approx_f64(d: Decimal) -> f64 {
    const POW10: [f64; 29] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
    ];
    // The scale of a Decimal is at most 28.
    d.mantissa() as f64 / POW10[d.scale() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use vigil_config::default_rules;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn fired(out: &[Transition]) -> Vec<(String, bool)> {
        out.iter()
            .map(|tr| match tr {
                Transition::Breached { rule, .. } => (rule.clone(), true),
                Transition::Recovered { rule, .. } => (rule.clone(), false),
            })
            .collect()
    }

    #[test]
    fn approx_f64_agrees_with_decimal_to_f64() {
        for text in [
            "0",
            "100000",
            "99766.4321",
            "-10234.5",
            "0.0000001",
            "79228162514264.337593543950335",
        ] {
            let d: Decimal = text.parse().expect("decimal");
            let exact = d.to_f64().expect("f64");
            let approx = approx_f64(d);
            assert!(
                (approx - exact).abs() <= exact.abs() * 1e-15,
                "{text}: {approx} vs {exact}"
            );
        }
    }

    #[test]
    fn daily_drawdown_warns_past_three_percent_and_resets_the_next_day() {
        let mut w = BusinessWatch::new(&default_rules(), 20);
        let mut out = Vec::new();
        w.on_bar(t("2024-01-08T14:30:00Z"), dec!(100000), &mut out);
        w.on_bar(t("2024-01-08T15:30:00Z"), dec!(101000), &mut out);
        w.on_bar(t("2024-01-08T16:30:00Z"), dec!(98000), &mut out); // 2.97%
        assert!(out.is_empty(), "{out:?}");
        w.on_bar(t("2024-01-08T17:30:00Z"), dec!(97900), &mut out); // 3.07%
        assert_eq!(fired(&out), vec![("daily_drawdown_high".to_string(), true)]);
        assert!((w.figures().daily_drawdown - 0.030693).abs() < 1e-5);
        assert_eq!(w.figures().day_pnl, dec!(-2100));
        // Next New York day: a new peak, so the daily rule recovers on the first bar.
        w.on_bar(t("2024-01-09T14:30:00Z"), dec!(97900), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(fired(&out)[1], ("daily_drawdown_high".to_string(), false));
        // Today's P&L runs from yesterday's last bar.
        w.on_bar(t("2024-01-09T15:30:00Z"), dec!(97000), &mut out);
        assert_eq!(w.figures().day_pnl, dec!(-900));
    }

    #[test]
    fn weekly_drawdown_is_critical_past_five_percent_across_days() {
        let mut w = BusinessWatch::new(&default_rules(), 20);
        let mut out = Vec::new();
        // Monday 100k, then 2.5% lower each day: never 3% in a day, 5%+ in the week.
        w.on_bar(t("2024-01-08T15:00:00Z"), dec!(100000), &mut out);
        w.on_bar(t("2024-01-09T15:00:00Z"), dec!(97500), &mut out);
        w.on_bar(t("2024-01-10T15:00:00Z"), dec!(95000), &mut out);
        assert!(out.is_empty(), "exactly 5% is not past 5%: {out:?}");
        w.on_bar(t("2024-01-11T15:00:00Z"), dec!(94900), &mut out);
        assert!(
            matches!(&out[..], [Transition::Breached { rule, level: vigil_core::Level::Critical, .. }] if rule == "weekly_drawdown_high"),
            "{out:?}"
        );
        // A new ISO week starts a new peak.
        w.on_bar(t("2024-01-15T15:00:00Z"), dec!(94900), &mut out);
        assert_eq!(fired(&out)[1], ("weekly_drawdown_high".to_string(), false));
    }

    #[test]
    fn only_added_exposure_counts_as_trade_size() {
        let mut w = BusinessWatch::new(&default_rules(), 20);
        let mut out = Vec::new();
        let ts = t("2024-01-08T15:00:00Z");
        w.on_bar(ts, dec!(100000), &mut out);
        // Flip from +100 to -100 at $100: 20% of equity traded, 10% added.
        w.on_fill(ts, dec!(100), dec!(-100), dec!(100), dec!(100000), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Closing is never a risk.
        w.on_fill(ts, dec!(-100), dec!(0), dec!(100), dec!(100000), &mut out);
        assert!(out.is_empty());
        // Opening 11%: Critical.
        w.on_fill(ts, dec!(0), dec!(110), dec!(100), dec!(100000), &mut out);
        assert!(
            matches!(&out[..], [Transition::Breached { rule, value, .. }] if rule == "trade_size_high" && (*value - 0.11).abs() < 1e-12),
            "{out:?}"
        );
        assert_eq!(w.figures().trades_today, 3);
    }

    #[test]
    fn trading_frequency_three_times_off_its_mean_warns() {
        let mut w = BusinessWatch::new(&default_rules(), 20);
        let mut out = Vec::new();
        let day0 = t("2024-01-02T15:00:00Z");
        // Ten days of 4 fills each.
        for d in 0..10 {
            let ts = day0 + Duration::days(d);
            w.on_bar(ts, dec!(100000), &mut out);
            for _ in 0..4 {
                w.on_fill(ts, dec!(0), dec!(0), dec!(1), dec!(100000), &mut out);
            }
        }
        assert!(out.is_empty(), "{out:?}");
        // Day 11: 13 fills, judged when day 12 begins (13 / 4 = 3.25x).
        let ts = day0 + Duration::days(10);
        w.on_bar(ts, dec!(100000), &mut out);
        for _ in 0..13 {
            w.on_fill(ts, dec!(0), dec!(0), dec!(1), dec!(100000), &mut out);
        }
        w.on_bar(day0 + Duration::days(11), dec!(100000), &mut out);
        assert_eq!(fired(&out), vec![("trade_frequency_off".to_string(), true)]);
        // Day 12 back to 4: recovered when day 13 begins.
        for _ in 0..4 {
            w.on_fill(
                day0 + Duration::days(11),
                dec!(0),
                dec!(0),
                dec!(1),
                dec!(100000),
                &mut out,
            );
        }
        w.on_bar(day0 + Duration::days(12), dec!(100000), &mut out);
        assert_eq!(fired(&out)[1], ("trade_frequency_off".to_string(), false));
    }
}
