//! The dispatcher on the AWS adapters against moto (DynamoDB, Secrets Manager,
//! EventBridge, SQS) and real peers: an HTTP upsert endpoint with a gate filter and a
//! missing-email skip, EventBridge re-publish to a customer's bus (moto routes it to
//! a queue), app webhooks verified by the official `standardwebhooks` library, the SQS
//! retry queue beside a healthy target with duplicated FIFO messages, and dead letters
//! re-driven from the SQS dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, Target,
    TargetFilter, TargetId, TargetKind, UserState,
};
use integration_tests::{sqs_event, unique, TestStack};
use lambda_runtime::{Context, LambdaEvent};
use ports::{
    DeliveryQuery, DeliveryStatus, DirectorySecrets, RetryEnvelope, RetryQueue, TargetSecrets,
    UserWrite,
};
use secrecy::SecretString;
use serde_json::Value;
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::Engine;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn peer(script: &str, env: &[(&str, &str)]) -> test_peers::PeerProcess {
    let path = test_peers::workspace_root()
        .join("tests/peers")
        .join(script);
    test_peers::spawn_python_peer(&path, &[], env)
}

async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// A standard queue on moto; returns (url, arn).
async fn queue(stack: &TestStack, name: &str) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = sqs
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    (url, arn)
}

