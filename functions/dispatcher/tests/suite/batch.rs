//! The dispatcher handler on SQS batches: partial failures are reported per message;
//! a lane (message group) stops at its first retryable failure; a message that can
//! never be handled is set aside with its reason and holds up nothing.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventType, UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_runtime::{Context, LambdaEvent};
use ports::{Store, SystemClock, UserWrite};
use sync_engine::Engine;

fn envelope(event: &ChangeEvent) -> String {
    serde_json::json!({
        "version": "0", "id": "e-1", "detail-type": event.event_type.as_str(),
        "source": "bamboohr-sync", "account": "123456789012",
        "time": "2026-11-23T08:00:00Z", "region": "us-east-1", "resources": [],
        "detail": event,
    })
    .to_string()
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_string());
    m.body = Some(body.to_string());
    m
}

async fn engine_with_user() -> (Engine, ChangeEvent, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory());
    let dir = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.version = 1;
    store.put_directory(&d, None).await.unwrap();
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse("1").unwrap(),
        UserState::Active,
    );
    u.version = 1;
    u.refresh_fingerprint();
    let event = ChangeEvent::new(
        EventType::UserCreated,
        dir,
        u.id.as_str(),
        1,
        time::OffsetDateTime::UNIX_EPOCH,
        serde_json::to_value(&u).unwrap(),
    );
    store
        .write_user(&UserWrite {
            user: u,
            expected_version: None,
            events: vec![],
        })
        .await
        .unwrap();
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("s.json")));
    ports::SecretStore::put(secrets.as_ref(), "acme", &Default::default())
        .await
        .unwrap();
    let (bus, _rx) = InProcessBus::new();
    (
        Engine::new(store, secrets, Arc::new(bus), Arc::new(SystemClock)).with_retry_queue(
            Arc::new(embedded_adapters::InProcessRetryQueue::new(Arc::new(
                SystemClock,
            ))),
        ),
        event,
        tmp,
    )
}

#[tokio::test]
async fn a_batch_of_good_messages_reports_no_failures() {
    let (engine, event, _tmp) = engine_with_user().await;
    let mut sqs = SqsEvent::default();
    sqs.records = vec![
        message("m1", &envelope(&event)),
        message("m2", &envelope(&event)),
    ];
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
}

fn retry_queue_of(engine: &Engine) -> Arc<dyn ports::RetryQueue> {
    engine.retry_queue().unwrap().clone()
}

#[tokio::test]
async fn an_unreadable_message_is_set_aside_and_the_rest_of_the_batch_goes_on() {
    let (engine, event, _tmp) = engine_with_user().await;
    let mut sqs = SqsEvent::default();
    sqs.records = vec![
        message("m1", &envelope(&event)),
        message("m2", "{not an event"),
        message("m3", &envelope(&event)),
    ];
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default()))
        .await
        .unwrap();
    assert!(
        resp.batch_item_failures.is_empty(),
        "acknowledged, never retried in place: {:?}",
        resp.batch_item_failures
    );
    assert_eq!(
        retry_queue_of(&engine).dead_letter_depth().await.unwrap(),
        1,
        "the unreadable message is set aside"
    );
}

#[tokio::test]
async fn a_change_for_an_unknown_directory_is_set_aside_not_retried_in_place() {
    let (engine, mut event, _tmp) = engine_with_user().await;
    event.directory_id = DirectoryId::parse("gone").unwrap();
    let mut sqs = SqsEvent::default();
    sqs.records = vec![message("m1", &envelope(&event))];
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        retry_queue_of(&engine).dead_letter_depth().await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_revoked_directorys_queued_changes_are_acknowledged_and_dropped() {
    let (engine, event, _tmp) = engine_with_user().await;
    let mut d = engine
        .store
        .get_directory(&event.directory_id)
        .await
        .unwrap()
        .unwrap();
    d.state = domain::DirectoryState::Revoked;
    engine
        .store
        .put_directory(&d, Some(d.version))
        .await
        .unwrap();
    let mut sqs = SqsEvent::default();
    sqs.records = vec![message("m1", &envelope(&event))];
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        retry_queue_of(&engine).dead_letter_depth().await.unwrap(),
        0,
        "nothing to deliver any more is no dead letter"
    );
}

