//! Releasing models. A model reaches live money through a gate, a registry entry, a shadow
//! run and a canary (see docs/deploy.md). This crate holds the rules; the store keeps
//! their state and the binary drives them.
//!
//! What exists: the registry's rules ([`registry`]): registering a version, promoting it to
//! production, retiring it, rolling back to the last stable version, and the check that a
//! registered artifact has not changed since. Each rule takes the registry as the store
//! holds it and returns the one change to apply whole ([`vigil_store::RegistryWrite`]),
//! with its audit row, or the reason it is refused.

pub mod registry;
