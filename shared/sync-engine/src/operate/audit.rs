//! The audit trail's one writer: every operator action and every sync, failure and
//! hold is appended with who acted and what changed (ids and settings, never a secret
//! or an HR field value).

use domain::DirectoryId;
use ports::{AuditAction, AuditEntry};
use tracing::info;

use crate::deps::Engine;
use crate::error::EngineError;

fn audit_nonce() -> u32 {
    rand::random()
}

/// Appends an audit entry for `directory`. Audit is part of the operation: a failure
/// is returned to the caller.
pub async fn audit(
    engine: &Engine,
    directory: &DirectoryId,
    action: AuditAction,
    actor: &str,
    details: serde_json::Value,
) -> Result<AuditEntry, EngineError> {
    let entry = AuditEntry::new(
        directory.clone(),
        engine.clock.now(),
        audit_nonce(),
        action,
        actor,
        details,
    );
    engine.store.append_audit(&entry).await?;
    info!(directory_id = %directory, action = action.as_str(), actor, "audited");
    Ok(entry)
}
