//! The operations dashboard, served under `/ui/` on the control API's address and port,
//! every asset compiled into the binary (no CDN: it works offline).
//!
//! - **Login** (`/ui/login`): the control token (operator) or the read-only token
//!   (`control.read_token_file`, viewer), and a name for the audit. A good token opens a
//!   session: a random id in the `vigil_session` cookie (HttpOnly, SameSite=Strict, Secure
//!   under TLS, path `/ui`), for 12 hours or until logout. A wrong token is logged
//!   (`control_unauthorized`) and counted like a wrong bearer token.
//! - **CSRF**: every `POST` under `/ui/` but the login carries the session's CSRF token in
//!   `X-CSRF-Token` (the page reads it from `/ui/api/session`, which another site cannot
//!   read); without it, 403.
//! - **Actions** are the API's: a command from the page goes through the same path as
//!   `POST /v1/commands` (recorded in the audit first, logged as `control_command`), signed
//!   `dashboard:NAME`; an alert acknowledged or silenced here is a request in the store, as
//!   `vigil alerts ack|silence` records it; a promotion is the registry's, as `vigil model
//!   promote` makes it. A viewer's session acts on nothing (403).
//! - **Live**: `/ui/api/events` streams the health board (server-sent events) at every
//!   probe round the page has not seen, so the page updates without reloading.
//! - The pages' data: `/ui/api/status` (the board, the automated day's phase), `alerts`,
//!   `log` (filters and traces), `positions` (the journaled books), `models`, `drills`,
//!   `checklists`, `backtests`, `fleet` (every node of `[fleet]`, read from NATS), and `/ui/reports/day-DATE.{txt,png}` and
//!   `/ui/reports/backtest-ID.html` (see `reports`).

use std::collections::HashMap;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_core::{Level, Timestamp};
use vigil_log::Event;
use vigil_store::RequestKind;

use crate::server::{Role, State, invalid, remote, run_command, status_value};

/// The session cookie's name.
const COOKIE: &str = "vigil_session";
/// The header that carries the CSRF token.
const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
const SESSION_HOURS: i64 = 12;
/// The most log lines one query answers (the last written).
const MAX_LOG_LINES: usize = 500;

/// What the dashboard reads besides the board and the store: the session's config (its
/// log folder, checklist folder, alerting, calendar and release standards). `None`: a
/// server built without one (its pages that need it are empty).
#[derive(Clone, Debug, Default)]
pub(crate) struct UiOptions {
    pub(crate) config: Option<std::sync::Arc<vigil_config::VigilConfig>>,
}

/// One logged-in browser.
#[derive(Clone, Debug)]
pub(crate) struct UiSession {
    role: Role,
    pub(crate) who: String,
    csrf: String,
    expires: Timestamp,
}

/// The dashboard's sessions and settings.
pub(crate) struct Ui {
    sessions: Mutex<HashMap<String, UiSession>>,
    secure: bool,
    pub(crate) opts: UiOptions,
    /// The exchange calendar with its overrides, made once (or why it cannot be).
    calendar: Option<Result<vigil_calendar::Calendar, String>>,
}

impl Ui {
    pub(crate) fn new(opts: UiOptions, tls: bool) -> Self {
        let calendar = opts
            .config
            .as_ref()
            .map(|c| c.calendar.calendar().map_err(|e| e.to_string()));
        Self {
            sessions: Mutex::new(HashMap::new()),
            secure: tls,
            opts,
            calendar,
        }
    }

