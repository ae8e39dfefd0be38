//! The input waiting in stream order: signal batches, cut at their signals into segments
//! for the Execution agent, and the end of the stream. The actor takes one [`Step`] at a
//! time and does its I/O; while it waits for a book it takes none, so decisions stay in
//! stream order.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use vigil_core::{Signal, Timestamp};
use vigil_messages::{Flow, PhaseMark, Segment, SignalBatch, StopReason};

/// Work waiting in stream order.
#[derive(Debug)]
enum Pending {
    Batch {
        batch: SignalBatch,
        next_signal: usize,
        cursor: usize,
        next_phase: usize,
    },
    End(StopReason),
}

/// What to do next, in this order: hand the segment on, apply the schedule phases
/// `phases[due]`, then the rest.
#[derive(Debug)]
pub(crate) enum Step {
    /// The bars up to and including a signal's bar; then ask for the book and decide.
    Decide {
        segment: Segment,
        phases: Arc<[PhaseMark]>,
        due: Range<usize>,
        signal: Signal,
        /// Wall time the signal's bar arrived at the Data agent.
        arrived_at: Option<Timestamp>,
    },
    /// The rest of a batch after its last signal; `last_bar` is the time of its last bar.
    Rest {
        segment: Segment,
        phases: Arc<[PhaseMark]>,
        due: Range<usize>,
        last_bar: Option<Timestamp>,
    },
    /// The input ended.
    End(StopReason),
}

/// The first phase of `phases[from..]` that begins after bar `upto`.
fn due_until(phases: &[PhaseMark], from: usize, upto: usize) -> usize {
    let mut i = from;
    while phases.get(i).is_some_and(|m| m.before <= upto) {
        i += 1;
    }
    i
}

/// Batches and the end, in the order they came.
#[derive(Debug, Default)]
pub(crate) struct StreamQueue {
    queue: VecDeque<Pending>,
    /// Signals at or before this time were decided by the previous run (after a restart):
    /// their bars warm the models up, and they are not decided again.
    pub(crate) resume_after: Option<Timestamp>,
}

impl StreamQueue {
    /// Queues a batch or the end.
    pub(crate) fn push(&mut self, flow: Flow<SignalBatch>) {
        self.queue.push_back(match flow {
            Flow::Data(batch) => Pending::Batch {
                batch,
                next_signal: 0,
                cursor: 0,
                next_phase: 0,
            },
            Flow::End(reason) => Pending::End(reason),
        });
    }

    /// Batches (or the end) not yet done.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Takes the next step, or `None` when nothing waits.
    pub(crate) fn next_step(&mut self) -> Option<Step> {
        loop {
            let front = self.queue.front_mut()?;
            let Pending::Batch {
                batch,
                next_signal,
                cursor,
                next_phase,
            } = front
            else {
                let Some(Pending::End(reason)) = self.queue.pop_front() else {
                    unreachable!("the front is the end");
                };
                return Some(Step::End(reason));
            };
            let resume_after = self.resume_after;
            if batch
                .signals
                .get(*next_signal)
                .is_some_and(|(_, s)| resume_after.is_some_and(|t| s.at <= t))
            {
                // Decided by the previous run: its bar only warms the models up.
                *next_signal += 1;
                continue;
            }
            let segment = |range, last| Segment {
                batch_id: batch.id,
                bars: batch.bars.clone(),
                range,
                last,
                phases: batch.phases.clone(),
            };
            let from = *next_phase;
            let Some((idx, signal)) = batch.signals.get(*next_signal).cloned() else {
                // No signal left: the rest of the batch goes out as its last segment.
                let step = Step::Rest {
                    segment: segment(*cursor..batch.bars.len(), true),
                    phases: batch.phases.clone(),
                    due: from..due_until(&batch.phases, from, usize::MAX),
                    last_bar: batch.bars.last().map(|b| b.ts),
                };
                self.queue.pop_front();
                return Some(step);
            };
            let step = Step::Decide {
                segment: segment(*cursor..idx + 1, false),
                phases: batch.phases.clone(),
                // The schedule as it stands at the signal's bar.
                due: from..due_until(&batch.phases, from, idx),
                signal,
                arrived_at: batch.arrived_at,
            };
            *cursor = idx + 1;
            *next_signal += 1;
            if let Step::Decide { due, .. } = &step {
                *next_phase = due.end;
            }
            return Some(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_calendar::Phase;
    use vigil_core::{Bar, Direction, Regime};

    use super::*;
    use crate::fixtures::{bars, signal};

    fn bar(i: usize) -> Bar {
        bars(0, 5)[i]
    }

    fn mark(before: usize, phase: Phase) -> PhaseMark {
        PhaseMark {
            before,
            phase,
            at: bar(before).ts,
            blocked: false,
        }
    }

    /// Five bars with signals at bars 1 and 3, the open before bar 0 and the close before
    /// bar 4.
    fn batch() -> Flow<SignalBatch> {
        let bars = bars(0, 5);
        let signals = [1, 3]
            .iter()
            .map(|&i| (i, signal(&bars[i], Direction::Long)))
            .collect();
        Flow::Data(SignalBatch {
            id: 7,
            regimes: vec![Regime::Trending; bars.len()].into(),
            bars,
            signals,
            phases: Arc::from([mark(0, Phase::TradingActive), mark(4, Phase::CloseOnly)]),
            arrived_at: None,
        })
    }

    /// A step in short form: the segment's range and last flag, the phases due, and what
    /// follows.
    fn short(step: Step) -> String {
        match step {
            Step::Decide {
                segment,
                due,
                signal,
                ..
            } => format!(
                "{:?} last={} phases {due:?} decide {}",
                segment.range, segment.last, signal.at
            ),
            Step::Rest {
                segment,
                due,
                last_bar,
                ..
            } => format!(
                "{:?} last={} phases {due:?} rest {last_bar:?}",
                segment.range, segment.last
            ),
            Step::End(reason) => format!("end {}", reason.as_str()),
        }
    }

    #[test]
    fn a_batch_is_cut_at_its_signals_and_phases_apply_at_their_bars() {
        let mut q = StreamQueue::default();
        q.push(batch());
        q.push(Flow::End(StopReason::EndOfData));
        assert_eq!(q.len(), 2);
        let steps: Vec<String> = std::iter::from_fn(|| q.next_step()).map(short).collect();
        assert_eq!(
            steps,
            vec![
                format!("0..2 last=false phases 0..1 decide {}", bar(1).ts),
                format!("2..4 last=false phases 1..1 decide {}", bar(3).ts),
                format!("4..5 last=true phases 1..2 rest Some({:?})", bar(4).ts),
                "end end_of_data".to_string(),
            ]
        );
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn signals_the_previous_run_decided_are_not_decided_again() {
        let mut q = StreamQueue {
            resume_after: Some(bar(1).ts),
            ..StreamQueue::default()
        };
        q.push(batch());
        let steps: Vec<String> = std::iter::from_fn(|| q.next_step()).map(short).collect();
        assert_eq!(
            steps,
            vec![
                format!("0..4 last=false phases 0..1 decide {}", bar(3).ts),
                format!("4..5 last=true phases 1..2 rest Some({:?})", bar(4).ts),
            ]
        );
    }
}
