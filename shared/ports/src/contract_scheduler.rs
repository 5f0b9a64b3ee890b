//! The contract every [`Scheduler`] adapter passes: the in-process scheduler in its unit
//! tests, EventBridge Scheduler against moto. Each check uses directory ids derived from
//! `tag`, so checks can share one scheduler.

use domain::{DirectoryId, SyncMode, SyncRequest};
use time::{Duration, OffsetDateTime};

use crate::scheduler::{DirectorySchedule, OnceOutcome, Scheduler, SchedulerError};

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

/// A directory id of the maximum length (64), ending in `last`.
fn long_id(tag: &str, last: char) -> DirectoryId {
    let mut s = format!("{tag}-");
    while s.len() < 63 {
        s.push('x');
    }
    s.push(last);
    DirectoryId::parse(s).expect("64 characters is the longest valid id")
}

/// Five seconds into a minute an hour from now, so `+ 10 s` stays in the same minute
/// and every adapter accepts it as a future instant.
fn next_hour_minute() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() + Duration::hours(1);
    t.replace_second(5)
        .and_then(|t| t.replace_nanosecond(0))
        .expect("5 s and 0 ns are valid")
}

/// Putting a schedule twice leaves one; a later put replaces every setting; what is
/// read back is what was put.
pub async fn directory_schedules_are_put_idempotently_and_read_back(
    scheduler: &dyn Scheduler,
    tag: &str,
) {
    let id = dir_id(tag, "put");
    assert_eq!(scheduler.get_directory_schedule(&id).await.unwrap(), None);

    let first = DirectorySchedule {
        flexible_window_minutes: 15,
        ..DirectorySchedule::incremental(id.clone(), 30)
    };
    scheduler.put_directory_schedule(&first).await.unwrap();
    scheduler.put_directory_schedule(&first).await.unwrap();
    assert_eq!(
        scheduler.get_directory_schedule(&id).await.unwrap(),
        Some(first.clone())
    );

    let paused = DirectorySchedule {
        every_minutes: 1,
        flexible_window_minutes: 0,
        enabled: false,
        request: SyncRequest {
            directory_id: id.clone(),
            mode: SyncMode::Full,
        },
        ..first
    };
    scheduler.put_directory_schedule(&paused).await.unwrap();
    assert_eq!(
        scheduler.get_directory_schedule(&id).await.unwrap(),
        Some(paused)
    );
}

/// Deleting removes the schedule; deleting an absent one succeeds.
pub async fn deleting_a_directory_schedule_is_idempotent(scheduler: &dyn Scheduler, tag: &str) {
    let id = dir_id(tag, "delete");
    scheduler.delete_directory_schedule(&id).await.unwrap();
    scheduler
        .put_directory_schedule(&DirectorySchedule::incremental(id.clone(), 60))
        .await
        .unwrap();
    scheduler.delete_directory_schedule(&id).await.unwrap();
    assert_eq!(scheduler.get_directory_schedule(&id).await.unwrap(), None);
    scheduler.delete_directory_schedule(&id).await.unwrap();
}

/// Each directory has its own schedule, also for the longest ids, which differ only in
/// their last character.
pub async fn schedules_belong_to_one_directory_each(scheduler: &dyn Scheduler, tag: &str) {
    let a = long_id(tag, 'a');
    let b = long_id(tag, 'b');
    let short = dir_id(tag, "short");
    for (id, every) in [(&a, 5), (&b, 10), (&short, 15)] {
        scheduler
            .put_directory_schedule(&DirectorySchedule::incremental(id.clone(), every))
            .await
            .unwrap();
    }
    scheduler.delete_directory_schedule(&a).await.unwrap();
    assert_eq!(scheduler.get_directory_schedule(&a).await.unwrap(), None);
    let got_b = scheduler.get_directory_schedule(&b).await.unwrap().unwrap();
    assert_eq!((got_b.directory_id, got_b.every_minutes), (b, 10));
    let got_short = scheduler
        .get_directory_schedule(&short)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_short.every_minutes, 15);
}

/// A schedule that cannot run sensibly is refused before it reaches the scheduler.
pub async fn invalid_schedules_are_refused(scheduler: &dyn Scheduler, tag: &str) {
    let id = dir_id(tag, "invalid");
    let never = DirectorySchedule::incremental(id.clone(), 0);
    let err = scheduler.put_directory_schedule(&never).await.unwrap_err();
    assert!(matches!(err, SchedulerError::Invalid { .. }), "{err}");
    assert_eq!(scheduler.get_directory_schedule(&id).await.unwrap(), None);
}

/// One-time runs for the same directory, mode and minute collapse into the first; any
/// other directory, mode or minute gets its own; none of them is the directory's
/// recurring schedule.
pub async fn one_time_runs_collapse_per_directory_mode_and_minute(
    scheduler: &dyn Scheduler,
    tag: &str,
) {
    let id = dir_id(tag, "once");
    let full = SyncRequest {
        directory_id: id.clone(),
        mode: SyncMode::Full,
    };
    let targeted = SyncRequest {
        mode: SyncMode::Targeted,
        ..full.clone()
    };
    let at = next_hour_minute();
    let created = OnceOutcome::Created;
    let again = OnceOutcome::AlreadyScheduled;

    assert_eq!(scheduler.schedule_once(&full, at).await.unwrap(), created);
    assert_eq!(scheduler.schedule_once(&full, at).await.unwrap(), again);
    let later_same_minute = at + Duration::seconds(10);
    assert_eq!(
        scheduler
            .schedule_once(&full, later_same_minute)
            .await
            .unwrap(),
        again
    );
    assert_eq!(
        scheduler.schedule_once(&targeted, at).await.unwrap(),
        created
    );
    let next_minute = at + Duration::minutes(1);
    assert_eq!(
        scheduler.schedule_once(&full, next_minute).await.unwrap(),
        created
    );
    let long = SyncRequest {
        directory_id: long_id(tag, 'o'),
        mode: SyncMode::Full,
    };
    assert_eq!(scheduler.schedule_once(&long, at).await.unwrap(), created);
    assert_eq!(scheduler.schedule_once(&long, at).await.unwrap(), again);

    assert_eq!(scheduler.get_directory_schedule(&id).await.unwrap(), None);
    scheduler.delete_directory_schedule(&id).await.unwrap();
}

/// Every check above, in order, on one scheduler.
pub async fn run_all(scheduler: &dyn Scheduler, tag: &str) {
    directory_schedules_are_put_idempotently_and_read_back(scheduler, tag).await;
    deleting_a_directory_schedule_is_idempotent(scheduler, tag).await;
    schedules_belong_to_one_directory_each(scheduler, tag).await;
    invalid_schedules_are_refused(scheduler, tag).await;
    one_time_runs_collapse_per_directory_mode_and_minute(scheduler, tag).await;
}
