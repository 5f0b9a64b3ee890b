//! Unit tests of SCIM delivery against scripted providers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use domain::{DirectoryId, Email, EmailKind, EmployeeId, EventType};
use serde_json::json;
use time::OffsetDateTime;

use super::*;
use mapping::{to_scim_user, ScimOptions, SCIM_ENTERPRISE_SCHEMA as ENTERPRISE, SCIM_USER_SCHEMA};

/// What the scripted target saw: method, path with query, If-Match, body.
type Seen = (String, String, Option<String>, Option<Value>);
/// One scripted answer: status, headers, JSON body.
type Scripted = (u16, Vec<(&'static str, &'static str)>, Value);

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Scripted>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(State(script): State<Script>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let if_match = req
        .headers()
        .get("if-match")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).ok();
    script
        .seen
        .lock()
        .unwrap()
        .push((method, path, if_match, body));
    let (status, headers, body) = script
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .expect("the client sent more requests than the script expects");
    let mut resp = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        body.to_string(),
    )
        .into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

async fn scripted(answers: Vec<Scripted>) -> (String, Script) {
    let script = Script::default();
    script.answers.lock().unwrap().extend(answers);
    let app = Router::new().fallback(answer).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, script)
}

fn user(state: UserState, email: Option<&str>) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        DirectoryId::parse("acme").unwrap(),
        EmployeeId::parse("42").unwrap(),
        state,
    );
    u.first_name = Some("Ada".into());
    u.last_name = Some("Lovelace".into());
    if let Some(e) = email {
        u.emails = vec![Email {
            value: e.into(),
            kind: EmailKind::Work,
            primary: true,
        }];
    }
    u
}

fn event(u: &DirectoryUser) -> ChangeEvent {
    ChangeEvent::new(
        EventType::UserUpdated,
        u.directory_id.clone(),
        u.employee_id.as_str(),
        3,
        OffsetDateTime::UNIX_EPOCH,
        json!({ "employeeId": u.employee_id.as_str() }),
    )
}

async fn deliver(url: &str, u: &DirectoryUser) -> TargetOutcome {
    let id = TargetId::parse("scim").unwrap();
    let token = SecretString::from("tok");
    let target = ScimTarget {
        id: &id,
        base_url: url,
        token: Some(&token),
        settings: ScimSettings::default(),
    };
    target
        .deliver(
            &reqwest::Client::new(),
            &ports::SystemClock,
            &event(u),
            Some(u),
        )
        .await
}

fn list(resources: Vec<Value>) -> Value {
    json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": resources.len(), "Resources": resources })
}

