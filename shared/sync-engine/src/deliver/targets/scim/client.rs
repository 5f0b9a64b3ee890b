//! The HTTP side of a SCIM target: one resource type (`/Users` or `/Groups`), one
//! token; finding, reading, replacing and deleting resources, and judging answers
//! (408, 429 and 5xx retryable, with the Retry-After asked for).

use std::sync::Mutex;

use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, RETRY_AFTER,
};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::{debug, info};

use super::*;
use crate::deliver::attempt::TargetOutcome;
use ports::Clock;

/// Largest SCIM response body read (a page of 100 users is well under it).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The HTTP side: one target, one token.
pub(crate) struct Client<'a> {
    pub(super) http: &'a reqwest::Client,
    /// When answers arrive, for their Retry-After dates.
    pub(super) clock: &'a dyn Clock,
    /// `{base}/Users` (or `/Groups`).
    pub(crate) base: Url,
    pub(super) token: &'a SecretString,
    /// The account the delivery wrote (or deleted), for the stored resource id.
    pub(super) landed: Mutex<Landed>,
    /// Update with PATCH instead of PUT (the provider announced PATCH support).
    pub(crate) patch: bool,
    /// The attributes an update may write.
    pub(crate) owned: Owned,
}

/// A transport or protocol failure before a status could be judged.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(super) what: &'static str,
    pub(super) retryable: bool,
}

impl Transport {
    pub(crate) fn during(self, op: &str) -> StepError {
        StepError {
            reason: format!("SCIM {op}: {}", self.what),
            retryable: self.retryable,
            ..StepError::default()
        }
    }
}

