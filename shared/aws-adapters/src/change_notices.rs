//! [`SqsChangeNotices`]: `ports::EventBus` on the dispatcher's SQS FIFO change queue.
//!
//! The outbox sends each change event straight to the queue (the body is the
//! `ChangeEvent` JSON), in message group `<directory id>.<lane>`, where the lane is a
//! fixed hash of the object id modulo the stack's lanes per directory. So:
//! - every change of one object is in one group, and SQS hands a group out one batch at
//!   a time, in order: per-object order holds;
//! - a directory has at most `lanes` groups, so at most `lanes` of its batches are in
//!   flight at once, however large its backlog: with more consumers than lanes, another
//!   directory's change is taken by the next free consumer instead of waiting behind the
//!   backlog (SQS skips the groups that have messages in flight);
//! - the deduplication id is the event id, so a re-publish within SQS's five-minute
//!   window is dropped by SQS, and a later one by the dispatcher's version ledger.
//!
//! Entries go 10 to a SendMessageBatch call and at most [`MAX_NOTICE_BYTES`] a call. An
//! event whose body alone is larger, or that SQS refuses as the sender's fault, is
//! reported rejected (the outbox quarantines it); entries SQS refuses for its own reasons
//! are retried (only those, [`ENTRY_RETRIES`] times with jitter) and then reported
//! failed, so the outbox keeps them.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use domain::{ChangeEvent, EventId};
use ports::{BusError, EventBus, PublishOutcome};

use crate::batching::{send_all, EntryAnswer, Limits, Prepared};
use crate::clients;

/// SQS's limit on one message, and on the messages of one batch call together.
pub const MAX_NOTICE_BYTES: usize = 256 * 1024;

/// Lanes per directory when the stack does not say (`DELIVERY_LANES`).
pub const DEFAULT_LANES: u16 = 16;

/// The most lanes a directory may have: one group per lane, each a possible consumer.
pub const MAX_LANES: u16 = 1024;

/// Entries per SendMessageBatch call.
const MAX_ENTRIES_PER_CALL: usize = 10;

/// Extra attempts for entries SQS refused for its own reasons.
pub const ENTRY_RETRIES: u32 = 3;

/// 64-bit FNV-1a: fixed and trivial to reimplement, so an object's lane never changes
/// between builds or languages (Rust's `DefaultHasher` makes no such promise).
fn fnv1a(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The message group of an event: `<directory id>.<lane>`, the lane being the FNV-1a
/// hash of the object id modulo `lanes` (at least 1).
pub fn message_group(event: &ChangeEvent, lanes: u16) -> String {
    let lane = fnv1a(&event.object_id) % u64::from(lanes.max(1));
    format!("{}.{lane}", event.directory_id)
}

/// Publishes change notices to the FIFO change queue.
#[derive(Debug, Clone)]
pub struct SqsChangeNotices {
    client: Client,
    queue_url: String,
    lanes: u16,
}

impl SqsChangeNotices {
    /// A publisher to `queue_url` with `lanes` message groups per directory (clamped to
    /// 1..=[`MAX_LANES`]), with [`clients`]'s policy.
    pub fn new(sdk: &SdkConfig, queue_url: impl Into<String>, lanes: u16) -> Self {
        Self::from_client(clients::sqs(sdk), queue_url, lanes)
    }

    /// A publisher using an existing client.
    pub fn from_client(client: Client, queue_url: impl Into<String>, lanes: u16) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            lanes: lanes.clamp(1, MAX_LANES),
        }
    }

    /// Lanes per directory.
    pub fn lanes(&self) -> u16 {
        self.lanes
    }

    fn prepare<'a>(
        &self,
        index: usize,
        event: &'a ChangeEvent,
    ) -> Result<Prepared<'a, SendMessageBatchRequestEntry>, (EventId, String)> {
        let body = serde_json::to_string(event)
            .map_err(|e| (event.id.clone(), format!("cannot serialize: {e}")))?;
        if body.len() > MAX_NOTICE_BYTES {
            return Err((
                event.id.clone(),
                format!(
                    "MessageTooLong: the notice is {} bytes; SQS accepts at most {MAX_NOTICE_BYTES}",
                    body.len()
                ),
            ));
        }
        let size = body.len();
        let entry = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(body)
            .message_group_id(message_group(event, self.lanes))
            .message_deduplication_id(event.id.as_str())
            .build()
            .map_err(|e| (event.id.clone(), format!("cannot build the entry: {e}")))?;
        Ok(Prepared {
            id: &event.id,
            entry,
            size,
        })
    }
}

