use std::time::Duration;

use actix::prelude::*;
use vigil_bus::{
    AgentFault, BarBatch, BatchDone, Flow, Heartbeat, Shutdown, StageReport, StopReason, run_every,
};
use vigil_core::{
    AgentId, AgentState, Bar, Clock, MarketDataEvent, SharedClock, SimClock, SymbolTable, Timestamp,
};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_providers::DataProvider;

/// How the replay is paced against the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// As fast as the pipeline accepts.
    Max,
    /// Market time runs `factor` times faster than the wall clock.
    Factor(f64),
}

/// The Data agent's settings.
#[derive(Clone, Debug)]
pub struct DataAgentConfig {
    /// Bars per batch at max speed.
    pub batch_size: usize,
    /// Unacknowledged batches allowed.
    pub max_in_flight: usize,
    /// Replay pacing.
    pub pacing: Pacing,
    /// Heartbeat interval on the supervision clock.
    pub heartbeat_interval: Duration,
}

/// The Data agent actor.
pub struct DataAgent {
    cfg: DataAgentConfig,
    provider: Option<Box<dyn DataProvider>>,
    provider_name: String,
    symbols: SymbolTable,
    /// The replay's market clock, advanced to each bar as it passes.
    market: Option<SimClock>,
    /// The clock for stamps when not replaying.
    clock: SharedClock,
    /// Wall/supervision clock: heartbeats and pacing.
    wall: SharedClock,
    log: LogBuffer,
    downstream: Recipient<Flow<BarBatch>>,
    monitor: Recipient<Heartbeat>,
    reports: Recipient<StageReport>,
    faults: Recipient<AgentFault>,
    state: AgentState,
    pulling: bool,
    ended: bool,
    stop_requested: Option<StopReason>,
    in_flight: usize,
    next_batch_id: u64,
    events: Vec<MarketDataEvent>,
    /// Bar buffers handed back by the Execution agent, reused for the next batches.
    pool: Vec<Vec<Bar>>,
    last_ts: Vec<Option<Timestamp>>,
    bars: u64,
    rejected: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    pace_origin: Option<(Timestamp, Timestamp)>,
    /// The provider already checks OHLC consistency; do not pay for it twice.
    provider_validates: bool,
}

impl std::fmt::Debug for DataAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataAgent")
            .field("provider", &self.provider_name)
            .field("state", &self.state)
            .field("bars", &self.bars)
            .finish()
    }
}

const SERVICE: &str = "data_agent";

