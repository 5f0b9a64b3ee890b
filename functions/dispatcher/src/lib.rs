//! The dispatcher function. It is fed by two queues:
//! - the FIFO change queue: each message is a change event the outbox sent (message
//!   group `<directory>.<lane>`, see `aws_adapters::SqsChangeNotices`), fanned out to
//!   the directory's targets. A target that fails in a way a retry may fix is handed to
//!   the retry queue, so the message succeeds once every target is delivered, skipped
//!   or handed over;
//! - the retry queue (standard): each message is one (object, target) retry, run
//!   independently of the others.
//!
//! A batch is split into lanes: the messages of one message group, in order (a retry
//! message is a lane of its own). Lanes run concurrently; within a lane, a message that
//! fails in a way a later attempt may fix (store, secrets or retry queue unreachable)
//! fails, and so does every later message of its lane, unprocessed, so an object's
//! changes stay in order, while other lanes go on. A message that can never be handled
//! (unreadable, its directory gone, its secret missing or unparsable) is set aside in
//! the change dead-letter queue with the reason and acknowledged, so it holds up
//! nothing behind it; a change of a revoked directory is acknowledged and dropped.
//!
//! Failed messages are reported individually (`ReportBatchItemFailures`), so SQS
//! retries only those. Each batch's deliveries are counted per target ([`metrics`])
//! and, on Lambda, written as Embedded Metric Format lines.

pub mod metrics;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::ChangeEvent;
use lambda_runtime::{Error, LambdaEvent};
use ports::{ChangeDeadLetter, RetryEnvelope, RetryTask};
use sync_engine::deliver::dispatch::dispatch;
use sync_engine::deliver::replay::{run_retry, RetryOutcome};
use sync_engine::{Engine, EngineError};
use tracing::{error, info, warn};

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
    /// The body is neither a change event nor a retry task: set aside, never retried.
    #[error("message is not a change event or a retry task: {0}")]
    Unreadable(String),
    /// The engine failed for good on it (directory gone, secret missing or
    /// unparsable): set aside, never retried.
    #[error("message can never be handled: {0}")]
    Permanent(String),
    /// Its directory was revoked: nothing to deliver any more; acknowledged.
    #[error("directory revoked: {0}")]
    Revoked(String),
    /// A target failed in a way a later attempt may fix and no retry queue took it,
    /// or the engine failed in a way a later attempt may fix.
    #[error("delivery must be retried: {0}")]
    Retry(String),
}

impl MessageError {
    /// Whether SQS redelivering the message may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }

