//! [`InProcessScheduler`]: `ports::Scheduler` as a timetable for the local stack, in
//! a private in-memory database ([`InProcessScheduler::new`], for tests) or in the data
//! directory's SQLite database ([`InProcessScheduler::open`],
//! [`InProcessScheduler::from_db`]), so a restarted `dev` keeps its directories'
//! schedules, their rhythm (when each last fired) and the one-time runs still to come,
//! as EventBridge Scheduler keeps them on AWS. Nothing fires on its own: the `dev` loop
//! asks [`InProcessScheduler::due`] what to run at the current instant and hands each
//! request to the poller, the way EventBridge Scheduler invokes the poller function.
//!
//! Differences from EventBridge Scheduler, on purpose: the flexible window is ignored
//! (one local process has no load to spread), and a recurring schedule that missed
//! several periods (while `dev` was stopped, say) fires once, not once per missed
//! period. A due run is removed (one-time) or marked fired (recurring) in the same
//! transaction that hands it out, so a `dev` killed before running it skips that run
//! rather than running it twice; the next period runs as usual.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use domain::{DirectoryId, SyncRequest};
use ports::{DirectorySchedule, OnceOutcome, Scheduler, SchedulerError};
use rusqlite::{params, OptionalExtension};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::local_queue_db::{from_nanos, json_error, to_nanos, QueueDb, QueueDbError};

/// Schedules kept in SQLite; cheap to create, one per local stack or test.
pub struct InProcessScheduler {
    db: Arc<QueueDb>,
}

impl std::fmt::Debug for InProcessScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessScheduler")
            .field("db", &self.db.path())
            .finish()
    }
}

impl Default for InProcessScheduler {
    fn default() -> Self {
        Self::new()
    }
}

fn unavailable(e: QueueDbError) -> SchedulerError {
    SchedulerError::Unavailable {
        reason: format!("local scheduler: {e}"),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("sync requests serialize")
}

impl InProcessScheduler {
    /// An empty timetable in memory.
    pub fn new() -> Self {
        Self::from_db(QueueDb::in_memory().expect("an in-memory database opens"))
    }

    /// The timetable in the SQLite database at `path` (e.g. `<data-dir>/queues.db`),
    /// as it was left there; created if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SchedulerError> {
        Ok(Self::from_db(QueueDb::open(path).map_err(unavailable)?))
    }

    /// The timetable in an open database (shared with the queues).
    pub fn from_db(db: Arc<QueueDb>) -> Self {
        Self { db }
    }

    /// What fires at `now`, one-time runs first (earliest first), then recurring runs
    /// (by directory id). A one-time run fires once `at <= now` and is then forgotten.
    /// An enabled recurring schedule fires when it has never fired or when
    /// `every_minutes` have passed since it last did; a disabled one never fires.
    /// Nothing fires when the database cannot be written (logged; see
    /// [`InProcessScheduler::try_due`]).
    pub fn due(&self, now: OffsetDateTime) -> Vec<SyncRequest> {
        self.try_due(now)
            .map_err(|e| tracing::warn!(error = %e, "local schedules not read"))
            .unwrap_or_default()
    }

    /// [`InProcessScheduler::due`], or why the database did not take the change (then
    /// nothing fired and nothing was marked).
    pub fn try_due(&self, now: OffsetDateTime) -> Result<Vec<SyncRequest>, SchedulerError> {
        let now_n = to_nanos(now);
        self.db
            .write(|tx| {
                let mut due: Vec<SyncRequest> = tx
                    .prepare_cached(
                        "SELECT request FROM schedule_once WHERE at <= ?1 ORDER BY at, rowid",
                    )?
                    .query_map(params![now_n], |r| r.get::<_, String>(0))?
                    .map(|row| serde_json::from_str(&row?).map_err(|e| json_error(0, e)))
                    .collect::<rusqlite::Result<_>>()?;
                tx.execute("DELETE FROM schedule_once WHERE at <= ?1", params![now_n])?;

                let recurring: Vec<(String, i64, String, Option<i64>)> = tx
                    .prepare_cached(
                        "SELECT directory_id, every_minutes, request, last_fired
                         FROM schedule_recurring WHERE enabled != 0 ORDER BY directory_id",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut mark = tx.prepare_cached(
                    "UPDATE schedule_recurring SET last_fired = ?2 WHERE directory_id = ?1",
                )?;
                for (directory, every_minutes, request, last_fired) in recurring {
                    let period = Duration::minutes(every_minutes);
                    if last_fired.is_none_or(|last| now - from_nanos(last) >= period) {
                        mark.execute(params![directory, now_n])?;
                        due.push(serde_json::from_str(&request).map_err(|e| json_error(2, e))?);
                    }
                }
                Ok(due)
            })
            .map_err(unavailable)
    }

    /// How many one-time runs wait to fire (for the local stack's status output; 0
    /// also when the database cannot be read, logged).
    pub fn pending_once(&self) -> usize {
        self.db
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM schedule_once", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map_err(|e| tracing::warn!(error = %e, "local schedules not read"))
            .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }
}