/// Receives up to `want` messages from `url` within `patience`.
async fn receive(stack: &TestStack, url: &str, want: usize, patience: Duration) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let deadline = tokio::time::Instant::now() + patience;
    let mut out = Vec::new();
    while out.len() < want && tokio::time::Instant::now() < deadline {
        let resp = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in resp.messages() {
            out.push(m.body().unwrap_or_default().to_string());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    out
}

/// The engine the dispatcher function builds, on moto, with its own retry and
/// dead-letter queues.
async fn engine(stack: &TestStack) -> (Engine, String, String) {
    let (retry_url, _) = queue(stack, "retry").await;
    let (dlq_url, _) = queue(stack, "delivery-dlq").await;
    // What `function_support::with_delivery` builds from the environment; built
    // directly here because tests in one process share the environment.
    let engine = function_support::aws_engine(&stack.sdk, &stack.config)
        .with_retry_queue(Arc::new(aws_adapters::SqsRetryQueue::new(
            &stack.sdk, &retry_url, &dlq_url,
        )))
        .with_foreign_bus(Arc::new(aws_adapters::CustomerEventBus::new(&stack.sdk)));
    (engine, retry_url, dlq_url)
}

async fn directory(
    engine: &Engine,
    targets: Vec<Target>,
    secrets: BTreeMap<String, TargetSecrets>,
) {
    engine
        .secrets
        .put(
            "acme",
            &DirectorySecrets {
                targets: secrets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut d = Directory::new(DirectoryId::parse("acme").unwrap(), "acme", "acme").unwrap();
    d.targets = targets;
    d.version = 1;
    engine.store.put_directory(&d, None).await.unwrap();
}

fn employee(id: &str, first: &str, email: Option<&str>, litmos: bool) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        DirectoryId::parse("acme").unwrap(),
        EmployeeId::parse(id).unwrap(),
        UserState::Active,
    );
    u.first_name = Some(first.into());
    u.last_name = Some("Tester".into());
    u.job_title = Some("Engineer".into());
    if let Some(e) = email {
        u.emails = vec![Email {
            value: e.into(),
            kind: EmailKind::Work,
            primary: true,
        }];
    }
    // The checkbox as BambooHR writes it (and the mapping stores it): "Yes"/"No".
    u.custom_attributes.insert(
        "litmosAccess".into(),
        Value::String(if litmos { "Yes" } else { "No" }.into()),
    );
    u
}

/// Stores the next version of `user`; returns its change event.
async fn save(engine: &Engine, mut user: DirectoryUser) -> ChangeEvent {
    let before = engine
        .store
        .get_user(&user.directory_id, &user.employee_id)
        .await
        .unwrap();
    user.version = before.as_ref().map_or(1, |b| b.version + 1);
    user.refresh_fingerprint();
    let event = domain::ChangeEvent::for_user_write(
        before.as_ref(),
        &user,
        time::OffsetDateTime::now_utc(),
    );
    engine
        .store
        .write_user(&UserWrite {
            user,
            expected_version: before.map(|b| b.version),
            events: vec![],
        })
        .await
        .unwrap();
    event
}

fn target(id: &str, kind: TargetKind) -> Target {
    Target {
        id: TargetId::parse(id).unwrap(),
        kind,
        filter: TargetFilter::default(),
        enabled: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_upsert_sends_gated_users_with_the_secret_api_key_and_skips_a_missing_email() {
    let stack = TestStack::provision().await;
    let (engine, _, _) = engine(&stack).await;
    let lms = peer("upsert_receiver.py", &[]);
    let mut lms_target = target(
        "lms",
        TargetKind::HttpUpsert {
            url: format!("{}/v1/users/upsert?source=bamboohr-sync", lms.base_url()),
            fields: vec![
                "username".into(),
                "firstName".into(),
                "lastName".into(),
                "jobTitle".into(),
                "active".into(),
            ],
            required: vec!["lastName".into()],
            gate_exit: domain::GateExit::Deactivate,
        },
    );
    lms_target
        .filter
        .field_in
        .insert("litmosAccess".into(), vec!["Yes".into()]);
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "lms".to_string(),
        TargetSecrets {
            url_params: BTreeMap::from([("apikey".to_string(), SecretString::from("k-123"))]),
            ..Default::default()
        },
    );
    directory(&engine, vec![lms_target], secrets).await;

    let ada = save(&engine, employee("1", "Ada", Some("ada@acme.test"), true)).await;
    let bob = save(&engine, employee("2", "Bob", Some("bob@acme.test"), false)).await;
    let cy = save(&engine, employee("3", "Cy", None, true)).await;
    for e in [&ada, &bob, &cy] {
        assert!(!dispatch(&engine, e).await.unwrap().needs_retry());
    }

    let got = get_json(format!("{}/received", lms.base_url())).await;
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 1, "only the gated user with an email: {got:#?}");
    assert_eq!(got[0]["path"], "/v1/users/upsert");
    assert_eq!(
        got[0]["query"]["apikey"], "k-123",
        "the secret part is added"
    );
    assert_eq!(got[0]["query"]["source"], "bamboohr-sync");
    let body = got[0]["body"].as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["active", "firstName", "jobTitle", "lastName", "username"]
    );
    assert_eq!(body["username"], "ada@acme.test");

    // The import results say why the others were not sent.
    let dir = DirectoryId::parse("acme").unwrap();
    let log = engine
        .store
        .list_deliveries(
            &dir,
            &DeliveryQuery {
                target: Some(TargetId::parse("lms").unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let by_object: BTreeMap<&str, &ports::DeliveryRecord> =
        log.iter().map(|r| (r.object_id.as_str(), r)).collect();
    assert_eq!(
        by_object[ada.object_id.as_str()].status,
        DeliveryStatus::Delivered
    );
    let bob_log = by_object[bob.object_id.as_str()];
    assert_eq!(bob_log.status, DeliveryStatus::Skipped);
    assert!(bob_log
        .skipped_reason
        .as_deref()
        .unwrap()
        .contains("litmosAccess"));
    let cy_log = by_object[cy.object_id.as_str()];
    assert_eq!(cy_log.status, DeliveryStatus::Skipped);
    assert!(
        cy_log
            .skipped_reason
            .as_deref()
            .unwrap()
            .contains("work email"),
        "{cy_log:?}"
    );

    // The learner's id from the answer is remembered (DynamoDB), so an email change
    // updates the one learner; unticking the box deactivates it.
    let ada_user = engine
        .store
        .get_user(&dir, &EmployeeId::parse("1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let lms_id = TargetId::parse("lms").unwrap();
    let remembered = engine
        .store
        .get_target_account(&dir, &lms_id, ada_user.id.as_str())
        .await
        .unwrap()
        .expect("the learner id is remembered");
    let renamed = save(
        &engine,
        employee("1", "Ada", Some("ada.lovelace@acme.test"), true),
    )
    .await;
    assert!(!dispatch(&engine, &renamed).await.unwrap().needs_retry());
    let unticked = save(
        &engine,
        employee("1", "Ada", Some("ada.lovelace@acme.test"), false),
    )
    .await;
    assert!(!dispatch(&engine, &unticked).await.unwrap().needs_retry());
    let learners = get_json(format!("{}/learners", lms.base_url())).await;
    let learners = learners.as_array().unwrap();
    assert_eq!(learners.len(), 1, "one learner per employee: {learners:#?}");
    assert_eq!(learners[0]["id"], remembered.as_str());
    assert_eq!(learners[0]["body"]["username"], "ada.lovelace@acme.test");
    assert_eq!(learners[0]["body"]["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_targets_republish_each_change_to_the_customers_bus() {
    let stack = TestStack::provision().await;
    let (engine, _, _) = engine(&stack).await;
    let events = aws_sdk_eventbridge::Client::new(&stack.sdk);
    let bus_name = unique("customer");
    let bus_arn = events
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await
        .unwrap()
        .event_bus_arn()
        .unwrap()
        .to_string();
    let (inbox_url, inbox_arn) = queue(&stack, "customer-inbox").await;
    let rule = unique("all");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus_name)
        .event_pattern(r#"{"source": ["bamboohr-sync"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus_name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("inbox")
                .arn(&inbox_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    directory(
        &engine,
        // The bus receives only what its projection names (and the user's identity).
        vec![target(
            "bus",
            TargetKind::EventBridge {
                bus_arn: bus_arn.clone(),
                projection: Some(domain::FieldProjection::parse(&["firstName".into()]).unwrap()),
            },
        )],
        BTreeMap::new(),
    )
    .await;

    let ada = save(&engine, employee("1", "Ada", Some("ada@acme.test"), true)).await;
    let report = dispatch(&engine, &ada).await.unwrap();
    assert!(
        matches!(report.targets[0].1, TargetOutcome::Delivered { .. }),
        "{report:?}"
    );
    let got = receive(&stack, &inbox_url, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let envelope: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(envelope["source"], "bamboohr-sync");
    assert_eq!(envelope["detail-type"], "user.created");
    assert_eq!(envelope["detail"]["id"], ada.id.as_str());
    assert_eq!(envelope["detail"]["data"]["firstName"], "Ada");
    assert_eq!(envelope["detail"]["data"]["employeeId"], "1");
    let data = envelope["detail"]["data"].as_object().unwrap();
    for cut in ["emails", "lastName", "rawAttributes", "customAttributes"] {
        assert!(!data.contains_key(cut), "{cut} reached the bus");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_goes_to_the_sqs_retry_queue_while_the_verified_app_gets_each_event_once()
{
    let stack = TestStack::provision().await;
    let (engine, retry_url, _) = engine(&stack).await;
    let app = peer("webhook_receiver.py", &[("WEBHOOK_SECRET", WHSEC)]);
    let down = peer(
        "webhook_receiver.py",
        &[("WEBHOOK_SECRET", WHSEC), ("RESPOND_STATUS", "503")],
    );
    let signing = TargetSecrets {
        signing_secrets: vec![SecretString::from(WHSEC)],
        ..Default::default()
    };
    directory(
        &engine,
        vec![
            target(
                "app",
                TargetKind::app_webhook(format!("{}/hooks", app.base_url())),
            ),
            target(
                "down",
                TargetKind::app_webhook(format!("{}/hooks", down.base_url())),
            ),
        ],
        BTreeMap::from([
            ("app".to_string(), signing.clone()),
            ("down".to_string(), signing),
        ]),
    )
    .await;

    // Two versions through the real path: outbox -> FIFO change queue.
    let v1 = save(&engine, employee("1", "Ada", Some("ada@acme.test"), true)).await;
    engine.bus.publish(std::slice::from_ref(&v1)).await.unwrap();
    let v2 = save(
        &engine,
        employee("1", "Ada L.", Some("ada@acme.test"), true),
    )
    .await;
    engine.bus.publish(std::slice::from_ref(&v2)).await.unwrap();
    let messages = stack.receive(2, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 2);

    // Delivered as a batch, then the same batch again reordered (a duplicate and
    // out-of-order redelivery).
    let mut reordered = messages.clone();
    reordered.reverse();
    for batch in [&messages, &reordered] {
        let response = dispatcher::handler(
            &engine,
            LambdaEvent::new(sqs_event(batch), Context::default()),
        )
        .await
        .unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "the failing target does not fail the change messages"
        );
    }
    stack.delete(&messages).await;

    let got = get_json(format!("{}/deliveries", app.base_url())).await;
    let got = got.as_array().unwrap();
    let versions: Vec<u64> = got.iter().map(|d| d["version"].as_u64().unwrap()).collect();
    assert!(
        versions == vec![2] || versions == vec![1, 2],
        "each version at most once, never older after newer: {versions:?}"
    );
    assert!(got.iter().all(|d| d["verified"] == true));

    // The failing target's deliveries wait in the retry queue, each for the current
    // state; running one re-schedules it with the next delay.
    let retries = receive(&stack, &retry_url, 1, Duration::from_secs(20)).await;
    assert!(!retries.is_empty(), "a retry was scheduled on SQS");
    let task: RetryEnvelope = serde_json::from_str(&retries[0]).unwrap();
    assert_eq!(task.retry_task.target_id.as_str(), "down");
    assert_eq!(task.retry_task.retries, 0);
    let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
    message.message_id = Some("retry-1".into());
    message.body = Some(retries[0].clone());
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = vec![message];
    tokio::time::sleep(Duration::from_secs(7)).await; // past the first 5-6 s delay
    let response = dispatcher::handler(&engine, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let log = engine
        .store
        .get_delivery(
            &DirectoryId::parse("acme").unwrap(),
            &TargetId::parse("down").unwrap(),
            &v1.object_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.status, DeliveryStatus::Retrying);
    assert!(log.status_codes.iter().all(|s| *s == 503));
    assert!(log.next_attempt_at.is_some());
    let next = receive(&stack, &retry_url, 3, Duration::from_secs(3)).await;
    assert!(
        next.iter()
            .filter_map(|b| serde_json::from_str::<RetryEnvelope>(b).ok())
            .all(|t| t.retry_task.retries <= 1),
        "re-scheduled with the next retry number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_sqs_are_re_driven_onto_the_retry_queue() {
    let stack = TestStack::provision().await;
    let (engine, retry_url, dlq_url) = engine(&stack).await;
    let queue = aws_adapters::SqsRetryQueue::new(&stack.sdk, &retry_url, &dlq_url);
    let ada = employee("1", "Ada", Some("ada@acme.test"), true);
    let event = domain::ChangeEvent::for_user_write(None, &ada, time::OffsetDateTime::now_utc());
    let task = ports::RetryTask {
        target_id: TargetId::parse("app").unwrap(),
        event,
        retries: 10,
        due_at: time::OffsetDateTime::now_utc(),
        first_failed_at: time::OffsetDateTime::now_utc() - time::Duration::hours(76),
        last_error: "POST: HTTP 503".into(),
        force: false,
    };
    queue
        .dead_letter(&ports::DeadLetter {
            task: task.clone(),
            reason: "11 attempts failed over 76 hours".into(),
        })
        .await
        .unwrap();

    let redriven = sync_engine::deliver::replay::redrive_dead_letters(&engine, 10, None)
        .await
        .unwrap();
    assert_eq!(redriven.values().sum::<usize>(), 1);
    assert!(
        queue.receive_dead_letters(10).await.unwrap().is_empty(),
        "the dead letter was acknowledged"
    );
    let again = receive(&stack, &retry_url, 1, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 1);
    let envelope: RetryEnvelope = serde_json::from_str(&again[0]).unwrap();
    assert_eq!(envelope.retry_task.retries, 0, "a fresh schedule");
    assert_eq!(envelope.retry_task.event.id, task.event.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_secret_rotation_a_receiver_holding_only_the_old_secret_still_verifies() {
    let stack = TestStack::provision().await;
    let (engine, _, _) = engine(&stack).await;
    let app = peer("webhook_receiver.py", &[("WEBHOOK_SECRET", WHSEC)]);
    directory(
        &engine,
        vec![target(
            "app",
            TargetKind::app_webhook(format!("{}/hooks", app.base_url())),
        )],
        BTreeMap::from([(
            "app".to_string(),
            TargetSecrets {
                // Newest first: the new secret, then the one the receiver still holds.
                signing_secrets: vec![
                    SecretString::from("whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="),
                    SecretString::from(WHSEC),
                ],
                ..Default::default()
            },
        )]),
    )
    .await;
    let ada = save(&engine, employee("1", "Ada", Some("ada@acme.test"), true)).await;
    let report = dispatch(&engine, &ada).await.unwrap();
    assert!(
        matches!(
            report.targets[0].1,
            TargetOutcome::Delivered { status: 204, .. }
        ),
        "{report:?}"
    );
    let got = get_json(format!("{}/deliveries", app.base_url())).await;
    assert_eq!(got.as_array().unwrap().len(), 1);
    assert_eq!(got[0]["verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_target_in_dynamodb_and_publishes_target_disabled() {
    let stack = TestStack::provision().await;
    let (engine, retry_url, _) = engine(&stack).await;
    let gone = peer(
        "webhook_receiver.py",
        &[("WEBHOOK_SECRET", WHSEC), ("RESPOND_STATUS", "410")],
    );
    directory(
        &engine,
        vec![target(
            "gone",
            TargetKind::app_webhook(format!("{}/hooks", gone.base_url())),
        )],
        BTreeMap::from([(
            "gone".to_string(),
            TargetSecrets {
                signing_secrets: vec![SecretString::from(WHSEC)],
                ..Default::default()
            },
        )]),
    )
    .await;
    let ada = save(&engine, employee("1", "Ada", Some("ada@acme.test"), true)).await;
    let report = dispatch(&engine, &ada).await.unwrap();
    assert!(
        matches!(
            report.targets[0].1,
            TargetOutcome::Failed {
                retryable: false,
                ..
            }
        ),
        "{report:?}"
    );
    assert!(!report.needs_retry());

    let dir = DirectoryId::parse("acme").unwrap();
    let stored = engine.store.get_directory(&dir).await.unwrap().unwrap();
    assert!(!stored.targets[0].enabled, "disabled in DynamoDB");
    assert_eq!(stored.version, 2, "one conditional write");

    // The event went out through the outbox to the change queue.
    let messages = stack.receive(1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1);
    let notice: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(notice["type"], "directory.target_disabled");
    assert_eq!(notice["data"]["targetId"], "gone");
    stack.delete(&messages).await;

    assert!(
        receive(&stack, &retry_url, 1, Duration::from_secs(2))
            .await
            .is_empty(),
        "a 410 is never retried"
    );
    let later = save(
        &engine,
        employee("1", "Ada L.", Some("ada@acme.test"), true),
    )
    .await;
    assert!(dispatch(&engine, &later).await.unwrap().targets.is_empty());
}
