//! The validation pass: every problem, with its dotted path, before anything starts.

use rust_decimal::Decimal;
use std::fmt;

use crate::bounds::Num;
use crate::model::{BUNDLED_PREFIX, ExecutionConfig, Sizing, Speed, VenueKind, VigilConfig};

/// One problem in a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path (`risk.max_position_pct`); empty for a whole-file problem.
    pub path: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ConfigIssue {
    /// Creates an issue.
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one config.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    /// Where the config came from.
    pub origin: String,
    /// The problems, in document order where known.
    pub issues: Vec<ConfigIssue>,
}

impl ConfigError {
    /// Creates an error.
    pub fn new(origin: &str, issues: Vec<ConfigIssue>) -> Self {
        Self {
            origin: origin.to_string(),
            issues,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(f, "\n  - {issue}")?;
        }
        Ok(())
    }
}

struct Checker(Vec<ConfigIssue>);

/// `store.url` must be a PostgreSQL URL. It may hold a password: the message shows at most
/// its scheme.
fn check_store_url(url: &str, c: &mut Checker) {
    const EXPECTED: &str = "must be a PostgreSQL URL, postgres://[user[:password]@]host[:port]/database \
                            (leave store.url out to keep the store in the SQLite file store.path)";
    match url.split_once("://") {
        Some(("postgres" | "postgresql", rest)) => {
            if rest.is_empty() || rest.starts_with(['/', '?']) {
                c.fail("store.url", format!("names no server: {EXPECTED}"));
            }
        }
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch)) =>
        {
            c.fail("store.url", format!("{EXPECTED}; got a {scheme}:// URL"));
        }
        _ if url.is_empty() => c.fail("store.url", format!("is empty: {EXPECTED}")),
        _ => c.fail("store.url", format!("{EXPECTED}; got no scheme")),
    }
}

impl Checker {
    fn fail(&mut self, path: &str, message: String) {
        self.0.push(ConfigIssue::new(path, message));
    }

    /// Checks `v` against the bound of `key` ([`crate::bounds::BOUNDS`]).
    fn within(&mut self, key: &str, v: impl Into<Num>) {
        self.within_at(key, key, v);
    }

    /// The same for a key whose path has an index or a name: `key` is its pattern
    /// (`monitor.rules[].for`), `path` the key itself (`monitor.rules[2].for`).
    fn within_at(&mut self, key: &str, path: &str, v: impl Into<Num>) {
        self.0.extend(crate::bounds::check(key, path, v));
    }

    /// Checks that `key`'s value `v` stands in `order` to `other`'s value `o`; the message
    /// names both ("must be greater than regime.short_window (20), got 10").
    fn ordered<T: PartialOrd + std::fmt::Display>(
        &mut self,
        (key, v): (&str, T),
        order: Order,
        (other, o): (&str, T),
    ) {
        let (holds, words) = match order {
            Order::AtLeast => (v >= o, "at least"),
            Order::GreaterThan => (v > o, "greater than"),
            Order::AtMost => (v <= o, "at most"),
        };
        if !holds {
            self.fail(key, format!("must be {words} {other} ({o}), got {v}"));
        }
    }
}

/// How one key's value must stand to another's ([`Checker::ordered`]).
#[derive(Clone, Copy, Debug)]
enum Order {
    AtLeast,
    GreaterThan,
    AtMost,
}

