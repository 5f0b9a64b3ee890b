//! Operator services: connect a directory (credentials checked against BambooHR
//! first), change its settings, pause, resume or revoke it, manage and test its
//! targets, report its status, resolve holds and replay deliveries. The CLI (and an
//! admin API) are thin shells over these.
//!
//! Every service writes an audit entry naming who acted; entries never carry a secret
//! or an HR field value. [`record_run`] is the one call the sync run makes at its end:
//! it audits the run and, for a completed run, stores the evidence snapshot.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use bamboohr_client::{Auth, BambooClient, BambooError, ClientOptions};
use domain::{
    AuthKind, Directory, DirectoryId, DirectoryState, EmployeeId, GroupSource, MissingUserPolicy,
    RunStatus, Safeguard, SyncRun, Target, TargetId, TargetKind, UserState,
};
use ports::{
    AuditAction, AuditEntry, DeliveryQuery, DeliveryStatus, DirectorySecrets, EvidenceRow,
    Scheduler, StoreError, TargetSecrets, UserFingerprint,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::schedule::reconcile_directory_schedule;

/// Fields a sync cannot do without: when BambooHR withholds one of them from the
/// credential, connecting fails with "missing permission".
pub const ESSENTIAL_FIELDS: [&str; 6] = [
    "firstName",
    "lastName",
    "email",
    "status",
    "hireDate",
    "terminationDate",
];

/// The actor recorded for the poller's own entries (runs, holds).
pub const POLLER_ACTOR: &str = "function:poller";

/// Why BambooHR did not accept the credentials being connected. Each reads as one
/// line an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectProblem {
    /// 401.
    #[error("bad API key: BambooHR refused the credentials for {subdomain}")]
    BadApiKey {
        /// The company.
        subdomain: String,
    },
    /// 403, or essential fields withheld.
    #[error("missing permission: the credentials for {subdomain} cannot read {what}")]
    MissingPermission {
        /// The company.
        subdomain: String,
        /// What they cannot read.
        what: String,
    },
    /// 404 or a host that does not resolve.
    #[error("unknown subdomain: {subdomain} is not a BambooHR company ({detail})")]
    UnknownSubdomain {
        /// The company asked for.
        subdomain: String,
        /// What happened (status or connection failure).
        detail: String,
    },
    /// BambooHR could not be reached or kept failing.
    #[error("BambooHR unreachable for {subdomain}: {reason}")]
    Unreachable {
        /// The company.
        subdomain: String,
        /// Why.
        reason: String,
    },
}

impl ConnectProblem {
    /// Only unreachability may pass by itself.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// The BambooHR credential given to [`connect`].
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API key.
    ApiKey(SecretString),
    /// An OAuth access token (and, when refreshable, the refresh token and client).
    OAuth(ports::OAuthTokens),
}

/// What [`connect`] needs.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// The directory's id (chosen by the operator).
    pub directory_id: DirectoryId,
    /// The BambooHR company subdomain.
    pub subdomain: String,
    /// Overrides `https://<subdomain>.bamboohr.com` (the simulator, a proxy).
    pub base_url: Option<String>,
    /// The credential.
    pub credential: Credential,
    /// IANA time zone of the company (default UTC).
    pub time_zone: Option<String>,
    /// When set, an event-based webhook posting to this URL is registered at
    /// BambooHR and its private key kept in the directory's secret.
    pub register_webhook_at: Option<String>,
}

/// What [`connect`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectOutcome {
    /// The directory as saved.
    pub directory: Directory,
    /// True when it existed and only its credentials were replaced.
    pub reauthenticated: bool,
    /// BambooHR's id of the registered webhook, if one was registered.
    pub webhook_id: Option<String>,
    /// Employees BambooHR reported while validating.
    pub employees: u64,
}

fn audit_nonce() -> u32 {
    rand::random()
}

/// Appends an audit entry for `directory`. Audit is part of the operation: a failure
/// is returned to the caller.
pub async fn audit(
    engine: &Engine,
    directory: &DirectoryId,
    action: AuditAction,
    actor: &str,
    details: serde_json::Value,
) -> Result<AuditEntry, EngineError> {
    let entry = AuditEntry::new(
        directory.clone(),
        engine.clock.now(),
        audit_nonce(),
        action,
        actor,
        details,
    );
    engine.store.append_audit(&entry).await?;
    info!(directory_id = %directory, action = action.as_str(), actor, "audited");
    Ok(entry)
}

fn invalid(what: &str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidInput {
        what: what.to_string(),
        reason: reason.into(),
    }
}

fn auth_of(credential: &Credential) -> Auth {
    match credential {
        Credential::ApiKey(k) => Auth::ApiKey(k.clone()),
        // Validation needs a working access token; refreshing is the sync's business.
        Credential::OAuth(o) => Auth::Bearer(o.access_token.clone()),
    }
}

