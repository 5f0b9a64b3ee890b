//! The noisy-neighbour scenario (issue 19), shared by its CI test (small, bounded) and
//! its bench (`--bench noisy_neighbour`, the figures in BENCHMARKS.md).
//!
//! Directory A ("noisy") floods `flood` changes at once; directory B ("quiet") sends
//! one change every `quiet_every` while A's backlog drains. Both deliver to an app
//! webhook receiver on loopback that takes `target_latency` per request (a slow
//! target) and verifies every Standard Webhooks signature. The path is the product's:
//! users are written with their events, the outbox publishes them with
//! `aws_adapters::SqsChangeNotices` to a FIFO change queue on moto (message group per
//! directory and lane), and [`crate::event_source`] runs the real dispatcher handler
//! at `workers` concurrency over batches of `batch_size`. The store is the embedded
//! one (in memory) so that the queue and the target, not moto's DynamoDB, set the pace.
//!
//! Measured: B's latency per change (from its outbox publish to its receipt), A's
//! throughput while draining (changes received per second), and every change is
//! checked delivered exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, Target, TargetFilter, TargetId,
    TargetKind, UserState,
};
use ports::{DirectorySecrets, SystemClock, TargetSecrets, UserWrite};
use secrecy::SecretString;
use sync_engine::signing::{verify_standard_webhook, WebhookSecret};
use sync_engine::Engine;

use crate::event_source::{dispatcher_handler, EventSource, EventSourceConfig};

/// The signing secret of the scenario's app-webhook targets.
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Changes A floods.
    pub flood: usize,
    /// How long the target takes to answer.
    pub target_latency: Duration,
    /// Dispatcher concurrency (emulated pollers).
    pub workers: usize,
    /// Messages per batch.
    pub batch_size: i32,
    /// Lanes (message groups) per directory.
    pub lanes: u16,
    /// How often B sends a change.
    pub quiet_every: Duration,
    /// How many changes B sends at most (it stops early when A is drained).
    pub quiet_max: usize,
    /// Give up after this long.
    pub patience: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// A's changes received, and in how long (from the first receipt to the last).
    pub flood_received: usize,
    /// Seconds A took to drain, from the first dispatch to the last receipt.
    pub flood_seconds: f64,
    /// B's latencies, sorted.
    pub quiet_latencies: Vec<Duration>,
    /// Deliveries received more than once (0 expected).
    pub duplicates: usize,
    /// Deliveries whose signature did not verify (0 expected).
    pub refused: u64,
    /// Messages the handler reported failed (0 expected).
    pub failed_messages: u64,
}

impl Outcome {
    /// A's throughput, changes a second.
    pub fn flood_rate(&self) -> f64 {
        self.flood_received as f64 / self.flood_seconds.max(f64::EPSILON)
    }

    /// The `q` quantile (0-1) of B's latency.
    pub fn quiet_quantile(&self, q: f64) -> Duration {
        if self.quiet_latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.quiet_latencies.len() as f64 - 1.0) * q).round() as usize;
        self.quiet_latencies[i.min(self.quiet_latencies.len() - 1)]
    }
}

/// The receiver: verifies each delivery, sleeps the target latency, notes when each
/// event id arrived and how often.
struct Receiver {
    secret: WebhookSecret,
    latency: Duration,
    seen: Mutex<HashMap<String, (Instant, u32)>>,
    refused: AtomicU64,
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !verify_standard_webhook(
        &rx.secret,
        h("webhook-id"),
        h("webhook-timestamp"),
        &body,
        h("webhook-signature"),
    ) {
        rx.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    tokio::time::sleep(rx.latency).await;
    let mut seen = rx.seen.lock().expect("receiver lock");
    let entry = seen
        .entry(h("webhook-id").to_string())
        .or_insert((Instant::now(), 0));
    entry.1 += 1;
    StatusCode::NO_CONTENT
}

/// A directory `id` with one app-webhook target ("app") at `url`, signing with the
/// scenario's secret, stored with its secret.
pub async fn directory(engine: &Engine, id: &str, url: &str) -> DirectoryId {
    let dir = DirectoryId::parse(id).expect("valid id");
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "app".to_string(),
        TargetSecrets {
            signing_secrets: vec![SecretString::from(WHSEC)],
            ..Default::default()
        },
    );
    engine
        .secrets
        .put(
            id,
            &DirectorySecrets {
                targets,
                ..Default::default()
            },
        )
        .await
        .expect("secret");
    let mut d = Directory::new(dir.clone(), id, id).expect("directory");
    d.targets = vec![Target {
        id: TargetId::parse("app").expect("target id"),
        kind: TargetKind::app_webhook(url.into()),
        filter: TargetFilter::default(),
        enabled: true,
    }];
    d.version = 1;
    engine
        .store
        .put_directory(&d, None)
        .await
        .expect("directory");
    dir
}

