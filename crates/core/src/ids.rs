//! Identities of decision chains and orders.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Identifies one decision chain, from the signal through the risk check, the order, the
/// venue's acknowledgement and every fill. Created where the chain starts.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(Arc<str>);

impl TraceId {
    /// Builds the trace id of the signal on `symbol` at market time `at`.
    ///
    /// The id is a pure function of its inputs (`tx_20240115T093000_GOOG`), so replaying the
    /// same data after a restart yields the same ids.
    pub fn for_signal(symbol: &str, at: Timestamp) -> Self {
        use chrono::{Datelike, Timelike};
        use std::fmt::Write;
        let mut s = String::with_capacity(24 + symbol.len());
        write!(
            s,
            "tx_{:04}{:02}{:02}T{:02}{:02}{:02}_",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
        .expect("writing to a String cannot fail");
        s.push_str(&sanitize(symbol));
        Self(s.into())
    }

    /// Builds a trace id for a chain started by an operator or a rule rather than a signal.
    pub fn for_command(kind: &str, at: Timestamp) -> Self {
        Self(format!("tx_{}_{}", at.format("%Y%m%dT%H%M%S%.3f"), sanitize(kind)).into())
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the signal id that belongs to this trace (`sig_…`).
    pub fn signal_id(&self) -> Arc<str> {
        format!("sig_{}", self.0.strip_prefix("tx_").unwrap_or(&self.0)).into()
    }

    /// The market time of the decision this trace stands for, as its id says
    /// (`tx_20240115T093000_GOOG`, `tx_20240115T093000.123_flatten`); `None` for an id
    /// that is not one of vigil's.
    pub fn decided_at(&self) -> Option<Timestamp> {
        decision_time(&self.0)
    }
}

/// The time in a vigil id (`tx_<%Y%m%dT%H%M%S[.%3f]>_…`), UTC.
fn decision_time(id: &str) -> Option<Timestamp> {
    let rest = id.strip_prefix("tx_")?;
    let time = rest.split('_').next()?;
    chrono::NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

impl From<&str> for TraceId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.0)
    }
}

/// The client order id vigil gives the venue. Deterministic in the trace and the leg, so
/// that a venue which deduplicates on it (every real one does) can never see a second order
/// for the same intent.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientOrderId(Arc<str>);

impl ClientOrderId {
    /// Builds the id of order `leg` (1-based) of decision chain `trace`.
    pub fn for_intent(trace: &TraceId, leg: u32) -> Self {
        Self(format!("{}-{leg}", trace.as_str()).into())
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the id as shared text (no copy), for log fields.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// The market time of the decision this order came from, as its id says (see
    /// [`TraceId::decided_at`]); `None` for an order that is not vigil's.
    pub fn decided_at(&self) -> Option<Timestamp> {
        decision_time(&self.0)
    }

    /// Whether vigil sent this order: its id names a decision chain with its time
    /// (`tx_<time>_…-<leg>`, see [`ClientOrderId::for_intent`]). The one test of "ours" for
    /// the in-session reconciler and for recovery alike.
    pub fn is_vigils(&self) -> bool {
        self.decided_at().is_some()
    }
}

impl From<&str> for ClientOrderId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientOrderId({})", self.0)
    }
}

/// Keeps ids to characters every venue accepts in a client order id.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Ours" is one test everywhere: an id that names a decision chain with its time. An
    /// order someone placed by hand with a look-alike id (`tx_by_hand-1`) is not vigil's:
    /// the in-session reconciler used to take any `tx_` prefix as vigil's and so would have
    /// let such a fill pass as a race with a cancel instead of reporting drift.
    #[test]
    fn an_order_is_vigils_only_when_its_id_names_a_decision_time() {
        let at: Timestamp = "2024-01-15T09:30:00Z".parse().expect("ts");
        for trace in [
            TraceId::for_signal("GOOG", at),
            TraceId::for_command("flatten", at),
        ] {
            let id = ClientOrderId::for_intent(&trace, 2);
            assert!(id.is_vigils(), "{id:?}");
            assert_eq!(id.decided_at(), Some(at));
        }
        for other in [
            "tx_by_hand-1",
            "tx_",
            "by-hand-1",
            "TX_20240115T093000_GOOG-1",
        ] {
            assert!(!ClientOrderId::from(other).is_vigils(), "{other}");
        }
    }

    #[test]
    fn ids_are_deterministic_and_venue_safe() {
        let at: Timestamp = "2024-01-15T09:30:00Z".parse().expect("ts");
        let a = TraceId::for_signal("EUR/USD", at);
        let b = TraceId::for_signal("EUR/USD", at);
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "tx_20240115T093000_EUR_USD");
        assert_eq!(&*a.signal_id(), "sig_20240115T093000_EUR_USD");
        // The decision time reads back from the ids, and only from vigil's.
        assert_eq!(a.decided_at(), Some(at));
        assert_eq!(ClientOrderId::for_intent(&a, 2).decided_at(), Some(at));
        let cmd_at: Timestamp = "2024-01-15T09:30:00.250Z".parse().expect("ts");
        let cmd = TraceId::for_command("flatten all", cmd_at);
        assert_eq!(
            ClientOrderId::for_intent(&cmd, 1).decided_at(),
            Some(cmd_at)
        );
        assert_eq!(ClientOrderId::from("by-hand-1").decided_at(), None);
        assert_eq!(ClientOrderId::from("tx_garbage_X-1").decided_at(), None);
        assert_eq!(
            ClientOrderId::for_intent(&a, 1).as_str(),
            "tx_20240115T093000_EUR_USD-1"
        );
    }
}
