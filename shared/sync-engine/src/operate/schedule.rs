//! A directory's settings decide its recurring schedule; this module turns one into
//! the other and makes the scheduler hold it.
//!
//! | state   | schedule | why |
//! |---|---|---|
//! | active  | enabled  | synced on schedule |
//! | held    | enabled  | a held directory is still expected to sync (it goes stale, see `Directory::is_stale`); each run sees the hold and records it, and releasing the hold needs no scheduler call |
//! | paused  | disabled | an operator stopped it; resuming re-enables the same schedule |
//! | revoked | none     | disconnected for good; the schedule is deleted |
//!
//! Every run is requested as incremental: the poller upgrades it to a full
//! reconciliation when one is due (no cursor, the daily full, a checkpoint waiting).

use domain::{Directory, DirectoryState, SyncMode, SyncRequest};
use ports::{DirectorySchedule, Scheduler, SchedulerError};

/// Minutes between runs when a directory's setting is 0 (not a usable interval).
pub const DEFAULT_EVERY_MINUTES: u32 = 30;

/// Longest flexible window given to any directory.
pub const FLEXIBLE_WINDOW_CAP_MINUTES: u32 = 15;

/// The recurring schedule `directory` should have, or `None` when it should have none.
///
/// The flexible window is half the interval, at most [`FLEXIBLE_WINDOW_CAP_MINUTES`]:
/// wide enough that many directories on the same interval do not call BambooHR (and
/// start Lambdas) in the same second, and short enough that runs never overlap and
/// staleness (twice the interval by default) is not reached by the window alone.
pub fn directory_schedule(directory: &Directory) -> Option<DirectorySchedule> {
    let enabled = match directory.state {
        DirectoryState::Active | DirectoryState::Held => true,
        DirectoryState::Paused => false,
        DirectoryState::Revoked => return None,
    };
    let every_minutes = match directory.schedule.incremental_every_minutes {
        0 => DEFAULT_EVERY_MINUTES,
        m => m,
    };
    Some(DirectorySchedule {
        directory_id: directory.id.clone(),
        every_minutes,
        flexible_window_minutes: (every_minutes / 2).min(FLEXIBLE_WINDOW_CAP_MINUTES),
        enabled,
        request: SyncRequest {
            directory_id: directory.id.clone(),
            mode: SyncMode::Incremental,
        },
    })
}

/// Makes the scheduler hold what [`directory_schedule`] says: puts the schedule, or
/// deletes it for a revoked directory. Safe to call after every change of a
/// directory (both calls are idempotent). Returns the schedule now in place.
pub async fn reconcile_directory_schedule(
    scheduler: &dyn Scheduler,
    directory: &Directory,
) -> Result<Option<DirectorySchedule>, SchedulerError> {
    match directory_schedule(directory) {
        Some(schedule) => {
            scheduler.put_directory_schedule(&schedule).await?;
            Ok(Some(schedule))
        }
        None => {
            scheduler.delete_directory_schedule(&directory.id).await?;
            tracing::info!(directory = %directory.id, "revoked directory's schedule removed");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::DirectoryId;
    use embedded_adapters::InProcessScheduler;
    use time::macros::datetime;

    fn directory(state: DirectoryState, every: u32) -> Directory {
        let mut d = Directory::new(DirectoryId::parse("acme").unwrap(), "acme", "secret-acme")
            .expect("valid directory");
        d.state = state;
        d.schedule.incremental_every_minutes = every;
        d
    }

    #[test]
    fn an_active_directory_runs_incrementally_on_its_interval_with_a_bounded_window() {
        let s = directory_schedule(&directory(DirectoryState::Active, 30)).unwrap();
        assert_eq!(s.every_minutes, 30);
        assert_eq!(s.flexible_window_minutes, 15);
        assert!(s.enabled);
        assert_eq!(s.request.mode, SyncMode::Incremental);
        assert_eq!(s.request.directory_id, s.directory_id);
        assert!(s.validate().is_ok());

        let hourly = directory_schedule(&directory(DirectoryState::Active, 60)).unwrap();
        assert_eq!(hourly.flexible_window_minutes, 15);
        let often = directory_schedule(&directory(DirectoryState::Active, 10)).unwrap();
        assert_eq!(often.flexible_window_minutes, 5);
        let every_minute = directory_schedule(&directory(DirectoryState::Active, 1)).unwrap();
        assert_eq!(every_minute.flexible_window_minutes, 0);
    }

    #[test]
    fn every_interval_gives_a_schedule_the_scheduler_accepts() {
        for every in 0..=2000 {
            let s = directory_schedule(&directory(DirectoryState::Active, every)).unwrap();
            assert!(s.validate().is_ok(), "every {every}: {:?}", s.validate());
        }
    }

    #[test]
    fn a_zero_interval_falls_back_to_the_default() {
        let s = directory_schedule(&directory(DirectoryState::Active, 0)).unwrap();
        assert_eq!(s.every_minutes, DEFAULT_EVERY_MINUTES);
    }

    #[test]
    fn held_directories_keep_running_paused_ones_are_disabled_revoked_ones_have_none() {
        let held = directory_schedule(&directory(DirectoryState::Held, 30)).unwrap();
        assert!(held.enabled);
        let paused = directory_schedule(&directory(DirectoryState::Paused, 30)).unwrap();
        assert!(!paused.enabled);
        assert_eq!(paused.every_minutes, 30);
        assert_eq!(
            directory_schedule(&directory(DirectoryState::Revoked, 30)),
            None
        );
    }

    #[tokio::test]
    async fn reconciling_follows_the_directory_through_pause_resume_and_revocation() {
        let scheduler = InProcessScheduler::new();
        let id = DirectoryId::parse("acme").unwrap();
        let t0 = datetime!(2026-11-23 10:00 UTC);

        let active = directory(DirectoryState::Active, 30);
        let put = reconcile_directory_schedule(&scheduler, &active)
            .await
            .unwrap();
        assert_eq!(
            scheduler.get_directory_schedule(&id).await.unwrap(),
            put.clone()
        );
        assert_eq!(scheduler.due(t0).len(), 1);

        let paused = directory(DirectoryState::Paused, 30);
        reconcile_directory_schedule(&scheduler, &paused)
            .await
            .unwrap();
        let held_back = scheduler
            .get_directory_schedule(&id)
            .await
            .unwrap()
            .unwrap();
        assert!(!held_back.enabled);
        assert!(scheduler.due(t0 + time::Duration::hours(2)).is_empty());

        reconcile_directory_schedule(&scheduler, &active)
            .await
            .unwrap();
        assert_eq!(scheduler.due(t0 + time::Duration::hours(3)).len(), 1);

        let revoked = directory(DirectoryState::Revoked, 30);
        let gone = reconcile_directory_schedule(&scheduler, &revoked)
            .await
            .unwrap();
        assert_eq!(gone, None);
        assert_eq!(scheduler.get_directory_schedule(&id).await.unwrap(), None);
        assert!(scheduler.due(t0 + time::Duration::hours(4)).is_empty());
        // Revoking twice (a retried operator command) is fine.
        reconcile_directory_schedule(&scheduler, &revoked)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_changed_interval_replaces_the_schedule() {
        let scheduler = InProcessScheduler::new();
        reconcile_directory_schedule(&scheduler, &directory(DirectoryState::Active, 30))
            .await
            .unwrap();
        reconcile_directory_schedule(&scheduler, &directory(DirectoryState::Active, 120))
            .await
            .unwrap();
        let s = scheduler
            .get_directory_schedule(&DirectoryId::parse("acme").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.every_minutes, s.flexible_window_minutes), (120, 15));
    }
}
