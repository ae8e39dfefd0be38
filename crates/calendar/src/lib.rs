//! Exchange calendars and the daily automation schedule: when vigil may trade, and what it
//! does at each moment of a trading day.
//!
//! - [`Calendar`]: sessions of an exchange (today the NYSE, [`Calendar::xnys`], 1995–2035),
//!   computed from rules with a short list of recorded exceptions, plus operator
//!   [`CalendarOverrides`]; [`Calendar::explain`] says why any day is open, short or closed.
//! - [`Session`]: a local date with its open and close as UTC instants, correct across
//!   daylight-saving changes.
//! - [`ScheduleConfig`] and [`Phase`]: the automated day (auto start, pre-market
//!   validation, trading, close-only, final snapshot, post-close, auto stop), tied to each
//!   session's real open and close so early-close days follow the close.
//! - [`systemd_units`]: a service and a timer that start vigil on trading days only.
//!
//! ```
//! use chrono::NaiveDate;
//! use vigil_calendar::{Calendar, ScheduleConfig};
//!
//! let nyse = Calendar::xnys();
//! let day = NaiveDate::from_ymd_opt(2024, 11, 29).unwrap();
//! let session = nyse.session(day).unwrap().unwrap();
//! assert!(session.early_close);
//! assert_eq!(session.close.to_rfc3339(), "2024-11-29T18:00:00+00:00");
//! assert_eq!(nyse.explain(day).unwrap().reason, "day after Thanksgiving");
//!
//! let text = ScheduleConfig::default().schedule_text(&nyse, day).unwrap();
//! assert!(text.contains("12:50 ET  close_only"));
//! ```

mod calendar;
mod error;
mod overrides;
mod schedule;
mod systemd;
mod xnys;

pub use calendar::{Calendar, DayStatus, Explanation, Session, Source};
pub use error::{CalendarError, Issue};
pub use overrides::{CalendarOverrides, ClosureOverride, EarlyCloseOverride};
pub use schedule::{Phase, ScheduleConfig};
pub use systemd::{TRADING_DAY_CONDITION, systemd_units};

pub use chrono_tz::Tz;
