//! `WsFeedProvider` against the real feed server on loopback: normal bars, and each fault.
//! Every wait is for an actual message, bounded by a timeout; bars move only when the test
//! steps the feed.

mod common;

use std::time::{Duration, Instant};

use common::{
    Feed, KEY_ID, connected, csv_bars, goog, malformed, options, read_bars, read_error, runtime,
    within, write_days,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use vigil_core::SymbolId;
use vigil_feed::{FeedServer, Pacing};
use vigil_providers::{DataProvider, ProviderError, RejectionCounts, WsFeedConfig, WsFeedProvider};

#[test]
fn streams_the_csv_bars_exactly_one_per_step() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    assert_eq!(p.name(), format!("feed:{}", feed.stream_url));
    assert!(p.health().connected);
    assert!(p.validates_bars());
    assert_eq!(feed.get("/_feed")["subscribed"], 1);

    feed.step(5);
    let bars = read_bars(&rt, &mut p, 5);
    let expected = csv_bars(&goog(), 5);
    assert_eq!(bars, expected);
    for (got, want) in bars.iter().zip(&expected) {
        // The same digits: nothing went through a float on the way.
        assert_eq!(got.close.to_string(), want.close.to_string());
        assert_eq!(
            got.volume.map(|v| v.to_string()),
            want.volume.map(|v| v.to_string())
        );
    }
    let health = p.health();
    assert_eq!(
        (health.events, health.errors, health.last_event_at),
        (5, 0, Some(expected[4].ts))
    );
    within(&rt, "ping", p.ping()).expect("ping");
    assert_eq!(p.rejections(), RejectionCounts::default());
    assert_eq!(feed.get("/_feed")["bars_sent"], 5);

    // Nothing more is sent: the next call comes back empty after max_wait.
    let mut events = Vec::new();
    assert!(within(&rt, "quiet", p.next_batch(8, &mut events)).expect("quiet"));
    assert!(events.is_empty());
}

#[test]
fn a_symbol_the_feed_does_not_serve_is_unknown() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = feed.provider();
    within(&rt, "connect", p.connect()).expect("connect");
    let err = within(
        &rt,
        "subscribe",
        p.subscribe(&[(SymbolId(0), "GOOG".into()), (SymbolId(1), "MSFT".into())]),
    )
    .expect_err("MSFT is not served");
    assert!(
        matches!(&err, ProviderError::UnknownSymbol { symbol, .. } if symbol == "MSFT"),
        "{err:?}"
    );
    assert_eq!(feed.get("/_feed")["subscribed"], 1, "GOOG still is");
}

#[test]
fn the_feeds_credentials_are_checked() {
    let feed = Feed::with_credentials(options(vec![("GOOG".into(), goog())], Pacing::Manual));
    let rt = runtime();
    let mut config = WsFeedConfig::new(&feed.stream_url, KEY_ID, "wrong");
    config.connect_timeout = common::PATIENCE;
    let mut wrong = WsFeedProvider::new(config);
    let err = within(&rt, "connect", wrong.connect()).expect_err("wrong secret");
    assert!(matches!(err, ProviderError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("authenticating: the feed answered error 402: auth failed"),
        "{err}"
    );
    assert!(!wrong.health().connected);
    connected(&rt, &feed);
    assert_eq!(feed.status("GET", "/_feed").0, 200);
    let (status, _) = vigil_testkit::http_json(&feed.control_url, "GET", "/_feed", &[], None);
    assert_eq!(status, 401, "the control endpoints want the key too");
}

#[test]
fn no_feed_listening_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let rt = runtime();
    let mut p = WsFeedProvider::new(WsFeedConfig::new(
        format!("ws://127.0.0.1:{port}/stream"),
        "k",
        "s",
    ));
    let err = within(&rt, "connect", p.connect()).expect_err("nothing listens");
    assert!(matches!(err, ProviderError::Connect { .. }), "{err:?}");
    assert!(!p.health().connected);
    let err = within(&rt, "ping", p.ping()).expect_err("not connected");
    assert!(err.to_string().contains("not connected"), "{err}");
}

#[test]
fn a_stall_keeps_the_connection_and_sends_nothing_until_cleared() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    feed.step(2);
    let first = read_bars(&rt, &mut p, 2);

    let answer = feed.post("/_faults/stall");
    assert_eq!(answer["faults"]["stalled"], true);
    let step = feed.post("/_feed/step?n=3");
    assert_eq!(
        (&step["sent"], &step["held"]),
        (&0.into(), &"stalled".into())
    );
    // The feed still answers pings, after anything it sent before: nothing came.
    within(&rt, "ping", p.ping()).expect("a stalled feed answers pings");
    assert_eq!(p.pending(), 0);
    let mut events = Vec::new();
    assert!(within(&rt, "quiet", p.next_batch(8, &mut events)).expect("quiet"));
    assert!(events.is_empty());
    let health = p.health();
    assert!(health.connected);
    // Staleness: the last bar's time stands still.
    assert_eq!(
        (health.events, health.last_event_at),
        (2, Some(first[1].ts))
    );

    feed.post("/_faults/clear");
    feed.step(1);
    // The replay was frozen, not skipped: the third bar comes next.
    assert_eq!(read_bars(&rt, &mut p, 1), csv_bars(&goog(), 3)[2..]);
}

