//! A `tracing` layer: library code that logs with `tracing` macros reaches the same writer,
//! so nothing logs around the trading log.
//!
//! Not everything a library logs is fit for the log. TRACE is where libraries dump the bytes
//! they send and receive (an HTTP client's request in 16-byte hex lines, a WebSocket's
//! frames): headers with API secrets, split so that no line holds a whole one. So library
//! TRACE events are never written, and libraries that handle bytes on the wire
//! ([`WIRE_TARGETS`]) are written from INFO up whatever the configured level. Such events
//! are filtered before they are formatted. The redactor still reads every line that is
//! written, as the backstop.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event as TracingEvent, Metadata, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::layer::{Context, Layer};
use vigil_core::{Level, SharedClock};

use crate::event::{Event, LogEvent, Value};
use crate::sink::LogSink;

/// Forwards `tracing` events to the log writer as `library_log` lines.
#[derive(Debug)]
pub struct VigilTracingLayer {
    sink: LogSink,
    clock: SharedClock,
    min_level: Level,
}

impl VigilTracingLayer {
    /// Creates the layer; events below `min_level` are dropped by configuration.
    pub fn new(sink: LogSink, clock: SharedClock, min_level: Level) -> Self {
        Self {
            sink,
            clock,
            min_level,
        }
    }
}

/// The log level of a library event; `None` for TRACE, which is never written.
fn level(l: &tracing::Level) -> Option<Level> {
    match *l {
        tracing::Level::ERROR => Some(Level::Error),
        tracing::Level::WARN => Some(Level::Warn),
        tracing::Level::INFO => Some(Level::Info),
        tracing::Level::DEBUG => Some(Level::Debug),
        _ => None,
    }
}

/// Libraries that move bytes on the wire (HTTP, TLS, WebSocket, SMTP, sockets): below
/// INFO they describe requests, headers and frames, so their events are written from INFO
/// up whatever `log.min_level` says. A name matches its crate and every module in it.
pub const WIRE_TARGETS: &[&str] = &[
    "ureq",
    "ironfix_engine",
    "ironfix_session",
    "ironfix_transport",
    "ironfix_tagvalue",
    "ironfix_store",
    "ureq_proto",
    "rustls",
    "tokio_rustls",
    "webpki",
    "tungstenite",
    "tokio_tungstenite",
    "actix_http",
    "actix_ws",
    "awc",
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "http",
    "httparse",
    "lettre",
    "mio",
    "want",
];

/// Tells whether `target` is one of [`WIRE_TARGETS`] or a module of one.
fn on_the_wire(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    WIRE_TARGETS.contains(&krate)
}

#[derive(Default)]
struct Fields {
    message: String,
    extra: Vec<(String, String)>,
}

