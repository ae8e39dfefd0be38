//! The control API: vigil's health and its operator commands over HTTP(S), for people,
//! scripts (`vigil ctl`) and standard tools (Prometheus, load balancers).
//!
//! - Every request needs `Authorization: Bearer TOKEN`. The token is made on first start
//!   (32 random bytes as hex) in a file only its owner may read ([`load_or_create_token`]);
//!   a file that group or others may read is refused. Tokens are compared in constant time.
//!   A missing or wrong token is answered 401, logged (`control_unauthorized`, never the
//!   token) and counted (`vigil_control_requests_total{outcome="unauthorized"}`).
//! - `GET /healthz`, `/readyz`, `/status` (also `/v1/status`), `/metrics`: the Monitor's
//!   health board.
//! - `POST /v1/commands`: `{"command": "pause", "agent": "signal", "reason": "…", "who":
//!   "…"}` goes to the Monitor as a [`vigil_messages::Command`]; its answer maps to 200, or 400
//!   (invalid), 409 (conflict), 503 (unavailable). Each command is recorded in the store's
//!   audit before it is carried out, completed with the answer, and logged
//!   (`control_command`). A repeated `request_id` is answered from the audit, not run again.
//! - `POST /v1/token/rotate`: a new token, written atomically; only it is accepted after
//!   (and every dashboard session ends).
//! - `/ui/`: the operations dashboard, with its own login session (`dashboard`,
//!   docs/dashboard.md). A read-only token (`control.read_token_file`) reads every `GET`
//!   endpoint and the dashboard, and is refused every command (403).
//! - HTTPS with `[control] tls_cert` / `tls_key`. A non-loopback address without TLS is
//!   refused unless `allow_insecure_remote` is set, which is logged CRITICAL at every start.
//!
//! It binds 127.0.0.1 by default; see docs/control.md.
//!
//! [`client`] is the other end: how the `vigil` command finds a running vigil and talks to it.

pub mod client;
mod dashboard;
mod request;
mod server;
mod tls;
mod token;

use std::path::PathBuf;

pub use client::CONTROL_ADDR_FILE;
pub use request::COMMANDS;
pub use server::{ControlOptions, ControlServer, REQUEST_OUTCOMES, SERVICE};
pub use tls::TlsFiles;
pub use token::{Token, load_or_create_token, read_token, replace_token};

/// Why the control API could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The address could not be bound.
    #[error("control address {addr}: cannot listen: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A non-loopback address without TLS and without the explicit override.
    #[error(
        "control address {addr} is not a loopback address: set control.tls_cert and \
         control.tls_key to serve HTTPS, or control.allow_insecure_remote = true to accept \
         plain HTTP on the network"
    )]
    InsecureRemote {
        /// The bound address.
        addr: String,
    },
    /// The token file is unusable.
    #[error("control token file {path}: {problem}")]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// The running vigil cannot be looked for ([`client::Target::locate`]): the address
    /// file or the certificate to trust cannot be read, or the address is malformed.
    #[error("{0}")]
    Locate(String),
    /// A TLS file is unusable.
    #[error("control TLS file {path}: {problem}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}
