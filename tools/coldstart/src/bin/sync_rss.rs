//! Peak memory of the poller binary over one full sync: provisions the stack's
//! resources on moto (as the integration tests do), serves a simulated BambooHR company
//! of N employees, then runs the release poller binary against a Lambda Runtime API on
//! loopback that hands it one `{"directoryId", "mode": "full"}` invocation, with
//! `AWS_ENDPOINT_URL` pointing at moto. When the binary posts its response, its peak
//! RSS (`VmHWM`) is read and it is stopped.
//!
//! Usage: `PEER_PYTHON=.venv/bin/python sync_rss BINARY [EMPLOYEES]` (default 1000).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use bamboohr_simulator::{SimConfig, Simulator};
use domain::{Directory, DirectoryId};
use ports::DirectorySecrets;
use secrecy::SecretString;
use tokio::sync::{mpsc, Mutex};

/// What the emulated runtime API shares: whether the one invocation was handed out,
/// and where the function's answer goes.
#[derive(Clone)]
struct Api {
    handed: Arc<Mutex<bool>>,
    answered: mpsc::UnboundedSender<String>,
}

async fn next(State(api): State<Api>) -> impl IntoResponse {
    let first = !std::mem::replace(&mut *api.handed.lock().await, true);
    if !first {
        // One invocation only: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
    }
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 900_000)
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", "sync-1".parse().unwrap());
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:111122223333:function:bamboohr-sync-poller"
            .parse()
            .unwrap(),
    );
    (headers, r#"{"directoryId":"acme","mode":"full"}"#)
}

async fn answer(State(api): State<Api>, body: String) -> impl IntoResponse {
    let _ = api.answered.send(body);
    axum::http::StatusCode::ACCEPTED
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let binary = args.next().ok_or("usage: sync_rss BINARY [EMPLOYEES]")?;
    let employees: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);

    let stack = integration_tests::TestStack::provision().await;
    let engine = function_support::aws_engine(&stack.sdk, &stack.config);
    let simulator = Simulator::generate(SimConfig {
        api_key: "rss-key".into(),
        seed: 5,
        employees,
        ..SimConfig::default()
    });
    let sim = simulator.serve().await?;
    engine
        .secrets
        .put(
            "acme",
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from("rss-key")),
                ..Default::default()
            },
        )
        .await?;
    let mut directory = Directory::new(DirectoryId::parse("acme")?, "acme", "acme")?;
    directory.base_url = Some(sim.base_url.clone());
    directory.version = 1;
    engine.store.put_directory(&directory, None).await?;

    let (tx, mut answered) = mpsc::unbounded_channel();
    let api = Api {
        handed: Arc::default(),
        answered: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let moto = test_peers::moto();
    let mut child = std::process::Command::new(&binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "poller")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/poller")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "rss")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("TABLE_NAME", &stack.config.table_name)
        .env("AUDIT_TABLE_NAME", &stack.audit_table)
        .env("EVENT_BUS_NAME", &stack.config.event_bus_name)
        .env("CHANGE_QUEUE_URL", &stack.queue_url)
        .env("SECRET_PREFIX", &stack.config.secret_prefix)
        .env("SCHEDULER_GROUP", "bamboohr-sync")
        .env(
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::111122223333:role/bamboohr-sync-scheduler",
        )
        .env(
            "POLLER_DLQ_ARN",
            "arn:aws:sqs:us-east-1:111122223333:bamboohr-sync-poller-dlq",
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    let body = tokio::time::timeout(Duration::from_secs(1800), answered.recv())
        .await
        .map_err(|_| "the poller did not answer within 30 minutes")?
        .ok_or("the runtime API stopped")?;
    let elapsed = started.elapsed();
    let hwm = status_kib(child.id(), "VmHWM:").unwrap_or(0);
    child.kill()?;
    child.wait()?;
    let created = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/run/counts/created").cloned());
    println!(
        "poller binary, full sync of {employees} employees: peak RSS {:.1} MB, {:.1} s, users created {}",
        hwm as f64 / 1024.0,
        elapsed.as_secs_f64(),
        created.map_or("?".to_string(), |c| c.to_string())
    );
    Ok(())
}
