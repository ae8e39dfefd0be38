//! Builds the six-agent system from a [`VigilConfig`] and runs a session.
//!
//! - [`run`]: the whole session on a fresh actix system, returning its [`SessionOutcome`]
//!   (what `vigil run` does).
//! - [`Session::start`] inside a running actix system, with a [`SessionControl`] to send
//!   commands (pause, breaker) and stop it: for tests and embedding.
//! - [`bundled`]: the market data compiled into the binary.
//! - [`data_format_change`], [`data_source_down`], [`price_jump`]: drills rehearsing an
//!   incident against a running stack.
//!
//! Threads: the five pipeline agents share one arbiter by default (see
//! `runtime.isolate_agents`); the Monitor and the log writer each have their own, so a
//! stuck pipeline cannot silence supervision or the log.

mod bundled;
mod checklist;
mod day_report;
mod drill;
mod history;
mod logcheck;
mod session;
mod store_access;
mod watchdog;

pub use bundled::{BUNDLED_FILES, bundled};
pub use checklist::{
    CheckResult, CheckStatus, ChecklistKind, ChecklistReport, post_close, premarket_gate,
    run_checklist,
};
pub use day_report::{DayFill, DayReport, WrittenReport, chart_font};
pub use drill::{
    DrillCheck, DrillClass, DrillError, DrillOptions, agent_crash, broker_down, broker_drift,
    crash_loop, data_format_change, data_source_down, drill_score, network_loss, price_jump,
    process_frozen, record_drill, stale_data,
};
pub use logcheck::{AnchorSource, LogCheck, LogCheckError, verify_log};
pub use session::{
    CONTROL_ADDR_FILE, Session, SessionControl, SessionOptions, SessionOutcome, SystemError,
    WatchSummary, append_to_log, fleet_watch, read_secret, reconcile_now, run, run_with,
};
pub use store_access::with_store;
pub use vigil_config::VigilConfig;
pub use vigil_messages::{
    Action, Command, CommandError, CommandTarget, LatencySummary, SessionSummary,
};
pub use vigil_providers::{DataProvider, MarketDataEvent, ProviderError, ProviderHealth};
