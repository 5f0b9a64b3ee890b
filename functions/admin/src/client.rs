//! A client of the admin API (feature `client`): the CLI and the setup page make every
//! configuration change, and the CLI every read, through the same routes and the same
//! handler code, wherever the stack runs.
//!
//! - A deployed stack: HTTPS to its `AdminApiUrl`, each request signed with SigV4
//!   (service `execute-api`) from the operator's AWS credentials, as API Gateway's IAM
//!   authorizer expects; the audit log names whoever those credentials are.
//! - The local stack while `dev` runs: HTTP on loopback to the server `dev` started,
//!   with the bearer token `dev` wrote to the data directory ([`DEV_ADMIN_FILE`]).
//! - The local stack without `dev`: the admin handler in this process, over the data
//!   directory's store, with the operator's local identity.
//!
//! An answer that is not 2xx becomes [`ClientError::Api`] with the API's own code,
//! message and, where the API gives them, the field concerned and BambooHR's refusal.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::AdminApi;
use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable code.
        code: String,
        /// The API's message.
        message: String,
        /// The request field the error is about, when the API names one.
        field: Option<String>,
        /// BambooHR's refusal of a credential, when that was the error.
        connect: Option<Box<sync_engine::ConnectProblem>>,
    },
    /// The API could not be called, or answered what this client cannot read.
    #[error("{0}")]
    Transport(String),
}

/// The file in a data directory where a running `dev` names its admin endpoint and
/// token (owner-only).
pub const DEV_ADMIN_FILE: &str = "admin-endpoint.json";

/// How long one admin request may take (a re-push runs within the request).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where requests go.
pub enum Transport {
    /// The admin handler in this process, audited under `actor`.
    InProcess {
        /// The API over the local stack.
        api: Arc<AdminApi>,
        /// Who the operator is.
        actor: String,
    },
    /// A running `dev`'s loopback server.
    Dev {
        /// Its base URL (`http://127.0.0.1:port`).
        url: String,
        /// Its bearer token.
        token: SecretString,
    },
    /// A deployed stack's admin API, SigV4-signed.
    Deployed {
        /// The API's base URL (ending before `/admin/`).
        url: String,
        /// Where the AWS credentials and region come from.
        sdk: Box<aws_config::SdkConfig>,
    },
}

/// A client of the admin API.
pub struct AdminClient {
    transport: Transport,
    http: reqwest::Client,
}

/// What a running `dev` writes to [`DEV_ADMIN_FILE`].
#[derive(serde::Serialize, serde::Deserialize)]
pub struct DevEndpoint {
    /// Its base URL.
    pub url: String,
    /// Its bearer token.
    pub token: String,
}

