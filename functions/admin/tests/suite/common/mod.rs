//! What the admin tests share: API Gateway (HTTP API, payload 2.0) requests as the
//! `AWS_IAM` authorizer delivers them, a call that returns status and JSON body, and a
//! connected, synced directory on the embedded adapters.

use std::sync::Arc;

use ::admin::AdminApi;
use bamboohr_simulator::{SimConfig, SimServer, Simulator};
use domain::{DirectoryId, SyncMode, SyncRequest, Target, TargetFilter, TargetId, TargetKind};
use embedded_adapters::{
    FileSecrets, InProcessBus, InProcessRetryQueue, InProcessScheduler, SqliteStore,
};
use lambda_http::Body;
use ports::{SystemClock, TargetSecrets};
use secrecy::SecretString;
use serde_json::{json, Value};
use sync_engine::operate::run_sync;
use sync_engine::operate::{self, ConnectRequest, Credential, TargetSpec};
use sync_engine::reconcile::run::RunOptions;
use sync_engine::Engine;

/// The IAM principal the tests call as.
pub const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/ops/alice";

/// The signing secret of the harness's app-webhook target `app`.
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The stack's webhook URL base the API registers BambooHR webhooks under.
pub const WEBHOOK_BASE_URL: &str = "https://hooks.example.test/webhooks/bamboohr";

/// The BambooHR API key the simulator accepts.
pub const API_KEY: &str = "k";

/// A request as API Gateway hands it to the function: `caller` is the IAM identity
/// the authorizer verified (none: a request that did not come through it).
pub fn request(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
    caller: Option<&str>,
) -> lambda_http::Request {
    let raw_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let params: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "adminapi",
        "domainName": "adminapi.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "adminapi",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "192.0.2.1", "userAgent": "admin-tests"},
        "requestId": "req-1",
        "routeKey": format!("{method} /admin/{{proxy+}}"),
        "stage": "$default",
        "time": "23/Nov/2026:13:00:00 +0000",
        "timeEpoch": 1_795_000_000_000i64,
    });
    if let Some(arn) = caller {
        context["authorizer"] = json!({"iam": {
            "accessKey": "ASIAEXAMPLE", "accountId": "123456789012",
            "callerId": "AROAEXAMPLE:alice", "userArn": arn, "userId": "AROAEXAMPLE:alice",
            "principalOrgId": null, "cognitoIdentity": null,
        }});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} /admin/{{proxy+}}"),
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "headers": {"host": "adminapi.execute-api.us-east-1.amazonaws.com",
                    "content-type": "application/json"},
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !params.is_empty() {
        event["queryStringParameters"] = Value::Object(params);
    }
    if let Some(b) = body {
        event["body"] = json!(b.to_string());
    }
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event")
}