    /// The automated day's phase at `now` (wall time) and the next one, as the overview
    /// shows them; `null` without a config.
    pub(crate) fn phases(&self, now: Timestamp) -> Value {
        let (Some(cfg), Some(calendar)) = (&self.opts.config, &self.calendar) else {
            return Value::Null;
        };
        let calendar = match calendar {
            Ok(c) => c,
            Err(e) => return json!({ "error": e }),
        };
        let schedule = &cfg.calendar.schedule;
        let today = calendar.local_date(now);
        // Today's phases begun, else yesterday's (a late auto-stop): the last one begun.
        let mut current = None;
        for date in [today.pred_opt().unwrap_or(today), today] {
            match schedule.schedule(calendar, date) {
                Ok(phases) => {
                    if let Some(p) = phases.into_iter().rev().find(|(_, at)| *at <= now) {
                        current = Some(p);
                    }
                }
                Err(e) => return json!({ "error": e.to_string() }),
            }
        }
        let next = match schedule.next_transition(calendar, now) {
            Ok(n) => n,
            Err(e) => return json!({ "error": e.to_string() }),
        };
        let after_stop = current.is_some_and(|(p, _)| p == vigil_calendar::Phase::AutoStop);
        json!({
            "automation": cfg.calendar.automation,
            "phase": match current {
                Some((p, _)) if !after_stop => p.as_str(),
                _ => "closed",
            },
            "since": current.map(|(_, at)| at),
            "next": next.map(|(p, at)| json!({ "phase": p.as_str(), "at": at })),
        })
    }

    /// Ends every dashboard session (after a token rotation); how many there were.
    pub(crate) fn end_sessions(&self) -> usize {
        let mut sessions = self.sessions.lock();
        let n = sessions.len();
        sessions.clear();
        n
    }

    /// `checklist.dir`: the checklists' and the day reports' folder.
    pub(crate) fn checklist_dir(&self) -> Option<std::path::PathBuf> {
        self.opts.config.as_ref().map(|c| c.checklist.dir.clone())
    }
}

/// Whether `path` is the dashboard's (authenticated by its cookie, not a bearer token).
pub(crate) fn is_ui(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The dashboard's routes.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(|| async { see_other("/ui/") }))
        .route("/ui/", web::get().to(index))
        .route("/ui/login", web::get().to(login_page))
        .route("/ui/login", web::post().to(login))
        .route("/ui/logout", web::post().to(logout))
        .route("/ui/assets/{name}", web::get().to(asset))
        .route("/ui/api/session", web::get().to(session_info))
        .route("/ui/api/status", web::get().to(api_status))
        .route("/ui/api/events", web::get().to(events))
        .route("/ui/api/command", web::post().to(api_command))
        .route("/ui/api/alerts", web::get().to(api_alerts))
        .route("/ui/api/alerts/ack", web::post().to(api_ack))
        .route("/ui/api/log", web::get().to(api_log))
        .route("/ui/api/positions", web::get().to(api_positions))
        .route(
            "/ui/api/alerts/silence",
            web::post().to(reports::api_silence),
        )
        .route("/ui/api/models", web::get().to(reports::api_models))
        .route(
            "/ui/api/models/promote",
            web::post().to(reports::api_promote),
        )
        .route("/ui/api/fleet", web::get().to(fleet::api_fleet))
        .route("/ui/api/drills", web::get().to(reports::api_drills))
        .route("/ui/api/backtests", web::get().to(reports::api_backtests))
        .route("/ui/api/checklists", web::get().to(reports::api_checklists))
        .route("/ui/reports/{name}", web::get().to(reports::report_file));
}

mod fleet;
mod reports;

/// A request whose data cannot be read, or whose action cannot be recorded: 503 saying
/// what and why, logged (`dashboard_request_failed`; counted as every answer is, by its
/// status).
pub(crate) fn unavailable(state: &State, what: &str, e: impl std::fmt::Display) -> HttpResponse {
    let error = format!("{what}: {e}");
    log_failure(state, what, &error, 503, Level::Warn);
    HttpResponse::ServiceUnavailable().json(json!({ "error": error }))
}

/// A request vigil itself failed (no randomness for a session, a worker that died): 500
/// saying what and why, logged at ERROR (`dashboard_request_failed`).
pub(crate) fn failed(state: &State, what: &str, e: impl std::fmt::Display) -> HttpResponse {
    let error = format!("{what}: {e}");
    log_failure(state, what, &error, 500, Level::Error);
    HttpResponse::InternalServerError().json(json!({ "error": error }))
}

fn log_failure(state: &State, what: &str, error: &str, status: u16, level: Level) {
    state.emit(
        state
            .event(Event::DashboardRequestFailed)
            .level(level)
            .with("what", what.to_string())
            .with("error", error.to_string())
            .with("status", u64::from(status)),
    );
}

