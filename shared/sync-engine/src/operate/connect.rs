//! Connecting a directory: the credential is checked against BambooHR first, then
//! the secret, the directory record and its schedule are written, audited.

use bamboohr_client::Auth;
use domain::{AuthKind, Directory, DirectoryId, DirectoryState};
use ports::{AuditAction, DirectorySecrets, Scheduler};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::{audit, invalid};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::operate::schedule::reconcile_directory_schedule;
use crate::source::connect::validate_credentials;

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

fn auth_of(credential: &Credential) -> Auth {
    match credential {
        Credential::ApiKey(k) => Auth::ApiKey(k.clone()),
        // Validation needs a working access token; refreshing is the sync's business.
        Credential::OAuth(o) => Auth::Bearer(o.access_token.clone()),
    }
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
    if super::oauth_client::is_reserved(id) {
        return Err(invalid(
            "id",
            "_stack is reserved for the stack's own audit entries",
        ));
    }
    let mut directory = match engine.store.get_directory(id).await? {
        Some(d) => d,
        // The secret is named after the directory; the secret store adds the stack's
        // prefix (Secrets Manager) or keys its file by it (local).
        None => Directory::new(id.clone(), &request.subdomain, id.as_str())
            .map_err(|e| invalid("subdomain", e.to_string()))?,
    };
    let reauthenticated = directory.version > 0 && directory.state != DirectoryState::Revoked;
    let base_url_before = directory.bamboohr_base_url();
    let expected = (directory.version > 0).then_some(directory.version);
    if request.subdomain != directory.subdomain {
        let fresh = Directory::new(id.clone(), &request.subdomain, &directory.secret_name)
            .map_err(|e| invalid("subdomain", e.to_string()))?;
        directory.subdomain = fresh.subdomain;
    }
    if let Some(url) = &request.base_url {
        // The credential is sent there: the same rules as any outbound call.
        engine
            .outbound
            .check(url)
            .map_err(|refused| invalid("base url", refused.to_string()))?;
    }
    directory.base_url = request.base_url.clone();
    if let Some(tz) = &request.time_zone {
        if domain::TimeZone::parse(tz).is_err() {
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
        engine.outbound.block_private,
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
            // Where the credential is sent: an operator reviewing the log sees a
            // changed destination.
            "baseUrl": {
                "before": reauthenticated.then_some(&base_url_before),
                "after": directory.bamboohr_base_url(),
            },
            "webhookRequested": request.register_webhook_at.is_some(),
        }),
    )
    .await?;
    if !reauthenticated {
        // `directory.connected` (WorkOS-format targets: `dsync.activated`), through
        // the outbox like every change; versioned by the connection instant so a
        // reconnection is its own event.
        let event = domain::ChangeEvent::new(
            domain::EventType::DirectoryConnected,
            id.clone(),
            id.as_str(),
            u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            now,
            json!({ "subdomain": directory.subdomain, "state": directory.state }),
        );
        engine.store.append_events(id, &[event]).await?;
        crate::reconcile::outbox::flush(engine, id).await?;
    }
    let webhook = match &request.register_webhook_at {
        Some(url) => Some(crate::operate::webhook::register_webhook(engine, id, url, actor).await?),
        None => None,
    };
    let webhook_id = webhook.as_ref().map(|w| w.webhook.id.clone());
    if let Some(w) = webhook {
        directory.webhook = Some(w.webhook);
        directory.version += 1;
    }
    Ok(ConnectOutcome {
        directory,
        reauthenticated,
        webhook_id,
        employees,
    })
}
