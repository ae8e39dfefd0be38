//! `email`: SMTP through lettre's blocking transport, one connection per message, plain-text
//! body from the template. A digest is one email. A report with pictures is
//! `multipart/related`: the plain text and an HTML version of it (the text, then each
//! picture inline by its content id), then the PNGs.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use vigil_config::{EmailConfig, SmtpTls};

use crate::error::AlertError;
use crate::http::scrub;
use crate::model::{Channel, DeliveryError, Message};
use crate::template::render;

/// Sends email through an SMTP server.
pub struct EmailChannel {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `smtp://host:port`, for errors.
    target: String,
    secrets: Vec<String>,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("target", &self.target)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Creates the channel from `[alerts.channels.email]`; no network I/O (lettre connects
    /// for each message).
    ///
    /// # Errors
    /// Fails when an address does not parse, no recipient is given, or TLS cannot be set up
    /// for the host.
    pub fn new(cfg: &EmailConfig) -> Result<Self, AlertError> {
        let bad = |reason: String| AlertError::Config {
            channel: "email".into(),
            reason,
        };
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| bad(format!("from {:?}: {e}", cfg.from)))?;
        let to = cfg
            .to
            .iter()
            .map(|t| t.parse().map_err(|e| bad(format!("to {t:?}: {e}"))))
            .collect::<Result<Vec<Mailbox>, _>>()?;
        if to.is_empty() {
            return Err(bad("to must list at least one recipient".into()));
        }
        let port = cfg.effective_port();
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let params = TlsParameters::new(cfg.host.clone())
                    .map_err(|e| bad(format!("TLS for {}: {e}", cfg.host)))?;
                if cfg.tls == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        // lettre has one limit for the connection and for each read and write after it.
        let timeout = Duration::from_millis(cfg.connect_timeout_ms.max(cfg.timeout_ms));
        let mut builder = SmtpTransport::builder_dangerous(cfg.host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        let mut secrets = Vec::new();
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            secrets.push(password.expose().to_string());
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            to,
            target: format!("smtp://{}:{port}", cfg.host),
            secrets,
        })
    }

    fn build(&self, message: &Message) -> Result<lettre::Message, DeliveryError> {
        let rendered = render(message);
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(rendered.subject)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")).to_string());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let built = match message {
            Message::Report(r) if !r.images.is_empty() => {
                let png = ContentType::parse("image/png").map_err(|e| DeliveryError::Build {
                    channel: "email".into(),
                    reason: format!("image/png: {e}"),
                })?;
                let mut related =
                    MultiPart::related().multipart(MultiPart::alternative_plain_html(
                        rendered.text.clone(),
                        report_html(&rendered.text, &r.images),
                    ));
                for image in &r.images {
                    related = related.singlepart(
                        Attachment::new_inline(image.name.clone())
                            .body(image.png.clone(), png.clone()),
                    );
                }
                builder.multipart(related)
            }
            _ => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(rendered.text),
            ),
        };
        built.map_err(|e| DeliveryError::Build {
            channel: "email".into(),
            reason: e.to_string(),
        })
    }
}

/// The HTML part of a report: its text as it is (monospace), then each picture by its
/// content id.
fn report_html(text: &str, images: &[crate::model::Image]) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = format!(
        "<!DOCTYPE html><html><body><pre style=\"font-family:monospace\">{}</pre>",
        escape(text)
    );
    for image in images {
        html.push_str(&format!(
            "<p><img src=\"cid:{}\" alt=\"{}\" style=\"max-width:100%\"></p>",
            escape(&image.name),
            escape(&image.alt)
        ));
    }
    html.push_str("</body></html>");
    html
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        "email"
    }

    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let email = self.build(message)?;
        self.transport
            .send(&email)
            .map(|_| ())
            .map_err(|e| self.map_error(&e))
    }
}

impl EmailChannel {
    /// SMTP 4xx is transient and 5xx is not; no connection (or a TLS failure) is unreachable.
    fn map_error(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let text = scrub(&e.to_string(), &self.secrets);
        if e.is_transient() || e.is_permanent() {
            let status = e
                .status()
                .map_or_else(|| "SMTP".to_string(), |code| format!("SMTP {code}"));
            DeliveryError::Refused {
                channel: "email".into(),
                status: format!("{status} from {}", self.target),
                body: text,
                transient: e.is_transient(),
            }
        } else if e.is_client() || e.is_response() {
            DeliveryError::Refused {
                channel: "email".into(),
                status: format!("SMTP exchange with {}", self.target),
                body: text,
                transient: false,
            }
        } else {
            DeliveryError::Unreachable {
                channel: "email".into(),
                target: self.target.clone(),
                reason: text,
            }
        }
    }
}
