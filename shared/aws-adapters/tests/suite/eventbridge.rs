//! `EventBridgeBus` end to end on moto: the stack's bus with a customer's rule
//! forwarding every change to an SQS FIFO queue (one message group, so order is
//! visible); events published in several batches arrive once each, as EventBridge
//! envelopes whose `detail` is the change event.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_adapters::{clients, delete_batch, receive_batch, EventBridgeBus, EVENT_SOURCE};
use aws_sdk_eventbridge::types::{RuleState, SqsParameters, Target};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use domain::{ChangeEvent, DirectoryId, EventType};
use ports::{BusError, EventBus};
use time::OffsetDateTime;

struct Routing {
    bus: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    eventbridge: aws_sdk_eventbridge::Client,
}

/// A bus, a FIFO queue (content-based deduplication, which EventBridge requires of a
/// FIFO target) and a customer's rule taking every change event to it.
async fn routing() -> Routing {
    let sdk = common::sdk().await;
    let eventbridge = clients::eventbridge(&sdk);
    let sqs = clients::sqs(&sdk);
    let bus = common::unique("bsync-bus");
    eventbridge
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", common::unique("bsync-changes")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let rule = "customer-consumer";
    eventbridge
        .put_rule()
        .name(rule)
        .event_bus_name(&bus)
        .event_pattern(serde_json::json!({"source": [EVENT_SOURCE]}).to_string())
        .state(RuleState::Enabled)
        .send()
        .await
        .unwrap();
    eventbridge
        .put_targets()
        .rule(rule)
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("consumer-queue")
                .arn(&queue_arn)
                .sqs_parameters(SqsParameters::builder().message_group_id("all").build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    Routing {
        bus,
        queue_url,
        sqs,
        eventbridge,
    }
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

/// Receives (and deletes) until `count` messages arrived or 30 s passed. Deleting as we
/// go matters: a FIFO queue holds back a group while one of its messages is in flight.
async fn drain(r: &Routing, count: usize) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < count && Instant::now() < deadline {
        let batch = receive_batch(&r.sqs, &r.queue_url, 10, 1).await.unwrap();
        let handles: Vec<String> = batch
            .iter()
            .filter_map(|m| m.receipt_handle().map(str::to_string))
            .collect();
        delete_batch(&r.sqs, &r.queue_url, &handles).await.unwrap();
        got.extend(batch);
    }
    got
}

fn expected_detail(e: &ChangeEvent) -> serde_json::Value {
    serde_json::to_value(e).unwrap()
}

#[tokio::test]
async fn events_reach_a_customers_rule_as_envelopes_whose_detail_is_the_event() {
    let r = routing().await;
    let bus = EventBridgeBus::from_client(r.eventbridge.clone(), &r.bus);

    // 20 different objects across directories, and 5 versions of one object whose
    // order must survive (the consumer's rule puts all in one FIFO group).
    let mut events: Vec<ChangeEvent> = (0..20)
        .map(|i| {
            event(
                &format!("dir{}", i % 4),
                &format!("usr_{i}"),
                1,
                serde_json::json!({"i": i}),
            )
        })
        .collect();
    events.extend((1..=5).map(|v| event("dir0", "usr_same", v, serde_json::json!({"v": v}))));
    assert_eq!(events.len(), 25, "three PutEvents calls: 10 + 10 + 5");

    let outcome = bus.publish(&events).await.unwrap();
    assert!(outcome.all_published(), "{:?}", outcome.failed);
    let published: Vec<_> = outcome.published.clone();
    assert_eq!(
        published,
        events.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );

    let messages = drain(&r, events.len()).await;
    assert_eq!(messages.len(), events.len());
    let by_id: HashMap<String, &ChangeEvent> =
        events.iter().map(|e| (e.id.to_string(), e)).collect();
    let mut seen = HashMap::new();
    let mut groups = std::collections::BTreeSet::new();
    let mut same_object_versions = Vec::new();
    for m in &messages {
        let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
        assert_eq!(body["source"], EVENT_SOURCE);
        let detail = &body["detail"];
        let id = detail["id"].as_str().unwrap();
        let e = by_id[id];
        assert_eq!(body["detail-type"], e.event_type.as_str());
        assert_eq!(detail, &expected_detail(e));
        let group = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .unwrap();
        groups.insert(group.clone());
        *seen.entry(id.to_string()).or_insert(0) += 1;
        if e.object_id == "usr_same" {
            same_object_versions.push(e.version);
        }
    }
    assert_eq!(seen.len(), events.len(), "every event arrives");
    assert!(seen.values().all(|&n| n == 1), "and only once");
    assert_eq!(same_object_versions, [1, 2, 3, 4, 5]);
    assert_eq!(groups.len(), 1, "the consumer's own routing: {groups:?}");

    // The envelope's detail is what the dispatcher decodes.
    let body: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    let decoded: ChangeEvent = serde_json::from_value(body["detail"].clone()).unwrap();
    assert!(events.contains(&decoded));

    assert!(receive_batch(&r.sqs, &r.queue_url, 10, 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_oversized_event_is_reported_rejected_and_the_rest_published() {
    let r = routing().await;
    let bus = EventBridgeBus::from_client(r.eventbridge.clone(), &r.bus);
    let small_a = event("big", "usr_a", 1, serde_json::json!({}));
    let huge = event(
        "big",
        "usr_huge",
        1,
        serde_json::json!({"blob": "x".repeat(300 * 1024)}),
    );
    let small_b = event("big", "usr_b", 1, serde_json::json!({}));
    let outcome = bus
        .publish(&[small_a.clone(), huge.clone(), small_b.clone()])
        .await
        .unwrap();
    assert_eq!(
        outcome.published,
        vec![small_a.id.clone(), small_b.id.clone()]
    );
    assert!(
        outcome.failed.is_empty(),
        "too large is for good, not for now"
    );
    assert_eq!(outcome.rejected.len(), 1);
    let (id, reason) = &outcome.rejected[0];
    assert_eq!(id, &huge.id);
    assert!(reason.contains("EntryTooLarge"), "{reason}");
    assert!(
        !reason.contains("xxxx"),
        "the reason does not quote the event"
    );

    // Entries that fit one by one but not together are split across calls.
    let near_limit: Vec<ChangeEvent> = (0..3)
        .map(|i| {
            event(
                "big",
                &format!("usr_n{i}"),
                1,
                serde_json::json!({"blob": "y".repeat(100 * 1024)}),
            )
        })
        .collect();
    let outcome = bus.publish(&near_limit).await.unwrap();
    assert!(outcome.all_published(), "{:?}", outcome.failed);

    let messages = drain(&r, 5).await;
    let mut ids: Vec<String> = messages
        .iter()
        .map(|m| {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            body["detail"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    let mut want: Vec<String> = [&small_a, &small_b]
        .into_iter()
        .chain(&near_limit)
        .map(|e| e.id.to_string())
        .collect();
    want.sort();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn a_missing_bus_is_unavailable() {
    let sdk = common::sdk().await;
    let bus = EventBridgeBus::new(&sdk, common::unique("no-such-bus"));
    let err = bus
        .publish(&[event("x", "usr_1", 1, serde_json::json!({}))])
        .await
        .unwrap_err();
    let BusError::Unavailable { reason } = &err;
    assert!(reason.contains("PutEvents"), "{reason}");
    assert!(err.is_retryable());
    // Nothing to publish is not a call at all.
    assert_eq!(bus.publish(&[]).await.unwrap(), Default::default());
}
