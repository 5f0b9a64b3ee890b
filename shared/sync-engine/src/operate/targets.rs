//! Managing a directory's targets: add, update and remove them (definitions in the
//! directory record, credentials in its secret), and test one without changing
//! anything there. Definitions are checked before anything is written (URLs, secrets,
//! the fields a filter names); every change is audited with the definition before and
//! after (never a secret), and the registered webhook's monitored fields follow.

use domain::{
    Directory, DirectoryId, DirectoryUser, EmployeeId, Target, TargetId, TargetKind, UserState,
};
use ports::{AuditAction, DirectorySecrets, TargetSecrets};
use serde::Serialize;
use serde_json::json;

use super::{audit, directory, invalid, modify};
pub use crate::deliver::targets::TargetTest;
use crate::deps::Engine;
use crate::error::EngineError;
use crate::operate::webhook::{follow_changes, MonitorFields};

/// What adding, updating or removing a target did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsChanged {
    /// The directory as saved.
    pub directory: Directory,
    /// What happened to the registered webhook's monitored fields.
    pub monitor_fields: MonitorFields,
}

/// Checks the fields a filter names: each must be an attribute of the synced user
/// (`department`, `workEmail`, ...) or a custom attribute of the directory's custom
/// field map, and each must accept at least one value.
fn check_filter(d: &Directory, target: &Target) -> Result<(), EngineError> {
    let sample = DirectoryUser::new(
        d.id.clone(),
        EmployeeId::parse("1").expect("a valid id"),
        UserState::Active,
    );
    let attributes = serde_json::to_value(&sample).expect("a user serializes");
    for (field, accepted) in &target.filter.field_in {
        let known =
            attributes.get(field).is_some() || d.custom_field_map.values().any(|a| a == field);
        if !known {
            return Err(invalid(
                "filter",
                format!(
                    "{field:?} is neither a user attribute nor a custom attribute of {}'s custom field map",
                    d.id
                ),
            ));
        }
        if accepted.is_empty() {
            return Err(invalid(
                "filter",
                format!("{field:?} accepts no value: give at least one"),
            ));
        }
    }
    Ok(())
}

/// A target's definition and, for kinds that have them, its credentials.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The target.
    pub target: Target,
    /// Its secrets (replaced when given).
    pub secrets: Option<TargetSecrets>,
}

fn check_target(engine: &Engine, spec: &TargetSpec) -> Result<(), EngineError> {
    let url_ok = |what: &str, u: &str| {
        engine
            .outbound
            .check(u)
            .map(|_| ())
            .map_err(|refused| invalid(what, refused.to_string()))
    };
    match &spec.target.kind {
        TargetKind::AppWebhook { url, .. } | TargetKind::HttpUpsert { url, .. } => {
            url_ok("target url", url)?
        }
        TargetKind::Scim { base_url, .. } => url_ok("SCIM base url", base_url)?,
        TargetKind::EventBridge { bus_arn, .. } => {
            if !bus_arn.starts_with("arn:") || !bus_arn.contains(":event-bus/") {
                return Err(invalid("bus arn", "must be an EventBridge bus ARN"));
            }
        }
    }
    if let (TargetKind::AppWebhook { .. }, Some(s)) = (&spec.target.kind, &spec.secrets) {
        for secret in &s.signing_secrets {
            crate::signing::WebhookSecret::parse_new(secret)
                .map_err(|e| invalid("signing secret", e.to_string()))?;
        }
    }
    Ok(())
}

