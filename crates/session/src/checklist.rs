//! The seed's checklists: pre-market, post-market, weekly, monthly. Each check is pass,
//! warn or fail with a reason a person can act on; every report is stored as JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use vigil_config::{BUNDLED_PREFIX, VigilConfig};
use vigil_core::Timestamp;

/// Which checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecklistKind {
    /// Before the open: can trading start?
    Premarket,
    /// After the close: is the day accounted for?
    Postmarket,
    /// The week in review.
    Weekly,
    /// The month in review.
    Monthly,
}

impl ChecklistKind {
    /// Returns the name used on the command line and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecklistKind::Premarket => "premarket",
            ChecklistKind::Postmarket => "postmarket",
            ChecklistKind::Weekly => "weekly",
            ChecklistKind::Monthly => "monthly",
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    /// Fine.
    Pass,
    /// Degraded; a person should look, trading may go on.
    Warn,
    /// Not fit to trade (pre-market: trading does not open).
    Fail,
}

impl CheckStatus {
    /// Returns the status as text.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// What was checked (`disk_space`).
    pub name: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// Why, with the figures.
    pub reason: String,
}

/// A checklist run.
#[derive(Clone, Debug)]
pub struct ChecklistReport {
    /// Which checklist.
    pub kind: ChecklistKind,
    /// When it ran.
    pub at: Timestamp,
    /// Every check, in order.
    pub results: Vec<CheckResult>,
}

impl ChecklistReport {
    /// Returns the worst status.
    pub fn status(&self) -> CheckStatus {
        self.results
            .iter()
            .map(|r| r.status)
            .max()
            .unwrap_or(CheckStatus::Pass)
    }

    /// Returns the failed checks as one line (for logs and errors).
    pub fn failures(&self) -> String {
        self.results
            .iter()
            .filter(|r| r.status == CheckStatus::Fail)
            .map(|r| format!("{}: {}", r.name, r.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Renders the report for a person.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} checklist at {}: {}\n",
            self.kind.as_str(),
            self.at.format("%Y-%m-%d %H:%M UTC"),
            self.status().as_str().to_uppercase()
        );
        for r in &self.results {
            writeln!(
                out,
                "  [{:<4}] {:<22} {}",
                r.status.as_str(),
                r.name,
                r.reason
            )
            .expect("writing to a String cannot fail");
        }
        out
    }

    /// Renders the report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "checklist": self.kind.as_str(),
            "at": self.at.to_rfc3339(),
            "status": self.status().as_str(),
            "checks": self.results.iter().map(|r| json!({
                "name": r.name, "status": r.status.as_str(), "reason": r.reason,
            })).collect::<Vec<_>>(),
        })
    }

    /// Stores the report as `DIR/<kind>-<YYYYMMDDTHHMMSSZ>.json` and returns the path.
    ///
    /// # Errors
    /// Fails when the folder or file cannot be written.
    pub fn store(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!(
            "{}-{}.json",
            self.kind.as_str(),
            self.at.format("%Y%m%dT%H%M%SZ")
        ));
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }
}

fn check(name: &'static str, status: CheckStatus, reason: impl Into<String>) -> CheckResult {
    CheckResult {
        name,
        status,
        reason: reason.into(),
    }
}

use vigil_monitoring::free_space;

/// Disk space on the log volume against the configured thresholds.
pub(crate) fn disk_check(cfg: &VigilConfig) -> CheckResult {
    let gb = 1_000_000_000u64;
    let free = match free_space(&cfg.log.dir) {
        Ok(free) => free,
        Err(e) => return check("disk_space", CheckStatus::Fail, format!("cannot tell: {e}")),
    };
    let text = format!("{:.1} GB free on the log volume", free as f64 / gb as f64);
    // The first threshold the free space is below, failing before warning.
    let below = [
        (CheckStatus::Fail, cfg.checklist.fail_free_disk_gb),
        (CheckStatus::Warn, cfg.checklist.warn_free_disk_gb),
    ]
    .into_iter()
    .find(|(_, limit)| free < limit * gb);
    match below {
        Some((status, limit)) => check("disk_space", status, format!("{text}, below {limit} GB")),
        None => check("disk_space", CheckStatus::Pass, text),
    }
}

