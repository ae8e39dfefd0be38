//! The Data agent's tests, through its mailbox.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use vigil_core::{Level, Symbol, SymbolId};
use vigil_log::{LogSink, MemoryLog, Value};
use vigil_messages::{AgentFault, Heartbeat};
use vigil_providers::{CsvReplayProvider, CsvSource, ProviderError, ProviderHealth};
use vigil_testkit::{Recorder, logged, record_enum, settle, text, timestamp as t, wiring};

use super::*;

record_enum! {
    /// Everything the Data agent sent, in arrival order.
    #[derive(Debug)]
    enum Got {
        Batch(BarBatch),
        End(StopReason),
        Heartbeat(Heartbeat),
        Report(StageReport),
        Fault(AgentFault),
        Quarantine(QuarantineChanged),
        Outage(DataOutage),
        Verify(VerifyData),
    }
    Flow<BarBatch> => Batch, End;
}

/// Asks the agent for its flow-control figures; answered after every message before it.
#[derive(Message)]
#[rtype(result = "(usize, bool)")]
struct Probe;

impl Handler<Probe> for DataAgent {
    type Result = MessageResult<Probe>;
    fn handle(&mut self, _msg: Probe, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult((self.in_flight, self.pulling))
    }
}

/// A provider of a fixed list of events that leaves bar validation to the agent.
struct VecProvider {
    events: VecDeque<MarketDataEvent>,
}

