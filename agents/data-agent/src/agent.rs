use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use parking_lot::Mutex;
use vigil_bus::{
    AgentFault, Backlogs, BarBatch, BatchDone, CommandError, DataOutage, Figures, Flow, Heartbeat,
    InjectPanic, PhaseMark, Ping, QuarantineChanged, Reachability, SetQuarantine, Shutdown,
    StageReport, StopReason, SwitchSource, VerifyData, run_every,
};
use vigil_core::{
    AgentId, AgentState, Bar, Clock, FutureGuard, Level, MarketDataEvent, SharedClock, SimClock,
    SymbolTable, Timestamp,
};
use vigil_log::{Event, LogBuffer, LogEvent};
use vigil_providers::DataProvider;

use crate::anomaly::{AnomalyWatch, Verdict};
use crate::crosscheck::{CrossCheck, ReferenceBars, Settle};
use crate::gaps::GapWatch;
use crate::scheduler::Scheduler;

/// The pre-market checks, run when the pre-market phase begins. `Err` names what failed;
/// the session then does not open for trading.
pub trait PremarketGate: Send {
    /// Runs the checks for the session about to open at market time `at`.
    ///
    /// # Errors
    /// Returns the failed checks, as one line for the log.
    fn check(&mut self, at: Timestamp) -> Result<String, String>;
}

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
    /// How far ahead of the wall clock a bar's time may be; a later bar is rejected.
    pub future_tolerance: chrono::Duration,
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
    /// Rejects bars from the future (against `wall`), before they move any clock.
    future: FutureGuard,
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
    /// The provider's `Malformed` is one rejected message of a stream that goes on.
    provider_rejects: bool,
    /// The provider is live (its silence while the exchange is open is missing data).
    provider_live: bool,
    /// Messages the provider rejected (each an ERROR line with its payload).
    parse_errors: u64,
    /// Rejected in a row, and how many in a row fail the source.
    rejected_in_a_row: u32,
    max_rejected_in_a_row: u32,
    /// The automated trading day, when on.
    pub(crate) scheduler: Option<Scheduler>,
    /// Sessions with no bar (data completeness), when configured.
    gaps: Option<GapWatch>,
    gaps_found: u64,
    missing_bars: u64,
    /// Anomaly quarantine, and the Risk agent it tells.
    anomalies: Option<(AnomalyWatch, Recipient<QuarantineChanged>)>,
    /// Bars withheld from the models (their symbol in quarantine).
    withheld: u64,
    /// The comparison with a reference source (quarantines through `anomalies`).
    cross: Option<CrossCheck>,
    /// Pre-market checks run at the pre-market phase.
    gate: Option<Box<dyn PremarketGate>>,
    /// The source's connection, as the pings and fetches found it.
    source: Reachability,
    /// Supervision time the last valid bar arrived (forwarded or withheld).
    last_update_at: Option<Timestamp>,
    /// The first valid bar of the batch being read, if any.
    fresh: Option<Timestamp>,
    /// Ping the source before the next fetch.
    ping_due: bool,
    backlogs: Backlogs,
    /// Where a provider lent to a read comes back to if the read is dropped (a restart
    /// after a crash drops the futures the agent had spawned).
    home: Arc<Mutex<Option<Box<dyn DataProvider>>>>,
    /// Backup sources, in order of preference (a failed source goes to the back).
    standby: VecDeque<Box<dyn DataProvider>>,
    /// Switches since the last good bar: every source failed once it reaches their count.
    switches_in_a_row: usize,
    /// Since the last switch, bars the previous source already delivered are skipped (a
    /// backup starts where it starts); counted here until the first new one.
    catching_up: Option<u64>,
    /// An operator's switch waiting for the read in flight: (source, actor, reason).
    pending_switch: Option<(String, String, String)>,
    /// The first source configured: the one an automatic switch back returns to.
    primary_name: String,
    /// The parse-error rate of the source in use, when watched.
    parse_rate: Option<ParseRate>,
    /// The automatic switch back to the primary, when configured.
    switch_back: Option<SwitchBack>,
    /// What to do when no source is healthy; `None`: the agent fails (fatal).
    outage_links: Option<OutageLinks>,
    /// No source healthy: trading halted, the sources tried again with backoff.
    outage: Option<OutageState>,
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

/// An outage under way.
#[derive(Debug)]
struct OutageState {
    /// Wall time it began.
    since: Timestamp,
    /// The next wait before an attempt.
    backoff: Duration,
    /// Attempts that failed.
    attempts: u32,
    /// Missing bars counted when it began (gaps found across it fail the verification).
    missing_at_start: u64,
}

/// The share of rejected messages among the last `window` a source sent.
#[derive(Debug)]
pub(crate) struct ParseRate {
    window: usize,
    max_pct: f64,
    recent: VecDeque<bool>,
    rejected: usize,
}

impl ParseRate {
    pub(crate) fn new(window: usize, max_pct: f64) -> Self {
        Self {
            window: window.max(1),
            max_pct,
            recent: VecDeque::with_capacity(window.max(1)),
            rejected: 0,
        }
    }

    /// Counts one message; says, once the window is full and the share of rejected ones is
    /// above the bound, how many of how many were rejected.
    pub(crate) fn push(&mut self, rejected: bool) -> Option<(usize, usize)> {
        if self.recent.len() == self.window && self.recent.pop_front() == Some(true) {
            self.rejected -= 1;
        }
        self.recent.push_back(rejected);
        self.rejected += usize::from(rejected);
        let full = self.recent.len() == self.window;
        (full && self.rejected as f64 * 100.0 > self.max_pct * self.window as f64)
            .then_some((self.rejected, self.window))
    }

    fn reset(&mut self) {
        self.recent.clear();
        self.rejected = 0;
    }
}

/// The automatic switch back to the primary after a backup has run for a stable period.
#[derive(Debug)]
struct SwitchBack {
    /// The configured period.
    base: Duration,
    /// The period now (doubled each time the primary failed again before a good bar).
    current: Duration,
    /// When the primary is tried again (wall clock).
    due: Option<Timestamp>,
    /// The primary is back on trial: its first good bar ends the trial.
    trial: bool,
}

/// The provider, lent to a future (a read, a ping, the connection). Handed back by the
/// future when it completes; if the future is dropped instead, the lease puts the
/// provider back at home, where a restarted agent finds it: the connection survives a
/// crash of the agent.
struct Lease {
    provider: Option<Box<dyn DataProvider>>,
    home: Arc<Mutex<Option<Box<dyn DataProvider>>>>,
}

impl Lease {
    fn new(
        provider: Box<dyn DataProvider>,
        home: &Arc<Mutex<Option<Box<dyn DataProvider>>>>,
    ) -> Self {
        Self {
            provider: Some(provider),
            home: home.clone(),
        }
    }

    /// The provider lent.
    fn get(&mut self) -> &mut dyn DataProvider {
        // Infallible: only `give_back`, which consumes the lease, and `drop` take it.
        self.provider
            .as_deref_mut()
            .expect("a lease holds its provider until it is handed back")
    }

