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

use std::sync::Mutex;

use domain::{
    ChangeEvent, DirectoryId, DirectoryUser, ScimConfig, ScimDeprovision, ScimUserName, TargetId,
    UserState,
};
use mapping::{to_scim_user, MappingError, ScimOptions, UsernameSource};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::deliver::attempt::{Attempt, TargetOutcome};
use crate::deps::Engine;
use ports::Clock;

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
    pub(super) id: Option<String>,
    pub(super) deleted: bool,
}

/// How an existing account was found; both are updated the same way, but the
/// distinction is logged because a userName match adopts an account we did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MatchedBy {
    /// The resource id remembered from an earlier delivery.
    StoredId,
    ExternalId,
    UserName,
}

impl MatchedBy {
    pub(super) fn as_str(self) -> &'static str {
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
    /// When it arrived (the engine's clock), for a Retry-After given as a date.
    pub(super) received_at: time::OffsetDateTime,
    pub(super) etag: Option<String>,
    pub(super) retry_after: Option<String>,
    pub(crate) body: Option<Value>,
}

impl ScimTarget<'_> {
    /// Delivers one user event; `user` is the user's current stored state. (Group
    /// events go to [`crate::deliver::targets::scim::groups`].)
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
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
        self.run(http, clock, user, event.version, None, false)
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
        let patch = self.patch_supported(engine).await;
        let (attempt, landed) = self
            .run(
                &engine.http,
                engine.clock.as_ref(),
                user,
                event.version,
                known.as_deref(),
                patch,
            )
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

    pub(super) async fn run(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
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
            clock,
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

    pub(super) async fn deliver_user(
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
    pub(super) async fn create(
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

    pub(super) async fn deprovision_by_external_id(
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
    /// hour per base URL (the engine's cache). A provider that cannot say is updated with PUT.
    pub(crate) async fn patch_supported(&self, engine: &Engine) -> bool {
        const FRESH_FOR: time::Duration = time::Duration::hours(1);
        let cache = &engine.scim_capabilities;
        if let Some(patch) = cache.patch_supported(self.base_url, engine.clock.now(), FRESH_FOR) {
            return patch;
        }
        let http = &engine.http;
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
        cache.remember(self.base_url, engine.clock.now(), patch);
        debug!(target_id = %self.id, patch, "SCIM service provider capabilities read");
        patch
    }

    pub(super) fn config_url(&self) -> Result<Url, StepError> {
        let mut url = self.users_url()?;
        url.path_segments_mut()
            .map_err(|_| StepError::permanent("the SCIM base URL cannot have a path"))?
            .pop()
            .push("ServiceProviderConfig");
        Ok(url)
    }

    pub(super) fn users_url(&self) -> Result<Url, StepError> {
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
        clock: &'c dyn Clock,
        kind: &str,
        patch: bool,
    ) -> Result<Client<'c>, StepError> {
        let token = self.token.ok_or_else(|| {
            StepError::permanent("no SCIM bearer token configured for this target")
        })?;
        Ok(Client {
            http,
            clock,
            base: self.resource_type_url(kind)?,
            token,
            landed: Mutex::new(Landed::default()),
            patch,
        })
    }
}

/// The probe: `GET /Users?count=1` with the target's token, which reads one account
/// at most and changes nothing.
pub(crate) fn probe(
    engine: &Engine,
    base_url: &str,
    token: Option<&SecretString>,
) -> Result<reqwest::RequestBuilder, crate::deliver::targets::ProbeRefused> {
    let token = token.ok_or(crate::deliver::targets::ProbeRefused::Missing(
        "SCIM bearer token for this target",
    ))?;
    Ok(engine
        .http
        .get(format!("{}/Users", base_url.trim_end_matches('/')))
        .query(&[("count", "1")])
        .header(ACCEPT, SCIM_MEDIA_TYPE)
        .bearer_auth(token.expose_secret()))
}

mod body;
mod client;
pub mod groups;
#[cfg(test)]
mod tests;

pub use body::eq_filter;
pub(crate) use body::*;
pub(crate) use client::*;
