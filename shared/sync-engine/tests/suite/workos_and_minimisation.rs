//! WorkOS-format app webhooks and data minimisation, end to end through the engine:
//! a field-based BambooHR webhook (signed as BambooHR signs it) carrying an SSN and a
//! pay rate is ingested, and what its change events deliver is checked at receivers.
//! The WorkOS-format receiver is the real Standard Webhooks peer (the official
//! `standardwebhooks` library verifies every delivery) and what it got is parsed with
//! WorkOS's official SDK types.

use crate::common::{self, harness, Harness, Receiver};

use domain::{
    ChangeEvent, DirectoryUser, EmployeeId, EventFormat, EventType, FieldProjection, GroupSource,
    Target, TargetFilter, TargetId, TargetKind,
};
use ports::{Clock, Store};
use serde_json::{json, Value};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::ingest::{ingest, InboundWebhook, IngestReport};
use workos::models::{
    DsyncGroupCreated, DsyncGroupUserAdded, DsyncUserCreated, DsyncUserUpdated, EventSchema,
};

const WEBHOOK_KEY: &str = "webhook-key";
const SSN: &str = "123-45-6789";
const PAY: &str = "98765.43 USD";

fn target(id: &str, kind: TargetKind) -> Target {
    Target {
        id: TargetId::parse(id).unwrap(),
        kind,
        filter: TargetFilter::default(),
        enabled: true,
    }
}

fn workos_target(url: &str) -> Target {
    target(
        "app",
        TargetKind::AppWebhook {
            url: url.into(),
            format: EventFormat::Workos,
            projection: None,
        },
    )
}

/// A field-based webhook for employee 42, as BambooHR sends one (display names, ISO
/// dates), with sensitive fields an admin added to the webhook.
fn webhook(fields: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"employees": [{
        "id": "42", "action": "Updated", "timestamp": "2026-11-23T07:59:00Z",
        "changedFields": fields.as_object().unwrap().keys().collect::<Vec<_>>(),
        "fields": fields,
    }]}))
    .unwrap()
}

fn ada(job_title: &str) -> Value {
    json!({
        "First Name": "Ada", "Last Name": "Lovelace", "Work Email": "ada@acme.test",
        "Job Title": job_title, "Department": "R&D", "Status": "Active",
        "Hire Date": "2024-03-01", "Shirt Size": "M",
        "SSN": SSN, "Pay Rate": PAY, "Ethnicity": "Prefer not to say",
    })
}

/// Ingests a signed webhook, publishes its events and returns them.
async fn ingest_signed(h: &mut Harness, body: &[u8]) -> (IngestReport, Vec<ChangeEvent>) {
    let ts = h.clock.now().unix_timestamp().to_string();
    let sig = bamboohr_simulator::sign(WEBHOOK_KEY.as_bytes(), body, &ts);
    let report = ingest(
        &h.engine,
        &h.dir,
        InboundWebhook {
            body,
            content_type: Some("application/json"),
            signature: Some(&sig),
            timestamp: Some(&ts),
            url_token: None,
        },
        sync_engine::ingest::DEFAULT_TOLERANCE,
    )
    .await
    .unwrap();
    sync_engine::reconcile::outbox::flush(&h.engine, &h.dir)
        .await
        .unwrap();
    (report, h.drain())
}

async fn set_directory(h: &Harness, f: impl FnOnce(&mut domain::Directory)) {
    let mut d = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    let expected = d.version;
    f(&mut d);
    d.version += 1;
    h.store.put_directory(&d, Some(expected)).await.unwrap();
}

