//! [`FixVenue`]: the [`ExecutionVenue`] over a FIX 4.4 session.
//!
//! The session runs on a runtime of the venue's own (one worker thread, `vigil-fix`), so
//! that it lives as long as the venue whatever thread calls it. A supervisor logs on, waits
//! for the session to end, and logs on again with backoff and jitter, for as long as the
//! venue lives; while it is down every call fails as the venue unreachable.
//!
//! Every ExecutionReport is read on the session's dispatcher: a trade, a cancel or a reject
//! is kept in the store once by its ExecID (a resend's duplicate is dropped) before it is
//! queued for the Execution agent. The engine delivers an inbound message at most once (its
//! expected sequence number is saved before the message is handed over), so after each logon
//! the venue asks the counterparty where every order it believes open stands
//! (OrderStatusRequest) and which orders are open (OrderMassStatusRequest), and books, once,
//! what the counterparty filled that no report brought (a `status:` execution).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ironfix_core::message::RawMessage;
use ironfix_core::types::CompId;
use ironfix_engine::application::{Application, RejectReason, SessionId};
use ironfix_engine::{
    Connection, FrameObserver, Initiator, Observation, OutboundMessage, SendOutcome,
    StoreFailurePolicy,
};
use ironfix_session::SessionConfigBuilder;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use tokio::sync::oneshot;
use vigil_core::{
    ClientOrderId, ExecutionReport, Fill, OrderAck, OrderRequest, OrderStatus, OrderType,
    Portfolio, SharedClock, Side, SymbolId, SymbolTable, VenueOrder,
};
use vigil_providers::{Account, ExecutionVenue, VenueError, VenuePosition};
use vigil_store::{FixExecution, StateStore};

use crate::store::SessionStore;
use crate::wire::{
    self, BusinessReject, CancelReject, ExecReport, PositionReport, PositionsAck, TimeInForce,
};

/// Where the venue's positions come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionSource {
    /// The counterparty's, asked with RequestForPositions (AN) and read from its
    /// PositionReports (AP).
    Counterparty,
    /// The executions this session received, as the store keeps them.
    Executions,
}

/// Where and how a [`FixVenue`] reaches its counterparty.
#[derive(Clone)]
pub struct FixVenueConfig {
    /// The venue's name in logs and errors.
    pub name: String,
    /// The counterparty's `host:port`.
    pub address: String,
    /// SenderCompID (49): vigil's side.
    pub sender_comp_id: String,
    /// TargetCompID (56): the counterparty.
    pub target_comp_id: String,
    /// Username (553) and Password (554) sent on the Logon, when the counterparty asks.
    pub credentials: Option<(String, String)>,
    /// Account (1) on every order, when the counterparty needs one.
    pub account: Option<String>,
    /// HeartBtInt (108).
    pub heartbeat: Duration,
    /// The first wait before logging on again after the session ended; doubled at each
    /// failure, up to `reconnect_max`, with up to a quarter more of jitter.
    pub reconnect_initial: Duration,
    /// The longest wait between two logons.
    pub reconnect_max: Duration,
    /// How long an answer to a request (an order's acknowledgement, a cancel, a status, the
    /// positions) is waited for.
    pub reply_timeout: Duration,
    /// TimeInForce (59) of every order.
    pub time_in_force: TimeInForce,
    /// Where positions come from.
    pub positions: PositionSource,
    /// With [`PositionSource::Counterparty`], the PosTypes (703) of a PositionReport whose
    /// amounts add up to the position now; empty: each report must carry one amount.
    pub position_types: Vec<String>,
    /// The account's cash before the first execution this session keeps: FIX carries no
    /// balance, so the cash is this plus what the executions moved.
    pub opening_cash: Decimal,
    /// A drop copy session, on which the broker copies every execution of the account
    /// (those of trades made elsewhere too): with [`PositionSource::Executions`], positions
    /// and cash add up its executions rather than this session's.
    pub drop_copy: Option<DropCopy>,
}

/// The drop copy session's CompIDs (same address and credentials as the order session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCopy {
    /// SenderCompID (49) of vigil's side of the drop copy session.
    pub sender_comp_id: String,
    /// TargetCompID (56): the broker's drop copy side.
    pub target_comp_id: String,
}

impl DropCopy {
    /// The drop copy session's name in the store.
    pub fn session(&self) -> String {
        format!("FIX.4.4:{}->{}", self.sender_comp_id, self.target_comp_id)
    }
}

impl std::fmt::Debug for FixVenueConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixVenueConfig")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("sender_comp_id", &self.sender_comp_id)
            .field("target_comp_id", &self.target_comp_id)
            .field(
                "username",
                &self.credentials.as_ref().map(|(u, _)| u.as_str()),
            )
            .field("positions", &self.positions)
            .field("position_types", &self.position_types)
            .finish_non_exhaustive()
    }
}

impl FixVenueConfig {
    /// The session's name in the store: `FIX.4.4:SENDER->TARGET`.
    pub fn session(&self) -> String {
        format!("FIX.4.4:{}->{}", self.sender_comp_id, self.target_comp_id)
    }
}

/// How a NewOrderSingle was answered.
enum Ack {
    New(String),
    Rejected { reason: String, duplicate: bool },
}

/// Where an answer (or why none came) goes.
type Answer<T> = oneshot::Sender<Result<T, String>>;

/// Tells a waiter its answer; one that stopped waiting (its timeout passed) is not told.
fn tell<T>(to: oneshot::Sender<T>, answer: T) {
    match to.send(answer) {
        Ok(()) => {}
        // Given back: nobody waits for it any more, and the caller's timeout said so.
        Err(_moot) => {}
    }
}

/// The answers waited for, by the id they answer.
#[derive(Default)]
struct Waits {
    /// By the ClOrdID of a NewOrderSingle.
    acks: HashMap<String, oneshot::Sender<Ack>>,
    /// By the ClOrdID of an OrderCancelRequest: `Err` when refused.
    cancels: HashMap<String, oneshot::Sender<Result<(), Refusal>>>,
    /// By the ClOrdID asked about.
    /// By OrdStatusReqID: the ClOrdID asked about, and where the answer goes.
    status: HashMap<String, (String, Answer<ExecReport>)>,
    /// By MassStatusReqID: the reports so far.
    mass: HashMap<String, MassWait>,
    /// By PosReqID: how many reports the ack announced, the reports so far.
    positions: HashMap<String, PositionsWait>,
}

/// The reports of a mass status so far, and where they go once all came.
type MassWait = (Vec<ExecReport>, Option<Answer<Vec<ExecReport>>>);

struct PositionsWait {
    total: Option<u64>,
    reports: Vec<PositionReport>,
    done: Option<Answer<Vec<PositionReport>>>,
}

impl PositionsWait {
    fn finish_if_complete(&mut self) {
        if let Some(total) = self.total
            && self.reports.len() as u64 >= total
            && let Some(done) = self.done.take()
        {
            // The caller may have stopped waiting (a timeout): nothing to tell.
            tell(done, Ok(std::mem::take(&mut self.reports)));
        }
    }
}

/// A cancel the counterparty refused.
struct Refusal {
    unknown: bool,
    why: String,
}

/// What the venue knows of an order.
#[derive(Clone)]
struct Known {
    request: OrderRequest,
    status: OrderStatus,
    order_id: String,
}

/// The executions kept, and what they add up to.
#[derive(Default)]
struct Book {
    /// Every execution kept, in order of arrival.
    executions: Vec<FixExecution>,
    /// By ClOrdID: quantity and notional booked from trades.
    filled: HashMap<String, (Decimal, Decimal)>,
    /// By ClOrdID.
    orders: HashMap<String, Known>,
    /// By ClOrdID: how the executions kept say it closed.
    closed: HashMap<String, OrderStatus>,
}

impl Book {
    fn take(&mut self, e: FixExecution) {
        let status = status_of(&e.ord_status);
        if !status.is_open() {
            self.closed.insert(e.cl_ord_id.clone(), status);
        }
        if e.last_qty > Decimal::ZERO {
            let f = self.filled.entry(e.cl_ord_id.clone()).or_default();
            f.0 += e.last_qty;
            f.1 += e.last_qty * e.last_px;
        }
        self.executions.push(e);
    }

