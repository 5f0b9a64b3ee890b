//! The webhook function: `POST /webhooks/bamboohr/{directory_id}` behind API Gateway.
//! It answers 2xx only after the change is durable (200 applied, 202 left to the poller
//! as refresh requests or held by the mass-change safeguard for an operator; an entry
//! older than the stored change is acknowledged with its delivery), and maps every refusal to a status code and a JSON error body
//! here, in one place ([`status_for`]). With a metrics namespace, each request also
//! writes one Embedded Metric Format line ([`metrics`]): accepted or rejected, why,
//! and the events published.

#[cfg(feature = "local")]
pub mod local;
pub mod metrics;

use domain::DirectoryId;
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use sync_engine::ingest::{ingest, InboundWebhook, IngestError, IngestReport, DEFAULT_TOLERANCE};
use sync_engine::Engine;
use tracing::{error, info};

/// The webhook function's configuration, read from its environment once at start: the
/// common settings and the poller's schedules.
pub use function_support::SchedulingSettings as Settings;

/// What the webhook handler needs.
#[derive(Clone)]
pub struct Deps {
    /// The engine on the stack's adapters.
    pub engine: Engine,
    /// Accepted distance between X-BambooHR-Timestamp and now.
    pub tolerance: time::Duration,
    /// Where the request metrics go (on Lambda: METRICS_NAMESPACE); none writes none.
    pub metrics_namespace: Option<String>,
}

impl Deps {
    /// Deps with the default 5-minute tolerance and no metrics.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            tolerance: DEFAULT_TOLERANCE,
            metrics_namespace: None,
        }
    }

    /// The same, writing request metrics in `namespace`.
    pub fn with_metrics(mut self, namespace: impl Into<String>) -> Self {
        self.metrics_namespace = Some(namespace.into());
        self
    }

    /// Prints the request's EMF line, when metrics are on.
    fn emit(&self, directory: Option<&str>, outcome: metrics::Outcome<'_>) {
        if let Some(ns) = &self.metrics_namespace {
            let doc = metrics::webhook_metrics_emf(ns, directory, outcome, self.engine.clock.now());
            println!("{doc}");
        }
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static response parts are valid")
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

/// What every unauthenticated request is told, whatever the directory: an unknown or
/// revoked directory, missing signature headers and a wrong signature get the same
/// status, code and message (the log keeps the reason).
pub const UNAUTHORIZED_MESSAGE: &str =
    "signature missing or not made with a key of this webhook URL's directory";

/// The one place errors become HTTP statuses. 4xx tells BambooHR not to retry; 5xx
/// makes it retry (5, 10, 20, 40, 80 minutes). Before authentication nothing about the
/// directory shows: unknown, revoked and existing directories answer the same 401.
pub fn status_for(err: &IngestError) -> (StatusCode, &'static str) {
    match err {
        IngestError::UnknownDirectory
        | IngestError::MissingSignature
        | IngestError::BadSignature => (StatusCode::UNAUTHORIZED, "unauthorized"),
        // BambooHR retries a 5xx (not a 4xx), so a paused directory's changes arrive
        // again after the pause instead of being dropped.
        IngestError::Paused => (StatusCode::SERVICE_UNAVAILABLE, "directory_paused"),
        IngestError::StaleTimestamp => (StatusCode::UNAUTHORIZED, "stale_timestamp"),
        IngestError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        IngestError::UnsupportedMediaType => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        IngestError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_payload"),
        IngestError::Internal(e) if e.is_retryable() => {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
        IngestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

/// 200 when the delivery was applied (or was a duplicate, or only older than what is
/// stored), 202 when some of it was recorded for the poller to fetch or held by the
/// safeguard.
pub fn status_for_report(report: &IngestReport) -> StatusCode {
    if report.is_deferred() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }
}

/// The `token` query parameter: from API Gateway's parsed parameters, or from the raw
/// query when the request did not come through API Gateway (the local stack).
fn url_token(req: &Request) -> Option<String> {
    if let Some(t) = req
        .query_string_parameters_ref()
        .and_then(|q| q.first("token"))
    {
        return Some(t.to_string());
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_string)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The directory id from the route's path parameter, or from the raw path when the
/// request did not come through API Gateway's router (the local stack).
fn directory_param(req: &Request) -> Option<String> {
    if let Some(id) = req.path_parameters().first("directory_id") {
        return Some(id.to_string());
    }
    req.uri()
        .path()
        .strip_prefix("/webhooks/bamboohr/")
        .map(|rest| rest.trim_end_matches('/').to_string())
}

/// Handles one webhook request.
pub async fn handler(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    if req.method() != lambda_http::http::Method::POST {
        deps.emit(None, metrics::Outcome::Rejected("method_not_allowed"));
        return Ok(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
        ));
    }
    let Some(raw_id) = directory_param(&req) else {
        deps.emit(None, metrics::Outcome::Rejected("unknown_directory"));
        return Ok(error_response(
            StatusCode::NOT_FOUND,
            "unknown_directory",
            "no directory in the path",
        ));
    };
    let Ok(directory_id) = DirectoryId::parse(raw_id) else {
        // Not even a directory id: answered as any unauthenticated request.
        deps.emit(None, metrics::Outcome::Rejected("unauthorized"));
        return Ok(error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            UNAUTHORIZED_MESSAGE,
        ));
    };
    let headers = req.headers();
    let body: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let token = url_token(&req);
    let inbound = InboundWebhook {
        body,
        content_type: header(headers, "content-type"),
        signature: header(headers, "x-bamboohr-signature"),
        timestamp: header(headers, "x-bamboohr-timestamp"),
        url_token: token.as_deref(),
    };
    match ingest(&deps.engine, &directory_id, inbound, deps.tolerance).await {
        Ok(report) => {
            deps.emit(
                Some(directory_id.as_str()),
                metrics::Outcome::Accepted(&report),
            );
            Ok(json_response(
                status_for_report(&report),
                json!({ "accepted": true, "result": report }),
            ))
        }
        Err(e) => {
            let (status, code) = status_for(&e);
            // An unauthenticated caller chooses the path: no metric dimension from it.
            let dimension = (status != StatusCode::UNAUTHORIZED).then_some(directory_id.as_str());
            deps.emit(dimension, metrics::Outcome::Rejected(code));
            if status.is_server_error() {
                error!(directory_id = %directory_id, status = status.as_u16(), reason = %e, "webhook failed");
            } else {
                info!(directory_id = %directory_id, status = status.as_u16(), reason = %e, "webhook refused");
            }
            // A 4xx names the caller's problem; a 5xx says only "retry", since the
            // underlying storage or bus error is ours and already logged.
            let message = if status == StatusCode::UNAUTHORIZED {
                UNAUTHORIZED_MESSAGE.to_string()
            } else if status.is_server_error() {
                "temporarily unavailable; retry later".to_string()
            } else {
                e.to_string()
            };
            Ok(error_response(status, code, &message))
        }
    }
}
