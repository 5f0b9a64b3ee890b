//! Load test on loopback, in two parts. Figures are printed as Markdown rows; nothing is
//! asserted on time (speed targets live in BENCHMARKS.md), but every correctness check
//! (nothing accepted lost, every event delivered exactly once) panics when it fails.
//!
//! **Webhook endpoint.** The real `webhook::handler` served over HTTP by axum on
//! 127.0.0.1, wrapped exactly as the local stack (`bamboohr-sync dev`) wraps it. `C`
//! client tasks (one pooled `reqwest` client) send field-based BambooHR deliveries,
//! each signed as BambooHR signs them (hex HMAC-SHA256 of body + X-BambooHR-Timestamp),
//! until `--requests` have been sent or `--duration` has passed, whichever comes first.
//! Each task owns its own employees, so the expected final state is known: every
//! `--bad-every`-th request carries a signature made with a wrong key (must be 401,
//! change nothing), every `--dup-every`-th re-sends (re-signed, as BambooHR's retries
//! are) a body accepted earlier (must be answered as a duplicate, change nothing), and
//! every other request changes one employee's job title. A 5xx (or no answer) is
//! retried as BambooHR retries it: same body, fresh signature, at most five times.
//! Latency is measured by the client per request (each attempt is one), from sending
//! it to reading the whole answer. It runs twice: on the
//! embedded in-memory store (the product's own overhead) and on DynamoDB (moto). The
//! bus is the in-process one in both rows, so the store is the only difference, and
//! the directory secret is served warm from `CachingSecretStore` as on a warm Lambda.
//! Afterwards every accepted change is checked in the store: each employee's version
//! counts its applied changes and it holds the last title sent; the distinct
//! `user.*` events published match the applied changes; the outbox is empty. The total
//! number of publishes is printed beside the distinct ones: concurrent requests to one
//! directory flush the same outbox and may publish each other's events.
//!
//! **Dispatcher draining N events** (default 10,000). N users are stored, each with its
//! `user.created` event, for a directory with two targets: a local app-webhook receiver
//! (axum on 127.0.0.1, verifies every Standard Webhooks signature and counts deliveries
//! by `webhook-id`) and the real `scim2-server` (PyPI, via `tests/peers/scim_server.py`).
//! The events are change-queue messages as the outbox sends them to the FIFO
//! queue and handed to the real `dispatcher::handler` as `SqsEvent` batches of 10, by
//! `--workers` concurrent invocations (Lambda's concurrency on the queue); a message the
//! handler reports failed is handed out again, as SQS redelivers it. The store is the
//! embedded one or DynamoDB on moto (`--store`); the retry queue is the in-process one
//! or SQS on moto, matching. Per-delivery latency comes from the engine's own
//! `delivered` log line (a tracing layer notes when each (event, target) delivery was
//! recorded): a batch's messages run one after the other, so a delivery's latency is
//! from the end of the previous message of its batch (or the batch start) to that line,
//! which covers the reads, the target call and the ledger and delivery-log writes.
//! Afterwards: the receiver saw every event exactly once, and scim2-server holds N users.
//!
//! ```text
//! PEER_PYTHON=.venv/bin/python cargo bench -p integration-tests --bench load -- \
//!     [webhook] [dispatch] [--store embedded|moto|both] [--requests 20000] \
//!     [--duration 60] [--concurrency 16] [--employees-per-client 20] \
//!     [--bad-every 20] [--dup-every 10] [--events 10000] [--workers 4]
//! ```
//!
//! With neither `webhook` nor `dispatch`, both parts run; `--store` defaults to both.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_adapters::{DynamoStore, SqsRetryQueue};
use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, ScimConfig,
    Target, TargetFilter, TargetId, TargetKind, UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, InProcessRetryQueue, SqliteStore};
use integration_tests::{unique, TestStack};
use lambda_runtime::{Context, LambdaEvent};
use ports::{
    CachingSecretStore, DirectorySecrets, SecretStore, Store, SystemClock, TargetSecrets, UserWrite,
};
use secrecy::SecretString;
use sync_engine::signing::{bamboohr_signature, verify_standard_webhook, WebhookSecret};
use sync_engine::Engine;

