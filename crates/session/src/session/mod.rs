//! Building, running and stopping a session.
//!
//! [`Session::start`] runs in named stages, each in its own module with unit tests of what
//! it decides; the order between them is carried by the values they hand on:
//!
//! 1. [`store`]: open the store and restore what it remembers (a store that lost its
//!    history is refused);
//! 2. [`provider`]: choose the data provider and where market time starts;
//! 3. [`venue`]: choose the venue; the log's and the broker's memory (`Evidence`) is read
//!    before the log starts;
//! 4. [`log`]: start the log writer, its anchors and the library-log bridge (which writes
//!    what libraries logged since the start, held for it), and settle the store's history
//!    against the evidence;
//! 5. [`venue`] again: the journal is reconciled with a broker into a `Reconciled`, without
//!    which no agent can be built (reconcile before trading);
//! 6. [`persisters`]: the execution journal and the trading-state writer;
//! 7. [`agents`]: build and wire the six agents and start them in `START_ORDER`, sinks
//!    before sources (the launcher refuses any other order);
//! 8. [`control`]: the control API and the operator's signals, once everything runs.

mod agents;
mod control;
mod fleet_commands;
mod fleet_watch;
mod log;
mod persisters;
mod provider;
mod release;
mod store;
mod venue;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_config::{ConfigError, VigilConfig};
use vigil_control::ControlServer;
use vigil_core::{AgentId, SharedClock, SystemClock, Timestamp};
use vigil_log::{LogTap, LogWriterError, LogWriterHandle, VigilTracingLayer};
use vigil_messages::{Command, CommandError, SessionSummary, Shutdown, StopReason};
use vigil_monitor_agent::{Logged, TAPPED};
use vigil_monitoring::HealthBoard;
use vigil_providers::DataProvider;

use self::agents::{Launcher, Mailboxes};
pub use self::fleet_watch::{WatchSummary, fleet_watch};
pub use self::log::append_to_log;
use self::log::locked;
pub use self::provider::read_secret;
pub use self::venue::reconcile_now;

/// What a session needs besides its config.
pub struct SessionOptions {
    /// The validated configuration.
    pub config: VigilConfig,
    /// Wall clock for supervision (heartbeats, timeouts), replay pacing and log flushing.
    /// Tests pass a simulated clock.
    pub supervision_clock: SharedClock,
    /// Stop gracefully on SIGINT / SIGTERM (a second signal exits at once).
    pub handle_ctrl_c: bool,
    /// A data provider of your own instead of the config's CSV files. Its bars must use
    /// the symbol ids of `config.data.instruments`, in that order.
    pub provider: Option<Box<dyn DataProvider>>,
    /// Where the replay's market clock starts when `provider` is set (it moves to each
    /// bar's time as bars pass; it never moves backwards). Default: it tells the wall time
    /// until the first bar sets it.
    pub market_start: Option<Timestamp>,
    /// Texts to redact from every log line besides the config's own secrets: credentials
    /// your own provider or venue holds.
    pub secrets: Vec<String>,
    /// The config file, re-read on SIGHUP to reload calendar overrides (with
    /// `handle_ctrl_c`); `None` for the embedded default.
    pub config_path: Option<PathBuf>,
    /// The operator asked for the broker's book to be rebuilt from the broker because the
    /// store lost its history (`vigil run --rebuild-journal-from-broker`; see
    /// docs/recovery.md). Refused when nothing was lost.
    pub rebuild_journal: bool,
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("session", &self.config.session.name)
            .field("supervision_clock", &self.supervision_clock)
            .field("handle_ctrl_c", &self.handle_ctrl_c)
            .field(
                "provider",
                &self.provider.as_ref().map(|p| p.name().to_string()),
            )
            .field("rebuild_journal", &self.rebuild_journal)
            .finish()
    }
}

impl SessionOptions {
    /// Creates options for `config` on the system clock, without a signal handler.
    pub fn new(config: VigilConfig) -> Self {
        Self {
            config,
            supervision_clock: Arc::new(SystemClock),
            handle_ctrl_c: false,
            provider: None,
            market_start: None,
            secrets: Vec::new(),
            config_path: None,
            rebuild_journal: false,
        }
    }

