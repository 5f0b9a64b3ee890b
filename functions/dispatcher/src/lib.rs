//! The dispatcher function. It is fed by two queues:
//! - the FIFO change queue: each message is a change event (in its EventBridge
//!   envelope) fanned out to the directory's targets. A target that fails in a way a
//!   retry may fix is handed to the retry queue, so the message succeeds once every
//!   target is delivered, skipped or handed over; only an engine failure (store,
//!   secrets, retry queue unreachable) fails it, and then every later message of the
//!   batch too, unprocessed, so one object's changes stay in order;
//! - the retry queue (standard): each message is one (object, target) retry, run
//!   independently of the others.
//!
//! Failed messages are reported individually (`ReportBatchItemFailures`), so SQS
//! retries only those and finally dead-letters them. Each batch's deliveries are
//! counted per target ([`metrics`]) and, on Lambda, written as Embedded Metric Format
//! lines.

pub mod metrics;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::ChangeEvent;
use lambda_runtime::{Error, LambdaEvent};
use ports::{RetryEnvelope, RetryTask};
use sync_engine::deliver::dispatch::dispatch;
use sync_engine::deliver::replay::{run_retry, RetryOutcome};
use sync_engine::Engine;
use tracing::{error, warn};

/// The dispatcher function's configuration, read from its environment once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The stack's resources, audit table and metrics namespace.
    pub common: function_support::CommonSettings,
}

impl Settings {
    /// Reads every setting; a missing or invalid one names its variable.
    pub fn from_env() -> Result<Self, function_support::ConfigError> {
        Ok(Self {
            common: function_support::CommonSettings::from_env()?,
        })
    }
}

/// Why one message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The body is neither a change event nor a retry task. It will reach the
    /// dead-letter queue (and its alarm) after the queue's receive limit.
    #[error("message is not a change event or a retry task: {0}")]
    Unreadable(String),
    /// A target failed in a way a later attempt may fix and no retry queue took it,
    /// or the engine failed.
    #[error("delivery must be retried: {0}")]
    Retry(String),
}

impl MessageError {
    /// Whether SQS redelivering the message may help (an unreadable one never does,
    /// but it is still reported so the queue's redrive policy dead-letters it).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

/// What a queue message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A change from the FIFO change queue.
    Change(ChangeEvent),
    /// A retry of one (object, target) pair from the retry queue.
    Retry(Box<RetryTask>),
}

/// Parses an SQS body: a retry envelope, or the EventBridge envelope the shard rule
/// forwarded.
pub fn parse_message(message: &SqsMessage) -> Result<Message, MessageError> {
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| MessageError::Unreadable("empty body".into()))?;
    if let Ok(envelope) = serde_json::from_str::<RetryEnvelope>(body) {
        return Ok(Message::Retry(Box::new(envelope.retry_task)));
    }
    let envelope: EventBridgeEvent<ChangeEvent> = serde_json::from_str(body).map_err(|e| {
        MessageError::Unreadable(format!("line {}, column {}", e.line(), e.column()))
    })?;
    Ok(Message::Change(envelope.detail))
}

/// The change-queue message carrying `event`, as the shard rule forwards it and the
/// event source mapping hands it over on AWS: the EventBridge envelope (the shape
/// [`parse_message`] reads, with `envelope_id` as its id) in an SQS message whose id is
/// the event's. The local stack and the load bench feed the handler with these.
pub fn change_queue_message(event: &ChangeEvent, envelope_id: &str) -> SqsMessage {
    // Only `detail` is read; the rest is fixed so the body parses as EventBridge's does.
    // The source is the one the stack's bus puts events under (aws_adapters::EVENT_SOURCE).
    let envelope = serde_json::json!({
        "version": "0",
        "id": envelope_id,
        "detail-type": event.event_type.as_str(),
        "source": "bamboohr-sync",
        "account": "000000000000",
        "time": "1970-01-01T00:00:00Z",
        "region": "local",
        "resources": [],
        "detail": event,
    });
    let mut message = SqsMessage::default();
    message.message_id = Some(event.id.to_string());
    message.receipt_handle = Some(format!("handle-{envelope_id}"));
    message.body = Some(envelope.to_string());
    message.event_source = Some("aws:sqs".into());
    message
}

