//! `vigil alerts`: what the alert engine holds (active alerts, silences, requests not yet
//! applied), the notification log, the operator's requests (`ack`, `silence`, `unsilence`)
//! and a test message through one channel.
//!
//! Everything goes through the store shared with `vigil run` (the config's `store.url`, a
//! PostgreSQL database, or its `store.path`, a SQLite file).
//! A request is a row in the store; the running vigil's Monitor applies it when it next reads
//! the store and writes the result back, which this command waits for.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use vigil_alert::{AlertCommand, CHANNEL_NAMES, Channels, Message, SilenceRequest};
use vigil_config::{StoreConfig, VigilConfig, redact_url};
use vigil_log::{parse_duration, parse_since};
use vigil_store::{
    AlertLogEntry, AlertLogQuery, AlertRequest, RequestKind, SharedStore, StoreError, open_store,
};

use crate::control_client::{ControlArgs, Failure, Located, load_config};

/// Exit code: the running vigil refused the request, or a test message was not delivered.
const REFUSED: u8 = 1;
/// Exit code: bad arguments, an unreadable config, no store.
const USAGE: u8 = 2;
/// Exit code: the request is recorded but the running vigil did not apply it in time.
const NOT_APPLIED_YET: u8 = 4;

/// How often a request's result is read while waiting for it.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCmd {
    /// Active alerts, silences in force, and requests the running vigil has not applied yet.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON object: {saved_at, alerts, silences, pending_requests}.
        #[arg(long)]
        json: bool,
    },
    /// The notification log, oldest first: notices, suppressions, deliveries, acks,
    /// silences, tests.
    History(HistoryArgs),
    /// Acknowledge an alert: no more repeat notices; PagerDuty is told.
    ///
    /// Exit codes: 0 applied (or recorded while vigil is not running), 1 refused,
    /// 2 bad arguments, 4 not applied within --wait seconds (it stays recorded).
    Ack {
        /// The alert's id (`a-1f2e3d4c`, see `vigil alerts list`).
        id: String,
        #[command(flatten)]
        request: RequestArgs,
    },
    /// Silence the alerts whose labels match: they are tracked and logged, not sent.
    ///
    /// Exit codes: 0 applied (or recorded while vigil is not running), 1 refused,
    /// 2 bad arguments, 4 not applied within --wait seconds (it stays recorded).
    Silence(SilenceArgs),
    /// Remove an operator's silence (`s-N`).
    ///
    /// Exit codes: 0 applied (or recorded while vigil is not running), 1 refused,
    /// 2 bad arguments, 4 not applied within --wait seconds (it stays recorded).
    Unsilence {
        /// The silence's id (`s-3`, see `vigil alerts list`).
        id: String,
        #[command(flatten)]
        request: RequestArgs,
    },
    /// Send a test message through one channel, directly (no retries, no escalation).
    ///
    /// Exit codes: 0 delivered, 1 not delivered (the channel's error is printed),
    /// 2 unknown or unconfigured channel.
    Test {
        /// The channel: email, slack, teams, sms, call, pagerduty or webhook.
        channel: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where the config and the store are.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Config file (default: the embedded default config).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The store's SQLite file (default: the config's store.url, else its store.path).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
}

/// What every request (`ack`, `silence`, `unsilence`) takes besides its own arguments.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Who asks (default: $USER, else $LOGNAME, else "operator").
    #[arg(long, value_name = "NAME")]
    who: Option<String>,
    /// The running vigil's log folder, where it writes control.addr (default: the config's
    /// log.dir).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Seconds to wait for a running vigil to apply the request; exit 4 if it has not by
    /// then (it stays recorded). 0: do not wait; at most 86400.
    #[arg(
        long,
        default_value_t = 15,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(0..=86_400)
    )]
    wait: u64,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// From this time: an age such as 90s, 30m, 2h, 1d (now minus it), or RFC 3339.
    #[arg(long, value_name = "DURATION_OR_TIME")]
    since: Option<String>,
    /// Only this rule's entries.
    #[arg(long, value_name = "RULE")]
    rule: Option<String>,
    /// Only this alert's entries (`a-…`).
    #[arg(long = "alert", value_name = "ID")]
    alert_id: Option<String>,
    /// At most this many entries, the newest (0: all).
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: u32,
    /// Print JSON lines, one entry per line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SilenceArgs {
    /// A label the alerts must have, KEY=VALUE (`rule=cpu_high`, `service=data_agent`,
    /// `symbol=GOOG` …); repeat for more, all must match.
    #[arg(long = "match", value_name = "KEY=VALUE")]
    matchers: Vec<String>,
    /// How long, from the start: 90s, 30m, 2h, 1d, 1h30m.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    /// Until this time (RFC 3339), instead of --for.
    #[arg(long, value_name = "RFC3339")]
    until: Option<String>,
    /// From this time (RFC 3339; default: now).
    #[arg(long, value_name = "RFC3339")]
    starts: Option<String>,
    /// Why (required): it is logged and shown with the silence.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    request: RequestArgs,
}

