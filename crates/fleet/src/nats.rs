//! The NATS side: the connection, the fleet's stream and the leases' bucket.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::{LEASE_BUCKET, SUBJECT_PREFIX};

/// How long the fleet's stream keeps a line.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long JetStream remembers a message id: a line sent again within it (a lost
/// acknowledgement, a restart) is stored once. The publisher resends only what it has not
/// seen acknowledged, so minutes are plenty.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// A client that connects (and reconnects) in the background: a node starts and trades
/// whether NATS is up or not.
///
/// # Errors
/// The URL cannot be used.
pub(crate) async fn connect(url: &str, name: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(2))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((250 * attempt as u64).clamp(100, 5_000))
        })
        .connect(url)
        .await
        .map_err(|e| format!("{url}: {e}"))
}

/// A JetStream context whose calls give up after `timeout`.
pub(crate) fn jetstream(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client)
}

/// The fleet's stream, made when missing.
///
/// # Errors
/// JetStream refuses or does not answer.
pub(crate) async fn fleet_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        max_age: KEEP,
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("the stream {name}: {e}"))
}

/// The leases' bucket, made when missing.
///
/// # Errors
/// JetStream refuses or does not answer.
pub(crate) async fn lease_bucket(
    js: &jetstream::Context,
    lease: Duration,
) -> Result<kv::Store, String> {
    // A lease not renewed for a day is gone; `vigil fleet status` counts a node lost long
    // before, by its lease's age.
    bucket(
        js,
        LEASE_BUCKET,
        Duration::from_secs(24 * 3600).max(lease * 4),
    )
    .await
}

/// A key-value bucket (one value per key, kept `max_age`), made when missing. Its backing
/// stream is made here with the settings async-nats gives a bucket: the library's own
/// `create_key_value` first reads the account's limits, which a 2.9 server answers without
/// fields it requires.
///
/// # Errors
/// JetStream refuses or does not answer.
pub(crate) async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, String> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("the bucket {name}: {e}"))?;
    js.get_key_value(name)
        .await
        .map_err(|e| format!("the bucket {name}: {e}"))
}