/// How long the pre-market check waits for a feed to accept a connection.
const FEED_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn data_sources(cfg: &VigilConfig) -> CheckResult {
    if let Some(feed) = &cfg.data.feed {
        return feeds_reachable(feed);
    }
    let mut problems = Vec::new();
    for inst in &cfg.data.instruments {
        if let Some(name) = inst.path.strip_prefix(BUNDLED_PREFIX) {
            if crate::bundled(name).is_none() {
                problems.push(format!("{}: no bundled file {name}", inst.symbol));
            }
            continue;
        }
        let src = vigil_providers::CsvSource::file(vigil_core::SymbolId(0), &inst.path);
        let mut bars = Vec::new();
        match vigil_providers::CsvBarReader::open(&src).and_then(|mut r| r.read_batch(1, &mut bars))
        {
            Ok(_) if bars.is_empty() => {
                problems.push(format!("{}: {} has no bars", inst.symbol, inst.path))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{}: {e}", inst.symbol)),
        }
    }
    if problems.is_empty() {
        check(
            "data_sources",
            CheckStatus::Pass,
            format!("{} source(s) open and readable", cfg.data.instruments.len()),
        )
    } else {
        check("data_sources", CheckStatus::Fail, problems.join("; "))
    }
}

/// With `[data.feed]` the bars come from the feed, not from files: each feed (the primary
/// and its backups) must have its secret readable and accept a TCP connection (no login:
/// a feed that allows one stream per key is not disturbed while vigil runs). The primary
/// down with a backup up warns; every feed down fails.
fn feeds_reachable(primary: &vigil_config::FeedConfig) -> CheckResult {
    let feeds: Vec<&vigil_config::FeedConfig> = std::iter::once(primary)
        .chain(primary.backups.iter())
        .collect();
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (i, feed) in feeds.iter().enumerate() {
        let name = if i == 0 { "feed" } else { "backup" };
        let res = crate::read_secret("data.feed.secret_file", &feed.secret_file)
            .map_err(|e| e.to_string())
            .and_then(|_| reach(&feed.url));
        match res {
            Ok(ms) => up.push(format!("{name} {} answers ({ms} ms)", feed.url)),
            Err(e) => down.push((i, format!("{name} {}: {e}", feed.url))),
        }
    }
    let text = up
        .iter()
        .cloned()
        .chain(down.iter().map(|(_, d)| d.clone()))
        .collect::<Vec<_>>()
        .join("; ");
    let status = if up.is_empty() {
        CheckStatus::Fail
    } else if down.is_empty() {
        CheckStatus::Pass
    } else {
        CheckStatus::Warn
    };
    check("data_sources", status, text)
}

/// Milliseconds to open a TCP connection to a `ws://HOST:PORT/…` URL's address.
fn reach(url: &str) -> Result<u128, String> {
    use std::net::ToSocketAddrs as _;
    let rest = url.strip_prefix("ws://").ok_or("not a ws:// URL")?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let addrs: Vec<_> = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let t0 = std::time::Instant::now();
    let mut last = format!("{host}: no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, FEED_CONNECT_TIMEOUT) {
            Ok(_) => return Ok(t0.elapsed().as_millis()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

fn log_writable(cfg: &VigilConfig) -> CheckResult {
    let probe = cfg.log.dir.join(".vigil-write-probe");
    let res = std::fs::create_dir_all(&cfg.log.dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    match res {
        Ok(()) => check(
            "log_writable",
            CheckStatus::Pass,
            format!("{} is writable", cfg.log.dir.display()),
        ),
        Err(e) => check(
            "log_writable",
            CheckStatus::Fail,
            format!("cannot write to {}: {e}", cfg.log.dir.display()),
        ),
    }
}

fn log_chain(cfg: &VigilConfig) -> CheckResult {
    // The chain, its key and the anchors in the store (a store not made yet: the chain).
    let verified = crate::logcheck::verify_log(&crate::logcheck::LogCheck {
        dir: cfg.log.dir.clone(),
        anchors: crate::logcheck::AnchorSource::Config {
            store: cfg.store.clone(),
            required: false,
        },
        key_file: cfg
            .log
            .hmac_key_file
            .clone()
            .map(|f| ("log.hmac_key_file".to_string(), f)),
    });
    match verified {
        Ok(r) if r.files == 0 => check("logs_verified", CheckStatus::Pass, "no log yet"),
        Ok(r) if r.is_clean() => check(
            "logs_verified",
            CheckStatus::Pass,
            format!(
                "{} file(s), {} line(s), chain intact, {} anchor(s) match{}",
                r.files,
                r.lines,
                r.anchors,
                r.unchecked
                    .first()
                    .map(|n| format!("; not checked: {n}"))
                    .unwrap_or_default()
            ),
        ),
        Ok(r) => check(
            "logs_verified",
            CheckStatus::Fail,
            format!(
                "{} problem(s), first: {}",
                r.problems.len(),
                r.problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        ),
        Err(e) => check(
            "logs_verified",
            CheckStatus::Fail,
            format!("cannot read the log: {e}"),
        ),
    }
}

fn log_folder_size(dir: &Path) -> Result<u64, String> {
    let files = vigil_log::list_log_files(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut total = 0;
    for f in files {
        total += std::fs::metadata(&f.path)
            .map_err(|e| format!("cannot read {}: {e}", f.path.display()))?
            .len();
    }
    Ok(total)
}

/// Every log line of the folder, as JSON, in write order.
fn log_lines(cfg: &VigilConfig) -> Result<Vec<Value>, String> {
    let mut lines = Vec::new();
    vigil_log::read_lines(&cfg.log.dir, |_, _, _, v| lines.push(v)).map_err(|e| e.to_string())?;
    Ok(lines)
}

fn ts_of(v: &Value) -> Option<Timestamp> {
    v["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The pre-market checks that run inside `vigil run` at the pre-market phase: cheap and
/// local (no log walk, no data re-read), so the trading thread is held for milliseconds.
pub fn premarket_gate(cfg: &VigilConfig, now: Timestamp) -> ChecklistReport {
    let mut results = vec![match cfg.validate() {
        Ok(()) => check("risk_parameters", CheckStatus::Pass, "loaded and valid"),
        Err(e) => check(
            "risk_parameters",
            CheckStatus::Fail,
            e.to_string().replace('\n', " "),
        ),
    }];
    results.push(disk_check(cfg));
    results.push(log_writable(cfg));
    ChecklistReport {
        kind: ChecklistKind::Premarket,
        at: now,
        results,
    }
}

/// The post-close work inside `vigil run` (a live session, at the post-close phase): the
/// session's closing snapshot and the day's P&L, its alert summary, and the log's
/// verification; then the day report from the same lines (see [`crate::DayReport`]),
/// written into `checklist.dir`. Reads only the log files of the last ten days, so it
/// costs the same in the tenth month as in the first (the verification walks the whole
/// chain).
pub fn post_close(
    cfg: &VigilConfig,
    session: chrono::NaiveDate,
    now: Timestamp,
) -> (ChecklistReport, Result<crate::WrittenReport, String>) {
    let mut results = Vec::new();
    let read = recent_lines(&cfg.log.dir, session - Duration::days(10));
    match &read {
        Err(e) => results.push(check(
            "closing_snapshot",
            CheckStatus::Fail,
            format!("cannot read the log: {e}"),
        )),
        Ok(lines) => {
            let (today, previous) = crate::day_report::closing_snapshots(lines, session);
            results.push(match today {
                Some(v) => {
                    let equity = |v: &Value| {
                        let text = v["data"]["equity"].to_string();
                        text.trim_matches('"')
                            .parse::<rust_decimal::Decimal>()
                            .map_err(|e| format!("equity {text} does not read: {e}"))
                    };
                    let day = previous
                        .map(|prev| Ok::<_, String>(equity(v)? - equity(prev)?))
                        .map(|d| match d {
                            Ok(d) => format!(", {d} today"),
                            Err(e) => format!(", today's P&L unknown: {e}"),
                        })
                        .unwrap_or_default();
                    check(
                        "closing_snapshot",
                        CheckStatus::Pass,
                        format!(
                            "at {}: positions [{}], equity {}, P&L {} since the start{}",
                            v["timestamp"].as_str().unwrap_or("?"),
                            v["data"]["positions"].as_str().unwrap_or(""),
                            v["data"]["equity"],
                            v["data"]["pnl"],
                            day
                        ),
                    )
                }
                None => check(
                    "closing_snapshot",
                    CheckStatus::Fail,
                    format!(
                        "no closing snapshot for the {session} session: the close was not marked"
                    ),
                ),
            });
            let day: Vec<&Value> = lines
                .iter()
                .filter(|v| crate::day_report::on_day(v, session))
                .collect();
            results.push(alert_summary(&day, &session.to_string()));
        }
    }
    results.push(log_chain(cfg));
    let day = match &read {
        Ok(lines) => crate::DayReport::from_lines(session, now, lines, results.clone())
            .write(&cfg.checklist.dir),
        Err(e) => Err(format!("cannot read the log: {e}")),
    };
    let checks = ChecklistReport {
        kind: ChecklistKind::Postmarket,
        at: now,
        results,
    };
    (checks, day)
}

/// The WARN, ERROR and CRITICAL lines among `lines` (`of`: which lines, for the reason).
fn alert_summary(lines: &[&Value], of: &str) -> CheckResult {
    let count = |lvl: &str| lines.iter().filter(|v| v["level"] == lvl).count();
    let (w, e, c) = (count("WARN"), count("ERROR"), count("CRITICAL"));
    check(
        "alert_summary",
        if e + c > 0 {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        },
        format!("{of}: {c} CRITICAL, {e} ERROR, {w} WARN line(s)"),
    )
}

/// The lines of the log files opened on or after `since`, as JSON, in write order. The
/// newest file's last line may be being written: if it does not read, it is left out;
/// any other line that does not read fails the read, naming its file and line.
fn recent_lines(dir: &Path, since: chrono::NaiveDate) -> Result<Vec<Value>, String> {
    let files = vigil_log::list_log_files(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let recent: Vec<_> = files.into_iter().filter(|f| f.date >= since).collect();
    let mut lines = Vec::new();
    for (k, file) in recent.iter().enumerate() {
        let text = std::fs::read_to_string(&file.path)
            .map_err(|e| format!("cannot read {}: {e}", file.path.display()))?;
        let raw: Vec<&str> = text.lines().collect();
        for (n, line) in raw.iter().enumerate() {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => lines.push(v),
                Err(_) if k + 1 == recent.len() && n + 1 == raw.len() && !text.ends_with('\n') => {}
                Err(e) => {
                    return Err(format!("{}:{}: not JSON: {e}", file.path.display(), n + 1));
                }
            }
        }
    }
    Ok(lines)
}

/// Runs a checklist against the config and the log folder at `now`.
pub fn run_checklist(kind: ChecklistKind, cfg: &VigilConfig, now: Timestamp) -> ChecklistReport {
    let mut results = Vec::new();
    match kind {
        ChecklistKind::Premarket => {
            results.push(match cfg.validate() {
                Ok(()) => check(
                    "risk_parameters",
                    CheckStatus::Pass,
                    format!(
                        "loaded and valid: max position {}% of equity, gross exposure {}%",
                        cfg.risk.max_position_pct * rust_decimal::Decimal::ONE_HUNDRED,
                        cfg.risk.max_gross_exposure_pct * rust_decimal::Decimal::ONE_HUNDRED
                    ),
                ),
                Err(e) => check(
                    "risk_parameters",
                    CheckStatus::Fail,
                    e.to_string().replace('\n', " "),
                ),
            });
            results.push(
                match cfg
                    .calendar
                    .calendar()
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        let day = c.local_date(now);
                        c.explain(day)
                            .map(|e| (e.status != vigil_calendar::DayStatus::Closed, e.to_string()))
                            .map_err(|e| e.to_string())
                    }) {
                    Ok((true, text)) => check("calendar", CheckStatus::Pass, text),
                    Ok((false, text)) => check(
                        "calendar",
                        CheckStatus::Warn,
                        format!("no session today: {text}"),
                    ),
                    Err(e) => check("calendar", CheckStatus::Fail, e),
                },
            );
            results.push(data_sources(cfg));
            results.push(disk_check(cfg));
            results.push(log_writable(cfg));
            results.push(log_chain(cfg));
            results.push(positions_reconciled(cfg));
            results.push(alert_channels(cfg));
        }
        ChecklistKind::Postmarket => {
            match log_lines(cfg) {
                Err(e) => results.push(check(
                    "pnl_computed",
                    CheckStatus::Fail,
                    format!("cannot read the log: {e}"),
                )),
                Ok(lines) => {
                    let session_start = lines
                        .iter()
                        .rposition(|v| v["event"] == "session_started")
                        .unwrap_or(0);
                    let session = &lines[session_start..];
                    results.push(
                        match session
                            .iter()
                            .rev()
                            .find(|v| v["event"] == "session_stopped")
                        {
                            Some(v) => check(
                                "pnl_computed",
                                CheckStatus::Pass,
                                format!(
                                    "last session ({}): P&L {}, equity {}, max drawdown {}",
                                    v["data"]["reason"].as_str().unwrap_or("?"),
                                    v["data"]["pnl"],
                                    v["data"]["final_equity"],
                                    v["data"]["max_drawdown"]
                                ),
                            ),
                            None => check(
                                "pnl_computed",
                                CheckStatus::Warn,
                                "the last session has not stopped (still running?)",
                            ),
                        },
                    );
                    results.push(match session.iter().rev().find(|v| v["event"] == "positions_snapshot") {
                    Some(v) => check("positions_snapshot", CheckStatus::Pass, format!(
                        "at {}: positions [{}], equity {}",
                        v["timestamp"].as_str().unwrap_or("?"),
                        v["data"]["positions"].as_str().unwrap_or(""), v["data"]["equity"]
                    )),
                    None => check("positions_snapshot", CheckStatus::Warn, "no closing snapshot in the last session (calendar.automation is off?)"),
                });
                    let session: Vec<&Value> = session.iter().collect();
                    results.push(alert_summary(&session, "last session"));
                    results.push(log_chain(cfg));
                }
            }
        }
        ChecklistKind::Weekly | ChecklistKind::Monthly => {
            let days = if kind == ChecklistKind::Weekly { 7 } else { 30 };
            match log_lines(cfg) {
                Err(e) => results.push(check(
                    "performance",
                    CheckStatus::Fail,
                    format!("cannot read the log: {e}"),
                )),
                Ok(lines) => {
                    // Stamps are market time; the period ends at the newest line.
                    let end = lines.iter().filter_map(ts_of).max().unwrap_or(now);
                    let start = end - Duration::days(days);
                    let period: Vec<&Value> = lines
                        .iter()
                        .filter(|v| ts_of(v).is_some_and(|t| t >= start))
                        .collect();
                    let sessions: Vec<&&Value> = period
                        .iter()
                        .filter(|v| v["event"] == "session_stopped")
                        .collect();
                    // Money is summed as decimals, from each figure's written digits; a
                    // figure that does not read is counted and reported, not skipped.
                    let mut pnl = rust_decimal::Decimal::ZERO;
                    let mut unreadable = 0;
                    for v in &sessions {
                        match v["data"]["pnl"]
                            .to_string()
                            .parse::<rust_decimal::Decimal>()
                        {
                            Ok(x) => pnl += x,
                            Err(_) => unreadable += 1,
                        }
                    }
                    let orders: u64 = sessions
                        .iter()
                        .filter_map(|v| v["data"]["orders"].as_u64())
                        .sum();
                    let (status, note) = if unreadable > 0 {
                        (
                            CheckStatus::Warn,
                            format!(
                                " ({unreadable} session P&L figure(s) unreadable, not counted)"
                            ),
                        )
                    } else {
                        (CheckStatus::Pass, String::new())
                    };
                    results.push(check(
                        "performance",
                        status,
                        format!(
                            "{} session(s) in the {days} days to {}: P&L {}, {orders} order(s){note}",
                            sessions.len(),
                            end.format("%Y-%m-%d"),
                            pnl.round_dp(2)
                        ),
                    ));
                    if kind == ChecklistKind::Monthly {
                        results.push(model_drift(&period));
                    }
                    let count = |lvl: &str| period.iter().filter(|v| v["level"] == lvl).count();
                    results.push(check(
                        "alert_statistics",
                        CheckStatus::Pass,
                        format!(
                            "{} CRITICAL, {} ERROR, {} WARN line(s) in the period",
                            count("CRITICAL"),
                            count("ERROR"),
                            count("WARN")
                        ),
                    ));
                }
            }
            let disk = disk_check(cfg);
            results.push(match log_folder_size(&cfg.log.dir) {
                Ok(size) => check(
                    "resource_usage",
                    disk.status,
                    format!("log folder {:.1} MB; {}", size as f64 / 1e6, disk.reason),
                ),
                Err(e) => check("resource_usage", CheckStatus::Fail, e),
            });
            results.push(log_chain(cfg));
            results.push(drill_check(cfg, now, kind == ChecklistKind::Monthly));
        }
    }
    ChecklistReport {
        kind,
        at: now,
        results,
    }
}

/// How long a monthly drill stands.
const DRILL_DAYS: i64 = 31;

/// The disaster-recovery drill: a `vigil drill all` that passed in the last
/// [`DRILL_DAYS`] days, from the store. Monthly a missing one fails; weekly it warns.
fn drill_check(cfg: &VigilConfig, now: Timestamp, monthly: bool) -> CheckResult {
    let missing = if monthly {
        CheckStatus::Fail
    } else {
        CheckStatus::Warn
    };
    if cfg.store.url.is_none() && !cfg.store.path.exists() {
        return check(
            "dr_drill",
            missing,
            format!(
                "no store at {}: no drill on record; run `vigil drill all` against a running stack",
                cfg.store.path.display()
            ),
        );
    }
    let since = now - Duration::days(DRILL_DAYS);
    let read = crate::with_store(cfg, async |store| {
        store
            .drill_runs_since(since)
            .await
            .map_err(|e| e.to_string())
    });
    let runs = match read {
        Ok(runs) => runs,
        Err(e) => {
            return check(
                "dr_drill",
                CheckStatus::Fail,
                format!("cannot read the drills: {e}"),
            );
        }
    };
    let score = |r: &vigil_store::DrillRun| {
        format!(
            "`vigil drill {}` at {}: {} of {} checks",
            r.drill,
            r.finished_at.format("%Y-%m-%d %H:%M UTC"),
            r.checks_passed,
            r.checks_total
        )
    };
    match runs.iter().rev().find(|r| r.drill == "all" && r.passed) {
        Some(r) => check(
            "dr_drill",
            CheckStatus::Pass,
            format!(
                "the monthly drill passed: {}; {} drill run(s) in the last {DRILL_DAYS} days",
                score(r),
                runs.len()
            ),
        ),
        None => check(
            "dr_drill",
            missing,
            format!(
                "no `vigil drill all` passed in the last {DRILL_DAYS} days{}; run it against a running stack",
                runs.last()
                    .map(|r| format!(" (last run: {})", score(r)))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// The configured alert channels (built without network I/O; `vigil alerts test NAME` proves
/// one end to end).
/// The monthly "model drift detection": what the sessions' drift judgements of the period
/// came to (`model_drift_checked`, `model_drifted`; see docs/deploy.md).
fn model_drift(period: &[&Value]) -> CheckResult {
    let judged = period
        .iter()
        .filter(|v| v["event"] == "model_drift_checked")
        .count();
    let drifted: Vec<&&Value> = period
        .iter()
        .filter(|v| v["event"] == "model_drifted")
        .collect();
    let unwatched = period
        .iter()
        .rev()
        .find(|v| v["event"] == "drift_unwatched")
        .and_then(|v| v["data"]["reason"].as_str());
    match (judged, drifted.last(), unwatched) {
        (0, _, Some(why)) => check(
            "model_drift",
            CheckStatus::Warn,
            format!("the traded model's drift was not watched: {why}"),
        ),
        (0, _, None) => check(
            "model_drift",
            CheckStatus::Pass,
            "no drift judged in the period (a model registered with the gate's data is watched)",
        ),
        (n, None, _) => check(
            "model_drift",
            CheckStatus::Pass,
            format!("{n} session(s) judged against the gate's data, none drifted"),
        ),
        (n, Some(last), _) => check(
            "model_drift",
            CheckStatus::Warn,
            format!(
                "{} of {n} judged session(s) drifted; the last ({}, {}): {}",
                drifted.len(),
                last["data"]["model"].as_str().unwrap_or("?"),
                last["data"]["session"].as_str().unwrap_or("?"),
                last["data"]["drifted"].as_str().unwrap_or("?")
            ),
        ),
    }
}

fn alert_channels(cfg: &VigilConfig) -> CheckResult {
    match vigil_alert::Channels::from_config(&cfg.alerts.channels) {
        Err(e) => check("alert_channels", CheckStatus::Fail, e.to_string()),
        Ok(c) if c.is_empty() => check(
            "alert_channels",
            CheckStatus::Warn,
            "no alert channels configured: nobody is paged on failure (check the log)",
        ),
        Ok(c) if !cfg.alerts.enabled => check(
            "alert_channels",
            CheckStatus::Warn,
            format!(
                "alerts.enabled = false: {} configured but nobody is paged",
                c.names().join(", ")
            ),
        ),
        Ok(c) => check(
            "alert_channels",
            CheckStatus::Pass,
            format!(
                "configured: {} (`vigil alerts test NAME` sends a test)",
                c.names().join(", ")
            ),
        ),
    }
}

/// The journal against the broker: a dry run of the reconciliation `vigil run` does before
/// it trades (see docs/recovery.md).
fn positions_reconciled(cfg: &VigilConfig) -> CheckResult {
    const NAME: &str = "positions_reconciled";
    if !cfg.execution.venue.is_external() {
        return check(
            NAME,
            CheckStatus::Pass,
            "the paper venue runs in-process: its book is the session's book",
        );
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        // Inside `vigil run`: it reconciled before trading opened and does so every
        // `execution.reconcile.interval_s`.
        return check(
            NAME,
            CheckStatus::Pass,
            "reconciled with the broker by the running session (at start and on its interval)",
        );
    }
    match crate::session::reconcile_now(cfg) {
        Ok(rec) if rec.passed() => check(
            NAME,
            CheckStatus::Pass,
            format!(
                "the journal agrees with the broker ({} difference(s) a restart resolves)",
                rec.differences.len()
            ),
        ),
        Ok(rec) => check(NAME, CheckStatus::Fail, rec.mismatches()),
        Err(e) => check(NAME, CheckStatus::Fail, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_feed_the_data_check_reaches_each_feed_instead_of_reading_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("feed.secret");
        vigil_testkit::write_secret_file(&secret, "s3cret\n");
        let open = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let up = format!("ws://{}/stream", open.local_addr().expect("addr"));
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("ws://{}/stream", l.local_addr().expect("addr"))
        };
        let feed = |url: &str, backups: Vec<vigil_config::FeedConfig>| {
            let mut f: vigil_config::FeedConfig = toml::from_str(&format!(
                "url = \"{url}\"\nkey_id = \"k\"\nsecret_file = \"{}\"",
                secret.display()
            ))
            .expect("a feed section");
            f.backups = backups;
            f
        };
        let ok = feeds_reachable(&feed(&up, Vec::new()));
        assert_eq!(ok.status, CheckStatus::Pass, "{}", ok.reason);
        assert!(
            ok.reason.starts_with(&format!("feed {up} answers (")),
            "{}",
            ok.reason
        );
        let warn = feeds_reachable(&feed(&closed, vec![feed(&up, Vec::new())]));
        assert_eq!(warn.status, CheckStatus::Warn, "{}", warn.reason);
        assert!(
            warn.reason.contains(&format!("feed {closed}: 127.0.0.1:")),
            "{}",
            warn.reason
        );
        let fail = feeds_reachable(&feed(&closed, Vec::new()));
        assert_eq!(fail.status, CheckStatus::Fail, "{}", fail.reason);
        let mut no_secret = feed(&up, Vec::new());
        no_secret.secret_file = dir.path().join("absent.secret");
        let fail = feeds_reachable(&no_secret);
        assert_eq!(fail.status, CheckStatus::Fail);
        assert!(fail.reason.contains("absent.secret"), "{}", fail.reason);
    }

    #[test]
    fn the_monthly_checklist_fails_without_a_passed_monthly_drill_in_31_days() {
        let dir = tempfile::tempdir().expect("dir");
        let mut cfg = VigilConfig::default();
        cfg.store.path = dir.path().join("vigil.db");
        let now: Timestamp = "2026-12-05T12:00:00Z".parse().expect("ts");
        let judged =
            |cfg: &VigilConfig| (drill_check(cfg, now, true), drill_check(cfg, now, false));
        let (monthly, weekly) = judged(&cfg);
        assert_eq!(monthly.status, CheckStatus::Fail, "{}", monthly.reason);
        assert!(
            monthly.reason.starts_with("no store at"),
            "{}",
            monthly.reason
        );
        assert_eq!(weekly.status, CheckStatus::Warn);
        let record = |drill: &str, days_ago: i64, passed: bool| {
            let finished_at = now - Duration::days(days_ago);
            let run = vigil_store::DrillRun {
                drill: drill.into(),
                started_at: finished_at - Duration::minutes(3),
                finished_at,
                passed,
                checks_passed: if passed { 11 } else { 9 },
                checks_total: 11,
                report: "{}".into(),
            };
            let store_cfg = cfg.store.clone();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let store = vigil_store::open_store(&store_cfg).await.expect("store");
                    store.record_drill(&run).await.expect("record");
                    store.close().await;
                });
        };
        // Passed 40 days ago, a single class passed since, the last `all` failed: not enough.
        record("all", 40, true);
        record("price-jump", 10, true);
        record("all", 3, false);
        let (monthly, weekly) = judged(&cfg);
        assert_eq!(monthly.status, CheckStatus::Fail, "{}", monthly.reason);
        assert!(
            monthly
                .reason
                .contains("(last run: `vigil drill all` at 2026-12-02 12:00 UTC: 9 of 11 checks)"),
            "{}",
            monthly.reason
        );
        assert_eq!(weekly.status, CheckStatus::Warn);
        record("all", 30, true);
        let (monthly, _) = judged(&cfg);
        assert_eq!(monthly.status, CheckStatus::Pass, "{}", monthly.reason);
        assert!(
            monthly.reason.starts_with(
                "the monthly drill passed: `vigil drill all` at 2026-11-05 12:00 UTC: 11 of 11 checks; 3 drill run(s)"
            ),
            "{}",
            monthly.reason
        );
    }

    #[test]
    fn the_monthly_drift_check_warns_on_drift_and_on_a_model_not_watched() {
        let line = |event: &str, data: serde_json::Value| serde_json::json!({"event": event, "data": data});
        let checked = line("model_drift_checked", serde_json::json!({"model": "m@1"}));
        let drifted = line(
            "model_drifted",
            serde_json::json!({"model": "m@1", "session": "2026-11-30", "drifted": "rsi_14: PSI 0.4 > 0.25"}),
        );
        let unwatched = line(
            "drift_unwatched",
            serde_json::json!({"reason": "no baseline"}),
        );
        let judge = |lines: &[&Value]| model_drift(lines);
        assert_eq!(judge(&[]).status, CheckStatus::Pass);
        let calm = judge(&[&checked, &checked]);
        assert_eq!(calm.status, CheckStatus::Pass);
        assert!(
            calm.reason.starts_with("2 session(s) judged"),
            "{}",
            calm.reason
        );
        let moved = judge(&[&checked, &checked, &drifted]);
        assert_eq!(moved.status, CheckStatus::Warn);
        assert!(
            moved.reason.contains("1 of 2") && moved.reason.contains("rsi_14"),
            "{}",
            moved.reason
        );
        let blind = judge(&[&unwatched]);
        assert_eq!(blind.status, CheckStatus::Warn);
        assert!(blind.reason.contains("no baseline"), "{}", blind.reason);
    }

    #[test]
    fn alert_channels_warn_when_none_and_pass_naming_the_configured_ones() {
        let mut cfg = VigilConfig::embedded_default();
        let none = alert_channels(&cfg);
        assert_eq!(none.status, CheckStatus::Warn);
        cfg.alerts.channels.webhook = Some(vigil_config::WebhookConfig {
            url: vigil_config::Secret::new("http://127.0.0.1:9/hook"),
            headers: Default::default(),
            secret_headers: Default::default(),
            connect_timeout_ms: 1_000,
            timeout_ms: 1_000,
        });
        let one = alert_channels(&cfg);
        assert_eq!(one.status, CheckStatus::Pass);
        assert!(one.reason.contains("webhook"), "{}", one.reason);
        cfg.alerts.enabled = false;
        assert_eq!(alert_channels(&cfg).status, CheckStatus::Warn);
    }
}
