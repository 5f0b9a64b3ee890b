//! The admin API: what the CLI reads about directories, their status, users, runs,
//! deliveries, audit log and evidence, as JSON over HTTP (API Gateway with IAM auth,
//! so only principals allowed `execute-api:Invoke` reach it). Read-only: changes go
//! through the CLI, which audits them under the caller's identity.
//!
//! `openapi.yaml` beside this crate describes every route and response; the tests
//! validate the responses against it.

use domain::{DirectoryId, EmployeeId, UserId};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use ports::{DeliveryQuery, DeliveryStatus};
use serde_json::{json, Value};
use sync_engine::{admin, Engine, EngineError};
use tracing::{info, warn};

/// Longest list a single response carries.
pub const MAX_LIMIT: usize = 500;

/// A refused or failed request: status, stable code and a one-line message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::DirectoryNotFound(_) | EngineError::TargetNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            _ if e.is_retryable() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}

impl From<ports::StoreError> for ApiError {
    fn from(e: ports::StoreError) -> Self {
        EngineError::from(e).into()
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
pub async fn handler(engine: &Engine, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let result = if req.method() == Method::GET {
        route(engine, &path, &req).await
    } else {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the admin API is read-only; use GET",
        ))
    };
    Ok(match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => {
            if e.status.is_server_error() {
                warn!(path = %path, code = e.code, reason = %e.message, "admin request failed");
            } else {
                info!(path = %path, code = e.code, "admin request refused");
            }
            json_response(
                e.status,
                &json!({"error": {"code": e.code, "message": e.message}}),
            )
        }
    })
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_string))
}

fn limit(req: &Request, default: usize) -> Result<usize, ApiError> {
    match query(req, "limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

fn dir_id(s: &str) -> Result<DirectoryId, ApiError> {
    DirectoryId::parse(s).map_err(|e| ApiError::bad_request(format!("directory id: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("API values serialize")
}

async fn route(engine: &Engine, path: &str, req: &Request) -> Result<Value, ApiError> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route");
    match parts.as_slice() {
        ["admin", "directories"] => Ok(to_json(&engine.store.list_directories().await?)),
        ["admin", "directories", id] => Ok(to_json(&admin::directory(engine, &dir_id(id)?).await?)),
        ["admin", "directories", id, "status"] => {
            // The dead-letter queue is the stack's, not a directory's: the CLI reads it.
            Ok(to_json(&admin::status(engine, &dir_id(id)?, None).await?))
        }
        ["admin", "directories", id, "users"] => {
            let id = dir_id(id)?;
            admin::directory(engine, &id).await?;
            let state = query(req, "state");
            let users: Vec<Value> = engine
                .store
                .list_users(&id)
                .await?
                .into_iter()
                .filter(|u| state.as_deref().is_none_or(|s| u.state.as_str() == s))
                .map(|u| {
                    json!({"id": u.id, "employeeId": u.employee_id, "displayName": u.display_name,
                           "state": u.state, "version": u.version})
                })
                .collect();
            Ok(Value::Array(users))
        }
        ["admin", "directories", id, "users", employee] => {
            let id = dir_id(id)?;
            let e = EmployeeId::parse(*employee)
                .map_err(|e| ApiError::bad_request(format!("employee id: {e}")))?;
            let user = engine.store.get_user(&id, &e).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no employee {e} in {id}"),
                )
            })?;
            Ok(to_json(&user))
        }
        ["admin", "directories", id, "runs"] => {
            let id = dir_id(id)?;
            Ok(to_json(
                &engine.store.list_runs(&id, limit(req, 20)?).await?,
            ))
        }
        ["admin", "directories", id, "deliveries"] => {
            let id = dir_id(id)?;
            let status = match query(req, "status") {
                None => None,
                Some(s) => Some(
                    serde_json::from_value::<DeliveryStatus>(json!(s))
                        .map_err(|_| ApiError::bad_request(format!("unknown status {s:?}")))?,
                ),
            };
            let target = match query(req, "target") {
                None => None,
                Some(t) => Some(
                    domain::TargetId::parse(t)
                        .map_err(|e| ApiError::bad_request(format!("target id: {e}")))?,
                ),
            };
            let object_id = match query(req, "user") {
                None => None,
                Some(u) if u.starts_with("usr_") => Some(u),
                Some(u) => Some(
                    UserId::derive(
                        &id,
                        &EmployeeId::parse(u)
                            .map_err(|e| ApiError::bad_request(format!("user: {e}")))?,
                    )
                    .to_string(),
                ),
            };
            let q = DeliveryQuery {
                target,
                object_id,
                status,
            };
            Ok(to_json(&engine.store.list_deliveries(&id, &q).await?))
        }
        ["admin", "directories", id, "audit"] => {
            let id = dir_id(id)?;
            Ok(to_json(
                &engine.store.list_audit(&id, limit(req, 50)?).await?,
            ))
        }
        ["admin", "directories", id, "evidence"] => {
            let id = dir_id(id)?;
            let d = admin::directory(engine, &id).await?;
            let rows = engine.store.list_evidence(&id, limit(req, 20)?).await?;
            let now = engine.clock.now();
            Ok(Value::Array(
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut v = to_json(r);
                        v["stale"] = json!(i > 0 || admin::evidence_is_stale(&d, Some(r), now));
                        v
                    })
                    .collect(),
            ))
        }
        _ => Err(not_found()),
    }
}