/// Checks credentials with one real BambooHR call: the first row of the employee
/// dataset with the essential fields. Returns how many employees BambooHR reports.
pub async fn validate_credentials(
    subdomain: &str,
    base_url: &str,
    auth: Auth,
) -> Result<u64, EngineError> {
    let opts = ClientOptions {
        timeout: StdDuration::from_secs(15),
        max_attempts: 3,
        budget: StdDuration::from_secs(45),
        ..ClientOptions::default()
    };
    let client = BambooClient::new(base_url, auth, opts)?;
    let mut fields = vec!["employeeId"];
    fields.extend(ESSENTIAL_FIELDS);
    let problem = |e: BambooError| -> EngineError {
        let subdomain = subdomain.to_string();
        EngineError::Connect(match e {
            BambooError::Unauthorized => ConnectProblem::BadApiKey { subdomain },
            BambooError::Forbidden { operation } => ConnectProblem::MissingPermission {
                subdomain,
                what: operation,
            },
            BambooError::NotFound { resource } => ConnectProblem::UnknownSubdomain {
                subdomain,
                detail: format!("{resource} not found"),
            },
            BambooError::Unavailable { reason, .. } if reason.contains("connection failed") => {
                ConnectProblem::UnknownSubdomain {
                    subdomain,
                    detail: reason,
                }
            }
            other => ConnectProblem::Unreachable {
                subdomain,
                reason: other.to_string(),
            },
        })
    };
    let page = client.dataset_page(&fields, 1, 1).await.map_err(problem)?;
    let withheld: Vec<&str> = page
        .employees
        .iter()
        .flat_map(|e| e.restricted.iter())
        .map(String::as_str)
        .filter(|f| ESSENTIAL_FIELDS.contains(f))
        .collect();
    if !withheld.is_empty() {
        return Err(EngineError::Connect(ConnectProblem::MissingPermission {
            subdomain: subdomain.to_string(),
            what: format!("the fields {}", withheld.join(", ")),
        }));
    }
    Ok(page.total_items)
}

/// Connects a directory: validates the credential against BambooHR, then writes the
/// secret, the directory record (`connected_at` now) and its schedule, and optionally
/// registers an event-based webhook. Connecting an existing directory replaces its
/// credential (re-authentication) and keeps its settings, targets and webhook keys.
pub async fn connect(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    request: ConnectRequest,
    actor: &str,
) -> Result<ConnectOutcome, EngineError> {
    let id = &request.directory_id;
    let mut directory = match engine.store.get_directory(id).await? {
        Some(d) => d,
        // The secret is named after the directory; the secret store adds the stack's
        // prefix (Secrets Manager) or keys its file by it (local).
        None => Directory::new(id.clone(), &request.subdomain, id.as_str())
            .map_err(|e| invalid("subdomain", e.to_string()))?,
    };
    let reauthenticated = directory.version > 0 && directory.state != DirectoryState::Revoked;
    let expected = (directory.version > 0).then_some(directory.version);
    if request.subdomain != directory.subdomain {
        let fresh = Directory::new(id.clone(), &request.subdomain, &directory.secret_name)
            .map_err(|e| invalid("subdomain", e.to_string()))?;
        directory.subdomain = fresh.subdomain;
    }
    directory.base_url = request.base_url.clone();
    if let Some(tz) = &request.time_zone {
        if !crate::lifecycle::is_known_time_zone(tz) {
            return Err(invalid(
                "time zone",
                format!("{tz} is not an IANA time zone"),
            ));
        }
        directory.time_zone = tz.clone();
    }
    let employees = validate_credentials(
        &directory.subdomain,
        &directory.bamboohr_base_url(),
        auth_of(&request.credential),
    )
    .await?;

    let mut secrets = match engine.secrets.get(&directory.secret_name).await {
        Ok(s) => s,
        Err(ports::SecretsError::NotFound { .. }) => DirectorySecrets::default(),
        Err(e) => return Err(e.into()),
    };
    match &request.credential {
        Credential::ApiKey(k) => {
            secrets.bamboohr_api_key = Some(k.clone());
            secrets.oauth = None;
            directory.auth = AuthKind::ApiKey;
        }
        Credential::OAuth(o) => {
            secrets.oauth = Some(o.clone());
            secrets.bamboohr_api_key = None;
            directory.auth = AuthKind::OAuth;
        }
    }
    engine.secrets.put(&directory.secret_name, &secrets).await?;

    let now = engine.clock.now();
    if directory.state == DirectoryState::Revoked {
        directory.state = DirectoryState::Active;
    }
    // A reconnected directory is no longer waiting for its purge.
    directory.deleted_at = None;
    directory.connected_at = Some(now);
    directory.cursors.full_requested = true;
    directory.version = expected.unwrap_or(0) + 1;
    engine.store.put_directory(&directory, expected).await?;
    reconcile_directory_schedule(scheduler, &directory).await?;

    // Audited as soon as the connection exists: a failed webhook registration below
    // leaves a connected directory (synced by its schedule) that the log must show.
    let action = if reauthenticated {
        AuditAction::Reauthentication
    } else {
        AuditAction::Connect
    };
    audit(
        engine,
        id,
        action,
        actor,
        json!({
            "subdomain": directory.subdomain,
            "auth": directory.auth,
            "webhookRequested": request.register_webhook_at.is_some(),
        }),
    )
    .await?;
    let webhook_id = match &request.register_webhook_at {
        Some(url) => Some(crate::connect::register_event_webhook(engine, id, url, &[]).await?),
        None => None,
    };
    Ok(ConnectOutcome {
        directory,
        reauthenticated,
        webhook_id,
        employees,
    })
}

/// A change of a directory's sync settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    /// Minutes between incremental runs.
    pub incremental_every_minutes: Option<u32>,
    /// Hours between full reconciliations.
    pub full_every_hours: Option<u32>,
    /// Extra BambooHR fields to fetch.
    pub extra_fields: Option<Vec<String>>,
    /// BambooHR field -> custom attribute name.
    pub custom_field_map: Option<BTreeMap<String, String>>,
    /// Fields groups are derived from.
    pub group_sources: Option<Vec<String>>,
    /// The mass-change safeguard.
    pub safeguard: Option<Safeguard>,
    /// Minutes without a successful sync before the directory is stale.
    pub stale_after_minutes: Option<u32>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// What happens to users missing from a complete listing.
    pub missing_users: Option<MissingUserPolicy>,
    /// Days before the hire date a pending user becomes active.
    pub pre_start_days: Option<u32>,
}

