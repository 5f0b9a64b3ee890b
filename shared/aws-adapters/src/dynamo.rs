//! [`DynamoStore`]: `ports::Store` on one DynamoDB table.
//!
//! # Key design
//!
//! Every item of a directory lives in that directory's partition, so no key is shared
//! between tenants and one Query reads one directory's users, outbox or ledger.
//!
//! | item        | `pk`         | `sk`                                | other attributes |
//! |-------------|--------------|-------------------------------------|------------------|
//! | directory   | `DIR#<dir>`  | `META`                              | `data` (JSON of the `Directory`), `version` (N), `gsi1pk` = `DIRS`, `gsi1sk` = `<dir>` |
//! | user        | `DIR#<dir>`  | `USER#<employee id>`                | `data` (JSON of the `DirectoryUser`), `version` (N), `fp` (S), `state` (S), `lc` (S, `status|hire|termination`), `gsi1pk` = `FP#<dir>`, `gsi1sk` = `<employee id>` |
//! | outbox      | `DIR#<dir>`  | `OUTBOX#<event id>`                 | `data` (JSON of the `ChangeEvent`), `seq` (N) |
//! | ledger      | `DIR#<dir>`  | `LEDGER#<target id>#<object id>`    | `version` (N) |
//! | refresh     | `DIR#<dir>`  | `REFRESH#<employee id>`             | `requestedAt` (N, unix nanoseconds) |
//! | group, run, lease, checkpoint | `DIR#<dir>` | see [`crate::dynamo_sync`] | |
//! | receipt     | `DIR#<dir>`  | `RECEIPT#<key>`                     | `expiresAt` (N, unix seconds; the table's TTL) |
//! | delivery log, target account, breaker | `DIR#<dir>` | `DLOG#…`, `ACCT#…`, `BREAKER#…`: see [`crate::dynamo_delivery`] | |
//!
//! The sparse global secondary index [`FINGERPRINT_INDEX`] (`fingerprints`: hash
//! `gsi1pk`, range `gsi1sk`, projection INCLUDE `version`, `fp`, `state`, `lc`) serves two
//! listings without reading any `data`:
//! - `user_fingerprints`: Query `gsi1pk = FP#<dir>`. A full reconciliation of an
//!   unchanged directory reads these few attributes per user (a few dozen bytes)
//!   instead of each user item (DESIGN guarantee 3).
//! - `list_directories`: Query `gsi1pk = DIRS` for the ids, then BatchGetItem (strongly
//!   consistent) of the directory items. No Scan of the table.
//!
//! Index reads are eventually consistent: a user or directory written a moment ago may
//! show its previous projection. That is safe here: a stale fingerprint makes the
//! engine attempt a conditional write that loses with `Conflict` (it re-reads), and a
//! new directory shows up in the listing within a second.
//!
//! Ordering: `list_users` (table, `USER#<employee id>`) and `user_fingerprints` (index,
//! `<employee id>`) both sort by the employee id's bytes, the same order as
//! `EmployeeId`'s `Ord`, so the two listings line up entry by entry.
//!
//! # Writes
//!
//! - Directories and users are written with a condition: `attribute_not_exists(pk)`
//!   when the writer expects no item, else `version = :expected`. A failed condition is
//!   `StoreError::Conflict`.
//! - `write_user` is one TransactWriteItems: the conditional Put of the user and an
//!   unconditional Put of each outbox event, so the events exist exactly when the user
//!   change does. A transaction holds at most 100 items, hence at most
//!   [`MAX_EVENTS_PER_WRITE`] events per user write.
//! - Outbox `seq` is the wall clock in nanoseconds at write time, made strictly
//!   increasing within a process, plus the event's index in the write; pending events
//!   are returned in `seq` order (then by id). `pending_events` reads the directory's
//!   whole outbox (it is normally empty or tiny) and truncates.
//! - `mark_published` deletes outbox items one DeleteItem each (a few at a time),
//!   which needs only `dynamodb:DeleteItem` and makes unknown ids harmless.
//! - `ledger_advance` is one UpdateItem `SET version = :v` conditional on
//!   `attribute_not_exists(version) OR version < :v`; when the condition fails the old
//!   item comes back with the error (`ReturnValuesOnConditionCheckFailure`), so the
//!   current version is known without a second read.
//!
//! - Refresh requests are one PutItem per employee (the latest stamp wins), listed
//!   with a strongly consistent Query, and cleared with a DeleteItem conditional on
//!   `requestedAt` still being the value read, so a request renewed while the poller
//!   was fetching survives.
//! - `record_receipt` is one PutItem conditional on `attribute_not_exists(pk) OR
//!   expiresAt <= :now`: DynamoDB's TTL sweep may lag by a day or two, so an expired
//!   receipt must count as absent before it is swept. `has_receipt` reads the item
//!   strongly consistently and applies the same expiry rule.
//!
//! Every call asks for `ReturnConsumedCapacity = TOTAL`; [`DynamoStore::consumed`]
//! sums what DynamoDB reported, for benchmarks and cost estimates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, PutRequest,
    ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventId, Fingerprint, TargetId,
    UserState,
};
use ports::{
    LedgerAdvance, Lifecycle, PurgeReport, RefreshRequest, Store, StoreError, UserFingerprint,
    UserWrite,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{backoff, clients};

/// Name of the sparse index that serves fingerprints and the directory listing.
pub const FINGERPRINT_INDEX: &str = "fingerprints";

/// A transaction holds at most 100 items: the user and up to 99 outbox events.
pub const MAX_EVENTS_PER_WRITE: usize = 99;

/// BatchGetItem reads at most 100 keys per call.
pub(crate) const BATCH_GET_MAX: usize = 100;
/// Rounds of retrying unprocessed BatchGetItem keys before giving up.
pub(crate) const UNPROCESSED_RETRIES: u32 = 5;
/// Outbox deletes in flight at once.
pub(crate) const DELETE_CONCURRENCY: usize = 8;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const DATA: &str = "data";
pub(crate) const VERSION: &str = "version";
pub(crate) const FP: &str = "fp";
pub(crate) const STATE: &str = "state";
/// Compact lifecycle inputs on user items (`status|hire|termination`), projected into
/// the fingerprint index for the daily date sweep.
pub(crate) const LIFECYCLE: &str = "lc";
pub(crate) const SEQ: &str = "seq";
pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";
/// The TTL attribute the table is created with (idempotency keys, leases, old runs).
pub(crate) const EXPIRES_AT: &str = "expiresAt";

pub(crate) const META: &str = "META";
pub(crate) const USER_PREFIX: &str = "USER#";
pub(crate) const OUTBOX_PREFIX: &str = "OUTBOX#";
pub(crate) const LEDGER_PREFIX: &str = "LEDGER#";
pub(crate) const REFRESH_PREFIX: &str = "REFRESH#";
pub(crate) const RECEIPT_PREFIX: &str = "RECEIPT#";
pub(crate) const REQUESTED_AT: &str = "requestedAt";
/// Refresh-request writes and deletes in flight at once.
pub(crate) const REFRESH_CONCURRENCY: usize = 8;
pub(crate) const DIRS: &str = "DIRS";

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn dir_pk(dir: &DirectoryId) -> String {
    format!("DIR#{dir}")
}

pub(crate) fn user_sk(emp: &EmployeeId) -> String {
    format!("{USER_PREFIX}{emp}")
}

pub(crate) fn outbox_sk(id: &EventId) -> String {
    format!("{OUTBOX_PREFIX}{id}")
}

/// Target ids cannot contain `#`, so the first `#` after the prefix ends the target
/// and any object id is unambiguous.
pub(crate) fn ledger_sk(target: &TargetId, object_id: &str) -> String {
    format!("{LEDGER_PREFIX}{target}#{object_id}")
}

pub(crate) fn refresh_sk(emp: &EmployeeId) -> String {
    format!("{REFRESH_PREFIX}{emp}")
}

/// Receipt keys are hex digests chosen by the engine; any `#` in them would still be
/// unambiguous because nothing follows the key.
pub(crate) fn receipt_sk(key: &str) -> String {
    format!("{RECEIPT_PREFIX}{key}")
}

pub(crate) fn nanos_attr(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp_nanos().to_string())
}

