//! The Data agent actor: its mailbox, its wiring, and the I/O of the components it owns.
//!
//! What to do with each bar and each failure is decided by components that do no I/O: the
//! source failover ([`Failover`], in `vigil-providers`), the bar screen ([`Screening`]),
//! the rejected messages ([`ParseErrors`]), the gap watch ([`Completeness`]), the
//! quarantine ([`Quarantine`]), the phases of the day ([`Phases`]) and the pacing
//! ([`Pacer`]). The actor reads the source, logs and sends what they return.

mod clock;
mod failover;
mod lease;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use parking_lot::Mutex;
use vigil_core::{
    AgentId, AgentState, Bar, Clock, FutureGuard, MarketDataEvent, SimClock, SymbolTable, Timestamp,
};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_messages::{
    AgentCore, AgentWiring, BarBatch, BatchDone, CommandError, DataOutage, Downstream, Figures,
    Flow, QuarantineChanged, Reachability, SetQuarantine, Shutdown, StageReport, StopReason,
    VerifyData,
};
use vigil_providers::{DataProvider, Failover};

use self::lease::Home;
use crate::SERVICE;
use crate::anomaly::AnomalyWatch;
use crate::crosscheck::{CrossCheck, ReferenceBars};
use crate::gaps::{Completeness, GapWatch};
use crate::pacing::Pacer;
use crate::pacing::Pacing;
use crate::parse_errors::ParseErrors;
use crate::phases::Phases;
use crate::phases::PremarketGate;
use crate::quarantine::Quarantine;
use crate::scheduler::Scheduler;
use crate::screening::Screening;

/// The Data agent's settings.
#[derive(Clone, Debug)]
pub struct DataAgentConfig {
    /// Bars per batch at max speed.
    pub batch_size: usize,
    /// Unacknowledged batches allowed.
    pub max_in_flight: usize,
    /// Replay pacing.
    pub pacing: Pacing,
    /// How far ahead of the wall clock a bar's time may be; a later bar is rejected.
    pub future_tolerance: chrono::Duration,
}

/// When no source is healthy (a live feed): trading halts, the sources are tried again with
/// backoff, and when good bars come back the books are verified before trading resumes.
#[derive(Clone, Debug)]
pub struct OutageLinks {
    /// The Risk agent: the breaker trips at the outage ([`DataOutage`]).
    pub risk: Recipient<DataOutage>,
    /// The Execution agent: verifies the books when good bars come back ([`VerifyData`]).
    pub execution: Recipient<VerifyData>,
    /// First wait before the sources are tried again.
    pub reconnect_initial: Duration,
    /// Longest wait between attempts.
    pub reconnect_max: Duration,
    /// An operator resets the breaker even when the verification passes.
    pub operator_resumes: bool,
}

/// The Data agent actor.
pub struct DataAgent {
    cfg: DataAgentConfig,
    /// The sources and the failover between them; the one in use is lent to each read.
    sources: Failover<Box<dyn DataProvider>>,
    /// Where a provider lent to a read comes back to if the read is dropped.
    home: Home,
    /// Where the standby source being probed before a switch back comes back to if the
    /// probe is dropped (a restart of the agent): reclaimed at the next heartbeat.
    probe_home: Home,
    symbols: SymbolTable,
    /// The replay's market clock, advanced to each bar as it passes.
    market: Option<SimClock>,
    /// The clock for stamps when not replaying, the wall clock (heartbeats and pacing),
    /// the log, the state and the links to the Monitor.
    core: AgentCore,
    /// The Regime agent.
    downstream: Downstream<BarBatch>,
    pulling: bool,
    ended: bool,
    stop_requested: Option<StopReason>,
    in_flight: usize,
    next_batch_id: u64,
    events: Vec<MarketDataEvent>,
    /// Bar buffers handed back by the Execution agent, reused for the next batches.
    pool: Vec<Vec<Bar>>,
    bars: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    pacer: Pacer,
    screening: Screening,
    /// The provider's `Malformed` is one rejected message of a stream that goes on.
    provider_rejects: bool,
    /// The provider is live (its silence while the exchange is open is missing data).
    provider_live: bool,
    parse: ParseErrors,
    phases: Phases,
    gaps: Completeness,
    quarantine: Quarantine,
    /// The Risk agent, told of every quarantine that begins or ends.
    quarantine_risk: Option<Recipient<QuarantineChanged>>,
    /// The source's connection, as the pings and fetches found it.
    source: Reachability,
    /// Supervision time the last valid bar arrived (forwarded or withheld).
    last_update_at: Option<Timestamp>,
    /// The first valid bar of the batch being read, if any.
    fresh: Option<Timestamp>,
    /// Ping the source before the next fetch.
    ping_due: bool,
    /// What to do when no source is healthy; `None`: the agent fails (fatal).
    outage_links: Option<OutageLinks>,
    /// Missing bars counted when the outage began (gaps across it fail the verification).
    missing_at_outage: u64,
    /// The generation of the phase timer (a timer of an older one does nothing).
    phase_timer: u64,
    /// The source's first read has come back (the phase timer waits for it).
    source_read: bool,
    /// The post-close work of a live session.
    post_close: Option<Box<dyn crate::phases::PostCloseWork>>,
    /// Post-close work waiting for its batch to be handled: (batch, session, phase time).
    post_close_due: Vec<(u64, chrono::NaiveDate, Timestamp)>,
}

