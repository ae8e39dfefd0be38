//! The feed's listener: the WebSocket stream at `/stream`, the replay's pacing and stepping
//! (`/_feed`), and fault injection (`/_faults`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::{Notify, watch};
use vigil_core::{MarketDataEvent, SymbolId};
use vigil_http::{HttpService, StopMode};
use vigil_providers::alpaca_wire::{KEY_ID_HEADER, SECRET_KEY_HEADER};
use vigil_providers::feed_wire::{self, ClientMessage};
use vigil_providers::{CsvBarReader, CsvReplayProvider, CsvSource, DataProvider as _};

use crate::FeedError;
use crate::faults::{Faults, FormatChange, Frame, Spike, encode, spiked};

/// The largest message a client may send.
const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// The most bars one step request may ask for.
const MAX_STEP: u64 = 100_000;
/// The longest slow-fault delay, in milliseconds.
const MAX_SLOW_MS: u64 = 60_000;

pub use vigil_http::Credentials;

/// How the replay moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// A bar every interval (wall time).
    Interval(Duration),
    /// As fast as the slowest subscribed client reads (the sends wait on it).
    AsFastAsRead,
    /// Only when asked: `POST /_feed/step?n=K` (tests).
    Manual,
}

impl std::fmt::Display for Pacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Interval(d) => write!(f, "a bar every {} ms", d.as_millis()),
            Self::AsFastAsRead => f.write_str("as fast as the clients read"),
            Self::Manual => f.write_str("a bar per step (POST /_feed/step)"),
        }
    }
}

/// What a feed needs to start.
#[derive(Clone, Debug)]
pub struct FeedOptions {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    /// `(symbol, CSV file)` of every symbol served, replayed merged in time order.
    pub sources: Vec<(String, PathBuf)>,
    /// How the replay moves.
    pub pacing: Pacing,
    /// Required of every client when set.
    pub credentials: Option<Credentials>,
}

/// A running feed.
#[derive(Debug)]
pub struct FeedServer {
    service: HttpService,
    pacer: Option<actix_web::rt::task::JoinHandle<()>>,
}

/// One WebSocket client.
struct Client {
    id: u64,
    peer: String,
    session: Session,
    /// Subscribed, per symbol id.
    bars: Vec<bool>,
}

#[derive(Default)]
struct Clients {
    next_id: u64,
    list: Vec<Client>,
}

/// The replay: taken by one sender at a time, so bars go out one by one, in order.
struct Replay {
    source: CsvReplayProvider,
    batch: Vec<MarketDataEvent>,
    garbage_seq: u64,
    /// The clients of the bar being sent (kept to reuse its room).
    targets: Vec<(u64, Session)>,
}

/// How far the replay is, readable without waiting for a send under way.
#[derive(Default)]
struct Progress {
    sent: u64,
    ended: Option<String>,
}

struct Shared {
    symbols: Vec<String>,
    pacing: Pacing,
    credentials: Option<Credentials>,
    replay: tokio::sync::Mutex<Replay>,
    progress: parking_lot::Mutex<Progress>,
    clients: parking_lot::Mutex<Clients>,
    faults: parking_lot::Mutex<Faults>,
    /// Wakes the pacer: a client subscribed, a fault was cleared.
    wake: Notify,
    /// Bumped by the disconnect fault: every connection and send under way ends.
    kick: watch::Sender<u64>,
}

/// Why no bar went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Stalled,
    NoClient,
    Ended,
}

impl Held {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stalled => "stalled",
            Self::NoClient => "no_client",
            Self::Ended => "ended",
        }
    }
}

fn log(message: impl std::fmt::Display) {
    eprintln!("vigil feed: {message}");
}

impl Shared {
    fn any_subscribed(&self) -> bool {
        self.clients
            .lock()
            .list
            .iter()
            .any(|c| c.bars.iter().any(|&b| b))
    }

    fn forget(&self, id: u64) {
        self.clients.lock().list.retain(|c| c.id != id);
    }