pub(crate) fn seconds_attr(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp().to_string())
}

pub(crate) fn fp_pk(dir: &DirectoryId) -> String {
    format!("FP#{dir}")
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

pub(crate) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn unavailable<E, R>(table: &str, op: &str, err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let reason = crate::clients::sdk_reason(op, err);
    tracing::warn!(table, op, %reason, "dynamodb call failed");
    StoreError::Unavailable { reason }
}

/// Request builders fail only when a required field is missing, which the code here
/// always sets; the error is still reported rather than unwrapped.
pub(crate) fn built<T>(r: Result<T, BuildError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Unavailable {
        reason: format!("building a DynamoDB request: {e}"),
    })
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn corrupt(what: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn decode<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let json = get_s(item, DATA).ok_or_else(|| corrupt(what, "no `data` attribute"))?;
    serde_json::from_str(json).map_err(|e| {
        // serde's message can quote stored values; keep only the position.
        corrupt(
            what,
            format!(
                "`data` is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(what, format!("cannot serialize: {e}")))
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The DynamoDB store. Cheap to share behind an `Arc`; the SDK client pools connections.
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Where audit entries go: the stack's `AuditTable`, on which no role may update
    /// or delete. The main table until [`DynamoStore::with_audit_table`] says otherwise.
    pub(crate) audit_table: String,
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    /// Units computed from each request's item sizes by DynamoDB's rules (see
    /// [`DynamoStore::metered`]), in milli-units.
    metered_read_milli: AtomicU64,
    metered_write_milli: AtomicU64,
    requests: AtomicU64,
    last_seq: AtomicU64,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table`, with a client built from `sdk` and [`clients`]'s policy.
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(clients::dynamodb(sdk), table)
    }

    /// A store on `table` using an existing client (which should carry the timeouts
    /// and retries of [`clients::dynamodb`]).
    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            audit_table: table.clone(),
            table,
            read_milli: AtomicU64::new(0),
            write_milli: AtomicU64::new(0),
            metered_read_milli: AtomicU64::new(0),
            metered_write_milli: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Keeps audit entries in `table` (keys `pk`, `sk`; see [`create_audit_table`])
    /// instead of the main table. The functions always pass the stack's `AuditTable`,
    /// whose IAM grants allow PutItem and Query only, so no function can overwrite or
    /// remove an entry; without it (tests, tools) entries share the main table.
    pub fn with_audit_table(mut self, table: impl Into<String>) -> Self {
        self.audit_table = table.into();
        self
    }

    /// The table audit entries are written to.
    pub fn audit_table(&self) -> &str {
        &self.audit_table
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Capacity units DynamoDB reported as consumed by this store so far:
    /// `(read units, write units)`, index reads included.
    pub fn consumed(&self) -> (f64, f64) {
        (
            self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    /// Sets the consumed-capacity counters (reported and metered) back to zero.
    pub fn reset_consumed(&self) {
        for c in [
            &self.read_milli,
            &self.write_milli,
            &self.metered_read_milli,
            &self.metered_write_milli,
            &self.requests,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Capacity units counted from the requests themselves, by DynamoDB's on-demand
    /// rules, for benchmarks and cost figures where the server's own report cannot be
    /// trusted (moto reports fixed or no units): a strongly consistent read costs one
    /// unit per started 4 KB of the items read (Query: of all items of a page summed),
    /// an eventually consistent index read half that; a write one unit per started 1 KB
    /// of the item, twice that inside a transaction. Requests whose items are not at
    /// hand (deletes, small conditional puts of leases, receipts, run records) count
    /// the minimum, one unit. Returns `(read units, write units, requests)`.
    pub fn metered(&self) -> (f64, f64, u64) {
        (
            self.metered_read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.metered_write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.requests.load(Ordering::Relaxed),
        )
    }

    /// Meters a read of items totalling `bytes`.
    pub(crate) fn meter_read(&self, bytes: usize, consistent: bool) {
        let units = bytes.div_ceil(4096).max(1) as u64 * 1000;
        let milli = if consistent { units } else { units / 2 };
        self.metered_read_milli.fetch_add(milli, Ordering::Relaxed);
    }

    /// Meters the write of items of these sizes.
    pub(crate) fn meter_write(&self, sizes: &[usize], transactional: bool) {
        let units: u64 = sizes.iter().map(|b| b.div_ceil(1024).max(1) as u64).sum();
        let units = if transactional { units * 2 } else { units };
        self.metered_write_milli
            .fetch_add(units * 1000, Ordering::Relaxed);
    }

    fn add(counter: &AtomicU64, cc: Option<&ConsumedCapacity>) {
        if let Some(units) = cc.and_then(|c| c.capacity_units()) {
            // Units come in halves and small fractions; milli-units keep them exact
            // enough in an integer counter.
            let milli = (units * 1000.0).round();
            if milli.is_finite() && milli > 0.0 {
                counter.fetch_add(milli as u64, Ordering::Relaxed);
            }
        }
    }

    /// Records a read request: the units DynamoDB reported, and one metered unit (the
    /// minimum) unless the caller meters the items itself ([`DynamoStore::meter_read`]).
    pub(crate) fn record_read(&self, cc: Option<&ConsumedCapacity>) {
        Self::add(&self.read_milli, cc);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_read(0, true);
    }

    /// A read request whose items the caller has: metered by their sizes.
    pub(crate) fn record_read_items(
        &self,
        cc: Option<&ConsumedCapacity>,
        items: &[Item],
        consistent: bool,
    ) {
        Self::add(&self.read_milli, cc);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_read(items.iter().map(item_size).sum(), consistent);
    }

    /// Records a write request: reported units, and the metered minimum of one unit.
    pub(crate) fn record_write(&self, cc: Option<&ConsumedCapacity>) {
        self.record_write_of(cc, 0);
    }

    /// Records a single-item write request of an item of `size` bytes: reported units,
    /// and units metered by the size.
    pub(crate) fn record_write_of(&self, cc: Option<&ConsumedCapacity>, size: usize) {
        Self::add(&self.write_milli, cc);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_write(&[size], false);
    }

    /// Writes users as they are, unconditionally and without events, 25 per
    /// BatchWriteItem (unprocessed items retried with backoff, a bounded number of
    /// times). For loading a table in benchmarks and migrations, never for syncing:
    /// it bypasses the version check and the outbox.
    pub async fn import_users(&self, users: &[DirectoryUser]) -> Result<(), StoreError> {
        for chunk in users.chunks(25) {
            let mut pending = chunk
                .iter()
                .map(|u| {
                    Ok(WriteRequest::builder()
                        .put_request(built(
                            PutRequest::builder().set_item(Some(user_item(u)?)).build(),
                        )?)
                        .build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut round = 0;
            while !pending.is_empty() {
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable {
                        reason: format!(
                            "BatchWriteItem: {} items still unprocessed",
                            pending.len()
                        ),
                    });
                }
                if round > 0 {
                    backoff::sleep(round, Duration::from_millis(50), Duration::from_secs(1)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| unavailable(&self.table, "BatchWriteItem", &e))?;
                if let Some(mut left) = out.unprocessed_items {
                    pending = left.remove(&self.table).unwrap_or_default();
                }
                round += 1;
            }
        }
        Ok(())
    }

    /// An unconditional PutItem, metered by the item's size.
    pub(crate) async fn put_plain(&self, item: Item) -> Result<(), StoreError> {
        let size = item_size(&item);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "PutItem", &e))?;
        self.record_write_of(out.consumed_capacity(), size);
        Ok(())
    }

    /// A PutItem under `condition` (with its `#name` and `:value` placeholders): false
    /// when the condition does not hold, so nothing was written.
    pub(crate) async fn put_if(
        &self,
        item: Item,
        condition: &str,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    ) -> Result<bool, StoreError> {
        let size = item_size(&item);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.record_write_of(out.consumed_capacity(), size);
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(&self.table, "PutItem", &e)),
        }
    }

    /// A DeleteItem of one key; deleting an absent item succeeds.
    pub(crate) async fn delete_key(&self, key: Item) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "DeleteItem", &e))?;
        self.record_write(out.consumed_capacity());
        Ok(())
    }

    /// Reserves `count` consecutive outbox sequence numbers, never below the clock and
    /// always above any number this process handed out before.
    pub(crate) fn reserve_seq(&self, count: u64) -> u64 {
        let now = now_nanos();
        let mut base = now;
        let _ = self
            .last_seq
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                base = now.max(last.saturating_add(1));
                Some(base.saturating_add(count.max(1) - 1))
            });
        base
    }

    pub(crate) async fn get_item(
        &self,
        key: Item,
        projection: &str,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .projection_expression(projection)
            .set_expression_attribute_names(projection_names(projection))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", &e))?;
        let found: Vec<Item> = out.item.iter().cloned().collect();
        self.record_read_items(out.consumed_capacity(), &found, true);
        Ok(out.item)
    }

    /// Every item of one key condition, all pages, in sort-key order.
    pub(crate) async fn query_all(&self, q: QuerySpec<'_>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(q.index.map(str::to_string))
                .key_condition_expression(q.condition)
                .set_expression_attribute_names(Some(q.names.clone()))
                .set_expression_attribute_values(Some(q.values.clone()))
                .projection_expression(q.projection)
                // Index reads cannot be strongly consistent.
                .consistent_read(q.index.is_none())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(&self.table, "Query", &e))?;
            let page = out.items.take().unwrap_or_default();
            self.record_read_items(out.consumed_capacity(), &page, q.index.is_none());
            items.extend(page);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Every item of a directory's partition whose sort key starts with `prefix`, with
    /// its sort key and `data`, all pages, in sort-key order.
    pub(crate) async fn query_prefix(
        &self,
        directory: &DirectoryId,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_all(QuerySpec {
            index: None,
            condition: "#pk = :pk AND begins_with(#sk, :prefix)",
            names: names(&[("#pk", PK), ("#sk", SK), ("#data", DATA)]),
            values: HashMap::from([
                (":pk".to_string(), s(dir_pk(directory))),
                (":prefix".to_string(), s(prefix)),
            ]),
            projection: "#sk, #data",
        })
        .await
    }

    /// Strongly consistent reads of many keys, 100 per call, retrying keys DynamoDB
    /// left unprocessed (throttling) with jittered backoff, a bounded number of times.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                if round > 0 {
                    if round > UNPROCESSED_RETRIES {
                        return Err(StoreError::Unavailable {
                            reason: format!(
                                "BatchGetItem: {} keys still unprocessed after {UNPROCESSED_RETRIES} retries",
                                pending.len()
                            ),
                        });
                    }
                    backoff::sleep(round, Duration::from_millis(50), Duration::from_secs(1)).await;
                }
                let request = built(
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .consistent_read(true)
                        .projection_expression(projection)
                        .set_expression_attribute_names(projection_names(projection))
                        .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| unavailable(&self.table, "BatchGetItem", &e))?;
                for cc in out.consumed_capacity() {
                    Self::add(&self.read_milli, Some(cc));
                }
                if let Some(mut responses) = out.responses {
                    let got = responses.remove(&self.table).unwrap_or_default();
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    // BatchGetItem bills each item on its own.
                    for item in &got {
                        self.meter_read(item_size(item), true);
                    }
                    found.extend(got);
                }
                if let Some(mut unprocessed) = out.unprocessed_keys {
                    if let Some(ka) = unprocessed.remove(&self.table) {
                        pending = ka.keys;
                    }
                }
                round += 1;
            }
        }
        Ok(found)
    }

    pub(crate) async fn put_conditional(
        &self,
        item: Item,
        expected: Option<u64>,
        what: &str,
    ) -> Result<(), StoreError> {
        let size = item_size(&item);
        let (condition, values) = condition_on_version(expected);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(version_names(expected)))
            .set_expression_attribute_values(values)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.record_write_of(out.consumed_capacity(), size);
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!(table = %self.table, what, ?expected, "conditional put lost");
                Err(StoreError::Conflict {
                    what: what.to_string(),
                    expected,
                })
            }
            Err(e) => Err(unavailable(&self.table, "PutItem", &e)),
        }
    }
}