#[async_trait]
impl DataProvider for VecProvider {
    fn name(&self) -> &str {
        "vec"
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn subscribe(&mut self, _symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        let n = max.min(self.events.len());
        out.extend(self.events.drain(..n));
        Ok(!self.events.is_empty())
    }

    fn health(&self) -> ProviderHealth {
        ProviderHealth::default()
    }

    fn validates_bars(&self) -> bool {
        false
    }
}

/// A stream that goes on after a rejected message (as a network feed does): bars, and
/// `Err` for a message its parser rejected.
struct Script {
    name: &'static str,
    items: VecDeque<Result<Bar, ProviderError>>,
}

#[async_trait]
impl DataProvider for Script {
    fn name(&self) -> &str {
        self.name
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn subscribe(&mut self, _symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        while out.len() < max {
            match self.items.front() {
                Some(Ok(bar)) => {
                    out.push(MarketDataEvent::Bar(*bar));
                    self.items.pop_front();
                }
                Some(Err(_)) if !out.is_empty() => break,
                Some(Err(_)) => {
                    if let Some(Err(e)) = self.items.pop_front() {
                        return Err(e);
                    }
                }
                None => break,
            }
        }
        Ok(!self.items.is_empty())
    }

    fn health(&self) -> ProviderHealth {
        ProviderHealth::default()
    }

    fn rejects_messages(&self) -> bool {
        true
    }
}

fn day(d: u32) -> Timestamp {
    t(&format!("2024-01-{d:02}T00:00:00Z"))
}

fn bar(d: u32, close: Decimal) -> Bar {
    Bar {
        symbol: SymbolId(0),
        ts: day(d),
        open: close,
        high: close + dec!(1),
        low: close - dec!(1),
        close,
        volume: Some(dec!(1000)),
    }
}

/// A CSV of `rows` daily bars from 2024-01-01, closes 100, 101, …
fn csv(rows: u32) -> String {
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for i in 0..rows {
        let c = 100 + i;
        text.push_str(&format!(
            "2024-01-{:02},{c},{},{},{c},1000\n",
            i + 1,
            c + 1,
            c - 1
        ));
    }
    text
}

fn csv_provider(name: &str, text: String, batch_size: usize) -> Box<dyn DataProvider> {
    Box::new(CsvReplayProvider::new(
        vec![CsvSource::bytes(SymbolId(0), name, text.into_bytes())],
        batch_size,
    ))
}

struct Harness {
    addr: Addr<DataAgent>,
    seen: Recorder<Got>,
    log: MemoryLog,
    market: SimClock,
    wall: SimClock,
}

fn start(provider: Box<dyn DataProvider>, batch_size: usize, max_in_flight: usize) -> Harness {
    start_paced(provider, batch_size, max_in_flight, Pacing::Max)
}

fn start_paced(
    provider: Box<dyn DataProvider>,
    batch_size: usize,
    max_in_flight: usize,
    pacing: Pacing,
) -> Harness {
    start_with(provider, batch_size, max_in_flight, pacing, |agent, _| {
        agent
    })
}

fn start_with(
    provider: Box<dyn DataProvider>,
    batch_size: usize,
    max_in_flight: usize,
    pacing: Pacing,
    setup: impl FnOnce(DataAgent, &Addr<vigil_testkit::RecordingActor<Got>>) -> DataAgent,
) -> Harness {
    let market = SimClock::starting_at(t("2023-12-31T00:00:00Z"));
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let (sink, log) = LogSink::memory();
    let seen = Recorder::new();
    // Stands in for the Regime agent and the Monitor.
    let collector = seen.start_actor();
    let others = collector.clone();
    let agent = DataAgent::new(
        DataAgentConfig {
            batch_size,
            max_in_flight,
            pacing,
            future_tolerance: chrono::Duration::seconds(60),
        },
        provider,
        SymbolTable::new([Symbol::from("TEST")]),
        Some(market.clone()),
        wiring(Arc::new(market.clone()), Arc::new(wall.clone()), &collector),
        LogBuffer::new(sink, SERVICE, Level::Debug),
        collector.recipient(),
    );
    Harness {
        addr: setup(agent, &others).start(),
        seen,
        log,
        market,
        wall,
    }
}

impl Harness {
    async fn wait_for_end(&self) {
        // The stage report is sent right after the end marker.
        self.seen
            .wait_until("the end marker and the stage report", |got| {
                got.iter().any(|g| matches!(g, Got::End(_)))
                    && got.iter().any(|g| matches!(g, Got::Report(_)))
            })
            .await;
    }
}

fn closes(batch: &BarBatch) -> Vec<Decimal> {
    batch.bars.iter().map(|b| b.close).collect()
}

fn closes_of(batches: &[BarBatch]) -> Vec<Decimal> {
    batches.iter().flat_map(closes).collect()
}

#[actix_rt::test]
async fn csv_bars_reach_downstream_in_batches_of_batch_size_then_end_of_data() {
    let h = start(csv_provider("TEST.csv", csv(7), 3), 3, 4);
    h.wait_for_end().await;

    let batches = h.seen.all::<BarBatch>();
    assert_eq!(
        batches.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        batches.iter().map(|b| b.bars.len()).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(closes(&batches[0]), vec![dec!(100), dec!(101), dec!(102)]);
    assert_eq!(closes(&batches[2]), vec![dec!(106)]);
    assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
    // The end marker travels behind every batch.
    h.seen.with(|got| {
        assert!(matches!(
            got.iter()
                .rfind(|g| matches!(g, Got::Batch(_) | Got::End(_))),
            Some(Got::End(_))
        ));
    });
    match h.seen.all::<StageReport>().as_slice() {
        [
            StageReport::Data {
                bars,
                rejected,
                parse_errors,
                first,
                last,
                source,
            },
        ] => {
            assert_eq!((*bars, *rejected, *parse_errors), (7, 0, 0));
            assert_eq!(*first, Some(day(1)));
            assert_eq!(*last, Some(day(7)));
            assert_eq!(source, "csv:TEST.csv");
        }
        other => panic!("expected one data report, got {other:?}"),
    }
    assert_eq!(h.market.now(), day(7), "market clock at the last bar");
    assert!(h.seen.all::<AgentFault>().is_empty());
    let names = h.log.names();
    for name in [
        "agent_started",
        "data_source_connected",
        "data_source_exhausted",
        "agent_stopped",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let stopped = &logged(&h.log, Event::AgentStopped)[0];
    assert_eq!(text(stopped, "reason"), "end_of_data");
    assert_eq!(stopped.get("bars"), Some(&Value::U64(7)));
}

#[actix_rt::test]
async fn with_one_batch_in_flight_no_second_batch_is_sent_before_batch_done() {
    let h = start(csv_provider("TEST.csv", csv(5), 2), 2, 1);
    h.seen.wait_for::<BarBatch>(1).await;

    // Everything the agent had to do before the probe is done: it is waiting.
    let (in_flight, pulling) = h.addr.send(Probe).await.expect("probe");
    assert_eq!((in_flight, pulling), (1, false));
    settle().await;
    assert_eq!(
        h.seen.all::<BarBatch>().len(),
        1,
        "second batch sent before the ack"
    );

    // Hand the bars back, as the Execution agent does: the buffer is reused.
    let first = h.seen.take_all::<BarBatch>().remove(0);
    let buffer = first.bars.as_ptr();
    h.addr.do_send(BatchDone {
        id: first.id,
        bars: first.bars,
    });
    h.seen.wait_for::<BarBatch>(1).await;
    let second = h.seen.take_all::<BarBatch>().remove(0);
    assert_eq!(second.id, 1);
    assert_eq!(closes(&second), vec![dec!(102), dec!(103)]);
    assert_eq!(
        second.bars.as_ptr(),
        buffer,
        "the handed-back buffer is reused"
    );
    let (in_flight, _) = h.addr.send(Probe).await.expect("probe");
    assert_eq!(in_flight, 1);
    assert!(h.seen.all::<StopReason>().is_empty());

    h.addr.do_send(BatchDone {
        id: second.id,
        bars: second.bars,
    });
    h.seen.wait_for::<BarBatch>(1).await;
    let third = h.seen.take_all::<BarBatch>().remove(0);
    assert_eq!((third.id, closes(&third)), (2, vec![dec!(104)]));
    // The source is exhausted, but the end waits for the last ack too.
    assert!(h.seen.all::<StopReason>().is_empty());
    h.addr.do_send(BatchDone {
        id: third.id,
        bars: third.bars,
    });
    h.wait_for_end().await;
    assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
    assert_eq!(h.market.now(), day(5));
}

#[actix_rt::test]
async fn malformed_csv_row_is_logged_reported_as_fatal_and_ends_the_stream_failed() {
    let data = "timestamp,open,high,low,close,volume\n\
                2024-01-01,100,101,99,100,1000\n\
                2024-01-02,101,102,100,101,1000\n\
                2024-01-03,102,103,101,abc,1000\n\
                2024-01-04,103,104,102,103,1000\n"
        .to_string();
    let h = start(csv_provider("BAD.csv", data, 3), 3, 4);
    h.wait_for_end().await;

    let expected = "BAD.csv:4: column 'close': cannot parse \"abc\" as a decimal";
    // The bars read before the bad row are delivered first.
    let batches = h.seen.all::<BarBatch>();
    assert_eq!(batches.len(), 1);
    assert_eq!(closes(&batches[0]), vec![dec!(100), dec!(101)]);

    let failed = logged(&h.log, Event::DataParseFailed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].level, Level::Error);
    assert_eq!(text(&failed[0], "error"), expected);
    assert_eq!(text(&failed[0], "provider"), "csv:BAD.csv");

    let faults = h.seen.all::<AgentFault>();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].agent, AgentId::Data);
    assert!(faults[0].fatal);
    assert_eq!(faults[0].error, expected);

    assert_eq!(
        h.seen.all::<StopReason>(),
        vec![StopReason::Failed(expected.into())]
    );
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Data {
            bars: 2,
            rejected: 0,
            ..
        }]
    ));
    assert_eq!(h.market.now(), day(2));
    let stopped = &logged(&h.log, Event::AgentStopped)[0];
    assert_eq!(text(stopped, "reason"), "failed");
}