    fn trades(&self) -> impl Iterator<Item = &FixExecution> {
        self.executions
            .iter()
            .filter(|e| e.last_qty > Decimal::ZERO)
    }
}

/// A session's link, as its supervisor last saw it.
struct Link {
    conn: Option<Connection>,
    /// Why it is down (while `conn` is none).
    why: String,
    /// Logons tried since the last that held.
    attempts: u64,
}

impl Link {
    fn new() -> Self {
        Self {
            conn: None,
            why: "not logged on yet".into(),
            attempts: 0,
        }
    }
}

/// Which of the venue's sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Orders and their executions.
    Orders,
    /// Copies of every execution of the account.
    DropCopy,
}

struct Inner {
    cfg: FixVenueConfig,
    session: String,
    store: Arc<dyn StateStore>,
    wall: SharedClock,
    symbols: SymbolTable,
    link: Mutex<Link>,
    /// The drop copy session's link (unused without one).
    copy_link: Mutex<Link>,
    book: Mutex<Book>,
    /// The trades the drop copy brought, kept once by ExecID, in order of arrival.
    copies: Mutex<Vec<FixExecution>>,
    reports: Mutex<Vec<ExecutionReport>>,
    waits: Mutex<Waits>,
    /// What went wrong outside any call, reported once by the next ping.
    problems: Mutex<Vec<String>>,
    /// The id (ClOrdID, MassStatusReqID, PosReqID) of each request by the MsgSeqNum it went
    /// out under: a BusinessMessageReject names the message it refuses by number only.
    sent_ids: Mutex<BTreeMap<u64, String>>,
    next_id: AtomicU64,
    /// The venue is being dropped: its sessions are not logged on again.
    stopping: std::sync::atomic::AtomicBool,
    /// Reports read since the start, for the debug view.
    received: AtomicU64,
}

/// An [`ExecutionVenue`] speaking FIX 4.4 as an initiator.
pub struct FixVenue {
    inner: Arc<Inner>,
    runtime: SessionRuntime,
}

/// The sessions' runtime, shut down without waiting when dropped (from async code too,
/// where a plain drop would panic): the sessions end with their sockets, and the
/// counterparty keeps what this side sent (the next logon resumes it).
struct SessionRuntime(Option<tokio::runtime::Runtime>);

/// How long a venue being dropped waits for the counterparty to answer its Logout.
const LOGOUT_WAIT: Duration = Duration::from_secs(2);

impl Drop for FixVenue {
    /// Logs the sessions out (a graceful end the counterparty acknowledges, waited for up to
    /// 2 s), then stops their runtime. The wait runs on a thread of its own, as
    /// the venue may be dropped on an async thread.
    fn drop(&mut self) {
        let runtime = SessionRuntime(self.runtime.0.take());
        let inner = self.inner.clone();
        let logout = move || {
            if let Some(rt) = runtime.handle() {
                rt.block_on(inner.log_out());
            }
            drop(runtime);
        };
        match std::thread::Builder::new()
            .name("vigil-fix-logout".into())
            .spawn(logout)
        {
            Ok(thread) => {
                if thread.join().is_err() {
                    tracing::error!(target: "vigil_fix", "the FIX logout thread panicked");
                }
            }
            // The closure, and the runtime with it, was dropped: no Logout was sent.
            Err(e) => tracing::error!(
                target: "vigil_fix",
                "cannot start the FIX logout thread ({e}): the sessions end without a Logout"
            ),
        }
    }
}

impl Drop for SessionRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl SessionRuntime {
    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl std::fmt::Debug for FixVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixVenue")
            .field("name", &self.inner.cfg.name)
            .field("session", &self.inner.session)
            .field("received", &self.inner.received.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why the venue could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// The store could not be read or written.
    #[error("FIX venue {venue}: the store: {source}")]
    Store {
        /// The venue.
        venue: String,
        /// What failed.
        #[source]
        source: vigil_store::StoreError,
    },
    /// A setting the session layer refuses.
    #[error("FIX venue {venue}: {reason}")]
    Config {
        /// The venue.
        venue: String,
        /// What is wrong.
        reason: String,
    },
    /// The first logon failed.
    #[error("FIX venue {venue}: cannot log on to {address}: {reason}")]
    Logon {
        /// The venue.
        venue: String,
        /// The counterparty.
        address: String,
        /// Why.
        reason: String,
    },
}

impl FixVenue {
    /// Opens the session's state in `store`, logs on (a counterparty that cannot be reached
    /// or refuses the logon stops here), and starts the supervisor that logs on again
    /// whenever the session ends.
    ///
    /// # Errors
    /// See [`FixError`].
    pub async fn connect(
        cfg: FixVenueConfig,
        symbols: SymbolTable,
        store: Arc<dyn StateStore>,
        wall: SharedClock,
    ) -> Result<Self, FixError> {
        let venue = cfg.name.clone();
        let bad = |reason: String| FixError::Config {
            venue: venue.clone(),
            reason,
        };
        let session = cfg.session();
        let config = session_config(&cfg, &cfg.sender_comp_id, &cfg.target_comp_id).map_err(bad)?;
        let runtime = SessionRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("vigil-fix")
                .enable_all()
                .build()
                .map_err(|e| bad(format!("cannot start the session's runtime: {e}")))?,
        ));
        let Some(rt) = runtime.handle().cloned() else {
            return Err(bad("the session's runtime is gone".into()));
        };
        let kept = store.clone();
        let at = wall.clone();
        let name = session.clone();
        let copy_name = cfg.drop_copy.as_ref().map(DropCopy::session);
        let at2 = wall.clone();
        let (sessions, executions, sent, copy_state) = rt
            .spawn(async move {
                let s = SessionStore::open(kept.clone(), &name, at).await?;
                let e = kept.fix_executions(&name, 0).await?;
                let d = sent_orders(&*kept, &name).await?;
                let c = match &copy_name {
                    Some(n) => Some((
                        SessionStore::open(kept.clone(), n, at2).await?,
                        kept.fix_executions(n, 0).await?,
                    )),
                    None => None,
                };
                Ok::<_, vigil_store::StoreError>((s, e, d, c))
            })
            .await
            .map_err(|e| bad(format!("the store's task failed: {e}")))?
            .map_err(|source| FixError::Store {
                venue: venue.clone(),
                source,
            })?;
        let (copy_sessions, copies) = match copy_state {
            Some((s, c)) => (Some(s), c),
            None => (None, Vec::new()),
        };
        let mut book = Book::default();
        for e in executions {
            book.take(e);
        }
        // Every order sent that no execution closed is asked about after the logon: a
        // report the engine lost in a crash is not lost to the books.
        let mut unreadable = Vec::new();
        for frame in &sent {
            let request = match sent_order(&frame.frame, &symbols) {
                Ok(Some(request)) => request,
                Ok(None) => continue,
                Err(e) => {
                    unreadable.push(format!(
                        "the NewOrderSingle sent as {} cannot be read back from the store \
                         ({e}): its executions are not asked for after a logon",
                        frame.seq
                    ));
                    continue;
                }
            };
            let id = request.client_order_id.as_str().to_string();
            let status = book.closed.get(&id).copied().unwrap_or(OrderStatus::New);
            book.orders.insert(
                id,
                Known {
                    request,
                    status,
                    order_id: String::new(),
                },
            );
        }
        let seed = u64::try_from(wall.now().timestamp_millis()).unwrap_or(0);
        let inner = Arc::new(Inner {
            session,
            store,
            wall,
            symbols,
            link: Mutex::new(Link::new()),
            copy_link: Mutex::new(Link::new()),
            book: Mutex::new(book),
            copies: Mutex::new(copies),
            reports: Mutex::new(Vec::new()),
            waits: Mutex::new(Waits::default()),
            problems: Mutex::new(Vec::new()),
            sent_ids: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(seed),
            stopping: std::sync::atomic::AtomicBool::new(false),
            received: AtomicU64::new(0),
            cfg,
        });
        for why in unreadable {
            inner.problem(why);
        }
        let app = Arc::new(App {
            inner: inner.clone(),
            role: Role::Orders,
        });
        let initiator = Initiator::new(config, app)
            .with_store(Arc::new(sessions))
            .with_frame_observer(Arc::new(SentIds {
                inner: inner.clone(),
            }))
            .with_store_failure_policy(StoreFailurePolicy::CloseSession)
            .with_connect_timeout(inner.cfg.reply_timeout);
        let (first_tx, first_rx) = oneshot::channel();
        rt.spawn(supervise(inner.clone(), initiator, first_tx, Role::Orders));
        let mut first = first_rx.await.unwrap_or_else(|_| {
            Err("the session's supervisor ended before the first logon".into())
        });
        if let (Some(dc), Some(copy_store), Ok(())) = (&inner.cfg.drop_copy, copy_sessions, &first)
        {
            let config =
                session_config(&inner.cfg, &dc.sender_comp_id, &dc.target_comp_id).map_err(bad)?;
            let copier = Initiator::new(
                config,
                Arc::new(App {
                    inner: inner.clone(),
                    role: Role::DropCopy,
                }),
            )
            .with_store(Arc::new(copy_store))
            .with_store_failure_policy(StoreFailurePolicy::CloseSession)
            .with_connect_timeout(inner.cfg.reply_timeout);
            let (tx, rx) = oneshot::channel();
            rt.spawn(supervise(inner.clone(), copier, tx, Role::DropCopy));
            first = rx
                .await
                .unwrap_or_else(|_| Err("the drop copy's supervisor ended".into()))
                .map_err(|e| format!("the drop copy session: {e}"));
        }
        if let Err(reason) = first {
            return Err(FixError::Logon {
                venue: inner.cfg.name.clone(),
                address: inner.cfg.address.clone(),
                reason,
            });
        }
        Ok(Self { inner, runtime })
    }

    /// Runs `f` on the session's runtime.
    async fn on_session<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, VenueError>> + Send + 'static,
    ) -> Result<T, VenueError> {
        let Some(rt) = self.runtime.handle() else {
            return Err(self.inner.unreachable("the venue is closing".into()));
        };
        rt.spawn(f).await.map_err(|e| {
            self.inner
                .unreachable(format!("the session's task failed: {e}"))
        })?
    }
}

