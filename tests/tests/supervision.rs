//! Supervision end to end, in process: panics injected into running agents are caught, the
//! agents restart and the session keeps trading; a crash loop trips the breaker.

use std::sync::Arc;

use vigil_core::{AgentId, SimClock, Timestamp};
use vigil_session::{Action, Command, SessionOptions, run_with};
use vigil_tests::{config_for, read_log, repo_data};

/// Drives a paced session on a simulated wall clock: each second of wall time lets one
/// hourly bar through; backoffs pass as the clock moves.
#[test]
fn injected_panics_restart_the_agent_and_a_crash_loop_trips_the_breaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("EURUSD_1h.csv"), "EURUSD", dir.path());
    cfg.data.speed = vigil_config::Speed::Factor(3600.0);
    cfg.control.fault_injection = true;
    cfg.monitor.supervision.max_restarts = 2;
    cfg.monitor.supervision.within_s = 600;
    let wall = SimClock::starting_at(Timestamp::from_timestamp(1_800_000_000, 0).expect("ts"));
    let opts = SessionOptions {
        supervision_clock: Arc::new(wall.clone()),
        ..SessionOptions::new(cfg)
    };
    let outcome = run_with(opts, move |ctl| async move {
        let step = |n: usize| vigil_tests::step_wall(&wall, n);
        let panic_in = |agent: AgentId, times: u32| {
            Command::new(
                Action::InjectPanic { agent, times },
                "test",
                "exercise supervision",
            )
        };
        step(300).await;
        // One crash each in the signal and execution agents: restarted, trading goes on.
        ctl.command(panic_in(AgentId::Signal, 1))
            .await
            .expect("panic injected");
        step(300).await;
        ctl.command(panic_in(AgentId::Execution, 1))
            .await
            .expect("panic injected");
        step(600).await;
        // A crash loop in the risk agent: the third crash within the window escalates.
        ctl.command(panic_in(AgentId::Risk, 3))
            .await
            .expect("panics injected");
        step(400).await;
        wall.advance_by(chrono::Duration::days(3650));
    })
    .expect("session runs");

    let s = &outcome.summary;
    assert_eq!(s.error, None, "{s:?}");
    assert_eq!(s.bars, 5000, "every bar went through: {s:?}");
    let log = read_log(&outcome.log_dir);
    let at = |name: &str, agent: &str| -> Vec<usize> {
        log.iter()
            .enumerate()
            .filter(|(_, v)| v["event"] == name && v["data"]["agent"] == agent)
            .map(|(i, _)| i)
            .collect()
    };
    let count_between =
        |a: usize, b: usize, name: &str| log[a..b].iter().filter(|v| v["event"] == name).count();

    let crashed = at("agent_crashed", "signal");
    assert_eq!(crashed.len(), 1);
    let line = &log[crashed[0]];
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["data"]["panic"]
            .as_str()
            .is_some_and(|p| p.contains("injected panic in the signal agent")),
        "{line}"
    );
    assert!(
        line["data"]["location"]
            .as_str()
            .is_some_and(|l| l.contains("signal-agent")),
        "{line}"
    );
    let restarted = at("agent_restarted", "signal");
    assert_eq!(restarted.len(), 1);
    assert!(restarted[0] > crashed[0]);
    assert_eq!(at("agent_rebuilt", "signal").len(), 1);
    let exec_crash = at("agent_crashed", "execution")[0];
    assert!(
        count_between(restarted[0], exec_crash, "signal_generated") > 0,
        "signals again after the signal agent's restart"
    );
    let rebuilt = at("agent_rebuilt", "execution");
    assert_eq!(rebuilt.len(), 1, "the execution agent rebuilt its book");
    assert_eq!(log[rebuilt[0]]["data"]["positions_that_differed"], "");

    let risk_crashes = at("agent_crashed", "risk");
    assert_eq!(risk_crashes.len(), 3);
    assert_eq!(log[risk_crashes[2]]["data"]["escalated"], true);
    let exceeded = at("restart_intensity_exceeded", "risk");
    assert_eq!(exceeded.len(), 1);
    assert_eq!(log[exceeded[0]]["level"], "CRITICAL");
    let tripped: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, v)| v["event"] == "breaker_tripped" && v["data"]["actor"] == "supervisor")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(tripped.len(), 1, "the crash loop tripped the breaker");
    assert!(
        count_between(exec_crash, risk_crashes[0], "order_submitted") > 0,
        "orders went out between the crashes: trading went on"
    );
    assert_eq!(
        count_between(tripped[0], log.len(), "order_submitted"),
        0,
        "no order after the breaker tripped"
    );
    assert!(
        log[tripped[0]..]
            .iter()
            .filter(|v| v["event"] == "risk_rejected")
            .any(|v| v["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("halted"))),
        "the restarted risk agent rejects while halted"
    );
    assert_eq!(s.trading_state, vigil_core::TradingState::Halted);

    // The breaker survives a restart: the next process on the same store starts halted
    // and sends nothing.
    let again = tempfile::tempdir().expect("tempdir");
    let mut cfg = config_for(&repo_data("EURUSD_1h.csv"), "EURUSD", again.path());
    cfg.store.path = dir.path().join("state.db");
    let outcome = vigil_session::run(SessionOptions::new(cfg)).expect("second session runs");
    assert_eq!(
        outcome.summary.trading_state,
        vigil_core::TradingState::Halted
    );
    assert_eq!(outcome.summary.orders, 0, "{:?}", outcome.summary);
    let log = read_log(&outcome.log_dir);
    let restored: Vec<&serde_json::Value> = log
        .iter()
        .filter(|v| v["event"] == "trading_state_changed" && v["data"]["actor"] == "restored")
        .collect();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0]["level"], "WARN");
    assert_eq!(restored[0]["data"]["to"], "halted");
    assert!(
        restored[0]["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("set by supervisor") && r.contains("crashed 3 times")),
        "{}",
        restored[0]
    );
}
