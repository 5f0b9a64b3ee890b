//! [`ports::DeliveryStore`] on the DynamoDB table: the delivery log, target resource
//! ids and circuit breakers in the directory's partition (key design in
//! [`super`]).
//!
//! | item     | `sk`                            | attributes |
//! |----------|---------------------------------|------------|
//! | delivery | `DLOG#<target id>#<object id>`  | `data` (JSON of the `DeliveryRecord`), `status` (S) |
//! | account  | `ACCT#<target id>#<object id>`  | `accountId` (S) |
//! | breaker  | `BREAKER#<target id>`           | `data` (JSON of the `BreakerState`) |
//!
//! Target ids cannot contain `#`, so `DLOG#<target>#` is a prefix of exactly that
//! target's records: the log per target is one Query with `begins_with`, the log per
//! directory one Query on `DLOG#`. The log per user reads the directory's records and
//! keeps the user's (a directory has a handful of targets, and the query names no user
//! key so no second item per record has to be kept in step). Writes are plain PutItem:
//! a record is the latest attempt's, and attempts of one pair are serialised by the
//! queue that carries them.

use async_trait::async_trait;
use domain::{DirectoryId, TargetId};
use ports::{BreakerState, DeliveryQuery, DeliveryRecord, DeliveryStore, StoreError};

use super::codec::{decode, encode, get_s, s};
use super::keys::{dir_pk, key, DATA};
use super::DynamoStore;
use ports::keys::{breaker_sk, pair_sk, ACCOUNT_PREFIX, DLOG_PREFIX};

const STATUS: &str = "status";
const ACCOUNT_ID: &str = "accountId";

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn put_delivery(&self, record: &DeliveryRecord) -> Result<(), StoreError> {
        let what = format!(
            "delivery {}/{}/{}",
            record.directory_id, record.target_id, record.object_id
        );
        let mut item = key(
            dir_pk(&record.directory_id),
            pair_sk(DLOG_PREFIX, &record.target_id, &record.object_id),
        );
        item.insert(DATA.into(), s(encode(record, &what)?));
        item.insert(STATUS.into(), s(record.status.as_str()));
        self.put_plain(item).await
    }

    async fn get_delivery(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let item = self
            .get_item(
                key(dir_pk(directory), pair_sk(DLOG_PREFIX, target, object_id)),
                "#data",
            )
            .await?;
        item.map(|i| decode(&i, &format!("delivery {directory}/{target}/{object_id}")))
            .transpose()
    }

    async fn list_deliveries(
        &self,
        directory: &DirectoryId,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let items = self.query_prefix(directory, &query.key_prefix()).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let record: DeliveryRecord = decode(item, &format!("delivery log of {directory}"))?;
            if query.matches(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn get_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(
                key(
                    dir_pk(directory),
                    pair_sk(ACCOUNT_PREFIX, target, object_id),
                ),
                "#accountId",
            )
            .await?;
        Ok(item.and_then(|i| get_s(&i, ACCOUNT_ID).map(str::to_string)))
    }

    async fn put_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        let mut item = key(
            dir_pk(directory),
            pair_sk(ACCOUNT_PREFIX, target, object_id),
        );
        item.insert(ACCOUNT_ID.into(), s(account_id));
        self.put_plain(item).await
    }

    async fn delete_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<(), StoreError> {
        self.delete_key(key(
            dir_pk(directory),
            pair_sk(ACCOUNT_PREFIX, target, object_id),
        ))
        .await
    }

    async fn get_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
    ) -> Result<BreakerState, StoreError> {
        let item = self
            .get_item(key(dir_pk(directory), breaker_sk(target)), "#data")
            .await?;
        Ok(item
            .map(|i| decode(&i, &format!("breaker {directory}/{target}")))
            .transpose()?
            .unwrap_or_default())
    }

    async fn put_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        state: &BreakerState,
    ) -> Result<(), StoreError> {
        let what = format!("breaker {directory}/{target}");
        let mut item = key(dir_pk(directory), breaker_sk(target));
        item.insert(DATA.into(), s(encode(state, &what)?));
        self.put_plain(item).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_keys_put_the_target_first_so_a_target_prefix_lists_only_its_records() {
        let t = TargetId::parse("app").unwrap();
        assert_eq!(pair_sk(DLOG_PREFIX, &t, "usr_1"), "DLOG#app#usr_1");
        assert!(
            !pair_sk(DLOG_PREFIX, &TargetId::parse("app-2").unwrap(), "u").starts_with("DLOG#app#")
        );
        assert_eq!(pair_sk(ACCOUNT_PREFIX, &t, "usr_1"), "ACCT#app#usr_1");
        assert_eq!(breaker_sk(&t), "BREAKER#app");
    }
}
