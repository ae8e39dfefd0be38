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
mod tests;
