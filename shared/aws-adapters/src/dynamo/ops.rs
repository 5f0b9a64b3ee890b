//! The metered DynamoDB operations every item kind is read and written with:
//! single-item puts and deletes (plain, conditional, version-checked), consistent gets,
//! paged queries, batched gets and writes that re-send what DynamoDB left unprocessed,
//! concurrent single-item writes, and the transaction of an item with its outbox
//! events. Their failures become `ports::StoreError` here and nowhere else: a failed
//! condition is either "not written" or the store's `Conflict`, anything else
//! `Unavailable`.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, Put, ReturnConsumedCapacity,
    TransactWriteItem, WriteRequest,
};
use domain::{ChangeEvent, DirectoryId};
use ports::StoreError;

use super::codec::{n, names, outbox_item, projection_names, s, Item};
use super::keys::{dir_pk, DATA, PK, SK, VERSION};
use super::metering::item_size;
use super::DynamoStore;

/// BatchGetItem reads at most 100 keys per call.
pub(crate) const BATCH_GET_MAX: usize = 100;
/// BatchWriteItem takes at most 25 requests per call.
pub(crate) const BATCH_WRITE_MAX: usize = 25;
/// Re-sends of what a batch call left unprocessed before giving up.
pub(crate) const UNPROCESSED_RETRIES: u32 = 5;
/// The ceiling of the wait before the first re-send of unprocessed work; it doubles
/// per re-send up to [`UNPROCESSED_MAX_WAIT`].
const UNPROCESSED_FIRST_WAIT: Duration = Duration::from_millis(100);
const UNPROCESSED_MAX_WAIT: Duration = Duration::from_secs(1);
/// Single-item writes in flight at once (outbox deletes, refresh requests): enough to
/// hide latency, few enough not to throttle a directory's partition.
pub(crate) const WRITE_CONCURRENCY: usize = 8;

/// A failed call as the ports see it: `Unavailable`, with the SDK's reason (never an
/// item's values) logged once here.
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

/// The errors of operations that take a condition expression: whether the call failed
/// only because its condition did not hold.
pub(crate) trait ConditionalError {
    /// True for `ConditionalCheckFailedException`.
    fn condition_failed(&self) -> bool;
}

impl ConditionalError for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// The result of a conditional call: its output when it succeeded, `None` when its
/// condition did not hold (nothing was written), `Unavailable` for any other failure.
pub(crate) fn unless_condition_failed<O, E, R>(
    table: &str,
    op: &str,
    result: Result<O, SdkError<E, R>>,
) -> Result<Option<O>, StoreError>
where
    E: ConditionalError + ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error()
                .is_some_and(ConditionalError::condition_failed) =>
        {
            Ok(None)
        }
        Err(e) => Err(unavailable(table, op, &e)),
    }
}

