//! Replays an operator asks for: re-pushing a directory (or one user) to a target,
//! and re-driving dead-lettered deliveries, audited.

use domain::{DirectoryId, EmployeeId, TargetId};
use ports::AuditAction;
use serde_json::json;

use super::audit;
use crate::deps::Engine;
use crate::error::EngineError;

/// Re-pushes a directory (or one employee) to a target, audited. Returns
/// `(user id, outcome)` names per user.
pub async fn repush(
    engine: &Engine,
    id: &DirectoryId,
    target: &TargetId,
    employee: Option<&EmployeeId>,
    actor: &str,
) -> Result<Vec<(String, String)>, EngineError> {
    let out = crate::deliver::replay::repush(engine, id, target, employee).await?;
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

/// Queues a re-push of a whole directory to a target on the retry path (see
/// [`crate::deliver::replay::queue_repush`]), audited. Returns how many users.
pub async fn queue_repush(
    engine: &Engine,
    id: &DirectoryId,
    target: &TargetId,
    actor: &str,
) -> Result<usize, EngineError> {
    let n = crate::deliver::replay::queue_repush(engine, id, target).await?;
    audit(
        engine,
        id,
        AuditAction::Replay,
        actor,
        json!({"target": target, "employee": null, "users": n, "queued": true}),
    )
    .await?;
    Ok(n)
}

/// Re-drives up to `max` dead letters onto the retry path, each with a fresh retry
/// schedule (it then re-reads the current state like any retry): only `directory`'s
/// when given, else every directory's. Audited under every directory whose dead letters
/// moved, and under `directory` when given (so an operator's redrive is on record even
/// when it found nothing). Returns how many were re-driven.
pub async fn redrive(
    engine: &Engine,
    max: usize,
    directory: Option<&DirectoryId>,
    actor: &str,
) -> Result<usize, EngineError> {
    let audit_under = directory;
    let mut by_directory =
        crate::deliver::replay::redrive_dead_letters(engine, max, directory).await?;
    let done: usize = by_directory.values().sum();
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
    Ok(done)
}
