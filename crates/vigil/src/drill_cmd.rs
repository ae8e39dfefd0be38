//! `vigil drill <class>`: an incident rehearsed against a running stack (the drills
//! themselves are in `vigil_session::drill`). Prints a PASS / FAIL line per check, with the
//! measured detection and alert-delivery times, and records the run in the store. `vigil drill all` is the monthly drill: every class in
//! turn, scored. Exit codes: 0 every check passed, 1 a check failed, 2 the drill could not
//! run.

use std::path::PathBuf;
use std::process::ExitCode;

use rust_decimal::Decimal;
use vigil_core::Clock as _;
use vigil_session::{
    DrillCheck, DrillClass, DrillError, DrillOptions, VigilConfig, agent_crash, broker_down,
    broker_drift, crash_loop, data_format_change, data_source_down, drill_score, network_loss,
    price_jump, process_frozen, record_drill, stale_data,
};

/// The drills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Drill {
    /// The data feed changes its message format (the weekend incident).
    DataFormatChange,
    /// The data feed drops every connection (the data side of a network loss): detected,
    /// halted or failed over, a person told, then verified and resumed.
    DataSourceDown,
    /// The next bar of the first instrument jumps: quarantined, a person told, no order in
    /// it while held.
    PriceJump,
    /// The feed stays connected and sends nothing, in trading hours by the running vigil's
    /// clock (else skipped): `data_stale` fires, a person told, trading halts, the rule
    /// recovers when bars come again; the drill then resets the breaker.
    StaleData,
    /// One panic in an agent (`--agent`, default signal), through the control API (needs
    /// `[control] fault_injection = true`: a rehearsal stack): caught, told, restarted and
    /// rebuilt, trading goes on.
    AgentCrash,
    /// One panic more than `[monitor.supervision] max_restarts` in an agent (`--agent`,
    /// default risk): the loop detected, the breaker tripped, told, nothing approved after;
    /// the drill then resets the breaker.
    CrashLoop,
    /// The Monitor hangs (`inject_freeze`, fault injection on): the outside heartbeat goes
    /// silent (the drill listens on `[monitor.dead_man] heartbeat_url`, on loopback), the
    /// watchdog sees the hang and halts trading, a person told, the pings come back; the
    /// drill then resets the breaker.
    ProcessFrozen,
    /// The broker answers 503 to every trading call (`[execution] venue = "alpaca"`, a
    /// broker with the fault API: `vigil broker`): orders held, told, then sent once and
    /// the books reconciled when it is back.
    BrokerDown,
    /// Every connection lost at once: the broker down and the feed's connections dropped
    /// (a broker venue and `[data.feed]`): detected, told, the broker's loss seen, then
    /// reconnected, reconciled with the broker and verified before trading resumes.
    NetworkLoss,
    /// A trade at the broker behind vigil's back (`--trade-qty` shares of the first
    /// instrument): found, told, trading restricted until a person resets it.
    BrokerDrift,
    /// The monthly drill: every class in turn (data-source-down, price-jump, stale-data,
    /// agent-crash, crash-loop, process-frozen, with a broker broker-down, broker-drift and
    /// network-loss, then data-format-change, which may leave the breaker tripped), scored
    /// and stored.
    All,
}

impl Drill {
    fn name(self) -> &'static str {
        match self {
            Self::DataFormatChange => "data-format-change",
            Self::DataSourceDown => "data-source-down",
            Self::PriceJump => "price-jump",
            Self::StaleData => "stale-data",
            Self::AgentCrash => "agent-crash",
            Self::CrashLoop => "crash-loop",
            Self::ProcessFrozen => "process-frozen",
            Self::BrokerDown => "broker-down",
            Self::BrokerDrift => "broker-drift",
            Self::NetworkLoss => "network-loss",
            Self::All => "all",
        }
    }
}

/// The classes `vigil drill all` runs, in order: the ones that heal on their own first.
const MONTHLY: [Drill; 10] = [
    Drill::DataSourceDown,
    Drill::PriceJump,
    Drill::StaleData,
    Drill::AgentCrash,
    Drill::CrashLoop,
    Drill::ProcessFrozen,
    Drill::BrokerDown,
    Drill::BrokerDrift,
    Drill::NetworkLoss,
    Drill::DataFormatChange,
];

impl Drill {
    /// The classes this drill runs: itself, or for `all` [`MONTHLY`].
    fn classes(self) -> Vec<Drill> {
        if self == Drill::All {
            MONTHLY.to_vec()
        } else {
            vec![self]
        }
    }

    /// Whether it faults the broker (skipped by `all` on the paper venue).
    fn needs_broker(self) -> bool {
        matches!(
            self,
            Drill::BrokerDown | Drill::BrokerDrift | Drill::NetworkLoss
        )
    }
}

