//! Stages 3 and 5 of the start: choose the execution venue, and reconcile the journal with a
//! broker before anything trades.
//!
//! A broker outlives the process: its figures are the truth. [`reconcile_at_start`] is the
//! only way to get the [`Reconciled`] the agents are built from, so no agent can be wired
//! before the books were compared with the broker's (and restricted when they differ).

use std::sync::Arc;
use std::time::Duration;

use vigil_config::{
    FillModelConfig, FixPositions, FixTimeInForce, MismatchPolicy, OpenOrdersPolicy, VenueKind,
    VigilConfig,
};
use vigil_core::{FutureGuard, SharedClock, SymbolTable, SystemClock, Timestamp, TradingState};
use vigil_fix::{DropCopy, FixVenue, FixVenueConfig, PositionSource, TimeInForce};
use vigil_log::LogBuffer;
use vigil_providers::{
    AlpacaVenue, AlpacaVenueConfig, ExecutionVenue, FillModel, PaperVenue, PaperVenueConfig,
};
use vigil_recovery::{
    OpenOrderPolicy, ReconcileOptions, Reconciliation, reconcile, reconciliation_events,
};
use vigil_store::{SavedTradingState, StateStore};

use super::SystemError;
use super::provider::{future_tolerance, read_secret, symbol_table};

/// Where the orders go: the in-process paper venue, or a broker over HTTP (connected
/// here: a broker that cannot be reached stops the start). The broker's secret, when one is
/// read, is pushed to `read` (for the error text to redact).
///
/// # Errors
/// The broker's secret file cannot be read, or the broker cannot be reached.
pub(super) async fn open_venue(
    cfg: &VigilConfig,
    symbols: &SymbolTable,
    clock: SharedClock,
    store: Arc<dyn StateStore>,
    read: &mut Vec<String>,
) -> Result<Arc<dyn ExecutionVenue>, SystemError> {
    let secret = broker_secret(cfg)?;
    read.extend(secret.clone());
    venue(cfg, symbols, clock, store, secret).await
}

/// The broker's secret, read at start (trimmed), when orders go to a broker with
/// credentials: the API secret (`execution.broker_secret_file`) or the FIX password
/// (`execution.fix.password_file`).
fn broker_secret(cfg: &VigilConfig) -> Result<Option<String>, SystemError> {
    let e = &cfg.execution;
    let (key, file) = match e.venue {
        VenueKind::Paper => return Ok(None),
        VenueKind::Alpaca => ("execution.broker_secret_file", &e.broker_secret_file),
        VenueKind::Fix => ("execution.fix.password_file", &e.fix.password_file),
    };
    file.as_ref()
        .map(|path| read_secret(key, path).map_err(|e| SystemError::Venue(e.to_string())))
        .transpose()
}