impl AdminClient {
    /// A client over `transport`.
    pub fn new(transport: Transport) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Transport(format!("HTTP client: {e}")))?;
        Ok(Self { transport, http })
    }

    /// The running `dev`'s endpoint in `data_dir`, if one answers.
    pub async fn dev_endpoint(data_dir: &Path) -> Option<Transport> {
        let text = std::fs::read_to_string(data_dir.join(DEV_ADMIN_FILE)).ok()?;
        let e: DevEndpoint = serde_json::from_str(&text).ok()?;
        // A file left by a `dev` that crashed names a port nobody answers on.
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        probe
            .get(format!("{}/admin/health", e.url))
            .send()
            .await
            .ok()?;
        Some(Transport::Dev {
            url: e.url,
            token: SecretString::from(e.token),
        })
    }

    /// Calls `method path` with `query` and a JSON `body`; answers the JSON body of a
    /// 2xx, or the API's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        self.call_for(method, path, query, body, None).await
    }

    /// `POST path` with `body`, naming whom the caller acts for (audited after the
    /// caller's own identity; see [`crate::caller::ON_BEHALF_OF`]).
    pub async fn post_for(
        &self,
        path: &str,
        body: &Value,
        on_behalf_of: &str,
    ) -> Result<Value, ClientError> {
        self.call_for(Method::POST, path, &[], Some(body), Some(on_behalf_of))
            .await
    }

    /// [`AdminClient::call`], optionally on behalf of someone.
    pub async fn call_for(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        on_behalf_of: Option<&str>,
    ) -> Result<Value, ClientError> {
        let behalf = on_behalf_of.unwrap_or_default();
        let query_string = query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let path_and_query = if query_string.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query_string}")
        };
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = match &self.transport {
            Transport::InProcess { api, actor } => {
                let req = http::Request::builder()
                    .method(method)
                    .uri(&path_and_query)
                    .header("content-type", "application/json")
                    .header(crate::caller::ON_BEHALF_OF, behalf)
                    .body(axum::body::Body::from(bytes))
                    .map_err(|e| ClientError::Transport(format!("request: {e}")))?;
                let resp = crate::local::answer(api, req, Some(actor)).await;
                let status = resp.status().as_u16();
                let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .map_err(|e| ClientError::Transport(format!("admin answer: {e}")))?;
                (status, String::from_utf8_lossy(&body).into_owned())
            }
            Transport::Dev { url, token } => {
                let resp = self
                    .http
                    .request(method, format!("{url}{path_and_query}"))
                    .bearer_auth(token.expose_secret())
                    .header("content-type", "application/json")
                    .header(crate::caller::ON_BEHALF_OF, behalf)
                    .body(bytes)
                    .send()
                    .await
                    .map_err(|e| {
                        ClientError::Transport(format!("the dev stack's admin API: {e}"))
                    })?;
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            }
            Transport::Deployed { url, sdk } => {
                let full = format!("{}{path_and_query}", url.trim_end_matches('/'));
                let headers = sigv4_headers(sdk, method.as_str(), &full, bytes.as_bytes()).await?;
                let mut request = self
                    .http
                    .request(method, &full)
                    .header("content-type", "application/json")
                    .header(crate::caller::ON_BEHALF_OF, behalf)
                    .body(bytes);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let resp = request
                    .send()
                    .await
                    .map_err(|e| ClientError::Transport(format!("the stack's admin API: {e}")))?;
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            }
        };
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_string)
            .or_else(|| value["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(ClientError::Api {
            status,
            code: value["error"]["code"]
                .as_str()
                .unwrap_or("error")
                .to_string(),
            message,
            field: value["error"]["field"].as_str().map(str::to_string),
            connect: serde_json::from_value(value["error"]["connect"].clone()).ok(),
        })
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        typed(self.call(Method::GET, path, query, None).await?)
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    /// Every item of a paginated list, following `nextCursor`.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.call(Method::GET, path, &q, None).await?;
            let items: Vec<T> = typed(page["items"].clone())?;
            out.extend(items);
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// The first page of a list, up to `limit` items.
    pub async fn first_page<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<Vec<T>, ClientError> {
        let page = self
            .call(Method::GET, path, &[("limit", limit.to_string())], None)
            .await?;
        typed(page["items"].clone())
    }
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| {
        ClientError::Transport(format!("the admin API answered an unexpected shape: {e}"))
    })
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The SigV4 headers (`authorization`, `x-amz-date`, and the session token when the
/// credentials have one) for a request to API Gateway (`execute-api`).
async fn sigv4_headers(
    sdk: &aws_config::SdkConfig,
    method: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, ClientError> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| ClientError::Transport("no AWS credentials configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| ClientError::Transport(format!("AWS credentials: {e}")))?;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| ClientError::Transport("no AWS region configured (AWS_REGION)".into()))?;
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| ClientError::Transport(format!("signing: {e}")))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        std::iter::once(("content-type", "application/json")),
        SignableBody::Bytes(body),
    )
    .map_err(|e| ClientError::Transport(format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| ClientError::Transport(format!("signing: {e}")))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}
