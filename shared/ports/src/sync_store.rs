//! The poller's part of the store: groups, directory-level outbox events, sync run
//! records, the per-directory lease that keeps two runs from interleaving their writes,
//! and the checkpoint a long full sync continues from.

use async_trait::async_trait;
use domain::{ChangeEvent, DirectoryId, Group, RunId, SyncRun};
use time::OffsetDateTime;

use crate::store_error::StoreError;

/// A group write and the events it causes, applied atomically (like `UserWrite`).
#[derive(Debug, Clone)]
pub struct GroupWrite {
    /// The new state of the group; `group.version` must be `expected_version + 1` (or 1).
    pub group: Group,
    /// The version the writer read; None means the group must not exist yet.
    pub expected_version: Option<u64>,
    /// Outbox entries written with the group.
    pub events: Vec<ChangeEvent>,
}

/// Store operations the poller needs beyond users and the outbox.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Every group of a directory (deleted ones included), in id order.
    async fn list_groups(&self, directory: &DirectoryId) -> Result<Vec<Group>, StoreError>;

    /// Writes a group and its outbox events atomically, conditional on the version.
    async fn write_group(&self, write: &GroupWrite) -> Result<(), StoreError>;

    /// Adds events that belong to no user or group write (directory events) to the
    /// outbox, after everything already in it.
    async fn append_events(
        &self,
        directory: &DirectoryId,
        events: &[ChangeEvent],
    ) -> Result<(), StoreError>;

    /// Creates or replaces a run record.
    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError>;

    /// Reads one run record.
    async fn get_run(
        &self,
        directory: &DirectoryId,
        id: &RunId,
    ) -> Result<Option<SyncRun>, StoreError>;

    /// The newest run records of a directory, newest first, at most `limit`.
    async fn list_runs(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<SyncRun>, StoreError>;

    /// Takes the directory's sync lease for `holder` until `until`, when it is free,
    /// expired at `now`, or already `holder`'s. False when another holder has it.
    async fn acquire_lease(
        &self,
        directory: &DirectoryId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Gives the lease back, only if `holder` still has it.
    async fn release_lease(&self, directory: &DirectoryId, holder: &str) -> Result<(), StoreError>;

    /// The saved progress of an unfinished full sync (opaque to the store).
    async fn get_checkpoint(&self, directory: &DirectoryId) -> Result<Option<String>, StoreError>;

    /// Saves the progress of a full sync, replacing the previous checkpoint.
    async fn put_checkpoint(&self, directory: &DirectoryId, data: &str) -> Result<(), StoreError>;

    /// Removes the checkpoint (the sync finished or was abandoned).
    async fn clear_checkpoint(&self, directory: &DirectoryId) -> Result<(), StoreError>;
}
