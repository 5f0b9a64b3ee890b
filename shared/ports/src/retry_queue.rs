//! The retry path of the dispatcher: a failed (object, target) delivery leaves the
//! ordered change queue and waits here for its next attempt, so it never holds up the
//! object's other targets or its later changes. On AWS this is an SQS standard queue
//! with per-message delays (at most 15 minutes each; a task that is not yet due is
//! simply sent again) and a dead-letter queue; locally it is an in-process list (kept
//! in a file by the `dev` stack).

use std::time::Duration;

use async_trait::async_trait;
use domain::{ChangeEvent, DirectoryId, TargetId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bus::BusError;

/// One pending retry of one (object, target) pair. The event names the object and the
/// version that failed; each attempt re-reads the object's current state, so the data
/// sent is never older than what the store holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryTask {
    /// The target to deliver to.
    pub target_id: TargetId,
    /// The change that failed (directory, object, version, type, stable id).
    pub event: ChangeEvent,
    /// Retries already made (0: the first retry is next). The first delivery attempt,
    /// from the change queue, is not counted.
    pub retries: u32,
    /// When the next attempt may run.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// When the first attempt failed, for the log and the dead-letter record.
    #[serde(with = "time::serde::rfc3339")]
    pub first_failed_at: OffsetDateTime,
    /// Why the last attempt failed.
    pub last_error: String,
    /// An operator's re-push queued for the retry consumer: delivered whatever the
    /// target's ledger says (a whole-directory re-push runs this way, outside the
    /// admin request).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The body of a retry-queue message: `{"retryTask": {...}}`, so the dispatcher tells
/// it apart from the EventBridge envelope of a change-queue message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryEnvelope {
    /// The task.
    pub retry_task: RetryTask,
}

/// A retry task as it sits in the dead-letter queue: the task and why it was given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The task, as last scheduled.
    pub task: RetryTask,
    /// Why it was given up, e.g. "11 attempts failed over 75 hours".
    pub reason: String,
}

/// A change-queue message the dispatcher can never handle (unreadable, its directory
/// gone, its secret missing or unparsable), set aside with why instead of retried in
/// place, so it holds up nothing behind it. On AWS it goes to the change queue's
/// dead-letter queue (alarmed, re-drivable to the change queue) in its own message group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeDeadLetter {
    /// The message's id on the change queue (the deduplication id of the set-aside copy).
    pub message_id: String,
    /// Its message group, when it had one.
    pub group: Option<String>,
    /// The body as received.
    pub body: String,
    /// Why it was set aside (ids and error kinds only, never HR data).
    pub reason: String,
}

/// A dead letter taken off the dead-letter queue, with what removes it for good.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedDeadLetter {
    /// The dead letter.
    pub letter: DeadLetter,
    /// Handle that acknowledges (removes) it once re-driven.
    pub receipt: String,
}

/// Where failed deliveries wait for their next attempt.
#[async_trait]
pub trait RetryQueue: Send + Sync {
    /// Makes `task` visible to the dispatcher after `delay` (an adapter may cap one
    /// wait, e.g. SQS at 15 minutes; the dispatcher re-schedules a task that arrives
    /// before its `due_at`).
    async fn schedule(&self, task: &RetryTask, delay: Duration) -> Result<(), BusError>;

    /// Parks a task whose attempts are exhausted in the dead-letter queue (which alarms).
    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), BusError>;

    /// Sets aside a change-queue message that can never be handled. It counts in
    /// [`RetryQueue::dead_letter_depth`] and is not among the delivery letters
    /// [`RetryQueue::receive_dead_letters`] returns.
    async fn dead_letter_change(&self, letter: &ChangeDeadLetter) -> Result<(), BusError>;

    /// Takes up to `max` dead letters, for re-driving. They stay in the queue (invisible
    /// for a while) until acknowledged.
    async fn receive_dead_letters(&self, max: usize) -> Result<Vec<ReceivedDeadLetter>, BusError>;

    /// Takes up to `max` dead letters of `directory` only, for a re-drive scoped to it;
    /// other directories' letters stay in the queue, visible. (SQS cannot filter: the
    /// adapter scans a bounded number of letters and releases the others at once.)
    async fn receive_dead_letters_of(
        &self,
        directory: &DirectoryId,
        max: usize,
    ) -> Result<Vec<ReceivedDeadLetter>, BusError>;

    /// Removes re-driven dead letters for good.
    async fn ack_dead_letters(&self, receipts: &[String]) -> Result<(), BusError>;

    /// How many dead letters wait, for the status: on SQS the approximate number of
    /// messages in the dead-letter queues the adapter knows (the delivery one and,
    /// where given, the change queue's, summed), so letters received for a re-drive and
    /// not yet acknowledged are left out while invisible; locally every letter kept.
    /// A queue that cannot be read is an error, never a made-up 0.
    async fn dead_letter_depth(&self) -> Result<u64, BusError>;
}

/// Why a re-publish to a customer's bus failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("customer event bus: {reason}")]
pub struct ForeignBusError {
    /// What failed (error code, never event content).
    pub reason: String,
    /// Whether a later attempt may succeed (throttling, service errors).
    pub retryable: bool,
}

/// Re-publishing change events to a customer's event bus (the EventBridge target kind).
#[async_trait]
pub trait ForeignBus: Send + Sync {
    /// Puts one event on the bus named by `bus_arn`.
    async fn put(&self, bus_arn: &str, event: &ChangeEvent) -> Result<(), ForeignBusError>;
}
