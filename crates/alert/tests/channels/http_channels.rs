//! The webhook-style channels against a recording HTTP server: the exact request each sends,
//! and how each failure is reported.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;
use vigil_alert::{
    AlertStatus, Channel, DeliveryError, Message, PagerDutyChannel, SlackChannel, TeamsChannel,
    TwilioChannel, TwilioMode, WebhookChannel, render,
};
use vigil_config::{PagerDutyConfig, Secret, TwilioConfig, WebhookConfig, WebhookUrlConfig};

use crate::support::{TestServer, closed_port, drawdown};

fn url_config(url: String) -> WebhookUrlConfig {
    WebhookUrlConfig {
        url: Secret::new(url),
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    }
}

fn alert() -> Message {
    Message::Alert(Box::new(drawdown()))
}

fn with_status(status: AlertStatus) -> Message {
    let mut n = drawdown();
    n.status = status;
    Message::Alert(Box::new(n))
}

fn test_message(channel: &str) -> Message {
    Message::Test {
        channel: channel.into(),
        at: Utc
            .with_ymd_and_hms(2024, 1, 15, 19, 32, 15)
            .single()
            .expect("valid time"),
    }
}

fn twilio_config(server: &TestServer) -> TwilioConfig {
    TwilioConfig {
        base_url: server.url(""),
        account_sid: "AC0123456789".into(),
        auth_token: Secret::new("tw-secret-token"),
        from: "+15551230000".into(),
        to: vec!["+15551239999".into(), "+447700900123".into()],
        sms: true,
        call: true,
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    }
}

fn pagerduty_config(server: &TestServer) -> PagerDutyConfig {
    PagerDutyConfig {
        routing_key: Secret::new("R0UT1NG-KEY-123"),
        events_url: server.url("/v2/enqueue"),
        source: "vigil-prod-1".into(),
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    }
}

#[test]
fn slack_posts_blocks_with_the_plain_text_as_fallback() {
    let server = TestServer::start(200);
    let slack =
        SlackChannel::new(&url_config(server.url("/services/T0/B0/XYZ"))).expect("slack channel");
    assert_eq!(slack.name(), "slack");
    slack.deliver(&alert()).expect("delivered");
    let req = server.next();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/services/T0/B0/XYZ");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.json(),
        json!({
            "text": render(&alert()).text,
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": "[CRITICAL] Trading System Alert" } },
                { "type": "section", "text": { "type": "mrkdwn", "text": "*Daily drawdown 10.2% exceeds the 10% control line*" } },
                { "type": "section", "fields": [
                    { "type": "mrkdwn", "text": "*Service*\nrisk_agent" },
                    { "type": "mrkdwn", "text": "*Time*\n2024-01-15 14:32:15 ET" },
                    { "type": "mrkdwn", "text": "*Current drawdown*\n10.2%" },
                    { "type": "mrkdwn", "text": "*Threshold*\n10%" },
                    { "type": "mrkdwn", "text": "*Today's P&amp;L*\n-$10,234" },
                    { "type": "mrkdwn", "text": "*Equity*\n$89,766" },
                ] },
                { "type": "section", "text": { "type": "mrkdwn", "text": "*Actions taken*\n• Circuit breaker tripped; new orders are rejected" } },
                { "type": "section", "text": { "type": "mrkdwn", "text": "*You need to*\nCheck positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`" } },
                { "type": "context", "elements": [
                    { "type": "mrkdwn", "text": "Runbook: docs/runbooks/daily_drawdown.md" },
                    { "type": "mrkdwn", "text": "Dashboard: <http://grafana.local/d/vigil>" },
                    { "type": "mrkdwn", "text": "Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)" },
                ] },
            ],
        })
    );
}

#[test]
fn slack_test_message_names_the_channel() {
    let server = TestServer::start(200);
    let slack = SlackChannel::new(&url_config(server.url("/hook"))).expect("slack channel");
    slack.deliver(&test_message("slack")).expect("delivered");
    assert_eq!(
        server.next().json(),
        json!({
            "text": "[TEST] Trading System Alert test (slack)\nThis is a test message from vigil for the channel \"slack\", sent at 2024-01-15 14:32:15 ET.\nIf you can read it, the channel works. Nothing needs to be done.\n",
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": "[TEST] Trading System Alert test (slack)" } },
                { "type": "section", "text": { "type": "mrkdwn", "text": "This is a test message from vigil for the channel \"slack\", sent at 2024-01-15 14:32:15 ET.\nIf you can read it, the channel works. Nothing needs to be done." } },
            ],
        })
    );
}

