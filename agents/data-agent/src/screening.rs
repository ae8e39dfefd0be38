//! Bar screening: which bars a source delivered are valid data.
//!
//! A bar is valid when its symbol is known, its prices are possible (unless the provider
//! checks that already), it is not from the future (against the wall clock, before it moves
//! any clock), and its time is strictly after the symbol's previous bar. After a switch of
//! source, bars the previous source already delivered are skipped quietly (a backup starts
//! where it starts) until the first new one.

use vigil_core::{Bar, FutureGuard, SymbolTable, Timestamp};

/// What became of a bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Screened {
    /// Delivered by the previous source already: skipped quietly.
    Seen,
    /// Checked: `caught_up` is the count of bars skipped before it when it is the first new
    /// bar after a switch; `rejected` says why it is not valid.
    Checked {
        caught_up: Option<u64>,
        rejected: Option<String>,
    },
}

/// The per-symbol state of the screen, kept across switches of source and restarts.
#[derive(Debug)]
pub(crate) struct Screening {
    /// Rejects bars from the future (against the wall clock), before they move any clock.
    future: FutureGuard,
    /// The last valid bar's time, per symbol.
    last_ts: Vec<Option<Timestamp>>,
    /// The provider already checks OHLC consistency; do not pay for it twice.
    provider_validates: bool,
    /// Since the last switch, bars already delivered skipped, until the first new one.
    catching_up: Option<u64>,
    /// Bars rejected so far.
    rejected: u64,
}

impl Screening {
    /// Screens the bars of `symbols` symbols; `provider_validates`: the source checks
    /// OHLC consistency itself.
    pub(crate) fn new(future: FutureGuard, symbols: usize, provider_validates: bool) -> Self {
        Self {
            future,
            last_ts: vec![None; symbols],
            provider_validates,
            catching_up: None,
            rejected: 0,
        }
    }

    /// Bars rejected so far.
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected
    }

    /// A new source is in use: bars up to the last valid one of each symbol are skipped.
    pub(crate) fn switched(&mut self, provider_validates: bool) {
        self.provider_validates = provider_validates;
        self.catching_up = Some(0);
    }

    /// Screens one bar; a valid one becomes its symbol's last.
    pub(crate) fn screen(&mut self, bar: &Bar, symbols: &SymbolTable) -> Screened {
        let mut caught_up = None;
        if let Some(skipped) = &mut self.catching_up {
            // A backup that starts behind: what the last source delivered is not news.
            if self.last_ts[bar.symbol.index()].is_some_and(|p| bar.ts <= p) {
                *skipped += 1;
                return Screened::Seen;
            }
            caught_up = Some(*skipped);
            self.catching_up = None;
        }
        let rejected = if symbols.symbol(bar.symbol).is_none() {
            Some(format!("unknown symbol id {}", bar.symbol.0))
        } else if let Some(e) = (!self.provider_validates)
            .then(|| bar.check().err())
            .flatten()
        {
            Some(format!("impossible bar: {e}"))
        } else if let Err(e) = self.future.check(bar.ts) {
            Some(format!("from the future: {e}"))
        } else {
            self.last_ts[bar.symbol.index()]
                .filter(|p| bar.ts <= *p)
                .map(|prev| {
                    format!(
                        "timestamp {} is not after the previous bar's {}",
                        bar.ts.to_rfc3339(),
                        prev.to_rfc3339()
                    )
                })
        };
        match rejected {
            Some(_) => self.rejected += 1,
            None => self.last_ts[bar.symbol.index()] = Some(bar.ts),
        }
        Screened::Checked {
            caught_up,
            rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;
    use vigil_core::{SimClock, Symbol, SymbolId};
    use vigil_testkit::timestamp as t;

    use super::*;

    fn bar(symbol: u32, day: u32) -> Bar {
        Bar {
            symbol: SymbolId(symbol),
            ts: t(&format!("2024-01-{day:02}T00:00:00Z")),
            open: dec!(10),
            high: dec!(11),
            low: dec!(9),
            close: dec!(10),
            volume: None,
        }
    }

    fn screening(validates: bool) -> (Screening, SymbolTable) {
        let wall = SimClock::starting_at(t("2024-02-01T00:00:00Z"));
        let guard = FutureGuard::new(Arc::new(wall), chrono::Duration::seconds(60));
        (
            Screening::new(guard, 1, validates),
            SymbolTable::new([Symbol::from("TEST")]),
        )
    }

    fn valid() -> Screened {
        Screened::Checked {
            caught_up: None,
            rejected: None,
        }
    }

    fn rejected(s: Screened) -> String {
        match s {
            Screened::Checked {
                rejected: Some(r), ..
            } => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_bar_not_after_its_symbol_s_last_an_unknown_symbol_or_the_future_is_rejected() {
        let (mut s, symbols) = screening(true);
        assert_eq!(s.screen(&bar(0, 2), &symbols), valid());
        assert!(rejected(s.screen(&bar(0, 2), &symbols)).contains("is not after"));
        assert!(rejected(s.screen(&bar(1, 3), &symbols)).contains("unknown symbol id 1"));
        let mut future = bar(0, 3);
        future.ts = t("2099-01-01T00:00:00Z");
        assert!(rejected(s.screen(&future, &symbols)).starts_with("from the future"));
        assert_eq!(s.rejected(), 3);
        assert_eq!(
            s.screen(&bar(0, 3), &symbols),
            valid(),
            "the clock did not move"
        );
    }

    #[test]
    fn impossible_prices_are_checked_only_when_the_provider_does_not() {
        let mut broken = bar(0, 2);
        broken.high = dec!(1);
        let (mut s, symbols) = screening(true);
        assert_eq!(s.screen(&broken, &symbols), valid());
        let (mut s, symbols) = screening(false);
        assert!(rejected(s.screen(&broken, &symbols)).starts_with("impossible bar"));
    }

    #[test]
    fn after_a_switch_bars_already_delivered_are_skipped_quietly_until_the_first_new_one() {
        let (mut s, symbols) = screening(true);
        s.screen(&bar(0, 5), &symbols);
        s.switched(true);
        assert_eq!(s.screen(&bar(0, 4), &symbols), Screened::Seen);
        assert_eq!(s.screen(&bar(0, 5), &symbols), Screened::Seen);
        assert_eq!(
            s.screen(&bar(0, 6), &symbols),
            Screened::Checked {
                caught_up: Some(2),
                rejected: None
            }
        );
        assert_eq!(s.screen(&bar(0, 7), &symbols), valid());
        assert_eq!(s.rejected(), 0);
    }
}
