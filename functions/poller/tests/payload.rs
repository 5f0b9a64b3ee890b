//! The poller handler refuses payloads it cannot act on, naming the problem.

use std::sync::Arc;

use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_runtime::{Context, LambdaEvent};
use poller::Poller;
use ports::SystemClock;
use sync_engine::Engine;

fn engine() -> Poller {
    let (bus, _rx) = InProcessBus::new();
    Poller::new(Engine::new(
        Arc::new(SqliteStore::in_memory()),
        Arc::new(FileSecrets::env_only()),
        Arc::new(bus),
        Arc::new(SystemClock),
    ))
}

#[tokio::test]
async fn a_payload_without_a_directory_id_is_refused_with_a_clear_message() {
    let err = poller::handler(
        &engine(),
        LambdaEvent::new(serde_json::json!({ "mode": "full" }), Context::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("directoryId"), "{err}");
}

#[tokio::test]
async fn an_unknown_mode_is_refused() {
    let payload = serde_json::json!({ "directoryId": "acme", "mode": "sometimes" });
    let err = poller::handler(&engine(), LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid poller payload"), "{err}");
}

#[tokio::test]
async fn an_unknown_directory_is_acknowledged_without_a_run() {
    // A schedule left behind by a removed directory must not retry forever.
    let payload = serde_json::json!({ "directoryId": "acme" });
    let response = poller::handler(&engine(), LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert!(response.run.is_none());
}

#[tokio::test]
async fn a_malformed_sweep_is_refused_and_a_sweep_with_no_directories_finds_none() {
    let bad = serde_json::json!({ "sweep": "yes" });
    let err = poller::handler(&engine(), LambdaEvent::new(bad, Context::default()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sweep"), "{err}");
    let ok = serde_json::json!({ "sweep": true });
    let response = poller::handler(&engine(), LambdaEvent::new(ok, Context::default()))
        .await
        .unwrap();
    assert!(response.stale.is_empty() && response.run.is_none());
}

#[tokio::test]
async fn the_sweep_purges_a_revoked_directory_once_its_retention_has_passed_and_not_before() {
    use domain::{Directory, DirectoryId};
    use ports::FixedClock;
    use sync_engine::operate::retention::RevokedRetention;

    let (bus, _rx) = InProcessBus::new();
    let revoked_at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let clock = Arc::new(FixedClock::new(revoked_at));
    let engine = Engine::new(
        Arc::new(SqliteStore::in_memory()),
        Arc::new(FileSecrets::env_only()),
        Arc::new(bus),
        clock.clone(),
    );
    let id = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(id.clone(), "acme", "acme").unwrap();
    d.version = 1;
    engine.store.put_directory(&d, None).await.unwrap();
    sync_engine::operate::revoke(
        &engine,
        &embedded_adapters::InProcessScheduler::new(),
        &id,
        "ops",
    )
    .await
    .unwrap();
    let poller = Poller::new(engine).with_revoked_retention(RevokedRetention::days(7).unwrap());
    let sweep = || LambdaEvent::new(serde_json::json!({ "sweep": true }), Context::default());

    clock.set(revoked_at + time::Duration::days(7) - time::Duration::seconds(1));
    let response = poller::handler(&poller, sweep()).await.unwrap();
    assert!(response.purged.is_empty());
    assert!(poller
        .engine
        .store
        .get_directory(&id)
        .await
        .unwrap()
        .is_some());

    clock.set(revoked_at + time::Duration::days(7));
    let response = poller::handler(&poller, sweep()).await.unwrap();
    assert_eq!(response.purged, vec![id.clone()]);
    assert!(poller
        .engine
        .store
        .get_directory(&id)
        .await
        .unwrap()
        .is_none());
}
