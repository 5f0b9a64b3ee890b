//! The admin handler behind a local HTTP server (axum) instead of API Gateway: `dev`
//! serves it on loopback, so the CLI configures the local stack through the same
//! routes and the same handler code as a deployed one. Compiled only with the `local`
//! feature, so the Lambda binary carries no HTTP server.
//!
//! API Gateway's IAM authorizer is replaced by a bearer token `dev` writes to its data
//! directory (owner-only), compared in constant time; the caller recorded in the audit
//! log is the identity `dev` was started with. [`answer`] takes any verified caller, for
//! servers that authenticate another way.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::{handler, AdminApi};

/// Largest request body the local server reads (configuration bodies are small).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Who may call a local server, and who they are in the audit log.
pub struct LocalAuth {
    /// The bearer token a request must carry.
    pub token: SecretString,
    /// The caller every accepted request is audited under (e.g. `local:alice`).
    pub actor: String,
}

/// The handler behind `auth`: a router answering every path.
pub fn router(api: Arc<AdminApi>, auth: LocalAuth) -> axum::Router {
    axum::Router::new()
        .fallback(token_route)
        .with_state(Arc::new((api, auth)))
}

async fn token_route(
    State(state): State<Arc<(Arc<AdminApi>, LocalAuth)>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (api, auth) = (&state.0, &state.1);
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let ok: bool = given
        .as_bytes()
        .ct_eq(auth.token.expose_secret().as_bytes())
        .into();
    if !ok {
        let body = json!({"error": {"code": "unauthorized",
            "message": "a local admin request needs the token dev wrote to its data directory"}});
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    answer(api, request, Some(&auth.actor)).await
}

/// Answers `request` with the admin handler, as API Gateway would hand it over after
/// verifying `caller` (`None`: no verified caller, so writes are refused).
pub async fn answer(
    api: &AdminApi,
    request: axum::extract::Request,
    caller: Option<&str>,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response()
        }
    };
    let query: QueryMap = parts
        .uri
        .query()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    let mut context = json!({
        "accountId": "local", "apiId": "local", "domainName": "localhost",
        "domainPrefix": "local", "requestId": "local", "routeKey": "$default",
        "stage": "$default", "time": "", "timeEpoch": 0,
        "http": {"method": parts.method.as_str(), "path": parts.uri.path(),
                 "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local"},
    });
    if let Some(caller) = caller {
        context["authorizer"] = json!({"iam": {"userArn": caller, "callerId": caller}});
    }
    let context: ApiGatewayV2httpRequestContext =
        serde_json::from_value(context).expect("a static request context deserializes");
    let req = lambda_http::Request::from_parts(parts, lambda_http::Body::Binary(bytes.to_vec()))
        .with_query_string_parameters(query)
        .with_request_context(RequestContext::ApiGatewayV2(context));
    match handler(api, req).await {
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

/// The handler behind a stand-in for API Gateway's IAM authorizer, for tests on moto
/// (which does not run HTTP APIs): a request without a SigV4 `execute-api` signature is
/// refused before the handler, as API Gateway refuses it; a signed one reaches the
/// handler with the signer as the caller (`arn:aws:iam::123456789012:user/<access key
/// id>`). The signature itself is AWS's to check. Compiled with the `testing` feature
/// only.
#[cfg(feature = "testing")]
pub fn iam_authorizer_stand_in(api: Arc<AdminApi>) -> axum::Router {
    async fn authorize(
        State(api): State<Arc<AdminApi>>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let signed = request.headers().contains_key("x-amz-date");
        let Some(key_id) = auth
            .strip_prefix("AWS4-HMAC-SHA256 Credential=")
            .and_then(|c| c.split('/').next())
            .filter(|_| signed && auth.contains("/execute-api/aws4_request"))
        else {
            return (
                axum::http::StatusCode::FORBIDDEN,
                r#"{"message":"Missing Authentication Token"}"#,
            )
                .into_response();
        };
        let caller = format!("arn:aws:iam::123456789012:user/{key_id}");
        answer(&api, request, Some(&caller)).await
    }
    axum::Router::new().fallback(authorize).with_state(api)
}
