//! Shared set-up of the integration tests: a copy of the stack's AWS resources on
//! moto (table, bus, FIFO change queue), named uniquely per test so tests
//! can share one moto server, and helpers to move SQS messages into dispatcher events.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::QueueAttributeName;
use function_support::StackConfig;
use rand::RngCore;

#[path = "src/event_source.rs"]
pub mod event_source;
#[path = "src/fault_proxy.rs"]
pub mod fault_proxy;
#[path = "src/noisy_neighbour.rs"]
pub mod noisy_neighbour;

/// A random suffix for resource names.
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 5];
    rand::rng().fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// SDK configuration pointing at the test moto server.
pub async fn moto_sdk() -> aws_config::SdkConfig {
    let moto = test_peers::moto();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .load()
        .await
}

/// The stack's resources, provisioned on moto the way infra/template.yaml defines them.
pub struct TestStack {
    /// SDK configuration for moto.
    pub sdk: aws_config::SdkConfig,
    /// Table, bus and secret prefix, as the functions receive them.
    pub config: StackConfig,
    /// The audit table (AUDIT_TABLE_NAME), apart from the main table as deployed.
    pub audit_table: String,
    /// The FIFO change queue the outbox publishes change notices to.
    pub queue_url: String,
}

impl TestStack {
    /// Creates a table, a bus (for customers' consumers) and the FIFO change queue, as
    /// the template does.
    pub async fn provision() -> Self {
        let sdk = moto_sdk().await;
        let name = unique("bsync");
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        aws_adapters::create_table(&ddb, &name)
            .await
            .expect("create table");
        let audit_table = format!("{name}-audit");
        aws_adapters::create_audit_table(&ddb, &audit_table)
            .await
            .expect("create audit table");

        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = sqs
            .create_queue()
            .queue_name(format!("{name}-changes.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
            .send()
            .await
            .expect("create queue");
        let queue_url = queue.queue_url().expect("queue url").to_string();
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        events
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .expect("create bus");
        Self {
            sdk,
            config: StackConfig::bus_only(
                name.clone(),
                name.clone(),
                format!("bamboohr-sync/{name}/"),
            )
            .with_change_queue(queue_url.clone()),
            audit_table,
            queue_url,
        }
    }

    /// The engine the functions build on this stack (audit entries in the audit table).
    pub fn engine(&self) -> sync_engine::Engine {
        function_support::aws_engine_with_audit_table(&self.sdk, &self.config, &self.audit_table)
    }

    /// Receives up to `want` messages, waiting at most `patience` in total.
    pub async fn receive(
        &self,
        want: usize,
        patience: Duration,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let deadline = tokio::time::Instant::now() + patience;
        let mut out = Vec::new();
        while out.len() < want && tokio::time::Instant::now() < deadline {
            let resp = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            out.extend(resp.messages().iter().cloned());
        }
        out
    }

    /// Deletes received messages, as Lambda does after a successful batch.
    pub async fn delete(&self, messages: &[aws_sdk_sqs::types::Message]) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        for m in messages {
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// The Lambda event the SQS event source mapping would build from these messages.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(event_source::lambda_record).collect();
    event
}