pub(crate) fn collect(cfg: &VigilConfig) -> Vec<ConfigIssue> {
    let mut c = Checker(Vec::new());
    crate::alerts::check(&cfg.alerts, &mut c.0);

    c.within("session.initial_cash", cfg.session.initial_cash);
    if cfg.session.name.trim().is_empty() {
        c.fail("session.name", "must not be empty".into());
    }

    if cfg.data.instruments.is_empty() {
        c.fail(
            "data.instruments",
            "must list at least one instrument ({ symbol, path })".into(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, inst) in cfg.data.instruments.iter().enumerate() {
        if inst.symbol.trim().is_empty() {
            c.fail(
                &format!("data.instruments[{i}].symbol"),
                "must not be empty".into(),
            );
        } else if !seen.insert(inst.symbol.clone()) {
            c.fail(
                &format!("data.instruments[{i}].symbol"),
                format!("{:?} is listed twice", inst.symbol),
            );
        }
        if cfg.data.feed.is_none()
            && (inst.path.trim().is_empty() || inst.path.trim() == BUNDLED_PREFIX)
        {
            c.fail(
                &format!("data.instruments[{i}].path"),
                "must not be empty".into(),
            );
        }
    }
    if let Speed::Factor(x) = cfg.data.speed {
        c.within("data.speed", x);
    }
    c.within("data.batch_size", cfg.data.batch_size);
    c.within("data.max_in_flight_batches", cfg.data.max_in_flight_batches);
    c.within("data.future_tolerance_s", cfg.data.future_tolerance_s);
    if let Some(f) = &cfg.data.feed {
        let feeds = std::iter::once(("data.feed".to_string(), f)).chain(
            f.backups
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("data.feed.backups[{i}]"), b)),
        );
        for (key, feed) in feeds {
            if !feed.url.starts_with("ws://") {
                c.fail(
                    &format!("{key}.url"),
                    format!(
                        "must be a ws:// URL (wss:// is not supported yet), got {:?}",
                        feed.url
                    ),
                );
            }
            if feed.key_id.trim().is_empty() {
                c.fail(&format!("{key}.key_id"), "must not be empty".into());
            }
        }
        c.within("data.feed.max_rejected_in_a_row", f.max_rejected_in_a_row);
        c.within("data.feed.max_parse_error_pct", f.max_parse_error_pct);
        c.within("data.feed.parse_error_window", f.parse_error_window);
        c.within("data.feed.switch_back_after_s", f.switch_back_after_s);
        c.within("data.feed.reconnect_initial_ms", f.reconnect_initial_ms);
        c.within("data.feed.reconnect_max_ms", f.reconnect_max_ms);
        c.ordered(
            ("data.feed.reconnect_max_ms", f.reconnect_max_ms),
            Order::AtLeast,
            ("data.feed.reconnect_initial_ms", f.reconnect_initial_ms),
        );
    }
    if let Some(f) = &cfg.fleet {
        match f.url.strip_prefix("nats://") {
            Some(rest)
                if rest.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                }) => {}
            _ => c.fail(
                "fleet.url",
                format!("must be nats://HOST:PORT, got {:?}", f.url),
            ),
        }
        for (key, name) in [("fleet.node", &f.node), ("fleet.stream", &f.stream)] {
            if !crate::fleet::plain_name(name) {
                c.fail(
                    key,
                    format!("must be 1 to 64 letters, digits, '-' or '_', got {name:?}"),
                );
            }
        }
        c.within("fleet.lease_s", f.lease_s);
    }
    if let Some(x) = &cfg.data.cross_check {
        match &cfg.data.feed {
            None => c.fail(
                "data.cross_check",
                "needs [data.feed]: the reference is compared with a live feed's bars".into(),
            ),
            Some(f) => {
                let same = std::iter::once(("data.feed.url".to_string(), &f.url)).chain(
                    f.backups
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (format!("data.feed.backups[{i}].url"), &b.url)),
                );
                for (key, url) in same {
                    if url.trim() == x.url.trim() {
                        c.fail(
                            "data.cross_check.url",
                            format!(
                                "must be a source of its own, got {key}'s {:?} (a source compared \
                                 with itself never disagrees)",
                                x.url
                            ),
                        );
                    }
                }
            }
        }
        if !x.url.starts_with("ws://") {
            c.fail(
                "data.cross_check.url",
                format!(
                    "must be a ws:// URL (wss:// is not supported yet), got {:?}",
                    x.url
                ),
            );
        }
        if x.key_id.trim().is_empty() {
            c.fail("data.cross_check.key_id", "must not be empty".into());
        }
        if x.secret_file.as_os_str().is_empty() {
            c.fail("data.cross_check.secret_file", "must not be empty".into());
        }
        c.within(
            "data.cross_check.max_disagreement_pct",
            x.max_disagreement_pct,
        );
        c.within("data.cross_check.release_after_bars", x.release_after_bars);
    }
    let a = &cfg.data.anomaly;
    c.within("data.anomaly.max_jump_pct", a.max_jump_pct);
    c.within("data.anomaly.k_sigma", a.k_sigma);
    c.within("data.anomaly.window", a.window);
    c.within("data.anomaly.min_sigma_pct", a.min_sigma_pct);
    c.within("data.anomaly.release_after_bars", a.release_after_bars);
    if a.enabled && a.max_jump_pct.is_zero() && a.k_sigma == 0.0 {
        c.fail(
            "data.anomaly",
            "enabled with neither bound: set max_jump_pct or k_sigma, or enabled = false".into(),
        );
    }

    let r = &cfg.regime;
    c.within("regime.short_window", r.short_window);
    c.within("regime.long_window", r.long_window);
    c.ordered(
        ("regime.long_window", r.long_window),
        Order::GreaterThan,
        ("regime.short_window", r.short_window),
    );
    c.within("regime.volatility_ratio", r.volatility_ratio);
    c.within("regime.trend_threshold", r.trend_threshold);
    c.within("regime.confirm_bars", r.confirm_bars);

    let s = &cfg.signal;
    // A model directory is loaded and checked (manifest, hashes, graph) when the session
    // starts, before anything else.
    if s.model.trim().is_empty() {
        c.fail(
            "signal.model",
            "empty; \"ema_cross\" (built in), a model's directory (\"models/goog_mlp\") or \
             \"registry:NAME\""
                .into(),
        );
    }
    // A registry reference is resolved in the store when the session starts.
    if let Some((name, version)) = s.registry_reference() {
        let plain = |t: &str| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !plain(name) || !plain(version) {
            c.fail(
                "signal.model",
                format!(
                    "{:?}: a registry reference is \"registry:NAME\" (the version in \
                     production) or \"registry:NAME@VERSION\" (a version like \
                     v1.0.0-20261204, or an alias: production, candidate, last_stable)",
                    s.model
                ),
            );
        }
    }
    c.within("signal.fast_span", s.fast_span);
    c.within("signal.slow_span", s.slow_span);
    if let Some(w) = s.warmup_bars {
        c.within("signal.warmup_bars", w);
    }
    c.ordered(
        ("signal.slow_span", s.slow_span),
        Order::GreaterThan,
        ("signal.fast_span", s.fast_span),
    );

    let k = &cfg.risk;
    c.within("risk.max_position_pct", k.max_position_pct);
    c.within("risk.max_gross_exposure_pct", k.max_gross_exposure_pct);
    if k.sizing == Sizing::PercentOfEquity {
        c.within("risk.position_pct", k.position_pct);
        if k.position_pct > k.max_position_pct {
            c.fail(
                "risk.position_pct",
                format!(
                    "{} exceeds risk.max_position_pct ({}): every order would be rejected",
                    k.position_pct, k.max_position_pct
                ),
            );
        }
    }
    c.within("risk.fixed_quantity", k.fixed_quantity);
    c.within("risk.quantity_step", k.quantity_step);
    let f = &k.regime_size_factor;
    for (name, v) in [
        ("unknown", f.unknown),
        ("trending", f.trending),
        ("ranging", f.ranging),
        ("volatile", f.volatile),
    ] {
        c.within_at(
            "risk.regime_size_factor.*",
            &format!("risk.regime_size_factor.{name}"),
            v,
        );
    }

    let d = &k.drawdown_control;
    if d.enabled {
        c.within("risk.drawdown_control.line_pct", d.line_pct);
        c.within("risk.drawdown_control.step_pct", d.step_pct);
        c.within("risk.drawdown_control.step_interval_s", d.step_interval_s);
    }

    let e = &cfg.execution;
    c.within("execution.slippage_bps", e.slippage_bps);
    c.within("execution.commission_bps", e.commission_bps);
    c.within("execution.commission_min", e.commission_min);
    c.within(
        "execution.max_volume_participation",
        e.max_volume_participation,
    );
    c.within("execution.limit_offset_bps", e.limit_offset_bps);

    check_broker(e, &mut c);

    let m = &cfg.monitor;
    let sup = &m.supervision;
    c.within("monitor.supervision.max_restarts", sup.max_restarts);
    c.within("monitor.supervision.within_s", sup.within_s);
    c.within(
        "monitor.supervision.backoff_initial_ms",
        sup.backoff_initial_ms,
    );
    c.within("monitor.supervision.backoff_max_ms", sup.backoff_max_ms);
    c.ordered(
        ("monitor.supervision.backoff_max_ms", sup.backoff_max_ms),
        Order::AtLeast,
        (
            "monitor.supervision.backoff_initial_ms",
            sup.backoff_initial_ms,
        ),
    );
    c.within("monitor.heartbeat_interval_ms", m.heartbeat_interval_ms);
    c.within("monitor.heartbeat_timeout_ms", m.heartbeat_timeout_ms);
    c.ordered(
        ("monitor.heartbeat_timeout_ms", m.heartbeat_timeout_ms),
        Order::GreaterThan,
        ("monitor.heartbeat_interval_ms", m.heartbeat_interval_ms),
    );

    for (key, v) in [
        ("monitor.probe_interval_ms", m.probe_interval_ms),
        ("monitor.snapshot_interval_s", m.snapshot_interval_s),
        ("monitor.watchdog_stall_s", m.watchdog_stall_s),
        ("monitor.success_rate_window_s", m.success_rate_window_s),
        (
            "monitor.trade_frequency_days",
            u64::from(m.trade_frequency_days),
        ),
        (
            "monitor.dead_man.silence_trading_s",
            m.dead_man.silence_trading_s,
        ),
        (
            "monitor.dead_man.silence_closed_s",
            m.dead_man.silence_closed_s,
        ),
        (
            "monitor.dead_man.heartbeat_interval_s",
            m.dead_man.heartbeat_interval_s,
        ),
        (
            "monitor.dead_man.heartbeat_timeout_ms",
            m.dead_man.heartbeat_timeout_ms,
        ),
    ] {
        c.within(key, v);
    }
    if !matches!(m.dead_man.heartbeat_method.as_str(), "GET" | "POST") {
        c.fail(
            "monitor.dead_man.heartbeat_method",
            format!(
                "expected GET or POST, got {:?}",
                m.dead_man.heartbeat_method
            ),
        );
    }
    if let Some(url) = &m.dead_man.heartbeat_url {
        let u = url.expose();
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            // The URL is a secret: say what is wrong without showing it.
            c.fail(
                "monitor.dead_man.heartbeat_url",
                "must start with http:// or https://".into(),
            );
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in m.rules.iter().enumerate() {
        let key = format!("monitor.rules[{i}]");
        if r.name.is_empty()
            || !r
                .name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            c.fail(
                &format!("{key}.name"),
                format!(
                    "must be lower_snake_case (it names the runbook), got {:?}",
                    r.name
                ),
            );
        }
        if !names.insert(r.name.as_str()) {
            c.fail(
                &format!("{key}.name"),
                format!("duplicate rule {:?}", r.name),
            );
        }
        if vigil_core::RuleMetric::from_name(&r.metric).is_none() {
            c.fail(
                &format!("{key}.metric"),
                format!(
                    "unknown metric {:?}; expected one of {}",
                    r.metric,
                    vigil_core::RuleMetric::ALL
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if !r.value.is_finite() {
            c.fail(
                &format!("{key}.value"),
                format!("must be a finite number, got {}", r.value),
            );
        }
        c.within_at("monitor.rules[].for", &format!("{key}.for"), r.for_s);
    }

    check_control(cfg, &mut c);

    let l = &cfg.log;
    if cfg.store.path.as_os_str().is_empty() {
        c.fail("store.path", "must not be empty".into());
    }
    if let Some(url) = &cfg.store.url {
        check_store_url(url.expose(), &mut c);
    }
    if l.dir.as_os_str().is_empty() {
        c.fail("log.dir", "must not be empty".into());
    }
    if l.hmac_key_file
        .as_ref()
        .is_some_and(|f| f.as_os_str().is_empty())
    {
        c.fail(
            "log.hmac_key_file",
            "must not be empty (leave it out for a plain chain)".into(),
        );
    }
    for name in l.service_levels.keys() {
        if !vigil_core::AgentId::ALL
            .iter()
            .any(|a| a.service() == name || a.as_str() == name)
            && name != "vigil"
            && name != "library"
            && name != "control"
        {
            c.fail(
                &format!("log.service_levels.{name}"),
                "unknown service; expected data_agent, regime_agent, signal_agent, risk_agent, execution_agent, monitor_agent, vigil, control or library".into(),
            );
        }
    }
    let k = &cfg.calendar;
    if k.exchange != "XNYS" {
        c.fail(
            "calendar.exchange",
            format!("unknown exchange {:?}; built in: \"XNYS\"", k.exchange),
        );
    }
    for issue in vigil_calendar::Calendar::xnys().override_issues(&k.overrides) {
        c.fail(
            &format!("calendar.overrides.{}", issue.key),
            issue.problem.clone(),
        );
    }
    for issue in k.schedule.issues() {
        c.fail(
            &format!("calendar.schedule.{}", issue.key),
            issue.problem.clone(),
        );
    }

    let sh = &cfg.release.shadow;
    c.within("release.shadow.min_sessions", sh.min_sessions);
    c.within("release.shadow.min_correlation", sh.min_correlation);
    c.within("release.shadow.improvement_t", sh.improvement_t);
    c.within("release.shadow.max_latency_ratio", sh.max_latency_ratio);
    c.within("release.shadow.cpu_budget_us", sh.cpu_budget_us);
    c.within("release.shadow.memory_budget_mb", sh.memory_budget_mb);
    c.within("release.shadow.outlier_sigma", sh.outlier_sigma);
    c.within("release.shadow.max_outlier_pct", sh.max_outlier_pct);
    c.within("release.shadow.cost_bps", sh.cost_bps);
    c.within("release.shadow.save_every_s", sh.save_every_s);
    let dr = &cfg.release.drift;
    c.within("release.drift.window_bars", dr.window_bars);
    c.within("release.drift.min_bars", dr.min_bars);
    c.within("release.drift.max_psi", dr.max_psi);
    c.within("release.drift.max_tracking_z", dr.max_tracking_z);
    c.ordered(
        ("release.drift.min_bars", dr.min_bars),
        Order::AtMost,
        ("release.drift.window_bars", dr.window_bars),
    );
    let ca = &cfg.release.canary;
    c.within("release.canary.sessions_per_step", ca.sessions_per_step);
    c.within("release.canary.margin_bps", ca.margin_bps);
    c.within("release.canary.confidence_z", ca.confidence_z);
    if let Some(problem) = canary_steps_problem(&ca.steps) {
        c.fail("release.canary.steps", problem);
    }
    let rb = &cfg.release.rollback;
    c.within("release.rollback.window_bars", rb.window_bars);
    c.within("release.rollback.max_error_pct", rb.max_error_pct);
    c.within("release.rollback.max_latency_p99_ms", rb.max_latency_p99_ms);
    c.within("release.rollback.sharpe_window_bars", rb.sharpe_window_bars);
    c.within("release.rollback.sharpe_values", rb.sharpe_values);
    c.within("release.rollback.min_sharpe", rb.min_sharpe);

    c.within(
        "checklist.warn_free_disk_gb",
        cfg.checklist.warn_free_disk_gb,
    );
    c.within(
        "checklist.fail_free_disk_gb",
        cfg.checklist.fail_free_disk_gb,
    );
    if cfg.checklist.fail_free_disk_gb > cfg.checklist.warn_free_disk_gb {
        c.fail(
            "checklist.fail_free_disk_gb",
            format!(
                "must not exceed checklist.warn_free_disk_gb ({}), got {}",
                cfg.checklist.warn_free_disk_gb, cfg.checklist.fail_free_disk_gb
            ),
        );
    }

    c.within("log.max_file_mb", l.max_file_mb);
    c.within("log.flush_interval_ms", l.flush_interval_ms);
    crate::channels::check(&cfg.alerts.channels, &mut c.0);

    c.0
}

/// `[control]`: the address parses; a non-loopback address is served over TLS unless the
/// operator explicitly accepts plain HTTP on the network; the TLS files come as a pair.
fn check_control(cfg: &VigilConfig, c: &mut Checker) {
    let k = &cfg.control;
    let tls = match (&k.tls_cert, &k.tls_key) {
        (Some(_), Some(_)) => true,
        (None, None) => false,
        (Some(_), None) => {
            c.fail(
                "control.tls_key",
                "required with control.tls_cert: the certificate's private key (PEM)".into(),
            );
            true
        }
        (None, Some(_)) => {
            c.fail(
                "control.tls_cert",
                "required with control.tls_key: the certificate chain (PEM)".into(),
            );
            true
        }
    };
    for (key, path) in [
        ("control.tls_cert", &k.tls_cert),
        ("control.tls_key", &k.tls_key),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            c.fail(key, "must not be empty".into());
        }
    }
    if k.token_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        c.fail("control.token_file", "must not be empty".into());
    }
    if let Some(read) = &k.read_token_file {
        if read.as_os_str().is_empty() {
            c.fail("control.read_token_file", "must not be empty".into());
        } else if *read == cfg.control_token_file() {
            c.fail(
                "control.read_token_file",
                format!(
                    "{} is also the operator's token file (control.token_file): the read-only \
                     token needs a file of its own",
                    read.display()
                ),
            );
        }
    }
    match k.address.parse::<std::net::SocketAddr>() {
        Ok(addr) if !addr.ip().is_loopback() && !tls && !k.allow_insecure_remote => c.fail(
            "control.address",
            format!(
                "{addr} is not a loopback address: serve the control API over TLS \
                 (control.tls_cert and control.tls_key), or set control.allow_insecure_remote = true \
                 to accept plain HTTP on the network (the bearer token then travels in clear text)"
            ),
        ),
        Ok(_) => {}
        Err(e) => c.fail(
            "control.address",
            format!(
                "expected host:port such as 127.0.0.1:7317, got {:?}: {e}",
                k.address
            ),
        ),
    }
}

