//! The decision latency: from a bar's arrival at the Data agent to the venue's answer to
//! the order it decided, on the wall clock. The Execution agent measures every order a bar
//! decided; the session's quantiles go into its report (and the session's summary), and
//! each heartbeat carries what was measured since the last one to the Monitor, which
//! serves it as the histogram `vigil_decision_latency_seconds` on `/metrics`.

use sketches_ddsketch::{Config, DDSketch};
use vigil_messages::{LATENCY_SAMPLES_PER_HEARTBEAT, LatencySummary};

/// The session's decision latencies.
pub(crate) struct DecisionLatency {
    /// Every one measured, in a quantile sketch (1% relative accuracy, bounded memory).
    sketch: DDSketch,
    /// Measured since the last heartbeat, up to [`LATENCY_SAMPLES_PER_HEARTBEAT`].
    fresh: Vec<f64>,
    /// Measured since the last heartbeat beyond those.
    dropped: u64,
}

impl std::fmt::Debug for DecisionLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLatency")
            .field("count", &self.sketch.count())
            .field("fresh", &self.fresh.len())
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl Default for DecisionLatency {
    fn default() -> Self {
        Self {
            sketch: DDSketch::new(Config::defaults()),
            fresh: Vec::new(),
            dropped: 0,
        }
    }
}

impl DecisionLatency {
    /// Records one latency of `seconds` (a clock that stepped back counts as 0).
    pub(crate) fn record(&mut self, seconds: f64) {
        let seconds = seconds.max(0.0);
        self.sketch.add(seconds);
        if self.fresh.len() < LATENCY_SAMPLES_PER_HEARTBEAT {
            self.fresh.push(seconds);
        } else {
            self.dropped += 1;
        }
    }

    /// What was measured since the last call, and how many more were not kept.
    pub(crate) fn take_fresh(&mut self) -> (Vec<f64>, u64) {
        (
            std::mem::take(&mut self.fresh),
            std::mem::take(&mut self.dropped),
        )
    }

    /// The session's quantiles; `None` when nothing was measured.
    ///
    /// # Errors
    /// When the sketch cannot answer a quantile (it names which).
    pub(crate) fn summary(&self) -> Result<Option<LatencySummary>, String> {
        let q = |q: f64| {
            self.sketch
                .quantile(q)
                .map(Option::unwrap_or_default)
                .map_err(|e| format!("the decision latency's {q} quantile: {e}"))
        };
        if self.sketch.count() == 0 {
            return Ok(None);
        }
        Ok(Some(LatencySummary {
            count: self.sketch.count() as u64,
            p50: q(0.5)?,
            p90: q(0.9)?,
            p99: q(0.99)?,
            p999: q(0.999)?,
            max: self.sketch.max().unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_within_a_percent_and_heartbeats_carry_what_is_new() {
        let mut l = DecisionLatency::default();
        assert_eq!(l.summary(), Ok(None));
        // 1 µs … 1000 µs.
        for i in 1..=1000 {
            l.record(f64::from(i) * 1e-6);
        }
        let s = l.summary().expect("quantiles").expect("measured");
        assert_eq!(s.count, 1000);
        for (got, want) in [(s.p50, 500e-6), (s.p90, 900e-6), (s.p99, 990e-6)] {
            assert!((got - want).abs() <= want * 0.02, "{got} against {want}");
        }
        assert!((s.max - 1000e-6).abs() < 1e-12);
        let (fresh, dropped) = l.take_fresh();
        assert_eq!((fresh.len(), dropped), (1000, 0));
        assert_eq!(l.take_fresh(), (Vec::new(), 0), "taken");
        // A burst beyond what a heartbeat carries is counted, and still in the quantiles.
        for _ in 0..LATENCY_SAMPLES_PER_HEARTBEAT + 5 {
            l.record(-1.0);
        }
        let (fresh, dropped) = l.take_fresh();
        assert_eq!((fresh.len(), dropped), (LATENCY_SAMPLES_PER_HEARTBEAT, 5));
        assert!(
            fresh.iter().all(|s| *s == 0.0),
            "a clock that stepped back counts 0"
        );
        assert_eq!(
            l.summary().expect("quantiles").expect("measured").count,
            1000 + LATENCY_SAMPLES_PER_HEARTBEAT as u64 + 5
        );
    }
}