    /// The message error for an engine failure: retryable ones are retried; a revoked
    /// directory drops the change; the rest can never succeed.
    fn from_engine(e: EngineError) -> Self {
        match &e {
            EngineError::DirectoryNotActive { state, .. } if *state == "revoked" => {
                Self::Revoked(e.to_string())
            }
            _ if e.is_retryable() => Self::Retry(e.to_string()),
            _ => Self::Permanent(e.to_string()),
        }
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

/// Parses an SQS body: a retry envelope, a change event as the outbox sends it, or a
/// change event in the EventBridge envelope that earlier releases routed through the
/// bus (still read, so messages queued before an upgrade are delivered).
pub fn parse_message(message: &SqsMessage) -> Result<Message, MessageError> {
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| MessageError::Unreadable("empty body".into()))?;
    if let Ok(envelope) = serde_json::from_str::<RetryEnvelope>(body) {
        return Ok(Message::Retry(Box::new(envelope.retry_task)));
    }
    if let Ok(event) = serde_json::from_str::<ChangeEvent>(body) {
        return Ok(Message::Change(event));
    }
    let envelope: EventBridgeEvent<ChangeEvent> = serde_json::from_str(body).map_err(|e| {
        MessageError::Unreadable(format!("line {}, column {}", e.line(), e.column()))
    })?;
    Ok(Message::Change(envelope.detail))
}

/// The system attribute naming a FIFO message's group.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// The change-queue message carrying `event`, as the event source mapping hands it
/// over on AWS: the event's JSON in an SQS message whose id is the event's, in the
/// object's own message group, with `receipt` as its receipt handle. The local stack
/// and the load bench feed the handler with these.
pub fn change_queue_message(event: &ChangeEvent, receipt: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(event.id.to_string());
    message.receipt_handle = Some(format!("handle-{receipt}"));
    message.body = Some(serde_json::to_string(event).expect("a change event serializes"));
    message.event_source = Some("aws:sqs".into());
    message
        .attributes
        .insert(MESSAGE_GROUP_ID.into(), event.ordering_key());
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
                .map_err(MessageError::from_engine)?;
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
                .map_err(MessageError::from_engine)?;
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

/// The lane of a message: its FIFO message group; a message without one (a retry
/// message, from the standard queue) is a lane of its own, unless it is a change,
/// which then shares its object's lane.
fn lane_of(index: usize, record: &SqsMessage, parsed: &Result<Message, MessageError>) -> String {
    match (record.attributes.get(MESSAGE_GROUP_ID), parsed) {
        (Some(group), _) => format!("g:{group}"),
        // Without a group (a hand-fed message), a change keeps its object's order.
        (None, Ok(Message::Change(event))) => format!("g:{}", event.ordering_key()),
        (None, _) => format!("m:{index}"),
    }
}

/// A message of a lane, parsed once.
type Parsed<'a> = (&'a SqsMessage, Result<Message, MessageError>);

/// Handles a batch: its lanes (see the module) run concurrently, each in order. Near
/// the invocation's deadline no further message is started: the rest are reported as
/// failures, so SQS hands them out again at once instead of after the visibility
/// timeout. Returns the response and what the batch delivered, per target.
pub async fn handle_batch(
    engine: &Engine,
    event: LambdaEvent<SqsEvent>,
) -> (SqsBatchResponse, metrics::BatchMetrics) {
    // Lambda's deadline, in ms since the epoch; 0 when there is none.
    let deadline = (event.context.deadline > 0)
        .then(|| std::time::UNIX_EPOCH + std::time::Duration::from_millis(event.context.deadline));
    let mut lanes: Vec<(String, Vec<Parsed<'_>>)> = Vec::new();
    for (i, record) in event.payload.records.iter().enumerate() {
        let parsed = parse_message(record);
        let lane = lane_of(i, record, &parsed);
        match lanes.iter_mut().find(|(l, _)| *l == lane) {
            Some((_, messages)) => messages.push((record, parsed)),
            None => lanes.push((lane, vec![(record, parsed)])),
        }
    }
    let results = futures::future::join_all(
        lanes
            .into_iter()
            .map(|(_, messages)| handle_lane(engine, messages, deadline)),
    )
    .await;
    let mut metrics = metrics::BatchMetrics::default();
    let mut failed = std::collections::HashSet::new();
    for (lane_failures, lane_metrics) in results {
        failed.extend(lane_failures);
        metrics.merge(lane_metrics);
    }
    // Reported in the batch's order.
    let failures = event
        .payload
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .filter(|id| failed.contains(id))
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    (response, metrics)
}

/// Handles one lane's messages in order; returns the ids of those that failed and what
/// the lane delivered. After a failure a later attempt may fix, the rest of the lane
/// fails unprocessed.
async fn handle_lane(
    engine: &Engine,
    messages: Vec<Parsed<'_>>,
    deadline: Option<std::time::SystemTime>,
) -> (Vec<String>, metrics::BatchMetrics) {
    let mut metrics = metrics::BatchMetrics::default();
    let mut failed = Vec::new();
    let mut stopped = false;
    for (record, parsed) in messages {
        let id = record.message_id.clone().unwrap_or_default();
        if stopped {
            failed.push(id);
            continue;
        }
        if !time_left(deadline) {
            warn!(message_id = %id, "the invocation's deadline is near: the rest of the lane is handed back");
            stopped = true;
            failed.push(id);
            continue;
        }
        let result = match parsed {
            Ok(m) => handle(engine, m, &mut metrics).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(e @ MessageError::Retry(_)) => {
                warn!(message_id = %id, reason = %e, "message will be retried");
                stopped = true;
                failed.push(id);
            }
            Err(e @ MessageError::Revoked(_)) => {
                info!(message_id = %id, reason = %e, "change of a revoked directory dropped");
            }
            Err(e @ (MessageError::Unreadable(_) | MessageError::Permanent(_))) => {
                error!(message_id = %id, reason = %e, "message can never be handled: set aside");
                if !set_aside(engine, record, &id, &e).await {
                    stopped = true;
                    failed.push(id);
                }
            }
        }
    }
    (failed, metrics)
}

/// Sets a message that can never be handled aside in the change dead-letter queue;
/// false when that failed (the message is then retried, as before there was one).
async fn set_aside(engine: &Engine, record: &SqsMessage, id: &str, reason: &MessageError) -> bool {
    let Ok(queue) = engine.retry_queue() else {
        warn!(message_id = %id, "no dead-letter queue to set the message aside in");
        return false;
    };
    let letter = ChangeDeadLetter {
        message_id: id.to_string(),
        group: record.attributes.get(MESSAGE_GROUP_ID).cloned(),
        body: record.body.clone().unwrap_or_default(),
        reason: reason.to_string(),
    };
    match queue.dead_letter_change(&letter).await {
        Ok(()) => true,
        Err(e) => {
            warn!(message_id = %id, reason = %e, "message not set aside; it will be retried");
            false
        }
    }
}
