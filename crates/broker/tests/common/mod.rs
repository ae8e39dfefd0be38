//! Helpers shared by the broker's tests: a broker on loopback over a small CSV, and plain
//! HTTP calls to it.

#![allow(dead_code)] // each test binary uses some of them

use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use vigil_broker::{BrokerOptions, BrokerServer, Credentials, EngineConfig};

pub(crate) const KEY_ID: &str = "test-key";
pub(crate) const SECRET: &str = "test-secret-0123456789";

/// Five daily bars of `X`: opens 100, 101, 102, 103, 104; closes one higher.
pub(crate) fn write_bars(dir: &Path) -> PathBuf {
    let path = dir.join("X_1d.csv");
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for d in 0..5u32 {
        let open = 100 + d;
        text.push_str(&format!(
            "2024-01-{:02},{open},{},{},{},100000\n",
            d + 2,
            open + 2,
            open - 2,
            open + 1
        ));
    }
    std::fs::write(&path, text).expect("write bars");
    path
}

/// `2024-01-DD` at midnight UTC, RFC 3339.
pub(crate) fn day(d: u32) -> String {
    format!("2024-01-{d:02}T00:00:00Z")
}

pub(crate) fn options(dir: &Path, credentials: bool) -> BrokerOptions {
    BrokerOptions {
        listen: "127.0.0.1:0".into(),
        state: dir.join("state/broker.db"),
        data: vec![("X".into(), write_bars(dir))],
        engine: EngineConfig {
            slippage_bps: Decimal::from(10),
            commission_bps: Decimal::from(5),
            commission_min: Decimal::ONE,
            ..EngineConfig::default()
        },
        credentials: credentials.then(|| Credentials {
            key_id: KEY_ID.into(),
            secret: SECRET.into(),
        }),
    }
}

/// A broker serving on a thread of its own (its own actix system), so that a test may
/// call it with blocking HTTP; stopped when dropped.
pub(crate) struct Broker {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    pub(crate) fn start(dir: &Path, credentials: bool) -> Self {
        Self::with(options(dir, credentials))
    }

    pub(crate) fn with(opts: BrokerOptions) -> Self {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = BrokerServer::start(opts).await.expect("broker starts");
                url_tx.send(server.url()).expect("test alive");
                // Wait for the stop without blocking this system's thread.
                let stopped = actix_web::rt::task::spawn_blocking(move || stop_rx.recv());
                let _stopped = stopped.await;
                server.stop().await;
            });
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the broker started within 20 s");
        Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            t.join().expect("broker thread");
        }
    }
}

/// A plain HTTP call: (status, JSON body or `null`). `time` is sent as the market time.
pub(crate) fn call(
    base: &str,
    method: &str,
    path: &str,
    time: Option<&str>,
    body: Option<serde_json::Value>,
    auth: bool,
) -> (u16, serde_json::Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let url = format!("{base}{path}");
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if auth {
        headers.push(("APCA-API-KEY-ID", KEY_ID));
        headers.push(("APCA-API-SECRET-KEY", SECRET));
    }
    if let Some(t) = time {
        headers.push(("X-Vigil-Market-Time", t));
    }
    let sent = match (method, body) {
        ("POST", body) => {
            let mut req = agent.post(&url);
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            req.content_type("application/json")
                .send(body.unwrap_or_default().to_string())
        }
        (m, _) => {
            let mut req = if m == "DELETE" {
                agent.delete(&url)
            } else {
                agent.get(&url)
            };
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
    };
    let mut res = sent.expect("the broker answers");
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().expect("body");
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, value)
}
