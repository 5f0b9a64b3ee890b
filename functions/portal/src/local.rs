//! The setup page's handler behind a local HTTP server (axum) instead of API Gateway:
//! `dev` serves it on its loopback port beside the webhook endpoint and the admin API,
//! and the browser tests drive it. Compiled only with the `local` feature, so the
//! Lambda binary carries no HTTP server.

use std::sync::Arc;

use axum::response::IntoResponse;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::RequestExt;

use crate::{handler, Portal, MAX_BODY_BYTES};

/// Routes `/setup` and everything under `/setup/` to the handler.
pub fn router(portal: Arc<Portal>) -> axum::Router {
    axum::Router::new()
        .route("/setup", axum::routing::any(answer))
        .route("/setup/", axum::routing::any(answer))
        .route("/setup/{*rest}", axum::routing::any(answer))
        .with_state(portal)
}

/// Answers `request` with the portal handler, as API Gateway would hand it over.
pub async fn answer(
    axum::extract::State(portal): axum::extract::State<Arc<Portal>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await else {
        return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let query: QueryMap = parts
        .uri
        .query()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    let req = lambda_http::Request::from_parts(parts, lambda_http::Body::Binary(bytes.to_vec()))
        .with_query_string_parameters(query);
    match handler(&portal, req).await {
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
