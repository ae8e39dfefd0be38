//! Helpers shared by the feed's tests: a feed on loopback over a CSV, its control calls,
//! and a provider driven from a plain test thread.

#![allow(dead_code)] // each test binary uses some of them

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use vigil_core::{Bar, MarketDataEvent, SymbolId};
use vigil_feed::{Credentials, FeedOptions, FeedThread, Pacing};
use vigil_providers::{
    CsvBarReader, CsvSource, DataProvider, ProviderError, WsFeedConfig, WsFeedProvider,
};
use vigil_testkit::http_json;

pub(crate) const KEY_ID: &str = "feed-key";
pub(crate) const SECRET: &str = "feed-secret-0123456789";

pub(crate) use vigil_testkit::PATIENCE;

/// The repository's GOOG daily bars.
pub(crate) fn goog() -> PathBuf {
    PathBuf::from(format!(
        "{}/../../data/GOOG_1d.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// The first `n` bars of a CSV file, as the CSV reader reads them.
pub(crate) fn csv_bars(path: &Path, n: usize) -> Vec<Bar> {
    let mut reader = CsvBarReader::open(&CsvSource::file(SymbolId(0), path)).expect("open csv");
    let mut out = Vec::new();
    while out.len() < n
        && reader
            .read_batch(n - out.len(), &mut out)
            .expect("read csv")
            > 0
    {}
    out
}

/// `n` daily bars of a symbol from 2024-01-01, close = 100 + day.
pub(crate) fn write_days(dir: &Path, name: &str, n: u32) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    for d in 0..n {
        let date = start + chrono::Days::new(u64::from(d));
        let p = 100 + d;
        text.push_str(&format!(
            "{date},{p},{},{},{p}.5,{}\n",
            p + 1,
            p - 1,
            1000 + d
        ));
    }
    std::fs::write(&path, text).expect("write csv");
    path
}

pub(crate) fn options(sources: Vec<(String, PathBuf)>, pacing: Pacing) -> FeedOptions {
    FeedOptions {
        listen: "127.0.0.1:0".into(),
        sources,
        pacing,
        credentials: None,
    }
}

/// A feed serving on a thread of its own ([`FeedThread`]), so that a test may call it with
/// blocking HTTP; stopped when dropped.
pub(crate) struct Feed {
    /// `ws://127.0.0.1:PORT/stream`.
    pub(crate) stream_url: String,
    /// `http://127.0.0.1:PORT`.
    pub(crate) control_url: String,
    auth: bool,
    thread: Option<FeedThread>,
}

impl Feed {
    pub(crate) fn manual_goog() -> Self {
        Self::start(options(vec![("GOOG".into(), goog())], Pacing::Manual))
    }

    pub(crate) fn start(opts: FeedOptions) -> Self {
        let auth = opts.credentials.is_some();
        let thread = FeedThread::start(opts).expect("feed starts");
        Self {
            stream_url: thread.stream_url().to_string(),
            control_url: thread.control_url().to_string(),
            auth,
            thread: Some(thread),
        }
    }

    pub(crate) fn with_credentials(mut opts: FeedOptions) -> Self {
        opts.credentials = Some(Credentials {
            key_id: KEY_ID.into(),
            secret: SECRET.into(),
        });
        Self::start(opts)
    }

    fn call(&self, method: &str, path: &str) -> (u16, Value) {
        let headers: &[(&str, &str)] = if self.auth {
            &[("APCA-API-KEY-ID", KEY_ID), ("APCA-API-SECRET-KEY", SECRET)]
        } else {
            &[]
        };
        http_json(&self.control_url, method, path, headers, None)
    }

    /// `POST path`, expecting 200; the answer.
    pub(crate) fn post(&self, path: &str) -> Value {
        let (status, body) = self.call("POST", path);
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    /// `POST /_feed/step?n=N`, expecting every bar sent.
    pub(crate) fn step(&self, n: u64) {
        let body = self.post(&format!("/_feed/step?n={n}"));
        assert_eq!(body["sent"], n, "step {n}: {body}");
    }

    pub(crate) fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub(crate) fn status(&self, method: &str, path: &str) -> (u16, Value) {
        self.call(method, path)
    }

    /// A provider for this feed (not connected), with a short `max_wait` so that a quiet
    /// feed shows quickly.
    pub(crate) fn provider(&self) -> WsFeedProvider {
        let mut config = WsFeedConfig::new(&self.stream_url, KEY_ID, SECRET);
        config.max_wait = Duration::from_millis(200);
        config.connect_timeout = PATIENCE;
        config.ping_timeout = PATIENCE;
        WsFeedProvider::new(config)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.thread.take().map(FeedThread::stop)
            && !std::thread::panicking()
        {
            panic!("{e}");
        }
    }
}

/// A runtime for the provider on the test's thread.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `f` on `rt`, failing the test after [`PATIENCE`].
pub(crate) fn within<T>(rt: &tokio::runtime::Runtime, what: &str, f: impl Future<Output = T>) -> T {
    rt.block_on(async { tokio::time::timeout(PATIENCE, f).await })
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// A provider connected to `feed` and subscribed to GOOG (id 0).
pub(crate) fn connected(rt: &tokio::runtime::Runtime, feed: &Feed) -> WsFeedProvider {
    let mut p = feed.provider();
    within(rt, "connect", p.connect()).expect("connect");
    within(
        rt,
        "subscribe",
        p.subscribe(&[(SymbolId(0), "GOOG".into())]),
    )
    .expect("subscribe");
    p
}

/// Reads exactly `n` bars (failing on any error, or on more than `n`).
pub(crate) fn read_bars(
    rt: &tokio::runtime::Runtime,
    p: &mut WsFeedProvider,
    n: usize,
) -> Vec<Bar> {
    within(rt, "bars", async {
        let mut events = Vec::new();
        while events.len() < n {
            let more = p.next_batch(n - events.len(), &mut events).await;
            assert!(more.expect("next_batch"), "the stream ended");
        }
        events
            .into_iter()
            .map(|e| match e {
                MarketDataEvent::Bar(b) => b,
            })
            .collect()
    })
}

/// Reads until the next error; no bar may come before it.
pub(crate) fn read_error(rt: &tokio::runtime::Runtime, p: &mut WsFeedProvider) -> ProviderError {
    within(rt, "an error", async {
        loop {
            let mut events = Vec::new();
            match p.next_batch(16, &mut events).await {
                Ok(_) => assert!(events.is_empty(), "a bar before the error: {events:?}"),
                Err(e) => return e,
            }
        }
    })
}

/// The text of a `Malformed` error.
pub(crate) fn malformed(e: ProviderError) -> String {
    match e {
        ProviderError::Malformed(text) => text,
        other => panic!("expected Malformed, got {other:?}"),
    }
}
