//! Sync runs: what the poller is asked to do and the record of what one run did.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::DomainError;
use crate::ids::DirectoryId;

/// How much of a directory a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Employees changed since the cursor (`employees/changed`), then only those are
    /// fetched. Becomes a full reconciliation when one is due (no cursor yet, the daily
    /// full is due, a settings change asked for one, or a checkpoint waits).
    #[default]
    Incremental,
    /// Every employee, reconciled against the store; users missing from a complete
    /// listing are deleted or deactivated.
    Full,
    /// Only the employees event-based webhooks asked to refresh.
    Targeted,
}

impl SyncMode {
    /// The lowercase name used in payloads and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::Full => "full",
            Self::Targeted => "targeted",
        }
    }
}

/// What a schedule (or an operator) asks the poller to do for one directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequest {
    /// The directory to sync.
    pub directory_id: DirectoryId,
    /// Which mode.
    #[serde(default)]
    pub mode: SyncMode,
}

/// Unique id of one sync run: the start instant and a random suffix, so ids sort by
/// start time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// A run id for a run starting at `at`, made unique by `suffix` (e.g. random).
    pub fn new(at: OffsetDateTime, suffix: u32) -> Self {
        let nanos = at.unix_timestamp_nanos().max(0);
        Self(format!("{nanos:020}-{suffix:08x}"))
    }

    /// Parses a run id as printed.
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        let ok = s.len() == 29
            && s.as_bytes()[20] == b'-'
            && s[..20].bytes().all(|b| b.is_ascii_digit())
            && s[21..].bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(s))
        } else {
            Err(DomainError::invalid(
                "run id",
                "expected <20 digits>-<8 hex digits>",
            ))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RunId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> Self {
        id.0
    }
}

/// How a run ended (or that it is still going).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not finished (or killed: a run stays `running` until a later run
    /// resumes its checkpoint).
    Running,
    /// Every change applied.
    Completed,
    /// Stopped before the invocation's time ran out; a checkpoint continues it.
    Continued,
    /// The safeguard held its deactivations and deletions for an operator.
    Held,
    /// Failed; see `errors`.
    Failed,
    /// Another run of the directory held the lease; nothing was done.
    Skipped,
}

/// One employee a run did not apply, and why (never field values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRecord {
    /// BambooHR employee id as sent.
    pub employee_id: String,
    /// Why, e.g. "no work email" or "invalid hireDate".
    pub reason: String,
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    /// BambooHR pages read (datasets pages, changed-id batches).
    pub pages: u32,
    /// HTTP requests sent to BambooHR (retries included).
    pub bamboohr_requests: u64,
    /// BambooHR answers of 429 or 503 that made the run wait.
    pub bamboohr_throttles: u64,
    /// Employees BambooHR listed or returned.
    pub seen: u64,
    /// Users created.
    pub created: u64,
    /// Users whose content changed (deactivations and deletions not included).
    pub updated: u64,
    /// Users that became inactive.
    pub deactivated: u64,
    /// Users that became deleted.
    pub deleted: u64,
    /// Users unchanged (no write, no event).
    pub unchanged: u64,
    /// Employees not applied (reasons in `skipped`).
    pub skipped: u64,
    /// Store items read.
    pub store_reads: u64,
    /// Store items written.
    pub store_writes: u64,
    /// Events published.
    pub events_published: u64,
}

/// The record of one sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRun {
    /// Which run.
    pub id: RunId,
    /// Which directory.
    pub directory_id: DirectoryId,
    /// The mode that ran (after any upgrade to full).
    pub mode: SyncMode,
    /// How it ended.
    pub status: RunStatus,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    /// What it did.
    pub counts: RunCounts,
    /// Per-record skips, the first [`SyncRun::MAX_SKIPPED_LISTED`] of them.
    #[serde(default)]
    pub skipped: Vec<SkippedRecord>,
    /// Errors (reasons, never field values).
    #[serde(default)]
    pub errors: Vec<String>,
}

impl SyncRun {
    /// Skips listed per run; the count keeps going past it.
    pub const MAX_SKIPPED_LISTED: usize = 200;

    /// A run that starts now.
    pub fn start(id: RunId, directory_id: DirectoryId, mode: SyncMode, at: OffsetDateTime) -> Self {
        Self {
            id,
            directory_id,
            mode,
            status: RunStatus::Running,
            started_at: at,
            finished_at: None,
            counts: RunCounts::default(),
            skipped: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Records a skipped employee.
    pub fn skip(&mut self, employee_id: &str, reason: impl Into<String>) {
        self.counts.skipped += 1;
        if self.skipped.len() < Self::MAX_SKIPPED_LISTED {
            self.skipped.push(SkippedRecord {
                employee_id: employee_id.to_string(),
                reason: reason.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_start_time_and_round_trip() {
        let early = RunId::new(
            OffsetDateTime::from_unix_timestamp(1_000).unwrap(),
            0xffff_ffff,
        );
        let late = RunId::new(OffsetDateTime::from_unix_timestamp(2_000).unwrap(), 0);
        assert!(early < late);
        assert_eq!(RunId::parse(late.to_string()).unwrap(), late);
        assert!(RunId::parse("not-a-run").is_err());
    }

    #[test]
    fn sync_requests_default_to_incremental_and_refuse_unknown_fields() {
        let r: SyncRequest = serde_json::from_str(r#"{"directoryId":"acme"}"#).unwrap();
        assert_eq!(r.mode, SyncMode::Incremental);
        assert!(serde_json::from_str::<SyncRequest>(r#"{"directoryId":"acme","x":1}"#).is_err());
        let full: SyncRequest =
            serde_json::from_str(r#"{"directoryId":"acme","mode":"full"}"#).unwrap();
        assert_eq!(full.mode, SyncMode::Full);
    }
}