impl std::fmt::Debug for DataAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataAgent")
            .field("provider", &self.sources.name())
            .field("state", &self.core.state)
            .field("bars", &self.bars)
            .finish()
    }
}

impl DataAgent {
    /// Creates the agent. `market` is the replay's simulated clock (advanced bar by bar);
    /// the `wiring`'s clock stamps its log lines (to `log`) when not replaying, its wall
    /// clock paces a replay and times heartbeats. The bars go to the Regime agent through
    /// `downstream`.
    pub fn new(
        cfg: DataAgentConfig,
        provider: Box<dyn DataProvider>,
        symbols: SymbolTable,
        market: Option<SimClock>,
        wiring: AgentWiring,
        log: LogBuffer,
        downstream: Recipient<Flow<BarBatch>>,
    ) -> Self {
        let core = AgentCore::new(AgentId::Data, wiring, log);
        let future = FutureGuard::new(core.wall.clone(), cfg.future_tolerance);
        let screening = Screening::new(future, symbols.len(), provider.validates_bars());
        Self {
            pacer: Pacer::new(cfg.pacing, cfg.batch_size),
            screening,
            provider_rejects: provider.rejects_messages(),
            provider_live: provider.live(),
            sources: Failover::new(provider),
            home: Arc::new(Mutex::new(None)),
            probe_home: Arc::new(Mutex::new(None)),
            cfg,
            symbols,
            market,
            downstream: core.downstream(downstream, AgentId::Regime),
            core,
            pulling: false,
            ended: false,
            stop_requested: None,
            in_flight: 0,
            next_batch_id: 0,
            events: Vec::new(),
            pool: Vec::new(),
            bars: 0,
            first: None,
            last: None,
            parse: ParseErrors::default(),
            phases: Phases::default(),
            gaps: Completeness::default(),
            quarantine: Quarantine::default(),
            quarantine_risk: None,
            source: Reachability::default(),
            last_update_at: None,
            fresh: None,
            ping_due: false,
            outage_links: None,
            missing_at_outage: 0,
            phase_timer: 0,
            source_read: false,
            post_close: None,
            post_close_due: Vec::new(),
        }
    }

    /// Backup sources, in order of preference: when the source in use fails (cannot connect,
    /// its stream breaks, too many rejected messages in a row), the next one takes over
    /// (`data_source_switched`, alerted). Only when every source has failed since the last
    /// good bar does the agent fail (fatal: trading halts).
    pub fn with_backups(mut self, backups: Vec<Box<dyn DataProvider>>) -> Self {
        self.sources.set_backups(backups);
        self
    }

    /// After a failover, tries the primary again once the backup has run `after` without
    /// failing (the period doubles each time the primary fails again before a good bar).
    pub fn with_switch_back(mut self, after: Duration) -> Self {
        self.sources.set_switch_back(after);
        self
    }

    /// When no source is healthy, halts trading and tries the sources again with backoff
    /// instead of failing; good bars again are verified before trading resumes.
    pub fn with_outage_handling(mut self, links: OutageLinks) -> Self {
        self.sources
            .set_reconnect(links.reconnect_initial, links.reconnect_max);
        self.outage_links = Some(links);
        self
    }