/// The directory's BambooHR webhook key (a test value).
const KEY: &str = "load-test-webhook-key";
/// What the "bad signature" requests are signed with.
const WRONG_KEY: &str = "not-the-directory-key";
/// The app target's Standard Webhooks secret (a test value).
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// scim2-server's bearer token (a test value).
const SCIM_TOKEN: &str = "load-test-scim-token";

// ---------------------------------------------------------------- arguments

#[derive(Debug, Clone)]
struct Args {
    webhook: bool,
    dispatch: bool,
    stores: Vec<StoreKind>,
    requests: u64,
    duration: Duration,
    concurrency: usize,
    employees_per_client: usize,
    bad_every: u64,
    dup_every: u64,
    events: usize,
    workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Embedded,
    Moto,
}

impl StoreKind {
    fn label(self) -> &'static str {
        match self {
            Self::Embedded => "embedded (in-memory)",
            Self::Moto => "DynamoDB (moto)",
        }
    }
}

fn parse_args() -> Args {
    let mut a = Args {
        webhook: false,
        dispatch: false,
        stores: vec![StoreKind::Embedded, StoreKind::Moto],
        requests: 20_000,
        duration: Duration::from_secs(60),
        concurrency: 16,
        employees_per_client: 20,
        bad_every: 20,
        dup_every: 10,
        events: 10_000,
        workers: 4,
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, name: &str| -> u64 {
        v.and_then(|s| s.replace(['_', ','], "").parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "webhook" => a.webhook = true,
            "dispatch" => a.dispatch = true,
            "--store" => {
                a.stores = match it.next().as_deref() {
                    Some("embedded") => vec![StoreKind::Embedded],
                    Some("moto") => vec![StoreKind::Moto],
                    Some("both") => vec![StoreKind::Embedded, StoreKind::Moto],
                    other => panic!("--store embedded|moto|both, not {other:?}"),
                }
            }
            "--requests" => a.requests = num(it.next(), "--requests"),
            "--duration" => a.duration = Duration::from_secs(num(it.next(), "--duration")),
            "--concurrency" => a.concurrency = num(it.next(), "--concurrency").max(1) as usize,
            "--employees-per-client" => {
                a.employees_per_client = num(it.next(), "--employees-per-client").max(1) as usize
            }
            "--bad-every" => a.bad_every = num(it.next(), "--bad-every"),
            "--dup-every" => a.dup_every = num(it.next(), "--dup-every"),
            "--events" => a.events = num(it.next(), "--events") as usize,
            "--workers" => a.workers = num(it.next(), "--workers").max(1) as usize,
            other => panic!("unknown argument {other:?} (see the bench's header)"),
        }
    }
    if !a.webhook && !a.dispatch {
        a.webhook = true;
        a.dispatch = true;
    }
    a
}

// ---------------------------------------------------------------- shared helpers

/// The `p`-th percentile (nearest rank) of sorted durations, in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
}

fn dir_id() -> DirectoryId {
    DirectoryId::parse("acme").unwrap()
}

/// A store of the chosen kind: in memory, or a fresh table on this process's moto
/// (then also the DynamoDB store itself, for its request meter, and the stack).
async fn make_store(kind: StoreKind) -> (Arc<dyn Store>, Option<(Arc<DynamoStore>, TestStack)>) {
    match kind {
        StoreKind::Embedded => (Arc::new(SqliteStore::in_memory()), None),
        StoreKind::Moto => {
            let stack = TestStack::provision().await;
            let store = Arc::new(DynamoStore::new(&stack.sdk, &stack.config.table_name));
            (store.clone(), Some((store, stack)))
        }
    }
}

/// DynamoDB requests and metered units since `dynamo`'s meter was last reset, per `n`.
fn meter_note(dynamo: &Option<(Arc<DynamoStore>, TestStack)>, n: u64, per: &str) -> String {
    match dynamo {
        Some((d, _)) if n > 0 => {
            let (rcu, wcu, requests) = d.metered();
            format!(
                "; DynamoDB per {per}: {:.1} requests, {:.1} RCU, {:.1} WCU",
                requests as f64 / n as f64,
                rcu / n as f64,
                wcu / n as f64
            )
        }
        _ => String::new(),
    }
}

