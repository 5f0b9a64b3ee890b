//! Property test of the webhook handler: arbitrary bytes, header values, query tokens and
//! JSON shapes (random, and BambooHR-like with random values), signed correctly or not,
//! through the real handler. It must never panic and only answer the documented codes.

use crate::common;

use common::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

/// Every status the webhook documents (405 is not reachable: the method is fixed here).
const DOCUMENTED: [u16; 10] = [200, 202, 400, 401, 404, 413, 415, 429, 500, 503];

/// Keys BambooHR sends, so random objects often take the parser's real paths.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("employees".to_string()),
        Just("type".to_string()),
        Just("data".to_string()),
        Just("employeeId".to_string()),
        Just("id".to_string()),
        Just("action".to_string()),
        Just("fields".to_string()),
        Just("timestamp".to_string()),
        Just("First Name".to_string()),
        Just("Work Email".to_string()),
        Just("Status".to_string()),
        Just("Hire Date".to_string()),
        Just("Termination Date".to_string()),
        Just("workEmail".to_string()),
        "[ -~]{0,10}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,16}".prop_map(Value::String),
        Just(json!("2026-11-23T07:59:00Z")),
        Just(json!("2020-02-30")),
        Just(json!("Inactive")),
        Just(json!("employee.deleted")),
        Just(json!("employee.updated")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field-based and event-based payloads with arbitrary values where BambooHR puts them.
fn bamboo_like() -> impl Strategy<Value = Value> {
    let entry = (
        leaf(),
        prop_oneof![
            Just(json!("Created")),
            Just(json!("Updated")),
            Just(json!("Deleted")),
            leaf()
        ],
        btree_map(key(), leaf(), 0..8),
    )
        .prop_map(|(id, action, fields)| {
            json!({ "id": id, "action": action, "timestamp": "2026-11-23T07:59:00Z",
                    "fields": Value::Object(fields.into_iter().collect()) })
        });
    prop_oneof![
        vec(entry, 0..4).prop_map(|e| json!({ "employees": e })),
        (leaf(), leaf()).prop_map(|(kind, id)| json!({
            "type": kind, "timestamp": "2026-11-23T07:59:30Z",
            "data": { "companyId": "1", "employeeId": id }
        })),
    ]
}

#[derive(Debug, Clone)]
enum Signature {
    Correct,
    Absent,
    Text(String),
}

#[derive(Debug, Clone)]
struct Case {
    directory: String,
    body: Vec<u8>,
    content_type: Option<String>,
    signature: Signature,
    timestamp: Option<String>,
    token: Option<String>,
}

fn case() -> impl Strategy<Value = Case> {
    let directory = prop_oneof![
        Just("acme".to_string()),
        Just("tokenco".to_string()),
        Just("paused-co".to_string()),
        Just("revoked-co".to_string()),
        "[a-zA-Z0-9_-]{1,12}",
    ];
    let body = prop_oneof![
        vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        bamboo_like().prop_map(|v| v.to_string().into_bytes()),
    ];
    let content_type = prop_oneof![
        Just(Some("application/json".to_string())),
        Just(None),
        proptest::option::of("[ -~]{0,30}"),
    ];
    let signature = prop_oneof![
        Just(Signature::Correct),
        Just(Signature::Absent),
        "[0-9a-f]{0,64}".prop_map(Signature::Text),
        "[ -~]{0,40}".prop_map(Signature::Text),
    ];
    let timestamp = prop_oneof![
        Just(Some(NOW.to_string())),
        Just(None),
        any::<i64>().prop_map(|t| Some(t.to_string())),
        proptest::option::of("[ -~]{0,30}"),
    ];
    let token = prop_oneof![
        Just(None),
        Just(Some(URL_TOKEN.to_string())),
        proptest::option::of("[a-zA-Z0-9]{0,20}"),
    ];
    (directory, body, content_type, signature, timestamp, token).prop_map(
        |(directory, body, content_type, signature, timestamp, token)| Case {
            directory,
            body,
            content_type,
            signature,
            timestamp,
            token,
        },
    )
}

impl Case {
    fn request(self) -> Req {
        let mut req =
            Req::new(&self.directory, self.body).content_type(self.content_type.as_deref());
        req = match (self.signature, &self.timestamp) {
            (Signature::Correct, Some(ts)) => req.signed_at(KEY, ts),
            (Signature::Text(s), _) => req.header("x-bamboohr-signature", s.trim()),
            _ => req,
        };
        if let Some(ts) = &self.timestamp {
            req = req.header("x-bamboohr-timestamp", ts.trim());
        }
        if let Some(t) = self.token {
            req = req.query("token", &t);
        }
        req
    }
}

#[test]
fn arbitrary_requests_never_panic_and_get_only_documented_status_codes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let f = rt.block_on(fixture());
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    // A fixed RNG: the coverage check below must not depend on the draw (a random
    // draw missed a status class once); PROPTEST_CASES raises the count by hand.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(768);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(&case(), |c| {
            let resp = rt.block_on(send(&f, c.request()));
            let status = resp.status().as_u16();
            seen.borrow_mut().insert(status);
            prop_assert!(DOCUMENTED.contains(&status), "undocumented status {status}");
            let body = json_body(&resp);
            if status >= 400 {
                prop_assert!(body["error"]["code"].is_string(), "error body {body}");
            } else {
                prop_assert_eq!(&body["accepted"], &Value::Bool(true));
            }
            Ok(())
        })
        .unwrap();
    // The generator must reach past authentication into parsing and applying, or the
    // property says little.
    let seen = seen.into_inner();
    for expected in [200, 400, 401, 415] {
        assert!(seen.contains(&expected), "no case got {expected}: {seen:?}");
    }
}
