use super::*;
use crate::anomaly::{AnomalyWatch, Verdict};
use rust_decimal_macros::dec;
use vigil_testkit::timestamp as t;

fn bar(symbol: u32, day: u32, close: Decimal) -> Bar {
    Bar {
        symbol: SymbolId(symbol),
        ts: t(&format!("2024-03-{day:02}T00:00:00Z")),
        open: close,
        high: close,
        low: close,
        close,
        volume: Some(dec!(1000)),
    }
}

fn check() -> CrossCheck {
    CrossCheck::new("feed:ref", dec!(2), 3, 2)
}

#[test]
fn closes_within_the_bound_agree_whichever_side_comes_first() {
    let mut x = check();
    assert_eq!(x.on_primary("feed:a", &bar(0, 1, dec!(100))), None);
    let c = x.on_reference(&bar(0, 1, dec!(101.9))).expect("paired");
    assert_eq!(c.outcome, Outcome::Agree);
    assert_eq!((c.close, c.reference_close), (dec!(100), dec!(101.9)));
    assert_eq!(x.on_reference(&bar(0, 2, dec!(100))), None);
    let c = x
        .on_primary("feed:a", &bar(0, 2, dec!(98)))
        .expect("paired");
    assert_eq!(c.outcome, Outcome::Agree, "exactly 2 % is within the bound");
    // Another symbol's bar of the same time is not a pair.
    assert_eq!(x.on_reference(&bar(1, 3, dec!(100))), None);
    assert_eq!(x.on_primary("feed:a", &bar(0, 3, dec!(100))), None);
    assert_eq!((x.compared(), x.disagreements()), (2, 0));
}

#[test]
fn closes_beyond_the_bound_disagree_naming_both_prices_both_sources_and_the_bound() {
    let mut x = check();
    assert_eq!(x.on_reference(&bar(0, 1, dec!(100))), None);
    let c = x
        .on_primary("feed:a", &bar(0, 1, dec!(105)))
        .expect("paired");
    assert_eq!(
        c.outcome,
        Outcome::Disagree(
            "close 105 from feed:a and 100 from the reference feed:ref are 5% apart \
                 (bound 2%)"
                .into()
        )
    );
    assert_eq!(x.disagreements(), 1);
}

#[test]
fn bars_the_other_side_skipped_are_dropped_and_the_rings_stay_bounded() {
    let mut x = check();
    assert_eq!(x.on_reference(&bar(0, 1, dec!(100))), None);
    assert_eq!(x.on_reference(&bar(0, 2, dec!(100))), None);
    // The source skipped day 1: day 2 still pairs, day 1 is dropped.
    assert!(x.on_primary("feed:a", &bar(0, 2, dec!(100))).is_some());
    assert_eq!(x.unpaired(), 1);
    let mut x = check();
    let start = t("2024-01-01T00:00:00Z");
    for i in 0..(PENDING_DEPTH as i64 + 10) {
        let mut b = bar(0, 1, dec!(100));
        b.ts = start + chrono::Duration::minutes(i);
        assert_eq!(x.on_primary("feed:a", &b), None);
    }
    assert_eq!(x.unpaired(), 10, "the oldest went");
    assert_eq!(x.symbols[0].primary.len(), PENDING_DEPTH);
}

fn watch() -> AnomalyWatch {
    AnomalyWatch::new(
        crate::AnomalyBounds {
            max_jump: Some(dec!(0.25)),
            k_sigma: None,
            min_sigma: 0.0,
            window: 5,
            release_after: 3,
        },
        2,
    )
}

