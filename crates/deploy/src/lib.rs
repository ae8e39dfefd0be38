//! Releasing models. A model reaches live money through a gate, a registry entry, a shadow
//! run and a canary (see docs/deploy.md). This crate holds the rules; the store keeps
//! their state and the binary drives them.
//!
//! What exists: the registry's rules ([`registry`]): registering a version, promoting it to
//! production, retiring it, rolling back to the last stable version, and the check that a
//! registered artifact has not changed since. Each rule takes the registry as the store
//! holds it and returns the one change to apply whole ([`vigil_store::RegistryWrite`]),
//! with its audit row, or the reason it is refused.
//!
//! A release ([`release`]) takes a staging version to production: it starts in shadow, where
//! the candidate decides on every bar beside production and never sends an order
//! ([`shadow`] keeps its figures and judges them), and ends when the candidate is promoted
//! (completed) or aborted. Its state is a row in the store, changed with the registry.

pub mod canary;
pub mod drift;
pub mod registry;
pub mod release;
pub mod rollback;
pub mod shadow;
