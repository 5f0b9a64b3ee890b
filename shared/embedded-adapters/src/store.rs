//! A store kept in memory and, when opened on a path, persisted to one JSON file after
//! every write (written to a temporary file and renamed, so a crash never leaves half a
//! file). Meant for one process: the local stack and tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::{ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventId, TargetId};
use ports::{
    LedgerAdvance, Lifecycle, PurgeReport, RefreshRequest, Store, StoreError, UserFingerprint,
    UserWrite,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::sync_store::count;

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct State {
    directories: BTreeMap<String, Directory>,
    /// directory -> employee id -> user
    users: BTreeMap<String, BTreeMap<String, DirectoryUser>>,
    /// directory -> (write sequence, event), oldest first
    pub(crate) outbox: BTreeMap<String, Vec<(u64, ChangeEvent)>>,
    /// directory -> "target/object" -> version
    ledger: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) seq: u64,
    /// directory -> employee id -> requested at (unix nanoseconds). Defaulted so files
    /// written before refresh requests existed still open.
    #[serde(default)]
    refresh: BTreeMap<String, BTreeMap<String, i128>>,
    /// directory -> receipt key -> expires at (unix seconds).
    #[serde(default)]
    receipts: BTreeMap<String, BTreeMap<String, i64>>,
    /// The poller's items (see `sync_store`).
    #[serde(default)]
    pub(crate) sync: crate::sync_store::SyncState,
    /// The dispatcher's items (see `delivery_store`).
    #[serde(default)]
    pub(crate) delivery: crate::delivery_store::DeliveryState,
    /// The audit log and evidence (see `audit_store`).
    #[serde(default)]
    pub(crate) audit: crate::audit_store::AuditState,
}

/// The embedded store.
pub struct FileStore {
    path: Option<PathBuf>,
    pub(crate) state: Mutex<State>,
}

impl FileStore {
    /// A store that lives only as long as the value.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new(State::default()),
        }
    }

    /// Opens (or creates) a store persisted at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let state = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                what: path.display().to_string(),
                // serde's message can quote the file, which holds HR data: only the
                // position is kept.
                reason: format!(
                    "not a store state file (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                return Err(StoreError::Unavailable {
                    reason: format!("reading {}: {e}", path.display()),
                })
            }
        };
        Ok(Self {
            path: Some(path),
            state: Mutex::new(state),
        })
    }

    pub(crate) async fn persist(&self, state: &State) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let unavailable = |e: std::io::Error| StoreError::Unavailable {
            reason: format!("writing {}: {e}", path.display()),
        };
        let bytes = serde_json::to_vec(state).expect("store state serializes");
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(unavailable)?;
        }
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, bytes).await.map_err(unavailable)?;
        tokio::fs::rename(&tmp, path).await.map_err(unavailable)
    }
}

/// Receipts inserted between two sweeps of expired ones.
const RECEIPT_SWEEP_EVERY: usize = 256;

fn ledger_key(target: &TargetId, object_id: &str) -> String {
    format!("{target}/{object_id}")
}

