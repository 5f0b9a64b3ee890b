//! The BambooHR client: one per directory, cheap to clone, bounded in concurrency, with
//! every call retried where a retry can help and bounded by attempts and a time budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use retry_timing::{backoff_ceiling, full_jitter, parse_retry_after};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use crate::auth::Credential;
use crate::model::{
    parse_changed, parse_dataset_page, parse_employee, parse_employees_page, ChangedEmployee,
    DatasetPage, EmployeesPage, RawEmployee,
};
use crate::{Auth, BambooError, ClientOptions};

/// Ids per `filter[ids]` request: the list endpoint pages by at most 100.
pub const IDS_PER_REQUEST: usize = 100;

/// The largest `pageSize` datasets v2 accepts.
pub const MAX_DATASET_PAGE_SIZE: u32 = 1000;

/// A client for one BambooHR company. Clones share the connection pool and the
/// concurrency limit.
#[derive(Clone)]
pub struct BambooClient {
    pub(crate) inner: Arc<Inner>,
}

/// What clones of one client share.
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// Scheme, host and optional path prefix, without a trailing slash.
    pub(crate) base: String,
    pub(crate) credential: Credential,
    auth_kind: &'static str,
    pub(crate) opts: ClientOptions,
    permits: Semaphore,
    /// Requests sent (every attempt), for run records and cost figures.
    pub(crate) requests: AtomicU64,
    /// Answers of 429, or 503 with Retry-After, that made the client wait.
    throttles: AtomicU64,
}

/// What a client has sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Throttling answers (429, or 503 with Retry-After).
    pub throttles: u64,
}

impl std::fmt::Debug for BambooClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BambooClient")
            .field("base", &self.inner.base)
            .field("auth", &self.inner.auth_kind)
            .field("opts", &self.inner.opts)
            .finish()
    }
}

/// One HTTP exchange to make: built afresh for every attempt.
pub(crate) struct Call<'a> {
    /// Operation name for logs (`dataset_page`, `get_employee`, ...).
    pub(crate) op: &'static str,
    /// What a 404 means (`employee 123`), for [`BambooError::NotFound`].
    pub(crate) resource: &'a str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<&'a Value>,
    /// Whether sending twice is harmless. A call that is not is retried only after an
    /// answer that says BambooHR did nothing (429, or 503 with Retry-After).
    pub(crate) idempotent: bool,
}

