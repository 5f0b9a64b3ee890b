//! The CLI against a deployed stack on moto, run as an operator would (a subprocess
//! with AWS credentials in its environment): it finds the stack's admin API by the
//! CloudFormation output `AdminApiUrl` and sends SigV4-signed requests there. The
//! admin API is the real admin handler over DynamoDB, Secrets Manager, EventBridge
//! Scheduler and SQS on moto, served on loopback behind a stand-in for API Gateway's
//! IAM authorizer (moto does not execute HTTP APIs): it refuses unsigned requests and
//! hands the handler the signer's identity, as API Gateway does. Every change is
//! audited there, under that identity.

use std::process::{Command, Output};
use std::sync::Arc;

use aws_adapters::{clients, DynamoStore};
use aws_config::SdkConfig;
use bamboohr_simulator::{SimConfig, Simulator};
use domain::DirectoryId;
use function_support::testing::{
    moto_sdk, MotoStack, POLLER_ARN, POLLER_DLQ_ARN, SCHEDULER_ROLE_ARN,
};
use ports::{AuditStore, Store};

const KEY: &str = "sim-key-deployed-93c1";

async fn sdk() -> SdkConfig {
    moto_sdk(&test_peers::moto().endpoint).await
}

/// The deployed stack's resources on moto, its admin API on loopback, and a
/// CloudFormation stack whose outputs name them as the SAM template's do.
struct Deployed {
    stack: String,
    table: String,
    audit_table: String,
    group: String,
    secret_prefix: String,
    change_dlq: String,
    /// The engine the admin function runs on (the stack's resources).
    engine: sync_engine::Engine,
}

