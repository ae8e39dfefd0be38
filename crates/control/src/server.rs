//! The HTTP(S) server: authentication, the health endpoints, commands, token rotation.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use parking_lot::RwLock;
use serde_json::{Value, json};
use vigil_config::VigilConfig;
use vigil_core::{Level, SharedClock, SystemClock};
use vigil_log::{Event, LogBuffer, LogEvent, LogSink};
use vigil_messages::{Command, CommandError};
use vigil_monitoring::HealthBoard;
use vigil_store::{AuditStart, ControlAuditEntry, NewControlCommand, SharedStore};

use crate::ControlError;
use crate::request::{CommandRequest, command_request, rotate_request};
use crate::tls::{TlsFiles, server_config};
use crate::token::{Token, load_or_create_token, replace_token};

/// The `service` of the control API's log lines (and its key in `log.service_levels`).
pub const SERVICE: &str = "control";

/// The values of the `outcome` label of `vigil_control_requests_total`.
pub const REQUEST_OUTCOMES: [&str; 7] = [
    "ok",
    "invalid",
    "unauthorized",
    "not_found",
    "conflict",
    "unavailable",
    "error",
];

const REQUESTS_TOTAL: &str = "vigil_control_requests_total";

/// The largest request body read (a command is a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

/// How long a command waits for the Monitor's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

const ENDPOINTS: [&str; 7] = [
    "GET /healthz",
    "GET /readyz",
    "GET /status",
    "GET /v1/status",
    "GET /metrics",
    "POST /v1/commands",
    "POST /v1/token/rotate",
];

/// What the server serves, where, and to whom.
pub struct ControlOptions {
    address: String,
    token_file: PathBuf,
    tls: Option<TlsFiles>,
    allow_insecure_remote: bool,
    board: HealthBoard,
    log: LogSink,
    log_level: Level,
    clock: SharedClock,
    wall: SharedClock,
    commands: Option<(Recipient<Command>, SharedStore)>,
    command_timeout: Duration,
    read_token_file: Option<PathBuf>,
    ui: crate::dashboard::UiOptions,
}

impl std::fmt::Debug for ControlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlOptions")
            .field("address", &self.address)
            .field("token_file", &self.token_file)
            .field("tls", &self.tls)
            .field("allow_insecure_remote", &self.allow_insecure_remote)
            .field("commands", &self.commands.is_some())
            .finish_non_exhaustive()
    }
}

impl ControlOptions {
    /// Serves `board` on `address` (port 0 picks a free port) with the token in
    /// `token_file`, logging to `log`; plain HTTP, no commands, system clocks.
    pub fn new(
        address: impl Into<String>,
        token_file: impl Into<PathBuf>,
        board: HealthBoard,
        log: LogSink,
    ) -> Self {
        Self {
            address: address.into(),
            token_file: token_file.into(),
            tls: None,
            allow_insecure_remote: false,
            board,
            log,
            log_level: Level::Info,
            clock: Arc::new(SystemClock),
            wall: Arc::new(SystemClock),
            commands: None,
            command_timeout: COMMAND_TIMEOUT,
            read_token_file: None,
            ui: crate::dashboard::UiOptions::default(),
        }
    }

    /// Takes the address, token file, TLS files, the insecure-remote override and the log
    /// level (`log.service_levels.control`) from `cfg`.
    pub fn from_config(cfg: &VigilConfig, board: HealthBoard, log: LogSink) -> Self {
        let c = &cfg.control;
        let mut opts = Self::new(c.address.clone(), cfg.control_token_file(), board, log);
        opts.tls = match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        opts.allow_insecure_remote = c.allow_insecure_remote;
        opts.read_token_file = c.read_token_file.clone();
        opts.ui = crate::dashboard::UiOptions {
            config: Some(Arc::new(cfg.clone())),
        };
        opts.log_level = cfg
            .log
            .service_levels
            .get(SERVICE)
            .copied()
            .unwrap_or(cfg.log.min_level);
        opts
    }

    /// Serves HTTPS with these PEM files.
    pub fn with_tls(mut self, tls: TlsFiles) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Accepts plain HTTP on a non-loopback address (logged CRITICAL at start).
    pub fn allow_insecure_remote(mut self, allow: bool) -> Self {
        self.allow_insecure_remote = allow;
        self
    }

