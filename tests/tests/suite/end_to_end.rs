//! The walking skeleton end to end: BambooHR simulator -> poller handler -> DynamoDB
//! (moto) -> outbox -> SQS FIFO change queue (moto) -> dispatcher handler
//! -> a receiving app that verifies every signature with the official Standard
//! Webhooks library.

use std::time::Duration;

use bamboohr_simulator::{SimConfig, Simulator};
use domain::{Directory, DirectoryId, Target, TargetFilter, TargetId, TargetKind};
use integration_tests::{sqs_event, TestStack};
use lambda_runtime::{Context, LambdaEvent};
use ports::{DirectorySecrets, TargetSecrets};
use secrecy::SecretString;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn receiver() -> test_peers::PeerProcess {
    let script = test_peers::workspace_root().join("tests/peers/webhook_receiver.py");
    test_peers::spawn_python_peer(&script, &[], &[("WEBHOOK_SECRET", WHSEC)])
}

async fn deliveries(receiver: &test_peers::PeerProcess) -> Vec<serde_json::Value> {
    reqwest::get(format!("{}/deliveries", receiver.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_employees_flow_from_bamboohr_to_a_verified_app_webhook_and_a_resync_is_free() {
    let stack = TestStack::provision().await;
    // Deliveries need a retry queue; an in-process one stands in for the stack's SQS queue.
    let engine = function_support::aws_engine(&stack.sdk, &stack.config).with_retry_queue(
        std::sync::Arc::new(embedded_adapters::InProcessRetryQueue::new(
            std::sync::Arc::new(ports::SystemClock),
        )),
    );

    let simulator = Simulator::generate(SimConfig {
        api_key: "e2e-key".into(),
        seed: 3,
        employees: 3,
        ..SimConfig::default()
    });
    let sim = simulator.serve().await.unwrap();
    let app = receiver();

    let dir_id = DirectoryId::parse("acme").unwrap();
    let secret_name = "acme";
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "app".to_string(),
        TargetSecrets {
            signing_secrets: vec![SecretString::from(WHSEC)],
            ..Default::default()
        },
    );
    engine
        .secrets
        .put(
            secret_name,
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from("e2e-key")),
                targets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut directory = Directory::new(dir_id.clone(), "acme", secret_name).unwrap();
    directory.base_url = Some(sim.base_url.clone());
    directory.targets = vec![Target {
        id: TargetId::parse("app").unwrap(),
        kind: TargetKind::app_webhook(format!("{}/hooks/app", app.base_url())),
        filter: TargetFilter::default(),
        enabled: true,
    }];
    directory.version = 1;
    engine.store.put_directory(&directory, None).await.unwrap();

    // First sync: every employee becomes a user and a user.created event.
    let payload = serde_json::json!({ "directoryId": "acme", "mode": "full" });
    let poller = poller::Poller::new(engine.clone());
    let first = poller::handler(
        &poller,
        LambdaEvent::new(payload.clone(), Context::default()),
    )
    .await
    .unwrap()
    .run
    .expect("the directory was synced")
    .counts;
    let listed = first.seen;
    assert_eq!(listed, 3, "the simulator lists three employees");
    let synced = first.created as usize;
    assert_eq!(first.created + first.skipped, 3);
    // One user.created per user, then directory.sync_completed.
    assert_eq!(first.events_published as usize, synced + 1);

    let users = engine.store.list_users(&dir_id).await.unwrap();
    assert_eq!(users.len(), synced, "users land in DynamoDB");

    // EventBridge -> rule -> SQS FIFO, then the dispatcher handler.
    let messages = stack.receive(synced + 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), synced + 1, "every event reaches the queue");
    let response = dispatcher::handler(
        &engine,
        LambdaEvent::new(sqs_event(&messages), Context::default()),
    )
    .await
    .unwrap();
    assert!(
        response.batch_item_failures.is_empty(),
        "no delivery failed"
    );
    stack.delete(&messages).await;

    let all = deliveries(&app).await;
    assert_eq!(all.len(), synced + 1);
    assert_eq!(
        all.iter()
            .filter(|d| d["type"] == "directory.sync_completed")
            .count(),
        1,
        "the app hears that the sync completed"
    );
    let got: Vec<_> = all
        .into_iter()
        .filter(|d| d["type"] != "directory.sync_completed")
        .collect();
    for d in &got {
        assert_eq!(d["type"], "user.created");
        assert_eq!(
            d["verified"], true,
            "standardwebhooks verified the signature"
        );
        assert_eq!(d["webhookId"], d["id"], "webhook-id is the stable event id");
    }
    let mut delivered: Vec<String> = got
        .iter()
        .map(|d| d["objectId"].as_str().unwrap().to_string())
        .collect();
    let mut stored: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    delivered.sort();
    stored.sort();
    assert_eq!(delivered, stored);

    // Second sync with no BambooHR change: no user write, no event.
    let versions_before: Vec<u64> = users.iter().map(|u| u.version).collect();
    let second = poller::handler(&poller, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap()
        .run
        .expect("the directory was synced")
        .counts;
    assert_eq!(second.created, 0);
    assert_eq!(second.updated, 0);
    assert_eq!(second.unchanged as usize, synced);
    assert_eq!(second.events_published, 1, "only directory.sync_completed");
    let versions_after: Vec<u64> = engine
        .store
        .list_users(&dir_id)
        .await
        .unwrap()
        .iter()
        .map(|u| u.version)
        .collect();
    assert_eq!(
        versions_before, versions_after,
        "no user item was rewritten"
    );
    let after = stack.receive(2, Duration::from_secs(3)).await;
    assert_eq!(after.len(), 1, "no user event was published");
    assert!(after[0]
        .body
        .as_deref()
        .unwrap_or("")
        .contains("directory.sync_completed"));
}