    /// Subscribes client `id` to the served symbols among `asked`; returns every symbol
    /// it is subscribed to now.
    fn subscribe(&self, id: u64, asked: &[String]) -> Vec<String> {
        let mut clients = self.clients.lock();
        let Some(client) = clients.list.iter_mut().find(|c| c.id == id) else {
            return Vec::new();
        };
        for name in asked {
            if let Some(i) = self.symbols.iter().position(|s| s == name) {
                client.bars[i] = true;
            }
        }
        self.symbols
            .iter()
            .zip(&client.bars)
            .filter(|(_, on)| **on)
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn end_replay(&self, why: String) {
        log(format_args!("the replay ended: {why}"));
        self.progress.lock().ended = Some(why);
    }

    /// Sends the next bar to every client subscribed to its symbol, under the faults in
    /// force. Returns how many clients it reached, or why it held it back.
    async fn send_next(&self) -> Result<usize, Held> {
        let mut guard = self.replay.lock().await;
        let replay = &mut *guard;
        if self.faults.lock().stalled {
            return Err(Held::Stalled);
        }
        if self.progress.lock().ended.is_some() {
            return Err(Held::Ended);
        }
        if !self.any_subscribed() {
            return Err(Held::NoClient);
        }
        replay.batch.clear();
        let bar = match replay.source.next_batch(1, &mut replay.batch).await {
            Ok(_) => match replay.batch.first() {
                Some(MarketDataEvent::Bar(bar)) => *bar,
                None => {
                    self.end_replay("the end of the data".into());
                    return Err(Held::Ended);
                }
            },
            Err(e) => {
                self.end_replay(format!("the data cannot be read: {e}"));
                return Err(Held::Ended);
            }
        };
        let symbol = self
            .symbols
            .get(bar.symbol.index())
            .map_or("", String::as_str);
        let (slow, format, garbage, spike) = {
            let mut f = self.faults.lock();
            let spike = match &f.spike {
                Some(s) if s.symbol == symbol => f.spike.take(),
                _ => None,
            };
            (Duration::from_millis(f.slow_ms), f.format, f.garbage, spike)
        };
        let bar = match spike {
            None => bar,
            Some(Spike { pct, .. }) => match spiked(&bar, pct) {
                Some(moved) => {
                    log(format_args!(
                        "spike: {symbol} bar at {} moved {pct}% (close {} -> {})",
                        bar.ts, bar.close, moved.close
                    ));
                    moved
                }
                None => {
                    log(format_args!(
                        "spike: {symbol} bar at {}: {pct}% overflows a price; sent unchanged",
                        bar.ts
                    ));
                    bar
                }
            },
        };
        let garbage = garbage.then(|| {
            replay.garbage_seq += 1;
            replay.garbage_seq - 1
        });
        let frame = match encode(symbol, &bar, format, garbage) {
            Ok(frame) => frame,
            Err(e) => {
                self.end_replay(format!("cannot write the bar at {}: {e}", bar.ts));
                return Err(Held::Ended);
            }
        };
        if !slow.is_zero() {
            tokio::time::sleep(slow).await;
        }
        // Watch for a disconnect from before the clients are picked, so none is missed.
        let mut kicked = self.kick.subscribe();
        replay.targets.clear();
        replay.targets.extend(
            self.clients
                .lock()
                .list
                .iter()
                .filter(|c| c.bars.get(bar.symbol.index()).copied().unwrap_or(false))
                .map(|c| (c.id, c.session.clone())),
        );
        let mut reached = 0;
        for (id, mut session) in replay.targets.drain(..) {
            let sent = tokio::select! {
                sent = send(&mut session, &frame) => sent,
                // A disconnect fault: the bar goes to nobody else.
                _ = kicked.changed() => break,
            };
            match sent {
                Ok(()) => reached += 1,
                Err(actix_ws::Closed) => {
                    log(format_args!("client {id}: gone while sending it a bar"));
                    self.forget(id);
                }
            }
        }
        self.progress.lock().sent += 1;
        Ok(reached)
    }
}

async fn send(session: &mut Session, frame: &Frame) -> Result<(), actix_ws::Closed> {
    match frame {
        Frame::Text(text) => session.text(text.clone()).await,
        Frame::Binary(bytes) => session.binary(bytes.clone()).await,
    }
}

/// Moves the replay on its own (interval and as-fast-as-read pacing).
async fn pace(s: Arc<Shared>) {
    let mut ticker = match s.pacing {
        Pacing::Interval(every) => {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Some(t)
        }
        Pacing::AsFastAsRead => None,
        Pacing::Manual => return,
    };
    loop {
        if let Some(t) = &mut ticker {
            t.tick().await;
        }
        loop {
            match s.send_next().await {
                Ok(_) => break,
                Err(Held::Ended) => return,
                // A subscription or a cleared fault wakes it (a wake-up that comes first
                // is kept by the Notify).
                Err(Held::Stalled | Held::NoClient) => s.wake.notified().await,
            }
        }
        if ticker.is_none() {
            // Sends to clients that read fast may never wait: let others run.
            tokio::task::yield_now().await;
        }
    }
}

/// Serves one WebSocket connection until it closes or a disconnect fault ends it.
async fn connection(
    s: Arc<Shared>,
    id: u64,
    peer: String,
    mut session: Session,
    mut messages: MessageStream,
    mut kick: watch::Receiver<u64>,
) {
    let end = serve(&s, id, &mut session, &mut messages, &mut kick).await;
    s.forget(id);
    log(format_args!("client {id} ({peer}): {end}"));
}

async fn serve(
    s: &Shared,
    id: u64,
    session: &mut Session,
    messages: &mut MessageStream,
    kick: &mut watch::Receiver<u64>,
) -> String {
    if session.text(feed_wire::CONNECTED).await.is_err() {
        return "closed before the greeting".into();
    }
    let mut authenticated = false;
    loop {
        let message = tokio::select! {
            message = messages.recv() => message,
            _ = kick.changed() => return "disconnected by fault injection".into(),
        };
        let answered = match message {
            None => return "closed the connection".into(),
            Some(Err(e)) => return format!("protocol error: {e}"),
            Some(Ok(Message::Text(text))) => {
                answer(s, id, &mut authenticated, session, &text).await
            }
            Some(Ok(Message::Binary(_))) => {
                session
                    .text(feed_wire::error_frame(
                        400,
                        "invalid syntax: binary frames are not accepted",
                    ))
                    .await
            }
            Some(Ok(Message::Ping(payload))) => session.pong(&payload).await,
            Some(Ok(Message::Close(reason))) => {
                // Answer the close; a session already closed has nothing to answer.
                if session.clone().close(reason).await.is_err() {
                    return "closed the connection (the session was already closed)".into();
                }
                return "closed the connection".into();
            }
            Some(Ok(Message::Pong(_) | Message::Continuation(_) | Message::Nop)) => Ok(()),
        };
        if answered.is_err() {
            return "the connection closed while answering".into();
        }
    }
}

/// Answers one client message: Alpaca's codes 400 (invalid syntax), 401 (not
/// authenticated), 402 (auth failed), 403 (already authenticated).
async fn answer(
    s: &Shared,
    id: u64,
    authenticated: &mut bool,
    session: &mut Session,
    text: &str,
) -> Result<(), actix_ws::Closed> {
    let message = match serde_json::from_str::<ClientMessage>(text) {
        Ok(m) => m,
        Err(e) => {
            return session
                .text(feed_wire::error_frame(400, &format!("invalid syntax: {e}")))
                .await;
        }
    };
    match message {
        ClientMessage::Auth { .. } if *authenticated => {
            session
                .text(feed_wire::error_frame(403, "already authenticated"))
                .await
        }
        ClientMessage::Auth { key, secret } => {
            let ok = s
                .credentials
                .as_ref()
                .is_none_or(|c| c.accept(key.as_bytes(), secret.as_bytes()));
            if ok {
                *authenticated = true;
                log(format_args!("client {id}: authenticated as {key:?}"));
                session.text(feed_wire::AUTHENTICATED).await
            } else {
                log(format_args!("client {id}: auth failed for key {key:?}"));
                session
                    .text(feed_wire::error_frame(402, "auth failed"))
                    .await
            }
        }
        ClientMessage::Subscribe { .. } if !*authenticated => {
            session
                .text(feed_wire::error_frame(401, "not authenticated"))
                .await
        }
        ClientMessage::Subscribe { bars, .. } => {
            let now = s.subscribe(id, &bars);
            log(format_args!(
                "client {id}: asked for bars of {bars:?}; subscribed to {now:?}"
            ));
            let sent = session
                .text(feed_wire::subscription_frame(
                    now.iter().map(String::as_str),
                ))
                .await;
            s.wake.notify_one();
            sent
        }
    }
}

async fn stream(
    req: HttpRequest,
    body: web::Payload,
    s: web::Data<Shared>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    let peer = req
        .peer_addr()
        .map_or_else(|| "unknown peer".to_string(), |a| a.to_string());
    let id = {
        let mut clients = s.clients.lock();
        clients.next_id += 1;
        let id = clients.next_id;
        clients.list.push(Client {
            id,
            peer: peer.clone(),
            session: session.clone(),
            bars: vec![false; s.symbols.len()],
        });
        id
    };
    log(format_args!("client {id} ({peer}): connected"));
    let kick = s.kick.subscribe();
    actix_web::rt::spawn(connection(
        s.into_inner(),
        id,
        peer,
        session,
        messages.max_frame_size(MAX_CLIENT_FRAME),
        kick,
    ));
    Ok(response)
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message.into()}))
}

