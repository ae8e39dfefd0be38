//! The configuration structs. Every field's default is a documented `default_*` function.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_core::{Level, TradingState};

use crate::alerts::AlertsConfig;
use crate::validate::{ConfigError, ConfigIssue};

/// The whole configuration of a vigil process.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VigilConfig {
    /// The trading session: name, starting cash, currency.
    pub session: SessionConfig,
    /// Market data sources and replay pacing.
    pub data: DataConfig,
    /// The Regime agent's classifier.
    pub regime: RegimeConfig,
    /// The Signal agent's model.
    pub signal: SignalConfig,
    /// The Risk agent's pre-trade checks and sizing.
    pub risk: RiskConfig,
    /// The Execution agent and the paper venue.
    pub execution: ExecutionConfig,
    /// The Monitor agent's supervision.
    pub monitor: MonitorConfig,
    /// The log writer.
    pub log: LogConfig,
    /// Thread placement of the agents.
    pub runtime: RuntimeConfig,
    /// The exchange calendar, operator overrides and the daily automation schedule.
    pub calendar: CalendarConfig,
    /// The daily, weekly and monthly checklists.
    pub checklist: ChecklistConfig,
    /// The control address: health endpoints and metrics over HTTP.
    pub control: ControlConfig,
    /// Alerting: routing, suppression and channels.
    pub alerts: AlertsConfig,
    /// The durable store: alert state, silences and the notification log.
    pub store: StoreConfig,
    /// Releasing a model: the shadow run's standards.
    pub release: ReleaseConfig,
    /// This node's place in a fleet over NATS JetStream; absent: an island.
    pub fleet: Option<crate::FleetConfig>,
}

/// Releasing a model (docs/deploy.md).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseConfig {
    /// The shadow run: what it measures and the standards `vigil model shadow-report`
    /// holds a candidate to.
    pub shadow: ShadowConfig,
    /// Automatic rollback after a switch to a new model.
    pub rollback: RollbackConfig,
    /// Drift of the model traded against the data it was gated on.
    pub drift: DriftConfig,
    /// The canary by capital weight, after the shadow run.
    pub canary: CanaryConfig,
}

/// What an aborted canary does with the candidate's positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryUnwind {
    /// Production takes them over at the reference price; no order.
    Production,
    /// They are closed by limit orders (netted with production's own trades).
    Close,
}

/// The canary: the candidate trades a growing share of capital beside production, both
/// deciding on every bar, their targets netted into one account; each step's analysis
/// compares their paired per-session returns (docs/deploy.md, canary).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct CanaryConfig {
    /// The candidate's share of capital at each step, in percent: increasing, ending at 100.
    pub steps: Vec<Decimal>,
    /// Exchange sessions a step's analysis needs before it can pass.
    pub sessions_per_step: u32,
    /// How much worse than production's the candidate's mean per-session return may be,
    /// in basis points, and still pass.
    pub margin_bps: f64,
    /// Standard errors of the mean difference the verdict must clear: pass when the mean
    /// less this many is above −margin; fail when the mean plus this many is below it.
    pub confidence_z: f64,
    /// Move on by itself when the analysis passes (from shadow too, when the shadow
    /// report passes); otherwise wait for `vigil model release step`.
    pub auto_promote: bool,
    /// What an abort does with the candidate's positions.
    pub unwind: CanaryUnwind,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        Self {
            steps: [5, 25, 50, 100].into_iter().map(Decimal::from).collect(),
            sessions_per_step: 5,
            margin_bps: 10.0,
            confidence_z: 2.0,
            auto_promote: true,
            unwind: CanaryUnwind::Production,
        }
    }
}

/// Drift: the traded model's input features and returns over the last bars against their
/// distribution on the data it was gated on (recorded at registration); judged when each
/// exchange session ends, a WARN alert when beyond these (docs/deploy.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftConfig {
    /// Watch at all (needs a registered model with a baseline).
    pub enabled: bool,
    /// The last bars judged.
    pub window_bars: usize,
    /// Bars needed in the window before anything is called drift.
    pub min_bars: usize,
    /// A feature's population stability index above this is drift (0.25: the usual line).
    pub max_psi: f64,
    /// The window's mean return further than this many standard errors from the gate's
    /// mean is drift.
    pub max_tracking_z: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_bars: 500,
            min_bars: 100,
            max_psi: 0.25,
            max_tracking_z: 3.0,
        }
    }
}

/// Automatic rollback: after a running session switched to a new model (blue-green), the
/// one it replaced runs on beside it, and the session switches back at once, with a
/// Critical alert, when the new one fails these (docs/deploy.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RollbackConfig {
    /// Watch at all.
    pub enabled: bool,
    /// The bars the error rate and the latency are measured over (the last ones).
    pub window_bars: usize,
    /// Bars the model failed on, at most this share of them.
    pub max_error_pct: f64,
    /// Its decision time per bar at p99 over them, at most this.
    pub max_latency_p99_ms: f64,
    /// The bars one rolling Sharpe is computed over.
    pub sharpe_window_bars: usize,
    /// Rolling Sharpe values averaged (the last ones), and needed before the rule applies.
    pub sharpe_values: usize,
    /// Their mean at least this.
    pub min_sharpe: f64,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_bars: 100,
            max_error_pct: 5.0,
            max_latency_p99_ms: 50.0,
            sharpe_window_bars: 50,
            sharpe_values: 20,
            min_sharpe: -3.0,
        }
    }
}

