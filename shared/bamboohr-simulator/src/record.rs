//! A record of the BambooHR API exchanges the simulator served, for contract tests: what
//! each client request looked like (method, path, query, JSON body) and what the
//! simulator answered (status, JSON body). Off unless a test asks for it, because bodies
//! are kept in memory.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::Simulator;

/// Bodies larger than this are not buffered for the record (the simulator's own answers
/// stay far below it).
const MAX_RECORDED_BODY: usize = 16 * 1024 * 1024;

/// One request to the BambooHR API surface and the simulator's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The HTTP method, upper case (`GET`).
    pub method: String,
    /// The path as requested, percent-decoding left undone (`/api/v1/employees/7`).
    pub path: String,
    /// The query pairs, percent-decoded, in request order (`("filter[ids][]", "7")`).
    pub query: Vec<(String, String)>,
    /// The request body, when it was JSON.
    pub request_body: Option<Value>,
    /// The answer's status code.
    pub status: u16,
    /// The answer's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The answer's body, when it was JSON (a truncated-body fault is not).
    pub response_body: Option<Value>,
}

/// Middleware around the whole API surface (faults and authentication included), so
/// refused and faulted answers are recorded too.
pub(crate) async fn record(AxState(sim): AxState<Simulator>, req: Request, next: Next) -> Response {
    if sim.lock().recording.is_none() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let request_bytes = axum::body::to_bytes(body, MAX_RECORDED_BODY)
        .await
        .unwrap_or_default();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request_body = serde_json::from_slice(&request_bytes).ok();
    let req = Request::from_parts(parts, Body::from(request_bytes));

    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let response_bytes: Bytes = axum::body::to_bytes(body, MAX_RECORDED_BODY)
        .await
        .unwrap_or_default();
    let exchange = Exchange {
        method,
        path,
        query,
        request_body,
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        response_body: serde_json::from_slice(&response_bytes).ok(),
    };
    if let Some(log) = sim.lock().recording.as_mut() {
        log.push(exchange);
    }
    Response::from_parts(parts, Body::from(response_bytes))
}