/// Directory secrets in a temporary file, read through the cache a warm Lambda has.
fn make_secrets() -> (Arc<dyn SecretStore>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("{}.json", unique("load-secrets")));
    let secrets =
        CachingSecretStore::new(FileSecrets::open(&path), function_support::SECRET_CACHE_TTL);
    (Arc::new(secrets), path)
}

// ---------------------------------------------------------------- part 1: webhook

/// What a client task sent and saw.
#[derive(Default)]
struct ClientLog {
    latencies: Vec<Duration>,
    /// Count per answer: "200 applied", "200 duplicate", "401", ...
    answers: BTreeMap<String, u64>,
    /// Employee -> (applied changes, last title applied).
    expected: HashMap<String, (u64, String)>,
    /// Requests whose answer was not what that kind of request must get.
    wrong: Vec<String>,
    /// Requests retried after a 5xx or no answer.
    retried: u64,
    /// Employees with a change never accepted (every retry failed).
    gave_up: HashSet<String>,
}

/// One field-based delivery changing `employee`'s job title, BambooHR's shape.
fn delivery(employee: &str, title: &str) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    serde_json::json!({
        "employees": [{
            "id": employee,
            "action": "Updated",
            "timestamp": now,
            "changedFields": ["Job Title"],
            "fields": {
                "First Name": "Load",
                "Last Name": format!("Tester {employee}"),
                "Work Email": format!("load.{employee}@example.test"),
                "Job Title": title,
                "Status": "Active",
                "Hire Date": "2024-01-08"
            }
        }]
    })
    .to_string()
    .into_bytes()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Change,
    BadSignature,
    Duplicate,
}

#[allow(clippy::too_many_arguments)]
async fn client_task(
    task: usize,
    url: String,
    http: reqwest::Client,
    args: Arc<Args>,
    issued: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> ClientLog {
    let mut log = ClientLog::default();
    let employees: Vec<String> = (0..args.employees_per_client)
        .map(|i| (100_000 + task * args.employees_per_client + i).to_string())
        .collect();
    // Bodies this task had accepted, to re-send as BambooHR's retries would.
    let mut accepted: VecDeque<Vec<u8>> = VecDeque::new();
    let mut seq = 0u64;
    loop {
        let n = issued.fetch_add(1, Ordering::Relaxed) + 1;
        if n > args.requests || Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            return log;
        }
        seq += 1;
        let kind = if args.bad_every > 0 && n.is_multiple_of(args.bad_every) {
            Kind::BadSignature
        } else if args.dup_every > 0 && n.is_multiple_of(args.dup_every) && !accepted.is_empty() {
            Kind::Duplicate
        } else {
            Kind::Change
        };
        let employee = &employees[(seq as usize) % employees.len()];
        let title = format!("Title {task}-{seq}");
        let body = match kind {
            // An older accepted body, not just the last one: its receipt must hold
            // even after newer changes of the same employee.
            Kind::Duplicate => accepted[(seq as usize * 7) % accepted.len()].clone(),
            _ => delivery(employee, &title),
        };
        let key = if kind == Kind::BadSignature {
            WRONG_KEY
        } else {
            KEY
        };
        // A 5xx (or no answer) is retried as BambooHR retries it: the same body,
        // re-signed with a fresh timestamp, at most five times (after a short pause
        // here instead of BambooHR's 5 to 80 minutes).
        let mut attempt = 0;
        let (status, duplicate, applied) = loop {
            attempt += 1;
            let (status, answer) = send_signed(&http, &url, key, &body, &mut log).await;
            let report: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            let duplicate = report["result"]["duplicate"] == true;
            let applied = report["result"]["created"].as_u64().unwrap_or(0)
                + report["result"]["updated"].as_u64().unwrap_or(0);
            if (status == 0 || status >= 500) && attempt <= 5 {
                log.retried += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            break (status, duplicate, applied);
        };
        match kind {
            // Applied now, or by an earlier attempt that was answered 5xx after the
            // write (then this one finds it unchanged): either way it is accepted.
            Kind::Change if status == 200 && !duplicate && (applied == 1 || attempt > 1) => {
                let e = log.expected.entry(employee.clone()).or_default();
                e.0 += 1;
                e.1 = title;
                accepted.push_back(body);
                if accepted.len() > 16 {
                    accepted.pop_front();
                }
            }
            // Never accepted: the change may or may not be in the store (the write can
            // succeed before a later step fails), so this employee's exact state is
            // unknown from here on.
            Kind::Change if status >= 500 || status == 0 => {
                log.gave_up.insert(employee.clone());
            }
            Kind::BadSignature if status == 401 => {}
            Kind::Duplicate if status == 200 && duplicate => {}
            _ => log.wrong.push(format!(
                "{} answered {status} (applied {applied}, duplicate {duplicate})",
                match kind {
                    Kind::Change => "a change",
                    Kind::BadSignature => "a bad signature",
                    Kind::Duplicate => "a duplicate",
                }
            )),
        }
    }
}

/// Sends one signed request; returns the status (0 when no answer came) and the body,
/// and notes its latency and its answer.
async fn send_signed(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &[u8],
    log: &mut ClientLog,
) -> (u16, String) {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = bamboohr_signature(key.as_bytes(), body, &timestamp);
    let started = Instant::now();
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-bamboohr-signature", signature)
        .header("x-bamboohr-timestamp", timestamp)
        .body(body.to_vec())
        .send()
        .await;
    let (status, answer) = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => {
            *log.answers
                .entry(format!("no answer ({})", e.without_url()))
                .or_default() += 1;
            (0, String::new())
        }
    };
    log.latencies.push(started.elapsed());
    if status != 0 {
        let duplicate = answer.contains("\"duplicate\":true");
        let label = match (status, duplicate) {
            (200, true) => "200 duplicate".to_string(),
            (200, false) => "200 applied".to_string(),
            (s, _) => s.to_string(),
        };
        *log.answers.entry(label).or_default() += 1;
    }
    (status, answer)
}

