//! Registering a BambooHR webhook for a directory keeps its private key.

use crate::common;

use bamboohr_simulator::{SimConfig, Simulator};
use common::harness;
use secrecy::ExposeSecret;
use sync_engine::signing::verify_bamboohr;
use sync_engine::source::connect::register_event_webhook;

#[tokio::test]
async fn a_registered_webhook_is_listed_and_its_private_key_becomes_the_newest_webhook_key() {
    let simulator = Simulator::generate(SimConfig {
        api_key: "k".into(),
        seed: 5,
        employees: 2,
        ..SimConfig::default()
    });
    let server = simulator.serve().await.unwrap();
    let h = harness("k", Some(server.base_url.clone()), vec![]).await;

    let url = "https://hooks.example.com/webhooks/bamboohr/acme";
    let registered = register_event_webhook(&h.engine, &h.dir, url)
        .await
        .unwrap();
    let id = registered.id.clone();
    assert!(
        registered.monitor_fields.iter().any(|f| f == "workEmail")
            && registered.monitor_fields.iter().any(|f| f == "mobilePhone"),
        "every field the mapping reads is monitored: {:?}",
        registered.monitor_fields
    );
    let stored = h.engine.store.get_directory(&h.dir).await.unwrap().unwrap();
    assert_eq!(
        stored.webhook,
        Some(registered.clone()),
        "the directory records its webhook"
    );

    let client = sync_engine::source::client::bamboohr_client(
        &h.engine,
        &h.engine.store.get_directory(&h.dir).await.unwrap().unwrap(),
    )
    .await
    .unwrap();
    let listed = client.list_webhooks().await.unwrap();
    assert!(listed.iter().any(|w| w.id == id && w.url == url));

    let secrets = h.engine.secrets.get("acme").await.unwrap();
    assert_eq!(
        secrets.webhook_keys.len(),
        2,
        "the new key and the previous one stay active"
    );
    assert_ne!(secrets.webhook_keys[0].expose_secret(), "webhook-key");
    assert_eq!(secrets.webhook_keys[1].expose_secret(), "webhook-key");

    // What BambooHR signs with the returned key verifies against the stored keys.
    let body = br#"{"type":"employee.updated"}"#;
    let sig = bamboohr_simulator::sign(
        secrets.webhook_keys[0].expose_secret().as_bytes(),
        body,
        "1795334400",
    );
    assert!(verify_bamboohr(
        &secrets.webhook_keys,
        body,
        "1795334400",
        &sig
    ));
}
