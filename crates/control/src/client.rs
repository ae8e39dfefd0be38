//! A client of a running vigil's control API, as `vigil ctl`, `vigil status` and
//! `vigil alerts` use it: where it is (`<log dir>/control.addr`), its bearer token
//! (`control.token_file`), HTTPS trust (`control.tls_cert`), and what kind of failure a
//! request without an answer is. What each failure means as an exit code is the caller's.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use vigil_config::VigilConfig;

use crate::{ControlError, Token};

/// The file in the log folder where a running vigil writes its control address.
pub const CONTROL_ADDR_FILE: &str = "control.addr";

/// Where the running vigil is and how to authenticate; `None` takes the config's.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The running vigil's log folder, where it writes [`CONTROL_ADDR_FILE`] (default: the
    /// config's log.dir).
    pub log_dir: Option<PathBuf>,
    /// The control address or URL (`127.0.0.1:7317`, `https://host:7317`), instead of
    /// reading [`CONTROL_ADDR_FILE`].
    pub control: Option<String>,
    /// The bearer token's file (default: the config's control.token_file).
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for HTTPS (default: the config's control.tls_cert).
    pub ca_file: Option<PathBuf>,
}

/// How long one request may take (a command waits up to 10 s for the Monitor).
const TIMEOUT: Duration = Duration::from_secs(15);

/// What looking for the running vigil found.
#[derive(Debug)]
pub enum Located {
    /// An address to talk to.
    Running(Client),
    /// No address: why vigil is taken as not running.
    NotRunning(String),
}

/// A request that got no HTTP answer.
#[derive(Debug)]
pub enum Failure {
    /// Nothing listens there.
    NotRunning(String),
    /// It did not answer in time.
    NoAnswer(String),
    /// Anything else (TLS, a broken connection).
    Other(String),
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.body).map_err(|e| {
            format!(
                "the answer (HTTP {}) is not JSON ({e}): {}",
                self.status,
                self.body.trim()
            )
        })
    }

    /// The server's `error` field, or the whole body when it has none.
    pub fn error(&self) -> String {
        match self.json() {
            Ok(Value::Object(m)) if m.get("error").is_some_and(Value::is_string) => {
                m["error"].as_str().unwrap_or_default().to_string()
            }
            _ => self.body.trim().to_string(),
        }
    }
}

/// A client of one running vigil.
#[derive(Debug)]
pub struct Client {
    url: String,
    source: String,
    agent: ureq::Agent,
    token: Result<Token, String>,
}

/// `http://` unless the text says `https://`; an unspecified address (a server bound to
/// every interface) is reached on loopback.
fn base_url(text: &str) -> Result<String, String> {
    let (scheme, rest) = match text.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        Some((other, _)) => {
            return Err(format!("unknown scheme {other:?}; expected http or https"));
        }
        None => ("http", text),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err("expected host:port, optionally after http:// or https://".into());
    }
    let host = match rest.parse::<SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => {
            let ip = if a.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(ip, a.port()).to_string()
        }
        _ => rest.to_string(),
    };
    Ok(format!("{scheme}://{host}"))
}