    /// Takes commands (`POST /v1/commands`) to `monitor`, each recorded in `audit` first.
    pub fn with_commands(mut self, monitor: Recipient<Command>, audit: SharedStore) -> Self {
        self.commands = Some((monitor, audit));
        self
    }

    /// Stamps log lines with `clock` (the session's) and audit rows with `wall` (real time).
    pub fn with_clocks(mut self, clock: SharedClock, wall: SharedClock) -> Self {
        self.clock = clock;
        self.wall = wall;
        self
    }

    /// How long a command waits for the Monitor's answer before 503 (default 10 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }
}

/// The running server.
#[derive(Debug)]
pub struct ControlServer {
    handle: ServerHandle,
    addr: SocketAddr,
    tls: bool,
}

/// Who a token or a dashboard session speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The control token: everything.
    Operator,
    /// The read-only token (`control.read_token_file`): every read, no command.
    Viewer,
}

/// What every worker shares.
pub(crate) struct State {
    pub(crate) board: HealthBoard,
    token: RwLock<Token>,
    read_token: Option<Token>,
    pub(crate) ui: crate::dashboard::Ui,
    token_file: PathBuf,
    log: LogSink,
    log_level: Level,
    clock: SharedClock,
    pub(crate) wall: SharedClock,
    monitor: Option<Recipient<Command>>,
    pub(crate) audit: Option<SharedStore>,
    command_timeout: Duration,
}

impl State {
    pub(crate) fn event(&self, event: Event) -> LogEvent {
        LogEvent::new(self.clock.now(), SERVICE, event)
    }

    /// An event about one request: who sent it, and what.
    pub(crate) fn about(&self, event: Event, req: &HttpRequest) -> LogEvent {
        self.event(event)
            .with("remote", remote(req.peer_addr()))
            .with("method", req.method().to_string())
            .with("path", req.path().to_string())
    }

    pub(crate) fn emit(&self, ev: LogEvent) {
        let mut out = LogBuffer::new(self.log.clone(), SERVICE, self.log_level);
        out.emit(ev);
        out.flush();
    }

    pub(crate) fn count(&self, outcome: &'static str) {
        self.board
            .record(|| metrics::counter!(REQUESTS_TOTAL, "outcome" => outcome).increment(1));
    }

    /// The role of a presented token, if it is one of ours (compared in constant time).
    pub(crate) fn role_of(&self, presented: &[u8]) -> Option<Role> {
        if self.token.read().matches(presented) {
            Some(Role::Operator)
        } else if self
            .read_token
            .as_ref()
            .is_some_and(|t| t.matches(presented))
        {
            Some(Role::Viewer)
        } else {
            None
        }
    }

    /// The role of the request's bearer token, else why not (never the token itself).
    fn authorize(&self, headers: &HeaderMap) -> Result<Role, &'static str> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err("no Authorization header");
        };
        let bytes = value.as_bytes();
        let scheme = b"bearer ";
        if bytes.len() <= scheme.len() || !bytes[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Err("the Authorization header is not a Bearer token");
        }
        let presented = bytes[scheme.len()..].trim_ascii();
        self.role_of(presented).ok_or("wrong token")
    }
}

fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=399 => "ok",
        401 => "unauthorized",
        404 | 405 => "not_found",
        409 => "conflict",
        503 | 504 => "unavailable",
        400..=499 => "invalid",
        _ => "error",
    }
}

pub(crate) fn remote(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// The non-loopback address that would be served in plain HTTP, if allowed; refused
/// without TLS or the explicit override.
fn plain_remote(
    addrs: &[SocketAddr],
    tls: bool,
    allow_insecure_remote: bool,
) -> Result<Option<SocketAddr>, ControlError> {
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(remote) if !tls => {
            if allow_insecure_remote {
                Ok(Some(*remote))
            } else {
                Err(ControlError::InsecureRemote {
                    addr: remote.to_string(),
                })
            }
        }
        _ => Ok(None),
    }
}

