//! `EventBridgeScheduler` on moto: the shared scheduler contract (`ports::
//! contract_scheduler`), one test per check, each in its own schedule group, and what
//! the schedules look like to EventBridge Scheduler itself: the poller's payload, the
//! role, retry policy and dead-letter queue, the UTC `at(...)` expression and the
//! delete-after-completion of one-time runs.

use crate::common;

use aws_adapters::scheduler::{directory_schedule_name, once_schedule_name};
use aws_adapters::{clients, EventBridgeScheduler, EventBridgeSchedulerConfig};
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode, ScheduleState};
use domain::{DirectoryId, SyncMode, SyncRequest};
use ports::{DirectorySchedule, Scheduler};
use time::macros::datetime;

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bsync-scheduler";
const POLLER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bsync-poller";
const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:bsync-poller-dlq";

/// A fresh schedule group and a scheduler writing into it, plus a raw client to look
/// at what was written.
async fn scheduler() -> (EventBridgeScheduler, aws_sdk_scheduler::Client, String) {
    let sdk = common::sdk().await;
    let client = clients::scheduler(&sdk);
    let group = common::unique("bsync-schedules");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("schedule group created");
    let config = EventBridgeSchedulerConfig {
        group_name: group.clone(),
        role_arn: ROLE_ARN.into(),
        target_arn: POLLER_ARN.into(),
        dead_letter_arn: DLQ_ARN.into(),
    };
    (EventBridgeScheduler::new(&sdk, config), client, group)
}

macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (scheduler, _, _) = scheduler().await;
                ports::contract_scheduler::$check(&scheduler, "c").await;
            }
        )*
    };
}

contract_tests!(
    directory_schedules_are_put_idempotently_and_read_back,
    deleting_a_directory_schedule_is_idempotent,
    schedules_belong_to_one_directory_each,
    invalid_schedules_are_refused,
    one_time_runs_collapse_per_directory_mode_and_minute,
);

/// All checks in one group, as the stack's single group holds them.
#[tokio::test]
async fn every_check_in_one_group() {
    let (scheduler, _, _) = scheduler().await;
    ports::contract_scheduler::run_all(&scheduler, "all").await;
}

#[tokio::test]
async fn a_directory_schedule_invokes_the_poller_with_its_request_retries_and_dead_letters() {
    let (scheduler, client, group) = scheduler().await;
    let id = DirectoryId::parse("acme").unwrap();
    let schedule = DirectorySchedule {
        flexible_window_minutes: 15,
        ..DirectorySchedule::incremental(id.clone(), 30)
    };
    scheduler.put_directory_schedule(&schedule).await.unwrap();

    let out = client
        .get_schedule()
        .group_name(&group)
        .name(directory_schedule_name(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(out.schedule_expression(), Some("rate(30 minutes)"));
    assert_eq!(out.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(out.state(), Some(&ScheduleState::Enabled));
    let window = out.flexible_time_window().unwrap();
    assert_eq!(window.mode(), &FlexibleTimeWindowMode::Flexible);
    assert_eq!(window.maximum_window_in_minutes(), Some(15));
    let target = out.target().unwrap();
    assert_eq!(target.arn(), POLLER_ARN);
    assert_eq!(target.role_arn(), ROLE_ARN);
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"directoryId": "acme", "mode": "incremental"})
    );
    let retry = target.retry_policy().unwrap();
    assert_eq!(retry.maximum_retry_attempts(), Some(3));
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        Some(DLQ_ARN)
    );
}

#[tokio::test]
async fn a_paused_directory_keeps_a_disabled_schedule() {
    let (scheduler, client, group) = scheduler().await;
    let id = DirectoryId::parse("paused").unwrap();
    let schedule = DirectorySchedule {
        enabled: false,
        ..DirectorySchedule::incremental(id.clone(), 60)
    };
    scheduler.put_directory_schedule(&schedule).await.unwrap();
    let out = client
        .get_schedule()
        .group_name(&group)
        .name(directory_schedule_name(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(out.state(), Some(&ScheduleState::Disabled));
    assert_eq!(
        out.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
}

#[tokio::test]
async fn a_one_time_run_is_set_for_a_utc_instant_and_to_delete_itself_once_fired() {
    let (scheduler, client, group) = scheduler().await;
    let request = SyncRequest {
        directory_id: DirectoryId::parse("acme").unwrap(),
        mode: SyncMode::Full,
    };
    let at = datetime!(2099-01-02 03:04:05.6 +01:00);
    scheduler.schedule_once(&request, at).await.unwrap();

    let out = client
        .get_schedule()
        .group_name(&group)
        .name(once_schedule_name(&request, at))
        .send()
        .await
        .unwrap();
    assert_eq!(out.name(), Some("once.full.20990102T0204.acme"));
    assert_eq!(out.schedule_expression(), Some("at(2099-01-02T02:04:05)"));
    assert_eq!(out.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        out.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    let target = out.target().unwrap();
    assert_eq!(target.arn(), POLLER_ARN);
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"directoryId": "acme", "mode": "full"})
    );
    assert!(target.dead_letter_config().is_some());
}

#[tokio::test]
async fn an_unreachable_scheduler_is_retryable() {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_scheduler::config::SharedCredentialsProvider::new(
            aws_sdk_scheduler::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        // Port 9 (discard) on loopback: nothing listens, so the connection is refused.
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let scheduler = EventBridgeScheduler::new(
        &sdk,
        EventBridgeSchedulerConfig {
            group_name: "g".into(),
            role_arn: ROLE_ARN.into(),
            target_arn: POLLER_ARN.into(),
            dead_letter_arn: DLQ_ARN.into(),
        },
    );
    let err = scheduler
        .get_directory_schedule(&DirectoryId::parse("acme").unwrap())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
