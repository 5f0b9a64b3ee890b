//! [`ports::SyncStore`] on the embedded store: groups, runs, leases and checkpoints
//! kept in the same state (and file) as everything else.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::{ChangeEvent, DirectoryId, Group, RunId, SyncRun};
use ports::{GroupWrite, PurgeReport, StoreError, SyncStore};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{FileStore, State};

/// Who holds a directory's lease, and until when (unix nanoseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Lease {
    holder: String,
    until: i128,
}

/// The poller's items.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SyncState {
    /// directory -> group id -> group
    #[serde(default)]
    groups: BTreeMap<String, BTreeMap<String, Group>>,
    /// directory -> run id -> run
    #[serde(default)]
    runs: BTreeMap<String, BTreeMap<String, SyncRun>>,
    /// directory -> lease
    #[serde(default)]
    leases: BTreeMap<String, Lease>,
    /// directory -> checkpoint
    #[serde(default)]
    checkpoints: BTreeMap<String, String>,
}

impl SyncState {
    /// Removes a directory's groups, runs, lease and checkpoint, counting them.
    pub(crate) fn purge(&mut self, dir: &str, report: &mut PurgeReport) {
        report.groups = count(self.groups.remove(dir).map(|m| m.len()));
        report.runs = count(self.runs.remove(dir).map(|m| m.len()));
        report.leases = u64::from(self.leases.remove(dir).is_some());
        report.checkpoints = u64::from(self.checkpoints.remove(dir).is_some());
    }
}

/// How many items a removed per-directory map held.
pub(crate) fn count(len: Option<usize>) -> u64 {
    len.map_or(0, |n| u64::try_from(n).unwrap_or(u64::MAX))
}

fn push_events(state: &mut State, dir: &str, events: &[ChangeEvent]) {
    for event in events {
        state.seq += 1;
        let seq = state.seq;
        state
            .outbox
            .entry(dir.to_string())
            .or_default()
            .push((seq, event.clone()));
    }
}

#[async_trait]
impl SyncStore for FileStore {
    async fn list_groups(&self, directory: &DirectoryId) -> Result<Vec<Group>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .sync
            .groups
            .get(directory.as_str())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn write_group(&self, write: &GroupWrite) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let dir = write.group.directory_id.to_string();
        let stored = state
            .sync
            .groups
            .get(&dir)
            .and_then(|m| m.get(write.group.id.as_str()))
            .map(|g| g.version);
        if stored != write.expected_version {
            return Err(StoreError::Conflict {
                what: format!("group {}/{}", dir, write.group.id),
                expected: write.expected_version,
            });
        }
        state
            .sync
            .groups
            .entry(dir.clone())
            .or_default()
            .insert(write.group.id.to_string(), write.group.clone());
        push_events(&mut state, &dir, &write.events);
        self.persist(&state).await
    }

    async fn append_events(
        &self,
        directory: &DirectoryId,
        events: &[ChangeEvent],
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        push_events(&mut state, directory.as_str(), events);
        self.persist(&state).await
    }

    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state
            .sync
            .runs
            .entry(run.directory_id.to_string())
            .or_default()
            .insert(run.id.to_string(), run.clone());
        self.persist(&state).await
    }

    async fn get_run(
        &self,
        directory: &DirectoryId,
        id: &RunId,
    ) -> Result<Option<SyncRun>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .sync
            .runs
            .get(directory.as_str())
            .and_then(|m| m.get(id.as_str()))
            .cloned())
    }

    async fn list_runs(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<SyncRun>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .sync
            .runs
            .get(directory.as_str())
            .map(|m| m.values().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn acquire_lease(
        &self,
        directory: &DirectoryId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        let free = match state.sync.leases.get(directory.as_str()) {
            None => true,
            Some(l) => l.holder == holder || l.until <= now.unix_timestamp_nanos(),
        };
        if !free {
            return Ok(false);
        }
        state.sync.leases.insert(
            directory.to_string(),
            Lease {
                holder: holder.to_string(),
                until: until.unix_timestamp_nanos(),
            },
        );
        self.persist(&state).await?;
        Ok(true)
    }

    async fn release_lease(&self, directory: &DirectoryId, holder: &str) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if state
            .sync
            .leases
            .get(directory.as_str())
            .is_some_and(|l| l.holder == holder)
        {
            state.sync.leases.remove(directory.as_str());
            self.persist(&state).await?;
        }
        Ok(())
    }

    async fn get_checkpoint(&self, directory: &DirectoryId) -> Result<Option<String>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .sync
            .checkpoints
            .get(directory.as_str())
            .cloned())
    }

    async fn put_checkpoint(&self, directory: &DirectoryId, data: &str) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state
            .sync
            .checkpoints
            .insert(directory.to_string(), data.to_string());
        self.persist(&state).await
    }

    async fn clear_checkpoint(&self, directory: &DirectoryId) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if state.sync.checkpoints.remove(directory.as_str()).is_some() {
            self.persist(&state).await?;
        }
        Ok(())
    }
}
