//! The Monitor's alerting: what it hears (its own findings, and what other agents log,
//! through the log writer's tap), the alert engine, the dispatcher that delivers off its
//! thread, and the store that keeps the state across restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::NaiveDate;
use vigil_alert::{
    Alert, AlertEngine, Channels, Delivery, DeliveryOutcome, DispatchConfig, Dispatcher,
    EngineState, Message as Notice, NextStep, Raise, Severity,
};
use vigil_config::AlertsConfig;
use vigil_core::{Level, Timestamp};
use vigil_log::{Event, LogEvent, Value};
use vigil_store::{AlertLogEntry, SharedStore};

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

/// A ratio as logged (`0.1234`) shown as a percentage (`12.34%`); other text as it is.
fn ratio_pct(v: &str) -> String {
    v.parse::<rust_decimal::Decimal>().map_or_else(
        |_| v.to_string(),
        |d| {
            format!(
                "{}%",
                (d * rust_decimal::Decimal::ONE_HUNDRED)
                    .round_dp(2)
                    .normalize()
            )
        },
    )
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
    Event::PhaseChanged,
    Event::AgentCrashed,
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
];

/// A delivery attempt's outcome, from a dispatcher thread.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct Delivered(pub(crate) DeliveryOutcome);

/// What an event means to alerting.
#[derive(Debug, PartialEq)]
pub(crate) enum Input {
    /// A condition holds.
    Raise(Raise),
    /// Something happened that has no "cleared" event of its own (an agent's fault): raised
    /// and cleared at once, so it resolves after `keep_firing_for` and the next one, later,
    /// is told again — while repeats within the hold-down stay one alert.
    Happened(Raise),
    /// A condition cleared.
    Clear {
        rule: String,
        service: String,
        labels: BTreeMap<String, String>,
    },
    /// The post-close phase of this session date began: send the day's summary.
    PostClose(Option<NaiveDate>),
}

fn field(ev: &LogEvent, key: &str) -> String {
    ev.get(key).map(ToString::to_string).unwrap_or_default()
}