/// The item of a user: its JSON, and the attributes the fingerprint index projects.
pub(crate) fn user_item(user: &DirectoryUser) -> Result<Item, StoreError> {
    let dir = &user.directory_id;
    let emp = &user.employee_id;
    let mut item = key(dir_pk(dir), user_sk(emp));
    item.insert(DATA.into(), s(encode(user, &format!("user {dir}/{emp}"))?));
    item.insert(VERSION.into(), n(user.version));
    item.insert(FP.into(), s(user.fingerprint.as_str()));
    item.insert(STATE.into(), s(user.state.as_str()));
    item.insert(LIFECYCLE.into(), s(encode_lifecycle(&Lifecycle::of(user))));
    item.insert(GSI1PK.into(), s(fp_pk(dir)));
    item.insert(GSI1SK.into(), s(emp.as_str()));
    Ok(item)
}

/// An item's size as DynamoDB bills it: each attribute's name plus its value (strings
/// and binaries by length, numbers by about one byte per two digits plus one, maps and
/// lists by their members plus a few bytes).
pub(crate) fn item_size(item: &Item) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// The outbox item of an event at write sequence `seq`.
pub(crate) fn outbox_item(
    dir: &DirectoryId,
    event: &ChangeEvent,
    seq: u64,
) -> Result<Item, StoreError> {
    let mut item = key(dir_pk(dir), outbox_sk(&event.id));
    item.insert(
        DATA.into(),
        s(encode(event, &format!("event {}", event.id))?),
    );
    item.insert(SEQ.into(), n(seq));
    Ok(item)
}

