//! The one actix-web server start-up of vigil's own HTTP services: the paper broker
//! (`vigil broker`) and the test feed (`vigil feed`).
//!
//! - [`HttpService::start`]: binds the address, serves the routes a caller configures on
//!   two workers, without actix's own signal handling (the caller decides when to stop);
//! - [`HttpService::serve_until_signal`]: serves until SIGINT or SIGTERM, then stops
//!   gracefully;
//! - [`Credentials`]: the API key a client presents, checked in constant time;
//! - [`HttpService::stop`] / [`HttpService::shutdown`]: stops, gracefully or not
//!   ([`StopMode`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), vigil_http::HttpError> {
//! use actix_web::{HttpResponse, web};
//! use vigil_http::{HttpService, StopMode};
//! let service = HttpService::start("127.0.0.1:0", StopMode::Graceful, |cfg| {
//!     cfg.route("/ping", web::get().to(|| async { HttpResponse::Ok().body("pong") }));
//! })?;
//! println!("listening on {}", service.addr());
//! service.serve_until_signal().await
//! # }
//! ```

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use subtle::ConstantTimeEq as _;

/// Why a service cannot start or go on; each variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The signal handlers could not be installed, or the server failed.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// The API key a client must present (Alpaca's `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY`
/// on HTTP, the `auth` message on the feed's WebSocket).
#[derive(Clone)]
pub struct Credentials {
    /// The key id.
    pub key_id: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key_id", &self.key_id)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl Credentials {
    /// Tells, in time that does not depend on where a wrong one differs, whether `key_id`
    /// and `secret` are these.
    pub fn accept(&self, key_id: &[u8], secret: &[u8]) -> bool {
        let id_ok = self.key_id.as_bytes().ct_eq(key_id);
        let secret_ok = self.secret.as_bytes().ct_eq(secret);
        bool::from(id_ok & secret_ok)
    }
}

/// How a service stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Open requests finish first (within a second).
    Graceful,
    /// Open connections are dropped: for long-lived ones (WebSocket streams) that never
    /// finish on their own.
    Immediate,
}

/// A running HTTP service.
#[derive(Debug)]
pub struct HttpService {
    handle: ServerHandle,
    addr: SocketAddr,
    mode: StopMode,
    done: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl HttpService {
    /// Binds `listen` (`host:port`; port 0 picks a free one) and serves the routes and app
    /// data `configure` sets up, on two workers; it stops as `mode` says. Must be called
    /// inside an actix runtime.
    ///
    /// # Errors
    /// [`HttpError::Bind`] when the address cannot be bound.
    pub fn start<F>(listen: &str, mode: StopMode, configure: F) -> Result<Self, HttpError>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let bind_error = |source| HttpError::Bind {
            addr: listen.to_string(),
            source,
        };
        let server = HttpServer::new(move || App::new().configure(configure.clone()))
            .workers(2)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(listen)
            .map_err(bind_error)?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| bind_error(std::io::Error::other("no address bound")))?;
        let server = server.run();
        let handle = server.handle();
        let done = actix_web::rt::spawn(server);
        Ok(Self {
            handle,
            addr,
            mode,
            done,
        })
    }

    /// Returns the bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops (see [`StopMode`]) without waiting for the server task.
    pub async fn stop(self) {
        self.handle.stop(self.mode == StopMode::Graceful).await;
    }

    /// Stops (see [`StopMode`]) and waits for the server to end.
    ///
    /// # Errors
    /// The server failed.
    pub async fn shutdown(self) -> Result<(), HttpError> {
        self.handle.stop(self.mode == StopMode::Graceful).await;
        match self.done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HttpError::Runtime(format!("server: {e}"))),
            Err(e) => Err(HttpError::Runtime(format!("server task: {e}"))),
        }
    }

    /// Serves until SIGINT or SIGTERM, then shuts down.
    ///
    /// # Errors
    /// The signal handlers cannot be installed, or the server failed.
    pub async fn serve_until_signal(self) -> Result<(), HttpError> {
        wait_for_stop_signal().await?;
        self.shutdown().await
    }
}

/// Waits for SIGINT or SIGTERM.
///
/// # Errors
/// The signal handlers cannot be installed.
pub async fn wait_for_stop_signal() -> Result<(), HttpError> {
    use tokio::signal::unix::{SignalKind, signal};
    let signal_err = |e: std::io::Error| HttpError::Runtime(format!("signal handler: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;

    use super::*;

    #[test]
    fn credentials_accept_only_both_halves_and_never_print_the_secret() {
        let c = Credentials {
            key_id: "k".into(),
            secret: "s3cret".into(),
        };
        assert!(c.accept(b"k", b"s3cret"));
        assert!(!c.accept(b"k", b"s3cre"));
        assert!(!c.accept(b"x", b"s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[actix_web::test]
    async fn serves_the_configured_routes_on_loopback_and_stops() {
        let service = HttpService::start("127.0.0.1:0", StopMode::Graceful, |cfg| {
            cfg.app_data(web::Data::new(41u32)).route(
                "/answer",
                web::get().to(|n: web::Data<u32>| async move { HttpResponse::Ok().json(**n + 1) }),
            );
        })
        .expect("loopback binds");
        let addr = service.addr();
        let (status, body) = tokio::task::spawn_blocking(move || {
            vigil_testkit::http_json(&format!("http://{addr}"), "GET", "/answer", &[], None)
        })
        .await
        .expect("the client ran");
        assert_eq!((status, body), (200, serde_json::json!(42)));
        service.stop().await;
    }

    #[actix_web::test]
    async fn an_address_in_use_is_named() {
        let first =
            HttpService::start("127.0.0.1:0", StopMode::Immediate, |_| {}).expect("loopback binds");
        let taken = first.addr().to_string();
        let err =
            HttpService::start(&taken, StopMode::Immediate, |_| {}).expect_err("the port is taken");
        assert!(err.to_string().contains(&taken), "{err}");
        first.stop().await;
    }
}
