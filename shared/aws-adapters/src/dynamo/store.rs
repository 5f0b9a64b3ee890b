//! [`DynamoStore`] itself (client, tables, counters, outbox sequence) and its
//! `ports::Store`: directories, users with their outbox events, the ledger, refresh
//! requests and receipts. The reads and writes behind it are in `ops`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventId, Fingerprint, TargetId,
};
use futures::TryFutureExt as _;
use ports::{
    LedgerAdvance, PurgeReport, RefreshRequest, Store, StoreError, UserFingerprint, UserWrite,
};
use time::OffsetDateTime;

use super::codec::{
    corrupt, decode, encode, get_n, get_s, n, names, nanos_attr, s, seconds_attr, user_item, Item,
};
use super::keys::{
    dir_pk, fp_pk, key, ledger_sk, outbox_sk, receipt_sk, refresh_sk, user_sk, DATA, DIRS,
    EXPIRES_AT, FINGERPRINT_INDEX, FP, GSI1PK, GSI1SK, LIFECYCLE, META, OUTBOX_PREFIX, PK,
    REFRESH_PREFIX, REQUESTED_AT, SEQ, SK, STATE, USER_PREFIX, VERSION,
};
use super::metering::Meter;
use super::ops::{unavailable, unless_condition_failed, QuerySpec, WRITE_CONCURRENCY};
use crate::clients;

/// A transaction holds at most 100 items: the user and up to 99 outbox events.
pub const MAX_EVENTS_PER_WRITE: usize = 99;

/// The DynamoDB store. Cheap to share behind an `Arc`; the SDK client pools connections.
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Where audit entries go: the stack's `AuditTable`, on which no role may update
    /// or delete. The main table until [`DynamoStore::with_audit_table`] says otherwise.
    pub(crate) audit_table: String,
    /// Where evidence rows go: the stack's `EvidenceTable`, put-only like the audit
    /// table. The audit table until [`DynamoStore::with_evidence_table`] says
    /// otherwise.
    pub(crate) evidence_table: Option<String>,
    /// Reported and metered capacity (see [`DynamoStore::metered`]).
    pub(crate) meter: Meter,
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
            evidence_table: None,
            table,
            meter: Meter::default(),
            last_seq: AtomicU64::new(0),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Keeps audit entries in `table` (keys `pk`, `sk`; see `create_audit_table`,
    /// feature `testing`) instead of the main table. The functions always pass the
    /// stack's `AuditTable`, whose IAM grants allow PutItem and Query only, so no
    /// function can overwrite or remove an entry; without it (tests, tools) entries
    /// share the main table.
    pub fn with_audit_table(mut self, table: impl Into<String>) -> Self {
        self.audit_table = table.into();
        self
    }

    /// The table audit entries are written to.
    pub fn audit_table(&self) -> &str {
        &self.audit_table
    }

    /// Keeps evidence rows in `table` (keys `pk`, `sk`; see `create_evidence_table`,
    /// feature `testing`). The functions always pass the stack's `EvidenceTable`,
    /// whose IAM grants allow PutItem and Query only, so no function can change or
    /// remove a compliance snapshot once written; without it evidence shares the
    /// audit table (itself put-only on a deployed stack).
    pub fn with_evidence_table(mut self, table: impl Into<String>) -> Self {
        self.evidence_table = Some(table.into());
        self
    }

    /// The table evidence rows are written to.
    pub fn evidence_table(&self) -> &str {
        self.evidence_table.as_deref().unwrap_or(&self.audit_table)
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Capacity units DynamoDB reported as consumed by this store so far:
    /// `(read units, write units)`, index reads included.
    pub fn consumed(&self) -> (f64, f64) {
        self.meter.consumed()
    }

    /// Sets the consumed-capacity counters (reported and metered) back to zero.
    pub fn reset_consumed(&self) {
        self.meter.reset();
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
        self.meter.metered()
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
}

/// The wall clock in unix nanoseconds, the floor of outbox sequence numbers.
pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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
                    .and_then(domain::UserState::from_name)
                    .ok_or_else(|| corrupt(&what, "no known `state`"))?;
                // Items written before `lc` existed count as "no dates": the next full
                // sync rewrites them only if their content changes, so read them as such.
                let lifecycle = get_s(i, LIFECYCLE)
                    .map(ports::Lifecycle::from_compact)
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
        self.write_each("DeleteItem", &unique, |id| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(dir_pk(directory), outbox_sk(id))))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .map_ok(|out| out.consumed_capacity)
        })
        .await?;
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
                self.meter.record_write(out.consumed_capacity());
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
        self.write_each("PutItem", &unique, |emp| {
            let mut item = key(dir_pk(directory), refresh_sk(emp));
            item.insert(REQUESTED_AT.into(), nanos_attr(at));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .map_ok(|out| out.consumed_capacity)
        })
        .await?;
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
        for chunk in requests.chunks(WRITE_CONCURRENCY) {
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
                // A failed condition: renewed since it was read (keep it), or already
                // gone (nothing to do).
                if let Some(out) = unless_condition_failed(&self.table, "DeleteItem", result)? {
                    self.meter.record_write(out.consumed_capacity());
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