/// Thursday 4 and Friday 5 January 2024 are NYSE sessions with no bar: one gap, logged
/// at ERROR with the missing sessions; every bar that did come is forwarded as it is.
#[actix_rt::test]
async fn sessions_with_no_bar_are_a_logged_gap_and_nothing_is_invented() {
    let provider = VecProvider {
        events: [bar(2, dec!(100)), bar(3, dec!(101)), bar(8, dec!(102))]
            .into_iter()
            .map(MarketDataEvent::Bar)
            .collect(),
    };
    let h = start_with(Box::new(provider), 10, 4, Pacing::Max, |agent, _| {
        agent.with_gap_watch(GapWatch::new(
            vigil_calendar::Calendar::xnys(),
            vec![true],
            None,
        ))
    });
    h.wait_for_end().await;

    let batches = h.seen.all::<BarBatch>();
    assert_eq!(closes(&batches[0]), vec![dec!(100), dec!(101), dec!(102)]);
    let gaps = logged(&h.log, Event::DataGap);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].level, Level::Error);
    assert_eq!(
        gaps[0].timestamp,
        day(8),
        "stamped with the bar after the gap"
    );
    assert_eq!(text(&gaps[0], "symbol"), "TEST");
    assert_eq!(text(&gaps[0], "after"), "2024-01-03");
    assert_eq!(text(&gaps[0], "before"), "2024-01-08");
    assert_eq!(gaps[0].get("missing"), Some(&Value::U64(2)));
    assert_eq!(text(&gaps[0], "sessions"), "2024-01-04,2024-01-05");
    assert!(
        h.seen.all::<AgentFault>().is_empty(),
        "a gap is not a fault"
    );
}

/// A close 60 % above the last is a bad tick: the symbol goes into quarantine, Risk hears
/// it, the bar and the next ones are withheld until three calm bars in a row lift it.
#[actix_rt::test]
async fn a_price_spike_quarantines_its_symbol_until_calm_bars_release_it() {
    let closes = [100, 101, 160, 101, 102, 103, 104];
    let provider = VecProvider {
        events: closes
            .iter()
            .enumerate()
            .map(|(i, c)| MarketDataEvent::Bar(bar(i as u32 + 1, Decimal::from(*c))))
            .collect(),
    };
    let bounds = crate::AnomalyBounds {
        max_jump: Some(dec!(0.25)),
        k_sigma: None,
        min_sigma: 0.0,
        window: 20,
        release_after: 3,
    };
    let h = start_with(Box::new(provider), 10, 4, Pacing::Max, |agent, risk| {
        agent.with_anomaly_watch(
            crate::AnomalyWatch::new(bounds, 1),
            risk.clone().recipient(),
        )
    });
    h.wait_for_end().await;

    // 160 (the spike), then 101 (back: another jump) and 102, 103 (calm 1, 2) are
    // withheld; 104 is the third calm bar and goes on.
    let batches = h.seen.all::<BarBatch>();
    assert_eq!(
        closes_of(&batches),
        vec![dec!(100), dec!(101), dec!(104)],
        "the quarantined bars never reach the models"
    );
    let told: Vec<(bool, String)> = h
        .seen
        .all::<QuarantineChanged>()
        .into_iter()
        .map(|q| (q.on, q.reason))
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[0].0 && told[0].1.contains("moved +58.42%"), "{told:?}");
    assert_eq!(told[1], (false, "3 bars in a row within the bounds".into()));
    let on = logged(&h.log, Event::SymbolQuarantined);
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].level, Level::Error);
    assert_eq!(on[0].timestamp, day(3));
    assert_eq!(text(&on[0], "symbol"), "TEST");
    assert_eq!(text(&on[0], "actor"), "anomaly_rule");
    let off = logged(&h.log, Event::SymbolReleased);
    assert_eq!(off.len(), 1);
    assert_eq!(off[0].timestamp, day(7));
    assert!(
        h.seen.all::<AgentFault>().is_empty(),
        "a quarantine is not a fault"
    );
}

#[actix_rt::test]
async fn an_operator_quarantines_and_releases_a_symbol_and_an_unknown_one_is_refused() {
    let bounds = crate::AnomalyBounds {
        max_jump: Some(dec!(0.25)),
        k_sigma: None,
        min_sigma: 0.0,
        window: 20,
        release_after: 3,
    };
    // Paced on a wall clock nobody moves: the second bar waits, the agent stays up.
    let h = start_with(
        Box::new(VecProvider {
            events: [bar(1, dec!(100)), bar(5, dec!(100))]
                .into_iter()
                .map(MarketDataEvent::Bar)
                .collect(),
        }),
        1,
        4,
        Pacing::Factor(1.0),
        |agent, risk| {
            agent.with_anomaly_watch(
                crate::AnomalyWatch::new(bounds, 1),
                risk.clone().recipient(),
            )
        },
    );
    let ask = |symbol: &str, on: bool| SetQuarantine {
        symbol: symbol.into(),
        on,
        actor: "ops".into(),
        reason: "exchange halted it".into(),
    };
    let unknown = h.addr.send(ask("AAPL", true)).await.expect("answered");
    assert!(
        matches!(&unknown, Err(CommandError::Invalid(m)) if m.contains("unknown symbol \"AAPL\"; symbols: TEST")),
        "{unknown:?}"
    );
    let on = h.addr.send(ask("TEST", true)).await.expect("answered");
    assert!(
        on.as_ref().is_ok_and(|m| m.contains("TEST in quarantine")),
        "{on:?}"
    );
    let again = h.addr.send(ask("TEST", true)).await.expect("answered");
    assert_eq!(again, Ok("TEST in quarantine already".to_string()));
    let off = h.addr.send(ask("TEST", false)).await.expect("answered");
    assert!(
        off.as_ref().is_ok_and(|m| m.contains("released")),
        "{off:?}"
    );
    let told: Vec<bool> = h
        .seen
        .all::<QuarantineChanged>()
        .into_iter()
        .map(|q| q.on)
        .collect();
    assert_eq!(told, vec![true, false], "Risk told once each way");
    let logged_on = logged(&h.log, Event::SymbolQuarantined);
    assert_eq!(logged_on.len(), 1);
    assert_eq!(text(&logged_on[0], "actor"), "ops");
    assert_eq!(logged(&h.log, Event::SymbolReleased).len(), 1);
}

fn broken(name: &str) -> Result<Bar, ProviderError> {
    Err(ProviderError::Stream {
        provider: name.into(),
        reason: "connection reset".into(),
    })
}

