//! Key lists, shown only as ids and ages ([`ports::KeyInfo`]): the BambooHR webhook
//! keys a directory accepts (a registration adds the newest of two, a key of a webhook
//! an admin made by hand in BambooHR can be imported, old keys are retired), and an app
//! webhook target's signing secrets (add a new one, both sign during the overlap, retire
//! the old one once receivers have switched). Every change is audited with key ids.
//! Each change writes only the part of the directory's secrets its list lives in
//! (webhook keys: [`SecretPart::Webhook`], signing secrets: [`SecretPart::Targets`]),
//! so a concurrent OAuth refresh by the poller is never overwritten.

use domain::{Directory, DirectoryId, TargetId, TargetKind};
use ports::{key_id, AuditAction, DirectorySecrets, KeyInfo, SecretPart};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{audit, directory, invalid};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::source::connect::ACTIVE_KEYS;
pub use crate::source::connect::MIN_WEBHOOK_KEY_CHARS;

/// Most signing secrets a target holds at once: the current one and its successor.
pub const MAX_SIGNING_SECRETS: usize = 2;

async fn secrets_of(engine: &Engine, d: &Directory) -> Result<DirectorySecrets, EngineError> {
    match engine.secrets.get(&d.secret_name).await {
        Ok(s) => Ok(s),
        Err(ports::SecretsError::NotFound { .. }) => Ok(DirectorySecrets::default()),
        Err(e) => Err(e.into()),
    }
}

/// Saves the changed part of the directory's secret, then audits the key list's
/// change (`details`, plus the ids now active) and answers the list's keys.
async fn save_and_audit(
    engine: &Engine,
    d: &Directory,
    part: SecretPart,
    s: &DirectorySecrets,
    keys: &[SecretString],
    actor: &str,
    mut details: serde_json::Value,
) -> Result<Vec<KeyInfo>, EngineError> {
    engine.secrets.put_parts(&d.secret_name, &[part], s).await?;
    let infos = s.key_infos(keys);
    details["active"] = json!(infos.iter().map(|k| &k.id).collect::<Vec<_>>());
    audit(engine, &d.id, AuditAction::KeyChange, actor, details).await?;
    Ok(infos)
}

fn live(d: &Directory) -> Result<(), EngineError> {
    if d.state == domain::DirectoryState::Revoked {
        return Err(EngineError::DirectoryNotActive {
            id: d.id.clone(),
            state: "revoked",
        });
    }
    Ok(())
}

/// The webhook keys the directory accepts, newest first.
pub async fn webhook_keys(engine: &Engine, id: &DirectoryId) -> Result<Vec<KeyInfo>, EngineError> {
    let d = directory(engine, id).await?;
    let s = secrets_of(engine, &d).await?;
    Ok(s.key_infos(&s.webhook_keys))
}

/// Adds the private key of a webhook an admin created in BambooHR as the newest
/// accepted key; the oldest beyond [`ACTIVE_KEYS`] is retired.
pub async fn import_webhook_key(
    engine: &Engine,
    id: &DirectoryId,
    key: SecretString,
    actor: &str,
) -> Result<Vec<KeyInfo>, EngineError> {
    let d = directory(engine, id).await?;
    live(&d)?;
    let trimmed = key.expose_secret().trim();
    if trimmed.chars().count() < MIN_WEBHOOK_KEY_CHARS {
        return Err(invalid(
            "webhook key",
            format!("must be at least {MIN_WEBHOOK_KEY_CHARS} characters (BambooHR's private key)"),
        ));
    }
    let key = SecretString::from(trimmed.to_string());
    let added = key_id(&key);
    let mut s = secrets_of(engine, &d).await?;
    if s.webhook_keys.iter().any(|k| key_id(k) == added) {
        return Err(invalid("webhook key", format!("{added} is active already")));
    }
    s.key_added_at
        .insert(added.clone(), engine.clock.now().unix_timestamp());
    s.webhook_keys.insert(0, key);
    let retired: Vec<String> = s
        .webhook_keys
        .iter()
        .skip(ACTIVE_KEYS)
        .map(key_id)
        .collect();
    s.webhook_keys.truncate(ACTIVE_KEYS);
    s.forget_retired_keys();
    save_and_audit(
        engine,
        &d,
        SecretPart::Webhook,
        &s,
        &s.webhook_keys,
        actor,
        json!({"list": "webhookKeys", "added": added, "retired": retired}),
    )
    .await
}