impl SettingsChange {
    fn validate(&self) -> Result<(), EngineError> {
        if self.incremental_every_minutes == Some(0) {
            return Err(invalid(
                "schedule",
                "incremental interval must be at least 1 minute",
            ));
        }
        if self.full_every_hours == Some(0) {
            return Err(invalid("schedule", "full interval must be at least 1 hour"));
        }
        if let Some(sg) = &self.safeguard {
            if !(0.0..=1.0).contains(&sg.max_share) {
                return Err(invalid("safeguard", "max share must be between 0 and 1"));
            }
        }
        if self.stale_after_minutes == Some(0) {
            return Err(invalid("stale threshold", "must be at least 1 minute"));
        }
        if let Some(tz) = &self.time_zone {
            if !crate::lifecycle::is_known_time_zone(tz) {
                return Err(invalid(
                    "time zone",
                    format!("{tz} is not an IANA time zone"),
                ));
            }
        }
        if let Some(sources) = &self.group_sources {
            if sources.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid("group sources", "a group source names a field"));
            }
        }
        Ok(())
    }

    /// Applies the change; returns the names of the settings that changed.
    fn apply(&self, d: &mut Directory) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! set {
            ($field:expr, $value:expr, $name:literal) => {
                if let Some(v) = $value {
                    if $field != v {
                        $field = v;
                        changed.push($name);
                    }
                }
            };
        }
        set!(
            d.schedule.incremental_every_minutes,
            self.incremental_every_minutes,
            "incrementalEveryMinutes"
        );
        set!(
            d.schedule.full_every_hours,
            self.full_every_hours,
            "fullEveryHours"
        );
        set!(d.extra_fields, self.extra_fields.clone(), "extraFields");
        set!(
            d.custom_field_map,
            self.custom_field_map.clone(),
            "customFieldMap"
        );
        set!(
            d.group_sources,
            self.group_sources.as_ref().map(|s| s
                .iter()
                .map(|f| GroupSource { field: f.clone() })
                .collect::<Vec<_>>()),
            "groupSources"
        );
        set!(d.safeguard, self.safeguard.clone(), "safeguard");
        set!(
            d.stale_after_minutes,
            self.stale_after_minutes.map(Some),
            "staleAfterMinutes"
        );
        set!(d.time_zone, self.time_zone.clone(), "timeZone");
        set!(d.missing_users, self.missing_users, "missingUsers");
        set!(d.pre_start_days, self.pre_start_days, "preStartDays");
        changed
    }
}

/// Reads a directory or fails with `DirectoryNotFound`.
pub async fn directory(engine: &Engine, id: &DirectoryId) -> Result<Directory, EngineError> {
    engine
        .store
        .get_directory(id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(id.clone()))
}

