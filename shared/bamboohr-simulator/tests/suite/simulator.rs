//! The simulator over real HTTP: BambooHR's shapes, credentials, mutations seen by every
//! endpoint and by the changed feed, the control API, webhooks, and the binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bamboohr_simulator::{
    sign, Fault, FaultPlan, SimConfig, SimEmployee, Simulator, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use time::macros::date;
use time::{Duration as TimeDuration, OffsetDateTime};

const KEY: &str = "sim-test-key";

fn sim(employees: usize) -> Simulator {
    Simulator::generate(SimConfig {
        api_key: KEY.into(),
        seed: 5,
        employees,
        ..SimConfig::default()
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn dataset(base: &str, fields: &[&str], page: u64, size: u64) -> reqwest::Response {
    http()
        .post(format!("{base}/api/v2/datasets/employee/data"))
        .basic_auth(KEY, Some("x"))
        .json(&json!({"fields": fields, "page": page, "pageSize": size}))
        .send()
        .await
        .unwrap()
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = http()
        .get(url)
        .basic_auth(KEY, Some("x"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn the_same_seed_generates_the_same_company() {
    let cfg = SimConfig {
        seed: 99,
        employees: 80,
        ..SimConfig::default()
    };
    let day = date!(2026 - 10 - 01);
    let a = Simulator::generate_at(cfg.clone(), day).employees();
    let b = Simulator::generate_at(cfg.clone(), day).employees();
    assert_eq!(a, b);
    let other = Simulator::generate_at(SimConfig { seed: 100, ..cfg }, day).employees();
    assert_ne!(a, other);
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body_then_the_timestamp() {
    // The classic HMAC-SHA256 test vector, split between body and timestamp.
    assert_eq!(
        sign(b"key", b"The quick brown fox jumps over the lazy ", "dog"),
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    let body = br#"{"employees":[]}"#;
    assert_eq!(
        sign(b"secret", body, "1760000000"),
        hmac_hex(b"secret", &[body, b"1760000000"])
    );
}

#[test]
fn a_field_based_webhook_is_shaped_and_signed_as_bamboohr_sends_it() {
    let sim = sim(12);
    let e = sim.employees()[2].clone();
    sim.update(
        &e.employee_id,
        BTreeMap::from([("workEmail".to_string(), Some("new@example.com".to_string()))]),
    );
    let w = sim.field_based_webhook(
        std::slice::from_ref(&e.employee_id),
        &["First Name", "Work Email", "Litmos Access", "No Such Field"],
        b"whkey",
    );
    let ts = w.header(TIMESTAMP_HEADER).unwrap();
    assert!(ts.parse::<i64>().is_ok());
    assert_eq!(
        w.header(SIGNATURE_HEADER).unwrap(),
        hmac_hex(b"whkey", &[&w.body, ts.as_bytes()])
    );
    assert_eq!(w.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&w.body).unwrap();
    let entry = &body["employees"][0];
    assert_eq!(entry["id"], json!(e.employee_id));
    assert_eq!(entry["action"], "Updated");
    assert_eq!(entry["changedFields"], json!(["Work Email"]));
    assert_eq!(entry["fields"]["Work Email"], "new@example.com");
    assert_eq!(entry["fields"]["First Name"], json!(e.first_name));
    assert!(entry["fields"]["Litmos Access"].is_string());
    assert!(entry["fields"].get("No Such Field").is_none());
    assert!(entry["timestamp"].is_string());
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused() {
    let sim = sim(3);
    let server = sim.serve().await.unwrap();
    let url = format!("{}/api/v1/employees", server.base_url);
    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = http()
        .get(&url)
        .basic_auth("nope", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bearer = http()
        .get(&url)
        .bearer_auth("unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    let ok = http()
        .get(&url)
        .basic_auth(KEY, Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(sim.request_count(), 4);
}

#[tokio::test]
async fn the_dataset_answers_in_the_v2_shape_and_refuses_unknown_fields() {
    let sim = sim(25);
    let server = sim.serve().await.unwrap();
    let r = dataset(
        &server.base_url,
        &["employeeId", "email", "customLitmosAccess"],
        2,
        10,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["meta"],
        json!({"page": 2, "pageSize": 10, "totalPages": 3, "totalItems": 25})
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 10);
    assert!(body["data"][0]["fields"]["employeeId"].is_string());
    assert!(body["links"]["next"].as_str().unwrap().contains("page=3"));
    assert!(body["links"]["prev"].as_str().unwrap().contains("page=1"));

    let r = dataset(&server.base_url, &["employeeId", "jobTitle"], 1, 10).await;
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert!(problem["fields"].get("jobTitle").is_some());

    let r = dataset(&server.base_url, &["employeeId"], 1, 1001).await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn the_list_filters_by_ids_and_status_and_returns_the_default_fields() {
    let sim = sim(40);
    let server = sim.serve().await.unwrap();
    let all = sim.employees();
    let ids = [&all[1].employee_id, &all[4].employee_id];
    let url = format!(
        "{}/api/v1/employees?filter%5Bids%5D={}%2C{}&fields=workEmail,notAField",
        server.base_url, ids[0], ids[1]
    );
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for key in [
        "employeeId",
        "firstName",
        "lastName",
        "preferredName",
        "photoUrl",
        "jobTitleName",
        "status",
        "_restrictedFields",
        "workEmail",
    ] {
        assert!(data[0].get(key).is_some(), "missing {key}");
    }
    assert!(data[0].get("notAField").is_none());
    assert_eq!(body["meta"]["total"], 2);
    assert_eq!(body["meta"]["page"]["nextCursor"], Value::Null);

    let (_, inactive) = get_json(&format!(
        "{}/api/v1/employees?filter%5Bstatus%5D=inactive&page%5Blimit%5D=100",
        server.base_url
    ))
    .await;
    let expected = all
        .iter()
        .filter(|e| e.status.as_str() == "Inactive")
        .count();
    assert!(expected > 0);
    assert_eq!(inactive["data"].as_array().unwrap().len(), expected);

    let (status, _) = get_json(&format!(
        "{}/api/v1/employees?page%5Blimit%5D=101",
        server.base_url
    ))
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn mutations_are_visible_in_listings_and_in_the_changed_feed() {
    let sim = sim(10);
    let server = sim.serve().await.unwrap();
    let base = &server.base_url;
    let since = OffsetDateTime::now_utc() - TimeDuration::seconds(1);
    let ids: Vec<String> = sim.employees().into_iter().map(|e| e.employee_id).collect();

    let hired = sim.hire(SimEmployee {
        first_name: "Ngozi".into(),
        last_name: "Adeyemi".into(),
        work_email: Some("ngozi@example.com".into()),
        ..SimEmployee::default()
    });
    sim.update(
        &ids[0],
        BTreeMap::from([
            ("department".to_string(), Some("Research".to_string())),
            ("customLitmosAccess".to_string(), Some("Yes".to_string())),
        ]),
    );
    sim.terminate(&ids[1], date!(2020 - 01 - 31));
    sim.delete(&ids[2]);

    let body: Value = dataset(
        base,
        &[
            "employeeId",
            "jobInformationDepartment",
            "status",
            "terminationDate",
        ],
        1,
        100,
    )
    .await
    .json()
    .await
    .unwrap();
    let rows: BTreeMap<String, Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["fields"]["employeeId"].as_str().unwrap().to_string(),
                r["fields"].clone(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 10, "one hired, one deleted");
    assert!(rows.contains_key(&hired));
    assert!(!rows.contains_key(&ids[2]));
    assert_eq!(rows[&ids[0]]["jobInformationDepartment"], "Research");
    assert_eq!(rows[&ids[1]]["status"], "Inactive");
    assert_eq!(rows[&ids[1]]["terminationDate"], "2020-01-31");

    let (status, _) = get_json(&format!("{base}/api/v1/employees/{}", ids[2])).await;
    assert_eq!(status, 404);
    let (_, list) = get_json(&format!("{base}/api/v1/employees?page%5Blimit%5D=100")).await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["employeeId"] != json!(ids[2])));

    let since_text = since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, changed) = get_json(&format!(
        "{base}/api/v1/employees/changed?since={}",
        since_text.replace('+', "%2B")
    ))
    .await;
    assert_eq!(status, 200);
    let employees = changed["employees"].as_object().unwrap();
    assert_eq!(employees.len(), 4);
    assert_eq!(employees[&hired]["action"], "Inserted");
    assert_eq!(employees[&ids[0]]["action"], "Updated");
    assert_eq!(employees[&ids[1]]["action"], "Updated");
    assert_eq!(employees[&ids[2]]["action"], "Deleted");
    assert!(changed["latest"].is_string());

    sim.rehire(&ids[1], date!(2021 - 03 - 01));
    let (_, one) = get_json(&format!(
        "{base}/api/v1/employees/{}?fields=status,hireDate,terminationDate",
        ids[1]
    ))
    .await;
    assert_eq!(one["status"], "Active");
    assert_eq!(one["hireDate"], "2021-03-01");
    assert_eq!(one["terminationDate"], Value::Null);
}

#[tokio::test]
async fn get_employee_and_changed_answer_xml_unless_json_is_asked_for() {
    let sim = sim(3);
    let server = sim.serve().await.unwrap();
    let id = &sim.employees()[0].employee_id;
    let r = http()
        .get(format!("{}/api/v1/employees/{id}", server.base_url))
        .basic_auth(KEY, Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("xml"));
    assert!(r.text().await.unwrap().starts_with("<?xml"));
}

#[tokio::test]
async fn the_control_api_mutates_and_schedules_faults_without_being_counted() {
    let sim = sim(5);
    let server = sim.serve().await.unwrap();
    let base = &server.base_url;
    let c = http();
    let id = sim.employees()[0].employee_id.clone();

    let r = c
        .patch(format!("{base}/_sim/employees/{id}"))
        .json(&json!({"jobTitle": "Chief Sandwich Officer", "middleName": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        sim.employee(&id).unwrap().job_title.as_deref(),
        Some("Chief Sandwich Officer")
    );

    let r = c
        .patch(format!("{base}/_sim/employees/424242"))
        .json(&json!({"jobTitle": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let r = c
        .post(format!("{base}/_sim/employees"))
        .json(&json!({"firstName": "Ines", "lastName": "Duarte", "hireDate": "2024-05-06"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let new_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sim.employee(&new_id).unwrap().first_name, "Ines");

    let r = c
        .post(format!("{base}/_sim/faults"))
        .json(&FaultPlan::next(Fault::rate_limited(7)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let throttled = dataset(base, &["employeeId"], 1, 10).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "7");
    assert_eq!(dataset(base, &["employeeId"], 1, 10).await.status(), 200);

    let count: Value = c
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 2);
}

#[tokio::test]
async fn control_mutations_push_signed_field_based_webhooks_when_a_receiver_is_set() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver_task = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let sim = sim(4);
    sim.set_webhook_target(&hook_url, b"pushkey");
    let server = sim.serve().await.unwrap();
    let id = sim.employees()[1].employee_id.clone();
    let r = http()
        .post(format!("{}/_sim/employees/{id}/terminate", server.base_url))
        .json(&json!({"date": "2021-02-03"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let ts = headers[TIMESTAMP_HEADER].to_str().unwrap();
    assert_eq!(
        headers[SIGNATURE_HEADER].to_str().unwrap(),
        hmac_hex(b"pushkey", &[&body, ts.as_bytes()])
    );
    let payload: Value = serde_json::from_slice(&body).unwrap();
    let entry = &payload["employees"][0];
    assert_eq!(entry["id"], json!(id));
    assert_eq!(entry["fields"]["Termination Date"], "2021-02-03");
    assert_eq!(entry["fields"]["Status"], "Inactive");
    assert!(entry["changedFields"]
        .as_array()
        .unwrap()
        .contains(&json!("Termination Date")));
    receiver_task.abort();
}

#[test]
fn the_binary_serves_a_generated_company_and_prints_its_base_url() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bamboohr-simulator"))
        .args([
            "--port",
            "0",
            "--employees",
            "6",
            "--seed",
            "3",
            "--api-key",
            "bin-key",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_string();
    let result = std::panic::catch_unwind(|| {
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = http()
                .post(format!("{base}/api/v2/datasets/employee/data"))
                .basic_auth("bin-key", Some("x"))
                .json(&json!({"fields": ["employeeId"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["meta"]["totalItems"], 6);
        });
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