/// The fields `tracing-log` adds to a `log` record (its target, module, file, line): the
/// target is written as the line's target, the rest is noise.
fn from_log_bridge(field: &Field) -> bool {
    field.name().starts_with("log.")
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if from_log_bridge(field) {
            return;
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        write!(text, "{value:?}").expect("write to String");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.extra.push((field.name().to_string(), text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if from_log_bridge(field) {
            return;
        }
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.extra
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

/// Where the process-wide bridge sends events: the running session's log, if any.
static GLOBAL: OnceLock<RwLock<Option<Arc<VigilTracingLayer>>>> = OnceLock::new();

/// Whether the process-wide subscriber and `log` bridge could be installed (once).
static INSTALLED: OnceLock<Result<(), BridgeError>> = OnceLock::new();

/// Library events that came while a session's log was being waited for
/// ([`VigilTracingLayer::hold_until_installed`]), written by the layer installed next;
/// `None` while nothing waits.
static HELD: Mutex<Option<Held>> = Mutex::new(None);

/// The most events held for a log that has not started; later ones are counted.
const HELD_KEPT: usize = 256;

#[derive(Default)]
struct Held {
    events: Vec<(Level, String, Fields)>,
    dropped: u64,
}

/// Installs the process-wide subscriber and `log` bridge, once.
fn install_process_wide() -> Result<(), BridgeError> {
    INSTALLED
        .get_or_init(|| {
            tracing::subscriber::set_global_default(
                tracing_subscriber::layer::SubscriberExt::with(
                    tracing_subscriber::registry(),
                    GlobalBridge,
                ),
            )
            .map_err(|e| BridgeError::Subscriber(e.to_string()))?;
            // `log::trace!` then costs one comparison: nothing at TRACE is written.
            tracing_log::LogTracer::init_with_filter(tracing_log::log::LevelFilter::Debug)
                .map_err(|e| BridgeError::Logger(e.to_string()))
        })
        .clone()
}

/// Why the process-wide bridge could not be installed: the embedding program has its own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// A `tracing` subscriber is already installed.
    #[error("a tracing subscriber is already installed: {0}")]
    Subscriber(String),
    /// A `log` logger is already installed.
    #[error("a `log` logger is already installed: {0}")]
    Logger(String),
}

/// A layer that forwards to whichever session is running (see [`VigilTracingLayer::install_global`]).
struct GlobalBridge;

impl<S: Subscriber> Layer<S> for GlobalBridge {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Which events are wanted depends on the session running at the time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        if let Some(slot) = GLOBAL.get()
            && let Some(layer) = slot.read().as_ref()
        {
            return layer.wants(metadata);
        }
        // Held at the lowest level any log writes; the layer installed filters again.
        written(metadata, Level::Debug).is_some() && HELD.lock().is_some()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if let Some(slot) = GLOBAL.get()
            && let Some(layer) = slot.read().as_ref()
        {
            Layer::<S>::on_event(layer.as_ref(), event, ctx);
            return;
        }
        let mut held = HELD.lock();
        let Some(held) = held.as_mut() else {
            return;
        };
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let Some(lvl) = written(meta, Level::Debug) else {
            return;
        };
        if held.events.len() >= HELD_KEPT {
            held.dropped += 1;
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        held.events.push((lvl, meta.target().to_string(), fields));
    }
}

/// The level an event is written at, if it is at or above `min_level`: never TRACE, and from
/// INFO up for [`WIRE_TARGETS`].
fn written(metadata: &Metadata<'_>, min_level: Level) -> Option<Level> {
    level(metadata.level()).filter(|lvl| wanted(*lvl, metadata.target(), min_level))
}

fn wanted(lvl: Level, target: &str, min_level: Level) -> bool {
    lvl >= min_level && (lvl >= Level::Info || !on_the_wire(target))
}

impl VigilTracingLayer {
    /// Routes every `tracing` event of the process — and every `log` record, which is how
    /// actix and many libraries log — to this session's log. The first call installs the
    /// process-wide subscriber; later calls (a new session in the same process) only switch
    /// where events go.
    ///
    /// # Errors
    /// Fails when the embedding program has installed a `tracing` subscriber or a `log`
    /// logger of its own; add a `VigilTracingLayer` to that subscriber instead.
    ///
    /// What was held since [`VigilTracingLayer::hold_until_installed`] is written first,
    /// each line marked `held`.
    pub fn install_global(self) -> Result<(), BridgeError> {
        let layer = Arc::new(self);
        if let Some(held) = HELD.lock().take() {
            layer.write_held(held);
        }
        let slot = GLOBAL.get_or_init(|| RwLock::new(None));
        *slot.write() = Some(layer);
        install_process_wide()
    }

    /// Holds what libraries log from now until the next [`VigilTracingLayer::install_global`]
    /// (at most 256 events): a session does work before its log starts (the store opens,
    /// a broker session logs on), and what it logs then belongs in that log. Installs the
    /// process-wide subscriber if it is not yet; where that fails nothing is held, and
    /// `install_global` returns why.
    pub fn hold_until_installed() {
        if install_process_wide().is_ok() {
            HELD.lock().get_or_insert_with(Held::default);
        }
    }

    /// Stops routing process-wide events to any session (at session end).
    pub fn uninstall_global() {
        if let Some(slot) = GLOBAL.get() {
            *slot.write() = None;
        }
    }

    fn write_held(&self, held: Held) {
        let mut lines: Vec<LogEvent> = held
            .events
            .into_iter()
            .filter(|(lvl, target, _)| wanted(*lvl, target, self.min_level))
            .map(|(lvl, target, fields)| {
                self.line(lvl, target, fields)
                    .with("held", "logged before this log started")
            })
            .collect();
        if held.dropped > 0 {
            lines.push(
                LogEvent::new(self.clock.now(), "library", Event::LibraryLog)
                    .level(Level::Warn)
                    .with("target", "vigil_log")
                    .with(
                        "message",
                        format!(
                            "{} library events logged before this log started were not kept \
                             (the first {HELD_KEPT} are above)",
                            held.dropped
                        ),
                    ),
            );
        }
        if !lines.is_empty() {
            self.sink.send(lines);
        }
    }
}

impl<S: Subscriber> Layer<S> for VigilTracingLayer {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.wants(metadata)
    }

    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        self.forward(event);
    }
}

impl VigilTracingLayer {
    /// Tells whether an event is written: at or above the configured level, never TRACE,
    /// and from INFO up for [`WIRE_TARGETS`].
    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        written(metadata, self.min_level).is_some()
    }

    fn forward(&self, event: &TracingEvent<'_>) {
        // A `log` record arrives as an event of target "log", its own target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let Some(lvl) = written(meta, self.min_level) else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.sink
            .send(vec![self.line(lvl, meta.target().to_string(), fields)]);
    }

    /// The `library_log` line of an event.
    fn line(&self, lvl: Level, target: String, fields: Fields) -> LogEvent {
        let mut ev = LogEvent::new(self.clock.now(), "library", Event::LibraryLog)
            .level(lvl)
            .with("target", target)
            .with("message", fields.message);
        if !fields.extra.is_empty() {
            let joined = fields
                .extra
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            ev = ev.with("fields", Value::from(joined));
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing_subscriber::layer::SubscriberExt;
    use vigil_core::SystemClock;

    #[test]
    fn tracing_macros_reach_the_log() {
        let (sink, mem) = LogSink::memory();
        let layer = VigilTracingLayer::new(sink, Arc::new(SystemClock), Level::Info);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(venue = "paper", attempt = 3, "reconnecting");
            tracing::debug!("below the minimum level");
        });
        let events = mem.events();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.event, Event::LibraryLog);
        assert_eq!(e.level, Level::Warn);
        assert_eq!(
            e.get("message"),
            Some(&Value::from("reconnecting".to_string()))
        );
        assert_eq!(
            e.get("fields"),
            Some(&Value::from("venue=paper attempt=3".to_string()))
        );
    }

    #[test]
    fn trace_and_wire_level_debug_never_reach_the_log() {
        let (sink, mem) = LogSink::memory();
        let layer = VigilTracingLayer::new(sink, Arc::new(SystemClock), Level::Debug);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!("4150 4341 2d41 5049 APCA-API");
            tracing::trace!(target: "my_app", "trace from anyone");
            tracing::debug!(target: "ureq_proto::util", "a request's bytes");
            tracing::debug!(target: "ureq", "Request {{ headers: … }}");
            tracing::debug!(target: "tungstenite::protocol", "Sending frame");
            tracing::debug!(target: "rustls::client::hs", "handshake");
            tracing::info!(target: "rustls::client::hs", "info from the wire is kept");
            tracing::debug!(target: "sqlx::query", "debug from elsewhere is kept");
            // Same prefix, another crate: not on the list.
            tracing::debug!(target: "ureqx", "kept");
        });
        let kept: Vec<String> = mem
            .events()
            .iter()
            .map(|e| format!("{:?}", e.get("message")))
            .collect();
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(kept[0].contains("info from the wire"), "{kept:?}");
        assert!(kept[1].contains("debug from elsewhere"), "{kept:?}");
    }

    #[test]
    fn log_crate_records_are_filtered_and_named_by_their_own_target() {
        use tracing_log::log;
        let (sink, mem) = LogSink::memory();
        let layer = VigilTracingLayer::new(sink, Arc::new(SystemClock), Level::Debug);
        let subscriber = tracing_subscriber::registry().with(layer);
        let record = |level: log::Level, target: &str, text: &str| {
            let sent = tracing_log::format_trace(
                &log::Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("{text}"))
                    .build(),
            );
            assert!(sent.is_ok(), "{sent:?}");
        };
        tracing::subscriber::with_default(subscriber, || {
            record(log::Level::Trace, "ureq_proto::util", "4150 4341 APCA");
            record(
                log::Level::Debug,
                "ureq::unversioned::transport",
                "Connected",
            );
            record(log::Level::Trace, "sqlx::query", "trace elsewhere");
            record(log::Level::Debug, "sqlx::query", "SELECT 1");
        });
        let events = mem.events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            events[0].get("target"),
            Some(&Value::from("sqlx::query".to_string()))
        );
        assert_eq!(
            events[0].get("message"),
            Some(&Value::from("SELECT 1".to_string()))
        );
        assert_eq!(
            events[0].get("fields"),
            None,
            "the bridge's own fields are dropped"
        );
    }
}
