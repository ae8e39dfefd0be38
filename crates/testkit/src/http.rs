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
    /// Listens on a free port of 127.0.0.1 and answers `200`.
    pub fn start() -> Self {
        Self::answering(200)
    }

    /// Listens on a free port of 127.0.0.1 and answers every request with `status`, after
    /// handing the request to the test.
    ///
    /// # Panics
    /// When the port cannot be bound (a test failure).
    pub fn answering(status: u16) -> Self {
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
                if let Ok(stream) = stream
                    && let Err(e) = serve(stream, status, &tx)
                {
                    eprintln!("test HTTP receiver: {e}");
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

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

fn serve(stream: TcpStream, status: u16, tx: &Sender<Received>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Ok(()); // the wake-up connection of Drop
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = Some(value.parse::<usize>().map_err(std::io::Error::other)?);
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if let Some(len) = length {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    // Handed over before the answer: a test that waits for the request sees it before the
    // client sees the response. The test may have stopped listening; the answer still goes.
    if tx.send(Received { method, path, body }).is_err() {
        eprintln!("test HTTP receiver: nobody listens for requests any more");
    }
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    )?;
    out.flush()
}
