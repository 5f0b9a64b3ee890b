//! The poller's part of the store: groups and memberships, sync run records, the
//! per-directory lease that keeps two runs from interleaving, and full-sync
//! checkpoints.

use async_trait::async_trait;

/// Store operations the poller needs beyond users and the outbox.
#[async_trait]
pub trait SyncStore: Send + Sync {}
