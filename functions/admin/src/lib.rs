//! The admin API, the control plane: the one write path for configuration, as JSON
//! over HTTP (API Gateway with IAM auth on a deployed stack, so only principals allowed
//! `execute-api:Invoke` reach it; `dev` serves the same handler on loopback). The CLI
//! and the setup page are its clients.
//!
//! - Configuration ([`config`]): connect and re-authenticate, settings, revoke, the
//!   BambooHR webhook and its keys, targets with every option and their signing
//!   secrets.
//! - Setup links ([`setup_links`]): create, list and revoke the links a customer's IT
//!   admin connects their company with on the setup page (the portal function).
//! - The stack's BambooHR OAuth client ([`oauth_client`]): with one set, the setup page
//!   also offers "Connect with BambooHR".
//! - Reads (`GET`, [`read`]): status (with the stack's dead-letter depth), users,
//!   groups, runs, deliveries, the audit log and evidence. Lists are paginated
//!   (`limit`, `cursor`; answers `{"items", "nextCursor"}`).
//! - Operations (`POST`, [`write`]): ask for a sync, pause, resume, release or discard
//!   a hold, re-push a directory or one user to a target, re-drive dead letters.
//!
//! Every change is audited under the caller's IAM identity ([`caller`]), which API
//! Gateway's `AWS_IAM` authorizer puts in the request context, in the same request and
//! before the answer; a write without one is refused before anything changes.
//!
//! `openapi.yaml` beside this crate describes every route and response; the tests
//! validate the responses against it. Errors are JSON (`{"error": {"code",
//! "message"}}`), their status decided in one place ([`AdminError::status`]).

pub mod body;
pub mod caller;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
#[cfg(feature = "local")]
pub mod local;
pub mod oauth_client;
pub mod read;
pub mod setup_links;
pub mod write;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use sync_engine::{Engine, EngineError};
use tracing::{info, warn};

/// The admin function's configuration, read from its environment once at start: the
/// common settings, the poller's schedules and the stack's webhook URL base.
pub struct Settings {
    /// The common settings and the poller's schedules.
    pub scheduling: function_support::SchedulingSettings,
    /// `WEBHOOK_BASE_URL`: where the stack receives BambooHR webhooks (`…/webhooks/bamboohr/`).
    pub webhook_base_url: Option<String>,
    /// `SETUP_BASE_URL`: the public HTTP API the setup page is served from (links are
    /// `<base>/setup/#t=<token>`).
    pub setup_base_url: Option<String>,
}

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, function_support::ConfigError> {
        Ok(Self {
            scheduling: function_support::SchedulingSettings::from_env()?,
            webhook_base_url: std::env::var("WEBHOOK_BASE_URL")
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            setup_base_url: std::env::var("SETUP_BASE_URL")
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
        })
    }
}

/// Longest list a single response carries.
pub const MAX_LIMIT: usize = 500;

/// What the handler works with: the engine (with its scheduler, retry queue and
/// customer-bus publisher for the write routes; the retry queue also reports the
/// stack's dead-letter depth for the status).
pub struct AdminApi {
    /// The engine over the stack's store, secrets, bus, scheduler and retry queue.
    pub engine: Engine,
    /// Base of the stack's BambooHR webhook URLs (`…/webhooks/bamboohr/`): where a
    /// registered webhook posts unless the request names another URL.
    pub webhook_base_url: Option<String>,
    /// Base of the setup page's URL (the public HTTP API); None: links are answered
    /// as tokens only.
    pub setup_base_url: Option<String>,
}

impl AdminApi {
    /// The API over `engine`, registering webhooks at `webhook_base_url` + directory id.
    pub fn new(engine: Engine, webhook_base_url: Option<String>) -> Self {
        Self {
            engine,
            webhook_base_url,
            setup_base_url: None,
        }
    }

    /// The same API answering setup links under `url` (`<url>/setup/#t=<token>`).
    pub fn with_setup_base_url(mut self, url: Option<String>) -> Self {
        self.setup_base_url = url;
        self
    }

    /// The stack's webhook URL for directory `id`.
    pub fn webhook_url(&self, id: &domain::DirectoryId) -> Result<String, AdminError> {
        let base = self.webhook_base_url.as_deref().ok_or_else(|| {
            AdminError::bad_request(
                "this stack does not know its webhook URL (WEBHOOK_BASE_URL): give url",
            )
        })?;
        Ok(format!("{}/{id}", base.trim_end_matches('/')))
    }
}

pub(crate) fn scheduler(api: &AdminApi) -> Result<&dyn ports::Scheduler, AdminError> {
    api.engine
        .scheduler
        .as_deref()
        .ok_or(AdminError::Engine(EngineError::MissingCapability(
            "scheduler",
        )))
}

