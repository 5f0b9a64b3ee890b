//! Delivery of users to a SCIM 2.0 service provider (RFC 7644), stateless: every
//! delivery finds the account at the target again, so nothing beyond the ledger is
//! stored.
//!
//! For one user it:
//! 1. finds the account by `externalId` (the BambooHR employee id), then by `userName`;
//! 2. creates it with POST when there is none (never for an inactive or deleted user),
//!    and on a 409 uniqueness answer looks it up by `userName` and updates that one;
//! 3. otherwise replaces it with PUT, keeping the account's own `id` and `userName`
//!    (a username is never overwritten, as JumpCloud does), with `If-Match` when the
//!    target versions its resources, refetching once on 412, and writing nothing when
//!    the account already holds that state;
//! 4. never takes over, through a userName match or a 409, an account whose
//!    `externalId` names another employee (two work emails sharing a local part);
//! 5. deprovisions inactive and deleted users with `active: false` (or DELETE, when
//!    [`Deprovision::Delete`] is chosen).
//!
//! Errors carry the operation and status, never a response body or an HR value:
//! SCIM error details may quote the values that were refused.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use domain::{
    ChangeEvent, DirectoryId, DirectoryUser, ScimConfig, ScimDeprovision, ScimUserName, TargetId,
    UserState,
};
use mapping::{to_scim_user, MappingError, ScimOptions, UsernameSource};
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, RETRY_AFTER,
};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::deps::Engine;
use crate::dispatch::{Attempt, TargetOutcome};

/// The SCIM media type (RFC 7644 §3.1).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// How an inactive or deleted user leaves the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deprovision {
    /// PUT the account with `active: false`; it stays, so a rehire reactivates it.
    #[default]
    Deactivate,
    /// DELETE the account (only when an operator asked for it: a rehire then gets a
    /// new account).
    Delete,
}

/// Per-target SCIM behaviour, from the target's [`ScimConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScimSettings {
    /// How users are rendered (username source, pending users).
    pub user: ScimOptions,
    /// How users are deprovisioned.
    pub deprovision: Deprovision,
    /// Push groups (`/Groups` with members) as well as users.
    pub push_groups: bool,
}

impl ScimSettings {
    /// The settings a target's configuration asks for.
    pub fn from_config(config: &ScimConfig) -> Self {
        Self {
            user: ScimOptions {
                username: match config.user_name {
                    ScimUserName::EmailLocalPart => UsernameSource::EmailLocalPart,
                    ScimUserName::FullEmail => UsernameSource::FullEmail,
                    ScimUserName::EmployeeNumber => UsernameSource::EmployeeNumber,
                },
                pending_active: config.pending_active,
            },
            deprovision: match config.deprovision {
                ScimDeprovision::Deactivate => Deprovision::Deactivate,
                ScimDeprovision::Delete => Deprovision::Delete,
            },
            push_groups: config.push_groups,
        }
    }
}

/// One SCIM target, ready to deliver to.
#[derive(Debug, Clone, Copy)]
pub struct ScimTarget<'a> {
    /// The target's id, for logs.
    pub id: &'a TargetId,
    /// The SCIM base URL (before `/Users`).
    pub base_url: &'a str,
    /// The bearer token from the directory's secrets.
    pub token: Option<&'a SecretString>,
    /// Behaviour switches.
    pub settings: ScimSettings,
}

/// A failed step; becomes [`TargetOutcome::Failed`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StepError {
    pub(crate) reason: String,
    pub(crate) retryable: bool,
    /// The status that decided it, if any (410 disables the target).
    pub(crate) status: Option<u16>,
    /// The target's Retry-After, for the retry path.
    pub(crate) retry_after: Option<std::time::Duration>,
}

impl StepError {
    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retryable: false,
            ..Self::default()
        }
    }
}

impl From<StepError> for TargetOutcome {
    fn from(e: StepError) -> Self {
        TargetOutcome::Failed {
            reason: e.reason,
            retryable: e.retryable,
        }
    }
}

impl From<StepError> for Attempt {
    fn from(e: StepError) -> Self {
        let status = e.status;
        let retry_after = e.retry_after;
        Attempt {
            outcome: e.into(),
            status,
            retry_after,
        }
    }
}

/// Where a delivery left the user's account: its resource id, or deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Landed {
    id: Option<String>,
    deleted: bool,
}

/// How an existing account was found; both are updated the same way, but the
/// distinction is logged because a userName match adopts an account we did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchedBy {
    /// The resource id remembered from an earlier delivery.
    StoredId,
    ExternalId,
    UserName,
}