/// An answer that is not a success, before it becomes a response.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl Failure {
    fn into_response(self) -> HttpResponse {
        error(self.0, self.1)
    }
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> &'r [u8] {
    req.headers().get(name).map_or(&[], |v| v.as_bytes())
}

/// Checks the API key on a control endpoint, when the feed has one.
fn authorize(req: &HttpRequest, s: &Shared) -> Result<(), Failure> {
    match &s.credentials {
        Some(c) if !c.accept(header(req, KEY_ID_HEADER), header(req, SECRET_KEY_HEADER)) => Err(
            Failure(StatusCode::UNAUTHORIZED, "request is not authorized".into()),
        ),
        _ => Ok(()),
    }
}

fn params(req: &HttpRequest) -> Result<HashMap<String, String>, Failure> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("bad query string: {e}")))
}

fn faults_json(s: &Shared) -> serde_json::Value {
    json!(*s.faults.lock())
}

fn status_json(s: &Shared) -> serde_json::Value {
    let (clients, subscribed) = {
        let c = s.clients.lock();
        let subscribed = c.list.iter().filter(|c| c.bars.iter().any(|&b| b)).count();
        let peers: Vec<&str> = c.list.iter().map(|c| c.peer.as_str()).collect();
        (json!(peers), subscribed)
    };
    let (sent, ended) = {
        let p = s.progress.lock();
        (p.sent, p.ended.clone())
    };
    json!({
        "symbols": s.symbols,
        "pacing": s.pacing.to_string(),
        "clients": clients,
        "subscribed": subscribed,
        "bars_sent": sent,
        "ended": ended,
        "faults": faults_json(s),
    })
}

