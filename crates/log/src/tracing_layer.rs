//! A `tracing` layer: library code that logs with `tracing` macros reaches the same writer,
//! so nothing logs around the trading log.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Subscriber};
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

fn level(l: &tracing::Level) -> Level {
    match *l {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
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
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// A layer that forwards to whichever session is running (see [`VigilTracingLayer::install_global`]).
struct GlobalBridge;

impl<S: Subscriber> Layer<S> for GlobalBridge {
    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if let Some(slot) = GLOBAL.get()
            && let Some(layer) = slot.read().as_ref()
        {
            Layer::<S>::on_event(layer.as_ref(), event, ctx);
        }
    }
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
    pub fn install_global(self) -> Result<(), String> {
        let slot = GLOBAL.get_or_init(|| RwLock::new(None));
        *slot.write() = Some(Arc::new(self));
        INSTALLED
            .get_or_init(|| {
                tracing::subscriber::set_global_default(
                    tracing_subscriber::layer::SubscriberExt::with(
                        tracing_subscriber::registry(),
                        GlobalBridge,
                    ),
                )
                .map_err(|e| format!("a tracing subscriber is already installed: {e}"))?;
                tracing_log::LogTracer::init()
                    .map_err(|e| format!("a `log` logger is already installed: {e}"))
            })
            .clone()
    }

    /// Stops routing process-wide events to any session (at session end).
    pub fn uninstall_global() {
        if let Some(slot) = GLOBAL.get() {
            *slot.write() = None;
        }
    }
}

impl<S: Subscriber> Layer<S> for VigilTracingLayer {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        self.forward(event);
    }
}

impl VigilTracingLayer {
    fn forward(&self, event: &TracingEvent<'_>) {
        let lvl = level(event.metadata().level());
        if lvl < self.min_level {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut ev = LogEvent::new(self.clock.now(), "library", Event::LibraryLog)
            .level(lvl)
            .with("target", event.metadata().target().to_string())
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
        self.sink.send(vec![ev]);
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
}
