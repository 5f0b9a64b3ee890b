//! The configuration routes: connecting and re-authenticating a directory, its
//! settings, revoking it, its BambooHR webhook and webhook keys, and its targets with
//! every option the engine has and their signing secrets. Each write parses its body
//! whole before anything changes, runs one `sync_engine::operate` service, which
//! audits the change under the caller in the same request, and answers what was saved
//! (never a secret: keys are shown as ids and ages).
//!
//! | route | does |
//! |---|---|
//! | `POST /admin/directories` | connect (API key or OAuth), optionally registering the webhook (201) |
//! | `POST /admin/directories/{id}/credentials` | re-authenticate |
//! | `POST /admin/directories/{id}/settings` | change settings (each optional) |
//! | `POST /admin/directories/{id}/revoke` | revoke |
//! | `POST /admin/directories/{id}/webhook` | register the BambooHR webhook (default: the stack's URL) |
//! | `GET/POST /admin/directories/{id}/webhook-keys`, `POST …/{key}/retire` | list, import, retire webhook keys |
//! | `GET/POST /admin/directories/{id}/targets` | list, add (201) |
//! | `GET/POST /admin/directories/{id}/targets/{t}` | show, replace |
//! | `POST …/targets/{t}/remove`, `POST …/targets/{t}/test` | remove, test |
//! | `POST …/targets/{t}/reconcile` | a SCIM target's accounts read back and drift repaired by the poller's next run (202) |
//! | `GET/POST …/targets/{t}/secrets`, `POST …/secrets/{key}/retire` | list, add, retire signing secrets |

use std::collections::BTreeMap;

use domain::{
    EventFormat, FieldProjection, GateExit, MissingUserPolicy, Safeguard, ScimConfig,
    ScimDeprovision, ScimMatchKey, ScimNameSource, ScimUserName, Target, TargetFilter, TargetId,
    TargetKind, UserState,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::Request;
use ports::{OAuthTokens, TargetSecrets};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use sync_engine::operate::{self, keys, ConnectRequest, Credential, SettingsChange, TargetSpec};

use crate::body::{body, no_body, page};
use crate::{dir_id, scheduler, to_json, AdminApi, AdminError};

/// The methods a configuration route takes, or `None` when `parts` name none.
pub fn methods(parts: &[&str]) -> Option<&'static [Method]> {
    const POST: &[Method] = &[Method::POST];
    const BOTH: &[Method] = &[Method::GET, Method::POST];
    match parts {
        ["admin", "directories"] => Some(BOTH),
        ["admin", "directories", _, "credentials" | "settings" | "revoke" | "webhook"] => {
            Some(POST)
        }
        ["admin", "directories", _, "webhook-keys" | "targets"] => Some(BOTH),
        ["admin", "directories", _, "webhook-keys", _, "retire"] => Some(POST),
        ["admin", "directories", _, "targets", _] => Some(BOTH),
        ["admin", "directories", _, "targets", _, "remove" | "test" | "reconcile"] => Some(POST),
        ["admin", "directories", _, "targets", _, "secrets"] => Some(BOTH),
        ["admin", "directories", _, "targets", _, "secrets", _, "retire"] => Some(POST),
        _ => None,
    }
}

/// A BambooHR credential in a body: an API key, or OAuth tokens.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialBody {
    api_key: Option<SecretString>,
    oauth: Option<OAuthBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OAuthBody {
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
}