async fn webhook_load(args: &Arc<Args>, kind: StoreKind) {
    let (store, dynamo) = make_store(kind).await;
    let (secrets, secrets_path) = make_secrets();
    let dir = dir_id();
    secrets
        .put(
            dir.as_str(),
            &DirectorySecrets {
                webhook_keys: vec![SecretString::from(KEY)],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut d = Directory::new(dir.clone(), "acme", dir.as_str()).unwrap();
    d.version = 1;
    store.put_directory(&d, None).await.unwrap();
    let (bus, mut bus_rx) = InProcessBus::new();
    // Distinct user events published (a concurrent flush may publish an event twice,
    // which the stable event id makes harmless; distinct ids are what counts).
    let published = Arc::new(Mutex::new(HashSet::new()));
    let publishes = Arc::new(AtomicU64::new(0));
    let collector = {
        let published = published.clone();
        let publishes = publishes.clone();
        tokio::spawn(async move {
            while let Some(e) = bus_rx.recv().await {
                if e.event_type.is_user_event() {
                    publishes.fetch_add(1, Ordering::Relaxed);
                    published.lock().unwrap().insert(e.id.to_string());
                }
            }
        })
    };
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), Arc::new(SystemClock));
    let deps = Arc::new(webhook::Deps::new(engine.clone()));
    let app = Router::new()
        .route(
            "/webhooks/bamboohr/{directory_id}",
            post(webhook::local::axum_route),
        )
        .with_state(deps);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/bamboohr/{}",
        listener.local_addr().unwrap(),
        dir
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    if let Some((d, _)) = &dynamo {
        d.reset_consumed();
    }
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|t| {
            tokio::spawn(client_task(
                t,
                url.clone(),
                http.clone(),
                args.clone(),
                issued.clone(),
                stop.clone(),
                deadline,
            ))
        })
        .collect();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.unwrap());
    }
    let wall = started.elapsed();
    server.abort();
    let applied_answers: u64 = logs
        .iter()
        .map(|l| l.answers.get("200 applied").copied().unwrap_or(0))
        .sum();
    let meter = meter_note(&dynamo, applied_answers, "200 applied answer");

    let mut latencies: Vec<Duration> = logs.iter().flat_map(|l| l.latencies.clone()).collect();
    latencies.sort();
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    for l in &logs {
        for (k, v) in &l.answers {
            *answers.entry(k.clone()).or_default() += v;
        }
    }
    let wrong: Vec<&String> = logs.iter().flat_map(|l| &l.wrong).collect();
    let retried: u64 = logs.iter().map(|l| l.retried).sum();
    let requests = latencies.len();

    // Every accepted change is in the store: each employee's version counts its
    // accepted changes (creation is version 1) and it holds the last title accepted.
    // An employee with a change never accepted may hold that one too (at most one
    // version more per change given up on).
    let mut applied = 0u64;
    let mut in_store = 0u64;
    let mut mismatched = Vec::new();
    let mut uncertain = 0usize;
    for log in &logs {
        uncertain += log.gave_up.len();
        for (employee, (changes, title)) in &log.expected {
            applied += changes;
            let user = store
                .get_user(&dir, &EmployeeId::parse(employee.as_str()).unwrap())
                .await
                .unwrap();
            let exact = !log.gave_up.contains(employee);
            match user {
                Some(u) => {
                    in_store += u.version.min(*changes);
                    let ok = if exact {
                        u.version == *changes && u.job_title.as_deref() == Some(title.as_str())
                    } else {
                        u.version >= *changes
                    };
                    if !ok {
                        mismatched.push(format!(
                            "employee {employee}: version {} for {changes} accepted changes",
                            u.version
                        ));
                    }
                }
                None => mismatched.push(format!("employee {employee}: not stored")),
            }
        }
    }
    // Let the collector see the last publishes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = published.lock().unwrap().len() as u64;
    let outbox_left = store.pending_events(&dir, 1_000).await.unwrap().len();
    collector.abort();
    let _ = std::fs::remove_file(secrets_path);

    let errors: Vec<String> = answers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "200 applied" | "200 duplicate" | "401"))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    println!(
        "| {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} / {} | {} / {} / {} / {} |",
        kind.label(),
        args.concurrency,
        requests,
        wall.as_secs_f64(),
        requests as f64 / wall.as_secs_f64(),
        pct(&latencies, 50.0),
        pct(&latencies, 90.0),
        pct(&latencies, 99.0),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        answers.get("200 applied").copied().unwrap_or(0),
        answers.get("200 duplicate").copied().unwrap_or(0),
        answers.get("401").copied().unwrap_or(0),
        if errors.is_empty() { "0".to_string() } else { errors.join(", ") },
        retried,
        uncertain,
        applied,
        in_store,
        events,
        outbox_left,
    );
    println!(
        "<!-- {}: {} user events published for {events} distinct (concurrent requests flush the same outbox){meter} -->",
        kind.label(),
        publishes.load(Ordering::Relaxed)
    );
    assert!(wrong.is_empty(), "unexpected answers: {wrong:?}");
    assert!(
        mismatched.is_empty(),
        "stored users differ from the accepted changes: {mismatched:?}"
    );
    assert_eq!(applied, in_store, "every accepted change is in the store");
    if uncertain == 0 {
        assert_eq!(applied, events, "one user event per accepted change");
    } else {
        assert!(events >= applied, "a user event for every accepted change");
    }
    assert_eq!(outbox_left, 0, "the outbox is flushed");
}

