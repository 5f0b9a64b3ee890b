//! An event the change queue refuses for good (here: larger than SQS takes) is
//! quarantined by the outbox, with its reason, and the directory carries on: the
//! webhook request that met it, and the next one, are answered 200 and their own
//! changes reach the change queue (moto), through the real webhook handler.

use std::time::Duration;

use domain::{ChangeEvent, Directory, DirectoryId, EventType};
use integration_tests::TestStack;
use ports::DirectorySecrets;
use secrecy::SecretString;

const KEY: &str = "quarantine-test-webhook-key";

/// The HTTP API's event for a signed field-based webhook changing employee `id`.
fn webhook_request(directory: &str, id: &str, title: &str) -> lambda_http::Request {
    let body = serde_json::json!({
        "employees": [{
            "id": id,
            "action": "Updated",
            "timestamp": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            "changedFields": ["Job Title"],
            "fields": {"First Name": "Ada", "Last Name": "Lovelace", "Job Title": title},
        }]
    })
    .to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = bamboohr_simulator::sign(KEY.as_bytes(), body.as_bytes(), &ts);
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../functions/webhook/tests/fixtures/http-api-proxy.json"
    ))
    .unwrap();
    let path = format!("/webhooks/bamboohr/{directory}");
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["pathParameters"]["directory_id"] = directory.into();
    let headers = event["headers"].as_object_mut().unwrap();
    headers.insert("content-type".into(), "application/json".into());
    headers.insert("x-bamboohr-signature".into(), signature.into());
    headers.insert("x-bamboohr-timestamp".into(), ts.into());
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_is_quarantined_and_later_webhooks_are_answered_200() {
    let stack = TestStack::provision().await;
    let engine = stack.engine();
    let dir = DirectoryId::parse("acme").unwrap();
    engine
        .secrets
        .put(
            "acme",
            &DirectorySecrets {
                webhook_keys: vec![SecretString::from(KEY)],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.version = 1;
    engine.store.put_directory(&d, None).await.unwrap();

    // An event no queue takes (over 256 KiB), left in the outbox two minutes ago.
    let huge = ChangeEvent::new(
        EventType::UserUpdated,
        dir.clone(),
        "usr_huge",
        1,
        time::OffsetDateTime::now_utc() - time::Duration::minutes(2),
        serde_json::json!({"blob": "x".repeat(300 * 1024)}),
    );
    engine
        .store
        .append_events(&dir, std::slice::from_ref(&huge))
        .await
        .unwrap();

    let deps = webhook::Deps::new(engine.clone());
    for (employee, title) in [("1", "Engineer"), ("2", "Analyst")] {
        let response = webhook::handler(&deps, webhook_request("acme", employee, title))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "employee {employee}");
    }

    let quarantined = engine.store.list_quarantined(&dir, 10).await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].event.id, huge.id);
    assert!(
        quarantined[0].reason.contains("MessageTooLong"),
        "{}",
        quarantined[0].reason
    );
    assert!(
        engine
            .store
            .pending_events(&dir, 10)
            .await
            .unwrap()
            .is_empty(),
        "the outbox is drained"
    );

    // Both requests' own changes are on the change queue.
    let messages = stack.receive(2, Duration::from_secs(20)).await;
    let events: Vec<ChangeEvent> = messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e.id != huge.id));
}
