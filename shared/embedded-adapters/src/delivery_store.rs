//! [`ports::DeliveryStore`] on the embedded store: the delivery log, target resource
//! ids and circuit breakers kept in the same state (and file) as everything else.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::{DirectoryId, TargetId};
use ports::{BreakerState, DeliveryQuery, DeliveryRecord, DeliveryStore, PurgeReport, StoreError};
use serde::{Deserialize, Serialize};

use crate::store::FileStore;
use crate::sync_store::count;

/// The dispatcher's items. Keys inside a directory are `target/object`, so a
/// `BTreeMap` lists them by target then object, as the DynamoDB sort key does.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct DeliveryState {
    /// directory -> "target/object" -> latest record
    #[serde(default)]
    log: BTreeMap<String, BTreeMap<String, DeliveryRecord>>,
    /// directory -> "target/object" -> account id at the target
    #[serde(default)]
    accounts: BTreeMap<String, BTreeMap<String, String>>,
    /// directory -> target -> breaker
    #[serde(default)]
    breakers: BTreeMap<String, BTreeMap<String, BreakerState>>,
}

impl DeliveryState {
    /// Removes a directory's delivery log, target accounts and breakers, counting them.
    pub(crate) fn purge(&mut self, dir: &str, report: &mut PurgeReport) {
        report.deliveries = count(self.log.remove(dir).map(|m| m.len()));
        report.accounts = count(self.accounts.remove(dir).map(|m| m.len()));
        report.breakers = count(self.breakers.remove(dir).map(|m| m.len()));
    }
}

fn pair(target: &TargetId, object_id: &str) -> String {
    format!("{target}/{object_id}")
}

#[async_trait]
impl DeliveryStore for FileStore {
    async fn put_delivery(&self, record: &DeliveryRecord) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state
            .delivery
            .log
            .entry(record.directory_id.to_string())
            .or_default()
            .insert(pair(&record.target_id, &record.object_id), record.clone());
        self.persist(&state).await
    }

    async fn get_delivery(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .delivery
            .log
            .get(directory.as_str())
            .and_then(|m| m.get(&pair(target, object_id)))
            .cloned())
    }

    async fn list_deliveries(
        &self,
        directory: &DirectoryId,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let state = self.state.lock().await;
        let Some(log) = state.delivery.log.get(directory.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(log
            .values()
            .filter(|r| query.target.as_ref().is_none_or(|t| &r.target_id == t))
            .filter(|r| query.object_id.as_ref().is_none_or(|o| &r.object_id == o))
            .filter(|r| query.status.is_none_or(|s| r.status == s))
            .cloned()
            .collect())
    }

    async fn get_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .delivery
            .accounts
            .get(directory.as_str())
            .and_then(|m| m.get(&pair(target, object_id)))
            .cloned())
    }

    async fn put_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state
            .delivery
            .accounts
            .entry(directory.to_string())
            .or_default()
            .insert(pair(target, object_id), account_id.to_string());
        self.persist(&state).await
    }

    async fn delete_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if let Some(m) = state.delivery.accounts.get_mut(directory.as_str()) {
            m.remove(&pair(target, object_id));
        }
        self.persist(&state).await
    }

    async fn get_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
    ) -> Result<BreakerState, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .delivery
            .breakers
            .get(directory.as_str())
            .and_then(|m| m.get(target.as_str()))
            .copied()
            .unwrap_or_default())
    }

    async fn put_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        breaker: &BreakerState,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state
            .delivery
            .breakers
            .entry(directory.to_string())
            .or_default()
            .insert(target.to_string(), *breaker);
        self.persist(&state).await
    }
}
