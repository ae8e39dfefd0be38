//! Stage 6 of the start: the tasks that make a session's decisions durable — the execution
//! journal's writer and the trading-state writer — and the forwarding of their failures to
//! the Monitor.

use actix::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use vigil_config::VigilConfig;
use vigil_core::{AgentId, SharedClock, Timestamp};
use vigil_messages::{AgentFault, TradingStateRecord};
use vigil_store::{Journal, JournalEntry, JournalFailure, SavedTradingState, SharedStore};

use super::SystemError;

/// Which execution journal a session keeps, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum JournalBook {
    /// A broker's book: kept across sessions, every intent committed before it is sent.
    Broker(String),
    /// A paper book, new every session (`store.journal_paper_venue`), opened with the
    /// configured cash and committed in groups without holding up the orders.
    Paper(String),
}

/// Decides the journal: a broker outlives the process, so its book is always kept; the
/// in-process paper venue dies with it, so its journal is optional.
pub(super) fn journal_book(
    cfg: &VigilConfig,
    external: bool,
    started: Timestamp,
) -> Option<JournalBook> {
    if external {
        Some(JournalBook::Broker(crate::history::broker_book(cfg)))
    } else if cfg.store.journal_paper_venue {
        Some(JournalBook::Paper(format!(
            "paper:{}",
            started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )))
    } else {
        None
    }
}

/// The execution journal, running.
pub(super) struct StartedJournal {
    /// Where the Execution agent appends.
    pub(super) journal: Journal,
    /// Commits the journal; ends when the Execution agent has stopped.
    pub(super) writer: tokio::task::JoinHandle<()>,
    /// The commit failures, for [`forward_journal_failures`].
    pub(super) failures: UnboundedReceiver<JournalFailure>,
}

/// Starts the journal of `book` (a paper book opens with the configured cash; a broker's
/// cash is the broker's).
///
/// # Errors
/// The paper book's opening entry cannot be appended.
pub(super) fn start_journal(
    cfg: &VigilConfig,
    store: SharedStore,
    book: JournalBook,
    wall: &SharedClock,
) -> Result<StartedJournal, SystemError> {
    // Unbounded: the journal's task reports a failed commit without waiting; one per group.
    let (tx, failures) = unbounded_channel();
    let journal_wall = wall.clone();
    let (name, paper) = match book {
        JournalBook::Broker(name) => (name, false),
        JournalBook::Paper(name) => (name, true),
    };
    let (journal, writer) = Journal::start(store, name, move || journal_wall.now(), tx);
    if paper
        && let Err(e) = journal.append(JournalEntry::OpenBook {
            cash: cfg.session.initial_cash,
            fill_cursor: None,
        })
    {
        return Err(SystemError::Runtime(format!("the execution journal: {e}")));
    }
    Ok(StartedJournal {
        journal,
        writer,
        failures,
    })
}

/// Tells the Monitor of every journal commit that failed: fatal, since what is not
/// journaled cannot be recovered after a crash.
pub(super) fn forward_journal_failures(
    mut failures: UnboundedReceiver<JournalFailure>,
    monitor: Recipient<AgentFault>,
) {
    actix_rt::spawn(async move {
        while let Some(f) = failures.recv().await {
            let fault = journal_fault(&f);
            eprintln!(
                "vigil: {} {}",
                if fault.fatal { "CRITICAL" } else { "ERROR" },
                fault.error
            );
            monitor.do_send(fault);
        }
    });
}

/// The fault a failed journal commit is.
fn journal_fault(f: &JournalFailure) -> AgentFault {
    if f.checkpoint {
        // Nothing was lost: a restart reads the fills since the previous checkpoint.
        return AgentFault {
            agent: AgentId::Execution,
            error: format!(
                "journal: a checkpoint was not written (nothing was lost; a restart reads \
                 back to the previous one): {}",
                f.error
            ),
            fatal: false,
        };
    }
    AgentFault {
        agent: AgentId::Execution,
        error: format!(
            "journal: {} entries were not committed: {}",
            f.entries, f.error
        ),
        fatal: true,
    }
}

/// The trading-state writer's input: the Risk agent sends every change here, in order.
pub(super) type StateChanges = UnboundedSender<TradingStateRecord>;

