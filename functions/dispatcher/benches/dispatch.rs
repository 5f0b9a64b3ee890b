//! Dispatcher throughput and CPU per delivery.
//!
//! - `dispatch_app_webhook/batch_of_10`: one dispatcher instance (one Lambda invocation
//!   at a time) handling SQS batches of 10 change messages, each delivered to one app
//!   webhook target on a local receiver (axum, answers 204) over a kept-alive
//!   connection: signing, the POST and its answer, ledger and delivery log included.
//!   Criterion's throughput line is deliveries per second.
//! - `dispatch_cpu/eventbridge_in_process`: the same path with an EventBridge target
//!   published to the in-process customer bus, so no socket is involved: directory and
//!   state-transfer reads, filter, ledger, breaker, delivery log, on the in-memory store.
//! - `dispatch_cpu/sign_app_webhook`: serialising and signing one event (Standard
//!   Webhooks, one secret), the CPU an app webhook adds on top.
//!
//! Each iteration delivers new versions (written in the untimed setup, one setup per
//! iteration), so nothing is skipped by the ledger.
//!
//! `cargo bench -p dispatcher --bench dispatch`

// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::http::StatusCode;
use axum::Router;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, Target,
    TargetFilter, TargetId, TargetKind, UserState,
};
use embedded_adapters::{FileSecrets, InProcessForeignBus, SqliteStore};
use lambda_runtime::{Context, LambdaEvent};
use ports::{
    BusError, CachingSecretStore, DirectorySecrets, EventBus, PublishOutcome, SecretStore, Store,
    SystemClock, TargetSecrets, UserWrite,
};
use secrecy::SecretString;
use sync_engine::Engine;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BATCH: usize = 10;

/// Requests the local receiver answered, to check that every message was delivered.
static RECEIVED: std::sync::LazyLock<Arc<AtomicUsize>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

/// A bus that accepts and forgets every event (only a 410 would publish).
struct DropBus;

#[async_trait]
impl EventBus for DropBus {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
        Ok(PublishOutcome {
            published: events.iter().map(|e| e.id.clone()).collect(),
            failed: Vec::new(),
            rejected: Vec::new(),
        })
    }
}

struct Setup {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    store: Arc<SqliteStore>,
    dir: DirectoryId,
    _tmp: tempfile::TempDir,
}

