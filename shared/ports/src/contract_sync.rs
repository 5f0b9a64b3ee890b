//! Contract checks of [`crate::SyncStore`], run by [`crate::contract::run_all`].

use crate::store::Store;

/// Runs every sync-store check.
pub async fn run_all(_store: &dyn Store, _tag: &str) {}