/// Read-modify-write of a directory, retried on conflicting writers. `change` returns
/// false to leave the directory as it is.
async fn modify<F>(
    engine: &Engine,
    id: &DirectoryId,
    mut change: F,
) -> Result<Directory, EngineError>
where
    F: FnMut(&mut Directory) -> Result<bool, EngineError>,
{
    for attempt in 1..=4 {
        let mut d = directory(engine, id).await?;
        let expected = d.version;
        if !change(&mut d)? {
            return Ok(d);
        }
        d.version = expected + 1;
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => return Ok(d),
            Err(StoreError::Conflict { .. }) if attempt < 4 => continue,
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

/// Changes a directory's settings, asks for a full reconciliation (new fields, maps
/// and groups apply to every user), and updates its schedule.
pub async fn update_settings(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    change: &SettingsChange,
    actor: &str,
) -> Result<Directory, EngineError> {
    change.validate()?;
    let mut changed = Vec::new();
    let d = modify(engine, id, |d| {
        if d.state == DirectoryState::Revoked {
            return Err(EngineError::DirectoryNotActive {
                id: d.id.clone(),
                state: "revoked",
            });
        }
        changed = change.apply(d);
        if changed.is_empty() {
            return Ok(false);
        }
        d.cursors.full_requested = true;
        Ok(true)
    })
    .await?;
    if !changed.is_empty() {
        reconcile_directory_schedule(scheduler, &d).await?;
        audit(
            engine,
            id,
            AuditAction::SettingsChange,
            actor,
            json!({ "changed": changed }),
        )
        .await?;
    }
    Ok(d)
}

/// Pauses a directory: its schedule is disabled and webhooks answer 429.
pub async fn pause(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    actor: &str,
) -> Result<Directory, EngineError> {
    set_state(engine, scheduler, id, DirectoryState::Paused, actor).await
}

/// Resumes a paused directory.
pub async fn resume(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    actor: &str,
) -> Result<Directory, EngineError> {
    set_state(engine, scheduler, id, DirectoryState::Active, actor).await
}

async fn set_state(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    to: DirectoryState,
    actor: &str,
) -> Result<Directory, EngineError> {
    let d = modify(engine, id, |d| {
        let ok = match (d.state, to) {
            (DirectoryState::Active, DirectoryState::Paused) => true,
            (DirectoryState::Paused, DirectoryState::Active) => true,
            (from, _) if from == to => false,
            (DirectoryState::Revoked, _) => {
                return Err(EngineError::DirectoryNotActive {
                    id: d.id.clone(),
                    state: "revoked",
                })
            }
            (DirectoryState::Held, _) => {
                return Err(EngineError::DirectoryNotActive {
                    id: d.id.clone(),
                    state: "held (release or discard the hold first)",
                })
            }
            _ => false,
        };
        if ok {
            d.state = to;
        }
        Ok(ok)
    })
    .await?;
    reconcile_directory_schedule(scheduler, &d).await?;
    let action = if to == DirectoryState::Paused {
        AuditAction::Pause
    } else {
        AuditAction::Resume
    };
    audit(engine, id, action, actor, json!({ "state": d.state })).await?;
    Ok(d)
}

/// Revokes a directory: deletes its schedule and its credential secret and marks it
/// revoked (`deleted_at` = now). Users, runs, deliveries, evidence and the audit log
/// are kept for the stack's retention window, after which the poller's daily sweep
/// purges all but the audit log (`retention::purge_sweep`). Revoking again keeps the
/// first date, so a repeated revoke does not extend the window.
pub async fn revoke(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    actor: &str,
) -> Result<Directory, EngineError> {
    let now = engine.clock.now();
    let d = modify(engine, id, |d| {
        // A directory revoked before revocation dates existed gets one now, so its
        // history is kept a whole window from here.
        if d.state == DirectoryState::Revoked && d.deleted_at.is_some() {
            return Ok(false);
        }
        d.state = DirectoryState::Revoked;
        d.hold = None;
        d.deleted_at.get_or_insert(now);
        Ok(true)
    })
    .await?;
    reconcile_directory_schedule(scheduler, &d).await?;
    match engine.secrets.delete(&d.secret_name).await {
        Ok(()) | Err(ports::SecretsError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    audit(
        engine,
        id,
        AuditAction::Revoke,
        actor,
        json!({ "deletedAt": d.deleted_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()) }),
    )
    .await?;
    Ok(d)
}

/// A target's definition and, for kinds that have them, its credentials.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The target.
    pub target: Target,
    /// Its secrets (replaced when given).
    pub secrets: Option<TargetSecrets>,
}

fn check_target(spec: &TargetSpec) -> Result<(), EngineError> {
    let url_ok = |u: &str| u.starts_with("https://") || u.starts_with("http://");
    match &spec.target.kind {
        TargetKind::AppWebhook { url } | TargetKind::HttpUpsert { url, .. } if !url_ok(url) => {
            Err(invalid("target url", "must start with https:// or http://"))
        }
        TargetKind::Scim { base_url, .. } if !url_ok(base_url) => Err(invalid(
            "SCIM base url",
            "must start with https:// or http://",
        )),
        TargetKind::EventBridge { bus_arn } if !bus_arn.starts_with("arn:") => {
            Err(invalid("bus arn", "must be an EventBridge bus ARN"))
        }
        _ => {
            if let (TargetKind::AppWebhook { .. }, Some(s)) = (&spec.target.kind, &spec.secrets) {
                for secret in &s.signing_secrets {
                    crate::signing::WebhookSecret::parse(secret)
                        .map_err(|e| invalid("signing secret", e.to_string()))?;
                }
            }
            Ok(())
        }
    }
}

fn kind_name(kind: &TargetKind) -> &'static str {
    match kind {
        TargetKind::AppWebhook { .. } => "app_webhook",
        TargetKind::Scim { .. } => "scim",
        TargetKind::HttpUpsert { .. } => "http_upsert",
        TargetKind::EventBridge { .. } => "event_bridge",
    }
}

async fn put_target_secrets(
    engine: &Engine,
    directory: &Directory,
    target: &TargetId,
    secrets: Option<TargetSecrets>,
) -> Result<(), EngineError> {
    let mut all = match engine.secrets.get(&directory.secret_name).await {
        Ok(s) => s,
        Err(ports::SecretsError::NotFound { .. }) => DirectorySecrets::default(),
        Err(e) => return Err(e.into()),
    };
    match secrets {
        Some(s) => {
            all.targets.insert(target.to_string(), s);
        }
        None => {
            all.targets.remove(target.as_str());
        }
    }
    engine.secrets.put(&directory.secret_name, &all).await?;
    Ok(())
}

/// Adds a target (its id must be new in the directory).
pub async fn add_target(
    engine: &Engine,
    id: &DirectoryId,
    spec: TargetSpec,
    actor: &str,
) -> Result<Directory, EngineError> {
    check_target(&spec)?;
    let target_id = spec.target.id.clone();
    let current = directory(engine, id).await?;
    if current.targets.iter().any(|t| t.id == target_id) {
        return Err(invalid("target", format!("{target_id} exists already")));
    }
    // Secrets first: a target never exists without the credentials it needs.
    put_target_secrets(
        engine,
        &current,
        &target_id,
        Some(spec.secrets.clone().unwrap_or_default()),
    )
    .await?;
    let d = modify(engine, id, |d| {
        if d.targets.iter().any(|t| t.id == target_id) {
            return Err(invalid("target", format!("{target_id} exists already")));
        }
        d.targets.push(spec.target.clone());
        Ok(true)
    })
    .await?;
    audit(
        engine,
        id,
        AuditAction::TargetChange,
        actor,
        json!({"target": target_id, "change": "added", "kind": kind_name(&spec.target.kind)}),
    )
    .await?;
    Ok(d)
}

/// Replaces a target's definition (and its secrets when given).
pub async fn update_target(
    engine: &Engine,
    id: &DirectoryId,
    spec: TargetSpec,
    actor: &str,
) -> Result<Directory, EngineError> {
    check_target(&spec)?;
    let target_id = spec.target.id.clone();
    let current = directory(engine, id).await?;
    if !current.targets.iter().any(|t| t.id == target_id) {
        return Err(EngineError::TargetNotFound(target_id));
    }
    if let Some(s) = spec.secrets.clone() {
        put_target_secrets(engine, &current, &target_id, Some(s)).await?;
    }
    let d = modify(engine, id, |d| {
        let Some(t) = d.targets.iter_mut().find(|t| t.id == target_id) else {
            return Err(EngineError::TargetNotFound(target_id.clone()));
        };
        if *t == spec.target {
            return Ok(false);
        }
        *t = spec.target.clone();
        Ok(true)
    })
    .await?;
    audit(
        engine,
        id,
        AuditAction::TargetChange,
        actor,
        json!({"target": target_id, "change": "updated", "secretsReplaced": spec.secrets.is_some()}),
    )
    .await?;
    Ok(d)
}

/// Removes a target and its secrets. Its delivery log and ledger stay (history).
pub async fn remove_target(
    engine: &Engine,
    id: &DirectoryId,
    target_id: &TargetId,
    actor: &str,
) -> Result<Directory, EngineError> {
    let d = modify(engine, id, |d| {
        let before = d.targets.len();
        d.targets.retain(|t| &t.id != target_id);
        if d.targets.len() == before {
            return Err(EngineError::TargetNotFound(target_id.clone()));
        }
        Ok(true)
    })
    .await?;
    put_target_secrets(engine, &d, target_id, None).await?;
    audit(
        engine,
        id,
        AuditAction::TargetChange,
        actor,
        json!({"target": target_id, "change": "removed"}),
    )
    .await?;
    Ok(d)
}

/// What a target test found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetTest {
    /// Whether the target answered with a success.
    pub ok: bool,
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    /// What was tried and what came back, in a line.
    pub detail: String,
}

