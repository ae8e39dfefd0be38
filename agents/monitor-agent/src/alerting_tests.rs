//! The Monitor's alerting with real channels on 127.0.0.1: the post-close digest goes out
//! once per session date, and a channel that fails for good raises `alert_undeliverable`,
//! which reaches a person through another channel.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use vigil_config::{AlertsConfig, MonitorConfig, Secret, WebhookConfig, WebhookUrlConfig};
use vigil_core::{Clock, Level, SimClock};
use vigil_log::{Event, LogBuffer, LogEvent, LogSink, MemoryLog};
use vigil_messages::{SessionSummary, StageReport, StopReason};
use vigil_testkit::{HttpReceiver, Received, logged, timestamp as t};

use crate::{AlertLinks, Logged, MonitorAgent};

const WAIT: Duration = Duration::from_secs(10);

fn slack(url: String) -> WebhookUrlConfig {
    WebhookUrlConfig {
        url: Secret::new(url),
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    }
}

fn start(cfg: AlertsConfig) -> (Addr<MonitorAgent>, MemoryLog) {
    let (addr, log, _, _) = start_closing(cfg);
    (addr, log)
}

fn start_at(cfg: AlertsConfig) -> (Addr<MonitorAgent>, MemoryLog, SimClock) {
    let (addr, log, wall, _) = start_closing(cfg);
    (addr, log, wall)
}

/// As [`start_at`], with the receiver of the session's summary.
fn start_closing(
    cfg: AlertsConfig,
) -> (
    Addr<MonitorAgent>,
    MemoryLog,
    SimClock,
    oneshot::Receiver<SessionSummary>,
) {
    let wall = SimClock::starting_at(t("2030-01-01T00:00:00Z"));
    let market = SimClock::starting_at(t("2024-01-16T15:00:00Z"));
    let (sink, log) = LogSink::memory();
    let (done, summary) = oneshot::channel();
    let nobody = vigil_testkit::Recorder::<crate::test_links::Sent>::new();
    let channels = vigil_alert::Channels::from_config(&cfg.channels).expect("channels");
    let agent = MonitorAgent::new(
        MonitorConfig::default(),
        "test".into(),
        Arc::new(wall.clone()),
        Arc::new(market),
        LogBuffer::new(sink, "monitor_agent", Level::Debug),
        crate::test_links::links(&nobody, false),
        done,
    )
    .with_alerts(AlertLinks {
        config: cfg,
        channels,
        store: None,
        restored: None,
        pending: Vec::new(),
    });
    (agent.start(), log, wall, summary)
}

fn breach(rule: &str) -> Logged {
    Logged(
        LogEvent::new(
            t("2024-01-16T15:00:00Z"),
            "execution_agent",
            Event::ThresholdBreached,
        )
        .level(Level::Warn)
        .with("rule", rule.to_string())
        .with("metric", "daily_pnl")
        .with("label", "")
        .with("value", -1200.0)
        .with("threshold", -1000.0)
        .with("op", "<")
        .with("for_s", 0u64),
    )
}

fn post_close(date: &str) -> Logged {
    Logged(
        LogEvent::new(t("2024-01-16T21:05:00Z"), "data_agent", Event::PhaseChanged)
            .with("phase", "post_close")
            .with("session", date.to_string()),
    )
}

fn next(hook: &HttpReceiver) -> Received {
    hook.next(WAIT).expect("a request within 10 s")
}

#[actix_rt::test]
async fn the_post_close_digest_goes_out_once_per_session_date() {
    let hook = HttpReceiver::start();
    let mut cfg = AlertsConfig::default();
    cfg.channels.slack = Some(slack(hook.url("/slack")));
    cfg.routing.medium = vec!["slack".into()];
    cfg.routing.digest = vec!["slack".into()];
    let (addr, _log) = start(cfg);

    addr.send(breach("pnl_low")).await.expect("sent");
    let alert = next(&hook).json();
    assert!(alert.to_string().contains("pnl_low"), "{alert}");

    addr.send(post_close("2024-01-16")).await.expect("sent");
    let digest = next(&hook).json().to_string();
    assert!(
        digest.contains("Alert summary for 2024-01-16: 1 notice"),
        "{digest}"
    );

    // The same phase again (a reload, a replay): no second digest. The next thing the
    // channel carries is the next alert.
    addr.send(post_close("2024-01-16")).await.expect("sent");
    addr.send(breach("other_rule")).await.expect("sent");
    let after = next(&hook).json().to_string();
    assert!(after.contains("other_rule"), "{after}");
}