/// `status|YYYY-MM-DD|YYYY-MM-DD`, empty parts for absent values. Status text never
/// contains `|` in BambooHR (it is `Active`/`Inactive`); one that does is dropped
/// rather than mis-split.
pub(crate) fn encode_lifecycle(l: &Lifecycle) -> String {
    let status = l
        .status
        .as_deref()
        .filter(|s| !s.contains('|'))
        .unwrap_or("");
    let date = |d: Option<time::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    format!(
        "{status}|{}|{}",
        date(l.hire_date),
        date(l.termination_date)
    )
}

/// The inverse of [`encode_lifecycle`]; unparsable parts read as absent.
pub(crate) fn decode_lifecycle(text: &str) -> Lifecycle {
    let mut parts = text.split('|');
    let status = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut date = || {
        parts
            .next()
            .and_then(|p| time::Date::parse(p, &format).ok())
    };
    let hire_date = date();
    let termination_date = date();
    Lifecycle {
        status,
        hire_date,
        termination_date,
    }
}

/// What one [`DynamoStore::query_all`] reads.
pub(crate) struct QuerySpec<'a> {
    pub(crate) index: Option<&'a str>,
    pub(crate) condition: &'a str,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: HashMap<String, AttributeValue>,
    pub(crate) projection: &'a str,
}