/// Why a request was refused or failed. [`AdminError::status`] is the one place a
/// failure becomes an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No route has this path.
    #[error("no such route")]
    NoRoute,
    /// The route exists and names something that does not.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The path, query or body was refused.
    #[error("{0}")]
    BadRequest(String),
    /// A write came without a caller identity to audit it under.
    #[error("{0}")]
    Forbidden(String),
    /// A dead-letter queue's depth could not be read.
    #[error("dead-letter queue: {0}")]
    Queue(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<ports::StoreError> for AdminError {
    fn from(e: ports::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl AdminError {
    /// The HTTP status answering this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine(e) => match e {
                EngineError::DirectoryNotFound(_)
                | EngineError::TargetNotFound(_)
                | EngineError::SetupLink(sync_engine::operate::SetupLinkProblem::NotFound(_)) => {
                    StatusCode::NOT_FOUND
                }
                // The directory's state (paused, held, revoked) or its configuration
                // (a credential it lacks) stands in the way; the request was fine.
                EngineError::DirectoryNotActive { .. } | EngineError::MissingCredential { .. } => {
                    StatusCode::CONFLICT
                }
                EngineError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
                // BambooHR refused the credential given (bad key, missing permission,
                // unknown subdomain): the request's problem. Unreachable: BambooHR's.
                EngineError::Connect(sync_engine::ConnectProblem::Unreachable { .. }) => {
                    StatusCode::BAD_GATEWAY
                }
                EngineError::Connect(sync_engine::ConnectProblem::RateLimited { .. }) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                EngineError::Connect(_) => StatusCode::BAD_REQUEST,
                _ if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The stable code in the error body (one per status).
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::BAD_GATEWAY => "bamboohr_unreachable",
            _ => "internal",
        }
    }

    /// Whether the same request may succeed later (the caller may retry a 503, and a
    /// 502 when BambooHR was unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.status(),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("a static response is valid")
}

/// Answers one request. Never fails: every error is a JSON error response.
pub async fn handler(api: &AdminApi, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    let result = route(api, &method, &parts, &req).await;
    Ok(match result {
        Ok((status, body)) => json_response(status, &body),
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                warn!(path = %path, code = e.code(), reason = %e, "admin request failed");
            } else {
                info!(path = %path, code = e.code(), reason = %e, "admin request refused");
            }
            let mut body = json!({"error": {"code": e.code(), "message": e.to_string()}});
            // A refused setting or definition names the request field it is about.
            if let AdminError::Engine(EngineError::InvalidInput { what, .. }) = &e {
                body["error"]["field"] = json!(what);
            }
            // BambooHR's refusal of a credential, whole, for a client that shows it
            // beside the field concerned (the setup page).
            if let AdminError::Engine(EngineError::Connect(problem)) = &e {
                body["error"]["connect"] = json!(problem);
            }
            json_response(status, &body)
        }
    })
}

async fn route(
    api: &AdminApi,
    method: &Method,
    parts: &[&str],
    req: &Request,
) -> Result<(StatusCode, Value), AdminError> {
    let wrong_method =
        |takes: &str| AdminError::MethodNotAllowed(format!("{} takes {takes}", req.uri().path()));
    #[derive(Clone, Copy)]
    enum Family {
        Config,
        SetupLinks,
        OAuthClient,
    }
    let configuration = config::methods(parts)
        .map(|m| (m, Family::Config))
        .or_else(|| setup_links::methods(parts).map(|m| (m, Family::SetupLinks)))
        .or_else(|| oauth_client::methods(parts).map(|m| (m, Family::OAuthClient)));
    if let Some((methods, family)) = configuration {
        if !methods.contains(method) {
            let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
            return Err(wrong_method(&names.join(" or ")));
        }
        // Writes need the caller they are audited under before anything is read.
        let actor = if *method == Method::POST {
            Some(caller::actor(req)?)
        } else {
            None
        };
        let actor_ref = actor.as_deref();
        let answer = match family {
            Family::Config => config::route(api, method, parts, req, actor_ref).await?,
            Family::SetupLinks => setup_links::route(api, method, parts, req, actor_ref).await?,
            Family::OAuthClient => oauth_client::route(api, method, parts, req, actor_ref).await?,
        };
        if let Some(actor) = &actor {
            info!(route = %parts.join("/"), actor = %actor, status = answer.0.as_u16(), "admin change made");
        }
        return Ok(answer);
    }
    if write::is_write_route(parts) {
        if *method != Method::POST {
            return Err(wrong_method("POST"));
        }
        return write::route(api, parts, req).await;
    }
    if read::is_read_route(parts) {
        if *method != Method::GET {
            return Err(wrong_method("GET"));
        }
        return read::route(api, parts, req)
            .await
            .map(|body| (StatusCode::OK, body));
    }
    Err(AdminError::NoRoute)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("API values serialize")
}

pub(crate) fn dir_id(s: &str) -> Result<domain::DirectoryId, AdminError> {
    domain::DirectoryId::parse(s).map_err(|e| AdminError::bad_request(format!("directory id: {e}")))
}