/// The primary's stream breaks: the backup takes over (`data_source_switched`), the
/// bars the primary already delivered are skipped, the new ones flow. When the backup
/// breaks too before any good bar came after the switch back, every source has failed:
/// the agent fails (fatal).
#[actix_rt::test]
async fn a_failing_source_switches_to_the_backup_and_every_source_failing_is_fatal() {
    let primary = Script {
        name: "primary",
        items: [
            Ok(bar(1, dec!(100))),
            Ok(bar(2, dec!(101))),
            broken("primary"),
            broken("primary"),
        ]
        .into_iter()
        .collect(),
    };
    let backup = Script {
        name: "backup",
        items: [
            Ok(bar(1, dec!(100))),
            Ok(bar(2, dec!(101))),
            Ok(bar(3, dec!(102))),
            Ok(bar(4, dec!(103))),
            broken("backup"),
        ]
        .into_iter()
        .collect(),
    };
    let h = start_with(Box::new(primary), 10, 4, Pacing::Max, |agent, _| {
        agent.with_backups(vec![Box::new(backup)])
    });
    h.wait_for_end().await;

    let batches = h.seen.all::<BarBatch>();
    assert_eq!(
        closes_of(&batches),
        vec![dec!(100), dec!(101), dec!(102), dec!(103)],
        "nothing twice, nothing lost"
    );
    assert!(
        logged(&h.log, Event::BarRejected).is_empty(),
        "the bars seen already are skipped, not rejected"
    );
    let switched = logged(&h.log, Event::DataSourceSwitched);
    let hops: Vec<(String, String)> = switched
        .iter()
        .map(|e| (text(e, "from"), text(e, "to")))
        .collect();
    assert_eq!(
        hops,
        vec![
            ("primary".to_string(), "backup".to_string()),
            ("backup".to_string(), "primary".to_string())
        ]
    );
    assert_eq!(switched[0].level, Level::Error);
    assert_eq!(text(&switched[0], "actor"), "failover");
    assert!(text(&switched[0], "reason").contains("connection reset"));
    // Back on the primary, it breaks again before a good bar: both failed.
    let failed = logged(&h.log, Event::DataSourceFailed);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        text(&failed[0], "error").contains("every data source failed (2 configured)"),
        "{failed:?}"
    );
    assert!(matches!(
        h.seen.all::<AgentFault>().as_slice(),
        [AgentFault { fatal: true, .. }]
    ));
}

fn outage_links(to: &Addr<vigil_testkit::RecordingActor<Got>>) -> OutageLinks {
    OutageLinks {
        risk: to.clone().recipient(),
        execution: to.clone().recipient(),
        reconnect_initial: Duration::from_millis(1000),
        reconnect_max: Duration::from_millis(2500),
        operator_resumes: false,
    }
}

/// With outage handling, a lone source that breaks halts trading (through Risk) instead
/// of failing the agent; it is tried again with doubling backoff on the wall clock, and
/// its first good bar asks the Execution agent to verify before the bar goes on.
#[actix_rt::test]
async fn a_lone_source_that_breaks_halts_trading_reconnects_with_backoff_and_asks_to_verify() {
    let feed = Script {
        name: "feed",
        items: [
            Ok(bar(1, dec!(100))),
            Ok(bar(2, dec!(101))),
            broken("feed"),
            broken("feed"),
            Ok(bar(3, dec!(102))),
            Ok(bar(4, dec!(103))),
        ]
        .into_iter()
        .collect(),
    };
    let h = start_with(Box::new(feed), 10, 8, Pacing::Max, |agent, to| {
        agent.with_outage_handling(outage_links(to))
    });
    h.seen
        .wait_until("the outage", |got| {
            got.iter().any(|g| matches!(g, Got::Outage(_)))
        })
        .await;
    settle().await;
    let outage = logged(&h.log, Event::DataOutage);
    assert_eq!(outage.len(), 1);
    assert_eq!(outage[0].level, Level::Critical);
    assert!(text(&outage[0], "error").contains("connection reset"));
    assert_eq!(outage[0].get("retry_in_ms"), Some(&Value::U64(1000)));
    let told = h.seen.all::<DataOutage>();
    assert!(
        told[0]
            .reason
            .contains("no data source is healthy (1 configured)")
    );
    assert!(!told[0].operator_resumes);
    assert!(h.seen.all::<AgentFault>().is_empty(), "not fatal");
    assert!(h.seen.all::<StopReason>().is_empty(), "the stream goes on");
    assert_eq!(
        closes_of(&h.seen.all::<BarBatch>()),
        vec![dec!(100), dec!(101)]
    );

    // Nothing is tried before the backoff has passed on the wall clock.
    h.wall.advance_by(chrono::Duration::milliseconds(999));
    settle().await;
    assert!(logged(&h.log, Event::DataSourceFailed).is_empty());
    // The first attempt breaks again: a WARN line, and the wait doubles.
    h.wall.advance_by(chrono::Duration::milliseconds(1));
    vigil_testkit::yield_until("DataSourceFailed x1", || {
        !logged(&h.log, Event::DataSourceFailed).is_empty()
    })
    .await;
    let failed = logged(&h.log, Event::DataSourceFailed);
    assert_eq!(failed[0].level, Level::Warn);
    assert_eq!(failed[0].get("attempt"), Some(&Value::U64(1)));
    assert_eq!(failed[0].get("retry_in_ms"), Some(&Value::U64(2000)));
    assert!(h.seen.all::<VerifyData>().is_empty());

    // The second attempt brings good bars: verification is asked before they go on.
    h.wall.advance_by(chrono::Duration::milliseconds(2000));
    h.wait_for_end().await;
    h.seen.with(|got| {
        let verify = got.iter().position(|g| matches!(g, Got::Verify(_)));
        let bar3 = got
            .iter()
            .position(|g| matches!(g, Got::Batch(b) if b.bars.iter().any(|b| b.ts == day(3))));
        assert!(verify.is_some() && verify < bar3, "{got:?}");
    });
    let verify = &h.seen.all::<VerifyData>()[0];
    assert_eq!(verify.first_bar, day(3));
    assert_eq!(verify.outage_s, 3);
    assert_eq!(verify.missing_bars, 0);
    let recovered = logged(&h.log, Event::DataRecovered);
    assert_eq!(recovered[0].get("attempts"), Some(&Value::U64(1)));
    assert_eq!(
        closes_of(&h.seen.all::<BarBatch>()),
        vec![dec!(100), dec!(101), dec!(102), dec!(103)],
        "nothing lost, nothing twice"
    );
}

