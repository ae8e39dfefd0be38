//! Stage 7 of the start: build the six agents from the config, wire them to each other,
//! and start them — sinks before sources.
//!
//! Every mailbox is made before any agent ([`Mailboxes`]), so that agents that talk in a
//! circle (Monitor ↔ Signal/Risk, Data ↔ Execution) can be given each other's addresses.
//! The Execution and Risk agents are built from a [`Reconciled`]: no agent exists before the
//! books were compared with the broker's. [`Launcher`] starts them in [`START_ORDER`] and
//! refuses any other order.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_config::{AfterOutage, Speed, VigilConfig};
use vigil_core::{AgentId, SharedClock, SimClock, Timestamp};
use vigil_data_agent::{
    AnomalyBounds, AnomalyWatch, CrossCheck, CrossCheckReader, DataAgent, DataAgentConfig,
    DayReportFiles, GapWatch, OutageLinks, Pacing, PostCloseJob, PostCloseOutcome, PostCloseWork,
    PremarketGate, Scheduler,
};
use vigil_execution_agent::{ExecutionAgent, ReconcileLinks};
use vigil_log::LogSink;
use vigil_messages::{AgentWiring, Backlogs, HaltLatch, SessionSummary};
use vigil_monitor_agent::{AlertLinks, HealthLinks, MonitorAgent, MonitorLinks};
use vigil_monitoring::HealthBoard;
use vigil_providers::ExecutionVenue;
use vigil_regime_agent::RegimeAgent;
use vigil_risk_agent::{ExecutionLinks, RiskAgent};
use vigil_signal_agent::SignalAgent;
use vigil_store::Journal;
use vigil_supervisor::{ChildSpec, ChildSupervisor, RestartPolicy};

use super::SystemError;
use super::log::buffer;
use super::persisters::StateChanges;
use super::provider::{ChosenProvider, future_tolerance};
use super::store::Restored;
use super::venue::Reconciled;

/// The order agents start in: each after every agent it sends market data, signals or
/// orders to (sinks before sources; a test checks it against the pipeline's flow). The stop order is the reverse, carried by the
/// end-of-stream marker.
pub(super) const START_ORDER: [AgentId; 6] = [
    AgentId::Monitor,
    AgentId::Execution,
    AgentId::Risk,
    AgentId::Signal,
    AgentId::Regime,
    AgentId::Data,
];

/// An agent's mailbox made before the agent.
pub(super) struct Mailbox<A: Actor<Context = Context<A>>> {
    addr: Addr<A>,
    rx: actix::dev::channel::AddressReceiver<A>,
}

impl<A: Actor<Context = Context<A>> + Send> Mailbox<A> {
    fn new() -> Self {
        // 16 is actix's default; it bounds only `send`, and agents choose `send` on purpose.
        let (tx, rx) = actix::dev::channel::channel(16);
        Self {
            addr: Addr::new(tx),
            rx,
        }
    }
}

/// Every agent's mailbox, made before any agent.
pub(super) struct Mailboxes {
    monitor: Mailbox<MonitorAgent>,
    exec: Mailbox<ExecutionAgent>,
    risk: Mailbox<RiskAgent>,
    signal: Mailbox<SignalAgent>,
    regime: Mailbox<RegimeAgent>,
    data: Mailbox<DataAgent>,
}

impl Mailboxes {
    pub(super) fn new() -> Self {
        Self {
            monitor: Mailbox::new(),
            exec: Mailbox::new(),
            risk: Mailbox::new(),
            signal: Mailbox::new(),
            regime: Mailbox::new(),
            data: Mailbox::new(),
        }
    }

    /// The Monitor's address (the log's tap, the control API and the commands go to it).
    pub(super) fn monitor(&self) -> Addr<MonitorAgent> {
        self.monitor.addr.clone()
    }

    /// The Data agent's address (shutdown and reload go to it).
    pub(super) fn data(&self) -> Addr<DataAgent> {
        self.data.addr.clone()
    }

    /// The Risk agent's address (a failed log writer halts it).
    pub(super) fn risk(&self) -> Addr<RiskAgent> {
        self.risk.addr.clone()
    }
}

