//! Drills: an incident rehearsed against a running stack (`vigil drill`). Each faults a
//! part of it through that part's own control API (the `vigil feed` process the running
//! vigil reads, `[data.feed]`; the broker it trades through, `vigil broker`'s
//! `/v2/_faults`; vigil's control API, `inject_panic`), watches vigil's log, and judges what
//! it sees by plain functions of the log lines, with the measured detection and
//! alert-delivery times in the details. Every run is recorded in the store
//! ([`record_drill`]); `vigil drill all` is the monthly drill over every class.
//!
//! The other classes: [`agent_crash`], [`crash_loop`], [`broker_down`], [`broker_drift`],
//! [`network_loss`], [`stale_data`], [`process_frozen`] (their documents say what each
//! checks).
//!
//! `data-source-down` ([`data_source_down`]): the feed drops every connection without a
//! close frame (the data side of a network loss); vigil must detect the outage, halt (or
//! fail over), tell a person, and once the feed delivers again verify the books and resume
//! on its own, with no order decided in between.
//!
//! `price-jump` ([`price_jump`]): the next bar of the first instrument jumps; vigil must
//! quarantine the symbol, tell a person, and send no order in it while it is held.
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

mod silence;
pub use silence::{process_frozen, stale_data};

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
    /// The config trades through no broker (`[execution] venue = "alpaca"` with
    /// `broker_url`): the broker drills have nothing to fault.
    #[error("{}: the venue is not a broker ([execution] venue = \"alpaca\", broker_url): the broker drills need one", config.display())]
    NoBroker {
        /// The config file.
        config: PathBuf,
    },
    /// The broker's fault API refused or failed a request.
    #[error("{method} {url}: {problem}")]
    Broker {
        /// GET, POST or DELETE.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// The drill needs something the stack has not shown yet.
    #[error("{0}")]
    NotReady(String),
    /// The class does not apply to this stack now (a quiet feed outside trading hours):
    /// `vigil drill all` skips it, saying why.
    #[error("{0}")]
    NotApplicable(String),
    /// The running vigil's control API cannot be reached, or refused the fault (fault
    /// injection off: `[control] fault_injection = true` on a rehearsal stack only).
    #[error("the control API: {0}")]
    Control(String),
    /// The feed's control API refused or failed a request.
    #[error("POST {url}: {problem}")]
    Feed {
        /// The request's URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
}

/// What one class of a drill came to: its checks, or why it could not run.
#[derive(Clone, Debug)]
pub struct DrillClass {
    /// The class (`price-jump`).
    pub class: &'static str,
    /// Its checks, or why it could not run (then it failed).
    pub checks: Result<Vec<DrillCheck>, String>,
}

impl DrillClass {
    /// Whether it ran and every check passed.
    pub fn passed(&self) -> bool {
        self.checks
            .as_ref()
            .is_ok_and(|c| !c.is_empty() && c.iter().all(|c| c.passed))
    }
}

/// The score of a drill's classes: checks passed and run (a class that could not run
/// counts as one failed check), classes passed and run.
pub fn drill_score(classes: &[DrillClass]) -> (u64, u64, usize, usize) {
    let (mut passed, mut total) = (0, 0);
    for c in classes {
        match &c.checks {
            Ok(checks) => {
                passed += checks.iter().filter(|c| c.passed).count() as u64;
                total += checks.len() as u64;
            }
            Err(_) => total += 1,
        }
    }
    let classes_passed = classes.iter().filter(|c| c.passed()).count();
    (passed, total, classes_passed, classes.len())
}

/// Records a drill run of `drill` (a class, or `all`) in the store of `cfg`: its score, and
/// its report as JSON. Returns the report.
///
/// # Errors
/// When the store cannot be opened or written (the message names it).
pub fn record_drill(
    cfg: &VigilConfig,
    drill: &str,
    started_at: vigil_core::Timestamp,
    finished_at: vigil_core::Timestamp,
    classes: &[DrillClass],
) -> Result<Value, String> {
    let (checks_passed, checks_total, classes_passed, classes_total) = drill_score(classes);
    let report = serde_json::json!({
        "drill": drill,
        "started_at": started_at,
        "finished_at": finished_at,
        "passed": classes_passed == classes_total && classes_total > 0,
        "score": {
            "checks_passed": checks_passed, "checks_total": checks_total,
            "classes_passed": classes_passed, "classes_total": classes_total,
        },
        "classes": classes.iter().map(|c| match &c.checks {
            Ok(checks) => serde_json::json!({
                "class": c.class,
                "passed": c.passed(),
                "checks": checks.iter().map(|k| serde_json::json!({
                    "name": k.name, "passed": k.passed, "detail": k.detail,
                })).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({ "class": c.class, "passed": false, "error": e }),
        }).collect::<Vec<_>>(),
    });
    let run = vigil_store::DrillRun {
        drill: drill.to_string(),
        started_at,
        finished_at,
        passed: report["passed"] == true,
        checks_passed,
        checks_total,
        report: report.to_string(),
    };
    crate::with_store(cfg, async |store| {
        store
            .record_drill(&run)
            .await
            .map_err(|e| format!("cannot record the drill in the store: {e}"))
    })
    .map_err(|e| format!("the drill is not recorded: {e}"))?;
    Ok(report)
}

const FIRST_BAD: &str = "the first bad message is an ERROR line with its payload";
const REACTION: &str = "failover or the breaker";
const NO_LATE_ORDER: &str = "no order on unvalidated data";

/// The running stack a drill works on: the feed's control API (when the drill needs it, or
/// the config has one) and vigil's log folder.
struct Stack {
    /// The feed's control address and its credentials.
    feed: Option<(String, [(&'static str, String); 2])>,
    agent: ureq::Agent,
    log_dir: PathBuf,
    patience: Duration,
}

impl Stack {
    /// A stack whose feed the drill faults: `[data.feed]` is required.
    fn new(cfg: &VigilConfig, config: &Path, opts: &DrillOptions) -> Result<Self, DrillError> {
        let stack = Self::any(cfg, opts)?;
        if stack.feed.is_none() {
            return Err(DrillError::NoFeed {
                config: config.to_path_buf(),
            });
        }
        Ok(stack)
    }

    /// A stack with or without a feed (one is stepped when there is).
    fn any(cfg: &VigilConfig, opts: &DrillOptions) -> Result<Self, DrillError> {
        let feed = match &cfg.data.feed {
            None => None,
            Some(feed) => {
                let control = match &opts.feed_control {
                    Some(c) => c.trim_end_matches('/').to_string(),
                    None => control_of(&feed.url)?,
                };
                let secret = crate::read_secret("data.feed.secret_file", &feed.secret_file)?;
                Some((
                    control,
                    [
                        ("APCA-API-KEY-ID", feed.key_id.clone()),
                        ("APCA-API-SECRET-KEY", secret),
                    ],
                ))
            }
        };
        Ok(Self {
            feed,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .new_agent(),
            log_dir: cfg.log.dir.clone(),
            patience: Duration::from_secs(opts.timeout_s),
        })
    }

    /// POSTs `path` to the feed's control API; its JSON answer.
    fn post(&self, path: &str) -> Result<Value, DrillError> {
        let Some((control, auth)) = &self.feed else {
            return Err(DrillError::Feed {
                url: path.to_string(),
                problem: "no [data.feed] to send it to".into(),
            });
        };
        let url = format!("{control}{path}");
        let failed = |problem: String| DrillError::Feed {
            url: url.clone(),
            problem,
        };
        let mut res = with_auth(self.agent.post(&url), auth)
            .send_empty()
            .map_err(|e| failed(e.to_string()))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .read_to_string()
            .map_err(|e| failed(format!("reading the answer: {e}")))?;
        if status != 200 {
            return Err(failed(format!("{status} {body}")));
        }
        serde_json::from_str(&body).map_err(|e| failed(format!("not JSON ({e}): {body}")))
    }

    fn lines(&self) -> Result<Vec<Value>, DrillError> {
        log_lines(&self.log_dir)
    }

    /// The first line after the first `skip` that `pred` accepts, within the patience.
    fn wait(
        &self,
        skip: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Option<Value>, DrillError> {
        wait(&self.log_dir, skip, self.patience, pred)
    }

    /// Steps the feed `n` bars (a feed under `--manual`); nothing for 0 or without a feed.
    fn step(&self, n: u32) -> Result<(), DrillError> {
        if n > 0 && self.feed.is_some() {
            self.post(&format!("/_feed/step?n={n}"))?;
        }
        Ok(())
    }
}

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
    let stack = Stack::new(cfg, config, opts)?;
    // What vigil had before the fault.
    let before = stack.lines()?;
    let seen_until = last_seen(&before);
    let t0 = Instant::now();
    stack.post("/_faults/format?kind=renamed")?;
    stack.step(opts.step)?;
    let first_bad = stack.wait(before.len(), |l| l["event"] == "data_parse_failed")?;
    let mut checks = vec![first_bad_check(
        first_bad.as_ref(),
        t0.elapsed(),
        opts.timeout_s,
    )];
    let reaction = stack.wait(before.len(), |l| {
        l["event"] == "data_source_switched" || l["event"] == "breaker_tripped"
    })?;
    checks.push(reaction_check(reaction.as_ref(), opts.timeout_s));
    let switched = reaction
        .as_ref()
        .is_some_and(|r| r["event"] == "data_source_switched");
    let after = stack.lines()?;
    checks.push(late_order_check(
        after.get(before.len()..).unwrap_or_default(),
        &seen_until,
        switched,
    ));
    stack.post("/_faults/clear")?;
    Ok(checks)
}

const DETECTED: &str = "the loss is detected";
const TOLD: &str = "a person is told";
const RESUMED: &str = "trading resumes after the books are verified";
const NOTHING_DECIDED: &str = "no order while the data was down";

/// Runs `data-source-down` against the stack of `cfg` (see the module's documentation):
/// the feed drops its connections, then (after the detection) delivers `opts.step` bars.
///
/// # Errors
/// As [`data_format_change`].
pub fn data_source_down(
    cfg: &VigilConfig,
    config: &Path,
    opts: &DrillOptions,
) -> Result<Vec<DrillCheck>, DrillError> {
    let stack = Stack::new(cfg, config, opts)?;
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    stack.post("/_faults/disconnect?abrupt=true")?;
    let detected = stack.wait(before, |l| {
        l["event"] == "data_outage" || l["event"] == "data_source_switched"
    })?;
    let detected_after = t0.elapsed();
    let mut checks = vec![detected_check(
        detected.as_ref(),
        detected_after,
        opts.timeout_s,
    )];
    let rule = detected
        .as_ref()
        .and_then(|l| l["event"].as_str())
        .unwrap_or("data_outage")
        .to_string();
    checks.push(told(&stack, before, &rule, t0, opts.timeout_s)?);
    let switched = rule == "data_source_switched";
    if !switched {
        checks.push(verified_after_outage(&stack, before, opts, t0)?);
    }
    let after = stack.lines()?;
    checks.push(nothing_decided_check(
        after.get(before..).unwrap_or_default(),
        switched,
    ));
    stack.post("/_faults/clear")?;
    Ok(checks)
}

const QUARANTINED: &str = "the jump is quarantined";
const NO_ORDER_IN_IT: &str = "no order in the symbol while it is held";

/// Runs `price-jump` against the stack of `cfg`: the next bar of its first instrument moves
/// `pct` percent, and the feed is stepped `opts.step` bars.
///
/// # Errors
/// As [`data_format_change`].
pub fn price_jump(
    cfg: &VigilConfig,
    config: &Path,
    opts: &DrillOptions,
    pct: rust_decimal::Decimal,
) -> Result<Vec<DrillCheck>, DrillError> {
    let stack = Stack::new(cfg, config, opts)?;
    let symbol = first_symbol(cfg);
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    stack.post(&format!("/_faults/spike?symbol={symbol}&pct={pct}"))?;
    stack.step(opts.step)?;
    let held = stack.wait(before, |l| {
        l["event"] == "symbol_quarantined" && l["data"]["symbol"] == symbol.as_str()
    })?;
    let mut checks = vec![quarantined_check(
        &symbol,
        held.as_ref(),
        t0.elapsed(),
        opts.timeout_s,
    )];
    checks.push(told(
        &stack,
        before,
        "symbol_quarantined",
        t0,
        opts.timeout_s,
    )?);
    let after = stack.lines()?;
    checks.push(no_order_while_held_check(
        after.get(before..).unwrap_or_default(),
        &symbol,
    ));
    stack.post("/_faults/clear")?;
    Ok(checks)
}

/// Sends `inject_panic` for `agent`, `times` times, through the running vigil's control API.
fn inject_panic(cfg: &VigilConfig, agent: &str, times: u32, drill: &str) -> Result<(), DrillError> {
    command(
        cfg,
        serde_json::json!({
            "command": "inject_panic",
            "agent": agent,
            "times": times,
            "reason": format!("vigil drill {drill}"),
            "who": "drill",
        }),
    )
}

/// Sends an operator command (`body`) to the running vigil's control API, found as
/// `vigil ctl` finds it (`control.addr` in the log folder, the token file).
fn command(cfg: &VigilConfig, body: Value) -> Result<(), DrillError> {
    let what = format!("{} refused", body["command"].as_str().unwrap_or("?"));
    control(cfg, &what, |c| c.post("/v1/commands", &body)).map(|_| ())
}

/// The running vigil's `/v1/status`, found as `vigil ctl` finds it.
fn status(cfg: &VigilConfig) -> Result<Value, DrillError> {
    let reply = control(cfg, "GET /v1/status", |c| c.get("/v1/status"))?;
    reply.json().map_err(DrillError::Control)
}

/// One call to the running vigil's control API; anything but 200 is an error naming `what`.
fn control(
    cfg: &VigilConfig,
    what: &str,
    call: impl FnOnce(
        &vigil_control::client::Client,
    ) -> Result<vigil_control::client::Reply, vigil_control::client::Failure>,
) -> Result<vigil_control::client::Reply, DrillError> {
    use vigil_control::client::{Failure, Located, Target};
    let client = match Target::default()
        .locate(cfg)
        .map_err(|e| DrillError::Control(e.to_string()))?
    {
        Located::Running(c) => c,
        Located::NotRunning(why) => return Err(DrillError::Control(why)),
    };
    let reply = call(&client).map_err(|f| {
        DrillError::Control(match f {
            Failure::NotRunning(e) | Failure::NoAnswer(e) | Failure::Other(e) => e,
        })
    })?;
    if reply.status != 200 {
        return Err(DrillError::Control(format!(
            "{what} (HTTP {}): {}",
            reply.status,
            reply.error()
        )));
    }
    Ok(reply)
}

const CAUGHT: &str = "the crash is caught";
const RESTARTED: &str = "the agent is restarted and rebuilt";
const GOES_ON: &str = "trading goes on";

/// Runs `agent-crash`: one panic in `agent` (through the control API's `inject_panic`); the
/// supervisor must catch it, a person be told, the agent restart and rebuild, and trading
/// go on (no breaker).
///
/// # Errors
/// [`DrillError`] when the drill cannot run: the log folder unreadable, the control API not
/// reachable or refusing (fault injection off).
pub fn agent_crash(
    cfg: &VigilConfig,
    opts: &DrillOptions,
    agent: &str,
) -> Result<Vec<DrillCheck>, DrillError> {
    let stack = Stack::any(cfg, opts)?;
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    inject_panic(cfg, agent, 1, "agent-crash")?;
    let of_agent = |l: &Value, event: &str| l["event"] == event && l["data"]["agent"] == agent;
    let crashed = stack.wait(before, |l| of_agent(l, "agent_crashed"))?;
    let crashed_after = t0.elapsed();
    let mut checks = vec![seen_check(
        CAUGHT,
        crashed.as_ref(),
        |l| {
            format!(
                "agent_crashed ({agent}) {} ms after the fault: {}",
                crashed_after.as_millis(),
                truncate(l["data"]["panic"].as_str().unwrap_or("?"), 120)
            )
        },
        || format!("no agent_crashed for {agent} within {} s", opts.timeout_s),
    )];
    checks.push(told(&stack, before, "agent_crashed", t0, opts.timeout_s)?);
    let restarted = stack.wait(before, |l| of_agent(l, "agent_restarted"))?;
    let restarted_after = t0.elapsed();
    let rebuilt = stack
        .lines()?
        .into_iter()
        .skip(before)
        .find(|l| of_agent(l, "agent_rebuilt"));
    checks.push(seen_check(
        RESTARTED,
        restarted.as_ref(),
        |_| {
            format!(
                "agent_restarted ({agent}) {} ms after the fault{}",
                restarted_after.as_millis(),
                rebuilt
                    .map(|l| format!(
                        "; rebuilt from {}",
                        truncate(l["data"]["rebuilt"].as_str().unwrap_or("?"), 120)
                    ))
                    .unwrap_or_default()
            )
        },
        || format!("no agent_restarted for {agent} within {} s", opts.timeout_s),
    ));
    // Bars after the restart reach the agent again.
    stack.step(opts.step)?;
    let after = stack.lines()?;
    let halted =
        after.get(before..).unwrap_or_default().iter().find(|l| {
            l["event"] == "breaker_tripped" || l["event"] == "restart_intensity_exceeded"
        });
    checks.push(match halted {
        None => DrillCheck {
            name: GOES_ON,
            passed: true,
            detail: "no breaker trip and no crash loop after one crash".into(),
        },
        Some(l) => DrillCheck {
            name: GOES_ON,
            passed: false,
            detail: format!(
                "{} after one crash: {}",
                l["event"].as_str().unwrap_or("?"),
                truncate(&l["data"].to_string(), 160)
            ),
        },
    });
    Ok(checks)
}

const LOOP_DETECTED: &str = "the crash loop is detected";
const HALTED: &str = "trading halts";
const NOTHING_AFTER: &str = "no order approved after the halt";

/// Runs `crash-loop`: one panic more than `[monitor.supervision] max_restarts` in `agent`;
/// the supervisor must see the loop (`restart_intensity_exceeded`), trip the breaker, a
/// person be told, and nothing be approved after. Then the drill resets the breaker it
/// caused (`breaker_reset`, audited as the drill's), so that the stack is whole again for
/// the next drill; a refused reset is a failed check.
///
/// # Errors
/// As [`agent_crash`].
pub fn crash_loop(
    cfg: &VigilConfig,
    opts: &DrillOptions,
    agent: &str,
) -> Result<Vec<DrillCheck>, DrillError> {
    let stack = Stack::any(cfg, opts)?;
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    let times = cfg.monitor.supervision.max_restarts + 1;
    inject_panic(cfg, agent, times, "crash-loop")?;
    let exceeded = stack.wait(before, |l| {
        l["event"] == "restart_intensity_exceeded" && l["data"]["agent"] == agent
    })?;
    let mut checks = vec![seen_check(
        LOOP_DETECTED,
        exceeded.as_ref(),
        |_| {
            format!(
                "restart_intensity_exceeded ({agent}, {times} panics) {} ms after the fault",
                t0.elapsed().as_millis()
            )
        },
        || {
            format!(
                "no restart_intensity_exceeded for {agent} within {} s of {times} panics",
                opts.timeout_s
            )
        },
    )];
    checks.push(told(
        &stack,
        before,
        "restart_intensity_exceeded",
        t0,
        opts.timeout_s,
    )?);
    // The Monitor asks the Risk agent to trip the breaker; a crashed Risk agent (the
    // default) takes it when it is restarted, at the longest backoff.
    let backoff = Duration::from_millis(cfg.monitor.supervision.backoff_max_ms);
    let tripped = wait(&stack.log_dir, before, stack.patience + backoff, |l| {
        l["event"] == "breaker_tripped"
    })?;
    checks.push(seen_check(
        HALTED,
        tripped.as_ref(),
        |l| {
            format!(
                "breaker_tripped by {} {} ms after the fault",
                l["data"]["actor"].as_str().unwrap_or("?"),
                t0.elapsed().as_millis()
            )
        },
        || {
            format!(
                "no breaker_tripped within {} s ({} s and the longest restart backoff)",
                (stack.patience + backoff).as_secs(),
                opts.timeout_s
            )
        },
    ));
    // Bars after the halt: signals may come, nothing is approved.
    stack.step(opts.step)?;
    let after = stack.lines()?;
    checks.push(approved_after_trip(
        NOTHING_AFTER,
        after.get(before..).unwrap_or_default(),
    ));
    if tripped.is_some() {
        checks.push(put_breaker_back(cfg, "crash-loop"));
    }
    Ok(checks)
}

/// Check `name`: no order approved from the first `breaker_tripped` of `since` on.
fn approved_after_trip(name: &'static str, since: &[Value]) -> DrillCheck {
    let from = since.iter().position(|l| l["event"] == "breaker_tripped");
    let approved = from.map_or(0, |i| {
        since[i..]
            .iter()
            .filter(|l| l["event"] == "risk_approved")
            .count()
    });
    DrillCheck {
        name,
        passed: from.is_some() && approved == 0,
        detail: match from {
            None => "the breaker never tripped".into(),
            Some(_) if approved == 0 => "nothing approved after the trip".into(),
            Some(_) => format!("{approved} order(s) approved after the trip"),
        },
    }
}

/// The drill resets the breaker it caused (`breaker_reset`, audited as the drill's), so
/// that the stack is whole again for the next drill; a refused reset fails the check.
fn put_breaker_back(cfg: &VigilConfig, drill: &str) -> DrillCheck {
    let reset = command(
        cfg,
        serde_json::json!({
            "command": "breaker_reset",
            "reason": format!("vigil drill {drill}: the rehearsal is over"),
            "who": "drill",
        }),
    );
    DrillCheck {
        name: "the drill puts the breaker back",
        passed: reset.is_ok(),
        detail: match reset {
            Ok(()) => "breaker reset by the drill".into(),
            Err(e) => format!("reset it by hand (`vigil ctl breaker reset`): {e}"),
        },
    }
}

/// `req` with the API key headers (the feed's and the broker's are Alpaca-shaped).
fn with_auth<B>(
    mut req: ureq::RequestBuilder<B>,
    auth: &[(&'static str, String)],
) -> ureq::RequestBuilder<B> {
    for (k, v) in auth {
        req = req.header(*k, v.as_str());
    }
    req
}

/// The first instrument of `cfg`, the one the drills fault.
fn first_symbol(cfg: &VigilConfig) -> String {
    cfg.data
        .instruments
        .first()
        .map(|i| i.symbol.to_string())
        .unwrap_or_default()
}

/// The broker the running vigil trades through (`vigil broker`, or one with its fault API).
struct Broker {
    url: String,
    auth: [(&'static str, String); 2],
    agent: ureq::Agent,
}

impl Broker {
    fn of(cfg: &VigilConfig, config: &Path) -> Result<Self, DrillError> {
        let e = &cfg.execution;
        let (Some(url), Some(key), Some(secret)) = (
            e.broker_url
                .as_ref()
                .filter(|_| e.venue == vigil_config::VenueKind::Alpaca),
            &e.broker_key_id,
            &e.broker_secret_file,
        ) else {
            return Err(DrillError::NoBroker {
                config: config.to_path_buf(),
            });
        };
        let secret = crate::read_secret("execution.broker_secret_file", secret)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            auth: [
                ("APCA-API-KEY-ID", key.clone()),
                ("APCA-API-SECRET-KEY", secret),
            ],
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .new_agent(),
        })
    }

    /// `method` `path` (under `/v2`) with a JSON `body`; the JSON answer (`null` for none).
    fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, DrillError> {
        let url = format!("{}/v2{path}", self.url);
        let failed = |problem: String| DrillError::Broker {
            method,
            url: url.clone(),
            problem,
        };
        let sent = match method {
            "GET" => with_auth(self.agent.get(&url), &self.auth).call(),
            "DELETE" => with_auth(self.agent.delete(&url), &self.auth).call(),
            _ => with_auth(self.agent.post(&url), &self.auth)
                .header("Content-Type", "application/json")
                .send(body.map_or_else(|| "{}".to_string(), Value::to_string)),
        };
        let mut res = sent.map_err(|e| failed(e.to_string()))?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .read_to_string()
            .map_err(|e| failed(format!("reading the answer: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(failed(format!("{status} {text}")));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| failed(format!("not JSON ({e}): {text}")))
    }
}

const HELD: &str = "orders are held while the broker is down";
const RESUMED_RECONCILED: &str = "the held orders go out and the books are reconciled";
const ONCE: &str = "every order reaches the broker once";

/// Runs `broker-down`: the broker answers 503 to every trading call (`/v2/_faults/down`)
/// while the feed is stepped; vigil must hold its orders (`orders_paused`), tell a person,
/// and once the broker is back (the drill clears the fault when the hold is seen) send the
/// held orders still wanted, reconcile (`trigger = venue_returned`), and never send one
/// twice.
///
/// # Errors
/// [`DrillError`] when the drill cannot run: no broker, its secret or the log unreadable,
/// the broker's fault API failing.
pub fn broker_down(
    cfg: &VigilConfig,
    config: &Path,
    opts: &DrillOptions,
) -> Result<Vec<DrillCheck>, DrillError> {
    let broker = Broker::of(cfg, config)?;
    let stack = Stack::any(cfg, opts)?;
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    broker.call("POST", "/_faults/down", Some(&serde_json::json!({})))?;
    // Bars one at a time, so that an order is decided while the broker is down; the hold
    // is timed from the first order the outage met.
    let mut bars = 0;
    let held = (|| {
        let deadline = Instant::now() + stack.patience;
        loop {
            if stack.feed.is_some() && bars < opts.step.max(1) * 10 {
                stack.step(1)?;
                bars += 1;
            }
            let paused = wait(&stack.log_dir, before, Duration::from_millis(500), |l| {
                l["event"] == "orders_paused"
            })?;
            if paused.is_some() || Instant::now() >= deadline {
                return Ok::<_, DrillError>(paused);
            }
        }
    })();
    let held_after = t0.elapsed();
    // Whatever was seen, the broker comes back.
    let cleared = broker.call("DELETE", "/_faults", None);
    let held = held?;
    cleared?;
    let mut checks = vec![seen_check(
        HELD,
        held.as_ref(),
        |l| {
            format!(
                "orders_paused {} ms after the fault ({bars} bar(s) stepped until an order was decided): {}",
                held_after.as_millis(),
                truncate(l["data"]["error"].as_str().unwrap_or("?"), 120)
            )
        },
        || {
            format!(
                "no orders_paused within {} s (was an order decided while the broker was down?)",
                opts.timeout_s
            )
        },
    )];
    checks.push(told(&stack, before, "orders_paused", t0, opts.timeout_s)?);
    let resumed = stack.wait(before, |l| l["event"] == "orders_resumed")?;
    let reconciled = stack.wait(before, |l| {
        l["event"] == "reconciliation_completed" && l["data"]["trigger"] == "venue_returned"
    })?;
    checks.push(match (&resumed, &reconciled) {
        (Some(r), Some(_)) => DrillCheck {
            name: RESUMED_RECONCILED,
            passed: true,
            detail: format!(
                "orders_resumed ({} sent, {} withdrawn) and reconciled on return, {} ms after the fault",
                r["data"]["sent"],
                r["data"]["withdrawn"],
                t0.elapsed().as_millis()
            ),
        },
        _ => DrillCheck {
            name: RESUMED_RECONCILED,
            passed: false,
            detail: format!(
                "within {} s: orders_resumed {}, reconciliation on return {}",
                opts.timeout_s,
                if resumed.is_some() { "seen" } else { "not seen" },
                if reconciled.is_some() { "seen" } else { "not seen" }
            ),
        },
    });
    let orders = broker.call("GET", "/orders?status=all&limit=500", None)?;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for o in orders.as_array().map(Vec::as_slice).unwrap_or_default() {
        if let Some(id) = o["client_order_id"].as_str() {
            *seen.entry(id.to_string()).or_default() += 1;
        }
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    checks.push(DrillCheck {
        name: ONCE,
        passed: twice.is_empty() && !seen.is_empty(),
        detail: if seen.is_empty() {
            "the broker lists no order".into()
        } else if twice.is_empty() {
            format!(
                "{} client order id(s) at the broker, none twice",
                seen.len()
            )
        } else {
            format!("sent more than once: {twice:?}")
        },
    });
    Ok(checks)
}

const BROKER_LOST: &str = "the broker's loss is seen too";
const VERIFIED_AGAINST_BROKER: &str =
    "the books are reconciled with the broker before trading resumes";

/// Runs `network-loss`: every connection at once. The broker answers 503 to every trading
/// call and the feed drops its connections without a close frame; vigil must detect the
/// data outage and tell a person, see the broker's loss too (its calls fail), and once
/// the network is back (the broker first, then the feed delivering) reconnect, reconcile
/// the books with the broker and verify (`[data] after_outage = "verify"`) before trading
/// resumes on its own, with no order decided in between.
///
/// # Errors
/// As [`broker_down`]; also without `[data.feed]`.
pub fn network_loss(
    cfg: &VigilConfig,
    config: &Path,
    opts: &DrillOptions,
) -> Result<Vec<DrillCheck>, DrillError> {
    let broker = Broker::of(cfg, config)?;
    let stack = Stack::new(cfg, config, opts)?;
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    broker.call("POST", "/_faults/down", Some(&serde_json::json!({})))?;
    if let Err(e) = stack.post("/_faults/disconnect?abrupt=true") {
        broker.call("DELETE", "/_faults", None)?;
        return Err(e);
    }
    let seen = (|| {
        let detected = stack.wait(before, |l| {
            l["event"] == "data_outage" || l["event"] == "data_source_switched"
        })?;
        let detected_after = t0.elapsed();
        let told = told(&stack, before, "data_outage", t0, opts.timeout_s)?;
        let lost = stack.wait(before, |l| {
            l["event"] == "venue_error" || l["event"] == "orders_paused"
        })?;
        Ok::<_, DrillError>((detected, detected_after, told, lost, t0.elapsed()))
    })();
    // The network comes back, the broker first: whatever was seen.
    let cleared = broker.call("DELETE", "/_faults", None);
    let (detected, detected_after, told, lost, lost_after) = seen?;
    cleared?;
    let mut checks = vec![detected_check(
        detected.as_ref(),
        detected_after,
        opts.timeout_s,
    )];
    checks.push(told);
    checks.push(seen_check(
        BROKER_LOST,
        lost.as_ref(),
        |l| {
            format!(
                "{} {} ms after the fault: {}",
                l["event"].as_str().unwrap_or("?"),
                lost_after.as_millis(),
                truncate(l["data"]["error"].as_str().unwrap_or("?"), 120)
            )
        },
        || {
            format!(
                "no venue_error or orders_paused within {} s of the broker going down",
                opts.timeout_s
            )
        },
    ));
    // Then the feed delivers: vigil reconnects on its own, reconciles and verifies.
    let outage_at = stack
        .lines()?
        .iter()
        .skip(before)
        .position(|l| l["event"] == "data_outage")
        .map(|i| before + i);
    checks.push(verified_after_outage(&stack, before, opts, t0)?);
    let after = stack.lines()?;
    let since = after.get(before..).unwrap_or_default();
    // A reconciliation after the outage began and before the reset.
    let reset_at = since
        .iter()
        .position(|l| l["event"] == "breaker_reset" && l["data"]["actor"] == "data_verify")
        .map(|i| before + i);
    let reconciled = match (outage_at, reset_at) {
        (Some(from), Some(to)) => after[from..to]
            .iter()
            .find(|l| l["event"] == "reconciliation_completed"),
        _ => None,
    };
    checks.push(seen_check(
        VERIFIED_AGAINST_BROKER,
        reconciled,
        |l| {
            format!(
                "reconciliation_completed (trigger {}) before the breaker was reset",
                l["data"]["trigger"].as_str().unwrap_or("?")
            )
        },
        || "no reconciliation with the broker between the outage and the reset".into(),
    ));
    checks.push(nothing_decided_check(since, false));
    stack.post("/_faults/clear")?;
    Ok(checks)
}

const DRIFT_FOUND: &str = "the trade behind vigil's back is found";
const RESTRICTED: &str = "trading is restricted until a person looks";

/// Runs `broker-drift`: a trade made at the broker outside vigil
/// (`/v2/_faults/manual_trade`, `qty` shares of the first instrument at its last price);
/// vigil must find it (`reconciliation_mismatch`), tell a person, and restrict trading
/// (`[execution.reconcile] on_mismatch`) until an operator resets it. The drill leaves it
/// so: a real mismatch is for a person to judge.
///
/// # Errors
/// As [`broker_down`]; also when vigil has not priced the symbol yet.
pub fn broker_drift(
    cfg: &VigilConfig,
    config: &Path,
    opts: &DrillOptions,
    qty: rust_decimal::Decimal,
) -> Result<Vec<DrillCheck>, DrillError> {
    let broker = Broker::of(cfg, config)?;
    let stack = Stack::any(cfg, opts)?;
    let symbol = first_symbol(cfg);
    let lines = stack.lines()?;
    let price = lines
        .iter()
        .rev()
        .filter(|l| l["data"]["symbol"] == symbol.as_str())
        .find_map(|l| {
            let p = &l["data"]["price"];
            p.as_str()
                .map(str::to_string)
                .or_else(|| p.is_number().then(|| p.to_string()))
        })
        .ok_or_else(|| {
            DrillError::NotReady(format!(
                "no price of {symbol} in vigil's log yet: let it trade first"
            ))
        })?;
    let before = lines.len();
    let t0 = Instant::now();
    broker.call(
        "POST",
        "/_faults/manual_trade",
        Some(&serde_json::json!({
            "symbol": symbol, "qty": qty.to_string(), "side": "buy", "price": price,
        })),
    )?;
    // A bar moves the broker's clock and vigil's polling on.
    stack.step(opts.step)?;
    let found = stack.wait(before, |l| l["event"] == "reconciliation_mismatch")?;
    let mut checks = vec![seen_check(
        DRIFT_FOUND,
        found.as_ref(),
        |l| {
            format!(
                "reconciliation_mismatch (CRITICAL) {} ms after the trade: {}",
                t0.elapsed().as_millis(),
                truncate(&l["data"].to_string(), 160)
            )
        },
        || {
            format!(
                "no reconciliation_mismatch within {} s of a manual {qty} {symbol} at {price}",
                opts.timeout_s
            )
        },
    )];
    checks.push(told(
        &stack,
        before,
        "reconciliation_mismatch",
        t0,
        opts.timeout_s,
    )?);
    let restricted = stack.wait(before, |l| {
        l["event"] == "trading_state_changed"
            && (l["data"]["to"] == "reduce_only" || l["data"]["to"] == "halted")
    })?;
    checks.push(seen_check(
        RESTRICTED,
        restricted.as_ref(),
        |l| {
            format!(
                "trading {} by {}; reset it after checking the broker (`vigil ctl breaker reset`)",
                l["data"]["to"].as_str().unwrap_or("?"),
                l["data"]["actor"].as_str().unwrap_or("?")
            )
        },
        || format!("trading was not restricted within {} s", opts.timeout_s),
    ));
    Ok(checks)
}

/// A check that holds when `line` was seen: `seen` says what it showed, `missed` why it
/// failed.
fn seen_check(
    name: &'static str,
    line: Option<&Value>,
    seen: impl FnOnce(&Value) -> String,
    missed: impl FnOnce() -> String,
) -> DrillCheck {
    match line {
        Some(l) => DrillCheck {
            name,
            passed: true,
            detail: seen(l),
        },
        None => DrillCheck {
            name,
            passed: false,
            detail: missed(),
        },
    }
}

fn detected_check(line: Option<&Value>, after: Duration, timeout_s: u64) -> DrillCheck {
    match line {
        Some(l) => DrillCheck {
            name: DETECTED,
            passed: l["level"] == "CRITICAL" || l["event"] == "data_source_switched",
            detail: format!(
                "{} ({}) {} ms after the fault",
                l["event"].as_str().unwrap_or("?"),
                l["level"].as_str().unwrap_or("?"),
                after.as_millis()
            ),
        },
        None => DrillCheck {
            name: DETECTED,
            passed: false,
            detail: format!("neither data_outage nor data_source_switched within {timeout_s} s"),
        },
    }
}

/// Check: the alert of `rule` fired after the first `skip` lines and a channel took it
/// (`alert_delivered`); the time from the fault (`t0`) to that delivery.
fn told(
    stack: &Stack,
    skip: usize,
    rule: &str,
    t0: Instant,
    timeout_s: u64,
) -> Result<DrillCheck, DrillError> {
    let firing = stack.wait(skip, |l| {
        l["event"] == "alert_firing" && l["data"]["rule"] == rule
    })?;
    let fired_after = t0.elapsed();
    let Some(id) = firing
        .as_ref()
        .and_then(|l| l["data"]["id"].as_str())
        .map(str::to_string)
    else {
        return Ok(DrillCheck {
            name: TOLD,
            passed: false,
            detail: format!("no {rule} alert fired within {timeout_s} s"),
        });
    };
    // Delivered by a channel, or held back by the alerting policy (the first of either).
    let outcome = stack.wait(skip, |l| {
        (l["event"] == "alert_delivered" || l["event"] == "alert_suppressed")
            && l["data"]["id"] == id.as_str()
    })?;
    let delivered = outcome
        .as_ref()
        .filter(|l| l["event"] == "alert_delivered")
        .cloned();
    // Not delivered: held back, or handed to no channel?
    let held = if delivered.is_none() {
        stack.lines()?.into_iter().skip(skip).find(|l| {
            (l["event"] == "alert_suppressed" || l["event"] == "alert_notified")
                && l["data"]["id"] == id.as_str()
        })
    } else {
        None
    };
    if let Some(l) = &held
        && l["data"]["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("low severity"))
    {
        // The routing's policy: a LOW alert goes out in the day's digest, not at once.
        return Ok(DrillCheck {
            name: TOLD,
            passed: true,
            detail: format!(
                "the {rule} alert ({id}) fired {} ms after the fault; LOW severity: kept for \
                 the daily digest",
                fired_after.as_millis()
            ),
        });
    }
    let why = held
        .map(|l| {
            format!(
                "; {}: {}",
                l["event"].as_str().unwrap_or("?"),
                truncate(&l["data"].to_string(), 200)
            )
        })
        .unwrap_or_default();
    Ok(seen_check(
        TOLD,
        delivered.as_ref(),
        |l| {
            format!(
                "the {rule} alert ({id}) delivered through {} {} ms after the fault",
                l["data"]["channel"].as_str().unwrap_or("?"),
                t0.elapsed().as_millis()
            )
        },
        || {
            format!(
                "the {rule} alert ({id}) fired but no channel took it within {timeout_s} s \
                 (is [alerts.channels] configured for its severity?){why}"
            )
        },
    ))
}

/// After a data outage the feed delivers again: vigil reconnects on its own (the feed is
/// then stepped), verifies and lifts the halt; the check of that (see [`resumed_check`]).
fn verified_after_outage(
    stack: &Stack,
    before: usize,
    opts: &DrillOptions,
    t0: Instant,
) -> Result<DrillCheck, DrillError> {
    let reconnected = stack.wait(before, |l| l["event"] == "data_source_connected")?;
    if reconnected.is_some() {
        stack.step(opts.step)?;
    }
    let resumed = stack.wait(before, |l| {
        l["event"] == "breaker_reset" && l["data"]["actor"] == "data_verify"
    })?;
    let verified = stack
        .lines()?
        .into_iter()
        .skip(before)
        .find(|l| l["event"] == "data_verified");
    Ok(resumed_check(
        verified.as_ref(),
        resumed.as_ref(),
        t0.elapsed(),
        opts.timeout_s,
    ))
}

fn resumed_check(
    verified: Option<&Value>,
    reset: Option<&Value>,
    after: Duration,
    timeout_s: u64,
) -> DrillCheck {
    match (verified, reset) {
        (Some(_), Some(_)) => DrillCheck {
            name: RESUMED,
            passed: true,
            detail: format!(
                "data_verified passed and breaker_reset by data_verify {} ms after the fault",
                after.as_millis()
            ),
        },
        (Some(v), None) => DrillCheck {
            name: RESUMED,
            passed: false,
            detail: format!(
                "data_verified {}: {}",
                if v["data"]["passed"] == true {
                    "passed"
                } else {
                    "failed"
                },
                truncate(v["data"]["action"].as_str().unwrap_or("?"), 160)
            ),
        },
        (None, _) => DrillCheck {
            name: RESUMED,
            passed: false,
            detail: format!(
                "no data_verified within {timeout_s} s of the feed delivering again (is it \
                 stepped, or is reconnecting on?)"
            ),
        },
    }
}

/// No order approved between the trip and the reset (with a backup: nothing to judge, the
/// backup's bars are validated in their turn).
fn nothing_decided_check(since: &[Value], switched: bool) -> DrillCheck {
    if switched {
        return DrillCheck {
            name: NOTHING_DECIDED,
            passed: true,
            detail: "a backup feed took over: its bars are validated in their turn".into(),
        };
    }
    let tripped = since.iter().position(|l| l["event"] == "breaker_tripped");
    let reset = since.iter().position(|l| l["event"] == "breaker_reset");
    let approved: Vec<&str> = match tripped {
        Some(from) => since[from..reset.unwrap_or(since.len()).max(from)]
            .iter()
            .filter(|l| l["event"] == "risk_approved")
            .filter_map(|l| l["timestamp"].as_str())
            .collect(),
        None => Vec::new(),
    };
    DrillCheck {
        name: NOTHING_DECIDED,
        passed: tripped.is_some() && approved.is_empty(),
        detail: match (tripped, approved.is_empty()) {
            (None, _) => "the breaker did not trip".into(),
            (Some(_), true) => "nothing approved between the trip and the reset".into(),
            (Some(_), false) => format!("approved while halted: {}", approved.join(", ")),
        },
    }
}

fn quarantined_check(
    symbol: &str,
    line: Option<&Value>,
    after: Duration,
    timeout_s: u64,
) -> DrillCheck {
    seen_check(
        QUARANTINED,
        line,
        |l| {
            format!(
                "{symbol} held {} ms after the fault: {}",
                after.as_millis(),
                truncate(l["data"]["reason"].as_str().unwrap_or("?"), 160)
            )
        },
        || format!("no symbol_quarantined for {symbol} within {timeout_s} s"),
    )
}

fn no_order_while_held_check(since: &[Value], symbol: &str) -> DrillCheck {
    let held = since
        .iter()
        .position(|l| l["event"] == "symbol_quarantined" && l["data"]["symbol"] == symbol);
    let released = since
        .iter()
        .position(|l| l["event"] == "symbol_released" && l["data"]["symbol"] == symbol);
    let orders: Vec<&str> = match held {
        Some(from) => since[from..released.unwrap_or(since.len()).max(from)]
            .iter()
            .filter(|l| l["event"] == "order_submitted" && l["data"]["symbol"] == symbol)
            .filter_map(|l| l["timestamp"].as_str())
            .collect(),
        None => Vec::new(),
    };
    DrillCheck {
        name: NO_ORDER_IN_IT,
        passed: held.is_some() && orders.is_empty(),
        detail: match (held, orders.is_empty()) {
            (None, _) => format!("{symbol} was not held"),
            (Some(_), true) => format!("no {symbol} order while it was held"),
            (Some(_), false) => format!("{symbol} orders while held: {}", orders.join(", ")),
        },
    }
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
    fn an_approval_while_halted_or_an_order_in_a_held_symbol_fails_its_drill() {
        let ev = |event: &str, t: &str| json!({"event": event, "timestamp": t, "data": {"symbol": "GOOG"}});
        let ok = [
            ev("breaker_tripped", "1"),
            ev("data_verified", "2"),
            ev("breaker_reset", "3"),
            ev("risk_approved", "4"),
        ];
        assert!(nothing_decided_check(&ok, false).passed);
        let bad = [ev("breaker_tripped", "1"), ev("risk_approved", "2")];
        let c = nothing_decided_check(&bad, false);
        assert!(!c.passed);
        assert_eq!(c.detail, "approved while halted: 2");
        assert!(
            !nothing_decided_check(&[], false).passed,
            "no trip, no pass"
        );
        assert!(
            nothing_decided_check(&[], true).passed,
            "a backup took over"
        );

        let held = [
            ev("symbol_quarantined", "1"),
            ev("order_submitted", "2"),
            ev("symbol_released", "3"),
        ];
        let c = no_order_while_held_check(&held, "GOOG");
        assert!(!c.passed);
        assert_eq!(c.detail, "GOOG orders while held: 2");
        assert!(no_order_while_held_check(&held[..1], "GOOG").passed);
        assert!(!no_order_while_held_check(&[], "GOOG").passed, "never held");
    }

    #[test]
    fn truncate_cuts_at_a_character_and_marks_it() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }
}
