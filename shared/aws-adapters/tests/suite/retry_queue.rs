//! The SQS retry queue against moto: the dead-letter contract every retry-queue
//! adapter passes (letters and their depth, summed over the delivery and change
//! dead-letter queues), and a scheduled task's message shape and delay.

use crate::common;

use std::time::Duration;

use aws_adapters::SqsRetryQueue;
use aws_sdk_sqs::types::QueueAttributeName;
use ports::RetryQueue;

async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(common::unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_sqs_retry_queue_passes_the_dead_letter_contract() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let retry = queue_url(&sqs, "retry").await;
    let dlq = queue_url(&sqs, "dlq").await;
    let queue = SqsRetryQueue::new(&sdk, retry, dlq);
    ports::contract_retry::dead_letters_round_trip_until_acknowledged(&queue).await;
}

#[tokio::test]
async fn the_sqs_retry_queue_scopes_a_receive_to_one_directory() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let retry = queue_url(&sqs, "retry").await;
    let dlq = queue_url(&sqs, "dlq").await;
    let queue = SqsRetryQueue::new(&sdk, retry, dlq);
    ports::contract_retry::dead_letters_of_one_directory_leave_the_others(&queue).await;
}

#[tokio::test]
async fn the_sqs_retry_queue_passes_the_dead_letter_depth_contract() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let retry = queue_url(&sqs, "retry").await;
    let dlq = queue_url(&sqs, "dlq").await;
    let change_dlq = queue_url(&sqs, "change-dlq").await;
    let queue = SqsRetryQueue::new(&sdk, retry, dlq).with_change_dead_letter_queue(change_dlq);
    ports::contract_retry::dead_letter_depth_counts_letters_until_acknowledged(&queue).await;
}

#[tokio::test]
async fn a_set_aside_change_goes_to_the_change_dead_letter_queue_with_its_reason() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let retry = queue_url(&sqs, "retry").await;
    let dlq = queue_url(&sqs, "dlq").await;
    let change_dlq = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", common::unique("change-dlq")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let queue =
        SqsRetryQueue::new(&sdk, retry, dlq).with_change_dead_letter_queue(change_dlq.clone());
    ports::contract_retry::set_aside_changes_count_and_stay_out_of_the_delivery_letters(&queue)
        .await;
    let got = sqs
        .receive_message()
        .queue_url(&change_dlq)
        .message_attribute_names("All")
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let m = &got.messages()[0];
    assert_eq!(m.body(), Some("{not json"));
    assert_eq!(
        m.message_attributes().unwrap()["reason"].string_value(),
        Some("unreadable: line 1, column 2")
    );
    assert_eq!(
        m.attributes().unwrap()[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId],
        "acme.3"
    );
}

#[tokio::test]
async fn the_sqs_dead_letter_depth_sums_the_delivery_and_change_dead_letter_queues() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let retry = queue_url(&sqs, "retry").await;
    let dlq = queue_url(&sqs, "dlq").await;
    let change_dlq = queue_url(&sqs, "change-dlq").await;
    for url in [&dlq, &change_dlq, &change_dlq] {
        sqs.send_message()
            .queue_url(url)
            .message_body("{}")
            .send()
            .await
            .unwrap();
    }
    let delivery_only = SqsRetryQueue::new(&sdk, &retry, &dlq);
    assert_eq!(
        delivery_only.dead_letter_depth().await.unwrap(),
        1,
        "without the change queue's, the delivery dead letters only"
    );
    let both = SqsRetryQueue::new(&sdk, &retry, &dlq).with_change_dead_letter_queue(&change_dlq);
    assert_eq!(both.dead_letter_depth().await.unwrap(), 3, "summed");
    let missing = SqsRetryQueue::new(&sdk, &retry, format!("{dlq}-missing"));
    assert!(
        missing.dead_letter_depth().await.is_err(),
        "an unreadable queue is an error, not 0"
    );
}

#[tokio::test]
async fn a_scheduled_task_is_one_delayed_message_capped_at_fifteen_minutes() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let retry = queue_url(&sqs, "retry").await;
    let dlq = queue_url(&sqs, "dlq").await;
    let queue = SqsRetryQueue::new(&sdk, &retry, dlq);
    let now = time::OffsetDateTime::now_utc();
    let task = ports::RetryTask {
        target_id: domain::TargetId::parse("app").unwrap(),
        event: domain::ChangeEvent::new(
            domain::EventType::UserUpdated,
            domain::DirectoryId::parse("acme").unwrap(),
            "usr_1",
            2,
            now,
            serde_json::json!({"employeeId": "7"}),
        ),
        retries: 3,
        due_at: now + Duration::from_secs(5 * 3600),
        first_failed_at: now,
        last_error: "POST: HTTP 503".into(),
        force: false,
    };
    queue
        .schedule(&task, Duration::from_secs(5 * 3600))
        .await
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&retry)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let delayed = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        delayed, "1",
        "the message waits (at most 15 minutes at a time)"
    );
    assert!(
        aws_adapters::receive_batch(&sqs, &retry, 10, 0)
            .await
            .unwrap()
            .is_empty(),
        "not visible before its delay"
    );
}

#[tokio::test]
async fn dead_lettered_change_messages_are_moved_back_in_their_message_groups() {
    let sdk = common::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let fifo = |name: &str| {
        sqs.create_queue()
            .queue_name(format!("{}.fifo", common::unique(name)))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
            .send()
    };
    let source = fifo("changes")
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let dlq = fifo("changes-dlq")
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    for (group, body) in [("shard-1", "a1"), ("shard-1", "a2"), ("shard-2", "b1")] {
        sqs.send_message()
            .queue_url(&dlq)
            .message_group_id(group)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let moved = aws_adapters::move_messages(&sqs, &dlq, &source, 10)
        .await
        .unwrap();
    assert_eq!(moved, 3);
    let mut got = Vec::new();
    for _ in 0..5 {
        for m in aws_adapters::receive_batch(&sqs, &source, 10, 1)
            .await
            .unwrap()
        {
            let group = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                })
                .cloned()
                .unwrap();
            got.push((group, m.body().unwrap().to_string()));
            aws_adapters::delete_batch(&sqs, &source, &[m.receipt_handle().unwrap().to_string()])
                .await
                .unwrap();
        }
        if got.len() == 3 {
            break;
        }
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("shard-1".to_string(), "a1".to_string()),
            ("shard-1".to_string(), "a2".to_string()),
            ("shard-2".to_string(), "b1".to_string()),
        ]
    );
    assert!(aws_adapters::receive_batch(&sqs, &dlq, 10, 0)
        .await
        .unwrap()
        .is_empty());
}