const INDEX_HTML: &str = include_str!("../assets/dashboard/index.html");
const LOGIN_HTML: &str = include_str!("../assets/dashboard/login.html");
const LOGIN_JS: &str = include_str!("../assets/dashboard/login.js");
const APP_JS: &str = include_str!("../assets/dashboard/app.js");
const APP_CSS: &str = include_str!("../assets/dashboard/app.css");
const UPLOT_JS: &str = include_str!("../assets/dashboard/vendor/uplot-1.6.32/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/dashboard/vendor/uplot-1.6.32/uPlot.min.css");

/// The assets, by the name the pages use.
fn asset_named(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "login.js" => (LOGIN_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "uPlot.iife.min.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uPlot.min.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return None,
    })
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// A page of ours: no caching of a page that shows live state, no framing, scripts only
/// from this origin.
fn page(html: String) -> HttpResponse {
    page_with(actix_web::http::StatusCode::OK, html)
}

fn page_with(status: actix_web::http::StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'",
        ))
        .body(html)
}

/// An asset as served: its ETag (a hash of its content) and its gzip form, made once
/// (`None` if it could not be made: the asset goes out plain).
struct Packed {
    etag: String,
    gzip: Option<web::Bytes>,
}

/// The packed form of every asset, by name, made at the first request for one.
fn packed(name: &str) -> Option<&'static Packed> {
    static PACKED: std::sync::OnceLock<HashMap<&'static str, Packed>> = std::sync::OnceLock::new();
    PACKED
        .get_or_init(|| {
            ASSETS
                .iter()
                .filter_map(|name| {
                    let (body, _) = asset_named(name)?;
                    let digest = sha2::Digest::finalize(
                        <sha2::Sha256 as sha2::Digest>::new_with_prefix(body),
                    );
                    let etag = format!("\"{}\"", hex::encode(&digest[..8]));
                    Some((
                        *name,
                        Packed {
                            etag,
                            gzip: gzip(body.as_bytes()).map(web::Bytes::from),
                        },
                    ))
                })
                .collect()
        })
        .get(name)
}

/// The names [`asset_named`] knows.
const ASSETS: [&str; 5] = [
    "app.js",
    "login.js",
    "app.css",
    "uPlot.iife.min.js",
    "uPlot.min.css",
];

/// `bytes` gzipped, at the best compression (once per asset and process).
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    match enc.write_all(bytes).and_then(|()| enc.finish()) {
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("vigil: WARN the dashboard's assets go out without gzip: {e}");
            None
        }
    }
}

/// An asset: revalidated at each use (`no-cache`) by its ETag, so a return visit costs a
/// `304` and no bytes; gzipped for a browser that takes it (a phone's link is slow).
async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let (Some((body, kind)), Some(packed)) = (asset_named(&name), packed(&name)) else {
        return HttpResponse::NotFound().json(json!({"error": format!("no asset {name:?}")}));
    };
    let header_has = |h: header::HeaderName, needle: &str| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().split(';').next() == Some(needle))
            })
    };
    if header_has(header::IF_NONE_MATCH, &packed.etag) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, packed.etag.clone()))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .finish();
    }
    let mut res = HttpResponse::Ok();
    res.content_type(kind)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, packed.etag.clone()))
        .insert_header((header::VARY, "Accept-Encoding"));
    match &packed.gzip {
        Some(gz) if header_has(header::ACCEPT_ENCODING, "gzip") => res
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(gz.clone()),
        _ => res.body(body),
    }
}

/// Random bytes as hex, from the operating system.
fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(hex::encode(bytes))
}

/// The session of the request's cookie, if it is live (an expired one is forgotten).
fn session_of(req: &HttpRequest, state: &State) -> Option<UiSession> {
    let id = req.cookie(COOKIE)?.value().to_string();
    let now = state.wall.now();
    let mut sessions = state.ui.sessions.lock();
    match sessions.get(&id) {
        Some(s) if s.expires > now => Some(s.clone()),
        Some(_) => {
            sessions.remove(&id);
            None
        }
        None => None,
    }
}

/// The session, or the answer to give without one: the login page for a page, 401 for
/// the API.
pub(crate) fn require(req: &HttpRequest, state: &State) -> Result<UiSession, Box<HttpResponse>> {
    match session_of(req, state) {
        Some(s) => Ok(s),
        None if req.path().starts_with("/ui/api/") => {
            state.count("unauthorized");
            Err(Box::new(
                HttpResponse::Unauthorized()
                    .json(json!({"error": "not logged in: open /ui/login"})),
            ))
        }
        None => Err(Box::new(see_other("/ui/login"))),
    }
}