/// Calls the handler; returns the status and the JSON body.
pub async fn call(api: &AdminApi, req: lambda_http::Request) -> (u16, Value) {
    let resp = ::admin::handler(api, req).await.unwrap();
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(&t[..]).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

/// A GET as the test caller.
pub async fn get(api: &AdminApi, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    call(api, request("GET", path, query, None, Some(CALLER))).await
}

/// A POST as the test caller.
pub async fn post(api: &AdminApi, path: &str, body: Option<Value>) -> (u16, Value) {
    call(api, request("POST", path, &[], body, Some(CALLER))).await
}

/// A local app that accepts every delivery.
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

/// Directory `acme` (5 employees on the simulator) connected, with an app-webhook
/// target `app`, after one full run; the API over it with its scheduler and queue.
pub struct Harness {
    /// The API under test.
    pub api: AdminApi,
    /// Its scheduler (what the sync route asked for).
    pub scheduler: Arc<InProcessScheduler>,
    /// Its retry queue (what the redrive moved).
    pub retry: Arc<InProcessRetryQueue>,
    /// The directory.
    pub id: DirectoryId,
    /// The full run's id.
    pub run_id: String,
    /// Where the simulated BambooHR company is served (`http://127.0.0.1:PORT`).
    pub sim_url: String,
    _server: SimServer,
    _tmp: tempfile::TempDir,
}

/// Builds the [`Harness`].
pub async fn harness() -> Harness {
    let sim = Simulator::generate(SimConfig {
        api_key: API_KEY.into(),
        employees: 5,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (bus, _events) = InProcessBus::new();
    let scheduler = Arc::new(InProcessScheduler::new());
    let retry = Arc::new(InProcessRetryQueue::new(Arc::new(SystemClock)));
    let engine = Engine::new(
        Arc::new(SqliteStore::in_memory()),
        Arc::new(FileSecrets::open(tmp.path().join("secrets.json"))),
        Arc::new(bus),
        Arc::new(SystemClock),
    )
    .with_scheduler(scheduler.clone())
    .with_retry_queue(retry.clone());
    let id = DirectoryId::parse("acme").unwrap();
    operate::connect(
        &engine,
        scheduler.as_ref(),
        ConnectRequest {
            directory_id: id.clone(),
            subdomain: "acme".into(),
            base_url: Some(server.base_url.clone()),
            credential: Credential::ApiKey(SecretString::from(API_KEY)),
            time_zone: None,
            register_webhook_at: None,
        },
        CALLER,
    )
    .await
    .unwrap();
    operate::add_target(
        &engine,
        &id,
        TargetSpec {
            target: Target {
                id: TargetId::parse("app").unwrap(),
                kind: TargetKind::app_webhook(receiver().await),
                filter: TargetFilter::default(),
                enabled: true,
            },
            secrets: Some(TargetSecrets {
                signing_secrets: vec![SecretString::from(WHSEC)],
                ..TargetSecrets::default()
            }),
        },
        CALLER,
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
    Harness {
        api: AdminApi::new(engine, Some(WEBHOOK_BASE_URL.into())),
        scheduler,
        retry,
        id,
        run_id: run.id.to_string(),
        sim_url: server.base_url.clone(),
        _server: server,
        _tmp: tmp,
    }
}

/// A POST without an IAM caller (a request that did not come through the authorizer).
pub async fn post_anonymous(api: &AdminApi, path: &str, body: Option<Value>) -> (u16, Value) {
    call(api, request("POST", path, &[], body, None)).await
}

/// One delivery a [`Capture`] received: its headers (lower-case names) and raw body.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The request headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The raw body, as signed.
    pub body: String,
}

/// A local app that accepts every delivery (204) and keeps what it received.
pub struct Capture {
    /// Where it receives (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    received: Arc<std::sync::Mutex<Vec<Captured>>>,
}

impl Capture {
    /// Starts one.
    pub async fn start() -> Self {
        let received: Arc<std::sync::Mutex<Vec<Captured>>> = Arc::default();
        let keep = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_ascii_lowercase(),
                                v.to_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    keep.lock().unwrap().push(Captured { headers, body });
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, received }
    }

    /// What it received so far, oldest first.
    pub fn received(&self) -> Vec<Captured> {
        self.received.lock().unwrap().clone()
    }
}

/// A GET of the simulated BambooHR API with the directory's API key, over plain
/// HTTP/1.1 (not through the engine's client, so the test's view is its own).
pub async fn bamboohr_get(sim_url: &str, path: &str) -> Value {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = sim_url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:x"));
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    serde_json::from_str(&body).unwrap()
}

/// Runs a full sync of the harness's directory (as the poller would).
pub async fn full_run(h: &Harness) {
    run_sync(
        &h.api.engine,
        &SyncRequest {
            directory_id: h.id.clone(),
            mode: SyncMode::Full,
        },
        &RunOptions::default(),
    )
    .await
    .unwrap();
}

/// Every item of a list route, walked page by page with `limit`; also returns how
/// many pages it took.
pub async fn walk(api: &AdminApi, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let limit = limit.to_string();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", limit.as_str())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let (status, body) = get(api, path, &query).await;
        assert_eq!(status, 200, "{path} {query:?}: {body}");
        pages += 1;
        let page = body["items"].as_array().unwrap();
        assert!(page.len() <= limit.parse().unwrap(), "{body}");
        items.extend(page.iter().cloned());
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                assert!(body["nextCursor"].is_null(), "{body}");
                return (items, pages);
            }
        }
        assert!(pages < 100, "the walk ends");
    }
}
