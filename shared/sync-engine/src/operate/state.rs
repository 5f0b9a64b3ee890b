//! A directory's state as an operator changes it: pause, resume and revoke, each
//! audited and each keeping the directory's schedule in step.

use domain::{Directory, DirectoryId, DirectoryState};
use ports::{AuditAction, Scheduler};
use serde_json::json;

use super::{audit, modify};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::operate::schedule::reconcile_directory_schedule;

/// Pauses a directory: its schedule is disabled and webhooks answer 503 (BambooHR retries them after the pause).
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

/// Delivers `directory.revoked` (WorkOS-format targets: `dsync.deleted`) to the
/// directory's targets now, in the request, while their signing secrets still exist:
/// the revoke deletes them next. One attempt per target; a failure is logged and
/// recorded in the delivery log, and never stops the revoke.
async fn announce_revocation(engine: &Engine, d: &Directory) {
    if !d.targets.iter().any(|t| t.enabled) {
        return;
    }
    let now = engine.clock.now();
    let event = domain::ChangeEvent::new(
        domain::EventType::DirectoryRevoked,
        d.id.clone(),
        d.id.as_str(),
        u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
        now,
        json!({ "subdomain": d.subdomain, "state": d.state }),
    );
    if let Err(e) = crate::deliver::dispatch::dispatch(engine, &event).await {
        tracing::warn!(directory_id = %d.id, error = %e, "directory.revoked was not delivered");
    }
}

/// Revokes a directory: deletes its schedule and its credential secret and marks it
/// revoked (`deleted_at` = now). Users, runs, deliveries, evidence and the audit log
/// are kept for the stack's retention window, after which the poller's daily sweep
/// purges all but the audit log (`retention::purge_sweep`). Revoking again keeps the
/// first date, so a repeated revoke does not extend the window. Before the secret
/// goes, the targets are sent `directory.revoked` (see [`announce_revocation`]).
pub async fn revoke(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    actor: &str,
) -> Result<Directory, EngineError> {
    let now = engine.clock.now();
    let mut newly_revoked = false;
    let d = modify(engine, id, |d| {
        // A directory revoked before revocation dates existed gets one now, so its
        // history is kept a whole window from here.
        if d.state == DirectoryState::Revoked && d.deleted_at.is_some() {
            return Ok(false);
        }
        newly_revoked = d.state != DirectoryState::Revoked;
        d.state = DirectoryState::Revoked;
        d.hold = None;
        d.deleted_at.get_or_insert(now);
        Ok(true)
    })
    .await?;
    reconcile_directory_schedule(scheduler, &d).await?;
    if newly_revoked {
        announce_revocation(engine, &d).await;
    }
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