/// An action's session (as [`require_action`]) and its JSON body, or the answer to give:
/// a body that does not read is 400, saying what was `expected`.
pub(crate) fn action_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &State,
    body: &[u8],
    expected: &str,
) -> Result<(UiSession, T), Box<HttpResponse>> {
    let s = require_action(req, state)?;
    match serde_json::from_slice(body) {
        Ok(b) => Ok((s, b)),
        Err(e) => Err(Box::new(invalid(
            state,
            req,
            format!("expected {expected}: {e}"),
        ))),
    }
}

/// The session of a `POST`: its CSRF token must come in `X-CSRF-Token`, and a viewer may
/// not act.
pub(crate) fn require_action(
    req: &HttpRequest,
    state: &State,
) -> Result<UiSession, Box<HttpResponse>> {
    let s = require(req, state)?;
    let sent = req
        .headers()
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let refused = |why: &'static str| {
        state.count("unauthorized");
        state.emit(
            state
                .about(Event::ControlUnauthorized, req)
                .with("why", why)
                .with("who", s.who.clone()),
        );
        HttpResponse::Forbidden().json(json!({ "error": format!("forbidden: {why}") }))
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(s.csrf.as_bytes(), sent)) {
        return Err(Box::new(refused("no valid CSRF token (X-CSRF-Token)")));
    }
    if s.role == Role::Viewer {
        return Err(Box::new(refused("a read-only session cannot act")));
    }
    Ok(s)
}

async fn index(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    match require(&req, &state) {
        Ok(_) => page(INDEX_HTML.to_string()),
        Err(r) => *r,
    }
}

async fn login_page() -> HttpResponse {
    page(LOGIN_HTML.replace("{{error}}", ""))
}

/// The login form.
#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    who: String,
    /// The page asked for before the login (`#alert/a-…`), kept by the login page.
    #[serde(default)]
    next: String,
}

/// Where a login goes: `/ui/` and the page asked for, when it is one of ours (a fragment
/// of plain characters), else the overview.
fn after_login(next: &str) -> String {
    let ours = next.starts_with('#')
        && next.len() <= 200
        && next
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "#/_-.:%".contains(c));
    if ours {
        format!("/ui/{next}")
    } else {
        "/ui/".to_string()
    }
}

async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let form = form.into_inner();
    let Some(role) = state.role_of(form.token.trim().as_bytes()) else {
        state.count("unauthorized");
        state.emit(
            state
                .about(Event::ControlUnauthorized, &req)
                .with("why", "dashboard login with a wrong token"),
        );
        return page_with(
            actix_web::http::StatusCode::UNAUTHORIZED,
            LOGIN_HTML.replace(
                "{{error}}",
                "<p class=\"error\" id=\"login-error\">Wrong token. The control token is in the \
                 file named by control.token_file on the vigil host.</p>",
            ),
        );
    };
    let who = form.who.trim();
    let who = if who.is_empty() || vigil_core::first_control(who).is_some() || who.len() > 64 {
        "operator".to_string()
    } else {
        who.to_string()
    };
    let (id, csrf) = match (random_hex(), random_hex()) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        (Err(e), _) | (_, Err(e)) => {
            return failed(&state, "cannot open a session", e);
        }
    };
    let expires = vigil_core::later(state.wall.now(), chrono::Duration::hours(SESSION_HOURS));
    {
        let mut sessions = state.ui.sessions.lock();
        let now = state.wall.now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            UiSession {
                role,
                who: who.clone(),
                csrf,
                expires,
            },
        );
    }
    state.emit(
        state
            .event(Event::ControlLogin)
            .with("who", who)
            .with("role", role_name(role))
            .with("remote", remote(req.peer_addr())),
    );
    let cookie = Cookie::build(COOKIE, id)
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.ui.secure)
        .max_age(actix_web::cookie::time::Duration::hours(SESSION_HOURS))
        .finish();
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, after_login(&form.next)))
        .finish()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Operator => "operator",
        Role::Viewer => "viewer",
    }
}