/// Starts agents in [`START_ORDER`] (and refuses any other), each on its own arbiter when
/// `runtime.isolate_agents` is set.
pub(super) struct Launcher {
    next: usize,
    isolate: bool,
    arbiters: Vec<Arbiter>,
}

impl Launcher {
    pub(super) fn new(isolate: bool) -> Self {
        Self {
            next: 0,
            isolate,
            arbiters: Vec::new(),
        }
    }

    /// Checks that `agent` is the next to start in [`START_ORDER`].
    fn turn(&mut self, agent: AgentId) -> Result<(), SystemError> {
        match START_ORDER.get(self.next) {
            Some(next) if *next == agent => {
                self.next += 1;
                Ok(())
            }
            expected => Err(SystemError::Runtime(format!(
                "the {agent:?} agent was started out of order (expected {expected:?}): sinks \
                 start before sources"
            ))),
        }
    }

    /// The arbiter for the next agent: its own when isolated, else the current one.
    fn place(&mut self) -> Option<ArbiterHandle> {
        self.isolate.then(|| {
            let arbiter = Arbiter::new();
            let handle = arbiter.handle();
            self.arbiters.push(arbiter);
            handle
        })
    }

    /// Starts the Monitor, first, on its own arbiter: a stuck pipeline cannot silence
    /// supervision.
    pub(super) fn monitor(
        &mut self,
        mailbox: Mailbox<MonitorAgent>,
        actor: MonitorAgent,
    ) -> Result<(), SystemError> {
        self.turn(AgentId::Monitor)?;
        let arbiter = Arbiter::new();
        let rx = mailbox.rx;
        let started = arbiter.handle().spawn_fn(move || {
            Context::with_receiver(rx).run(actor);
        });
        self.arbiters.push(arbiter);
        if started {
            Ok(())
        } else {
            Err(SystemError::Runtime(
                "an arbiter stopped before its agent could start".into(),
            ))
        }
    }

    /// Starts a pipeline agent under a supervisor that catches its panics and restarts it
    /// on the same mailbox (see vigil-supervisor).
    pub(super) fn supervise<A>(
        &mut self,
        spec: ChildSpec,
        mailbox: Mailbox<A>,
        actor: A,
    ) -> Result<(), SystemError>
    where
        A: Actor<Context = Context<A>> + actix::Supervised + Send,
    {
        self.turn(spec.agent)?;
        let arbiter = self.place();
        ChildSupervisor::start(spec, actor, mailbox.rx, arbiter.as_ref())
            .map_err(|e| SystemError::Runtime(e.to_string()))
    }

    /// The arbiters started, to stop at the end.
    pub(super) fn into_arbiters(self) -> Vec<Arbiter> {
        self.arbiters
    }
}

/// The restart budget and backoff of a supervised agent (`monitor.supervision`).
pub(super) fn restart_policy(cfg: &VigilConfig) -> RestartPolicy {
    let sup = cfg.monitor.supervision;
    RestartPolicy {
        max_restarts: sup.max_restarts,
        within: Duration::from_secs(sup.within_s),
        backoff_initial: Duration::from_millis(sup.backoff_initial_ms),
        backoff_max: Duration::from_millis(sup.backoff_max_ms),
    }
}

/// How the Data agent paces the replay: a feed paces itself.
pub(super) fn pacing(cfg: &VigilConfig) -> Pacing {
    match cfg.data.speed {
        _ if cfg.data.feed.is_some() => Pacing::Max,
        Speed::Max => Pacing::Max,
        Speed::Factor(f) => Pacing::Factor(f),
    }
}

/// The anomaly watch's bounds (`[data.anomaly]`), when it is on. The cross-check
/// quarantines through the same watch: with a reference feed the watch runs with the jump
/// rule's bounds off.
pub(super) fn anomaly_bounds(cfg: &VigilConfig, cross_check: bool) -> Option<AnomalyBounds> {
    let a = &cfg.data.anomaly;
    (a.enabled || cross_check).then(|| AnomalyBounds {
        max_jump: (a.enabled && !a.max_jump_pct.is_zero())
            .then(|| a.max_jump_pct / rust_decimal::Decimal::ONE_HUNDRED),
        k_sigma: (a.enabled && a.k_sigma > 0.0).then_some(a.k_sigma),
        min_sigma: rust_decimal::prelude::ToPrimitive::to_f64(&a.min_sigma_pct).unwrap_or(0.0)
            / 100.0,
        window: a.window,
        release_after: a.release_after_bars,
    })
}

