//! Fuzzing of everything the BambooHR client reads: arbitrary bytes, arbitrary JSON and
//! near-valid answers (a documented answer with random parts replaced or removed) of
//! every endpoint the client calls (datasets, employee list, changed ids, one employee,
//! field and list metadata, the directory, the webhooks API), with arbitrary statuses
//! and Retry-After headers, served by a local axum server to the real client.
//!
//! Properties: the client never panics; a call returns its typed value or a typed
//! [`BambooError`] matching the status; an error about a 2xx body never quotes an
//! employee value from it; a value returned holds a non-empty id.
//!
//! 256 cases by default; `PROPTEST_CASES=100000` for a long run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bamboohr_client::{Auth, BambooClient, BambooError, ClientOptions, NewWebhook, SecretString};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

/// A value planted in employee fields: an error must never repeat it.
const CANARY: &str = "Zelda-Canary-7731@example.test";

/// What the server answers to every request of one case.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

type Shared = Arc<Mutex<Answer>>;

async fn serve(state: axum::extract::State<Shared>) -> Response {
    let a = state.lock().unwrap().clone();
    let mut resp = (
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
        a.body,
    )
        .into_response();
    resp.headers_mut().insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = a.retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut()
            .insert(HeaderName::from_static("retry-after"), v);
    }
    resp
}

/// The operations of the client, each with a documented answer to start from.
#[derive(Debug, Clone, Copy)]
enum Op {
    Dataset,
    ByIds,
    ListPage,
    Changed,
    Employee,
    MetaFields,
    ListFields,
    Directory,
    CreateWebhook,
    ListWebhooks,
    DeleteWebhook,
}

const OPS: [Op; 11] = [
    Op::Dataset,
    Op::ByIds,
    Op::ListPage,
    Op::Changed,
    Op::Employee,
    Op::MetaFields,
    Op::ListFields,
    Op::Directory,
    Op::CreateWebhook,
    Op::ListWebhooks,
    Op::DeleteWebhook,
];

impl Op {
    /// A valid answer of this endpoint, per BambooHR's OpenAPI, with the canary in
    /// employee values.
    fn template(self) -> Value {
        match self {
            Op::Dataset => json!({
                "data": [
                    {"fields": {"employeeId": "7", "firstName": CANARY, "workEmail": CANARY},
                     "_restrictedFields": ["homeEmail"]},
                    {"fields": {"employeeId": 8, "lastName": CANARY, "_restrictedFields": null}}
                ],
                "links": {"next": null, "prev": null},
                "meta": {"page": 1, "pageSize": 100, "totalPages": 1, "totalItems": 2}
            }),
            Op::ByIds | Op::ListPage => json!({
                "data": [{"employeeId": "7", "firstName": CANARY, "_restrictedFields": ["ssn"]}],
                "meta": {"page": {"nextCursor": null}}
            }),
            Op::Changed => json!({
                "employees": {
                    "7": {"id": "7", "action": "Updated", "lastChanged": "2026-11-23T07:59:00+00:00"},
                    "8": {"action": "Deleted"}
                },
                "latest": "2026-11-23T07:59:00+00:00"
            }),
            Op::Employee => json!({"id": "7", "firstName": CANARY, "jobTitle": CANARY}),
            Op::MetaFields => json!([
                {"id": 1, "name": "First Name", "type": "text", "alias": "firstName"},
                {"id": "4001", "name": "Litmos Access", "type": "checkbox", "deprecated": false}
            ]),
            Op::ListFields => json!([
                {"fieldId": 4, "name": "Department", "alias": "department", "multiple": "no",
                 "options": [{"id": 1, "name": "Sales", "archived": "no"}]}
            ]),
            Op::Directory => json!({
                "fields": [{"id": "displayName", "type": "text", "name": "Display name"}],
                "employees": [{"id": "7", "displayName": CANARY}]
            }),
            Op::CreateWebhook => json!({"id": 12, "privateKey": CANARY, "name": "sync"}),
            Op::ListWebhooks => {
                json!({"webhooks": [{"id": 12, "name": "sync", "url": "https://h.test/x"}]})
            }
            Op::DeleteWebhook => json!({}),
        }
    }