#[async_trait]
impl Scheduler for InProcessScheduler {
    async fn put_directory_schedule(
        &self,
        schedule: &DirectorySchedule,
    ) -> Result<(), SchedulerError> {
        schedule.validate()?;
        // Replacing keeps the last firing, so editing a schedule keeps its rhythm
        // instead of firing at once.
        self.db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO schedule_recurring
                         (directory_id, every_minutes, flexible_window_minutes, enabled, request)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (directory_id) DO UPDATE SET
                         every_minutes = excluded.every_minutes,
                         flexible_window_minutes = excluded.flexible_window_minutes,
                         enabled = excluded.enabled,
                         request = excluded.request",
                    params![
                        schedule.directory_id.to_string(),
                        schedule.every_minutes,
                        schedule.flexible_window_minutes,
                        schedule.enabled,
                        to_json(&schedule.request),
                    ],
                )
            })
            .map_err(unavailable)?;
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
        let row: Option<(u32, u32, bool, String)> = self
            .db
            .read(|c| {
                c.query_row(
                    "SELECT every_minutes, flexible_window_minutes, enabled, request
                     FROM schedule_recurring WHERE directory_id = ?1",
                    params![directory.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
            })
            .map_err(unavailable)?;
        row.map(
            |(every_minutes, flexible_window_minutes, enabled, request)| {
                let request =
                    serde_json::from_str(&request).map_err(|e| SchedulerError::Rejected {
                        reason: format!("local schedule of {directory} unreadable: {e}"),
                    })?;
                Ok(DirectorySchedule {
                    directory_id: directory.clone(),
                    every_minutes,
                    flexible_window_minutes,
                    enabled,
                    request,
                })
            },
        )
        .transpose()
    }

    async fn delete_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<(), SchedulerError> {
        self.db
            .write(|tx| {
                tx.execute(
                    "DELETE FROM schedule_recurring WHERE directory_id = ?1",
                    params![directory.to_string()],
                )
            })
            .map_err(unavailable)?;
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
        // Directory, mode and UTC minute: the identity EventBridge Scheduler's one-time
        // schedule names carry.
        let inserted = self
            .db
            .write(|tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO schedule_once (directory_id, mode, minute, at, request)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        request.directory_id.to_string(),
                        request.mode.as_str(),
                        at.unix_timestamp().div_euclid(60),
                        to_nanos(at),
                        to_json(request),
                    ],
                )
            })
            .map_err(unavailable)?;
        if inserted == 0 {
            return Ok(OnceOutcome::AlreadyScheduled);
        }
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

    fn dir_id(s: &str) -> DirectoryId {
        DirectoryId::parse(s).unwrap()
    }

    fn request(d: &str, mode: SyncMode) -> SyncRequest {
        SyncRequest {
            directory_id: dir_id(d),
            mode,
        }
    }

    const T0: OffsetDateTime = datetime!(2026-11-23 10:00:00 UTC);

    #[tokio::test]
    async fn the_in_process_scheduler_passes_the_scheduler_contract() {
        contract_scheduler::run_all(&InProcessScheduler::new(), "mem").await;
    }

    #[tokio::test]
    async fn the_file_backed_scheduler_passes_the_scheduler_contract() {
        let dir = tempfile::tempdir().unwrap();
        let s = InProcessScheduler::open(dir.path().join("queues.db")).unwrap();
        contract_scheduler::run_all(&s, "file").await;
    }

    #[tokio::test]
    async fn schedules_their_rhythm_and_one_time_runs_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.db");
        let s = InProcessScheduler::open(&path).unwrap();
        let schedule = DirectorySchedule::incremental(dir_id("acme"), 30);
        s.put_directory_schedule(&schedule).await.unwrap();
        assert_eq!(s.due(T0).len(), 1);
        let full = request("globex", SyncMode::Full);
        s.schedule_once(&full, T0 + Duration::minutes(5))
            .await
            .unwrap();
        drop(s);

        let s = InProcessScheduler::open(&path).unwrap();
        assert_eq!(
            s.get_directory_schedule(&dir_id("acme")).await.unwrap(),
            Some(schedule)
        );
        assert_eq!(s.pending_once(), 1);
        assert!(s.due(T0 + Duration::minutes(1)).is_empty(), "rhythm kept");
        assert_eq!(
            s.schedule_once(&full, T0 + Duration::minutes(5))
                .await
                .unwrap(),
            OnceOutcome::AlreadyScheduled
        );
        assert_eq!(
            s.due(T0 + Duration::minutes(30)),
            vec![full, request("acme", SyncMode::Incremental)]
        );
    }

    #[tokio::test]
    async fn a_new_schedule_fires_at_once_and_then_every_period() {
        let s = InProcessScheduler::new();
        s.put_directory_schedule(&DirectorySchedule::incremental(dir_id("acme"), 30))
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
        let on = DirectorySchedule::incremental(dir_id("acme"), 10);
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
        s.put_directory_schedule(&DirectorySchedule::incremental(dir_id("acme"), 30))
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
        s.put_directory_schedule(&DirectorySchedule::incremental(dir_id("acme"), 30))
            .await
            .unwrap();
        let full = request("acme", SyncMode::Full);
        s.schedule_once(&full, T0).await.unwrap();
        s.delete_directory_schedule(&dir_id("acme")).await.unwrap();
        assert_eq!(s.due(T0), vec![full]);
    }
}
