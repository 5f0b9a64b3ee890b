//! "Connect with BambooHR": the OAuth 2.0 authorization-code flow (RFC 6749 §4.1),
//! offered when the operator set the stack's BambooHR OAuth client through the admin
//! API (`sync_engine::operate::oauth_client`).
//!
//! 1. `POST /setup/oauth/start` (session, CSRF token): the page's script gets the
//!    company's authorize URL (`<company>/authorize.php`, the spec's
//!    `authorizationUrl`) with a `state` bound to the session
//!    (`setup_links::oauth_state`) and the callback as `redirect_uri`, and goes there.
//! 2. BambooHR asks its admin to allow access, then sends the browser to
//!    `GET /setup/oauth/callback` with `code` and `state` (or `error`).
//! 3. That page's script posts them back (`POST /setup/oauth/finish`, same site, so
//!    the session cookie goes along): the `state` is checked against the session, the
//!    code exchanged at the company's `/token.php`, and the directory connected with
//!    the tokens through the admin API, as the API-key form does.
//!
//! Denied consent, a foreign or stale `state` and a refused code change nothing and
//! say so on the page.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use ports::SetupLink;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sync_engine::operate::setup_links::{self, link_actor, OAuthStateProblem};
use sync_engine::source::connect::{exchange_authorization_code, CodeExchange};

use crate::{header_text, json_response, Cookies, OAuthProblem, Portal, PortalError};

/// Where BambooHR sends the browser back.
pub const CALLBACK_PATH: &str = "/setup/oauth/callback";

/// What the page asks BambooHR for: employee data and its custom fields, the company's
/// field list (what the page offers to sync), and a refresh token so the sync keeps
/// working after the access token expires.
pub const SCOPES: &str = "employee employee:custom_fields company:details offline_access";

/// The BambooHR base URL of the link's company: the link's own (a simulator, a proxy)
/// or `https://<subdomain>.bamboohr.com`.
fn company_base(link: &SetupLink, subdomain: &str) -> String {
    link.bamboohr_base_url
        .clone()
        .unwrap_or_else(|| format!("https://{subdomain}.bamboohr.com"))
        .trim_end_matches('/')
        .to_string()
}

/// The callback's absolute URL on this host: the `redirect_uri` of both the authorize
/// request and the code exchange, which must match.
fn redirect_uri(portal: &Portal, req: &Request) -> Result<String, PortalError> {
    let host = header_text(req, "host")
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))
        .ok_or_else(|| PortalError::BadRequest("the request names no host".into()))?;
    let scheme = match portal.cookies {
        Cookies::Secure => "https",
        Cookies::Loopback => "http",
    };
    Ok(format!("{scheme}://{host}{CALLBACK_PATH}"))
}

fn valid_subdomain(subdomain: &str) -> Result<(), PortalError> {
    let ok = !subdomain.is_empty()
        && subdomain.len() <= 63
        && subdomain
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(PortalError::Engine(
            sync_engine::EngineError::InvalidInput {
                what: "subdomain".into(),
                reason: "enter the part of your BambooHR address before .bamboohr.com".into(),
            },
        ))
    }
}

/// `POST /setup/oauth/start`: the authorize URL to send the browser to.
pub(crate) async fn start(
    portal: &Portal,
    req: &Request,
    link: &SetupLink,
    session: &SecretString,
    subdomain: &str,
) -> Result<Response<Body>, PortalError> {
    let engine = &portal.engine;
    let client = sync_engine::operate::oauth_client(engine)
        .await?
        .ok_or(PortalError::OAuth(OAuthProblem::NotOffered))?;
    valid_subdomain(subdomain)?;
    let state = setup_links::oauth_state(session, subdomain, engine.clock.now());
    let mut url = url::Url::parse(&format!("{}/authorize.php", company_base(link, subdomain)))
        .map_err(|_| PortalError::BadRequest("the company's address is not valid".into()))?;
    url.query_pairs_mut()
        .append_pair("request", "authorize")
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &redirect_uri(portal, req)?)
        .append_pair("scope", SCOPES)
        .append_pair("state", &state);
    tracing::info!(link_id = %link.id, "OAuth consent started");
    Ok(json_response(
        StatusCode::OK,
        &json!({"authorizeUrl": url.to_string()}),
    ))
}

/// `POST /setup/oauth/finish`: checks the `state`, exchanges the code and connects.
pub(crate) async fn finish(
    portal: &Portal,
    req: &Request,
    link: &SetupLink,
    session: &SecretString,
    code: SecretString,
    state: &str,
) -> Result<Response<Body>, PortalError> {
    let engine = &portal.engine;
    let subdomain = setup_links::oauth_state_subdomain(session, state, engine.clock.now())
        .map_err(|p| {
            PortalError::OAuth(match p {
                OAuthStateProblem::Invalid => OAuthProblem::BadState,
                OAuthStateProblem::Expired => OAuthProblem::StateExpired,
            })
        })?;
    let client = sync_engine::operate::oauth_client(engine)
        .await?
        .ok_or(PortalError::OAuth(OAuthProblem::NotOffered))?;
    if code.expose_secret().is_empty() {
        return Err(PortalError::OAuth(OAuthProblem::CodeRefused));
    }
    // Counted before BambooHR is called, as a key check is.
    setup_links::count_attempt(engine, link).await?;
    let base = company_base(link, &subdomain);
    let tokens = match exchange_authorization_code(
        engine,
        &subdomain,
        &base,
        &code,
        &redirect_uri(portal, req)?,
        &client,
    )
    .await?
    {
        CodeExchange::Tokens(t) => t,
        CodeExchange::Refused => {
            tracing::info!(link_id = %link.id, "BambooHR refused the authorization code");
            return Err(PortalError::OAuth(OAuthProblem::CodeRefused));
        }
    };
    let oauth = json!({
        "accessToken": tokens.access_token.expose_secret(),
        "refreshToken": tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_string()),
        "clientId": client.client_id,
        "clientSecret": client.client_secret.expose_secret(),
    });
    let outcome = portal
        .admin
        .post_for(
            "/admin/directories",
            &json!({
                "id": link.directory_id,
                "subdomain": subdomain,
                "baseUrl": link.bamboohr_base_url,
                "oauth": oauth,
            }),
            &link_actor(link),
        )
        .await?;
    let employees = outcome["employees"].as_u64().unwrap_or_default();
    setup_links::record_linked(engine, link, Some(employees)).await?;
    tracing::info!(link_id = %link.id, employees, "connected with OAuth");
    Ok(json_response(
        StatusCode::OK,
        &json!({"linked": true, "employees": employees, "subdomain": subdomain}),
    ))
}