impl ControlServer {
    /// Reads (or makes) the token, then starts serving inside the current actix system, on
    /// one worker thread.
    ///
    /// # Errors
    /// Fails when the token file is unusable (group- or world-readable, unreadable), a TLS
    /// file is unusable, the address cannot be bound, or it is not a loopback address and
    /// neither TLS nor the insecure-remote override is set.
    pub fn start(opts: ControlOptions) -> Result<Self, ControlError> {
        // Checked before anything is bound: a refused address is never listened on.
        let addrs = opts
            .address
            .to_socket_addrs()
            .map_err(|source| ControlError::Bind {
                addr: opts.address.clone(),
                source,
            })?
            .collect::<Vec<_>>();
        let plain_remote = plain_remote(&addrs, opts.tls.is_some(), opts.allow_insecure_remote)?;
        let token = load_or_create_token(&opts.token_file)?;
        let read_token = opts
            .read_token_file
            .as_deref()
            .map(load_or_create_token)
            .transpose()?;
        let tls = opts.tls.as_ref().map(server_config).transpose()?;
        let (monitor, audit) = opts
            .commands
            .map_or((None, None), |(m, s)| (Some(m), Some(s)));
        let state = web::Data::new(State {
            board: opts.board,
            token: RwLock::new(token),
            read_token,
            ui: crate::dashboard::Ui::new(opts.ui, opts.tls.is_some()),
            token_file: opts.token_file,
            log: opts.log,
            log_level: opts.log_level,
            clock: opts.clock,
            wall: opts.wall,
            monitor,
            audit,
            command_timeout: opts.command_timeout,
        });
        state.board.record(|| {
            metrics::describe_counter!(
                REQUESTS_TOTAL,
                "Control API requests answered, by outcome (unauthorized: no or a wrong bearer token)"
            );
            for o in REQUEST_OUTCOMES {
                metrics::counter!(REQUESTS_TOTAL, "outcome" => o).increment(0);
            }
        });
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .wrap(from_fn(authenticate))
                .service(endpoint("/healthz", Method::GET, web::get().to(healthz)))
                .service(endpoint("/readyz", Method::GET, web::get().to(readyz)))
                .service(endpoint("/status", Method::GET, web::get().to(status)))
                .service(endpoint("/v1/status", Method::GET, web::get().to(status)))
                .service(endpoint("/metrics", Method::GET, web::get().to(metrics)))
                .service(endpoint(
                    "/v1/commands",
                    Method::POST,
                    web::post().to(command),
                ))
                .service(endpoint(
                    "/v1/token/rotate",
                    Method::POST,
                    web::post().to(rotate),
                ))
                .configure(crate::dashboard::routes)
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1);
        let bind_err = |source| ControlError::Bind {
            addr: opts.address.clone(),
            source,
        };
        let server = match tls {
            Some(cfg) => server.bind_rustls_0_23(&opts.address, cfg),
            None => server.bind(&opts.address),
        }
        .map_err(bind_err)?;
        let bound = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| bind_err(std::io::Error::other("no address bound")))?;
        if let Some(remote) = plain_remote {
            eprintln!(
                "vigil: CRITICAL the control API serves plain HTTP on {remote} \
                 (control.allow_insecure_remote = true): the bearer token crosses the network \
                 in clear text; set control.tls_cert and control.tls_key"
            );
            state.emit(
                state
                    .event(Event::ControlInsecureRemote)
                    .with("address", remote.to_string()),
            );
        }
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(Self {
            handle,
            addr: bound,
            tls: opts.tls.is_some(),
        })
    }

    /// Returns the bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL: `http://127.0.0.1:PORT`, or `https://…` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops serving (requests under way are answered first).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// One path: its method's route, and a JSON 405 for any other method.
fn endpoint(path: &'static str, method: Method, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move |req: HttpRequest| {
            let method = method.clone();
            async move {
                HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, method.as_str()))
                    .json(json!({
                        "error": format!("{} {path}: use {method}", req.method()),
                    }))
            }
        }))
}