/// Saves every change of the trading state, in order, so that a tripped breaker survives a
/// restart of the process. A change that cannot be saved is a fault for the Monitor (not
/// fatal: trading goes on, but a restart would not remember it). Ends when the Risk agent
/// (the sender) has stopped.
pub(super) fn start_state_writer(
    store: SharedStore,
    monitor: Recipient<AgentFault>,
) -> (StateChanges, actix_rt::task::JoinHandle<()>) {
    // Unbounded on purpose: the Risk agent never waits on the store; changes are rare (a
    // person or a rule changes the state).
    let (tx, mut rx) = unbounded_channel::<TradingStateRecord>();
    let writer = actix_rt::spawn(async move {
        while let Some(r) = rx.recv().await {
            let saved = saved_state(r);
            if let Err(e) = store.save_trading_state(&saved).await {
                let error = format!(
                    "the trading state ({}) was not saved, a restart would not remember it: {e}",
                    saved.state
                );
                eprintln!("vigil: CRITICAL {error}");
                monitor.do_send(AgentFault {
                    agent: AgentId::Risk,
                    error,
                    fatal: false,
                });
            }
        }
    });
    (tx, writer)
}

fn saved_state(r: TradingStateRecord) -> SavedTradingState {
    SavedTradingState {
        state: r.state,
        actor: r.actor,
        reason: r.reason,
        at: r.at,
        outage_hold: r.outage_hold,
    }
}

/// The Risk agent's starting record of a saved state.
pub(super) fn state_record(s: SavedTradingState) -> TradingStateRecord {
    TradingStateRecord {
        state: s.state,
        actor: s.actor,
        reason: s.reason,
        at: s.at,
        outage_hold: s.outage_hold,
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::TradingState;

    use super::*;

    fn at() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-03-02T14:31:00.250Z")
            .expect("a time")
            .to_utc()
    }

    #[test]
    fn a_broker_book_is_always_journaled_a_paper_book_only_when_asked() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.store.journal_paper_venue = false;
        assert_eq!(journal_book(&cfg, false, at()), None);
        assert!(matches!(
            journal_book(&cfg, true, at()),
            Some(JournalBook::Broker(_))
        ));
        cfg.store.journal_paper_venue = true;
        assert_eq!(
            journal_book(&cfg, false, at()),
            Some(JournalBook::Paper("paper:2026-03-02T14:31:00.250Z".into()))
        );
    }

    #[test]
    fn a_failed_journal_commit_is_a_fatal_execution_fault() {
        let f = journal_fault(&JournalFailure {
            entries: 3,
            error: "disk full".into(),
            checkpoint: false,
        });
        assert_eq!(f.agent, AgentId::Execution);
        assert!(f.fatal);
        assert_eq!(f.error, "journal: 3 entries were not committed: disk full");
        let f = journal_fault(&JournalFailure {
            entries: 0,
            error: "disk full".into(),
            checkpoint: true,
        });
        assert!(!f.fatal, "a checkpoint loses nothing");
        assert!(
            f.error.contains("checkpoint was not written"),
            "{}",
            f.error
        );
    }

    #[actix_rt::test]
    async fn every_trading_state_change_is_saved_in_order() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut cfg = VigilConfig::embedded_default();
        cfg.store.path = dir.path().join("vigil.db");
        let store = vigil_store::open_store(&cfg.store)
            .await
            .expect("the store opens");
        let faults = no_faults();
        let (tx, writer) = start_state_writer(store.clone(), faults);
        for (state, reason) in [
            (TradingState::Halted, "breaker"),
            (TradingState::Active, "reset"),
        ] {
            tx.send(TradingStateRecord {
                state,
                actor: "operator".into(),
                reason: reason.into(),
                at: at(),
                outage_hold: None,
            })
            .expect("the writer runs");
        }
        drop(tx);
        writer
            .await
            .expect("the writer ends when the sender is gone");
        let saved = store
            .trading_state()
            .await
            .expect("the state is read")
            .expect("a state was saved");
        assert_eq!(saved.state, TradingState::Active);
        assert_eq!(saved.reason, "reset");
        store.close().await;
    }

    /// A recipient for faults that must not happen in the test.
    fn no_faults() -> Recipient<AgentFault> {
        struct NoFaults;
        impl Actor for NoFaults {
            type Context = Context<Self>;
        }
        impl Handler<AgentFault> for NoFaults {
            type Result = ();
            fn handle(&mut self, f: AgentFault, _: &mut Context<Self>) {
                panic!("unexpected fault: {}", f.error);
            }
        }
        NoFaults.start().recipient()
    }
}