pub(crate) fn run(cmd: AlertsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertsCmd::List { store, json } => list(&store, json),
        AlertsCmd::History(args) => history(&args),
        AlertsCmd::Ack { id, request } => ack(&id, &request),
        AlertsCmd::Silence(args) => silence(&args),
        AlertsCmd::Unsilence { id, request } => unsilence(&id, &request),
        AlertsCmd::Test { channel, store } => test(&channel, &store),
    }
}

// ---------------------------------------------------------------------------------------
// Config, store, runtime

fn store_target(args: &StoreArgs, cfg: &VigilConfig) -> StoreTarget {
    StoreTarget::new(args.store.as_ref(), cfg)
}

/// The store a command opens: the SQLite file `--store` names, else the config's `[store]`
/// (its PostgreSQL `url`, or its file `path`).
pub(crate) struct StoreTarget(StoreConfig);

impl StoreTarget {
    pub(crate) fn new(file: Option<&PathBuf>, cfg: &VigilConfig) -> Self {
        let mut store = cfg.store.clone();
        if let Some(file) = file {
            store.path = file.clone();
            store.url = None;
        }
        Self(store)
    }

    /// The file, or the URL without its password.
    pub(crate) fn name(&self) -> String {
        match &self.0.url {
            Some(url) => redact_url(url.expose()),
            None => self.0.path.display().to_string(),
        }
    }

    /// A SQLite file that does not exist (yet); a database server is always there to ask.
    fn missing(&self) -> bool {
        self.0.url.is_none() && !self.0.path.exists()
    }

