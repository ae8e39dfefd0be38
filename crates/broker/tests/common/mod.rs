//! Helpers shared by the broker's tests: a broker on loopback over a small CSV, and plain
//! HTTP calls to it.

#![allow(dead_code)] // each test binary uses some of them

use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use vigil_broker::{BrokerOptions, BrokerServer, Credentials, EngineConfig};
use vigil_testkit::http_json;

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
    /// A client, with the test's key or without.
    pub(crate) fn api(&self, auth: bool) -> Api<'_> {
        Api {
            url: &self.url,
            auth,
        }
    }

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

/// A client of a broker, with the test's key or without.
pub(crate) struct Api<'a> {
    url: &'a str,
    auth: bool,
}

impl Api<'_> {
    fn send(
        &self,
        method: &str,
        path: &str,
        time: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if self.auth {
            headers.push(("APCA-API-KEY-ID", KEY_ID));
            headers.push(("APCA-API-SECRET-KEY", SECRET));
        }
        if let Some(t) = time {
            headers.push(("X-Vigil-Market-Time", t));
        }
        http_json(self.url, method, path, &headers, body)
    }

    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, None)
    }

    /// A GET that moves the broker's clock to `time` first.
    pub(crate) fn get_at(&self, path: &str, time: &str) -> (u16, Value) {
        self.send("GET", path, Some(time), None)
    }

    pub(crate) fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, None, Some(&body))
    }

    pub(crate) fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None, None)
    }
}
