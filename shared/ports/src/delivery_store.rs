//! The dispatcher's part of the store: the delivery log ("import results"), the
//! target-side resource id of each user, and per-target circuit breakers.

use async_trait::async_trait;
use domain::{DirectoryId, EventId, TargetId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store_error::StoreError;

/// Where a delivery of one object to one target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The target accepted the object's state at `version`.
    Delivered,
    /// Nothing was sent, on purpose (filter, gate, missing required field, ledger).
    Skipped,
    /// The last attempt failed and a later one is scheduled.
    Retrying,
    /// The last attempt failed in a way that retrying cannot fix.
    Failed,
    /// Every scheduled attempt failed; the delivery is in the dead-letter queue.
    DeadLettered,
}

impl DeliveryStatus {
    /// The snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Skipped => "skipped",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// The latest delivery of one object to one target: one record per (target, object),
/// rewritten at every attempt, so the log answers "what does this target have of this
/// user, and why" without growing with every retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// The directory.
    pub directory_id: DirectoryId,
    /// The target.
    pub target_id: TargetId,
    /// The user or group id.
    pub object_id: String,
    /// The event (and so the `webhook-id`) of the last attempt.
    pub event_id: EventId,
    /// The object version of the last attempt.
    pub version: u64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made for this version (1 for a first-time success).
    pub attempts: u32,
    /// HTTP status of each attempt that got one, oldest first (at most
    /// [`DeliveryRecord::MAX_STATUS_CODES`], the latest kept).
    #[serde(default)]
    pub status_codes: Vec<u16>,
    /// Why the last attempt failed (status and operation, never a body or HR value).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Why nothing was sent, for `Skipped`.
    #[serde(default)]
    pub skipped_reason: Option<String>,
    /// When this version was first attempted.
    #[serde(with = "time::serde::rfc3339")]
    pub first_attempt_at: OffsetDateTime,
    /// When it was last attempted.
    #[serde(with = "time::serde::rfc3339")]
    pub last_attempt_at: OffsetDateTime,
    /// When the next attempt is due, for `Retrying`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// This record is about the user leaving the target's filter (its gate): the
    /// attempt sent the user deactivated, so while the user stays outside nothing more
    /// is sent.
    #[serde(default)]
    pub gate_exit: bool,
}

impl DeliveryRecord {
    /// Status codes kept per record.
    pub const MAX_STATUS_CODES: usize = 16;

    /// Appends an attempt's status code, dropping the oldest past the cap.
    pub fn push_status(&mut self, status: u16) {
        self.status_codes.push(status);
        let excess = self
            .status_codes
            .len()
            .saturating_sub(Self::MAX_STATUS_CODES);
        self.status_codes.drain(..excess);
    }
}

/// Which records of a directory's delivery log to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only this target's records.
    pub target: Option<TargetId>,
    /// Only this object's (user's) records.
    pub object_id: Option<String>,
    /// Only records in this status.
    pub status: Option<DeliveryStatus>,
}

impl DeliveryQuery {
    /// The sort-key prefix holding the records asked for (one target's, or every
    /// target's), in the single-table key design.
    pub fn key_prefix(&self) -> String {
        match &self.target {
            Some(t) => format!("{}{t}#", crate::keys::DLOG_PREFIX),
            None => crate::keys::DLOG_PREFIX.to_string(),
        }
    }

    /// Whether `record` (read under [`DeliveryQuery::key_prefix`]) is one asked for.
    pub fn matches(&self, record: &DeliveryRecord) -> bool {
        self.object_id
            .as_ref()
            .is_none_or(|o| &record.object_id == o)
            && self.status.is_none_or(|s| record.status == s)
    }
}

/// A target's circuit breaker: consecutive retryable failures, and until when the
/// dispatcher stops calling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerState {
    /// Retryable failures in a row since the last success.
    pub consecutive_failures: u32,
    /// While in the future, deliveries go straight to the retry path.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub open_until: Option<OffsetDateTime>,
}

impl BreakerState {
    /// Whether calls to the target are suspended at `now`.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.open_until.is_some_and(|t| t > now)
    }
}

/// Store operations the dispatcher needs beyond the ledger.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Writes the record of (directory, target, object), replacing the previous one.
    async fn put_delivery(&self, record: &DeliveryRecord) -> Result<(), StoreError>;

    /// The record of one (target, object), if any.
    async fn get_delivery(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError>;

    /// A directory's delivery log, ordered by target then object id, narrowed by
    /// `query`.
    async fn list_deliveries(
        &self,
        directory: &DirectoryId,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// The id of a user's account at a target (e.g. the SCIM resource id), remembered
    /// so a changed work email updates the same account.
    async fn get_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Remembers (or replaces) a user's account id at a target.
    async fn put_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        account_id: &str,
    ) -> Result<(), StoreError>;

    /// Forgets a user's account id at a target (it was deleted there).
    async fn delete_target_account(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<(), StoreError>;

    /// A target's circuit breaker; closed (the default) when never written.
    async fn get_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
    ) -> Result<BreakerState, StoreError>;

    /// Writes a target's circuit breaker. Last writer wins: two dispatchers judging the
    /// same target at once reach the same verdict within one failure.
    async fn put_breaker(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        state: &BreakerState,
    ) -> Result<(), StoreError>;
}