#[test]
fn teams_posts_an_adaptive_card() {
    let server = TestServer::start(202);
    let teams =
        TeamsChannel::new(&url_config(server.url("/workflows/abc"))).expect("teams channel");
    assert_eq!(teams.name(), "teams");
    teams.deliver(&alert()).expect("delivered");
    let req = server.next();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/workflows/abc");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.json(),
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": "[CRITICAL] Trading System Alert", "weight": "Bolder", "size": "Large", "color": "Attention", "wrap": true },
                        { "type": "TextBlock", "text": "Daily drawdown 10.2% exceeds the 10% control line", "weight": "Bolder", "wrap": true },
                        { "type": "FactSet", "facts": [
                            { "title": "Time", "value": "2024-01-15 14:32:15 ET" },
                            { "title": "Service", "value": "risk_agent" },
                            { "title": "Current drawdown", "value": "10.2%" },
                            { "title": "Threshold", "value": "10%" },
                            { "title": "Today's P&L", "value": "-$10,234" },
                            { "title": "Equity", "value": "$89,766" },
                        ] },
                        { "type": "TextBlock", "text": "Actions taken", "weight": "Bolder", "wrap": true },
                        { "type": "TextBlock", "text": "- Circuit breaker tripped; new orders are rejected", "wrap": true },
                        { "type": "TextBlock", "text": "You need to", "weight": "Bolder", "wrap": true },
                        { "type": "TextBlock", "text": "Check positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`", "wrap": true },
                        { "type": "TextBlock", "text": "Runbook: docs/runbooks/daily_drawdown.md\n\nAlert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)", "isSubtle": true, "size": "Small", "wrap": true },
                    ],
                    "actions": [
                        { "type": "Action.OpenUrl", "title": "Dashboard", "url": "http://grafana.local/d/vigil" },
                    ],
                },
            }],
        })
    );
}

#[test]
fn twilio_sms_posts_a_form_per_number_with_basic_auth() {
    let server = TestServer::start(201);
    let sms = TwilioChannel::new(&twilio_config(&server), TwilioMode::Sms).expect("sms channel");
    assert_eq!(sms.name(), "sms");
    sms.deliver(&alert()).expect("delivered");
    // "AC0123456789:tw-secret-token" in base64.
    let auth = "Basic QUMwMTIzNDU2Nzg5OnR3LXNlY3JldC10b2tlbg==";
    for to in ["+15551239999", "+447700900123"] {
        let req = server.next();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/2010-04-01/Accounts/AC0123456789/Messages.json");
        assert_eq!(req.header("authorization"), Some(auth));
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let form = req.form();
        let fields: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("To", to),
                ("From", "+15551230000"),
                (
                    "Body",
                    "[CRITICAL] risk_agent: Daily drawdown 10.2% exceeds the 10% control line. Alert a-3f9c2b1e"
                ),
            ]
        );
    }
    assert!(server.drain().is_empty());
}

#[test]
fn twilio_call_posts_twiml_that_says_the_alert() {
    let server = TestServer::start(201);
    let call = TwilioChannel::new(&twilio_config(&server), TwilioMode::Call).expect("call channel");
    assert_eq!(call.name(), "call");
    let mut n = drawdown();
    n.event = "P&L <limit> hit".into();
    call.deliver(&Message::Alert(Box::new(n)))
        .expect("delivered");
    let req = server.next();
    assert_eq!(req.path, "/2010-04-01/Accounts/AC0123456789/Calls.json");
    assert_eq!(
        req.header("authorization"),
        Some("Basic QUMwMTIzNDU2Nzg5OnR3LXNlY3JldC10b2tlbg==")
    );
    let form = req.form();
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        fields,
        [
            ("To", "+15551239999"),
            ("From", "+15551230000"),
            (
                "Twiml",
                "<Response><Say>Vigil trading system alert. Severity critical. Service risk agent. P&amp;L &lt;limit&gt; hit. Alert a-3f9c2b1e.</Say></Response>"
            ),
        ]
    );
    assert_eq!(server.next().form()[0].1, "+447700900123");
}

