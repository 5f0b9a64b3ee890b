//! BambooHR's OAuth 2.0 endpoints, the spec's `oauth` security scheme
//! (`flows.authorizationCode`: `authorizationUrl: /authorize.php`,
//! `tokenUrl: /token.php`, both relative to the company's host):
//!
//! - `GET /authorize.php` (RFC 6749 §4.1.1): the company's consent page for a registered
//!   client. An unknown client or a missing `redirect_uri` is answered here (400), never
//!   redirected (§4.1.2.1). The person signed in allows or denies
//!   (`POST /authorize.php`), and the browser is sent back to `redirect_uri` with
//!   `code` and `state`, or with `error=access_denied` and `state`.
//! - `POST /token.php`: the authorization-code grant (§4.1.3: the code is single-use,
//!   lives [`CODE_LIFETIME_SECONDS`], and needs the same client and `redirect_uri` it
//!   was issued for; a reused code also revokes what it issued, §10.5) and the
//!   refresh-token grant (`offline_access`, §6), which rotates the refresh token.
//!
//! Tests register a client with [`crate::Simulator::register_oauth_client`], or obtain a
//! first pair directly with [`crate::Simulator::issue_oauth_tokens`], and expire access
//! tokens and codes on demand.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use serde_json::json;
use time::OffsetDateTime;

use crate::Simulator;

/// How long an issued access token is said to live, in seconds.
pub(crate) const ACCESS_TOKEN_LIFETIME: u64 = 3600;

/// How long an authorization code may be exchanged, in seconds (RFC 6749 §4.1.2
/// recommends at most ten minutes).
pub(crate) const CODE_LIFETIME_SECONDS: i64 = 600;

/// An authorization code the consent page issued.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    issued_at: OffsetDateTime,
    /// The tokens it was exchanged for, once it was (a second use revokes them).
    exchanged_for: Option<(String, String)>,
}

/// The OAuth side of the company: registered clients, codes and live refresh tokens.
#[derive(Debug, Default)]
pub(crate) struct OAuthBook {
    /// client id -> client secret.
    pub(crate) clients: BTreeMap<String, String>,
    /// refresh token -> the client it was issued to.
    pub(crate) refresh_tokens: BTreeMap<String, String>,
    /// authorization code -> what it was issued for.
    pub(crate) codes: BTreeMap<String, IssuedCode>,
    /// Token endpoint requests received.
    pub(crate) token_requests: u64,
}

impl OAuthBook {
    /// Ages every code past its lifetime (tests of an expired code).
    pub(crate) fn expire_codes(&mut self) {
        for code in self.codes.values_mut() {
            code.issued_at -= time::Duration::seconds(CODE_LIFETIME_SECONDS + 1);
        }
    }
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

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
            t = esc(title)
        ),
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn form_of(raw: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// `redirect_uri` with `pairs` added to its query.
fn back_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "Invalid redirect_uri", "");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            if !v.is_empty() || *k != "state" {
                q.append_pair(k, v);
            }
        }
    }
    (StatusCode::FOUND, [(LOCATION, url.to_string())]).into_response()
}

/// The request's client and redirect URI, or the page refusing them (never a redirect
/// to an unchecked address).
fn checked_request(
    sim: &Simulator,
    form: &BTreeMap<String, String>,
) -> Result<(String, String, String), Box<Response>> {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let client_id = field("client_id");
    if !sim.lock().oauth.clients.contains_key(&client_id) {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "<p>This application is not registered with BambooHR (invalid client_id).</p>",
        )));
    }
    let redirect_uri = field("redirect_uri");
    if url::Url::parse(&redirect_uri).is_err() {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "<p>The application sent no valid redirect_uri.</p>",
        )));
    }
    Ok((client_id, redirect_uri, field("state")))
}

/// `GET /authorize.php?response_type=code&client_id=…&redirect_uri=…&state=…&scope=…`:
/// the consent page, with an Allow and a Deny button.
pub(crate) async fn authorize(AxState(sim): AxState<Simulator>, RawQuery(q): RawQuery) -> Response {
    let form = form_of(q.unwrap_or_default().as_bytes());
    let (client_id, redirect_uri, state) = match checked_request(&sim, &form) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    if form.get("response_type").map(String::as_str) != Some("code") {
        return back_to(
            &redirect_uri,
            &[("error", "unsupported_response_type"), ("state", &state)],
        );
    }
    let hidden =
        |k: &str, v: &str| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v));
    page(
        StatusCode::OK,
        "Allow access to your BambooHR data",
        &format!(
            "<p id=\"consent\">The application <strong>{client}</strong> asks to read your company's employee data.</p>\
             <form method=\"post\" action=\"/authorize.php\">{}{}{}\
             <button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></form>",
            hidden("client_id", &client_id),
            hidden("redirect_uri", &redirect_uri),
            hidden("state", &state),
            client = esc(&client_id),
        ),
    )
}

/// `POST /authorize.php`: the decision. Allowed: back with a fresh single-use code and
/// the `state`; denied: back with `error=access_denied` and the `state`.
pub(crate) async fn decide(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let form = form_of(&body);
    let (client_id, redirect_uri, state) = match checked_request(&sim, &form) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    if form.get("decision").map(String::as_str) != Some("allow") {
        return back_to(
            &redirect_uri,
            &[("error", "access_denied"), ("state", &state)],
        );
    }
    let code = new_token("sim-code");
    sim.lock().oauth.codes.insert(
        code.clone(),
        IssuedCode {
            client_id,
            redirect_uri: redirect_uri.clone(),
            issued_at: OffsetDateTime::now_utc(),
            exchanged_for: None,
        },
    );
    back_to(&redirect_uri, &[("code", &code), ("state", &state)])
}

fn tokens_response(access: &str, refresh: &str) -> Response {
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
            "refresh_token": refresh,
            "scope": "offline_access employee",
        })
        .to_string(),
    )
        .into_response()
}

/// `POST /token.php`: `grant_type=authorization_code` (with `code`, `redirect_uri`) or
/// `grant_type=refresh_token` (with `refresh_token`), each with `client_id` and
/// `client_secret`, in a form body. Other grants are `unsupported_grant_type`.
pub(crate) async fn token(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let form = form_of(&body);
    let mut s = sim.lock();
    s.oauth.token_requests += 1;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let grant = field("grant_type");
    if grant != "refresh_token" && grant != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let client_id = field("client_id");
    if s.oauth.clients.get(client_id).map(String::as_str) != Some(field("client_secret"))
        || client_id.is_empty()
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if grant == "authorization_code" {
        let Some(issued) = s.oauth.codes.get(field("code")).cloned() else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
        };
        if let Some((access, refresh)) = issued.exchanged_for {
            // A code used twice: what it issued is revoked too (RFC 6749 §10.5).
            s.bearer_tokens.remove(&access);
            s.oauth.refresh_tokens.remove(&refresh);
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let expired = OffsetDateTime::now_utc() - issued.issued_at
            > time::Duration::seconds(CODE_LIFETIME_SECONDS);
        if expired || issued.client_id != client_id || issued.redirect_uri != field("redirect_uri")
        {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let access = new_token("sim-access");
        let refresh = new_token("sim-refresh");
        s.bearer_tokens.insert(access.clone());
        s.oauth
            .refresh_tokens
            .insert(refresh.clone(), client_id.to_string());
        if let Some(code) = s.oauth.codes.get_mut(field("code")) {
            code.exchanged_for = Some((access.clone(), refresh.clone()));
        }
        return tokens_response(&access, &refresh);
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
    tokens_response(&access, &next_refresh)
}