    /// A data outage that began at wall time `since` in the previous process is still under
    /// way (its halt was saved with the trading state): the first good bars end it and are
    /// verified, as they would have been without the restart. Needs
    /// [`Self::with_outage_handling`] first; without it the halt waits for an operator.
    pub fn with_outage_resumed(mut self, since: Timestamp) -> Self {
        if !self.sources.resume_outage(since) {
            self.core.fault(
                "a data outage's halt was saved, but reconnecting is off: an operator resets \
                 the breaker"
                    .to_string(),
                false,
            );
        }
        self
    }

    /// Fails the source in use when more than `max_pct` percent of its last `window`
    /// messages were rejected (a streaming provider's; 0: off).
    pub fn with_parse_error_rate(mut self, window: usize, max_pct: f64) -> Self {
        self.parse.set_rate(window, max_pct);
        self
    }

    /// How many messages a streaming provider may reject in a row (no good bar between)
    /// before the source counts as failed (default 5).
    pub fn with_rejection_limit(mut self, in_a_row: u32) -> Self {
        self.parse.set_limit(in_a_row);
        self
    }

    /// Runs `gate` when each pre-market phase begins; a failure keeps that session closed.
    pub fn with_premarket_gate(mut self, gate: Box<dyn PremarketGate>) -> Self {
        self.phases.set_gate(gate);
        self
    }

    /// Drives the automated trading day: phases are marked in band as bars pass them (and,
    /// with a live source, when the clock reaches them with no bar).
    pub fn with_scheduler(mut self, scheduler: Scheduler) -> Self {
        self.phases.set_scheduler(scheduler);
        self
    }

    /// Checks every accepted bar for sessions of the exchange calendar with no bar.
    pub fn with_gap_watch(mut self, gaps: GapWatch) -> Self {
        self.gaps.set_watch(gaps);
        self
    }

    /// Puts a symbol whose price jumps beyond `watch`'s bounds in quarantine: its bars are
    /// withheld from the models, and `risk` blocks new orders in it until it is released.
    pub fn with_anomaly_watch(
        mut self,
        watch: AnomalyWatch,
        risk: Recipient<QuarantineChanged>,
    ) -> Self {
        self.quarantine.set_watch(watch);
        self.quarantine_risk = Some(risk);
        self
    }

    /// Compares the accepted bars with a reference source's (see [`CrossCheck`]): a
    /// disagreement puts the symbol in quarantine through the anomaly watch (which must be
    /// set too; with neither bound it only holds what the cross-check and operators put in).
    pub fn with_cross_check(mut self, check: CrossCheck) -> Self {
        self.quarantine.set_cross_check(check);
        self
    }

    pub(crate) fn phases_mut(&mut self) -> &mut Phases {
        &mut self.phases
    }

    pub(crate) fn market_now(&self) -> Timestamp {
        self.now()
    }

    pub(crate) fn log_mut(&mut self) -> &mut LogBuffer {
        &mut self.core.log
    }

    fn now(&self) -> Timestamp {
        match &self.market {
            Some(m) => m.now(),
            None => self.core.clock.now(),
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        self.core.heartbeat(
            self.bars,
            Figures::Data {
                last_bar_at: self.last,
                last_update_at: self.last_update_at,
                bars: self.bars,
                rejected: self.screening.rejected(),
                parse_errors: self.parse.count(),
                gaps: self.gaps.found(),
                missing_bars: self.gaps.missing(),
                quarantined: self.quarantine.quarantined(),
                withheld: self.quarantine.withheld(),
                disagreements: self.quarantine.disagreements(),
                live: self.provider_live,
                ended: self.ended,
                source: self.source.clone(),
            },
        );
        if self.core.state != AgentState::Starting {
            self.ping_source(ctx);
        }
        // A probe dropped by a restart: its source stands by again, tried later.
        let dropped = self.probe_home.lock().take();
        if let Some(source) = dropped {
            self.sources.probe_failed(source, self.core.wall.now());
        }
        // Once the backup in use has run its stable period, the primary is probed, and
        // tried again if it answers (after the read in flight).
        if !self.ended && self.sources.tick(self.core.wall.now()) {
            self.probe_switch_back(ctx);
        }
    }

    fn fail(&mut self, error: String, event: Event, ctx: &mut Context<Self>) {
        let now = self.now();
        self.core.state = AgentState::Failed;
        self.core.log.emit(
            LogEvent::new(now, SERVICE, event)
                .level(vigil_core::Level::Error)
                .with("provider", self.sources.name().to_string())
                .with("error", error.clone()),
        );
        self.core.log.flush();
        self.core.fault(error.clone(), true);
        self.end(StopReason::Failed(error), ctx);
    }

    fn end(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.core.state != AgentState::Failed {
            self.core.state = AgentState::Stopped;
        }
        let now = self.now();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStopped)
                .with("reason", reason.as_str().to_string())
                .with("bars", self.bars),
        );
        self.core.log.flush();
        self.downstream.end(reason);
        self.core.report(StageReport::Data {
            bars: self.bars,
            rejected: self.screening.rejected(),
            parse_errors: self.parse.count(),
            first: self.first,
            last: self.last,
            source: self.sources.name().to_string(),
        });
        // Dropping the provider ends its reader thread.
        drop(self.sources.lend());
        ctx.stop();
    }
}