async fn handle(
    engine: &Engine,
    message: Message,
    metrics: &mut metrics::BatchMetrics,
) -> Result<(), MessageError> {
    match message {
        Message::Change(event) => {
            let report = dispatch(engine, &event)
                .await
                .map_err(|e| MessageError::Retry(e.to_string()))?;
            for (target, outcome) in &report.targets {
                metrics.record(&event.directory_id, target, outcome, false);
            }
            if report.needs_retry() {
                return Err(MessageError::Retry(format!(
                    "event {} has targets to retry",
                    event.id
                )));
            }
            Ok(())
        }
        Message::Retry(task) => {
            let outcome = run_retry(engine, &task)
                .await
                .map_err(|e| MessageError::Retry(e.to_string()))?;
            if let RetryOutcome::Attempted { outcome } = &outcome {
                metrics.record(&task.event.directory_id, &task.target_id, outcome, true);
            }
            Ok(())
        }
    }
}

/// Handles a batch (see [`handle_batch`]); what tests and the local stack call.
pub async fn handler(
    engine: &Engine,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(handle_batch(engine, event).await.0)
}

/// Handles a batch (see [`handle_batch`]) and prints its delivery metrics in
/// `namespace` as one EMF line per target it touched (on Lambda: METRICS_NAMESPACE).
pub async fn handler_with_metrics(
    engine: &Engine,
    namespace: &str,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let (response, metrics) = handle_batch(engine, event).await;
    for doc in metrics.emf(namespace, engine.clock.now()) {
        println!("{doc}");
    }
    Ok(response)
}

/// Time a message may still need when it is started: one change's deliveries run in
/// parallel, each within the 15 s request timeout, plus the ledger and log writes.
pub const MESSAGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Whether a message started now could finish before the invocation's `deadline`
/// (Lambda's, from the context; none when run without one, e.g. `dev`).
fn time_left(deadline: Option<std::time::SystemTime>) -> bool {
    deadline.is_none_or(|d| {
        d.duration_since(std::time::SystemTime::now())
            .is_ok_and(|left| left > MESSAGE_BUDGET)
    })
}

/// Handles a batch. Change messages of the FIFO queue must stay in order, so after
/// the first failed change message every later one of the batch is reported failed
/// too, unprocessed; retry messages fail only on their own. Near the invocation's
/// deadline no further message is started: the rest are reported as failures, so SQS
/// hands them out again at once instead of after the visibility timeout. Returns the
/// response and what the batch delivered, per target.
pub async fn handle_batch(
    engine: &Engine,
    event: LambdaEvent<SqsEvent>,
) -> (SqsBatchResponse, metrics::BatchMetrics) {
    let mut metrics = metrics::BatchMetrics::default();
    let mut failures = Vec::new();
    let mut fifo_stopped = false;
    // Lambda's deadline, in ms since the epoch; 0 when there is none.
    let deadline = (event.context.deadline > 0)
        .then(|| std::time::UNIX_EPOCH + std::time::Duration::from_millis(event.context.deadline));
    let mut out_of_time = false;
    for record in &event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        if out_of_time || !time_left(deadline) {
            if !out_of_time {
                warn!(message_id = %id, "the invocation's deadline is near: the rest of the batch is handed back");
            }
            out_of_time = true;
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
            continue;
        }
        let parsed = parse_message(record);
        let is_change = !matches!(parsed, Ok(Message::Retry(_)));
        let result = if is_change && fifo_stopped {
            Err(MessageError::Retry(
                "an earlier change of this batch failed".into(),
            ))
        } else {
            match parsed {
                Ok(m) => handle(engine, m, &mut metrics).await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = result {
            if !(is_change && fifo_stopped) {
                match &e {
                    MessageError::Unreadable(_) => {
                        error!(message_id = %id, reason = %e, "unreadable message")
                    }
                    MessageError::Retry(_) => {
                        warn!(message_id = %id, reason = %e, "message will be retried")
                    }
                }
            }
            if is_change {
                fifo_stopped = true;
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    (response, metrics)
}
