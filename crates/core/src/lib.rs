//! Vigil's domain vocabulary: the plain types every other crate speaks.
//!
//! - [`Bar`], [`SymbolId`] and [`SymbolTable`]: market data as the agents see it.
//! - [`OrderRequest`], [`Fill`], [`ExecutionReport`], [`Portfolio`]: orders and the book,
//!   with money and quantities in [`rust_decimal::Decimal`], never `f64`.
//! - [`TraceId`] and [`ClientOrderId`]: a decision chain's identity, deterministic so that a
//!   replayed intent can never become a second order.
//! - [`Clock`], [`SystemClock`], [`SimClock`]: the only way vigil code reads the time, so
//!   tests and backtests run days of market time in seconds.
//! - [`RuleMetric`]: the metric catalogue (name, unit, kind, who measures it).
//! - [`Backoff`]: the exponential backoff of every retry.
//! - [`escape_controls`]: outside text made safe to print on a terminal.
//!
//! ```
//! use vigil_core::{Clock, SimClock};
//! let clock = SimClock::starting_at("2024-01-15T09:30:00Z".parse().unwrap());
//! clock.advance_by(chrono::Duration::minutes(1));
//! assert_eq!(clock.now().to_rfc3339(), "2024-01-15T09:31:00+00:00");
//! ```

mod agent;
mod backoff;
mod clock;
mod ids;
mod ledger;
mod level;
mod market;
mod metric;
mod order;
mod portfolio;
mod signal;
mod text;

pub use agent::{AgentId, AgentState, TradingState};
pub use backoff::Backoff;
pub use clock::{
    Clock, SharedClock, ShiftedClock, SimClock, Sleep, SystemClock, Timestamp, exchange_date,
    later, millis, seconds, span,
};
pub use ids::{ClientOrderId, TraceId};
pub use ledger::{SubLedger, SubLedgers};
pub use level::Level;
pub use market::{
    Bar, BarError, FutureBar, FutureGuard, MarketDataEvent, Symbol, SymbolId, SymbolTable,
};
pub use metric::{MetricKind, RuleMetric, Unit};
pub use order::{
    ExecutionReport, Fill, OrderAck, OrderRequest, OrderStatus, OrderType, Side, VenueOrder,
};
pub use portfolio::{Portfolio, Position};
pub use signal::{CanaryLeg, Direction, LegState, Regime, Signal};
pub use text::{escape_controls, escape_markup, first_control, is_control};

pub use rust_decimal::Decimal;