impl Actor for DataAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let now = self.now();
        self.core.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentStarted)
                .with("provider", self.sources.name().to_string())
                .with("batch_size", self.pacer.batch_size()),
        );
        self.heartbeat(ctx);
        self.core.heartbeat_every(ctx, Self::heartbeat);
        self.arm_phase_clock(ctx);
        if self.core.state == AgentState::Running {
            // Restarted after a crash: the connection stands; reading goes on.
            self.pull(ctx);
        } else {
            self.connect(ctx);
        }
    }
}

impl actix::Supervised for DataAgent {
    /// Keeps the connection (a read the crash interrupted hands its provider back through
    /// the lease), the stream position, the last bar of each symbol (validation goes on
    /// where it was) and the flow-control count (every batch in flight is acknowledged,
    /// empty if an agent downstream lost it). The batch being read when the crash hit is
    /// lost with the crash; the log says so.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.pulling = false;
        if self.sources.in_hand().is_none() {
            self.sources.give_back(self.home.lock().take());
        }
        let now = self.now();
        self.core.log.emit(
            vigil_messages::rebuilt(
                now,
                AgentId::Data,
                "connection, stream position and per-symbol validation state kept",
            )
            .with("in_flight", self.in_flight)
            .with("provider_kept", self.sources.in_hand().is_some()),
        );
        self.core.log.flush();
        if self.sources.in_hand().is_none() && !self.ended {
            self.fail(
                format!(
                    "restarted after a crash, but the data provider {} was lost with it",
                    self.sources.name()
                ),
                Event::DataSourceFailed,
                ctx,
            );
        }
    }
}

impl Handler<BatchDone> for DataAgent {
    type Result = ();

    fn handle(&mut self, msg: BatchDone, ctx: &mut Self::Context) {
        self.core.taken();
        self.in_flight = self.in_flight.saturating_sub(1);
        self.batch_handled(msg.id, ctx);
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
        if self.sources.in_hand().is_some() {
            self.end(msg.reason, ctx);
        }
    }
}

impl Handler<SetQuarantine> for DataAgent {
    type Result = Result<String, CommandError>;

    /// An operator's quarantine (lifted only by command) or release of a symbol.
    fn handle(&mut self, msg: SetQuarantine, _ctx: &mut Self::Context) -> Self::Result {
        let answer = self.quarantine.command(msg, self.now(), &self.symbols);
        if self.publish_quarantine() {
            self.core.log.flush();
        }
        answer
    }
}

impl Handler<ReferenceBars> for DataAgent {
    type Result = ();

    /// Pairs the reference source's bars with the source's; a disagreement found now (the
    /// source's bar already forwarded) quarantines the symbol from now on.
    fn handle(&mut self, msg: ReferenceBars, _ctx: &mut Self::Context) {
        let now = self.now();
        // The session builds the reader only with the check and its watch.
        if self.quarantine.on_reference(&msg.bars, now, &self.symbols) {
            self.publish_quarantine();
            self.core.log.flush();
        }
    }
}

vigil_messages::agent_skeleton!(DataAgent, "data");