/// Tests a target without changing anything there: a signed `ping` for an app
/// webhook, `GET /Users?count=1` for SCIM, and a `HEAD` of the URL (without its
/// secret parameters) for an HTTP upsert. EventBridge targets cannot be probed without
/// publishing, so they are refused.
pub async fn test_target(
    engine: &Engine,
    id: &DirectoryId,
    target_id: &TargetId,
) -> Result<TargetTest, EngineError> {
    let d = directory(engine, id).await?;
    let target = d
        .targets
        .iter()
        .find(|t| &t.id == target_id)
        .ok_or_else(|| EngineError::TargetNotFound(target_id.clone()))?;
    let secrets = engine.secrets.get(&d.secret_name).await?;
    let ts = secrets
        .targets
        .get(target_id.as_str())
        .cloned()
        .unwrap_or_default();
    let now = engine.clock.now();
    let request = match &target.kind {
        TargetKind::AppWebhook { url } => {
            let keys = ts
                .signing_secrets
                .iter()
                .map(crate::signing::WebhookSecret::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("signing secret", e.to_string()))?;
            if keys.is_empty() {
                return Err(EngineError::MissingCredential {
                    id: id.clone(),
                    what: "signing secret for this target",
                });
            }
            let msg_id = format!("ping_{:016x}", rand::random::<u64>());
            let body = serde_json::to_vec(&json!({
                "schemaVersion": domain::EVENT_SCHEMA_VERSION,
                "id": msg_id,
                "type": "ping",
                "directoryId": id,
                "objectId": target_id,
                "version": 0,
                "occurredAt": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "data": {},
            }))
            .expect("a ping serializes");
            let ts_secs = now.unix_timestamp();
            let signature =
                crate::signing::standard_webhook_signature(&keys, &msg_id, ts_secs, &body);
            engine
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", msg_id)
                .header("webhook-timestamp", ts_secs.to_string())
                .header("webhook-signature", signature)
                .body(body)
        }
        TargetKind::Scim { base_url, .. } => {
            let token = ts
                .bearer_token
                .ok_or_else(|| EngineError::MissingCredential {
                    id: id.clone(),
                    what: "SCIM bearer token for this target",
                })?;
            engine
                .http
                .get(format!("{}/Users", base_url.trim_end_matches('/')))
                .query(&[("count", "1")])
                .header("accept", "application/scim+json")
                .bearer_auth(token.expose_secret())
        }
        TargetKind::HttpUpsert { url, .. } => engine.http.head(url),
        TargetKind::EventBridge { .. } => {
            return Err(invalid(
                "target test",
                "an EventBridge target cannot be tested without publishing an event",
            ))
        }
    };
    // One attempt with the engine client's timeout: a test reports, it does not retry.
    match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            Ok(TargetTest {
                ok: status.is_success(),
                status: Some(status.as_u16()),
                detail: format!("{} answered {}", kind_name(&target.kind), status),
            })
        }
        Err(e) => Ok(TargetTest {
            ok: false,
            status: None,
            detail: format!(
                "{} unreachable: {}",
                kind_name(&target.kind),
                if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                }
            ),
        }),
    }
}

/// Per-target delivery health.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    /// The target.
    pub target_id: String,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Records by delivery status.
    pub by_status: BTreeMap<String, u64>,
    /// Whether its circuit breaker is open now.
    pub breaker_open: bool,
    /// Retrying, failed or dead-lettered deliveries, or an open breaker.
    pub failing: bool,
}

/// A directory at a glance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The directory.
    pub directory_id: DirectoryId,
    /// Active, paused, held or revoked.
    pub state: DirectoryState,
    /// Last successful sync.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
    /// Whether it is stale now.
    pub stale: bool,
    /// The hold, while held.
    pub hold: Option<domain::Hold>,
    /// The newest run.
    pub last_run: Option<SyncRun>,
    /// Users by state.
    pub users: BTreeMap<String, u64>,
    /// Delivery health per target.
    pub targets: Vec<TargetHealth>,
    /// Messages in the delivery dead-letter queue (shared by every directory), when
    /// the caller could read it.
    pub dead_letter_depth: Option<u64>,
    /// Whether the newest evidence row is older than the stale threshold (or missing).
    pub evidence_stale: bool,
}