/// Every projection here names attributes through `#placeholders` equal to the
/// attribute name, so reserved words (`data`, `state`) never clash.
pub(crate) fn projection_names(projection: &str) -> Option<HashMap<String, String>> {
    let map: HashMap<String, String> = projection
        .split(',')
        .map(str::trim)
        .filter_map(|p| p.strip_prefix('#'))
        .map(|name| (format!("#{name}"), name.to_string()))
        .collect();
    (!map.is_empty()).then_some(map)
}

/// The write condition for an expected version: absent item, or that exact version.
pub(crate) fn condition_on_version(
    expected: Option<u64>,
) -> (&'static str, Option<HashMap<String, AttributeValue>>) {
    match expected {
        None => ("attribute_not_exists(#pk)", None),
        Some(v) => (
            "#version = :expected",
            Some(HashMap::from([(":expected".to_string(), n(v))])),
        ),
    }
}

pub(crate) fn version_names(expected: Option<u64>) -> HashMap<String, String> {
    match expected {
        None => names(&[("#pk", PK)]),
        Some(_) => names(&[("#version", VERSION)]),
    }
}

pub(crate) fn parse_state(s: &str) -> Option<UserState> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

#[async_trait]
impl Store for DynamoStore {
    async fn get_directory(&self, id: &DirectoryId) -> Result<Option<Directory>, StoreError> {
        let item = self.get_item(key(dir_pk(id), META.into()), "#data").await?;
        item.map(|i| decode(&i, &format!("directory {id}")))
            .transpose()
    }

    async fn put_directory(
        &self,
        directory: &Directory,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let what = format!("directory {}", directory.id);
        let mut item = key(dir_pk(&directory.id), META.into());
        item.insert(DATA.into(), s(encode(directory, &what)?));
        item.insert(VERSION.into(), n(directory.version));
        item.insert(GSI1PK.into(), s(DIRS));
        item.insert(GSI1SK.into(), s(directory.id.as_str()));
        self.put_conditional(item, expected_version, &what).await
    }

    async fn list_directories(&self) -> Result<Vec<Directory>, StoreError> {
        let entries = self
            .query_all(QuerySpec {
                index: Some(FINGERPRINT_INDEX),
                condition: "#gsi1pk = :p",
                names: names(&[("#gsi1pk", GSI1PK), ("#gsi1sk", GSI1SK)]),
                values: HashMap::from([(":p".to_string(), s(DIRS))]),
                projection: "#gsi1sk",
            })
            .await?;
        let keys: Vec<Item> = entries
            .iter()
            .filter_map(|e| get_s(e, GSI1SK))
            .map(|id| key(format!("DIR#{id}"), META.into()))
            .collect();
        let items = self.batch_get(keys, "#data").await?;
        let mut dirs = items
            .iter()
            .map(|i| {
                let what = format!("directory {}", get_s(i, PK).unwrap_or("?"));
                decode::<Directory>(i, &what)
            })
            .collect::<Result<Vec<_>, _>>()?;
        dirs.sort_by(|a, b| a.id.cmp(&b.id));
        tracing::debug!(table = %self.table, count = dirs.len(), "listed directories");
        Ok(dirs)
    }

    async fn get_user(
        &self,
        directory: &DirectoryId,
        employee: &EmployeeId,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        let item = self
            .get_item(key(dir_pk(directory), user_sk(employee)), "#data")
            .await?;
        item.map(|i| decode(&i, &format!("user {directory}/{employee}")))
            .transpose()
    }

    async fn list_users(&self, directory: &DirectoryId) -> Result<Vec<DirectoryUser>, StoreError> {
        let items = self.query_prefix(directory, USER_PREFIX).await?;
        items
            .iter()
            .map(|i| {
                let emp = get_s(i, SK)
                    .and_then(|sk| sk.strip_prefix(USER_PREFIX))
                    .unwrap_or("?");
                decode(i, &format!("user {directory}/{emp}"))
            })
            .collect()
    }

