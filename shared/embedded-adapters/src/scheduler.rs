//! [`InProcessScheduler`]: `ports::Scheduler` as an in-memory timetable for the local
//! stack. Nothing fires on its own: the `dev` loop asks [`InProcessScheduler::due`]
//! what to run at the current instant and hands each request to the poller, the way
//! EventBridge Scheduler invokes the poller function on AWS.
//!
//! Differences from EventBridge Scheduler, on purpose: the flexible window is ignored
//! (one local process has no load to spread), and a recurring schedule that missed
//! several periods fires once, not once per missed period.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use domain::{DirectoryId, SyncRequest};
use ports::{DirectorySchedule, OnceOutcome, Scheduler, SchedulerError};
use time::{Duration, OffsetDateTime, UtcOffset};

/// A recurring schedule and when it last fired.
#[derive(Debug)]
struct Recurring {
    schedule: DirectorySchedule,
    last_fired: Option<OffsetDateTime>,
}

/// Key of a one-time run: directory, mode and the UTC minute it is due in, the same
/// identity EventBridge Scheduler's one-time schedule names carry.
type OnceKey = (DirectoryId, &'static str, i64);

#[derive(Debug, Default)]
struct Timetable {
    recurring: BTreeMap<DirectoryId, Recurring>,
    once: BTreeMap<OnceKey, (OffsetDateTime, SyncRequest)>,
}

/// Schedules kept in memory; cheap to create, one per local stack or test.
#[derive(Debug, Default)]
pub struct InProcessScheduler {
    timetable: Mutex<Timetable>,
}

impl InProcessScheduler {
    /// An empty timetable.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Timetable> {
        // A panic while holding the lock cannot leave the maps half-updated (every
        // change is a single insert or remove), so a poisoned lock is still usable.
        self.timetable.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What fires at `now`, one-time runs first (earliest first), then recurring runs
    /// (by directory id). A one-time run fires once `at <= now` and is then forgotten.
    /// An enabled recurring schedule fires when it has never fired or when
    /// `every_minutes` have passed since it last did; a disabled one never fires.
    pub fn due(&self, now: OffsetDateTime) -> Vec<SyncRequest> {
        let mut timetable = self.lock();
        let mut once_due: Vec<(OffsetDateTime, SyncRequest)> = Vec::new();
        timetable.once.retain(|_, (at, request)| {
            let fire = *at <= now;
            if fire {
                once_due.push((*at, request.clone()));
            }
            !fire
        });
        once_due.sort_by_key(|(at, _)| *at);
        let mut due: Vec<SyncRequest> = once_due.into_iter().map(|(_, r)| r).collect();

        for recurring in timetable.recurring.values_mut() {
            let schedule = &recurring.schedule;
            let period = Duration::minutes(i64::from(schedule.every_minutes));
            let fire =
                schedule.enabled && recurring.last_fired.is_none_or(|last| now - last >= period);
            if fire {
                recurring.last_fired = Some(now);
                due.push(schedule.request.clone());
            }
        }
        due
    }

    /// How many one-time runs wait to fire (for the local stack's status output).
    pub fn pending_once(&self) -> usize {
        self.lock().once.len()
    }
}

#[async_trait]
impl Scheduler for InProcessScheduler {
    async fn put_directory_schedule(
        &self,
        schedule: &DirectorySchedule,
    ) -> Result<(), SchedulerError> {
        schedule.validate()?;
        let mut timetable = self.lock();
        // Replacing keeps the last firing, so editing a schedule keeps its rhythm
        // instead of firing at once.
        let last_fired = timetable
            .recurring
            .get(&schedule.directory_id)
            .and_then(|r| r.last_fired);
        timetable.recurring.insert(
            schedule.directory_id.clone(),
            Recurring {
                schedule: schedule.clone(),
                last_fired,
            },
        );
        tracing::debug!(
            directory = %schedule.directory_id,
            every_minutes = schedule.every_minutes,
            enabled = schedule.enabled,
            "directory schedule put"
        );
        Ok(())
    }

    async fn get_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<Option<DirectorySchedule>, SchedulerError> {
        Ok(self
            .lock()
            .recurring
            .get(directory)
            .map(|r| r.schedule.clone()))
    }

    async fn delete_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<(), SchedulerError> {
        self.lock().recurring.remove(directory);
        Ok(())
    }

    async fn schedule_once(
        &self,
        request: &SyncRequest,
        at: OffsetDateTime,
    ) -> Result<OnceOutcome, SchedulerError> {
        let at = at
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .map_err(|e| SchedulerError::Invalid {
                directory: request.directory_id.to_string(),
                reason: format!("cannot truncate the instant: {e}"),
            })?;
        let key = (
            request.directory_id.clone(),
            request.mode.as_str(),
            at.unix_timestamp().div_euclid(60),
        );
        let mut timetable = self.lock();
        if timetable.once.contains_key(&key) {
            return Ok(OnceOutcome::AlreadyScheduled);
        }
        timetable.once.insert(key, (at, request.clone()));
        tracing::debug!(
            directory = %request.directory_id,
            mode = request.mode.as_str(),
            at = %at,
            "one-time run scheduled"
        );
        Ok(OnceOutcome::Created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::SyncMode;
    use ports::contract_scheduler;
    use time::macros::datetime;

    fn dir(s: &str) -> DirectoryId {
        DirectoryId::parse(s).unwrap()
    }

    fn request(d: &str, mode: SyncMode) -> SyncRequest {
        SyncRequest {
            directory_id: dir(d),
            mode,
        }
    }

    const T0: OffsetDateTime = datetime!(2026-11-23 10:00:00 UTC);

    #[tokio::test]
    async fn the_in_process_scheduler_passes_the_scheduler_contract() {
        contract_scheduler::run_all(&InProcessScheduler::new(), "mem").await;
    }

    #[tokio::test]
    async fn a_new_schedule_fires_at_once_and_then_every_period() {
        let s = InProcessScheduler::new();
        s.put_directory_schedule(&DirectorySchedule::incremental(dir("acme"), 30))
            .await
            .unwrap();
        assert_eq!(s.due(T0), vec![request("acme", SyncMode::Incremental)]);
        assert!(s.due(T0 + Duration::minutes(29)).is_empty());
        assert_eq!(s.due(T0 + Duration::minutes(30)).len(), 1);
        assert!(s.due(T0 + Duration::minutes(31)).is_empty());
    }

    #[tokio::test]
    async fn a_disabled_schedule_never_fires_and_resumes_its_rhythm_when_enabled() {
        let s = InProcessScheduler::new();
        let on = DirectorySchedule::incremental(dir("acme"), 10);
        s.put_directory_schedule(&on).await.unwrap();
        assert_eq!(s.due(T0).len(), 1);
        let off = DirectorySchedule {
            enabled: false,
            ..on.clone()
        };
        s.put_directory_schedule(&off).await.unwrap();
        assert!(s.due(T0 + Duration::hours(5)).is_empty());
        s.put_directory_schedule(&on).await.unwrap();
        assert!(s.due(T0 + Duration::minutes(5)).is_empty());
        assert_eq!(s.due(T0 + Duration::minutes(10)).len(), 1);
    }

    #[tokio::test]
    async fn one_time_runs_fire_once_when_due_earliest_first_and_before_recurring_ones() {
        let s = InProcessScheduler::new();
        s.put_directory_schedule(&DirectorySchedule::incremental(dir("acme"), 30))
            .await
            .unwrap();
        let late = request("globex", SyncMode::Full);
        let early = request("acme", SyncMode::Targeted);
        s.schedule_once(&late, T0 + Duration::minutes(2))
            .await
            .unwrap();
        s.schedule_once(&early, T0 + Duration::minutes(1))
            .await
            .unwrap();

        assert_eq!(s.due(T0), vec![request("acme", SyncMode::Incremental)]);
        assert!(s.due(T0 + Duration::seconds(59)).is_empty());
        assert_eq!(s.pending_once(), 2);
        assert_eq!(s.due(T0 + Duration::minutes(2)), vec![early, late.clone()]);
        assert_eq!(s.pending_once(), 0);
        assert!(s.due(T0 + Duration::minutes(3)).is_empty());

        // Once fired, the same minute may be scheduled again (EventBridge Scheduler
        // deletes a completed one-time schedule, freeing its name).
        assert_eq!(
            s.schedule_once(&late, T0 + Duration::minutes(2))
                .await
                .unwrap(),
            OnceOutcome::Created
        );
    }

    #[tokio::test]
    async fn deleting_a_directory_schedule_keeps_its_pending_one_time_runs() {
        let s = InProcessScheduler::new();
        s.put_directory_schedule(&DirectorySchedule::incremental(dir("acme"), 30))
            .await
            .unwrap();
        let full = request("acme", SyncMode::Full);
        s.schedule_once(&full, T0).await.unwrap();
        s.delete_directory_schedule(&dir("acme")).await.unwrap();
        assert_eq!(s.due(T0), vec![full]);
    }
}
