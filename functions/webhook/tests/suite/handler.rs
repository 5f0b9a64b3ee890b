//! The webhook handler, driven in-process with API Gateway HTTP API (v2) events, on the
//! embedded adapters: every response code, both payload families, the three field-key
//! vocabularies, key rotation, duplicates, URL-token mode and the outbox under faults.

use crate::common;

use common::*;
use domain::{EventType, UserState};
use lambda_http::http::StatusCode;
use ports::{Clock, DirectorySecrets, SecretStore, Store};
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;

fn code(resp: &lambda_http::Response<lambda_http::Body>) -> String {
    json_body(resp)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn message(resp: &lambda_http::Response<lambda_http::Body>) -> String {
    json_body(resp)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---- field-based payloads -------------------------------------------------------------

#[tokio::test]
async fn a_signed_field_based_payload_updates_one_user_and_emits_one_user_updated() {
    let mut f = fixture().await;
    let created = send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert_eq!(created.status(), StatusCode::OK, "{}", json_body(&created));
    assert_eq!(f.drain()[0].event_type, EventType::UserCreated);

    let updated = send(&f, Req::new("acme", ada("Augusta")).signed(KEY)).await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(json_body(&updated)["result"]["updated"], 1);
    let events = f.drain();
    assert_eq!(events.len(), 1, "exactly one event per change");
    assert_eq!(events[0].event_type, EventType::UserUpdated);
    assert_eq!(events[0].version, 2);
    assert_eq!(events[0].data["firstName"], "Augusta");

    let user = f.user("acme", "42").await.unwrap();
    assert_eq!(user.first_name.as_deref(), Some("Augusta"));
    assert_eq!(user.version, 2);
}

#[tokio::test]
async fn alias_keys_chosen_by_the_admin_map_like_display_names() {
    let f = fixture().await;
    let body = field_based(
        "7",
        "Created",
        json!({ "Given Name": "Grace", "Last Name": "Hopper", "Work Email": "grace@example.com" }),
    );
    let resp = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    let user = f.user("acme", "7").await.unwrap();
    assert_eq!(user.first_name.as_deref(), Some("Grace"));
    assert_eq!(user.last_name.as_deref(), Some("Hopper"));
}

#[tokio::test]
async fn camel_case_keys_map_like_display_names() {
    let f = fixture().await;
    let body = field_based(
        "8",
        "Created",
        json!({ "firstName": "Katherine", "lastName": "Johnson", "workEmail": "kj@example.com", "jobTitle": "Mathematician" }),
    );
    let resp = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    let user = f.user("acme", "8").await.unwrap();
    assert_eq!(user.first_name.as_deref(), Some("Katherine"));
    assert_eq!(user.job_title.as_deref(), Some("Mathematician"));
}

#[tokio::test]
async fn a_payload_with_only_some_fields_updates_only_those_fields() {
    let mut f = fixture().await;
    send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    f.drain();
    let partial = field_based("42", "Updated", json!({ "Job Title": "Analyst" }));
    let resp = send(&f, Req::new("acme", partial).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    let user = f.user("acme", "42").await.unwrap();
    assert_eq!(user.job_title.as_deref(), Some("Analyst"));
    assert_eq!(
        user.first_name.as_deref(),
        Some("Ada"),
        "absent fields are kept"
    );
    assert_eq!(user.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(user.version, 2);
    let events = f.drain();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["jobTitle"], "Analyst");
    assert_eq!(events[0].data["firstName"], "Ada");
}

#[tokio::test]
async fn created_updated_and_deleted_actions_emit_created_updated_and_deleted() {
    let mut f = fixture().await;
    let fields =
        json!({ "First Name": "Ada", "Last Name": "Lovelace", "Work Email": "ada@example.com" });
    let created = field_based("42", "Created", fields);
    assert_eq!(
        send(&f, Req::new("acme", created).signed(KEY))
            .await
            .status(),
        StatusCode::OK
    );
    let updated = field_based("42", "Updated", json!({ "Last Name": "King" }));
    assert_eq!(
        send(&f, Req::new("acme", updated).signed(KEY))
            .await
            .status(),
        StatusCode::OK
    );
    let deleted = field_based("42", "Deleted", json!({}));
    let resp = send(&f, Req::new("acme", deleted).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp)["result"]["deleted"], 1);

    let types: Vec<EventType> = f.drain().into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::UserCreated,
            EventType::UserUpdated,
            EventType::UserDeleted
        ]
    );
    assert_eq!(
        f.user("acme", "42").await.unwrap().state,
        UserState::Deleted
    );
}

