//! The Monitor's four levels of measurement: what it reads (agents' figures, mailbox pings,
//! system samples, the log's growth), the metrics it derives, and the rules it evaluates.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use actix::Recipient;
use chrono::Duration;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use vigil_calendar::Calendar;
use vigil_config::MonitorConfig;
use vigil_core::{AgentId, RuleMetric, Timestamp};
use vigil_messages::{Backlogs, Figures, Ping, Reachability};
use vigil_monitoring::{
    AgentView, EndpointView, HealthBoard, RuleEngine, Status, SystemSample, SystemSampler,
    Transition,
};

/// What the Monitor needs to measure beyond heartbeats.
pub struct HealthLinks {
    /// Where `/status` and `/metrics` are published.
    pub board: HealthBoard,
    /// Messages waiting per agent.
    pub backlogs: Backlogs,
    /// Each pipeline agent's mailbox, for the ping.
    pub pings: Vec<(AgentId, Recipient<Ping>)>,
    /// The exchange calendar: trading hours choose the dead-man's window.
    pub calendar: Option<Calendar>,
    /// The log folder, watched for growth.
    pub log_dir: PathBuf,
    /// A folder on the volume whose free space is watched.
    pub disk_path: PathBuf,
    /// The data source's and the venue's names.
    pub source_name: String,
    /// The venue's name.
    pub venue_name: String,
}

impl std::fmt::Debug for HealthLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthLinks")
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

/// Call counts at an instant, for success rates over a window.
#[derive(Clone, Copy, Debug)]
struct CallMark {
    at: Timestamp,
    ok: u64,
    failed: u64,
}

/// The growth of the log folder: the newest file and its length.
#[derive(Debug)]
pub(crate) struct LogWatch {
    dir: PathBuf,
    last: Option<(PathBuf, u64)>,
    pub(crate) last_growth: Timestamp,
    pub(crate) silent: bool,
}

impl LogWatch {
    pub(crate) fn new(dir: PathBuf, now: Timestamp) -> Self {
        Self {
            dir,
            last: None,
            last_growth: now,
            silent: false,
        }
    }

    /// Looks at the folder; returns whether the log grew since the last look.
    pub(crate) fn look(&mut self, now: Timestamp) -> Result<bool, String> {
        let newest = newest_log(&self.dir)?;
        let grew = newest.is_some() && newest != self.last;
        if grew {
            self.last = newest;
            self.last_growth = now;
        }
        Ok(grew)
    }
}

/// The newest `vigil-*.jsonl` file of `dir` and its length.
fn newest_log(dir: &Path) -> Result<Option<(PathBuf, u64)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("reading log folder {}: {e}", dir.display()))?;
    let mut newest: Option<(PathBuf, u64)> = None;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading log folder {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("vigil-") && name.ends_with(".jsonl")) {
            continue;
        }
        if newest.as_ref().is_none_or(|(p, _)| path > *p) {
            let len = entry
                .metadata()
                .map_err(|e| format!("reading {}: {e}", path.display()))?
                .len();
            newest = Some((path, len));
        }
    }
    Ok(newest)
}

/// Per-agent measurements beyond the heartbeat.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentHealth {
    pub(crate) figures: Figures,
    pub(crate) ping_sent: Option<Timestamp>,
    pub(crate) response_s: Option<f64>,
}