// ---------------------------------------------------------------- part 2: dispatcher

/// The app-webhook receiver: verifies each delivery and counts it by `webhook-id`.
#[derive(Default)]
struct Receiver {
    seen: Mutex<HashMap<String, u32>>,
    refused: AtomicU64,
}

async fn receive(
    State((secret, rx)): State<(Arc<WebhookSecret>, Arc<Receiver>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !verify_standard_webhook(
        &secret,
        h("webhook-id"),
        h("webhook-timestamp"),
        &body,
        h("webhook-signature"),
    ) {
        rx.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    *rx.seen
        .lock()
        .unwrap()
        .entry(h("webhook-id").to_string())
        .or_default() += 1;
    StatusCode::NO_CONTENT
}

/// When the engine recorded each (event, target) outcome, from its log lines.
#[derive(Default)]
struct Outcomes {
    /// (event id, target id) -> (when, outcome message).
    at: Mutex<HashMap<(String, String), (Instant, String)>>,
}

/// A tracing layer noting the dispatcher's per-target outcome lines.
struct OutcomeLayer(Arc<Outcomes>);

#[derive(Default)]
struct OutcomeFields {
    message: String,
    event_id: String,
    target_id: String,
}

impl tracing::field::Visit for OutcomeFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &value);
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let text = text.trim_matches('"').to_string();
        match field.name() {
            "message" => self.message = text,
            "event_id" => self.event_id = text,
            "target_id" => self.target_id = text,
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for OutcomeLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != "sync_engine::deliver::dispatch" {
            return;
        }
        let mut f = OutcomeFields::default();
        event.record(&mut f);
        if f.event_id.is_empty() || f.target_id.is_empty() {
            return;
        }
        self.0
            .at
            .lock()
            .unwrap()
            .insert((f.event_id, f.target_id), (Instant::now(), f.message));
    }
}

