//! The SQS retry queue against moto: the dead-letter contract every retry-queue
//! adapter passes, and a scheduled task's message shape and delay.

mod common;

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