/// A shadow run: the candidate decides on every bar beside production, through a
/// simulated venue, and never sends an order. Its standards (all must pass).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ShadowConfig {
    /// Exchange sessions (of the calendar, not wall days) it must have run.
    pub min_sessions: u32,
    /// The least correlation of the candidate's wanted positions with production's…
    pub min_correlation: f64,
    /// …unless it is a clear improvement: the t statistic of its paired per-session
    /// simulated returns over production's is at least this.
    pub improvement_t: f64,
    /// Its decision time per bar, p99, at most this multiple of production's.
    pub max_latency_ratio: f64,
    /// Its mean decision time per bar at most this (the CPU budget).
    pub cpu_budget_us: f64,
    /// The process's resident memory with the candidate loaded at most this.
    pub memory_budget_mb: u64,
    /// An output further than this many standard deviations from the candidate's own
    /// running mean is abnormal…
    pub outlier_sigma: f64,
    /// …and at most this share of its outputs may be (a normal tail beyond 3 σ is 0.27 %).
    pub max_outlier_pct: f64,
    /// The simulated venue's cost per unit of position changed, in basis points.
    pub cost_bps: f64,
    /// How often the running session's figures are written to the store (a crash loses
    /// at most this much of the shadow run).
    pub save_every_s: u64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            min_sessions: 5,
            min_correlation: 0.9,
            improvement_t: 2.0,
            max_latency_ratio: 1.2,
            cpu_budget_us: 1_000.0,
            memory_budget_mb: 2_048,
            outlier_sigma: 3.0,
            max_outlier_pct: 1.0,
            cost_bps: 1.0,
            save_every_s: 30,
        }
    }
}

/// The control address: health endpoints, metrics and operator commands over HTTP(S), every
/// request authenticated with a bearer token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlConfig {
    /// Serve it at all.
    pub enabled: bool,
    /// `host:port`; port 0 picks a free port. The bound address is written to
    /// `<log.dir>/control.addr`, where `vigil status` and `vigil ctl` find it. A
    /// non-loopback address needs `tls_cert` and `tls_key`, or `allow_insecure_remote`.
    pub address: String,
    /// The bearer token's file, created on first start (mode 0600, 32 random bytes as hex);
    /// refused at start when group or others may read it. Default: `control.token` in the
    /// store's folder (`state/control.token`). Relative to the working directory.
    pub token_file: Option<PathBuf>,
    /// A second token's file, made the same way, for the read-only role: it reads every
    /// `GET` endpoint and the dashboard, and is refused every command (403). Unset: no
    /// read-only token. Must not be `token_file`.
    pub read_token_file: Option<PathBuf>,
    /// The server's certificate chain (PEM): with `tls_key`, the API is served over HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Accept plain HTTP on a non-loopback address (the token then crosses the network in
    /// clear text). Logged at CRITICAL and printed at every start.
    pub allow_insecure_remote: bool,
    /// Testing only, a rehearsal stack: honour `inject_panic` (an agent panics in a
    /// handler) and `inject_freeze` (the Monitor's thread hangs) commands, to exercise
    /// supervision, and allow `vigil run --clock-start`. Never on in production.
    pub fault_injection: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            address: "127.0.0.1:0".into(),
            token_file: None,
            read_token_file: None,
            tls_cert: None,
            tls_key: None,
            allow_insecure_remote: false,
            fault_injection: false,
        }
    }
}

/// The token file's name when `control.token_file` is not set: next to the store.
pub const DEFAULT_TOKEN_FILE_NAME: &str = "control.token";

impl VigilConfig {
    /// Returns the control API's token file: `control.token_file`, or `control.token` in
    /// the store's folder.
    pub fn control_token_file(&self) -> PathBuf {
        match &self.control.token_file {
            Some(path) => path.clone(),
            None => self
                .store
                .path
                .parent()
                .map_or_else(PathBuf::new, std::path::Path::to_path_buf)
                .join(DEFAULT_TOKEN_FILE_NAME),
        }
    }
}

/// The checklists (`vigil checklist …`, and the pre-market gate in `vigil run`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ChecklistConfig {
    /// Folder where every report is stored as JSON (relative to the working directory).
    pub dir: PathBuf,
    /// Free space on the log volume below this, in GB, is a warning.
    pub warn_free_disk_gb: u64,
    /// Free space below this, in GB, fails the pre-market check (trading does not open).
    pub fail_free_disk_gb: u64,
}

impl Default for ChecklistConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("checklists"),
            warn_free_disk_gb: 10,
            fail_free_disk_gb: 1,
        }
    }
}

/// The durable store (`vigil-store`), shared by `vigil run` and the commands that read or
/// change its state (`vigil alerts …`, `vigil ctl audit`, `vigil reconcile`): a SQLite file
/// (`path`, the default) or a PostgreSQL database (`url`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// The SQLite file (relative to the working directory); created with its folder. Not
    /// used when `url` is set.
    pub path: PathBuf,
    /// A PostgreSQL database, `postgres://[user[:password]@]host[:port]/database`: when set,
    /// the store is there and `path` is not used. A secret (it may hold a password):
    /// messages name it without the password ([`redact_url`]).
    pub url: Option<Secret>,
    /// Journal the in-process paper venue's orders and fills too. Off by default: that
    /// venue dies with the process, so there is nothing to recover, and a full-speed replay
    /// would wait on the journal.
    pub journal_paper_venue: bool,
    /// Where `vigil model register` keeps a copy of each version's training data, named by
    /// its SHA-256 (relative to the working directory; created when first used).
    pub snapshots: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("state/vigil.db"),
            url: None,
            journal_paper_venue: false,
            snapshots: PathBuf::from("state/snapshots"),
        }
    }
}

/// `url` without its password, for messages and logs: the password of the user info is
/// dropped (`postgres://ana:secret@db:5432/vigil` → `postgres://ana@db:5432/vigil`), and so
/// is a `password` or `sslpassword` query parameter.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            let user = &authority[..at];
            out.push_str(user.split_once(':').map_or(user, |(name, _)| name));
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| !is_password_parameter(pair))
                .collect();
            if !kept.is_empty() {
                out.push('?');
                out.push_str(&kept.join("&"));
            }
        }
        None => out.push_str(tail),
    }
    out
}

