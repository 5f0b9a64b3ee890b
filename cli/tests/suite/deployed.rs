//! The CLI against a deployed stack on moto, run as an operator would (a subprocess
//! with AWS credentials in its environment): the stack's resources come from its
//! CloudFormation outputs; `directories connect`, `status` and `directories revoke`
//! work on DynamoDB, Secrets Manager, EventBridge Scheduler and SQS, audited under the
//! caller's AWS identity.

use std::process::{Command, Output};

use aws_adapters::{clients, create_audit_table, create_table, DynamoStore};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use bamboohr_simulator::{SimConfig, Simulator};
use domain::DirectoryId;
use ports::{AuditStore, Store};

const KEY: &str = "sim-key-deployed-93c1";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bsync-scheduler";
const POLLER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bsync-poller";

async fn sdk() -> SdkConfig {
    let moto = test_peers::moto();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The deployed stack's resources on moto, and a CloudFormation stack whose outputs
/// name them as the SAM template's do.
struct Deployed {
    stack: String,
    table: String,
    audit_table: String,
    group: String,
    secret_prefix: String,
    change_dlq: String,
}

async fn deploy(sdk: &SdkConfig) -> Deployed {
    let table = unique("bsync-cli");
    create_table(&clients::dynamodb(sdk), &table).await.unwrap();
    let audit_table = format!("{table}-audit");
    create_audit_table(&clients::dynamodb(sdk), &audit_table)
        .await
        .unwrap();
    let bus = unique("bsync-bus");
    clients::eventbridge(sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let sqs = clients::sqs(sdk);
    let mut urls = Vec::new();
    for name in ["retry", "delivery-dlq", "poller-dlq", "change-dlq"] {
        let out = sqs
            .create_queue()
            .queue_name(unique(name))
            .send()
            .await
            .unwrap();
        urls.push(out.queue_url().unwrap().to_string());
    }
    let group = unique("bsync-schedules");
    clients::scheduler(sdk)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let stack = unique("bsync-stack");
    let secret_prefix = format!("bamboohr-sync/{stack}/");
    let outputs = [
        (
            "WebhookBaseUrl",
            "https://api.example.com/webhooks/bamboohr/".to_string(),
        ),
        ("TableName", table.clone()),
        ("AuditTableName", audit_table.clone()),
        ("EventBusName", bus),
        ("RetryQueueUrl", urls[0].clone()),
        ("DeliveryDeadLetterQueueUrl", urls[1].clone()),
        ("ChangeDeadLetterQueueUrl", urls[3].clone()),
        (
            "PollerScheduleDeadLetterQueueArn",
            "arn:aws:sqs:us-east-1:123456789012:poller-dlq".to_string(),
        ),
        ("SchedulerGroupName", group.clone()),
        ("SchedulerRoleArn", ROLE_ARN.to_string()),
        ("PollerFunctionArn", POLLER_ARN.to_string()),
        ("SecretPrefix", secret_prefix.clone()),
    ];
    let mut template = String::from(
        "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Marker:\n    Type: AWS::SQS::Queue\nOutputs:\n",
    );
    for (k, v) in &outputs {
        template.push_str(&format!("  {k}:\n    Value: '{v}'\n"));
    }
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(template)
        .send()
        .await
        .unwrap();
    Deployed {
        stack,
        table,
        audit_table,
        group,
        secret_prefix,
        change_dlq: urls[3].clone(),
    }
}

async fn cli(stack: &str, args: &[&str], key: Option<&str>) -> Output {
    let moto = test_peers::moto();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"));
    cmd.args(["--stack", stack])
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("BAMBOOHR_SYNC_STACK")
        .env("BSYNC_LOG", "debug");
    match key {
        Some(k) => cmd.env("BAMBOOHR_API_KEY", k),
        None => cmd.env_remove("BAMBOOHR_API_KEY"),
    };
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_status_and_revoke_work_on_a_deployed_stack_found_by_its_outputs() {
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 4,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let sdk = sdk().await;
    let d = deploy(&sdk).await;
    let connect_args = [
        "directories",
        "connect",
        "--id",
        "acme",
        "--subdomain",
        "acme",
        "--base-url",
        server.base_url.as_str(),
    ];

    let bad = cli(&d.stack, &connect_args, Some("wrong-key")).await;
    assert!(!bad.status.success());
    assert!(
        out(&bad).1.contains("error: bad API key"),
        "{:?}",
        out(&bad)
    );

    let connected = cli(&d.stack, &connect_args, Some(KEY)).await;
    let (stdout, stderr) = out(&connected);
    assert!(connected.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("connected acme (4 employees visible)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("https://api.example.com/webhooks/bamboohr/acme"),
        "the webhook URL to give BambooHR: {stdout}"
    );
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));

    // What connect wrote, seen through the AWS APIs.
    let store = DynamoStore::new(&sdk, &d.table).with_audit_table(&d.audit_table);
    let id = DirectoryId::parse("acme").unwrap();
    assert!(store.get_directory(&id).await.unwrap().is_some());
    let scheduler = clients::scheduler(&sdk);
    let schedule = scheduler
        .get_schedule()
        .group_name(&d.group)
        .name("acme")
        .send()
        .await
        .unwrap();
    assert_eq!(schedule.target().unwrap().arn(), POLLER_ARN);
    let secrets = clients::secrets_manager(&sdk);
    secrets
        .describe_secret()
        .secret_id(format!("{}acme", d.secret_prefix))
        .send()
        .await
        .unwrap();

    let status = cli(&d.stack, &["--output", "json", "status", "acme"], None).await;
    let (stdout, stderr) = out(&status);
    assert!(status.status.success(), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["state"], "active");
    assert_eq!(
        v[0]["deadLetterDepth"], 0,
        "read from the dead-letter queues"
    );

    // A change the dispatcher gave up on counts as a dead letter too.
    clients::sqs(&sdk)
        .send_message()
        .queue_url(&d.change_dlq)
        .message_body("{}")
        .send()
        .await
        .unwrap();
    let status = cli(&d.stack, &["--output", "json", "status", "acme"], None).await;
    let (stdout, stderr) = out(&status);
    assert!(status.status.success(), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v[0]["deadLetterDepth"], 1,
        "delivery and change dead-letter queues, summed"
    );

    let revoked = cli(&d.stack, &["directories", "revoke", "acme"], None).await;
    assert!(revoked.status.success(), "{:?}", out(&revoked));
    assert!(scheduler
        .get_schedule()
        .group_name(&d.group)
        .name("acme")
        .send()
        .await
        .is_err());
    let described = secrets
        .describe_secret()
        .secret_id(format!("{}acme", d.secret_prefix))
        .send()
        .await;
    assert!(
        described.map_or(true, |s| s.deleted_date().is_some()),
        "the credential secret is deleted"
    );
    let dir = store.get_directory(&id).await.unwrap().unwrap();
    assert_eq!(dir.state, domain::DirectoryState::Revoked);

    let audit = store.list_audit(&id, 10).await.unwrap();
    let actions: Vec<_> = audit.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["connect", "revoke"]);
    assert!(
        audit.iter().all(|e| e.actor.starts_with("arn:aws:")),
        "the caller's AWS identity: {:?}",
        audit.iter().map(|e| &e.actor).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_stack_is_a_one_line_error() {
    let o = cli("no-such-stack-anywhere", &["directories", "list"], None).await;
    assert!(!o.status.success());
    let stderr = out(&o).1;
    let last = stderr.trim().lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("error: stack no-such-stack-anywhere"),
        "{stderr}"
    );
}