/// A source fed by the test, message by message: a read waits for the next one, as a
/// live feed's does.
struct Live {
    name: &'static str,
    rx: tokio::sync::mpsc::UnboundedReceiver<Result<Bar, ProviderError>>,
}

#[async_trait]
impl DataProvider for Live {
    fn name(&self) -> &str {
        self.name
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn subscribe(&mut self, _symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn next_batch(
        &mut self,
        _max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        match self.rx.recv().await {
            Some(Ok(bar)) => {
                out.push(MarketDataEvent::Bar(bar));
                Ok(true)
            }
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    fn health(&self) -> ProviderHealth {
        ProviderHealth::default()
    }

    fn rejects_messages(&self) -> bool {
        true
    }

    fn live(&self) -> bool {
        true
    }
}

fn live(
    name: &'static str,
) -> (
    Box<dyn DataProvider>,
    tokio::sync::mpsc::UnboundedSender<Result<Bar, ProviderError>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Box::new(Live { name, rx }), tx)
}

/// After a failover, the backup runs its stable period and the primary is tried again;
/// the switch waits for the read in flight.
#[actix_rt::test]
async fn after_the_stable_period_on_the_backup_the_primary_is_tried_again() {
    let (primary, p) = live("primary");
    let (backup, b) = live("backup");
    let h = start_with(primary, 10, 8, Pacing::Max, |agent, _| {
        agent
            .with_backups(vec![backup])
            .with_switch_back(Duration::from_secs(10))
    });
    let send = |tx: &tokio::sync::mpsc::UnboundedSender<_>, item| {
        tx.send(item).expect("the agent reads on");
    };
    send(&p, Ok(bar(1, dec!(100))));
    h.seen.wait_for::<BarBatch>(1).await;
    send(&p, broken("primary"));
    vigil_testkit::yield_until("DataSourceSwitched x1", || {
        !logged(&h.log, Event::DataSourceSwitched).is_empty()
    })
    .await;
    send(&b, Ok(bar(1, dec!(100))));
    send(&b, Ok(bar(2, dec!(101))));
    h.seen.wait_for::<BarBatch>(2).await;

    // Not before the period.
    h.wall.advance_by(chrono::Duration::seconds(9));
    settle().await;
    assert_eq!(logged(&h.log, Event::DataSourceSwitched).len(), 1);
    h.wall.advance_by(chrono::Duration::seconds(2));
    settle().await;
    // Due, but the backup's read is in flight: the switch follows its next message.
    send(&b, Ok(bar(3, dec!(102))));
    vigil_testkit::yield_until("DataSourceSwitched x2", || {
        logged(&h.log, Event::DataSourceSwitched).len() >= 2
    })
    .await;
    send(&p, Ok(bar(4, dec!(103))));
    h.seen.wait_for::<BarBatch>(4).await;
    let switched = logged(&h.log, Event::DataSourceSwitched);
    assert_eq!(
        switched
            .iter()
            .map(|e| (text(e, "to"), text(e, "actor")))
            .collect::<Vec<_>>(),
        vec![
            ("backup".to_string(), "failover".to_string()),
            ("primary".to_string(), "switch_back".to_string())
        ]
    );
    assert!(text(&switched[1], "reason").contains("ran 10 s without failing"));
    assert_eq!(
        closes_of(&h.seen.all::<BarBatch>()),
        vec![dec!(100), dec!(101), dec!(102), dec!(103)]
    );
    drop((p, b));
    h.wait_for_end().await;
}

/// Asks the agent when valid data last arrived (wall clock) and where market time is.
#[derive(Message)]
#[rtype(result = "(Option<Timestamp>, Timestamp)")]
struct Freshness;

impl Handler<Freshness> for DataAgent {
    type Result = MessageResult<Freshness>;
    fn handle(&mut self, _msg: Freshness, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult((self.last_update_at, self.market_now()))
    }
}

/// A bar withheld by a quarantine is data all the same: the source is not stale (the
/// staleness rule reads `last_update_at`) and market time moves on with it.
#[actix_rt::test]
async fn a_bar_withheld_by_a_quarantine_still_counts_as_fresh_data() {
    let (feed, tx) = live("feed");
    let bounds = crate::AnomalyBounds {
        max_jump: Some(dec!(0.25)),
        k_sigma: None,
        min_sigma: 0.0,
        window: 20,
        release_after: 0,
    };
    let h = start_with(feed, 10, 8, Pacing::Max, |agent, risk| {
        agent.with_anomaly_watch(
            crate::AnomalyWatch::new(bounds, 1),
            risk.clone().recipient(),
        )
    });
    tx.send(Ok(bar(1, dec!(100)))).expect("the agent reads on");
    h.seen.wait_for::<BarBatch>(1).await;
    let (first, _) = h.addr.send(Freshness).await.expect("freshness");
    assert_eq!(first, Some(h.wall.now()));

    h.addr
        .send(SetQuarantine {
            symbol: "TEST".into(),
            on: true,
            actor: "ops".into(),
            reason: "checking the vendor".into(),
        })
        .await
        .expect("quarantine")
        .expect("known symbol");
    h.wall.advance_by(chrono::Duration::seconds(45));
    tx.send(Ok(bar(2, dec!(101)))).expect("the agent reads on");
    let wall_then = h.wall.now();
    vigil_testkit::yield_until("the withheld bar read", || h.market.now() == day(2)).await;
    let (fresh, market) = h.addr.send(Freshness).await.expect("freshness");
    assert_eq!(fresh, Some(wall_then), "the withheld bar is fresh data");
    assert_eq!(market, day(2), "market time moved on with it");
    assert_eq!(
        h.seen.all::<BarBatch>().len(),
        1,
        "withheld from the models"
    );
}

/// A feed's rejected message is an ERROR line with its text, and the stream goes on; a
/// good bar resets the count, and the limit in a row fails the source.
#[actix_rt::test]
async fn a_feed_s_rejected_messages_are_logged_and_read_past_until_too_many_in_a_row() {
    let bad = |n: u32| {
        Err(ProviderError::Malformed(format!(
            "message rejected: unknown type; raw: {{\"type\":{n}}}"
        )))
    };
    let provider = Script {
        name: "script",
        items: [
            Ok(bar(1, dec!(100))),
            bad(1),
            Ok(bar(2, dec!(101))),
            bad(2),
            bad(3),
            Ok(bar(3, dec!(102))),
        ]
        .into_iter()
        .collect(),
    };
    let h = start_with(Box::new(provider), 10, 4, Pacing::Max, |agent, _| {
        agent.with_rejection_limit(2)
    });
    h.wait_for_end().await;

    let parse = logged(&h.log, Event::DataParseFailed);
    assert_eq!(parse.len(), 3);
    assert!(parse.iter().all(|e| e.level == Level::Error));
    assert!(text(&parse[0], "error").contains(r#"raw: {"type":1}"#));
    assert_eq!(parse[2].get("rejected_in_a_row"), Some(&Value::U64(2)));
    // Two in a row: the source failed (fatal), after the bars before.
    let batches = h.seen.all::<BarBatch>();
    assert_eq!(closes_of(&batches), vec![dec!(100), dec!(101)]);
    let failed = logged(&h.log, Event::DataSourceFailed);
    assert_eq!(failed.len(), 1);
    assert!(text(&failed[0], "error").contains("2 messages in a row rejected"));
    assert!(matches!(
        h.seen.all::<AgentFault>().as_slice(),
        [AgentFault { fatal: true, .. }]
    ));
}

#[actix_rt::test]
async fn bar_going_back_in_time_is_rejected_logged_and_not_forwarded() {
    let mut back = bar(2, dec!(150));
    back.ts = t("2024-01-01T12:00:00Z");
    let provider = VecProvider {
        events: [
            bar(1, dec!(100)),
            bar(2, dec!(101)),
            back,
            bar(3, dec!(102)),
        ]
        .into_iter()
        .map(MarketDataEvent::Bar)
        .collect(),
    };
    let h = start(Box::new(provider), 10, 4);
    h.wait_for_end().await;

    let batches = h.seen.all::<BarBatch>();
    assert_eq!(batches.len(), 1);
    assert_eq!(
        closes(&batches[0]),
        vec![dec!(100), dec!(101), dec!(102)],
        "the backwards bar is not forwarded"
    );
    let rejected = logged(&h.log, Event::BarRejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].level, Level::Error);
    assert_eq!(text(&rejected[0], "symbol"), "TEST");
    assert_eq!(rejected[0].get("bar_time"), Some(&Value::Ts(back.ts)));
    let reason = text(&rejected[0], "reason");
    assert!(
        reason.contains("is not after the previous bar's 2024-01-02T00:00:00+00:00"),
        "{reason}"
    );
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Data {
            bars: 3,
            rejected: 1,
            ..
        }]
    ));
    assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
    assert_eq!(h.market.now(), day(3));
    assert!(
        h.seen.all::<AgentFault>().is_empty(),
        "a rejected bar is not a fault"
    );
}

/// One bar stamped 2099 (the wall clock reads 2030): rejected with an ERROR line, it
/// moves no clock, and the true bars after it are taken.
#[actix_rt::test]
async fn a_bar_from_the_future_is_rejected_and_moves_no_clock() {
    let mut future = bar(2, dec!(101));
    future.ts = t("2099-01-01T00:00:00Z");
    let provider = VecProvider {
        events: [
            bar(1, dec!(100)),
            future,
            bar(2, dec!(102)),
            bar(3, dec!(103)),
        ]
        .into_iter()
        .map(MarketDataEvent::Bar)
        .collect(),
    };
    let h = start(Box::new(provider), 10, 4);
    h.wait_for_end().await;

    assert_eq!(
        closes_of(&h.seen.all::<BarBatch>()),
        vec![dec!(100), dec!(102), dec!(103)]
    );
    let rejected = logged(&h.log, Event::BarRejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].level, Level::Error);
    assert_eq!(rejected[0].get("bar_time"), Some(&Value::Ts(future.ts)));
    assert_eq!(
        text(&rejected[0], "reason"),
        "from the future: timestamp 2099-01-01T00:00:00Z is 25202 days ahead of the clock \
         (2030-01-01T00:00:00Z; tolerance 60s)"
    );
    assert_eq!(h.market.now(), day(3), "the market clock never saw 2099");
    assert!(
        h.log.events().iter().all(|e| e.timestamp < future.ts),
        "no line is stamped in the future"
    );
}