async fn deploy(sdk: &SdkConfig) -> Deployed {
    let MotoStack {
        stack,
        config,
        audit_table,
        group,
        queues,
        engine,
    } = function_support::testing::deploy(sdk, "bsync-cli").await;
    let api = Arc::new(admin::AdminApi::new(
        engine.clone(),
        Some("https://api.example.com/webhooks/bamboohr/".to_string()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}/admin/", listener.local_addr().unwrap());
    let app = admin::local::iam_authorizer_stand_in(api);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let outputs = [
        ("AdminApiUrl", admin_url),
        (
            "WebhookBaseUrl",
            "https://api.example.com/webhooks/bamboohr/".to_string(),
        ),
        ("TableName", config.table_name.clone()),
        ("AuditTableName", audit_table.clone()),
        ("EventBusName", config.event_bus_name.clone()),
        ("RetryQueueUrl", queues.retry.clone()),
        ("DeliveryDeadLetterQueueUrl", queues.delivery_dlq.clone()),
        ("ChangeDeadLetterQueueUrl", queues.change_dlq.clone()),
        (
            "PollerScheduleDeadLetterQueueArn",
            POLLER_DLQ_ARN.to_string(),
        ),
        ("SchedulerGroupName", group.clone()),
        ("SchedulerRoleArn", SCHEDULER_ROLE_ARN.to_string()),
        ("PollerFunctionArn", POLLER_ARN.to_string()),
        ("SecretPrefix", config.secret_prefix.clone()),
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
        table: config.table_name,
        audit_table,
        group,
        secret_prefix: config.secret_prefix,
        change_dlq: queues.change_dlq,
        engine,
    }
}

async fn cli(stack: &str, args: &[&str], key: Option<&str>) -> Output {
    cli_env(stack, args, key, &[]).await
}

async fn cli_env(stack: &str, args: &[&str], key: Option<&str>, env: &[(&str, &str)]) -> Output {
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
    for (k, v) in env {
        cmd.env(k, v);
    }
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
    // One secret per part of the directory's credentials.
    for part in ports::SecretPart::ALL {
        secrets
            .describe_secret()
            .secret_id(format!("{}{}", d.secret_prefix, part.secret_name("acme")))
            .send()
            .await
            .unwrap();
    }

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
    for part in ports::SecretPart::ALL {
        let described = secrets
            .describe_secret()
            .secret_id(format!("{}{}", d.secret_prefix, part.secret_name("acme")))
            .send()
            .await;
        assert!(
            described.map_or(true, |s| s.deleted_date().is_some()),
            "the credential secret's {part} part is deleted"
        );
    }
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

/// A Python test peer from tests/peers.
fn peer(script: &str, env: &[(&str, &str)]) -> test_peers::PeerProcess {
    let path = test_peers::workspace_root()
        .join("tests/peers")
        .join(script);
    test_peers::spawn_python_peer(&path, &[], env)
}

async fn get_json(url: String) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_configures_a_gated_upsert_and_a_scim_target_with_groups_through_the_admin_api()
{
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 12,
        seed: 41,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let sdk = sdk().await;
    let d = deploy(&sdk).await;
    let lms = peer("upsert_receiver.py", &[]);
    let scim = peer(
        "scim_server.py",
        &[("SCIM_BEARER_TOKEN", "scim-token-3f9a")],
    );
    let ok = |o: &Output| {
        let (stdout, stderr) = out(o);
        assert!(o.status.success(), "{stdout}{stderr}");
        stdout
    };

    ok(&cli(
        &d.stack,
        &[
            "directories",
            "connect",
            "--id",
            "acme",
            "--subdomain",
            "acme",
            "--base-url",
            server.base_url.as_str(),
        ],
        Some(KEY),
    )
    .await);
    // The gate: BambooHR's "Litmos Access" checkbox (custom field), as an attribute.
    ok(&cli(
        &d.stack,
        &[
            "directories",
            "update",
            "acme",
            "--custom-field",
            &format!("{}=litmosAccess", bamboohr_simulator::LITMOS_ACCESS),
            "--group-source",
            "department",
        ],
        None,
    )
    .await);
    let lms_url = format!("{}/v1/users/upsert", lms.base_url());
    ok(&cli_env(
        &d.stack,
        &[
            "targets",
            "add",
            "acme",
            "--id",
            "lms",
            "--kind",
            "http-upsert",
            "--url",
            &lms_url,
            "--field",
            "username",
            "--field",
            "firstName",
            "--field",
            "active",
            "--secret-param",
            "apikey",
            "--field-in",
            "litmosAccess=Yes",
        ],
        None,
        &[("BAMBOOHR_SYNC_TARGET_SECRET", "lms-key-77")],
    )
    .await);
    let scim_url = format!("{}/v2", scim.base_url());
    ok(&cli_env(
        &d.stack,
        &[
            "targets",
            "add",
            "acme",
            "--id",
            "idp",
            "--kind",
            "scim",
            "--url",
            &scim_url,
            "--push-groups",
        ],
        None,
        &[("BAMBOOHR_SYNC_TARGET_SECRET", "scim-token-3f9a")],
    )
    .await);
    let listed = ok(&cli(
        &d.stack,
        &["--output", "json", "targets", "list", "acme"],
        None,
    )
    .await);
    let targets: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(targets[0]["filter"]["fieldIn"]["litmosAccess"][0], "Yes");
    assert_eq!(targets[1]["scim"]["pushGroups"], true);
    assert!(!listed.contains("lms-key-77") && !listed.contains("scim-token-3f9a"));

    // The poller's and dispatcher's work, on the same resources: a full sync, then
    // every change through the dispatcher handler.
    let (bus, mut events) = embedded_adapters::InProcessBus::new();
    let engine = sync_engine::Engine::new(
        d.engine.store.clone(),
        d.engine.secrets.clone(),
        Arc::new(bus),
        d.engine.clock.clone(),
    )
    .with_retry_queue(d.engine.retry_queue.clone().unwrap());
    let id = DirectoryId::parse("acme").unwrap();
    let run = sync_engine::operate::run_sync(
        &engine,
        &domain::SyncRequest {
            directory_id: id.clone(),
            mode: domain::SyncMode::Full,
        },
        &sync_engine::reconcile::run::RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(run.status, domain::RunStatus::Completed, "{:?}", run.errors);
    let mut records = Vec::new();
    while let Ok(e) = events.try_recv() {
        records.push(dispatcher::change_queue_message(
            &e,
            &format!("m-{}", records.len()),
        ));
    }
    assert!(!records.is_empty());
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = records;
    let response = dispatcher::handler(
        &engine,
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // Only gated employees reached the learning platform.
    let users = engine.store.list_users(&id).await.unwrap();
    let gated: std::collections::BTreeSet<String> = users
        .iter()
        .filter(|u| {
            u.custom_attributes
                .get("litmosAccess")
                .and_then(|v| v.as_str())
                == Some("Yes")
        })
        .filter_map(|u| u.work_email().map(str::to_string))
        .collect();
    assert!(
        !gated.is_empty() && gated.len() < users.len(),
        "the seed gates some: {}",
        gated.len()
    );
    let got = get_json(format!("{}/received", lms.base_url())).await;
    let upserted: std::collections::BTreeSet<String> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"]["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        upserted, gated,
        "exactly the employees whose checkbox is Yes"
    );
    assert!(got
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["query"]["apikey"] == "lms-key-77"));

    // The department groups appear at the SCIM server.
    let client = reqwest::Client::new();
    let groups: serde_json::Value = client
        .get(format!("{scim_url}/Groups?count=1000"))
        .bearer_auth("scim-token-3f9a")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: std::collections::BTreeSet<String> = groups["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap().to_string())
        .collect();
    let departments: std::collections::BTreeSet<String> = users
        .iter()
        .filter(|u| u.state == domain::UserState::Active)
        .filter_map(|u| u.department.clone())
        .collect();
    assert!(!departments.is_empty());
    assert!(
        departments.is_subset(&names),
        "{departments:?} at SCIM: {names:?}"
    );

    // Every configuration change is in the audit log, under the signer.
    let audit = engine.store.list_audit(&id, 50).await.unwrap();
    let actions: Vec<&str> = audit.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        &actions[..4],
        [
            "connect",
            "settings_change",
            "target_change",
            "target_change"
        ]
    );
    assert!(audit
        .iter()
        .filter(|e| e.action.as_str() != "sync")
        .all(|e| e.actor == "arn:aws:iam::123456789012:user/testing"));
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        !text.contains("lms-key-77") && !text.contains("scim-token-3f9a") && !text.contains(KEY)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_request_to_the_admin_api_is_refused_before_the_handler() {
    let sdk = sdk().await;
    let d = deploy(&sdk).await;
    let outputs = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stacks()
        .stack_name(&d.stack)
        .send()
        .await
        .unwrap();
    let url = outputs.stacks()[0]
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("AdminApiUrl"))
        .and_then(|o| o.output_value())
        .unwrap()
        .to_string();
    let r = reqwest::Client::new()
        .post(format!("{url}directories"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
