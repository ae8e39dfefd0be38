//! The control API over real HTTP(S) on 127.0.0.1: authentication, the health endpoints,
//! commands to a stand-in Monitor with their audit, TLS, token rotation.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use serde_json::{Value, json};
use vigil_control::{ControlOptions, ControlServer, TlsFiles, read_token};
use vigil_core::AgentId;
use vigil_log::{LogSink, MemoryLog};
use vigil_messages::{Action, Command, CommandError, CommandTarget};
use vigil_monitoring::{EndpointView, HealthBoard, Status};
use vigil_store::{StateStore as _, Store};
use vigil_testkit::{Recorder, yield_until};

// ---------------------------------------------------------------------------------------
// A stand-in Monitor

/// Answers as the real Monitor's agents do: pause is idempotent, `data` cannot be paused,
/// flatten conflicts, cancel-all finds its agent gone, default-regime never answers.
#[derive(Debug, Default)]
struct StandIn {
    got: Recorder<Command>,
    paused: bool,
}

impl Actor for StandIn {
    type Context = Context<Self>;
}

impl Handler<Command> for StandIn {
    type Result = ResponseFuture<Result<String, CommandError>>;

    fn handle(&mut self, cmd: Command, _ctx: &mut Context<Self>) -> Self::Result {
        self.got.push(cmd.clone());
        let answer = match cmd.action {
            Action::Pause(CommandTarget::Agent(AgentId::Data)) => Err(CommandError::Invalid(
                "agent data cannot be paused; pausable agents: signal (or all)".into(),
            )),
            Action::Pause(_) if self.paused => Ok("already paused".into()),
            Action::Pause(_) => {
                self.paused = true;
                Ok("paused".into())
            }
            Action::Flatten => Err(CommandError::Conflict("cannot flatten while halted".into())),
            Action::CancelAll => Err(CommandError::Unavailable(
                "the execution agent is not running".into(),
            )),
            Action::DefaultRegime => return Box::pin(std::future::pending()),
            other => Ok(format!("{} done", other.name())),
        };
        Box::pin(async move { answer })
    }
}

/// An actor that stops as soon as it starts: its mailbox is closed.
struct Gone;

impl Actor for Gone {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Command> for Gone {
    type Result = Result<String, CommandError>;

    fn handle(&mut self, _cmd: Command, _ctx: &mut Context<Self>) -> Self::Result {
        Ok("never".into())
    }
}

// ---------------------------------------------------------------------------------------
// Harness

struct Harness {
    dir: tempfile::TempDir,
    server: ControlServer,
    board: HealthBoard,
    log: MemoryLog,
    store: Store,
    got: Recorder<Command>,
    token: String,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(|o| o).await
    }

    async fn start_with(f: impl FnOnce(ControlOptions) -> ControlOptions) -> Self {
        let got = Recorder::new();
        let monitor = StandIn {
            got: got.clone(),
            paused: false,
        }
        .start();
        Self::serve(monitor.recipient(), got, f).await
    }

    async fn serve(
        monitor: Recipient<Command>,
        got: Recorder<Command>,
        f: impl FnOnce(ControlOptions) -> ControlOptions,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("state/vigil.db"))
            .await
            .expect("store");
        let board = HealthBoard::new();
        let (sink, log) = LogSink::memory();
        let opts = ControlOptions::new(
            "127.0.0.1:0",
            dir.path().join("state/control.token"),
            board.clone(),
            sink,
        )
        .with_commands(monitor, std::sync::Arc::new(store.clone()));
        let server = ControlServer::start(f(opts)).expect("start");
        let token = read_token(&dir.path().join("state/control.token"))
            .expect("token made at start")
            .expose()
            .to_string();
        Self {
            dir,
            server,
            board,
            log,
            store,
            got,
            token,
        }
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("state/control.token")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.call("GET", path, Some(&self.token), None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (code, text) = self
            .call("POST", path, Some(&self.token), Some(body.to_string()))
            .await;
        (code, serde_json::from_str(&text).expect("a JSON answer"))
    }

    async fn call(
        &self,
        method: &'static str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, String) {
        send(Client::plain(), method, self.url(path), token, body).await
    }

    fn logged(&self, event: &str) -> Vec<vigil_log::LogEvent> {
        self.log
            .events()
            .into_iter()
            .filter(|e| e.event.name() == event)
            .collect()
    }