/// The status of a directory. `dead_letter_depth` comes from the caller (the queue is
/// not a port of this engine).
pub async fn status(
    engine: &Engine,
    id: &DirectoryId,
    dead_letter_depth: Option<u64>,
) -> Result<Status, EngineError> {
    let d = directory(engine, id).await?;
    let now = engine.clock.now();
    let last_run = engine.store.list_runs(id, 1).await?.into_iter().next();
    let mut users = BTreeMap::new();
    for u in engine.store.user_fingerprints(id).await? {
        *users.entry(u.state.as_str().to_string()).or_insert(0) += 1;
    }
    let log = engine
        .store
        .list_deliveries(id, &DeliveryQuery::default())
        .await?;
    let mut targets = Vec::new();
    for t in &d.targets {
        let mut h = TargetHealth {
            target_id: t.id.to_string(),
            enabled: t.enabled,
            ..TargetHealth::default()
        };
        for r in log.iter().filter(|r| r.target_id == t.id) {
            *h.by_status
                .entry(r.status.as_str().to_string())
                .or_insert(0) += 1;
        }
        let breaker = engine.store.get_breaker(id, &t.id).await?;
        h.breaker_open = breaker.open_until.is_some_and(|u| u > now);
        h.failing = h.breaker_open
            || ["retrying", "failed", "dead_lettered"]
                .iter()
                .any(|s| h.by_status.get(*s).is_some_and(|n| *n > 0));
        targets.push(h);
    }
    let newest = engine.store.list_evidence(id, 1).await?.into_iter().next();
    Ok(Status {
        directory_id: id.clone(),
        state: d.state,
        last_success: d.last_success,
        stale: d.is_stale(now),
        hold: d.hold.clone(),
        last_run,
        users,
        targets,
        dead_letter_depth,
        evidence_stale: evidence_is_stale(&d, newest.as_ref(), now),
    })
}

/// Evidence is stale when its newest row is older than the directory's stale
/// threshold, or when there is none. An identical snapshot is not stored again, so a
/// successful sync since the row (which found the same figures) keeps it current.
pub fn evidence_is_stale(d: &Directory, newest: Option<&EvidenceRow>, now: OffsetDateTime) -> bool {
    let Some(row) = newest else {
        return true;
    };
    let confirmed = match d.last_success {
        Some(s) if s > row.captured_at => s,
        _ => row.captured_at,
    };
    now - confirmed > Duration::minutes(i64::from(d.stale_threshold_minutes()))
}

/// Releases or discards a hold, audited.
pub async fn resolve_hold(
    engine: &Engine,
    id: &DirectoryId,
    decision: crate::run::HoldDecision,
    actor: &str,
) -> Result<Directory, EngineError> {
    let held = directory(engine, id).await?.hold;
    let d = crate::run::resolve_hold(engine, id, decision).await?;
    audit(
        engine,
        id,
        AuditAction::Release,
        actor,
        json!({
            "decision": match decision {
                crate::run::HoldDecision::Release => "release",
                crate::run::HoldDecision::Discard => "discard",
            },
            "heldRun": held.map(|h| h.run_id),
        }),
    )
    .await?;
    Ok(d)
}

/// Re-pushes a directory (or one employee) to a target, audited. Returns
/// `(user id, outcome)` names per user.
pub async fn repush(
    engine: &Engine,
    id: &DirectoryId,
    target: &TargetId,
    employee: Option<&EmployeeId>,
    actor: &str,
) -> Result<Vec<(String, String)>, EngineError> {
    let out = crate::replay::repush(engine, id, target, employee).await?;
    audit(
        engine,
        id,
        AuditAction::Replay,
        actor,
        json!({"target": target, "employee": employee, "users": out.len()}),
    )
    .await?;
    Ok(out
        .into_iter()
        .map(|(u, o)| (u, format!("{o:?}")))
        .collect())
}

/// Re-drives up to `max` dead letters onto the retry path, each with a fresh retry
/// schedule (it then re-reads the current state like any retry). Audited under every
/// directory whose dead letters moved, and under `audit_under` when given (so an
/// operator's redrive is on record even when it found nothing of that directory).
/// Returns how many were re-driven.
///
/// The same loop as [`crate::replay::redrive_dead_letters`], kept here because the
/// audit needs to know whose letters moved, which that function does not report.
pub async fn redrive(
    engine: &Engine,
    max: usize,
    audit_under: Option<&DirectoryId>,
    actor: &str,
) -> Result<usize, EngineError> {
    let Some(queue) = &engine.retry_queue else {
        return Err(EngineError::MissingCapability("a retry queue"));
    };
    let now = engine.clock.now();
    let mut by_directory: BTreeMap<DirectoryId, usize> = BTreeMap::new();
    let mut done = 0;
    while done < max {
        let letters = queue.receive_dead_letters(max - done).await?;
        if letters.is_empty() {
            break;
        }
        let mut receipts = Vec::with_capacity(letters.len());
        for received in letters {
            let task = ports::RetryTask {
                retries: 0,
                due_at: now,
                first_failed_at: now,
                ..received.letter.task
            };
            queue.schedule(&task, StdDuration::ZERO).await?;
            *by_directory
                .entry(task.event.directory_id.clone())
                .or_insert(0) += 1;
            receipts.push(received.receipt);
        }
        // Acknowledged only once re-queued: a crash in between re-drives twice, which
        // the ledger makes harmless.
        queue.ack_dead_letters(&receipts).await?;
        done += receipts.len();
    }
    if let Some(id) = audit_under {
        by_directory.entry(id.clone()).or_insert(0);
    }
    for (id, n) in &by_directory {
        audit(
            engine,
            id,
            AuditAction::Replay,
            actor,
            json!({"deadLetters": n, "redrivenInAll": done}),
        )
        .await?;
    }
    info!(
        count = done,
        directories = by_directory.len(),
        "dead letters re-driven"
    );
    Ok(done)
}