/// The broker keys, checked when orders go to a broker (`venue = "alpaca"`).
fn check_broker(e: &ExecutionConfig, c: &mut Checker) {
    check_fix_figures(e, c);
    if e.venue == VenueKind::Fix {
        check_fix(e, c);
    }
    if e.venue != VenueKind::Alpaca {
        check_reconcile(e, c);
        return;
    }
    match e.broker_url.as_deref() {
        None => c.fail(
            "execution.broker_url",
            "is required with venue = \"alpaca\" (the broker's base URL, http://HOST:PORT)".into(),
        ),
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => c.fail(
            "execution.broker_url",
            format!("must start with http:// or https://, got {url:?}"),
        ),
        Some(_) => {}
    }
    credentials(
        c,
        ("execution.broker_key_id", &e.broker_key_id),
        ("execution.broker_secret_file", &e.broker_secret_file),
    );
    c.within(
        "execution.broker_poll_interval_ms",
        e.broker_poll_interval_ms,
    );
    c.within("execution.broker_timeout_ms", e.broker_timeout_ms);
    check_reconcile(e, c);
}

/// `[execution.reconcile]`, checked for every broker.
fn check_reconcile(e: &ExecutionConfig, c: &mut Checker) {
    if !e.venue.is_external() {
        return;
    }
    let r = &e.reconcile;
    c.within("execution.reconcile.interval_s", r.interval_s);
    c.within("execution.reconcile.retry_initial_ms", r.retry_initial_ms);
    c.within("execution.reconcile.retry_max_ms", r.retry_max_ms);
    c.ordered(
        ("execution.reconcile.retry_initial_ms", r.retry_initial_ms),
        Order::AtMost,
        ("execution.reconcile.retry_max_ms", r.retry_max_ms),
    );
}