/// Every request: the bearer token first, then the handler; every answer is counted.
async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
        return Ok(req.into_response(
            HttpResponse::InternalServerError().json(json!({"error": "control state missing"})),
        ));
    };
    // The dashboard authenticates by its session cookie (crate::dashboard).
    let checked = if crate::dashboard::is_ui(req.path()) {
        Ok(Role::Operator)
    } else {
        state.authorize(req.headers())
    };
    if checked == Ok(Role::Viewer) && req.method() != Method::GET {
        state.count("unauthorized");
        state.emit(
            state
                .about(Event::ControlUnauthorized, req.request())
                .with("why", "the read-only token cannot act"),
        );
        return Ok(req.into_response(HttpResponse::Forbidden().json(json!({
            "error": "forbidden: the read-only token (control.read_token_file) cannot act; use the control token"
        }))));
    }
    if let Err(why) = checked {
        state.count("unauthorized");
        state.emit(
            state
                .about(Event::ControlUnauthorized, req.request())
                .with("why", why),
        );
        let challenge = if why == "wrong token" {
            "Bearer realm=\"vigil\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"vigil\""
        };
        let error = if why == "wrong token" {
            "unauthorized: wrong bearer token".to_string()
        } else {
            format!(
                "unauthorized: {why}; send Authorization: Bearer TOKEN (the token is in the \
                 file named by control.token_file on the vigil host)"
            )
        };
        return Ok(req.into_response(
            HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, challenge))
                .json(json!({ "error": error })),
        ));
    }
    let res = next.call(req).await;
    let status = match &res {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    state.count(outcome(status));
    res.map(ServiceResponse::map_into_boxed_body)
}

async fn healthz(state: web::Data<State>) -> HttpResponse {
    let st = state.board.status();
    match st.updated_at {
        Some(at) => HttpResponse::Ok()
            .json(json!({"status": "ok", "session": st.session, "updated_at": at})),
        None => HttpResponse::ServiceUnavailable().json(
            json!({"status": "starting", "reason": "the Monitor has not published a status yet"}),
        ),
    }
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    let st = state.board.status();
    let mut reasons = st.not_ready();
    if st.updated_at.is_none() {
        reasons.insert(0, "the Monitor has not published a status yet".into());
    }
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({"ready": true}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"ready": false, "reasons": reasons}))
    }
}

async fn status(state: web::Data<State>) -> HttpResponse {
    status_json(&state)
}

/// `/status`: the board, with `ready` and `not_ready`.
pub(crate) fn status_json(state: &State) -> HttpResponse {
    match status_value(state) {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => HttpResponse::InternalServerError().json(json!({ "error": e })),
    }
}

/// The board as `/status` shows it, with `ready` and `not_ready`.
pub(crate) fn status_value(state: &State) -> Result<Value, String> {
    let st = state.board.status();
    let ready = st.not_ready();
    let mut v = serde_json::to_value(&st).map_err(|e| format!("cannot encode the status: {e}"))?;
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "ready".into(),
            json!(ready.is_empty() && st.updated_at.is_some()),
        );
        m.insert("not_ready".into(), json!(ready));
    }
    Ok(v)
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.board.render())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": format!("no such endpoint: {} {}", req.method(), req.path()),
        "endpoints": ENDPOINTS,
    }))
}

/// A malformed request: 400 with the reason, logged.
pub(crate) fn invalid(state: &State, req: &HttpRequest, error: String) -> HttpResponse {
    state.emit(
        state
            .about(Event::ControlRequestInvalid, req)
            .with("error", error.clone()),
    );
    HttpResponse::BadRequest().json(json!({"ok": false, "error": error}))
}

/// The body of a command's answer.
fn answer(command: &str, argument: Option<&str>, ok: bool, text: &str, seq: Option<i64>) -> Value {
    let mut body = json!({
        "ok": ok,
        "command": command,
        "argument": argument,
        "audit_seq": seq,
    });
    body[if ok { "outcome" } else { "error" }] = Value::from(text);
    body
}

/// A request id seen before: the recorded answer, without running the command again.
fn repeated(req: &CommandRequest, earlier: &ControlAuditEntry) -> HttpResponse {
    let (name, argument) = (req.action.name(), req.action.argument());
    if earlier.asked.command != name || earlier.asked.argument != argument {
        return HttpResponse::BadRequest().json(json!({
            "ok": false,
            "error": format!(
                "field \"request_id\": {:?} was already used for {} {} (audit #{})",
                earlier.asked.request_id.as_deref().unwrap_or_default(),
                earlier.asked.command,
                earlier.asked.argument.as_deref().unwrap_or_default(),
                earlier.seq
            ),
        }));
    }
    let (Some(ok), Some(code)) = (earlier.ok, earlier.status) else {
        return HttpResponse::Conflict().json(json!({
            "ok": false,
            "error": format!(
                "request {:?} (audit #{}) has no recorded answer: it is still being carried out, \
                 or vigil stopped before it was; check `vigil ctl audit` and the log",
                earlier.asked.request_id.as_deref().unwrap_or_default(),
                earlier.seq
            ),
        }));
    };
    let text = if ok {
        earlier.outcome.as_deref()
    } else {
        earlier.error.as_deref()
    }
    .unwrap_or_default();
    let mut body = answer(name, argument.as_deref(), ok, text, Some(earlier.seq));
    body["repeated"] = Value::Bool(true);
    HttpResponse::build(StatusCode::from_u16(code).unwrap_or(StatusCode::OK)).json(body)
}

