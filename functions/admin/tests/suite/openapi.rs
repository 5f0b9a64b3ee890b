//! Every admin API route, read and write, answered by the handler over the embedded
//! adapters after a real connect, sync and delivery (BambooHR simulator, a local
//! receiving app), and every response, success or error, validated against
//! `openapi.yaml` by the OpenAPI validators (openapi-spec-validator,
//! openapi-schema-validator).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use serde_json::{json, Value};

use crate::common::{call, harness, request, CALLER};

/// A call: method, the concrete path, its OpenAPI path template, the query, the body,
/// the status wanted.
struct Call<'a> {
    method: &'a str,
    path: String,
    template: &'a str,
    query: Vec<(&'a str, &'a str)>,
    body: Option<Value>,
    want: u16,
}

fn get<'a>(path: String, template: &'a str, query: Vec<(&'a str, &'a str)>, want: u16) -> Call<'a> {
    Call {
        method: "GET",
        path,
        template,
        query,
        body: None,
        want,
    }
}

fn post<'a>(path: String, template: &'a str, body: Option<Value>, want: u16) -> Call<'a> {
    Call {
        method: "POST",
        path,
        template,
        query: vec![],
        body,
        want,
    }
}

/// Runs the validator script over `cases`; fails the test on its first finding.
fn validate(cases: &[Value]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"));
    let mut validator = std::process::Command::new(test_peers::python())
        .arg(format!("{dir}/tests/suite/validate_openapi.py"))
        .arg(format!("{dir}/openapi.yaml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the validator starts");
    validator
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(cases.to_vec()).to_string().as_bytes())
        .unwrap();
    let out = validator.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("validated {}", cases.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_what_the_openapi_document_describes() {
    let h = harness().await;
    let users = h.api.engine.store.list_users(&h.id).await.unwrap();
    let employee = users[0].employee_id.to_string();

    let base = "/admin/directories";
    let d = "/admin/directories/{directoryId}";
    let t = |suffix: &str| -> &'static str {
        Box::leak(format!("/admin/directories/{{directoryId}}{suffix}").into_boxed_str())
    };
    let redrive = "/admin/dead-letters/redrive";
    let calls: Vec<Call> = vec![
        // Writes first, so the reads below see what they did.
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"target": "app"})),
            200,
        ),
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"target": "app", "employeeId": employee})),
            200,
        ),
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"target": "nope"})),
            404,
        ),
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"employeeId": employee})),
            400,
        ),
        post(
            format!("{base}/acme/sync"),
            t("/sync"),
            Some(json!({"mode": "full"})),
            202,
        ),
        post(
            format!("{base}/acme/sync"),
            t("/sync"),
            Some(json!({"mode": "hourly"})),
            400,
        ),
        post(format!("{base}/nope/sync"), t("/sync"), None, 404),
        post(format!("{base}/acme/pause"), t("/pause"), None, 200),
        post(format!("{base}/acme/sync"), t("/sync"), None, 409),
        post(format!("{base}/acme/resume"), t("/resume"), None, 200),
        post(
            format!("{base}/acme/hold/release"),
            t("/hold/release"),
            None,
            409,
        ),
        post(
            format!("{base}/acme/hold/discard"),
            t("/hold/discard"),
            None,
            409,
        ),
        post(redrive.into(), redrive, Some(json!({"max": 10})), 200),
        post(redrive.into(), redrive, Some(json!({"max": 0})), 400),
        // Reads.
        get(base.into(), base, vec![], 200),
        get(format!("{base}/acme"), d, vec![], 200),
        get(format!("{base}/nope"), d, vec![], 404),
        get(format!("{base}/acme/status"), t("/status"), vec![], 200),
        get(format!("{base}/acme/users"), t("/users"), vec![], 200),
        get(
            format!("{base}/acme/users"),
            t("/users"),
            vec![("state", "active")],
            200,
        ),
        get(
            format!("{base}/acme/users/{employee}"),
            t("/users/{employeeId}"),
            vec![],
            200,
        ),
        get(
            format!("{base}/acme/users/999999"),
            t("/users/{employeeId}"),
            vec![],
            404,
        ),
        get(format!("{base}/acme/runs"), t("/runs"), vec![], 200),
        get(
            format!("{base}/acme/runs"),
            t("/runs"),
            vec![("limit", "0")],
            400,
        ),
        get(
            format!("{base}/acme/deliveries"),
            t("/deliveries"),
            vec![("target", "app"), ("status", "delivered")],
            200,
        ),
        get(
            format!("{base}/acme/deliveries"),
            t("/deliveries"),
            vec![("user", &employee)],
            200,
        ),
        get(
            format!("{base}/acme/deliveries"),
            t("/deliveries"),
            vec![("status", "lost")],
            400,
        ),
        get(format!("{base}/acme/audit"), t("/audit"), vec![], 200),
        get(format!("{base}/acme/evidence"), t("/evidence"), vec![], 200),
    ];
    let mut cases = Vec::new();
    let mut bodies = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        let req = request(c.method, &c.path, &c.query, c.body.clone(), Some(CALLER));
        let (status, body) = call(&h.api, req).await;
        assert_eq!(
            status, c.want,
            "{} {} {:?} {:?}: {body}",
            c.method, c.path, c.query, c.body
        );
        bodies.insert(i, body.clone());
        cases.push(
            json!({"path": c.template, "method": c.method.to_lowercase(),
                          "status": status, "body": body}),
        );
    }
    // What the routes say, beyond their shape.
    let at = |method: &str, path: &str, want: u16| {
        let i = calls
            .iter()
            .position(|c| c.method == method && c.path == path && c.want == want)
            .unwrap();
        &bodies[&i]
    };
    let replay = at("POST", &format!("{base}/acme/replay"), 200);
    assert_eq!(replay["users"], 5);
    assert_eq!(
        replay["delivered"], 5,
        "a re-push sends whatever the ledger says"
    );
    let status = at("GET", &format!("{base}/acme/status"), 200);
    assert_eq!(status["lastRun"]["id"], json!(h.run_id));
    assert_eq!(status["state"], "active", "paused, then resumed");
    let audit = at("GET", &format!("{base}/acme/audit"), 200)
        .as_array()
        .unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "resume",
            "pause",
            "sync",
            "replay",
            "replay",
            "sync",
            "target_change",
            "connect"
        ],
        "newest first: resume, pause, the sync request, two re-pushes, the run, the target, \
         the connect; refused requests and a redrive that moved nothing of acme left none"
    );
    let summary = at("GET", &format!("{base}/acme/users"), 200);
    assert!(
        summary[0].get("emails").is_none(),
        "the list carries no HR fields"
    );

    // Every documented route was exercised, with the method it documents.
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let exercised: BTreeSet<&str> = calls.iter().map(|c| c.template).collect();
    for template in &exercised {
        assert!(
            spec.contains(&format!("  {template}:")),
            "{template} undocumented"
        );
    }
    let documented = spec.lines().filter(|l| l.starts_with("  /admin/")).count();
    assert_eq!(documented, exercised.len());

    validate(&cases);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_name_the_problem_in_the_documented_error_shape() {
    let h = harness().await;
    let cases = [
        // A read route written to, a write route read.
        (
            "POST",
            "/admin/directories",
            None,
            Some(CALLER),
            405,
            "/admin/directories",
        ),
        (
            "GET",
            "/admin/directories/acme/pause",
            None,
            Some(CALLER),
            405,
            "/admin/directories/{directoryId}/pause",
        ),
        // Without the authorizer's identity nothing changes.
        (
            "POST",
            "/admin/directories/acme/pause",
            None,
            None,
            403,
            "/admin/directories/{directoryId}/pause",
        ),
        // Unknown fields and malformed JSON are refused whole.
        (
            "POST",
            "/admin/directories/acme/sync",
            Some(json!({"mode": "full", "force": true})),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/sync",
        ),
        (
            "POST",
            "/admin/directories/acme/pause",
            Some(json!({"reason": "x"})),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/pause",
        ),
        (
            "POST",
            "/admin/directories/acme/replay",
            Some(json!({"target": "app", "employeeId": "999999"})),
            Some(CALLER),
            404,
            "/admin/directories/{directoryId}/replay",
        ),
        (
            "POST",
            "/admin/dead-letters/redrive",
            Some(json!({"directoryId": "nope"})),
            Some(CALLER),
            404,
            "/admin/dead-letters/redrive",
        ),
    ];
    let mut validated = Vec::new();
    for (method, path, body, caller, want, template) in cases {
        let (status, body) = call(&h.api, request(method, path, &[], body, caller)).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "{method} {path} says why");
        if method == "POST" || status != 405 {
            validated.push(json!({"path": template, "method": method.to_lowercase(),
                                  "status": status, "body": body}));
        }
    }
    // Nothing above changed the directory or wrote an audit entry.
    let audit = h.api.engine.store.list_audit(&h.id, 50).await.unwrap();
    assert!(audit.iter().all(|e| e.action.as_str() != "pause"));
    let (status, body) = call(
        &h.api,
        request(
            "POST",
            "/admin/directories/acme/sync",
            &[],
            Some(json!("x")),
            Some(CALLER),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // 405s on read routes have no documented POST; the rest are validated.
    validated.retain(|c| c["path"] != "/admin/directories");
    validate(&validated);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_directory_is_described_with_its_revocation_date() {
    let h = harness().await;
    sync_engine::operate::revoke(&h.api.engine, h.scheduler.as_ref(), &h.id, CALLER)
        .await
        .unwrap();
    let mut cases = Vec::new();
    for (path, template) in [
        (
            "/admin/directories/acme",
            "/admin/directories/{directoryId}",
        ),
        ("/admin/directories", "/admin/directories"),
    ] {
        let (status, body) = call(&h.api, request("GET", path, &[], None, Some(CALLER))).await;
        assert_eq!(status, 200, "{body}");
        let directory = if body.is_array() { &body[0] } else { &body };
        assert_eq!(directory["state"], "revoked");
        assert!(directory["deletedAt"].is_string(), "{directory}");
        cases.push(json!({"path": template, "method": "get", "status": status, "body": body}));
    }
    validate(&cases);
}