/// The passwords `url` holds (its user info's, its `password` parameters'), as written.
pub(crate) fn url_passwords(url: &str) -> Vec<String> {
    let rest = url.find("://").map_or(url, |i| &url[i + 3..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = Vec::new();
    if let Some((_, password)) = authority
        .rfind('@')
        .and_then(|at| authority[..at].split_once(':'))
        && !password.is_empty()
    {
        out.push(password.to_string());
    }
    if let Some((_, query)) = tail.split_once('?') {
        out.extend(
            query
                .split('&')
                .filter(|pair| is_password_parameter(pair))
                .filter_map(|pair| pair.split_once('=').map(|(_, v)| v.to_string()))
                .filter(|v| !v.is_empty()),
        );
    }
    out
}

fn is_password_parameter(pair: &str) -> bool {
    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword")
}

/// The exchange calendar and the automated day.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct CalendarConfig {
    /// The exchange: `XNYS` (NYSE) is built in.
    pub exchange: String,
    /// Extra closures and early closes (the next surprise closure needs no release).
    pub overrides: vigil_calendar::CalendarOverrides,
    /// Phase times relative to each session's open and close.
    pub schedule: vigil_calendar::ScheduleConfig,
    /// Drive the agents by the schedule: reduce-only from close-only, no new orders
    /// outside the session, a position snapshot at the close. For intraday data and live
    /// trading; leave off for daily bars (stamped at midnight, outside every session).
    pub automation: bool,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        Self {
            exchange: "XNYS".into(),
            overrides: vigil_calendar::CalendarOverrides::default(),
            schedule: vigil_calendar::ScheduleConfig::default(),
            automation: false,
        }
    }
}

impl CalendarConfig {
    /// Builds the calendar with the overrides applied.
    ///
    /// # Errors
    /// Fails on an unknown exchange or invalid overrides (validation reports them first).
    pub fn calendar(&self) -> Result<vigil_calendar::Calendar, CalendarChoiceError> {
        if self.exchange != "XNYS" {
            return Err(CalendarChoiceError::UnknownExchange(self.exchange.clone()));
        }
        Ok(vigil_calendar::Calendar::xnys().with_overrides(&self.overrides)?)
    }
}

/// Why `[calendar]` does not make a calendar.
#[derive(Debug, thiserror::Error)]
pub enum CalendarChoiceError {
    /// An exchange vigil has no calendar of.
    #[error("unknown exchange {0:?}; built in: \"XNYS\"")]
    UnknownExchange(String),
    /// Overrides the calendar refuses.
    #[error("{0}")]
    Overrides(#[from] vigil_calendar::CalendarError),
}

impl VigilConfig {
    /// Parses a TOML document. Every syntax error, every type error and every unknown key
    /// is reported (each with its dotted key path; syntax and type errors with their line
    /// and column, never with a string of the file); when there are none, every value is
    /// checked against its bounds and the others.
    ///
    /// # Errors
    /// Returns every problem found, each with its dotted key path; `origin` (a file name)
    /// prefixes the report.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let parsed = crate::parse::parse::<VigilConfig>(text);
        let mut issues = parsed.errors;
        issues.extend(
            parsed
                .unknown
                .iter()
                .map(|path| ConfigIssue::new(path, "unknown key")),
        );
        // Bounds and consistency are checked once the file reads without syntax or type
        // errors: until then some values are missing, and their defaults would be judged.
        if let Some(cfg) = parsed.value {
            issues.extend(cfg.issues());
            if issues.is_empty() {
                return Ok(cfg);
            }
        }
        Err(ConfigError::new(origin, issues))
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// Fails when the file cannot be read or has problems (all of them are listed).
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                &origin,
                vec![ConfigIssue::new("", format!("cannot read: {e}"))],
            )
        })?;
        // A parser's message shows the line it stopped at: never a password in it.
        let mut cfg =
            Self::from_toml_str(&text, &origin).map_err(|e| e.without_secrets_of(&text))?;
        cfg.resolve_relative_to(path.parent().unwrap_or(std::path::Path::new(".")));
        Ok(cfg)
    }

    /// Reads and validates the config file at `path`, or returns the embedded default when
    /// there is none: what every command taking `--config FILE` loads.
    ///
    /// # Errors
    /// As [`Self::load`]: the message starts with the path and lists every problem.
    pub fn load_or_default(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => Self::load(path),
            None => Ok(Self::embedded_default()),
        }
    }

    /// Returns the embedded paper-trading default.
    pub fn embedded_default() -> Self {
        Self::from_toml_str(crate::EMBEDDED_DEFAULT, "embedded config/vigil.toml")
            .expect("the embedded default config is validated by this crate's tests")
    }

    /// Makes relative instrument paths, and a relative model directory, relative to `dir`
    /// (the config file's folder).
    pub fn resolve_relative_to(&mut self, dir: &std::path::Path) {
        if self.signal.model != "ema_cross"
            && self.signal.registry_reference().is_none()
            && std::path::Path::new(&self.signal.model).is_relative()
        {
            self.signal.model = dir.join(&self.signal.model).display().to_string();
        }
        for inst in &mut self.data.instruments {
            if !inst.path.starts_with(crate::model::BUNDLED_PREFIX) {
                let p = PathBuf::from(&inst.path);
                if p.is_relative() {
                    inst.path = dir.join(p).display().to_string();
                }
            }
        }
    }
}

/// Instrument paths starting with this prefix name data compiled into the binary.
pub const BUNDLED_PREFIX: &str = "bundled:";

/// The trading session.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// A name for reports and logs.
    pub name: String,
    /// Starting cash of the paper account.
    pub initial_cash: Decimal,
    /// Account currency (informational; instruments are assumed to trade in it).
    pub currency: String,
}

/// Default session name: `paper`.
fn default_session_name() -> String {
    "paper".into()
}

/// Default starting cash: 100,000.
fn default_initial_cash() -> Decimal {
    Decimal::from(100_000)
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            name: default_session_name(),
            initial_cash: default_initial_cash(),
            currency: "USD".into(),
        }
    }
}

/// One instrument and the CSV file its bars come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstrumentConfig {
    /// The ticker (`GOOG`).
    pub symbol: String,
    /// A CSV file (relative to the config file), or `bundled:NAME` for data in the binary.
    /// Not used (and may be left out) when `[data.feed]` is set.
    #[serde(default)]
    pub path: String,
    /// Check this instrument's bars for sessions of `[calendar] exchange` with no bar
    /// (unset: `[data] check_gaps`). Off for an instrument that trades on another
    /// exchange's days, or around the clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_gaps: Option<bool>,
}

/// How fast a replay runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as the machine allows.
    Max,
    /// Market time runs this many times faster than wall time (1 = real time).
    Factor(f64),
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Max => f.write_str("max"),
            Speed::Factor(x) => write!(f, "{x}"),
        }
    }
}

impl std::str::FromStr for Speed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        s.parse::<f64>()
            .map(Speed::Factor)
            .map_err(|_| format!("expected \"max\" or a positive number, got {s:?}"))
    }
}

