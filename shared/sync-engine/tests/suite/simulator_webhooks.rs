//! The webhook function's own verifier accepts webhooks exactly as the BambooHR simulator
//! signs them (both payload families, retries included), and refuses them under another
//! directory's key.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bamboohr_simulator::{
    RetrySchedule, SimConfig, Simulator, WebhookPayload, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use secrecy::SecretString;
use sync_engine::signing::verify_bamboohr;

/// One received request: body, timestamp header, signature header.
type Seen = (Vec<u8>, String, String);

#[derive(Clone, Default)]
struct Receiver {
    /// Requests answered 503 before the receiver accepts.
    failures: usize,
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
    seen.push((body.to_vec(), h(TIMESTAMP_HEADER), h(SIGNATURE_HEADER)));
    if seen.len() <= r.failures {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn receiver(failures: usize) -> (String, Receiver) {
    let r = Receiver {
        failures,
        ..Receiver::default()
    };
    let app = Router::new()
        .route("/webhook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

async fn sent_and_verified(payload: WebhookPayload, failures: usize) -> Vec<Seen> {
    let sim = Simulator::generate(SimConfig::default());
    let (url, r) = receiver(failures).await;
    let key = "directory-webhook-private-key";
    sim.set_webhook_target_with(&url, key.as_bytes(), payload, RetrySchedule::scaled(1e-6));
    let id = sim.employees()[2].employee_id.clone();
    let report = sim.send_webhook_for(&id).await.unwrap();
    assert!(report.delivered);
    assert_eq!(report.statuses.len(), failures + 1);

    let seen = r.seen.lock().unwrap().clone();
    let keys = [SecretString::from(key)];
    for (body, ts, sig) in &seen {
        assert!(
            verify_bamboohr(&keys, body, ts, sig),
            "the verifier accepts it"
        );
        let other = [SecretString::from("another-directory-key")];
        assert!(
            !verify_bamboohr(&other, body, ts, sig),
            "another key is refused"
        );
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(!verify_bamboohr(&keys, &tampered, ts, sig));
    }
    seen
}

#[tokio::test]
async fn the_webhook_verifier_accepts_simulator_signed_field_based_webhooks() {
    let seen = sent_and_verified(WebhookPayload::FieldBased, 0).await;
    let body: serde_json::Value = serde_json::from_slice(&seen[0].0).unwrap();
    assert!(body["employees"][0]["fields"].is_object());
}

#[tokio::test]
async fn the_webhook_verifier_accepts_simulator_signed_event_based_webhooks_and_their_retries() {
    let seen = sent_and_verified(WebhookPayload::EventBased, 2).await;
    assert_eq!(seen.len(), 3);
    let body: serde_json::Value = serde_json::from_slice(&seen[0].0).unwrap();
    assert!(body["type"].as_str().unwrap().starts_with("employee."));
    assert!(body["data"]["employeeId"].is_string());
}