async fn get_status(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    if let Err(f) = authorize(&req, &s) {
        return f.into_response();
    }
    HttpResponse::Ok().json(status_json(&s))
}

/// `POST /_feed/step?n=K`: sends the next K bars now (default 1), and answers once they
/// are on their way: `{"sent": …, "held": null | "stalled" | "no_client" | "ended"}`.
async fn step(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    if let Err(f) = authorize(&req, &s) {
        return f.into_response();
    }
    let p = match params(&req) {
        Ok(p) => p,
        Err(f) => return f.into_response(),
    };
    let n = match p.get("n").map(|v| v.parse::<u64>()) {
        None => 1,
        Some(Ok(n)) if (1..=MAX_STEP).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("n: expected a number from 1 to {MAX_STEP}"),
            );
        }
    };
    let mut sent = 0u64;
    let mut reached = 0usize;
    let mut held = None;
    for _ in 0..n {
        match s.send_next().await {
            Ok(clients) => {
                sent += 1;
                reached += clients;
            }
            Err(why) => {
                held = Some(why.as_str());
                break;
            }
        }
    }
    HttpResponse::Ok().json(json!({"sent": sent, "deliveries": reached, "held": held}))
}

async fn get_faults(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    if let Err(f) = authorize(&req, &s) {
        return f.into_response();
    }
    HttpResponse::Ok().json(faults_json(&s))
}