#[actix_rt::test]
async fn impossible_bars_and_unknown_symbols_from_a_provider_that_does_not_validate_are_rejected() {
    let mut impossible = bar(2, dec!(101));
    impossible.high = dec!(90); // below the low
    let mut stranger = bar(3, dec!(50));
    stranger.symbol = SymbolId(5);
    let provider = VecProvider {
        events: [bar(1, dec!(100)), impossible, stranger, bar(3, dec!(102))]
            .into_iter()
            .map(MarketDataEvent::Bar)
            .collect(),
    };
    let h = start(Box::new(provider), 10, 4);
    h.wait_for_end().await;

    assert_eq!(
        closes(&h.seen.all::<BarBatch>()[0]),
        vec![dec!(100), dec!(102)]
    );
    let rejected = logged(&h.log, Event::BarRejected);
    assert_eq!(rejected.len(), 2);
    let reason = text(&rejected[0], "reason");
    assert!(
        reason.starts_with("impossible bar: high 90 is below low"),
        "{reason}"
    );
    assert_eq!(text(&rejected[1], "reason"), "unknown symbol id 5");
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Data {
            bars: 2,
            rejected: 2,
            ..
        }]
    ));
}

#[actix_rt::test]
async fn paced_replay_hands_bars_over_one_at_a_time_as_the_wall_clock_passes_their_offset() {
    let minute = |m: i64| t("2024-01-02T09:30:00Z") + chrono::Duration::minutes(m);
    let provider = VecProvider {
        events: (0..3)
            .map(|m| {
                let mut b = bar(2, Decimal::from(100 + m));
                b.ts = minute(m);
                MarketDataEvent::Bar(b)
            })
            .collect(),
    };
    // Sixty times real time: one market minute is one wall second.
    let h = start_paced(Box::new(provider), 100, 4, Pacing::Factor(60.0));
    h.seen.wait_for::<BarBatch>(1).await;
    assert_eq!(closes(&h.seen.all::<BarBatch>()[0]), vec![dec!(100)]);

    h.wall.advance_by(chrono::Duration::milliseconds(999));
    let (_, pulling) = h.addr.send(Probe).await.expect("probe");
    assert!(pulling, "waiting for the next bar's time");
    settle().await;
    assert_eq!(
        h.seen.all::<BarBatch>().len(),
        1,
        "the second bar is not due yet"
    );
    assert_eq!(h.market.now(), minute(0));

    h.wall.advance_by(chrono::Duration::milliseconds(1));
    h.seen.wait_for::<BarBatch>(2).await;
    let batches = h.seen.all::<BarBatch>();
    assert_eq!(batches[1].bars.len(), 1, "paced batches hold one bar");
    assert_eq!(closes(&batches[1]), vec![dec!(101)]);
    assert_eq!(h.market.now(), minute(1));

    h.wall.advance_by(chrono::Duration::seconds(1));
    h.wait_for_end().await;
    assert_eq!(h.seen.all::<BarBatch>().len(), 3);
    assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::EndOfData]);
    assert_eq!(h.market.now(), minute(2));
}

