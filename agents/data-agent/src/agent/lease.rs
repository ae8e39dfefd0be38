//! The provider lent to a future, and brought home if the future is dropped.

use std::sync::Arc;

use parking_lot::Mutex;
use vigil_providers::DataProvider;

/// Where a provider lent to a read comes back to if the read is dropped (a restart after a
/// crash drops the futures the agent had spawned).
pub(super) type Home = Arc<Mutex<Option<Box<dyn DataProvider>>>>;

/// The provider, lent to a future (a read, a ping, the connection). Handed back by the
/// future when it completes; if the future is dropped instead, the lease puts the
/// provider back at home, where a restarted agent finds it: the connection survives a
/// crash of the agent.
pub(super) struct Lease {
    provider: Option<Box<dyn DataProvider>>,
    home: Home,
}

impl Lease {
    pub(super) fn new(provider: Box<dyn DataProvider>, home: &Home) -> Self {
        Self {
            provider: Some(provider),
            home: home.clone(),
        }
    }

    /// The provider lent.
    pub(super) fn get(&mut self) -> &mut dyn DataProvider {
        // Infallible: only `give_back`, which consumes the lease, and `drop` take it.
        self.provider
            .as_deref_mut()
            .expect("a lease holds its provider until it is handed back")
    }

    pub(super) fn give_back(mut self) -> Option<Box<dyn DataProvider>> {
        self.provider.take()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            *self.home.lock() = Some(p);
        }
    }
}