#[test]
fn a_disconnect_is_a_stream_error_and_a_reconnect_resumes() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    let expected = csv_bars(&goog(), 4);
    feed.step(2);
    assert_eq!(read_bars(&rt, &mut p, 2), expected[..2]);

    assert_eq!(feed.post("/_faults/disconnect")["disconnected"], 1);
    let err = read_error(&rt, &mut p);
    assert!(matches!(err, ProviderError::Stream { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the feed closed the connection (code 1001: fault injection: disconnect)"),
        "{err}"
    );
    assert!(!p.health().connected);
    let again = read_error(&rt, &mut p);
    assert!(again.to_string().contains("not connected"), "{again}");

    // connect subscribes again to what was subscribed.
    within(&rt, "reconnect", p.connect()).expect("reconnect");
    assert!(p.health().connected);
    assert_eq!(feed.get("/_feed")["subscribed"], 1);
    feed.step(1);
    assert_eq!(read_bars(&rt, &mut p, 1), expected[2..3]);

    // Without a close frame.
    assert_eq!(
        feed.post("/_faults/disconnect?abrupt=true")["disconnected"],
        1
    );
    let err = read_error(&rt, &mut p);
    assert!(matches!(err, ProviderError::Stream { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the feed dropped the connection without a close frame"),
        "{err}"
    );
    assert!(!p.health().connected);
    within(&rt, "reconnect", p.connect()).expect("reconnect");
    feed.step(1);
    assert_eq!(read_bars(&rt, &mut p, 1), expected[3..4]);
    assert_eq!(
        p.health().errors,
        0,
        "a disconnect is not a malformed message"
    );
}

#[test]
fn a_slow_feed_delays_each_bar() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    assert_eq!(feed.post("/_faults/slow?ms=150")["faults"]["slow_ms"], 150);
    let started = Instant::now();
    feed.step(2);
    // The step answers once both bars are on their way, each after its delay.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(read_bars(&rt, &mut p, 2), csv_bars(&goog(), 2));
    // Cleared: the feed says so, and the next bar goes out (no upper bound on wall time:
    // a loaded machine may take any time).
    let cleared = feed.post("/_faults/clear");
    assert_eq!(
        cleared["faults"]["slow_ms"].as_u64().unwrap_or(0),
        0,
        "{cleared}"
    );
    feed.step(1);
    read_bars(&rt, &mut p, 1);
}

#[test]
fn a_changed_format_is_rejected_message_by_message_with_its_payload() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    let answer = feed.post("/_faults/format");
    assert_eq!(answer["faults"]["format"], "renamed");
    feed.step(2);
    for _ in 0..2 {
        let text = malformed(read_error(&rt, &mut p));
        assert!(
            text.starts_with(&format!(
                "feed:{}: message rejected: message 0 of the frame: unknown field \"type\"; raw (",
                feed.stream_url
            )),
            "{text}"
        );
        assert!(
            text.contains(r#"{"type":"bar","sym":"GOOG","open":"#),
            "{text}"
        );
    }
    assert_eq!(p.health().errors, 2);
    assert_eq!(p.health().events, 0);

    feed.post("/_faults/format?kind=strings");
    feed.step(1);
    let text = malformed(read_error(&rt, &mut p));
    assert!(
        text.contains(r#"field "o": expected a number, found a string"#),
        "{text}"
    );
    assert!(text.contains(r#""o":"110.75""#), "{text}");
    assert_eq!(
        p.rejections(),
        RejectionCounts {
            malformed: 3,
            backwards: 0,
            duplicates: 0
        }
    );

    feed.post("/_faults/clear");
    feed.step(1);
    assert_eq!(read_bars(&rt, &mut p, 1), csv_bars(&goog(), 4)[3..]);
    assert!(
        p.health().connected,
        "rejections do not break the connection"
    );
    assert_eq!(p.health().errors, 3);
}

#[test]
fn garbage_is_rejected_frame_by_frame() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    feed.post("/_faults/garbage");
    feed.step(3);
    let texts: Vec<String> = (0..3).map(|_| malformed(read_error(&rt, &mut p))).collect();
    assert!(
        texts[0].contains("frame: not JSON: ") && texts[0].contains(r"\u{1}\u{2}garbage"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("frame: a binary frame (12 bytes)") && texts[1].contains("00fffe80"),
        "{}",
        texts[1]
    );
    assert!(
        texts[2].contains("frame: not JSON: EOF while parsing")
            && texts[2].contains(r#"[{"T":"b","S":"GOOG""#),
        "{}",
        texts[2]
    );
    assert_eq!(p.health().errors, 3);
    feed.post("/_faults/clear");
    feed.step(1);
    assert_eq!(read_bars(&rt, &mut p, 1), csv_bars(&goog(), 4)[3..]);
}

#[test]
fn a_spike_still_parses_and_lasts_one_bar() {
    let feed = Feed::manual_goog();
    let rt = runtime();
    let mut p = connected(&rt, &feed);
    let answer = feed.post("/_faults/spike?symbol=GOOG&pct=50");
    assert_eq!(answer["faults"]["spike"]["pct"], "50");
    feed.step(2);
    let bars = read_bars(&rt, &mut p, 2);
    let csv = csv_bars(&goog(), 2);
    let up = |d: Decimal| d * dec!(1.5);
    assert_eq!(
        (bars[0].open, bars[0].high, bars[0].low, bars[0].close),
        (
            up(csv[0].open),
            up(csv[0].high),
            up(csv[0].low),
            up(csv[0].close)
        )
    );
    assert_eq!(bars[0].volume, csv[0].volume);
    assert_eq!(bars[1], csv[1], "one bar only");
    assert!(feed.get("/_faults")["spike"].is_null());
    let (status, body) = feed.status("POST", "/_faults/spike?symbol=MSFT&pct=5");
    assert_eq!(status, 404, "{body}");
    let (status, body) = feed.status("POST", "/_faults/spike?symbol=GOOG&pct=-100");
    assert_eq!(status, 400, "{body}");
}

#[test]
fn the_feed_paces_bars_as_fast_as_the_client_reads_and_at_an_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let days = write_days(dir.path(), "X_1d.csv", 40);
    let rt = runtime();
    for pacing in [
        Pacing::AsFastAsRead,
        Pacing::Interval(Duration::from_millis(5)),
    ] {
        let feed = Feed::start(options(vec![("X".into(), days.clone())], pacing));
        let mut p = feed.provider();
        within(&rt, "connect", p.connect()).expect("connect");
        within(&rt, "subscribe", p.subscribe(&[(SymbolId(0), "X".into())])).expect("subscribe");
        let bars = read_bars(&rt, &mut p, 40);
        assert_eq!(bars, csv_bars(&days, 40), "{pacing:?}");
        // The replay ends once it finds no 41st bar.
        within(&rt, "the end", async {
            while feed.get("/_feed")["ended"].is_null() {
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(feed.get("/_feed")["ended"], "the end of the data");
    }
}

#[test]
fn a_feed_of_two_symbols_sends_each_client_what_it_subscribed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write_days(dir.path(), "A_1d.csv", 3);
    let b = write_days(dir.path(), "B_1d.csv", 3);
    let feed = Feed::start(options(
        vec![("A".into(), a.clone()), ("B".into(), b)],
        Pacing::Manual,
    ));
    let rt = runtime();
    let mut only_a = feed.provider();
    within(&rt, "connect", only_a.connect()).expect("connect");
    within(
        &rt,
        "subscribe",
        only_a.subscribe(&[(SymbolId(7), "A".into())]),
    )
    .expect("A");
    let mut both = feed.provider();
    within(&rt, "connect", both.connect()).expect("connect");
    within(
        &rt,
        "subscribe",
        both.subscribe(&[(SymbolId(0), "A".into()), (SymbolId(1), "B".into())]),
    )
    .expect("A and B");
    // Merged in time order, ties by symbol: A1 B1 A2 B2.
    feed.step(4);
    let got = read_bars(&rt, &mut both, 4);
    let symbols: Vec<u32> = got.iter().map(|b| b.symbol.0).collect();
    assert_eq!(symbols, vec![0, 1, 0, 1]);
    let got = read_bars(&rt, &mut only_a, 2);
    assert_eq!(
        got.iter().map(|b| (b.symbol, b.ts)).collect::<Vec<_>>(),
        csv_bars(&a, 2)
            .iter()
            .map(|b| (SymbolId(7), b.ts))
            .collect::<Vec<_>>()
    );
}

/// The stream carries every bar's volume: a CSV file without a volume column is refused at
/// start, naming the file, rather than served with a made-up zero that no order could fill
/// against downstream.
#[test]
fn a_csv_file_without_a_volume_column_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("novol.csv");
    std::fs::write(&path, "timestamp,open,high,low,close\n2024-01-02,1,2,1,2\n").expect("write");
    let opts = options(vec![("GOOG".into(), path.clone())], Pacing::Manual);
    let err = actix_web::rt::System::new()
        .block_on(async move { FeedServer::start(opts).await.map(|_| ()) })
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "market data: {}: no volume column: the stream sends every bar's volume (`v`); add one",
            path.display()
        )
    );
}
