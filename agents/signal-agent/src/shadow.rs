//! A release's candidate in shadow: it decides on every bar production decides on, through
//! its own predictors and the simulated venue of [`ShadowTracker`], and never sends an
//! order. Its figures are written to the store per exchange session (`vigil model
//! shadow-report` judges them), every `save_every_s` and when the flow ends, in one
//! transaction each, so that a restart, even after `kill -9`, goes on where the last save
//! left it (a replay of daily bars ends thousands of sessions a second: one write each
//! would cost more than the run).

use chrono::NaiveDate;
use tokio::sync::{mpsc, oneshot};
use vigil_calendar::Calendar;
use vigil_config::{RollbackConfig, ShadowConfig, SignalConfig};
use vigil_core::Timestamp;
use vigil_deploy::shadow::{ShadowSession, ShadowTracker, Wanted, resident_bytes};
use vigil_model::{Prediction, Predictor, RuntimeError};
use vigil_store::{ShadowSessionRow, SharedStore};

use crate::model::ActiveModel;

/// What the session hands the agent to run a release's candidate in shadow.
pub struct ShadowLinks {
    /// The release (its id in the store).
    pub release_id: i64,
    /// The candidate.
    pub model: ActiveModel,
    /// Production's label, as logged.
    pub production: String,
    /// The figures of the sessions run before, oldest first.
    pub stored: Vec<(NaiveDate, ShadowSession)>,
    /// `[release.shadow]`.
    pub config: ShadowConfig,
    /// `[release.rollback]`: the guard over the candidate once switched in.
    pub rollback: RollbackConfig,
    /// The exchange calendar: which session a bar belongs to.
    pub calendar: Calendar,
    /// Where the figures go.
    pub store: SharedStore,
    /// The release's canary: its stored step and weight, and `[release.canary]`.
    pub canary: crate::agent::CanaryLinks,
}

/// What the session hands the agent to watch the traded model's drift.
pub struct DriftLinks {
    /// The traded model's features and returns on the data it was gated on.
    pub baseline: vigil_deploy::drift::Baseline,
    /// `[release.drift]`.
    pub config: vigil_config::DriftConfig,
    /// The exchange calendar: which session a bar belongs to.
    pub calendar: Calendar,
}

impl std::fmt::Debug for DriftLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftLinks")
            .field("features", &self.baseline.features.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShadowLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowLinks")
            .field("release_id", &self.release_id)
            .field("candidate", &self.model.label())
            .finish_non_exhaustive()
    }
}

/// One write of sessions' figures (one transaction); `done` hears when it is over.
pub(crate) struct Save {
    pub(crate) rows: Vec<ShadowSessionRow>,
    pub(crate) done: Option<oneshot::Sender<Option<SaveFailed>>>,
}

/// A save the store refused: its rows, to keep for the next one, and why.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub(crate) struct SaveFailed {
    pub(crate) rows: Vec<ShadowSessionRow>,
    pub(crate) error: String,
}

/// What one bar of the shadow run came to, for the agent to log.
pub(crate) enum Noted {
    /// A session ended (seen at the first bar of the next, at `Timestamp`): its figures.
    Ended(NaiveDate, ShadowSession, Timestamp),
    /// The candidate failed, the first time in its session.
    Failed(NaiveDate, RuntimeError),
}

/// The candidate's side of the Signal agent.
pub(crate) struct Shadow {
    pub(crate) release_id: i64,
    /// The model's name (the release's).
    pub(crate) name: String,
    /// Paused by an operator: the candidate does not run.
    pub(crate) paused: bool,
    pub(crate) label: &'static str,
    pub(crate) production: String,
    model: ActiveModel,
    predictors: Vec<Predictor>,
    pub(crate) tracker: ShadowTracker,
    pub(crate) store: SharedStore,
    pub(crate) saver: Option<mpsc::UnboundedSender<Save>>,
    /// Sessions that ended since the last save.
    pub(crate) pending: Vec<ShadowSessionRow>,
    every: chrono::Duration,
    last_save: Option<Timestamp>,
    failed_in: Option<NaiveDate>,
    pub(crate) resumed_sessions: usize,
    /// Its figures are kept: off once a switch made it the model traded (the release is
    /// over; the model it replaced runs on warm, unrecorded).
    pub(crate) recording: bool,
    pub(crate) rollback: RollbackConfig,
    /// `[release.shadow]`, for the shadow report that lets a canary start.
    pub(crate) config: ShadowConfig,
    /// The canary (step 0: still in shadow).
    pub(crate) canary: crate::agent::CanaryRun,
    /// The candidate's wanted position on the last bar it decided (None: not warm, or it
    /// failed), for the canary's signals.
    pub(crate) last_position: Option<f64>,
    /// The candidate failed on the last bar it decided.
    pub(crate) last_failed: bool,
    /// The rollback guard over the candidate while it trades capital (a canary).
    pub(crate) canary_guard: Option<vigil_deploy::rollback::Guard>,
}