/// What SQS's answer to a batch says of the entry `id`: the sender's fault is the
/// event's (rejected for good); SQS's own refusals are retried.
fn answer(out: &SendMessageBatchOutput, id: &str) -> EntryAnswer {
    if out.successful().iter().any(|r| r.id() == id) {
        return EntryAnswer::Accepted;
    }
    match out.failed().iter().find(|f| f.id() == id) {
        Some(f) => {
            let reason = format!("{}: {}", f.code(), f.message().unwrap_or(""));
            if f.sender_fault() {
                EntryAnswer::Rejected(reason)
            } else {
                EntryAnswer::Retryable(reason)
            }
        }
        None => EntryAnswer::Failed("SQS returned no result for the entry".into()),
    }
}

#[async_trait]
impl EventBus for SqsChangeNotices {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
        let mut outcome = PublishOutcome::default();
        let mut prepared = Vec::with_capacity(events.len());
        for event in events {
            // Entry ids need only be unique within a call; the index in `events` is.
            match self.prepare(prepared.len() + outcome.rejected.len(), event) {
                Ok(p) => prepared.push(p),
                Err(rejected) => {
                    tracing::warn!(queue = %self.queue_url, event = %rejected.0, reason = %rejected.1, "change notice refused before sending");
                    outcome.rejected.push(rejected);
                }
            }
        }
        let limits = Limits {
            entries: MAX_ENTRIES_PER_CALL,
            bytes: MAX_NOTICE_BYTES,
            retries: ENTRY_RETRIES,
        };
        let sent = send_all(events, prepared, limits, &mut outcome, |entries| {
            let (client, url) = (self.client.clone(), self.queue_url.clone());
            async move {
                let ids: Vec<String> = entries.iter().map(|e| e.id().to_string()).collect();
                let out = client
                    .send_message_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| clients::sdk_reason("SendMessageBatch", &e))?;
                Ok(ids.iter().map(|id| answer(&out, id)).collect())
            }
        })
        .await;
        if let Err(e) = &sent {
            tracing::warn!(queue = %self.queue_url, reason = %e, "change notices not sent");
        }
        sent?;
        if !outcome.all_published() {
            tracing::warn!(
                queue = %self.queue_url,
                published = outcome.published.len(),
                failed = outcome.failed.len(),
                rejected = outcome.rejected.len(),
                "some change notices were not sent"
            );
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EventType};

    fn event(dir: &str, object: &str) -> ChangeEvent {
        ChangeEvent::new(
            EventType::UserUpdated,
            DirectoryId::parse(dir).unwrap(),
            object,
            1,
            time::OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({}),
        )
    }

    #[test]
    fn an_objects_group_is_fixed_and_names_its_directory() {
        // FNV-1a of "usr_1", fixed forever (a changed hash would reorder in-flight work).
        let lane = fnv1a("usr_1") % 16;
        assert_eq!(
            message_group(&event("acme", "usr_1"), 16),
            format!("acme.{lane}")
        );
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            message_group(&event("acme", "usr_1"), 16),
            message_group(&event("acme", "usr_1"), 16)
        );
    }

    #[test]
    fn a_directorys_objects_spread_over_exactly_its_lanes() {
        let groups: std::collections::BTreeSet<String> = (0..2_000)
            .map(|i| message_group(&event("acme", &format!("usr_{i}")), 16))
            .collect();
        assert_eq!(groups.len(), 16, "{groups:?}");
        assert!(groups.iter().all(|g| g.starts_with("acme.")));
        let one: std::collections::BTreeSet<String> = (0..100)
            .map(|i| message_group(&event("acme", &format!("usr_{i}")), 1))
            .collect();
        assert_eq!(one.len(), 1, "one lane is one group per directory");
        assert_eq!(message_group(&event("acme", "usr_1"), 0), "acme.0");
    }
}
