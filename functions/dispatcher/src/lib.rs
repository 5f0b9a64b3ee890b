//! The dispatcher function: fed by the FIFO change queue, it fans each change out to
//! the directory's targets and reports failed messages individually
//! (`ReportBatchItemFailures`), so SQS retries only those and finally dead-letters them.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::ChangeEvent;
use lambda_runtime::{Error, LambdaEvent};
use sync_engine::dispatch::dispatch;
use sync_engine::Engine;
use tracing::{error, warn};

/// Why one message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The body is not an EventBridge envelope around a change event. It will reach the
    /// dead-letter queue (and its alarm) after the queue's receive limit.
    #[error("message is not a change event: {0}")]
    Unreadable(String),
    /// A target failed in a way a later attempt may fix, or the engine failed.
    #[error("delivery must be retried: {0}")]
    Retry(String),
}

/// Parses an SQS body: the EventBridge envelope the rule forwarded.
pub fn parse_message(message: &SqsMessage) -> Result<ChangeEvent, MessageError> {
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| MessageError::Unreadable("empty body".into()))?;
    let envelope: EventBridgeEvent<ChangeEvent> = serde_json::from_str(body).map_err(|e| {
        MessageError::Unreadable(format!("line {}, column {}", e.line(), e.column()))
    })?;
    Ok(envelope.detail)
}

async fn handle(engine: &Engine, message: &SqsMessage) -> Result<(), MessageError> {
    let event = parse_message(message)?;
    let report = dispatch(engine, &event)
        .await
        .map_err(|e| MessageError::Retry(e.to_string()))?;
    if report.needs_retry() {
        return Err(MessageError::Retry(format!(
            "event {} has targets to retry",
            event.id
        )));
    }
    Ok(())
}

/// Handles a batch. Messages of a FIFO queue must stay in order, so after the first
/// failure every later message of the batch is reported failed too, unprocessed.
pub async fn handler(
    engine: &Engine,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut failures = Vec::new();
    let mut failed = false;
    for message in &event.payload.records {
        let id = message.message_id.clone().unwrap_or_default();
        if !failed {
            if let Err(e) = handle(engine, message).await {
                match &e {
                    MessageError::Unreadable(_) => {
                        error!(message_id = %id, reason = %e, "unreadable message")
                    }
                    MessageError::Retry(_) => {
                        warn!(message_id = %id, reason = %e, "message will be retried")
                    }
                }
                failed = true;
            }
        }
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(response)
}