/// What [`request_sync`] arranged.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequested {
    /// The directory.
    pub directory_id: DirectoryId,
    /// `incremental` or `full`.
    pub mode: domain::SyncMode,
    /// When the poller runs it (a one-time schedule).
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    /// False when a run of the same directory and mode was already scheduled for that
    /// minute (the requests collapse into one run).
    pub created: bool,
}

/// How soon an operator's sync runs: one-time schedules must lie in the future, and a
/// run in the next minute is what "sync now" means to someone watching `status`.
pub const REQUESTED_SYNC_AFTER: Duration = Duration::seconds(30);

/// Asks the poller for a run of an active directory soon (a one-time schedule, so the
/// caller, e.g. the admin API with its short timeout, does not run the sync itself),
/// audited as `sync` with `requested` in its details. Only `incremental` and `full`
/// may be asked for; a paused, held or revoked directory is refused.
pub async fn request_sync(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    mode: domain::SyncMode,
    actor: &str,
) -> Result<SyncRequested, EngineError> {
    if mode == domain::SyncMode::Targeted {
        return Err(invalid(
            "mode",
            "only incremental or full runs can be requested",
        ));
    }
    let d = directory(engine, id).await?;
    let state = match d.state {
        DirectoryState::Active => None,
        DirectoryState::Paused => Some("paused (resume it first)"),
        DirectoryState::Held => Some("held (release or discard the hold first)"),
        DirectoryState::Revoked => Some("revoked"),
    };
    if let Some(state) = state {
        return Err(EngineError::DirectoryNotActive {
            id: id.clone(),
            state,
        });
    }
    let at = engine.clock.now() + REQUESTED_SYNC_AFTER;
    // Whole seconds: the scheduler's `at` has no finer resolution.
    let at = at.replace_nanosecond(0).unwrap_or(at);
    let outcome = scheduler
        .schedule_once(
            &domain::SyncRequest {
                directory_id: id.clone(),
                mode,
            },
            at,
        )
        .await?;
    let created = outcome == ports::OnceOutcome::Created;
    audit(
        engine,
        id,
        AuditAction::Sync,
        actor,
        json!({"requested": mode.as_str(), "scheduledAt": at.unix_timestamp(), "created": created}),
    )
    .await?;
    Ok(SyncRequested {
        directory_id: id.clone(),
        mode,
        scheduled_at: at,
        created,
    })
}

/// The evidence snapshot of a directory now (not stored). `projection` is the
/// directory's fingerprint projection when the caller already holds a current copy;
/// without it, it is read.
pub async fn evidence_snapshot(
    engine: &Engine,
    d: &Directory,
    run_id: &str,
    projection: Option<&[UserFingerprint]>,
) -> Result<EvidenceRow, EngineError> {
    let now = engine.clock.now();
    let today = crate::lifecycle::local_today(d, now);
    let month_ago = today - Duration::days(30);
    // The compact projection carries state and the hire and termination dates: no
    // user item is read, so this costs at most what a full sync's comparison costs.
    let read;
    let users: &[UserFingerprint] = match projection {
        Some(p) => p,
        None => {
            read = engine.store.user_fingerprints(&d.id).await?;
            &read
        }
    };
    let within = |date: Option<time::Date>| date.is_some_and(|x| x > month_ago && x <= today);
    let active: Vec<String> = users
        .iter()
        .filter(|u| u.state == UserState::Active)
        .map(|u| domain::UserId::derive(&d.id, &u.employee_id).to_string())
        .collect();
    let terminations = users
        .iter()
        .filter(|u| matches!(u.state, UserState::Inactive | UserState::Deleted))
        .filter(|u| within(u.lifecycle.termination_date))
        .count() as u64;
    let hires = users
        .iter()
        .filter(|u| u.state != UserState::Deleted && within(u.lifecycle.hire_date))
        .count() as u64;
    let delivered = engine
        .store
        .list_deliveries(
            &d.id,
            &DeliveryQuery {
                status: Some(DeliveryStatus::Delivered),
                ..DeliveryQuery::default()
            },
        )
        .await?;
    let mut target_share = BTreeMap::new();
    for t in &d.targets {
        let got: std::collections::HashSet<&str> = delivered
            .iter()
            .filter(|r| r.target_id == t.id)
            .map(|r| r.object_id.as_str())
            .collect();
        let got = active.iter().filter(|u| got.contains(u.as_str())).count();
        let share = if active.is_empty() {
            0.0
        } else {
            // Rounded, so the fingerprint does not move with float noise.
            ((got as f64 / active.len() as f64) * 10_000.0).round() / 10_000.0
        };
        target_share.insert(t.id.to_string(), share);
    }
    let active_headcount = active.len() as u64;
    let fingerprint = {
        let figures = json!({
            "activeHeadcount": active_headcount,
            "terminationsLast30Days": terminations,
            "newHiresLast30Days": hires,
            "targetShare": target_share,
        });
        hex::encode(Sha256::digest(figures.to_string().as_bytes()))
    };
    Ok(EvidenceRow {
        directory_id: d.id.clone(),
        captured_at: now,
        run_id: run_id.to_string(),
        active_headcount,
        terminations_last_30_days: terminations,
        new_hires_last_30_days: hires,
        target_share,
        fingerprint,
    })
}

