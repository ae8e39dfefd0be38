//! The dispatcher: retries, backoff, escalation and the outcome of every attempt, with real
//! HTTP channels and with scripted ones. Backoffs are a few milliseconds; every wait is for an
//! outcome, with a deadline.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil_alert::{
    AlertError, Channel, Channels, Delivery, DeliveryError, DeliveryOutcome, DispatchConfig,
    Dispatcher, Message, MessageKind, NextStep, SlackChannel, WebhookChannel,
};
use vigil_config::{Secret, WebhookConfig, WebhookUrlConfig};

use crate::support::{TestServer, WAIT, closed_port, drawdown};

/// A sink for the dispatcher that forwards outcomes to the test.
fn outcome_sink() -> (
    impl Fn(DeliveryOutcome) + Send + 'static,
    Receiver<DeliveryOutcome>,
) {
    let (tx, rx) = mpsc::channel();
    let sink = move |o: DeliveryOutcome| tx.send(o).expect("the test still listens");
    (sink, rx)
}

/// Waits for the next outcome.
fn next_outcome(rx: &Receiver<DeliveryOutcome>) -> DeliveryOutcome {
    rx.recv_timeout(WAIT).expect("an outcome in time")
}

fn fast() -> DispatchConfig {
    DispatchConfig {
        attempts: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        queue_capacity: 16,
    }
}

fn alert() -> Arc<Message> {
    Arc::new(Message::Alert(Box::new(drawdown())))
}

fn slack(url: String) -> Arc<dyn Channel> {
    Arc::new(
        SlackChannel::new(&WebhookUrlConfig {
            url: Secret::new(url),
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
        })
        .expect("slack"),
    )
}

fn webhook(url: String) -> Arc<dyn Channel> {
    Arc::new(
        WebhookChannel::new(&WebhookConfig {
            url: Secret::new(url),
            headers: Default::default(),
            secret_headers: Default::default(),
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
        })
        .expect("webhook"),
    )
}

fn channels(list: Vec<Arc<dyn Channel>>) -> Channels {
    let mut c = Channels::new();
    for ch in list {
        c.insert(ch);
    }
    c
}

#[test]
fn server_errors_are_retried_with_backoff_then_escalated_to_the_next_channel() {
    let failing = TestServer::start(500);
    let backup = TestServer::start(200);
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(
        channels(vec![
            slack(failing.url("/slack")),
            webhook(backup.url("/hook")),
        ]),
        fast(),
        sink,
    )
    .expect("started");
    let id = d
        .submit(Delivery::new(alert(), ["slack", "webhook"]))
        .expect("queued");

    let steps: Vec<(String, u32, bool, NextStep)> = (0..4)
        .map(|_| {
            let o = next_outcome(&outcomes);
            assert_eq!(o.delivery_id, id);
            assert_eq!(o.kind, MessageKind::Alert);
            assert_eq!(o.alert_id.as_deref(), Some("a-3f9c2b1e"));
            (o.channel.clone(), o.attempt, o.is_ok(), o.next)
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "slack".into(),
                1,
                false,
                NextStep::RetryIn(Duration::from_millis(1))
            ),
            (
                "slack".into(),
                2,
                false,
                NextStep::RetryIn(Duration::from_millis(2))
            ),
            (
                "slack".into(),
                3,
                false,
                NextStep::EscalatedTo("webhook".into())
            ),
            ("webhook".into(), 1, true, NextStep::Delivered),
        ]
    );
    assert_eq!(failing.drain().len(), 3, "three attempts on slack");
    assert_eq!(backup.drain().len(), 1, "one on the webhook");
    d.shutdown(WAIT).expect("nothing pending");
}

#[test]
fn a_client_error_is_not_retried_and_escalates_at_once() {
    let failing = TestServer::start(400);
    let backup = TestServer::start(200);
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(
        channels(vec![
            slack(failing.url("/slack")),
            webhook(backup.url("/hook")),
        ]),
        fast(),
        sink,
    )
    .expect("started");
    d.submit(Delivery::new(alert(), ["slack", "webhook"]))
        .expect("queued");

    let first = next_outcome(&outcomes);
    assert_eq!((first.channel.as_str(), first.attempt), ("slack", 1));
    assert_eq!(first.escalated_to(), Some("webhook"));
    let text = first.error_text().expect("an error");
    assert!(
        text.starts_with("slack: refused (HTTP 400 from http://127.0.0.1:"),
        "{text}"
    );
    let second = next_outcome(&outcomes);
    assert_eq!(second.channel, "webhook");
    assert_eq!(second.next, NextStep::Delivered);
    assert_eq!(failing.drain().len(), 1, "not retried");
    d.shutdown(WAIT).expect("nothing pending");
}

