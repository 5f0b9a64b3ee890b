//! SQS: helpers for the other side of the bus (pulling the messages EventBridge
//! routed into the FIFO change queue and deleting them once handled; on Lambda the
//! event source mapping does both, so these serve tests, the local tools and manual
//! drains), [`move_messages`] to re-drive a dead-letter queue to its source, and
//! [`SqsRetryQueue`], the dispatcher's retry path and delivery dead-letter queue.
//!
//! Failures are `BusError::Unavailable`: the queue is the bus's second half, and a
//! message that is not deleted simply becomes visible again.

use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use ports::BusError;

use crate::clients;

/// SQS caps one receive or delete batch at 10 messages.
const SQS_BATCH: usize = 10;

fn unavailable<E, R>(queue_url: &str, op: &str, err: &SdkError<E, R>) -> BusError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let reason = crate::clients::sdk_reason(op, err);
    tracing::warn!(queue = queue_url, op, %reason, "sqs call failed");
    BusError::Unavailable { reason }
}

/// How many batches of dead letters a re-drive scoped to one directory scans (10 a
/// batch): a bound on the work one admin request does.
pub const DEAD_LETTER_SCAN_BATCHES: usize = 20;

/// Receives up to `max` (1-10) messages, long-polling up to `wait_secs` (0-20) seconds,
/// with every system attribute (message group, sequence number, receive count).
/// The attempt timeout is stretched past the poll so a long poll is not cut short.
pub async fn receive_batch(
    client: &Client,
    queue_url: &str,
    max: i32,
    wait_secs: i32,
) -> Result<Vec<Message>, BusError> {
    let wait = wait_secs.clamp(0, 20);
    let poll = Duration::from_secs(u64::try_from(wait).unwrap_or(0));
    let timeouts = clients::timeout_config()
        .to_builder()
        .operation_attempt_timeout(clients::ATTEMPT_TIMEOUT + poll)
        .operation_timeout(clients::OPERATION_TIMEOUT + poll)
        .build();
    let out = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max.clamp(1, SQS_BATCH as i32))
        .wait_time_seconds(wait)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .customize()
        .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
        .send()
        .await
        .map_err(|e| unavailable(queue_url, "ReceiveMessage", &e))?;
    let messages = out.messages.unwrap_or_default();
    tracing::debug!(
        queue = queue_url,
        count = messages.len(),
        "messages received"
    );
    Ok(messages)
}

/// Deletes messages by receipt handle, 10 per call. Any entry SQS refuses makes the
/// whole call an error naming how many failed and why (the messages reappear after
/// their visibility timeout, so nothing is lost).
pub async fn delete_batch(
    client: &Client,
    queue_url: &str,
    receipt_handles: &[String],
) -> Result<(), BusError> {
    let mut failures = Vec::new();
    for chunk in receipt_handles.chunks(SQS_BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .map_err(|e| BusError::Unavailable {
                        reason: format!("building a DeleteMessageBatch entry: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| unavailable(queue_url, "DeleteMessageBatch", &e))?;
        failures.extend(
            out.failed()
                .iter()
                .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or(""))),
        );
    }
    if failures.is_empty() {
        tracing::debug!(
            queue = queue_url,
            count = receipt_handles.len(),
            "messages deleted"
        );
        Ok(())
    } else {
        tracing::warn!(
            queue = queue_url,
            failed = failures.len(),
            "some deletes failed"
        );
        Err(BusError::Unavailable {
            reason: format!(
                "DeleteMessageBatch: {} of {} messages not deleted ({})",
                failures.len(),
                receipt_handles.len(),
                failures.join("; ")
            ),
        })
    }
}

/// SQS limits one message's delay to 15 minutes; a longer wait is re-sent when due.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// Messages waiting in the queue at `queue_url` (SQS's `ApproximateNumberOfMessages`:
/// in-flight and delayed ones are not counted).
async fn queue_depth(client: &Client, queue_url: &str) -> Result<u64, BusError> {
    let out = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| unavailable(queue_url, "GetQueueAttributes", &e))?;
    Ok(out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0))
}

