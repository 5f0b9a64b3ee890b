//! Runs as operations see them: asking the poller for a run soon, and running one
//! with its record (the audit entry and, for a completed run, the evidence snapshot).

use domain::{DirectoryId, DirectoryState, RunStatus, SyncRun};
use ports::{AuditAction, Scheduler, UserFingerprint};
use serde::Serialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use super::evidence::evidence_snapshot;
use super::{audit, directory, invalid, POLLER_ACTOR};
use crate::deps::Engine;
use crate::error::EngineError;

/// What [`request_sync`] arranged.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
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

/// Runs one sync of a directory (see [`crate::reconcile::run::sync_directory`]) and
/// records it: the audit entry and, for a completed run, the evidence snapshot. A run
/// that fails is returned as `Ok` with status `failed`; `Err` means it could not even
/// be stored.
pub async fn run_sync(
    engine: &Engine,
    request: &domain::SyncRequest,
    options: &crate::reconcile::run::RunOptions,
) -> Result<SyncRun, EngineError> {
    let finished = crate::reconcile::run::sync_directory(engine, request, options).await?;
    record_run(engine, &finished.run, finished.projection.as_deref()).await;
    Ok(finished.run)
}
