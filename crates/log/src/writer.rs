//! The log writer actor: numbers, encodes and writes every event, in arrival order.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use vigil_core::{Level, SharedClock};

use crate::encode::encode_line;
use crate::event::LogEvent;
use crate::sink::LogSink;

/// A batch of events from one producer.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct LogBatch(pub(crate) Vec<LogEvent>);

/// Asks the writer to push everything to disk and report its figures.
#[derive(Message, Debug)]
#[rtype(result = "Result<WriterStats, LogWriterError>")]
struct Flush;

/// The writer's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Lines written since start.
    pub lines: u64,
    /// Bytes written since start.
    pub bytes: u64,
    /// The next sequence number.
    pub next_seq: u64,
    /// Write or flush failures since start.
    pub errors: u64,
}

/// Why the log could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LogWriterError {
    /// The log file could not be opened or created.
    #[error("cannot open log file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing or flushing failed.
    #[error("cannot write log file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer actor is gone.
    #[error("log writer is not running")]
    Stopped,
}

/// The actor that owns the log file. It runs on an arbiter of its own: its blocking file
/// writes then never stall an agent.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    stats: WriterStats,
    clock: SharedClock,
    flush_interval: Duration,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.path)
            .field("stats", &self.stats)
            .finish()
    }
}

/// The running writer: a sink for producers, and a flush for shutdown.
#[derive(Clone, Debug)]
pub struct LogWriterHandle {
    addr: Addr<LogWriter>,
    path: PathBuf,
}

const FILE_NAME: &str = "vigil.jsonl";
const BUF_FLUSH_AT: usize = 1 << 20;

impl LogWriter {
    /// Opens (or creates) `dir/vigil.jsonl` for appending and continues its sequence
    /// numbers from the last line.
    ///
    /// # Errors
    /// Fails when the folder or file cannot be created or read.
    pub fn open(
        dir: &Path,
        clock: SharedClock,
        flush_interval: Duration,
    ) -> Result<Self, LogWriterError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir).map_err(|source| LogWriterError::Open {
            path: path.clone(),
            source,
        })?;
        let next_seq = last_seq(&path)?.map_or(0, |s| s + 1);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LogWriterError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path,
            file,
            buf: Vec::with_capacity(BUF_FLUSH_AT + 4096),
            stats: WriterStats {
                next_seq,
                ..WriterStats::default()
            },
            clock,
            flush_interval,
        })
    }

    /// Returns the file the writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the writer on an arbiter and returns its handle.
    pub fn start_on(self, arbiter: &ArbiterHandle) -> LogWriterHandle {
        let path = self.path.clone();
        let addr = LogWriter::start_in_arbiter(arbiter, |_| self);
        LogWriterHandle { addr, path }
    }

    fn write_out(&mut self) -> Result<(), LogWriterError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let res = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush());
        self.stats.bytes += self.buf.len() as u64;
        self.buf.clear();
        res.map_err(|source| {
            self.stats.errors += 1;
            LogWriterError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    fn report_write_error(&self, err: &LogWriterError) {
        // The log itself is what failed, so the only place left to say so is stderr.
        eprintln!("vigil: CRITICAL: {err}");
    }

    fn schedule_flush(&self, ctx: &mut Context<Self>) {
        let deadline = self.clock.now()
            + chrono::Duration::from_std(self.flush_interval)
                .unwrap_or(chrono::Duration::milliseconds(200));
        let sleep = self.clock.sleep_until(deadline);
        ctx.spawn(sleep.into_actor(self).map(|(), act, ctx| {
            if let Err(e) = act.write_out() {
                act.report_write_error(&e);
            }
            act.schedule_flush(ctx);
        }));
    }
}

fn last_seq(path: &Path) -> Result<Option<u64>, LogWriterError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogWriterError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| LogWriterError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(pos) = line.rfind("\"seq\":") {
            let digits: String = line[pos + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(seq) = digits.parse::<u64>() {
                last = Some(seq);
            }
        }
    }
    Ok(last)
}

impl Actor for LogWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.schedule_flush(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Err(e) = self.write_out() {
            self.report_write_error(&e);
        }
    }
}

impl Handler<LogBatch> for LogWriter {
    type Result = ();

    fn handle(&mut self, msg: LogBatch, _ctx: &mut Self::Context) {
        let mut urgent = false;
        for event in &msg.0 {
            encode_line(event, self.stats.next_seq, &mut self.buf);
            self.stats.next_seq += 1;
            self.stats.lines += 1;
            urgent |= event.level >= Level::Error;
        }
        if urgent || self.buf.len() >= BUF_FLUSH_AT {
            let res = self.write_out().and_then(|()| {
                if urgent {
                    // ERROR and CRITICAL lines must survive a crash right after them.
                    self.file
                        .sync_data()
                        .map_err(|source| LogWriterError::Write {
                            path: self.path.clone(),
                            source,
                        })
                } else {
                    Ok(())
                }
            });
            if let Err(e) = res {
                self.report_write_error(&e);
            }
        }
    }
}

impl Handler<Flush> for LogWriter {
    type Result = Result<WriterStats, LogWriterError>;

    fn handle(&mut self, _msg: Flush, _ctx: &mut Self::Context) -> Self::Result {
        self.write_out()?;
        self.file
            .sync_data()
            .map_err(|source| LogWriterError::Write {
                path: self.path.clone(),
                source,
            })?;
        Ok(self.stats)
    }
}

impl LogWriterHandle {
    /// Returns a sink producers send to.
    pub fn sink(&self) -> LogSink {
        LogSink::writer(self.addr.clone().recipient())
    }

    /// Returns the file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything received so far to disk (with fsync) and returns the figures.
    /// Events sent before this call are included: the mailbox is first-in, first-out.
    ///
    /// # Errors
    /// Fails when the disk write fails or the writer is gone.
    pub async fn flush(&self) -> Result<WriterStats, LogWriterError> {
        self.addr
            .send(Flush)
            .await
            .map_err(|_| LogWriterError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use vigil_core::{SystemClock, Timestamp};

    #[actix_rt::test]
    async fn writes_every_event_in_order_and_continues_seq_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ts: Timestamp = "2024-01-15T09:30:00Z".parse().expect("ts");
        for round in 0..2u64 {
            let writer = LogWriter::open(
                dir.path(),
                std::sync::Arc::new(SystemClock),
                Duration::from_millis(50),
            )
            .expect("open");
            let handle = writer.start_on(&Arbiter::current());
            let sink = handle.sink();
            for i in 0..10u64 {
                sink.send(vec![
                    LogEvent::new(ts, "test", Event::AgentStarted).with("i", i + round * 10),
                ]);
            }
            let stats = handle.flush().await.expect("flush");
            assert_eq!(stats.next_seq, (round + 1) * 10);
        }
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                assert_eq!(v["data"]["i"], v["seq"]);
                v["seq"].as_u64().expect("seq")
            })
            .collect();
        assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    }
}
