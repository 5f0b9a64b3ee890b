//! Delivery of users to a SCIM 2.0 service provider (RFC 7644). The engine keeps one
//! thing per (target, user): the account's resource id, so a changed work email still
//! updates the same account.
//!
//! For one user it:
//! 1. finds the account by the target's match order ([`domain::ScimConfig::match_order`],
//!    by default the stored resource id, then `externalId` (the BambooHR employee id),
//!    then the work email among the account's `emails` (`filter=emails.value eq "…"`),
//!    then `userName`);
//! 2. creates it with POST when there is none (never for an inactive or deleted user),
//!    and on a 409 uniqueness answer looks it up by `userName` and updates that one;
//! 3. otherwise updates only the attributes the target owns
//!    ([`domain::ScimConfig::owned_attributes`]) with PATCH when the provider announces
//!    it, else PUT of the account with only those changed, keeping the account's own
//!    `id`, `userName` (never overwritten, as JumpCloud does) and every attribute it
//!    does not own; with `If-Match` when the target versions its resources, refetching
//!    once on 412, and writing nothing when the account already holds that state;
//! 4. never takes over, through a work email, userName or 409 match, an account whose
//!    `externalId` names another employee, unless that employee is inactive or deleted
//!    here and the target allows adoption (a rehire entered as a new BambooHR record):
//!    then the account is adopted, the old record's stored id is forgotten and the
//!    adoption is written to the audit log;
//! 5. deprovisions inactive and deleted users with `active: false` (or DELETE, when
//!    [`Deprovision::Delete`] is chosen).
//!
//! The enterprise `manager.value` is the manager's resource id at this target (RFC
//! 7643 §4.3), read from the stored ids: a report delivered before its manager's
//! account exists is sent without a manager, and its next delivery (any change, a
//! re-push, or the daily [`reconcile`]) carries the id once the manager's account was
//! created.
//!
//! Errors carry the operation and status, never a response body or an HR value:
//! SCIM error details may quote the values that were refused.

use std::sync::Mutex;

use domain::{
    ChangeEvent, DirectoryId, DirectoryUser, ScimConfig, ScimDeprovision, ScimMatchKey,
    ScimUserName, TargetId, UserState,
};
use mapping::{to_scim_user_with_manager, CountryCodes, MappingError, ScimOptions, UsernameSource};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimSettings {
    /// How users are rendered (username and name source, pending users, countries).
    pub user: ScimOptions,
    /// How users are deprovisioned.
    pub deprovision: Deprovision,
    /// Push groups (`/Groups` with members) as well as users.
    pub push_groups: bool,
    /// How an existing account is looked for, in order.
    pub match_order: Vec<ScimMatchKey>,
    /// Whether an inactive or deleted employee's account may be adopted.
    pub adopt_inactive_accounts: bool,
    /// The attributes an update may write.
    pub owned: Owned,
}

impl Default for ScimSettings {
    fn default() -> Self {
        Self::from_config(&ScimConfig::default())
    }
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
                name_source: config.name_source,
                countries: CountryCodes::with_overrides(
                    config
                        .country_codes
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                ),
            },
            deprovision: match config.deprovision {
                ScimDeprovision::Deactivate => Deprovision::Deactivate,
                ScimDeprovision::Delete => Deprovision::Delete,
            },
            push_groups: config.push_groups,
            match_order: if config.match_order.is_empty() {
                ScimConfig::DEFAULT_MATCH_ORDER.to_vec()
            } else {
                config.match_order.clone()
            },
            adopt_inactive_accounts: config.adopt_inactive_accounts,
            owned: Owned::new(&config.owned_attributes),
        }
    }
}

/// One SCIM target, ready to deliver to.
#[derive(Debug, Clone)]
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

