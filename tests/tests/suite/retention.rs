//! The poller's sweep on DynamoDB (moto): a revoked directory's partition is kept until
//! its retention window passes, then purged, its audit trail kept.

use std::sync::Arc;

use domain::{Directory, DirectoryId, DirectoryUser, EmployeeId, UserState};
use integration_tests::TestStack;
use lambda_runtime::{Context, LambdaEvent};
use ports::{AuditAction, FixedClock, UserWrite};
use sync_engine::operate::retention::RevokedRetention;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_on_dynamodb_purges_a_revoked_directory_only_once_its_window_has_passed() {
    let stack = TestStack::provision().await;
    let revoked_at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let clock = Arc::new(FixedClock::new(revoked_at));
    let mut engine = stack.engine();
    engine.clock = clock.clone();

    let id = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(id.clone(), "acme", "acme").unwrap();
    d.version = 1;
    engine.store.put_directory(&d, None).await.unwrap();
    // Enough users for more than one BatchWriteItem of deletes.
    for emp in 1..=30 {
        let mut u = DirectoryUser::new(
            id.clone(),
            EmployeeId::parse(emp.to_string()).unwrap(),
            UserState::Active,
        );
        u.version = 1;
        u.refresh_fingerprint();
        engine
            .store
            .write_user(&UserWrite {
                user: u,
                expected_version: None,
                events: vec![],
            })
            .await
            .unwrap();
    }
    sync_engine::operate::revoke(
        &engine,
        &embedded_adapters::InProcessScheduler::new(),
        &id,
        "ops",
    )
    .await
    .unwrap();
    let poller =
        poller::Poller::new(engine).with_revoked_retention(RevokedRetention::days(90).unwrap());
    let sweep = || LambdaEvent::new(serde_json::json!({ "sweep": true }), Context::default());

    clock.set(revoked_at + time::Duration::days(89));
    let response = poller::handler(&poller, sweep()).await.unwrap();
    assert!(response.purged.is_empty());
    assert_eq!(poller.engine.store.list_users(&id).await.unwrap().len(), 30);

    clock.set(revoked_at + time::Duration::days(90));
    let response = poller::handler(&poller, sweep()).await.unwrap();
    assert_eq!(response.purged, vec![id.clone()]);
    assert!(poller
        .engine
        .store
        .get_directory(&id)
        .await
        .unwrap()
        .is_none());
    assert!(poller
        .engine
        .store
        .list_users(&id)
        .await
        .unwrap()
        .is_empty());
    let audit = poller.engine.store.list_audit(&id, 5).await.unwrap();
    assert_eq!(audit[0].action, AuditAction::Purge);
    assert_eq!(audit[0].details["purged"]["users"], 30);
    assert_eq!(audit[1].action, AuditAction::Revoke);
}
