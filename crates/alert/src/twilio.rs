//! `sms` and `call`: text messages and phone calls through Twilio's REST API (2010-04-01), or
//! any service that speaks it.

use std::fmt;

use vigil_config::TwilioConfig;

use crate::error::AlertError;
use crate::http::{Body, HttpClient, base64, check_url, target};
use crate::model::{Channel, DeliveryError, Message};
use crate::template::{sms_text, spoken_text};

/// What a [`TwilioChannel`] sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TwilioMode {
    /// A text message (`Messages.json`); the channel is named `sms`.
    Sms,
    /// A voice call that reads the alert out (`Calls.json`); the channel is named `call`.
    Call,
}

/// Sends an SMS or places a call to every configured number.
pub struct TwilioChannel {
    mode: TwilioMode,
    url: String,
    authorization: String,
    from: String,
    to: Vec<String>,
    client: HttpClient,
}

impl fmt::Debug for TwilioChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioChannel")
            .field("mode", &self.mode)
            .field("target", &target(&self.url))
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl TwilioChannel {
    /// Creates the `sms` or `call` channel from `[alerts.channels.twilio]`; no network I/O.
    ///
    /// # Errors
    /// Fails when the base URL is not an http(s) URL or the account SID is not alphanumeric.
    pub fn new(cfg: &TwilioConfig, mode: TwilioMode) -> Result<Self, AlertError> {
        let name = mode_name(mode);
        check_url(name, "base_url", &cfg.base_url)?;
        if cfg.account_sid.is_empty() || !cfg.account_sid.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(AlertError::Config {
                channel: name.into(),
                reason: "account_sid must be letters and digits".into(),
            });
        }
        let resource = match mode {
            TwilioMode::Sms => "Messages.json",
            TwilioMode::Call => "Calls.json",
        };
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            cfg.base_url.trim_end_matches('/'),
            cfg.account_sid
        );
        let credentials =
            base64(format!("{}:{}", cfg.account_sid, cfg.auth_token.expose()).as_bytes());
        let authorization = format!("Basic {credentials}");
        let secrets = vec![cfg.auth_token.expose().to_string(), credentials];
        Ok(Self {
            mode,
            client: HttpClient::new(name, cfg.connect_timeout_ms, cfg.timeout_ms, secrets),
            url,
            authorization,
            from: cfg.from.clone(),
            to: cfg.to.clone(),
        })
    }
}

fn mode_name(mode: TwilioMode) -> &'static str {
    match mode {
        TwilioMode::Sms => "sms",
        TwilioMode::Call => "call",
    }
}

/// The TwiML of a call: `<Response><Say>…</Say></Response>`, the text XML-escaped.
pub fn twiml(message: &Message) -> String {
    format!(
        "<Response><Say>{}</Say></Response>",
        vigil_core::escape_markup(&spoken_text(message))
    )
}

impl Channel for TwilioChannel {
    fn name(&self) -> &str {
        mode_name(self.mode)
    }

    /// Sends to every number; when some fail, the first failure is returned after all were
    /// tried (a retry then repeats the message to the numbers that had it).
    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let (field, content) = match self.mode {
            TwilioMode::Sms => ("Body", sms_text(message)),
            TwilioMode::Call => ("Twiml", twiml(message)),
        };
        let headers = [("Authorization", self.authorization.as_str())];
        let mut first_error = None;
        for to in &self.to {
            let form = [
                ("To", to.as_str()),
                ("From", self.from.as_str()),
                (field, content.as_str()),
            ];
            if let Err(e) = self.client.post(&self.url, &headers, Body::Form(&form)) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::drawdown;

    #[test]
    fn twiml_escapes_the_spoken_text() {
        let mut n = drawdown();
        n.event = "P&L <limit> \"hit\"".into();
        assert_eq!(
            twiml(&Message::Alert(Box::new(n))),
            "<Response><Say>Vigil trading system alert. Severity critical. Service risk agent. P&amp;L &lt;limit&gt; &quot;hit&quot;. Alert a-3f9c2b1e.</Say></Response>"
        );
    }
}