impl Serialize for Speed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Speed::Max => s.serialize_str("max"),
            Speed::Factor(x) => s.serialize_f64(*x),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Word(String),
            Int(i64),
            Float(f64),
        }
        match Repr::deserialize(d)? {
            Repr::Word(w) => w.parse().map_err(serde::de::Error::custom),
            Repr::Int(i) => Ok(Speed::Factor(i as f64)),
            Repr::Float(f) => Ok(Speed::Factor(f)),
        }
    }
}

/// Market data.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// The instruments replayed, each from its own CSV.
    pub instruments: Vec<InstrumentConfig>,
    /// Replay pacing: `"max"` or a factor of real time.
    pub speed: Speed,
    /// Bars per message through the pipeline at max speed.
    pub batch_size: usize,
    /// Batches in flight before the Data agent waits (bounds every mailbox).
    pub max_in_flight_batches: usize,
    /// Find sessions of the exchange calendar with no bar (`data_gap`, alerted); after a
    /// restart against a broker, from the last bar the previous run handled.
    pub check_gaps: bool,
    /// Anomaly quarantine: a price jump beyond these bounds withholds the symbol's bars
    /// and blocks new orders in it.
    pub anomaly: AnomalyConfig,
    /// How far ahead of the wall clock a bar's time may be, in seconds (clock skew); a bar
    /// later than that is rejected (`bar_rejected`, ERROR) and moves no clock.
    pub future_tolerance_s: u64,
    /// A network feed (Alpaca's market-data stream format over WebSocket) instead of the
    /// instruments' CSV files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedConfig>,
    /// A reference feed read alongside the source in use (not a backup): a close that
    /// disagrees with the reference's close of the same bar beyond a bound puts the symbol
    /// in quarantine. Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheckConfig>,
}

/// `[data.cross_check]`: a reference feed whose closes the bars in use are compared with.
/// Not part of the failover: a reference that is down only turns the check off meanwhile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrossCheckConfig {
    /// `ws://HOST:PORT/stream`, a feed other than `[data.feed]` and its backups.
    pub url: String,
    /// The API key id sent in the `auth` message.
    pub key_id: String,
    /// A file holding the API secret (one line).
    pub secret_file: std::path::PathBuf,
    /// Largest gap between the two closes of the same bar, in percent of the reference's
    /// close, before the symbol goes into quarantine.
    #[serde(default = "default_max_disagreement_pct")]
    pub max_disagreement_pct: Decimal,
    /// Agreeing pairs of closes in a row that lift a quarantine the disagreement set; 0:
    /// only `vigil ctl release`.
    #[serde(default = "default_cross_release_after_bars")]
    pub release_after_bars: usize,
}

/// Default: closes more than 2 % apart disagree.
fn default_max_disagreement_pct() -> Decimal {
    Decimal::new(20, 1)
}

/// Default: three agreeing pairs in a row lift the quarantine.
fn default_cross_release_after_bars() -> usize {
    3
}

/// `[data.feed]`: bars from a WebSocket feed (`vigil feed`, or a service speaking Alpaca's
/// market-data stream v2), for the instruments listed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedConfig {
    /// `ws://HOST:PORT/stream`.
    pub url: String,
    /// The API key id sent in the `auth` message.
    pub key_id: String,
    /// A file holding the API secret (one line).
    pub secret_file: std::path::PathBuf,
    /// Rejected messages in a row (no good bar between) after which the source counts as
    /// failed: the session stops reading and trading halts. Each one is an ERROR line with
    /// its payload whatever this says.
    #[serde(default = "default_max_rejected_in_a_row")]
    pub max_rejected_in_a_row: u32,
    /// Backup feeds, in order of preference (their own `backups` and
    /// `max_rejected_in_a_row` are not used): when the feed in use fails, the next takes
    /// over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<FeedConfig>,
    /// Rejected messages, in percent of the last `parse_error_window` messages, above which
    /// the source counts as failed (a source that sends bad messages between good ones);
    /// 0: off.
    #[serde(default = "default_max_parse_error_pct")]
    pub max_parse_error_pct: f64,
    /// Messages the parse-error rate is taken over.
    #[serde(default = "default_parse_error_window")]
    pub parse_error_window: u32,
    /// Seconds a backup must run without failing before the primary is tried again; 0: the
    /// switch back is only by `vigil ctl switch-source`. Doubles each time the primary
    /// fails again before its first good bar.
    #[serde(default)]
    pub switch_back_after_s: u64,
    /// First wait before the sources are tried again when none is healthy (an outage).
    #[serde(default = "default_reconnect_initial_ms")]
    pub reconnect_initial_ms: u64,
    /// Longest wait between attempts (the wait doubles after each failed one).
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// When good bars come again after an outage: `verify` (the books are reconciled with
    /// the venue and the data checked for missing sessions; trading resumes if both pass)
    /// or `operator` (the same checks, then an operator resets the breaker).
    #[serde(default)]
    pub after_outage: AfterOutage,
}

/// What ends a data outage's halt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterOutage {
    /// Trading resumes when the verification passes.
    #[default]
    Verify,
    /// An operator resets the breaker (`vigil ctl breaker reset`).
    Operator,
}

/// Default: 5 rejected messages in a row fail the source.
fn default_max_rejected_in_a_row() -> u32 {
    5
}

/// Default: over 20 % of the last messages rejected fails the source.
fn default_max_parse_error_pct() -> f64 {
    20.0
}

/// Default: the rate is taken over the last 100 messages.
fn default_parse_error_window() -> u32 {
    100
}

/// Default: the first reconnect after 1 s.
fn default_reconnect_initial_ms() -> u64 {
    1000
}

/// Default: at most a minute between reconnects.
fn default_reconnect_max_ms() -> u64 {
    60_000
}

/// `[data.anomaly]`: when a move of a bar's close, high or low from the previous close
/// puts its symbol in quarantine.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AnomalyConfig {
    /// Screen every bar at all.
    pub enabled: bool,
    /// Largest move from one close to the next, in percent; 0: no percent bound.
    pub max_jump_pct: Decimal,
    /// Largest move in standard deviations of the last `window` returns; 0: no k-sigma bound.
    pub k_sigma: f64,
    /// The least standard deviation the k-sigma bound uses, in percent (a flat or steadily
    /// trending series would otherwise make any move an outlier).
    pub min_sigma_pct: Decimal,
    /// Returns the standard deviation is taken over.
    pub window: usize,
    /// Bars in a row within the bounds that lift a quarantine; 0: only `vigil ctl release`.
    pub release_after_bars: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_jump_pct: Decimal::from(25),
            k_sigma: 10.0,
            min_sigma_pct: Decimal::new(5, 1),
            window: 20,
            release_after_bars: 3,
        }
    }
}