    pub(crate) async fn open(&self) -> Result<SharedStore, StoreError> {
        open_store(&self.0).await
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime for the store")
}

/// For the commands that only read: a store file that does not exist is not created.
pub(crate) fn existing_store(target: &StoreTarget) -> Option<()> {
    if !target.missing() {
        return Some(());
    }
    eprintln!(
        "vigil: no store at {}: `vigil run` creates it (with the config's store.path); \
         pass --store FILE or --config FILE to read another",
        target.name()
    );
    None
}

/// UTC, to the second.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// As the requests' bodies carry times: UTC, to the millisecond.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------
// list

fn list(args: &StoreArgs, json_out: bool) -> anyhow::Result<ExitCode> {
    let Some(cfg) = load_config(args.config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    let target = store_target(args, &cfg);
    if existing_store(&target).is_none() {
        return Ok(ExitCode::from(USAGE));
    }
    let (saved, pending) = runtime()?.block_on(async {
        let store = target.open().await?;
        let saved = store.alert_state().await?;
        let pending = store.pending_requests().await?;
        store.close().await;
        anyhow::Ok((saved, pending))
    })?;
    let now = Utc::now();
    let view = match saved {
        Some(saved) => {
            let (alerts, silences) = vigil_alert::saved_view(&cfg.alerts, &saved.state, now)
                .with_context(|| {
                    format!(
                        "store {}: the saved alert state is not readable",
                        target.name()
                    )
                })?;
            Some((saved.saved_at, alerts, silences))
        }
        None => None,
    };
    if json_out {
        let (saved_at, alerts, silences) = match view {
            Some((at, a, s)) => (Some(at), a, s),
            None => (None, Vec::new(), Vec::new()),
        };
        let out = json!({
            "saved_at": saved_at,
            "alerts": alerts,
            "silences": silences,
            "pending_requests": pending,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    match &view {
        None => out.push_str("no alert state saved yet\n"),
        Some((saved_at, alerts, silences)) => {
            writeln!(
                out,
                "alert state saved {} ({})",
                time(*saved_at),
                target.name()
            )?;
            out.push('\n');
            out.push_str(&alerts_table(alerts));
            out.push('\n');
            out.push_str(&silences_table(silences, now));
        }
    }
    if view.is_some() || !pending.is_empty() {
        out.push('\n');
        out.push_str(&pending_table(&pending));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// A JSON string field as text (`-` when absent).
fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON time field to the second (as it is when it does not parse).
fn time_field(v: &Value, key: &str) -> String {
    let raw = field(v, key);
    DateTime::parse_from_rfc3339(&raw).map_or(raw, |t| time(t.with_timezone(&Utc)))
}

fn labels_text(labels: &Value, skip: &[&str]) -> String {
    let text: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(",")
    }
}

fn alerts_table(alerts: &[Value]) -> String {
    if alerts.is_empty() {
        return "no active alerts\n".into();
    }
    let rows = alerts
        .iter()
        .map(|a| {
            vec![
                field(a, "id"),
                field(a, "severity").to_ascii_uppercase(),
                field(a, "phase"),
                field(a, "rule"),
                field(a, "service"),
                labels_text(&a["labels"], &["rule", "service"]),
                time_field(a, "since"),
                match &a["acked"] {
                    Value::Null => "-".into(),
                    acked => format!("{} at {}", field(acked, "by"), time_field(acked, "at")),
                },
            ]
        })
        .collect();
    format!(
        "ACTIVE ALERTS ({})\n{}",
        alerts.len(),
        table(
            &[
                "ID", "SEVERITY", "PHASE", "RULE", "SERVICE", "LABELS", "SINCE", "ACKED",
            ],
            rows,
        )
    )
}

fn silences_table(silences: &[Value], now: DateTime<Utc>) -> String {
    if silences.is_empty() {
        return "no silences in force\n".into();
    }
    let rows = silences
        .iter()
        .map(|s| {
            let starts = time_field(s, "starts");
            let scheduled = DateTime::parse_from_rfc3339(&starts).is_ok_and(|t| t > now);
            vec![
                field(s, "id"),
                labels_text(&s["matchers"], &[]),
                if scheduled { starts } else { "now".into() },
                time_field(s, "ends"),
                field(s, "created_by"),
                field(s, "reason"),
            ]
        })
        .collect();
    format!(
        "SILENCES ({})\n{}",
        silences.len(),
        table(&["ID", "MATCH", "FROM", "UNTIL", "BY", "REASON"], rows)
    )
}

fn pending_table(pending: &[AlertRequest]) -> String {
    if pending.is_empty() {
        return "no pending requests\n".into();
    }
    let rows = pending
        .iter()
        .map(|r| {
            vec![
                format!("#{}", r.seq),
                time(r.at),
                r.who.clone(),
                r.kind.to_string(),
                r.body.to_string(),
            ]
        })
        .collect();
    format!(
        "PENDING REQUESTS ({}; a running vigil applies them when its Monitor next reads the store)\n{}",
        pending.len(),
        table(&["REQUEST", "AT", "WHO", "KIND", "BODY"], rows)
    )
}

/// Aligned columns, two spaces apart; the last column is not padded. Every cell is shown
/// with its control characters escaped (`\x1b`, `\n` …): the text comes from the store, the
/// log or a broker, and a raw ESC, CR or LF would drive the reader's terminal or forge a row.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_string()).collect())
        .chain(rows)
        .map(|r: Vec<String>| {
            r.into_iter()
                .map(|c| vigil_core::escape_controls(&c).into_owned())
                .collect()
        })
        .collect();
    let mut widths = vec![0usize; header.len()];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let last = r.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i == last {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------
// history

fn history(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let Some(cfg) = load_config(args.store.config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    let now = Utc::now();
    let since = match args.since.as_deref().map(|s| parse_since(s, now)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("vigil: --since {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let target = store_target(&args.store, &cfg);
    if existing_store(&target).is_none() {
        return Ok(ExitCode::from(USAGE));
    }
    let query = AlertLogQuery {
        since,
        rule: args.rule.clone(),
        alert_id: args.alert_id.clone(),
        limit: args.limit,
    };
    let entries = runtime()?.block_on(async {
        let store = target.open().await?;
        let entries = store.alert_log(&query).await?;
        store.close().await;
        anyhow::Ok(entries)
    })?;
    if args.json {
        let mut out = String::new();
        for e in &entries {
            out.push_str(&serde_json::to_string(e)?);
            out.push('\n');
        }
        print!("{out}");
    } else if entries.is_empty() {
        println!("no notification log entries match");
    } else {
        print!("{}", history_table(&entries));
    }
    Ok(ExitCode::SUCCESS)
}

fn history_table(entries: &[AlertLogEntry]) -> String {
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                time(e.at),
                e.kind.clone(),
                opt(&e.alert_id),
                opt(&e.rule),
                opt(&e.severity),
                opt(&e.channel),
                e.detail.clone(),
            ]
        })
        .collect();
    table(
        &[
            "SEQ", "AT", "KIND", "ALERT", "RULE", "SEVERITY", "CHANNEL", "DETAIL",
        ],
        rows,
    )
}

// ---------------------------------------------------------------------------------------
// requests

fn default_who() -> String {
    for key in ["USER", "LOGNAME"] {
        match std::env::var(key) {
            Ok(v) if let Some(c) = vigil_core::first_control(&v) => {
                eprintln!("vigil: ${key} holds a control character ({c}); not using it as --who");
            }
            Ok(v) if !v.trim().is_empty() => return v.trim().to_string(),
            Ok(_) | Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(raw)) => {
                eprintln!("vigil: ${key} is not UTF-8 ({raw:?}); not using it as --who");
            }
        }
    }
    "operator".into()
}

fn who(args: &RequestArgs) -> Result<String, String> {
    who_from(args.who.as_deref())
}

/// `--who`, or the login name; a blank `--who`, or one holding a control character, is
/// refused.
pub(crate) fn who_from(flag: Option<&str>) -> Result<String, String> {
    match flag {
        None => Ok(default_who()),
        Some(w) if w.trim().is_empty() => Err(format!("--who {w:?}: a name is required")),
        Some(w) => plain("--who", w).map(|w| w.trim().to_string()),
    }
}

/// `text` of `flag`, refused when it holds a control character: it is stored and shown to
/// people on terminals (the server refuses it too).
pub(crate) fn plain<'a>(flag: &str, text: &'a str) -> Result<&'a str, String> {
    match vigil_core::first_control(text) {
        Some(c) => Err(format!(
            "{flag} {text:?}: holds a control character ({c}); write it on one line, in plain text"
        )),
        None => Ok(text),
    }
}

fn ack(id: &str, args: &RequestArgs) -> anyhow::Result<ExitCode> {
    if !id.starts_with("a-") || id.len() <= 2 {
        eprintln!(
            "vigil: alert id {id:?}: an alert id looks like a-1f2e3d4c (see `vigil alerts list`)"
        );
        return Ok(ExitCode::from(USAGE));
    }
    submit(args, AlertCommand::Ack { id: id.into() }, |result| {
        result.to_string()
    })
}

fn unsilence(id: &str, args: &RequestArgs) -> anyhow::Result<ExitCode> {
    if id.starts_with("m-") {
        eprintln!(
            "vigil: silence id {id:?}: a maintenance window comes from the config \
             ([[alerts.maintenance]]); remove it there and reload"
        );
        return Ok(ExitCode::from(USAGE));
    }
    if !id.starts_with("s-") || id.len() <= 2 {
        eprintln!(
            "vigil: silence id {id:?}: a silence id looks like s-3 (see `vigil alerts list`)"
        );
        return Ok(ExitCode::from(USAGE));
    }
    submit(args, AlertCommand::Unsilence { id: id.into() }, |result| {
        result.to_string()
    })
}

/// A silence request, or the first bad argument (naming the flag and value).
fn silence_request(args: &SilenceArgs, now: DateTime<Utc>) -> Result<SilenceRequest, String> {
    if args.matchers.is_empty() {
        return Err(
            "--match KEY=VALUE is required: which alerts to silence (e.g. --match rule=cpu_high)"
                .into(),
        );
    }
    let mut matchers = BTreeMap::new();
    for m in &args.matchers {
        let Some((k, v)) = m.split_once('=') else {
            return Err(format!(
                "--match {m:?}: expected KEY=VALUE, e.g. rule=cpu_high"
            ));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("--match {m:?}: the key (before '=') is empty"));
        }
        if v.is_empty() {
            return Err(format!("--match {m:?}: the value (after '=') is empty"));
        }
        if let Some(old) = matchers.insert(k.to_string(), v.to_string())
            && old != v
        {
            return Err(format!(
                "--match {m:?}: {k} is already matched to {old:?}; an alert has one value per label"
            ));
        }
    }
    let reason = match &args.reason {
        None => {
            return Err(
                "--reason TEXT is required: say why (it is logged and shown with the silence)"
                    .into(),
            );
        }
        Some(r) if r.trim().is_empty() => {
            return Err(format!("--reason {r:?}: say why (it is blank)"));
        }
        Some(r) => plain("--reason", r)?.to_string(),
    };
    let rfc3339 = |flag: &str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                format!("{flag} {text:?}: not an RFC 3339 time such as 2026-03-05T18:00:00Z ({e})")
            })
    };
    let starts = match &args.starts {
        Some(s) => rfc3339("--starts", s)?,
        None => now,
    };
    let ends = match (&args.duration, &args.until) {
        (Some(_), Some(_)) => {
            return Err("give either --for DURATION or --until TIME, not both".into());
        }
        (None, None) => {
            return Err(
                "--for DURATION or --until TIME is required: how long the silence lasts".into(),
            );
        }
        (Some(d), None) => {
            let dur = parse_duration(d).map_err(|e| format!("--for {d:?}: {e}"))?;
            if dur <= chrono::Duration::zero() {
                return Err(format!("--for {d:?}: must be longer than zero"));
            }
            starts
                .checked_add_signed(dur)
                .ok_or_else(|| format!("--for {d:?}: too long"))?
        }
        (None, Some(u)) => {
            let ends = rfc3339("--until", u)?;
            if ends <= starts {
                return Err(format!(
                    "--until {u:?}: must be after the start, {}",
                    stamp(starts)
                ));
            }
            ends
        }
    };
    if ends <= now {
        return Err(format!(
            "the silence would end at {}, which is already past",
            stamp(ends)
        ));
    }
    Ok(SilenceRequest {
        matchers,
        starts,
        ends,
        reason,
    })
}

