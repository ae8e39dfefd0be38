//! Errors of building channels. A failed delivery itself is a
//! [`DeliveryError`](crate::DeliveryError).

/// Why channels could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A channel's config cannot be used (an address that does not parse, a bad URL).
    #[error("channel {channel}: {reason}")]
    Config {
        /// Channel name.
        channel: String,
        /// What is wrong (never a secret).
        reason: String,
    },
}