/// Writes user `n` of `dir` with its `user.created` event; returns the event id.
pub async fn new_user(engine: &Engine, dir: &DirectoryId, n: usize) -> String {
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse(n.to_string()).expect("employee id"),
        UserState::Active,
    );
    u.first_name = Some(format!("User{n}"));
    u.version = 1;
    u.refresh_fingerprint();
    let event = ChangeEvent::for_user_write(None, &u, time::OffsetDateTime::now_utc());
    let id = event.id.to_string();
    engine
        .store
        .write_user(&UserWrite {
            user: u,
            expected_version: None,
            events: vec![event],
        })
        .await
        .expect("write user");
    id
}

/// Runs the scenario against moto (`sdk`).
pub async fn run(sdk: &aws_config::SdkConfig, s: &Scenario) -> Outcome {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", crate::unique("noisy")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue url")
        .to_string();

    let receiver = Arc::new(Receiver {
        secret: WebhookSecret::parse(&SecretString::from(WHSEC)).expect("secret"),
        latency: s.target_latency,
        seen: Mutex::new(HashMap::new()),
        refused: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let tmp = tempfile_dir();
    let store = Arc::new(embedded_adapters::SqliteStore::in_memory());
    let secrets = Arc::new(ports::CachingSecretStore::new(
        embedded_adapters::FileSecrets::open(tmp.join("secrets.json")),
        Duration::from_secs(300),
    ));
    let bus = Arc::new(aws_adapters::SqsChangeNotices::new(
        sdk, &queue_url, s.lanes,
    ));
    let engine =
        Engine::new(store, secrets, bus, Arc::new(SystemClock)).with_retry_queue(Arc::new(
            embedded_adapters::InProcessRetryQueue::new(Arc::new(SystemClock)),
        ));
    let noisy = directory(&engine, "noisy", &url).await;
    let quiet = directory(&engine, "quiet", &url).await;

    // A's flood: written, then published by the outbox.
    let mut flood_ids = Vec::with_capacity(s.flood);
    for n in 1..=s.flood {
        flood_ids.push(new_user(&engine, &noisy, n).await);
    }
    let flushed = sync_engine::reconcile::outbox::flush(&engine, &noisy)
        .await
        .expect("flush the flood");
    assert_eq!(flushed.published, s.flood, "the whole flood is queued");

    let start = Instant::now();
    let source = EventSource::start(
        sdk,
        EventSourceConfig {
            queue_url: queue_url.clone(),
            workers: s.workers,
            batch_size: s.batch_size,
            failed_visibility: Duration::from_secs(1),
        },
        dispatcher_handler(engine.clone()),
    );

    // B: one change every `quiet_every` while A drains.
    let mut quiet_sent: Vec<(String, Instant)> = Vec::new();
    let drained = |rx: &Receiver| {
        let seen = rx.seen.lock().expect("receiver lock");
        flood_ids.iter().all(|id| seen.contains_key(id))
    };
    let mut next_quiet = Instant::now();
    while !drained(&receiver) && start.elapsed() < s.patience {
        if quiet_sent.len() < s.quiet_max && Instant::now() >= next_quiet {
            let id = new_user(&engine, &quiet, quiet_sent.len() + 1).await;
            let published_at = Instant::now();
            sync_engine::reconcile::outbox::flush(&engine, &quiet)
                .await
                .expect("flush quiet");
            quiet_sent.push((id, published_at));
            next_quiet += s.quiet_every;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let B's last change arrive.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(15) {
        let arrived = {
            let seen = receiver.seen.lock().expect("receiver lock");
            quiet_sent.iter().all(|(id, _)| seen.contains_key(id))
        };
        if arrived {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = source.stop().await;
    server.abort();

    let seen = receiver.seen.lock().expect("receiver lock");
    let flood_times: Vec<Instant> = flood_ids
        .iter()
        .filter_map(|id| seen.get(id).map(|(at, _)| *at))
        .collect();
    let last = flood_times.iter().max().copied().unwrap_or(start);
    let mut quiet_latencies: Vec<Duration> = quiet_sent
        .iter()
        .filter_map(|(id, sent)| {
            seen.get(id)
                .map(|(at, _)| at.saturating_duration_since(*sent))
        })
        .collect();
    quiet_latencies.sort();
    assert_eq!(
        quiet_latencies.len(),
        quiet_sent.len(),
        "every quiet change arrived"
    );
    Outcome {
        flood_received: flood_times.len(),
        flood_seconds: last.duration_since(start).as_secs_f64(),
        quiet_latencies,
        duplicates: seen.values().filter(|(_, n)| *n > 1).count(),
        refused: receiver.refused.load(Ordering::Relaxed),
        failed_messages: stats.failed.load(Ordering::Relaxed),
    }
}

/// A private temporary directory for the run's secrets file (kept for the process).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(crate::unique("noisy-neighbour"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
