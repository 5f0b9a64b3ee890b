//! SQS helpers for the other side of the bus: pulling the messages EventBridge routed
//! into the FIFO change queue, and deleting them once handled. (On Lambda the event
//! source mapping does both; these serve tests, the local tools and manual drains.)
//!
//! Failures are `BusError::Unavailable`: the queue is the bus's second half, and a
//! message that is not deleted simply becomes visible again.

use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
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
