//! Stage 4 of the start: open the session's log, record its anchors in the store, route
//! library logs into it, and say what the session is.
//!
//! The log starts only after the store's and the broker's memory was read
//! ([`crate::history::Evidence`]): what this session writes must not be taken for what an
//! earlier one left.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use vigil_config::{VenueKind, VigilConfig};
use vigil_core::{Level, SharedClock, SymbolId, SymbolTable, Timestamp, TradingState};
use vigil_log::{
    Anchor, AnchorKind, ChainKey, Event, LogBuffer, LogEvent, LogSink, LogTap, LogWriter,
    LogWriterHandle, VigilTracingLayer, WriterOptions, WriterReport, WriterReports,
};

use super::SystemError;
use super::provider::read_secret;
use crate::history::Evidence;

/// A log buffer for `service`, at its configured level (`log.service_levels`, else
/// `log.min_level`).
pub(super) fn buffer(cfg: &VigilConfig, sink: &LogSink, service: &'static str) -> LogBuffer {
    LogBuffer::new(sink.clone(), service, service_level(cfg, service))
}

/// The level `service` logs at: its own (`log.service_levels`), else `log.min_level`.
fn service_level(cfg: &VigilConfig, service: &str) -> Level {
    cfg.log
        .service_levels
        .get(service)
        .copied()
        .unwrap_or(cfg.log.min_level)
}

/// The key of a keyed log chain, read from `log.hmac_key_file`, and its text (for the log
/// to redact).
pub(super) fn log_key(cfg: &VigilConfig) -> Result<Option<(ChainKey, String)>, SystemError> {
    let Some(path) = &cfg.log.hmac_key_file else {
        return Ok(None);
    };
    let text =
        read_secret("log.hmac_key_file", path).map_err(|e| SystemError::Runtime(e.to_string()))?;
    let key = ChainKey::new(text.as_bytes())
        .map_err(|e| SystemError::Runtime(format!("log.hmac_key_file {}: {e}", path.display())))?;
    Ok(Some((key, text)))
}

/// The session's log, running.
pub(super) struct StartedLog {
    /// The writer.
    pub(super) log: LogWriterHandle,
    /// Where lines go.
    pub(super) sink: LogSink,
    /// The writer's own arbiter: a stuck pipeline cannot silence the log.
    pub(super) arbiter: Arbiter,
    /// Records the writer's anchors in the store; ends after the stop anchor.
    pub(super) anchor_writer: actix_rt::task::JoinHandle<()>,
    /// Why the writer failed, as it reports it (see `persisters::halt_on_log_failure`).
    pub(super) failures: UnboundedReceiver<String>,
    /// Why library logs do not reach this log, if they do not (said after the first lines).
    pub(super) unbridged: Option<vigil_log::BridgeError>,
}

/// Opens the log writer on its own arbiter with every known secret to redact (the keyed
/// chain's key, read here, is pushed to `read` and redacted too), starts recording its
/// anchors in `store`, and routes library logs into it.
///
/// `_read_first` proves the log's and the broker's memory was read before this session
/// writes its first line.
///
/// # Errors
/// The key file cannot be read or the log folder cannot be opened.
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    cfg: &VigilConfig,
    _read_first: &Evidence,
    mut secrets: Vec<String>,
    read: &mut Vec<String>,
    tap: Option<LogTap>,
    store: vigil_store::SharedStore,
    wall: &SharedClock,
    clock: &SharedClock,
) -> Result<StartedLog, SystemError> {
    let key = log_key(cfg)?;
    if let Some((_, text)) = &key {
        read.push(text.clone());
        secrets.push(text.clone());
    }
    // The writer's anchors go to the store, its failures halt the session: handed over
    // from the writer's threads without waiting. Unbounded on purpose: the writer must
    // never block on them; anchors are thinned by `record_anchors`, and a failure is
    // reported once per cause.
    let (anchor_tx, anchor_rx) = unbounded_channel::<Anchor>();
    let (failed_tx, failures) = unbounded_channel::<String>();
    let reports = WriterReports::new(move |report| match report {
        WriterReport::Anchor(a) => {
            if let Err(e) = anchor_tx.send(a) {
                eprintln!(
                    "vigil: ERROR: the log anchor of seq {} was not recorded: the anchor \
                     writer has stopped",
                    e.0.seq
                );
            }
        }
        WriterReport::Failed(error) => {
            if let Err(e) = failed_tx.send(error) {
                eprintln!("vigil: CRITICAL: the log writer failed: {}", e.0);
            }
        }
    });
    let writer = LogWriter::open(
        &cfg.log.dir,
        wall.clone(),
        WriterOptions {
            tap,
            reports: Some(reports),
            ..writer_options(cfg, secrets, key.map(|(key, _)| key))
        },
    )?;
    let arbiter = Arbiter::new();
    let log = writer.start_on(&arbiter.handle());
    let sink = log.sink();
    let anchor_writer = actix_rt::spawn(record_anchors(
        store,
        anchor_rx,
        buffer(cfg, &sink, "vigil"),
        wall.clone(),
    ));
    let bridge = VigilTracingLayer::new(sink.clone(), clock.clone(), service_level(cfg, "library"))
        .install_global();
    Ok(StartedLog {
        log,
        sink,
        arbiter,
        anchor_writer,
        failures,
        unbridged: bridge.err(),
    })
}