/// What the sync run calls once it has ended: audits the run (sync, sync failure,
/// hold) and, after a completed full run or one that changed users (or while there
/// is no evidence yet), stores the evidence snapshot unless an identical one is
/// stored. `projection` is the run's still-current fingerprint projection, if it
/// holds one. Failures are logged, never fail the run (the run is already recorded).
pub async fn record_run(engine: &Engine, run: &SyncRun, projection: Option<&[UserFingerprint]>) {
    let id = &run.directory_id;
    let (action, details) = match run.status {
        RunStatus::Completed => (
            AuditAction::Sync,
            json!({"runId": run.id, "mode": run.mode, "counts": run.counts}),
        ),
        RunStatus::Failed => (
            AuditAction::SyncFailure,
            json!({"runId": run.id, "mode": run.mode, "errors": run.errors.len()}),
        ),
        RunStatus::Held => (AuditAction::Hold, json!({"runId": run.id})),
        _ => return,
    };
    if let Err(e) = audit(engine, id, action, POLLER_ACTOR, details).await {
        warn!(directory_id = %id, run_id = %run.id, reason = %e, "run not audited");
    }
    if run.status != RunStatus::Completed {
        return;
    }
    let c = &run.counts;
    let changed = c.created + c.updated + c.deactivated + c.deleted > 0;
    let stored = async {
        // The snapshot reads the fingerprint projection and the delivery log. An
        // incremental run that changed nobody would mostly find the figures of the
        // last snapshot, so it takes one only while none exists; full runs (daily)
        // and runs that changed users always do, which keeps the 30-day windows and
        // the delivery shares current without a read per half-hourly run.
        if run.mode != domain::SyncMode::Full
            && !changed
            && !engine.store.list_evidence(id, 1).await?.is_empty()
        {
            return Ok(false);
        }
        let d = directory(engine, id).await?;
        let row = evidence_snapshot(engine, &d, run.id.as_str(), projection).await?;
        Ok::<bool, EngineError>(engine.store.put_evidence(&row).await?)
    }
    .await;
    match stored {
        Ok(new) => info!(directory_id = %id, run_id = %run.id, new, "evidence recorded"),
        Err(e) => warn!(directory_id = %id, run_id = %run.id, reason = %e, "evidence not recorded"),
    }
}

/// The run's figures as one CloudWatch Embedded Metric Format document (the caller
/// writes it as one line to stdout, where Lambda's log capture turns it into metrics):
/// users by outcome, events published, BambooHR requests and throttles, the sync
/// duration and whether it failed, dimensioned by mode and status. The directory id
/// rides along as a property (searchable in Logs Insights, not a dimension, so
/// metric count does not grow with directories). No secret and no HR value is in it.
pub fn run_metrics_emf(namespace: &str, run: &SyncRun) -> serde_json::Value {
    let c = &run.counts;
    let finished = run.finished_at.unwrap_or(run.started_at);
    let duration_ms = (finished - run.started_at).whole_milliseconds().max(0);
    let counts: [(&str, u64); 10] = [
        ("UsersSeen", c.seen),
        ("UsersCreated", c.created),
        ("UsersUpdated", c.updated),
        ("UsersDeactivated", c.deactivated),
        ("UsersDeleted", c.deleted),
        ("UsersUnchanged", c.unchanged),
        ("UsersSkipped", c.skipped),
        ("EventsPublished", c.events_published),
        ("BambooHrRequests", c.bamboohr_requests),
        ("BambooHrThrottles", c.bamboohr_throttles),
    ];
    let mut metrics: Vec<crate::emf::Metric<'_>> = counts
        .iter()
        .map(|(name, value)| crate::emf::Metric::count(name, *value))
        .collect();
    metrics.push(crate::emf::Metric {
        name: "SyncDuration",
        unit: "Milliseconds",
        value: duration_ms,
    });
    metrics.push(crate::emf::Metric::count(
        "SyncFailed",
        u64::from(run.status == RunStatus::Failed),
    ));
    crate::emf::document(
        namespace,
        finished,
        &[&["Mode"], &["Mode", "Status"]],
        json!({
            "Mode": run.mode.as_str(),
            "Status": serde_json::to_value(run.status).expect("a status serializes"),
            "DirectoryId": run.directory_id,
            "RunId": run.id,
        }),
        &metrics,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{RunId, SyncMode};

    #[test]
    fn the_emf_document_names_every_metric_it_carries_and_no_user_data() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut run = SyncRun::start(
            RunId::new(at, 7),
            DirectoryId::parse("acme").unwrap(),
            SyncMode::Full,
            at,
        );
        run.status = RunStatus::Completed;
        run.finished_at = Some(at + Duration::milliseconds(1500));
        run.counts.seen = 10;
        run.counts.created = 2;
        run.counts.bamboohr_throttles = 1;
        run.skip("42", "no work email");

        let doc = run_metrics_emf("bamboohr-sync/test", &run);
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "bamboohr-sync/test");
        assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_001_500i64);
        let metrics = spec["Metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 12);
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} has a value");
        }
        for dims in spec["Dimensions"].as_array().unwrap() {
            for d in dims.as_array().unwrap() {
                assert!(doc[d.as_str().unwrap()].is_string(), "dimension {d} set");
            }
        }
        assert_eq!(doc["SyncDuration"], 1500);
        assert_eq!(doc["UsersCreated"], 2);
        assert_eq!(doc["BambooHrThrottles"], 1);
        assert_eq!(doc["SyncFailed"], 0);
        assert_eq!(doc["Mode"], "full");
        // Skipped records (employee ids and reasons) stay out of metrics.
        assert!(!doc.to_string().contains("no work email"));
    }
}
