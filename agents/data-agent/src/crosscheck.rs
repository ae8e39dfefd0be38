//! Source disagreement: the bars in use are compared with a reference feed's.
//!
//! A [`CrossCheckReader`] reads a reference feed (`[data.cross_check]`, never part of the
//! failover) alongside the source in use and hands its bars to the Data agent
//! ([`ReferenceBars`]). The agent's [`CrossCheck`] pairs them with the source's bars of the
//! same symbol and timestamp: when the two closes are more than `max_disagreement_pct`
//! apart (in percent of the reference's close), the symbol goes into quarantine through the
//! same [`AnomalyWatch`](crate::AnomalyWatch) as the jump rule (bars withheld from the models, Risk told,
//! `symbol_quarantined` with actor `cross_check`). `release_after` agreeing pairs in a row
//! lift the cross-check's hold, or `vigil ctl release SYMBOL`.
//!
//! Whichever side's bar comes second makes the pair. When the reference's bar comes after
//! the source's bar was already forwarded, the check happens when it arrives: the symbol is
//! quarantined from then on, and that one bar has reached the models.
//!
//! A reference that is down does not stop trading: the reader logs `cross_check_failed`
//! (the check is off meanwhile) and reconnects with backoff on the wall clock.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use rust_decimal::Decimal;
use vigil_core::{
    Backoff, Bar, MarketDataEvent, SharedClock, Symbol, SymbolId, SymbolTable, Timestamp,
};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_providers::{DataProvider, ProviderError};

/// Bars kept per symbol and side while they wait for their pair: enough for one side to
/// run a few minutes of one-minute bars ahead of the other.
pub const PENDING_DEPTH: usize = 64;

/// The actor named in the log lines of the cross-check's quarantines.
pub(crate) const ACTOR: &str = "cross_check";

/// The bars the reference feed delivered, for the Data agent to compare.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ReferenceBars {
    /// In the order the reference sent them.
    pub bars: Vec<Bar>,
}

/// How a pair of closes compared.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Within the bound.
    Agree,
    /// Beyond the bound; the reason names both closes, both sources and the bound.
    Disagree(String),
}

/// One pair of bars of the same symbol and timestamp, compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    /// The symbol.
    pub symbol: SymbolId,
    /// The bars' timestamp.
    pub ts: Timestamp,
    /// The source's close.
    pub close: Decimal,
    /// The reference's close.
    pub reference_close: Decimal,
    /// How they compared.
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
struct Pending {
    /// The reference's recent bars not yet paired: (ts, close), oldest first.
    reference: VecDeque<(Timestamp, Decimal)>,
    /// The source's recent bars not yet paired.
    primary: VecDeque<(Timestamp, Decimal)>,
}

/// Pairs the source's bars with the reference's and compares their closes (no actor, no
/// clock: the Data agent feeds it).
#[derive(Debug)]
pub struct CrossCheck {
    reference: String,
    /// The source in use, as last seen (named in the reasons).
    primary: String,
    max_disagreement_pct: Decimal,
    release_after: usize,
    symbols: Vec<Pending>,
    compared: u64,
    disagreements: u64,
    unpaired: u64,
}

impl CrossCheck {
    /// Compares `symbols` symbols (ids `0..symbols`) with the source named `reference`:
    /// closes more than `max_disagreement_pct` percent apart disagree; `release_after`
    /// agreeing pairs in a row lift the quarantine (0: only a command).
    pub fn new(
        reference: impl Into<String>,
        max_disagreement_pct: Decimal,
        release_after: usize,
        symbols: usize,
    ) -> Self {
        Self {
            reference: reference.into(),
            primary: String::new(),
            max_disagreement_pct,
            release_after,
            symbols: (0..symbols).map(|_| Pending::default()).collect(),
            compared: 0,
            disagreements: 0,
            unpaired: 0,
        }
    }

    /// Agreeing pairs in a row that lift the cross-check's quarantine.
    pub fn release_after(&self) -> usize {
        self.release_after
    }

    /// Pairs compared so far.
    pub fn compared(&self) -> u64 {
        self.compared
    }

    /// Pairs that disagreed so far.
    pub fn disagreements(&self) -> u64 {
        self.disagreements
    }

    /// Bars dropped without a pair (the other side skipped them, or ran too far behind).
    pub fn unpaired(&self) -> u64 {
        self.unpaired
    }

    /// A bar of the source in use (named `source`), accepted by the Data agent: the
    /// comparison when the reference already sent this bar.
    pub fn on_primary(&mut self, source: &str, bar: &Bar) -> Option<Compared> {
        if self.primary != source {
            self.primary = source.to_string();
        }
        let p = self.symbols.get_mut(bar.symbol.index())?;
        let (found, dropped) = take_match(&mut p.reference, bar.ts);
        self.unpaired += dropped;
        match found {
            Some(r) => Some(self.compare(bar.symbol, bar.ts, bar.close, r)),
            None => {
                self.unpaired += push(&mut p.primary, bar.ts, bar.close);
                None
            }
        }
    }

