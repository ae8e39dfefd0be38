//! `WsFeedProvider` against a scripted WebSocket server on loopback, for what the real feed
//! does not send: bars that go back or repeat, a symbol not subscribed, an error message in
//! the stream, a server that stops answering, a message too large. The feed process's own
//! faults are tested in `crates/feed/tests`.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use vigil_core::{MarketDataEvent, SymbolId};
use vigil_providers::feed_wire::{self, ClientMessage};
use vigil_providers::{DataProvider, ProviderError, RejectionCounts, WsFeedConfig, WsFeedProvider};

use vigil_testkit::PATIENCE;

/// What the test tells the scripted server to do.
enum Out {
    Text(String),
    Binary(Vec<u8>),
    Close,
    /// Stop reading (and so stop answering pings).
    Deaf,
}

/// A one-connection server: the usual handshake (unless `hello` replaces the greeting and
/// the server then only sends what it is told), then whatever the test sends.
async fn server(hello: Option<&'static str>) -> (String, mpsc::UnboundedSender<Out>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/stream", listener.local_addr().expect("addr"));
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("handshake");
        if let Some(first) = hello {
            ws.send(Message::text(first)).await.expect("greeting");
        } else {
            ws.send(Message::text(feed_wire::CONNECTED))
                .await
                .expect("connected");
            let mut subscribed = 0;
            while subscribed == 0 {
                let Some(Ok(Message::Text(text))) = ws.next().await else {
                    return;
                };
                match serde_json::from_str::<ClientMessage>(text.as_str()).expect("client message")
                {
                    ClientMessage::Auth { .. } => ws
                        .send(Message::text(feed_wire::AUTHENTICATED))
                        .await
                        .expect("authenticated"),
                    ClientMessage::Subscribe { bars, .. } => {
                        subscribed = bars.len();
                        let frame = feed_wire::subscription_frame(bars.iter().map(String::as_str));
                        ws.send(Message::text(frame)).await.expect("subscription");
                    }
                }
            }
        }
        let mut deaf = false;
        loop {
            let out = if deaf {
                rx.recv().await
            } else {
                tokio::select! {
                    out = rx.recv() => out,
                    // Reading answers pings.
                    got = ws.next() => match got {
                        Some(Ok(_)) => continue,
                        _ => return,
                    },
                }
            };
            let sent = match out {
                None => return,
                Some(Out::Text(t)) => ws.send(Message::text(t)).await,
                Some(Out::Binary(b)) => ws.send(Message::binary(b)).await,
                Some(Out::Close) => ws.close(None).await,
                Some(Out::Deaf) => {
                    deaf = true;
                    Ok(())
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    (url, tx)
}

fn config(url: &str) -> WsFeedConfig {
    let mut c = WsFeedConfig::new(url, "k", "s");
    c.connect_timeout = PATIENCE;
    c.ping_timeout = PATIENCE;
    c.max_wait = Duration::from_millis(100);
    c
}

async fn connected(url: &str) -> WsFeedProvider {
    let mut p = WsFeedProvider::new(config(url));
    p.connect().await.expect("connect");
    p.subscribe(&[(SymbolId(0), "GOOG".into()), (SymbolId(1), "MSFT".into())])
        .await
        .expect("subscribe");
    p
}

fn bar(symbol: &str, day: u32) -> String {
    format!(
        r#"[{{"T":"b","S":"{symbol}","o":10,"h":11,"l":9,"c":10.5,"v":{day},"t":"2024-01-{day:02}T14:30:00Z"}}]"#
    )
}

/// What `next_batch` gave, in order: `Ok(symbol, day)` per bar, `Err(text)` per error.
#[derive(Debug, PartialEq)]
enum Got {
    Bar(u32, u32),
    Malformed(String),
    Stream(String),
}

/// Calls `next_batch` until `n` outcomes are in.
async fn outcomes(p: &mut WsFeedProvider, n: usize) -> Vec<Got> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while got.len() < n {
            let mut events = Vec::new();
            match p.next_batch(16, &mut events).await {
                Ok(more) => {
                    assert!(more, "a live stream does not end");
                    for MarketDataEvent::Bar(b) in events {
                        got.push(Got::Bar(
                            b.symbol.0,
                            b.volume.expect("volume").try_into().expect("day"),
                        ));
                    }
                }
                Err(ProviderError::Malformed(text)) => got.push(Got::Malformed(text)),
                Err(ProviderError::Stream { reason, .. }) => got.push(Got::Stream(reason)),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("the outcomes came in time");
    got
}

fn malformed_containing(got: &Got, needle: &str) -> bool {
    matches!(got, Got::Malformed(text) if text.contains(needle))
}

#[tokio::test]
async fn bars_that_go_back_or_repeat_are_rejected_and_counted_apart() {
    let (url, tx) = server(None).await;
    let mut p = connected(&url).await;
    for frame in [
        bar("GOOG", 3),
        bar("GOOG", 3),
        bar("GOOG", 2),
        bar("MSFT", 2),
        bar("GOOG", 4),
    ] {
        tx.send(Out::Text(frame)).expect("server");
    }
    let got = outcomes(&mut p, 5).await;
    assert_eq!(got[0], Got::Bar(0, 3));
    assert!(
        malformed_containing(
            &got[1],
            "field \"t\": duplicate GOOG bar at 2024-01-03T14:30:00Z"
        ),
        "{got:?}"
    );
    assert!(
        malformed_containing(
            &got[2],
            "GOOG bar at 2024-01-02T14:30:00Z is before the previous bar at 2024-01-03T14:30:00Z"
        ),
        "{got:?}"
    );
    // The payload is in the error.
    assert!(malformed_containing(&got[2], r#"raw ("#), "{got:?}");
    assert_eq!(got[3..], [Got::Bar(1, 2), Got::Bar(0, 4)]);
    assert_eq!(
        p.rejections(),
        RejectionCounts {
            malformed: 0,
            backwards: 1,
            duplicates: 1
        }
    );
    assert_eq!((p.health().errors, p.health().events), (2, 3));
}

#[tokio::test]
async fn a_bad_message_in_a_frame_comes_in_its_place_between_its_neighbours() {
    let (url, tx) = server(None).await;
    let mut p = connected(&url).await;
    let frame = format!(
        "[{},{{\"T\":\"b\",\"S\":\"GOOG\"}},{},{}]",
        &bar("GOOG", 1)[1..bar("GOOG", 1).len() - 1],
        &bar("GOOG", 2)[1..bar("GOOG", 2).len() - 1],
        &bar("AAPL", 2)[1..bar("AAPL", 2).len() - 1],
    );
    tx.send(Out::Text(frame)).expect("server");
    let got = outcomes(&mut p, 4).await;
    assert_eq!(got[0], Got::Bar(0, 1));
    assert!(
        malformed_containing(&got[1], "message 1 of the frame: field \"o\" is missing"),
        "{got:?}"
    );
    assert_eq!(got[2], Got::Bar(0, 2));
    assert!(
        malformed_containing(&got[3], "a bar for AAPL, which is not subscribed"),
        "{got:?}"
    );
    assert_eq!(p.rejections().malformed, 2);
}

#[tokio::test]
async fn control_messages_in_the_stream_are_reported() {
    let (url, tx) = server(None).await;
    let mut p = connected(&url).await;
    tx.send(Out::Text(feed_wire::error_frame(407, "slow client")))
        .expect("server");
    tx.send(Out::Text(feed_wire::CONNECTED.into()))
        .expect("server");
    tx.send(Out::Text(feed_wire::subscription_frame(["GOOG"])))
        .expect("server");
    tx.send(Out::Binary(vec![1, 2, 3])).expect("server");
    tx.send(Out::Text(bar("GOOG", 5))).expect("server");
    let got = outcomes(&mut p, 4).await;
    assert_eq!(
        got[0],
        Got::Stream("the feed sent error 407: slow client".into())
    );
    assert!(
        malformed_containing(
            &got[1],
            "unexpected success \"connected\" message in the stream"
        ),
        "{got:?}"
    );
    assert!(
        malformed_containing(
            &got[2],
            "frame: a binary frame (3 bytes); the stream sends text frames only; raw (6 bytes): 010203"
        ),
        "{got:?}"
    );
    // A fresh subscription confirmation is not an error; the stream goes on.
    assert_eq!(got[3], Got::Bar(0, 5));
    assert!(p.health().connected);
    assert_eq!(p.health().errors, 2);
}

#[tokio::test]
async fn bars_before_a_close_come_first_then_the_stream_error() {
    let (url, tx) = server(None).await;
    let mut p = connected(&url).await;
    tx.send(Out::Text(bar("GOOG", 1))).expect("server");
    tx.send(Out::Close).expect("server");
    let got = outcomes(&mut p, 2).await;
    assert_eq!(got[0], Got::Bar(0, 1));
    assert!(
        matches!(&got[1], Got::Stream(r) if r == "not connected: the feed closed the connection (no close code)"),
        "{got:?}"
    );
    assert!(!p.health().connected);
}

#[tokio::test]
async fn ping_keeps_what_arrives_before_the_pong() {
    let (url, tx) = server(None).await;
    let mut p = connected(&url).await;
    tx.send(Out::Text(bar("GOOG", 1))).expect("server");
    p.ping().await.expect("pong");
    assert_eq!(p.pending(), 1, "the bar sent before the pong");
    assert_eq!(outcomes(&mut p, 1).await, [Got::Bar(0, 1)]);
    assert!(p.health().connected);
}

#[tokio::test]
async fn a_deaf_feed_fails_the_ping_and_drops_the_connection() {
    let (url, tx) = server(None).await;
    let mut c = config(&url);
    c.ping_timeout = Duration::from_millis(200);
    let mut p = WsFeedProvider::new(c);
    p.connect().await.expect("connect");
    p.subscribe(&[(SymbolId(0), "GOOG".into())])
        .await
        .expect("subscribe");
    tx.send(Out::Deaf).expect("server");
    // Sent after the server stopped reading: once it is here, the server is deaf.
    tx.send(Out::Text(bar("GOOG", 1))).expect("server");
    assert_eq!(outcomes(&mut p, 1).await, [Got::Bar(0, 1)]);
    let err = p.ping().await.expect_err("no pong");
    assert!(
        matches!(&err, ProviderError::Stream { reason, .. } if reason == "no pong within 200 ms"),
        "{err:?}"
    );
    assert!(!p.health().connected);
    let got = outcomes(&mut p, 1).await;
    assert_eq!(
        got,
        [Got::Stream("not connected: no pong within 200 ms".into())]
    );
}

#[tokio::test]
async fn a_quiet_feed_gives_an_empty_batch_after_max_wait() {
    let (url, _tx) = server(None).await;
    let mut p = connected(&url).await;
    let mut events = Vec::new();
    let more = tokio::time::timeout(PATIENCE, p.next_batch(8, &mut events))
        .await
        .expect("returns after max_wait");
    assert!(more.expect("quiet is not an error"));
    assert!(events.is_empty());
    assert!(p.health().connected);
}

#[tokio::test]
async fn a_message_larger_than_allowed_breaks_the_connection() {
    let (url, tx) = server(None).await;
    let mut c = config(&url);
    c.max_message_bytes = 1024;
    let mut p = WsFeedProvider::new(c);
    p.subscribe(&[(SymbolId(0), "GOOG".into())])
        .await
        .expect("subscribed at connect");
    p.connect().await.expect("connect");
    tx.send(Out::Text(format!("[{}]", "1,".repeat(1000) + "1")))
        .expect("server");
    let got = outcomes(&mut p, 1).await;
    assert!(
        matches!(&got[0], Got::Stream(r) if r.starts_with("connection failed: ")),
        "{got:?}"
    );
    assert!(!p.health().connected);
}

#[tokio::test]
async fn connect_fails_naming_what_the_feed_answered() {
    let (url, _tx) = server(Some(
        r#"[{"T":"error","code":406,"msg":"connection limit exceeded"}]"#,
    ))
    .await;
    let mut p = WsFeedProvider::new(config(&url));
    let err = p.connect().await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "data provider feed:{url}: cannot connect: waiting for \"connected\": the feed \
             answered error 406: connection limit exceeded"
        )
    );
    assert!(!p.health().connected);

    let (url, _tx) = server(Some("not json")).await;
    let mut c = config(&url);
    c.connect_timeout = Duration::from_millis(300);
    let mut p = WsFeedProvider::new(c);
    let err = p.connect().await.expect_err("no connected message");
    assert!(
        err.to_string()
            .contains("waiting for \"connected\": no answer within 300 ms"),
        "{err}"
    );
    // The garbage greeting was counted and is there to read.
    assert_eq!(p.health().errors, 1);
    let got = outcomes(&mut p, 1).await;
    assert!(malformed_containing(&got[0], "frame: not JSON"), "{got:?}");
}
