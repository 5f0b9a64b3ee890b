//! The admin API: what the CLI needs, as JSON over HTTP (API Gateway with IAM auth, so
//! only principals allowed `execute-api:Invoke` reach it).
//!
//! - Reads (`GET`, [`read`]): directories, their status (with the stack's dead-letter
//!   depth), users, runs, deliveries, the audit log and evidence.
//! - Writes (`POST`, [`write`]): ask for a sync (incremental or full), pause, resume,
//!   release or discard a hold, re-push a directory or one user to a target, and
//!   re-drive the dead letters. Each is audited under the caller's IAM identity
//!   ([`caller`]), which API Gateway's `AWS_IAM` authorizer puts in the request
//!   context; a request without one is refused before anything changes.
//!
//! `openapi.yaml` beside this crate describes every route and response; the tests
//! validate the responses against it. Errors are JSON (`{"error": {"code",
//! "message"}}`), their status decided in one place ([`AdminError::status`]).

pub mod caller;
pub mod read;
pub mod write;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use sync_engine::{Engine, EngineError};
use tracing::{info, warn};

/// The admin function's configuration, read from its environment once at start: the
/// common settings and the poller's schedules.
pub use function_support::SchedulingSettings as Settings;

/// Longest list a single response carries.
pub const MAX_LIMIT: usize = 500;

/// What the handler works with: the engine (with its scheduler, retry queue and
/// customer-bus publisher for the write routes; the retry queue also reports the
/// stack's dead-letter depth for the status).
pub struct AdminApi {
    /// The engine over the stack's store, secrets, bus, scheduler and retry queue.
    pub engine: Engine,
}

/// Why a request was refused or failed. [`AdminError::status`] is the one place a
/// failure becomes an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No route has this path.
    #[error("no such route")]
    NoRoute,
    /// The route exists and names something that does not.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The path, query or body was refused.
    #[error("{0}")]
    BadRequest(String),
    /// A write came without a caller identity to audit it under.
    #[error("{0}")]
    Forbidden(String),
    /// A dead-letter queue's depth could not be read.
    #[error("dead-letter queue: {0}")]
    Queue(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<ports::StoreError> for AdminError {
    fn from(e: ports::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl AdminError {
    /// The HTTP status answering this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine(e) => match e {
                EngineError::DirectoryNotFound(_) | EngineError::TargetNotFound(_) => {
                    StatusCode::NOT_FOUND
                }
                // The directory's state (paused, held, revoked) or its configuration
                // (a credential it lacks) stands in the way; the request was fine.
                EngineError::DirectoryNotActive { .. } | EngineError::MissingCredential { .. } => {
                    StatusCode::CONFLICT
                }
                EngineError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
                _ if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The stable code in the error body (one per status).
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        }
    }

    /// Whether the same request may succeed later (the caller may retry a 503).
    pub fn is_retryable(&self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("a static response is valid")
}

/// Answers one request. Never fails: every error is a JSON error response.
pub async fn handler(api: &AdminApi, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = if write::is_write_route(&parts) {
        if req.method() == Method::POST {
            write::route(api, &parts, &req).await
        } else {
            Err(AdminError::MethodNotAllowed(format!(
                "{} takes POST",
                req.uri().path()
            )))
        }
    } else if req.method() == Method::GET {
        read::route(api, &parts, &req)
            .await
            .map(|body| (StatusCode::OK, body))
    } else if read::is_read_route(&parts) {
        Err(AdminError::MethodNotAllowed(format!(
            "{} takes GET",
            req.uri().path()
        )))
    } else {
        Err(AdminError::NoRoute)
    };
    Ok(match result {
        Ok((status, body)) => json_response(status, &body),
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                warn!(path = %path, code = e.code(), reason = %e, "admin request failed");
            } else {
                info!(path = %path, code = e.code(), reason = %e, "admin request refused");
            }
            json_response(
                status,
                &json!({"error": {"code": e.code(), "message": e.to_string()}}),
            )
        }
    })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("API values serialize")
}

pub(crate) fn dir_id(s: &str) -> Result<domain::DirectoryId, AdminError> {
    domain::DirectoryId::parse(s).map_err(|e| AdminError::bad_request(format!("directory id: {e}")))
}
