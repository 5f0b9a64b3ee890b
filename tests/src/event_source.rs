//! An emulator of Lambda's SQS event source mapping, on moto's SQS: `workers` pollers
//! (the function's concurrency on the queue) each receive up to `batch_size` messages,
//! hand them to the real handler as the `SqsEvent` Lambda would build (body, ids,
//! receipt handle, and the system attributes the handler reads: `MessageGroupId`,
//! `ApproximateReceiveCount`), delete what the handler did not report failed, and make
//! the failures visible again after `failed_visibility` (Lambda leaves them for the
//! visibility timeout; tests shorten it). It runs until stopped.
//!
//! What it does not emulate: Lambda's own scaling of pollers and its batching window.
//! A FIFO queue's group locking is SQS's (moto's), as on AWS.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;

/// The handler the emulator invokes: the dispatcher's, in tests and benches.
pub type Handler =
    Arc<dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync>;

/// How the emulated mapping polls.
#[derive(Debug, Clone)]
pub struct EventSourceConfig {
    /// The queue.
    pub queue_url: String,
    /// Concurrent pollers (the function's concurrency on this queue).
    pub workers: usize,
    /// Messages per batch (1-10).
    pub batch_size: i32,
    /// How soon a message the handler reported failed is visible again.
    pub failed_visibility: Duration,
}

/// What the emulated mapping did.
#[derive(Debug, Default)]
pub struct EventSourceStats {
    /// Handler invocations.
    pub invocations: AtomicU64,
    /// Messages deleted after their batch.
    pub deleted: AtomicU64,
    /// Messages the handler reported failed.
    pub failed: AtomicU64,
}

/// A running emulated mapping.
pub struct EventSource {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Counters, live.
    pub stats: Arc<EventSourceStats>,
}

/// The Lambda record of one SQS message.
pub fn lambda_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id().map(str::to_string);
    r.receipt_handle = m.receipt_handle().map(str::to_string);
    r.body = m.body().map(str::to_string);
    r.event_source = Some("aws:sqs".into());
    if let Some(attrs) = m.attributes() {
        for (name, key) in [
            (MessageSystemAttributeName::MessageGroupId, "MessageGroupId"),
            (
                MessageSystemAttributeName::ApproximateReceiveCount,
                "ApproximateReceiveCount",
            ),
            (MessageSystemAttributeName::SentTimestamp, "SentTimestamp"),
        ] {
            if let Some(v) = attrs.get(&name) {
                r.attributes.insert(key.to_string(), v.clone());
            }
        }
    }
    r
}

impl EventSource {
    /// Starts polling `config.queue_url` with `handler`.
    pub fn start(sdk: &aws_config::SdkConfig, config: EventSourceConfig, handler: Handler) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(EventSourceStats::default());
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let tasks = (0..config.workers.max(1))
            .map(|_| {
                let (stop, stats, sqs, config, handler) = (
                    stop.clone(),
                    stats.clone(),
                    sqs.clone(),
                    config.clone(),
                    handler.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        poll_once(&sqs, &config, &handler, &stats).await;
                    }
                })
            })
            .collect();
        Self { stop, tasks, stats }
    }

    /// Stops every poller after its current batch.
    pub async fn stop(self) -> Arc<EventSourceStats> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        self.stats
    }
}

async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    config: &EventSourceConfig,
    handler: &Handler,
    stats: &EventSourceStats,
) {
    let received = sqs
        .receive_message()
        .queue_url(&config.queue_url)
        .max_number_of_messages(config.batch_size.clamp(1, 10))
        // Short polls: moto's long poll wakes only for new messages, not for a
        // message group freed by a delete, which SQS hands out at once.
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await;
    let messages = match received {
        Ok(out) => out.messages().to_vec(),
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
    };
    if messages.is_empty() {
        // An idle poller backs off a little: every receive costs moto a scan of the
        // whole queue, and busy polling would make moto the bottleneck.
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    }
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(lambda_record).collect();
    stats.invocations.fetch_add(1, Ordering::Relaxed);
    let response = handler(event).await;
    let failed: std::collections::HashSet<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    for m in &messages {
        let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else {
            continue;
        };
        if failed.contains(id) {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            let _ = sqs
                .change_message_visibility()
                .queue_url(&config.queue_url)
                .receipt_handle(handle)
                .visibility_timeout(i32::try_from(config.failed_visibility.as_secs()).unwrap_or(0))
                .send()
                .await;
        } else if sqs
            .delete_message()
            .queue_url(&config.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .is_ok()
        {
            stats.deleted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The real dispatcher handler as an emulator [`Handler`].
pub fn dispatcher_handler(engine: sync_engine::Engine) -> Handler {
    let engine = Arc::new(engine);
    Arc::new(move |event: SqsEvent| {
        let engine = engine.clone();
        Box::pin(async move {
            dispatcher::handle_batch(
                &engine,
                lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
            )
            .await
            .0
        })
    })
}
