//! Poller benchmark: a directory of N simulated employees synced into DynamoDB (moto)
//! through the real poller engine, in three scenarios: (a) the first full sync,
//! (b) a full sync with nothing changed, (c) an incremental sync with 1% changed.
//!
//! Prints, per scenario: BambooHR requests, DynamoDB read and write units counted from
//! the requests by DynamoDB's on-demand rules (`DynamoStore::metered`; moto's own
//! ConsumedCapacity is not real), DynamoDB requests, user writes, events published,
//! wall time, and the process's peak RSS during the run (VmHWM reset before each
//! scenario; the process also holds the simulated company, so the growth over the
//! RSS before the run is printed too).
//!
//! `cargo bench -p integration-tests --bench poller_sync -- 1000 10000 100000`
//! (sizes default to 10000; needs the Python peers: `PEER_PYTHON=.venv/bin/python`).
//!
//! moto's TransactWriteItems deep-copies the whole table on every call, so a first
//! sync of N users costs O(N²) there. Above [`FIRST_SYNC_MAX`] employees the bench
//! therefore skips (a) and loads the table with exactly the users a first sync would
//! write (the engine's own mapping of every BambooHR row, written with BatchWriteItem),
//! then measures (b) as usual, and (c) up to [`INCREMENTAL_MAX`] (each changed user is
//! one transaction, i.e. one copy of the whole table in moto). For the same reason the
//! DynamoDB client here waits up to two minutes per call instead of the product's five
//! seconds: a slow moto answer must not fail the run being measured. The counted units
//! do not depend on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aws_adapters::{DynamoStore, EventBridgeBus, SecretsManagerStore};
use bamboohr_simulator::{SimConfig, Simulator};
use domain::{Directory, DirectoryId, SyncMode, SyncRequest, SyncRun};
use integration_tests::TestStack;
use ports::{DirectorySecrets, SecretStore, SystemClock};
use secrecy::SecretString;
use sync_engine::operate::run_sync;
use sync_engine::reconcile::run::RunOptions;
use sync_engine::Engine;

const KEY: &str = "bench-key";

/// Largest directory whose first sync runs through moto's transactions.
const FIRST_SYNC_MAX: usize = 2_000;

/// Largest directory whose 1% incremental sync runs through moto's transactions.
const INCREMENTAL_MAX: usize = 10_000;

