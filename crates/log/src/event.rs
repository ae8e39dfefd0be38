//! The event catalogue and the typed log event.

use std::borrow::Cow;
use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_core::{Level, Regime, Timestamp, TraceId};

macro_rules! catalogue {
    ($($variant:ident => $name:literal, $level:ident, $doc:literal;)*) => {
        /// Every event vigil logs. The names are a contract: tools and runbooks match on them.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum Event {
            $(#[doc = $doc] $variant,)*
        }

        impl Event {
            /// Every event, in catalogue order.
            pub const ALL: &'static [Event] = &[$(Event::$variant,)*];

            /// Returns the event's name as written in the `event` field.
            pub fn name(self) -> &'static str {
                match self { $(Event::$variant => $name,)* }
            }

            /// Returns the level the event is normally logged at.
            pub fn level(self) -> Level {
                match self { $(Event::$variant => Level::$level,)* }
            }

            /// Returns a one-line description.
            pub fn description(self) -> &'static str {
                match self { $(Event::$variant => $doc,)* }
            }
        }
    };
}

catalogue! {
    SessionStarted => "session_started", Info, "A trading session started: config, data, venue.";
    SessionStopped => "session_stopped", Info, "A trading session stopped: why, and the summary figures.";
    AgentStarted => "agent_started", Info, "An agent started.";
    AgentStopped => "agent_stopped", Info, "An agent stopped after finishing its input.";
    AgentFailed => "agent_failed", Critical, "An agent hit an error it cannot continue from.";
    HeartbeatMissed => "heartbeat_missed", Critical, "An agent sent no heartbeat within the timeout.";
    HeartbeatRecovered => "heartbeat_recovered", Warn, "An agent that had missed heartbeats reported again.";
    CommandReceived => "command_received", Info, "The Monitor received an operator or rule command.";
    CommandApplied => "command_applied", Warn, "An operator or rule command was carried out; data.outcome says what changed.";
    CommandRefused => "command_refused", Warn, "An operator or rule command was refused; data.error says why.";
    ControlCommand => "control_command", Warn, "An operator's command over the control API (or a fleet command: remote `fleet`) was carried out or refused: data.who, command, argument, reason, remote, status, outcome or error; kept in the store's audit (data.audit_seq).";
    ControlUnauthorized => "control_unauthorized", Warn, "A control API request without a valid bearer token was refused (401): data.remote, method, path, why; the presented token is never logged.";
    DashboardRequestFailed => "dashboard_request_failed", Warn, "A dashboard request could not be answered: its data could not be read or its action recorded (503), or vigil itself failed (500, at ERROR); data.what (the registry, the drill runs, the fleet from NATS, the journal …), error, status.";
    ControlLogin => "control_login", Info, "A dashboard login (/ui/login): data.who, role (operator or viewer), remote.";
    ControlRequestInvalid => "control_request_invalid", Warn, "An authenticated control API request was malformed (400): data.remote, method, path, error.";
    ControlTokenRotated => "control_token_rotated", Warn, "The control API's bearer token was replaced; only the new one is accepted: data.who, remote, file.";
    ControlAuditFailed => "control_audit_failed", Error, "A control API command could not be recorded in the store's audit: data.command, error (the command is refused when it cannot be recorded first).";
    ControlInsecureRemote => "control_insecure_remote", Critical, "The control API serves plain HTTP on a non-loopback address (control.allow_insecure_remote): the bearer token crosses the network in clear text.";
    AgentPaused => "agent_paused", Warn, "An agent was paused (the Signal agent stops emitting).";
    AgentResumed => "agent_resumed", Info, "A paused agent resumed.";
    DataSourceConnected => "data_source_connected", Info, "A data provider connected and subscribed.";
    DataSourceExhausted => "data_source_exhausted", Info, "A replayed data source delivered its last bar.";
    DataVolumeUnknown => "data_volume_unknown", Warn, "A data file has no volume column: its bars' volume is unknown (not zero), and the paper venue fills on them without a volume cap (execution.max_volume_participation does not apply); logged once per file at start; data.symbol, source.";
    DataSourceFailed => "data_source_failed", Error, "A data provider could not connect, or its stream broke.";
    DataSourceProbed => "data_source_probed", Info, "Before the switch back to the primary data source, it was connected and pinged while the backup went on; data.provider, in_use, passed, took_ms; WARN with data.error when it did not answer (the backup stays, the next try after twice the period).";
    DataSourceSwitched => "data_source_switched", Error, "The Data agent reads from another source: the one in use failed (actor failover: it could not connect, its stream broke, or it sent too many bad messages in a row) or an operator switched (vigil ctl switch-source); data.from, to, actor, reason.";
    DataOutage => "data_outage", Critical, "No data source is healthy (every configured source failed since the last good bar, or the lone one did): the breaker trips (actor data_outage), the sources are tried again with backoff; data.error, sources, retry_in_ms, resume (verify or operator).";
    DataRecovered => "data_recovered", Warn, "Good bars again after a data outage; before trading resumes the books are reconciled with the venue and the data checked for missing sessions; data.provider, outage_s, attempts, first_bar, missing_bars.";
    DataVerifying => "data_verifying", Info, "The Execution agent reconciles the books with the venue after a data outage (data_recovered); data.source, outage_s, first_bar, missing_bars.";
    DataVerified => "data_verified", Info, "The verification after a data outage: passed and trading resumes (INFO), or failed, or an operator must reset the breaker (ERROR); data.passed, report, action.";
    DataParseFailed => "data_parse_failed", Error, "Market data could not be parsed: a file's row (data.error names file, line and column; the source fails), or one message of a feed (data.error has the reason and the payload; counted, the stream goes on up to data.feed.max_rejected_in_a_row in a row).";
    BarRejected => "bar_rejected", Error, "A bar failed validation (impossible prices, time going backwards) and was not used.";
    SymbolQuarantined => "symbol_quarantined", Error, "A symbol is in quarantine: its close jumped beyond [data.anomaly]'s bounds (actor anomaly_rule), its close disagreed with the reference source's beyond [data.cross_check] max_disagreement_pct (actor cross_check; data.close, reference_close), or an operator put it there; its bars are withheld from the models and Risk blocks new orders in it; data.symbol, reason, actor.";
    SymbolReleased => "symbol_released", Warn, "A symbol's quarantine lifted: every rule that held it cleared (anomaly_rule: release_after bars in a row moved within the bounds; cross_check: release_after_bars pairs of closes in a row agreed with the reference), or an operator released it; its bars reach the models again; data.symbol, reason, actor.";
    SourcesDisagreed => "sources_disagreed", Warn, "A symbol already in quarantine had another close that disagreed with the reference source's ([data.cross_check]); the count of agreeing pairs that lifts it starts over; data.symbol, bar_time, reason.";
    CrossCheckConnected => "cross_check_connected", Info, "The reference feed of [data.cross_check] is connected and subscribed: the cross-check is on; data.reference, symbols, failures (so far).";
    CrossCheckFailed => "cross_check_failed", Warn, "The reference feed of [data.cross_check] failed (could not connect, its stream broke: the cross-check is off until it reconnects, retried after data.retry_in_ms; trading goes on) or rejected one message (data.action: read on); data.reference, error, failures.";
    CrossCheckStopped => "cross_check_stopped", Info, "The reader of the reference feed stopped (the Data agent is gone: the session ends); data.reference, reason, bars, failures.";
    DataGap => "data_gap", Error, "Sessions of the exchange calendar had no bar for a symbol (after a restart: between the last bar handled and the first new one); nothing was invented, the models see the hole; data.symbol, after, before, missing, sessions (WARN with data.error: the calendar cannot say, the symbol is no longer checked).";
    RegimeChanged => "regime_changed", Info, "The Regime agent's label for a symbol changed.";
    RegimeReset => "regime_reset", Warn, "The Regime agent fell back to the default label for every symbol (command or restart).";
    SignalGenerated => "signal_generated", Info, "A model asked for a new target position; starts a decision chain.";
    SignalSuppressed => "signal_suppressed", Warn, "A signal was not emitted because the Signal agent is paused.";
    RiskApproved => "risk_approved", Info, "The Risk agent approved an order intent.";
    RiskRejected => "risk_rejected", Warn, "The Risk agent rejected a signal's order; data.reason says why.";
    TradingStateChanged => "trading_state_changed", Warn, "The trading state (active, reduce_only, halted) changed.";
    BreakerTripped => "breaker_tripped", Critical, "The circuit breaker tripped: no new orders.";
    BreakerReset => "breaker_reset", Warn, "The circuit breaker was reset: trading may resume.";
    OrderSubmitted => "order_submitted", Info, "An order was sent to the venue.";
    OrderAccepted => "order_accepted", Info, "The venue acknowledged an order.";
    OrderRejected => "order_rejected", Warn, "The venue refused an order.";
    OrderCancelRequested => "order_cancel_requested", Info, "Vigil asked the venue to cancel an order.";
    OrderCancelled => "order_cancelled", Info, "The venue cancelled an order.";
    OrderUnfilled => "order_unfilled", Warn, "A bar reached an open order's price but the venue had nothing left to fill it with: the bar traded no volume, or earlier orders took the share of its volume the venue fills (execution.max_volume_participation); the order stays open; data.order_id, symbol, reason, leaves_quantity.";
    FillReceived => "fill_received", Info, "The venue reported an execution (partial or complete); during a canary, data.allocation is each model version's signed part of it (version=quantity …), booked to its sub-ledger.";
    OrderFilled => "order_filled", Info, "An order is completely filled.";
    VenueError => "venue_error", Error, "A venue call failed (unreachable, bad response).";
    PhaseChanged => "phase_changed", Info, "The automated trading day entered a phase (auto_start … auto_stop); data.phase and data.session; data.caught_up when the phase had already ended as it was marked (a start or a wake-up in the session: no pre-open digest then).";
    PositionsSnapshot => "positions_snapshot", Info, "The final position snapshot of a session (at the close): positions, cash, equity.";
    EquityCurve => "equity_curve", Info, "The session's equity curve, logged with the closing snapshot for the day report: data.session, points (HH:MM=equity in New York time, the last bar of each minute since this process saw the day's first bar), max_drawdown (the deepest fall from the day's running peak, every bar measured, as a ratio), bars.";
    ScheduleFailed => "schedule_failed", Error, "The automation schedule could not be computed (date outside the calendar); automation is off.";
    CalendarReloaded => "calendar_reloaded", Warn, "Calendar overrides or phase times were reloaded at runtime: who, and what changed.";
    ConfigReloadFailed => "config_reload_failed", Error, "A config reload was refused (every problem listed); the running calendar stays.";
    ChecklistCompleted => "checklist_completed", Info, "A checklist ran and nothing failed; data.report names the stored report.";
    ChecklistFailed => "checklist_failed", Error, "A checklist check failed; before the open, trading does not open that session.";
    DayReportWritten => "day_report_written", Info, "The end-of-day report of a session was written after its close (P&L, trades, fills and slippage, drawdown, alerts, checks) and goes to alerts.routing.digest: data.session, headline, text, json, chart (the equity and drawdown PNG; empty when the day had no curve).";
    ThresholdBreached => "threshold_breached", Warn, "A monitoring rule fired: data.rule, metric, label, value, threshold, op, for_s, since; logged at the rule's level.";
    ThresholdRecovered => "threshold_recovered", Info, "A firing monitoring rule's condition cleared: data.rule, metric, value, threshold, breached_s.";
    HealthSnapshot => "health_snapshot", Info, "The Monitor's periodic pulse: readiness, trading state, equity (once Execution reported it), agents, endpoints and key metrics. Its absence is what the dead-man's switch notices.";
    LogSilent => "log_silent", Critical, "No log line reached the disk for longer than the dead-man's window: the writer or the disk is stuck.";
    LogResumed => "log_resumed", Warn, "The log grows again after a silence; data.silent_s says how long.";
    MonitorStalled => "monitor_stalled", Critical, "The watchdog thread found the health board not published for longer than monitor.watchdog_stall_s: the Monitor's loop has stopped. The breaker is tripped and the alert goes out once the Monitor runs again; under systemd the watchdog pings stop and systemd restarts vigil.";
    MonitorResumed => "monitor_resumed", Warn, "The Monitor publishes the health board again after a stall; data.stalled_s says how long. The breaker stays tripped until reset.";
    WatchdogPingFailed => "watchdog_ping_failed", Error, "vigil could not send systemd its watchdog ping (WATCHDOG=1) while the Monitor is alive: systemd will take vigil for hung and restart it when its WatchdogSec passes without one. Logged once until a ping goes through again; data.error, action.";
    WatchdogPingRecovered => "watchdog_ping_recovered", Info, "systemd's watchdog pings go through again after watchdog_ping_failed; data.failed_s.";
    LogAnchorFailed => "log_anchor_failed", Error, "The log chain's newest anchor (data.file, seq) could not be recorded in the store: `vigil logs verify` vouches for the lines after the last recorded anchor by the chain alone until one is; data.error, failures (so far this session).";
    FleetPublishFailed => "fleet_publish_failed", Error, "This node could not publish its log to the fleet's NATS JetStream stream (`[fleet]`): trading goes on and the lines wait in the log, which is the buffer; data.error, backlog (lines waiting), url. Logged once per outage.";
    FleetPublishRecovered => "fleet_publish_recovered", Warn, "This node publishes to the fleet again and has caught up: data.published (lines sent since the outage began), outage_s.";
    FleetLeaseFailed => "fleet_lease_failed", Warn, "This node's heartbeat lease in the fleet's key-value bucket could not be renewed while its lines still publish (the bucket is missing, misconfigured or refused): the fleet monitor will count the node lost when the lease runs out. Logged once until it is renewed again; data.error, bucket, node.";
    FleetLeaseRenewed => "fleet_lease_renewed", Info, "This node's lease is renewed again after fleet_lease_failed: data.failed_s (how long it could not be), node.";
    FleetReleaseStep => "fleet_release_step", Warn, "`vigil fleet release` at one node, in the commander's log: data.node, model, who, reason, request_id, outcome (released, failed, not_reached), detail (the candidate now production there, or why it failed), took_s; ERROR when it failed (the rollout stops there).";
    FleetCommandSent => "fleet_command_sent", Warn, "`vigil fleet command` sent a command to a node and what came of it, in the commander's log: data.node, command, who, reason, request_id, outcome (ok, refused, down, stopped, no_token), detail; ERROR when it did not reach or was refused.";
    FleetWatchStarted => "fleet_watch_started", Info, "`vigil fleet watch`, the fleet's central monitor, started: data.url, stream, consumer (its durable consumer), nodes (those it resumes from its saved view).";
    FleetWatchFailed => "fleet_watch_failed", Error, "The fleet's central monitor cannot read the stream or the leases (NATS down or refusing): it sees no node until it can; data.error, url. Logged once per outage; it retries.";
    FleetWatchRecovered => "fleet_watch_recovered", Warn, "The fleet's central monitor reads the stream and the leases again: data.outage_s.";
    FleetWatchStopped => "fleet_watch_stopped", Info, "The fleet's central monitor stopped: data.reason, lines (verified this run), nodes.";
    FleetNodeJoined => "fleet_node_joined", Info, "The fleet monitor read a node's first line: data.node, seq, midway (true when the stream no longer holds the node's earlier lines: its chain is checked from here).";
    FleetNodeLost => "fleet_node_lost", Critical, "A node's heartbeat lease ran out: its process, its host or its link to NATS is gone, and nobody watches its trading from there; data.node, lease_age_s, lease_s, last_seq, last_event.";
    FleetNodeBack => "fleet_node_back", Warn, "A node counted lost renews its lease again: data.node, lost_s.";
    FleetNodeStopped => "fleet_node_stopped", Info, "A node stopped and said so in its lease: data.node, seq (its last line).";
    FleetLinesMissing => "fleet_lines_missing", Error, "Lines of a node's log never reached the fleet stream (its sequence jumps): data.node, from, to, count. The node's own log still holds them unless its retention removed them.";
    FleetChainBroken => "fleet_chain_broken", Critical, "A node's line does not chain to the line before it, or its content does not match its hash: the log was changed, or two processes write as one node; data.node, seq, why.";
    FleetStreamStalled => "fleet_stream_stalled", Error, "A node's lease says the stream took lines the fleet monitor has not read, for longer than the lease: data.node, lease_seq, seen_seq, behind_s.";
    FleetStreamResumed => "fleet_stream_resumed", Warn, "The fleet monitor reads a stalled node's lines again: data.node, seq.";
    FleetNodeAlert => "fleet_node_alert", Warn, "A node's alert fired or resolved, as the fleet monitor sees it, logged at the alert's level: data.rule, labels, status (firing, resolved), nodes (every node it fires on now), node (the one that said so), headline. One central alert per rule and labels, however many nodes fire it.";
    ExternalHeartbeatFailed => "external_heartbeat_failed", Error, "The outside heartbeat URL could not be pinged; data.error says why (the URL is redacted).";
    MonitorProbeFailed => "monitor_probe_failed", Error, "The Monitor could not take a reading (system figures, disk, log folder); data.probe and data.error.";
    LibraryLog => "library_log", Info, "A library logged through `tracing`; data.target names it, the level is its own; data.held marks one logged before the log started.";
    AlertFiring => "alert_firing", Warn, "An alert started firing: data.id, rule, severity, service, labels, headline; logged at its severity (LOW INFO, MEDIUM WARN, HIGH ERROR, CRITICAL CRITICAL).";
    AlertResolved => "alert_resolved", Info, "A firing alert's condition cleared past its hold-down: data.id, rule, firing_s.";
    AlertSuppressed => "alert_suppressed", Info, "A notice was not sent: data.why is silenced (by whom, why), inhibited, grouped (with the count), acknowledged, or digest (Low waits for the day's summary).";
    AlertNotified => "alert_notified", Info, "A notice was handed to its channels: data.id, status, severity, channels; WARN with data.unrouted when a route names a channel that is not configured.";
    AlertDelivered => "alert_delivered", Info, "A channel took a notice: data.channel, kind, id, attempt, elapsed_ms.";
    AlertDeliveryFailed => "alert_delivery_failed", Error, "A channel failed to take a notice: data.channel, error, next (retry, escalated to another channel, or gave up: nobody was told).";
    AlertRequestApplied => "alert_request_applied", Warn, "An operator's `vigil alerts ack|silence|unsilence` was applied (or refused): data.request, who, kind, ok, result.";
    AlertStoreFailed => "alert_store_failed", Critical, "The alert state or notification log could not be saved or read: a restart could re-page or forget a silence; data.error.";
    AgentCrashed => "agent_crashed", Error, "A panic was caught in an agent; data.panic and data.location say what and where. The supervisor restarts it after data.backoff_ms.";
    AgentRestarted => "agent_restarted", Warn, "The supervisor restarted a crashed agent on the same mailbox.";
    AgentRebuilt => "agent_rebuilt", Warn, "A restarted agent rebuilt its state; data.rebuilt says from what.";
    BatchDropped => "batch_dropped", Error, "An agent crashed while handling a batch: its bars were not processed by that agent (flow control continues with an empty batch).";
    RestartIntensityExceeded => "restart_intensity_exceeded", Critical, "An agent crashed more often than its restart policy allows: the breaker is tripped.";
    DrawdownControlEngaged => "drawdown_control_engaged", Critical, "Equity fell past the drawdown control line: no new position (reduce-only) and the first deleveraging step; data.drawdown, line, day_pnl, equity, peak_equity, actions.";
    DeleverageStep => "deleverage_step", Warn, "A further deleveraging step while the drawdown stays beyond the control line: data.step, drawdown, orders.";
    ReconciliationCompleted => "reconciliation_completed", Info, "The journal was reconciled with the venue (the source of truth): data.trigger (start, interval, venue_returned), book, fills_journaled, fills_recovered, differences, mismatches, passed, took_ms.";
    ReconcileDifference => "reconcile_difference", Warn, "One thing the journal and the venue disagreed on: data.kind, subject, journal, venue, action; ERROR with data.mismatch = true when a crash does not explain it.";
    ReconciliationMismatch => "reconciliation_mismatch", Critical, "The books differed in a way a crash does not explain (a trade at the broker by hand, cash that moved): the venue's figures were taken and trading stays data.trading_state until a person resets the breaker; data.differences.";
    StoreHistoryLost => "store_history_lost", Critical, "The store lost its history (a missing, emptied or replaced store, journal rows gone, or a broker and a log that remember what the journal does not): vigil refused to start, sent nothing and changed nothing; data.store, lost (each finding), recover (how).";
    JournalRebuilt => "journal_rebuilt", Critical, "The journal of a book was rebuilt from the broker at the operator's request (`vigil run --rebuild-journal-from-broker`): data.book, lost (what was found lost), summary (fills, orders, open orders, adjustments, and the bar the session resumes after so that nothing past is decided again), rebuild (its row in journal_rebuilds).";
    StoreIdentityCreated => "store_identity_created", Info, "The store was given its identity at its first start, kept in it and in the identity file beside it (data.store, install_id, identity_file); WARN when the identity file was missing and is written again from the store's.";
    OrdersPaused => "orders_paused", Error, "The venue could not be reached with an order: new orders are held (journaled) and retried with backoff; data.venue, error, pending, retry_in_ms.";
    OrdersResumed => "orders_resumed", Warn, "The venue answers again: reconciled, and the held orders still wanted were sent; data.venue, down_s, sent, withdrawn (replaced or cancelled during the outage: never sent).";
    DrawdownControlRearmed => "drawdown_control_rearmed", Warn, "Trading was set active again: the drawdown control line is measured afresh from the equity at that moment.";
    GatePassed => "gate_passed", Info, "`vigil gate`: every check of both backtest layers passed; data.model, model_sha256, data_sha256, config_sha256, vigil_version, checks, artifact (the stored JSON result).";
    GateFailed => "gate_failed", Error, "`vigil gate`: a check failed, so the model may not trade; data as gate_passed, with failed (each failed check, its value and threshold).";
    ModelRegistered => "model_registered", Info, "`vigil model register`: a model version entered the registry as a staging candidate; data.model, version, by, reason, artifact_sha256, gate (passed or skipped), parent.";
    ModelPromoted => "model_promoted", Warn, "`vigil model promote`: a version became production (the one it replaced is last_stable); data.model, version, by, reason, detail.";
    ModelRetired => "model_retired", Info, "`vigil model retire`: a version may never trade again; data.model, version, by, reason, detail.";
    ModelRolledBack => "model_rolled_back", Warn, "`vigil model rollback`: production went back to last_stable and the version that failed was retired; data.model, version (now production), by, reason, detail.";
    ModelReleaseStarted => "model_release_started", Warn, "`vigil model release start`: a staging version started its release in shadow (it runs beside production in every `vigil run` of the model, without orders); data.model, version, by, reason, detail.";
    ModelReleaseChanged => "model_release_changed", Warn, "`vigil model release pause`, `resume` or `abort`: an operator held, resumed or ended a release (an abort is final); data.model, version, by, reason, detail (what changed, in words).";
    ModelSwitched => "model_switched", Warn, "Blue-green: the Signal agent trades another model from the next bar (`vigil model promote` or `rollback` with a session running, or `vigil ctl switch-model`); the one it traded runs on beside it, warm, for an instant switch back; positions are carried over and the new model's next target realigns them; data.from, to, actor, reason.";
    ModelAutoRolledBack => "model_auto_rolled_back", Critical, "Automatic rollback ([release.rollback]): the model switched in failed a rule (error rate, decision latency p99, or the mean of its rolling Sharpe values) and the session trades the model it replaced again, from the next bar; the failed one stops running; alerted (rule model_rolled_back); data.from, to, rule, value, threshold.";
    ModelRollbackUnrecorded => "model_rollback_unrecorded", Error, "After an automatic rollback the registry could not record it (the store failed, or its production is not the model rolled back: a switch by vigil ctl); the session trades the model it switched back to regardless; `vigil model rollback` records it by hand; data.model, version, reason.";
    DriftUnwatched => "drift_unwatched", Info, "[release.drift] is on but the traded model's drift is not watched in this session: it is not registered, or was registered without the gate's data (no baseline), or its baseline cannot be read; data.model, reason.";
    ModelDriftChecked => "model_drift_checked", Info, "An exchange session ended and the traded model's last bars were judged against the data it was gated on: data.model, session, bars, psi (feature=index, …), tracking_z (the window's mean return in standard errors from the gate's).";
    ModelDrifted => "model_drifted", Warn, "The traded model's inputs or returns drifted from the data it was gated on beyond [release.drift] (a feature's population stability index, or the tracking of its returns); alerted (rule model_drifted); data.model, session, bars, drifted (what, in words).";
    ShadowStarted => "shadow_started", Info, "The Signal agent runs a release's candidate in shadow beside production: same bars, a simulated venue, no order; data.release, candidate, production, sessions (already run), resume_after (bars up to it were counted before a restart).";
    ShadowSessionEnded => "shadow_session_ended", Info, "A shadow run finished an exchange session: its figures are in the store (`vigil model shadow-report`); data.release, session, bars, errors, outliers, candidate_return, production_return, correlation (of the session's wanted positions, when defined).";
    ShadowSkipped => "shadow_skipped", Warn, "A model's release is open but its candidate does not run in this session: paused, changed since it was registered (ERROR), unloadable (ERROR), or the session trades the candidate itself; production trades on; data.release, candidate, reason.";
    ShadowModelFailed => "shadow_model_failed", Warn, "A release's candidate failed on a bar in shadow (logged once per session, every failure counted; production trades on); data.release, candidate, session, error.";
    LedgerCrossed => "ledger_crossed", Info, "A canary's versions wanted opposite trades in one symbol on the same bar: the overlap moved between their sub-ledgers inside the account at the reference price, with no order (or, on an abort that hands over, the candidate's positions moved to production); data.symbol, price, moves (version=quantity …).";
    SubLedgers => "sub_ledgers", Info, "The book per model version during and after a canary, at each exchange day's end and when the session ends: data.account_pnl (equity less equity when the sub-ledgers opened; the versions' pnl add up to it), ledgers (version: pnl, drawdown, max_drawdown, fills, slippage_bps, positions …; one per version, separated by ` | `).";
    SubLedgersRestored => "sub_ledgers_restored", Info, "After a restart the book's sub-ledgers per model version were read back from the journal (WARN when a version's positions had to be aligned with the recovered book: the difference, from a fill journaled before them or from reconciliation, is booked to production's at the mark, and the cash it really moved (its price against the mark, its commission) settled to production's, so that the versions' P&L adds up to the account's; ERROR when they could not be read: they open again from the book); data.book, versions, aligned (symbol=quantity …), settled_cash, error.";
    LedgerCrossFailed => "ledger_cross_failed", Error, "A cross between sub-ledgers was refused (its moves do not add up to zero) and nothing moved; the per-version figures may no longer add up to the account's until the canary ends; data.symbol, error.";
    CanaryStarted => "canary_started", Info, "A release's canary is running in this session: production and the candidate both decide on every bar, their targets netted at 1 − w and w; data.release, candidate, production, step, weight, sessions (in the step so far).";
    CanarySessionEnded => "canary_session_ended", Info, "An exchange session of a canary ended: the step's analysis and each version's sub-ledger; data.release, candidate, session, step, weight, verdict (pass, fail, inconclusive), sessions, mean_diff_bps, reason (the per-version books are on sub_ledgers).";
    CanaryStepped => "canary_stepped", Info, "A canary moved to its next step (its analysis passed, or an operator promoted the step), or from shadow to its first step; the store holds it; data.release, candidate, from, to, weight, by.";
    CanaryCompleted => "canary_completed", Info, "A canary's last step (100 %) passed: the candidate was promoted to production in the registry and the session trades it alone; data.release, candidate, replaced.";
    CanaryAborted => "canary_aborted", Critical, "A canary was aborted (its analysis failed, the rollback guard tripped, or an operator aborted it): the candidate's weight is 0 and its positions are unwound by [release.canary] unwind; paged (rule canary_aborted); data.release, candidate, step, reason, unwind, by.";
    CanaryStepUnrecorded => "canary_step_unrecorded", Error, "A canary's step or abort could not be written to the store: the session goes on as decided, but a restart would resume from the stored step; data.release, step, error.";
    ShadowSaveFailed => "shadow_save_failed", Error, "A shadow run's figures could not be written to the store (the run goes on and the next save retries them; the shadow report lags until one succeeds); data.release, session, error.";
}

