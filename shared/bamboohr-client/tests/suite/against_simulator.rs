//! The client against the BambooHR simulator over real HTTP on loopback: paging,
//! batching, credentials, retries of transient failures, and errors that must not be
//! retried. Waits here are real but short (millisecond backoffs); the Retry-After timing
//! proofs use a paused clock in `retry_after.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bamboohr_client::{Auth, BambooClient, BambooError, ChangeAction, ClientOptions, SecretString};
use bamboohr_simulator::{Fault, FaultPlan, SimConfig, SimEmployee, SimServer, Simulator};

const KEY: &str = "test-api-key";

fn sim(employees: usize) -> Simulator {
    Simulator::generate(SimConfig {
        api_key: KEY.into(),
        seed: 11,
        employees,
        ..SimConfig::default()
    })
}

/// Options with millisecond backoffs so retry tests stay fast.
fn fast() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 5,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        budget: Duration::from_secs(20),
        max_concurrency: 4,
        ..ClientOptions::default()
    }
}

fn client(server: &SimServer, opts: ClientOptions) -> BambooClient {
    BambooClient::new(
        &server.base_url,
        Auth::ApiKey(SecretString::from(KEY)),
        opts,
    )
    .unwrap()
}

fn ids_of(sim: &Simulator) -> Vec<String> {
    sim.employees()
        .into_iter()
        .filter(|e| !e.deleted)
        .map(|e| e.employee_id)
        .collect()
}

#[tokio::test]
async fn a_full_read_pages_the_dataset_until_the_last_page() {
    let sim = sim(250);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    let fields = [
        "firstName",
        "lastName",
        "email",
        "jobInformationDepartment",
        "status",
    ];
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let p = c.dataset_page(&fields, page, 100).await.unwrap();
        assert_eq!((p.page, p.total_pages, p.total_items), (page, 3, 250));
        for e in &p.employees {
            assert!(!e.fields.contains_key("employeeId"));
            assert_eq!(e.fields.len(), fields.len());
        }
        seen.extend(p.employees.into_iter().map(|e| e.id));
        if page == p.total_pages {
            break;
        }
        page += 1;
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(seen, ids_of(&sim));
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn employees_by_ids_asks_in_batches_of_a_hundred() {
    let sim = sim(250);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    let mut wanted: Vec<String> = ids_of(&sim).into_iter().take(150).collect();
    // An id BambooHR does not know is simply absent.
    wanted.push("999999".into());
    let got = c
        .employees_by_ids(&wanted, &["workEmail", "departmentName"])
        .await
        .unwrap();
    let got_ids: BTreeSet<String> = got.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got_ids.len(), 150);
    assert!(!got_ids.contains("999999"));
    assert!(got.iter().all(|e| e.fields.contains_key("workEmail")));
    assert!(got.iter().all(|e| e.fields.contains_key("jobTitleName")));
    assert_eq!(sim.request_count(), 2, "151 ids are two batches");
}

#[tokio::test]
async fn the_employee_list_is_read_page_by_page_with_cursors() {
    let sim = sim(130);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let p = c
            .list_employees_page(&["workEmail"], after.as_deref(), 50)
            .await
            .unwrap();
        pages += 1;
        seen.extend(p.employees.into_iter().map(|e| e.id));
        match p.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids_of(&sim));
}

