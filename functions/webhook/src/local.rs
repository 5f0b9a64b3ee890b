//! The webhook handler behind a local HTTP server (axum) instead of API Gateway: the
//! `dev` stack and the load bench serve it on loopback. Compiled only with the `local`
//! feature, so the Lambda binary carries no HTTP server.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;

use crate::{handler, Deps};

/// Adapts an HTTP request to the `lambda_http` request [`handler`] takes and its answer
/// back. A body over the ingest limit is refused with 413 before the handler sees it.
pub async fn axum_route(
    State(deps): State<Arc<Deps>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let limit = sync_engine::ingest::MAX_BODY_BYTES + 1;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response()
        }
    };
    let req = lambda_http::Request::from_parts(parts, lambda_http::Body::Binary(bytes.to_vec()));
    match handler(&deps, req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let bytes = match body {
                lambda_http::Body::Text(t) => t.into_bytes(),
                lambda_http::Body::Binary(b) => b,
                _ => Vec::new(),
            };
            axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
        }
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
