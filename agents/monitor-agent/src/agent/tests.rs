//! The Monitor actor end to end: supervision, commands, faults and the session summary.

use std::sync::Arc;

use rust_decimal_macros::dec;
use vigil_core::{Clock, SimClock};
use vigil_log::{LogSink, MemoryLog, Value};
use vigil_testkit::{Recorder, logged, text, timestamp as t, yield_until};

use vigil_core::{AgentId, AgentState};
use vigil_messages::{Action, CommandTarget, Figures, SetPaused, SetTradingState, StopReason};

use super::*;

use crate::test_links::{Sent as Got, links};

struct Harness {
    addr: Addr<MonitorAgent>,
    seen: Recorder<Got>,
    log: MemoryLog,
    wall: SimClock,
    done: oneshot::Receiver<SessionSummary>,
}

fn start(trip_breaker_on_agent_failure: bool) -> Harness {
    start_with(trip_breaker_on_agent_failure, |links| links)
}

/// [`start`], with the stand-in links changed by `wire`.
fn start_with(
    trip_breaker_on_agent_failure: bool,
    wire: impl FnOnce(MonitorLinks) -> MonitorLinks,
) -> Harness {
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let market = SimClock::starting_at(t("2024-01-15T09:30:00Z"));
    let (sink, log) = LogSink::memory();
    let seen = Recorder::new();
    // Stands in for the Signal agent (pause switch) and the Risk agent (trading state).
    let (done_tx, done) = oneshot::channel();
    let agent = MonitorAgent::new(
        MonitorConfig {
            heartbeat_interval_ms: 1_000,
            heartbeat_timeout_ms: 5_000,
            trip_breaker_on_agent_failure,
            ..MonitorConfig::default()
        },
        "test-session".into(),
        Arc::new(wall.clone()),
        Arc::new(market),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        wire(links(&seen, false)),
        done_tx,
    );
    Harness {
        addr: agent.start(),
        seen,
        log,
        wall,
        done,
    }
}

impl Harness {
    /// Moves the supervision clock one interval on and waits until the Monitor has run
    /// its check (it then arms the next one, a full interval later).
    async fn tick(&self) {
        self.wall.advance_by(chrono::Duration::seconds(1));
        let now = self.wall.now();
        yield_until(&format!("the monitor's heartbeat check at {now}"), || {
            self.wall.next_deadline().is_some_and(|d| d > now)
        })
        .await;
    }

    async fn heartbeat(&self, agent: AgentId) {
        self.addr
            .send(Heartbeat {
                agent,
                state: AgentState::Running,
                at: self.wall.now(),
                processed: 0,
                figures: Figures::None,
            })
            .await
            .expect("heartbeat");
    }

    async fn command(&self, cmd: Command) -> Result<String, CommandError> {
        self.addr.send(cmd).await.expect("command delivered")
    }

    async fn fault(&self, agent: AgentId, error: &str, fatal: bool) {
        self.addr
            .send(AgentFault {
                agent,
                error: error.into(),
                fatal,
            })
            .await
            .expect("fault");
    }
}

const PIPELINE: [AgentId; 5] = [
    AgentId::Data,
    AgentId::Regime,
    AgentId::Signal,
    AgentId::Risk,
    AgentId::Execution,
];

#[actix_rt::test]
async fn a_silent_agent_is_reported_missing_once_and_recovered_on_its_next_heartbeat() {
    let h = start(true);
    // Twelve seconds: everyone reports every second, except Regime after second 2.
    for second in 1..=12 {
        h.tick().await;
        for agent in PIPELINE {
            if agent != AgentId::Regime || second <= 2 {
                h.heartbeat(agent).await;
            }
        }
        let missed = logged(&h.log, Event::HeartbeatMissed);
        // Last heard at second 2; silent for more than 5 s from second 8 on.
        assert_eq!(missed.len(), usize::from(second >= 8), "at second {second}");
    }
    let missed = logged(&h.log, Event::HeartbeatMissed);
    assert_eq!(missed.len(), 1, "exactly one line however long the silence");
    assert_eq!(missed[0].level, Level::Critical);
    assert_eq!(text(&missed[0], "agent"), "regime");
    assert_eq!(missed[0].get("silent_ms"), Some(&Value::I64(6_000)));
    assert_eq!(
        missed[0].get("last_heartbeat"),
        Some(&Value::Ts(t("2030-01-01T00:00:02Z")))
    );

    h.heartbeat(AgentId::Regime).await;
    let recovered = logged(&h.log, Event::HeartbeatRecovered);
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].level, Level::Warn);
    assert_eq!(text(&recovered[0], "agent"), "regime");
    assert_eq!(recovered[0].get("silent_ms"), Some(&Value::I64(10_000)));

    // Healthy again: nothing more is logged while it keeps reporting.
    for _ in 0..8 {
        h.tick().await;
        for agent in PIPELINE {
            h.heartbeat(agent).await;
        }
    }
    assert_eq!(logged(&h.log, Event::HeartbeatMissed).len(), 1);
    assert_eq!(logged(&h.log, Event::HeartbeatRecovered).len(), 1);
}