/// The users a first full sync of `directory` writes: every BambooHR row mapped by the
/// engine's own mapping, at version 1.
async fn first_sync_users(engine: &Engine, directory: &Directory) -> Vec<domain::DirectoryUser> {
    let client = sync_engine::source::client::bamboohr_client(engine, directory)
        .await
        .expect("client");
    let fields = sync_engine::source::client::requested_fields(directory);
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let cfg = sync_engine::source::client::mapping_config(directory);
    let ctx = sync_engine::reconcile::apply::context(directory, engine.clock.now(), None);
    let mut users = Vec::new();
    let mut page = 1;
    loop {
        let batch = client.dataset_page(&refs, page, 1_000).await.expect("page");
        for raw in &batch.employees {
            if let Ok(record) =
                mapping::record_from_fields(&raw.id, &raw.fields, &raw.restricted, &cfg)
            {
                let mut user = mapping::apply(None, &record, &ctx);
                user.version = 1;
                users.push(user);
            }
        }
        if page >= batch.total_pages {
            return users;
        }
        page += 1;
    }
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the peak-RSS mark (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Row {
    scenario: &'static str,
    run: SyncRun,
    bamboohr: u64,
    read_units: f64,
    write_units: f64,
    ddb_requests: u64,
    seconds: f64,
    peak_mib: f64,
    growth_mib: f64,
}

async fn scenario(
    name: &'static str,
    engine: &Engine,
    store: &DynamoStore,
    sim: &Simulator,
    request: &SyncRequest,
) -> Row {
    store.reset_consumed();
    let requests_before = sim.request_count();
    let (_, rss_before) = memory();
    reset_peak();
    let started = Instant::now();
    let run = run_sync(engine, request, &RunOptions::default())
        .await
        .expect("the run is recorded");
    let seconds = started.elapsed().as_secs_f64();
    let (peak, _) = memory();
    let (read_units, write_units, ddb_requests) = store.metered();
    Row {
        scenario: name,
        bamboohr: sim.request_count() - requests_before,
        run,
        read_units,
        write_units,
        ddb_requests,
        seconds,
        peak_mib: peak as f64 / 1024.0,
        growth_mib: peak.saturating_sub(rss_before) as f64 / 1024.0,
    }
}

async fn bench(employees: usize) -> Vec<Row> {
    let stack = TestStack::provision().await;
    let patient = aws_sdk_dynamodb::config::Builder::from(&stack.sdk)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(120))
                .operation_timeout(std::time::Duration::from_secs(400))
                .build(),
        )
        .retry_config(aws_adapters::clients::retry_config())
        .build();
    let store = Arc::new(DynamoStore::from_client(
        aws_sdk_dynamodb::Client::from_conf(patient),
        &stack.config.table_name,
    ));
    let secrets = Arc::new(SecretsManagerStore::new(
        &stack.sdk,
        &stack.config.secret_prefix,
    ));
    let engine = Engine::new(
        store.clone(),
        secrets.clone(),
        Arc::new(EventBridgeBus::new(
            &stack.sdk,
            &stack.config.event_bus_name,
        )),
        Arc::new(SystemClock),
    );
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        seed: 42,
        employees,
        ..SimConfig::default()
    });
    let server = sim.serve().await.expect("simulator serves");
    // Each size gets its own table, so a short, realistic directory id is safe (key
    // lengths count in every index entry read).
    let dir = DirectoryId::parse("acme").unwrap();
    secrets
        .put(
            dir.as_str(),
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from(KEY)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut directory = Directory::new(dir.clone(), "acme", dir.as_str()).unwrap();
    directory.base_url = Some(server.base_url.clone());
    directory.version = 1;
    // Above any share this benchmark changes: the safeguard is measured elsewhere.
    directory.safeguard.max_share = 1.0;
    engine.store.put_directory(&directory, None).await.unwrap();

    let full = SyncRequest {
        directory_id: dir.clone(),
        mode: SyncMode::Full,
    };
    let incremental = SyncRequest {
        directory_id: dir.clone(),
        mode: SyncMode::Incremental,
    };
    let mut rows = Vec::new();
    if employees <= FIRST_SYNC_MAX {
        rows.push(scenario("(a) first full sync", &engine, &store, &sim, &full).await);
    } else {
        let users = first_sync_users(&engine, &directory).await;
        store.import_users(&users).await.expect("table loaded");
    }
    rows.push(scenario("(b) full sync, no change", &engine, &store, &sim, &full).await);
    if employees > INCREMENTAL_MAX {
        return rows;
    }

    let changed = (employees / 100).max(1);
    for (i, e) in sim
        .employees()
        .into_iter()
        .filter(|e| !e.deleted)
        .take(changed)
        .enumerate()
    {
        sim.update(
            &e.employee_id,
            BTreeMap::from([("jobTitle".to_string(), Some(format!("Bench title {i}")))]),
        );
    }
    rows.push(
        scenario(
            "(c) incremental, 1% changed",
            &engine,
            &store,
            &sim,
            &incremental,
        )
        .await,
    );
    rows
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace(['_', ','], "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000]
    } else {
        sizes
    };
    println!(
        "| employees | scenario | mode | status | BambooHR requests | DynamoDB RCU | DynamoDB WCU | DynamoDB requests | users written | events published | wall s | peak RSS MiB | RSS growth MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        for r in bench(n).await {
            let c = &r.run.counts;
            for e in &r.run.errors {
                eprintln!("{n} {}: {e}", r.scenario);
            }
            println!(
                "| {n} | {} | {} | {:?} | {} | {:.1} | {:.1} | {} | {} | {} | {:.1} | {:.0} | {:.0} |",
                r.scenario,
                r.run.mode.as_str(),
                r.run.status,
                r.bamboohr,
                r.read_units,
                r.write_units,
                r.ddb_requests,
                c.created + c.updated + c.deactivated + c.deleted,
                c.events_published,
                r.seconds,
                r.peak_mib,
                r.growth_mib,
            );
        }
    }
}