fn refusal(e: &CommandError) -> StatusCode {
    match e {
        CommandError::Invalid(_) => StatusCode::BAD_REQUEST,
        CommandError::Conflict(_) => StatusCode::CONFLICT,
        CommandError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn command(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let parsed = match command_request(&body) {
        Ok(p) => p,
        Err(e) => return invalid(&state, &req, e),
    };
    run_command(&req, &state, parsed).await
}

/// Carries out a well-formed command, for the API and the dashboard alike: recorded in the
/// audit first, sent to the Monitor, answered, logged and completed in the audit.
pub(crate) async fn run_command(
    req: &HttpRequest,
    state: &State,
    parsed: CommandRequest,
) -> HttpResponse {
    let (Some(monitor), Some(audit)) = (&state.monitor, &state.audit) else {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"ok": false, "error": "this server takes no commands"}));
    };
    let name = parsed.action.name();
    let argument = parsed.action.argument();
    let remote = remote(req.peer_addr());
    let record = NewControlCommand {
        at: state.wall.now(),
        who: parsed.who.clone(),
        remote: remote.clone(),
        command: name.to_string(),
        argument: argument.clone(),
        reason: parsed.reason.clone(),
        request_id: parsed.request_id.clone(),
    };
    let seq = match audit.begin_control_command(&record).await {
        Ok(AuditStart::New(seq)) => seq,
        Ok(AuditStart::Repeat(earlier)) => return repeated(&parsed, &earlier),
        Err(e) => {
            let error = format!("refused: the command cannot be recorded in the audit: {e}");
            state.emit(
                state
                    .event(Event::ControlAuditFailed)
                    .with("command", name)
                    .with("who", parsed.who.clone())
                    .with("error", e.to_string()),
            );
            return HttpResponse::ServiceUnavailable().json(json!({"ok": false, "error": error}));
        }
    };
    let sent = monitor
        .send(Command::new(
            parsed.action.clone(),
            parsed.who.clone(),
            parsed.reason.clone(),
        ))
        .timeout(state.command_timeout)
        .await;
    let (code, ok, text) = match sent {
        Ok(Ok(outcome)) => (StatusCode::OK, true, outcome),
        Ok(Err(e)) => (refusal(&e), false, e.to_string()),
        Err(actix::MailboxError::Timeout) => (
            StatusCode::SERVICE_UNAVAILABLE,
            false,
            format!(
                "no answer from the Monitor within {} s; the command may still be carried out: \
                 check the log",
                state.command_timeout.as_secs()
            ),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            false,
            format!("the Monitor is not running ({e})"),
        ),
    };
    let mut ev = state
        .event(Event::ControlCommand)
        .with("who", parsed.who.clone())
        .with("remote", remote)
        .with("command", name)
        .with("reason", parsed.reason.clone())
        .with("status", u64::from(code.as_u16()))
        .with("ok", ok)
        .with(if ok { "outcome" } else { "error" }, text.clone())
        .with("audit_seq", seq);
    if let Some(arg) = &argument {
        ev = ev.with("argument", arg.clone());
    }
    if let Some(id) = &parsed.request_id {
        ev = ev.with("request_id", id.clone());
    }
    state.emit(ev);
    let mut body = answer(name, argument.as_deref(), ok, &text, Some(seq));
    if let Err(e) = audit
        .finish_control_command(seq, state.wall.now(), ok, code.as_u16(), &text)
        .await
    {
        audit_failed(state, name, seq, &e, &mut body);
    }
    HttpResponse::build(code).json(body)
}

/// The answer is given, but its audit row could not be completed: logged, and said.
fn audit_failed(
    state: &State,
    command: &str,
    seq: i64,
    e: &vigil_store::StoreError,
    body: &mut Value,
) {
    state.emit(
        state
            .event(Event::ControlAuditFailed)
            .with("command", command.to_string())
            .with("audit_seq", seq)
            .with("error", e.to_string()),
    );
    body["audit_error"] = Value::from(format!(
        "the answer could not be recorded in the audit (the log has it): {e}"
    ));
}

