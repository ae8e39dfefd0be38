//! Errors of building channels and of handing deliveries to the dispatcher. A failed delivery
//! itself is a [`DeliveryError`](crate::DeliveryError), reported through the outcome sink.

/// Why channels could not be built, or a delivery could not be queued.
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
    /// Too many deliveries are queued or in progress; this one was not queued.
    #[error("the delivery queue is full ({capacity} deliveries queued or in progress); not queued")]
    QueueFull {
        /// `alerts.channels.delivery.queue_capacity`.
        capacity: usize,
    },
    /// A route names a channel that is not configured.
    #[error("channel {name:?} is not configured (configured: {configured}); not queued")]
    UnknownChannel {
        /// The name in the route.
        name: String,
        /// The configured channels, comma-separated.
        configured: String,
    },
    /// A delivery with no channel in its route.
    #[error("a delivery needs at least one channel in its route; not queued")]
    EmptyRoute,
    /// The dispatcher is shutting down and takes no new deliveries.
    #[error("the dispatcher is shutting down; not queued")]
    Closed,
    /// A channel's delivery thread has stopped (it can only be a panic in the outcome sink).
    #[error("the delivery thread of channel {channel} has stopped; not queued")]
    WorkerGone {
        /// Channel name.
        channel: String,
    },
    /// A delivery thread could not be started.
    #[error("cannot start the delivery thread of channel {channel}: {reason}")]
    Spawn {
        /// Channel name.
        channel: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Shutdown gave up waiting; these deliveries were abandoned.
    #[error(
        "{pending} deliveries were still queued or in progress after {waited_ms} ms and were abandoned"
    )]
    Abandoned {
        /// Deliveries abandoned.
        pending: usize,
        /// How long shutdown waited.
        waited_ms: u64,
    },
}
