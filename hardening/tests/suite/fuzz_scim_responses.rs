//! Fuzzing of everything read from a SCIM 2.0 service provider: `ListResponse`s of
//! users and groups, single resources, `/ServiceProviderConfig`, SCIM error bodies
//! (near-valid: documented answers with random parts replaced or removed), arbitrary
//! JSON and bytes, under arbitrary statuses, ETags and Retry-After headers. A local axum
//! server plays the provider; the real engine dispatches user and group events to it
//! (`sync_engine::deliver::dispatch::dispatch`, with the retry queue, as the dispatcher does).
//!
//! Properties: nothing panics; dispatch returns a report with one outcome for the
//! target; a failure's reason never repeats a value from the provider's answers (SCIM
//! `detail` texts and resources may quote HR data); a retryable failure is handed to
//! the retry queue, never lost.
//!
//! 256 cases by default; `PROPTEST_CASES=100000` for a long run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use domain::{
    Directory, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, EventType, Group,
    ScimConfig, ScimDeprovision, ScimUserName, Target, TargetFilter, TargetId, TargetKind,
    UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, InProcessRetryQueue, SqliteStore};
use ports::{
    DirectorySecrets, FixedClock, GroupWrite, SecretStore, Store, TargetSecrets, UserWrite,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use secrecy::SecretString;
use serde_json::{json, Value};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::reconcile::groups::{group_event, membership_events};
use sync_engine::Engine;
use time::OffsetDateTime;

/// Planted in every string the provider may echo: no failure reason may repeat it.
const CANARY: &str = "Quinn-Canary-4409 <q.canary@example.test>";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// One scripted answer of the provider.
#[derive(Debug, Clone)]
struct Scripted {
    status: u16,
    etag: Option<String>,
    retry_after: Option<String>,
    body: Vec<u8>,
}

type Script = Arc<Mutex<VecDeque<Scripted>>>;

async fn answer(State(script): State<Script>) -> Response {
    // Past the script, the provider is down: the engine must still end cleanly.
    let a = script.lock().unwrap().pop_front().unwrap_or(Scripted {
        status: 503,
        etag: None,
        retry_after: None,
        body: Vec::new(),
    });
    let mut resp = (
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
        a.body,
    )
        .into_response();
    let headers = resp.headers_mut();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/scim+json"),
    );
    for (name, value) in [("etag", a.etag), ("retry-after", a.retry_after)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    resp
}

fn user_resource() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": "u-1",
        "externalId": "42",
        "userName": "ada.lovelace",
        "name": {"givenName": CANARY, "familyName": "Lovelace"},
        "displayName": CANARY,
        "emails": [{"value": "ada.lovelace@acme.test", "type": "work", "primary": true}],
        "active": true,
        "meta": {"resourceType": "User", "version": "W/\"3\""}
    })
}

fn group_resource() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g-1",
        "externalId": "grp",
        "displayName": "R&D",
        "members": [{"value": "u-1", "display": CANARY}],
        "meta": {"resourceType": "Group", "version": "W/\"1\""}
    })
}

