//! The audit log and compliance evidence of a directory.
//!
//! Audit entries are append-only: every adapter writes them with a conditional put
//! (the entry must not exist yet), so no function, not even one holding write access
//! to the table, can overwrite what an entry says through this port. Evidence rows are
//! keyed by their fingerprint, so an identical snapshot is stored once; they are
//! put-only the same way, in their own table, and outlive a directory's purge.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::DirectoryId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store_error::StoreError;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A directory was connected (credentials validated and saved).
    Connect,
    /// A directory's sync settings changed.
    SettingsChange,
    /// A target was added, changed or removed.
    TargetChange,
    /// A sync run completed (or was asked for by an operator).
    Sync,
    /// A sync run failed.
    SyncFailure,
    /// The BambooHR credentials were replaced.
    Reauthentication,
    /// The safeguard held a run.
    Hold,
    /// An operator released (or discarded) a hold.
    Release,
    /// Dead letters were re-driven or a directory/user re-pushed.
    Replay,
    /// The directory was paused.
    Pause,
    /// The directory was resumed.
    Resume,
    /// The directory was revoked.
    Revoke,
    /// A revoked directory's data was purged after its retention window; the entry
    /// counts what was removed.
    Purge,
    /// A BambooHR webhook was registered, or its monitored fields followed a change.
    WebhookChange,
    /// A key was added to or retired from a key list (BambooHR webhook keys, a
    /// target's signing secrets); the entry names key ids, never a key.
    KeyChange,
    /// A setup link was created or revoked (the entry names the link id, never its
    /// token).
    SetupLinkChange,
    /// The stack's BambooHR OAuth client was set or removed (the entry names the client
    /// id, never its secret). Stack-wide, so audited under the reserved scope `_stack`.
    OauthClientChange,
}

impl AuditAction {
    /// The stored name, e.g. `settings_change`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::SettingsChange => "settings_change",
            Self::TargetChange => "target_change",
            Self::Sync => "sync",
            Self::SyncFailure => "sync_failure",
            Self::Reauthentication => "reauthentication",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Replay => "replay",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Revoke => "revoke",
            Self::Purge => "purge",
            Self::WebhookChange => "webhook_change",
            Self::KeyChange => "key_change",
            Self::SetupLinkChange => "setup_link_change",
            Self::OauthClientChange => "oauth_client_change",
        }
    }
}

/// One immutable line of a directory's audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// The directory concerned.
    pub directory_id: DirectoryId,
    /// Sorts by time: `<unix nanoseconds, 20 digits>-<random hex>`.
    pub id: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub action: AuditAction,
    /// Who did it: the operator's identity (local user, AWS caller ARN) or a
    /// function's role.
    pub actor: String,
    /// What changed, without secrets or HR field values.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// A new entry at `at`; `nonce` keeps two entries of the same nanosecond apart.
    pub fn new(
        directory_id: DirectoryId,
        at: OffsetDateTime,
        nonce: u32,
        action: AuditAction,
        actor: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        let nanos = at.unix_timestamp_nanos().max(0);
        Self {
            directory_id,
            id: format!("{nanos:020}-{nonce:08x}"),
            at,
            action,
            actor: actor.into(),
            details,
        }
    }
}

/// A compliance snapshot written after a successful sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRow {
    /// The directory concerned.
    pub directory_id: DirectoryId,
    /// When the snapshot was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub captured_at: OffsetDateTime,
    /// The run that produced it.
    pub run_id: String,
    /// Users active (or pending start within the pre-start window) now.
    pub active_headcount: u64,
    /// Users whose termination date lies in the last 30 days.
    pub terminations_last_30_days: u64,
    /// Users whose hire date lies in the last 30 days.
    pub new_hires_last_30_days: u64,
    /// Target id -> share (0.0 - 1.0) of the active users delivered to it.
    pub target_share: BTreeMap<String, f64>,
    /// The onboarding completion rate, derived from BambooHR training records; None
    /// when not measured (rows from before it existed, or no client to ask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboarding: Option<OnboardingEvidence>,
    /// Hex SHA-256 of the figures above (not of the time or run): equal snapshots have
    /// equal fingerprints.
    pub fingerprint: String,
}

/// The onboarding completion rate of a snapshot. BambooHR's public API has no
/// onboarding-task endpoint, so it is derived from training records: of the employees
/// hired in the last `window_days` days (active now), the share who completed every
/// required training that falls due from their hire date, each no later than its due
/// date (hire date + the training type's due-from-hire days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OnboardingEvidence {
    /// Measured from the training records.
    #[serde(rename_all = "camelCase")]
    Measured {
        /// How far back hires count, in days.
        window_days: u32,
        /// Employees hired in the window.
        hires: u64,
        /// Of those, who completed their required trainings on time.
        completed_on_time: u64,
        /// Of the others, those who have not finished but whose due dates have not
        /// passed yet (still onboarding, not late).
        in_progress: u64,
        /// `completed_on_time / hires`, rounded to 4 places; None when no one was
        /// hired.
        rate: Option<f64>,
        /// Required training types that fall due from hire date (0: nothing to
        /// complete, so every hire counts as complete).
        required_trainings: u64,
    },
    /// The API key may not read training types or records (BambooHR answered 403, or
    /// the company does not use training): the rate is not available for this key.
    #[serde(rename_all = "camelCase")]
    NotAvailable {
        /// How far back hires would count, in days.
        window_days: u32,
        /// Why, without secrets or HR values (e.g. "training records are not
        /// available for this key (HTTP 403)").
        reason: String,
    },
}

/// Audit log and evidence operations.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry. Fails with `Conflict` (and changes nothing) when an entry
    /// with the same id exists: entries are never overwritten.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The newest entries of a directory, newest first, at most `limit`.
    async fn list_audit(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Stores an evidence row unless one with the same fingerprint exists for the
    /// directory: true when stored, false when the snapshot was already there (and
    /// left exactly as it was: rows are never replaced, updated or deleted).
    async fn put_evidence(&self, row: &EvidenceRow) -> Result<bool, StoreError>;

    /// The newest evidence rows of a directory, newest first, at most `limit`.
    async fn list_evidence(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<EvidenceRow>, StoreError>;
}
