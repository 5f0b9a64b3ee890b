//! The setup link routes: an operator creates a link for a directory (which need not be
//! connected yet), lists its links and revokes one. The token is answered once, in the
//! link's URL, when the link is created; lists never carry it. Creating and revoking
//! are audited (`setup_link_change`) under the caller.
//!
//! | route | does |
//! |---|---|
//! | `GET /admin/directories/{id}/setup-links` | list (ids, expiry, state) |
//! | `POST /admin/directories/{id}/setup-links` | create (201): `{"expiresInDays"?, "bamboohrBaseUrl"?}` |
//! | `POST /admin/directories/{id}/setup-links/{link}/revoke` | revoke |

use lambda_http::http::{Method, StatusCode};
use lambda_http::Request;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use sync_engine::operate::{self, NewSetupLink};

use crate::body::{body, no_body, page};
use crate::{dir_id, to_json, AdminApi, AdminError};

/// The methods a setup link route takes, or `None` when `parts` name none.
pub fn methods(parts: &[&str]) -> Option<&'static [Method]> {
    const POST: &[Method] = &[Method::POST];
    const BOTH: &[Method] = &[Method::GET, Method::POST];
    match parts {
        ["admin", "directories", _, "setup-links"] => Some(BOTH),
        ["admin", "directories", _, "setup-links", _, "revoke"] => Some(POST),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    expires_in_days: Option<u32>,
    bamboohr_base_url: Option<String>,
}

/// Answers a setup link route. `actor` is the verified caller (writes only).
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
    match (method.clone(), parts) {
        (Method::GET, ["admin", "directories", id, "setup-links"]) => {
            let links = operate::list_setup_links(engine, &dir_id(id)?).await?;
            Ok((StatusCode::OK, page(req, links, |l| l.id.clone(), 100)?))
        }
        (Method::POST, ["admin", "directories", id, "setup-links"]) => {
            let id = dir_id(id)?;
            let b: CreateBody = body(req)?;
            let created = operate::create_setup_link(
                engine,
                &id,
                NewSetupLink {
                    expires_in_days: b.expires_in_days,
                    bamboohr_base_url: b.bamboohr_base_url,
                },
                actor()?,
            )
            .await?;
            // The token is in the URL's fragment: browsers never send a fragment to a
            // server, so it stays out of access logs and Referer headers.
            let url = api.setup_base_url.as_deref().map(|base| {
                format!(
                    "{}/setup/#t={}",
                    base.trim_end_matches('/'),
                    created.token.expose_secret()
                )
            });
            Ok((
                StatusCode::CREATED,
                json!({
                    "link": to_json(&created.link),
                    "url": url,
                    "token": created.token.expose_secret(),
                }),
            ))
        }
        (Method::POST, ["admin", "directories", id, "setup-links", link, "revoke"]) => {
            no_body(req)?;
            let view = operate::revoke_setup_link(engine, &dir_id(id)?, link, actor()?).await?;
            Ok((StatusCode::OK, to_json(&view)))
        }
        _ => Err(AdminError::NoRoute),
    }
}