/// Default batch size: 1024 bars.
fn default_batch_size() -> usize {
    1024
}

/// Default in-flight batches: 4.
fn default_max_in_flight_batches() -> usize {
    4
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            instruments: Vec::new(),
            speed: Speed::Max,
            batch_size: default_batch_size(),
            max_in_flight_batches: default_max_in_flight_batches(),
            check_gaps: true,
            anomaly: AnomalyConfig::default(),
            future_tolerance_s: 60,
            feed: None,
            cross_check: None,
        }
    }
}

/// The regime classifier: volatile when short-run volatility exceeds `volatility_ratio`
/// times long-run volatility; otherwise trending when the efficiency ratio over the short
/// window reaches `trend_threshold`; otherwise ranging.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RegimeConfig {
    /// Bars in the short window.
    pub short_window: usize,
    /// Bars in the long window.
    pub long_window: usize,
    /// Short/long volatility ratio that means "volatile".
    pub volatility_ratio: f64,
    /// Efficiency ratio (0..1) that means "trending".
    pub trend_threshold: f64,
    /// Consecutive bars a new label must hold before it replaces the current one
    /// (hysteresis: without it a label flickers on noise).
    pub confirm_bars: usize,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        Self {
            short_window: 20,
            long_window: 100,
            volatility_ratio: 1.5,
            trend_threshold: 0.3,
            confirm_bars: 3,
        }
    }
}

/// The signal model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SignalConfig {
    /// The model: `ema_cross` (built in, on `fast_span` and `slow_span`), a model
    /// artifact's directory (`models/goog_mlp`), relative to the config file, or a version
    /// in the model registry: `registry:NAME` (the version in production) or
    /// `registry:NAME@VERSION` (a version or an alias).
    pub model: String,
    /// Fast EMA span (alpha = 2/(n+1)).
    pub fast_span: usize,
    /// Slow EMA span.
    pub slow_span: usize,
    /// Bars seen per symbol before the first signal (defaults to `slow_span`).
    pub warmup_bars: Option<usize>,
    /// When false, a bearish cross means flat instead of short.
    pub allow_short: bool,
}

/// How `[signal] model` names a version in the model registry.
pub(crate) const REGISTRY_PREFIX: &str = "registry:";

impl SignalConfig {
    /// `(name, version or alias)` when the model is a registry reference (`registry:NAME`
    /// is `(NAME, "production")`); `None` for the built-in model or a directory.
    pub fn registry_reference(&self) -> Option<(&str, &str)> {
        let rest = self.model.strip_prefix(REGISTRY_PREFIX)?;
        Some(rest.split_once('@').unwrap_or((rest, "production")))
    }
}

impl Default for SignalConfig {
    fn default() -> Self {
        Self {
            model: "ema_cross".into(),
            fast_span: 10,
            slow_span: 30,
            warmup_bars: None,
            allow_short: true,
        }
    }
}

impl SignalConfig {
    /// Returns the warm-up in bars.
    pub fn warmup(&self) -> usize {
        self.warmup_bars.unwrap_or(self.slow_span)
    }
}

/// How the Risk agent sizes a target position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sizing {
    /// `position_pct` of equity at the signal's price.
    PercentOfEquity,
    /// `fixed_quantity` units.
    FixedQuantity,
}

/// Size multipliers per regime.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RegimeFactors {
    /// While warming up.
    pub unknown: Decimal,
    /// Trending market.
    pub trending: Decimal,
    /// Ranging market.
    pub ranging: Decimal,
    /// Volatile market.
    pub volatile: Decimal,
}

impl Default for RegimeFactors {
    fn default() -> Self {
        Self {
            unknown: Decimal::ONE,
            trending: Decimal::ONE,
            ranging: Decimal::ONE,
            volatile: Decimal::new(5, 1),
        }
    }
}

/// Pre-trade checks and sizing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskConfig {
    /// Largest single position as a fraction of equity, in (0, 1].
    pub max_position_pct: Decimal,
    /// Largest sum of |position value| as a fraction of equity, in (0, 10].
    pub max_gross_exposure_pct: Decimal,
    /// Sizing rule.
    pub sizing: Sizing,
    /// Target position as a fraction of equity (`percent_of_equity`).
    pub position_pct: Decimal,
    /// Target position in units (`fixed_quantity`).
    pub fixed_quantity: Decimal,
    /// Quantities are rounded down to a multiple of this (1 = whole shares).
    pub quantity_step: Decimal,
    /// Size multipliers per regime.
    pub regime_size_factor: RegimeFactors,
    /// Trading state at start.
    pub initial_state: TradingState,
    /// The drawdown control line: past it no new position, and the book is cut in steps.
    pub drawdown_control: DrawdownControlConfig,
}

/// `[risk.drawdown_control]`: when equity falls `line_pct` below its peak, the Risk agent
/// goes reduce-only and cuts every position by `step_pct` of its size at that moment, one
/// step per `step_interval_s` of market time while the drawdown stays beyond the line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrawdownControlConfig {
    /// Watch the line at all.
    pub enabled: bool,
    /// The control line: fall from the equity peak, as a fraction, in (0, 1).
    pub line_pct: Decimal,
    /// Each step cuts a position by this fraction of its size when the line was crossed,
    /// in [0, 1]; 0 only stops new positions.
    pub step_pct: Decimal,
    /// Market time between two steps, in seconds.
    pub step_interval_s: u64,
}

impl Default for DrawdownControlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            line_pct: Decimal::new(10, 2),
            step_pct: Decimal::new(25, 2),
            step_interval_s: 86_400,
        }
    }
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_position_pct: Decimal::new(10, 2),
            max_gross_exposure_pct: Decimal::ONE,
            sizing: Sizing::PercentOfEquity,
            position_pct: Decimal::new(8, 2),
            fixed_quantity: Decimal::from(100),
            quantity_step: Decimal::ONE,
            regime_size_factor: RegimeFactors::default(),
            initial_state: TradingState::Active,
            drawdown_control: DrawdownControlConfig::default(),
        }
    }
}