/// The first lines of a session: what it runs, and once per file without a volume column
/// what that means for the fills.
pub(super) fn session_started(
    cfg: &VigilConfig,
    at: Timestamp,
    wall_start: Timestamp,
    venue: &str,
    symbols: &SymbolTable,
    unknown_volume: &[(SymbolId, String)],
) -> Vec<LogEvent> {
    let mut out = vec![
        LogEvent::new(at, "vigil", Event::SessionStarted)
            .with("session", cfg.session.name.clone())
            .with(
                "instruments",
                cfg.data
                    .instruments
                    .iter()
                    .map(|i| format!("{}={}", i.symbol, i.path))
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .with("initial_cash", cfg.session.initial_cash)
            .with("speed", cfg.data.speed.to_string())
            .with("venue", venue.to_string())
            .with("fill_model", format!("{:?}", cfg.execution.fill_model))
            .with("wall_start", wall_start),
    ];
    for (symbol, source) in unknown_volume {
        // Its bars' volume is unknown, not zero (a zero would stop every fill), so nothing
        // caps the fills on them.
        out.push(
            LogEvent::new(at, "vigil", Event::DataVolumeUnknown)
                .with("symbol", symbols.name(*symbol).to_string())
                .with("source", source.clone())
                .with("effect", unknown_volume_effect(cfg.execution.venue)),
        );
    }
    out
}

/// The warning that library logs do not reach this log (another subscriber holds them).
pub(super) fn unbridged(at: Timestamp, error: &vigil_log::BridgeError) -> LogEvent {
    LogEvent::new(at, "vigil", Event::LibraryLog)
        .level(Level::Warn)
        .with("target", "vigil_system")
        .with(
            "message",
            format!("library logs do not reach this log: {error}"),
        )
}

/// What a file without a volume column means for the fills at `venue`.
fn unknown_volume_effect(venue: VenueKind) -> &'static str {
    match venue {
        VenueKind::Paper => {
            "no volume column: fills are not capped by volume \
             (execution.max_volume_participation does not apply)"
        }
        VenueKind::Alpaca | VenueKind::Fix => "no volume column: the broker fills by its own data",
    }
}

/// Flush anchors older than this are thinned (the last of each file and hour stays).
const ANCHORS_KEPT_WHOLE: chrono::Duration = chrono::Duration::hours(1);

/// The anchors thinned again after this many are recorded.
const THIN_ANCHORS_EVERY: u64 = 1_000;

/// Records the log writer's anchors in the store, off the writer's threads and without
/// ever holding up trading: when the store is slower than the flushes, only the newest
/// waiting flush anchor is recorded (starts and stops always are). Ends after the stop
/// anchor, or when the writer is gone. A failure is an ERROR line (`log_anchor_failed`,
/// alerted), on standard error too, counted; the next anchor is tried all the same.
async fn record_anchors(
    store: vigil_store::SharedStore,
    mut anchors: UnboundedReceiver<Anchor>,
    mut log: LogBuffer,
    wall: SharedClock,
) {
    let thin = |store: vigil_store::SharedStore, wall: SharedClock| async move {
        if let Err(e) = store
            .thin_log_anchors(wall.now() - ANCHORS_KEPT_WHOLE)
            .await
        {
            eprintln!("vigil: WARN: old log anchors were not thinned: {e}");
        }
    };
    thin(store.clone(), wall.clone()).await;
    let mut recorded = 0u64;
    let mut failures = 0u64;
    while let Some(first) = anchors.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = anchors.try_recv() {
            waiting.push(more);
        }
        let batch = anchors_to_record(waiting);
        let stop = batch.iter().any(|a| a.kind == AnchorKind::Stop);
        match store.anchor_log(&batch).await {
            Ok(()) => {
                let before = recorded / THIN_ANCHORS_EVERY;
                recorded += batch.len() as u64;
                if recorded / THIN_ANCHORS_EVERY > before {
                    thin(store.clone(), wall.clone()).await;
                }
            }
            Err(e) => {
                failures += 1;
                let newest = batch.last();
                let (file, seq) = newest.map_or((String::new(), 0), |a| (a.file.clone(), a.seq));
                eprintln!(
                    "vigil: ERROR: the log anchor (seq {seq} in {file}) was not recorded in the \
                     store ({failures} failure(s) this session): {e}"
                );
                log.emit(
                    LogEvent::new(wall.now(), "vigil", Event::LogAnchorFailed)
                        .with("file", file)
                        .with("seq", seq)
                        .with("error", e.to_string())
                        .with("failures", failures),
                );
                log.flush();
            }
        }
        if stop {
            break;
        }
    }
}

/// Of the anchors waiting, those to record: every start and stop, and only the newest
/// flush (an older flush anchor says less than a newer one of the same chain).
fn anchors_to_record(waiting: Vec<Anchor>) -> Vec<vigil_store::LogAnchor> {
    let newest_flush = waiting.iter().rposition(|a| a.kind == AnchorKind::Flush);
    waiting
        .into_iter()
        .enumerate()
        .filter(|(i, a)| a.kind != AnchorKind::Flush || Some(*i) == newest_flush)
        .map(|(_, a)| a)
        .collect()
}

