//! Account operations against the simulator: field discovery, list fields, the directory
//! fallback and the webhooks API.

use std::time::Duration;

use bamboohr_client::{Auth, BambooClient, BambooError, ClientOptions, NewWebhook, SecretString};
use bamboohr_simulator::{Fault, FaultPlan, SimConfig, Simulator, LITMOS_ACCESS};
use secrecy::ExposeSecret;

const KEY: &str = "account-key";

fn setup() -> Simulator {
    Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 12,
        ..SimConfig::default()
    })
}

fn client(base: &str) -> BambooClient {
    BambooClient::new(
        base,
        Auth::ApiKey(SecretString::from(KEY)),
        ClientOptions {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

fn hook(name: &str) -> NewWebhook {
    NewWebhook {
        name: name.into(),
        url: "https://hooks.example.com/in".into(),
        events: vec![],
        monitor_fields: vec!["workEmail".into()],
        post_fields: vec![("workEmail".into(), "Work Email".into())],
    }
}

#[tokio::test]
async fn custom_fields_are_discovered_with_their_display_names_and_types() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let fields = client(&server.base_url).meta_fields().await.unwrap();
    let litmos = fields
        .iter()
        .find(|f| f.alias.as_deref() == Some(LITMOS_ACCESS))
        .expect("the custom checkbox is listed");
    assert_eq!(litmos.field_type, "checkbox");
    assert!(fields.iter().any(|f| f.name == "Work Email"));
}

#[tokio::test]
async fn list_fields_carry_the_values_employees_hold() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let lists = client(&server.base_url).list_fields().await.unwrap();
    let department = lists
        .iter()
        .find(|l| l.alias.as_deref() == Some("department"))
        .unwrap();
    for e in sim.employees().iter().filter(|e| !e.deleted) {
        if let Some(d) = &e.department {
            assert!(department
                .options
                .iter()
                .any(|o| &o.name == d && !o.archived));
        }
    }
}

#[tokio::test]
async fn the_directory_lists_active_employees_only() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let dir = client(&server.base_url).directory().await.unwrap();
    let active: Vec<String> = sim
        .employees()
        .into_iter()
        .filter(|e| {
            !e.deleted
                && e.value(&bamboohr_simulator::Field::Status, None).as_deref() == Some("Active")
        })
        .map(|e| e.employee_id)
        .collect();
    let mut got: Vec<String> = dir.into_iter().map(|e| e.id).collect();
    got.sort();
    let mut want = active;
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_created_webhook_keeps_its_private_key_secret_and_can_be_listed_and_deleted() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let c = client(&server.base_url);
    let created = c.create_webhook(&hook("sync")).await.unwrap();
    assert!(!created.private_key.expose_secret().is_empty());
    assert!(!format!("{created:?}").contains(created.private_key.expose_secret()));
    let listed = c.list_webhooks().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    c.delete_webhook(&created.id).await.unwrap();
    assert!(c.list_webhooks().await.unwrap().is_empty());
}

#[tokio::test]
async fn creating_a_webhook_is_not_retried_after_a_failure_that_may_have_registered_it() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let c = client(&server.base_url);
    sim.inject(FaultPlan::next(Fault::unavailable()));
    let before = sim.request_count();
    let err = c.create_webhook(&hook("once")).await.unwrap_err();
    assert!(matches!(err, BambooError::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(sim.request_count() - before, 1);

    // Throttling means BambooHR did nothing: that is retried.
    sim.inject(FaultPlan::next(Fault::rate_limited(0)));
    c.create_webhook(&hook("after throttling")).await.unwrap();
    assert_eq!(c.list_webhooks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_webhook_without_monitor_fields_for_update_events_is_refused() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let err = client(&server.base_url)
        .create_webhook(&NewWebhook {
            monitor_fields: vec![],
            ..hook("no fields")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BambooError::InvalidRequest {
                status: Some(400),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_dataset_filter_returns_only_the_matching_rows() {
    let sim = setup();
    let server = sim.serve().await.unwrap();
    let c = client(&server.base_url);
    let page = c
        .dataset_page_filtered(&["jobInformationDepartment"], "status eq 'Active'", 1, 100)
        .await
        .unwrap();
    let active = sim
        .employees()
        .into_iter()
        .filter(|e| {
            !e.deleted
                && e.value(&bamboohr_simulator::Field::Status, None).as_deref() == Some("Active")
        })
        .count();
    assert_eq!(page.employees.len(), active);
    assert!(
        active < sim.employees().len(),
        "the company has inactive employees"
    );
    let err = c
        .dataset_page_filtered(&["firstName"], "status eq 'A' or status eq 'B'", 1, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BambooError::InvalidRequest {
                status: Some(422),
                ..
            }
        ),
        "{err}"
    );
}