fn retry_message(id: &str, event: &ChangeEvent, directory: Option<&str>) -> SqsMessage {
    let mut event = event.clone();
    if let Some(d) = directory {
        event.directory_id = DirectoryId::parse(d).unwrap();
    }
    let task = ports::RetryTask {
        target_id: domain::TargetId::parse("app").unwrap(),
        event,
        retries: 0,
        due_at: time::OffsetDateTime::UNIX_EPOCH,
        first_failed_at: time::OffsetDateTime::UNIX_EPOCH,
        last_error: "HTTP 503".into(),
        force: false,
    };
    message(
        id,
        &serde_json::to_string(&ports::RetryEnvelope { retry_task: task }).unwrap(),
    )
}

#[tokio::test]
async fn a_retry_body_is_told_apart_from_a_change_and_from_an_older_releases_envelope() {
    let (_engine, event, _tmp) = engine_with_user().await;
    assert!(matches!(
        dispatcher::parse_message(&retry_message("r1", &event, None)).unwrap(),
        dispatcher::Message::Retry(_)
    ));
    assert!(matches!(
        dispatcher::parse_message(&message("m1", &envelope(&event))).unwrap(),
        dispatcher::Message::Change(_)
    ));
    assert_eq!(
        dispatcher::parse_message(&message("m2", &serde_json::to_string(&event).unwrap())).unwrap(),
        dispatcher::Message::Change(event)
    );
}

#[tokio::test]
async fn retries_for_a_vanished_directory_or_target_are_dropped_and_the_batch_goes_on() {
    let (engine, event, _tmp) = engine_with_user().await;
    let queue = Arc::new(embedded_adapters::InProcessRetryQueue::new(Arc::new(
        SystemClock,
    )));
    let engine = engine.with_retry_queue(queue);
    let mut sqs = SqsEvent::default();
    sqs.records = vec![
        retry_message("r1", &event, Some("gone")),
        retry_message("r2", &event, None),
        message("m1", &envelope(&event)),
    ];
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default()))
        .await
        .unwrap();
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "a retry for a vanished directory is dropped, not failed: {failed:?}"
    );
}

#[tokio::test]
async fn the_change_queue_message_built_for_local_feeding_parses_back_to_its_event() {
    let (_engine, event, _tmp) = engine_with_user().await;
    let m = dispatcher::change_queue_message(&event, "local-1");
    assert_eq!(m.message_id.as_deref(), Some(event.id.as_str()));
    assert_eq!(m.receipt_handle.as_deref(), Some("handle-local-1"));
    let body: ChangeEvent = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, event, "the body is the event, as the outbox sends it");
    assert_eq!(m.attributes["MessageGroupId"], event.ordering_key());
    assert_eq!(
        dispatcher::parse_message(&m).unwrap(),
        dispatcher::Message::Change(event)
    );
}

#[tokio::test]
async fn near_the_invocations_deadline_the_rest_of_the_batch_is_handed_back_unprocessed() {
    let (engine, event, _tmp) = engine_with_user().await;
    let mut sqs = SqsEvent::default();
    sqs.records = vec![
        message("m1", &envelope(&event)),
        message("m2", &envelope(&event)),
    ];
    // Ten seconds left: less than a message may need.
    let mut context = Context::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    context.deadline = now_ms + 10_000;
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, context))
        .await
        .unwrap();
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["m1", "m2"],
        "nothing started, everything handed back"
    );

    // With time left, the same batch is handled.
    let mut sqs = SqsEvent::default();
    sqs.records = vec![message("m3", &envelope(&event))];
    let mut context = Context::default();
    context.deadline = now_ms + 180_000;
    let resp = dispatcher::handler(&engine, LambdaEvent::new(sqs, context))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
}
