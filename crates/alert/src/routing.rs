//! Alert routing: which logged event becomes which alert.
//!
//! [`ROUTES`] is the whole answer, one row per event (two when a field decides): the rule
//! it raises or clears, the level it is raised at (the severity, unless
//! `[alerts.rules.<rule>]` says otherwise), the labels that tell one alert of the rule from
//! another, the headline and details a person reads, and what they must do. To find what
//! becomes of `data_outage`, search this file for `Event::DataOutage`.
//!
//! Headlines and detail values are templates: `{field}` is the event's field as logged
//! (empty when the event has none), `{field:pct}` a logged ratio as a percentage
//! (`0.1234` → `12.34%`).
//!
//! [`route`] applies the table to one event. The Monitor hands its own findings and what the
//! other agents log to it, and feeds the [`AlertInput`] to the engine. One alert comes from
//! no log line: [`undeliverable`], raised when a channel fails for good.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use vigil_core::Level;
use vigil_log::{Event, LogEvent, Value};

use crate::engine::Raise;

/// What an event means to the alert engine.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertInput {
    /// A condition holds.
    Raise(Raise),
    /// Something happened that has no "cleared" event of its own (an agent's fault): raised
    /// and cleared at once, so it resolves after `keep_firing_for` and the next one, later,
    /// is told again — while repeats within the hold-down stay one alert.
    Happened(Raise),
    /// A condition cleared.
    Clear {
        /// The rule that cleared.
        rule: String,
        /// The service that logged it.
        service: String,
        /// The labels of the alert that cleared.
        labels: BTreeMap<String, String>,
    },
    /// The post-close phase of this session date began (`None`: the date could not be
    /// read; the caller's market date): send the day's summary.
    PostClose(Option<NaiveDate>),
    /// The pre-market phase of this session date began: send what the quiet hours since
    /// the last summary kept for the digest, before the open.
    PreOpen(Option<NaiveDate>),
    /// The day's report was written: send it.
    DayReport(ReportFiles),
}

/// Where a written day report is, as its `day_report_written` line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFiles {
    /// The session it covers (`None`: the date could not be read; the caller's market date).
    pub date: Option<NaiveDate>,
    /// Its one-line summary.
    pub headline: String,
    /// The report as text.
    pub text: String,
    /// The equity and drawdown chart (PNG); empty when there is none.
    pub chart: String,
    /// The report as JSON.
    pub json: String,
}

/// What a row does with its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Raises the rule's alert: [`AlertInput::Raise`].
    Raise,
    /// Raises and clears at once: [`AlertInput::Happened`].
    Happened,
    /// Clears the rule's alert: [`AlertInput::Clear`].
    Clear,
    /// Sends the day's summary for the session date in this field: [`AlertInput::PostClose`].
    DaySummary {
        /// The field holding the session date (`YYYY-MM-DD`).
        date: &'static str,
    },
    /// Sends the digest of the quiet hours before this session date's open:
    /// [`AlertInput::PreOpen`].
    PreOpenSummary {
        /// The field holding the session date (`YYYY-MM-DD`).
        date: &'static str,
    },
    /// Sends the day report whose files the event names (fields `session`, `headline`,
    /// `text`, `chart`, `json`): [`AlertInput::DayReport`].
    DayReport,
}

/// The name of the rule a row raises or clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A built-in rule (see [`crate::BUILT_IN_RULES`]).
    Named(&'static str),
    /// The rule named in this field (the threshold rules of `config/rules.toml`).
    Field(&'static str),
}

/// The labels that tell one alert of a rule from another (they make the fingerprint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels {
    /// One alert per rule.
    None,
    /// One label, `name`, holding this event field.
    One {
        /// The label's name.
        name: &'static str,
        /// The field holding its value.
        field: &'static str,
    },
    /// The labels written in this field as `key=value,key=value` (empty: none).
    Written(&'static str),
}

/// The level an alert is raised at; the severity follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelFrom {
    /// The level the event was logged at.
    Logged,
    /// Always this level, whatever the event's.
    Fixed(Level),
}