    /// Calls the operation; `Ok` carries the ids the client returned.
    async fn call(self, c: &BambooClient) -> Result<Vec<String>, BambooError> {
        let fields = ["firstName", "workEmail"];
        match self {
            Op::Dataset => c
                .dataset_page(&fields, 1, 100)
                .await
                .map(|p| p.employees.into_iter().map(|e| e.id).collect()),
            Op::ByIds => c
                .employees_by_ids(&["7".to_string(), "8".to_string()], &fields)
                .await
                .map(|e| e.into_iter().map(|e| e.id).collect()),
            Op::ListPage => c
                .list_employees_page(&fields, None, 100)
                .await
                .map(|p| p.employees.into_iter().map(|e| e.id).collect()),
            Op::Changed => c
                .changed_since(time::OffsetDateTime::UNIX_EPOCH)
                .await
                .map(|e| e.into_iter().map(|e| e.id).collect()),
            Op::Employee => c.get_employee("7", &fields).await.map(|e| vec![e.id]),
            Op::MetaFields => c
                .meta_fields()
                .await
                .map(|f| f.into_iter().map(|f| f.id).collect()),
            Op::ListFields => c
                .list_fields()
                .await
                .map(|f| f.into_iter().map(|f| f.field_id).collect()),
            Op::Directory => c
                .directory()
                .await
                .map(|e| e.into_iter().map(|e| e.id).collect()),
            Op::CreateWebhook => c
                .create_webhook(&NewWebhook {
                    name: "sync".into(),
                    url: "https://h.test/x".into(),
                    events: vec!["employee.updated".into()],
                    monitor_fields: vec![],
                    post_fields: vec![],
                })
                .await
                .map(|w| vec![w.id]),
            Op::ListWebhooks => c
                .list_webhooks()
                .await
                .map(|w| w.into_iter().map(|w| w.id).collect()),
            Op::DeleteWebhook => c.delete_webhook("12").await.map(|()| vec!["12".into()]),
        }
    }

