//! Email through a real SMTP server (aiosmtpd) on 127.0.0.1. Each test prints `SKIPPED: …`
//! and passes when python3-aiosmtpd is not installed.

use chrono::NaiveDate;
use vigil_alert::{Channel, DeliveryError, EmailChannel, Message, render};
use vigil_config::{EmailConfig, SmtpTls};

use crate::support::{SmtpServer, closed_port, drawdown};

fn config(port: u16, to: &[&str]) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Vigil <alerts@vigil.test>".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        connect_timeout_ms: 2_000,
        timeout_ms: 5_000,
    }
}

#[test]
fn sends_an_alert_as_one_plain_text_email() {
    let Some(server) = SmtpServer::start("sends_an_alert_as_one_plain_text_email") else {
        return;
    };
    let email = EmailChannel::new(&config(
        server.port,
        &["oncall@vigil.test", "Risk Desk <risk@vigil.test>"],
    ))
    .expect("email channel");
    assert_eq!(email.name(), "email");
    let message = Message::Alert(Box::new(drawdown()));
    email.deliver(&message).expect("accepted by the server");

    let got = server.next_message();
    assert_eq!(got["mail_from"], "alerts@vigil.test");
    assert_eq!(
        got["rcpt_tos"],
        serde_json::json!(["oncall@vigil.test", "risk@vigil.test"])
    );
    assert_eq!(got["from"], "Vigil <alerts@vigil.test>");
    assert_eq!(got["to"], "oncall@vigil.test, Risk Desk <risk@vigil.test>");
    assert_eq!(got["subject"], "[CRITICAL] Trading System Alert");
    assert_eq!(got["content_type"], "text/plain");
    // The transfer encoding may add a final line break.
    let body = got["body"]
        .as_str()
        .expect("a text body")
        .replace("\r\n", "\n");
    assert_eq!(body.trim_end(), render(&message).text.trim_end());
    for line in [
        "Time: 2024-01-15 14:32:15 ET",
        "Service: risk_agent",
        "- Today's P&L: -$10,234",
        "Alert: a-3f9c2b1e (fingerprint 9f2c4e7a1b3d…)",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "no line {line:?} in:\n{body}"
        );
    }
    assert!(server.drain().is_empty(), "one email only");
}

#[test]
fn sends_a_digest_as_one_email() {
    let Some(server) = SmtpServer::start("sends_a_digest_as_one_email") else {
        return;
    };
    let email = EmailChannel::new(&config(server.port, &["oncall@vigil.test"])).expect("email");
    let mut second = drawdown();
    second.alert_id = "a-2".into();
    let digest = Message::Digest {
        title: "Daily alert digest".into(),
        date: NaiveDate::from_ymd_opt(2024, 1, 15).expect("date"),
        items: vec![drawdown(), second],
    };
    email.deliver(&digest).expect("accepted");
    let got = server.next_message();
    assert_eq!(got["subject"], "Daily alert digest: 2024-01-15 (2 alerts)");
    let body = got["body"].as_str().expect("body").replace("\r\n", "\n");
    assert_eq!(body.trim_end(), render(&digest).text.trim_end());
    assert!(server.drain().is_empty(), "one email for the whole digest");
}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[test]
fn sends_a_day_report_with_its_chart_inline() {
    let Some(server) = SmtpServer::start("sends_a_day_report_with_its_chart_inline") else {
        return;
    };
    let email = EmailChannel::new(&config(server.port, &["desk@vigil.test"])).expect("channel");
    let message = Message::Report(Box::new(vigil_alert::Report {
        date: NaiveDate::from_ymd_opt(2024, 1, 16).expect("date"),
        headline: "P&L +1,234.50, 12 fills, max drawdown 0.41%".into(),
        text: "P&L today    +1,234.50\nFills        12 <all>\n".into(),
        images: vec![vigil_alert::Image {
            name: "equity".into(),
            alt: "equity and drawdown".into(),
            png: PNG.to_vec(),
        }],
        files: vec!["/var/lib/vigil/day-2024-01-16.json".into()],
    }));
    email.deliver(&message).expect("accepted by the server");

    let got = server.next_message();
    assert_eq!(
        got["subject"],
        "Day report: 2024-01-16: P&L +1,234.50, 12 fills, max drawdown 0.41%"
    );
    assert_eq!(got["content_type"], "multipart/related");
    let body = got["body"]
        .as_str()
        .expect("a text part")
        .replace("\r\n", "\n");
    assert_eq!(body.trim_end(), render(&message).text.trim_end());
    let html = got["html"].as_str().expect("an HTML part");
    assert!(html.contains("<img src=\"cid:equity\""), "{html}");
    assert!(html.contains("12 &lt;all&gt;"), "escaped: {html}");
    assert_eq!(
        got["images"],
        serde_json::json!([{
            "content_type": "image/png",
            "cid": "<equity>",
            "disposition": "inline",
            "bytes": PNG.len(),
            "png_signature": true,
        }])
    );
}

#[test]
fn smtp_4xx_is_transient_and_5xx_is_not() {
    let Some(server) = SmtpServer::start("smtp_4xx_is_transient_and_5xx_is_not") else {
        return;
    };
    let message = Message::Alert(Box::new(drawdown()));
    for (rcpt, code, transient) in [
        ("tempfail@vigil.test", "451", true),
        ("reject@vigil.test", "550", false),
    ] {
        let email = EmailChannel::new(&config(server.port, &[rcpt])).expect("email");
        let err = email.deliver(&message).expect_err("refused");
        match &err {
            DeliveryError::Refused {
                channel,
                status,
                transient: t,
                ..
            } => {
                assert_eq!(channel, "email");
                assert_eq!(
                    status,
                    &format!("SMTP {code} from smtp://127.0.0.1:{}", server.port)
                );
                assert_eq!(*t, transient, "{err}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(server.drain().is_empty(), "nothing was accepted");
}

#[test]
fn starttls_against_a_server_without_it_is_refused_not_sent_in_clear() {
    let Some(server) =
        SmtpServer::start("starttls_against_a_server_without_it_is_refused_not_sent_in_clear")
    else {
        return;
    };
    let mut cfg = config(server.port, &["oncall@vigil.test"]);
    cfg.tls = SmtpTls::Starttls;
    let email = EmailChannel::new(&cfg).expect("email");
    let err = email
        .deliver(&Message::Alert(Box::new(drawdown())))
        .expect_err("STARTTLS is required");
    match &err {
        DeliveryError::Refused {
            body, transient, ..
        } => {
            assert!(body.contains("STARTTLS"), "{body}");
            assert!(!transient);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(server.drain().is_empty(), "nothing sent in clear");
}

#[test]
fn a_server_that_is_down_is_unreachable() {
    // Needs no SMTP server: nothing listens on the port.
    let port = closed_port();
    let email =
        EmailChannel::new(&config(port, &["oncall@vigil.test"])).expect("built without connecting");
    let err = email
        .deliver(&Message::Alert(Box::new(drawdown())))
        .expect_err("nobody listens");
    match &err {
        DeliveryError::Unreachable { target, .. } => {
            assert_eq!(target, &format!("smtp://127.0.0.1:{port}"));
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(err.is_transient());
}

#[test]
fn a_bad_address_is_refused_at_construction() {
    let err = EmailChannel::new(&config(25, &["not an address"])).expect_err("bad address");
    let text = err.to_string();
    assert!(
        text.starts_with("channel email: to \"not an address\""),
        "{text}"
    );
}
