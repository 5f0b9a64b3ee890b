//! The contract every [`Store`] adapter passes. Adapters call these from their own tests
//! (the embedded store directly, the DynamoDB store against moto), so the two cannot
//! drift. Each check uses directory ids derived from `tag`, so checks can share a store.

use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventType, TargetId, UserState,
};
use time::OffsetDateTime;

use crate::store::{LedgerAdvance, RefreshRequest, Store, StoreError, UserWrite};

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

fn user(dir: &DirectoryId, emp: &str, version: u64, first: &str) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse(emp).expect("valid employee id"),
        UserState::Active,
    );
    u.first_name = Some(first.to_string());
    u.version = version;
    u.refresh_fingerprint();
    u
}

fn event(u: &DirectoryUser, t: EventType) -> ChangeEvent {
    ChangeEvent::new(
        t,
        u.directory_id.clone(),
        u.id.as_str(),
        u.version,
        OffsetDateTime::UNIX_EPOCH,
        serde_json::to_value(u).expect("user serializes"),
    )
}

/// Directory writes are conditional on the version the writer read.
pub async fn directories_are_written_conditionally(store: &dyn Store, tag: &str) {
    let id = dir_id(tag, "dir");
    assert!(store.get_directory(&id).await.unwrap().is_none());
    let mut d = Directory::new(id.clone(), "acme", "secret-acme").unwrap();
    d.version = 1;
    store.put_directory(&d, None).await.unwrap();
    let err = store.put_directory(&d, None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "second create must conflict: {err}"
    );

    let mut d2 = d.clone();
    d2.version = 2;
    d2.subdomain = "acme2".into();
    store.put_directory(&d2, Some(1)).await.unwrap();
    let err = store.put_directory(&d2, Some(1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "stale write must conflict: {err}"
    );

    let got = store.get_directory(&id).await.unwrap().unwrap();
    assert_eq!(got, d2);
    let all = store.list_directories().await.unwrap();
    assert!(all.iter().any(|x| x.id == id));
}

/// User writes are conditional; a lost race is a typed conflict, never an overwrite.
pub async fn user_writes_are_conditional_on_version(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "users");
    let v1 = user(&dir, "1", 1, "Ada");
    store
        .write_user(&UserWrite {
            user: v1.clone(),
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap();
    let err = store
        .write_user(&UserWrite {
            user: v1.clone(),
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "double create must conflict: {err}"
    );

    let v2 = user(&dir, "1", 2, "Ida");
    store
        .write_user(&UserWrite {
            user: v2.clone(),
            expected_version: Some(1),
            events: vec![],
        })
        .await
        .unwrap();
    let stale = user(&dir, "1", 2, "Eve");
    let err = store
        .write_user(&UserWrite {
            user: stale,
            expected_version: Some(1),
            events: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "stale update must conflict: {err}"
    );

    let got = store
        .get_user(&dir, &v2.employee_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, v2);
}

/// Listing and the fingerprint projection return every user of the directory, in
/// employee-id order, and nothing of other directories.
pub async fn listings_are_complete_ordered_and_tenant_scoped(store: &dyn Store, tag: &str) {
    let a = dir_id(tag, "list-a");
    let b = dir_id(tag, "list-b");
    for emp in ["3", "1", "2"] {
        let u = user(&a, emp, 1, "A");
        store
            .write_user(&UserWrite {
                user: u,
                expected_version: None,
                events: vec![],
            })
            .await
            .unwrap();
    }
    let other = user(&b, "9", 1, "B");
    store
        .write_user(&UserWrite {
            user: other,
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap();

    let users = store.list_users(&a).await.unwrap();
    let ids: Vec<_> = users
        .iter()
        .map(|u| u.employee_id.as_str().to_string())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);

    let fps = store.user_fingerprints(&a).await.unwrap();
    assert_eq!(fps.len(), 3);
    for (fp, u) in fps.iter().zip(&users) {
        assert_eq!(fp.employee_id, u.employee_id);
        assert_eq!(fp.version, u.version);
        assert_eq!(fp.fingerprint, u.fingerprint);
        assert_eq!(fp.state, u.state);
    }
    assert_eq!(store.user_fingerprints(&b).await.unwrap().len(), 1);
    assert!(store
        .get_user(&b, &EmployeeId::parse("1").unwrap())
        .await
        .unwrap()
        .is_none());
}

/// Events are written with their user atomically and stay pending until marked published.
pub async fn outbox_events_are_atomic_with_the_user(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "outbox");
    let v1 = user(&dir, "5", 1, "Ada");
    let e1 = event(&v1, EventType::UserCreated);
    store
        .write_user(&UserWrite {
            user: v1.clone(),
            expected_version: None,
            events: vec![e1.clone()],
        })
        .await
        .unwrap();
    let v2 = user(&dir, "5", 2, "Ida");
    let e2 = event(&v2, EventType::UserUpdated);
    store
        .write_user(&UserWrite {
            user: v2.clone(),
            expected_version: Some(1),
            events: vec![e2.clone()],
        })
        .await
        .unwrap();

    // A losing write must leave no outbox entry behind.
    let loser = user(&dir, "5", 2, "Eve");
    let e_loser = event(&loser, EventType::UserDeleted);
    assert!(store
        .write_user(&UserWrite {
            user: loser,
            expected_version: Some(1),
            events: vec![e_loser]
        })
        .await
        .is_err());

    let pending = store.pending_events(&dir, 100).await.unwrap();
    assert_eq!(
        pending,
        vec![e1.clone(), e2.clone()],
        "pending events, oldest first"
    );
    assert_eq!(store.pending_events(&dir, 1).await.unwrap().len(), 1);

    store
        .mark_published(&dir, std::slice::from_ref(&e1.id))
        .await
        .unwrap();
    assert_eq!(
        store.pending_events(&dir, 100).await.unwrap(),
        vec![e2.clone()]
    );
    store
        .mark_published(&dir, &[e2.id.clone(), e1.id])
        .await
        .unwrap();
    assert!(store.pending_events(&dir, 100).await.unwrap().is_empty());
}

/// The ledger only moves forward.
pub async fn the_ledger_only_moves_forward(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "ledger");
    let t = TargetId::parse("app").unwrap();
    let other = TargetId::parse("scim").unwrap();
    assert_eq!(store.ledger_get(&dir, &t, "usr_1").await.unwrap(), None);
    assert_eq!(
        store.ledger_advance(&dir, &t, "usr_1", 2).await.unwrap(),
        LedgerAdvance::Advanced
    );
    assert_eq!(
        store.ledger_advance(&dir, &t, "usr_1", 1).await.unwrap(),
        LedgerAdvance::AlreadyAt { current: 2 }
    );
    assert_eq!(
        store.ledger_advance(&dir, &t, "usr_1", 2).await.unwrap(),
        LedgerAdvance::AlreadyAt { current: 2 }
    );
    assert_eq!(
        store.ledger_advance(&dir, &t, "usr_1", 3).await.unwrap(),
        LedgerAdvance::Advanced
    );
    assert_eq!(store.ledger_get(&dir, &t, "usr_1").await.unwrap(), Some(3));
    assert_eq!(store.ledger_get(&dir, &other, "usr_1").await.unwrap(), None);
}

fn emp(id: &str) -> EmployeeId {
    EmployeeId::parse(id).expect("valid employee id")
}

/// Refresh requests are one per employee, listed in id order, tenant-scoped, and a
/// clear never removes a request renewed after it was read.
pub async fn refresh_requests_are_deduplicated_and_cleared_only_when_unrenewed(
    store: &dyn Store,
    tag: &str,
) {
    let dir = dir_id(tag, "refresh");
    let other = dir_id(tag, "refresh-other");
    let t1 = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid instant");
    let t2 = t1 + time::Duration::seconds(30);
    assert!(store
        .pending_refresh_requests(&dir, 10)
        .await
        .unwrap()
        .is_empty());
    store
        .record_refresh_requests(&dir, &[emp("3"), emp("1"), emp("3")], t1)
        .await
        .unwrap();
    store
        .record_refresh_requests(&other, &[emp("9")], t1)
        .await
        .unwrap();
    let read = store.pending_refresh_requests(&dir, 10).await.unwrap();
    assert_eq!(
        read,
        vec![
            RefreshRequest {
                employee_id: emp("1"),
                requested_at: t1
            },
            RefreshRequest {
                employee_id: emp("3"),
                requested_at: t1
            },
        ],
        "one request per employee, in employee id order"
    );
    assert_eq!(
        store.pending_refresh_requests(&dir, 1).await.unwrap().len(),
        1
    );

    // Employee 3 is requested again while the poller works on what it read.
    store
        .record_refresh_requests(&dir, &[emp("3")], t2)
        .await
        .unwrap();
    store.clear_refresh_requests(&dir, &read).await.unwrap();
    assert_eq!(
        store.pending_refresh_requests(&dir, 10).await.unwrap(),
        vec![RefreshRequest {
            employee_id: emp("3"),
            requested_at: t2
        }],
        "the renewed request survives the clear"
    );
    assert_eq!(
        store
            .pending_refresh_requests(&other, 10)
            .await
            .unwrap()
            .len(),
        1,
        "another directory's requests are untouched"
    );
    let rest = store.pending_refresh_requests(&dir, 10).await.unwrap();
    store.clear_refresh_requests(&dir, &rest).await.unwrap();
    assert!(store
        .pending_refresh_requests(&dir, 10)
        .await
        .unwrap()
        .is_empty());
}

/// A receipt is recorded once per key and directory until it expires.
pub async fn receipts_are_recorded_once_until_they_expire(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "receipts");
    let other = dir_id(tag, "receipts-other");
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid instant");
    let expires = now + time::Duration::hours(24);
    assert!(!store.has_receipt(&dir, "abc", now).await.unwrap());
    assert!(store
        .record_receipt(&dir, "abc", now, expires)
        .await
        .unwrap());
    assert!(store.has_receipt(&dir, "abc", now).await.unwrap());
    assert!(
        !store
            .record_receipt(&dir, "abc", now, expires)
            .await
            .unwrap(),
        "the second receipt for a key is not the first"
    );
    assert!(
        !store.has_receipt(&other, "abc", now).await.unwrap(),
        "receipts are per directory"
    );
    assert!(store
        .record_receipt(&other, "abc", now, expires)
        .await
        .unwrap());

    // Past its expiry a receipt no longer counts, even before the TTL sweep removes it.
    let later = expires + time::Duration::seconds(1);
    assert!(!store.has_receipt(&dir, "abc", later).await.unwrap());
    assert!(store
        .record_receipt(&dir, "abc", later, later + time::Duration::hours(24))
        .await
        .unwrap());
}

/// Runs every check above.
pub async fn run_all(store: &dyn Store, tag: &str) {
    directories_are_written_conditionally(store, tag).await;
    user_writes_are_conditional_on_version(store, tag).await;
    listings_are_complete_ordered_and_tenant_scoped(store, tag).await;
    outbox_events_are_atomic_with_the_user(store, tag).await;
    the_ledger_only_moves_forward(store, tag).await;
    refresh_requests_are_deduplicated_and_cleared_only_when_unrenewed(store, tag).await;
    receipts_are_recorded_once_until_they_expire(store, tag).await;
    crate::contract_sync::run_all(store, tag).await;
    crate::contract_delivery::run_all(store, tag).await;
    crate::contract_audit::run_all(store, tag).await;
    crate::contract_setup_links::run_all(store, tag).await;
    crate::contract_purge::run_all(store, tag).await;
}
