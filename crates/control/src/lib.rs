//! The control address: vigil's health over HTTP, for people and for standard tools.
//!
//! - `GET /healthz`: liveness. 200 while the process serves HTTP and the Monitor has
//!   published a status.
//! - `GET /readyz`: ready to trade (data live, venue reachable, breaker not tripped, every
//!   agent healthy): 200, or 503 with the reasons.
//! - `GET /status`: the Monitor's whole view as JSON.
//! - `GET /metrics`: Prometheus text exposition format.
//!
//! It binds 127.0.0.1 by default; see docs/monitoring.md.

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use vigil_monitoring::HealthBoard;

/// Why the control address could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The address could not be bound.
    #[error("control address {addr}: cannot listen: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The running server.
#[derive(Debug)]
pub struct ControlServer {
    handle: ServerHandle,
    addr: SocketAddr,
}

impl ControlServer {
    /// Starts serving `board` on `addr` (port 0 picks a free port) inside the current actix
    /// system, on one worker thread.
    ///
    /// # Errors
    /// Fails when the address cannot be bound.
    pub fn start(addr: &str, board: HealthBoard) -> Result<Self, ControlError> {
        let data = web::Data::new(board);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/status", web::get().to(status))
                .route("/metrics", web::get().to(metrics))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)
        .map_err(|source| ControlError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let bound = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| ControlError::Bind {
                addr: addr.to_string(),
                source: std::io::Error::other("no address bound"),
            })?;
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(Self {
            handle,
            addr: bound,
        })
    }

    /// Returns the bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn healthz(board: web::Data<HealthBoard>) -> HttpResponse {
    let st = board.status();
    match st.updated_at {
        Some(at) => HttpResponse::Ok()
            .json(json!({"status": "ok", "session": st.session, "updated_at": at})),
        None => HttpResponse::ServiceUnavailable().json(
            json!({"status": "starting", "reason": "the Monitor has not published a status yet"}),
        ),
    }
}

async fn readyz(board: web::Data<HealthBoard>) -> HttpResponse {
    let st = board.status();
    let mut reasons = st.not_ready();
    if st.updated_at.is_none() {
        reasons.insert(0, "the Monitor has not published a status yet".into());
    }
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({"ready": true}))
    } else {
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .json(json!({"ready": false, "reasons": reasons}))
    }
}

async fn status(board: web::Data<HealthBoard>) -> HttpResponse {
    let st = board.status();
    let ready = st.not_ready();
    let mut v = serde_json::to_value(&st).unwrap_or_else(|e| json!({"error": e.to_string()}));
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "ready".into(),
            json!(ready.is_empty() && st.updated_at.is_some()),
        );
        m.insert("not_ready".into(), json!(ready));
    }
    HttpResponse::Ok().json(v)
}

async fn metrics(board: web::Data<HealthBoard>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(board.render())
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": format!("no such endpoint: {} {}", req.method(), req.path()),
        "endpoints": ["/healthz", "/readyz", "/status", "/metrics"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_monitoring::{EndpointView, Status};

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .build()
            .new_agent();
        let mut res = agent
            .get(format!("http://{addr}{path}"))
            .call()
            .expect("request");
        let code = res.status().as_u16();
        (code, res.body_mut().read_to_string().expect("body"))
    }

    async fn get_async(addr: SocketAddr, path: &'static str) -> (u16, String) {
        tokio_free_blocking(move || get(addr, path)).await
    }

    /// Runs a blocking HTTP client off the actix thread that serves the request.
    async fn tokio_free_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let out = f();
            tx.send(out).expect("send result");
        });
        loop {
            match rx.try_recv() {
                Ok(v) => return v,
                Err(std::sync::mpsc::TryRecvError::Empty) => actix_web::rt::task::yield_now().await,
                Err(e) => panic!("client thread: {e}"),
            }
        }
    }

    #[actix_rt::test]
    async fn endpoints_answer_over_real_http_on_loopback() {
        let board = HealthBoard::new();
        let server = ControlServer::start("127.0.0.1:0", board.clone()).expect("start");
        let addr = server.addr();
        assert!(addr.ip().is_loopback());

        // Nothing published yet: alive but starting, not ready.
        let (code, body) = get_async(addr, "/healthz").await;
        assert_eq!(code, 503, "{body}");
        let (code, body) = get_async(addr, "/readyz").await;
        assert_eq!(code, 503);
        assert!(body.contains("has not published"), "{body}");

        let mut st = Status {
            session: "t".into(),
            updated_at: Some("2030-01-01T00:00:00Z".parse().expect("ts")),
            trading_state: "active".into(),
            data_source: EndpointView {
                name: "csv:X".into(),
                up: true,
                ..EndpointView::default()
            },
            venue: EndpointView {
                name: "paper".into(),
                up: true,
                latency_ms: Some(0.1),
                error: None,
            },
            ..Status::default()
        };
        board.publish(st.clone());
        let (code, _) = get_async(addr, "/healthz").await;
        assert_eq!(code, 200);
        let (code, body) = get_async(addr, "/readyz").await;
        assert_eq!(code, 200, "{body}");

        st.trading_state = "halted".into();
        st.venue.up = false;
        st.venue.error = Some("connection refused".into());
        board.publish(st);
        let (code, body) = get_async(addr, "/readyz").await;
        assert_eq!(code, 503);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let reasons: Vec<String> = v["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .map(|r| r.as_str().expect("text").to_string())
            .collect();
        assert_eq!(
            reasons,
            vec![
                "venue paper is unreachable: connection refused".to_string(),
                "circuit breaker tripped (trading state halted)".to_string()
            ]
        );

        let (code, body) = get_async(addr, "/status").await;
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["trading_state"], "halted");
        assert_eq!(v["ready"], false);

        board.record(|| metrics::gauge!("vigil_test_value_ratio").set(0.5));
        let (code, body) = get_async(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("vigil_test_value_ratio 0.5"), "{body}");

        let (code, body) = get_async(addr, "/nope").await;
        assert_eq!(code, 404);
        assert!(body.contains("/readyz"), "{body}");
        server.stop().await;
    }

    #[actix_rt::test]
    async fn a_taken_address_is_a_clear_error() {
        let first = ControlServer::start("127.0.0.1:0", HealthBoard::new()).expect("start");
        let taken = first.addr().to_string();
        let err = ControlServer::start(&taken, HealthBoard::new()).expect_err("taken");
        let text = err.to_string();
        assert!(
            text.contains(&taken) && text.contains("cannot listen"),
            "{text}"
        );
        first.stop().await;
    }
}