/// The store's answer to a write whose expected state did not hold: `Conflict`, so the
/// engine re-reads instead of retrying blindly.
pub(crate) fn conflict(table: &str, what: &str, expected: Option<u64>) -> StoreError {
    tracing::debug!(table, what, ?expected, "conditional write lost");
    StoreError::Conflict {
        what: what.to_string(),
        expected,
    }
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

/// The attribute names [`condition_on_version`]'s condition uses.
pub(crate) fn version_names(expected: Option<u64>) -> HashMap<String, String> {
    match expected {
        None => names(&[("#pk", PK)]),
        Some(_) => names(&[("#version", VERSION)]),
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

/// Paces the calls of a batch that DynamoDB may answer only in part (throttling): the
/// first call at once, each re-send of what was left after a jittered wait that grows,
/// and no more than [`UNPROCESSED_RETRIES`] re-sends, so a hot table cannot hold a
/// caller forever.
struct Rounds {
    op: &'static str,
    noun: &'static str,
    sent: u32,
}

impl Rounds {
    fn new(op: &'static str, noun: &'static str) -> Self {
        Self { op, noun, sent: 0 }
    }

    /// Waits before the next call, which carries `left` requests, or gives up.
    async fn before_call(&mut self, left: usize) -> Result<(), StoreError> {
        if self.sent > 0 {
            if self.sent > UNPROCESSED_RETRIES {
                return Err(StoreError::Unavailable {
                    reason: format!(
                        "{}: {left} {} still unprocessed after {UNPROCESSED_RETRIES} retries",
                        self.op, self.noun
                    ),
                });
            }
            let wait =
                retry_timing::jittered(self.sent, UNPROCESSED_FIRST_WAIT, UNPROCESSED_MAX_WAIT);
            tokio::time::sleep(wait).await;
        }
        self.sent += 1;
        Ok(())
    }
}

impl DynamoStore {
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
        self.meter.record_write_of(out.consumed_capacity(), size);
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
        let Some(out) = unless_condition_failed(&self.table, "PutItem", out)? else {
            return Ok(false);
        };
        self.meter.record_write_of(out.consumed_capacity(), size);
        Ok(true)
    }

    /// A PutItem conditional on the item's version being `expected` (`None`: no item);
    /// otherwise `Conflict`.
    pub(crate) async fn put_conditional(
        &self,
        item: Item,
        expected: Option<u64>,
        what: &str,
    ) -> Result<(), StoreError> {
        let (condition, values) = condition_on_version(expected);
        let written = self
            .put_if(
                item,
                condition,
                version_names(expected),
                values.unwrap_or_default(),
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(conflict(&self.table, what, expected))
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
        self.meter.record_write(out.consumed_capacity());
        Ok(())
    }

    /// One single-item write `op` per element of `items`, [`WRITE_CONCURRENCY`] at a
    /// time, each metered at the minimum. `send` starts the call and hands back what
    /// DynamoDB reported as consumed. The first failure is returned once the calls in
    /// flight with it have finished.
    pub(crate) async fn write_each<T, Fut, E, R>(
        &self,
        op: &str,
        items: &[T],
        send: impl Fn(&T) -> Fut,
    ) -> Result<(), StoreError>
    where
        Fut: Future<Output = Result<Option<ConsumedCapacity>, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        for chunk in items.chunks(WRITE_CONCURRENCY) {
            for result in futures::future::join_all(chunk.iter().map(&send)).await {
                let consumed = result.map_err(|e| unavailable(&self.table, op, &e))?;
                self.meter.record_write(consumed.as_ref());
            }
        }
        Ok(())
    }

    /// A strongly consistent GetItem of `projection` (`#placeholders`, see
    /// [`projection_names`]), metered by the item read.
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
        self.meter
            .record_read_items(out.consumed_capacity(), &found, true);
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
            self.meter
                .record_read_items(out.consumed_capacity(), &page, q.index.is_none());
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

    /// Strongly consistent reads of many keys, [`BATCH_GET_MAX`] per call, re-sending
    /// keys DynamoDB left unprocessed (see [`Rounds`]).
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = chunk.to_vec();
            let mut rounds = Rounds::new("BatchGetItem", "keys");
            while !pending.is_empty() {
                rounds.before_call(pending.len()).await?;
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
                let got = out
                    .responses
                    .map(|mut responses| responses.remove(&self.table).unwrap_or_default());
                self.meter.record_batch_get(
                    out.consumed_capacity.as_deref().unwrap_or_default(),
                    got.as_deref(),
                );
                found.extend(got.unwrap_or_default());
                if let Some(mut unprocessed) = out.unprocessed_keys {
                    if let Some(ka) = unprocessed.remove(&self.table) {
                        pending = ka.keys;
                    }
                }
            }
        }
        Ok(found)
    }

    /// Sends `requests` with BatchWriteItem, [`BATCH_WRITE_MAX`] per call, re-sending
    /// what DynamoDB left unprocessed (see [`Rounds`]). Each call is metered at the
    /// minimum, as requests whose items are not at hand are.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let mut pending: Vec<WriteRequest> = requests.by_ref().take(BATCH_WRITE_MAX).collect();
            let mut rounds = Rounds::new("BatchWriteItem", "writes");
            while !pending.is_empty() {
                rounds.before_call(pending.len()).await?;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| unavailable(&self.table, "BatchWriteItem", &e))?;
                self.meter.record_write(None);
                if let Some(mut left) = out.unprocessed_items {
                    pending = left.remove(&self.table).unwrap_or_default();
                }
            }
        }
        Ok(())
    }

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
                self.meter
                    .record_transaction(out.consumed_capacity(), &sizes);
                Ok(())
            }
            Err(e) => Err(self.transaction_error(e, what, expected)),
        }
    }

    /// Maps a failed transaction of [`DynamoStore::put_with_events`]: the item's
    /// condition failing is a `Conflict`; a concurrent transaction on the same item or
    /// throttling is retryable.
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
            // Reasons are in request order; the item's Put is first.
            if codes.first() == Some(&"ConditionalCheckFailed") {
                return conflict(&self.table, what, expected);
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_sent_at_once_then_re_sent_at_most_five_times_after_bounded_waits() {
        let mut rounds = Rounds::new("BatchWriteItem", "writes");
        let start = tokio::time::Instant::now();
        rounds.before_call(25).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..UNPROCESSED_RETRIES {
            rounds.before_call(3).await.unwrap();
        }
        // Ceilings 100, 200, 400, 800 ms, then the 1 s cap.
        assert!(start.elapsed() <= Duration::from_millis(2500));
        let err = rounds.before_call(3).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Unavailable { reason }
                if reason == "BatchWriteItem: 3 writes still unprocessed after 5 retries"),
            "{err:?}"
        );
    }

    #[test]
    fn a_failed_condition_is_not_written_and_any_other_failure_is_unavailable() {
        let written: Result<u8, SdkError<PutItemError, ()>> = Ok(7);
        assert!(matches!(
            unless_condition_failed("t", "PutItem", written),
            Ok(Some(7))
        ));
        let lost: Result<u8, _> = Err(SdkError::service_error(
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            ),
            (),
        ));
        assert!(matches!(
            unless_condition_failed("t", "PutItem", lost),
            Ok(None)
        ));
        let slow: Result<u8, SdkError<DeleteItemError, ()>> =
            Err(SdkError::timeout_error("no answer"));
        assert!(matches!(
            unless_condition_failed("t", "DeleteItem", slow),
            Err(StoreError::Unavailable { .. })
        ));
    }

    #[test]
    fn a_lost_condition_is_a_conflict_naming_the_item_and_the_expected_version() {
        assert!(matches!(
            conflict("t", "user acme/42", Some(3)),
            StoreError::Conflict { what, expected: Some(3) } if what == "user acme/42"
        ));
    }
}