fn user(n: usize) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        dir_id(),
        EmployeeId::parse((200_000 + n).to_string()).unwrap(),
        UserState::Active,
    );
    u.employee_number = Some(format!("E{n}"));
    u.first_name = Some("Load".into());
    u.last_name = Some(format!("Tester{n}"));
    u.job_title = Some("Engineer".into());
    u.emails = vec![Email {
        value: format!("load.tester{n}@example.test"),
        kind: EmailKind::Work,
        primary: true,
    }];
    u.version = 1;
    u.refresh_fingerprint();
    u
}

/// A batch handed to one invocation: when it started, and its event ids in order.
struct BatchRun {
    started: Instant,
    events: Vec<String>,
}

async fn dispatch_load(args: &Arc<Args>, kind: StoreKind, outcomes: Arc<Outcomes>) {
    let (store, dynamo) = make_store(kind).await;
    let (secrets, secrets_path) = make_secrets();
    let dir = dir_id();

    // Targets: the local receiver and scim2-server.
    let receiver = Arc::new(Receiver::default());
    let secret = Arc::new(WebhookSecret::parse(&SecretString::from(WHSEC)).unwrap());
    let app = Router::new()
        .route("/hooks/app", post(receive))
        .with_state((secret, receiver.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}/hooks/app", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let scim = test_peers::spawn_python_peer(
        &test_peers::workspace_root().join("tests/peers/scim_server.py"),
        &[],
        &[("SCIM_BEARER_TOKEN", SCIM_TOKEN)],
    );
    let target = |id: &str, kind: TargetKind| Target {
        id: TargetId::parse(id).unwrap(),
        kind,
        filter: TargetFilter::default(),
        enabled: true,
    };
    let mut d = Directory::new(dir.clone(), "acme", dir.as_str()).unwrap();
    d.version = 1;
    d.targets = vec![
        target("app", TargetKind::app_webhook(app_url)),
        target(
            "scim",
            TargetKind::Scim {
                base_url: format!("{}/v2", scim.base_url()),
                scim: ScimConfig::default(),
            },
        ),
    ];
    store.put_directory(&d, None).await.unwrap();
    secrets
        .put(
            dir.as_str(),
            &DirectorySecrets {
                targets: BTreeMap::from([
                    (
                        "app".to_string(),
                        TargetSecrets {
                            signing_secrets: vec![SecretString::from(WHSEC)],
                            ..Default::default()
                        },
                    ),
                    (
                        "scim".to_string(),
                        TargetSecrets {
                            bearer_token: Some(SecretString::from(SCIM_TOKEN)),
                            ..Default::default()
                        },
                    ),
                ]),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // N users and their user.created events. On moto, by BatchWriteItem: moto copies
    // the whole table for every TransactWriteItems (see the poller bench), and loading
    // is not what is measured.
    let users: Vec<DirectoryUser> = (0..args.events).map(user).collect();
    let now = time::OffsetDateTime::now_utc();
    let events: Vec<ChangeEvent> = users
        .iter()
        .map(|u| domain::ChangeEvent::for_user_write(None, u, now))
        .collect();
    let load_started = Instant::now();
    let (retry_queue, in_process_retries): (Arc<dyn ports::RetryQueue>, _) = match &dynamo {
        None => {
            for u in &users {
                store
                    .write_user(&UserWrite {
                        user: u.clone(),
                        expected_version: None,
                        events: vec![],
                    })
                    .await
                    .unwrap();
            }
            let q = Arc::new(InProcessRetryQueue::new(Arc::new(SystemClock)));
            (q.clone() as Arc<dyn ports::RetryQueue>, Some(q))
        }
        Some((dynamo, stack)) => {
            dynamo.import_users(&users).await.unwrap();
            let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
            let mut urls = Vec::new();
            for name in ["retry", "delivery-dlq"] {
                urls.push(
                    sqs.create_queue()
                        .queue_name(unique(name))
                        .send()
                        .await
                        .unwrap()
                        .queue_url()
                        .unwrap()
                        .to_string(),
                );
            }
            (
                Arc::new(SqsRetryQueue::new(&stack.sdk, &urls[0], &urls[1])) as _,
                None,
            )
        }
    };
    let load_seconds = load_started.elapsed().as_secs_f64();
    let (bus, _bus_rx) = InProcessBus::new();
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), Arc::new(SystemClock))
        .with_retry_queue(retry_queue);

    // The change queue: batches of 10, handed out to `workers` concurrent invocations;
    // failed messages go back on the queue as SQS would redeliver them.
    let queue: Arc<Mutex<VecDeque<Vec<ChangeEvent>>>> = Arc::new(Mutex::new(
        events.chunks(10).map(<[ChangeEvent]>::to_vec).collect(),
    ));
    let redelivered = Arc::new(AtomicU64::new(0));
    if let Some((d, _)) = &dynamo {
        d.reset_consumed();
    }
    let started = Instant::now();
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let queue = queue.clone();
            let engine = engine.clone();
            let redelivered = redelivered.clone();
            tokio::spawn(async move {
                let mut runs = Vec::new();
                let mut n = 0usize;
                loop {
                    let Some(batch) = queue.lock().unwrap().pop_front() else {
                        return runs;
                    };
                    let mut sqs = SqsEvent::default();
                    sqs.records = batch
                        .iter()
                        .map(|e| {
                            n += 1;
                            dispatcher::change_queue_message(e, &format!("load-{n}"))
                        })
                        .collect();
                    let run = BatchRun {
                        started: Instant::now(),
                        events: batch.iter().map(|e| e.id.to_string()).collect(),
                    };
                    let response =
                        dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default()))
                            .await
                            .expect("the handler answers");
                    runs.push(run);
                    let failed: HashSet<String> = response
                        .batch_item_failures
                        .into_iter()
                        .map(|f| f.item_identifier)
                        .collect();
                    if !failed.is_empty() {
                        redelivered.fetch_add(failed.len() as u64, Ordering::Relaxed);
                        let again: Vec<ChangeEvent> = batch
                            .into_iter()
                            .filter(|e| failed.contains(e.id.as_str()))
                            .collect();
                        queue.lock().unwrap().push_back(again);
                    }
                }
            })
        })
        .collect();
    let mut runs = Vec::new();
    for w in workers {
        runs.extend(w.await.unwrap());
    }
    let wall = started.elapsed();
    server.abort();
    let meter = meter_note(&dynamo, args.events as u64, "event");

    // Per-delivery latency and outcomes, from the engine's log lines.
    let at = outcomes.at.lock().unwrap().clone();
    let targets = ["app", "scim"];
    let mut latency: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut by_outcome: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for run in &runs {
        let mut previous_end = run.started;
        for id in &run.events {
            let mut end = previous_end;
            for t in targets {
                if let Some((when, message)) = at.get(&(id.clone(), t.to_string())) {
                    latency
                        .entry(t)
                        .or_default()
                        .push(when.saturating_duration_since(previous_end));
                    end = end.max(*when);
                    *by_outcome.entry((t, message.clone())).or_default() += 1;
                }
            }
            previous_end = end;
        }
    }
    let (scheduled, dead_letters) = match &in_process_retries {
        Some(q) => (q.waiting(), q.dead_letters().len()),
        None => (0, 0),
    };
    let seen = receiver.seen.lock().unwrap().clone();
    let once = seen.values().filter(|c| **c == 1).count();
    let more = seen.values().filter(|c| **c > 1).count();
    let missing = events
        .iter()
        .filter(|e| !seen.contains_key(e.id.as_str()))
        .count();
    let listing: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v2/Users?count=1", scim.base_url()))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let scim_users = listing["totalResults"].as_u64().unwrap_or(0) as usize;
    let _ = std::fs::remove_file(secrets_path);

    for t in targets {
        let mut l = latency.remove(t).unwrap_or_default();
        l.sort();
        let delivered = by_outcome
            .get(&(t, "delivered".to_string()))
            .copied()
            .unwrap_or(0);
        let other: Vec<String> = by_outcome
            .iter()
            .filter(|((tt, m), _)| *tt == t && m != "delivered")
            .map(|((_, m), c)| format!("{m}: {c}"))
            .collect();
        let check = match t {
            "app" => format!(
                "{once} exactly once, {more} more than once, {missing} missing, {} refused",
                receiver.refused.load(Ordering::Relaxed)
            ),
            _ => format!("{scim_users} users on scim2-server"),
        };
        println!(
            "| {} | {t} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            kind.label(),
            args.events,
            delivered,
            wall.as_secs_f64(),
            delivered as f64 / wall.as_secs_f64(),
            pct(&l, 50.0),
            pct(&l, 99.0),
            l.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            if other.is_empty() {
                "0".to_string()
            } else {
                other.join(", ")
            },
            dead_letters,
            check,
        );
    }
    println!(
        "<!-- {}: {} batches by {} workers, {} messages redelivered, {} retries waiting, users loaded in {:.1} s{meter} -->",
        kind.label(),
        runs.len(),
        args.workers,
        redelivered.load(Ordering::Relaxed),
        scheduled,
        load_seconds
    );
    assert_eq!(
        once, args.events,
        "the receiver saw every event exactly once"
    );
    assert_eq!(scim_users, args.events, "scim2-server holds every user");
    drop(scim);
}