#[actix_rt::test]
async fn a_channel_that_fails_for_good_raises_alert_undeliverable_on_another_channel() {
    let hook = HttpReceiver::start();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut cfg = AlertsConfig::default();
    cfg.channels.webhook = Some(WebhookConfig {
        url: Secret::new(format!("http://{dead}/hook/s3cr3t-token")),
        headers: Default::default(),
        secret_headers: Default::default(),
        connect_timeout_ms: 500,
        timeout_ms: 1_000,
    });
    cfg.channels.delivery.attempts = 1;
    cfg.channels.slack = Some(slack(hook.url("/slack")));
    cfg.routing.medium = vec!["webhook".into()];
    cfg.routing.high = vec!["slack".into()];
    cfg.routing.escalation = Vec::new();
    let (addr, log) = start(cfg);

    addr.send(breach("pnl_low")).await.expect("sent");
    // The failure comes back to the Monitor, on this test's thread: wait off it.
    let (hook, page) = actix_rt::task::spawn_blocking(move || {
        let page = next(&hook);
        (hook, page)
    })
    .await
    .expect("wait task");
    drop(hook);
    let page = page.json().to_string();
    assert!(page.contains("alert_undeliverable"), "{page}");
    assert!(page.contains("webhook"), "{page}");
    assert!(
        !page.contains("s3cr3t-token"),
        "the URL's path is a secret: {page}"
    );

    let failed = logged(&log, Event::AlertDeliveryFailed);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        vigil_testkit::text(&failed[0], "next"),
        "gave up: nobody was told"
    );
    assert_eq!(failed[0].level, Level::Error);
    let firing = logged(&log, Event::AlertFiring);
    assert!(
        firing
            .iter()
            .any(|e| vigil_testkit::text(e, "rule") == "alert_undeliverable"),
        "{firing:?}"
    );
}

#[actix_rt::test]
async fn an_agent_fault_alerts_once_per_hold_down_and_again_after_it() {
    let mut cfg = AlertsConfig::default();
    cfg.routing.high = Vec::new();
    let (addr, log, wall) = start_at(cfg);
    let fault = || vigil_messages::AgentFault {
        agent: vigil_core::AgentId::Data,
        error: "venue timeout".into(),
        fatal: false,
    };
    let fired = || {
        logged(&log, Event::AlertFiring)
            .iter()
            .filter(|e| vigil_testkit::text(e, "rule") == "agent_failed")
            .count()
    };
    addr.send(fault()).await.expect("sent");
    addr.send(fault()).await.expect("sent");
    assert_eq!(
        fired(),
        1,
        "a repeat within the hold-down is the same alert"
    );
    // Past keep_firing_for (2 min): the Monitor's next check resolves it.
    let later = wall.now() + chrono::Duration::minutes(3);
    while wall.now() < later {
        wall.advance_by(chrono::Duration::seconds(1));
        let now = wall.now();
        vigil_testkit::yield_until("the monitor's check", || {
            wall.next_deadline().is_some_and(|d| d > now)
        })
        .await;
    }
    assert_eq!(logged(&log, Event::AlertResolved).len(), 1);
    addr.send(fault()).await.expect("sent");
    assert_eq!(fired(), 2, "a fault after the hold-down is told again");
}

/// The notices held for the day's digest go out when the session ends, and the session's
/// `session_stopped` line comes after them: it is the session's last line.
#[actix_rt::test]
async fn the_closing_digest_is_logged_before_the_sessions_last_line() {
    let (addr, log, _, mut summary) = start_closing(AlertsConfig::default());
    // An INFO breach is a Low alert: it waits for the digest.
    let mut low = breach("disk_low");
    low.0 = low.0.level(Level::Info);
    addr.send(low).await.expect("sent");
    for report in [
        StageReport::Data {
            bars: 1,
            rejected: 0,
            parse_errors: 0,
            first: None,
            last: None,
            source: "csv:TEST.csv".into(),
        },
        StageReport::Regime { changes: 0 },
        StageReport::Signal {
            signals: 0,
            suppressed: 0,
        },
        StageReport::Risk {
            approved: 0,
            rejected: 0,
            state: vigil_core::TradingState::Active,
        },
        StageReport::Execution {
            reason: StopReason::Interrupted,
            orders: 0,
            filled: 0,
            venue_rejects: 0,
            cancelled: 0,
            fills: 0,
            initial_cash: rust_decimal::Decimal::ONE_HUNDRED,
            equity: rust_decimal::Decimal::ONE_HUNDRED,
            cash: rust_decimal::Decimal::ONE_HUNDRED,
            commissions: rust_decimal::Decimal::ZERO,
            max_drawdown: rust_decimal::Decimal::ZERO,
            positions: Vec::new(),
            decision_latency: None,
        },
    ] {
        addr.send(report).await.expect("report");
    }
    tokio::time::timeout(WAIT, &mut summary)
        .await
        .expect("the session closes within 10 s")
        .expect("the summary");
    let events: Vec<Event> = log.events().iter().map(|e| e.event).collect();
    let suppressed = events
        .iter()
        .position(|e| *e == Event::AlertSuppressed)
        .expect("the Low alert was held for the digest");
    let digest = events
        .iter()
        .rposition(|e| *e == Event::AlertNotified)
        .expect("the digest went out at the close");
    assert!(suppressed < digest, "{events:?}");
    assert_eq!(events.last(), Some(&Event::SessionStopped), "{events:?}");
}