async fn stored(h: &Harness) -> DirectoryUser {
    h.store
        .get_user(&h.dir, &EmployeeId::parse("42").unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn dispatch_all(h: &Harness, events: &[ChangeEvent]) -> Vec<TargetOutcome> {
    let mut out = Vec::new();
    for e in events {
        let report = dispatch(&h.engine, e).await.unwrap();
        out.extend(report.targets.into_iter().map(|(_, o)| o));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workos_format_target_gets_signed_dsync_events_the_workos_sdk_parses_without_hr_secrets()
{
    let app = test_peers::spawn_python_peer(
        &test_peers::workspace_root().join("tests/peers/webhook_receiver.py"),
        &[],
        &[("WEBHOOK_SECRET", common::WHSEC)],
    );
    let url = format!("{}/hooks", app.base_url());
    let mut h = harness("k", None, vec![workos_target(&url)]).await;
    // The Standard Webhooks library checks the signed timestamp against its own clock.
    h.clock.set(time::OffsetDateTime::now_utc());
    set_directory(&h, |d| {
        d.group_sources = vec![GroupSource {
            field: "department".into(),
        }];
        d.extra_fields = vec!["Shirt Size".into()];
    })
    .await;

    // Each change is dispatched before the next, as the change queue does.
    let (report, created) = ingest_signed(&mut h, &webhook(ada("Engineer"))).await;
    assert_eq!(report.created, 1);
    let mut outcomes = dispatch_all(&h, &created).await;
    let (report, mut events) = ingest_signed(&mut h, &webhook(ada("Staff Engineer"))).await;
    assert_eq!(report.updated, 1);
    // A directory event WorkOS has no counterpart for is not sent.
    events.push(ChangeEvent::new(
        EventType::DirectorySyncCompleted,
        h.dir.clone(),
        h.dir.as_str(),
        1,
        h.clock.now(),
        json!({}),
    ));
    outcomes.extend(dispatch_all(&h, &events).await);
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, TargetOutcome::Skipped { reason } if reason.contains("directory.sync_completed has no WorkOS event"))),
        "{outcomes:?}"
    );

    // Nothing sensitive was stored.
    let user = stored(&h).await;
    for k in ["SSN", "Pay Rate", "Ethnicity"] {
        assert!(!user.raw_attributes.contains_key(k), "{k} stored");
    }
    assert_eq!(user.raw_attributes["Shirt Size"], "M");

    let got: Value = reqwest::get(format!("{}/deliveries", app.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = got.as_array().unwrap();
    assert!(got.iter().all(|d| d["verified"] == true));
    let mut names = Vec::new();
    for d in got {
        let text = d["body"].to_string();
        assert!(
            !text.contains(SSN) && !text.contains(PAY),
            "an HR secret was sent"
        );
        let generic: EventSchema = serde_json::from_str(&text).unwrap();
        assert_eq!(generic.id, d["webhookId"].as_str().unwrap());
        match generic.event.as_str() {
            "dsync.user.created" => {
                let ev: DsyncUserCreated = serde_json::from_str(&text).unwrap();
                assert_eq!(ev.data.idp_id, "42");
                assert_eq!(ev.data.email.as_deref(), Some("ada@acme.test"));
                assert_eq!(ev.data.custom_attributes["department_name"], "R&D");
            }
            "dsync.user.updated" => {
                let ev: DsyncUserUpdated = serde_json::from_str(&text).unwrap();
                let prev = ev.data.previous_attributes.unwrap();
                assert_eq!(prev["job_title"], "Engineer");
                assert_eq!(ev.data.custom_attributes["job_title"], "Staff Engineer");
            }
            "dsync.group.created" => {
                let ev: DsyncGroupCreated = serde_json::from_str(&text).unwrap();
                assert_eq!(ev.data.name, "R&D");
            }
            "dsync.group.user_added" => {
                let ev: DsyncGroupUserAdded = serde_json::from_str(&text).unwrap();
                assert_eq!(ev.data.user.idp_id, "42");
                assert_eq!(ev.data.group.name, "R&D");
            }
            other => panic!("unexpected event {other}"),
        }
        names.push(generic.event);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.user.created",
            "dsync.user.updated"
        ]
    );
}

#[tokio::test]
async fn a_projection_limits_what_an_app_webhook_receives() {
    let receiver: Receiver = common::receiver().await;
    let url = receiver.url.clone();
    let projection = FieldProjection::parse(&[
        "firstName".into(),
        "emails".into(),
        "rawAttributes.Status".into(),
    ])
    .unwrap();
    let mut h = harness(
        "k",
        None,
        vec![target(
            "app",
            TargetKind::AppWebhook {
                url,
                format: EventFormat::Native,
                projection: Some(projection),
            },
        )],
    )
    .await;
    let (_, events) = ingest_signed(&mut h, &webhook(ada("Engineer"))).await;
    dispatch_all(&h, &events).await;
    let got = receiver.got();
    let user_event = got
        .iter()
        .find(|g| g.body["type"] == "user.created")
        .expect("the user was delivered");
    let data = user_event.body["data"].as_object().unwrap();
    assert_eq!(data["firstName"], "Ada");
    assert_eq!(data["emails"][0]["value"], "ada@acme.test");
    assert_eq!(data["employeeId"], "42", "identity is always sent");
    assert_eq!(data["rawAttributes"], json!({"Status": "Active"}));
    for cut in [
        "lastName",
        "jobTitle",
        "department",
        "hireDate",
        "customAttributes",
    ] {
        assert!(!data.contains_key(cut), "{cut} was sent");
    }
    assert!(user_event.body.get("previousAttributes").is_none());
}

#[tokio::test]
async fn raw_values_over_the_caps_or_not_scalar_are_not_stored() {
    let mut h = harness("k", None, vec![]).await;
    set_directory(&h, |d| {
        d.raw_attribute_allowlist = Some(vec!["Notes".into(), "Tags".into(), "Shirt Size".into()])
    })
    .await;
    let mut fields = ada("Engineer");
    fields["Notes"] = json!("n".repeat(mapping::RAW_VALUE_MAX_BYTES));
    fields["Tags"] = json!(["a", "b"]);
    ingest_signed(&mut h, &webhook(fields)).await;
    let user = stored(&h).await;
    assert!(
        !user.raw_attributes.contains_key("Notes"),
        "over the value cap"
    );
    assert!(!user.raw_attributes.contains_key("Tags"), "not a scalar");
    assert_eq!(user.raw_attributes["Shirt Size"], "M");
    let total: usize = user
        .raw_attributes
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len())
        .sum();
    assert!(total <= mapping::RAW_TOTAL_MAX_BYTES);
}

#[tokio::test]
async fn narrowing_the_allowlist_drops_stored_raw_fields_without_an_update_event() {
    let mut h = harness("k", None, vec![]).await;
    // Kept while the directory's allowlist named them (as everything was before
    // allowlists existed).
    set_directory(&h, |d| {
        d.raw_attribute_allowlist = Some(vec!["SSN".into(), "Pay Rate".into()])
    })
    .await;
    let body = webhook(ada("Engineer"));
    ingest_signed(&mut h, &body).await;
    let before = stored(&h).await;
    assert_eq!(before.raw_attributes["SSN"], SSN);

    set_directory(&h, |d| d.raw_attribute_allowlist = None).await;
    // BambooHR sends the same employee again (a retry with a new timestamp).
    let again = webhook(ada("Engineer"));
    let mut again: Value = serde_json::from_slice(&again).unwrap();
    again["employees"][0]["timestamp"] = json!("2026-11-23T08:05:00Z");
    let (report, events) = ingest_signed(&mut h, &serde_json::to_vec(&again).unwrap()).await;
    assert_eq!(report.unchanged, 1, "{report:?}");
    assert!(
        events
            .iter()
            .all(|e| e.event_type != EventType::UserUpdated),
        "no spurious update: {events:?}"
    );
    let after = stored(&h).await;
    assert_eq!(after.fingerprint, before.fingerprint);
    assert!(!after.raw_attributes.contains_key("SSN"));
    assert!(!after.raw_attributes.contains_key("Pay Rate"));
    assert_eq!(after.first_name.as_deref(), Some("Ada"));
}

#[tokio::test]
async fn a_new_connection_is_dsync_activated_and_a_revocation_dsync_deleted_at_a_workos_target() {
    use bamboohr_simulator::{SimConfig, Simulator};
    use embedded_adapters::InProcessScheduler;
    use sync_engine::operate::{self, ConnectRequest, Credential, TargetSpec};

    let simulator = Simulator::generate(SimConfig {
        api_key: "k".into(),
        seed: 5,
        employees: 2,
        ..SimConfig::default()
    });
    let server = simulator.serve().await.unwrap();
    let mut h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    let newco = domain::DirectoryId::parse("newco").unwrap();
    operate::connect(
        &h.engine,
        &scheduler,
        ConnectRequest {
            directory_id: newco.clone(),
            subdomain: "newco".into(),
            base_url: Some(server.base_url.clone()),
            credential: Credential::ApiKey("k".to_string().into()),
            time_zone: None,
            register_webhook_at: None,
        },
        "local:operator",
    )
    .await
    .unwrap();
    let connected: Vec<ChangeEvent> = h
        .drain()
        .into_iter()
        .filter(|e| e.event_type == EventType::DirectoryConnected)
        .collect();
    assert_eq!(
        connected.len(),
        1,
        "connecting publishes directory.connected"
    );

    // The app's target is configured while the event waits in the change queue.
    let receiver: Receiver = common::receiver().await;
    let secrets = ports::TargetSecrets {
        signing_secrets: vec![common::WHSEC.to_string().into()],
        ..Default::default()
    };
    operate::add_target(
        &h.engine,
        &newco,
        TargetSpec {
            target: workos_target(&receiver.url),
            secrets: Some(secrets),
        },
        "local:operator",
    )
    .await
    .unwrap();
    dispatch_all(&h, &connected).await;
    h.clock.advance(time::Duration::minutes(5));
    operate::revoke(&h.engine, &scheduler, &newco, "local:operator")
        .await
        .unwrap();

    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:?}");
    let activated: workos::models::DsyncActivated =
        serde_json::from_value(got[0].body.clone()).unwrap();
    assert_eq!(activated.event, "dsync.activated");
    assert_eq!(activated.data.id, "newco");
    assert_eq!(activated.data.state.as_str(), "active");
    let deleted: workos::models::DsyncDeleted =
        serde_json::from_value(got[1].body.clone()).unwrap();
    assert_eq!(deleted.event, "dsync.deleted");
    assert_eq!(deleted.data.state.as_str(), "deleting");
    assert_eq!(got[1].webhook_id, deleted.id);
}