async fn rotate(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let parsed = match rotate_request(&body) {
        Ok(p) => p,
        Err(e) => return invalid(&state, &req, e),
    };
    let remote = remote(req.peer_addr());
    let file = state.token_file.display().to_string();
    let seq = match &state.audit {
        None => None,
        Some(audit) => {
            let record = NewControlCommand {
                at: state.wall.now(),
                who: parsed.who.clone(),
                remote: remote.clone(),
                command: "rotate_token".into(),
                argument: None,
                reason: parsed.reason.clone(),
                request_id: None,
            };
            match audit.begin_control_command(&record).await {
                Ok(AuditStart::New(seq)) => Some(seq),
                Ok(AuditStart::Repeat(_)) => None,
                Err(e) => {
                    state.emit(
                        state
                            .event(Event::ControlAuditFailed)
                            .with("command", "rotate_token")
                            .with("error", e.to_string()),
                    );
                    return HttpResponse::ServiceUnavailable().json(json!({
                        "ok": false,
                        "error": format!("refused: the rotation cannot be recorded in the audit: {e}"),
                    }));
                }
            }
        }
    };
    let shared = state.clone();
    // The file and the token in memory change together, under the lock: a request sees
    // the old token or the new one, and the file always holds the one in force.
    let replaced = web::block(move || {
        let mut token = shared.token.write();
        replace_token(&shared.token_file).map(|new| *token = new)
    })
    .await;
    let (code, ok, text) = match replaced {
        Ok(Ok(())) => {
            // A rotated token may have leaked: the dashboard sessions it opened end too.
            let ended = state.ui.end_sessions();
            (
                StatusCode::OK,
                true,
                format!(
                    "a new token is in {file}; the old one is no longer accepted ({ended} \
                     dashboard session(s) ended)"
                ),
            )
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, false, e.to_string()),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
            format!("the rotation did not run: {e}"),
        ),
    };
    let ev = if ok {
        state.event(Event::ControlTokenRotated)
    } else {
        state
            .event(Event::ControlCommand)
            .level(Level::Error)
            .with("command", "rotate_token")
            .with("error", text.clone())
    };
    state.emit(
        ev.with("who", parsed.who.clone())
            .with("remote", remote)
            .with("reason", parsed.reason.clone())
            .with("file", file.clone()),
    );
    let mut body = answer("rotate_token", None, ok, &text, seq);
    body["token_file"] = Value::from(file);
    if let (Some(seq), Some(audit)) = (seq, &state.audit)
        && let Err(e) = audit
            .finish_control_command(seq, state.wall.now(), ok, code.as_u16(), &text)
            .await
    {
        audit_failed(&state, "rotate_token", seq, &e, &mut body);
    }
    HttpResponse::build(code).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(text: &[&str]) -> Vec<SocketAddr> {
        text.iter().map(|a| a.parse().expect("address")).collect()
    }

    #[test]
    fn plain_http_off_loopback_needs_the_explicit_override() {
        let remote = addrs(&["0.0.0.0:7317"]);
        let err = plain_remote(&remote, false, false).expect_err("refused");
        assert!(
            err.to_string()
                .contains("0.0.0.0:7317 is not a loopback address")
                && err.to_string().contains("allow_insecure_remote"),
            "{err}"
        );
        assert_eq!(
            plain_remote(&remote, false, true).expect("allowed"),
            Some(remote[0])
        );
        assert_eq!(plain_remote(&remote, true, false).expect("TLS"), None);
        let local = addrs(&["127.0.0.1:7317", "[::1]:7317"]);
        assert_eq!(plain_remote(&local, false, false).expect("loopback"), None);
    }

    #[test]
    fn answers_are_counted_by_outcome() {
        for (code, want) in [
            (200, "ok"),
            (400, "invalid"),
            (401, "unauthorized"),
            (404, "not_found"),
            (405, "not_found"),
            (409, "conflict"),
            (413, "invalid"),
            (503, "unavailable"),
            (500, "error"),
        ] {
            let status = StatusCode::from_u16(code).expect("status");
            assert_eq!(outcome(status), want, "{code}");
            assert!(REQUEST_OUTCOMES.contains(&want));
        }
    }
}
