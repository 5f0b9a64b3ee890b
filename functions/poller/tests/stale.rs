//! The stale sweep end to end: a directory without a successful sync past its
//! threshold is reported stale at every sweep (the gauge the stale alarm watches),
//! gets one `directory.stale` event, and stops counting once a sync succeeds.

use std::sync::Arc;

use bamboohr_simulator::{SimConfig, Simulator};
use domain::{Directory, DirectoryId, EventType};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_runtime::{Context, LambdaEvent};
use poller::Poller;
use ports::{DirectorySecrets, FixedClock, SecretStore};
use secrecy::SecretString;
use sync_engine::Engine;
use time::{Duration, OffsetDateTime};

fn sweep() -> LambdaEvent<serde_json::Value> {
    LambdaEvent::new(serde_json::json!({ "sweep": true }), Context::default())
}

#[tokio::test]
async fn a_stale_directory_keeps_the_gauge_raised_at_every_sweep_until_it_syncs() {
    let simulator = Simulator::generate(SimConfig {
        api_key: "k".into(),
        employees: 3,
        ..SimConfig::default()
    });
    let server = simulator.serve().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
    let (bus, mut events) = InProcessBus::new();
    let connected = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let clock = Arc::new(FixedClock::new(connected));
    let engine = Engine::new(
        Arc::new(SqliteStore::in_memory()),
        secrets.clone(),
        Arc::new(bus),
        clock.clone(),
    );
    let id = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(id.clone(), "acme", "acme").unwrap();
    d.base_url = Some(server.base_url.clone());
    d.connected_at = Some(connected);
    d.stale_after_minutes = Some(60);
    d.version = 1;
    engine.store.put_directory(&d, None).await.unwrap();
    secrets
        .put(
            "acme",
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from("k")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let poller = Poller::new(engine);
    let namespace = "bamboohr-sync/test";

    // Within the threshold: nothing stale, and the gauge says so (zero is written).
    clock.set(connected + Duration::minutes(30));
    let r = poller::handler(&poller, sweep()).await.unwrap();
    assert_eq!(r.stale_directories, Some(0));
    let doc = poller::metrics::sweep_metrics_emf(namespace, clock_now(&clock), 0);
    assert_eq!(doc["StaleDirectories"], 0);

    // Past it: newly stale, one event.
    clock.set(connected + Duration::minutes(61));
    let r = poller::handler(&poller, sweep()).await.unwrap();
    assert_eq!(r.stale, vec![id.clone()]);
    assert_eq!(r.stale_directories, Some(1));
    let stale_events: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|e| e.event_type == EventType::DirectoryStale)
        .collect();
    assert_eq!(stale_events.len(), 1);
    assert_eq!(stale_events[0].data["thresholdMinutes"], 60);

    // Still stale a sweep later: no second event, but the gauge stays at one, so the
    // alarm stays in ALARM.
    clock.set(connected + Duration::minutes(76));
    let r = poller::handler(&poller, sweep()).await.unwrap();
    assert!(r.stale.is_empty(), "the event was sent once");
    assert_eq!(r.stale_directories, Some(1));
    let doc = poller::metrics::sweep_metrics_emf(namespace, clock_now(&clock), 1);
    let spec = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(spec["Namespace"], namespace);
    assert_eq!(spec["Metrics"][0]["Name"], "StaleDirectories");
    assert_eq!(doc["StaleDirectories"], 1);
    assert!(std::iter::from_fn(|| events.try_recv().ok())
        .all(|e| e.event_type != EventType::DirectoryStale));

    // A successful sync: the next sweep counts zero and the alarm clears.
    let run = poller::handler(
        &poller,
        LambdaEvent::new(
            serde_json::json!({"directoryId": "acme", "mode": "full"}),
            Context::default(),
        ),
    )
    .await
    .unwrap();
    assert!(run.run.is_some());
    clock.set(connected + Duration::minutes(91));
    let r = poller::handler(&poller, sweep()).await.unwrap();
    assert_eq!(r.stale_directories, Some(0));
    assert!(r.stale.is_empty());
}

fn clock_now(clock: &FixedClock) -> OffsetDateTime {
    ports::Clock::now(clock)
}
