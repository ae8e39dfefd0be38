//! Rejected messages of a streaming source: counted, and too many fail the source.
//!
//! A streaming provider rejects a message its parser cannot trust and reads on. The source
//! counts as failed when `max_in_a_row` messages in a row were rejected (no good bar
//! between), or, when watched, when more than `max_pct` percent of its last `window`
//! messages were.

use std::collections::VecDeque;

/// The share of rejected messages among the last `window` a source sent.
#[derive(Debug)]
pub(crate) struct ParseRate {
    window: usize,
    max_pct: f64,
    recent: VecDeque<bool>,
    rejected: usize,
}

impl ParseRate {
    pub(crate) fn new(window: usize, max_pct: f64) -> Self {
        Self {
            window: window.max(1),
            max_pct,
            recent: VecDeque::with_capacity(window.max(1)),
            rejected: 0,
        }
    }

    /// Counts one message; says, once the window is full and the share of rejected ones is
    /// above the bound, how many of how many were rejected.
    pub(crate) fn push(&mut self, rejected: bool) -> Option<(usize, usize)> {
        if self.recent.len() == self.window && self.recent.pop_front() == Some(true) {
            self.rejected -= 1;
        }
        self.recent.push_back(rejected);
        self.rejected += usize::from(rejected);
        let full = self.recent.len() == self.window;
        (full && self.rejected as f64 * 100.0 > self.max_pct * self.window as f64)
            .then_some((self.rejected, self.window))
    }

    fn reset(&mut self) {
        self.recent.clear();
        self.rejected = 0;
    }
}

/// The rejected messages of the source in use.
#[derive(Debug)]
pub(crate) struct ParseErrors {
    /// Messages rejected since start (each an ERROR line with its payload).
    count: u64,
    /// Rejected in a row, and how many in a row fail the source.
    in_a_row: u32,
    max_in_a_row: u32,
    /// The parse-error rate of the source in use, when watched.
    rate: Option<ParseRate>,
}

impl Default for ParseErrors {
    fn default() -> Self {
        Self {
            count: 0,
            in_a_row: 0,
            max_in_a_row: 5,
            rate: None,
        }
    }
}

impl ParseErrors {
    /// Fails the source after `in_a_row` rejected messages in a row (at least 1).
    pub(crate) fn set_limit(&mut self, in_a_row: u32) {
        self.max_in_a_row = in_a_row.max(1);
    }

    /// Fails the source when more than `max_pct` percent of its last `window` messages
    /// were rejected (0: off).
    pub(crate) fn set_rate(&mut self, window: usize, max_pct: f64) {
        self.rate = (max_pct > 0.0).then(|| ParseRate::new(window, max_pct));
    }

    /// Messages rejected since start.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Messages rejected in a row.
    pub(crate) fn in_a_row(&self) -> u32 {
        self.in_a_row
    }

    /// A message rejected (`detail`: why): says why the source fails, if it now does.
    pub(crate) fn rejected(&mut self, detail: &str) -> Option<String> {
        self.count += 1;
        self.in_a_row += 1;
        let rate = self.rate.as_mut().and_then(|r| r.push(true));
        if self.in_a_row >= self.max_in_a_row {
            Some(format!(
                "{} messages in a row rejected by the feed's parser (the format changed?); the \
                 last: {detail}",
                self.in_a_row
            ))
        } else {
            rate.map(|(rejected, window)| {
                format!(
                    "{rejected} of the last {window} messages rejected by the feed's parser \
                     (above [data.feed] max_parse_error_pct); the last: {detail}"
                )
            })
        }
    }

    /// `messages` good messages read.
    pub(crate) fn good(&mut self, messages: usize) {
        if let Some(rate) = &mut self.rate {
            for _ in 0..messages {
                // A good message cannot push the rate over its bound.
                rate.push(false);
            }
        }
    }

    /// Valid bars arrived: the count in a row starts again.
    pub(crate) fn bars_arrived(&mut self) {
        self.in_a_row = 0;
    }

    /// Another source is in use: its count starts afresh.
    pub(crate) fn switched(&mut self) {
        self.in_a_row = 0;
        if let Some(rate) = &mut self.rate {
            rate.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parse_error_rate_counts_over_a_full_window_only() {
        let mut rate = ParseRate::new(10, 20.0);
        for _ in 0..3 {
            assert_eq!(rate.push(true), None, "the window is not full yet");
        }
        for _ in 0..6 {
            assert_eq!(rate.push(false), None);
        }
        // 3 of 10: above 20 %.
        assert_eq!(rate.push(false), Some((3, 10)));
        // The three rejections slide out of the window: none of the last 10.
        for _ in 0..3 {
            assert_eq!(rate.push(false), None);
        }
        assert_eq!(rate.push(true), None);
        assert_eq!(rate.push(true), None, "2 of 10 is not above 20 %");
        assert_eq!(rate.push(true), Some((3, 10)));
    }

    #[test]
    fn too_many_rejected_in_a_row_fail_the_source_and_a_valid_bar_starts_the_count_again() {
        let mut p = ParseErrors::default();
        p.set_limit(2);
        assert_eq!(p.rejected("bad"), None);
        p.bars_arrived();
        assert_eq!(p.rejected("bad"), None);
        let failed = p.rejected("worse").expect("two in a row");
        assert!(failed.starts_with("2 messages in a row"), "{failed}");
        assert!(failed.ends_with("the last: worse"), "{failed}");
        assert_eq!(p.count(), 3);
        p.switched();
        assert_eq!(p.in_a_row(), 0);
    }

    #[test]
    fn a_rate_above_its_bound_fails_the_source_once_the_window_is_full() {
        let mut p = ParseErrors::default();
        p.set_limit(100);
        p.set_rate(4, 25.0);
        assert_eq!(p.rejected("a"), None);
        p.good(2);
        let failed = p.rejected("b").expect("2 of 4 is above 25 %");
        assert!(failed.starts_with("2 of the last 4 messages"), "{failed}");
        p.switched();
        assert_eq!(
            p.rejected("c"),
            None,
            "a new source starts with an empty window"
        );
    }
}
