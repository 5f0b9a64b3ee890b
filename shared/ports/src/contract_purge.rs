//! Contract check of [`crate::Store::purge_directory`], run by [`crate::contract::run_all`]:
//! every kind of item a directory can hold is seeded, purged and counted, so an adapter
//! that forgets a kind (or touches another directory, or the audit trail) fails here.

use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventId, EventType, Group,
    RunId, SyncMode, SyncRun, TargetId, UserState,
};
use time::OffsetDateTime;

use crate::audit_store::{AuditAction, AuditEntry, EvidenceRow};
use crate::delivery_store::{BreakerState, DeliveryQuery, DeliveryRecord, DeliveryStatus};
use crate::store::{PurgeReport, Store, UserWrite};
use crate::sync_store::GroupWrite;

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).expect("valid instant")
}

fn event(dir: &DirectoryId, object: &str, version: u64) -> ChangeEvent {
    ChangeEvent::new(
        EventType::UserCreated,
        dir.clone(),
        object,
        version,
        at(0),
        serde_json::Value::Null,
    )
}

/// Stores one item of every kind for `dir` (two users, so counts are not all one).
async fn seed(store: &dyn Store, dir: &DirectoryId) {
    let app = TargetId::parse("app").expect("valid target id");
    let mut d = Directory::new(dir.clone(), "acme", "secret").expect("valid directory");
    d.version = 1;
    store.put_directory(&d, None).await.unwrap();
    for emp in ["1", "2"] {
        let mut u = DirectoryUser::new(
            dir.clone(),
            EmployeeId::parse(emp).expect("valid employee id"),
            UserState::Active,
        );
        u.version = 1;
        u.refresh_fingerprint();
        let e = event(dir, u.id.as_str(), 1);
        store
            .write_user(&UserWrite {
                user: u,
                expected_version: None,
                events: vec![e],
            })
            .await
            .unwrap();
    }
    let mut g = Group::new(dir.clone(), "department", "Sales");
    g.version = 1;
    g.refresh_fingerprint();
    store
        .write_group(&GroupWrite {
            group: g,
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap();
    store
        .put_run(&SyncRun::start(
            RunId::new(at(0), 1),
            dir.clone(),
            SyncMode::Full,
            at(0),
        ))
        .await
        .unwrap();
    store.put_checkpoint(dir, "{}").await.unwrap();
    assert!(store
        .acquire_lease(dir, "poller", at(0), at(60))
        .await
        .unwrap());
    store.ledger_advance(dir, &app, "usr_1", 1).await.unwrap();
    store
        .put_delivery(&DeliveryRecord {
            directory_id: dir.clone(),
            target_id: app.clone(),
            object_id: "usr_1".into(),
            event_id: EventId::derive(dir, EventType::UserCreated.as_str(), "usr_1", 1),
            version: 1,
            status: DeliveryStatus::Delivered,
            attempts: 1,
            status_codes: vec![200],
            last_error: None,
            skipped_reason: None,
            first_attempt_at: at(0),
            last_attempt_at: at(0),
            next_attempt_at: None,
            gate_exit: false,
        })
        .await
        .unwrap();
    store
        .put_target_account(dir, &app, "usr_1", "acct-1")
        .await
        .unwrap();
    store
        .put_breaker(
            dir,
            &app,
            &BreakerState {
                consecutive_failures: 2,
                open_until: None,
            },
        )
        .await
        .unwrap();
    store
        .record_refresh_requests(dir, &[EmployeeId::parse("3").unwrap()], at(0))
        .await
        .unwrap();
    assert!(store
        .record_receipt(dir, "body-sha", at(0), at(86_400))
        .await
        .unwrap());
    assert!(store
        .put_evidence(&EvidenceRow {
            directory_id: dir.clone(),
            captured_at: at(0),
            run_id: "run".into(),
            active_headcount: 2,
            terminations_last_30_days: 0,
            new_hires_last_30_days: 2,
            target_share: Default::default(),
            onboarding: None,
            fingerprint: "fp".into(),
        })
        .await
        .unwrap());
    store
        .put_setup_link(&crate::contract_setup_links::link(dir, "sl1"), None)
        .await
        .unwrap();
    store
        .append_audit(&AuditEntry::new(
            dir.clone(),
            at(0),
            1,
            AuditAction::Revoke,
            "alice",
            serde_json::Value::Null,
        ))
        .await
        .unwrap();
}

/// A purge removes every item of the directory, counted by kind, keeps its audit
/// trail, leaves other directories alone, and a second purge finds nothing.
pub async fn purging_a_directory_removes_everything_but_its_audit_trail(
    store: &dyn Store,
    tag: &str,
) {
    let dir = dir_id(tag, "purge");
    let other = dir_id(tag, "purge-other");
    seed(store, &dir).await;
    seed(store, &other).await;
    let app = TargetId::parse("app").expect("valid target id");

    let report = store.purge_directory(&dir).await.unwrap();
    assert_eq!(
        report,
        PurgeReport {
            directory: true,
            users: 2,
            groups: 1,
            runs: 1,
            outbox: 2,
            deliveries: 1,
            ledger: 1,
            accounts: 1,
            breakers: 1,
            checkpoints: 1,
            leases: 1,
            refresh_requests: 1,
            receipts: 1,
            evidence: 0,
            setup_links: 1,
            other: 0,
        }
    );
    assert_eq!(report.total(), 16);

    assert!(store.get_directory(&dir).await.unwrap().is_none());
    assert!(!store
        .list_directories()
        .await
        .unwrap()
        .iter()
        .any(|d| d.id == dir));
    assert!(store.list_users(&dir).await.unwrap().is_empty());
    assert!(store.user_fingerprints(&dir).await.unwrap().is_empty());
    assert!(store.list_groups(&dir).await.unwrap().is_empty());
    assert!(store.list_runs(&dir, 10).await.unwrap().is_empty());
    assert!(store.pending_events(&dir, 10).await.unwrap().is_empty());
    assert!(store.get_checkpoint(&dir).await.unwrap().is_none());
    assert!(
        store
            .acquire_lease(&dir, "someone-else", at(1), at(60))
            .await
            .unwrap(),
        "the purged lease no longer holds anyone off"
    );
    store.release_lease(&dir, "someone-else").await.unwrap();
    assert_eq!(store.ledger_get(&dir, &app, "usr_1").await.unwrap(), None);
    assert!(store
        .list_deliveries(&dir, &DeliveryQuery::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_target_account(&dir, &app, "usr_1").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_breaker(&dir, &app).await.unwrap(),
        BreakerState::default()
    );
    assert!(store
        .pending_refresh_requests(&dir, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(!store.has_receipt(&dir, "body-sha", at(0)).await.unwrap());
    assert_eq!(
        store.list_evidence(&dir, 10).await.unwrap().len(),
        1,
        "the compliance evidence outlives the purge"
    );
    assert!(store.list_setup_links(&dir).await.unwrap().is_empty());
    assert_eq!(
        store.list_audit(&dir, 10).await.unwrap().len(),
        1,
        "the audit trail outlives the purge"
    );

    // The other directory is whole.
    assert!(store.get_directory(&other).await.unwrap().is_some());
    assert_eq!(store.list_users(&other).await.unwrap().len(), 2);
    assert_eq!(store.pending_events(&other, 10).await.unwrap().len(), 2);
    assert_eq!(store.list_runs(&other, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_evidence(&other, 10).await.unwrap().len(), 1);
    assert_eq!(
        store.ledger_get(&other, &app, "usr_1").await.unwrap(),
        Some(1)
    );
    assert!(store.has_receipt(&other, "body-sha", at(0)).await.unwrap());

    assert_eq!(
        store.purge_directory(&dir).await.unwrap(),
        PurgeReport::default(),
        "a second purge finds nothing"
    );
}

/// Every check of the purge.
pub async fn run_all(store: &dyn Store, tag: &str) {
    purging_a_directory_removes_everything_but_its_audit_trail(store, tag).await;
}
