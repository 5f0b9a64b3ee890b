//! The stack's BambooHR OAuth client routes: with one set, the setup page offers
//! "Connect with BambooHR" (the authorization-code flow) beside the API-key form. The
//! client secret is accepted here and never answered; setting and removing are audited
//! (`oauth_client_change`, under `GET /admin/directories/_stack/audit`) under the caller.
//!
//! | route | does |
//! |---|---|
//! | `GET /admin/oauth-client` | whether one is set, and its client id |
//! | `POST /admin/oauth-client` | set or replace: `{"clientId", "clientSecret"}` |
//! | `POST /admin/oauth-client/remove` | remove (the button leaves the page) |

use lambda_http::http::{Method, StatusCode};
use lambda_http::Request;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use sync_engine::operate;

use crate::body::{body, no_body};
use crate::{to_json, AdminApi, AdminError};

/// The methods an OAuth client route takes, or `None` when `parts` name none.
pub fn methods(parts: &[&str]) -> Option<&'static [Method]> {
    const POST: &[Method] = &[Method::POST];
    const BOTH: &[Method] = &[Method::GET, Method::POST];
    match parts {
        ["admin", "oauth-client"] => Some(BOTH),
        ["admin", "oauth-client", "remove"] => Some(POST),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SetBody {
    client_id: String,
    client_secret: SecretString,
}

/// Answers an OAuth client route. `actor` is the verified caller (writes only).
pub async fn route(
    api: &AdminApi,
    method: &Method,
    parts: &[&str],
    req: &Request,
    actor: Option<&str>,
) -> Result<(StatusCode, Value), AdminError> {
    let engine = &api.engine;
    let actor = || {
        actor.ok_or_else(|| AdminError::Forbidden("no IAM caller identity in the request".into()))
    };
    let view = match (method.clone(), parts) {
        (Method::GET, ["admin", "oauth-client"]) => operate::oauth_client_view(engine).await?,
        (Method::POST, ["admin", "oauth-client"]) => {
            let b: SetBody = body(req)?;
            operate::set_oauth_client(engine, &b.client_id, b.client_secret, actor()?).await?
        }
        (Method::POST, ["admin", "oauth-client", "remove"]) => {
            no_body(req)?;
            operate::remove_oauth_client(engine, actor()?).await?
        }
        _ => return Err(AdminError::NoRoute),
    };
    Ok((StatusCode::OK, to_json(&view)))
}
