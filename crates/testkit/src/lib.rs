//! What the agents' actor-level tests share: a stand-in actor that records whatever it is
//! sent, the ordered log it records into, bounded waits, small readers of the memory log,
//! the wiring of an agent under test ([`wiring`]), and the TOML sections of test sessions'
//! configs ([`config`]).
//!
//! A test names what it expects to receive as one enum (see [`record_enum!`]), starts a
//! [`RecordingActor`] over a [`Recorder`] of that enum, and wires the agent under test to
//! the actor's recipients: because one actor receives every message, the recorder keeps
//! their relative order (a stage report after the end marker, a heartbeat before both).
//!
//! Every wait is bounded by a number of yields to the runtime, never by the wall clock:
//! a passing wait takes a few rounds, and only a failing test reaches the bound, where it
//! panics with what it was waiting for and what it received instead.
//!
//! ```
//! use actix::Message;
//! use vigil_testkit::{Recorder, record_enum};
//!
//! #[derive(Message, Debug, Clone)]
//! #[rtype(result = "()")]
//! struct Ping(u32);
//!
//! record_enum! {
//!     /// What the stand-in received.
//!     #[derive(Debug)]
//!     enum Got {
//!         Ping(Ping),
//!     }
//! }
//!
//! #[actix_rt::main]
//! async fn main() {
//!     let seen = Recorder::<Got>::new();
//!     let actor = seen.start_actor();
//!     actor.do_send(Ping(1));
//!     actor.do_send(Ping(2));
//!     seen.wait_for::<Ping>(2).await;
//!     let pings: Vec<u32> = seen.all::<Ping>().iter().map(|p| p.0).collect();
//!     assert_eq!(pings, vec![1, 2]);
//! }
//! ```

mod client;
pub mod config;
mod files;
pub mod fix;
mod http;
mod logs;
mod macros;
mod market;
mod recorder;
mod wait;
mod wiring;

pub use client::{http_json, http_text};
pub use files::write_secret_file;
pub use http::{HttpReceiver, Received};
pub use logs::{logged, text, timestamp};
pub use market::{bar, flat_bar, jan, order_request};
pub use recorder::{AnsweringActor, Recorder, RecordingActor, Variant};
pub use wait::{MAX_YIELDS, SETTLE_YIELDS, settle, yield_until};
pub use wiring::wiring;

/// What [`record_enum!`] expands to refers to; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use vigil_messages::Flow;
}

/// The bound on every wait of a test that runs servers or processes (a log line, an
/// answer, a process's exit), in real time: only a failing test reaches it.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// The environment switch that makes a test fail instead of skip when an outside tool it
/// needs (promtool, systemd-analyze, an SMTP server) is missing. CI sets it (`.ci/run`), so
/// nothing is skipped there; PostgreSQL has its own, `VIGIL_TEST_PG_REQUIRED`.
pub const TOOLS_REQUIRED: &str = "VIGIL_TEST_TOOLS_REQUIRED";

/// A test cannot run because `what` is missing: prints a loud `SKIPPED: …` line on the
/// process's standard error (the harness would swallow a passing test's `eprintln!`), or
/// panics when [`TOOLS_REQUIRED`] is set.
pub fn skip_or_require(what: &str) {
    if std::env::var_os(TOOLS_REQUIRED).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{TOOLS_REQUIRED} is set, and {what}");
    }
    let line = format!("SKIPPED: {what}");
    if std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes()).is_err() {
        eprintln!("{line}");
    }
}
