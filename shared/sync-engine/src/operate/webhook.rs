//! The directory's BambooHR webhook as an operator manages it: registering one (at the
//! stack's own URL unless told otherwise, monitoring every field the sync uses), and
//! keeping its monitored fields in step when settings or targets change.

use domain::{Directory, DirectoryId, RegisteredWebhook};
use ports::AuditAction;
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use super::{audit, directory, invalid};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::source::connect::{refresh_monitor_fields, register_event_webhook};

/// What a registration did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRegistration {
    /// The webhook as registered.
    pub webhook: RegisteredWebhook,
    /// The id of its private key, now the newest accepted webhook key.
    pub key_id: String,
    /// The webhook this one replaces in the directory record, if any (it stays at
    /// BambooHR until removed there; its key stays accepted until retired).
    pub replaced: Option<RegisteredWebhook>,
}

/// Registers an event-based BambooHR webhook posting to `url`, audited.
pub async fn register_webhook(
    engine: &Engine,
    id: &DirectoryId,
    url: &str,
    actor: &str,
) -> Result<WebhookRegistration, EngineError> {
    let before = directory(engine, id).await?;
    if before.state == domain::DirectoryState::Revoked {
        return Err(EngineError::DirectoryNotActive {
            id: id.clone(),
            state: "revoked",
        });
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(invalid(
            "webhook url",
            "must start with https:// (or http:// on loopback)",
        ));
    }
    let webhook = register_event_webhook(engine, id, url).await?;
    let secrets = engine.secrets.get(&before.secret_name).await?;
    let key_id = secrets
        .webhook_keys
        .first()
        .map(ports::key_id)
        .unwrap_or_default();
    audit(
        engine,
        id,
        AuditAction::WebhookChange,
        actor,
        json!({
            "webhookId": webhook.id,
            "url": {"before": before.webhook.as_ref().map(|w| &w.url), "after": &webhook.url},
            "monitorFields": webhook.monitor_fields,
            "keyId": key_id,
        }),
    )
    .await?;
    Ok(WebhookRegistration {
        webhook,
        key_id,
        replaced: before.webhook,
    })
}

/// After a settings or target change: brings the registered webhook's monitored
/// fields in step and audits a change. The change itself is already saved, so a
/// BambooHR failure here is reported (`Err` text for the caller's answer), not fatal.
pub async fn follow_changes(engine: &Engine, d: &Directory, actor: &str) -> MonitorFields {
    let before = d.webhook.as_ref().map(|w| w.monitor_fields.clone());
    match refresh_monitor_fields(engine, d).await {
        Ok(None) => MonitorFields::Unchanged,
        Ok(Some(after)) => {
            let entry = audit(
                engine,
                &d.id,
                AuditAction::WebhookChange,
                actor,
                json!({"webhookId": d.webhook.as_ref().map(|w| &w.id),
                       "monitorFields": {"before": before, "after": after}}),
            )
            .await;
            if let Err(e) = entry {
                warn!(directory_id = %d.id, reason = %e, "webhook change not audited");
            }
            MonitorFields::Updated(after)
        }
        Err(e) => {
            warn!(directory_id = %d.id, reason = %e, "webhook monitor fields not updated");
            MonitorFields::Failed(e.to_string())
        }
    }
}

/// What [`follow_changes`] did to the registered webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result", content = "detail")]
pub enum MonitorFields {
    /// No webhook, or its fields were already right.
    Unchanged,
    /// The webhook now monitors these fields.
    Updated(Vec<String>),
    /// BambooHR refused or failed; the next change or registration tries again.
    Failed(String),
}
