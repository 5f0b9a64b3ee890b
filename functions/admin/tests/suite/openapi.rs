//! Every admin API route, answered by the handler over the embedded adapters after a
//! real connect, sync and delivery (BambooHR simulator, a local receiving app), and
//! every response validated against `openapi.yaml` by the OpenAPI validators
//! (openapi-spec-validator, openapi-schema-validator).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bamboohr_simulator::{SimConfig, Simulator};
use domain::{DirectoryId, SyncMode, SyncRequest, Target, TargetFilter, TargetId, TargetKind};
use embedded_adapters::{FileSecrets, FileStore, InProcessBus, InProcessScheduler};
use lambda_http::{Body, RequestExt};
use ports::{SystemClock, TargetSecrets};
use secrecy::SecretString;
use serde_json::{json, Value};
use sync_engine::admin::{self, ConnectRequest, Credential, TargetSpec};
use sync_engine::run::{run_sync, RunOptions};
use sync_engine::Engine;

/// A call: the concrete path, its OpenAPI path template, the query, the status wanted.
type Call<'a> = (String, &'a str, Vec<(&'a str, &'a str)>, u16);

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

async fn get(engine: &Engine, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let uri = if query.is_empty() {
        path.to_string()
    } else {
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{path}?{}", q.join("&"))
    };
    let params: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = lambda_http::http::Request::builder()
        .method("GET")
        .uri(uri)
        .body(Body::Empty)
        .unwrap()
        .with_query_string_parameters(params);
    let resp = ::admin::handler(engine, req).await.unwrap();
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(&t[..]).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_what_the_openapi_document_describes() {
    let sim = Simulator::generate(SimConfig {
        api_key: "k".into(),
        employees: 5,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (bus, _events) = InProcessBus::new();
    let engine = Engine::new(
        Arc::new(FileStore::in_memory()),
        Arc::new(FileSecrets::open(tmp.path().join("secrets.json"))),
        Arc::new(bus),
        Arc::new(SystemClock),
    );
    let scheduler = InProcessScheduler::new();
    let id = DirectoryId::parse("acme").unwrap();
    admin::connect(
        &engine,
        &scheduler,
        ConnectRequest {
            directory_id: id.clone(),
            subdomain: "acme".into(),
            base_url: Some(server.base_url.clone()),
            credential: Credential::ApiKey(SecretString::from("k")),
            time_zone: None,
            register_webhook_at: None,
        },
        "arn:aws:iam::123456789012:user/ops",
    )
    .await
    .unwrap();
    admin::add_target(
        &engine,
        &id,
        TargetSpec {
            target: Target {
                id: TargetId::parse("app").unwrap(),
                kind: TargetKind::AppWebhook {
                    url: receiver().await,
                },
                filter: TargetFilter::default(),
                enabled: true,
            },
            secrets: Some(TargetSecrets {
                signing_secrets: vec![SecretString::from(WHSEC)],
                ..TargetSecrets::default()
            }),
        },
        "ops",
    )
    .await
    .unwrap();
    let run = run_sync(
        &engine,
        &SyncRequest {
            directory_id: id.clone(),
            mode: SyncMode::Full,
        },
        &RunOptions::default(),
    )
    .await
    .unwrap();
    admin::repush(&engine, &id, &TargetId::parse("app").unwrap(), None, "ops")
        .await
        .unwrap();
    let users = engine.store.list_users(&id).await.unwrap();
    let employee = users[0].employee_id.to_string();

    let base = "/admin/directories";
    let d = "/admin/directories/{directoryId}";
    let calls: Vec<Call> = vec![
        (base.into(), base, vec![], 200),
        (format!("{base}/acme"), d, vec![], 200),
        (format!("{base}/nope"), d, vec![], 404),
        (
            format!("{base}/acme/status"),
            "/admin/directories/{directoryId}/status",
            vec![],
            200,
        ),
        (
            format!("{base}/acme/users"),
            "/admin/directories/{directoryId}/users",
            vec![],
            200,
        ),
        (
            format!("{base}/acme/users"),
            "/admin/directories/{directoryId}/users",
            vec![("state", "active")],
            200,
        ),
        (
            format!("{base}/acme/users/{employee}"),
            "/admin/directories/{directoryId}/users/{employeeId}",
            vec![],
            200,
        ),
        (
            format!("{base}/acme/users/999999"),
            "/admin/directories/{directoryId}/users/{employeeId}",
            vec![],
            404,
        ),
        (
            format!("{base}/acme/runs"),
            "/admin/directories/{directoryId}/runs",
            vec![],
            200,
        ),
        (
            format!("{base}/acme/runs"),
            "/admin/directories/{directoryId}/runs",
            vec![("limit", "0")],
            400,
        ),
        (
            format!("{base}/acme/deliveries"),
            "/admin/directories/{directoryId}/deliveries",
            vec![("target", "app"), ("status", "delivered")],
            200,
        ),
        (
            format!("{base}/acme/deliveries"),
            "/admin/directories/{directoryId}/deliveries",
            vec![("user", &employee)],
            200,
        ),
        (
            format!("{base}/acme/deliveries"),
            "/admin/directories/{directoryId}/deliveries",
            vec![("status", "lost")],
            400,
        ),
        (
            format!("{base}/acme/audit"),
            "/admin/directories/{directoryId}/audit",
            vec![],
            200,
        ),
        (
            format!("{base}/acme/evidence"),
            "/admin/directories/{directoryId}/evidence",
            vec![],
            200,
        ),
    ];
    let mut cases = Vec::new();
    let mut bodies = HashMap::new();
    for (path, template, query, want) in &calls {
        let (status, body) = get(&engine, path, query).await;
        assert_eq!(status, *want, "{path} {query:?}: {body}");
        bodies.insert((path.clone(), query.len(), *want), body.clone());
        cases.push(json!({"path": template, "method": "get", "status": status, "body": body}));
    }
    // What the routes say, beyond their shape.
    let status = &bodies[&(format!("{base}/acme/status"), 0, 200)];
    assert_eq!(status["lastRun"]["id"], json!(run.id));
    let delivered = &bodies[&(format!("{base}/acme/deliveries"), 2, 200)];
    assert_eq!(delivered.as_array().unwrap().len(), 5);
    let one = &bodies[&(format!("{base}/acme/deliveries"), 1, 200)];
    assert_eq!(one.as_array().unwrap().len(), 1);
    let audit = &bodies[&(format!("{base}/acme/audit"), 0, 200)];
    assert_eq!(
        audit.as_array().unwrap().len(),
        4,
        "connect, target, sync, replay"
    );
    let summary = &bodies[&(format!("{base}/acme/users"), 0, 200)];
    assert!(
        summary[0].get("emails").is_none(),
        "the list carries no HR fields"
    );

    // Every documented route was exercised.
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    for (_, template, _, _) in &calls {
        assert!(
            spec.contains(&format!("  {template}:")),
            "{template} undocumented"
        );
    }
    let documented = spec.lines().filter(|l| l.starts_with("  /admin/")).count();
    let exercised: std::collections::BTreeSet<&str> = calls.iter().map(|c| c.1).collect();
    assert_eq!(documented, exercised.len());

    let mut validator = std::process::Command::new(test_peers::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/validate_openapi.py"
        ))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the validator starts");
    validator
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(cases.clone()).to_string().as_bytes())
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

#[tokio::test]
async fn the_admin_api_is_read_only() {
    let (bus, _events) = InProcessBus::new();
    let tmp = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        Arc::new(FileStore::in_memory()),
        Arc::new(FileSecrets::open(tmp.path().join("s.json"))),
        Arc::new(bus),
        Arc::new(SystemClock),
    );
    let req = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/admin/directories")
        .body(Body::Empty)
        .unwrap();
    let resp = ::admin::handler(&engine, req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
}
