//! What the write routes do beyond their shape: each is audited under the IAM caller
//! API Gateway verified (never a name the client sends), a sync is asked of the
//! poller rather than run in the request, a hold is released, and a redrive puts the
//! dead letters back on the retry path and says whose they were.

use domain::{DirectoryState, EventType, Hold, RunId, TargetId};
use ports::{DeadLetter, RetryQueue, RetryTask};
use serde_json::json;
use time::OffsetDateTime;

use crate::common::{call, harness, post, request, CALLER};

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_request_schedules_one_poller_run_audited_under_the_iam_caller() {
    let h = harness().await;
    let before = h.scheduler.pending_once();
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/sync",
        Some(json!({"mode": "full"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["mode"], "full");
    assert_eq!(body["created"], true);
    assert_eq!(h.scheduler.pending_once(), before + 1);

    // Asked again in the same minute: one run, not two.
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/sync",
        Some(json!({"mode": "full"})),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body["created"], false);
    assert_eq!(h.scheduler.pending_once(), before + 1);

    let audit = h.api.engine.store.list_audit(&h.id, 1).await.unwrap();
    assert_eq!(audit[0].action.as_str(), "sync");
    assert_eq!(audit[0].actor, CALLER);
    assert_eq!(audit[0].details["requested"], "full");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audited_caller_is_the_authorizers_identity_not_a_header_or_body_field() {
    let h = harness().await;
    let mut req = request(
        "POST",
        "/admin/directories/acme/pause",
        &[],
        None,
        Some("arn:aws:iam::123456789012:user/bob"),
    );
    req.headers_mut().insert(
        "x-actor",
        "arn:aws:iam::123456789012:user/mallory".parse().unwrap(),
    );
    let (status, body) = call(&h.api, req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "paused");
    let audit = h.api.engine.store.list_audit(&h.id, 1).await.unwrap();
    assert_eq!(audit[0].action.as_str(), "pause");
    assert_eq!(audit[0].actor, "arn:aws:iam::123456789012:user/bob");

    let (status, body) = post(&h.api, "/admin/directories/acme/resume", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn releasing_a_hold_reactivates_the_directory_and_asks_for_a_full_run() {
    let h = harness().await;
    let store = &h.api.engine.store;
    let mut d = store.get_directory(&h.id).await.unwrap().unwrap();
    let expected = d.version;
    d.version += 1;
    d.state = DirectoryState::Held;
    d.hold = Some(Hold {
        run_id: RunId::new(OffsetDateTime::now_utc(), 1),
        at: OffsetDateTime::now_utc(),
        would_deactivate: 4,
        would_delete: 0,
        active_before: 5,
        sample: vec![],
    });
    store.put_directory(&d, Some(expected)).await.unwrap();

    let (status, body) = post(&h.api, "/admin/directories/acme/sync", None).await;
    assert_eq!(status, 409, "a held directory is not synced: {body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("release or discard"));

    let (status, body) = post(&h.api, "/admin/directories/acme/hold/release", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "active");
    let d = store.get_directory(&h.id).await.unwrap().unwrap();
    assert!(d.cursors.full_requested);
    let audit = store.list_audit(&h.id, 1).await.unwrap();
    assert_eq!(audit[0].action.as_str(), "release");
    assert_eq!(audit[0].actor, CALLER);
    assert_eq!(audit[0].details["decision"], "release");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redrive_moves_dead_letters_back_and_audits_under_their_directory() {
    let h = harness().await;
    let users = h.api.engine.store.list_users(&h.id).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let event = domain::ChangeEvent::for_user(EventType::UserUpdated, &users[0], now);
    h.retry
        .dead_letter(&DeadLetter {
            task: RetryTask {
                target_id: TargetId::parse("app").unwrap(),
                event,
                retries: 10,
                due_at: now,
                first_failed_at: now,
                last_error: "503".into(),
                force: false,
            },
            reason: "11 attempts failed".into(),
        })
        .await
        .unwrap();

    let (status, body) = post(&h.api, "/admin/dead-letters/redrive", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redriven"], 1);
    assert!(h.retry.dead_letters().is_empty());
    assert_eq!(h.retry.waiting(), 1, "back on the retry path");
    let audit = h.api.engine.store.list_audit(&h.id, 1).await.unwrap();
    assert_eq!(audit[0].action.as_str(), "replay");
    assert_eq!(audit[0].actor, CALLER);
    assert_eq!(audit[0].details["deadLetters"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_directory_replay_over_a_hundred_users_is_queued_and_answered_202() {
    let h = harness().await;
    let store = h.api.engine.store.clone();
    // Enough users that delivering them would not fit in the request.
    for n in 0..101 {
        let mut u = domain::DirectoryUser::new(
            h.id.clone(),
            domain::EmployeeId::parse(format!("{}", 9000 + n)).unwrap(),
            domain::UserState::Active,
        );
        u.version = 1;
        u.refresh_fingerprint();
        store
            .write_user(&ports::UserWrite {
                user: u,
                expected_version: None,
                events: vec![],
            })
            .await
            .unwrap();
    }
    let total = store.list_users(&h.id).await.unwrap().len();
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/replay",
        Some(serde_json::json!({"target": "app"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], total);
    assert_eq!(h.retry.waiting(), total, "one forced task per user");
    let tasks = h
        .retry
        .take_visible(OffsetDateTime::now_utc() + time::Duration::minutes(1));
    assert!(tasks
        .iter()
        .all(|t| t.force && t.target_id.as_str() == "app"));
    let audit = store.list_audit(&h.id, 1).await.unwrap();
    assert_eq!(audit[0].action.as_str(), "replay");
    assert_eq!(audit[0].details["queued"], true);
}
