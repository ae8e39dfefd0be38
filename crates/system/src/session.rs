//! Building, running and stopping a session.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_bus::{
    AgentFault, Backlogs, Command, CommandError, ReloadCalendar, SessionSummary, Shutdown,
    StopReason,
};
use vigil_config::{
    BUNDLED_PREFIX, ConfigError, FillModelConfig, MismatchPolicy, OpenOrdersPolicy, Speed,
    VenueKind, VigilConfig,
};
use vigil_control::{ControlOptions, ControlServer};
use vigil_core::{
    AgentId, Bar, FutureGuard, Level, SharedClock, SimClock, Symbol, SymbolTable, SystemClock,
    Timestamp, TradingState,
};
use vigil_data_agent::{
    AnomalyBounds, AnomalyWatch, CrossCheck, CrossCheckReader, DataAgent, DataAgentConfig,
    GapWatch, OutageLinks, Pacing, PremarketGate, Scheduler,
};
use vigil_execution_agent::{ExecutionAgent, ReconcileLinks};
use vigil_log::{
    Anchor, AnchorKind, ChainKey, Event, LogBuffer, LogEvent, LogSink, LogTap, LogWriter,
    LogWriterError, LogWriterHandle, VigilTracingLayer, WriterOptions, WriterReport, WriterReports,
};
use vigil_monitor_agent::{AlertLinks, HealthLinks, Logged, MonitorAgent, MonitorLinks, TAPPED};
use vigil_monitoring::HealthBoard;
use vigil_providers::{
    AlpacaVenue, AlpacaVenueConfig, CsvBarReader, CsvReplayProvider, CsvSource, DataProvider,
    ExecutionVenue, FillModel, PaperVenue, PaperVenueConfig, WsFeedConfig, WsFeedProvider,
};
use vigil_recovery::{OpenOrderPolicy, ReconcileOptions, reconcile, reconciliation_events};
use vigil_regime_agent::RegimeAgent;
use vigil_risk_agent::{ExecutionLinks, RiskAgent};
use vigil_signal_agent::SignalAgent;
use vigil_supervisor::{ChildSpec, ChildSupervisor, RestartPolicy};

use crate::bundled::{BUNDLED_FILES, bundled};

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
    /// The actor system failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// Any of the above whose text held a secret: the text, with the secret redacted.
    #[error("{0}")]
    Redacted(String),
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
pub const CONTROL_ADDR_FILE: &str = "control.addr";

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
}

fn symbol_table(cfg: &VigilConfig) -> SymbolTable {
    SymbolTable::new(
        cfg.data
            .instruments
            .iter()
            .map(|i| Symbol::from(i.symbol.as_str())),
    )
}

fn sources(cfg: &VigilConfig) -> Result<(SymbolTable, Vec<CsvSource>), SystemError> {
    let symbols = symbol_table(cfg);
    let mut out = Vec::new();
    for (i, inst) in cfg.data.instruments.iter().enumerate() {
        let id = vigil_core::SymbolId(i as u32);
        let src = match inst.path.strip_prefix(BUNDLED_PREFIX) {
            Some(name) => {
                let bytes = bundled(name).ok_or_else(|| {
                    SystemError::Data(format!(
                        "data.instruments[{i}].path: no bundled file {name:?}; bundled: {}",
                        BUNDLED_FILES.join(", ")
                    ))
                })?;
                CsvSource::bytes(id, inst.path.clone(), bytes)
            }
            None => CsvSource::file(id, PathBuf::from(&inst.path)),
        };
        out.push(src);
    }
    Ok((symbols, out))
}

/// What the start learns from the first bar of every source.
struct FirstBars {
    /// Where the replay's market clock starts (none: no source has a bar).
    at: Option<Timestamp>,
    /// The sources without a volume column: (symbol, source name).
    unknown_volume: Vec<(vigil_core::SymbolId, String)>,
}

/// Reads the first bar of every source: fails fast on a missing file or a bad header, finds
/// where the replay's market clock starts, and which sources have no volume column.
fn first_bars(sources: &[CsvSource]) -> Result<FirstBars, SystemError> {
    let mut first: Option<Timestamp> = None;
    let mut unknown_volume = Vec::new();
    let mut buf: Vec<Bar> = Vec::with_capacity(1);
    for src in sources {
        let mut reader = CsvBarReader::open(src).map_err(|e| SystemError::Data(e.to_string()))?;
        if !reader.has_volume() {
            unknown_volume.push((src.symbol(), src.display_name().to_string()));
        }
        buf.clear();
        reader
            .read_batch(1, &mut buf)
            .map_err(|e| SystemError::Data(e.to_string()))?;
        if let Some(b) = buf.first() {
            first = Some(first.map_or(b.ts, |f| f.min(b.ts)));
        }
    }
    Ok(FirstBars {
        at: first,
        unknown_volume,
    })
}

/// The broker's API secret, read from `execution.broker_secret_file` (trimmed), when orders
/// go to a broker with credentials.
fn broker_secret(cfg: &VigilConfig) -> Result<Option<String>, SystemError> {
    let e = &cfg.execution;
    e.broker_secret_file
        .as_ref()
        .filter(|_| e.venue == VenueKind::Alpaca)
        .map(|path| read_secret("execution.broker_secret_file", path).map_err(SystemError::Venue))
        .transpose()
}

/// The `[data.feed]` secrets, read from their files: the feed's, then each backup's
/// (none without a feed).
fn feed_secrets(cfg: &VigilConfig) -> Result<Vec<String>, SystemError> {
    let Some(f) = &cfg.data.feed else {
        return Ok(Vec::new());
    };
    let mut out =
        vec![read_secret("data.feed.secret_file", &f.secret_file).map_err(SystemError::Data)?];
    for (i, b) in f.backups.iter().enumerate() {
        out.push(
            read_secret(
                &format!("data.feed.backups[{i}].secret_file"),
                &b.secret_file,
            )
            .map_err(SystemError::Data)?,
        );
    }
    Ok(out)
}

