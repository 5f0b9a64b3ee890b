//! Target reconciliations as an operator and the poller run them: a SCIM target's
//! accounts are read back and drift repaired (see
//! [`crate::deliver::targets::scim::reconcile`]) on the target's schedule
//! (`ScimConfig::reconcile_every_hours`, daily by default), on demand, and after a
//! change of its settings (owned attributes, filters, username source, match order),
//! as JumpCloud runs a full sync after a settings change. Asking records the wish on
//! the directory and asks the poller for a run; the poller reconciles what is due
//! after each run, so the work happens in the poller's 15 minutes, never inside an
//! admin request. Every reconciliation is audited with its counts.

use domain::{Directory, DirectoryId, TargetId, TargetKind};
use ports::{AuditAction, Scheduler};
use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use super::{audit, directory, invalid, modify, POLLER_ACTOR};
use crate::deliver::targets::scim::reconcile::{reconcile_target, ReconcileReport};
use crate::deps::Engine;
use crate::error::EngineError;

/// What asking for a reconciliation did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequested {
    /// The directory.
    pub directory_id: DirectoryId,
    /// The target.
    pub target_id: TargetId,
    /// The poller run that will reconcile it.
    pub run: super::SyncRequested,
}

fn scim_target<'d>(d: &'d Directory, target: &TargetId) -> Result<&'d domain::Target, EngineError> {
    let t = d
        .target(target)
        .ok_or_else(|| EngineError::TargetNotFound(target.clone()))?;
    if !matches!(t.kind, TargetKind::Scim { .. }) {
        return Err(invalid(
            "target",
            format!("{target} is not a SCIM target: only SCIM targets are reconciled"),
        ));
    }
    Ok(t)
}

/// Asks for a reconciliation of a SCIM target: recorded on the directory, run by the
/// poller after the run this asks for. Audited.
pub async fn request_reconcile(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    target: &TargetId,
    actor: &str,
) -> Result<ReconcileRequested, EngineError> {
    scim_target(&directory(engine, id).await?, target)?;
    modify(engine, id, |d| {
        Ok(d.cursors.reconcile_requested.insert(target.to_string()))
    })
    .await?;
    let run =
        super::request_sync(engine, scheduler, id, domain::SyncMode::Incremental, actor).await?;
    audit(
        engine,
        id,
        AuditAction::TargetChange,
        actor,
        json!({"target": target, "change": "reconcile_requested"}),
    )
    .await?;
    Ok(ReconcileRequested {
        directory_id: id.clone(),
        target_id: target.clone(),
        run,
    })
}

/// The SCIM targets of `d` whose reconciliation is due at `now` (asked for, or its
/// interval passed since the last one, or never run), enabled ones only.
pub fn due_targets(d: &Directory, now: time::OffsetDateTime) -> Vec<TargetId> {
    d.targets
        .iter()
        .filter(|t| t.enabled)
        .filter_map(|t| match &t.kind {
            TargetKind::Scim { scim, .. } => {
                let requested = d.cursors.reconcile_requested.contains(t.id.as_str());
                let every = i64::from(scim.reconcile_every_hours) * 3600;
                let last = d.cursors.targets_reconciled_at.get(t.id.as_str()).copied();
                let due = every > 0 && last.is_none_or(|at| now.unix_timestamp() - at >= every);
                (requested || due).then(|| t.id.clone())
            }
            _ => None,
        })
        .collect()
}

/// Reconciles every due SCIM target of a directory (the poller calls it after a
/// run); each is recorded and audited with its counts. A failing one is reported and
/// tried again at the next run.
pub async fn reconcile_due(
    engine: &Engine,
    id: &DirectoryId,
) -> Result<Vec<(TargetId, Result<ReconcileReport, String>)>, EngineError> {
    let d = directory(engine, id).await?;
    if d.state != domain::DirectoryState::Active {
        return Ok(Vec::new());
    }
    let now = engine.clock.now();
    let mut out = Vec::new();
    for target in due_targets(&d, now) {
        let result = reconcile_target(engine, id, &target).await;
        let finished = engine.clock.now().unix_timestamp();
        match &result {
            Ok(report) => {
                modify(engine, id, |d| {
                    d.cursors.reconcile_requested.remove(target.as_str());
                    d.cursors
                        .targets_reconciled_at
                        .insert(target.to_string(), finished);
                    Ok(true)
                })
                .await?;
                audit(
                    engine,
                    id,
                    AuditAction::TargetChange,
                    POLLER_ACTOR,
                    json!({"target": target, "change": "reconciled",
                           "accountsRead": report.accounts_read, "unchanged": report.unchanged,
                           "created": report.created, "recreated": report.recreated,
                           "reactivated": report.reactivated, "updated": report.updated,
                           "deprovisioned": report.deprovisioned, "failed": report.failed}),
                )
                .await?;
                info!(directory_id = %id, target_id = %target, repairs = report.repairs_attempted(),
                      failed = report.failed, "target reconciled");
            }
            Err(e) => {
                warn!(directory_id = %id, target_id = %target, reason = %e, "target reconciliation failed");
            }
        }
        out.push((target, result.map_err(|e| e.to_string())));
    }
    Ok(out)
}
