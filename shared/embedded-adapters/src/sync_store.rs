//! [`ports::SyncStore`] on the embedded store: groups, runs, leases and checkpoints
//! kept in the same state (and file) as everything else.

use async_trait::async_trait;
use ports::SyncStore;
use serde::{Deserialize, Serialize};

use crate::store::FileStore;

/// The poller's items.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SyncState {}

#[async_trait]
impl SyncStore for FileStore {}