/// `vigil drill` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct DrillArgs {
    /// The drill.
    #[arg(value_enum)]
    drill: Drill,
    /// The running vigil's config (its log folder and `[data.feed]`).
    #[arg(long)]
    config: PathBuf,
    /// The feed's control address (`http://HOST:PORT`); default: the host and port of
    /// `[data.feed] url`.
    #[arg(long)]
    feed_control: Option<String>,
    /// Bars the feed is stepped after the fault (a feed under `--manual`); 0: none.
    #[arg(long, default_value_t = 5)]
    step: u32,
    /// How long each check may take, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// `price-jump`: how far the bar jumps, in percent.
    #[arg(long, default_value = "30")]
    jump_pct: Decimal,
    /// `agent-crash` and `crash-loop`: the agent to crash (data, regime, signal, risk,
    /// execution); default: signal for a crash, risk for a loop.
    #[arg(long)]
    agent: Option<String>,
    /// `broker-drift`: the shares of the trade made behind vigil's back.
    #[arg(long, default_value = "1")]
    trade_qty: Decimal,
}

pub(crate) fn run(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let opts = DrillOptions {
        feed_control: args.feed_control.clone(),
        step: args.step,
        timeout_s: args.timeout_s,
    };
    let name = args.drill.name();
    let cfg = match VigilConfig::load(&args.config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("vigil drill {name}: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let one = |class: Drill| -> Result<Vec<DrillCheck>, DrillError> {
        match class {
            Drill::DataFormatChange => data_format_change(&cfg, &args.config, &opts),
            Drill::DataSourceDown => data_source_down(&cfg, &args.config, &opts),
            Drill::PriceJump => price_jump(&cfg, &args.config, &opts, args.jump_pct),
            Drill::StaleData => stale_data(&cfg, &args.config, &opts),
            Drill::ProcessFrozen => process_frozen(&cfg, &opts),
            Drill::AgentCrash => {
                agent_crash(&cfg, &opts, args.agent.as_deref().unwrap_or("signal"))
            }
            Drill::CrashLoop => crash_loop(&cfg, &opts, args.agent.as_deref().unwrap_or("risk")),
            Drill::BrokerDown => broker_down(&cfg, &args.config, &opts),
            Drill::BrokerDrift => broker_drift(&cfg, &args.config, &opts, args.trade_qty),
            Drill::NetworkLoss => network_loss(&cfg, &args.config, &opts),
            // `classes` expands it: never one class.
            Drill::All => Err(DrillError::NotReady("`all` is a list of drills".into())),
        }
    };
    let clock = vigil_core::SystemClock;
    let started = clock.now();
    let mut classes = Vec::new();
    let mut skipped = Vec::new();
    let broker = cfg.execution.venue == vigil_config::VenueKind::Alpaca;
    for class in args.drill.classes() {
        let class_name = class.name();
        if args.drill == Drill::All && !broker && class.needs_broker() {
            skipped.push((
                class_name,
                "the venue is the in-process paper venue (no broker to fault)".to_string(),
            ));
            continue;
        }
        if args.drill == Drill::All {
            eprintln!("vigil drill all: {class_name} …");
        }
        match one(class) {
            Ok(checks) => classes.push(DrillClass {
                class: class_name,
                checks: Ok(checks),
            }),
            Err(DrillError::NotApplicable(why)) if args.drill == Drill::All => {
                skipped.push((class_name, why));
            }
            // One class alone that cannot run is not a drill run: nothing to record.
            Err(e) if args.drill != Drill::All => {
                eprintln!("vigil drill {name}: {e}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => classes.push(DrillClass {
                class: class_name,
                checks: Err(e.to_string()),
            }),
        }
    }
    let finished = clock.now();
    println!("vigil drill {name}");
    for class in &classes {
        if args.drill == Drill::All {
            println!(
                "{} {}",
                if class.passed() { "PASS" } else { "FAIL" },
                class.class
            );
        }
        match &class.checks {
            Ok(checks) => {
                for c in checks {
                    println!(
                        "  {} {}: {}",
                        if c.passed { "PASS" } else { "FAIL" },
                        c.name,
                        c.detail
                    );
                }
            }
            Err(e) => println!("  FAIL the drill runs: {e}"),
        }
    }
    for (class_name, why) in skipped {
        println!("SKIP {class_name}: {why}");
    }
    let (passed, total, classes_passed, classes_total) = drill_score(&classes);
    let stored = record_drill(&cfg, name, started, finished, &classes);
    if args.drill == Drill::All {
        println!("score: {passed} of {total} checks, {classes_passed} of {classes_total} classes");
    }
    let recorded = match stored {
        Ok(_) => {
            eprintln!("vigil drill {name}: recorded in the store");
            true
        }
        Err(e) => {
            println!("NOT RECORDED: {e}");
            false
        }
    };
    if passed == total && classes_passed == classes_total && recorded {
        println!("result: PASS ({total} checks)");
        Ok(ExitCode::SUCCESS)
    } else if passed == total && classes_passed == classes_total {
        println!("result: FAIL (every check passed, but the run is not recorded)");
        Ok(ExitCode::from(1))
    } else {
        println!("result: FAIL ({} of {total} checks)", total - passed);
        Ok(ExitCode::from(1))
    }
}