/// Closes every WebSocket: with a close frame (1001, "fault injection: disconnect"), or
/// `abrupt`ly, dropping the connection without one. Returns how many.
fn disconnect(s: &Shared, abrupt: bool) -> usize {
    let sessions: Vec<Session> = s.clients.lock().list.drain(..).map(|c| c.session).collect();
    // Ends every connection's task and every send under way, so no clone of a session
    // outlives this.
    s.kick.send_modify(|generation| *generation += 1);
    let n = sessions.len();
    for session in sessions {
        if abrupt {
            drop(session);
            continue;
        }
        // The close waits for room in the session's queue: not on this request's time.
        actix_web::rt::spawn(async move {
            let reason = CloseReason {
                code: CloseCode::Away,
                description: Some("fault injection: disconnect".into()),
            };
            if session.close(Some(reason)).await.is_err() {
                log("disconnect: a session was already closed");
            }
        });
    }
    n
}

/// `POST /_faults/{fault}`: see `docs/feed.md`.
async fn set_fault(
    req: HttpRequest,
    s: web::Data<Shared>,
    fault: web::Path<String>,
) -> HttpResponse {
    if let Err(f) = authorize(&req, &s) {
        return f.into_response();
    }
    let p = match params(&req) {
        Ok(p) => p,
        Err(f) => return f.into_response(),
    };
    let bad = |m: String| error(StatusCode::BAD_REQUEST, m);
    let mut extra = serde_json::Map::new();
    let detail = match fault.as_str() {
        "stall" => {
            s.faults.lock().stalled = true;
            "no bar is sent until cleared; connections stay open".to_string()
        }
        "disconnect" => {
            let abrupt = match p.get("abrupt").map(String::as_str) {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => return bad(format!("abrupt: {other:?} is not true or false")),
            };
            let n = disconnect(&s, abrupt);
            extra.insert("disconnected".into(), json!(n));
            format!(
                "closed {n} connection(s){}",
                if abrupt { " without a close frame" } else { "" }
            )
        }
        "slow" => {
            let ms = match p.get("ms").map(|v| v.parse::<u64>()) {
                Some(Ok(ms)) if ms <= MAX_SLOW_MS => ms,
                _ => return bad(format!("ms: expected a number from 0 to {MAX_SLOW_MS}")),
            };
            s.faults.lock().slow_ms = ms;
            format!("each bar waits {ms} ms")
        }
        "format" => {
            let kind = p.get("kind").map_or("renamed", String::as_str);
            let Some(format) = FormatChange::parse(kind) else {
                return bad(format!("kind: {kind:?} is not renamed or strings"));
            };
            s.faults.lock().format = Some(format);
            format!("bars go out in a changed format ({kind})")
        }
        "garbage" => {
            s.faults.lock().garbage = true;
            "bars go out as garbage".to_string()
        }
        "spike" => {
            let Some(symbol) = p.get("symbol") else {
                return bad("symbol is required".into());
            };
            if !s.symbols.contains(symbol) {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("symbol {symbol:?} is not served (served: {:?})", s.symbols),
                );
            }
            let pct = match p.get("pct").map(|v| v.parse::<Decimal>()) {
                Some(Ok(pct)) if pct > Decimal::from(-100) && pct <= Decimal::from(10_000) => pct,
                _ => return bad("pct: expected a number above -100 and at most 10000".into()),
            };
            s.faults.lock().spike = Some(Spike {
                symbol: symbol.clone(),
                pct,
            });
            format!("the next {symbol} bar moves {pct}%")
        }
        "clear" => {
            *s.faults.lock() = Faults::default();
            s.wake.notify_one();
            "every fault cleared".to_string()
        }
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no fault {other:?}; faults: stall, disconnect, slow, format, garbage, spike, clear"
                ),
            );
        }
    };
    log(format_args!("fault {}: {detail}", fault.as_str()));
    extra.insert("fault".into(), json!(fault.as_str()));
    extra.insert("detail".into(), json!(detail));
    extra.insert("faults".into(), faults_json(&s));
    HttpResponse::Ok().json(extra)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!("{} {}: no such endpoint", req.method(), req.path()),
    )
}

