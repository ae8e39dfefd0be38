//! The HTTP API: Alpaca's trading API v2 paths and fields, the simulated clock and the
//! fault injection endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};
use vigil_core::Timestamp;
use vigil_http::{HttpService, StopMode};
use vigil_providers::alpaca_wire::{
    self as wire, DUPLICATE_CLIENT_ORDER_ID, KEY_ID_HEADER, MARKET_TIME_HEADER, SECRET_KEY_HEADER,
};

use crate::BrokerError;
use crate::engine::{
    Changes, Engine, EngineConfig, ManualTrade, OrderSpec, Refusal, parse_side, parse_type,
};
use crate::market::Market;
use crate::store::{FillQuery, OrderQuery, StatusFilter, Store};

/// The largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Orders listed when no `limit` is given, and the most a listing returns (Alpaca's).
const ORDERS_DEFAULT: u32 = 50;
const ORDERS_MAX: u32 = 500;
/// Fills per page when no `page_size` is given, and the most (Alpaca's).
const FILLS_MAX: u32 = 100;

pub use vigil_http::Credentials;

/// What a broker needs to start.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    /// The SQLite state file (created with its folder when missing).
    pub state: PathBuf,
    /// `(symbol, CSV file)` of every instrument it prices.
    pub data: Vec<(String, PathBuf)>,
    /// Fills and charges.
    pub engine: EngineConfig,
    /// Required of every request when set.
    pub credentials: Option<Credentials>,
}

/// A running broker.
#[derive(Debug)]
pub struct BrokerServer {
    service: HttpService,
    /// The symbols whose file has no volume column.
    unknown_volume: Vec<String>,
}

/// Faults measured in wall time.
#[derive(Debug, Default)]
struct WallFaults {
    /// Down: until cleared (`Some(None)`) or until an instant.
    down: Option<Option<Instant>>,
    /// Delay before every trading answer.
    slow: Duration,
}

impl WallFaults {
    fn is_down(&mut self) -> bool {
        if let Some(Some(until)) = self.down
            && Instant::now() >= until
        {
            self.down = None;
        }
        self.down.is_some()
    }
}

/// The book and its file, behind one lock: requests take turns.
struct Broker {
    engine: Engine,
    store: Store,
    config: EngineConfig,
    market: Arc<Market>,
    /// Set when a failed commit could not be undone: memory and file may differ, so every
    /// request fails until a restart reads the file again.
    poisoned: Option<String>,
}

impl Broker {
    /// Reads the book back from the file after a failed commit (the faults stay).
    async fn reload(&mut self) {
        let restored = match self.store.load().await {
            Ok(saved) => Engine::restore(self.config.clone(), self.market.clone(), saved),
            Err(e) => Err(e.to_string()),
        };
        match restored {
            Ok(mut engine) => {
                engine.faults = std::mem::take(&mut self.engine.faults);
                self.engine = engine;
            }
            Err(e) => self.poisoned = Some(e),
        }
    }
}

struct Shared {
    broker: Mutex<Broker>,
    wall: parking_lot::Mutex<WallFaults>,
    credentials: Option<Credentials>,
}

/// One request's hold on the book, and what it changed.
struct Turn<'a> {
    broker: MutexGuard<'a, Broker>,
    changes: Changes,
}

impl Turn<'_> {
    fn engine(&mut self) -> &mut Engine {
        &mut self.broker.engine
    }

    /// Commits the changes, then answers `ok`; if the commit fails, the book is read back
    /// from the file and the answer is a 500.
    async fn finish(mut self, ok: HttpResponse) -> HttpResponse {
        match self.broker.store.commit(&self.changes).await {
            Ok(()) => ok,
            Err(e) => {
                self.broker.reload().await;
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the change was not saved, nothing changed: {e}"),
                )
            }
        }
    }
}