/// Which instruments' gaps are checked against the calendar, by symbol id (none: no gap
/// watch, when neither `data.check_gaps` nor any instrument's `check_gaps` asks for one).
pub(super) fn gap_checked(cfg: &VigilConfig) -> Option<Vec<bool>> {
    let d = &cfg.data;
    let wanted = d.check_gaps || d.instruments.iter().any(|i| i.check_gaps == Some(true));
    wanted.then(|| {
        d.instruments
            .iter()
            .map(|i| i.check_gaps.unwrap_or(d.check_gaps))
            .collect()
    })
}

/// The exchange calendar, for the stages that need one.
fn calendar(cfg: &VigilConfig) -> Result<vigil_calendar::Calendar, SystemError> {
    cfg.calendar.calendar().map_err(|e| {
        SystemError::Config(vigil_config::ConfigError::new(
            "config",
            vec![vigil_config::ConfigIssue::new("calendar", e.to_string())],
        ))
    })
}

/// The pre-market checks inside `vigil run`; every report is stored.
struct ChecklistGate {
    cfg: VigilConfig,
}

impl PremarketGate for ChecklistGate {
    fn check(&mut self, at: Timestamp) -> Result<String, String> {
        let report = crate::checklist::premarket_gate(&self.cfg, at);
        // Not being able to keep the record is itself a reason not to open.
        stored_outcome(&report, &self.cfg)
    }
}

/// Stores `report` in `checklist.dir`: its path, or what failed (a failed check, or the
/// report that could not be kept).
fn stored_outcome(
    report: &crate::checklist::ChecklistReport,
    cfg: &VigilConfig,
) -> Result<String, String> {
    let stored = report.store(&cfg.checklist.dir).map_err(|e| {
        format!(
            "cannot store the report in {}: {e}",
            cfg.checklist.dir.display()
        )
    })?;
    if report.status() == crate::checklist::CheckStatus::Fail {
        Err(format!(
            "{} (report {})",
            report.failures(),
            stored.display()
        ))
    } else {
        Ok(stored.display().to_string())
    }
}

/// The post-close work inside `vigil run` with a live source: the report is stored; a
/// failed check fails the job (logged at ERROR and alerted).
struct PostCloseReport {
    cfg: VigilConfig,
    log: vigil_log::LogWriterHandle,
}

impl PostCloseWork for PostCloseReport {
    fn job(&mut self, session: chrono::NaiveDate, at: Timestamp) -> PostCloseJob {
        let cfg = self.cfg.clone();
        let log = self.log.clone();
        Box::new(move || {
            // Everything logged up to the mark (the closing snapshot) on disk first.
            let synced = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|rt| {
                    rt.block_on(log.flush())
                        .map_err(|e| format!("cannot sync the log before reading it: {e}"))
                });
            if let Err(e) = synced {
                return PostCloseOutcome {
                    checks: Err(e.clone()),
                    report: Err(e),
                };
            }
            let (checks, report) = crate::checklist::post_close(&cfg, session, at);
            let path = |p: &std::path::Path| p.display().to_string();
            PostCloseOutcome {
                checks: stored_outcome(&checks, &cfg),
                report: report.map(|w| DayReportFiles {
                    headline: w.headline,
                    text: path(&w.text),
                    json: path(&w.json),
                    chart: w.chart.as_deref().map(path),
                }),
            }
        })
    }
}