#[actix_rt::test]
async fn shutdown_during_a_paced_wait_ends_the_stream_without_the_waiting_bar() {
    let provider = VecProvider {
        events: (1..=3)
            .map(|d| MarketDataEvent::Bar(bar(d, Decimal::from(100 + d))))
            .collect(),
    };
    // One market day per wall second.
    let h = start_paced(Box::new(provider), 100, 4, Pacing::Factor(86_400.0));
    h.seen.wait_for::<BarBatch>(1).await;
    let (_, pulling) = h.addr.send(Probe).await.expect("probe");
    assert!(pulling, "waiting for the second bar's time");

    h.addr
        .send(Shutdown {
            reason: StopReason::Interrupted,
        })
        .await
        .expect("shutdown");
    h.wait_for_end().await;
    assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::Interrupted]);

    // The bar that was waiting never goes out, even once its time comes.
    h.wall.advance_by(chrono::Duration::seconds(5));
    settle().await;
    assert_eq!(h.seen.all::<BarBatch>().len(), 1);
    assert_eq!(h.market.now(), day(1));
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Data { bars: 1, .. }]
    ));
}

/// A provider whose source cannot be opened.
struct Unreachable;

#[async_trait]
impl DataProvider for Unreachable {
    fn name(&self) -> &str {
        "feed"
    }

    async fn ping(&mut self) -> Result<(), ProviderError> {
        Err(ProviderError::Connect {
            provider: "feed".into(),
            reason: "connection refused".into(),
        })
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        Err(ProviderError::Connect {
            provider: "feed".into(),
            reason: "connection refused".into(),
        })
    }