async fn logout(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    if let Some(c) = req.cookie(COOKIE) {
        state.ui.sessions.lock().remove(c.value());
    }
    let mut gone = Cookie::build(COOKIE, "")
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.ui.secure)
        .finish();
    gone.make_removal();
    HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header((header::LOCATION, "/ui/login"))
        .finish()
}

async fn session_info(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    match require(&req, &state) {
        Ok(s) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "who": s.who,
                "role": role_name(s.role),
                "csrf": s.csrf,
                "expires": s.expires,
                // This node's name in its fleet: the page shows the fleet view.
                "fleet": state.ui.opts.config.as_ref()
                    .and_then(|c| c.fleet.as_ref())
                    .map(|f| f.node.clone()),
            })),
        Err(r) => *r,
    }
}

async fn api_status(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    match ui_status(&state) {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => failed(&state, "the board cannot be read", e),
    }
}

/// The board as `/status` shows it, with the automated day's phase and the next one.
fn ui_status(state: &State) -> Result<Value, String> {
    let mut v = status_value(state)?;
    v["calendar"] = state.ui.phases(state.wall.now());
    Ok(v)
}

/// Server-sent events: the board each time the Monitor publishes a new one (looked at once
/// a second), until the session ends.
async fn events(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let cookie = req.cookie(COOKIE).map(|c| c.value().to_string());
    // `seen`: the board's time last sent (`None`: nothing sent yet).
    let stream = futures_util::stream::unfold(
        (state, cookie, None::<Option<Timestamp>>),
        |(state, cookie, seen)| async move {
            loop {
                if seen.is_some() {
                    let next = vigil_core::later(state.wall.now(), chrono::Duration::seconds(1));
                    state.wall.sleep_until(next).await;
                }
                let live = cookie.as_ref().is_some_and(|id| {
                    state
                        .ui
                        .sessions
                        .lock()
                        .get(id)
                        .is_some_and(|s| s.expires > state.wall.now())
                });
                if !live {
                    return None;
                }
                let updated = state.board.status().updated_at;
                if seen == Some(updated) {
                    continue;
                }
                let data = match ui_status(&state) {
                    Ok(v) => v.to_string(),
                    Err(e) => json!({ "error": e }).to_string(),
                };
                let frame = format!("event: status\ndata: {data}\n\n");
                return Some((
                    Ok::<_, std::convert::Infallible>(web::Bytes::from(frame)),
                    (state, cookie, Some(updated)),
                ));
            }
        },
    );
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(stream)
}

async fn api_command(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let s = match require_action(&req, &state) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match crate::request::dashboard_command(&body, &format!("dashboard:{}", s.who)) {
        Ok(parsed) => run_command(&req, &state, parsed).await,
        Err(e) => invalid(&state, &req, e),
    }
}

async fn api_alerts(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(store) = &state.audit else {
        return HttpResponse::Ok().json(json!({"alerts": [], "silences": [], "saved_at": null}));
    };
    let saved = match store.alert_state().await {
        Ok(s) => s,
        Err(e) => {
            return unavailable(&state, "the store cannot be read", e);
        }
    };
    let pending = match store.pending_requests().await {
        Ok(p) => p,
        Err(e) => {
            return unavailable(&state, "the store cannot be read", e);
        }
    };
    let Some(saved) = saved else {
        return HttpResponse::Ok()
            .json(json!({"alerts": [], "silences": [], "saved_at": null, "pending": pending}));
    };
    let alerts = state
        .ui
        .opts
        .config
        .as_ref()
        .map(|c| c.alerts.clone())
        .unwrap_or_default();
    match vigil_alert::saved_view(&alerts, &saved.state, state.wall.now()) {
        Ok((alerts, silences)) => HttpResponse::Ok().json(json!({
            "alerts": alerts,
            "silences": silences,
            "saved_at": saved.saved_at,
            "pending": pending,
        })),
        Err(e) => failed(&state, "the saved alert state is not readable", e),
    }
}

/// An acknowledgement from the page.
#[derive(Deserialize)]
struct AckBody {
    id: String,
}