/// A name and the file of its secret: both or neither, and the name not blank.
fn credentials(
    c: &mut Checker,
    (name_key, name): (&str, &Option<String>),
    (file_key, file): (&str, &Option<std::path::PathBuf>),
) {
    let short = |key: &str| key.rsplit('.').next().unwrap_or(key).to_string();
    match (name, file) {
        (Some(_), None) => c.fail(file_key, format!("is required with {}", short(name_key))),
        (None, Some(_)) => c.fail(name_key, format!("is required with {}", short(file_key))),
        (Some(n), Some(_)) if n.trim().is_empty() => c.fail(name_key, "must not be empty".into()),
        _ => {}
    }
}

/// `[execution.fix]`, checked when orders go to a FIX gateway (`venue = "fix"`).
fn check_fix(e: &ExecutionConfig, c: &mut Checker) {
    let f = &e.fix;
    match f.address.as_deref() {
        None => c.fail(
            "execution.fix.address",
            "is required with venue = \"fix\" (the gateway's host:port)".into(),
        ),
        Some(a) => {
            let port = a
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            match port {
                Some((host, Ok(p))) if !host.is_empty() && p > 0 => {}
                _ => c.fail(
                    "execution.fix.address",
                    format!("expected host:port such as 127.0.0.1:9880, got {a:?}"),
                ),
            }
        }
    }
    let drop_copy = f.drop_copy_sender_comp_id.is_some() || f.drop_copy_target_comp_id.is_some();
    if drop_copy
        && f.drop_copy_sender_comp_id == f.sender_comp_id
        && f.drop_copy_target_comp_id == f.target_comp_id
    {
        c.fail(
            "execution.fix.drop_copy_sender_comp_id",
            "the drop copy session must differ from the order session (other CompIDs)".into(),
        );
    }
    if drop_copy && f.positions != crate::FixPositions::Executions {
        c.fail(
            "execution.fix.drop_copy_sender_comp_id",
            "a drop copy is read only with positions = \"executions\" (with \"counterparty\" \
             the broker reports the positions itself)"
                .into(),
        );
    }
    for (key, value, required) in [
        ("execution.fix.sender_comp_id", &f.sender_comp_id, true),
        ("execution.fix.target_comp_id", &f.target_comp_id, true),
        (
            "execution.fix.drop_copy_sender_comp_id",
            &f.drop_copy_sender_comp_id,
            drop_copy,
        ),
        (
            "execution.fix.drop_copy_target_comp_id",
            &f.drop_copy_target_comp_id,
            drop_copy,
        ),
    ] {
        match value.as_deref() {
            None if !required => {}
            None if key.contains("drop_copy") => {
                c.fail(key, "is required with the other drop_copy CompID".into())
            }
            None => c.fail(key, "is required with venue = \"fix\"".into()),
            Some(v)
                if v.is_empty() || v.len() > 64 || !v.chars().all(|ch| ch.is_ascii_graphic()) =>
            {
                c.fail(
                    key,
                    format!("must be 1 to 64 printable characters without spaces, got {v:?}"),
                )
            }
            Some(_) => {}
        }
    }
    credentials(
        c,
        ("execution.fix.username", &f.username),
        ("execution.fix.password_file", &f.password_file),
    );
    if let Some(a) = &f.account
        && a.trim().is_empty()
    {
        c.fail("execution.fix.account", "must not be empty".into());
    }
    if !f.position_types.is_empty() && f.positions != crate::FixPositions::Counterparty {
        c.fail(
            "execution.fix.position_types",
            "applies only with positions = \"counterparty\" (the broker's PositionReports)".into(),
        );
    }
    for (i, t) in f.position_types.iter().enumerate() {
        if t.is_empty() || t.len() > 4 || !t.chars().all(|ch| ch.is_ascii_uppercase()) {
            c.fail(
                "execution.fix.position_types",
                format!("a PosType (703) is 1 to 4 capital letters such as SOD or TQ, got {t:?}"),
            );
        } else if f.position_types[..i].contains(t) {
            c.fail(
                "execution.fix.position_types",
                format!("{t} is listed twice (it would be counted twice)"),
            );
        }
    }
}

