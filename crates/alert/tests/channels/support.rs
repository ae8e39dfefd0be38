//! Test helpers: a recording HTTP server and an SMTP server (aiosmtpd), both on 127.0.0.1,
//! and the example notification.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use vigil_alert::{AlertStatus, Notification, Severity};

/// The longest any test waits for something that should happen at once.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The seed's example: a Critical daily-drawdown alert.
pub(crate) fn drawdown() -> Notification {
    Notification {
        alert_id: "a-3f9c2b1e".into(),
        fingerprint: "9f2c4e7a1b3d5f60718293a4b5c6d7e8".into(),
        severity: Severity::Critical,
        status: AlertStatus::Firing,
        rule: "daily_drawdown".into(),
        service: "risk_agent".into(),
        event: "Daily drawdown 10.2% exceeds the 10% control line".into(),
        occurred_at: Utc
            .with_ymd_and_hms(2024, 1, 15, 19, 32, 15)
            .single()
            .expect("valid time"),
        details: vec![
            ("Current drawdown".into(), "10.2%".into()),
            ("Threshold".into(), "10%".into()),
            ("Today's P&L".into(), "-$10,234".into()),
            ("Equity".into(), "$89,766".into()),
        ],
        actions_taken: vec!["Circuit breaker tripped; new orders are rejected".into()],
        you_need_to: "Check positions and the venue, then reset the breaker with `vigil ctl breaker reset --reason ...`".into(),
        runbook: "docs/runbooks/daily_drawdown.md".into(),
        dashboard: Some("http://grafana.local/d/vigil".into()),
        repeats: 0,
        labels: BTreeMap::from([
            ("rule".into(), "daily_drawdown".into()),
            ("service".into(), "risk_agent".into()),
        ]),
    }
}

/// One request the test server received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The form fields of an `application/x-www-form-urlencoded` body, in order.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        let text = std::str::from_utf8(&self.body).expect("utf-8 form");
        text.split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 after decoding")
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that records each request and answers with a queued
/// (status, body), or the default when the queue is empty. A request is recorded before it
/// is answered, so once a client has its answer the request can be read without waiting.
pub(crate) struct TestServer {
    addr: SocketAddr,
    requests: Receiver<Recorded>,
    replies: Arc<Mutex<VecDeque<(u16, String)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub(crate) fn start(default_status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, requests) = mpsc::channel();
        let replies: Arc<Mutex<VecDeque<(u16, String)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let replies = Arc::clone(&replies);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(listener, tx, replies, default_status, stop))
        };
        Self {
            addr,
            requests,
            replies,
            stop,
            handle: Some(handle),
        }
    }

    /// Queues the answers of the next requests.
    pub(crate) fn reply(&self, status: u16, body: &str) {
        self.replies
            .lock()
            .expect("replies lock")
            .push_back((status, body.to_string()));
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next request; fails the test if none comes in time.
    pub(crate) fn next(&self) -> Recorded {
        self.requests.recv_timeout(WAIT).expect("a request in time")
    }

    /// Requests received so far and not yet read.
    pub(crate) fn drain(&self) -> Vec<Recorded> {
        self.requests.try_iter().collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        if TcpStream::connect(self.addr).is_ok()
            && let Some(h) = self.handle.take()
            && h.join().is_err()
        {
            eprintln!("test HTTP server thread panicked");
        }
    }
}

fn serve(
    listener: TcpListener,
    tx: Sender<Recorded>,
    replies: Arc<Mutex<VecDeque<(u16, String)>>>,
    default_status: u16,
    stop: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if let Err(e) = handle(stream, &tx, &replies, default_status) {
            eprintln!("test HTTP server: {e}");
        }
    }
}

