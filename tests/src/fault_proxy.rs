//! A fault-injecting HTTP proxy in front of moto, for the fault-injection suite.
//!
//! The AWS SDK is pointed at the proxy instead of moto. Each request is classified by
//! service from what the SDK sends (`X-Amz-Target` for the JSON protocols of DynamoDB,
//! EventBridge, SQS and Secrets Manager; the REST path for EventBridge Scheduler), and
//! for a configured share of each service's calls the proxy answers with the error AWS
//! would give instead of moto's answer:
//!
//! - throttling: DynamoDB `ProvisionedThroughputExceededException` or
//!   `ThrottlingException`, EventBridge and SQS `ThrottlingException` (HTTP 400 with the
//!   JSON `__type`), Scheduler 429;
//! - `InternalServerError` (500) and `ServiceUnavailable` (503);
//! - the request forwarded to moto and its answer replaced by a 500, or cut off after
//!   the status line: the write happened but the caller saw a failure, the case where
//!   a retry meets its own earlier write.
//!
//! Besides the shares, an outage fails every call of one service for a few calls in a
//! row ([`FaultProxy::outage`]): as many as the SDK's attempts, so the failure reaches
//! the product, whose own re-runs and redeliveries must then recover.
//!
//! Faults are drawn from a seeded RNG, one draw per call in arrival order, so a run
//! with the seed a failing scenario printed meets the same sequence of decisions (the
//! interleaving of concurrent calls may still differ). Counters say how many calls
//! each service made and how many were faulted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The AWS service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// `X-Amz-Target: DynamoDB_20120810.*`.
    DynamoDb,
    /// `X-Amz-Target: AWSEvents.*`.
    EventBridge,
    /// `X-Amz-Target: AmazonSQS.*` (the SQS JSON protocol).
    Sqs,
    /// EventBridge Scheduler's REST paths (`/schedules/...`, `/schedule-groups/...`).
    Scheduler,
    /// `X-Amz-Target: secretsmanager.*`.
    SecretsManager,
    /// Anything else (never faulted).
    Other,
}

impl Service {
    /// Classifies a request the way the SDK addresses each service.
    pub fn of(headers: &HeaderMap, path: &str) -> Self {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if target.starts_with("DynamoDB_20120810.") {
            Self::DynamoDb
        } else if target.starts_with("AWSEvents.") {
            Self::EventBridge
        } else if target.starts_with("AmazonSQS.") {
            Self::Sqs
        } else if target.starts_with("secretsmanager.") {
            Self::SecretsManager
        } else if path.starts_with("/schedules") || path.starts_with("/schedule-groups") {
            Self::Scheduler
        } else {
            Self::Other
        }
    }
}

/// What the proxy did instead of (or after) forwarding a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Throttled (400 with the service's throttling `__type`; Scheduler: 429).
    Throttle,
    /// 500 InternalServerError, not forwarded.
    InternalError,
    /// 503 ServiceUnavailable, not forwarded.
    Unavailable,
    /// Forwarded (moto applied it), then answered 500.
    ForwardedThenFailed,
    /// Forwarded (moto applied it), then the connection cut after the status line.
    ForwardedThenCut,
}

/// Every kind, in the order the RNG picks them.
const KINDS: [FaultKind; 5] = [
    FaultKind::Throttle,
    FaultKind::InternalError,
    FaultKind::Unavailable,
    FaultKind::ForwardedThenFailed,
    FaultKind::ForwardedThenCut,
];

/// The share (0.0..=1.0) of each service's calls that get a fault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultShares {
    /// Per service; a service not listed is never faulted.
    pub by_service: BTreeMap<Service, f64>,
}

impl FaultShares {
    /// The same share for DynamoDB, EventBridge, SQS and Scheduler calls.
    pub fn uniform(share: f64) -> Self {
        Self::default()
            .with(Service::DynamoDb, share)
            .with(Service::EventBridge, share)
            .with(Service::Sqs, share)
            .with(Service::Scheduler, share)
    }

    /// Sets one service's share.
    pub fn with(mut self, service: Service, share: f64) -> Self {
        self.by_service.insert(service, share.clamp(0.0, 1.0));
        self
    }
}

/// Calls seen and faults injected so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Calls per service.
    pub calls: BTreeMap<Service, u64>,
    /// Faults per (service, kind).
    pub faults: BTreeMap<(Service, FaultKind), u64>,
}

impl ProxyStats {
    /// Faults injected, all services and kinds.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Calls seen, all services.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// One line for a test's output: calls and faults per service.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (service, calls) in &self.calls {
            let faults: u64 = self
                .faults
                .iter()
                .filter(|((s, _), _)| s == service)
                .map(|(_, n)| n)
                .sum();
            parts.push(format!("{service:?} {faults}/{calls}"));
        }
        format!("faults/calls: {}", parts.join(", "))
    }
}

/// A run of consecutive faulted calls of one service.
#[derive(Debug, Clone, Copy)]
struct Outage {
    service: Service,
    /// Calls of the service that pass first.
    skip: u64,
    /// Calls of the service that fail after those.
    left: u64,
}

struct Shared {
    upstream: String,
    outages: Mutex<Vec<Outage>>,
    client: reqwest::Client,
    enabled: AtomicBool,
    shares: Mutex<FaultShares>,
    rng: Mutex<StdRng>,
    stats: Mutex<ProxyStats>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, the endpoint to give the SDK.
    pub endpoint: String,
    /// The seed of the fault RNG.
    pub seed: u64,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of the test process's moto,
    /// with faults drawn from `seed` and enabled at `shares`.
    pub async fn start(seed: u64, shares: FaultShares) -> Self {
        Self::start_in_front_of(&test_peers::moto().endpoint, seed, shares).await
    }

