//! When the poller runs: one recurring schedule per directory, and one-time schedules
//! that continue a run in a fresh invocation (EventBridge Scheduler on AWS, an
//! in-process timetable locally).
//!
//! The schedule's payload is a [`SyncRequest`] (`{"directoryId","mode"}`), exactly what
//! the poller receives, so the scheduler needs no knowledge of how a sync works.

use async_trait::async_trait;
use domain::{DirectoryId, SyncMode, SyncRequest};
use time::OffsetDateTime;

/// Longest flexible window EventBridge Scheduler accepts (one day), in minutes.
pub const MAX_FLEXIBLE_WINDOW_MINUTES: u32 = 1440;

/// The one recurring schedule of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySchedule {
    /// Whose schedule.
    pub directory_id: DirectoryId,
    /// Minutes between runs (at least 1).
    pub every_minutes: u32,
    /// Each run may start up to this many minutes late, so directories configured
    /// alike do not all start in the same second; 0 turns the window off.
    pub flexible_window_minutes: u32,
    /// A paused directory keeps its schedule, disabled, so resuming restores it as it
    /// was instead of recreating it.
    pub enabled: bool,
    /// What each run asks the poller to do; names the same directory.
    pub request: SyncRequest,
}

impl DirectorySchedule {
    /// An enabled incremental schedule every `every_minutes`, without flexible window.
    pub fn incremental(directory_id: DirectoryId, every_minutes: u32) -> Self {
        Self {
            request: SyncRequest {
                directory_id: directory_id.clone(),
                mode: SyncMode::Incremental,
            },
            directory_id,
            every_minutes,
            flexible_window_minutes: 0,
            enabled: true,
        }
    }

    /// Checks what every adapter relies on: a positive interval, a window shorter than
    /// the interval (a longer one would let runs overtake each other) and within
    /// Scheduler's limit, and a request for this very directory.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let invalid = |reason: String| {
            Err(SchedulerError::Invalid {
                directory: self.directory_id.to_string(),
                reason,
            })
        };
        if self.every_minutes == 0 {
            return invalid("every_minutes must be at least 1".into());
        }
        if self.flexible_window_minutes > MAX_FLEXIBLE_WINDOW_MINUTES {
            return invalid(format!(
                "flexible window above {MAX_FLEXIBLE_WINDOW_MINUTES} minutes"
            ));
        }
        if self.flexible_window_minutes != 0 && self.flexible_window_minutes >= self.every_minutes {
            return invalid(format!(
                "flexible window of {} minutes is not shorter than the {}-minute interval",
                self.flexible_window_minutes, self.every_minutes
            ));
        }
        if self.request.directory_id != self.directory_id {
            return invalid(format!(
                "the request names directory {}",
                self.request.directory_id
            ));
        }
        Ok(())
    }
}

/// What [`Scheduler::schedule_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnceOutcome {
    /// A new one-time schedule was created.
    Created,
    /// The same directory and mode already had one in that minute; nothing was added.
    AlreadyScheduled,
}

/// A scheduler operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchedulerError {
    /// The schedule asked for cannot exist (see [`DirectorySchedule::validate`]).
    #[error("invalid schedule for directory {directory}: {reason}")]
    Invalid {
        /// Which directory.
        directory: String,
        /// What is wrong.
        reason: String,
    },
    /// The scheduler refused the request (validation, permissions, missing group) or
    /// holds a schedule this code cannot read; retrying the same call cannot help.
    #[error("scheduler refused: {reason}")]
    Rejected {
        /// The operation and the service's reason.
        reason: String,
    },
    /// Transport failure, throttling or a service error; worth retrying later.
    #[error("scheduler unavailable: {reason}")]
    Unavailable {
        /// The operation and what failed.
        reason: String,
    },
}

impl SchedulerError {
    /// Only [`SchedulerError::Unavailable`] may succeed when retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Creates, reads and removes the schedules that invoke the poller.
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Creates or replaces the directory's recurring schedule; putting the same
    /// schedule twice leaves one schedule.
    async fn put_directory_schedule(
        &self,
        schedule: &DirectorySchedule,
    ) -> Result<(), SchedulerError>;

    /// The directory's recurring schedule, if it has one.
    async fn get_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<Option<DirectorySchedule>, SchedulerError>;

    /// Removes the directory's recurring schedule; removing an absent one succeeds.
    /// One-time schedules already queued still fire (the poller ignores requests for a
    /// directory that is gone or revoked).
    async fn delete_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<(), SchedulerError>;

    /// Runs `request` once at `at` (whole seconds, UTC) and then forgets it. Calls for
    /// the same directory and mode whose `at` falls in the same UTC minute collapse into
    /// the first, so a retried continuation or a burst of webhooks cannot pile up runs.
    /// `at` should lie in the future; the caller's clock decides what "soon" means.
    async fn schedule_once(
        &self,
        request: &SyncRequest,
        at: OffsetDateTime,
    ) -> Result<OnceOutcome, SchedulerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(s: &str) -> DirectoryId {
        DirectoryId::parse(s).unwrap()
    }

    #[test]
    fn an_incremental_schedule_is_valid_and_names_its_directory() {
        let s = DirectorySchedule::incremental(dir("acme"), 30);
        assert!(s.validate().is_ok());
        assert_eq!(s.request.directory_id, dir("acme"));
        assert_eq!(s.request.mode, SyncMode::Incremental);
    }

    #[test]
    fn schedules_that_cannot_run_sensibly_are_invalid_and_not_retryable() {
        let base = DirectorySchedule::incremental(dir("acme"), 30);
        let zero = DirectorySchedule {
            every_minutes: 0,
            ..base.clone()
        };
        let wide = DirectorySchedule {
            flexible_window_minutes: 30,
            ..base.clone()
        };
        let huge = DirectorySchedule {
            every_minutes: 5000,
            flexible_window_minutes: 1441,
            ..base.clone()
        };
        let other = DirectorySchedule {
            request: SyncRequest {
                directory_id: dir("globex"),
                mode: SyncMode::Incremental,
            },
            ..base
        };
        for s in [zero, wide, huge, other] {
            let err = s.validate().unwrap_err();
            assert!(matches!(err, SchedulerError::Invalid { .. }), "{err}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn only_unavailability_is_worth_a_retry() {
        assert!(SchedulerError::Unavailable { reason: "x".into() }.is_retryable());
        assert!(!SchedulerError::Rejected { reason: "x".into() }.is_retryable());
    }
}