/// The `[data.cross_check]` reference feed, and its secret (for the log to redact).
type Reference = (Box<dyn DataProvider>, String);

/// The `[data.cross_check]` reference feed, with its secret read from its file (none when
/// the cross-check is off).
fn cross_check_reference(
    cfg: &VigilConfig,
    wall: &SharedClock,
) -> Result<Option<Reference>, SystemError> {
    let Some(x) = &cfg.data.cross_check else {
        return Ok(None);
    };
    let secret =
        read_secret("data.cross_check.secret_file", &x.secret_file).map_err(SystemError::Data)?;
    let provider: Box<dyn DataProvider> = Box::new(WsFeedProvider::new(
        WsFeedConfig::new(x.url.clone(), x.key_id.clone(), &secret)
            .with_future_guard(FutureGuard::new(wall.clone(), future_tolerance(cfg))),
    ));
    Ok(Some((provider, secret)))
}

/// The provider of one feed; it rejects bars from the future by `wall`.
fn feed_provider(
    feed: &vigil_config::FeedConfig,
    secret: &str,
    cfg: &VigilConfig,
    wall: &SharedClock,
) -> Box<dyn DataProvider> {
    Box::new(WsFeedProvider::new(
        WsFeedConfig::new(feed.url.clone(), feed.key_id.clone(), secret)
            .with_future_guard(FutureGuard::new(wall.clone(), future_tolerance(cfg))),
    ))
}

/// How far ahead of the wall clock a bar may be (`data.future_tolerance_s`).
fn future_tolerance(cfg: &VigilConfig) -> chrono::Duration {
    // Validated to at most a day.
    chrono::Duration::seconds(i64::try_from(cfg.data.future_tolerance_s).unwrap_or(86_400))
}

/// A secret file's one line, trimmed; the error names the config key (or flag) and the file.
/// Every secret file goes through [`vigil_config::read_secret_file`]: one that group or
/// others may read is refused.
///
/// # Errors
/// The file cannot be read, group or others may read it, or it holds nothing but
/// whitespace.
pub fn read_secret(key: &str, path: &std::path::Path) -> Result<String, String> {
    vigil_config::read_secret_file(key, path)
}

/// The key of a keyed log chain, read from `log.hmac_key_file`, and its text (for the log
/// to redact).
fn log_key(cfg: &VigilConfig) -> Result<Option<(ChainKey, String)>, SystemError> {
    let Some(path) = &cfg.log.hmac_key_file else {
        return Ok(None);
    };
    let text = read_secret("log.hmac_key_file", path).map_err(SystemError::Runtime)?;
    let key = ChainKey::new(text.as_bytes())
        .map_err(|e| SystemError::Runtime(format!("log.hmac_key_file {}: {e}", path.display())))?;
    Ok(Some((key, text)))
}

/// A mutex's value, also after a panic elsewhere left it poisoned (an `Option` is valid
/// either way).
fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Flush anchors older than this are thinned (the last of each file and hour stays).
const ANCHORS_KEPT_WHOLE: chrono::Duration = chrono::Duration::hours(1);

/// The anchors thinned again after this many are recorded.
const THIN_ANCHORS_EVERY: u64 = 1_000;

/// Records the log writer's anchors in the store, off the writer's threads and without
/// ever holding up trading: when the store is slower than the flushes, only the newest
/// waiting flush anchor is recorded (starts and stops always are). Ends after the stop
/// anchor, or when the writer is gone. A failure is an ERROR line (`log_anchor_failed`,
/// alerted), on standard error too, counted; the next anchor is tried all the same.
async fn record_anchors(
    store: vigil_store::SharedStore,
    mut anchors: tokio::sync::mpsc::UnboundedReceiver<Anchor>,
    mut log: LogBuffer,
    wall: SharedClock,
) {
    let thin = |store: vigil_store::SharedStore, wall: SharedClock| async move {
        if let Err(e) = store
            .thin_log_anchors(wall.now() - ANCHORS_KEPT_WHOLE)
            .await
        {
            eprintln!("vigil: WARN: old log anchors were not thinned: {e}");
        }
    };
    thin(store.clone(), wall.clone()).await;
    let mut recorded = 0u64;
    let mut failures = 0u64;
    while let Some(first) = anchors.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = anchors.try_recv() {
            waiting.push(more);
        }
        let newest_flush = waiting.iter().rposition(|a| a.kind == AnchorKind::Flush);
        let batch: Vec<vigil_store::LogAnchor> = waiting
            .into_iter()
            .enumerate()
            .filter(|(i, a)| a.kind != AnchorKind::Flush || Some(*i) == newest_flush)
            .map(|(_, a)| a)
            .collect();
        let stop = batch.iter().any(|a| a.kind == AnchorKind::Stop);
        match store.anchor_log(&batch).await {
            Ok(()) => {
                let before = recorded / THIN_ANCHORS_EVERY;
                recorded += batch.len() as u64;
                if recorded / THIN_ANCHORS_EVERY > before {
                    thin(store.clone(), wall.clone()).await;
                }
            }
            Err(e) => {
                failures += 1;
                let newest = batch.last();
                let (file, seq) = newest.map_or((String::new(), 0), |a| (a.file.clone(), a.seq));
                eprintln!(
                    "vigil: ERROR: the log anchor (seq {seq} in {file}) was not recorded in the \
                     store ({failures} failure(s) this session): {e}"
                );
                log.emit(
                    LogEvent::new(wall.now(), "vigil", Event::LogAnchorFailed)
                        .with("file", file)
                        .with("seq", seq)
                        .with("error", e.to_string())
                        .with("failures", failures),
                );
                log.flush();
            }
        }
        if stop {
            break;
        }
    }
}

