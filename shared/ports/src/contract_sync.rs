//! Contract checks of [`crate::SyncStore`], run by [`crate::contract::run_all`].

use domain::{
    ChangeEvent, DirectoryId, DirectoryUser, EmployeeId, EventType, Group, RunId, RunStatus,
    SyncMode, SyncRun, UserState,
};
use time::{Duration, OffsetDateTime};

use crate::store::{Lifecycle, Store, StoreError, UserWrite};
use crate::sync_store::{GroupWrite, QuarantinedEvent};

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).expect("valid instant")
}

fn group(dir: &DirectoryId, name: &str, version: u64) -> Group {
    let mut g = Group::new(dir.clone(), "department", name);
    g.version = version;
    g.refresh_fingerprint();
    g
}

fn group_event(g: &Group, t: EventType) -> ChangeEvent {
    ChangeEvent::new(
        t,
        g.directory_id.clone(),
        g.id.as_str(),
        g.version,
        at(0),
        serde_json::to_value(g).expect("group serializes"),
    )
}

/// Quarantining takes an event out of the outbox (the later ones stay, in order) and
/// keeps it with its reason; doing it twice keeps one entry.
pub async fn quarantined_events_leave_the_outbox_and_are_kept_with_their_reason(
    store: &dyn Store,
    tag: &str,
) {
    let dir = dir_id(tag, "quarantine");
    let events: Vec<ChangeEvent> = (1..=3)
        .map(|v| {
            ChangeEvent::new(
                EventType::DirectorySyncCompleted,
                dir.clone(),
                dir.as_str(),
                v,
                at(v as i64),
                serde_json::json!({"n": v}),
            )
        })
        .collect();
    store.append_events(&dir, &events).await.expect("append");
    let q = QuarantinedEvent {
        event: events[0].clone(),
        reason: "EntryTooLarge: 300000 bytes".into(),
        quarantined_at: at(10),
    };
    store
        .quarantine_events(&dir, std::slice::from_ref(&q))
        .await
        .expect("quarantine");
    store
        .quarantine_events(&dir, std::slice::from_ref(&q))
        .await
        .expect("quarantining again is harmless");
    let pending = store.pending_events(&dir, 10).await.expect("pending");
    assert_eq!(
        pending.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3],
        "the quarantined event left the outbox, the later ones stay in order"
    );
    let kept = store.list_quarantined(&dir, 10).await.expect("list");
    assert_eq!(kept, vec![q], "kept once, with its reason and time");
    assert!(store
        .list_quarantined(&dir_id(tag, "quarantine-other"), 10)
        .await
        .expect("list other")
        .is_empty());
    assert_eq!(
        store.list_quarantined(&dir, 0).await.expect("limit").len(),
        0
    );
}

/// Group writes are conditional on the version and carry their events atomically.
pub async fn group_writes_are_conditional_and_carry_their_events(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "groups");
    let sales = group(&dir, "Sales", 1);
    let created = group_event(&sales, EventType::GroupCreated);
    store
        .write_group(&GroupWrite {
            group: sales.clone(),
            expected_version: None,
            events: vec![created.clone()],
        })
        .await
        .expect("first group write");
    let again = store
        .write_group(&GroupWrite {
            group: sales.clone(),
            expected_version: None,
            events: vec![],
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })));

    let mut gone = sales.clone();
    gone.deleted = true;
    gone.version = 2;
    gone.refresh_fingerprint();
    let deleted = group_event(&gone, EventType::GroupDeleted);
    store
        .write_group(&GroupWrite {
            group: gone.clone(),
            expected_version: Some(1),
            events: vec![deleted.clone()],
        })
        .await
        .expect("second group write");
    let stale = store
        .write_group(&GroupWrite {
            group: gone.clone(),
            expected_version: Some(1),
            events: vec![],
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));

    let ops = group(&dir, "Ops", 1);
    store
        .write_group(&GroupWrite {
            group: ops.clone(),
            expected_version: None,
            events: vec![],
        })
        .await
        .expect("other group");
    let mut listed = store.list_groups(&dir).await.expect("list groups");
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![gone, ops];
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, want);
    assert!(store
        .list_groups(&dir_id(tag, "no-groups"))
        .await
        .unwrap()
        .is_empty());

    let pending = store.pending_events(&dir, 10).await.unwrap();
    let ids: Vec<_> = pending.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, vec![created.id, deleted.id]);
}

/// Appended directory events go to the back of the outbox.
pub async fn appended_events_queue_after_earlier_ones(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "append");
    let g = group(&dir, "Sales", 1);
    let first = group_event(&g, EventType::GroupCreated);
    store
        .write_group(&GroupWrite {
            group: g.clone(),
            expected_version: None,
            events: vec![first.clone()],
        })
        .await
        .unwrap();
    let completed = ChangeEvent::new(
        EventType::DirectorySyncCompleted,
        dir.clone(),
        dir.as_str(),
        1,
        at(1),
        serde_json::json!({"runId": "r"}),
    );
    store
        .append_events(&dir, std::slice::from_ref(&completed))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .pending_events(&dir, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![first.id, completed.id]);
}