impl CredentialBody {
    fn credential(self) -> Result<Credential, AdminError> {
        match (self.api_key, self.oauth) {
            (Some(k), None) => Ok(Credential::ApiKey(k)),
            (None, Some(o)) => Ok(Credential::OAuth(OAuthTokens {
                access_token: o.access_token,
                refresh_token: o.refresh_token,
                expires_at: None,
                client_id: o.client_id,
                client_secret: o.client_secret,
            })),
            _ => Err(AdminError::bad_request(
                "body: give exactly one of apiKey and oauth",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConnectBody {
    id: String,
    subdomain: String,
    base_url: Option<String>,
    time_zone: Option<String>,
    api_key: Option<SecretString>,
    oauth: Option<OAuthBody>,
    /// Register the BambooHR webhook at the stack's URL (or `webhookUrl`).
    #[serde(default)]
    register_webhook: bool,
    webhook_url: Option<String>,
}

/// Every setting, each optional; given ones replace the current value.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsBody {
    incremental_every_minutes: Option<u32>,
    full_every_hours: Option<u32>,
    extra_fields: Option<Vec<String>>,
    custom_field_map: Option<BTreeMap<String, String>>,
    field_aliases: Option<BTreeMap<String, String>>,
    group_sources: Option<Vec<String>>,
    safeguard_max_share: Option<f64>,
    safeguard_min_count: Option<u32>,
    safeguard_window_minutes: Option<u32>,
    stale_after_minutes: Option<u32>,
    time_zone: Option<String>,
    missing_users: Option<MissingUserPolicy>,
    pre_start_days: Option<u32>,
    onboarding_window_days: Option<u32>,
    preset: Option<operate::SettingsPreset>,
    /// The fields kept in raw attributes besides the mapped ones; `null` goes back to
    /// the default (extra fields and group sources).
    #[serde(default, deserialize_with = "present")]
    raw_attribute_allowlist: Option<Option<Vec<String>>>,
}

/// A field that is present (even as `null`) is `Some`: `null` then means "back to the
/// default", while a missing field leaves the setting as it is.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WebhookBody {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    key: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    secret: SecretString,
}

/// A target definition: its kind with the kind's options, its filter and its
/// credential. The id comes from the body (add) or the path (replace).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TargetBody {
    id: Option<String>,
    kind: KindName,
    /// App webhook and HTTP upsert.
    url: Option<String>,
    /// SCIM. Also under the name a target is shown with (`base_url`), so a definition
    /// read from the API can be sent back.
    #[serde(alias = "base_url")]
    base_url: Option<String>,
    /// EventBridge (also `bus_arn`, as shown).
    #[serde(alias = "bus_arn")]
    bus_arn: Option<String>,
    /// App webhook: the event format (`native`, the default, or `workos`).
    format: Option<EventFormat>,
    /// App webhook and EventBridge: the user attributes sent (absent: all).
    projection: Option<Vec<String>>,
    /// HTTP upsert: the body fields sent (empty: all) and those required.
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    required: Vec<String>,
    /// HTTP upsert: what a user leaving the gate gets (also `gate_exit`, as shown).
    #[serde(alias = "gate_exit")]
    gate_exit: Option<GateExit>,
    /// SCIM options.
    scim: Option<ScimBody>,
    #[serde(default)]
    filter: FilterBody,
    #[serde(default = "yes")]
    enabled: bool,
    /// The credential: the signing secret (app webhook), the bearer token (SCIM) or
    /// the value of the `secretParam` URL parameter (HTTP upsert).
    secret: Option<SecretString>,
    secret_param: Option<String>,
}

fn yes() -> bool {
    true
}

/// SCIM options in a body: [`ScimConfig`] with its unknown fields refused (the domain
/// type reads stored records leniently; a mistyped option here must not be dropped).
/// An option left out takes [`ScimConfig`]'s default.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScimBody {
    user_name: Option<ScimUserName>,
    deprovision: Option<ScimDeprovision>,
    pending_active: Option<bool>,
    push_groups: Option<bool>,
    name_source: Option<ScimNameSource>,
    match_order: Option<Vec<ScimMatchKey>>,
    adopt_inactive_accounts: Option<bool>,
    owned_attributes: Option<Vec<String>>,
    country_codes: Option<BTreeMap<String, String>>,
    reconcile_every_hours: Option<u32>,
}

/// Longest reconciliation interval, in hours (a month).
const MAX_RECONCILE_HOURS: u32 = 24 * 31;

impl ScimBody {
    fn config(self) -> Result<ScimConfig, AdminError> {
        let d = ScimConfig::default();
        let refuse = |field: &str, why: String| {
            AdminError::Engine(sync_engine::EngineError::InvalidInput {
                what: format!("scim.{field}"),
                reason: why,
            })
        };
        let match_order = self.match_order.unwrap_or(d.match_order);
        let mut seen = std::collections::HashSet::new();
        if match_order.iter().any(|k| !seen.insert(*k)) {
            return Err(refuse("matchOrder", "a match key is listed twice".into()));
        }
        let owned = self.owned_attributes.unwrap_or(d.owned_attributes);
        for a in &owned {
            if !sync_engine::deliver::targets::scim::is_ownable_attribute(a) {
                return Err(refuse(
                    "ownedAttributes",
                    format!("{a:?} is not a SCIM User attribute this target can own"),
                ));
            }
        }
        let country_codes = self.country_codes.unwrap_or_default();
        for (name, code) in &country_codes {
            let iso = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
            if name.trim().is_empty() || !iso {
                return Err(refuse(
                    "countryCodes",
                    format!("{name:?} -> {code:?}: give a country name and an ISO 3166-1 alpha-2 code such as US"),
                ));
            }
        }
        let reconcile_every_hours = self
            .reconcile_every_hours
            .unwrap_or(d.reconcile_every_hours);
        if reconcile_every_hours > MAX_RECONCILE_HOURS {
            return Err(refuse(
                "reconcileEveryHours",
                format!("must be 0 (on demand only) to {MAX_RECONCILE_HOURS}"),
            ));
        }
        Ok(ScimConfig {
            user_name: self.user_name.unwrap_or(d.user_name),
            deprovision: self.deprovision.unwrap_or(d.deprovision),
            pending_active: self.pending_active.unwrap_or(d.pending_active),
            push_groups: self.push_groups.unwrap_or(d.push_groups),
            name_source: self.name_source.unwrap_or(d.name_source),
            match_order,
            adopt_inactive_accounts: self
                .adopt_inactive_accounts
                .unwrap_or(d.adopt_inactive_accounts),
            owned_attributes: owned,
            country_codes,
            reconcile_every_hours,
        })
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum KindName {
    AppWebhook,
    Scim,
    HttpUpsert,
    EventBridge,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FilterBody {
    #[serde(default)]
    states: Vec<UserState>,
    #[serde(default)]
    require_work_email: bool,
    #[serde(default)]
    field_in: BTreeMap<String, Vec<String>>,
}

impl TargetBody {
    fn spec(self, id: TargetId, require_secret: bool) -> Result<TargetSpec, AdminError> {
        let need = |v: Option<String>, name: &str| {
            v.ok_or_else(|| {
                AdminError::bad_request(format!("body: {name} is required for this kind"))
            })
        };
        if self.format.is_some() && self.kind != KindName::AppWebhook {
            return Err(AdminError::bad_request(
                "body: format: only an app webhook has an event format",
            ));
        }
        if self.projection.is_some()
            && !matches!(self.kind, KindName::AppWebhook | KindName::EventBridge)
        {
            return Err(AdminError::bad_request(
                "body: projection: only app webhooks and EventBridge targets have a field projection",
            ));
        }
        let projection = self
            .projection
            .as_deref()
            .map(FieldProjection::parse)
            .transpose()
            .map_err(|e| AdminError::bad_request(format!("body: projection: {e}")))?;
        let kind = match self.kind {
            KindName::AppWebhook => TargetKind::AppWebhook {
                url: need(self.url, "url")?,
                format: self.format.unwrap_or_default(),
                projection,
            },
            KindName::Scim => TargetKind::Scim {
                base_url: need(self.base_url, "baseUrl")?,
                scim: self.scim.unwrap_or_default().config()?,
            },
            KindName::HttpUpsert => TargetKind::HttpUpsert {
                url: need(self.url, "url")?,
                fields: self.fields,
                required: self.required,
                gate_exit: self.gate_exit.unwrap_or_default(),
            },
            KindName::EventBridge => TargetKind::EventBridge {
                bus_arn: need(self.bus_arn, "busArn")?,
                projection,
            },
        };
        if self.gate_exit.is_some() && self.kind != KindName::HttpUpsert {
            return Err(AdminError::bad_request(
                "body: gateExit: only an http_upsert target takes it",
            ));
        }
        let takes_secret = match self.kind {
            KindName::EventBridge => false,
            KindName::HttpUpsert => self.secret_param.is_some(),
            _ => true,
        };
        if self.secret.is_some() && !takes_secret {
            return Err(AdminError::bad_request(
                "body: secret: this kind takes none (an HTTP upsert needs secretParam for one)",
            ));
        }
        if takes_secret && require_secret && self.secret.is_none() {
            return Err(AdminError::bad_request(
                "body: secret is required for this kind",
            ));
        }
        let secrets = self.secret.map(|s| {
            let mut t = TargetSecrets::default();
            match self.kind {
                KindName::AppWebhook => t.signing_secrets = vec![s],
                KindName::Scim => t.bearer_token = Some(s),
                KindName::HttpUpsert => {
                    if let Some(name) = &self.secret_param {
                        t.url_params.insert(name.clone(), s);
                    }
                }
                KindName::EventBridge => {}
            }
            t
        });
        Ok(TargetSpec {
            target: Target {
                id,
                kind,
                filter: TargetFilter {
                    states: self.filter.states,
                    require_work_email: self.filter.require_work_email,
                    field_in: self.filter.field_in,
                },
                enabled: self.enabled,
            },
            secrets,
        })
    }
}

fn target_id(s: &str) -> Result<TargetId, AdminError> {
    TargetId::parse(s).map_err(|e| AdminError::bad_request(format!("target id: {e}")))
}

/// Answers a configuration route: the status and the body. `actor` is the verified
/// caller (writes only).
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
    let ok = |v: Value| Ok((StatusCode::OK, v));
    match (method.clone(), parts) {
        (Method::GET, ["admin", "directories"]) => {
            let all = engine.store.list_directories().await?;
            ok(page(req, all, |d| d.id.to_string(), 100)?)
        }
        (Method::POST, ["admin", "directories"]) => {
            let b: ConnectBody = body(req)?;
            let credential = CredentialBody {
                api_key: b.api_key,
                oauth: b.oauth,
            }
            .credential()?;
            let id = dir_id(&b.id)?;
            let webhook_at = match (b.register_webhook, b.webhook_url) {
                (_, Some(url)) => Some(url),
                (true, None) => Some(api.webhook_url(&id)?),
                (false, None) => None,
            };
            let outcome = operate::connect(
                engine,
                scheduler(api)?,
                ConnectRequest {
                    directory_id: id.clone(),
                    subdomain: b.subdomain,
                    base_url: b.base_url,
                    credential,
                    time_zone: b.time_zone,
                    register_webhook_at: webhook_at,
                },
                actor()?,
            )
            .await?;
            let status = if outcome.reauthenticated {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let mut v = to_json(&outcome);
            v["webhookUrl"] = json!(api.webhook_url(&id).ok());
            Ok((status, v))
        }
        (Method::POST, ["admin", "directories", id, "credentials"]) => {
            let id = dir_id(id)?;
            let d = operate::directory(engine, &id).await?;
            if d.state == domain::DirectoryState::Revoked {
                // Reconnecting a revoked directory is a connect, which names its subdomain.
                return Err(sync_engine::EngineError::DirectoryNotActive {
                    id,
                    state: "revoked (connect it again with POST /admin/directories)",
                }
                .into());
            }
            let credential = body::<CredentialBody>(req)?.credential()?;
            let outcome = operate::connect(
                engine,
                scheduler(api)?,
                ConnectRequest {
                    directory_id: id,
                    subdomain: d.subdomain.clone(),
                    base_url: d.base_url.clone(),
                    credential,
                    time_zone: None,
                    register_webhook_at: None,
                },
                actor()?,
            )
            .await?;
            ok(to_json(&outcome))
        }
        (Method::POST, ["admin", "directories", id, "settings"]) => {
            let id = dir_id(id)?;
            let b: SettingsBody = body(req)?;
            let safeguard = if b.safeguard_max_share.is_some()
                || b.safeguard_min_count.is_some()
                || b.safeguard_window_minutes.is_some()
            {
                let current = operate::directory(engine, &id).await?.safeguard;
                Some(Safeguard {
                    max_share: b.safeguard_max_share.unwrap_or(current.max_share),
                    min_count: b.safeguard_min_count.unwrap_or(current.min_count),
                    window_minutes: b.safeguard_window_minutes.unwrap_or(current.window_minutes),
                })
            } else {
                None
            };
            let change = SettingsChange {
                incremental_every_minutes: b.incremental_every_minutes,
                full_every_hours: b.full_every_hours,
                extra_fields: b.extra_fields,
                custom_field_map: b.custom_field_map,
                group_sources: b.group_sources,
                safeguard,
                stale_after_minutes: b.stale_after_minutes,
                time_zone: b.time_zone,
                missing_users: b.missing_users,
                pre_start_days: b.pre_start_days,
                field_aliases: b.field_aliases,
                raw_attribute_allowlist: b.raw_attribute_allowlist,
                onboarding_window_days: b.onboarding_window_days,
                preset: b.preset,
            };
            let updated =
                operate::update_settings(engine, scheduler(api)?, &id, &change, actor()?).await?;
            ok(to_json(&updated))
        }
        (Method::POST, ["admin", "directories", id, "revoke"]) => {
            let id = dir_id(id)?;
            no_body(req)?;
            ok(to_json(
                &operate::revoke(engine, scheduler(api)?, &id, actor()?).await?,
            ))
        }
        (Method::POST, ["admin", "directories", id, "webhook"]) => {
            let id = dir_id(id)?;
            let b: WebhookBody = body(req)?;
            let url = match b.url {
                Some(u) => u,
                None => api.webhook_url(&id)?,
            };
            ok(to_json(
                &operate::register_webhook(engine, &id, &url, actor()?).await?,
            ))
        }
        (Method::GET, ["admin", "directories", id, "webhook-keys"]) => {
            let id = dir_id(id)?;
            let list = keys::webhook_keys(engine, &id).await?;
            ok(page(req, list, |k| k.id.clone(), 100)?)
        }
        (Method::POST, ["admin", "directories", id, "webhook-keys"]) => {
            let id = dir_id(id)?;
            let b: KeyBody = body(req)?;
            let list = keys::import_webhook_key(engine, &id, b.key, actor()?).await?;
            Ok((StatusCode::CREATED, json!({ "keys": list })))
        }
        (Method::POST, ["admin", "directories", id, "webhook-keys", key, "retire"]) => {
            let id = dir_id(id)?;
            no_body(req)?;
            let list = keys::retire_webhook_key(engine, &id, key, actor()?).await?;
            ok(json!({ "keys": list }))
        }
        (Method::GET, ["admin", "directories", id, "targets"]) => {
            let d = operate::directory(engine, &dir_id(id)?).await?;
            ok(page(req, d.targets, |t| t.id.to_string(), 100)?)
        }
        (Method::POST, ["admin", "directories", id, "targets"]) => {
            let id = dir_id(id)?;
            let b: TargetBody = body(req)?;
            let t = target_id(
                b.id.as_deref()
                    .ok_or_else(|| AdminError::bad_request("body: id is required"))?,
            )?;
            let spec = b.spec(t.clone(), true)?;
            let changed = operate::add_target(engine, &id, spec, actor()?).await?;
            Ok((StatusCode::CREATED, target_answer(&changed, &t)))
        }
        (Method::GET, ["admin", "directories", id, "targets", t]) => {
            let d = operate::directory(engine, &dir_id(id)?).await?;
            let t = target_id(t)?;
            let target = d
                .target(&t)
                .ok_or(sync_engine::EngineError::TargetNotFound(t.clone()))?;
            ok(to_json(target))
        }
        (Method::POST, ["admin", "directories", id, "targets", t]) => {
            let id = dir_id(id)?;
            let t = target_id(t)?;
            let b: TargetBody = body(req)?;
            if b.id.as_deref().is_some_and(|given| given != t.as_str()) {
                return Err(AdminError::bad_request(
                    "body: id differs from the path's target id (a target's id does not change)",
                ));
            }
            let spec = b.spec(t.clone(), false)?;
            let changed = operate::update_target(engine, &id, spec, actor()?).await?;
            ok(target_answer(&changed, &t))
        }
        (Method::POST, ["admin", "directories", id, "targets", t, "remove"]) => {
            let id = dir_id(id)?;
            let t = target_id(t)?;
            no_body(req)?;
            let changed = operate::remove_target(engine, &id, &t, actor()?).await?;
            ok(json!({"removed": t, "targets": changed.directory.targets,
                      "monitorFields": changed.monitor_fields}))
        }
        (Method::POST, ["admin", "directories", id, "targets", t, "test"]) => {
            let id = dir_id(id)?;
            let t = target_id(t)?;
            no_body(req)?;
            ok(to_json(&operate::test_target(engine, &id, &t).await?))
        }
        (Method::POST, ["admin", "directories", id, "targets", t, "reconcile"]) => {
            let id = dir_id(id)?;
            let t = target_id(t)?;
            no_body(req)?;
            let requested =
                operate::request_reconcile(engine, scheduler(api)?, &id, &t, actor()?).await?;
            Ok((StatusCode::ACCEPTED, to_json(&requested)))
        }
        (Method::GET, ["admin", "directories", id, "targets", t, "secrets"]) => {
            let list = keys::signing_secrets(engine, &dir_id(id)?, &target_id(t)?).await?;
            ok(page(req, list, |k| k.id.clone(), 100)?)
        }
        (Method::POST, ["admin", "directories", id, "targets", t, "secrets"]) => {
            let b: SecretBody = body(req)?;
            let list =
                keys::add_signing_secret(engine, &dir_id(id)?, &target_id(t)?, b.secret, actor()?)
                    .await?;
            Ok((StatusCode::CREATED, json!({ "secrets": list })))
        }
        (Method::POST, ["admin", "directories", id, "targets", t, "secrets", key, "retire"]) => {
            no_body(req)?;
            let list =
                keys::retire_signing_secret(engine, &dir_id(id)?, &target_id(t)?, key, actor()?)
                    .await?;
            ok(json!({ "secrets": list }))
        }
        _ => Err(AdminError::NoRoute),
    }
}

fn target_answer(changed: &operate::TargetsChanged, t: &TargetId) -> Value {
    json!({
        "target": changed.directory.target(t),
        "monitorFields": changed.monitor_fields,
    })
}
