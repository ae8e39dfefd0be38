//! A progress line on standard error for the long steps of a backtest, hidden when standard
//! error is not a terminal (indicatif draws nothing then), so scripts and CI see none.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::ProgressBar;

/// A spinner with a message, for one step.
pub(crate) struct Progress(ProgressBar);

impl Progress {
    /// Starts a step.
    pub(crate) fn new(message: impl Into<Cow<'static, str>>) -> Self {
        let bar = ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }

    /// Ends the step and clears its line.
    pub(crate) fn finish(self) {
        self.0.finish_and_clear();
    }
}
