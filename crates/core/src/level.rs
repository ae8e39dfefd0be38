//! Log severity levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How severe a log event is. ERROR means a person must act; WARN means degraded but
/// handled; INFO is lifecycle and business events; DEBUG is per decision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Per-decision detail; off in production.
    Debug,
    /// Lifecycle and business events.
    Info,
    /// Degraded but handled.
    Warn,
    /// A person must act.
    Error,
    /// Trading is affected now.
    Critical,
}

impl Level {
    /// Returns the level as the log format writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(Level::Debug),
            "INFO" => Ok(Level::Info),
            "WARN" | "WARNING" => Ok(Level::Warn),
            "ERROR" => Ok(Level::Error),
            "CRITICAL" => Ok(Level::Critical),
            _ => Err(format!(
                "unknown level {s:?}; expected DEBUG, INFO, WARN, ERROR or CRITICAL"
            )),
        }
    }
}
