//! Measurement without actix.