/// When a row applies to an event of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// The event was logged at this level.
    LevelIs(Level),
    /// This field is the boolean `true`.
    Flag(&'static str),
    /// This field reads as this text.
    FieldIs(&'static str, &'static str),
    /// This field reads as this text, and the flag (third) is not `true`.
    FieldIsUnless(&'static str, &'static str, &'static str),
}

/// One fact in an alert's details: a name and a template for its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detail {
    /// What the fact is (`Current value`).
    pub name: &'static str,
    /// Its value, a template (`{value}`).
    pub value: &'static str,
    /// Left out when the value comes out empty.
    pub optional: bool,
}

/// A detail that is always shown.
const fn d(name: &'static str, value: &'static str) -> Detail {
    Detail {
        name,
        value,
        optional: false,
    }
}

/// One row of the table: what becomes of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The event.
    pub event: Event,
    /// When the row applies (the first row that applies wins).
    pub when: When,
    /// Raise, raise-and-clear, clear, or the day's summary.
    pub action: Action,
    /// The rule.
    pub rule: Rule,
    /// The level raised at (unused by a clear).
    pub level: LevelFrom,
    /// The labels.
    pub labels: Labels,
    /// The headline, a template (unused by a clear).
    pub headline: &'static str,
    /// The details, in order (unused by a clear).
    pub details: &'static [Detail],
    /// What the person must do (unused by a clear).
    pub you_need_to: &'static str,
}

impl Route {
    /// A row that clears `rule` when `event` is logged.
    const fn clear(event: Event, rule: &'static str, labels: Labels) -> Self {
        Self {
            event,
            when: When::Always,
            action: Action::Clear,
            rule: Rule::Named(rule),
            level: LevelFrom::Logged,
            labels,
            headline: "",
            details: &[],
            you_need_to: "",
        }
    }
}

