//! The outbox under a failing bus, and dispatch's ledger and state transfer.

use crate::common;

use common::{app_target, harness, receiver};
use domain::{DirectoryUser, EmployeeId, EventType, UserState};
use ports::{Store, UserWrite};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::reconcile::outbox;

fn user(h: &common::Harness, version: u64, first: &str) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        h.dir.clone(),
        EmployeeId::parse("7").unwrap(),
        UserState::Active,
    );
    u.first_name = Some(first.into());
    u.version = version;
    u.refresh_fingerprint();
    u
}

async fn store_version(h: &common::Harness, version: u64, first: &str) -> domain::ChangeEvent {
    let before = if version > 1 {
        h.store
            .get_user(&h.dir, &EmployeeId::parse("7").unwrap())
            .await
            .unwrap()
    } else {
        None
    };
    let u = user(h, version, first);
    let event = domain::ChangeEvent::for_user_write(before.as_ref(), &u, common::now());
    h.store
        .write_user(&UserWrite {
            user: u,
            expected_version: before.map(|b| b.version),
            events: vec![event.clone()],
        })
        .await
        .unwrap();
    event
}

#[tokio::test]
async fn a_bus_failure_keeps_events_in_the_outbox_and_the_next_flush_publishes_them_once() {
    let mut h = harness("k", None, vec![]).await;
    store_version(&h, 1, "Ada").await;
    h.bus.set_failing(true);
    assert!(outbox::flush(&h.engine, &h.dir).await.is_err());
    assert_eq!(h.store.pending_events(&h.dir, 10).await.unwrap().len(), 1);
    assert!(h.drain().is_empty());

    h.bus.set_failing(false);
    let report = outbox::flush(&h.engine, &h.dir).await.unwrap();
    assert_eq!(report.published, 1);
    let again = outbox::flush(&h.engine, &h.dir).await.unwrap();
    assert_eq!(again.published, 0, "a published event leaves the outbox");
    let events = h.drain();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::UserCreated);
}

#[tokio::test]
async fn a_late_event_delivers_the_current_state_and_the_newer_event_is_then_skipped() {
    let app = receiver().await;
    let h = harness("k", None, vec![app_target("app", &app.url)]).await;
    let created = store_version(&h, 1, "Ada").await;
    let updated = store_version(&h, 2, "Augusta").await;

    // The v1 event arrives after the user already reached v2: v2 is delivered.
    let report = dispatch(&h.engine, &created).await.unwrap();
    assert_eq!(
        report.targets[0].1,
        TargetOutcome::Delivered {
            status: 204,
            version: 2
        }
    );
    let got = app.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["version"], 2);
    assert_eq!(got[0].body["data"]["firstName"], "Augusta");

    // The v2 event then finds the ledger at 2: nothing is sent twice.
    let report = dispatch(&h.engine, &updated).await.unwrap();
    assert!(matches!(report.targets[0].1, TargetOutcome::Skipped { .. }));
    // A duplicate of the old event is skipped too: no older state after newer.
    let report = dispatch(&h.engine, &created).await.unwrap();
    assert!(matches!(report.targets[0].1, TargetOutcome::Skipped { .. }));
    assert_eq!(app.got().len(), 1);
}

#[tokio::test]
async fn a_failing_target_is_retried_without_redelivering_to_a_healthy_one() {
    let healthy = receiver().await;
    let failing = receiver().await;
    failing.respond_with(503);
    let h = harness(
        "k",
        None,
        vec![
            app_target("healthy", &healthy.url),
            app_target("failing", &failing.url),
        ],
    )
    .await;
    let event = store_version(&h, 1, "Ada").await;

    let first = dispatch(&h.engine, &event).await.unwrap();
    assert!(!first.needs_retry(), "the failure left for the retry path");
    assert!(matches!(
        first.targets[1].1,
        TargetOutcome::Scheduled { .. }
    ));

    failing.respond_with(204);
    let second = dispatch(&h.engine, &event).await.unwrap();
    assert!(!second.needs_retry());
    assert!(matches!(second.targets[0].1, TargetOutcome::Skipped { .. }));
    assert_eq!(
        healthy.got().len(),
        1,
        "the healthy target got the event exactly once"
    );
    assert_eq!(failing.got().len(), 1);
    assert_eq!(
        healthy.got()[0].webhook_id,
        failing.got()[0].webhook_id,
        "webhook-id is stable"
    );
}

#[tokio::test]
async fn a_client_error_from_a_target_is_a_permanent_failure() {
    let app = receiver().await;
    app.respond_with(400);
    let h = harness("k", None, vec![app_target("app", &app.url)]).await;
    let event = store_version(&h, 1, "Ada").await;
    let report = dispatch(&h.engine, &event).await.unwrap();
    assert!(matches!(
        report.targets[0].1,
        TargetOutcome::Failed {
            retryable: false,
            ..
        }
    ));
    assert!(!report.needs_retry());
}
