//! Market data over a WebSocket that speaks Alpaca's market-data stream v2 (`vigil feed`, see
//! [`feed_wire`](crate::feed_wire) and `docs/feed.md`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vigil_core::{Bar, FutureGuard, MarketDataEvent, Symbol, SymbolId};

use crate::feed_wire::{
    self, BarValidator, ClientMessage, FrameItem, ServerMessage, WireError, WireProblem,
};
use crate::traits::{DataProvider, ProviderError, ProviderHealth};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where the feed is and how long to wait for it.
#[derive(Clone)]
pub struct WsFeedConfig {
    /// `ws://HOST:PORT/stream`.
    pub url: String,
    /// The API key id sent in the `auth` message.
    pub key_id: String,
    /// The API secret sent in the `auth` message.
    pub secret: String,
    /// The longest `connect` (and `subscribe`) waits for each answer of the feed.
    pub connect_timeout: Duration,
    /// The longest `ping` waits for its pong; no pong in time drops the connection.
    pub ping_timeout: Duration,
    /// The longest `next_batch` waits for a message before it returns with none, so that
    /// its caller gets its turn (to ping, to notice the feed has gone quiet).
    pub max_wait: Duration,
    /// The largest message accepted; a larger one breaks the connection.
    pub max_message_bytes: usize,
    /// Rejects bars from the future (none: not checked here).
    pub future: Option<FutureGuard>,
}

impl WsFeedConfig {
    /// Creates a config for `url` with the given key and these defaults: connect 10 s,
    /// ping 5 s, next_batch waits at most 1 s, messages up to 1 MiB.
    pub fn new(
        url: impl Into<String>,
        key_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            key_id: key_id.into(),
            secret: secret.into(),
            connect_timeout: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(5),
            max_wait: Duration::from_secs(1),
            max_message_bytes: 1 << 20,
            future: None,
        }
    }

    /// Rejects bars stamped beyond `guard`'s clock and tolerance, as malformed messages.
    pub fn with_future_guard(mut self, guard: FutureGuard) -> Self {
        self.future = Some(guard);
        self
    }
}

impl fmt::Debug for WsFeedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsFeedConfig")
            .field("url", &self.url)
            .field("key_id", &self.key_id)
            .field("secret", &"[REDACTED]")
            .field("connect_timeout", &self.connect_timeout)
            .field("ping_timeout", &self.ping_timeout)
            .field("max_wait", &self.max_wait)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("future", &self.future)
            .finish()
    }
}

/// The messages a [`WsFeedProvider`] rejected, by cause. Their sum is
/// [`ProviderHealth::errors`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectionCounts {
    /// Not a valid message (bad JSON, a changed format, an impossible bar, a symbol not
    /// subscribed, a control message in the middle of the stream, a binary frame).
    pub malformed: u64,
    /// A bar older than its symbol's previous bar.
    pub backwards: u64,
    /// A bar with the same time as its symbol's previous bar.
    pub duplicates: u64,
}

/// What arrived and waits for `next_batch`, in arrival order.
enum Pending {
    Bar(Bar),
    Rejected(WireError),
    /// An error message from the feed in the middle of the stream.
    FeedError {
        code: u64,
        msg: String,
    },
}

/// A control message awaited by `connect` or `subscribe`.
#[derive(Debug)]
enum Control {
    Connected,
    Authenticated,
    Subscription(Vec<String>),
    Error { code: u64, msg: String },
}

impl Control {
    fn describe(&self) -> String {
        match self {
            Self::Connected => "success \"connected\"".into(),
            Self::Authenticated => "success \"authenticated\"".into(),
            Self::Subscription(bars) => format!("subscription to {bars:?}"),
            Self::Error { code, msg } => format!("error {code}: {msg}"),
        }
    }
}

