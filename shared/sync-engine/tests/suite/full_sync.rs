//! Full sync against the BambooHR simulator on the embedded adapters.

use crate::common;

use std::collections::BTreeMap;

use bamboohr_simulator::{SimConfig, Simulator};
use common::{full_sync, harness};
use domain::{ChangeEvent, EmployeeId, EventType, RunStatus};
use ports::Store;

/// The user events among `events` (runs also publish directory events).
fn user_events(events: Vec<ChangeEvent>) -> Vec<ChangeEvent> {
    events
        .into_iter()
        .filter(|e| e.event_type.as_str().starts_with("user."))
        .collect()
}

fn sim(employees: usize, restricted: Vec<String>) -> Simulator {
    Simulator::generate(SimConfig {
        api_key: "k".into(),
        seed: 11,
        employees,
        restricted_fields: restricted,
        ..SimConfig::default()
    })
}

#[tokio::test]
async fn a_changed_employee_costs_exactly_one_write_and_one_event() {
    let simulator = sim(30, vec![]);
    let server = simulator.serve().await.unwrap();
    let mut h = harness("k", Some(server.base_url.clone()), vec![]).await;

    let first = full_sync(&h.engine, &h.dir).await.unwrap().counts;
    assert_eq!(first.seen, 30);
    assert_eq!(first.created + first.skipped, 30);
    assert_eq!(user_events(h.drain()).len() as u64, first.created);

    let id = simulator.employees()[0].employee_id.clone();
    let mut change = BTreeMap::new();
    change.insert(
        "jobTitle".to_string(),
        Some("Chief Cartographer".to_string()),
    );
    simulator.update(&id, change);

    let second = full_sync(&h.engine, &h.dir).await.unwrap().counts;
    assert_eq!(second.updated, 1);
    assert_eq!(second.created, 0);
    assert_eq!(second.unchanged + second.skipped, 29);
    let events = user_events(h.drain());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::UserUpdated);
    assert_eq!(events[0].data["jobTitle"], "Chief Cartographer");
    let user = h
        .store
        .get_user(&h.dir, &EmployeeId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.version, 2);
}

#[tokio::test]
async fn a_field_the_key_may_not_see_never_clears_the_stored_value() {
    let open = sim(5, vec![]);
    let server = open.serve().await.unwrap();
    let mut h = harness("k", Some(server.base_url.clone()), vec![]).await;
    full_sync(&h.engine, &h.dir).await.unwrap();
    h.drain();
    let before = h.store.list_users(&h.dir).await.unwrap();
    drop(server);

    // The same company, now served to a key that may not see job titles.
    let restricted = Simulator::from_employees(
        SimConfig {
            api_key: "k".into(),
            restricted_fields: vec!["jobInformationJobTitle".into()],
            ..SimConfig::default()
        },
        open.employees(),
    );
    let server = restricted.serve().await.unwrap();
    let mut d = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    let expected = d.version;
    d.version += 1;
    d.base_url = Some(server.base_url.clone());
    h.store.put_directory(&d, Some(expected)).await.unwrap();

    let report = full_sync(&h.engine, &h.dir).await.unwrap().counts;
    assert_eq!(
        report.updated, 0,
        "restricted fields are not read as cleared"
    );
    assert!(user_events(h.drain()).is_empty());
    let after = h.store.list_users(&h.dir).await.unwrap();
    let titles =
        |v: &[domain::DirectoryUser]| v.iter().map(|u| u.job_title.clone()).collect::<Vec<_>>();
    assert_eq!(titles(&before), titles(&after));
    assert!(titles(&after).iter().any(Option::is_some));
}

#[tokio::test]
async fn a_wrong_api_key_fails_the_run_without_touching_the_store() {
    let simulator = sim(3, vec![]);
    let server = simulator.serve().await.unwrap();
    let mut h = harness("wrong-key", Some(server.base_url.clone()), vec![]).await;
    let run = full_sync(&h.engine, &h.dir).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.errors[0].contains("401")
            || run.errors[0].to_lowercase().contains("unauthorized")
            || run.errors[0].contains("key"),
        "{:?}",
        run.errors
    );
    assert!(h.store.list_users(&h.dir).await.unwrap().is_empty());
    let events = h.drain();
    assert_eq!(events.len(), 1, "only directory.sync_failed");
    assert_eq!(events[0].event_type, EventType::DirectorySyncFailed);
}