/// [`ports::RetryQueue`] on two SQS standard queues: the retry queue the dispatcher
/// consumes (each task a message, delayed with `DelaySeconds` up to [`MAX_DELAY`]) and
/// its dead-letter queue (which the stack alarms on). Standard queues because retries
/// are independent of each other: ordering per target comes from the ledger's
/// versions, not from the queue.
///
/// The dead-letter depth also counts the change queue's dead-letter queue when one is
/// given ([`SqsRetryQueue::with_change_dead_letter_queue`]): changes the dispatcher
/// gave up on are dead letters to the operator too, though they are re-driven by
/// moving them back to the change queue, not through this queue.
pub struct SqsRetryQueue {
    client: Client,
    retry_url: String,
    dead_letter_url: String,
    change_dead_letter_url: Option<String>,
}

impl SqsRetryQueue {
    /// A retry queue on the given queue URLs.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        retry_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self {
            client: clients::sqs(sdk),
            retry_url: retry_url.into(),
            dead_letter_url: dead_letter_url.into(),
            change_dead_letter_url: None,
        }
    }

    /// The same queue, counting the change queue's dead-letter queue at `url` in its
    /// dead-letter depth as well.
    pub fn with_change_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.change_dead_letter_url = Some(url.into());
        self
    }

    async fn send(&self, url: &str, body: String, delay: Duration) -> Result<(), BusError> {
        let secs = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(900);
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(secs)
            .send()
            .await
            .map_err(|e| unavailable(url, "SendMessage", &e))?;
        Ok(())
    }
}