/// Every event that becomes an alert, and how. Rows are tried in order; an event no row
/// applies to is not an alert.
pub const ROUTES: &[Route] = &[
    // The threshold rules of `config/rules.toml`, evaluated by the Monitor.
    Route {
        event: Event::ThresholdBreached,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Field("rule"),
        level: LevelFrom::Logged,
        labels: Labels::Written("label"),
        headline: "{metric} {value} {op} {threshold} (rule {rule})",
        details: &[
            d("Current value", "{value}"),
            d("Threshold", "{op} {threshold}"),
            d("Held for", "{for_s} s"),
            Detail {
                name: "Where",
                value: "{label}",
                optional: true,
            },
        ],
        you_need_to: "Check the figure named above now, then follow the runbook for this rule.",
    },
    Route {
        rule: Rule::Field("rule"),
        ..Route::clear(Event::ThresholdRecovered, "", Labels::Written("label"))
    },
    Route {
        event: Event::HeartbeatMissed,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("heartbeat_missed"),
        // High: a late heartbeat pages a person; it does not halt trading by itself (a
        // fatal fault does, `monitor.trip_breaker_on_agent_failure`). Raise it to critical
        // with `[alerts.rules.heartbeat_missed] severity = "critical"`.
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::One {
            name: "agent",
            field: "agent",
        },
        headline: "{agent} agent sent no heartbeat for {silent_ms} ms",
        details: &[
            d("Agent", "{agent}"),
            d("Last heartbeat", "{last_heartbeat}"),
            d("Timeout", "{timeout_ms} ms"),
        ],
        you_need_to: "Check whether the process is alive and the agent's thread is stuck (vigil status, the log); restart vigil if it does not recover.",
    },
    Route::clear(
        Event::HeartbeatRecovered,
        "heartbeat_missed",
        Labels::One {
            name: "agent",
            field: "agent",
        },
    ),
    Route {
        event: Event::AgentFailed,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("agent_failed"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "agent",
            field: "agent",
        },
        headline: "{agent} agent failed: {error}",
        details: &[
            d("Agent", "{agent}"),
            d("Error", "{error}"),
            d("Fatal", "{fatal}"),
        ],
        you_need_to: "Read the error, fix its cause, reconcile positions with the broker, then reset the breaker.",
    },
    Route {
        event: Event::AgentCrashed,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("agent_crashed"),
        // High: the supervisor restarts the agent by itself; a crash loop escalates to
        // `restart_intensity_exceeded`, which is Critical.
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::One {
            name: "agent",
            field: "agent",
        },
        headline: "{agent} agent crashed: {panic}",
        details: &[
            d("Agent", "{agent}"),
            d("Panic", "{panic}"),
            d("Where", "{location}"),
            d("Crashes in window", "{crashes_in_window}"),
            d("Restart in", "{backoff_ms} ms"),
        ],
        you_need_to: "The agent restarts by itself. Read the panic in the log and report it; if it crashes again, expect restart_intensity_exceeded and a halt.",
    },
    Route {
        event: Event::MonitorStalled,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("monitor_stalled"),
        // Told once the Monitor runs again (it sends every alert); while it hangs, the
        // outside heartbeat's silence is what pages.
        level: LevelFrom::Fixed(Level::Critical),
        labels: Labels::None,
        headline: "the monitor hung for {stalled_s} s: trading halted",
        details: &[
            d("Stalled for", "{stalled_s} s"),
            d("Action", "{action}"),
            d("Why", "{reason}"),
        ],
        you_need_to: "Find what held the Monitor (standard error, `vigil logs --since 1h --level warn`, the host's load); alerts and the outside heartbeat were silent meanwhile. When it is understood, `vigil ctl breaker reset --reason …`.",
    },
    Route {
        event: Event::RestartIntensityExceeded,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("restart_intensity_exceeded"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "agent",
            field: "agent",
        },
        headline: "{agent} agent is in a crash loop ({crashes_in_window} crashes, {policy}): breaker tripped",
        details: &[
            d("Agent", "{agent}"),
            d("Last panic", "{panic}"),
            d("Policy", "{policy}"),
            d("Action taken", "{action}"),
        ],
        you_need_to: "Trading is halted. Read the panics in the log, stop vigil (`vigil ctl shutdown`), fix or roll back, restart, reconcile, then `vigil ctl breaker reset --reason …`.",
    },
    Route {
        event: Event::LogSilent,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("log_silent"),
        level: LevelFrom::Logged,
        labels: Labels::None,
        headline: "no log line reached {log_dir} for {silent_s} s",
        details: &[
            d("Silent for", "{silent_s} s"),
            d("Window", "{window_s} s"),
            d("Market open", "{market_open}"),
        ],
        you_need_to: "Check the disk and the vigil process now: a system that cannot log is not safe to trade.",
    },
    Route::clear(Event::LogResumed, "log_silent", Labels::None),
    Route {
        event: Event::LogAnchorFailed,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("log_anchor_failed"),
        level: LevelFrom::Logged,
        labels: Labels::None,
        headline: "the log's anchor (seq {seq} in {file}) was not recorded in the store: {error}",
        details: &[
            d("Error", "{error}"),
            d("Failures this session", "{failures}"),
        ],
        you_need_to: "Check the store (disk, database server); until anchors are recorded again, `vigil logs verify` cannot detect lines cut from the end of the log or re-hashed.",
    },
    Route {
        event: Event::FleetPublishFailed,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("fleet_unreachable"),
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::None,
        headline: "this node cannot publish to the fleet ({url}): {error}",
        details: &[d("Error", "{error}"), d("Lines waiting", "{backlog}")],
        you_need_to: "Trading goes on; the fleet monitor does not see this node until it publishes again. Check the NATS server and the network to it (`nats-server` status, `vigil fleet status`); the node catches up from its log by itself.",
    },
    Route::clear(
        Event::FleetPublishRecovered,
        "fleet_unreachable",
        Labels::None,
    ),
    // The fleet's central monitor (`vigil fleet watch`): what it finds about the nodes.
    Route {
        event: Event::FleetNodeLost,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("fleet_node_lost"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "node",
            field: "node",
        },
        headline: "fleet node {node} is lost: its lease ran out {lease_age_s} s ago (lease {lease_s} s)",
        details: &[
            d("Node", "{node}"),
            d("Last line", "seq {last_seq} {last_event}"),
        ],
        you_need_to: "Nobody watches this node's trading now. Reach its host (`systemctl status vigil`, `vigil status` there); if the host is gone, check its broker account directly for open positions and orders, and flatten them at the broker if the node cannot come back.",
    },
    Route::clear(
        Event::FleetNodeBack,
        "fleet_node_lost",
        Labels::One {
            name: "node",
            field: "node",
        },
    ),
    Route::clear(
        Event::FleetNodeStopped,
        "fleet_node_lost",
        Labels::One {
            name: "node",
            field: "node",
        },
    ),
    Route {
        event: Event::FleetLinesMissing,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("fleet_lines_missing"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "node",
            field: "node",
        },
        headline: "{count} line(s) of fleet node {node}'s log are missing from the stream (seq {from} to {to})",
        details: &[d("Node", "{node}"), d("Missing", "seq {from} to {to}")],
        you_need_to: "Read the missing lines in the node's own log (`vigil logs query --dir …` on its host); if its retention removed them, note the hole. Check that the node's NATS link was not down longer than its log retention.",
    },
    Route {
        event: Event::FleetChainBroken,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("fleet_chain_broken"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "node",
            field: "node",
        },
        headline: "fleet node {node}'s log chain is broken at seq {seq}: {why}",
        details: &[
            d("Node", "{node}"),
            d("Line", "seq {seq}"),
            d("Why", "{why}"),
        ],
        you_need_to: "Run `vigil logs verify` on the node's host: a changed log, or two processes publishing under one `[fleet] node` name. Give every node its own name; treat an edited log as an incident.",
    },
    Route {
        event: Event::FleetStreamStalled,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("fleet_stream_stalled"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "node",
            field: "node",
        },
        headline: "the fleet monitor is {behind_s} s behind fleet node {node} (read seq {seen_seq}, the node published {lease_seq})",
        details: &[
            d("Node", "{node}"),
            d("Read up to", "seq {seen_seq}"),
            d("Published up to", "seq {lease_seq}"),
        ],
        you_need_to: "Check the NATS server (JetStream's store, its limits) and this monitor's host; `vigil fleet status` shows each node's lag.",
    },
    Route::clear(
        Event::FleetStreamResumed,
        "fleet_stream_stalled",
        Labels::One {
            name: "node",
            field: "node",
        },
    ),
    Route {
        event: Event::FleetWatchFailed,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("fleet_watch_blind"),
        level: LevelFrom::Logged,
        labels: Labels::None,
        headline: "the fleet monitor cannot read NATS ({url}): {error}",
        details: &[d("Error", "{error}")],
        you_need_to: "Until it reads NATS again nobody watches the fleet from here: a node that dies is not seen. Bring the NATS server back (`nats-server` status, its JetStream store); the nodes trade on and catch up by themselves.",
    },
    Route::clear(
        Event::FleetWatchRecovered,
        "fleet_watch_blind",
        Labels::None,
    ),
    // A node's own alert, once for the fleet however many nodes fire it.
    Route {
        event: Event::FleetNodeAlert,
        when: When::FieldIs("status", "firing"),
        action: Action::Raise,
        rule: Rule::Field("rule"),
        level: LevelFrom::Logged,
        labels: Labels::Written("labels"),
        headline: "{headline} (on {nodes})",
        details: &[d("Nodes", "{nodes}"), d("Headline", "{headline}")],
        you_need_to: "Follow the rule's runbook on each node named; the node's own alert carries the details.",
    },
    Route {
        when: When::FieldIs("status", "resolved"),
        rule: Rule::Field("rule"),
        ..Route::clear(Event::FleetNodeAlert, "", Labels::Written("labels"))
    },
    // The same event clears the alert when it says `recovered = true`.
    Route {
        when: When::Flag("recovered"),
        ..Route::clear(
            Event::ExternalHeartbeatFailed,
            "external_heartbeat_failed",
            Labels::None,
        )
    },
    Route {
        event: Event::ExternalHeartbeatFailed,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("external_heartbeat_failed"),
        level: LevelFrom::Logged,
        labels: Labels::None,
        headline: "outside heartbeat ping failed: {error}",
        details: &[d("Error", "{error}")],
        you_need_to: "Check this host's network; the outside monitor will page if pings stay missing.",
    },
    Route {
        event: Event::BreakerTripped,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("breaker_tripped"),
        // High, not Critical: Critical trips the breaker, which is already tripped.
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::None,
        headline: "circuit breaker tripped by {actor}: {reason}",
        details: &[
            d("From", "{from}"),
            d("Actor", "{actor}"),
            d("Reason", "{reason}"),
        ],
        you_need_to: "Find out why (the reason above, the alert that tripped it), fix it, reconcile, then `vigil ctl breaker reset --reason …`.",
    },
    Route::clear(Event::BreakerReset, "breaker_tripped", Labels::None),
    Route {
        event: Event::DrawdownControlEngaged,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("drawdown_control_engaged"),
        // High, not Critical: Critical trips the breaker, and a halt would stop the
        // deleveraging this control is doing. High still pages (sms, call, pagerduty).
        // `[alerts.rules.drawdown_control_engaged] severity = "critical"` halts instead.
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::None,
        headline: "drawdown {drawdown:pct} crossed the {line:pct} control line: no new position, deleveraging",
        details: &[
            d("Drawdown", "{drawdown:pct}"),
            d("Control line", "{line:pct}"),
            d("Today's P&L", "{day_pnl}"),
            d("Equity", "{equity}"),
            d("Peak equity", "{peak_equity}"),
            d("Actions taken", "{actions}"),
        ],
        you_need_to: "Check positions against the broker and why the strategy lost; deleveraging goes on by itself while the drawdown stays beyond the line. To trade normally again, `vigil ctl breaker reset --reason …` (re-arms the line from today's equity).",
    },
    Route::clear(
        Event::DrawdownControlRearmed,
        "drawdown_control_engaged",
        Labels::None,
    ),
    Route {
        event: Event::ReconciliationMismatch,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("reconciliation_mismatch"),
        // High, not Critical: Critical trips the breaker, and `on_mismatch` already says how
        // far trading is restricted (reduce-only by default, so positions can still be cut).
        // `[alerts.rules.reconciliation_mismatch] severity = "critical"` halts.
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::None,
        headline: "the books differ from the broker's: trading is {trading_state}",
        details: &[
            d("Differences", "{differences}"),
            d("Trading", "{trading_state}"),
            d("When", "{trigger}"),
        ],
        you_need_to: "Compare with the broker (`vigil reconcile`); find who traded or moved cash; when the books are right, `vigil ctl breaker reset --reason …`.",
    },
    Route {
        event: Event::OrdersPaused,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("orders_paused"),
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::None,
        headline: "venue {venue} unreachable: new orders are held and retried",
        details: &[
            d("Venue", "{venue}"),
            d("Error", "{error}"),
            d("Orders held", "{pending}"),
        ],
        you_need_to: "Check the broker's status page and this host's network; vigil retries with backoff, reconciles when the broker answers, then sends the held orders. `vigil ctl cancel-all` drops the held orders.",
    },
    Route::clear(Event::OrdersResumed, "orders_paused", Labels::None),
    Route {
        event: Event::SymbolQuarantined,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("symbol_quarantined"),
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::One {
            name: "symbol",
            field: "symbol",
        },
        headline: "{symbol} in quarantine: no new order in it, its bars are withheld",
        details: &[
            d("Symbol", "{symbol}"),
            d("Why", "{reason}"),
            d("By", "{actor}"),
        ],
        you_need_to: "Compare the price with another source or the exchange: a bad tick lifts by itself after release_after_bars calm bars; a real move too. To trade it now, `vigil ctl release SYMBOL --reason …`; to keep it out, `vigil ctl quarantine SYMBOL --reason …` (lifted only by command).",
    },
    Route::clear(
        Event::SymbolReleased,
        "symbol_quarantined",
        Labels::One {
            name: "symbol",
            field: "symbol",
        },
    ),
    Route {
        event: Event::DataSourceSwitched,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("data_source_switched"),
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::None,
        headline: "market data now from {to} (was {from})",
        details: &[
            d("From", "{from}"),
            d("To", "{to}"),
            d("By", "{actor}"),
            d("Why", "{reason}"),
        ],
        you_need_to: "Find out why the source failed (`vigil logs --event data_parse_failed`, the provider's status); trading goes on from the backup. When the primary is sound again, `vigil ctl switch-source NAME --reason …` switches back.",
    },
    Route {
        event: Event::DataOutage,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("data_outage"),
        level: LevelFrom::Fixed(Level::Critical),
        labels: Labels::None,
        headline: "no market data source is healthy: trading halted",
        details: &[
            d("Last source", "{provider}"),
            d("Sources", "{sources}"),
            d("Error", "{error}"),
            d("When it resumes", "{resume}"),
        ],
        you_need_to: "Check the feed's status and this host's network (`vigil logs --event data_source_failed`); vigil tries every source again with backoff. When good bars come back it reconciles the books with the broker; with after_outage = verify trading resumes if that passes, otherwise reset the breaker yourself after checking.",
    },
    Route::clear(Event::DataRecovered, "data_outage", Labels::None),
    Route {
        event: Event::DataVerified,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("data_verified"),
        level: LevelFrom::Logged,
        labels: Labels::None,
        headline: "market data back after an outage: {action}",
        details: &[
            d("Passed", "{passed}"),
            d("Report", "{report}"),
            d("Action", "{action}"),
        ],
        you_need_to: "If trading did not resume: read the report (`vigil logs --event data_verified`), check the books with `vigil reconcile`, then `vigil ctl breaker reset --reason …`.",
    },
    // The WARN form (the calendar cannot say) is in the log only.
    Route {
        event: Event::DataGap,
        when: When::LevelIs(Level::Error),
        action: Action::Happened,
        rule: Rule::Named("data_gap"),
        level: LevelFrom::Fixed(Level::Error),
        labels: Labels::One {
            name: "symbol",
            field: "symbol",
        },
        headline: "{symbol}: {missing} session(s) with no bar between {after} and {before}",
        details: &[
            d("Symbol", "{symbol}"),
            d("Source", "{provider}"),
            d("Missing sessions", "{sessions}"),
        ],
        you_need_to: "Check the data source for those sessions (`vigil logs --event data_gap`); the models ran across the hole. If the bars exist upstream, fill them into the source; if trading across the hole is not acceptable, `vigil ctl pause signal --reason …` until the models have warmed up again.",
    },
    Route {
        event: Event::ChecklistFailed,
        when: When::Always,
        action: Action::Raise,
        rule: Rule::Named("checklist_failed"),
        level: LevelFrom::Logged,
        labels: Labels::One {
            name: "checklist",
            field: "checklist",
        },
        headline: "{checklist} checklist failed: {failed}",
        details: &[
            d("Checklist", "{checklist}"),
            d("Session", "{session}"),
            d("Failed", "{failed}"),
            d("Action", "{action}"),
        ],
        you_need_to: "Fix what failed, then run `vigil checklist premarket` again before the open.",
    },
    Route::clear(
        Event::ChecklistCompleted,
        "checklist_failed",
        Labels::One {
            name: "checklist",
            field: "checklist",
        },
    ),
    Route {
        event: Event::ModelAutoRolledBack,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("model_rolled_back"),
        level: LevelFrom::Fixed(Level::Critical),
        labels: Labels::None,
        headline: "model {from} rolled back to {to}: {rule}",
        details: &[
            d("From", "{from}"),
            d("To", "{to}"),
            d("Rule", "{rule}"),
            d("Measured", "{value}"),
            d("Threshold", "{threshold}"),
        ],
        you_need_to: "The breaker is tripped, as for every Critical alert: the session trades {to} again once a person resets it (`vigil ctl breaker reset`). Find out why {from} failed (`vigil logs --event model_auto_rolled_back`, `vigil model shadow-report`); it is retired in the registry (`vigil model show`): a fix is a new version, released again.",
    },
    Route {
        event: Event::CanaryAborted,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("canary_aborted"),
        level: LevelFrom::Fixed(Level::Critical),
        labels: Labels::None,
        headline: "canary of {candidate} aborted at step {step}: {reason}",
        details: &[
            d("Release", "{release}"),
            d("Candidate", "{candidate}"),
            d("Step", "{step}"),
            d("Reason", "{reason}"),
            d("Unwind", "{unwind}"),
            d("By", "{by}"),
        ],
        you_need_to: "The breaker is tripped, as for every Critical alert: the session trades production alone once a person resets it (`vigil ctl breaker reset`). The candidate's weight is 0 and its positions were unwound by the rule shown; check the per-version sub-ledgers (`vigil ctl status`, `vigil logs --event sub_ledgers`). The abort is final: a fix is a new version and a new release.",
    },
    Route {
        event: Event::ModelDrifted,
        when: When::Always,
        action: Action::Happened,
        rule: Rule::Named("model_drifted"),
        level: LevelFrom::Fixed(Level::Warn),
        labels: Labels::One {
            name: "model",
            field: "model",
        },
        headline: "model {model} drifted from the data it was gated on",
        details: &[
            d("Model", "{model}"),
            d("Session", "{session}"),
            d("Bars judged", "{bars}"),
            d("Drifted", "{drifted}"),
        ],
        you_need_to: "Compare the market with the gate's data (`vigil logs --event model_drift_checked`); if the regime changed for good, retrain, register and release a new version; if trading on is not safe, `vigil ctl pause signal --reason …`.",
    },
    // Not an alert: the end of the trading day sends the day's summary.
    Route {
        when: When::FieldIs("phase", "post_close"),
        action: Action::DaySummary { date: "session" },
        ..Route::clear(Event::PhaseChanged, "", Labels::None)
    },
    // Not an alert: the day's report, once written after the close.
    Route {
        when: When::Always,
        action: Action::DayReport,
        ..Route::clear(Event::DayReportWritten, "", Labels::None)
    },
    // Not an alert: before the open, the digest of what the quiet hours kept. A pre-market
    // phase marked once the open had begun (a start or a wake-up in the session) sends
    // none: what was kept waits for the day's summary.
    Route {
        when: When::FieldIsUnless("phase", "premarket_validation", "caught_up"),
        action: Action::PreOpenSummary { date: "session" },
        ..Route::clear(Event::PhaseChanged, "", Labels::None)
    },
];

