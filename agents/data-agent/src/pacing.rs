//! Pacing: how fast a replay hands its bars over, against the wall clock.
//!
//! At max speed, bars go out in batches as fast as the pipeline acknowledges them. Paced,
//! they go out one at a time, as a live feed would hand them over: market time runs
//! `factor` times faster than the wall clock from the first bar handed over.

use vigil_core::Timestamp;

/// How the replay is paced against the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// As fast as the pipeline accepts.
    Max,
    /// Market time runs `factor` times faster than the wall clock.
    Factor(f64),
}

/// The pacing of one replay: batch size, and the wall time each bar is due.
#[derive(Debug)]
pub(crate) struct Pacer {
    pacing: Pacing,
    batch_size: usize,
    /// The wall and market times of the first bar handed over, once paced.
    origin: Option<(Timestamp, Timestamp)>,
}

impl Pacer {
    /// Paces by `pacing`, `batch_size` bars per batch at max speed.
    pub(crate) fn new(pacing: Pacing, batch_size: usize) -> Self {
        Self {
            pacing,
            batch_size,
            origin: None,
        }
    }

    /// Bars per read.
    pub(crate) fn batch_size(&self) -> usize {
        match self.pacing {
            // Paced replays hand bars over one at a time, as a live feed would.
            Pacing::Factor(_) => 1,
            Pacing::Max => self.batch_size,
        }
    }

    /// The wall time at which a bar at market time `first` is due, `None` at max speed.
    /// The first bar paced is due at once (`wall_now`) and fixes the origin.
    pub(crate) fn due(&mut self, first: Timestamp, wall_now: Timestamp) -> Option<Timestamp> {
        let Pacing::Factor(factor) = self.pacing else {
            return None;
        };
        let (wall0, market0) = *self.origin.get_or_insert((wall_now, first));
        // Saturating: a factor or a gap the clock cannot hold is a deadline that never comes,
        // not a panic.
        let offset_ms = ((first - market0).num_milliseconds() as f64 / factor).round() as i64;
        Some(vigil_core::later(
            wall0,
            chrono::Duration::try_milliseconds(offset_ms).unwrap_or(chrono::Duration::MAX),
        ))
    }
}

#[cfg(test)]
mod tests {
    use vigil_testkit::timestamp as t;

    use super::*;

    #[test]
    fn at_max_speed_bars_go_in_batches_and_are_due_at_once() {
        let mut p = Pacer::new(Pacing::Max, 50);
        assert_eq!(p.batch_size(), 50);
        assert_eq!(
            p.due(t("2024-01-02T00:00:00Z"), t("2030-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn paced_bars_go_one_at_a_time_at_their_market_offset_divided_by_the_factor() {
        let mut p = Pacer::new(Pacing::Factor(3600.0), 50);
        assert_eq!(p.batch_size(), 1);
        let wall0 = t("2030-01-01T00:00:00Z");
        assert_eq!(p.due(t("2024-01-01T00:00:00Z"), wall0), Some(wall0));
        // A day of market time is 24 s of wall time, from the first bar's wall time.
        assert_eq!(
            p.due(t("2024-01-02T00:00:00Z"), t("2030-01-01T00:00:05Z")),
            Some(t("2030-01-01T00:00:24Z"))
        );
    }

    #[test]
    fn a_deadline_the_clock_cannot_hold_saturates_instead_of_panicking() {
        let mut p = Pacer::new(Pacing::Factor(1e-12), 1);
        let wall0 = t("2030-01-01T00:00:00Z");
        p.due(t("2024-01-01T00:00:00Z"), wall0);
        assert!(
            p.due(t("2024-06-01T00:00:00Z"), wall0)
                .is_some_and(|d| d > wall0)
        );
    }
}
