//! BambooHR's OAuth 2.0 token endpoint (`POST /token.php`, the `tokenUrl` of the spec's
//! `oauth` security scheme), as far as a sync needs it: the refresh-token grant
//! (`offline_access`), which issues a new access token and rotates the refresh token.
//! Tests obtain the first pair with [`crate::Simulator::issue_oauth_tokens`] and expire
//! access tokens on demand.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use serde_json::json;

use crate::Simulator;

/// How long an issued access token is said to live, in seconds.
pub(crate) const ACCESS_TOKEN_LIFETIME: u64 = 3600;

/// The OAuth side of the company: registered clients and live refresh tokens.
#[derive(Debug, Default)]
pub(crate) struct OAuthBook {
    /// client id -> client secret.
    pub(crate) clients: BTreeMap<String, String>,
    /// refresh token -> the client it was issued to.
    pub(crate) refresh_tokens: BTreeMap<String, String>,
    /// Token endpoint requests received.
    pub(crate) token_requests: u64,
}

/// A fresh random token: 32 hex digits behind a readable prefix.
pub(crate) fn new_token(prefix: &str) -> String {
    let n: u128 = rand::rng().random();
    format!("{prefix}-{n:032x}")
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        json!({ "error": code }).to_string(),
    )
        .into_response()
}

/// `POST /token.php`: `grant_type=refresh_token` with `refresh_token`, `client_id` and
/// `client_secret` in a form body (RFC 6749 §6). Other grants are `unsupported_grant_type`.
pub(crate) async fn token(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut s = sim.lock();
    s.oauth.token_requests += 1;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "refresh_token" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let client_id = field("client_id");
    if s.oauth.clients.get(client_id).map(String::as_str) != Some(field("client_secret"))
        || client_id.is_empty()
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let refresh = field("refresh_token");
    if s.oauth.refresh_tokens.get(refresh).map(String::as_str) != Some(client_id) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // Rotation: the refresh token just used is spent.
    s.oauth.refresh_tokens.remove(refresh);
    let access = new_token("sim-access");
    let next_refresh = new_token("sim-refresh");
    s.bearer_tokens.insert(access.clone());
    s.oauth
        .refresh_tokens
        .insert(next_refresh.clone(), client_id.to_string());
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
        ],
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "refresh_token": next_refresh,
            "scope": "offline_access employee",
        })
        .to_string(),
    )
        .into_response()
}
