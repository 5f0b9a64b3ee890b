//! No stale overwrite: a field-based entry whose BambooHR `timestamp` is older than the
//! user's stored source timestamp (a late retry, or two webhooks arriving out of order)
//! is acknowledged with a 2xx and counted, never applied; a poll is never blocked by it.
//! The end-to-end test follows both webhooks through the dispatcher to an app verified
//! with the official Standard Webhooks library and to scim2-server.

use crate::common;

use std::sync::Arc;

use common::*;
use domain::{
    Directory, DirectoryId, EmployeeId, EventType, Target, TargetFilter, TargetId, TargetKind,
};
use embedded_adapters::{FileSecrets, InProcessBus, InProcessRetryQueue, SqliteStore};
use lambda_http::http::StatusCode;
use ports::{Clock, DirectorySecrets, FixedClock, SecretStore, Store, TargetSecrets};
use secrecy::SecretString;
use serde_json::json;
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::Engine;
use time::OffsetDateTime;

/// Ada's entry stamped `timestamp` with `title` as her job title.
fn ada_at(timestamp: &str, title: &str) -> String {
    json!({
        "employees": [{
            "id": "42",
            "action": "Updated",
            "timestamp": timestamp,
            "changedFields": ["Job Title"],
            "fields": {
                "First Name": "Ada",
                "Last Name": "Lovelace",
                "Work Email": "ada@example.com",
                "Job Title": title,
                "Status": "Active",
                "Hire Date": "2020-01-06"
            }
        }]
    })
    .to_string()
}

const T6: &str = "2026-11-23T07:56:00Z";
const T7: &str = "2026-11-23T07:57:00Z";
const T5: &str = "2026-11-23T07:55:00Z";

#[tokio::test]
async fn an_older_webhook_after_a_newer_one_is_acknowledged_and_leaves_the_newer_state() {
    let mut f = fixture().await;
    let newer = send(&f, Req::new("acme", ada_at(T7, "Newer title")).signed(KEY)).await;
    assert_eq!(newer.status(), StatusCode::OK, "{}", json_body(&newer));
    assert_eq!(f.drain().len(), 1, "user.created");

    let older = send(&f, Req::new("acme", ada_at(T6, "Older title")).signed(KEY)).await;
    assert_eq!(
        older.status(),
        StatusCode::OK,
        "acknowledged: BambooHR must not retry it"
    );
    let result = &json_body(&older)["result"];
    assert_eq!(result["stale"], 1, "{result}");
    assert_eq!(result["updated"], 0, "{result}");
    assert!(f.drain().is_empty(), "no event for a stale entry");

    let user = f.user("acme", "42").await.unwrap();
    assert_eq!(user.job_title.as_deref(), Some("Newer title"));
    assert_eq!(user.version, 1);
    assert_eq!(
        user.source_timestamp,
        Some(OffsetDateTime::parse(T7, &time::format_description::well_known::Rfc3339).unwrap())
    );
}

#[tokio::test]
async fn a_newer_webhook_that_changes_nothing_still_makes_a_later_arriving_older_one_stale() {
    let mut f = fixture().await;
    let first = send(&f, Req::new("acme", ada_at(T5, "Engineer")).signed(KEY)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(f.drain().len(), 1, "user.created");
    // The same fields, stamped later: nothing to deliver, but the time is recorded.
    let same = send(&f, Req::new("acme", ada_at(T7, "Engineer")).signed(KEY)).await;
    assert_eq!(json_body(&same)["result"]["unchanged"], 1);
    assert!(f.drain().is_empty(), "without an event");
    let user = f.user("acme", "42").await.unwrap();
    assert_eq!(user.version, 2, "the timestamp was written");

    let late = send(&f, Req::new("acme", ada_at(T6, "Manager")).signed(KEY)).await;
    assert_eq!(late.status(), StatusCode::OK);
    assert_eq!(json_body(&late)["result"]["stale"], 1);
    let user = f.user("acme", "42").await.unwrap();
    assert_eq!(user.job_title.as_deref(), Some("Engineer"));
}

#[tokio::test]
async fn a_deleted_entry_older_than_the_stored_change_does_not_delete() {
    let mut f = fixture().await;
    send(&f, Req::new("acme", ada_at(T7, "Engineer")).signed(KEY)).await;
    let _ = f.drain();
    let deleted = json!({"employees": [{"id": "42", "action": "Deleted", "timestamp": T6}]});
    let resp = send(&f, Req::new("acme", deleted.to_string()).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp)["result"]["stale"], 1);
    assert_eq!(
        f.user("acme", "42").await.unwrap().state,
        domain::UserState::Active
    );
    assert!(f.drain().is_empty());
}