    async fn subscribe(&mut self, _symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn next_batch(
        &mut self,
        _max: usize,
        _out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        unreachable!("never connected")
    }

    fn health(&self) -> ProviderHealth {
        ProviderHealth::default()
    }
}

#[actix_rt::test]
async fn a_provider_that_cannot_connect_is_a_fatal_fault_and_ends_the_stream_failed() {
    let h = start(Box::new(Unreachable), 10, 4);
    h.wait_for_end().await;

    let expected = "data provider feed: cannot connect: connection refused";
    let faults = h.seen.all::<AgentFault>();
    assert_eq!(faults.len(), 1);
    assert!(faults[0].fatal);
    assert_eq!(faults[0].error, expected);
    assert_eq!(
        h.seen.all::<StopReason>(),
        vec![StopReason::Failed(expected.into())]
    );
    assert!(h.seen.all::<BarBatch>().is_empty());
    let failed: Vec<LogEvent> = h
        .log
        .events()
        .into_iter()
        .filter(|e| e.level == Level::Error)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(text(&failed[0], "error"), expected);
    assert!(
        !h.log.names().contains(&"data_source_connected"),
        "a failed connection is not logged as a connection: {:?}",
        h.log.names()
    );
}

#[actix_rt::test]
async fn shutdown_ends_the_stream_as_interrupted() {
    let provider = VecProvider {
        events: (1..=6)
            .map(|d| MarketDataEvent::Bar(bar(d, Decimal::from(100 + d))))
            .collect(),
    };
    // One batch in flight: the agent waits for an ack that never comes.
    let h = start(Box::new(provider), 2, 1);
    h.seen.wait_for::<BarBatch>(1).await;
    h.addr
        .send(Shutdown {
            reason: StopReason::Interrupted,
        })
        .await
        .expect("shutdown");
    h.wait_for_end().await;

    assert_eq!(h.seen.all::<BarBatch>().len(), 1);
    assert_eq!(h.seen.all::<StopReason>(), vec![StopReason::Interrupted]);
    assert!(matches!(
        h.seen.all::<StageReport>().as_slice(),
        [StageReport::Data { bars: 2, last: Some(last), .. }] if *last == day(2)
    ));
    assert_eq!(
        h.market.now(),
        day(2),
        "market clock at the last forwarded bar"
    );
    let stopped = &logged(&h.log, Event::AgentStopped)[0];
    assert_eq!(text(stopped, "reason"), "interrupted");
    assert!(h.seen.all::<AgentFault>().is_empty());
}

#[actix_rt::test]
async fn heartbeats_follow_the_supervision_clock() {
    let provider = VecProvider {
        events: (1..=4)
            .map(|d| MarketDataEvent::Bar(bar(d, Decimal::from(100 + d))))
            .collect(),
    };
    let h = start(Box::new(provider), 2, 1);
    h.seen.wait_for::<BarBatch>(1).await;
    let first = h.seen.all::<Heartbeat>();
    assert_eq!(first.len(), 1, "one heartbeat at start");
    assert_eq!(first[0].agent, AgentId::Data);
    assert_eq!(first[0].at, h.wall.now());

    h.wall.advance_by(chrono::Duration::seconds(1));
    h.seen
        .wait_until("a second heartbeat", |got| {
            got.iter()
                .filter(|g| matches!(g, Got::Heartbeat(_)))
                .count()
                >= 2
        })
        .await;
    let hb = h.seen.all::<Heartbeat>().remove(1);
    assert_eq!(hb.at, t("2030-01-01T00:00:01Z"));
    assert_eq!(hb.state, AgentState::Running);
    assert_eq!(hb.processed, 2);
}

/// Asks the agent how many bars it has withheld.
#[derive(Message)]
#[rtype(result = "u64")]
struct Withheld;

impl Handler<Withheld> for DataAgent {
    type Result = u64;
    fn handle(&mut self, _msg: Withheld, _ctx: &mut Context<Self>) -> u64 {
        self.quarantine.withheld()
    }
}

/// A live source the test feeds bar by bar; it never ends.
struct Pushed {
    bars: tokio::sync::mpsc::UnboundedReceiver<Bar>,
}

#[async_trait]
impl DataProvider for Pushed {
    fn name(&self) -> &str {
        "feed:primary"
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn subscribe(&mut self, _symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn next_batch(
        &mut self,
        _max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        match self.bars.recv().await {
            Some(bar) => out.push(MarketDataEvent::Bar(bar)),
            None => std::future::pending::<()>().await,
        }
        Ok(true)
    }

    fn health(&self) -> ProviderHealth {
        ProviderHealth::default()
    }
}

/// The source's close disagrees with the reference's: the symbol goes into quarantine
/// (Risk told, bars withheld) until three agreeing pairs in a row; a reference bar that
/// comes after the source's was forwarded quarantines from then on; an operator releases.
#[actix_rt::test]
async fn a_disagreement_with_the_reference_withholds_the_symbol_and_tells_risk_until_released() {
    let (push, bars) = tokio::sync::mpsc::unbounded_channel();
    let bounds = crate::AnomalyBounds {
        max_jump: Some(dec!(0.5)),
        k_sigma: None,
        min_sigma: 0.0,
        window: 20,
        release_after: 3,
    };
    let h = start_with(
        Box::new(Pushed { bars }),
        1,
        10,
        Pacing::Max,
        |agent, risk| {
            agent
                .with_anomaly_watch(
                    crate::AnomalyWatch::new(bounds, 1),
                    risk.clone().recipient(),
                )
                .with_cross_check(crate::CrossCheck::new("feed:reference", dec!(2), 3, 1))
        },
    );
    let reference = |closes: &[(u32, Decimal)]| ReferenceBars {
        bars: closes.iter().map(|(d, c)| bar(*d, *c)).collect(),
    };
    let forwarded = |n: usize| {
        let seen = h.seen.clone();
        async move {
            seen.wait_until(&format!("{n} batches"), |got| {
                got.iter().filter(|g| matches!(g, Got::Batch(_))).count() >= n
            })
            .await;
        }
    };
    let told = || -> Vec<bool> {
        h.seen
            .all::<QuarantineChanged>()
            .into_iter()
            .map(|q| q.on)
            .collect()
    };

    // The reference first: the source's day 2 is 5 % above it, held on arrival.
    h.addr
        .send(reference(&[(1, dec!(100)), (2, dec!(100))]))
        .await
        .expect("taken");
    push.send(bar(1, dec!(100))).expect("agent reads");
    forwarded(1).await;
    push.send(bar(2, dec!(105))).expect("agent reads");
    h.seen
        .wait_until("Risk told", |got| {
            got.iter().any(|g| matches!(g, Got::Quarantine(_)))
        })
        .await;
    // Days 3 and 4 agree but are held; day 5 is the third agreeing pair and goes on.
    h.addr
        .send(reference(&[(3, dec!(100)), (4, dec!(101)), (5, dec!(100))]))
        .await
        .expect("taken");
    for d in 3..=5 {
        push.send(bar(d, dec!(100))).expect("agent reads");
    }
    forwarded(2).await;
    assert_eq!(told(), vec![true, false]);

    // The source's day 6 is forwarded before the reference has it; the reference's
    // disagrees when it arrives: quarantined from then on (day 7 held).
    push.send(bar(6, dec!(100))).expect("agent reads");
    forwarded(3).await;
    h.addr
        .send(reference(&[(6, dec!(110))]))
        .await
        .expect("taken");
    assert_eq!(told(), vec![true, false, true]);
    push.send(bar(7, dec!(100))).expect("agent reads");
    // Days 2, 3, 4 and 7 withheld (a bounded wait for the agent to read day 7).
    let mut withheld = 0;
    for _ in 0..100_000 {
        withheld = h.addr.send(Withheld).await.expect("answered");
        if withheld >= 4 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(withheld, 4);
    // An operator releases it; day 8 goes on.
    let off = h
        .addr
        .send(SetQuarantine {
            symbol: "TEST".into(),
            on: false,
            actor: "ops".into(),
            reason: "checked at the exchange".into(),
        })
        .await
        .expect("answered");
    assert!(off.is_ok_and(|m| m.contains("released")));
    push.send(bar(8, dec!(100))).expect("agent reads");
    forwarded(4).await;

    let batches = h.seen.all::<BarBatch>();
    let days: Vec<Timestamp> = batches
        .iter()
        .flat_map(|b| b.bars.iter().map(|bar| bar.ts))
        .collect();
    assert_eq!(
        days,
        vec![day(1), day(5), day(6), day(8)],
        "the quarantined bars never reach the models"
    );
    assert_eq!(told(), vec![true, false, true, false]);
    let on = logged(&h.log, Event::SymbolQuarantined);
    assert_eq!(on.len(), 2);
    assert_eq!(text(&on[0], "actor"), "cross_check");
    assert_eq!(on[0].timestamp, day(2));
    assert_eq!(
        text(&on[0], "reason"),
        "close 105 from feed:primary and 100 from the reference feed:reference are 5% \
         apart (bound 2%)"
    );
    // Found when the reference's day 6 came: stamped at the market's time then.
    assert_eq!(text(&on[1], "actor"), "cross_check");
    assert_eq!(on[1].timestamp, day(6));
    let off = logged(&h.log, Event::SymbolReleased);
    assert_eq!(off.len(), 2);
    assert_eq!(text(&off[0], "actor"), "cross_check");
    assert_eq!(off[0].timestamp, day(5));
    assert_eq!(text(&off[1], "actor"), "ops");
    assert!(h.seen.all::<AgentFault>().is_empty());
}
