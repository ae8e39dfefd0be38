use crate::VigilConfig;

/// The embedded default (valid) with `extra` appended.
fn parse(extra: &str) -> Result<VigilConfig, crate::ConfigError> {
    VigilConfig::from_toml_str(&format!("{}\n{extra}", crate::EMBEDDED_DEFAULT), "t.toml")
}

fn issues(text: &str) -> String {
    match parse(text) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn no_channels_is_valid() {
    assert_eq!(issues("[alerts.channels]\n"), "");
}

#[test]
fn every_channel_configured_well_is_valid_and_defaults_apply() {
    let text = r#"
[alerts.channels.email]
host = "smtp.example.com"
from = "Vigil <alerts@example.com>"
to = ["oncall@example.com"]
username = "alerts"
password = "pw-123"

[alerts.channels.slack]
url = "https://hooks.slack.com/services/T0/B0/XYZ"

[alerts.channels.teams]
url = "https://example.webhook.office.com/workflows/abc"
timeout_ms = 5000

[alerts.channels.twilio]
account_sid = "AC0123456789abcdef"
auth_token = "tok-456"
from = "+15551230000"
to = ["+15551239999"]

[alerts.channels.pagerduty]
routing_key = "R0UT1NGKEY"

[alerts.channels.webhook]
url = "https://hooks.example.com/vigil?token=abc"
headers = { "X-Team" = "trading" }
secret_headers = { Authorization = "Bearer sekret" }
"#;
    let cfg = parse(text).expect("valid");
    let ch = &cfg.alerts.channels;
    let email = ch.email.as_ref().expect("email");
    assert_eq!(email.effective_port(), 587);
    assert_eq!(email.connect_timeout_ms, 10_000);
    let twilio = ch.twilio.as_ref().expect("twilio");
    assert_eq!(twilio.base_url, "https://api.twilio.com");
    assert!(twilio.sms && twilio.call);
    let pd = ch.pagerduty.as_ref().expect("pagerduty");
    assert_eq!(pd.events_url, "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(pd.source, "vigil");
    assert_eq!(ch.delivery.attempts, 3);
    assert_eq!(ch.delivery.backoff_base_ms, 500);
    assert_eq!(ch.delivery.backoff_max_ms, 30_000);

    let mut secrets = cfg.secrets();
    secrets.sort();
    assert_eq!(
        secrets,
        [
            "Bearer sekret",
            "R0UT1NGKEY",
            "https://example.webhook.office.com/workflows/abc",
            "https://hooks.example.com/vigil?token=abc",
            "https://hooks.slack.com/services/T0/B0/XYZ",
            "pw-123",
            "tok-456",
        ]
    );
    // Debug output of the config shows no secret.
    let debug = format!("{cfg:?}");
    for s in &secrets {
        assert!(!debug.contains(s.as_str()), "{s} leaked into Debug");
    }
}

#[test]
fn tls_mode_picks_the_usual_port() {
    let text = r#"
[alerts.channels.email]
host = "smtp.example.com"
tls = "tls"
from = "a@example.com"
to = ["b@example.com"]
"#;
    let cfg = parse(text).expect("valid");
    let email = cfg.alerts.channels.email.expect("email");
    assert_eq!(email.effective_port(), 465);
}

#[test]
fn lists_every_channel_problem_with_its_dotted_path() {
    let text = r#"
[alerts.channels.delivery]
attempts = 0
backoff_base_ms = 1000
backoff_max_ms = 10
queue_capacity = 0

[alerts.channels.email]
host = ""
port = 0
username = "alerts"
from = "not-an-address"
to = []
timeout_ms = 0
colour = "red"

[alerts.channels.slack]
url = "ftp://hooks.slack.com/services/SECRETPART"

[alerts.channels.teams]
url = "https:///nohost"

[alerts.channels.twilio]
base_url = "api.twilio.com"
account_sid = "AC/../x"
auth_token = ""
from = "5551230000"
to = ["+1555", "+15551239999"]
sms = false
call = false

[alerts.channels.pagerduty]
routing_key = " "
events_url = "events.pagerduty.com"

[alerts.channels.webhook]
url = "https://hooks.example.com/x"
headers = { "Bad Header" = "v", Authorization = "x" }
secret_headers = { Authorization = "line\nbreak" }
"#;
    let report = issues(text);
    for needle in [
        "alerts.channels.delivery.attempts: must be in [1, 20], got 0",
        "alerts.channels.delivery.backoff_max_ms: must be at least alerts.channels.delivery.backoff_base_ms (1000), got 10",
        "alerts.channels.delivery.queue_capacity: must be in [1, 1000000], got 0",
        "alerts.channels.email.host: must not be empty",
        "alerts.channels.email.port: must be in [1, 65535], got 0",
        "alerts.channels.email.password: must be set when username is",
        "alerts.channels.email.from: expected user@domain or Name <user@domain>, got \"not-an-address\"",
        "alerts.channels.email.to: must list at least one recipient",
        "alerts.channels.email.timeout_ms: must be in [1, 300000] ms, got 0",
        "alerts.channels.email.colour: unknown key",
        "alerts.channels.slack.url: must start with http:// or https://",
        "alerts.channels.teams.url: has no host after the scheme",
        "alerts.channels.twilio.base_url: must start with http:// or https://",
        "alerts.channels.twilio.account_sid: expected letters and digits only (AC…), got \"AC/../x\"",
        "alerts.channels.twilio.auth_token: must not be empty",
        "alerts.channels.twilio.from: expected an E.164 number such as +15551230000, got \"5551230000\"",
        "alerts.channels.twilio.to[0]: expected an E.164 number such as +15551230000, got \"+1555\"",
        "alerts.channels.twilio.sms: sms and call are both false",
        "alerts.channels.pagerduty.routing_key: must not be empty",
        "alerts.channels.pagerduty.events_url: must start with http:// or https://",
        "alerts.channels.webhook.headers.Bad Header: \"Bad Header\" is not a valid header name",
        "alerts.channels.webhook.secret_headers.Authorization: the value must not contain line breaks",
        "alerts.channels.webhook.secret_headers.Authorization: is also in headers",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
    }
    assert!(!report.contains("twilio.to[1]"), "{report}");
    // A secret URL is never repeated in a message.
    assert!(!report.contains("SECRETPART"), "{report}");
}

#[test]
fn a_channel_without_its_url_names_the_missing_key() {
    let report = issues("[alerts.channels.slack]\ntimeout_ms = 5\n");
    assert!(report.contains("missing field `url`"), "{report}");
}