#[test]
fn twilio_tries_every_number_and_reports_the_first_failure() {
    let server = TestServer::start(201);
    server.reply(
        400,
        r#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#,
    );
    let sms = TwilioChannel::new(&twilio_config(&server), TwilioMode::Sms).expect("sms channel");
    let err = sms
        .deliver(&alert())
        .expect_err("the first number is refused");
    assert_eq!(server.drain().len(), 2, "both numbers were tried");
    match &err {
        DeliveryError::Refused {
            status,
            body,
            transient,
            ..
        } => {
            assert_eq!(
                status,
                &format!("HTTP 400 from http://127.0.0.1:{}", server.port())
            );
            assert!(body.contains("Invalid 'To' Phone Number"), "{body}");
            assert!(!transient);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains("tw-secret-token"), "{text}");
}

#[test]
fn pagerduty_triggers_acknowledges_and_resolves_on_the_fingerprint() {
    let server = TestServer::start(202);
    let pd = PagerDutyChannel::new(&pagerduty_config(&server)).expect("pagerduty channel");
    assert_eq!(pd.name(), "pagerduty");

    pd.deliver(&alert()).expect("trigger accepted");
    let req = server.next();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/v2/enqueue");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.json(),
        json!({
            "routing_key": "R0UT1NG-KEY-123",
            "event_action": "trigger",
            "dedup_key": "9f2c4e7a1b3d5f60718293a4b5c6d7e8",
            "client": "vigil",
            "payload": {
                "summary": "risk_agent: Daily drawdown 10.2% exceeds the 10% control line",
                "source": "vigil-prod-1",
                "severity": "critical",
                "timestamp": "2024-01-15T19:32:15+00:00",
                "component": "risk_agent",
                "class": "daily_drawdown",
                "custom_details": {
                    "Current drawdown": "10.2%",
                    "Threshold": "10%",
                    "Today's P&L": "-$10,234",
                    "Equity": "$89,766",
                    "alert_id": "a-3f9c2b1e",
                    "actions_taken": ["Circuit breaker tripped; new orders are rejected"],
                    "you_need_to": "Check positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`",
                    "runbook": "docs/runbooks/daily_drawdown.md",
                    "occurred_at_et": "2024-01-15 14:32:15 ET",
                    "repeats": 0,
                    "labels": { "rule": "daily_drawdown", "service": "risk_agent" },
                },
            },
            "links": [{ "href": "http://grafana.local/d/vigil", "text": "Dashboard" }],
        })
    );

    for (status, action) in [
        (AlertStatus::Acknowledged, "acknowledge"),
        (AlertStatus::Resolved, "resolve"),
    ] {
        pd.deliver(&with_status(status)).expect("accepted");
        assert_eq!(
            server.next().json(),
            json!({
                "routing_key": "R0UT1NG-KEY-123",
                "event_action": action,
                "dedup_key": "9f2c4e7a1b3d5f60718293a4b5c6d7e8",
            })
        );
    }
}

#[test]
fn pagerduty_maps_each_severity() {
    use vigil_alert::{Severity, pagerduty_severity};
    assert_eq!(pagerduty_severity(Severity::Critical), "critical");
    assert_eq!(pagerduty_severity(Severity::High), "error");
    assert_eq!(pagerduty_severity(Severity::Medium), "warning");
    assert_eq!(pagerduty_severity(Severity::Low), "info");
}