fn handle(
    stream: TcpStream,
    tx: &Sender<Recorded>,
    replies: &Mutex<VecDeque<(u16, String)>>,
    default_status: u16,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(WAIT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Ok(()); // the wake-up connection
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = find("content-length") {
        let len: usize = len.parse().expect("content-length");
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let (status, reply) = replies
        .lock()
        .expect("replies lock")
        .pop_front()
        .unwrap_or((default_status, String::new()));
    tx.send(Recorded {
        method,
        path,
        headers,
        body,
    })
    .expect("the test still listens");
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} Status\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    out.flush()
}

/// A port on 127.0.0.1 that nothing listens on (bound, read, released).
pub(crate) fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The SMTP test server's script: aiosmtpd on 127.0.0.1:PORT; prints READY, then one JSON
/// line per message received. Recipients `tempfail@…` get 451, `reject@…` get 550.
const SMTP_SERVER: &str = r#"
import json, sys, threading
from email import policy
from email.parser import BytesParser
from aiosmtpd.controller import Controller

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith('tempfail@'):
            return '451 4.3.0 Mailbox busy, try later'
        if address.startswith('reject@'):
            return '550 5.1.1 No such user'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        msg = BytesParser(policy=policy.default).parsebytes(envelope.content)
        body = msg.get_body(preferencelist=('plain',))
        html = msg.get_body(preferencelist=('html',))
        images = [{
            'content_type': part.get_content_type(),
            'cid': str(part['Content-ID']),
            'disposition': part.get_content_disposition(),
            'bytes': len(part.get_content()),
            'png_signature': part.get_content()[:8] == b'\x89PNG\r\n\x1a\n',
        } for part in msg.walk() if part.get_content_maintype() == 'image']
        print(json.dumps({
            'mail_from': envelope.mail_from,
            'rcpt_tos': envelope.rcpt_tos,
            'from': str(msg['From']),
            'to': str(msg['To']),
            'subject': str(msg['Subject']),
            'content_type': msg.get_content_type(),
            'body': body.get_content() if body is not None else None,
            'html': html.get_content() if html is not None else None,
            'images': images,
        }), flush=True)
        return '250 Message accepted'

controller = Controller(Handler(), hostname='127.0.0.1', port=int(sys.argv[1]))
controller.start()
print('READY', flush=True)
threading.Event().wait()
"#;

const PYTHON: &str = "/usr/bin/python3";

/// aiosmtpd in a child process; killed on drop.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    child: Child,
    lines: Receiver<String>,
}

impl SmtpServer {
    /// Starts the server, or returns `None` (after printing `SKIPPED: …`) when python3 with
    /// aiosmtpd is not installed.
    pub(crate) fn start(test: &str) -> Option<Self> {
        let available = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            let line = format!(
                "SKIPPED: {test}: needs {PYTHON} with aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
            );
            // CI sets the switch (as vigil_testkit::TOOLS_REQUIRED says): fail, not skip.
            if std::env::var_os("VIGIL_TEST_TOOLS_REQUIRED")
                .is_some_and(|v| !v.is_empty() && v != "0")
            {
                panic!("VIGIL_TEST_TOOLS_REQUIRED is set, and {line}");
            }
            // Straight to the process's stderr: the test harness captures eprintln! of a
            // passing test, and this line must be seen.
            if writeln!(std::io::stderr(), "{line}").is_err() {
                eprintln!("{line}");
            }
            return None;
        }
        let port = closed_port();
        let mut child = Command::new(PYTHON)
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let server = Self { port, child, lines };
        let ready = server
            .lines
            .recv_timeout(WAIT)
            .expect("aiosmtpd starts in time");
        assert_eq!(ready, "READY");
        // Readiness as a client sees it: the port accepts connections.
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd does not accept connections"
            );
            std::thread::yield_now();
        }
        Some(server)
    }

    /// The next message the server received, as the script's JSON.
    pub(crate) fn next_message(&self) -> serde_json::Value {
        let line = self.lines.recv_timeout(WAIT).expect("a message in time");
        serde_json::from_str(&line).expect("the script's JSON line")
    }

    /// Messages received and not yet read.
    pub(crate) fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("cannot stop aiosmtpd: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("cannot reap aiosmtpd: {e}");
        }
    }
}
