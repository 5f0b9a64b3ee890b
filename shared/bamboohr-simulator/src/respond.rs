//! The simulator's plain JSON answer, shared by the API modules (its own module so the
//! training endpoints need not import the employee API).

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A 200 with `value` as its JSON body.
pub(crate) fn json_response(value: Value) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
