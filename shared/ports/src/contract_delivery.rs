//! Contract checks of [`crate::DeliveryStore`], run by [`crate::contract::run_all`].

use domain::{DirectoryId, EventId, EventType, TargetId};
use time::{Duration, OffsetDateTime};

use crate::delivery_store::{BreakerState, DeliveryQuery, DeliveryRecord, DeliveryStatus};
use crate::store::Store;

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

fn target(id: &str) -> TargetId {
    TargetId::parse(id).expect("contract target ids are valid")
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).expect("valid timestamp")
}

fn record(dir: &DirectoryId, t: &str, object: &str, status: DeliveryStatus) -> DeliveryRecord {
    DeliveryRecord {
        directory_id: dir.clone(),
        target_id: target(t),
        object_id: object.to_string(),
        event_id: EventId::derive(dir, EventType::UserUpdated.as_str(), object, 2),
        version: 2,
        status,
        attempts: 1,
        status_codes: vec![],
        last_error: None,
        skipped_reason: None,
        first_attempt_at: at(0),
        last_attempt_at: at(0),
        next_attempt_at: None,
        gate_exit: false,
    }
}

/// The delivery log keeps one record per (target, object), replaced at each attempt,
/// and lists a directory's records by target, by object and by status, never another
/// directory's.
pub async fn the_delivery_log_is_queryable_per_directory_target_and_user(
    store: &dyn Store,
    tag: &str,
) {
    let dir = dir_id(tag, "dlog");
    let other = dir_id(tag, "dlog-other");
    assert!(store
        .get_delivery(&dir, &target("app"), "usr_1")
        .await
        .unwrap()
        .is_none());

    let mut retrying = record(&dir, "app", "usr_1", DeliveryStatus::Retrying);
    retrying.attempts = 2;
    retrying.push_status(503);
    retrying.push_status(429);
    retrying.last_error = Some("HTTP 429".into());
    retrying.next_attempt_at = Some(at(300));
    store.put_delivery(&retrying).await.unwrap();
    assert_eq!(
        store
            .get_delivery(&dir, &target("app"), "usr_1")
            .await
            .unwrap(),
        Some(retrying.clone())
    );

    let mut delivered = retrying.clone();
    delivered.status = DeliveryStatus::Delivered;
    delivered.attempts = 3;
    delivered.push_status(200);
    delivered.next_attempt_at = None;
    delivered.last_attempt_at = at(400);
    store.put_delivery(&delivered).await.unwrap();

    let mut skipped = record(&dir, "lms", "usr_1", DeliveryStatus::Skipped);
    skipped.skipped_reason = Some("no work email".into());
    store.put_delivery(&skipped).await.unwrap();
    let app_2 = record(&dir, "app", "usr_2", DeliveryStatus::Failed);
    store.put_delivery(&app_2).await.unwrap();
    store
        .put_delivery(&record(&other, "app", "usr_1", DeliveryStatus::Delivered))
        .await
        .unwrap();

    let all = store
        .list_deliveries(&dir, &DeliveryQuery::default())
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![delivered.clone(), app_2.clone(), skipped.clone()],
        "one record per (target, object), ordered by target then object, own directory only"
    );
    let app = store
        .list_deliveries(
            &dir,
            &DeliveryQuery {
                target: Some(target("app")),
                ..DeliveryQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(app, vec![delivered.clone(), app_2.clone()]);
    let user_1 = store
        .list_deliveries(
            &dir,
            &DeliveryQuery {
                object_id: Some("usr_1".into()),
                ..DeliveryQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(user_1, vec![delivered.clone(), skipped.clone()]);
    let failed = store
        .list_deliveries(
            &dir,
            &DeliveryQuery {
                status: Some(DeliveryStatus::Failed),
                ..DeliveryQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failed, vec![app_2]);
    assert_eq!(delivered.status_codes, vec![503, 429, 200]);
}

/// A user's account id at a target is remembered, replaced and forgotten per
/// (directory, target, user).
pub async fn target_account_ids_are_kept_per_target_and_user(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "accounts");
    let scim = target("scim");
    assert_eq!(
        store
            .get_target_account(&dir, &scim, "usr_1")
            .await
            .unwrap(),
        None
    );
    store
        .put_target_account(&dir, &scim, "usr_1", "2819c223-7f76")
        .await
        .unwrap();
    store
        .put_target_account(&dir, &target("scim-b"), "usr_1", "other")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_target_account(&dir, &scim, "usr_1")
            .await
            .unwrap()
            .as_deref(),
        Some("2819c223-7f76")
    );
    store
        .put_target_account(&dir, &scim, "usr_1", "new-id")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_target_account(&dir, &scim, "usr_1")
            .await
            .unwrap()
            .as_deref(),
        Some("new-id")
    );
    store
        .delete_target_account(&dir, &scim, "usr_1")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_target_account(&dir, &scim, "usr_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_target_account(&dir, &target("scim-b"), "usr_1")
            .await
            .unwrap()
            .as_deref(),
        Some("other")
    );
    assert_eq!(
        store
            .get_target_account(&dir_id(tag, "accounts-other"), &scim, "usr_1")
            .await
            .unwrap(),
        None
    );
}

/// A breaker is closed until written, and reads back as written.
pub async fn circuit_breakers_are_closed_until_written(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "breaker");
    let t = target("flaky");
    assert_eq!(
        store.get_breaker(&dir, &t).await.unwrap(),
        BreakerState::default()
    );
    let open = BreakerState {
        consecutive_failures: 5,
        open_until: Some(at(0) + Duration::minutes(2)),
    };
    store.put_breaker(&dir, &t, &open).await.unwrap();
    let got = store.get_breaker(&dir, &t).await.unwrap();
    assert_eq!(got, open);
    assert!(got.is_open(at(60)));
    assert!(!got.is_open(at(121)));
    store
        .put_breaker(&dir, &t, &BreakerState::default())
        .await
        .unwrap();
    assert_eq!(
        store.get_breaker(&dir, &t).await.unwrap(),
        BreakerState::default()
    );
    assert_eq!(
        store.get_breaker(&dir, &target("other")).await.unwrap(),
        BreakerState::default()
    );
}

/// Runs every delivery-store check.
pub async fn run_all(store: &dyn Store, tag: &str) {
    the_delivery_log_is_queryable_per_directory_target_and_user(store, tag).await;
    target_account_ids_are_kept_per_target_and_user(store, tag).await;
    circuit_breakers_are_closed_until_written(store, tag).await;
}