    async fn user_fingerprints(
        &self,
        directory: &DirectoryId,
    ) -> Result<Vec<UserFingerprint>, StoreError> {
        let items = self
            .query_all(QuerySpec {
                index: Some(FINGERPRINT_INDEX),
                condition: "#gsi1pk = :p",
                names: names(&[
                    ("#pk", PK),
                    ("#sk", SK),
                    ("#gsi1pk", GSI1PK),
                    ("#gsi1sk", GSI1SK),
                    ("#version", VERSION),
                    ("#fp", FP),
                    ("#state", STATE),
                    ("#lc", LIFECYCLE),
                ]),
                values: HashMap::from([(":p".to_string(), s(fp_pk(directory)))]),
                // DynamoDB bills an index read by the whole index entry, table keys
                // included, whatever the projection returns; asking for all of it
                // makes the metered units (`item_size` of what came back) exact.
                projection: "#pk, #sk, #gsi1pk, #gsi1sk, #version, #fp, #state, #lc",
            })
            .await?;
        items
            .iter()
            .map(|i| {
                let emp = get_s(i, GSI1SK).unwrap_or("?");
                let what = format!("fingerprint of user {directory}/{emp}");
                let employee_id =
                    EmployeeId::parse(emp).map_err(|e| corrupt(&what, e.to_string()))?;
                let version =
                    get_n(i, VERSION).ok_or_else(|| corrupt(&what, "no numeric `version`"))?;
                let fingerprint = Fingerprint::from_stored(
                    get_s(i, FP).ok_or_else(|| corrupt(&what, "no `fp`"))?,
                );
                let state = get_s(i, STATE)
                    .and_then(parse_state)
                    .ok_or_else(|| corrupt(&what, "no known `state`"))?;
                // Items written before `lc` existed count as "no dates": the next full
                // sync rewrites them only if their content changes, so read them as such.
                let lifecycle = get_s(i, LIFECYCLE)
                    .map(decode_lifecycle)
                    .unwrap_or_default();
                Ok(UserFingerprint {
                    employee_id,
                    version,
                    fingerprint,
                    state,
                    lifecycle,
                })
            })
            .collect()
    }

    async fn write_user(&self, write: &UserWrite) -> Result<(), StoreError> {
        let user = &write.user;
        let dir = &user.directory_id;
        let emp = &user.employee_id;
        let what = format!("user {dir}/{emp}");

        // The same event twice in one write would be two operations on one item, which
        // DynamoDB refuses; the later copy wins, as a second write would.
        let mut events: Vec<&ChangeEvent> = Vec::with_capacity(write.events.len());
        for e in &write.events {
            match events.iter().position(|x| x.id == e.id) {
                Some(i) => events[i] = e,
                None => events.push(e),
            }
        }
        if events.len() > MAX_EVENTS_PER_WRITE {
            // Not retryable in substance, but the ports have no "invalid request" error.
            return Err(StoreError::Unavailable {
                reason: format!(
                    "{what}: {} events exceed the {MAX_EVENTS_PER_WRITE} one transaction can hold",
                    events.len()
                ),
            });
        }

        let item = user_item(user)?;
        self.put_with_events(item, write.expected_version, &events, dir, &what)
            .await?;
        tracing::debug!(
            table = %self.table,
            directory = %dir,
            employee = %emp,
            version = user.version,
            events = events.len(),
            "user written"
        );
        Ok(())
    }