async fn api_ack(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let (s, ack) = match action_body::<AckBody>(&req, &state, &body, "{\"id\": \"a-…\"}") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !ack.id.starts_with("a-")
        || ack.id.len() > 64
        || vigil_core::first_control(&ack.id).is_some()
    {
        return invalid(
            &state,
            &req,
            format!("alert id {:?}: an alert id looks like a-1f2e3d4c", ack.id),
        );
    }
    let command = vigil_alert::AlertCommand::Ack { id: ack.id.clone() };
    record_request(
        &req,
        &state,
        &s,
        &command,
        &format!("acknowledgement of {}", ack.id),
    )
    .await
}

/// Records an alert request from the page in the store, as `vigil alerts` records it
/// (signed `dashboard:NAME`), and logs it like a command; the Monitor applies it at its
/// next look.
pub(crate) async fn record_request(
    req: &HttpRequest,
    state: &State,
    s: &UiSession,
    command: &vigil_alert::AlertCommand,
    what: &str,
) -> HttpResponse {
    let Some(store) = &state.audit else {
        return unavailable(
            state,
            what,
            "this server has no store to record the request in",
        );
    };
    let kind = match command {
        vigil_alert::AlertCommand::Ack { .. } => RequestKind::Ack,
        vigil_alert::AlertCommand::Silence(_) => RequestKind::Silence,
        vigil_alert::AlertCommand::Unsilence { .. } => RequestKind::Unsilence,
    };
    let who = format!("dashboard:{}", s.who);
    let body = command.body();
    match store.request(state.wall.now(), &who, kind, &body).await {
        Ok(seq) => {
            state.emit(
                state
                    .event(Event::ControlCommand)
                    .with("who", who)
                    .with("remote", remote(req.peer_addr()))
                    .with("command", format!("alert_{}", command.kind()))
                    .with("argument", body.to_string())
                    .with("status", 200u64)
                    .with("ok", true)
                    .with("outcome", format!("recorded as request #{seq}"))
                    .with("request_seq", seq),
            );
            HttpResponse::Ok().json(json!({
                "ok": true,
                "request_seq": seq,
                "outcome": format!("{what} recorded as request #{seq}; the Monitor applies it at its next look"),
            }))
        }
        Err(e) => {
            let error = format!("{what}: the request cannot be recorded: {e}");
            log_failure(state, what, &error, 503, Level::Warn);
            HttpResponse::ServiceUnavailable().json(json!({"ok": false, "error": error}))
        }
    }
}

/// The answer of blocking work run off the server's thread: `ok` with its value, 503 with
/// its error (naming `what`), 500 when the worker itself failed; both logged.
pub(crate) fn blocking_answer<T, E: std::fmt::Display>(
    state: &State,
    done: Result<Result<T, E>, actix_web::error::BlockingError>,
    what: &str,
    ok: impl FnOnce(T) -> HttpResponse,
) -> HttpResponse {
    match done {
        Ok(Ok(v)) => ok(v),
        Ok(Err(e)) => unavailable(state, what, e),
        Err(e) => failed(state, what, format!("the worker failed: {e}")),
    }
}

/// The log page's filters.
#[derive(Deserialize)]
struct LogParams {
    trace: Option<String>,
    event: Option<String>,
    level: Option<String>,
    service: Option<String>,
    symbol: Option<String>,
    /// `1h`, `30m`, `2d`, or an RFC 3339 time (default: no bound, the last `limit` lines).
    since: Option<String>,
    limit: Option<usize>,
}