impl MatchedBy {
    fn as_str(self) -> &'static str {
        match self {
            Self::StoredId => "stored resource id",
            Self::ExternalId => "externalId",
            Self::UserName => "userName",
        }
    }
}

/// An answer from the target, with what the steps need of it.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    etag: Option<String>,
    retry_after: Option<String>,
    pub(crate) body: Option<Value>,
}

impl ScimTarget<'_> {
    /// Delivers one user event; `user` is the user's current stored state. (Group
    /// events go to [`crate::scim_groups`].)
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        event: &ChangeEvent,
        user: Option<&DirectoryUser>,
    ) -> TargetOutcome {
        if !event.event_type.is_user_event() {
            return TargetOutcome::Skipped {
                reason: format!(
                    "SCIM targets do not receive {} events yet",
                    event.event_type.as_str()
                ),
            };
        }
        let Some(user) = user else {
            return TargetOutcome::Skipped {
                reason: "the user is not in the store, so there is no state to send".into(),
            };
        };
        self.run(http, user, event.version, None, false)
            .await
            .0
            .outcome
    }

    /// Delivers one event and keeps the account's resource id in the store, so the
    /// next delivery goes straight to that account even after the work email (and so
    /// the userName a lookup would use) changed.
    pub(crate) async fn deliver_recorded(
        &self,
        engine: &Engine,
        directory: &DirectoryId,
        event: &ChangeEvent,
        user: Option<&DirectoryUser>,
    ) -> Attempt {
        if !event.event_type.is_user_event() {
            return Attempt::plain(TargetOutcome::Skipped {
                reason: format!(
                    "SCIM targets do not receive {} events",
                    event.event_type.as_str()
                ),
            });
        }
        let Some(user) = user else {
            return Attempt::plain(TargetOutcome::Skipped {
                reason: "the user is not in the store, so there is no state to send".into(),
            });
        };
        let known = match engine
            .store
            .get_target_account(directory, self.id, &event.object_id)
            .await
        {
            Ok(k) => k,
            Err(e) => {
                return Attempt::plain(TargetOutcome::Failed {
                    reason: format!("reading the stored SCIM resource id: {e}"),
                    retryable: e.is_retryable(),
                })
            }
        };
        let patch = self.patch_supported(&engine.http).await;
        let (attempt, landed) = self
            .run(&engine.http, user, event.version, known.as_deref(), patch)
            .await;
        let kept = if landed.deleted {
            engine
                .store
                .delete_target_account(directory, self.id, &event.object_id)
                .await
        } else {
            match landed.id {
                Some(id) if known.as_deref() != Some(id.as_str()) => {
                    engine
                        .store
                        .put_target_account(directory, self.id, &event.object_id, &id)
                        .await
                }
                _ => Ok(()),
            }
        };
        if let Err(e) = kept {
            // The account itself is right; only the shortcut to it is missing, and the
            // next delivery finds it by externalId again.
            warn!(target_id = %self.id, reason = %e, "could not keep the SCIM resource id");
        }
        attempt
    }

    async fn run(
        &self,
        http: &reqwest::Client,
        user: &DirectoryUser,
        version: u64,
        known: Option<&str>,
        patch: bool,
    ) -> (Attempt, Landed) {
        let Some(token) = self.token else {
            let e = StepError::permanent("no SCIM bearer token configured for this target");
            return (e.into(), Landed::default());
        };
        let base = match self.users_url() {
            Ok(b) => b,
            Err(e) => return (e.into(), Landed::default()),
        };
        let client = Client {
            http,
            base,
            token,
            landed: Mutex::new(Landed::default()),
            patch,
        };
        let attempt = match self.deliver_user(&client, user, version, known).await {
            Ok(outcome) => Attempt::plain(outcome),
            Err(e) => e.into(),
        };
        let landed = client.landed.into_inner().unwrap_or_default();
        (attempt, landed)
    }

    async fn deliver_user(
        &self,
        client: &Client<'_>,
        user: &DirectoryUser,
        version: u64,
        known: Option<&str>,
    ) -> Result<TargetOutcome, StepError> {
        let leaving = matches!(user.state, UserState::Inactive | UserState::Deleted);
        let desired = match to_scim_user(user, &self.settings.user) {
            Ok(v) => v,
            // A leaver whose work email was removed can still be deprovisioned: the
            // employee id finds the account.
            Err(MappingError::MissingWorkEmail) if leaving => {
                return self.deprovision_by_external_id(client, user, version).await;
            }
            Err(e @ MappingError::MissingWorkEmail) => {
                return Ok(TargetOutcome::Skipped {
                    reason: e.to_string(),
                })
            }
            Err(e) => {
                return Err(StepError {
                    reason: format!("the user cannot be rendered for SCIM: {e}"),
                    retryable: e.is_retryable(),
                    ..StepError::default()
                })
            }
        };
        let user_name = desired["userName"].as_str().unwrap_or_default().to_string();
        let employee_id = user.employee_id.as_str();

        let stored = match known {
            Some(id) => client.get_if_exists(id).await?,
            None => None,
        };
        let found = match stored {
            Some(r) => Some((r, MatchedBy::StoredId)),
            None => match client.find("externalId", employee_id).await? {
                Some(r) => Some((r, MatchedBy::ExternalId)),
                None => client
                    .find("userName", &user_name)
                    .await?
                    .map(|r| (r, MatchedBy::UserName)),
            },
        };

        let Some((existing, matched_by)) = found else {
            if leaving {
                return Ok(TargetOutcome::Skipped {
                    reason: format!(
                        "no account at the target and the user is {}: an account is never created for a leaver",
                        user.state.as_str()
                    ),
                });
            }
            return self.create(client, user, &desired, version).await;
        };

        info!(
            target_id = %self.id, employee_id, resource_id = resource_id(&existing).unwrap_or("?"),
            matched_by = matched_by.as_str(), "SCIM account found"
        );
        if matched_by == MatchedBy::UserName {
            refuse_if_another_employees(&existing, employee_id)?;
        }
        if leaving && self.settings.deprovision == Deprovision::Delete {
            return client.delete(&existing, version).await;
        }
        client.replace(existing, &desired, version).await
    }

    /// POST, or on a 409 uniqueness answer, update the account holding the userName.
    async fn create(
        &self,
        client: &Client<'_>,
        user: &DirectoryUser,
        desired: &Value,
        version: u64,
    ) -> Result<TargetOutcome, StepError> {
        let employee_id = user.employee_id.as_str();
        let answer = client
            .send(Method::POST, client.base.clone(), Some(desired), None)
            .await
            .map_err(|e| e.during("POST /Users"))?;
        if answer.status.is_success() {
            info!(
                target_id = %self.id, employee_id,
                resource_id = answer.body.as_ref().and_then(resource_id).unwrap_or("?"),
                "SCIM account created"
            );
            client.landed_on(answer.body.as_ref().and_then(resource_id));
            return Ok(delivered(answer.status, version));
        }
        if answer.status != StatusCode::CONFLICT {
            return Err(status_error("POST /Users", &answer));
        }
        // Someone took the userName between our lookup and our create (an admin, SSO
        // just-in-time provisioning). Adopt it as a userName match would, unless it is
        // another employee's.
        let user_name = desired["userName"].as_str().unwrap_or_default();
        let Some(existing) = client.find("userName", user_name).await? else {
            return Err(StepError::permanent(
                "POST /Users answered 409 (uniqueness) but no account has that userName; \
                 another attribute conflicts at the target",
            ));
        };
        refuse_if_another_employees(&existing, employee_id)?;
        info!(
            target_id = %self.id, employee_id, resource_id = resource_id(&existing).unwrap_or("?"),
            "SCIM create conflicted; updating the account holding the userName"
        );
        client.replace(existing, desired, version).await
    }

    async fn deprovision_by_external_id(
        &self,
        client: &Client<'_>,
        user: &DirectoryUser,
        version: u64,
    ) -> Result<TargetOutcome, StepError> {
        let Some(existing) = client.find("externalId", user.employee_id.as_str()).await? else {
            return Ok(TargetOutcome::Skipped {
                reason: format!(
                    "{}, and no account carries the employee id to deprovision",
                    MappingError::MissingWorkEmail
                ),
            });
        };
        if self.settings.deprovision == Deprovision::Delete {
            return client.delete(&existing, version).await;
        }
        // Without a work email there is nothing to render: keep the account as the
        // target has it and only switch it off.
        let mut desired = existing.clone();
        if let Some(obj) = desired.as_object_mut() {
            obj.remove("meta");
            obj.insert("active".into(), Value::Bool(false));
        }
        client.replace(existing, &desired, version).await
    }

    /// Whether the provider's `/ServiceProviderConfig` announces PATCH, read once an
    /// hour per base URL (a process-wide cache, like the HTTP client's connection
    /// pool). A provider that cannot say is updated with PUT.
    pub(crate) async fn patch_supported(&self, http: &reqwest::Client) -> bool {
        const FRESH_FOR: Duration = Duration::from_secs(3600);
        static CAPS: OnceLock<Mutex<HashMap<String, (Instant, bool)>>> = OnceLock::new();
        let caps = CAPS.get_or_init(Default::default);
        if let Some((at, patch)) = caps.lock().ok().and_then(|c| c.get(self.base_url).copied()) {
            if at.elapsed() < FRESH_FOR {
                return patch;
            }
        }
        let (Some(token), Ok(url)) = (self.token, self.config_url()) else {
            return false;
        };
        let answer = http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
            .header(ACCEPT, SCIM_MEDIA_TYPE)
            .send()
            .await;
        let patch = match answer {
            Ok(resp) if resp.status().is_success() => resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|c| c.pointer("/patch/supported").and_then(Value::as_bool))
                .unwrap_or(false),
            Ok(resp) if resp.status().is_client_error() => false,
            // Unknown for now: PUT works everywhere; ask again next time.
            _ => return false,
        };
        if let Ok(mut c) = caps.lock() {
            c.insert(self.base_url.to_string(), (Instant::now(), patch));
        }
        debug!(target_id = %self.id, patch, "SCIM service provider capabilities read");
        patch
    }

    fn config_url(&self) -> Result<Url, StepError> {
        let mut url = self.users_url()?;
        url.path_segments_mut()
            .map_err(|_| StepError::permanent("the SCIM base URL cannot have a path"))?
            .pop()
            .push("ServiceProviderConfig");
        Ok(url)
    }

    fn users_url(&self) -> Result<Url, StepError> {
        self.resource_type_url("Users")
    }

    pub(crate) fn resource_type_url(&self, kind: &str) -> Result<Url, StepError> {
        let mut url = Url::parse(self.base_url.trim_end_matches('/')).map_err(|_| {
            StepError::permanent("the SCIM base URL of this target is not a valid URL")
        })?;
        url.path_segments_mut()
            .map_err(|_| {
                StepError::permanent("the SCIM base URL of this target cannot have a path")
            })?
            .pop_if_empty()
            .push(kind);
        Ok(url)
    }

    /// A client for one resource type (`Users`, `Groups`) of this target.
    pub(crate) fn client<'c>(
        &'c self,
        http: &'c reqwest::Client,
        kind: &str,
        patch: bool,
    ) -> Result<Client<'c>, StepError> {
        let token = self.token.ok_or_else(|| {
            StepError::permanent("no SCIM bearer token configured for this target")
        })?;
        Ok(Client {
            http,
            base: self.resource_type_url(kind)?,
            token,
            landed: Mutex::new(Landed::default()),
            patch,
        })
    }
}

