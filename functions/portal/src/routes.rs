//! The routes: the page, its two assets, the OAuth callback page, and the POSTs
//! (session, connect, settings, disconnect, and OAuth's start and finish), with the
//! checks every POST passes first.

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use sync_engine::operate;
use sync_engine::operate::setup_links::{self, csrf_matches, link_actor};
use sync_engine::EngineError;

use lambda_http::RequestExt;

use crate::{assets, json_response, oauth, page, Cookies, Portal, PortalError, MAX_BODY_BYTES};
use crate::{header_text, SESSION_COOKIE};

/// Answers one request, or says why not.
pub(crate) async fn route(portal: &Portal, req: &Request) -> Result<Response<Body>, PortalError> {
    let path = req.uri().path();
    let method = req.method();
    match path {
        // Both: API Gateway may hand over the bare path for `…/setup/`.
        "/setup" | "/setup/" => {
            only(method, Method::GET, "GET")?;
            page::page(portal, cookie(req).as_deref()).await
        }
        "/setup/assets/portal.js" | "/setup/assets/portal.css" => {
            only(method, Method::GET, "GET")?;
            Ok(assets::answer(path))
        }
        // Where BambooHR sends the browser back after consent (`code` and `state`, or
        // `error`). No session is needed to show it: a cross-site redirect carries no
        // SameSite=Strict cookie; the page's script finishes with a same-site POST.
        oauth::CALLBACK_PATH => {
            only(method, Method::GET, "GET")?;
            Ok(page::oauth_callback(req.query_string_parameters_ref()))
        }
        "/setup/session"
        | "/setup/connect"
        | "/setup/settings"
        | "/setup/disconnect"
        | "/setup/oauth/start"
        | "/setup/oauth/finish" => {
            only(method, Method::POST, "POST")?;
            same_site(req)?;
            post(portal, path, req).await
        }
        _ => Err(PortalError::NotFound),
    }
}

fn only(method: &Method, wanted: Method, name: &'static str) -> Result<(), PortalError> {
    if *method == wanted {
        Ok(())
    } else {
        Err(PortalError::MethodNotAllowed(name))
    }
}

/// The session cookie's value, if the request has one.
pub(crate) fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// Refuses a POST another site's page made: a browser says so in `Sec-Fetch-Site`,
/// or with an `Origin` whose host is not this one; and a body that is not JSON, which
/// a plain cross-site form cannot send.
fn same_site(req: &Request) -> Result<(), PortalError> {
    if let Some(site) = header_text(req, "sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Err(PortalError::Forbidden(
                "a setup page request from another site",
            ));
        }
    }
    if let (Some(origin), Some(host)) = (header_text(req, "origin"), header_text(req, "host")) {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(origin);
        if origin_host != host {
            return Err(PortalError::Forbidden(
                "a setup page request from another site",
            ));
        }
    }
    let json = header_text(req, "content-type")
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(PortalError::UnsupportedMediaType);
    }
    Ok(())
}