/// A session never trades without its log: when the writer fails (it cannot write, it
/// stopped, its thread died), the breaker trips at once (actor `log_writer`), the Risk agent
/// halts, the pipeline drains and stops, and the session ends failed. Said on standard
/// error, since the log cannot say it.
async fn halt_on_log_failure(
    mut failures: tokio::sync::mpsc::UnboundedReceiver<String>,
    record: Arc<std::sync::Mutex<Option<String>>>,
    halt: vigil_bus::HaltLatch,
    risk: Recipient<vigil_bus::SetTradingState>,
    data: Recipient<Shutdown>,
) {
    while let Some(error) = failures.recv().await {
        let reason = format!("the log writer failed: {error}");
        let first = {
            let mut r = locked(&record);
            let first = r.is_none();
            r.get_or_insert_with(|| reason.clone());
            first
        };
        // Later failures are the writer's own lines on standard error.
        if first {
            eprintln!(
                "vigil: CRITICAL: {reason}; trading is halted and the session stops: nothing \
                 may trade without its log"
            );
            halt.trip("log_writer", &reason);
            risk.do_send(vigil_bus::SetTradingState {
                state: TradingState::Halted,
                actor: "log_writer".into(),
                reason: reason.clone(),
            });
            data.do_send(Shutdown {
                reason: StopReason::Failed(reason),
            });
        }
    }
}

/// Where the orders go: the in-process paper venue, or a broker over HTTP (connected
/// here: a broker that cannot be reached stops the start).
async fn venue(
    cfg: &VigilConfig,
    symbols: &SymbolTable,
    clock: SharedClock,
    secret: Option<String>,
) -> Result<Arc<dyn ExecutionVenue>, SystemError> {
    let e = &cfg.execution;
    match e.venue {
        VenueKind::Paper => {
            let venue_cfg = PaperVenueConfig {
                name: "paper".into(),
                fill_model: match e.fill_model {
                    FillModelConfig::NextBarOpen => FillModel::NextBarOpen,
                    FillModelConfig::SignalBarClose => FillModel::SignalBarClose,
                },
                slippage_bps: e.slippage_bps,
                commission_bps: e.commission_bps,
                commission_min: e.commission_min,
                max_volume_participation: e.max_volume_participation,
                initial_cash: cfg.session.initial_cash,
            };
            Ok(Arc::new(PaperVenue::new(venue_cfg, clock)))
        }
        VenueKind::Alpaca => {
            let config = AlpacaVenueConfig {
                name: "alpaca".into(),
                base_url: e.broker_url.clone().unwrap_or_default(),
                credentials: e.broker_key_id.clone().zip(secret),
                poll_interval: Duration::from_millis(e.broker_poll_interval_ms),
                timeout: Duration::from_millis(e.broker_timeout_ms),
            };
            let venue = AlpacaVenue::connect(config, symbols.clone(), clock)
                .await
                .map_err(|err| SystemError::Venue(err.to_string()))?;
            Ok(Arc::new(venue))
        }
    }
}

fn buffer(cfg: &VigilConfig, sink: &LogSink, service: &'static str) -> LogBuffer {
    let level = cfg
        .log
        .service_levels
        .get(service)
        .copied()
        .unwrap_or(cfg.log.min_level);
    LogBuffer::new(sink.clone(), service, level)
}

/// The pre-market checks inside `vigil run`; every report is stored.
struct ChecklistGate {
    cfg: VigilConfig,
}

