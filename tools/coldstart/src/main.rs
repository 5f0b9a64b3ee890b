//! Cold start of the Lambda function binaries, measured locally: a minimal Lambda
//! Runtime API (the `/2018-06-01/runtime/invocation/next` endpoint) on loopback, and for
//! each binary named on the command line, N runs of: exec the binary with
//! `AWS_LAMBDA_RUNTIME_API` pointing here and the environment the SAM template gives it
//! (dummy values, no network), time until its first `GET .../invocation/next` (its
//! init is done: tracing, configuration, the AWS SDK config and clients, the engine),
//! read its resident set size then, and kill it.
//!
//! Usage: `coldstart [--runs N] BINARY...` (release builds, e.g.
//! `target/release/webhook`); prints one line per binary: median, min and max init
//! time and the median RSS at the first poll. Figures and the exact command are kept in
//! BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;

/// The environment every function gets (the template's Globals plus the variables the
/// Lambda service sets), with dummy values: nothing here reaches a network.
const COMMON_ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTART"),
    ("AWS_SECRET_ACCESS_KEY", "coldstart-secret"),
    ("AWS_SESSION_TOKEN", "coldstart-token"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart"),
    ("TABLE_NAME", "bamboohr-sync-Table"),
    ("AUDIT_TABLE_NAME", "bamboohr-sync-AuditTable"),
    ("EVENT_BUS_NAME", "bamboohr-sync-bus"),
    (
        "CHANGE_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/111122223333/bamboohr-sync-changes.fifo",
    ),
    ("SECRET_PREFIX", "bamboohr-sync/coldstart/"),
    ("RUST_LOG", "info"),
    // The poller's scheduler settings.
    ("SCHEDULER_GROUP", "bamboohr-sync"),
    (
        "SCHEDULER_ROLE_ARN",
        "arn:aws:iam::111122223333:role/bamboohr-sync-scheduler",
    ),
    (
        "POLLER_DLQ_ARN",
        "arn:aws:sqs:us-east-1:111122223333:bamboohr-sync-poller-dlq",
    ),
    // The webhook schedules targeted runs of the poller.
    (
        "POLLER_FUNCTION_ARN",
        "arn:aws:lambda:us-east-1:111122223333:function:bamboohr-sync-poller",
    ),
    // The dispatcher's queues.
    (
        "RETRY_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/111122223333/bamboohr-sync-retry",
    ),
    (
        "DELIVERY_DLQ_URL",
        "https://sqs.us-east-1.amazonaws.com/111122223333/bamboohr-sync-delivery-dlq",
    ),
];

/// Signals each first poll; the poll itself is never answered (the run is over).
async fn next(State(polled): State<mpsc::UnboundedSender<Instant>>) -> impl IntoResponse {
    let _ = polled.send(Instant::now());
    std::future::pending::<()>().await;
    ""
}

/// Resident set size of a process, in KiB, from /proc (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut runs = 21usize;
    let mut binaries = Vec::new();
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args.next().ok_or("--runs needs a number")?.parse()?;
        } else {
            binaries.push(PathBuf::from(a));
        }
    }
    if binaries.is_empty() {
        return Err("usage: coldstart [--runs N] BINARY...".into());
    }

    let (tx, mut polled) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!("function        runs  init median  min      max      RSS at first poll (median)");
    for binary in &binaries {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut times = Vec::with_capacity(runs);
        let mut rss = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut cmd = std::process::Command::new(binary);
            cmd.env_clear()
                .envs(COMMON_ENV.iter().copied())
                .env("AWS_LAMBDA_RUNTIME_API", &api)
                .env("AWS_LAMBDA_FUNCTION_NAME", &name)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let started = Instant::now();
            let mut child = cmd.spawn()?;
            let at = tokio::time::timeout(Duration::from_secs(10), polled.recv())
                .await
                .map_err(|_| format!("{name} did not poll within 10 s"))?
                .ok_or("the runtime API stopped")?;
            times.push(at.duration_since(started).as_secs_f64() * 1000.0);
            if let Some(kib) = rss_kib(child.id()) {
                rss.push(kib as f64 / 1024.0);
            }
            child.kill()?;
            child.wait()?;
        }
        let (min, max) = times
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
        let med = median(&mut times);
        let rss_med = if rss.is_empty() {
            f64::NAN
        } else {
            median(&mut rss)
        };
        println!(
            "{name:<15} {runs:>4}  {med:>8.2} ms {min:>6.2} ms {max:>6.2} ms {rss_med:>6.1} MB"
        );
    }
    Ok(())
}