/// When the paper venue fills a market order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillModelConfig {
    /// At the next bar's open (no look-ahead).
    NextBarOpen,
    /// At the close of the bar that produced the signal (parity with vectorised backtests).
    SignalBarClose,
}

/// Which order type the Execution agent sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderTypeConfig {
    /// Market orders.
    Market,
    /// Limit orders `limit_offset_bps` through the reference price.
    Limit,
}

/// Where orders go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VenueKind {
    /// The in-process paper venue.
    #[default]
    Paper,
    /// A broker speaking Alpaca's trading API v2 over HTTP: the paper broker process
    /// (`vigil broker`) or Alpaca's paper endpoint.
    Alpaca,
    /// A broker's order gateway speaking FIX 4.4 (`[execution.fix]`).
    Fix,
}

impl VenueKind {
    /// The venue outlives the process (a broker): its book is kept and reconciled.
    pub fn is_external(self) -> bool {
        !matches!(self, Self::Paper)
    }
}

/// The Execution agent and the paper venue.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionConfig {
    /// Where orders go: the in-process paper venue or a broker over HTTP.
    pub venue: VenueKind,
    /// With `venue = "alpaca"`: the broker's base URL, without `/v2`
    /// (`http://127.0.0.1:8300`).
    pub broker_url: Option<String>,
    /// The broker's API key id (`APCA-API-KEY-ID`); with `broker_secret_file`.
    pub broker_key_id: Option<String>,
    /// The file holding the API secret key (`APCA-API-SECRET-KEY`), trimmed; read at start.
    pub broker_secret_file: Option<PathBuf>,
    /// How often fills are polled for, in milliseconds of wall time.
    pub broker_poll_interval_ms: u64,
    /// The time limit of one request to the broker, in milliseconds.
    pub broker_timeout_ms: u64,
    /// Fill timing of market orders at the paper venue.
    pub fill_model: FillModelConfig,
    /// Adverse slippage on market fills, in basis points.
    pub slippage_bps: Decimal,
    /// Commission in basis points of notional.
    pub commission_bps: Decimal,
    /// Minimum commission per fill.
    pub commission_min: Decimal,
    /// Largest fraction of a bar's volume one order may take (partial fills beyond).
    pub max_volume_participation: Decimal,
    /// Market or limit orders.
    pub order_type: OrderTypeConfig,
    /// For limit orders: how far through the reference price, in basis points.
    pub limit_offset_bps: Decimal,
    /// Reconciliation with a broker (`venue = "alpaca"`): at start, on an interval, and
    /// when the broker comes back after an outage.
    pub reconcile: ReconcileConfig,
    /// The FIX session (`venue = "fix"`).
    pub fix: FixConfig,
}

/// `[execution.fix]`: the FIX 4.4 session to a broker's order gateway (docs/broker.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FixConfig {
    /// The gateway's `host:port`.
    pub address: Option<String>,
    /// SenderCompID (49): vigil's side, as the broker set the session up.
    pub sender_comp_id: Option<String>,
    /// TargetCompID (56): the broker's side.
    pub target_comp_id: Option<String>,
    /// Username (553) on the Logon; with `password_file`.
    pub username: Option<String>,
    /// The file holding the Password (554), trimmed; read at start, redacted from logs.
    pub password_file: Option<PathBuf>,
    /// Account (1) on every order, and the account positions are asked for.
    pub account: Option<String>,
    /// HeartBtInt (108), in seconds.
    pub heartbeat_s: u64,
    /// The first wait before logging on again after the session ended, in milliseconds
    /// (doubled at each failure, with jitter).
    pub reconnect_initial_ms: u64,
    /// The longest wait between two logons, in milliseconds.
    pub reconnect_max_ms: u64,
    /// How long an answer (an order's acknowledgement, a cancel, a status, the positions)
    /// is waited for, in milliseconds.
    pub reply_timeout_ms: u64,
    /// TimeInForce (59) of every order.
    pub time_in_force: FixTimeInForce,
    /// Where positions come from: the broker's PositionReports, or the executions.
    pub positions: FixPositions,
    /// With `positions = "counterparty"`: the PosTypes (703) whose amounts in a
    /// PositionReport add up to the position now (`["SOD", "TQ"]` for a broker that reports
    /// the start of day and the day's trades apart). Empty: each report must carry one
    /// amount, and one with several is refused rather than guessed at.
    pub position_types: Vec<String>,
    /// SenderCompID of a drop copy session (with `positions = "executions"`): the broker
    /// copies on it every execution of the account, trades made elsewhere included, and
    /// positions and cash add those up. Same address and credentials as the order session.
    pub drop_copy_sender_comp_id: Option<String>,
    /// TargetCompID of the drop copy session.
    pub drop_copy_target_comp_id: Option<String>,
}

impl Default for FixConfig {
    fn default() -> Self {
        Self {
            address: None,
            sender_comp_id: None,
            target_comp_id: None,
            username: None,
            password_file: None,
            account: None,
            heartbeat_s: 30,
            reconnect_initial_ms: 500,
            reconnect_max_ms: 30_000,
            reply_timeout_ms: 5000,
            time_in_force: FixTimeInForce::Day,
            positions: FixPositions::Counterparty,
            position_types: Vec::new(),
            drop_copy_sender_comp_id: None,
            drop_copy_target_comp_id: None,
        }
    }
}

/// `[execution.fix] time_in_force`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixTimeInForce {
    /// Until the close.
    Day,
    /// Until cancelled.
    Gtc,
}

/// `[execution.fix] positions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixPositions {
    /// Asked of the broker with RequestForPositions (AN).
    Counterparty,
    /// Added up from the executions this session received.
    Executions,
}