/// Where a delivery left the user's account: its resource id, or deleted, and whose
/// account it adopted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Landed {
    pub(crate) id: Option<String>,
    pub(crate) deleted: bool,
    /// The employee id whose account this delivery adopted.
    pub(crate) adopted_from: Option<String>,
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
    /// events go to [`crate::deliver::targets::scim::groups`].) Stateless: no stored
    /// account id, no manager, no adoption.
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
        self.run(http, clock, user, event.version, Known::default(), false)
            .await
            .0
            .outcome
    }

    /// Delivers one event with what the engine knows (the stored account id, the
    /// manager's account id) and keeps the account's resource id in the store, so the
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
        self.deliver_user_recorded(engine, directory, &event.object_id, user, event.version)
            .await
            .0
    }

    /// [`Self::deliver_recorded`] for one user, also returning where its account
    /// landed (the reconciliation reports it).
    pub(crate) async fn deliver_user_recorded(
        &self,
        engine: &Engine,
        directory: &DirectoryId,
        object_id: &str,
        user: &DirectoryUser,
        version: u64,
    ) -> (Attempt, Landed) {
        let store = engine.store.as_ref();
        let read = async {
            let account = store
                .get_target_account(directory, self.id, object_id)
                .await?;
            let manager = match &user.manager_employee_id {
                Some(m) => self.manager_account(store, directory, m).await?,
                None => None,
            };
            Ok::<_, ports::StoreError>((account, manager))
        };
        let (account, manager) = match read.await {
            Ok(k) => k,
            Err(e) => {
                let attempt = Attempt::plain(TargetOutcome::Failed {
                    reason: format!("reading the stored SCIM resource ids: {e}"),
                    retryable: e.is_retryable(),
                });
                return (attempt, Landed::default());
            }
        };
        let known = Known {
            account: account.clone(),
            manager,
            store: Some((store, directory)),
        };
        let patch = self.patch_supported(engine).await;
        let (attempt, landed) = self
            .run(
                &engine.http,
                engine.clock.as_ref(),
                user,
                version,
                known,
                patch,
            )
            .await;
        let kept = if landed.deleted {
            store
                .delete_target_account(directory, self.id, object_id)
                .await
        } else {
            match &landed.id {
                Some(id) if account.as_deref() != Some(id.as_str()) => {
                    store
                        .put_target_account(directory, self.id, object_id, id)
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
        if let (Some(from), Some(id)) = (&landed.adopted_from, &landed.id) {
            if let Err(e) = self
                .record_adoption(engine, directory, user, from, id)
                .await
            {
                warn!(target_id = %self.id, reason = %e, "could not record a SCIM account adoption");
            }
        }
        (attempt, landed)
    }

    pub(super) async fn run(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
        user: &DirectoryUser,
        version: u64,
        known: Known<'_>,
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
            owned: self.settings.owned.clone(),
        };
        let attempt = match self.deliver_user(&client, user, version, &known).await {
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
        known: &Known<'_>,
    ) -> Result<TargetOutcome, StepError> {
        let leaving = matches!(user.state, UserState::Inactive | UserState::Deleted);
        let desired =
            match to_scim_user_with_manager(user, &self.settings.user, known.manager.as_deref()) {
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
        let user_name = desired["userName"].as_str().map(str::to_string);
        let employee_id = user.employee_id.as_str();
        let found = self
            .find_account(client, user, user.work_email(), user_name.as_deref(), known)
            .await?;

        let Some((existing, matched_by)) = found else {
            if leaving {
                return Ok(TargetOutcome::Skipped {
                    reason: format!(
                        "no account at the target and the user is {}: an account is never created for a leaver",
                        user.state.as_str()
                    ),
                });
            }
            return self.create(client, user, &desired, version, known).await;
        };

        info!(
            target_id = %self.id, employee_id, resource_id = resource_id(&existing).unwrap_or("?"),
            matched_by = matched_by.as_str(), "SCIM account found"
        );
        if leaving && foreign_owner(&existing, employee_id).is_some() {
            // A leaver never deprovisions an account another employee holds (e.g. the
            // rehire that adopted it).
            return Ok(TargetOutcome::Skipped {
                reason: format!(
                    "the account found by {} belongs to another employee; a leaver does not \
                     deprovision it",
                    matched_by.as_str()
                ),
            });
        }
        self.claim(client, &existing, user, matched_by, known)
            .await?;
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
        known: &Known<'_>,
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
        // another (active) employee's.
        let user_name = desired["userName"].as_str().unwrap_or_default();
        let Some(existing) = client.find("userName", user_name).await? else {
            return Err(StepError::permanent(
                "POST /Users answered 409 (uniqueness) but no account has that userName; \
                 another attribute conflicts at the target",
            ));
        };
        self.claim(client, &existing, user, MatchedBy::Conflict, known)
            .await?;
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
        // Without a work email there is nothing to render: only switch it off.
        let desired =
            serde_json::json!({ "active": false, "externalId": user.employee_id.as_str() });
        let off = Client {
            owned: Owned::new(&["active"]),
            ..client.shallow()
        };
        let outcome = off.replace(existing, &desired, version).await;
        if let (Ok(mut mine), Ok(theirs)) = (client.landed.lock(), off.landed.into_inner()) {
            *mine = theirs;
        }
        outcome
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
            owned: self.settings.owned.clone(),
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
mod matching;
pub mod reconcile;
#[cfg(test)]
mod tests;

pub(crate) use body::*;
pub use body::{eq_filter, is_ownable_attribute, Owned};
pub(crate) use client::*;
pub(crate) use matching::{Known, MatchedBy};