/// A FIX 4.4 session's settings between `sender` and `target`.
fn session_config(
    cfg: &FixVenueConfig,
    sender: &str,
    target: &str,
) -> Result<ironfix_engine::SessionConfig, String> {
    SessionConfigBuilder::new()
        .sender_comp_id(CompId::new(sender).map_err(|e| format!("SenderCompID {sender:?}: {e}"))?)
        .target_comp_id(CompId::new(target).map_err(|e| format!("TargetCompID {target:?}: {e}"))?)
        .begin_string("FIX.4.4")
        .heartbeat_interval(cfg.heartbeat)
        .build()
        .map_err(|e| format!("the session's settings: {e}"))
}

/// Logs on, waits for the session to end, and logs on again, until the venue is dropped.
/// The first logon's outcome goes to `first`; a first logon that fails ends it.
async fn supervise(
    inner: Arc<Inner>,
    initiator: Initiator<App>,
    first: oneshot::Sender<Result<(), String>>,
    role: Role,
) {
    let mut first = Some(first);
    let mut backoff = inner.cfg.reconnect_initial;
    loop {
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        match initiator.connect(inner.cfg.address.as_str()).await {
            Ok(conn) => {
                backoff = inner.cfg.reconnect_initial;
                if inner.stopping.load(Ordering::Acquire) {
                    // Closed while this logon was under way: it ends at once.
                    if conn.logout().await.is_ok() {
                        conn.wait_closed().await;
                    }
                    return;
                }
                {
                    let mut link = inner.link_of(role).lock();
                    link.conn = Some(conn.clone());
                    link.attempts = 0;
                }
                tracing::info!(
                    target: "vigil_fix",
                    session = %inner.session_of(role),
                    address = %inner.cfg.address,
                    next_sender = conn.next_sender_seq(),
                    next_target = conn.next_target_seq(),
                    "FIX session logged on"
                );
                if let Some(f) = first.take()
                    && f.send(Ok(())).is_err()
                {
                    return;
                }
                if role == Role::Orders {
                    tokio::spawn(catch_up(inner.clone()));
                }
                conn.wait_closed().await;
                let why = match conn.close_reason() {
                    Some(r) => format!("the session ended: {r:?}"),
                    None => "the session ended".into(),
                };
                inner.down(why, role);
                if inner.stopping.load(Ordering::Acquire) {
                    return;
                }
            }
            Err(e) => {
                let why = format!("logon to {} failed: {e}", inner.cfg.address);
                if let Some(f) = first.take() {
                    tell(f, Err(why));
                    return;
                }
                inner.down(why, role);
            }
        }
        let wait = jittered(backoff, inner.next_id.fetch_add(1, Ordering::Relaxed));
        let (why, attempts) = {
            let link = inner.link_of(role).lock();
            (link.why.clone(), link.attempts)
        };
        tracing::warn!(
            target: "vigil_fix",
            session = %inner.session_of(role),
            attempts,
            wait_ms = wait.as_millis() as u64,
            "{why}: logging on again"
        );
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(inner.cfg.reconnect_max);
    }
}

/// `base` plus up to a quarter more, spread by `salt` (so that many vigils do not log on
/// again in step).
fn jittered(base: Duration, salt: u64) -> Duration {
    let mut x = salt ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let quarter = base.as_millis() as u64 / 4;
    base + Duration::from_millis(if quarter == 0 { 0 } else { x % quarter })
}

/// After a logon: asks where every order believed open stands, and which orders are open,
/// so that what a lost report would have said is booked. Failures are reported by the next
/// ping.
async fn catch_up(inner: Arc<Inner>) {
    let open: Vec<OrderRequest> = inner
        .book
        .lock()
        .orders
        .values()
        .filter(|k| k.status.is_open())
        .map(|k| k.request.clone())
        .collect();
    for request in open {
        if let Err(e) = inner.status_of(&request).await {
            inner.problem(format!(
                "after the logon, the status of order {} could not be read: {e}",
                request.client_order_id
            ));
        }
    }
    if let Err(e) = inner.mass_status().await {
        inner.problem(format!(
            "after the logon, the open orders could not be read: {e}"
        ));
    }
}

impl Inner {
    fn unreachable(&self, reason: String) -> VenueError {
        VenueError::Unreachable {
            venue: self.cfg.name.clone(),
            reason,
        }
    }

    fn bad(&self, reason: String) -> VenueError {
        VenueError::BadResponse {
            venue: self.cfg.name.clone(),
            reason,
        }
    }

    /// Something went wrong outside any call: logged now, and reported by the next ping.
    fn problem(&self, what: String) {
        tracing::error!(target: "vigil_fix", session = %self.session, "{what}");
        self.problems.lock().push(what);
    }

    /// Logs the sessions out, each acknowledged or [`LOGOUT_WAIT`] passed, and stops their
    /// supervisors.
    async fn log_out(&self) {
        self.stopping.store(true, Ordering::Release);
        let conns: Vec<Connection> = [&self.link, &self.copy_link]
            .into_iter()
            .filter_map(|l| l.lock().conn.take())
            .collect();
        for c in conns {
            if c.logout().await.is_ok()
                && tokio::time::timeout(LOGOUT_WAIT, c.wait_closed())
                    .await
                    .is_err()
            {
                tracing::warn!(
                    target: "vigil_fix",
                    session = ?c.session_id(),
                    "no answer to the Logout in {LOGOUT_WAIT:?}: the line is closed"
                );
            }
        }
    }

    fn link_of(&self, role: Role) -> &Mutex<Link> {
        match role {
            Role::Orders => &self.link,
            Role::DropCopy => &self.copy_link,
        }
    }

    fn session_of(&self, role: Role) -> String {
        match (role, &self.cfg.drop_copy) {
            (Role::DropCopy, Some(dc)) => dc.session(),
            _ => self.session.clone(),
        }
    }