/// The rule a channel that fails for good raises (it has no log line of its own).
pub const UNDELIVERABLE: &str = "alert_undeliverable";

/// The alert that `channel` cannot deliver notices (`error`: its last error), raised by
/// `service` when a delivery gave up.
pub fn undeliverable(service: &str, channel: &str, error: String) -> Raise {
    Raise {
        rule: UNDELIVERABLE.into(),
        level: Level::Error,
        service: service.into(),
        labels: undeliverable_labels(channel),
        event: format!("the {channel} channel cannot deliver notices"),
        details: vec![("Channel".into(), channel.into()), ("Error".into(), error)],
        you_need_to:
            "Fix the channel's settings or the service behind it, then `vigil alerts test CHANNEL`."
                .into(),
    }
}

/// Clears [`undeliverable`] once `channel` delivers again.
pub fn delivered_again(service: &str, channel: &str) -> AlertInput {
    AlertInput::Clear {
        rule: UNDELIVERABLE.into(),
        service: service.into(),
        labels: undeliverable_labels(channel),
    }
}

fn undeliverable_labels(channel: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("channel".to_string(), channel.to_string())])
}

/// What `ev` means to the alert engine, by the first row of [`ROUTES`] that applies;
/// `None` for an event that is not an alert.
pub fn route(ev: &LogEvent) -> Option<AlertInput> {
    ROUTES
        .iter()
        .find(|r| r.event == ev.event && r.applies(ev))
        .map(|r| r.input(ev))
}

