//! [`ports::AuditStore`] on the embedded store: the audit log and evidence rows kept in
//! the same state (and file) as everything else. Entries are only ever inserted.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::DirectoryId;
use ports::{AuditEntry, AuditStore, EvidenceRow, PurgeReport, StoreError};
use serde::{Deserialize, Serialize};

use crate::store::FileStore;
use crate::sync_store::count;

/// The audit items, per directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct AuditState {
    /// directory -> entry id (sorts by time) -> entry
    #[serde(default)]
    entries: BTreeMap<String, BTreeMap<String, AuditEntry>>,
    /// directory -> fingerprint -> evidence row
    #[serde(default)]
    evidence: BTreeMap<String, BTreeMap<String, EvidenceRow>>,
}

impl AuditState {
    /// Removes a directory's evidence rows, counting them. Audit entries are kept:
    /// they outlive a purge, as on DynamoDB, where no function may delete them.
    pub(crate) fn purge(&mut self, dir: &str, report: &mut PurgeReport) {
        report.evidence = count(self.evidence.remove(dir).map(|m| m.len()));
    }
}

#[async_trait]
impl AuditStore for FileStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let log = state
            .audit
            .entries
            .entry(entry.directory_id.to_string())
            .or_default();
        if log.contains_key(&entry.id) {
            return Err(StoreError::Conflict {
                what: format!("audit entry {}/{}", entry.directory_id, entry.id),
                expected: None,
            });
        }
        log.insert(entry.id.clone(), entry.clone());
        self.persist(&state).await
    }

    async fn list_audit(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .audit
            .entries
            .get(directory.as_str())
            .map(|log| log.values().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn put_evidence(&self, row: &EvidenceRow) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        let rows = state
            .audit
            .evidence
            .entry(row.directory_id.to_string())
            .or_default();
        if rows.contains_key(&row.fingerprint) {
            return Ok(false);
        }
        rows.insert(row.fingerprint.clone(), row.clone());
        self.persist(&state).await?;
        Ok(true)
    }

    async fn list_evidence(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let state = self.state.lock().await;
        let mut rows: Vec<EvidenceRow> = state
            .audit
            .evidence
            .get(directory.as_str())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        rows.sort_by_key(|r| std::cmp::Reverse(r.captured_at));
        rows.truncate(limit);
        Ok(rows)
    }
}