/// Alpaca's error body, with its code for `status`.
fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    let code = u32::from(status.as_u16()) * 100_000;
    HttpResponse::build(status).json(wire::ApiError {
        code,
        message: message.into(),
    })
}

fn unprocessable(message: impl Into<String>) -> HttpResponse {
    error(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// An answer that is not a success, before it becomes a response: a status and Alpaca's
/// message.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl Failure {
    fn unprocessable(message: impl Into<String>) -> Self {
        Self(StatusCode::UNPROCESSABLE_ENTITY, message.into())
    }

    fn into_response(self) -> HttpResponse {
        error(self.0, self.1)
    }
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> &'r [u8] {
    req.headers().get(name).map_or(&[], |v| v.as_bytes())
}

impl Shared {
    /// Checks the API key, in time that does not depend on where a wrong one differs.
    fn authorize(&self, req: &HttpRequest) -> Result<(), Failure> {
        let Some(c) = &self.credentials else {
            return Ok(());
        };
        if c.accept(header(req, KEY_ID_HEADER), header(req, SECRET_KEY_HEADER)) {
            Ok(())
        } else {
            Err(Failure(
                StatusCode::UNAUTHORIZED,
                "request is not authorized".into(),
            ))
        }
    }

    /// Authenticates; for a trading endpoint, applies the wall-time faults; takes the book
    /// and moves its clock to the request's market time.
    async fn enter(&self, req: &HttpRequest, trading: bool) -> Result<Turn<'_>, Failure> {
        self.authorize(req)?;
        if trading {
            let (down, slow) = {
                let mut w = self.wall.lock();
                (w.is_down(), w.slow)
            };
            if !slow.is_zero() {
                actix_web::rt::time::sleep(slow).await;
            }
            if down {
                return Err(Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the broker is down (fault injection)".into(),
                ));
            }
        }
        let at = market_time(req)?;
        let mut broker = self.broker.lock().await;
        if let Some(why) = &broker.poisoned {
            return Err(Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the broker's state could not be read back after a failed save; restart it: {why}"
                ),
            ));
        }
        let mut changes = Changes::default();
        if let Some(at) = at {
            broker.engine.advance(at, &mut changes);
        }
        Ok(Turn { broker, changes })
    }
}

/// The request's market time, if it carries one.
fn market_time(req: &HttpRequest) -> Result<Option<Timestamp>, Failure> {
    let Some(value) = req.headers().get(MARKET_TIME_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|e| {
        Failure(
            StatusCode::BAD_REQUEST,
            format!("{MARKET_TIME_HEADER}: not text: {e}"),
        )
    })?;
    parse_time(MARKET_TIME_HEADER, text)
        .map(Some)
        .map_err(|m| Failure(StatusCode::BAD_REQUEST, m))
}

fn parse_time(what: &str, text: &str) -> Result<Timestamp, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{what}: {text:?} is not an RFC 3339 time: {e}"))
}

type Params = HashMap<String, String>;

fn params(req: &HttpRequest) -> Result<Params, Failure> {
    web::Query::<Params>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| Failure::unprocessable(format!("bad query string: {e}")))
}

fn param_u32(p: &Params, key: &str, default: u32, max: u32) -> Result<u32, Failure> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Failure::unprocessable(format!(
                "{key}: {v:?} is not a number from 1 to {max}"
            ))),
        },
    }
}

fn param_time(p: &Params, key: &str) -> Result<Option<Timestamp>, Failure> {
    p.get(key)
        .map(|v| parse_time(key, v).map_err(Failure::unprocessable))
        .transpose()
}

/// `direction`: `asc` (true) or `desc` (false, the default).
fn param_ascending(p: &Params) -> Result<bool, Failure> {
    match p.get("direction").map(String::as_str) {
        None | Some("desc") => Ok(false),
        Some("asc") => Ok(true),
        Some(other) => Err(Failure::unprocessable(format!(
            "direction: {other:?} is not asc or desc"
        ))),
    }
}