    async fn pending_events(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let items = self
            .query_all(QuerySpec {
                index: None,
                condition: "#pk = :pk AND begins_with(#sk, :prefix)",
                names: names(&[("#pk", PK), ("#sk", SK), ("#data", DATA), ("#seq", SEQ)]),
                values: HashMap::from([
                    (":pk".to_string(), s(dir_pk(directory))),
                    (":prefix".to_string(), s(OUTBOX_PREFIX)),
                ]),
                projection: "#sk, #data, #seq",
            })
            .await?;
        let mut events = items
            .iter()
            .map(|i| {
                let id = get_s(i, SK)
                    .and_then(|sk| sk.strip_prefix(OUTBOX_PREFIX))
                    .unwrap_or("?");
                let what = format!("outbox event {directory}/{id}");
                let seq = get_n(i, SEQ).ok_or_else(|| corrupt(&what, "no numeric `seq`"))?;
                Ok((seq, decode::<ChangeEvent>(i, &what)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.sort_by(|(sa, a), (sb, b)| sa.cmp(sb).then_with(|| a.id.cmp(&b.id)));
        events.truncate(limit);
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }

    async fn mark_published(
        &self,
        directory: &DirectoryId,
        ids: &[EventId],
    ) -> Result<(), StoreError> {
        let mut unique: Vec<&EventId> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(DELETE_CONCURRENCY) {
            let deletes = chunk.iter().map(|id| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(dir_pk(directory), outbox_sk(id))))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            });
            for result in futures::future::join_all(deletes).await {
                let out = result.map_err(|e| unavailable(&self.table, "DeleteItem", &e))?;
                self.record_write(out.consumed_capacity());
            }
        }
        tracing::debug!(table = %self.table, directory = %directory, count = unique.len(), "outbox events removed");
        Ok(())
    }

    async fn ledger_get(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        let item = self
            .get_item(
                key(dir_pk(directory), ledger_sk(target, object_id)),
                "#version",
            )
            .await?;
        item.map(|i| {
            get_n(&i, VERSION).ok_or_else(|| {
                corrupt(
                    &format!("ledger {directory}/{target}/{object_id}"),
                    "no numeric `version`",
                )
            })
        })
        .transpose()
    }

    async fn ledger_advance(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        version: u64,
    ) -> Result<LedgerAdvance, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(dir_pk(directory), ledger_sk(target, object_id))))
            .update_expression("SET #version = :v")
            .condition_expression("attribute_not_exists(#version) OR #version < :v")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":v", n(version))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.record_write(out.consumed_capacity());
                Ok(LedgerAdvance::Advanced)
            }
            Err(e) => {
                let Some(ccf) = e.as_service_error().and_then(|se| match se {
                    UpdateItemError::ConditionalCheckFailedException(c) => Some(c),
                    _ => None,
                }) else {
                    return Err(unavailable(&self.table, "UpdateItem", &e));
                };
                let returned = ccf.item().and_then(|i| get_n(i, VERSION));
                let current = match returned {
                    Some(v) => Some(v),
                    // Older endpoints do not return the item; read it instead.
                    None => self.ledger_get(directory, target, object_id).await?,
                };
                match current {
                    Some(current) => Ok(LedgerAdvance::AlreadyAt { current }),
                    None => Err(StoreError::Unavailable {
                        reason: format!(
                            "ledger {directory}/{target}/{object_id} changed while advancing; retry"
                        ),
                    }),
                }
            }
        }
    }

    async fn record_refresh_requests(
        &self,
        directory: &DirectoryId,
        employees: &[EmployeeId],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut unique: Vec<&EmployeeId> = employees.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(REFRESH_CONCURRENCY) {
            let puts = chunk.iter().map(|emp| {
                let mut item = key(dir_pk(directory), refresh_sk(emp));
                item.insert(REQUESTED_AT.into(), nanos_attr(at));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            });
            for result in futures::future::join_all(puts).await {
                let out = result.map_err(|e| unavailable(&self.table, "PutItem", &e))?;
                self.record_write(out.consumed_capacity());
            }
        }
        tracing::debug!(table = %self.table, directory = %directory, count = unique.len(), "refresh requests recorded");
        Ok(())
    }

    async fn pending_refresh_requests(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<RefreshRequest>, StoreError> {
        let items = self
            .query_all(QuerySpec {
                index: None,
                condition: "#pk = :pk AND begins_with(#sk, :prefix)",
                names: names(&[("#pk", PK), ("#sk", SK), ("#requestedAt", REQUESTED_AT)]),
                values: HashMap::from([
                    (":pk".to_string(), s(dir_pk(directory))),
                    (":prefix".to_string(), s(REFRESH_PREFIX)),
                ]),
                projection: "#sk, #requestedAt",
            })
            .await?;
        items
            .iter()
            .take(limit)
            .map(|i| {
                let emp = get_s(i, SK)
                    .and_then(|sk| sk.strip_prefix(REFRESH_PREFIX))
                    .unwrap_or("?");
                let what = format!("refresh request {directory}/{emp}");
                let employee_id =
                    EmployeeId::parse(emp).map_err(|e| corrupt(&what, e.to_string()))?;
                let requested_at = i
                    .get(REQUESTED_AT)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i128>().ok())
                    .and_then(|v| OffsetDateTime::from_unix_timestamp_nanos(v).ok())
                    .ok_or_else(|| corrupt(&what, "no numeric `requestedAt`"))?;
                Ok(RefreshRequest {
                    employee_id,
                    requested_at,
                })
            })
            .collect()
    }

    async fn clear_refresh_requests(
        &self,
        directory: &DirectoryId,
        requests: &[RefreshRequest],
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(REFRESH_CONCURRENCY) {
            let deletes = chunk.iter().map(|r| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(dir_pk(directory), refresh_sk(&r.employee_id))))
                    .condition_expression("#requestedAt = :at")
                    .expression_attribute_names("#requestedAt", REQUESTED_AT)
                    .expression_attribute_values(":at", nanos_attr(r.requested_at))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            });
            for result in futures::future::join_all(deletes).await {
                match result {
                    Ok(out) => self.record_write(out.consumed_capacity()),
                    // Renewed since it was read, or already gone: keep it / nothing to do.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(unavailable(&self.table, "DeleteItem", &e)),
                }
            }
        }
        Ok(())
    }

    async fn has_receipt(
        &self,
        directory: &DirectoryId,
        key_text: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let item = self
            .get_item(key(dir_pk(directory), receipt_sk(key_text)), "#expiresAt")
            .await?;
        Ok(item
            .and_then(|i| get_n(&i, EXPIRES_AT))
            .is_some_and(|expires| i128::from(expires) > i128::from(now.unix_timestamp())))
    }

    async fn record_receipt(
        &self,
        directory: &DirectoryId,
        key_text: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = key(dir_pk(directory), receipt_sk(key_text));
        item.insert(EXPIRES_AT.into(), seconds_attr(expires_at));
        self.put_if(
            item,
            "attribute_not_exists(#pk) OR #expiresAt <= :now",
            names(&[("#pk", PK), ("#expiresAt", EXPIRES_AT)]),
            HashMap::from([(":now".to_string(), seconds_attr(now))]),
        )
        .await
    }

    async fn purge_directory(&self, directory: &DirectoryId) -> Result<PurgeReport, StoreError> {
        self.purge(directory).await
    }
}