/// Every event some row of [`ROUTES`] acts on, once each, in table order.
pub fn routed_events() -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for r in ROUTES {
        if !out.contains(&r.event) {
            out.push(r.event);
        }
    }
    out
}

impl Route {
    fn applies(&self, ev: &LogEvent) -> bool {
        match self.when {
            When::Always => true,
            When::LevelIs(level) => ev.level == level,
            When::Flag(key) => matches!(ev.get(key), Some(Value::Bool(true))),
            When::FieldIs(key, text) => field(ev, key) == text,
            When::FieldIsUnless(key, text, flag) => {
                field(ev, key) == text && !matches!(ev.get(flag), Some(Value::Bool(true)))
            }
        }
    }

    /// The engine's input for `ev`, which this row applies to.
    pub fn input(&self, ev: &LogEvent) -> AlertInput {
        let service = ev.service.to_string();
        let rule = match self.rule {
            Rule::Named(name) => name.to_string(),
            Rule::Field(key) => field(ev, key),
        };
        let labels = match self.labels {
            Labels::None => BTreeMap::new(),
            Labels::One { name, field: key } => {
                BTreeMap::from([(name.to_string(), field(ev, key))])
            }
            Labels::Written(key) => label_map(&field(ev, key)),
        };
        let raise = || Raise {
            rule: rule.clone(),
            level: match self.level {
                LevelFrom::Logged => ev.level,
                LevelFrom::Fixed(level) => level,
            },
            service: service.clone(),
            labels: labels.clone(),
            event: fill(self.headline, ev),
            details: self
                .details
                .iter()
                .filter_map(|d| {
                    let value = fill(d.value, ev);
                    (!(d.optional && value.is_empty())).then(|| (d.name.to_string(), value))
                })
                .collect(),
            you_need_to: self.you_need_to.to_string(),
        };
        match self.action {
            Action::Raise => AlertInput::Raise(raise()),
            Action::Happened => AlertInput::Happened(raise()),
            Action::Clear => AlertInput::Clear {
                rule,
                service,
                labels,
            },
            Action::DaySummary { date } => {
                AlertInput::PostClose(field(ev, date).parse::<NaiveDate>().ok())
            }
            Action::PreOpenSummary { date } => {
                AlertInput::PreOpen(field(ev, date).parse::<NaiveDate>().ok())
            }
            Action::DayReport => AlertInput::DayReport(ReportFiles {
                date: field(ev, "session").parse::<NaiveDate>().ok(),
                headline: field(ev, "headline"),
                text: field(ev, "text"),
                chart: field(ev, "chart"),
                json: field(ev, "json"),
            }),
        }
    }
}

/// An event's field as text; empty when it has none.
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

/// Fills a template's `{field}` and `{field:pct}` from `ev`.
fn fill(template: &str, ev: &LogEvent) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            // Not a placeholder (the table's test keeps templates well formed).
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        match name.strip_suffix(":pct") {
            Some(key) => out.push_str(&ratio_pct(&field(ev, key))),
            None => out.push_str(&field(ev, name)),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