/// A deduplication id SQS accepts (at most 128 of its allowed characters) for `id`.
fn dedup_id(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(128)
        .collect();
    if clean.is_empty() {
        "empty".into()
    } else {
        clean
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, BusError> {
    serde_json::to_string(value).map_err(|e| BusError::Unavailable {
        reason: format!("cannot serialize a retry task: {e}"),
    })
}

#[async_trait::async_trait]
impl ports::RetryQueue for SqsRetryQueue {
    async fn schedule(&self, task: &ports::RetryTask, delay: Duration) -> Result<(), BusError> {
        let body = encode(&ports::RetryEnvelope {
            retry_task: task.clone(),
        })?;
        self.send(&self.retry_url, body, delay).await?;
        tracing::debug!(
            target_id = %task.target_id, event_id = %task.event.id, retries = task.retries,
            delay_secs = delay.as_secs(), "retry scheduled"
        );
        Ok(())
    }

    async fn dead_letter(&self, letter: &ports::DeadLetter) -> Result<(), BusError> {
        self.send(&self.dead_letter_url, encode(letter)?, Duration::ZERO)
            .await?;
        tracing::warn!(
            target_id = %letter.task.target_id, event_id = %letter.task.event.id,
            "delivery dead-lettered"
        );
        Ok(())
    }

    async fn dead_letter_change(&self, letter: &ports::ChangeDeadLetter) -> Result<(), BusError> {
        let url = self
            .change_dead_letter_url
            .as_deref()
            .ok_or_else(|| BusError::Unavailable {
                reason: "no change dead-letter queue is configured (CHANGE_DLQ_URL)".into(),
            })?;
        let mut send = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(&letter.body)
            .message_attributes(
                "reason",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(&letter.reason)
                    .build()
                    .map_err(|e| BusError::Unavailable {
                        reason: format!("cannot build the reason attribute: {e}"),
                    })?,
            );
        if url.ends_with(".fifo") {
            // Its own group, so a re-drive keeps it in order with its object's other
            // messages; deduplicated on the original id, so setting it aside twice
            // (a retry after a lost answer) keeps one copy.
            send = send
                .message_group_id(letter.group.as_deref().unwrap_or("unreadable"))
                .message_deduplication_id(dedup_id(&letter.message_id));
        }
        send.send()
            .await
            .map_err(|e| unavailable(url, "SendMessage", &e))?;
        tracing::warn!(message_id = %letter.message_id, reason = %letter.reason, "change message set aside");
        Ok(())
    }

    async fn receive_dead_letters(
        &self,
        max: usize,
    ) -> Result<Vec<ports::ReceivedDeadLetter>, BusError> {
        let max = i32::try_from(max.clamp(1, SQS_BATCH)).unwrap_or(10);
        let messages = receive_batch(&self.client, &self.dead_letter_url, max, 1).await?;
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let (Some(body), Some(receipt)) = (m.body(), m.receipt_handle()) else {
                continue;
            };
            // The DLQ also receives, through its redrive policy, retry messages the
            // dispatcher could not handle at all; those carry the envelope.
            let letter = serde_json::from_str::<ports::DeadLetter>(body).or_else(|_| {
                serde_json::from_str::<ports::RetryEnvelope>(body).map(|e| ports::DeadLetter {
                    task: e.retry_task,
                    reason: "the dispatcher failed on this retry repeatedly".into(),
                })
            });
            match letter {
                Ok(letter) => out.push(ports::ReceivedDeadLetter {
                    letter,
                    receipt: receipt.to_string(),
                }),
                Err(e) => tracing::warn!(
                    queue = %self.dead_letter_url, line = e.line(), column = e.column(),
                    "unreadable dead letter left in place"
                ),
            }
        }
        Ok(out)
    }

    async fn receive_dead_letters_of(
        &self,
        directory: &domain::DirectoryId,
        max: usize,
    ) -> Result<Vec<ports::ReceivedDeadLetter>, BusError> {
        // SQS cannot filter: scan a bounded number of batches, keep the directory's
        // letters, and make the others visible again at once (they stay invisible
        // during the scan, so no batch repeats one).
        let mut mine = Vec::new();
        let mut others = Vec::new();
        for _ in 0..DEAD_LETTER_SCAN_BATCHES {
            let batch = self.receive_dead_letters(SQS_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                if &r.letter.task.event.directory_id == directory && mine.len() < max {
                    mine.push(r);
                } else {
                    others.push(r.receipt);
                }
            }
            if mine.len() >= max {
                break;
            }
        }
        for receipt in &others {
            self.client
                .change_message_visibility()
                .queue_url(&self.dead_letter_url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| unavailable(&self.dead_letter_url, "ChangeMessageVisibility", &e))?;
        }
        Ok(mine)
    }

    async fn ack_dead_letters(&self, receipts: &[String]) -> Result<(), BusError> {
        delete_batch(&self.client, &self.dead_letter_url, receipts).await
    }

    async fn dead_letter_depth(&self) -> Result<u64, BusError> {
        let mut total = queue_depth(&self.client, &self.dead_letter_url).await?;
        if let Some(url) = &self.change_dead_letter_url {
            total += queue_depth(&self.client, url).await?;
        }
        Ok(total)
    }
}

/// Moves up to `max` messages from `from_url` to `to_url` (re-driving a dead-letter
/// queue to its source), keeping each body and, between FIFO queues, its message
/// group; a FIFO destination deduplicates on the original message id, so a move
/// interrupted and run again does not enqueue a message twice within SQS's 5-minute
/// window. A message is deleted from `from_url` only once sent. Returns how many moved.
pub async fn move_messages(
    client: &Client,
    from_url: &str,
    to_url: &str,
    max: usize,
) -> Result<usize, BusError> {
    let fifo = to_url.ends_with(".fifo");
    let mut moved = 0;
    while moved < max {
        let want = i32::try_from((max - moved).min(SQS_BATCH)).unwrap_or(10);
        let messages = receive_batch(client, from_url, want, 1).await?;
        if messages.is_empty() {
            break;
        }
        let mut handles = Vec::with_capacity(messages.len());
        for m in &messages {
            let (Some(body), Some(handle)) = (m.body(), m.receipt_handle()) else {
                continue;
            };
            let mut send = client.send_message().queue_url(to_url).message_body(body);
            if fifo {
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .cloned()
                    .unwrap_or_else(|| "redriven".to_string());
                send = send
                    .message_group_id(group)
                    .message_deduplication_id(m.message_id().unwrap_or(handle));
            }
            send.send()
                .await
                .map_err(|e| unavailable(to_url, "SendMessage", &e))?;
            handles.push(handle.to_string());
        }
        delete_batch(client, from_url, &handles).await?;
        moved += handles.len();
    }
    tracing::info!(
        from = from_url,
        to = to_url,
        count = moved,
        "messages re-driven"
    );
    Ok(moved)
}
