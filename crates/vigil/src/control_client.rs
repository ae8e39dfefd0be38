//! The `vigil` command's side of the control API: the flags that say where the running
//! vigil is ([`ControlArgs`]) and what each kind of failure means as an exit code. The
//! client itself is [`vigil_control::client`].

use std::path::{Path, PathBuf};

use vigil_config::VigilConfig;
use vigil_control::ControlError;
use vigil_control::client::Target;
pub(crate) use vigil_control::client::{Client, Failure, Located, Reply};

/// Exit code: the running vigil refused (or the status is not ready).
pub(crate) const REFUSED: u8 = 1;
/// Exit code: bad arguments, an unreadable config.
pub(crate) const USAGE: u8 = 2;
/// Exit code: no vigil answers.
pub(crate) const NOT_RUNNING: u8 = 3;
/// Exit code: it did not answer in time.
pub(crate) const NO_ANSWER: u8 = 4;
/// Exit code: the token was refused, or cannot be read.
pub(crate) const UNAUTHORIZED: u8 = 5;

/// Where the running vigil is and how to authenticate.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ControlArgs {
    /// The running vigil's config file: its log.dir (control.addr), control.token_file,
    /// control.tls_cert and store.path (default: the embedded default config).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// The running vigil's log folder, where it writes control.addr (default: the config's
    /// log.dir).
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) log_dir: Option<PathBuf>,
    /// The control address or URL (`127.0.0.1:7317`, `https://host:7317`), instead of
    /// reading control.addr.
    #[arg(long, value_name = "ADDR", global = true)]
    pub(crate) control: Option<String>,
    /// The bearer token's file (default: the config's control.token_file).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) token_file: Option<PathBuf>,
    /// PEM certificates to trust for HTTPS (default: the config's control.tls_cert).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) ca_file: Option<PathBuf>,
}

/// The config at `path`, or the embedded default; `None` after printing why it cannot be
/// loaded.
pub(crate) fn load_config(path: Option<&Path>) -> Option<VigilConfig> {
    match VigilConfig::load_or_default(path) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

pub(crate) use vigil_session::with_store;

impl ControlArgs {
    /// The running vigil of the config at `config` (its log.dir, its token file).
    pub(crate) fn of_config(config: Option<PathBuf>) -> Self {
        Self {
            config,
            log_dir: None,
            control: None,
            token_file: None,
            ca_file: None,
        }
    }

    /// The config, or `None` after printing why it cannot be loaded.
    pub(crate) fn config(&self) -> Option<VigilConfig> {
        load_config(self.config.as_deref())
    }

    /// Where the flags say the running vigil is.
    fn target(&self) -> Target {
        Target {
            log_dir: self.log_dir.clone(),
            control: self.control.clone(),
            token_file: self.token_file.clone(),
            ca_file: self.ca_file.clone(),
        }
    }

    /// The token file in use.
    pub(crate) fn token_file(&self, cfg: &VigilConfig) -> PathBuf {
        self.target().token_file(cfg)
    }

    /// Finds the running vigil's address; see [`Target::locate`].
    pub(crate) fn locate(&self, cfg: &VigilConfig) -> Result<Located, ControlError> {
        self.target().locate(cfg)
    }
}

/// A failure as the command reports it.
pub(crate) trait Report {
    /// Prints the failure and returns its exit code.
    fn report(&self) -> std::process::ExitCode;
}

impl Report for Failure {
    fn report(&self) -> std::process::ExitCode {
        match self {
            Failure::NotRunning(m) => {
                eprintln!("{m}");
                std::process::ExitCode::from(NOT_RUNNING)
            }
            Failure::NoAnswer(m) => {
                eprintln!("vigil: {m}");
                std::process::ExitCode::from(NO_ANSWER)
            }
            Failure::Other(m) => {
                eprintln!("vigil: {m}");
                std::process::ExitCode::from(REFUSED)
            }
        }
    }
}

/// What the session running on a config answered a command sent by a `vigil model` change.
#[derive(Debug)]
pub(crate) enum Answered {
    /// No session runs there.
    NotRunning,
    /// It carried the command out: its outcome.
    Done(String),
    /// It refused: the HTTP status and the reason.
    Refused(u16, String),
    /// It could not be looked for or did not answer: why.
    Unreachable(String),
}

/// Sends the command `body` (`POST /v1/commands`) to the session running on the config at
/// `config` (`cfg` loaded from it), if one runs.
pub(crate) fn ask_running_session(
    config: Option<PathBuf>,
    cfg: &VigilConfig,
    body: &serde_json::Value,
) -> Answered {
    let client = match ControlArgs::of_config(config).locate(cfg) {
        Ok(Located::Running(c)) => c,
        Ok(Located::NotRunning(_)) => return Answered::NotRunning,
        Err(e) => return Answered::Unreachable(e.to_string()),
    };
    match client.post("/v1/commands", body) {
        Ok(reply) if (200..300).contains(&reply.status) => Answered::Done(
            reply
                .json()
                .map(|v| v["outcome"].as_str().unwrap_or("done").to_string())
                // The outcome could not be read: what could not, in its place.
                .unwrap_or_else(|e| e),
        ),
        Ok(reply) => Answered::Refused(reply.status, reply.error()),
        Err(Failure::NotRunning(m) | Failure::NoAnswer(m) | Failure::Other(m)) => {
            Answered::Unreachable(m)
        }
    }
}