#[test]
fn a_disagreement_quarantines_and_three_agreeing_pairs_in_a_row_release() {
    let mut w = watch();
    let s = SymbolId(0);
    assert!(matches!(w.disagree(s, "apart".into()), Verdict::Quarantined(why) if why == "apart"));
    assert_eq!(w.agree(s, 3), Verdict::Held);
    assert_eq!(
        w.disagree(s, "again".into()),
        Verdict::Held,
        "the count starts over"
    );
    assert_eq!(w.agree(s, 3), Verdict::Held);
    assert_eq!(w.agree(s, 3), Verdict::Held);
    assert_eq!(
        w.agree(s, 3),
        Verdict::Released("3 pairs of closes in a row agreed with the reference".into())
    );
    assert_eq!(w.agree(s, 3), Verdict::Pass);
    assert_eq!(w.quarantined().count(), 0);
    // The source's bars go on meanwhile: while held only by the cross-check, calm bars
    // do not lift it.
    assert_eq!(w.on_bar(&bar(1, 1, dec!(100))), Verdict::Pass);
    assert!(matches!(
        w.disagree(SymbolId(1), "x".into()),
        Verdict::Quarantined(_)
    ));
    for d in 2..=6 {
        assert_eq!(w.on_bar(&bar(1, d, dec!(100))), Verdict::Held);
    }
    assert_eq!(w.agree(SymbolId(1), 0), Verdict::Held, "0: only a command");
}

#[test]
fn a_symbol_held_for_a_jump_and_a_disagreement_is_released_only_when_both_cleared() {
    let mut w = watch();
    let s = SymbolId(0);
    assert_eq!(w.on_bar(&bar(0, 1, dec!(100))), Verdict::Pass);
    assert!(matches!(
        w.on_bar(&bar(0, 2, dec!(200))),
        Verdict::Quarantined(_)
    ));
    assert_eq!(w.disagree(s, "apart".into()), Verdict::Held, "already held");
    // The jump rule's hold clears first (back to 100 is a jump; three calm bars after).
    assert_eq!(w.on_bar(&bar(0, 3, dec!(100))), Verdict::Held);
    for d in 4..=6 {
        assert_eq!(w.on_bar(&bar(0, d, dec!(100))), Verdict::Held, "day {d}");
    }
    assert_eq!(
        w.quarantined().count(),
        1,
        "the disagreement still holds it"
    );
    assert_eq!(w.agree(s, 2), Verdict::Held);
    assert!(matches!(w.agree(s, 2), Verdict::Released(_)));
    // Now the other way round: the disagreement clears first.
    assert!(matches!(
        w.disagree(s, "apart".into()),
        Verdict::Quarantined(_)
    ));
    assert_eq!(w.on_bar(&bar(0, 7, dec!(300))), Verdict::Held, "a jump too");
    assert_eq!(w.agree(s, 1), Verdict::Held, "the jump rule still holds it");
    for d in 8..=9 {
        assert_eq!(w.on_bar(&bar(0, d, dec!(300))), Verdict::Held);
    }
    assert_eq!(
        w.on_bar(&bar(0, 10, dec!(300))),
        Verdict::Released("3 bars in a row within the bounds".into())
    );
    // An operator's release lifts every hold.
    assert_eq!(
        w.on_bar(&bar(0, 11, dec!(900))),
        Verdict::Quarantined("close 900 moved +200% from the previous 300 (bound 25%)".into())
    );
    assert_eq!(w.disagree(s, "apart".into()), Verdict::Held);
    assert!(w.release(s));
    assert_eq!(w.quarantined().count(), 0);
}

/// The reference: fails to connect `refusals` times, then streams `script` (an `Err`
/// breaks the stream), then stays quiet.
struct Reference {
    refusals: u32,
    script: std::collections::VecDeque<Result<Bar, ()>>,
}

#[async_trait::async_trait]
impl DataProvider for Reference {
    fn name(&self) -> &str {
        "feed:reference"
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        if self.refusals > 0 {
            self.refusals -= 1;
            return Err(ProviderError::Connect {
                provider: "feed:reference".into(),
                reason: "connection refused".into(),
            });
        }
        Ok(())
    }

