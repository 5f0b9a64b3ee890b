//! Write routes end to end on the AWS adapters, against moto (DynamoDB, Secrets
//! Manager, EventBridge, Scheduler, SQS): a sync request becomes a one-time
//! EventBridge Scheduler schedule in the stack's group, the status reports the
//! dead-letter queues' depth from SQS, a redrive empties them onto the retry queue,
//! and both are audited in DynamoDB under the IAM caller.

use std::sync::Arc;

use ::admin::AdminApi;
use aws_adapters::{
    clients, create_audit_table, create_table, EventBridgeScheduler, SqsRetryQueue,
};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use bamboohr_simulator::{SimConfig, Simulator};
use domain::{DirectoryId, EventType, TargetId};
use ports::{DeadLetter, RetryQueue, RetryTask};
use secrecy::SecretString;
use serde_json::json;
use sync_engine::operate::{self, ConnectRequest, Credential};
use time::OffsetDateTime;

use crate::common::{get, post, CALLER};

const POLLER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bsync-poller";

async fn sdk() -> SdkConfig {
    let moto = test_peers::moto();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn queue(sdk: &SdkConfig, name: &str) -> String {
    clients::sqs(sdk)
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_aws_a_sync_request_is_a_schedule_and_a_redrive_empties_the_reported_dead_letters() {
    let sdk = sdk().await;
    let table = unique("bsync-admin");
    create_table(&clients::dynamodb(&sdk), &table)
        .await
        .unwrap();
    let audit_table = format!("{table}-audit");
    create_audit_table(&clients::dynamodb(&sdk), &audit_table)
        .await
        .unwrap();
    let bus = unique("bsync-bus");
    clients::eventbridge(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let group = unique("bsync-schedules");
    clients::scheduler(&sdk)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let retry_url = queue(&sdk, "retry").await;
    let delivery_dlq = queue(&sdk, "delivery-dlq").await;
    let change_dlq = queue(&sdk, "change-dlq").await;
    let config = function_support::StackConfig {
        table_name: table,
        event_bus_name: bus,
        secret_prefix: format!("bamboohr-sync/{}/", unique("stack")),
    };
    let settings = function_support::SchedulerSettings {
        group_name: group.clone(),
        role_arn: "arn:aws:iam::123456789012:role/bsync-scheduler".into(),
        dead_letter_arn: "arn:aws:sqs:us-east-1:123456789012:bsync-poller-dlq".into(),
    };
    // As the template configures it: the status counts both dead-letter queues.
    let retry = Arc::new(
        SqsRetryQueue::new(&sdk, retry_url.clone(), delivery_dlq.clone())
            .with_change_dead_letter_queue(change_dlq),
    );
    let engine = function_support::aws_engine_with_audit_table(&sdk, &config, &audit_table)
        .with_retry_queue(retry.clone())
        .with_scheduler(Arc::new(EventBridgeScheduler::new(
            &sdk,
            settings.targeting(POLLER_ARN).unwrap(),
        )));

    let sim = Simulator::generate(SimConfig {
        api_key: "k".into(),
        employees: 3,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let id = DirectoryId::parse(unique("acme")).unwrap();
    operate::connect(
        &engine,
        engine.scheduler.as_deref().unwrap(),
        ConnectRequest {
            directory_id: id.clone(),
            subdomain: "acme".into(),
            base_url: Some(server.base_url.clone()),
            credential: Credential::ApiKey(SecretString::from("k")),
            time_zone: None,
            register_webhook_at: None,
        },
        CALLER,
    )
    .await
    .unwrap();
    let engine_user = first_synced_user(&engine, &id).await;
    let api = AdminApi::new(engine, None);
    let path = format!("/admin/directories/{id}");

    // A sync request: one one-time schedule in the stack's group, asking for a full run.
    let (status, body) = post(&api, &format!("{path}/sync"), Some(json!({"mode": "full"}))).await;
    assert_eq!(status, 202, "{body}");
    let scheduler = clients::scheduler(&sdk);
    let listed = scheduler
        .list_schedules()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let once: Vec<String> = listed
        .schedules()
        .iter()
        .filter_map(|s| s.name().map(str::to_string))
        .filter(|n| n.starts_with("once.full."))
        .collect();
    assert_eq!(once.len(), 1, "one one-time schedule: {listed:?}");
    let schedule = scheduler
        .get_schedule()
        .group_name(&group)
        .name(&once[0])
        .send()
        .await
        .unwrap();
    let input = schedule
        .target()
        .and_then(|t| t.input())
        .unwrap_or_default();
    let input: serde_json::Value = serde_json::from_str(input).unwrap();
    assert_eq!(input["mode"], "full");
    assert_eq!(input["directoryId"], json!(id));

    // A dead letter in the delivery dead-letter queue shows in the status.
    let (status, body) = get(&api, &format!("{path}/status"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deadLetterDepth"], 0);
    let user = engine_user;
    let now = OffsetDateTime::now_utc();
    retry
        .dead_letter(&DeadLetter {
            task: RetryTask {
                target_id: TargetId::parse("app").unwrap(),
                event: domain::ChangeEvent::for_user(EventType::UserUpdated, &user, now),
                retries: 10,
                due_at: now,
                first_failed_at: now,
                last_error: "503".into(),
            },
            reason: "11 attempts failed".into(),
        })
        .await
        .unwrap();
    let (_, body) = get(&api, &format!("{path}/status"), &[]).await;
    assert_eq!(body["deadLetterDepth"], 1);

    // The redrive puts it on the retry queue; the status says so.
    let (status, body) = post(&api, "/admin/dead-letters/redrive", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redriven"], 1);
    let (_, body) = get(&api, &format!("{path}/status"), &[]).await;
    assert_eq!(body["deadLetterDepth"], 0);
    let waiting = clients::sqs(&sdk)
        .get_queue_attributes()
        .queue_url(&retry_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let waiting = waiting
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .cloned();
    assert_eq!(waiting.as_deref(), Some("1"));

    // Both are in the DynamoDB audit log, under the IAM caller.
    let audit = api.engine.store.list_audit(&id, 2).await.unwrap();
    let got: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(got, [("replay", CALLER), ("sync", CALLER)]);
}

/// Runs a full sync (its audit entry is the poller's) and returns a user it wrote:
/// a dead letter names a real object.
async fn first_synced_user(
    engine: &sync_engine::Engine,
    id: &DirectoryId,
) -> domain::DirectoryUser {
    sync_engine::operate::run_sync(
        engine,
        &domain::SyncRequest {
            directory_id: id.clone(),
            mode: domain::SyncMode::Full,
        },
        &sync_engine::reconcile::run::RunOptions::default(),
    )
    .await
    .unwrap();
    engine.store.list_users(id).await.unwrap().remove(0)
}