    /// A bar of the reference: the comparison when the source already sent this bar.
    pub fn on_reference(&mut self, bar: &Bar) -> Option<Compared> {
        let p = self.symbols.get_mut(bar.symbol.index())?;
        let (found, dropped) = take_match(&mut p.primary, bar.ts);
        self.unpaired += dropped;
        match found {
            Some(c) => Some(self.compare(bar.symbol, bar.ts, c, bar.close)),
            None => {
                self.unpaired += push(&mut p.reference, bar.ts, bar.close);
                None
            }
        }
    }

    fn compare(
        &mut self,
        symbol: SymbolId,
        ts: Timestamp,
        close: Decimal,
        reference_close: Decimal,
    ) -> Compared {
        self.compared += 1;
        let outcome = if reference_close.is_zero() {
            // A feed's bars have passed `Bar::check` (positive prices); nothing to divide by.
            Outcome::Agree
        } else {
            let apart = (close - reference_close).abs() / reference_close * Decimal::ONE_HUNDRED;
            if apart > self.max_disagreement_pct {
                self.disagreements += 1;
                Outcome::Disagree(format!(
                    "close {close} from {} and {reference_close} from the reference {} are \
                     {}% apart (bound {}%)",
                    self.primary,
                    self.reference,
                    apart.round_dp(2).normalize(),
                    self.max_disagreement_pct.normalize()
                ))
            } else {
                Outcome::Agree
            }
        };
        Compared {
            symbol,
            ts,
            close,
            reference_close,
            outcome,
        }
    }
}

/// Takes the entry stamped `ts` out of `side`, with the older ones (the other side's time
/// only moves forward: they will never be paired). Returns its close and how many were
/// dropped.
fn take_match(side: &mut VecDeque<(Timestamp, Decimal)>, ts: Timestamp) -> (Option<Decimal>, u64) {
    let mut dropped = 0;
    while let Some(&(t, close)) = side.front() {
        if t > ts {
            break;
        }
        side.pop_front();
        if t == ts {
            return (Some(close), dropped);
        }
        dropped += 1;
    }
    (None, dropped)
}

/// Keeps a bar waiting for its pair; the oldest goes when the ring is full (returns 1 then).
fn push(side: &mut VecDeque<(Timestamp, Decimal)>, ts: Timestamp, close: Decimal) -> u64 {
    let mut dropped = 0;
    if side.len() >= PENDING_DEPTH {
        side.pop_front();
        dropped = 1;
    }
    side.push_back((ts, close));
    dropped
}

/// How long the reader waits before it reconnects: doubling from the first, up to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Bars read per call.
const READ_BATCH: usize = 256;

const READER: &str = "cross_check";

/// Reads the reference feed and hands its bars to the Data agent. Connects, subscribes to
/// the instruments and reads on; when it cannot connect or the stream breaks it logs
/// `cross_check_failed` (the check is off meanwhile; trading goes on) and tries again after a
/// backoff on the wall clock. Stops when the Data agent is gone.
pub struct CrossCheckReader {
    provider: Option<Box<dyn DataProvider>>,
    name: String,
    symbols: Vec<(SymbolId, Symbol)>,
    clock: SharedClock,
    wall: SharedClock,
    log: LogBuffer,
    data: Recipient<ReferenceBars>,
    events: Vec<MarketDataEvent>,
    backoff: Backoff,
    /// Failures so far (connections refused or broken, messages rejected).
    failures: u64,
    /// Bars handed to the Data agent so far.
    bars: u64,
}

impl std::fmt::Debug for CrossCheckReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossCheckReader")
            .field("reference", &self.name)
            .field("failures", &self.failures)
            .field("bars", &self.bars)
            .finish()
    }
}

