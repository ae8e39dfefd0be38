//! Stage 8 of the start: open the control API and listen for the operator's signals.
//!
//! Last, once every agent runs: a command that arrives is never lost in a half-built
//! session. The bound address is written to `control.addr` in the log folder; SIGHUP
//! reloads calendar overrides, SIGINT/SIGTERM drain and stop.

use std::path::PathBuf;

use actix::prelude::*;
use vigil_config::VigilConfig;
use vigil_control::{ControlOptions, ControlServer};
use vigil_core::SharedClock;
use vigil_log::{Event, LogBuffer, LogEvent, LogSink};
use vigil_messages::ReloadCalendar;
use vigil_monitoring::HealthBoard;

use super::{CONTROL_ADDR_FILE, SessionControl, SystemError};

/// Starts the control API when `control.enabled`, and writes its address to
/// [`CONTROL_ADDR_FILE`] in the log folder (removed at the end of the session).
///
/// # Errors
/// The audit's store cannot be opened, the address cannot be bound, or the address file
/// cannot be written.
pub(super) async fn start_api(
    cfg: &VigilConfig,
    board: HealthBoard,
    sink: LogSink,
    clock: &SharedClock,
    wall: &SharedClock,
    control: &SessionControl,
) -> Result<Option<(ControlServer, PathBuf)>, SystemError> {
    if !cfg.control.enabled {
        return Ok(None);
    }
    // The audit's own handle on the store: the Monitor's goes into its alerting.
    let audit = vigil_store::open_store(&cfg.store).await?;
    let server = ControlServer::start(
        ControlOptions::from_config(cfg, board, sink)
            .with_clocks(clock.clone(), wall.clone())
            .with_commands(control.commands.clone(), audit),
    )?;
    let file = cfg.log.dir.join(CONTROL_ADDR_FILE);
    std::fs::write(&file, format!("{}\n", server.url()))
        .map_err(|e| SystemError::Runtime(format!("cannot write {}: {e}", file.display())))?;
    eprintln!(
        "vigil: control address {} (/healthz /readyz /status /metrics /v1/commands; \
         bearer token in {})",
        server.url(),
        cfg.control_token_file().display()
    );
    Ok(Some((server, file)))
}

/// Installs the signal handlers: SIGHUP first, since the stop handlers print the ready
/// line, and every handler must be in place when it appears (SIGHUP's default action ends
/// the process).
///
/// # Errors
/// A signal cannot be listened for.
pub(super) fn install_signals(
    cfg: &VigilConfig,
    config_path: Option<PathBuf>,
    control: SessionControl,
    data: Recipient<ReloadCalendar>,
    log: LogBuffer,
    clock: SharedClock,
) -> Result<(), SystemError> {
    install_reload_signal(config_path, data, log, clock)?;
    install_stop_signals(control, &cfg.session.name)
}

/// Stops the session gracefully on SIGINT (Ctrl-C) or SIGTERM (systemd, `kill`); a second
/// signal exits at once. The handlers are registered before this returns, so the ready
/// line it prints is true (install every other handler before calling it).
fn install_stop_signals(ctl: SessionControl, name: &str) -> Result<(), SystemError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| SystemError::Runtime(format!("cannot listen for SIGINT: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| SystemError::Runtime(format!("cannot listen for SIGTERM: {e}")))?;
    actix_rt::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("vigil: stopping: draining the pipeline (signal again to exit at once)");
        ctl.shutdown();
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("vigil: second signal: exiting without draining");
        std::process::exit(130);
    });
    eprintln!("vigil: session {name} running; Ctrl-C or SIGTERM stops it gracefully");
    Ok(())
}

fn overrides_summary(cfg: &VigilConfig) -> String {
    let o = &cfg.calendar.overrides;
    let closures: Vec<String> = o
        .closures
        .iter()
        .map(|c| format!("{} ({})", c.date, c.reason))
        .collect();
    let early: Vec<String> = o
        .early_closes
        .iter()
        .map(|c| format!("{} {} ({})", c.date, c.close, c.reason))
        .collect();
    format!(
        "closures: [{}]; early closes: [{}]",
        closures.join(", "),
        early.join(", ")
    )
}

/// On SIGHUP, re-reads the config file and hands the Data agent the calendar with the new
/// overrides; an invalid file is refused with every problem logged, and the running
/// calendar stays.
fn install_reload_signal(
    path: Option<PathBuf>,
    data: Recipient<ReloadCalendar>,
    mut log: LogBuffer,
    clock: SharedClock,
) -> Result<(), SystemError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| SystemError::Runtime(format!("cannot listen for SIGHUP: {e}")))?;
    actix_rt::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(path) = &path else {
                log.emit(
                    LogEvent::new(clock.now(), "vigil", Event::ConfigReloadFailed).with(
                        "error",
                        "running on the embedded default: no config file to reload",
                    ),
                );
                log.flush();
                continue;
            };
            match VigilConfig::load(path) {
                Ok(cfg) => match cfg.calendar.calendar() {
                    Ok(calendar) => {
                        let change = format!("{}: {}", path.display(), overrides_summary(&cfg));
                        // The operator who sent the signal sees the result where they are.
                        eprintln!("vigil: calendar reloaded from {change}");
                        data.do_send(ReloadCalendar {
                            calendar,
                            schedule: cfg.calendar.schedule.clone(),
                            actor: "operator (SIGHUP)".into(),
                            change,
                        });
                    }
                    Err(e) => {
                        eprintln!("vigil: config reload refused: {e}");
                        log.emit(
                            LogEvent::new(clock.now(), "vigil", Event::ConfigReloadFailed)
                                .with("file", path.display().to_string())
                                .with("error", e.to_string()),
                        );
                    }
                },
                Err(e) => {
                    eprintln!(
                        "vigil: config reload refused, the running calendar stays: {}",
                        e.to_string().replace("\n", " ")
                    );
                    log.emit(
                        LogEvent::new(clock.now(), "vigil", Event::ConfigReloadFailed)
                            .with("file", path.display().to_string())
                            .with("error", e.to_string()),
                    );
                }
            }
            log.flush();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_names_every_closure_and_early_close() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.calendar.overrides = toml::from_str(
            "[[closures]]\ndate = \"2026-01-09\"\nreason = \"national day of mourning\"\n\
             [[early_closes]]\ndate = \"2026-12-24\"\nclose = \"13:00\"\nreason = \"Christmas Eve\"\n",
        )
        .expect("overrides parse");
        assert_eq!(
            overrides_summary(&cfg),
            "closures: [2026-01-09 (national day of mourning)]; early closes: \
             [2026-12-24 13:00:00 (Christmas Eve)]"
        );
    }
}