/// What the agents are built from: the earlier stages' results.
pub(super) struct Inputs {
    pub(super) cfg: VigilConfig,
    pub(super) wall: SharedClock,
    pub(super) clock: SharedClock,
    pub(super) market: SimClock,
    pub(super) sink: LogSink,
    /// The log writer, synced before the post-close work reads the log.
    pub(super) log: vigil_log::LogWriterHandle,
    pub(super) restored: Restored,
    pub(super) channels: vigil_alert::Channels,
    pub(super) chosen: ChosenProvider,
    pub(super) venue: std::sync::Arc<dyn ExecutionVenue>,
    pub(super) reconciled: Reconciled,
    /// The execution journal, and whether it is a broker's (write-ahead).
    pub(super) journal: Option<(Journal, bool)>,
    pub(super) state_changes: StateChanges,
    pub(super) halt: HaltLatch,
    pub(super) board: HealthBoard,
    pub(super) model: vigil_signal_agent::ActiveModel,
    /// A release's candidate, to run in shadow.
    pub(super) shadow: Option<vigil_signal_agent::ShadowLinks>,
    /// The drift watch over the traded model.
    pub(super) drift: Option<vigil_signal_agent::DriftLinks>,
    pub(super) done: oneshot::Sender<SessionSummary>,
}