/// Documented answers a provider gives, to be mutated.
fn templates() -> Vec<Value> {
    vec![
        json!({"schemas": [LIST_SCHEMA], "totalResults": 1, "itemsPerPage": 1, "startIndex": 1,
               "Resources": [user_resource()]}),
        json!({"schemas": [LIST_SCHEMA], "totalResults": 0, "Resources": []}),
        json!({"schemas": [LIST_SCHEMA], "totalResults": 2,
               "Resources": [user_resource(), user_resource()]}),
        user_resource(),
        json!({"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [group_resource()]}),
        group_resource(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
               "patch": {"supported": true}, "filter": {"supported": true, "maxResults": 100},
               "etag": {"supported": true}}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
               "status": "409", "scimType": "uniqueness", "detail": CANARY}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
               "status": "400", "scimType": "invalidFilter", "detail": CANARY}),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,10}".prop_map(Value::String),
        Just(json!(CANARY)),
        Just(json!("42")),
        Just(json!("ada.lovelace")),
        Just(json!("ADA.LOVELACE")),
        Just(json!("u-1")),
        Just(json!("grp")),
        Just(json!("")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    proptest::sample::select(vec![
                        "id",
                        "externalId",
                        "userName",
                        "Resources",
                        "meta",
                        "version",
                        "active",
                        "members",
                        "value",
                        "displayName",
                        "patch",
                        "supported",
                        "scimType",
                        "detail",
                    ])
                    .prop_map(str::to_string),
                    "[a-zA-Z]{0,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the node numbered `at` (pre-order, modulo the node count) by `with`.
fn replace(mut doc: Value, at: usize, with: Value) -> Value {
    let all = hardening::json_pointers(&doc);
    if let Some(slot) = doc.pointer_mut(&all[at % all.len()]) {
        *slot = with;
    }
    doc
}

fn scripted() -> impl Strategy<Value = Scripted> {
    let status = prop_oneof![
        6 => Just(200u16),
        1 => Just(201u16),
        1 => Just(204u16),
        3 => proptest::sample::select(vec![
            304u16, 400, 401, 403, 404, 409, 410, 412, 413, 429, 500, 501, 502, 503
        ]),
        1 => 200u16..600,
    ];
    let body = prop_oneof![
        1 => vec(any::<u8>(), 0..128),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        5 => (proptest::sample::select(templates()), vec((any::<usize>(), json_value()), 0..3))
            .prop_map(|(t, changes)| {
                changes
                    .into_iter()
                    .fold(t, |doc, (at, with)| replace(doc, at, with))
                    .to_string()
                    .into_bytes()
            }),
    ];
    let etag = proptest::option::of(prop_oneof![Just("W/\"4\"".to_string()), "[ -~]{0,12}"]);
    let retry_after = prop_oneof![
        4 => Just(None),
        1 => proptest::sample::select(vec![
            "0", "5", "99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT", "Tue, 01 Jan 1980 00:00:00 GMT", "later",
        ])
        .prop_map(|s| Some(s.to_string())),
    ];
    (status, etag, retry_after, body).prop_map(|(status, etag, retry_after, body)| Scripted {
        status,
        etag,
        retry_after,
        body,
    })
}

/// Which event is dispatched.
#[derive(Debug, Clone, Copy)]
enum Kind {
    UserActive,
    UserInactive,
    UserDeleted,
    UserWithoutEmail,
    GroupCreated,
    MemberAdded,
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    push_groups: bool,
    delete_leavers: bool,
    user_name: ScimUserName,
    answers: Vec<Scripted>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::sample::select(vec![
            Kind::UserActive,
            Kind::UserInactive,
            Kind::UserDeleted,
            Kind::UserWithoutEmail,
            Kind::GroupCreated,
            Kind::MemberAdded,
        ]),
        any::<bool>(),
        any::<bool>(),
        proptest::sample::select(vec![
            ScimUserName::EmailLocalPart,
            ScimUserName::FullEmail,
            ScimUserName::EmployeeNumber,
        ]),
        vec(scripted(), 0..8),
    )
        .prop_map(
            |(kind, push_groups, delete_leavers, user_name, answers)| Case {
                kind,
                push_groups,
                delete_leavers,
                user_name,
                answers,
            },
        )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_420_800).unwrap()
}