#[async_trait]
impl Store for FileStore {
    async fn get_directory(&self, id: &DirectoryId) -> Result<Option<Directory>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .directories
            .get(id.as_str())
            .cloned())
    }

    async fn put_directory(
        &self,
        directory: &Directory,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let stored = state
            .directories
            .get(directory.id.as_str())
            .map(|d| d.version);
        if stored != expected_version {
            return Err(StoreError::Conflict {
                what: format!("directory {}", directory.id),
                expected: expected_version,
            });
        }
        state
            .directories
            .insert(directory.id.to_string(), directory.clone());
        self.persist(&state).await
    }

    async fn list_directories(&self) -> Result<Vec<Directory>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .directories
            .values()
            .cloned()
            .collect())
    }

    async fn get_user(
        &self,
        directory: &DirectoryId,
        employee: &EmployeeId,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .users
            .get(directory.as_str())
            .and_then(|m| m.get(employee.as_str()))
            .cloned())
    }

    async fn list_users(&self, directory: &DirectoryId) -> Result<Vec<DirectoryUser>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .users
            .get(directory.as_str())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn user_fingerprints(
        &self,
        directory: &DirectoryId,
    ) -> Result<Vec<UserFingerprint>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .users
            .get(directory.as_str())
            .map(|m| {
                m.values()
                    .map(|u| UserFingerprint {
                        employee_id: u.employee_id.clone(),
                        version: u.version,
                        fingerprint: u.fingerprint.clone(),
                        state: u.state,
                        lifecycle: Lifecycle::of(u),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn write_user(&self, write: &UserWrite) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let dir = write.user.directory_id.to_string();
        let stored = state
            .users
            .get(&dir)
            .and_then(|m| m.get(write.user.employee_id.as_str()))
            .map(|u| u.version);
        if stored != write.expected_version {
            return Err(StoreError::Conflict {
                what: format!("user {}/{}", dir, write.user.employee_id),
                expected: write.expected_version,
            });
        }
        state
            .users
            .entry(dir.clone())
            .or_default()
            .insert(write.user.employee_id.to_string(), write.user.clone());
        for event in &write.events {
            state.seq += 1;
            let seq = state.seq;
            state
                .outbox
                .entry(dir.clone())
                .or_default()
                .push((seq, event.clone()));
        }
        self.persist(&state).await
    }

    async fn pending_events(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .outbox
            .get(directory.as_str())
            .map(|v| v.iter().take(limit).map(|(_, e)| e.clone()).collect())
            .unwrap_or_default())
    }

    async fn mark_published(
        &self,
        directory: &DirectoryId,
        ids: &[EventId],
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if let Some(v) = state.outbox.get_mut(directory.as_str()) {
            v.retain(|(_, e)| !ids.contains(&e.id));
        }
        self.persist(&state).await
    }

    async fn ledger_get(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .ledger
            .get(directory.as_str())
            .and_then(|m| m.get(&ledger_key(target, object_id)))
            .copied())
    }

    async fn ledger_advance(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        version: u64,
    ) -> Result<LedgerAdvance, StoreError> {
        let mut state = self.state.lock().await;
        let slot = state
            .ledger
            .entry(directory.to_string())
            .or_default()
            .entry(ledger_key(target, object_id))
            .or_insert(0);
        if *slot >= version {
            return Ok(LedgerAdvance::AlreadyAt { current: *slot });
        }
        *slot = version;
        self.persist(&state).await?;
        Ok(LedgerAdvance::Advanced)
    }

    async fn record_refresh_requests(
        &self,
        directory: &DirectoryId,
        employees: &[EmployeeId],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let slot = state.refresh.entry(directory.to_string()).or_default();
        for e in employees {
            slot.insert(e.to_string(), nanos(at));
        }
        self.persist(&state).await
    }

    async fn pending_refresh_requests(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<RefreshRequest>, StoreError> {
        let state = self.state.lock().await;
        let Some(m) = state.refresh.get(directory.as_str()) else {
            return Ok(Vec::new());
        };
        m.iter()
            .take(limit)
            .map(|(emp, at)| {
                let what = format!("refresh request {directory}/{emp}");
                Ok(RefreshRequest {
                    employee_id: EmployeeId::parse(emp).map_err(|e| StoreError::Corrupt {
                        what: what.clone(),
                        reason: e.to_string(),
                    })?,
                    requested_at: OffsetDateTime::from_unix_timestamp_nanos(*at).map_err(|_| {
                        StoreError::Corrupt {
                            what,
                            reason: "requested-at out of range".into(),
                        }
                    })?,
                })
            })
            .collect()
    }

    async fn clear_refresh_requests(
        &self,
        directory: &DirectoryId,
        requests: &[RefreshRequest],
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if let Some(m) = state.refresh.get_mut(directory.as_str()) {
            for r in requests {
                if m.get(r.employee_id.as_str()) == Some(&nanos(r.requested_at)) {
                    m.remove(r.employee_id.as_str());
                }
            }
        }
        self.persist(&state).await
    }

    async fn has_receipt(
        &self,
        directory: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .receipts
            .get(directory.as_str())
            .and_then(|m| m.get(key))
            .is_some_and(|expires| *expires > now.unix_timestamp()))
    }

    async fn record_receipt(
        &self,
        directory: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        let now_secs = now.unix_timestamp();
        let receipts = state.receipts.entry(directory.to_string()).or_default();
        if receipts.get(key).is_some_and(|expires| *expires > now_secs) {
            return Ok(false);
        }
        // Expired receipts are swept now and then, as DynamoDB's TTL would, so a
        // long-running local stack does not grow without bound; sweeping on every
        // insert would make each receipt cost a pass over all of them.
        if receipts.len() % RECEIPT_SWEEP_EVERY == 0 {
            receipts.retain(|_, expires| *expires > now_secs);
        }
        receipts.insert(key.to_string(), expires_at.unix_timestamp());
        self.persist(&state).await?;
        Ok(true)
    }

    async fn purge_directory(&self, directory: &DirectoryId) -> Result<PurgeReport, StoreError> {
        let mut state = self.state.lock().await;
        let dir = directory.as_str();
        let mut report = PurgeReport {
            directory: state.directories.remove(dir).is_some(),
            users: count(state.users.remove(dir).map(|m| m.len())),
            outbox: count(state.outbox.remove(dir).map(|v| v.len())),
            ledger: count(state.ledger.remove(dir).map(|m| m.len())),
            refresh_requests: count(state.refresh.remove(dir).map(|m| m.len())),
            receipts: count(state.receipts.remove(dir).map(|m| m.len())),
            ..PurgeReport::default()
        };
        state.sync.purge(dir, &mut report);
        state.delivery.purge(dir, &mut report);
        state.audit.purge(dir, &mut report);
        // Nothing removed, nothing to write.
        if report.total() > 0 {
            self.persist(&state).await?;
        }
        Ok(report)
    }
}

/// Refresh requests keep nanoseconds, so a request renewed within the
/// same second is still told apart from the one a poller read.
fn nanos(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ports::contract;

    #[tokio::test]
    async fn the_in_memory_store_passes_the_store_contract() {
        contract::run_all(&FileStore::in_memory(), "mem").await;
    }

    #[tokio::test]
    async fn the_file_store_passes_the_store_contract_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        let store = FileStore::open(&path).await.unwrap();
        contract::run_all(&store, "file").await;
        let before = store.list_directories().await.unwrap();
        drop(store);
        let reopened = FileStore::open(&path).await.unwrap();
        assert_eq!(reopened.list_directories().await.unwrap(), before);
        let d = DirectoryId::parse("file-users").unwrap();
        assert_eq!(reopened.list_users(&d).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_store_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = FileStore::open(&path).await.err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }));
    }
}
