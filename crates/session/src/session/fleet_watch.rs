//! `vigil fleet watch`: the fleet's central monitor as a process. It reads every node's lines
//! from NATS ([`vigil_fleet::monitor`]), writes what it finds to its own hash-chained log
//! (`[log] dir` of its config), and routes those lines through the alert engine to the
//! channels of its `[alerts]`, as a node's Monitor does with its own.
//!
//! It has no breaker to trip: a Critical fleet alert is notified (the node's own Monitor
//! acts on its own alerts). Market hours do not quiet it: a lost node is told at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use vigil_alert::routing::{AlertInput, route};
use vigil_alert::{AlertEngine, Channels, Delivery, DispatchConfig, Dispatcher, Effect, NextStep};
use vigil_config::VigilConfig;
use vigil_core::{Level, SharedClock, SystemClock};
use vigil_fleet::monitor::{self, MonitorOptions};
use vigil_fleet::watch::SERVICE;
use vigil_log::{Event, LogEvent, LogSink, LogWriter};

use super::SystemError;
use super::log::{locked, log_key, writer_options};

/// How long the end of the watch waits for the channels to deliver what they hold.
const DELIVERY_DRAIN: Duration = Duration::from_secs(10);

/// What a watch did, for its caller to print.
#[derive(Clone, Debug)]
pub struct WatchSummary {
    /// Lines of the nodes read and checked.
    pub lines: u64,
    /// Nodes seen, with their lease state.
    pub nodes: Vec<(String, &'static str)>,
    /// Where its log is.
    pub log_dir: std::path::PathBuf,
}

/// The alert engine and the dispatcher of the watch.
struct Alerting {
    engine: AlertEngine,
    dispatcher: Option<Dispatcher>,
    escalation: Vec<String>,
    log: LogSink,
    clock: SharedClock,
}

impl Alerting {
    /// Routes one line the watch logged; carries out what the engine decides.
    fn hear(&mut self, ev: &LogEvent) {
        let now = self.clock.now();
        let mut out = Vec::new();
        match route(ev) {
            Some(AlertInput::Raise(r)) => self.engine.raise(now, true, r, &mut out),
            Some(AlertInput::Happened(r)) => {
                let (rule, service, labels) = (r.rule.clone(), r.service.clone(), r.labels.clone());
                self.engine.raise(now, true, r, &mut out);
                self.engine
                    .clear(now, true, &rule, &service, &labels, &mut out);
            }
            Some(AlertInput::Clear {
                rule,
                service,
                labels,
            }) => self
                .engine
                .clear(now, true, &rule, &service, &labels, &mut out),
            _ => {}
        }
        self.apply(out);
    }

    fn tick(&mut self) {
        let mut out = Vec::new();
        self.engine.tick(self.clock.now(), true, &mut out);
        self.apply(out);
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        let now = self.clock.now();
        let mut lines = Vec::new();
        for effect in effects {
            match effect {
                Effect::Firing(a) => lines.push(
                    LogEvent::new(now, SERVICE, Event::AlertFiring)
                        .level(a.severity.level())
                        .with("id", a.id.clone())
                        .with("rule", a.rule.clone())
                        .with("severity", a.severity.as_str())
                        .with("service", a.service.clone())
                        .with("headline", a.event.clone()),
                ),
                Effect::Resolved(a) => lines.push(
                    LogEvent::new(now, SERVICE, Event::AlertResolved)
                        .with("id", a.id.clone())
                        .with("rule", a.rule.clone())
                        .with("firing_s", (now - a.since).num_seconds()),
                ),
                Effect::Suppressed { id, rule, why } => lines.push(
                    LogEvent::new(now, SERVICE, Event::AlertSuppressed)
                        .with("id", id)
                        .with("rule", rule)
                        .with("why", why.to_string()),
                ),
                // The fleet monitor has no breaker: each node's Monitor trips its own.
                Effect::TripBreaker { .. } => {}
                Effect::Notify { message, channels } => {
                    lines.extend(self.notify(message, &channels));
                }
            }
        }
        if !lines.is_empty() {
            self.log.send(lines);
        }
    }

