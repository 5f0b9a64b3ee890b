//! `ports::DeliveryStore` on [`SqliteStore`]: the delivery log, target account ids and
//! circuit breakers, keyed as in the DynamoDB store (`DLOG#<target>#<object>`,
//! `ACCT#<target>#<object>`, `BREAKER#<target>`), so a target's records are one range.

use async_trait::async_trait;
use domain::{DirectoryId, TargetId};
use ports::{BreakerState, DeliveryQuery, DeliveryRecord, DeliveryStore, StoreError};
use rusqlite::{params, OptionalExtension};

use super::schema::{
    breaker_sk, data_with_prefix, decode, delete, dir_pk, encode, get_data, pair_sk, Row,
    ACCOUNT_PREFIX, DLOG_PREFIX,
};
use super::SqliteStore;

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn put_delivery(&self, record: &DeliveryRecord) -> Result<(), StoreError> {
        let what = format!(
            "delivery {}/{}/{}",
            record.directory_id, record.target_id, record.object_id
        );
        let mut row = Row::new(
            dir_pk(&record.directory_id),
            pair_sk(DLOG_PREFIX, &record.target_id, &record.object_id),
        );
        row.data = Some(encode(record, &what)?);
        row.status = Some(record.status.as_str());
        self.write(|tx| row.put(tx))
    }

    async fn get_delivery(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.read(|c| {
            get_data(
                c,
                &dir_pk(directory),
                &pair_sk(DLOG_PREFIX, target, object_id),
            )?
            .map(|d| decode(&d, &format!("delivery {directory}/{target}/{object_id}")))
            .transpose()
        })
    }

    async fn list_deliveries(
        &self,
        directory: &DirectoryId,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let prefix = query.key_prefix();
        let all: Vec<DeliveryRecord> = self.read(|c| {
            data_with_prefix(c, &dir_pk(directory), &prefix)?
                .iter()
                .map(|d| decode(d, &format!("delivery log of {directory}")))
                .collect()
        })?;
        Ok(all.into_iter().filter(|r| query.matches(r)).collect())
    }

    async fn get_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            let account: Option<Option<String>> = c
                .prepare_cached("SELECT account_id FROM items WHERE pk = ?1 AND sk = ?2")?
                .query_row(
                    params![
                        dir_pk(directory),
                        pair_sk(ACCOUNT_PREFIX, target, object_id)
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(account.flatten())
        })
    }

    async fn put_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        let mut row = Row::new(
            dir_pk(directory),
            pair_sk(ACCOUNT_PREFIX, target, object_id),
        );
        row.account_id = Some(account_id.to_string());
        self.write(|tx| row.put(tx))
    }

    async fn delete_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<(), StoreError> {
        let sk = pair_sk(ACCOUNT_PREFIX, target, object_id);
        self.write(|tx| delete(tx, &dir_pk(directory), &sk).map(drop))
    }

    async fn get_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
    ) -> Result<BreakerState, StoreError> {
        self.read(|c| {
            Ok(get_data(c, &dir_pk(directory), &breaker_sk(target))?
                .map(|d| decode(&d, &format!("breaker {directory}/{target}")))
                .transpose()?
                .unwrap_or_default())
        })
    }

    async fn put_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        state: &BreakerState,
    ) -> Result<(), StoreError> {
        let what = format!("breaker {directory}/{target}");
        let mut row = Row::new(dir_pk(directory), breaker_sk(target));
        row.data = Some(encode(state, &what)?);
        self.write(|tx| row.put(tx))
    }
}