    async fn subscribe(&mut self, _symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn next_batch(
        &mut self,
        _max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        match self.script.pop_front() {
            Some(Ok(bar)) => {
                out.push(MarketDataEvent::Bar(bar));
                Ok(true)
            }
            Some(Err(())) => Err(ProviderError::Stream {
                provider: "feed:reference".into(),
                reason: "the feed dropped the connection".into(),
            }),
            None => std::future::pending().await,
        }
    }

    fn health(&self) -> vigil_providers::ProviderHealth {
        vigil_providers::ProviderHealth::default()
    }
}

/// Stands in for the Data agent.
struct Taker(std::sync::Arc<parking_lot::Mutex<Vec<Bar>>>);

impl Actor for Taker {
    type Context = Context<Self>;
}

impl Handler<ReferenceBars> for Taker {
    type Result = ();
    fn handle(&mut self, msg: ReferenceBars, _ctx: &mut Context<Self>) {
        self.0.lock().extend(msg.bars);
    }
}

/// Waits (bounded, yielding to the actors) until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never: {what}");
}

/// A reference that refuses, then breaks: each failure logged and counted, retried after
/// a backoff on the wall clock (doubling, back to the first after a good connect); its
/// bars reach the Data agent.
#[actix_rt::test]
async fn the_reader_reconnects_with_backoff_on_the_wall_clock_and_hands_the_bars_over() {
    use vigil_core::{Clock, SimClock};
    use vigil_log::{LogSink, Value};
    use vigil_testkit::logged;

    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let market = SimClock::starting_at(t("2024-01-01T00:00:00Z"));
    let (sink, log) = LogSink::memory();
    let got = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let taker = Taker(got.clone()).start();
    let provider = Reference {
        refusals: 2,
        script: [
            Ok(bar(0, 1, dec!(100))),
            Ok(bar(0, 2, dec!(101))),
            Err(()),
            Ok(bar(0, 3, dec!(102))),
        ]
        .into_iter()
        .collect(),
    };
    let _reader = CrossCheckReader::new(
        Box::new(provider),
        &SymbolTable::new([Symbol::from("GOOG")]),
        std::sync::Arc::new(market.clone()),
        std::sync::Arc::new(wall.clone()),
        LogBuffer::new(sink, READER, vigil_core::Level::Debug),
        taker.recipient(),
    )
    .start();
    let failed = |n: usize| {
        let log = log.clone();
        move || logged(&log, Event::CrossCheckFailed).len() >= n
    };
    let retry = |i: usize| match logged(&log, Event::CrossCheckFailed)[i].get("retry_in_ms") {
        Some(Value::U64(ms)) => *ms,
        other => panic!("{other:?}"),
    };
    until("the first refusal", failed(1)).await;
    assert_eq!(retry(0), 500);
    assert!(got.lock().is_empty());
    wall.advance_by(chrono::Duration::milliseconds(499));
    tokio::task::yield_now().await;
    assert_eq!(
        logged(&log, Event::CrossCheckFailed).len(),
        1,
        "not before the backoff"
    );
    wall.advance_by(chrono::Duration::milliseconds(1));
    until("the second refusal", failed(2)).await;
    assert_eq!(retry(1), 1000, "doubled");
    wall.advance_by(chrono::Duration::milliseconds(1000));
    until("the broken stream", failed(3)).await;
    assert_eq!(retry(2), 500, "back to the first after a good connect");
    assert_eq!(logged(&log, Event::CrossCheckConnected).len(), 1);
    wall.advance_by(chrono::Duration::milliseconds(500));
    until("three bars", || got.lock().len() == 3).await;
    let closes: Vec<Decimal> = got.lock().iter().map(|b| b.close).collect();
    assert_eq!(closes, vec![dec!(100), dec!(101), dec!(102)]);
    assert_eq!(logged(&log, Event::CrossCheckConnected).len(), 2);
    let last = &logged(&log, Event::CrossCheckFailed)[2];
    assert_eq!(last.level, vigil_core::Level::Warn);
    assert!(
        matches!(last.get("failures"), Some(Value::U64(3))),
        "{last:?}"
    );
    assert_eq!(wall.now(), t("2030-01-01T00:00:02Z"));
}