    /// [`FaultProxy::start`] in front of any upstream endpoint.
    pub async fn start_in_front_of(upstream: &str, seed: u64, shares: FaultShares) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            outages: Mutex::new(Vec::new()),
            client: reqwest::Client::builder()
                .build()
                .expect("a plain HTTP client builds"),
            enabled: AtomicBool::new(true),
            shares: Mutex::new(shares),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            stats: Mutex::new(ProxyStats::default()),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binding a loopback port for the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = shared.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let state = state.clone();
            async move { handle(&state, req).await }
        });
        let task = tokio::spawn(async move {
            // Ends only when the task is aborted (the proxy dropped).
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint: format!("http://{addr}"),
            seed,
            shared,
            task,
        }
    }

    /// Turns fault injection on or off (calls are forwarded either way).
    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    /// Replaces the shares.
    pub fn set_shares(&self, shares: FaultShares) {
        *self.shared.shares.lock().expect("shares lock") = shares;
    }

    /// Fails `calls` consecutive calls of `service` after letting `after` of its calls
    /// pass (while injection is enabled), whatever the shares say.
    pub fn outage(&self, service: Service, after: u64, calls: u64) {
        self.shared
            .outages
            .lock()
            .expect("outages lock")
            .push(Outage {
                service,
                skip: after,
                left: calls,
            });
    }

    /// Calls seen and faults injected so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.stats.lock().expect("stats lock").clone()
    }

    /// SDK configuration whose every call goes through this proxy.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }
}

/// Decides this call's fault, if any, and counts it; the flag picks between a
/// service's two throttling errors (DynamoDB's).
fn draw(state: &Shared, service: Service) -> Option<(FaultKind, bool)> {
    let enabled = state.enabled.load(Ordering::SeqCst);
    let in_outage = enabled && {
        let mut outages = state.outages.lock().expect("outages lock");
        let mut hit = false;
        if let Some(o) = outages.iter_mut().find(|o| o.service == service) {
            if o.skip > 0 {
                o.skip -= 1;
            } else {
                o.left -= 1;
                hit = true;
            }
        }
        outages.retain(|o| o.left > 0);
        hit
    };
    let share = if in_outage {
        1.0
    } else if enabled {
        state
            .shares
            .lock()
            .expect("shares lock")
            .by_service
            .get(&service)
            .copied()
            .unwrap_or(0.0)
    } else {
        0.0
    };
    let fault = {
        let mut rng = state.rng.lock().expect("rng lock");
        // Always draw twice, so the sequence of decisions depends only on the order
        // of calls, not on which of them were faulted.
        let roll: f64 = rng.random();
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let alternate: bool = rng.random();
        (roll < share).then_some((kind, alternate))
    };
    let mut stats = state.stats.lock().expect("stats lock");
    *stats.calls.entry(service).or_default() += 1;
    if let Some((kind, _)) = fault {
        *stats.faults.entry((service, kind)).or_default() += 1;
    }
    fault
}

/// The error answer AWS gives for `kind` on `service`, when not forwarded.
fn error_answer(service: Service, kind: FaultKind, alternate: bool) -> Response<Body> {
    let (status, error_type) = match (service, kind) {
        (Service::DynamoDb, FaultKind::Throttle) if alternate => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        ),
        (Service::DynamoDb, FaultKind::Throttle) => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        ),
        (Service::Scheduler, FaultKind::Throttle) => {
            (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException")
        }
        (_, FaultKind::Throttle) => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        (Service::DynamoDb, FaultKind::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
        ),
        (_, FaultKind::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        (Service::DynamoDb, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
        ),
        (_, _) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
    };
    let content_type = match service {
        Service::DynamoDb => "application/x-amz-json-1.0",
        Service::Scheduler => "application/json",
        _ => "application/x-amz-json-1.1",
    };
    let body =
        serde_json::json!({ "__type": error_type, "message": "injected by the fault proxy" });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    // REST-JSON services (Scheduler) name the error in this header.
    let short = error_type.rsplit('#').next().unwrap_or(error_type);
    if let Ok(v) = HeaderValue::from_str(short) {
        headers.insert("x-amzn-errortype", v);
    }
    response
}

async fn handle(state: &Shared, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let service = Service::of(&parts.headers, &path);
    let drawn = draw(state, service);
    let alternate = drawn.is_some_and(|(_, a)| a);
    let fault = drawn.map(|(kind, _)| kind);
    if let Some(kind @ (FaultKind::Throttle | FaultKind::InternalError | FaultKind::Unavailable)) =
        fault
    {
        return error_answer(service, kind, alternate);
    }
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return status_only(StatusCode::BAD_REQUEST),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut forward = state.client.request(
        parts.method.clone(),
        format!("{}{}", state.upstream, path_and_query),
    );
    for (name, value) in &parts.headers {
        // The client sets its own Host and length; moto does not check signatures.
        if name == "host" || name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        forward = forward.header(name, value);
    }
    let answer = match forward.body(body).send().await {
        Ok(a) => a,
        Err(_) => return status_only(StatusCode::BAD_GATEWAY),
    };
    match fault {
        Some(FaultKind::ForwardedThenFailed) => {
            return error_answer(service, FaultKind::InternalError, alternate)
        }
        Some(FaultKind::ForwardedThenCut) => {
            // The status line goes out, then the body stream fails: the connection is
            // closed mid-answer, like a response lost on the way back.
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("injected cut"))
            });
            let mut response = Response::new(Body::from_stream(stream));
            *response.status_mut() = answer.status();
            return response;
        }
        _ => {}
    }
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name == "content-length" || name == "transfer-encoding" || name == "connection" {
            continue;
        }
        response.headers_mut().append(name, value.clone());
    }
    response
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}