/// Runs are stored whole, replaced by id, and listed newest first.
pub async fn runs_are_listed_newest_first(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "runs");
    let mut runs = Vec::new();
    for i in 0..4 {
        let mut run = SyncRun::start(
            RunId::new(at(i * 60), 7),
            dir.clone(),
            SyncMode::Full,
            at(i * 60),
        );
        run.counts.seen = i as u64;
        run.skip("42", "no work email");
        store.put_run(&run).await.unwrap();
        runs.push(run);
    }
    runs[3].status = RunStatus::Completed;
    runs[3].finished_at = Some(at(200));
    store.put_run(&runs[3]).await.unwrap();

    let listed = store.list_runs(&dir, 3).await.unwrap();
    assert_eq!(
        listed,
        vec![runs[3].clone(), runs[2].clone(), runs[1].clone()]
    );
    assert_eq!(
        store.get_run(&dir, &runs[0].id).await.unwrap(),
        Some(runs[0].clone())
    );
    assert_eq!(
        store
            .get_run(&dir, &RunId::new(at(9_999), 1))
            .await
            .unwrap(),
        None
    );
    assert!(store.list_runs(&dir, 0).await.unwrap().is_empty());
}

/// One holder at a time until the lease expires; only the holder releases it.
pub async fn the_lease_excludes_other_holders_until_it_expires(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "lease");
    let other = dir_id(tag, "lease-other");
    assert!(store.acquire_lease(&dir, "a", at(0), at(60)).await.unwrap());
    assert!(!store
        .acquire_lease(&dir, "b", at(10), at(70))
        .await
        .unwrap());
    assert!(store
        .acquire_lease(&other, "b", at(10), at(70))
        .await
        .unwrap());
    // The holder may renew.
    assert!(store
        .acquire_lease(&dir, "a", at(20), at(120))
        .await
        .unwrap());
    // A stranger's release is ignored.
    store.release_lease(&dir, "b").await.unwrap();
    assert!(!store
        .acquire_lease(&dir, "b", at(30), at(90))
        .await
        .unwrap());
    // Expired leases are free.
    assert!(store
        .acquire_lease(&dir, "b", at(120) + Duration::seconds(1), at(300))
        .await
        .unwrap());
    // The previous holder's late release does not free the new holder's lease.
    store.release_lease(&dir, "a").await.unwrap();
    assert!(!store
        .acquire_lease(&dir, "c", at(130), at(400))
        .await
        .unwrap());
    store.release_lease(&dir, "b").await.unwrap();
    assert!(store
        .acquire_lease(&dir, "c", at(130), at(400))
        .await
        .unwrap());
}

/// A checkpoint is replaced by the next and gone once cleared.
pub async fn checkpoints_are_replaced_and_cleared(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "checkpoint");
    assert_eq!(store.get_checkpoint(&dir).await.unwrap(), None);
    store.put_checkpoint(&dir, r#"{"page":2}"#).await.unwrap();
    store.put_checkpoint(&dir, r#"{"page":3}"#).await.unwrap();
    assert_eq!(
        store.get_checkpoint(&dir).await.unwrap().as_deref(),
        Some(r#"{"page":3}"#)
    );
    store.clear_checkpoint(&dir).await.unwrap();
    assert_eq!(store.get_checkpoint(&dir).await.unwrap(), None);
    // Clearing nothing is fine.
    store.clear_checkpoint(&dir).await.unwrap();
}

/// The fingerprint projection carries the lifecycle inputs the daily date sweep needs.
pub async fn fingerprints_carry_the_lifecycle_inputs(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "lifecycle");
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse("5").expect("valid id"),
        UserState::Pending,
    );
    u.employment_status = Some("Inactive".into());
    u.hire_date = Some(time::macros::date!(2030 - 01 - 15));
    u.version = 1;
    u.refresh_fingerprint();
    let mut plain = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse("6").expect("valid id"),
        UserState::Active,
    );
    plain.version = 1;
    plain.refresh_fingerprint();
    for user in [&u, &plain] {
        store
            .write_user(&UserWrite {
                user: user.clone(),
                expected_version: None,
                events: vec![],
            })
            .await
            .unwrap();
    }
    let fps = store.user_fingerprints(&dir).await.unwrap();
    assert_eq!(fps.len(), 2);
    assert_eq!(fps[0].lifecycle, Lifecycle::of(&u));
    assert_eq!(fps[0].state, UserState::Pending);
    assert_eq!(fps[1].lifecycle, Lifecycle::default());
}

/// Runs every sync-store check.
pub async fn run_all(store: &dyn Store, tag: &str) {
    group_writes_are_conditional_and_carry_their_events(store, tag).await;
    appended_events_queue_after_earlier_ones(store, tag).await;
    quarantined_events_leave_the_outbox_and_are_kept_with_their_reason(store, tag).await;
    runs_are_listed_newest_first(store, tag).await;
    the_lease_excludes_other_holders_until_it_expires(store, tag).await;
    checkpoints_are_replaced_and_cleared(store, tag).await;
    fingerprints_carry_the_lifecycle_inputs(store, tag).await;
}
