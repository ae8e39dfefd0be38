//! The store from a command or a blocking thread: opened on a runtime of its own, used,
//! closed.

use vigil_config::VigilConfig;

/// Runs `f` on the store of `cfg`, on a runtime of its own (call it from no async context).
///
/// # Errors
/// When the runtime cannot start or the store cannot be opened (the message says which),
/// or what `f` returns.
pub fn with_store<T>(
    cfg: &VigilConfig,
    f: impl AsyncFnOnce(&vigil_store::SharedStore) -> Result<T, String>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the store's runtime: {e}"))?;
    runtime.block_on(async {
        let store = vigil_store::open_store(&cfg.store)
            .await
            .map_err(|e| e.to_string())?;
        let out = f(&store).await;
        store.close().await;
        out
    })
}