/// `agent=signal` → `{agent: signal}`; empty → none.
fn label_map(label: &str) -> BTreeMap<String, String> {
    label
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (!k.is_empty()).then(|| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn one(key: &str, value: String) -> BTreeMap<String, String> {
    BTreeMap::from([(key.to_string(), value)])
}

/// Maps an event to alerting's input; `None` for the events alerting does not act on.
pub(crate) fn input_of(ev: &LogEvent) -> Option<Input> {
    let service = ev.service.to_string();
    let raise = |rule: &str, level: Level, labels, event: String, details, todo: &str| {
        Some(Input::Raise(Raise {
            rule: rule.into(),
            level,
            service: service.clone(),
            labels,
            event,
            details,
            you_need_to: todo.into(),
        }))
    };
    let happened = |rule: &str, level: Level, labels, event: String, details, todo: &str| {
        Some(Input::Happened(Raise {
            rule: rule.into(),
            level,
            service: service.clone(),
            labels,
            event,
            details,
            you_need_to: todo.into(),
        }))
    };
    let clear = |rule: &str, labels| {
        Some(Input::Clear {
            rule: rule.into(),
            service: service.clone(),
            labels,
        })
    };
    match ev.event {
        Event::ThresholdBreached => {
            let rule = field(ev, "rule");
            let label = field(ev, "label");
            let headline = format!(
                "{} {} {} {} (rule {rule})",
                field(ev, "metric"),
                field(ev, "value"),
                field(ev, "op"),
                field(ev, "threshold"),
            );
            let mut details = vec![
                ("Current value".to_string(), field(ev, "value")),
                (
                    "Threshold".to_string(),
                    format!("{} {}", field(ev, "op"), field(ev, "threshold")),
                ),
                ("Held for".to_string(), format!("{} s", field(ev, "for_s"))),
            ];
            if !label.is_empty() {
                details.push(("Where".to_string(), label.clone()));
            }
            raise(
                &rule,
                ev.level,
                label_map(&label),
                headline,
                details,
                "Check the figure named above now, then follow the runbook for this rule.",
            )
        }
        Event::ThresholdRecovered => clear(&field(ev, "rule"), label_map(&field(ev, "label"))),
        Event::HeartbeatMissed => {
            let agent = field(ev, "agent");
            raise(
                "heartbeat_missed",
                // High: a late heartbeat pages a person; it does not halt trading by itself
                // (a fatal fault does, `monitor.trip_breaker_on_agent_failure`). Raise it to
                // critical with `[alerts.rules.heartbeat_missed] severity = "critical"`.
                Level::Error,
                one("agent", agent.clone()),
                format!(
                    "{agent} agent sent no heartbeat for {} ms",
                    field(ev, "silent_ms")
                ),
                vec![
                    ("Agent".into(), agent),
                    ("Last heartbeat".into(), field(ev, "last_heartbeat")),
                    ("Timeout".into(), format!("{} ms", field(ev, "timeout_ms"))),
                ],
                "Check whether the process is alive and the agent's thread is stuck (vigil status, the log); restart vigil if it does not recover.",
            )
        }
        Event::HeartbeatRecovered => clear("heartbeat_missed", one("agent", field(ev, "agent"))),
        Event::AgentFailed => {
            let agent = field(ev, "agent");
            happened(
                "agent_failed",
                ev.level,
                one("agent", agent.clone()),
                format!("{agent} agent failed: {}", field(ev, "error")),
                vec![
                    ("Agent".into(), agent),
                    ("Error".into(), field(ev, "error")),
                    ("Fatal".into(), field(ev, "fatal")),
                ],
                "Read the error, fix its cause, reconcile positions with the broker, then reset the breaker.",
            )
        }
        Event::AgentCrashed => {
            let agent = field(ev, "agent");
            happened(
                "agent_crashed",
                // High: the supervisor restarts the agent by itself; a crash loop escalates
                // to `restart_intensity_exceeded`, which is Critical.
                Level::Error,
                one("agent", agent.clone()),
                format!("{agent} agent crashed: {}", field(ev, "panic")),
                vec![
                    ("Agent".into(), agent),
                    ("Panic".into(), field(ev, "panic")),
                    ("Where".into(), field(ev, "location")),
                    ("Crashes in window".into(), field(ev, "crashes_in_window")),
                    (
                        "Restart in".into(),
                        format!("{} ms", field(ev, "backoff_ms")),
                    ),
                ],
                "The agent restarts by itself. Read the panic in the log and report it; if it crashes again, expect restart_intensity_exceeded and a halt.",
            )
        }
        Event::RestartIntensityExceeded => {
            let agent = field(ev, "agent");
            happened(
                "restart_intensity_exceeded",
                ev.level,
                one("agent", agent.clone()),
                format!(
                    "{agent} agent is in a crash loop ({} crashes, {}): breaker tripped",
                    field(ev, "crashes_in_window"),
                    field(ev, "policy")
                ),
                vec![
                    ("Agent".into(), agent),
                    ("Last panic".into(), field(ev, "panic")),
                    ("Policy".into(), field(ev, "policy")),
                    ("Action taken".into(), field(ev, "action")),
                ],
                "Trading is halted. Read the panics in the log, stop vigil (`vigil ctl shutdown`), fix or roll back, restart, reconcile, then `vigil ctl breaker reset --reason …`.",
            )
        }
        Event::LogSilent => raise(
            "log_silent",
            ev.level,
            BTreeMap::new(),
            format!(
                "no log line reached {} for {} s",
                field(ev, "log_dir"),
                field(ev, "silent_s")
            ),
            vec![
                ("Silent for".into(), format!("{} s", field(ev, "silent_s"))),
                ("Window".into(), format!("{} s", field(ev, "window_s"))),
                ("Market open".into(), field(ev, "market_open")),
            ],
            "Check the disk and the vigil process now: a system that cannot log is not safe to trade.",
        ),
        Event::LogResumed => clear("log_silent", BTreeMap::new()),
        Event::LogAnchorFailed => happened(
            "log_anchor_failed",
            ev.level,
            BTreeMap::new(),
            format!(
                "the log's anchor (seq {} in {}) was not recorded in the store: {}",
                field(ev, "seq"),
                field(ev, "file"),
                field(ev, "error")
            ),
            vec![
                ("Error".into(), field(ev, "error")),
                ("Failures this session".into(), field(ev, "failures")),
            ],
            "Check the store (disk, database server); until anchors are recorded again, `vigil logs verify` cannot detect lines cut from the end of the log or re-hashed.",
        ),
        Event::ExternalHeartbeatFailed => {
            if matches!(ev.get("recovered"), Some(Value::Bool(true))) {
                clear("external_heartbeat_failed", BTreeMap::new())
            } else {
                raise(
                    "external_heartbeat_failed",
                    ev.level,
                    BTreeMap::new(),
                    format!("outside heartbeat ping failed: {}", field(ev, "error")),
                    vec![("Error".into(), field(ev, "error"))],
                    "Check this host's network; the outside monitor will page if pings stay missing.",
                )
            }
        }
        Event::BreakerTripped => raise(
            "breaker_tripped",
            // High, not Critical: Critical trips the breaker, which is already tripped.
            Level::Error,
            BTreeMap::new(),
            format!(
                "circuit breaker tripped by {}: {}",
                field(ev, "actor"),
                field(ev, "reason")
            ),
            vec![
                ("From".into(), field(ev, "from")),
                ("Actor".into(), field(ev, "actor")),
                ("Reason".into(), field(ev, "reason")),
            ],
            "Find out why (the reason above, the alert that tripped it), fix it, reconcile, then `vigil ctl breaker reset --reason …`.",
        ),
        Event::BreakerReset => clear("breaker_tripped", BTreeMap::new()),
        Event::DrawdownControlEngaged => raise(
            "drawdown_control_engaged",
            // High, not Critical: Critical trips the breaker, and a halt would stop the
            // deleveraging this control is doing. High still pages (sms, call, pagerduty).
            // `[alerts.rules.drawdown_control_engaged] severity = "critical"` halts instead.
            Level::Error,
            BTreeMap::new(),
            format!(
                "drawdown {} crossed the {} control line: no new position, deleveraging",
                ratio_pct(&field(ev, "drawdown")),
                ratio_pct(&field(ev, "line"))
            ),
            vec![
                ("Drawdown".into(), ratio_pct(&field(ev, "drawdown"))),
                ("Control line".into(), ratio_pct(&field(ev, "line"))),
                ("Today's P&L".into(), field(ev, "day_pnl")),
                ("Equity".into(), field(ev, "equity")),
                ("Peak equity".into(), field(ev, "peak_equity")),
                ("Actions taken".into(), field(ev, "actions")),
            ],
            "Check positions against the broker and why the strategy lost; deleveraging goes on by itself while the drawdown stays beyond the line. To trade normally again, `vigil ctl breaker reset --reason …` (re-arms the line from today's equity).",
        ),
        Event::DrawdownControlRearmed => clear("drawdown_control_engaged", BTreeMap::new()),
        Event::ReconciliationMismatch => happened(
            "reconciliation_mismatch",
            // High, not Critical: Critical trips the breaker, and `on_mismatch` already says
            // how far trading is restricted (reduce-only by default, so positions can still
            // be cut). `[alerts.rules.reconciliation_mismatch] severity = "critical"` halts.
            Level::Error,
            BTreeMap::new(),
            format!(
                "the books differ from the broker's: trading is {}",
                field(ev, "trading_state")
            ),
            vec![
                ("Differences".into(), field(ev, "differences")),
                ("Trading".into(), field(ev, "trading_state")),
                ("When".into(), field(ev, "trigger")),
            ],
            "Compare with the broker (`vigil reconcile`); find who traded or moved cash; when the books are right, `vigil ctl breaker reset --reason …`.",
        ),
        Event::OrdersPaused => raise(
            "orders_paused",
            Level::Error,
            BTreeMap::new(),
            format!(
                "venue {} unreachable: new orders are held and retried",
                field(ev, "venue")
            ),
            vec![
                ("Venue".into(), field(ev, "venue")),
                ("Error".into(), field(ev, "error")),
                ("Orders held".into(), field(ev, "pending")),
            ],
            "Check the broker's status page and this host's network; vigil retries with backoff, reconciles when the broker answers, then sends the held orders. `vigil ctl cancel-all` drops the held orders.",
        ),
        Event::OrdersResumed => clear("orders_paused", BTreeMap::new()),
        Event::SymbolQuarantined => raise(
            "symbol_quarantined",
            Level::Error,
            one("symbol", field(ev, "symbol")),
            format!(
                "{} in quarantine: no new order in it, its bars are withheld",
                field(ev, "symbol")
            ),
            vec![
                ("Symbol".into(), field(ev, "symbol")),
                ("Why".into(), field(ev, "reason")),
                ("By".into(), field(ev, "actor")),
            ],
            "Compare the price with another source or the exchange: a bad tick lifts by itself after release_after_bars calm bars; a real move too. To trade it now, `vigil ctl release SYMBOL --reason …`; to keep it out, `vigil ctl quarantine SYMBOL --reason …` (lifted only by command).",
        ),
        Event::SymbolReleased => clear("symbol_quarantined", one("symbol", field(ev, "symbol"))),
        Event::DataSourceSwitched => happened(
            "data_source_switched",
            Level::Error,
            BTreeMap::new(),
            format!(
                "market data now from {} (was {})",
                field(ev, "to"),
                field(ev, "from")
            ),
            vec![
                ("From".into(), field(ev, "from")),
                ("To".into(), field(ev, "to")),
                ("By".into(), field(ev, "actor")),
                ("Why".into(), field(ev, "reason")),
            ],
            "Find out why the source failed (`vigil logs --event data_parse_failed`, the provider's status); trading goes on from the backup. When the primary is sound again, `vigil ctl switch-source NAME --reason …` switches back.",
        ),
        Event::DataOutage => raise(
            "data_outage",
            Level::Critical,
            BTreeMap::new(),
            "no market data source is healthy: trading halted".to_string(),
            vec![
                ("Last source".into(), field(ev, "provider")),
                ("Sources".into(), field(ev, "sources")),
                ("Error".into(), field(ev, "error")),
                ("When it resumes".into(), field(ev, "resume")),
            ],
            "Check the feed's status and this host's network (`vigil logs --event data_source_failed`); vigil tries every source again with backoff. When good bars come back it reconciles the books with the broker; with after_outage = verify trading resumes if that passes, otherwise reset the breaker yourself after checking.",
        ),
        Event::DataRecovered => clear("data_outage", BTreeMap::new()),
        Event::DataVerified => happened(
            "data_verified",
            ev.level,
            BTreeMap::new(),
            format!("market data back after an outage: {}", field(ev, "action")),
            vec![
                ("Passed".into(), field(ev, "passed")),
                ("Report".into(), field(ev, "report")),
                ("Action".into(), field(ev, "action")),
            ],
            "If trading did not resume: read the report (`vigil logs --event data_verified`), check the books with `vigil reconcile`, then `vigil ctl breaker reset --reason …`.",
        ),
        // The WARN form (the calendar cannot say) is in the log only.
        Event::DataGap if ev.level == Level::Error => happened(
            "data_gap",
            Level::Error,
            one("symbol", field(ev, "symbol")),
            format!(
                "{}: {} session(s) with no bar between {} and {}",
                field(ev, "symbol"),
                field(ev, "missing"),
                field(ev, "after"),
                field(ev, "before")
            ),
            vec![
                ("Symbol".into(), field(ev, "symbol")),
                ("Source".into(), field(ev, "provider")),
                ("Missing sessions".into(), field(ev, "sessions")),
            ],
            "Check the data source for those sessions (`vigil logs --event data_gap`); the models ran across the hole. If the bars exist upstream, fill them into the source; if trading across the hole is not acceptable, `vigil ctl pause signal --reason …` until the models have warmed up again.",
        ),
        Event::ChecklistFailed => {
            let list = field(ev, "checklist");
            raise(
                "checklist_failed",
                ev.level,
                one("checklist", list.clone()),
                format!("{list} checklist failed: {}", field(ev, "failed")),
                vec![
                    ("Checklist".into(), list.clone()),
                    ("Session".into(), field(ev, "session")),
                    ("Failed".into(), field(ev, "failed")),
                    ("Action".into(), field(ev, "action")),
                ],
                "Fix what failed, then run `vigil checklist premarket` again before the open.",
            )
        }
        Event::ChecklistCompleted => {
            clear("checklist_failed", one("checklist", field(ev, "checklist")))
        }
        Event::PhaseChanged if field(ev, "phase") == "post_close" => Some(Input::PostClose(
            field(ev, "session").parse::<NaiveDate>().ok(),
        )),
        _ => None,
    }
}

/// The log level an alert at `severity` is logged at.
pub(crate) fn level_of(severity: Severity) -> Level {
    match severity {
        Severity::Low => Level::Info,
        Severity::Medium => Level::Warn,
        Severity::High => Level::Error,
        Severity::Critical => Level::Critical,
    }
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
    /// The latest equity and today's P&L, for the details of every alert.
    pub(crate) equity: Option<(String, String)>,
    /// Requests read before the start, applied first.
    pub(crate) pending: Vec<vigil_store::AlertRequest>,
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
            equity: None,
            pending: links.pending,
        }
    }

    /// Starts the dispatcher (its sink reports to `monitor`) and the persister task.
    pub(crate) fn start(
        &mut self,
        delivered: Recipient<Delivered>,
        failed: Recipient<StoreFailed>,
    ) -> Result<(), String> {
        if let Some(store) = self.store.clone() {
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
            if !configured.contains(c) {
                unrouted.push(c.clone());
                continue;
            }
            let route: Vec<String> = std::iter::once(c.clone())
                .chain(
                    self.config
                        .routing
                        .escalation
                        .iter()
                        .filter(|e| *e != c && configured.contains(e))
                        .cloned(),
                )
                .collect();
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