#[actix_rt::test]
async fn an_agent_that_finished_is_not_reported_missing() {
    let h = start(true);
    h.addr
        .send(StageReport::Data {
            bars: 10,
            rejected: 0,
            parse_errors: 0,
            first: None,
            last: None,
            source: "csv:TEST.csv".into(),
        })
        .await
        .expect("report");
    for _ in 0..7 {
        h.tick().await;
        for agent in [
            AgentId::Regime,
            AgentId::Signal,
            AgentId::Risk,
            AgentId::Execution,
        ] {
            h.heartbeat(agent).await;
        }
    }
    assert!(logged(&h.log, Event::HeartbeatMissed).is_empty());
}

#[actix_rt::test]
async fn pause_and_resume_commands_reach_the_signal_agent() {
    let h = start(true);
    h.command(Command::new(
        Action::Pause(CommandTarget::Agent(AgentId::Signal)),
        "ops",
        "news",
    ))
    .await
    .expect("pause");
    h.command(Command::new(
        Action::Resume(CommandTarget::All),
        "ops",
        "calm",
    ))
    .await
    .expect("resume");
    h.seen.wait_for_len(2).await;
    h.seen.with(|got| {
        assert!(
            matches!(&got[0], Got::Paused(SetPaused { paused: true, actor, reason }) if actor == "ops" && reason == "news"),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], Got::Paused(SetPaused { paused: false, reason, .. }) if reason == "calm"),
            "{got:?}"
        );
    });
    let received = logged(&h.log, Event::CommandReceived);
    assert_eq!(received.len(), 2);
    assert_eq!(text(&received[0], "command"), "pause");
    assert_eq!(text(&received[0], "actor"), "ops");
    assert_eq!(text(&received[0], "reason"), "news");
    assert_eq!(text(&received[1], "command"), "resume");
}

#[actix_rt::test]
async fn pausing_an_agent_that_cannot_pause_is_refused() {
    let h = start(true);
    let err = h
        .command(Command::new(
            Action::Pause(CommandTarget::Agent(AgentId::Data)),
            "ops",
            "test",
        ))
        .await
        .expect_err("data cannot pause")
        .to_string();
    assert!(err.contains("cannot be paused"), "{err}");
    assert!(err.contains("data"), "{err}");
    assert_eq!(h.seen.settled_len().await, 0, "nothing was sent");
    // The refused command is still on record.
    assert_eq!(logged(&h.log, Event::CommandReceived).len(), 1);
}

#[actix_rt::test]
async fn breaker_commands_reach_the_risk_agent() {
    let h = start(true);
    h.command(Command::new(Action::TripBreaker, "ops", "runaway losses"))
        .await
        .expect("trip");
    h.command(Command::new(Action::ResetBreaker, "ops", "reviewed"))
        .await
        .expect("reset");
    h.seen.wait_for_len(2).await;
    h.seen.with(|got| {
        assert!(
            matches!(&got[0], Got::Trading(SetTradingState { state: TradingState::Halted, actor, reason }) if actor == "ops" && reason == "runaway losses"),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], Got::Trading(SetTradingState { state: TradingState::Active, .. })),
            "{got:?}"
        );
    });
    let received = logged(&h.log, Event::CommandReceived);
    assert_eq!(text(&received[0], "command"), "breaker_trip");
    assert_eq!(text(&received[1], "command"), "breaker_reset");
}