impl Shadow {
    pub(crate) fn new(links: ShadowLinks, symbols: usize, signal: &SignalConfig) -> Self {
        let tracker = ShadowTracker::resume(symbols, &links.config, &links.stored);
        Self {
            release_id: links.release_id,
            name: links.model.artifact().map_or_else(
                || links.model.label().to_string(),
                |a| a.manifest.name.clone(),
            ),
            paused: false,
            label: links.model.label(),
            production: links.production,
            predictors: (0..symbols)
                .map(|_| links.model.predictor(signal))
                .collect(),
            model: links.model,
            tracker,
            store: links.store,
            saver: None,
            pending: Vec::new(),
            // Validation bounds it to a day.
            every: chrono::Duration::seconds(links.config.save_every_s.min(86_400) as i64),
            last_save: None,
            failed_in: None,
            resumed_sessions: links.stored.len(),
            recording: true,
            rollback: links.rollback,
            canary: crate::agent::CanaryRun::new(links.canary, symbols, &links.stored),
            config: links.config,
            last_position: None,
            last_failed: false,
            canary_guard: None,
        }
    }

    /// Resumes after a pause: fresh predictors and simulated books (the bars missed would
    /// make the features and the returns span a gap).
    pub(crate) fn resume(&mut self, signal: &SignalConfig) {
        self.paused = false;
        self.rebuild(signal);
        self.tracker.forget_books();
    }

    /// Fresh predictors (after the agent crashed): they warm up again.
    pub(crate) fn rebuild(&mut self, signal: &SignalConfig) {
        let n = self.predictors.len();
        self.predictors = (0..n).map(|_| self.model.predictor(signal)).collect();
    }

    /// Trades places with the model the agent trades: `model` and `predictors` become this
    /// one's, warm, and this one runs on with the ones it gave up, unrecorded.
    pub(crate) fn swap(&mut self, model: &mut ActiveModel, predictors: &mut Vec<Predictor>) {
        std::mem::swap(&mut self.model, model);
        std::mem::swap(&mut self.predictors, predictors);
        self.label = self.model.label();
        self.recording = false;
    }

    /// Runs the candidate on one bar of `session` (its exchange date; `None`: not dated)
    /// beside production's `wanted`; returns what to log.
    pub(crate) fn bar(
        &mut self,
        at: Timestamp,
        session: Option<NaiveDate>,
        symbol: usize,
        close: f64,
        regime: f64,
        production: Option<Wanted>,
    ) -> Option<Noted> {
        if self.paused {
            return None; // the candidate does not run
        }
        let predictor = self.predictors.get_mut(symbol)?;
        let decided = predictor.update(close, regime);
        self.last_position = match &decided {
            Ok(Some(p)) => p.position,
            Ok(None) | Err(_) => None,
        };
        self.last_failed = decided.is_err();
        if !self.recording {
            return None; // kept warm for a switch back
        }
        if self.tracker.counted(at) {
            return None; // counted before a restart: the predictor warms on it, no more
        }
        let session = session?;
        let (candidate, failure) = match decided {
            Ok(p) => (Ok(p.as_ref().and_then(wanted)), None),
            Err(e) => (Err(()), Some(e)),
        };
        let ended = self
            .tracker
            .bar(session, at, symbol, close, production, candidate);
        if let Some((day, figures)) = ended {
            return Some(Noted::Ended(day, figures, at));
        }
        match failure {
            Some(e) if self.failed_in != Some(session) => {
                self.failed_in = Some(session);
                Some(Noted::Failed(session, e))
            }
            _ => None,
        }
    }

    /// The row of `session`'s figures.
    pub(crate) fn row(
        &self,
        session: NaiveDate,
        figures: &ShadowSession,
        now: Timestamp,
    ) -> Result<ShadowSessionRow, String> {
        Ok(ShadowSessionRow {
            release_id: self.release_id,
            session: session.to_string(),
            updated_at: now,
            figures: serde_json::to_string(figures)
                .map_err(|e| format!("cannot encode the shadow figures of {session}: {e}"))?,
        })
    }

    /// Whether the running session is due to be saved at `now`; notes the resident
    /// memory when it is (`Err`: it could not be read).
    pub(crate) fn due(&mut self, now: Timestamp) -> Option<Result<(), String>> {
        if !self.recording || self.last_save.is_some_and(|t| now - t < self.every) {
            return None;
        }
        self.last_save = Some(now);
        Some(resident_bytes().map(|b| self.tracker.resident(b)))
    }
}

/// What a model's prediction wants, when it wants a position.
pub(crate) fn wanted(p: &Prediction) -> Option<Wanted> {
    p.position.map(|position| Wanted {
        position,
        output: p.output,
    })
}