// ---------------------------------------------------------------- main

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let args = Arc::new(parse_args());
    let outcomes = Arc::new(Outcomes::default());
    // Only the dispatcher's outcome lines are looked at, and nothing is printed, unless
    // `LOAD_LOG=<filter>` (RUST_LOG syntax) asks for the product's own log lines on
    // stderr, e.g. `LOAD_LOG=warn` to see why requests were refused (those lines carry
    // ids and reasons, never HR values or secrets; hardening/no_secrets_in_logs).
    use tracing_subscriber::Layer;
    let log = std::env::var("LOAD_LOG").ok().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::new(f))
    });
    tracing_subscriber::registry()
        .with(
            OutcomeLayer(outcomes.clone()).with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("sync_engine::deliver::dispatch", tracing::Level::INFO),
            ),
        )
        .with(log)
        .init();

    if args.webhook {
        println!(
            "\nWebhook endpoint: {} requests or {} s at most, {} clients, {} employees each, every {}th request badly signed, every {}th a duplicate\n",
            args.requests,
            args.duration.as_secs(),
            args.concurrency,
            args.employees_per_client,
            args.bad_every,
            args.dup_every
        );
        println!("| store | clients | requests | wall s | req/s | p50 ms | p90 ms | p99 ms | max ms | 200 applied | 200 duplicate | 401 | other answers | retried / given up | accepted changes / in store / user events / outbox left |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
        for kind in &args.stores {
            webhook_load(&args, *kind).await;
        }
    }
    if args.dispatch {
        println!(
            "\nDispatcher: {} user.created events, batches of 10, {} concurrent invocations, two targets\n",
            args.events, args.workers
        );
        println!("| store | target | events | deliveries | wall s | deliveries/s | p50 ms | p99 ms | max ms | other outcomes | dead letters | check |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
        for kind in &args.stores {
            outcomes.at.lock().unwrap().clear();
            dispatch_load(&args, *kind, outcomes.clone()).await;
        }
    }
}
