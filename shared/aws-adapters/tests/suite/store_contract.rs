//! The shared store contract (`ports::contract`) against `DynamoStore` on moto: the same
//! checks the embedded store passes, one test per check, each on its own table.

use crate::common;

macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = common::store().await;
                ports::contract::$check(&store, "c").await;
            }
        )*
    };
}

contract_tests!(
    directories_are_written_conditionally,
    user_writes_are_conditional_on_version,
    listings_are_complete_ordered_and_tenant_scoped,
    outbox_events_are_atomic_with_the_user,
    the_ledger_only_moves_forward,
    refresh_requests_are_deduplicated_and_cleared_only_when_unrenewed,
    receipts_are_recorded_once_until_they_expire,
);

/// The setup link check, one table of its own.
#[tokio::test]
async fn setup_links_are_written_conditionally_and_listed_per_directory() {
    let store = common::store().await;
    ports::contract_setup_links::setup_links_are_written_conditionally_and_listed_per_directory(
        &store, "c",
    )
    .await;
}

/// The purge check, one table of its own.
#[tokio::test]
async fn purging_a_directory_removes_everything_but_its_audit_trail_and_evidence() {
    let store = common::store().await;
    ports::contract_purge::purging_a_directory_removes_everything_but_its_audit_trail(&store, "c")
        .await;
}

/// All checks on one table, as adapters sharing a store would run them.
#[tokio::test]
async fn every_check_on_one_table() {
    let store = common::store().await;
    ports::contract::run_all(&store, "all").await;
}

/// Audit entries go to the audit table only: the main table, which the functions may
/// update and delete in, holds none.
#[tokio::test]
async fn audit_entries_are_written_to_the_audit_table_and_never_to_the_main_table() {
    use ports::{AuditAction, AuditEntry, AuditStore};
    let store = common::store().await;
    let dir = domain::DirectoryId::parse("acme").unwrap();
    store
        .append_audit(&AuditEntry::new(
            dir.clone(),
            time::OffsetDateTime::UNIX_EPOCH,
            1,
            AuditAction::Connect,
            "ops",
            serde_json::Value::Null,
        ))
        .await
        .unwrap();
    let count = |table: String| {
        let client = store.client().clone();
        async move {
            client
                .scan()
                .table_name(table)
                .send()
                .await
                .unwrap()
                .count()
        }
    };
    assert_eq!(count(store.audit_table().to_string()).await, 1);
    assert_eq!(count(store.table().to_string()).await, 0);
    assert_eq!(store.list_audit(&dir, 10).await.unwrap().len(), 1);
}

/// Evidence rows go to the evidence table only: neither the main table (which the
/// functions may update and delete in) nor the audit table holds one.
#[tokio::test]
async fn evidence_rows_are_written_to_the_evidence_table_and_never_to_the_main_table() {
    use ports::{AuditStore, EvidenceRow};
    let store = common::store().await;
    let dir = domain::DirectoryId::parse("acme").unwrap();
    assert!(store
        .put_evidence(&EvidenceRow {
            directory_id: dir.clone(),
            captured_at: time::OffsetDateTime::UNIX_EPOCH,
            run_id: "run".into(),
            active_headcount: 3,
            terminations_last_30_days: 0,
            new_hires_last_30_days: 1,
            target_share: Default::default(),
            onboarding: None,
            fingerprint: "fp".into(),
        })
        .await
        .unwrap());
    let count = |table: String| {
        let client = store.client().clone();
        async move {
            client
                .scan()
                .table_name(table)
                .send()
                .await
                .unwrap()
                .count()
        }
    };
    assert_ne!(store.evidence_table(), store.audit_table());
    assert_eq!(count(store.evidence_table().to_string()).await, 1);
    assert_eq!(count(store.table().to_string()).await, 0);
    assert_eq!(count(store.audit_table().to_string()).await, 0);
    assert_eq!(store.list_evidence(&dir, 10).await.unwrap().len(), 1);
}
