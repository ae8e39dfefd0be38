//! The Monitor's alerting: what it hears (its own findings, and what other agents log,
//! through the log writer's tap), the alert engine, the dispatcher that delivers off its
//! thread, and the store that keeps the state across restarts.

use std::sync::Arc;

use actix::prelude::*;
use chrono::NaiveDate;
use vigil_alert::{
    Alert, AlertEngine, Channels, Delivery, DeliveryOutcome, DispatchConfig, Dispatcher,
    EngineState, Message as Notice, NextStep, Severity,
};
use vigil_config::AlertsConfig;
use vigil_core::{Level, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_store::{AlertLogEntry, SharedStore};

mod effects;
mod requests;

pub(crate) use effects::{Moment, Step};

/// What the Monitor needs to alert.
pub struct AlertLinks {
    /// `[alerts]`.
    pub config: AlertsConfig,
    /// The configured channels (built without network I/O: a channel that is down does not
    /// stop vigil from starting).
    pub channels: Channels,
    /// Where state, the notification log and operator requests live (`None`: memory only).
    pub store: Option<SharedStore>,
    /// The state a previous process saved.
    pub restored: Option<EngineState>,
    /// Operator requests made while vigil was not running: applied before anything else.
    pub pending: Vec<vigil_store::AlertRequest>,
}

impl std::fmt::Debug for AlertLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertLinks")
            .field("channels", &self.channels.names())
            .field("store", &self.store.as_ref().map(|s| s.location()))
            .finish_non_exhaustive()
    }
}

/// An event another agent logged, handed over by the log writer's tap (see [`TAPPED`]).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Logged(pub LogEvent);

/// The events other agents log that alerting acts on. The Monitor's own findings
/// (heartbeats, faults, the dead-man's switch, its threshold rules) reach alerting
/// directly, so that a stuck log writer cannot hide the alert about itself.
pub const TAPPED: &[Event] = &[
    Event::ThresholdBreached,
    Event::ThresholdRecovered,
    Event::BreakerTripped,
    Event::BreakerReset,
    Event::ChecklistFailed,
    Event::ChecklistCompleted,
    Event::DayReportWritten,
    Event::PhaseChanged,
    Event::AgentCrashed,
    Event::MonitorStalled,
    Event::DrawdownControlEngaged,
    Event::DrawdownControlRearmed,
    Event::ReconciliationMismatch,
    Event::OrdersPaused,
    Event::OrdersResumed,
    Event::DataGap,
    Event::SymbolQuarantined,
    Event::SymbolReleased,
    Event::DataSourceSwitched,
    Event::DataOutage,
    Event::DataRecovered,
    Event::DataVerified,
    Event::LogAnchorFailed,
    Event::FleetPublishFailed,
    Event::FleetPublishRecovered,
    Event::ModelAutoRolledBack,
    Event::ModelDrifted,
    Event::CanaryAborted,
];

/// A delivery attempt's outcome, from a dispatcher thread.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct Delivered(pub(crate) DeliveryOutcome);

/// The log level an alert at `severity` is logged at.
pub(crate) fn level_of(severity: Severity) -> Level {
    severity.level()
}

/// A line of the notification log.
pub(crate) fn entry(at: Timestamp, kind: &str, detail: String) -> AlertLogEntry {
    AlertLogEntry {
        seq: 0,
        at,
        kind: kind.to_string(),
        alert_id: None,
        rule: None,
        severity: None,
        channel: None,
        detail,
    }
}

pub(crate) fn alert_entry(at: Timestamp, kind: &str, a: &Alert, detail: String) -> AlertLogEntry {
    AlertLogEntry {
        alert_id: Some(a.id.clone()),
        rule: Some(a.rule.clone()),
        severity: Some(a.severity.as_str().to_string()),
        ..entry(at, kind, detail)
    }
}

/// What the persister task writes, in order.
#[derive(Debug)]
pub(crate) enum Persist {
    State(String, Timestamp),
    Log(Vec<AlertLogEntry>),
    Finish {
        seq: i64,
        at: Timestamp,
        ok: bool,
        result: String,
    },
}

/// The store could not be written or read.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct StoreFailed(pub(crate) String);

/// The alerting half of the Monitor.
pub(crate) struct Alerting {
    pub(crate) engine: AlertEngine,
    pub(crate) config: AlertsConfig,
    /// Until the Monitor starts the dispatcher (it needs the Monitor's address).
    pub(crate) channels: Option<Channels>,
    pub(crate) dispatcher: Option<Dispatcher>,
    pub(crate) store: Option<SharedStore>,
    pub(crate) persist: Option<tokio::sync::mpsc::UnboundedSender<Persist>>,
    pub(crate) persister: Option<tokio::task::JoinHandle<()>>,
    /// The state as last handed to the persister.
    saved: String,
    /// Notification-log lines not handed to the persister yet.
    pub(crate) lines: Vec<AlertLogEntry>,
    pub(crate) reading_requests: bool,
    /// The last session date whose summary was sent.
    pub(crate) summarized: Option<NaiveDate>,
    /// The last session date whose pre-open digest was sent.
    pub(crate) pre_opened: Option<NaiveDate>,
    /// The latest equity and today's P&L, for the details of every alert.
    pub(crate) equity: Option<(String, String)>,
    /// Requests read before the start, applied first.
    pub(crate) pending: Vec<vigil_store::AlertRequest>,
    /// The highest operator request applied by this process.
    last_request: i64,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("active", &self.engine.active().len())
            .finish_non_exhaustive()
    }
}