/// The certificates in a PEM file, to trust.
fn trusted(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ControlError> {
    let pem = std::fs::read(path).map_err(|e| {
        ControlError::Locate(format!(
            "cannot read the certificate {}: {e}",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(ControlError::Locate(format!(
                    "certificate {}: bad PEM: {e}",
                    path.display()
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(ControlError::Locate(format!(
            "certificate {}: no CERTIFICATE block",
            path.display()
        )));
    }
    Ok(out)
}

impl Target {
    /// The token file in use.
    pub fn token_file(&self, cfg: &VigilConfig) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| cfg.control_token_file())
    }

    /// Finds the running vigil's address. Nothing is sent yet.
    ///
    /// # Errors
    /// When control.addr cannot be read, the address is malformed, or the certificate to
    /// trust cannot be read.
    pub fn locate(&self, cfg: &VigilConfig) -> Result<Located, ControlError> {
        let (text, source) = match &self.control {
            Some(c) => (c.trim().to_string(), "--control".to_string()),
            None => {
                let dir = self.log_dir.clone().unwrap_or_else(|| cfg.log.dir.clone());
                let file = dir.join(CONTROL_ADDR_FILE);
                let not_running = || {
                    Located::NotRunning(format!(
                        "vigil is not running (no control address in {}); a running vigil \
                         writes it there: pass --config or --log-dir for another log folder",
                        file.display()
                    ))
                };
                match std::fs::read_to_string(&file) {
                    Ok(t) if t.trim().is_empty() => return Ok(not_running()),
                    Ok(t) => (t.trim().to_string(), file.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(not_running());
                    }
                    Err(e) => {
                        return Err(ControlError::Locate(format!(
                            "cannot read {}: {e}",
                            file.display()
                        )));
                    }
                }
            }
        };
        let url = base_url(&text).map_err(|e| {
            ControlError::Locate(format!("control address {text:?} (from {source}): {e}"))
        })?;
        let mut tls = ureq::tls::TlsConfig::builder();
        if url.starts_with("https://")
            && let Some(ca) = self.ca_file.as_ref().or(cfg.control.tls_cert.as_ref())
        {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&trusted(ca)?));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .tls_config(tls.build())
            .build()
            .new_agent();
        let token_file = self.token_file(cfg);
        let token = crate::read_token(&token_file).map_err(|e| {
            format!(
                "{e}; the running vigil's token is in its control.token_file: pass --config \
                 with its config, or --token-file"
            )
        });
        Ok(Located::Running(Client {
            url,
            source,
            agent,
            token,
        }))
    }
}

impl Client {
    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token, or why it cannot be read.
    pub fn token(&self) -> Result<&Token, &str> {
        self.token.as_ref().map_err(String::as_str)
    }

    /// `GET path` with the token.
    pub fn get(&self, path: &str) -> Result<Reply, Failure> {
        self.call("GET", path, None)
    }

    /// `POST path` with a JSON body and the token.
    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, Failure> {
        self.call("POST", path, Some(body))
    }

    /// Sends the request (with the token when it could be read: a request without one is
    /// still answered, 401).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, Failure> {
        let url = format!("{}{path}", self.url);
        let auth = self
            .token
            .as_ref()
            .ok()
            .map(|t| format!("Bearer {}", t.expose()));
        let sent = if method == "POST" {
            let mut req = self.agent.post(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.content_type("application/json")
                .send(body.map(Value::to_string).unwrap_or_default())
        } else {
            let mut req = self.agent.get(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        };
        let mut res = sent.map_err(|e| self.failure(&e))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .read_to_string()
            .map_err(|e| Failure::Other(format!("reading the answer of {url}: {e}")))?;
        Ok(Reply { status, body })
    }

    fn failure(&self, e: &ureq::Error) -> Failure {
        let refused = matches!(e, ureq::Error::ConnectionFailed | ureq::Error::HostNotFound)
            || matches!(e, ureq::Error::Io(io) if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            ));
        if refused {
            Failure::NotRunning(format!(
                "vigil is not running (nothing answers at {}, named in {}: {e}); a vigil that \
                 did not stop cleanly leaves the file behind",
                self.url, self.source
            ))
        } else if matches!(e, ureq::Error::Timeout(_)) {
            Failure::NoAnswer(format!(
                "no answer from {} within {} s: {e}",
                self.url,
                TIMEOUT.as_secs()
            ))
        } else {
            Failure::Other(format!("request to {} failed: {e}", self.url))
        }
    }

    /// The message for a 401 answer.
    pub fn unauthorized(&self, reply: &Reply) -> String {
        format!(
            "vigil: unauthorized: the vigil at {} refused the token ({}); it must be the one in \
             the running vigil's control.token_file: pass --config with its config, or \
             --token-file",
            self.url,
            reply.error()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_base_urls_reachable_from_here() {
        for (text, want) in [
            ("127.0.0.1:7317", "http://127.0.0.1:7317"),
            ("http://127.0.0.1:7317/", "http://127.0.0.1:7317"),
            (
                "https://vigil.example.com:7317",
                "https://vigil.example.com:7317",
            ),
            ("0.0.0.0:7317", "http://127.0.0.1:7317"),
            ("https://[::]:7317", "https://[::1]:7317"),
        ] {
            assert_eq!(base_url(text).as_deref(), Ok(want), "{text}");
        }
        assert!(base_url("ftp://x:1").is_err());
        assert!(base_url("http://x:1/v1").is_err());
        assert!(base_url("").is_err());
    }
}
