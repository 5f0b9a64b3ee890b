//! A Litmos-style learning platform behind an HTTP upsert target, fed by full syncs of
//! the BambooHR simulator (the "Litmos Access" checkbox as BambooHR writes it, "Yes"
//! and "No"): an email change keeps exactly one learner, and unticking the gate
//! deactivates the learner once, or leaves it when the target says so.

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bamboohr_simulator::{SimConfig, SimEmployee, SimServer, Simulator, LITMOS_ACCESS};
use common::{full_sync, harness, Harness};
use domain::{GateExit, Target, TargetFilter, TargetId, TargetKind};
use ports::{DeliveryQuery, DeliveryStore, Store};
use serde_json::{json, Value};
use sync_engine::deliver::dispatch::dispatch;

/// One learner at the platform.
#[derive(Debug, Clone)]
struct Learner {
    id: String,
    body: Value,
}

/// A Litmos-style upsert endpoint: a POST carrying the platform's own `id` updates
/// that learner (username included); otherwise the learner with the body's
/// `username` is updated, or a new one created. Every answer is the learner with its
/// `Id`, as Litmos answers.
#[derive(Clone, Default)]
struct Platform {
    learners: Arc<Mutex<Vec<Learner>>>,
    posts: Arc<Mutex<Vec<Value>>>,
}

impl Platform {
    fn learners(&self) -> Vec<Learner> {
        self.learners.lock().unwrap().clone()
    }
    fn posts(&self) -> usize {
        self.posts.lock().unwrap().len()
    }
    fn of(&self, employee: &str) -> Vec<Learner> {
        self.learners()
            .into_iter()
            .filter(|l| l.body["employeeId"] == employee)
            .collect()
    }
}

async fn upsert(State(p): State<Platform>, Json(body): Json<Value>) -> Json<Value> {
    p.posts.lock().unwrap().push(body.clone());
    let mut learners = p.learners.lock().unwrap();
    let by_id = body["id"]
        .as_str()
        .and_then(|id| learners.iter().position(|l| l.id == id));
    let found = by_id.or_else(|| {
        learners
            .iter()
            .position(|l| l.body["username"] == body["username"])
    });
    let index = match found {
        Some(i) => {
            learners[i].body = body;
            i
        }
        None => {
            let id = format!("L-{}", learners.len() + 100);
            learners.push(Learner { id, body });
            learners.len() - 1
        }
    };
    let l = &learners[index];
    Json(json!({"Id": l.id, "UserName": l.body["username"], "Active": l.body["active"]}))
}