// ---- event-based payloads -------------------------------------------------------------

#[tokio::test]
async fn an_employee_deleted_event_marks_the_user_deleted_without_a_fetch() {
    // The directory has no BambooHR credentials at all: a fetch would fail.
    let mut f = fixture().await;
    send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    f.drain();
    let resp = send(
        &f,
        Req::new("acme", event_based("employee.deleted", "42")).signed(KEY),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    assert_eq!(
        f.user("acme", "42").await.unwrap().state,
        UserState::Deleted
    );
    let events = f.drain();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::UserDeleted);
}

#[tokio::test]
async fn event_based_webhooks_schedule_one_targeted_run_a_minute_later() {
    let mut f = fixture().await;
    let scheduler = Arc::new(embedded_adapters::InProcessScheduler::new());
    f.deps = webhook::Deps::new(f.deps.engine.clone().with_scheduler(scheduler.clone()));
    for id in ["100", "101", "102"] {
        let resp = send(
            &f,
            Req::new("acme", event_based("employee.updated", id)).signed(KEY),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", json_body(&resp));
    }
    // A burst of webhooks within a minute shares one run.
    assert_eq!(scheduler.pending_once(), 1);
    let now = f.clock.now();
    assert!(scheduler.due(now).is_empty(), "not before the minute is up");
    let due = scheduler.due(now + time::Duration::minutes(1));
    assert_eq!(
        due,
        vec![domain::SyncRequest {
            directory_id: dir("acme"),
            mode: domain::SyncMode::Targeted,
        }]
    );
}

#[tokio::test]
async fn employee_created_and_updated_events_record_refresh_requests_and_answer_202() {
    let mut f = fixture().await;
    for (kind, id) in [("employee.created", "100"), ("employee.updated", "101")] {
        let resp = send(&f, Req::new("acme", event_based(kind, id)).signed(KEY)).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", json_body(&resp));
        assert_eq!(json_body(&resp)["result"]["refreshRequested"], 1);
    }
    let pending = f
        .store
        .pending_refresh_requests(&dir("acme"), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = pending.iter().map(|r| r.employee_id.as_str()).collect();
    assert_eq!(ids, ["100", "101"]);
    assert!(
        f.user("acme", "100").await.is_none(),
        "no user before the fetch"
    );
    assert!(f.drain().is_empty(), "no change event before the fetch");
}

#[tokio::test]
async fn an_event_type_the_service_does_not_act_on_is_acknowledged_and_ignored() {
    let f = fixture().await;
    let body = json!({ "type": "company.updated", "timestamp": "2026-11-23T07:59:30Z", "data": { "companyId": "12345" } }).to_string();
    let resp = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp)["result"]["ignored"], 1);
}