/// A typed value in a log line's `data`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text known at compile time, or owned.
    Str(Cow<'static, str>),
    /// Shared text (symbols, ids) without a copy.
    Shared(Arc<str>),
    /// An exact decimal, written as a JSON number with its digits.
    Dec(Decimal),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A statistic.
    F64(f64),
    /// A flag.
    Bool(bool),
    /// An instant, written in RFC 3339 with milliseconds.
    Ts(Timestamp),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}
impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Self {
        Value::Shared(s)
    }
}
impl From<Decimal> for Value {
    fn from(d: Decimal) -> Self {
        Value::Dec(d)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::U64(v as u64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Self {
        Value::Ts(v)
    }
}

/// The value as a person reads it: text as is, numbers in full, instants in RFC 3339 with
/// milliseconds (as the log writes them).
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Shared(s) => f.write_str(s),
            Value::Dec(d) => write!(f, "{d}"),
            Value::I64(i) => write!(f, "{i}"),
            Value::U64(u) => write!(f, "{u}"),
            Value::F64(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ts(t) => f.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        }
    }
}

/// The basis of a decision, carried on every line of its chain that knows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogContext {
    /// The signal that started the chain.
    pub signal_id: Option<Arc<str>>,
    /// Its strength.
    pub signal_strength: Option<f64>,
    /// The regime at the time.
    pub regime: Option<Regime>,
    /// The model that produced the signal.
    pub model_version: Option<&'static str>,
    /// Equity when the decision was taken.
    pub portfolio_value: Option<Decimal>,
}