#[test]
fn pagerduty_refuses_a_digest_without_sending_it() {
    let server = TestServer::start(202);
    let pd = PagerDutyChannel::new(&pagerduty_config(&server)).expect("pagerduty channel");
    let digest = Message::Digest {
        title: "Daily alert digest".into(),
        date: NaiveDate::from_ymd_opt(2024, 1, 15).expect("date"),
        items: vec![drawdown()],
    };
    let err = pd.deliver(&digest).expect_err("a digest is not an event");
    assert!(matches!(err, DeliveryError::Build { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(server.drain().is_empty());
}

#[test]
fn webhook_posts_the_envelope_with_its_headers() {
    let server = TestServer::start(204);
    let cfg = WebhookConfig {
        url: Secret::new(server.url("/vigil?token=abc123")),
        headers: BTreeMap::from([("X-Team".into(), "trading".into())]),
        secret_headers: BTreeMap::from([("Authorization".into(), Secret::new("Bearer s3cr3t"))]),
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    };
    let hook = WebhookChannel::new(&cfg).expect("webhook channel");
    assert_eq!(hook.name(), "webhook");
    let debug = format!("{hook:?}");
    assert!(
        !debug.contains("s3cr3t") && !debug.contains("abc123"),
        "{debug}"
    );

    hook.deliver(&alert()).expect("delivered");
    let req = server.next();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/vigil?token=abc123");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-team"), Some("trading"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cr3t"));
    assert_eq!(
        req.json(),
        json!({
            "kind": "alert",
            "subject": "[CRITICAL] Trading System Alert",
            "text": render(&alert()).text,
            "alert": {
                "alert_id": "a-3f9c2b1e",
                "fingerprint": "9f2c4e7a1b3d5f60718293a4b5c6d7e8",
                "severity": "critical",
                "status": "firing",
                "rule": "daily_drawdown",
                "service": "risk_agent",
                "event": "Daily drawdown 10.2% exceeds the 10% control line",
                "occurred_at": "2024-01-15T19:32:15Z",
                "details": [
                    ["Current drawdown", "10.2%"],
                    ["Threshold", "10%"],
                    ["Today's P&L", "-$10,234"],
                    ["Equity", "$89,766"],
                ],
                "actions_taken": ["Circuit breaker tripped; new orders are rejected"],
                "you_need_to": "Check positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`",
                "runbook": "docs/runbooks/daily_drawdown.md",
                "dashboard": "http://grafana.local/d/vigil",
                "repeats": 0,
                "labels": { "rule": "daily_drawdown", "service": "risk_agent" },
            },
        })
    );

    let date = NaiveDate::from_ymd_opt(2024, 1, 15).expect("date");
    hook.deliver(&Message::Digest {
        title: "Daily alert digest".into(),
        date,
        items: vec![drawdown()],
    })
    .expect("delivered");
    let digest = server.next().json();
    assert_eq!(digest["kind"], "digest");
    assert_eq!(
        digest["subject"],
        "Daily alert digest: 2024-01-15 (1 alert)"
    );
    assert_eq!(digest["digest"]["title"], "Daily alert digest");
    assert_eq!(digest["digest"]["date"], "2024-01-15");
    assert_eq!(digest["digest"]["items"][0]["alert_id"], "a-3f9c2b1e");

    hook.deliver(&test_message("webhook")).expect("delivered");
    let test = server.next().json();
    assert_eq!(test["kind"], "test");
    assert_eq!(
        test["test"],
        json!({ "channel": "webhook", "at": "2024-01-15T19:32:15Z" })
    );
}

#[test]
fn server_errors_and_429_are_transient_other_4xx_are_not() {
    let server = TestServer::start(200);
    let secret_path = "/services/T0/B0/SECRETPART";
    let slack = SlackChannel::new(&url_config(server.url(secret_path))).expect("slack channel");
    for (status, transient) in [
        (500, true),
        (503, true),
        (429, true),
        (400, false),
        (404, false),
    ] {
        server.reply(status, "no_service");
        let err = slack.deliver(&alert()).expect_err("refused");
        match &err {
            DeliveryError::Refused {
                channel,
                status: s,
                body,
                transient: t,
            } => {
                assert_eq!(channel, "slack");
                assert_eq!(
                    s,
                    &format!("HTTP {status} from http://127.0.0.1:{}", server.port())
                );
                assert_eq!(body, "no_service");
                assert_eq!(*t, transient, "HTTP {status}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(err.is_transient(), transient);
        assert!(!err.to_string().contains("SECRETPART"), "{err}");
        server.next();
    }
}

#[test]
fn a_refused_connection_is_unreachable_and_names_only_the_host() {
    let port = closed_port();
    let slack = SlackChannel::new(&url_config(format!(
        "http://127.0.0.1:{port}/services/SECRETPART"
    )))
    .expect("built without connecting");
    let err = slack.deliver(&alert()).expect_err("nobody listens");
    match &err {
        DeliveryError::Unreachable {
            channel, target, ..
        } => {
            assert_eq!(channel, "slack");
            assert_eq!(target, &format!("http://127.0.0.1:{port}"));
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(!text.contains("SECRETPART"), "{text}");
    assert!(
        text.starts_with(&format!("slack: cannot reach http://127.0.0.1:{port}: ")),
        "{text}"
    );
}