impl DataAgent {
    /// Creates the agent. `market` is the replay's simulated clock (advanced bar by bar);
    /// `clock` stamps its log lines; `wall` paces a replay and times heartbeats.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: DataAgentConfig,
        provider: Box<dyn DataProvider>,
        symbols: SymbolTable,
        market: Option<SimClock>,
        clock: SharedClock,
        wall: SharedClock,
        log: LogBuffer,
        downstream: Recipient<Flow<BarBatch>>,
        monitor: Recipient<Heartbeat>,
        reports: Recipient<StageReport>,
        faults: Recipient<AgentFault>,
    ) -> Self {
        let provider_name = provider.name().to_string();
        let provider_validates = provider.validates_bars();
        let n = symbols.len();
        Self {
            cfg,
            provider: Some(provider),
            provider_name,
            symbols,
            market,
            clock,
            wall,
            log,
            downstream,
            monitor,
            reports,
            faults,
            state: AgentState::Starting,
            pulling: false,
            ended: false,
            stop_requested: None,
            in_flight: 0,
            next_batch_id: 0,
            events: Vec::new(),
            pool: Vec::new(),
            last_ts: vec![None; n],
            bars: 0,
            rejected: 0,
            first: None,
            last: None,
            pace_origin: None,
            provider_validates,
        }
    }

    fn batch_size(&self) -> usize {
        match self.cfg.pacing {
            // Paced replays hand bars over one at a time, as a live feed would.
            Pacing::Factor(_) => 1,
            Pacing::Max => self.cfg.batch_size,
        }
    }

    fn heartbeat(&mut self, _ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Data,
            state: self.state,
            at: self.wall.now(),
            processed: self.bars,
        });
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(mut provider) = self.provider.take() else {
            return;
        };
        let symbols: Vec<_> = self.symbols.iter().map(|(id, s)| (id, s.clone())).collect();
        self.pulling = true;
        let fut = async move {
            let res = match provider.connect().await {
                Ok(()) => provider.subscribe(&symbols).await,
                Err(e) => Err(e),
            };
            (provider, res)
        };
        ctx.spawn(fut.into_actor(self).map(|(provider, res), act, ctx| {
            act.provider = Some(provider);
            act.pulling = false;
            match res {
                Ok(()) => {
                    act.state = AgentState::Running;
                    let now = act.now();
                    act.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                            .with("provider", act.provider_name.clone())
                            .with("symbols", act.symbols.len()),
                    );
                    act.log.flush();
                    act.pull(ctx);
                }
                Err(e) => act.fail(e.to_string(), Event::DataSourceConnected, ctx),
            }
        }));
    }

    fn now(&self) -> Timestamp {
        match &self.market {
            Some(m) => m.now(),
            None => self.clock.now(),
        }
    }

    /// Reads the next batch if flow control allows.
    fn pull(&mut self, ctx: &mut Context<Self>) {
        if self.pulling || self.ended {
            return;
        }
        if let Some(reason) = self.stop_requested.clone() {
            self.end(reason, ctx);
            return;
        }
        if self.in_flight >= self.cfg.max_in_flight {
            return;
        }
        let Some(mut provider) = self.provider.take() else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let max = self.batch_size();
        self.pulling = true;
        let fut = async move {
            let res = provider.next_batch(max, &mut events).await;
            (provider, events, res)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(|(provider, events, res), act, ctx| {
                    act.provider = Some(provider);
                    act.pulling = false;
                    act.on_events(events, res, ctx);
                }),
        );
    }

    fn on_events(
        &mut self,
        events: Vec<MarketDataEvent>,
        res: Result<bool, vigil_providers::ProviderError>,
        ctx: &mut Context<Self>,
    ) {
        let more = match res {
            Ok(more) => more,
            Err(e) => {
                // Bars read before the error were delivered in earlier batches; this one
                // carries none (the provider reports the error on its own).
                self.events = events;
                self.fail(e.to_string(), Event::DataParseFailed, ctx);
                return;
            }
        };
        if let Some(reason) = self.stop_requested.clone() {
            self.events = events;
            self.end(reason, ctx);
            return;
        }
        let mut bars: Vec<Bar> = self.pool.pop().unwrap_or_default();
        bars.clear();
        for ev in &events {
            let MarketDataEvent::Bar(bar) = ev;
            if self.accept(bar) {
                bars.push(*bar);
            }
        }
        self.events = events;
        self.log.flush();
        if !bars.is_empty() {
            match self.cfg.pacing {
                Pacing::Factor(f) => self.send_paced(bars, f, more, ctx),
                Pacing::Max => {
                    self.send(bars);
                    self.after_send(more, ctx);
                }
            }
        } else {
            self.after_send(more, ctx);
        }
    }

    fn after_send(&mut self, more: bool, ctx: &mut Context<Self>) {
        if more {
            self.pull(ctx);
        } else {
            let now = self.now();
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::DataSourceExhausted)
                    .with("provider", self.provider_name.clone())
                    .with("bars", self.bars)
                    .with("rejected", self.rejected),
            );
            self.end(StopReason::EndOfData, ctx);
        }
    }

    fn send_paced(&mut self, bars: Vec<Bar>, factor: f64, more: bool, ctx: &mut Context<Self>) {
        let first = bars[0].ts;
        let (wall0, market0) = *self
            .pace_origin
            .get_or_insert_with(|| (self.wall.now(), first));
        let offset_ms = ((first - market0).num_milliseconds() as f64 / factor).round() as i64;
        let deadline = wall0 + chrono::Duration::milliseconds(offset_ms);
        self.pulling = true;
        let sleep = self.wall.sleep_until(deadline);
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(sleep).map(move |(), act, ctx| {
                act.pulling = false;
                if act.ended {
                    return;
                }
                if let Some(reason) = act.stop_requested.clone() {
                    act.end(reason, ctx);
                    return;
                }
                act.send(bars);
                act.after_send(more, ctx);
            }),
        );
    }

    /// Validates one bar: possible prices, known symbol, time strictly ahead per symbol.
    fn accept(&mut self, bar: &Bar) -> bool {
        let reason = if self.symbols.symbol(bar.symbol).is_none() {
            Some(format!("unknown symbol id {}", bar.symbol.0))
        } else if let Some(e) = (!self.provider_validates)
            .then(|| bar.check().err())
            .flatten()
        {
            Some(format!("impossible bar: {e}"))
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
        if let Some(reason) = reason {
            self.rejected += 1;
            let now = self.clock.stamp(bar.ts);
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::BarRejected)
                    .with("symbol", self.symbols.shared(bar.symbol))
                    .with("bar_time", bar.ts)
                    .with("reason", reason),
            );
            return false;
        }
        self.last_ts[bar.symbol.index()] = Some(bar.ts);
        true
    }

    fn send(&mut self, bars: Vec<Bar>) {
        if let Some(market) = &self.market {
            for bar in &bars {
                market.advance_to(bar.ts);
            }
        }
        self.first = self.first.or(bars.first().map(|b| b.ts));
        self.last = bars.last().map(|b| b.ts).or(self.last);
        self.bars += bars.len() as u64;
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.in_flight += 1;
        // Bounded by flow control: at most `max_in_flight` batches are unacknowledged.
        self.downstream.do_send(Flow::Data(BarBatch {
            id,
            bars: std::sync::Arc::new(bars),
        }));
    }

    fn fail(&mut self, error: String, event: Event, ctx: &mut Context<Self>) {
        let now = self.now();
        self.state = AgentState::Failed;
        self.log.emit(
            LogEvent::new(now, SERVICE, event)
                .level(vigil_core::Level::Error)
                .with("provider", self.provider_name.clone())
                .with("error", error.clone()),
        );
        self.log.flush();
        self.faults.do_send(AgentFault {
            agent: AgentId::Data,
            error: error.clone(),
            fatal: true,
        });
        self.end(StopReason::Failed(error), ctx);
    }

    fn end(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.state != AgentState::Failed {
            self.state = AgentState::Stopped;
        }
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStopped)
                .with("reason", reason.as_str().to_string())
                .with("bars", self.bars),
        );
        self.log.flush();
        self.downstream.do_send(Flow::End(reason.clone()));
        self.reports.do_send(StageReport::Data {
            bars: self.bars,
            rejected: self.rejected,
            first: self.first,
            last: self.last,
            source: self.provider_name.clone(),
        });
        // Dropping the provider ends its reader thread.
        self.provider = None;
        ctx.stop();
    }
}

impl Actor for DataAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStarted)
                .with("provider", self.provider_name.clone())
                .with("batch_size", self.batch_size()),
        );
        self.heartbeat(ctx);
        run_every(
            ctx,
            self.wall.clone(),
            self.cfg.heartbeat_interval,
            Self::heartbeat,
        );
        self.connect(ctx);
    }
}

impl Handler<BatchDone> for DataAgent {
    type Result = ();

    fn handle(&mut self, msg: BatchDone, ctx: &mut Self::Context) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // Every other holder has dropped the batch by now; if not, it is simply freed.
        if let Some(bars) = std::sync::Arc::into_inner(msg.bars)
            && self.pool.len() < self.cfg.max_in_flight
        {
            self.pool.push(bars);
        }
        self.pull(ctx);
    }
}

impl Handler<Shutdown> for DataAgent {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) {
        if self.stop_requested.is_none() {
            self.stop_requested = Some(msg.reason.clone());
        }
        // A read in progress ends the stream when it returns; a paced wait does not hold
        // the stop (the provider is back in hand while waiting).
        if self.provider.is_some() {
            self.end(msg.reason, ctx);
        }
    }
}