impl Client<'_> {
    /// Another client on the same target and resource type, with its own record of
    /// where it landed.
    pub(super) fn shallow(&self) -> Self {
        Client {
            http: self.http,
            clock: self.clock,
            base: self.base.clone(),
            token: self.token,
            landed: Mutex::new(Landed::default()),
            patch: self.patch,
            owned: self.owned.clone(),
        }
    }

    /// `Users` or `Groups`: the resource type this client's base URL addresses.
    pub(super) fn kind(&self) -> &str {
        self.base
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or("Users")
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Answer, Transport> {
        let bearer = bearer_header(self.token)?;
        let mut req = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, bearer)
            .header(ACCEPT, SCIM_MEDIA_TYPE);
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
            req = req.header(CONTENT_TYPE, SCIM_MEDIA_TYPE).body(bytes);
        }
        if let Some(tag) = if_match {
            req = req.header(IF_MATCH, tag);
        }
        let resp = req.send().await.map_err(|e| Transport {
            what: if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "transport error"
            },
            retryable: true,
        })?;
        let status = resp.status();
        if status.is_redirection() {
            // Not followed: it would re-send the account (HR data) and the bearer token
            // wherever the server points.
            return Err(Transport {
                what: "answered a redirect, which is not followed",
                retryable: false,
            });
        }
        let headers = resp.headers().clone();
        let etag = header_str(&headers, ETAG);
        let retry_after = header_str(&headers, RETRY_AFTER);
        let bytes = outbound_http::read_capped(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                outbound_http::ReadError::Refused(_) => Transport {
                    what: "the response body is larger than the SCIM client reads",
                    retryable: false,
                },
                outbound_http::ReadError::Transport(e) => Transport {
                    what: if e.is_timeout() {
                        "timed out reading the response"
                    } else {
                        "the response body was cut off"
                    },
                    retryable: true,
                },
            })?;
        let body = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        Ok(Answer {
            status,
            received_at: self.clock.now(),
            etag,
            retry_after,
            body,
        })
    }

    /// The one account whose `attribute` equals `value`, if any. `attribute` is
    /// `externalId`, `userName` or `emails.value` (the work email among the account's
    /// emails). A provider that cannot filter on `externalId` or `emails.value` (400
    /// invalidFilter, 501) is treated as having no match, so the next key is tried.
    pub(crate) async fn find(
        &self,
        attribute: &'static str,
        value: &str,
    ) -> Result<Option<Value>, StepError> {
        let op = format!("GET /{}?filter={attribute} eq …", self.kind());
        let op = op.as_str();
        let mut url = self.base.clone();
        url.query_pairs_mut()
            .append_pair("filter", &eq_filter(attribute, value));
        let answer = self
            .send(Method::GET, url, None, None)
            .await
            .map_err(|e| e.during(op))?;
        if matches!(attribute, "externalId" | "emails.value") && filter_unsupported(&answer) {
            // Some providers cannot filter on these; the userName lookup still finds
            // accounts whose username has not changed.
            info!(
                status = answer.status.as_u16(),
                attribute, "SCIM target cannot filter on this attribute"
            );
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(status_error(op, &answer));
        }
        let list = answer.body.ok_or_else(|| {
            StepError::permanent(format!("SCIM {op}: the answer is not a JSON ListResponse"))
        })?;
        let resources = list
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // A provider that ignores the filter would list everyone; only a resource that
        // really carries the value counts.
        let resources: Vec<Value> = resources
            .into_iter()
            .filter(|r| carries(r, attribute, value))
            .collect();
        match resources.len() {
            0 => Ok(None),
            1 => Ok(resources.into_iter().next()),
            n => Err(StepError::permanent(format!(
                "SCIM {op}: {n} accounts match; refusing to guess which one is this employee's"
            ))),
        }
    }

    pub(super) fn landed_on(&self, id: Option<&str>) {
        if let (Some(id), Ok(mut landed)) = (id, self.landed.lock()) {
            landed.id = Some(id.to_string());
        }
    }

    /// The account with this resource id, or None when the target no longer has it
    /// (deleted there: the lookups by externalId and userName take over).
    pub(crate) async fn get_if_exists(&self, id: &str) -> Result<Option<Value>, StepError> {
        let answer = self
            .send(Method::GET, self.resource_url(id), None, None)
            .await
            .map_err(|e| e.during("GET /Users/{id}"))?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(status_error("GET /Users/{id}", &answer));
        }
        Ok(answer.body.filter(|b| resource_id(b) == Some(id)))
    }

    pub(crate) async fn get(&self, id: &str) -> Result<(Value, Option<String>), StepError> {
        let answer = self
            .send(Method::GET, self.resource_url(id), None, None)
            .await
            .map_err(|e| e.during("GET /Users/{id}"))?;
        if !answer.status.is_success() {
            return Err(status_error("GET /Users/{id}", &answer));
        }
        let etag = answer.etag.clone();
        let body = answer.body.ok_or_else(|| {
            StepError::permanent("SCIM GET /Users/{id}: the answer is not a JSON resource")
        })?;
        Ok((body, etag))
    }

    /// PUT `desired` over `existing`, keeping its id and userName; on 412 refetch once.
    pub(super) async fn replace(
        &self,
        existing: Value,
        desired: &Value,
        version: u64,
    ) -> Result<TargetOutcome, StepError> {
        let id = resource_id(&existing)
            .ok_or_else(|| StepError::permanent("the matched SCIM account has no id"))?
            .to_string();
        let op = if self.patch {
            "PATCH /Users/{id}"
        } else {
            "PUT /Users/{id}"
        };
        let mut current = existing;
        let mut current_etag = None;
        for attempt in 0..2 {
            let changes = changes(&current, desired, &self.owned);
            if changes.is_empty() {
                // Idempotent and cheap: a repeated push of unchanged state writes nothing.
                debug!(resource_id = %id, "SCIM account already up to date");
                self.landed_on(Some(&id));
                return Ok(delivered(StatusCode::OK, version));
            }
            let tag = meta_version(&current).or(current_etag.clone());
            // PATCH sends only what changed, when the provider announced it (RFC 7644
            // §3.5.2); PUT sends the account with only the owned attributes changed.
            // Neither touches the account's userName or an attribute it does not own.
            let (method, payload) = if self.patch {
                (Method::PATCH, patch_body(&changes))
            } else {
                (Method::PUT, replacement(&current, desired, &self.owned))
            };
            let answer = self
                .send(
                    method,
                    self.resource_url(&id),
                    Some(&payload),
                    tag.as_deref(),
                )
                .await
                .map_err(|e| e.during(op))?;
            if answer.status.is_success() {
                // Attribute names only: their values are HR data.
                let attributes = changes.attribute_names().join(",");
                debug!(resource_id = %id, status = answer.status.as_u16(), attributes, "SCIM account updated");
                self.landed_on(Some(&id));
                return Ok(delivered(answer.status, version));
            }
            if answer.status == StatusCode::NOT_FOUND {
                // Deleted since our lookup; the next attempt looks again and creates it.
                return Err(StepError {
                    reason: format!(
                        "SCIM {op}: HTTP 404, the account was removed since the lookup; retryable"
                    ),
                    retryable: true,
                    ..StepError::default()
                });
            }
            if answer.status != StatusCode::PRECONDITION_FAILED {
                return Err(status_error(op, &answer));
            }
            if attempt == 1 {
                // The account keeps changing under us; a later attempt reads it afresh.
                return Err(StepError {
                    reason: format!("SCIM {op}: HTTP 412 again after refetching; retryable"),
                    retryable: true,
                    ..StepError::default()
                });
            }
            // Someone changed the account between our read and our write: read it
            // again so its userName and version are current, and try once more.
            info!(resource_id = %id, "SCIM PUT precondition failed; refetching once");
            let (fresh, etag) = self.get(&id).await?;
            current = fresh;
            current_etag = etag;
        }
        unreachable!("the loop returns on its second attempt")
    }

    pub(crate) async fn delete(
        &self,
        existing: &Value,
        version: u64,
    ) -> Result<TargetOutcome, StepError> {
        let id = resource_id(existing)
            .ok_or_else(|| StepError::permanent("the matched SCIM account has no id"))?;
        let tag = meta_version(existing);
        let answer = self
            .send(Method::DELETE, self.resource_url(id), None, tag.as_deref())
            .await
            .map_err(|e| e.during("DELETE /Users/{id}"))?;
        // Already gone is what we wanted.
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            if let Ok(mut landed) = self.landed.lock() {
                landed.deleted = true;
            }
            return Ok(delivered(answer.status, version));
        }
        Err(status_error("DELETE /Users/{id}", &answer))
    }

    pub(crate) fn resource_url(&self, id: &str) -> Url {
        let mut url = self.base.clone();
        // push() percent-encodes, so an id with '/' or '?' stays one segment.
        url.path_segments_mut()
            .expect("the base was checked to take a path")
            .push(id);
        url
    }
}

