//! The dispatcher's part of the store: the delivery log ("import results"), the
//! target-side resource id of each user, and per-target circuit breakers.

use async_trait::async_trait;

/// Store operations the dispatcher needs beyond the ledger.
#[async_trait]
pub trait DeliveryStore: Send + Sync {}