#[test]
fn filter_values_are_json_strings_with_quotes_and_backslashes_escaped() {
    assert_eq!(eq_filter("userName", "ada"), r#"userName eq "ada""#);
    assert_eq!(
        eq_filter("userName", r#"a"b\c"#),
        r#"userName eq "a\"b\\c""#
    );
}

#[test]
fn a_patch_replaces_changed_owned_attributes_removes_cleared_ones_and_leaves_the_rest() {
    let current = json!({"id": "abc", "userName": "a.lovelace", "title": "Engineer",
                         "displayName": "Ada L", "nickName": "Ada", "active": true,
                         "meta": {"version": "W/\"1\""}, "groups": [{"value": "g1"}],
                         ENTERPRISE: {"department": "R&D", "costCenter": "42"}});
    let body = json!({"id": "abc", "userName": "someone.else", "title": "CTO", "active": true,
                      ENTERPRISE: {"department": "Research"}});
    let patch = patch_body(&changes(&current, &body, &Owned::default()));
    assert_eq!(
        patch["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:PatchOp"])
    );
    assert_eq!(
        patch["Operations"],
        json!([
            {"op": "remove", "path": "displayName"},
            {"op": "replace", "value": {"title": "CTO", ENTERPRISE: {"department": "Research"}}}
        ])
    );
}

#[test]
fn owned_attributes_name_core_attributes_and_enterprise_paths() {
    let owned = Owned::new(&["title", "userName", &format!("{ENTERPRISE}:manager")]);
    let current = json!({"title": "A", "displayName": "X", "userName": "u",
                         ENTERPRISE: {"manager": {"value": "m1"}, "department": "D"}});
    let body = json!({"title": "B", "userName": "v", ENTERPRISE: {}});
    let c = changes(&current, &body, &owned);
    assert_eq!(c.attribute_names(), ["manager", "title"]);
}

#[test]
fn a_replacement_keeps_the_accounts_id_username_and_unowned_attributes() {
    let existing = json!({"id": "abc", "userName": "a.lovelace", "meta": {"version": "W/\"1\""},
                          "nickName": "Ada", "title": "Engineer",
                          ENTERPRISE: {"costCenter": "42", "department": "R&D"}});
    let desired = json!({"userName": "ada", "externalId": "42", "active": true,
                         "schemas": [SCIM_USER_SCHEMA, ENTERPRISE],
                         ENTERPRISE: {"department": "Research"}});
    let body = replacement(&existing, &desired, &Owned::default());
    assert_eq!(body["id"], "abc");
    assert_eq!(body["userName"], "a.lovelace");
    assert_eq!(body["externalId"], "42");
    assert_eq!(body["nickName"], "Ada");
    assert!(
        body.get("title").is_none(),
        "an owned attribute we no longer render is cleared"
    );
    assert_eq!(
        body[ENTERPRISE],
        json!({"costCenter": "42", "department": "Research"})
    );
    assert!(body.get("meta").is_none());
}

#[tokio::test]
async fn a_412_refetches_once_and_retries_with_the_new_version() {
    let existing = json!({"id": "abc", "userName": "ada", "externalId": "42",
                          "meta": {"version": "W/\"1\""}});
    let fresh = json!({"id": "abc", "userName": "ada.l", "externalId": "42",
                       "meta": {"version": "W/\"2\""}});
    let (url, script) = scripted(vec![
        (200, vec![], list(vec![existing])),
        (412, vec![], json!({"status": "412"})),
        (200, vec![("etag", "W/\"2\"")], fresh.clone()),
        (200, vec![], fresh),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    assert_eq!(
        outcome,
        TargetOutcome::Delivered {
            status: 200,
            version: 3
        }
    );
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen[1].0, "PUT");
    assert_eq!(seen[1].2.as_deref(), Some("W/\"1\""));
    assert_eq!(seen[2].0, "GET");
    assert_eq!(seen[2].1, "/scim/v2/Users/abc");
    assert_eq!(seen[3].2.as_deref(), Some("W/\"2\""));
    // The refetched userName wins over ours and over the stale one.
    assert_eq!(seen[3].3.as_ref().unwrap()["userName"], "ada.l");
}

#[tokio::test]
async fn a_second_412_is_a_retryable_failure() {
    let existing =
        json!({"id": "abc", "userName": "ada", "externalId": "42", "meta": {"version": "W/\"1\""}});
    let (url, _script) = scripted(vec![
        (200, vec![], list(vec![existing.clone()])),
        (412, vec![], json!({})),
        (200, vec![], existing),
        (412, vec![], json!({})),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    let TargetOutcome::Failed { reason, retryable } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        reason.contains("PUT /Users/{id}: HTTP 412 again"),
        "{reason}"
    );
    assert!(retryable);
}

#[tokio::test]
async fn a_429_is_retryable_and_names_the_retry_after_it_asked_for() {
    let (url, _script) = scripted(vec![(
        429,
        vec![("retry-after", "30")],
        json!({"status": "429"}),
    )])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    assert_eq!(
        outcome,
        TargetOutcome::Failed {
            reason: "SCIM GET /Users?filter=externalId eq …: HTTP 429, retry after 30; retryable"
                .into(),
            retryable: true,
        }
    );
}

#[tokio::test]
async fn a_400_is_permanent_and_never_repeats_the_detail() {
    let (url, _script) = scripted(vec![
        (200, vec![], list(vec![])),
        (200, vec![], list(vec![])),
        (200, vec![], list(vec![])),
        (
            400,
            vec![],
            json!({"status": "400", "scimType": "invalidValue",
                             "detail": "ada@acme.test is not allowed"}),
        ),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    let TargetOutcome::Failed { reason, retryable } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(!retryable);
    assert!(
        reason.contains("POST /Users: HTTP 400 (invalidValue)"),
        "{reason}"
    );
    assert!(!reason.contains("ada"), "{reason}");
}

#[tokio::test]
async fn a_user_without_a_work_email_is_skipped_without_any_request() {
    let (url, script) = scripted(vec![]).await;
    let outcome = deliver(&url, &user(UserState::Active, None)).await;
    assert_eq!(
        outcome,
        TargetOutcome::Skipped {
            reason: MappingError::MissingWorkEmail.to_string()
        }
    );
    assert!(script.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_leaver_is_skipped_rather_than_created() {
    let (url, script) = scripted(vec![
        (200, vec![], list(vec![])),
        (200, vec![], list(vec![])),
        (200, vec![], list(vec![])),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Inactive, Some("ada@acme.test"))).await;
    assert!(
        matches!(outcome, TargetOutcome::Skipped { .. }),
        "{outcome:?}"
    );
    assert!(script.seen.lock().unwrap().iter().all(|s| s.0 == "GET"));
}

#[tokio::test]
async fn a_leaver_without_a_work_email_is_still_deactivated_by_employee_id() {
    let existing = json!({"id": "abc", "userName": "ada", "externalId": "42", "active": true});
    let (url, script) = scripted(vec![
        (200, vec![], list(vec![existing.clone()])),
        (200, vec![], existing),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Deleted, None)).await;
    assert_eq!(
        outcome,
        TargetOutcome::Delivered {
            status: 200,
            version: 3
        }
    );
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen[1].0, "PUT");
    assert_eq!(seen[1].3.as_ref().unwrap()["active"], false);
    assert_eq!(seen[1].3.as_ref().unwrap()["userName"], "ada");
}

#[tokio::test]
async fn an_account_matched_by_username_but_owned_by_another_employee_is_not_taken_over() {
    let other = json!({"id": "abc", "userName": "ada", "externalId": "77"});
    let (url, script) = scripted(vec![
        (200, vec![], list(vec![])),
        (200, vec![], list(vec![])),
        (200, vec![], list(vec![other])),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    assert!(
        matches!(
            outcome,
            TargetOutcome::Failed {
                retryable: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(script.seen.lock().unwrap().iter().all(|s| s.0 == "GET"));
}

#[tokio::test]
async fn an_account_that_already_holds_the_state_gets_no_write() {
    let u = user(UserState::Active, Some("ada@acme.test"));
    let mut same = to_scim_user(&u, &ScimOptions::default()).unwrap();
    same["id"] = json!("abc");
    same["meta"] = json!({"version": "W/\"4\""});
    let (url, script) = scripted(vec![(200, vec![], list(vec![same]))]).await;
    let outcome = deliver(&url, &u).await;
    assert_eq!(
        outcome,
        TargetOutcome::Delivered {
            status: 200,
            version: 3
        }
    );
    assert_eq!(script.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_provider_that_ignores_the_filter_does_not_make_us_adopt_a_stranger() {
    let stranger = json!({"id": "zzz", "userName": "someone", "externalId": "9"});
    let (url, script) = scripted(vec![
        (200, vec![], list(vec![stranger.clone()])),
        (200, vec![], list(vec![stranger.clone()])),
        (200, vec![], list(vec![stranger])),
        (201, vec![], json!({"id": "new"})),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    assert_eq!(
        outcome,
        TargetOutcome::Delivered {
            status: 201,
            version: 3
        }
    );
    assert_eq!(script.seen.lock().unwrap()[3].0, "POST");
}

#[tokio::test]
async fn a_provider_without_external_id_filtering_falls_back_to_the_username() {
    let existing = json!({"id": "abc", "userName": "ADA"});
    let (url, script) = scripted(vec![
        (
            400,
            vec![],
            json!({"status": "400", "scimType": "invalidFilter"}),
        ),
        (200, vec![], list(vec![existing.clone()])),
        (200, vec![], list(vec![existing])),
        (200, vec![], json!({"id": "abc"})),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    assert_eq!(
        outcome,
        TargetOutcome::Delivered {
            status: 200,
            version: 3
        }
    );
    let seen = script.seen.lock().unwrap().clone();
    assert!(seen[1].1.contains("emails.value"), "{}", seen[1].1);
    assert_eq!(seen[3].0, "PUT");
    assert_eq!(seen[3].3.as_ref().unwrap()["userName"], "ADA");
    assert_eq!(seen[3].3.as_ref().unwrap()["externalId"], "42");
}

#[tokio::test]
async fn an_account_removed_between_lookup_and_put_is_a_retryable_failure() {
    let existing = json!({"id": "abc", "userName": "ada", "externalId": "42"});
    let (url, _script) = scripted(vec![
        (200, vec![], list(vec![existing])),
        (404, vec![], json!({"status": "404"})),
    ])
    .await;
    let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
    assert!(
        matches!(
            outcome,
            TargetOutcome::Failed {
                retryable: true,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn with_delete_configured_a_leaver_is_deleted_with_if_match() {
    let existing = json!({"id": "abc", "userName": "ada", "externalId": "42",
                          "meta": {"version": "W/\"5\""}});
    let (url, script) = scripted(vec![
        (200, vec![], list(vec![existing])),
        (204, vec![], Value::Null),
    ])
    .await;
    let id = TargetId::parse("scim").unwrap();
    let token = SecretString::from("tok");
    let target = ScimTarget {
        id: &id,
        base_url: &url,
        token: Some(&token),
        settings: ScimSettings {
            deprovision: Deprovision::Delete,
            ..ScimSettings::default()
        },
    };
    let u = user(UserState::Deleted, Some("ada@acme.test"));
    let outcome = target
        .deliver(
            &reqwest::Client::new(),
            &ports::SystemClock,
            &event(&u),
            Some(&u),
        )
        .await;
    assert_eq!(
        outcome,
        TargetOutcome::Delivered {
            status: 204,
            version: 3
        }
    );
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen[1].0, "DELETE");
    assert_eq!(seen[1].1, "/scim/v2/Users/abc");
    assert_eq!(seen[1].2.as_deref(), Some("W/\"5\""));
}

#[tokio::test]
async fn a_target_without_a_bearer_token_fails_permanently() {
    let id = TargetId::parse("scim").unwrap();
    let target = ScimTarget {
        id: &id,
        base_url: "http://127.0.0.1:9/scim",
        token: None,
        settings: ScimSettings::default(),
    };
    let u = user(UserState::Active, Some("ada@acme.test"));
    let outcome = target
        .deliver(
            &reqwest::Client::new(),
            &ports::SystemClock,
            &event(&u),
            Some(&u),
        )
        .await;
    assert!(matches!(
        outcome,
        TargetOutcome::Failed {
            retryable: false,
            ..
        }
    ));
}