async fn platform() -> (String, Platform) {
    let p = Platform::default();
    let app = Router::new()
        .route("/v1/users/upsert", post(upsert))
        .with_state(p.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/users/upsert", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, p)
}

fn lms_target(id: &str, url: &str, gate_exit: GateExit) -> Target {
    let mut filter = TargetFilter::default();
    filter
        .field_in
        .insert("litmosAccess".into(), vec!["Yes".into()]);
    Target {
        id: TargetId::parse(id).unwrap(),
        kind: TargetKind::HttpUpsert {
            url: url.into(),
            fields: vec![],
            required: vec![],
            gate_exit,
        },
        filter,
        enabled: true,
    }
}

fn employee(id: &str, first: &str, litmos: &str) -> SimEmployee {
    let mut e = SimEmployee {
        employee_id: id.into(),
        first_name: first.into(),
        last_name: "Tester".into(),
        work_email: Some(format!("{}@acme.test", first.to_lowercase())),
        job_title: Some("Nurse".into()),
        hire_date: Some(time::macros::date!(2024 - 01 - 08)),
        ..SimEmployee::default()
    };
    e.custom.insert(LITMOS_ACCESS.into(), litmos.into());
    e
}

/// A company of Ada (gate ticked) and Bob (not), an engine whose directory maps the
/// checkbox to `litmosAccess`, and its targets.
async fn company(targets: Vec<Target>) -> (Simulator, Harness, SimServer) {
    let simulator = Simulator::from_employees(
        SimConfig {
            api_key: "k".into(),
            ..SimConfig::default()
        },
        vec![employee("1", "Ada", "Yes"), employee("2", "Bob", "No")],
    );
    let server = simulator.serve().await.unwrap();
    let h = harness("k", Some(server.base_url.clone()), targets).await;
    let mut d = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    d.custom_field_map
        .insert(LITMOS_ACCESS.into(), "litmosAccess".into());
    d.version += 1;
    h.store
        .put_directory(&d, Some(d.version - 1))
        .await
        .unwrap();
    (simulator, h, server)
}

/// A full sync, then every user event through the dispatcher.
async fn sync_and_deliver(h: &mut Harness) {
    full_sync(&h.engine, &h.dir).await.unwrap();
    for event in h.drain() {
        if event.event_type.is_user_event() {
            let report = dispatch(&h.engine, &event).await.unwrap();
            assert!(!report.needs_retry(), "{report:?}");
        }
    }
}

fn change(simulator: &Simulator, id: &str, field: &str, value: &str) {
    simulator.update(
        id,
        BTreeMap::from([(field.to_string(), Some(value.to_string()))]),
    );
}

#[tokio::test]
async fn an_email_change_keeps_exactly_one_learner_and_an_unticked_gate_deactivates_it_once() {
    let (url, lms) = platform().await;
    let (simulator, mut h, _server) =
        company(vec![lms_target("lms", &url, GateExit::Deactivate)]).await;

    sync_and_deliver(&mut h).await;
    let ada = lms.of("1");
    assert_eq!(ada.len(), 1, "{:?}", lms.learners());
    assert_eq!(ada[0].body["username"], "ada@acme.test");
    assert_eq!(ada[0].body["active"], true);
    assert!(lms.of("2").is_empty(), "Bob's box is not ticked");
    let learner_id = ada[0].id.clone();

    change(&simulator, "1", "workEmail", "ada.lovelace@acme.test");
    sync_and_deliver(&mut h).await;
    let ada = lms.of("1");
    assert_eq!(
        ada.len(),
        1,
        "one learner per employee: {:?}",
        lms.learners()
    );
    assert_eq!(ada[0].id, learner_id);
    assert_eq!(ada[0].body["username"], "ada.lovelace@acme.test");
    assert_eq!(lms.learners().len(), 1);

    change(&simulator, "1", LITMOS_ACCESS, "No");
    sync_and_deliver(&mut h).await;
    let ada = lms.of("1");
    assert_eq!(ada.len(), 1);
    assert_eq!(ada[0].id, learner_id);
    assert_eq!(ada[0].body["active"], false, "unticked: deactivated");
    assert_eq!(
        ada[0].body["terminated"], false,
        "leaving the gate is not a termination"
    );
    let record = h
        .store
        .list_deliveries(&h.dir, &DeliveryQuery::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.gate_exit)
        .expect("the deactivation is logged as a gate exit");
    assert_eq!(record.status, ports::DeliveryStatus::Delivered);

    // Once: a later change while outside the gate sends nothing.
    let posts = lms.posts();
    change(&simulator, "1", "jobTitle", "Head Nurse");
    sync_and_deliver(&mut h).await;
    assert_eq!(lms.posts(), posts, "nothing more after the deactivation");
    assert_eq!(lms.of("1")[0].body["jobTitle"], "Nurse");

    // Ticked again: the same learner comes back active.
    change(&simulator, "1", LITMOS_ACCESS, "Yes");
    sync_and_deliver(&mut h).await;
    let ada = lms.of("1");
    assert_eq!(ada.len(), 1);
    assert_eq!(ada[0].id, learner_id);
    assert_eq!(ada[0].body["active"], true);
    assert_eq!(ada[0].body["jobTitle"], "Head Nurse");
}

#[tokio::test]
async fn a_target_that_leaves_learners_as_is_sends_nothing_when_the_gate_is_unticked() {
    let (url, lms) = platform().await;
    let (simulator, mut h, _server) = company(vec![lms_target("lms", &url, GateExit::Leave)]).await;
    sync_and_deliver(&mut h).await;
    assert_eq!(lms.of("1").len(), 1);
    let posts = lms.posts();

    change(&simulator, "1", LITMOS_ACCESS, "No");
    sync_and_deliver(&mut h).await;
    assert_eq!(lms.posts(), posts);
    assert_eq!(lms.of("1")[0].body["active"], true, "left as it was");
}

#[tokio::test]
async fn a_terminated_employee_is_sent_inactive_and_terminated() {
    let (url, lms) = platform().await;
    let (simulator, mut h, _server) =
        company(vec![lms_target("lms", &url, GateExit::Deactivate)]).await;
    sync_and_deliver(&mut h).await;

    simulator.terminate("1", time::macros::date!(2025 - 01 - 10));
    sync_and_deliver(&mut h).await;
    let ada = lms.of("1");
    assert_eq!(ada.len(), 1);
    assert_eq!(ada[0].body["active"], false);
    assert_eq!(ada[0].body["terminated"], true);
}