fn body<T: DeserializeOwned>(req: &Request) -> Result<T, PortalError> {
    let bytes: &[u8] = match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(PortalError::BadRequest("the request is too large".into()));
    }
    // The message names the field at most: bodies carry API keys and tokens.
    serde_json::from_slice(bytes).map_err(|e| {
        PortalError::BadRequest(format!(
            "the request was not understood ({})",
            if e.is_data() {
                "a field is missing or of the wrong kind"
            } else {
                "not JSON"
            }
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    token: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConnectBody {
    subdomain: String,
    api_key: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsBody {
    #[serde(default)]
    group_sources: Vec<String>,
    #[serde(default)]
    extra_fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DisconnectBody {
    confirm: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthStartBody {
    subdomain: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthFinishBody {
    code: SecretString,
    state: String,
}

/// `acme`, from what people paste: `acme`, `acme.bamboohr.com`,
/// `https://acme.bamboohr.com/home`.
pub(crate) fn subdomain(given: &str) -> String {
    let s = given.trim().to_ascii_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let host = s.split('/').next().unwrap_or_default();
    host.strip_suffix(".bamboohr.com")
        .unwrap_or(host)
        .to_string()
}

fn set_cookie(portal: &Portal, value: &str, max_age: i64) -> String {
    let secure = match portal.cookies {
        Cookies::Secure => "; Secure",
        Cookies::Loopback => "",
    };
    format!("{SESSION_COOKIE}={value}; Path=/setup; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

async fn post(portal: &Portal, path: &str, req: &Request) -> Result<Response<Body>, PortalError> {
    let engine = &portal.engine;
    if path == "/setup/session" {
        let b: SessionBody = body(req)?;
        let (link, session) = setup_links::open_session(engine, b.token.expose_secret()).await?;
        let now = engine.clock.now();
        let max_age = (link.expires_at - now)
            .whole_seconds()
            .clamp(0, setup_links::SESSION_HOURS * 3600);
        let mut resp = json_response(StatusCode::OK, &json!({"opened": true}));
        resp.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(portal, session.expose_secret(), max_age)
                .parse()
                .expect("a cookie of token characters is a valid header"),
        );
        return Ok(resp);
    }
    // Every other POST: the session first (an expired or revoked link stops here,
    // before anything is read or changed), then its CSRF token.
    let cookie = cookie(req).ok_or(PortalError::NoSession)?;
    let (link, session) =
        setup_links::session_link(engine, &cookie)
            .await
            .map_err(|e| match e {
                EngineError::SetupLink(operate::SetupLinkProblem::Invalid) => {
                    PortalError::NoSession
                }
                other => other.into(),
            })?;
    if path == "/setup/oauth/finish" {
        // The callback page has no CSRF token (it was reached from BambooHR, with no
        // cookie); the OAuth `state`, bound to this session, is the CSRF check.
        let b: OAuthFinishBody = body(req)?;
        return oauth::finish(portal, req, &link, &session, b.code, &b.state).await;
    }
    let csrf = header_text(req, "x-csrf-token").unwrap_or_default();
    if !csrf_matches(&session, csrf) {
        return Err(PortalError::Forbidden(
            "this request has no valid CSRF token: reload the page and try again",
        ));
    }
    // Changes go through the admin API, audited under this function's identity for
    // the link.
    let actor = link_actor(&link);
    let id = &link.directory_id;
    let admin = &portal.admin;
    match path {
        "/setup/connect" => {
            let b: ConnectBody = body(req)?;
            let subdomain = subdomain(&b.subdomain);
            // Counted before BambooHR is called, so guessing keys is slow.
            setup_links::count_attempt(engine, &link).await?;
            let outcome = admin
                .post_for(
                    "/admin/directories",
                    &json!({
                        "id": id,
                        "subdomain": subdomain,
                        "baseUrl": link.bamboohr_base_url,
                        "apiKey": b.api_key.expose_secret(),
                    }),
                    &actor,
                )
                .await?;
            let employees = outcome["employees"].as_u64().unwrap_or_default();
            setup_links::record_linked(engine, &link, Some(employees)).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"linked": true, "employees": employees,
                        "subdomain": outcome["directory"]["subdomain"]}),
            ))
        }
        "/setup/oauth/start" => {
            let b: OAuthStartBody = body(req)?;
            oauth::start(portal, req, &link, &session, &subdomain(&b.subdomain)).await
        }
        "/setup/settings" => {
            let b: SettingsBody = body(req)?;
            let updated = admin
                .post_for(
                    &format!("/admin/directories/{id}/settings"),
                    &json!({"groupSources": b.group_sources, "extraFields": b.extra_fields}),
                    &actor,
                )
                .await?;
            let changed: Vec<&String> = updated["changed"]
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            Ok(json_response(
                StatusCode::OK,
                &json!({"saved": true, "changed": changed}),
            ))
        }
        "/setup/disconnect" => {
            let b: DisconnectBody = body(req)?;
            if !b.confirm {
                return Err(PortalError::BadRequest(
                    "tick the box to confirm that syncing stops".into(),
                ));
            }
            admin
                .post_for(
                    &format!("/admin/directories/{id}/revoke"),
                    &json!({}),
                    &actor,
                )
                .await?;
            setup_links::record_linked(engine, &link, None).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"disconnected": true}),
            ))
        }
        _ => Err(PortalError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_address_reads_as_its_subdomain() {
        for given in [
            "acme",
            " Acme ",
            "acme.bamboohr.com",
            "https://acme.bamboohr.com/home",
        ] {
            assert_eq!(subdomain(given), "acme", "{given}");
        }
    }
}