/// Sets up a fresh store for one case and returns the engine, its retry queue and
/// the event to dispatch.
async fn setup(
    case: &Case,
    base_url: String,
    secrets: Arc<FileSecrets>,
) -> (Engine, Arc<InProcessRetryQueue>, domain::ChangeEvent) {
    let store = Arc::new(SqliteStore::in_memory());
    let dir = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.version = 1;
    d.targets = vec![Target {
        id: TargetId::parse("scim").unwrap(),
        kind: TargetKind::Scim {
            base_url,
            scim: ScimConfig {
                user_name: case.user_name,
                deprovision: if case.delete_leavers {
                    ScimDeprovision::Delete
                } else {
                    ScimDeprovision::Deactivate
                },
                pending_active: false,
                push_groups: case.push_groups,
                ..ScimConfig::default()
            },
        },
        filter: TargetFilter::default(),
        enabled: true,
    }];
    store.put_directory(&d, None).await.unwrap();

    let mut group = Group::new(dir.clone(), "department", "R&D");
    group.version = 1;
    group.refresh_fingerprint();
    ports::SyncStore::write_group(
        store.as_ref(),
        &GroupWrite {
            group: group.clone(),
            expected_version: None,
            events: vec![],
        },
    )
    .await
    .unwrap();

    let state = match case.kind {
        Kind::UserInactive => UserState::Inactive,
        Kind::UserDeleted => UserState::Deleted,
        _ => UserState::Active,
    };
    let mut user = DirectoryUser::new(dir.clone(), EmployeeId::parse("42").unwrap(), state);
    user.first_name = Some("Ada".into());
    user.last_name = Some("Lovelace".into());
    user.employee_number = Some("E42".into());
    if !matches!(case.kind, Kind::UserWithoutEmail) {
        user.emails = vec![Email {
            value: "ada.lovelace@acme.test".into(),
            kind: EmailKind::Work,
            primary: true,
        }];
    }
    user.group_ids = vec![group.id.clone()];
    user.version = 1;
    user.fingerprint = user.compute_fingerprint();
    let user_event = domain::ChangeEvent::for_user_write(None, &user, now());
    store
        .write_user(&UserWrite {
            user: user.clone(),
            expected_version: None,
            events: vec![user_event.clone()],
        })
        .await
        .unwrap();
    let event = match case.kind {
        Kind::GroupCreated => group_event(EventType::GroupCreated, &group, now()),
        Kind::MemberAdded => membership_events(None, &user, now())
            .into_iter()
            .next()
            .expect("the user is in one group"),
        _ => user_event,
    };

    let clock = Arc::new(FixedClock::new(now()));
    let queue = Arc::new(InProcessRetryQueue::new(clock.clone()));
    let (bus, _events) = InProcessBus::new();
    let engine = Engine::new(store, secrets, Arc::new(bus), clock).with_retry_queue(queue.clone());
    (engine, queue, event)
}

#[test]
fn arbitrary_scim_provider_answers_end_in_a_clean_outcome_and_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let script: Script = Arc::default();
    let server = rt.block_on(async {
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(FileSecrets::open(dir.path().join("secrets.json")));
    rt.block_on(async {
        let mut targets = BTreeMap::new();
        targets.insert(
            "scim".to_string(),
            TargetSecrets {
                bearer_token: Some(SecretString::from("fuzz-scim-bearer")),
                ..Default::default()
            },
        );
        secrets
            .put(
                "acme",
                &DirectorySecrets {
                    targets,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    });
    let counter = AtomicUsize::new(0);
    let seen = Mutex::new((0u32, 0u32, 0u32));
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |c| {
            // A base URL per case: the provider's capabilities are cached per base URL.
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let base = format!("{server}/c{n}/scim/v2");
            *script.lock().unwrap() = c.answers.iter().cloned().collect();
            let (engine, queue, event) = rt.block_on(setup(&c, base, secrets.clone()));
            let report = rt.block_on(dispatch(&engine, &event));
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    prop_assert!(!e.to_string().contains(CANARY), "{e}");
                    return Err(TestCaseError::fail(format!("dispatch failed: {e}")));
                }
            };
            prop_assert_eq!(report.targets.len(), 1);
            let outcome = &report.targets[0].1;
            let mut s = seen.lock().unwrap();
            match outcome {
                TargetOutcome::Delivered { .. } => s.0 += 1,
                TargetOutcome::Skipped { reason } => {
                    s.1 += 1;
                    prop_assert!(!reason.contains("Quinn"), "{reason}");
                }
                TargetOutcome::Failed { reason, retryable } => {
                    s.2 += 1;
                    prop_assert!(!reason.contains("Quinn"), "{reason}");
                    // With a retry queue, a failure a retry may fix is always handed
                    // over (Scheduled), never left failed.
                    prop_assert!(
                        !retryable,
                        "a retryable failure was not scheduled: {reason}"
                    );
                }
                TargetOutcome::Scheduled { reason, .. } => {
                    s.2 += 1;
                    prop_assert!(!reason.contains("Quinn"), "{reason}");
                    prop_assert_eq!(queue.waiting(), 1, "a scheduled retry is queued");
                }
            }
            Ok(())
        })
        .unwrap();
    let (delivered, skipped, failed) = seen.into_inner().unwrap();
    assert!(
        delivered > 0 && failed > 0,
        "delivered {delivered}, skipped {skipped}, failed {failed}"
    );
}
