//! A feed serving on a thread of its own, for a caller without an actix system: a test that
//! calls the control endpoints with blocking HTTP while a session runs on its own thread.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::{FeedError, FeedOptions, FeedServer};

/// A [`FeedServer`] in an actix system on a thread of its own; stopped (and its thread
/// joined) when dropped.
#[derive(Debug)]
pub struct FeedThread {
    stream_url: String,
    control_url: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FeedThread {
    /// Starts the feed and returns once it listens.
    ///
    /// # Errors
    /// When it cannot start (see [`FeedServer::start`]), or its thread ended before it
    /// listened.
    pub fn start(opts: FeedOptions) -> Result<Self, FeedError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = match FeedServer::start(opts).await {
                    Ok(server) => server,
                    Err(e) => {
                        // The starter waits on this channel; if it is gone nobody is left
                        // to tell.
                        if ready_tx.send(Err(e)).is_err() {
                            eprintln!("vigil feed: it could not start, and its starter has gone");
                        }
                        return;
                    }
                };
                if ready_tx
                    .send(Ok((server.stream_url(), server.control_url())))
                    .is_ok()
                {
                    // Nothing is ever sent: the owner drops its sender to stop the feed, which
                    // ends this wait with `RecvError`.
                    let stopped = actix_web::rt::task::spawn_blocking(move || stop_rx.recv());
                    if let Err(e) = stopped.await {
                        eprintln!("vigil feed: the wait for its stop failed: {e}");
                    }
                }
                server.stop().await;
            });
        });
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(FeedError::Data(
                "the feed's thread ended before it listened".into(),
            ))
        });
        match started {
            Ok((stream_url, control_url)) => Ok(Self {
                stream_url,
                control_url,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                if thread.join().is_err() {
                    eprintln!("vigil feed: its thread panicked");
                }
                Err(e)
            }
        }
    }

    /// Stops the feed and waits for its thread to end.
    ///
    /// # Errors
    /// When its thread panicked.
    pub fn stop(mut self) -> Result<(), FeedError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), FeedError> {
        drop(self.stop.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| FeedError::Data("the feed's thread panicked".into())),
            None => Ok(()),
        }
    }

    /// The stream's URL, `ws://127.0.0.1:PORT/stream`.
    pub fn stream_url(&self) -> &str {
        &self.stream_url
    }

    /// The control base URL, `http://127.0.0.1:PORT` (`/_feed`, `/_faults`).
    pub fn control_url(&self) -> &str {
        &self.control_url
    }
}

impl Drop for FeedThread {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            eprintln!("vigil feed: {e}");
        }
    }
}