fn setup(target: TargetKind) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (engine, store, dir) = rt.block_on(async {
        let kind = match target {
            TargetKind::AppWebhook { .. } => {
                let seen = RECEIVED.clone();
                let app = Router::new().fallback(move || {
                    seen.fetch_add(1, Ordering::Relaxed);
                    async { StatusCode::NO_CONTENT }
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}/hooks", listener.local_addr().unwrap());
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                TargetKind::app_webhook(url)
            }
            other => other,
        };
        let store = Arc::new(SqliteStore::in_memory());
        let files = FileSecrets::open(tmp.path().join("secrets.json"));
        files
            .put(
                "acme",
                &DirectorySecrets {
                    targets: [(
                        "t".to_string(),
                        TargetSecrets {
                            signing_secrets: vec![SecretString::from(WHSEC)],
                            ..Default::default()
                        },
                    )]
                    .into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let dir = DirectoryId::parse("acme").unwrap();
        let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
        d.targets = vec![Target {
            id: TargetId::parse("t").unwrap(),
            kind,
            filter: TargetFilter::default(),
            enabled: true,
        }];
        d.version = 1;
        store.put_directory(&d, None).await.unwrap();
        let engine = Engine::new(
            store.clone(),
            Arc::new(CachingSecretStore::new(files, Duration::from_secs(300))),
            Arc::new(DropBus),
            Arc::new(SystemClock),
        )
        .with_retry_queue(Arc::new(embedded_adapters::InProcessRetryQueue::new(
            Arc::new(SystemClock),
        )))
        .with_foreign_bus(Arc::new(InProcessForeignBus::default()));
        (engine, store, dir)
    });
    Setup {
        rt,
        engine,
        store,
        dir,
        _tmp: tmp,
    }
}

/// Writes the next version of employee `emp` and returns its change event.
async fn next_version(store: &SqliteStore, dir: &DirectoryId, emp: usize) -> ChangeEvent {
    let id = EmployeeId::parse(emp.to_string()).unwrap();
    let before = store.get_user(dir, &id).await.unwrap();
    let mut u = DirectoryUser::new(dir.clone(), id, UserState::Active);
    u.first_name = Some("Ada".into());
    u.last_name = Some("Lovelace".into());
    u.job_title = Some(format!(
        "Engineer {}",
        before.as_ref().map_or(0, |b| b.version)
    ));
    u.emails = vec![Email {
        value: format!("ada{emp}@acme.test"),
        kind: EmailKind::Work,
        primary: true,
    }];
    u.version = before.as_ref().map_or(1, |b| b.version + 1);
    u.refresh_fingerprint();
    let event =
        domain::ChangeEvent::for_user_write(before.as_ref(), &u, time::OffsetDateTime::now_utc());
    store
        .write_user(&UserWrite {
            user: u,
            expected_version: before.map(|b| b.version),
            events: vec![],
        })
        .await
        .unwrap();
    event
}

fn sqs_batch(events: &[ChangeEvent]) -> SqsEvent {
    let mut sqs = SqsEvent::default();
    sqs.records = events
        .iter()
        .map(|e| {
            let mut m = SqsMessage::default();
            m.message_id = Some(e.id.to_string());
            m.body = Some(
                serde_json::json!({
                    "version": "0", "id": "b", "detail-type": e.event_type.as_str(),
                    "source": "bamboohr-sync", "account": "123456789012",
                    "time": "2026-11-23T08:00:00Z", "region": "us-east-1", "resources": [],
                    "detail": e,
                })
                .to_string(),
            );
            m
        })
        .collect();
    sqs
}

fn app_webhook(c: &mut Criterion) {
    let s = setup(TargetKind::app_webhook(String::new()));
    let handled = AtomicUsize::new(0);
    let mut group = c.benchmark_group("dispatch_app_webhook");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch_of_10", |b| {
        b.iter_batched(
            || {
                s.rt.block_on(async {
                    let mut events = Vec::with_capacity(BATCH);
                    for emp in 1..=BATCH {
                        events.push(next_version(&s.store, &s.dir, emp).await);
                    }
                    sqs_batch(&events)
                })
            },
            |batch| {
                handled.fetch_add(batch.records.len(), Ordering::Relaxed);
                let resp =
                    s.rt.block_on(dispatcher::handler(
                        &s.engine,
                        LambdaEvent::new(batch, Context::default()),
                    ))
                    .unwrap();
                assert!(resp.batch_item_failures.is_empty());
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    // Every handled message reached the receiver: nothing was skipped by the ledger.
    assert_eq!(
        RECEIVED.load(Ordering::Relaxed),
        handled.load(Ordering::Relaxed)
    );
}

fn cpu(c: &mut Criterion) {
    let s = setup(TargetKind::event_bridge(
        "arn:aws:events:us-east-1:123456789012:event-bus/customer".into(),
    ));
    let mut group = c.benchmark_group("dispatch_cpu");
    group.throughput(Throughput::Elements(1));
    group.bench_function("eventbridge_in_process", |b| {
        b.iter_batched(
            || s.rt.block_on(next_version(&s.store, &s.dir, 1)),
            |event| {
                let report =
                    s.rt.block_on(sync_engine::deliver::dispatch::dispatch(&s.engine, &event))
                        .unwrap();
                assert!(matches!(
                    report.targets[0].1,
                    sync_engine::deliver::dispatch::TargetOutcome::Delivered { .. }
                ));
            },
            BatchSize::PerIteration,
        )
    });
    let event = s.rt.block_on(next_version(&s.store, &s.dir, 2));
    let secrets =
        vec![sync_engine::signing::WebhookSecret::parse(&SecretString::from(WHSEC)).unwrap()];
    group.bench_function("sign_app_webhook", |b| {
        b.iter(|| {
            let body = serde_json::to_vec(&event).unwrap();
            sync_engine::signing::standard_webhook_signature(
                &secrets,
                event.id.as_str(),
                1_795_420_800,
                &body,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, app_webhook, cpu);
criterion_main!(benches);