/// A [`DataProvider`] reading bars from a WebSocket feed speaking Alpaca's market-data
/// stream v2 (`vigil feed`, or the same protocol elsewhere over `ws://`).
///
/// - `connect` opens the socket, waits for `connected`, authenticates, and subscribes again
///   to the symbols of earlier `subscribe` calls (so that a reconnect resumes the stream);
///   every step waits at most `connect_timeout`.
/// - `subscribe` asks for bars of the symbols and checks that the feed's `subscription`
///   answer names every one (a symbol it leaves out is [`ProviderError::UnknownSymbol`]).
/// - `next_batch` hands over the bars that arrived, in arrival order, waiting at most
///   `max_wait` for the first; `Ok(true)` with nothing added means the feed was quiet for
///   that long. A live stream has no end: it never returns `Ok(false)`.
/// - Every message that cannot be trusted (see [`feed_wire::parse_frame`]), every bar that
///   goes back in time or repeats its symbol's previous time ([`BarValidator`]), and every
///   bar of a symbol not subscribed is **rejected, never skipped**: it is counted in
///   [`ProviderHealth::errors`] (and by cause in [`rejections`](Self::rejections)) when it
///   arrives, and `next_batch` returns it, in its place in the stream, as one
///   [`ProviderError::Malformed`] whose text names the problem, the field and the raw
///   payload cut to 256 bytes. The bars before it come in the call before; the call after
///   it goes on with the stream. An `error` message from the feed mid-stream is a
///   [`ProviderError::Stream`] (the connection stays as it is).
/// - A closed or broken connection is [`ProviderError::Stream`] (from then on on every
///   call, after the bars that arrived before it) and `health().connected` turns false
///   until `connect` succeeds again; bars and rejections already received are kept.
/// - `ping` sends a WebSocket ping and waits for its pong; what arrives meanwhile is kept
///   for `next_batch`. No pong within `ping_timeout` drops the connection. A feed that
///   answers pings but sends no bars (a stall) shows in `health().last_event_at`, which
///   stops moving.
///
/// Every call is cancel safe: what was read before a call is dropped stays queued.
pub struct WsFeedProvider {
    name: String,
    config: WsFeedConfig,
    socket: Option<Socket>,
    /// Why the connection is down, for the errors of calls made meanwhile.
    down: Option<String>,
    /// Subscribed symbols by name, in the order subscribed.
    symbols: Vec<(Symbol, SymbolId)>,
    ids: HashMap<Box<str>, SymbolId>,
    validator: BarValidator,
    pending: VecDeque<Pending>,
    /// Control messages, kept only while `connect` or `subscribe` awaits one.
    controls: VecDeque<Control>,
    awaiting: bool,
    ping_seq: u64,
    /// The payload of the ping awaiting its pong, and whether it came.
    ping: Option<([u8; 8], bool)>,
    health: ProviderHealth,
    rejections: RejectionCounts,
}

impl fmt::Debug for WsFeedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsFeedProvider")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("connected", &self.socket.is_some())
            .field("symbols", &self.symbols)
            .field("pending", &self.pending.len())
            .field("health", &self.health)
            .field("rejections", &self.rejections)
            .finish_non_exhaustive()
    }
}

impl WsFeedProvider {
    /// Creates a provider for the feed at `config.url`, named `feed:URL` in logs. Nothing
    /// is opened until `connect`.
    pub fn new(config: WsFeedConfig) -> Self {
        let validator = match config.future.clone() {
            Some(guard) => BarValidator::new().with_future_guard(guard),
            None => BarValidator::new(),
        };
        Self {
            name: format!("feed:{}", config.url),
            config,
            socket: None,
            down: Some("not connected yet".into()),
            symbols: Vec::new(),
            ids: HashMap::new(),
            validator,
            pending: VecDeque::new(),
            controls: VecDeque::new(),
            awaiting: false,
            ping_seq: 0,
            ping: None,
            health: ProviderHealth::default(),
            rejections: RejectionCounts::default(),
        }
    }

    /// Returns the rejected messages so far, by cause.
    pub fn rejections(&self) -> RejectionCounts {
        self.rejections
    }