/// One structured log event.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    /// When it happened (from the producer's clock).
    pub timestamp: Timestamp,
    /// Severity.
    pub level: Level,
    /// Producing service (`execution_agent`).
    pub service: &'static str,
    /// The decision chain, if the event belongs to one.
    pub trace_id: Option<TraceId>,
    /// What happened.
    pub event: Event,
    /// Facts of the event.
    pub data: Vec<(&'static str, Value)>,
    /// Basis of the decision.
    pub context: Option<Box<LogContext>>,
}

impl LogEvent {
    /// Creates an event at the event's default level.
    pub fn new(timestamp: Timestamp, service: &'static str, event: Event) -> Self {
        Self {
            timestamp,
            level: event.level(),
            service,
            trace_id: None,
            event,
            data: Vec::new(),
            context: None,
        }
    }

    /// Sets the level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Sets the trace id.
    pub fn trace(mut self, trace_id: &TraceId) -> Self {
        self.trace_id = Some(trace_id.clone());
        self
    }

    /// Adds a `data` field.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.data.push((key, value.into()));
        self
    }

    /// Sets the decision context.
    pub fn context(mut self, context: LogContext) -> Self {
        self.context = Some(Box::new(context));
        self
    }

    /// Returns a `data` field by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for e in Event::ALL {
            assert!(seen.insert(e.name()), "duplicate {}", e.name());
            assert!(e.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    #[test]
    fn docs_events_md_matches_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md");
        let text = std::fs::read_to_string(path).expect("docs/events.md");
        let documented: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((name.to_string(), cells.get(2)?.to_string()))
            })
            .collect();
        let code: Vec<(String, String)> = Event::ALL
            .iter()
            .map(|e| (e.name().to_string(), e.level().as_str().to_string()))
            .collect();
        assert_eq!(
            documented, code,
            "docs/events.md and vigil_log::Event differ; regenerate the table"
        );
    }
}