impl BambooClient {
    /// Builds a client for the company at `base_url` (`https://acme.bamboohr.com`, or a
    /// simulator's `http://127.0.0.1:PORT`).
    pub fn new(base_url: &str, auth: Auth, opts: ClientOptions) -> Result<Self, BambooError> {
        let base = parse_base_url(base_url)?;
        if opts.max_attempts == 0 || opts.max_concurrency == 0 {
            return Err(BambooError::InvalidConfig {
                reason: "max_attempts and max_concurrency must be at least 1".into(),
            });
        }
        let auth_header = auth
            .header_value()
            .ok_or_else(|| BambooError::InvalidConfig {
                reason: "the credential contains characters that cannot be sent in a header".into(),
            })?;
        let credential = match &auth {
            Auth::OAuth(oauth) => {
                if let Some(url) = &oauth.token_url {
                    parse_base_url(url)?;
                }
                Credential::oauth(oauth.clone(), auth_header)
            }
            _ => Credential::Fixed(auth_header),
        };
        // Never following a redirect: the credential would go wherever it points.
        let policy = outbound_http::Policy {
            loopback_http: true,
            block_private: opts.block_private,
        };
        let http = outbound_http::client_builder(policy)
            .use_rustls_tls()
            .user_agent(concat!("bamboohr-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BambooError::InvalidConfig {
                reason: format!("HTTP client: {}", e.without_url()),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                credential,
                auth_kind: auth.kind(),
                permits: Semaphore::new(opts.max_concurrency),
                opts,
                requests: AtomicU64::new(0),
                throttles: AtomicU64::new(0),
            }),
        })
    }

    /// Requests and throttling answers so far (clones share the counters).
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            throttles: self.inner.throttles.load(Ordering::Relaxed),
        }
    }

    /// The base URL requests go to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// One page of the employee dataset (`POST /api/v2/datasets/employee/data`).
    /// `employeeId` is always requested and becomes each employee's id; the other `fields`
    /// (dataset names such as `jobInformationJobTitle`) land in [`RawEmployee::fields`].
    pub async fn dataset_page(
        &self,
        fields: &[&str],
        page: u32,
        page_size: u32,
    ) -> Result<DatasetPage, BambooError> {
        self.dataset_query(fields, None, page, page_size).await
    }

    /// [`BambooClient::dataset_page`] of the rows matching an OData-style `filter`
    /// (`status eq 'Active' and department in ('Sales','Ops')`); filter fields need not
    /// be among `fields`.
    pub async fn dataset_page_filtered(
        &self,
        fields: &[&str],
        filter: &str,
        page: u32,
        page_size: u32,
    ) -> Result<DatasetPage, BambooError> {
        if filter.trim().is_empty() {
            return Err(BambooError::rejected("an empty filter"));
        }
        self.dataset_query(fields, Some(filter), page, page_size)
            .await
    }

    async fn dataset_query(
        &self,
        fields: &[&str],
        filter: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<DatasetPage, BambooError> {
        if page == 0 {
            return Err(BambooError::rejected("page numbers start at 1"));
        }
        if page_size == 0 || page_size > MAX_DATASET_PAGE_SIZE {
            return Err(BambooError::rejected(format!(
                "pageSize must be 1 to {MAX_DATASET_PAGE_SIZE}"
            )));
        }
        check_field_names(fields)?;
        let mut names: Vec<&str> = vec!["employeeId"];
        names.extend(fields.iter().copied().filter(|f| *f != "employeeId"));
        let mut body = serde_json::json!({ "fields": names, "page": page, "pageSize": page_size });
        if let Some(filter) = filter {
            body["filter"] = Value::String(filter.to_string());
        }
        let url = self.url(&["api", "v2", "datasets", "employee", "data"])?;
        let page = self
            .execute(
                Call {
                    op: "dataset_page",
                    resource: "dataset employee",
                    method: Method::POST,
                    url,
                    body: Some(&body),
                    idempotent: true,
                },
                parse_dataset_page,
            )
            .await?;
        tracing::debug!(
            page = page.page,
            total_pages = page.total_pages,
            total_items = page.total_items,
            count = page.employees.len(),
            "dataset page read"
        );
        Ok(page)
    }

    /// One page of `GET /api/v1/employees`: the endpoint's default fields plus `fields`
    /// (names from its optional-field list, e.g. `workEmail`; unknown names are ignored by
    /// BambooHR), starting after the cursor `after`.
    pub async fn list_employees_page(
        &self,
        fields: &[&str],
        after: Option<&str>,
        limit: u32,
    ) -> Result<EmployeesPage, BambooError> {
        self.list_page(fields, None, after, limit).await
    }

    /// The employees with these ids (`GET /api/v1/employees?filter[ids][]=..`), in batches
    /// of at most 100 ids, following every cursor page. Ids BambooHR does not return
    /// (deleted, or hidden from this credential) are simply absent from the result.
    pub async fn employees_by_ids(
        &self,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<RawEmployee>, BambooError> {
        let mut unique: Vec<&str> = Vec::with_capacity(ids.len());
        for id in ids {
            let id = id.trim();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                // The endpoint takes integer ids; anything else can never match.
                return Err(BambooError::rejected(
                    "employee ids must be decimal integers",
                ));
            }
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        let mut out = Vec::with_capacity(unique.len());
        for batch in unique.chunks(IDS_PER_REQUEST) {
            let limit = u32::try_from(batch.len()).unwrap_or(100);
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .list_page(fields, Some(batch), after.as_deref(), limit)
                    .await?;
                out.extend(page.employees);
                match page.next_cursor {
                    Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                    Some(_) => {
                        return Err(BambooError::bad_response(
                            "the list endpoint returned the same cursor twice",
                        ))
                    }
                    None => break,
                }
            }
        }
        tracing::debug!(
            requested = unique.len(),
            found = out.len(),
            "employees read by id"
        );
        Ok(out)
    }

    /// Employees changed since `since` (`GET /api/v1/employees/changed`): ids, what
    /// happened, and when. `since` is sent in whole seconds, rounded down, so nothing
    /// changed within that second is missed.
    pub async fn changed_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<ChangedEmployee>, BambooError> {
        let mut url = self.url(&["api", "v1", "employees", "changed"])?;
        url.query_pairs_mut()
            .append_pair("since", &format_since(since));
        let changed = self
            .execute(
                Call {
                    op: "changed_since",
                    resource: "changed employees",
                    method: Method::GET,
                    url,
                    body: None,
                    idempotent: true,
                },
                parse_changed,
            )
            .await?;
        tracing::debug!(count = changed.len(), "changed employees read");
        Ok(changed)
    }

    /// One employee (`GET /api/v1/employees/{id}`) with `fields` (names from BambooHR's
    /// field list, e.g. `jobTitle`, `supervisorEId`, custom aliases). Requested fields the
    /// answer omits (BambooHR omits what the caller may not see) are listed in
    /// [`RawEmployee::restricted`].
    pub async fn get_employee(
        &self,
        id: &str,
        fields: &[&str],
    ) -> Result<RawEmployee, BambooError> {
        let id = id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(BambooError::rejected(
                "an employee id is letters and digits only",
            ));
        }
        check_field_names(fields)?;
        let mut url = self.url(&["api", "v1", "employees", id])?;
        if !fields.is_empty() {
            url.query_pairs_mut()
                .append_pair("fields", &fields.join(","));
        }
        let resource = format!("employee {id}");
        self.execute(
            Call {
                op: "get_employee",
                resource: &resource,
                method: Method::GET,
                url,
                body: None,
                idempotent: true,
            },
            |body| parse_employee(body, fields),
        )
        .await
    }

    async fn list_page(
        &self,
        fields: &[&str],
        ids: Option<&[&str]>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<EmployeesPage, BambooError> {
        if limit == 0 {
            return Err(BambooError::rejected("page[limit] must be at least 1"));
        }
        check_field_names(fields)?;
        let mut url = self.url(&["api", "v1", "employees"])?;
        {
            let mut q = url.query_pairs_mut();
            for id in ids.unwrap_or_default() {
                q.append_pair("filter[ids][]", id);
            }
            if !fields.is_empty() {
                q.append_pair("fields", &fields.join(","));
            }
            q.append_pair("page[limit]", &limit.to_string());
            if let Some(after) = after {
                q.append_pair("page[after]", after);
            }
        }
        self.execute(
            Call {
                op: "list_employees",
                resource: "employees",
                method: Method::GET,
                url,
                body: None,
                idempotent: true,
            },
            parse_employees_page,
        )
        .await
    }

    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, BambooError> {
        let mut url = Url::parse(&self.inner.base).map_err(|_| BambooError::InvalidConfig {
            reason: "the base URL cannot be parsed".into(),
        })?;
        url.path_segments_mut()
            .map_err(|_| BambooError::InvalidConfig {
                reason: "the base URL cannot have a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Runs one call: attempts until success, a failure retrying cannot fix, the last
    /// attempt, or the end of the budget. Waits honour Retry-After exactly and otherwise
    /// back off exponentially with full jitter.
    pub(crate) async fn execute<T>(
        &self,
        call: Call<'_>,
        parse: impl Fn(&[u8]) -> Result<T, BambooError>,
    ) -> Result<T, BambooError> {
        let opts = &self.inner.opts;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let mut generation = None;
            let outcome = self.attempt(&call, started, &mut generation).await;
            let mut err = match outcome {
                Ok(body) => return parse(&body),
                Err(err) => err,
            };
            if matches!(err, BambooError::Unauthorized) && generation.is_some() && !refreshed {
                // An OAuth access token can be revoked or expire early: refresh once and
                // try again at once; this retry is not one of the call's attempts. A
                // refresh that failed transiently goes through the retry rules below.
                tracing::info!(op = call.op, "access token refused; refreshing");
                match self.refresh(generation).await {
                    Ok(()) => {
                        refreshed = true;
                        attempt -= 1;
                        continue;
                    }
                    Err(e) => err = e,
                }
            }
            let unsafe_retry = !call.idempotent
                && !matches!(err, BambooError::RateLimited { .. })
                && err.retry_after().is_none();
            if !err.is_retryable() || unsafe_retry {
                tracing::debug!(op = call.op, attempt, error = err.kind(), "not retried");
                return Err(err);
            }
            if attempt >= opts.max_attempts {
                tracing::warn!(
                    op = call.op,
                    attempts = attempt,
                    error = err.kind(),
                    "giving up: attempts exhausted"
                );
                return Err(err);
            }
            let remaining = opts.budget.saturating_sub(started.elapsed());
            let wait = match err.retry_after() {
                Some(asked) if asked >= remaining => {
                    // Sleeping past the budget helps nobody; the caller learns when to
                    // come back instead.
                    tracing::warn!(
                        op = call.op,
                        attempt,
                        retry_after_ms = asked.as_millis() as u64,
                        remaining_ms = remaining.as_millis() as u64,
                        "giving up: Retry-After exceeds the remaining budget"
                    );
                    return Err(err);
                }
                Some(asked) => asked,
                None => full_jitter(backoff_ceiling(
                    attempt,
                    opts.base_backoff,
                    opts.max_backoff,
                )),
            };
            if wait >= remaining {
                tracing::warn!(
                    op = call.op,
                    attempt,
                    error = err.kind(),
                    "giving up: budget exhausted"
                );
                return Err(BambooError::BudgetExceeded {
                    attempts: attempt,
                    budget: opts.budget,
                    last: Box::new(err),
                });
            }
            tracing::info!(
                op = call.op,
                attempt,
                error = err.kind(),
                wait_ms = wait.as_millis() as u64,
                honouring_retry_after = err.retry_after().is_some(),
                "retrying after a transient failure"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange, classified: the body of a 2xx, or the error its status or
    /// transport failure means.
    async fn attempt(
        &self,
        call: &Call<'_>,
        started: Instant,
        generation: &mut Option<u64>,
    ) -> Result<Vec<u8>, BambooError> {
        let inner = &self.inner;
        // A permit is held only while a request is in flight, never while waiting to retry.
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| BambooError::Unavailable {
                reason: "the client is shutting down".into(),
                retry_after: None,
            })?;
        let remaining = inner.opts.budget.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            // Waiting for a permit used up the budget; `execute` turns this into
            // BudgetExceeded.
            return Err(BambooError::Unavailable {
                reason: "the time budget ran out before the request could be sent".into(),
                retry_after: None,
            });
        }
        let (auth, used) = self.authorization().await?;
        *generation = used;
        let mut request = inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, auth)
            // BambooHR answers XML to some endpoints unless JSON is asked for.
            .header(ACCEPT, "application/json")
            .timeout(inner.opts.timeout.min(remaining));
        if let Some(body) = call.body {
            request = request.json(body);
        }
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::SERVICE_UNAVAILABLE
                && response.headers().contains_key(RETRY_AFTER))
        {
            inner.throttles.fetch_add(1, Ordering::Relaxed);
        }
        if status.is_redirection() {
            return Err(BambooError::bad_response(format!(
                "answered a redirect (HTTP {}), which is not followed: check the base URL",
                status.as_u16()
            )));
        }
        if status.is_success() {
            let body = outbound_http::read_capped(response, inner.opts.max_body_bytes)
                .await
                .map_err(|e| match e {
                    outbound_http::ReadError::Refused(r) => BambooError::InvalidRequest {
                        status: Some(status.as_u16()),
                        reason: r.to_string(),
                    },
                    outbound_http::ReadError::Transport(e) => transport_error(e),
                })?;
            tracing::trace!(
                op = call.op,
                status = status.as_u16(),
                bytes = body.len(),
                "answered"
            );
            return Ok(body.to_vec());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, OffsetDateTime::now_utc()));
        // The error body only tells which code BambooHR used; a failure to read it is
        // not a reason to lose the status.
        let body = outbound_http::read_capped(response, 64 << 10)
            .await
            .unwrap_or_default();
        tracing::debug!(op = call.op, status = status.as_u16(), "error status");
        Err(classify(status, retry_after, &body, call))
    }
}

