//! A recording HTTP server on 127.0.0.1, standing in for a webhook, chat or pager service.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `POST`, `GET` …
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON (a test failure).
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "the body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            ),
        }
    }
}

/// Answers every request with `200 ok` and hands it to the test. Stops when dropped.
#[derive(Debug)]
pub struct HttpReceiver {
    addr: SocketAddr,
    rx: Receiver<Received>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpReceiver {
    /// Listens on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When the port cannot be bound (a test failure).
    pub fn start() -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => panic!("cannot bind 127.0.0.1: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("no local address: {e}"),
        };
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &tx);
                }
            }
        });
        Self {
            addr,
            rx,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Received> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Every request received so far and not yet taken.
    pub fn taken(&self) -> Vec<Received> {
        self.rx.try_iter().collect()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; if the connection fails, the loop has already ended.
        if TcpStream::connect(self.addr).is_ok()
            && let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("the test HTTP receiver's thread panicked");
        }
    }
}

fn serve(stream: TcpStream, tx: &Sender<Received>) {
    if stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .is_err()
    {
        return;
    }
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut out = &stream;
    if out
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .is_ok()
    {
        // The test may have finished and dropped the receiver: nothing to report then.
        if tx.send(Received { method, path, body }).is_err() {
            eprintln!("a request arrived after the test stopped listening");
        }
    }
}
