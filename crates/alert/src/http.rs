//! The HTTP side of the webhook-style channels: one blocking client per channel with its own
//! time limits, and the mapping of every failure into a [`DeliveryError`] that names the host
//! but never a secret.

use std::fmt;
use std::time::Duration;

use crate::error::AlertError;
use crate::model::DeliveryError;

/// The most bytes of a refusal's body kept in the error.
const BODY_KEEP_CHARS: usize = 300;
/// The most bytes of a response body read at all.
const BODY_READ_LIMIT: u64 = 64 * 1024;

/// A blocking HTTP client for one channel.
pub(crate) struct HttpClient {
    channel: String,
    agent: ureq::Agent,
    /// Values that must never appear in an error text (URLs, tokens, header values).
    secrets: Vec<String>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// A request body.
pub(crate) enum Body<'a> {
    /// `application/json`.
    Json(&'a serde_json::Value),
    /// `application/x-www-form-urlencoded`.
    Form(&'a [(&'a str, &'a str)]),
}

impl HttpClient {
    /// Creates the client; no network I/O.
    pub(crate) fn new(
        channel: &str,
        connect_timeout_ms: u64,
        timeout_ms: u64,
        secrets: Vec<String>,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_millis(connect_timeout_ms)))
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            // Read the body of a refusal ourselves, to say why.
            .http_status_as_error(false)
            // A redirected POST is a misconfigured URL, not something to follow.
            .max_redirects(0)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            channel: channel.to_string(),
            agent,
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// POSTs `body` to `url` with `headers`; any 2xx is success.
    ///
    /// # Errors
    /// [`DeliveryError::Unreachable`] when no answer came (the target is `scheme://host:port`),
    /// [`DeliveryError::Refused`] for any other status (5xx and 429 transient).
    pub(crate) fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<(), DeliveryError> {
        let mut req = self.agent.post(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let sent = match body {
            Body::Json(v) => req
                .content_type("application/json")
                .send(v.to_string().as_bytes()),
            Body::Form(fields) => req.send_form(fields.iter().copied()),
        };
        let mut response = sent.map_err(|e| self.unreachable(url, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = match response
            .body_mut()
            .with_config()
            .limit(BODY_READ_LIMIT)
            .read_to_string()
        {
            Ok(t) => t,
            Err(e) => format!("(body unreadable: {})", self.scrub(&e.to_string())),
        };
        Err(DeliveryError::Refused {
            channel: self.channel.clone(),
            status: format!("HTTP {status} from {}", target(url)),
            body: crate::template::truncate_chars(
                self.scrub(text.trim()).as_str(),
                BODY_KEEP_CHARS,
            ),
            transient: status >= 500 || status == 429,
        })
    }

    fn unreachable(&self, url: &str, e: &ureq::Error) -> DeliveryError {
        let reason = match e {
            ureq::Error::Timeout(t) => format!("no answer in time ({t})"),
            other => other.to_string(),
        };
        DeliveryError::Unreachable {
            channel: self.channel.clone(),
            target: target(url),
            reason: self.scrub(&reason.replace(url, "[REDACTED]")),
        }
    }

    /// The text with every secret replaced by `[REDACTED]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secrets)
    }
}

/// The text with every one of `secrets` replaced by `[REDACTED]`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[REDACTED]");
        }
    }
    out
}

/// `scheme://host:port` of a URL: what errors may show of it. User info, path and query (where
/// webhook URLs keep their secrets) are dropped; the port is explicit.
pub(crate) fn target(url: &str) -> String {
    let (scheme, rest, port) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest, 443)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest, 80)
    } else {
        return "(not an http URL)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    // An IPv6 literal keeps its brackets; a port follows the last ':' after them.
    let has_port = match host_port.rfind(']') {
        Some(close) => host_port[close..].contains(':'),
        None => host_port.contains(':'),
    };
    if has_port {
        format!("{scheme}://{host_port}")
    } else {
        format!("{scheme}://{host_port}:{port}")
    }
}

/// Checks a URL the way config validation does, for channels built without it.
pub(crate) fn check_url(channel: &str, key: &str, url: &str) -> Result<(), AlertError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !target(url).contains("://:")
        && !target(url).ends_with("://");
    if ok {
        Ok(())
    } else {
        Err(AlertError::Config {
            channel: channel.to_string(),
            reason: format!("{key} must be an http:// or https:// URL with a host"),
        })
    }
}

/// Standard base64 (RFC 4648, with padding), for HTTP Basic authentication.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keeps_only_scheme_host_and_port() {
        assert_eq!(
            target("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com:443"
        );
        assert_eq!(
            target("http://user:pw@127.0.0.1:8080/x?token=1"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(target("http://[::1]/hook"), "http://[::1]:80");
        assert_eq!(target("http://[::1]:9/hook"), "http://[::1]:9");
        assert_eq!(target("ftp://x"), "(not an http URL)");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn scrub_removes_every_secret() {
        let s = scrub(
            "bad token abc at https://x/abc",
            &["abc".into(), String::new()],
        );
        assert_eq!(s, "bad token [REDACTED] at https://x/[REDACTED]");
    }
}