impl Alerting {
    pub(crate) fn new(links: AlertLinks) -> Self {
        let mut engine = AlertEngine::new(links.config.clone());
        if let Some(state) = links.restored {
            engine.restore(state);
        }
        Self {
            engine,
            config: links.config,
            channels: Some(links.channels),
            dispatcher: None,
            store: links.store,
            persist: None,
            persister: None,
            saved: String::new(),
            lines: Vec::new(),
            reading_requests: false,
            summarized: None,
            pre_opened: None,
            equity: None,
            pending: links.pending,
            last_request: 0,
        }
    }

    /// Starts the dispatcher (its sink reports to `monitor`) and the persister task.
    pub(crate) fn start(
        &mut self,
        delivered: Recipient<Delivered>,
        failed: Recipient<StoreFailed>,
    ) -> Result<(), String> {
        if let Some(store) = self.store.clone() {
            // Unbounded on purpose: the Monitor never waits on the store, alert changes are
            // rare, and none may be dropped.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Persist>();
            self.persist = Some(tx);
            self.persister = Some(actix::spawn(async move {
                while let Some(p) = rx.recv().await {
                    let res = match p {
                        Persist::State(json, at) => store.save_alert_state(&json, at).await,
                        Persist::Log(lines) => store.append_alert_log(&lines).await,
                        Persist::Finish {
                            seq,
                            at,
                            ok,
                            result,
                        } => store.finish_request(seq, at, ok, &result).await,
                    };
                    if let Err(e) = res {
                        failed.do_send(StoreFailed(e.to_string()));
                    }
                }
            }));
        }
        let channels = self.channels.take().unwrap_or_default();
        let dispatcher = Dispatcher::start(
            channels,
            DispatchConfig::from(&self.config.channels.delivery),
            move |outcome| delivered.do_send(Delivered(outcome)),
        )
        .map_err(|e| format!("cannot start the alert dispatcher: {e}"))?;
        self.dispatcher = Some(dispatcher);
        Ok(())
    }

    /// Hands changed state and new log lines to the persister.
    pub(crate) fn persist(&mut self, now: Timestamp) -> Result<(), String> {
        let Some(tx) = &self.persist else {
            self.lines.clear();
            return Ok(());
        };
        let state = serde_json::to_string(&self.engine.state())
            .map_err(|e| format!("cannot encode the alert state: {e}"))?;
        if !self.lines.is_empty() {
            tx.send(Persist::Log(std::mem::take(&mut self.lines)))
                .map_err(|_| "the alert store task has stopped".to_string())?;
        }
        if state != self.saved {
            tx.send(Persist::State(state.clone(), now))
                .map_err(|_| "the alert store task has stopped".to_string())?;
            self.saved = state;
        }
        Ok(())
    }

    pub(crate) fn finish(
        &self,
        seq: i64,
        at: Timestamp,
        ok: bool,
        result: String,
    ) -> Result<(), String> {
        match &self.persist {
            Some(tx) => tx
                .send(Persist::Finish {
                    seq,
                    at,
                    ok,
                    result,
                })
                .map_err(|_| "the alert store task has stopped".to_string()),
            None => Ok(()),
        }
    }

    /// The deliveries for a notice: one per configured channel of `channels`, each
    /// escalating along `[alerts.routing] escalation` when it fails for good. Returns the
    /// channels used and the ones named but not configured.
    pub(crate) fn deliveries(
        &self,
        message: &Arc<Notice>,
        channels: &[String],
    ) -> (Vec<Delivery>, Vec<String>, Vec<String>) {
        let Some(d) = &self.dispatcher else {
            return (Vec::new(), Vec::new(), channels.to_vec());
        };
        let configured = d.channels();
        let mut used = Vec::new();
        let mut unrouted = Vec::new();
        let mut out = Vec::new();
        for c in channels {
            let Some(route) = configured.route(c, &self.config.routing.escalation) else {
                unrouted.push(c.clone());
                continue;
            };
            used.push(c.clone());
            out.push(Delivery::new(Arc::clone(message), route));
        }
        (out, used, unrouted)
    }

    /// The severity a delivery outcome is logged at.
    pub(crate) fn outcome_level(outcome: &DeliveryOutcome) -> Level {
        match (&outcome.result, &outcome.next) {
            (Ok(()), _) => Level::Info,
            (Err(_), NextStep::RetryIn(_)) => Level::Warn,
            (Err(_), _) => Level::Error,
        }
    }
}