async fn api_log(
    req: HttpRequest,
    params: web::Query<LogParams>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(dir) = state.ui.opts.config.as_ref().map(|c| c.log.dir.clone()) else {
        return HttpResponse::Ok().json(json!({"lines": [], "note": "no log folder"}));
    };
    let p = params.into_inner();
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let now = state.wall.now();
    let since = match blank(p.since).map(|s| vigil_log::parse_since(&s, now)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return invalid(&state, &req, format!("since: {e}")),
    };
    let min_level = match blank(p.level) {
        None => None,
        Some(l) => match l.to_uppercase().parse::<vigil_core::Level>() {
            Ok(l) => Some(l),
            Err(e) => return invalid(&state, &req, format!("level {l:?}: {e}")),
        },
    };
    let trace = blank(p.trace);
    let query = vigil_log::LogQuery {
        // A trace is shown whole, whenever it began.
        since: if trace.is_some() { None } else { since },
        trace,
        event: blank(p.event),
        min_level,
        service: blank(p.service),
        symbol: blank(p.symbol),
        until: None,
    };
    let limit = p.limit.unwrap_or(200).clamp(1, MAX_LOG_LINES);
    let read = web::block(move || {
        // The last `limit` written (the log's own order: a replay stamps its lines with
        // market time, so time would not say which came last).
        let mut lines = std::collections::VecDeque::new();
        let read = vigil_log::read_lines(&dir, |_, _, _, v| {
            if query.matches(&v) {
                lines.push_back(v);
                if lines.len() > limit {
                    lines.pop_front();
                }
            }
        });
        match read {
            Ok(()) => Ok((lines, None)),
            // Most often the writer is mid-line: what came before it is complete, the rest
            // comes at the next look. Said, in case it is more.
            Err(e @ vigil_log::QueryError::BadLine { .. }) => Ok((lines, Some(e.to_string()))),
            Err(e) => Err(e),
        }
    })
    .await;
    blocking_answer(
        &state,
        read,
        "the log cannot be read",
        |(lines, unreadable)| {
            HttpResponse::Ok().json(json!({ "lines": lines, "unreadable": unreadable }))
        },
    )
}

async fn api_positions(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(store) = &state.audit else {
        return HttpResponse::Ok().json(json!({"books": []}));
    };
    let books = match store.journal_books().await {
        Ok(b) => b,
        Err(e) => {
            return unavailable(&state, "the journal cannot be read", e);
        }
    };
    let mut out = Vec::new();
    for name in books {
        match store.journal_book(&name).await {
            Ok(b) => out.push(json!({
                "book": name,
                "cash": b.cash.map(|c| c.to_string()),
                "positions": b.positions.iter().map(|(sym, qty, avg)| json!({
                    "symbol": sym, "quantity": qty.to_string(), "average_price": avg.to_string(),
                })).collect::<Vec<Value>>(),
                "fills": b.fills,
                "ledgers": b.ledgers.as_deref().map(|l| serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| json!({"error": format!("the journaled sub-ledgers are not JSON: {e}")}))),
            })),
            Err(e) => {
                return unavailable(&state, &format!("book {name}"), e);
            }
        }
    }
    HttpResponse::Ok().json(json!({ "books": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn a_login_goes_to_the_page_asked_for_when_it_is_ours() {
        assert_eq!(after_login("#alert/a-1f2e3d4c"), "/ui/#alert/a-1f2e3d4c");
        assert_eq!(
            after_login("#trace/tx_20050216T000000_GOOG"),
            "/ui/#trace/tx_20050216T000000_GOOG"
        );
        for other in ["", "alerts", "//evil.example/", "#x\"><script>", "#a b"] {
            assert_eq!(after_login(other), "/ui/", "{other:?}");
        }
    }

    #[test]
    fn the_overview_names_the_phase_now_and_the_next_one() {
        let cfg = vigil_config::VigilConfig::embedded_default();
        let ui = Ui::new(
            UiOptions {
                config: Some(std::sync::Arc::new(cfg)),
            },
            false,
        );
        // Tuesday 2024-01-16, 10:00 New York: trading; close-only at 15:50.
        let v = ui.phases(t("2024-01-16T15:00:00Z"));
        assert_eq!(v["phase"], "trading_active", "{v}");
        assert_eq!(v["next"]["phase"], "close_only");
        assert_eq!(v["next"]["at"], "2024-01-16T20:50:00Z");
        // Saturday: closed since Friday's auto-stop; next, Monday's auto-start (09:15; the
        // 15th is Martin Luther King Jr. Day, so Tuesday's here).
        let v = ui.phases(t("2024-01-13T17:00:00Z"));
        assert_eq!(v["phase"], "closed", "{v}");
        assert_eq!(v["next"]["phase"], "auto_start");
        assert_eq!(v["next"]["at"], "2024-01-16T14:15:00Z");
        // Without a config, nothing to say.
        assert_eq!(
            Ui::new(UiOptions::default(), false).phases(t("2024-01-16T15:00:00Z")),
            Value::Null
        );
    }
}
