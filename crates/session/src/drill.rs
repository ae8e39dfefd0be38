//! Drills: an incident rehearsed against a running stack (`vigil drill`).
//!
//! `data-format-change`, the weekend incident: the running vigil reads its bars from a
//! `vigil feed` process (`[data.feed]`). The drill switches that feed to a changed message
//! format, steps it, and watches vigil's log:
//! - the first bad message is an ERROR line (`data_parse_failed`) carrying its payload,
//!   within the time limit;
//! - vigil either fails over to a backup feed (`data_source_switched`) or halts trading
//!   (`breaker_tripped`);
//! - no order is decided on a bar newer than the last one vigil had before the fault (no
//!   order on unvalidated data).
//!
//! Then it puts the feed back (`/_faults/clear`). The checks are judged by plain functions
//! of the log lines; the drill itself waits in wall-clock time, as the stack it watches runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_config::VigilConfig;

/// How a drill runs.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// The feed's control address (`http://HOST:PORT`); `None`: the host and port of
    /// `[data.feed] url`.
    pub feed_control: Option<String>,
    /// Bars the feed is stepped after the fault (a feed under `--manual`); 0: none.
    pub step: u32,
    /// How long each check may take, in seconds.
    pub timeout_s: u64,
}

/// One check of a drill's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillCheck {
    /// What is checked.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// Why a drill could not run (as opposed to a check that failed).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The config names no feed.
    #[error("{}: no [data.feed]: the drill needs vigil reading a feed", config.display())]
    NoFeed {
        /// The config file.
        config: PathBuf,
    },
    /// `[data.feed] url` gives no control address.
    #[error("data.feed.url {url:?}: {problem}")]
    FeedUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The feed's secret cannot be read.
    #[error("{0}")]
    Secret(#[from] vigil_config::SecretFileError),
    /// The log folder cannot be read.
    #[error("log folder {}: {error}", dir.display())]
    Log {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: vigil_log::QueryError,
    },
    /// The feed's control API refused or failed a request.
    #[error("POST {url}: {problem}")]
    Feed {
        /// The request's URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
}

const FIRST_BAD: &str = "the first bad message is an ERROR line with its payload";
const REACTION: &str = "failover or the breaker";
const NO_LATE_ORDER: &str = "no order on unvalidated data";

/// Runs `data-format-change` against the stack of `cfg` (loaded from `config`, named in
/// messages) and returns its checks.
///
/// # Errors
/// [`DrillError`] when the drill cannot run: no feed in the config, its secret or vigil's
/// log folder unreadable, or the feed's control API failing.
pub fn data_format_change(
    cfg: &VigilConfig,
    config: &Path,
    opts: &DrillOptions,
) -> Result<Vec<DrillCheck>, DrillError> {
    let feed = cfg.data.feed.as_ref().ok_or_else(|| DrillError::NoFeed {
        config: config.to_path_buf(),
    })?;
    let control = match &opts.feed_control {
        Some(c) => c.trim_end_matches('/').to_string(),
        None => control_of(&feed.url)?,
    };
    let secret = crate::read_secret("data.feed.secret_file", &feed.secret_file)?;
    let auth = [
        ("APCA-API-KEY-ID", feed.key_id.clone()),
        ("APCA-API-SECRET-KEY", secret),
    ];
    let log_dir = cfg.log.dir.clone();
    let patience = Duration::from_secs(opts.timeout_s);

    // What vigil had before the fault.
    let before = log_lines(&log_dir)?;
    let seen_until = last_seen(&before);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let post = |path: &str| -> Result<Value, DrillError> {
        let url = format!("{control}{path}");
        let failed = |problem: String| DrillError::Feed {
            url: url.clone(),
            problem,
        };
        let mut req = agent.post(&url);
        for (k, v) in &auth {
            req = req.header(*k, v.as_str());
        }
        let mut res = req.send_empty().map_err(|e| failed(e.to_string()))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .read_to_string()
            .map_err(|e| failed(format!("reading the answer: {e}")))?;
        if status != 200 {
            return Err(failed(format!("{status} {body}")));
        }
        serde_json::from_str(&body).map_err(|e| failed(format!("not JSON ({e}): {body}")))
    };

    let t0 = Instant::now();
    post("/_faults/format?kind=renamed")?;
    if opts.step > 0 {
        post(&format!("/_feed/step?n={}", opts.step))?;
    }
    let first_bad = wait(&log_dir, before.len(), patience, |l| {
        l["event"] == "data_parse_failed"
    })?;
    let mut checks = vec![first_bad_check(
        first_bad.as_ref(),
        t0.elapsed(),
        opts.timeout_s,
    )];
    let reaction = wait(&log_dir, before.len(), patience, |l| {
        l["event"] == "data_source_switched" || l["event"] == "breaker_tripped"
    })?;
    checks.push(reaction_check(reaction.as_ref(), opts.timeout_s));
    let switched = reaction
        .as_ref()
        .is_some_and(|r| r["event"] == "data_source_switched");
    let after = log_lines(&log_dir)?;
    checks.push(late_order_check(
        after.get(before.len()..).unwrap_or_default(),
        &seen_until,
        switched,
    ));
    post("/_faults/clear")?;
    Ok(checks)
}

/// The market time of the newest bar vigil had (its Data agent's lines and its orders).
fn last_seen(lines: &[Value]) -> String {
    lines
        .iter()
        .filter(|l| l["service"] == "data_agent" || l["event"] == "order_submitted")
        .filter_map(|l| l["timestamp"].as_str().map(str::to_string))
        .max()
        .unwrap_or_default()
}

/// Check 1: the first bad message is an ERROR line with its payload (`line`, seen
/// `elapsed` after the fault; `None` when none came within `timeout_s`).
fn first_bad_check(line: Option<&Value>, elapsed: Duration, timeout_s: u64) -> DrillCheck {
    match line {
        Some(l) => {
            let error = l["data"]["error"].as_str().unwrap_or_default();
            DrillCheck {
                name: FIRST_BAD,
                passed: l["level"] == "ERROR" && error.contains("raw ("),
                detail: format!(
                    "{} ms after the fault, {}: {}",
                    elapsed.as_millis(),
                    l["level"].as_str().unwrap_or("?"),
                    truncate(error, 160)
                ),
            }
        }
        None => DrillCheck {
            name: FIRST_BAD,
            passed: false,
            detail: format!("no data_parse_failed within {timeout_s} s"),
        },
    }
}

/// Check 2: vigil failed over or tripped the breaker (`line`: the first of either).
fn reaction_check(line: Option<&Value>, timeout_s: u64) -> DrillCheck {
    match line {
        Some(l) if l["event"] == "data_source_switched" => DrillCheck {
            name: REACTION,
            passed: true,
            detail: format!(
                "switched from {} to {}",
                l["data"]["from"].as_str().unwrap_or("?"),
                l["data"]["to"].as_str().unwrap_or("?")
            ),
        },
        Some(l) => DrillCheck {
            name: REACTION,
            passed: true,
            detail: format!(
                "breaker tripped: {}",
                truncate(l["data"]["reason"].as_str().unwrap_or("?"), 160)
            ),
        },
        None => DrillCheck {
            name: REACTION,
            passed: false,
            detail: format!(
                "neither data_source_switched nor breaker_tripped within {timeout_s} s"
            ),
        },
    }
}

/// Check 3: no order decided on a bar newer than what vigil had validated before the fault
/// (`seen_until`), unless a backup feed (validated in its turn) took over (`switched`).
/// `since` holds the log lines written since the fault.
fn late_order_check(since: &[Value], seen_until: &str, switched: bool) -> DrillCheck {
    let late: Vec<String> = since
        .iter()
        .filter(|l| l["event"] == "order_submitted")
        .filter_map(|l| l["timestamp"].as_str())
        .filter(|t| !switched && *t > seen_until)
        .map(str::to_string)
        .collect();
    DrillCheck {
        name: NO_LATE_ORDER,
        passed: late.is_empty(),
        detail: match (late.is_empty(), switched) {
            (true, true) => format!(
                "orders up to {seen_until} came from the old feed's validated bars, later ones \
                 from the backup's"
            ),
            (true, false) => {
                format!("every order since the fault was decided on a bar up to {seen_until}")
            }
            (false, _) => format!("orders decided after {seen_until}: {}", late.join(", ")),
        },
    }
}

/// `ws://HOST:PORT/stream` → `http://HOST:PORT`.
fn control_of(url: &str) -> Result<String, DrillError> {
    let problem = |problem| DrillError::FeedUrl {
        url: url.to_string(),
        problem,
    };
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| problem("not a ws:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(problem("no host"));
    }
    Ok(format!("http://{host}"))
}

/// Every line of the log folder (a line being written is read at the next look).
fn log_lines(dir: &Path) -> Result<Vec<Value>, DrillError> {
    let mut out = Vec::new();
    match vigil_log::read_lines(dir, |_, _, _, v| out.push(v)) {
        Ok(()) => Ok(out),
        // The writer is mid-line: what came before it is complete.
        Err(vigil_log::QueryError::BadLine { .. }) => Ok(out),
        Err(error) => Err(DrillError::Log {
            dir: dir.to_path_buf(),
            error,
        }),
    }
}

/// Waits until a line after the first `skip` matches `pred`; `None` after `patience`.
fn wait(
    dir: &Path,
    skip: usize,
    patience: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Option<Value>, DrillError> {
    let deadline = Instant::now() + patience;
    loop {
        let lines = log_lines(dir)?;
        if let Some(l) = lines.into_iter().skip(skip).find(|l| pred(l)) {
            return Ok(Some(l));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        // Polls the files of a stack running in wall-clock time.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_control_address_is_the_feed_url_s_host_over_http() {
        assert_eq!(
            control_of("ws://127.0.0.1:9100/stream").expect("ws"),
            "http://127.0.0.1:9100"
        );
        assert_eq!(
            control_of("wss://feed/stream")
                .expect_err("not ws")
                .to_string(),
            "data.feed.url \"wss://feed/stream\": not a ws:// URL"
        );
        assert_eq!(
            control_of("ws:///stream").expect_err("no host").to_string(),
            "data.feed.url \"ws:///stream\": no host"
        );
    }

    #[test]
    fn the_first_bad_message_passes_only_as_an_error_line_with_its_payload() {
        let line = |level: &str, error: &str| json!({"level": level, "data": {"error": error}});
        let ok = first_bad_check(
            Some(&line("ERROR", "unknown field: raw ({\"x\":1})")),
            Duration::from_millis(12),
            30,
        );
        assert!(ok.passed);
        assert_eq!(
            ok.detail,
            "12 ms after the fault, ERROR: unknown field: raw ({\"x\":1})"
        );
        assert!(!first_bad_check(Some(&line("WARN", "raw (x)")), Duration::ZERO, 30).passed);
        assert!(!first_bad_check(Some(&line("ERROR", "no payload")), Duration::ZERO, 30).passed);
        let none = first_bad_check(None, Duration::ZERO, 30);
        assert!(!none.passed);
        assert_eq!(none.detail, "no data_parse_failed within 30 s");
    }

    #[test]
    fn failover_or_the_breaker_passes_and_neither_fails() {
        let switched =
            json!({"event": "data_source_switched", "data": {"from": "main", "to": "backup"}});
        assert_eq!(
            reaction_check(Some(&switched), 5).detail,
            "switched from main to backup"
        );
        let tripped = json!({"event": "breaker_tripped", "data": {"reason": "outage"}});
        let c = reaction_check(Some(&tripped), 5);
        assert!(c.passed);
        assert_eq!(c.detail, "breaker tripped: outage");
        assert!(!reaction_check(None, 5).passed);
    }

    #[test]
    fn an_order_on_a_bar_newer_than_the_last_validated_fails_unless_a_backup_took_over() {
        let order = |t: &str| json!({"event": "order_submitted", "timestamp": t});
        let before = [
            json!({"service": "data_agent", "timestamp": "2024-01-02T15:00:00Z"}),
            order("2024-01-02T14:59:00Z"),
        ];
        let seen = last_seen(&before);
        assert_eq!(seen, "2024-01-02T15:00:00Z");
        let since = [order("2024-01-02T15:00:00Z"), order("2024-01-02T15:01:00Z")];
        let late = late_order_check(&since, &seen, false);
        assert!(!late.passed);
        assert_eq!(
            late.detail,
            "orders decided after 2024-01-02T15:00:00Z: 2024-01-02T15:01:00Z"
        );
        assert!(late_order_check(&since, &seen, true).passed);
        assert!(late_order_check(&since[..1], &seen, false).passed);
    }

    #[test]
    fn truncate_cuts_at_a_character_and_marks_it() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }
}