    /// Replays `provider` instead of the config's CSV files.
    pub fn with_provider(
        mut self,
        provider: Box<dyn DataProvider>,
        market_start: Timestamp,
    ) -> Self {
        self.provider = Some(provider);
        self.market_start = Some(market_start);
        self
    }
}

/// `vigil_model_info{model, version} 1` on `/metrics`: the model being traded, so that
/// performance can be tied to a version (the Monitor keeps it true from the Signal agent's
/// heartbeats: 0 for a model run beside it without trading).
fn model_info(model: &vigil_signal_agent::ActiveModel) {
    let (name, version) = model.label().split_once('@').unwrap_or((model.label(), ""));
    metrics::describe_gauge!(
        "vigil_model_info",
        "The models the Signal agent runs: 1 the one it trades, 0 one it runs beside it without trading (a release's candidate in shadow, or the model before a switch); name and version are labels"
    );
    metrics::gauge!("vigil_model_info", "model" => name, "version" => version).set(1.0);
}

/// Why a session could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The configuration has problems.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Market data could not be opened or its first rows are bad.
    #[error("{0}")]
    Data(String),
    /// The log could not be opened or written.
    #[error("{0}")]
    Log(#[from] LogWriterError),
    /// The control address could not be opened.
    #[error("{0}")]
    Control(#[from] vigil_control::ControlError),
    /// The store could not be opened or read.
    #[error("{0}")]
    Store(#[from] vigil_store::StoreError),
    /// The store lost its history (or failed its integrity check): refused, with what was
    /// found and how to recover (see docs/recovery.md).
    #[error("{0}")]
    History(String),
    /// The alert channels' settings are wrong.
    #[error("alert channels: {0}")]
    Alerts(#[from] vigil_alert::AlertError),
    /// The broker (`execution.venue = "alpaca"`) cannot be reached or its secret read.
    #[error("execution venue: {0}")]
    Venue(String),
    /// The model (`[signal] model`) is not one vigil may run: the file and the reason.
    #[error("model: {0}")]
    Model(#[from] vigil_model::RuntimeError),
    /// The model is registered under its version with another content address: it changed
    /// after it was registered.
    #[error("model: {0}")]
    Registry(#[from] vigil_deploy::registry::RegistryError),
    /// The actor system failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// Any of the above whose text held a secret: the text, with the secret redacted.
    #[error("{0}")]
    Redacted(String),
}

/// `direct` (a model loaded from a directory, or the built-in one), checked against the
/// registry when its version is registered; or, for a reference `(name, version or
/// alias)`, the registered version's artifact, loaded from its directory and checked to be
/// the one registered.
///
/// # Errors
/// The store cannot be read, the reference names nothing tradable, the artifact does not
/// load, or it is not the one registered.
async fn registered_model(
    store: &dyn vigil_store::StateStore,
    signal: &vigil_config::SignalConfig,
    reference: Option<(&str, &str)>,
    direct: Option<vigil_signal_agent::ActiveModel>,
) -> Result<vigil_signal_agent::ActiveModel, SystemError> {
    use vigil_deploy::registry::{Registry, same_artifact};
    let registry = async |name: &str| Ok::<_, SystemError>(Registry::read(store, name).await?);
    match (direct, reference) {
        (Some(model), _) => {
            if let Some(artifact) = model.artifact() {
                registry(&artifact.manifest.name).await?.check(artifact)?;
            }
            Ok(model)
        }
        (None, Some((name, selector))) => {
            let registry = registry(name).await?;
            let entry = registry.tradable(selector)?;
            let dir = vigil_config::SignalConfig {
                model: entry.artifact_path.clone(),
                ..signal.clone()
            };
            let model = vigil_signal_agent::ActiveModel::from_config(&dir, Path::new(""))?;
            if let Some(artifact) = model.artifact() {
                same_artifact(entry, artifact)?;
            }
            Ok(model)
        }
        (None, None) => Ok(vigil_signal_agent::ActiveModel::from_config(
            signal,
            Path::new(""),
        )?),
    }
}

impl SystemError {
    /// This error, or its text with every secret `redactor` knows replaced if it held one.
    #[must_use]
    pub fn redacted(self, redactor: &vigil_log::Redactor) -> Self {
        let text = self.to_string();
        match redactor.redact(&text) {
            std::borrow::Cow::Borrowed(_) => self,
            std::borrow::Cow::Owned(clean) => Self::Redacted(clean),
        }
    }
}

/// The file in the log folder that holds the bound control address while a session runs.
pub use vigil_control::CONTROL_ADDR_FILE;

/// The result of a finished session.
#[derive(Clone, Debug)]
pub struct SessionOutcome {
    /// The figures.
    pub summary: SessionSummary,
    /// The log folder.
    pub log_dir: PathBuf,
    /// The log file being written at the end.
    pub log_file: PathBuf,
    /// Log lines written.
    pub log_lines: u64,
    /// Wall time from start to the last log flush, in seconds.
    pub wall_seconds: f64,
}

impl SessionOutcome {
    /// Returns bars processed per wall-clock second.
    pub fn bars_per_second(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.summary.bars as f64 / self.wall_seconds
        } else {
            0.0
        }
    }

    /// Tells whether the session ended on an error.
    pub fn failed(&self) -> bool {
        self.summary.error.is_some()
    }
}

/// Commands into a running session.
#[derive(Clone, Debug)]
pub struct SessionControl {
    commands: Recipient<Command>,
    shutdown: Recipient<Shutdown>,
}

impl SessionControl {
    /// Sends a command to the Monitor and returns its answer.
    ///
    /// # Errors
    /// Returns the Monitor's refusal, or that the session is no longer running.
    pub async fn command(&self, cmd: Command) -> Result<String, CommandError> {
        self.commands
            .send(cmd)
            .await
            .map_err(|e| CommandError::Unavailable(format!("session is not running: {e}")))?
    }

    /// Asks the session to stop gracefully: the Data agent stops reading and the pipeline
    /// drains in order.
    pub fn shutdown(&self) {
        self.shutdown.do_send(Shutdown {
            reason: StopReason::Interrupted,
        });
    }
}

/// A running session.
#[derive(Debug)]
pub struct Session {
    control: SessionControl,
    done: oneshot::Receiver<SessionSummary>,
    log: LogWriterHandle,
    arbiters: Vec<Arbiter>,
    wall: SharedClock,
    started: Timestamp,
    board: HealthBoard,
    server: Option<(ControlServer, PathBuf)>,
    /// Saves trading-state changes; ends when the Risk agent has stopped.
    state_writer: actix_rt::task::JoinHandle<()>,
    /// Commits the execution journal, if kept; ends when the Execution agent has stopped.
    journal_writer: Option<tokio::task::JoinHandle<()>>,
    /// Records the log's anchors in the store; ends after the stop anchor.
    anchor_writer: actix_rt::task::JoinHandle<()>,
    /// Why the log writer failed, if it did: the session then halted and stopped.
    log_failure: Arc<std::sync::Mutex<Option<String>>>,
    /// Writes the store's identity file again at the end, with the journal's final figures.
    identity: crate::history::Keeper,
    /// The watchdog over the Monitor (when monitoring is on).
    watchdog: Option<crate::watchdog::Watchdog>,
    /// The fleet publisher (with `[fleet]`).
    fleet: Option<vigil_fleet::Publisher>,
    /// The fleet commands' listener (with `[fleet] command_token_file`).
    fleet_commands: Option<fleet_commands::Listener>,
    /// Where the orders went: its connection is ended once the Execution agent stopped.
    venue: OpenVenue,
}

/// The session's venue, named in the session's debug view.
struct OpenVenue(Arc<dyn vigil_providers::ExecutionVenue>);

impl std::fmt::Debug for OpenVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OpenVenue").field(&self.0.name()).finish()
    }
}

impl Session {
    /// Builds the system and starts every agent. Must be called inside a running actix
    /// system (see [`run`]).
    ///
    /// # Errors
    /// Fails on an invalid config, unreadable data, or a log that cannot be opened —
    /// before any agent starts; [`SystemError::History`] when the store lost its history or
    /// fails its integrity check (see docs/recovery.md), before anything is sent. The
    /// error's text never holds a secret: every secret known by then (the config's,
    /// `opts.secrets`, the secret files read) is redacted from it.
    pub async fn start(opts: SessionOptions) -> Result<Self, SystemError> {
        let mut secrets = opts.config.secrets();
        secrets.extend(opts.secrets.iter().cloned());
        let mut read = Vec::new();
        let started = Self::start_reading(opts, &mut read).await;
        started.map_err(|e| {
            secrets.extend(read);
            e.redacted(&vigil_log::Redactor::new(secrets).0)
        })
    }

    /// [`Session::start`] in its named stages; the secrets it reads from files go to
    /// `read` as they are read (for the error text to redact).
    async fn start_reading(
        opts: SessionOptions,
        read: &mut Vec<String>,
    ) -> Result<Self, SystemError> {
        let cfg = opts.config;
        cfg.validate()?;
        // What libraries log before the log starts (a broker session's logon, with the
        // sequence numbers it resumed at) is held for it, and written when it starts.
        VigilTracingLayer::hold_until_installed();
        // The model, loaded and checked (manifest, hashes, graph) before anything starts;
        // a registry reference once the store is open (step 1).
        let reference = cfg.signal.registry_reference();
        let direct = match reference {
            None => Some(vigil_signal_agent::ActiveModel::from_config(
                &cfg.signal,
                Path::new(""),
            )?),
            Some(_) => None,
        };
        // Built without network I/O: a channel that is down does not stop the start.
        let channels = vigil_alert::Channels::from_config(&cfg.alerts.channels)?;
        let wall = opts.supervision_clock;
        let started = wall.now();

        // 1. Open the store and restore what it remembers (a store that lost its history
        //    is refused here).
        let (mut opened, mut restored) = store::open(&cfg, opts.rebuild_journal).await?;
        // The model a registry reference names, and the registry's word on any model: one
        // registered under its version must be the artifact registered (docs/deploy.md).
        let model = registered_model(&*restored.store, &cfg.signal, reference, direct).await?;
        // A release of it open in shadow: its candidate runs beside it.
        let (shadow, shadow_skipped) =
            match release::shadow_links(&cfg, &restored.store, &model).await? {
                Ok(links) => (links, None),
                Err(skipped) => (None, Some(skipped)),
            };
        let (drift, drift_unwatched) =
            match release::drift_links(&cfg, &restored.store, &model).await? {
                Ok(links) => (links, None),
                Err(why) => (None, Some(why)),
            };

        // 2. Choose the provider and where market time starts.
        let own = opts.provider.map(|p| (p, opts.market_start));
        let chosen = provider::choose(&cfg, own, &wall, read)?;
        let market = chosen.market.clone();
        let clock: SharedClock = Arc::new(market.clone());

        // 3. Choose the venue, and read what the log and the broker remember before this
        //    session writes to the log.
        let venue = venue::open_venue(
            &cfg,
            &chosen.symbols,
            clock.clone(),
            restored.store.clone(),
            read,
        )
        .await?;
        let evidence = opened.evidence(&cfg, &*venue, &chosen.symbols).await?;

        // 4. Start the log, with every secret known so far to redact.
        let boxes = Mailboxes::new();
        let mut secrets = cfg.secrets();
        secrets.extend(opts.secrets);
        secrets.extend(read.iter().cloned());
        let tapped = boxes.monitor();
        let tap = cfg
            .alerts
            .enabled
            .then(|| LogTap::new(TAPPED, move |ev| tapped.do_send(Logged(ev))));
        let started_log = log::start(
            &cfg,
            &evidence,
            secrets,
            read,
            tap,
            restored.store.clone(),
            &wall,
            &clock,
        )?;
        let sink = started_log.sink.clone();
        let mut session_log = log::buffer(&cfg, &sink, "vigil");
        for ev in log::session_started(
            &cfg,
            clock.now(),
            started,
            venue.name(),
            &chosen.symbols,
            &chosen.unknown_volume,
        ) {
            session_log.emit(ev);
        }
        if let Some(skipped) = &shadow_skipped {
            session_log.emit(skipped.line(clock.now()));
        }
        if let Some(why) = &drift_unwatched {
            session_log.emit(release::drift_unwatched(clock.now(), &model, why));
        }
        if let Some(error) = &started_log.unbridged {
            session_log.emit(log::unbridged(clock.now(), error));
        }
        session_log.flush();
        // The store's history, settled against the evidence (rebuilt when asked).
        let settled = opened
            .settle(
                &cfg,
                evidence,
                &*venue,
                &chosen.symbols,
                wall.now(),
                clock.now(),
                &mut session_log,
            )
            .await;
        let identity = match settled {
            Ok((identity, _rebuilt)) => identity,
            Err(e) => {
                // The refusal is in the log before the process says so.
                if let Err(flush) = started_log.log.flush().await {
                    eprintln!("vigil: the log could not be flushed: {flush}");
                }
                VigilTracingLayer::uninstall_global();
                return Err(e);
            }
        };

        // 5. Reconcile with the broker before anything trades.
        let reconciled = venue::reconcile_at_start(
            &cfg,
            &*restored.store,
            &*venue,
            &chosen.symbols,
            restored.trading_state.take(),
            &wall,
            &clock,
            log::buffer(&cfg, &sink, AgentId::Execution.service()),
        )
        .await?;

        // 6. Start the persisters: the execution journal, the trading-state writer, and
        //    the halt when the log writer fails.
        let monitor = boxes.monitor();
        let external = venue::is_external(&cfg);
        let (journal, journal_writer) = match persisters::journal_book(&cfg, external, started) {
            Some(book) => {
                let j = persisters::start_journal(&cfg, restored.store.clone(), book, &wall)?;
                persisters::forward_journal_failures(j.failures, monitor.clone().recipient());
                (Some((j.journal, external)), Some(j.writer))
            }
            None => (None, None),
        };
        let (state_changes, state_writer) =
            persisters::start_state_writer(restored.store.clone(), monitor.clone().recipient());
        let halt = vigil_messages::HaltLatch::default();
        let watchdog_halt = halt.clone();
        let log_failure = Arc::new(std::sync::Mutex::new(None));
        actix_rt::spawn(log::halt_on_log_failure(
            started_log.failures,
            log_failure.clone(),
            halt.clone(),
            boxes.risk().recipient(),
            boxes.data().recipient(),
        ));

        // 7. Build and wire the agents, and start them: sinks before sources.
        let (done_tx, done_rx) = oneshot::channel();
        let board = HealthBoard::new();
        board.record(|| model_info(&model));
        let control = SessionControl {
            commands: monitor.recipient(),
            shutdown: boxes.data().recipient(),
        };
        let data = boxes.data();
        let mut launcher = Launcher::new(cfg.runtime.isolate_agents);
        agents::build_and_start(
            agents::Inputs {
                cfg: cfg.clone(),
                wall: wall.clone(),
                clock: clock.clone(),
                market,
                sink: sink.clone(),
                log: started_log.log.clone(),
                restored,
                channels,
                chosen,
                venue: venue.clone(),
                reconciled,
                journal,
                state_changes,
                halt,
                board: board.clone(),
                model,
                shadow,
                drift,
                done: done_tx,
            },
            boxes,
            &mut launcher,
        )?;
        let mut arbiters = launcher.into_arbiters();
        // The Monitor's arbiter first, then the log's: the order they stop in at the end.
        arbiters.insert(1.min(arbiters.len()), started_log.arbiter);

        // 8. Open the control API and listen for the operator's signals.
        let server =
            control::start_api(&cfg, board.clone(), sink.clone(), &clock, &wall, &control).await?;
        // 9. systemd hears that the service is up; then the watchdog over the Monitor,
        //    outside the actor system, pings it while the Monitor is alive.
        crate::watchdog::ready();
        let systemd = crate::watchdog::systemd_interval();
        // A hung Monitor is a matter of physical time, like a missed heartbeat: under a
        // simulated supervision clock (a test walking days in seconds) the watchdog is off.
        let watchdog = if cfg.monitor.enabled && !wall.is_simulated() {
            Some(
                crate::watchdog::Watchdog::start(crate::watchdog::Watch {
                    board: board.clone(),
                    wall: wall.clone(),
                    halt: watchdog_halt,
                    log: sink.clone(),
                    stall_after: cfg.monitor.watchdog_stall(),
                    systemd,
                })
                .map_err(|e| {
                    SystemError::Runtime(format!("cannot start the watchdog thread: {e}"))
                })?,
            )
        } else {
            if systemd.is_some() {
                eprintln!(
                    "vigil: ERROR systemd's watchdog is on but monitor.enabled = false: nothing publishes the health board, so no watchdog ping is sent and systemd will restart vigil; turn monitoring on or remove WatchdogSec"
                );
            }
            None
        };
        // 10. The fleet: this node's log published to NATS JetStream, on a thread of its
        //     own (trading never waits for it; NATS down is alerted, never fatal).
        let fleet = match &cfg.fleet {
            Some(f) => Some(
                vigil_fleet::Publisher::start(
                    f.clone(),
                    cfg.log.dir.clone(),
                    sink.clone(),
                    wall.clone(),
                )
                .map_err(|e| {
                    SystemError::Runtime(format!("cannot start the fleet publisher: {e}"))
                })?,
            ),
            None => None,
        };
        let fleet_commands =
            fleet_commands::start(&cfg, control.commands.clone(), sink.clone(), wall.clone())
                .await?;
        if opts.handle_ctrl_c {
            control::install_signals(
                &cfg,
                opts.config_path,
                control.clone(),
                data.recipient(),
                log::buffer(&cfg, &sink, "vigil"),
                clock.clone(),
            )?;
        }

        Ok(Self {
            control,
            done: done_rx,
            log: started_log.log,
            arbiters,
            wall,
            started,
            board,
            server,
            state_writer,
            journal_writer,
            anchor_writer: started_log.anchor_writer,
            log_failure,
            identity,
            watchdog,
            fleet,
            fleet_commands,
            venue: OpenVenue(venue),
        })
    }

    /// Returns the health board the Monitor publishes to.
    pub fn board(&self) -> HealthBoard {
        self.board.clone()
    }

    /// Returns the control address, when it is served.
    pub fn control_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|(s, _)| s.addr())
    }

    /// Returns a handle for commands and shutdown.
    pub fn control(&self) -> SessionControl {
        self.control.clone()
    }

    /// Waits for the session to end, flushes the log and stops the helper threads.
    ///
    /// # Errors
    /// Fails when the Monitor vanished without a summary or the log cannot be flushed.
    pub async fn wait(self) -> Result<SessionOutcome, SystemError> {
        let mut summary = self.done.await.map_err(|_| {
            SystemError::Runtime("the monitor stopped before reporting the session summary".into())
        })?;
        // No fleet command is taken once the Monitor has stopped.
        if let Some(listener) = self.fleet_commands {
            listener.stop().await;
        }
        // The Monitor has stopped publishing: the watchdog stops before it could take that
        // for a stall.
        crate::watchdog::stopping();
        if let Some(dog) = self.watchdog {
            dog.stop();
        }
        // The error text goes to people too (the CLI prints it): no secret in it either.
        summary.error = summary.error.map(|e| self.log.redact(&e));
        // The Risk agent has stopped (the pipeline ends before the summary): its last
        // trading-state change is saved before the process may exit.
        match tokio::time::timeout(Duration::from_secs(10), self.state_writer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("vigil: CRITICAL the trading-state writer failed: {e}"),
            Err(_) => eprintln!(
                "vigil: CRITICAL the trading state was still being saved after 10 s; the last change may be lost"
            ),
        }
        // The Execution agent has stopped: the journal's last entries are committed.
        if let Some(writer) = self.journal_writer {
            match tokio::time::timeout(Duration::from_secs(10), writer).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("vigil: CRITICAL the journal writer failed: {e}"),
                Err(_) => eprintln!(
                    "vigil: CRITICAL the journal was still being written after 10 s; its last entries may be lost"
                ),
            }
        }
        // Nothing more goes to the venue: a broker's session ends gracefully (a FIX Logout).
        if tokio::time::timeout(Duration::from_secs(10), self.venue.0.close())
            .await
            .is_err()
        {
            eprintln!("vigil: ERROR: the venue's connection was still closing after 10 s");
        }
        // The identity file records what the journal holds now: a store that later holds
        // less lost it.
        if let Err(e) = self.identity.write(self.wall.now()).await {
            eprintln!("vigil: CRITICAL the store's identity file was not updated: {e}");
        }
        VigilTracingLayer::uninstall_global();
        if let Some((server, file)) = self.server {
            server.stop().await;
            if let Err(e) = std::fs::remove_file(&file) {
                eprintln!("vigil: cannot remove {}: {e}", file.display());
            }
        }
        // The log's last line, fsynced, then its stop anchor recorded: nothing may follow it.
        let stats = match self.log.close().await {
            Ok(stats) => Some(stats),
            Err(e) => {
                let error = format!("the log could not be closed: {e}");
                eprintln!("vigil: CRITICAL: {error}");
                locked(&self.log_failure).get_or_insert(error);
                None
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), self.anchor_writer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("vigil: ERROR: the log anchor writer failed: {e}"),
            Err(_) => eprintln!(
                "vigil: ERROR: the log's stop anchor was still being recorded after 10 s; \
                 `vigil logs verify` will take the end of this session as unanchored"
            ),
        }
        // The fleet gets the session's last lines (the stop included) while NATS answers
        // within a few seconds; what it does not get waits in the log for the next start.
        if let Some(fleet) = self.fleet {
            fleet.stop(Duration::from_secs(5));
        }
        // A dead log writer fails the session whatever else happened.
        if let Some(error) = locked(&self.log_failure).clone() {
            summary.error.get_or_insert(error);
        }
        let stats = stats.unwrap_or_default();
        let log_file = match vigil_log::list_log_files(self.log.dir()) {
            Ok(files) => files.last().map(|f| f.path.clone()),
            Err(e) => {
                eprintln!(
                    "vigil: cannot list the log folder {}: {e}",
                    self.log.dir().display()
                );
                None
            }
        }
        .unwrap_or_else(|| self.log.dir().to_path_buf());
        let wall_seconds = (self.wall.now() - self.started)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6;
        for arbiter in &self.arbiters {
            // `false` only means the arbiter had already stopped.
            if !arbiter.stop() {
                eprintln!("vigil: an arbiter had stopped before shutdown");
            }
        }
        if stats.errors > 0 {
            eprintln!(
                "vigil: CRITICAL: {} log write error(s) during the session; see messages above",
                stats.errors
            );
        }
        Ok(SessionOutcome {
            summary,
            log_dir: self.log.dir().to_path_buf(),
            log_file,
            log_lines: stats.lines,
            wall_seconds,
        })
    }
}

/// Runs a whole session on a new actix system and returns its outcome.
///
/// # Errors
/// See [`Session::start`] and [`Session::wait`].
pub fn run(opts: SessionOptions) -> Result<SessionOutcome, SystemError> {
    run_with(opts, |_| async {})
}

/// Runs a session and, alongside it, `driver` with the session's control handle (tests
/// use it to pause, trip the breaker or stop mid-run).
///
/// # Errors
/// See [`Session::start`] and [`Session::wait`].
pub fn run_with<F, Fut>(opts: SessionOptions, driver: F) -> Result<SessionOutcome, SystemError>
where
    F: FnOnce(SessionControl) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let system = actix::System::new();
    system.block_on(async move {
        let session = Session::start(opts).await?;
        actix_rt::spawn(driver(session.control()));
        session.wait().await
    })
}
