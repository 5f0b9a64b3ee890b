//! The setup page (the portal): where a customer's IT admin, holding a setup link an
//! operator sent, connects their BambooHR company, sees it linked, chooses what syncs,
//! and can re-authenticate or disconnect. Served from the stack's public HTTP API
//! (`GET/POST /setup/…`) by this function, and by `dev` on loopback with the same
//! handler ([`local`]).
//!
//! - The link's token is in the URL fragment (`/setup/#t=…`), which browsers never
//!   send; the page's script exchanges it (`POST /setup/session`) for a session cookie
//!   (HttpOnly, SameSite=Strict, Secure except on loopback) and drops the fragment.
//! - Every other POST needs the session and its CSRF token (`X-CSRF-Token`, bound to
//!   the session: `sync_engine::operate::setup_links::csrf_token`), a JSON body (so a
//!   plain cross-site form cannot post), and no foreign `Origin`.
//! - Pages are rendered here ([`page`]) with one script and one stylesheet served by
//!   this function ([`assets`]) under a strict Content-Security-Policy: nothing inline,
//!   nothing from elsewhere.
//! - The page is a client of the admin API, the one writer of configuration: connect
//!   (which checks the credential against BambooHR first), settings and revoke are its
//!   routes, called with this function's own IAM identity (SigV4) on behalf of
//!   `setup-link:<link id>`, so the audit log names both, and only ever for the link's
//!   own directory. It reads what it shows (status, the company's fields) itself. It
//!   never shows the stored key.
//! - Credential checks and failed token exchanges are rate-limited per link; an
//!   expired or revoked link shows a page saying so and changes nothing.
//! - When the operator set the stack's BambooHR OAuth client, the page also offers
//!   "Connect with BambooHR" ([`oauth`]: the authorization-code flow, its `state`
//!   bound to the session).

pub mod assets;
#[cfg(feature = "local")]
pub mod local;
pub mod oauth;
pub mod page;
mod routes;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use sync_engine::operate::SetupLinkProblem;
use sync_engine::{ConnectProblem, Engine, EngineError};
use tracing::{info, warn};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bsync_setup";

/// The Content-Security-Policy of every answer: only this origin's script, style and
/// fetches; no inline script or style; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Largest request body the page sends (a subdomain and a key, or a field choice).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Whether the session cookie is marked `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookies {
    /// Always (the stack's HTTPS API).
    Secure,
    /// Not: `dev` serves plain HTTP on loopback, where browsers would drop it.
    Loopback,
}

/// What the handler works with.
pub struct Portal {
    /// The engine, for what the page reads and the setup link's own records.
    pub engine: Engine,
    /// The admin API, through which every configuration change is made.
    pub admin: admin::client::AdminClient,
    /// How the session cookie is marked.
    pub cookies: Cookies,
}

impl Portal {
    /// The portal over `engine`, changing configuration through `admin`.
    pub fn new(engine: Engine, admin: admin::client::AdminClient, cookies: Cookies) -> Self {
        Self {
            engine,
            admin,
            cookies,
        }
    }
}

/// Why "Connect with BambooHR" did not connect. Each changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OAuthProblem {
    /// The stack has no BambooHR OAuth client set.
    #[error("connecting with BambooHR is not offered here: use an API key")]
    NotOffered,
    /// The company's admin did not allow access at BambooHR.
    #[error("access was not allowed at BambooHR")]
    Denied,
    /// The `state` was not made by this session (another site or browser started it).
    #[error("the sign-in did not start from this page")]
    BadState,
    /// The `state` is older than the time allowed for consent.
    #[error("the sign-in took too long")]
    StateExpired,
    /// BambooHR refused the code: expired, used already, or another client's.
    #[error("BambooHR refused the sign-in code")]
    CodeRefused,
}