async fn venue(
    cfg: &VigilConfig,
    symbols: &SymbolTable,
    clock: SharedClock,
    store: Arc<dyn StateStore>,
    secret: Option<String>,
) -> Result<Arc<dyn ExecutionVenue>, SystemError> {
    let e = &cfg.execution;
    match e.venue {
        VenueKind::Paper => {
            let venue_cfg = PaperVenueConfig {
                name: "paper".into(),
                fill_model: match e.fill_model {
                    FillModelConfig::NextBarOpen => FillModel::NextBarOpen,
                    FillModelConfig::SignalBarClose => FillModel::SignalBarClose,
                },
                slippage_bps: e.slippage_bps,
                commission_bps: e.commission_bps,
                commission_min: e.commission_min,
                max_volume_participation: e.max_volume_participation,
                initial_cash: cfg.session.initial_cash,
            };
            Ok(Arc::new(PaperVenue::new(venue_cfg, clock)))
        }
        VenueKind::Alpaca => {
            let config = AlpacaVenueConfig {
                name: "alpaca".into(),
                base_url: e.broker_url.clone().unwrap_or_default(),
                credentials: e.broker_key_id.clone().zip(secret),
                poll_interval: Duration::from_millis(e.broker_poll_interval_ms),
                timeout: Duration::from_millis(e.broker_timeout_ms),
            };
            let venue = AlpacaVenue::connect(config, symbols.clone(), clock)
                .await
                .map_err(|err| SystemError::Venue(err.to_string()))?;
            Ok(Arc::new(venue))
        }
        VenueKind::Fix => {
            let f = &e.fix;
            let config = FixVenueConfig {
                name: "fix".into(),
                address: f.address.clone().unwrap_or_default(),
                sender_comp_id: f.sender_comp_id.clone().unwrap_or_default(),
                target_comp_id: f.target_comp_id.clone().unwrap_or_default(),
                credentials: f.username.clone().zip(secret),
                account: f.account.clone(),
                heartbeat: Duration::from_secs(f.heartbeat_s),
                reconnect_initial: Duration::from_millis(f.reconnect_initial_ms),
                reconnect_max: Duration::from_millis(f.reconnect_max_ms),
                reply_timeout: Duration::from_millis(f.reply_timeout_ms),
                time_in_force: match f.time_in_force {
                    FixTimeInForce::Day => TimeInForce::Day,
                    FixTimeInForce::Gtc => TimeInForce::GoodTillCancel,
                },
                positions: match f.positions {
                    FixPositions::Counterparty => PositionSource::Counterparty,
                    FixPositions::Executions => PositionSource::Executions,
                },
                position_types: f.position_types.clone(),
                opening_cash: cfg.session.initial_cash,
                drop_copy: f
                    .drop_copy_sender_comp_id
                    .clone()
                    .zip(f.drop_copy_target_comp_id.clone())
                    .map(|(sender_comp_id, target_comp_id)| DropCopy {
                        sender_comp_id,
                        target_comp_id,
                    }),
            };
            let wall: SharedClock = Arc::new(SystemClock);
            let venue = FixVenue::connect(config, symbols.clone(), store, wall)
                .await
                .map_err(|err| SystemError::Venue(err.to_string()))?;
            Ok(Arc::new(venue))
        }
    }
}

/// The venue outlives the process (a broker), so its book is kept and reconciled.
pub(super) fn is_external(cfg: &VigilConfig) -> bool {
    cfg.execution.venue.is_external()
}

/// What the start reconciled: the proof that the books were compared with the broker's
/// before any agent is built (made only by [`reconcile_at_start`]).
#[derive(Debug)]
pub(super) struct Reconciled {
    /// The comparison with the broker (none for the in-process paper venue).
    pub(super) recovered: Option<Reconciliation>,
    /// The trading state the Risk agent starts in: the saved one, or the restriction a
    /// mismatch imposed.
    pub(super) trading_state: Option<SavedTradingState>,
    /// The state a difference found later restricts trading to.
    pub(super) on_mismatch: TradingState,
}

impl Reconciled {
    /// The last bar the journal handled, where this run resumes.
    pub(super) fn resume_after(&self) -> Option<Timestamp> {
        self.recovered.as_ref().and_then(|r| r.last_bar_at)
    }
}

/// The state a difference with the broker restricts trading to (`execution.reconcile.on_mismatch`).
pub(super) fn on_mismatch(cfg: &VigilConfig) -> TradingState {
    match cfg.execution.reconcile.on_mismatch {
        MismatchPolicy::ReduceOnly => TradingState::ReduceOnly,
        MismatchPolicy::Halt => TradingState::Halted,
    }
}

/// What happens to the broker's open orders vigil did not send
/// (`execution.reconcile.open_orders`).
fn open_order_policy(cfg: &VigilConfig) -> OpenOrderPolicy {
    match cfg.execution.reconcile.open_orders {
        OpenOrdersPolicy::Adopt => OpenOrderPolicy::Adopt,
        OpenOrdersPolicy::Cancel => OpenOrderPolicy::Cancel,
    }
}

