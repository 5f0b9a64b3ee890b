//! Webhooks are retried as BambooHR retries them: on 5xx, on the 5-10-20-40-80 minute
//! schedule (scaled down here), never on 4xx; each attempt signed afresh.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bamboohr_simulator::{sign, RetrySchedule, SimConfig, Simulator, WebhookPayload};

/// One received request: arrival, body, timestamp header, signature header.
type Seen = (Instant, Vec<u8>, String, String);

/// Answers each request with the next status of `script` (the last one repeats) and
/// keeps (arrival, body, timestamp, signature).
#[derive(Clone)]
struct Receiver {
    script: Arc<Vec<u16>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut seen = r.seen.lock().unwrap();
    seen.push((
        Instant::now(),
        body.to_vec(),
        h("x-bamboohr-timestamp"),
        h("x-bamboohr-signature"),
    ));
    let status = r.script[(seen.len() - 1).min(r.script.len() - 1)];
    StatusCode::from_u16(status).unwrap()
}

async fn receiver(script: Vec<u16>) -> (String, Receiver) {
    let r = Receiver {
        script: Arc::new(script),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

/// 1e-4: 5 minutes become 30 ms, 80 minutes 480 ms.
const SCALE: f64 = 1e-4;

#[tokio::test]
async fn a_5xx_is_retried_on_bamboohrs_schedule_until_the_receiver_accepts() {
    let sim = Simulator::generate(SimConfig::default());
    let (url, r) = receiver(vec![500, 503, 200]).await;
    sim.set_webhook_target_with(
        &url,
        b"key",
        WebhookPayload::EventBased,
        RetrySchedule::scaled(SCALE),
    );
    let id = sim.employees()[0].employee_id.clone();
    let report = sim.send_webhook_for(&id).await.unwrap();
    assert_eq!(report.statuses, vec![Some(500), Some(503), Some(200)]);
    assert!(report.delivered);

    let seen = r.seen.lock().unwrap();
    let delays = RetrySchedule::scaled(SCALE).delays();
    for (i, pair) in seen.windows(2).enumerate() {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= delays[i],
            "retry {i} came after {gap:?}, before {:?}",
            delays[i]
        );
    }
    for (_, body, ts, sig) in seen.iter() {
        assert_eq!(&sign(b"key", body, ts), sig);
        assert_eq!(body, &seen[0].1, "every attempt carries the same body");
    }
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_five_failed_retries_end_the_delivery() {
    let sim = Simulator::generate(SimConfig::default());
    let id = sim.employees()[0].employee_id.clone();

    let (url, _) = receiver(vec![400]).await;
    sim.set_webhook_target_with(
        &url,
        b"k",
        WebhookPayload::FieldBased,
        RetrySchedule::scaled(SCALE),
    );
    let report = sim.send_webhook_for(&id).await.unwrap();
    assert_eq!(report.statuses, vec![Some(400)]);
    assert!(!report.delivered);

    let (url, _) = receiver(vec![502]).await;
    sim.set_webhook_target_with(
        &url,
        b"k",
        WebhookPayload::FieldBased,
        RetrySchedule::scaled(1e-6),
    );
    let report = sim.send_webhook_for(&id).await.unwrap();
    assert_eq!(report.statuses.len(), 6, "the first try and five retries");
    assert!(!report.delivered);
    assert_eq!(sim.webhook_reports().len(), 2);
}

#[tokio::test]
async fn a_webhook_registered_through_the_api_is_fired_and_signed_with_its_private_key() {
    let sim = Simulator::generate(SimConfig {
        api_key: "k".into(),
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let (events_url, events) = receiver(vec![200]).await;
    let (fields_url, fields) = receiver(vec![200]).await;
    let http = reqwest::Client::new();
    let mut keys = Vec::new();
    for body in [
        serde_json::json!({"name": "events", "url": events_url, "format": "json",
            "events": ["employee.created", "employee.updated", "employee.deleted"],
            "monitorFields": ["workEmail"]}),
        serde_json::json!({"name": "fields", "url": fields_url, "format": "json",
            "monitorFields": ["jobTitle"], "postFields": {"workEmail": "Email", "jobTitle": "Title"}}),
    ] {
        let created: serde_json::Value = http
            .post(format!("{}/api/v1/webhooks", server.base_url))
            .basic_auth("k", Some("x"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.push(created["privateKey"].as_str().unwrap().to_string());
    }
    let id = sim.employees()[0].employee_id.clone();
    let changes = [("jobTitle".to_string(), Some("Chief Tester".to_string()))];
    sim.update(&id, changes.into_iter().collect());

    let fired = sim
        .fire_registered_webhooks(&id, RetrySchedule::scaled(1e-6))
        .await;
    assert_eq!(fired.len(), 2);
    assert!(fired.iter().all(|(_, r)| r.delivered));

    let (body, ts, sig) = {
        let seen = events.seen.lock().unwrap();
        (seen[0].1.clone(), seen[0].2.clone(), seen[0].3.clone())
    };
    assert_eq!(sign(keys[0].as_bytes(), &body, &ts), sig);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "employee.updated");

    let seen = fields.seen.lock().unwrap();
    assert_eq!(sign(keys[1].as_bytes(), &seen[0].1, &seen[0].2), seen[0].3);
    let v: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(v["employees"][0]["fields"]["Title"], "Chief Tester");
}