#[actix_rt::test]
async fn a_fatal_fault_trips_the_breaker() {
    let h = start(true);
    h.fault(AgentId::Data, "GOOG.csv:7: bad row", true).await;
    h.seen.wait_for_len(1).await;
    h.seen.with(|got| {
        assert!(
            matches!(&got[0], Got::Trading(SetTradingState { state: TradingState::Halted, actor, reason })
                if actor == "monitor" && reason == "data agent failed: GOOG.csv:7: bad row"),
            "{got:?}"
        );
    });
    let failed = logged(&h.log, Event::AgentFailed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].level, Level::Critical);
    assert_eq!(text(&failed[0], "agent"), "data");
    assert_eq!(failed[0].get("fatal"), Some(&Value::Bool(true)));
    assert_eq!(text(&failed[0], "error"), "GOOG.csv:7: bad row");
}

/// A Risk agent that has stopped (its address no longer takes messages).
struct StoppedRisk;

impl Actor for StoppedRisk {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<SetTradingState> for StoppedRisk {
    type Result = Result<String, CommandError>;

    fn handle(&mut self, _msg: SetTradingState, _ctx: &mut Self::Context) -> Self::Result {
        Err(CommandError::Unavailable("stopped".into()))
    }
}

/// The Monitor wired to a Risk agent that has stopped holding `held`.
async fn with_stopped_risk(held: TradingState) -> Harness {
    let risk = StoppedRisk.start();
    yield_until("the stand-in risk agent stopped", || !risk.connected()).await;
    start_with(true, move |links| {
        links.halt.hold(held);
        MonitorLinks {
            risk: risk.recipient(),
            ..links
        }
    })
}

/// A bad-data run: the Risk agent halts in band when the stream ends on the failure and
/// stops; the fault (or the Critical alert about it) reaches the Monitor after. The halt
/// it asks for is there already: not a failure, nothing more is paged.
#[actix_rt::test]
async fn a_halt_asked_of_a_risk_agent_that_stopped_halted_is_not_a_failure() {
    let h = with_stopped_risk(TradingState::Halted).await;
    h.fault(AgentId::Data, "GOOG.csv:7: bad row", true).await;
    let failed = logged(&h.log, Event::AgentFailed);
    assert_eq!(
        failed.len(),
        1,
        "only the data agent's own failure: {failed:?}"
    );
    assert_eq!(text(&failed[0], "agent"), "data");
}

/// A Risk agent that stopped with trading active cannot take the halt any more: a real
/// failure, still paged (CRITICAL), saying what is left as it was.
#[actix_rt::test]
async fn a_halt_a_stopped_risk_agent_cannot_take_is_still_critical() {
    let h = with_stopped_risk(TradingState::Active).await;
    h.fault(AgentId::Execution, "journal: disk full", true)
        .await;
    let failed = logged(&h.log, Event::AgentFailed);
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(text(&failed[1], "agent"), "risk");
    assert_eq!(failed[1].level, Level::Critical);
    assert_eq!(
        text(&failed[1], "error"),
        "could not trip the breaker: the risk agent has stopped with trading active: \
         halted is not applied, and the saved state stays active"
    );
}

#[actix_rt::test]
async fn a_non_fatal_fault_or_a_disabled_rule_does_not_trip_the_breaker() {
    let h = start(true);
    h.fault(AgentId::Execution, "venue cancel failed", false)
        .await;
    let failed = logged(&h.log, Event::AgentFailed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].level, Level::Error);
    assert_eq!(h.seen.settled_len().await, 0);

    let h = start(false);
    h.fault(AgentId::Data, "GOOG.csv:7: bad row", true).await;
    assert_eq!(logged(&h.log, Event::AgentFailed)[0].level, Level::Critical);
    assert_eq!(h.seen.settled_len().await, 0, "the rule is off");
}

fn execution_report(reason: StopReason) -> StageReport {
    StageReport::Execution {
        reason,
        orders: 6,
        filled: 4,
        venue_rejects: 1,
        cancelled: 1,
        fills: 5,
        initial_cash: dec!(100000),
        equity: dec!(101234.5),
        cash: dec!(90000),
        commissions: dec!(12.5),
        max_drawdown: dec!(0.031),
        positions: vec![("TEST".into(), dec!(10))],
        decision_latency: None,
    }
}

