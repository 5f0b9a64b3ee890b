//! Write and configuration routes end to end on the AWS adapters, against moto
//! (DynamoDB, Secrets Manager, EventBridge, Scheduler, SQS): a sync request becomes a
//! one-time EventBridge Scheduler schedule in the stack's group, the status reports the
//! dead-letter queues' depth from SQS, a redrive empties them onto the retry queue;
//! configuration (connect with the webhook, settings, a target and its signing
//! secrets) lands in DynamoDB and Secrets Manager, the schedule follows; all of it is
//! audited in DynamoDB under the IAM caller, and no secret is in either table.

use std::sync::Arc;

use ::admin::AdminApi;
use aws_adapters::clients;
use aws_config::SdkConfig;
use bamboohr_simulator::{SimConfig, Simulator};
use domain::{DirectoryId, EventType, TargetId};
use function_support::testing::{
    deploy, moto_sdk, scheduler_settings, unique, MotoStack, POLLER_ARN,
};
use ports::{DeadLetter, RetryTask};
use secrecy::SecretString;
use serde_json::json;
use sync_engine::operate::{self, ConnectRequest, Credential};
use time::OffsetDateTime;

use bamboohr_simulator::LITMOS_ACCESS;

use crate::common::{get, post, API_KEY, CALLER, WEBHOOK_BASE_URL, WHSEC};

const SECRETS_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:123456789012:key/11112222-3333-4444-5555-666677778888";

async fn sdk() -> SdkConfig {
    moto_sdk(&test_peers::moto().endpoint).await
}