impl CrossCheckReader {
    /// Reads `provider` for `symbols` and sends its bars to `data`. `clock` stamps the log
    /// lines; the backoff waits on `wall`.
    pub fn new(
        provider: Box<dyn DataProvider>,
        symbols: &SymbolTable,
        clock: SharedClock,
        wall: SharedClock,
        log: LogBuffer,
        data: Recipient<ReferenceBars>,
    ) -> Self {
        Self {
            name: provider.name().to_string(),
            provider: Some(provider),
            symbols: symbols.iter().map(|(id, s)| (id, s.clone())).collect(),
            clock,
            wall,
            log,
            data,
            events: Vec::new(),
            backoff: Backoff::new(BACKOFF_FIRST, BACKOFF_MAX),
            failures: 0,
            bars: 0,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(mut provider) = self.provider.take() else {
            return;
        };
        let symbols = self.symbols.clone();
        let fut = async move {
            let res = match provider.connect().await {
                Ok(()) => provider.subscribe(&symbols).await,
                Err(e) => Err(e),
            };
            (provider, res)
        };
        ctx.spawn(fut.into_actor(self).map(|(provider, res), act, ctx| {
            act.provider = Some(provider);
            match res {
                Ok(()) => {
                    act.backoff.reset();
                    act.log.emit(
                        LogEvent::new(act.clock.now(), READER, Event::CrossCheckConnected)
                            .with("reference", act.name.clone())
                            .with("symbols", act.symbols.len())
                            .with("failures", act.failures),
                    );
                    act.log.flush();
                    act.read(ctx);
                }
                Err(e) => act.failed(format!("connecting: {e}"), ctx),
            }
        }));
    }

    fn read(&mut self, ctx: &mut Context<Self>) {
        if !self.data.connected() {
            self.stop("the data agent has stopped", ctx);
            return;
        }
        let Some(mut provider) = self.provider.take() else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let fut = async move {
            let res = provider.next_batch(READ_BATCH, &mut events).await;
            (provider, events, res)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(|(provider, mut events, res), act, ctx| {
                    let rejects = provider.rejects_messages();
                    act.provider = Some(provider);
                    let bars: Vec<Bar> = events
                        .drain(..)
                        .map(|ev| {
                            let MarketDataEvent::Bar(bar) = ev;
                            bar
                        })
                        .collect();
                    act.events = events;
                    match res {
                        Ok(more) => act.deliver(bars, more, ctx),
                        Err(ProviderError::Malformed(detail)) if rejects => {
                            // One message of a stream that goes on.
                            act.failures += 1;
                            act.log.emit(
                                LogEvent::new(act.clock.now(), READER, Event::CrossCheckFailed)
                                    .with("reference", act.name.clone())
                                    .with("error", detail)
                                    .with("failures", act.failures)
                                    .with("action", "message skipped; reading on"),
                            );
                            act.log.flush();
                            act.deliver(bars, true, ctx);
                        }
                        Err(e) => {
                            if !bars.is_empty() {
                                act.data.do_send(ReferenceBars { bars });
                            }
                            act.failed(e.to_string(), ctx);
                        }
                    }
                }),
        );
    }

    /// Hands `bars` to the Data agent (waiting for it to take them), then reads on.
    fn deliver(&mut self, bars: Vec<Bar>, more: bool, ctx: &mut Context<Self>) {
        if !more {
            if !bars.is_empty() {
                self.data.do_send(ReferenceBars { bars });
            }
            self.failed("the reference ended its stream".into(), ctx);
            return;
        }
        if bars.is_empty() {
            self.read(ctx);
            return;
        }
        self.bars += bars.len() as u64;
        let sent = self.data.send(ReferenceBars { bars });
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(sent).map(|res, act, ctx| match res {
                Ok(()) => act.read(ctx),
                // A crash of the Data agent loses the message it was handling; the
                // supervisor restarts it on the same mailbox: read on.
                Err(e) if act.data.connected() => {
                    act.failures += 1;
                    act.log.emit(
                        LogEvent::new(act.clock.now(), READER, Event::CrossCheckFailed)
                            .with("reference", act.name.clone())
                            .with("error", format!("the data agent lost reference bars: {e}"))
                            .with("failures", act.failures)
                            .with("action", "those bars are not compared; reading on"),
                    );
                    act.log.flush();
                    act.read(ctx);
                }
                Err(e) => act.stop(&format!("the data agent is gone: {e}"), ctx),
            }),
        );
    }

    /// The reference failed: logs it (the check is off until it is back) and reconnects
    /// after the backoff.
    fn failed(&mut self, error: String, ctx: &mut Context<Self>) {
        self.failures += 1;
        let wait = self.backoff.next_delay();
        self.log.emit(
            LogEvent::new(self.clock.now(), READER, Event::CrossCheckFailed)
                .with("reference", self.name.clone())
                .with("error", error)
                .with("failures", self.failures)
                .with("retry_in_ms", wait.as_millis() as u64)
                .with(
                    "action",
                    "the cross-check is off until the reference is back; trading goes on",
                ),
        );
        self.log.flush();
        let deadline = vigil_core::later(self.wall.now(), vigil_core::span(wait));
        let sleep = self.wall.sleep_until(deadline);
        ctx.spawn(actix::fut::wrap_future::<_, Self>(sleep).map(|(), act, ctx| act.connect(ctx)));
    }

    fn stop(&mut self, why: &str, ctx: &mut Context<Self>) {
        self.log.emit(
            LogEvent::new(self.clock.now(), READER, Event::CrossCheckStopped)
                .with("reference", self.name.clone())
                .with("reason", why.to_string())
                .with("bars", self.bars)
                .with("failures", self.failures),
        );
        self.log.flush();
        ctx.stop();
    }
}

impl Actor for CrossCheckReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.connect(ctx);
    }
}

#[cfg(test)]
mod tests {
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
        assert!(
            matches!(w.disagree(s, "apart".into()), Verdict::Quarantined(why) if why == "apart")
        );
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

        async fn subscribe(
            &mut self,
            _symbols: &[(SymbolId, Symbol)],
        ) -> Result<(), ProviderError> {
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
}