    /// Whether an `Ok` may carry an id that is empty (BambooHR's metadata and webhook
    /// ids are taken as sent; employee ids must never be empty).
    fn ids_must_be_non_empty(self) -> bool {
        matches!(
            self,
            Op::Dataset | Op::ByIds | Op::ListPage | Op::Changed | Op::Employee | Op::Directory
        )
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("")),
        Just(json!("  ")),
        Just(json!(CANARY)),
        Just(json!("Inserted")),
        Just(json!("deleted")),
        Just(json!("2026-02-30T25:00:00Z")),
        Just(json!(4_294_967_296u64)),
        Just(json!(-1)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z_]{0,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change to a document: replace a node, or remove it from its parent.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
}

fn mutate(mut doc: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let all = hardening::json_pointers(&doc);
        let (index, replacement) = match m {
            Mutation::Replace(i, v) => (*i, Some(v.clone())),
            Mutation::Remove(i) => (*i, None),
        };
        let target = &all[index % all.len()];
        match replacement {
            Some(v) => match doc.pointer_mut(target) {
                Some(slot) => *slot = v,
                None => unreachable!("pointers() lists existing nodes"),
            },
            None => {
                let Some((parent, last)) = target.rsplit_once('/') else {
                    continue; // the root itself cannot be removed
                };
                let last = last.replace("~1", "/").replace("~0", "~");
                match doc.pointer_mut(parent) {
                    Some(Value::Object(m)) => {
                        m.remove(&last);
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    doc
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    op: Op,
    answer: Answer,
}

fn case() -> impl Strategy<Value = Case> {
    let op = proptest::sample::select(OPS.to_vec());
    let status = prop_oneof![
        6 => Just(200u16),
        1 => Just(201u16),
        1 => Just(204u16),
        2 => proptest::sample::select(vec![
            301u16, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504
        ]),
        1 => 200u16..600,
    ];
    let retry_after = prop_oneof![
        3 => Just(None),
        1 => proptest::sample::select(vec![
            "0", "1", "120", "99999999999999999999999", "-3", "soon",
            "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Sun, 99 Zzz 2026 99:99:99 GMT",
        ])
        .prop_map(|s| Some(s.to_string())),
        1 => proptest::option::of("[ -~]{0,30}"),
    ];
    (op, status, retry_after, any::<u8>(), vec(mutation(), 0..4)).prop_flat_map(
        |(op, status, retry_after, kind, mutations)| {
            let body = match kind % 8 {
                // Raw bytes and arbitrary JSON now and then; mostly near-valid answers.
                0 => vec(any::<u8>(), 0..256).boxed(),
                1 => json_value()
                    .prop_map(|v| v.to_string().into_bytes())
                    .boxed(),
                2 => {
                    // A valid answer cut short.
                    let full = op.template().to_string().into_bytes();
                    (0..full.len())
                        .prop_map(move |n| full[..n].to_vec())
                        .boxed()
                }
                _ => Just(mutate(op.template(), &mutations).to_string().into_bytes()).boxed(),
            };
            body.prop_map(move |body| Case {
                op,
                answer: Answer {
                    status,
                    retry_after: retry_after.clone(),
                    body,
                },
            })
        },
    )
}

/// The error kinds an answer with this status may produce.
fn error_fits_status(status: u16, err: &BambooError) -> bool {
    match err {
        BambooError::Unauthorized => status == 401,
        BambooError::Forbidden { .. } => status == 403,
        BambooError::NotFound { .. } => status == 404,
        BambooError::RateLimited { .. } => status == 429,
        BambooError::Unavailable { .. } => status >= 500 || status == 408,
        BambooError::BudgetExceeded { last, .. } => error_fits_status(status, last),
        BambooError::InvalidRequest {
            status: Some(s), ..
        } => *s == status && (400..500).contains(&status),
        BambooError::BadResponse { .. } => (200..300).contains(&status) || status >= 300,
        _ => false,
    }
}

#[test]
fn arbitrary_bamboohr_answers_give_typed_results_and_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared: Shared = Arc::new(Mutex::new(Answer {
        status: 200,
        retry_after: None,
        body: Vec::new(),
    }));
    let base = rt.block_on(async {
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    // Two attempts with millisecond backoff exercise the retry path; the short budget
    // makes any Retry-After of a second or more end the call at once.
    let client = BambooClient::new(
        &base,
        Auth::ApiKey(SecretString::from("fuzz-api-key")),
        ClientOptions {
            timeout: Duration::from_secs(5),
            max_attempts: 2,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            budget: Duration::from_millis(500),
            max_concurrency: 4,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let outcomes = std::cell::RefCell::new((0u32, 0u32));
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |c| {
            *shared.lock().unwrap() = c.answer.clone();
            let result = rt.block_on(c.op.call(&client));
            match result {
                Ok(ids) => {
                    outcomes.borrow_mut().0 += 1;
                    prop_assert!(
                        (200..300).contains(&c.answer.status)
                            || (c.answer.status == 404 && matches!(c.op, Op::Directory)),
                        "a {} answer was taken as success",
                        c.answer.status
                    );
                    if c.op.ids_must_be_non_empty() {
                        prop_assert!(ids.iter().all(|id| !id.trim().is_empty()), "{ids:?}");
                    }
                }
                Err(err) => {
                    outcomes.borrow_mut().1 += 1;
                    prop_assert!(
                        error_fits_status(c.answer.status, &err),
                        "status {} gave {err:?}",
                        c.answer.status
                    );
                    let text = err.to_string();
                    prop_assert!(!text.contains(CANARY), "the error quotes the body: {text}");
                }
            }
            Ok(())
        })
        .unwrap();
    // Near-valid answers must reach both outcomes, or the generator says little.
    let (ok, err) = outcomes.into_inner();
    assert!(ok > 0 && err > 0, "ok {ok}, errors {err}");
}