    fn down(&self, why: String, role: Role) {
        let mut link = self.link_of(role).lock();
        link.conn = None;
        link.attempts += 1;
        link.why = why;
        drop(link);
        if role == Role::DropCopy {
            return;
        }
        // Every answer waited for is not coming on this session.
        let mut w = self.waits.lock();
        w.acks.clear();
        w.cancels.clear();
        w.status.clear();
        w.mass.clear();
        w.positions.clear();
    }

    /// The session, when it is logged on.
    fn conn(&self) -> Result<Connection, VenueError> {
        let link = self.link.lock();
        match &link.conn {
            Some(c) if !c.is_closed() => Ok(c.clone()),
            _ => Err(self.unreachable(format!(
                "the FIX session to {} is not logged on ({}; logons tried since: {})",
                self.cfg.address, link.why, link.attempts
            ))),
        }
    }

    fn request_id(&self, kind: &str) -> String {
        format!("{kind}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends `message`; an error unless it reached the stream.
    async fn send(&self, message: OutboundMessage, what: &str) -> Result<(), VenueError> {
        match self.conn()?.send_tracked(message).await {
            SendOutcome::Sent { .. } => Ok(()),
            SendOutcome::NotSent { reason, .. } => {
                Err(self.unreachable(format!("{what} was not sent: {reason:?}")))
            }
            SendOutcome::Unknown { reason, .. } => Err(self.unreachable(format!(
                "{what} may or may not have reached the counterparty ({reason:?}): it is \
                 looked up by its id when the session is back"
            ))),
            other => Err(self.unreachable(format!("{what}: {other:?}"))),
        }
    }

    /// Waits for `rx` up to the reply timeout.
    async fn answer<T>(&self, rx: oneshot::Receiver<T>, what: &str) -> Result<T, VenueError> {
        match tokio::time::timeout(self.cfg.reply_timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => {
                Err(self.unreachable(format!("{what}: the session ended before the answer came")))
            }
            Err(_) => Err(self.unreachable(format!(
                "{what}: no answer in {} ms",
                self.cfg.reply_timeout.as_millis()
            ))),
        }
    }

    fn symbol_of(&self, id: SymbolId) -> Option<String> {
        self.symbols.symbol(id).map(|s| s.as_str().to_string())
    }

    async fn submit(&self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        let Some(symbol) = self.symbol_of(order.symbol) else {
            return Ok(OrderAck::Rejected {
                reason: format!("symbol id {} is not in the session's table", order.symbol.0),
            });
        };
        let id = order.client_order_id.as_str().to_string();
        // A resubmission (a duplicate) leaves what is known of the order as it is.
        self.book
            .lock()
            .orders
            .entry(id.clone())
            .or_insert_with(|| Known {
                request: order.clone(),
                status: OrderStatus::New,
                order_id: String::new(),
            });
        let (tx, rx) = oneshot::channel();
        self.waits.lock().acks.insert(id.clone(), tx);
        let msg = wire::new_order(
            order,
            &symbol,
            self.cfg.account.as_deref(),
            self.cfg.time_in_force,
        );
        let what = format!("NewOrderSingle {id}");
        if let Err(e) = self.send(msg, &what).await {
            self.waits.lock().acks.remove(&id);
            return Err(e);
        }
        let ack = match self.answer(rx, &what).await {
            Ok(ack) => ack,
            Err(_) => {
                // No acknowledgement: the counterparty says where it stands.
                self.waits.lock().acks.remove(&id);
                let r = self.status_of(order).await?;
                if r.ord_status == "8" {
                    return Ok(OrderAck::Rejected {
                        reason: r.text.unwrap_or_else(|| "rejected".into()),
                    });
                }
                Ack::New(r.order_id)
            }
        };
        match ack {
            Ack::New(venue_order_id) => Ok(OrderAck::Accepted { venue_order_id }),
            Ack::Rejected {
                duplicate: true, ..
            } => {
                let held = self.status_of(order).await?;
                Ok(OrderAck::Duplicate {
                    venue_order_id: held.order_id.clone(),
                    status: status_of_report(&held),
                    filled_quantity: held.cum_qty,
                })
            }
            Ack::Rejected { reason, .. } => Ok(OrderAck::Rejected { reason }),
        }
    }

    /// Asks where order `request` stands (OrderStatusRequest); books, once, a fill no report
    /// brought.
    async fn status_of(&self, request: &OrderRequest) -> Result<ExecReport, VenueError> {
        let id = request.client_order_id.as_str().to_string();
        let symbol = self.symbol_of(request.symbol).unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        let asked = self.request_id("status");
        self.waits
            .lock()
            .status
            .insert(asked.clone(), (id.clone(), tx));
        let what = format!("OrderStatusRequest {asked} for {id}");
        let msg = wire::status(&request.client_order_id, &symbol, request.side, &asked);
        if let Err(e) = self.send(msg, &what).await {
            self.waits.lock().status.remove(&asked);
            return Err(e);
        }
        let answer = self.answer(rx, &what).await;
        self.waits.lock().status.remove(&asked);
        answer?.map_err(|e| self.bad(format!("{what}: {e}")))
    }

    /// Asks for every open order (OrderMassStatusRequest).
    async fn mass_status(&self) -> Result<Vec<ExecReport>, VenueError> {
        let id = self.request_id("mass");
        let (tx, rx) = oneshot::channel();
        self.waits
            .lock()
            .mass
            .insert(id.clone(), (Vec::new(), Some(tx)));
        let what = format!("OrderMassStatusRequest {id}");
        let sent = self.send(wire::mass_status(&id), &what).await;
        let answer = match sent {
            Ok(()) => self.answer(rx, &what).await,
            Err(e) => Err(e),
        };
        self.waits.lock().mass.remove(&id);
        answer?.map_err(|e| self.bad(format!("{what}: {e}")))
    }

    /// The order `id` as sent (every NewOrderSingle the store keeps is read at start), or
    /// as a report described it. `None`: it never went on the wire.
    fn request_of(&self, id: &ClientOrderId) -> Option<OrderRequest> {
        self.book
            .lock()
            .orders
            .get(id.as_str())
            .map(|k| k.request.clone())
    }

    async fn cancel(&self, id: &ClientOrderId) -> Result<(), VenueError> {
        let Some(request) = self.request_of(id) else {
            return Err(VenueError::UnknownOrder {
                venue: self.cfg.name.clone(),
                client_order_id: id.clone(),
            });
        };
        let symbol = self.symbol_of(request.symbol).unwrap_or_default();
        let cancel_id = format!(
            "{}-c{}",
            id.as_str(),
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.waits.lock().cancels.insert(cancel_id.clone(), tx);
        let what = format!("OrderCancelRequest {cancel_id} for {id}");
        let msg = wire::cancel(&cancel_id, &request, &symbol, self.wall.now());
        let answer = match self.send(msg, &what).await {
            Ok(()) => self.answer(rx, &what).await,
            Err(e) => Err(e),
        };
        self.waits.lock().cancels.remove(&cancel_id);
        match answer? {
            Ok(()) => Ok(()),
            Err(Refusal { unknown: true, .. }) => Err(VenueError::UnknownOrder {
                venue: self.cfg.name.clone(),
                client_order_id: id.clone(),
            }),
            // Filled or closed already: nothing left to cancel (its report says how it
            // ended).
            Err(Refusal { .. }) if self.closed(id) => Ok(()),
            Err(Refusal { why, .. }) => Err(self.bad(format!("{what} was refused: {why}"))),
        }
    }

    fn closed(&self, id: &ClientOrderId) -> bool {
        self.book
            .lock()
            .orders
            .get(id.as_str())
            .is_some_and(|k| !k.status.is_open())
    }

    async fn counterparty_positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        let id = self.request_id("pos");
        let (tx, rx) = oneshot::channel();
        self.waits.lock().positions.insert(
            id.clone(),
            PositionsWait {
                total: None,
                reports: Vec::new(),
                done: Some(tx),
            },
        );
        let what = format!("RequestForPositions {id}");
        let account = self
            .cfg
            .account
            .clone()
            .unwrap_or_else(|| self.cfg.sender_comp_id.clone());
        let sent = self
            .send(wire::positions(&id, &account, self.wall.now()), &what)
            .await;
        let answer = match sent {
            Ok(()) => self.answer(rx, &what).await,
            Err(e) => Err(e),
        };
        self.waits.lock().positions.remove(&id);
        let reports = answer?.map_err(|e| self.bad(format!("{what}: {e}")))?;
        let mut out = Vec::new();
        for r in reports {
            let quantity = r
                .quantity(&self.cfg.position_types)
                .map_err(|e| self.bad(format!("{what}: {e}")))?;
            if quantity == Decimal::ZERO {
                continue;
            }
            out.push(VenuePosition {
                symbol: self.symbols.id(&r.symbol).ok_or_else(|| {
                    self.bad(format!(
                        "a position is in {}, a symbol this session does not trade",
                        r.symbol
                    ))
                })?,
                quantity,
                avg_price: r.price,
            });
        }
        Ok(out)
    }

    /// The trades positions and cash add up: the drop copy's where there is one, else this
    /// session's.
    fn account_trades(&self) -> Vec<FixExecution> {
        if self.cfg.drop_copy.is_some() {
            return self.copies.lock().clone();
        }
        self.book.lock().trades().cloned().collect()
    }

    /// The book the executions add up to from the opening cash, as vigil's own books add
    /// fills up ([`Portfolio::apply_fill`]).
    ///
    /// # Errors
    /// A position left open in a symbol this session does not trade.
    fn executed_book(&self) -> Result<Portfolio, VenueError> {
        let mut book = Portfolio::new(self.cfg.opening_cash);
        let mut elsewhere: HashMap<String, Decimal> = HashMap::new();
        for e in &self.account_trades() {
            match self.fill_of(e) {
                Some(fill) => book.apply_fill(&fill),
                None => {
                    let signed = if e.side == "1" {
                        e.last_qty
                    } else {
                        -e.last_qty
                    };
                    *elsewhere.entry(e.symbol.clone()).or_default() += signed;
                }
            }
        }
        match elsewhere.into_iter().find(|(_, q)| !q.is_zero()) {
            Some((symbol, _)) => Err(self.bad(format!(
                "the executions hold a position in {symbol}, a symbol this session does not trade"
            ))),
            None => Ok(book),
        }
    }

    /// The positions the executions add up to, at their average price.
    fn executed_positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        Ok(VenuePosition::held_in(&self.executed_book()?))
    }

    /// Cash from the opening cash and the executions; equity values what they hold at its
    /// average price (FIX carries no marks).
    fn account(&self) -> Result<Account, VenueError> {
        let book = self.executed_book()?;
        let held: Decimal = book
            .positions()
            .map(|(_, p)| p.quantity * p.avg_price)
            .sum();
        Ok(Account {
            cash: book.cash(),
            equity: book.cash() + held,
        })
    }

    /// With a drop copy: waits (up to the reply timeout) until it holds every fill this
    /// session booked, order by order, so that positions read from it are not behind the
    /// books; fails when its session is down or it stays behind.
    async fn copies_caught_up(&self) -> Result<(), VenueError> {
        let Some(dc) = &self.cfg.drop_copy else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + self.cfg.reply_timeout;
        loop {
            {
                let link = self.copy_link.lock();
                if link.conn.as_ref().is_none_or(|c| c.is_closed()) {
                    return Err(self.unreachable(format!(
                        "the drop copy session {} is not logged on ({}; logons tried since: {})",
                        dc.session(),
                        link.why,
                        link.attempts
                    )));
                }
            }
            let behind: Vec<String> = {
                let copied = filled_by_order(self.copies.lock().iter());
                let book = self.book.lock();
                filled_by_order(book.trades())
                    .into_iter()
                    .filter(|(order, qty)| copied.get(order).copied().unwrap_or_default() < *qty)
                    .map(|(order, _)| order)
                    .collect()
            };
            if behind.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.unreachable(format!(
                    "the drop copy session {} is behind: it has not copied the fills of {}",
                    dc.session(),
                    behind.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Keeps a trade the drop copy brought (once by ExecID).
    async fn on_copy(&self, r: ExecReport) {
        let Some(dc) = &self.cfg.drop_copy else {
            return;
        };
        if !r.is_trade() {
            return;
        }
        let e = self.execution(&r, r.exec_id.clone(), r.last_qty, r.last_px, r.commission);
        match self.store.fix_execution(&dc.session(), &e).await {
            Ok(Some(ordinal)) => {
                let mut e = e;
                e.ordinal = ordinal;
                self.copies.lock().push(e);
            }
            Ok(None) => {}
            Err(err) => self.problem(format!(
                "the drop copy's execution {} could not be kept in the store: {err}",
                e.exec_id
            )),
        }
    }

    // ----- what the counterparty sends -----

    async fn on_exec(&self, r: ExecReport) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let order = r.order().to_string();
        self.learn(&r);
        match r.exec_type.as_str() {
            "I" => {
                self.book_missing(&r).await;
                self.closed_unseen(&r).await;
                self.on_status(&r);
            }
            "8" => {
                let waiting = self.waits.lock().acks.remove(&r.cl_ord_id);
                let reason = r.text.clone().unwrap_or_else(|| "rejected".into());
                match waiting {
                    Some(tx) => {
                        // A duplicate's order is the one held, still live: not closed.
                        let duplicate = r.ord_rej_reason.as_deref() == Some("6");
                        if !duplicate {
                            self.keep(&r).await;
                        }
                        tell(tx, Ack::Rejected { reason, duplicate });
                    }
                    // Refused after it was accepted, or an answer nobody waits for.
                    // A late duplicate-ClOrdID refusal says nothing of the order held.
                    None if r.ord_rej_reason.as_deref() == Some("6") => {}
                    None if r.cl_ord_id != "NONE" && self.keep(&r).await => {
                        self.queue_closed(&order, format!("rejected: {reason}"), &r);
                    }
                    None => {}
                }
            }
            "4" | "C" | "3" => {
                if let Some(tx) = self.waits.lock().cancels.remove(&r.cl_ord_id) {
                    tell(tx, Ok(()));
                }
                if self.keep(&r).await {
                    let why = match r.exec_type.as_str() {
                        "4" => "cancelled",
                        "C" => "expired",
                        _ => "done for the day",
                    };
                    let reason = match &r.text {
                        Some(t) => format!("{why} by the counterparty ({t})"),
                        None => format!("{why} by the counterparty"),
                    };
                    self.queue_closed(&order, reason, &r);
                }
            }
            _ if r.is_trade() => {
                self.acked(&r);
                self.on_trade(r).await;
            }
            // A trade busted or corrected: vigil does not rebook it; a person must.
            "G" | "H" => self.problem(format!(
                "the counterparty {} execution {} of order {order} (ExecRefID {}): the books \
                 still hold the trade as it was first reported; check it with the broker and \
                 correct the position by hand",
                if r.exec_type == "H" {
                    "busted"
                } else {
                    "corrected"
                },
                r.exec_id,
                r.exec_ref_id.as_deref().unwrap_or("none")
            )),
            _ => self.acked(&r),
        }
    }

    /// An acknowledgement waited for.
    fn acked(&self, r: &ExecReport) {
        if let Some(tx) = self.waits.lock().acks.remove(&r.cl_ord_id) {
            tell(tx, Ack::New(r.order_id.clone()));
        }
    }

    /// What a report says of its order.
    fn learn(&self, r: &ExecReport) {
        if r.exec_type == "8" && r.ord_rej_reason.as_deref() == Some("6") {
            // A duplicate ClOrdID refused: the order held under it is unchanged.
            return;
        }
        let order = r.order();
        let mut book = self.book.lock();
        if let Some(k) = book.orders.get_mut(order) {
            k.status = status_of_report(r);
            if r.order_id != "NONE" {
                k.order_id = r.order_id.clone();
            }
            return;
        }
        if r.cl_ord_id == "NONE" || (r.exec_type == "I" && r.ord_rej_reason.as_deref() == Some("5"))
        {
            return;
        }
        if let Some(request) = self.request_from_report(r) {
            book.orders.insert(
                order.to_string(),
                Known {
                    request,
                    status: status_of_report(r),
                    order_id: r.order_id.clone(),
                },
            );
        }
    }

    fn request_from_report(&self, r: &ExecReport) -> Option<OrderRequest> {
        Some(OrderRequest {
            client_order_id: ClientOrderId::from(r.order()),
            symbol: self.symbols.id(&r.symbol)?,
            side: r.side,
            quantity: r.order_qty.unwrap_or(r.cum_qty + r.leaves_qty),
            order_type: r.ord_type.unwrap_or(if r.price.is_some() {
                OrderType::Limit
            } else {
                OrderType::Market
            }),
            limit_price: r.price,
            submitted_at: r.transact_time.unwrap_or_else(|| self.wall.now()),
        })
    }

    fn on_status(&self, r: &ExecReport) {
        let mut w = self.waits.lock();
        if let Some(id) = &r.mass_status_id {
            let Some((reports, done)) = w.mass.get_mut(id) else {
                return;
            };
            if r.cl_ord_id != "NONE" {
                reports.push(r.clone());
            }
            // The last report says so (912); where the count (911) is given, it suffices.
            let complete = r.last_report
                || r.total_reports
                    .is_some_and(|total| reports.len() as u64 >= total);
            if complete && let Some(done) = done.take() {
                tell(done, Ok(std::mem::take(reports)));
            }
            return;
        }
        // By the request's id where the counterparty echoes it, else by the order's.
        let asked = match &r.status_req_id {
            Some(id) if w.status.contains_key(id) => Some(id.clone()),
            _ => w
                .status
                .iter()
                .find(|(_, (order, _))| *order == r.cl_ord_id)
                .map(|(id, _)| id.clone()),
        };
        if let Some((_, tx)) = asked.and_then(|id| w.status.remove(&id)) {
            tell(tx, Ok(r.clone()));
        }
    }

    /// Keeps `r` (once by ExecID); false when it was kept before (a resend) or could not be
    /// kept (reported).
    async fn keep(&self, r: &ExecReport) -> bool {
        let e = self.execution(r, r.exec_id.clone(), r.last_qty, r.last_px, r.commission);
        self.keep_execution(e).await
    }

    fn execution(
        &self,
        r: &ExecReport,
        exec_id: String,
        qty: Decimal,
        px: Decimal,
        commission: Decimal,
    ) -> FixExecution {
        FixExecution {
            ordinal: 0,
            exec_id,
            cl_ord_id: r.order().to_string(),
            exec_type: r.exec_type.clone(),
            ord_status: r.ord_status.clone(),
            symbol: r.symbol.clone(),
            side: match r.side {
                Side::Buy => "1".into(),
                Side::Sell => "2".into(),
            },
            last_qty: qty,
            last_px: px,
            cum_qty: r.cum_qty,
            leaves_qty: r.leaves_qty,
            commission,
            transact_time: r.transact_time.unwrap_or_else(|| self.wall.now()),
            text: r.text.clone(),
        }
    }

    /// Keeps `e` once by its ExecID; a trade is queued for the Execution agent in the same
    /// step (under the book's lock, as [`ExecutionVenue::resume_reports_after`] reads them).
    async fn keep_execution(&self, mut e: FixExecution) -> bool {
        match self.store.fix_execution(&self.session, &e).await {
            Ok(Some(ordinal)) => {
                e.ordinal = ordinal;
                let mut book = self.book.lock();
                if e.last_qty > Decimal::ZERO {
                    self.queue_fill(&e);
                }
                book.take(e);
                true
            }
            Ok(None) => false,
            Err(err) => {
                // Asked about again at the next logon, whose status check books it.
                if let Some(k) = self.book.lock().orders.get_mut(&e.cl_ord_id) {
                    k.status = OrderStatus::Accepted;
                }
                self.problem(format!(
                    "execution {} of order {} could not be kept in the store, so it is not \
                     booked yet (the order's status is asked for at the next logon): {err}",
                    e.exec_id, e.cl_ord_id
                ));
                false
            }
        }
    }

    async fn on_trade(&self, r: ExecReport) {
        let order = r.order().to_string();
        let booked = self
            .book
            .lock()
            .filled
            .get(&order)
            .map_or(Decimal::ZERO, |f| f.0);
        if r.cum_qty <= booked
            && !self
                .book
                .lock()
                .executions
                .iter()
                .any(|e| e.exec_id == r.exec_id)
        {
            // A status already booked this fill (its report was lost, then came after all).
            self.problem(format!(
                "execution {} of order {order} ({} at {}) came after its order's status had \
                 booked it: not booked again",
                r.exec_id, r.last_qty, r.last_px
            ));
            return;
        }
        let e = self.execution(&r, r.exec_id.clone(), r.last_qty, r.last_px, r.commission);
        self.keep_execution(e).await;
    }

    /// Books the part of a status's CumQty no report brought, once.
    async fn book_missing(&self, r: &ExecReport) {
        let order = r.order().to_string();
        let (qty, notional) = self
            .book
            .lock()
            .filled
            .get(&order)
            .copied()
            .unwrap_or_default();
        if r.cum_qty <= qty || r.cl_ord_id == "NONE" {
            return;
        }
        let missing = r.cum_qty - qty;
        let px = if r.avg_px > Decimal::ZERO {
            ((r.avg_px * r.cum_qty - notional) / missing).round_dp(8)
        } else {
            r.price.unwrap_or(r.last_px)
        };
        let exec_id = format!("status:{order}:{}", r.cum_qty.normalize());
        let mut e = self.execution(r, exec_id, missing, px, Decimal::ZERO);
        e.exec_type = "F".into();
        e.text = Some("booked from the order's status: no execution report brought it".into());
        if self.keep_execution(e).await {
            self.problem(format!(
                "order {order}: the counterparty has filled {} of it, the reports brought {qty}: \
                 {missing} at {px} booked from its status",
                r.cum_qty
            ));
        }
    }

    /// Books an order's close (a cancel, an expiry) a status reports and no report brought.
    async fn closed_unseen(&self, r: &ExecReport) {
        let order = r.order().to_string();
        let closed = matches!(r.ord_status.as_str(), "3" | "4" | "C");
        if !closed || self.book.lock().closed.contains_key(&order) {
            return;
        }
        let mut e = self.execution(
            r,
            format!("status:{order}:closed"),
            Decimal::ZERO,
            Decimal::ZERO,
            Decimal::ZERO,
        );
        e.text = Some("closed as the order's status says: no execution report brought it".into());
        if self.keep_execution(e).await {
            self.problem(format!(
                "order {order} is closed at the counterparty (OrdStatus {}), which no report \
                 said: booked from its status",
                r.ord_status
            ));
            self.queue_closed(
                &order,
                "closed by the counterparty (from its status)".into(),
                r,
            );
        }
    }

    fn fill_of(&self, e: &FixExecution) -> Option<Fill> {
        Some(Fill {
            client_order_id: ClientOrderId::from(e.cl_ord_id.as_str()),
            fill_id: e.exec_id.clone(),
            symbol: self.symbols.id(&e.symbol)?,
            side: if e.side == "1" { Side::Buy } else { Side::Sell },
            quantity: e.last_qty,
            price: e.last_px,
            commission: e.commission,
            leaves_quantity: e.leaves_qty,
            ts: e.transact_time,
        })
    }

    fn queue_fill(&self, e: &FixExecution) {
        match self.fill_of(e) {
            Some(f) => self.reports.lock().push(ExecutionReport::Fill(f)),
            None => self.problem(format!(
                "execution {} is in {}, a symbol this session does not trade: not booked",
                e.exec_id, e.symbol
            )),
        }
    }

    fn queue_closed(&self, order: &str, reason: String, r: &ExecReport) {
        self.reports.lock().push(ExecutionReport::Cancelled {
            client_order_id: ClientOrderId::from(order),
            reason,
            ts: r.transact_time.unwrap_or_else(|| self.wall.now()),
        });
    }

    fn on_cancel_reject(&self, r: CancelReject) {
        let refusal = Refusal {
            unknown: r.unknown_order(),
            why: r.why(),
        };
        match self.waits.lock().cancels.remove(&r.cl_ord_id) {
            Some(tx) => tell(tx, Err(refusal)),
            None => self.problem(format!(
                "the counterparty refused a cancel of order {} nobody waits for: {}",
                r.orig_cl_ord_id, refusal.why
            )),
        }
    }

    fn on_business_reject(&self, r: BusinessReject) {
        let why = r.why();
        let by_seq = match r.ref_seq.as_deref().map(str::parse::<u64>) {
            Some(Ok(n)) => self.sent_ids.lock().remove(&n),
            Some(Err(e)) => {
                self.problem(format!(
                    "a BusinessMessageReject's RefSeqNum (45) {:?} is not a number: {e}",
                    r.ref_seq
                ));
                None
            }
            None => None,
        };
        let id = r.ref_id.clone().or(by_seq).unwrap_or_default();
        let mut w = self.waits.lock();
        if let Some(tx) = w.acks.remove(&id) {
            tell(
                tx,
                Ack::Rejected {
                    reason: why,
                    duplicate: false,
                },
            );
            return;
        }
        if let Some(tx) = w.cancels.remove(&id) {
            tell(
                tx,
                Err(Refusal {
                    unknown: false,
                    why,
                }),
            );
            return;
        }
        if let Some((_, tx)) = w.status.remove(&id) {
            tell(tx, Err(why));
            return;
        }
        if let Some((_, done)) = w.mass.get_mut(&id) {
            if let Some(tx) = done.take() {
                tell(tx, Err(why));
            }
            return;
        }
        if let Some(p) = w.positions.get_mut(&id) {
            if let Some(tx) = p.done.take() {
                tell(tx, Err(why));
            }
            return;
        }
        drop(w);
        self.problem(why);
    }

    fn on_positions_ack(&self, a: PositionsAck) {
        let mut w = self.waits.lock();
        let Some(p) = w.positions.get_mut(&a.request_id) else {
            return;
        };
        match a.result.as_str() {
            "0" => {
                p.total = Some(a.total);
                p.finish_if_complete();
            }
            "2" => {
                p.total = Some(0);
                p.finish_if_complete();
            }
            other => {
                if let Some(tx) = p.done.take() {
                    let text = a.text.map(|t| format!(": {t}")).unwrap_or_default();
                    tell(tx, Err(format!("refused (PosReqResult {other}){text}")));
                }
            }
        }
    }

    fn fail_positions(&self, request_id: &str, e: &wire::Unreadable) {
        if let Some(tx) = self
            .waits
            .lock()
            .positions
            .get_mut(request_id)
            .and_then(|p| p.done.take())
        {
            tell(tx, Err(format!("a PositionReport cannot be read: {e}")));
        }
    }

    fn on_position(&self, r: PositionReport) {
        let mut w = self.waits.lock();
        if let Some(p) = w.positions.get_mut(&r.request_id) {
            if p.total.is_none() {
                p.total = r.total;
            }
            p.reports.push(r);
            p.finish_if_complete();
        }
    }
}

/// The order a NewOrderSingle frame vigil sent states (`Ok(None)`: in a symbol this session
/// does not trade).
///
/// # Errors
/// A field missing or unreadable, named.
fn sent_order(frame: &[u8], symbols: &SymbolTable) -> Result<Option<OrderRequest>, String> {
    let text = String::from_utf8_lossy(frame);
    let field = |tag: &str| {
        text.split('\u{1}')
            .find_map(|f| f.strip_prefix(tag).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| format!("tag {tag} is missing"))
    };
    let number = |tag: &str| {
        let v = field(tag)?;
        Decimal::from_str_exact(v).map_err(|e| format!("tag {tag} = {v:?} is not a number: {e}"))
    };
    let Some(symbol) = symbols.id(field("55")?) else {
        return Ok(None);
    };
    let (order_type, limit_price) = match field("40")? {
        "2" => (OrderType::Limit, Some(number("44")?)),
        _ => (OrderType::Market, None),
    };
    let time = field("60")?;
    Ok(Some(OrderRequest {
        client_order_id: ClientOrderId::from(field("11")?),
        symbol,
        side: match field("54")? {
            "1" => Side::Buy,
            _ => Side::Sell,
        },
        quantity: number("38")?,
        order_type,
        limit_price,
        submitted_at: chrono::NaiveDateTime::parse_from_str(time, "%Y%m%d-%H:%M:%S%.f")
            .map_err(|e| format!("tag 60 = {time:?} is not a UTCTimestamp: {e}"))?
            .and_utc(),
    }))
}

/// Every NewOrderSingle session `session` sent that the store keeps, in order.
async fn sent_orders(
    store: &dyn StateStore,
    session: &str,
) -> Result<Vec<vigil_store::FixSentMessage>, vigil_store::StoreError> {
    const PAGE: usize = 500;
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = store.fix_sent_range(session, from, u64::MAX, PAGE).await?;
        let full = page.len() == PAGE;
        let Some(last) = page.last().map(|m| m.seq) else {
            return Ok(out);
        };
        out.extend(page.into_iter().filter(|m| m.msg_type == "D"));
        if !full {
            return Ok(out);
        }
        from = last + 1;
    }
}

/// Quantity filled by ClOrdID.
fn filled_by_order<'a>(trades: impl Iterator<Item = &'a FixExecution>) -> HashMap<String, Decimal> {
    let mut out = HashMap::new();
    for e in trades {
        *out.entry(e.cl_ord_id.clone()).or_default() += e.last_qty;
    }
    out
}

/// Vigil's status for a report's OrdStatus (39).
fn status_of_report(r: &ExecReport) -> OrderStatus {
    status_of(&r.ord_status)
}

/// Vigil's status for an OrdStatus (39).
fn status_of(ord_status: &str) -> OrderStatus {
    match ord_status {
        "1" => OrderStatus::PartiallyFilled,
        "2" => OrderStatus::Filled,
        "4" | "3" | "C" => OrderStatus::Cancelled,
        "8" => OrderStatus::Rejected,
        "A" => OrderStatus::New,
        _ => OrderStatus::Accepted,
    }
}

/// Notes the id of every request as it goes out, by its MsgSeqNum (the frame's tags 34, 35
/// and 11, 584 or 710), before any byte of it is written.
struct SentIds {
    inner: Arc<Inner>,
}

/// The most requests remembered by number.
const SENT_IDS_KEPT: usize = 4096;

impl FrameObserver for SentIds {
    fn on_inbound(&self, _: &[u8], _: &Observation<'_>) {}

    fn on_outbound(&self, frame: &[u8], _: &Observation<'_>) {
        let (mut seq, mut kind, mut id) = (None, None, None);
        for field in frame.split(|b| *b == 1) {
            let Some(eq) = field.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (tag, value) = (&field[..eq], &field[eq + 1..]);
            match tag {
                b"34" => seq = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                b"35" => kind = Some(value),
                // An OrderStatusRequest is answered by its OrdStatusReqID (790), which
                // follows its ClOrdID.
                b"11" | b"584" | b"710" | b"790" => id = std::str::from_utf8(value).ok(),
                _ => {}
            }
        }
        if let (Some(seq), Some(b"D" | b"F" | b"H" | b"AF" | b"AN"), Some(id)) = (seq, kind, id) {
            let mut ids = self.inner.sent_ids.lock();
            ids.insert(seq, id.to_string());
            while ids.len() > SENT_IDS_KEPT {
                ids.pop_first();
            }
        }
    }
}

impl Inner {
    /// Username and Password on a Logon, when configured.
    fn credentials(&self, message: &mut OutboundMessage) {
        if message.msg_type() == &ironfix_core::MsgType::Logon
            && let Some((user, password)) = &self.cfg.credentials
        {
            message.push_str(553, user).push_str(554, password);
        }
    }
}

/// A session's callbacks: the order session's, or the drop copy's (whose trades are kept;
/// it sends nothing of its own).
struct App {
    inner: Arc<Inner>,
    role: Role,
}

#[async_trait]
impl Application for App {
    async fn on_create(&self, _: &SessionId) {}

    async fn on_logon(&self, _: &SessionId) {}

    async fn on_logout(&self, _: &SessionId) {}

    /// Username and Password on the Logon, when configured.
    async fn to_admin(&self, message: &mut OutboundMessage, _: &SessionId) {
        self.inner.credentials(message);
    }

    async fn from_admin(&self, _: &RawMessage<'_>, _: &SessionId) -> Result<(), RejectReason> {
        Ok(())
    }

    async fn to_app(&self, _: &mut OutboundMessage, _: &SessionId) {}

    async fn from_app(&self, message: &RawMessage<'_>, _: &SessionId) -> Result<(), RejectReason> {
        let inner = &self.inner;
        if self.role == Role::DropCopy {
            if message.msg_type().as_str() != "8" {
                // A drop copy carries executions; anything else is not vigil's to act on.
                return Ok(());
            }
            return match ExecReport::read(message) {
                Ok(r) => {
                    inner.on_copy(r).await;
                    Ok(())
                }
                Err(e) => {
                    let why = e.to_string();
                    inner.problem(format!("a drop copy message cannot be read: {why}"));
                    Err(RejectReason::new(99, why))
                }
            };
        }
        let unreadable = |e: wire::Unreadable| {
            let why = e.to_string();
            inner.problem(format!(
                "a message from the counterparty cannot be read: {why}"
            ));
            // SessionRejectReason 99: other.
            Err(RejectReason::new(99, why))
        };
        match message.msg_type().as_str() {
            "8" => match ExecReport::read(message) {
                Ok(r) => inner.on_exec(r).await,
                Err(e) => return unreadable(e),
            },
            "9" => match CancelReject::read(message) {
                Ok(r) => inner.on_cancel_reject(r),
                Err(e) => return unreadable(e),
            },
            "j" => match BusinessReject::read(message) {
                Ok(r) => inner.on_business_reject(r),
                Err(e) => return unreadable(e),
            },
            "AO" => match PositionsAck::read(message) {
                Ok(r) => inner.on_positions_ack(r),
                Err(e) => return unreadable(e),
            },
            "AP" => match PositionReport::read(message) {
                Ok(r) => inner.on_position(r),
                Err(e) => {
                    // The request it answers fails now, naming why, rather than at its
                    // timeout.
                    if let Some(id) = message.get_field_str(710) {
                        inner.fail_positions(id, &e);
                    }
                    return unreadable(e);
                }
            },
            other => {
                inner.problem(format!(
                    "the counterparty sent a {other} message, which vigil does not handle"
                ));
                // BusinessRejectReason 3: unsupported message type.
                return Err(RejectReason::new(
                    99,
                    format!("message type {other} is not supported"),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ExecutionVenue for FixVenue {
    fn name(&self) -> &str {
        &self.inner.cfg.name
    }

    async fn submit_order(&self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        let inner = self.inner.clone();
        let order = order.clone();
        self.on_session(async move { inner.submit(&order).await })
            .await
    }

    async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError> {
        let inner = self.inner.clone();
        let id = id.clone();
        self.on_session(async move { inner.cancel(&id).await })
            .await
    }

    async fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError> {
        let inner = self.inner.clone();
        self.on_session(async move {
            let reports = inner.mass_status().await?;
            reports
                .iter()
                .filter(|r| !r.closed())
                .map(|r| {
                    let request = inner.request_from_report(r).ok_or_else(|| {
                        inner.bad(format!(
                            "open order {} is in {}, a symbol this session does not trade",
                            r.cl_ord_id, r.symbol
                        ))
                    })?;
                    Ok(VenueOrder {
                        request,
                        status: status_of_report(r),
                        filled_quantity: r.cum_qty,
                    })
                })
                .collect()
        })
        .await
    }

    async fn positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        match self.inner.cfg.positions {
            PositionSource::Executions => {
                self.inner.conn()?;
                let inner = self.inner.clone();
                self.on_session(async move {
                    inner.copies_caught_up().await?;
                    inner.executed_positions()
                })
                .await
            }
            PositionSource::Counterparty => {
                let inner = self.inner.clone();
                self.on_session(async move { inner.counterparty_positions().await })
                    .await
            }
        }
    }

    /// The cash the executions moved from the opening cash (FIX carries no balance).
    async fn account(&self) -> Result<Account, VenueError> {
        self.inner.conn()?;
        let inner = self.inner.clone();
        self.on_session(async move {
            inner.copies_caught_up().await?;
            inner.account()
        })
        .await
    }

    /// The session is logged on (its heartbeats and test requests watch the line), and
    /// nothing went wrong since the last ping; what did is reported once.
    async fn ping(&self) -> Result<(), VenueError> {
        self.inner.conn()?;
        let problems = std::mem::take(&mut *self.inner.problems.lock());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.inner.bad(problems.join("; ")))
        }
    }

    async fn order(&self, id: &ClientOrderId) -> Result<Option<VenueOrder>, VenueError> {
        let inner = self.inner.clone();
        let id = id.clone();
        self.on_session(async move {
            let Some(request) = inner.request_of(&id) else {
                // Never on the wire: every frame is kept before it is written.
                return Ok(None);
            };
            let r = inner.status_of(&request).await?;
            if r.ord_status == "8" && r.ord_rej_reason.as_deref() == Some("5") {
                return Ok(None);
            }
            Ok(Some(VenueOrder {
                request,
                status: status_of_report(&r),
                filled_quantity: r.cum_qty,
            }))
        })
        .await
    }

    fn drain_reports(&self, out: &mut Vec<ExecutionReport>) {
        out.append(&mut self.inner.reports.lock());
    }

    /// Queues again every fill kept after `fill_id` (all of them when `None`): the ones
    /// received before a crash that the journal did not hold.
    fn resume_reports_after(&self, fill_id: Option<&str>) {
        // The book's lock first, as a kept execution takes it before queueing.
        let book = self.inner.book.lock();
        let mut reports = self.inner.reports.lock();
        let after = match fill_id {
            None => 0,
            Some(id) => match book.executions.iter().find(|e| e.exec_id == id) {
                Some(e) => e.ordinal,
                None => {
                    drop(reports);
                    drop(book);
                    self.inner.problem(format!(
                        "the journal's last fill {id} is not among this FIX session's \
                         executions: none queued again"
                    ));
                    return;
                }
            },
        };
        reports.retain(|r| !matches!(r, ExecutionReport::Fill(_)));
        for e in book.trades().filter(|e| e.ordinal > after) {
            match self.inner.fill_of(e) {
                Some(f) => reports.push(ExecutionReport::Fill(f)),
                None => self.inner.problem(format!(
                    "execution {} is in {}, a symbol this session does not trade: not booked",
                    e.exec_id, e.symbol
                )),
            }
        }
    }

    /// A round trip behind everything the counterparty sent before it (an
    /// OrderMassStatusRequest): the resends a logon asked for are read, kept and queued
    /// when it returns.
    async fn sync_reports(&self) -> Result<(), VenueError> {
        let inner = self.inner.clone();
        self.on_session(async move { inner.mass_status().await.map(|_| ()) })
            .await
    }

    /// Logs both sessions out, each acknowledged or 2 s passed; no session is
    /// logged on again.
    async fn close(&self) {
        let inner = self.inner.clone();
        let closed = self
            .on_session(async move {
                inner.log_out().await;
                Ok(())
            })
            .await;
        if let Err(e) = closed {
            tracing::error!(target: "vigil_fix", "the FIX sessions' logout failed: {e}");
        }
    }

    async fn newest_fill_id(&self) -> Result<Option<String>, VenueError> {
        Ok(self
            .inner
            .book
            .lock()
            .trades()
            .last()
            .map(|e| e.exec_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jitter_adds_at_most_a_quarter() {
        let base = Duration::from_millis(1000);
        for salt in 0..200 {
            let d = jittered(base, salt);
            assert!(d >= base && d < base + Duration::from_millis(250), "{d:?}");
        }
        assert_eq!(
            jittered(Duration::from_millis(3), 7),
            Duration::from_millis(3)
        );
    }
}