#[tokio::test]
async fn entries_without_a_timestamp_and_event_based_payloads_behave_as_before() {
    let mut f = fixture().await;
    send(&f, Req::new("acme", ada_at(T7, "Engineer")).signed(KEY)).await;
    let _ = f.drain();
    // No timestamp: nothing to compare, so the entry applies.
    let untimed = json!({"employees": [{"id": "42", "fields": {"Job Title": "Untimed"}}]});
    let resp = send(&f, Req::new("acme", untimed.to_string()).signed(KEY)).await;
    assert_eq!(json_body(&resp)["result"]["updated"], 1);
    assert_eq!(f.drain()[0].event_type, EventType::UserUpdated);
    // Ids only: a refresh request, whatever the stored timestamp.
    let resp = send(
        &f,
        Req::new("acme", event_based("employee.updated", "42")).signed(KEY),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(json_body(&resp)["result"]["refreshRequested"], 1);
}

#[tokio::test]
async fn a_poll_after_a_newer_webhook_is_not_blocked_and_the_stored_time_never_goes_back() {
    let w = crate::safeguard::World::new().await;
    let id = w.live().await[0].clone();
    let employee = EmployeeId::parse(&id).unwrap();
    // A webhook stamped later than anything BambooHR's reads will carry.
    let later = (w.clock_now() + time::Duration::days(1))
        .replace_nanosecond(0)
        .unwrap();
    let stamp = later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let entry = |title: &str, at: &str| {
        json!({"employees": [{"id": id, "action": "Updated", "timestamp": at,
            "fields": {"Job Title": title}}]})
        .to_string()
        .into_bytes()
    };
    let resp = w.post(entry("From the webhook", &stamp)).await;
    assert_eq!(
        json_body(&resp)["result"]["updated"],
        1,
        "{}",
        json_body(&resp)
    );

    // BambooHR changes the employee again; the poll reads the current state and
    // applies it, although its lastChanged is earlier than the webhook's stamp.
    let mut changes = std::collections::BTreeMap::new();
    changes.insert("jobTitle".to_string(), Some("From BambooHR".to_string()));
    w.sim.update(&id, changes);
    let run = w.sync(domain::SyncMode::Full).await;
    assert_eq!(run.status, domain::RunStatus::Completed, "{:?}", run.errors);
    let user = w.store.get_user(&w.dir, &employee).await.unwrap().unwrap();
    assert_eq!(user.job_title.as_deref(), Some("From BambooHR"));
    assert_eq!(
        user.source_timestamp,
        Some(later),
        "the stored time never goes back"
    );

    // A retry of an entry older than that stamp is still recognised as older.
    let earlier = (later - time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let resp = w.post(entry("A late retry", &earlier)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp)["result"]["stale"], 1);
    let user = w.store.get_user(&w.dir, &employee).await.unwrap().unwrap();
    assert_eq!(user.job_title.as_deref(), Some("From BambooHR"));
}

// ---- end to end: webhook handler -> outbox -> dispatcher -> app and SCIM -------------

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SCIM_TOKEN: &str = "scim-test-token";

async fn app_deliveries(app: &test_peers::PeerProcess) -> Vec<serde_json::Value> {
    reqwest::get(format!("{}/deliveries", app.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn scim_users(scim: &test_peers::PeerProcess) -> Vec<serde_json::Value> {
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v2/Users", scim.base_url()))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["Resources"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_webhook_after_a_newer_one_leaves_the_newer_state_at_every_target() {
    let app = test_peers::spawn_python_peer(
        &test_peers::workspace_root().join("tests/peers/webhook_receiver.py"),
        &[],
        &[("WEBHOOK_SECRET", WHSEC)],
    );
    let scim = test_peers::spawn_python_peer(
        &test_peers::workspace_root().join("tests/peers/scim_server.py"),
        &[],
        &[("SCIM_BEARER_TOKEN", SCIM_TOKEN)],
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory());
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
    // The receiving app checks webhook-timestamp against its own clock.
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let signed_at = clock.now().unix_timestamp().to_string();
    let acme = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(acme.clone(), "acme", "acme").unwrap();
    d.version = 1;
    d.targets = vec![
        Target {
            id: TargetId::parse("app").unwrap(),
            kind: TargetKind::app_webhook(format!("{}/hooks/app", app.base_url())),
            filter: TargetFilter::default(),
            enabled: true,
        },
        Target {
            id: TargetId::parse("idp").unwrap(),
            kind: TargetKind::Scim {
                base_url: format!("{}/v2", scim.base_url()),
                scim: Default::default(),
            },
            filter: TargetFilter::default(),
            enabled: true,
        },
    ];
    store.put_directory(&d, None).await.unwrap();
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "app".to_string(),
        TargetSecrets {
            signing_secrets: vec![SecretString::from(WHSEC)],
            ..Default::default()
        },
    );
    targets.insert(
        "idp".to_string(),
        TargetSecrets {
            bearer_token: Some(SecretString::from(SCIM_TOKEN)),
            ..Default::default()
        },
    );
    secrets
        .put(
            "acme",
            &DirectorySecrets {
                webhook_keys: vec![SecretString::from(KEY)],
                targets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (bus, mut events) = InProcessBus::new();
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), clock.clone())
        .with_retry_queue(Arc::new(InProcessRetryQueue::new(clock)));
    let deps = webhook::Deps::new(engine.clone());
    let post = |body: String| {
        let deps = deps.clone();
        let at = signed_at.clone();
        async move {
            let req = Req::new("acme", body).signed_at(KEY, &at);
            webhook::handler(&deps, req.build()).await.unwrap()
        }
    };

    // BambooHR sends the newer change (t+7) first, then the older one (t+6), as a
    // retry after a 5xx would arrive; both are answered 2xx.
    let newer = post(ada_at(T7, "Newer title")).await;
    assert_eq!(newer.status(), StatusCode::OK, "{}", json_body(&newer));
    let older = post(ada_at(T6, "Older title")).await;
    assert_eq!(older.status(), StatusCode::OK, "{}", json_body(&older));
    assert_eq!(json_body(&older)["result"]["stale"], 1);

    // Everything published reaches the dispatcher, in order.
    let mut published = Vec::new();
    while let Ok(e) = events.try_recv() {
        published.push(e);
    }
    assert_eq!(published.len(), 1, "one change: the newer one");
    for event in &published {
        let report = dispatch(&engine, event).await.unwrap();
        for (target, outcome) in &report.targets {
            assert!(
                matches!(outcome, TargetOutcome::Delivered { .. }),
                "{target}: {outcome:?}"
            );
        }
    }

    let delivered = app_deliveries(&app).await;
    let last = delivered.last().expect("the app got the user");
    assert_eq!(last["verified"], true, "standardwebhooks verified it");
    assert_eq!(last["data"]["jobTitle"], "Newer title", "{last}");
    assert!(
        delivered
            .iter()
            .all(|d| d["data"]["jobTitle"] != "Older title"),
        "the older state never reached the app"
    );
    let users = scim_users(&scim).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["title"], "Newer title", "{}", users[0]);
}