/// A mutex's value, also after a panic elsewhere left it poisoned (an `Option` is valid
/// either way).
pub(super) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A session never trades without its log: when the writer fails (it cannot write, it
/// stopped, its thread died), the breaker trips at once (actor `log_writer`), the Risk agent
/// halts, the pipeline drains and stops, and the session ends failed. Said on standard
/// error, since the log cannot say it. The first reason is kept in `record`.
pub(super) async fn halt_on_log_failure(
    mut failures: UnboundedReceiver<String>,
    record: Arc<std::sync::Mutex<Option<String>>>,
    halt: vigil_messages::HaltLatch,
    risk: Recipient<vigil_messages::SetTradingState>,
    data: Recipient<vigil_messages::Shutdown>,
) {
    while let Some(error) = failures.recv().await {
        let reason = format!("the log writer failed: {error}");
        let first = {
            let mut r = locked(&record);
            let first = r.is_none();
            r.get_or_insert_with(|| reason.clone());
            first
        };
        // Later failures are the writer's own lines on standard error.
        if first {
            eprintln!(
                "vigil: CRITICAL: {reason}; trading is halted and the session stops: nothing \
                 may trade without its log"
            );
            halt.trip("log_writer", &reason);
            risk.do_send(vigil_messages::SetTradingState {
                state: TradingState::Halted,
                actor: "log_writer".into(),
                reason: reason.clone(),
            });
            data.do_send(vigil_messages::Shutdown {
                reason: vigil_messages::StopReason::Failed(reason),
            });
        }
    }
}

/// The options of `cfg`'s log writer (flush interval, file size, the secrets to redact, the
/// chain's key), without a tap or reports.
pub(super) fn writer_options(
    cfg: &VigilConfig,
    secrets: Vec<String>,
    key: Option<ChainKey>,
) -> WriterOptions {
    WriterOptions {
        flush_interval: Duration::from_millis(cfg.log.flush_interval_ms),
        max_file_bytes: cfg.log.max_file_mb.saturating_mul(1024 * 1024),
        secrets,
        tap: None,
        key,
        reports: None,
    }
}

/// Appends `events` to the log of `cfg` (its folder, its chain and key) from outside a
/// session, as `vigil gate` records its verdict: the same writer, so the lines are chained,
/// redacted and fsynced like a session's.
///
/// # Errors
/// The key cannot be read, or the log cannot be opened or written.
pub fn append_to_log(cfg: &VigilConfig, events: Vec<LogEvent>) -> Result<(), SystemError> {
    let key = log_key(cfg)?;
    let mut secrets = cfg.secrets();
    if let Some((_, text)) = &key {
        secrets.push(text.clone());
    }
    let system = actix::System::new();
    system.block_on(async move {
        let writer = LogWriter::open(
            &cfg.log.dir,
            Arc::new(vigil_core::SystemClock),
            writer_options(cfg, secrets, key.map(|(key, _)| key)),
        )?;
        let log = writer.start_on(&Arbiter::current());
        log.sink().send(events);
        log.close().await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(kind: AnchorKind, seq: u64) -> Anchor {
        Anchor {
            chain: "c".into(),
            file: "f.jsonl".into(),
            seq,
            hash: format!("h{seq}"),
            kind,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time"),
        }
    }

    #[test]
    fn only_the_newest_waiting_flush_anchor_is_recorded_but_every_start_and_stop() {
        let kept = anchors_to_record(vec![
            anchor(AnchorKind::Start, 1),
            anchor(AnchorKind::Flush, 2),
            anchor(AnchorKind::Flush, 3),
            anchor(AnchorKind::Stop, 4),
        ]);
        let seqs: Vec<u64> = kept.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, vec![1, 3, 4]);
    }

    #[test]
    fn a_service_logs_at_its_own_level_else_the_minimum() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.log.min_level = Level::Info;
        cfg.log
            .service_levels
            .insert("risk_agent".into(), Level::Debug);
        assert_eq!(service_level(&cfg, "risk_agent"), Level::Debug);
        assert_eq!(service_level(&cfg, "data_agent"), Level::Info);
    }

    #[test]
    fn a_file_without_volume_is_said_once_with_what_it_means_at_the_venue() {
        let cfg = VigilConfig::embedded_default();
        let symbols = super::super::provider::symbol_table(&cfg);
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
        let events = session_started(
            &cfg,
            at,
            at,
            "paper",
            &symbols,
            &[(SymbolId(0), "a.csv".into())],
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, Event::SessionStarted);
        assert_eq!(events[1].event, Event::DataVolumeUnknown);
        assert!(unknown_volume_effect(VenueKind::Paper).contains("not capped by volume"));
        assert!(unknown_volume_effect(VenueKind::Alpaca).contains("broker fills"));
        let none = session_started(&cfg, at, at, "paper", &symbols, &[]);
        assert_eq!(none.len(), 1);
    }
}