/// What an unsuccessful status means.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    call: &Call<'_>,
) -> BambooError {
    match status {
        StatusCode::UNAUTHORIZED => BambooError::Unauthorized,
        StatusCode::FORBIDDEN => BambooError::Forbidden {
            operation: call.resource.to_string(),
        },
        StatusCode::NOT_FOUND => BambooError::NotFound {
            resource: call.resource.to_string(),
        },
        StatusCode::TOO_MANY_REQUESTS => BambooError::RateLimited { retry_after },
        StatusCode::SERVICE_UNAVAILABLE => BambooError::Unavailable {
            reason: "503 Service Unavailable".into(),
            retry_after,
        },
        StatusCode::REQUEST_TIMEOUT => BambooError::Unavailable {
            reason: "408 Request Timeout".into(),
            retry_after: None,
        },
        s if s.is_server_error() => BambooError::Unavailable {
            reason: format!("status {}", s.as_u16()),
            retry_after: None,
        },
        s if s.is_client_error() => BambooError::InvalidRequest {
            status: Some(s.as_u16()),
            reason: error_code(body).unwrap_or_else(|| format!("status {}", s.as_u16())),
        },
        s => BambooError::bad_response(format!("unexpected status {}", s.as_u16())),
    }
}

/// The machine-readable code of an error body: `error.code` of the employee API's error
/// shape, or `code` / `title` of an RFC 7807 problem. Free-text messages are not used:
/// they may echo request values.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let pick = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 80)
            .map(str::to_string)
    };
    pick(v.get("error").and_then(|e| e.get("code")))
        .or_else(|| pick(v.get("code")))
        .or_else(|| pick(v.get("title")))
}