impl FeedServer {
    /// Opens the CSV files (checking their headers), starts serving and, unless the
    /// pacing is manual, starts the replay. Must be called inside an actix system.
    ///
    /// # Errors
    /// A symbol given twice or that the stream cannot carry, a CSV file that cannot be
    /// opened or lacks a column (the volume included: the stream carries it), or an address
    /// that cannot be bound.
    pub async fn start(opts: FeedOptions) -> Result<Self, FeedError> {
        if opts.sources.is_empty() {
            return Err(FeedError::Data("no CSV file to serve".into()));
        }
        let mut symbols = Vec::with_capacity(opts.sources.len());
        let mut sources = Vec::with_capacity(opts.sources.len());
        for (i, (symbol, path)) in opts.sources.iter().enumerate() {
            feed_wire::check_symbol(symbol)
                .map_err(|reason| FeedError::Data(format!("symbol {symbol:?}: {reason}")))?;
            if symbols.contains(symbol) {
                return Err(FeedError::Data(format!("symbol {symbol} is given twice")));
            }
            symbols.push(symbol.clone());
            let id = u32::try_from(i).map_err(|_| FeedError::Data("too many symbols".into()))?;
            let source = CsvSource::file(SymbolId(id), path.clone());
            // The stream carries every bar's volume (`v`): a file without one cannot be
            // served truthfully, and a made-up zero would stop every fill downstream.
            let reader = CsvBarReader::open(&source).map_err(|e| FeedError::Data(e.to_string()))?;
            if !reader.has_volume() {
                return Err(FeedError::Data(format!(
                    "{}: no volume column: the stream sends every bar's volume (`v`); add one",
                    source.display_name()
                )));
            }
            sources.push(source);
        }
        let mut source = CsvReplayProvider::new(sources, 1);
        source
            .connect()
            .await
            .map_err(|e| FeedError::Data(e.to_string()))?;
        let (kick, _) = watch::channel(0u64);
        let shared = web::Data::new(Shared {
            symbols,
            pacing: opts.pacing,
            credentials: opts.credentials,
            replay: tokio::sync::Mutex::new(Replay {
                source,
                batch: Vec::with_capacity(1),
                garbage_seq: 0,
                targets: Vec::new(),
            }),
            progress: parking_lot::Mutex::new(Progress::default()),
            clients: parking_lot::Mutex::new(Clients::default()),
            faults: parking_lot::Mutex::new(Faults::default()),
            wake: Notify::new(),
            kick,
        });
        let app_data = shared.clone();
        // WebSocket connections never finish on their own: stop without waiting for them.
        let service = HttpService::start(&opts.listen, StopMode::Immediate, move |cfg| {
            cfg.app_data(app_data.clone())
                .route("/stream", web::get().to(stream))
                .route("/_feed", web::get().to(get_status))
                .route("/_feed/step", web::post().to(step))
                .route("/_faults", web::get().to(get_faults))
                .route("/_faults/{fault}", web::post().to(set_fault))
                .default_service(web::to(not_found));
        })?;
        let pacer = (opts.pacing != Pacing::Manual)
            .then(|| actix_web::rt::spawn(pace(shared.into_inner())));
        Ok(Self { service, pacer })
    }

    /// Returns the bound address.
    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    /// Returns the stream's URL, `ws://HOST:PORT/stream`.
    pub fn stream_url(&self) -> String {
        format!("ws://{}/stream", self.service.addr())
    }

    /// Returns the control base URL, `http://HOST:PORT` (`/_feed`, `/_faults`).
    pub fn control_url(&self) -> String {
        format!("http://{}", self.service.addr())
    }

    /// Stops the replay and the server.
    pub async fn stop(self) {
        if let Some(pacer) = &self.pacer {
            pacer.abort();
        }
        self.service.stop().await;
    }

    /// Serves until SIGINT or SIGTERM, then stops.
    ///
    /// # Errors
    /// The signal handlers cannot be installed, or the server failed.
    pub async fn serve_until_signal(self) -> Result<(), FeedError> {
        vigil_http::wait_for_stop_signal().await?;
        if let Some(pacer) = &self.pacer {
            pacer.abort();
        }
        Ok(self.service.shutdown().await?)
    }
}
