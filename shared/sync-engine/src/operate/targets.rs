//! Managing a directory's targets: add, update and remove them (definitions in the
//! directory record, credentials in its secret), and test one without changing
//! anything there.

use domain::{Directory, DirectoryId, Target, TargetId, TargetKind};
use ports::{AuditAction, DirectorySecrets, TargetSecrets};
use serde_json::json;

use super::{audit, directory, invalid, modify};
pub use crate::deliver::targets::TargetTest;
use crate::deps::Engine;
use crate::error::EngineError;

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
        json!({"target": target_id, "change": "added", "kind": crate::deliver::targets::kind_name(&spec.target.kind)}),
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

/// Tests a target without changing anything there, with its kind's probe (see
/// [`crate::deliver::targets::probe`]). A target that cannot be probed as configured
/// (no usable credential, or an EventBridge bus) is refused.
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
    use crate::deliver::targets::ProbeRefused;
    crate::deliver::targets::probe(engine, id, target, &ts)
        .await
        .map_err(|refused| match refused {
            ProbeRefused::Missing(what) => EngineError::MissingCredential {
                id: id.clone(),
                what,
            },
            ProbeRefused::BadSecret(reason) => invalid("signing secret", reason),
            ProbeRefused::NoProbe(reason) => invalid("target test", reason),
        })
}