async fn put_target_secrets(
    engine: &Engine,
    directory: &Directory,
    target: &TargetId,
    secrets: Option<TargetSecrets>,
) -> Result<(), EngineError> {
    // Only the targets part is read and written, so a concurrent OAuth refresh (the
    // poller writes the BambooHR part) or webhook key change is never overwritten.
    let mut all = match engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Targets])
        .await
    {
        Ok(s) => s,
        Err(ports::SecretsError::NotFound { .. }) => DirectorySecrets::default(),
        Err(e) => return Err(e.into()),
    };
    match secrets {
        Some(s) => {
            let now = engine.clock.now().unix_timestamp();
            for k in &s.signing_secrets {
                all.key_added_at.entry(ports::key_id(k)).or_insert(now);
            }
            all.targets.insert(target.to_string(), s);
        }
        None => {
            all.targets.remove(target.as_str());
        }
    }
    all.forget_retired_keys();
    engine
        .secrets
        .put_parts(&directory.secret_name, &[ports::SecretPart::Targets], &all)
        .await?;
    Ok(())
}

/// Adds a target (its id must be new in the directory).
pub async fn add_target(
    engine: &Engine,
    id: &DirectoryId,
    spec: TargetSpec,
    actor: &str,
) -> Result<TargetsChanged, EngineError> {
    check_target(engine, &spec)?;
    let target_id = spec.target.id.clone();
    let current = directory(engine, id).await?;
    check_filter(&current, &spec.target)?;
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
        json!({"target": target_id, "change": "added",
               "kind": crate::deliver::targets::kind_name(&spec.target.kind),
               "before": null, "after": spec.target,
               "secretsReplaced": spec.secrets.is_some()}),
    )
    .await?;
    let monitor_fields = follow_changes(engine, &d, actor).await;
    Ok(TargetsChanged {
        directory: d,
        monitor_fields,
    })
}

/// Replaces a target's definition (and its secrets when given).
pub async fn update_target(
    engine: &Engine,
    id: &DirectoryId,
    spec: TargetSpec,
    actor: &str,
) -> Result<TargetsChanged, EngineError> {
    check_target(engine, &spec)?;
    let target_id = spec.target.id.clone();
    let current = directory(engine, id).await?;
    check_filter(&current, &spec.target)?;
    let Some(before) = current.target(&target_id).cloned() else {
        return Err(EngineError::TargetNotFound(target_id));
    };
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
        // A SCIM target whose rendering or admission may have changed is reconciled
        // at the poller's next run: changed accounts updated, newly admitted users
        // created, newly excluded ones deprovisioned.
        let scim_changed = match (&t.kind, &spec.target.kind) {
            (TargetKind::Scim { .. }, TargetKind::Scim { .. }) => {
                t.kind != spec.target.kind || t.filter != spec.target.filter
            }
            _ => false,
        };
        *t = spec.target.clone();
        if scim_changed {
            d.cursors.reconcile_requested.insert(target_id.to_string());
        }
        Ok(true)
    })
    .await?;
    if before == spec.target && spec.secrets.is_none() {
        // Nothing changed: nothing to audit, no webhook fields to follow.
        return Ok(TargetsChanged {
            directory: d,
            monitor_fields: MonitorFields::Unchanged,
        });
    }
    audit(
        engine,
        id,
        AuditAction::TargetChange,
        actor,
        json!({"target": target_id, "change": "updated",
               "before": before, "after": spec.target,
               "secretsReplaced": spec.secrets.is_some()}),
    )
    .await?;
    let monitor_fields = follow_changes(engine, &d, actor).await;
    Ok(TargetsChanged {
        directory: d,
        monitor_fields,
    })
}

/// Removes a target and its secrets. Its delivery log and ledger stay (history).
pub async fn remove_target(
    engine: &Engine,
    id: &DirectoryId,
    target_id: &TargetId,
    actor: &str,
) -> Result<TargetsChanged, EngineError> {
    let before = directory(engine, id)
        .await?
        .target(target_id)
        .cloned()
        .ok_or_else(|| EngineError::TargetNotFound(target_id.clone()))?;
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
        json!({"target": target_id, "change": "removed", "before": before, "after": null}),
    )
    .await?;
    let monitor_fields = follow_changes(engine, &d, actor).await;
    Ok(TargetsChanged {
        directory: d,
        monitor_fields,
    })
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