/// `[execution.reconcile]`: the broker is the source of truth (see docs/recovery.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileConfig {
    /// Seconds of wall time between reconciliations during the session; 0: only at start
    /// and after an outage.
    pub interval_s: u64,
    /// What becomes of vigil's own orders still open at the broker after a restart.
    pub open_orders: OpenOrdersPolicy,
    /// Where trading stays when the books differ in a way a crash does not explain (a
    /// trade made at the broker by hand): until a person resets the breaker.
    pub on_mismatch: MismatchPolicy,
    /// After a failed submission, the first wait before the broker is asked again, in
    /// milliseconds; it doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    /// The longest wait between attempts, in milliseconds.
    pub retry_max_ms: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            interval_s: 60,
            open_orders: OpenOrdersPolicy::Adopt,
            on_mismatch: MismatchPolicy::ReduceOnly,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
        }
    }
}

/// `[execution.reconcile] open_orders`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenOrdersPolicy {
    /// Keep working and track them again.
    #[default]
    Adopt,
    /// Cancel them: the restarted strategy decides afresh.
    Cancel,
}

/// `[execution.reconcile] on_mismatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchPolicy {
    /// Orders that shrink positions only.
    #[default]
    ReduceOnly,
    /// No order at all (cancels only).
    Halt,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            venue: VenueKind::Paper,
            broker_url: None,
            broker_key_id: None,
            broker_secret_file: None,
            broker_poll_interval_ms: 100,
            broker_timeout_ms: 5000,
            fill_model: FillModelConfig::NextBarOpen,
            slippage_bps: Decimal::ONE,
            commission_bps: Decimal::ONE,
            commission_min: Decimal::ZERO,
            max_volume_participation: Decimal::ONE,
            order_type: OrderTypeConfig::Market,
            limit_offset_bps: Decimal::from(5),
            reconcile: ReconcileConfig::default(),
            fix: FixConfig::default(),
        }
    }
}

/// Supervision, monitoring and health.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    /// How often each agent reports to the Monitor, in milliseconds of supervision time.
    pub heartbeat_interval_ms: u64,
    /// Silence after which an agent is unhealthy (Critical), in milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Trip the circuit breaker when an agent fails.
    pub trip_breaker_on_agent_failure: bool,
    /// Collect metrics and evaluate the threshold rules (agents' figures, probes, system
    /// samples, business figures). Heartbeats and the dead-man's switch run regardless.
    pub enabled: bool,
    /// How often the Monitor samples the system, probes every agent's mailbox, the data
    /// source and the venue, and evaluates its rules, in milliseconds.
    pub probe_interval_ms: u64,
    /// How often the Monitor writes a `health_snapshot` line, in seconds. It is the log's
    /// pulse: the dead-man's switch relies on it when nothing else happens.
    pub snapshot_interval_s: u64,
    /// The watchdog over the Monitor: a health board not published for longer than this
    /// (and at least three probe intervals) is a stalled Monitor; the breaker trips, and
    /// under systemd the watchdog pings stop. In seconds.
    pub watchdog_stall_s: u64,
    /// Window of the API success rate, in seconds.
    pub success_rate_window_s: u64,
    /// Trading days in the rolling mean that trading frequency is compared with.
    pub trade_frequency_days: u32,
    /// A folder on the volume whose free space is watched (default: the log folder).
    pub disk_path: Option<PathBuf>,
    /// The dead-man's switch.
    pub dead_man: DeadManConfig,
    /// Threshold rules on top of [`default_rules`]: a rule named like a default replaces
    /// it (`enabled = false` turns it off), other names are added. See
    /// [`MonitorConfig::effective_rules`].
    pub rules: Vec<RuleConfig>,
    /// Restarting agents that crash (a panic caught in a handler).
    pub supervision: SupervisionConfig,
}

/// `[monitor.supervision]`: an agent that panics is restarted after a backoff; more than
/// `max_restarts` crashes within `within_s` trips the breaker (Critical), and the agent is
/// still restarted, at the longest backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SupervisionConfig {
    /// Restarts allowed within the window; one more crash escalates.
    pub max_restarts: u32,
    /// The window, in seconds.
    pub within_s: u64,
    /// Wait before the first restart, in milliseconds; doubled per further crash in the
    /// window.
    pub backoff_initial_ms: u64,
    /// The longest wait, in milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within_s: 60,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 1_000,
            heartbeat_timeout_ms: 30_000,
            trip_breaker_on_agent_failure: true,
            enabled: true,
            probe_interval_ms: 5_000,
            snapshot_interval_s: 60,
            watchdog_stall_s: 30,
            success_rate_window_s: 300,
            trade_frequency_days: 20,
            disk_path: None,
            dead_man: DeadManConfig::default(),
            rules: Vec::new(),
            supervision: SupervisionConfig::default(),
        }
    }
}

impl MonitorConfig {
    /// How long the health board may go unpublished before the Monitor counts as stalled:
    /// `watchdog_stall_s`, and at least three probe intervals.
    pub fn watchdog_stall(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.watchdog_stall_s).max(std::time::Duration::from_millis(
            self.probe_interval_ms.saturating_mul(3),
        ))
    }

    /// Returns the rules in force: the defaults, each replaced by a configured rule of the
    /// same name, then the configured rules with new names; disabled rules left out.
    pub fn effective_rules(&self) -> Vec<RuleConfig> {
        let mut out = default_rules();
        for r in &self.rules {
            match out.iter_mut().find(|d| d.name == r.name) {
                Some(d) => *d = r.clone(),
                None => out.push(r.clone()),
            }
        }
        out.retain(|r| r.enabled);
        out
    }
}

/// No log lines for too long raises Critical; an outside service is pinged while vigil is
/// healthy, so that it notices when vigil itself is dead.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DeadManConfig {
    /// Silence of the log during trading hours that raises Critical, in seconds.
    pub silence_trading_s: u64,
    /// The same outside trading hours (nights, weekends, holidays), in seconds.
    pub silence_closed_s: u64,
    /// A healthchecks-style URL pinged while vigil is healthy. It often holds a key: it is
    /// a secret, redacted from every log line.
    pub heartbeat_url: Option<Secret>,
    /// `GET` or `POST`.
    pub heartbeat_method: String,
    /// How often to ping, in seconds.
    pub heartbeat_interval_s: u64,
    /// Time limit of one ping, in milliseconds.
    pub heartbeat_timeout_ms: u64,
}

impl Default for DeadManConfig {
    fn default() -> Self {
        Self {
            silence_trading_s: 300,
            silence_closed_s: 4 * 3600,
            heartbeat_url: None,
            heartbeat_method: "GET".into(),
            heartbeat_interval_s: 60,
            heartbeat_timeout_ms: 5_000,
        }
    }
}