/// The HTTP side: one target, one token.
pub(crate) struct Client<'a> {
    http: &'a reqwest::Client,
    /// `{base}/Users` (or `/Groups`).
    pub(crate) base: Url,
    token: &'a SecretString,
    /// The account the delivery wrote (or deleted), for the stored resource id.
    landed: Mutex<Landed>,
    /// Update with PATCH instead of PUT (the provider announced PATCH support).
    pub(crate) patch: bool,
}

/// A transport or protocol failure before a status could be judged.
#[derive(Debug)]
pub(crate) struct Transport {
    what: &'static str,
    retryable: bool,
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
    /// `Users` or `Groups`: the resource type this client's base URL addresses.
    fn kind(&self) -> &str {
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
        let mut req = self
            .http
            .request(method, url)
            .header(
                AUTHORIZATION,
                format!("Bearer {}", self.token.expose_secret()),
            )
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
        let headers = resp.headers().clone();
        let etag = header_str(&headers, ETAG);
        let retry_after = header_str(&headers, RETRY_AFTER);
        let bytes = resp.bytes().await.map_err(|e| Transport {
            what: if e.is_timeout() {
                "timed out reading the response"
            } else {
                "the response body was cut off"
            },
            retryable: true,
        })?;
        let body = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        Ok(Answer {
            status,
            etag,
            retry_after,
            body,
        })
    }