/// The trading state to save after a reconciliation: none when it passed, or when the
/// saved state is already a halt (stricter than any restriction); otherwise `on_mismatch`,
/// saying why. Trading opens no wider than this until a person resets the breaker.
pub(super) fn restriction(
    passed: bool,
    mismatches: impl FnOnce() -> String,
    on_mismatch: TradingState,
    saved: Option<&SavedTradingState>,
    at: Timestamp,
) -> Option<SavedTradingState> {
    if passed || saved.is_some_and(|s| s.state == TradingState::Halted) {
        return None;
    }
    Some(SavedTradingState {
        state: on_mismatch,
        actor: "reconciliation".into(),
        reason: format!(
            "the books differ from the broker's at start: {}",
            mismatches()
        ),
        at,
        // Not halted before (else nothing is saved here): no outage's halt to keep.
        outage_hold: None,
    })
}

/// Reconciles the journal of a broker's book with the broker (nothing to do for the paper
/// venue), refuses a journal whose last bar is from the future, saves the restriction a
/// mismatch imposes, and logs every difference through `log`.
///
/// # Errors
/// The store or the broker cannot be read, the journal's last bar is from the future, or
/// the restriction cannot be saved.
#[allow(clippy::too_many_arguments)]
pub(super) async fn reconcile_at_start(
    cfg: &VigilConfig,
    store: &dyn StateStore,
    venue: &dyn ExecutionVenue,
    symbols: &SymbolTable,
    saved: Option<SavedTradingState>,
    wall: &SharedClock,
    clock: &SharedClock,
    mut log: LogBuffer,
) -> Result<Reconciled, SystemError> {
    let on_mismatch = on_mismatch(cfg);
    if !is_external(cfg) {
        return Ok(Reconciled {
            recovered: None,
            trading_state: saved,
            on_mismatch,
        });
    }
    let book = crate::history::broker_book(cfg);
    let t0 = wall.now();
    let rec = reconcile(
        store,
        &book,
        venue,
        symbols,
        ReconcileOptions {
            open_orders: open_order_policy(cfg),
            dry_run: false,
        },
        t0,
    )
    .await
    .map_err(|e| SystemError::Venue(format!("{e}; nothing was traded")))?;
    // The last bar the journal handled is where this run resumes: one from the future
    // would skip every true bar until then, and nothing would trade.
    if let Some(last) = rec.last_bar_at
        && let Err(e) = FutureGuard::new(wall.clone(), future_tolerance(cfg)).check(last)
    {
        return Err(SystemError::History(format!(
            "the journal's last bar for book {book} is from the future ({e}): this run would \
             skip every bar until then and trade nothing; vigil refuses to start: nothing was \
             sent. Check the machine's clock; if it is right, restore the store from a backup \
             taken before that bar was journaled (see docs/recovery.md)"
        )));
    }
    let took_ms = (wall.now() - t0).num_milliseconds().max(0) as u64;
    let restricted = restriction(
        rec.passed(),
        || rec.mismatches(),
        on_mismatch,
        saved.as_ref(),
        t0,
    );
    let restrict = (!rec.passed()).then_some(on_mismatch);
    let trading_state = match restricted {
        Some(state) => {
            store.save_trading_state(&state).await?;
            Some(state)
        }
        None => saved,
    };
    for ev in reconciliation_events(clock.now(), &rec, took_ms, restrict) {
        log.emit(ev);
    }
    log.flush();
    Ok(Reconciled {
        recovered: Some(rec),
        trading_state,
        on_mismatch,
    })
}