    /// Hands a notice to the dispatcher, once per configured channel of `channels`.
    fn notify(&mut self, message: vigil_alert::Message, channels: &[String]) -> Vec<LogEvent> {
        let now = self.clock.now();
        let message = Arc::new(message);
        let (mut used, mut unrouted, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        for c in channels {
            let Some((d, route)) = self.dispatcher.as_ref().and_then(|d| {
                d.channels()
                    .route(c, &self.escalation)
                    .map(|route| (d, route))
            }) else {
                unrouted.push(c.clone());
                continue;
            };
            match d.submit(Delivery::new(Arc::clone(&message), route)) {
                Ok(_) => used.push(c.clone()),
                Err(e) => refused.push(format!("{c}: {e}")),
            }
        }
        let mut ev = LogEvent::new(now, SERVICE, Event::AlertNotified)
            .with("channels", used.join(","))
            .with("status", message.kind().as_str());
        if let Some(id) = message.alert_id() {
            ev = ev.with("id", id.to_string());
        }
        if !unrouted.is_empty() {
            ev = ev.level(Level::Warn).with("unrouted", unrouted.join(","));
        }
        let mut out = vec![ev];
        for e in refused {
            out.push(
                LogEvent::new(now, SERVICE, Event::AlertDeliveryFailed)
                    .with("channel", "dispatcher")
                    .with("error", e)
                    .with("next", "gave up: the notice was not queued"),
            );
        }
        out
    }
}

/// Runs the fleet's central monitor of `cfg` (its `[fleet]`, `[log]` and `[alerts]`) until
/// SIGINT or SIGTERM; `consumer` names its durable consumer (default `watch-<node>`).
///
/// # Errors
/// No `[fleet]`; the log, its key, the saved view or the channels cannot be set up.
pub fn fleet_watch(
    cfg: &VigilConfig,
    consumer: Option<String>,
) -> Result<WatchSummary, SystemError> {
    let fleet = cfg.fleet.clone().ok_or_else(|| {
        SystemError::Runtime(
            "the config has no [fleet] section (url, node): see docs/fleet.md".into(),
        )
    })?;
    let key = log_key(cfg)?;
    let mut secrets = cfg.secrets();
    if let Some((_, text)) = &key {
        secrets.push(text.clone());
    }
    let state_file = cfg.log.dir.join("fleet-watch.json");
    let watch = monitor::load(&state_file).map_err(SystemError::Runtime)?;
    let channels = Channels::from_config(&cfg.alerts.channels)
        .map_err(|e| SystemError::Runtime(format!("[alerts.channels]: {e}")))?;
    let opts = MonitorOptions {
        url: fleet.url.clone(),
        stream: fleet.stream.clone(),
        consumer: consumer.unwrap_or_else(|| format!("watch-{}", fleet.node)),
        state_file,
        poll: Duration::from_secs(1),
        key: key.as_ref().map(|(k, _)| k.clone()),
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let system = actix::System::new();
    system.block_on(async move {
        let writer = LogWriter::open(
            &cfg.log.dir,
            clock.clone(),
            writer_options(cfg, secrets, key.map(|(key, _)| key)),
        )?;
        let log = writer.start_on(&Arbiter::current());
        let sink = log.sink();
        let outcomes = sink.clone();
        let outcome_clock = clock.clone();
        let dispatcher = Dispatcher::start(
            channels,
            DispatchConfig::from(&cfg.alerts.channels.delivery),
            move |o| {
                let mut ev = match (&o.result, &o.next) {
                    (Ok(()), _) => LogEvent::new(outcome_clock.now(), SERVICE, Event::AlertDelivered),
                    (Err(e), next) => LogEvent::new(outcome_clock.now(), SERVICE, Event::AlertDeliveryFailed)
                        .level(if matches!(next, NextStep::RetryIn(_)) { Level::Warn } else { Level::Error })
                        .with("error", e.to_string())
                        .with("next", format!("{next:?}")),
                };
                ev = ev.with("channel", o.channel.clone()).with("attempt", u64::from(o.attempt));
                if let Some(id) = &o.alert_id {
                    ev = ev.with("id", id.clone());
                }
                outcomes.send(vec![ev]);
            },
        )
        .map_err(|e| SystemError::Runtime(format!("the alert channels: {e}")))?;
        let alerting = Arc::new(Mutex::new(Alerting {
            engine: AlertEngine::new(cfg.alerts.clone()),
            dispatcher: Some(dispatcher),
            escalation: cfg.alerts.routing.escalation.clone(),
            log: sink.clone(),
            clock: clock.clone(),
        }));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        actix_rt::spawn(async move {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("vigil: ERROR fleet watch: SIGTERM cannot be caught ({e}); stop it with SIGINT");
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                r = tokio::signal::ctrl_c() => if let Err(e) = r {
                    eprintln!("vigil: ERROR fleet watch: SIGINT cannot be caught: {e}");
                    return;
                }
            }
            if stop_tx.send(true).is_err() {
                eprintln!("vigil: WARN fleet watch: it had already stopped");
            }
        });
        let ticker = {
            let alerting = Arc::clone(&alerting);
            actix_rt::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    locked(&alerting).tick();
                }
            })
        };
        sink.send(vec![
            LogEvent::new(clock.now(), SERVICE, Event::FleetWatchStarted)
                .with("url", opts.url.clone())
                .with("stream", opts.stream.clone())
                .with("consumer", opts.consumer.clone())
                .with("nodes", watch.nodes.keys().cloned().collect::<Vec<_>>().join(",")),
        ]);
        eprintln!(
            "vigil: fleet watch: reading {} on {} as {}; log in {}",
            opts.stream,
            opts.url,
            opts.consumer,
            cfg.log.dir.display()
        );
        let emit_sink = sink.clone();
        let emit_alerting = Arc::clone(&alerting);
        let mut emit = move |ev: LogEvent| {
            if ev.level >= Level::Error {
                let facts: Vec<String> = ev.data.iter().map(|(k, v)| format!("{k}={v}")).collect();
                eprintln!("vigil: {} fleet watch: {} {}", ev.level, ev.event.name(), facts.join(" "));
            }
            emit_sink.send(vec![ev.clone()]);
            locked(&emit_alerting).hear(&ev);
        };
        let (watch, lines) = monitor::run(&opts, watch, clock.clone(), &mut emit, stop).await;
        ticker.abort();
        let nodes: Vec<(String, &'static str)> = watch
            .nodes
            .iter()
            .map(|(n, v)| (n.clone(), v.lease.as_str()))
            .collect();
        sink.send(vec![
            LogEvent::new(clock.now(), SERVICE, Event::FleetWatchStopped)
                .with("reason", "signal")
                .with("lines", lines)
                .with("nodes", nodes.len()),
        ]);
        let dispatcher = locked(&alerting).dispatcher.take();
        if let Some(d) = dispatcher {
            let drained = tokio::task::spawn_blocking(move || d.shutdown(DELIVERY_DRAIN)).await;
            match drained {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("vigil: ERROR fleet watch: notices not delivered at the stop: {e}"),
                Err(e) => eprintln!("vigil: ERROR fleet watch: the delivery drain failed: {e}"),
            }
        }
        log.close().await?;
        Ok(WatchSummary {
            lines,
            nodes,
            log_dir: cfg.log.dir.clone(),
        })
    })
}
