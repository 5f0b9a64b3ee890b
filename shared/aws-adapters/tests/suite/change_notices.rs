//! `SqsChangeNotices` on moto's SQS FIFO, as the template configures the change queue:
//! every notice lands in its directory's lane group, in order per object, once; an
//! oversized one is rejected; and a directory's backlog does not hold back another
//! directory's change while its lanes are in flight (SQS skips groups in flight).

use crate::common;

use std::collections::{BTreeSet, HashMap};

use aws_adapters::{clients, delete_batch, message_group, receive_batch, SqsChangeNotices};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use domain::{ChangeEvent, DirectoryId, EventType};
use ports::EventBus;
use time::OffsetDateTime;

async fn change_queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(format!("{}.fifo", common::unique("bsync-changes")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

fn event(dir: &str, object: &str, version: u64, data: serde_json::Value) -> ChangeEvent {
    ChangeEvent::new(
        if version == 1 {
            EventType::UserCreated
        } else {
            EventType::UserUpdated
        },
        DirectoryId::parse(dir).unwrap(),
        object,
        version,
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(version as i64),
        data,
    )
}

fn group(m: &aws_sdk_sqs::types::Message) -> String {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn notices_land_once_in_their_directorys_lanes_in_order_per_object() {
    let sdk = common::sdk().await;
    let sqs = clients::sqs(&sdk);
    let url = change_queue(&sqs).await;
    let notices = SqsChangeNotices::new(&sdk, &url, 4);

    let mut events: Vec<ChangeEvent> = (0..20)
        .map(|i| {
            event(
                &format!("dir{}", i % 2),
                &format!("usr_{i}"),
                1,
                serde_json::json!({"i": i}),
            )
        })
        .collect();
    events.extend((1..=5).map(|v| event("dir0", "usr_same", v, serde_json::json!({"v": v}))));
    let outcome = notices.publish(&events).await.unwrap();
    assert!(outcome.all_published(), "{outcome:?}");
    assert_eq!(outcome.published.len(), 25);
    // A re-publish (the outbox after a lost answer) is dropped by deduplication.
    let again = notices.publish(&events[..3]).await.unwrap();
    assert!(again.all_published());

    let by_id: HashMap<String, &ChangeEvent> =
        events.iter().map(|e| (e.id.to_string(), e)).collect();
    let mut seen = HashMap::new();
    let mut groups = BTreeSet::new();
    let mut same = Vec::new();
    for _ in 0..40 {
        let batch = receive_batch(&sqs, &url, 10, 0).await.unwrap();
        if batch.is_empty() && seen.len() == events.len() {
            break;
        }
        for m in &batch {
            let e: ChangeEvent = serde_json::from_str(m.body().unwrap()).unwrap();
            let sent = by_id[e.id.as_str()];
            assert_eq!(&e, sent, "the body is the change event itself");
            assert_eq!(group(m), message_group(sent, 4));
            assert!(group(m).starts_with(&format!("{}.", sent.directory_id)));
            groups.insert(group(m));
            *seen.entry(e.id.to_string()).or_insert(0) += 1;
            if e.object_id == "usr_same" {
                same.push(e.version);
            }
        }
        let handles: Vec<String> = batch
            .iter()
            .filter_map(|m| m.receipt_handle().map(str::to_string))
            .collect();
        delete_batch(&sqs, &url, &handles).await.unwrap();
    }
    assert_eq!(seen.len(), events.len(), "every notice arrives");
    assert!(seen.values().all(|&n| n == 1), "once: {seen:?}");
    assert_eq!(same, [1, 2, 3, 4, 5], "an object's changes stay in order");
    assert!(groups.len() > 2 && groups.len() <= 8, "{groups:?}");
}

#[tokio::test]
async fn an_oversized_notice_is_rejected_for_good_and_the_rest_are_sent() {
    let sdk = common::sdk().await;
    let sqs = clients::sqs(&sdk);
    let url = change_queue(&sqs).await;
    let notices = SqsChangeNotices::new(&sdk, &url, 4);
    let small = event("big", "usr_a", 1, serde_json::json!({}));
    let huge = event(
        "big",
        "usr_huge",
        1,
        serde_json::json!({"blob": "x".repeat(300 * 1024)}),
    );
    let outcome = notices
        .publish(&[huge.clone(), small.clone()])
        .await
        .unwrap();
    assert_eq!(outcome.published, vec![small.id.clone()]);
    assert!(outcome.failed.is_empty());
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(outcome.rejected[0].0, huge.id);
    assert!(outcome.rejected[0].1.contains("MessageTooLong"));
    assert!(!outcome.rejected[0].1.contains("xxxx"), "no content quoted");
}

#[tokio::test]
async fn a_directorys_backlog_in_flight_does_not_hold_back_another_directorys_change() {
    let sdk = common::sdk().await;
    let sqs = clients::sqs(&sdk);
    let url = change_queue(&sqs).await;
    let notices = SqsChangeNotices::new(&sdk, &url, 2);
    // Directory A floods first: 200 changes over its 2 lanes.
    let flood: Vec<ChangeEvent> = (0..200)
        .map(|i| event("noisy", &format!("usr_{i}"), 1, serde_json::json!({})))
        .collect();
    for chunk in flood.chunks(50) {
        assert!(notices.publish(chunk).await.unwrap().all_published());
    }
    // Then directory B sends one change.
    let quiet = event("quiet", "usr_1", 1, serde_json::json!({}));
    assert!(notices
        .publish(std::slice::from_ref(&quiet))
        .await
        .unwrap()
        .all_published());

    // Consumers take A's lanes (and hold them: nothing is deleted yet) ...
    let mut taken = Vec::new();
    let mut got_quiet = false;
    for _ in 0..3 {
        let batch = receive_batch(&sqs, &url, 10, 0).await.unwrap();
        for m in &batch {
            let e: ChangeEvent = serde_json::from_str(m.body().unwrap()).unwrap();
            if e.directory_id.as_str() == "quiet" {
                got_quiet = true;
            }
        }
        taken.extend(batch);
        if got_quiet {
            break;
        }
    }
    // ... so within a few receives, with 200 of A's changes still ahead of it in the
    // queue, B's change is handed out.
    assert!(got_quiet, "B's change waited behind A's backlog");
    let noisy_groups: BTreeSet<String> = taken
        .iter()
        .map(group)
        .filter(|g| g.starts_with("noisy."))
        .collect();
    assert!(
        noisy_groups.len() <= 2,
        "A never has more than its lanes out: {noisy_groups:?}"
    );
}