/// How a metric is compared with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// Breached when the value is above the threshold.
    #[serde(rename = ">")]
    Above,
    /// At or above.
    #[serde(rename = ">=")]
    AtLeast,
    /// Below.
    #[serde(rename = "<")]
    Below,
    /// At or below.
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    /// Tells whether `value` breaches `threshold`. NaN never does.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }

    /// Returns the operator as written in config (`>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }
}

/// One threshold rule: `metric op value`, held `for` a duration, raises an event at
/// `level`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name (its runbook is `docs/runbooks/<name>.md`).
    pub name: String,
    /// The metric, one of [`vigil_core::RuleMetric`] (docs/monitoring.md).
    pub metric: String,
    /// `>`, `>=`, `<` or `<=`.
    pub op: Comparison,
    /// The threshold.
    pub value: f64,
    /// How long the condition must hold before the rule fires: `"0s"`, `"90s"`, `"5m"`.
    #[serde(rename = "for", default, with = "duration_text")]
    pub for_s: u64,
    /// The level of the breach event (WARN, CRITICAL …).
    pub level: Level,
    /// Off switch.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// The default rules, `config/rules.toml`, as text.
pub(crate) const DEFAULT_RULES: &str = include_str!("../../../config/rules.toml");

/// The seed's table of thresholds (docs/monitoring.md): `config/rules.toml`, built in.
pub fn default_rules() -> Vec<RuleConfig> {
    #[derive(Deserialize)]
    struct File {
        rules: Vec<RuleConfig>,
    }
    match toml::from_str::<File>(DEFAULT_RULES) {
        Ok(f) => f.rules,
        // Provably unreachable: the file is compiled in and a unit test parses it.
        Err(e) => panic!("config/rules.toml is built in and must parse: {e}"),
    }
}

/// Durations in rules: `"5m"`, `"90s"`, `"1h"`, or a number of seconds.
pub(crate) mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(s: &u64, ser: S) -> Result<S::Ok, S::Error> {
        if *s > 0 && s.is_multiple_of(3600) {
            ser.serialize_str(&format!("{}h", s / 3600))
        } else if *s > 0 && s.is_multiple_of(60) {
            ser.serialize_str(&format!("{}m", s / 60))
        } else {
            ser.serialize_str(&format!("{s}s"))
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
        match Raw::deserialize(de)? {
            Raw::Seconds(s) => Ok(s),
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
        }
    }

    fn parse(t: &str) -> Result<u64, String> {
        let t = t.trim();
        let bad = || format!("bad duration {t:?}: expected a number then s, m or h (\"5m\")");
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).ok_or_else(bad)
    }
}

/// The log writer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Folder of the JSON-lines files (relative to the working directory).
    pub dir: PathBuf,
    /// Lowest level written, for every service without its own entry.
    pub min_level: Level,
    /// Per-service lowest level (`risk_agent = "DEBUG"`).
    pub service_levels: BTreeMap<String, Level>,
    /// Buffered lines reach the disk at least this often (ERROR and above at once).
    pub flush_interval_ms: u64,
    /// A log file is closed and the next opened beyond this size, in MiB (files also
    /// rotate when the exchange date changes).
    pub max_file_mb: u64,
    /// A secret file whose one line (32 bytes or more) keys the chain: each line's hash is
    /// then an HMAC-SHA256 with it (the `hmac` field), which only a holder of the key can
    /// forge. Off (plain SHA-256) by default.
    pub hmac_key_file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("logs"),
            min_level: Level::Info,
            service_levels: BTreeMap::new(),
            flush_interval_ms: 200,
            max_file_mb: 64,
            hmac_key_file: None,
        }
    }
}

/// Where the agents run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    /// Give each pipeline agent its own thread (arbiter). Off by default: the pipeline is
    /// sequential, and on few cores a thread per agent costs context switches and makes
    /// the Risk agent's book query a cross-thread round trip (measured 63 µs vs 0.6 µs).
    /// The Monitor and the log writer always have their own threads.
    pub isolate_agents: bool,
}

/// A value that must never be shown: API keys, tokens, passwords, webhook URLs. Its
/// `Debug` and `Display` print `[REDACTED]`, it serialises as `[REDACTED]`, and every
/// secret of a config is handed to the log writer, which redacts it from every line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    /// Accepts a string only; the error for anything else says what was found without the
    /// value (a numeric password is still a password).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::invalid_type(
                    serde::de::Unexpected::Other("a boolean"),
                    &self,
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::invalid_type(
                    serde::de::Unexpected::Other("a number"),
                    &self,
                ))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::invalid_type(
                    serde::de::Unexpected::Other("a number"),
                    &self,
                ))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::invalid_type(
                    serde::de::Unexpected::Other("a number"),
                    &self,
                ))
            }
        }
        d.deserialize_str(Text)
    }
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[REDACTED]")
    }
}

impl VigilConfig {
    /// Returns the value of every [`Secret`] in the config, for the log writer to redact.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(url) = &self.monitor.dead_man.heartbeat_url {
            out.push(url.expose().to_string());
        }
        out.extend(self.alerts.channels.secrets());
        if let Some(url) = &self.store.url {
            // The URL itself is named in messages, without its password.
            out.extend(url_passwords(url.expose()));
        }
        out
    }

    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        crate::validate::collect(self)
    }

    /// Checks every value; returns all problems found.
    ///
    /// # Errors
    /// Returns every problem, each with its dotted key path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issues = self.issues();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new("config", issues))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_or_default_falls_back_to_the_embedded_config_and_names_the_file_it_cannot_read() {
        let cfg = VigilConfig::load_or_default(None).expect("embedded");
        assert_eq!(cfg.log.dir, VigilConfig::embedded_default().log.dir);
        let missing = std::path::Path::new("/nonexistent/vigil-test/vigil.toml");
        let e = VigilConfig::load_or_default(Some(missing)).expect_err("no such file");
        let text = e.to_string();
        assert!(
            text.starts_with("/nonexistent/vigil-test/vigil.toml: 1 problem"),
            "{text}"
        );
        assert!(text.contains("cannot read"), "{text}");
    }
}
