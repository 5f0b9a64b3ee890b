//! `DynamoStore` beyond the shared contract: the fingerprint projection comes from the
//! sparse index, listings page past DynamoDB's 1 MB pages, limits and corrupt items are
//! typed errors that never echo stored values, and consumed capacity is counted.

use crate::common;

use std::collections::HashMap;

use aws_adapters::{create_table, DynamoStore, FINGERPRINT_INDEX, MAX_EVENTS_PER_WRITE};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventType, UserState,
};
use ports::{Store, StoreError, UserWrite};
use time::OffsetDateTime;

fn dir(id: &str) -> DirectoryId {
    DirectoryId::parse(id).unwrap()
}

fn user(d: &DirectoryId, emp: &str, version: u64, first: &str, state: UserState) -> DirectoryUser {
    let mut u = DirectoryUser::new(d.clone(), EmployeeId::parse(emp).unwrap(), state);
    u.first_name = Some(first.to_string());
    u.version = version;
    u.refresh_fingerprint();
    u
}

fn event(u: &DirectoryUser, n: u64) -> ChangeEvent {
    ChangeEvent::new(
        EventType::UserUpdated,
        u.directory_id.clone(),
        format!("{}-{n}", u.id),
        u.version,
        OffsetDateTime::UNIX_EPOCH,
        serde_json::json!({"n": n}),
    )
}