    async fn stop(self) {
        self.server.stop().await;
        self.store.close().await;
    }
}

/// A blocking HTTP client, run off the actix thread that hosts the stand-in Monitor.
#[derive(Clone)]
struct Client(ureq::Agent);

impl Client {
    fn plain() -> Self {
        Self::with(ureq::tls::TlsConfig::builder().build())
    }

    fn trusting(pem: &str) -> Self {
        let roots: Vec<_> = ureq::tls::parse_pem(pem.as_bytes())
            .filter_map(|item| match item.expect("PEM") {
                ureq::tls::PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        Self::with(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                .build(),
        )
    }

    fn with(tls: ureq::tls::TlsConfig) -> Self {
        Self(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .tls_config(tls)
                .build()
                .new_agent(),
        )
    }
}

async fn send(
    client: Client,
    method: &'static str,
    url: String,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    try_send(
        client,
        method,
        url,
        token.map(|t| format!("Bearer {t}")),
        body,
    )
    .await
    .expect("the server answers")
}

async fn try_send(
    client: Client,
    method: &'static str,
    url: String,
    authorization: Option<String>,
    body: Option<String>,
) -> Result<(u16, String), ureq::Error> {
    actix_web::rt::task::spawn_blocking(move || {
        let mut res = if method == "POST" {
            let mut req = client.0.post(&url);
            if let Some(a) = &authorization {
                req = req.header("Authorization", a);
            }
            req.content_type("application/json")
                .send(body.unwrap_or_default())?
        } else {
            let mut req = client.0.get(&url);
            if let Some(a) = &authorization {
                req = req.header("Authorization", a);
            }
            req.call()?
        };
        let code = res.status().as_u16();
        Ok((code, res.body_mut().read_to_string()?))
    })
    .await
    .expect("client thread")
}

fn counter(metrics: &str, outcome: &str) -> u64 {
    let needle = format!("vigil_control_requests_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .unwrap_or_else(|| panic!("{needle} missing from:\n{metrics}"))
        .parse()
        .expect("a count")
}

fn field(e: &vigil_log::LogEvent, key: &str) -> String {
    e.get(key)
        .unwrap_or_else(|| panic!("{} has no {key}", e.event.name()))
        .to_string()
}

/// The answer's `error` says `needle`.
#[track_caller]
fn assert_error(answer: &Value, needle: &str) {
    assert!(
        answer["error"].as_str().is_some_and(|e| e.contains(needle)),
        "{answer}"
    );
}

fn pause(agent: &str) -> Value {
    json!({"command": "pause", "agent": agent, "reason": "news at 14:30", "who": "ana"})
}

// ---------------------------------------------------------------------------------------
// Tests

#[actix_rt::test]
async fn every_endpoint_needs_the_bearer_token_and_a_refusal_is_logged_and_counted() {
    let h = Harness::start().await;
    assert!(h.server.addr().ip().is_loopback());
    let paths = [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/status"),
        ("GET", "/v1/status"),
        ("GET", "/metrics"),
        ("GET", "/nope"),
        ("POST", "/v1/commands"),
        ("POST", "/v1/token/rotate"),
    ];
    for (method, path) in paths {
        let (code, body) = h
            .call(method, path, None, Some(pause("signal").to_string()))
            .await;
        assert_eq!(code, 401, "{method} {path}: {body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert_error(&v, "Authorization: Bearer");
    }
    let wrong = "0".repeat(64);
    let (code, body) = h.call("GET", "/healthz", Some(&wrong), None).await;
    assert_eq!(code, 401);
    assert!(body.contains("wrong bearer token"), "{body}");
    let (code, _) = send(
        Client::plain(),
        "GET",
        h.url("/status"),
        Some(&h.token[..63]),
        None,
    )
    .await;
    assert_eq!(code, 401, "a prefix of the token is not the token");
    let basic = try_send(
        Client::plain(),
        "GET",
        h.url("/status"),
        Some(format!("Basic {}", h.token)),
        None,
    )
    .await
    .expect("answer");
    assert_eq!(basic.0, 401);
    assert!(basic.1.contains("not a Bearer token"), "{}", basic.1);

    // Nothing reached the Monitor; every refusal is a WARN line without the token.
    assert!(h.got.is_empty());
    let refused = h.logged("control_unauthorized");
    assert_eq!(refused.len(), paths.len() + 3);
    for e in &refused {
        assert_eq!(e.level, vigil_core::Level::Warn);
        let line = format!("{e:?}");
        assert!(!line.contains(&h.token) && !line.contains(&wrong), "{line}");
        assert!(field(e, "remote").starts_with("127.0.0.1:"));
    }
    assert_eq!(
        (
            field(&refused[0], "method"),
            field(&refused[0], "path"),
            field(&refused[0], "why")
        ),
        (
            "GET".into(),
            "/healthz".into(),
            "no Authorization header".into()
        )
    );
    assert_eq!(field(&refused[paths.len()], "why"), "wrong token");
    assert!(h.store.control_audit(0).await.expect("audit").is_empty());

    // With the token: the health board, as before.
    let (code, body) = h.get("/healthz").await;
    assert_eq!(code, 503, "nothing published yet: {body}");
    let (code, body) = h.get("/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("has not published"), "{body}");
    let mut st = Status {
        session: "t".into(),
        updated_at: Some("2030-01-01T00:00:00Z".parse().expect("ts")),
        trading_state: "active".into(),
        data_source: EndpointView {
            name: "csv:X".into(),
            up: true,
            ..EndpointView::default()
        },
        venue: EndpointView {
            name: "paper".into(),
            up: true,
            latency_ms: Some(0.1),
            error: None,
        },
        ..Status::default()
    };
    h.board.publish(st.clone());
    assert_eq!(h.get("/healthz").await.0, 200);
    let (code, body) = h.get("/readyz").await;
    assert_eq!(code, 200, "{body}");
    st.trading_state = "halted".into();
    st.venue.up = false;
    st.venue.error = Some("connection refused".into());
    h.board.publish(st);
    let (code, body) = h.get("/readyz").await;
    assert_eq!(code, 503);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v["reasons"],
        json!([
            "venue paper is unreachable: connection refused",
            "circuit breaker tripped (trading state halted)"
        ])
    );
    for path in ["/status", "/v1/status"] {
        let (code, body) = h.get(path).await;
        assert_eq!(code, 200);
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            (&v["trading_state"], &v["ready"]),
            (&json!("halted"), &json!(false))
        );
    }
    let (code, body) = h.get("/nope").await;
    assert_eq!(code, 404);
    assert!(body.contains("POST /v1/commands"), "{body}");
    let (code, body) = h.get("/v1/commands").await;
    assert_eq!(code, 405, "{body}");
    assert!(body.contains("use POST"), "{body}");

    h.board
        .record(|| metrics::gauge!("vigil_test_value_ratio").set(0.5));
    let (code, metrics) = h.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("vigil_test_value_ratio 0.5"), "{metrics}");
    assert!(
        metrics.contains("# TYPE vigil_control_requests_total counter"),
        "{metrics}"
    );
    assert_eq!(counter(&metrics, "unauthorized"), paths.len() as u64 + 3);
    assert_eq!(counter(&metrics, "not_found"), 2);
    assert_eq!(counter(&metrics, "conflict"), 0, "every outcome is exposed");
    h.stop().await;
}

#[actix_rt::test]
async fn malformed_commands_are_400_naming_the_field_and_reach_nobody() {
    let h = Harness::start().await;
    for (body, needle) in [
        ("{not json".to_string(), "the body is not JSON"),
        (
            json!({"command": "explode", "reason": "r", "who": "ana"}).to_string(),
            "unknown command \"explode\"",
        ),
        (
            json!({"command": "pause", "agent": "signal", "who": "ana"}).to_string(),
            "missing field \"reason\"",
        ),
        (
            json!({"command": "pause", "agent": "signal", "reason": "", "who": "ana"})
                .to_string(),
            "field \"reason\" is blank",
        ),
        (
            json!({"command": "pause", "agent": "signal", "reason": "r", "who": "ana", "force": true})
                .to_string(),
            "unknown field \"force\"",
        ),
        (
            json!({"command": "switch_source", "reason": "r", "who": "ana"}).to_string(),
            "missing field \"source\"",
        ),
        // A key given twice: the last would win for vigil while a reader sees the first.
        (
            r#"{"command":"pause","agent":"signal","reason":"r","who":"ana","who":"bob"}"#
                .to_string(),
            "field \"who\" is given twice (each field may appear once)",
        ),
        (
            r#"{"command":"breaker_reset","command":"breaker_trip","reason":"r","who":"ana"}"#
                .to_string(),
            "field \"command\" is given twice",
        ),
        // Control characters would drive the terminal of whoever reads the audit or the log.
        (
            json!({"command": "pause", "agent": "signal", "reason": "r", "who": "ana\u{1b}[2J"})
                .to_string(),
            "field \"who\" holds a control character (U+001B)",
        ),
        (
            json!({"command": "pause", "agent": "signal", "reason": "ok\r\nforged line", "who": "ana"})
                .to_string(),
            "field \"reason\" holds a control character (U+000D)",
        ),
    ] {
        let (code, text) = h
            .call("POST", "/v1/commands", Some(&h.token), Some(body.clone()))
            .await;
        assert_eq!(code, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["ok"], false);
        assert_error(&v, needle);
    }
    // Every request body is read the same way: the token rotation too.
    for (body, needle) in [
        (
            r#"{"who":"ana","who":"bob"}"#.to_string(),
            "field \"who\" is given twice",
        ),
        (
            json!({"who": "ana", "reason": "\u{7}bell"}).to_string(),
            "field \"reason\" holds a control character (U+0007)",
        ),
    ] {
        let (code, text) = h
            .call(
                "POST",
                "/v1/token/rotate",
                Some(&h.token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(code, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_error(&v, needle);
    }
    assert!(h.got.is_empty(), "nothing reached the Monitor");
    assert!(h.store.control_audit(0).await.expect("audit").is_empty());
    let invalid = h.logged("control_request_invalid");
    assert_eq!(invalid.len(), 12);
    assert!(field(&invalid[1], "error").contains("explode"));
    let (_, metrics) = h.get("/metrics").await;
    assert_eq!(counter(&metrics, "invalid"), 12);
    h.stop().await;
}

#[actix_rt::test]
async fn a_good_command_reaches_the_monitor_and_is_audited_logged_and_safe_to_repeat() {
    let h = Harness::start().await;
    let (code, v) = h.post("/v1/commands", pause("signal")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (&v["ok"], &v["outcome"], &v["command"], &v["argument"]),
        (
            &json!(true),
            &json!("paused"),
            &json!("pause"),
            &json!("signal")
        )
    );
    let cmds = h.got.snapshot();
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].action,
        Action::Pause(CommandTarget::Agent(AgentId::Signal))
    );
    assert_eq!(
        (cmds[0].actor.as_str(), cmds[0].reason.as_str()),
        ("ana", "news at 14:30")
    );

    // The same command again is safe: the agent says it already holds.
    let (code, v) = h.post("/v1/commands", pause("signal")).await;
    assert_eq!((code, &v["outcome"]), (200, &json!("already paused")));

    // A client retrying with its request id gets the recorded answer; nothing runs again.
    let mut with_id = pause("all");
    with_id["request_id"] = json!("retry-7");
    let (code, first) = h.post("/v1/commands", with_id.clone()).await;
    assert_eq!(code, 200, "{first}");
    let (code, again) = h.post("/v1/commands", with_id.clone()).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["repeated"], true);
    assert_eq!(
        (&again["outcome"], &again["audit_seq"]),
        (&first["outcome"], &first["audit_seq"])
    );
    assert_eq!(h.got.len(), 3, "the retry did not reach the Monitor");
    with_id["agent"] = json!("signal");
    let (code, other) = h.post("/v1/commands", with_id).await;
    assert_eq!(code, 400, "{other}");
    assert_error(&other, "already used");

    let audit = h.store.control_audit(0).await.expect("audit");
    assert_eq!(audit.len(), 3);
    let a = &audit[0];
    assert_eq!(
        (
            a.asked.who.as_str(),
            a.asked.command.as_str(),
            a.asked.argument.as_deref(),
            a.asked.reason.as_str()
        ),
        ("ana", "pause", Some("signal"), "news at 14:30")
    );
    assert!(
        a.asked.remote.starts_with("127.0.0.1:"),
        "{}",
        a.asked.remote
    );
    assert_eq!(
        (a.ok, a.status, a.outcome.as_deref()),
        (Some(true), Some(200), Some("paused"))
    );
    assert!(a.finished_at.is_some());
    assert_eq!(audit[2].asked.request_id.as_deref(), Some("retry-7"));

    let lines = h.logged("control_command");
    assert_eq!(
        lines.len(),
        3,
        "a repeat is answered from the audit, not run or logged again"
    );
    let l = &lines[0];
    assert_eq!(l.level, vigil_core::Level::Warn);
    for (key, want) in [
        ("who", "ana"),
        ("command", "pause"),
        ("argument", "signal"),
        ("reason", "news at 14:30"),
        ("outcome", "paused"),
        ("status", "200"),
        ("audit_seq", "1"),
    ] {
        assert_eq!(field(l, key), want, "{key}");
    }
    h.stop().await;
}

#[actix_rt::test]
async fn refusals_map_to_400_409_and_503_and_are_audited() {
    let h = Harness::start_with(|o| o.command_timeout(Duration::from_millis(300))).await;
    let cmd = |command: &str| json!({"command": command, "reason": "drill", "who": "ana"});
    for (body, code, needle) in [
        (pause("data"), 400, "agent data cannot be paused"),
        (cmd("flatten"), 409, "cannot flatten while halted"),
        (cmd("cancel_all"), 503, "the execution agent is not running"),
        (
            cmd("default_regime"),
            503,
            "no answer from the Monitor within",
        ),
    ] {
        let (got, v) = h.post("/v1/commands", body.clone()).await;
        assert_eq!(got, code, "{body}: {v}");
        assert_eq!(v["ok"], false);
        assert_error(&v, needle);
    }
    let audit = h.store.control_audit(0).await.expect("audit");
    let rows: Vec<(&str, Option<bool>, Option<u16>)> = audit
        .iter()
        .map(|a| (a.asked.command.as_str(), a.ok, a.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("pause", Some(false), Some(400)),
            ("flatten", Some(false), Some(409)),
            ("cancel_all", Some(false), Some(503)),
            ("default_regime", Some(false), Some(503)),
        ]
    );
    assert_eq!(
        audit[1].error.as_deref(),
        Some("cannot flatten while halted")
    );
    let (_, metrics) = h.get("/metrics").await;
    assert_eq!(
        (
            counter(&metrics, "invalid"),
            counter(&metrics, "conflict"),
            counter(&metrics, "unavailable")
        ),
        (1, 1, 2)
    );
    h.stop().await;
}

#[actix_rt::test]
async fn a_closed_monitor_mailbox_is_503() {
    let gone = Gone.start().recipient::<Command>();
    yield_until("the actor to stop", || !gone.connected()).await;
    let h = Harness::serve(gone, Recorder::new(), |o| o).await;
    let (code, v) = h.post("/v1/commands", pause("signal")).await;
    assert_eq!(code, 503, "{v}");
    assert_error(&v, "the Monitor is not running");
    let audit = h.store.control_audit(0).await.expect("audit");
    assert_eq!((audit[0].ok, audit[0].status), (Some(false), Some(503)));
    h.stop().await;
}

#[actix_rt::test]
async fn rotation_replaces_the_token_atomically_and_only_the_new_one_is_accepted() {
    let h = Harness::start().await;
    let old = h.token.clone();
    let (code, v) = h
        .post(
            "/v1/token/rotate",
            json!({"who": "ana", "reason": "leaked in a screenshot"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert!(
        v["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("no longer accepted")),
        "{v}"
    );
    let new = read_token(&h.token_file())
        .expect("new token")
        .expose()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(new.len(), 64);
    let mode = std::fs::metadata(h.token_file())
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(h.call("GET", "/status", Some(&old), None).await.0, 401);
    assert_eq!(h.call("GET", "/status", Some(&new), None).await.0, 200);
    let rotated = h.logged("control_token_rotated");
    assert_eq!(rotated.len(), 1);
    assert_eq!(field(&rotated[0], "who"), "ana");
    let line = format!("{:?}", rotated[0]);
    assert!(!line.contains(&new) && !line.contains(&old), "{line}");
    let audit = h.store.control_audit(0).await.expect("audit");
    assert_eq!(
        (
            audit[0].asked.command.as_str(),
            audit[0].ok,
            audit[0].asked.reason.as_str()
        ),
        ("rotate_token", Some(true), "leaked in a screenshot")
    );
    h.stop().await;
}

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM (certificate, key).
fn self_signed(dir: &Path) -> (TlsFiles, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let pem = cert.cert.pem();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, &pem).expect("cert");
    vigil_testkit::write_secret_file(&files.key, cert.key_pair.serialize_pem());
    (files, pem)
}

#[actix_rt::test]
async fn tls_serves_https_to_a_client_that_trusts_the_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (files, pem) = self_signed(certs.path());
    let h = Harness::start_with(|o| o.with_tls(files)).await;
    assert!(
        h.server.url().starts_with("https://127.0.0.1:"),
        "{}",
        h.server.url()
    );
    let (code, body) = send(
        Client::trusting(&pem),
        "GET",
        h.url("/v1/status"),
        Some(&h.token),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = send(
        Client::trusting(&pem),
        "POST",
        h.url("/v1/commands"),
        Some(&h.token),
        Some(pause("signal").to_string()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // A client that does not trust the certificate gets no answer, and plain HTTP is not
    // served on the TLS port.
    let untrusted = try_send(Client::plain(), "GET", h.url("/healthz"), None, None).await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    let plain = try_send(
        Client::plain(),
        "GET",
        format!("http://{}/healthz", h.server.addr()),
        None,
        None,
    )
    .await;
    assert!(
        plain.as_ref().map_or(true, |(code, _)| *code != 200),
        "{plain:?}"
    );
    h.stop().await;
}

#[actix_rt::test]
async fn unusable_token_and_tls_files_and_a_taken_address_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("control.token");
    std::fs::write(&token, format!("{}\n", "a".repeat(64))).expect("write");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let opts =
        |addr: &str| ControlOptions::new(addr, &token, HealthBoard::new(), LogSink::memory().0);
    let err = ControlServer::start(opts("127.0.0.1:0")).expect_err("world-readable");
    let text = err.to_string();
    assert!(
        text.contains(&token.display().to_string()) && text.contains("chmod 600"),
        "{text}"
    );

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    let err = ControlServer::start(opts("127.0.0.1:0").with_tls(missing)).expect_err("no cert");
    assert!(err.to_string().contains("nope.pem"), "{err}");
    // The private key is a secret: a key file others may read is refused.
    let (files, _) = self_signed(dir.path());
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let err = ControlServer::start(opts("127.0.0.1:0").with_tls(files.clone()))
        .expect_err("a key others may read");
    let text = err.to_string();
    assert!(
        text.contains(&files.key.display().to_string())
            && text.contains("0640")
            && text.contains(&format!("chmod 600 {}", files.key.display())),
        "{text}"
    );

    let first = ControlServer::start(opts("127.0.0.1:0")).expect("start");
    let taken = first.addr().to_string();
    let err = ControlServer::start(opts(&taken)).expect_err("taken");
    let text = err.to_string();
    assert!(
        text.contains(&taken) && text.contains("cannot listen"),
        "{text}"
    );
    first.stop().await;
}

/// A dashboard session's cookie: `POST /ui/login` with `token`.
async fn ui_login(base: &str, token: &str) -> String {
    let (url, token) = (format!("{base}/ui/login"), token.to_string());
    actix_web::rt::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        let res = agent
            .post(&url)
            .send_form([("token", token.as_str()), ("who", "test")])
            .expect("login");
        assert_eq!(res.status().as_u16(), 303);
        res.headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string()
    })
    .await
    .expect("client thread")
}

/// `GET url` with a dashboard session's cookie.
async fn ui_get(url: String, cookie: String) -> (u16, Value) {
    actix_web::rt::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        let mut res = agent
            .get(&url)
            .header("Cookie", &cookie)
            .call()
            .expect("an answer");
        let body = res.body_mut().read_to_string().expect("body");
        (
            res.status().as_u16(),
            serde_json::from_str(&body).expect("JSON"),
        )
    })
    .await
    .expect("client thread")
}

/// A control server with its store under `dir` (`extra` ends its config), its log, and the
/// session cookie of a login with its token.
async fn ui_server(dir: &Path, extra: &str) -> (ControlServer, MemoryLog, String) {
    let cfg = vigil_config::VigilConfig::from_toml_str(
        &format!(
            "[data]\ninstruments = [{{ symbol = \"X\", path = \"x.csv\" }}]\n\
             [store]\npath = \"{}\"\n[control]\naddress = \"127.0.0.1:0\"\n{extra}",
            dir.join("state/vigil.db").display()
        ),
        "test",
    )
    .expect("config");
    let (sink, log) = LogSink::memory();
    let server = ControlServer::start(ControlOptions::from_config(&cfg, HealthBoard::new(), sink))
        .expect("start");
    let token = read_token(&dir.join("state/control.token"))
        .expect("token")
        .expose()
        .to_string();
    let cookie = ui_login(&server.url(), &token).await;
    (server, log, cookie)
}

/// The `dashboard_request_failed` lines of `log`.
fn request_failures(log: &MemoryLog) -> Vec<vigil_log::LogEvent> {
    log.events()
        .into_iter()
        .filter(|e| e.event.name() == "dashboard_request_failed")
        .collect()
}

/// The dashboard's fleet view: a session without `[fleet]` says so; one whose NATS cannot
/// be reached answers 503 naming the fleet, and logs `dashboard_request_failed`.
#[actix_rt::test]
async fn the_fleet_view_says_no_fleet_and_a_nats_it_cannot_reach_is_503_and_logged() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    for fleet in [
        String::new(),
        format!("[fleet]\nurl = \"nats://127.0.0.1:{port}\"\nnode = \"node-1\"\n"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, log, cookie) = ui_server(dir.path(), &fleet).await;
        let (code, fleet_view) = ui_get(format!("{}/ui/api/fleet", server.url()), cookie).await;
        if fleet.is_empty() {
            assert_eq!(code, 200, "{fleet_view}");
            assert_eq!(fleet_view, json!({ "configured": false }));
        } else {
            assert_eq!(code, 503, "{fleet_view}");
            let error = fleet_view["error"].as_str().expect("an error");
            assert!(
                error.starts_with("the fleet cannot be read from NATS: nats://127.0.0.1:"),
                "{error}"
            );
            let logged = request_failures(&log);
            assert_eq!(logged.len(), 1);
            assert_eq!(field(&logged[0], "error"), error);
        }
        server.stop().await;
    }
}

/// A day report that is there but cannot be read (a folder in its place) answers 503
/// naming it, and is logged as `dashboard_request_failed` with its status: no failing
/// answer of the dashboard goes unlogged.
#[actix_rt::test]
async fn a_report_that_cannot_be_read_is_503_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(reports.join("day-2026-12-04.txt")).expect("a folder as a report");
    let (server, log, cookie) = ui_server(
        dir.path(),
        &format!("[checklist]\ndir = \"{}\"\n", reports.display()),
    )
    .await;
    let (code, answer) = ui_get(
        format!("{}/ui/reports/day-2026-12-04.txt", server.url()),
        cookie,
    )
    .await;
    assert_eq!(code, 503, "{answer}");
    let error = answer["error"].as_str().expect("an error");
    assert!(
        error.starts_with("day-2026-12-04.txt cannot be read: "),
        "{error}"
    );
    let logged = request_failures(&log);
    assert_eq!(logged.len(), 1);
    assert_eq!(field(&logged[0], "error"), error);
    assert_eq!(field(&logged[0], "status"), "503");
    server.stop().await;
}

