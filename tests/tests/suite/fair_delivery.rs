//! Fair delivery on the real path (issue 19): the outbox publishes through the stack's
//! bus and change queue on moto (SQS FIFO, one message group per directory and lane),
//! and an emulated SQS event source mapping runs the real dispatcher handler. A poison
//! message ahead of a good change in the same message group, a change of a directory
//! that no longer exists, and a revoked directory's queued changes are all
//! acknowledged at once (the first two set aside in the change dead-letter queue with
//! their reason); the good directory's changes reach its verifying app receiver, and
//! nothing is retried in place.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use domain::{
    ChangeEvent, DirectoryId, DirectoryState, DirectoryUser, EmployeeId, EventType, UserState,
};
use integration_tests::event_source::{dispatcher_handler, EventSource, EventSourceConfig};
use integration_tests::noisy_neighbour::{directory, new_user, WHSEC};
use integration_tests::{unique, TestStack};
use sync_engine::Engine;

async fn create_queue(stack: &TestStack, name: &str, fifo: bool) -> String {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let mut req = sqs.create_queue();
    if fifo {
        req = req
            .queue_name(format!("{}.fifo", unique(name)))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
    } else {
        req = req.queue_name(unique(name));
    }
    req.send().await.unwrap().queue_url().unwrap().to_string()
}

/// Stores `count` new users with their `user.created` events in the outbox; returns
/// their user ids.
async fn users(engine: &Engine, dir: &DirectoryId, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 1..=count {
        new_user(engine, dir, n).await;
        ids.push(
            domain::UserId::derive(dir, &EmployeeId::parse(n.to_string()).unwrap()).to_string(),
        );
    }
    ids
}

async fn receiver_object_ids(receiver: &test_peers::PeerProcess) -> Vec<String> {
    let got: Vec<serde_json::Value> = reqwest::get(format!("{}/deliveries", receiver.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(got.iter().all(|d| d["verified"] == true), "{got:?}");
    got.iter()
        .filter_map(|d| d["objectId"].as_str().map(str::to_string))
        .collect()
}

async fn queue_is_empty(stack: &TestStack, url: &str) -> bool {
    let attrs = aws_sdk_sqs::Client::new(&stack.sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes().unwrap();
    a[&QueueAttributeName::ApproximateNumberOfMessages] == "0"
        && a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible] == "0"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_a_vanished_directory_and_a_revoked_directorys_backlog_stall_nobody() {
    let stack = TestStack::provision().await;
    let retry = create_queue(&stack, "retry", false).await;
    let delivery_dlq = create_queue(&stack, "delivery-dlq", false).await;
    let change_dlq = create_queue(&stack, "change-dlq", true).await;
    let engine = stack.engine().with_retry_queue(Arc::new(
        aws_adapters::SqsRetryQueue::new(&stack.sdk, retry, delivery_dlq)
            .with_change_dead_letter_queue(change_dlq.clone()),
    ));
    let script = test_peers::workspace_root().join("tests/peers/webhook_receiver.py");
    let app = test_peers::spawn_python_peer(&script, &[], &[("WEBHOOK_SECRET", WHSEC)]);
    let hook = format!("{}/hooks/app", app.base_url());

    // A directory whose 20 queued changes are published, then it is revoked.
    let revoked = directory(&engine, "revoked", &hook).await;
    users(&engine, &revoked, 20).await;
    let flushed = sync_engine::reconcile::outbox::flush(&engine, &revoked)
        .await
        .unwrap();
    assert_eq!(flushed.published, 20);
    let mut d = engine.store.get_directory(&revoked).await.unwrap().unwrap();
    d.state = DirectoryState::Revoked;
    engine.store.put_directory(&d, Some(1)).await.unwrap();

    // The good directory's first change will share a message group with a poison
    // message sent ahead of it, and with a change of a directory that does not exist.
    let good = directory(&engine, "good", &hook).await;
    let first_user = DirectoryUser::new(
        good.clone(),
        EmployeeId::parse("1").unwrap(),
        UserState::Active,
    );
    let probe = ChangeEvent::for_user_write(None, &first_user, time::OffsetDateTime::now_utc());
    let group = aws_adapters::message_group(&probe, stack.config.delivery_lanes);
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    sqs.send_message()
        .queue_url(&stack.queue_url)
        .message_body("{not a change")
        .message_group_id(&group)
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();
    let ghost = ChangeEvent::new(
        EventType::UserCreated,
        DirectoryId::parse("ghost").unwrap(),
        "usr_ghost",
        1,
        time::OffsetDateTime::now_utc(),
        serde_json::json!({}),
    );
    sqs.send_message()
        .queue_url(&stack.queue_url)
        .message_body(serde_json::to_string(&ghost).unwrap())
        .message_group_id(&group)
        .message_deduplication_id("ghost-1")
        .send()
        .await
        .unwrap();
    let expected: BTreeSet<String> = users(&engine, &good, 3).await.into_iter().collect();
    sync_engine::reconcile::outbox::flush(&engine, &good)
        .await
        .unwrap();

    // Lambda's event source mapping, two concurrent dispatchers; a failure would come
    // back after a second (so a retry in place would show as failures below).
    let source = EventSource::start(
        &stack.sdk,
        EventSourceConfig {
            queue_url: stack.queue_url.clone(),
            workers: 2,
            batch_size: 10,
            failed_visibility: Duration::from_secs(1),
        },
        dispatcher_handler(engine.clone()),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let delivered: BTreeSet<String> = receiver_object_ids(&app).await.into_iter().collect();
        if delivered == expected && queue_is_empty(&stack, &stack.queue_url).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the good directory's changes were held up: {delivered:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = source.stop().await;
    assert_eq!(
        stats.failed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was retried in place"
    );
    let delivered = receiver_object_ids(&app).await;
    assert_eq!(
        delivered.len(),
        3,
        "exactly the good directory's changes, once each: {delivered:?}"
    );

    // The poison and the ghost's change wait in the change dead-letter queue, each
    // with why; the revoked directory's changes were dropped, not dead-lettered.
    let set_aside = sqs
        .receive_message()
        .queue_url(&change_dlq)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let mut reasons: Vec<String> = set_aside
        .messages()
        .iter()
        .map(|m| {
            m.message_attributes().unwrap()["reason"]
                .string_value()
                .unwrap()
                .to_string()
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("directory ghost not found"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("not a change event"), "{reasons:?}");
}

/// The noisy-neighbour scenario, bounded for CI (the figures come from
/// `--bench noisy_neighbour`): while A's flood drains through its two lanes, B's
/// changes arrive too, every change signed, and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_directory_leaves_the_quiet_ones_changes_flowing() {
    let sdk = integration_tests::moto_sdk().await;
    let outcome = integration_tests::noisy_neighbour::run(
        &sdk,
        &integration_tests::noisy_neighbour::Scenario {
            flood: 120,
            target_latency: Duration::from_millis(50),
            workers: 4,
            batch_size: 10,
            lanes: 2,
            quiet_every: Duration::from_millis(300),
            quiet_max: 3,
            patience: Duration::from_secs(120),
        },
    )
    .await;
    assert_eq!(outcome.flood_received, 120, "the whole flood arrived");
    assert_eq!(outcome.quiet_latencies.len(), 3, "and every quiet change");
    assert_eq!(outcome.refused, 0, "every signature verified");
    assert_eq!(outcome.failed_messages, 0);
}