// ---- 401 ------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_signature_gets_401_with_a_json_error_and_changes_nothing() {
    let mut f = fixture().await;
    let resp = send(&f, Req::new("acme", ada("Ada")).signed("not-the-key")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(code(&resp), "unauthorized");
    assert!(f.drain().is_empty());
    assert!(f.store.list_users(&dir("acme")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_request_without_signature_headers_gets_401() {
    let f = fixture().await;
    let resp = send(&f, Req::new("acme", ada("Ada"))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&resp), "unauthorized");
    let only_sig = Req::new("acme", ada("Ada")).header("x-bamboohr-signature", "00");
    assert_eq!(code(&send(&f, only_sig).await), "unauthorized");
}

#[tokio::test]
async fn a_signature_made_with_another_directorys_key_is_refused() {
    let f = fixture().await;
    let resp = send(&f, Req::new("acme", ada("Ada")).signed(OTHER_KEY)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&resp), "unauthorized");
}

#[tokio::test]
async fn a_replayed_old_timestamp_gets_401_even_with_a_valid_signature() {
    let f = fixture().await;
    for ts in [
        (NOW - 301).to_string(),
        (NOW + 301).to_string(),
        "2026-11-23T07:50:00Z".to_string(),
        "not-a-time".to_string(),
    ] {
        let resp = send(&f, Req::new("acme", ada("Ada")).signed_at(KEY, &ts)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "timestamp {ts}");
        assert_eq!(code(&resp), "stale_timestamp", "timestamp {ts}");
    }
    assert!(f.store.list_users(&dir("acme")).await.unwrap().is_empty());
}

#[tokio::test]
async fn timestamps_within_the_window_are_accepted_as_unix_seconds_or_iso_8601() {
    let f = fixture().await;
    let resp = send(
        &f,
        Req::new("acme", ada("Ada")).signed_at(KEY, &(NOW - 299).to_string()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = send(
        &f,
        Req::new("acme", ada("Augusta")).signed_at(KEY, "2026-11-23T08:04:00Z"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
}

#[tokio::test]
async fn during_a_key_rotation_the_old_and_the_new_key_are_both_accepted() {
    let f = fixture().await;
    let rotating = DirectorySecrets {
        webhook_keys: vec![SecretString::from(KEY), SecretString::from("new-key")],
        ..Default::default()
    };
    f.secrets.put("acme", &rotating).await.unwrap();
    let old = send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert_eq!(old.status(), StatusCode::OK);
    let new = send(&f, Req::new("acme", ada("Augusta")).signed("new-key")).await;
    assert_eq!(new.status(), StatusCode::OK);

    // Rotation finished: only the new key remains.
    let rotated = DirectorySecrets {
        webhook_keys: vec![SecretString::from("new-key")],
        ..Default::default()
    };
    f.secrets.put("acme", &rotated).await.unwrap();
    let retired = send(&f, Req::new("acme", ada("Grace")).signed(KEY)).await;
    assert_eq!(retired.status(), StatusCode::UNAUTHORIZED);
}

// ---- 400 ------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_gets_400_naming_the_problem() {
    let f = fixture().await;
    let resp = send(&f, Req::new("acme", "{\"employees\": [").signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&resp), "malformed_payload");
    assert!(
        message(&resp).contains("not valid JSON"),
        "{}",
        message(&resp)
    );
}

#[tokio::test]
async fn an_unknown_payload_shape_gets_400_naming_the_problem() {
    let f = fixture().await;
    let cases = [
        (json!({ "hello": "world" }), "unknown payload shape"),
        (json!([1, 2]), "unknown payload shape"),
        (json!({ "employees": 5 }), "\"employees\" is not an array"),
        (
            json!({ "employees": [{ "action": "Updated" }] }),
            "employees[0] has no \"id\"",
        ),
        (
            json!({ "employees": [{ "id": "1", "action": "Renamed" }] }),
            "employees[0] \"action\" is not Created, Updated or Deleted",
        ),
        (
            json!({ "employees": [{ "id": "1", "fields": [] }] }),
            "employees[0] \"fields\" is not an object",
        ),
        (json!({ "type": 3 }), "\"type\" is not a string"),
        (
            json!({ "type": "employee.updated", "data": {} }),
            "\"data.employeeId\" is missing",
        ),
    ];
    for (body, expected) in cases {
        let resp = send(&f, Req::new("acme", body.to_string()).signed(KEY)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&resp), "malformed_payload");
        assert!(
            message(&resp).contains(expected),
            "{body}: {}",
            message(&resp)
        );
    }
}

#[tokio::test]
async fn a_malformed_entry_late_in_a_batch_leaves_nothing_applied() {
    let mut f = fixture().await;
    let body = json!({ "employees": [
        { "id": "1", "action": "Created", "fields": { "First Name": "A", "Work Email": "a@example.com" } },
        { "id": "2", "action": "Promoted" }
    ]})
    .to_string();
    let resp = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(f.user("acme", "1").await.is_none());
    assert!(f.drain().is_empty());
}

#[tokio::test]
async fn error_messages_never_echo_field_values() {
    let f = fixture().await;
    let body = json!({ "employees": [{ "id": "1", "action": "SECRET-VALUE-123" }] }).to_string();
    let resp = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(!json_body(&resp).to_string().contains("SECRET-VALUE-123"));
}

// ---- 413, 415, 503, and what an unauthenticated caller learns ------------------------

#[tokio::test]
async fn without_a_valid_signature_an_unknown_revoked_paused_or_existing_directory_answers_the_same(
) {
    let f = fixture().await;
    let mut answers = Vec::new();
    for d in ["nobody", "revoked-co", "paused-co", "acme", "Not-An-Id!"] {
        for req in [
            Req::new(d, ada("Ada")),
            Req::new(d, ada("Ada")).signed("not-the-key"),
            Req::new(d, ada("Ada")).signed(OTHER_KEY),
        ] {
            let resp = send(&f, req).await;
            answers.push((resp.status(), json_body(&resp).to_string()));
        }
    }
    let first = answers[0].clone();
    assert_eq!(first.0, StatusCode::UNAUTHORIZED);
    assert!(
        answers.iter().all(|a| *a == first),
        "every unauthenticated answer is the same: {answers:#?}"
    );
}

#[tokio::test]
async fn an_unknown_or_revoked_directory_gets_the_401_of_a_bad_signature_even_when_signed() {
    let f = fixture().await;
    for d in ["nobody", "revoked-co"] {
        let resp = send(&f, Req::new(d, ada("Ada")).signed(KEY)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{d}");
        assert_eq!(code(&resp), "unauthorized");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let f = fixture().await;
    let big = vec![b' '; sync_engine::ingest::MAX_BODY_BYTES + 1];
    let resp = send(&f, Req::new("acme", big).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&resp), "body_too_large");
}

#[tokio::test]
async fn a_content_type_other_than_json_gets_415() {
    let f = fixture().await;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let resp = send(
            &f,
            Req::new("acme", ada("Ada")).content_type(ct).signed(KEY),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(code(&resp), "unsupported_media_type");
    }
    let charset = Req::new("acme", ada("Ada"))
        .content_type(Some("application/json; charset=utf-8"))
        .signed(KEY);
    assert_eq!(send(&f, charset).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_directory_paused_by_the_operator_gets_503_so_bamboohr_retries_after_the_pause() {
    let f = fixture().await;
    let resp = send(&f, Req::new("paused-co", ada("Ada")).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&resp), "directory_paused");
}

// ---- 5xx and the outbox ---------------------------------------------------------------

#[tokio::test]
async fn a_storage_failure_gets_503_so_bamboohr_retries_and_the_retry_applies_once() {
    let mut f = fixture().await;
    f.store.set_failing(true);
    let body = ada("Ada");
    let resp = send(&f, Req::new("acme", body.clone()).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&resp), "temporarily_unavailable");
    assert!(
        !message(&resp).contains("test store"),
        "internal failures are not described to the caller"
    );
    assert!(f.drain().is_empty());

    let refresh = send(
        &f,
        Req::new("acme", event_based("employee.updated", "5")).signed(KEY),
    )
    .await;
    assert_eq!(refresh.status(), StatusCode::SERVICE_UNAVAILABLE);

    f.store.set_failing(false);
    let retry = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(f.drain().len(), 1);
}

#[tokio::test]
async fn a_missing_directory_secret_gets_a_5xx() {
    let f = fixture().await;
    let mut d = f.store.get_directory(&dir("acme")).await.unwrap().unwrap();
    d.secret_name = "no-such-secret".into();
    d.version = 2;
    f.store.put_directory(&d, Some(1)).await.unwrap();
    let resp = send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert!(resp.status().is_server_error(), "{}", resp.status());
}

#[tokio::test]
async fn when_the_bus_fails_after_the_store_write_the_change_is_published_exactly_once_later() {
    let mut f = fixture().await;
    f.bus.set_failing(true);
    let body = ada("Ada");
    let resp = send(&f, Req::new("acme", body.clone()).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(f.drain().is_empty());
    // The change is durable: the user is stored and its event waits in the outbox.
    assert_eq!(f.user("acme", "42").await.unwrap().version, 1);
    assert_eq!(
        f.store
            .pending_events(&dir("acme"), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // BambooHR retries the same delivery: it is not a duplicate (no receipt was
    // recorded), applies nothing new, and publishes what the outbox holds, once.
    f.bus.set_failing(false);
    let retry = send(&f, Req::new("acme", body.clone()).signed(KEY)).await;
    assert_eq!(retry.status(), StatusCode::OK, "{}", json_body(&retry));
    assert_eq!(json_body(&retry)["result"]["unchanged"], 1);
    let events = f.drain();
    assert_eq!(events.len(), 1, "published exactly once");
    assert_eq!(events[0].event_type, EventType::UserCreated);
    assert!(f
        .store
        .pending_events(&dir("acme"), 10)
        .await
        .unwrap()
        .is_empty());

    // Later deliveries and runs publish nothing more for it, and the user is one user.
    let again = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(again.status(), StatusCode::OK);
    sync_engine::reconcile::outbox::flush(&f.deps.engine, &dir("acme"))
        .await
        .unwrap();
    assert!(f.drain().is_empty());
    let users = f.store.list_users(&dir("acme")).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].version, 1);
}

#[tokio::test]
async fn a_change_left_by_a_failed_bus_is_published_by_the_next_webhook_once_it_has_settled() {
    let mut f = fixture().await;
    f.bus.set_failing(true);
    assert!(send(&f, Req::new("acme", ada("Ada")).signed(KEY))
        .await
        .status()
        .is_server_error());
    f.bus.set_failing(false);
    // Younger than a minute, it may belong to a request still in flight, which
    // publishes it itself; after that it is a leftover anyone publishes.
    f.clock
        .advance(sync_engine::reconcile::outbox::SETTLED_AFTER);
    let other = field_based(
        "7",
        "Created",
        json!({ "First Name": "Grace", "Work Email": "grace@example.com" }),
    );
    let resp = send(&f, Req::new("acme", other).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp)["result"]["eventsPublished"], 2);
    let objects: Vec<String> = f.drain().into_iter().map(|e| e.object_id).collect();
    assert_eq!(objects.len(), 2);
    assert_ne!(objects[0], objects[1], "one event for each user, in order");
}

#[tokio::test]
async fn concurrent_webhooks_each_publish_only_their_own_events() {
    let mut f = fixture().await;
    // Another request, still in flight, has written Ada and not yet published her.
    f.bus.set_failing(true);
    assert!(send(&f, Req::new("acme", ada("Ada")).signed(KEY))
        .await
        .status()
        .is_server_error());
    f.bus.set_failing(false);

    let other = field_based(
        "7",
        "Created",
        json!({ "First Name": "Grace", "Work Email": "grace@example.com" }),
    );
    let resp = send(&f, Req::new("acme", other).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(&resp)["result"]["eventsPublished"], 1);
    let published = f.drain();
    assert_eq!(published.len(), 1, "only Grace's event");
    assert_eq!(
        published[0].object_id,
        f.user("acme", "7").await.unwrap().id.to_string()
    );
    let pending = f.store.pending_events(&dir("acme"), 10).await.unwrap();
    assert_eq!(pending.len(), 1, "Ada's event is left to its own request");
    assert_eq!(
        pending[0].object_id,
        f.user("acme", "42").await.unwrap().id.to_string()
    );
}

#[tokio::test]
async fn a_change_left_by_a_failed_bus_is_published_once_by_the_poller_flush() {
    let mut f = fixture().await;
    f.bus.set_failing(true);
    assert!(send(&f, Req::new("acme", ada("Ada")).signed(KEY))
        .await
        .status()
        .is_server_error());
    f.bus.set_failing(false);
    // The poller's run of the directory starts with the same outbox flush.
    let flushed = sync_engine::reconcile::outbox::flush(&f.deps.engine, &dir("acme"))
        .await
        .unwrap();
    assert_eq!(flushed.published, 1);
    assert_eq!(f.drain().len(), 1);
    let retry = send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert!(
        f.drain().is_empty(),
        "the BambooHR retry publishes nothing again"
    );
}

// ---- duplicates -----------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_delivery_changes_nothing_the_second_time() {
    let mut f = fixture().await;
    let body = ada("Ada");
    let first = send(&f, Req::new("acme", body.clone()).signed(KEY)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(json_body(&second)["result"]["duplicate"], true);
    let events = f.drain();
    assert_eq!(
        events.len(),
        1,
        "a duplicate delivery emits no second event"
    );
    assert_eq!(events[0].event_type, EventType::UserCreated);
}

#[tokio::test]
async fn a_retry_of_an_older_delivery_after_a_newer_one_does_not_revert_the_user() {
    let mut f = fixture().await;
    let older = ada("Ada");
    send(&f, Req::new("acme", older.clone()).signed(KEY)).await;
    send(&f, Req::new("acme", ada("Augusta")).signed(KEY)).await;
    f.drain();
    // BambooHR re-signs its retry with a fresh timestamp; the body is the same.
    f.clock.advance(time::Duration::minutes(10));
    let ts = (NOW + 600).to_string();
    let retry = send(&f, Req::new("acme", older).signed_at(KEY, &ts)).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(json_body(&retry)["result"]["duplicate"], true);
    assert_eq!(
        f.user("acme", "42").await.unwrap().first_name.as_deref(),
        Some("Augusta")
    );
    assert!(f.drain().is_empty());
}

#[tokio::test]
async fn a_repeated_event_based_delivery_is_recognised() {
    let f = fixture().await;
    let body = event_based("employee.updated", "100");
    let first = send(&f, Req::new("acme", body.clone()).signed(KEY)).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let second = send(&f, Req::new("acme", body).signed(KEY)).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(json_body(&second)["result"]["duplicate"], true);
}

#[tokio::test]
async fn the_same_body_for_two_directories_is_not_a_duplicate() {
    let f = fixture().await;
    let body = ada("Ada");
    assert_eq!(
        send(&f, Req::new("acme", body.clone()).signed(KEY))
            .await
            .status(),
        StatusCode::OK
    );
    let other = send(&f, Req::new("globex", body).signed(OTHER_KEY)).await;
    assert_eq!(json_body(&other)["result"]["created"], 1);
}

// ---- URL-token mode -------------------------------------------------------------------

#[tokio::test]
async fn a_directory_that_opted_in_accepts_its_url_token_instead_of_a_signature() {
    let f = fixture().await;
    let resp = send(
        &f,
        Req::new("tokenco", ada("Ada")).query("token", URL_TOKEN),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    let wrong = send(&f, Req::new("tokenco", ada("Ada")).query("token", "guess")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&wrong), "unauthorized");
    let unsigned = send(&f, Req::new("tokenco", ada("Ada"))).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_url_token_is_refused_unless_the_directory_opted_in_and_has_a_token() {
    let f = fixture().await;
    // `acme` did not opt in; `tokenless` opted in but its secret holds no token.
    let not_allowed = send(&f, Req::new("acme", ada("Ada")).query("token", URL_TOKEN)).await;
    assert_eq!(not_allowed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&not_allowed), "unauthorized");
    let no_token = send(
        &f,
        Req::new("tokenless", ada("Ada")).query("token", URL_TOKEN),
    )
    .await;
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert!(f
        .store
        .list_users(&dir("tokenless"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_signature_is_still_checked_when_a_url_token_is_also_sent() {
    let f = fixture().await;
    let resp = send(
        &f,
        Req::new("tokenco", ada("Ada"))
            .query("token", URL_TOKEN)
            .signed("not-the-key"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