    /// Returns how many bars and rejections have arrived and wait for `next_batch`.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn connect_error(&self, reason: impl fmt::Display) -> ProviderError {
        ProviderError::Connect {
            provider: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn stream_error(&self, reason: impl fmt::Display) -> ProviderError {
        ProviderError::Stream {
            provider: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// The error of a call that needs the connection while it is down.
    fn down_error(&self) -> ProviderError {
        self.stream_error(format_args!(
            "not connected: {}",
            self.down.as_deref().unwrap_or("closed")
        ))
    }

    /// Drops the connection, remembering why; returns the error that reports it.
    fn lose(&mut self, reason: String) -> ProviderError {
        self.socket = None;
        self.health.connected = false;
        let error = self.stream_error(&reason);
        self.down = Some(reason);
        error
    }

    fn reject(&mut self, error: WireError) {
        match error.problem() {
            WireProblem::Backwards { .. } => self.rejections.backwards += 1,
            WireProblem::Duplicate { .. } => self.rejections.duplicates += 1,
            _ => self.rejections.malformed += 1,
        }
        self.health.errors += 1;
        self.pending.push_back(Pending::Rejected(error));
    }

    /// Takes in one WebSocket message. Returns the error when it ended the connection.
    fn on_message(&mut self, message: Message) -> Result<(), ProviderError> {
        match message {
            Message::Text(text) => {
                self.on_text(text.as_str());
                Ok(())
            }
            Message::Binary(bytes) => {
                self.reject(WireError::binary(&bytes));
                Ok(())
            }
            Message::Pong(payload) => {
                if let Some((sent, arrived)) = &mut self.ping
                    && payload.as_ref() == sent.as_slice()
                {
                    *arrived = true;
                }
                Ok(())
            }
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Frame(_) => Ok(()),
            Message::Close(frame) => {
                let reason = match frame {
                    Some(f) => format!(
                        "the feed closed the connection (code {}: {})",
                        u16::from(f.code),
                        if f.reason.is_empty() {
                            "no reason given"
                        } else {
                            f.reason.as_str()
                        }
                    ),
                    None => "the feed closed the connection (no close code)".into(),
                };
                Err(self.lose(reason))
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        // The parser hands over each message in turn; bars are checked and queued as they
        // come, so that a frame allocates nothing per bar.
        feed_wire::parse_frame(text, |item| self.on_item(item));
    }

    fn on_item(&mut self, item: FrameItem<'_>) {
        let message = match item.message {
            Ok(m) => m,
            Err(e) => return self.reject(e),
        };
        let control = match message {
            ServerMessage::Bar(wire) => {
                let Some(&id) = self.ids.get(wire.symbol.as_ref()) else {
                    let problem = WireProblem::UnsubscribedSymbol {
                        symbol: wire.symbol.into_owned(),
                    };
                    return self.reject(WireError::new(problem, item.index, item.raw));
                };
                match self.validator.check(id, &wire.symbol, wire.ts) {
                    Ok(()) => self.pending.push_back(Pending::Bar(wire.to_bar(id))),
                    Err(problem) => self.reject(WireError::new(problem, item.index, item.raw)),
                }
                return;
            }
            ServerMessage::Connected => Control::Connected,
            ServerMessage::Authenticated => Control::Authenticated,
            ServerMessage::Subscription { bars } => {
                Control::Subscription(bars.into_iter().map(|s| s.into_owned()).collect())
            }
            ServerMessage::Error { code, msg } => Control::Error { code, msg },
        };
        if self.awaiting {
            self.controls.push_back(control);
            return;
        }
        self.on_control(control, item.index, item.raw);
    }

    /// Handles a control message nobody awaits.
    fn on_control(&mut self, control: Control, index: Option<usize>, raw: &str) {
        match control {
            // A fresh confirmation of what is subscribed: nothing to do.
            Control::Subscription(_) => {}
            Control::Error { code, msg } => {
                self.pending.push_back(Pending::FeedError { code, msg })
            }
            Control::Connected => self.reject(WireError::new(
                WireProblem::Unexpected {
                    what: "success \"connected\"",
                },
                index,
                raw,
            )),
            Control::Authenticated => self.reject(WireError::new(
                WireProblem::Unexpected {
                    what: "success \"authenticated\"",
                },
                index,
                raw,
            )),
        }
    }

    /// Reads one message, waiting until `deadline`. `Ok(false)`: nothing came in time.
    async fn read(&mut self, deadline: Instant) -> Result<bool, ProviderError> {
        let Some(socket) = self.socket.as_mut() else {
            return Err(self.down_error());
        };
        match timeout_at(deadline, socket.next()).await {
            Err(_elapsed) => Ok(false),
            Ok(None) => Err(self.lose("the feed closed the connection".into())),
            Ok(Some(Err(e))) => Err(self.lose(describe(&e))),
            Ok(Some(Ok(message))) => self.on_message(message).map(|()| true),
        }
    }

    /// Reads up to `limit` messages that have already arrived, without waiting (a feed
    /// that sends as fast as it is read would otherwise keep this going). Errors stay for
    /// the next call to find (the connection is marked down).
    fn read_ready(&mut self, limit: usize) {
        for _ in 0..limit {
            let Some(socket) = self.socket.as_mut() else {
                return;
            };
            let result = match socket.next().now_or_never() {
                None => return,
                Some(None) => Err(self.lose("the feed closed the connection".into())),
                Some(Some(Err(e))) => Err(self.lose(describe(&e))),
                Some(Some(Ok(message))) => self.on_message(message),
            };
            if result.is_err() {
                // The connection is down and `down` says why: the next call reports it.
                return;
            }
        }
    }

    async fn send(&mut self, message: &ClientMessage) -> Result<(), ProviderError> {
        let text = serde_json::to_string(message)
            .map_err(|e| self.connect_error(format_args!("cannot encode a message: {e}")))?;
        let Some(socket) = self.socket.as_mut() else {
            return Err(self.down_error());
        };
        match socket.send(Message::text(text)).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.lose(describe(&e))),
        }
    }

    /// Waits until `deadline` for the next control message, while bars and rejections go
    /// to `pending` as usual; `step` names what is awaited in errors.
    async fn control(&mut self, deadline: Instant, step: &str) -> Result<Control, ProviderError> {
        self.awaiting = true;
        let result = loop {
            if let Some(control) = self.controls.pop_front() {
                break Ok(control);
            }
            match self.read(deadline).await {
                Ok(true) => {}
                Ok(false) => {
                    break Err(format!(
                        "{step}: no answer within {} ms",
                        self.config.connect_timeout.as_millis()
                    ));
                }
                Err(e) => break Err(format!("{step}: {e}")),
            }
        };
        self.awaiting = false;
        // Control messages behind the awaited one are handled as in the stream.
        while let Some(control) = self.controls.pop_front() {
            let raw = control.describe();
            self.on_control(control, None, &raw);
        }
        result.map_err(|reason| self.connect_error(reason))
    }

    /// Waits for `expected`; any other control message (an `error` above all) fails the
    /// step naming it.
    async fn await_control(
        &mut self,
        deadline: Instant,
        step: &str,
        expected: fn(&Control) -> bool,
    ) -> Result<Control, ProviderError> {
        let control = self.control(deadline, step).await?;
        if expected(&control) {
            Ok(control)
        } else {
            Err(self.connect_error(format_args!(
                "{step}: the feed answered {}",
                control.describe()
            )))
        }
    }

    /// Sends the subscription to every symbol held and checks the answer names them all.
    async fn send_subscription(&mut self, deadline: Instant) -> Result<(), ProviderError> {
        let bars = self.symbols.iter().map(|(s, _)| s.to_string()).collect();
        self.send(&ClientMessage::Subscribe {
            bars,
            trades: Vec::new(),
            quotes: Vec::new(),
        })
        .await?;
        let Control::Subscription(confirmed) = self
            .await_control(deadline, "subscribing", |c| {
                matches!(c, Control::Subscription(_))
            })
            .await?
        else {
            return Err(self.connect_error("subscribing: no subscription answer"));
        };
        for (symbol, _) in &self.symbols {
            if !confirmed.iter().any(|c| c == symbol.as_str()) {
                return Err(ProviderError::UnknownSymbol {
                    provider: self.name.clone(),
                    symbol: symbol.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn open(&mut self) -> Result<(), ProviderError> {
        let deadline = Instant::now() + self.config.connect_timeout;
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(self.config.max_message_bytes))
            .max_frame_size(Some(self.config.max_message_bytes));
        let connecting = tokio_tungstenite::connect_async_with_config(
            self.config.url.as_str(),
            Some(ws_config),
            true,
        );
        let (socket, _response) = match timeout_at(deadline, connecting).await {
            Err(_elapsed) => {
                return Err(self.connect_error(format_args!(
                    "no WebSocket handshake within {} ms",
                    self.config.connect_timeout.as_millis()
                )));
            }
            Ok(Err(e)) => return Err(self.connect_error(describe(&e))),
            Ok(Ok(opened)) => opened,
        };
        self.socket = Some(socket);
        self.down = None;
        self.controls.clear();
        self.ping = None;
        self.await_control(deadline, "waiting for \"connected\"", |c| {
            matches!(c, Control::Connected)
        })
        .await?;
        self.send(&ClientMessage::Auth {
            key: self.config.key_id.clone(),
            secret: self.config.secret.clone(),
        })
        .await?;
        self.await_control(deadline, "authenticating", |c| {
            matches!(c, Control::Authenticated)
        })
        .await?;
        if !self.symbols.is_empty() {
            self.send_subscription(deadline).await?;
        }
        Ok(())
    }

    /// Moves queued bars into `out` until `max` are added or something else is next.
    fn deliver(&mut self, max: usize, added: &mut usize, out: &mut Vec<MarketDataEvent>) {
        while *added < max {
            let Some(Pending::Bar(bar)) = self.pending.front() else {
                return;
            };
            self.health.events += 1;
            self.health.last_event_at = Some(bar.ts);
            out.push(MarketDataEvent::Bar(*bar));
            *added += 1;
            self.pending.pop_front();
        }
    }

    /// Takes the rejection or feed error at the front of the queue, as the error to
    /// report.
    fn take_failure(&mut self) -> Option<ProviderError> {
        match self.pending.front()? {
            Pending::Bar(_) => return None,
            Pending::Rejected(_) | Pending::FeedError { .. } => {}
        }
        match self.pending.pop_front()? {
            Pending::Rejected(e) => Some(ProviderError::Malformed(format!(
                "{}: message rejected: {e}",
                self.name
            ))),
            Pending::FeedError { code, msg } => {
                Some(self.stream_error(format_args!("the feed sent error {code}: {msg}")))
            }
            Pending::Bar(_) => None,
        }
    }
}

/// Says what a WebSocket error means for the connection.
fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the connection is closed".into()
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => "the feed dropped the connection without a close frame".into(),
        other => format!("connection failed: {other}"),
    }
}

#[async_trait]
impl DataProvider for WsFeedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    /// Opens (or reopens) the connection: handshake, `connected`, `auth`, and the
    /// subscription of every symbol subscribed before.
    async fn connect(&mut self) -> Result<(), ProviderError> {
        self.socket = None;
        self.health.connected = false;
        match self.open().await {
            Ok(()) => {
                self.health.connected = true;
                self.down = None;
                Ok(())
            }
            Err(e) => {
                self.socket = None;
                self.health.connected = false;
                self.down = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Adds `symbols` to the subscription; when connected, asks the feed and checks its
    /// answer, else the next `connect` does.
    async fn subscribe(&mut self, symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        for (id, symbol) in symbols {
            if let Err(reason) = feed_wire::check_symbol(symbol.as_str()) {
                return Err(self.connect_error(format_args!("symbol {symbol:?}: {reason}")));
            }
            if !self.ids.contains_key(symbol.as_str()) {
                self.ids.insert(symbol.as_str().into(), *id);
                self.symbols.push((symbol.clone(), *id));
            }
        }
        if self.socket.is_none() || self.symbols.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.config.connect_timeout;
        self.send_subscription(deadline).await
    }

    /// Sends a WebSocket ping and waits for its pong.
    async fn ping(&mut self) -> Result<(), ProviderError> {
        if self.socket.is_none() {
            return Err(self.down_error());
        }
        self.ping_seq += 1;
        let payload = self.ping_seq.to_be_bytes();
        self.ping = Some((payload, false));
        let sent = match self.socket.as_mut() {
            Some(socket) => socket.send(Message::Ping(payload.to_vec().into())).await,
            None => return Err(self.down_error()),
        };
        if let Err(e) = sent {
            return Err(self.lose(describe(&e)));
        }
        let deadline = Instant::now() + self.config.ping_timeout;
        loop {
            if matches!(self.ping, Some((_, true))) {
                self.ping = None;
                return Ok(());
            }
            if !self.read(deadline).await? {
                return Err(self.lose(format!(
                    "no pong within {} ms",
                    self.config.ping_timeout.as_millis()
                )));
            }
        }
    }

    async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        let max = max.max(1);
        let mut added = 0;
        let deadline = Instant::now() + self.config.max_wait;
        loop {
            self.deliver(max, &mut added, out);
            if added > 0 {
                if added < max {
                    // Take whatever else has already arrived, without waiting for more; a
                    // rejection among it waits for the next call.
                    self.read_ready(max - added);
                    self.deliver(max, &mut added, out);
                }
                return Ok(true);
            }
            if let Some(e) = self.take_failure() {
                return Err(e);
            }
            if self.socket.is_none() {
                return Err(self.down_error());
            }
            if !self.read(deadline).await? {
                return Ok(true);
            }
        }
    }

    fn health(&self) -> ProviderHealth {
        self.health.clone()
    }

    /// Every bar has passed [`Bar::check`](vigil_core::Bar::check) in the parser.
    fn validates_bars(&self) -> bool {
        true
    }

    /// A rejected message is one message: the stream goes on after it.
    fn rejects_messages(&self) -> bool {
        true
    }

    /// Bars arrive as the feed sends them.
    fn live(&self) -> bool {
        true
    }
}