/// Why a request was refused or failed. [`PortalError::status`] and
/// [`PortalError::code`] are the one place each becomes an answer.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No such route.
    #[error("no such page")]
    NotFound,
    /// The route takes another method.
    #[error("this page takes {0}")]
    MethodNotAllowed(&'static str),
    /// A POST without a JSON body.
    #[error("send JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// A POST from another site, or without the session's CSRF token.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No live session: the page must be opened from its link again.
    #[error("your session ended: open the setup link again")]
    NoSession,
    /// The body was refused.
    #[error("{0}")]
    BadRequest(String),
    /// Settings or disconnect before the company is connected.
    #[error("the company is not connected")]
    NotConnected,
    /// The admin API could not be reached or failed.
    #[error("the admin API failed: {0}")]
    Upstream(String),
    /// "Connect with BambooHR" did not connect.
    #[error(transparent)]
    OAuth(OAuthProblem),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<admin::client::ClientError> for PortalError {
    /// The admin API's refusal as the page shows it: BambooHR's refusal of the key as
    /// the engine's, a refused value as invalid input naming its field.
    fn from(e: admin::client::ClientError) -> Self {
        use admin::client::ClientError;
        match e {
            ClientError::Api {
                connect: Some(problem),
                ..
            } => Self::Engine(EngineError::Connect(*problem)),
            ClientError::Api {
                status: 400,
                field,
                message,
                ..
            } => Self::Engine(EngineError::InvalidInput {
                what: field.unwrap_or_else(|| "request".into()),
                reason: message,
            }),
            ClientError::Api {
                status: 404 | 409, ..
            } => Self::NotConnected,
            ClientError::Api { status, code, .. } => Self::Upstream(format!("{status} {code}")),
            ClientError::Transport(t) => Self::Upstream(t),
        }
    }
}

impl From<ports::StoreError> for PortalError {
    fn from(e: ports::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl PortalError {
    /// The HTTP status answering this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NoSession => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotConnected => StatusCode::CONFLICT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::OAuth(OAuthProblem::NotOffered) => StatusCode::NOT_FOUND,
            Self::OAuth(OAuthProblem::Denied) => StatusCode::FORBIDDEN,
            Self::OAuth(_) => StatusCode::BAD_REQUEST,
            Self::Engine(e) => match e {
                EngineError::SetupLink(p) => match p {
                    SetupLinkProblem::Invalid | SetupLinkProblem::NotFound(_) => {
                        StatusCode::UNAUTHORIZED
                    }
                    SetupLinkProblem::Expired | SetupLinkProblem::Revoked => StatusCode::GONE,
                    SetupLinkProblem::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                },
                EngineError::Connect(ConnectProblem::RateLimited { .. }) => {
                    StatusCode::TOO_MANY_REQUESTS
                }
                EngineError::Connect(ConnectProblem::Unreachable { .. }) => StatusCode::BAD_GATEWAY,
                EngineError::Connect(_) | EngineError::InvalidInput { .. } => {
                    StatusCode::BAD_REQUEST
                }
                // Settings or disconnect before the company is connected.
                EngineError::DirectoryNotActive { .. } | EngineError::DirectoryNotFound(_) => {
                    StatusCode::CONFLICT
                }
                _ if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The stable code the page's script reads.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Forbidden(_) => "forbidden",
            Self::NoSession => "no_session",
            Self::BadRequest(_) => "bad_request",
            Self::NotConnected => "not_connected",
            Self::Upstream(_) => "unavailable",
            Self::OAuth(p) => match p {
                OAuthProblem::NotOffered => "oauth_not_offered",
                OAuthProblem::Denied => "oauth_denied",
                OAuthProblem::BadState => "oauth_bad_state",
                OAuthProblem::StateExpired => "oauth_state_expired",
                OAuthProblem::CodeRefused => "oauth_code_refused",
            },
            Self::Engine(EngineError::SetupLink(p)) => match p {
                SetupLinkProblem::Invalid | SetupLinkProblem::NotFound(_) => "invalid_link",
                SetupLinkProblem::Expired => "expired",
                SetupLinkProblem::Revoked => "revoked",
                SetupLinkProblem::RateLimited { .. } => "rate_limited",
            },
            Self::Engine(EngineError::Connect(p)) => match p {
                ConnectProblem::BadApiKey { .. } => "bad_api_key",
                ConnectProblem::MissingPermission { .. } => "missing_permission",
                ConnectProblem::UnknownSubdomain { .. } => "unknown_subdomain",
                ConnectProblem::RateLimited { .. } => "bamboohr_rate_limited",
                ConnectProblem::Unreachable { .. } => "bamboohr_unreachable",
            },
            Self::Engine(EngineError::InvalidInput { .. }) => "invalid",
            Self::Engine(
                EngineError::DirectoryNotActive { .. } | EngineError::DirectoryNotFound(_),
            ) => "not_connected",
            Self::Engine(_) => "unavailable",
        }
    }

    /// The form field the error is about, for an inline message beside it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Engine(EngineError::Connect(p)) => match p {
                ConnectProblem::BadApiKey { .. } | ConnectProblem::MissingPermission { .. } => {
                    Some("apiKey")
                }
                ConnectProblem::UnknownSubdomain { .. } => Some("subdomain"),
                _ => None,
            },
            Self::Engine(EngineError::InvalidInput { what, .. }) if what == "subdomain" => {
                Some("subdomain")
            }
            _ => None,
        }
    }

    /// What the customer's IT admin reads: plain words and what to do, never a
    /// stack detail.
    pub fn message(&self) -> String {
        const AGAIN: &str = "Nothing was changed. Start again with Connect with BambooHR.";
        match self {
            Self::OAuth(p) => match p {
                OAuthProblem::NotOffered => {
                    "Connecting with BambooHR is not offered here. Use an API key instead.".into()
                }
                OAuthProblem::Denied => format!("Access was not allowed at BambooHR. {AGAIN}"),
                OAuthProblem::BadState => format!(
                    "This sign-in did not start from this setup page in this browser. {AGAIN}"
                ),
                OAuthProblem::StateExpired => format!(
                    "The sign-in at BambooHR took longer than {} minutes. {AGAIN}",
                    sync_engine::operate::setup_links::OAUTH_STATE_MINUTES
                ),
                OAuthProblem::CodeRefused => format!(
                    "BambooHR did not accept the sign-in: it expired or was already used. {AGAIN}"
                ),
            },
            Self::Engine(EngineError::Connect(p)) => match p {
                ConnectProblem::BadApiKey { .. } => "BambooHR did not accept this API key. \
                    Check that you copied all of it, and that it was not deleted."
                    .into(),
                ConnectProblem::MissingPermission { what, .. } => format!(
                    "This API key cannot read what the sync needs ({what}). Give its user \
                     access to employee fields (a read-only access level is enough)."
                ),
                ConnectProblem::UnknownSubdomain { subdomain, .. } => format!(
                    "BambooHR has no company at {subdomain}.bamboohr.com. Use the part of \
                     your BambooHR address before .bamboohr.com."
                ),
                ConnectProblem::RateLimited {
                    retry_after_seconds,
                    ..
                } => format!(
                    "BambooHR is limiting requests right now. Try again in {} seconds.",
                    retry_after_seconds.unwrap_or(60)
                ),
                ConnectProblem::Unreachable { .. } => {
                    "BambooHR could not be reached. Try again in a minute.".into()
                }
            },
            Self::Engine(EngineError::SetupLink(p)) => match p {
                SetupLinkProblem::RateLimited {
                    retry_after_seconds,
                } => format!(
                    "Too many attempts in a minute. Try again in {retry_after_seconds} seconds."
                ),
                other => format!("{}.", capitalised(&other.to_string())),
            },
            Self::Engine(EngineError::InvalidInput { what, reason }) if what == "subdomain" => {
                format!("Subdomain: {reason}.")
            }
            Self::Engine(EngineError::InvalidInput { reason, .. }) => format!("{reason}."),
            Self::Engine(
                EngineError::DirectoryNotActive { .. } | EngineError::DirectoryNotFound(_),
            )
            | Self::NotConnected => "Connect your BambooHR company first.".into(),
            Self::Engine(_) | Self::Upstream(_) => {
                "Something went wrong on our side. Try again in a minute.".into()
            }
            other => capitalised(&other.to_string()),
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Headers every answer carries.
fn secure(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    let set = |h: &mut lambda_http::http::HeaderMap, name: &'static str, v: &'static str| {
        h.insert(name, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CONTENT_SECURITY_POLICY);
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    if !h.contains_key("cache-control") {
        set(h, "cache-control", "no-store");
    }
    resp
}

/// A request header's value as text, when it is there and readable.
pub(crate) fn header_text<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("a JSON response is valid")
}

/// Answers one request. Never fails: every error is an answer.
pub async fn handler(portal: &Portal, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let resp = match routes::route(portal, &req).await {
        Ok(resp) => resp,
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                warn!(path = %path, method = %method, code = e.code(), reason = %e, "setup page request failed");
            } else {
                info!(path = %path, method = %method, code = e.code(), "setup page request refused");
            }
            if method == lambda_http::http::Method::GET {
                page::error_page(status, &e)
            } else {
                let mut error = json!({"code": e.code(), "message": e.message()});
                if let Some(field) = e.field() {
                    error["field"] = json!(field);
                }
                json_response(status, &json!({ "error": error }))
            }
        }
    };
    Ok(secure(resp))
}