#[test]
fn when_every_channel_fails_the_last_outcome_gives_up() {
    let port = closed_port();
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(
        channels(vec![slack(format!("http://127.0.0.1:{port}/hook"))]),
        DispatchConfig {
            attempts: 2,
            ..fast()
        },
        sink,
    )
    .expect("a channel that is down does not stop construction");
    d.submit(Delivery::new(alert(), ["slack"])).expect("queued");
    let first = next_outcome(&outcomes);
    assert!(matches!(
        first.result,
        Err(DeliveryError::Unreachable { .. })
    ));
    assert_eq!(first.next, NextStep::RetryIn(Duration::from_millis(1)));
    let last = next_outcome(&outcomes);
    assert_eq!(last.attempt, 2);
    assert_eq!(last.next, NextStep::GaveUp);
    d.shutdown(WAIT).expect("nothing pending");
}

/// A channel that answers from a script (then succeeds) and tells the test of every call.
#[derive(Debug)]
struct Scripted {
    name: &'static str,
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    calls: Mutex<Sender<String>>,
    /// When set, each call waits for a word on this before answering.
    gate: Option<Mutex<Receiver<()>>>,
}

impl Scripted {
    fn new(
        name: &'static str,
        script: Vec<Result<(), DeliveryError>>,
    ) -> (Arc<Self>, Receiver<String>) {
        let (tx, rx) = mpsc::channel();
        let ch = Arc::new(Self {
            name,
            script: Mutex::new(script.into()),
            calls: Mutex::new(tx),
            gate: None,
        });
        (ch, rx)
    }
}

fn transient(channel: &str) -> DeliveryError {
    DeliveryError::Refused {
        channel: channel.into(),
        status: "HTTP 503".into(),
        body: "busy".into(),
        transient: true,
    }
}

impl Channel for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let label = match message {
            Message::Test { channel, .. } => channel.clone(),
            other => other.kind().to_string(),
        };
        self.calls
            .lock()
            .expect("calls lock")
            .send(label.clone())
            .expect("the test still listens");
        if label == format!("panic-{}", self.name) {
            panic!("scripted panic");
        }
        if let Some(gate) = &self.gate {
            gate.lock()
                .expect("gate lock")
                .recv_timeout(WAIT)
                .expect("released in time");
        }
        self.script
            .lock()
            .expect("script lock")
            .pop_front()
            .unwrap_or(Ok(()))
    }
}

fn test_message(label: &str) -> Arc<Message> {
    Arc::new(Message::Test {
        channel: label.into(),
        at: chrono::DateTime::UNIX_EPOCH,
    })
}