impl DynamoStore {
    /// One TransactWriteItems: the Put of `item` conditional on `expected` (see
    /// [`condition_on_version`]) and an unconditional Put of each outbox event, so the
    /// events exist exactly when the item's change does.
    pub(crate) async fn put_with_events(
        &self,
        item: Item,
        expected: Option<u64>,
        events: &[&ChangeEvent],
        dir: &DirectoryId,
        what: &str,
    ) -> Result<(), StoreError> {
        let mut sizes = vec![item_size(&item)];
        let (condition, values) = condition_on_version(expected);
        let mut items = Vec::with_capacity(events.len() + 1);
        items.push(
            TransactWriteItem::builder()
                .put(built(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(version_names(expected)))
                        .set_expression_attribute_values(values)
                        .build(),
                )?)
                .build(),
        );
        let seq = self.reserve_seq(events.len() as u64);
        for (i, event) in events.iter().enumerate() {
            items.push(
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some({
                                let outbox = outbox_item(dir, event, seq + i as u64)?;
                                sizes.push(item_size(&outbox));
                                outbox
                            }))
                            .build(),
                    )?)
                    .build(),
            );
        }
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                for cc in out.consumed_capacity() {
                    Self::add(&self.write_milli, Some(cc));
                }
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.meter_write(&sizes, true);
                Ok(())
            }
            Err(e) => Err(self.transaction_error(e, what, expected)),
        }
    }

    /// Maps a failed user transaction: the user's condition failing is a `Conflict`;
    /// a concurrent transaction on the same item or throttling is retryable.
    fn transaction_error<R: std::fmt::Debug>(
        &self,
        err: SdkError<TransactWriteItemsError, R>,
        what: &str,
        expected: Option<u64>,
    ) -> StoreError {
        if let Some(TransactWriteItemsError::TransactionCanceledException(tc)) =
            err.as_service_error()
        {
            let codes: Vec<&str> = tc
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            // Reasons are in request order; the user's Put is first.
            if codes.first() == Some(&"ConditionalCheckFailed") {
                tracing::debug!(table = %self.table, what, ?expected, "conditional user write lost");
                return StoreError::Conflict {
                    what: what.to_string(),
                    expected,
                };
            }
            let reason = format!(
                "TransactWriteItems for {what} cancelled: [{}]",
                codes.join(", ")
            );
            tracing::warn!(table = %self.table, %reason, "dynamodb transaction cancelled");
            return StoreError::Unavailable { reason };
        }
        unavailable(&self.table, "TransactWriteItems", &err)
    }
}

/// A string key attribute's definition.
fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

/// One element of a key schema.
fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build(),
    )
}

/// Sends a CreateTable (an existing table counts as done) and waits until the table
/// is active; true when this call created it.
async fn create_and_wait(
    client: &Client,
    name: &str,
    request: aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
) -> Result<bool, StoreError> {
    let fresh = match request.send().await {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            false
        }
        Err(e) => return Err(unavailable(name, "CreateTable", &e)),
    };
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(120))
        .await
        .map_err(|e| StoreError::Unavailable {
            reason: format!("waiting for table {name}: {}", DisplayErrorContext(&e)),
        })?;
    Ok(fresh)
}

/// Creates the audit table as infra/template.yaml declares it (keys `pk`, `sk`, on
/// demand, no TTL) and waits until it is active; an existing table is left as it is.
pub async fn create_audit_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let request = client
        .create_table()
        .table_name(name)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest);
    create_and_wait(client, name, request).await?;
    Ok(())
}

/// Creates the store's table as the SAM template defines it (pk/sk strings, the sparse
/// [`FINGERPRINT_INDEX`] projecting `version`, `fp`, `state`, `lc`, on-demand billing,
/// TTL on `expiresAt`) and waits until it is ACTIVE. An existing table is left as it
/// is. For tests and the local dev CLI; deployed stacks get the table from the template.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let index = built(
        GlobalSecondaryIndex::builder()
            .index_name(FINGERPRINT_INDEX)
            .key_schema(key_element(GSI1PK, KeyType::Hash)?)
            .key_schema(key_element(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes(VERSION)
                    .non_key_attributes(FP)
                    .non_key_attributes(STATE)
                    .non_key_attributes(LIFECYCLE)
                    .build(),
            )
            .build(),
    )?;
    let request = client
        .create_table()
        .table_name(name)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .attribute_definitions(string_attribute(GSI1PK)?)
        .attribute_definitions(string_attribute(GSI1SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest);
    let fresh = create_and_wait(client, name, request).await?;
    if fresh {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(built(
                TimeToLiveSpecification::builder()
                    .attribute_name(EXPIRES_AT)
                    .enabled(true)
                    .build(),
            )?)
            .send()
            .await
            .map_err(|e| unavailable(name, "UpdateTimeToLive", &e))?;
    }
    tracing::info!(table = name, created = fresh, "table ready");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_directory_scoped_and_unambiguous() {
        let d = DirectoryId::parse("acme").unwrap();
        assert_eq!(dir_pk(&d), "DIR#acme");
        assert_eq!(user_sk(&EmployeeId::parse("42").unwrap()), "USER#42");
        assert_eq!(fp_pk(&d), "FP#acme");
        let t = TargetId::parse("scim-okta").unwrap();
        assert_eq!(ledger_sk(&t, "usr_1#x"), "LEDGER#scim-okta#usr_1#x");
        assert_eq!(refresh_sk(&EmployeeId::parse("42").unwrap()), "REFRESH#42");
        assert_eq!(receipt_sk("ab12"), "RECEIPT#ab12");
    }

    #[test]
    fn projection_placeholders_name_their_attributes() {
        let m = projection_names("#gsi1sk, #version, #fp").unwrap();
        assert_eq!(m["#version"], "version");
        assert_eq!(m.len(), 3);
        assert!(projection_names("plain").is_none());
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for st in [
            UserState::Pending,
            UserState::Active,
            UserState::Inactive,
            UserState::Deleted,
        ] {
            assert_eq!(parse_state(st.as_str()), Some(st));
        }
        assert_eq!(parse_state("gone"), None);
    }
}
