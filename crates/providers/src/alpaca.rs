//! An [`ExecutionVenue`] over HTTP that speaks Alpaca's trading API v2: the paper broker
//! process (`vigil broker`) and, by construction, Alpaca's paper endpoint.
//!
//! Calls are blocking `ureq` requests, each with a time limit, run on tokio's blocking pool
//! so that no agent's thread waits on the network. Fills arrive by polling
//! `GET /v2/account/activities/FILL` for the activities after the last one seen, on a
//! thread of the venue's own: every `poll_interval`, at once when a bar with a later
//! market time is shown to [`ExecutionVenue::on_market_data`], and at every
//! [`ExecutionVenue::ping`]. The thread ends when the venue is dropped.
//!
//! Every request carries the latest market time seen in the [`MARKET_TIME_HEADER`]: the
//! paper broker moves its clock (and fills what is due) to it; Alpaca ignores it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use vigil_core::{
    Bar, ClientOrderId, ExecutionReport, Fill, OrderAck, OrderRequest, OrderStatus, OrderType,
    SharedClock, Side, SymbolId, SymbolTable, Timestamp, VenueOrder,
};

use crate::alpaca_wire::{
    self as wire, DUPLICATE_CLIENT_ORDER_ID, KEY_ID_HEADER, MARKET_TIME_HEADER, SECRET_KEY_HEADER,
};
use crate::traits::{Account, ExecutionVenue, VenueError, VenuePosition};

/// Activities asked for per page (Alpaca's largest page).
const FILL_PAGE: usize = 100;
/// Open orders read per call; more is an error rather than a silent cut.
const OPEN_ORDERS_LIMIT: usize = 500;
/// The most bytes of an answer read.
const BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// The most characters of an answer quoted in an error.
const QUOTE_CHARS: usize = 300;
/// No market time seen yet.
const NO_TIME: i64 = i64::MIN;

/// Where and how an [`AlpacaVenue`] reaches its broker.
#[derive(Clone)]
pub struct AlpacaVenueConfig {
    /// The venue's name in logs and errors.
    pub name: String,
    /// The API's base URL, without `/v2` (`http://127.0.0.1:8300`,
    /// `https://paper-api.alpaca.markets`).
    pub base_url: String,
    /// The API key id and secret, sent as Alpaca's headers; `None` sends neither.
    pub credentials: Option<(String, String)>,
    /// How often fills are polled for.
    pub poll_interval: Duration,
    /// The time limit of one request, connection included.
    pub timeout: Duration,
}

impl fmt::Debug for AlpacaVenueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaVenueConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field(
                "key_id",
                &self.credentials.as_ref().map(|(id, _)| id.as_str()),
            )
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An [`ExecutionVenue`] speaking Alpaca's trading API v2 over HTTP.
///
/// Symbols travel by name: the session's [`SymbolTable`] maps them to ids both ways. A
/// position, open order or fill in a symbol the table does not hold cannot be booked: the
/// call fails (positions, open orders) or, for a fill, the next [`ExecutionVenue::ping`]
/// reports it.
pub struct AlpacaVenue {
    inner: Arc<Inner>,
    clock: SharedClock,
    /// Wakes the fill poller; dropping it ends the poller.
    wake: SyncSender<()>,
}

impl fmt::Debug for AlpacaVenue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaVenue")
            .field("name", &self.inner.name)
            .field("base_url", &self.inner.base)
            .field(
                "failed_polls",
                &self.inner.failed_polls.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// What the async methods and the poller thread share.
struct Inner {
    name: String,
    base: String,
    agent: ureq::Agent,
    credentials: Option<(String, String)>,
    symbols: SymbolTable,
    /// Microseconds since the epoch of the latest bar seen; [`NO_TIME`] before the first.
    market_time: AtomicI64,
    ids: Mutex<OrderIds>,
    reports: Mutex<Vec<ExecutionReport>>,
    /// The id of the last fill activity taken; held through a whole poll, so that the
    /// poller and a ping never take the same fill twice.
    last_seen: Mutex<Option<String>>,
    /// Fills skipped because they cannot be booked, reported once by the next ping.
    dropped: Mutex<Vec<String>>,
    /// The poller's failures in a row.
    failed_polls: AtomicU64,
}

/// The broker's order ids and vigil's client order ids, both ways.
#[derive(Default)]
struct OrderIds {
    by_venue: HashMap<String, ClientOrderId>,
    by_client: HashMap<ClientOrderId, String>,
}

impl OrderIds {
    fn remember(&mut self, venue_id: &str, client: &ClientOrderId) {
        self.by_venue.insert(venue_id.to_string(), client.clone());
        self.by_client.insert(client.clone(), venue_id.to_string());
    }
}

/// Which market time a request carries.
#[derive(Clone, Copy)]
enum MarketTime {
    /// None: the broker's clock stays where it is.
    Without,
    /// The latest bar's time.
    Latest,
    /// The later of the latest bar's time and this one.
    AtLeast(Timestamp),
}

/// A request: method, path, query, body.
struct Call<'a> {
    method: &'static str,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    body: Option<String>,
    time: MarketTime,
}