fn silence(args: &SilenceArgs) -> anyhow::Result<ExitCode> {
    let request = match silence_request(args, Utc::now()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let matchers: Vec<String> = request
        .matchers
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let what = format!(
        "{} from {} until {}",
        matchers.join(","),
        time(request.starts),
        time(request.ends),
    );
    submit(&args.request, AlertCommand::Silence(request), |id| {
        format!("silence {id} in force: {what}")
    })
}

/// The store's name for the kind of `command`.
fn request_kind(command: &AlertCommand) -> RequestKind {
    match command {
        AlertCommand::Ack { .. } => RequestKind::Ack,
        AlertCommand::Silence(_) => RequestKind::Silence,
        AlertCommand::Unsilence { .. } => RequestKind::Unsilence,
    }
}

/// Where the running vigil's control API is, if it is running: the address in
/// `<log dir>/control.addr`, when something answers `GET /healthz` there.
fn running_vigil(log_dir: &Path, cfg: &VigilConfig) -> anyhow::Result<Option<String>> {
    let target = ControlArgs {
        log_dir: Some(log_dir.to_path_buf()),
        ..ControlArgs::default()
    };
    let Located::Running(client) = target.locate(cfg)? else {
        return Ok(None);
    };
    // Any answer will do: 503 means it is starting (it reads the store once started), and
    // 401 is a vigil with another token.
    match client.get("/healthz") {
        Ok(_) => Ok(Some(client.url().to_string())),
        Err(Failure::NotRunning(why) | Failure::NoAnswer(why) | Failure::Other(why)) => {
            eprintln!("vigil: {why}");
            Ok(None)
        }
    }
}

/// Records a request, then waits for the running vigil (if any) to apply it. `applied`
/// turns the result of a successful request into what to print.
fn submit(
    args: &RequestArgs,
    command: AlertCommand,
    applied: impl FnOnce(&str) -> String,
) -> anyhow::Result<ExitCode> {
    let who = match who(args) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("vigil: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let Some(cfg) = load_config(args.store.config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    let target = store_target(&args.store, &cfg);
    let log_dir = args.log_dir.clone().unwrap_or_else(|| cfg.log.dir.clone());
    let created = target.missing();
    let rt = runtime()?;
    let (store, seq) = rt.block_on(async {
        let store = target.open().await?;
        let seq = store
            .request(Utc::now(), &who, request_kind(&command), &command.body())
            .await?;
        anyhow::Ok((store, seq))
    })?;
    if created {
        eprintln!(
            "vigil: created the store {} (it did not exist)",
            target.name()
        );
    }
    // After recording: a vigil that starts meanwhile reads the request when it starts.
    let Some(addr) = running_vigil(&log_dir, &cfg)? else {
        rt.block_on(store.close());
        println!(
            "recorded as request #{seq}; vigil is not running — it will be applied when vigil run next starts"
        );
        return Ok(ExitCode::SUCCESS);
    };
    if args.wait == 0 {
        rt.block_on(store.close());
        println!(
            "recorded as request #{seq}; the running vigil at {addr} applies it when its Monitor next reads the store"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(deadline) = Instant::now().checked_add(Duration::from_secs(args.wait)) else {
        rt.block_on(store.close());
        bail!(
            "--wait {}: too long; request #{seq} is recorded and will be applied",
            args.wait
        );
    };
    let done = rt.block_on(async {
        loop {
            if let Some(r) = store.request_by_seq(seq).await?
                && r.applied_at.is_some()
            {
                break anyhow::Ok(Some(r));
            }
            if Instant::now() >= deadline {
                break anyhow::Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    });
    rt.block_on(store.close());
    let Some(r) = done? else {
        eprintln!(
            "vigil: recorded as request #{seq}, but the running vigil at {addr} has not applied it within {} s; \
             it stays recorded and is applied when the Monitor next reads the store",
            args.wait
        );
        return Ok(ExitCode::from(NOT_APPLIED_YET));
    };
    let result = r.result.unwrap_or_default();
    if r.ok == Some(true) {
        println!("{}", vigil_core::escape_controls(&applied(&result)));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "vigil: request #{seq} ({}) refused: {}",
            command.kind(),
            vigil_core::escape_controls(&result)
        );
        Ok(ExitCode::from(REFUSED))
    }
}

// ---------------------------------------------------------------------------------------
// test

fn test(channel: &str, args: &StoreArgs) -> anyhow::Result<ExitCode> {
    let Some(cfg) = load_config(args.config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    if !CHANNEL_NAMES.contains(&channel) {
        eprintln!(
            "vigil: unknown channel {channel:?}; the channels are {}",
            CHANNEL_NAMES.join(", ")
        );
        return Ok(ExitCode::from(USAGE));
    }
    let origin = args
        .config
        .as_ref()
        .map_or("the embedded default config".to_string(), |p| {
            p.display().to_string()
        });
    let channels = match Channels::from_config(&cfg.alerts.channels) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil: {origin}: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let Some(ch) = channels.get(channel) else {
        let table = match channel {
            "sms" | "call" => "twilio".to_string(),
            other => other.to_string(),
        };
        let configured = if channels.is_empty() {
            "no channel is configured".to_string()
        } else {
            format!("configured: {}", channels.names().join(", "))
        };
        eprintln!(
            "vigil: channel {channel:?} is not configured in {origin} (add [alerts.channels.{table}]); {configured}"
        );
        return Ok(ExitCode::from(USAGE));
    };
    let at = Utc::now();
    let result = ch.deliver(&Message::Test {
        channel: channel.to_string(),
        at,
    });
    let entry = AlertLogEntry {
        seq: 0,
        at,
        kind: "test".into(),
        alert_id: None,
        rule: None,
        severity: None,
        channel: Some(channel.to_string()),
        detail: match &result {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        },
    };
    let target = store_target(args, &cfg);
    let logged = runtime().and_then(|rt| {
        rt.block_on(async {
            let store = target.open().await?;
            store.append_alert_log(&[entry]).await?;
            store.close().await;
            anyhow::Ok(())
        })
    });
    if let Err(e) = logged {
        eprintln!("vigil: the test was not written to the notification log: {e:#}");
    }
    match result {
        Ok(()) => {
            println!("test message delivered through {channel}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("vigil: test message not delivered: {e}");
            Ok(ExitCode::from(REFUSED))
        }
    }
}

#[cfg(test)]
mod tests;
