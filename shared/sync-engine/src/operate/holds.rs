//! An operator's answer to a safeguard hold: release the held deactivations or
//! discard them, audited.

use domain::{Directory, DirectoryId, DirectoryState};
use ports::{AuditAction, StoreError};
use serde_json::json;
use tracing::info;

use super::{audit, directory};
use crate::deps::Engine;
use crate::error::EngineError;

/// Releases or discards a hold, audited.
pub async fn resolve_hold(
    engine: &Engine,
    id: &DirectoryId,
    decision: HoldDecision,
    actor: &str,
) -> Result<Directory, EngineError> {
    let held = directory(engine, id).await?.hold;
    let d = apply_decision(engine, id, decision).await?;
    audit(
        engine,
        id,
        AuditAction::Release,
        actor,
        json!({
            "decision": match decision {
                HoldDecision::Release => "release",
                HoldDecision::Discard => "discard",
            },
            "heldRun": held.map(|h| h.run_id),
        }),
    )
    .await?;
    Ok(d)
}

/// An operator's answer to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldDecision {
    /// Apply the held deactivations and deletions: the directory is active again and
    /// its next run is a full one that skips the safeguard once.
    Release,
    /// Drop them: the directory is active again and the next run decides afresh (and
    /// holds again if BambooHR still says the same).
    Discard,
}

/// Releases or discards a hold in the store. Fails when the directory is not held.
async fn apply_decision(
    engine: &Engine,
    id: &DirectoryId,
    decision: HoldDecision,
) -> Result<Directory, EngineError> {
    for attempt in 1..=4 {
        let Some(mut d) = engine.store.get_directory(id).await? else {
            return Err(EngineError::DirectoryNotFound(id.clone()));
        };
        if d.state != DirectoryState::Held {
            return Err(EngineError::DirectoryNotActive {
                id: id.clone(),
                state: match d.state {
                    DirectoryState::Active => "active, not held",
                    DirectoryState::Paused => "paused, not held",
                    DirectoryState::Revoked => "revoked",
                    DirectoryState::Held => unreachable!("checked above"),
                },
            });
        }
        let expected = d.version;
        d.version += 1;
        d.state = DirectoryState::Active;
        d.hold = None;
        match decision {
            HoldDecision::Release => {
                d.safeguard_released = true;
                d.cursors.full_requested = true;
            }
            HoldDecision::Discard => d.safeguard_released = false,
        }
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => {
                info!(directory_id = %id, decision = ?decision, "hold resolved");
                return Ok(d);
            }
            Err(StoreError::Conflict { .. }) if attempt < 4 => {}
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}