    fn give_back(mut self) -> Option<Box<dyn DataProvider>> {
        self.provider.take()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            *self.home.lock() = Some(p);
        }
    }
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
        let provider_rejects = provider.rejects_messages();
        let provider_live = provider.live();
        let n = symbols.len();
        let future = FutureGuard::new(wall.clone(), cfg.future_tolerance);
        Self {
            future,
            cfg,
            provider: Some(provider),
            provider_name: provider_name.clone(),
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
            provider_rejects,
            provider_live,
            parse_errors: 0,
            rejected_in_a_row: 0,
            max_rejected_in_a_row: 5,
            scheduler: None,
            gaps: None,
            gaps_found: 0,
            missing_bars: 0,
            anomalies: None,
            withheld: 0,
            cross: None,
            gate: None,
            source: Reachability::default(),
            last_update_at: None,
            fresh: None,
            ping_due: false,
            backlogs: Backlogs::default(),
            home: Arc::new(Mutex::new(None)),
            standby: VecDeque::new(),
            switches_in_a_row: 0,
            catching_up: None,
            pending_switch: None,
            primary_name: provider_name,
            parse_rate: None,
            switch_back: None,
            outage_links: None,
            outage: None,
        }
    }

    /// Fails the source in use when more than `max_pct` percent of its last `window`
    /// messages were rejected (a streaming provider's; 0: off).
    pub fn with_parse_error_rate(mut self, window: usize, max_pct: f64) -> Self {
        self.parse_rate = (max_pct > 0.0).then(|| ParseRate::new(window, max_pct));
        self
    }

    /// After a failover, tries the primary again once the backup has run `after` without
    /// failing (the period doubles each time the primary fails again before a good bar).
    pub fn with_switch_back(mut self, after: Duration) -> Self {
        self.switch_back = (!after.is_zero()).then_some(SwitchBack {
            base: after,
            current: after,
            due: None,
            trial: false,
        });
        self
    }

    /// When no source is healthy, halts trading and tries the sources again with backoff
    /// instead of failing; good bars again are verified before trading resumes.
    pub fn with_outage_handling(mut self, links: OutageLinks) -> Self {
        self.outage_links = Some(links);
        self
    }

    /// Counts this agent's messages to the Regime agent, and its own mailbox, in the
    /// session's backlogs.
    pub fn with_backlogs(mut self, backlogs: Backlogs) -> Self {
        self.backlogs = backlogs;
        self
    }

    /// Records a ping of the source: its round trip, or why it failed. Logs the moments
    /// the source goes down and comes back.
    fn record_ping(
        &mut self,
        res: Result<(), vigil_providers::ProviderError>,
        took: chrono::Duration,
    ) {
        let was_up = self.source.up;
        match res {
            Ok(()) => {
                self.source.up = true;
                self.source.calls_ok += 1;
                self.source.error = None;
                self.source.latency_s =
                    Some(took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                if !was_up && self.source.calls_failed > 0 {
                    let now = self.now();
                    self.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                            .with("provider", self.provider_name.clone())
                            .with("note", "answering pings again"),
                    );
                }
            }
            Err(e) => {
                self.source.up = false;
                self.source.calls_failed += 1;
                let text = e.to_string();
                if was_up || self.source.error.is_none() {
                    let now = self.now();
                    self.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceFailed)
                            .with("provider", self.provider_name.clone())
                            .with("probe", "ping")
                            .with("error", text.clone()),
                    );
                    self.log.flush();
                }
                self.source.error = Some(text);
            }
        }
    }

    /// Pings the source now if it is idle, or before the next fetch otherwise.
    fn ping_source(&mut self, ctx: &mut Context<Self>) {
        if self.ended || self.state == AgentState::Failed {
            return;
        }
        if self.pulling || self.provider.is_none() {
            self.ping_due = true;
            return;
        }
        let Some(provider) = self.provider.take() else {
            return;
        };
        let mut lease = Lease::new(provider, &self.home);
        self.pulling = true;
        let wall = self.wall.clone();
        let fut = async move {
            let t0 = wall.now();
            let res = lease.get().ping().await;
            let took = wall.now() - t0;
            (lease.give_back(), res, took)
        };
        ctx.spawn(fut.into_actor(self).map(|(provider, res, took), act, ctx| {
            act.provider = provider;
            act.pulling = false;
            act.record_ping(res, took);
            if act.state == AgentState::Running {
                act.pull(ctx);
            }
        }));
    }

    /// Runs `gate` when each pre-market phase begins; a failure keeps that session closed.
    pub fn with_premarket_gate(mut self, gate: Box<dyn PremarketGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Drives the automated trading day: phases are marked in band as bars pass them.
    pub fn with_scheduler(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Backup sources, in order of preference: when the source in use fails (cannot connect,
    /// its stream breaks, too many rejected messages in a row), the next one takes over
    /// (`data_source_switched`, alerted). Only when every source has failed since the last
    /// good bar does the agent fail (fatal: trading halts).
    pub fn with_backups(mut self, backups: Vec<Box<dyn DataProvider>>) -> Self {
        self.standby = backups.into();
        self
    }

    /// The source in use failed with `error`: switches to the next backup, or fails the
    /// agent when there is none left to try.
    fn source_failed(&mut self, error: String, event: Event, ctx: &mut Context<Self>) {
        if let Some(sb) = &mut self.switch_back
            && sb.trial
            && self.provider_name == self.primary_name
        {
            // Back too soon: the backup's next stable period before another try is longer.
            sb.trial = false;
            sb.current = (sb.current * 2).min(Duration::from_secs(24 * 3600));
        }
        if self.outage.is_some() {
            self.retry_later(error, ctx);
            return;
        }
        let sources = self.standby.len() + 1;
        let next = if self.switches_in_a_row + 1 < sources {
            self.standby.pop_front()
        } else {
            None
        };
        match next {
            Some(next) => self.switch_to(next, &error, "failover", ctx),
            None if self.outage_links.is_some() => self.begin_outage(error, ctx),
            None if sources > 1 => self.fail(
                format!("every data source failed ({sources} configured); the last: {error}"),
                event,
                ctx,
            ),
            None => self.fail(error, event, ctx),
        }
    }

    /// Puts `next` in use (the one in use goes to the back of the standby list), logs the
    /// switch and connects it.
    fn switch_to(
        &mut self,
        next: Box<dyn DataProvider>,
        why: &str,
        actor: &str,
        ctx: &mut Context<Self>,
    ) {
        let from = self.install(next);
        self.switches_in_a_row += 1;
        let wall_now = self.wall.now();
        if let Some(sb) = &mut self.switch_back {
            sb.due = (actor == "failover" && self.provider_name != self.primary_name)
                .then(|| vigil_core::later(wall_now, vigil_core::span(sb.current)));
        }
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::DataSourceSwitched)
                .with("from", from)
                .with("to", self.provider_name.clone())
                .with("actor", actor.to_string())
                .with("reason", why.to_string()),
        );
        self.log.flush();
        self.connect(ctx);
    }

    /// Puts `next` in use; the one in use goes to the back of the standby list. Returns the
    /// name of the one it replaces.
    fn install(&mut self, next: Box<dyn DataProvider>) -> String {
        let from = std::mem::take(&mut self.provider_name);
        if let Some(failed) = self.provider.take() {
            self.standby.push_back(failed);
        }
        self.provider_name = next.name().to_string();
        self.provider_validates = next.validates_bars();
        self.provider_rejects = next.rejects_messages();
        self.provider_live = next.live();
        self.provider = Some(next);
        self.rejected_in_a_row = 0;
        self.catching_up = Some(0);
        self.source.up = false;
        if let Some(rate) = &mut self.parse_rate {
            rate.reset();
        }
        from
    }

    /// No source is healthy: trips the breaker (through Risk), logs the outage and tries
    /// the sources again after the first backoff.
    fn begin_outage(&mut self, error: String, ctx: &mut Context<Self>) {
        let Some(links) = &self.outage_links else {
            return;
        };
        let sources = self.standby.len() + 1;
        let reason = format!("no data source is healthy ({sources} configured); the last: {error}");
        links.risk.do_send(DataOutage {
            reason: reason.clone(),
            operator_resumes: links.operator_resumes,
        });
        let backoff = links.reconnect_initial;
        let resume = if links.operator_resumes {
            "operator"
        } else {
            "verify"
        };
        self.outage = Some(OutageState {
            since: self.wall.now(),
            backoff,
            attempts: 0,
            missing_at_start: self.missing_bars,
        });
        self.source.up = false;
        self.source.error = Some(error.clone());
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::DataOutage)
                .with("provider", self.provider_name.clone())
                .with("sources", sources)
                .with("error", error)
                .with("received_at", self.wall.now())
                .with("retry_in_ms", backoff.as_millis() as u64)
                .with("resume", resume)
                .with(
                    "action",
                    "trading halted (breaker); the sources are tried again with backoff",
                ),
        );
        self.log.flush();
        self.schedule_reconnect(ctx);
    }

    /// An attempt during the outage failed: the next source is tried after a longer wait.
    fn retry_later(&mut self, error: String, ctx: &mut Context<Self>) {
        let Some(o) = &mut self.outage else { return };
        o.attempts += 1;
        let attempt = o.attempts;
        let wait = o.backoff;
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::DataSourceFailed)
                .level(Level::Warn)
                .with("provider", self.provider_name.clone())
                .with("attempt", u64::from(attempt))
                .with("error", error)
                .with("retry_in_ms", wait.as_millis() as u64),
        );
        self.log.flush();
        if let Some(next) = self.standby.pop_front() {
            self.install(next);
        }
        self.schedule_reconnect(ctx);
    }

    /// Connects the source in use after the outage's backoff, which then doubles.
    fn schedule_reconnect(&mut self, ctx: &mut Context<Self>) {
        let (Some(o), Some(links)) = (&mut self.outage, &self.outage_links) else {
            return;
        };
        let wait = o.backoff;
        o.backoff = (o.backoff * 2).min(links.reconnect_max);
        let deadline = vigil_core::later(self.wall.now(), vigil_core::span(wait));
        // The provider stays in hand: a stop meanwhile ends the stream at once.
        self.pulling = true;
        let sleep = self.wall.sleep_until(deadline);
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(sleep).map(|(), act, ctx| {
                act.pulling = false;
                if act.ended {
                    return;
                }
                if let Some(reason) = act.stop_requested.clone() {
                    act.end(reason, ctx);
                    return;
                }
                act.connect(ctx);
            }),
        );
    }

    /// Good bars again after an outage: logs it and asks the Execution agent to verify the
    /// books before trading resumes (sent before the bars, so it is under way first).
    fn end_outage(&mut self, first_bar: Timestamp) {
        let Some(o) = self.outage.take() else { return };
        let outage_s = (self.wall.now() - o.since).num_seconds();
        let missing_bars = self.missing_bars - o.missing_at_start;
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::DataRecovered)
                .with("provider", self.provider_name.clone())
                .with("outage_s", outage_s)
                .with("attempts", u64::from(o.attempts))
                .with("first_bar", first_bar)
                .with("missing_bars", missing_bars)
                .with(
                    "action",
                    "the books are verified with the venue before trading resumes",
                ),
        );
        self.log.flush();
        if let Some(links) = &self.outage_links {
            links.execution.do_send(VerifyData {
                source: self.provider_name.clone(),
                outage_s,
                first_bar,
                missing_bars,
            });
        }
        let wall_now = self.wall.now();
        if let Some(sb) = &mut self.switch_back
            && self.provider_name != self.primary_name
        {
            sb.due = Some(vigil_core::later(wall_now, vigil_core::span(sb.current)));
        }
    }

    /// On each heartbeat: once the backup in use has run its stable period, the primary is
    /// tried again (after the read in flight).
    fn check_switch_back(&mut self, ctx: &mut Context<Self>) {
        let now = self.wall.now();
        let Some(sb) = &mut self.switch_back else {
            return;
        };
        if self.outage.is_some()
            || self.pending_switch.is_some()
            || self.ended
            || sb.due.is_none_or(|due| now < due)
        {
            return;
        }
        sb.due = None;
        if self.provider_name == self.primary_name
            || !self.standby.iter().any(|p| p.name() == self.primary_name)
        {
            return;
        }
        sb.trial = true;
        self.pending_switch = Some((
            self.primary_name.clone(),
            "switch_back".into(),
            format!(
                "{} ran {} s without failing ([data.feed] switch_back_after_s)",
                self.provider_name,
                sb.current.as_secs()
            ),
        ));
        self.pull(ctx);
    }

    /// How many messages a streaming provider may reject in a row (no good bar between)
    /// before the source counts as failed (default 5).
    pub fn with_rejection_limit(mut self, in_a_row: u32) -> Self {
        self.max_rejected_in_a_row = in_a_row.max(1);
        self
    }

    /// Checks every accepted bar for sessions of the exchange calendar with no bar.
    pub fn with_gap_watch(mut self, gaps: GapWatch) -> Self {
        self.gaps = Some(gaps);
        self
    }

    /// Puts a symbol whose price jumps beyond `watch`'s bounds in quarantine: its bars are
    /// withheld from the models, and `risk` blocks new orders in it until it is released.
    pub fn with_anomaly_watch(
        mut self,
        watch: AnomalyWatch,
        risk: Recipient<QuarantineChanged>,
    ) -> Self {
        self.anomalies = Some((watch, risk));
        self
    }

    /// Compares the accepted bars with a reference source's (see [`CrossCheck`]): a
    /// disagreement puts the symbol in quarantine through the anomaly watch (which must be
    /// set too; with neither bound it only holds what the cross-check and operators put in).
    pub fn with_cross_check(mut self, check: CrossCheck) -> Self {
        self.cross = Some(check);
        self
    }

    /// Screens an accepted bar for anomalies; says whether it goes on to the models.
    fn screen(&mut self, bar: &Bar) -> bool {
        if let (Some(cross), Some((watch, risk))) = (&mut self.cross, &mut self.anomalies)
            && let Some(pair) = cross.on_primary(&self.provider_name, bar)
        {
            let release_after = cross.release_after();
            Settle {
                watch,
                risk,
                log: &mut self.log,
                symbols: &self.symbols,
                service: SERVICE,
            }
            .apply(pair, release_after, self.clock.stamp(bar.ts));
        }
        let Some((watch, risk)) = &mut self.anomalies else {
            return true;
        };
        let verdict = watch.on_bar(bar);
        if verdict == Verdict::Held {
            self.withheld += 1;
            return false;
        }
        // Risk hears it before the batch this bar would be in: no signal of a later bar
        // reaches it first.
        let on = Settle {
            watch,
            risk,
            log: &mut self.log,
            symbols: &self.symbols,
            service: SERVICE,
        }
        .announce(
            verdict,
            bar.symbol,
            bar.ts,
            self.clock.stamp(bar.ts),
            "anomaly_rule",
            bar.close,
            None,
        );
        if on == Some(true) {
            self.withheld += 1;
            return false;
        }
        true
    }

    /// Logs the sessions missing before `bar`, if any (`data_gap`, ERROR, alerted).
    fn check_gap(&mut self, bar: &Bar) {
        let Some(watch) = &mut self.gaps else { return };
        let found = watch.on_bar(bar.symbol, bar.ts);
        let now = self.clock.stamp(bar.ts);
        let symbol = self.symbols.shared(bar.symbol);
        match found {
            Ok(None) => {}
            Ok(Some(gap)) => {
                self.gaps_found += 1;
                self.missing_bars += gap.missing.len() as u64;
                const SHOWN: usize = 10;
                let mut sessions: Vec<String> = gap
                    .missing
                    .iter()
                    .take(SHOWN)
                    .map(|d| d.to_string())
                    .collect();
                if gap.missing.len() > SHOWN {
                    sessions.push(format!("… {} more", gap.missing.len() - SHOWN));
                }
                self.log.emit(
                    LogEvent::new(now, SERVICE, Event::DataGap)
                        .with("symbol", symbol)
                        .with("provider", self.provider_name.clone())
                        .with("after", gap.after.to_string())
                        .with("before", gap.before.to_string())
                        .with("missing", gap.missing.len() as u64)
                        .with("sessions", sessions.join(",")),
                );
            }
            Err(e) => self.log.emit(
                LogEvent::new(now, SERVICE, Event::DataGap)
                    .level(Level::Warn)
                    .with("symbol", symbol)
                    .with("provider", self.provider_name.clone())
                    .with("error", e.to_string()),
            ),
        }
    }

    /// Finds the phases that begin within `bars` and logs each.
    fn phase_marks(&mut self, bars: &[Bar]) -> Vec<PhaseMark> {
        let Some(scheduler) = &mut self.scheduler else {
            return Vec::new();
        };
        let mut marks = Vec::new();
        let mut failed = None;
        for (i, bar) in bars.iter().enumerate() {
            if let Err(e) = scheduler.marks_before(i, bar.ts, &mut marks) {
                failed = Some(e.to_string());
                break;
            }
        }
        let sessions: Vec<_> = marks
            .iter()
            .map(|m| scheduler.calendar().local_date(m.at))
            .collect();
        for (m, session) in marks.iter_mut().zip(&sessions) {
            if m.phase == vigil_calendar::Phase::PremarketValidation
                && let Some(gate) = self.gate.as_mut()
            {
                let stamp = self.clock.stamp(m.at);
                match gate.check(m.at) {
                    Ok(report) => self.log.emit(
                        LogEvent::new(stamp, SERVICE, Event::ChecklistCompleted)
                            .with("checklist", "premarket")
                            .with("session", session.to_string())
                            .with("report", report),
                    ),
                    Err(failures) => {
                        m.blocked = true;
                        self.log.emit(
                            LogEvent::new(stamp, SERVICE, Event::ChecklistFailed)
                                .with("checklist", "premarket")
                                .with("session", session.to_string())
                                .with("failed", failures)
                                .with("action", "trading does not open this session"),
                        );
                    }
                }
            }
            self.log.emit(
                LogEvent::new(self.clock.stamp(m.at), SERVICE, Event::PhaseChanged)
                    .with("phase", m.phase.as_str())
                    .with("session", session.to_string())
                    .with("at", m.at),
            );
        }
        if let Some(error) = failed {
            // Out of the calendar's range: stop automating rather than guess.
            self.scheduler = None;
            let now = self.now();
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::ScheduleFailed).with("error", error.clone()),
            );
            self.faults.do_send(AgentFault {
                agent: AgentId::Data,
                error: format!("schedule: {error}"),
                fatal: false,
            });
        }
        marks
    }

    fn batch_size(&self) -> usize {
        match self.cfg.pacing {
            // Paced replays hand bars over one at a time, as a live feed would.
            Pacing::Factor(_) => 1,
            Pacing::Max => self.cfg.batch_size,
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        self.monitor.do_send(Heartbeat {
            agent: AgentId::Data,
            state: self.state,
            at: self.wall.now(),
            processed: self.bars,
            figures: Figures::Data {
                last_bar_at: self.last,
                last_update_at: self.last_update_at,
                bars: self.bars,
                rejected: self.rejected,
                parse_errors: self.parse_errors,
                gaps: self.gaps_found,
                missing_bars: self.missing_bars,
                quarantined: self
                    .anomalies
                    .as_ref()
                    .map_or(0, |(w, _)| w.quarantined().count() as u64),
                withheld: self.withheld,
                disagreements: self.cross.as_ref().map_or(0, CrossCheck::disagreements),
                live: self.provider_live,
                ended: self.ended,
                source: self.source.clone(),
            },
        });
        if self.state != AgentState::Starting {
            self.ping_source(ctx);
        }
        self.check_switch_back(ctx);
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        let mut lease = Lease::new(provider, &self.home);
        let symbols: Vec<_> = self.symbols.iter().map(|(id, s)| (id, s.clone())).collect();
        self.pulling = true;
        let fut = async move {
            let res = match lease.get().connect().await {
                Ok(()) => lease.get().subscribe(&symbols).await,
                Err(e) => Err(e),
            };
            (lease.give_back(), res)
        };
        ctx.spawn(fut.into_actor(self).map(|(provider, res), act, ctx| {
            act.provider = provider;
            act.pulling = false;
            match res {
                Ok(()) => {
                    act.state = AgentState::Running;
                    act.source.up = true;
                    act.source.calls_ok += 1;
                    let now = act.now();
                    act.log.emit(
                        LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                            .with("provider", act.provider_name.clone())
                            .with("symbols", act.symbols.len()),
                    );
                    act.log.flush();
                    act.pull(ctx);
                }
                Err(e) => act.source_failed(e.to_string(), Event::DataSourceFailed, ctx),
            }
        }));
    }

    pub(crate) fn market_now(&self) -> Timestamp {
        self.now()
    }

    pub(crate) fn log_mut(&mut self) -> &mut LogBuffer {
        &mut self.log
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
        if let Some((name, actor, reason)) = self.pending_switch.take()
            && let Some(i) = self.standby.iter().position(|p| p.name() == name)
            && let Some(next) = self.standby.remove(i)
        {
            // The operator chose it: it counts as a fresh start, not a failover.
            self.switch_to(next, &reason, &actor, ctx);
            self.switches_in_a_row = 0;
            return;
        }
        if let Some(reason) = self.stop_requested.clone() {
            self.end(reason, ctx);
            return;
        }
        if self.in_flight >= self.cfg.max_in_flight {
            return;
        }
        let Some(provider) = self.provider.take() else {
            return;
        };
        let mut lease = Lease::new(provider, &self.home);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let max = self.batch_size();
        self.pulling = true;
        let ping = std::mem::take(&mut self.ping_due).then(|| self.wall.clone());
        let fut = async move {
            let probe = match ping {
                Some(wall) => {
                    let t0 = wall.now();
                    let res = lease.get().ping().await;
                    Some((res, wall.now() - t0))
                }
                None => None,
            };
            let res = lease.get().next_batch(max, &mut events).await;
            (lease.give_back(), events, res, probe)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(|(provider, events, res, probe), act, ctx| {
                    act.provider = provider;
                    act.pulling = false;
                    if let Some((ping, took)) = probe {
                        act.record_ping(ping, took);
                    }
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
            Ok(more) => {
                self.source.calls_ok += 1;
                more
            }
            Err(vigil_providers::ProviderError::Malformed(detail)) if self.provider_rejects => {
                // One message of a stream that goes on: never skipped silently, and a
                // source that sends nothing else fails.
                self.events = events;
                self.parse_errors += 1;
                self.rejected_in_a_row += 1;
                let now = self.now();
                self.log.emit(
                    LogEvent::new(now, SERVICE, Event::DataParseFailed)
                        .level(vigil_core::Level::Error)
                        .with("provider", self.provider_name.clone())
                        .with("rejected_in_a_row", u64::from(self.rejected_in_a_row))
                        .with("error", detail.clone()),
                );
                self.log.flush();
                let rate = self.parse_rate.as_mut().and_then(|r| r.push(true));
                if self.rejected_in_a_row >= self.max_rejected_in_a_row {
                    self.source.calls_failed += 1;
                    let error = format!(
                        "{} messages in a row rejected by the feed's parser (the format \
                         changed?); the last: {detail}",
                        self.rejected_in_a_row
                    );
                    self.source_failed(error, Event::DataSourceFailed, ctx);
                } else if let Some((rejected, window)) = rate {
                    self.source.calls_failed += 1;
                    let error = format!(
                        "{rejected} of the last {window} messages rejected by the feed's parser \
                         (above [data.feed] max_parse_error_pct); the last: {detail}"
                    );
                    self.source_failed(error, Event::DataSourceFailed, ctx);
                } else {
                    self.after_send(true, ctx);
                }
                return;
            }
            Err(e) => {
                self.source.calls_failed += 1;
                // Bars read before the error were delivered in earlier batches; this one
                // carries none (the provider reports the error on its own).
                self.events = events;
                let event = match e {
                    vigil_providers::ProviderError::Malformed(_) => Event::DataParseFailed,
                    _ => Event::DataSourceFailed,
                };
                self.source_failed(e.to_string(), event, ctx);
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
        if let Some(rate) = &mut self.parse_rate
            && self.provider_rejects
        {
            for _ in &events {
                // A good message cannot push the rate over its bound.
                rate.push(false);
            }
        }
        for ev in &events {
            let MarketDataEvent::Bar(bar) = ev;
            if self.accept(bar) {
                bars.push(*bar);
            }
        }
        self.events = events;
        self.log.flush();
        // The source delivers valid bars (forwarded, or withheld by a quarantine).
        if let Some(first) = self.fresh.take() {
            self.last_update_at = Some(self.wall.now());
            self.rejected_in_a_row = 0;
            self.switches_in_a_row = 0;
            if self.outage.is_some() {
                self.end_outage(first);
            }
            if let Some(sb) = &mut self.switch_back
                && sb.trial
                && self.provider_name == self.primary_name
            {
                // The primary delivers again: the period is back to its configured length.
                sb.trial = false;
                sb.current = sb.base;
            }
        }
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
        // Saturating: a factor or a gap the clock cannot hold is a deadline that never comes,
        // not a panic.
        let offset_ms = ((first - market0).num_milliseconds() as f64 / factor).round() as i64;
        let deadline = vigil_core::later(
            wall0,
            chrono::Duration::try_milliseconds(offset_ms).unwrap_or(chrono::Duration::MAX),
        );
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
        if let Some(skipped) = &mut self.catching_up {
            // A backup that starts behind: what the last source delivered is not news.
            if self.last_ts[bar.symbol.index()].is_some_and(|p| bar.ts <= p) {
                *skipped += 1;
                return false;
            }
            let skipped = *skipped;
            self.catching_up = None;
            let now = self.clock.stamp(bar.ts);
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::DataSourceConnected)
                    .with("provider", self.provider_name.clone())
                    .with("first_new_bar", bar.ts)
                    .with("skipped_already_seen", skipped),
            );
        }
        let reason = if self.symbols.symbol(bar.symbol).is_none() {
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
        if let Some(reason) = reason {
            self.rejected += 1;
            // Stamped with the time the agent stands at, not the bar's: a rejected bar's
            // time may be anything (2099).
            let now = self.now();
            self.log.emit(
                LogEvent::new(now, SERVICE, Event::BarRejected)
                    .with("symbol", self.symbols.shared(bar.symbol))
                    .with("bar_time", bar.ts)
                    .with("reason", reason),
            );
            return false;
        }
        self.last_ts[bar.symbol.index()] = Some(bar.ts);
        self.check_gap(bar);
        // Valid data arrived, withheld or not: the source is not stale, and market time
        // moves on with it.
        self.fresh = self.fresh.or(Some(bar.ts));
        let forward = self.screen(bar);
        if !forward && let Some(market) = &self.market {
            market.advance_to(bar.ts);
        }
        forward
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
        if !bars.is_empty() {
            self.last_update_at = Some(self.wall.now());
        }
        let phases = self.phase_marks(&bars);
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.in_flight += 1;
        // Bounded by flow control: at most `max_in_flight` batches are unacknowledged.
        self.backlogs.sent(AgentId::Regime);
        self.downstream.do_send(Flow::Data(BarBatch {
            id,
            bars: std::sync::Arc::new(bars),
            phases: phases.into(),
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
        self.backlogs.sent(AgentId::Regime);
        self.downstream.do_send(Flow::End(reason.clone()));
        self.reports.do_send(StageReport::Data {
            bars: self.bars,
            rejected: self.rejected,
            parse_errors: self.parse_errors,
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
        if self.state == AgentState::Running {
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
        if self.provider.is_none() {
            self.provider = self.home.lock().take();
        }
        let now = self.now();
        self.log.emit(
            LogEvent::new(now, SERVICE, Event::AgentRebuilt)
                .with("agent", "data")
                .with(
                    "rebuilt",
                    "connection, stream position and per-symbol validation state kept",
                )
                .with("in_flight", self.in_flight)
                .with("provider_kept", self.provider.is_some()),
        );
        self.log.flush();
        if self.provider.is_none() && !self.ended {
            self.fail(
                format!(
                    "restarted after a crash, but the data provider {} was lost with it",
                    self.provider_name
                ),
                Event::DataSourceFailed,
                ctx,
            );
        }
    }
}

impl Handler<Ping> for DataAgent {
    type Result = ();

    fn handle(&mut self, _msg: Ping, _ctx: &mut Self::Context) {}
}

impl Handler<BatchDone> for DataAgent {
    type Result = ();

    fn handle(&mut self, msg: BatchDone, ctx: &mut Self::Context) {
        self.backlogs.taken(AgentId::Data);
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

impl Handler<SwitchSource> for DataAgent {
    type Result = Result<String, CommandError>;

    /// Switches to a configured backup (or back to the primary) by name. The switch
    /// happens once the read in flight returns; an unknown name is refused with the names
    /// that exist.
    fn handle(&mut self, msg: SwitchSource, ctx: &mut Self::Context) -> Self::Result {
        if msg.name == self.provider_name {
            return Ok(format!("already reading from {}", self.provider_name));
        }
        if !self.standby.iter().any(|p| p.name() == msg.name) {
            let mut names = vec![self.provider_name.clone()];
            names.extend(self.standby.iter().map(|p| p.name().to_string()));
            return Err(CommandError::Invalid(format!(
                "unknown data source {:?}; configured sources: {}",
                msg.name,
                names.join(", ")
            )));
        }
        if self.ended {
            return Err(CommandError::Conflict(
                "the data agent has stopped reading".into(),
            ));
        }
        let answer = format!(
            "switching from {} to {} (after the read in flight)",
            self.provider_name, msg.name
        );
        self.pending_switch = Some((msg.name, msg.actor, msg.reason));
        self.pull(ctx);
        Ok(answer)
    }
}

impl Handler<SetQuarantine> for DataAgent {
    type Result = Result<String, CommandError>;

    /// An operator's quarantine (lifted only by command) or release of a symbol.
    fn handle(&mut self, msg: SetQuarantine, _ctx: &mut Self::Context) -> Self::Result {
        let Some(symbol) = self.symbols.id(&msg.symbol) else {
            return Err(CommandError::Invalid(format!(
                "unknown symbol {:?}; symbols: {}",
                msg.symbol,
                self.symbols
                    .iter()
                    .map(|(id, _)| self.symbols.name(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Some((watch, risk)) = &mut self.anomalies else {
            return Err(CommandError::Conflict(
                "anomaly quarantine is off ([data.anomaly] enabled = false)".into(),
            ));
        };
        let changed = if msg.on {
            watch.quarantine(symbol)
        } else {
            watch.release(symbol)
        };
        if !changed {
            return Ok(format!(
                "{} {} already",
                msg.symbol,
                if msg.on {
                    "in quarantine"
                } else {
                    "not in quarantine"
                }
            ));
        }
        risk.do_send(QuarantineChanged {
            symbol,
            on: msg.on,
            reason: msg.reason.clone(),
        });
        let now = self.now();
        let event = if msg.on {
            Event::SymbolQuarantined
        } else {
            Event::SymbolReleased
        };
        self.log.emit(
            LogEvent::new(now, SERVICE, event)
                .with("symbol", self.symbols.shared(symbol))
                .with("actor", msg.actor)
                .with("reason", msg.reason),
        );
        self.log.flush();
        Ok(if msg.on {
            format!(
                "{} in quarantine: its bars are withheld and no new order goes out in it until \
                 `vigil ctl release {}`",
                msg.symbol, msg.symbol
            )
        } else {
            format!("{} released: its bars reach the models again", msg.symbol)
        })
    }
}

impl Handler<ReferenceBars> for DataAgent {
    type Result = ();

    /// Pairs the reference source's bars with the source's; a disagreement found now (the
    /// source's bar already forwarded) quarantines the symbol from now on.
    fn handle(&mut self, msg: ReferenceBars, _ctx: &mut Self::Context) {
        let now = self.now();
        // The session builds the reader only with the check and its watch.
        let (Some(cross), Some((watch, risk))) = (&mut self.cross, &mut self.anomalies) else {
            return;
        };
        let release_after = cross.release_after();
        let mut settle = Settle {
            watch,
            risk,
            log: &mut self.log,
            symbols: &self.symbols,
            service: SERVICE,
        };
        for bar in &msg.bars {
            if let Some(pair) = cross.on_reference(bar) {
                settle.apply(pair, release_after, now);
            }
        }
        self.log.flush();
    }
}

impl Handler<InjectPanic> for DataAgent {
    type Result = ();

    fn handle(&mut self, msg: InjectPanic, _ctx: &mut Self::Context) {
        panic!("injected panic in the data agent (asked by {})", msg.actor);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use async_trait::async_trait;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;
    use vigil_core::{Level, Symbol, SymbolId};
    use vigil_log::{LogSink, MemoryLog, Value};
    use vigil_providers::{CsvReplayProvider, CsvSource, ProviderError, ProviderHealth};
    use vigil_testkit::{Recorder, logged, record_enum, settle, text, timestamp as t};

    use super::*;

    record_enum! {
        /// Everything the Data agent sent, in arrival order.
        #[derive(Debug)]
        enum Got {
            Batch(BarBatch),
            End(StopReason),
            Heartbeat(Heartbeat),
            Report(StageReport),
            Fault(AgentFault),
            Quarantine(QuarantineChanged),
            Outage(DataOutage),
            Verify(VerifyData),
        }
        Flow<BarBatch> => Batch, End;
    }

    /// Asks the agent for its flow-control figures; answered after every message before it.
    #[derive(Message)]
    #[rtype(result = "(usize, bool)")]
    struct Probe;

    impl Handler<Probe> for DataAgent {
        type Result = MessageResult<Probe>;
        fn handle(&mut self, _msg: Probe, _ctx: &mut Context<Self>) -> Self::Result {
            MessageResult((self.in_flight, self.pulling))
        }
    }

    /// A provider of a fixed list of events that leaves bar validation to the agent.
    struct VecProvider {
        events: VecDeque<MarketDataEvent>,
    }

    #[async_trait]
    impl DataProvider for VecProvider {
        fn name(&self) -> &str {
            "vec"
        }

        async fn connect(&mut self) -> Result<(), ProviderError> {
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
            max: usize,
            out: &mut Vec<MarketDataEvent>,
        ) -> Result<bool, ProviderError> {
            let n = max.min(self.events.len());
            out.extend(self.events.drain(..n));
            Ok(!self.events.is_empty())
        }

        fn health(&self) -> ProviderHealth {
            ProviderHealth::default()
        }

        fn validates_bars(&self) -> bool {
            false
        }
    }

    /// A stream that goes on after a rejected message (as a network feed does): bars, and
    /// `Err` for a message its parser rejected.
    struct Script {
        name: &'static str,
        items: VecDeque<Result<Bar, ProviderError>>,
    }

    #[async_trait]
    impl DataProvider for Script {
        fn name(&self) -> &str {
            self.name
        }

        async fn connect(&mut self) -> Result<(), ProviderError> {
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
            max: usize,
            out: &mut Vec<MarketDataEvent>,
        ) -> Result<bool, ProviderError> {
            while out.len() < max {
                match self.items.front() {
                    Some(Ok(bar)) => {
                        out.push(MarketDataEvent::Bar(*bar));
                        self.items.pop_front();
                    }
                    Some(Err(_)) if !out.is_empty() => break,
                    Some(Err(_)) => {
                        if let Some(Err(e)) = self.items.pop_front() {
                            return Err(e);
                        }
                    }
                    None => break,
                }
            }
            Ok(!self.items.is_empty())
        }

        fn health(&self) -> ProviderHealth {
            ProviderHealth::default()
        }

        fn rejects_messages(&self) -> bool {
            true
        }
    }

    fn day(d: u32) -> Timestamp {
        t(&format!("2024-01-{d:02}T00:00:00Z"))
    }

    fn bar(d: u32, close: Decimal) -> Bar {
        Bar {
            symbol: SymbolId(0),
            ts: day(d),
            open: close,
            high: close + dec!(1),
            low: close - dec!(1),
            close,
            volume: Some(dec!(1000)),
        }
    }

    /// A CSV of `rows` daily bars from 2024-01-01, closes 100, 101, …
    fn csv(rows: u32) -> String {
        let mut text = String::from("timestamp,open,high,low,close,volume\n");
        for i in 0..rows {
            let c = 100 + i;
            text.push_str(&format!(
                "2024-01-{:02},{c},{},{},{c},1000\n",
                i + 1,
                c + 1,
                c - 1
            ));
        }
        text
    }

    fn csv_provider(name: &str, text: String, batch_size: usize) -> Box<dyn DataProvider> {
        Box::new(CsvReplayProvider::new(
            vec![CsvSource::bytes(SymbolId(0), name, text.into_bytes())],
            batch_size,
        ))
    }

    struct Harness {
        addr: Addr<DataAgent>,
        seen: Recorder<Got>,
        log: MemoryLog,
        market: SimClock,
        wall: SimClock,
    }

    fn start(provider: Box<dyn DataProvider>, batch_size: usize, max_in_flight: usize) -> Harness {
        start_paced(provider, batch_size, max_in_flight, Pacing::Max)
    }

    fn start_paced(
        provider: Box<dyn DataProvider>,
        batch_size: usize,
        max_in_flight: usize,
        pacing: Pacing,
    ) -> Harness {
        start_with(provider, batch_size, max_in_flight, pacing, |agent, _| {
            agent
        })
    }

    fn start_with(
        provider: Box<dyn DataProvider>,
        batch_size: usize,
        max_in_flight: usize,
        pacing: Pacing,
        setup: impl FnOnce(DataAgent, &Addr<vigil_testkit::RecordingActor<Got>>) -> DataAgent,
    ) -> Harness {
        let market = SimClock::starting_at(t("2023-12-31T00:00:00Z"));
        let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
        let (sink, log) = LogSink::memory();
        let seen = Recorder::new();
        // Stands in for the Regime agent and the Monitor.
        let collector = seen.start_actor();
        let others = collector.clone();
        let agent = DataAgent::new(
            DataAgentConfig {
                batch_size,
                max_in_flight,
                pacing,
                heartbeat_interval: Duration::from_secs(1),
                future_tolerance: chrono::Duration::seconds(60),
            },
            provider,
            SymbolTable::new([Symbol::from("TEST")]),
            Some(market.clone()),
            Arc::new(market.clone()),
            Arc::new(wall.clone()),
            LogBuffer::new(sink, SERVICE, Level::Debug),
            collector.clone().recipient(),
            collector.clone().recipient(),
            collector.clone().recipient(),
            collector.recipient(),
        );
        Harness {
            addr: setup(agent, &others).start(),
            seen,
            log,
            market,
            wall,
        }
    }

    impl Harness {
        async fn wait_for_end(&self) {
            // The stage report is sent right after the end marker.
            self.seen
                .wait_until("the end marker and the stage report", |got| {
                    got.iter().any(|g| matches!(g, Got::End(_)))
                        && got.iter().any(|g| matches!(g, Got::Report(_)))
                })
                .await;
        }
    }

    fn closes(batch: &BarBatch) -> Vec<Decimal> {
        batch.bars.iter().map(|b| b.close).collect()
    }

    fn closes_of(batches: &[BarBatch]) -> Vec<Decimal> {
        batches.iter().flat_map(closes).collect()
    }

    #[actix_rt::test]
    async fn csv_bars_reach_downstream_in_batches_of_batch_size_then_end_of_data() {
        let h = start(csv_provider("TEST.csv", csv(7), 3), 3, 4);
        h.wait_for_end().await;

        let batches = h.seen.all::<BarBatch>();
        assert_eq!(
            batches.iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(
            batches.iter().map(|b| b.bars.len()).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
        assert_eq!(closes(&batches[0]), vec![dec!(100), dec!(101), dec!(102)]);
        assert_eq!(closes(&batches[2]), vec![dec!(106)]);
        assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
        // The end marker travels behind every batch.
        h.seen.with(|got| {
            assert!(matches!(
                got.iter()
                    .rfind(|g| matches!(g, Got::Batch(_) | Got::End(_))),
                Some(Got::End(_))
            ));
        });
        match h.seen.all::<StageReport>().as_slice() {
            [
                StageReport::Data {
                    bars,
                    rejected,
                    parse_errors,
                    first,
                    last,
                    source,
                },
            ] => {
                assert_eq!((*bars, *rejected, *parse_errors), (7, 0, 0));
                assert_eq!(*first, Some(day(1)));
                assert_eq!(*last, Some(day(7)));
                assert_eq!(source, "csv:TEST.csv");
            }
            other => panic!("expected one data report, got {other:?}"),
        }
        assert_eq!(h.market.now(), day(7), "market clock at the last bar");
        assert!(h.seen.all::<AgentFault>().is_empty());
        let names = h.log.names();
        for name in [
            "agent_started",
            "data_source_connected",
            "data_source_exhausted",
            "agent_stopped",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let stopped = &logged(&h.log, Event::AgentStopped)[0];
        assert_eq!(text(stopped, "reason"), "end_of_data");
        assert_eq!(stopped.get("bars"), Some(&Value::U64(7)));
    }

    #[actix_rt::test]
    async fn with_one_batch_in_flight_no_second_batch_is_sent_before_batch_done() {
        let h = start(csv_provider("TEST.csv", csv(5), 2), 2, 1);
        h.seen.wait_for::<BarBatch>(1).await;

        // Everything the agent had to do before the probe is done: it is waiting.
        let (in_flight, pulling) = h.addr.send(Probe).await.expect("probe");
        assert_eq!((in_flight, pulling), (1, false));
        settle().await;
        assert_eq!(
            h.seen.all::<BarBatch>().len(),
            1,
            "second batch sent before the ack"
        );

        // Hand the bars back, as the Execution agent does: the buffer is reused.
        let first = h.seen.take_all::<BarBatch>().remove(0);
        let buffer = first.bars.as_ptr();
        h.addr.do_send(BatchDone {
            id: first.id,
            bars: first.bars,
        });
        h.seen.wait_for::<BarBatch>(1).await;
        let second = h.seen.take_all::<BarBatch>().remove(0);
        assert_eq!(second.id, 1);
        assert_eq!(closes(&second), vec![dec!(102), dec!(103)]);
        assert_eq!(
            second.bars.as_ptr(),
            buffer,
            "the handed-back buffer is reused"
        );
        let (in_flight, _) = h.addr.send(Probe).await.expect("probe");
        assert_eq!(in_flight, 1);
        assert!(h.seen.all::<StopReason>().is_empty());

        h.addr.do_send(BatchDone {
            id: second.id,
            bars: second.bars,
        });
        h.seen.wait_for::<BarBatch>(1).await;
        let third = h.seen.take_all::<BarBatch>().remove(0);
        assert_eq!((third.id, closes(&third)), (2, vec![dec!(104)]));
        // The source is exhausted, but the end waits for the last ack too.
        assert!(h.seen.all::<StopReason>().is_empty());
        h.addr.do_send(BatchDone {
            id: third.id,
            bars: third.bars,
        });
        h.wait_for_end().await;
        assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
        assert_eq!(h.market.now(), day(5));
    }

    #[actix_rt::test]
    async fn malformed_csv_row_is_logged_reported_as_fatal_and_ends_the_stream_failed() {
        let data = "timestamp,open,high,low,close,volume\n\
                    2024-01-01,100,101,99,100,1000\n\
                    2024-01-02,101,102,100,101,1000\n\
                    2024-01-03,102,103,101,abc,1000\n\
                    2024-01-04,103,104,102,103,1000\n"
            .to_string();
        let h = start(csv_provider("BAD.csv", data, 3), 3, 4);
        h.wait_for_end().await;

        let expected = "BAD.csv:4: column 'close': cannot parse \"abc\" as a decimal";
        // The bars read before the bad row are delivered first.
        let batches = h.seen.all::<BarBatch>();
        assert_eq!(batches.len(), 1);
        assert_eq!(closes(&batches[0]), vec![dec!(100), dec!(101)]);

        let failed = logged(&h.log, Event::DataParseFailed);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].level, Level::Error);
        assert_eq!(text(&failed[0], "error"), expected);
        assert_eq!(text(&failed[0], "provider"), "csv:BAD.csv");

        let faults = h.seen.all::<AgentFault>();
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].agent, AgentId::Data);
        assert!(faults[0].fatal);
        assert_eq!(faults[0].error, expected);

        assert_eq!(
            h.seen.all::<StopReason>(),
            vec![StopReason::Failed(expected.into())]
        );
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Data {
                bars: 2,
                rejected: 0,
                ..
            }]
        ));
        assert_eq!(h.market.now(), day(2));
        let stopped = &logged(&h.log, Event::AgentStopped)[0];
        assert_eq!(text(stopped, "reason"), "failed");
    }

    /// Thursday 4 and Friday 5 January 2024 are NYSE sessions with no bar: one gap, logged
    /// at ERROR with the missing sessions; every bar that did come is forwarded as it is.
    #[actix_rt::test]
    async fn sessions_with_no_bar_are_a_logged_gap_and_nothing_is_invented() {
        let provider = VecProvider {
            events: [bar(2, dec!(100)), bar(3, dec!(101)), bar(8, dec!(102))]
                .into_iter()
                .map(MarketDataEvent::Bar)
                .collect(),
        };
        let h = start_with(Box::new(provider), 10, 4, Pacing::Max, |agent, _| {
            agent.with_gap_watch(GapWatch::new(
                vigil_calendar::Calendar::xnys(),
                vec![true],
                None,
            ))
        });
        h.wait_for_end().await;

        let batches = h.seen.all::<BarBatch>();
        assert_eq!(closes(&batches[0]), vec![dec!(100), dec!(101), dec!(102)]);
        let gaps = logged(&h.log, Event::DataGap);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].level, Level::Error);
        assert_eq!(
            gaps[0].timestamp,
            day(8),
            "stamped with the bar after the gap"
        );
        assert_eq!(text(&gaps[0], "symbol"), "TEST");
        assert_eq!(text(&gaps[0], "after"), "2024-01-03");
        assert_eq!(text(&gaps[0], "before"), "2024-01-08");
        assert_eq!(gaps[0].get("missing"), Some(&Value::U64(2)));
        assert_eq!(text(&gaps[0], "sessions"), "2024-01-04,2024-01-05");
        assert!(
            h.seen.all::<AgentFault>().is_empty(),
            "a gap is not a fault"
        );
    }

    /// A close 60 % above the last is a bad tick: the symbol goes into quarantine, Risk hears
    /// it, the bar and the next ones are withheld until three calm bars in a row lift it.
    #[actix_rt::test]
    async fn a_price_spike_quarantines_its_symbol_until_calm_bars_release_it() {
        let closes = [100, 101, 160, 101, 102, 103, 104];
        let provider = VecProvider {
            events: closes
                .iter()
                .enumerate()
                .map(|(i, c)| MarketDataEvent::Bar(bar(i as u32 + 1, Decimal::from(*c))))
                .collect(),
        };
        let bounds = crate::AnomalyBounds {
            max_jump: Some(dec!(0.25)),
            k_sigma: None,
            min_sigma: 0.0,
            window: 20,
            release_after: 3,
        };
        let h = start_with(Box::new(provider), 10, 4, Pacing::Max, |agent, risk| {
            agent.with_anomaly_watch(
                crate::AnomalyWatch::new(bounds, 1),
                risk.clone().recipient(),
            )
        });
        h.wait_for_end().await;

        // 160 (the spike), then 101 (back: another jump) and 102, 103 (calm 1, 2) are
        // withheld; 104 is the third calm bar and goes on.
        let batches = h.seen.all::<BarBatch>();
        assert_eq!(
            closes_of(&batches),
            vec![dec!(100), dec!(101), dec!(104)],
            "the quarantined bars never reach the models"
        );
        let told: Vec<(bool, String)> = h
            .seen
            .all::<QuarantineChanged>()
            .into_iter()
            .map(|q| (q.on, q.reason))
            .collect();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].0 && told[0].1.contains("moved +58.42%"), "{told:?}");
        assert_eq!(told[1], (false, "3 bars in a row within the bounds".into()));
        let on = logged(&h.log, Event::SymbolQuarantined);
        assert_eq!(on.len(), 1);
        assert_eq!(on[0].level, Level::Error);
        assert_eq!(on[0].timestamp, day(3));
        assert_eq!(text(&on[0], "symbol"), "TEST");
        assert_eq!(text(&on[0], "actor"), "anomaly_rule");
        let off = logged(&h.log, Event::SymbolReleased);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].timestamp, day(7));
        assert!(
            h.seen.all::<AgentFault>().is_empty(),
            "a quarantine is not a fault"
        );
    }

    #[actix_rt::test]
    async fn an_operator_quarantines_and_releases_a_symbol_and_an_unknown_one_is_refused() {
        let bounds = crate::AnomalyBounds {
            max_jump: Some(dec!(0.25)),
            k_sigma: None,
            min_sigma: 0.0,
            window: 20,
            release_after: 3,
        };
        // Paced on a wall clock nobody moves: the second bar waits, the agent stays up.
        let h = start_with(
            Box::new(VecProvider {
                events: [bar(1, dec!(100)), bar(5, dec!(100))]
                    .into_iter()
                    .map(MarketDataEvent::Bar)
                    .collect(),
            }),
            1,
            4,
            Pacing::Factor(1.0),
            |agent, risk| {
                agent.with_anomaly_watch(
                    crate::AnomalyWatch::new(bounds, 1),
                    risk.clone().recipient(),
                )
            },
        );
        let ask = |symbol: &str, on: bool| SetQuarantine {
            symbol: symbol.into(),
            on,
            actor: "ops".into(),
            reason: "exchange halted it".into(),
        };
        let unknown = h.addr.send(ask("AAPL", true)).await.expect("answered");
        assert!(
            matches!(&unknown, Err(CommandError::Invalid(m)) if m.contains("unknown symbol \"AAPL\"; symbols: TEST")),
            "{unknown:?}"
        );
        let on = h.addr.send(ask("TEST", true)).await.expect("answered");
        assert!(
            on.as_ref().is_ok_and(|m| m.contains("TEST in quarantine")),
            "{on:?}"
        );
        let again = h.addr.send(ask("TEST", true)).await.expect("answered");
        assert_eq!(again, Ok("TEST in quarantine already".to_string()));
        let off = h.addr.send(ask("TEST", false)).await.expect("answered");
        assert!(
            off.as_ref().is_ok_and(|m| m.contains("released")),
            "{off:?}"
        );
        let told: Vec<bool> = h
            .seen
            .all::<QuarantineChanged>()
            .into_iter()
            .map(|q| q.on)
            .collect();
        assert_eq!(told, vec![true, false], "Risk told once each way");
        let logged_on = logged(&h.log, Event::SymbolQuarantined);
        assert_eq!(logged_on.len(), 1);
        assert_eq!(text(&logged_on[0], "actor"), "ops");
        assert_eq!(logged(&h.log, Event::SymbolReleased).len(), 1);
    }

    fn broken(name: &str) -> Result<Bar, ProviderError> {
        Err(ProviderError::Stream {
            provider: name.into(),
            reason: "connection reset".into(),
        })
    }

    /// The primary's stream breaks: the backup takes over (`data_source_switched`), the
    /// bars the primary already delivered are skipped, the new ones flow. When the backup
    /// breaks too before any good bar came after the switch back, every source has failed:
    /// the agent fails (fatal).
    #[actix_rt::test]
    async fn a_failing_source_switches_to_the_backup_and_every_source_failing_is_fatal() {
        let primary = Script {
            name: "primary",
            items: [
                Ok(bar(1, dec!(100))),
                Ok(bar(2, dec!(101))),
                broken("primary"),
                broken("primary"),
            ]
            .into_iter()
            .collect(),
        };
        let backup = Script {
            name: "backup",
            items: [
                Ok(bar(1, dec!(100))),
                Ok(bar(2, dec!(101))),
                Ok(bar(3, dec!(102))),
                Ok(bar(4, dec!(103))),
                broken("backup"),
            ]
            .into_iter()
            .collect(),
        };
        let h = start_with(Box::new(primary), 10, 4, Pacing::Max, |agent, _| {
            agent.with_backups(vec![Box::new(backup)])
        });
        h.wait_for_end().await;

        let batches = h.seen.all::<BarBatch>();
        assert_eq!(
            closes_of(&batches),
            vec![dec!(100), dec!(101), dec!(102), dec!(103)],
            "nothing twice, nothing lost"
        );
        assert!(
            logged(&h.log, Event::BarRejected).is_empty(),
            "the bars seen already are skipped, not rejected"
        );
        let switched = logged(&h.log, Event::DataSourceSwitched);
        let hops: Vec<(String, String)> = switched
            .iter()
            .map(|e| (text(e, "from"), text(e, "to")))
            .collect();
        assert_eq!(
            hops,
            vec![
                ("primary".to_string(), "backup".to_string()),
                ("backup".to_string(), "primary".to_string())
            ]
        );
        assert_eq!(switched[0].level, Level::Error);
        assert_eq!(text(&switched[0], "actor"), "failover");
        assert!(text(&switched[0], "reason").contains("connection reset"));
        // Back on the primary, it breaks again before a good bar: both failed.
        let failed = logged(&h.log, Event::DataSourceFailed);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            text(&failed[0], "error").contains("every data source failed (2 configured)"),
            "{failed:?}"
        );
        assert!(matches!(
            h.seen.all::<AgentFault>().as_slice(),
            [AgentFault { fatal: true, .. }]
        ));
    }

    fn outage_links(to: &Addr<vigil_testkit::RecordingActor<Got>>) -> OutageLinks {
        OutageLinks {
            risk: to.clone().recipient(),
            execution: to.clone().recipient(),
            reconnect_initial: Duration::from_millis(1000),
            reconnect_max: Duration::from_millis(2500),
            operator_resumes: false,
        }
    }

    /// With outage handling, a lone source that breaks halts trading (through Risk) instead
    /// of failing the agent; it is tried again with doubling backoff on the wall clock, and
    /// its first good bar asks the Execution agent to verify before the bar goes on.
    #[actix_rt::test]
    async fn a_lone_source_that_breaks_halts_trading_reconnects_with_backoff_and_asks_to_verify() {
        let feed = Script {
            name: "feed",
            items: [
                Ok(bar(1, dec!(100))),
                Ok(bar(2, dec!(101))),
                broken("feed"),
                broken("feed"),
                Ok(bar(3, dec!(102))),
                Ok(bar(4, dec!(103))),
            ]
            .into_iter()
            .collect(),
        };
        let h = start_with(Box::new(feed), 10, 8, Pacing::Max, |agent, to| {
            agent.with_outage_handling(outage_links(to))
        });
        h.seen
            .wait_until("the outage", |got| {
                got.iter().any(|g| matches!(g, Got::Outage(_)))
            })
            .await;
        settle().await;
        let outage = logged(&h.log, Event::DataOutage);
        assert_eq!(outage.len(), 1);
        assert_eq!(outage[0].level, Level::Critical);
        assert!(text(&outage[0], "error").contains("connection reset"));
        assert_eq!(outage[0].get("retry_in_ms"), Some(&Value::U64(1000)));
        let told = h.seen.all::<DataOutage>();
        assert!(
            told[0]
                .reason
                .contains("no data source is healthy (1 configured)")
        );
        assert!(!told[0].operator_resumes);
        assert!(h.seen.all::<AgentFault>().is_empty(), "not fatal");
        assert!(h.seen.all::<StopReason>().is_empty(), "the stream goes on");
        assert_eq!(
            closes_of(&h.seen.all::<BarBatch>()),
            vec![dec!(100), dec!(101)]
        );

        // Nothing is tried before the backoff has passed on the wall clock.
        h.wall.advance_by(chrono::Duration::milliseconds(999));
        settle().await;
        assert!(logged(&h.log, Event::DataSourceFailed).is_empty());
        // The first attempt breaks again: a WARN line, and the wait doubles.
        h.wall.advance_by(chrono::Duration::milliseconds(1));
        vigil_testkit::yield_until("DataSourceFailed x1", || {
            !logged(&h.log, Event::DataSourceFailed).is_empty()
        })
        .await;
        let failed = logged(&h.log, Event::DataSourceFailed);
        assert_eq!(failed[0].level, Level::Warn);
        assert_eq!(failed[0].get("attempt"), Some(&Value::U64(1)));
        assert_eq!(failed[0].get("retry_in_ms"), Some(&Value::U64(2000)));
        assert!(h.seen.all::<VerifyData>().is_empty());

        // The second attempt brings good bars: verification is asked before they go on.
        h.wall.advance_by(chrono::Duration::milliseconds(2000));
        h.wait_for_end().await;
        h.seen.with(|got| {
            let verify = got.iter().position(|g| matches!(g, Got::Verify(_)));
            let bar3 = got
                .iter()
                .position(|g| matches!(g, Got::Batch(b) if b.bars.iter().any(|b| b.ts == day(3))));
            assert!(verify.is_some() && verify < bar3, "{got:?}");
        });
        let verify = &h.seen.all::<VerifyData>()[0];
        assert_eq!(verify.first_bar, day(3));
        assert_eq!(verify.outage_s, 3);
        assert_eq!(verify.missing_bars, 0);
        let recovered = logged(&h.log, Event::DataRecovered);
        assert_eq!(recovered[0].get("attempts"), Some(&Value::U64(1)));
        assert_eq!(
            closes_of(&h.seen.all::<BarBatch>()),
            vec![dec!(100), dec!(101), dec!(102), dec!(103)],
            "nothing lost, nothing twice"
        );
    }

    /// A source fed by the test, message by message: a read waits for the next one, as a
    /// live feed's does.
    struct Live {
        name: &'static str,
        rx: tokio::sync::mpsc::UnboundedReceiver<Result<Bar, ProviderError>>,
    }

    #[async_trait]
    impl DataProvider for Live {
        fn name(&self) -> &str {
            self.name
        }

        async fn connect(&mut self) -> Result<(), ProviderError> {
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
            match self.rx.recv().await {
                Some(Ok(bar)) => {
                    out.push(MarketDataEvent::Bar(bar));
                    Ok(true)
                }
                Some(Err(e)) => Err(e),
                None => Ok(false),
            }
        }

        fn health(&self) -> ProviderHealth {
            ProviderHealth::default()
        }

        fn rejects_messages(&self) -> bool {
            true
        }

        fn live(&self) -> bool {
            true
        }
    }

    fn live(
        name: &'static str,
    ) -> (
        Box<dyn DataProvider>,
        tokio::sync::mpsc::UnboundedSender<Result<Bar, ProviderError>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Box::new(Live { name, rx }), tx)
    }

    /// After a failover, the backup runs its stable period and the primary is tried again;
    /// the switch waits for the read in flight.
    #[actix_rt::test]
    async fn after_the_stable_period_on_the_backup_the_primary_is_tried_again() {
        let (primary, p) = live("primary");
        let (backup, b) = live("backup");
        let h = start_with(primary, 10, 8, Pacing::Max, |agent, _| {
            agent
                .with_backups(vec![backup])
                .with_switch_back(Duration::from_secs(10))
        });
        let send = |tx: &tokio::sync::mpsc::UnboundedSender<_>, item| {
            tx.send(item).expect("the agent reads on");
        };
        send(&p, Ok(bar(1, dec!(100))));
        h.seen.wait_for::<BarBatch>(1).await;
        send(&p, broken("primary"));
        vigil_testkit::yield_until("DataSourceSwitched x1", || {
            !logged(&h.log, Event::DataSourceSwitched).is_empty()
        })
        .await;
        send(&b, Ok(bar(1, dec!(100))));
        send(&b, Ok(bar(2, dec!(101))));
        h.seen.wait_for::<BarBatch>(2).await;

        // Not before the period.
        h.wall.advance_by(chrono::Duration::seconds(9));
        settle().await;
        assert_eq!(logged(&h.log, Event::DataSourceSwitched).len(), 1);
        h.wall.advance_by(chrono::Duration::seconds(2));
        settle().await;
        // Due, but the backup's read is in flight: the switch follows its next message.
        send(&b, Ok(bar(3, dec!(102))));
        vigil_testkit::yield_until("DataSourceSwitched x2", || {
            logged(&h.log, Event::DataSourceSwitched).len() >= 2
        })
        .await;
        send(&p, Ok(bar(4, dec!(103))));
        h.seen.wait_for::<BarBatch>(4).await;
        let switched = logged(&h.log, Event::DataSourceSwitched);
        assert_eq!(
            switched
                .iter()
                .map(|e| (text(e, "to"), text(e, "actor")))
                .collect::<Vec<_>>(),
            vec![
                ("backup".to_string(), "failover".to_string()),
                ("primary".to_string(), "switch_back".to_string())
            ]
        );
        assert!(text(&switched[1], "reason").contains("ran 10 s without failing"));
        assert_eq!(
            closes_of(&h.seen.all::<BarBatch>()),
            vec![dec!(100), dec!(101), dec!(102), dec!(103)]
        );
        drop((p, b));
        h.wait_for_end().await;
    }

    /// Asks the agent when valid data last arrived (wall clock) and where market time is.
    #[derive(Message)]
    #[rtype(result = "(Option<Timestamp>, Timestamp)")]
    struct Freshness;

    impl Handler<Freshness> for DataAgent {
        type Result = MessageResult<Freshness>;
        fn handle(&mut self, _msg: Freshness, _ctx: &mut Context<Self>) -> Self::Result {
            MessageResult((self.last_update_at, self.market_now()))
        }
    }

    /// A bar withheld by a quarantine is data all the same: the source is not stale (the
    /// staleness rule reads `last_update_at`) and market time moves on with it.
    #[actix_rt::test]
    async fn a_bar_withheld_by_a_quarantine_still_counts_as_fresh_data() {
        let (feed, tx) = live("feed");
        let bounds = crate::AnomalyBounds {
            max_jump: Some(dec!(0.25)),
            k_sigma: None,
            min_sigma: 0.0,
            window: 20,
            release_after: 0,
        };
        let h = start_with(feed, 10, 8, Pacing::Max, |agent, risk| {
            agent.with_anomaly_watch(
                crate::AnomalyWatch::new(bounds, 1),
                risk.clone().recipient(),
            )
        });
        tx.send(Ok(bar(1, dec!(100)))).expect("the agent reads on");
        h.seen.wait_for::<BarBatch>(1).await;
        let (first, _) = h.addr.send(Freshness).await.expect("freshness");
        assert_eq!(first, Some(h.wall.now()));

        h.addr
            .send(SetQuarantine {
                symbol: "TEST".into(),
                on: true,
                actor: "ops".into(),
                reason: "checking the vendor".into(),
            })
            .await
            .expect("quarantine")
            .expect("known symbol");
        h.wall.advance_by(chrono::Duration::seconds(45));
        tx.send(Ok(bar(2, dec!(101)))).expect("the agent reads on");
        let wall_then = h.wall.now();
        vigil_testkit::yield_until("the withheld bar read", || h.market.now() == day(2)).await;
        let (fresh, market) = h.addr.send(Freshness).await.expect("freshness");
        assert_eq!(fresh, Some(wall_then), "the withheld bar is fresh data");
        assert_eq!(market, day(2), "market time moved on with it");
        assert_eq!(
            h.seen.all::<BarBatch>().len(),
            1,
            "withheld from the models"
        );
    }

    #[test]
    fn the_parse_error_rate_counts_over_a_full_window_only() {
        let mut rate = ParseRate::new(10, 20.0);
        for _ in 0..3 {
            assert_eq!(rate.push(true), None, "the window is not full yet");
        }
        for _ in 0..6 {
            assert_eq!(rate.push(false), None);
        }
        // 3 of 10: above 20 %.
        assert_eq!(rate.push(false), Some((3, 10)));
        // The three rejections slide out of the window: none of the last 10.
        for _ in 0..3 {
            assert_eq!(rate.push(false), None);
        }
        assert_eq!(rate.push(true), None);
        assert_eq!(rate.push(true), None, "2 of 10 is not above 20 %");
        assert_eq!(rate.push(true), Some((3, 10)));
    }

    /// A feed's rejected message is an ERROR line with its text, and the stream goes on; a
    /// good bar resets the count, and the limit in a row fails the source.
    #[actix_rt::test]
    async fn a_feed_s_rejected_messages_are_logged_and_read_past_until_too_many_in_a_row() {
        let bad = |n: u32| {
            Err(ProviderError::Malformed(format!(
                "message rejected: unknown type; raw: {{\"type\":{n}}}"
            )))
        };
        let provider = Script {
            name: "script",
            items: [
                Ok(bar(1, dec!(100))),
                bad(1),
                Ok(bar(2, dec!(101))),
                bad(2),
                bad(3),
                Ok(bar(3, dec!(102))),
            ]
            .into_iter()
            .collect(),
        };
        let h = start_with(Box::new(provider), 10, 4, Pacing::Max, |agent, _| {
            agent.with_rejection_limit(2)
        });
        h.wait_for_end().await;

        let parse = logged(&h.log, Event::DataParseFailed);
        assert_eq!(parse.len(), 3);
        assert!(parse.iter().all(|e| e.level == Level::Error));
        assert!(text(&parse[0], "error").contains(r#"raw: {"type":1}"#));
        assert_eq!(parse[2].get("rejected_in_a_row"), Some(&Value::U64(2)));
        // Two in a row: the source failed (fatal), after the bars before.
        let batches = h.seen.all::<BarBatch>();
        assert_eq!(closes_of(&batches), vec![dec!(100), dec!(101)]);
        let failed = logged(&h.log, Event::DataSourceFailed);
        assert_eq!(failed.len(), 1);
        assert!(text(&failed[0], "error").contains("2 messages in a row rejected"));
        assert!(matches!(
            h.seen.all::<AgentFault>().as_slice(),
            [AgentFault { fatal: true, .. }]
        ));
    }

    #[actix_rt::test]
    async fn bar_going_back_in_time_is_rejected_logged_and_not_forwarded() {
        let mut back = bar(2, dec!(150));
        back.ts = t("2024-01-01T12:00:00Z");
        let provider = VecProvider {
            events: [
                bar(1, dec!(100)),
                bar(2, dec!(101)),
                back,
                bar(3, dec!(102)),
            ]
            .into_iter()
            .map(MarketDataEvent::Bar)
            .collect(),
        };
        let h = start(Box::new(provider), 10, 4);
        h.wait_for_end().await;

        let batches = h.seen.all::<BarBatch>();
        assert_eq!(batches.len(), 1);
        assert_eq!(
            closes(&batches[0]),
            vec![dec!(100), dec!(101), dec!(102)],
            "the backwards bar is not forwarded"
        );
        let rejected = logged(&h.log, Event::BarRejected);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].level, Level::Error);
        assert_eq!(text(&rejected[0], "symbol"), "TEST");
        assert_eq!(rejected[0].get("bar_time"), Some(&Value::Ts(back.ts)));
        let reason = text(&rejected[0], "reason");
        assert!(
            reason.contains("is not after the previous bar's 2024-01-02T00:00:00+00:00"),
            "{reason}"
        );
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Data {
                bars: 3,
                rejected: 1,
                ..
            }]
        ));
        assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
        assert_eq!(h.market.now(), day(3));
        assert!(
            h.seen.all::<AgentFault>().is_empty(),
            "a rejected bar is not a fault"
        );
    }

    /// One bar stamped 2099 (the wall clock reads 2030): rejected with an ERROR line, it
    /// moves no clock, and the true bars after it are taken.
    #[actix_rt::test]
    async fn a_bar_from_the_future_is_rejected_and_moves_no_clock() {
        let mut future = bar(2, dec!(101));
        future.ts = t("2099-01-01T00:00:00Z");
        let provider = VecProvider {
            events: [
                bar(1, dec!(100)),
                future,
                bar(2, dec!(102)),
                bar(3, dec!(103)),
            ]
            .into_iter()
            .map(MarketDataEvent::Bar)
            .collect(),
        };
        let h = start(Box::new(provider), 10, 4);
        h.wait_for_end().await;

        assert_eq!(
            closes_of(&h.seen.all::<BarBatch>()),
            vec![dec!(100), dec!(102), dec!(103)]
        );
        let rejected = logged(&h.log, Event::BarRejected);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].level, Level::Error);
        assert_eq!(rejected[0].get("bar_time"), Some(&Value::Ts(future.ts)));
        assert_eq!(
            text(&rejected[0], "reason"),
            "from the future: timestamp 2099-01-01T00:00:00Z is 25202 days ahead of the clock \
             (2030-01-01T00:00:00Z; tolerance 60s)"
        );
        assert_eq!(h.market.now(), day(3), "the market clock never saw 2099");
        assert!(
            h.log.events().iter().all(|e| e.timestamp < future.ts),
            "no line is stamped in the future"
        );
    }

    #[actix_rt::test]
    async fn impossible_bars_and_unknown_symbols_from_a_provider_that_does_not_validate_are_rejected()
     {
        let mut impossible = bar(2, dec!(101));
        impossible.high = dec!(90); // below the low
        let mut stranger = bar(3, dec!(50));
        stranger.symbol = SymbolId(5);
        let provider = VecProvider {
            events: [bar(1, dec!(100)), impossible, stranger, bar(3, dec!(102))]
                .into_iter()
                .map(MarketDataEvent::Bar)
                .collect(),
        };
        let h = start(Box::new(provider), 10, 4);
        h.wait_for_end().await;

        assert_eq!(
            closes(&h.seen.all::<BarBatch>()[0]),
            vec![dec!(100), dec!(102)]
        );
        let rejected = logged(&h.log, Event::BarRejected);
        assert_eq!(rejected.len(), 2);
        let reason = text(&rejected[0], "reason");
        assert!(
            reason.starts_with("impossible bar: high 90 is below low"),
            "{reason}"
        );
        assert_eq!(text(&rejected[1], "reason"), "unknown symbol id 5");
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Data {
                bars: 2,
                rejected: 2,
                ..
            }]
        ));
    }

    #[actix_rt::test]
    async fn paced_replay_hands_bars_over_one_at_a_time_as_the_wall_clock_passes_their_offset() {
        let minute = |m: i64| t("2024-01-02T09:30:00Z") + chrono::Duration::minutes(m);
        let provider = VecProvider {
            events: (0..3)
                .map(|m| {
                    let mut b = bar(2, Decimal::from(100 + m));
                    b.ts = minute(m);
                    MarketDataEvent::Bar(b)
                })
                .collect(),
        };
        // Sixty times real time: one market minute is one wall second.
        let h = start_paced(Box::new(provider), 100, 4, Pacing::Factor(60.0));
        h.seen.wait_for::<BarBatch>(1).await;
        assert_eq!(closes(&h.seen.all::<BarBatch>()[0]), vec![dec!(100)]);

        h.wall.advance_by(chrono::Duration::milliseconds(999));
        let (_, pulling) = h.addr.send(Probe).await.expect("probe");
        assert!(pulling, "waiting for the next bar's time");
        settle().await;
        assert_eq!(
            h.seen.all::<BarBatch>().len(),
            1,
            "the second bar is not due yet"
        );
        assert_eq!(h.market.now(), minute(0));

        h.wall.advance_by(chrono::Duration::milliseconds(1));
        h.seen.wait_for::<BarBatch>(2).await;
        let batches = h.seen.all::<BarBatch>();
        assert_eq!(batches[1].bars.len(), 1, "paced batches hold one bar");
        assert_eq!(closes(&batches[1]), vec![dec!(101)]);
        assert_eq!(h.market.now(), minute(1));

        h.wall.advance_by(chrono::Duration::seconds(1));
        h.wait_for_end().await;
        assert_eq!(h.seen.all::<BarBatch>().len(), 3);
        assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
        assert_eq!(h.market.now(), minute(2));
    }

    #[actix_rt::test]
    async fn shutdown_during_a_paced_wait_ends_the_stream_without_the_waiting_bar() {
        let provider = VecProvider {
            events: (1..=3)
                .map(|d| MarketDataEvent::Bar(bar(d, Decimal::from(100 + d))))
                .collect(),
        };
        // One market day per wall second.
        let h = start_paced(Box::new(provider), 100, 4, Pacing::Factor(86_400.0));
        h.seen.wait_for::<BarBatch>(1).await;
        let (_, pulling) = h.addr.send(Probe).await.expect("probe");
        assert!(pulling, "waiting for the second bar's time");

        h.addr
            .send(Shutdown {
                reason: StopReason::Interrupted,
            })
            .await
            .expect("shutdown");
        h.wait_for_end().await;
        assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::Interrupted]);

        // The bar that was waiting never goes out, even once its time comes.
        h.wall.advance_by(chrono::Duration::seconds(5));
        settle().await;
        assert_eq!(h.seen.all::<BarBatch>().len(), 1);
        assert_eq!(h.market.now(), day(1));
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Data { bars: 1, .. }]
        ));
    }

    /// A provider whose source cannot be opened.
    struct Unreachable;

    #[async_trait]
    impl DataProvider for Unreachable {
        fn name(&self) -> &str {
            "feed"
        }

        async fn ping(&mut self) -> Result<(), ProviderError> {
            Err(ProviderError::Connect {
                provider: "feed".into(),
                reason: "connection refused".into(),
            })
        }

        async fn connect(&mut self) -> Result<(), ProviderError> {
            Err(ProviderError::Connect {
                provider: "feed".into(),
                reason: "connection refused".into(),
            })
        }

        async fn subscribe(
            &mut self,
            _symbols: &[(SymbolId, Symbol)],
        ) -> Result<(), ProviderError> {
            Ok(())
        }

        async fn next_batch(
            &mut self,
            _max: usize,
            _out: &mut Vec<MarketDataEvent>,
        ) -> Result<bool, ProviderError> {
            unreachable!("never connected")
        }

        fn health(&self) -> ProviderHealth {
            ProviderHealth::default()
        }
    }

    #[actix_rt::test]
    async fn a_provider_that_cannot_connect_is_a_fatal_fault_and_ends_the_stream_failed() {
        let h = start(Box::new(Unreachable), 10, 4);
        h.wait_for_end().await;

        let expected = "data provider feed: cannot connect: connection refused";
        let faults = h.seen.all::<AgentFault>();
        assert_eq!(faults.len(), 1);
        assert!(faults[0].fatal);
        assert_eq!(faults[0].error, expected);
        assert_eq!(
            h.seen.all::<StopReason>(),
            vec![StopReason::Failed(expected.into())]
        );
        assert!(h.seen.all::<BarBatch>().is_empty());
        let failed: Vec<LogEvent> = h
            .log
            .events()
            .into_iter()
            .filter(|e| e.level == Level::Error)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(text(&failed[0], "error"), expected);
        assert!(
            !h.log.names().contains(&"data_source_connected"),
            "a failed connection is not logged as a connection: {:?}",
            h.log.names()
        );
    }

    #[actix_rt::test]
    async fn shutdown_ends_the_stream_as_interrupted() {
        let provider = VecProvider {
            events: (1..=6)
                .map(|d| MarketDataEvent::Bar(bar(d, Decimal::from(100 + d))))
                .collect(),
        };
        // One batch in flight: the agent waits for an ack that never comes.
        let h = start(Box::new(provider), 2, 1);
        h.seen.wait_for::<BarBatch>(1).await;
        h.addr
            .send(Shutdown {
                reason: StopReason::Interrupted,
            })
            .await
            .expect("shutdown");
        h.wait_for_end().await;

        assert_eq!(h.seen.all::<BarBatch>().len(), 1);
        assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::Interrupted]);
        assert!(matches!(
            h.seen.all::<StageReport>().as_slice(),
            [StageReport::Data { bars: 2, last: Some(last), .. }] if *last == day(2)
        ));
        assert_eq!(
            h.market.now(),
            day(2),
            "market clock at the last forwarded bar"
        );
        let stopped = &logged(&h.log, Event::AgentStopped)[0];
        assert_eq!(text(stopped, "reason"), "interrupted");
        assert!(h.seen.all::<AgentFault>().is_empty());
    }

    #[actix_rt::test]
    async fn heartbeats_follow_the_supervision_clock() {
        let provider = VecProvider {
            events: (1..=4)
                .map(|d| MarketDataEvent::Bar(bar(d, Decimal::from(100 + d))))
                .collect(),
        };
        let h = start(Box::new(provider), 2, 1);
        h.seen.wait_for::<BarBatch>(1).await;
        let first = h.seen.all::<Heartbeat>();
        assert_eq!(first.len(), 1, "one heartbeat at start");
        assert_eq!(first[0].agent, AgentId::Data);
        assert_eq!(first[0].at, h.wall.now());

        h.wall.advance_by(chrono::Duration::seconds(1));
        h.seen
            .wait_until("a second heartbeat", |got| {
                got.iter()
                    .filter(|g| matches!(g, Got::Heartbeat(_)))
                    .count()
                    >= 2
            })
            .await;
        let hb = h.seen.all::<Heartbeat>().remove(1);
        assert_eq!(hb.at, t("2030-01-01T00:00:01Z"));
        assert_eq!(hb.state, AgentState::Running);
        assert_eq!(hb.processed, 2);
    }

    /// Asks the agent how many bars it has withheld.
    #[derive(Message)]
    #[rtype(result = "u64")]
    struct Withheld;

    impl Handler<Withheld> for DataAgent {
        type Result = u64;
        fn handle(&mut self, _msg: Withheld, _ctx: &mut Context<Self>) -> u64 {
            self.withheld
        }
    }

    /// A live source the test feeds bar by bar; it never ends.
    struct Pushed {
        bars: tokio::sync::mpsc::UnboundedReceiver<Bar>,
    }

    #[async_trait]
    impl DataProvider for Pushed {
        fn name(&self) -> &str {
            "feed:primary"
        }

        async fn connect(&mut self) -> Result<(), ProviderError> {
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
            match self.bars.recv().await {
                Some(bar) => out.push(MarketDataEvent::Bar(bar)),
                None => std::future::pending::<()>().await,
            }
            Ok(true)
        }

        fn health(&self) -> ProviderHealth {
            ProviderHealth::default()
        }
    }

    /// The source's close disagrees with the reference's: the symbol goes into quarantine
    /// (Risk told, bars withheld) until three agreeing pairs in a row; a reference bar that
    /// comes after the source's was forwarded quarantines from then on; an operator releases.
    #[actix_rt::test]
    async fn a_disagreement_with_the_reference_withholds_the_symbol_and_tells_risk_until_released()
    {
        let (push, bars) = tokio::sync::mpsc::unbounded_channel();
        let bounds = crate::AnomalyBounds {
            max_jump: Some(dec!(0.5)),
            k_sigma: None,
            min_sigma: 0.0,
            window: 20,
            release_after: 3,
        };
        let h = start_with(
            Box::new(Pushed { bars }),
            1,
            10,
            Pacing::Max,
            |agent, risk| {
                agent
                    .with_anomaly_watch(
                        crate::AnomalyWatch::new(bounds, 1),
                        risk.clone().recipient(),
                    )
                    .with_cross_check(crate::CrossCheck::new("feed:reference", dec!(2), 3, 1))
            },
        );
        let reference = |closes: &[(u32, Decimal)]| ReferenceBars {
            bars: closes.iter().map(|(d, c)| bar(*d, *c)).collect(),
        };
        let forwarded = |n: usize| {
            let seen = h.seen.clone();
            async move {
                seen.wait_until(&format!("{n} batches"), |got| {
                    got.iter().filter(|g| matches!(g, Got::Batch(_))).count() >= n
                })
                .await;
            }
        };
        let told = || -> Vec<bool> {
            h.seen
                .all::<QuarantineChanged>()
                .into_iter()
                .map(|q| q.on)
                .collect()
        };

        // The reference first: the source's day 2 is 5 % above it, held on arrival.
        h.addr
            .send(reference(&[(1, dec!(100)), (2, dec!(100))]))
            .await
            .expect("taken");
        push.send(bar(1, dec!(100))).expect("agent reads");
        forwarded(1).await;
        push.send(bar(2, dec!(105))).expect("agent reads");
        h.seen
            .wait_until("Risk told", |got| {
                got.iter().any(|g| matches!(g, Got::Quarantine(_)))
            })
            .await;
        // Days 3 and 4 agree but are held; day 5 is the third agreeing pair and goes on.
        h.addr
            .send(reference(&[(3, dec!(100)), (4, dec!(101)), (5, dec!(100))]))
            .await
            .expect("taken");
        for d in 3..=5 {
            push.send(bar(d, dec!(100))).expect("agent reads");
        }
        forwarded(2).await;
        assert_eq!(told(), vec![true, false]);

        // The source's day 6 is forwarded before the reference has it; the reference's
        // disagrees when it arrives: quarantined from then on (day 7 held).
        push.send(bar(6, dec!(100))).expect("agent reads");
        forwarded(3).await;
        h.addr
            .send(reference(&[(6, dec!(110))]))
            .await
            .expect("taken");
        assert_eq!(told(), vec![true, false, true]);
        push.send(bar(7, dec!(100))).expect("agent reads");
        // Days 2, 3, 4 and 7 withheld (a bounded wait for the agent to read day 7).
        let mut withheld = 0;
        for _ in 0..100_000 {
            withheld = h.addr.send(Withheld).await.expect("answered");
            if withheld >= 4 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(withheld, 4);
        // An operator releases it; day 8 goes on.
        let off = h
            .addr
            .send(SetQuarantine {
                symbol: "TEST".into(),
                on: false,
                actor: "ops".into(),
                reason: "checked at the exchange".into(),
            })
            .await
            .expect("answered");
        assert!(off.is_ok_and(|m| m.contains("released")));
        push.send(bar(8, dec!(100))).expect("agent reads");
        forwarded(4).await;

        let batches = h.seen.all::<BarBatch>();
        let days: Vec<Timestamp> = batches
            .iter()
            .flat_map(|b| b.bars.iter().map(|bar| bar.ts))
            .collect();
        assert_eq!(
            days,
            vec![day(1), day(5), day(6), day(8)],
            "the quarantined bars never reach the models"
        );
        assert_eq!(told(), vec![true, false, true, false]);
        let on = logged(&h.log, Event::SymbolQuarantined);
        assert_eq!(on.len(), 2);
        assert_eq!(text(&on[0], "actor"), "cross_check");
        assert_eq!(on[0].timestamp, day(2));
        assert_eq!(
            text(&on[0], "reason"),
            "close 105 from feed:primary and 100 from the reference feed:reference are 5% \
             apart (bound 2%)"
        );
        // Found when the reference's day 6 came: stamped at the market's time then.
        assert_eq!(text(&on[1], "actor"), "cross_check");
        assert_eq!(on[1].timestamp, day(6));
        let off = logged(&h.log, Event::SymbolReleased);
        assert_eq!(off.len(), 2);
        assert_eq!(text(&off[0], "actor"), "cross_check");
        assert_eq!(off[0].timestamp, day(5));
        assert_eq!(text(&off[1], "actor"), "ops");
        assert!(h.seen.all::<AgentFault>().is_empty());
    }
}