#[tokio::test]
async fn a_cursor_whose_boundary_employee_was_deleted_is_a_bad_page() {
    let sim = sim(20);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    let first = c.list_employees_page(&[], None, 5).await.unwrap();
    sim.delete(&first.employees.last().unwrap().id);
    let err = c
        .list_employees_page(&[], first.next_cursor.as_deref(), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BambooError::InvalidRequest { status: Some(400), reason } if reason == "BadPage"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_and_not_retried() {
    let sim = sim(5);
    let server = sim.serve().await.unwrap();
    let c = BambooClient::new(
        &server.base_url,
        Auth::ApiKey(SecretString::from("wrong-key")),
        fast(),
    )
    .unwrap();
    let err = c.dataset_page(&["firstName"], 1, 10).await.unwrap_err();
    assert!(matches!(err, BambooError::Unauthorized), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_bearer_token_is_accepted_only_while_the_company_knows_it() {
    let sim = sim(5);
    let server = sim.serve().await.unwrap();
    sim.add_bearer_token("oauth-token");
    let c = BambooClient::new(
        &server.base_url,
        Auth::Bearer(SecretString::from("oauth-token")),
        fast(),
    )
    .unwrap();
    assert_eq!(
        c.dataset_page(&["firstName"], 1, 10)
            .await
            .unwrap()
            .total_items,
        5
    );
    sim.revoke_bearer_token("oauth-token");
    assert!(matches!(
        c.dataset_page(&["firstName"], 1, 10).await,
        Err(BambooError::Unauthorized)
    ));
}

#[tokio::test]
async fn a_503_then_success_is_retried_until_it_succeeds() {
    let sim = sim(10);
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::unavailable()).times(2));
    let c = client(&server, fast());
    let page = c.dataset_page(&["firstName"], 1, 100).await.unwrap();
    assert_eq!(page.employees.len(), 10);
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn retries_stop_at_max_attempts_with_the_last_error() {
    let sim = sim(3);
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::unavailable()).times(u64::MAX));
    let c = client(
        &server,
        ClientOptions {
            max_attempts: 3,
            ..fast()
        },
    );
    let err = c.dataset_page(&["firstName"], 1, 10).await.unwrap_err();
    assert!(matches!(err, BambooError::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn backoff_that_would_outlast_the_budget_ends_in_budget_exceeded() {
    let sim = sim(3);
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::unavailable()).times(u64::MAX));
    let c = client(
        &server,
        ClientOptions {
            max_attempts: 1000,
            base_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_millis(80),
            budget: Duration::from_millis(300),
            ..fast()
        },
    );
    let started = Instant::now();
    let err = c.dataset_page(&["firstName"], 1, 10).await.unwrap_err();
    assert!(matches!(err, BambooError::BudgetExceeded { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_fails_at_once_and_says_when_to_come_back() {
    let sim = sim(3);
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::rate_limited(600)));
    let c = client(&server, fast());
    let started = Instant::now();
    let err = c.dataset_page(&["firstName"], 1, 10).await.unwrap_err();
    assert!(
        matches!(err, BambooError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(600)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "it slept");
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_truncated_body_is_a_bad_response_and_not_retried() {
    let sim = sim(10);
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::TruncateBody));
    let c = client(&server, fast());
    let err = c.dataset_page(&["firstName"], 1, 100).await.unwrap_err();
    assert!(matches!(err, BambooError::BadResponse { .. }), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let sim = sim(10);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    // A first call warms the pool, so the drop hits a reused keep-alive connection.
    c.dataset_page(&["firstName"], 1, 5).await.unwrap();
    sim.inject(FaultPlan::next(Fault::DropConnection));
    let page = c.dataset_page(&["firstName"], 1, 100).await.unwrap();
    assert_eq!(page.employees.len(), 10);
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let sim = sim(10);
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::delay(Duration::from_secs(2))));
    let c = client(
        &server,
        ClientOptions {
            timeout: Duration::from_millis(150),
            ..fast()
        },
    );
    let page = c.dataset_page(&["firstName"], 1, 100).await.unwrap();
    assert_eq!(page.employees.len(), 10);
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn concurrency_is_bounded_per_client() {
    let sim = sim(5);
    let server = sim.serve().await.unwrap();
    let delay = Duration::from_millis(150);
    sim.inject(FaultPlan::next(Fault::delay(delay)).times(6));
    let c = client(
        &server,
        ClientOptions {
            max_concurrency: 2,
            ..fast()
        },
    );
    let started = Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.dataset_page(&["firstName"], 1, 5).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // Six slow requests, two at a time: at least three rounds.
    assert!(started.elapsed() >= delay * 3, "{:?}", started.elapsed());
}

#[tokio::test]
async fn forbidden_not_found_and_invalid_requests_fail_without_retry() {
    let sim = sim(5);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());

    let err = c.get_employee("999999", &["firstName"]).await.unwrap_err();
    assert!(matches!(err, BambooError::NotFound { .. }), "{err}");

    let err = c.dataset_page(&["noSuchField"], 1, 10).await.unwrap_err();
    assert!(
        matches!(&err, BambooError::InvalidRequest { status: Some(400), reason } if reason == "INVALID_FIELDS"),
        "{err}"
    );

    sim.inject(FaultPlan::next(Fault::Status {
        status: 403,
        retry_after: None,
    }));
    let err = c.dataset_page(&["firstName"], 1, 10).await.unwrap_err();
    assert!(matches!(err, BambooError::Forbidden { .. }), "{err}");

    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn restricted_fields_are_surfaced_on_every_endpoint() {
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 8,
        restricted_fields: vec!["homeEmail".into()],
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());

    let page = c
        .dataset_page(&["firstName", "homeEmail"], 1, 10)
        .await
        .unwrap();
    for e in &page.employees {
        assert_eq!(e.restricted, vec!["homeEmail".to_string()]);
        assert_eq!(e.fields["homeEmail"], serde_json::Value::Null);
    }

    let list = c
        .list_employees_page(&["homeEmail", "workEmail"], None, 10)
        .await
        .unwrap();
    for e in &list.employees {
        assert_eq!(e.restricted, vec!["homeEmail".to_string()]);
    }

    let id = &page.employees[0].id;
    let one = c
        .get_employee(id, &["firstName", "homeEmail"])
        .await
        .unwrap();
    assert_eq!(&one.id, id);
    assert!(!one.fields.contains_key("homeEmail"));
    assert_eq!(one.restricted, vec!["homeEmail".to_string()]);
}

#[tokio::test]
async fn get_employee_reads_the_employee_endpoint_vocabulary() {
    let sim = sim(5);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    let e = &sim.employees()[1];
    let got = c
        .get_employee(
            &e.employee_id,
            &[
                "firstName",
                "jobTitle",
                "supervisorEId",
                "customLitmosAccess",
            ],
        )
        .await
        .unwrap();
    assert_eq!(got.fields["firstName"], serde_json::json!(e.first_name));
    assert_eq!(got.fields["jobTitle"], serde_json::json!(e.job_title));
    assert_eq!(
        got.fields["supervisorEId"],
        serde_json::json!(e.supervisor_eid)
    );
    assert!(got.fields.contains_key("customLitmosAccess"));
    assert!(got.restricted.is_empty());
}

#[tokio::test]
async fn changed_since_reports_hires_updates_and_deletions() {
    let sim = sim(10);
    let server = sim.serve().await.unwrap();
    let c = client(&server, fast());
    let since = time::OffsetDateTime::now_utc();
    assert!(c.changed_since(since).await.unwrap().is_empty());

    let ids = ids_of(&sim);
    let hired = sim.hire(SimEmployee {
        first_name: "New".into(),
        last_name: "Hire".into(),
        ..SimEmployee::default()
    });
    sim.update(
        &ids[2],
        BTreeMap::from([(
            "jobTitle".to_string(),
            Some("Principal Engineer".to_string()),
        )]),
    );
    sim.delete(&ids[3]);

    let changed = c.changed_since(since).await.unwrap();
    let by_id: BTreeMap<&str, ChangeAction> =
        changed.iter().map(|c| (c.id.as_str(), c.action)).collect();
    assert_eq!(by_id.len(), 3);
    assert_eq!(by_id[hired.as_str()], ChangeAction::Inserted);
    assert_eq!(by_id[ids[2].as_str()], ChangeAction::Updated);
    assert_eq!(by_id[ids[3].as_str()], ChangeAction::Deleted);
    assert!(changed.iter().all(|c| c.last_changed.is_some()));
}
