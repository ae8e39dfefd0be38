//! `vigil model release start | pause | resume | step | abort | status` and `vigil model
//! shadow-report`: a model's release, kept in the store with its registry (the rules are
//! `vigil_deploy::release`'s), and the judgement of its shadow run against
//! `[release.shadow]`. A `vigil run` picks a release's change up at its next start.
//! Exit codes: 0 done (shadow-report: every standard met), 1 shadow-report: not (yet) met,
//! 2 refused (the reason printed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use vigil_deploy::release::{self, Action};
use vigil_deploy::shadow::{self, ShadowReport, ShadowSession};
use vigil_log::Event;
use vigil_store::ModelRelease;

use crate::alerts_cmd::who_from;
use crate::control_client::{USAGE, load_config, with_store};
use crate::registry_cmd::{ChangeArgs, actor, change, read};

/// `vigil model release` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReleaseCmd {
    /// Start a staging version's release in shadow: every `vigil run` of the model runs it
    /// beside production on the same bars, through a simulated venue, without orders. A
    /// running session of the model starts the `candidate`'s at once.
    Start {
        /// The model's name.
        name: String,
        /// The version to release, or an alias (`candidate`).
        #[arg(default_value = "candidate")]
        version: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Hold the open release: its candidate does not run (from the next `vigil run`).
    Pause {
        /// The model's name.
        name: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Let a paused release go on.
    Resume {
        /// The model's name.
        name: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Promote the open release one step: from shadow to the canary's first step, from a
    /// step to the next (its share of capital), from the last (100 %) to production.
    Step {
        /// The model's name.
        name: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// End the open release for good (a new release starts again from nothing). In a
    /// canary the candidate's weight goes to 0 and its positions are unwound by
    /// `[release.canary] unwind`.
    Abort {
        /// The model's name.
        name: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// The model's releases, the open one first.
    Status {
        /// The model's name.
        name: String,
        /// Config (its `[store]` holds the registry).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn refuse(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("vigil model: {e}");
    ExitCode::from(USAGE)
}

/// What a release subcommand does.
#[derive(Clone, Debug)]
enum Do {
    Start(String),
    Act(Action),
    Step,
}

impl Do {
    /// The step's name in the control API (`None`: not one a session takes).
    fn word(&self) -> Option<&'static str> {
        match self {
            // A running session starts the `candidate` (the control API names no version).
            Self::Start(v) if v == vigil_deploy::registry::CANDIDATE => Some("start"),
            Self::Start(_) => None,
            Self::Act(Action::Pause) => Some("pause"),
            Self::Act(Action::Resume) => Some("resume"),
            Self::Act(Action::Abort) => Some("abort"),
            Self::Step => Some("step"),
        }
    }
}

/// `vigil model release …`.
pub(crate) fn run(cmd: ReleaseCmd) -> ExitCode {
    let (name, args, action) = match cmd {
        ReleaseCmd::Status { name, config, json } => {
            return status(&name, config.as_deref(), json);
        }
        ReleaseCmd::Start {
            name,
            version,
            change,
        } => (name, change, Do::Start(version)),
        ReleaseCmd::Pause { name, change } => (name, change, Do::Act(Action::Pause)),
        ReleaseCmd::Resume { name, change } => (name, change, Do::Act(Action::Resume)),
        ReleaseCmd::Step { name, change } => (name, change, Do::Step),
        ReleaseCmd::Abort { name, change } => (name, change, Do::Act(Action::Abort)),
    };
    let who = match who_from(args.who.as_deref()) {
        Ok(w) => w,
        Err(e) => return refuse(&e),
    };
    let actor = match actor(&args, &who) {
        Ok(a) => a,
        Err(e) => return refuse(&e),
    };
    let Some(cfg) = load_config(args.config.as_deref()) else {
        return ExitCode::from(USAGE);
    };
    // A running session that runs this release takes the step itself (recorded in the
    // store, audited in both audits, applied to the candidate at once).
    if let Some(step) = action.word()
        && let Some(code) = through_session(&args, &cfg, &name, step, &who)
    {
        return code;
    }
    let event = match action {
        Do::Start(_) => Event::ModelReleaseStarted,
        Do::Act(_) | Do::Step => Event::ModelReleaseChanged,
    };
    // A step taken here: its analysis counts the sessions after the last one stored.
    let since = match &action {
        Do::Step => match last_session(&cfg, &name) {
            Ok(s) => s,
            Err(e) => return refuse(&e),
        },
        _ => None,
    };
    let steps = cfg.release.canary.steps.clone();
    let result = change(&cfg, &name, event, |reg| match &action {
        Do::Start(version) => release::start(reg, version, &actor),
        Do::Act(a) => release::act(reg, *a, &actor),
        Do::Step => vigil_deploy::canary::step(reg, &steps, since.clone(), &actor),
    });
    match result {
        Ok(w) => {
            println!("vigil model: {name}: {} by {who}", w.audit.detail);
            if matches!(
                crate::control_client::ControlArgs::of_config(args.config.clone()).locate(&cfg),
                Ok(crate::control_client::Located::Running(_))
            ) {
                println!(
                    "vigil model: a session is running: it picks the release up at its next \
                     start (`vigil ctl shutdown`, then `vigil run`)"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => refuse(&e),
    }
}

/// Sends the step to the session running on `cfg`; `None` when there is none, or it runs
/// no release of `name` (the store is then changed directly).
fn through_session(
    args: &ChangeArgs,
    cfg: &vigil_config::VigilConfig,
    name: &str,
    word: &str,
    who: &str,
) -> Option<ExitCode> {
    use crate::control_client::{Answered, ask_running_session};
    let body = serde_json::json!({
        "command": "model_release",
        "model": name,
        "step": word,
        "who": who,
        "reason": args.reason,
    });
    match ask_running_session(args.config.clone(), cfg, &body) {
        Answered::Done(outcome) => {
            println!("vigil model: {name}: {outcome} by {who} (the running session)");
            Some(ExitCode::SUCCESS)
        }
        Answered::Refused(409, _) | Answered::NotRunning => None, // it runs no release of it
        Answered::Refused(status, error) => Some(refuse(&format!(
            "the running session refused (HTTP {status}): {error}"
        ))),
        Answered::Unreachable(why) => {
            eprintln!(
                "vigil model: the running session could not be asked ({why}); changing the store"
            );
            None
        }
    }
}

/// The last exchange session stored for `name`'s open release (`None`: none yet).
fn last_session(cfg: &vigil_config::VigilConfig, name: &str) -> Result<Option<String>, String> {
    with_store(cfg, async |store| {
        let reg = read(store, name).await?;
        let Some(open) = reg.open_release() else {
            return Ok(None);
        };
        let rows = store
            .shadow_sessions(open.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows.last().map(|r| r.session.clone()))
    })
}

fn status(name: &str, config: Option<&Path>, json: bool) -> ExitCode {
    let Some(cfg) = load_config(config) else {
        return ExitCode::from(USAGE);
    };
    let releases = match with_store(&cfg, async |store| {
        store.releases(name).await.map_err(|e| e.to_string())
    }) {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    if json {
        println!("{}", serde_json::json!(releases));
        return ExitCode::SUCCESS;
    }
    if releases.is_empty() {
        println!("{name}: no release");
        return ExitCode::SUCCESS;
    }
    println!(
        "id  candidate            production           stage            state      started (UTC)     by         detail"
    );
    for r in releases.iter().rev() {
        let stage = match r.step {
            0 => r.stage.clone(),
            k => format!(
                "{} {k} ({}%)",
                r.stage,
                vigil_deploy::canary::percent(r.weight)
            ),
        };
        println!(
            "{:<3} {:<20} {:<20} {:<16} {:<10} {} {:<10} {}",
            r.id,
            r.candidate,
            r.production.as_deref().unwrap_or("-"),
            stage,
            r.state.as_str(),
            r.started_at.format("%Y-%m-%d %H:%M"),
            r.started_by,
            r.detail
        );
    }
    ExitCode::SUCCESS
}

/// `vigil model shadow-report` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ShadowReportArgs {
    /// The model's name.
    pub(crate) name: String,
    /// A release by its id (default: the last one).
    #[arg(long)]
    pub(crate) release: Option<i64>,
    /// Config (its `[store]`; its `[release.shadow]` holds the standards).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `vigil model shadow-report`.
pub(crate) fn shadow_report(args: &ShadowReportArgs) -> ExitCode {
    let Some(cfg) = load_config(args.config.as_deref()) else {
        return ExitCode::from(USAGE);
    };
    let calendar = match cfg.calendar.calendar() {
        Ok(c) => c,
        Err(e) => return refuse(&format!("calendar: {e}")),
    };
    let read_all = with_store(&cfg, async |store| {
        let reg = read(store, &args.name).await?;
        let release = match args.release {
            Some(id) => reg.releases.iter().find(|r| r.id == id),
            None => reg.releases.last(),
        }
        .cloned()
        .ok_or_else(|| {
            format!(
                "{}: {}",
                args.name,
                args.release.map_or_else(
                    || "no release (`vigil model release start`)".to_string(),
                    |id| format!("no release {id}")
                )
            )
        })?;
        let rows = store
            .shadow_sessions(release.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok((release, rows))
    });
    let (release, rows) = match read_all {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    let sessions = match shadow::stored(&rows) {
        Ok(s) => s,
        Err(e) => return refuse(&format!("release {}: {e}", release.id)),
    };
    // A date outside the calendar's range is not a session it can vouch for.
    let trading = |d: NaiveDate| matches!(calendar.is_trading_day(d), Ok(true));
    let report = shadow::report(&sessions, trading, &cfg.release.shadow);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"release": release, "report": report, "sessions": sessions.iter().map(|(d, s)| serde_json::json!({"session": d, "figures": s})).collect::<Vec<_>>()})
        );
    } else {
        print_report(&release, &report, &sessions);
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(
    release: &ModelRelease,
    report: &ShadowReport,
    sessions: &[(NaiveDate, ShadowSession)],
) {
    println!(
        "release {} of {} {} beside {} ({}, {}; started {} by {})",
        release.id,
        release.name,
        release.candidate,
        release.production.as_deref().unwrap_or("-"),
        release.stage,
        release.state.as_str(),
        release.started_at.format("%Y-%m-%d %H:%M UTC"),
        release.started_by
    );
    println!(
        "{} bars in {} trading sessions; simulated return: candidate {:+.4}%, production {:+.4}%",
        report.bars,
        report.trading_sessions,
        report.candidate_return * 100.0,
        report.production_return * 100.0
    );
    const SHOWN: usize = 10;
    if !sessions.is_empty() {
        if sessions.len() > SHOWN {
            println!(
                "the last {SHOWN} of {} sessions (--json has every one):",
                sessions.len()
            );
        }
        println!("session      bars     errors  outliers  candidate    production");
        for (d, s) in &sessions[sessions.len().saturating_sub(SHOWN)..] {
            println!(
                "{d}  {:<8} {:<7} {:<9} {:+.4}%    {:+.4}%",
                s.bars,
                s.errors,
                s.outliers,
                s.candidate_return * 100.0,
                s.production_return * 100.0
            );
        }
    }
    for s in &report.standards {
        let mark = match s.passed {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "WAIT",
        };
        println!(
            "{mark}  {:<17} {}  (needs {})",
            s.name, s.value, s.threshold
        );
    }
    println!(
        "{}",
        if report.passed {
            "every standard met: the candidate may go on (vigil model promote)"
        } else {
            "not every standard is met yet"
        }
    );
}