/// Reconciles the journal with the configured broker without changing either: what
/// `vigil reconcile` prints. The next `vigil run` applies the same findings before it trades.
///
/// # Errors
/// With the in-process paper venue (nothing outlives a session), or when the store or the
/// broker cannot be read.
pub fn reconcile_now(cfg: &VigilConfig) -> Result<Reconciliation, SystemError> {
    if !is_external(cfg) {
        return Err(SystemError::Venue(
            "execution.venue is \"paper\": the in-process paper venue lives and dies with \
             `vigil run`, there is no broker to reconcile with; set venue = \"alpaca\" or \
             \"fix\""
                .into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SystemError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let store = vigil_store::open_store(&cfg.store).await?;
        let symbols = symbol_table(cfg);
        let clock: SharedClock = Arc::new(SystemClock);
        let venue = venue(
            cfg,
            &symbols,
            clock.clone(),
            store.clone(),
            broker_secret(cfg)?,
        )
        .await?;
        let book = crate::history::broker_book(cfg);
        let rec = reconcile(
            &*store,
            &book,
            &*venue,
            &symbols,
            ReconcileOptions {
                open_orders: open_order_policy(cfg),
                dry_run: true,
            },
            clock.now(),
        )
        .await
        .map_err(|e| SystemError::Venue(e.to_string()));
        // The venue's session ends before the store it keeps its state in.
        venue.close().await;
        store.close().await;
        rec
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-03-02T14:31:00Z")
            .expect("a time")
            .to_utc()
    }

    fn saved(state: TradingState) -> SavedTradingState {
        SavedTradingState {
            state,
            actor: "operator".into(),
            reason: "test".into(),
            at: at(),
            outage_hold: None,
        }
    }

    #[test]
    fn a_reconciliation_that_passed_restricts_nothing() {
        let r = restriction(
            true,
            || unreachable!("no mismatch to describe"),
            TradingState::ReduceOnly,
            None,
            at(),
        );
        assert_eq!(r, None);
    }

    #[test]
    fn a_mismatch_restricts_trading_to_the_configured_state_and_says_why() {
        for policy in [TradingState::ReduceOnly, TradingState::Halted] {
            let r = restriction(
                false,
                || "position AAPL: journal 10, broker 12".into(),
                policy,
                Some(&saved(TradingState::ReduceOnly)),
                at(),
            )
            .expect("a mismatch restricts trading");
            assert_eq!(r.state, policy);
            assert_eq!(r.actor, "reconciliation");
            assert!(r.reason.contains("journal 10, broker 12"), "{}", r.reason);
            assert_eq!(r.at, at());
        }
    }

    #[test]
    fn a_saved_halt_is_stricter_than_any_restriction_and_stays() {
        let r = restriction(
            false,
            || "cash differs".into(),
            TradingState::ReduceOnly,
            Some(&saved(TradingState::Halted)),
            at(),
        );
        assert_eq!(r, None);
    }

    #[test]
    fn the_paper_venue_is_not_reconciled_and_keeps_the_saved_state() {
        let cfg = VigilConfig::embedded_default();
        assert!(!is_external(&cfg));
        let err = reconcile_now(&cfg).expect_err("nothing outlives a paper session");
        assert!(
            err.to_string().contains("no broker to reconcile with"),
            "{err}"
        );
    }

    #[test]
    fn the_mismatch_and_open_order_policies_follow_the_config() {
        let mut cfg = VigilConfig::embedded_default();
        cfg.execution.reconcile.on_mismatch = MismatchPolicy::Halt;
        cfg.execution.reconcile.open_orders = OpenOrdersPolicy::Cancel;
        assert_eq!(on_mismatch(&cfg), TradingState::Halted);
        assert!(matches!(open_order_policy(&cfg), OpenOrderPolicy::Cancel));
        cfg.execution.reconcile.on_mismatch = MismatchPolicy::ReduceOnly;
        cfg.execution.reconcile.open_orders = OpenOrdersPolicy::Adopt;
        assert_eq!(on_mismatch(&cfg), TradingState::ReduceOnly);
        assert!(matches!(open_order_policy(&cfg), OpenOrderPolicy::Adopt));
    }
}
