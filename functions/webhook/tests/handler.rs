//! The webhook handler, driven in-process with API Gateway HTTP API (v2) events, on the
//! embedded adapters.

use std::sync::Arc;

use base64::Engine as _;
use domain::{ChangeEvent, Directory, DirectoryId, EmployeeId, EventType};
use embedded_adapters::{FileSecrets, FileStore, InProcessBus};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use ports::{DirectorySecrets, FixedClock, SecretStore, Store};
use secrecy::SecretString;
use sync_engine::Engine;
use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;

const KEY: &str = "bamboohr-webhook-private-key";
const NOW: i64 = 1_795_334_400;

struct Fixture {
    deps: webhook::Deps,
    store: Arc<FileStore>,
    events: UnboundedReceiver<ChangeEvent>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::in_memory());
    let secrets = Arc::new(FileSecrets::open(dir.path().join("secrets.json")));
    for (id, key) in [("acme", KEY), ("globex", "another-company-key")] {
        let mut d = Directory::new(DirectoryId::parse(id).unwrap(), id, id).unwrap();
        d.version = 1;
        store.put_directory(&d, None).await.unwrap();
        secrets
            .put(
                id,
                &DirectorySecrets {
                    webhook_keys: vec![SecretString::from(key)],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let (bus, events) = InProcessBus::new();
    let clock = FixedClock::new(OffsetDateTime::from_unix_timestamp(NOW).unwrap());
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), Arc::new(clock));
    Fixture {
        deps: webhook::Deps::new(engine),
        store,
        events,
        _dir: dir,
    }
}

/// An API Gateway v2 event for the route, carrying `body` and the BambooHR headers.
fn request(directory: &str, body: &str, signature: &str, timestamp: &str) -> lambda_http::Request {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/http-api-proxy.json")).unwrap();
    event["rawPath"] = format!("/webhooks/bamboohr/{directory}").into();
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event["pathParameters"]["directory_id"] = directory.into();
    event["headers"]["x-bamboohr-signature"] = signature.into();
    event["headers"]["x-bamboohr-timestamp"] = timestamp.into();
    event["body"] = base64::engine::general_purpose::STANDARD
        .encode(body)
        .into();
    event["isBase64Encoded"] = true.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn payload(first_name: &str) -> String {
    serde_json::json!({
        "employees": [{
            "id": "42",
            "action": "Updated",
            "timestamp": "2026-11-23T07:59:00Z",
            "changedFields": ["First Name"],
            "fields": {
                "First Name": first_name,
                "Last Name": "Lovelace",
                "Work Email": "ada@example.com",
                "Status": "Active",
                "Hire Date": "2020-01-06"
            }
        }]
    })
    .to_string()
}

fn signed(directory: &str, body: &str, key: &str) -> lambda_http::Request {
    let ts = NOW.to_string();
    let sig = bamboohr_simulator::sign(key.as_bytes(), body.as_bytes(), &ts);
    request(directory, body, &sig, &ts)
}

fn json_body(resp: &lambda_http::Response<Body>) -> serde_json::Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Binary(b) => serde_json::from_slice(b).unwrap(),
        _ => serde_json::Value::Null,
    }
}

#[tokio::test]
async fn a_signed_field_based_payload_updates_one_user_and_emits_one_user_updated() {
    let mut f = fixture().await;
    let created = webhook::handler(&f.deps, signed("acme", &payload("Ada"), KEY))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK, "{}", json_body(&created));
    assert_eq!(
        f.events.try_recv().unwrap().event_type,
        EventType::UserCreated
    );

    let updated = webhook::handler(&f.deps, signed("acme", &payload("Augusta"), KEY))
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(json_body(&updated)["result"]["updated"], 1);
    let event = f.events.try_recv().unwrap();
    assert_eq!(event.event_type, EventType::UserUpdated);
    assert_eq!(event.version, 2);
    assert_eq!(event.data["firstName"], "Augusta");
    assert!(f.events.try_recv().is_err(), "exactly one event per change");

    let user = f
        .store
        .get_user(
            &DirectoryId::parse("acme").unwrap(),
            &EmployeeId::parse("42").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.first_name.as_deref(), Some("Augusta"));
    assert_eq!(user.version, 2);
}

#[tokio::test]
async fn a_wrong_signature_gets_401_with_a_json_error_and_changes_nothing() {
    let mut f = fixture().await;
    let body = payload("Ada");
    let resp = webhook::handler(&f.deps, signed("acme", &body, "not-the-key"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(json_body(&resp)["error"]["code"], "bad_signature");
    assert!(f.events.try_recv().is_err());
    let users = f
        .store
        .list_users(&DirectoryId::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(users.is_empty());
}

#[tokio::test]
async fn a_signature_made_with_another_directorys_key_is_refused() {
    let f = fixture().await;
    let resp = webhook::handler(
        &f.deps,
        signed("acme", &payload("Ada"), "another-company-key"),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_repeated_delivery_changes_nothing_the_second_time() {
    let mut f = fixture().await;
    let body = payload("Ada");
    for _ in 0..2 {
        let resp = webhook::handler(&f.deps, signed("acme", &body, KEY))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(
        f.events.try_recv().unwrap().event_type,
        EventType::UserCreated
    );
    assert!(
        f.events.try_recv().is_err(),
        "a duplicate delivery emits no second event"
    );
}
