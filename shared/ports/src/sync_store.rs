//! The poller's part of the store: groups, directory-level outbox events, events
//! quarantined out of the outbox, sync run records, the per-directory lease that keeps
//! two runs from interleaving their writes, and the checkpoint a long full sync
//! continues from.

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

/// An event the buses refused for good (too large, malformed), set aside out of the
/// outbox so the directory's later events go on. Kept for an operator, with why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantinedEvent {
    /// The event as the outbox held it.
    pub event: ChangeEvent,
    /// The bus's reason, e.g. "EntryTooLarge: the entry is 300000 bytes; ...".
    pub reason: String,
    /// When it was set aside.
    #[serde(with = "time::serde::rfc3339")]
    pub quarantined_at: OffsetDateTime,
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

    /// Sets events aside: each is stored under `QUAR#<event id>` and removed from the
    /// outbox. Quarantining an event again replaces its entry (harmless), and an event
    /// no longer in the outbox is still stored.
    async fn quarantine_events(
        &self,
        directory: &DirectoryId,
        events: &[QuarantinedEvent],
    ) -> Result<(), StoreError>;

    /// The directory's quarantined events, in event-id order, at most `limit`.
    async fn list_quarantined(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<QuarantinedEvent>, StoreError>;

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