fn json<T: Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok().json(value)
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::unprocessable(format!("invalid {what}: {e}")))
}

fn failed(e: &BrokerError) -> HttpResponse {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Checks what can be checked without the book: side, type, time in force.
fn order_spec(
    order: wire::NewOrder,
    generated_id: impl FnOnce() -> String,
) -> Result<OrderSpec, Failure> {
    let side = parse_side(&order.side).ok_or_else(|| {
        Failure::unprocessable(format!("side: {:?} is not buy or sell", order.side))
    })?;
    let order_type = parse_type(&order.order_type).ok_or_else(|| {
        Failure::unprocessable(format!(
            "type: {:?} is not supported by the paper broker (market or limit)",
            order.order_type
        ))
    })?;
    if !matches!(order.time_in_force.as_str(), "day" | "gtc") {
        return Err(Failure::unprocessable(format!(
            "time_in_force: {:?} is not supported by the paper broker (day or gtc)",
            order.time_in_force
        )));
    }
    let client_order_id = match order.client_order_id {
        Some(id) if id.is_empty() || id.len() > 128 => {
            return Err(Failure::unprocessable(
                "client_order_id must be 1 to 128 characters",
            ));
        }
        Some(id) => id,
        None => generated_id(),
    };
    Ok(OrderSpec {
        client_order_id,
        symbol: order.symbol,
        side,
        qty: order.qty,
        order_type,
        time_in_force: order.time_in_force,
        limit_price: order.limit_price,
    })
}

async fn post_order(req: HttpRequest, s: web::Data<Shared>, bytes: web::Bytes) -> HttpResponse {
    let order: wire::NewOrder = match body(&bytes, "order") {
        Ok(o) => o,
        Err(f) => return f.into_response(),
    };
    let mut turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let spec = match order_spec(order, || {
        format!(
            "auto-{}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        )
    }) {
        Ok(spec) => spec,
        Err(f) => return turn.finish(f.into_response()).await,
    };
    match turn
        .broker
        .store
        .order_by_client_id(&spec.client_order_id)
        .await
    {
        Ok(None) => {}
        Ok(Some(_)) => return turn.finish(unprocessable(DUPLICATE_CLIENT_ORDER_ID)).await,
        Err(e) => return turn.finish(failed(&e)).await,
    }
    let mut changes = std::mem::take(&mut turn.changes);
    let (order, refusal) = turn.engine().submit(&spec, &mut changes);
    turn.changes = changes;
    let reason = order.reject_reason.clone().unwrap_or_default();
    let answer = match refusal {
        None => json(&order.to_wire(turn.engine().market())),
        Some(Refusal::Invalid) => unprocessable(reason),
        Some(Refusal::Injected) => error(StatusCode::FORBIDDEN, reason),
    };
    turn.finish(answer).await
}

async fn list_orders(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    let query = match order_query(&req) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    let mut turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let answer = match turn.broker.store.orders(&query).await {
        Ok(rows) => {
            let market = turn.engine().market();
            let orders: Vec<wire::Order> = rows.iter().map(|o| o.to_wire(market)).collect();
            json(&orders)
        }
        Err(e) => failed(&e),
    };
    turn.finish(answer).await
}

fn order_query(req: &HttpRequest) -> Result<OrderQuery, Failure> {
    let p = params(req)?;
    let status = match p.get("status").map(String::as_str) {
        None | Some("open") => StatusFilter::Open,
        Some("closed") => StatusFilter::Closed,
        Some("all") => StatusFilter::All,
        Some(other) => {
            return Err(Failure::unprocessable(format!(
                "status: {other:?} is not open, closed or all"
            )));
        }
    };
    Ok(OrderQuery {
        status,
        limit: param_u32(&p, "limit", ORDERS_DEFAULT, ORDERS_MAX)?,
        after: param_time(&p, "after")?,
        until: param_time(&p, "until")?,
        ascending: param_ascending(&p)?,
        symbols: p
            .get("symbols")
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Answers with one order found by `find`, or 404.
async fn one_order(
    turn: Turn<'_>,
    found: Result<Option<crate::engine::OrderRow>, BrokerError>,
    what: String,
) -> HttpResponse {
    let answer = match found {
        Ok(Some(o)) => json(&o.to_wire(turn.broker.engine.market())),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("order not found for {what}")),
        Err(e) => failed(&e),
    };
    turn.finish(answer).await
}

async fn get_order(req: HttpRequest, s: web::Data<Shared>, id: web::Path<String>) -> HttpResponse {
    let turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let found = turn.broker.store.order_by_id(&id).await;
    one_order(turn, found, id.into_inner()).await
}

async fn order_by_client_id(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    let id = match params(&req) {
        Ok(p) => match p.get("client_order_id") {
            Some(id) => id.clone(),
            None => return unprocessable("client_order_id is required"),
        },
        Err(f) => return f.into_response(),
    };
    let turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let found = turn.broker.store.order_by_client_id(&id).await;
    one_order(turn, found, format!("client_order_id {id}")).await
}

async fn cancel_order(
    req: HttpRequest,
    s: web::Data<Shared>,
    id: web::Path<String>,
) -> HttpResponse {
    let mut turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let mut changes = std::mem::take(&mut turn.changes);
    let cancelled = turn.engine().cancel(&id, &mut changes);
    turn.changes = changes;
    if cancelled.is_some() {
        return turn.finish(HttpResponse::NoContent().finish()).await;
    }
    let answer = match turn.broker.store.order_by_id(&id).await {
        Ok(Some(o)) => unprocessable(format!(
            "order is already in \"{}\" state",
            o.status.as_str()
        )),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("order not found for {id}")),
        Err(e) => failed(&e),
    };
    turn.finish(answer).await
}

async fn positions(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    let mut turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let answer = json(&turn.engine().positions());
    turn.finish(answer).await
}

async fn account(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    let mut turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let answer = json(&turn.engine().account());
    turn.finish(answer).await
}

fn fill_query(req: &HttpRequest) -> Result<FillQuery, Failure> {
    let p = params(req)?;
    Ok(FillQuery {
        page_token: p.get("page_token").cloned(),
        page_size: param_u32(&p, "page_size", FILLS_MAX, FILLS_MAX)?,
        after: param_time(&p, "after")?,
        until: param_time(&p, "until")?,
        ascending: param_ascending(&p)?,
    })
}

async fn fills(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    let query = match fill_query(&req) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    let turn = match s.enter(&req, true).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let answer = match turn.broker.store.fills(&query).await {
        Ok(Some(rows)) => {
            let activities: Vec<wire::FillActivity> = rows.iter().map(|f| f.to_wire()).collect();
            json(&activities)
        }
        Ok(None) => unprocessable(format!(
            "page_token: {:?} is no fill's id",
            query.page_token.unwrap_or_default()
        )),
        Err(e) => failed(&e),
    };
    turn.finish(answer).await
}

/// The simulated clock.
#[derive(Debug, Serialize, Deserialize)]
struct Clock {
    /// The market clock (`null` before it first moves).
    now: Option<Timestamp>,
}

async fn get_clock(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    let turn = match s.enter(&req, false).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let answer = json(&Clock {
        now: turn.broker.engine.clock(),
    });
    turn.finish(answer).await
}

async fn set_clock(req: HttpRequest, s: web::Data<Shared>, bytes: web::Bytes) -> HttpResponse {
    let asked: Clock = match body(&bytes, "clock") {
        Ok(c) => c,
        Err(f) => return f.into_response(),
    };
    let Some(to) = asked.now else {
        return unprocessable("now is required");
    };
    let mut turn = match s.enter(&req, false).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let mut changes = std::mem::take(&mut turn.changes);
    turn.engine().advance(to, &mut changes);
    turn.changes = changes;
    let answer = json(&Clock {
        now: turn.broker.engine.clock(),
    });
    turn.finish(answer).await
}

/// The faults in force, as `GET /v2/_faults` shows them.
#[derive(Debug, Serialize)]
struct FaultsView {
    down: bool,
    down_ms_left: Option<u64>,
    slow_ms: u64,
    reject_next: u32,
    reject_reason: Option<String>,
    partial: Option<Decimal>,
}

async fn faults_view(s: &Shared) -> FaultsView {
    let (down, down_ms_left, slow_ms) = {
        let mut w = s.wall.lock();
        let down = w.is_down();
        let left = match w.down {
            Some(Some(until)) => Some(until.saturating_duration_since(Instant::now())),
            _ => None,
        };
        (
            down,
            left.map(|d| d.as_millis() as u64),
            w.slow.as_millis() as u64,
        )
    };
    let broker = s.broker.lock().await;
    let f = &broker.engine.faults;
    FaultsView {
        down,
        down_ms_left,
        slow_ms,
        reject_next: f.reject_next.as_ref().map_or(0, |(n, _)| *n),
        reject_reason: f.reject_next.as_ref().map(|(_, r)| r.clone()),
        partial: f.partial,
    }
}

async fn get_faults(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    if let Err(f) = s.authorize(&req) {
        return f.into_response();
    }
    json(&faults_view(&s).await)
}

async fn clear_faults(req: HttpRequest, s: web::Data<Shared>) -> HttpResponse {
    if let Err(f) = s.authorize(&req) {
        return f.into_response();
    }
    *s.wall.lock() = WallFaults::default();
    s.broker.lock().await.engine.faults = Default::default();
    json(&faults_view(&s).await)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Down {
    /// Down for this long (wall time); absent: until cleared.
    #[serde(default)]
    for_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Slow {
    delay_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectNext {
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    reason: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Partial {
    /// In (0, 1]; `null` clears it.
    fraction: Option<Decimal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualTradeBody {
    symbol: String,
    qty: Decimal,
    side: String,
    price: Decimal,
}

async fn set_fault(
    req: HttpRequest,
    s: web::Data<Shared>,
    fault: web::Path<String>,
    bytes: web::Bytes,
) -> HttpResponse {
    if let Err(f) = s.authorize(&req) {
        return f.into_response();
    }
    let outcome = match fault.as_str() {
        "down" => body::<Down>(&bytes, "down").map(|d| {
            s.wall.lock().down = Some(
                d.for_ms
                    .map(|ms| Instant::now() + Duration::from_millis(ms)),
            );
        }),
        "slow" => body::<Slow>(&bytes, "slow").map(|d| {
            s.wall.lock().slow = Duration::from_millis(d.delay_ms);
        }),
        "reject_next" => match body::<RejectNext>(&bytes, "reject_next") {
            Ok(r) => {
                let reason = r
                    .reason
                    .unwrap_or_else(|| "rejected by fault injection".into());
                s.broker.lock().await.engine.faults.reject_next =
                    (r.count > 0).then_some((r.count, reason));
                Ok(())
            }
            Err(e) => Err(e),
        },
        "partial" => match body::<Partial>(&bytes, "partial") {
            Ok(Partial { fraction: Some(f) }) if f <= Decimal::ZERO || f > Decimal::ONE => Err(
                Failure::unprocessable(format!("fraction: {f} is not in (0, 1]")),
            ),
            Ok(p) => {
                s.broker.lock().await.engine.faults.partial = p.fraction;
                Ok(())
            }
            Err(e) => Err(e),
        },
        "manual_trade" => return manual_trade(&req, &s, &bytes).await,
        other => Err(Failure(
            StatusCode::NOT_FOUND,
            format!("no fault {other:?}; faults: down, slow, reject_next, partial, manual_trade"),
        )),
    };
    match outcome {
        Ok(()) => json(&faults_view(&s).await),
        Err(f) => f.into_response(),
    }
}

async fn manual_trade(req: &HttpRequest, s: &Shared, bytes: &[u8]) -> HttpResponse {
    let t: ManualTradeBody = match body(bytes, "manual_trade") {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let Some(side) = parse_side(&t.side) else {
        return unprocessable(format!("side: {:?} is not buy or sell", t.side));
    };
    let mut turn = match s.enter(req, false).await {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let trade = ManualTrade {
        symbol: t.symbol,
        qty: t.qty,
        side,
        price: t.price,
    };
    let mut changes = std::mem::take(&mut turn.changes);
    let done = turn.engine().manual_trade(&trade, &mut changes);
    turn.changes = changes;
    let answer = match done {
        Ok(fill) => json(&fill.to_wire()),
        Err(m) => unprocessable(m),
    };
    turn.finish(answer).await
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!("{} {}: no such endpoint", req.method(), req.path()),
    )
}

impl BrokerServer {
    /// Loads the bars, opens the state file, reads the book back and starts serving. Must
    /// be called inside an actix system.
    ///
    /// # Errors
    /// Unreadable bars, a state file that cannot be opened or read, or an address that
    /// cannot be bound.
    pub async fn start(opts: BrokerOptions) -> Result<Self, BrokerError> {
        let market = Arc::new(Market::load(&opts.data)?);
        let unknown_volume = market.unknown_volume().map(str::to_string).collect();
        let store = Store::open(&opts.state, opts.engine.initial_cash).await?;
        let saved = store.load().await?;
        let engine =
            Engine::restore(opts.engine.clone(), market.clone(), saved).map_err(|reason| {
                BrokerError::State {
                    path: opts.state.clone(),
                    what: "restoring the book".into(),
                    reason,
                }
            })?;
        let shared = web::Data::new(Shared {
            broker: Mutex::new(Broker {
                engine,
                store,
                config: opts.engine,
                market,
                poisoned: None,
            }),
            wall: parking_lot::Mutex::new(WallFaults::default()),
            credentials: opts.credentials,
        });
        let service = HttpService::start(&opts.listen, StopMode::Graceful, move |cfg| {
            cfg.app_data(shared.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .route("/v2/orders", web::post().to(post_order))
                .route("/v2/orders", web::get().to(list_orders))
                .route(
                    "/v2/orders:by_client_order_id",
                    web::get().to(order_by_client_id),
                )
                .route("/v2/orders/{id}", web::get().to(get_order))
                .route("/v2/orders/{id}", web::delete().to(cancel_order))
                .route("/v2/positions", web::get().to(positions))
                .route("/v2/account", web::get().to(account))
                .route("/v2/account/activities/FILL", web::get().to(fills))
                .route("/v2/_sim/clock", web::get().to(get_clock))
                .route("/v2/_sim/clock", web::post().to(set_clock))
                .route("/v2/_faults", web::get().to(get_faults))
                .route("/v2/_faults", web::delete().to(clear_faults))
                .route("/v2/_faults/{fault}", web::post().to(set_fault))
                .default_service(web::to(not_found));
        })?;
        Ok(Self {
            service,
            unknown_volume,
        })
    }

    /// The symbols whose CSV file has no volume column: their bars' volume is unknown and
    /// fills on them are not capped by `max_volume_participation`.
    pub fn unknown_volume(&self) -> &[String] {
        &self.unknown_volume
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    /// `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.service.addr())
    }

    /// Stops serving (requests under way are answered first).
    pub async fn stop(self) {
        self.service.stop().await;
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully.
    ///
    /// # Errors
    /// The signal handlers cannot be installed, or the server failed.
    pub async fn serve_until_signal(self) -> Result<(), BrokerError> {
        Ok(self.service.serve_until_signal().await?)
    }
}
