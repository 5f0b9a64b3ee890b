//! Revoked directories keep their history for the retention window, then the sweep
//! purges all of it but the audit trail; an injected clock stands either side of the
//! boundary.

use crate::common;

use common::harness;
use domain::{Directory, DirectoryId, DirectoryState, DirectoryUser, EmployeeId, UserState};
use embedded_adapters::InProcessScheduler;
use ports::{AuditAction, Clock, UserWrite};
use sync_engine::operate;
use sync_engine::operate::retention::{purge_sweep, RevokedRetention};
use time::Duration;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/ops";

async fn add_user(h: &common::Harness, dir: &DirectoryId, emp: &str) {
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse(emp).unwrap(),
        UserState::Active,
    );
    u.version = 1;
    u.refresh_fingerprint();
    h.engine
        .store
        .write_user(&UserWrite {
            user: u,
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_revoked_directory_is_kept_until_its_window_passes_then_purged_but_for_its_audit_trail() {
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    add_user(&h, &h.dir, "1").await;
    add_user(&h, &h.dir, "2").await;
    let revoked_at = h.clock.now();
    let d = operate::revoke(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    assert_eq!(d.deleted_at, Some(revoked_at));
    let retention = RevokedRetention::days(30).unwrap();

    // One second before the window ends: nothing is touched.
    h.clock
        .set(revoked_at + Duration::days(30) - Duration::seconds(1));
    assert!(purge_sweep(&h.engine, retention).await.unwrap().is_empty());
    assert_eq!(h.engine.store.list_users(&h.dir).await.unwrap().len(), 2);
    assert!(h
        .engine
        .store
        .get_directory(&h.dir)
        .await
        .unwrap()
        .is_some());

    // At the boundary: purged.
    h.clock.set(revoked_at + Duration::days(30));
    let purged = purge_sweep(&h.engine, retention).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].directory_id, h.dir);
    assert!(purged[0].report.directory);
    assert_eq!(purged[0].report.users, 2);
    assert!(h
        .engine
        .store
        .get_directory(&h.dir)
        .await
        .unwrap()
        .is_none());
    assert!(h.engine.store.list_users(&h.dir).await.unwrap().is_empty());

    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(
        audit[0].action,
        AuditAction::Purge,
        "the newest entry says what went"
    );
    assert_eq!(audit[0].details["purged"]["users"], 2);
    assert_eq!(audit[0].details["retentionDays"], 30);
    assert_eq!(audit[1].action, AuditAction::Revoke);

    // Nothing is left to purge.
    h.clock.advance(Duration::days(1));
    assert!(purge_sweep(&h.engine, retention).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sweep_purges_only_revoked_directories_whose_window_has_passed() {
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    let retention = RevokedRetention::days(90).unwrap();
    let start = h.clock.now();

    // `acme` is revoked first; `recent` 10 days later; `live` never.
    operate::revoke(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    let recent = DirectoryId::parse("recent").unwrap();
    let live = DirectoryId::parse("live").unwrap();
    for id in [&recent, &live] {
        let mut d = Directory::new(id.clone(), "x", id.as_str()).unwrap();
        d.version = 1;
        h.engine.store.put_directory(&d, None).await.unwrap();
        add_user(&h, id, "7").await;
    }
    h.clock.set(start + Duration::days(10));
    operate::revoke(&h.engine, &scheduler, &recent, OPERATOR)
        .await
        .unwrap();

    h.clock.set(start + Duration::days(95));
    let purged = purge_sweep(&h.engine, retention).await.unwrap();
    assert_eq!(
        purged
            .iter()
            .map(|p| p.directory_id.clone())
            .collect::<Vec<_>>(),
        vec![h.dir.clone()]
    );
    let kept = h
        .engine
        .store
        .get_directory(&recent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.state, DirectoryState::Revoked);
    assert_eq!(h.engine.store.list_users(&recent).await.unwrap().len(), 1);
    assert!(h.engine.store.get_directory(&live).await.unwrap().is_some());
    assert_eq!(h.engine.store.list_users(&live).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_directory_revoked_before_dates_were_kept_starts_its_window_at_the_next_sweep() {
    let h = harness("k", None, vec![]).await;
    let mut d = h.engine.store.get_directory(&h.dir).await.unwrap().unwrap();
    d.state = DirectoryState::Revoked;
    d.version = 2;
    h.engine.store.put_directory(&d, Some(1)).await.unwrap();
    let retention = RevokedRetention::days(1).unwrap();

    let first_sweep = h.clock.now();
    assert!(purge_sweep(&h.engine, retention).await.unwrap().is_empty());
    let stamped = h.engine.store.get_directory(&h.dir).await.unwrap().unwrap();
    assert_eq!(stamped.deleted_at, Some(first_sweep));

    h.clock.set(first_sweep + Duration::days(1));
    assert_eq!(purge_sweep(&h.engine, retention).await.unwrap().len(), 1);
}

#[tokio::test]
async fn revoking_again_keeps_the_first_revocation_date() {
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    operate::revoke(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    // The window is not extended by a second revoke.
    let first = h.engine.store.get_directory(&h.dir).await.unwrap().unwrap();
    h.clock.advance(Duration::days(3));
    operate::revoke(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    let again = h.engine.store.get_directory(&h.dir).await.unwrap().unwrap();
    assert_eq!(again.deleted_at, first.deleted_at);
}