/// Whether `resource` really carries `value` in `attribute`: `externalId` exactly,
/// `userName` and email addresses ignoring case (RFC 7643 §4.1.1, §4.1.2).
pub(super) fn carries(resource: &Value, attribute: &str, value: &str) -> bool {
    let same = |v: &str| v.to_lowercase() == value.to_lowercase();
    match attribute {
        "externalId" => resource.get(attribute).and_then(Value::as_str) == Some(value),
        "emails.value" => resource
            .get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .any(same),
        _ => resource
            .get(attribute)
            .and_then(Value::as_str)
            .is_some_and(same),
    }
}

/// 400 invalidFilter or 501: the provider does not support this filter.
pub(super) fn filter_unsupported(answer: &Answer) -> bool {
    let scim_type = answer
        .body
        .as_ref()
        .and_then(|b| b.get("scimType"))
        .and_then(Value::as_str);
    answer.status == StatusCode::NOT_IMPLEMENTED
        || (answer.status == StatusCode::BAD_REQUEST && scim_type == Some("invalidFilter"))
}

pub(super) fn header_str(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(crate) fn delivered(status: StatusCode, version: u64) -> TargetOutcome {
    TargetOutcome::Delivered {
        status: status.as_u16(),
        version,
    }
}

/// Judges a non-success answer: 408, 429 and 5xx may pass (with the Retry-After the
/// target asked for, if any); other statuses will not change by themselves.
pub(crate) fn status_error(op: &str, answer: &Answer) -> StepError {
    let status = answer.status.as_u16();
    let retryable = matches!(status, 408 | 429 | 500..=599);
    let mut reason = format!("SCIM {op}: HTTP {status}");
    // scimType is a keyword from RFC 7644 §3.12 (e.g. "uniqueness"), safe to repeat;
    // `detail` may quote refused values, so it is never copied.
    if let Some(kind) = answer
        .body
        .as_ref()
        .and_then(|b| b.get("scimType"))
        .and_then(Value::as_str)
        .filter(|k| k.len() <= 32 && k.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        reason.push_str(&format!(" ({kind})"));
    }
    if let Some(after) = &answer.retry_after {
        if retryable {
            let after: String = after.chars().take(40).collect();
            reason.push_str(&format!(", retry after {after}"));
        }
    }
    reason.push_str(if retryable {
        "; retryable"
    } else {
        "; not retryable"
    });
    let retry_after = answer
        .retry_after
        .as_deref()
        .filter(|_| retryable)
        .and_then(|v| retry_timing::parse_retry_after(v, answer.received_at));
    StepError {
        reason,
        retryable,
        status: Some(status),
        retry_after,
    }
}

/// The `Authorization: Bearer …` value, marked sensitive so that reqwest's and hyper's
/// `Debug` output (and any log of a request or its headers) shows `Sensitive`.
fn bearer_header(token: &SecretString) -> Result<reqwest::header::HeaderValue, Transport> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| Transport {
                what: "the bearer token cannot be sent in a header",
                retryable: false,
            })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn the_bearer_token_never_shows_in_a_request_debug() {
        let token = SecretString::from("scim-token-never-logged-42".to_string());
        let request = reqwest::Client::new()
            .get("https://scim.example.com/v2/Users")
            .header(AUTHORIZATION, bearer_header(&token).unwrap())
            .build()
            .unwrap();
        let shown = format!("{request:?} {:?}", request.headers());
        assert!(!shown.contains("scim-token-never-logged-42"), "{shown}");
        assert!(bearer_header(&SecretString::from("bad\ntoken".to_string())).is_err());
    }
}
