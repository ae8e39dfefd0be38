//! Operator overrides applied on top of an exchange's rules.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// Days the operator closes or shortens on top of the exchange's rules, each with its reason.
///
/// In TOML:
///
/// ```toml
/// closures = [{ date = "2026-01-02", reason = "broker migration" }]
/// early_closes = [{ date = "2026-01-05", close = "13:00", reason = "exchange notice 2025-41" }]
/// ```
///
/// Applied with [`crate::Calendar::with_overrides`], which checks them against the calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarOverrides {
    /// Days with no session.
    pub closures: Vec<ClosureOverride>,
    /// Days whose session closes early.
    pub early_closes: Vec<EarlyCloseOverride>,
}

/// A day the operator closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosureOverride {
    /// The exchange-local date.
    pub date: NaiveDate,
    /// Why the day is closed (shown by [`crate::Calendar::explain`]).
    pub reason: String,
}

/// A day whose session the operator closes early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyCloseOverride {
    /// The exchange-local date.
    pub date: NaiveDate,
    /// The local close time, written `HH:MM` (seconds are refused).
    #[serde(with = "hh_mm")]
    pub close: NaiveTime,
    /// Why the session closes early (shown by [`crate::Calendar::explain`]).
    pub reason: String,
}

/// `HH:MM` local times, as an operator writes them in a config file.
mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(time: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.format("%H:%M").to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M").map_err(|_| {
            serde::de::Error::custom(format!(
                "cannot parse {text:?} as a local time: expected HH:MM, e.g. \"13:00\""
            ))
        })
    }
}