#[test]
fn a_delivery_waiting_out_its_backoff_does_not_hold_back_the_next() {
    let (ch, calls) = Scripted::new("sms", vec![Err(transient("sms"))]);
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(
        channels(vec![ch]),
        DispatchConfig {
            attempts: 2,
            // Far longer than the test: the first delivery waits while the second goes.
            backoff_base: Duration::from_secs(3600),
            backoff_max: Duration::from_secs(3600),
            queue_capacity: 16,
        },
        sink,
    )
    .expect("started");
    let slow = d
        .submit(Delivery::new(test_message("first"), ["sms"]))
        .expect("queued");
    let o = next_outcome(&outcomes);
    assert_eq!(o.delivery_id, slow);
    assert_eq!(o.next, NextStep::RetryIn(Duration::from_secs(3600)));

    let quick = d
        .submit(Delivery::new(test_message("second"), ["sms"]))
        .expect("queued");
    let o = next_outcome(&outcomes);
    assert_eq!((o.delivery_id, o.next), (quick, NextStep::Delivered));
    assert_eq!(calls.try_iter().collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(d.queued(), 1, "the first is still waiting");

    // Shutdown gives up on it after its deadline and says so.
    match d.shutdown(Duration::from_millis(20)) {
        Err(AlertError::Abandoned { pending, .. }) => assert_eq!(pending, 1),
        other => panic!("expected one abandoned delivery, got {other:?}"),
    }
}

#[test]
fn submit_refuses_rather_than_blocks() {
    let (gate_tx, gate_rx) = mpsc::channel();
    let (calls_tx, calls) = mpsc::channel();
    let blocking = Arc::new(Scripted {
        name: "call",
        script: Mutex::new(VecDeque::new()),
        calls: Mutex::new(calls_tx),
        gate: Some(Mutex::new(gate_rx)),
    });
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(
        channels(vec![blocking]),
        DispatchConfig {
            queue_capacity: 2,
            ..fast()
        },
        sink,
    )
    .expect("started");

    d.submit(Delivery::new(test_message("1"), ["call"]))
        .expect("queued");
    d.submit(Delivery::new(test_message("2"), ["call"]))
        .expect("queued");
    match d.submit(Delivery::new(test_message("3"), ["call"])) {
        Err(AlertError::QueueFull { capacity }) => assert_eq!(capacity, 2),
        other => panic!("expected a full queue, got {other:?}"),
    }
    match d.submit(Delivery::new(test_message("4"), ["call", "pager"])) {
        Err(AlertError::UnknownChannel { name, configured }) => {
            assert_eq!((name.as_str(), configured.as_str()), ("pager", "call"));
        }
        other => panic!("expected an unknown channel, got {other:?}"),
    }
    let empty: [&str; 0] = [];
    assert!(matches!(
        d.submit(Delivery::new(test_message("5"), empty)),
        Err(AlertError::EmptyRoute)
    ));

    // Release both deliveries; the queue has room again.
    assert_eq!(calls.recv_timeout(WAIT).expect("first call"), "1");
    gate_tx.send(()).expect("release");
    assert_eq!(next_outcome(&outcomes).next, NextStep::Delivered);
    assert_eq!(calls.recv_timeout(WAIT).expect("second call"), "2");
    gate_tx.send(()).expect("release");
    assert_eq!(next_outcome(&outcomes).next, NextStep::Delivered);
    assert_eq!(d.queued(), 0);
    d.shutdown(WAIT).expect("nothing pending");
}

#[test]
fn a_channel_that_panics_is_reported_and_escalated() {
    let (bad, _bad_calls) = Scripted::new("teams", vec![]);
    let (good, good_calls) = Scripted::new("email", vec![]);
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(channels(vec![bad, good]), fast(), sink).expect("started");
    d.submit(Delivery::new(
        test_message("panic-teams"),
        ["teams", "email"],
    ))
    .expect("queued");
    let o = next_outcome(&outcomes);
    assert_eq!(o.channel, "teams");
    assert_eq!(
        o.error_text().as_deref(),
        Some("teams: cannot build the message: the channel panicked: scripted panic")
    );
    assert_eq!(o.escalated_to(), Some("email"));
    let o = next_outcome(&outcomes);
    assert_eq!((o.channel.as_str(), o.next), ("email", NextStep::Delivered));
    assert_eq!(
        good_calls.recv_timeout(WAIT).expect("email called"),
        "panic-teams"
    );
    // The panicking channel's thread lives on.
    d.submit(Delivery::new(test_message("after"), ["teams"]))
        .expect("queued");
    assert_eq!(next_outcome(&outcomes).next, NextStep::Delivered);
    d.shutdown(WAIT).expect("nothing pending");
}

#[test]
fn shutdown_waits_for_queued_deliveries() {
    let (ch, calls) = Scripted::new(
        "pagerduty",
        vec![Err(transient("pagerduty")), Err(transient("pagerduty"))],
    );
    let (sink, outcomes) = outcome_sink();
    let d = Dispatcher::start(channels(vec![ch]), fast(), sink).expect("started");
    for i in 0..5 {
        d.submit(Delivery::new(test_message(&format!("m{i}")), ["pagerduty"]))
            .expect("queued");
    }
    d.shutdown(WAIT).expect("all delivered before the deadline");
    let all: Vec<_> = outcomes.try_iter().collect();
    assert_eq!(all.len(), 7, "five deliveries, two retries");
    assert_eq!(
        all.iter().filter(|o| o.next == NextStep::Delivered).count(),
        5
    );
    assert_eq!(calls.try_iter().count(), 7);
}
