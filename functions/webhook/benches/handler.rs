//! Handler CPU per webhook payload, I/O excluded: the embedded in-memory store, secrets
//! behind the in-memory cache (as on Lambda after the first request), and a bus that
//! drops events. Each iteration sends a payload that changes every employee in it, so
//! the measured path is the full one: signature, parse, mapping, fingerprint, versioned
//! write with its outbox event, flush, receipt.
//!
//! `cargo bench -p webhook --bench handler`

// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use domain::{ChangeEvent, Directory, DirectoryId};
use embedded_adapters::{FileSecrets, SqliteStore};
use ports::{
    BusError, CachingSecretStore, DirectorySecrets, EventBus, FixedClock, PublishOutcome,
    SecretStore, Store,
};
use secrecy::SecretString;
use sync_engine::Engine;
use time::OffsetDateTime;

const KEY: &str = "bamboohr-webhook-private-key";
const NOW: i64 = 1_795_420_800;

/// A bus that accepts and forgets every event.
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
    deps: webhook::Deps,
    rt: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let deps = rt.block_on(async {
        let store = Arc::new(SqliteStore::in_memory());
        let mut d = Directory::new(DirectoryId::parse("acme").unwrap(), "acme", "acme").unwrap();
        d.version = 1;
        store.put_directory(&d, None).await.unwrap();
        let files = FileSecrets::open(tmp.path().join("secrets.json"));
        files
            .put(
                "acme",
                &DirectorySecrets {
                    webhook_keys: vec![SecretString::from(KEY)],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let secrets = CachingSecretStore::new(files, Duration::from_secs(3600));
        // Warm the cache so no iteration reads the file.
        secrets.get("acme").await.unwrap();
        let clock = FixedClock::new(OffsetDateTime::from_unix_timestamp(NOW).unwrap());
        let engine = Engine::new(store, Arc::new(secrets), Arc::new(DropBus), Arc::new(clock));
        webhook::Deps::new(engine)
    });
    Setup {
        deps,
        rt,
        _tmp: tmp,
    }
}

/// A field-based payload of `count` employees, every one with a title unique to `round`.
fn payload(count: usize, round: u64) -> String {
    let employees: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "id": (1000 + i).to_string(),
                "action": "Updated",
                "timestamp": "2026-11-23T07:59:00Z",
                "changedFields": ["Job Title"],
                "fields": {
                    "First Name": format!("First{i}"),
                    "Last Name": format!("Last{i}"),
                    "Work Email": format!("person{i}@example.com"),
                    "Job Title": format!("Title {round}"),
                    "Department": "Engineering",
                    "Division": "R&D",
                    "Location": "Remote",
                    "Status": "Active",
                    "Hire Date": "2020-01-06",
                    "Mobile Phone": "+1 555 0100",
                }
            })
        })
        .collect();
    serde_json::json!({ "employees": employees }).to_string()
}

/// The API Gateway v2 request BambooHR's delivery becomes.
fn request(body: &str) -> lambda_http::Request {
    let ts = NOW.to_string();
    let sig = bamboohr_simulator::sign(KEY.as_bytes(), body.as_bytes(), &ts);
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/http-api-proxy.json")).unwrap();
    event["headers"]["x-bamboohr-signature"] = sig.into();
    event["headers"]["x-bamboohr-timestamp"] = ts.into();
    event["body"] = base64::engine::general_purpose::STANDARD
        .encode(body)
        .into();
    event["isBase64Encoded"] = true.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn field_based(c: &mut Criterion) {
    let s = setup();
    let round = AtomicU64::new(0);
    let mut group = c.benchmark_group("webhook_field_based");
    for count in [1usize, 100] {
        // Create the employees once, so every measured payload is an update.
        let first = request(&payload(count, u64::MAX));
        let resp = s.rt.block_on(webhook::handler(&s.deps, first)).unwrap();
        assert!(resp.status().is_success());
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, &count| {
            b.iter_batched(
                || request(&payload(count, round.fetch_add(1, Ordering::Relaxed))),
                |req| {
                    let resp = s.rt.block_on(webhook::handler(&s.deps, req)).unwrap();
                    debug_assert_eq!(resp.status(), 200);
                    resp
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn duplicate(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("webhook_duplicate");
    for count in [1usize, 100] {
        let body = payload(count, 0);
        let resp =
            s.rt.block_on(webhook::handler(&s.deps, request(&body)))
                .unwrap();
        assert!(resp.status().is_success());
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &body, |b, body| {
            b.iter_batched(
                || request(body),
                |req| s.rt.block_on(webhook::handler(&s.deps, req)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, field_based, duplicate);
criterion_main!(benches);
