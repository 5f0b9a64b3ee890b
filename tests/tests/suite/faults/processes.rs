//! Real processes SIGKILLed mid-run: the suite binary re-runs itself as a child that
//! plays one function (a poller run, or a dispatcher fed from the queues as Lambda's
//! event source would) against the same moto resources, and the parent kills it with
//! SIGKILL at a random point. Nothing of the child survives but what it wrote, as
//! when Lambda's sandbox dies; no extra binary has to be built.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use domain::{DirectoryId, SyncMode, SyncRequest};
use function_support::StackConfig;
use integration_tests::sqs_event;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use sync_engine::operate::run_sync;
use sync_engine::reconcile::run::RunOptions;

use super::harness::World;

/// The environment variable that carries a child's part and resources.
const CHILD_ENV: &str = "FAULTS_CHILD";
/// The test the child runs (see [`a_child_process_plays_one_function_for_the_sigkill_scenario`]).
const CHILD_TEST: &str =
    "faults::processes::a_child_process_plays_one_function_for_the_sigkill_scenario";

/// What a child does.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    /// One poller run of the directory in this mode.
    Sync(SyncMode),
    /// The dispatcher, fed from the change and retry queues until they are idle.
    Dispatch,
}

/// Starts the child playing `part` against `world`'s resources on moto.
pub fn spawn(world: &World, part: Part) -> Child {
    let (role, mode) = match part {
        Part::Sync(m) => ("sync", m.as_str().to_string()),
        Part::Dispatch => ("dispatch", String::new()),
    };
    let spec = json!({
        "role": role,
        "mode": mode,
        "endpoint": test_peers::moto().endpoint,
        "table": world.stack.config.table_name,
        "bus": world.stack.config.event_bus_name,
        "secretPrefix": world.stack.config.secret_prefix,
        "directory": world.dir.to_string(),
        "queueUrl": world.stack.queue_url,
        "retryUrl": world.retry_url,
        "dlqUrl": world.dlq_url,
    });
    Command::new(std::env::current_exe().expect("the suite binary's path"))
        .args([CHILD_TEST, "--exact", "--ignored", "--test-threads=1"])
        .env(CHILD_ENV, spec.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the suite binary as a child")
}

/// Lets the child run for `after`, then SIGKILLs it; true if it was still running.
pub async fn kill_after(mut child: Child, after: Duration) -> bool {
    tokio::time::sleep(after).await;
    let running = child.try_wait().expect("child status").is_none();
    // `Child::kill` sends SIGKILL on Unix: no handler, no clean-up, like a dead sandbox.
    let _ = child.kill();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    running
}

/// The child's side. Does nothing unless started by [`spawn`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the SIGKILL scenario runs it as a child process"]
async fn a_child_process_plays_one_function_for_the_sigkill_scenario() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).expect("the child's spec");
    let text = |k: &str| spec[k].as_str().unwrap_or_default().to_string();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(text("endpoint"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .load()
        .await;
    let config = StackConfig::bus_only(text("table"), text("bus"), text("secretPrefix"))
        .with_change_queue(text("queueUrl"));
    let engine = function_support::aws_engine(&sdk, &config).with_retry_queue(Arc::new(
        aws_adapters::SqsRetryQueue::new(&sdk, text("retryUrl"), text("dlqUrl")),
    ));
    if text("role") == "sync" {
        let mode = if text("mode") == SyncMode::Full.as_str() {
            SyncMode::Full
        } else {
            SyncMode::Incremental
        };
        let request = SyncRequest {
            directory_id: DirectoryId::parse(text("directory")).unwrap(),
            mode,
        };
        let options = RunOptions {
            page_size: Some(5),
            ..RunOptions::default()
        };
        let _ = run_sync(&engine, &request, &options).await;
        return;
    }
    // The dispatcher as Lambda's event source runs it: receive, handle, delete what
    // succeeded; until both queues have been idle twice.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut idle = 0;
    while idle < 2 {
        let mut got = false;
        for url in [text("queueUrl"), text("retryUrl")] {
            let messages = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap()
                .messages()
                .to_vec();
            if messages.is_empty() {
                continue;
            }
            got = true;
            let event = LambdaEvent::new(sqs_event(&messages), Context::default());
            let failed: Vec<String> = dispatcher::handler(&engine, event)
                .await
                .unwrap()
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect();
            for m in messages {
                if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(m.receipt_handle().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
        idle = if got { 0 } else { idle + 1 };
    }
}
