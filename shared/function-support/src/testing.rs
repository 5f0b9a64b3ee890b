//! A stack's AWS resources on moto, for tests that run the functions' handlers on the
//! AWS adapters (compiled with the `testing` feature only): the SDK pointed at moto,
//! and one stack's table, audit table, bus, queues and schedule group, each uniquely
//! named so tests share one moto server, with the engine the admin function builds on
//! them. The admin API's tests, the CLI's deployed-stack tests and the setup page's
//! browser test on moto all start here.

use std::sync::Arc;

use aws_adapters::{clients, create_audit_table, create_table, SqsRetryQueue};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use sync_engine::Engine;

use crate::{aws_engine_with_audit_table, aws_scheduler, SchedulerSettings, StackConfig};

/// The poller the stack's schedules invoke (a function ARN moto need not know).
pub const POLLER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bsync-poller";
/// The role the stack's schedules run as.
pub const SCHEDULER_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bsync-scheduler";
/// The poller's schedule dead-letter queue, as schedules name it.
pub const POLLER_DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:poller-dlq";

/// The SDK for moto at `endpoint` (`test_peers::moto().endpoint`), in us-east-1 with
/// moto's test credentials (access key id `testing`).
pub async fn moto_sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

/// `prefix` made unique in this moto server: the process id and the clock's nanos.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The stack's queue URLs.
#[derive(Debug, Clone)]
pub struct MotoQueues {
    /// The retry queue.
    pub retry: String,
    /// The delivery dead-letter queue.
    pub delivery_dlq: String,
    /// The poller's schedule dead-letter queue.
    pub poller_dlq: String,
    /// The change queue's dead-letter queue.
    pub change_dlq: String,
}

/// One stack's resources on moto.
pub struct MotoStack {
    /// The stack's name (its secret prefix is `bamboohr-sync/<stack>/`).
    pub stack: String,
    /// Table, bus and secret prefix.
    pub config: StackConfig,
    /// The audit table.
    pub audit_table: String,
    /// The schedule group.
    pub group: String,
    /// The queues.
    pub queues: MotoQueues,
    /// The engine the admin function runs on: DynamoDB (audit entries in the audit
    /// table), Secrets Manager, EventBridge, the SQS retry queue counting both
    /// dead-letter queues, EventBridge Scheduler targeting [`POLLER_ARN`].
    pub engine: Engine,
}

async fn queue(sdk: &SdkConfig, name: &str) -> String {
    clients::sqs(sdk)
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .expect("moto creates the queue")
        .queue_url()
        .expect("a created queue has a URL")
        .to_string()
}

/// The scheduler settings of `group`, as the template sets them.
pub fn scheduler_settings(group: &str) -> SchedulerSettings {
    SchedulerSettings {
        group_name: group.to_string(),
        role_arn: SCHEDULER_ROLE_ARN.to_string(),
        dead_letter_arn: POLLER_DLQ_ARN.to_string(),
    }
}

/// Creates a stack's resources on moto, named after `prefix`. Panics when moto refuses
/// (a test harness).
pub async fn deploy(sdk: &SdkConfig, prefix: &str) -> MotoStack {
    let table = unique(prefix);
    create_table(&clients::dynamodb(sdk), &table)
        .await
        .expect("moto creates the table");
    let audit_table = format!("{table}-audit");
    create_audit_table(&clients::dynamodb(sdk), &audit_table)
        .await
        .expect("moto creates the audit table");
    let bus = unique("bsync-bus");
    clients::eventbridge(sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("moto creates the bus");
    let queues = MotoQueues {
        retry: queue(sdk, "retry").await,
        delivery_dlq: queue(sdk, "delivery-dlq").await,
        poller_dlq: queue(sdk, "poller-dlq").await,
        change_dlq: queue(sdk, "change-dlq").await,
    };
    let group = unique("bsync-schedules");
    clients::scheduler(sdk)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("moto creates the schedule group");
    let stack = unique("bsync-stack");
    let config = StackConfig::bus_only(table, bus, format!("bamboohr-sync/{stack}/"));
    let scheduler = aws_scheduler(sdk, &scheduler_settings(&group), POLLER_ARN)
        .expect("the poller ARN is a function ARN");
    let engine = aws_engine_with_audit_table(sdk, &config, &audit_table)
        .with_retry_queue(Arc::new(
            SqsRetryQueue::new(sdk, queues.retry.clone(), queues.delivery_dlq.clone())
                .with_change_dead_letter_queue(&queues.change_dlq),
        ))
        .with_scheduler(Arc::new(scheduler));
    MotoStack {
        stack,
        config,
        audit_table,
        group,
        queues,
        engine,
    }
}
