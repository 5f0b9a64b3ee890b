//! The batch's delivery metrics, counted by the real handler over a real delivery: a
//! change delivered to an app webhook, then the same change again (skipped by the
//! ledger), and the EMF document the handler would print for the target.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventType, Target,
    TargetFilter, TargetId, TargetKind, UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_runtime::{Context, LambdaEvent};
use ports::{DirectorySecrets, Store, SystemClock, TargetSecrets, UserWrite};
use secrecy::SecretString;
use sync_engine::Engine;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

fn message(id: &str, event: &ChangeEvent) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_string());
    m.body = Some(
        serde_json::json!({
            "version": "0", "id": id, "detail-type": event.event_type.as_str(),
            "source": "bamboohr-sync", "account": "123456789012",
            "time": "2026-11-23T08:00:00Z", "region": "us-east-1", "resources": [],
            "detail": event,
        })
        .to_string(),
    );
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_counts_each_targets_deliveries_by_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory());
    let dir = DirectoryId::parse("acme").unwrap();
    let app = TargetId::parse("app").unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.version = 1;
    d.targets.push(Target {
        id: app.clone(),
        kind: TargetKind::app_webhook(receiver().await),
        filter: TargetFilter::default(),
        enabled: true,
    });
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
        dir.clone(),
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
    let mut all = DirectorySecrets::default();
    all.targets.insert(
        "app".into(),
        TargetSecrets {
            signing_secrets: vec![SecretString::from(WHSEC)],
            ..TargetSecrets::default()
        },
    );
    ports::SecretStore::put(secrets.as_ref(), "acme", &all)
        .await
        .unwrap();
    let (bus, _rx) = InProcessBus::new();
    let engine = Engine::new(store, secrets, Arc::new(bus), Arc::new(SystemClock))
        .with_retry_queue(Arc::new(embedded_adapters::InProcessRetryQueue::new(
            Arc::new(SystemClock),
        )));

    let mut sqs = SqsEvent::default();
    sqs.records = vec![message("m1", &event), message("m2", &event)];
    let (response, metrics) =
        dispatcher::handle_batch(&engine, LambdaEvent::new(sqs, Context::default())).await;
    assert!(response.batch_item_failures.is_empty());
    let tally = &metrics.targets[&(dir, app)];
    assert_eq!(tally.delivered, 1);
    assert_eq!(tally.skipped, 1, "the ledger already holds version 1");
    assert_eq!(tally.retry_attempts, 0);

    let at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let docs = metrics.emf("bamboohr-sync/test", at);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["Target"], "app");
    assert_eq!(docs[0]["DeliveriesDelivered"], 1);
    assert_eq!(docs[0]["DeliveriesSkipped"], 1);
}