    /// The one account whose `attribute` equals `value`, if any.
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
        if attribute == "externalId" && filter_unsupported(&answer) {
            // Some providers cannot filter on externalId; the userName lookup still
            // finds accounts whose username has not changed.
            info!(
                status = answer.status.as_u16(),
                "SCIM target cannot filter on externalId"
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
        // really carries the value counts (userName and displayName are not case-exact,
        // RFC 7643 §4.1.1 and §4.2).
        let resources: Vec<Value> = resources
            .into_iter()
            .filter(|r| {
                r.get(attribute).and_then(Value::as_str).is_some_and(|v| {
                    if attribute != "externalId" {
                        v.to_lowercase() == value.to_lowercase()
                    } else {
                        v == value
                    }
                })
            })
            .collect();
        match resources.len() {
            0 => Ok(None),
            1 => Ok(resources.into_iter().next()),
            n => Err(StepError::permanent(format!(
                "SCIM {op}: {n} accounts match; refusing to guess which one is this employee's"
            ))),
        }
    }

    fn landed_on(&self, id: Option<&str>) {
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
    async fn replace(
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
            let body = replacement(&current, desired);
            if attempt == 0 && holds_already(&current, &body) {
                // Idempotent and cheap: a repeated push of unchanged state writes nothing.
                debug!(resource_id = %id, "SCIM account already up to date");
                self.landed_on(Some(&id));
                return Ok(delivered(StatusCode::OK, version));
            }
            let tag = meta_version(&current).or(current_etag.clone());
            // PATCH sends only what changed, when the provider announced it (RFC 7644
            // §3.5.2); the account's userName is never part of it.
            let (method, payload) = if self.patch {
                (Method::PATCH, patch_body(&current, &body))
            } else {
                (Method::PUT, body)
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
                debug!(resource_id = %id, status = answer.status.as_u16(), "SCIM account replaced");
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

/// 400 invalidFilter or 501: the provider does not support this filter.
fn filter_unsupported(answer: &Answer) -> bool {
    let scim_type = answer
        .body
        .as_ref()
        .and_then(|b| b.get("scimType"))
        .and_then(Value::as_str);
    answer.status == StatusCode::NOT_IMPLEMENTED
        || (answer.status == StatusCode::BAD_REQUEST && scim_type == Some("invalidFilter"))
}

fn header_str(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
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
        .and_then(|v| crate::retry::parse_retry_after(v, time::OffsetDateTime::now_utc()));
    StepError {
        reason,
        retryable,
        status: Some(status),
        retry_after,
    }
}

/// `attribute eq "value"`, with the value written as a JSON string, which is what the
/// filter grammar's compValue is (RFC 7644 §3.4.2.2): quotes and backslashes escaped.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    format!("{attribute} eq {quoted}")
}

pub(crate) fn resource_id(resource: &Value) -> Option<&str> {
    resource.get("id").and_then(Value::as_str)
}

pub(crate) fn meta_version(resource: &Value) -> Option<String> {
    resource
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Whether the account already holds exactly what a PUT would write (server-managed
/// `meta` aside). A server that normalises values simply gets the PUT.
fn holds_already(existing: &Value, body: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("meta");
        }
        v
    };
    strip(existing) == strip(body)
}

/// A userName match (or 409) may land on another employee's account when two work
/// emails share a local part; adopting it would hand one person's account to another.
fn refuse_if_another_employees(existing: &Value, employee_id: &str) -> Result<(), StepError> {
    match existing.get("externalId").and_then(Value::as_str) {
        Some(other) if !other.is_empty() && other != employee_id => Err(StepError::permanent(
            "the account holding this userName belongs to another employee (its externalId \
             differs), so it is not taken over; change one of the work emails or the \
             target's username source",
        )),
        _ => Ok(()),
    }
}

/// Attributes a PATCH never touches: identity, server-managed, and read-only ones.
const NOT_PATCHED: [&str; 5] = ["id", "userName", "meta", "schemas", "groups"];

/// A PatchOp turning `current` into `body`: one path-less `replace` with every
/// attribute whose value differs (RFC 7644 §3.5.2.3, the form every provider takes)
/// and a `remove` per attribute the account has and our rendering no longer does (a
/// cleared value), so the result equals what a PUT would leave.
fn patch_body(current: &Value, body: &Value) -> Value {
    let empty = serde_json::Map::new();
    let have = current.as_object().unwrap_or(&empty);
    let want = body.as_object().unwrap_or(&empty);
    let mut changed = serde_json::Map::new();
    for (k, v) in want {
        if !NOT_PATCHED.contains(&k.as_str()) && have.get(k) != Some(v) {
            changed.insert(k.clone(), v.clone());
        }
    }
    let mut ops: Vec<Value> = have
        .keys()
        .filter(|k| !NOT_PATCHED.contains(&k.as_str()) && !want.contains_key(*k))
        .map(|k| serde_json::json!({ "op": "remove", "path": k }))
        .collect();
    if !changed.is_empty() {
        ops.push(serde_json::json!({ "op": "replace", "value": changed }));
    }
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops,
    })
}

/// The PUT body: our rendering, with the account's own `id` and `userName` kept.
fn replacement(existing: &Value, desired: &Value) -> Value {
    let mut body = desired.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("meta");
        if let Some(id) = existing.get("id") {
            obj.insert("id".into(), id.clone());
        }
        if let Some(name) = existing.get("userName").filter(|n| n.is_string()) {
            obj.insert("userName".into(), name.clone());
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use domain::{DirectoryId, Email, EmailKind, EmployeeId, EventType};
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;

    /// What the scripted target saw: method, path with query, If-Match, body.
    type Seen = (String, String, Option<String>, Option<Value>);
    /// One scripted answer: status, headers, JSON body.
    type Scripted = (u16, Vec<(&'static str, &'static str)>, Value);

    #[derive(Clone, Default)]
    struct Script {
        answers: Arc<Mutex<VecDeque<Scripted>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    async fn answer(State(script): State<Script>, req: Request) -> Response {
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let if_match = req
            .headers()
            .get("if-match")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).ok();
        script
            .seen
            .lock()
            .unwrap()
            .push((method, path, if_match, body));
        let (status, headers, body) = script
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("the client sent more requests than the script expects");
        let mut resp = (
            axum::http::StatusCode::from_u16(status).unwrap(),
            body.to_string(),
        )
            .into_response();
        for (k, v) in headers {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        resp
    }

    async fn scripted(answers: Vec<Scripted>) -> (String, Script) {
        let script = Script::default();
        script.answers.lock().unwrap().extend(answers);
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, script)
    }

    fn user(state: UserState, email: Option<&str>) -> DirectoryUser {
        let mut u = DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("42").unwrap(),
            state,
        );
        u.first_name = Some("Ada".into());
        u.last_name = Some("Lovelace".into());
        if let Some(e) = email {
            u.emails = vec![Email {
                value: e.into(),
                kind: EmailKind::Work,
                primary: true,
            }];
        }
        u
    }

    fn event(u: &DirectoryUser) -> ChangeEvent {
        ChangeEvent::new(
            EventType::UserUpdated,
            u.directory_id.clone(),
            u.employee_id.as_str(),
            3,
            OffsetDateTime::UNIX_EPOCH,
            json!({ "employeeId": u.employee_id.as_str() }),
        )
    }

    async fn deliver(url: &str, u: &DirectoryUser) -> TargetOutcome {
        let id = TargetId::parse("scim").unwrap();
        let token = SecretString::from("tok");
        let target = ScimTarget {
            id: &id,
            base_url: url,
            token: Some(&token),
            settings: ScimSettings::default(),
        };
        target
            .deliver(&reqwest::Client::new(), &event(u), Some(u))
            .await
    }

    fn list(resources: Vec<Value>) -> Value {
        json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": resources.len(), "Resources": resources })
    }

    #[test]
    fn filter_values_are_json_strings_with_quotes_and_backslashes_escaped() {
        assert_eq!(eq_filter("userName", "ada"), r#"userName eq "ada""#);
        assert_eq!(
            eq_filter("userName", r#"a"b\c"#),
            r#"userName eq "a\"b\\c""#
        );
    }

    #[test]
    fn a_patch_replaces_only_changed_attributes_and_removes_cleared_ones() {
        let current = json!({"id": "abc", "userName": "a.lovelace", "title": "Engineer",
                             "nickName": "Ada", "active": true, "meta": {"version": "W/\"1\""},
                             "groups": [{"value": "g1"}]});
        let body = json!({"id": "abc", "userName": "a.lovelace", "title": "CTO", "active": true});
        let patch = patch_body(&current, &body);
        assert_eq!(
            patch["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:PatchOp"])
        );
        assert_eq!(
            patch["Operations"],
            json!([
                {"op": "remove", "path": "nickName"},
                {"op": "replace", "value": {"title": "CTO"}}
            ])
        );
    }

    #[test]
    fn a_replacement_keeps_the_accounts_id_and_username() {
        let existing =
            json!({"id": "abc", "userName": "a.lovelace", "meta": {"version": "W/\"1\""}});
        let desired = json!({"userName": "ada", "externalId": "42", "active": true});
        let body = replacement(&existing, &desired);
        assert_eq!(body["id"], "abc");
        assert_eq!(body["userName"], "a.lovelace");
        assert_eq!(body["externalId"], "42");
        assert!(body.get("meta").is_none());
    }

    #[tokio::test]
    async fn a_412_refetches_once_and_retries_with_the_new_version() {
        let existing = json!({"id": "abc", "userName": "ada", "externalId": "42",
                              "meta": {"version": "W/\"1\""}});
        let fresh = json!({"id": "abc", "userName": "ada.l", "externalId": "42",
                           "meta": {"version": "W/\"2\""}});
        let (url, script) = scripted(vec![
            (200, vec![], list(vec![existing])),
            (412, vec![], json!({"status": "412"})),
            (200, vec![("etag", "W/\"2\"")], fresh.clone()),
            (200, vec![], fresh),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        assert_eq!(
            outcome,
            TargetOutcome::Delivered {
                status: 200,
                version: 3
            }
        );
        let seen = script.seen.lock().unwrap().clone();
        assert_eq!(seen[1].0, "PUT");
        assert_eq!(seen[1].2.as_deref(), Some("W/\"1\""));
        assert_eq!(seen[2].0, "GET");
        assert_eq!(seen[2].1, "/scim/v2/Users/abc");
        assert_eq!(seen[3].2.as_deref(), Some("W/\"2\""));
        // The refetched userName wins over ours and over the stale one.
        assert_eq!(seen[3].3.as_ref().unwrap()["userName"], "ada.l");
    }

    #[tokio::test]
    async fn a_second_412_is_a_retryable_failure() {
        let existing = json!({"id": "abc", "userName": "ada", "externalId": "42", "meta": {"version": "W/\"1\""}});
        let (url, _script) = scripted(vec![
            (200, vec![], list(vec![existing.clone()])),
            (412, vec![], json!({})),
            (200, vec![], existing),
            (412, vec![], json!({})),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        let TargetOutcome::Failed { reason, retryable } = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(
            reason.contains("PUT /Users/{id}: HTTP 412 again"),
            "{reason}"
        );
        assert!(retryable);
    }

    #[tokio::test]
    async fn a_429_is_retryable_and_names_the_retry_after_it_asked_for() {
        let (url, _script) = scripted(vec![(
            429,
            vec![("retry-after", "30")],
            json!({"status": "429"}),
        )])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        assert_eq!(
            outcome,
            TargetOutcome::Failed {
                reason:
                    "SCIM GET /Users?filter=externalId eq …: HTTP 429, retry after 30; retryable"
                        .into(),
                retryable: true,
            }
        );
    }

    #[tokio::test]
    async fn a_400_is_permanent_and_never_repeats_the_detail() {
        let (url, _script) = scripted(vec![
            (200, vec![], list(vec![])),
            (200, vec![], list(vec![])),
            (
                400,
                vec![],
                json!({"status": "400", "scimType": "invalidValue",
                                 "detail": "ada@acme.test is not allowed"}),
            ),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        let TargetOutcome::Failed { reason, retryable } = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(!retryable);
        assert!(
            reason.contains("POST /Users: HTTP 400 (invalidValue)"),
            "{reason}"
        );
        assert!(!reason.contains("ada"), "{reason}");
    }

    #[tokio::test]
    async fn a_user_without_a_work_email_is_skipped_without_any_request() {
        let (url, script) = scripted(vec![]).await;
        let outcome = deliver(&url, &user(UserState::Active, None)).await;
        assert_eq!(
            outcome,
            TargetOutcome::Skipped {
                reason: MappingError::MissingWorkEmail.to_string()
            }
        );
        assert!(script.seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_leaver_is_skipped_rather_than_created() {
        let (url, script) = scripted(vec![
            (200, vec![], list(vec![])),
            (200, vec![], list(vec![])),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Inactive, Some("ada@acme.test"))).await;
        assert!(
            matches!(outcome, TargetOutcome::Skipped { .. }),
            "{outcome:?}"
        );
        assert!(script.seen.lock().unwrap().iter().all(|s| s.0 == "GET"));
    }

    #[tokio::test]
    async fn a_leaver_without_a_work_email_is_still_deactivated_by_employee_id() {
        let existing = json!({"id": "abc", "userName": "ada", "externalId": "42", "active": true});
        let (url, script) = scripted(vec![
            (200, vec![], list(vec![existing.clone()])),
            (200, vec![], existing),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Deleted, None)).await;
        assert_eq!(
            outcome,
            TargetOutcome::Delivered {
                status: 200,
                version: 3
            }
        );
        let seen = script.seen.lock().unwrap().clone();
        assert_eq!(seen[1].0, "PUT");
        assert_eq!(seen[1].3.as_ref().unwrap()["active"], false);
        assert_eq!(seen[1].3.as_ref().unwrap()["userName"], "ada");
    }

    #[tokio::test]
    async fn an_account_matched_by_username_but_owned_by_another_employee_is_not_taken_over() {
        let other = json!({"id": "abc", "userName": "ada", "externalId": "77"});
        let (url, script) = scripted(vec![
            (200, vec![], list(vec![])),
            (200, vec![], list(vec![other])),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        assert!(
            matches!(
                outcome,
                TargetOutcome::Failed {
                    retryable: false,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert!(script.seen.lock().unwrap().iter().all(|s| s.0 == "GET"));
    }

    #[tokio::test]
    async fn an_account_that_already_holds_the_state_gets_no_write() {
        let u = user(UserState::Active, Some("ada@acme.test"));
        let mut same = to_scim_user(&u, &ScimOptions::default()).unwrap();
        same["id"] = json!("abc");
        same["meta"] = json!({"version": "W/\"4\""});
        let (url, script) = scripted(vec![(200, vec![], list(vec![same]))]).await;
        let outcome = deliver(&url, &u).await;
        assert_eq!(
            outcome,
            TargetOutcome::Delivered {
                status: 200,
                version: 3
            }
        );
        assert_eq!(script.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_provider_that_ignores_the_filter_does_not_make_us_adopt_a_stranger() {
        let stranger = json!({"id": "zzz", "userName": "someone", "externalId": "9"});
        let (url, script) = scripted(vec![
            (200, vec![], list(vec![stranger.clone()])),
            (200, vec![], list(vec![stranger])),
            (201, vec![], json!({"id": "new"})),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        assert_eq!(
            outcome,
            TargetOutcome::Delivered {
                status: 201,
                version: 3
            }
        );
        assert_eq!(script.seen.lock().unwrap()[2].0, "POST");
    }

    #[tokio::test]
    async fn a_provider_without_external_id_filtering_falls_back_to_the_username() {
        let existing = json!({"id": "abc", "userName": "ADA"});
        let (url, script) = scripted(vec![
            (
                400,
                vec![],
                json!({"status": "400", "scimType": "invalidFilter"}),
            ),
            (200, vec![], list(vec![existing])),
            (200, vec![], json!({"id": "abc"})),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        assert_eq!(
            outcome,
            TargetOutcome::Delivered {
                status: 200,
                version: 3
            }
        );
        let seen = script.seen.lock().unwrap().clone();
        assert_eq!(seen[2].0, "PUT");
        assert_eq!(seen[2].3.as_ref().unwrap()["userName"], "ADA");
        assert_eq!(seen[2].3.as_ref().unwrap()["externalId"], "42");
    }

    #[tokio::test]
    async fn an_account_removed_between_lookup_and_put_is_a_retryable_failure() {
        let existing = json!({"id": "abc", "userName": "ada", "externalId": "42"});
        let (url, _script) = scripted(vec![
            (200, vec![], list(vec![existing])),
            (404, vec![], json!({"status": "404"})),
        ])
        .await;
        let outcome = deliver(&url, &user(UserState::Active, Some("ada@acme.test"))).await;
        assert!(
            matches!(
                outcome,
                TargetOutcome::Failed {
                    retryable: true,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn with_delete_configured_a_leaver_is_deleted_with_if_match() {
        let existing = json!({"id": "abc", "userName": "ada", "externalId": "42",
                              "meta": {"version": "W/\"5\""}});
        let (url, script) = scripted(vec![
            (200, vec![], list(vec![existing])),
            (204, vec![], Value::Null),
        ])
        .await;
        let id = TargetId::parse("scim").unwrap();
        let token = SecretString::from("tok");
        let target = ScimTarget {
            id: &id,
            base_url: &url,
            token: Some(&token),
            settings: ScimSettings {
                deprovision: Deprovision::Delete,
                ..ScimSettings::default()
            },
        };
        let u = user(UserState::Deleted, Some("ada@acme.test"));
        let outcome = target
            .deliver(&reqwest::Client::new(), &event(&u), Some(&u))
            .await;
        assert_eq!(
            outcome,
            TargetOutcome::Delivered {
                status: 204,
                version: 3
            }
        );
        let seen = script.seen.lock().unwrap().clone();
        assert_eq!(seen[1].0, "DELETE");
        assert_eq!(seen[1].1, "/scim/v2/Users/abc");
        assert_eq!(seen[1].2.as_deref(), Some("W/\"5\""));
    }

    #[tokio::test]
    async fn a_target_without_a_bearer_token_fails_permanently() {
        let id = TargetId::parse("scim").unwrap();
        let target = ScimTarget {
            id: &id,
            base_url: "http://127.0.0.1:9/scim",
            token: None,
            settings: ScimSettings::default(),
        };
        let u = user(UserState::Active, Some("ada@acme.test"));
        let outcome = target
            .deliver(&reqwest::Client::new(), &event(&u), Some(&u))
            .await;
        assert!(matches!(
            outcome,
            TargetOutcome::Failed {
                retryable: false,
                ..
            }
        ));
    }
}
