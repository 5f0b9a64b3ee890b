//! Contract checks of [`crate::DeliveryStore`], run by [`crate::contract::run_all`].

use crate::store::Store;

/// Runs every delivery-store check.
pub async fn run_all(_store: &dyn Store, _tag: &str) {}
