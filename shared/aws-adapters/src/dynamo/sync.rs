//! [`ports::SyncStore`] on the DynamoDB table: groups, runs, the lease and the
//! checkpoint in the directory's partition (key design in [`super`]).
//!
//! | item       | `sk`               | attributes |
//! |------------|--------------------|------------|
//! | group      | `GROUP#<group id>` | `data` (JSON of the `Group`), `version` (N) |
//! | run        | `RUN#<run id>`     | `data` (JSON of the `SyncRun`); run ids sort by start time |
//! | lease      | `LEASE`            | `holder` (S), `leaseUntil` (N, unix nanoseconds) |
//! | checkpoint | `CHECKPOINT`       | `data` (the engine's JSON) |
//! | quarantine | `QUAR#<event id>`  | `data` (JSON of the `QuarantinedEvent`) |
//!
//! The lease is one PutItem conditional on `attribute_not_exists(pk) OR holder = :h
//! OR leaseUntil <= :now`, released with a DeleteItem conditional on the holder, so a
//! run whose lease expired can never release its successor's.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use domain::{ChangeEvent, DirectoryId, Group, RunId, SyncRun};
use ports::{GroupWrite, QuarantinedEvent, StoreError, SyncStore};
use time::OffsetDateTime;

use super::codec::{decode, encode, get_s, n, names, nanos_attr, outbox_item, s};
use super::keys::{dir_pk, key, outbox_sk, DATA, PK, SK, VERSION};
use super::ops::{unavailable, unless_condition_failed};
use super::DynamoStore;
use ports::keys::{quarantine_sk, CHECKPOINT, GROUP_PREFIX, LEASE, QUARANTINE_PREFIX, RUN_PREFIX};

const HOLDER: &str = "holder";
const LEASE_UNTIL: &str = "leaseUntil";

#[async_trait]
impl SyncStore for DynamoStore {
    async fn list_groups(&self, directory: &DirectoryId) -> Result<Vec<Group>, StoreError> {
        let items = self.query_prefix(directory, GROUP_PREFIX).await?;
        items
            .iter()
            .map(|i| decode(i, &format!("group of {directory}")))
            .collect()
    }

    async fn write_group(&self, write: &GroupWrite) -> Result<(), StoreError> {
        let group = &write.group;
        let dir = &group.directory_id;
        let what = format!("group {dir}/{}", group.id);
        let mut item = key(dir_pk(dir), format!("{GROUP_PREFIX}{}", group.id));
        item.insert(DATA.into(), s(encode(group, &what)?));
        item.insert(VERSION.into(), n(group.version));
        let events: Vec<&ChangeEvent> = write.events.iter().collect();
        self.put_with_events(item, write.expected_version, &events, dir, &what)
            .await
    }

    async fn append_events(
        &self,
        directory: &DirectoryId,
        events: &[ChangeEvent],
    ) -> Result<(), StoreError> {
        let seq = self.reserve_seq(events.len() as u64);
        for (i, event) in events.iter().enumerate() {
            self.put_plain(outbox_item(directory, event, seq + i as u64)?)
                .await?;
        }
        Ok(())
    }

    async fn quarantine_events(
        &self,
        directory: &DirectoryId,
        events: &[QuarantinedEvent],
    ) -> Result<(), StoreError> {
        // Stored first, then released from the outbox: a crash between the two leaves
        // the event in both, and the next flush is refused again and stores it again.
        for q in events {
            let what = format!("quarantined event {directory}/{}", q.event.id);
            let mut item = key(dir_pk(directory), quarantine_sk(&q.event.id));
            item.insert(DATA.into(), s(encode(q, &what)?));
            self.put_plain(item).await?;
            self.delete_key(key(dir_pk(directory), outbox_sk(&q.event.id)))
                .await?;
        }
        Ok(())
    }

    async fn list_quarantined(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<QuarantinedEvent>, StoreError> {
        let items = self.query_prefix(directory, QUARANTINE_PREFIX).await?;
        items
            .iter()
            .take(limit)
            .map(|i| decode(i, &format!("quarantined event of {directory}")))
            .collect()
    }

    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let what = format!("run {}/{}", run.directory_id, run.id);
        let mut item = key(dir_pk(&run.directory_id), format!("{RUN_PREFIX}{}", run.id));
        item.insert(DATA.into(), s(encode(run, &what)?));
        self.put_plain(item).await
    }

    async fn get_run(
        &self,
        directory: &DirectoryId,
        id: &RunId,
    ) -> Result<Option<SyncRun>, StoreError> {
        let item = self
            .get_item(key(dir_pk(directory), format!("{RUN_PREFIX}{id}")), "#data")
            .await?;
        item.map(|i| decode(&i, &format!("run {directory}/{id}")))
            .transpose()
    }

    async fn list_runs(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<SyncRun>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Newest first: run ids sort by start time, so read the sort key backwards and
        // stop after `limit`, however many runs the directory has.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .set_expression_attribute_names(Some(names(&[
                ("#pk", PK),
                ("#sk", SK),
                ("#data", DATA),
            ])))
            .expression_attribute_values(":pk", s(dir_pk(directory)))
            .expression_attribute_values(":prefix", s(RUN_PREFIX))
            .projection_expression("#data")
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "Query", &e))?;
        self.meter.record_read(out.consumed_capacity());
        out.items()
            .iter()
            .map(|i| decode(i, &format!("run of {directory}")))
            .collect()
    }

    async fn acquire_lease(
        &self,
        directory: &DirectoryId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = key(dir_pk(directory), LEASE.to_string());
        item.insert(HOLDER.into(), s(holder));
        item.insert(LEASE_UNTIL.into(), nanos_attr(until));
        self.put_if(
            item,
            "attribute_not_exists(#pk) OR #holder = :holder OR #until <= :now",
            names(&[("#pk", PK), ("#holder", HOLDER), ("#until", LEASE_UNTIL)]),
            HashMap::from([
                (":holder".to_string(), s(holder)),
                (":now".to_string(), nanos_attr(now)),
            ]),
        )
        .await
    }

    async fn release_lease(&self, directory: &DirectoryId, holder: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(dir_pk(directory), LEASE.to_string())))
            .condition_expression("#holder = :holder")
            .set_expression_attribute_names(Some(names(&[("#holder", HOLDER)])))
            .expression_attribute_values(":holder", s(holder))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        // A failed condition: someone else's lease now (ours expired), theirs to release.
        if let Some(out) = unless_condition_failed(&self.table, "DeleteItem", out)? {
            self.meter.record_write(out.consumed_capacity());
        }
        Ok(())
    }

    async fn get_checkpoint(&self, directory: &DirectoryId) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(key(dir_pk(directory), CHECKPOINT.to_string()), "#data")
            .await?;
        Ok(item.and_then(|i| get_s(&i, DATA).map(str::to_string)))
    }

    async fn put_checkpoint(&self, directory: &DirectoryId, data: &str) -> Result<(), StoreError> {
        let mut item = key(dir_pk(directory), CHECKPOINT.to_string());
        item.insert(DATA.into(), s(data));
        self.put_plain(item).await
    }

    async fn clear_checkpoint(&self, directory: &DirectoryId) -> Result<(), StoreError> {
        self.delete_key(key(dir_pk(directory), CHECKPOINT.to_string()))
            .await
    }
}