/// The dashboard's assets: gzipped for a browser that takes it, and a `304` with no body
/// for one that holds the same version (its ETag).
#[actix_rt::test]
async fn dashboard_assets_go_out_gzipped_and_revalidate_to_a_304() {
    let h = Harness::start().await;
    let url = h.url("/ui/assets/app.js");
    let (plain, gz, etag, again) = actix_web::rt::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut plain = agent.get(&url).call().expect("plain");
        assert_eq!(plain.status().as_u16(), 200);
        assert!(plain.headers().get("content-encoding").is_none());
        let etag = plain
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .expect("an ETag")
            .to_string();
        let plain = plain.body_mut().read_to_vec().expect("body");
        let mut gz = agent
            .get(&url)
            .header("Accept-Encoding", "br, gzip;q=0.9")
            .call()
            .expect("gzip");
        assert_eq!(
            gz.headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some("gzip")
        );
        let gz = gz.body_mut().read_to_vec().expect("body");
        let again = agent
            .get(&url)
            .header("If-None-Match", &etag)
            .call()
            .expect("revalidate");
        let again = (
            again.status().as_u16(),
            again.into_body().read_to_vec().expect("body").len(),
        );
        (plain, gz, etag, again)
    })
    .await
    .expect("client thread");
    assert!(
        gz.len() * 2 < plain.len(),
        "{} of {}",
        gz.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, plain);
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
    assert_eq!(again, (304, 0));
    h.stop().await;
}