/// Builds the six agents from `inputs`, wires them through `boxes`, and starts them with
/// `launcher` (sinks before sources); then the cross-check reader, if any.
///
/// # Errors
/// The calendar is invalid, or an arbiter stopped before its agent could start.
pub(super) fn build_and_start(
    inputs: Inputs,
    boxes: Mailboxes,
    launcher: &mut Launcher,
) -> Result<(), SystemError> {
    let Inputs {
        cfg,
        wall,
        clock,
        market,
        sink,
        log: log_writer,
        restored,
        channels,
        chosen,
        venue,
        reconciled,
        journal,
        state_changes,
        halt,
        board,
        model,
        shadow,
        drift,
        done,
    } = inputs;
    let resume_after = reconciled.resume_after();
    // Built now: the store moves to the Monitor below.
    let loader = super::release::loader(&cfg, &restored.store, &model);
    let monitor = boxes.monitor.addr.clone();
    let exec = boxes.exec.addr.clone();
    let risk = boxes.risk.addr.clone();
    let signal = boxes.signal.addr.clone();
    let regime = boxes.regime.addr.clone();
    let data = boxes.data.addr.clone();
    let backlogs = Backlogs::default();
    let symbols = chosen.symbols.clone();
    // What every pipeline agent is wired to alike; each gets its own log outbox.
    let wiring = AgentWiring {
        clock: clock.clone(),
        wall: wall.clone(),
        heartbeat_interval: Duration::from_millis(cfg.monitor.heartbeat_interval_ms),
        monitor: monitor.clone().recipient(),
        reports: monitor.clone().recipient(),
        faults: monitor.clone().recipient(),
        backlogs: backlogs.clone(),
    };
    let log = |agent: AgentId| buffer(&cfg, &sink, agent.service());

    let monitor_agent = MonitorAgent::new(
        cfg.monitor.clone(),
        cfg.session.name.clone(),
        wall.clone(),
        clock.clone(),
        log(AgentId::Monitor),
        MonitorLinks {
            signal: signal.clone().recipient(),
            risk: risk.clone().recipient(),
            flatten: risk.clone().recipient(),
            cancel_all: exec.clone().recipient(),
            switch_source: data.clone().recipient(),
            switch_model: signal.clone().recipient(),
            release_step: signal.clone().recipient(),
            quarantine: data.clone().recipient(),
            default_regime: regime.clone().recipient(),
            shutdown: data.clone().recipient(),
            panics: vec![
                (AgentId::Data, data.clone().recipient()),
                (AgentId::Regime, regime.clone().recipient()),
                (AgentId::Signal, signal.clone().recipient()),
                (AgentId::Risk, risk.clone().recipient()),
                (AgentId::Execution, exec.clone().recipient()),
            ],
            fault_injection: cfg.control.fault_injection,
            halt: halt.clone(),
        },
        done,
    )
    .with_health(HealthLinks {
        board,
        backlogs: backlogs.clone(),
        pings: vec![
            (AgentId::Data, data.clone().recipient()),
            (AgentId::Regime, regime.clone().recipient()),
            (AgentId::Signal, signal.clone().recipient()),
            (AgentId::Risk, risk.clone().recipient()),
            (AgentId::Execution, exec.clone().recipient()),
        ],
        calendar: cfg.calendar.calendar().ok(),
        log_dir: cfg.log.dir.clone(),
        disk_path: cfg
            .monitor
            .disk_path
            .clone()
            .unwrap_or_else(|| cfg.log.dir.clone()),
        source_name: chosen.provider.name().to_string(),
        venue_name: venue.name().to_string(),
    });
    let monitor_agent = if cfg.alerts.enabled {
        monitor_agent.with_alerts(AlertLinks {
            config: cfg.alerts.clone(),
            channels,
            store: Some(restored.store),
            restored: restored.alerts,
            pending: restored.pending,
        })
    } else {
        monitor_agent
    };

    let rc = cfg.execution.reconcile;
    let exec_agent = ExecutionAgent::new(
        venue,
        cfg.session.initial_cash,
        symbols.clone(),
        wiring.clone(),
        log(AgentId::Execution),
        data.clone().recipient(),
    );
    let exec_agent = match journal {
        Some((journal, external)) => exec_agent.with_journal(journal, external),
        None => exec_agent,
    };
    let exec_agent = match &reconciled.recovered {
        Some(rec) => exec_agent
            .with_recovered(rec)
            .with_reconciliation(ReconcileLinks {
                risk: risk.clone().recipient(),
                on_mismatch: reconciled.on_mismatch,
                interval: (rc.interval_s > 0).then(|| Duration::from_secs(rc.interval_s)),
                retry_initial: Duration::from_millis(rc.retry_initial_ms),
                retry_max: Duration::from_millis(rc.retry_max_ms),
            }),
        None => exec_agent,
    };
    let exec_agent = exec_agent.with_data_verification(risk.clone().recipient());
    let dd = cfg.risk.drawdown_control;
    let exec_agent = if dd.enabled {
        exec_agent.with_drawdown_control(dd.line_pct, risk.clone().recipient())
    } else {
        exec_agent
    };
    let exec_agent = if cfg.monitor.enabled {
        exec_agent.with_business_rules(
            &cfg.monitor.effective_rules(),
            cfg.monitor.trade_frequency_days,
        )
    } else {
        exec_agent
    };

    // A data outage's halt saved by the previous process: the verification once the data is
    // back lifts it, as it would have without the restart.
    let outage_since = reconciled
        .trading_state
        .as_ref()
        .filter(|s| s.outage_hold.is_some())
        .map(|s| s.at);
    let mut risk_agent = RiskAgent::new(
        cfg.risk.clone(),
        cfg.execution.order_type,
        cfg.execution.limit_offset_bps,
        symbols.clone(),
        wiring.clone(),
        log(AgentId::Risk),
        ExecutionLinks {
            segments: exec.clone().recipient(),
            book: exec.clone().recipient(),
            intents: exec.clone().recipient(),
            crosses: exec.clone().recipient(),
            rearm: exec.clone().recipient(),
        },
    )
    .with_resume_after(resume_after)
    .with_halt_latch(halt)
    .with_saved_state(
        reconciled
            .trading_state
            .map(super::persisters::state_record),
        state_changes,
    );

    let signal_agent = SignalAgent::new(
        &cfg.signal,
        model,
        symbols.clone(),
        wiring.clone(),
        log(AgentId::Signal),
        risk.clone().recipient(),
    );
    let signal_agent = match shadow {
        Some(links) => signal_agent.with_shadow(links),
        None => signal_agent,
    };
    let signal_agent = match loader {
        Some(loader) => signal_agent.with_release_loader(loader),
        None => signal_agent,
    };
    let signal_agent = match drift {
        Some(links) => signal_agent.with_drift(links),
        None => signal_agent,
    };
    let regime_agent = RegimeAgent::new(
        &cfg.regime,
        symbols.clone(),
        wiring.clone(),
        log(AgentId::Regime),
        signal.clone().recipient(),
    );

    let ChosenProvider {
        provider,
        backups,
        reference,
        ..
    } = chosen;
    let mut data_agent = DataAgent::new(
        DataAgentConfig {
            batch_size: cfg.data.batch_size,
            max_in_flight: cfg.data.max_in_flight_batches,
            pacing: pacing(&cfg),
            future_tolerance: future_tolerance(&cfg),
        },
        provider,
        symbols.clone(),
        Some(market),
        wiring,
        log(AgentId::Data),
        regime.clone().recipient(),
    );
    if let Some(feed) = &cfg.data.feed {
        data_agent = data_agent
            .with_rejection_limit(feed.max_rejected_in_a_row)
            .with_parse_error_rate(feed.parse_error_window as usize, feed.max_parse_error_pct)
            .with_switch_back(Duration::from_secs(feed.switch_back_after_s))
            .with_backups(backups)
            .with_outage_handling(OutageLinks {
                risk: risk.clone().recipient(),
                execution: exec.clone().recipient(),
                reconnect_initial: Duration::from_millis(feed.reconnect_initial_ms),
                reconnect_max: Duration::from_millis(feed.reconnect_max_ms),
                operator_resumes: feed.after_outage == AfterOutage::Operator,
            });
    }
    if let Some(since) = outage_since {
        data_agent = data_agent.with_outage_resumed(since);
    }
    if cfg.calendar.automation {
        data_agent = data_agent
            .with_scheduler(Scheduler::new(
                calendar(&cfg)?,
                cfg.calendar.schedule.clone(),
            ))
            .with_premarket_gate(Box::new(ChecklistGate { cfg: cfg.clone() }))
            .with_post_close(Box::new(PostCloseReport {
                cfg: cfg.clone(),
                log: log_writer.clone(),
            }));
        risk_agent = risk_agent.with_automation();
    }
    if let Some(checked) = gap_checked(&cfg) {
        data_agent =
            data_agent.with_gap_watch(GapWatch::new(calendar(&cfg)?, checked, resume_after));
    }
    if let Some(bounds) = anomaly_bounds(&cfg, reference.is_some()) {
        data_agent = data_agent.with_anomaly_watch(
            AnomalyWatch::new(bounds, cfg.data.instruments.len()),
            risk.clone().recipient(),
        );
    }
    let mut reader = None;
    if let (Some(x), Some(provider)) = (&cfg.data.cross_check, reference) {
        data_agent = data_agent.with_cross_check(CrossCheck::new(
            provider.name(),
            x.max_disagreement_pct,
            x.release_after_bars,
            cfg.data.instruments.len(),
        ));
        reader = Some(CrossCheckReader::new(
            provider,
            &symbols,
            clock.clone(),
            wall.clone(),
            buffer(&cfg, &sink, "cross_check"),
            data.clone().recipient(),
        ));
    }

    let policy = restart_policy(&cfg);
    let spec = |agent: AgentId| ChildSpec {
        agent,
        policy,
        wall: wall.clone(),
        clock: clock.clone(),
        log: buffer(&cfg, &sink, "supervisor"),
        monitor: monitor.clone().recipient(),
    };
    launcher.monitor(boxes.monitor, monitor_agent)?;
    launcher.supervise(spec(AgentId::Execution), boxes.exec, exec_agent)?;
    launcher.supervise(spec(AgentId::Risk), boxes.risk, risk_agent)?;
    launcher.supervise(spec(AgentId::Signal), boxes.signal, signal_agent)?;
    launcher.supervise(spec(AgentId::Regime), boxes.regime, regime_agent)?;
    launcher.supervise(spec(AgentId::Data), boxes.data, data_agent)?;
    if let Some(reader) = reader {
        // Alive while it reads or waits to reconnect; stops when the Data agent is gone.
        reader.start();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline's flow (sender, receiver): bars, regimes, signals, intents, and every
    /// agent's heartbeats, metrics and faults to the Monitor. Commands and credits that flow
    /// back (Monitor → Risk, Execution → Data) wait in mailboxes made before any agent starts.
    const FLOW: [(AgentId, AgentId); 10] = [
        (AgentId::Data, AgentId::Regime),
        (AgentId::Regime, AgentId::Signal),
        (AgentId::Signal, AgentId::Risk),
        (AgentId::Risk, AgentId::Execution),
        (AgentId::Data, AgentId::Monitor),
        (AgentId::Regime, AgentId::Monitor),
        (AgentId::Signal, AgentId::Monitor),
        (AgentId::Risk, AgentId::Monitor),
        (AgentId::Execution, AgentId::Monitor),
        (AgentId::Data, AgentId::Risk),
    ];

    #[test]
    fn every_agent_starts_after_those_it_sends_to() {
        let position = |a: AgentId| {
            START_ORDER
                .iter()
                .position(|s| *s == a)
                .expect("every agent is in the start order")
        };
        for (sender, receiver) in FLOW {
            assert!(
                position(receiver) < position(sender),
                "{receiver:?} must start before {sender:?}, which sends to it"
            );
        }
        let mut all = START_ORDER.to_vec();
        all.sort_by_key(|a| a.service());
        all.dedup();
        assert_eq!(all.len(), 6, "each agent starts once");
    }

    #[test]
    fn the_launcher_refuses_an_agent_out_of_order() {
        let mut launcher = Launcher::new(false);
        let err = launcher
            .turn(AgentId::Data)
            .expect_err("the Data agent is a source: it starts last");
        assert!(
            err.to_string().contains("sinks start before sources"),
            "{err}"
        );
        for agent in START_ORDER {
            launcher.turn(agent).expect("the start order is accepted");
        }
        assert!(
            launcher.turn(AgentId::Monitor).is_err(),
            "nothing starts twice"
        );
    }

    #[test]
    fn a_feed_paces_itself_and_a_replay_follows_the_configured_speed() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.data.speed = Speed::Factor(60.0);
        assert!(matches!(pacing(&cfg), Pacing::Factor(f) if f == 60.0));
        cfg.data.speed = Speed::Max;
        assert!(matches!(pacing(&cfg), Pacing::Max));
        cfg.data.speed = Speed::Factor(60.0);
        cfg.data.feed = Some(
            toml::from_str("url = \"ws://127.0.0.1:1/\"\nkey_id = \"k\"\nsecret_file = \"s\"")
                .expect("a feed section parses"),
        );
        assert!(matches!(pacing(&cfg), Pacing::Max));
    }

    #[test]
    fn the_anomaly_watch_runs_for_its_rules_or_for_the_cross_check_alone() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.data.anomaly.enabled = false;
        assert!(anomaly_bounds(&cfg, false).is_none());
        let for_cross_check = anomaly_bounds(&cfg, true).expect("the cross-check needs the watch");
        assert!(for_cross_check.max_jump.is_none() && for_cross_check.k_sigma.is_none());
        cfg.data.anomaly.enabled = true;
        cfg.data.anomaly.max_jump_pct = rust_decimal::Decimal::from(15);
        cfg.data.anomaly.k_sigma = 8.0;
        let on = anomaly_bounds(&cfg, false).expect("the rules are on");
        assert_eq!(on.max_jump, Some(rust_decimal::Decimal::new(15, 2)));
        assert_eq!(on.k_sigma, Some(8.0));
    }

    #[test]
    fn gaps_are_checked_per_instrument_with_the_default_for_the_rest() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.data.check_gaps = false;
        for i in &mut cfg.data.instruments {
            i.check_gaps = None;
        }
        assert_eq!(gap_checked(&cfg), None);
        cfg.data.instruments[0].check_gaps = Some(true);
        let checked = gap_checked(&cfg).expect("one instrument is checked");
        assert!(checked[0]);
        assert!(checked.iter().skip(1).all(|c| !c));
    }

    #[test]
    fn the_restart_policy_is_the_configured_supervision() {
        let cfg = VigilConfig::embedded_default();
        let p = restart_policy(&cfg);
        let sup = cfg.monitor.supervision;
        assert_eq!(p.max_restarts, sup.max_restarts);
        assert_eq!(p.within, Duration::from_secs(sup.within_s));
        assert_eq!(p.backoff_max, Duration::from_millis(sup.backoff_max_ms));
    }
}