#[tokio::test(flavor = "multi_thread")]
async fn on_aws_a_sync_request_is_a_schedule_and_a_redrive_empties_the_reported_dead_letters() {
    let sdk = sdk().await;
    // As the template configures it: the status counts both dead-letter queues.
    let MotoStack {
        group,
        queues,
        engine,
        ..
    } = deploy(&sdk, "bsync-admin").await;
    let retry_url = queues.retry.clone();
    let retry = engine.retry_queue.clone().unwrap();

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
                force: false,
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

#[tokio::test(flavor = "multi_thread")]
async fn on_aws_configuration_through_the_api_lands_in_dynamodb_and_secrets_manager_audited() {
    let sdk = sdk().await;
    let MotoStack {
        config,
        audit_table,
        group,
        ..
    } = deploy(&sdk, "bsync-admin").await;
    // The admin function's secret store as its main builds it: the secrets key and
    // each part's readers as the template passes them.
    let vars = [
        ("SECRETS_KMS_KEY_ARN", SECRETS_KEY_ARN),
        ("SECRET_READERS_BAMBOOHR", "arn:aws:iam::123456789012:role/s-PollerFunctionRole-1,arn:aws:iam::123456789012:role/s-AdminFunctionRole-4"),
        ("SECRET_READERS_WEBHOOK", "arn:aws:iam::123456789012:role/s-WebhookFunctionRole-2,arn:aws:iam::123456789012:role/s-AdminFunctionRole-4"),
        ("SECRET_READERS_TARGETS", "arn:aws:iam::123456789012:role/s-DispatcherFunctionRole-3,arn:aws:iam::123456789012:role/s-PollerFunctionRole-1,arn:aws:iam::123456789012:role/s-AdminFunctionRole-4"),
    ];
    let secrets = function_support::SecretsAccess::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    // Without the deployed outbound policy: the simulator answers plain HTTP on loopback.
    let engine = function_support::aws_engine_with_secrets(&sdk, &config, &audit_table, &secrets)
        .with_scheduler(Arc::new(
            function_support::aws_scheduler(&sdk, &scheduler_settings(&group), POLLER_ARN).unwrap(),
        ));
    let sim = Simulator::generate(SimConfig {
        api_key: API_KEY.into(),
        employees: 3,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let api = AdminApi::new(engine, Some(WEBHOOK_BASE_URL.into()));
    let id = unique("acme");
    let path = format!("/admin/directories/{id}");

    // Connected with its webhook registered at the stack's URL.
    let (status, body) = post(
        &api,
        "/admin/directories",
        Some(
            json!({"id": id, "subdomain": "acme", "baseUrl": server.base_url,
                    "apiKey": API_KEY, "registerWebhook": true}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["webhookUrl"], format!("{WEBHOOK_BASE_URL}/{id}"));
    // Each part of the directory's secrets: the stack's key, its part tag, and a
    // resource policy that lets only its own function (and the admin API) use it.
    let secrets_manager = clients::secrets_manager(&sdk);
    for (part, readers) in [
        (ports::SecretPart::Bamboohr, &["PollerFunctionRole"][..]),
        (ports::SecretPart::Webhook, &["WebhookFunctionRole"][..]),
        (
            ports::SecretPart::Targets,
            &["DispatcherFunctionRole", "PollerFunctionRole"][..],
        ),
    ] {
        let secret_id = format!("{}{}", config.secret_prefix, part.secret_name(&id));
        let described = secrets_manager
            .describe_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .unwrap();
        assert_eq!(described.kms_key_id(), Some(SECRETS_KEY_ARN), "{part}");
        assert!(
            described.tags().iter().any(
                |t| t.key() == Some(aws_adapters::PART_TAG) && t.value() == Some(part.as_str())
            ),
            "{part}"
        );
        let policy = secrets_manager
            .get_resource_policy()
            .secret_id(&secret_id)
            .send()
            .await
            .unwrap();
        let policy = policy.resource_policy().unwrap_or_default();
        assert!(policy.contains("AdminFunctionRole"), "{part}: {policy}");
        for role in [
            "PollerFunctionRole",
            "WebhookFunctionRole",
            "DispatcherFunctionRole",
        ] {
            assert_eq!(
                policy.contains(role),
                readers.contains(&role),
                "{part}, {role}: {policy}"
            );
        }
    }
    let (_, keys) = get(&api, &format!("{path}/webhook-keys"), &[]).await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    assert!(
        keys["items"][0]["addedAt"].is_i64(),
        "ages kept in Secrets Manager"
    );

    // Settings: the schedule follows in EventBridge Scheduler, the webhook at BambooHR.
    let (status, body) = post(
        &api,
        &format!("{path}/settings"),
        Some(json!({"incrementalEveryMinutes": 10,
                    "customFieldMap": {LITMOS_ACCESS: "litmosAccess"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["monitorFields"]["result"], "updated", "{body}");
    let schedules = clients::scheduler(&sdk);
    let listed = schedules
        .list_schedules()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let mut expressions = Vec::new();
    for s in listed.schedules() {
        let got = schedules
            .get_schedule()
            .group_name(&group)
            .name(s.name().unwrap())
            .send()
            .await
            .unwrap();
        expressions.push(got.schedule_expression().unwrap_or_default().to_string());
    }
    assert!(
        expressions.iter().any(|e| e == "rate(10 minutes)"),
        "{expressions:?}"
    );

    // A target with a signing secret, its successor, a URL change, the old one retired.
    let (old, new) = (WHSEC.to_string(), format!("whsec_{}", "QUJD".repeat(8)));
    let (status, body) = post(
        &api,
        &format!("{path}/targets"),
        Some(json!({"id": "app", "kind": "app_webhook",
                    "url": "https://app.example.test/hooks", "secret": old})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secrets = format!("{path}/targets/app/secrets");
    let (status, body) = post(&api, &secrets, Some(json!({"secret": new}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["secrets"].as_array().unwrap().len(), 2);
    let (status, body) = post(
        &api,
        &format!("{path}/targets/app"),
        Some(json!({"kind": "app_webhook", "url": "https://app2.example.test/hooks"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let old_id = ports::key_id(&SecretString::from(old.clone()));
    let (status, body) = post(&api, &format!("{secrets}/{old_id}/retire"), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = get(&api, &secrets, &[]).await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ports::key_id(&SecretString::from(new.clone()))]);

    // The DynamoDB audit table has every change, under the caller, newest first.
    let (_, audit) = get(&api, &format!("{path}/audit"), &[]).await;
    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "key_change",
            "target_change",
            "key_change",
            "target_change",
            "webhook_change",
            "settings_change",
            "webhook_change",
            "connect"
        ]
    );
    assert!(entries.iter().all(|e| e["actor"] == CALLER));
    let url_change = &entries[1]["details"];
    assert_eq!(
        url_change["before"]["url"],
        "https://app.example.test/hooks"
    );
    assert_eq!(
        url_change["after"]["url"],
        "https://app2.example.test/hooks"
    );
    assert_eq!(
        entries[7]["details"]["baseUrl"]["after"],
        json!(server.base_url),
        "where the API key is sent"
    );

    // No secret is in either table: they live in Secrets Manager only.
    let dynamodb = clients::dynamodb(&sdk);
    for table in [&config.table_name, &audit_table] {
        let items = dynamodb.scan().table_name(table).send().await.unwrap();
        let text = format!("{:?}", items.items());
        for secret in [&old, &new] {
            assert!(
                !text.contains(secret.trim_start_matches("whsec_")),
                "{table}"
            );
        }
    }
}