/// Stops accepting one webhook key.
pub async fn retire_webhook_key(
    engine: &Engine,
    id: &DirectoryId,
    key: &str,
    actor: &str,
) -> Result<Vec<KeyInfo>, EngineError> {
    let d = directory(engine, id).await?;
    let mut s = secrets_of(engine, &d).await?;
    let before = s.webhook_keys.len();
    s.webhook_keys.retain(|k| key_id(k) != key);
    if s.webhook_keys.len() == before {
        return Err(EngineError::InvalidInput {
            what: "webhook key".into(),
            reason: format!("{key} is not one of {id}'s webhook keys"),
        });
    }
    s.forget_retired_keys();
    save_and_audit(
        engine,
        &d,
        SecretPart::Webhook,
        &s,
        &s.webhook_keys,
        actor,
        json!({"list": "webhookKeys", "retired": [key]}),
    )
    .await
}

fn app_webhook(d: &Directory, target: &TargetId) -> Result<(), EngineError> {
    let t = d
        .target(target)
        .ok_or_else(|| EngineError::TargetNotFound(target.clone()))?;
    match t.kind {
        TargetKind::AppWebhook { .. } => Ok(()),
        _ => Err(invalid(
            "signing secrets",
            format!("{target} is not an app webhook: its credential is replaced with the target"),
        )),
    }
}

/// A target's signing secrets, newest first (the newest signs; every one listed is
/// sent in `webhook-signature`, so receivers verify with either during an overlap).
pub async fn signing_secrets(
    engine: &Engine,
    id: &DirectoryId,
    target: &TargetId,
) -> Result<Vec<KeyInfo>, EngineError> {
    let d = directory(engine, id).await?;
    app_webhook(&d, target)?;
    let s = secrets_of(engine, &d).await?;
    let list = s
        .targets
        .get(target.as_str())
        .map(|t| t.signing_secrets.clone())
        .unwrap_or_default();
    Ok(s.key_infos(&list))
}

/// Adds a signing secret as the newest (the overlap window starts: both sign).
pub async fn add_signing_secret(
    engine: &Engine,
    id: &DirectoryId,
    target: &TargetId,
    secret: SecretString,
    actor: &str,
) -> Result<Vec<KeyInfo>, EngineError> {
    let d = directory(engine, id).await?;
    live(&d)?;
    app_webhook(&d, target)?;
    crate::signing::WebhookSecret::parse_new(&secret)
        .map_err(|e| invalid("signing secret", e.to_string()))?;
    let added = key_id(&secret);
    let mut s = secrets_of(engine, &d).await?;
    let list = &mut s
        .targets
        .entry(target.to_string())
        .or_default()
        .signing_secrets;
    if list.iter().any(|k| key_id(k) == added) {
        return Err(invalid(
            "signing secret",
            format!("{added} is active already"),
        ));
    }
    if list.len() >= MAX_SIGNING_SECRETS {
        return Err(invalid(
            "signing secret",
            format!(
                "{target} has {MAX_SIGNING_SECRETS} signing secrets already: retire the old one first"
            ),
        ));
    }
    list.insert(0, secret);
    let list = list.clone();
    s.key_added_at
        .insert(added.clone(), engine.clock.now().unix_timestamp());
    save_and_audit(
        engine,
        &d,
        SecretPart::Targets,
        &s,
        &list,
        actor,
        json!({"list": "signingSecrets", "target": target, "added": added}),
    )
    .await
}

/// Retires a signing secret; the last one cannot be retired (the target would send
/// unsigned deliveries).
pub async fn retire_signing_secret(
    engine: &Engine,
    id: &DirectoryId,
    target: &TargetId,
    key: &str,
    actor: &str,
) -> Result<Vec<KeyInfo>, EngineError> {
    let d = directory(engine, id).await?;
    app_webhook(&d, target)?;
    let mut s = secrets_of(engine, &d).await?;
    let list = &mut s
        .targets
        .entry(target.to_string())
        .or_default()
        .signing_secrets;
    if !list.iter().any(|k| key_id(k) == key) {
        return Err(invalid(
            "signing secret",
            format!("{key} is not one of {target}'s signing secrets"),
        ));
    }
    if list.len() == 1 {
        return Err(invalid(
            "signing secret",
            format!("{key} is {target}'s only signing secret: add its successor first"),
        ));
    }
    list.retain(|k| key_id(k) != key);
    let list = list.clone();
    s.forget_retired_keys();
    save_and_audit(
        engine,
        &d,
        SecretPart::Targets,
        &s,
        &list,
        actor,
        json!({"list": "signingSecrets", "target": target, "retired": [key]}),
    )
    .await
}