#[actix_rt::test]
async fn the_stage_reports_fold_into_the_session_summary() {
    let mut h = start(true);
    let first = t("2024-01-15T09:30:00Z");
    let last = t("2024-03-01T16:00:00Z");
    let reports = [
        StageReport::Data {
            bars: 250,
            rejected: 2,
            parse_errors: 5,
            first: Some(first),
            last: Some(last),
            source: "csv:TEST.csv".into(),
        },
        StageReport::Regime { changes: 7 },
        StageReport::Signal {
            signals: 9,
            suppressed: 3,
        },
        StageReport::Risk {
            approved: 6,
            rejected: 3,
            state: TradingState::ReduceOnly,
        },
    ];
    for r in reports {
        h.addr.send(r).await.expect("report");
        assert!(
            h.done.try_recv().is_err(),
            "the session waits for Execution"
        );
    }
    h.addr
        .send(execution_report(StopReason::EndOfData))
        .await
        .expect("report");
    let summary = h.done.try_recv().expect("the summary is sent at once");
    assert_eq!(
        summary,
        SessionSummary {
            name: "test-session".into(),
            source: "csv:TEST.csv".into(),
            stop_reason: "end_of_data".into(),
            error: None,
            first_bar: Some(first),
            last_bar: Some(last),
            bars: 250,
            bars_rejected: 2,
            messages_rejected: 5,
            regime_changes: 7,
            signals: 9,
            signals_suppressed: 3,
            risk_approved: 6,
            risk_rejected: 3,
            orders: 6,
            orders_filled: 4,
            venue_rejects: 1,
            orders_cancelled: 1,
            fills: 5,
            initial_cash: dec!(100000),
            final_equity: dec!(101234.5),
            final_cash: dec!(90000),
            commissions: dec!(12.5),
            max_drawdown: dec!(0.031),
            trading_state: TradingState::ReduceOnly,
            positions: vec![("TEST".into(), dec!(10))],
            decision_latency: None,
        }
    );
    assert_eq!(summary.pnl(), dec!(1234.5));

    let stopped = logged(&h.log, Event::SessionStopped);
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].level, Level::Info);
    assert_eq!(
        stopped[0].timestamp, last,
        "stamped with the last bar's time"
    );
    assert_eq!(text(&stopped[0], "reason"), "end_of_data");
    assert_eq!(stopped[0].get("bars"), Some(&Value::U64(250)));
    assert_eq!(stopped[0].get("pnl"), Some(&Value::Dec(dec!(1234.5))));
    assert_eq!(text(&stopped[0], "trading_state"), "reduce_only");
    assert!(stopped[0].get("error").is_none());

    // The Monitor's work is done: it stops.
    yield_until("the monitor to stop", || !h.addr.connected()).await;
    assert!(!h.addr.connected());
}

#[actix_rt::test]
async fn a_session_ended_by_a_fault_reports_the_first_error() {
    let mut h = start(true);
    h.fault(AgentId::Data, "BAD.csv:4: column 'close'", true)
        .await;
    h.fault(AgentId::Risk, "later error", true).await;
    for r in [
        StageReport::Data {
            bars: 2,
            rejected: 0,
            parse_errors: 0,
            first: None,
            last: None,
            source: "csv:BAD.csv".into(),
        },
        StageReport::Regime { changes: 0 },
        StageReport::Signal {
            signals: 0,
            suppressed: 0,
        },
        StageReport::Risk {
            approved: 0,
            rejected: 0,
            state: TradingState::Halted,
        },
        execution_report(StopReason::Failed("BAD.csv:4: column 'close'".into())),
    ] {
        h.addr.send(r).await.expect("report");
    }
    let summary = h.done.try_recv().expect("summary");
    assert_eq!(summary.stop_reason, "failed");
    assert_eq!(summary.error.as_deref(), Some("BAD.csv:4: column 'close'"));
    assert_eq!(summary.trading_state, TradingState::Halted);
    let stopped = logged(&h.log, Event::SessionStopped);
    assert_eq!(stopped[0].level, Level::Error);
    assert_eq!(text(&stopped[0], "error"), "BAD.csv:4: column 'close'");
}
