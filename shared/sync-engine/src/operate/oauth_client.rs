//! The stack's BambooHR OAuth client: the developer application (client id and secret)
//! an operator registered with BambooHR, with which the setup page offers "Connect with
//! BambooHR" (the authorization-code flow) beside the API-key form. Stack-wide, not a
//! directory's: kept as a secret of its own under [`SECRET_NAME`] (a name no directory
//! id can take, as it has a `.`), in the BambooHR part, so the roles that read
//! directories' BambooHR credentials (the page exchanges the code) read it and no
//! other. Setting and removing it are audited (`oauth_client_change`, naming the
//! client id, never the secret) under the reserved scope [`AUDIT_SCOPE`].

use domain::DirectoryId;
use ports::{AuditAction, DirectorySecrets, OAuthTokens, SecretPart, SecretsError};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;

use super::{audit, invalid};
use crate::deps::Engine;
use crate::error::EngineError;

/// The secret holding the stack's OAuth client.
pub const SECRET_NAME: &str = "stack.bamboohr-oauth-client";

/// The audit scope of stack-wide changes: read as
/// `GET /admin/directories/_stack/audit`; no directory may take this id.
pub const AUDIT_SCOPE: &str = "_stack";

/// The stack's OAuth client, as the page uses it.
#[derive(Clone)]
pub struct OAuthClient {
    /// The application's client id (public: it is in the authorize URL).
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What an operator sees of it: whether one is set and its client id, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientView {
    /// Whether the setup page offers "Connect with BambooHR".
    pub configured: bool,
    /// The client id, when configured.
    pub client_id: Option<String>,
}

impl OAuthClientView {
    fn of(client: Option<&OAuthClient>) -> Self {
        Self {
            configured: client.is_some(),
            client_id: client.map(|c| c.client_id.clone()),
        }
    }
}

/// The reserved audit scope as a directory id.
pub fn audit_scope() -> DirectoryId {
    DirectoryId::parse(AUDIT_SCOPE).expect("the reserved scope is a valid id")
}

/// Whether `id` is the reserved scope (no directory may be created under it).
pub fn is_reserved(id: &DirectoryId) -> bool {
    id.as_str() == AUDIT_SCOPE
}

/// The stack's OAuth client, or `None` when none is set.
pub async fn oauth_client(engine: &Engine) -> Result<Option<OAuthClient>, EngineError> {
    let secrets = match engine
        .secrets
        .get_parts(SECRET_NAME, &[SecretPart::Bamboohr])
        .await
    {
        Ok(s) => s,
        Err(SecretsError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(secrets.oauth.and_then(|o| {
        Some(OAuthClient {
            client_id: o.client_id.filter(|id| !id.is_empty())?,
            client_secret: o.client_secret?,
        })
    }))
}

/// What the operator sees of the stack's OAuth client.
pub async fn oauth_client_view(engine: &Engine) -> Result<OAuthClientView, EngineError> {
    Ok(OAuthClientView::of(oauth_client(engine).await?.as_ref()))
}

fn check_client_id(id: &str) -> Result<(), EngineError> {
    if id.is_empty() || id.len() > 256 || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "clientId",
            "give the client id BambooHR issued (1 to 256 visible characters, no spaces)",
        ));
    }
    Ok(())
}

fn check_client_secret(secret: &SecretString) -> Result<(), EngineError> {
    let s = secret.expose_secret();
    if s.len() < 8 || s.len() > 1024 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "clientSecret",
            "give the client secret BambooHR issued (8 to 1024 visible characters, no spaces)",
        ));
    }
    Ok(())
}

/// Sets (or replaces) the stack's OAuth client, audited with the client id before and
/// after (never the secret).
pub async fn set_oauth_client(
    engine: &Engine,
    client_id: &str,
    client_secret: SecretString,
    actor: &str,
) -> Result<OAuthClientView, EngineError> {
    let client_id = client_id.trim();
    check_client_id(client_id)?;
    check_client_secret(&client_secret)?;
    let before = oauth_client_view(engine).await?;
    // An OAuth token record holds the pair: the part's shape, with no token of its own.
    let secrets = DirectorySecrets {
        oauth: Some(OAuthTokens {
            access_token: SecretString::from(String::new()),
            refresh_token: None,
            expires_at: None,
            client_id: Some(client_id.to_string()),
            client_secret: Some(client_secret.clone()),
        }),
        ..DirectorySecrets::default()
    };
    engine
        .secrets
        .put_parts(SECRET_NAME, &[SecretPart::Bamboohr], &secrets)
        .await?;
    let after = OAuthClientView::of(Some(&OAuthClient {
        client_id: client_id.to_string(),
        client_secret,
    }));
    audit(
        engine,
        &audit_scope(),
        AuditAction::OauthClientChange,
        actor,
        json!({"event": "set", "before": before, "after": after, "secretChanged": true}),
    )
    .await?;
    tracing::info!(client_id = %client_id, "BambooHR OAuth client set");
    Ok(after)
}

/// Removes the stack's OAuth client: the page stops offering "Connect with BambooHR".
/// Directories already connected with OAuth keep their tokens. Audited; removing when
/// none is set changes nothing and writes no entry.
pub async fn remove_oauth_client(
    engine: &Engine,
    actor: &str,
) -> Result<OAuthClientView, EngineError> {
    let before = oauth_client_view(engine).await?;
    if !before.configured {
        return Ok(before);
    }
    engine.secrets.delete(SECRET_NAME).await?;
    let after = OAuthClientView::of(None);
    audit(
        engine,
        &audit_scope(),
        AuditAction::OauthClientChange,
        actor,
        json!({"event": "removed", "before": before, "after": after}),
    )
    .await?;
    Ok(after)
}