/// The measuring half of the Monitor.
pub(crate) struct Health {
    pub(crate) links: HealthLinks,
    pub(crate) engine: RuleEngine,
    pub(crate) sampler: Option<SystemSampler>,
    pub(crate) agents: BTreeMap<AgentId, AgentHealth>,
    pub(crate) log: LogWatch,
    pub(crate) last_sample: Option<SystemSample>,
    calls: BTreeMap<&'static str, VecDeque<CallMark>>,
    window: Duration,
    pub(crate) metrics: BTreeMap<String, f64>,
    described: bool,
    /// When a live source was first measured: its staleness before any bar counts from here.
    live_since: Option<Timestamp>,
    /// A probe failure already reported, by probe name (reported again once it clears).
    pub(crate) probe_failing: Vec<&'static str>,
    /// Ready to trade at the last publish: changes are announced on standard error.
    pub(crate) was_ready: bool,
    /// An outside heartbeat ping is under way.
    pub(crate) ext_pinging: bool,
    /// The last outside heartbeat ping failed.
    pub(crate) ext_failing: bool,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

fn label(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

impl Health {
    pub(crate) fn new(cfg: &MonitorConfig, links: HealthLinks, now: Timestamp) -> Self {
        let rules = cfg.effective_rules();
        let engine = RuleEngine::for_agent(&rules, AgentId::Monitor);
        let log = LogWatch::new(links.log_dir.clone(), now);
        Self {
            engine,
            sampler: None,
            agents: BTreeMap::new(),
            log,
            last_sample: None,
            calls: BTreeMap::new(),
            window: vigil_core::seconds(cfg.success_rate_window_s),
            metrics: BTreeMap::new(),
            described: false,
            live_since: None,
            probe_failing: Vec::new(),
            was_ready: false,
            ext_pinging: false,
            ext_failing: false,
            links,
        }
    }

    /// Trading hours now, for the person on call (quiet hours, the dead-man's window,
    /// `/status`): by the wall clock once a live source reports (the market clock stops with
    /// its data, at Friday's last bar over a weekend), else by the market clock (a replay's
    /// simulated day).
    /// The account's equity as the Execution agent last reported it.
    pub(crate) fn equity(&self) -> Option<rust_decimal::Decimal> {
        match &self.agents.get(&AgentId::Execution)?.figures {
            Figures::Execution { equity, .. } => Some(*equity),
            _ => None,
        }
    }

    pub(crate) fn hours_open(&self, market_now: Timestamp, wall_now: Timestamp) -> bool {
        self.market_open(if self.live_since.is_some() {
            wall_now
        } else {
            market_now
        })
    }

    /// Trading hours at market time `at` (closed when the calendar cannot say).
    pub(crate) fn market_open(&self, at: Timestamp) -> bool {
        self.links
            .calendar
            .as_ref()
            .is_some_and(|c| c.is_open(at).unwrap_or(false))
    }

    fn observe(
        &mut self,
        now: Timestamp,
        metric: RuleMetric,
        lbl: &str,
        value: f64,
        out: &mut Vec<Transition>,
    ) {
        let metric = metric.name();
        let key = if lbl.is_empty() {
            metric.to_string()
        } else {
            format!("{metric}{{{lbl}}}")
        };
        self.metrics.insert(key, value);
        self.engine.observe(now, metric, lbl, value, out);
    }

    /// An endpoint's round trip (`target=…`) and its calls' success ratio over the window
    /// (`api=…`), named `(target, api)`.
    fn observe_link(
        &mut self,
        now: Timestamp,
        (target, api): (&str, &'static str),
        link: &Reachability,
        out: &mut Vec<Transition>,
    ) {
        if let Some(l) = link.latency_s {
            self.observe(
                now,
                RuleMetric::NetworkLatency,
                &label("target", target),
                l,
                out,
            );
        }
        if let Some(r) = self.success_ratio(api, now, link) {
            self.observe(now, RuleMetric::ApiSuccess, &label("api", api), r, out);
        }
    }

    /// Success ratio of `api` over the window, from its running call counts.
    fn success_ratio(
        &mut self,
        api: &'static str,
        now: Timestamp,
        link: &Reachability,
    ) -> Option<f64> {
        let marks = self.calls.entry(api).or_default();
        marks.push_back(CallMark {
            at: now,
            ok: link.calls_ok,
            failed: link.calls_failed,
        });
        while marks.len() > 2 && marks[1].at <= now - self.window {
            marks.pop_front();
        }
        let first = marks.front()?;
        let last = marks.back()?;
        let ok = last.ok.saturating_sub(first.ok);
        let failed = last.failed.saturating_sub(first.failed);
        // Before any interval has passed, the counts since start are the window.
        let (ok, failed) = if marks.len() == 1 {
            (last.ok, last.failed)
        } else {
            (ok, failed)
        };
        (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64)
    }

    /// Takes every reading and evaluates the rules; returns the transitions.
    pub(crate) fn measure(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        if let Some(s) = self.last_sample.take() {
            if let Some(cpu) = s.cpu_ratio {
                self.observe(now, RuleMetric::CpuUsage, "", cpu, out);
            }
            self.observe(now, RuleMetric::MemoryUsage, "", s.memory_ratio, out);
            if let Ok(free) = &s.disk_free_bytes {
                self.observe(now, RuleMetric::DiskFree, "", *free as f64, out);
            }
            self.last_sample = Some(s);
        }
        let agents: Vec<(AgentId, AgentHealth)> =
            self.agents.iter().map(|(a, h)| (*a, h.clone())).collect();
        for (agent, h) in agents {
            let name = agent.as_str();
            let backlog = self.links.backlogs.waiting(agent).max(0) as f64;
            self.observe(
                now,
                RuleMetric::AgentBacklog,
                &label("agent", name),
                backlog,
                out,
            );
            let response = match (h.ping_sent, h.response_s) {
                // A ping still unanswered has taken at least this long.
                (Some(sent), _) => Some(secs(now - sent)),
                (None, r) => r,
            };
            if let Some(r) = response {
                self.observe(
                    now,
                    RuleMetric::AgentResponseLatency,
                    &label("agent", name),
                    r,
                    out,
                );
            }
            match &h.figures {
                Figures::Data {
                    source,
                    ended,
                    live,
                    last_update_at,
                    ..
                } => {
                    // A live source silent while the exchange is open (by the wall clock:
                    // the market clock stops with the data).
                    let open = self
                        .links
                        .calendar
                        .as_ref()
                        .is_some_and(|c| c.is_open(now).unwrap_or(false));
                    if *live && !ended {
                        let since = *self.live_since.get_or_insert(now);
                        if open {
                            let last = last_update_at.unwrap_or(since);
                            self.observe(
                                now,
                                RuleMetric::DataStaleness,
                                "",
                                secs(now - last).max(0.0),
                                out,
                            );
                        }
                    }
                    if !ended {
                        self.observe(
                            now,
                            RuleMetric::DataSourceConnected,
                            "",
                            f64::from(u8::from(source.up)),
                            out,
                        );
                    }
                    self.observe_link(now, ("data_source", "data"), source, out);
                }
                Figures::Execution { venue, .. } => {
                    self.observe_link(now, ("venue", "venue"), venue, out);
                }
                _ => {}
            }
        }
    }

    /// Records what a heartbeat measured, once, as it arrives, and takes it out of `f`: the
    /// decision latencies (a histogram; the rest of the figures are exported each probe
    /// round from the latest heartbeat).
    pub(crate) fn heard(&self, f: &mut Figures) {
        if let Figures::Execution {
            decision_latency_s,
            latency_dropped,
            ..
        } = f
            && (!decision_latency_s.is_empty() || *latency_dropped > 0)
        {
            let samples = std::mem::take(decision_latency_s);
            let dropped = std::mem::take(latency_dropped);
            self.links.board.record(|| {
                let h = histogram!(vigil_monitoring::DECISION_LATENCY);
                for s in &samples {
                    h.record(*s);
                }
                counter!("vigil_decision_latency_dropped_total").increment(dropped);
            });
        }
    }

    /// Writes every metric into the board's Prometheus registry.
    pub(crate) fn export(&mut self, status: &Status, log_lines_silent_s: f64) {
        let board = self.links.board.clone();
        let first = !self.described;
        self.described = true;
        board.record(|| {
            if first {
                describe_all();
            }
            gauge!("vigil_log_silence_seconds").set(log_lines_silent_s);
            gauge!("vigil_trading_halted")
                .set(f64::from(u8::from(status.trading_state == "halted")));
            gauge!("vigil_ready").set(f64::from(u8::from(status.not_ready().is_empty())));
            gauge!("vigil_rules_firing").set(status.breaches.len() as f64);
            if let Some(s) = &self.last_sample {
                if let Some(cpu) = s.cpu_ratio {
                    gauge!(CPU_SERIES).set(cpu);
                }
                gauge!(MEMORY_SERIES).set(s.memory_ratio);
                if let Ok(free) = &s.disk_free_bytes {
                    gauge!(DISK_SERIES).set(*free as f64);
                }
            }
            for a in &status.agents {
                let agent = a.agent.clone();
                gauge!("vigil_agent_up", "agent" => agent.clone())
                    .set(f64::from(u8::from(a.healthy)));
                gauge!("vigil_agent_heartbeat_age_seconds", "agent" => agent.clone())
                    .set(a.heartbeat_age_ms as f64 / 1000.0);
                gauge!(BACKLOG_SERIES, "agent" => agent.clone()).set(a.backlog as f64);
                if let Some(r) = a.response_ms {
                    gauge!(RESPONSE_SERIES, "agent" => agent.clone()).set(r / 1000.0);
                }
                metrics::counter!("vigil_agent_processed_total", "agent" => agent)
                    .absolute(a.processed);
            }
            for (target, e) in [
                ("data_source", &status.data_source),
                ("venue", &status.venue),
            ] {
                gauge!("vigil_endpoint_up", "target" => target).set(f64::from(u8::from(e.up)));
                if let Some(l) = e.latency_ms {
                    gauge!(LATENCY_SERIES, "target" => target).set(l / 1000.0);
                }
            }
            for (api, ratio) in [
                ("data", self.metrics.get("api_success_ratio{api=data}")),
                ("venue", self.metrics.get("api_success_ratio{api=venue}")),
            ] {
                if let Some(r) = ratio {
                    gauge!(API_SUCCESS_SERIES, "api" => api).set(*r);
                }
            }
            for h in self.agents.values() {
                export_figures(&h.figures);
            }
        });
    }
}

/// The `/metrics` series of a catalogue metric (its name comes from the catalogue, never
/// written here again); evaluated at compile time, so an unexported metric fails the build.
const fn series(metric: RuleMetric) -> &'static str {
    match metric.series() {
        Some(series) => series,
        None => panic!("a rule metric without a /metrics series"),
    }
}

const CPU_SERIES: &str = series(RuleMetric::CpuUsage);
const MEMORY_SERIES: &str = series(RuleMetric::MemoryUsage);
const DISK_SERIES: &str = series(RuleMetric::DiskFree);
const BACKLOG_SERIES: &str = series(RuleMetric::AgentBacklog);
const RESPONSE_SERIES: &str = series(RuleMetric::AgentResponseLatency);
const LATENCY_SERIES: &str = series(RuleMetric::NetworkLatency);
const API_SUCCESS_SERIES: &str = series(RuleMetric::ApiSuccess);
const DAILY_DRAWDOWN_SERIES: &str = series(RuleMetric::DailyDrawdown);
const WEEKLY_DRAWDOWN_SERIES: &str = series(RuleMetric::WeeklyDrawdown);
const TRADE_EXPOSURE_SERIES: &str = series(RuleMetric::TradeExposure);

fn secs(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

fn export_figures(f: &Figures) {
    match f {
        Figures::None => {}
        Figures::Data {
            bars,
            rejected,
            parse_errors,
            gaps,
            missing_bars,
            quarantined,
            withheld,
            disagreements,
            ..
        } => {
            counter!("vigil_data_bars_total").absolute(*bars);
            counter!("vigil_data_bars_rejected_total").absolute(*rejected);
            counter!("vigil_data_parse_errors_total").absolute(*parse_errors);
            counter!("vigil_data_gaps_total").absolute(*gaps);
            counter!("vigil_data_missing_bars_total").absolute(*missing_bars);
            gauge!("vigil_data_quarantined_symbols").set(*quarantined as f64);
            counter!("vigil_data_withheld_bars_total").absolute(*withheld);
            counter!("vigil_data_disagreements_total").absolute(*disagreements);
        }
        Figures::Regime {
            changes,
            detection_latency_s,
            confidence,
        } => {
            counter!("vigil_regime_changes_total").absolute(*changes);
            if let Some(l) = detection_latency_s {
                gauge!("vigil_regime_detection_latency_seconds").set(*l);
            }
            if let Some(c) = confidence {
                gauge!("vigil_regime_confidence_ratio").set(*c);
            }
        }
        Figures::Signal {
            signals,
            suppressed,
            batches,
            failures,
            generation_latency_s,
            paused,
            model,
            shadow,
            stopped,
            release,
            canary,
            ..
        } => {
            if let Some((id, state)) = release {
                gauge!("vigil_release_shadow_running", "release" => id.to_string())
                    .set(f64::from(u8::from(*state == "running")));
                if let Some((step, weight, _)) = canary {
                    let w = rust_decimal::prelude::ToPrimitive::to_f64(weight).unwrap_or(f64::NAN);
                    gauge!("vigil_canary_weight", "release" => id.to_string()).set(w);
                    gauge!("vigil_canary_step", "release" => id.to_string()).set(f64::from(*step));
                }
            }
            // 1: the model traded; 0: one run beside it without trading, or stopped.
            for (label, on) in [(Some(*model), 1.0), (*shadow, 0.0), (*stopped, 0.0)] {
                if let Some(label) = label {
                    let (name, version) = label.split_once('@').unwrap_or((label, ""));
                    gauge!("vigil_model_info", "model" => name, "version" => version).set(on);
                }
            }
            counter!("vigil_signal_signals_total").absolute(*signals);
            counter!("vigil_signal_suppressed_total").absolute(*suppressed);
            counter!("vigil_signal_batches_total").absolute(*batches);
            counter!("vigil_signal_failures_total").absolute(*failures);
            if let Some(l) = generation_latency_s {
                gauge!("vigil_signal_generation_latency_seconds").set(*l);
            }
            gauge!("vigil_signal_paused").set(f64::from(u8::from(*paused)));
        }
        Figures::Risk {
            approved,
            rejected,
            triggers,
            ..
        } => {
            counter!("vigil_risk_approved_total").absolute(*approved);
            counter!("vigil_risk_rejected_total").absolute(*rejected);
            for (kind, n) in triggers {
                counter!("vigil_risk_triggers_total", "kind" => *kind).absolute(*n);
            }
        }
        Figures::Execution {
            orders,
            filled,
            rejected,
            cancelled,
            unfilled,
            open,
            fills,
            slippage_bps,
            equity,
            business,
            ledgers,
            ..
        } => {
            counter!("vigil_execution_orders_total").absolute(*orders);
            counter!("vigil_execution_orders_filled_total").absolute(*filled);
            counter!("vigil_execution_orders_rejected_total").absolute(*rejected);
            counter!("vigil_execution_orders_cancelled_total").absolute(*cancelled);
            counter!("vigil_execution_orders_unfilled_total").absolute(*unfilled);
            counter!("vigil_execution_fills_total").absolute(*fills);
            gauge!("vigil_execution_open_orders").set(*open as f64);
            if let Some(s) = slippage_bps {
                gauge!("vigil_execution_slippage_bps").set(*s);
            }
            let equity = rust_decimal::prelude::ToPrimitive::to_f64(equity).unwrap_or(f64::NAN);
            gauge!("vigil_business_equity_dollars").set(equity);
            gauge!(DAILY_DRAWDOWN_SERIES).set(business.daily_drawdown);
            gauge!(WEEKLY_DRAWDOWN_SERIES).set(business.weekly_drawdown);
            gauge!(TRADE_EXPOSURE_SERIES).set(business.max_trade_exposure);
            gauge!("vigil_business_trades_today").set(business.trades_today as f64);
            for b in ledgers {
                let f = |d: &rust_decimal::Decimal| {
                    rust_decimal::prelude::ToPrimitive::to_f64(d).unwrap_or(f64::NAN)
                };
                gauge!("vigil_subledger_pnl_dollars", "version" => b.version).set(f(&b.pnl));
                gauge!("vigil_subledger_drawdown_dollars", "version" => b.version)
                    .set(f(&b.drawdown()));
                gauge!("vigil_subledger_max_drawdown_dollars", "version" => b.version)
                    .set(f(&b.max_drawdown));
                counter!("vigil_subledger_fills_total", "version" => b.version).absolute(b.fills);
                if let Some(s) = b.slippage_bps() {
                    gauge!("vigil_subledger_slippage_bps", "version" => b.version).set(s);
                }
            }
        }
    }
}

/// A sub-ledger as `/status` shows it.
fn ledger_json(b: &vigil_core::SubLedger) -> serde_json::Value {
    serde_json::json!({
        "version": b.version,
        "pnl": b.pnl.round_dp(2).to_string(),
        "drawdown": b.drawdown().round_dp(2).to_string(),
        "max_drawdown": b.max_drawdown.round_dp(2).to_string(),
        "fills": b.fills,
        "filled_quantity": b.filled_quantity.to_string(),
        "crossed_quantity": b.crossed_quantity.to_string(),
        "slippage_bps": b.slippage_bps(),
        "positions": b.positions().map(|(i, q)| serde_json::json!([i, q.to_string()])).collect::<Vec<_>>(),
    })
}

fn describe_all() {
    describe_gauge!(
        "vigil_log_silence_seconds",
        "Seconds since the log folder last grew (dead-man's switch)."
    );
    describe_gauge!(
        "vigil_trading_halted",
        "1 when the circuit breaker has halted trading."
    );
    describe_gauge!(
        "vigil_ready",
        "1 when ready to trade: data live, venue reachable, breaker not tripped, agents healthy."
    );
    describe_gauge!("vigil_rules_firing", "Threshold rules firing now.");
    describe_gauge!(CPU_SERIES, "Whole-machine CPU use, 0..1.");
    describe_gauge!(MEMORY_SERIES, "Used over total memory, 0..1.");
    describe_gauge!(DISK_SERIES, "Free bytes on the log volume.");
    describe_gauge!(
        "vigil_agent_up",
        "1 while the agent heartbeats and has not failed."
    );
    describe_gauge!(
        "vigil_agent_heartbeat_age_seconds",
        "Seconds since the agent's last heartbeat."
    );
    describe_gauge!(BACKLOG_SERIES, "Messages waiting in the agent's mailbox.");
    describe_gauge!(
        RESPONSE_SERIES,
        "Round trip of the Monitor's ping through the agent's mailbox."
    );
    describe_counter!(
        "vigil_agent_processed_total",
        "Units of work the agent has done (bars, signals, orders)."
    );
    describe_counter!(
        "vigil_agent_crashes_total",
        "Panics caught in the agent by its supervisor."
    );
    describe_counter!(
        "vigil_agent_restarts_total",
        "Restarts of the agent by its supervisor."
    );
    describe_gauge!(
        "vigil_endpoint_up",
        "1 when the data source is connected or the venue answers."
    );
    describe_gauge!(
        LATENCY_SERIES,
        "Last round trip to the data source or venue."
    );
    describe_gauge!(
        API_SUCCESS_SERIES,
        "Successful calls over all calls in the window."
    );
    describe_counter!("vigil_data_bars_total", "Bars forwarded by the Data agent.");
    describe_counter!(
        "vigil_data_bars_rejected_total",
        "Bars rejected by validation."
    );
    describe_counter!(
        "vigil_data_parse_errors_total",
        "Messages a streaming data source sent that did not parse (each an ERROR line)."
    );
    describe_counter!(
        "vigil_data_gaps_total",
        "Gaps found: runs of exchange sessions with no bar for a symbol."
    );
    describe_counter!(
        "vigil_data_missing_bars_total",
        "Sessions with no bar, per symbol, in the gaps found."
    );
    describe_gauge!(
        "vigil_data_quarantined_symbols",
        "Symbols in quarantine: their bars are withheld and no new order goes out in them."
    );
    describe_counter!(
        "vigil_data_withheld_bars_total",
        "Bars withheld from the models because their symbol was in quarantine."
    );
    describe_counter!(
        "vigil_data_disagreements_total",
        "Pairs of closes that disagreed with the [data.cross_check] reference beyond the bound."
    );
    describe_counter!("vigil_regime_changes_total", "Regime label changes.");
    describe_gauge!(
        "vigil_regime_detection_latency_seconds",
        "Mean classification time per bar over the last heartbeat interval."
    );
    describe_gauge!(
        "vigil_regime_confidence_ratio",
        "Confidence of the latest regime reading, 0..1."
    );
    describe_counter!("vigil_signal_signals_total", "Signals emitted.");
    describe_counter!(
        "vigil_signal_suppressed_total",
        "Signals held back while paused."
    );
    describe_counter!("vigil_signal_batches_total", "Batches the model evaluated.");
    describe_counter!(
        "vigil_signal_failures_total",
        "Bars the model could not evaluate."
    );
    describe_gauge!(
        "vigil_signal_generation_latency_seconds",
        "Mean model time per batch over the last heartbeat interval."
    );
    describe_gauge!("vigil_signal_paused", "1 while the Signal agent is paused.");
    describe_counter!("vigil_risk_approved_total", "Order intents approved.");
    describe_counter!("vigil_risk_rejected_total", "Signals rejected.");
    describe_counter!("vigil_risk_triggers_total", "Rejections by kind.");
    describe_counter!("vigil_execution_orders_total", "Orders sent.");
    describe_histogram!(
        vigil_monitoring::DECISION_LATENCY,
        metrics::Unit::Seconds,
        "From a bar's arrival at the Data agent to the venue's answer to the order it decided."
    );
    describe_counter!(
        "vigil_decision_latency_dropped_total",
        "Decision latencies measured but not in the histogram (more in one heartbeat interval \
         than a heartbeat carries; the session's quantiles still hold them)."
    );
    describe_counter!(
        "vigil_execution_orders_filled_total",
        "Orders completely filled."
    );
    describe_counter!(
        "vigil_execution_orders_rejected_total",
        "Orders the venue refused."
    );
    describe_counter!(
        "vigil_execution_orders_cancelled_total",
        "Orders cancelled."
    );
    describe_counter!(
        "vigil_execution_orders_unfilled_total",
        "Times a bar reached an open order's price but left it nothing to take (zero volume, or the venue's share of it spent): the order stays open (order_unfilled)."
    );
    describe_counter!("vigil_execution_fills_total", "Executions.");
    describe_gauge!("vigil_execution_open_orders", "Orders open now.");
    describe_gauge!(
        "vigil_execution_slippage_bps",
        "Mean signed slippage against the arrival price, basis points."
    );
    describe_gauge!(
        "vigil_business_equity_dollars",
        "Equity in the account currency."
    );
    describe_gauge!(DAILY_DRAWDOWN_SERIES, "Drawdown from today's equity peak.");
    describe_gauge!(
        WEEKLY_DRAWDOWN_SERIES,
        "Drawdown from this week's equity peak."
    );
    describe_gauge!(
        TRADE_EXPOSURE_SERIES,
        "Largest exposure a single fill added today, over equity."
    );
    describe_gauge!("vigil_business_trades_today", "Fills today.");
    describe_gauge!(
        "vigil_release_shadow_running",
        "1 while the open release's candidate runs in shadow beside production, else 0."
    );
    describe_gauge!(
        "vigil_canary_weight",
        "Share of capital the canary's candidate trades at its current step, 0..1."
    );
    describe_gauge!("vigil_canary_step", "The canary's current step, from 1.");
    describe_gauge!(
        "vigil_subledger_pnl_dollars",
        "Profit and loss of one model version's sub-ledger."
    );
    describe_gauge!(
        "vigil_subledger_drawdown_dollars",
        "Drawdown of one model version's sub-ledger from its peak."
    );
    describe_gauge!(
        "vigil_subledger_max_drawdown_dollars",
        "Largest drawdown one model version's sub-ledger has had."
    );
    describe_counter!(
        "vigil_subledger_fills_total",
        "Fills booked to one model version's sub-ledger."
    );
    describe_gauge!(
        "vigil_subledger_slippage_bps",
        "Mean signed slippage of one model version's fills, basis points."
    );
    describe_counter!(
        "vigil_alerts_fired_total",
        "Alerts that started firing, by severity."
    );
    describe_counter!(
        "vigil_alert_deliveries_total",
        "Notices handed to a channel, by channel and outcome."
    );
    describe_counter!(
        "vigil_alert_store_errors_total",
        "Times the alert state or notification log could not be saved or read."
    );
}

/// Builds the status from the Monitor's view.
pub(crate) fn endpoint(name: &str, link: Option<&Reachability>) -> EndpointView {
    match link {
        Some(r) => EndpointView {
            name: name.to_string(),
            up: r.up,
            latency_ms: r.latency_s.map(|s| s * 1000.0),
            error: r.error.clone(),
        },
        None => EndpointView {
            name: name.to_string(),
            ..EndpointView::default()
        },
    }
}

/// The JSON of an agent's figures, for `/status`.
pub(crate) fn figures_json(f: &Figures) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let v = match f {
        Figures::None => json!({}),
        Figures::Data {
            last_bar_at,
            last_update_at,
            bars,
            rejected,
            parse_errors,
            gaps,
            missing_bars,
            quarantined,
            withheld,
            disagreements,
            live,
            ended,
            source,
        } => json!({
            "last_bar_at": last_bar_at, "last_update_at": last_update_at, "bars": bars,
            "rejected": rejected, "parse_errors": parse_errors, "gaps": gaps, "missing_bars": missing_bars,
            "quarantined": quarantined, "withheld": withheld, "disagreements": disagreements, "live": live,
            "ended": ended, "source_up": source.up,
            "quality": if *bars + *rejected > 0 { *bars as f64 / (*bars + *rejected) as f64 } else { 1.0 },
        }),
        Figures::Regime {
            changes,
            detection_latency_s,
            confidence,
        } => {
            json!({"changes": changes, "detection_latency_s": detection_latency_s, "confidence": confidence})
        }
        Figures::Signal {
            signals,
            suppressed,
            batches,
            bars,
            failures,
            generation_latency_s,
            paused,
            model,
            shadow,
            stopped,
            release,
            canary,
        } => json!({
            "model": model, "shadow": shadow, "stopped": stopped,
            "release": release.map(|(id, state)| json!({"id": id, "shadow": state})),
            "canary": canary.map(|(step, weight, state)| json!({"step": step, "weight": weight.to_string(), "state": state})),
            "signals": signals, "suppressed": suppressed, "batches": batches, "bars": bars,
            "failures": failures,
            "success_rate": if *bars > 0 { bars.saturating_sub(*failures) as f64 / *bars as f64 } else { 1.0 },
            "generation_latency_s": generation_latency_s, "paused": paused,
        }),
        Figures::Risk {
            approved,
            rejected,
            triggers,
            state,
        } => json!({
            "approved": approved, "rejected": rejected, "state": state.as_str(),
            "triggers": triggers.iter().map(|(k, n)| (k.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        }),
        Figures::Execution {
            orders,
            filled,
            rejected,
            cancelled,
            unfilled,
            open,
            fills,
            slippage_bps,
            equity,
            business,
            ledgers,
            ..
        } => json!({
            "ledgers": ledgers.iter().map(ledger_json).collect::<Vec<_>>(),
            "orders": orders, "filled": filled, "rejected": rejected, "cancelled": cancelled,
            "unfilled": unfilled,
            "open": open, "fills": fills, "slippage_bps": slippage_bps, "equity": equity.to_string(),
            "daily_drawdown": business.daily_drawdown, "weekly_drawdown": business.weekly_drawdown,
            "max_trade_exposure": business.max_trade_exposure, "trades_today": business.trades_today,
            "trades_per_day_mean": business.trades_per_day_mean, "day_pnl": business.day_pnl.to_string(),
        }),
    };
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Builds an [`AgentView`] skeleton.
pub(crate) fn agent_view(agent: AgentId) -> AgentView {
    AgentView {
        agent: agent.as_str().to_string(),
        ..AgentView::default()
    }
}
