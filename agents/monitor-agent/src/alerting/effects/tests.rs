//! Alerting without actix.