async fn create(store: &DynamoStore, u: &DirectoryUser) {
    store
        .write_user(&UserWrite {
            user: u.clone(),
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap();
}

/// Reads the index directly, as DynamoDB stores it.
async fn index_entries(
    store: &DynamoStore,
    partition: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    store
        .client()
        .query()
        .table_name(store.table())
        .index_name(FINGERPRINT_INDEX)
        .key_condition_expression("gsi1pk = :p")
        .expression_attribute_values(":p", AttributeValue::S(partition.into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

#[tokio::test]
async fn fingerprints_are_served_by_the_index_and_follow_updates() {
    let store = common::store().await;
    let d = dir("fp");
    for emp in ["10", "2", "3"] {
        create(&store, &user(&d, emp, 1, "Ada", UserState::Active)).await;
    }
    // A directory item must not leak into a directory's fingerprint partition.
    store
        .put_directory(&Directory::new(d.clone(), "fp", "s").unwrap(), None)
        .await
        .unwrap();

    // The index holds the projection only: keys, version, fp, state, lc — never `data`.
    let entries = index_entries(&store, "FP#fp").await;
    assert_eq!(entries.len(), 3);
    for e in &entries {
        let mut attrs: Vec<&str> = e.keys().map(String::as_str).collect();
        attrs.sort_unstable();
        assert_eq!(
            attrs,
            ["fp", "gsi1pk", "gsi1sk", "lc", "pk", "sk", "state", "version"]
        );
    }

    let updated = user(&d, "2", 2, "Ida", UserState::Inactive);
    store
        .write_user(&UserWrite {
            user: updated.clone(),
            expected_version: Some(1),
            events: vec![],
        })
        .await
        .unwrap();

    let fps = store.user_fingerprints(&d).await.unwrap();
    let ids: Vec<&str> = fps.iter().map(|f| f.employee_id.as_str()).collect();
    // Employee-id order is the id's byte order, as in list_users.
    assert_eq!(ids, ["10", "2", "3"]);
    let two = &fps[1];
    assert_eq!(two.version, 2);
    assert_eq!(two.fingerprint, updated.fingerprint);
    assert_eq!(two.state, UserState::Inactive);
    assert_ne!(fps[0].fingerprint, two.fingerprint);

    let users = store.list_users(&d).await.unwrap();
    let listed: Vec<&str> = users.iter().map(|u| u.employee_id.as_str()).collect();
    assert_eq!(listed, ids);
    assert_eq!(users[1], updated);
}

#[tokio::test]
async fn listings_page_past_one_megabyte() {
    let store = common::store().await;
    let d = dir("big");
    let padding = "x".repeat(40 * 1024);
    let total = 40; // about 1.6 MB of user items: at least two Query pages
    for i in 0..total {
        let mut u = user(&d, &format!("{i:03}"), 1, "A", UserState::Active);
        u.raw_attributes
            .insert("padding".into(), serde_json::Value::String(padding.clone()));
        create(&store, &u).await;
    }
    // One Query page does not hold them all...
    let first_page = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("DIR#big".into()))
        .send()
        .await
        .unwrap();
    assert!(first_page.last_evaluated_key.is_some());
    assert!(first_page.items().len() < total);
    // ...so a complete listing proves the store follows the pages.
    let users = store.list_users(&d).await.unwrap();
    assert_eq!(users.len(), total);
    assert!(users
        .windows(2)
        .all(|w| w[0].employee_id < w[1].employee_id));
    assert_eq!(store.user_fingerprints(&d).await.unwrap().len(), total);
}

#[tokio::test]
async fn directories_are_listed_from_the_index_in_id_order() {
    let store = common::store().await;
    for id in ["zeta", "alpha", "mid"] {
        let mut d = Directory::new(dir(id), id, &format!("secret-{id}")).unwrap();
        d.version = 1;
        store.put_directory(&d, None).await.unwrap();
        // Users of a directory are not directories.
        create(&store, &user(&d.id, "1", 1, "A", UserState::Active)).await;
    }
    let listed: Vec<String> = store
        .list_directories()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(listed, ["alpha", "mid", "zeta"]);
}

#[tokio::test]
async fn a_write_with_too_many_events_is_refused_whole() {
    let store = common::store().await;
    let d = dir("many");
    let u = user(&d, "1", 1, "A", UserState::Active);
    let events: Vec<ChangeEvent> = (0..=MAX_EVENTS_PER_WRITE as u64)
        .map(|n| event(&u, n))
        .collect();
    let err = store
        .write_user(&UserWrite {
            user: u.clone(),
            expected_version: None,
            events,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exceed"), "{err}");
    assert!(store.get_user(&d, &u.employee_id).await.unwrap().is_none());

    // The maximum itself fits in one transaction, in order.
    let events: Vec<ChangeEvent> = (0..MAX_EVENTS_PER_WRITE as u64)
        .map(|n| event(&u, n))
        .collect();
    store
        .write_user(&UserWrite {
            user: u.clone(),
            expected_version: None,
            events: events.clone(),
        })
        .await
        .unwrap();
    assert_eq!(store.pending_events(&d, 1000).await.unwrap(), events);
}

#[tokio::test]
async fn duplicate_events_in_one_write_are_stored_once() {
    let store = common::store().await;
    let d = dir("dup");
    let u = user(&d, "1", 1, "A", UserState::Active);
    let e = event(&u, 1);
    store
        .write_user(&UserWrite {
            user: u,
            expected_version: None,
            events: vec![e.clone(), e.clone()],
        })
        .await
        .unwrap();
    assert_eq!(store.pending_events(&d, 10).await.unwrap(), vec![e.clone()]);
    // Publishing twice, or ids the outbox never had, is harmless.
    store
        .mark_published(&d, &[e.id.clone(), e.id.clone()])
        .await
        .unwrap();
    store.mark_published(&d, &[e.id]).await.unwrap();
    assert!(store.pending_events(&d, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_items_are_reported_without_their_values() {
    let store = common::store().await;
    let item = |sk: &str| {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S("DIR#bad".into())),
            ("sk".to_string(), AttributeValue::S(sk.into())),
            (
                "data".to_string(),
                AttributeValue::S(r#"{"firstName": "Sensitive-Value-123""#.into()),
            ),
            ("version".to_string(), AttributeValue::N("1".into())),
        ])
    };
    for sk in ["USER#7", "META"] {
        store
            .client()
            .put_item()
            .table_name(store.table())
            .set_item(Some(item(sk)))
            .send()
            .await
            .unwrap();
    }
    let err = store
        .get_user(&dir("bad"), &EmployeeId::parse("7").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("bad/7"), "{msg}");
    assert!(!msg.contains("Sensitive-Value-123"), "{msg}");

    let err = store.get_directory(&dir("bad")).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!err.to_string().contains("Sensitive-Value-123"));
}

#[tokio::test]
async fn a_missing_table_is_unavailable_and_create_table_is_idempotent() {
    let sdk = common::sdk().await;
    let missing = DynamoStore::new(&sdk, common::unique("no-such-table"));
    let err = missing.get_directory(&dir("x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());

    let store = common::store().await;
    create_table(store.client(), store.table()).await.unwrap();
    let d = dir("again");
    create(&store, &user(&d, "1", 1, "A", UserState::Active)).await;
    create_table(store.client(), store.table()).await.unwrap();
    assert_eq!(store.list_users(&d).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_ledger_advance_needs_no_second_read() {
    let store = common::store().await;
    let d = dir("ledger");
    let t = domain::TargetId::parse("app").unwrap();
    store.ledger_advance(&d, &t, "usr_1", 5).await.unwrap();
    store.reset_consumed();
    // The current version comes back with the failed condition (ALL_OLD), so no
    // GetItem is issued: nothing is read.
    assert_eq!(
        store.ledger_advance(&d, &t, "usr_1", 4).await.unwrap(),
        ports::LedgerAdvance::AlreadyAt { current: 5 }
    );
    assert_eq!(store.consumed().0, 0.0);
}

#[tokio::test]
async fn imported_users_are_stored_as_written_in_batches_of_25() {
    let store = common::store().await;
    let d = dir("import");
    let users: Vec<DirectoryUser> = (1..=60)
        .map(|i| user(&d, &format!("{i:03}"), 2, "I", UserState::Active))
        .collect();
    store.reset_consumed();
    store.import_users(&users).await.unwrap();
    let (_, _, requests) = store.metered();
    assert_eq!(requests, 3, "60 users are three BatchWriteItem calls");

    let listed = store.list_users(&d).await.unwrap();
    assert_eq!(listed, users);
    let fingerprints = store.user_fingerprints(&d).await.unwrap();
    assert_eq!(fingerprints.len(), 60);
    assert!(fingerprints
        .iter()
        .zip(&users)
        .all(|(f, u)| f.employee_id == u.employee_id && f.fingerprint == u.fingerprint));
}

#[tokio::test]
async fn consumed_capacity_is_counted() {
    let store = common::store().await;
    let d = dir("cap");
    store.reset_consumed();
    assert_eq!(store.consumed(), (0.0, 0.0));

    let mut directory = Directory::new(d.clone(), "cap", "s").unwrap();
    directory.version = 1;
    store.put_directory(&directory, None).await.unwrap();
    let (_, writes) = store.consumed();
    assert!(writes > 0.0, "PutItem reports write units");

    store.get_directory(&d).await.unwrap();
    let (reads, _) = store.consumed();
    assert!(reads > 0.0, "GetItem reports read units");

    create(&store, &user(&d, "1", 1, "A", UserState::Active)).await;
    store.user_fingerprints(&d).await.unwrap();
    let (after, _) = store.consumed();
    assert!(after > reads, "index Query reports read units");

    store.reset_consumed();
    assert_eq!(store.consumed(), (0.0, 0.0));
}

#[tokio::test]
async fn a_receipt_is_a_ttl_item_outside_the_fingerprint_index() {
    let store = common::store().await;
    let d = dir("ttl");
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let expires = now + time::Duration::hours(24);
    assert!(store.record_receipt(&d, "abc", now, expires).await.unwrap());
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("DIR#ttl".into()))
        .key("sk", AttributeValue::S("RECEIPT#abc".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    // DynamoDB's TTL only honours a number of epoch seconds.
    assert_eq!(
        item["expiresAt"],
        AttributeValue::N(expires.unix_timestamp().to_string())
    );
    assert!(!item.contains_key("gsi1pk"));
    assert!(index_entries(&store, "FP#ttl").await.is_empty());
}

#[tokio::test]
async fn metered_units_follow_dynamodbs_size_rules() {
    let store = common::store().await;
    let d = dir("meter");
    let small = user(&d, "1", 1, "Ada", UserState::Active);
    store.reset_consumed();
    // A user under 1 KB with one small event, in a transaction: 2 x (1 + 1) units.
    store
        .write_user(&UserWrite {
            user: small.clone(),
            expected_version: None,
            events: vec![event(&small, 1)],
        })
        .await
        .unwrap();
    let (read, write, requests) = store.metered();
    assert_eq!((read, write, requests), (0.0, 4.0, 1));

    // A strongly consistent read of an item under 4 KB costs one unit.
    store.reset_consumed();
    store.get_user(&d, &small.employee_id).await.unwrap();
    assert_eq!(store.metered(), (1.0, 0.0, 1));

    // A user item of about 5 KB costs 5 x 2 units to write in a transaction and 2 to read.
    let mut big = user(&d, "2", 1, "Grace", UserState::Active);
    big.job_title = Some("x".repeat(4_500));
    big.refresh_fingerprint();
    store.reset_consumed();
    create(&store, &big).await;
    let (_, write, _) = store.metered();
    assert!((10.0..=12.0).contains(&write), "{write}");
    store.reset_consumed();
    store.get_user(&d, &big.employee_id).await.unwrap();
    assert_eq!(store.metered().0, 2.0);
}