impl PremarketGate for ChecklistGate {
    fn check(&mut self, at: Timestamp) -> Result<String, String> {
        let report = crate::checklist::premarket_gate(&self.cfg, at);
        // Not being able to keep the record is itself a reason not to open.
        let stored = report.store(&self.cfg.checklist.dir).map_err(|e| {
            format!(
                "cannot store the report in {}: {e}",
                self.cfg.checklist.dir.display()
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
}

/// An agent's mailbox made before the agent, so that agents that talk to each other in a
/// circle (Monitor ↔ Signal/Risk, Data ↔ Execution) can be given each other's addresses.
struct Mailbox<A: Actor<Context = Context<A>>> {
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

    /// Starts `actor` under a supervisor (see [`ChildSupervisor`]) on `arbiter` (or on the
    /// current one when `None`).
    fn supervise(
        self,
        spec: ChildSpec,
        actor: A,
        arbiter: Option<&ArbiterHandle>,
    ) -> Result<(), SystemError>
    where
        A: actix::Supervised,
    {
        ChildSupervisor::start(spec, actor, self.rx, arbiter).map_err(SystemError::Runtime)
    }

    /// Starts `actor` on `arbiter` (or on the current one when `None`).
    fn start(self, actor: A, arbiter: Option<&ArbiterHandle>) -> Result<(), SystemError> {
        let rx = self.rx;
        match arbiter {
            None => {
                Context::with_receiver(rx).run(actor);
                Ok(())
            }
            Some(h) => {
                if h.spawn_fn(move || {
                    Context::with_receiver(rx).run(actor);
                }) {
                    Ok(())
                } else {
                    Err(SystemError::Runtime(
                        "an arbiter stopped before its agent could start".into(),
                    ))
                }
            }
        }
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

    /// [`Session::start`]; the secrets it reads from files go to `read` as they are read.
    async fn start_reading(
        opts: SessionOptions,
        read: &mut Vec<String>,
    ) -> Result<Self, SystemError> {
        let cfg = opts.config;
        cfg.validate()?;
        // Built without network I/O: a channel that is down does not stop the start.
        let channels = vigil_alert::Channels::from_config(&cfg.alerts.channels)?;
        // A store that lost its history is never a fresh start (see history.rs).
        let mut opened = crate::history::open_store(&cfg, opts.rebuild_journal).await?;
        let store = opened.store.clone();
        let restored = restore_alerts(&*store, &cfg).await?;
        let pending = store.pending_requests().await?;
        let trading_state = store.trading_state().await?;
        let store_for_state = store.clone();
        let wall = opts.supervision_clock;
        let started = wall.now();
        let feed_secrets = feed_secrets(&cfg)?;
        read.extend(feed_secrets.iter().cloned());
        let reference = cross_check_reference(&cfg, &wall)?;
        read.extend(reference.as_ref().map(|(_, secret)| secret.clone()));
        let mut unknown_volume = Vec::new();
        // Where market time starts: the first bar's time, known before the start for CSV
        // files; for a feed (or a provider without a start), market time is the wall time
        // until the first bar sets it, so that nothing is stamped 1970.
        let (symbols, provider, start): (_, Box<dyn DataProvider>, _) = match opts.provider {
            Some(p) => (symbol_table(&cfg), p, opts.market_start),
            // A live feed: the market clock starts at its first bar.
            None if cfg.data.feed.is_some() => {
                let (feed, secret) = cfg
                    .data
                    .feed
                    .as_ref()
                    .zip(feed_secrets.first())
                    .ok_or_else(|| {
                        SystemError::Data("data.feed: its secret was not read".into())
                    })?;
                (
                    symbol_table(&cfg),
                    feed_provider(feed, secret, &cfg, &wall),
                    None,
                )
            }
            None => {
                let (symbols, sources) = sources(&cfg)?;
                let first = first_bars(&sources)?;
                unknown_volume = first.unknown_volume;
                let start = first.at.unwrap_or(started);
                (
                    symbols,
                    Box::new(CsvReplayProvider::new(sources, cfg.data.batch_size)),
                    Some(start),
                )
            }
        };
        let market = match start {
            Some(start) => SimClock::starting_at(start),
            None => SimClock::unset(wall.clone()),
        };
        let clock: SharedClock = Arc::new(market.clone());
        let broker_secret = broker_secret(&cfg)?;
        read.extend(broker_secret.clone());
        let venue = venue(&cfg, &symbols, clock.clone(), broker_secret.clone()).await?;
        // What the log and the broker remember, read before this session writes to the log.
        let evidence = opened.evidence(&cfg, &*venue, &symbols).await?;

        let monitor_box = Mailbox::<MonitorAgent>::new();
        let log_arbiter = Arbiter::new();
        let mut secrets = cfg.secrets();
        secrets.extend(opts.secrets);
        secrets.extend(broker_secret);
        secrets.extend(feed_secrets.iter().cloned());
        secrets.extend(reference.as_ref().map(|(_, secret)| secret.clone()));
        let key = log_key(&cfg)?;
        read.extend(key.as_ref().map(|(_, text)| text.clone()));
        secrets.extend(key.as_ref().map(|(_, text)| text.clone()));
        let tapped = monitor_box.addr.clone();
        // The writer's anchors go to the store, its failures halt the session (both below):
        // handed over here, from the writer's threads, without waiting.
        let (anchor_tx, anchor_rx) = tokio::sync::mpsc::unbounded_channel::<Anchor>();
        let (failed_tx, failed_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let reports = WriterReports::new(move |report| match report {
            WriterReport::Anchor(a) => {
                if let Err(e) = anchor_tx.send(a) {
                    eprintln!(
                        "vigil: ERROR: the log anchor of seq {} was not recorded: the anchor \
                         writer has stopped",
                        e.0.seq
                    );
                }
            }
            WriterReport::Failed(error) => {
                if let Err(e) = failed_tx.send(error) {
                    eprintln!("vigil: CRITICAL: the log writer failed: {}", e.0);
                }
            }
        });
        let writer = LogWriter::open(
            &cfg.log.dir,
            wall.clone(),
            WriterOptions {
                flush_interval: Duration::from_millis(cfg.log.flush_interval_ms),
                max_file_bytes: cfg.log.max_file_mb.saturating_mul(1024 * 1024),
                secrets,
                tap: cfg
                    .alerts
                    .enabled
                    .then(|| LogTap::new(TAPPED, move |ev| tapped.do_send(Logged(ev)))),
                key: key.map(|(key, _)| key),
                reports: Some(reports),
            },
        )?;
        let log = writer.start_on(&log_arbiter.handle());
        let sink = log.sink();
        let anchor_writer = actix_rt::spawn(record_anchors(
            store.clone(),
            anchor_rx,
            buffer(&cfg, &sink, "vigil"),
            wall.clone(),
        ));
        let library_level = cfg
            .log
            .service_levels
            .get("library")
            .copied()
            .unwrap_or(cfg.log.min_level);
        let bridge =
            VigilTracingLayer::new(sink.clone(), clock.clone(), library_level).install_global();

        let mut session_log = buffer(&cfg, &sink, "vigil");
        session_log.emit(
            LogEvent::new(clock.now(), "vigil", Event::SessionStarted)
                .with("session", cfg.session.name.clone())
                .with(
                    "instruments",
                    cfg.data
                        .instruments
                        .iter()
                        .map(|i| format!("{}={}", i.symbol, i.path))
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .with("initial_cash", cfg.session.initial_cash)
                .with("speed", cfg.data.speed.to_string())
                .with("venue", venue.name().to_string())
                .with("fill_model", format!("{:?}", cfg.execution.fill_model))
                .with("wall_start", started),
        );
        for (symbol, source) in &unknown_volume {
            // Once per file: its bars' volume is unknown, not zero (a zero would stop every
            // fill), so nothing caps the fills on them.
            session_log.emit(
                LogEvent::new(clock.now(), "vigil", Event::DataVolumeUnknown)
                    .with("symbol", symbols.name(*symbol).to_string())
                    .with("source", source.clone())
                    .with(
                        "effect",
                        match cfg.execution.venue {
                            VenueKind::Paper => {
                                "no volume column: fills are not capped by volume \
                                 (execution.max_volume_participation does not apply)"
                            }
                            VenueKind::Alpaca => {
                                "no volume column: the broker fills by its own data"
                            }
                        },
                    ),
            );
        }
        if let Err(e) = bridge {
            session_log.emit(
                LogEvent::new(clock.now(), "vigil", Event::LibraryLog)
                    .level(Level::Warn)
                    .with("target", "vigil_system")
                    .with(
                        "message",
                        format!("library logs do not reach this log: {e}"),
                    ),
            );
        }
        session_log.flush();
        let settled = opened
            .settle(
                &cfg,
                evidence,
                &*venue,
                &symbols,
                wall.now(),
                clock.now(),
                &mut session_log,
            )
            .await;
        let (identity, _rebuilt) = match settled {
            Ok(settled) => settled,
            Err(e) => {
                // The refusal is in the log before the process says so.
                if let Err(flush) = log.flush().await {
                    eprintln!("vigil: the log could not be flushed: {flush}");
                }
                VigilTracingLayer::uninstall_global();
                return Err(e);
            }
        };

        let heartbeat = Duration::from_millis(cfg.monitor.heartbeat_interval_ms);
        let exec_box = Mailbox::<ExecutionAgent>::new();
        let risk_box = Mailbox::<RiskAgent>::new();
        let signal_box = Mailbox::<SignalAgent>::new();
        let regime_box = Mailbox::<RegimeAgent>::new();
        let data_box = Mailbox::<DataAgent>::new();
        let monitor = monitor_box.addr.clone();
        let exec = exec_box.addr.clone();
        let risk = risk_box.addr.clone();
        let signal = signal_box.addr.clone();
        let regime = regime_box.addr.clone();
        let data = data_box.addr.clone();

        let (done_tx, done_rx) = oneshot::channel();
        let halt = vigil_bus::HaltLatch::default();
        let board = HealthBoard::new();
        let backlogs = Backlogs::default();
        let source_name = provider.name().to_string();
        let venue_name = venue.name().to_string();
        let monitor_agent = MonitorAgent::new(
            cfg.monitor.clone(),
            cfg.session.name.clone(),
            wall.clone(),
            clock.clone(),
            buffer(&cfg, &sink, AgentId::Monitor.service()),
            MonitorLinks {
                signal: signal.clone().recipient(),
                risk: risk.clone().recipient(),
                flatten: risk.clone().recipient(),
                cancel_all: exec.clone().recipient(),
                switch_source: data.clone().recipient(),
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
            done_tx,
        )
        .with_health(HealthLinks {
            board: board.clone(),
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
            source_name,
            venue_name,
        });
        let monitor_agent = if cfg.alerts.enabled {
            monitor_agent.with_alerts(AlertLinks {
                config: cfg.alerts.clone(),
                channels,
                store: Some(store),
                restored,
                pending,
            })
        } else {
            monitor_agent
        };
        // A broker outlives the process: before anything trades, the journal is reconciled
        // with it (the source of truth), and the book starts from the broker's figures.
        let external = cfg.execution.venue == VenueKind::Alpaca;
        let book_name = crate::history::broker_book(&cfg);
        let rc = cfg.execution.reconcile;
        let on_mismatch = match rc.on_mismatch {
            MismatchPolicy::ReduceOnly => TradingState::ReduceOnly,
            MismatchPolicy::Halt => TradingState::Halted,
        };
        let mut trading_state = trading_state;
        let recovered = if external {
            let t0 = wall.now();
            let rec = reconcile(
                &*store_for_state,
                &book_name,
                &*venue,
                &symbols,
                ReconcileOptions {
                    open_orders: match rc.open_orders {
                        OpenOrdersPolicy::Adopt => OpenOrderPolicy::Adopt,
                        OpenOrdersPolicy::Cancel => OpenOrderPolicy::Cancel,
                    },
                    dry_run: false,
                },
                t0,
            )
            .await
            .map_err(|e| SystemError::Venue(format!("{e}; nothing was traded")))?;
            // The last bar the journal handled is where this run resumes: one from the
            // future would skip every true bar until then, and nothing would trade.
            if let Some(last) = rec.last_bar_at
                && let Err(e) = FutureGuard::new(wall.clone(), future_tolerance(&cfg)).check(last)
            {
                return Err(SystemError::History(format!(
                    "the journal's last bar for book {book_name} is from the future ({e}): \
                     this run would skip every bar until then and trade nothing; vigil \
                     refuses to start: nothing was sent. Check the machine's clock; if it is \
                     right, restore the store from a backup taken before that bar was \
                     journaled (see docs/recovery.md)"
                )));
            }
            let took_ms = (wall.now() - t0).num_milliseconds().max(0) as u64;
            let restrict = (!rec.passed()).then_some(on_mismatch);
            if let Some(state) = restrict {
                // Trading opens no wider than this until a person resets the breaker; a
                // stricter saved state (a halt) stays.
                let stricter = trading_state
                    .as_ref()
                    .is_some_and(|s| s.state == TradingState::Halted);
                if !stricter {
                    let saved = vigil_store::SavedTradingState {
                        state,
                        actor: "reconciliation".into(),
                        reason: format!(
                            "the books differ from the broker's at start: {}",
                            rec.mismatches()
                        ),
                        at: t0,
                    };
                    store_for_state.save_trading_state(&saved).await?;
                    trading_state = Some(saved);
                }
            }
            let mut out = buffer(&cfg, &sink, AgentId::Execution.service());
            for ev in reconciliation_events(clock.now(), &rec, took_ms, restrict) {
                out.emit(ev);
            }
            out.flush();
            Some(rec)
        } else {
            None
        };
        let exec_agent = ExecutionAgent::new(
            venue,
            cfg.session.initial_cash,
            symbols.clone(),
            clock.clone(),
            wall.clone(),
            heartbeat,
            buffer(&cfg, &sink, AgentId::Execution.service()),
            data.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
        )
        .with_backlogs(backlogs.clone());
        // The execution journal. The in-process paper venue dies with the process, so its
        // journal is optional (`store.journal_paper_venue`); when kept, it is a new book every
        // session, committed in groups without holding up the orders.
        // A broker outlives the process: its book is kept across sessions, and every intent
        // is committed before it is sent (write-ahead).
        let (exec_agent, journal_writer) = if external || cfg.store.journal_paper_venue {
            let book = if external {
                book_name.clone()
            } else {
                format!(
                    "paper:{}",
                    started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                )
            };
            let (journal_failures, mut journal_failed) = tokio::sync::mpsc::unbounded_channel();
            let journal_wall = wall.clone();
            let (journal, journal_writer) = vigil_store::Journal::start(
                store_for_state.clone(),
                book,
                move || journal_wall.now(),
                journal_failures,
            );
            // A paper book starts with the configured cash; a broker's cash is the broker's.
            if !external
                && let Err(e) = journal.append(vigil_store::JournalEntry::OpenBook {
                    cash: cfg.session.initial_cash,
                    fill_cursor: None,
                })
            {
                return Err(SystemError::Runtime(format!("the execution journal: {e}")));
            }
            let journal_faults: Recipient<AgentFault> = monitor.clone().recipient();
            actix_rt::spawn(async move {
                while let Some(f) = journal_failed.recv().await {
                    let f: vigil_store::JournalFailure = f;
                    let error = format!(
                        "journal: {} entries were not committed: {}",
                        f.entries, f.error
                    );
                    eprintln!("vigil: CRITICAL {error}");
                    // Fatal: what is not journaled cannot be recovered after a crash.
                    journal_faults.do_send(AgentFault {
                        agent: AgentId::Execution,
                        error,
                        fatal: true,
                    });
                }
            });
            (
                exec_agent.with_journal(journal, external),
                Some(journal_writer),
            )
        } else {
            (exec_agent, None)
        };
        let exec_agent = match &recovered {
            Some(rec) => exec_agent
                .with_recovered(rec)
                .with_reconciliation(ReconcileLinks {
                    risk: risk.clone().recipient(),
                    on_mismatch,
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
        let mut risk_agent = RiskAgent::new(
            cfg.risk.clone(),
            cfg.execution.order_type,
            cfg.execution.limit_offset_bps,
            symbols.clone(),
            clock.clone(),
            wall.clone(),
            heartbeat,
            buffer(&cfg, &sink, AgentId::Risk.service()),
            ExecutionLinks {
                segments: exec.clone().recipient(),
                book: exec.clone().recipient(),
                intents: exec.clone().recipient(),
                rearm: exec.clone().recipient(),
            },
            monitor.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
        )
        .with_backlogs(backlogs.clone())
        .with_resume_after(recovered.as_ref().and_then(|r| r.last_bar_at));
        let signal_agent = SignalAgent::new(
            &cfg.signal,
            symbols.clone(),
            clock.clone(),
            wall.clone(),
            heartbeat,
            buffer(&cfg, &sink, AgentId::Signal.service()),
            risk.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
        )
        .with_backlogs(backlogs.clone());
        let regime_agent = RegimeAgent::new(
            &cfg.regime,
            symbols.clone(),
            clock.clone(),
            wall.clone(),
            heartbeat,
            buffer(&cfg, &sink, AgentId::Regime.service()),
            signal.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
        )
        .with_backlogs(backlogs.clone());
        let reader_symbols = symbols.clone();
        let mut data_agent = DataAgent::new(
            DataAgentConfig {
                batch_size: cfg.data.batch_size,
                max_in_flight: cfg.data.max_in_flight_batches,
                // A feed paces itself.
                pacing: match cfg.data.speed {
                    _ if cfg.data.feed.is_some() => Pacing::Max,
                    Speed::Max => Pacing::Max,
                    Speed::Factor(f) => Pacing::Factor(f),
                },
                heartbeat_interval: heartbeat,
                future_tolerance: future_tolerance(&cfg),
            },
            provider,
            symbols,
            Some(market),
            clock.clone(),
            wall.clone(),
            buffer(&cfg, &sink, AgentId::Data.service()),
            regime.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
            monitor.clone().recipient(),
        )
        .with_backlogs(backlogs);
        if let Some(feed) = &cfg.data.feed {
            let backups = feed
                .backups
                .iter()
                .zip(feed_secrets.iter().skip(1))
                .map(|(b, secret)| feed_provider(b, secret, &cfg, &wall))
                .collect();
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
                    operator_resumes: feed.after_outage == vigil_config::AfterOutage::Operator,
                });
        }

        // Every change of the trading state is saved, in order, so that a tripped breaker
        // survives a restart of the process.
        let (state_tx, mut state_rx) = tokio::sync::mpsc::unbounded_channel();
        let state_store = store_for_state.clone();
        let state_faults: Recipient<AgentFault> = monitor.clone().recipient();
        let state_writer = actix_rt::spawn(async move {
            while let Some(r) = state_rx.recv().await {
                let r: vigil_bus::TradingStateRecord = r;
                let saved = vigil_store::SavedTradingState {
                    state: r.state,
                    actor: r.actor,
                    reason: r.reason,
                    at: r.at,
                };
                if let Err(e) = state_store.save_trading_state(&saved).await {
                    let error = format!(
                        "the trading state ({}) was not saved, a restart would not remember it: {e}",
                        saved.state
                    );
                    eprintln!("vigil: CRITICAL {error}");
                    state_faults.do_send(AgentFault {
                        agent: AgentId::Risk,
                        error,
                        fatal: false,
                    });
                }
            }
        });
        let log_failure = Arc::new(std::sync::Mutex::new(None));
        actix_rt::spawn(halt_on_log_failure(
            failed_rx,
            log_failure.clone(),
            halt.clone(),
            risk.clone().recipient(),
            data.clone().recipient(),
        ));
        risk_agent = risk_agent.with_halt_latch(halt).with_saved_state(
            trading_state.map(|s| vigil_bus::TradingStateRecord {
                state: s.state,
                actor: s.actor,
                reason: s.reason,
                at: s.at,
            }),
            state_tx,
        );

        if cfg.calendar.automation {
            let calendar = cfg.calendar.calendar().map_err(|e| {
                SystemError::Config(vigil_config::ConfigError::new(
                    "config",
                    vec![vigil_config::ConfigIssue::new("calendar", e)],
                ))
            })?;
            data_agent = data_agent
                .with_scheduler(Scheduler::new(calendar, cfg.calendar.schedule.clone()))
                .with_premarket_gate(Box::new(ChecklistGate { cfg: cfg.clone() }));
            risk_agent = risk_agent.with_automation();
        }

        if cfg.data.check_gaps
            || cfg
                .data
                .instruments
                .iter()
                .any(|i| i.check_gaps == Some(true))
        {
            let calendar = cfg.calendar.calendar().map_err(|e| {
                SystemError::Config(vigil_config::ConfigError::new(
                    "config",
                    vec![vigil_config::ConfigIssue::new("calendar", e)],
                ))
            })?;
            // Symbol ids follow the instruments' order.
            let checked = cfg
                .data
                .instruments
                .iter()
                .map(|i| i.check_gaps.unwrap_or(cfg.data.check_gaps))
                .collect();
            let seen_until = recovered.as_ref().and_then(|r| r.last_bar_at);
            data_agent = data_agent.with_gap_watch(GapWatch::new(calendar, checked, seen_until));
        }
        let a = &cfg.data.anomaly;
        // The cross-check quarantines through the same watch: with the jump rule off, its
        // bounds are off too.
        if a.enabled || reference.is_some() {
            let bounds = AnomalyBounds {
                max_jump: (a.enabled && !a.max_jump_pct.is_zero())
                    .then(|| a.max_jump_pct / rust_decimal::Decimal::ONE_HUNDRED),
                k_sigma: (a.enabled && a.k_sigma > 0.0).then_some(a.k_sigma),
                min_sigma: rust_decimal::prelude::ToPrimitive::to_f64(&a.min_sigma_pct)
                    .unwrap_or(0.0)
                    / 100.0,
                window: a.window,
                release_after: a.release_after_bars,
            };
            data_agent = data_agent.with_anomaly_watch(
                AnomalyWatch::new(bounds, cfg.data.instruments.len()),
                risk_box.addr.clone().recipient(),
            );
        }
        let mut reader = None;
        if let (Some(x), Some((provider, _))) = (&cfg.data.cross_check, reference) {
            data_agent = data_agent.with_cross_check(CrossCheck::new(
                provider.name(),
                x.max_disagreement_pct,
                x.release_after_bars,
                cfg.data.instruments.len(),
            ));
            reader = Some(CrossCheckReader::new(
                provider,
                &reader_symbols,
                clock.clone(),
                wall.clone(),
                buffer(&cfg, &sink, "cross_check"),
                data.clone().recipient(),
            ));
        }

        // Start sinks before sources: Monitor, then Execution back to Data. The stop order is
        // the reverse, carried by the end-of-stream marker.
        let monitor_arbiter = Arbiter::new();
        monitor_box.start(monitor_agent, Some(&monitor_arbiter.handle()))?;
        let mut arbiters = vec![monitor_arbiter, log_arbiter];
        let mut place = || -> Option<ArbiterHandle> {
            cfg.runtime.isolate_agents.then(|| {
                let arbiter = Arbiter::new();
                let handle = arbiter.handle();
                arbiters.push(arbiter);
                handle
            })
        };
        // Every pipeline agent runs under a supervisor that catches its panics and
        // restarts it on the same mailbox (see vigil-supervisor).
        let sup = cfg.monitor.supervision;
        let policy = RestartPolicy {
            max_restarts: sup.max_restarts,
            within: Duration::from_secs(sup.within_s),
            backoff_initial: Duration::from_millis(sup.backoff_initial_ms),
            backoff_max: Duration::from_millis(sup.backoff_max_ms),
        };
        let spec = |agent: AgentId| ChildSpec {
            agent,
            policy,
            wall: wall.clone(),
            clock: clock.clone(),
            log: buffer(&cfg, &sink, "supervisor"),
            monitor: monitor.clone().recipient(),
        };
        exec_box.supervise(spec(AgentId::Execution), exec_agent, place().as_ref())?;
        risk_box.supervise(spec(AgentId::Risk), risk_agent, place().as_ref())?;
        signal_box.supervise(spec(AgentId::Signal), signal_agent, place().as_ref())?;
        regime_box.supervise(spec(AgentId::Regime), regime_agent, place().as_ref())?;
        data_box.supervise(spec(AgentId::Data), data_agent, place().as_ref())?;
        if let Some(reader) = reader {
            // Alive while it reads or waits to reconnect; stops when the Data agent is gone.
            reader.start();
        }

        let control = SessionControl {
            commands: monitor.recipient(),
            shutdown: data.clone().recipient(),
        };
        let server = if cfg.control.enabled {
            // The audit's own handle on the store: the Monitor's goes into its alerting.
            let audit = vigil_store::open_store(&cfg.store).await?;
            let server = ControlServer::start(
                ControlOptions::from_config(&cfg, board.clone(), sink.clone())
                    .with_clocks(clock.clone(), wall.clone())
                    .with_commands(control.commands.clone(), audit),
            )?;
            let file = cfg.log.dir.join(CONTROL_ADDR_FILE);
            std::fs::write(&file, format!("{}\n", server.url())).map_err(|e| {
                SystemError::Runtime(format!("cannot write {}: {e}", file.display()))
            })?;
            eprintln!(
                "vigil: control address {} (/healthz /readyz /status /metrics /v1/commands; \
                 bearer token in {})",
                server.url(),
                cfg.control_token_file().display()
            );
            Some((server, file))
        } else {
            None
        };
        if opts.handle_ctrl_c {
            // SIGHUP first: the stop handlers print the ready line, and every handler must
            // be in place when it appears (SIGHUP's default action ends the process).
            install_reload_signal(
                opts.config_path,
                data.clone().recipient(),
                buffer(&cfg, &sink, "vigil"),
                clock.clone(),
            )?;
            install_stop_signals(control.clone(), &cfg.session.name)?;
        }

        Ok(Self {
            control,
            done: done_rx,
            log,
            arbiters,
            wall,
            started,
            board,
            server,
            state_writer,
            journal_writer,
            anchor_writer,
            log_failure,
            identity,
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

/// Stops the session gracefully on SIGINT (Ctrl-C) or SIGTERM (systemd, `kill`); a second
/// signal exits at once. The handlers are registered before this returns, so the ready
/// line it prints is true (install every other handler before calling it).
fn install_stop_signals(ctl: SessionControl, name: &str) -> Result<(), SystemError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| SystemError::Runtime(format!("cannot listen for SIGINT: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| SystemError::Runtime(format!("cannot listen for SIGTERM: {e}")))?;
    actix_rt::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("vigil: stopping: draining the pipeline (signal again to exit at once)");
        ctl.shutdown();
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("vigil: second signal: exiting without draining");
        std::process::exit(130);
    });
    eprintln!("vigil: session {name} running; Ctrl-C or SIGTERM stops it gracefully");
    Ok(())
}

fn overrides_summary(cfg: &VigilConfig) -> String {
    let o = &cfg.calendar.overrides;
    let closures: Vec<String> = o
        .closures
        .iter()
        .map(|c| format!("{} ({})", c.date, c.reason))
        .collect();
    let early: Vec<String> = o
        .early_closes
        .iter()
        .map(|c| format!("{} {} ({})", c.date, c.close, c.reason))
        .collect();
    format!(
        "closures: [{}]; early closes: [{}]",
        closures.join(", "),
        early.join(", ")
    )
}

/// On SIGHUP, re-reads the config file and hands the Data agent the calendar with the new
/// overrides; an invalid file is refused with every problem logged, and the running
/// calendar stays.
fn install_reload_signal(
    path: Option<PathBuf>,
    data: Recipient<ReloadCalendar>,
    mut log: LogBuffer,
    clock: SharedClock,
) -> Result<(), SystemError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| SystemError::Runtime(format!("cannot listen for SIGHUP: {e}")))?;
    actix_rt::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(path) = &path else {
                log.emit(
                    LogEvent::new(clock.now(), "vigil", Event::ConfigReloadFailed).with(
                        "error",
                        "running on the embedded default: no config file to reload",
                    ),
                );
                log.flush();
                continue;
            };
            match VigilConfig::load(path) {
                Ok(cfg) => match cfg.calendar.calendar() {
                    Ok(calendar) => {
                        let change = format!("{}: {}", path.display(), overrides_summary(&cfg));
                        // The operator who sent the signal sees the result where they are.
                        eprintln!("vigil: calendar reloaded from {change}");
                        data.do_send(ReloadCalendar {
                            calendar,
                            schedule: cfg.calendar.schedule.clone(),
                            actor: "operator (SIGHUP)".into(),
                            change,
                        });
                    }
                    Err(e) => {
                        eprintln!("vigil: config reload refused: {e}");
                        log.emit(
                            LogEvent::new(clock.now(), "vigil", Event::ConfigReloadFailed)
                                .with("file", path.display().to_string())
                                .with("error", e),
                        );
                    }
                },
                Err(e) => {
                    eprintln!(
                        "vigil: config reload refused, the running calendar stays: {}",
                        e.to_string().replace("\n", " ")
                    );
                    log.emit(
                        LogEvent::new(clock.now(), "vigil", Event::ConfigReloadFailed)
                            .with("file", path.display().to_string())
                            .with("error", e.to_string()),
                    );
                }
            }
            log.flush();
        }
    });
    Ok(())
}

/// The alert state a previous process saved. A state this build cannot read is moved
/// aside into a file (nothing is lost) and alerting starts afresh: next to the store's
/// SQLite file, or in the log folder when the store is a database server.
async fn restore_alerts(
    store: &dyn vigil_store::StateStore,
    cfg: &VigilConfig,
) -> Result<Option<vigil_alert::EngineState>, SystemError> {
    let Some(saved) = store.alert_state().await? else {
        return Ok(None);
    };
    match serde_json::from_str(&saved.state) {
        Ok(state) => Ok(Some(state)),
        Err(e) => {
            let name = format!(
                "alert-state-{}.json",
                saved.saved_at.format("%Y%m%dT%H%M%S")
            );
            let aside = match store.file() {
                Some(file) => file.with_extension(name),
                None => cfg.log.dir.join(format!("vigil.{name}")),
            };
            let kept = aside
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&aside, &saved.state));
            kept.map_err(|w| {
                SystemError::Runtime(format!(
                    "the saved alert state in {} is unreadable ({e}) and cannot be moved aside to {}: {w}",
                    store.location(),
                    aside.display()
                ))
            })?;
            eprintln!(
                "vigil: CRITICAL the saved alert state in {} is unreadable ({e}); it is kept in {} and alerting starts with no active alerts or silences",
                store.location(),
                aside.display()
            );
            Ok(None)
        }
    }
}

/// Reconciles the journal with the configured broker without changing either: what
/// `vigil reconcile` prints. The next `vigil run` applies the same findings before it trades.
///
/// # Errors
/// With the in-process paper venue (nothing outlives a session), or when the store or the
/// broker cannot be read.
pub fn reconcile_now(cfg: &VigilConfig) -> Result<vigil_recovery::Reconciliation, SystemError> {
    if cfg.execution.venue != VenueKind::Alpaca {
        return Err(SystemError::Venue(
            "execution.venue is \"paper\": the in-process paper venue lives and dies with \
             `vigil run`, there is no broker to reconcile with; set venue = \"alpaca\""
                .into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SystemError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let store = vigil_store::open_store(&cfg.store).await?;
        let symbols = symbol_table(cfg);
        let clock: SharedClock = Arc::new(SystemClock);
        let venue = venue(cfg, &symbols, clock.clone(), broker_secret(cfg)?).await?;
        let book = crate::history::broker_book(cfg);
        let rec = reconcile(
            &*store,
            &book,
            &*venue,
            &symbols,
            ReconcileOptions {
                open_orders: match cfg.execution.reconcile.open_orders {
                    OpenOrdersPolicy::Adopt => OpenOrderPolicy::Adopt,
                    OpenOrdersPolicy::Cancel => OpenOrderPolicy::Cancel,
                },
                dry_run: true,
            },
            clock.now(),
        )
        .await
        .map_err(|e| SystemError::Venue(e.to_string()))?;
        store.close().await;
        Ok(rec)
    })
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