impl<'a> Call<'a> {
    fn get(path: &'a str, query: &'a [(&'a str, &'a str)]) -> Self {
        Self {
            method: "GET",
            path,
            query,
            body: None,
            time: MarketTime::Latest,
        }
    }
}

/// An answer: status and body.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Alpaca's error message in the body, or the body itself.
    fn message(&self) -> String {
        serde_json::from_str::<wire::ApiError>(&self.body)
            .map(|e| e.message)
            .unwrap_or_else(|_| quote(&self.body))
    }
}

fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl Inner {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn where_(&self, call: &Call<'_>) -> String {
        format!("{} {} at {}", call.method, call.path, self.base)
    }

    fn unreachable(&self, reason: String) -> VenueError {
        VenueError::Unreachable {
            venue: self.name.clone(),
            reason,
        }
    }

    fn bad(&self, reason: String) -> VenueError {
        VenueError::BadResponse {
            venue: self.name.clone(),
            reason,
        }
    }

    fn latest_time(&self) -> Option<Timestamp> {
        match self.market_time.load(Ordering::Acquire) {
            NO_TIME => None,
            micros => DateTime::from_timestamp_micros(micros),
        }
    }

    fn header_time(&self, time: MarketTime) -> Option<String> {
        let t = match time {
            MarketTime::Without => None,
            MarketTime::Latest => self.latest_time(),
            MarketTime::AtLeast(at) => Some(self.latest_time().map_or(at, |l| l.max(at))),
        };
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    fn headers(&self, time: MarketTime) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(3);
        if let Some((id, secret)) = &self.credentials {
            out.push((KEY_ID_HEADER, id.clone()));
            out.push((SECRET_KEY_HEADER, secret.clone()));
        }
        if let Some(t) = self.header_time(time) {
            out.push((MARKET_TIME_HEADER, t));
        }
        out
    }

    /// Sends `call` and reads the answer, whatever its status.
    fn send(&self, call: &Call<'_>) -> Result<Reply, VenueError> {
        let url = self.url(call.path);
        let headers = self.headers(call.time);
        let sent = match &call.body {
            Some(body) => {
                let mut req = self.agent.post(&url);
                for (k, v) in &headers {
                    req = req.header(*k, v.as_str());
                }
                for (k, v) in call.query {
                    req = req.query(*k, *v);
                }
                req.content_type("application/json").send(body.as_str())
            }
            None => {
                let mut req = match call.method {
                    "DELETE" => self.agent.delete(&url),
                    _ => self.agent.get(&url),
                };
                for (k, v) in &headers {
                    req = req.header(*k, v.as_str());
                }
                for (k, v) in call.query {
                    req = req.query(*k, *v);
                }
                req.call()
            }
        };
        let mut response = sent.map_err(|e| {
            let why = match e {
                ureq::Error::Timeout(t) => format!("no answer in time ({t})"),
                other => other.to_string(),
            };
            self.unreachable(format!("{}: {why}", self.where_(call)))
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| {
                self.unreachable(format!(
                    "{}: HTTP {status}, body unreadable: {e}",
                    self.where_(call)
                ))
            })?;
        Ok(Reply { status, body })
    }

    /// The error for an answer that is not a success: a 5xx is the broker unavailable,
    /// anything else an answer vigil did not expect.
    fn refused(&self, call: &Call<'_>, reply: &Reply) -> VenueError {
        let reason = format!(
            "{}: HTTP {}: {}",
            self.where_(call),
            reply.status,
            reply.message()
        );
        if reply.status >= 500 {
            self.unreachable(reason)
        } else {
            self.bad(reason)
        }
    }

    fn parse<T: DeserializeOwned>(&self, call: &Call<'_>, reply: &Reply) -> Result<T, VenueError> {
        serde_json::from_str(&reply.body).map_err(|e| {
            self.bad(format!(
                "{}: cannot read the answer: {e}; body: {}",
                self.where_(call),
                quote(&reply.body)
            ))
        })
    }

    /// Sends `call` and reads a successful answer as `T`.
    fn fetch<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, VenueError> {
        let reply = self.send(call)?;
        if !reply.ok() {
            return Err(self.refused(call, &reply));
        }
        self.parse(call, &reply)
    }

    fn symbol_name(&self, id: SymbolId) -> Option<&str> {
        self.symbols.symbol(id).map(|s| s.as_str())
    }

    fn symbol_id(&self, name: &str, what: &str) -> Result<SymbolId, VenueError> {
        self.symbols.id(name).ok_or_else(|| {
            self.bad(format!(
                "{what} is in {name}, a symbol this session does not trade"
            ))
        })
    }

    fn submit(&self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        let Some(symbol) = self.symbol_name(order.symbol) else {
            return Ok(OrderAck::Rejected {
                reason: format!("symbol id {} is not in the session's table", order.symbol.0),
            });
        };
        let body = wire::NewOrder {
            symbol: symbol.to_string(),
            qty: order.quantity,
            side: side_text(order.side).into(),
            order_type: order_type_text(order.order_type).into(),
            time_in_force: "day".into(),
            limit_price: match order.order_type {
                OrderType::Market => None,
                OrderType::Limit => order.limit_price,
            },
            client_order_id: Some(order.client_order_id.as_str().to_string()),
        };
        let body = serde_json::to_string(&body)
            .map_err(|e| self.bad(format!("cannot write the order as JSON: {e}")))?;
        let call = Call {
            method: "POST",
            path: "/v2/orders",
            query: &[],
            body: Some(body),
            time: MarketTime::AtLeast(order.submitted_at),
        };
        let reply = self.send(&call)?;
        if reply.ok() {
            let placed: wire::Order = self.parse(&call, &reply)?;
            return Ok(self.ack(&placed, &order.client_order_id));
        }
        match (reply.status, reply.message()) {
            (422, m) if m == DUPLICATE_CLIENT_ORDER_ID => {
                let placed = self.by_client_id(&order.client_order_id)?.ok_or_else(|| {
                    self.bad(format!(
                        "{}: says client order id {} is taken, but does not find it",
                        self.where_(&call),
                        order.client_order_id
                    ))
                })?;
                // The broker kept a refusal: the same id gets the same answer.
                if placed.status == "rejected" {
                    return Ok(self.ack(&placed, &order.client_order_id));
                }
                // Refused as a duplicate: nothing was created, whatever the order it holds.
                self.ids.lock().remember(&placed.id, &order.client_order_id);
                Ok(OrderAck::Duplicate {
                    venue_order_id: placed.id.clone(),
                    status: order_status(&placed.status),
                    filled_quantity: placed.filled_qty,
                })
            }
            (403 | 422, reason) => Ok(OrderAck::Rejected { reason }),
            _ => Err(self.refused(&call, &reply)),
        }
    }

    /// The acknowledgement an order at the broker stands for; remembers its id.
    fn ack(&self, placed: &wire::Order, client: &ClientOrderId) -> OrderAck {
        self.ids.lock().remember(&placed.id, client);
        if placed.status == "rejected" {
            OrderAck::Rejected {
                reason: placed
                    .reject_reason
                    .clone()
                    .unwrap_or_else(|| "rejected by the broker".into()),
            }
        } else {
            OrderAck::Accepted {
                venue_order_id: placed.id.clone(),
            }
        }
    }

    /// The broker's order with `client`'s id; `None` when it holds none.
    fn by_client_id(&self, client: &ClientOrderId) -> Result<Option<wire::Order>, VenueError> {
        let query = [("client_order_id", client.as_str())];
        let call = Call::get("/v2/orders:by_client_order_id", &query);
        let reply = self.send(&call)?;
        match reply.status {
            404 => Ok(None),
            _ if reply.ok() => self.parse(&call, &reply).map(Some),
            _ => Err(self.refused(&call, &reply)),
        }
    }

    fn venue_id(&self, client: &ClientOrderId) -> Result<String, VenueError> {
        if let Some(id) = self.ids.lock().by_client.get(client) {
            return Ok(id.clone());
        }
        let placed = self
            .by_client_id(client)?
            .ok_or_else(|| VenueError::UnknownOrder {
                venue: self.name.clone(),
                client_order_id: client.clone(),
            })?;
        self.ids.lock().remember(&placed.id, client);
        Ok(placed.id)
    }

    /// Cancels; tells whether the broker cancelled it (false: it was no longer open).
    fn cancel(&self, client: &ClientOrderId) -> Result<bool, VenueError> {
        let id = self.venue_id(client)?;
        let path = format!("/v2/orders/{id}");
        let call = Call {
            method: "DELETE",
            ..Call::get(&path, &[])
        };
        let reply = self.send(&call)?;
        match reply.status {
            _ if reply.ok() => Ok(true),
            // Filled, cancelled or rejected already: nothing left to cancel.
            422 => Ok(false),
            404 => Err(VenueError::UnknownOrder {
                venue: self.name.clone(),
                client_order_id: client.clone(),
            }),
            _ => Err(self.refused(&call, &reply)),
        }
    }

    fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError> {
        let limit = OPEN_ORDERS_LIMIT.to_string();
        let query = [
            ("status", "open"),
            ("limit", limit.as_str()),
            ("direction", "asc"),
        ];
        let call = Call::get("/v2/orders", &query);
        let orders: Vec<wire::Order> = self.fetch(&call)?;
        if orders.len() >= OPEN_ORDERS_LIMIT {
            return Err(self.bad(format!(
                "{}: {OPEN_ORDERS_LIMIT} or more open orders; vigil reads at most \
                 {OPEN_ORDERS_LIMIT}",
                self.where_(&call)
            )));
        }
        orders.iter().map(|o| self.venue_order(o)).collect()
    }

    fn venue_order(&self, o: &wire::Order) -> Result<VenueOrder, VenueError> {
        let what = || format!("order {}", o.id);
        let client = ClientOrderId::from(o.client_order_id.as_str());
        self.ids.lock().remember(&o.id, &client);
        let order_type = match o.kind.as_str() {
            "market" => OrderType::Market,
            "limit" => OrderType::Limit,
            other => return Err(self.bad(format!("{}: order type {other:?}", what()))),
        };
        Ok(VenueOrder {
            request: OrderRequest {
                client_order_id: client,
                symbol: self.symbol_id(&o.symbol, &what())?,
                side: self.side(&o.side, &what())?,
                quantity: o
                    .qty
                    .ok_or_else(|| self.bad(format!("{}: has no qty", what())))?,
                order_type,
                limit_price: o.limit_price,
                submitted_at: o.submitted_at.unwrap_or(o.created_at),
            },
            status: order_status(&o.status),
            filled_quantity: o.filled_qty,
        })
    }

    fn side(&self, text: &str, what: &str) -> Result<Side, VenueError> {
        match text {
            "buy" => Ok(Side::Buy),
            "sell" | "sell_short" => Ok(Side::Sell),
            other => Err(self.bad(format!("{what}: side {other:?}"))),
        }
    }

    fn positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        let held: Vec<wire::Position> = self.fetch(&Call::get("/v2/positions", &[]))?;
        held.iter()
            .map(|p| {
                let quantity = if p.side == "short" && p.qty > Decimal::ZERO {
                    -p.qty
                } else {
                    p.qty
                };
                Ok(VenuePosition {
                    symbol: self.symbol_id(&p.symbol, "a position")?,
                    quantity,
                    avg_price: p.avg_entry_price,
                })
            })
            .collect()
    }

    fn account(&self) -> Result<Account, VenueError> {
        let a: wire::Account = self.fetch(&Call::get("/v2/account", &[]))?;
        Ok(Account {
            cash: a.cash,
            equity: a.equity,
        })
    }

    /// One page of fill activities after `after` (all of them from the start when `None`),
    /// oldest first.
    fn fill_page(
        &self,
        after: Option<&str>,
        time: MarketTime,
    ) -> Result<Vec<wire::FillActivity>, VenueError> {
        let size = FILL_PAGE.to_string();
        let mut query = vec![("direction", "asc"), ("page_size", size.as_str())];
        if let Some(token) = after {
            query.push(("page_token", token));
        }
        self.fetch(&Call {
            time,
            ..Call::get("/v2/account/activities/FILL", &query)
        })
    }

    /// The id of the newest fill the broker holds, read without moving its clock: fills
    /// from before this venue was made are not this session's.
    fn newest_fill(&self) -> Result<Option<String>, VenueError> {
        let query = [("direction", "desc"), ("page_size", "1")];
        let newest: Vec<wire::FillActivity> = self.fetch(&Call {
            time: MarketTime::Without,
            ..Call::get("/v2/account/activities/FILL", &query)
        })?;
        Ok(newest.into_iter().next().map(|a| a.id))
    }

    /// Queues every fill after the last one seen, page by page. A failure leaves the
    /// rest for the next poll.
    fn poll_fills(&self) -> Result<(), VenueError> {
        let mut last_seen = self.last_seen.lock();
        loop {
            let page = self.fill_page(last_seen.as_deref(), MarketTime::Latest)?;
            let full = page.len() >= FILL_PAGE;
            for activity in page {
                match self.fill(&activity) {
                    Ok(fill) => self.reports.lock().push(ExecutionReport::Fill(fill)),
                    Err(Unbookable::Skip(why)) => self.dropped.lock().push(why),
                    Err(Unbookable::Retry(e)) => return Err(e),
                }
                *last_seen = Some(activity.id);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The fill an activity stands for.
    fn fill(&self, a: &wire::FillActivity) -> Result<Fill, Unbookable> {
        let what = format!("fill {}", a.id);
        let skip = |e: VenueError| Unbookable::Skip(e.to_string());
        // The broker not answering is worth another try; an answer that names no order
        // will not change.
        let client_order_id = self.client_of(&a.order_id).map_err(|e| match e {
            VenueError::Unreachable { .. } => Unbookable::Retry(e),
            other => Unbookable::Skip(format!("{what}: {other}")),
        })?;
        Ok(Fill {
            client_order_id,
            fill_id: a.id.clone(),
            symbol: self.symbol_id(&a.symbol, &what).map_err(skip)?,
            side: self.side(&a.side, &what).map_err(skip)?,
            quantity: a.qty,
            price: a.price,
            commission: a.commission.unwrap_or_default(),
            leaves_quantity: a.leaves_qty,
            ts: a.transaction_time,
        })
    }

    /// Vigil's id of the broker's order `venue_id`, asked of the broker when not known.
    fn client_of(&self, venue_id: &str) -> Result<ClientOrderId, VenueError> {
        if let Some(c) = self.ids.lock().by_venue.get(venue_id) {
            return Ok(c.clone());
        }
        let path = format!("/v2/orders/{venue_id}");
        let placed: wire::Order = self.fetch(&Call::get(&path, &[]))?;
        let client = ClientOrderId::from(placed.client_order_id.as_str());
        self.ids.lock().remember(venue_id, &client);
        Ok(client)
    }
}

/// Why a fill activity was not queued.
enum Unbookable {
    /// It can never be booked (a symbol the session does not trade): skipped, reported.
    Skip(String),
    /// The broker could not be asked about it: tried again at the next poll.
    Retry(VenueError),
}

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// Vigil's status for one of Alpaca's order statuses.
fn order_status(status: &str) -> OrderStatus {
    match status {
        "partially_filled" => OrderStatus::PartiallyFilled,
        "filled" => OrderStatus::Filled,
        "canceled" | "expired" | "done_for_day" | "replaced" => OrderStatus::Cancelled,
        "rejected" | "suspended" => OrderStatus::Rejected,
        _ => OrderStatus::Accepted,
    }
}

fn order_type_text(order_type: OrderType) -> &'static str {
    match order_type {
        OrderType::Market => "market",
        OrderType::Limit => "limit",
    }
}

impl AlpacaVenue {
    /// Connects: asks for the account (the URL and credentials work) and for the newest
    /// fill (later ones are this session's), then starts the fill poller.
    ///
    /// # Errors
    /// Fails when the broker cannot be reached or refuses the credentials.
    pub async fn connect(
        config: AlpacaVenueConfig,
        symbols: SymbolTable,
        clock: SharedClock,
    ) -> Result<Self, VenueError> {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(config.timeout))
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let inner = Arc::new(Inner {
            name: config.name,
            base: config.base_url.trim_end_matches('/').to_string(),
            agent,
            credentials: config.credentials,
            symbols,
            market_time: AtomicI64::new(NO_TIME),
            ids: Mutex::new(OrderIds::default()),
            reports: Mutex::new(Vec::new()),
            last_seen: Mutex::new(None),
            dropped: Mutex::new(Vec::new()),
            failed_polls: AtomicU64::new(0),
        });
        let newest = blocking(&inner, |i| {
            i.account()?;
            i.newest_fill()
        })
        .await?;
        *inner.last_seen.lock() = newest;
        let (wake, woken) = sync_channel(1);
        let poller = inner.clone();
        std::thread::Builder::new()
            .name("vigil-fills".into())
            .spawn(move || poll_loop(&poller, &woken, config.poll_interval))
            .map_err(|e| VenueError::Unreachable {
                venue: inner.name.clone(),
                reason: format!("cannot start the fill poller thread: {e}"),
            })?;
        Ok(Self { inner, clock, wake })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, VenueError> + Send + 'static,
    ) -> Result<T, VenueError> {
        blocking(&self.inner, f).await
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Inner) -> Result<T, VenueError> + Send + 'static,
) -> Result<T, VenueError> {
    let shared = inner.clone();
    tokio::task::spawn_blocking(move || f(&shared))
        .await
        .map_err(|e| VenueError::Unreachable {
            venue: inner.name.clone(),
            reason: format!("the HTTP call's thread failed: {e}"),
        })?
}

/// Polls every `interval` and whenever woken, until the venue is dropped.
fn poll_loop(inner: &Inner, woken: &Receiver<()>, interval: Duration) {
    loop {
        match woken.recv_timeout(interval) {
            // A failure is counted and the fills are asked for again at the next poll; the
            // Execution agent's next ping polls too and reports why.
            Ok(()) | Err(RecvTimeoutError::Timeout) => {
                let failed = inner.poll_fills().is_err();
                if failed {
                    inner.failed_polls.fetch_add(1, Ordering::Relaxed);
                } else {
                    inner.failed_polls.store(0, Ordering::Relaxed);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[async_trait]
impl ExecutionVenue for AlpacaVenue {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn submit_order(&self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        let order = order.clone();
        self.call(move |i| i.submit(&order)).await
    }

    async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError> {
        let client = id.clone();
        let cancelled = self.call(move |i| i.cancel(&client)).await?;
        if cancelled {
            self.inner.reports.lock().push(ExecutionReport::Cancelled {
                client_order_id: id.clone(),
                reason: "cancelled by request".into(),
                ts: self.clock.now(),
            });
        }
        Ok(())
    }

    async fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError> {
        self.call(Inner::open_orders).await
    }

    async fn positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        self.call(Inner::positions).await
    }

    async fn account(&self) -> Result<Account, VenueError> {
        self.call(Inner::account).await
    }

    /// Asks for the account and polls for fills; fails when either fails, or when fills
    /// were skipped since the last ping because they cannot be booked (each is reported
    /// once).
    async fn ping(&self) -> Result<(), VenueError> {
        self.call(|i| {
            i.account()?;
            i.poll_fills()
        })
        .await?;
        let dropped = std::mem::take(&mut *self.inner.dropped.lock());
        if dropped.is_empty() {
            Ok(())
        } else {
            Err(self.inner.bad(format!(
                "fills that cannot be booked were skipped: {}",
                dropped.join("; ")
            )))
        }
    }

    async fn order(&self, id: &ClientOrderId) -> Result<Option<VenueOrder>, VenueError> {
        let client = id.clone();
        self.call(move |i| {
            i.by_client_id(&client)?
                .map(|o| i.venue_order(&o))
                .transpose()
        })
        .await
    }

    fn drain_reports(&self, out: &mut Vec<ExecutionReport>) {
        out.append(&mut self.inner.reports.lock());
    }

    fn resume_reports_after(&self, fill_id: Option<&str>) {
        *self.inner.last_seen.lock() = fill_id.map(str::to_string);
    }

    async fn newest_fill_id(&self) -> Result<Option<String>, VenueError> {
        self.call(Inner::newest_fill).await
    }

    async fn sync_reports(&self) -> Result<(), VenueError> {
        self.call(Inner::poll_fills).await
    }

    /// Keeps the bar's time for the next request, and wakes the poller when it is later
    /// than any seen before: the broker fills what is due at it.
    fn on_market_data(&self, bar: &Bar) {
        let micros = bar.ts.timestamp_micros();
        let before = self.inner.market_time.fetch_max(micros, Ordering::AcqRel);
        if micros > before {
            match self.wake.try_send(()) {
                // Full: a wake-up is already pending, which covers this one.
                Ok(()) | Err(TrySendError::Full(())) => {}
                // The poller ends only when the venue is dropped: nothing to wake.
                Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}
