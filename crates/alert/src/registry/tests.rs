use vigil_config::{EMBEDDED_DEFAULT, VigilConfig};

use super::*;

fn config(extra: &str) -> ChannelsConfig {
    VigilConfig::from_toml_str(&format!("{EMBEDDED_DEFAULT}\n{extra}"), "t.toml")
        .expect("valid config")
        .alerts
        .channels
}

#[test]
fn builds_every_configured_channel_by_name_without_connecting() {
    // Nothing listens on port 9 of 127.0.0.1: construction must not care.
    let cfg = config(
        r#"
[alerts.channels.email]
host = "127.0.0.1"
port = 9
from = "alerts@vigil.test"
to = ["oncall@vigil.test"]

[alerts.channels.slack]
url = "http://127.0.0.1:9/services/SLACKSECRET"

[alerts.channels.teams]
url = "http://127.0.0.1:9/workflows/TEAMSSECRET"

[alerts.channels.twilio]
base_url = "http://127.0.0.1:9"
account_sid = "AC123"
auth_token = "TWILIOSECRET"
from = "+15551230000"
to = ["+15551239999"]

[alerts.channels.pagerduty]
routing_key = "PDSECRET"
events_url = "http://127.0.0.1:9/v2/enqueue"

[alerts.channels.webhook]
url = "http://127.0.0.1:9/hook?token=HOOKSECRET"
secret_headers = { Authorization = "Bearer HEADERSECRET" }
"#,
    );
    let channels = build_channels(&cfg).expect("built");
    let mut all = CHANNEL_NAMES.to_vec();
    all.sort_unstable();
    assert_eq!(channels.names(), all);
    for name in CHANNEL_NAMES {
        let ch = channels.get(name).expect("configured");
        assert_eq!(ch.name(), name);
    }
    let debug = format!("{channels:?}");
    for secret in cfg.secrets() {
        assert!(!debug.contains(&secret), "{secret} in {debug}");
    }
    assert!(!debug.contains("SECRET"), "{debug}");
}

#[test]
fn twilio_offers_only_the_enabled_modes() {
    let cfg = config(
        r#"
[alerts.channels.twilio]
account_sid = "AC123"
auth_token = "t"
from = "+15551230000"
to = ["+15551239999"]
sms = false
"#,
    );
    let channels = build_channels(&cfg).expect("built");
    assert_eq!(channels.names(), ["call"]);
    assert!(!channels.contains("sms"));
    assert!(
        build_channels(&ChannelsConfig::default())
            .expect("built")
            .is_empty()
    );
}