/// `[execution.fix]`'s figures, checked whatever the venue (a mistake is caught before the
/// day the venue changes).
fn check_fix_figures(e: &ExecutionConfig, c: &mut Checker) {
    let f = &e.fix;
    c.within("execution.fix.heartbeat_s", f.heartbeat_s);
    c.within("execution.fix.reconnect_initial_ms", f.reconnect_initial_ms);
    c.within("execution.fix.reconnect_max_ms", f.reconnect_max_ms);
    c.within("execution.fix.reply_timeout_ms", f.reply_timeout_ms);
    c.ordered(
        ("execution.fix.reconnect_initial_ms", f.reconnect_initial_ms),
        Order::AtMost,
        ("execution.fix.reconnect_max_ms", f.reconnect_max_ms),
    );
}

/// What is wrong with a canary's steps (percent): none, one outside (0, 100], one not above
/// the one before, or a last one that is not 100.
fn canary_steps_problem(steps: &[Decimal]) -> Option<String> {
    let hundred = Decimal::ONE_HUNDRED;
    if steps.is_empty() {
        return Some("needs at least one step, the last 100 (percent of capital)".into());
    }
    if let Some(bad) = steps.iter().find(|s| **s <= Decimal::ZERO || **s > hundred) {
        return Some(format!(
            "each step must be above 0 and at most 100 (percent), got {bad}"
        ));
    }
    if let Some(w) = steps.windows(2).find(|w| w[1] <= w[0]) {
        return Some(format!(
            "steps must increase, got {} after {} in {steps:?}",
            w[1], w[0]
        ));
    }
    match steps.last() {
        Some(last) if *last != hundred => Some(format!(
            "the last step must be 100 (percent: the candidate trades alone), got {last}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::VigilConfig;

    #[test]
    fn canary_steps_must_increase_and_end_at_one_hundred() {
        use rust_decimal::Decimal;
        let problem = |steps: &[i64]| {
            let mut cfg = VigilConfig::embedded_default();
            cfg.release.canary.steps = steps.iter().map(|s| Decimal::from(*s)).collect();
            cfg.validate()
                .err()
                .map(|e| e.to_string())
                .filter(|e| e.contains("release.canary.steps"))
        };
        assert_eq!(problem(&[5, 25, 50, 100]), None);
        assert_eq!(problem(&[100]), None);
        for (steps, says) in [
            (&[][..], "at least one step"),
            (&[5, 5, 100], "must increase, got 5 after 5"),
            (&[50, 25, 100], "must increase, got 25 after 50"),
            (&[5, 25, 50], "the last step must be 100"),
            (&[0, 100], "above 0 and at most 100"),
            (&[5, 150], "above 0 and at most 100"),
        ] {
            let got = problem(steps).unwrap_or_default();
            assert!(got.contains(says), "{steps:?}: {got}");
        }
    }

    #[test]
    fn a_fix_venue_needs_its_session_named_and_a_password_file_with_a_username() {
        let problems = |edit: &dyn Fn(&mut crate::FixConfig)| {
            let mut cfg = VigilConfig::embedded_default();
            cfg.execution.venue = crate::VenueKind::Fix;
            cfg.execution.fix.address = Some("127.0.0.1:9880".into());
            cfg.execution.fix.sender_comp_id = Some("VIGIL".into());
            cfg.execution.fix.target_comp_id = Some("BROKER".into());
            edit(&mut cfg.execution.fix);
            cfg.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(problems(&|_| {}), "", "a complete session is valid");
        assert_eq!(
            problems(&|f| f.position_types = vec!["SOD".into(), "TQ".into()]),
            "",
            "with the position types that add up"
        );
        assert_eq!(
            problems(&|f| {
                f.positions = crate::FixPositions::Executions;
                f.drop_copy_sender_comp_id = Some("VIGILDC".into());
                f.drop_copy_target_comp_id = Some("BROKERDC".into());
            }),
            "",
            "with a drop copy"
        );
        for (edit, says) in [
            (
                &(|f: &mut crate::FixConfig| f.address = None) as &dyn Fn(&mut crate::FixConfig),
                "execution.fix.address: is required",
            ),
            (
                &|f| f.address = Some("gateway".into()),
                "expected host:port",
            ),
            (&|f| f.address = Some("h:0".into()), "expected host:port"),
            (
                &|f| f.sender_comp_id = None,
                "execution.fix.sender_comp_id: is required",
            ),
            (&|f| f.target_comp_id = Some("A B".into()), "without spaces"),
            (
                &|f| f.username = Some("u".into()),
                "execution.fix.password_file: is required",
            ),
            (
                &|f| f.password_file = Some("p".into()),
                "execution.fix.username: is required",
            ),
            (
                &|f| f.drop_copy_sender_comp_id = Some("VIGILDC".into()),
                "a drop copy is read only with positions = \"executions\"",
            ),
            (
                &|f| {
                    f.positions = crate::FixPositions::Executions;
                    f.drop_copy_sender_comp_id = Some("VIGILDC".into());
                },
                "execution.fix.drop_copy_target_comp_id: is required with the other",
            ),
            (
                &|f| f.position_types = vec!["SOD".into(), "tq".into()],
                "execution.fix.position_types: a PosType (703) is 1 to 4 capital letters",
            ),
            (
                &|f| f.position_types = vec!["SOD".into(), "SOD".into()],
                "SOD is listed twice",
            ),
            (
                &|f| {
                    f.positions = crate::FixPositions::Executions;
                    f.position_types = vec!["TQ".into()];
                },
                "execution.fix.position_types: applies only with positions = \"counterparty\"",
            ),
            (&|f| f.heartbeat_s = 0, "execution.fix.heartbeat_s"),
            (
                &|f| f.reconnect_initial_ms = 60_000,
                "execution.fix.reconnect_initial_ms",
            ),
        ] {
            let got = problems(edit);
            assert!(got.contains(says), "{says}: {got}");
        }
    }

    #[test]
    fn the_built_in_rules_parse_validate_and_hold_the_seed_table() {
        use vigil_core::Level;
        let rules = crate::default_rules();
        let mut cfg = VigilConfig::embedded_default();
        cfg.monitor.rules = rules.clone();
        cfg.validate()
            .expect("config/rules.toml validates as monitor.rules");
        let got: Vec<(&str, &str, f64, u64, Level)> = rules
            .iter()
            .map(|r| (r.name.as_str(), r.op.as_str(), r.value, r.for_s, r.level))
            .collect();
        assert_eq!(
            got,
            [
                ("network_latency_high", ">", 0.2, 0, Level::Warn),
                ("cpu_high", ">", 0.8, 300, Level::Warn),
                ("memory_high", ">", 0.9, 0, Level::Critical),
                ("disk_low", "<", 10e9, 0, Level::Warn),
                ("data_source_disconnected", "<", 1.0, 60, Level::Critical),
                ("data_stale", ">", 60.0, 0, Level::Critical),
                ("api_success_rate_low", "<", 0.95, 0, Level::Warn),
                ("agent_backlog_high", ">", 100.0, 0, Level::Warn),
                ("agent_response_slow", ">", 5.0, 0, Level::Warn),
                ("daily_drawdown_high", ">", 0.03, 0, Level::Warn),
                ("weekly_drawdown_high", ">", 0.05, 0, Level::Critical),
                ("trade_size_high", ">", 0.10, 0, Level::Critical),
                ("trade_frequency_off", ">", 3.0, 0, Level::Warn),
            ]
        );
    }

    #[test]
    fn the_broker_keys_are_checked_only_for_the_alpaca_venue() {
        let cfg = VigilConfig::embedded_default();
        assert_eq!(cfg.execution.venue, crate::VenueKind::Paper);
        let issues = |text: &str| -> Vec<String> {
            match VigilConfig::from_toml_str(text, "t") {
                Ok(_) => Vec::new(),
                Err(e) => e.issues.iter().map(ToString::to_string).collect(),
            }
        };
        let base = "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n";
        assert!(issues(&format!("{base}[execution]\nbroker_poll_interval_ms = 0\n")).is_empty());
        assert_eq!(
            issues(&format!(
                "{base}[execution]\nvenue = \"alpaca\"\nbroker_key_id = \"k\"\n\
                 broker_poll_interval_ms = 0\nbroker_timeout_ms = 1\nbroker_urll = \"x\"\n"
            )),
            vec![
                "execution.broker_urll: unknown key".to_string(),
                "execution.broker_url: is required with venue = \"alpaca\" (the broker's base \
                 URL, http://HOST:PORT)"
                    .to_string(),
                "execution.broker_secret_file: is required with broker_key_id".to_string(),
                "execution.broker_poll_interval_ms: must be in [1, 60000] ms, got 0".to_string(),
                "execution.broker_timeout_ms: must be in [100, 60000] ms, got 1".to_string(),
            ]
        );
        assert_eq!(
            issues(&format!(
                "{base}[execution]\nvenue = \"alpaca\"\nbroker_url = \"127.0.0.1:1\"\n"
            )),
            vec![
                "execution.broker_url: must start with http:// or https://, got \"127.0.0.1:1\""
                    .to_string()
            ]
        );
        let ok = issues(&format!(
            "{base}[execution]\nvenue = \"alpaca\"\nbroker_url = \"http://127.0.0.1:1\"\n\
             broker_key_id = \"k\"\nbroker_secret_file = \"s\"\n"
        ));
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn the_fleet_section_is_validated_naming_each_key() {
        let issues = |text: &str| -> Vec<String> {
            let text = format!(
                "[data]\ninstruments = [{{ symbol = \"X\", path = \"bundled:GOOG_1d.csv\" }}]\n{text}"
            );
            match VigilConfig::from_toml_str(&text, "t") {
                Ok(_) => Vec::new(),
                Err(e) => e.issues.iter().map(ToString::to_string).collect(),
            }
        };
        let ok = "[fleet]\nurl = \"nats://127.0.0.1:4222\"\nnode = \"host-a_1\"\n";
        assert!(issues(ok).is_empty(), "{:?}", issues(ok));
        let f = VigilConfig::from_toml_str(
            &format!(
                "[data]\ninstruments = [{{ symbol = \"X\", path = \"bundled:GOOG_1d.csv\" }}]\n{ok}"
            ),
            "t",
        )
        .expect("valid")
        .fleet
        .expect("on");
        assert_eq!((f.stream.as_str(), f.lease_s), ("VIGIL_FLEET", 15));
        assert!(
            VigilConfig::embedded_default().fleet.is_none(),
            "an island by default"
        );
        assert_eq!(
            issues(
                "[fleet]\nurl = \"http://127.0.0.1:4222\"\nnode = \"a.b\"\nstream = \"\"\n\
                 lease_s = 1\n"
            ),
            vec![
                "fleet.url: must be nats://HOST:PORT, got \"http://127.0.0.1:4222\"".to_string(),
                "fleet.node: must be 1 to 64 letters, digits, '-' or '_', got \"a.b\"".to_string(),
                "fleet.stream: must be 1 to 64 letters, digits, '-' or '_', got \"\"".to_string(),
                issues("[fleet]\nurl = \"nats://h:1\"\nnode = \"n\"\nlease_s = 1\n")[0].clone(),
            ]
        );
        assert!(
            issues("[fleet]\nurl = \"nats://h:1\"\nnode = \"n\"\nlease_s = 1\n")[0]
                .starts_with("fleet.lease_s: ")
        );
        assert!(
            issues("[fleet]\nurl = \"nats://h:1\"\nnode = \"n\"\nleas_s = 5\n")[0]
                .starts_with("fleet.leas_s: unknown field `leas_s`")
        );
    }

    #[test]
    fn the_cross_check_is_validated_naming_each_key() {
        let issues = |text: &str| -> Vec<String> {
            match VigilConfig::from_toml_str(text, "t") {
                Ok(_) => Vec::new(),
                Err(e) => e.issues.iter().map(ToString::to_string).collect(),
            }
        };
        let feed = "[data]\ninstruments = [{ symbol = \"X\" }]\n[data.feed]\n\
                    url = \"ws://127.0.0.1:1/stream\"\nkey_id = \"k\"\nsecret_file = \"s\"\n\
                    backups = [{ url = \"ws://127.0.0.1:2/stream\", key_id = \"k\", \
                    secret_file = \"s\" }]\n";
        let ok = format!(
            "{feed}[data.cross_check]\nurl = \"ws://127.0.0.1:3/stream\"\nkey_id = \"r\"\n\
             secret_file = \"r.secret\"\n"
        );
        assert!(issues(&ok).is_empty(), "{:?}", issues(&ok));
        let cfg = VigilConfig::from_toml_str(&ok, "t").expect("valid");
        let x = cfg.data.cross_check.expect("on");
        assert_eq!(x.max_disagreement_pct, rust_decimal::Decimal::new(2, 0));
        assert_eq!(x.release_after_bars, 3);
        assert_eq!(
            issues(&format!(
                "{feed}[data.cross_check]\nurl = \"ws://127.0.0.1:2/stream\"\nkey_id = \" \"\n\
                 secret_file = \"r\"\nmax_disagreement_pct = \"0\"\nrelease_after = 2\n"
            )),
            vec![
                "data.cross_check.release_after: unknown key".to_string(),
                "data.cross_check.url: must be a source of its own, got \
                 data.feed.backups[0].url's \"ws://127.0.0.1:2/stream\" (a source compared with \
                 itself never disagrees)"
                    .to_string(),
                "data.cross_check.key_id: must not be empty".to_string(),
                "data.cross_check.max_disagreement_pct: must be in (0, 100) %, got 0".to_string(),
            ]
        );
        assert_eq!(
            issues(
                "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n\
                 [data.cross_check]\nurl = \"http://x\"\nkey_id = \"r\"\nsecret_file = \"r\"\n"
            ),
            vec![
                "data.cross_check: needs [data.feed]: the reference is compared with a live \
                 feed's bars"
                    .to_string(),
                "data.cross_check.url: must be a ws:// URL (wss:// is not supported yet), got \
                 \"http://x\""
                    .to_string(),
            ]
        );
    }

    #[test]
    fn embedded_default_is_valid() {
        let cfg = VigilConfig::from_toml_str(crate::EMBEDDED_DEFAULT, "default")
            .expect("embedded default must validate");
        assert!(!cfg.data.instruments.is_empty());
    }

    #[test]
    fn lists_every_problem_with_its_dotted_path() {
        let text = r#"
[session]
initial_cash = "-5"
colour = "blue"

[data]
instruments = [{ symbol = "GOOG", path = "a.csv" }, { symbol = "GOOG", path = "b.csv" }]
batch_size = 0

[risk]
max_position_pct = "1.5"
position_pct = "0.2"
typo_limit = 3
drawdown_control = { line_pct = "1", step_pct = "1.5" }

[signal]
fast_span = 30
slow_span = 10
"#;
        let err = VigilConfig::from_toml_str(text, "bad.toml").expect_err("invalid");
        let report = err.to_string();
        for needle in [
            "session.colour: unknown key",
            "risk.typo_limit: unknown key",
            "session.initial_cash: must be in (0, 1000000000000000], got -5",
            "data.instruments[1].symbol: \"GOOG\" is listed twice",
            "data.batch_size: must be in [1, 65536] bars, got 0",
            "risk.max_position_pct: must be in (0, 1], got 1.5",
            "risk.drawdown_control.line_pct: must be in (0, 1), got 1",
            "risk.drawdown_control.step_pct: must be in [0, 1] (0: only stops new positions), got 1.5",
            "signal.slow_span: must be greater than signal.fast_span (30), got 10",
        ] {
            assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
        }
        assert!(report.starts_with("bad.toml: "), "{report}");
    }

    /// Every pair of keys whose values must stand in order is checked, each message naming
    /// both keys and both values; equal values pass where "at least" or "at most" is asked.
    #[test]
    fn keys_that_must_stand_in_order_name_both_keys() {
        let base = "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n";
        for (extra, says) in [
            (
                "[regime]\nshort_window = 20\nlong_window = 20\n",
                Some("regime.long_window: must be greater than regime.short_window (20), got 20"),
            ),
            (
                "[monitor]\nheartbeat_interval_ms = 2000\nheartbeat_timeout_ms = 1000\n",
                Some(
                    "monitor.heartbeat_timeout_ms: must be greater than monitor.heartbeat_interval_ms (2000), got 1000",
                ),
            ),
            (
                "[monitor.supervision]\nbackoff_initial_ms = 500\nbackoff_max_ms = 100\n",
                Some(
                    "monitor.supervision.backoff_max_ms: must be at least monitor.supervision.backoff_initial_ms (500), got 100",
                ),
            ),
            (
                "[monitor.supervision]\nbackoff_initial_ms = 500\nbackoff_max_ms = 500\n",
                None,
            ),
            (
                "[execution]\nvenue = \"alpaca\"\nbroker_url = \"http://127.0.0.1:1\"\nbroker_key_id = \"k\"\nbroker_secret_file = \"k.secret\"\n[execution.reconcile]\nretry_initial_ms = 900\nretry_max_ms = 800\n",
                Some(
                    "execution.reconcile.retry_initial_ms: must be at most execution.reconcile.retry_max_ms (800), got 900",
                ),
            ),
            (
                "[execution]\nvenue = \"alpaca\"\nbroker_url = \"http://127.0.0.1:1\"\nbroker_key_id = \"k\"\nbroker_secret_file = \"k.secret\"\n[execution.reconcile]\nretry_initial_ms = 800\nretry_max_ms = 800\n",
                None,
            ),
        ] {
            let text = format!("{base}{extra}");
            let got = VigilConfig::from_toml_str(&text, "c.toml");
            match says {
                Some(says) => {
                    let report = got.expect_err(extra).to_string();
                    assert!(report.contains(says), "missing {says:?} in:\n{report}");
                }
                None => {
                    got.expect(extra);
                }
            }
        }
    }

    /// The configs issue 19 found `config check` calling ok, then panicking, hanging or
    /// aborting at start.
    #[test]
    fn the_configs_that_passed_the_check_then_crashed_are_refused_naming_key_value_and_range() {
        let base = "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n";
        for (section, line, says) in [
            (
                "risk",
                "quantity_step = \"0.0000000000000000000000000001\"",
                "risk.quantity_step: must be in [0.00000001, 1000000], got 0.0000000000000000000000000001",
            ),
            (
                "session",
                "initial_cash = \"79228162514264337593543950335\"",
                "session.initial_cash: must be in (0, 1000000000000000], got 79228162514264337593543950335",
            ),
            (
                "execution",
                "commission_min = \"79228162514264337593543950335\"",
                "execution.commission_min: must be in [0, 1000000000000000], got 79228162514264337593543950335",
            ),
            (
                "monitor",
                "probe_interval_ms = 9223372036854775807",
                "monitor.probe_interval_ms: must be in [10, 86400000] ms, got 9223372036854775807",
            ),
            (
                "log",
                "flush_interval_ms = 9223372036854775807",
                "log.flush_interval_ms: must be in [10, 60000] ms, got 9223372036854775807",
            ),
            (
                "regime",
                "long_window = 1000000000000",
                "regime.long_window: must be in [3, 100000] bars, got 1000000000000",
            ),
            (
                "data.anomaly",
                "window = 1000000000000",
                "data.anomaly.window: must be in [2, 100000] returns, got 1000000000000",
            ),
        ] {
            let text = format!("{base}[{section}]\n{line}\n");
            let err = VigilConfig::from_toml_str(&text, "t").expect_err(line);
            assert!(
                err.issues.iter().any(|i| i.to_string() == says),
                "{line}: want {says:?} in\n{err}"
            );
        }
        let err = VigilConfig::from_toml_str(
            "[data]\nspeed = 1e-300\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n",
            "t",
        )
        .expect_err("a replay that never delivers a bar");
        assert_eq!(
            err.issues[0].to_string(),
            "data.speed: must be in [1, 1000000000] × real time (or \"max\"), got 1e-300"
        );
    }

    #[test]
    fn type_errors_name_the_key_and_line() {
        let err = VigilConfig::from_toml_str("[risk]\nmax_position_pct = true\n", "t.toml")
            .expect_err("type error");
        let report = err.to_string();
        assert!(report.contains("line 2"), "{report}");
        assert!(report.contains("max_position_pct"), "{report}");
    }

    #[test]
    fn secrets_never_print() {
        let s = crate::Secret::new("hunter2-api-key");
        assert_eq!(format!("{s} {s:?}"), "[REDACTED] [REDACTED]");
        assert_eq!(s.expose(), "hunter2-api-key");
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"[REDACTED]\"");
    }

    #[test]
    fn speed_accepts_max_or_a_factor() {
        let cfg = VigilConfig::from_toml_str(
            "[data]\nspeed = 60\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n",
            "t",
        )
        .expect("valid");
        assert_eq!(cfg.data.speed, crate::Speed::Factor(60.0));
        let err = VigilConfig::from_toml_str(
            "[data]\nspeed = \"fast\"\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n",
            "t",
        )
        .expect_err("bad speed");
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("\"fast\""),
            "{err}"
        );
    }

    #[test]
    fn a_non_loopback_control_address_needs_tls_or_an_explicit_override() {
        let base = "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n[control]\n";
        let err = VigilConfig::from_toml_str(&format!("{base}address = \"0.0.0.0:7317\"\n"), "t")
            .expect_err("plain HTTP on every interface");
        let report = err.to_string();
        assert!(
            report.contains("control.address: 0.0.0.0:7317 is not a loopback address")
                && report.contains("control.tls_cert")
                && report.contains("allow_insecure_remote"),
            "{report}"
        );
        for ok in [
            "address = \"0.0.0.0:7317\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
            "address = \"0.0.0.0:7317\"\nallow_insecure_remote = true\n",
            "address = \"[::1]:7317\"\n",
        ] {
            VigilConfig::from_toml_str(&format!("{base}{ok}"), "t")
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = VigilConfig::from_toml_str(&format!("{base}tls_cert = \"c.pem\"\n"), "t")
            .expect_err("a certificate without its key");
        assert!(
            err.to_string()
                .contains("control.tls_key: required with control.tls_cert"),
            "{err}"
        );
    }

    #[test]
    fn the_token_file_defaults_to_the_store_folder() {
        let mut cfg = VigilConfig::embedded_default();
        assert_eq!(
            cfg.control_token_file(),
            std::path::PathBuf::from("state/control.token")
        );
        cfg.store.path = "/srv/vigil/db/vigil.db".into();
        assert_eq!(
            cfg.control_token_file(),
            std::path::PathBuf::from("/srv/vigil/db/control.token")
        );
        cfg.control.token_file = Some("/etc/vigil/token".into());
        assert_eq!(
            cfg.control_token_file(),
            std::path::PathBuf::from("/etc/vigil/token")
        );
    }

    #[test]
    fn store_url_selects_postgresql_and_anything_else_is_refused_without_showing_it() {
        let base = "[data]\ninstruments = [{ symbol = \"X\", path = \"x.csv\" }]\n[store]\n";
        for ok in [
            "url = \"postgres://127.0.0.1:5432/test\"\n",
            "url = \"postgresql://ana:s3cret@db.internal/vigil?sslmode=require\"\n",
        ] {
            let cfg = VigilConfig::from_toml_str(&format!("{base}{ok}"), "t")
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(cfg.store.url.is_some());
        }
        for (bad, says) in [
            (
                "url = \"mysql://ana:s3cret@db/vigil\"\n",
                "got a mysql:// URL",
            ),
            ("url = \"ana:s3cret@db/vigil\"\n", "got no scheme"),
            ("url = \"postgres://\"\n", "names no server"),
            ("url = \"\"\n", "is empty"),
        ] {
            let err = VigilConfig::from_toml_str(&format!("{base}{bad}"), "t")
                .expect_err("not a PostgreSQL URL");
            let report = err.to_string();
            assert!(
                report.contains("store.url: ") && report.contains(says),
                "{bad}: {report}"
            );
            assert!(!report.contains("s3cret"), "{report}");
        }
        let cfg = VigilConfig::from_toml_str(
            &format!("{base}url = \"postgres://ana:s3cret@db/vigil?password=other\"\n"),
            "t",
        )
        .expect("valid");
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "Debug shows no secret"
        );
        let secrets = cfg.secrets();
        assert!(
            secrets.contains(&"s3cret".to_string()) && secrets.contains(&"other".to_string()),
            "the log writer redacts the passwords: {secrets:?}"
        );
    }

    #[test]
    fn a_redacted_url_has_no_password() {
        for (url, shown) in [
            (
                "postgres://ana:s3cret@db:5432/vigil",
                "postgres://ana@db:5432/vigil",
            ),
            ("postgres://ana@db/vigil", "postgres://ana@db/vigil"),
            (
                "postgres://127.0.0.1:5432/test?options[search_path]=x",
                "postgres://127.0.0.1:5432/test?options[search_path]=x",
            ),
            (
                "postgres://db/vigil?user=ana&password=s3cret&sslmode=require",
                "postgres://db/vigil?user=ana&sslmode=require",
            ),
            (
                "postgres://db/vigil?sslpassword=s3cret",
                "postgres://db/vigil",
            ),
            ("ana:s3cret@db", "ana@db"),
        ] {
            assert_eq!(crate::redact_url(url), shown, "{url}");
        }
    }
}