/// A transport failure as [`BambooError::Unavailable`], described by its kind and its
/// source chain (which never carries the URL or body).
pub(crate) fn transport_error(err: reqwest::Error) -> BambooError {
    let kind = if err.is_timeout() {
        "request timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "connection failed while reading the body"
    } else {
        "request failed"
    };
    let mut reason = kind.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    BambooError::Unavailable {
        reason,
        retry_after: None,
    }
}

fn parse_base_url(base_url: &str) -> Result<String, BambooError> {
    let invalid = |reason: &str| BambooError::InvalidConfig {
        reason: format!("base URL {reason}"),
    };
    let url = Url::parse(base_url.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(invalid("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn check_field_names(fields: &[&str]) -> Result<(), BambooError> {
    // A comma would split one name into two on the query-string endpoints.
    if fields
        .iter()
        .any(|f| f.trim().is_empty() || f.contains(','))
    {
        return Err(BambooError::rejected(
            "field names must be non-empty and contain no comma",
        ));
    }
    Ok(())
}

/// `since` as BambooHR's ISO 8601 form in UTC, whole seconds (rounded down).
fn format_since(since: OffsetDateTime) -> String {
    let t = since.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use time::macros::datetime;

    fn client(base: &str) -> Result<BambooClient, BambooError> {
        BambooClient::new(
            base,
            Auth::ApiKey(SecretString::from("k")),
            ClientOptions::default(),
        )
    }

    #[test]
    fn a_base_url_loses_its_trailing_slash() {
        let c = client("https://acme.bamboohr.com/").unwrap();
        assert_eq!(c.base_url(), "https://acme.bamboohr.com");
        let url = c.url(&["api", "v1", "employees"]).unwrap();
        assert_eq!(url.as_str(), "https://acme.bamboohr.com/api/v1/employees");
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused() {
        for bad in ["ftp://x", "not a url", "https://acme.bamboohr.com?x=1"] {
            assert!(matches!(
                client(bad),
                Err(BambooError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn since_is_sent_in_utc_whole_seconds() {
        let t = datetime!(2026-03-04 05:06:07.89 +02:00);
        assert_eq!(format_since(t), "2026-03-04T03:06:07Z");
    }

    #[test]
    fn error_codes_come_from_either_error_shape() {
        assert_eq!(
            error_code(br#"{"error":{"code":"BadPage","message":"x"}}"#).as_deref(),
            Some("BadPage")
        );
        assert_eq!(
            error_code(br#"{"title":"Bad Request","status":400}"#).as_deref(),
            Some("Bad Request")
        );
        assert_eq!(error_code(b"<html>").as_deref(), None);
    }

    #[tokio::test]
    async fn invalid_arguments_are_refused_before_anything_is_sent() {
        // Port 9 (discard) on loopback: nothing is listening, nothing is sent.
        let c = client("http://127.0.0.1:9").unwrap();
        assert!(matches!(
            c.dataset_page(&["firstName"], 0, 10).await,
            Err(BambooError::InvalidRequest { status: None, .. })
        ));
        assert!(matches!(
            c.dataset_page(&["firstName"], 1, 1001).await,
            Err(BambooError::InvalidRequest { status: None, .. })
        ));
        assert!(matches!(
            c.employees_by_ids(&["12a".to_string()], &[]).await,
            Err(BambooError::InvalidRequest { status: None, .. })
        ));
        assert!(matches!(
            c.get_employee("../admin", &[]).await,
            Err(BambooError::InvalidRequest { status: None, .. })
        ));
    }
}
