//! End to end over HTTP: the BambooHR simulator's signed webhooks (both payload families,
//! signed at the current time with the directory's key) are POSTed to the handler served
//! locally, as the `dev` stack serves it, and accepted.

use std::sync::Arc;

use bamboohr_simulator::{deliver, SimConfig, Simulator};
use domain::{Directory, DirectoryId, EmployeeId, UserState};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use ports::{DirectorySecrets, SecretStore, Store, SystemClock};
use secrecy::SecretString;
use sync_engine::Engine;

const KEY: &[u8] = b"simulator-webhook-key";

#[tokio::test]
async fn the_simulators_signed_webhooks_are_accepted_end_to_end_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory());
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
    let acme = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(acme.clone(), "acme", "acme").unwrap();
    d.version = 1;
    store.put_directory(&d, None).await.unwrap();
    secrets
        .put(
            "acme",
            &DirectorySecrets {
                webhook_keys: vec![SecretString::from(String::from_utf8(KEY.to_vec()).unwrap())],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (bus, mut events) = InProcessBus::new();
    // The simulator signs with the wall clock, so the handler checks against it too.
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), Arc::new(SystemClock));
    let app = axum::Router::new()
        .route(
            "/webhooks/bamboohr/{directory_id}",
            axum::routing::post(webhook::local::axum_route),
        )
        .with_state(Arc::new(webhook::Deps::new(engine)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/bamboohr/acme",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = Simulator::generate(SimConfig::default());
    let ids: Vec<String> = sim
        .employees()
        .iter()
        .take(5)
        .map(|e| e.employee_id.clone())
        .collect();
    let fields = [
        "First Name",
        "Last Name",
        "Work Email",
        "Job Title",
        "Department",
        "Status",
        "Hire Date",
    ];
    let field_based = sim.field_based_webhook(&ids, &fields, KEY);
    assert_eq!(deliver(&url, &field_based).await.unwrap(), 200);
    let stored = store.list_users(&acme).await.unwrap();
    assert_eq!(stored.len(), ids.len());
    let mut published = 0;
    while events.try_recv().is_ok() {
        published += 1;
    }
    assert_eq!(published, ids.len(), "one event per new user");

    // The simulator's retry of the same body, re-signed later, is a duplicate.
    assert_eq!(deliver(&url, &field_based).await.unwrap(), 200);
    assert!(events.try_recv().is_err());

    let updated = sim.event_webhook("employee.updated", &ids[0], KEY);
    assert_eq!(deliver(&url, &updated).await.unwrap(), 202);
    let pending = store.pending_refresh_requests(&acme, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].employee_id.as_str(), ids[0]);

    let deleted = sim.event_webhook("employee.deleted", &ids[1], KEY);
    assert_eq!(deliver(&url, &deleted).await.unwrap(), 200);
    let user = store
        .get_user(&acme, &EmployeeId::parse(&ids[1]).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.state, UserState::Deleted);

    let forged = sim.event_webhook("employee.deleted", &ids[2], b"someone-elses-key");
    assert_eq!(deliver(&url, &forged).await.unwrap(), 401);
}
